//! `kv`: a key-value namespace in the node's sled database.

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
}

impl KvSettings {
    /// The namespace of a binding that names none.
    pub const DEFAULT_NAMESPACE: &str = "default";
    /// The largest value, when the binding sets none.
    pub const DEFAULT_MAX_VALUE_BYTES: u64 = 1 << 20;
}

impl Default for KvSettings {
    fn default() -> Self {
        KvSettings {
            namespace: Self::DEFAULT_NAMESPACE.into(),
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

const MAX_KEY_BYTES: usize = 1024;
const DEFAULT_LIST_LIMIT: u64 = 1000;
const MAX_LIST_LIMIT: u64 = 10_000;

pub struct KvProvider {
    space: KvSpace,
    settings: KvSettings,
}

impl KvProvider {
    pub fn new(codebase: &Codebase, settings: KvSettings) -> Result<KvProvider, StoreError> {
        Ok(KvProvider {
            space: codebase.kv_space(&settings.namespace)?,
            settings,
        })
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

fn storage(error: StoreError) -> AbilityError {
    AbilityError::new(ErrorKind::Failed, format!("kv storage: {error}"))
}

fn stored(bytes: Vec<u8>) -> Result<Value, AbilityError> {
    value::decode(&bytes).map_err(|e| {
        AbilityError::new(ErrorKind::Failed, format!("a stored value is damaged: {e}"))
    })
}

impl Provider for KvProvider {
    fn call(
        &self,
        _cx: &AbilityContext,
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
                self.space.put(key(&request)?, &bytes).map_err(storage)?;
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
                let swapped = self
                    .space
                    .compare_and_swap(key(&request)?, expected.as_deref(), new.as_deref())
                    .map_err(storage)?;
                Ok(Value::Bool(swapped))
            }
            other => Err(AbilityError::bad_request(format!(
                "kv has no operation `{other}`"
            ))),
        }
    }

    fn describe(&self) -> String {
        format!(
            "sled key-value store, namespace `{}`, values up to {} bytes",
            self.settings.namespace, self.settings.max_value_bytes
        )
    }
}
