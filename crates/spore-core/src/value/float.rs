//! Floats in canonical form (`spec/values.md`): the shortest of half, single and double
//! precision that holds the value exactly, and one encoding for every NaN. Half
//! precision has no Rust type, so its bits are converted by hand (RFC 8949 Appendix D).

/// The canonical encoding of every NaN: half precision, quiet, no payload, positive.
const NAN: [u8; 3] = [0xf9, 0x7e, 0x00];

/// Appends `value` in its canonical encoding.
pub(super) fn write_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(&NAN);
    } else if let Some(half) = to_half(value) {
        out.push(0xf9);
        out.extend_from_slice(&half.to_be_bytes());
    } else if f64::from(value as f32).to_bits() == value.to_bits() {
        out.push(0xfa);
        out.extend_from_slice(&(value as f32).to_bits().to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&value.to_bits().to_be_bytes());
    }
}

/// The value of half-precision `bits`.
pub(super) fn from_half(bits: u16) -> f64 {
    let fraction = f64::from(bits & 0x3ff);
    let magnitude = match (bits >> 10) & 0x1f {
        0 => fraction * power_of_two(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        exponent => (1024.0 + fraction) * power_of_two(i32::from(exponent) - 25),
    };
    if bits & 0x8000 == 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// The half-precision bits that hold `value` exactly, if any; `value` is not NaN.
fn to_half(value: f64) -> Option<u16> {
    let sign = if value.is_sign_negative() { 0x8000 } else { 0 };
    let magnitude = value.abs();
    if magnitude == 0.0 {
        return Some(sign);
    }
    if magnitude == f64::INFINITY {
        return Some(sign | 0x7c00);
    }
    if magnitude < power_of_two(-14) {
        // Subnormal halves are the multiples of 2^-24 below 2^-14; scaling by a power
        // of two is exact.
        let units = magnitude * power_of_two(24);
        return (units.fract() == 0.0).then_some(sign | units as u16);
    }
    if magnitude > 65504.0 {
        return None;
    }
    // A normal half: exponent in [-14, 15], 10 fraction bits of the double's 52.
    let bits = magnitude.to_bits();
    let exponent = (bits >> 52) as u16 + 15 - 1023;
    let fraction = bits & ((1 << 52) - 1);
    (fraction & ((1 << 42) - 1) == 0).then_some(sign | exponent << 10 | (fraction >> 42) as u16)
}

/// 2^exponent, for an exponent in the range of normal doubles.
fn power_of_two(exponent: i32) -> f64 {
    f64::from_bits(((exponent + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: f64) -> Vec<u8> {
        let mut out = Vec::new();
        write_float(&mut out, value);
        out
    }

    #[test]
    fn every_half_reads_back_to_its_own_bits() {
        for bits in 0..=u16::MAX {
            let value = from_half(bits);
            if value.is_nan() {
                assert_eq!((bits >> 10) & 0x1f, 31, "{bits:#06x}");
                assert_eq!(encoded(value), NAN);
            } else {
                assert_eq!(to_half(value), Some(bits), "{bits:#06x} is {value:e}");
            }
        }
    }

    #[test]
    fn known_halves() {
        assert_eq!(from_half(0x3c00), 1.0);
        assert_eq!(from_half(0x7bff), 65504.0);
        assert_eq!(from_half(0x0001), 5.960464477539063e-8);
        assert_eq!(from_half(0x0400), 6.103515625e-5);
        assert_eq!(from_half(0xc400), -4.0);
    }

    #[test]
    fn the_shortest_exact_width_is_chosen() {
        assert_eq!(encoded(0.0), [0xf9, 0x00, 0x00]);
        assert_eq!(encoded(-0.0), [0xf9, 0x80, 0x00]);
        assert_eq!(encoded(f64::INFINITY), [0xf9, 0x7c, 0x00]);
        assert_eq!(encoded(f64::NEG_INFINITY), [0xf9, 0xfc, 0x00]);
        assert_eq!(encoded(65504.0), [0xf9, 0x7b, 0xff]);
        assert_eq!(encoded(65505.0), [0xfa, 0x47, 0x7f, 0xe1, 0x00]);
        assert_eq!(encoded(100000.0), [0xfa, 0x47, 0xc3, 0x50, 0x00]);
        assert_eq!(encoded(f64::from(f32::MAX)), [0xfa, 0x7f, 0x7f, 0xff, 0xff]);
        assert_eq!(
            encoded(1.1),
            [0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]
        );
        // Below the smallest half subnormal, and between two of them.
        assert_eq!(encoded(2.0f64.powi(-25))[0], 0xfa);
        assert_eq!(encoded(1.5 * 2.0f64.powi(-24))[0], 0xfa);
    }

    #[test]
    fn every_nan_is_one_encoding() {
        for nan in [
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff8_0000_dead_beef),
            f64::from(f32::from_bits(0x7fc0_0001)),
        ] {
            assert_eq!(encoded(nan), NAN, "{:#x}", nan.to_bits());
        }
    }
}
