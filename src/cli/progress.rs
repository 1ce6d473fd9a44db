//! Progress bars on stderr, for people watching a terminal: the modules a running node
//! fetches while `spore invoke` waits for it, and the modules `spore build` publishes.
//!
//! [`enabled`] is the one decision whether to draw: stderr is a terminal and the output
//! is for people (not `--json`). Otherwise nothing here draws or polls, so pipes, files
//! and tests see exactly the output they saw before. Bars are cleared when their work
//! ends: what stays on the terminal is the command's own output.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use spore_core::text::printable;

use super::backend::{Backend, Remote};
use super::output::{Output, stderr_is_terminal};
use crate::daemon::FetchStatus;

/// How often the node is asked for its fetches while a call waits. The first ask is
/// one period in: a call answered sooner asks nothing.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Whether to draw progress for a command whose output is `out`.
pub fn enabled(out: &Output) -> bool {
    !out.is_json() && stderr_is_terminal()
}

/// Runs `call`, a request to the node behind `backend`, drawing a bar for each module
/// the node fetches from the mesh meanwhile (polling `GET /v1/fetches`). Only with a
/// running node: a home used directly joins no mesh, so fetches nothing.
pub fn while_fetching<T>(backend: &Backend, out: &Output, call: impl FnOnce() -> T) -> T {
    let Backend::Remote(remote) = backend else {
        return call();
    };
    if !enabled(out) {
        return call();
    }
    let (done, stop) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || draw_fetches(remote, &stop));
        let answer = call();
        // The drawing thread stops when this goes, the bars cleared before the answer
        // is printed (and on a panic, as the unwinding drops it).
        drop(done);
        answer
    })
}

/// Polls the node's fetches until `stop` is dropped, one bar per fetch, each cleared
/// when its fetch is no longer listed.
fn draw_fetches(remote: &Remote, stop: &mpsc::Receiver<()>) {
    let bars = MultiProgress::new();
    let mut shown: HashMap<u64, ProgressBar> = HashMap::new();
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(POLL_EVERY) {
        // A node that cannot say (one older than the route, or one that hangs) draws
        // nothing more; the call itself reports whatever is wrong with it.
        let Ok(fetches) = remote.fetches() else {
            break;
        };
        shown.retain(|id, bar| {
            let running = fetches.iter().any(|fetch| fetch.id == *id);
            if !running {
                bar.finish_and_clear();
                bars.remove(bar);
            }
            running
        });
        for fetch in &fetches {
            let bar = shown
                .entry(fetch.id)
                .or_insert_with(|| bars.add(ProgressBar::no_length().with_style(style(UNSIZED))));
            show_fetch(bar, fetch);
        }
    }
    for bar in shown.values() {
        bar.finish_and_clear();
    }
    let _ = bars.clear();
}

/// A fetch whose size is not known yet: the node is still looking for a provider.
const UNSIZED: &str = "{spinner} fetching {msg} {bytes} ({elapsed})";
/// A fetch whose size a provider has proven. The bar takes the width the rest leaves,
/// so that the line fits the terminal rather than wrap.
const SIZED: &str =
    "{spinner} fetching {msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec}";

/// Draws `fetch` on `bar`: a spinner while its size is unknown ([`UNSIZED`]), then
/// bytes of the total, the rate and a bar ([`SIZED`]).
fn show_fetch(bar: &ProgressBar, fetch: &FetchStatus) {
    if let Some(size) = fetch.size
        && bar.length() != Some(size)
    {
        bar.set_length(size);
        bar.set_style(style(SIZED));
    }
    let from = match fetch.peers.as_slice() {
        [] => String::new(),
        [peer] => format!(" from {}", peer_short(peer)),
        [peer, more @ ..] => format!(" from {} and {} more", peer_short(peer), more.len()),
    };
    bar.set_message(format!("{}{from}", fetch.hash.short(12)));
    bar.set_elapsed(Duration::from_millis(fetch.elapsed_ms));
    bar.set_position(fetch.received);
    bar.tick();
}

/// A peer id as `spore invoke --explain` shows it: its last characters, escaped (it
/// came from the node's answer).
fn peer_short(peer: &str) -> String {
    super::invoke::last_chars(&printable(peer, 128), 8).to_owned()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the templates here are valid")
        .progress_chars("=> ")
}

/// A counted list of steps (`spore build` publishing its modules): a spinner with
/// "N/TOTAL" and the step's name while each runs. Draws nothing unless [`enabled`].
pub struct Steps {
    bar: Option<ProgressBar>,
}

impl Steps {
    /// `total` steps, each doing `what` ("publishing").
    pub fn new(out: &Output, what: &str, total: usize) -> Steps {
        let bar = enabled(out).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(style(&format!(
                "{{spinner}} {what} {{pos}}/{{len}} {{msg}} ({{elapsed}})"
            )));
            // The step runs on this thread (a publish waits on the node's compile): the
            // spinner turns on indicatif's own.
            bar.enable_steady_tick(POLL_EVERY);
            bar
        });
        Steps { bar }
    }

    /// The next step, named `name`, begins: "N/TOTAL name".
    pub fn begin(&self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(printable(name, 128).into_owned());
        }
    }

    /// Runs `print`, which prints what a step did, with the bar out of its way.
    pub fn print<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_valid() {
        for template in [UNSIZED, SIZED] {
            style(template);
        }
        // `Steps` makes its template with the step's word in it.
        style(&format!(
            "{{spinner}} {} {{pos}}/{{len}} {{msg}} ({{elapsed}})",
            "publishing"
        ));
    }

    #[test]
    fn nothing_is_drawn_for_json_output() {
        assert!(!enabled(&Output::new(true)));
    }
}
