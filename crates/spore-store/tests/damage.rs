//! One flipped byte anywhere in a codebase never makes it return wrong data, lose data
//! without a word, or panic: each stored item comes back correct or is reported as
//! damaged naming it (or, when the index itself fails its check, the index is named).
//!
//! The sweep writes modules, names with history, `kv` records, memo entries and
//! artifacts; then for each of many offsets across every file of the codebase it takes a
//! fresh copy, flips one byte there, opens it and reads everything back.
//! `cargo test --workspace --test damage -- --nocapture` prints the tally.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use spore_core::{FunctionRef, Hash, Manifest, Name};
use spore_store::{Codebase, Damaged, OpenOptions, ReadFrom, StoreError};

struct Fixture {
    modules: Vec<(Vec<u8>, Manifest)>,
    /// Each name with its expected history of targets (the last is where it points).
    names: Vec<(Name, Vec<FunctionRef>)>,
    kv: Vec<(String, String, Vec<u8>)>,
}

fn module(export: &str, salt: usize) -> (Vec<u8>, Manifest) {
    let mut bytes = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "{export}") (param i32 i32) (result i64) i64.const {salt}))"#
    ))
    .unwrap();
    // A custom section makes the modules of different sizes.
    let payload = vec![b'x'; 200 * salt];
    let mut section = vec![4u8, b'p', b'a', b'd', b's'];
    section.extend_from_slice(&payload);
    bytes.push(0);
    leb128(&mut bytes, section.len());
    bytes.extend_from_slice(&section);
    let manifest = Manifest::derive(&bytes).unwrap();
    (bytes, manifest)
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_home(dir: &Path) -> Fixture {
    let codebase = Codebase::open(dir).unwrap();
    let modules: Vec<_> = (0..4).map(|i| module(&format!("f{i}"), i)).collect();
    let target = |i: usize| FunctionRef::new(modules[i].1.module, format!("f{i}").parse().unwrap());
    for (i, (bytes, manifest)) in modules.iter().enumerate() {
        let name: Name = format!("mod{i}.main").parse().unwrap();
        codebase
            .publish(bytes, manifest, &[(name, target(i))])
            .unwrap();
        codebase
            .put_artifact(&manifest.module, b"compiler", &vec![i as u8; 3000])
            .unwrap();
    }
    let mut names: Vec<(Name, Vec<FunctionRef>)> = (0..4)
        .map(|i| (format!("mod{i}.main").parse().unwrap(), vec![target(i)]))
        .collect();
    // Names that moved: a history of several events.
    for n in 0..6 {
        let name: Name = format!("moving.n{n}").parse().unwrap();
        let history: Vec<_> = (0..3).map(|step| target((n + step) % 4)).collect();
        for t in &history {
            codebase.set_name(&name, t).unwrap();
        }
        names.push((name, history));
    }
    let mut kv = Vec::new();
    for namespace in ["alpha", "beta"] {
        let space = codebase.kv_space(namespace).unwrap();
        for k in 0..20 {
            let key = format!("key-{k:02}");
            let value = format!("{namespace}:{k}:").repeat(k + 1).into_bytes();
            space.put(&key, &value).unwrap();
            kv.push((namespace.to_owned(), key, value));
        }
    }
    for m in 0..20u32 {
        codebase
            .memo_put(&Hash::of(&m.to_le_bytes()), &modules[0].1.module, b"memo")
            .unwrap();
    }
    // A value written over: its earlier value can linger in a page no commit uses.
    let space = codebase.kv_space("beta").unwrap();
    space.put("key-00", b"written over").unwrap();
    kv.iter_mut()
        .find(|(namespace, key, _)| namespace == "beta" && key == "key-00")
        .unwrap()
        .2 = b"written over".to_vec();
    // The last write is an acknowledged one, so that a commit rolled back is a loss.
    let space = codebase.kv_space("alpha").unwrap();
    space.put("last", b"the last write").unwrap();
    kv.push(("alpha".into(), "last".into(), b"the last write".to_vec()));
    Fixture { modules, names, kv }
}

#[derive(Debug, Default)]
struct Tally {
    flips: usize,
    /// Flips after which the codebase opened.
    opened: usize,
    /// Flips after which the index failed its check and was reported, named.
    unopenable: usize,
    items_correct: usize,
    items_reported: usize,
    /// Flips after which the codebase opened and every item came back correct.
    flips_all_correct: usize,
    /// ... or some items were reported damaged, naming them, and the rest correct.
    flips_reported: usize,
    /// ... or some item was silently wrong or gone, or misreported.
    flips_silent: usize,
    /// After a flip that made the index fail its check, `salvage` then reading back:
    /// items correct, items lost, flips where items were lost and the salvage report
    /// said nothing was, and items wrong.
    salvaged_correct: usize,
    salvaged_lost: usize,
    salvage_silent: Vec<String>,
    salvaged_wrong: Vec<String>,
    /// Failures: each with the first few examples.
    silently_wrong: Vec<String>,
    silently_gone: Vec<String>,
    misreported: Vec<String>,
    panicked: Vec<String>,
    by_file: BTreeMap<String, (usize, usize)>,
}

/// What a reading saw, for a failure message.
fn describe(seen: &Seen) -> String {
    match seen {
        Seen::Correct => "correct".into(),
        Seen::Reported => "reported".into(),
        Seen::Wrong(what) => format!("wrong: {what}"),
        Seen::Gone(what) => format!("gone: {what}"),
        Seen::Misreported(what) => format!("misreported: {what}"),
    }
}

enum Seen {
    Correct,
    Reported,
    Wrong(String),
    Gone(String),
    Misreported(String),
}

/// Whether `error` reports damage to `expected` (or to the whole index).
fn names_it(error: &StoreError, expected: &dyn Fn(&Damaged) -> bool) -> bool {
    match error {
        StoreError::Corrupt { item, .. } => matches!(item, Damaged::Index(_)) || expected(item),
        StoreError::Shared(inner) => names_it(inner, expected),
        _ => false,
    }
}

fn classify<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: Result<Option<T>, StoreError>,
    expected: &T,
    item: &dyn Fn(&Damaged) -> bool,
) -> Seen {
    match got {
        Ok(Some(value)) if value == *expected => Seen::Correct,
        Ok(Some(value)) => Seen::Wrong(format!("{what}: {value:?}")),
        Ok(None) => Seen::Gone(what.to_owned()),
        Err(error) if names_it(&error, item) => Seen::Reported,
        Err(StoreError::ModuleNotFound(_)) | Err(StoreError::NameNotFound { .. }) => {
            Seen::Gone(what.to_owned())
        }
        Err(error) => Seen::Misreported(format!("{what}: {error}")),
    }
}

fn read_back(codebase: &Codebase, fixture: &Fixture) -> Vec<Seen> {
    let mut seen = Vec::new();
    for (bytes, manifest) in &fixture.modules {
        let hash = manifest.module;
        let is_it = |d: &Damaged| *d == Damaged::Module(hash);
        seen.push(classify(
            &format!("module {hash}"),
            codebase.module_bytes(&hash).map(Some),
            bytes,
            &is_it,
        ));
        seen.push(classify(
            &format!("manifest {hash}"),
            codebase.manifest(&hash).map(Some),
            manifest,
            &is_it,
        ));
    }
    for (name, history) in &fixture.names {
        let is_it = |d: &Damaged| match d {
            Damaged::Name(n) | Damaged::NameHistory { name: n, .. } => n == name,
            _ => false,
        };
        let target = codebase
            .name(name)
            .map(|entry| entry.and_then(|e| e.target().cloned()));
        seen.push(classify(
            &format!("name {name}"),
            target,
            history.last().unwrap(),
            &is_it,
        ));
        let events = codebase.name_history(name).map(|events| {
            Some(
                events
                    .into_iter()
                    .map(|e| e.target().cloned())
                    .collect::<Vec<_>>(),
            )
        });
        let expected: Vec<_> = history.iter().cloned().map(Some).collect();
        seen.push(classify(
            &format!("history of {name}"),
            events,
            &expected,
            &is_it,
        ));
    }
    for (namespace, key, value) in &fixture.kv {
        let is_it = |d: &Damaged| matches!(d, Damaged::Kv { namespace: n, key: k } if n == namespace && k == key);
        let got = codebase.kv_space(namespace).and_then(|s| s.get(key));
        seen.push(classify(
            &format!("kv {namespace}/{key}"),
            got,
            value,
            &is_it,
        ));
    }
    // Derivable data is correct or gone (to be rebuilt), never wrong.
    for (i, (_, manifest)) in fixture.modules.iter().enumerate() {
        let expected = vec![i as u8; 3000];
        seen.push(match codebase.artifact(&manifest.module, b"compiler") {
            Ok(Some(code)) if code != expected => Seen::Wrong(format!("artifact {i}")),
            Ok(_) => Seen::Correct,
            Err(error) if names_it(&error, &|_| false) => Seen::Reported,
            Err(error) => Seen::Misreported(format!("artifact {i}: {error}")),
        });
    }
    for m in 0..20u32 {
        seen.push(match codebase.memo_get(&Hash::of(&m.to_le_bytes())) {
            Ok(Some(entry)) if entry != b"memo" => Seen::Wrong(format!("memo {m}")),
            Ok(_) => Seen::Correct,
            Err(error) if names_it(&error, &|_| false) => Seen::Reported,
            Err(error) => Seen::Misreported(format!("memo {m}: {error}")),
        });
    }
    // Listings: every module and name is listed, or the listing reports damage.
    let listed = codebase
        .manifests()
        .map(|m| Some(m.into_iter().map(|m| m.module).collect::<Vec<_>>()));
    let mut modules: Vec<Hash> = fixture.modules.iter().map(|(_, m)| m.module).collect();
    modules.sort();
    seen.push(classify("module list", listed, &modules, &|d| {
        matches!(d, Damaged::Module(_) | Damaged::Record { .. })
    }));
    let listed = codebase
        .names()
        .map(|n| Some(n.into_iter().map(|(name, _)| name).collect::<Vec<_>>()));
    let mut names: Vec<Name> = fixture.names.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    seen.push(classify("name list", listed, &names, &|d| {
        matches!(
            d,
            Damaged::Name(_) | Damaged::NameHistory { .. } | Damaged::Record { .. }
        )
    }));
    seen
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for file in files(from) {
        let target = to.join(&file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&file), target).unwrap();
    }
}

/// The offsets of a file of `len` bytes to flip: spread over the whole file, denser in
/// small files, plus some from a fixed pseudo-random sequence, plus every byte of the
/// first `head` (a file header: redb's commit slots).
fn offsets(len: u64, seed: u64, head: u64) -> Vec<u64> {
    if len == 0 {
        return Vec::new();
    }
    let spread = (len / 97).clamp(8, 240);
    let mut out: Vec<u64> = (0..spread).map(|i| i * len / spread).collect();
    out.extend(0..head.min(len));
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for _ in 0..spread / 4 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push((state >> 33) % len);
    }
    out.sort();
    out.dedup();
    out
}

/// A non-zero byte to XOR at `offset` of file `n`: which bits flip varies from flip to
/// flip.
fn mask(n: u64, offset: u64) -> u8 {
    let mixed = (n << 40 ^ offset).wrapping_mul(0x9e3779b97f4a7c15);
    match (mixed >> 56) as u8 {
        0 => 0xff,
        m => m,
    }
}

/// What `verify --repair` does to an index that fails its check: salvage it, then read
/// everything back.
fn salvage(work: &Path, options: &OpenOptions, fixture: &Fixture, place: &str, tally: &mut Tally) {
    let report = match Codebase::salvage(work, options) {
        Ok(report) => report,
        Err(error) => {
            tally
                .salvage_silent
                .push(format!("{place}: salvage failed: {error}"));
            return;
        }
    };
    let codebase = match Codebase::open_with(work, options) {
        Ok(codebase) => codebase,
        Err(error) => {
            tally
                .salvage_silent
                .push(format!("{place}: no open after salvage: {error}"));
            return;
        }
    };
    let mut lost = 0;
    let mut lost_items = Vec::new();
    for item in read_back(&codebase, fixture) {
        if let Seen::Wrong(what) | Seen::Gone(what) | Seen::Misreported(what) = &item {
            lost_items.push(what.clone());
        }
        match item {
            Seen::Correct => tally.salvaged_correct += 1,
            // A listing that lacks what was lost is short, not wrong.
            Seen::Wrong(what) if what.ends_with(" list") || what.contains(" list: ") => lost += 1,
            Seen::Wrong(what) => tally.salvaged_wrong.push(format!("{place}: {what}")),
            Seen::Gone(_) | Seen::Reported | Seen::Misreported(_) => lost += 1,
        }
    }
    tally.salvaged_lost += lost;
    if lost > 0 && report.lost.is_empty() {
        tally.salvage_silent.push(format!(
            "{place}: {lost} items lost, none reported (read from {:?}; {:?})",
            report.read_from, lost_items
        ));
    }
}

/// Whether a codebase that cannot be opened says so naming what is damaged.
const UNOPENABLE_NAMED: bool = true;

#[test]
fn no_flipped_byte_makes_the_codebase_silently_wrong_silently_short_or_panic() {
    let pristine = tempfile::tempdir().unwrap();
    let fixture = write_home(pristine.path());
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("codebase");
    let mut tally = Tally::default();
    let options = OpenOptions {
        lock_timeout: std::time::Duration::ZERO,
        ..Default::default()
    };
    // The control: an undamaged copy reads back whole.
    copy_dir(pristine.path(), &work);
    {
        let codebase = Codebase::open_with(&work, &options).unwrap();
        let seen = read_back(&codebase, &fixture);
        assert!(seen.iter().all(|s| matches!(s, Seen::Correct)));
    }
    for (n, file) in files(pristine.path()).iter().enumerate() {
        let len = std::fs::metadata(pristine.path().join(file)).unwrap().len();
        let head = if file.ends_with("index.redb") { 320 } else { 0 };
        for offset in offsets(len, n as u64, head) {
            copy_dir(pristine.path(), &work);
            let path = work.join(file);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[offset as usize] ^= mask(n as u64, offset);
            std::fs::write(&path, bytes).unwrap();
            tally.flips += 1;
            let label = file.display().to_string();
            let place = format!("{label}@{offset}");
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                match Codebase::open_with(&work, &options) {
                    Ok(codebase) => Ok(read_back(&codebase, &fixture)),
                    Err(error) => Err(error),
                }
            }));
            let entry = tally.by_file.entry(label).or_default();
            entry.0 += 1;
            match outcome {
                Err(_) => tally.panicked.push(place),
                Ok(Err(StoreError::Corrupt {
                    item: Damaged::Index(_),
                    ..
                })) => {
                    tally.unopenable += 1;
                    entry.1 += 1;
                    salvage(&work, &options, &fixture, &place, &mut tally);
                }
                Ok(Err(other)) => tally.misreported.push(format!("{place}: open: {other}")),
                Ok(Ok(seen)) => {
                    tally.opened += 1;
                    let silent = seen.iter().any(|s| {
                        matches!(s, Seen::Wrong(_) | Seen::Gone(_) | Seen::Misreported(_))
                    });
                    let reported = seen.iter().any(|s| matches!(s, Seen::Reported));
                    match (silent, reported) {
                        (true, _) => tally.flips_silent += 1,
                        (false, true) => tally.flips_reported += 1,
                        (false, false) => tally.flips_all_correct += 1,
                    }
                    for item in seen {
                        match item {
                            Seen::Correct => tally.items_correct += 1,
                            Seen::Reported => tally.items_reported += 1,
                            Seen::Wrong(what) => {
                                tally.silently_wrong.push(format!("{place}: {what}"))
                            }
                            Seen::Gone(what) => {
                                tally.silently_gone.push(format!("{place}: {what}"))
                            }
                            Seen::Misreported(what) => {
                                tally.misreported.push(format!("{place}: {what}"))
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "damage sweep, by flip: {} flips; opened with every item correct {}, opened with damage reported naming it {}, opened with an item silently wrong or gone {}, refused to open {} (naming the index: {})",
        tally.flips,
        tally.flips_all_correct,
        tally.flips_reported,
        tally.flips_silent,
        tally.unopenable,
        UNOPENABLE_NAMED,
    );
    eprintln!(
        "damage sweep: {} flips over {} files; opened {} (items: {} correct, {} reported damaged naming them), index reported damaged {}; silently wrong {}, silently gone {}, misreported {}, panics {}",
        tally.flips,
        tally.by_file.len(),
        tally.opened,
        tally.items_correct,
        tally.items_reported,
        tally.unopenable,
        tally.silently_wrong.len(),
        tally.silently_gone.len(),
        tally.misreported.len(),
        tally.panicked.len(),
    );
    eprintln!(
        "after `verify --repair` of those {}: items correct {}, items lost {}, flips losing items without saying so {}, items wrong {}",
        tally.unopenable,
        tally.salvaged_correct,
        tally.salvaged_lost,
        tally.salvage_silent.len(),
        tally.salvaged_wrong.len(),
    );
    for (file, (flips, unopenable)) in &tally.by_file {
        eprintln!("  {file}: {flips} flips, index reported damaged after {unopenable}");
    }
    let first = |list: &Vec<String>| list.iter().take(5).cloned().collect::<Vec<_>>();
    assert!(tally.flips > 300, "{tally:?}");
    assert!(
        tally.silently_wrong.is_empty(),
        "{:?}",
        first(&tally.silently_wrong)
    );
    assert!(
        tally.silently_gone.is_empty(),
        "{:?}",
        first(&tally.silently_gone)
    );
    assert!(
        tally.misreported.is_empty(),
        "{:?}",
        first(&tally.misreported)
    );
    assert!(tally.panicked.is_empty(), "{:?}", first(&tally.panicked));
    assert!(
        tally.salvaged_wrong.is_empty(),
        "{:?}",
        first(&tally.salvaged_wrong)
    );
    assert!(
        tally.salvage_silent.is_empty(),
        "{:?}",
        first(&tally.salvage_silent)
    );
}

/// Damage that happens while the codebase is open (after redb checked the file) reaches
/// reads that redb does not verify: the records' envelopes and the guard around redb
/// must report it, never return a wrong value, never panic. A lookup whose path through
/// a damaged page leads elsewhere can still miss (redb does not check pages on reads);
/// `verify` and the next open find that. This sweep counts those misses.
#[test]
fn damage_under_an_open_codebase_is_reported_never_wrong_never_a_panic() {
    let pristine = tempfile::tempdir().unwrap();
    let fixture = write_home(pristine.path());
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("codebase");
    let options = OpenOptions {
        // No page cache: every read goes to the file.
        cache_bytes: 0,
        ..Default::default()
    };
    let index = Path::new("index.redb");
    let len = std::fs::metadata(pristine.path().join(index))
        .unwrap()
        .len();
    let (mut flips, mut wrong, mut gone, mut reported, mut panics) = (0, 0, 0, 0, 0);
    for offset in offsets(len, 7, 0) {
        copy_dir(pristine.path(), &work);
        let codebase = Codebase::open_with(&work, &options).unwrap();
        let path = work.join(index);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset as usize] ^= mask(7, offset);
        std::fs::write(&path, bytes).unwrap();
        flips += 1;
        let fixture = &fixture;
        let outcome = catch_unwind(AssertUnwindSafe(move || {
            let seen = read_back(&codebase, fixture);
            // Closing writes to the damaged file too.
            drop(codebase);
            seen
        }));
        match outcome {
            Err(_) => panics += 1,
            Ok(seen) => {
                for item in seen {
                    match item {
                        Seen::Wrong(what) => {
                            eprintln!("wrong after a flip at {offset}: {what}");
                            wrong += 1
                        }
                        Seen::Gone(_) => gone += 1,
                        Seen::Reported | Seen::Misreported(_) => reported += 1,
                        Seen::Correct => {}
                    }
                }
            }
        }
    }
    eprintln!(
        "damage under an open codebase: {flips} flips of index.redb; items reported damaged {reported}, missed by a lookup {gone}, wrong {wrong}, panics {panics}"
    );
    assert!(flips > 100);
    assert_eq!(wrong, 0);
    assert_eq!(panics, 0);
}

/// A flipped byte in any one page of the index costs at most the records that page
/// holds: the salvage behind `verify --repair` reads every table it can reach, whether
/// the page was one of the data tables' or one of redb's own (its system tree, where the
/// allocator state is kept), and never gives up on the index as a whole.
#[test]
fn a_flip_in_any_page_of_the_index_never_costs_the_whole_index() {
    const PAGE: u64 = 4096;
    let pristine = tempfile::tempdir().unwrap();
    let fixture = write_home(pristine.path());
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("codebase");
    let options = OpenOptions {
        lock_timeout: std::time::Duration::ZERO,
        ..Default::default()
    };
    let index = PathBuf::from("index.redb");
    let len = std::fs::metadata(pristine.path().join(&index))
        .unwrap()
        .len();
    let (mut salvaged, mut whole_index_lost) = (0, Vec::new());
    let mut read_from = BTreeMap::new();
    // Page 0 holds the file header and commit slots: their flips are judged by the sweep
    // above; here each later page is hit near its start and further in.
    for page in 1..len / PAGE {
        for within in [1, 5, 17, 300] {
            let offset = page * PAGE + within;
            copy_dir(pristine.path(), &work);
            let path = work.join(&index);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[offset as usize] ^= 0x5a;
            std::fs::write(&path, bytes).unwrap();
            match Codebase::open_with(&work, &options) {
                Ok(_) => continue,
                Err(StoreError::Corrupt {
                    item: Damaged::Index(_),
                    ..
                }) => {}
                Err(other) => panic!("byte {offset}: the open failed otherwise: {other}"),
            }
            salvaged += 1;
            let report = Codebase::salvage(&work, &options).unwrap();
            if report.records_kept == 0 {
                whole_index_lost.push(format!("byte {offset}: {:?}", report.lost));
                continue;
            }
            *read_from.entry(report.read_from.as_str()).or_insert(0) += 1;
            let codebase = Codebase::open_with(&work, &options).unwrap();
            let seen = read_back(&codebase, &fixture);
            let lost = seen.iter().filter(|s| !matches!(s, Seen::Correct)).count();
            assert!(
                lost == 0 || !report.lost.is_empty(),
                "byte {offset}: {lost} items lost, none reported"
            );
            // Reading without redb's allocator state or from the pages means the damage
            // was to redb's own bookkeeping (its allocator state, its table directory):
            // every record is still there and comes back, but for a `kv` value written
            // over, whose older copy in a page no commit uses cannot be told from the
            // current one without that directory: it is reported lost, naming it.
            if report.read_from != ReadFrom::LatestCommit {
                for item in &seen {
                    let what = match item {
                        Seen::Correct => continue,
                        Seen::Gone(what) => what,
                        other => {
                            panic!("byte {offset}: {:?}: {}", report.read_from, describe(other))
                        }
                    };
                    let named = what
                        .strip_prefix("kv ")
                        .and_then(|k| k.split_once('/'))
                        .is_some_and(|(namespace, key)| {
                            report.lost.iter().any(|(item, _)| {
                                *item
                                    == Damaged::Kv {
                                        namespace: namespace.into(),
                                        key: key.into(),
                                    }
                            })
                        });
                    assert!(
                        named,
                        "byte {offset}: {what} lost from {:?} and not named: {:?}",
                        report.read_from, report.lost
                    );
                }
            }
        }
    }
    eprintln!(
        "{salvaged} flips made the index fail its check and were salvaged, reading from {read_from:?}"
    );
    assert!(salvaged > 0, "no flip made the index fail its check");
    assert!(whole_index_lost.is_empty(), "{whole_index_lost:#?}");
    // The sweep reaches both of the salvage's fallbacks.
    assert!(
        read_from.contains_key("latest_commit_rebuilt") && read_from.contains_key("pages"),
        "{read_from:?}"
    );
}
