#!/usr/bin/env python3
"""Writes spec/vectors/home.json (spec/home.md).

The expected bytes are computed here from spec/home.md alone, with the `blake3` package
(pip install blake3) and a few lines of CBOR, so that the vectors do not merely repeat
what spore's Rust code writes. Run from the repository root:
python3 spec/vectors/home_vectors.py
"""

import json

import blake3

RECORD_CONTEXT = "spore home record v1"
ARTIFACT_CONTEXT = "spore home artifact v1"


def derive(context, data):
    return blake3.blake3(data, derive_key_context=context).digest()


def u32le(n):
    return n.to_bytes(4, "little")


def seal(table, key, value):
    t = table.encode()
    checksum = derive(RECORD_CONTEXT, u32le(len(t)) + t + u32le(len(key)) + key + value)
    return b"\x01" + checksum + value


def compiler_id(fingerprint):
    return blake3.blake3(fingerprint).hexdigest()[:32]


def artifact_file(module_hash, fingerprint, code):
    cid = compiler_id(fingerprint)
    return derive(ARTIFACT_CONTEXT, module_hash + cid.encode() + code) + code


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | info]) + n.to_bytes(width, "big")
    raise ValueError(n)


def cbor(value):
    if isinstance(value, int):
        return cbor_head(0, value)
    if isinstance(value, str):
        data = value.encode()
        return cbor_head(3, len(data)) + data
    if isinstance(value, dict):
        items = sorted((cbor(k), cbor(v)) for k, v in value.items())
        return cbor_head(5, len(items)) + b"".join(k + v for k, v in items)
    raise TypeError(value)


def name_event(seq, event, at_ms):
    return cbor({"seq": seq, "event": event, "at_ms": at_ms})


MODULE = blake3.blake3(b"a module").digest()
REF = MODULE.hex() + ":add"

records = []
for table, key, value, about in [
    ("meta", b"format", u32le(1), "the index format"),
    ("manifests", MODULE, b"manifest bytes", "a manifest, keyed by module hash"),
    ("names", b"math.add", name_event(2, {"set": REF}, 1764460800000), "a name's latest event"),
    (
        "name_history",
        b"math.add\x00" + (2).to_bytes(8, "big"),
        name_event(2, {"set": REF}, 1764460800000),
        "the same event in the name's history",
    ),
    ("name_history", b"math.add\x00" + (3).to_bytes(8, "big"), name_event(3, "removed", 1764460900000), "a removal"),
    ("kv.default", "clé".encode(), b"\x63abc", "a kv record (the value is CBOR text)"),
    ("kv.default", b"empty", b"", "a kv record with an empty value"),
]:
    records.append({
        "about": about,
        "table": table,
        "key": key.hex(),
        "value": value.hex(),
        "record": seal(table, key, value).hex(),
    })

events = [
    {"seq": 2, "set": REF, "at_ms": 1764460800000, "cbor": name_event(2, {"set": REF}, 1764460800000).hex()},
    {"seq": 3, "removed": True, "at_ms": 1764460900000, "cbor": name_event(3, "removed", 1764460900000).hex()},
]

fingerprint = b"wasmtime 48 x86_64 cranelift opt=speed"
artifacts = [{
    "module": MODULE.hex(),
    "fingerprint": fingerprint.hex(),
    "compiler_id": compiler_id(fingerprint),
    "file_name": MODULE.hex() + "." + compiler_id(fingerprint),
    "code": b"native code".hex(),
    "file": artifact_file(MODULE, fingerprint, b"native code").hex(),
}]

doc = {
    "about": "spec/home.md: sealed index records (version 0x01, checksum, value), name events, and artifact files. All bytes in hex.",
    "records": records,
    "name_events": events,
    "artifacts": artifacts,
}
with open("spec/vectors/home.json", "w") as out:
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")
