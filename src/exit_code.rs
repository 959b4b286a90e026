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
    /// Usage, input or output error: a bad flag, an unreadable list, an unwritable `--out-dir`.
    Usage = 2,
    /// Stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it.
    Interrupted = 130,
    /// Stopped by SIGTERM: 128 + 15.
    Terminated = 143,
}

impl ExitCode {
    /// The code for a run that completed (was not stopped by a signal): an input or output error
    /// outranks failed entries.
    pub fn decide(io_error: bool, failed: bool) -> Self {
        if io_error {
            ExitCode::Usage
        } else if failed {
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
    fn input_and_output_errors_outrank_failures() {
        assert_eq!(ExitCode::decide(false, false), ExitCode::Success);
        assert_eq!(ExitCode::decide(false, true), ExitCode::SomeFailed);
        assert_eq!(ExitCode::decide(true, true), ExitCode::Usage);
        assert_eq!(ExitCode::decide(true, false), ExitCode::Usage);
    }

    #[test]
    fn signal_codes_follow_the_shell_convention() {
        assert_eq!(ExitCode::Interrupted as u8, 128 + 2);
        assert_eq!(ExitCode::Terminated as u8, 128 + 15);
    }
}
