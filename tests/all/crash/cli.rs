//! Mode `cli`: one command at a time, SIGKILLed at a random moment of its run, then the
//! home checked with the CLI. A command that exited 0 was acknowledged.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ledger::{Findings, Ledger, Reader};
use super::{Budget, Figures, Modules};
use crate::support::{Rng, Spore};

/// Commands run on one home before the harness starts a fresh one. Each check reads
/// every item, so a home is kept to a bounded number; fresh homes also put kills into a
/// home's first commands (creating its configuration and database).
const COMMANDS_PER_HOME: usize = 150;
/// The `kv` keys written (each overwritten again and again) and the names set.
const KV_KEYS: u64 = 4;
const NAMES: u64 = 4;
/// The counter `hit` increments.
const PAGE: &str = "p";
/// A kill lands uniformly in `[0, KILL_SPAN × the command's usual duration]`: mostly
/// while it runs, sometimes after it finished (and was acknowledged).
const KILL_SPAN: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Publish,
    SetName,
    Store,
    Hit,
    Load,
    Ls,
}

/// One command and what it writes or reads.
enum Op {
    /// `file` is a temporary copy of the module; `names` what `--name` gives it.
    Publish {
        file: PathBuf,
        hash: String,
        name: Option<String>,
        names: Vec<(String, String)>,
    },
    SetName {
        name: String,
        target: String,
    },
    Store {
        key: String,
        value: u64,
    },
    Hit,
    Load {
        key: String,
    },
    Ls,
}

impl Op {
    fn kind(&self) -> Kind {
        match self {
            Op::Publish { .. } => Kind::Publish,
            Op::SetName { .. } => Kind::SetName,
            Op::Store { .. } => Kind::Store,
            Op::Hit => Kind::Hit,
            Op::Load { .. } => Kind::Load,
            Op::Ls => Kind::Ls,
        }
    }

    fn args(&self, modules: &Modules) -> Vec<String> {
        let json = |text: &str| Value::from(text).to_string();
        match self {
            Op::Publish { file, name, .. } => {
                let mut args = vec!["publish".to_owned(), file.display().to_string()];
                if let Some(name) = name {
                    args.extend(["--name".to_owned(), name.clone()]);
                }
                args
            }
            Op::SetName { name, target } => {
                vec!["names".into(), "set".into(), name.clone(), target.clone()]
            }
            Op::Store { key, value } => vec![
                "invoke".into(),
                format!("{}:store", modules.telemetry.hash),
                json(key),
                value.to_string(),
            ],
            Op::Hit => vec![
                "invoke".into(),
                format!("{}:hit", modules.visits.hash),
                json(PAGE),
            ],
            Op::Load { key } => vec![
                "invoke".into(),
                format!("{}:load", modules.telemetry.hash),
                json(key),
            ],
            Op::Ls => vec!["ls".into()],
        }
    }

    /// Records the command in the ledger: acknowledged with its output, or attempted.
    /// Returns what a read found wrong.
    fn record(&self, ledger: &mut Ledger, acked: Option<&str>) -> Option<String> {
        let acked_flag = acked.is_some();
        match self {
            Op::Publish { hash, names, .. } => ledger.publish(hash, names, acked_flag),
            Op::SetName { name, target } => ledger.set_name(name, target, acked_flag),
            Op::Store { key, value } => ledger.put(key, Value::from(*value), acked_flag),
            Op::Hit => match acked.and_then(|out| out.trim().parse().ok()) {
                Some(count) => ledger.hit(PAGE, count),
                None => ledger.hit_attempted(PAGE),
            },
            Op::Load { key } => {
                let found = serde_json::from_str(acked?.trim()).unwrap_or(Value::Null);
                return ledger.read(key, found);
            }
            Op::Ls => {}
        }
        None
    }
}

/// How a command ended.
enum Ending {
    Exited {
        code: i32,
        stdout: String,
        stderr: String,
        took: Duration,
    },
    Killed,
}

/// Runs `spore args` on `spore`'s home and SIGKILLs it after `kill_after` if it is
/// still running then.
fn run_until(spore: &Spore, args: &[String], kill_after: Duration) -> Ending {
    let started = Instant::now();
    let mut child = spore
        .command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spore");
    loop {
        if child.try_wait().unwrap().is_some() || started.elapsed() >= kill_after {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    match output.status.code() {
        Some(code) => Ending::Exited {
            code,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took,
        },
        None => {
            assert_eq!(output.status.signal(), Some(9), "{:?}", output.status);
            Ending::Killed
        }
    }
}

/// Reads a home with the CLI, a process per read.
struct Cli<'a>(&'a Spore);

impl Cli<'_> {
    /// The output of `spore args`, which must exit 0.
    fn read(&self, args: &[String]) -> Result<Value, String> {
        let output = self
            .0
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run spore");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
        if !output.status.success() {
            return Err(format!(
                "`spore {}` ended with {}: {} {}",
                args.join(" "),
                output.status,
                text(&output.stdout),
                text(&output.stderr)
            ));
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("`spore {}` printed no JSON ({e})", args.join(" ")))
    }
}

impl Reader for Cli<'_> {
    fn modules(&mut self) -> Result<Value, String> {
        self.read(&["--json".into(), "ls".into()])
    }

    fn verify(&mut self) -> Result<(), String> {
        self.read(&["--json".into(), "verify".into()]).map(drop)
    }

    fn invoke(&mut self, reference: &str, args: &[Value]) -> Result<Value, String> {
        let mut all = vec!["invoke".to_owned(), reference.to_owned()];
        all.extend(args.iter().map(Value::to_string));
        self.read(&all)
    }
}

/// Chooses commands at random and kills them; see the module's doc.
pub fn run(modules: &Modules, budget: &Budget, rng: &mut Rng) -> Figures {
    let mut figures = Figures::new("cli");
    let files = tempfile::tempdir().unwrap();
    let mut chooser = Chooser {
        modules,
        files: files.path().to_owned(),
        serial: 0,
    };
    let usual = calibrate(modules, &mut chooser, rng);
    'homes: while !budget.spent(&figures) {
        let spore = Spore::new();
        let mut ledger = Ledger::new(&modules.telemetry.hash, &modules.visits.hash);
        for _ in 0..COMMANDS_PER_HOME {
            if budget.spent(&figures) {
                break 'homes;
            }
            let op = chooser.choose(&ledger, rng);
            let kill_after = usual[&op.kind()].mul_f64(KILL_SPAN * rng.unit());
            let ending = run_until(&spore, &op.args(modules), kill_after);
            chooser.done(&op);
            match ending {
                Ending::Exited {
                    code: 0, stdout, ..
                } => {
                    figures.acked += u64::from(op.kind() != Kind::Ls && op.kind() != Kind::Load);
                    if let Some(wrong) = op.record(&mut ledger, Some(&stdout)) {
                        figures.record(Findings {
                            lost: vec![wrong],
                            verify_failed: None,
                        });
                    }
                }
                Ending::Exited { code, stderr, .. } => {
                    figures.failure(format!("{:?} exited {code}: {}", op.kind(), stderr.trim()));
                    op.record(&mut ledger, None);
                }
                Ending::Killed => {
                    figures.kills += 1;
                    op.record(&mut ledger, None);
                    match ledger.check(&mut Cli(&spore)) {
                        Ok(findings) => figures.record(findings),
                        Err(error) => {
                            figures.brick(spore.home(), &error);
                            continue 'homes;
                        }
                    }
                }
            }
        }
    }
    figures
}

/// Picks the next command, writing module copies to publish into `files`.
struct Chooser<'a> {
    modules: &'a Modules,
    files: PathBuf,
    serial: u64,
}

impl Chooser<'_> {
    fn choose(&mut self, ledger: &Ledger, rng: &mut Rng) -> Op {
        self.serial += 1;
        // A fresh home first gets the modules that write `kv`, in commands that may be
        // killed like any other.
        for module in [&self.modules.telemetry, &self.modules.visits] {
            if !ledger.has_module(&module.hash) {
                return Op::Publish {
                    file: module.path.clone(),
                    hash: module.hash.clone(),
                    name: None,
                    names: Vec::new(),
                };
            }
        }
        let arith: Vec<String> = ledger
            .modules()
            .into_iter()
            .filter(|hash| {
                *hash != self.modules.telemetry.hash && *hash != self.modules.visits.hash
            })
            .collect();
        let key = |rng: &mut Rng| format!("k{}", rng.below(KV_KEYS));
        match rng.below(100) {
            0..15 => self.publish(rng),
            15..30 if arith.is_empty() => self.publish(rng),
            15..30 => {
                let hash = &arith[rng.below(arith.len() as u64) as usize];
                let functions = &self.modules.arith_functions;
                let function = &functions[rng.below(functions.len() as u64) as usize];
                Op::SetName {
                    name: format!("n{}", rng.below(NAMES)),
                    target: format!("{hash}:{function}"),
                }
            }
            30..55 => Op::Store {
                key: key(rng),
                value: self.serial,
            },
            55..70 => Op::Hit,
            70..85 => Op::Load { key: key(rng) },
            _ => Op::Ls,
        }
    }

    fn publish(&mut self, rng: &mut Rng) -> Op {
        let (bytes, hash) = self.modules.variant(rng.next_u64());
        let file = self.files.join(format!("{}.wasm", self.serial));
        std::fs::write(&file, bytes).unwrap();
        let name = format!("m{}", rng.below(NAMES));
        Op::Publish {
            file,
            names: self.modules.arith_names(&name, &hash),
            hash,
            name: Some(name),
        }
    }

    /// Removes the module copy a command published.
    fn done(&self, op: &Op) {
        if let Op::Publish { file, .. } = op
            && file.starts_with(&self.files)
        {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// How long each kind of command usually takes here (the slowest of a few unhurried
/// runs on a scratch home), to spread the kills over whole runs.
fn calibrate(modules: &Modules, chooser: &mut Chooser, rng: &mut Rng) -> BTreeMap<Kind, Duration> {
    const RUNS: usize = 3;
    const KINDS: usize = 6;
    let spore = Spore::new();
    let mut ledger = Ledger::new(&modules.telemetry.hash, &modules.visits.hash);
    let mut runs: BTreeMap<Kind, Vec<Duration>> = BTreeMap::new();
    while runs.len() < KINDS || runs.values().any(|took| took.len() < RUNS) {
        let op = chooser.choose(&ledger, rng);
        let ending = run_until(&spore, &op.args(modules), Duration::from_secs(120));
        chooser.done(&op);
        let Ending::Exited {
            code: 0,
            stdout,
            took,
            ..
        } = ending
        else {
            panic!("{:?} failed on a scratch home", op.kind());
        };
        op.record(&mut ledger, Some(&stdout));
        runs.entry(op.kind()).or_default().push(took);
    }
    let usual: BTreeMap<Kind, Duration> = runs
        .into_iter()
        .map(|(kind, took)| (kind, took.into_iter().max().unwrap()))
        .collect();
    eprintln!("crash cli: usual durations {usual:?}");
    usual
}
