//! The progress bar on stderr: done/total (the total grows while the list is still being read),
//! live ok/failed counts, rate and ETA. It is a no-op when hidden (stderr not a terminal, `-q`,
//! `--no-progress`), and stdout lines are written inside `suspend` so the bar never garbles them.

use std::cell::Cell;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    ok: Cell<u64>,
    failed: Cell<u64>,
}

impl Progress {
    pub fn new(show: bool) -> Self {
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {pos}/{len} [{wide_bar}] {msg}  {per_sec}  ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            ok: Cell::new(0),
            failed: Cell::new(0),
        }
    }

    /// One more entry was read from the input.
    pub fn add_entry(&self) {
        if let Some(bar) = &self.bar {
            bar.inc_length(1);
        }
    }

    /// One entry finished.
    pub fn finish_entry(&self, ok: bool) {
        let Some(bar) = &self.bar else { return };
        let counter = if ok { &self.ok } else { &self.failed };
        counter.set(counter.get() + 1);
        bar.set_message(format!(
            "ok {}  failed {}",
            self.ok.get(),
            self.failed.get()
        ));
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
