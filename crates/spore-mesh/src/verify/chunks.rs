//! `/spore/fetch/1` slices: the `bao` crate's encoding, a leaf per 1 KiB chunk
//! (`spec/wire.md`, "The bao slice").
//!
//! bao's root hash is the plain BLAKE3 hash of the content (tested below), so a module's
//! spore hash is all a receiver needs to verify any range of it.

use std::io::{Cursor, Read};

use super::SliceError;

/// bao's outboard encoding of `bytes`: its size header and every parent node.
pub(crate) fn outboard(bytes: &[u8]) -> Vec<u8> {
    bao::encode::outboard(bytes).0
}

/// Appends the bao slice encoding of `[start, start + len)`, clipped to the module's
/// end, to `out`.
pub(crate) fn slice(bytes: &[u8], outboard: &[u8], start: u64, len: u64, out: &mut Vec<u8>) {
    let mut extractor = bao::encode::SliceExtractor::new_outboard(
        Cursor::new(bytes),
        Cursor::new(outboard),
        start,
        len,
    );
    // The content plus at most one 64-byte parent node per KiB and the header.
    out.reserve(len as usize + len as usize / 16 + 4096);
    extractor
        .read_to_end(out)
        .expect("extracting from in-memory buffers cannot fail");
}

/// Decodes `slice` (the bao slice of `[start, start + expected_len)` of a module of
/// `size` bytes) against `hash`, returning the range's bytes only if every one of them
/// is proven.
///
/// A slice whose range reaches `size` also proves `size`: bao hashes the final chunk
/// differently from the others and with its length, so the final chunk of a module of
/// another size does not verify. That holds only when the slice was decoded as a slice
/// of a `size`-byte module, that is when its header says `size`: an honest slice of a
/// longer module verifies just as well for any range inside it.
pub(crate) fn verify_slice(
    hash: &spore_core::Hash,
    slice: &[u8],
    start: u64,
    expected_len: u64,
    size: u64,
) -> Result<Vec<u8>, SliceError> {
    if let Some(header) = slice.first_chunk::<8>().map(|h| u64::from_le_bytes(*h))
        && header != size
    {
        return Err(SliceError::SizeDisagrees { header, size });
    }
    let root = bao::Hash::from_bytes(*hash.as_bytes());
    let mut decoder = bao::decode::SliceDecoder::new(slice, &root, start, expected_len);
    let mut bytes = Vec::with_capacity(expected_len as usize);
    decoder
        .read_to_end(&mut bytes)
        .map_err(|e| SliceError::BadProof(e.to_string()))?;
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

    /// A module and its outboard, sliced as a server does.
    struct Encoded {
        bytes: Vec<u8>,
        outboard: Vec<u8>,
    }

    impl Encoded {
        fn new(bytes: Vec<u8>) -> Self {
            let outboard = outboard(&bytes);
            Encoded { bytes, outboard }
        }

        fn size(&self) -> u64 {
            self.bytes.len() as u64
        }

        fn slice(&self, start: u64, len: u64) -> Vec<u8> {
            let mut out = Vec::new();
            slice(&self.bytes, &self.outboard, start, len, &mut out);
            out
        }
    }

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
            assembled.extend(verify_slice(&hash, &slice, start, len, encoded.size()).unwrap());
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
        // The first 8 bytes are the size header, which must be the announced size.
        for position in [0, 7, 8, 100, 5000, slice.len() / 2, slice.len() - 1] {
            let mut bad = slice.clone();
            bad[position] ^= 1;
            assert!(
                verify_slice(&hash, &bad, 1 << 20, 1 << 20, 3 << 20).is_err(),
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
            verify_slice(&hash, &slice, 1 << 20, 1 << 20, 2 << 20),
            Err(SliceError::BadProof(_))
        ));

        let honest = Encoded::new(bytes).slice(0, 1 << 20);
        assert!(verify_slice(&hash, &honest[..honest.len() - 10], 0, 1 << 20, 2 << 20).is_err());
    }

    #[test]
    fn the_final_slice_proves_the_module_size() {
        let bytes = blob((3 << 20) + 5000);
        let hash = spore_core::Hash::of(&bytes);
        let encoded = Encoded::new(bytes.clone());
        let start = 3u64 << 20;
        let slice = encoded.slice(start, 5000);
        let size = bytes.len() as u64;
        assert!(verify_slice(&hash, &slice, start, 5000, size).is_ok());

        // The same slice with its size header claiming another size never verifies,
        // though the header then agrees with the size announced.
        for claimed in [start + 4999, start + 5001, start + 6000, 4 << 20, 8 << 20] {
            let mut forged = slice.clone();
            forged[..8].copy_from_slice(&claimed.to_le_bytes());
            let expected = claimed.saturating_sub(start).min(1 << 20);
            assert!(
                matches!(
                    verify_slice(&hash, &forged, start, expected, claimed),
                    Err(SliceError::BadProof(_) | SliceError::WrongLength { .. })
                ),
                "claimed size {claimed} verified"
            );
        }
        // A slice built for a shorter module with the same prefix does not verify.
        let shorter = Encoded::new(bytes[..(3 << 20) + 4096].to_vec());
        let slice = shorter.slice(start, 4096);
        assert!(verify_slice(&hash, &slice, start, 4096, start + 4096).is_err());

        // An honest slice of the range up to a shorter size verifies as a range inside
        // the module; it proves that size only if its header says so, and it does not.
        for announced in [size - 1, start + 4096, start + 1] {
            let slice = encoded.slice(start, announced - start);
            assert!(
                matches!(
                    verify_slice(&hash, &slice, start, announced - start, announced),
                    Err(SliceError::SizeDisagrees { header, size: s })
                        if header == size && s == announced
                ),
                "announced size {announced} verified"
            );
        }
    }
}
