//! The errors a user reads: each `Display` is one line in the user's words, with the thing it names.
//!
//! These are data, not control flow: a failed fetch or a bad input line becomes a `Record` carrying
//! one of these values, and the run goes on. `anyhow` is used only at the edges (start-up, files).

use std::time::Duration;

use humantime::format_duration;

/// Why fetching a URL did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {}", format_duration(*.0))]
    Timeout(Duration),
    #[error("connect timed out after {}", format_duration(*.0))]
    ConnectTimeout(Duration),
    #[error("connection refused")]
    ConnectionRefused,
    #[error("connection reset by peer")]
    ConnectionReset,
    #[error("connection closed before the response was complete")]
    ConnectionClosed,
    /// The process (EMFILE) or the system (ENFILE) ran out of file descriptors for a socket.
    #[error("too many open files (raise ulimit -n or lower --concurrency)")]
    TooManyOpenFiles,
    #[error("dns lookup failed for {0}")]
    Dns(String),
    #[error("too many redirects ({0})")]
    TooManyRedirects(usize),
    #[error("redirect loop: {0} was already visited")]
    RedirectLoop(String),
    #[error("redirect to unsupported URL {0}")]
    BadRedirect(String),
    /// The `Location` of a redirect is not a URL (`http://[::1`), so it cannot be followed.
    #[error("redirect to an invalid URL {0}")]
    InvalidRedirect(String),
    #[error("tls: {0}")]
    Tls(String),
    /// Parsing the page for `--select`, `--links` or `--text` took too long (a hostile page).
    #[error("parsing the page took longer than {}", format_duration(*.0))]
    ParseTimeout(Duration),
    /// Writing the page under `--out-dir` failed (the message names the path).
    #[error("cannot save {0}")]
    Save(String),
    #[error("{0}")]
    Other(String),
}

impl FetchError {
    /// Transient failures that another attempt may cure: the network, not the request, was at fault.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Timeout(_)
                | FetchError::ConnectTimeout(_)
                | FetchError::ConnectionRefused
                | FetchError::ConnectionReset
                | FetchError::ConnectionClosed
                | FetchError::TooManyOpenFiles
        )
    }

    /// The kind of failure, used to group failures in the summary: (singular, plural).
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            FetchError::Timeout(_) | FetchError::ConnectTimeout(_) => ("timeout", "timeouts"),
            FetchError::ConnectionRefused
            | FetchError::ConnectionReset
            | FetchError::ConnectionClosed
            | FetchError::TooManyOpenFiles => ("connection error", "connection errors"),
            FetchError::Dns(_) => ("DNS failure", "DNS failures"),
            FetchError::TooManyRedirects(_)
            | FetchError::RedirectLoop(_)
            | FetchError::BadRedirect(_)
            | FetchError::InvalidRedirect(_) => ("redirect error", "redirect errors"),
            FetchError::Tls(_) => ("TLS error", "TLS errors"),
            FetchError::Save(_) => ("write error", "write errors"),
            FetchError::ParseTimeout(_) => ("parse timeout", "parse timeouts"),
            FetchError::Other(_) => ("other error", "other errors"),
        }
    }
}

/// Why a line of the URL list is not a URL scrape can fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("unsupported scheme '{0}' (only http and https)")]
    UnsupportedScheme(String),
    #[error("whitespace inside a URL")]
    Whitespace,
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("line longer than {0} bytes")]
    TooLong(usize),
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("bad expectation: {0}")]
    Expectation(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_words() {
        assert_eq!(
            FetchError::Timeout(Duration::from_secs(2)).to_string(),
            "timed out after 2s"
        );
        assert_eq!(
            FetchError::Timeout(Duration::from_millis(500)).to_string(),
            "timed out after 500ms"
        );
        assert_eq!(
            FetchError::TooManyRedirects(10).to_string(),
            "too many redirects (10)"
        );
        assert_eq!(
            FetchError::Dns("example.invalid".into()).to_string(),
            "dns lookup failed for example.invalid"
        );
    }

    #[test]
    fn only_network_failures_are_transient() {
        assert!(FetchError::ConnectionRefused.is_transient());
        assert!(FetchError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(FetchError::TooManyOpenFiles.is_transient());
        assert!(!FetchError::Dns("x".into()).is_transient());
        assert!(!FetchError::TooManyRedirects(3).is_transient());
        assert!(!FetchError::Tls("bad certificate".into()).is_transient());
    }
}
