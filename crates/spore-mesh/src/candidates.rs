//! Confirms this node's direct addresses as external ones, each first reported as an
//! address candidate, for hole punching.
//!
//! DCUtR sends a peer the addresses to dial back that the swarm reported as
//! *candidates*, which come only from identify's observed addresses and never include
//! an address already confirmed as external (libp2p drops such candidates, and identify
//! does not report them). spore confirms its listen addresses as external ones (to
//! advertise them in provider records), so a node that could be dialled had no
//! candidate at all: its peer gave up the hole punch ("no addresses") and the
//! connection stayed relayed. Here each address is reported as a candidate and then
//! confirmed, in that order.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};

#[derive(Default)]
pub(crate) struct Behaviour {
    /// Addresses to report, each as a candidate (`false`) and then confirmed (`true`).
    pending: VecDeque<(Multiaddr, bool)>,
}

impl Behaviour {
    /// Confirms `addr` (a direct address peers can dial) as external, after reporting it
    /// as a candidate.
    pub fn confirm(&mut self, addr: Multiaddr) {
        self.pending.push_back((addr, false));
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.pending.pop_front() {
            Some((addr, false)) => {
                self.pending.push_front((addr.clone(), true));
                Poll::Ready(ToSwarm::NewExternalAddrCandidate(addr))
            }
            Some((addr, true)) => Poll::Ready(ToSwarm::ExternalAddrConfirmed(addr)),
            None => Poll::Pending,
        }
    }
}
