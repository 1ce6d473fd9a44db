//! What one peer may cost this node (`[limits.forwarded]`, `per_peer_*`): how many of
//! its forwarded calls run here at once, how many it may start per second, how many
//! bytes of modules this node fetches and keeps to run its calls, and how many bytes of
//! log lines its calls may write per minute. Going over is a typed refusal (`busy`,
//! `quota`) to that peer alone, or for the log its further lines dropped with one notice;
//! other peers are served as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spore_core::{ErrorKind, Failure};
use spore_mesh::PeerId;
use spore_runtime::LogBudget;

use crate::config::ForwardedLimits;

/// Past this many peers counted, the idle ones (no call running, no module charged) are
/// forgotten, so that the table stays small however many peers come and go.
const IDLE_PEERS_KEPT: usize = 4096;

pub(crate) struct PeerLimits {
    limits: ForwardedLimits,
    peers: Mutex<HashMap<PeerId, PeerUse>>,
}

struct PeerUse {
    running: u32,
    /// A token bucket: `per_peer_calls_per_second` tokens, refilled continuously.
    tokens: f64,
    refilled: Instant,
    module_bytes: u64,
    /// What its calls may still log this minute, refilled each minute.
    log: Arc<LogBudget>,
    log_refilled: Instant,
}

/// The period of `per_peer_log_bytes`.
const LOG_PERIOD: Duration = Duration::from_secs(60);

/// A forwarded call counted as running until dropped.
pub(crate) struct Running {
    limits: Arc<PeerLimits>,
    peer: PeerId,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(used) = self.limits.lock().get_mut(&self.peer) {
            used.running = used.running.saturating_sub(1);
        }
    }
}

impl PeerLimits {
    pub fn new(limits: ForwardedLimits) -> Arc<PeerLimits> {
        Arc::new(PeerLimits {
            limits,
            peers: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, PeerUse>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call `peer` forwarded as started, or says why it may not start now.
    pub fn start_call(self: &Arc<Self>, peer: PeerId) -> Result<Running, Failure> {
        let rate = f64::from(self.limits.per_peer_calls_per_second);
        let now = Instant::now();
        let mut peers = self.lock();
        if peers.len() >= IDLE_PEERS_KEPT {
            peers.retain(|_, used| used.running > 0 || used.module_bytes > 0);
        }
        let used = peers.entry(peer).or_insert(PeerUse {
            running: 0,
            tokens: rate,
            refilled: now,
            module_bytes: 0,
            log: Arc::new(LogBudget::new(self.limits.per_peer_log_bytes as usize)),
            log_refilled: now,
        });
        if now.duration_since(used.log_refilled) >= LOG_PERIOD {
            used.log.refill(self.limits.per_peer_log_bytes as usize);
            used.log_refilled = now;
        }
        used.tokens =
            (used.tokens + now.duration_since(used.refilled).as_secs_f64() * rate).min(rate);
        used.refilled = now;
        if used.running >= self.limits.per_peer_calls {
            return Err(Failure::new(
                ErrorKind::Busy,
                format!(
                    "peer {peer} has {} calls running on this node, the most it allows one peer (limits.forwarded.per_peer_calls)",
                    used.running
                ),
            ));
        }
        if used.tokens < 1.0 {
            return Err(Failure::new(
                ErrorKind::Busy,
                format!(
                    "peer {peer} made {} calls to this node in the last second, the most it allows one peer (limits.forwarded.per_peer_calls_per_second)",
                    self.limits.per_peer_calls_per_second
                ),
            ));
        }
        used.tokens -= 1.0;
        used.running += 1;
        Ok(Running {
            limits: self.clone(),
            peer,
        })
    }

    /// Gives back the call `running` counted without running it (it will be counted
    /// again where it runs).
    pub fn refund(&self, running: Running) {
        if let Some(used) = self.lock().get_mut(&running.peer) {
            used.tokens += 1.0;
        }
    }

    /// Whether this node may fetch another module to run `peer`'s calls.
    pub fn may_fetch_for(&self, peer: &PeerId) -> Result<(), Failure> {
        let used = self.lock().get(peer).map_or(0, |used| used.module_bytes);
        if used >= self.limits.per_peer_module_bytes {
            return Err(Failure::new(
                ErrorKind::Quota,
                format!(
                    "this node keeps {} of modules fetched to run peer {peer}'s calls, its quota (limits.forwarded.per_peer_module_bytes); it fetches no more for it",
                    crate::format_size(used)
                ),
            ));
        }
        Ok(())
    }

    /// What the calls of `peer` may still log this minute, shared by them all.
    pub fn log_budget(&self, peer: &PeerId) -> Arc<LogBudget> {
        let limit = self.limits.per_peer_log_bytes as usize;
        self.lock()
            .get(peer)
            .map_or_else(|| Arc::new(LogBudget::new(limit)), |used| used.log.clone())
    }

    /// Charges `peer` for `bytes` of a module fetched to run its call.
    pub fn charge_module(&self, peer: &PeerId, bytes: u64) {
        if let Some(used) = self.lock().get_mut(peer) {
            used.module_bytes += bytes;
        }
    }
}
