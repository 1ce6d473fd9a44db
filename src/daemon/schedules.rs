//! Running the `[[schedules]]` of `config.toml` while the node runs: each schedule a
//! task that sleeps until its next tick and calls its function, skipping (and logging)
//! a tick that comes while its previous run is still going. Missed ticks are not made
//! up (`spore_node::schedules`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use spore_node::schedules::{Schedule, When};
use spore_node::{Cancel, Node};
use tokio::task::JoinHandle;

/// The running schedules; dropping them stops them and their runs in flight.
pub struct Schedules {
    tasks: Vec<JoinHandle<()>>,
    cancel: Cancel,
}

impl Drop for Schedules {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts every schedule of `node`'s configuration.
pub fn start(node: &Arc<Node>) -> Schedules {
    let cancel = Cancel::new();
    let tasks = node
        .config()
        .schedules
        .iter()
        .cloned()
        .map(|schedule| {
            tracing::info!(function = %schedule.function, when = %schedule.when.describe(), "schedule started");
            tokio::spawn(run(node.clone(), schedule, cancel.clone()))
        })
        .collect();
    Schedules { tasks, cancel }
}

async fn run(node: Arc<Node>, schedule: Schedule, cancel: Cancel) {
    let running = Arc::new(AtomicBool::new(false));
    let fire = || {
        if running.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                function = %schedule.function,
                when = %schedule.when.describe(),
                "skipping a tick of the schedule: its previous run is still going"
            );
            return;
        }
        let (node, schedule, running, cancel) = (
            node.clone(),
            schedule.clone(),
            running.clone(),
            cancel.clone(),
        );
        tokio::task::spawn_blocking(move || {
            call(&node, &schedule, cancel);
            running.store(false, Ordering::Release);
        });
    };
    match &schedule.when {
        When::Every(period) => {
            // A late wake-up (a busy machine, a suspended process) skips the ticks it
            // missed and keeps to the grid.
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + *period, *period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                fire();
            }
        }
        When::Cron(pattern) => loop {
            let Some(next) = pattern.next_after(SystemTime::now()) else {
                tracing::warn!(function = %schedule.function, cron = pattern.as_str(), "the cron pattern matches no future time; the schedule stops");
                return;
            };
            tokio::time::sleep(next.duration_since(SystemTime::now()).unwrap_or_default()).await;
            fire();
        },
    }
}

/// One run: the function resolved now (so that moving its name moves the schedule),
/// within the schedule's deadline; the outcome logged.
fn call(node: &Node, schedule: &Schedule, cancel: Cancel) {
    let span = tracing::info_span!("schedule", function = %schedule.function);
    let _entered = span.enter();
    let started = Instant::now();
    let outcome = node.call_on_own(&schedule.function, &schedule.args, schedule.timeout, cancel);
    let took = started.elapsed();
    match outcome {
        Ok(outcome) => tracing::info!(
            took = ?Duration::from_millis(took.as_millis() as u64),
            result = %spore_core::value::to_json(&outcome.value),
            "scheduled run finished"
        ),
        Err(error) => tracing::warn!(kind = %error.kind(), "scheduled run failed: {error}"),
    }
}
