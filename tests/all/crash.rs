//! Crash safety, measured: real `spore` processes SIGKILLed at random moments, and after
//! each kill the home must open and hold every write that was acknowledged before it
//! (docs/durability.md). Two modes:
//!
//! - `cli`: one command at a time (publish with `--name`, `names set`, a `kv` write, a
//!   counter increment, a `kv` read, `ls`), killed at a random moment of its run;
//!   acknowledged means it exited 0.
//! - `node`: a `spore node run` serving concurrent HTTP writes (`kv` writes from several
//!   clients, counter increments, publishes and name changes), killed after a random
//!   number of acknowledgements or at a random time, including while it starts, then
//!   restarted on the same home; acknowledged means the API answered 200.
//!
//! The short tests run in CI; the long ones (`SPORE_CRASH_KILLS` kills per mode, default
//! 2,000, or `SPORE_CRASH_SECONDS` of wall time per mode) are run by
//! `scripts/crash-test.sh`, which prints the figures. `SPORE_CRASH_SEED` repeats a run's
//! choices (not its timing: the kills land where the processes happen to be).

mod cli;
mod ledger;
mod node;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Rng, Spore, copy_dir, module_path};

/// The variable that seeds the harness's choices.
const SEED: &str = "SPORE_CRASH_SEED";
/// How many homes that no longer open are kept (in the temporary directory) to look at.
const BRICKED_HOMES_KEPT: u64 = 5;

#[test]
fn cli_commands_killed_at_random_moments_keep_every_acknowledged_write() {
    let figures = cli::run(
        &Modules::load(),
        &Budget::of_kills(30),
        &mut Rng::from_env(SEED),
    );
    figures.assert_clean();
}

#[test]
fn a_node_killed_under_concurrent_writes_keeps_every_acknowledged_write() {
    let figures = node::run(
        &Modules::load(),
        &Budget::of_kills(8),
        &mut Rng::from_env(SEED),
    );
    figures.assert_clean();
}

#[test]
#[ignore = "thousands of kills; run by scripts/crash-test.sh"]
fn thousands_of_cli_commands_killed() {
    let figures = cli::run(
        &Modules::load(),
        &Budget::from_env(),
        &mut Rng::from_env(SEED),
    );
    figures.assert_clean();
}

#[test]
#[ignore = "thousands of kills; run by scripts/crash-test.sh"]
fn thousands_of_node_kills() {
    let figures = node::run(
        &Modules::load(),
        &Budget::from_env(),
        &mut Rng::from_env(SEED),
    );
    figures.assert_clean();
}

/// When a run stops: after so many kills, or at a deadline, whichever comes first.
pub struct Budget {
    kills: u64,
    seconds: Option<u64>,
}

impl Budget {
    fn of_kills(kills: u64) -> Budget {
        Budget {
            kills,
            seconds: None,
        }
    }

    fn from_env() -> Budget {
        let read = |var: &str| {
            std::env::var(var).ok().map(|text| {
                text.parse()
                    .unwrap_or_else(|_| panic!("{var} is not a number"))
            })
        };
        Budget {
            kills: read("SPORE_CRASH_KILLS").unwrap_or(2_000),
            seconds: read("SPORE_CRASH_SECONDS"),
        }
    }

    fn spent(&self, figures: &Figures) -> bool {
        figures.kills >= self.kills
            || self
                .seconds
                .is_some_and(|seconds| figures.started.elapsed() >= Duration::from_secs(seconds))
    }
}

/// A module of `codebase/` as the harness publishes it.
#[derive(Clone)]
pub struct Module {
    pub bytes: Vec<u8>,
    pub hash: String,
    pub path: PathBuf,
}

impl Module {
    fn load(name: &str) -> Module {
        let path = module_path(name);
        let bytes = std::fs::read(&path).unwrap();
        Module {
            hash: blake3::hash(&bytes).to_hex().to_string(),
            bytes,
            path,
        }
    }
}

/// The modules the harness writes with: `telemetry` (`store`, `load`: one `kv` key),
/// `visits` (`hit`, `count`: a counter), and `arith`, published again and again with a
/// custom section that makes each copy a new module.
#[derive(Clone)]
pub struct Modules {
    pub telemetry: Module,
    pub visits: Module,
    pub arith: Module,
    /// `arith`'s functions: `--name NAME` names each `NAME.function`.
    pub arith_functions: Vec<String>,
}

impl Modules {
    fn load() -> Modules {
        let arith = Module::load("arith");
        let scratch = Spore::new();
        let published = scratch
            .run(&["--json", "publish", arith.path.to_str().unwrap()])
            .json();
        let arith_functions = published["manifest"]["functions"]
            .as_object()
            .expect("the publication has the manifest's functions")
            .keys()
            .cloned()
            .collect();
        Modules {
            telemetry: Module::load("telemetry"),
            visits: Module::load("visits"),
            arith,
            arith_functions,
        }
    }

    /// A copy of `arith` with a custom section holding `salt`: the same functions, a
    /// module of its own. Returns its bytes and hash.
    fn variant(&self, salt: u64) -> (Vec<u8>, String) {
        const NAME: &[u8] = b"spore-crash";
        let mut section = vec![NAME.len() as u8];
        section.extend(NAME);
        section.extend(salt.to_le_bytes());
        let mut bytes = self.arith.bytes.clone();
        // Custom section id 0, then its size as LEB128 (one byte: it is under 128).
        bytes.push(0);
        bytes.push(u8::try_from(section.len()).unwrap());
        bytes.extend(section);
        let hash = blake3::hash(&bytes).to_hex().to_string();
        (bytes, hash)
    }

    /// The names `--name name` gives an `arith` copy: `name.function` → `hash:function`.
    fn arith_names(&self, name: &str, hash: &str) -> Vec<(String, String)> {
        self.arith_functions
            .iter()
            .map(|function| (format!("{name}.{function}"), format!("{hash}:{function}")))
            .collect()
    }
}

/// What one mode's run found.
pub struct Figures {
    mode: &'static str,
    started: Instant,
    /// Processes killed while they ran.
    pub kills: u64,
    /// Writes acknowledged (commands that exited 0, requests answered 200).
    pub acked: u64,
    /// Homes that no longer opened after a kill.
    pub bricked: u64,
    /// Acknowledged items missing or different after a kill.
    pub lost: u64,
    /// The same by what was lost: module, name, kv, counter.
    lost_by_kind: BTreeMap<String, u64>,
    /// Checks (after a kill) that found something acknowledged lost.
    checks_with_loss: u64,
    /// Checks after which `verify` failed on a home that opened.
    pub verify_failed: u64,
    /// Commands or requests that failed by themselves, without a kill.
    pub failed: u64,
    /// The first few of the above, described.
    notes: Vec<String>,
}

impl Figures {
    fn new(mode: &'static str) -> Figures {
        Figures {
            mode,
            started: Instant::now(),
            kills: 0,
            acked: 0,
            bricked: 0,
            lost: 0,
            lost_by_kind: BTreeMap::new(),
            checks_with_loss: 0,
            verify_failed: 0,
            failed: 0,
            notes: Vec::new(),
        }
    }

    /// Keeps (and prints) the first few findings; the figures count them all.
    fn note(&mut self, text: String) {
        if self.notes.len() < 20 {
            eprintln!("crash {}: {text}", self.mode);
            self.notes.push(text);
        }
    }

    /// A home that no longer opens: kept for a look (the first few), then abandoned.
    fn brick(&mut self, home: &Path, error: &str) {
        self.bricked += 1;
        let kept = if self.bricked <= BRICKED_HOMES_KEPT {
            let copy = std::env::temp_dir().join(format!(
                "spore-bricked-{}-{}-{}",
                self.mode,
                std::process::id(),
                self.bricked
            ));
            copy_dir(home, &copy);
            format!(" (a copy is in {})", copy.display())
        } else {
            String::new()
        };
        self.note(format!(
            "after kill {} the home does not open{kept}: {error}",
            self.kills
        ));
    }

    fn record(&mut self, findings: ledger::Findings) {
        self.checks_with_loss += u64::from(!findings.lost.is_empty());
        for lost in findings.lost {
            self.lost += 1;
            // Each finding starts with what it is: module, name, kv, counter.
            let kind = lost.split(' ').next().unwrap_or_default().to_owned();
            *self.lost_by_kind.entry(kind).or_default() += 1;
            self.note(format!("after kill {}: lost: {lost}", self.kills));
        }
        if let Some(error) = findings.verify_failed {
            self.verify_failed += 1;
            self.note(format!("after kill {}: verify failed: {error}", self.kills));
        }
    }

    fn failure(&mut self, what: String) {
        self.failed += 1;
        self.note(format!("failed without a kill: {what}"));
    }

    /// One line, read by scripts/crash-test.sh.
    fn summary(&self) -> String {
        let by_kind: Vec<String> = self
            .lost_by_kind
            .iter()
            .map(|(kind, count)| format!("{kind}:{count}"))
            .collect();
        format!(
            "crash figures: mode={} kills={} acknowledged={} bricked={} lost_acknowledged={} \
             ({}) checks_finding_a_loss={} verify_failed={} failed_without_kill={} seconds={}",
            self.mode,
            self.kills,
            self.acked,
            self.bricked,
            self.lost,
            by_kind.join(" "),
            self.checks_with_loss,
            self.verify_failed,
            self.failed,
            self.started.elapsed().as_secs()
        )
    }

    #[track_caller]
    fn assert_clean(&self) {
        eprintln!("{}", self.summary());
        assert!(
            self.kills > 0 && self.acked > 0,
            "nothing was killed, or nothing acknowledged: {}",
            self.summary()
        );
        assert!(
            self.bricked == 0 && self.lost == 0 && self.verify_failed == 0 && self.failed == 0,
            "{}\n{}",
            self.summary(),
            self.notes.join("\n")
        );
    }
}
