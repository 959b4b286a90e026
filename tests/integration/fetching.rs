//! Fetching against a live server: pages, errors, timeouts, redirects, encodings, body limits,
//! retries and request options.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::{TestServer, peak_rss_kib, run_jsonl, scrape};

#[test]
fn a_page_reports_every_field() {
    let server = TestServer::start();
    let url = server.url("/page/a");
    let out = run_jsonl(std::slice::from_ref(&url), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let record = out.record();
    assert_eq!(record["url"], url);
    assert_eq!(record["final_url"], url);
    assert_eq!(record["status"], 200);
    assert_eq!(record["ok"], true);
    assert_eq!(record["error"], serde_json::Value::Null);
    assert_eq!(record["content_type"], "text/html; charset=utf-8");
    assert_eq!(record["title"], "Page a");
    assert_eq!(record["content"], "Heading a Text of page a.");
    assert_eq!(record["truncated"], false);
    assert_eq!(record["attempts"], 1);
    assert!(record["bytes"].as_u64().expect("bytes") > 100);
    assert!(record["elapsed_ms"].as_u64().is_some());
}

#[test]
fn http_errors_fail_the_run_without_retries() {
    let server = TestServer::start();
    let out = run_jsonl(
        &[server.url("/status/404"), server.url("/status/500")],
        &["--retries", "3"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    for (path, status) in [("/status/404", 404), ("/status/500", 500)] {
        let record = &out.records()[&server.url(path)];
        assert_eq!(record["status"], status);
        assert_eq!(record["ok"], false);
        assert_eq!(record["attempts"], 1);
        assert_eq!(server.hits(path), 1, "{path} must not be retried");
    }
}

#[test]
fn a_hanging_server_is_cut_off_at_the_timeout() {
    let server = TestServer::start();
    let out = run_jsonl(
        &[server.url("/hang"), server.url("/page/ok")],
        &["-t", "1s", "--retries", "0"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    let records = out.records();
    assert_eq!(records[&server.url("/hang")]["error"], "timed out after 1s");
    assert_eq!(records[&server.url("/page/ok")]["ok"], true);
    assert!(
        out.elapsed < Duration::from_secs(8),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn a_trickling_body_is_cut_off_by_the_whole_attempt_timeout() {
    let server = TestServer::start();
    let out = run_jsonl(
        &[server.url("/trickle")],
        &["--timeout", "1", "--retries", "0"],
    );
    assert_eq!(out.record()["error"], "timed out after 1s");
    assert!(
        out.elapsed < Duration::from_secs(8),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn timeouts_are_retried_and_attempts_reported() {
    let server = TestServer::start();
    let out = run_jsonl(&[server.url("/hang")], &["-t", "300ms", "--retries", "2"]);
    let record = out.record();
    assert_eq!(record["attempts"], 3);
    assert_eq!(server.hits("/hang"), 3);
    assert_eq!(out.code, 1);
}

#[test]
fn redirects_are_followed_to_the_final_url() {
    let server = TestServer::start();
    let out = run_jsonl(&[server.url("/redirect/3")], &[]);
    let record = out.record();
    assert_eq!(record["final_url"], server.url("/redirect/0"));
    assert_eq!(record["title"], "Landed");
    assert_eq!(record["ok"], true);
}

#[test]
fn too_many_redirects_and_loops_are_errors_that_say_so() {
    let server = TestServer::start();
    let out = run_jsonl(
        &[
            server.url("/redirect/3"),
            server.url("/loop/a"),
            server.url("/to-ftp"),
            server.url("/to-nowhere"),
        ],
        &["--max-redirects", "2"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    let records = out.records();
    assert_eq!(
        records[&server.url("/redirect/3")]["error"],
        "too many redirects (2)"
    );
    let looped = records[&server.url("/loop/a")]["error"]
        .as_str()
        .expect("error")
        .to_string();
    assert!(looped.starts_with("redirect loop"), "{looped}");
    let ftp = records[&server.url("/to-ftp")]["error"]
        .as_str()
        .expect("error")
        .to_string();
    assert!(ftp.contains("ftp://example.com/"), "{ftp}");
    assert_eq!(
        records[&server.url("/to-nowhere")]["error"],
        "redirect to an invalid URL http://[::1/"
    );
}

#[test]
fn compressed_bodies_are_decompressed() {
    let server = TestServer::start();
    let encodings = ["gzip", "br", "zstd", "deflate"];
    let urls: Vec<String> = encodings
        .iter()
        .map(|e| server.url(&format!("/encoded/{e}")))
        .collect();
    let out = run_jsonl(&urls, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    for url in &urls {
        let record = &out.records()[url];
        assert_eq!(record["title"], "Compressed", "{url}");
        assert_eq!(record["content"], "squeezed text", "{url}");
    }
}

#[test]
fn latin1_and_shift_jis_pages_are_decoded() {
    let server = TestServer::start();
    let out = run_jsonl(&[server.url("/latin1"), server.url("/sjis")], &[]);
    let records = out.records();
    assert_eq!(records[&server.url("/latin1")]["title"], "Café crème");
    assert_eq!(records[&server.url("/latin1")]["content"], "Naïve über");
    assert_eq!(records[&server.url("/sjis")]["title"], "日本語のタイトル");
    assert_eq!(records[&server.url("/sjis")]["content"], "こんにちは世界");
}

#[test]
fn max_bytes_truncates_the_body() {
    let server = TestServer::start();
    let record = run_jsonl(&[server.url("/big/5")], &["--max-bytes", "1MiB"]).record();
    assert_eq!(record["bytes"], 1024 * 1024);
    assert_eq!(record["truncated"], true);
    assert_eq!(record["ok"], true);
    assert_eq!(record["title"], "Big");
}

#[test]
fn a_gzip_bomb_stops_at_max_bytes_after_decompression() {
    let server = TestServer::start();
    let out = run_jsonl(&[server.url("/bomb")], &["--max-bytes", "8MiB"]);
    let record = out.record();
    assert_eq!(record["bytes"], 8 * 1024 * 1024);
    assert_eq!(record["truncated"], true);
}

/// Runs one URL with `args` while sampling the process's peak RSS; returns the run and the peak.
fn run_measuring_memory(url: &str, args: &[&str]) -> (crate::support::Run, u64) {
    let file = crate::support::list(&[url.to_string()]);
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress"])
        .args(args)
        .arg(file.path());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        while let Some(rss) = peak_rss_kib(pid) {
            peak = peak.max(rss);
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = crate::support::finish(child);
    (out, watcher.join().expect("watcher"))
}

#[test]
fn memory_stays_flat_while_a_huge_body_streams() {
    let server = TestServer::start();
    let url = server.url("/big/300");
    let (out, peak_kib) = run_measuring_memory(&url, &["--max-bytes", "1GiB", "-t", "60s"]);
    let record = out.record();
    assert_eq!(record["truncated"], false);
    assert!(record["bytes"].as_u64().expect("bytes") > 300 * 1024 * 1024);
    assert!(peak_kib > 0, "no memory reading");
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB for a 300 MiB body"
    );
}

#[test]
fn memory_stays_flat_while_a_huge_body_is_saved() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = server.url("/big/200");
    let dir_arg = dir.path().display().to_string();
    let (out, peak_kib) =
        run_measuring_memory(&url, &["--max-bytes", "1GiB", "-t", "60s", "-o", &dir_arg]);
    let record = out.record();
    let saved = dir.path().join(record["path"].as_str().expect("path"));
    let size = std::fs::metadata(&saved).expect("saved file").len();
    assert_eq!(Some(size), record["bytes"].as_u64());
    assert!(size > 200 * 1024 * 1024);
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB while saving a 200 MiB body"
    );
}

#[test]
fn transient_failures_are_retried_until_they_recover() {
    let server = TestServer::start();
    let out = run_jsonl(
        &[
            server.url("/flaky/recovers/2"),
            server.url("/flaky/stays-down/5"),
        ],
        &["--retries", "2"],
    );
    let records = out.records();
    let recovered = &records[&server.url("/flaky/recovers/2")];
    assert_eq!(recovered["ok"], true);
    assert_eq!(recovered["attempts"], 3);
    assert_eq!(server.hits("/flaky/recovers/2"), 3);
    let down = &records[&server.url("/flaky/stays-down/5")];
    assert_eq!(down["status"], 503);
    assert_eq!(down["attempts"], 3);
    assert_eq!(server.hits("/flaky/stays-down/5"), 3);
    assert_eq!(out.code, 1);
}

#[test]
fn retry_after_is_honoured() {
    let server = TestServer::start();
    let out = run_jsonl(&[server.url("/throttled/k")], &["--retries", "1"]);
    let record = out.record();
    assert_eq!(record["ok"], true);
    assert_eq!(record["attempts"], 2);
    assert!(
        record["elapsed_ms"].as_u64().expect("elapsed") >= 900,
        "Retry-After: 1 was not waited for: {record}"
    );
}

#[test]
fn refused_and_reset_connections_are_named() {
    let server = TestServer::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused_url = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let reset_url = format!("http://{}/", server.reset_addr);
    let out = run_jsonl(
        &[refused_url.clone(), reset_url.clone()],
        &["--retries", "1"],
    );
    let records = out.records();
    assert_eq!(records[&refused_url]["error"], "connection refused");
    assert_eq!(records[&refused_url]["attempts"], 2);
    let reset = records[&reset_url]["error"]
        .as_str()
        .expect("error")
        .to_string();
    assert!(reset.starts_with("connection "), "{reset}");
    assert_eq!(out.code, 1);
}

#[test]
fn headers_and_user_agent_are_sent() {
    let server = TestServer::start();
    let record = run_jsonl(
        &[server.url("/echo-headers")],
        &[
            "-H",
            "X-Test: one",
            "--header",
            "Accept-Language: fr",
            "-A",
            "probe/1.0",
            "--truncate",
            "1000",
        ],
    )
    .record();
    let seen = record["content"].as_str().expect("content");
    assert!(seen.contains("user-agent=probe/1.0"), "{seen}");
    assert!(seen.contains("x-test=one"), "{seen}");
    assert!(seen.contains("accept-language=fr"), "{seen}");
}

#[test]
fn the_default_user_agent_names_scrape() {
    let server = TestServer::start();
    let record = run_jsonl(&[server.url("/echo-headers")], &["--truncate", "1000"]).record();
    let expected = format!("user-agent=scrape/{}", env!("CARGO_PKG_VERSION"));
    assert!(
        record["content"]
            .as_str()
            .expect("content")
            .contains(&expected)
    );
}

#[test]
fn resolve_pins_a_host_name_without_dns() {
    let server = TestServer::start();
    let port = server.port();
    let url = format!("http://pinned.test:{port}/page/pinned");
    let pin = format!("pinned.test:{port}:127.0.0.1");
    let record = run_jsonl(std::slice::from_ref(&url), &["--resolve", &pin]).record();
    assert_eq!(record["title"], "Page pinned");
    assert_eq!(server.peak_in_flight(&format!("pinned.test:{port}")), 1);
}

#[test]
fn binary_content_gets_no_preview() {
    let server = TestServer::start();
    let record = run_jsonl(&[server.url("/binary")], &[]).record();
    assert_eq!(record["content"], serde_json::Value::Null);
    assert_eq!(record["content_type"], "image/png");
}

#[test]
fn ipv6_literals_are_fetched() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    };
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let body = "<title>Over IPv6</title>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let url = format!("http://[::1]:{}/", addr.port());
    let record = run_jsonl(std::slice::from_ref(&url), &[]).record();
    assert_eq!(record["title"], "Over IPv6");
}

#[test]
fn requests_go_through_a_proxy_from_the_flag_or_the_environment() {
    let server = TestServer::start();
    let proxy = format!("http://{}", server.addr);
    let out = run_jsonl(
        &["http://behind-proxy.test/page/proxied".into()],
        &["--proxy", &proxy],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.record()["title"], "Page proxied");

    let file = crate::support::list(&["http://via-env.test/page/env".into()]);
    let mut cmd = scrape();
    cmd.env("HTTP_PROXY", &proxy)
        .args(["-f", "jsonl", "--no-progress"])
        .arg(file.path());
    let out = crate::support::run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.record()["title"], "Page env");
    assert_eq!(
        server.peak_in_flight("via-env.test"),
        1,
        "the proxy saw the request"
    );
}

#[test]
fn accept_decides_which_statuses_pass() {
    let server = TestServer::start();
    let urls = [
        server.url("/status/404"),
        server.url("/status/301"),
        server.url("/page/a"),
    ];
    let out = run_jsonl(&urls, &["--accept", "200..=299,301,404"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.records().values().all(|r| r["ok"] == true),
        "{}",
        out.stdout
    );

    let out = run_jsonl(&urls, &["--accept", "404"]);
    assert_eq!(out.code, 1, "{out:?}");
    let records = out.records();
    assert_eq!(records[&server.url("/status/404")]["ok"], true);
    assert_eq!(
        records[&server.url("/page/a")]["ok"],
        false,
        "200 is not in --accept 404"
    );
}

#[test]
fn head_requests_fall_back_to_get_when_refused() {
    let server = TestServer::start();
    let out = run_jsonl(
        &[server.url("/page/h"), server.url("/no-head")],
        &["--method", "HEAD"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let records = out.records();
    assert_eq!(records[&server.url("/page/h")]["bytes"], 0);
    assert_eq!(server.methods("/page/h"), ["HEAD"]);
    assert_eq!(server.methods("/no-head"), ["HEAD", "GET"]);
    assert_eq!(records[&server.url("/no-head")]["title"], "GET only");
}

#[test]
fn head_with_an_out_dir_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = scrape();
    cmd.args(["--method", "head", "-o"])
        .arg(dir.path())
        .arg("http://127.0.0.1:9/");
    let out = crate::support::run(cmd);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--method HEAD"), "{}", out.stderr);
}
