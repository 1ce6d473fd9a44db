//! The head of a CBOR data item (RFC 8949 §3): a major type and an argument, written
//! in its shortest form. Every CBOR writer in spore that does not go through
//! [`encode_canonical`](super::encode_canonical) uses [`write_head`].

/// The eight CBOR major types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Major {
    Unsigned = 0,
    Negative = 1,
    Bytes = 2,
    Text = 3,
    Array = 4,
    Map = 5,
    Tag = 6,
    /// Simple values and floats.
    Simple = 7,
}

impl Major {
    pub(super) fn of(initial_byte: u8) -> Major {
        match initial_byte >> 5 {
            0 => Major::Unsigned,
            1 => Major::Negative,
            2 => Major::Bytes,
            3 => Major::Text,
            4 => Major::Array,
            5 => Major::Map,
            6 => Major::Tag,
            _ => Major::Simple,
        }
    }
}

/// Appends the head of an item of type `major` with `argument` (a value, a length or a
/// tag number) in its shortest form, as canonical CBOR requires.
pub fn write_head(out: &mut Vec<u8>, major: Major, argument: u64) {
    let major = (major as u8) << 5;
    // Each arm holds exactly the arguments that fit its width, so the casts are exact.
    match argument {
        0..=23 => out.push(major | argument as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, argument as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(argument as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(argument as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&argument.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(major: Major, argument: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_head(&mut out, major, argument);
        out
    }

    #[test]
    fn every_width_at_its_boundaries() {
        assert_eq!(head(Major::Unsigned, 23), [0x17]);
        assert_eq!(head(Major::Unsigned, 24), [0x18, 24]);
        assert_eq!(head(Major::Bytes, 0xff), [0x58, 0xff]);
        assert_eq!(head(Major::Text, 0x100), [0x79, 0x01, 0x00]);
        assert_eq!(head(Major::Array, 0xffff), [0x99, 0xff, 0xff]);
        assert_eq!(head(Major::Map, 0x1_0000), [0xba, 0, 1, 0, 0]);
        assert_eq!(
            head(Major::Tag, 0xffff_ffff),
            [0xda, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            head(Major::Negative, 0x1_0000_0000),
            [0x3b, 0, 0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(
            head(Major::Negative, u64::MAX),
            [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }
}
