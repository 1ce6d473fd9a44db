//! The mesh every node these tests start belongs to (`spec/trust.md`): a fixed mesh key,
//! so that the nodes of one test admit each other, and a certificate for each home
//! installed before its node starts, as `spore mesh join` would.

use std::path::Path;

use spore_core::trust::SecretKey;
use spore_mesh::Membership;
use spore_node::trust::{OtherMesh, TrustStore};
use spore_node::{Home, Identity};

/// The abilities a test node's certificate lets it serve to the mesh: those the tests
/// bind on some nodes and call from others.
const SERVES: &[&str] = &["gpu", "http", "kv", "sensor"];

pub fn key() -> SecretKey {
    SecretKey::from_seed([0x5e; 32])
}

/// Makes the node of `home` a member of the tests' mesh (with role `test`), unless it
/// already holds a certificate.
pub fn join(home: &Path) {
    join_with_roles(home, &["test"]);
}

/// [`join`] with the certificate giving `roles`.
pub fn join_with_roles(home: &Path, roles: &[&str]) {
    let home = Home::new(home);
    let store = TrustStore::new(&home);
    if store.certificate().unwrap().is_some() {
        return;
    }
    let identity = Identity::load_or_create(&home).unwrap();
    let membership = Membership::admit(&key(), identity.keypair(), roles, SERVES).unwrap();
    let now_ms = membership.certificate.body().issued_ms;
    store
        .install_certificate(
            &membership.certificate,
            &identity.key(),
            now_ms,
            OtherMesh::Refuse,
        )
        .unwrap();
}
