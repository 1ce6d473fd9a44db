//! The node's operations.

use std::sync::Arc;

use ciborium::Value;
use serde::{Deserialize, Serialize};
use spore_core::{ExportName, FunctionRef, Hash, Manifest, Name, RefText};
use spore_runtime::{
    Bindings, CallEnv, CallStats, InvokeError, Limits, LoadSource, Runtime, RuntimeConfig,
};
use spore_store::{Codebase, NameEntry, StoreError};

use crate::bindings::{self, Shapes};
use crate::config::NodeConfig;
use crate::handle::NodeHandle;
use crate::{Home, NodeError, memo};

/// One home's codebase, runtime, configuration and ability bindings.
pub struct Node {
    home: Home,
    pub(crate) codebase: Codebase,
    pub(crate) runtime: Runtime,
    pub(crate) config: NodeConfig,
    pub(crate) bindings: Arc<Bindings>,
    shapes: Shapes,
    pub(crate) mesh: std::sync::OnceLock<crate::placement::MeshLink>,
}

/// How to run one call.
#[derive(Debug, Clone, Copy)]
pub struct InvokeOptions {
    pub limits: Limits,
    /// Whether a memoized result may be used (and a new one stored).
    pub memo: bool,
}

/// A finished call, run now or answered from the memo.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub function: FunctionRef,
    pub value: Value,
    pub memo: MemoUse,
    /// Where the time went, when the function ran.
    pub stats: Option<CallStats>,
    /// Whether the call had effects (then it was not memoized).
    pub effectful: bool,
}

/// What memoization did for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoUse {
    /// The result came from the memo; the function did not run.
    Hit,
    /// The function ran and its result was memoized.
    Stored,
    /// The function ran and its result was not memoized (effectful, too large, or
    /// memoization was off for this call).
    Skipped,
}

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
}

impl Node {
    /// Opens the node whose state lives in `home`, creating the home (and its default
    /// configuration) if needed.
    pub fn open(home: Home) -> Result<Arc<Node>, NodeError> {
        std::fs::create_dir_all(home.root()).map_err(|source| NodeError::Home {
            path: home.root().display().to_string(),
            source,
        })?;
        let config = NodeConfig::load_or_create(home.root())?;
        let codebase = Codebase::open(&home.codebase_dir())?;
        let runtime_config = RuntimeConfig {
            default_limits: Limits {
                deadline: config.timeout,
                memory_bytes: config.memory_bytes,
            },
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::new(codebase.clone(), runtime_config)?;
        let handle = NodeHandle::default();
        let bindings = Arc::new(bindings::build(&config, &codebase, &handle)?);
        let node = Arc::new(Node {
            home,
            shapes: bindings::shapes(&config),
            codebase,
            runtime,
            config,
            bindings,
            mesh: std::sync::OnceLock::new(),
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

    pub fn config_file(&self) -> &std::path::Path {
        &self.config.file
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Validates, stores and compiles a module. Naming it is optional: a module with
    /// one function gets `name` itself, a module with several gets `name.function` each.
    #[tracing::instrument(skip_all, fields(bytes = bytes.len()))]
    pub fn publish(&self, bytes: &[u8], name: Option<&Name>) -> Result<Published, NodeError> {
        let manifest = Manifest::derive(bytes)?;
        self.check_imports(&manifest)?;
        let new = self.codebase.put_module(bytes, &manifest)?;
        let compiled = self.runtime.precompile(&manifest.module)?;
        let mut names = Vec::new();
        if let Some(name) = name {
            for function in &manifest.functions {
                let full_name = if manifest.functions.len() == 1 {
                    name.clone()
                } else {
                    format!("{name}.{function}").parse()?
                };
                let target = FunctionRef::new(manifest.module, function.clone());
                self.codebase.set_name(&full_name, &target)?;
                names.push((full_name, target));
            }
        }
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
                Err(NodeError::Store(StoreError::NameNotFound(_))) => {
                    Ok((self.codebase.resolve_prefix(&prefix)?, None))
                }
                located => located,
            },
            RefText::Hash { prefix, export } => {
                Ok((self.codebase.resolve_prefix(&prefix)?, export))
            }
        }
    }

    fn locate_name(&self, name: &Name) -> Result<(Hash, Option<ExportName>), NodeError> {
        let entry = self
            .codebase
            .name(name)?
            .ok_or_else(|| StoreError::NameNotFound(name.clone()))?;
        let target = entry.target().expect("current names have targets").clone();
        if !self.codebase.has_module(&target.module)? {
            return Err(NodeError::DanglingName {
                name: name.clone(),
                target: target.to_string(),
            });
        }
        Ok((target.module, target.export))
    }

    pub fn manifest(&self, module: &Hash) -> Result<Manifest, NodeError> {
        Ok(self.codebase.manifest(module)?)
    }

    /// Runs a function with this node's bindings, or answers from the memo.
    pub fn invoke(
        &self,
        function: &FunctionRef,
        args: &[Value],
        options: &InvokeOptions,
    ) -> Result<Outcome, NodeError> {
        let env = CallEnv {
            bindings: self.bindings.clone(),
            depth: 0,
        };
        self.invoke_in(function, args, options, &env)
    }

    /// Runs a function in a given environment (a `call` or a handler's); pure functions
    /// are answered from, and recorded in, the memo.
    pub(crate) fn invoke_in(
        &self,
        function: &FunctionRef,
        args: &[Value],
        options: &InvokeOptions,
        env: &CallEnv,
    ) -> Result<Outcome, NodeError> {
        let manifest = self.runtime.manifest(&function.module)?;
        let function = FunctionRef::new(
            function.module,
            manifest.resolve_export(function.export.as_ref())?,
        );
        // Only modules that can do nothing but compute (or call) may be memoized; whether
        // a given run was pure is known only after it (`Invocation::effectful`).
        let no_imports = manifest.imports.is_empty();
        let memo_key = (options.memo
            && self.config.memo
            && manifest.imports.iter().all(|i| i.ability == "call"))
        .then(|| memo::key(&function, args))
        .flatten();
        if let Some(key) = &memo_key
            && let Some(entry) = self.codebase.memo_get(key)?
            && let Some(outcome) = memo::decode(&entry)
        {
            tracing::debug!(%function, "memo hit");
            return match outcome {
                Ok(value) => Ok(Outcome {
                    function,
                    value,
                    memo: MemoUse::Hit,
                    stats: None,
                    effectful: false,
                }),
                Err(error) => Err(NodeError::Invoke(InvokeError::Guest { function, error })),
            };
        }
        let result = self.runtime.invoke(&function, args, &options.limits, env);
        let remember = |outcome: Result<&Value, &Value>| -> Result<MemoUse, NodeError> {
            let Some(key) = &memo_key else {
                return Ok(MemoUse::Skipped);
            };
            match memo::encode(&outcome) {
                Some(entry) if entry.len() as u64 <= self.config.memo_max_result_bytes => {
                    self.codebase.memo_put(key, &entry)?;
                    Ok(MemoUse::Stored)
                }
                _ => Ok(MemoUse::Skipped),
            }
        };
        match result {
            Ok(invocation) => {
                let memo = if invocation.effectful {
                    MemoUse::Skipped
                } else {
                    remember(Ok(&invocation.value))?
                };
                Ok(Outcome {
                    function: invocation.function,
                    value: invocation.value,
                    memo,
                    stats: Some(invocation.stats),
                    effectful: invocation.effectful,
                })
            }
            // A returned error is as deterministic as a result, but only a module with no
            // imports at all is known to have been pure when it fails.
            Err(InvokeError::Guest { function, error }) => {
                if no_imports {
                    remember(Err(&error))?;
                }
                Err(NodeError::Invoke(InvokeError::Guest { function, error }))
            }
            Err(other) => Err(other.into()),
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

    pub fn name_history(&self, name: &Name) -> Result<Vec<NameEntry>, NodeError> {
        Ok(self.codebase.name_history(name)?)
    }

    /// Re-hashes every stored module; returns the ones that fail, with why.
    pub fn verify(&self) -> Result<(usize, Vec<(Hash, StoreError)>), NodeError> {
        let manifests = self.codebase.manifests()?;
        let failures = manifests
            .iter()
            .filter_map(|m| {
                self.codebase
                    .module_bytes(&m.module)
                    .err()
                    .map(|e| (m.module, e))
            })
            .collect();
        Ok((manifests.len(), failures))
    }
}
