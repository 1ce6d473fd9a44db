//! `/spore/invoke/3`: remote invocation as numbered calls on one long-lived stream per
//! pair of peers.
//!
//! Why not a stream per call: opening a libp2p stream costs a yamux open, a protocol
//! negotiation and hand-offs between the caller's, the swarm's and the connection's
//! tasks on both sides, and every time the connection falls quiet its idle timer is
//! re-armed on another thread. On an open stream a call is one frame each way.
//!
//! `client` keeps the streams and pairs answers with calls; `server` answers them.

mod client;
mod server;
#[cfg(test)]
mod tests;

pub(crate) use client::Channels;
pub(crate) use server::serve_stream;
