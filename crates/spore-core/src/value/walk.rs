//! One pass over the bytes of one CBOR data item, in order, without allocating:
//! well-formedness (RFC 8949 §3), spore's data model and the nesting limit
//! (`spec/values.md`). [`check`](super::check) only walks; [`decode`](super::decode)
//! builds a value from the events the walk reports.

use super::ValueError;
use super::float;
use super::head::Major;

/// How many arrays, maps and tags may nest in one another.
pub const MAX_DEPTH: usize = 128;

/// What the walk finds, in the order of the bytes.
#[derive(Debug)]
pub(super) enum Event<'a> {
    Integer(i128),
    Float(f64),
    Bool(bool),
    /// `null`, or `undefined`, which spore reads as null.
    Null,
    /// A definite-length byte string, or one chunk of an indefinite-length one.
    Bytes(&'a [u8]),
    /// A definite-length text string, or one chunk of an indefinite-length one.
    Text(&'a str),
    /// An array or map, whose items follow until its [`Event::End`] (a map's alternate
    /// key and value), or an indefinite-length string, whose chunks follow.
    Start(Container),
    End,
    /// A tag; the item it encloses follows.
    Tag(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    Bytes,
    Text,
    Array,
    Map,
}

/// Walks the one data item that `bytes` must hold, reporting each event to `sink`.
pub(super) fn walk<'a>(
    bytes: &'a [u8],
    sink: impl FnMut(Event<'a>) -> Result<(), ValueError>,
) -> Result<(), ValueError> {
    let mut walk = Walk { bytes, at: 0, sink };
    walk.item(0)?;
    if walk.at < bytes.len() {
        return Err(ValueError::TrailingBytes {
            offset: walk.at,
            count: bytes.len() - walk.at,
        });
    }
    Ok(())
}

struct Walk<'a, S> {
    bytes: &'a [u8],
    /// The offset of the next byte to read.
    at: usize,
    sink: S,
}

/// An item's head: its major type, its additional information (the low 5 bits of the
/// initial byte) and the argument that follows from it; `None` for information 31
/// (an indefinite length, or a break).
struct Head {
    offset: usize,
    major: Major,
    info: u8,
    argument: Option<u64>,
}

fn malformed(offset: usize, problem: &'static str) -> ValueError {
    ValueError::Malformed { offset, problem }
}

impl<'a, S: FnMut(Event<'a>) -> Result<(), ValueError>> Walk<'a, S> {
    fn emit(&mut self, event: Event<'a>) -> Result<(), ValueError> {
        (self.sink)(event)
    }

    fn head(&mut self) -> Result<Head, ValueError> {
        let offset = self.at;
        let initial = *self
            .bytes
            .get(offset)
            .ok_or(ValueError::Truncated { offset })?;
        let info = initial & 0x1f;
        let width = match info {
            0..=23 | 31 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => {
                return Err(malformed(
                    offset,
                    "additional information 28 to 30 is reserved",
                ));
            }
        };
        let following = self
            .bytes
            .get(offset + 1..offset + 1 + width)
            .ok_or(ValueError::Truncated { offset })?;
        let argument = match info {
            0..=23 => Some(u64::from(info)),
            31 => None,
            _ => Some(following.iter().fold(0, |n, &b| n << 8 | u64::from(b))),
        };
        self.at = offset + 1 + width;
        Ok(Head {
            offset,
            major: Major::of(initial),
            info,
            argument,
        })
    }

    /// The `len` bytes of the string whose head is at `offset`.
    fn take(&mut self, len: u64, offset: usize) -> Result<&'a [u8], ValueError> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.at.checked_add(len))
            .filter(|&end| end <= self.bytes.len())
            .ok_or(ValueError::Truncated { offset })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    /// Consumes a break if one is next.
    fn at_break(&mut self) -> Result<bool, ValueError> {
        match self.bytes.get(self.at) {
            None => Err(ValueError::Truncated { offset: self.at }),
            Some(0xff) => {
                self.at += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    /// Walks one item that `depth` arrays, maps and tags enclose.
    fn item(&mut self, depth: usize) -> Result<(), ValueError> {
        let head = self.head()?;
        let offset = head.offset;
        match (head.major, head.argument) {
            (Major::Unsigned, Some(n)) => self.emit(Event::Integer(i128::from(n))),
            (Major::Negative, Some(n)) => self.emit(Event::Integer(-1 - i128::from(n))),
            (Major::Bytes | Major::Text, Some(len)) => {
                let string = self.take(len, offset)?;
                self.string(head.major, string, offset)
            }
            (Major::Bytes | Major::Text, None) => self.chunked_string(head.major),
            (Major::Array, len) => {
                self.enter(depth, offset)?;
                self.emit(Event::Start(Container::Array))?;
                match len {
                    Some(n) => (0..n).try_for_each(|_| self.item(depth + 1))?,
                    None => {
                        while !self.at_break()? {
                            self.item(depth + 1)?;
                        }
                    }
                }
                self.emit(Event::End)
            }
            (Major::Map, len) => {
                self.enter(depth, offset)?;
                self.emit(Event::Start(Container::Map))?;
                match len {
                    Some(n) => (0..n).try_for_each(|_| {
                        self.item(depth + 1)?;
                        self.item(depth + 1)
                    })?,
                    None => {
                        while !self.at_break()? {
                            self.item(depth + 1)?;
                            // A break here, in place of the value, is refused by `item`.
                            self.item(depth + 1)?;
                        }
                    }
                }
                self.emit(Event::End)
            }
            (Major::Tag, Some(tag)) => {
                self.enter(depth, offset)?;
                let content = self.bytes.get(self.at).map(|&b| Major::of(b));
                if (tag == 2 || tag == 3) && content.is_some_and(|major| major != Major::Bytes) {
                    return Err(malformed(
                        offset,
                        "a bignum tag (2 or 3) must enclose a byte string",
                    ));
                }
                self.emit(Event::Tag(tag))?;
                self.item(depth + 1)
            }
            (Major::Unsigned | Major::Negative | Major::Tag, None) => Err(malformed(
                offset,
                "additional information 31 is only for strings, arrays, maps and break",
            )),
            (Major::Simple, argument) => self.simple(head.info, argument, offset),
        }
    }

    fn enter(&self, depth: usize, offset: usize) -> Result<(), ValueError> {
        if depth == MAX_DEPTH {
            return Err(ValueError::TooDeep {
                offset,
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn string(&mut self, major: Major, string: &'a [u8], offset: usize) -> Result<(), ValueError> {
        if major == Major::Bytes {
            return self.emit(Event::Bytes(string));
        }
        // RFC 8949 §3.2.3: each chunk is valid UTF-8 on its own.
        let text = std::str::from_utf8(string)
            .map_err(|_| malformed(offset, "a text string is not valid UTF-8"))?;
        self.emit(Event::Text(text))
    }

    fn chunked_string(&mut self, major: Major) -> Result<(), ValueError> {
        self.emit(Event::Start(if major == Major::Bytes {
            Container::Bytes
        } else {
            Container::Text
        }))?;
        while !self.at_break()? {
            let chunk = self.head()?;
            let Some(len) = chunk.argument.filter(|_| chunk.major == major) else {
                return Err(malformed(
                    chunk.offset,
                    "a chunk of an indefinite-length string must be a definite-length string of the same type",
                ));
            };
            let string = self.take(len, chunk.offset)?;
            self.string(major, string, chunk.offset)?;
        }
        self.emit(Event::End)
    }

    fn simple(&mut self, info: u8, argument: Option<u64>, offset: usize) -> Result<(), ValueError> {
        let Some(argument) = argument else {
            return Err(malformed(
                offset,
                "a break outside an indefinite-length item",
            ));
        };
        let event = match info {
            20 => Event::Bool(false),
            21 => Event::Bool(true),
            22 | 23 => Event::Null,
            // The argument is the value's bits, and `head` read exactly as many bytes.
            25 => Event::Float(float::from_half(argument as u16)),
            26 => Event::Float(f64::from(f32::from_bits(argument as u32))),
            27 => Event::Float(f64::from_bits(argument)),
            24 if argument < 32 => {
                return Err(malformed(
                    offset,
                    "a simple value below 32 must be in the initial byte",
                ));
            }
            _ => {
                return Err(ValueError::SimpleValue {
                    offset,
                    value: argument as u8,
                });
            }
        };
        self.emit(event)
    }
}
