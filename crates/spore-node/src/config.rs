//! The node's configuration file, `config.toml` in the home (docs/configuration.md).
//!
//! Parsing is strict: unknown keys, keys that do not apply to a provider, and bad values
//! are errors that name the file, the line and the key. A fresh home gets a file with
//! the default bindings, so what is in force is always written down.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use spore_core::manifest::is_ability_word;
use toml::Spanned;

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
    pub memo: bool,
    pub memo_max_result_bytes: u64,
    /// Values served by the `config` ability.
    pub values: BTreeMap<String, ciborium::Value>,
    /// Every ability the node declares or binds, by name.
    pub abilities: BTreeMap<String, AbilityConfig>,
}

/// One `[abilities.NAME]` table.
#[derive(Debug, Clone)]
pub struct AbilityConfig {
    /// Operations declared for a custom ability (empty for built-ins, whose shapes are fixed).
    pub operations: Vec<String>,
    /// The provider, when the ability is bound here (a declaration alone binds nothing).
    pub provider: Option<ProviderConfig>,
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
        }
    }
}

/// What a fresh home's `config.toml` says.
pub const DEFAULT_CONFIG: &str = r#"# spore node configuration. Every key is documented in docs/configuration.md.

[limits]
timeout = "10s"      # default wall-clock deadline of a call
memory = "64MiB"     # default linear-memory cap of a call
call_depth = 8       # how deep `call` may nest

[memo]
enabled = true              # cache results of pure functions
max_result_bytes = "1MiB"   # larger results are not cached

# Values for the `config` ability.
[config]

# Bindings: each [abilities.NAME] binds ability NAME to a provider on this node.
# Functions needing an ability that is not bound here are refused before they start.
[abilities.log]
provider = "log"

[abilities.clock]
provider = "clock"

[abilities.random]
provider = "random"

[abilities.config]
provider = "config"

[abilities.call]
provider = "call"

[abilities.kv]
provider = "kv"
namespace = "default"
max_value_bytes = "1MiB"

# Outbound HTTP is bound only when hosts are allowed:
# [abilities.http]
# provider = "http"
# allow = ["example.org", "127.0.0.1:8080"]
# timeout = "10s"
# max_response_bytes = "4MiB"

# A custom ability served by a provider process:
# [abilities.sensor]
# provider = "process"
# operations = ["read"]
# command = ["python3", "examples/sensor-provider/sensor.py"]
"#;

impl NodeConfig {
    /// Reads `config.toml` in `home`, writing the defaults first if there is none.
    pub fn load_or_create(home: &Path) -> Result<NodeConfig, ConfigError> {
        let file = home.join("config.toml");
        if !file.exists() {
            std::fs::write(&file, DEFAULT_CONFIG).map_err(|e| {
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

    pub fn parse(file: &Path, text: &str) -> Result<NodeConfig, ConfigError> {
        let locate = Locator { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            locate.error(span, "", e.message().to_owned())
        })?;
        let limits = raw.limits.unwrap_or_default();
        let memo = raw.memo.unwrap_or_default();
        let values = raw
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, toml_to_cbor(value)))
            .collect();
        let abilities = raw
            .abilities
            .unwrap_or_default()
            .into_iter()
            .map(|(name, table)| {
                let key = format!("abilities.{name}");
                Ok((name.clone(), locate.ability(&name, &key, table)?))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(NodeConfig {
            file: file.to_owned(),
            timeout: locate.duration(limits.timeout, "limits.timeout", Duration::from_secs(10))?,
            memory_bytes: locate.size(limits.memory, "limits.memory", 64 << 20)?,
            max_call_depth: limits.call_depth.unwrap_or(8),
            memo: memo.enabled.unwrap_or(true),
            memo_max_result_bytes: locate.size(
                memo.max_result_bytes,
                "memo.max_result_bytes",
                1 << 20,
            )?,
            values,
            abilities,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    limits: Option<RawLimits>,
    memo: Option<RawMemo>,
    config: Option<toml::Table>,
    abilities: Option<BTreeMap<String, Spanned<RawAbility>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<SizeValue>>,
    call_depth: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMemo {
    enabled: Option<bool>,
    max_result_bytes: Option<Spanned<SizeValue>>,
}

/// A size written as a number of bytes or as text such as `"64MiB"`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawAbility {
    provider: Option<Spanned<String>>,
    operations: Option<Vec<String>>,
    namespace: Option<Spanned<String>>,
    max_value_bytes: Option<Spanned<SizeValue>>,
    allow: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    max_response_bytes: Option<Spanned<SizeValue>>,
    command: Option<Spanned<Vec<String>>>,
    cwd: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    function: Option<Spanned<String>>,
    uses: Option<Spanned<BTreeMap<String, Spanned<RawAbility>>>>,
}

struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        value: Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => humantime::parse_duration(value.get_ref()).map_err(|e| {
                self.error(
                    value.span(),
                    key,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"500ms\" or \"10s\"",
                        value.get_ref()
                    ),
                )
            }),
        }
    }

    fn size(
        &self,
        value: Option<Spanned<SizeValue>>,
        key: &str,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => match value.get_ref() {
                SizeValue::Bytes(n) => Ok(*n),
                SizeValue::Text(text) => crate::parse_size(text).ok_or_else(|| {
                    self.error(
                        value.span(),
                        key,
                        format!(
                            "`{text}` is not a size; write e.g. \"64MiB\" or a number of bytes"
                        ),
                    )
                }),
            },
        }
    }

    fn ability(
        &self,
        name: &str,
        key: &str,
        table: Spanned<RawAbility>,
    ) -> Result<AbilityConfig, ConfigError> {
        let span = table.span();
        let raw = table.into_inner();
        let builtin = spore_abilities::BUILTIN_SHAPES
            .iter()
            .any(|(builtin, _)| *builtin == name);
        if !is_ability_word(name) {
            return Err(self.error(
                span,
                key,
                "ability names are lowercase letters, digits, `_` and `-`, starting with a letter",
            ));
        }
        let operations = raw.operations.clone().unwrap_or_default();
        if builtin && !operations.is_empty() {
            return Err(self.error(
                span,
                &format!("{key}.operations"),
                format!(
                    "`{name}` is a built-in ability; its operations are fixed (spec/abilities.md)"
                ),
            ));
        }
        if !builtin && operations.is_empty() {
            return Err(self.error(span, &format!("{key}.operations"), format!("`{name}` is not a built-in ability; declare its operations, e.g. operations = [\"read\"]")));
        }
        if let Some(bad) = operations.iter().find(|op| !is_ability_word(op)) {
            return Err(self.error(
                span,
                &format!("{key}.operations"),
                format!("`{bad}` is not an operation name (lowercase letters, digits, `_`, `-`)"),
            ));
        }
        let provider = match &raw.provider {
            None => {
                self.only(&raw, key, &[])?;
                None
            }
            Some(provider) => Some(self.provider(name, key, provider, &raw)?),
        };
        Ok(AbilityConfig {
            operations,
            provider,
        })
    }

    fn provider(
        &self,
        name: &str,
        key: &str,
        provider: &Spanned<String>,
        raw: &RawAbility,
    ) -> Result<ProviderConfig, ConfigError> {
        let kind = provider.get_ref().as_str();
        // The built-in kinds serve only their own ability; a custom ability needs a
        // provider that can serve any shape.
        let own_kind = ["log", "clock", "random", "config", "call", "kv", "http"].contains(&kind);
        if own_kind && kind != name {
            return Err(self.error(provider.span(), &format!("{key}.provider"), format!("provider `{kind}` serves only the `{kind}` ability; `{name}` needs \"process\" or \"handler\"")));
        }
        Ok(match kind {
            "log" | "clock" | "random" | "config" | "call" => {
                self.only(raw, key, &[])?;
                match kind {
                    "log" => ProviderConfig::Log,
                    "clock" => ProviderConfig::Clock,
                    "random" => ProviderConfig::Random,
                    "config" => ProviderConfig::Config,
                    _ => ProviderConfig::Call,
                }
            }
            "kv" => {
                self.only(raw, key, &["namespace", "max_value_bytes"])?;
                let namespace = raw
                    .namespace
                    .as_ref()
                    .map(|n| n.get_ref().clone())
                    .unwrap_or_else(|| "default".into());
                if !is_ability_word(&namespace) {
                    let span = raw
                        .namespace
                        .as_ref()
                        .map(|n| n.span())
                        .unwrap_or(provider.span());
                    return Err(self.error(
                        span,
                        &format!("{key}.namespace"),
                        "namespaces are lowercase letters, digits, `_` and `-`",
                    ));
                }
                ProviderConfig::Kv {
                    namespace,
                    max_value_bytes: self.size(
                        raw.max_value_bytes.clone(),
                        &format!("{key}.max_value_bytes"),
                        1 << 20,
                    )?,
                }
            }
            "http" => {
                self.only(raw, key, &["allow", "timeout", "max_response_bytes"])?;
                let allow = raw
                    .allow
                    .as_ref()
                    .map(|a| a.get_ref().clone())
                    .unwrap_or_default();
                if allow.is_empty() {
                    return Err(self.error(provider.span(), &format!("{key}.allow"), "an http binding needs at least one allowed host, e.g. allow = [\"example.org\"]"));
                }
                ProviderConfig::Http {
                    allow,
                    timeout: self.duration(
                        raw.timeout.clone(),
                        &format!("{key}.timeout"),
                        Duration::from_secs(10),
                    )?,
                    max_response_bytes: self.size(
                        raw.max_response_bytes.clone(),
                        &format!("{key}.max_response_bytes"),
                        4 << 20,
                    )?,
                }
            }
            "process" => {
                self.only(
                    raw,
                    key,
                    &["operations", "command", "cwd", "env", "timeout"],
                )?;
                let command = raw
                    .command
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default();
                if command.is_empty() {
                    return Err(self.error(provider.span(), &format!("{key}.command"), "a process binding needs a command, e.g. command = [\"python3\", \"provider.py\"]"));
                }
                ProviderConfig::Process {
                    command,
                    cwd: raw.cwd.as_ref().map(|c| PathBuf::from(c.get_ref())),
                    env: raw
                        .env
                        .as_ref()
                        .map(|e| e.get_ref().clone().into_iter().collect())
                        .unwrap_or_default(),
                    timeout: self.duration(
                        raw.timeout.clone(),
                        &format!("{key}.timeout"),
                        Duration::from_secs(10),
                    )?,
                }
            }
            "handler" => {
                self.only(raw, key, &["operations", "function", "uses"])?;
                let function = raw.function.as_ref().ok_or_else(|| {
                    self.error(provider.span(), &format!("{key}.function"), "a handler binding needs the function whose exports implement the ability, e.g. function = \"kvprefix\"")
                })?;
                let uses = match &raw.uses {
                    None => BTreeMap::new(),
                    Some(uses) => uses
                        .get_ref()
                        .iter()
                        .map(|(inner, table)| {
                            let inner_key = format!("{key}.uses.{inner}");
                            let config = self.ability(inner, &inner_key, table.clone())?;
                            if config.provider.is_none() {
                                return Err(self.error(
                                    table.span(),
                                    &inner_key,
                                    "a `uses` entry must bind a provider",
                                ));
                            }
                            Ok((inner.clone(), config))
                        })
                        .collect::<Result<_, ConfigError>>()?,
                };
                ProviderConfig::Handler {
                    function: function.get_ref().clone(),
                    uses,
                }
            }
            other => {
                return Err(self.error(provider.span(), &format!("{key}.provider"), format!("unknown provider `{other}`; one of log, clock, random, config, call, kv, http, process, handler")));
            }
        })
    }

    /// Refuses keys that do not apply to the provider (or to a bare declaration).
    fn only(&self, raw: &RawAbility, key: &str, allowed: &[&str]) -> Result<(), ConfigError> {
        let present: [(&str, Option<Range<usize>>); 10] = [
            ("namespace", raw.namespace.as_ref().map(Spanned::span)),
            (
                "max_value_bytes",
                raw.max_value_bytes.as_ref().map(Spanned::span),
            ),
            ("allow", raw.allow.as_ref().map(Spanned::span)),
            ("timeout", raw.timeout.as_ref().map(Spanned::span)),
            (
                "max_response_bytes",
                raw.max_response_bytes.as_ref().map(Spanned::span),
            ),
            ("command", raw.command.as_ref().map(Spanned::span)),
            ("cwd", raw.cwd.as_ref().map(Spanned::span)),
            ("env", raw.env.as_ref().map(Spanned::span)),
            ("function", raw.function.as_ref().map(Spanned::span)),
            ("uses", raw.uses.as_ref().map(Spanned::span)),
        ];
        let provider = raw
            .provider
            .as_ref()
            .map_or("(none)", |p| p.get_ref().as_str());
        match present
            .into_iter()
            .find(|(name, span)| span.is_some() && !allowed.contains(name))
        {
            Some((name, span)) => Err(self.error(
                span.expect("present"),
                &format!("{key}.{name}"),
                format!("does not apply to provider {provider}"),
            )),
            None => Ok(()),
        }
    }
}

fn whole_file(file: &Path, message: String) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        line: 1,
        column: 1,
        key: String::new(),
        message,
    }
}

fn toml_to_cbor(value: toml::Value) -> ciborium::Value {
    use ciborium::Value as C;
    match value {
        toml::Value::String(s) => C::Text(s),
        toml::Value::Integer(i) => C::Integer(i.into()),
        toml::Value::Float(f) => C::Float(f),
        toml::Value::Boolean(b) => C::Bool(b),
        toml::Value::Datetime(d) => C::Text(d.to_string()),
        toml::Value::Array(items) => C::Array(items.into_iter().map(toml_to_cbor).collect()),
        toml::Value::Table(table) => C::Map(
            table
                .into_iter()
                .map(|(k, v)| (C::Text(k), toml_to_cbor(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::parse(Path::new("/home/x/config.toml"), text)
    }

    #[test]
    fn the_default_file_binds_the_everyday_abilities() {
        let config = parse(DEFAULT_CONFIG).unwrap();
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
