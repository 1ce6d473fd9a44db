//! Verified slices: how a range of a module travels with the proof that it belongs to
//! the module hash. Both encodings walk BLAKE3's own tree, whose root is the module's
//! spore hash, so the hash is all a receiver needs to verify any range:
//!
//! - [`chunks`]: `/spore/fetch/1`, the `bao` crate's slices, a leaf per 1 KiB chunk;
//! - [`groups`]: `/spore/fetch/2`, the `bao-tree` crate's, a leaf per 16 KiB group.
//!
//! This module knows nothing of streams or peers.

pub(crate) mod chunks;
pub(crate) mod groups;

use std::sync::OnceLock;

/// A module being served: its bytes, and each encoding's tree once a peer has asked
/// for a slice in it (a node serving only new peers never builds the old tree).
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    chunk_outboard: OnceLock<Vec<u8>>,
    group_outboard: OnceLock<groups::GroupOutboard>,
}

/// Which slice encoding a peer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceFormat {
    /// `/spore/fetch/1`
    Chunks,
    /// `/spore/fetch/2`
    Groups,
}

impl Encoded {
    pub fn new(bytes: Vec<u8>) -> Self {
        Encoded {
            bytes,
            chunk_outboard: OnceLock::new(),
            group_outboard: OnceLock::new(),
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Builds the tree of `format` if it is not built yet: a full pass of hashing over
    /// the module, so callers on an async runtime run it on a blocking thread.
    pub fn prepare(&self, format: SliceFormat) {
        match format {
            SliceFormat::Chunks => {
                self.chunk_outboard
                    .get_or_init(|| chunks::outboard(&self.bytes));
            }
            SliceFormat::Groups => {
                self.group_outboard
                    .get_or_init(|| groups::GroupOutboard::new(&self.bytes));
            }
        }
    }

    pub fn is_prepared(&self, format: SliceFormat) -> bool {
        match format {
            SliceFormat::Chunks => self.chunk_outboard.get().is_some(),
            SliceFormat::Groups => self.group_outboard.get().is_some(),
        }
    }

    /// Appends the slice of `[start, start + len)`, clipped to the module's end, in
    /// `format` to `out`.
    pub fn slice(&self, format: SliceFormat, start: u64, len: u64, out: &mut Vec<u8>) {
        self.prepare(format);
        match format {
            SliceFormat::Chunks => {
                let outboard = self.chunk_outboard.get().expect("prepared above");
                chunks::slice(&self.bytes, outboard, start, len, out)
            }
            SliceFormat::Groups => {
                let outboard = self.group_outboard.get().expect("prepared above");
                outboard.slice(&self.bytes, start, len, out)
            }
        }
    }

    /// The bytes the trees of this module hold besides the module itself.
    pub fn outboard_len(&self) -> usize {
        self.chunk_outboard.get().map_or(0, Vec::len)
            + self
                .group_outboard
                .get()
                .map_or(0, groups::GroupOutboard::len)
    }
}

/// Why a slice was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SliceError {
    #[error("the proof does not verify against the hash: {0}")]
    BadProof(String),
    #[error("slice holds {got} bytes of content, expected {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("slice is of a module of {header} bytes, but the provider announced {size}")]
    SizeDisagrees { header: u64, size: u64 },
    #[error("slice has {0} bytes after its last group")]
    TrailingBytes(usize),
}
