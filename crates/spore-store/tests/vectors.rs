//! `spec/vectors/home.json`: the records, name events and artifact files the
//! specification shows are the ones this code writes and accepts.

use serde_json::Value as Json;
use spore_core::{FunctionRef, Hash, value};
use spore_store::format::{artifact_checksum, compiler_id, open_record, seal_record};
use spore_store::{NameEntry, NameEvent};

fn vectors() -> Json {
    let path = format!(
        "{}/../../spec/vectors/home.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(field: &Json) -> Vec<u8> {
    let text = field.as_str().unwrap();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn sealed_records_match_the_vectors_and_open_only_where_they_were_sealed() {
    let doc = vectors();
    let records = doc["records"].as_array().unwrap();
    assert!(records.len() >= 5);
    for case in records {
        let table = case["table"].as_str().unwrap();
        let (key, value, record) = (hex(&case["key"]), hex(&case["value"]), hex(&case["record"]));
        assert_eq!(
            seal_record(table, &key, &value),
            record,
            "{}",
            case["about"]
        );
        assert_eq!(open_record(table, &key, &record), Ok(&value[..]));
        assert!(open_record("other", &key, &record).is_err());
        let mut moved = key.clone();
        moved.push(b'x');
        assert!(open_record(table, &moved, &record).is_err());
    }
}

#[test]
fn name_events_are_the_canonical_cbor_the_vectors_show() {
    for case in vectors()["name_events"].as_array().unwrap() {
        let event = match case["set"].as_str() {
            Some(reference) => NameEvent::Set(reference.parse::<FunctionRef>().unwrap()),
            None => NameEvent::Removed,
        };
        let entry = NameEntry {
            seq: case["seq"].as_u64().unwrap(),
            event,
            at_ms: case["at_ms"].as_u64().unwrap(),
        };
        let bytes = hex(&case["cbor"]);
        assert_eq!(value::to_canonical(&entry).unwrap(), bytes);
        assert_eq!(value::decode_as::<NameEntry>(&bytes).unwrap(), entry);
    }
}

#[test]
fn artifact_files_match_the_vectors() {
    for case in vectors()["artifacts"].as_array().unwrap() {
        let module = Hash::from_slice(&hex(&case["module"])).unwrap();
        let fingerprint = hex(&case["fingerprint"]);
        let id = compiler_id(&fingerprint);
        assert_eq!(id, case["compiler_id"].as_str().unwrap());
        assert_eq!(
            format!("{}.{id}", module.to_hex()),
            case["file_name"].as_str().unwrap()
        );
        let code = hex(&case["code"]);
        let mut file = artifact_checksum(&module, &id, &code).to_vec();
        file.extend_from_slice(&code);
        assert_eq!(file, hex(&case["file"]));
    }
}
