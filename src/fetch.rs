//! Fetching: the shared HTTP client, the global and per-host limits, and the attempt loop (timeouts,
//! retries, redirects, the `--max-bytes` streaming read, and under `--out-dir` conditional requests
//! and streaming the body to its file). A URL goes in, a `Record` comes out; a failure is a value
//! in the record, never an error that ends the run.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use reqwest::header::{
    CONNECTION, CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
    LOCATION, RETRY_AFTER,
};
use reqwest::{Client, Response, redirect};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{Accept, FetchOptions, Method};
use crate::dom::{self, ExtractOptions};
use crate::error::FetchError;
use crate::extract::{self, Scanner};
use crate::input::{Expect, Job};
use crate::mirror::{Mirror, Plan, Target, Validators};
use crate::record::{Outcome, Page, Recheck, Record};
use crate::retry;
use crate::roots;
use crate::save::{PageFile, WrittenPage};
use crate::slots::{Slot, Slots};

/// Everything one shard's fetch futures share (see `shard`): one client (one connection pool), and
/// the limits, which every shard shares.
pub struct Fetcher {
    client: Client,
    limits: Arc<Limits>,
    /// Which of the run's shards this is, for the per-host bookkeeping of connections to keep.
    shard: usize,
    timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    max_bytes: u64,
    preview_chars: usize,
    mirror: Option<Arc<Mirror>>,
    extract: Arc<ExtractOptions>,
    accept: Accept,
    method: Method,
    max_latency: Option<Duration>,
    read_body: bool,
    /// `--confirm`: the pause before a recheck, and a client that keeps no connections.
    confirm: Option<(Duration, Client)>,
    min_cert_days: Option<u32>,
}

/// The limits of a run, shared by the fetchers of all its shards.
pub struct Limits {
    /// `--concurrency`, shared by the shards (see `slots` for why not a semaphore).
    global: Arc<Slots>,
    hosts: HostLimits,
    /// Pages being parsed at once on the blocking pools (one per core).
    parsers: Arc<Semaphore>,
}

impl Limits {
    /// The limits of `options`, for a run of `shards` shards.
    pub fn new(options: &FetchOptions, shards: usize) -> Arc<Self> {
        Arc::new(Limits {
            global: Slots::reserved_evenly(options.concurrency, shards),
            hosts: if options.per_host < options.concurrency {
                HostLimits::new(options.per_host, shards)
            } else {
                HostLimits::unlimited(options.concurrency, shards)
            },
            parsers: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        })
    }

    /// The number of shards they are for.
    pub fn shards(&self) -> usize {
        self.hosts.shards
    }
}

/// What one attempt came to, when it did not fail outright.
#[expect(
    clippy::large_enum_variant,
    reason = "moved once per attempt; boxing would cost an allocation per page"
)]
enum Step {
    Done(Fetched),
    /// A 429/502/503/504 answer with retries left; the wait the server asked for, if any.
    Retry(Option<Duration>),
}

/// What decides whether one URL passes: the run's settings, or the expectations on its line.
struct Rules<'a> {
    accept: &'a Accept,
    extract: Arc<ExtractOptions>,
    max_latency: Option<Duration>,
    read_body: bool,
}

/// One URL fetched with its retries.
struct Pass {
    result: Result<Fetched, FetchError>,
    attempts: u32,
    elapsed: Duration,
}

impl Pass {
    fn is_ok(&self) -> bool {
        self.result.as_ref().is_ok_and(|f| f.page.is_success())
    }
}

/// A response read to its end.
struct Fetched {
    page: Page,
    /// Under `--out-dir`, a 2xx body written in full, not yet in place.
    written: Option<WrittenPage>,
    validators: Validators,
    /// The body, kept only when a DOM pass needs it.
    body: Option<Vec<u8>>,
}

impl Fetcher {
    /// Shard `shard`'s client for these options, under the run's `limits`; with a mirror, pages
    /// are saved in it.
    pub fn new(
        options: &FetchOptions,
        mirror: Option<Arc<Mirror>>,
        limits: Arc<Limits>,
        shard: usize,
    ) -> anyhow::Result<Self> {
        let client = client_builder(options)?
            .build()
            .context("cannot set up the HTTP client")?;
        let confirm = match options.confirm {
            Some(delay) => {
                let fresh = client_builder(options)?
                    .pool_max_idle_per_host(0)
                    .build()
                    .context("cannot set up the HTTP client")?;
                Some((delay, fresh))
            }
            None => None,
        };
        Ok(Fetcher {
            client,
            limits,
            shard,
            timeout: options.timeout,
            connect_timeout: options.connect_timeout,
            retries: options.retries,
            max_bytes: options.max_bytes,
            preview_chars: options.preview_chars,
            mirror,
            extract: Arc::clone(&options.extract),
            accept: options.accept.clone(),
            method: options.method,
            max_latency: options.max_latency,
            read_body: options.read_body,
            confirm,
            min_cert_days: options.min_cert_days,
        })
    }

    /// Fetches one URL, with retries, and reports how it went. The URL counts as pending for its
    /// host from this call on, not from the future's first poll, so the requests under way see
    /// every URL of their host that waits in the window (see `HostPermit`).
    pub fn fetch(&self, job: Job) -> impl Future<Output = Record> + '_ {
        let host = self.limits.hosts.register(host_key(&job.url), self.shard);
        self.fetch_for(job, host)
    }

    async fn fetch_for(&self, job: Job, host: HostUse<'_>) -> Record {
        let target = match &self.mirror {
            None => None,
            Some(mirror) => match mirror.plan(&job.url).await {
                Plan::Fetch(target) => Some(target),
                Plan::Skip(saved) => {
                    return Record {
                        url: job.url.into(),
                        source: job.source,
                        elapsed: Duration::ZERO,
                        attempts: 0,
                        outcome: Outcome::Skipped,
                        saved: Some(saved),
                        recheck: None,
                    };
                }
            },
        };
        let rules = self.rules(job.expect.as_deref());
        let mut pass = self
            .pass(&self.client, &job.url, &host, target.as_ref(), &rules)
            .await;
        let mut recheck = None;
        if let Some((delay, fresh)) = &self.confirm
            && !pass.is_ok()
        {
            // One more look after a pause, on a new connection, before calling it a failure.
            tokio::time::sleep(*delay).await;
            let second = self
                .pass(fresh, &job.url, &host, target.as_ref(), &rules)
                .await;
            recheck = Some(if second.is_ok() {
                Recheck::Passed
            } else {
                Recheck::Confirmed
            });
            pass = Pass {
                attempts: pass.attempts + second.attempts,
                ..second
            };
        }
        let (outcome, saved) = match (pass.result, target) {
            (Ok(fetched), None) => (Outcome::Page(fetched.page), None),
            (Err(error), target) => (Outcome::Failed(error), target.and_then(Target::kept)),
            (Ok(fetched), Some(target)) => settle(fetched, target),
        };
        Record {
            url: job.url.into(),
            source: job.source,
            elapsed: pass.elapsed,
            attempts: pass.attempts,
            outcome,
            saved,
            recheck,
        }
    }

    /// The run's rules, with a URL's own expectations in place of the run-wide ones.
    fn rules<'a>(&'a self, expect: Option<&'a Expect>) -> Rules<'a> {
        let Some(expect) = expect else {
            return Rules {
                accept: &self.accept,
                extract: Arc::clone(&self.extract),
                max_latency: self.max_latency,
                read_body: self.read_body,
            };
        };
        let mut extract = (*self.extract).clone();
        if expect.contains.is_some() {
            extract.expect_text.clone_from(&expect.contains);
        }
        if expect.selector.is_some() {
            extract.expect_selector.clone_from(&expect.selector);
        }
        Rules {
            accept: expect.status.as_ref().unwrap_or(&self.accept),
            read_body: self.read_body || extract.needs_dom(),
            extract: Arc::new(extract),
            max_latency: expect.max_latency.or(self.max_latency),
        }
    }

    /// Fetches a URL with retries on `client`: the attempts, then the DOM pass and the latency
    /// expectation.
    async fn pass(
        &self,
        client: &Client,
        url: &Url,
        host: &HostUse<'_>,
        target: Option<&Target>,
        rules: &Rules<'_>,
    ) -> Pass {
        // Timing starts when the first request is sent, not while waiting for a permit.
        let mut started = None;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let retries_left = attempts <= self.retries;
            let step = {
                let (host_permit, _global) = self.permits(host).await;
                started.get_or_insert_with(Instant::now);
                let keep_alive = host_permit.keep_alive;
                let attempt = self.attempt(client, url, retries_left, keep_alive, target, rules);
                let step = tokio::time::timeout(self.timeout, attempt)
                    .await
                    .unwrap_or(Err(FetchError::Timeout(self.timeout)));
                // The connection goes back to hyper's pool from a task of its own; let that task
                // run before the permit lets the next request in. Otherwise that request finds the
                // pool empty and opens a connection, and the pool grows past the limits (scenario
                // a: 131 connections instead of 64, and 2 MB more memory).
                tokio::task::yield_now().await;
                step
            };
            // Permits are released while waiting, so a backoff never holds a slot.
            let wait = match step {
                Ok(Step::Done(fetched)) => break Ok(fetched),
                Ok(Step::Retry(asked)) => {
                    asked.unwrap_or_else(|| retry::backoff(attempts, fastrand::f64()))
                }
                Err(error) if retries_left && error.is_transient() => {
                    retry::backoff(attempts, fastrand::f64())
                }
                Err(error) => break Err(error),
            };
            tokio::time::sleep(wait).await;
        };
        let mut result = match result {
            Ok(fetched) => self.parse(fetched, &rules.extract).await,
            Err(error) => Err(error),
        };
        let elapsed = started.map_or(Duration::ZERO, |t| t.elapsed());
        if let (Ok(fetched), Some(min)) = (&mut result, self.min_cert_days)
            && let Some(days) = fetched.page.cert_days
            && days < i64::from(min)
            && fetched.page.check_failure.is_none()
        {
            fetched.page.check_failure = Some(format!(
                "certificate expires in {days} days (--min-cert-days {min})"
            ));
        }
        if let (Ok(fetched), Some(limit)) = (&mut result, rules.max_latency)
            && elapsed > limit
            && fetched.page.check_failure.is_none()
        {
            fetched.page.check_failure = Some(format!(
                "took {}, over the {} limit",
                crate::output::format_elapsed(elapsed),
                humantime::format_duration(limit)
            ));
        }
        Pass {
            result,
            attempts,
            elapsed,
        }
    }

    /// The DOM pass (`--select`, `--links`, `--text`) over a kept body, on the blocking pool so a
    /// large page never stalls the requests in flight; bounded by `--timeout`, since a hostile page
    /// can make an HTML parser slow.
    async fn parse(
        &self,
        mut fetched: Fetched,
        options: &Arc<ExtractOptions>,
    ) -> Result<Fetched, FetchError> {
        let Some(body) = fetched.body.take() else {
            return Ok(fetched);
        };
        let _permit = Arc::clone(&self.limits.parsers)
            .acquire_owned()
            .await
            .expect("the parser semaphore is never closed");
        let fields = options.fields.len();
        let options = Arc::clone(options);
        let content_type = fetched.page.content_type.clone();
        let Ok(page_url) = Url::parse(&fetched.page.final_url) else {
            return Ok(fetched);
        };
        let task = tokio::task::spawn_blocking(move || {
            match extract::decode_html(&body, content_type.as_deref()) {
                Some(html) => Some(dom::extract(&html, &page_url, &options)),
                None => Some(dom::Extraction {
                    check_failure: options.check_text(&String::from_utf8_lossy(&body)),
                    ..dom::Extraction::default()
                }),
            }
        });
        let extraction = match tokio::time::timeout(self.timeout, task).await {
            Ok(joined) => joined.ok().flatten(),
            Err(_) => return Err(FetchError::ParseTimeout(self.timeout)),
        };
        if let Some(extraction) = extraction {
            let page = &mut fetched.page;
            // Not HTML: nothing is selected, which is not an error.
            page.selected = if extraction.selected.is_empty() {
                vec![Vec::new(); fields]
            } else {
                extraction.selected
            };
            page.links = extraction.links;
            page.check_failure = extraction.check_failure;
            if extraction.text.is_some() {
                page.content = extraction.text;
                page.content_cut = false;
            }
        }
        Ok(fetched)
    }

    /// This shard takes no more work: what it has not taken of its share of the global limit goes
    /// to the other shards (see `slots`).
    pub fn leave(&self) {
        self.limits.global.leave(self.shard);
    }

    /// The per-host permit first, then a global one: a host at its limit waits without holding one
    /// of the global slots, so one slow host never blocks the others.
    async fn permits<'a>(&self, host: &'a HostUse<'a>) -> (HostPermit<'a>, Slot) {
        let turn = host.turn().await;
        let global = self.limits.global.acquire(self.shard).await;
        (host.start(turn), global)
    }

    /// One attempt. With `keep_alive` false (see `HostPermit`), the request asks the server to
    /// close the connection after it.
    async fn attempt(
        &self,
        client: &Client,
        url: &Url,
        retries_left: bool,
        keep_alive: bool,
        target: Option<&Target>,
        rules: &Rules<'_>,
    ) -> Result<Step, FetchError> {
        let validators = target.and_then(Target::validators);
        let send = |method: reqwest::Method| {
            let mut request = client.request(method, url.clone());
            if !keep_alive {
                request = request.header(CONNECTION, "close");
            }
            if let Some(validators) = &validators {
                if let Some(etag) = &validators.etag {
                    request = request.header(IF_NONE_MATCH, etag);
                }
                if let Some(date) = &validators.last_modified {
                    request = request.header(IF_MODIFIED_SINCE, date);
                }
            }
            request.send()
        };
        let mut response = match self.method {
            Method::Get => send(reqwest::Method::GET).await,
            Method::Head => send(reqwest::Method::HEAD).await,
        }
        .map_err(|e| self.classify(&e))?;
        if self.method == Method::Head && matches!(response.status().as_u16(), 405 | 501) {
            // Servers that do not implement HEAD are asked the usual way.
            response = send(reqwest::Method::GET)
                .await
                .map_err(|e| self.classify(&e))?;
        }
        if let Some(error) = unfollowable_redirect(&response) {
            return Err(error);
        }
        let status = response.status().as_u16();
        if retries_left && retry::is_retryable_status(status) {
            let asked = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
            return Ok(Step::Retry(asked));
        }
        self.read_page(response, target, rules)
            .await
            .map(Step::Done)
    }

    /// Streams the body through the title/preview pass, counting bytes and stopping at
    /// `--max-bytes`, and under `--out-dir` into a temporary file next to its destination.
    /// Nothing of the body is kept in memory.
    async fn read_page(
        &self,
        mut response: Response,
        target: Option<&Target>,
        rules: &Rules<'_>,
    ) -> Result<Fetched, FetchError> {
        let headers = response.headers();
        let content_type = header_text(headers, CONTENT_TYPE);
        let validators = Validators {
            etag: header_text(headers, ETAG),
            last_modified: header_text(headers, LAST_MODIFIED),
        };
        let status = response.status().as_u16();
        let mut page = Page {
            final_url: response.url().to_string(),
            status,
            accepted: rules.accept.contains(status),
            cert_days: response
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(reqwest::tls::TlsInfo::peer_certificate)
                .and_then(|der| certificate_days_left(der, SystemTime::now())),
            revalidated: status == 304 && target.is_some_and(|t| t.revalidate),
            ..Page::default()
        };
        if !rules.read_body {
            // `--check` with nothing to look for in the body: the status is the answer.
            page.bytes = response.content_length().unwrap_or(0);
            page.content_type = content_type;
            return Ok(Fetched {
                page,
                written: None,
                validators,
                body: None,
            });
        }
        let save_error = |e: io::Error| FetchError::Save(e.to_string());
        let mut file = match target {
            Some(target) if (200..300).contains(&status) => {
                Some(PageFile::create(target.destination.clone()).map_err(save_error)?)
            }
            _ => None,
        };
        let mut scanner = Scanner::new(content_type.as_deref(), self.preview_chars);
        let mut body = (rules.extract.needs_dom()
            && page.accepted
            && (extract::may_be_html(content_type.as_deref())
                || rules.extract.expect_text.is_some()))
        .then(Vec::new);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(&e))? {
            let room = self.max_bytes - page.bytes;
            let take = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            if scanner.wants_more() {
                scanner.feed(&chunk[..take]);
            }
            if let Some(file) = &mut file {
                file.write(&chunk[..take]).map_err(save_error)?;
            }
            if let Some(body) = &mut body {
                body.extend_from_slice(&chunk[..take]);
            }
            page.bytes += take as u64;
            if take < chunk.len() {
                page.truncated = true;
                break;
            }
        }
        let extracted = scanner.finish();
        page.content_type = content_type;
        page.title = extracted.title;
        page.content = extracted.content;
        page.content_cut = extracted.content_cut;
        page.binary = extracted.binary;
        Ok(Fetched {
            page,
            written: match file {
                Some(file) => Some(file.finish().map_err(save_error)?),
                None => None,
            },
            validators,
            body,
        })
    }

    /// Names a client error in the user's words, from the most specific cause in its chain.
    fn classify(&self, error: &reqwest::Error) -> FetchError {
        let innermost = match named_cause(error) {
            Ok(named) => return named,
            Err(innermost) => innermost,
        };
        if error.is_connect() && error.is_timeout() {
            return FetchError::ConnectTimeout(self.connect_timeout);
        }
        if error.is_timeout() {
            return FetchError::Timeout(self.timeout);
        }
        if innermost.contains("connection closed before message completed") {
            return FetchError::ConnectionClosed;
        }
        FetchError::Other(innermost)
    }
}

/// The failure an error chain names, from its most specific cause that scrape can put in words;
/// otherwise the innermost cause's message.
fn named_cause(error: &(dyn StdError + 'static)) -> Result<FetchError, String> {
    let mut cause = Some(error);
    let mut innermost = error.to_string();
    while let Some(current) = cause {
        if let Some(dns) = current.downcast_ref::<DnsError>() {
            return Ok(FetchError::Dns(dns.host.clone()));
        }
        if let Some(redirect) = current.downcast_ref::<RedirectError>() {
            return Ok(redirect.0.clone());
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Ok(FetchError::Tls(describe_tls(tls)));
        }
        innermost = current.to_string();
        cause = current.source();
        if let Some(io) = current.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return Ok(FetchError::ConnectionRefused),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                    return Ok(FetchError::ConnectionReset);
                }
                io::ErrorKind::UnexpectedEof => return Ok(FetchError::ConnectionClosed),
                _ if matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    return Ok(FetchError::TooManyOpenFiles);
                }
                _ => {}
            }
            // An io::Error's `source()` skips the error it wraps (TLS errors arrive that way).
            if let Some(inner) = io.get_ref() {
                cause = Some(inner);
            }
        }
    }
    Err(innermost)
}

/// A client for these options (the one shared client, and the connection-less one `--confirm`
/// rechecks with).
fn client_builder(options: &FetchOptions) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut builder = Client::builder()
        .user_agent(options.user_agent.clone())
        .default_headers(options.headers.clone())
        .connect_timeout(options.connect_timeout)
        .redirect(redirect_policy(options.max_redirects))
        .dns_resolver(Arc::new(SystemResolver))
        .tls_danger_accept_invalid_certs(options.insecure)
        .tls_info(options.cert_days)
        .pool_idle_timeout(Duration::from_secs(30));
    for pin in &options.resolve {
        builder = builder.resolve(&pin.host, pin.addr);
    }
    if let Some(proxy) = &options.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .with_context(|| format!("invalid --proxy URL {proxy}"))?;
        builder = builder.proxy(proxy);
    }
    let mut roots = roots::system().to_vec();
    if let Some(path) = &options.cacert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read --cacert {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .with_context(|| format!("no PEM certificate in {}", path.display()))?;
        roots.extend(certs);
    }
    Ok(builder.tls_certs_only(roots))
}

/// Under `--out-dir`: puts a fetched page's file in place (or keeps the previous copy) and says
/// which.
fn settle(fetched: Fetched, target: Target) -> (Outcome, Option<crate::record::Saved>) {
    let Fetched {
        page,
        written,
        validators,
        ..
    } = fetched;
    if page.revalidated {
        return (Outcome::Page(page), target.confirmed(validators));
    }
    match written {
        Some(written) => {
            let fallback = target.clone().kept();
            match target.settle(written, validators) {
                Ok(saved) => (Outcome::Page(page), Some(saved)),
                Err(error) => (
                    Outcome::Failed(FetchError::Save(error.to_string())),
                    fallback,
                ),
            }
        }
        None => (Outcome::Page(page), target.kept()),
    }
}

/// A header's value, when it is text.
fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whole days from `now` until a DER certificate's notAfter (negative once expired).
fn certificate_days_left(der: &[u8], now: SystemTime) -> Option<i64> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let expires = certificate.validity().not_after.timestamp();
    let now = i64::try_from(now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    Some((expires - now).div_euclid(86_400))
}

/// A TLS failure in words: what is wrong with the certificate, when that is the problem.
fn describe_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            Cert::Expired | Cert::ExpiredContext { .. } => "certificate expired".into(),
            Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
                "certificate not valid yet".into()
            }
            Cert::UnknownIssuer => "certificate signed by an unknown issuer (self-signed?)".into(),
            Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
                "certificate is for another host name".into()
            }
            Cert::Revoked => "certificate revoked".into(),
            other => format!("invalid certificate: {other}"),
        },
        rustls::Error::InvalidMessage(_) => {
            "the server did not answer in TLS (plain HTTP on an https:// URL?)".into()
        }
        other => other.to_string(),
    }
}

/// What makes two URLs one host for the per-host limit and the connection bookkeeping: host and
/// port, so two servers on one machine are two hosts.
pub fn host_and_port(url: &Url) -> (Option<&str>, Option<u16>) {
    (url.host_str(), url.port_or_known_default())
}

/// The key of the per-host limit (see `host_and_port`).
fn host_key(url: &Url) -> String {
    let (host, port) = host_and_port(url);
    format!("{}:{}", host.unwrap_or_default(), port.unwrap_or_default())
}

/// Follows up to `max` redirects to http(s) URLs, and names a loop as such.
fn redirect_policy(max: usize) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        let next = attempt.url();
        if !matches!(next.scheme(), "http" | "https") {
            let error = FetchError::BadRedirect(next.to_string());
            return attempt.error(RedirectError(error));
        }
        if attempt.previous().contains(next) {
            let error = FetchError::RedirectLoop(next.to_string());
            return attempt.error(RedirectError(error));
        }
        // `previous` starts with the requested URL, which is not a redirect.
        if attempt.previous().len() > max {
            return attempt.error(RedirectError(FetchError::TooManyRedirects(max)));
        }
        attempt.follow()
    })
}

/// A redirect that came back instead of being followed because its `Location` is no URL (reqwest
/// hands such a response over as it is): without this the 3xx would pass for the page.
fn unfollowable_redirect(response: &Response) -> Option<FetchError> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get(LOCATION)?;
    match std::str::from_utf8(location.as_bytes()).map(|l| response.url().join(l)) {
        Ok(Ok(_)) => None,
        _ => Some(FetchError::InvalidRedirect(
            String::from_utf8_lossy(location.as_bytes()).into_owned(),
        )),
    }
}

/// Carries a redirect failure through reqwest's error chain to `classify`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RedirectError(FetchError);

/// A failed name lookup, carried through reqwest's error chain to `classify`.
#[derive(Debug, thiserror::Error)]
#[error("dns lookup failed for {host}: {source}")]
struct DnsError {
    host: String,
    source: io::Error,
}

/// The system resolver (getaddrinfo on the blocking pool), with failures that name the host.
struct SystemResolver;

impl reqwest::dns::Resolve for SystemResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match tokio::net::lookup_host((host.clone(), 0)).await {
                Ok(addrs) => {
                    let addrs: reqwest::dns::Addrs =
                        Box::new(addrs.collect::<Vec<_>>().into_iter());
                    Ok(addrs)
                }
                Err(source) => Err(Box::new(DnsError { host, source }) as _),
            }
        })
    }
}

/// The per-host limits: `--per-host` slots per host with fetches in the window; a host's entry
/// goes with its last fetch, so the map's size follows the window, not the length of the list.
struct HostLimits {
    per_host: usize,
    /// False when `--per-host` is at least `--concurrency`: the global limit is the host's, and a
    /// host takes no slots of its own. Two limits that both bind move slots between the shards: a
    /// request's end hands its global slot to a waiter of the other shard before the next URL of
    /// its own shard, handed the host's slot, has come to wait for a global one, and the other
    /// shard opens a connection for it. 2000 URLs of one host at `-c 64 --per-host 64`, 8 runs:
    /// 71-245 connections with both limits, 64-105 with the global one alone.
    limited: bool,
    shards: usize,
    map: Mutex<HashMap<String, HostEntry>>,
}

struct HostEntry {
    /// `--per-host`, shared by the shards like the global limit.
    slots: Option<Arc<Slots>>,
    /// Fetches of this host in the windows: waiting for a permit, holding one, or between retries.
    users: usize,
    /// Per shard, since each shard has a connection pool of its own.
    pools: Box<[PoolUse]>,
    /// Requests of this host under way (holding a `HostPermit`), in every shard.
    running: usize,
}

/// A host's fetches in one shard, as far as its connection pool is concerned.
#[derive(Clone, Copy, Default)]
struct PoolUse {
    /// Fetches that have not sent a request yet.
    fresh: usize,
    /// Requests under way whose connection goes back to the pool afterwards.
    keeping: usize,
    /// Kept connections back in the pool that no request has taken since (as far as scrape can
    /// tell: one the server closed in the meantime still counts, and is replaced by a new one).
    idle: usize,
}

/// A fetch's claim on its host, from the moment its URL enters the window until it is done.
struct HostUse<'a> {
    limits: &'a HostLimits,
    host: String,
    shard: usize,
    slots: Option<Arc<Slots>>,
    started: std::cell::Cell<bool>,
}

/// A request's turn at its host.
///
/// It keeps its connection for later only when more URLs of the host wait in its shard's window,
/// not yet sent and with no permit to start on beside it, than there are kept connections in that
/// shard for them, idle in its pool or under way: each such URL will take a connection from the
/// pool. (10 URLs of a host at `--per-host 8`: the first 8 start at once, so 2 connections are
/// kept, not 5.) Every other request asks the server to close the connection after it. Otherwise
/// every host would leave its connections idle in the pool after its last URL, for the pool's
/// idle timeout, each holding a socket and its read buffer (~50 KB): a list of 4,000 hosts with
/// 10 URLs each and `--per-host 4` peaked at 792 MB, one of 20,000 distinct hosts at 616 MB.
struct HostPermit<'a> {
    host: &'a HostUse<'a>,
    _slot: Option<Slot>,
    keep_alive: bool,
}

impl HostLimits {
    fn new(per_host: usize, shards: usize) -> Self {
        HostLimits {
            per_host,
            limited: true,
            shards,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// No limit of a host's own: as many of its requests run at once as the global limit lets.
    fn unlimited(concurrency: usize, shards: usize) -> Self {
        HostLimits {
            limited: false,
            ..HostLimits::new(concurrency, shards)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostEntry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, host: String, shard: usize) -> HostUse<'_> {
        let slots = {
            let mut map = self.lock();
            // Most URLs find their host's entry there already: the key is copied only for a new one.
            if !map.contains_key(&host) {
                map.insert(
                    host.clone(),
                    HostEntry {
                        slots: self.limited.then(|| Slots::new(self.per_host, self.shards)),
                        users: 0,
                        pools: vec![PoolUse::default(); self.shards].into(),
                        running: 0,
                    },
                );
            }
            let entry = map.get_mut(&host).expect("inserted above");
            entry.users += 1;
            entry.pools[shard].fresh += 1;
            entry.slots.clone()
        };
        HostUse {
            limits: self,
            host,
            shard,
            slots,
            started: std::cell::Cell::new(false),
        }
    }
}

impl HostUse<'_> {
    /// Waits for the host's turn: one of its slots, if it has a limit of its own.
    async fn turn(&self) -> Option<Slot> {
        Some(self.slots.as_ref()?.acquire(self.shard).await)
    }

    /// The request is about to be sent on its host's `slot` (and a global one): whether it keeps
    /// its connection is decided now rather than when the host's turn came, since URLs of the host
    /// may have entered the window while it waited for a global permit. (Decided at its turn, a
    /// host's first requests often saw none of its other URLs: 400 hosts of 10 URLs at `-c 64
    /// --per-host 4` opened 6 connections a host and left ~1 a host open; now 4, all closed.)
    fn start(&self, slot: Option<Slot>) -> HostPermit<'_> {
        let mut map = self.limits.lock();
        let entry = map
            .get_mut(&self.host)
            .expect("a host's entry lives while it has users");
        // As many waiting URLs as there are permits not taken by requests under way start beside
        // this request (some may hold theirs already, waiting for a global one); the others wait
        // for one of the host's requests to end.
        entry.running += 1;
        let free = self.limits.per_host.saturating_sub(entry.running);
        let pool = &mut entry.pools[self.shard];
        if !self.started.replace(true) {
            pool.fresh -= 1;
        }
        // The request takes an idle connection if there is one, and so do the URLs that start
        // beside it; the URLs that will wait have what is left of them and the kept ones under way.
        // (Counting the idle ones for the waiting URLs too, a host's last URLs at `-c 2` found
        // its connections taken and opened a third: 253 connections for 100 hosts of 10 URLs
        // with a window of 64, 200 now.)
        pool.idle = pool.idle.saturating_sub(1);
        let beside = free.min(pool.fresh);
        let keep_alive = pool.fresh - beside > pool.keeping + pool.idle.saturating_sub(beside);
        pool.keeping += usize::from(keep_alive);
        HostPermit {
            host: self,
            _slot: slot,
            keep_alive,
        }
    }
}

impl Drop for HostPermit<'_> {
    fn drop(&mut self) {
        let mut map = self.host.limits.lock();
        if let Some(entry) = map.get_mut(&self.host.host) {
            entry.running -= 1;
            let pool = &mut entry.pools[self.host.shard];
            pool.keeping -= usize::from(self.keep_alive);
            pool.idle += usize::from(self.keep_alive);
        }
    }
}

impl Drop for HostUse<'_> {
    fn drop(&mut self) {
        let mut map = self.limits.lock();
        if let Some(entry) = map.get_mut(&self.host) {
            entry.users -= 1;
            entry.pools[self.shard].fresh -= usize::from(!self.started.get());
            if entry.users == 0 {
                map.remove(&self.host);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's permits at its host, as `Fetcher::permits` takes them (without a global one).
    async fn acquire<'a>(host: &'a HostUse<'a>) -> HostPermit<'a> {
        host.start(host.turn().await)
    }

    #[test]
    fn host_keys_include_the_port() {
        let key = |u: &str| host_key(&Url::parse(u).expect("url"));
        assert_eq!(key("http://example.com/a"), "example.com:80");
        assert_eq!(key("https://example.com/a"), "example.com:443");
        assert_eq!(key("http://[::1]:8080/"), "[::1]:8080");
    }

    /// An error that wraps another, as hyper and reqwest wrap the causes they pass on.
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Wrapper(#[source] Box<dyn StdError + Send + Sync>);

    #[test]
    fn causes_deep_in_the_chain_are_named() {
        let dns = Wrapper(Box::new(DnsError {
            host: "example.invalid".into(),
            source: io::Error::other("Name or service not known"),
        }));
        assert_eq!(
            named_cause(&dns),
            Ok(FetchError::Dns("example.invalid".into()))
        );

        // TLS errors arrive inside io::Errors nested in io::Errors.
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        let nested = Wrapper(Box::new(io::Error::other(tls)));
        assert_eq!(
            named_cause(&nested),
            Ok(FetchError::Tls("certificate expired".into()))
        );

        let refused = Wrapper(Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(named_cause(&refused), Ok(FetchError::ConnectionRefused));

        let out_of_files = Wrapper(Box::new(io::Error::from_raw_os_error(libc::EMFILE)));
        assert_eq!(named_cause(&out_of_files), Ok(FetchError::TooManyOpenFiles));

        let unknown = Wrapper(Box::new(io::Error::other("something odd")));
        assert_eq!(named_cause(&unknown), Err("something odd".into()));
    }

    #[test]
    fn certificate_days_are_counted_to_not_after() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["example.test".into()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2030, 1, 31);
        let cert = params.self_signed(&key).expect("certificate");
        let day = |y, m, d| {
            let t = rcgen::date_time_ymd(y, m, d).unix_timestamp();
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).expect("after 1970"))
        };
        assert_eq!(certificate_days_left(cert.der(), day(2030, 1, 1)), Some(30));
        assert_eq!(certificate_days_left(cert.der(), day(2030, 2, 1)), Some(-1));
        assert_eq!(
            certificate_days_left(b"not a certificate", day(2030, 1, 1)),
            None
        );
    }

    #[tokio::test]
    async fn host_entries_go_away_with_their_last_fetch() {
        let limits = HostLimits::new(2, 1);
        {
            let a = limits.register("a:80".into(), 0);
            let b = limits.register("a:80".into(), 0);
            let c = limits.register("b:80".into(), 0);
            let _permits = (acquire(&a).await, acquire(&b).await, acquire(&c).await);
            assert_eq!(limits.lock().len(), 2);
        }
        assert!(limits.lock().is_empty());
    }

    #[tokio::test]
    async fn a_host_never_exceeds_its_limit() {
        let limits = HostLimits::new(1, 1);
        let (a1, a2, b) = (
            limits.register("a:80".into(), 0),
            limits.register("a:80".into(), 0),
            limits.register("b:80".into(), 0),
        );
        let first = acquire(&a1).await;
        let second = tokio::time::timeout(Duration::from_millis(50), acquire(&a2)).await;
        assert!(second.is_err(), "a second permit was granted");
        let other = tokio::time::timeout(Duration::from_millis(50), acquire(&b)).await;
        assert!(other.is_ok(), "another host was blocked");
        drop(first);
    }

    #[tokio::test]
    async fn a_request_keeps_its_connection_only_for_a_url_still_waiting() {
        let limits = HostLimits::new(2, 1);
        let uses: Vec<HostUse<'_>> = (0..3).map(|_| limits.register("a:80".into(), 0)).collect();
        let lone = limits.register("b:80".into(), 0);
        // Two run, one waits: only one of the two connections will be wanted again.
        let first = acquire(&uses[0]).await;
        let second = acquire(&uses[1]).await;
        assert!(first.keep_alive);
        assert!(!second.keep_alive);
        assert!(!acquire(&lone).await.keep_alive, "a host's only URL");
        drop(first);
        // The waiting URL takes the kept connection, and nothing waits after it.
        assert!(!acquire(&uses[2]).await.keep_alive);
    }

    #[tokio::test]
    async fn urls_that_start_beside_a_request_do_not_make_it_keep_its_connection() {
        // 10 URLs at --per-host 8: the first 8 start at once on connections of their own, and
        // only the 2 left wait for one, so only 2 connections are kept.
        let limits = HostLimits::new(8, 1);
        let uses: Vec<HostUse<'_>> = (0..10).map(|_| limits.register("a:80".into(), 0)).collect();
        let mut running = Vec::new();
        for host in &uses[..8] {
            running.push(acquire(host).await);
        }
        let kept = running.iter().filter(|permit| permit.keep_alive).count();
        assert_eq!(kept, 2);
    }

    #[tokio::test]
    async fn a_connection_back_in_the_pool_counts_for_the_urls_waiting() {
        let limits = HostLimits::new(2, 1);
        let uses: Vec<HostUse<'_>> = (0..4).map(|_| limits.register("a:80".into(), 0)).collect();
        let first = acquire(&uses[0]).await;
        let second = acquire(&uses[1]).await;
        assert!(
            first.keep_alive && second.keep_alive,
            "two URLs wait for two connections"
        );
        drop((first, second));
        // Both kept connections are idle now: each of the last two URLs takes one and closes it.
        assert!(!acquire(&uses[2]).await.keep_alive);
        assert!(!acquire(&uses[3]).await.keep_alive);
    }

    #[tokio::test]
    async fn urls_that_start_beside_a_request_take_idle_connections_before_the_waiting_ones() {
        // 5 URLs at --per-host 2: the first two keep their connections for the three behind.
        let limits = HostLimits::new(2, 1);
        let uses: Vec<HostUse<'_>> = (0..5).map(|_| limits.register("a:80".into(), 0)).collect();
        drop((acquire(&uses[0]).await, acquire(&uses[1]).await));
        // Both are idle. The third URL takes one and the fourth, starting beside it, the other:
        // the fifth can only have the third's, so the third keeps it.
        let third = acquire(&uses[2]).await;
        assert!(
            third.keep_alive,
            "the last URL would have to open a connection"
        );
        let fourth = acquire(&uses[3]).await;
        assert!(!fourth.keep_alive, "nothing waits for a second connection");
        drop((third, fourth));
        assert!(!acquire(&uses[4]).await.keep_alive);
    }

    #[tokio::test]
    async fn a_host_without_a_limit_of_its_own_starts_every_url_at_once() {
        use futures::FutureExt;
        let limits = HostLimits::unlimited(2, 2);
        let uses: Vec<HostUse<'_>> = (0..3)
            .map(|i| limits.register("a:80".into(), i % 2))
            .collect();
        let turns: Vec<Option<Slot>> = uses
            .iter()
            .map(|host| host.turn().now_or_never().expect("no wait"))
            .collect();
        assert!(turns.iter().all(Option::is_none), "no slot is taken");
    }

    #[tokio::test]
    async fn a_connection_is_kept_only_for_a_url_of_the_same_shard() {
        let limits = HostLimits::new(4, 2);
        let first = limits.register("a:80".into(), 0);
        let _elsewhere = limits.register("a:80".into(), 1);
        assert!(
            !acquire(&first).await.keep_alive,
            "the URL waiting in shard 1 cannot use shard 0's pool"
        );
    }
}
