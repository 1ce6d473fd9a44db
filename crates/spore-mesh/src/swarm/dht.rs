//! The swarm task's handling of Kademlia: what peers store here (provider records,
//! names' chains), this node's lookups as they progress (and provider lookups past
//! their deadline), and its provider records offered again once the first bootstrap
//! is done.

use std::collections::HashSet;

use libp2p::kad::store::RecordStore;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{PeerId, kad};
use tokio::time::Instant;
use tracing::{debug, trace, warn};

use super::{SwarmTask, admission};
use crate::discovery::PROVIDER_GRACE;
use crate::record_store::SporeStore;

impl SwarmTask {
    pub(super) fn end_expired_queries(&mut self) {
        for id in self.queries.expired(Instant::now()) {
            if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query.finish();
            }
            self.queries.remove(&id);
        }
    }

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        if let kad::Event::InboundRequest {
            request:
                kad::InboundRequest::AddProvider {
                    record: Some(record),
                },
        } = &event
        {
            return self.on_provider_record(record.clone());
        }
        if let kad::Event::InboundRequest {
            request:
                kad::InboundRequest::PutRecord {
                    source,
                    record: Some(record),
                    ..
                },
        } = event
        {
            if self.members.admitted(&source).is_none() {
                return self.once_judged(source, admission::Deferred::Chain(record));
            }
            return self.on_chain_stored(source, record);
        }
        let kad::Event::OutboundQueryProgressed {
            id,
            result,
            step,
            stats,
        } = event
        else {
            return;
        };
        if step.last && self.queries.get_mut(&id).is_some() {
            debug!(
                requests = stats.num_requests(),
                successes = stats.num_successes(),
                duration = ?stats.duration(),
                "provider lookup finished"
            );
        }
        match result {
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => self.on_providers(id, providers),
            kad::QueryResult::Bootstrap(Ok(_)) if step.last => self.republish_once(),
            kad::QueryResult::Bootstrap(Err(e)) => debug!("DHT bootstrap failed: {e}"),
            kad::QueryResult::StartProviding(Err(e)) => {
                debug!("provider record not stored remotely: {e}")
            }
            kad::QueryResult::RepublishProvider(Ok(_)) => {
                trace!("provider record republished")
            }
            kad::QueryResult::RepublishProvider(Err(e)) => {
                debug!("provider record not republished: {e}")
            }
            kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))) => {
                self.chain_queries
                    .found(&id, found.peer, &found.record.value);
            }
            kad::QueryResult::PutRecord(Err(e)) => {
                debug!("a name's chain not stored remotely: {e}")
            }
            _ => {}
        }
        if step.last {
            if self.offers.finished(&id) {
                self.offer_more();
            }
            self.chain_queries.finish(&id);
            self.queries.remove(&id);
            if let Some(stored) = self.provide_waiters.remove(&id) {
                let _ = stored.send(());
            }
        }
    }

    pub(super) fn on_providers(&mut self, id: kad::QueryId, providers: HashSet<PeerId>) {
        let local = *self.swarm.local_peer_id();
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        for peer in providers {
            if peer == local || !query.seen.insert(peer) {
                continue;
            }
            // Kademlia knows the provider's addresses only while this query lives; dial
            // now so that the connection (and identify's address cache) outlives it.
            if !self.swarm.is_connected(&peer) {
                let dial = DialOpts::peer_id(peer)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                if let Err(e) = self.swarm.dial(dial) {
                    debug!(%peer, "cannot dial provider: {e}");
                }
            }
            let _ = query.found.send(peer);
        }
        if query.grace_until.is_none() && !query.seen.is_empty() {
            debug!(query = ?id, "first provider found");
            query.grace_until = Some(Instant::now() + PROVIDER_GRACE);
        }
    }

    /// Provider records made before this node knew any peer reached no one; once the
    /// first bootstrap has filled the routing table, publish them all again.
    pub(super) fn republish_once(&mut self) {
        if self.republished {
            return;
        }
        self.republished = true;
        let kad = &mut self.swarm.behaviour_mut().kad;
        let keys: Vec<kad::RecordKey> = kad.store_mut().provided().map(|r| r.key.clone()).collect();
        debug!(
            keys = keys.len(),
            "republishing provider records after bootstrap"
        );
        self.offers.queue(keys);
        self.offer_more();
    }

    pub(super) fn offer_more(&mut self) {
        while let Some(key) = self.offers.next() {
            match self.swarm.behaviour_mut().kad.start_providing(key) {
                Ok(id) => self.offers.started(id),
                Err(e) => warn!("cannot republish a provider record: {e:?}"),
            }
        }
    }
}

/// The peers a lookup of `key` asks first: the closest to it in the routing table, as
/// many as Kademlia starts from.
pub(super) fn first_asked(
    kad: &mut kad::Behaviour<SporeStore>,
    key: kad::RecordKey,
) -> Vec<PeerId> {
    kad.get_closest_local_peers(&kad::KBucketKey::new(key))
        .take(kad::K_VALUE.get())
        .map(|k| *k.preimage())
        .collect()
}
