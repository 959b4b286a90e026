//! Retry policy as pure functions: which answers are worth another attempt, and how long to wait
//! before it. The loop that sleeps and retries lives in `fetch`.

use std::time::{Duration, SystemTime};

/// The wait before the first retry; each further retry doubles it.
pub const BASE_BACKOFF: Duration = Duration::from_millis(250);
/// No computed backoff is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A server's `Retry-After` is honoured up to this; a longer wait is cut to it, so one host cannot
/// stall a run for an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Statuses that mean "try again later": rate limiting and a struggling gateway or upstream. Other
/// 4xx and 5xx answers are final.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The wait before retry number `retry` (1 for the first retry): exponential, capped, with "equal
/// jitter" so that many URLs failing together do not retry in lockstep. `jitter` is uniform in
/// [0, 1): the wait lies in [half, all] of the exponential value.
pub fn backoff(retry: u32, jitter: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(16);
    let full = BASE_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP date, capped at
/// `MAX_RETRY_AFTER`; `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let when = httpdate::parse_http_date(value).ok()?;
            when.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_gateway_answers_are_retried() {
        for status in [429, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 301, 400, 401, 403, 404, 410, 500, 501] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        assert_eq!(backoff(1, 0.999_999).as_millis(), 249);
        assert_eq!(backoff(1, 0.0), Duration::from_millis(125));
        assert_eq!(backoff(2, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(3, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(30, 0.0), MAX_BACKOFF / 2);
        assert!(backoff(30, 1.0) <= MAX_BACKOFF);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("3600", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(5)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
