"""Exceptions raised by the ledger core.

Every error the core raises derives from :class:`LedgerError`, so a caller can
catch the whole family at one boundary (the node's HTTP layer maps them to
stable JSON error codes)::

    LedgerError
    ├── EncodingError          bytes are not the canonical encoding of a valid value
    ├── SignatureError         a signature does not verify
    ├── ProofError             a Merkle proof is malformed or does not verify
    │   └── RootMismatchError  a proof verifies to a different root than expected
    ├── CheckpointError        a checkpoint is malformed or wrongly signed
    ├── GenesisError           a genesis document is malformed or inconsistent
    └── StorageError           the store cannot be opened or read as expected
        └── FormatVersionError the store was written by an incompatible version
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "EncodingError",
    "FormatVersionError",
    "GenesisError",
    "LedgerError",
    "ProofError",
    "RootMismatchError",
    "SignatureError",
    "StorageError",
]


class LedgerError(Exception):
    """Raised for any failure inside the ledger core."""


class EncodingError(LedgerError):
    """Raised when bytes are not the canonical encoding of a well-typed value."""


class SignatureError(LedgerError):
    """Raised when a signature does not verify under the claimed key."""


class ProofError(LedgerError):
    """Raised when a Merkle proof is malformed or does not verify."""


class RootMismatchError(ProofError):
    """Raised when a proof is well formed but leads to a root other than the expected one."""

    def __init__(self, expected: bytes, computed: bytes) -> None:
        super().__init__(
            f"root mismatch: expected {expected.hex()}, proof gives {computed.hex()}"
        )
        self.expected = expected
        self.computed = computed


class CheckpointError(LedgerError):
    """Raised when a checkpoint is malformed or its signature does not verify."""


class GenesisError(LedgerError):
    """Raised when a genesis document is malformed or internally inconsistent."""


class StorageError(LedgerError):
    """Raised when the store cannot be opened or holds something unexpected."""


class FormatVersionError(StorageError):
    """Raised when the store's format-version key is missing or names another version."""
