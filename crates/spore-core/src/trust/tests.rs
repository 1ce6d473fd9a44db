use super::*;
use crate::Hash;

fn mesh() -> SecretKey {
    SecretKey::from_seed([1; 32])
}
fn node() -> SecretKey {
    SecretKey::from_seed([2; 32])
}

fn certificate(expires_ms: Option<u64>) -> Signed<Membership> {
    let body = Membership {
        mesh: mesh().public(),
        node: node().public(),
        roles: vec!["edge".into()],
        serves: vec!["sensor".into()],
        issued_ms: 1_000,
        expires_ms,
    };
    Signed::sign(body, &mesh()).unwrap()
}

#[test]
fn a_certificate_round_trips_through_bytes_and_text_and_admits_its_node() {
    let cert = certificate(Some(5_000));
    let again = Signed::<Membership>::from_bytes(cert.as_bytes()).unwrap();
    assert_eq!(again, cert);
    assert_eq!(
        Signed::<Membership>::from_text(&cert.to_text()).unwrap(),
        cert
    );
    assert_eq!(
        cert.admits(&mesh().public(), &node().public(), 2_000, &[]),
        Ok(())
    );
}

#[test]
fn each_failed_check_says_which() {
    let cert = certificate(Some(5_000));
    let (m, n) = (mesh().public(), node().public());
    let other = SecretKey::from_seed([3; 32]).public();
    assert!(matches!(
        cert.admits(&other, &n, 2_000, &[]),
        Err(TrustError::WrongMesh { .. })
    ));
    assert!(matches!(
        cert.admits(&m, &other, 2_000, &[]),
        Err(TrustError::WrongNode { .. })
    ));
    assert!(matches!(
        cert.admits(&m, &n, 5_000, &[]),
        Err(TrustError::Expired { .. })
    ));
    assert!(matches!(
        cert.admits(&m, &n, 0, &[]),
        Ok(()) // within the clock skew allowed
    ));
    let early = certificate(None);
    assert!(matches!(early.admits(&m, &n, 0, &[]), Ok(())));
    let revocation = Signed::sign(
        Revocation {
            mesh: m,
            node: n,
            revoked_ms: 1_500,
            reason: "lost laptop".into(),
        },
        &mesh(),
    )
    .unwrap();
    assert!(matches!(
        cert.admits(&m, &n, 2_000, std::slice::from_ref(&revocation)),
        Err(TrustError::Revoked { .. })
    ));
    // A revocation by another mesh, or of an earlier certificate, revokes nothing.
    let later = Signed::sign(
        Membership {
            issued_ms: 1_600,
            ..cert.body().clone()
        },
        &mesh(),
    )
    .unwrap();
    assert_eq!(later.admits(&m, &n, 2_000, &[revocation]), Ok(()));
}

#[test]
fn a_tampered_record_is_refused_whichever_byte_changed() {
    let cert = certificate(Some(5_000));
    for at in 0..cert.as_bytes().len() {
        let mut bytes = cert.as_bytes().to_vec();
        bytes[at] ^= 0x01;
        assert!(
            Signed::<Membership>::from_bytes(&bytes).is_err(),
            "byte {at}"
        );
    }
}

#[test]
fn a_signature_for_one_kind_of_record_is_not_one_for_another() {
    // The same fields signed as a revocation do not verify as anything else, and a
    // record signed by a key that is not its signer's is refused.
    let revocation = Signed::sign(
        Revocation {
            mesh: mesh().public(),
            node: node().public(),
            revoked_ms: 1,
            reason: String::new(),
        },
        &mesh(),
    )
    .unwrap();
    assert!(Signed::<Membership>::from_bytes(revocation.as_bytes()).is_err());
    let forged = Membership {
        ..certificate(None).body().clone()
    };
    assert!(matches!(
        Signed::sign(forged, &node()),
        Err(TrustError::WrongSigner { .. })
    ));
}

#[test]
fn publications_chain_by_hash() {
    let publisher = SecretKey::from_seed([4; 32]);
    let first = Signed::sign(
        Publication {
            publisher: publisher.public(),
            name: "billing.charge".into(),
            target: Some(Hash::of(b"v1").to_hex()),
            seq: 1,
            at_ms: 10,
            previous: None,
        },
        &publisher,
    )
    .unwrap();
    let second = Publication {
        seq: 2,
        previous: Some(first.hash()),
        target: Some(format!("{}:charge", Hash::of(b"v2"))),
        ..first.body().clone()
    };
    let second = Signed::sign(second, &publisher).unwrap();
    assert_eq!(
        Signed::<Publication>::from_bytes(second.as_bytes()).unwrap(),
        second
    );
    let unchained = Publication {
        previous: None,
        ..second.body().clone()
    };
    assert!(matches!(
        Signed::sign(unchained, &publisher),
        Err(TrustError::Malformed { .. })
    ));
}

#[test]
fn labels_are_lowercase_words() {
    for good in ["edge", "kv", "sensor.v2", "a-b_c"] {
        assert!(check_label(good).is_ok(), "{good}");
    }
    for bad in ["", "Edge", "1st", "a b", &"a".repeat(65)] {
        assert!(check_label(bad).is_err(), "{bad}");
    }
}
