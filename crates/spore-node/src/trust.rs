//! The home's trust files (`spec/trust.md`): the keys it holds, this node's membership
//! certificate, and the revocations of its mesh.
//!
//! ```text
//! <home>/keys/NAME.key       a secret key's text and a newline (0600; keys/ is 0700)
//! <home>/mesh/certificate    this node's membership certificate, its text form
//! <home>/mesh/revocations    revocations of that mesh, one text form a line
//! ```
//!
//! NAME is a label (`spore_core::trust::check_label`). Every file is written whole or
//! not at all ([`crate::home::create_private_file`], [`crate::home::replace_private_file`]),
//! so a process killed half-way never leaves a key or a certificate that reads as
//! damaged. The node's identity (`identity.key`) is [`crate::Identity`]'s.
//!
//! What this module must not know: libp2p (this node's identity key is given to it) and
//! the clock (the time to judge a certificate at is given).

use std::io;
use std::path::{Path, PathBuf};

use spore_core::ErrorKind;
use spore_core::trust::{
    Membership, PublicKey, Revocation, SecretKey, Signed, TrustError, check_label,
};

use crate::Home;
use crate::home::{create_private_file, replace_private_file};

const KEY_EXTENSION: &str = "key";

/// Why a trust file could not be read or written, or a key or record was refused. Each
/// names the file, or the check, that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustStoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A file that exists but does not hold what it should.
    #[error("{}{}: {why}", path.display(), line.map(|n| format!(", line {n}")).unwrap_or_default())]
    Damaged {
        path: PathBuf,
        /// The line (from 1), in a file of one record a line.
        line: Option<usize>,
        why: String,
    },
    #[error("cannot make a key: the system's random source failed: {0}")]
    Random(String),
    #[error("bad key name: {0}")]
    BadName(String),
    #[error("this home holds a key named `{name}` already ({}); choose another name", path.display())]
    KeyExists { name: String, path: PathBuf },
    #[error("this home holds no key named `{name}` (no {})", path.display())]
    NoKey { name: String, path: PathBuf },
    #[error("this node belongs to no mesh (no {})", path.display())]
    NoMesh { path: PathBuf },
    #[error(
        "this home belongs to mesh {held}; taking a certificate of another mesh ({offered}) leaves it, which --force does"
    )]
    OtherMesh { held: PublicKey, offered: PublicKey },
    #[error("the certificate is for node {found}, not this node ({this}): wrong node")]
    WrongNode { this: PublicKey, found: PublicKey },
    #[error("the revocation is of mesh {found}, not this node's mesh {mesh}")]
    ForeignRevocation { mesh: PublicKey, found: PublicKey },
    /// A record that does not verify, or a certificate that does not admit this node.
    #[error(transparent)]
    Refused(#[from] TrustError),
}

/// The kind of failure a key or record refused for `error` is: a malformed one is a bad
/// request; one that does not verify, or does not admit, is refused by the mesh's policy.
pub fn refusal_kind(error: &TrustError) -> ErrorKind {
    match error {
        TrustError::BadKey(_) | TrustError::Malformed { .. } => ErrorKind::BadRequest,
        _ => ErrorKind::NotAllowed,
    }
}

impl TrustStoreError {
    /// The kind of failure, of the one taxonomy (`spec/errors.md`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TrustStoreError::Io { .. } | TrustStoreError::Random(_) => ErrorKind::Internal,
            TrustStoreError::Damaged { .. } => ErrorKind::Corrupt,
            TrustStoreError::BadName(_)
            | TrustStoreError::KeyExists { .. }
            | TrustStoreError::OtherMesh { .. } => ErrorKind::BadRequest,
            TrustStoreError::NoKey { .. } | TrustStoreError::NoMesh { .. } => ErrorKind::NotFound,
            TrustStoreError::WrongNode { .. } | TrustStoreError::ForeignRevocation { .. } => {
                ErrorKind::NotAllowed
            }
            TrustStoreError::Refused(error) => refusal_kind(error),
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| TrustStoreError::Io {
            action,
            path,
            source,
        }
    }
}

type Result<T> = std::result::Result<T, TrustStoreError>;

/// Whether a certificate of another mesh than the one the home holds may replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherMesh {
    Refuse,
    Replace,
}

/// The trust files of one home.
#[derive(Debug, Clone)]
pub struct TrustStore {
    keys: PathBuf,
    mesh: PathBuf,
}

impl TrustStore {
    pub fn new(home: &Home) -> TrustStore {
        TrustStore {
            keys: home.root().join("keys"),
            mesh: home.root().join("mesh"),
        }
    }

    pub fn keys_dir(&self) -> &Path {
        &self.keys
    }

    /// Makes a key named `name` ([`random_key`]) and keeps it; refuses a name the home
    /// holds already.
    pub fn new_key(&self, name: &str) -> Result<SecretKey> {
        let key = random_key()?;
        self.add_key(name, &key)?;
        Ok(key)
    }

    /// Keeps `key` as the key named `name`; refuses a name the home holds already.
    pub fn add_key(&self, name: &str, key: &SecretKey) -> Result<()> {
        let path = self.key_path(name)?;
        private_dir(&self.keys)?;
        let text = format!("{}\n", key.to_text());
        if !create_private_file(&path, text.as_bytes())
            .map_err(TrustStoreError::io("write", &path))?
        {
            return Err(TrustStoreError::KeyExists {
                name: name.to_owned(),
                path,
            });
        }
        Ok(())
    }

    /// The key named `name`.
    pub fn key(&self, name: &str) -> Result<SecretKey> {
        let path = self.key_path(name)?;
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(TrustStoreError::NoKey {
                    name: name.to_owned(),
                    path,
                });
            }
            read => read.map_err(TrustStoreError::io("read", &path))?,
        };
        text.parse()
            .map_err(|e: TrustError| TrustStoreError::Damaged {
                path,
                line: None,
                why: e.to_string(),
            })
    }

    /// Every key the home holds, by name, with its public key; sorted by name.
    pub fn keys(&self) -> Result<Vec<(String, PublicKey)>> {
        let entries = match std::fs::read_dir(&self.keys) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            entries => entries.map_err(TrustStoreError::io("list", &self.keys))?,
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(TrustStoreError::io("list", &self.keys))?;
            let path = entry.path();
            // Anything else there (a file being written, `NAME.key.PID.partial`, or one a
            // person left) is no key of this home's.
            let name = match path.file_stem().and_then(|s| s.to_str()) {
                Some(name)
                    if path.extension().is_some_and(|e| e == KEY_EXTENSION)
                        && check_label(name).is_ok() =>
                {
                    name.to_owned()
                }
                _ => continue,
            };
            let key = self.key(&name)?;
            keys.push((name, key.public()));
        }
        keys.sort();
        Ok(keys)
    }

    /// This node's membership certificate, if it belongs to a mesh.
    pub fn certificate(&self) -> Result<Option<Signed<Membership>>> {
        let path = self.certificate_path();
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            read => read.map_err(TrustStoreError::io("read", &path))?,
        };
        Signed::from_text(&text)
            .map(Some)
            .map_err(|e| TrustStoreError::Damaged {
                path,
                line: None,
                why: e.to_string(),
            })
    }

    /// Refuses, under [`OtherMesh::Refuse`], when the home holds a certificate of a mesh
    /// other than `mesh`: taking a certificate of `mesh` would leave that one.
    pub fn check_mesh(&self, mesh: &PublicKey, other: OtherMesh) -> Result<()> {
        match self.certificate()? {
            Some(held) if other == OtherMesh::Refuse && held.body().mesh != *mesh => {
                Err(TrustStoreError::OtherMesh {
                    held: held.body().mesh,
                    offered: *mesh,
                })
            }
            _ => Ok(()),
        }
    }

    /// Keeps `certificate` as this node's, if it names `node` (this node's identity key)
    /// and admits it at `now_ms` given the revocations kept (its signature was verified
    /// when it was made or read). Revocations of another mesh are dropped with the old
    /// certificate.
    pub fn install_certificate(
        &self,
        certificate: &Signed<Membership>,
        node: &PublicKey,
        now_ms: u64,
        other: OtherMesh,
    ) -> Result<()> {
        let body = certificate.body();
        // Said apart from `admits`, whose message speaks of a peer presenting it.
        if body.node != *node {
            return Err(TrustStoreError::WrongNode {
                this: *node,
                found: body.node,
            });
        }
        self.check_mesh(&body.mesh, other)?;
        let kept = self.read_revocations()?;
        certificate.admits(&body.mesh, node, now_ms, &kept)?;
        private_dir(&self.mesh)?;
        let path = self.certificate_path();
        replace_private_file(&path, format!("{}\n", certificate.to_text()).as_bytes())
            .map_err(TrustStoreError::io("write", &path))?;
        if kept.iter().any(|r| r.body().mesh != body.mesh) {
            let same: Vec<_> = kept
                .into_iter()
                .filter(|r| r.body().mesh == body.mesh)
                .collect();
            self.write_revocations(&same)?;
        }
        Ok(())
    }

    /// The revocations kept of this node's mesh (none when it belongs to no mesh).
    pub fn revocations(&self) -> Result<Vec<Signed<Revocation>>> {
        let Some(certificate) = self.certificate()? else {
            return Ok(Vec::new());
        };
        let mesh = certificate.body().mesh;
        let mut kept = self.read_revocations()?;
        // Only a crash between a new mesh's certificate and the rewrite of this file
        // leaves another mesh's here.
        kept.retain(|r| r.body().mesh == mesh);
        Ok(kept)
    }

    /// Keeps `revocation`, which must be of this node's mesh; false when it is kept
    /// already.
    pub fn add_revocation(&self, revocation: &Signed<Revocation>) -> Result<bool> {
        let Some(certificate) = self.certificate()? else {
            return Err(TrustStoreError::NoMesh {
                path: self.certificate_path(),
            });
        };
        let mesh = certificate.body().mesh;
        if revocation.body().mesh != mesh {
            return Err(TrustStoreError::ForeignRevocation {
                mesh,
                found: revocation.body().mesh,
            });
        }
        let mut kept = self.read_revocations()?;
        if kept.iter().any(|r| r.as_bytes() == revocation.as_bytes()) {
            return Ok(false);
        }
        kept.push(revocation.clone());
        self.write_revocations(&kept)?;
        Ok(true)
    }

    fn key_path(&self, name: &str) -> Result<PathBuf> {
        check_label(name).map_err(TrustStoreError::BadName)?;
        Ok(self.keys.join(format!("{name}.{KEY_EXTENSION}")))
    }

    fn certificate_path(&self) -> PathBuf {
        self.mesh.join("certificate")
    }

    fn revocations_path(&self) -> PathBuf {
        self.mesh.join("revocations")
    }

    /// Every revocation in the file, of whichever mesh.
    fn read_revocations(&self) -> Result<Vec<Signed<Revocation>>> {
        let path = self.revocations_path();
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            read => read.map_err(TrustStoreError::io("read", &path))?,
        };
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                Signed::from_text(line).map_err(|e| TrustStoreError::Damaged {
                    path: path.clone(),
                    line: Some(i + 1),
                    why: e.to_string(),
                })
            })
            .collect()
    }

    fn write_revocations(&self, revocations: &[Signed<Revocation>]) -> Result<()> {
        private_dir(&self.mesh)?;
        let path = self.revocations_path();
        let text: String = revocations
            .iter()
            .map(|r| format!("{}\n", r.to_text()))
            .collect();
        replace_private_file(&path, text.as_bytes()).map_err(TrustStoreError::io("write", &path))
    }
}

/// A new key, from the system's secure random source.
pub fn random_key() -> Result<SecretKey> {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).map_err(|e| TrustStoreError::Random(e.to_string()))?;
    Ok(SecretKey::from_seed(seed))
}

/// Creates `dir` (and the home above it) readable by its owner only, unless it exists.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(TrustStoreError::io("create", dir))
}

#[cfg(test)]
mod tests;
