#!/usr/bin/env python3
"""The fetch, gossip and DHT vectors of wire.json, computed from spec/wire.md alone.

An independent derivation, not spore's code: BLAKE3's compression function is written
out below, the bao tree and slice are laid out by the rules of spec/wire.md, and the
root this gives is checked against the `blake3` package from PyPI. CBOR is written by
hand. `crates/spore-mesh/src/wire.rs` (tests::vectors) checks that spore writes and
accepts the same bytes.

    pip install blake3
    python3 spec/vectors/wire_vectors.py          # checks wire.json, exit 1 on a difference
    python3 spec/vectors/wire_vectors.py --print  # prints the entries as JSON
"""

import hashlib
import json
import pathlib
import struct
import sys

import blake3

# --- BLAKE3 (the compression function of the BLAKE3 paper, section 2) ---------------

IV = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
      0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19]
PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
CHUNK_START, CHUNK_END, PARENT, ROOT = 1, 2, 4, 8
MASK = 0xFFFFFFFF


def rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & MASK


def g(s, a, b, c, d, x, y):
    s[a] = (s[a] + s[b] + x) & MASK
    s[d] = rotr(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotr(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b] + y) & MASK
    s[d] = rotr(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotr(s[b] ^ s[c], 7)


def compress(cv, block, counter, block_len, flags):
    """The first 8 words of the compression output: a chaining value."""
    m = list(struct.unpack("<16I", block.ljust(64, b"\0")))
    s = cv[:] + IV[:4] + [counter & MASK, counter >> 32, block_len, flags]
    for round_ in range(7):
        g(s, 0, 4, 8, 12, m[0], m[1])
        g(s, 1, 5, 9, 13, m[2], m[3])
        g(s, 2, 6, 10, 14, m[4], m[5])
        g(s, 3, 7, 11, 15, m[6], m[7])
        g(s, 0, 5, 10, 15, m[8], m[9])
        g(s, 1, 6, 11, 12, m[10], m[11])
        g(s, 2, 7, 8, 13, m[12], m[13])
        g(s, 3, 4, 9, 14, m[14], m[15])
        if round_ < 6:
            m = [m[i] for i in PERMUTATION]
    return [s[i] ^ s[i + 8] for i in range(8)]


def words_to_bytes(words):
    return struct.pack("<8I", *words)


def chunk_cv(chunk, index, root):
    """The chaining value of chunk `index` (at most 1024 bytes, possibly empty)."""
    blocks = [chunk[i:i + 64] for i in range(0, len(chunk), 64)] or [b""]
    cv = IV
    for n, block in enumerate(blocks):
        flags = (CHUNK_START if n == 0 else 0) | (CHUNK_END if n == len(blocks) - 1 else 0)
        if root and n == len(blocks) - 1:
            flags |= ROOT
        cv = compress(cv, block, index, len(block), flags)
    return words_to_bytes(cv)


def parent_cv(left, right, root):
    block = left + right
    return words_to_bytes(compress(IV, block, 0, 64, PARENT | (ROOT if root else 0)))


# --- bao (spec/wire.md, "The bao slice") ----------------------------------------------

CHUNK = 1024


def chunk_count(size):
    return max(1, -(-size // CHUNK))


def left_chunks(n):
    """Chunks in the left subtree of a subtree of n > 1 chunks: the largest power of
    two below n."""
    p = 1
    while p * 2 < n:
        p *= 2
    return p


def subtree_cv(data, first, n, root):
    """Chaining value of the subtree of n chunks starting at chunk `first`."""
    if n == 1:
        return chunk_cv(data[first * CHUNK:(first + 1) * CHUNK], first, root)
    k = left_chunks(n)
    return parent_cv(subtree_cv(data, first, k, False),
                     subtree_cv(data, first + k, n - k, False), root)


def bao_slice(data, start, length):
    """The slice of [start, start + length) and a description of its parts."""
    size = len(data)
    count = chunk_count(size)
    final = count - 1
    if start >= size:
        first = last = final
    else:
        first = start // CHUNK
        last = min((start + max(length, 1) - 1) // CHUNK, final)
    out = bytearray(struct.pack("<Q", size))
    layout = [{"at": 0, "len": 8, "is": f"header: the module size, {size}, u64 little-endian"}]

    def walk(lo, n):
        hi = lo + n - 1
        if hi < first or lo > last:
            return
        if n == 1:
            chunk = data[lo * CHUNK:(lo + 1) * CHUNK]
            layout.append({"at": len(out), "len": len(chunk),
                           "is": f"chunk {lo}: module bytes {lo * CHUNK}..{lo * CHUNK + len(chunk)}"})
            out.extend(chunk)
            return
        k = left_chunks(n)
        node = subtree_cv(data, lo, k, False) + subtree_cv(data, lo + k, n - k, False)
        layout.append({"at": len(out), "len": 64,
                       "is": f"parent of chunks {lo}..{hi}: chaining values of chunks "
                             f"{lo}..{lo + k - 1} and {lo + k}..{hi}"})
        out.extend(node)
        walk(lo, k)
        walk(lo + k, n - k)

    walk(0, count)
    return bytes(out), layout


# --- chunk groups (spec/wire.md, "The chunk-group slice") ---------------------------------

GROUP_CHUNKS = 16
GROUP = GROUP_CHUNKS * CHUNK


def group_count(size):
    return max(1, -(-size // GROUP))


def group_subtree_cv(data, first, n, root):
    """Chaining value of the subtree of n groups starting at group `first`: BLAKE3's
    subtree of their chunks."""
    chunks = chunk_count(len(data))
    lo = first * GROUP_CHUNKS
    hi = min((first + n) * GROUP_CHUNKS, chunks)
    return subtree_cv(data, lo, hi - lo, root)


def group_slice(data, start, length):
    """The chunk-group slice of [start, start + length) and a description of its parts."""
    size = len(data)
    count = group_count(size)
    final = count - 1
    if start >= size:
        first = last = final
    else:
        first = start // GROUP
        last = (min(start + length, size) - 1) // GROUP
    out = bytearray()
    layout = []

    def walk(lo, n):
        hi = lo + n - 1
        if hi < first or lo > last:
            return
        if n == 1:
            group = data[lo * GROUP:(lo + 1) * GROUP]
            layout.append({"at": len(out), "len": len(group),
                           "is": f"group {lo}: module bytes {lo * GROUP}..{lo * GROUP + len(group)}"})
            out.extend(group)
            return
        k = left_chunks(n)
        node = (group_subtree_cv(data, lo, k, False)
                + group_subtree_cv(data, lo + k, n - k, False))
        layout.append({"at": len(out), "len": 64,
                       "is": f"parent of groups {lo}..{hi}: chaining values of groups "
                             f"{lo}..{lo + k - 1} and {lo + k}..{hi}"})
        out.extend(node)
        walk(lo, k)
        walk(lo + k, n - k)

    walk(0, count)
    return bytes(out), layout


# --- CBOR, the few forms the frames use -------------------------------------------------

def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError(n)


def uint(n):
    return head(0, n)


def cbytes(b):
    return head(2, len(b)) + b


def text(s):
    b = s.encode()
    return head(3, len(b)) + b


def cmap(*pairs):
    return head(5, len(pairs)) + b"".join(text(k) + v for k, v in pairs)


def frame(body):
    return struct.pack(">I", len(body)) + body


# --- the vectors ------------------------------------------------------------------------

def module_bytes(size):
    return bytes((i * 7 + i // 1000) & 0xFF for i in range(size))


def vectors():
    module = module_bytes(7000)
    hash_ = blake3.blake3(module).digest()
    by_hand = subtree_cv(module, 0, chunk_count(len(module)), True)
    assert by_hand == hash_, "the hand-built bao root is not the BLAKE3 hash"
    start, length = 3000, 4000
    slice_, layout = bao_slice(module, start, length)
    grouped = module_bytes(40000)
    assert group_subtree_cv(grouped, 0, group_count(len(grouped)), True) == \
        blake3.blake3(grouped).digest(), "the hand-built group root is not the BLAKE3 hash"
    group_start, group_length = 20000, 20000
    group_slice_, group_layout = group_slice(grouped, group_start, group_length)

    peer = "12D3KooWD5hnQD22gFFXrQEZYvNMsXMiq19B48UTKSMVLBrLBatx"
    announcement = cmap(("hash", cbytes(hash_)), ("peer", text(peer)))
    module_key = b"spore/module/" + hash_
    ability_key = b"spore/ability/" + "sensor".encode()
    message = f"no module {hash_.hex()}"
    topic_data = cmap(("id", cbytes(bytes(range(16)))),
                      ("message", cmap(("n", uint(1)), ("text", text("hello")))))
    return {
        "fetch_slice": {
            "description": "A module of 7000 bytes, byte i = (7i + floor(i / 1000)) mod 256, "
                           "and the bao slice of the range [3000, 7000): chunks 2 to 6, the "
                           "last of which proves the size. `frame` is the `{slice}` frame "
                           "that carries it.",
            "module": module.hex(),
            "hash": hash_.hex(),
            "size": len(module),
            "start": start,
            "len": length,
            "request_frame": frame(cmap(("hash", cbytes(hash_)), ("start", uint(start)),
                                        ("len", uint(length)))).hex(),
            "header_frame": frame(cmap(("size", uint(len(module))))).hex(),
            "slice": slice_.hex(),
            "layout": layout,
            "frame": frame(cmap(("slice", cbytes(slice_)))).hex(),
        },
        "fetch_group_slice": {
            "description": "/spore/fetch/2: a module of 40000 bytes, byte i = (7i + "
                           "floor(i / 1000)) mod 256 (three groups: 16384, 16384 and 7232 "
                           "bytes), and the chunk-group slice of the range [20000, 40000): "
                           "groups 1 and 2, the last of which proves the size. The request "
                           "and {size} frames are those of /spore/fetch/1; `frame_head` is "
                           "the `{slice}` frame up to the slice's bytes.",
            "hash": blake3.blake3(grouped).digest().hex(),
            "size": len(grouped),
            "start": group_start,
            "len": group_length,
            "slice": group_slice_.hex(),
            "layout": group_layout,
            "frame_head": frame(cmap(("slice", cbytes(group_slice_))))[:-len(group_slice_)].hex(),
        },
        "fetch_error": {
            "description": "The answer to a request for a module the node does not hold.",
            "hash": hash_.hex(),
            "kind": "not_found",
            "message": message,
            "frame": frame(cmap(("error", cmap(("kind", text("not_found")),
                                               ("message", text(message)))))).hex(),
        },
        "gossip_announcement": {
            "description": "The data of a gossipsub message on topic spore/published/1, "
                           "and its message id (BLAKE3 of the data).",
            "hash": hash_.hex(),
            "peer": peer,
            "data": announcement.hex(),
            "message_id": blake3.blake3(announcement).digest().hex(),
        },
        "topic_message": {
            "description": "A message published with the gossip provider of the topic ability: "
                           "its gossipsub topic, its data (the canonical map {id, message}, "
                           "here id = bytes 0 to 15 and message = {n: 1, text: \"hello\"}), "
                           "its message id (BLAKE3 of the data) and the delivery id (hex of id).",
            "topic": "orders.created",
            "gossipsub_topic": "spore/topic/1/orders.created",
            "message_json": {"n": 1, "text": "hello"},
            "data": topic_data.hex(),
            "message_id": blake3.blake3(topic_data).digest().hex(),
            "delivery_id": bytes(range(16)).hex(),
        },
        "dht_keys": {
            "description": "Kademlia keys, raw bytes. kademlia_point is SHA-256 of the key: "
                           "the point of the key space whose closest peers hold the records.",
            "module_hash": hash_.hex(),
            "module_key": module_key.hex(),
            "module_kademlia_point": hashlib.sha256(module_key).hexdigest(),
            "ability": "sensor",
            "ability_key": ability_key.hex(),
            "ability_kademlia_point": hashlib.sha256(ability_key).hexdigest(),
        },
    }


def main():
    computed = vectors()
    if "--print" in sys.argv:
        print(json.dumps(computed, indent=2))
        return 0
    path = pathlib.Path(__file__).with_name("wire.json")
    stored = json.loads(path.read_text())
    wrong = [name for name, entry in computed.items() if stored.get(name) != entry]
    for name in wrong:
        print(f"{path.name}: `{name}` differs from what the spec gives", file=sys.stderr)
    if not wrong:
        print(f"{len(computed)} entries of {path.name} agree with the spec")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
