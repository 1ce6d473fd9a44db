//! spore-mesh against real libp2p on 127.0.0.1: several meshes in one process, each
//! with an in-memory host.

mod abilities;
mod before_hello;
mod common;
mod connections;
mod dht;
mod fetch;
mod hops;
mod invoke;
mod nat;
mod partition;
mod providers;
mod relay;
mod scale;
mod start;
mod traced;
mod trust;
