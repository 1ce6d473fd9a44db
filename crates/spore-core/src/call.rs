//! A call as it travels: one [`CallRequest`], built once at whichever edge the call
//! enters (the CLI, the HTTP API, the `call` ability, a Wasm handler, a peer that
//! forwarded it) and carried as it is to the node that runs it, over the wire included
//! (`spec/wire.md`, `/spore/invoke/3`). What happened on the way comes back as a
//! [`Path`].
//!
//! The one clock this module reads is the monotonic clock, and only to carry a deadline
//! across the wire: an absolute [`Instant`] means nothing on another machine, so it
//! travels as the milliseconds left and becomes an absolute deadline again on arrival.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::reference::FunctionRef;
use crate::value::{self, ValueError};

/// How many times a call may be forwarded before it must run or fail.
pub const MAX_HOPS: u32 = 4;

/// The longest deadline a call can carry across the wire; longer ones are cut to this
/// (the serving node caps them far lower, `docs/configuration.md`).
pub const MAX_WIRE_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// One call: what to run, with what, until when, within what, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The function, resolved once at the edge: always a full module hash. The export
    /// may be left out for a module with a single function; the node that runs the call
    /// picks it from the module's manifest.
    pub function: FunctionRef,
    /// The arguments, encoded once.
    pub args: Args,
    /// When the whole call (fetching code, compiling it, running it) must be done.
    pub deadline: Instant,
    /// The most linear memory the function may have, in bytes.
    pub memory_bytes: u64,
    /// Whether a memoized result may answer the call (and a new one be stored).
    pub memo: bool,
    /// Where the call may run.
    pub placement: Placement,
    /// How many times the call has been forwarded to get here.
    pub hops: u32,
    /// Ties together the log lines and path steps of one call across nodes.
    pub trace: TraceId,
    /// The span of the caller's trace this call continues, when the caller exports
    /// traces: a call forwarded to a peer carries the forwarding node's span, so that the
    /// peer's spans join the same trace under it.
    pub parent_span: Option<SpanId>,
}

impl CallRequest {
    /// A call of `function` with `args` that must be done by `deadline` within
    /// `memory_bytes`, placed anywhere, that a memoized result may answer.
    pub fn new(
        function: FunctionRef,
        args: Args,
        deadline: Instant,
        memory_bytes: u64,
        trace: TraceId,
    ) -> CallRequest {
        CallRequest {
            function,
            args,
            deadline,
            memory_bytes,
            memo: true,
            placement: Placement::Anywhere,
            hops: 0,
            trace,
            parent_span: None,
        }
    }

    /// The time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A call's arguments: one CBOR array, in canonical form (`spec/values.md`) when spore
/// encoded it. Bytes that arrive from a peer are passed to the function as they are; the
/// function's SDK checks them, as it checks any arguments.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Args(#[serde(with = "serde_bytes")] Vec<u8>);

impl Args {
    /// Encodes `values` canonically as the argument array.
    pub fn encode(values: &[ciborium::Value]) -> Result<Args, ValueError> {
        let mut out = Vec::new();
        value::write_head(&mut out, value::Major::Array, values.len() as u64);
        for item in values {
            out.extend(value::encode_canonical(item)?);
        }
        Ok(Args(out))
    }

    /// Arguments already encoded as one CBOR array, taken as they are.
    pub fn from_bytes(bytes: Vec<u8>) -> Args {
        Args(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Args({} bytes)", self.0.len())
    }
}

/// Where a call may run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Here when this node binds the abilities the function needs, else on a peer that
    /// does.
    #[default]
    Anywhere,
    /// Here, or not at all.
    Local,
    /// On this peer (its peer id, as text).
    On(String),
}

/// A call's trace id: 16 random bytes, shown as 32 hex characters (the size of a W3C
/// trace id, so that it can become one).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(#[serde(with = "serde_bytes")] [u8; 16]);

impl TraceId {
    pub const fn from_bytes(bytes: [u8; 16]) -> TraceId {
        TraceId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// A span id within a trace: 8 bytes (the size of a W3C parent id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpanId(#[serde(with = "serde_bytes")] [u8; 8]);

impl SpanId {
    pub const fn from_bytes(bytes: [u8; 8]) -> SpanId {
        SpanId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, ")")
    }
}

/// The map a [`CallRequest`] is on the wire (`spec/wire.md`).
#[derive(Serialize, Deserialize)]
struct CallRequestWire {
    function: FunctionRef,
    args: Args,
    /// The milliseconds left before the deadline when the request was written.
    deadline_ms: u64,
    memory_bytes: u64,
    memo: bool,
    #[serde(default)]
    placement: Placement,
    hops: u32,
    trace: TraceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    span: Option<SpanId>,
}

impl Serialize for CallRequest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let remaining = self.remaining().min(MAX_WIRE_DEADLINE);
        CallRequestWire {
            function: self.function.clone(),
            args: self.args.clone(),
            deadline_ms: remaining.as_millis() as u64,
            memory_bytes: self.memory_bytes,
            memo: self.memo,
            placement: self.placement.clone(),
            hops: self.hops,
            trace: self.trace,
            span: self.parent_span,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CallRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = CallRequestWire::deserialize(deserializer)?;
        let left = Duration::from_millis(wire.deadline_ms).min(MAX_WIRE_DEADLINE);
        Ok(CallRequest {
            function: wire.function,
            args: wire.args,
            deadline: Instant::now() + left,
            memory_bytes: wire.memory_bytes,
            memo: wire.memo,
            placement: wire.placement,
            hops: wire.hops,
            trace: wire.trace,
            parent_span: wire.span,
        })
    }
}

/// What memoization did for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoUse {
    /// The result came from the memo; the function did not run.
    Hit,
    /// The function ran and its result was memoized.
    Stored,
    /// The function ran and its result was not memoized (it can reach an ability, its
    /// result is too large, or memoization was off for this call or on the node).
    Skipped,
}

/// Where the code a call ran came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadSource {
    /// Already loaded in the process.
    Memory,
    /// Deserialized from the codebase's compiled-artifact cache.
    #[serde(rename = "cached")]
    Artifact,
    /// Compiled from Wasm just now.
    Compiled,
}

/// Which compiler made the code a call ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Cranelift's optimized code.
    #[default]
    Optimized,
    /// Winch's baseline code, which serves a module's first calls while Cranelift
    /// compiles it.
    Baseline,
}

impl Tier {
    pub fn is_optimized(&self) -> bool {
        *self == Tier::Optimized
    }

    /// Its name, as on the wire (`"optimized"`, `"baseline"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Tier::Optimized => "optimized",
            Tier::Baseline => "baseline",
        }
    }
}

/// Where the time went in a call that ran. On the wire and in JSON it is
/// `{load, load_us, instantiate_us, run_us, memory_bytes, tier?}`, `tier` present only
/// when it is `"baseline"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStats {
    #[serde(rename = "load")]
    pub load_source: LoadSource,
    #[serde(rename = "load_us", with = "micros")]
    pub load_time: Duration,
    #[serde(rename = "instantiate_us", with = "micros")]
    pub instantiate_time: Duration,
    #[serde(rename = "run_us", with = "micros")]
    pub run_time: Duration,
    /// Linear memory at the end of the call, in bytes.
    pub memory_bytes: u64,
    /// Left out when optimized, so that peers that know no tiers read the same record.
    #[serde(default, skip_serializing_if = "Tier::is_optimized")]
    pub tier: Tier,
}

/// Durations as whole microseconds.
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_micros)
    }
}

/// Set when whoever waits for a call is gone, so that the call stops at its next check
/// (for a running function, the next epoch tick) instead of running to its deadline.
/// Clones share one flag. The default is [`Cancel::never`].
#[derive(Debug, Clone, Default)]
pub struct Cancel(Option<Arc<AtomicBool>>);

impl Cancel {
    /// A flag that [`Cancel::cancel`] sets for every clone.
    pub fn new() -> Cancel {
        Cancel(Some(Arc::new(AtomicBool::new(false))))
    }

    /// A flag nobody can set, for a call whose caller cannot go away before it ends (it
    /// waits in the same thread); it costs no allocation.
    pub fn never() -> Cancel {
        Cancel(None)
    }

    pub fn cancel(&self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Relaxed);
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }
}

/// One step of a call's path: which node did what, and how long it took (`--explain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStep {
    /// The peer id of the node that took the step (`local` off the mesh).
    pub node: String,
    /// What it did, for people: `ran ...`, `fetched ... from ...`, `forwarded ... to ...`.
    pub step: String,
    pub micros: u64,
}

/// The steps of one call, nested calls and forwarded legs included, in order. It holds
/// at most [`Path::MAX_STEPS`] steps of at most [`Path::MAX_STEP_BYTES`] each: a fan-out
/// of nested calls, or a peer, must not make the answer to a call unboundedly large.
/// Steps past the limit are counted, not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path {
    steps: Vec<PathStep>,
    omitted: u64,
}

impl Path {
    pub const MAX_STEPS: usize = 256;
    pub const MAX_STEP_BYTES: usize = 512;

    pub fn new() -> Path {
        Path::default()
    }

    /// Adds a step, its texts made printable and cut to size.
    pub fn push(&mut self, step: PathStep) {
        if self.steps.len() >= Self::MAX_STEPS {
            self.omitted += 1;
            return;
        }
        self.steps.push(PathStep {
            node: printable(step.node),
            step: printable(step.step),
            micros: step.micros,
        });
    }

    /// Adds the steps of another path (a nested call's, a peer's) after these.
    pub fn extend(&mut self, other: Path) {
        for step in other.steps {
            self.push(step);
        }
        self.omitted += other.omitted;
    }

    pub fn steps(&self) -> &[PathStep] {
        &self.steps
    }

    /// How many steps were left out for the limit.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// `text` made printable and cut to a step's size, without copying it when it already is.
fn printable(text: String) -> String {
    match crate::text::printable(&text, Path::MAX_STEP_BYTES) {
        std::borrow::Cow::Owned(cleaned) => cleaned,
        std::borrow::Cow::Borrowed(_) => text,
    }
}

/// The map a [`Path`] is on the wire and in JSON: `{steps: [...], omitted}`.
#[derive(Serialize, Deserialize)]
struct PathWire {
    steps: Vec<PathStep>,
    #[serde(default)]
    omitted: u64,
}

impl Serialize for Path {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PathWire {
            steps: self.steps.clone(),
            omitted: self.omitted,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Path {
    /// A path read from a peer is held to the same limits as one made here.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = PathWire::deserialize(deserializer)?;
        let mut path = Path::new();
        for step in wire.steps {
            path.push(step);
        }
        path.omitted += wire.omitted;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;

    #[test]
    fn a_tiers_name_is_the_one_it_has_on_the_wire() {
        for tier in [Tier::Optimized, Tier::Baseline] {
            assert_eq!(serde_json::to_value(tier).unwrap(), tier.as_str());
        }
    }

    fn request() -> CallRequest {
        CallRequest {
            function: FunctionRef::new(Hash::of(b"m"), "add".parse().unwrap()),
            args: Args::encode(&[2.into(), 3.into()]).unwrap(),
            deadline: Instant::now() + Duration::from_secs(5),
            memory_bytes: 16 << 20,
            memo: false,
            placement: Placement::On("12D3KooWpeer".into()),
            hops: 2,
            trace: TraceId::from_bytes([7; 16]),
            parent_span: Some(SpanId::from_bytes([9; 8])),
        }
    }

    #[test]
    fn a_request_crosses_the_wire_whole_with_its_deadline_as_time_left() {
        let sent = request();
        let mut bytes = Vec::new();
        ciborium::into_writer(&sent, &mut bytes).unwrap();
        let received: CallRequest = ciborium::from_reader(&bytes[..]).unwrap();
        assert_eq!(received.function, sent.function);
        assert_eq!(received.args, sent.args);
        assert_eq!(received.args.as_bytes(), [0x82, 0x02, 0x03]);
        assert_eq!(received.memory_bytes, sent.memory_bytes);
        assert!(!received.memo);
        assert_eq!(received.placement, sent.placement);
        assert_eq!(received.hops, 2);
        assert_eq!(received.trace, sent.trace);
        assert_eq!(received.parent_span, sent.parent_span);
        let left = received.remaining();
        assert!(
            left <= Duration::from_secs(5) && left > Duration::from_secs(4),
            "{left:?}"
        );
    }

    #[test]
    fn a_deadline_already_passed_travels_as_zero_and_a_huge_one_is_cut() {
        let mut late = request();
        late.deadline = Instant::now() - Duration::from_millis(1);
        let mut bytes = Vec::new();
        ciborium::into_writer(&late, &mut bytes).unwrap();
        let received: CallRequest = ciborium::from_reader(&bytes[..]).unwrap();
        assert_eq!(received.remaining(), Duration::ZERO);

        let mut wire = ciborium::Value::serialized(&request()).unwrap();
        for (key, value) in wire.as_map_mut().unwrap() {
            if key.as_text() == Some("deadline_ms") {
                *value = u64::MAX.into();
            }
        }
        let received: CallRequest = wire.deserialized().unwrap();
        assert!(received.remaining() <= MAX_WIRE_DEADLINE);
    }

    #[test]
    fn a_path_keeps_its_limits_and_counts_what_it_left_out() {
        let mut path = Path::new();
        for i in 0..Path::MAX_STEPS + 10 {
            path.push(PathStep {
                node: "n".into(),
                step: format!("step {i}\u{1b}]0;title\u{7}"),
                micros: 1,
            });
        }
        assert_eq!(path.len(), Path::MAX_STEPS);
        assert_eq!(path.omitted(), 10);
        assert!(
            !path.steps()[0].step.contains('\u{1b}'),
            "{:?}",
            path.steps()[0]
        );

        let long = PathStep {
            node: "é".repeat(1000),
            step: "x".repeat(10_000),
            micros: 0,
        };
        let mut short = Path::new();
        short.push(long);
        assert!(short.steps()[0].step.len() <= Path::MAX_STEP_BYTES + 64);
        assert!(short.steps()[0].node.len() <= Path::MAX_STEP_BYTES + 64);

        let mut outer = Path::new();
        outer.extend(path);
        assert_eq!(outer.omitted(), 10);
    }

    #[test]
    fn cancelling_is_seen_by_every_clone() {
        let cancel = Cancel::new();
        let seen_by = cancel.clone();
        assert!(!seen_by.is_cancelled());
        cancel.cancel();
        assert!(seen_by.is_cancelled());

        let never = Cancel::never();
        never.cancel();
        assert!(!never.is_cancelled());
    }
}
