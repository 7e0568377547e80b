"""RFC 6962 / RFC 9162 hashing for the log's Merkle tree.

Leaves and interior nodes are hashed under different one-byte prefixes so that
no interior node can ever be passed off as a leaf (second-preimage defence).
"""

from __future__ import annotations

from hashlib import sha256

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "hash_children", "hash_leaf"]

HASH_SIZE = 32
"""Every leaf, node and root hash is a SHA-256 digest of this many bytes."""

EMPTY_ROOT = sha256(b"").digest()
"""Root of the tree with no leaves: RFC 6962 defines MTH({}) as SHA-256 of nothing."""


def hash_leaf(data: bytes) -> bytes:
    """Return the leaf hash of ``data``: SHA-256(0x00 || data)."""
    return sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return the interior-node hash over two child hashes: SHA-256(0x01 || left || right)."""
    return sha256(b"\x01" + left + right).digest()
