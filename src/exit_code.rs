//! The process exit code, decided once at the end of a run from what the run saw.
//!
//! Nothing deep in the pipeline picks an exit code: stages produce records, the summary counts them,
//! and `run` turns the counts (plus how the run ended) into one of these values.

/// How a run ended, as the shell sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every entry was fetched and accepted.
    Success = 0,
    /// At least one entry failed (a fetch error, an unaccepted status, an invalid input line).
    SomeFailed = 1,
    /// Usage or input error: a bad flag, an unreadable file.
    Usage = 2,
    /// Stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it.
    Interrupted = 130,
    /// Stopped by SIGTERM: 128 + 15.
    Terminated = 143,
}

impl ExitCode {
    /// The code for a run that completed (was not stopped by a signal).
    pub fn from_counts(failed: u64, input_error: bool) -> Self {
        if input_error {
            ExitCode::Usage
        } else if failed > 0 {
            ExitCode::SomeFailed
        } else {
            ExitCode::Success
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_outrank_failures() {
        assert_eq!(ExitCode::from_counts(0, false), ExitCode::Success);
        assert_eq!(ExitCode::from_counts(3, false), ExitCode::SomeFailed);
        assert_eq!(ExitCode::from_counts(3, true), ExitCode::Usage);
        assert_eq!(ExitCode::from_counts(0, true), ExitCode::Usage);
    }

    #[test]
    fn signal_codes_follow_the_shell_convention() {
        assert_eq!(ExitCode::Interrupted as u8, 128 + 2);
        assert_eq!(ExitCode::Terminated as u8, 128 + 15);
    }
}
