//! Filling a typed function's arguments from a request (`spec/http.md`, "Typed
//! functions"): each parameter by its name, from the path parameters, then the query,
//! then the fields of a JSON object body, converted as its kind says.

use ciborium::Value;
use spore_core::signature::{Kind, Param, Signature};

use super::request::Incoming;

/// Whether `signature` takes the request itself (one `request` parameter) rather than
/// arguments by name.
pub fn takes_request(signature: &Signature) -> bool {
    matches!(signature.params.as_slice(), [param] if param.kind() == Kind::Request)
}

/// The arguments of `signature` from `incoming`, or why they cannot be filled.
pub fn fill(signature: &Signature, incoming: &Incoming) -> Result<Vec<Value>, String> {
    let body = json_body(incoming)?;
    signature
        .params
        .iter()
        .map(|param| {
            if let Some(text) = incoming.params.get(&param.name).or(incoming.query.get(&param.name)) {
                return from_text(param, text);
            }
            match body.as_ref().and_then(|body| body.get(&param.name)) {
                Some(json) => spore_core::value::from_json(json)
                    .map_err(|e| format!("`{}` in the body: {e}", param.name)),
                None => Err(format!(
                    "`{}` ({}) is missing: give it as a path parameter, in the query or in a JSON object body",
                    param.name, param.ty
                )),
            }
        })
        .collect()
}

/// The body as a JSON object, when it is one; none when the body is empty.
fn json_body(
    incoming: &Incoming,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
    if incoming.body.is_empty() {
        return Ok(None);
    }
    match serde_json::from_slice::<serde_json::Value>(&incoming.body) {
        Ok(serde_json::Value::Object(fields)) => Ok(Some(fields)),
        Ok(_) => Err(
            "the body is JSON but not an object: its fields are the function's arguments".into(),
        ),
        Err(e) => Err(format!(
            "the body is not JSON ({e}): a typed function takes its arguments from a JSON object"
        )),
    }
}

/// A parameter's value from text (a path parameter or a query value).
fn from_text(param: &Param, text: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("`{}` is `{text}`, not {what} ({})", param.name, param.ty);
    Ok(match param.kind() {
        Kind::Int => {
            if let Ok(n) = text.parse::<i64>() {
                Value::Integer(n.into())
            } else {
                Value::Integer(text.parse::<u64>().map_err(|_| bad("an integer"))?.into())
            }
        }
        Kind::Float => Value::Float(
            text.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad("a number"))?,
        ),
        Kind::Bool => Value::Bool(match text {
            "true" => true,
            "false" => false,
            _ => return Err(bad("`true` or `false`")),
        }),
        Kind::Text => Value::Text(text.to_owned()),
        // Text that reads as JSON is that value (`[1,2]`, `{"a":1}`, `null`); else text.
        Kind::Any | Kind::Request => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(json) => spore_core::value::from_json(&json).map_err(|e| bad(&e.to_string()))?,
            Err(_) => Value::Text(text.to_owned()),
        },
    })
}
