//! HTTPS with certificates made in the test: trust by --cacert, -k, and certificate errors in words.

use std::io::Write;

use crate::support::tls::Authority;
use crate::support::{TestServer, run, run_jsonl, scrape};

fn ca_file(authority: &Authority) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(authority.ca_pem.as_bytes())
        .expect("write CA");
    file
}

#[test]
fn a_server_signed_by_a_cacert_authority_is_trusted() {
    let authority = Authority::new();
    let server = TestServer::start_tls(&authority.leaf(&["127.0.0.1", "localhost"]));
    let ca = ca_file(&authority);
    let url = server.url("/page/secure");
    assert!(url.starts_with("https://"));
    let out = run_jsonl(
        std::slice::from_ref(&url),
        &["--cacert", &ca.path().display().to_string()],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.record()["title"], "Page secure");
}

#[test]
fn http2_is_used_when_the_server_offers_it() {
    let authority = Authority::new();
    let server = TestServer::start_tls(&authority.leaf(&["127.0.0.1"]));
    let plain = TestServer::start();
    let out = run_jsonl(&[server.url("/version"), plain.url("/version")], &["-k"]);
    let records = out.records();
    assert_eq!(records[&server.url("/version")]["content"], "HTTP/2.0");
    assert_eq!(records[&plain.url("/version")]["content"], "HTTP/1.1");
}

#[test]
fn an_untrusted_certificate_fails_in_words_unless_insecure() {
    let authority = Authority::new();
    let server = TestServer::start_tls(&authority.leaf(&["127.0.0.1"]));
    let url = server.url("/page/x");
    let out = run_jsonl(std::slice::from_ref(&url), &["--retries", "0"]);
    assert_eq!(out.code, 1, "{out:?}");
    let error = out.record()["error"].as_str().expect("error").to_string();
    assert!(
        error.starts_with("tls: certificate signed by an unknown issuer"),
        "{error}"
    );

    let out = run_jsonl(std::slice::from_ref(&url), &["-k"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.record()["title"], "Page x");
}

#[test]
fn a_certificate_for_another_host_is_named_as_such() {
    let authority = Authority::new();
    let server = TestServer::start_tls(&authority.leaf(&["other.test"]));
    let ca = ca_file(&authority);
    let out = run_jsonl(
        &[server.url("/page/x")],
        &[
            "--cacert",
            &ca.path().display().to_string(),
            "--retries",
            "0",
        ],
    );
    let error = out.record()["error"].as_str().expect("error").to_string();
    assert_eq!(error, "tls: certificate is for another host name");
}

#[test]
fn plain_http_on_an_https_url_is_explained() {
    let server = TestServer::start();
    let url = format!("https://{}/page/x", server.addr);
    let out = run_jsonl(&[url], &["--retries", "0"]);
    let error = out.record()["error"].as_str().expect("error").to_string();
    assert!(error.contains("plain HTTP on an https:// URL"), "{error}");
}

#[test]
fn a_cacert_without_certificates_is_a_usage_error() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"not a certificate").expect("write");
    let mut cmd = scrape();
    cmd.arg("--cacert")
        .arg(file.path())
        .arg("http://127.0.0.1:9/");
    let out = run(cmd);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("no PEM certificate in"),
        "{}",
        out.stderr
    );
}

#[test]
fn certificate_days_are_reported_and_gated() {
    let authority = Authority::new();
    let server =
        TestServer::start_tls(&authority.leaf_valid_for(&["127.0.0.1"], time::Duration::days(5)));
    let ca = ca_file(&authority);
    let ca_path = ca.path().display().to_string();
    let url = server.url("/page/cert");
    let out = run_jsonl(
        std::slice::from_ref(&url),
        &["--check", "--cacert", &ca_path],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let days = out.record()["cert_days"]
        .as_i64()
        .expect("cert_days for https");
    assert!((4..=5).contains(&days), "{days}");

    let out = run_jsonl(
        std::slice::from_ref(&url),
        &["--cacert", &ca_path, "--min-cert-days", "30"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    let error = out.record()["error"].as_str().expect("error").to_string();
    assert!(
        error.starts_with("certificate expires in ")
            && error.ends_with("days (--min-cert-days 30)"),
        "{error}"
    );

    let plain = TestServer::start();
    let record = run_jsonl(&[plain.url("/page/p")], &["--check"]).record();
    assert!(
        record.get("cert_days").is_none(),
        "plain http has no certificate: {record}"
    );
}

#[test]
fn an_expired_certificate_is_named_as_such() {
    let authority = Authority::new();
    let server =
        TestServer::start_tls(&authority.leaf_valid_for(&["127.0.0.1"], -time::Duration::hours(1)));
    let ca = ca_file(&authority);
    let out = run_jsonl(
        &[server.url("/page/old")],
        &[
            "--cacert",
            &ca.path().display().to_string(),
            "--retries",
            "0",
        ],
    );
    assert_eq!(out.record()["error"], "tls: certificate expired");
}

#[test]
fn without_system_authorities_a_run_warns_and_trusts_its_cacert_alone() {
    // A minimal container has no CA bundle: plain HTTP still works, https needs --cacert.
    let authority = Authority::new();
    let secure = TestServer::start_tls(&authority.leaf(&["127.0.0.1"]));
    let plain = TestServer::start();
    let urls = [secure.url("/page/secure"), plain.url("/page/plain")];
    let file = crate::support::list(&urls);
    let nowhere = tempfile::tempdir().expect("temp dir");
    let ca = ca_file(&authority);
    let without_system_roots = |extra: &[&str]| {
        let mut cmd = scrape();
        cmd.env("SSL_CERT_FILE", nowhere.path().join("none.pem"))
            .env("SSL_CERT_DIR", nowhere.path())
            .args(["-f", "jsonl", "--no-progress", "--retries", "0"])
            .args(extra)
            .arg(file.path());
        run(cmd)
    };

    let out = without_system_roots(&[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .lines()
            .any(|line| line.starts_with("scrape: warning: no CA certificates on this system")),
        "{}",
        out.stderr
    );
    let records = out.records();
    assert_eq!(records[&urls[1]]["title"], "Page plain");
    let error = records[&urls[0]]["error"].as_str().expect("error");
    assert!(
        error.starts_with("tls: certificate signed by an unknown issuer"),
        "{error}"
    );

    let out = without_system_roots(&["--cacert", &ca.path().display().to_string()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(out.records()[&urls[0]]["title"], "Page secure");
}
