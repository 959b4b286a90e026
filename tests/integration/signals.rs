//! Ctrl-C and SIGTERM: stop within a second, keep what completed, print the summary, exit 130/143.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{TestServer, finish, list, scrape, signal};

fn stop_mid_run(signal_name: &str, expected_code: i32) {
    let server = TestServer::start();
    let file = list(&[
        server.url("/page/done-1"),
        server.url("/hang?1"),
        server.url("/page/done-2"),
        server.url("/hang?2"),
    ]);
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress", "-t", "60s"])
        .arg(file.path());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let _ = tx.send(());
            lines.push(line);
        }
        lines
    });
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the fast pages complete");
    }
    signal(&child, signal_name);
    let stopped = Instant::now();
    let out = finish(child);
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "took {:?} to stop",
        stopped.elapsed()
    );
    assert_eq!(out.code, expected_code, "{out:?}");
    let lines = reader.join().expect("reader");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains("/page/done-")), "{lines:?}");
    assert!(out.stderr.contains("results so far"), "{}", out.stderr);
    assert!(out.stderr.contains("2 URLs in "), "{}", out.stderr);
}

#[test]
fn ctrl_c_stops_promptly_with_the_summary_and_exit_130() {
    stop_mid_run("INT", 130);
}

#[test]
fn sigterm_stops_promptly_with_the_summary_and_exit_143() {
    stop_mid_run("TERM", 143);
}
