//! The pipeline of one run, wired together: the input stream, the shards that fetch it (`shard`:
//! one per core, up to two), and a single consumer that owns stdout, the manifest, the
//! progress bar and the summary. Ctrl-C and SIGTERM stop it promptly: in-flight requests are
//! dropped, what completed has been printed, and the summary still appears.

use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use anyhow::Context;
use futures::{FutureExt, Stream, StreamExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::config::{Config, ReportFile};
use crate::exit_code::ExitCode;
use crate::fetch::{Fetcher, Limits};
use crate::input;
use crate::mirror::{Gone, Mirror};
use crate::output;
use crate::progress::Progress;
use crate::record::Outcome;
use crate::shard::{self, Event, SharedInput};
use crate::summary::Summary;

/// Runs the whole job and returns the exit code; an `Err` is a start-up or output failure.
pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (mirror, mut journal) = match &config.mirror {
        Some(options) => {
            let (mirror, journal) = Mirror::open(options)?;
            (Some(Arc::new(mirror)), Some(journal))
        }
        None => (None, None),
    };
    let limits = Limits::new(&config.fetch, shard::count(&config));
    let fetcher = Fetcher::new(&config.fetch, mirror.clone(), Arc::clone(&limits), 0)?;
    let input = Arc::new(SharedInput::new(input::read(&config.inputs)?));
    let stop = watch_signals()?;

    let stdout = io::stdout();
    let extract = &config.fetch.extract;
    let style = output::Style {
        format: config.output.format,
        color: stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        preview_chars: config.fetch.preview_chars,
        paths: mirror.is_some(),
        fields: extract.fields.iter().map(|f| f.name.clone()).collect(),
        links: extract.links,
        full_text: extract.full_text.is_some(),
        join: config.output.join.clone(),
        links_only: config.output.links_only,
        check: config.output.check,
    };
    let mut reports = open_reports(&config.output.reports, &style)?;
    let show_progress = config.output.progress && io::stderr().is_terminal();
    let progress = Arc::new(Progress::new(
        show_progress,
        show_progress.then(|| count_in_background(&config)),
    ));
    let mut sink =
        output::sink(style, progress.stdout(stdout)).context("cannot prepare the output")?;
    let mut summary = if config.output.host_stats {
        Summary::with_host_stats()
    } else {
        Summary::default()
    };

    let mut events = shard::start(
        &config,
        &fetcher,
        mirror.as_ref(),
        &limits,
        &input,
        &progress,
    )?;
    let mut stop = std::pin::pin!(stop);

    let quiet = config.output.quiet;
    let mut read_failed = false;
    let mut manifest_failed = false;
    let mut stdout_error: Option<io::Error> = None;
    let mut stopped_by = None;
    loop {
        // After a stop, the events the other shards still send are taken as usual, but once
        // stdout has failed nothing more is written to it.
        let printing = stdout_error.is_none();
        let next = tokio::select! {
            biased;
            code = &mut stop, if stopped_by.is_none() => {
                stopped_by = Some(code.unwrap_or(ExitCode::Interrupted));
                events.stop();
                continue;
            }
            next = next_or_flush(&mut events, printing.then_some(sink.as_mut())) => next,
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(error) => {
                stdout_error = Some(error);
                events.stop();
                continue;
            }
        };
        let record = match event {
            Event::Done(record) => record,
            Event::Duplicate => {
                summary.add_duplicate();
                progress.finish_entry(true);
                continue;
            }
            Event::ReadFailed(message) => {
                progress.suspend(|| eprintln!("scrape: {message}"));
                read_failed = true;
                continue;
            }
        };
        summary.add(&record);
        if let Some(journal) = journal.as_mut().filter(|_| !manifest_failed)
            && let Err(error) = journal.append(&record)
        {
            progress.suspend(|| eprintln!("scrape: cannot write the manifest: {error}"));
            manifest_failed = true;
        }
        let ok = record.is_ok();
        progress.finish_entry(ok);
        if let Outcome::Invalid(error) = &record.outcome {
            let line = format!("{}: {error}", record.source);
            progress.suspend(|| eprintln!("{line}"));
        }
        for report in &mut reports {
            if let Err(error) = report.sink.write(&record) {
                report.error.get_or_insert(error);
            }
        }
        if (quiet && ok) || stdout_error.is_some() {
            continue;
        }
        if let Err(error) = sink.write(&record) {
            stdout_error = Some(error);
            events.stop();
        }
    }
    events.join();
    let totals = summary.totals(started.elapsed());
    if stdout_error.is_none()
        && let Err(error) = sink.finish(&totals)
    {
        stdout_error = Some(error);
    }
    for report in reports {
        report.finish(&totals)?;
    }
    progress.clear();
    if let Some(error) = stdout_error {
        // A closed stdout (`scrape … | head`) ends the run quietly; the manifest keeps what was
        // appended (an interrupted run's manifest).
        if let Some(mirror) = &mirror {
            mirror.close();
        }
        return match error.kind() {
            io::ErrorKind::BrokenPipe => Ok(ExitCode::Success),
            _ => Err(anyhow::Error::new(error).context("cannot write to stdout")),
        };
    }
    if let (Some(mirror), Some(journal)) = (&mirror, journal) {
        // Only a complete run knows which URLs left the list; an interrupted one keeps its
        // appended lines (later lines win) for the next run to build on.
        if stopped_by.is_none() && !manifest_failed {
            if let Err(error) = journal.compact() {
                eprintln!("scrape: cannot write the manifest: {error}");
                manifest_failed = true;
            }
            summary.set_gone(mirror.gone());
        } else {
            summary.set_gone(Gone::default());
        }
        mirror.close();
    }
    if !quiet {
        // Put together first: stderr is unbuffered, and the summary is ~30 pieces.
        let mut text = Vec::new();
        if let Some(code) = stopped_by {
            let what = if code == ExitCode::Terminated {
                "terminated"
            } else {
                "interrupted"
            };
            let _ = writeln!(text, "scrape: {what}; results so far:");
        }
        let _ = summary.render(&mut text, started.elapsed());
        let _ = io::stderr().lock().write_all(&text);
    }
    // Gates are judged on a complete run only; a missed one is printed even with -q.
    let mut slo_missed = false;
    if stopped_by.is_none() {
        let mut stderr = io::stderr().lock();
        for slo in &config.output.slos {
            let verdict = slo.evaluate(&summary);
            slo_missed |= !verdict.met;
            if !verdict.met {
                let _ = writeln!(
                    stderr,
                    "scrape: SLO missed: {slo} (measured {})",
                    verdict.measured
                );
            } else if !quiet {
                let _ = writeln!(
                    stderr,
                    "slo       {slo} met (measured {})",
                    verdict.measured
                );
            }
        }
    }
    let fail_on_change = config.mirror.as_ref().is_some_and(|m| m.fail_on_change);
    Ok(stopped_by.unwrap_or_else(|| {
        ExitCode::decide(
            read_failed || manifest_failed || summary.save_errors() > 0,
            summary.failed() > 0 || slo_missed || (fail_on_change && summary.changed() > 0),
        )
    }))
}

/// A `--report` file being written: a temporary file beside it, renamed into place at the end.
struct Report {
    sink: Box<dyn output::Sink>,
    temp: tempfile::NamedTempFile,
    path: std::path::PathBuf,
    /// The first write error; reported at the end, when the file is not put in place.
    error: Option<io::Error>,
}

impl Report {
    fn finish(mut self, totals: &crate::summary::Totals) -> anyhow::Result<()> {
        let path = self.path.display().to_string();
        if let Some(error) = self.error.take() {
            return Err(anyhow::Error::new(error).context(format!("cannot write {path}")));
        }
        self.sink
            .finish(totals)
            .with_context(|| format!("cannot write {path}"))?;
        drop(self.sink);
        self.temp
            .persist(&self.path)
            .map_err(|e| anyhow::Error::new(e.error).context(format!("cannot write {path}")))?;
        Ok(())
    }
}

/// Opens each `--report` file (as a temporary file in its directory), before any request, so an
/// unwritable path is a usage error up front.
fn open_reports(files: &[ReportFile], style: &output::Style) -> anyhow::Result<Vec<Report>> {
    files
        .iter()
        .map(|file| {
            let path = file.path.display().to_string();
            let dir = match file.path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => std::path::Path::new("."),
            };
            let temp = crate::save::temp_file_in(dir, ".scrape-report")
                .with_context(|| format!("cannot write {path}"))?;
            let out = io::BufWriter::new(
                temp.reopen()
                    .with_context(|| format!("cannot write {path}"))?,
            );
            let report_style = output::Style {
                format: file.format,
                color: false,
                links_only: false,
                check: false,
                ..style.clone()
            };
            let sink =
                output::sink(report_style, out).with_context(|| format!("cannot write {path}"))?;
            Ok(Report {
                sink,
                temp,
                path: file.path.clone(),
                error: None,
            })
        })
        .collect()
}

/// The next event; when none is ready yet, stdout is flushed first, so output is written in large
/// blocks while results pour in and promptly when they trickle (as for `scrape … | scrape -`).
async fn next_or_flush<S: Stream<Item = Event> + Unpin>(
    events: &mut S,
    sink: Option<&mut dyn output::Sink>,
) -> io::Result<Option<Event>> {
    if let Some(next) = events.next().now_or_never() {
        return Ok(next);
    }
    if let Some(sink) = sink {
        sink.flush()?;
    }
    Ok(events.next().await)
}

/// Counts the input's entries on a thread of its own, for the progress bar's total.
fn count_in_background(config: &Config) -> mpsc::Receiver<u64> {
    let (tx, rx) = mpsc::channel();
    let inputs = config.inputs.clone();
    std::thread::spawn(move || {
        if let Some(total) = input::count_entries(&inputs) {
            let _ = tx.send(total);
        }
    });
    rx
}

/// Resolves with the exit code of the first SIGINT or SIGTERM.
fn watch_signals() -> anyhow::Result<oneshot::Receiver<ExitCode>> {
    // Past a file-size limit (`ulimit -f`) a write must fail with EFBIG, which names the file,
    // instead of SIGXFSZ killing the process: having a handler is enough (tokio keeps it installed).
    drop(signal(SignalKind::from_raw(libc::SIGXFSZ))?);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let code = tokio::select! {
            _ = interrupt.recv() => ExitCode::Interrupted,
            _ = terminate.recv() => ExitCode::Terminated,
        };
        let _ = tx.send(code);
    });
    Ok(rx)
}
