//! SLO gates on a whole run (`--slo 'p95<800ms'`, `--slo 'success>=99.5%'`): parsed up front,
//! evaluated once at the end against the summary; a missed gate fails the run.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::output::format_elapsed;
use crate::summary::Summary;

/// One gate: a measure of the run, a comparison, and a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    text: String,
    measure: Measure,
    comparison: Comparison,
    /// Milliseconds for latencies, percent for success.
    target: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Measure {
    /// A latency percentile (0–100] of the answered requests.
    Latency(f64),
    MaxLatency,
    /// Entries that passed, in percent.
    Success,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// How a gate came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub met: bool,
    /// The measured value, in the gate's unit (`420ms`, `99.0%`).
    pub measured: String,
}

impl FromStr for Slo {
    type Err = String;

    /// `p95<800ms`, `p99<=2s`, `max<5s`, `success>=99.5%` (spaces allowed around the operator).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("--slo '{text}': {why}");
        let at = text
            .find(['<', '>'])
            .ok_or_else(|| bad("expected a comparison such as p95<800ms or success>=99%"))?;
        let (name, rest) = text.split_at(at);
        let (comparison, value) = if let Some(value) = rest.strip_prefix("<=") {
            (Comparison::LessOrEqual, value)
        } else if let Some(value) = rest.strip_prefix(">=") {
            (Comparison::GreaterOrEqual, value)
        } else if let Some(value) = rest.strip_prefix('<') {
            (Comparison::Less, value)
        } else {
            (Comparison::Greater, &rest[1..])
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        let measure = match name.as_str() {
            "success" | "ok" => Measure::Success,
            "max" => Measure::MaxLatency,
            percentile => {
                let number = percentile
                    .strip_prefix('p')
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|n| *n > 0.0 && *n <= 100.0)
                    .ok_or_else(|| {
                        bad("the measure is pNN (a latency percentile), max or success")
                    })?;
                Measure::Latency(number)
            }
        };
        let target = match measure {
            Measure::Success => value
                .trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| bad("success takes a percentage such as 99.5%"))?,
            _ => {
                humantime::parse_duration(value)
                    .map_err(|e| bad(&format!("'{value}' is not a duration ({e})")))?
                    .as_secs_f64()
                    * 1000.0
            }
        };
        Ok(Slo {
            text: text.trim().to_string(),
            measure,
            comparison,
            target,
        })
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Slo {
    /// Measures the run; a latency gate with no answered request is met (nothing was slow) and a
    /// success gate with no entry is met too.
    pub fn evaluate(&self, summary: &Summary) -> Verdict {
        let (value, measured) = match self.measure {
            Measure::Success => {
                let percent = summary.success_percent();
                (percent, format!("{percent:.1}%"))
            }
            Measure::Latency(percentile) => latency(summary.latency_at(percentile / 100.0)),
            Measure::MaxLatency => latency(summary.latency_at(1.0)),
        };
        let met = match self.comparison {
            Comparison::Less => value < self.target,
            Comparison::LessOrEqual => value <= self.target,
            Comparison::Greater => value > self.target,
            Comparison::GreaterOrEqual => value >= self.target,
        };
        Verdict { met, measured }
    }
}

fn latency(value: Option<Duration>) -> (f64, String) {
    match value {
        Some(d) => (d.as_secs_f64() * 1000.0, format_elapsed(d)),
        None => (0.0, "no answers".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, Page, Record, Source};
    use std::sync::Arc;

    fn summary(latencies_ms: &[u64], failed: usize) -> Summary {
        let mut summary = Summary::default();
        let record = |outcome, ms| Record {
            url: "http://x/".into(),
            source: Source {
                file: Arc::from("-"),
                line: 1,
            },
            elapsed: Duration::from_millis(ms),
            attempts: 1,
            outcome,
            saved: None,
            recheck: None,
        };
        for &ms in latencies_ms {
            let page = Page {
                status: 200,
                accepted: true,
                ..Page::default()
            };
            summary.add(&record(Outcome::Page(page), ms));
        }
        for _ in 0..failed {
            summary.add(&record(
                Outcome::Failed(crate::error::FetchError::ConnectionRefused),
                1,
            ));
        }
        summary
    }

    #[test]
    fn gates_parse() {
        assert!("p95<800ms".parse::<Slo>().is_ok());
        assert!("p99 <= 2s".parse::<Slo>().is_ok());
        assert!("success>=99.5%".parse::<Slo>().is_ok());
        assert!("max<5s".parse::<Slo>().is_ok());
        assert!("p95".parse::<Slo>().is_err());
        assert!("p0<1s".parse::<Slo>().is_err());
        assert!("p95<fast".parse::<Slo>().is_err());
        assert!("success>=120%".parse::<Slo>().is_err());
        assert!("speed<1s".parse::<Slo>().is_err());
    }

    #[test]
    fn gates_compare_the_measured_value() {
        let run = summary(&(1..=100).collect::<Vec<_>>(), 0);
        let p95: Slo = "p95<800ms".parse().expect("valid");
        assert!(p95.evaluate(&run).met);
        let tight: Slo = "p95<50ms".parse().expect("valid");
        let verdict = tight.evaluate(&run);
        assert!(!verdict.met);
        assert_eq!(verdict.measured, "95ms");

        let flaky = summary(&[10; 99], 1);
        let success: Slo = "success>=99.5%".parse().expect("valid");
        let verdict = success.evaluate(&flaky);
        assert!(!verdict.met);
        assert_eq!(verdict.measured, "99.0%");
        assert!(
            "success>=99%"
                .parse::<Slo>()
                .expect("valid")
                .evaluate(&flaky)
                .met
        );
    }
}
