//! Readings of the custom `sensor` ability, served for example by the provider process
//! in `examples/sensor-provider`. The ability has one operation, `read`: the request is
//! the sensor's id as text, the response a map `{id, value, unit}`.

use serde::{Deserialize, Serialize};
use spore_guest::{function, log};

spore_guest::ability!(
    /// The custom `sensor` ability.
    sensor {
        /// Reads a sensor: the request is its id, the response a [`Reading`](super::Reading).
        read,
    }
);

/// One reading of a sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub id: String,
    pub value: f64,
    pub unit: String,
}

/// Reads sensor `id`.
#[function]
fn read(id: String) -> Result<Reading, String> {
    sensor::read(&id).map_err(|error| format!("sensor.read {id}: {error}"))
}

/// Reads sensor `id`, writes the reading to the node's log and returns its value.
#[function]
fn log_reading(id: String) -> Result<f64, String> {
    let reading = read(id)?;
    log::info(&describe(&reading));
    Ok(reading.value)
}

fn describe(reading: &Reading) -> String {
    format!("sensor {}: {} {}", reading.id, reading.value, reading.unit)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use spore_guest::Value;
    use spore_guest::ability::{AbilityError, kind};
    use spore_guest::testing::with_abilities;

    use super::*;

    #[test]
    fn reads_and_logs() {
        let logged = Rc::new(RefCell::new(Vec::new()));
        let lines = Rc::clone(&logged);
        let handler = move |ability: &str, operation: &str, request: Value| match ability {
            "sensor" if request.as_text() == Some("attic") => Ok(Value::Map(vec![
                (Value::from("id"), Value::from("attic")),
                (Value::from("value"), Value::from(21.5)),
                (Value::from("unit"), Value::from("°C")),
            ])),
            "sensor" => Err(AbilityError::new(kind::NOT_FOUND, "no such sensor")),
            _ => {
                lines.borrow_mut().push((operation.to_owned(), request));
                Ok(Value::Null)
            }
        };
        with_abilities(handler, || {
            assert_eq!(log_reading("attic".into()), Ok(21.5));
            assert_eq!(
                read("cellar".into()),
                Err("sensor.read cellar: not_found: no such sensor".into())
            );
        });
        assert_eq!(
            logged.take(),
            [("info".to_owned(), Value::from("sensor attic: 21.5 °C"))]
        );
    }
}
