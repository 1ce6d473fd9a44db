//! The node's operations.

use ciborium::Value;
use serde::Serialize;
use spore_core::{ExportName, FunctionRef, Hash, Manifest, Name, RefText};
use spore_runtime::{Invocation, Limits, LoadSource, Runtime, RuntimeConfig};
use spore_store::{Codebase, NameEntry, StoreError};

use crate::{Home, NodeError};

/// One home's codebase and runtime.
pub struct Node {
    home: Home,
    codebase: Codebase,
    runtime: Runtime,
}

/// What publishing a module did.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub manifest: Manifest,
    pub manifest_hash: Hash,
    /// False when the codebase already held these exact bytes.
    pub new: bool,
    /// Whether the module was compiled now or its compiled artifact was already cached.
    #[serde(serialize_with = "serialize_source")]
    pub compiled: LoadSource,
    /// Names set by this publication.
    pub names: Vec<(Name, FunctionRef)>,
}

/// A module and the names that point into it.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    pub manifest: Manifest,
    pub manifest_hash: Hash,
    pub names: Vec<(Name, FunctionRef)>,
}

impl Node {
    /// Opens the node whose state lives in `home`, creating the home if needed.
    pub fn open(home: Home, config: RuntimeConfig) -> Result<Node, NodeError> {
        std::fs::create_dir_all(home.root()).map_err(|source| NodeError::Home {
            path: home.root().display().to_string(),
            source,
        })?;
        let codebase = Codebase::open(&home.codebase_dir())?;
        let runtime = Runtime::new(codebase.clone(), config)?;
        Ok(Node {
            home,
            codebase,
            runtime,
        })
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
        Ok(Published {
            manifest_hash: manifest.hash(),
            manifest,
            new,
            compiled,
            names,
        })
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
    fn locate(&self, text: &str) -> Result<(Hash, Option<ExportName>), NodeError> {
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

    /// Runs a function with JSON-free CBOR arguments.
    pub fn invoke(
        &self,
        function: &FunctionRef,
        args: &[Value],
        limits: &Limits,
    ) -> Result<Invocation, NodeError> {
        Ok(self.runtime.invoke(function, args, limits)?)
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

fn serialize_source<S: serde::Serializer>(
    source: &LoadSource,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match source {
        LoadSource::Memory => "memory",
        LoadSource::Artifact => "cached",
        LoadSource::Compiled => "compiled",
    })
}
