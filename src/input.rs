//! Reads URL lists as a stream of entries: one thread reads the files (and standard input) line by
//! line and sends the entries down a bounded channel in batches, so fetching starts after the first
//! line, reading waits when the fetchers are busy, and a list of a million lines is never held in
//! memory. A batch goes out when it is full or when the next read would wait for more input (a
//! pipe fed line by line), so batching costs no latency; it saves a thread wake-up per URL.
//!
//! Each line is trimmed; blank lines and `#` comments are skipped; the rest is normalised to an
//! absolute http(s) URL or reported as invalid with its `FILE:LINE`. Duplicates (after
//! normalisation) are dropped by the `seen` set, which spills to temporary files to stay small.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use url::Url;

use crate::config::{Accept, InputSource};
use crate::dom::Field;
use crate::error::InputError;
use crate::record::Source;
use crate::seen::SeenSet;

/// Lines longer than this are invalid entries (and are skipped without being held in memory).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Entries sent at once.
const BATCH: usize = 128;
/// Batches waiting between the reader and the fetchers: ~1,000 entries (~200 KB) ahead of the
/// fetch windows. With 2, the two shards filling their windows at the start (256 entries at `-c
/// 64`) waited for the reader 8 to 15 times, ~100 µs each: on 2 busy cores its thread waits that
/// long for one once woken.
const CHANNEL_BATCHES: usize = 8;

/// A URL to fetch.
#[derive(Debug, Clone)]
pub struct Job {
    pub url: Url,
    pub source: Source,
    /// Expectations written after the URL on its line; they override the run-wide ones.
    pub expect: Option<Arc<Expect>>,
}

/// Per-URL expectations: `URL status=200 contains="Welcome" selector="h1.title" max_ms=800`.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub status: Option<Accept>,
    pub contains: Option<String>,
    pub selector: Option<Field>,
    pub max_latency: Option<Duration>,
}

/// One non-blank, non-comment line of input.
#[derive(Debug)]
pub enum Entry {
    Fetch(Job),
    /// Not a fetchable URL; `text` is the line as read (lossily decoded).
    Invalid {
        text: String,
        source: Source,
        error: InputError,
    },
    /// The same URL as an earlier line.
    Duplicate,
    /// Reading stopped part-way (an I/O error): the message names the file.
    ReadFailed(String),
}

/// An input that has been opened.
struct OpenInput {
    name: Arc<str>,
    reader: BufReader<Box<dyn Read + Send>>,
}

/// Opens every input now, so that a missing or unreadable file is a usage error before any request,
/// then reads them in order on a thread of their own. The receiver yields batches of entries until
/// the inputs are exhausted; dropping it stops the reader.
pub fn read(sources: &[InputSource]) -> anyhow::Result<mpsc::Receiver<Vec<Entry>>> {
    let mut inputs = Vec::with_capacity(sources.len());
    for source in sources {
        inputs.push(match source {
            InputSource::Stdin => OpenInput {
                name: Arc::from("-"),
                reader: BufReader::with_capacity(64 * 1024, Box::new(io::stdin())),
            },
            InputSource::Url(url) => OpenInput {
                name: Arc::from("(argument)"),
                reader: BufReader::new(Box::new(io::Cursor::new(url.clone().into_bytes()))),
            },
            InputSource::File(path) => {
                let file =
                    File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
                if file.metadata().is_ok_and(|m| m.is_dir()) {
                    anyhow::bail!("cannot read {}: it is a directory", path.display());
                }
                OpenInput {
                    name: Arc::from(path.display().to_string()),
                    reader: BufReader::with_capacity(64 * 1024, Box::new(file)),
                }
            }
        });
    }
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    std::thread::Builder::new()
        .name("scrape-input".into())
        .spawn(move || read_all(inputs, &tx))
        .context("cannot start the input reader")?;
    Ok(rx)
}

fn read_all(inputs: Vec<OpenInput>, tx: &mpsc::Sender<Vec<Entry>>) {
    let mut seen = SeenSet::default();
    let mut batch = Vec::with_capacity(BATCH);
    for mut input in inputs {
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            number += 1;
            let entry = match read_line(&mut input.reader, &mut line) {
                Ok(LineRead::Eof) => break,
                Ok(LineRead::Line) => {
                    let source = Source {
                        file: Arc::clone(&input.name),
                        line: number,
                    };
                    match parse_line(&line) {
                        None => None,
                        Some(Ok((url, _))) if !seen.insert(&url) => Some(Entry::Duplicate),
                        Some(Ok((url, expect))) => Some(Entry::Fetch(Job {
                            url,
                            source,
                            expect: expect.map(Arc::new),
                        })),
                        Some(Err(error)) => Some(Entry::Invalid {
                            text: String::from_utf8_lossy(line.trim_ascii()).into_owned(),
                            source,
                            error,
                        }),
                    }
                }
                Ok(LineRead::TooLong) => Some(Entry::Invalid {
                    text: String::from_utf8_lossy(&line[..80]).into_owned() + "…",
                    source: Source {
                        file: Arc::clone(&input.name),
                        line: number,
                    },
                    error: InputError::TooLong(MAX_LINE_BYTES),
                }),
                Err(error) => {
                    batch.push(Entry::ReadFailed(format!(
                        "cannot read {} at line {number}: {error}",
                        input.name
                    )));
                    let _ = tx.blocking_send(batch);
                    return;
                }
            };
            batch.extend(entry);
            let would_wait = input.reader.buffer().is_empty();
            if (batch.len() >= BATCH || (would_wait && !batch.is_empty()))
                && tx
                    .blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                    .is_err()
            {
                return; // the run stopped listening (Ctrl-C, closed stdout)
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}

/// The number of entries (non-blank, non-comment lines) in the inputs, for a progress total; `None`
/// when one of them is standard input, which can be read only once. Reads the files a second time,
/// in constant memory, and is meant to run beside the real reading.
pub fn count_entries(sources: &[InputSource]) -> Option<u64> {
    let mut total = 0;
    for source in sources {
        total += match source {
            InputSource::Stdin => return None,
            InputSource::Url(_) => 1,
            InputSource::File(path) => {
                let mut reader = BufReader::with_capacity(256 * 1024, File::open(path).ok()?);
                let mut line = Vec::new();
                let mut count = 0;
                loop {
                    line.clear();
                    match read_line(&mut reader, &mut line).ok()? {
                        LineRead::Eof => break,
                        LineRead::TooLong => count += 1,
                        LineRead::Line => {
                            let text = line.trim_ascii();
                            count += u64::from(!text.is_empty() && !text.starts_with(b"#"));
                        }
                    }
                }
                count
            }
        };
    }
    Some(total)
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line (without its newline) into `line`, holding at most `MAX_LINE_BYTES` of it: the
/// rest of an over-long line is read and discarded.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<LineRead> {
    let read = (&mut *reader)
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(LineRead::Eof);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(LineRead::Line);
    }
    if line.len() <= MAX_LINE_BYTES {
        return Ok(LineRead::Line); // the last line, without a newline
    }
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(LineRead::TooLong);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(LineRead::TooLong);
            }
            None => {
                let len = buf.len();
                reader.consume(len);
            }
        }
    }
}

/// A line's meaning: `None` for a blank line or a `#` comment, else the URL and its expectations,
/// or why it is not one.
pub fn parse_line(raw: &[u8]) -> Option<Result<(Url, Option<Expect>), InputError>> {
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text.trim(),
        Err(_) => return Some(Err(InputError::InvalidUtf8)),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let (url, rest) = match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    };
    // Text after the URL is expectations (`key=value`); anything else is a URL with a space in it.
    if !rest.is_empty()
        && !rest
            .split_whitespace()
            .next()
            .is_some_and(|t| t.contains('='))
    {
        return Some(Err(InputError::Whitespace));
    }
    Some(normalize(url).and_then(|url| {
        let expect = if rest.is_empty() {
            None
        } else {
            Some(parse_expectations(rest).map_err(InputError::Expectation)?)
        };
        Ok((url, expect))
    }))
}

/// `status=200 contains="Welcome home" selector="h1.title" max_ms=800`: `key=value` pairs, a value
/// in double quotes when it has spaces (`\"` and `\\` inside quotes escape themselves).
fn parse_expectations(text: &str) -> Result<Expect, String> {
    let mut expect = Expect::default();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| {
            format!(
                "'{}' is not key=value",
                rest.split_whitespace().next().unwrap_or(rest)
            )
        })?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c)) => value.push(c),
                            None => return Err(format!("unterminated quote after {key}=")),
                        },
                        Some((i, '"')) => break i + 1,
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("unterminated quote after {key}=")),
                    }
                };
                (value, &quoted[end..])
            }
            None => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            }
        };
        if !after.is_empty() && !after.starts_with(char::is_whitespace) {
            return Err(format!("expected a space after {key}=\"{value}\""));
        }
        match key {
            "status" => expect.status = Some(value.parse()?),
            "contains" => expect.contains = Some(value),
            "selector" => expect.selector = Some(Field::parse(&value)?),
            "max_ms" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| format!("max_ms={value} is not a number of milliseconds"))?;
                expect.max_latency = Some(Duration::from_millis(ms));
            }
            other => {
                return Err(format!(
                    "unknown key '{other}' (status, contains, selector or max_ms)"
                ));
            }
        }
        rest = after.trim_start();
    }
    Ok(expect)
}

/// Schemes that take no `//host`: a line with one of these is never a bare host name.
const OPAQUE_SCHEMES: &[&str] = &[
    "mailto",
    "javascript",
    "data",
    "tel",
    "file",
    "about",
    "urn",
];

/// Turns one trimmed line into the URL to fetch: absolute http(s), fragment dropped (it is never sent),
/// host lowercased and IDNA-encoded, default port and dot segments removed (by the `url` crate). A
/// bare host such as `example.com/path` or `localhost:8080/` becomes https://.
pub fn normalize(text: &str) -> Result<Url, InputError> {
    if text.chars().any(char::is_whitespace) {
        return Err(InputError::Whitespace);
    }
    let mut url = match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        Ok(url) if text.contains("://") || OPAQUE_SCHEMES.contains(&url.scheme()) => {
            return Err(InputError::UnsupportedScheme(url.scheme().to_string()));
        }
        // `localhost:8080/x` parses as scheme "localhost"; `example.com/x` does not parse at all.
        _ => bare_host(text)?,
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InputError::NotAUrl("no host".into()));
    }
    url.set_fragment(None);
    Ok(url)
}

fn bare_host(text: &str) -> Result<Url, InputError> {
    let url =
        Url::parse(&format!("https://{text}")).map_err(|e| InputError::NotAUrl(e.to_string()))?;
    let plausible = match url.host() {
        Some(url::Host::Domain(domain)) => domain.contains('.') || domain == "localhost",
        Some(_) => true, // an IP address
        None => false,
    };
    if plausible {
        Ok(url)
    } else {
        Err(InputError::NotAUrl(
            "neither an http(s) URL nor a host name".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> String {
        normalize(text).expect(text).to_string()
    }

    #[test]
    fn absolute_urls_are_normalised() {
        assert_eq!(
            url("HTTP://Example.COM:80/a/../b#frag"),
            "http://example.com/b"
        );
        assert_eq!(url("https://example.com"), "https://example.com/");
        assert_eq!(url("http://[::1]:8080/x"), "http://[::1]:8080/x");
        assert_eq!(
            url("http://127.0.0.1:3000/?q=1"),
            "http://127.0.0.1:3000/?q=1"
        );
    }

    #[test]
    fn bare_hosts_become_https() {
        assert_eq!(url("example.com/path"), "https://example.com/path");
        assert_eq!(url("localhost:8080/x"), "https://localhost:8080/x");
        assert_eq!(url("10.0.0.1/x"), "https://10.0.0.1/x");
    }

    #[test]
    fn other_lines_are_invalid_with_a_reason() {
        assert_eq!(
            normalize("ftp://example.com/x"),
            Err(InputError::UnsupportedScheme("ftp".into()))
        );
        assert_eq!(
            normalize("mailto:me@example.com"),
            Err(InputError::UnsupportedScheme("mailto".into()))
        );
        assert_eq!(
            normalize("http://example.com/a b"),
            Err(InputError::Whitespace)
        );
        assert!(matches!(
            parse_line(b"http://example.com/a b"),
            Some(Err(InputError::Whitespace))
        ));
        assert!(matches!(normalize("garbage"), Err(InputError::NotAUrl(_))));
        assert!(matches!(normalize("http://"), Err(InputError::NotAUrl(_))));
        assert!(matches!(
            normalize("http://exa mple"),
            Err(InputError::Whitespace)
        ));
        assert!(matches!(
            normalize("https://[::1"),
            Err(InputError::NotAUrl(_))
        ));
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        assert!(parse_line(b"").is_none());
        assert!(parse_line(b"   \t").is_none());
        assert!(parse_line(b"# a comment").is_none());
        assert!(
            parse_line(b"  http://example.com/  \r")
                .is_some_and(|r| r.is_ok_and(|(_, e)| e.is_none()))
        );
        assert!(matches!(
            parse_line(b"http://\xff"),
            Some(Err(InputError::InvalidUtf8))
        ));
    }

    #[test]
    fn expectations_follow_the_url() {
        let line = br#"https://example.com/ status=200..=299,304 contains="Welcome \"home\"" selector="h1.title" max_ms=800"#;
        let (url, expect) = parse_line(line).expect("a line").expect("valid");
        assert_eq!(url.as_str(), "https://example.com/");
        let expect = expect.expect("expectations");
        assert!(
            expect
                .status
                .as_ref()
                .is_some_and(|s| s.contains(304) && !s.contains(301))
        );
        assert_eq!(expect.contains.as_deref(), Some("Welcome \"home\""));
        assert_eq!(
            expect.selector.as_ref().map(|f| f.name.as_str()),
            Some("h1.title")
        );
        assert_eq!(expect.max_latency, Some(Duration::from_millis(800)));
    }

    #[test]
    fn malformed_expectations_are_input_errors() {
        for (line, fragment) in [
            (
                &b"https://e.com/ status=abc"[..],
                "'abc' is not an HTTP status",
            ),
            (b"https://e.com/ colour=red", "unknown key 'colour'"),
            (b"https://e.com/ contains=\"open", "unterminated quote"),
            (b"https://e.com/ selector=\"div[\"", "invalid CSS selector"),
            (b"https://e.com/ max_ms=fast", "max_ms=fast"),
            (b"https://e.com/ status=200 justtext", "not key=value"),
        ] {
            match parse_line(line) {
                Some(Err(InputError::Expectation(reason))) => {
                    assert!(reason.contains(fragment), "{reason:?} lacks {fragment:?}");
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(line)),
            }
        }
    }

    #[test]
    fn over_long_lines_are_skipped_without_losing_the_next() {
        let mut data = vec![b'a'; MAX_LINE_BYTES * 3];
        data.extend_from_slice(b"\nhttp://next/\n");
        let mut reader = BufReader::with_capacity(1024, &data[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line(&mut reader, &mut line),
            Ok(LineRead::TooLong)
        ));
        assert!(line.len() <= MAX_LINE_BYTES + 1);
        line.clear();
        assert!(matches!(
            read_line(&mut reader, &mut line),
            Ok(LineRead::Line)
        ));
        assert_eq!(line, b"http://next/");
        line.clear();
        assert!(matches!(
            read_line(&mut reader, &mut line),
            Ok(LineRead::Eof)
        ));
    }

    #[test]
    fn entries_are_counted_without_blank_lines_and_comments() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, b"# list\nhttp://a/\n\n  \nnot a url\nhttp://a/")
            .expect("write");
        let sources = [
            InputSource::File(file.path().to_path_buf()),
            InputSource::Url("http://b/".into()),
        ];
        assert_eq!(count_entries(&sources), Some(4));
        assert_eq!(count_entries(&[InputSource::Stdin]), None);
    }
}
