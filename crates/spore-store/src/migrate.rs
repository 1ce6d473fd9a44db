//! Importing a codebase written by spore before `index.redb`: a sled database in the
//! codebase directory (trees `blobs`, `manifests`, `names`, `name_history`, `kv/NS`,
//! `artifacts`, `memo`). It is imported once, when the codebase is opened and has no
//! index yet; then its files are moved to `codebase/sled-migrated/`.
//!
//! Modules are re-hashed on the way and their manifests derived again; names, their
//! history and `kv` data are carried over and sealed. Compiled artifacts and memoized
//! results are caches and are not. Anything that fails its check is left out, logged,
//! and recorded as a note that `spore verify` reports.

use std::path::{Path, PathBuf};

use redb::Durability;
use spore_core::{Hash, Manifest};

use crate::error::Damaged;
use crate::housekeeping::add_note;
use crate::index::{Index, MANIFESTS, NAME_HISTORY, NAMES, kv_table};
use crate::layout::{self, INDEX_NEW, Layout, SLED_MIGRATED};
use crate::names::decode_entry;
use crate::{StoreError, envelope};

/// sled's files in a database directory.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap.")
}

pub fn sled_present(layout: &Layout) -> bool {
    layout.dir("db").exists() || layout.dir("conf").exists()
}

/// Imports the sled database of `layout` into a new index (see the module's
/// documentation). The caller holds the lock.
#[tracing::instrument(skip_all, fields(path = %layout.root.display()))]
pub fn import(layout: &Layout) -> Result<(), StoreError> {
    let db = open_sled(layout)?;
    let failed = |what: &str, error: sled::Error| {
        StoreError::corrupt(
            Damaged::Index(layout.dir("db")),
            format!(
                "the sled database spore kept before cannot be read ({what}: {error}); it was left in place"
            ),
        )
    };
    let new_path = layout.dir(INDEX_NEW);
    let _ = std::fs::remove_file(&new_path);
    let index = Index::create(&new_path)?;
    let mut lost = Vec::new();
    let mut records: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();

    let blobs = db.open_tree("blobs").map_err(|e| failed("blobs", e))?;
    let mut modules = 0;
    for item in blobs.iter() {
        let (key, bytes) = item.map_err(|e| failed("blobs", e))?;
        let Some(hash) = Hash::from_slice(&key) else {
            lost.push(format!("a module stored under a {}-byte key", key.len()));
            continue;
        };
        if Hash::of(&bytes) != hash {
            lost.push(format!("module {hash}: its bytes do not match their hash"));
            continue;
        }
        let manifest = match Manifest::derive(&bytes) {
            Ok(manifest) => manifest,
            Err(error) => {
                lost.push(format!("module {hash}: not a valid spore module ({error})"));
                continue;
            }
        };
        layout.write_atomically(&layout.module(&hash), &bytes)?;
        records.push((
            MANIFESTS.into(),
            hash.as_bytes().to_vec(),
            manifest.to_bytes(),
        ));
        modules += 1;
    }
    for table in [NAMES, NAME_HISTORY] {
        let tree = db.open_tree(table).map_err(|e| failed(table, e))?;
        for item in tree.iter() {
            let (key, value) = item.map_err(|e| failed(table, e))?;
            match decode_entry(&value) {
                Ok(_) => records.push((table.into(), key.to_vec(), value.to_vec())),
                Err(why) => lost.push(format!(
                    "{table} record `{}`: {why}",
                    String::from_utf8_lossy(&key).escape_debug()
                )),
            }
        }
    }
    let mut kv = 0;
    for tree_name in db.tree_names() {
        let Some(namespace) = std::str::from_utf8(&tree_name)
            .ok()
            .and_then(|n| n.strip_prefix("kv/"))
        else {
            continue;
        };
        let tree = db.open_tree(&tree_name).map_err(|e| failed("kv", e))?;
        for item in tree.iter() {
            let (key, value) = item.map_err(|e| failed("kv", e))?;
            records.push((kv_table(namespace), key.to_vec(), value.to_vec()));
            kv += 1;
        }
    }
    index.write(Durability::Immediate, |txn| {
        for (table, key, value) in &records {
            index
                .open_table(txn, table)?
                .insert(key.as_slice(), envelope::seal(table, key, value).as_slice())
                .map_err(|e| index.err(e))?;
        }
        Ok(())
    })?;
    for what in &lost {
        tracing::error!(what, "not imported from the old sled database: damaged");
        add_note(
            &index,
            &format!("lost when importing the old sled database: {what}"),
        )?;
    }
    drop(index);
    drop(db);
    crate::install_index(layout, &new_path)?;
    tracing::warn!(
        modules,
        records = records.len(),
        kv,
        lost = lost.len(),
        "imported the codebase's old sled database into index.redb"
    );
    move_aside(layout)
}

/// Opens the sled database. sled 0.34 can leave a zero-length `snap.*.generating` file
/// when killed while opening, and then fails every open; such a file holds nothing, so
/// it is moved aside and the open tried again.
fn open_sled(layout: &Layout) -> Result<sled::Db, StoreError> {
    let open = || sled::Config::new().path(&layout.root).open();
    let error = match open() {
        Ok(db) => return Ok(db),
        Err(error) => error,
    };
    let mut moved = false;
    for (name, path) in layout::files(&layout.root)? {
        let empty = std::fs::metadata(&path).is_ok_and(|m| m.len() == 0);
        if name.starts_with("snap.") && name.ends_with(".generating") && empty {
            tracing::warn!(file = %path.display(), "moving aside an empty sled snapshot left by a crash");
            move_into_aside(layout, &name, &path)?;
            moved = true;
        }
    }
    let retried = if moved { open() } else { Err(error) };
    retried.map_err(|error| {
        StoreError::corrupt(
            Damaged::Index(layout.dir("db")),
            format!("the sled database spore kept before cannot be opened ({error}); it was left in place"),
        )
    })
}

/// Moves sled's files into `sled-migrated/`.
pub fn move_aside(layout: &Layout) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(&layout.root).map_err(StoreError::io(&layout.root))?;
    let mut moved = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io(&layout.root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_sled_file(&name) {
            move_into_aside(layout, &name, &entry.path())?;
            moved.push(name);
        }
    }
    layout::sync_dir(&layout.root).map_err(StoreError::io(&layout.root))?;
    tracing::warn!(files = ?moved, to = %layout.dir(SLED_MIGRATED).display(), "moved the old sled database aside; delete it once you no longer need it");
    Ok(())
}

fn move_into_aside(layout: &Layout, name: &str, path: &Path) -> Result<(), StoreError> {
    let aside = layout.dir(SLED_MIGRATED);
    std::fs::create_dir_all(&aside).map_err(StoreError::io(&aside))?;
    let mut target: PathBuf = aside.join(name);
    if target.exists() {
        target = aside.join(format!("{name}.{}", crate::now_ms()));
    }
    std::fs::rename(path, &target).map_err(StoreError::io(&target))
}
