//! Reports for CI systems: one JSON document, JUnit XML, a Markdown table, SARIF 2.1.0 and GitHub
//! workflow commands. Each is a `Sink`, so it can go to stdout (`-f`) or to a file (`--report`).
//!
//! Records are written as they arrive, never collected: JSON and SARIF stream their arrays and
//! close them at the end; JUnit and Markdown, which open with the totals, stream their rows into
//! an anonymous temporary file and put the totals in front of it at the end.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use quick_xml::escape::escape;

use crate::config::Format;
use crate::output::{JsonRecord, Sink, Style, format_elapsed};
use crate::record::{Outcome, Record};
use crate::sanitize::clean;
use crate::summary::Totals;

/// The writer for a report format (json, junit, markdown, sarif or github); `None` for the
/// record-per-line formats, which `output` writes.
pub fn sink<W: Write + 'static>(
    format: Format,
    style: &Style,
    out: W,
) -> io::Result<Option<Box<dyn Sink>>> {
    Ok(Some(match format {
        Format::Json => Box::new(JsonDocument {
            out,
            style: style.clone(),
            records: 0,
        }),
        Format::Sarif => Box::new(Sarif { out, results: 0 }),
        Format::Github => Box::new(Github { out }),
        Format::Junit => Box::new(Buffered::new(out, Junit)?),
        Format::Markdown => Box::new(Buffered::new(out, Markdown)?),
        Format::Text | Format::Jsonl | Format::Csv => return Ok(None),
    }))
}

/// `{"results": [records…], "summary": {totals}}`.
struct JsonDocument<W> {
    out: W,
    style: Style,
    records: u64,
}

impl<W: Write> Sink for JsonDocument<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.out.write_all(if self.records == 0 {
            b"{\"results\":[\n"
        } else {
            b",\n"
        })?;
        self.records += 1;
        serde_json::to_writer(&mut self.out, &JsonRecord::styled(record, &self.style))?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, totals: &Totals) -> io::Result<()> {
        if self.records == 0 {
            self.out.write_all(b"{\"results\":[")?;
        }
        self.out.write_all(b"\n],\"summary\":")?;
        serde_json::to_writer(&mut self.out, totals)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

/// GitHub Actions workflow commands: an `::error` annotation on the list's line for each failure.
struct Github<W> {
    out: W,
}

impl<W: Write> Sink for Github<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let Some(reason) = record.failure() else {
            return Ok(());
        };
        writeln!(
            self.out,
            "::error file={},line={},title={}::{}",
            github_property(&record.source.file),
            record.source.line,
            github_property(&format!("scrape: {}", record.url)),
            github_data(&format!("{}: {}", record.url, reason)),
        )
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Escapes a workflow command's message.
fn github_data(text: &str) -> String {
    clean(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn github_property(text: &str) -> String {
    github_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// SARIF 2.1.0: one result per failed URL, located at its line in the URL list.
struct Sarif<W> {
    out: W,
    results: u64,
}

const SARIF_RULE: &str = "scrape/url-failed";

impl<W: Write> Sarif<W> {
    fn open(&mut self) -> io::Result<()> {
        let driver = serde_json::json!({
            "name": "scrape",
            "version": env!("CARGO_PKG_VERSION"),
            "informationUri": "https://crates.io/crates/scrape",
            "rules": [{
                "id": SARIF_RULE,
                "shortDescription": { "text": "A URL of the list failed its check" },
                "defaultConfiguration": { "level": "error" }
            }]
        });
        write!(
            self.out,
            "{{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\",\
             \"runs\":[{{\"tool\":{{\"driver\":{driver}}},\"results\":["
        )
    }
}

impl<W: Write> Sink for Sarif<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let Some(reason) = record.failure() else {
            return Ok(());
        };
        if self.results == 0 {
            self.open()?;
        } else {
            self.out.write_all(b",")?;
        }
        self.results += 1;
        let result = serde_json::json!({
            "ruleId": SARIF_RULE,
            "level": "error",
            "message": { "text": format!("{}: {}", record.url, clean(&reason)) },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": &*record.source.file },
                    "region": { "startLine": record.source.line }
                }
            }]
        });
        writeln!(self.out)?;
        serde_json::to_writer(&mut self.out, &result)?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, _totals: &Totals) -> io::Result<()> {
        if self.results == 0 {
            self.open()?;
        }
        self.out.write_all(b"\n]}]}\n")?;
        self.out.flush()
    }
}

/// A report whose head carries the totals: rows go to a temporary file until the end.
struct Buffered<W, F> {
    out: W,
    rows: BufWriter<File>,
    format: F,
}

/// The parts of a report around its rows.
trait Framed {
    fn row(&self, out: &mut dyn Write, record: &Record) -> io::Result<()>;
    fn head(&self, out: &mut dyn Write, totals: &Totals) -> io::Result<()>;
    fn tail(&self, out: &mut dyn Write) -> io::Result<()>;
}

impl<W: Write, F: Framed> Buffered<W, F> {
    fn new(out: W, format: F) -> io::Result<Self> {
        Ok(Buffered {
            out,
            rows: BufWriter::new(tempfile::tempfile()?),
            format,
        })
    }
}

impl<W: Write, F: Framed> Sink for Buffered<W, F> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.format.row(&mut self.rows, record)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // nothing is shown before the totals are known
    }

    fn finish(&mut self, totals: &Totals) -> io::Result<()> {
        self.format.head(&mut self.out, totals)?;
        self.rows.flush()?;
        let rows = self.rows.get_mut();
        rows.seek(SeekFrom::Start(0))?;
        io::copy(rows, &mut self.out)?;
        self.format.tail(&mut self.out)?;
        self.out.flush()
    }
}

/// JUnit XML as Jenkins, GitLab and GitHub test reporters read it: one testsuite, one testcase per
/// URL, a `<failure>` with the reason for each failed one.
struct Junit;

impl Framed for Junit {
    fn row(&self, out: &mut dyn Write, record: &Record) -> io::Result<()> {
        let class = url::Url::parse(&record.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "input".into());
        write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(clean(&class).as_ref()),
            escape(clean(&record.url).as_ref()),
            record.elapsed.as_secs_f64()
        )?;
        match record.failure() {
            None => writeln!(out, "/>"),
            Some(reason) => {
                let kind = match &record.outcome {
                    Outcome::Page(_) => "check",
                    Outcome::Invalid(_) => "input",
                    _ => "fetch",
                };
                let reason = clean(&reason);
                writeln!(out, ">")?;
                writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{kind}\">{} ({}, {} attempts)</failure>",
                    escape(reason.as_ref()),
                    escape(reason.as_ref()),
                    escape(record.source.to_string().as_str()),
                    record.attempts
                )?;
                writeln!(out, "    </testcase>")
            }
        }
    }

    fn head(&self, out: &mut dyn Write, totals: &Totals) -> io::Result<()> {
        writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        writeln!(
            out,
            "<testsuites name=\"scrape\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{:.3}\">",
            totals.entries, totals.failed, totals.wall_s
        )?;
        writeln!(
            out,
            "  <testsuite name=\"scrape\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">",
            totals.entries, totals.failed, totals.wall_s
        )
    }

    fn tail(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "  </testsuite>")?;
        writeln!(out, "</testsuites>")
    }
}

/// A Markdown summary and table, for a PR comment or `$GITHUB_STEP_SUMMARY`.
struct Markdown;

impl Framed for Markdown {
    fn row(&self, out: &mut dyn Write, record: &Record) -> io::Result<()> {
        let failure = record.failure();
        let status = record
            .page()
            .map_or_else(|| "—".to_string(), |p| p.status.to_string());
        writeln!(
            out,
            "| {} | {status} | {} | {} | {} |",
            if failure.is_some() {
                "❌ FAIL"
            } else {
                "✅ OK"
            },
            format_elapsed(record.elapsed),
            markdown_cell(&record.url),
            failure.as_deref().map(markdown_cell).unwrap_or_default()
        )
    }

    fn head(&self, out: &mut dyn Write, totals: &Totals) -> io::Result<()> {
        writeln!(
            out,
            "## scrape: {} of {} URLs ok",
            totals.ok, totals.entries
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{} failed · {} · latency p50 {} · p90 {} · p99 {} · max {}",
            totals.failed,
            format_elapsed(std::time::Duration::from_secs_f64(totals.wall_s)),
            format_ms(totals.latency_ms.p50),
            format_ms(totals.latency_ms.p90),
            format_ms(totals.latency_ms.p99),
            format_ms(totals.latency_ms.max),
        )?;
        writeln!(out)?;
        writeln!(out, "| result | status | time | URL | reason |")?;
        writeln!(out, "|---|---|---|---|---|")
    }

    fn tail(&self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

fn format_ms(ms: u64) -> String {
    format_elapsed(std::time::Duration::from_millis(ms))
}

/// Text safe inside a Markdown table cell.
fn markdown_cell(text: &str) -> String {
    clean(text).replace('|', "\\|")
}
