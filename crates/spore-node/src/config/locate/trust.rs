//! The trust settings of `config.toml`: `[trust.names]` (whose publications of which
//! mesh names this node believes) and an ability's `publishers` (whose code may use it
//! for a peer).

use std::collections::BTreeMap;

use serde::Deserialize;
use spore_core::trust::{NamePattern, NamePolicy, PublicKey};
use toml::Spanned;

use super::Locator;
use crate::config::ConfigError;

/// `[trust]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrust {
    /// Name pattern → publisher keys, most preferred first.
    names: Option<BTreeMap<String, Spanned<Vec<String>>>>,
}

impl Locator<'_> {
    /// `[trust.names]`: each key a name, `prefix.*` or `*`; each value publisher keys.
    pub(super) fn name_policy(&self, raw: RawTrust) -> Result<NamePolicy, ConfigError> {
        let rules = raw
            .names
            .unwrap_or_default()
            .into_iter()
            .map(|(pattern, publishers)| {
                let key = format!("trust.names.\"{pattern}\"");
                let parsed: NamePattern = pattern
                    .parse()
                    .map_err(|why: String| self.error(publishers.span(), &key, why))?;
                Ok((parsed, self.publishers(&publishers, &key)?))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(NamePolicy::new(rules))
    }

    /// A list of publisher keys, each in its text form (`ed25519:HEX`, as `spore key ls`
    /// prints it).
    pub(super) fn publishers(
        &self,
        keys: &Spanned<Vec<String>>,
        key: &str,
    ) -> Result<Vec<PublicKey>, ConfigError> {
        keys.get_ref()
            .iter()
            .map(|text| {
                text.parse().map_err(|e| {
                    self.error(
                        keys.span(),
                        key,
                        format!("`{text}` is not a publisher key (`ed25519:` and 64 hex digits, as `spore key ls` prints): {e}"),
                    )
                })
            })
            .collect()
    }
}
