//! `spec/vectors/wire.json`: the frames the specification shows are the frames this
//! code writes, and it reads them back to the same messages.

use super::*;
use crate::verify::SliceFormat;
use spore_core::{Args, CallRequest, Placement};

fn unhex(text: &serde_json::Value) -> Vec<u8> {
    let text = text.as_str().expect("a hex string");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().expect("a string").to_owned()
}

fn uint(value: &serde_json::Value) -> u64 {
    value.as_u64().expect("an unsigned integer")
}

fn path(value: &serde_json::Value) -> Path {
    serde_json::from_value(value.clone()).expect("a path")
}

async fn agrees<T>(message: &T, frame: &serde_json::Value)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let frame = unhex(frame);
    let mut written = Vec::new();
    write_frame(&mut written, message, INVOKE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(written, frame, "written frame of {message:?}");
    let read: T = read_frame(&mut frame.as_slice(), INVOKE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(&read, message);
}

/// A call's deadline travels as the time left when it was written, so the frame
/// written again a moment later may say a millisecond or so less: everything else
/// must be the same bytes.
async fn call_agrees(v: &serde_json::Value) {
    let frame = unhex(&v["frame"]);
    let read: Numbered<CallRequest> = read_frame(&mut frame.as_slice(), INVOKE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(read.id, uint(&v["id"]));
    let call = &read.message;
    assert_eq!(call.function.to_string(), text(&v["function"]));
    assert_eq!(call.args, Args::from_bytes(unhex(&v["args"])));
    assert_eq!(call.memory_bytes, uint(&v["memory_bytes"]));
    assert_eq!(call.memo, v["memo"].as_bool().unwrap());
    let placement: Placement = serde_json::from_value(v["placement"].clone()).unwrap();
    assert_eq!(call.placement, placement);
    assert_eq!(u64::from(call.hops), uint(&v["hops"]));
    assert_eq!(call.trace.to_string(), text(&v["trace"]));
    let span = v["span"]
        .as_str()
        .map(|_| spore_core::SpanId::from_bytes(unhex(&v["span"]).try_into().unwrap()));
    assert_eq!(call.parent_span, span);
    let left = call.remaining().as_millis() as u64;
    let sent = uint(&v["deadline_ms"]);
    assert!(
        left <= sent && left + 1000 > sent,
        "{left} ms left of {sent}"
    );

    let mut written = Vec::new();
    write_frame(&mut written, &read, INVOKE_FRAME_LIMIT)
        .await
        .unwrap();
    let as_value = |bytes: &[u8]| {
        let mut value: ciborium::Value = ciborium::from_reader(&bytes[4..]).unwrap();
        let message = value.as_map_mut().unwrap()[1].1.as_map_mut().unwrap();
        for (key, deadline) in message.iter_mut() {
            if key.as_text() == Some("deadline_ms") {
                *deadline = 0.into();
            }
        }
        value
    };
    assert_eq!(as_value(&written), as_value(&frame));
}

#[tokio::test]
async fn frames_are_those_of_the_spec() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../../../spec/vectors/wire.json")).unwrap();

    call_agrees(&doc["invoke_call"]).await;
    call_agrees(&doc["invoke_call_pinned"]).await;
    call_agrees(&doc["invoke_call_traced"]).await;

    let v = &doc["invoke_answer_ok"];
    let ok = Numbered {
        id: uint(&v["id"]),
        message: InvokeResponse {
            result: Ok(Returned {
                value: unhex(&v["value"]),
                memo: serde_json::from_value(v["memo"].clone()).unwrap(),
                effectful: v["effectful"].as_bool().unwrap(),
                stats: Some(serde_json::from_value(v["stats"].clone()).unwrap()),
            }),
            path: path(&v["path"]),
            refused: false,
        },
    };
    agrees(&ok, &v["frame"]).await;

    let v = &doc["invoke_answer_error"];
    let error = Numbered {
        id: uint(&v["id"]),
        message: InvokeResponse {
            result: Err(Failure {
                kind: ErrorKind::from_name(&text(&v["kind"])),
                message: text(&v["message"]),
                value: Some(spore_core::value::decode(&unhex(&v["value"])).unwrap()),
            }),
            path: path(&v["path"]),
            refused: false,
        },
    };
    agrees(&error, &v["frame"]).await;

    let v = &doc["invoke_answer_refused"];
    assert_eq!(v["refused"], true);
    let refused = Numbered {
        id: uint(&v["id"]),
        message: InvokeResponse::refused(
            Failure::new(ErrorKind::from_name(&text(&v["kind"])), text(&v["message"])),
            path(&v["path"]),
        ),
    };
    agrees(&refused, &v["frame"]).await;

    let v = &doc["fetch_request"];
    let request = FetchRequest {
        hash: text(&v["hash"]).parse().unwrap(),
        start: uint(&v["start"]),
        len: uint(&v["len"]),
    };
    let frame = unhex(&v["frame"]);
    let mut written = Vec::new();
    write_frame(&mut written, &request, FETCH_SLICE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(written, frame);
    let read: FetchRequest = read_frame(&mut frame.as_slice(), FETCH_SLICE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(
        (read.hash, read.start, read.len),
        (request.hash, request.start, request.len)
    );

    let v = &doc["fetch_header"];
    let header = FetchHeader {
        size: Some(uint(&v["size"])),
        error: None,
    };
    let mut written = Vec::new();
    write_frame(&mut written, &header, FETCH_SLICE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(written, unhex(&v["frame"]));
}

fn doc() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../../../spec/vectors/wire.json")).unwrap()
}

fn hash(value: &serde_json::Value) -> spore_core::Hash {
    text(value).parse().expect("a hash")
}

/// A node holding one module.
struct Holds(Vec<u8>);

impl crate::MeshHost for Holds {
    fn module_bytes(&self, hash: &spore_core::Hash) -> Option<Vec<u8>> {
        (spore_core::Hash::of(&self.0) == *hash).then(|| self.0.clone())
    }

    fn module_hashes(&self) -> Vec<spore_core::Hash> {
        vec![spore_core::Hash::of(&self.0)]
    }

    fn invoke(&self, _: CallRequest, _: libp2p::PeerId, _: spore_core::Cancel) -> InvokeResponse {
        InvokeResponse::error(spore_core::ErrorKind::Internal, "this host runs nothing")
    }
}

/// What the serving side writes when it is sent `request` on the fetch protocol
/// whose slices are in `format`.
async fn served(holds: Vec<u8>, request: Vec<u8>, format: SliceFormat) -> Vec<u8> {
    let mut stream = Scripted::new(request);
    let cache = std::sync::Arc::new(crate::fetch::ServeCache::new());
    let host = std::sync::Arc::new(Holds(holds));
    crate::fetch::serve_one(&mut stream, host, cache, format).await;
    stream.written
}

fn slice_of(module: &[u8], format: SliceFormat, start: u64, len: u64) -> Vec<u8> {
    let mut slice = Vec::new();
    crate::verify::Encoded::new(module.to_vec()).slice(format, start, len, &mut slice);
    slice
}

#[tokio::test]
async fn the_bao_slice_and_its_fetch_exchange_are_those_of_the_spec() {
    let doc = doc();
    let v = &doc["fetch_slice"];
    let module = unhex(&v["module"]);
    let hash = hash(&v["hash"]);
    let (size, start, len) = (uint(&v["size"]), uint(&v["start"]), uint(&v["len"]));
    let slice = unhex(&v["slice"]);
    let (request, header, frame) = (
        unhex(&v["request_frame"]),
        unhex(&v["header_frame"]),
        unhex(&v["frame"]),
    );
    assert_eq!(spore_core::Hash::of(&module), hash);
    assert_eq!(module.len() as u64, size);
    let range = module[start as usize..(start + len) as usize].to_vec();

    let chunks = SliceFormat::Chunks;
    assert!(
        slice_of(&module, chunks, start, len) == slice,
        "the slice spore makes"
    );
    let verified = crate::verify::chunks::verify_slice(&hash, &slice, start, len, size);
    assert!(verified.unwrap() == range, "the range the slice proves");

    // The serving side answers the request with exactly these frames...
    let answer = [header.clone(), frame.clone()].concat();
    assert!(served(module.clone(), request.clone(), chunks).await == answer);

    // ...and the fetching side sends the request and takes the range from them.
    let mut stream = Scripted::new(answer);
    let asked = FetchRequest { hash, start, len };
    let taken = crate::fetch::request::exchange(&mut stream, asked, chunks)
        .await
        .unwrap();
    assert_eq!(stream.written, request);
    assert_eq!(taken.size, size);
    assert!(taken.bytes == range);

    // A flipped byte at either end of each part of the slice (header, tree node,
    // chunk) is refused, and by the fetching side as a hash mismatch.
    let layout = v["layout"].as_array().unwrap();
    assert_eq!(layout.len(), 11);
    let frame_head = frame.len() - slice.len();
    for part in layout {
        let (at, part_len) = (uint(&part["at"]) as usize, uint(&part["len"]) as usize);
        for position in [at, at + part_len - 1] {
            let mut bad = slice.clone();
            bad[position] ^= 1;
            let refused = crate::verify::chunks::verify_slice(&hash, &bad, start, len, size);
            assert!(refused.is_err(), "flip at {position} went unnoticed");

            let mut bad_frame = frame.clone();
            bad_frame[frame_head + position] ^= 0x80;
            let mut stream = Scripted::new([header.clone(), bad_frame].concat());
            let asked = FetchRequest { hash, start, len };
            assert!(
                matches!(
                    crate::fetch::request::exchange(&mut stream, asked, chunks).await,
                    Err(crate::FailureReason::HashMismatch(_))
                ),
                "flip at {position} of the frame went unnoticed"
            );
        }
    }
}

#[tokio::test]
async fn the_chunk_group_slice_and_its_fetch_exchange_are_those_of_the_spec() {
    let doc = doc();
    let v = &doc["fetch_group_slice"];
    let (size, start, len) = (uint(&v["size"]), uint(&v["start"]), uint(&v["len"]));
    // byte i = (7i + floor(i / 1000)) mod 256, as the vector says.
    let module: Vec<u8> = (0..size).map(|i| (i * 7 + i / 1000) as u8).collect();
    let hash = hash(&v["hash"]);
    assert_eq!(spore_core::Hash::of(&module), hash);
    let slice = unhex(&v["slice"]);
    let frame = [unhex(&v["frame_head"]), slice.clone()].concat();
    let range = module[start as usize..(start + len) as usize].to_vec();
    let groups = SliceFormat::Groups;
    assert!(
        slice_of(&module, groups, start, len) == slice,
        "the slice spore makes"
    );

    // The serving side answers with `{size}` and the slice's frame...
    let mut request = Vec::new();
    let asked = FetchRequest { hash, start, len };
    write_frame(&mut request, &asked, FETCH_REQUEST_FRAME_LIMIT)
        .await
        .unwrap();
    let mut header = Vec::new();
    let sized = FetchHeader {
        size: Some(size),
        error: None,
    };
    write_frame(&mut header, &sized, FETCH_HEADER_FRAME_LIMIT)
        .await
        .unwrap();
    let answer = [header.clone(), frame.clone()].concat();
    assert!(served(module.clone(), request.clone(), groups).await == answer);

    // ...and the fetching side takes the range from them.
    let mut stream = Scripted::new(answer);
    let taken = crate::fetch::request::exchange(&mut stream, asked.clone(), groups)
        .await
        .unwrap();
    assert_eq!(stream.written, request);
    assert!(taken.bytes == range);

    // A flipped byte at either end of each part (tree node, group) is refused.
    let layout = v["layout"].as_array().unwrap();
    assert_eq!(layout.len(), 4);
    let head = frame.len() - slice.len();
    for part in layout {
        let (at, part_len) = (uint(&part["at"]) as usize, uint(&part["len"]) as usize);
        for position in [at, at + part_len - 1] {
            let mut bad_frame = frame.clone();
            bad_frame[head + position] ^= 0x80;
            let mut stream = Scripted::new([header.clone(), bad_frame].concat());
            assert!(
                matches!(
                    crate::fetch::request::exchange(&mut stream, asked.clone(), groups).await,
                    Err(crate::FailureReason::HashMismatch(_))
                ),
                "flip at {position} of the slice went unnoticed"
            );
        }
    }
}

#[tokio::test]
async fn the_fetch_error_answer_is_that_of_the_spec() {
    let doc = doc();
    let v = &doc["fetch_error"];
    let hash = hash(&v["hash"]);
    let frame = unhex(&v["frame"]);

    let mut request = Vec::new();
    let asked = FetchRequest {
        hash,
        start: 0,
        len: 0,
    };
    write_frame(&mut request, &asked, FETCH_REQUEST_FRAME_LIMIT)
        .await
        .unwrap();
    for format in [SliceFormat::Groups, SliceFormat::Chunks] {
        assert!(served(b"another module".to_vec(), request.clone(), format).await == frame);
    }

    let read: FetchHeader = read_frame(&mut frame.as_slice(), FETCH_HEADER_FRAME_LIMIT)
        .await
        .unwrap();
    let error = read.error.expect("an error answer");
    assert_eq!(read.size, None);
    assert_eq!(error.kind.to_string(), text(&v["kind"]));
    assert_eq!(error.message, text(&v["message"]));
    let mut stream = Scripted::new(frame);
    assert!(matches!(
        crate::fetch::request::exchange(&mut stream, asked, SliceFormat::Groups).await,
        Err(crate::FailureReason::NotFound)
    ));
}

#[test]
fn the_gossip_announcement_and_its_message_id_are_those_of_the_spec() {
    use crate::discovery::Announcement;
    let doc = doc();
    let v = &doc["gossip_announcement"];
    let data = unhex(&v["data"]);
    let announcement = Announcement {
        hash: hash(&v["hash"]),
        peer: text(&v["peer"]),
    };
    assert_eq!(announcement.to_bytes(), data);
    assert_eq!(Announcement::from_bytes(&data), Some(announcement));
    assert_eq!(
        crate::behaviour::gossip_message_id(&data),
        libp2p::gossipsub::MessageId::new(&unhex(&v["message_id"]))
    );
}

#[test]
fn a_topic_message_is_that_of_the_spec() {
    let doc = doc();
    let v = &doc["topic_message"];
    let topic: spore_core::topic::Topic = text(&v["topic"]).parse().unwrap();
    assert_eq!(
        crate::topics::gossip_topic(&topic).to_string(),
        text(&v["gossipsub_topic"])
    );
    let id: [u8; 16] = unhex(&v["delivery_id"]).try_into().unwrap();
    let message = spore_core::value::from_json(&v["message_json"]).unwrap();
    let data = unhex(&v["data"]);
    assert_eq!(crate::topics::encode(&id, &message), data);
    assert_eq!(crate::topics::decode(&data), Some((id, message.clone())));
    assert_eq!(
        crate::behaviour::gossip_message_id(&data),
        libp2p::gossipsub::MessageId::new(&unhex(&v["message_id"]))
    );
    let received = crate::TopicMessage {
        topic,
        from: libp2p::PeerId::random(),
        id,
        message,
    };
    assert_eq!(received.delivery().id, text(&v["delivery_id"]));
}

#[test]
fn dht_keys_are_those_of_the_spec() {
    use crate::discovery::{ability_key, module_key};
    use libp2p::kad::KBucketKey;
    let doc = doc();
    let v = &doc["dht_keys"];
    let module = module_key(&hash(&v["module_hash"]));
    assert_eq!(module.to_vec(), unhex(&v["module_key"]));
    assert_eq!(
        KBucketKey::new(module).hashed_bytes(),
        unhex(&v["module_kademlia_point"])
    );
    let ability = ability_key(&text(&v["ability"]));
    assert_eq!(ability.to_vec(), unhex(&v["ability_key"]));
    assert_eq!(
        KBucketKey::new(ability).hashed_bytes(),
        unhex(&v["ability_kademlia_point"])
    );
}
