//! Turning the configuration's `[abilities.*]` tables into providers and shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use spore_abilities::{
    BUILTINS, ClockProvider, ConfigProvider, HttpProvider, HttpSettings, KvProvider, KvSettings,
    LogProvider, ProcessProvider, ProcessSettings, RandomProvider,
};
use spore_runtime::{Bindings, Provider};
use spore_store::Codebase;

use crate::NodeError;
use crate::call_ability::CallProvider;
use crate::config::{AbilityConfig, NodeConfig, ProviderConfig};
use crate::handle::NodeHandle;
use crate::handler::HandlerProvider;

/// Each known ability and its operations: the built-ins and the configuration's
/// declarations. Publishing refuses imports outside these.
pub type Shapes = BTreeMap<String, BTreeSet<String>>;

pub(crate) fn shapes(config: &NodeConfig) -> Shapes {
    let mut shapes: Shapes = BUILTINS
        .iter()
        .map(|builtin| {
            (
                builtin.name.to_owned(),
                builtin.operations.iter().map(|o| o.to_string()).collect(),
            )
        })
        .collect();
    for (ability, declared) in &config.abilities {
        if !declared.operations.is_empty() {
            shapes.insert(
                ability.clone(),
                declared.operations.iter().cloned().collect(),
            );
        }
    }
    shapes
}

pub(crate) fn build(
    config: &NodeConfig,
    codebase: &Codebase,
    node: &NodeHandle,
) -> Result<Bindings, NodeError> {
    let mut bindings = Bindings::new(config.file.display().to_string());
    let builder = Builder {
        shapes: shapes(config),
        config,
        codebase,
        node,
    };
    for (ability, table) in &config.abilities {
        if let Some(provider) = builder.provider(ability, table)? {
            bindings.bind(ability.clone(), provider);
        }
    }
    Ok(bindings)
}

struct Builder<'a> {
    /// The operations of every known ability, for provider processes to serve.
    shapes: Shapes,
    config: &'a NodeConfig,
    codebase: &'a Codebase,
    node: &'a NodeHandle,
}

impl Builder<'_> {
    fn provider(
        &self,
        ability: &str,
        table: &AbilityConfig,
    ) -> Result<Option<Arc<dyn Provider>>, NodeError> {
        let Some(provider) = &table.provider else {
            return Ok(None);
        };
        let invalid = |message: String| NodeError::Binding {
            file: self.config.file.display().to_string(),
            ability: ability.to_owned(),
            message,
        };
        let provider: Arc<dyn Provider> = match provider {
            ProviderConfig::Log => Arc::new(LogProvider),
            ProviderConfig::Clock => Arc::new(ClockProvider),
            ProviderConfig::Random => Arc::new(RandomProvider),
            ProviderConfig::Config => Arc::new(ConfigProvider::new(self.config.values.clone())),
            ProviderConfig::Call => Arc::new(CallProvider {
                node: self.node.clone(),
                max_depth: self.config.max_call_depth,
            }),
            ProviderConfig::Kv {
                namespace,
                max_value_bytes,
            } => Arc::new(KvProvider::new(
                self.codebase,
                KvSettings {
                    namespace: namespace.clone(),
                    max_value_bytes: *max_value_bytes,
                    max_namespace_bytes: self.config.kv_limits.max_namespace_bytes,
                    max_call_bytes: self.config.kv_limits.max_call_bytes,
                },
            )?),
            ProviderConfig::Http {
                allow,
                timeout,
                max_response_bytes,
            } => Arc::new(
                HttpProvider::new(HttpSettings {
                    allow: allow.clone(),
                    timeout: *timeout,
                    max_response_bytes: *max_response_bytes,
                })
                .map_err(|e| invalid(e.to_string()))?,
            ),
            ProviderConfig::Process {
                command,
                cwd,
                env,
                timeout,
            } => ProcessProvider::on_first_use(ProcessSettings {
                ability: ability.to_owned(),
                operations: self
                    .shapes
                    .get(ability)
                    .map(|ops| ops.iter().cloned().collect())
                    .unwrap_or_default(),
                command: command.clone(),
                cwd: cwd.clone(),
                env: env.clone(),
                timeout: *timeout,
            }),
            ProviderConfig::Handler { function, uses } => {
                let uses = uses
                    .iter()
                    .map(|(inner, table)| {
                        Ok((
                            inner.clone(),
                            self.provider(inner, table)?.expect("validated: uses bind"),
                        ))
                    })
                    .collect::<Result<_, NodeError>>()?;
                Arc::new(HandlerProvider::new(
                    self.node.clone(),
                    ability.to_owned(),
                    function.clone(),
                    uses,
                ))
            }
            ProviderConfig::Gossip => Arc::new(crate::topic_gossip::GossipTopicProvider {
                node: self.node.clone(),
            }),
            ProviderConfig::Nats(settings) => Arc::new(
                spore_abilities::topic::nats::NatsTopicProvider::new(settings.clone())
                    .map_err(|e| invalid(format!("cannot start the NATS client: {e}")))?,
            ),
        };
        Ok(Some(provider))
    }
}
