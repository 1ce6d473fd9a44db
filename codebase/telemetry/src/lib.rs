//! Sensor readings collected through `call` and kept in `kv`, for the mesh demo: the
//! reader and the storer are function references passed in, so `collect` can read on
//! one node's sensors and store through another module, wherever they are published.

use spore_guest::{Value, call, function, kv};

/// Stores `value` under `key`.
#[function]
fn store(key: String, value: Value) -> Result<(), String> {
    kv::put(&key, &value).map_err(|error| format!("kv.put {key}: {error}"))
}

/// The value stored under `key`, or null.
#[function]
fn load(key: String) -> Result<Option<Value>, String> {
    kv::get(&key).map_err(|error| format!("kv.get {key}: {error}"))
}

/// Calls `reader` (such as `<sensors hash>:read`) with `(sensor_id)`, then `storer`
/// (such as `<telemetry hash>:store`) with `(key, reading)`, and returns the reading.
#[function]
fn collect(
    reader: String,
    storer: String,
    sensor_id: String,
    key: String,
) -> Result<Value, String> {
    let reading: Value =
        call(&reader, (&sensor_id,)).map_err(|error| format!("calling {reader}: {error}"))?;
    // Whatever the storer returns on success does not matter.
    let _: Value =
        call(&storer, (&key, &reading)).map_err(|error| format!("calling {storer}: {error}"))?;
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use spore_guest::ability::{AbilityError, kind};
    use spore_guest::testing::{MemoryKv, with_abilities};

    use super::*;

    #[test]
    fn store_and_load() {
        let mut memory = MemoryKv::default();
        with_abilities(
            move |_, operation, request| memory.call(operation, request),
            || {
                assert_eq!(load("t/1".into()), Ok(None));
                assert_eq!(store("t/1".into(), Value::from(21.5)), Ok(()));
                assert_eq!(load("t/1".into()), Ok(Some(Value::from(21.5))));
            },
        );
    }

    #[test]
    fn collect_reads_then_stores() {
        let reading = Value::Map(vec![(Value::from("value"), Value::from(21.5))]);
        let expected = reading.clone();
        let mut calls = Vec::new();
        let handler = move |_: &str, _: &str, request: Value| {
            let entries = request.into_map().unwrap();
            let function = entries[0].1.as_text().unwrap().to_owned();
            calls.push(function.clone());
            match (function.as_str(), calls.len()) {
                ("h:read", 1) => {
                    assert_eq!(entries[1].1, Value::Array(vec!["attic".into()]));
                    Ok(reading.clone())
                }
                ("h:store", 2) => {
                    assert_eq!(
                        entries[1].1,
                        Value::Array(vec!["t/1".into(), reading.clone()])
                    );
                    Ok(Value::Null)
                }
                _ => Err(AbilityError::new(kind::NOT_FOUND, function)),
            }
        };
        with_abilities(handler, || {
            let collected = collect(
                "h:read".into(),
                "h:store".into(),
                "attic".into(),
                "t/1".into(),
            );
            assert_eq!(collected, Ok(expected));
        });
    }
}
