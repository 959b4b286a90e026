//! Reading URL lists: files, stdin, arguments, invalid lines, duplicates, streaming.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{TestServer, list, run, run_jsonl, scrape};

#[test]
fn a_missing_file_is_a_usage_error_that_names_it() {
    let mut cmd = scrape();
    cmd.arg("/nonexistent/urls.txt");
    let out = run(cmd);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("/nonexistent/urls.txt"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("No such file"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_flag_value_is_a_usage_error() {
    let mut cmd = scrape();
    cmd.args(["--timeout", "soon", "urls.txt"]);
    let out = run(cmd);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
}

#[test]
fn invalid_lines_are_reported_with_file_and_line_and_the_run_goes_on() {
    let server = TestServer::start();
    let mut file = list(&[
        "# a comment".into(),
        String::new(),
        "ftp://example.com/file".into(),
        server.url("/page/good"),
        "http://exa mple.com/".into(),
        "nonsense".into(),
    ]);
    file.write_all(b"http://bad-\xff-utf8.example/\n")
        .expect("write");
    let path = file.path().display().to_string();
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress"]).arg(file.path());
    let out = run(cmd);

    assert_eq!(out.code, 1, "{out:?}");
    for expected in [
        format!("{path}:3: unsupported scheme 'ftp'"),
        format!("{path}:5: whitespace inside a URL"),
        format!("{path}:6: not a URL"),
        format!("{path}:7: not valid UTF-8"),
    ] {
        assert!(
            out.stderr.contains(&expected),
            "missing {expected:?} in\n{}",
            out.stderr
        );
    }
    let records = out.records();
    assert_eq!(records.len(), 5, "{}", out.stdout);
    assert_eq!(records[&server.url("/page/good")]["ok"], true);
    let ftp = &records["ftp://example.com/file"];
    assert_eq!(ftp["source"], format!("{path}:3"));
    assert_eq!(ftp["ok"], false);
    assert_eq!(ftp["attempts"], 0);
    assert!(out.stderr.contains("4 invalid lines"), "{}", out.stderr);
}

#[test]
fn files_and_stdin_are_read_in_order_into_one_run() {
    let server = TestServer::start();
    let first = list(&[server.url("/page/1"), server.url("/page/2")]);
    let second = list(&[server.url("/page/3")]);
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress", "-c", "1"])
        .arg(first.path())
        .arg("-")
        .arg(second.path())
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", server.url("/page/stdin")).as_bytes())
        .expect("write stdin");
    let out = crate::support::finish(child);
    assert_eq!(out.code, 0, "{out:?}");
    let urls: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["url"]
                .as_str()
                .expect("url")
                .to_string()
        })
        .collect();
    assert_eq!(
        urls,
        ["/page/1", "/page/2", "/page/stdin", "/page/3"].map(|p| server.url(p)),
        "with one request at a time, results follow the input order"
    );
}

#[test]
fn duplicates_after_normalisation_are_fetched_once() {
    let server = TestServer::start();
    let port = server.port();
    let out = run_jsonl(
        &[
            server.url("/page/dup"),
            format!("HTTP://127.0.0.1:{port}/page/dup#section"),
            format!("http://127.0.0.1:{port}/page/x/../dup"),
            server.url("/page/other"),
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.hits("/page/dup"), 1);
    assert_eq!(out.records().len(), 2);
    assert!(
        out.stderr.contains("2 duplicates skipped"),
        "{}",
        out.stderr
    );
}

#[test]
fn fetching_starts_before_the_input_ends() {
    let server = TestServer::start();
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress"])
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", server.url("/page/early")).expect("write");
    stdin.flush().expect("flush");

    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.expect("line"));
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a result arrives while standard input is still open");
    assert!(first.contains("/page/early"), "{first}");
    drop(stdin);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_url_argument_is_fetched_directly() {
    let server = TestServer::start();
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress", &server.url("/page/arg")]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.record()["title"], "Page arg");
}

#[test]
fn an_empty_list_is_a_successful_empty_run() {
    let out = run_jsonl(&["# nothing here".into()], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("0 URLs"), "{}", out.stderr);
}
