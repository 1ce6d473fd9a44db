#!/usr/bin/env python3
"""A provider process for the custom `sensor` ability of spore.

Speaks the "Provider process protocol" of spec/abilities.md on stdin/stdout: frames of a
4-byte big-endian length and one CBOR map. Serves one operation, `read`: the request is
a sensor id (text), the result `{id, value, unit}` with a simulated temperature.

Python 3 standard library only, so the CBOR codec is written out below.
"""

import math
import os
import struct
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

PROTOCOL = 1
ABILITY = "sensor"
OPERATIONS = ["read"]
MAX_FRAME = 16 * 1024 * 1024

# The sensors that exist, and how long reading each one takes in seconds. `slow` is
# there to show answers arriving out of order and deadlines being honoured.
DEFAULT_SENSORS = {"attic": 0.0, "cellar": 0.0, "kitchen": 0.0, "garden": 0.0, "slow": 1.5}


def log(message):
    # stderr goes to the node's log; stdout is the protocol channel and must carry
    # nothing but frames.
    print(f"sensor-provider: {message}", file=sys.stderr, flush=True)


# --- CBOR (RFC 8949), just what the protocol needs ----------------------------------


class Tag:
    """A tagged item, kept as it is: this provider interprets no tags."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value

    def __eq__(self, other):
        return isinstance(other, Tag) and (self.tag, self.value) == (other.tag, other.value)

    def __repr__(self):
        return f"Tag({self.tag}, {self.value!r})"


def _head(major, n):
    # Shortest form, as canonical CBOR requires.
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError(f"{n} does not fit in 64 bits")


def _float(x):
    # The shortest of half, single and double that holds `x` exactly.
    for ai, fmt in ((25, ">e"), (26, ">f")):
        try:
            packed = struct.pack(fmt, x)
        except OverflowError:
            continue
        back = struct.unpack(fmt, packed)[0]
        if back == x or (math.isnan(x) and math.isnan(back)):
            return bytes([0xE0 | ai]) + packed
    return b"\xfb" + struct.pack(">d", x)


def encode(item):
    """One CBOR item: None, bool, int, float, str, bytes, list/tuple, dict or Tag."""
    if item is None:
        return b"\xf6"
    if item is True:
        return b"\xf5"
    if item is False:
        return b"\xf4"
    if isinstance(item, int):
        return _head(0, item) if item >= 0 else _head(1, -1 - item)
    if isinstance(item, float):
        return _float(item)
    if isinstance(item, str):
        data = item.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(item, (bytes, bytearray)):
        return _head(2, len(item)) + bytes(item)
    if isinstance(item, (list, tuple)):
        return _head(4, len(item)) + b"".join(encode(x) for x in item)
    if isinstance(item, dict):
        # Keys sorted by their encodings: canonical, so equal maps are equal bytes.
        entries = sorted((encode(k), encode(v)) for k, v in item.items())
        return _head(5, len(entries)) + b"".join(k + v for k, v in entries)
    if isinstance(item, Tag):
        return _head(6, item.tag) + encode(item.value)
    raise TypeError(f"cannot encode {type(item).__name__} as CBOR")


class DecodeError(ValueError):
    pass


_BREAK = object()


def decode(data):
    """The single CBOR item that is all of `data`."""
    item, end = _decode(data, 0)
    if item is _BREAK:
        raise DecodeError("unexpected break")
    if end != len(data):
        raise DecodeError(f"{len(data) - end} bytes after the item")
    return item


def _take(data, offset, n):
    if offset + n > len(data):
        raise DecodeError("the input ends in the middle of an item")
    return data[offset : offset + n], offset + n


def _decode(data, offset, depth=0):
    if depth > 256:
        raise DecodeError("nested too deeply")
    (initial,), offset = _take(data, offset, 1)
    major, ai = initial >> 5, initial & 0x1F
    if major == 7:
        if ai < 24:
            simple = {20: False, 21: True, 22: None, 23: None}
            if ai not in simple:
                raise DecodeError(f"unsupported simple value {ai}")
            return simple[ai], offset
        if ai in (25, 26, 27):
            fmt = {25: ">e", 26: ">f", 27: ">d"}[ai]
            raw, offset = _take(data, offset, struct.calcsize(fmt))
            return struct.unpack(fmt, raw)[0], offset
        if ai == 31:
            return _BREAK, offset
        raise DecodeError(f"unsupported simple value (additional info {ai})")

    if ai < 24:
        n = ai
    elif ai in (24, 25, 26, 27):
        raw, offset = _take(data, offset, 1 << (ai - 24))
        n = int.from_bytes(raw, "big")
    elif ai == 31 and major in (2, 3, 4, 5):
        return _decode_indefinite(data, offset, major, depth)
    else:
        raise DecodeError(f"malformed head {initial:#04x}")

    if major == 0:
        return n, offset
    if major == 1:
        return -1 - n, offset
    if major in (2, 3):
        raw, offset = _take(data, offset, n)
        return (bytes(raw) if major == 2 else _text(raw)), offset
    if major == 4:
        items = []
        for _ in range(n):
            item, offset = _item(data, offset, depth)
            items.append(item)
        return items, offset
    if major == 5:
        entries = {}
        for _ in range(n):
            key, offset = _item(data, offset, depth)
            entries[_hashable(key)], offset = _item(data, offset, depth)
        return entries, offset
    item, offset = _item(data, offset, depth)
    return Tag(n, item), offset


def _item(data, offset, depth):
    item, offset = _decode(data, offset, depth + 1)
    if item is _BREAK:
        raise DecodeError("unexpected break")
    return item, offset


def _decode_indefinite(data, offset, major, depth):
    items = []
    while True:
        item, offset = _decode(data, offset, depth + 1)
        if item is _BREAK:
            break
        items.append(item)
    if major == 2:
        return b"".join(items), offset
    if major == 3:
        return "".join(items), offset
    if major == 4:
        return items, offset
    if len(items) % 2:
        raise DecodeError("a map with a key but no value")
    return {_hashable(k): v for k, v in zip(items[::2], items[1::2])}, offset


def _text(raw):
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise DecodeError(f"text is not UTF-8: {error}") from None


def _hashable(key):
    # Arrays and maps can be keys in CBOR; Python dict keys must be hashable.
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return tuple(sorted((_hashable(k), _hashable(v)) for k, v in key.items()))
    return key


# --- Frames ---------------------------------------------------------------------------


def read_exactly(stream, n):
    """`n` bytes, or fewer only at end of input."""
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(stream):
    """The next frame's map, or None at a clean end of input."""
    header = read_exactly(stream, 4)
    if not header:
        return None
    if len(header) < 4:
        raise DecodeError("the input ends inside a frame header")
    (length,) = struct.unpack(">I", header)
    if length > MAX_FRAME:
        raise DecodeError(f"a frame of {length} bytes is over the 16 MiB limit")
    body = read_exactly(stream, length)
    if len(body) < length:
        raise DecodeError("the input ends inside a frame")
    return decode(body)


class FrameWriter:
    """Writes whole frames; requests are answered from several threads."""

    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, message):
        body = encode(message)
        with self.lock:
            self.stream.write(struct.pack(">I", len(body)) + body)
            self.stream.flush()


# --- The sensor ability ---------------------------------------------------------------


class SensorError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind, self.message = kind, message


def sensors_from_env():
    """`SENSOR_IDS=a,b,c` replaces the default sensors (all fast)."""
    ids = os.environ.get("SENSOR_IDS")
    if not ids:
        return dict(DEFAULT_SENSORS)
    return {sensor.strip(): 0.0 for sensor in ids.split(",") if sensor.strip()}


def temperature(sensor_id, now):
    """A plausible, repeatable temperature: a base per sensor (crc32, unlike hash(),
    is the same in every process) plus a slow ten-minute swing."""
    seed = zlib.crc32(sensor_id.encode("utf-8"))
    base = 12.0 + (seed % 1300) / 100.0  # 12.00 to 24.99 °C
    swing = 1.5 * math.sin(2 * math.pi * (now % 600) / 600 + seed % 7)
    return round(base + swing, 2)


def perform(sensors, operation, request, deadline_ms):
    if operation not in OPERATIONS:
        raise SensorError("bad_request", f"the sensor ability has no operation `{operation}`")
    if not isinstance(request, str):
        raise SensorError("bad_request", "`read` takes the sensor id as text")
    if request not in sensors:
        raise SensorError("not_found", f"no sensor called `{request}`")
    latency = sensors[request]
    if latency * 1000 > deadline_ms:
        # Answer now rather than after the caller has given up.
        raise SensorError(
            "timeout", f"reading `{request}` takes {latency * 1000:.0f} ms, over the deadline"
        )
    time.sleep(latency)
    return {"id": request, "value": float(temperature(request, time.time())), "unit": "°C"}


def serve(out, sensors, message):
    if not isinstance(message, dict) or not isinstance(message.get("id"), int):
        log(f"ignoring a frame that is not a request: {message!r}")
        return
    request_id = message["id"]
    deadline_ms = message.get("deadline_ms")
    if not isinstance(deadline_ms, int):
        deadline_ms = 2**63
    try:
        result = perform(sensors, message.get("operation"), message.get("request"), deadline_ms)
        reply = {"id": request_id, "ok": result}
    except SensorError as error:
        reply = {"id": request_id, "error": {"kind": error.kind, "message": error.message}}
    except Exception as error:  # a bug here must not leave the caller waiting
        log(f"request {request_id} failed: {error!r}")
        reply = {"id": request_id, "error": {"kind": "failed", "message": str(error)}}
    try:
        out.send(reply)
    except (BrokenPipeError, ValueError):
        pass  # the node has gone away; nobody is waiting for this answer


def main():
    sensors = sensors_from_env()
    out = FrameWriter(sys.stdout.buffer)
    out.send({"hello": {"protocol": PROTOCOL, "ability": ABILITY, "operations": OPERATIONS}})
    # Requests run on a pool so a slow sensor does not hold up the others; answers go
    # back in whatever order they finish, tagged with their ids.
    with ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            try:
                message = read_frame(sys.stdin.buffer)
            except DecodeError as error:
                # The stream is out of step: nothing after this can be trusted.
                log(f"bad frame, stopping: {error}")
                return 1
            if message is None:
                break
            pool.submit(serve, out, sensors, message)
    # The pool has drained: every request read has been answered. Nothing is logged:
    # the node may start a provider for every call, and its log is for problems.
    return 0


if __name__ == "__main__":
    sys.exit(main())
