"""Canonical encoding: deterministic CBOR (RFC 8949 §4.2.1) over a small data model.

Everything the ledger hashes or signs is encoded here, so two honest parties
always produce the same bytes for the same value. The data model is
deliberately narrow — integers in [-2^64, 2^64-1], byte strings, UTF-8 text,
arrays, maps with text keys, booleans and null — because every extra type
(floats, tags, indefinite lengths) is another way to encode one value twice.

Decoding is strict: bytes are accepted only if they are exactly the canonical
encoding of a value in the model (re-encoding must reproduce them), which
rejects trailing data, duplicate map keys, unsorted keys and non-shortest
lengths in one check.
"""

from __future__ import annotations

from typing import Any, Union

import cbor2

from ledger.errors import EncodingError

__all__ = ["Value", "decode", "encode"]

Value = Union[None, bool, int, bytes, str, list["Value"], dict[str, "Value"]]

_MAX_UINT = 2**64 - 1
_MIN_NINT = -(2**64)
_MAX_DEPTH = 32


def encode(value: Value) -> bytes:
    """Return the canonical encoding of ``value``; raise EncodingError outside the model."""
    _check_model(value, 0)
    try:
        return cbor2.dumps(value, canonical=True)
    except UnicodeEncodeError:
        raise EncodingError("text is not valid Unicode (lone surrogate)") from None


def decode(data: bytes) -> Value:
    """Return the value whose canonical encoding is exactly ``data``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        value = cbor2.loads(data, max_depth=_MAX_DEPTH)
    except Exception as exc:  # cbor2 raises several unrelated types on bad input
        raise EncodingError(f"not well-formed CBOR: {exc}") from None
    _check_model(value, 0)
    if cbor2.dumps(value, canonical=True) != data:
        raise EncodingError(
            "not canonical CBOR (RFC 8949 §4.2.1): trailing bytes, unsorted or "
            "duplicate map keys, or a non-shortest length"
        )
    return value


_LEAVES = frozenset({bytes, str, bool, type(None)})


def _check_model(value: Any, depth: int) -> None:
    """Reject anything outside the data model; leaves are checked inline (this is a hot path)."""
    kind = type(value)
    if kind in _LEAVES:
        return
    if kind is int:
        _check_int(value)
        return
    if depth >= _MAX_DEPTH:
        raise EncodingError(f"nesting deeper than {_MAX_DEPTH}")
    if kind is list:
        items = value
    elif kind is dict:
        for key in value:
            if type(key) is not str:
                raise EncodingError(f"map key {key!r} is not text")
        items = value.values()
    else:
        raise EncodingError(f"{kind.__name__} is not in the canonical data model")
    for item in items:
        item_kind = type(item)
        if item_kind in _LEAVES:
            continue
        if item_kind is int:
            _check_int(item)
        else:
            _check_model(item, depth + 1)


def _check_int(value: int) -> None:
    if not _MIN_NINT <= value <= _MAX_UINT:
        raise EncodingError(f"integer {value} outside the 64-bit CBOR range")
