//! Noticing that a crate's sources changed, by polling their sizes and modification
//! times. Polling needs no platform watcher and works the same on every file system
//! (network mounts and containers included); a crate's sources are a few files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the sources are looked at, and how long they must stay unchanged after a
/// change before it counts: an editor saving several files, or writing one in steps,
/// causes one rebuild, not several.
pub const SETTLE: Duration = Duration::from_millis(200);

/// What is known of each file: its modification time and size.
type Snapshot = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

/// The sources of a crate directory, as last seen.
pub struct Sources {
    dir: PathBuf,
    /// Directories never looked into: build output.
    ignored: Vec<PathBuf>,
    seen: Snapshot,
}

impl Sources {
    /// Starts watching `dir`, skipping `ignored` directories as well as every `target`
    /// directory and hidden entry (`.git`, editors' swap files).
    pub fn new(dir: &Path, ignored: Vec<PathBuf>) -> Sources {
        let mut sources = Sources {
            dir: dir.to_path_buf(),
            ignored,
            seen: Snapshot::new(),
        };
        sources.seen = sources.snapshot();
        sources
    }

    /// Blocks until the sources differ from when last seen and have then been still for
    /// [`SETTLE`]; returns the files that changed (added, edited or removed).
    pub fn wait_for_change(&mut self) -> Vec<PathBuf> {
        loop {
            std::thread::sleep(SETTLE);
            let mut now = self.snapshot();
            if now == self.seen {
                continue;
            }
            loop {
                std::thread::sleep(SETTLE);
                let later = self.snapshot();
                if later == now {
                    break;
                }
                now = later;
            }
            let changed = changed(&self.seen, &now);
            self.seen = now;
            return changed;
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new();
        self.walk(&self.dir, &mut snapshot);
        snapshot
    }

    fn walk(&self, dir: &Path, snapshot: &mut Snapshot) {
        // A directory can vanish while it is read (an editor's temporary one): what is
        // gone is simply not in this snapshot.
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let path = entry.path();
            if name.to_string_lossy().starts_with('.')
                || name == "target"
                || self.ignored.contains(&path)
            {
                continue;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                self.walk(&path, snapshot);
            } else {
                snapshot.insert(path, (metadata.modified().ok(), metadata.len()));
            }
        }
    }
}

fn changed(before: &Snapshot, after: &Snapshot) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = after
        .iter()
        .filter(|(path, seen)| before.get(*path) != Some(seen))
        .map(|(path, _)| path.clone())
        .collect();
    paths.extend(
        before
            .keys()
            .filter(|path| !after.contains_key(*path))
            .cloned(),
    );
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_is_noticed_and_build_output_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "fn a() {}").unwrap();
        let mut sources = Sources::new(dir.path(), vec![dir.path().join("out")]);

        let writer = {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                // Output first, which must not end the wait, then a source.
                std::fs::write(dir.join("target/x.wasm"), "x").unwrap();
                std::fs::write(dir.join("out/y"), "y").unwrap();
                std::fs::write(dir.join(".swap"), "z").unwrap();
                std::thread::sleep(SETTLE * 3);
                std::fs::write(dir.join("src/lib.rs"), "fn b() { /* longer */ }").unwrap();
            })
        };
        let changed = sources.wait_for_change();
        writer.join().unwrap();
        assert_eq!(changed, [dir.path().join("src/lib.rs")]);
    }
}
