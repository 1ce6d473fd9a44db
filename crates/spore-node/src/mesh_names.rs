//! Mesh names as this node holds and believes them (`spec/trust.md`, "Mesh names"):
//! every verified chain of publications it received, kept in its home, and the trust
//! policy (`[trust.names]`) that says whose chains it believes for which names.
//!
//! A chain is taken in whole or in part only when it links to what is held: a replayed
//! older record, two records with one number, or a record that skips are refused, saying
//! which. Only the chains of keys this node has a use for are kept (those its policy
//! trusts for the name, and those a binding's `publishers` names): any member can sign
//! chains with keys of its own, and the home must not fill with them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use spore_core::trust::{ChainRun, NameChain, NamePolicy, PublicKey, Publication, Signed};
use spore_core::{FunctionRef, Hash, Name};
use spore_store::{Codebase, NameEntry, NameEvent};

use crate::trust::{TrustStore, TrustStoreError};
use crate::{Node, NodeError};

/// How long resolving a mesh name this node holds no chain of may look in the DHT.
const DHT_LOOKUP: std::time::Duration = std::time::Duration::from_secs(5);

/// A mesh name this node believes, and what its latest publication says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Believed {
    pub name: Name,
    /// `None`: the publisher removed the name.
    pub target: Option<FunctionRef>,
    pub publisher: PublicKey,
    pub seq: u64,
    pub at_ms: u64,
}

/// Every chain held, and the policy that says which are believed.
pub struct MeshNames {
    policy: NamePolicy,
    /// The keys of every binding's `publishers`.
    binding_publishers: BTreeSet<PublicKey>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By name, then publisher.
    chains: BTreeMap<(String, PublicKey), NameChain>,
    /// The publishers whose publications point into each module: who published its code.
    publishers: HashMap<Hash, BTreeSet<PublicKey>>,
}

impl State {
    fn index(&mut self, record: &Signed<Publication>) {
        if let Some(target) = target_of(record) {
            self.publishers
                .entry(target.module)
                .or_default()
                .insert(record.body().publisher);
        }
    }
}

impl MeshNames {
    /// The chains `codebase` keeps, with `policy`. A kept record that no longer verifies
    /// or links is left out with a log line; the mesh can give the chain again.
    pub fn load(
        codebase: &Codebase,
        policy: NamePolicy,
        binding_publishers: BTreeSet<PublicKey>,
    ) -> Result<MeshNames, NodeError> {
        let mut state = State::default();
        for bytes in codebase.publications()? {
            let record = match Signed::<Publication>::from_bytes(&bytes) {
                Ok(record) => record,
                Err(e) => {
                    tracing::warn!("leaving out a kept publication that does not verify: {e}");
                    continue;
                }
            };
            let key = (record.body().name.clone(), record.body().publisher);
            let chain = state.chains.entry(key).or_default();
            match chain.accept(record.clone()) {
                Ok(_) => state.index(&record),
                Err(e) => tracing::warn!("leaving out a kept publication: {e}"),
            }
        }
        Ok(MeshNames {
            policy,
            binding_publishers,
            state: Mutex::new(state),
        })
    }

    /// Whether this node has a use for `publisher`'s publications of `name`.
    pub fn wanted(&self, name: &str, publisher: &PublicKey) -> bool {
        self.binding_publishers.contains(publisher)
            || self.policy.publishers_for(name).contains(publisher)
    }

    pub fn policy(&self) -> &NamePolicy {
        &self.policy
    }

    /// Takes in `run`, keeping what it adds in the home before holding it: returns the
    /// records added (none when all were held), or why the run is refused.
    pub fn take(
        &self,
        codebase: &Codebase,
        run: &ChainRun,
    ) -> Result<Vec<Signed<Publication>>, NodeError> {
        let mut state = self.state.lock().expect("mesh names poisoned");
        let key = (run.name().to_owned(), run.publisher());
        let mut chain = state.chains.get(&key).cloned().unwrap_or_default();
        let held = chain.records().len();
        chain
            .accept_run(run)
            .map_err(|e| NodeError::Trust(TrustStoreError::Refused(e)))?;
        let added = chain.records()[held..].to_vec();
        if added.is_empty() {
            return Ok(added);
        }
        codebase.keep_publications(&added)?;
        for record in &added {
            state.index(record);
        }
        state.chains.insert(key, chain);
        Ok(added)
    }

    /// `publisher`'s whole chain of `name`, if any is held.
    pub fn chain(&self, name: &str, publisher: &PublicKey) -> Option<ChainRun> {
        let state = self.state.lock().expect("mesh names poisoned");
        let chain = state.chains.get(&(name.to_owned(), *publisher))?;
        ChainRun::new(chain.records().to_vec()).ok()
    }

    /// Every whole chain held.
    pub fn chains(&self) -> Vec<ChainRun> {
        let state = self.state.lock().expect("mesh names poisoned");
        state
            .chains
            .values()
            .filter_map(|chain| ChainRun::new(chain.records().to_vec()).ok())
            .collect()
    }

    /// What `name` means as a mesh name: the latest publication of the first publisher
    /// the policy trusts for it whose chain is held; `None` when none is.
    pub fn believed(&self, name: &Name) -> Option<Believed> {
        let state = self.state.lock().expect("mesh names poisoned");
        self.policy
            .publishers_for(name.as_str())
            .iter()
            .find_map(|publisher| {
                let chain = state.chains.get(&(name.as_str().to_owned(), *publisher))?;
                let latest = chain.latest()?;
                Some(Believed {
                    name: name.clone(),
                    target: target_of(latest),
                    publisher: *publisher,
                    seq: latest.body().seq,
                    at_ms: latest.body().at_ms,
                })
            })
    }

    /// The believed publisher's whole chain of `name`, as a name's history: each
    /// publication an event numbered as the publisher numbered it.
    pub fn believed_history(&self, name: &Name) -> Option<Vec<NameEntry>> {
        let believed = self.believed(name)?;
        let chain = self.chain(name.as_str(), &believed.publisher)?;
        Some(
            chain
                .records()
                .iter()
                .map(|record| NameEntry {
                    seq: record.body().seq,
                    event: match target_of(record) {
                        Some(target) => NameEvent::Set(target),
                        None => NameEvent::Removed,
                    },
                    at_ms: record.body().at_ms,
                })
                .collect(),
        )
    }

    /// Every mesh name believed now that points somewhere, sorted by name.
    pub fn all_believed(&self) -> Vec<Believed> {
        let names: BTreeSet<String> = {
            let state = self.state.lock().expect("mesh names poisoned");
            state.chains.keys().map(|(name, _)| name.clone()).collect()
        };
        names
            .iter()
            .filter_map(|name| self.believed(&name.parse().ok()?))
            .filter(|believed| believed.target.is_some())
            .collect()
    }

    /// The publishers that published code of `module` (in any record held, current or
    /// not): what a binding's `publishers` is checked against.
    pub fn publishers_of(&self, module: &Hash) -> BTreeSet<PublicKey> {
        let state = self.state.lock().expect("mesh names poisoned");
        state.publishers.get(module).cloned().unwrap_or_default()
    }
}

fn target_of(record: &Signed<Publication>) -> Option<FunctionRef> {
    // A record's target was checked to be a reference when it was verified.
    record.body().target.as_deref()?.parse().ok()
}

impl Node {
    /// Signs, with the home's key named `key`, a publication of `name` pointing at the
    /// function `reference` resolves to here (or, with `None`, removing the name), the
    /// next of that key's chain of `name`; keeps it and spreads the chain over the mesh.
    /// Rolling back is publishing an earlier reference again.
    #[tracing::instrument(skip(self, reference))]
    pub fn publish_name(
        &self,
        name: &Name,
        reference: Option<&str>,
        key: &str,
    ) -> Result<Believed, NodeError> {
        let secret = TrustStore::new(self.home()).key(key)?;
        let publisher = secret.public();
        let target = reference.map(|r| self.resolve(r)).transpose()?;
        let latest = self
            .mesh_names
            .chain(name.as_str(), &publisher)
            .and_then(|chain| chain.records().last().cloned());
        let body = Publication {
            publisher,
            name: name.as_str().to_owned(),
            target: target.as_ref().map(FunctionRef::to_string),
            seq: latest.as_ref().map_or(1, |r| r.body().seq + 1),
            at_ms: now_ms(),
            previous: latest.as_ref().map(Signed::hash),
        };
        let refused = |e| NodeError::Trust(TrustStoreError::Refused(e));
        let record = Signed::sign(body, &secret).map_err(refused)?;
        let run = ChainRun::new(vec![record.clone()]).map_err(refused)?;
        self.mesh_names.take(&self.codebase, &run)?;
        tracing::info!(%name, seq = record.body().seq, %publisher, "name published");
        self.spread_chain(name.as_str(), &publisher);
        Ok(Believed {
            name: name.clone(),
            target,
            publisher,
            seq: record.body().seq,
            at_ms: record.body().at_ms,
        })
    }

    /// Takes in publications a peer sent: kept if this node has a use for their key
    /// (`MeshNames::wanted`) and they link to what is held; returns how many were new.
    pub fn receive_chain(&self, run: &ChainRun) -> Result<usize, NodeError> {
        if !self.mesh_names.wanted(run.name(), &run.publisher()) {
            tracing::debug!(
                name = run.name(),
                publisher = %run.publisher(),
                "not keeping publications of a key this node neither trusts for the name nor names in a binding"
            );
            return Ok(0);
        }
        let added = self.mesh_names.take(&self.codebase, run)?;
        if let Some(latest) = added.last() {
            tracing::info!(
                name = run.name(),
                publisher = %run.publisher(),
                seq = latest.body().seq,
                target = latest.body().target.as_deref().unwrap_or("(removed)"),
                "mesh name received"
            );
        }
        Ok(added.len())
    }

    /// The mesh names this node believes now, with who signed each.
    pub fn mesh_names(&self) -> Vec<Believed> {
        self.mesh_names.all_believed()
    }

    /// The publishers that signed publications of `module`'s code.
    pub(crate) fn publishers_of(&self, module: &Hash) -> BTreeSet<PublicKey> {
        self.mesh_names.publishers_of(module)
    }

    /// What `name` means as a trusted mesh name: from the chains held, else from the
    /// DHT (each publisher the policy trusts for it, in order). `None`: no trusted
    /// publisher publishes it, or the latest publication removed it.
    pub(crate) fn mesh_name(&self, name: &Name) -> Option<FunctionRef> {
        if let Some(believed) = self.mesh_names.believed(name) {
            return believed.target;
        }
        let link = self.mesh.get()?;
        for publisher in self.mesh_names.policy().publishers_for(name.as_str()) {
            let deadline = tokio::time::Instant::now() + DHT_LOOKUP;
            let found = link.block_on(link.mesh.find_chain(*publisher, name.as_str(), deadline));
            if let Some(run) = found {
                if let Err(e) = self.receive_chain(&run) {
                    tracing::info!(%name, %publisher, "refusing a chain the DHT gave: {e}");
                    continue;
                }
                return self.mesh_names.believed(name)?.target;
            }
        }
        None
    }

    /// The whole chain `run` is part of, as the DHT holds it.
    pub(crate) fn find_whole_chain(&self, run: &ChainRun) -> Option<ChainRun> {
        let link = self.mesh.get()?;
        let deadline = tokio::time::Instant::now() + DHT_LOOKUP;
        link.block_on(link.mesh.find_chain(run.publisher(), run.name(), deadline))
    }

    /// Spreads the whole chain of `publisher`'s publications of `name` over the mesh,
    /// when this node is on one.
    fn spread_chain(&self, name: &str, publisher: &PublicKey) {
        if let (Some(link), Some(chain)) = (self.mesh.get(), self.mesh_names.chain(name, publisher))
        {
            let mesh = link.mesh.clone();
            link.runtime
                .spawn(async move { mesh.publish_chain(chain).await });
        }
    }

    /// Spreads every chain held: at start, so that the DHT holds them while this node is
    /// up.
    pub(crate) fn spread_all_chains(&self) {
        if let Some(link) = self.mesh.get() {
            for chain in self.mesh_names.chains() {
                let mesh = link.mesh.clone();
                link.runtime
                    .spawn(async move { mesh.publish_chain(chain).await });
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
