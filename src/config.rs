//! `Config`: the validated settings of one run, built from the command line before any request.
//!
//! Nothing below this module sees clap: the fetcher, the input reader and the writers take plain
//! structs. Defaults live here as constants so that the help text and the library cannot disagree.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::dom::ExtractOptions;

pub const DEFAULT_CONCURRENCY: usize = 32;
pub const DEFAULT_PER_HOST: usize = 8;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_TRUNCATE: usize = 100;

/// Where URLs are read from, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    File(PathBuf),
    Stdin,
    /// A URL given on the command line instead of a file (`scrape https://example.com/`).
    Url(String),
}

/// A `--resolve HOST:PORT:ADDR` pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvePin {
    pub host: String,
    pub addr: SocketAddr,
}

/// The final statuses that count as success (`--accept`), as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept(Vec<RangeInclusive<u16>>);

impl Default for Accept {
    fn default() -> Self {
        Accept(vec![200..=299])
    }
}

impl Accept {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|range| range.contains(&status))
    }
}

impl FromStr for Accept {
    type Err = String;

    /// `200..=299,301,304`: statuses and ranges (`A..=B`, or `A..B` without B), comma-separated.
    fn from_str(text: &str) -> Result<Self, String> {
        let status = |s: &str| -> Result<u16, String> {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|n| (100..=599).contains(n))
                .ok_or_else(|| format!("'{}' is not an HTTP status (100 to 599)", s.trim()))
        };
        let ranges = text
            .split(',')
            .map(|item| {
                if let Some((from, to)) = item.split_once("..=") {
                    Ok(status(from)?..=status(to)?)
                } else if let Some((from, to)) = item.split_once("..") {
                    Ok(status(from)?..=status(to)?.saturating_sub(1))
                } else {
                    let single = status(item)?;
                    Ok(single..=single)
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        if ranges.iter().any(|r| r.is_empty()) {
            return Err(format!("'{text}' has an empty range"));
        }
        Ok(Accept(ranges))
    }
}

/// The request method (`--method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// The page, headers and body.
    #[default]
    Get,
    /// Headers only; a server that refuses HEAD (405, 501) is asked again with GET.
    Head,
}

/// How requests are made.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Requests in flight overall.
    pub concurrency: usize,
    /// Requests in flight to one host (host and port).
    pub per_host: usize,
    /// Limit on one whole attempt: connect, headers and body.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts after a transient failure.
    pub retries: u32,
    pub max_redirects: usize,
    /// Body bytes kept, after decompression; reading stops past it.
    pub max_bytes: u64,
    pub headers: HeaderMap,
    pub user_agent: String,
    pub resolve: Vec<ResolvePin>,
    pub proxy: Option<String>,
    pub insecure: bool,
    pub cacert: Option<PathBuf>,
    /// Characters of page text to keep for the preview (0: none).
    pub preview_chars: usize,
    /// Selectors, links and full text, taken from a parsed page.
    pub extract: Arc<ExtractOptions>,
    pub accept: Accept,
    pub method: Method,
    /// `--max-latency`: a slower answer fails its URL.
    pub max_latency: Option<Duration>,
    /// Read bodies; `--check` without anything to look for in them does not.
    pub read_body: bool,
    /// `--confirm`: recheck a failed URL after this pause, on a fresh connection.
    pub confirm: Option<Duration>,
    /// Report certificate days left for https (check mode, or `--min-cert-days`).
    pub cert_days: bool,
    /// `--min-cert-days`: an https URL whose certificate expires sooner fails.
    pub min_cert_days: Option<u32>,
}

/// The stdout formats.
///
/// The variants' doc comments are the `--format` help: the derive is the one place clap reaches
/// into this module, and it is compile-time only (nothing here calls clap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per URL: status, time, size, URL, title, preview.
    #[default]
    Text,
    /// One JSON object per line, with stable field names.
    Jsonl,
    /// A header row, then one row per URL; one column per selector.
    Csv,
    /// One JSON document: the results array and a summary.
    Json,
    /// JUnit XML: one testcase per URL, failures with their reason.
    Junit,
    /// A Markdown summary and table (PR comments, $GITHUB_STEP_SUMMARY).
    Markdown,
    /// SARIF 2.1.0: one result per failed URL, at its line in the list.
    Sarif,
    /// GitHub workflow commands: an ::error annotation per failure.
    Github,
}

impl Format {
    /// The format a report file's name implies.
    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "xml" => Some(Format::Junit),
            "md" | "markdown" => Some(Format::Markdown),
            "sarif" => Some(Format::Sarif),
            _ => None,
        }
    }
}

/// A `--report FILE` to write at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFile {
    pub path: PathBuf,
    pub format: Format,
}

/// What is shown, and where.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    pub format: Format,
    /// Only failures on stdout; no progress bar and no summary.
    pub quiet: bool,
    /// The progress bar is allowed (it still needs stderr to be a terminal).
    pub progress: bool,
    /// Print only each page's links, one per line.
    pub links_only: bool,
    /// CSV: join all matches of a selector with this (else the first match only).
    pub join: Option<String>,
    /// `--check`: one OK/FAIL line per URL in the text format.
    pub check: bool,
    /// Reports written besides stdout.
    pub reports: Vec<ReportFile>,
    /// Gates on the whole run.
    pub slos: Vec<crate::slo::Slo>,
    /// Per-host counts and latencies in the summary.
    pub host_stats: bool,
}

/// Saving pages under `--out-dir`.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    pub dir: PathBuf,
    /// Send no validators: fetch every page in full.
    pub refetch: bool,
    /// Do not request URLs whose file already exists.
    pub skip_existing: bool,
    /// Remove the files of URLs that are no longer in the list.
    pub prune: bool,
    /// A page that is new or changed fails the run (exit 1).
    pub fail_on_change: bool,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub inputs: Vec<InputSource>,
    pub fetch: FetchOptions,
    pub output: OutputOptions,
    pub mirror: Option<MirrorOptions>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_takes_statuses_and_ranges() {
        let accept: Accept = "200..=299,301, 304".parse().expect("valid");
        assert!(accept.contains(200) && accept.contains(299) && accept.contains(304));
        assert!(!accept.contains(300) && !accept.contains(404));
        let exclusive: Accept = "200..300".parse().expect("valid");
        assert!(exclusive.contains(299) && !exclusive.contains(300));
        assert!("2xx".parse::<Accept>().is_err());
        assert!("700".parse::<Accept>().is_err());
        assert!("300..=200".parse::<Accept>().is_err());
        assert!(Accept::default().contains(204) && !Accept::default().contains(304));
    }
}
