//! Concurrency limits as the server sees them: global, per host, and one slow host never taking
//! every slot.

use crate::support::{TestServer, list, run, run_jsonl, scrape_after};

#[test]
fn the_global_limit_bounds_requests_in_flight() {
    let server = TestServer::start();
    let urls: Vec<String> = (0..24)
        .map(|i| server.url(&format!("/slow/150/{i}")))
        .collect();
    let out = run_jsonl(&urls, &["-c", "5", "--per-host", "100"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.records().len(), 24);
    assert_eq!(
        server.peak_in_flight("*"),
        5,
        "the limit should be reached, never exceeded"
    );
}

#[test]
fn each_host_stays_within_its_limit_while_hosts_proceed_side_by_side() {
    let server = TestServer::start();
    let port = server.port();
    let mut urls = Vec::new();
    for host in ["a.test", "b.test"] {
        for i in 0..12 {
            urls.push(format!("http://{host}:{port}/slow/200/{i}"));
        }
    }
    let out = run_jsonl(
        &urls,
        &[
            "-c",
            "16",
            "--per-host",
            "3",
            "--resolve",
            &format!("a.test:{port}:127.0.0.1"),
            "--resolve",
            &format!("b.test:{port}:127.0.0.1"),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.peak_in_flight(&format!("a.test:{port}")), 3);
    assert_eq!(server.peak_in_flight(&format!("b.test:{port}")), 3);
    // a.test's URLs all come first in the list, yet b.test ran at the same time.
    assert_eq!(server.peak_in_flight("*"), 6);
}

#[test]
fn connections_to_a_host_are_reused_within_its_limit() {
    // Keep-alive: 60 requests share the host's few connections. hyper's pool may open a spare
    // when a connect is slower than a request, hence the margin over the limit of 3.
    let server = TestServer::start();
    let urls: Vec<String> = (0..60).map(|i| server.url(&format!("/page/{i}"))).collect();
    let out = run_jsonl(&urls, &["-c", "8", "--per-host", "3"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.records().len(), 60);
    let connections = server.connections();
    assert!((3..=6).contains(&connections), "{connections} connections");
}

#[test]
fn a_host_keeps_no_idle_connection_after_its_last_url() {
    // Idle connections of hosts with nothing left to fetch would pile up over a long list of
    // hosts: the requests that no waiting URL will follow ask the server to close the connection.
    let server = TestServer::start();
    let urls: Vec<String> = (0..6)
        .map(|i| server.url(&format!("/echo-headers?{i}")))
        .collect();
    let out = run_jsonl(&urls, &["-c", "1", "--truncate", "1000"]);
    assert_eq!(out.code, 0, "{out:?}");
    let records = out.records();
    let closes: Vec<bool> = urls
        .iter()
        .map(|url| {
            let content = records[url]["content"].as_str().expect("content");
            content.contains("connection=close")
        })
        .collect();
    assert_eq!(closes, [false, false, false, false, false, true]);
    assert_eq!(server.connections(), 1, "the others reused the connection");
}

#[test]
fn at_a_low_concurrency_a_host_opens_no_more_connections_than_run_at_once() {
    // 100 hosts of 10 URLs, one host after another, at -c 4: four connections carry each host's
    // URLs, kept while more of them wait and closed after its last: 400, and a few more where a
    // slot moves from one shard (and its connection pool) to the other within a host's run (404-408
    // measured). More when a host's last URLs find its connections taken or are out of its first
    // requests' sight (452-468), or when a host's URLs are split between the shards (514-530).
    let server = TestServer::start();
    let port = server.port();
    let hosts: Vec<String> = (0..100).map(|h| format!("h{h}.test")).collect();
    let urls: Vec<String> = hosts
        .iter()
        .flat_map(|host| (0..10).map(move |i| format!("http://{host}:{port}/page/{i}")))
        .collect();
    let mut args = vec!["-c".to_string(), "4".into()];
    for host in &hosts {
        args.extend(["--resolve".into(), format!("{host}:{port}:127.0.0.1")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_jsonl(&urls, &args);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.records().len(), 1000);
    let connections = server.connections();
    assert!(
        connections <= 440,
        "{connections} connections for 100 hosts at -c 4"
    );
}

#[test]
fn a_hanging_host_does_not_hold_up_the_others() {
    let server = TestServer::start();
    let port = server.port();
    // As many hanging URLs as the host's limit: no second wave, whose requests would overlap the
    // server's still-sleeping handlers of the first.
    let mut urls: Vec<String> = (0..2)
        .map(|i| format!("http://slow.test:{port}/hang?{i}"))
        .collect();
    urls.extend((0..10).map(|i| format!("http://fast.test:{port}/page/{i}")));
    let out = run_jsonl(
        &urls,
        &[
            "-c",
            "4",
            "--per-host",
            "2",
            "-t",
            "3s",
            "--retries",
            "0",
            "--resolve",
            &format!("slow.test:{port}:127.0.0.1"),
            "--resolve",
            &format!("fast.test:{port}:127.0.0.1"),
        ],
    );
    let records = out.records();
    for i in 0..10 {
        let record = &records[&format!("http://fast.test:{port}/page/{i}")];
        assert_eq!(record["ok"], true);
        assert!(
            record["elapsed_ms"].as_u64().expect("elapsed") < 2000,
            "a fast URL waited behind the hanging host: {record}"
        );
    }
    assert!(server.peak_in_flight(&format!("slow.test:{port}")) <= 2);
}

#[test]
fn a_low_soft_limit_on_open_files_is_raised_not_obeyed() {
    // 100 requests to 120 hosts in flight do not fit in 64 descriptors: scrape must raise its
    // soft limit (the hard one stays high) instead of lowering the concurrency or failing
    // requests with "Too many open files".
    let server = TestServer::start();
    let port = server.port();
    let mut args = vec!["--no-progress".to_string(), "-f".into(), "jsonl".into()];
    args.extend(["-c".into(), "100".into()]);
    let mut urls = Vec::new();
    for host in 0..120 {
        args.push(format!("--resolve=h{host}.test:{port}:127.0.0.1"));
        urls.push(format!("http://h{host}.test:{port}/page/{host}"));
    }
    let file = list(&urls);
    let mut cmd = scrape_after("ulimit -Sn 64");
    cmd.args(&args).arg(file.path());
    let out = run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.records().len(), 120);
    assert!(!out.stderr.contains("lowering"), "{}", out.stderr);
}

#[test]
fn a_concurrency_over_a_hard_limit_on_open_files_is_lowered_and_nothing_fails() {
    // `ulimit -n` sets the hard limit too: 300 requests in flight cannot each have a socket.
    let server = TestServer::start();
    let urls: Vec<String> = (0..600)
        .map(|n| server.url(&format!("/page/{n}")))
        .collect();
    let file = list(&urls);
    let mut cmd = scrape_after("ulimit -n 100");
    cmd.args(["--no-progress", "-f", "jsonl", "--retries", "0"])
        .args(["-c", "300", "--per-host", "300"])
        .arg(file.path());
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = out.records();
    assert_eq!(records.len(), 600);
    assert!(records.values().all(|record| record["ok"] == true));
    assert!(
        out.stderr
            .contains("lowering --concurrency from 300 to 18: only 100 files may be open"),
        "{}",
        out.stderr
    );
}
