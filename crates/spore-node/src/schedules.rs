//! Schedules (`[[schedules]]` of `config.toml`): a function a node calls on its own, on
//! a cron pattern or at a fixed interval. Pure: when the next run is due; the daemon
//! runs them.
//!
//! Policies, the same for every schedule (docs/configuration.md): a tick that comes
//! while the schedule's previous run is still going is skipped, and logged; ticks
//! missed while the node was not running (or its clock jumped) are not made up: the
//! next run is the next tick after now.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use ciborium::Value;

/// One `[[schedules]]` entry.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// What it calls: a name (this home's or a trusted mesh name) or a reference,
    /// resolved at each run.
    pub function: String,
    pub when: When,
    pub args: Vec<Value>,
    /// Each run's deadline.
    pub timeout: Duration,
}

/// When a schedule's runs are due.
#[derive(Debug, Clone)]
pub enum When {
    /// Every so long, the first one that long after the node starts.
    Every(Duration),
    /// On a cron pattern, in UTC: five fields (minute first) or six (second first).
    Cron(Box<CronPattern>),
}

/// A cron pattern, as written and as parsed.
#[derive(Debug, Clone)]
pub struct CronPattern {
    text: String,
    cron: croner::Cron,
}

impl FromStr for CronPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<CronPattern, String> {
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "`{text}` is not a cron pattern: five fields (minute hour day month weekday) or six (seconds first)"
            ));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| format!("`{text}` is not a cron pattern: {e}"))?;
        Ok(CronPattern {
            text: text.to_owned(),
            cron,
        })
    }
}

impl CronPattern {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time strictly after `after` that the pattern matches.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let after: chrono::DateTime<chrono::Utc> = after.into();
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(SystemTime::from)
    }
}

impl When {
    /// How it is written in `config.toml`: `every 30s` or the cron pattern.
    pub fn describe(&self) -> String {
        match self {
            When::Every(period) => format!("every {}", humantime::format_duration(*period)),
            When::Cron(pattern) => pattern.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_cron_pattern_gives_the_next_matching_time_in_utc() {
        // 2026-11-30T10:03:20Z
        let now = at(1_796_032_200);
        let every_five: CronPattern = "*/5 * * * *".parse().unwrap();
        assert_eq!(
            every_five.next_after(now),
            Some(at(1_796_032_500)),
            "10:05:00"
        );
        let seconds: CronPattern = "*/10 * * * * *".parse().unwrap();
        assert_eq!(seconds.next_after(now), Some(at(1_796_032_210)), "10:03:30");
        let daily: CronPattern = "0 3 * * *".parse().unwrap();
        assert_eq!(
            daily.next_after(now),
            Some(at(1_796_094_000)),
            "the next day 03:00"
        );
        for bad in ["*/5 * * *", "61 * * * *", "every 5 minutes"] {
            assert!(bad.parse::<CronPattern>().is_err(), "{bad}");
        }
    }
}
