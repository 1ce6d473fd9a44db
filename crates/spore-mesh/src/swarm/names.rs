//! The swarm task's handling of mesh names (`crate::names`): spreading a chain, taking
//! in one a member gossiped or stored here, and ending lookups.

use std::sync::Arc;

use libp2p::{PeerId, gossipsub, kad};
use spore_core::trust::ChainRun;
use tokio::time::Instant;
use tracing::{debug, info};

use super::SwarmTask;
use crate::names::{GOSSIP_RUN_BYTES, check_record, extends, record_key};

impl SwarmTask {
    pub(super) fn publish_chain(&mut self, chain: ChainRun) {
        let key = record_key(&chain.publisher(), chain.name());
        let mut held = spore_core::trust::NameChain::default();
        if held.accept_run(&chain).is_err() {
            debug!(
                name = chain.name(),
                "not spreading a chain that is not whole"
            );
            return;
        }
        let latest = ChainRun::latest_of(&held, GOSSIP_RUN_BYTES).expect("the chain is not empty");
        let topic = self.names_topic.clone();
        let behaviour = self.swarm.behaviour_mut();
        match behaviour.gossipsub.publish(topic, latest.to_bytes()) {
            Ok(_)
            | Err(
                gossipsub::PublishError::NoPeersSubscribedToTopic
                | gossipsub::PublishError::Duplicate,
            ) => {}
            Err(e) => debug!(name = chain.name(), "cannot spread a name on gossip: {e}"),
        }
        let record = kad::Record::new(key, chain.to_bytes());
        if let Err(e) = behaviour.kad.put_record(record, kad::Quorum::One) {
            info!(
                name = chain.name(),
                "cannot keep a name's chain in the DHT: {e}"
            );
        }
    }

    /// A chain's latest records, gossiped: only a member's count, and the node judges
    /// them.
    pub(super) fn on_names_gossip(&mut self, message: gossipsub::Message) {
        let Some(author) = message.source else {
            return debug!("ignoring an unsigned name message");
        };
        if self.members.admitted(&author).is_none() {
            return debug!(%author, "ignoring names gossiped by a peer that is not admitted");
        }
        match ChainRun::from_bytes(&message.data) {
            Ok(run) => self.tell_host(run, author),
            Err(e) => info!(%author, "refusing names a member gossiped: {e}"),
        }
    }

    /// A member asks this node to keep a chain in its part of the DHT: kept only if it
    /// is the whole chain its key names and extends what is held.
    pub(super) fn on_chain_stored(&mut self, source: PeerId, record: kad::Record) {
        if self.members.admitted(&source).is_none() {
            return info!(%source, "ignoring a DHT record from a peer that is not admitted");
        }
        let run = match check_record(&record.key, &record.value) {
            Ok(run) => run,
            Err(why) => return info!(%source, "refusing a DHT record of a name: {why}"),
        };
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let held = kad::store::RecordStore::get(store, &record.key)
            .and_then(|held| check_record(&held.key, &held.value).ok());
        if held.as_ref().is_none_or(|held| extends(held, &run)) {
            if let Err(e) = kad::store::RecordStore::put(store, record) {
                debug!("cannot keep a name's chain: {e}");
            }
        } else if held
            .as_ref()
            .is_some_and(|held| !extends(&run, held) && held != &run)
        {
            info!(%source, name = run.name(), "refusing a DHT record that does not extend the chain held");
        }
        self.tell_host(run, source);
    }

    fn tell_host(&self, run: ChainRun, from: PeerId) {
        let host = Arc::clone(&self.host);
        tokio::task::spawn_blocking(move || host.chain_received(run, from));
    }

    pub(super) fn end_expired_chain_queries(&mut self) {
        for id in self.chain_queries.expired(Instant::now()) {
            if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query.finish();
            }
            self.chain_queries.finish(&id);
        }
    }
}
