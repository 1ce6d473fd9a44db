//! Lookup hops, measured from the traces of libp2p's Kademlia and of the mesh's swarm
//! task: libp2p reports no hops of its own (its `QueryStats` count requests, not the
//! rounds between them).
//!
//! A provider lookup asks, first, the peers of its own routing table closest to the key
//! (the mesh traces them, "provider lookup started"); those are 1 hop away. A peer first
//! named in the answer of a peer `h` hops away is `h + 1` hops away. A lookup's hops are
//! those of the peer whose answer carried the first provider it found (Kademlia traces
//! each answer, "Request to peer in query succeeded", and the peers it names, "Peer
//! reported by source in query"; the swarm task then gets the providers, "first provider
//! found", before any other answer is read), and 0 when the node's own store held one.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber, span};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The hops of every provider lookup that found a provider, in the order they ended.
#[derive(Clone, Default)]
pub struct Hops(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// Running lookups, by node and query id (query ids are per node).
    lookups: HashMap<(String, String), Lookup>,
    hops: Vec<u32>,
}

#[derive(Default)]
struct Lookup {
    first_asked: HashSet<String>,
    /// The first peer to name each peer.
    named_by: HashMap<String, String>,
    /// Each peer that answered, and its hops.
    answered: HashMap<String, u32>,
    last_answer: Option<String>,
}

impl Hops {
    /// The hops of the lookups that found a provider so far; forgets them.
    pub fn take(&self) -> Vec<u32> {
        std::mem::take(&mut self.0.lock().unwrap().hops)
    }

    /// Only the events above, and the swarm task's span that says which node they
    /// happened on: the rest of libp2p's tracing is never built.
    pub fn filter<S>() -> impl Filter<S> + 'static {
        Wanted
    }
}

/// The node a span's events happened on (the swarm task's `mesh_node` span).
struct Node(String);

#[derive(Default)]
struct Fields {
    message: String,
    peer: String,
    source: String,
    query: String,
    first: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "peer" => &mut self.peer,
            "source" => &mut self.source,
            "query" => &mut self.query,
            "first" => &mut self.first,
            _ => return,
        };
        *slot = format!("{value:?}");
    }
}

/// Every `PeerId("…")` in a Debug text, as the peer id alone (Display form).
fn peer_ids(text: &str) -> Vec<String> {
    text.split("PeerId(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Hops {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "mesh_node" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Node(fields.peer));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(node) = ctx.event_scope(event).and_then(|mut scope| {
            scope.find_map(|span| span.extensions().get::<Node>().map(|n| n.0.clone()))
        }) else {
            return;
        };
        let mut f = Fields::default();
        event.record(&mut f);
        let mut state = self.0.lock().unwrap();
        let key = (node, f.query.clone());
        match f.message.as_str() {
            "provider lookup started" => {
                let lookup = Lookup {
                    first_asked: peer_ids(&f.first).into_iter().collect(),
                    ..Lookup::default()
                };
                state.lookups.insert(key, lookup);
            }
            "Request to peer in query succeeded" => {
                let Some(lookup) = state.lookups.get_mut(&key) else {
                    return;
                };
                let hops = match lookup.named_by.get(&f.peer) {
                    _ if lookup.first_asked.contains(&f.peer) => 1,
                    Some(by) => lookup.answered.get(by).map_or(1, |h| h + 1),
                    None => 1,
                };
                lookup.answered.entry(f.peer.clone()).or_insert(hops);
                lookup.last_answer = Some(f.peer);
            }
            "Peer reported by source in query" => {
                let Some(lookup) = state.lookups.get_mut(&key) else {
                    return;
                };
                for named in peer_ids(&f.peer) {
                    lookup
                        .named_by
                        .entry(named)
                        .or_insert_with(|| f.source.clone());
                }
            }
            "first provider found" => {
                let Some(lookup) = state.lookups.remove(&key) else {
                    return;
                };
                let hops = lookup
                    .last_answer
                    .and_then(|peer| lookup.answered.get(&peer).copied())
                    .unwrap_or(0);
                state.hops.push(hops);
            }
            _ => {}
        }
    }
}

struct Wanted;

impl Wanted {
    fn wants(meta: &Metadata<'_>) -> bool {
        let target = meta.target();
        if meta.is_span() {
            return meta.name() == "mesh_node";
        }
        let has = |name: &str| meta.fields().field(name).is_some();
        (target.starts_with("libp2p_kad") && has("query") && has("peer"))
            || (target.starts_with("spore_mesh::swarm") && has("query"))
    }
}

impl<S> Filter<S> for Wanted {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        Self::wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
}

#[test]
fn peer_ids_are_read_from_debug_text() {
    let text = r#"KadPeer { node_id: PeerId("12D3KooWA"), multiaddrs: [] } [PeerId("12D3KooWB")]"#;
    assert_eq!(peer_ids(text), vec!["12D3KooWA", "12D3KooWB"]);
}
