//! Where a node keeps its state.

use std::path::{Path, PathBuf};

/// A spore home: a directory holding the codebase (and later configuration and
/// identity). Chosen by `--home`, else `$SPORE_HOME`, else the platform data directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub const ENV: &'static str = "SPORE_HOME";

    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The home given explicitly, else from the environment, else the platform default.
    pub fn locate(explicit: Option<&Path>) -> Home {
        if let Some(path) = explicit {
            return Home::new(path);
        }
        if let Some(path) = std::env::var_os(Self::ENV).filter(|p| !p.is_empty()) {
            return Home::new(path);
        }
        let base = dirs::data_dir().unwrap_or_else(|| PathBuf::from("."));
        Home::new(base.join("spore"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn codebase_dir(&self) -> PathBuf {
        self.root.join("codebase")
    }
}
