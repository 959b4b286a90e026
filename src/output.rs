//! The stdout formats. Each writer takes records one at a time and writes them to any `W: Write`
//! (stdout in the binary, a `Vec<u8>` in tests); none of them computes anything about a result.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use anstyle::{AnsiColor, Style as Ansi};
use bytesize::ByteSize;
use serde::Serialize;

use crate::config::Format;
use crate::record::{Change, Outcome, Record};
use crate::sanitize::clean;
use crate::summary::Totals;

/// Writes records in one format.
pub trait Sink {
    fn write(&mut self, record: &Record) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    /// The run is over: write what comes after the records (a document's totals) and flush.
    fn finish(&mut self, _totals: &Totals) -> io::Result<()> {
        self.flush()
    }
}

/// How records are shown.
#[derive(Debug, Clone, Default)]
pub struct Style {
    pub format: Format,
    /// ANSI colours (text on a terminal only).
    pub color: bool,
    /// The preview length, so the text format can mark a preview that was cut short.
    pub preview_chars: usize,
    /// Pages are saved (`--out-dir`): show where.
    pub paths: bool,
    /// The names of the `--select` fields, in order.
    pub fields: Arc<[String]>,
    /// Show each page's links.
    pub links: bool,
    /// `content` is the whole text (`--text`), shown below the line in the text format.
    pub full_text: bool,
    /// CSV: join all matches of a field with this, instead of taking the first.
    pub join: Option<String>,
    /// Print only links (`--links-only`), whatever the format.
    pub links_only: bool,
    /// `--check`: the text format prints OK/FAIL lines.
    pub check: bool,
}

/// The writer for a style.
pub fn sink<W: Write + 'static>(style: Style, out: W) -> io::Result<Box<dyn Sink>> {
    if style.links_only {
        return Ok(Box::new(LinksSink { out }));
    }
    Ok(match style.format {
        Format::Text => Box::new(TextSink { out, style }),
        Format::Jsonl => Box::new(JsonlSink { out, style }),
        Format::Csv => Box::new(CsvSink {
            out: csv::Writer::from_writer(out),
            style,
            header_written: false,
        }),
        report => {
            crate::report::sink(report, &style, out)?.expect("every other format is a report")
        }
    })
}

/// The stable jsonl fields, shared by every structured format.
#[derive(Debug, Serialize)]
pub struct JsonRecord<'a> {
    pub url: &'a str,
    pub final_url: Option<&'a str>,
    pub status: Option<u16>,
    pub ok: bool,
    pub error: Option<String>,
    pub elapsed_ms: u64,
    pub bytes: u64,
    pub content_type: Option<&'a str>,
    pub title: Option<&'a str>,
    pub content: Option<&'a str>,
    pub truncated: bool,
    pub attempts: u32,
    /// Only under `--out-dir`: the saved file, relative to it (null when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Option<&'a str>>,
    /// Only with `--select`: the values of each field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<Selected<'a>>,
    /// Only with `--links`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<&'a [String]>,
    /// Only for https in check mode (or with `--min-cert-days`): days until the certificate expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_days: Option<i64>,
    /// Only after a `--confirm` recheck: `confirmed` or `passed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl<'a> JsonRecord<'a> {
    /// Adds the `path` field, as under `--out-dir`.
    pub fn with_path(mut self, path: Option<&'a str>) -> Self {
        self.path = Some(path);
        self
    }

    /// The record with the fields `style` asks for beyond the stable ones.
    pub fn styled(record: &'a Record, style: &'a Style) -> Self {
        let mut json = JsonRecord::from(record);
        let page = record.page();
        if style.paths {
            json = json.with_path(record.saved.as_ref().map(|s| s.path.as_str()));
        }
        if !style.fields.is_empty() {
            json.selected = Some(Selected {
                names: &style.fields,
                values: page.map_or(&[], |p| p.selected.as_slice()),
            });
        }
        if style.links {
            json.links = Some(page.map_or(&[], |p| p.links.as_slice()));
        }
        json
    }
}

/// `{"<field>": [values…], …}`, in the order of the fields.
#[derive(Debug)]
pub struct Selected<'a> {
    names: &'a [String],
    values: &'a [Vec<String>],
}

impl Serialize for Selected<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        for (i, name) in self.names.iter().enumerate() {
            map.serialize_entry(name, self.values.get(i).map_or(&[][..], Vec::as_slice))?;
        }
        map.end()
    }
}

impl<'a> From<&'a Record> for JsonRecord<'a> {
    fn from(record: &'a Record) -> Self {
        let page = record.page();
        JsonRecord {
            url: &record.url,
            final_url: page.map(|p| p.final_url.as_str()),
            status: page.map(|p| p.status),
            ok: record.is_ok(),
            error: record.error(),
            elapsed_ms: u64::try_from(record.elapsed.as_millis()).unwrap_or(u64::MAX),
            bytes: page.map_or(0, |p| p.bytes),
            content_type: page.and_then(|p| p.content_type.as_deref()),
            title: page.and_then(|p| p.title.as_deref()),
            content: page.and_then(|p| p.content.as_deref()),
            truncated: page.is_some_and(|p| p.truncated),
            attempts: record.attempts,
            path: None,
            selected: None,
            links: None,
            recheck: record.recheck.map(crate::record::Recheck::as_str),
            cert_days: page.and_then(|p| p.cert_days),
            source: matches!(record.outcome, Outcome::Invalid(_))
                .then(|| record.source.to_string()),
        }
    }
}

struct JsonlSink<W> {
    out: W,
    style: Style,
}

impl<W: Write> Sink for JsonlSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &JsonRecord::styled(record, &self.style))?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `200  12ms  31.2 KiB  https://example.com/  [Title]  preview…`, one line per URL. Invalid input
/// lines are reported on stderr by the run, not here.
struct TextSink<W> {
    out: W,
    style: Style,
}

const GREEN: Ansi = AnsiColor::Green.on_default();
const YELLOW: Ansi = AnsiColor::Yellow.on_default();
const RED: Ansi = AnsiColor::Red.on_default().bold();
const BOLD: Ansi = Ansi::new().bold();
const DIM: Ansi = Ansi::new().dimmed();

impl<W: Write> TextSink<W> {
    /// `style` when colour is on, else the empty style (which renders as nothing).
    fn style(&self, style: Ansi) -> Ansi {
        if self.style.color { style } else { Ansi::new() }
    }
}

impl<W: Write> TextSink<W> {
    /// `OK   200   45ms  URL` or `FAIL 404   12ms  URL  reason`.
    fn write_check(&mut self, record: &Record) -> io::Result<()> {
        let failure = record.failure();
        let (verdict, style) = match &failure {
            None => ("OK", GREEN),
            Some(_) => ("FAIL", RED),
        };
        let (s, dim) = (self.style(style), self.style(DIM));
        let status = record
            .page()
            .map_or_else(|| "ERR".to_string(), |p| p.status.to_string());
        write!(
            self.out,
            "{s}{verdict:<4}{s:#} {status:<3} {dim}{:>6}{dim:#}  {}",
            format_elapsed(record.elapsed),
            clean(&record.url)
        )?;
        if let Some(page) = record.page()
            && page.final_url != record.url
        {
            write!(self.out, " {dim}->{dim:#} {}", clean(&page.final_url))?;
        }
        if let Some(reason) = failure {
            write!(self.out, "  {s}{}{s:#}", clean(&reason))?;
        }
        if let Some(days) = record.page().and_then(|p| p.cert_days) {
            write!(self.out, "  {dim}(certificate: {days} days left){dim:#}")?;
        }
        match record.recheck {
            Some(crate::record::Recheck::Confirmed) => {
                write!(self.out, "  {dim}(confirmed on recheck){dim:#}")?;
            }
            Some(crate::record::Recheck::Passed) => {
                write!(self.out, "  {dim}(failed, then passed on recheck){dim:#}")?;
            }
            None => {}
        }
        if record.attempts > 1 {
            write!(self.out, "  {dim}({} attempts){dim:#}", record.attempts)?;
        }
        self.out.write_all(b"\n")
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        if self.style.check {
            return if matches!(record.outcome, Outcome::Invalid(_)) {
                Ok(())
            } else {
                self.write_check(record)
            };
        }
        let (status, status_style) = match &record.outcome {
            Outcome::Invalid(_) => return Ok(()),
            Outcome::Skipped => ("-".to_string(), DIM),
            Outcome::Failed(_) => ("ERR".to_string(), RED),
            Outcome::Page(page) => (
                page.status.to_string(),
                match page.status {
                    200..=299 => GREEN,
                    300..=399 => YELLOW,
                    _ => RED,
                },
            ),
        };
        let (s, dim, bold) = (self.style(status_style), self.style(DIM), self.style(BOLD));
        let size = record
            .page()
            .map_or_else(|| "-".to_string(), |p| format_size(p.bytes));
        write!(
            self.out,
            "{s}{status:<3}{s:#} {dim}{:>6} {size:>10}{dim:#}  {}",
            format_elapsed(record.elapsed),
            clean(&record.url),
        )?;
        match &record.outcome {
            Outcome::Page(page) => {
                if page.final_url != record.url {
                    write!(self.out, " {dim}->{dim:#} {}", clean(&page.final_url))?;
                }
                if let Some(title) = &page.title {
                    write!(self.out, "  {bold}[{title}]{bold:#}")?;
                }
                if page.binary {
                    let kind = page.content_type.as_deref().unwrap_or("unknown type");
                    write!(self.out, "  {dim}(binary, {}){dim:#}", clean(kind))?;
                } else if self.style.full_text {
                    // Shown below the line.
                } else if let Some(content) = page.content.as_deref().filter(|c| !c.is_empty()) {
                    let cut = if page.content_cut { "…" } else { "" };
                    write!(self.out, "  {content}{cut}")?;
                }
                if page.truncated {
                    write!(self.out, "  {dim}(truncated){dim:#}")?;
                }
            }
            Outcome::Failed(error) => {
                write!(self.out, "  {s}{}{s:#}", clean(&error.to_string()))?;
            }
            Outcome::Skipped => write!(self.out, "  {dim}(skipped: already saved){dim:#}")?,
            Outcome::Invalid(_) => {}
        }
        if let Some(saved) = &record.saved {
            let change = match saved.change {
                Change::New => "new",
                Change::Changed => "changed",
                Change::Unchanged => "unchanged",
                Change::Kept => "kept",
            };
            write!(self.out, "  {dim}[{change} {}]{dim:#}", clean(&saved.path))?;
        }
        if record.attempts > 1 {
            write!(self.out, "  {dim}({} attempts){dim:#}", record.attempts)?;
        }
        self.out.write_all(b"\n")?;
        if let Some(page) = record.page() {
            self.write_extraction(page)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> TextSink<W> {
    /// Below the result line: one indented line per selected value, per link, per line of text.
    fn write_extraction(&mut self, page: &crate::record::Page) -> io::Result<()> {
        let bold = self.style(BOLD);
        let limit = self.style.preview_chars.max(1);
        for (name, values) in self.style.fields.iter().zip(&page.selected) {
            for value in values {
                let shown: String = value.chars().take(limit).collect();
                let cut = if shown.len() < value.len() { "…" } else { "" };
                writeln!(self.out, "    {bold}{}:{bold:#} {shown}{cut}", clean(name))?;
            }
        }
        if self.style.links {
            for link in &page.links {
                writeln!(self.out, "    -> {link}")?;
            }
        }
        if self.style.full_text
            && let Some(text) = &page.content
        {
            for line in text.lines() {
                writeln!(self.out, "    {line}")?;
            }
        }
        Ok(())
    }
}

/// `--links-only`: each page's links, one per line, nothing else.
struct LinksSink<W> {
    out: W,
}

impl<W: Write> Sink for LinksSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        for link in record.page().map_or(&[][..], |p| p.links.as_slice()) {
            writeln!(self.out, "{link}")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A header row, then one row per URL: the jsonl fields, `path` under `--out-dir`, and one column
/// per `--select` field (its first value, or all of them joined with `--join`).
struct CsvSink<W: Write> {
    out: csv::Writer<W>,
    style: Style,
    header_written: bool,
}

const CSV_COLUMNS: &[&str] = &[
    "url",
    "final_url",
    "status",
    "ok",
    "error",
    "elapsed_ms",
    "bytes",
    "content_type",
    "title",
    "content",
    "truncated",
    "attempts",
];

impl<W: Write> Sink for CsvSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        if !self.header_written {
            let mut header: Vec<&str> = CSV_COLUMNS.to_vec();
            if self.style.paths {
                header.push("path");
            }
            header.extend(self.style.fields.iter().map(String::as_str));
            self.out.write_record(&header)?;
            self.header_written = true;
        }
        let json = JsonRecord::from(record);
        let text = |value: Option<&str>| value.unwrap_or_default().to_string();
        let mut row = vec![
            json.url.to_string(),
            text(json.final_url),
            json.status.map(|s| s.to_string()).unwrap_or_default(),
            json.ok.to_string(),
            json.error.unwrap_or_default(),
            json.elapsed_ms.to_string(),
            json.bytes.to_string(),
            text(json.content_type),
            text(json.title),
            text(json.content),
            json.truncated.to_string(),
            json.attempts.to_string(),
        ];
        if self.style.paths {
            row.push(text(record.saved.as_ref().map(|s| s.path.as_str())));
        }
        let selected = record.page().map_or(&[][..], |p| p.selected.as_slice());
        for i in 0..self.style.fields.len() {
            let values = selected.get(i).map_or(&[][..], Vec::as_slice);
            row.push(match &self.style.join {
                Some(separator) => values.join(separator),
                None => values.first().cloned().unwrap_or_default(),
            });
        }
        self.out.write_record(&row)?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `850ms`, `1.25s`, `2m05s`.
pub fn format_elapsed(elapsed: Duration) -> String {
    let millis = elapsed.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.2}s", elapsed.as_secs_f64())
    } else {
        format!("{}m{:02}s", millis / 60_000, (millis / 1000) % 60)
    }
}

/// `512 B`, `31.2 KiB`.
pub fn format_size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{FetchError, InputError};
    use crate::record::{Page, Source};
    use std::sync::Arc;

    fn record(outcome: Outcome) -> Record {
        Record {
            url: "http://example.com/".into(),
            source: Source {
                file: Arc::from("urls.txt"),
                line: 3,
            },
            elapsed: Duration::from_millis(42),
            attempts: 1,
            outcome,
            saved: None,
            recheck: None,
        }
    }

    fn page() -> Page {
        Page {
            final_url: "http://example.com/".into(),
            status: 200,
            accepted: true,
            bytes: 2048,
            content_type: Some("text/html".into()),
            title: Some("Example".into()),
            content: Some("Hello world".into()),
            ..Page::default()
        }
    }

    fn text(record: &Record, color: bool) -> String {
        let mut out = Vec::new();
        let style = Style {
            format: Format::Text,
            color,
            preview_chars: 100,
            ..Style::default()
        };
        TextSink {
            out: &mut out,
            style,
        }
        .write(record)
        .expect("write");
        String::from_utf8(out).expect("utf8")
    }

    fn json(record: &Record) -> serde_json::Value {
        let mut out = Vec::new();
        JsonlSink {
            out: &mut out,
            style: Style::default(),
        }
        .write(record)
        .expect("write");
        assert!(out.ends_with(b"\n"));
        serde_json::from_slice(&out).expect("json")
    }

    #[test]
    fn text_line_has_status_time_size_url_title_and_preview() {
        let line = text(&record(Outcome::Page(page())), false);
        assert_eq!(
            line,
            "200   42ms    2.0 KiB  http://example.com/  [Example]  Hello world\n"
        );
    }

    #[test]
    fn text_line_for_a_failure_gives_the_reason() {
        let line = text(
            &record(Outcome::Failed(FetchError::Timeout(Duration::from_secs(2)))),
            false,
        );
        assert_eq!(
            line,
            "ERR   42ms          -  http://example.com/  timed out after 2s\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(!text(&record(Outcome::Page(page())), false).contains('\x1b'));
        assert!(text(&record(Outcome::Page(page())), true).contains("\x1b[32m200"));
    }

    #[test]
    fn binary_pages_get_a_marker_and_redirects_show_the_final_url() {
        let mut page = page();
        page.binary = true;
        page.content = None;
        page.content_type = Some("image/png".into());
        page.final_url = "http://example.com/img.png".into();
        let line = text(&record(Outcome::Page(page)), false);
        assert!(line.contains(" -> http://example.com/img.png"), "{line}");
        assert!(line.contains("(binary, image/png)"), "{line}");
    }

    #[test]
    fn jsonl_has_exactly_the_stable_fields() {
        let value = json(&record(Outcome::Page(page())));
        let keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "url",
            "final_url",
            "status",
            "ok",
            "error",
            "elapsed_ms",
            "bytes",
            "content_type",
            "title",
            "content",
            "truncated",
            "attempts",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["status"], 200);
        assert_eq!(value["ok"], true);
        assert_eq!(value["error"], serde_json::Value::Null);
    }

    #[test]
    fn jsonl_for_an_invalid_line_carries_its_source() {
        let value = json(&record(Outcome::Invalid(InputError::Whitespace)));
        assert_eq!(value["source"], "urls.txt:3");
        assert_eq!(value["ok"], false);
        assert_eq!(value["status"], serde_json::Value::Null);
        assert_eq!(value["error"], "whitespace inside a URL");
    }

    #[test]
    fn elapsed_and_sizes_read_naturally() {
        assert_eq!(format_elapsed(Duration::from_millis(850)), "850ms");
        assert_eq!(format_elapsed(Duration::from_millis(1250)), "1.25s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m05s");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(32_000), "31.2 KiB");
    }
}
