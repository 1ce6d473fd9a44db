//! The test provider: a small Python 3 program, written into a temporary directory,
//! whose behaviour is chosen by its argument.

use std::path::PathBuf;

/// The test provider. Modes (first argument):
/// - `good`: serves `sensor` and answers every request on a thread of its own, so
///   answers come back in whatever order they finish. Operations: `read` (42), `echo`,
///   `sleep` ({n, ms}: answers n after ms), `pid`, `crash` (exits 3), `hang` (never
///   answers), `fail` (a `not_found` error), `weird` (an error of an unknown kind),
///   `garbage` (writes bytes that are no frame), `twice` (answers twice with its id),
///   `stray` (first answers an id it was never sent), `shout` (writes control
///   characters to stderr and in an error message), `long` (a 100 000-byte error
///   message). Answers of `twice` and `stray` are the request's id.
/// - `stubborn`: like `good`, but keeps running when its stdin closes.
/// - `deaf`: says hello, then never reads its stdin (until it is killed).
/// - `wrong-ability`, `missing-op`, `wrong-protocol`: a hello that does not match;
///   `control-hello`: one naming an ability with control characters in it.
/// - `silent`: never says hello (until it is killed).
/// - `slow`: like `good`, after 1.5 s without a word.
/// - `die-early`: writes to stderr and exits 1 before any hello.
/// - `garbage-hello`: writes bytes that are no frame instead of a hello.
pub const PROVIDER: &str = r#"
import os, struct, sys, threading, time

def head(major, n):
    if n < 24: return bytes([major << 5 | n])
    if n < 0x100: return bytes([major << 5 | 24, n])
    if n < 0x10000: return bytes([major << 5 | 25]) + struct.pack(">H", n)
    if n < 0x100000000: return bytes([major << 5 | 26]) + struct.pack(">I", n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)

def enc(v):
    if v is None: return b"\xf6"
    if v is True: return b"\xf5"
    if v is False: return b"\xf4"
    if isinstance(v, int): return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, float): return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, bytes): return head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, list): return head(4, len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, tuple): return head(5, len(v)) + b"".join(enc(k) + enc(x) for k, x in v)
    if isinstance(v, dict): return enc(tuple(v.items()))
    raise TypeError(v)

def dec(b, i):
    major, info = b[i] >> 5, b[i] & 31
    i += 1
    if major == 7:
        if info == 20: return False, i
        if info == 21: return True, i
        if info == 22: return None, i
        if info == 25: return struct.unpack(">e", b[i:i + 2])[0], i + 2
        if info == 26: return struct.unpack(">f", b[i:i + 4])[0], i + 4
        if info == 27: return struct.unpack(">d", b[i:i + 8])[0], i + 8
        raise ValueError("simple value %d" % info)
    if info < 24: n = info
    else:
        size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        n, i = int.from_bytes(b[i:i + size], "big"), i + size
    if major == 0: return n, i
    if major == 1: return -1 - n, i
    if major == 2: return b[i:i + n], i + n
    if major == 3: return b[i:i + n].decode(), i + n
    if major == 4:
        items = []
        for _ in range(n):
            x, i = dec(b, i)
            items.append(x)
        return items, i
    if major == 5:
        # Kept as pairs, so that maps survive an echo whatever their keys.
        pairs = []
        for _ in range(n):
            k, i = dec(b, i)
            x, i = dec(b, i)
            pairs.append((k, x))
        return tuple(pairs), i
    if major == 6: return dec(b, i)
    raise ValueError("major type %d" % major)

def get(pairs, key):
    return next(x for k, x in pairs if k == key)

out = sys.stdout.buffer
out_lock = threading.Lock()

def send(v):
    frame = enc(v)
    with out_lock:
        out.write(struct.pack(">I", len(frame)) + frame)
        out.flush()

def read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = sys.stdin.buffer.read(n - len(data))
        if not chunk: return None
        data += chunk
    return data

def serve(req):
    rid, op, arg = get(req, "id"), get(req, "operation"), get(req, "request")
    if op == "read": send({"id": rid, "ok": 42})
    elif op == "echo": send({"id": rid, "ok": arg})
    elif op == "sleep":
        time.sleep(get(arg, "ms") / 1000.0)
        send({"id": rid, "ok": get(arg, "n")})
    elif op == "pid": send({"id": rid, "ok": os.getpid()})
    elif op == "crash":
        sys.stderr.write("crashing on request %d\n" % rid)
        sys.stderr.flush()
        os._exit(3)
    elif op == "hang": pass
    elif op == "fail": send({"id": rid, "error": {"kind": "not_found", "message": "no such sensor"}})
    elif op == "weird": send({"id": rid, "error": {"kind": "sensor_on_fire", "message": "it is on fire"}})
    elif op == "garbage":
        with out_lock:
            out.write(b"\xff\xff\xff\xff this is no frame")
            out.flush()
    elif op == "twice":
        send({"id": rid, "ok": rid})
        send({"id": rid, "ok": rid})
    elif op == "stray":
        send({"id": rid + 1000000, "ok": 0})
        send({"id": rid, "ok": rid})
    elif op == "shout":
        sys.stderr.write("stderr says \x1b]0;pwned\x07 hi\rFORGED\n")
        sys.stderr.flush()
        send({"id": rid, "error": {"kind": "failed", "message": "one\nFORGED line\x1b]0;pwned\x07\x1b[31mred"}})
    elif op == "long":
        send({"id": rid, "error": {"kind": "failed", "message": "x" * 100000}})
    else: send({"id": rid, "error": {"kind": "bad_request", "message": "unknown operation " + op}})

OPERATIONS = ["read", "echo", "sleep", "pid", "crash", "hang", "fail", "weird", "garbage", "twice", "stray", "shout", "long"]
mode = sys.argv[1]
if mode == "die-early":
    sys.stderr.write("boom: no sensor attached\n")
    sys.exit(1)
if mode == "garbage-hello":
    out.write(b"\x00\x00\x00\x03\xff\xff\xff")
    out.flush()
    time.sleep(10)
    sys.exit(0)
hello = {"protocol": 1, "ability": "sensor", "operations": OPERATIONS}
if mode == "wrong-ability": hello["ability"] = "thermometer"
if mode == "missing-op": hello["operations"] = ["read"]
if mode == "wrong-protocol": hello["protocol"] = 2
if mode == "control-hello": hello["ability"] = "thermo\nmeter\x1b[0m"
if mode == "silent":
    while True: time.sleep(1)
if mode == "slow": time.sleep(1.5)
send({"hello": hello})
if mode == "deaf":
    while True: time.sleep(1)

while True:
    prefix = read_exactly(4)
    if prefix is None: break
    body = read_exactly(struct.unpack(">I", prefix)[0])
    if body is None: break
    req, _ = dec(body, 0)
    threading.Thread(target=serve, args=(req,), daemon=True).start()

if mode == "stubborn":
    while True: time.sleep(1)
"#;

pub struct Script {
    // Kept so the directory outlives the providers started from it.
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn script() -> Script {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sensor.py");
    std::fs::write(&path, PROVIDER).expect("write the provider script");
    Script { _dir: dir, path }
}
