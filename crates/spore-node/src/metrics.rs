//! What a node counts for `/metrics` (docs/api.md): calls by function, outcome and
//! error kind, their latency, memo hits, runs by compiler tier, code fetched, peers, and
//! the statuses of its HTTP routes. Counted where the thing happens; encoded in the OpenMetrics text format
//! (which Prometheus reads) when scraped.

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use spore_core::{ErrorKind, FunctionRef, Tier};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    function: String,
    outcome: &'static str,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabel {
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AbilityLabel {
    ability: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: u16,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_seconds: Family<FunctionLabel, Histogram>,
    memo_hits: Counter,
    fetched_bytes: Counter,
    fetch_seconds: Histogram,
    http_responses: Family<RouteLabels, Counter>,
    peers: Gauge,
    members: Gauge,
    in_flight: Gauge<i64, AtomicI64>,
    provider_restarts: Family<AbilityLabel, Counter>,
    placement_lookups: Family<SourceLabel, Counter>,
    runs: Family<TierLabel, Counter>,
    hole_punches: Family<OutcomeLabel, Counter>,
    /// What is kept per function: its label formatted once and its series, so that a
    /// call costs a map lookup and no text; its counts, for `spore node status`.
    by_function: Mutex<HashMap<FunctionRef, PerFunction>>,
}

struct PerFunction {
    /// The function as its series' label (`HASH:export`).
    label: String,
    /// Its `outcome="ok"` series, made at its first success.
    ok: Option<Counter>,
    seconds: Histogram,
    counts: FunctionCalls,
}

/// The calls of one function run on this node since it started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionCalls {
    pub calls: u64,
    pub errors: u64,
    /// The time all of them took.
    pub total: Duration,
}

/// A call running on this node, counted in `spore_calls_in_flight` until dropped.
pub(crate) struct InFlight<'a>(&'a Gauge<i64, AtomicI64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Latency buckets from 50 µs to about 27 minutes, doubling: a memo hit to a long job.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 25))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("spore");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Calls run on this node (a memo hit included), by function, outcome (ok, error) and error kind",
            calls.clone(),
        );
        let call_seconds = Family::<FunctionLabel, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        registry.register(
            "call_seconds",
            "How long calls run on this node took, by function",
            call_seconds.clone(),
        );
        let memo_hits = Counter::default();
        registry.register(
            "memo_hits",
            "Calls answered from the memo",
            memo_hits.clone(),
        );
        let fetched_bytes = Counter::default();
        registry.register(
            "fetched_bytes",
            "Bytes of modules fetched from peers, verified",
            fetched_bytes.clone(),
        );
        let fetch_seconds = seconds_histogram();
        registry.register(
            "fetch_seconds",
            "How long fetching a module from peers took",
            fetch_seconds.clone(),
        );
        let http_responses = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_responses",
            "Responses of the HTTP routes (--http), by route and status",
            http_responses.clone(),
        );
        let peers = Gauge::default();
        registry.register(
            "peers_connected",
            "Peers with an open connection",
            peers.clone(),
        );
        let members = Gauge::default();
        registry.register(
            "members_connected",
            "Connected peers admitted to this node's mesh",
            members.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "calls_in_flight",
            "Calls running on this node now",
            in_flight.clone(),
        );
        let provider_restarts = Family::<AbilityLabel, Counter>::default();
        registry.register(
            "provider_restarts",
            "Restarts of provider processes, by the ability they serve",
            provider_restarts.clone(),
        );
        let placement_lookups = Family::<SourceLabel, Counter>::default();
        registry.register(
            "placement_lookups",
            "Lookups of the peers serving a placed call's abilities, by source (cache, dht)",
            placement_lookups.clone(),
        );
        let hole_punches = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "hole_punches",
            "Hole punches (DCUtR) from a relayed connection, by outcome (punched: a direct connection replaced it; failed: it stayed relayed)",
            hole_punches.clone(),
        );
        let runs = Family::<TierLabel, Counter>::default();
        registry.register(
            "runs",
            "Calls whose function ran here to a result, by the tier of the code it ran on (baseline: Winch's, while Cranelift compiles; optimized: Cranelift's)",
            runs.clone(),
        );
        Metrics {
            runs,
            in_flight,
            placement_lookups,
            provider_restarts,
            hole_punches,
            by_function: Mutex::default(),
            registry,
            calls,
            call_seconds,
            memo_hits,
            fetched_bytes,
            fetch_seconds,
            http_responses,
            peers,
            members,
        }
    }
}

impl Metrics {
    /// A call of `function` that ran here (or was answered from the memo) in `took`.
    pub(crate) fn call(
        &self,
        function: &FunctionRef,
        took: Duration,
        failed: Option<ErrorKind>,
        memo_hit: bool,
    ) {
        let mut by_function = self.by_function();
        let entry = match by_function.get_mut(function) {
            Some(entry) => entry,
            None => {
                let label = function.to_string();
                let seconds = self
                    .call_seconds
                    .get_or_create(&FunctionLabel {
                        function: label.clone(),
                    })
                    .clone();
                by_function.entry(function.clone()).or_insert(PerFunction {
                    label,
                    ok: None,
                    seconds,
                    counts: FunctionCalls::default(),
                })
            }
        };
        entry.counts.calls += 1;
        entry.counts.total += took;
        entry.seconds.observe(took.as_secs_f64());
        let series = |outcome, kind| CallLabels {
            function: entry.label.clone(),
            outcome,
            kind,
        };
        match failed {
            None => entry
                .ok
                .get_or_insert_with(|| {
                    self.calls
                        .get_or_create(&series("ok", String::new()))
                        .clone()
                })
                .inc(),
            Some(kind) => {
                entry.counts.errors += 1;
                self.calls
                    .get_or_create(&series("error", kind.to_string()))
                    .inc()
            }
        };
        drop(by_function);
        if memo_hit {
            self.memo_hits.inc();
        }
    }

    /// A call whose function ran here to a result on `tier`'s code.
    pub(crate) fn ran_on(&self, tier: Tier) {
        let tier = tier.as_str();
        self.runs.get_or_create(&TierLabel { tier }).inc();
    }

    fn by_function(&self) -> MutexGuard<'_, HashMap<FunctionRef, PerFunction>> {
        // Counts only: one a panic interrupted is still worth reading.
        self.by_function.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call as running until the guard is dropped.
    pub(crate) fn running(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// How many calls are running on this node now.
    pub fn calls_in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// The `n` functions (as `HASH:export`) that took the most time here, with their
    /// counts, busiest first.
    pub fn busiest_functions(&self, n: usize) -> Vec<(String, FunctionCalls)> {
        let mut all: Vec<(String, FunctionCalls)> = self
            .by_function()
            .values()
            .map(|entry| (entry.label.clone(), entry.counts.clone()))
            .collect();
        all.sort_by(|(a_fn, a), (b_fn, b)| (b.total, b.calls, a_fn).cmp(&(a.total, a.calls, b_fn)));
        all.truncate(n);
        all
    }

    pub(crate) fn fetched(&self, bytes: u64, took: Duration) {
        self.fetched_bytes.inc_by(bytes);
        self.fetch_seconds.observe(took.as_secs_f64());
    }

    /// A response of the HTTP route `route` (`GET /orders/{id}`; `none` when no route
    /// took the request).
    /// A placed call's peers were looked up: in the placement cache or the DHT.
    pub(crate) fn placement_lookup(&self, cached: bool) {
        let source = if cached { "cache" } else { "dht" };
        self.placement_lookups
            .get_or_create(&SourceLabel { source })
            .inc();
    }

    pub fn http_response(&self, route: &str, status: u16) {
        self.http_responses
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// The restarts of each binding's provider process so far (counted by the
    /// providers; copied here when scraped).
    pub fn set_provider_restarts(&self, restarts: impl IntoIterator<Item = (String, u64)>) {
        for (ability, total) in restarts {
            let counter = self
                .provider_restarts
                .get_or_create(&AbilityLabel { ability });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The hole punches since the node started: `punched` and `failed`.
    pub fn set_hole_punches(&self, punched: u64, failed: u64) {
        for (outcome, total) in [("punched", punched), ("failed", failed)] {
            let counter = self.hole_punches.get_or_create(&OutcomeLabel { outcome });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The peers now: with a connection, and admitted to the mesh.
    pub fn set_peers(&self, connected: usize, members: usize) {
        self.peers.set(connected as i64);
        self.members.set(members as i64);
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_counted_by_the_tier_of_their_code() {
        let metrics = Metrics::default();
        metrics.ran_on(Tier::Baseline);
        metrics.ran_on(Tier::Baseline);
        metrics.ran_on(Tier::Optimized);
        let text = metrics.encode();
        assert!(
            text.contains("spore_runs_total{tier=\"baseline\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("spore_runs_total{tier=\"optimized\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn hole_punches_are_counted_from_the_meshs_totals() {
        let metrics = Metrics::default();
        metrics.set_hole_punches(1, 0);
        metrics.set_hole_punches(3, 2);
        let text = metrics.encode();
        assert!(
            text.contains("spore_hole_punches_total{outcome=\"punched\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("spore_hole_punches_total{outcome=\"failed\"} 2\n"),
            "{text}"
        );
    }
}
