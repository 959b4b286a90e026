//! The progress bar on stderr: done/total, live ok/failed counts, rate and ETA. The total is the
//! number of entries read so far until a count of the whole input arrives (counted on a thread of
//! its own for files; standard input can only be read once). It is a no-op when hidden (stderr not
//! a terminal, `-q`, `--no-progress`). When stdout is the same terminal, its lines go through
//! `BarredStdout`, which takes the bar off the screen for each block it writes, so the bar never
//! garbles them. Entries are added by every shard of the pipeline (see `shard`), so it is shared
//! between threads.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Delivers the input's entry count once it is known.
    total: Option<Mutex<mpsc::Receiver<u64>>>,
    total_known: AtomicBool,
    /// Read by the bar's template when it is drawn, so finishing an entry formats nothing.
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Progress {
    /// A bar when `show`; `total` delivers the number of entries when it can be counted.
    pub fn new(show: bool, total: Option<mpsc::Receiver<u64>>) -> Self {
        let counts = Arc::new(Counts::default());
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let shown = Arc::clone(&counts);
            let style = ProgressStyle::with_template(
                "{spinner} {pos}/{len} [{wide_bar}] {counts}  {rate}  ETA {eta}",
            )
            .expect("the template is valid")
            .with_key(
                "counts",
                move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let ok = shown.ok.load(Ordering::Relaxed);
                    let failed = shown.failed.load(Ordering::Relaxed);
                    let _ = write!(out, "ok {ok}  failed {failed}");
                },
            )
            .with_key(
                "rate",
                |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            total: total.map(Mutex::new),
            total_known: AtomicBool::new(false),
            counts,
        }
    }

    /// One more entry was read from the input.
    pub fn add_entry(&self) {
        let Some(bar) = &self.bar else { return };
        if self.total_known.load(Ordering::Relaxed) {
            return;
        }
        let Some(total) = &self.total else {
            bar.inc_length(1);
            return;
        };
        // Under the lock, so no shard counts an entry on top of the total another has just set.
        let total = total.lock().unwrap_or_else(PoisonError::into_inner);
        if self.total_known.load(Ordering::Relaxed) {
            return;
        }
        match total.try_recv() {
            Ok(total) => {
                self.total_known.store(true, Ordering::Relaxed);
                bar.set_length(total.max(bar.length().unwrap_or(0) + 1));
            }
            Err(_) => bar.inc_length(1),
        }
    }

    /// One entry finished.
    pub fn finish_entry(&self, ok: bool) {
        let Some(bar) = &self.bar else { return };
        let counter = if ok {
            &self.counts.ok
        } else {
            &self.counts.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if bar.length().is_some_and(|len| bar.position() >= len) {
            bar.inc_length(1); // the count was off (the file changed while being read)
        }
        bar.inc(1);
    }

    /// Runs `write` with the bar taken off the screen, so output lines are never mixed into it.
    pub fn suspend<R>(&self, write: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Where stdout lines go: held and written a block at a time under the bar when the bar is on
    /// the terminal stdout goes to, and otherwise through a plain buffer, since a bar on another
    /// terminal (or none) cannot be garbled by them.
    pub fn stdout(&self, stdout: io::Stdout) -> Box<dyn Write> {
        match &self.bar {
            Some(bar) if stdout.is_terminal() => Box::new(BarredStdout {
                held: Vec::with_capacity(HELD_BYTES),
                bar: bar.clone(),
                out: stdout,
            }),
            _ => Box::new(io::BufWriter::with_capacity(HELD_BYTES, stdout)),
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes of stdout held before they are written.
const HELD_BYTES: usize = 64 * 1024;

/// Stdout on the terminal the bar is drawn on. Lines are held until a flush (the run flushes
/// whenever no result is ready) or until `HELD_BYTES` have gathered, then written in one block
/// with the bar taken off the screen: the bar is drawn again once a block instead of once a line,
/// which made a run in a terminal ~40% slower than one piped.
struct BarredStdout {
    held: Vec<u8>,
    bar: ProgressBar,
    out: io::Stdout,
}

impl Write for BarredStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() >= HELD_BYTES {
            self.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let Self { held, bar, out } = self;
        let written = bar.suspend(|| {
            let mut out = out.lock();
            out.write_all(held)?;
            out.flush()
        });
        held.clear();
        written
    }
}
