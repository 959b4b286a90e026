//! `--out-dir`: files on disk, the manifest, incremental runs, change detection, and faults (a
//! dying server, a file-size limit, SIGKILL, a second run on the same directory).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::{
    Run, TestServer, created_file_mode, file_mode, finish, list, run, run_jsonl, scrape, signal,
};

/// scrape started on `list` with `-o dir` and jsonl output, for a test that signals it mid-run.
fn spawn_mirror(dir: &Path, list: &Path, args: &[&str]) -> std::process::Child {
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress"])
        .args(args)
        .arg("-o")
        .arg(dir)
        .arg(list);
    cmd.spawn().expect("spawn")
}

fn run_mirror(urls: &[String], dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["-o", dir.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_jsonl(urls, &all)
}

/// The manifest's lines by URL; a later line for a URL replaces an earlier one.
fn manifest(dir: &Path) -> HashMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("manifest.jsonl")).expect("manifest");
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("manifest line is not JSON ({e}): {line}"));
            (value["url"].as_str().expect("url").to_string(), value)
        })
        .collect()
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir` (relative paths), scrape's own included.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                stack.push(entry.path());
            } else {
                found.push(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .expect("inside")
                        .to_path_buf(),
                );
            }
        }
    }
    found.sort();
    found
}

/// Every manifest entry with a path names a file whose content has the recorded hash.
fn assert_manifest_matches_disk(dir: &Path) {
    for (url, entry) in manifest(dir) {
        if let Some(path) = entry["path"].as_str() {
            assert_eq!(
                sha256(&dir.join(path)),
                entry["sha256"],
                "{url}: file and manifest differ"
            );
        }
    }
}

fn no_temp_files(dir: &Path) -> bool {
    files(dir)
        .iter()
        .all(|f| !f.to_string_lossy().contains(".#"))
}

#[test]
fn pages_are_saved_by_url_with_a_manifest() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = server.port();
    let urls = [
        server.url("/page/a"),
        server.url("/redirect/0"),
        server.url("/status/404"),
    ];
    let out = run_mirror(&urls, dir.path(), &[]);
    assert_eq!(out.code, 1, "{out:?}");

    let site = format!("127.0.0.1_{port}_http");
    let page_a = dir.path().join(&site).join("page#/a");
    let body = std::fs::read_to_string(&page_a).expect("saved page");
    assert!(body.contains("<title>Page a</title>"), "{body}");
    assert!(dir.path().join(&site).join("redirect#/0").is_file());

    let records = out.records();
    assert_eq!(
        records[&server.url("/page/a")]["path"],
        format!("{site}/page#/a")
    );
    assert_eq!(
        records[&server.url("/status/404")]["path"],
        serde_json::Value::Null
    );

    let manifest = manifest(dir.path());
    assert_eq!(manifest.len(), 3);
    let entry = &manifest[&server.url("/page/a")];
    assert_eq!(entry["path"], format!("{site}/page#/a"));
    assert_eq!(entry["sha256"], sha256(&page_a));
    assert_eq!(entry["changed"], true);
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["title"], "Page a");
    let fetched_at = entry["fetched_at"].as_str().expect("fetched_at");
    assert!(
        fetched_at.ends_with('Z') && fetched_at.contains('T'),
        "{fetched_at}"
    );
    assert_eq!(
        manifest[&server.url("/status/404")]["path"],
        serde_json::Value::Null
    );
    assert!(
        out.stderr
            .contains("saved     2 new, 0 changed, 0 unchanged, 1 failed"),
        "{}",
        out.stderr
    );
    assert!(no_temp_files(dir.path()));
    for file in [page_a, dir.path().join("manifest.jsonl")] {
        assert_eq!(
            file_mode(&file),
            created_file_mode(),
            "{} is readable as curl's files are",
            file.display()
        );
    }
}

#[test]
fn an_etag_turns_the_next_run_into_a_304() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = [server.url("/cached/e"), server.url("/dated/d")];
    let first = run_mirror(&urls, dir.path(), &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let before = manifest(dir.path());
    assert_eq!(before[&server.url("/cached/e")]["etag"], "\"e-v1\"");
    assert_eq!(
        before[&server.url("/dated/d")]["last_modified"],
        "Tue, 03 Nov 2026 10:00:00 GMT"
    );

    let second = run_mirror(&urls, dir.path(), &[]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(server.conditional_hits("/cached/e"), 1);
    assert_eq!(server.conditional_hits("/dated/d"), 1);
    for url in &urls {
        let record = &second.records()[url];
        assert_eq!(record["status"], 304, "{url}");
        assert_eq!(record["ok"], true, "{url}");
        let entry = &manifest(dir.path())[url];
        assert_eq!(entry["changed"], false, "{url}");
        assert_eq!(entry["sha256"], before[url]["sha256"], "{url}");
    }
    assert_manifest_matches_disk(dir.path());
    assert!(
        second.stderr.contains("0 new, 0 changed, 2 unchanged"),
        "{}",
        second.stderr
    );

    let third = run_mirror(&urls, dir.path(), &["--refetch"]);
    assert_eq!(third.records()[&server.url("/cached/e")]["status"], 200);
    assert_eq!(
        server.conditional_hits("/cached/e"),
        1,
        "--refetch sent a validator"
    );
}

#[test]
fn content_decides_whether_a_page_changed() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let same = server.url("/page/same");
    let moving = server.url("/counter/c");
    run_mirror(&[same.clone(), moving.clone()], dir.path(), &[]);
    let first = manifest(dir.path());

    let out = run_mirror(
        &[same.clone(), moving.clone()],
        dir.path(),
        &["--fail-on-change"],
    );
    let second = manifest(dir.path());
    assert_eq!(second[&same]["status"], 200);
    assert_eq!(second[&same]["changed"], false);
    assert_eq!(second[&same]["sha256"], first[&same]["sha256"]);
    assert_eq!(second[&moving]["changed"], true);
    assert_ne!(second[&moving]["sha256"], first[&moving]["sha256"]);
    assert_manifest_matches_disk(dir.path());
    assert_eq!(out.code, 1, "--fail-on-change with a changed page: {out:?}");
    assert!(
        out.stderr.contains("0 new, 1 changed, 1 unchanged"),
        "{}",
        out.stderr
    );

    let out = run_mirror(&[same], dir.path(), &["--fail-on-change"]);
    assert_eq!(out.code, 0, "nothing changed: {out:?}");
}

#[test]
fn skip_existing_sends_no_request_for_saved_pages() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    run_mirror(&[server.url("/page/s")], dir.path(), &[]);
    let out = run_mirror(
        &[server.url("/page/s"), server.url("/page/t")],
        dir.path(),
        &["--skip-existing"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        server.hits("/page/s"),
        1,
        "a saved page was requested again"
    );
    assert_eq!(server.hits("/page/t"), 1);
    let skipped = &out.records()[&server.url("/page/s")];
    assert_eq!(skipped["ok"], true);
    assert_eq!(skipped["attempts"], 0);
    assert_manifest_matches_disk(dir.path());
    assert_eq!(manifest(dir.path()).len(), 2);
}

#[test]
fn urls_gone_from_the_list_are_reported_and_pruned_on_request() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (kept, dropped) = (server.url("/page/kept"), server.url("/page/dropped"));
    run_mirror(&[kept.clone(), dropped.clone()], dir.path(), &[]);
    let dropped_file = dir.path().join(
        manifest(dir.path())[&dropped]["path"]
            .as_str()
            .expect("path"),
    );

    let out = run_mirror(std::slice::from_ref(&kept), dir.path(), &[]);
    assert!(
        out.stderr.contains("gone      1 no longer in the list"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&dropped), "{}", out.stderr);
    assert!(
        dropped_file.exists(),
        "a gone page's file was removed without --prune"
    );
    assert_eq!(manifest(dir.path()).len(), 1);

    // The manifest no longer lists it, so a later --prune cannot see it: prune on the run that
    // notices the URL is gone.
    run_mirror(&[kept.clone(), dropped.clone()], dir.path(), &[]);
    let out = run_mirror(std::slice::from_ref(&kept), dir.path(), &["--prune"]);
    assert!(out.stderr.contains("1 files removed"), "{}", out.stderr);
    assert!(!dropped_file.exists(), "--prune left the file");
    assert!(
        dir.path()
            .join(manifest(dir.path())[&kept]["path"].as_str().expect("path"))
            .exists()
    );
}

#[test]
fn a_body_that_breaks_off_never_replaces_the_good_copy() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = server.url("/flip/f");
    run_mirror(std::slice::from_ref(&url), dir.path(), &[]);
    let path = dir
        .path()
        .join(manifest(dir.path())[&url]["path"].as_str().expect("path"));
    let good = std::fs::read_to_string(&path).expect("good copy");

    let out = run_mirror(std::slice::from_ref(&url), dir.path(), &["--retries", "0"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.record()["error"].is_string(), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(&path).expect("still there"), good);
    let entry = &manifest(dir.path())[&url];
    assert_eq!(entry["ok"], false);
    assert_eq!(
        entry["path"],
        out.record()["path"],
        "the kept copy stays in the manifest"
    );
    assert_manifest_matches_disk(dir.path());
    assert!(no_temp_files(dir.path()));
}

#[test]
fn a_second_run_on_the_same_directory_is_refused() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = list(&[server.url("/hang")]);
    let mut first = scrape();
    first
        .args(["--no-progress", "-t", "30s", "-o"])
        .arg(dir.path())
        .arg(file.path());
    let mut first = first.spawn().expect("spawn");
    // Wait until the first run holds the lock (its request reached the server).
    for _ in 0..500 {
        if server.hits("/hang") > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run_mirror(&[server.url("/page/x")], dir.path(), &[]);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.code, 2, "{second:?}");
    assert!(
        second.stderr.contains("in use by another scrape run"),
        "{}",
        second.stderr
    );
    assert_eq!(server.hits("/page/x"), 0);
}

#[test]
fn an_out_dir_that_is_a_file_is_an_error_naming_it() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let out = run_mirror(&["http://127.0.0.1:9/".into()], file.path(), &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&file.path().display().to_string()),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_file_size_limit_fails_that_page_cleanly() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = list(&[server.url("/big/2"), server.url("/page/small")]);
    // ulimit -f counts 1024-byte blocks: 512 KiB lets the small page through, not the big one.
    let script = format!(
        "ulimit -f 512; exec '{}' -f jsonl --no-progress -o '{}' '{}'",
        env!("CARGO_BIN_EXE_scrape"),
        dir.path().display(),
        file.path().display()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run(cmd);
    assert_eq!(out.code, 2, "an output error is exit 2: {out:?}");
    let records = out.records();
    let big = &records[&server.url("/big/2")];
    let error = big["error"].as_str().expect("error");
    assert!(
        error.starts_with("cannot save ") && error.contains("File too large"),
        "{error}"
    );
    assert_eq!(records[&server.url("/page/small")]["ok"], true);
    let manifest = manifest(dir.path());
    assert_eq!(
        manifest[&server.url("/big/2")]["path"],
        serde_json::Value::Null
    );
    assert_manifest_matches_disk(dir.path());
    assert!(no_temp_files(dir.path()));
}

#[test]
fn hostile_urls_are_saved_inside_the_directory() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().expect("temp dir");
    let dir = parent.path().join("pages");
    let urls: Vec<String> = [
        "/page/..%2f..%2f..%2fescaped",
        "/page/q?to=../../../etc/passwd",
        "/page/a%5c..%5c..%5cb",
        "/page/%00nul",
        "/page/..%252f..%252fx",
    ]
    .iter()
    .map(|p| server.url(p))
    .collect();
    let out = run_mirror(&urls, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let outside: Vec<PathBuf> = files(parent.path())
        .into_iter()
        .filter(|f| !f.starts_with("pages"))
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the directory: {outside:?}"
    );
    assert_eq!(manifest(&dir).len(), urls.len());
    assert_manifest_matches_disk(&dir);
}

#[test]
fn sigkill_mid_run_leaves_a_manifest_that_matches_the_disk() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut urls: Vec<String> = (0..20).map(|i| server.url(&format!("/page/{i}"))).collect();
    urls.push(server.url("/hang"));
    // A first complete run, so the kill happens while pages are being replaced.
    run_mirror(&urls[..20], dir.path(), &["--refetch"]);
    let file = list(&urls);
    let mut child = spawn_mirror(
        dir.path(),
        file.path(),
        &["--refetch", "-c", "2", "-t", "30s"],
    );
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    for _ in 0..10 {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("results arrive");
    }
    signal(&child, "KILL");
    let _ = finish(child);

    assert_manifest_matches_disk(dir.path());
    // The next run cleans up whatever the killed one left, and completes.
    let out = run_mirror(&urls[..20], dir.path(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(manifest(dir.path()).len(), 20);
    assert_manifest_matches_disk(dir.path());
    assert!(no_temp_files(dir.path()));
}

/// Ctrl-C while many pages are being saved: every page file on disk has its manifest line, and
/// every line its file (a page put in place whose record never reached the manifest would be
/// invisible to the next run's change detection).
#[test]
fn ctrl_c_mid_run_leaves_no_page_file_without_its_manifest_line() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let urls: Vec<String> = (0..20_000)
        .map(|i| server.url(&format!("/page/{i}")))
        .collect();
    let file = list(&urls);
    let mut child = spawn_mirror(dir.path(), file.path(), &["-c", "64", "--per-host", "64"]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    for _ in 0..300 {
        line.clear();
        stdout.read_line(&mut line).expect("a result");
    }
    signal(&child, "INT");
    std::io::copy(&mut stdout, &mut std::io::sink()).expect("drain stdout");
    let out = finish(child);
    assert_eq!(out.code, 130, "{out:?}");
    let recorded: HashSet<PathBuf> = manifest(dir.path())
        .values()
        .filter_map(|entry| entry["path"].as_str().map(PathBuf::from))
        .collect();
    let pages: Vec<PathBuf> = files(dir.path())
        .into_iter()
        .filter(|f| f.components().count() > 1)
        .collect();
    assert!(pages.len() >= 300, "{} pages saved", pages.len());
    assert!(pages.len() < urls.len(), "the run was not stopped");
    for page in &pages {
        assert!(
            recorded.contains(page),
            "{} is on disk but not in the manifest",
            page.display()
        );
    }
    assert_manifest_matches_disk(dir.path());
    assert!(no_temp_files(dir.path()));
}

#[test]
fn sigterm_with_an_out_dir_exits_143_with_a_valid_manifest() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = list(&[server.url("/page/done"), server.url("/hang")]);
    let mut child = spawn_mirror(dir.path(), file.path(), &["-t", "30s"]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first result");
    signal(&child, "TERM");
    let out = finish(child);
    assert_eq!(out.code, 143, "{out:?}");
    let manifest = manifest(dir.path());
    assert_eq!(manifest.len(), 1, "only the completed page is recorded");
    assert_manifest_matches_disk(dir.path());
    assert!(no_temp_files(dir.path()));
}
