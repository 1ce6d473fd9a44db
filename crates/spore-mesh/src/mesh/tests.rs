//! Mesh nodes refusing oversize frames, fetching from an older node, and serving a
//! stranger nothing.

use futures::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::testing::{echo, echo_request};
use crate::wire::{FETCH_PROTOCOL, FETCH_PROTOCOL_V1, INVOKE_PROTOCOL};
use spore_core::Cancel;

/// Holds one module and echoes invocations.
struct OneModule(Vec<u8>);

impl MeshHost for OneModule {
    fn module_bytes(&self, hash: &spore_core::Hash) -> Option<Vec<u8>> {
        (*hash == spore_core::Hash::of(&self.0)).then(|| self.0.clone())
    }
    fn module_hashes(&self) -> Vec<spore_core::Hash> {
        vec![spore_core::Hash::of(&self.0)]
    }
    fn invoke(&self, request: CallRequest, _: PeerId, _: Cancel) -> InvokeResponse {
        echo(&request, "run")
    }
}

async fn start(bootstrap: Vec<Multiaddr>, module: Vec<u8>) -> Mesh {
    start_as(bootstrap, module, true).await
}

async fn start_as(bootstrap: Vec<Multiaddr>, module: Vec<u8>, member: bool) -> Mesh {
    crate::testing::start_mesh(bootstrap, member, Arc::new(OneModule(module))).await
}

/// Sends only a length prefix far over the protocol's limit; the server must reset
/// the stream without waiting for (or allocating) the body.
async fn oversize_frame_is_refused(
    client: &Mesh,
    server: PeerId,
    protocol: libp2p::StreamProtocol,
) {
    let mut stream = client
        .inner
        .control
        .open_stream(server, protocol.clone())
        .await
        .unwrap();
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("{protocol}: no reset within 5 s"));
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "{protocol}: answered an oversize frame with {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_resets_its_stream_and_the_node_keeps_serving() {
    let module = vec![7u8; 3 << 20];
    let hash = spore_core::Hash::of(&module);
    let server = start(Vec::new(), module.clone()).await;
    let client = start(server.listen_addrs().await, Vec::new()).await;

    oversize_frame_is_refused(&client, server.peer_id(), FETCH_PROTOCOL).await;
    oversize_frame_is_refused(&client, server.peer_id(), FETCH_PROTOCOL_V1).await;
    oversize_frame_is_refused(&client, server.peer_id(), INVOKE_PROTOCOL).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let fetched = client.fetch(hash, deadline).await.unwrap();
    assert!(fetched.bytes == module);
    let request = echo_request(hash, &[0x80], Duration::from_secs(1));
    let response = client.invoke(server.peer_id(), &request).await.unwrap();
    assert_eq!(response.result.unwrap().value, vec![0x80]);

    // Past the hop limit, the mesh refuses the call before the host sees it.
    let forwarded_too_often = CallRequest { hops: 5, ..request };
    let response = client
        .invoke(server.peer_id(), &forwarded_too_often)
        .await
        .unwrap();
    assert_eq!(
        response.result.unwrap_err().kind,
        spore_core::ErrorKind::BadRequest
    );

    client.shutdown().await;
    server.shutdown().await;
    let err = client
        .invoke(
            server.peer_id(),
            &echo_request(hash, &[0x80], Duration::ZERO),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MeshError::ShutDown), "{err}");
}

/// A node of an earlier version speaks `/spore/fetch/1` only: it is asked in `/1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_predates_fetch_2_is_fetched_from_in_fetch_1() {
    let module: Vec<u8> = (0..(3 << 20) + 12345)
        .map(|i| (i * 7 + i / 1000) as u8)
        .collect();
    let hash = spore_core::Hash::of(&module);
    let tuning = crate::MeshTuning {
        predates_fetch_2: true,
        ..crate::MeshTuning::default()
    };
    let host = Arc::new(OneModule(module.clone()));
    let old = crate::testing::start_mesh_tuned(Vec::new(), true, host, tuning).await;
    let new = start(old.listen_addrs().await, Vec::new()).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let fetched = new.fetch(hash, deadline).await.unwrap();
    assert!(fetched.bytes == module);
    assert_eq!(fetched.sources, vec![(old.peer_id(), module.len() as u64)]);
    new.shutdown().await;
    old.shutdown().await;
}

/// A stranger that skips its own checks, sends no hello and speaks the protocols
/// directly gets no module and no call answered: the node waits for a verdict that
/// never comes (10 s) and drops its streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_speaking_the_protocols_directly_is_served_nothing() {
    let module = vec![9u8; 1 << 10];
    let hash = spore_core::Hash::of(&module);
    let member = start(Vec::new(), module).await;
    let stranger = start_as(member.listen_addrs().await, Vec::new(), false).await;

    let fetched = async {
        let mut stream = stranger
            .control()
            .open_stream(member.peer_id(), FETCH_PROTOCOL)
            .await
            .ok()?;
        let request = crate::wire::FetchRequest {
            hash,
            start: 0,
            len: 1 << 10,
        };
        crate::wire::write_frame(
            &mut stream,
            &request,
            crate::wire::FETCH_REQUEST_FRAME_LIMIT,
        )
        .await
        .ok()?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        Some(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(20), fetched)
        .await
        .expect("the stream ends");
    // The stream opened (the stranger trusts everyone), and nothing came back.
    assert_eq!(answer, Some(Vec::new()), "a stranger was answered");

    let request = echo_request(hash, &[0x80], Duration::from_secs(5));
    let answer = stranger.channels().invoke(member.peer_id(), &request).await;
    assert!(
        answer.as_ref().map_or(true, |r| r.result.is_err()),
        "a stranger's call was run: {answer:?}"
    );
    assert!(member.admitted(&stranger.peer_id()).is_none());
    stranger.shutdown().await;
    member.shutdown().await;
}
