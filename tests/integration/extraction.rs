//! Extraction: selectors (text and attributes, named), CSV columns, links, full text, invalid
//! selectors, chaining runs, and parsing that does not stall the other requests.

use std::io::Write;
use std::process::Stdio;

use crate::support::{TestServer, finish, list, run, run_jsonl, scrape};

#[test]
fn selectors_take_text_and_attributes_into_one_record() {
    let server = TestServer::start();
    let url = server.url("/shop/a");
    let out = run_jsonl(
        std::slice::from_ref(&url),
        &[
            "-s",
            "h1",
            "-s",
            ".price",
            "-s",
            "a.title@href",
            "--select-name",
            "logo=img@src",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let selected = &out.record()["selected"];
    assert_eq!(selected["h1"], serde_json::json!(["Deals & offers"]));
    assert_eq!(selected[".price"], serde_json::json!(["€ 10", "€ 20"]));
    let base = server.url("/catalog/");
    assert_eq!(
        selected["a.title@href"],
        serde_json::json!([
            format!("{base}widget.html#specs"),
            server.url("/gadget"),
            "http://cdn.example/x"
        ])
    );
    assert_eq!(
        selected["logo"],
        serde_json::json!([format!("{base}img/logo.png")])
    );
    let keys: Vec<&String> = selected.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 4);
}

#[test]
fn text_output_lists_each_value_under_the_page() {
    let server = TestServer::start();
    let file = list(&[server.url("/shop/t")]);
    let mut cmd = scrape();
    cmd.args(["--no-progress", "-s", ".price", "--truncate", "3"])
        .arg(file.path());
    let out = run(cmd);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(lines[1], "    .price: € 1…");
    assert_eq!(lines[2], "    .price: € 2…");
}

#[test]
fn csv_has_a_column_per_selector() {
    let server = TestServer::start();
    let file = list(&[
        server.url("/shop/1"),
        server.url("/shop/2"),
        server.url("/status/404"),
    ]);
    let mut cmd = scrape();
    cmd.args([
        "--no-progress",
        "-f",
        "csv",
        "-s",
        "h1",
        "--select-name",
        "price=.price",
    ])
    .arg(file.path());
    let out = run(cmd);
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header.first().map(String::as_str), Some("url"));
    assert_eq!(&header[header.len() - 2..], ["h1", "price"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 3);
    let shop = rows
        .iter()
        .find(|r| r[0] == server.url("/shop/1"))
        .expect("row for /shop/1");
    assert_eq!(&shop[header.len() - 2], "Deals & offers");
    assert_eq!(&shop[header.len() - 1], "€ 10", "the first match");

    let mut cmd = scrape();
    cmd.args([
        "--no-progress",
        "-f",
        "csv",
        "--select-name",
        "price=.price",
        "--join",
        " | ",
    ])
    .arg(file.path());
    let out = run(cmd);
    assert!(out.stdout.contains("€ 10 | € 20"), "{}", out.stdout);
}

#[test]
fn an_invalid_selector_stops_before_any_request() {
    let server = TestServer::start();
    let file = list(&[server.url("/shop/x")]);
    let mut cmd = scrape();
    cmd.args(["-s", "li:nth-child(", "--no-progress"])
        .arg(file.path());
    let out = run(cmd);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("li:nth-child("), "{}", out.stderr);
    assert_eq!(server.hits("/shop/x"), 0);
}

#[test]
fn links_are_absolute_distinct_and_filtered_by_host() {
    let server = TestServer::start();
    let url = server.url("/shop/l");
    let record = run_jsonl(std::slice::from_ref(&url), &["--links"]).record();
    let base = server.url("/catalog/");
    assert_eq!(
        record["links"],
        serde_json::json!([
            format!("{base}widget.html"),
            server.url("/gadget"),
            "http://cdn.example/x"
        ])
    );
    let record = run_jsonl(std::slice::from_ref(&url), &["--links", "--same-host"]).record();
    assert_eq!(record["links"].as_array().expect("links").len(), 2);
}

#[test]
fn links_only_chains_into_a_second_run() {
    let server = TestServer::start();
    let file = list(&[server.url("/shop/chain")]);
    let mut first = scrape();
    first
        .args(["--links-only", "--same-host", "--no-progress"])
        .arg(file.path());
    let first = run(first);
    assert_eq!(first.code, 0, "{first:?}");
    let base = server.url("/catalog/");
    assert_eq!(
        first.stdout.lines().collect::<Vec<_>>(),
        [format!("{base}widget.html"), server.url("/gadget")]
    );

    let mut second = scrape();
    second
        .args(["-f", "jsonl", "--no-progress", "-"])
        .stdin(Stdio::piped());
    let mut child = second.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(first.stdout.as_bytes())
        .expect("feed the links");
    let out = finish(child);
    assert_eq!(out.records().len(), 2, "{}", out.stdout);
    assert_eq!(server.hits("/gadget"), 1);
    assert_eq!(server.hits("/catalog/widget.html"), 1);
}

#[test]
fn text_shows_the_whole_visible_text_by_blocks() {
    let server = TestServer::start();
    let record = run_jsonl(&[server.url("/shop/t")], &["--text"]).record();
    let text = record["content"].as_str().expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Deals & offers");
    assert_eq!(lines[1], "Widget € 10");
    assert!(lines.contains(&"Unclosed bold and italic"), "{lines:?}");
    for hidden in ["fake", "color: red", "turn on scripts", "inert", "Shop t"] {
        assert!(!text.contains(hidden), "{hidden:?} in {text:?}");
    }
    let record = run_jsonl(&[server.url("/shop/t")], &["--text", "--truncate", "10"]).record();
    assert_eq!(
        record["content"]
            .as_str()
            .expect("text")
            .replace('\n', "")
            .chars()
            .count(),
        10
    );
}

#[test]
fn non_html_is_not_an_error_and_xhtml_is_parsed() {
    let server = TestServer::start();
    let out = run_jsonl(
        &[server.url("/echo-headers"), server.url("/xhtml")],
        &["-s", "h1", "--links"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let records = out.records();
    let plain = &records[&server.url("/echo-headers")];
    assert_eq!(plain["selected"]["h1"], serde_json::json!([]));
    assert_eq!(plain["links"], serde_json::json!([]));
    assert_eq!(plain["error"], serde_json::Value::Null);
    assert_eq!(
        records[&server.url("/xhtml")]["selected"]["h1"],
        serde_json::json!(["Served as XHTML"])
    );
}

#[test]
fn parsing_a_huge_page_does_not_hold_up_the_others() {
    let server = TestServer::start();
    let mut urls = vec![server.url("/huge-html/8")];
    urls.extend((0..24).map(|i| server.url(&format!("/slow/100/{i}"))));
    let out = run_jsonl(
        &urls,
        &["-s", "p", "-c", "8", "--per-host", "8", "-t", "60s"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let records = out.records();
    let huge = &records[&server.url("/huge-html/8")];
    assert!(huge["selected"]["p"].as_array().expect("values").len() > 100_000);
    for i in 0..24 {
        let small = &records[&server.url(&format!("/slow/100/{i}"))];
        let elapsed = small["elapsed_ms"].as_u64().expect("elapsed");
        assert!(
            elapsed < 1500,
            "a small page took {elapsed} ms while the huge one was parsed"
        );
    }
}
