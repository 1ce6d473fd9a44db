//! The record envelope (`spec/home.md`): every value in the index is sealed with a
//! checksum over the table it belongs to, its key and the value, so that a value that
//! was damaged, or that turns up under another key or in another table, is detected and
//! named. redb's own page checksums are verified only when the index is opened; this is
//! what every read checks.

/// The envelope's version byte.
pub const VERSION: u8 = 1;
/// The BLAKE3 key-derivation context of the checksum.
pub const CONTEXT: &str = "spore home record v1";
/// Bytes before the value: the version and the checksum.
pub const HEADER: usize = 1 + 32;

/// `value` sealed for `key` of `table`.
pub fn seal(table: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + value.len());
    record.push(VERSION);
    record.extend_from_slice(&checksum(table, key, value));
    record.extend_from_slice(value);
    record
}

/// The value of `record`, if it is intact and was sealed for `key` of `table`; else why not.
pub fn open<'r>(table: &str, key: &[u8], record: &'r [u8]) -> Result<&'r [u8], &'static str> {
    let Some((&version, rest)) = record.split_first() else {
        return Err("the record is empty");
    };
    if version != VERSION {
        return Err("the record has an unknown envelope version");
    }
    let Some((sum, value)) = rest.split_at_checked(32) else {
        return Err("the record is shorter than its envelope");
    };
    if sum != checksum(table, key, value) {
        return Err("the record does not match its checksum");
    }
    Ok(value)
}

/// How many bytes of value `record` carries, damaged or not (for quota accounting).
pub fn value_len(record: &[u8]) -> u64 {
    record.len().saturating_sub(HEADER) as u64
}

fn checksum(table: &str, key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    hasher.update(&(table.len() as u32).to_le_bytes());
    hasher.update(table.as_bytes());
    hasher.update(&(key.len() as u32).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_only_under_its_own_table_and_key() {
        let record = seal("names", b"math.add", b"value");
        assert_eq!(open("names", b"math.add", &record), Ok(&b"value"[..]));
        assert!(open("names", b"math.sub", &record).is_err());
        assert!(open("kv.default", b"math.add", &record).is_err());
        for at in 0..record.len() {
            let mut damaged = record.clone();
            damaged[at] ^= 0x01;
            assert!(
                open("names", b"math.add", &damaged).is_err(),
                "flip at {at}"
            );
        }
        assert!(open("names", b"math.add", &record[..HEADER - 1]).is_err());
        assert!(open("names", b"math.add", &[]).is_err());
    }
}
