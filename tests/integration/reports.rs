//! Reports for CI systems, parsed back: JSON, JUnit XML (with a real XML parser), SARIF, GitHub
//! annotations, Markdown, and `--report` files written beside stdout.

use std::path::Path;

use crate::support::{Run, TestServer, created_file_mode, file_mode, list, run, scrape};

/// Two pages that pass, a 404, and an invalid line (line 4 of the list).
fn mixed(server: &TestServer) -> Vec<String> {
    vec![
        server.url("/page/one"),
        server.url("/page/two"),
        server.url("/status/404"),
        "ftp://example.com/file".into(),
    ]
}

fn run_format(urls: &[String], format: &str, extra: &[&str]) -> (Run, String) {
    let file = list(urls);
    let mut cmd = scrape();
    cmd.args(["--no-progress", "--retries", "0", "-f", format])
        .args(extra)
        .arg(file.path());
    (run(cmd), file.path().display().to_string())
}

#[test]
fn json_is_one_document_with_results_and_summary() {
    let server = TestServer::start();
    let (out, _) = run_format(&mixed(&server), "json", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(document["results"].as_array().expect("results").len(), 4);
    assert_eq!(document["summary"]["entries"], 4);
    assert_eq!(document["summary"]["ok"], 2);
    assert_eq!(document["summary"]["failed"], 2);
    assert_eq!(document["summary"]["statuses"]["404"], 1);
    assert!(document["summary"]["latency_ms"]["p90"].is_u64());
}

#[test]
fn junit_has_a_testcase_per_url_and_a_failure_per_failed_one() {
    let server = TestServer::start();
    let (out, _) = run_format(&mixed(&server), "junit", &[]);
    let document = roxmltree::Document::parse(&out.stdout).expect("well-formed XML");
    let suite = document
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("tests"), Some("4"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let failures: Vec<&str> = cases
        .iter()
        .filter_map(|c| c.children().find(|n| n.has_tag_name("failure")))
        .filter_map(|f| f.attribute("message"))
        .collect();
    assert_eq!(failures.len(), 2);
    assert!(
        failures.contains(&"status 404 not accepted"),
        "{failures:?}"
    );
}

#[test]
fn sarif_locates_each_failure_in_the_list() {
    let server = TestServer::start();
    let (out, list_path) = run_format(&mixed(&server), "sarif", &[]);
    let sarif: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "scrape");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "one result per failed URL");
    for result in results {
        assert!(result["message"]["text"].is_string());
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], list_path.as_str());
        assert!(matches!(
            location["region"]["startLine"].as_u64(),
            Some(3 | 4)
        ));
    }
}

#[test]
fn github_annotations_point_at_the_list_lines() {
    let server = TestServer::start();
    let (out, list_path) = run_format(&mixed(&server), "github", &[]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let prefix = format!("::error file={list_path},line=3,");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&prefix) && l.ends_with("status 404 not accepted")),
        "{lines:?}"
    );
}

#[test]
fn markdown_is_a_summary_and_a_table() {
    let server = TestServer::start();
    let (out, _) = run_format(&mixed(&server), "markdown", &[]);
    assert!(
        out.stdout.starts_with("## scrape: 2 of 4 URLs ok\n"),
        "{}",
        out.stdout
    );
    let rows = out.stdout.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(rows, 5, "a header and four rows:\n{}", out.stdout);
}

#[test]
fn reports_are_written_beside_stdout_by_extension() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (out, _) = run_format(
        &mixed(&server),
        "text",
        &[
            "-q",
            "--report",
            &path("r.json"),
            "--report",
            &path("r.xml"),
            "--report",
            &path("r.csv"),
            "--report",
            &path("r.md"),
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "-q keeps stdout to failures: {}",
        out.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("r.json")).expect("json"))
            .expect("parses");
    assert_eq!(
        json["results"].as_array().expect("results").len(),
        4,
        "reports get every URL"
    );
    roxmltree::Document::parse(&std::fs::read_to_string(path("r.xml")).expect("xml"))
        .expect("parses");
    assert_eq!(
        file_mode(Path::new(&path("r.xml"))),
        created_file_mode(),
        "a report is readable as curl's files are"
    );
    let csv = std::fs::read_to_string(path("r.csv")).expect("csv");
    assert_eq!(
        csv::Reader::from_reader(csv.as_bytes()).records().count(),
        4
    );
    assert!(
        std::fs::read_to_string(path("r.md"))
            .expect("md")
            .starts_with("## scrape")
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| {
            !Path::new(n)
                .extension()
                .is_some_and(|e| ["json", "xml", "csv", "md"].contains(&e.to_str().unwrap_or("")))
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_report_name_without_a_known_extension_is_a_usage_error() {
    let mut cmd = scrape();
    cmd.args(["--report", "results.txt", "http://127.0.0.1:9/"]);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("results.txt"), "{}", out.stderr);
}
