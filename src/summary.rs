//! The run's tally, in constant memory: counts by outcome, a status-code histogram, bytes, and a
//! fixed-size latency histogram (HdrHistogram) instead of a list of every latency. Renders the
//! closing summary printed on stderr.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::error::FetchError;
use crate::mirror::Gone;
use crate::output::{format_elapsed, format_size};
use crate::record::{Change, Outcome, Record};

/// Latencies are recorded in microseconds, from 1 µs to one hour, to 3 significant digits.
const MAX_LATENCY_US: u64 = 3_600_000_000;

pub struct Summary {
    ok: u64,
    /// Responses whose status was not a success.
    http_failed: u64,
    /// Fetches with no response, by kind of failure (`timeout`, `connection`, …).
    errors: BTreeMap<(&'static str, &'static str), u64>,
    invalid: u64,
    duplicates: u64,
    /// Not requested (`--skip-existing`).
    skipped: u64,
    /// Under `--out-dir`: pages by what happened to their file.
    new: u64,
    changed: u64,
    unchanged: u64,
    kept: u64,
    save_errors: u64,
    gone: Option<Gone>,
    truncated: u64,
    statuses: BTreeMap<u16, u64>,
    bytes: u64,
    latency: Histogram<u64>,
    /// With `--host-stats`: counts and latencies per host (host and port).
    hosts: Option<BTreeMap<String, HostStats>>,
}

/// One host's share of the run. Its histogram is coarser than the run's (milliseconds, two
/// significant digits: about 2 KB), since there can be many hosts.
#[derive(Debug, Clone)]
struct HostStats {
    ok: u64,
    failed: u64,
    latency_ms: Histogram<u64>,
}

impl HostStats {
    fn new() -> Self {
        HostStats {
            ok: 0,
            failed: 0,
            latency_ms: Histogram::new_with_bounds(1, MAX_LATENCY_US / 1000, 2)
                .expect("the histogram bounds are valid"),
        }
    }
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            ok: 0,
            http_failed: 0,
            errors: BTreeMap::new(),
            invalid: 0,
            duplicates: 0,
            skipped: 0,
            new: 0,
            changed: 0,
            unchanged: 0,
            kept: 0,
            save_errors: 0,
            gone: None,
            truncated: 0,
            statuses: BTreeMap::new(),
            bytes: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("the histogram bounds are valid"),
            hosts: None,
        }
    }
}

impl Summary {
    /// A summary that also keeps per-host statistics (`--host-stats`).
    pub fn with_host_stats() -> Self {
        Summary {
            hosts: Some(BTreeMap::new()),
            ..Summary::default()
        }
    }

    pub fn add(&mut self, record: &Record) {
        if let Some(hosts) = &mut self.hosts
            && let Ok(url) = url::Url::parse(&record.url)
            && let Some(host) = url.host_str()
        {
            let key = format!("{host}:{}", url.port_or_known_default().unwrap_or_default());
            let stats = hosts.entry(key).or_insert_with(HostStats::new);
            if record.is_ok() {
                stats.ok += 1;
            } else {
                stats.failed += 1;
            }
            if record.page().is_some() {
                let ms = u64::try_from(record.elapsed.as_millis()).unwrap_or(u64::MAX);
                stats
                    .latency_ms
                    .saturating_record(ms.clamp(1, MAX_LATENCY_US / 1000));
            }
        }
        match &record.outcome {
            Outcome::Page(page) => {
                *self.statuses.entry(page.status).or_default() += 1;
                self.bytes += page.bytes;
                self.truncated += u64::from(page.truncated);
                if page.is_success() {
                    self.ok += 1;
                } else {
                    self.http_failed += 1;
                }
                let micros = u64::try_from(record.elapsed.as_micros()).unwrap_or(u64::MAX);
                self.latency
                    .saturating_record(micros.clamp(1, MAX_LATENCY_US));
            }
            Outcome::Failed(error) => {
                *self.errors.entry(error.kind()).or_default() += 1;
                self.save_errors += u64::from(matches!(error, FetchError::Save(_)));
            }
            Outcome::Invalid(_) => self.invalid += 1,
            Outcome::Skipped => self.skipped += 1,
        }
        if let Some(saved) = &record.saved {
            *match saved.change {
                Change::New => &mut self.new,
                Change::Changed => &mut self.changed,
                Change::Unchanged => &mut self.unchanged,
                Change::Kept => &mut self.kept,
            } += 1;
        }
    }

    /// The previous manifest's URLs that this run's list no longer has.
    pub fn set_gone(&mut self, gone: Gone) {
        self.gone = Some(gone);
    }

    /// Pages whose saved file could not be written: an output error for the exit code.
    pub fn save_errors(&self) -> u64 {
        self.save_errors
    }

    /// Pages saved for the first time or with new content.
    pub fn changed(&self) -> u64 {
        self.new + self.changed
    }

    pub fn add_duplicate(&mut self) {
        self.duplicates += 1;
    }

    /// Requests sent (invalid lines and skipped URLs send none) per second of `wall`.
    fn requests_per_s(&self, wall: Duration) -> f64 {
        let requests = self.entries() - self.invalid - self.skipped;
        requests as f64 / wall.as_secs_f64().max(1e-3)
    }

    /// A latency quantile (0 to 1) of the answered requests; `None` before any answer.
    pub fn latency_at(&self, quantile: f64) -> Option<Duration> {
        (!self.latency.is_empty())
            .then(|| Duration::from_micros(self.latency.value_at_quantile(quantile)))
    }

    /// Entries that passed, in percent (100 for an empty run).
    pub fn success_percent(&self) -> f64 {
        let entries = self.entries();
        if entries == 0 {
            100.0
        } else {
            (self.ok + self.skipped) as f64 * 100.0 / entries as f64
        }
    }

    /// Entries that count as failed for the exit code.
    pub fn failed(&self) -> u64 {
        self.http_failed + self.errors.values().sum::<u64>() + self.invalid
    }

    pub fn entries(&self) -> u64 {
        self.ok + self.skipped + self.failed()
    }

    /// The closing summary, a few lines of plain text.
    pub fn render(&self, out: &mut dyn Write, wall: Duration) -> io::Result<()> {
        let entries = self.entries();
        let rate = self.requests_per_s(wall);
        write!(
            out,
            "{entries} URLs in {}: {} ok",
            format_elapsed(wall),
            self.ok + self.skipped
        )?;
        write!(out, ", {} failed", self.failed())?;
        let mut reasons: Vec<String> = Vec::new();
        if self.http_failed > 0 {
            reasons.push(count(self.http_failed, ("HTTP error", "HTTP errors")));
        }
        reasons.extend(self.errors.iter().map(|(&kind, &n)| count(n, kind)));
        if self.invalid > 0 {
            reasons.push(count(self.invalid, ("invalid line", "invalid lines")));
        }
        if !reasons.is_empty() {
            write!(out, " ({})", reasons.join(", "))?;
        }
        if self.duplicates > 0 {
            let duplicates = count(self.duplicates, ("duplicate", "duplicates"));
            write!(out, "; {duplicates} skipped")?;
        }
        writeln!(out)?;
        if !self.statuses.is_empty() {
            let statuses: Vec<String> = self
                .statuses
                .iter()
                .map(|(status, n)| format!("{status}: {n}"))
                .collect();
            writeln!(out, "status    {}", statuses.join("  "))?;
        }
        write!(out, "received  {}", format_size(self.bytes))?;
        if self.truncated > 0 {
            write!(out, " ({} truncated at --max-bytes)", self.truncated)?;
        }
        writeln!(out, ", {rate:.1} requests/s")?;
        self.render_mirror(out)?;
        self.render_hosts(out)?;
        if !self.latency.is_empty() {
            let at =
                |q: f64| format_elapsed(Duration::from_micros(self.latency.value_at_quantile(q)));
            writeln!(
                out,
                "latency   p50 {}  p90 {}  p95 {}  p99 {}  max {}",
                at(0.50),
                at(0.90),
                at(0.95),
                at(0.99),
                format_elapsed(Duration::from_micros(self.latency.max()))
            )?;
        }
        Ok(())
    }
}

impl Summary {
    /// The `--host-stats` table.
    fn render_hosts(&self, out: &mut dyn Write) -> io::Result<()> {
        let Some(hosts) = &self.hosts else {
            return Ok(());
        };
        let width = hosts.keys().map(String::len).max().unwrap_or(4).max(4);
        writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>7}  {:>7}  {:>7}  {:>7}",
            "host", "ok", "failed", "p50", "p90", "p99", "max"
        )?;
        for (host, stats) in hosts {
            let at = |q: f64| {
                if stats.latency_ms.is_empty() {
                    "-".to_string()
                } else {
                    format_elapsed(Duration::from_millis(stats.latency_ms.value_at_quantile(q)))
                }
            };
            writeln!(
                out,
                "{:<width$}  {:>6}  {:>6}  {:>7}  {:>7}  {:>7}  {:>7}",
                crate::sanitize::clean(host),
                stats.ok,
                stats.failed,
                at(0.50),
                at(0.90),
                at(0.99),
                at(1.0)
            )?;
        }
        Ok(())
    }

    /// The `--out-dir` lines: what happened to the files, and URLs gone from the list.
    fn render_mirror(&self, out: &mut dyn Write) -> io::Result<()> {
        let Some(gone) = &self.gone else {
            return Ok(());
        };
        write!(
            out,
            "saved     {} new, {} changed, {} unchanged, {} failed",
            self.new,
            self.changed,
            self.unchanged,
            // The URLs whose page could not be had; an invalid line was never a page.
            self.failed() - self.invalid
        )?;
        if self.kept > 0 {
            write!(out, " ({} kept the previous copy)", self.kept)?;
        }
        writeln!(out)?;
        if gone.count > 0 {
            let fate = if gone.pruned > 0 {
                format!("{} files removed", gone.pruned)
            } else {
                "files kept; --prune removes them".to_string()
            };
            writeln!(
                out,
                "gone      {} no longer in the list ({fate}):",
                gone.count
            )?;
            const SHOWN: usize = 10;
            for url in gone.urls.iter().take(SHOWN) {
                writeln!(out, "          {}", crate::sanitize::clean(url))?;
            }
            if gone.urls.len() > SHOWN {
                writeln!(out, "          … and {} more", gone.urls.len() - SHOWN)?;
            }
        }
        Ok(())
    }
}

/// The run's totals, as reports carry them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub entries: u64,
    pub ok: u64,
    pub failed: u64,
    pub duplicates: u64,
    pub wall_s: f64,
    pub requests_per_s: f64,
    pub bytes: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub latency_ms: LatencyMs,
}

/// Latency percentiles of the answered requests, in milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LatencyMs {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Summary {
    pub fn totals(&self, wall: Duration) -> Totals {
        let ms = |micros: u64| micros / 1000;
        Totals {
            entries: self.entries(),
            ok: self.ok + self.skipped,
            failed: self.failed(),
            duplicates: self.duplicates,
            wall_s: wall.as_secs_f64(),
            requests_per_s: self.requests_per_s(wall),
            bytes: self.bytes,
            statuses: self.statuses.clone(),
            latency_ms: if self.latency.is_empty() {
                LatencyMs::default()
            } else {
                LatencyMs {
                    p50: ms(self.latency.value_at_quantile(0.50)),
                    p90: ms(self.latency.value_at_quantile(0.90)),
                    p99: ms(self.latency.value_at_quantile(0.99)),
                    max: ms(self.latency.max()),
                }
            },
        }
    }
}

/// `1 timeout`, `2 timeouts`.
fn count(n: u64, (singular, plural): (&str, &str)) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{FetchError, InputError};
    use crate::record::{Page, Source};
    use std::sync::Arc;

    fn record(outcome: Outcome, millis: u64) -> Record {
        Record {
            url: "http://x/".into(),
            source: Source {
                file: Arc::from("-"),
                line: 1,
            },
            elapsed: Duration::from_millis(millis),
            attempts: 1,
            outcome,
            saved: None,
            recheck: None,
        }
    }

    fn page(status: u16) -> Outcome {
        Outcome::Page(Page {
            status,
            accepted: (200..300).contains(&status),
            bytes: 1000,
            ..Page::default()
        })
    }

    /// The summary as the user sees it on stderr, after a run of `wall`.
    fn rendered(summary: &Summary, wall: Duration) -> String {
        let mut out = Vec::new();
        summary.render(&mut out, wall).expect("render");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn the_saved_line_counts_failed_pages_not_invalid_lines() {
        let mut summary = Summary::default();
        summary.add(&record(page(503), 5));
        summary.add(&record(Outcome::Invalid(InputError::Whitespace), 0));
        summary.set_gone(Gone::default());
        let text = rendered(&summary, Duration::from_secs(1));
        assert!(
            text.contains("saved     0 new, 0 changed, 0 unchanged, 1 failed\n"),
            "{text}"
        );
    }

    #[test]
    fn counts_by_outcome_and_status() {
        let mut summary = Summary::default();
        for ms in 1..=100 {
            summary.add(&record(page(200), ms));
        }
        summary.add(&record(page(404), 5));
        summary.add(&record(Outcome::Failed(FetchError::ConnectionRefused), 1));
        summary.add(&record(Outcome::Invalid(InputError::Whitespace), 0));
        summary.add_duplicate();
        assert_eq!(summary.failed(), 3);
        assert_eq!(summary.entries(), 103);

        let text = rendered(&summary, Duration::from_secs(2));
        assert!(
            text.starts_with(
                "103 URLs in 2.00s: 100 ok, 3 failed (1 HTTP error, 1 connection error, 1 invalid line); \
                 1 duplicate skipped\n"
            ),
            "{text}"
        );
        assert!(text.contains("status    200: 100  404: 1\n"), "{text}");
        assert!(
            text.contains("received  98.6 KiB, 51.0 requests/s"),
            "{text}"
        );
        assert!(
            text.contains("latency   p50 50ms  p90 90ms  p95 95ms  p99 99ms  max 100ms"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_run_renders_without_latency() {
        let text = rendered(&Summary::default(), Duration::from_millis(5));
        assert!(
            text.starts_with("0 URLs in 5ms: 0 ok, 0 failed\n"),
            "{text}"
        );
        assert!(!text.contains("latency"));
    }
}
