//! Where a call's spans go when the node exports traces. The node knows no exporter: the
//! binary installs a [`TraceBridge`] (OpenTelemetry, `spore node run --otlp`), and the
//! node asks it to join a call to its caller's trace, and for the span a forwarded call
//! continues (`spec/wire.md`, the call frame's `trace` and `span`). Without one, traces
//! are spore's own ids in the log and in paths, as always.

use std::sync::OnceLock;

use spore_core::{SpanId, TraceId};

/// What the node needs of a trace exporter.
pub trait TraceBridge: Send + Sync + 'static {
    /// The trace `span` belongs to for the exporter (its root's, when it has no parent).
    fn trace_of(&self, span: &tracing::Span) -> Option<TraceId>;
    /// The exporter's id of `span`, for a call that continues it on a peer.
    fn span_id(&self, span: &tracing::Span) -> Option<SpanId>;
    /// Makes `span` a child of the span `parent` of `trace`, on another node.
    fn adopt(&self, span: &tracing::Span, trace: TraceId, parent: SpanId);
}

static BRIDGE: OnceLock<Box<dyn TraceBridge>> = OnceLock::new();

/// Installs the process's trace exporter; only the first call counts.
pub fn install(bridge: Box<dyn TraceBridge>) {
    let _ = BRIDGE.set(bridge);
}

pub(crate) fn get() -> Option<&'static dyn TraceBridge> {
    BRIDGE.get().map(|bridge| bridge.as_ref())
}
