//! Checking every record (`verify`), dropping what is damaged (`repair`), and collecting
//! what nothing refers to (`gc`).

use std::collections::BTreeSet;

use redb::{Durability, ReadableTable};
use spore_core::{Hash, Manifest};

use crate::error::Damaged;
use crate::index::{self, Index, KV_PREFIX, MANIFESTS, NAME_HISTORY, NAMES, NOTES, PUBLICATIONS};
use crate::layout::{self, MODULES};
use crate::names::{decode_entry, history_seq, parse_name};
use crate::{Codebase, StoreError, envelope};

/// One damaged item: what it is, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub item: Damaged,
    pub what: String,
    /// The index record to drop to repair it, when it is one.
    record: Option<(String, Vec<u8>)>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.item, self.what)
    }
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub modules: usize,
    pub names: usize,
    pub name_events: usize,
    pub kv_records: usize,
    /// Derivable records (manifests, artifacts, memo entries, name records, usage
    /// counts) that were damaged and have been dropped or derived again.
    pub rebuilt: usize,
    /// Everything that is damaged and cannot be derived again.
    pub damaged: Vec<Damage>,
}

/// What `repair` dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub verified: VerifyReport,
    /// What was lost: each damaged item, now dropped.
    pub lost: Vec<Damage>,
}

/// What `gc` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Module files that no manifest refers to (a publication the process died in).
    pub modules: Vec<Hash>,
    /// Artifacts of absent modules or of another compiler.
    pub artifacts: usize,
    /// Memo entries of absent modules.
    pub memo_entries: usize,
}

impl Codebase {
    /// Checks every record: module files re-hashed against their manifests, manifests,
    /// names and their history, `kv` records, memo entries and artifacts. Derivable
    /// data that is damaged is derived again or dropped (a log line each); everything
    /// else that is damaged is reported, named.
    #[tracing::instrument(skip(self))]
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        for note in self.notes()? {
            report.damaged.push(Damage {
                item: Damaged::Index(self.index().path().to_owned()),
                what: note,
                record: None,
            });
        }
        let modules = self.verify_modules(&mut report)?;
        self.verify_names(&mut report)?;
        self.verify_kv(&mut report)?;
        self.verify_publications(&mut report)?;
        let memo_before = self.memo_count()?;
        self.memo_retain_modules(&modules)?;
        report.rebuilt += memo_before.saturating_sub(self.memo_count()?);
        let (damaged, _) = self.sweep_artifacts(None, None)?;
        report.rebuilt += damaged;
        Ok(report)
    }

    /// [`Codebase::verify`], then drops every damaged item; returns what was lost.
    #[tracing::instrument(skip(self))]
    pub fn repair(&self) -> Result<RepairReport, StoreError> {
        let verified = self.verify()?;
        let index = self.index();
        for damage in &verified.damaged {
            if let Damaged::Module(hash) = &damage.item {
                index.write(Durability::Immediate, |txn| {
                    index
                        .open_table(txn, MANIFESTS)?
                        .remove(hash.as_bytes().as_slice())
                        .map_err(|e| index.err(e))?;
                    Ok(())
                })?;
                self.names_changed();
                self.remove_module_file(hash)?;
                self.remove_artifacts_of(hash)?;
            }
        }
        index.write(Durability::Immediate, |txn| {
            for damage in &verified.damaged {
                if let Some((table, key)) = &damage.record {
                    index
                        .open_table(txn, table)?
                        .remove(key.as_slice())
                        .map_err(|e| index.err(e))?;
                }
            }
            txn.delete_table(index::table(NOTES))
                .map_err(|e| index.err(e))?;
            // Usage counts are derived again on the next write.
            txn.delete_table(index::table(index::KV_USAGE))
                .map_err(|e| index.err(e))?;
            Ok(())
        })?;
        self.names_changed();
        for damage in &verified.damaged {
            tracing::warn!(item = %damage.item, what = %damage.what, "dropped a damaged item");
        }
        Ok(RepairReport {
            lost: verified.damaged.clone(),
            verified,
        })
    }

    /// Removes what nothing refers to: module files without a manifest, artifacts of
    /// absent modules or of a compiler other than the latest, memo entries of absent
    /// modules.
    #[tracing::instrument(skip(self))]
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        let published: BTreeSet<Hash> = self.manifest_keys()?.into_iter().collect();
        let staged: BTreeSet<Hash> = self
            .inner
            .staged
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        for (name, _) in layout::files(&self.layout().dir(MODULES))? {
            let Ok(hash) = name.parse::<Hash>() else {
                continue;
            };
            if !published.contains(&hash) && !staged.contains(&hash) {
                self.remove_module_file(&hash)?;
                report.modules.push(hash);
            }
        }
        let keep: BTreeSet<Hash> = published.union(&staged).copied().collect();
        let compiler = self.current_compiler()?;
        let (damaged, unused) = self.sweep_artifacts(Some(&keep), compiler.as_deref())?;
        report.artifacts = damaged + unused;
        report.memo_entries = self.memo_retain_modules(&published)?;
        tracing::info!(
            modules = report.modules.len(),
            artifacts = report.artifacts,
            memo = report.memo_entries,
            "gc done"
        );
        Ok(report)
    }

    fn manifest_keys(&self) -> Result<Vec<Hash>, StoreError> {
        let index = self.index();
        index.read(|txn| {
            let Some(table) = index.read_table(txn, MANIFESTS)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| index.err(e))? {
                let (key, _) = item.map_err(|e| index.err(e))?;
                out.extend(Hash::from_slice(key.value()));
            }
            Ok(out)
        })
    }

    /// Every record of table `name`: its key, and its value or why it does not verify.
    fn records(&self, name: &str) -> Result<Vec<Record>, StoreError> {
        let index = self.index();
        index.read(|txn| {
            let Some(table) = index.read_table(txn, name)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| index.err(e))? {
                let (key, record) = item.map_err(|e| index.err(e))?;
                let key = key.value().to_vec();
                let value = envelope::open(name, &key, record.value()).map(<[u8]>::to_vec);
                out.push((key, value));
            }
            Ok(out)
        })
    }

    fn verify_modules(&self, report: &mut VerifyReport) -> Result<BTreeSet<Hash>, StoreError> {
        let mut present = BTreeSet::new();
        for (key, value) in self.records(MANIFESTS)? {
            let Some(hash) = Hash::from_slice(&key) else {
                report.damaged.push(record_damage(
                    MANIFESTS,
                    key,
                    "its key is not a module hash",
                ));
                continue;
            };
            report.modules += 1;
            if let Err(error) = self.module_bytes(&hash) {
                match error {
                    StoreError::Corrupt { item, what } => report.damaged.push(Damage {
                        item,
                        what,
                        record: None,
                    }),
                    other => return Err(other),
                }
                continue;
            }
            present.insert(hash);
            let intact = value
                .ok()
                .and_then(|bytes| Manifest::from_bytes(&bytes).ok())
                .is_some_and(|m| m.module == hash);
            if !intact {
                // Derived again from the module and stored (a log line says so).
                match self.manifest(&hash) {
                    Ok(_) => report.rebuilt += 1,
                    Err(StoreError::Corrupt { item, what }) => report.damaged.push(Damage {
                        item,
                        what,
                        record: None,
                    }),
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(present)
    }

    fn verify_names(&self, report: &mut VerifyReport) -> Result<(), StoreError> {
        let mut named = BTreeSet::new();
        let mut with_history = BTreeSet::new();
        for (key, value) in self.records(NAME_HISTORY)? {
            let Some(split) = key.iter().position(|b| *b == 0) else {
                report.damaged.push(record_damage(
                    NAME_HISTORY,
                    key,
                    "its key is not a name and a number",
                ));
                continue;
            };
            let name = match parse_name(NAME_HISTORY, &key[..split]) {
                Ok(name) => name,
                Err(_) => {
                    report.damaged.push(record_damage(
                        NAME_HISTORY,
                        key,
                        "its key does not start with a valid name",
                    ));
                    continue;
                }
            };
            report.name_events += 1;
            let seq = history_seq(&key[..=split], &key);
            let why = match value {
                Ok(bytes) => match decode_entry(&bytes) {
                    Ok(_) => {
                        with_history.insert(name);
                        continue;
                    }
                    Err(why) => why,
                },
                Err(why) => why.to_owned(),
            };
            report.damaged.push(Damage {
                item: Damaged::NameHistory { name, seq },
                what: why,
                record: Some((NAME_HISTORY.into(), key)),
            });
        }
        for (key, value) in self.records(NAMES)? {
            let Ok(name) = parse_name(NAMES, &key) else {
                report
                    .damaged
                    .push(record_damage(NAMES, key, "its key is not a valid name"));
                continue;
            };
            report.names += 1;
            named.insert(name.clone());
            if value.is_ok_and(|bytes| decode_entry(&bytes).is_ok()) {
                // Whole: every event there, numbered up to the record's.
                match self.name_history(&name) {
                    Err(StoreError::Corrupt { item, what })
                        if !report.damaged.iter().any(|d| d.item == item) =>
                    {
                        report.damaged.push(Damage {
                            item,
                            what,
                            record: None,
                        })
                    }
                    _ => {}
                }
                continue;
            }
            // The latest event of an intact history says where the name points.
            match self.name(&name) {
                Ok(_) => {
                    self.rewrite_name_record(&name)?;
                    report.rebuilt += 1;
                }
                Err(StoreError::Corrupt { item, what }) => report.damaged.push(Damage {
                    item,
                    what,
                    record: Some((NAMES.into(), key)),
                }),
                Err(other) => return Err(other),
            }
        }
        for name in with_history.difference(&named) {
            // A history without its current record: derived again from the history.
            self.rewrite_name_record(name)?;
            report.rebuilt += 1;
        }
        Ok(())
    }

    /// Writes `name`'s record again from the last event of its history.
    fn rewrite_name_record(&self, name: &spore_core::Name) -> Result<(), StoreError> {
        let history = self.index().read(|txn| self.history_in(txn, name))?;
        let Some(Ok(last)) = history.into_iter().last() else {
            return Ok(());
        };
        let bytes = spore_core::value::to_canonical(&last).map_err(|e| {
            StoreError::corrupt(Damaged::Name(name.clone()), format!("does not encode: {e}"))
        })?;
        let index = self.index();
        let key = name.as_str().as_bytes();
        tracing::warn!(%name, "writing a damaged name record again from its history");
        index.write(Durability::Immediate, |txn| {
            index
                .open_table(txn, NAMES)?
                .insert(key, envelope::seal(NAMES, key, &bytes).as_slice())
                .map_err(|e| index.err(e))?;
            Ok(())
        })
    }

    fn verify_kv(&self, report: &mut VerifyReport) -> Result<(), StoreError> {
        for table in self.index().table_names()? {
            let Some(namespace) = table.strip_prefix(KV_PREFIX) else {
                continue;
            };
            for (key, value) in self.records(&table)? {
                report.kv_records += 1;
                if let Err(why) = value {
                    report.damaged.push(Damage {
                        item: Damaged::Kv {
                            namespace: namespace.to_owned(),
                            key: String::from_utf8_lossy(&key).into_owned(),
                        },
                        what: why.to_owned(),
                        record: Some((table.clone(), key)),
                    });
                }
            }
        }
        Ok(())
    }

    /// A damaged publication is reported and dropped by a repair: it is signed, so the
    /// mesh can give it again, and until then its chain ends before it.
    fn verify_publications(&self, report: &mut VerifyReport) -> Result<(), StoreError> {
        for (key, value) in self.records(PUBLICATIONS)? {
            if let Err(why) = value {
                report.damaged.push(record_damage(PUBLICATIONS, key, why));
            }
        }
        Ok(())
    }

    fn memo_count(&self) -> Result<usize, StoreError> {
        Ok(self.records(index::MEMO)?.len())
    }

    /// Damage the store found that no record carries (see [`NOTES`]).
    fn notes(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .records(NOTES)?
            .into_iter()
            .map(|(_, value)| match value {
                Ok(text) => String::from_utf8_lossy(&text).into_owned(),
                Err(why) => format!("a damage note is itself damaged ({why})"),
            })
            .collect())
    }
}

type Record = (Vec<u8>, Result<Vec<u8>, &'static str>);

fn record_damage(table: &str, key: Vec<u8>, what: &str) -> Damage {
    Damage {
        item: Damaged::Record {
            table: table.into(),
            key: crate::modules::hex(&key),
        },
        what: what.into(),
        record: Some((table.into(), key)),
    }
}

/// Records damage that no record carries, for `verify` to report until a repair.
pub(crate) fn add_note(index: &Index, text: &str) -> Result<(), StoreError> {
    index.write(Durability::Immediate, |txn| {
        let mut notes = index.open_table(txn, NOTES)?;
        let next = notes
            .last()
            .map_err(|e| index.err(e))?
            .and_then(|(k, _)| <[u8; 8]>::try_from(k.value()).ok())
            .map_or(0, |k| u64::from_be_bytes(k) + 1);
        let key = next.to_be_bytes();
        notes
            .insert(
                key.as_slice(),
                envelope::seal(NOTES, &key, text.as_bytes()).as_slice(),
            )
            .map_err(|e| index.err(e))?;
        Ok(())
    })
}
