//! `Record`: the one result per input entry that every consumer (stdout formats, the summary, the
//! exit code) reads. It owns only what is reported, never the page body, so a record is small and is
//! dropped as soon as it has been written out.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{FetchError, InputError};

/// Where an entry came from: `FILE:LINE` (`-` for standard input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: Arc<str>,
    pub line: u64,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What a response contained, as far as scrape reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The URL after redirects.
    pub final_url: String,
    pub status: u16,
    /// Body bytes received, after decompression (at most `--max-bytes`).
    pub bytes: u64,
    pub content_type: Option<String>,
    pub title: Option<String>,
    /// The preview: the start of the page's visible text, sanitised.
    pub content: Option<String>,
    /// The preview was cut at its limit (`--truncate`); the text output marks it with "…".
    pub content_cut: bool,
    /// True when the body was larger than `--max-bytes` and reading stopped there.
    pub truncated: bool,
    /// True when the content type is not text; `content` is then `None`.
    pub binary: bool,
    /// The status is one `--accept` allows.
    pub accepted: bool,
    /// A 304 answer to a conditional request: the saved copy is current.
    pub revalidated: bool,
    /// Per `--select` field, the values found.
    pub selected: Vec<Vec<String>>,
    /// With `--links`: the page's distinct absolute links.
    pub links: Vec<String>,
    /// Why the page fails an expectation (`--expect-text`, `--expect-selector`, `--max-latency`,
    /// `--min-cert-days`).
    pub check_failure: Option<String>,
    /// Whole days until the server's TLS certificate expires (https, in check mode).
    pub cert_days: Option<i64>,
}

impl Page {
    pub fn is_success(&self) -> bool {
        (self.accepted || self.revalidated) && self.check_failure.is_none()
    }
}

/// How a run left a page's file under `--out-dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Saved for the first time.
    New,
    /// Saved, and different from the previous copy.
    Changed,
    /// The previous copy is current (a 304, the same content, or not requested).
    Unchanged,
    /// The fetch failed; the previous good copy was kept as it was.
    Kept,
}

/// The file a page is saved in, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Relative to the output directory.
    pub path: String,
    pub sha256: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When the saved copy was last fetched or confirmed current.
    pub fetched_at: Option<SystemTime>,
    pub change: Change,
}

/// How an entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived (whatever its status).
    Page(Page),
    /// No response: the network, TLS, redirects or a timeout got in the way.
    Failed(FetchError),
    /// The input line was not a fetchable URL; nothing was requested.
    Invalid(InputError),
    /// Not requested: `--skip-existing`, and the file was already saved.
    Skipped,
}

/// One input entry's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The normalised URL requested, or the raw line for an invalid entry.
    pub url: String,
    pub source: Source,
    /// From the first attempt's start to the last attempt's end, backoff included (with
    /// `--confirm`, of the recheck).
    pub elapsed: Duration,
    /// Requests sent (1 + retries); 0 for an invalid line.
    pub attempts: u32,
    pub outcome: Outcome,
    /// The saved file, under `--out-dir`.
    pub saved: Option<Saved>,
    /// With `--confirm`: how the recheck of a failure went.
    pub recheck: Option<Recheck>,
}

/// The outcome of `--confirm`'s second look at a failed URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// It failed again: the failure is reported.
    Confirmed,
    /// It passed the second time.
    Passed,
}

impl Recheck {
    pub fn as_str(self) -> &'static str {
        match self {
            Recheck::Confirmed => "confirmed",
            Recheck::Passed => "passed",
        }
    }
}

impl Record {
    pub fn is_ok(&self) -> bool {
        match &self.outcome {
            Outcome::Page(page) => page.is_success(),
            Outcome::Skipped => true,
            Outcome::Failed(_) | Outcome::Invalid(_) => false,
        }
    }

    pub fn page(&self) -> Option<&Page> {
        match &self.outcome {
            Outcome::Page(page) => Some(page),
            _ => None,
        }
    }

    /// Why the entry failed, in words (`None` when it is ok): the error, a failed expectation, or
    /// a status that `--accept` does not allow.
    pub fn failure(&self) -> Option<String> {
        if self.is_ok() {
            return None;
        }
        self.error().or_else(|| {
            self.page()
                .map(|page| format!("status {} not accepted", page.status))
        })
    }

    /// The failure in words: no response, an invalid line, or a failed expectation.
    pub fn error(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Page(page) => page.check_failure.clone(),
            Outcome::Skipped => None,
            Outcome::Failed(error) => Some(error.to_string()),
            Outcome::Invalid(error) => Some(error.to_string()),
        }
    }
}
