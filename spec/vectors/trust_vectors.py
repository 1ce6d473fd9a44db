#!/usr/bin/env python3
"""Writes spec/vectors/trust.json (spec/trust.md).

Everything here is computed from spec/trust.md alone, with the `cryptography` package
(pip install cryptography) for ed25519 and a few lines of canonical CBOR, so that the
vectors do not merely repeat what spore's Rust code writes: they are a second
implementation. Run from the repository root:
python3 spec/vectors/trust_vectors.py
"""

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

import blake3

RAW = serialization.Encoding.Raw
PUB_RAW = serialization.PublicFormat.Raw


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | info]) + n.to_bytes(width, "big")
    raise ValueError(n)


def cbor(value):
    """Canonical CBOR (RFC 8949 section 4.2.1): shortest heads, map keys sorted by
    their encoded bytes."""
    if value is None:
        return b"\xf6"
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return cbor_head(0, value)
    if isinstance(value, bytes):
        return cbor_head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode()
        return cbor_head(3, len(data)) + data
    if isinstance(value, list):
        return cbor_head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        items = sorted((cbor(k), cbor(v)) for k, v in value.items())
        return cbor_head(5, len(items)) + b"".join(k + v for k, v in items)
    raise TypeError(value)


def key(seed_byte):
    secret = Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32)
    public = secret.public_key().public_bytes(RAW, PUB_RAW)
    return secret, public


def public_text(public):
    return "ed25519:" + public.hex()


def secret_text(seed_byte):
    return "ed25519-secret:" + (bytes([seed_byte]) * 32).hex()


KINDS = {
    "membership": ("spore membership v1", "spore-membership-1:"),
    "revocation": ("spore revocation v1", "spore-revocation-1:"),
    "publication": ("spore publication v1", "spore-publication-1:"),
}


def sign(kind, body, secret, domain=None):
    domain = domain or KINDS[kind][0]
    signature = secret.sign(domain.encode() + b"\x00" + cbor(body))
    return cbor({"body": body, "signature": signature})


def text(kind, record):
    return KINDS[kind][1] + record.hex()


MESH_SEED, NODE_SEED, PUBLISHER_SEED, STRANGER_SEED = 1, 2, 4, 3
mesh_secret, MESH = key(MESH_SEED)
node_secret, NODE = key(NODE_SEED)
publisher_secret, PUBLISHER = key(PUBLISHER_SEED)
stranger_secret, STRANGER = key(STRANGER_SEED)

keys = [
    {"about": about, "seed": (bytes([seed]) * 32).hex(), "public": public_text(pub), "secret": secret_text(seed)}
    for about, seed, pub in [
        ("a mesh key", MESH_SEED, MESH),
        ("a node's identity", NODE_SEED, NODE),
        ("a publisher key", PUBLISHER_SEED, PUBLISHER),
        ("a key no one trusts", STRANGER_SEED, STRANGER),
    ]
]

certificate = {
    "mesh": MESH,
    "node": NODE,
    "roles": ["edge", "sensor-host"],
    "serves": ["log", "sensor"],
    "issued_ms": 1764460800000,
    "expires_ms": 1767052800000,
}
forever = dict(certificate, roles=[], serves=[], expires_ms=None)
revocation = {"mesh": MESH, "node": NODE, "revoked_ms": 1764547200000, "reason": "the device was lost"}
REF1 = blake3.blake3(b"charge v1").hexdigest() + ":charge"
REF2 = blake3.blake3(b"charge v2").hexdigest() + ":charge"
pub1 = {"publisher": PUBLISHER, "name": "billing.charge", "target": REF1, "seq": 1, "at_ms": 1764460800000, "previous": None}
pub1_record = sign("publication", pub1, publisher_secret)
pub2 = dict(pub1, target=REF2, seq=2, at_ms=1764460900000, previous=blake3.blake3(pub1_record).digest())
pub2_record = sign("publication", pub2, publisher_secret)
pub3 = dict(pub1, target=REF1, seq=3, at_ms=1764461000000, previous=blake3.blake3(pub2_record).digest())
pub3_record = sign("publication", pub3, publisher_secret)


def shown(body):
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in body.items()}


valid = []
for about, kind, body, record in [
    ("a membership certificate with roles, abilities and an expiry", "membership", certificate, sign("membership", certificate, mesh_secret)),
    ("a membership certificate with no roles or abilities that never expires", "membership", forever, sign("membership", forever, mesh_secret)),
    ("a revocation", "revocation", revocation, sign("revocation", revocation, mesh_secret)),
    ("the first publication of a name", "publication", pub1, pub1_record),
    ("the second, chained to the first by its hash", "publication", pub2, pub2_record),
    ("a rollback: the third, pointing at the first's reference again", "publication", pub3, pub3_record),
]:
    valid.append({
        "about": about,
        "kind": kind,
        "body": shown(body),
        "signed_message": (KINDS[kind][0].encode() + b"\x00" + cbor(body)).hex(),
        "bytes": record.hex(),
        "text": text(kind, record),
        "hash": blake3.blake3(record).hexdigest(),
    })

cert_record = sign("membership", certificate, mesh_secret)
tampered = bytearray(cert_record)
tampered[cert_record.index(b"edge")] = ord("f")  # 'edge' -> 'fdge': still a label, now not what was signed
reordered = cbor_head(5, 2) + cbor("signature") + cbor(mesh_secret.sign(b"x")) + cbor("body") + cbor(certificate)
invalid = []
for about, kind, record, error in [
    ("a certificate whose body was changed after signing", "membership", bytes(tampered), "bad_signature"),
    ("a certificate signed by a key other than the mesh it names", "membership", sign("membership", certificate, stranger_secret), "bad_signature"),
    ("a revocation's signature presented as a certificate's: the domains differ", "membership",
     cbor({"body": certificate, "signature": mesh_secret.sign(b"spore revocation v1\x00" + cbor(certificate))}), "bad_signature"),
    ("a certificate whose map keys are not in canonical order", "membership", reordered, "malformed"),
    ("a certificate with a field the format does not have", "membership", sign("membership", dict(certificate, extra=1), mesh_secret), "malformed"),
    ("a certificate whose roles are not sorted", "membership", sign("membership", dict(certificate, roles=["sensor-host", "edge"]), mesh_secret), "malformed"),
    ("a publication numbered 2 that follows nothing", "publication", sign("publication", dict(pub2, previous=None), publisher_secret), "malformed"),
]:
    invalid.append({"about": about, "kind": kind, "bytes": record.hex(), "error": error})

# Judging a certificate against a mesh, the node that presented it, a time and the
# mesh's revocations. `revoked` lists indexes into `valid`.
checks = [
    {"about": "a member", "certificate": 0, "mesh": public_text(MESH), "node": public_text(NODE), "now_ms": 1764500000000, "revocations": [], "result": "ok"},
    {"about": "another mesh", "certificate": 0, "mesh": public_text(STRANGER), "node": public_text(NODE), "now_ms": 1764500000000, "revocations": [], "result": "wrong_mesh"},
    {"about": "presented by another node", "certificate": 0, "mesh": public_text(MESH), "node": public_text(STRANGER), "now_ms": 1764500000000, "revocations": [], "result": "wrong_node"},
    {"about": "at its expiry", "certificate": 0, "mesh": public_text(MESH), "node": public_text(NODE), "now_ms": 1767052800000, "revocations": [], "result": "expired"},
    {"about": "issued more than five minutes in the future", "certificate": 0, "mesh": public_text(MESH), "node": public_text(NODE), "now_ms": 1764460800000 - 300001, "revocations": [], "result": "not_yet_valid"},
    {"about": "revoked after it was issued", "certificate": 0, "mesh": public_text(MESH), "node": public_text(NODE), "now_ms": 1764600000000, "revocations": [2], "result": "revoked"},
]

# A chain of publications fed in order to a node that holds none, with what it must
# make of each: `appended`, `already_held`, or the reason it is refused.
conflicting = sign("publication", dict(pub2, target=blake3.blake3(b"evil").hexdigest() + ":charge"), publisher_secret)
skipping = sign("publication", dict(pub3, seq=5), publisher_secret)
unlinked = sign("publication", dict(pub3, seq=4, previous=blake3.blake3(b"elsewhere").digest()), publisher_secret)
chain = [
    {"about": "the first", "bytes": pub1_record.hex(), "result": "appended"},
    {"about": "the first again, relayed", "bytes": pub1_record.hex(), "result": "already_held"},
    {"about": "the second, following the first", "bytes": pub2_record.hex(), "result": "appended"},
    {"about": "the rollback, following the second", "bytes": pub3_record.hex(), "result": "appended"},
    {"about": "the first, replayed", "bytes": pub1_record.hex(), "result": "replayed"},
    {"about": "another record numbered 2", "bytes": conflicting.hex(), "result": "conflicting"},
    {"about": "a record numbered 5 after 3", "bytes": skipping.hex(), "result": "broken_chain"},
    {"about": "a record numbered 4 naming another as its previous", "bytes": unlinked.hex(), "result": "broken_chain"},
]

hello = {"certificate": cert_record, "revocations": [sign("revocation", revocation, mesh_secret)]}
hellos = [
    {"about": "a member's hello, with a revocation it knows", "cbor": cbor(hello).hex()},
    {"about": "the hello of a node in no mesh", "cbor": cbor({"certificate": None, "revocations": []}).hex()},
]

# Chain messages (spec/trust.md, "Mesh names"): a run of one chain, with the DHT key of
# its chain, and what a node that holds the records `held` (indexes into the chain
# pub1, pub2, pub3) makes of it: how many it appends, or why it refuses it.
def chain_message(records):
    return cbor({"records": records})


def dht_key(publisher_public, name):
    return b"spore/name/" + publisher_public + name.encode()


whole = [pub1_record, pub2_record, pub3_record]
other_name = sign("publication", dict(pub1, name="billing.refund"), publisher_secret)
chain_messages = [
    {"about": "the whole chain, to a node holding none of it", "records": whole, "held": 0, "result": 3},
    {"about": "its latest two, to a node holding the first", "records": whole[1:], "held": 1, "result": 2},
    {"about": "the whole chain, to a node holding it all", "records": whole, "held": 3, "result": 0},
    {"about": "its first two, to a node holding all three: a replay", "records": whole[:2], "held": 3, "result": "replayed"},
    {"about": "its latest, to a node holding none: it needs the chain from the start", "records": whole[2:], "held": 0, "result": "broken_chain"},
    {"about": "a record missing between two", "records": [pub1_record, pub3_record], "held": 0, "result": "broken_chain"},
    {"about": "two names in one message", "records": [pub1_record, other_name], "held": 0, "result": "malformed"},
]
chain_messages = [
    {
        "about": m["about"],
        "cbor": chain_message(m["records"]).hex(),
        "held": m["held"],
        "result": m["result"],
    }
    for m in chain_messages
]
dht_keys = [{
    "about": "the DHT key of the publisher's chain of billing.charge",
    "publisher": public_text(PUBLISHER),
    "name": "billing.charge",
    "key": dht_key(PUBLISHER, "billing.charge").hex(),
}]
# Trust policies: which publishers a node believes for a name (most specific pattern).
policy = {"*": [public_text(STRANGER)], "billing.*": [public_text(PUBLISHER)], "billing.charge": [public_text(MESH), public_text(PUBLISHER)]}
policies = [
    {"policy": policy, "name": "math.add", "publishers": [public_text(STRANGER)]},
    {"policy": policy, "name": "billing.refund", "publishers": [public_text(PUBLISHER)]},
    {"policy": policy, "name": "billing.charge", "publishers": [public_text(MESH), public_text(PUBLISHER)]},
    {"policy": policy, "name": "billingx.charge", "publishers": [public_text(STRANGER)]},
    {"policy": {"billing.*": [public_text(PUBLISHER)]}, "name": "math.add", "publishers": []},
]

doc = {
    "about": "spec/trust.md: keys, signed records (membership certificates, revocations, publications), how a certificate is judged, and the hello message. All bytes in hex.",
    "keys": keys,
    "valid": valid,
    "invalid": invalid,
    "checks": checks,
    "chain": chain,
    "hellos": hellos,
    "chain_messages": chain_messages,
    "dht_keys": dht_keys,
    "policies": policies,
}
with open("spec/vectors/trust.json", "w") as out:
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")
