//! The frames' encodings, and `spec/vectors/wire.json` byte for byte.
use super::*;

fn roundtrip<T: Serialize + DeserializeOwned>(value: &T) -> T {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap();
    ciborium::from_reader(bytes.as_slice()).unwrap()
}

fn as_cbor_value<T: Serialize>(value: &T) -> ciborium::Value {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap();
    ciborium::from_reader(bytes.as_slice()).unwrap()
}

fn key<'a>(map: &'a ciborium::Value, key: &str) -> Option<&'a ciborium::Value> {
    map.as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn ran_step() -> Path {
    let mut path = Path::new();
    path.push(spore_core::PathStep {
        node: "n".into(),
        step: "run".into(),
        micros: 7,
    });
    path
}

#[test]
fn invoke_response_is_ok_or_error_plus_path_on_the_wire() {
    let ok = InvokeResponse {
        result: Ok(Returned {
            value: vec![0x82, 1, 2],
            memo: MemoUse::Stored,
            effectful: false,
            stats: None,
        }),
        path: ran_step(),
        refused: false,
    };
    let value = as_cbor_value(&ok);
    let returned = key(&value, "ok").unwrap();
    assert_eq!(
        key(returned, "value").unwrap().as_bytes().unwrap(),
        &[0x82, 1, 2]
    );
    assert_eq!(key(returned, "memo").unwrap().as_text(), Some("stored"));
    assert!(key(returned, "stats").is_none());
    assert!(key(&value, "error").is_none());
    let path = key(&value, "path").unwrap();
    assert_eq!(key(path, "steps").unwrap().as_array().unwrap().len(), 1);
    assert_eq!(roundtrip(&ok), ok);

    let err = InvokeResponse::error(ErrorKind::Unbound, "no node serves `kv`");
    let value = as_cbor_value(&err);
    assert!(key(&value, "ok").is_none());
    let error = key(&value, "error").unwrap();
    assert_eq!(key(error, "kind").unwrap().as_text(), Some("unbound"));
    assert!(key(error, "value").is_none());
    assert_eq!(roundtrip(&err), err);
}

#[test]
fn invoke_response_with_neither_ok_nor_error_is_refused() {
    let mut bytes = Vec::new();
    ciborium::into_writer(
        &ciborium::Value::Map(vec![(
            "path".into(),
            ciborium::Value::serialized(&Path::new()).unwrap(),
        )]),
        &mut bytes,
    )
    .unwrap();
    assert!(ciborium::from_reader::<InvokeResponse, _>(bytes.as_slice()).is_err());
}

#[test]
fn a_refusal_says_so_on_the_wire_and_an_answer_that_returned_cannot() {
    let refused = InvokeResponse::refused(
        Failure::new(ErrorKind::NotAllowed, "not for this caller"),
        Path::new(),
    );
    let value = as_cbor_value(&refused);
    assert_eq!(key(&value, "refused"), Some(&ciborium::Value::Bool(true)));
    assert_eq!(roundtrip(&refused), refused);
    // Taken calls leave the key out, as nodes before it wrote them.
    let failed = InvokeResponse::error(ErrorKind::Failed, "it failed");
    assert!(key(&as_cbor_value(&failed), "refused").is_none());

    let mut returned_but_refused = as_cbor_value(&InvokeResponse::answered(
        Ok(Returned {
            value: vec![0xf6],
            memo: MemoUse::Skipped,
            effectful: false,
            stats: None,
        }),
        Path::new(),
    ));
    if let ciborium::Value::Map(entries) = &mut returned_but_refused {
        entries.push(("refused".into(), true.into()));
    }
    let mut bytes = Vec::new();
    ciborium::into_writer(&returned_but_refused, &mut bytes).unwrap();
    assert!(ciborium::from_reader::<InvokeResponse, _>(bytes.as_slice()).is_err());
}

#[test]
fn fetch_request_hash_is_32_bytes() {
    let request = FetchRequest {
        hash: spore_core::Hash::of(b"m"),
        start: 0,
        len: 1 << 20,
    };
    let value = as_cbor_value(&request);
    assert_eq!(key(&value, "hash").unwrap().as_bytes().unwrap().len(), 32);
}

#[tokio::test]
async fn slice_frames_are_the_cbor_map_and_any_encoding_of_it_is_read() {
    for len in [0, 1, 23, 24, 255, 256, 65_535, 65_536, 1 << 20] {
        let slice: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut by_hand = Vec::new();
        write_slice_frame(&mut by_hand, &slice).await.unwrap();
        let mut by_encoder = Vec::new();
        let message = FetchSlice {
            slice: slice.clone(),
        };
        write_frame(&mut by_encoder, &message, FETCH_SLICE_FRAME_LIMIT)
            .await
            .unwrap();
        assert!(by_hand == by_encoder, "len {len}: encodings differ");
        let frame = read_slice_frame(&mut by_hand.as_slice(), Vec::new())
            .await
            .unwrap();
        assert!(frame.slice() == slice, "len {len}");
    }

    // Not canonical (a second key), still a valid `{slice}` map.
    let value = ciborium::Value::Map(vec![
        ("slice".into(), ciborium::Value::Bytes(vec![1, 2, 3])),
        ("extra".into(), ciborium::Value::Bool(true)),
    ]);
    let mut frame = Vec::new();
    write_frame(&mut frame, &value, FETCH_SLICE_FRAME_LIMIT)
        .await
        .unwrap();
    let frame = read_slice_frame(&mut frame.as_slice(), vec![9; 3])
        .await
        .unwrap();
    assert_eq!(frame.slice(), &[1, 2, 3]);

    // A length that disagrees with the frame is not taken at its word.
    let mut lying = Vec::new();
    write_slice_frame(&mut lying, &[9; 40]).await.unwrap();
    lying.truncate(lying.len() - 1);
    let len = (lying.len() - 4) as u32;
    lying[..4].copy_from_slice(&len.to_be_bytes());
    assert!(
        read_slice_frame(&mut lying.as_slice(), Vec::new())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn frames_roundtrip_and_oversize_frames_are_refused_before_reading_them() {
    let slice = FetchSlice {
        slice: vec![7u8; 100_000],
    };
    let mut buf = Vec::new();
    write_frame(&mut buf, &slice, FETCH_SLICE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(
        u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize,
        buf.len() - 4
    );
    let back: FetchSlice = read_frame(&mut buf.as_slice(), FETCH_SLICE_FRAME_LIMIT)
        .await
        .unwrap();
    assert_eq!(back.slice, slice.slice);

    let mut huge = (u32::MAX).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 16]);
    let err = read_frame::<FetchSlice>(&mut huge.as_slice(), FETCH_SLICE_FRAME_LIMIT)
        .await
        .unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");

    let err = write_frame(&mut Vec::new(), &slice, 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
}

/// `spec/vectors/wire.json`: the frames the specification shows are the frames this
/// code writes, and it reads them back to the same messages.
mod vectors;
