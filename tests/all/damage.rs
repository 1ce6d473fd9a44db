//! One flipped byte anywhere in a home's codebase, as bit rot or a bad sector would leave
//! it: every acknowledged item (module, name, `kv` key, memoized result) must then read
//! correctly or fail with exit 7, never silently wrong or silently gone, and the CLI
//! must never panic. The exit 7 names the item, or, when the damage is to the store's
//! own structure rather than to one record, the store as a whole (the index file): then
//! `spore verify --repair` must give the item back or name it among what it lost. Either
//! way `spore verify` must fail where a read found damage, and after `--repair` a home
//! must verify (docs/durability.md). The figures count the two kinds of report apart.
//!
//! The sweep knows nothing of the store's layout: it walks `codebase/` and flips bytes
//! in every file it finds, a fresh copy of the home for each flip. `SPORE_DAMAGE_FLIPS`
//! sets the long sweep's count, `SPORE_DAMAGE_SEED` its offsets and masks (the CI
//! sweep's are fixed, so that it judges the same flips every run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Rng, Spore, copy_dir, exit};

const SEED: &str = "SPORE_DAMAGE_SEED";
/// The CI sweep's seed, unless `SPORE_DAMAGE_SEED` says otherwise.
const CI_SEED: u64 = 9;
/// How long one command may take on a damaged home before it counts as hung.
const HUNG: Duration = Duration::from_secs(60);
/// The code a hung command is given here (no exit code of spore's).
const HUNG_CODE: i32 = -1;

#[test]
fn a_flipped_byte_anywhere_is_harmless_or_reported_naming_what_it_damaged() {
    sweep(24, Rng::from_env_or(SEED, CI_SEED)).assert_clean();
}

#[test]
#[ignore = "hundreds of flips; run by scripts/crash-test.sh"]
fn hundreds_of_flipped_bytes() {
    let flips = std::env::var("SPORE_DAMAGE_FLIPS")
        .map(|text| text.parse().expect("SPORE_DAMAGE_FLIPS is a number"))
        .unwrap_or(600);
    sweep(flips, Rng::from_env(SEED)).assert_clean();
}

/// Something acknowledged that a reader must find.
#[derive(Debug)]
enum Item {
    /// A module, and a call that runs it (memo off): the call's answer.
    Module {
        hash: String,
        call: Vec<String>,
        result: Value,
    },
    Name {
        name: String,
        target: String,
    },
    Kv {
        key: String,
        value: Value,
    },
    /// A memoized call and its result (the memo may answer it or the function again).
    Memo {
        hash: String,
        call: Vec<String>,
        result: Value,
    },
}

impl Item {
    /// What a report of damage to this item names. A `kv` key is read through the
    /// telemetry module, so a report naming that module covers it too.
    fn ids<'a>(&'a self, home: &'a Home) -> Vec<&'a str> {
        match self {
            Item::Module { hash, .. } | Item::Memo { hash, .. } => vec![hash.as_str()],
            Item::Name { name, .. } => vec![name.as_str()],
            Item::Kv { key, .. } => vec![key.as_str(), home.telemetry.as_str()],
        }
    }

    fn describe(&self) -> String {
        match self {
            Item::Module { hash, .. } => format!("module {hash}"),
            Item::Name { name, .. } => format!("name {name}"),
            Item::Kv { key, .. } => format!("kv {key}"),
            Item::Memo { call, .. } => format!("memo {}", call.join(" ")),
        }
    }
}

/// A home with acknowledged items of every kind, left at rest (no process holds it).
struct Home {
    spore: Spore,
    telemetry: String,
    items: Vec<Item>,
}

impl Home {
    fn build() -> Home {
        let spore = Spore::new();
        let mut items = Vec::new();
        let arith = spore.publish("arith", Some("math"));
        let words = spore.publish("words", None);
        let telemetry = spore.publish("telemetry", Some("tel"));
        for (name, target) in [
            ("calc", format!("{arith}:sub")),
            ("wc", format!("{words}:frequencies")),
        ] {
            spore.run(&["names", "set", name, &target]).ok();
        }
        for (key, value) in [
            ("key-alpha", json!("a text value")),
            ("key-beta", json!(42)),
            ("key-gamma", json!({"nested": [1, 2, 3]})),
        ] {
            let store = format!("{telemetry}:store");
            spore
                .run(&[
                    "invoke",
                    &store,
                    &json!(key).to_string(),
                    &value.to_string(),
                ])
                .ok();
            items.push(Item::Kv {
                key: key.into(),
                value,
            });
        }
        let calls = [
            (&arith, vec![format!("{arith}:add"), "2".into(), "3".into()]),
            (
                &words,
                vec![format!("{words}:frequencies"), json!("a b a").to_string()],
            ),
            (
                &telemetry,
                vec![format!("{telemetry}:load"), json!("absent").to_string()],
            ),
        ];
        for (hash, call) in calls {
            let result = invoke(&spore, &call, true);
            items.push(Item::Module {
                hash: hash.clone(),
                call,
                result,
            });
        }
        for (hash, call) in [
            (&arith, vec![format!("{arith}:mul"), "6".into(), "7".into()]),
            (
                &words,
                vec![
                    format!("{words}:top"),
                    json!("b a b").to_string(),
                    "1".into(),
                ],
            ),
        ] {
            let result = invoke(&spore, &call, false);
            items.push(Item::Memo {
                hash: hash.clone(),
                call,
                result,
            });
        }
        let names = spore.run(&["--json", "names", "ls"]).json();
        for entry in names.as_array().unwrap() {
            items.push(Item::Name {
                name: entry["name"].as_str().unwrap().into(),
                target: entry["target"].as_str().unwrap().into(),
            });
        }
        assert!(
            items
                .iter()
                .filter(|i| matches!(i, Item::Name { .. }))
                .count()
                >= 5,
            "math.*, tel.*, calc and wc are named: {names}"
        );
        Home {
            spore,
            telemetry,
            items,
        }
    }
}

fn invoke(spore: &Spore, call: &[String], no_memo: bool) -> Value {
    let mut args: Vec<&str> = vec!["invoke"];
    args.extend(call.iter().map(String::as_str));
    if no_memo {
        args.push("--no-memo");
    }
    spore.run(&args).json()
}

/// One run of the CLI, which may have died of a signal.
struct Probe {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Probe {
    /// Runs `spore args`; one that runs past [`HUNG`] is killed and reported as hung.
    fn run(spore: &Spore, args: &[&str]) -> Probe {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = spore
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run spore");
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let started = Instant::now();
        let hung = loop {
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            if started.elapsed() > HUNG {
                let _ = child.kill();
                break true;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let status = child.wait().unwrap();
        let mut stderr = stderr.join().unwrap();
        if hung {
            stderr = format!("hung: no answer in {HUNG:?}; {stderr}");
        }
        Probe {
            code: if hung { Some(HUNG_CODE) } else { status.code() },
            stdout: stdout.join().unwrap(),
            stderr,
        }
    }

    /// Died of a signal or of a Rust panic (exit 101), or printed a panic's message
    /// (a panic caught inside, but shown to the user all the same).
    fn panicked(&self) -> bool {
        self.code.is_none() || self.code == Some(101) || self.stderr.contains("panicked at")
    }

    /// The gist of what it printed: the last line of stderr (the error), else stdout.
    fn text(&self) -> String {
        let last = |text: &str| text.trim().lines().last().unwrap_or_default().to_owned();
        let mut text = match last(&self.stderr) {
            error if !error.is_empty() => error,
            _ => last(&self.stdout),
        };
        if let Some((cut, _)) = text.char_indices().nth(300) {
            text.truncate(cut);
        }
        text
    }

    /// What this run says of an item named by `ids`, given `judge` for its output.
    fn verdict(&self, ids: &[&str], judge: impl Fn(&Value) -> Verdict) -> Verdict {
        let named = ids.iter().any(|id| self.stderr.contains(id));
        match self.code {
            _ if self.panicked() => Verdict::Panicked(self.text()),
            Some(0) => match serde_json::from_str(&self.stdout) {
                Ok(value) => judge(&value),
                Err(_) => Verdict::Wrong(format!("not JSON: {}", self.text())),
            },
            Some(exit::CORRUPT) if named => Verdict::Reported,
            // A function that reads a damaged `kv` key gets a `corrupt` error from the
            // ability and returns it as its own error value.
            Some(exit::GUEST_ERROR) if named && self.stderr.contains("corrupt") => {
                Verdict::Reported
            }
            Some(exit::NOT_FOUND) => Verdict::Gone(self.text()),
            Some(exit::CORRUPT) => Verdict::ReportedWhole(self.text()),
            Some(code) => Verdict::Unnamed(format!("exit {code}: {}", self.text())),
            None => unreachable!("a run without a code panicked"),
        }
    }
}

/// What became of one item after one flip, best first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Correct,
    /// A read failed with exit 7 naming it.
    Reported,
    /// A read failed with exit 7 naming something else: the index as a whole, or
    /// another item that a listing stopped at.
    ReportedWhole(String),
    /// A read failed without naming it: the home or a listing failed as a whole.
    Unnamed(String),
    Gone(String),
    Wrong(String),
    Panicked(String),
}

/// The reads of every item of a (damaged) copy of the home.
struct Reads {
    ls: Probe,
    names: Probe,
    calls: Vec<Probe>,
}

impl Reads {
    fn take(spore: &Spore, home: &Home) -> Reads {
        let calls = home
            .items
            .iter()
            .map(|item| {
                let mut args = vec!["invoke".to_owned()];
                match item {
                    Item::Module { call, .. } => {
                        args.extend(call.iter().cloned());
                        args.push("--no-memo".into());
                    }
                    Item::Memo { call, .. } => args.extend(call.iter().cloned()),
                    Item::Kv { key, .. } => {
                        args.push(format!("{}:load", home.telemetry));
                        args.push(json!(key).to_string());
                    }
                    Item::Name { .. } => return None,
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Some(Probe::run(spore, &args))
            })
            .collect::<Vec<_>>();
        Reads {
            ls: Probe::run(spore, &["--json", "ls"]),
            names: Probe::run(spore, &["--json", "names", "ls"]),
            calls: calls.into_iter().flatten().collect(),
        }
    }

    fn panicked(&self) -> bool {
        [&self.ls, &self.names]
            .into_iter()
            .chain(&self.calls)
            .any(Probe::panicked)
    }

    /// Each item's verdict, in the order of `home.items`.
    fn verdicts(&self, home: &Home) -> Vec<Verdict> {
        let mut calls = self.calls.iter();
        home.items
            .iter()
            .map(|item| {
                let ids = item.ids(home);
                match item {
                    Item::Module { hash, result, .. } => {
                        let listed = self.ls.verdict(&ids, |modules| {
                            let listed = modules.as_array().into_iter().flatten();
                            if listed
                                .clone()
                                .any(|m| m["manifest"]["module"] == hash.as_str())
                            {
                                Verdict::Correct
                            } else {
                                Verdict::Gone("not listed by `spore ls`".into())
                            }
                        });
                        let ran = calls
                            .next()
                            .unwrap()
                            .verdict(&ids, |found| expect(found, result, "the call's result"));
                        listed.max(ran)
                    }
                    Item::Memo { result, .. } | Item::Kv { value: result, .. } => {
                        calls.next().unwrap().verdict(&ids, |found| {
                            if found.is_null() {
                                Verdict::Gone("read as absent".into())
                            } else {
                                expect(found, result, "the value")
                            }
                        })
                    }
                    Item::Name { name, target } => self.names.verdict(&ids, |names| {
                        let entry = names
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|entry| entry["name"] == name.as_str());
                        match entry {
                            None => Verdict::Gone("not listed by `spore names ls`".into()),
                            Some(entry) => expect(&entry["target"], &json!(target), "the target"),
                        }
                    }),
                }
            })
            .collect()
    }
}

fn expect(found: &Value, expected: &Value, what: &str) -> Verdict {
    if found == expected {
        Verdict::Correct
    } else {
        Verdict::Wrong(format!("{what} is {found}, not {expected}"))
    }
}

/// A file of the codebase and its size.
struct Target {
    relative: PathBuf,
    len: u64,
}

/// Every non-empty file under `dir`, relative to `root`.
fn files(root: &Path, dir: &Path, found: &mut Vec<Target>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            files(root, &path, found);
        } else if meta.is_file() && meta.len() > 0 {
            found.push(Target {
                relative: path.strip_prefix(root).unwrap().to_owned(),
                len: meta.len(),
            });
        }
    }
}

/// A file's kind for the figures: its path with numbers and long runs of hex digits
/// (hashes, sequence numbers) shown as `*`.
fn kind(relative: &Path) -> String {
    let collapse = |run: &str| {
        if run.len() >= 8 || (!run.is_empty() && run.bytes().all(|b| b.is_ascii_digit())) {
            "*".to_owned()
        } else {
            run.to_owned()
        }
    };
    let mut kind = String::new();
    let mut run = String::new();
    for c in relative.to_string_lossy().chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        kind.push_str(&collapse(&run));
        run.clear();
        kind.push(c);
    }
    kind.push_str(&collapse(&run));
    kind
}

/// The sweep's figures.
#[derive(Default)]
struct Figures {
    flips: u64,
    /// Flips after which every item read correctly and `verify` passed.
    harmless: u64,
    /// Flips after which `spore ls` failed; of those, with exit 7.
    unopenable: u64,
    unopenable_corrupt: u64,
    /// Flips after which some run of the CLI panicked.
    panicked: u64,
    /// Flips after which an item was damaged but `verify` passed.
    verify_missed: u64,
    /// Flips after which `verify --repair` does not exist, left a home that does not
    /// verify, or lost an item it did not name.
    repair_unsupported: u64,
    repair_unclean: u64,
    repair_silent_loss: u64,
    /// Item verdicts, counted: correct, reported, reported_unnamed, unnamed, gone, wrong,
    /// panicked.
    verdicts: BTreeMap<&'static str, u64>,
    /// File kind → (flips, flips with a failure).
    by_kind: BTreeMap<String, (u64, u64)>,
    notes: Vec<String>,
}

impl Figures {
    /// Keeps (and prints) the first few findings; the figures count them all.
    fn note(&mut self, text: String) {
        if self.notes.len() < 30 {
            eprintln!("damage: {text}");
            self.notes.push(text);
        }
    }

    /// What fails the sweep. A report naming the store as a whole rather than the item
    /// (`reported_unnamed`, and a home that does not open with exit 7) is counted in
    /// the figures but is not a failure by itself: the repair must then account for
    /// the item, or `repair_silent_loss` counts it.
    fn failures(&self) -> u64 {
        let bad = |name| self.verdicts.get(name).copied().unwrap_or(0);
        (self.unopenable - self.unopenable_corrupt)
            + self.panicked
            + self.verify_missed
            + self.repair_unsupported
            + self.repair_unclean
            + self.repair_silent_loss
            + bad("unnamed")
            + bad("gone")
            + bad("wrong")
            + bad("panicked")
    }

    fn summary(&self) -> String {
        let verdicts: Vec<String> = self
            .verdicts
            .iter()
            .map(|(verdict, count)| format!("{verdict}={count}"))
            .collect();
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(kind, (flips, bad))| format!("{kind}:{bad}/{flips}"))
            .collect();
        format!(
            "damage figures: flips={} harmless={} unopenable={} (with exit 7: {}) panicked={} \
             verify_missed={} repair_unsupported={} repair_unclean={} repair_silent_loss={} \
             items: {}\n\
             damage figures by file (flips with a failure/flips): {}",
            self.flips,
            self.harmless,
            self.unopenable,
            self.unopenable_corrupt,
            self.panicked,
            self.verify_missed,
            self.repair_unsupported,
            self.repair_unclean,
            self.repair_silent_loss,
            verdicts.join(" "),
            kinds.join(" ")
        )
    }

    #[track_caller]
    fn assert_clean(&self) {
        eprintln!("{}", self.summary());
        assert!(self.flips > 0);
        assert!(
            self.failures() == 0,
            "{}\n{}",
            self.summary(),
            self.notes.join("\n")
        );
    }
}

/// Flips `count` bytes, one per fresh copy of a home, and judges each.
fn sweep(count: u64, mut rng: Rng) -> Figures {
    let home = Home::build();
    let codebase = home.spore.home().join("codebase");
    let mut targets = Vec::new();
    files(home.spore.home(), &codebase, &mut targets);
    assert!(!targets.is_empty(), "the codebase has files");
    let total: u64 = targets.iter().map(|t| t.len).sum();
    let mut kinds: BTreeMap<String, Vec<&Target>> = BTreeMap::new();
    for target in &targets {
        kinds
            .entry(kind(&target.relative))
            .or_default()
            .push(target);
    }
    let kinds: Vec<Vec<&Target>> = kinds.into_values().collect();
    let mut figures = Figures::default();
    for flip in 0..count {
        // Half the flips go to each kind of file in turn (the index, module files,
        // artifacts...), a random file of it, so that a small file such as an index is
        // hit as often as the many large ones; half by bytes, evenly spread over all.
        let (target, offset) = if flip % 2 == 0 {
            let files = &kinds[(flip / 2) as usize % kinds.len()];
            let target = files[rng.below(files.len() as u64) as usize];
            (target, rng.below(target.len))
        } else {
            let slots = count.div_ceil(2);
            let mut at = (flip / 2 * total / slots + rng.below(total / slots + 1)).min(total - 1);
            let target = targets
                .iter()
                .find(|t| {
                    let inside = at < t.len;
                    if !inside {
                        at -= t.len;
                    }
                    inside
                })
                .unwrap();
            (target, at)
        };
        let mask = 1 + rng.below(255) as u8;
        let failures_before = figures.failures();
        judge_flip(&home, target, offset, mask, &mut figures);
        let failed = figures.failures() > failures_before;
        let entry = figures.by_kind.entry(kind(&target.relative)).or_default();
        entry.0 += 1;
        entry.1 += u64::from(failed);
    }
    figures
}

/// Flips the byte at `offset` of `target` (XOR `mask`) in a fresh copy of the home and
/// reads every item.
fn judge_flip(home: &Home, target: &Target, offset: u64, mask: u8, figures: &mut Figures) {
    figures.flips += 1;
    let copy = Spore::new();
    copy_dir(home.spore.home(), copy.home());
    let file = copy.home().join(&target.relative);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[offset as usize] ^= mask;
    std::fs::write(&file, bytes).unwrap();
    let flip = format!("{} byte {offset} ^ {mask:#04x}", target.relative.display());

    // `verify` first, before any read could repair what it finds.
    let verify = Probe::run(&copy, &["verify"]);
    let reads = Reads::take(&copy, home);
    let verdicts = reads.verdicts(home);
    let opens = reads.ls.code == Some(0);
    if !opens {
        figures.unopenable += 1;
        figures.unopenable_corrupt += u64::from(reads.ls.code == Some(exit::CORRUPT));
        figures.note(format!(
            "{flip}: the home does not open: {}",
            reads.ls.text()
        ));
    }
    if verify.panicked() || reads.panicked() {
        figures.panicked += 1;
        figures.note(format!("{flip}: a command panicked"));
    }
    let damaged = verdicts.iter().any(|v| *v != Verdict::Correct);
    if damaged && verify.code == Some(0) {
        figures.verify_missed += 1;
        figures.note(format!("{flip}: `spore verify` passed on a damaged home"));
    }
    for (item, verdict) in home.items.iter().zip(&verdicts) {
        let name = match verdict {
            Verdict::Correct => "correct",
            Verdict::Reported => "reported",
            Verdict::ReportedWhole(_) => "reported_unnamed",
            Verdict::Unnamed(_) => "unnamed",
            Verdict::Gone(_) => "gone",
            Verdict::Wrong(_) => "wrong",
            Verdict::Panicked(_) => "panicked",
        };
        *figures.verdicts.entry(name).or_default() += 1;
        // A home that does not open fails every item alike: noted once, above.
        if opens && !matches!(verdict, Verdict::Correct | Verdict::Reported) {
            figures.note(format!("{flip}: {}: {verdict:?}", item.describe()));
        }
    }
    if !damaged && verify.code == Some(0) {
        figures.harmless += 1;
        return;
    }
    judge_repair(&copy, home, &flip, figures);
}

/// After damage: `verify --repair` must leave a home that verifies, and every item must
/// then be correct or named in what the repair said it dropped.
fn judge_repair(copy: &Spore, home: &Home, flip: &str, figures: &mut Figures) {
    let repair = Probe::run(copy, &["verify", "--repair"]);
    if repair.code == Some(exit::USAGE) {
        figures.repair_unsupported += 1;
        return;
    }
    let verify = Probe::run(copy, &["verify"]);
    if repair.panicked() || verify.panicked() {
        figures.panicked += 1;
        figures.note(format!("{flip}: the repair panicked: {}", repair.text()));
    }
    if verify.code != Some(0) {
        figures.repair_unclean += 1;
        figures.note(format!(
            "{flip}: the repaired home does not verify: {}",
            verify.text()
        ));
    }
    let said = format!("{}{}", repair.stdout, repair.stderr);
    let verdicts = Reads::take(copy, home).verdicts(home);
    for (item, verdict) in home.items.iter().zip(verdicts) {
        let declared = item.ids(home).iter().any(|id| said.contains(id));
        if verdict != Verdict::Correct && !declared {
            figures.repair_silent_loss += 1;
            figures.note(format!(
                "{flip}: after the repair, {} is {verdict:?} and the repair did not name it",
                item.describe()
            ));
        }
    }
}

#[test]
fn file_kinds_hide_hashes_and_sequence_numbers() {
    assert_eq!(
        kind(Path::new(
            "codebase/modules/af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        )),
        "codebase/modules/*"
    );
    assert_eq!(
        kind(Path::new("codebase/snap.00000000000A4F2")),
        "codebase/snap.*"
    );
    assert_eq!(
        kind(Path::new("codebase/index.redb")),
        "codebase/index.redb"
    );
    assert_eq!(kind(Path::new("codebase/blobs/17")), "codebase/blobs/*");
}
