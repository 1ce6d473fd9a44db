//! `[[schedules]]` of `config.toml`: functions the node calls on its own, on a cron
//! pattern or at an interval (`crate::schedules`).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Locator, toml_to_cbor};
use crate::config::ConfigError;
use crate::schedules::{Schedule, When};

/// The shortest interval `every` takes: shorter would be a busy loop, not a schedule.
const MIN_EVERY: Duration = Duration::from_secs(1);

/// One `[[schedules]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    function: Spanned<String>,
    cron: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    args: Option<Vec<toml::Value>>,
    timeout: Option<Spanned<String>>,
}

impl Locator<'_> {
    /// Every `[[schedules]]` entry, checked; a run's deadline is `limits.timeout` unless
    /// the schedule says otherwise.
    pub(super) fn schedules(
        &self,
        raw: Vec<Spanned<RawSchedule>>,
        default_timeout: Duration,
    ) -> Result<Vec<Schedule>, ConfigError> {
        raw.into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let span = raw.span();
                let raw = raw.into_inner();
                let key = |field: &str| format!("schedules[{i}].{field}");
                let when = match (&raw.cron, &raw.every) {
                    (Some(cron), None) => {
                        When::Cron(Box::new(cron.get_ref().parse().map_err(
                            |why: String| self.error(cron.span(), &key("cron"), why),
                        )?))
                    }
                    (None, Some(every)) => {
                        let text = every.get_ref().trim_start_matches("every").trim();
                        let period = humantime::parse_duration(text).map_err(|e| {
                            self.error(
                                every.span(),
                                &key("every"),
                                format!(
                                    "`{}` is not an interval ({e}); write e.g. \"30s\" or \"5m\"",
                                    every.get_ref()
                                ),
                            )
                        })?;
                        if period < MIN_EVERY {
                            return Err(self.error(every.span(), &key("every"), "at least 1s"));
                        }
                        When::Every(period)
                    }
                    _ => {
                        return Err(self.error(
                            span,
                            &format!("schedules[{i}]"),
                            "give either `cron` (\"*/5 * * * *\") or `every` (\"30s\"), not both",
                        ));
                    }
                };
                let function = self.function(&raw.function, &key("function"))?;
                Ok(Schedule {
                    function,
                    when,
                    args: raw
                        .args
                        .unwrap_or_default()
                        .into_iter()
                        .map(toml_to_cbor)
                        .collect(),
                    timeout: self.duration(raw.timeout, &key("timeout"), default_timeout)?,
                })
            })
            .collect()
    }
}
