//! bao verified slices: how a range of a module travels with the proof that it belongs
//! to the module hash.
//!
//! bao's root hash is the plain BLAKE3 hash of the content (tested below), so a module's
//! spore hash is all a receiver needs to verify any range of it.

use std::io::{Cursor, Read};

/// A module ready to be served: its bytes and their bao outboard tree.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub outboard: Vec<u8>,
}

impl Encoded {
    /// Hashes the whole module once; serving ranges afterwards only copies.
    pub fn new(bytes: Vec<u8>) -> Self {
        let (outboard, _root) = bao::encode::outboard(&bytes);
        Encoded { bytes, outboard }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The bao slice encoding of `[start, start + len)`, clipped to the module's end.
    pub fn slice(&self, start: u64, len: u64) -> Vec<u8> {
        let mut extractor = bao::encode::SliceExtractor::new_outboard(
            Cursor::new(&self.bytes[..]),
            Cursor::new(&self.outboard[..]),
            start,
            len,
        );
        // The content plus at most one 64-byte parent node per KiB and the header.
        let mut slice = Vec::with_capacity(len as usize + len as usize / 16 + 4096);
        extractor
            .read_to_end(&mut slice)
            .expect("extracting from in-memory buffers cannot fail");
        slice
    }
}

/// Why a slice was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SliceError {
    #[error("bao proof does not verify against the hash: {0}")]
    BadProof(std::io::Error),
    #[error("slice holds {got} bytes of content, expected {expected}")]
    WrongLength { got: usize, expected: usize },
}

/// Decodes `slice` (the bao slice of `[start, start + expected_len)`) against `hash`,
/// returning the range's bytes only if every one of them is proven.
///
/// A slice that reaches the module's end also proves the module's size: bao hashes the
/// final chunk differently, so a slice built for a wrong size does not verify.
pub(crate) fn verify_slice(
    hash: &spore_core::Hash,
    slice: &[u8],
    start: u64,
    expected_len: u64,
) -> Result<Vec<u8>, SliceError> {
    let root = bao::Hash::from_bytes(*hash.as_bytes());
    let mut decoder = bao::decode::SliceDecoder::new(slice, &root, start, expected_len);
    let mut bytes = Vec::with_capacity(expected_len as usize);
    decoder
        .read_to_end(&mut bytes)
        .map_err(SliceError::BadProof)?;
    if bytes.len() as u64 != expected_len {
        return Err(SliceError::WrongLength {
            got: bytes.len(),
            expected: expected_len as usize,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    #[test]
    fn bao_root_is_the_plain_blake3_hash() {
        for len in [0, 1, 1024, 1025, 16 * 1024, (1 << 20) + 3, 3 << 20] {
            let bytes = blob(len);
            let (_, root) = bao::encode::outboard(&bytes);
            assert_eq!(
                root.as_bytes(),
                spore_core::Hash::of(&bytes).as_bytes(),
                "len {len}"
            );
        }
    }

    #[test]
    fn slices_verify_and_reassemble_the_module() {
        let bytes = blob((5 << 20) + 12345);
        let hash = spore_core::Hash::of(&bytes);
        let encoded = Encoded::new(bytes.clone());
        let range = 1u64 << 20;
        let mut assembled = Vec::new();
        let mut start = 0;
        while start < encoded.size() {
            let len = range.min(encoded.size() - start);
            let slice = encoded.slice(start, len);
            assembled.extend(verify_slice(&hash, &slice, start, len).unwrap());
            start += len;
        }
        assert_eq!(assembled, bytes);
    }

    #[test]
    fn a_flipped_byte_anywhere_in_a_slice_is_detected() {
        let bytes = blob(3 << 20);
        let hash = spore_core::Hash::of(&bytes);
        let encoded = Encoded::new(bytes.clone());
        let slice = encoded.slice(1 << 20, 1 << 20);
        // The first 8 bytes are the length header. A range short of the module's end
        // does not prove the length (the final slice does, tested below), but a wrong
        // header never makes it accept wrong content.
        let mut bad_header = slice.clone();
        bad_header[0] ^= 1;
        if let Ok(content) = verify_slice(&hash, &bad_header, 1 << 20, 1 << 20) {
            assert_eq!(content, bytes[1 << 20..2 << 20]);
        }
        for position in [8, 100, 5000, slice.len() / 2, slice.len() - 1] {
            let mut bad = slice.clone();
            bad[position] ^= 1;
            assert!(
                verify_slice(&hash, &bad, 1 << 20, 1 << 20).is_err(),
                "flip at {position} went unnoticed"
            );
        }
    }

    #[test]
    fn a_slice_of_other_bytes_or_a_truncated_slice_is_refused() {
        let bytes = blob(2 << 20);
        let hash = spore_core::Hash::of(&bytes);
        let mut other = bytes.clone();
        other[1_500_000] ^= 0xff;
        let liar = Encoded::new(other);
        let slice = liar.slice(1 << 20, 1 << 20);
        assert!(matches!(
            verify_slice(&hash, &slice, 1 << 20, 1 << 20),
            Err(SliceError::BadProof(_))
        ));

        let honest = Encoded::new(bytes).slice(0, 1 << 20);
        assert!(verify_slice(&hash, &honest[..honest.len() - 10], 0, 1 << 20).is_err());
    }

    #[test]
    fn the_final_slice_proves_the_module_size() {
        let bytes = blob((3 << 20) + 5000);
        let hash = spore_core::Hash::of(&bytes);
        let encoded = Encoded::new(bytes.clone());
        let start = 3u64 << 20;
        let slice = encoded.slice(start, 5000);
        assert!(verify_slice(&hash, &slice, start, 5000).is_ok());

        // The same slice with its length header claiming another size never verifies.
        for claimed in [start + 4999, start + 5001, start + 6000, 4 << 20, 8 << 20] {
            let mut forged = slice.clone();
            forged[..8].copy_from_slice(&claimed.to_le_bytes());
            let expected = claimed.saturating_sub(start).min(1 << 20);
            assert!(
                verify_slice(&hash, &forged, start, expected).is_err(),
                "claimed size {claimed} verified"
            );
        }
        // A slice built for a shorter module with the same prefix does not verify.
        let shorter = Encoded::new(bytes[..(3 << 20) + 4096].to_vec());
        let slice = shorter.slice(start, 4096);
        assert!(verify_slice(&hash, &slice, start, 4096).is_err());
    }
}
