//! The serving side of `/spore/fetch/2` and `/1`: answers a peer's request for a range
//! of a module this node holds with the module's size and the range's verified slice.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::OnceCell;
use tokio::time::timeout;
use tracing::debug;

use crate::MeshHost;
use crate::verify::{Encoded, SliceFormat};
use crate::wire::{
    FETCH_HEADER_FRAME_LIMIT, FETCH_REQUEST_FRAME_LIMIT, FetchHeader, FetchRequest, FrameError,
    MAX_RANGE_LEN, read_frame, write_frame, write_slice_frame,
};
use spore_core::{ErrorKind, Failure};

/// How long a serving node waits for a request, then for the peer to take the answer.
const SERVE_READ_TIMEOUT: Duration = Duration::from_secs(10);
const SERVE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Modules recently served, with their trees: a fetch asks for every range of a module
/// in a burst, and hashing the module once per range would cost a full pass over it
/// each time. A few entries are enough for the modules being fetched now.
pub(crate) struct ServeCache {
    entries: Mutex<VecDeque<(spore_core::Hash, Arc<Slot>)>>,
}

type Slot = OnceCell<Option<Arc<Encoded>>>;

const CACHE_ENTRIES: usize = 8;
const CACHE_BYTES: usize = 256 << 20;

impl ServeCache {
    pub fn new() -> Self {
        ServeCache {
            entries: Mutex::new(VecDeque::new()),
        }
    }

    async fn get(&self, hash: spore_core::Hash, host: &Arc<dyn MeshHost>) -> Option<Arc<Encoded>> {
        let slot = self.slot(hash);
        let encoded = slot
            .get_or_init(|| {
                let host = host.clone();
                async move {
                    // The host promises verified bytes; receivers verify every slice
                    // anyway, so bytes that break the promise hurt no one but us.
                    tokio::task::spawn_blocking(move || {
                        host.module_bytes(&hash).map(|b| Arc::new(Encoded::new(b)))
                    })
                    .await
                    .ok()
                    .flatten()
                }
            })
            .await
            .clone();
        let mut entries = self.entries.lock().expect("cache lock");
        if encoded.is_none() {
            // Absence is not cached: the node may store the module a moment later.
            entries.retain(|(_, s)| !Arc::ptr_eq(s, &slot));
        } else {
            evict(&mut entries);
        }
        encoded
    }

    fn slot(&self, hash: spore_core::Hash) -> Arc<Slot> {
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some(position) = entries.iter().position(|(h, _)| *h == hash) {
            let entry = entries.remove(position).expect("position is in range");
            let slot = entry.1.clone();
            entries.push_back(entry);
            return slot;
        }
        let slot = Arc::new(Slot::new());
        entries.push_back((hash, slot.clone()));
        slot
    }
}

/// Drops the least recently used modules beyond the entry and byte budgets, always
/// keeping the newest.
fn evict(entries: &mut VecDeque<(spore_core::Hash, Arc<Slot>)>) {
    let size = |slot: &Slot| {
        slot.get()
            .and_then(|e| e.as_ref())
            .map_or(0, |e| e.bytes.len() + e.outboard_len())
    };
    let mut total: usize = entries.iter().map(|(_, s)| size(s)).sum();
    while entries.len() > 1 && (entries.len() > CACHE_ENTRIES || total > CACHE_BYTES) {
        if let Some((_, slot)) = entries.pop_front() {
            total -= size(&slot);
        }
    }
}

/// Answers one request of the fetch protocol whose slices are in `format`.
pub(crate) async fn serve_one(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    host: Arc<dyn MeshHost>,
    cache: Arc<ServeCache>,
    format: SliceFormat,
) {
    let request = match timeout(
        SERVE_READ_TIMEOUT,
        read_frame::<FetchRequest>(&mut stream, FETCH_REQUEST_FRAME_LIMIT),
    )
    .await
    {
        Ok(Ok(request)) => request,
        // Dropping the stream unclosed resets it, which is how an oversize or
        // unreadable request is refused.
        Ok(Err(e)) => return debug!("refusing fetch request: {e}"),
        Err(_) => return debug!("no fetch request within {SERVE_READ_TIMEOUT:?}"),
    };
    debug!(hash = %request.hash.short(12), request.start, request.len, ?format, "fetch request");
    let answer = async {
        if request.len > MAX_RANGE_LEN {
            let error = Failure::new(
                ErrorKind::TooLarge,
                format!(
                    "ranges are at most {MAX_RANGE_LEN} bytes, asked {}",
                    request.len
                ),
            );
            return refuse(&mut stream, error).await;
        }
        let Some(encoded) = cache.get(request.hash, &host).await else {
            return refuse(&mut stream, not_found(&request.hash)).await;
        };
        if request.start > encoded.size() {
            let error = Failure::new(
                ErrorKind::BadRequest,
                format!(
                    "range starts at {} but the module is {} bytes",
                    request.start,
                    encoded.size()
                ),
            );
            return refuse(&mut stream, error).await;
        }
        let header = FetchHeader {
            size: Some(encoded.size()),
            error: None,
        };
        write_frame(&mut stream, &header, FETCH_HEADER_FRAME_LIMIT).await?;
        if request.len > 0 {
            if !encoded.is_prepared(format) {
                // Building the tree hashes the whole module: off the runtime's threads.
                let encoded = encoded.clone();
                let _ = tokio::task::spawn_blocking(move || encoded.prepare(format)).await;
            }
            let mut slice = Vec::new();
            encoded.slice(format, request.start, request.len, &mut slice);
            write_slice_frame(&mut stream, &slice).await?;
        }
        stream.close().await?;
        Ok(())
    };
    match timeout(SERVE_WRITE_TIMEOUT, answer).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!("fetch answer not delivered: {e}"),
        Err(_) => debug!("fetch answer not taken within {SERVE_WRITE_TIMEOUT:?}"),
    }
}

async fn refuse(stream: &mut (impl AsyncWrite + Unpin), error: Failure) -> Result<(), FrameError> {
    let header = FetchHeader {
        size: None,
        error: Some(error),
    };
    write_frame(stream, &header, FETCH_HEADER_FRAME_LIMIT).await?;
    stream.close().await?;
    Ok(())
}

/// The refusal of a request for a module this node does not hold.
pub(crate) fn not_found(hash: &spore_core::Hash) -> Failure {
    Failure::new(ErrorKind::NotFound, format!("no module {hash}"))
}
