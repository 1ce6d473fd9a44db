//! The node's configuration file, `config.toml` in the home (docs/configuration.md).
//!
//! Parsing is strict: unknown keys, keys that do not apply to a provider, and bad values
//! are errors that name the file, the line and the key. A fresh home gets a file with
//! the default bindings, so what is in force is always written down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod defaults;
mod locate;
mod template;

use locate::whole_file;
use spore_core::manifest::ModuleLimits;
use spore_runtime::CompileLimits;
pub use template::default_config;

/// A problem in the configuration file, located.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}:{column}: {key}{message}", file.display(), key = if key.is_empty() { String::new() } else { format!("`{key}`: ") })]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The dotted key the problem is at (empty when the file does not parse at all).
    pub key: String,
    pub message: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub file: PathBuf,
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub max_call_depth: u32,
    /// The most linear memory any call may have here; sizes each instance slot.
    pub max_memory_bytes: u64,
    /// Instance slots of a running node.
    pub instances: u32,
    /// What a module may be, checked before it is compiled.
    pub module: ModuleLimits,
    /// What compiling a module may cost.
    pub compile: CompileLimits,
    /// `limits.compile.tiered`: a running node serves a module's first calls with Winch's
    /// code while Cranelift compiles it.
    pub tiered: bool,
    pub memo: bool,
    pub memo_max_result_bytes: u64,
    /// The most bytes of memoized results kept; the oldest go first beyond it.
    pub memo_max_bytes: u64,
    /// `[placement] cache_ttl`: how long placement reuses the peers it found serving
    /// abilities, and which peers hold a module compiled; zero remembers nothing.
    pub placement_cache_ttl: Duration,
    /// What `kv` may store, whichever binding it goes through.
    pub kv_limits: KvLimits,
    /// What a call a peer forwards here may have at most, whatever it asks for.
    pub forwarded: ForwardedLimits,
    /// Values served by the `config` ability.
    pub values: BTreeMap<String, ciborium::Value>,
    /// Every ability the node declares or binds, by name.
    pub abilities: BTreeMap<String, AbilityConfig>,
    /// `[trust.names]`: whose publications of which mesh names this node believes.
    pub names: spore_core::trust::NamePolicy,
    /// `[[routes]]`: what the node serves with `--http` (`spec/http.md`).
    pub routes: crate::routes::Routes,
    /// `[[schedules]]`: what a running node calls on its own.
    pub schedules: Vec<crate::schedules::Schedule>,
    /// `[[subscriptions]]`: the functions a running node calls with what is published
    /// on a topic.
    pub subscriptions: Vec<crate::subscriptions::Subscription>,
}

/// `[limits.forwarded]`: the most a call forwarded by a peer gets on this node. A longer
/// deadline or a larger memory cap is cut to these; larger arguments are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedLimits {
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub args_bytes: u64,
    /// What one peer may cost (`crate::peer_limits`).
    pub per_peer_calls: u32,
    pub per_peer_calls_per_second: u32,
    pub per_peer_module_bytes: u64,
    pub per_peer_log_bytes: u64,
}

/// `[limits.kv]`: what `kv` may store, for every `kv` binding of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// The most bytes (keys plus values) one namespace may hold.
    pub max_namespace_bytes: u64,
    /// The most bytes (keys plus values) one call may write.
    pub max_call_bytes: u64,
}

/// One `[abilities.NAME]` table.
#[derive(Debug, Clone)]
pub struct AbilityConfig {
    /// Operations declared for a custom ability (empty for built-ins, whose shapes are fixed).
    pub operations: Vec<String>,
    /// The provider, when the ability is bound here (a declaration alone binds nothing).
    pub provider: Option<ProviderConfig>,
    /// Which peers' forwarded calls may use this binding (`callers`); none by default
    /// (`docs/security.md`). Calls made on the node itself are not restricted.
    pub callers: Vec<CallerRule>,
    /// Whose code may use this binding for a peer (`publishers`): when set, a call a
    /// peer forwards may use it only if its module was published, signed, by one of
    /// these keys. Empty: no such condition.
    pub publishers: Vec<spore_core::trust::PublicKey>,
}

/// One entry of an ability's `callers`: which peers of the mesh may have calls that use
/// the ability run here on their behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerRule {
    /// `"*"`: every member of the mesh.
    AnyMember,
    /// `"role:NAME"`: members whose certificate gives them the role.
    Role(String),
    /// `"peer:PEER_ID"`: that node.
    Peer(spore_mesh::PeerId),
}

impl CallerRule {
    /// Whether this rule admits the member `peer` holding `roles`.
    pub fn admits(&self, peer: &spore_mesh::PeerId, roles: &[String]) -> bool {
        match self {
            CallerRule::AnyMember => true,
            CallerRule::Role(role) => roles.contains(role),
            CallerRule::Peer(allowed) => allowed == peer,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Log,
    Clock,
    Random,
    Config,
    Call,
    Kv {
        namespace: String,
        max_value_bytes: u64,
    },
    Http {
        allow: Vec<String>,
        timeout: Duration,
        max_response_bytes: u64,
    },
    Process {
        command: Vec<String>,
        cwd: Option<PathBuf>,
        env: Vec<(String, String)>,
        timeout: Duration,
    },
    Handler {
        function: String,
        uses: BTreeMap<String, AbilityConfig>,
    },
    /// `topic` across the mesh over gossip.
    Gossip,
    /// `topic` on NATS JetStream.
    Nats(spore_abilities::topic::nats::NatsSettings),
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Log => "log",
            ProviderConfig::Clock => "clock",
            ProviderConfig::Random => "random",
            ProviderConfig::Config => "config",
            ProviderConfig::Call => "call",
            ProviderConfig::Kv { .. } => "kv",
            ProviderConfig::Http { .. } => "http",
            ProviderConfig::Process { .. } => "process",
            ProviderConfig::Handler { .. } => "handler",
            ProviderConfig::Gossip => "gossip",
            ProviderConfig::Nats(_) => "nats",
        }
    }
}

impl NodeConfig {
    /// Reads `config.toml` in `home`, writing the defaults first if there is none.
    pub fn load_or_create(home: &Path) -> Result<NodeConfig, ConfigError> {
        let file = home.join("config.toml");
        if !file.exists() {
            crate::home::create_private_file(&file, default_config().as_bytes()).map_err(|e| {
                whole_file(
                    &file,
                    format!("cannot write the default configuration: {e}"),
                )
            })?;
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| whole_file(&file, format!("cannot read: {e}")))?;
        Self::parse(&file, &text)
    }

    /// Parses and validates the text of a configuration file.
    pub fn parse(file: &Path, text: &str) -> Result<NodeConfig, ConfigError> {
        locate::parse(file, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::parse(Path::new("/home/x/config.toml"), text)
    }

    #[test]
    fn routes_and_schedules_are_read_and_their_mistakes_located() {
        let config = parse(
            "[[routes]]\nmethod = \"GET\"\npath = \"/orders/{id}\"\nfunction = \"orders.get\"\nmax_body = \"4KiB\"\n\
             [[schedules]]\ncron = \"*/5 * * * *\"\nfunction = \"links.expire\"\nargs = [30]\n\
             [[schedules]]\nevery = \"30s\"\nfunction = \"stats.roll\"\n",
        )
        .unwrap();
        let route = config.routes.iter().next().unwrap();
        assert_eq!((route.method_text(), route.max_body_bytes), ("GET", 4096));
        assert_eq!(route.timeout, defaults::TIMEOUT);
        let whens: Vec<String> = config.schedules.iter().map(|s| s.when.describe()).collect();
        assert_eq!(whens, ["*/5 * * * *", "every 30s"]);
        assert_eq!(
            config.schedules[0].args,
            [ciborium::Value::Integer(30.into())]
        );

        for (text, key, why) in [
            (
                "[[schedules]]\nfunction = \"f\"\n",
                "schedules[0]",
                "either `cron`",
            ),
            (
                "[[schedules]]\nfunction = \"f\"\ncron = \"* * *\"\n",
                "schedules[0].cron",
                "five fields",
            ),
            (
                "[[schedules]]\nfunction = \"f\"\nevery = \"10ms\"\n",
                "schedules[0].every",
                "at least 1s",
            ),
            (
                "[[routes]]\nmethod = \"get\"\npath = \"/\"\nfunction = \"f\"\n",
                "routes[0].method",
                "in capitals",
            ),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a/{b\"\nfunction = \"f\"\n",
                "routes[0].path",
                "takes the whole segment",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.key, key, "{text}: {error}");
            assert!(error.message.contains(why), "{text}: {error}");
            assert!(error.line >= 1);
        }
    }

    #[test]
    fn the_default_file_binds_the_everyday_abilities() {
        let config = parse(&default_config()).unwrap();
        let bound: Vec<(&str, &str)> = config
            .abilities
            .iter()
            .map(|(name, a)| (name.as_str(), a.provider.as_ref().unwrap().kind()))
            .collect();
        assert_eq!(
            bound,
            [
                ("call", "call"),
                ("clock", "clock"),
                ("config", "config"),
                ("kv", "kv"),
                ("log", "log"),
                ("random", "random")
            ]
        );
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.memory_bytes, 64 << 20);
        assert_eq!(config.max_call_depth, 8);
        assert!(config.memo);
        assert_eq!(config.max_memory_bytes, defaults::MAX_MEMORY);
        assert_eq!(config.instances, defaults::INSTANCES);
        assert_eq!(config.module, defaults::MODULE);
        assert_eq!(config.compile, defaults::COMPILE);
        // The file a fresh home gets says the same as a file that says nothing.
        assert_eq!(parse("").unwrap().module, config.module);
        assert_eq!(parse("").unwrap().compile, config.compile);
        assert_eq!(config.memo_max_bytes, defaults::MEMO_MAX);
        assert_eq!(config.placement_cache_ttl, defaults::PLACEMENT_CACHE_TTL);
        assert_eq!(
            parse("").unwrap().placement_cache_ttl,
            config.placement_cache_ttl
        );
        assert_eq!(
            config.kv_limits,
            KvLimits {
                max_namespace_bytes: defaults::KV_MAX_NAMESPACE,
                max_call_bytes: defaults::KV_MAX_CALL
            }
        );
    }

    #[test]
    fn module_and_compile_limits_are_read_and_calls_may_not_outgrow_max_memory() {
        let config = parse(
            "[limits]\nmax_memory = \"1GiB\"\ninstances = 8\n[limits.module]\nmax_bytes = \"1MiB\"\nmax_locals = 7\n[limits.compile]\ntimeout = \"2s\"\nmemory = \"512MiB\"\n",
        )
        .unwrap();
        assert_eq!(config.max_memory_bytes, 1 << 30);
        assert_eq!(config.instances, 8);
        assert_eq!(config.module.max_bytes, 1 << 20);
        assert_eq!(config.module.max_locals, 7);
        assert_eq!(config.module.max_exports, defaults::MODULE.max_exports);
        assert_eq!(config.compile.time, Duration::from_secs(2));
        assert_eq!(config.compile.memory_bytes, 512 << 20);
        assert!(config.tiered, "tiered compilation is on by default");
        assert!(!parse("[limits.compile]\ntiered = false\n").unwrap().tiered);
        let error = parse("[limits.compile]\ntimeout = \"2s\"\ntiered = \"no\"\n").unwrap_err();
        assert_eq!(error.line, 3, "{error}");
        assert!(error.to_string().contains("expected a boolean"), "{error}");
        let error = parse("[limits]\nmemory = \"512MiB\"\n").unwrap_err();
        assert_eq!(error.key, "limits.memory", "{error}");
        assert!(error.message.contains("limits.max_memory"), "{error}");
        let error = parse("[limits]\ninstances = 0\n").unwrap_err();
        assert_eq!(error.key, "limits.instances", "{error}");
        let error = parse("[limits.module]\nmax_byte = 1\n").unwrap_err();
        assert!(error.to_string().contains("max_byte"), "{error}");
    }

    #[test]
    fn every_provider_kind_parses_with_its_settings() {
        let config = parse(
            r#"
            [config]
            greeting = "hi"
            [abilities.http]
            provider = "http"
            allow = ["example.org"]
            timeout = "2s"
            [abilities.sensor]
            provider = "process"
            operations = ["read"]
            command = ["python3", "sensor.py"]
            [abilities.kv]
            provider = "handler"
            function = "kvprefix"
            [abilities.kv.uses.kv]
            provider = "kv"
            namespace = "tenant-a"
            [abilities.gpu]
            operations = ["render"]
            "#,
        )
        .unwrap();
        assert!(
            matches!(&config.abilities["http"].provider, Some(ProviderConfig::Http { timeout, .. }) if *timeout == Duration::from_secs(2))
        );
        assert!(matches!(
            &config.abilities["sensor"].provider,
            Some(ProviderConfig::Process { .. })
        ));
        match &config.abilities["kv"].provider {
            Some(ProviderConfig::Handler { function, uses }) => {
                assert_eq!(function, "kvprefix");
                assert!(
                    matches!(&uses["kv"].provider, Some(ProviderConfig::Kv { namespace, .. }) if namespace == "tenant-a")
                );
            }
            other => panic!("expected a handler, got {other:?}"),
        }
        assert!(config.abilities["gpu"].provider.is_none());
        assert_eq!(
            config.values["greeting"],
            ciborium::Value::Text("hi".into())
        );
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                "[limits]\ntimeout = \"soon\"\n",
                2,
                "limits.timeout",
                "not a duration",
            ),
            (
                "[placement]\ncache_ttl = \"a while\"\n",
                2,
                "placement.cache_ttl",
                "not a duration",
            ),
            (
                "[abilities.kv]\nprovider = \"kv\"\nallow = [\"x\"]\n",
                3,
                "abilities.kv.allow",
                "does not apply to provider kv",
            ),
            (
                "[abilities.http]\nprovider = \"http\"\n",
                2,
                "abilities.http.allow",
                "at least one allowed host",
            ),
            (
                "[abilities.sensor]\nprovider = \"process\"\ncommand = [\"x\"]\n",
                1,
                "abilities.sensor.operations",
                "declare its operations",
            ),
            (
                "[abilities.kv]\nprovider = \"sled\"\n",
                2,
                "abilities.kv.provider",
                "unknown provider `sled`",
            ),
            (
                "[abilities.sensor]\noperations = [\"read\"]\nprovider = \"kv\"\n",
                3,
                "abilities.sensor.provider",
                "serves only the `kv` ability",
            ),
        ];
        for (text, line, key, message) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(
                (error.line, error.key.as_str()),
                (line, key),
                "{text}: {error}"
            );
            let shown = error.to_string();
            assert!(
                shown.starts_with(&format!("/home/x/config.toml:{line}:")),
                "{shown}"
            );
            assert!(shown.contains(message), "{shown}");
        }
        let unknown = parse("[limits]\ntimout = \"1s\"\n").unwrap_err();
        assert_eq!(unknown.line, 2, "{unknown}");
        assert!(unknown.to_string().contains("timout"), "{unknown}");
        let broken = parse("[limits\n").unwrap_err();
        assert_eq!(broken.line, 1, "{broken}");
    }
}
