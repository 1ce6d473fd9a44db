//! The node's operations.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spore_core::{
    Args, CallRequest, ExportName, FunctionRef, Hash, Manifest, Name, RefText, TraceId,
};
use spore_runtime::{Bindings, Compiler, Limits, LoadSource, Runtime, RuntimeConfig, Tiering};
use spore_store::{
    Codebase, GcReport, NameEntry, Removed, RepairReport, SalvageReport, StoreError, VerifyReport,
};

use crate::bindings::{self, Shapes};
use crate::config::NodeConfig;
use crate::handle::NodeHandle;
use crate::{Home, NodeError};

/// One home's codebase, runtime, configuration and ability bindings.
pub struct Node {
    home: Home,
    pub(crate) codebase: Codebase,
    pub(crate) runtime: Runtime,
    pub(crate) config: NodeConfig,
    pub(crate) bindings: Arc<Bindings>,
    shapes: Shapes,
    pub(crate) mesh: std::sync::OnceLock<crate::placement::MeshLink>,
    /// Who serves which abilities and who holds which module compiled, as placement
    /// last found them.
    pub(crate) placements: crate::placement_cache::PlacementCache,
    /// What each peer's forwarded calls may still cost here.
    pub(crate) peer_limits: Arc<crate::peer_limits::PeerLimits>,
    /// The mesh names held, and whose are believed.
    pub(crate) mesh_names: crate::mesh_names::MeshNames,
    pub(crate) metrics: crate::metrics::Metrics,
    /// The bindings each peer's forwarded calls may use (`host.rs`).
    pub(crate) peer_bindings: std::sync::Mutex<PeerBindings>,
    /// What this home's names resolved to, at the codebase's names generation then.
    resolved_names: std::sync::Mutex<ResolvedNames>,
}

/// Each name resolved here, with the [`Codebase::names_generation`] it was read at: a
/// route resolves its name on every request, and reading it from the index each time
/// cost about a tenth of a routed request (perf, `docs/performance.md`).
type ResolvedNames = std::collections::HashMap<Name, (u64, Hash, Option<ExportName>)>;

/// The bindings kept for each peer, with the roles they were built for.
pub(crate) type PeerBindings =
    std::collections::HashMap<spore_mesh::PeerId, (Vec<String>, Arc<Bindings>)>;

/// One ability as this node knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbilityInfo {
    pub ability: String,
    pub operations: Vec<String>,
    /// What serves it here; `None` when it is known (so modules using it can be
    /// published) but not bound on this node.
    pub provider: Option<String>,
}

/// What publishing a module did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    pub manifest: Manifest,
    pub manifest_hash: Hash,
    /// False when the codebase already held these exact bytes.
    pub new: bool,
    /// Whether the module was compiled now or its compiled artifact was already cached.
    pub compiled: LoadSource,
    /// Names set by this publication.
    pub names: Vec<(Name, FunctionRef)>,
}

/// A module and the names that point into it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub manifest: Manifest,
    pub manifest_hash: Hash,
    pub names: Vec<(Name, FunctionRef)>,
    /// Its functions' signatures, when it carries them (`spec/abi.md`); given by
    /// `inspect`, not by listings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<spore_core::signature::Signature>,
}

/// How a process uses its node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Where modules are compiled. A program (the `spore` binary itself) can be stopped
    /// at the compile limits; compiling in this process cannot.
    pub compiler: Compiler,
    pub role: Role,
}

/// How many calls a process runs at once, which sizes its instance pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A command (`spore invoke`) runs one call and the calls it nests, one at a time:
    /// `limits.call_depth` + 2 instance slots (the call, each nested call, a handler).
    Command,
    /// A running node serves many calls at once: `limits.instances` slots.
    Server,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            compiler: Compiler::InProcess,
            role: Role::Server,
        }
    }
}

impl Node {
    /// Opens the node whose state lives in `home`, creating the home (and its default
    /// configuration) if needed; it compiles in this process and serves calls at once.
    pub fn open(home: Home) -> Result<Arc<Node>, NodeError> {
        Node::open_with(home, NodeOptions::default())
    }

    /// [`Node::open`], for a process that uses its node as `options` say.
    pub fn open_with(home: Home, options: NodeOptions) -> Result<Arc<Node>, NodeError> {
        std::fs::create_dir_all(home.root()).map_err(|source| NodeError::Home {
            path: home.root().display().to_string(),
            source,
        })?;
        let config = NodeConfig::load_or_create(home.root())?;
        let codebase = Codebase::open_with(
            &home.codebase_dir(),
            &spore_store::OpenOptions {
                memo_max_bytes: config.memo_max_bytes,
                ..Default::default()
            },
        )?;
        let runtime_config = RuntimeConfig {
            default_limits: Limits {
                deadline: config.timeout,
                memory_bytes: config.memory_bytes,
            },
            max_memory_bytes: config.max_memory_bytes,
            max_instances: match options.role {
                Role::Command => config.max_call_depth.saturating_add(2),
                Role::Server => config.instances,
            },
            compiler: options.compiler,
            compile_limits: config.compile,
            // A command exits after its call: a background compile would die with it, and
            // every later command would start it again.
            tiering: match options.role {
                Role::Server if config.tiered => Tiering::Tiered,
                Role::Server | Role::Command => Tiering::OptimizedOnly,
            },
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::new(codebase.clone(), runtime_config)?;
        let handle = NodeHandle::default();
        let bindings = Arc::new(bindings::build(&config, &codebase, &handle)?);
        let peer_limits = crate::peer_limits::PeerLimits::new(config.forwarded);
        let binding_publishers = config
            .abilities
            .values()
            .flat_map(|ability| ability.publishers.iter().copied())
            .collect();
        let mesh_names = crate::mesh_names::MeshNames::load(
            &codebase,
            config.names.clone(),
            binding_publishers,
        )?;
        let placements = crate::placement_cache::PlacementCache::new(config.placement_cache_ttl);
        let node = Arc::new(Node {
            home,
            shapes: bindings::shapes(&config),
            codebase,
            runtime,
            config,
            bindings,
            mesh: std::sync::OnceLock::new(),
            placements,
            peer_limits,
            mesh_names,
            metrics: crate::metrics::Metrics::default(),
            peer_bindings: Default::default(),
            resolved_names: Default::default(),
        });
        handle.set(&node);
        Ok(node)
    }

    /// The bindings in force for functions run on this node.
    pub fn bindings(&self) -> &Arc<Bindings> {
        &self.bindings
    }

    /// Every ability this node knows, with what serves it here.
    pub fn abilities(&self) -> Vec<AbilityInfo> {
        self.shapes
            .iter()
            .map(|(ability, operations)| AbilityInfo {
                ability: ability.clone(),
                operations: operations.iter().cloned().collect(),
                provider: self.bindings.get(ability).map(|p| p.describe()),
            })
            .collect()
    }

    /// What the node counts, for `/metrics`.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// How many times each binding's provider process has been restarted.
    pub fn provider_restarts(&self) -> Vec<(String, u64)> {
        self.bindings
            .iter()
            .filter_map(|(ability, provider)| {
                let restarts = provider.restarts();
                (restarts > 0).then(|| (ability.to_owned(), restarts))
            })
            .collect()
    }

    /// The configuration in force (read when the node was opened).
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn config_file(&self) -> &std::path::Path {
        &self.config.file
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Validates, compiles and stores a module. Naming it is optional: a module with one
    /// function gets `name` itself, a module with several gets `name.function` each.
    ///
    /// Nothing is stored unless everything succeeds: the module is checked against
    /// `[limits.module]`, validated, its names formed and it is compiled first (a refusal
    /// stores nothing), then the module, its manifest and all its names are stored in one
    /// step.
    #[tracing::instrument(skip_all, fields(bytes = bytes.len()))]
    pub fn publish(&self, bytes: &[u8], name: Option<&Name>) -> Result<Published, NodeError> {
        let manifest = self.derive(bytes)?;
        self.check_imports(&manifest)?;
        let mut names = Vec::new();
        if let Some(name) = name {
            for function in manifest.function_names() {
                let full_name = if manifest.functions.len() == 1 {
                    name.clone()
                } else {
                    format!("{name}.{function}").parse()?
                };
                names.push((
                    full_name,
                    FunctionRef::new(manifest.module, function.clone()),
                ));
            }
        }
        // Compiled from the bytes in hand, by the engine that will run it and within
        // `[limits.compile]`: a module it refuses is never stored.
        let compiled = self.runtime.compile_module(&manifest, bytes)?;
        let new = self.codebase.publish(bytes, &manifest, &names)?;
        tracing::info!(hash = %manifest.module, new, "published");
        if let Some(link) = self.mesh.get() {
            let (mesh, hash) = (link.mesh.clone(), manifest.module);
            link.runtime.spawn(async move { mesh.announce(hash).await });
        }
        Ok(Published {
            manifest_hash: manifest.hash(),
            manifest,
            new,
            compiled,
            names,
        })
    }

    /// The largest module this node stores (`[limits.module] max_bytes`): nor does it
    /// fetch a larger one from a peer.
    pub fn max_module_bytes(&self) -> u64 {
        self.config.module.max_bytes
    }

    /// The manifest of a module within this node's `[limits.module]`, checked before
    /// validation so that an oversized module costs nothing to refuse.
    pub(crate) fn derive(&self, bytes: &[u8]) -> Result<Manifest, NodeError> {
        self.config
            .module
            .check(bytes)
            .map_err(|over| NodeError::ModuleLimit {
                over,
                config: self.config.file.display().to_string(),
            })?;
        Ok(Manifest::derive(bytes)?)
    }

    /// Refuses imports that name no ability or operation this node knows.
    fn check_imports(&self, manifest: &Manifest) -> Result<(), NodeError> {
        for import in &manifest.imports {
            let known = self.shapes.get(&import.ability);
            if !known.is_some_and(|operations| operations.contains(&import.operation)) {
                return Err(NodeError::UnknownImport {
                    import: format!("{}.{}", import.ability, import.operation),
                    ability_known: known.is_some(),
                    config: self.config.file.display().to_string(),
                });
            }
        }
        Ok(())
    }

    /// The exact function a person's reference means, its export resolved.
    pub fn resolve(&self, text: &str) -> Result<FunctionRef, NodeError> {
        let (module, export) = self.locate(text)?;
        let manifest = self.codebase.manifest(&module)?;
        let export = manifest.resolve_export(export.as_ref())?;
        Ok(FunctionRef::new(module, export))
    }

    /// The module a reference points into, and the export it names if it names one.
    /// A text that is both a valid name and a valid prefix is the name when it exists.
    pub(crate) fn locate(&self, text: &str) -> Result<(Hash, Option<ExportName>), NodeError> {
        match text.parse::<RefText>()? {
            RefText::Name(name) => self.locate_name(&name),
            RefText::NameOrHash(name, prefix) => match self.locate_name(&name) {
                Err(NodeError::Store(StoreError::NameNotFound { .. })) => {
                    Ok((self.codebase.resolve_prefix(&prefix)?, None))
                }
                located => located,
            },
            RefText::Hash { prefix, export } => {
                Ok((self.codebase.resolve_prefix(&prefix)?, export))
            }
        }
    }

    /// A name of this home first, else a trusted mesh name (whose module may still be
    /// on other nodes only: calling it fetches it).
    fn locate_name(&self, name: &Name) -> Result<(Hash, Option<ExportName>), NodeError> {
        let generation = self.codebase.names_generation();
        if let Some((seen, module, export)) = self.resolved_names().get(name)
            && *seen == generation
        {
            return Ok((*module, export.clone()));
        }
        if let Some((module, export)) = self.locate_name_in_codebase(name)? {
            let mut resolved = self.resolved_names();
            // Names are few, but a caller may try any text: keep the map bounded.
            if resolved.len() >= 4096 {
                resolved.clear();
            }
            resolved.insert(name.clone(), (generation, module, export.clone()));
            return Ok((module, export));
        }
        match self.mesh_name(name) {
            Some(target) => Ok((target.module, target.export)),
            None => Err(StoreError::name_not_found(name).into()),
        }
    }

    fn resolved_names(&self) -> std::sync::MutexGuard<'_, ResolvedNames> {
        self.resolved_names.lock().expect("resolved names poisoned")
    }

    /// Where `name` of this home points, if it does, its module here.
    fn locate_name_in_codebase(
        &self,
        name: &Name,
    ) -> Result<Option<(Hash, Option<ExportName>)>, NodeError> {
        let local = self.codebase.name(name)?;
        let Some(target) = local.as_ref().and_then(|entry| entry.target()).cloned() else {
            return Ok(None);
        };
        if !self.codebase.has_module(&target.module)? {
            return Err(NodeError::DanglingName {
                name: name.clone(),
                target: target.to_string(),
            });
        }
        Ok(Some((target.module, target.export)))
    }

    /// [`Node::function_ref`] when it needs no read of the codebase: a full hash, or a
    /// name of this home resolved before and unchanged since. `None` otherwise.
    pub fn known_function_ref(&self, text: &str) -> Option<FunctionRef> {
        match text.parse::<RefText>().ok()? {
            RefText::Hash { prefix, export } => Some(FunctionRef {
                module: prefix.as_full()?,
                export,
            }),
            RefText::Name(name) => {
                let resolved = self.resolved_names();
                let (seen, module, export) = resolved.get(&name)?;
                (*seen == self.codebase.names_generation()).then(|| FunctionRef {
                    module: *module,
                    export: export.clone(),
                })
            }
            RefText::NameOrHash(..) => None,
        }
    }

    /// The signatures module `module` carries (`spec/abi.md`), fetching it from the mesh
    /// by `deadline` when this node does not hold it.
    pub fn signatures(
        &self,
        module: &Hash,
        deadline: Instant,
    ) -> Result<Vec<spore_core::signature::Signature>, NodeError> {
        self.fetch(module, deadline, &mut spore_core::Path::new())?;
        Ok(spore_core::signature::signatures(
            &self.codebase.module_bytes(module)?,
        ))
    }

    pub fn manifest(&self, module: &Hash) -> Result<Manifest, NodeError> {
        Ok(self.codebase.manifest(module)?)
    }

    /// What a person typed, resolved once into the function a call names: a name gives
    /// its target, a hash prefix the one module here it starts, and a full hash itself,
    /// whether this node holds the module or not (calling it fetches it). A 64-hex text
    /// is always a hash (`spec/hashes.md`): names cannot look like one.
    pub fn function_ref(&self, text: &str) -> Result<FunctionRef, NodeError> {
        if let Ok(RefText::Hash { prefix, export }) = text.parse::<RefText>()
            && let Some(module) = prefix.as_full()
        {
            return Ok(FunctionRef { module, export });
        }
        let (module, export) = self.locate(text)?;
        Ok(FunctionRef { module, export })
    }

    /// A call of `function` with `args` as this node makes one by default: its deadline
    /// and memory cap from the configuration, memoizable, placed anywhere, with a fresh
    /// trace id.
    pub fn request(&self, function: FunctionRef, args: Args) -> CallRequest {
        let limits = self.default_limits();
        CallRequest::new(
            function,
            args,
            Instant::now() + limits.deadline,
            limits.memory_bytes,
            new_trace(),
        )
    }

    /// The abilities `function` of `manifest` can reach: what must be bound for it to
    /// run, what decides whether it is pure, and where it runs.
    pub(crate) fn reach<'m>(&self, manifest: &'m Manifest, function: &FunctionRef) -> Vec<&'m str> {
        match manifest.resolve_export(function.export.as_ref()) {
            Ok(export) => manifest.reach(&export).iter().map(String::as_str).collect(),
            // A reference to no function reaches nothing; running it fails by name.
            Err(_) => Vec::new(),
        }
    }

    /// Forgets every memoized result; returns how many there were.
    pub fn clear_memo(&self) -> Result<usize, NodeError> {
        Ok(self.codebase.memo_clear()?)
    }

    /// The limits a call gets when it does not ask for others.
    pub fn default_limits(&self) -> Limits {
        self.runtime.config().default_limits
    }

    /// Every module in the codebase with the names that point into it.
    pub fn modules(&self) -> Result<Vec<ModuleInfo>, NodeError> {
        let names = self.codebase.names()?;
        Ok(self
            .codebase
            .manifests()?
            .into_iter()
            .map(|manifest| {
                let names = names
                    .iter()
                    .filter_map(|(name, entry)| {
                        let target = entry.target()?;
                        (target.module == manifest.module).then(|| (name.clone(), target.clone()))
                    })
                    .collect();
                ModuleInfo {
                    manifest_hash: manifest.hash(),
                    manifest,
                    names,
                    signatures: Vec::new(),
                }
            })
            .collect())
    }

    /// The module a reference points into (a name, a prefix, or a function reference).
    pub fn inspect(&self, text: &str) -> Result<ModuleInfo, NodeError> {
        let (module, _) = self.locate(text)?;
        let manifest = self.codebase.manifest(&module)?;
        Ok(ModuleInfo {
            manifest_hash: manifest.hash(),
            names: self.codebase.names_for_module(&module)?,
            signatures: spore_core::signature::signatures(&self.codebase.module_bytes(&module)?),
            manifest,
        })
    }

    /// Points `name` at the function `target` refers to; it must exist here.
    pub fn set_name(&self, name: &Name, target: &str) -> Result<NameEntry, NodeError> {
        let target = self.resolve(target)?;
        Ok(self.codebase.set_name(name, &target)?)
    }

    pub fn remove_name(&self, name: &Name) -> Result<NameEntry, NodeError> {
        Ok(self.codebase.remove_name(name)?)
    }

    pub fn names(&self) -> Result<Vec<(Name, NameEntry)>, NodeError> {
        Ok(self.codebase.names()?)
    }

    /// The history of a name of this home, else of the mesh name it believes: its
    /// publisher's chain.
    pub fn name_history(&self, name: &Name) -> Result<Vec<NameEntry>, NodeError> {
        match self.codebase.name_history(name) {
            Err(StoreError::NameNotFound { .. }) => self
                .mesh_names
                .believed_history(name)
                .ok_or_else(|| StoreError::name_not_found(name).into()),
            history => Ok(history?),
        }
    }

    /// Checks every stored record (`Codebase::verify`).
    pub fn verify(&self) -> Result<VerifyReport, NodeError> {
        Ok(self.codebase.verify()?)
    }

    /// Drops every damaged record and says what was lost (`Codebase::repair`).
    pub fn repair(&self) -> Result<RepairReport, NodeError> {
        Ok(self.codebase.repair()?)
    }

    /// Removes what nothing refers to (`Codebase::gc`).
    pub fn gc(&self) -> Result<GcReport, NodeError> {
        Ok(self.codebase.gc()?)
    }

    /// Removes the module `reference` points into; refused while names point at it,
    /// unless `force`, which removes those names too.
    pub fn remove_module(&self, reference: &str, force: bool) -> Result<Removed, NodeError> {
        let (module, _) = self.locate(reference)?;
        let removed = self.codebase.remove_module(&module, force)?;
        self.runtime.evict_all();
        Ok(removed)
    }
}

/// Replaces the index of `home`'s codebase, which cannot be opened, with one holding
/// everything that can still be read (`Codebase::salvage`). No node may have it open.
pub fn salvage_home(home: &Home) -> Result<SalvageReport, NodeError> {
    Ok(Codebase::salvage(
        &home.codebase_dir(),
        &spore_store::OpenOptions::default(),
    )?)
}

/// A fresh trace id, unique across nodes and calls: a random value drawn once per
/// process, plus a counter. (Drawing 16 random bytes for every call cost a system call
/// per call, a measurable part of a memo hit.)
pub(crate) fn new_trace() -> TraceId {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static BASE: OnceLock<u128> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        let mut bytes = [0u8; 16];
        // Without the OS generator, ids are still unique within this process.
        let _ = getrandom::fill(&mut bytes);
        u128::from_le_bytes(bytes)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    TraceId::from_bytes(base.wrapping_add(u128::from(n)).to_le_bytes())
}
