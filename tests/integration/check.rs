//! `--check`: OK/FAIL lines with reasons, expectations on text, elements and latency, and bodies
//! left unread when nothing needs them.

use std::time::Duration;

use crate::support::{Run, TestServer, list, run, run_jsonl, scrape};

fn run_check(urls: &[String], args: &[&str]) -> Run {
    let file = list(urls);
    let mut cmd = scrape();
    cmd.args(["--check", "--no-progress"])
        .args(args)
        .arg(file.path());
    run(cmd)
}

fn line_for<'a>(out: &'a Run, url: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|line| line.contains(url))
        .unwrap_or_else(|| panic!("no line for {url} in\n{}", out.stdout))
}

#[test]
fn each_url_gets_ok_or_fail_with_the_reason() {
    let server = TestServer::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let urls = [
        server.url("/page/a"),
        server.url("/status/404"),
        refused.clone(),
    ];
    let out = run_check(&urls, &["--retries", "0"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(line_for(&out, &server.url("/page/a")).starts_with("OK   200 "));
    let missing = line_for(&out, &server.url("/status/404"));
    assert!(missing.starts_with("FAIL 404 "), "{missing}");
    assert!(missing.ends_with("status 404 not accepted"), "{missing}");
    let error = line_for(&out, &refused);
    assert!(
        error.starts_with("FAIL ERR ") && error.ends_with("connection refused"),
        "{error}"
    );
    assert!(
        !out.stdout.contains("Heading a"),
        "check mode shows no preview"
    );
}

#[test]
fn without_expectations_the_body_is_not_read() {
    let server = TestServer::start();
    // The body trickles for a minute: only the status line and headers can make this pass.
    let out = run_check(&[server.url("/trickle")], &["-t", "3s", "--retries", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.elapsed < Duration::from_secs(3),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn expected_text_and_elements_are_checked() {
    let server = TestServer::start();
    let page = server.url("/page/a");
    let ok = run_check(
        std::slice::from_ref(&page),
        &["--expect-text", "Text of page a", "--expect-selector", "h1"],
    );
    assert_eq!(ok.code, 0, "{ok:?}");

    let out = run_check(std::slice::from_ref(&page), &["--expect-text", "Welcome"]);
    assert_eq!(out.code, 1);
    assert!(
        line_for(&out, &page).ends_with("text \"Welcome\" not found"),
        "{}",
        out.stdout
    );

    let out = run_check(
        std::slice::from_ref(&page),
        &["--expect-selector", "h1.title"],
    );
    assert!(
        line_for(&out, &page).ends_with("no element matches h1.title"),
        "{}",
        out.stdout
    );

    let plain = server.url("/echo-headers");
    let out = run_jsonl(
        std::slice::from_ref(&plain),
        &["--expect-text", "user-agent=scrape/"],
    );
    assert_eq!(out.code, 0, "text bodies are searched too: {out:?}");
    let out = run_jsonl(std::slice::from_ref(&plain), &["--expect-text", "nowhere"]);
    assert_eq!(out.record()["error"], "text \"nowhere\" not found");
    assert_eq!(out.record()["ok"], false);
}

#[test]
fn max_latency_fails_slow_answers() {
    let server = TestServer::start();
    let slow = server.url("/slow/400/x");
    let fast = server.url("/page/fast");
    let out = run_check(&[slow.clone(), fast.clone()], &["--max-latency", "200ms"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(line_for(&out, &fast).starts_with("OK "));
    let line = line_for(&out, &slow);
    assert!(
        line.starts_with("FAIL 200 ") && line.contains(", over the 200ms limit"),
        "{line}"
    );
}

#[test]
fn slo_gates_fail_the_run_with_the_measured_value() {
    let server = TestServer::start();
    let urls: Vec<String> = (0..4)
        .map(|i| server.url(&format!("/slow/300/{i}")))
        .collect();
    let out = run_check(&urls, &["--slo", "p95<100ms", "--slo", "success>=99%"]);
    assert_eq!(
        out.code, 1,
        "every URL passed but a gate was missed: {out:?}"
    );
    let missed = out
        .stderr
        .lines()
        .find(|l| l.starts_with("scrape: SLO missed: p95<100ms (measured "))
        .unwrap_or_else(|| panic!("no SLO line in\n{}", out.stderr));
    assert!(missed.ends_with("ms)"), "{missed}");
    assert!(
        out.stderr
            .contains("slo       success>=99% met (measured 100.0%)"),
        "{}",
        out.stderr
    );

    let out = run_check(&urls, &["--slo", "p99<10s", "--slo", "max<10s"]);
    assert_eq!(out.code, 0, "{out:?}");

    let mut cmd = scrape();
    cmd.args(["--slo", "p95 fast", "http://127.0.0.1:9/"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "a malformed gate is a usage error: {out:?}");
}

#[test]
fn confirm_rechecks_a_failure_before_reporting_it() {
    let server = TestServer::start();
    let flaky = server.url("/flaky/once/1");
    let broken = server.url("/status/500");
    let out = run_check(
        &[flaky.clone(), broken.clone()],
        &["--retries", "0", "--confirm", "200ms"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    let recovered = line_for(&out, &flaky);
    assert!(
        recovered.starts_with("OK   200 ") && recovered.contains("passed on recheck"),
        "{recovered}"
    );
    let failed = line_for(&out, &broken);
    assert!(
        failed.starts_with("FAIL 500 ") && failed.contains("confirmed on recheck"),
        "{failed}"
    );
    assert_eq!(server.hits("/flaky/once/1"), 2);
    assert_eq!(server.hits("/status/500"), 2);

    let record = run_jsonl(
        std::slice::from_ref(&broken),
        &["--retries", "0", "--confirm", "100ms"],
    )
    .record();
    assert_eq!(record["recheck"], "confirmed");
    assert_eq!(record["attempts"], 2);
}

#[test]
fn expectations_on_a_line_override_the_run_wide_ones() {
    let server = TestServer::start();
    let lines = [
        format!(
            "{} status=200 contains=\"Text of page a\" selector=\"h1\" max_ms=5000",
            server.url("/page/a")
        ),
        format!("{}   status=404", server.url("/status/404")),
        format!("{} contains=\"Welcome\"", server.url("/page/b")),
        format!("{} max_ms=100", server.url("/slow/400/x")),
        format!("{} colour=red", server.url("/page/c")),
    ];
    let file = list(&lines);
    let mut cmd = scrape();
    cmd.args(["--check", "--no-progress"]).arg(file.path());
    let out = run(cmd);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        line_for(&out, &server.url("/page/a")).starts_with("OK "),
        "{}",
        out.stdout
    );
    assert!(
        line_for(&out, &server.url("/status/404")).starts_with("OK   404"),
        "{}",
        out.stdout
    );
    let missing = line_for(&out, &server.url("/page/b"));
    assert!(missing.ends_with("text \"Welcome\" not found"), "{missing}");
    let slow = line_for(&out, &server.url("/slow/400/x"));
    assert!(slow.contains(", over the 100ms limit"), "{slow}");
    let expected = format!(
        "{}:5: bad expectation: unknown key 'colour'",
        file.path().display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert_eq!(server.hits("/page/c"), 0);
}

#[test]
fn host_stats_split_the_summary_by_host() {
    let server = TestServer::start();
    let port = server.port();
    let urls = [
        format!("http://a.test:{port}/page/1"),
        format!("http://a.test:{port}/page/2"),
        format!("http://b.test:{port}/status/500"),
    ];
    let a = format!("a.test:{port}:127.0.0.1");
    let b = format!("b.test:{port}:127.0.0.1");
    let out = run_check(&urls, &["--host-stats", "--resolve", &a, "--resolve", &b]);
    let row = |host: &str| {
        out.stderr
            .lines()
            .find(|l| l.starts_with(&format!("{host}:{port} ")))
            .unwrap_or_else(|| panic!("no row for {host} in\n{}", out.stderr))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("a.test")[1..3], ["2", "0"]);
    assert_eq!(row("b.test")[1..3], ["0", "1"]);
    assert!(out.stderr.contains("host"), "{}", out.stderr);
}
