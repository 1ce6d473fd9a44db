//! `kv`: a key-value namespace in the node's codebase.
//!
//! What a binding may store is bounded three ways: each value (`max_value_bytes`), what
//! the namespace holds in all (`max_namespace_bytes`, enforced by the store, which keeps
//! the old value of a write it refuses), and what one call may write
//! (`max_call_bytes`, counted here per invocation), so that a guest in a loop cannot
//! fill the disk in one call or across many.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use ciborium::Value;
use spore_core::value;
use spore_runtime::{AbilityContext, AbilityError, ErrorKind, Provider, field, text_field};
use spore_store::{Codebase, KvSpace, StoreError};

/// Settings of one `kv` binding.
#[derive(Debug, Clone)]
pub struct KvSettings {
    pub namespace: String,
    /// The largest value accepted, as encoded canonical CBOR.
    pub max_value_bytes: u64,
    /// The most bytes (keys plus values) the namespace may hold.
    pub max_namespace_bytes: u64,
    /// The most bytes (keys plus values) one call may write.
    pub max_call_bytes: u64,
}

impl KvSettings {
    /// The namespace of a binding that names none.
    pub const DEFAULT_NAMESPACE: &str = "default";
    /// The largest value, when the binding sets none.
    pub const DEFAULT_MAX_VALUE_BYTES: u64 = 1 << 20;
    /// What a namespace may hold, when the configuration sets nothing.
    pub const DEFAULT_MAX_NAMESPACE_BYTES: u64 = 256 << 20;
    /// What one call may write, when the configuration sets nothing.
    pub const DEFAULT_MAX_CALL_BYTES: u64 = 16 << 20;
}

impl Default for KvSettings {
    fn default() -> Self {
        KvSettings {
            namespace: Self::DEFAULT_NAMESPACE.into(),
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
            max_namespace_bytes: Self::DEFAULT_MAX_NAMESPACE_BYTES,
            max_call_bytes: Self::DEFAULT_MAX_CALL_BYTES,
        }
    }
}

const MAX_KEY_BYTES: usize = 1024;
const DEFAULT_LIST_LIMIT: u64 = 1000;
const MAX_LIST_LIMIT: u64 = 10_000;

/// Calls whose running count of bytes written is kept before the finished ones are
/// forgotten.
const CALLS_REMEMBERED: usize = 1024;

pub struct KvProvider {
    space: KvSpace,
    settings: KvSettings,
    /// Bytes written so far by each call (by invocation), with the call's deadline, after
    /// which its count is dropped.
    written: Mutex<HashMap<u64, (Instant, u64)>>,
}

impl KvProvider {
    pub fn new(codebase: &Codebase, settings: KvSettings) -> Result<KvProvider, StoreError> {
        Ok(KvProvider {
            space: codebase
                .kv_space(&settings.namespace)?
                .with_quota(settings.max_namespace_bytes),
            settings,
            written: Mutex::default(),
        })
    }

    /// Refuses a write of `bytes` that would take the call past `max_call_bytes`.
    fn check_budget(&self, cx: &AbilityContext, bytes: u64) -> Result<(), AbilityError> {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let so_far = written.get(&cx.invocation).map_or(0, |(_, n)| *n);
        if so_far + bytes > self.settings.max_call_bytes {
            return Err(AbilityError::new(
                ErrorKind::TooLarge,
                format!(
                    "this call has written {so_far} bytes through kv and this write is {bytes} more; a call may write at most {} (limits.kv.max_call_bytes)",
                    self.settings.max_call_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Counts `bytes` written by the call.
    fn spend(&self, cx: &AbilityContext, bytes: u64) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.len() >= CALLS_REMEMBERED {
            // A call ends by its deadline, so counts past theirs are of finished calls.
            let now = Instant::now();
            written.retain(|_, (deadline, _)| *deadline > now);
        }
        written.entry(cx.invocation).or_insert((cx.deadline, 0)).1 += bytes;
    }

    fn encode(&self, value: &Value) -> Result<Vec<u8>, AbilityError> {
        let bytes =
            value::encode_canonical(value).map_err(|e| AbilityError::bad_request(e.to_string()))?;
        if bytes.len() as u64 > self.settings.max_value_bytes {
            return Err(AbilityError::new(
                ErrorKind::TooLarge,
                format!(
                    "the value is {} bytes; this kv binding (namespace `{}`) accepts at most {} (max_value_bytes)",
                    bytes.len(),
                    self.settings.namespace,
                    self.settings.max_value_bytes
                ),
            ));
        }
        Ok(bytes)
    }

    /// A value absent from the request, or null, means "no value" in `cas`.
    fn optional(&self, request: &Value, key: &str) -> Result<Option<Vec<u8>>, AbilityError> {
        match field(request, key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => self.encode(value).map(Some),
        }
    }
}

fn key(request: &Value) -> Result<&str, AbilityError> {
    let key = text_field(request, "key")?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(AbilityError::bad_request(format!(
            "kv keys are 1 to {MAX_KEY_BYTES} bytes of text"
        )));
    }
    Ok(key)
}

/// A store failure as the guest sees it: a quota is `quota`, damage `corrupt`, and
/// anything else the provider's own `failed`.
fn storage(error: StoreError) -> AbilityError {
    let kind = match error.kind() {
        kind @ (ErrorKind::Quota | ErrorKind::TooLarge | ErrorKind::Corrupt) => kind,
        _ => ErrorKind::Failed,
    };
    AbilityError::new(kind, format!("kv storage: {error}"))
}

fn stored(bytes: Vec<u8>) -> Result<Value, AbilityError> {
    value::decode(&bytes).map_err(|e| {
        AbilityError::new(ErrorKind::Failed, format!("a stored value is damaged: {e}"))
    })
}

impl Provider for KvProvider {
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        match operation {
            "get" => match self.space.get(key(&request)?).map_err(storage)? {
                Some(bytes) => stored(bytes),
                None => Ok(Value::Null),
            },
            "put" => {
                let value = field(&request, "value")
                    .ok_or_else(|| AbilityError::bad_request("kv.put needs a `value`"))?;
                let bytes = self.encode(value)?;
                let key = key(&request)?;
                let size = (key.len() + bytes.len()) as u64;
                self.check_budget(cx, size)?;
                self.space.put(key, &bytes).map_err(storage)?;
                self.spend(cx, size);
                Ok(Value::Null)
            }
            "delete" => Ok(Value::Bool(
                self.space.delete(key(&request)?).map_err(storage)?,
            )),
            "list" => {
                let prefix = field(&request, "prefix")
                    .and_then(Value::as_text)
                    .unwrap_or("");
                let limit = match field(&request, "limit") {
                    None | Some(Value::Null) => DEFAULT_LIST_LIMIT,
                    Some(limit) => limit
                        .as_integer()
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                        .ok_or_else(|| {
                            AbilityError::bad_request(format!(
                                "kv.list limit is 1 to {MAX_LIST_LIMIT}"
                            ))
                        })?,
                };
                let keys = self.space.list(prefix, limit as usize).map_err(storage)?;
                Ok(Value::Array(keys.into_iter().map(Value::Text).collect()))
            }
            "cas" => {
                let expected = self.optional(&request, "expected")?;
                let new = self.optional(&request, "new")?;
                let key = key(&request)?;
                let size = new.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
                self.check_budget(cx, size)?;
                let swapped = self
                    .space
                    .compare_and_swap(key, expected.as_deref(), new.as_deref())
                    .map_err(storage)?;
                if swapped {
                    self.spend(cx, size);
                }
                Ok(Value::Bool(swapped))
            }
            other => Err(AbilityError::bad_request(format!(
                "kv has no operation `{other}`"
            ))),
        }
    }

    fn describe(&self) -> String {
        format!(
            "key-value store, namespace `{}`, values up to {} bytes, {} per namespace, {} written per call",
            self.settings.namespace,
            self.settings.max_value_bytes,
            self.settings.max_namespace_bytes,
            self.settings.max_call_bytes
        )
    }
}
