#!/usr/bin/env python3
"""Writes spec/vectors/values.json (spec/values.md).

The expected bytes come from the small CBOR encoder and decoder below, written from
spec/values.md and RFC 8949 alone, so that the vectors do not merely repeat what
spore's Rust code writes. Python's own parsers supply the JSON reading: `json` reads a
number without fraction or exponent as an int and any other as the correctly rounded
double, as the spec says. Run from the repository root: python3 spec/vectors/values.py
"""

import json
import math
import struct


class Refused(Exception):
    def __init__(self, error, offset=None, simple=None):
        super().__init__(error, offset)
        self.error, self.offset, self.simple = error, offset, simple


class Tag:
    def __init__(self, number, content):
        self.number, self.content = number, content


class Map:
    """A map as its entries, in order: keys need not be hashable (or text)."""

    def __init__(self, entries):
        self.entries = entries


MAX_DEPTH = 128


# --- Encoding --------------------------------------------------------------------------

def head(major, argument):
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * width):
            return bytes([major << 5 | info]) + argument.to_bytes(width, "big")
    raise ValueError(argument)


def encode_float(x):
    if math.isnan(x):
        return bytes.fromhex("f97e00")
    double = struct.pack(">d", x)
    for prefix, fmt in ((0xF9, ">e"), (0xFA, ">f")):
        try:
            narrow = struct.pack(fmt, x)
        except OverflowError:
            continue
        if struct.pack(">d", struct.unpack(fmt, narrow)[0]) == double:
            return bytes([prefix]) + narrow
    return b"\xfb" + double


def encode(value, depth=0):
    if value is None:
        return b"\xf6"
    if value is False:
        return b"\xf4"
    if value is True:
        return b"\xf5"
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, str):
        data = value.encode()
        return head(3, len(data)) + data
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if depth == MAX_DEPTH:
        raise Refused("too_deep")
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(encode(v, depth + 1) for v in value)
    if isinstance(value, dict):
        value = Map(list(value.items()))
    if isinstance(value, Map):
        entries = sorted((encode(k, depth + 1), v) for k, v in value.entries)
        keys = [k for k, _ in entries]
        if len(set(keys)) != len(keys):
            raise Refused("duplicate_key")
        return head(5, len(entries)) + b"".join(k + encode(v, depth + 1) for k, v in entries)
    if isinstance(value, Tag):
        return head(6, value.number) + encode(value.content, depth + 1)
    raise TypeError(value)


# --- Decoding --------------------------------------------------------------------------

def decode(data):
    value, end = item(data, 0, 0)
    if end != len(data):
        raise Refused("trailing_bytes", end)
    return value


def read_head(data, at):
    if at >= len(data):
        raise Refused("truncated", at)
    major, info = data[at] >> 5, data[at] & 0x1F
    if 28 <= info <= 30:
        raise Refused("malformed", at)
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info, 0)
    if at + 1 + width > len(data):
        raise Refused("truncated", at)
    argument = info if info < 24 else None if info == 31 else int.from_bytes(data[at + 1:at + 1 + width], "big")
    return major, info, argument, at + 1 + width


def take(data, at, length, start):
    if at + length > len(data):
        raise Refused("truncated", start)
    return data[at:at + length], at + length


def text(chunk, start):
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("malformed", start)


def is_break(data, at):
    if at >= len(data):
        raise Refused("truncated", at)
    return data[at] == 0xFF


def item(data, at, depth):
    start = at
    major, info, argument, at = read_head(data, at)
    if major in (0, 1, 6) and argument is None:
        raise Refused("malformed", start)
    if major == 0:
        return argument, at
    if major == 1:
        return -1 - argument, at
    if major in (2, 3):
        if argument is not None:
            chunk, at = take(data, at, argument, start)
            return (chunk if major == 2 else text(chunk, start)), at
        parts = []
        while not is_break(data, at):
            chunk_start = at
            chunk_major, _, length, at = read_head(data, at)
            if chunk_major != major or length is None:
                raise Refused("malformed", chunk_start)
            chunk, at = take(data, at, length, chunk_start)
            parts.append(chunk if major == 2 else text(chunk, chunk_start))
        return (b"" if major == 2 else "").join(parts), at + 1
    if major in (4, 5, 6) and depth == MAX_DEPTH:
        raise Refused("too_deep", start)
    if major == 4:
        items = []
        while (len(items) < argument) if argument is not None else not is_break(data, at):
            value, at = item(data, at, depth + 1)
            items.append(value)
        return items, (at if argument is not None else at + 1)
    if major == 5:
        entries = []
        while (len(entries) < argument) if argument is not None else not is_break(data, at):
            key, at = item(data, at, depth + 1)
            value, at = item(data, at, depth + 1)
            entries.append((key, value))
        keys = [encode(k) for k, _ in entries]
        if len(set(keys)) != len(keys):
            raise Refused("duplicate_key")
        return Map(entries), (at if argument is not None else at + 1)
    if major == 6:
        if argument in (2, 3) and at < len(data) and data[at] >> 5 != 2:
            raise Refused("malformed", start)
        content, at = item(data, at, depth + 1)
        if argument in (2, 3):
            magnitude = int.from_bytes(content, "big")
            if magnitude < 1 << 64:
                return (magnitude if argument == 2 else -1 - magnitude), at
            return Tag(argument, content.lstrip(b"\0")), at
        return Tag(argument, content), at
    # Major type 7.
    if info == 31:
        raise Refused("malformed", start)
    if info in (20, 21):
        return info == 21, at
    if info in (22, 23):
        return None, at
    if info == 24 and argument < 32:
        raise Refused("malformed", start)
    if info in (25, 26, 27):
        fmt = {25: ">e", 26: ">f", 27: ">d"}[info]
        return struct.unpack(fmt, data[start + 1:at])[0], at
    raise Refused("simple_value", start, simple=argument)


# --- JSON ------------------------------------------------------------------------------

def from_json_text(text_):
    def integer(digits):
        n = int(digits)
        if -(1 << 64) <= n < 1 << 64:
            return n
        return finite(float(n), digits)

    def number(digits):
        return finite(float(digits), digits)

    def finite(x, digits):
        if math.isinf(x):
            raise Refused("out_of_range")
        return x

    try:
        return json.loads(text_, parse_int=integer, parse_float=number)
    except OverflowError:  # float(int) beyond the doubles
        raise Refused("out_of_range")


def display(value):
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, list):
        return [display(v) for v in value]
    if isinstance(value, dict):
        value = Map(list(value.items()))
    if isinstance(value, Map):
        if all(isinstance(k, str) for k, _ in value.entries):
            return {k: display(v) for k, v in value.entries}
        return [[display(k), display(v)] for k, v in value.entries]
    if isinstance(value, Tag):
        return {"$tag": value.number, "value": display(value.content)}
    raise TypeError(value)


def show(value):
    return json.dumps(display(value), ensure_ascii=False)


# --- The vectors -----------------------------------------------------------------------

FROM_JSON = [
    ("0", "zero"),
    ("-0", "no fraction, no exponent: the integer 0"),
    ("-0.0", "a fraction: the float -0.0, which keeps its sign"),
    ("1.0", "a fraction makes a float, whatever its value"),
    ("1e3", "an exponent makes a float"),
    ("1E-2", "the nearest double to 0.01"),
    ("23", "the largest integer in the initial byte"),
    ("24", "one byte of argument"),
    ("-24", ""),
    ("-25", ""),
    ("9007199254740993", "an integer, exact although no double holds it"),
    ("9223372036854775807", "2^63-1"),
    ("-9223372036854775808", "-2^63"),
    ("-9223372036854775809", "-2^63-1: still an integer"),
    ("18446744073709551615", "2^64-1, the largest integer"),
    ("-18446744073709551616", "-2^64, the smallest integer"),
    ("18446744073709551616", "2^64: outside the integers, so the nearest double"),
    ("-18446744073709551617", "-2^64-1: the nearest double, -2^64 as a float"),
    ("3.4028234663852886e38", "f32::MAX exactly, read to the nearest double: single precision holds it"),
    ("0.1", "needs double precision"),
    ("0.1000000000000000055511151231257827", "many digits, the same nearest double as 0.1"),
    ("9007199254740993.0", "halfway between two doubles: ties to even"),
    ("1.5", "half precision holds it"),
    ("65504.0", "the largest half"),
    ("65505.0", "just past the halves"),
    ("5.960464477539063e-8", "the smallest half subnormal"),
    ("1e-400", "below the smallest double: rounds to zero"),
    ("-1e-400", "rounds to zero of its sign"),
    ("1.7976931348623157e308", "the largest double"),
    ("4.9406564584124654e-324", "the smallest double subnormal"),
    ('"héllo"', "text in UTF-8"),
    ('""', ""),
    ("[]", ""),
    ("{}", ""),
    ("[null, true, false]", ""),
    ('{"b": 1, "a": 2, "aa": 3, "": 4}', "keys in the order of their encodings: shorter first"),
    ('{"a": [1, {"b": -1.5}], "c": "x"}', "nested"),
]

FROM_CBOR = [
    ("1817", "a non-shortest integer is read and written shortest"),
    ("1b0000000000000001", ""),
    ("f93c00", "a float that is an integer stays a float"),
    ("fb3ff0000000000000", "a double that half precision holds is written as a half"),
    ("fa3fc00000", ""),
    ("fb8000000000000000", "-0.0 keeps its sign"),
    ("f97e00", "the NaN"),
    ("f97e01", "a NaN with a payload is the NaN"),
    ("f9fe00", "a negative NaN is the NaN"),
    ("fb7ff8000000000001", "a double NaN is the NaN"),
    ("f97c00", "infinity"),
    ("fbfff0000000000000", "minus infinity as a double"),
    ("f7", "undefined is read as null"),
    ("9f0102ff", "indefinite lengths are written definite"),
    ("bf616201616102ff", "an indefinite map, keys sorted"),
    ("7f6161626263ff", "an indefinite text string, its chunks joined"),
    ("5f4101420203ff", "an indefinite byte string"),
    ("7fff", "an indefinite text string of no chunks"),
    ("a2616201616102", "map keys are sorted by their encodings"),
    ("a2016161200a", "a map with integer keys shows as pairs"),
    ("c24101", "a bignum that fits is the integer"),
    ("c240", "an empty bignum is 0"),
    ("c348ffffffffffffffff", "the negative bignum -2^64 is an integer"),
    ("c2490000000000000000ff", "leading zeros do not count"),
    ("c249010000000000000000", "2^64 stays a bignum"),
    ("c24a00010000000000000000", "and loses its leading zeros"),
    ("c11a514b67b0", "a tag other than 2 and 3 is kept as it is"),
    ("d8186449455446", "tag 24 on a text string"),
    ("c6c6c600", "tags nest"),
    ("4401020304", "bytes"),
]

REFUSED_JSON = [
    ("1e400", "out_of_range", "beyond the largest double"),
    ("-1.8e308", "out_of_range", "rounds beyond the largest double"),
    ("1" + "0" * 400, "out_of_range", "an integer beyond the doubles"),
    ('[1, {"a": 1e999}]', "out_of_range", "anywhere in the value"),
]

REFUSED_CBOR = [
    ("e0", "simple value 0"),
    ("f3", "simple value 19"),
    ("f820", "simple value 32, in two bytes"),
    ("8201f8ff", "simple value 255, inside an array"),
    ("f814", "a simple value below 32 in two bytes is not well-formed"),
    ("a2616101616102", "the key \"a\" twice"),
    ("a20101180102", "the key 1 twice, once in a longer head"),
    ("0102", "a byte after the item"),
    ("80000000", "three bytes after the item"),
    ("", "nothing"),
    ("18", "a head cut short"),
    ("8201", "an array cut short"),
    ("6261", "a text string cut short"),
    ("9f01", "an indefinite array without its break"),
    ("1c", "reserved additional information"),
    ("ff", "a break outside an indefinite-length item"),
    ("1f", "an indefinite integer"),
    ("62c328", "invalid UTF-8"),
    ("7f61c361a9ff", "a character split between two chunks"),
    ("5f6161ff", "a text chunk in a byte string"),
    ("5f5f4100ffff", "an indefinite chunk"),
    ("c26161", "a bignum on a text string"),
    ("81" * 129 + "00", "129 nested arrays"),
    ("c6" * 129 + "00", "129 nested tags"),
    ("81" * 128 + "00", None),  # exactly the limit: accepted (see below)
]


def main():
    from_json = []
    for text_, why in FROM_JSON:
        value = from_json_text(text_)
        cbor = encode(value)
        assert encode(decode(cbor)) == cbor
        from_json.append({"json": text_, "cbor": cbor.hex(), "display": show(decode(cbor)), "why": why})
    from_cbor = []
    for hex_, why in FROM_CBOR:
        value = decode(bytes.fromhex(hex_))
        canonical = encode(value)
        assert encode(decode(canonical)) == canonical
        from_cbor.append({"cbor": hex_, "canonical": canonical.hex(), "display": show(value), "why": why})
    refused = []
    for text_, error, why in REFUSED_JSON:
        try:
            from_json_text(text_)
        except Refused as refusal:
            assert refusal.error == error, (text_, refusal.error)
            refused.append({"json": text_, "error": error, "why": why})
        else:
            raise AssertionError(text_)
    for hex_, why in REFUSED_CBOR:
        if why is None:
            decode(bytes.fromhex(hex_))
            # No display: JSON readers (serde_json's included) stop at 127 levels.
            from_cbor.append({"cbor": hex_, "canonical": hex_, "why": "128 nested arrays: the deepest allowed"})
            continue
        try:
            decode(bytes.fromhex(hex_))
        except Refused as refusal:
            entry = {"cbor": hex_, "error": refusal.error}
            if refusal.offset is not None:
                entry["offset"] = refusal.offset
            if refusal.simple is not None:
                entry["simple_value"] = refusal.simple
            entry["why"] = why
            refused.append(entry)
        else:
            raise AssertionError(hex_)
    doc = {
        "description": (
            "spec/values.md by example. from_json: JSON text, its canonical CBOR, and the "
            "JSON display of that CBOR. from_cbor: CBOR as it may arrive, its canonical "
            "form and display (none where JSON could not nest that deep). refused: inputs that are not spore values, with the error "
            "and, for CBOR, the byte offset it names. Displays compare as JSON values, "
            "numbers by value (an integer only equals an integer, a float a float). "
            "Written by spec/vectors/values.py."
        ),
        "from_json": from_json,
        "from_cbor": from_cbor,
        "refused": refused,
    }
    with open("spec/vectors/values.json", "w") as out:
        json.dump(doc, out, indent=2, ensure_ascii=False)
        out.write("\n")


if __name__ == "__main__":
    main()
