//! The mesh every node these tests start belongs to (`spec/trust.md`): a fixed mesh key,
//! so that the nodes of one test admit each other, and a certificate for each home
//! written before its node starts, as `spore mesh join` would.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use spore_core::trust::SecretKey;
use spore_mesh::{Keypair, Membership};

/// The abilities a test node's certificate lets it serve to the mesh: those the tests
/// bind on some nodes and call from others.
const SERVES: &[&str] = &["gpu", "http", "kv", "sensor"];

pub fn key() -> SecretKey {
    SecretKey::from_seed([0x5e; 32])
}

/// The identity of the node of `home`, created as `spore node run` would if missing.
pub fn identity(home: &Path) -> Keypair {
    let path = home.join("identity.key");
    if let Ok(bytes) = std::fs::read(&path) {
        return Keypair::from_protobuf_encoding(&bytes).expect("an identity");
    }
    let keypair = Keypair::generate_ed25519();
    std::fs::create_dir_all(home).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap()
        .write_all(&keypair.to_protobuf_encoding().unwrap())
        .unwrap();
    keypair
}

/// Makes the node of `home` a member of the tests' mesh (with role `test`), unless it
/// already holds a certificate.
pub fn join(home: &Path) {
    let certificate = home.join("mesh").join("certificate");
    if certificate.exists() {
        return;
    }
    let membership = Membership::admit(&key(), &identity(home), &["test"], SERVES).unwrap();
    std::fs::create_dir_all(certificate.parent().unwrap()).unwrap();
    std::fs::write(&certificate, membership.certificate.to_text()).unwrap();
}
