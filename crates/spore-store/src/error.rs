use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use spore_core::{Hash, HashPrefix, Name};

/// What can go wrong in the codebase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the codebase at {} is in use by another spore process (waited {waited:?}); if a node is running on this home, let it finish or stop it", path.display())]
    Locked { path: PathBuf, waited: Duration },
    #[error("codebase storage error at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("codebase index error: {0}")]
    Index(Box<redb::Error>),
    #[error("no module with hash {0} in this codebase (list modules with `spore ls`)")]
    ModuleNotFound(Hash),
    #[error("no module hash starts with `{0}` in this codebase (list modules with `spore ls`)")]
    PrefixNotFound(HashPrefix),
    #[error(
        "the prefix `{prefix}` is ambiguous; it matches:\n{}\nType more characters.",
        list(candidates)
    )]
    AmbiguousPrefix {
        prefix: HashPrefix,
        candidates: Vec<Hash>,
    },
    /// `suggestions`: existing names close to `name`, the likely typo's fix. Empty as
    /// the codebase reports it; filled by whoever answers a person
    /// (`spore_node::Node::suggest`), so that a lookup that fails often pays nothing.
    #[error(
        "no name `{name}` in this codebase (list names with `spore names ls`){}",
        did_you_mean(suggestions)
    )]
    NameNotFound { name: Name, suggestions: Vec<Name> },
    /// Stored data failed its integrity check. `item` says what it belongs to.
    #[error("{item} is corrupt ({what}); it was not used. {}", item.remedy())]
    Corrupt { item: Damaged, what: String },
    #[error("module {hash} is still named ({}); remove those names first, or pass --force to remove them with it", names.join(", "))]
    ModuleInUse { hash: Hash, names: Vec<String> },
    /// A failure shared by every write of one commit (see `kv`).
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
    /// A `kv` write that would take a namespace over its quota; the old value stays.
    #[error(
        "the kv namespace `{namespace}` would hold {would} bytes, over its quota of {quota} (limits.kv.max_namespace_bytes); the write was refused and the old value kept"
    )]
    QuotaExceeded {
        namespace: String,
        would: u64,
        quota: u64,
    },
}

/// One stored item that failed its integrity check: the thing a person knows it by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Damaged {
    /// A module's bytes (the file `codebase/modules/HASH`).
    Module(Hash),
    /// Where a name points now.
    Name(Name),
    /// One event of a name's history.
    NameHistory { name: Name, seq: u64 },
    /// One `kv` record.
    Kv { namespace: String, key: String },
    /// A record of the index whose key does not even say what it belongs to, or that was
    /// found under a key it was not written for.
    Record { table: String, key: String },
    /// The index file itself: it fails redb's own checks, or cannot be read at all.
    Index(PathBuf),
}

impl Damaged {
    fn remedy(&self) -> &'static str {
        match self {
            Damaged::Module(_) => "Publish the module again to repair it",
            Damaged::Index(_) => {
                "Run `spore verify --repair` to keep what can be read and say what was lost"
            }
            _ => {
                "Run `spore verify` to list every damaged record, `spore verify --repair` to drop them"
            }
        }
    }
}

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damaged::Module(hash) => write!(f, "module {hash}"),
            Damaged::Name(name) => write!(f, "name `{name}`"),
            Damaged::NameHistory { name, seq } => {
                write!(f, "event #{seq} of the history of name `{name}`")
            }
            Damaged::Kv { namespace, key } => {
                write!(
                    f,
                    "kv key `{}` of namespace `{namespace}`",
                    key.escape_debug()
                )
            }
            Damaged::Record { table, key } => {
                write!(f, "a record of table `{table}` (key {key})")
            }
            Damaged::Index(path) => write!(f, "the codebase index {}", path.display()),
        }
    }
}

/// `; did you mean `a`, `b` or `c`?`, or nothing without suggestions.
fn did_you_mean(names: &[Name]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [first @ .., last] => format!("; did you mean {} or {last}?", first.join(", ")),
    }
}

fn list(hashes: &[Hash]) -> String {
    hashes
        .iter()
        .map(|h| format!("  {h}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl StoreError {
    /// The kind of failure (`spec/errors.md`).
    pub fn kind(&self) -> spore_core::ErrorKind {
        use spore_core::ErrorKind;
        match self {
            StoreError::ModuleNotFound(_)
            | StoreError::PrefixNotFound(_)
            | StoreError::NameNotFound { .. } => ErrorKind::NotFound,
            StoreError::AmbiguousPrefix { .. } | StoreError::ModuleInUse { .. } => {
                ErrorKind::BadRequest
            }
            StoreError::QuotaExceeded { .. } => ErrorKind::Quota,
            StoreError::Corrupt { .. } => ErrorKind::Corrupt,
            StoreError::Locked { .. } => ErrorKind::Unavailable,
            StoreError::Io { .. } | StoreError::Index(_) => ErrorKind::Internal,
            StoreError::Shared(error) => error.kind(),
        }
    }

    /// No name `name`, with no suggestions yet.
    pub fn name_not_found(name: &Name) -> StoreError {
        StoreError::NameNotFound {
            name: name.clone(),
            suggestions: Vec::new(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    pub(crate) fn corrupt(item: Damaged, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            item,
            what: what.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found(suggestions: &[&str]) -> String {
        StoreError::NameNotFound {
            name: "math.ad".parse().unwrap(),
            suggestions: suggestions.iter().map(|s| s.parse().unwrap()).collect(),
        }
        .to_string()
    }

    #[test]
    fn an_unknown_name_says_which_names_were_likely_meant() {
        let plain = "no name `math.ad` in this codebase (list names with `spore names ls`)";
        assert_eq!(not_found(&[]), plain);
        assert_eq!(
            not_found(&["math.add"]),
            format!("{plain}; did you mean `math.add`?")
        );
        assert_eq!(
            not_found(&["math.add", "math.and", "math.abs"]),
            format!("{plain}; did you mean `math.add`, `math.and` or `math.abs`?")
        );
    }
}
