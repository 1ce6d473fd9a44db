//! `/spore/fetch/2` slices: the module's BLAKE3 tree cut at 16 KiB chunk groups, in the
//! encoding of the `bao-tree` crate (`spec/wire.md`, "The chunk-group slice").
//!
//! Why groups: with bao's 1 KiB leaves a receiver hashes every chunk by itself (one
//! BLAKE3 compression lane at a time) and reads a 64-byte parent node per KiB; a
//! 16 KiB group is hashed as one subtree, which BLAKE3 does 16 chunks abreast with SIMD,
//! and costs one parent node per 16 KiB. A bad byte is still caught within 16 KiB.

use bao_tree::io::outboard::PreOrderMemOutboard;
use bao_tree::io::sync::Outboard;
use bao_tree::iter::{BaoChunk, ResponseIterRef};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

use super::SliceError;

/// 2^4 chunks of 1 KiB: the leaves of the tree a `/spore/fetch/2` slice walks.
const GROUP_CHUNK_LOG: u8 = 4;
/// The bytes of a full chunk group.
pub(crate) const GROUP_BYTES: u64 = 1024 << GROUP_CHUNK_LOG;

fn block_size() -> BlockSize {
    BlockSize::from_chunk_log(GROUP_CHUNK_LOG)
}

/// The parent nodes of a module's group tree, in pre-order: computed once per module
/// served, then every slice of it only copies.
pub(crate) struct GroupOutboard(PreOrderMemOutboard);

impl GroupOutboard {
    pub fn new(bytes: &[u8]) -> Self {
        GroupOutboard(PreOrderMemOutboard::create(bytes, block_size()))
    }

    /// The parent nodes' bytes.
    pub fn len(&self) -> usize {
        self.0.data.len()
    }

    /// Appends the slice of `[start, start + len)` of `bytes` (the module this outboard
    /// was made from) to `out`.
    ///
    /// This is `bao_tree::io::sync::encode_ranges` with one copy instead of two: that
    /// reads each group into a buffer before writing it out (tested to agree below).
    pub fn slice(&self, bytes: &[u8], start: u64, len: u64, out: &mut Vec<u8>) {
        let ranges = group_ranges(bytes.len() as u64, start, len);
        out.reserve(len.min(bytes.len() as u64) as usize + GROUP_BYTES as usize);
        for item in ResponseIterRef::new(self.0.tree, &ranges) {
            match item {
                BaoChunk::Parent { node, .. } => {
                    let (left, right) = self
                        .0
                        .load(node)
                        .expect("an outboard in memory cannot fail to load")
                        .expect("a complete outboard holds every parent above the groups");
                    out.extend_from_slice(left.as_bytes());
                    out.extend_from_slice(right.as_bytes());
                }
                BaoChunk::Leaf {
                    start_chunk, size, ..
                } => {
                    let at = start_chunk.to_bytes() as usize;
                    out.extend_from_slice(&bytes[at..at + size]);
                }
            }
        }
    }
}

/// The chunks of the groups that hold a byte of `[start, start + len)` clipped to the
/// module's end, or the final group when `start` is at or past the end. Always whole
/// groups: a range inside a group would bring the group's inner parent nodes, which the
/// format does not have. The final group is asked open-ended so that it counts as
/// whole however few chunks it has.
fn group_ranges(size: u64, start: u64, len: u64) -> ChunkRanges {
    let groups = size.div_ceil(GROUP_BYTES).max(1);
    let (first, last) = if start >= size {
        (groups - 1, groups - 1)
    } else {
        let end = (start + len.max(1)).min(size);
        (start / GROUP_BYTES, (end - 1) / GROUP_BYTES)
    };
    let first_chunk = ChunkNum(first << GROUP_CHUNK_LOG);
    if last == groups - 1 {
        ChunkRanges::from(first_chunk..)
    } else {
        ChunkRanges::from(first_chunk..ChunkNum((last + 1) << GROUP_CHUNK_LOG))
    }
}

/// Verifies `slice`, the slice of `[start, start + len)` of the `size`-byte module
/// `hash`: every parent node and group in it against the chaining value its parent
/// promised, and that it holds exactly the groups of the range. Nothing is copied:
/// [`copy_range`] then takes the range's bytes out of the verified slice.
///
/// A slice whose range reaches `size` proves `size` as well: the final group's chaining
/// value depends on its length and the tree's shape on the size, so the final group of
/// a module of another size does not verify.
///
/// This is `bao_tree::io::sync::DecodeResponseIter` without its copies: that reads each
/// group into a buffer of its own before hashing it, and hands it out as a new
/// allocation; here a group is hashed where it lies in the slice.
pub(crate) fn verify(
    hash: &spore_core::Hash,
    slice: &[u8],
    size: u64,
    start: u64,
    len: u64,
) -> Result<(), SliceError> {
    // The chaining values promised for the nodes still to come, the next on top.
    let mut promised = vec![blake3::Hash::from_bytes(*hash.as_bytes())];
    walk(slice, size, start, len, |part| {
        let expected = promised
            .pop()
            .ok_or_else(|| bad("a node no parent promised"))?;
        match part {
            Part::Parent {
                pair,
                is_root,
                left,
                right,
            } => {
                let l: ChainingValue = pair[..32].try_into().expect("32 bytes");
                let r: ChainingValue = pair[32..].try_into().expect("32 bytes");
                let cv = if is_root {
                    merge_subtrees_root(&l, &r, Mode::Hash)
                } else {
                    merge_subtrees_non_root(&l, &r, Mode::Hash).into()
                };
                if cv != expected {
                    return Err(bad("a parent node is not the one promised"));
                }
                if right {
                    promised.push(r.into());
                }
                if left {
                    promised.push(l.into());
                }
            }
            Part::Group {
                offset,
                bytes,
                is_root,
            } => {
                let cv = if is_root {
                    blake3::hash(bytes)
                } else {
                    let mut hasher = blake3::Hasher::new();
                    hasher.set_input_offset(offset);
                    hasher.update(bytes);
                    hasher.finalize_non_root().into()
                };
                if cv != expected {
                    return Err(bad(format!(
                        "the group at byte {offset} is not the one promised"
                    )));
                }
            }
        }
        Ok(())
    })
}

/// Copies the bytes of `[start, start + out.len())` out of `slice`, a slice of that
/// range of a `size`-byte module that [`verify`] accepted.
pub(crate) fn copy_range(slice: &[u8], size: u64, start: u64, out: &mut [u8]) {
    let end = start + out.len() as u64;
    walk(slice, size, start, out.len() as u64, |part| {
        if let Part::Group { offset, bytes, .. } = part {
            // The part of the group inside the range.
            let from = offset.max(start);
            let to = (offset + bytes.len() as u64).min(end);
            if from < to {
                out[(from - start) as usize..(to - start) as usize]
                    .copy_from_slice(&bytes[(from - offset) as usize..(to - offset) as usize]);
            }
        }
        Ok(())
    })
    .expect("the slice was verified, so it has the range's layout");
}

/// [`verify`], then [`copy_range`].
#[cfg(test)]
pub(crate) fn verify_into(
    hash: &spore_core::Hash,
    slice: &[u8],
    size: u64,
    start: u64,
    out: &mut [u8],
) -> Result<(), SliceError> {
    verify(hash, slice, size, start, out.len() as u64)?;
    copy_range(slice, size, start, out);
    Ok(())
}

/// A part of a slice, in the order it comes.
enum Part<'a> {
    Parent {
        pair: &'a [u8; 64],
        is_root: bool,
        /// Whether the left and right subtrees come in the slice.
        left: bool,
        right: bool,
    },
    Group {
        offset: u64,
        bytes: &'a [u8],
        is_root: bool,
    },
}

/// Cuts `slice` into the parts the slice of `[start, start + len)` of a `size`-byte
/// module has, handing each to `visit`; fails if the slice is shorter or longer.
fn walk<'a>(
    slice: &'a [u8],
    size: u64,
    start: u64,
    len: u64,
    mut visit: impl FnMut(Part<'a>) -> Result<(), SliceError>,
) -> Result<(), SliceError> {
    let ranges = group_ranges(size, start, len);
    let mut rest = slice;
    for item in ResponseIterRef::new(BaoTree::new(size, block_size()), &ranges) {
        match item {
            BaoChunk::Parent {
                is_root,
                left,
                right,
                ..
            } => {
                let (pair, tail) = rest
                    .split_first_chunk::<64>()
                    .ok_or_else(|| bad("the slice ends inside a parent node"))?;
                rest = tail;
                visit(Part::Parent {
                    pair,
                    is_root,
                    left,
                    right,
                })?;
            }
            BaoChunk::Leaf {
                start_chunk,
                size: group_len,
                is_root,
                ..
            } => {
                let offset = start_chunk.to_bytes();
                let Some((bytes, tail)) = rest.split_at_checked(group_len) else {
                    return Err(bad(format!(
                        "the slice ends inside the group at byte {offset}"
                    )));
                };
                rest = tail;
                visit(Part::Group {
                    offset,
                    bytes,
                    is_root,
                })?;
            }
        }
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(SliceError::TrailingBytes(rest.len()))
    }
}

fn bad(why: impl Into<String>) -> SliceError {
    SliceError::BadProof(why.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    fn slice_of(bytes: &[u8], start: u64, len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        GroupOutboard::new(bytes).slice(bytes, start, len, &mut out);
        out
    }

    fn verify(
        hash: &spore_core::Hash,
        slice: &[u8],
        size: u64,
        start: u64,
        len: u64,
    ) -> Result<Vec<u8>, SliceError> {
        let mut out = vec![0; len as usize];
        verify_into(hash, slice, size, start, &mut out).map(|()| out)
    }

    #[test]
    fn the_group_tree_root_is_the_plain_blake3_hash() {
        for len in [0, 1, 1024, 16 * 1024, 16 * 1024 + 1, 70_000, (1 << 20) + 3] {
            let bytes = blob(len);
            assert_eq!(
                GroupOutboard::new(&bytes).0.root.as_bytes(),
                spore_core::Hash::of(&bytes).as_bytes(),
                "len {len}"
            );
        }
    }

    #[test]
    fn slices_of_any_ranges_verify_and_reassemble_the_module() {
        let bytes = blob((5 << 20) + 12345);
        let hash = spore_core::Hash::of(&bytes);
        let size = bytes.len() as u64;
        for range in [1u64 << 20, 16 * 1024, 5000, 3 << 20] {
            let mut assembled = Vec::new();
            let mut start = 0;
            while start < size {
                let len = range.min(size - start);
                let slice = slice_of(&bytes, start, len);
                assembled.extend(verify(&hash, &slice, size, start, len).unwrap());
                start += len;
            }
            assert!(assembled == bytes, "ranges of {range} bytes");
        }
    }

    #[test]
    fn a_slice_holds_whole_groups_and_one_parent_node_per_group() {
        // 70,000 bytes: four full groups and one of 4,464 bytes; the tree's root splits
        // them 4 + 1. The range [20000, 40000) lies in groups 1 and 2.
        let bytes = blob(70_000);
        let slice = slice_of(&bytes, 20_000, 20_000);
        // Parents of groups 0–4, 0–3, 0–1 and 2–3, then groups 1 and 2 whole.
        assert_eq!(slice.len(), 4 * 64 + 2 * 16384);
        // Pre-order: groups 0–4, 0–3, 0–1, group 1, then 2–3 and group 2.
        assert_eq!(&slice[3 * 64..3 * 64 + 16384], &bytes[16384..32768]);
    }

    #[test]
    fn the_slice_is_that_of_bao_tree_encode_ranges() {
        for size in [0usize, 1, 16384, 16385, 70_000, (1 << 20) + 3] {
            let bytes = blob(size);
            let outboard = GroupOutboard::new(&bytes);
            for (start, len) in [
                (0, 1),
                (0, 1 << 20),
                (20_000, 20_000),
                (16384, 16384),
                (size as u64, 5),
            ] {
                let mut theirs = Vec::new();
                let ranges = group_ranges(size as u64, start, len);
                bao_tree::io::sync::encode_ranges(&bytes[..], &outboard.0, &ranges, &mut theirs)
                    .unwrap();
                assert!(
                    slice_of(&bytes, start, len) == theirs,
                    "size {size}, range {start} + {len}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_in_a_slice_is_detected() {
        let bytes = blob(3 << 20);
        let hash = spore_core::Hash::of(&bytes);
        let slice = slice_of(&bytes, 1 << 20, 1 << 20);
        for position in [0, 63, 64, 100, 5000, slice.len() / 2, slice.len() - 1] {
            let mut bad = slice.clone();
            bad[position] ^= 1;
            assert!(
                verify(&hash, &bad, 3 << 20, 1 << 20, 1 << 20).is_err(),
                "flip at {position} went unnoticed"
            );
        }
    }

    #[test]
    fn a_slice_of_other_bytes_a_truncated_or_a_longer_slice_is_refused() {
        let bytes = blob(2 << 20);
        let hash = spore_core::Hash::of(&bytes);
        let mut other = bytes.clone();
        other[1_500_000] ^= 0xff;
        let lie = slice_of(&other, 1 << 20, 1 << 20);
        assert!(matches!(
            verify(&hash, &lie, 2 << 20, 1 << 20, 1 << 20),
            Err(SliceError::BadProof(_))
        ));
        let honest = slice_of(&bytes, 0, 1 << 20);
        assert!(verify(&hash, &honest[..honest.len() - 10], 2 << 20, 0, 1 << 20).is_err());
        let mut longer = honest.clone();
        longer.push(0);
        assert!(matches!(
            verify(&hash, &longer, 2 << 20, 0, 1 << 20),
            Err(SliceError::TrailingBytes(1))
        ));
    }

    #[test]
    fn the_final_slice_proves_the_module_size() {
        let bytes = blob((3 << 20) + 5000);
        let hash = spore_core::Hash::of(&bytes);
        let size = bytes.len() as u64;
        let start = 3u64 << 20;
        let slice = slice_of(&bytes, start, 5000);
        assert!(verify(&hash, &slice, size, start, 5000).is_ok());

        // The same slice taken as the final slice of a module of another size.
        for claimed in [
            size - 1,
            size + 1,
            start + 4096,
            start + 6000,
            4 << 20,
            8 << 20,
        ] {
            let expected = claimed.saturating_sub(start).min(1 << 20);
            assert!(
                verify(&hash, &slice, claimed, start, expected).is_err(),
                "claimed size {claimed} verified"
            );
        }
        // An honest final slice of a shorter module with the same prefix.
        let shorter = &bytes[..(3 << 20) + 4096];
        let slice = slice_of(shorter, start, 4096);
        assert!(verify(&hash, &slice, start + 4096, start, 4096).is_err());
        // An honest slice of a range inside the module does not prove a shorter size.
        for announced in [size - 1, start + 4096, start + 1] {
            let slice = slice_of(&bytes, start, announced - start);
            assert!(
                verify(&hash, &slice, announced, start, announced - start).is_err(),
                "announced size {announced} verified"
            );
        }
    }

    #[test]
    fn the_empty_module_and_a_range_past_the_end_give_the_final_group() {
        let empty: [u8; 0] = [];
        let hash = spore_core::Hash::of(&empty);
        let slice = slice_of(&empty, 0, 10);
        assert!(slice.is_empty());
        assert!(verify(&hash, &slice, 0, 0, 0).is_ok());

        let bytes = blob(40_000);
        let slice = slice_of(&bytes, 40_000, 100);
        // Three groups split 2 + 1: the root's parent node, then group 2 (7,232 bytes).
        assert_eq!(slice.len(), 64 + (40_000 - 32_768));
    }
}
