//! Tests that measure the mesh through its tracing: a runtime whose threads trace to
//! `RUST_LOG` (nothing by default) and to the layers that count.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::{EnvFilter, fmt};

use crate::hops::Hops;

/// Runs `test` on two worker threads whose events go to `RUST_LOG`, `hops` and `counts`.
pub fn run_traced<F: Future>(hops: &Hops, counts: &Counts, test: F) -> F::Output {
    let subscriber = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::from_default_env()),
        )
        .with(hops.clone().with_filter(Hops::filter()))
        .with(counts.clone().with_filter(filter_fn(|meta| {
            meta.is_event() && meta.target() == "spore_mesh::swarm"
        })));
    let dispatch = tracing::Dispatch::new(subscriber);
    let _main = tracing::dispatcher::set_default(&dispatch);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // For the thread's whole life.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
        .expect("a runtime")
        .block_on(test)
}

/// How many times each event of the swarm task happened, by message.
#[derive(Clone, Default)]
pub struct Counts(Arc<Mutex<HashMap<String, usize>>>);

impl Counts {
    /// The events whose message starts with `prefix`.
    pub fn starting_with(&self, prefix: &str) -> usize {
        let counts = self.0.lock().unwrap();
        counts
            .iter()
            .filter(|(message, _)| message.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Counts {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        *self.0.lock().unwrap().entry(message.0).or_default() += 1;
    }
}
