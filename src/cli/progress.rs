//! A progress line on stderr for runs longer than a couple of seconds: a spinner on a
//! terminal, a plain line every [`PLAIN_EVERY`] otherwise (CI logs); nothing for quick runs.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How long a run goes before progress is shown.
pub const AFTER: Duration = Duration::from_secs(2);

/// How often a plain (non-terminal) progress line is written.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Progress of one run; cleared on [`Progress::finish`] or drop.
pub struct Progress {
    bar: indicatif::ProgressBar,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts tracking `what` (e.g. `evaluating`). Shown only after [`AFTER`].
    pub fn start(what: &str) -> Self {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix} [{pos}/{len}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_string());
        let shown = bar.clone();
        let what = what.to_string();
        let task = tokio::runtime::Handle::try_current().ok().map(|rt| {
            rt.spawn(async move {
                let started = Instant::now();
                tokio::time::sleep(AFTER).await;
                if std::io::stderr().is_terminal() {
                    shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    shown.enable_steady_tick(Duration::from_millis(120));
                    return;
                }
                // Bounded by the run: the task is aborted when the run ends.
                loop {
                    let of = shown
                        .length()
                        .map(|l| format!(" {}/{l}", shown.position()))
                        .unwrap_or_default();
                    eprintln!(
                        "refwarden: {what}…{of} {} ({} s)",
                        shown.message(),
                        started.elapsed().as_secs()
                    );
                    tokio::time::sleep(PLAIN_EVERY).await;
                }
            })
        });
        Self { bar, task }
    }

    /// Sets how many steps there are.
    pub fn set_length(&self, n: u64) {
        self.bar.set_length(n);
    }

    /// What is being done now.
    pub fn set_message(&self, m: impl Into<String>) {
        self.bar.set_message(m.into());
    }

    /// One step done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Ends the progress line (clears it).
    pub fn finish(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
