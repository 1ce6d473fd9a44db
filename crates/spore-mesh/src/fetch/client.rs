//! The fetching side of `/spore/fetch/2` (and of `/1`, for peers that predate it).
//!
//! A fetch first learns the module's size from a provider and proves it by verifying
//! the module's final range (bao hashes the final chunk apart from the others, so a
//! wrong size cannot verify). Only then does it allocate the module and ask the
//! remaining 1 MiB ranges of every provider that holds the module, several at a time.
//! A range that fails for any reason is asked again, of another provider when there is
//! one; a provider that lies is dropped at once, one that times out or disconnects
//! after a few strikes. Every range is verified against the hash before it is kept,
//! and the assembled module is hashed once more before it is returned.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tracing::{Instrument, debug, debug_span, info, info_span, warn};

use crate::MeshTuning;
use crate::error::{FailureReason, FetchError, ProviderFailure};
use crate::fetch::Tracked;
use crate::fetch::request::{Answer, Content, request_range};
use crate::streams::Control;
use crate::wire::FetchRequest;

/// A module fetched from the mesh, verified against its hash.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// Who delivered how many bytes, in the order they first delivered.
    pub sources: Vec<(PeerId, u64)>,
    pub elapsed: Duration,
}

/// Modules travel in ranges of this size (`spec/wire.md`).
pub(crate) const RANGE_LEN: u64 = 1 << 20;
/// The largest module a fetch accepts unless the node says less
/// ([`crate::MeshTuning::max_module_bytes`]); a provider claiming more is not believed.
pub(crate) const MAX_MODULE_SIZE: u64 = 1 << 30;
/// One range request, from opening the stream to verifying the slice.
const RANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Transient failures (timeouts, dropped streams) a provider may have in a row.
const MAX_STRIKES: u32 = 3;
/// Candidates asked for the module's size at the same time.
const MAX_PROBES: usize = 8;
/// Ranges in flight across all providers of one fetch.
const MAX_RANGES_IN_FLIGHT: usize = 16;

/// Who a fetch asks for the module.
pub(crate) struct Candidates {
    /// Peers known before the DHT answers: gossip announcers (`true`: they advertised
    /// the module) and connected peers (`false`: they may hold it unadvertised).
    pub known: Vec<(PeerId, bool)>,
    /// DHT providers as the lookup finds them; closed when the lookup ends.
    pub dht: mpsc::UnboundedReceiver<PeerId>,
}

/// Fetches `hash`, reporting its progress through `progress` (dropped, so removed from
/// the registry, when the fetch ends however it ends).
pub(crate) async fn fetch(
    control: Control,
    hash: spore_core::Hash,
    candidates: Candidates,
    deadline: Instant,
    tuning: &MeshTuning,
    progress: Tracked,
) -> Result<Fetched, FetchError> {
    let started = Instant::now();
    let span = info_span!("fetch", hash = %hash.short(12));
    let mut engine = Engine {
        hash,
        control,
        deadline,
        per_provider: tuning.ranges_in_flight_per_provider.max(1),
        max_size: tuning.max_module_bytes.min(MAX_MODULE_SIZE),
        providers: Vec::new(),
        index: HashMap::new(),
        size: None,
        size_check: None,
        ranges: Vec::new(),
        queue: VecDeque::new(),
        buffer: Vec::new(),
        spare_buffers: Vec::new(),
        received: 0,
        in_flight: JoinSet::new(),
        delivery_order: Vec::new(),
        progress,
    };
    for (peer, advertised) in candidates.known {
        engine.add_candidate(peer, advertised);
    }
    let bytes = engine.run(candidates.dht).instrument(span.clone()).await?;
    let sources = engine
        .delivery_order
        .iter()
        .map(|&i| (engine.providers[i].peer, engine.providers[i].delivered))
        .collect::<Vec<_>>();
    span.in_scope(|| info!(bytes = bytes.len(), ?sources, elapsed = ?started.elapsed(), "fetched"));
    Ok(Fetched {
        bytes,
        sources,
        elapsed: started.elapsed(),
    })
}

enum Holding {
    Unknown,
    Probing,
    /// Answered with this size.
    Holds(u64),
    Failed(FailureReason),
}

struct Provider {
    peer: PeerId,
    /// Advertised the module (DHT or gossip), rather than merely being connected.
    advertised: bool,
    holding: Holding,
    in_flight: usize,
    strikes: u32,
    delivered: u64,
}

impl Provider {
    fn usable_for_ranges(&self, size: u64) -> bool {
        matches!(self.holding, Holding::Holds(s) if s == size)
    }
}

#[derive(Clone, Copy)]
enum Job {
    /// `{start: 0, len: 0}`: does the peer hold the module, and how large is it?
    Probe,
    /// The final range, asked to prove the size the provider claimed.
    SizeCheck {
        size: u64,
    },
    Range {
        index: usize,
    },
}

struct Outcome {
    provider: usize,
    job: Job,
    result: Result<Answer, FailureReason>,
}

/// A range not yet delivered is either queued or in flight.
#[derive(Default)]
struct RangeState {
    /// Providers this range failed with, asked again only when no one else can.
    failed_with: Vec<usize>,
}

struct Engine {
    hash: spore_core::Hash,
    control: Control,
    deadline: Instant,
    per_provider: usize,
    /// The largest size a provider may claim.
    max_size: u64,
    providers: Vec<Provider>,
    index: HashMap<PeerId, usize>,
    /// The module's size, once its final range verified.
    size: Option<u64>,
    /// The provider whose claimed size is being checked.
    size_check: Option<usize>,
    ranges: Vec<RangeState>,
    queue: VecDeque<usize>,
    buffer: Vec<u8>,
    /// Frame buffers of ranges already taken, for the ranges still to come.
    spare_buffers: Vec<Vec<u8>>,
    received: u64,
    /// Each range is a task of its own, so that a range is asked as soon as it is handed
    /// out, and read and verified on any worker. Polled together inside this task, new
    /// requests waited behind the answers already read: the stream of a range handed
    /// out while 15 answers were being taken opened 20 ms later, and the connection
    /// idled (`docs/performance.md`). Dropping the set cancels them.
    in_flight: JoinSet<Outcome>,
    delivery_order: Vec<usize>,
    progress: Tracked,
}

impl Engine {
    async fn run(
        &mut self,
        mut dht: mpsc::UnboundedReceiver<PeerId>,
    ) -> Result<Vec<u8>, FetchError> {
        let mut discovering = true;
        loop {
            self.schedule();
            if self.size.is_some() && self.queue.is_empty() && self.in_flight.is_empty() {
                return self.finish().await;
            }
            if self.in_flight.is_empty() && !discovering {
                return Err(self.failure());
            }
            tokio::select! {
                Some(joined) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match joined {
                        Ok(outcome) => self.on_outcome(outcome),
                        // A bug in a range's task is this fetch's, as it was when the
                        // ranges ran inside it.
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        // Cancelled: the runtime is shutting down.
                        Err(_) => return Err(FetchError::ShutDown),
                    }
                }
                provider = dht.recv(), if discovering => match provider {
                    Some(peer) => self.add_candidate(peer, true),
                    None => discovering = false,
                },
                _ = sleep_until(self.deadline) => return Err(self.deadline_error()),
            }
        }
    }

    fn add_candidate(&mut self, peer: PeerId, advertised: bool) {
        if let Some(&i) = self.index.get(&peer) {
            self.providers[i].advertised |= advertised;
            return;
        }
        debug!(%peer, advertised, "candidate provider");
        self.index.insert(peer, self.providers.len());
        self.providers.push(Provider {
            peer,
            advertised,
            holding: Holding::Unknown,
            in_flight: 0,
            strikes: 0,
            delivered: 0,
        });
    }

    /// Starts every request there is capacity for.
    fn schedule(&mut self) {
        let probing = self
            .providers
            .iter()
            .filter(|p| matches!(p.holding, Holding::Probing))
            .count();
        let unknown: Vec<usize> = (0..self.providers.len())
            .filter(|&i| matches!(self.providers[i].holding, Holding::Unknown))
            .take(MAX_PROBES.saturating_sub(probing))
            .collect();
        for i in unknown {
            self.providers[i].holding = Holding::Probing;
            self.start(i, Job::Probe);
        }

        let Some(size) = self.size else {
            if self.size_check.is_none()
                && let Some(i) = (0..self.providers.len())
                    .find(|&i| matches!(self.providers[i].holding, Holding::Holds(_)))
            {
                let Holding::Holds(size) = self.providers[i].holding else {
                    unreachable!()
                };
                self.size_check = Some(i);
                self.start(i, Job::SizeCheck { size });
            }
            return;
        };

        // Hand out ranges round-robin so that every holder gets a share at once.
        loop {
            let mut started = false;
            for i in 0..self.providers.len() {
                if self.queue.is_empty() || self.in_flight.len() >= MAX_RANGES_IN_FLIGHT {
                    return;
                }
                let provider = &self.providers[i];
                if !provider.usable_for_ranges(size) || provider.in_flight >= self.per_provider {
                    continue;
                }
                if let Some(index) = self.take_range_for(i) {
                    self.start(i, Job::Range { index });
                    started = true;
                }
            }
            if !started {
                return;
            }
        }
    }

    /// The first queued range that did not fail with provider `i`, or any range when
    /// `i` is the only provider left able to serve ranges.
    fn take_range_for(&mut self, i: usize) -> Option<usize> {
        let position = self
            .queue
            .iter()
            .position(|&r| !self.ranges[r].failed_with.contains(&i))
            .or_else(|| {
                let size = self.size?;
                let others = (0..self.providers.len())
                    .any(|j| j != i && self.providers[j].usable_for_ranges(size));
                (!others).then_some(0)
            })?;
        self.queue.remove(position)
    }

    fn range_bounds(size: u64, job: Job) -> (u64, u64) {
        match job {
            Job::Probe => (0, 0),
            Job::SizeCheck { size } => {
                let start = size.saturating_sub(1) / RANGE_LEN * RANGE_LEN;
                (start, size - start)
            }
            Job::Range { index } => {
                let start = index as u64 * RANGE_LEN;
                (start, RANGE_LEN.min(size - start))
            }
        }
    }

    fn start(&mut self, i: usize, job: Job) {
        let provider = &mut self.providers[i];
        provider.in_flight += 1;
        let (start, len) = Self::range_bounds(self.size.unwrap_or(0), job);
        let peer = provider.peer;
        let control = self.control.clone();
        let hash = self.hash;
        let deadline = self.deadline.min(Instant::now() + RANGE_TIMEOUT);
        let buffer = self.spare_buffers.pop().unwrap_or_default();
        let span = debug_span!("range", %peer, start, len);
        self.in_flight.spawn(
            async move {
                let request = FetchRequest { hash, start, len };
                let result = request_range(control, peer, request, buffer, deadline).await;
                if let Err(reason) = &result {
                    debug!("range failed: {reason}");
                }
                Outcome {
                    provider: i,
                    job,
                    result,
                }
            }
            .instrument(span),
        );
    }

    fn on_outcome(
        &mut self,
        Outcome {
            provider: i,
            job,
            result,
        }: Outcome,
    ) {
        self.providers[i].in_flight -= 1;
        match (job, result) {
            (Job::Probe, Ok(Answer { size, .. })) => {
                self.providers[i].holding = match self.size {
                    Some(known) if known != size => Holding::Failed(size_disagrees(size, known)),
                    _ if size > self.max_size => Holding::Failed(FailureReason::Protocol(format!(
                        "claims the module is {size} bytes, over this node's limit of {}",
                        self.max_size
                    ))),
                    // An empty module has no final chunk to prove its size with, but
                    // only one hash.
                    _ if size == 0 && self.hash != spore_core::Hash::of(&[]) => Holding::Failed(
                        FailureReason::HashMismatch("claims the module is empty".into()),
                    ),
                    _ => Holding::Holds(size),
                };
            }
            (Job::SizeCheck { size }, Ok(Answer { content, .. })) => {
                self.size_check = None;
                self.accept_size(size);
                let (start, len) = Self::range_bounds(size, job);
                content.copy_to(
                    size,
                    &mut self.buffer[start as usize..(start + len) as usize],
                );
                self.recycle(content);
                self.delivered(i, len);
                let last = self.ranges.len() - 1;
                self.queue.retain(|&r| r != last);
            }
            (Job::Range { index }, Ok(Answer { size, content })) => {
                let known = self.size.expect("ranges are asked once the size is known");
                let (start, len) = Self::range_bounds(known, job);
                if size != known {
                    self.fail(i, size_disagrees(size, known));
                    self.requeue(index, i);
                } else {
                    debug_assert_eq!(content.len(), len, "the range asked is the range verified");
                    content.copy_to(
                        size,
                        &mut self.buffer[start as usize..(start + len) as usize],
                    );
                    self.providers[i].strikes = 0;
                    self.delivered(i, len);
                }
                self.recycle(content);
            }
            (job, Err(reason)) => {
                match job {
                    Job::Probe => self.providers[i].holding = Holding::Unknown,
                    Job::SizeCheck { .. } => self.size_check = None,
                    Job::Range { index } => self.requeue(index, i),
                }
                self.fail(i, reason);
            }
        }
    }

    /// The size is proven: lay out the ranges and drop providers that claimed another.
    fn accept_size(&mut self, size: u64) {
        self.size = Some(size);
        self.progress.sized(size);
        self.buffer = vec![0; size as usize];
        let count = size.div_ceil(RANGE_LEN).max(1) as usize;
        self.ranges = (0..count).map(|_| RangeState::default()).collect();
        self.queue = (0..count).collect();
        for provider in &mut self.providers {
            if let Holding::Holds(claimed) = provider.holding
                && claimed != size
            {
                provider.holding = Holding::Failed(size_disagrees(claimed, size));
            }
        }
    }

    /// Keeps a spent frame's buffer for the next range, up to one per range in flight.
    fn recycle(&mut self, content: Content) {
        if let Some(buffer) = content.into_buffer()
            && self.spare_buffers.len() < MAX_RANGES_IN_FLIGHT
        {
            self.spare_buffers.push(buffer);
        }
    }

    /// Counts `len` verified bytes that provider `i` delivered.
    fn delivered(&mut self, i: usize, len: u64) {
        self.received += len;
        self.providers[i].delivered += len;
        self.progress.delivered(self.providers[i].peer, len);
        if !self.delivery_order.contains(&i) {
            self.delivery_order.push(i);
        }
    }

    fn requeue(&mut self, index: usize, failed_with: usize) {
        self.ranges[index].failed_with.push(failed_with);
        self.queue.push_front(index);
    }

    /// Records a failure: liars and non-holders are dropped at once; a provider with
    /// transient trouble after [`MAX_STRIKES`] in a row.
    fn fail(&mut self, i: usize, reason: FailureReason) {
        let provider = &mut self.providers[i];
        if matches!(provider.holding, Holding::Failed(_)) {
            return;
        }
        let transient = matches!(
            reason,
            FailureReason::Timeout | FailureReason::Unreachable(_)
        );
        provider.strikes += 1;
        if !transient || provider.strikes >= MAX_STRIKES {
            // A connected peer asked on the chance it holds the module (no record
            // or hint said so) is expected not to; an advertised one is a stale
            // record, or worse, and worth an operator's eye.
            let guess = !provider.advertised && matches!(reason, FailureReason::NotFound);
            if guess {
                debug!(peer = %provider.peer, hash = %self.hash.short(12), "connected peer does not hold the module");
            } else {
                warn!(peer = %provider.peer, hash = %self.hash.short(12), "provider dropped: {reason}");
            }
            provider.holding = Holding::Failed(reason);
        }
    }

    /// The module, whole. Every range was verified against the module's hash as it
    /// came, and the ranges cover it, so it is not hashed again here: that pass made a
    /// 64 MiB fetch 9 to 12 ms slower (5 to 7%; docs/performance.md, "The transport's
    /// floor"), and the node hashes the whole once more as it derives the manifest,
    /// before it stores it (`spec/wire.md`). Debug builds, which the tests run, hash it
    /// here too, for a bug in laying out the ranges to show where it is made.
    async fn finish(&mut self) -> Result<Vec<u8>, FetchError> {
        let bytes = std::mem::take(&mut self.buffer);
        #[cfg(debug_assertions)]
        let bytes = {
            let (bytes, actual) = tokio::task::spawn_blocking(move || {
                let actual = spore_core::Hash::of(&bytes);
                (bytes, actual)
            })
            .await
            .map_err(|_| FetchError::ShutDown)?;
            if actual != self.hash {
                // Every range verified, so this is a bug here, not a peer's doing.
                return Err(FetchError::HashMismatch {
                    hash: self.hash,
                    actual,
                });
            }
            bytes
        };
        Ok(bytes)
    }

    fn failures(&self) -> Vec<ProviderFailure> {
        self.providers
            .iter()
            .filter_map(|p| match &p.holding {
                Holding::Failed(FailureReason::NotFound) if !p.advertised => None,
                Holding::Failed(reason) => Some(ProviderFailure {
                    peer: p.peer,
                    reason: reason.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    fn failure(&self) -> FetchError {
        let failures = self.failures();
        if failures.is_empty() {
            FetchError::NoProviders { hash: self.hash }
        } else {
            FetchError::AllProvidersFailed {
                hash: self.hash,
                failures,
            }
        }
    }

    fn deadline_error(&self) -> FetchError {
        let anyone_holds = self
            .providers
            .iter()
            .any(|p| matches!(p.holding, Holding::Holds(_)));
        if self.size.is_none() && !anyone_holds && self.failures().is_empty() {
            return FetchError::NoProviders { hash: self.hash };
        }
        FetchError::Deadline {
            hash: self.hash,
            received: self.received,
            size: self.size,
        }
    }
}

fn size_disagrees(claimed: u64, known: u64) -> FailureReason {
    FailureReason::Protocol(format!(
        "claims the module is {claimed} bytes, but it is {known}"
    ))
}
