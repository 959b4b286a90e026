//! Micro-benchmarks of the work scrape does for every URL, so that a regression shows before the
//! lab (`bench/run.sh`) is run: the title/preview pass over a page, URL normalisation, the
//! duplicate check, and the SHA-256 that `--out-dir` takes of every page for its manifest.
//! `cargo bench` runs them; numbers are per call.

use divan::{Bencher, black_box};
use scrape::extract::Scanner;
use scrape::input::normalize;
use scrape::seen::SeenSet;
use sha2::{Digest, Sha256};

fn main() {
    divan::main();
}

/// A page shaped like the lab's corpus (and much of the web): a head with a charset, a title and
/// links, a navigation bar, then paragraphs of text; `paragraphs` sets its size (~520 bytes each).
fn page(paragraphs: usize) -> Vec<u8> {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Network ipsum crawler et #123</title>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n<body>\n\
         <header><h1>Network ipsum crawler et</h1><nav>",
    );
    for i in 0..8 {
        html.push_str(&format!("<a href=\"/p/{:06}.html\">link {i}</a> ", i * 37));
    }
    html.push_str("</nav></header>\n<main>\n");
    for i in 0..paragraphs {
        html.push_str(&format!(
            "<p>Paragraph {i}: network future consectetur scraper adipiscing do crawler rust \
             runtime incididunt sit eiusmod. Incididunt body adipiscing timeout response sed \
             buffer future kernel timeout buffer consectetur concurrency latency &amp; more. \
             Adipiscing lorem dolore network response stream aliqua amet latency magna amet. \
             Memory timeout aliqua lorem throughput ut crawler eiusmod magna semaphore. Elit \
             eiusmod ut ipsum stream throughput concurrency.</p>\n"
        ));
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html.into_bytes()
}

/// The streaming pass as `fetch` drives it: 16 KiB chunks (hyper's usual read size) until the
/// scanner has what it needs.
#[divan::bench(args = [4, 60, 2000])]
fn title_and_preview(bencher: Bencher, paragraphs: usize) {
    let body = page(paragraphs);
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .bench(|| {
            let mut scanner = Scanner::new(black_box(Some("text/html")), 100);
            for chunk in body.chunks(16 * 1024) {
                if !scanner.wants_more() {
                    break;
                }
                scanner.feed(chunk);
            }
            scanner.finish()
        });
}

#[divan::bench]
fn normalize_url(bencher: Bencher) {
    bencher.bench(|| {
        normalize(black_box(
            "HTTP://Example.COM:80/a/../docs/page-123.html?q=1#top",
        ))
    });
}

/// The duplicate check over a list of `n` distinct URLs (per URL: divide by `n`).
#[divan::bench(args = [10_000, 1_000_000], sample_count = 5)]
fn dedup_list(bencher: Bencher, n: usize) {
    let urls: Vec<url::Url> = (0..n)
        .map(|i| normalize(&format!("http://127.0.0.1:8080/p/{i:09}.html")).expect("valid"))
        .collect();
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .bench(|| {
            let mut seen = SeenSet::default();
            urls.iter().filter(|url| seen.insert(url)).count()
        });
}

/// The manifest's hash of a page the size of the lab's mean (60 paragraphs, ~32 KB), in the 16 KiB
/// chunks a body arrives in: the one cost of `--out-dir` that no peer pays, bound by the
/// CPU's SHA instructions.
#[divan::bench]
fn page_sha256(bencher: Bencher) {
    let body = page(60);
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .bench(|| {
            let mut hasher = Sha256::new();
            for chunk in black_box(&body).chunks(16 * 1024) {
                hasher.update(chunk);
            }
            hasher.finalize()
        });
}
