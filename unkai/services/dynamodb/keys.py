"""Keys and their order: the byte encodings that let SQLite's index order items exactly
as DynamoDB does, so a Query is an index range scan and never reads the whole table.

A sort key is encoded so that comparing the bytes (SQLite's BLOB order) equals
DynamoDB's order: strings by their UTF-8 bytes, binary bytewise, and numbers by value
(sign, then a biased decimal exponent, then the digits; negatives complemented). A
partition key is its encoding behind a 4-byte hash, so partitions lie scattered
through the table the way DynamoDB's hash partitioning scatters them, and a parallel
Scan's segment is a contiguous range of hashes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal

from unkai.services.dynamodb import numbers
from unkai.services.dynamodb.attributes import Item, Value
from unkai.services.dynamodb.errors import invalid, validation

HASH_SPACE = 1 << 32


_NEGATE = bytes(range(256)).translate(bytes(0xFF - c for c in range(256)))  # digit c -> 0xCF - (c - 48)


def encode_number(text: str) -> bytes:
    digits = text[1:] if text[:1] == "-" else text
    if digits.isascii() and digits.isdigit() and digits[0] != "0":  # a plain integer: no Decimal needed
        significant = digits.rstrip("0").encode()
        adjusted = len(digits) - 1 + 1000
        if digits is text:
            return b"\x03" + adjusted.to_bytes(2, "big") + significant
        return b"\x01" + (0xFFFF - adjusted).to_bytes(2, "big") + significant.translate(_NEGATE) + b"\xff"
    value = Decimal(text)
    if not value:
        return b"\x02"
    sign, digits, exponent = value.normalize(numbers.CONTEXT).as_tuple()
    adjusted = exponent + len(digits) - 1 + 1000
    if not sign:
        return b"\x03" + adjusted.to_bytes(2, "big") + bytes(48 + d for d in digits)
    return b"\x01" + (0xFFFF - adjusted).to_bytes(2, "big") + bytes(0xCF - d for d in digits) + b"\xff"


def encode(value: Value) -> bytes:
    (t, x), = value.items()
    if t == "S":
        return x.encode()
    if t == "N":
        return encode_number(x)
    return bytes(x)


def partition(encoded: bytes) -> bytes:
    return zlib.crc32(encoded).to_bytes(4, "big") + encoded


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def segment_bounds(segment: int, total: int) -> tuple[bytes, bytes | None]:
    """The partition-key byte range a parallel Scan segment covers."""
    start = HASH_SPACE * segment // total
    end = HASH_SPACE * (segment + 1) // total
    return start.to_bytes(4, "big"), (end.to_bytes(4, "big") if end < HASH_SPACE else None)


@dataclass(frozen=True)
class KeyAttr:
    name: str
    type: str  # S, N or B


# AWS's limits on key values, with AWS's messages (the hash one has no space before the number).
MAX_HASH_BYTES = 2048
MAX_RANGE_BYTES = 1024


def check_key_size(value: Value, is_hash: bool) -> None:
    """Raise AWS's ValidationException for a key value past its size limit (S in UTF-8, B raw)."""
    kind = next(iter(value))
    if kind == "S":
        size = len(value["S"].encode("utf-8"))
    elif kind == "B":
        size = len(value["B"])
    else:
        return
    if is_hash and size > MAX_HASH_BYTES:
        raise validation("One or more parameter values were invalid: Size of hashkey has exceeded the maximum size "
                         f"limit of{MAX_HASH_BYTES} bytes")
    if not is_hash and size > MAX_RANGE_BYTES:
        raise validation("One or more parameter values were invalid: Aggregated size of all range keys has exceeded "
                         f"the size limit of {MAX_RANGE_BYTES} bytes")


@dataclass(frozen=True)
class KeySchema:
    hash: KeyAttr
    range: KeyAttr | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hash.name,) if self.range is None else (self.hash.name, self.range.name)

    def item_key(self, item: Item) -> Item:
        key = {self.hash.name: item[self.hash.name]}
        if self.range is not None:
            key[self.range.name] = item[self.range.name]
        return key

    def encode(self, item: Item) -> tuple[bytes, bytes]:
        """(partition bytes, sort bytes) of an item or key already checked."""
        pk = partition(encode(item[self.hash.name]))
        rk = encode(item[self.range.name]) if self.range is not None else b""
        return pk, rk

    def check_item(self, item: Item, index: str | None = None) -> bool:
        """Validate the key attributes a written item carries. For a table, raise when
        one is missing; for an index, False when the item is not in it (sparse)."""
        for attr in (self.hash, self.range):
            if attr is None:
                continue
            value = item.get(attr.name)
            if value is None:
                if index is None:
                    raise invalid(f"Missing the key {attr.name} in the item")
                return False
            actual = next(iter(value))
            if actual != attr.type:
                if index is None:
                    raise invalid(f"Type mismatch for key {attr.name} expected: {attr.type} actual: {actual}")
                raise invalid(f"Type mismatch for Index Key {attr.name} Expected: {attr.type} "
                              f"Actual: {actual} IndexName: {index}")
            if actual in ("S", "B") and len(value[actual]) == 0:
                kind = "string" if actual == "S" else "binary"
                if index is None:
                    raise validation(f"One or more parameter values are not valid. The AttributeValue for a key "
                                     f"attribute cannot contain an empty {kind} value. Key: {attr.name}")
                raise validation(f"One or more parameter values are not valid. A value specified for a secondary "
                                 f"index key is not supported. The AttributeValue for a key attribute cannot "
                                 f"contain an empty {kind} value. IndexName: {index}, IndexKey: {attr.name}")
            if index is None:
                check_key_size(value, attr is self.hash)
        return True

    def check_key(self, key: Item) -> Item:
        """Validate a ``Key`` parameter: exactly the schema's attributes, right types."""
        if len(key) != len(self.names) or any(n not in key for n in self.names):
            raise validation("The provided key element does not match the schema")
        for attr in (self.hash, self.range):
            if attr is None:
                continue
            value = key[attr.name]
            actual = next(iter(value))
            if actual != attr.type:
                raise validation("The provided key element does not match the schema")
            if actual in ("S", "B") and len(value[actual]) == 0:
                kind = "string" if actual == "S" else "binary"
                raise validation(f"One or more parameter values are not valid. The AttributeValue for a key "
                                 f"attribute cannot contain an empty {kind} value. Key: {attr.name}")
            check_key_size(value, attr is self.hash)
        return key
