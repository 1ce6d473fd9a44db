//! Constants and buffer conventions of the guest ABI (`spec/abi.md`), shared by the
//! host runtime and the manifest inspector so that both read modules the same way.

/// The linear memory every buffer lives in.
pub const MEMORY: &str = "memory";
/// `(len: i32) -> i32`: the guest's allocator the host writes arguments through.
pub const ALLOC: &str = "spore_alloc";
/// `() -> i64`: the last panic message, readable after a trap.
pub const PANIC_MESSAGE: &str = "spore_panic_message";
/// Exports starting with this are the ABI's own, never spore functions.
pub const RESERVED_PREFIX: &str = "spore_";

/// What the first byte of a result buffer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The function returned a value.
    Ok = 0,
    /// The function returned an error value.
    Err = 1,
    /// The arguments did not fit the function; a text says why.
    BadArguments = 2,
}

/// Why a buffer the guest returned does not follow the ABI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    #[error("the function returned an empty result buffer")]
    Empty,
    #[error("the function returned unknown status byte {0:#04x}")]
    UnknownStatus(u8),
}

/// Packs a guest buffer into the `i64` the ABI passes: pointer high, length low.
pub fn pack(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// The inverse of [`pack`].
pub fn unpack(packed: i64) -> (u32, u32) {
    let bits = packed as u64;
    ((bits >> 32) as u32, bits as u32)
}

/// Splits a result buffer into its status and its CBOR payload.
pub fn split_output(buffer: &[u8]) -> Result<(Status, &[u8]), OutputError> {
    let (&status, payload) = buffer.split_first().ok_or(OutputError::Empty)?;
    let status = match status {
        0 => Status::Ok,
        1 => Status::Err,
        2 => Status::BadArguments,
        other => return Err(OutputError::UnknownStatus(other)),
    };
    Ok((status, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_the_full_range() {
        for (ptr, len) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x8000_0000, 7)] {
            assert_eq!(unpack(pack(ptr, len)), (ptr, len));
        }
    }

    #[test]
    fn output_status_is_checked() {
        assert_eq!(split_output(&[0, 0xf6]), Ok((Status::Ok, &[0xf6][..])));
        assert_eq!(
            split_output(&[2, 0x60]),
            Ok((Status::BadArguments, &[0x60][..]))
        );
        assert_eq!(split_output(&[]), Err(OutputError::Empty));
        assert_eq!(split_output(&[9]), Err(OutputError::UnknownStatus(9)));
    }
}
