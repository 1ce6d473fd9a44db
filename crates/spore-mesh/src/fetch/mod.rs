//! `/spore/fetch/2` and `/1`: verified module transfer (`spec/wire.md`). `client`
//! fetches a module from the peers that hold it; `request` asks one provider for one
//! range and verifies the answer; `server` answers peers' requests for ranges of the
//! modules this node holds; `progress` lists the fetches in flight. The frames and
//! their limits, which both sides share, are in [`crate::wire`]; the slice encodings
//! in [`crate::verify`].

pub(crate) mod client;
pub(crate) mod progress;
pub(crate) mod request;
pub(crate) mod server;

pub use client::Fetched;
pub(crate) use client::{Candidates, MAX_MODULE_SIZE, fetch};
pub use progress::FetchProgress;
pub(crate) use progress::{Fetches, Tracked};
pub(crate) use server::{ServeCache, serve_one};
