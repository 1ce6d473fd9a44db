use std::os::unix::fs::PermissionsExt;

use super::*;

const NOW: u64 = 1_700_000_000_000;

fn store() -> (tempfile::TempDir, TrustStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TrustStore::new(&Home::new(dir.path()));
    (dir, store)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn certificate(mesh: &SecretKey, node: &PublicKey, expires_ms: Option<u64>) -> Signed<Membership> {
    let body = Membership {
        mesh: mesh.public(),
        node: *node,
        roles: vec!["edge".into()],
        serves: vec![],
        issued_ms: NOW - 1000,
        expires_ms,
    };
    Signed::sign(body, mesh).unwrap()
}

fn revocation(mesh: &SecretKey, node: &PublicKey, reason: &str) -> Signed<Revocation> {
    let body = Revocation {
        mesh: mesh.public(),
        node: *node,
        revoked_ms: NOW,
        reason: reason.into(),
    };
    Signed::sign(body, mesh).unwrap()
}

/// A store whose node belongs to the mesh of `mesh`.
fn member(mesh: &SecretKey, node: &PublicKey) -> (tempfile::TempDir, TrustStore) {
    let (dir, store) = store();
    store
        .install_certificate(&certificate(mesh, node, None), node, NOW, OtherMesh::Refuse)
        .unwrap();
    (dir, store)
}

#[test]
fn a_key_is_made_once_kept_owner_only_and_listed_by_name() {
    let (_dir, store) = store();
    let b = store.new_key("b").unwrap();
    let a = store.new_key("a").unwrap();
    assert_ne!(a.public(), b.public());
    assert_eq!(store.key("a").unwrap().public(), a.public());
    let error = store.new_key("a").unwrap_err();
    assert!(
        matches!(error, TrustStoreError::KeyExists { .. }),
        "{error:?}"
    );
    assert_eq!(store.key("a").unwrap().public(), a.public(), "kept");

    let path = store.keys_dir().join("a.key");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(store.keys_dir()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n", a.to_text()));

    // What is not a key of this home's is passed over.
    std::fs::write(store.keys_dir().join("a.key.77.partial"), "x").unwrap();
    std::fs::write(store.keys_dir().join("notes.txt"), "x").unwrap();
    assert_eq!(
        store.keys().unwrap(),
        vec![("a".to_owned(), a.public()), ("b".to_owned(), b.public())]
    );
}

#[test]
fn a_key_name_must_be_a_label_and_a_missing_or_damaged_key_says_so() {
    let (_dir, store) = store();
    for bad in ["", "Mesh", "../x", "a/b", "1st"] {
        let error = store.new_key(bad).unwrap_err();
        assert!(
            matches!(error, TrustStoreError::BadName(_)),
            "{bad}: {error:?}"
        );
    }
    assert!(matches!(
        store.key("absent").unwrap_err(),
        TrustStoreError::NoKey { .. }
    ));
    store.new_key("k").unwrap();
    std::fs::write(store.keys_dir().join("k.key"), "ed25519-secret:00\n").unwrap();
    let error = store.key("k").unwrap_err();
    assert!(error.to_string().contains("k.key"), "{error}");
    assert_eq!(error.kind(), ErrorKind::Corrupt);
    assert!(store.keys().is_err(), "a damaged key is not passed over");
}

#[test]
fn a_certificate_is_installed_only_for_this_node_and_while_it_admits_it() {
    let (_dir, store) = store();
    let mesh = SecretKey::from_seed([1; 32]);
    let node = SecretKey::from_seed([2; 32]).public();
    let other = SecretKey::from_seed([3; 32]).public();
    assert!(store.certificate().unwrap().is_none());

    let error = store
        .install_certificate(
            &certificate(&mesh, &other, None),
            &node,
            NOW,
            OtherMesh::Refuse,
        )
        .unwrap_err();
    assert!(
        matches!(error, TrustStoreError::WrongNode { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("wrong node"), "{error}");

    let expired = certificate(&mesh, &node, Some(NOW - 1));
    let error = store
        .install_certificate(&expired, &node, NOW, OtherMesh::Refuse)
        .unwrap_err();
    assert!(
        matches!(error, TrustStoreError::Refused(TrustError::Expired { .. })),
        "{error:?}"
    );
    assert!(store.certificate().unwrap().is_none(), "nothing installed");

    let good = certificate(&mesh, &node, Some(NOW + 1000));
    store
        .install_certificate(&good, &node, NOW, OtherMesh::Refuse)
        .unwrap();
    assert_eq!(store.certificate().unwrap(), Some(good));
    assert_eq!(mode(&store.mesh.join("certificate")), 0o600);
}

#[test]
fn a_certificate_of_another_mesh_replaces_the_held_one_only_when_asked() {
    let mesh = SecretKey::from_seed([1; 32]);
    let node = SecretKey::from_seed([2; 32]).public();
    let (_dir, store) = member(&mesh, &node);
    let gone = SecretKey::from_seed([4; 32]).public();
    store.add_revocation(&revocation(&mesh, &gone, "")).unwrap();

    let next = SecretKey::from_seed([5; 32]);
    let theirs = certificate(&next, &node, None);
    let error = store
        .install_certificate(&theirs, &node, NOW, OtherMesh::Refuse)
        .unwrap_err();
    assert!(
        matches!(error, TrustStoreError::OtherMesh { .. }),
        "{error:?}"
    );
    assert_eq!(
        store.certificate().unwrap().unwrap().body().mesh,
        mesh.public()
    );

    store
        .install_certificate(&theirs, &node, NOW, OtherMesh::Replace)
        .unwrap();
    assert_eq!(store.certificate().unwrap(), Some(theirs));
    assert!(store.revocations().unwrap().is_empty());
    assert!(
        store.read_revocations().unwrap().is_empty(),
        "the old mesh's are dropped"
    );
}

#[test]
fn revocations_of_the_nodes_mesh_are_kept_once_and_others_refused() {
    let (_dir, store) = store();
    let mesh = SecretKey::from_seed([1; 32]);
    let node = SecretKey::from_seed([2; 32]).public();
    let peer = SecretKey::from_seed([3; 32]).public();
    let error = store
        .add_revocation(&revocation(&mesh, &peer, ""))
        .unwrap_err();
    assert!(matches!(error, TrustStoreError::NoMesh { .. }), "{error:?}");

    let (_dir, store) = member(&mesh, &node);
    let revoked = revocation(&mesh, &peer, "lost laptop");
    assert!(store.add_revocation(&revoked).unwrap());
    assert!(!store.add_revocation(&revoked).unwrap(), "kept already");
    let foreign = revocation(&SecretKey::from_seed([9; 32]), &peer, "");
    let error = store.add_revocation(&foreign).unwrap_err();
    assert!(
        matches!(error, TrustStoreError::ForeignRevocation { .. }),
        "{error:?}"
    );
    assert_eq!(store.revocations().unwrap(), vec![revoked]);

    // This node revoked: its certificate issued before no longer installs.
    store
        .add_revocation(&revocation(&mesh, &node, "retired"))
        .unwrap();
    let error = store
        .install_certificate(
            &certificate(&mesh, &node, None),
            &node,
            NOW,
            OtherMesh::Refuse,
        )
        .unwrap_err();
    assert!(
        matches!(error, TrustStoreError::Refused(TrustError::Revoked { .. })),
        "{error:?}"
    );
}

#[test]
fn a_damaged_revocations_line_is_reported_with_its_file_and_number() {
    let mesh = SecretKey::from_seed([1; 32]);
    let node = SecretKey::from_seed([2; 32]).public();
    let (_dir, store) = member(&mesh, &node);
    let good = revocation(&mesh, &SecretKey::from_seed([3; 32]).public(), "");
    store.add_revocation(&good).unwrap();
    let path = store.revocations_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("spore-revocation-1:00ff\n");
    std::fs::write(&path, text).unwrap();

    let error = store.revocations().unwrap_err();
    assert!(
        matches!(error, TrustStoreError::Damaged { line: Some(2), .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("mesh/revocations, line 2: "), "{message}");
    assert_eq!(error.kind(), ErrorKind::Corrupt);
    // Nothing is added over a file that cannot be read whole.
    let other = revocation(&mesh, &SecretKey::from_seed([4; 32]).public(), "");
    assert!(store.add_revocation(&other).is_err());
}

#[test]
fn a_damaged_certificate_is_reported_with_its_file() {
    let mesh = SecretKey::from_seed([1; 32]);
    let node = SecretKey::from_seed([2; 32]).public();
    let (_dir, store) = member(&mesh, &node);
    let path = store.certificate_path();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let error = store.certificate().unwrap_err();
    assert!(error.to_string().contains("mesh/certificate: "), "{error}");
    assert_eq!(error.kind(), ErrorKind::Corrupt);
}
