//! `Config`: the validated settings of one run, built from the command line before any request.
//!
//! Nothing below this module sees clap: the fetcher, the input reader and the writers take plain
//! structs. Defaults live here as constants so that the help text and the library cannot disagree.

use std::net::SocketAddr;
use std::path::PathBuf;
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
}

/// The stdout formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Jsonl,
    Csv,
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
