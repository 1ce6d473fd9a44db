//! A node's identity in the two forms spore uses: the libp2p peer id the network knows
//! it by, and the ed25519 public key a membership certificate names (`spec/trust.md`).

use libp2p::PeerId;
use libp2p::identity::{self, Keypair};
use spore_core::trust::PublicKey;

/// The peer id of the node whose identity key is `key`.
pub fn peer_id_of(key: &PublicKey) -> PeerId {
    let key = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .expect("a spore public key is a valid ed25519 key");
    PeerId::from_public_key(&identity::PublicKey::from(key))
}

/// The identity key a peer id is made from, when it is an ed25519 peer id (every spore
/// node's is: libp2p inlines an ed25519 key in the peer id itself).
pub fn node_key(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    // The identity multihash (code 0) holds the key's protobuf encoding; a hashed one
    // (for keys too long to inline) cannot give the key back.
    if multihash.code() != 0 {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let bytes = key.try_into_ed25519().ok()?.to_bytes();
    PublicKey::from_bytes(bytes).ok()
}

/// The identity key of `keypair`, when it is an ed25519 key.
pub fn keypair_key(keypair: &Keypair) -> Option<PublicKey> {
    node_key(&keypair.public().to_peer_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_id_and_its_identity_key_give_each_other_back() {
        let keypair = Keypair::generate_ed25519();
        let key = keypair_key(&keypair).unwrap();
        assert_eq!(peer_id_of(&key), keypair.public().to_peer_id());
        assert_eq!(node_key(&peer_id_of(&key)), Some(key));
    }
}
