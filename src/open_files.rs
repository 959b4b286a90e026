//! The limit on open files. Every request in flight holds a socket, and under `--out-dir` a
//! temporary file too, so a concurrency above what the limit allows makes the requests past it
//! fail with "Too many open files" and their results are lost. The soft limit is raised to the
//! hard one, as lychee does; when even that is too low (a container or a shell with `ulimit -n`),
//! the concurrency is lowered to fit, with a warning, instead.

use crate::config::Config;

/// Descriptors kept for what is not a request: stdio, each shard's poll and waker, the input and
/// its counting thread, the manifest, the duplicate set's spill files (two for each run on disk).
const RESERVED: u64 = 64;

/// Raises the soft limit on open files as far as the hard limit allows; the limit now in force,
/// when it can be read.
pub fn raise_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// Lowers `--concurrency` (and `--per-host` with it) to what `limit` open files can carry; the
/// warning to print when it had to.
pub fn fit(config: &mut Config, limit: u64) -> Option<String> {
    let reserved = RESERVED + config.output.reports.len() as u64;
    let most = most_requests(limit, reserved, config.mirror.is_some());
    let fetch = &mut config.fetch;
    if fetch.concurrency <= most {
        return None;
    }
    let warning = format!(
        "lowering --concurrency from {} to {most}: only {limit} files may be open (ulimit -n)",
        fetch.concurrency
    );
    fetch.concurrency = most;
    fetch.per_host = fetch.per_host.min(most);
    Some(warning)
}

/// How many requests fit in flight under `limit` open files with `reserved` of them kept aside:
/// each needs its socket and a spare for a connection the pool holds idle, and when saving its
/// temporary file. At least one, so a run always makes progress.
fn most_requests(limit: u64, reserved: u64, saving: bool) -> usize {
    let per_request = if saving { 3 } else { 2 };
    let most = limit.saturating_sub(reserved) / per_request;
    usize::try_from(most).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_share_what_is_left_after_the_reserve() {
        assert_eq!(most_requests(1024, 64, false), 480);
        assert_eq!(most_requests(1024, 64, true), 320);
        assert_eq!(most_requests(100, 64, false), 18);
    }

    #[test]
    fn a_limit_below_the_reserve_still_allows_one_request() {
        assert_eq!(most_requests(20, 64, false), 1);
        assert_eq!(most_requests(0, 64, true), 1);
    }

    fn config(args: &[&str]) -> Config {
        <crate::Cli as clap::Parser>::try_parse_from(["scrape"].iter().chain(args).copied())
            .expect("valid arguments")
            .into_config(false)
            .expect("a valid configuration")
    }

    #[test]
    fn a_concurrency_over_the_limit_is_lowered_with_the_per_host_limit() {
        let mut config = config(&["-c", "300", "--per-host", "300", "urls.txt"]);
        let warning = fit(&mut config, 100).expect("a warning");
        assert_eq!((config.fetch.concurrency, config.fetch.per_host), (18, 18));
        assert_eq!(
            warning,
            "lowering --concurrency from 300 to 18: only 100 files may be open (ulimit -n)"
        );
    }

    #[test]
    fn a_concurrency_under_the_limit_is_left_alone() {
        let mut config = config(&["-c", "300", "urls.txt"]);
        assert_eq!(fit(&mut config, 1 << 20), None);
        assert_eq!((config.fetch.concurrency, config.fetch.per_host), (300, 8));
    }
}
