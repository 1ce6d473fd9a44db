#!/usr/bin/env python3
"""The /spore/invoke/3 entries of wire.json (spec/wire.md), written from the spec with a
CBOR encoder of its own, independent of spore's code. Usage:
    python3 spec/vectors/invoke_vectors.py spec/vectors/wire.json
rewrites the invoke entries in place; the Rust tests check that spore writes and reads
exactly these frames."""
import json, sys
# A minimal CBOR encoder written from RFC 8949, independent of the Rust code:
# maps keep the key order given (as serde writes struct fields).
import struct
def head(major, n):
    if n < 24: return bytes([major<<5 | n])
    if n < 256: return bytes([major<<5 | 24, n])
    if n < 65536: return bytes([major<<5 | 25]) + struct.pack('>H', n)
    if n < 2**32: return bytes([major<<5 | 26]) + struct.pack('>I', n)
    return bytes([major<<5 | 27]) + struct.pack('>Q', n)
class B(bytes): pass
def enc(v):
    if v is None: return b'\xf6'
    if v is True: return b'\xf5'
    if v is False: return b'\xf4'
    if isinstance(v, int): return head(0, v) if v >= 0 else head(1, -1-v)
    if isinstance(v, (bytes, bytearray)): return head(2, len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode(); return head(3, len(b)) + b
    if isinstance(v, list): return head(4, len(v)) + b''.join(enc(x) for x in v)
    if isinstance(v, dict): return head(5, len(v)) + b''.join(enc(k)+enc(x) for k, x in v.items())
    raise TypeError(v)
def frame(v):
    body = enc(v); return struct.pack('>I', len(body)) + body

H = "7c4cba6e3d6bbdbb2ef2a2e05e1d9a6d4a1d7c6c7e5bd8c0f0a1b2c3d4e5f607"
PEER = "12D3KooWD5hnQD22gFFXrQEZYvNMsXMiq19B48UTKSMVLBrLBatx"
trace = bytes(range(16))
def call(id, placement_json, placement_cbor, memo, hops, span=None):
    msg = {"function": H + ":add", "args": bytes([0x82, 2, 3]), "deadline_ms": 10000,
           "memory_bytes": 64 << 20, "memo": memo, "placement": placement_cbor, "hops": hops,
           "trace": trace}
    entry = {"id": id, "function": H + ":add", "args": "820203", "deadline_ms": 10000,
             "memory_bytes": 64 << 20, "memo": memo, "placement": placement_json, "hops": hops,
             "trace": trace.hex()}
    if span is not None:
        msg["span"] = span
        entry["span"] = span.hex()
    entry["frame"] = frame({"id": id, "message": msg}).hex()
    return entry
steps = [{"node": PEER, "step": "ran " + H + ":add", "micros": 12}]
path = {"steps": steps, "omitted": 0}
stats = {"load": "memory", "load_us": 1, "instantiate_us": 3, "run_us": 2, "memory_bytes": 1114112}
ok = {"id": 0, "value": "05", "memo": "stored", "effectful": False, "stats": stats, "path": path,
      "frame": frame({"id": 0, "message": {"ok": {"value": bytes([5]), "memo": "stored",
                       "effectful": False, "stats": stats}, "path": path}}).hex()}
err_value = "zero"
errp = {"steps": [], "omitted": 0}
err = {"id": 1, "kind": "guest_error", "message": "division by zero", "value": enc(err_value).hex(),
       "path": errp,
       "frame": frame({"id": 1, "message": {"error": {"kind": "guest_error", "message": "division by zero",
                        "value": err_value}, "path": errp}}).hex()}
refusal = "this node runs code that may use kv for a peer only when a publisher it trusts signed it"
refused = {"id": 2, "kind": "not_allowed", "message": refusal, "path": errp, "refused": True,
           "frame": frame({"id": 2, "message": {"error": {"kind": "not_allowed", "message": refusal},
                            "path": errp, "refused": True}}).hex()}
out = {"invoke_call": call(0, "anywhere", "anywhere", True, 0),
       "invoke_call_pinned": call(7, {"on": PEER}, {"on": PEER}, False, 1),
       "invoke_call_traced": call(3, "anywhere", "anywhere", True, 1, bytes(range(0xa0, 0xa8))),
       "invoke_answer_ok": ok, "invoke_answer_error": err, "invoke_answer_refused": refused}
doc = json.load(open(sys.argv[1]))
for k, v in out.items(): doc[k] = v
json.dump(doc, open(sys.argv[1], 'w'), indent=2)
open(sys.argv[1], 'a').write('\n')
