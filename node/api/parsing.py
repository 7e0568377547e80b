"""Parsing what a request carries — hex ids, base64 bytes, signed envelopes — into values, or a
documented ``invalid_argument`` error naming the field."""

from __future__ import annotations

import base64
import binascii
from typing import Collection

from ledger.errors import EncodingError
from ledger.tx import Transaction, parse_transaction
from node.api.errors import ApiError

__all__ = ["parse_base64", "parse_envelope", "parse_hex"]


def parse_hex(text: str, name: str, size: int) -> bytes:
    """Decode a hex path/query/body value of exactly ``size`` bytes, or answer invalid_argument naming it."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != size:
        raise ApiError("invalid_argument", f"{name}: expected {2 * size} hex characters")
    return value


def parse_base64(text: str, name: str) -> bytes:
    """Decode a base64 body value, or answer invalid_argument naming it."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("invalid_argument", f"{name}: not base64") from None


def parse_envelope(envelope: bytes, tx_types: Collection[str]) -> Transaction:
    """Decode a signed envelope a route was given for one of ``tx_types``."""
    try:
        tx = parse_transaction(envelope)
    except EncodingError as exc:
        raise ApiError("invalid_argument", f"transaction: {exc}") from None
    if tx.type not in tx_types:
        raise ApiError("invalid_argument", f"transaction: expected {' or '.join(sorted(tx_types))}, got {tx.type!r}")
    return tx
