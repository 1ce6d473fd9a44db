//! OTLP trace export for `spore node run --otlp URL` (docs/observability.md): spore's
//! spans (each call, route, schedule run, subscription delivery, fetch) sent over
//! HTTP/protobuf by OpenTelemetry's batch exporter, and the
//! [`TraceBridge`] through which the node joins a call to its caller's trace across
//! nodes (`spec/wire.md`, the call frame's `span`). Off unless an endpoint is given.

use opentelemetry::trace::{
    SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use spore_core::{SpanId, TraceId};
use spore_node::trace_bridge::TraceBridge;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Which spans are exported: spore's own, at info (a call, a route, a fetch...), not
/// the libraries' below it, nor the per-operation ability spans at debug.
pub const EXPORTED: &str = "warn,spore=info,spore_node=info,spore_mesh=info,spore_runtime=info";

/// The exporter; dropping it sends what is still buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("warning: not every span was exported: {error}");
        }
    }
}

/// The traces endpoint for the collector at `base` (`http://collector:4318`, as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` gives it): `/v1/traces` under it, unless given.
fn traces_endpoint(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// A tracing layer that exports to the OTLP/HTTP collector at `endpoint` the spans of
/// the node `instance` (its peer id, `service.instance.id`), and the exporter behind it.
/// Installs the node's [`TraceBridge`].
pub fn layer<S>(
    endpoint: &str,
    instance: &str,
) -> anyhow::Result<(impl tracing_subscriber::Layer<S> + use<S>, Exporter)>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_endpoint(endpoint))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot export traces to {endpoint}: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("spore")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            instance.to_owned(),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("spore");
    spore_node::trace_bridge::install(Box::new(OpenTelemetryBridge));
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Exporter { provider },
    ))
}

struct OpenTelemetryBridge;

impl TraceBridge for OpenTelemetryBridge {
    fn trace_of(&self, span: &tracing::Span) -> Option<TraceId> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context
            .is_valid()
            .then(|| TraceId::from_bytes(span_context.trace_id().to_bytes()))
    }

    fn span_id(&self, span: &tracing::Span) -> Option<SpanId> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context
            .is_valid()
            .then(|| SpanId::from_bytes(span_context.span_id().to_bytes()))
    }

    fn adopt(&self, span: &tracing::Span, trace: TraceId, parent: SpanId) {
        let remote = SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(*trace.as_bytes()),
            opentelemetry::trace::SpanId::from_bytes(*parent.as_bytes()),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let parent = opentelemetry::Context::new().with_remote_span_context(remote);
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!("cannot join the caller's trace: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::traces_endpoint;

    #[test]
    fn the_traces_path_is_added_to_a_collectors_address_once() {
        assert_eq!(traces_endpoint("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_endpoint("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_endpoint("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
