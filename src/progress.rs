//! The progress bar on stderr: done/total, live ok/failed counts, rate and ETA. The total is the
//! number of entries read so far until a count of the whole input arrives (counted on a thread of
//! its own for files; standard input can only be read once). It is a no-op when hidden (stderr not
//! a terminal, `-q`, `--no-progress`), and stdout lines are written inside `suspend` so the bar
//! never garbles them. Entries are added by every shard of the pipeline (see `shard`), so it is
//! shared between threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Delivers the input's entry count once it is known.
    total: Option<Mutex<mpsc::Receiver<u64>>>,
    total_known: AtomicBool,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Progress {
    /// A bar when `show`; `total` delivers the number of entries when it can be counted.
    pub fn new(show: bool, total: Option<mpsc::Receiver<u64>>) -> Self {
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {pos}/{len} [{wide_bar}] {msg}  {rate}  ETA {eta}",
            )
            .expect("the template is valid")
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
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
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
        let counter = if ok { &self.ok } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        bar.set_message(format!(
            "ok {}  failed {}",
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        ));
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

    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// Removes the bar before the summary is printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
