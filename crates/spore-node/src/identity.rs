//! The node's identity: the ed25519 keypair its libp2p peer id is made from, kept in
//! `<home>/identity.key` (libp2p's protobuf encoding, 0600) and created on first use.
//! `spore node run` and the commands that name this node (`spore node id`, `spore mesh`)
//! all take it from here, so they agree on who the node is.

use std::io;

use spore_core::trust::PublicKey;
use spore_mesh::{Keypair, PeerId};

use crate::Home;
use crate::trust::TrustStoreError;

const IDENTITY_FILE: &str = "identity.key";

/// A node's identity keypair and the public key certificates name it by.
#[derive(Debug, Clone)]
pub struct Identity {
    keypair: Keypair,
    key: PublicKey,
}

impl Identity {
    /// The home's identity, created on first use. Two processes creating it at once
    /// agree on one: the first file written is kept, and the other process reads it.
    pub fn load_or_create(home: &Home) -> Result<Identity, TrustStoreError> {
        let path = home.root().join(IDENTITY_FILE);
        let damaged = |why: String| TrustStoreError::Damaged {
            path: path.clone(),
            line: None,
            why,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let keypair = Keypair::from_protobuf_encoding(&bytes)
                    .map_err(|e| damaged(format!("not a node identity: {e}")))?;
                // spore peer ids are ed25519 ones: a certificate names the node by that key.
                let key = spore_mesh::keypair_key(&keypair)
                    .ok_or_else(|| damaged("not an ed25519 identity".into()))?;
                Ok(Identity { keypair, key })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(home.root())
                    .map_err(TrustStoreError::io("create", home.root()))?;
                let bytes = Keypair::generate_ed25519()
                    .to_protobuf_encoding()
                    .map_err(|e| TrustStoreError::io("make", &path)(io::Error::other(e)))?;
                // Created or not (another process was first), the file is the identity.
                crate::home::create_private_file(&path, &bytes)
                    .map_err(TrustStoreError::io("write", &path))?;
                Identity::load_or_create(home)
            }
            Err(e) => Err(TrustStoreError::io("read", &path)(e)),
        }
    }

    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    pub fn into_keypair(self) -> Keypair {
        self.keypair
    }

    /// The identity's public key, as membership certificates name the node.
    pub fn key(&self) -> PublicKey {
        self.key
    }

    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_created_once_and_read_back_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        let first = Identity::load_or_create(&home).unwrap();
        let again = Identity::load_or_create(&home).unwrap();
        assert_eq!(first.peer_id(), again.peer_id());
        assert_eq!(spore_mesh::peer_id_of(&first.key()), first.peer_id());
        let mode = std::fs::metadata(home.root().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_identity_is_an_error_naming_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::write(dir.path().join(IDENTITY_FILE), b"not protobuf").unwrap();
        let error = Identity::load_or_create(&home).unwrap_err();
        assert!(
            matches!(error, TrustStoreError::Damaged { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(IDENTITY_FILE), "{error}");
    }
}
