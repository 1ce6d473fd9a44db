//! OTLP trace export (`spore node run --otlp`), received by a real OTLP/HTTP receiver the
//! test runs: one request through a gateway, a forward and nested calls is one trace
//! with spans from each node, each node's spans under the span that reached it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

use crate::support::{RunningNode, Spore};

/// A span as received: which node sent it, its name and its place in its trace.
#[derive(Clone, Debug)]
struct Received {
    node: String,
    name: String,
    trace: Vec<u8>,
    span: Vec<u8>,
    parent: Vec<u8>,
}

/// An OTLP/HTTP receiver on a loopback port, keeping every span it is sent.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("protobuf");
                    for resource in request.resource_spans {
                        let node = resource
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|kv| kv.key == "service.instance.id")
                            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                                AnyValue::StringValue(text) => Some(text.clone()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                            kept.lock().unwrap().push(Received {
                                node: node.clone(),
                                name: span.name,
                                trace: span.trace_id,
                                span: span.span_id,
                                parent: span.parent_span_id,
                            });
                        }
                    }
                    (
                        [("content-type", "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            }),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            spans,
            _runtime: runtime,
        }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

#[test]
fn one_request_through_a_gateway_a_forward_and_nested_calls_is_one_trace_across_nodes() {
    let receiver = Receiver::start();
    let otlp = ["--otlp", receiver.url.as_str()];

    // The cloud binds kv for the mesh's members; the gateway binds none, so what needs
    // kv is forwarded to the cloud.
    let cloud = Spore::new();
    cloud.write_config(&spore_node::config::default_config().replacen(
        "[abilities.kv]\n",
        "[abilities.kv]\ncallers = [\"role:test\"]\n",
        1,
    ));
    let cloud = RunningNode::launch(
        cloud,
        &[],
        &[&["--listen", "/ip4/127.0.0.1/tcp/0"][..], &otlp].concat(),
    );
    let gateway = Spore::new();
    let without_kv = spore_node::config::default_config().replace(
        "[abilities.kv]\nprovider = \"kv\"\nnamespace = \"default\"\nmax_value_bytes = \"1MiB\"\n",
        "",
    );
    gateway.write_config(&format!(
        "{without_kv}\n[[routes]]\nmethod = \"GET\"\npath = \"/collect\"\nfunction = \"telemetry.collect\"\n"
    ));
    let gateway = RunningNode::launch(
        gateway,
        &[cloud.listen.as_str()],
        &[
            &["--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0"][..],
            &otlp,
        ]
        .concat(),
    );
    gateway.spore.publish("telemetry", Some("telemetry"));

    // collect (on the gateway: it reaches only `call`) calls store and then load, both
    // through `call`; each needs kv, so each is forwarded to the cloud.
    let http = gateway.http.clone().unwrap();
    let query = "storer=telemetry.store&reader=telemetry.load&sensor_id=k&key=k";
    let started = Instant::now();
    loop {
        let answer = ureq::get(format!("http://{http}/collect?{query}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        if answer.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the route never answered 200: {}",
            answer.status()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (cloud_id, gateway_id) = (cloud.peer_id.clone(), gateway.peer_id.clone());
    // Stopped nodes send what their exporters still hold.
    drop(gateway.stop());
    drop(cloud.stop());

    let spans = receiver.spans();
    // The last request's route span, and its trace.
    let route = spans
        .iter()
        .rev()
        .find(|s| s.name == "route" && s.node == gateway_id)
        .unwrap_or_else(|| panic!("no route span from the gateway: {spans:#?}"));
    let trace: Vec<&Received> = spans.iter().filter(|s| s.trace == route.trace).collect();
    let on = |node: &str| trace.iter().filter(|s| s.node == node).count();
    assert!(
        on(&gateway_id) >= 3,
        "route, collect, its calls: {trace:#?}"
    );
    assert!(
        on(&cloud_id) >= 2,
        "load and store ran on the cloud: {trace:#?}"
    );
    // Every span of the trace but the route's has its parent in the trace, across nodes.
    for span in &trace {
        if span.span == route.span {
            assert!(route.parent.is_empty(), "the route span is the root");
            continue;
        }
        assert!(
            trace.iter().any(|parent| parent.span == span.parent),
            "{span:?} has no parent in the trace: {trace:#?}"
        );
    }
    // And the cloud's spans hang under spans of the gateway.
    assert!(
        trace.iter().any(|s| s.node == cloud_id
            && trace
                .iter()
                .any(|p| p.node == gateway_id && p.span == s.parent)),
        "{trace:#?}"
    );
}
