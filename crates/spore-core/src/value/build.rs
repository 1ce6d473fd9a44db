//! Builds the [`Value`] that a walk over well-formed bytes describes, with spore's
//! readings: `undefined` as null, bignums that fit as integers, duplicate keys refused.

use ciborium::Value;
use ciborium::value::Integer;

use super::ValueError;
use super::canonical::{self, Bignum};
use super::walk::{Container, Event};

/// What an open item has gathered so far.
enum Partial {
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    /// The entries so far, and a key waiting for its value.
    Map(Vec<(Value, Value)>, Option<Value>),
    Tag(u64),
}

#[derive(Default)]
pub(super) struct Builder {
    open: Vec<Partial>,
    done: Option<Value>,
    /// The first map found with a key twice. It is reported only once the walk is
    /// over: bytes that `check` refuses get `check`'s error, whatever maps they hold.
    duplicate: Option<ValueError>,
}

impl Builder {
    pub fn event(&mut self, event: Event<'_>) -> Result<(), ValueError> {
        let value = match event {
            Event::Integer(n) => Value::Integer(integer(n)),
            Event::Float(f) => Value::Float(f),
            Event::Bool(b) => Value::Bool(b),
            Event::Null => Value::Null,
            Event::Bytes(chunk) => match self.open.last_mut() {
                Some(Partial::Bytes(bytes)) => {
                    bytes.extend_from_slice(chunk);
                    return Ok(());
                }
                _ => Value::Bytes(chunk.to_vec()),
            },
            Event::Text(chunk) => match self.open.last_mut() {
                Some(Partial::Text(text)) => {
                    text.push_str(chunk);
                    return Ok(());
                }
                _ => Value::Text(chunk.to_owned()),
            },
            Event::Start(container) => {
                self.open.push(match container {
                    Container::Bytes => Partial::Bytes(Vec::new()),
                    Container::Text => Partial::Text(String::new()),
                    Container::Array => Partial::Array(Vec::new()),
                    Container::Map => Partial::Map(Vec::new(), None),
                });
                return Ok(());
            }
            Event::Tag(tag) => {
                self.open.push(Partial::Tag(tag));
                return Ok(());
            }
            Event::End => match self.open.pop() {
                Some(Partial::Bytes(bytes)) => Value::Bytes(bytes),
                Some(Partial::Text(text)) => Value::Text(text),
                Some(Partial::Array(items)) => Value::Array(items),
                Some(Partial::Map(entries, _)) => {
                    if self.duplicate.is_none() {
                        self.duplicate = refuse_duplicate_keys(&entries).err();
                    }
                    Value::Map(entries)
                }
                Some(Partial::Tag(_)) | None => unreachable!("the walk ends only what it starts"),
            },
        };
        self.complete(value);
        Ok(())
    }

    /// The value, once the walk is over; a duplicate key found on the way refuses it.
    pub fn finish(self) -> Result<Option<Value>, ValueError> {
        match self.duplicate {
            Some(duplicate) => Err(duplicate),
            None => Ok(self.done),
        }
    }

    /// Puts a finished item where it belongs: into the tags, array or map around it.
    fn complete(&mut self, mut value: Value) {
        loop {
            match self.open.last_mut() {
                Some(Partial::Tag(tag)) => {
                    let tag = *tag;
                    self.open.pop();
                    value = match canonical::bignum(tag, &value) {
                        Some(Bignum::Integer(n)) => Value::Integer(integer(n)),
                        Some(Bignum::Large(significant)) => {
                            Value::Tag(tag, Box::new(Value::Bytes(significant.to_vec())))
                        }
                        None => Value::Tag(tag, Box::new(value)),
                    };
                }
                Some(Partial::Array(items)) => {
                    items.push(value);
                    return;
                }
                Some(Partial::Map(entries, pending)) => {
                    match pending.take() {
                        None => *pending = Some(value),
                        Some(key) => entries.push((key, value)),
                    }
                    return;
                }
                Some(Partial::Bytes(_) | Partial::Text(_)) => {
                    unreachable!("the walk reports only chunks inside a string")
                }
                None => {
                    self.done = Some(value);
                    return;
                }
            }
        }
    }
}

fn integer(n: i128) -> Integer {
    Integer::try_from(n).expect("a CBOR integer or bignum that fits is within [-2^64, 2^64-1]")
}

/// Refuses a map whose keys repeat. Text keys (nearly every map) are compared as text;
/// other keys by their canonical encoding, which is what "the same key" means for them
/// (`spec/values.md`), at the cost of encoding each one.
fn refuse_duplicate_keys(entries: &[(Value, Value)]) -> Result<(), ValueError> {
    let texts: Option<Vec<&str>> = entries.iter().map(|(key, _)| key.as_text()).collect();
    let Some(mut texts) = texts else {
        canonical::sorted_entries(entries, 0)?;
        return Ok(());
    };
    texts.sort_unstable();
    match texts.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(ValueError::DuplicateKey {
            key: super::to_json(&Value::Text(pair[0].to_owned())).to_string(),
        }),
        None => Ok(()),
    }
}
