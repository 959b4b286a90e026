//! The command line: clap derive, where each doc comment is the help text, plus the value parsers
//! that turn strings into typed values (durations, sizes, headers, `--resolve` pins) up front, so a
//! bad value is a usage error (exit 2) before any request is sent.
//!
//! Conventions: every flag has a `long`; the common ones also have the one-letter `short` that curl
//! or wget users expect (`-H`, `-A`, `-k`, `-o`, `-q`); `value_name` says what kind of value it takes.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use clap::Parser;
use clap::builder::TypedValueParser;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{
    Accept, Config, DEFAULT_CONCURRENCY, DEFAULT_MAX_REDIRECTS, DEFAULT_PER_HOST, DEFAULT_RETRIES,
    DEFAULT_TRUNCATE, FetchOptions, Format, InputSource, Method, MirrorOptions, OutputOptions,
    ReportFile, ResolvePin,
};
use crate::dom::{ExtractOptions, Field};
use crate::slo::Slo;

/// Fetch a list of URLs concurrently and print, for each, its status, time, size, title and the
/// start of its text.
///
/// URLs are read one per line from FILEs (in order) or from standard input; blank lines and lines
/// starting with '#' are skipped, and a bare host such as example.com/path is taken as https://.
#[derive(Debug, Parser)]
#[command(name = "scrape", version, about, max_term_width = 100)]
pub struct Cli {
    /// Files with one URL per line; '-' (or no FILE, with input piped in) reads standard input. An
    /// http:// or https:// URL that is not a file name is fetched as it is.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Requests in flight at once, over all hosts.
    #[arg(short = 'c', long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(1..=100_000).map(|n| n as usize))]
    pub concurrency: usize,

    /// Requests in flight at once to one host (host name and port).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PER_HOST,
          value_parser = clap::value_parser!(u32).range(1..=100_000).map(|n| n as usize))]
    pub per_host: usize,

    /// Limit on each attempt as a whole (connect, headers and body): 500ms, 2s, 1m, or seconds.
    #[arg(short = 't', long, value_name = "DURATION", default_value = "10s",
          value_parser = parse_duration)]
    pub timeout: Duration,

    /// Limit on establishing a connection (TCP and TLS).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Extra attempts after a connect error, a timeout, or a 429/502/503/504 answer.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    /// Check mode for CI: one OK/FAIL line per URL with the reason, no previews; bodies are read
    /// only when an expectation needs them.
    #[arg(long)]
    pub check: bool,

    /// Fail a URL whose page text does not contain STRING.
    #[arg(long, value_name = "STRING")]
    pub expect_text: Option<String>,

    /// Fail a URL whose page has no element matching CSS.
    #[arg(long, value_name = "CSS", value_parser = Field::parse)]
    pub expect_selector: Option<Field>,

    /// Fail a URL that takes longer than DURATION.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_latency: Option<Duration>,

    /// Check a failed URL once more after DURATION, on a fresh connection, before reporting it
    /// as failed; the output says whether the failure was confirmed or the recheck passed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub confirm: Option<Duration>,

    /// Fail an https URL whose certificate expires within N days (the days left are reported
    /// for every https URL in check mode).
    #[arg(long, value_name = "N")]
    pub min_cert_days: Option<u32>,

    /// Add per-host counts and latency percentiles to the summary.
    #[arg(long)]
    pub host_stats: bool,

    /// A gate on the whole run, e.g. 'p95<800ms', 'p99<2s', 'max<5s', 'success>=99.5%'
    /// (repeatable); a missed gate fails the run.
    #[arg(long, value_name = "GATE")]
    pub slo: Vec<Slo>,

    /// Final statuses that count as success, e.g. 200..=299,301,304 (every mode).
    #[arg(long, value_name = "SPEC", default_value = "200..=299")]
    pub accept: Accept,

    /// Request method: GET, or HEAD (headers only; a 405 or 501 answer falls back to GET).
    #[arg(long, value_name = "METHOD", value_enum, ignore_case = true, default_value_t = Method::Get)]
    pub method: Method,

    /// Redirects followed before giving up.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REDIRECTS)]
    pub max_redirects: usize,

    /// Body bytes read per page, after decompression (512KiB, 1MB, 10MiB or bytes); past it the
    /// page is marked truncated.
    #[arg(long, value_name = "SIZE", default_value = "10MiB", value_parser = parse_size)]
    pub max_bytes: u64,

    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// User-Agent header.
    #[arg(short = 'A', long, value_name = "STRING",
          default_value = concat!("scrape/", env!("CARGO_PKG_VERSION")))]
    pub user_agent: String,

    /// Pin HOST to ADDR instead of asking DNS, as curl's --resolve (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<ResolvePin>,

    /// Send every request through this proxy (an http:// or https:// URL). Without it, the
    /// HTTP_PROXY, HTTPS_PROXY and NO_PROXY variables apply.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Accept invalid TLS certificates (self-signed, expired, wrong host).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Extra trusted CA certificates, PEM.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Save each page's body under DIR (DIR/<host>/<path>, see the README), with a manifest;
    /// later runs fetch only what changed.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// With --out-dir: send no If-None-Match/If-Modified-Since; fetch every page in full.
    #[arg(long, requires = "out_dir")]
    pub refetch: bool,

    /// With --out-dir: do not request URLs whose file already exists.
    #[arg(long, requires = "out_dir")]
    pub skip_existing: bool,

    /// With --out-dir: remove the files of URLs that are no longer in the list.
    #[arg(long, requires = "out_dir")]
    pub prune: bool,

    /// With --out-dir: exit 1 when any page is new or changed.
    #[arg(long, requires = "out_dir")]
    pub fail_on_change: bool,

    /// Extract the text of every element matching CSS (repeatable); CSS@ATTR takes an attribute
    /// instead ('a.title@href', 'img@src'; URLs are made absolute).
    #[arg(short = 's', long = "select", value_name = "CSS", value_parser = Field::parse)]
    pub select: Vec<Field>,

    /// Like --select, with a short NAME for the field in the output (repeatable; these come after
    /// the --select fields).
    #[arg(long, value_name = "NAME=CSS", value_parser = parse_named_field)]
    pub select_name: Vec<Field>,

    /// With -f csv: all matches of a selector joined with SEP (default: the first match only).
    #[arg(long, value_name = "SEP")]
    pub join: Option<String>,

    /// List each page's distinct absolute links (fragments dropped).
    #[arg(long)]
    pub links: bool,

    /// Print only the links, one per line, e.g. to chain: scrape --links-only a.txt | scrape -
    #[arg(long)]
    pub links_only: bool,

    /// With --links or --links-only: only links to the page's own host.
    #[arg(long)]
    pub same_host: bool,

    /// Show the page's whole visible text instead of the preview (bounded by --truncate only when
    /// that is given).
    #[arg(long)]
    pub text: bool,

    /// Output format on stdout.
    #[arg(short = 'f', long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write a report to FILE (repeatable), atomically at the end of the run; its format
    /// follows the extension (.json .jsonl .csv .xml .md .sarif) unless --report-format is given.
    #[arg(long, value_name = "FILE")]
    pub report: Vec<PathBuf>,

    /// The format of every --report file.
    #[arg(long, value_name = "FORMAT", value_enum, requires = "report")]
    pub report_format: Option<Format>,

    /// Characters of page text shown as the preview (0: no preview) [default: 100].
    #[arg(long, value_name = "N")]
    pub truncate: Option<usize>,

    /// No progress bar on stderr.
    #[arg(long)]
    pub no_progress: bool,

    /// Print only failures; no progress bar and no summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

impl Cli {
    /// The validated run settings. `stdin_is_terminal` decides what no FILE means: read piped
    /// input, or tell the user what is missing instead of waiting on the keyboard.
    pub fn into_config(self, stdin_is_terminal: bool) -> Result<Config, String> {
        if self.method == Method::Head && self.out_dir.is_some() {
            return Err("--method HEAD reads no body, so --out-dir would save nothing".into());
        }
        let inputs = if self.files.is_empty() {
            if stdin_is_terminal {
                return Err("no input: give a FILE of URLs, or pipe URLs on standard input".into());
            }
            vec![InputSource::Stdin]
        } else {
            self.files
                .into_iter()
                .map(|path| match path.to_str() {
                    Some("-") => InputSource::Stdin,
                    Some(text) if is_url_argument(text) && !path.exists() => {
                        InputSource::Url(text.to_string())
                    }
                    _ => InputSource::File(path),
                })
                .collect()
        };
        let headers: HeaderMap = self.headers.into_iter().collect();
        let reports = self
            .report
            .into_iter()
            .map(|path| {
                let format = self
                    .report_format
                    .or_else(|| Format::from_extension(&path))
                    .ok_or_else(|| {
                        format!(
                            "cannot tell the format of --report {} from its name: use .json, \
                             .jsonl, .csv, .xml, .md or .sarif, or --report-format",
                            path.display()
                        )
                    })?;
                Ok(ReportFile { path, format })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let extract = ExtractOptions {
            fields: self.select.into_iter().chain(self.select_name).collect(),
            links: self.links || self.links_only,
            same_host: self.same_host,
            full_text: self.text.then_some(self.truncate),
            expect_text: self.expect_text,
            expect_selector: self.expect_selector,
        };
        let read_body = !self.check || extract.needs_dom() || self.out_dir.is_some();
        let preview_chars = if self.check {
            0
        } else {
            self.truncate.unwrap_or(DEFAULT_TRUNCATE)
        };
        Ok(Config {
            inputs,
            fetch: FetchOptions {
                concurrency: self.concurrency,
                per_host: self.per_host.min(self.concurrency),
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
                retries: self.retries,
                max_redirects: self.max_redirects,
                max_bytes: self.max_bytes,
                headers,
                user_agent: self.user_agent,
                resolve: self.resolve,
                proxy: self.proxy,
                insecure: self.insecure,
                cacert: self.cacert,
                preview_chars,
                extract: Arc::new(extract),
                max_latency: self.max_latency,
                read_body,
                confirm: self.confirm,
                cert_days: self.check || self.min_cert_days.is_some(),
                min_cert_days: self.min_cert_days,
                accept: self.accept,
                method: self.method,
            },
            output: OutputOptions {
                format: self.format,
                quiet: self.quiet,
                progress: !self.no_progress && !self.quiet,
                links_only: self.links_only,
                join: self.join,
                check: self.check,
                reports,
                slos: self.slo,
                host_stats: self.host_stats,
            },
            mirror: self.out_dir.map(|dir| MirrorOptions {
                dir,
                refetch: self.refetch,
                skip_existing: self.skip_existing,
                prune: self.prune,
                fail_on_change: self.fail_on_change,
            }),
        })
    }
}

fn is_url_argument(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `NAME=CSS[@ATTR]`.
fn parse_named_field(text: &str) -> Result<Field, String> {
    let (name, css) = text
        .split_once('=')
        .filter(|(name, _)| !name.trim().is_empty())
        .ok_or_else(|| format!("'{text}' is not NAME=CSS"))?;
    Ok(Field {
        name: name.trim().to_string(),
        ..Field::parse(css)?
    })
}

/// `500ms`, `2s`, `1m30s` (humantime), or a bare number of seconds as curl takes it (`2`, `0.5`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{text}' is too long a duration"))?,
        Ok(_) => return Err(format!("'{text}' is not a duration")),
        Err(_) => humantime::parse_duration(text).map_err(|e| format!("'{text}': {e}"))?,
    };
    if duration.is_zero() {
        return Err("a duration must be more than zero".into());
    }
    Ok(duration)
}

/// `10MiB`, `512KiB`, `1MB`, `1 kb` or plain bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|e| format!("'{text}' is not a size: {e}"))?;
    if size.as_u64() == 0 {
        return Err("a size must be more than zero".into());
    }
    Ok(size.as_u64())
}

/// `Name: value`.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("'{}' is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        format!("the value of header '{name}' has characters a header cannot carry")
    })?;
    Ok((name, value))
}

/// `HOST:PORT:ADDR`, where ADDR is an IPv4 or IPv6 address (brackets optional).
fn parse_resolve(text: &str) -> Result<ResolvePin, String> {
    let bad = || format!("'{text}' is not HOST:PORT:ADDR");
    let (host, rest) = text.split_once(':').ok_or_else(bad)?;
    let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("'{addr}' is not an IP address"))?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(ResolvePin {
        host: host.to_ascii_lowercase(),
        addr: SocketAddr::new(ip, port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT};
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("scrape").chain(args.iter().copied()))
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_library_constants() {
        let cli = parse(&["urls.txt"]).expect("parses");
        assert_eq!(cli.timeout, DEFAULT_TIMEOUT);
        assert_eq!(cli.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(cli.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(cli.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(
            cli.user_agent,
            format!("scrape/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn durations_take_humantime_or_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn headers_are_name_colon_value() {
        let (name, value) = parse_header("X-Token:  abc ").expect("valid");
        assert_eq!(name.as_str(), "x-token");
        assert_eq!(value, "abc");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn resolve_takes_ipv4_and_ipv6() {
        let pin = parse_resolve("Example.com:443:127.0.0.1").expect("valid");
        assert_eq!(pin.host, "example.com");
        assert_eq!(pin.addr, "127.0.0.1:443".parse().expect("addr"));
        let pin = parse_resolve("example.com:80:[::1]").expect("valid");
        assert_eq!(pin.addr, "[::1]:80".parse().expect("addr"));
        let pin = parse_resolve("example.com:80:::1").expect("valid");
        assert_eq!(pin.addr, "[::1]:80".parse().expect("addr"));
        assert!(parse_resolve("example.com:x:127.0.0.1").is_err());
        assert!(parse_resolve("example.com:80:nowhere").is_err());
    }

    #[test]
    fn usage_errors_are_reported_by_clap() {
        assert!(parse(&["--concurrency", "0", "f"]).is_err());
        assert!(parse(&["--timeout", "fast", "f"]).is_err());
        assert!(parse(&["--format", "yaml", "f"]).is_err());
        assert!(parse(&["--no-such-flag"]).is_err());
    }

    #[test]
    fn no_file_reads_piped_stdin_but_not_a_terminal() {
        let config = parse(&[]).expect("parses").into_config(false).expect("ok");
        assert_eq!(config.inputs, vec![InputSource::Stdin]);
        assert!(parse(&[]).expect("parses").into_config(true).is_err());
        let config = parse(&["a.txt", "-", "HTTPS://example.com/x"])
            .expect("parses")
            .into_config(true)
            .expect("ok");
        assert_eq!(
            config.inputs,
            vec![
                InputSource::File("a.txt".into()),
                InputSource::Stdin,
                InputSource::Url("HTTPS://example.com/x".into())
            ]
        );
    }

    #[test]
    fn mirror_flags_need_an_out_dir() {
        assert!(parse(&["--prune", "f"]).is_err());
        assert!(parse(&["--refetch", "f"]).is_err());
        let config = parse(&["-o", "pages", "--skip-existing", "--fail-on-change", "f"])
            .expect("parses")
            .into_config(true)
            .expect("ok");
        let mirror = config.mirror.expect("mirror options");
        assert_eq!(mirror.dir, PathBuf::from("pages"));
        assert!(mirror.skip_existing && mirror.fail_on_change && !mirror.prune && !mirror.refetch);
    }

    #[test]
    fn selectors_are_checked_up_front() {
        let field = Field::parse("a.title@href").expect("valid");
        assert_eq!(field.attr.as_deref(), Some("href"));
        assert_eq!(field.name, "a.title@href");
        let field = Field::parse("a[href^='mailto:x@y.org']").expect("valid");
        assert_eq!(
            field.attr, None,
            "an @ inside the selector is not an attribute"
        );
        let error = Field::parse("div[").expect_err("invalid");
        assert!(error.contains("div["), "{error}");
        let named = parse_named_field("price=.item .price").expect("valid");
        assert_eq!(named.name, "price");
        assert!(parse_named_field("=h1").is_err());
        assert!(parse_named_field("h1").is_err());
    }

    #[test]
    fn truncate_bounds_full_text_only_when_given() {
        let config = parse(&["--text", "f"])
            .expect("parses")
            .into_config(true)
            .expect("ok");
        assert_eq!(config.fetch.extract.full_text, Some(None));
        assert_eq!(config.fetch.preview_chars, DEFAULT_TRUNCATE);
        let config = parse(&["--text", "--truncate", "50", "f"])
            .expect("parses")
            .into_config(true)
            .expect("ok");
        assert_eq!(config.fetch.extract.full_text, Some(Some(50)));
    }

    #[test]
    fn quiet_hides_progress() {
        let config = parse(&["-q", "f"])
            .expect("parses")
            .into_config(true)
            .expect("ok");
        assert!(config.output.quiet && !config.output.progress);
    }
}
