//! What a user sees: the text format, the summary, quiet mode, preview length, sanitising, and a
//! closed stdout.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{TestServer, list, run, run_jsonl, scrape, scrape_in_terminal};

fn run_text(urls: &[String], args: &[&str]) -> crate::support::Run {
    let file = list(urls);
    let mut cmd = scrape();
    cmd.arg("--no-progress").args(args).arg(file.path());
    run(cmd)
}

#[test]
fn text_lines_show_status_time_size_url_title_and_preview() {
    let server = TestServer::start();
    let out = run_text(&[server.url("/page/a"), server.url("/status/404")], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let ok = out
        .stdout
        .lines()
        .find(|l| l.contains("/page/a"))
        .expect("line for /page/a");
    assert!(ok.starts_with("200 "), "{ok}");
    assert!(ok.contains(" B  ") || ok.contains("KiB"), "{ok}");
    assert!(ok.ends_with("[Page a]  Heading a Text of page a."), "{ok}");
    let missing = out
        .stdout
        .lines()
        .find(|l| l.contains("/status/404"))
        .expect("404 line");
    assert!(missing.starts_with("404 "), "{missing}");
}

#[test]
fn the_summary_counts_outcomes_statuses_and_latency() {
    let server = TestServer::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let out = run_text(
        &[
            server.url("/page/1"),
            server.url("/page/2"),
            server.url("/status/404"),
            refused,
        ],
        &["--retries", "0"],
    );
    assert!(
        out.stderr.contains("4 URLs in ")
            && out
                .stderr
                .contains(": 2 ok, 2 failed (1 HTTP error, 1 connection error)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("status    200: 2  404: 1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("latency   p50 "), "{}", out.stderr);
    assert!(out.stderr.contains("requests/s"), "{}", out.stderr);
}

#[test]
fn in_a_terminal_the_progress_bar_never_breaks_into_a_line() {
    let server = TestServer::start();
    let urls: Vec<String> = (0..1000)
        .map(|n| server.url(&format!("/page/{n}")))
        .collect();
    let file = list(&urls);
    let path = file.path().to_str().expect("a UTF-8 temp path");
    let out = run(scrape_in_terminal(&["-c", "16", path]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("/1000 ["), "no bar was drawn");
    // The bar is drawn and erased (`\r`, then ESC [2K) on the line below the last line printed;
    // what follows the last erase on a terminal line is what stays on screen.
    let mut shown = std::collections::HashSet::new();
    for line in out.stdout.split("\r\n") {
        let Some(url_at) = line.find("http://") else {
            continue;
        };
        let kept = line.rsplit("\r\x1b[2K").next().unwrap_or(line);
        assert!(
            kept.starts_with("200 "),
            "a line broken by the bar: {line:?}"
        );
        assert_eq!(line.matches("http://").count(), 1, "{line:?}");
        shown.insert(line[url_at..].split_whitespace().next().map(str::to_owned));
    }
    assert_eq!(shown.len(), 1000, "every page's line, whole");
}

#[test]
fn quiet_shows_only_failures_and_no_summary() {
    let server = TestServer::start();
    let out = run_text(
        &[server.url("/page/fine"), server.url("/status/503")],
        &["-q", "--retries", "0"],
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stdout.contains("/status/503"));
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn all_ok_exits_zero() {
    let server = TestServer::start();
    let out = run_text(&[server.url("/page/1"), server.url("/page/2")], &["-q"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn truncate_sets_the_preview_length() {
    let server = TestServer::start();
    let record = run_jsonl(&[server.url("/page/a")], &["--truncate", "7"]).record();
    assert_eq!(record["content"], "Heading");
    let record = run_jsonl(&[server.url("/page/a")], &["--truncate", "0"]).record();
    assert_eq!(record["content"], "");
    assert_eq!(record["title"], "Page a");
}

#[test]
fn a_cut_preview_ends_with_an_ellipsis_even_when_cut_at_a_space() {
    let server = TestServer::start();
    // "Heading a Text of page a.": the eighth character is the space after "Heading".
    let out = run_text(&[server.url("/page/a")], &["--truncate", "8"]);
    assert!(
        out.stdout.contains("[Page a]  Heading…\n"),
        "{}",
        out.stdout
    );
    let out = run_text(&[server.url("/page/a")], &[]);
    assert!(
        out.stdout.contains("[Page a]  Heading a Text of page a.\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn page_text_cannot_send_escape_sequences_to_the_terminal() {
    let server = TestServer::start();
    let out = run_text(&[server.url("/hostile"), server.url("/binary")], &[]);
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
    assert!(!out.stdout.contains('\x07'), "{:?}", out.stdout);
    assert!(!out.stdout.contains('\u{202E}'), "{:?}", out.stdout);
    assert!(
        out.stdout.contains("[Evil]0;owned title[2J]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(binary, image/png)"), "{}", out.stdout);
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let server = TestServer::start();
    let urls: Vec<String> = (0..300)
        .map(|i| server.url(&format!("/slow/20/{i}")))
        .collect();
    let file = list(&urls);
    let mut cmd = scrape();
    cmd.args(["--no-progress", "-c", "4"])
        .arg(file.path())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    assert!(first.contains("/slow/20/"), "{first}");
    drop(stdout); // like `| head -1`
    let started = Instant::now();
    let out = crate::support::finish(child);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "kept running after stdout closed"
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("error"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        server.hits("/slow/20/299") == 0,
        "fetched the whole list into a closed pipe"
    );
}
