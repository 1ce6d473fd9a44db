//! The addresses the swarm task gives out and takes in: this node's own, advertised
//! to peers (and in its provider records), and the ones each peer announces through
//! identify, kept until it is admitted.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, identify};

use super::SwarmTask;
use crate::behaviour::KAD_PROTOCOL;

impl SwarmTask {
    /// Provider records carry the provider's external addresses, and a record without
    /// any is only served by nodes that happen to have the provider in their routing
    /// table. Without a NAT-traversal service to confirm addresses, the listen
    /// addresses are the best there is: all of them, less loopback ones when the node
    /// is reachable otherwise.
    /// A node with announced addresses advertises those instead.
    pub(super) fn advertise_listen_addrs(&mut self) {
        let wanted: Vec<Multiaddr> = if self.announce.is_empty() {
            let listening: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
            let routable = listening.iter().any(|a| !is_loopback(a));
            listening
                .into_iter()
                .filter(|a| !routable || !is_loopback(a))
                .collect()
        } else {
            self.announce.clone()
        };
        let stale: Vec<Multiaddr> = self
            .swarm
            .external_addresses()
            .filter(|a| !wanted.contains(a))
            .cloned()
            .collect();
        for addr in stale {
            self.swarm.remove_external_address(&addr);
        }
        for addr in wanted {
            let new = !self.swarm.external_addresses().any(|a| *a == addr);
            let relayed = addr.iter().any(|p| matches!(p, Protocol::P2pCircuit));
            if new && !relayed && !is_loopback(&addr) {
                // A candidate first, for hole punching (`crate::candidates`).
                self.swarm.behaviour_mut().candidates.confirm(addr);
            } else {
                self.swarm.add_external_address(addr);
            }
        }
    }

    pub(super) fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        if !info.protocols.contains(&KAD_PROTOCOL) {
            return;
        }
        // A peer reached over the network lists its loopback addresses too; those
        // would lead back to this machine, not to the peer.
        let remote_is_loopback = self.remote_addrs.get(&peer).is_none_or(is_loopback);
        let reachable: Vec<Multiaddr> = info
            .listen_addrs
            .into_iter()
            .filter(|addr| remote_is_loopback || !is_loopback(addr))
            .collect();
        let direct: Vec<Multiaddr> = reachable
            .iter()
            .filter(|addr| !crate::connections::is_relayed(addr))
            .cloned()
            .collect();
        self.dial_direct_if_relayed(peer, &direct);
        self.identified.insert(peer, reachable);
        if self.members.admitted(&peer).is_some() {
            self.on_admitted(peer);
        }
    }
}

fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}
