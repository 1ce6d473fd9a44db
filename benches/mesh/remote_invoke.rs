//! `remote_invoke_add`: one round trip of a remote invoke of `arith:add(2, 3)` over a warm
//! connection, against NATS request/reply and a length-prefixed request/reply over plain
//! TCP with the same sizes; the cases are described in `mesh.rs`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ciborium::Value;
use criterion::Criterion;
use futures::StreamExt;
use spore_core::{Args, CallRequest, FunctionRef, Path, TraceId, value};
use spore_mesh::{InvokeResponse, Keypair, Returned};
use tokio::io::AsyncWriteExt;

use super::nats::NatsServer;
use super::{
    BenchHost, MeshNode, frame, on_worker, read_frame, runtime, start_mesh, tcp_client, tcp_server,
    wait_connected,
};

const NATS_SUBJECT: &str = "spore.bench.invoke";

fn cbor<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(message, &mut bytes).unwrap();
    bytes
}

pub(super) fn remote_invoke_add(c: &mut Criterion) {
    let rt = runtime();
    // A runs the function every time: with the memo on, it would answer from it. B calls
    // far more often than A lets one peer by default (`per_peer_calls_per_second`, 200):
    // the limit is raised so that its check is timed but never refuses.
    let default = spore_node::config::default_config();
    let memo_off = default.replace("[memo]\nenabled = true", "[memo]\nenabled = false");
    assert_ne!(memo_off, default);
    let a_config = memo_off.replace(
        "per_peer_calls_per_second = 200\n",
        "per_peer_calls_per_second = 1000000000\n",
    );
    assert_ne!(a_config, memo_off);
    let a = MeshNode::open(
        &rt,
        Some(&a_config),
        Keypair::generate_ed25519(),
        Vec::new(),
    );
    let arith = a
        .node
        .publish(&spore_test_programs::bytes("arith"), None)
        .unwrap()
        .manifest
        .module;
    let a_peer = a.mesh.peer_id();
    let b = rt.block_on(async {
        let b = start_mesh(
            Keypair::generate_ed25519(),
            BenchHost::empty(),
            a.mesh.listen_addrs().await,
            Vec::new(),
        )
        .await;
        wait_connected(&b, a_peer).await;
        b
    });

    // One request for the whole run: its deadline is far enough for every iteration,
    // and A cuts it to its own limit for forwarded calls anyway.
    let request = CallRequest::new(
        FunctionRef::new(arith, "add".parse().unwrap()),
        Args::encode(&[2.into(), 3.into()]).unwrap(),
        std::time::Instant::now() + Duration::from_secs(3600),
        64 << 20,
        TraceId::from_bytes([7; 16]),
    );
    let five = value::encode_canonical(&Value::Integer(5.into())).unwrap();
    // Warm: the connection, A's loaded module and its instance pool.
    let real = {
        let (b, request) = (b.clone(), request.clone());
        on_worker(&rt, async move {
            let mut last = None;
            for _ in 0..200 {
                last = Some(b.invoke(a_peer, &request).await.unwrap());
            }
            last.unwrap()
        })
    };
    assert_eq!(
        real.result.as_ref().map(|returned| &returned.value),
        Ok(&five),
        "{real:?}"
    );
    let steps = real.path.steps();
    assert!(
        steps.len() == 1
            && steps[0].step.starts_with("ran ")
            && steps[0].step.contains("Memory load"),
        "A runs the loaded module, neither the memo nor a compile: {steps:?}"
    );
    let request_body = cbor(&request);
    let response_len = cbor(&real).len();
    eprintln!(
        "remote_invoke_add: request {} bytes, response {response_len} bytes (CBOR bodies)",
        request_body.len()
    );

    // E echoes the arguments with the same path, so its response is as large as A's.
    let path: Path = real.path.clone();
    let returned: Returned = real.result.clone().expect("A answered");
    let echo = BenchHost::new(HashMap::new(), move |request| InvokeResponse {
        result: Ok(Returned {
            value: request.args.as_bytes().to_vec(),
            ..returned.clone()
        }),
        path: path.clone(),
        refused: false,
    });
    let e = rt.block_on(async {
        let e = start_mesh(
            Keypair::generate_ed25519(),
            echo,
            b.listen_addrs().await,
            Vec::new(),
        )
        .await;
        wait_connected(&b, e.peer_id()).await;
        e
    });
    let e_peer = e.peer_id();
    {
        let (b, sent) = (b.clone(), request.clone());
        let echoed = on_worker(&rt, async move {
            let mut last = None;
            for _ in 0..200 {
                last = Some(b.invoke(e_peer, &sent).await.unwrap());
            }
            last.unwrap()
        });
        assert_eq!(
            echoed
                .result
                .as_ref()
                .map(|returned| returned.value.as_slice()),
            Ok(request.args.as_bytes())
        );
        assert!(cbor(&echoed).len().abs_diff(response_len) <= 4);
    }

    // NATS: a responder on its own connection answers every request with a reply as
    // large as spore's response.
    let nats_server = NatsServer::start(false);
    let nats = nats_server.as_ref().map(|server| {
        let url = server.url();
        let request_payload = Bytes::from(request_body.clone());
        rt.block_on(async move {
            let responder = async_nats::connect(&url).await.unwrap();
            let mut requests = responder.subscribe(NATS_SUBJECT).await.unwrap();
            responder.flush().await.unwrap();
            let reply = Bytes::from(vec![0xa5; response_len]);
            let answering = tokio::spawn(async move {
                while let Some(message) = requests.next().await {
                    if let Some(to) = message.reply {
                        responder.publish(to, reply.clone()).await.unwrap();
                    }
                }
            });
            let client = async_nats::connect(&url).await.unwrap();
            for _ in 0..200 {
                let answer = client
                    .request(NATS_SUBJECT, request_payload.clone())
                    .await
                    .unwrap();
                assert_eq!(answer.payload.len(), response_len);
            }
            (client, request_payload, answering)
        })
    });

    // Plain TCP: one connection, a request frame of spore's request bytes, a reply frame
    // of its response's size.
    let reply_frame = Arc::new(frame(&vec![0xa5; response_len]));
    let request_frame = Arc::new(frame(&request_body));
    let tcp_addr = rt.block_on(tcp_server(reply_frame.clone()));
    let mut tcp = Some(rt.block_on(async {
        let mut socket = tcp_client(tcp_addr).await;
        let mut body = Vec::new();
        for _ in 0..200 {
            socket.write_all(&request_frame).await.unwrap();
            read_frame(&mut socket, &mut body).await.unwrap();
            assert_eq!(body.len(), response_len);
        }
        socket
    }));

    let mut group = c.benchmark_group("remote_invoke_add");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (case, peer) in [("spore_node_host", a_peer), ("spore_echo_host", e_peer)] {
        group.bench_function(case, |bencher| {
            bencher.iter_custom(|iters| {
                let (b, request) = (b.clone(), request.clone());
                on_worker(&rt, async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let response = b.invoke(peer, &request).await;
                        assert!(black_box(response).unwrap().result.is_ok());
                    }
                    started.elapsed()
                })
            })
        });
    }
    if let Some((client, payload, _)) = &nats {
        group.bench_function("nats_request_reply", |bencher| {
            bencher.iter_custom(|iters| {
                let (client, payload) = (client.clone(), payload.clone());
                on_worker(&rt, async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let answer = client.request(NATS_SUBJECT, payload.clone()).await;
                        assert_eq!(black_box(answer).unwrap().payload.len(), response_len);
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.bench_function("tcp_echo", |bencher| {
        bencher.iter_custom(|iters| {
            let mut socket = tcp.take().expect("the TCP client is back");
            let request_frame = request_frame.clone();
            let (socket, elapsed) = on_worker(&rt, async move {
                let mut body = Vec::new();
                let started = Instant::now();
                for _ in 0..iters {
                    socket.write_all(&request_frame).await.unwrap();
                    read_frame(&mut socket, &mut body).await.unwrap();
                    assert_eq!(black_box(&body).len(), response_len);
                }
                (socket, started.elapsed())
            });
            tcp = Some(socket);
            elapsed
        })
    });
    group.finish();

    if let Some((_, _, answering)) = nats {
        answering.abort();
    }
    drop(nats_server);
    rt.block_on(async {
        e.shutdown().await;
        b.shutdown().await;
    });
    drop(a);
    rt.shutdown_timeout(Duration::from_secs(5));
}
