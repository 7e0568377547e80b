"""The encrypted record vault: sealed payloads kept beside, never on, the replicated log.

The chain records *that* a record version exists (id, version, data type,
subject and a salted commitment, see :mod:`ledger.rules.records`); the payload
itself stays with the custodian node, sealed by :mod:`privacy.envelope`. Keeping
it off the log means a payload could be deleted (nothing purges one yet) without
rewriting history, and peers replicate only metadata, never data.

The vault is its own LevelDB (``data_dir/vault``), node-local, so its key layout
lives here rather than in :mod:`ledger.storage.schema`:

    0x00 'format'                          → format version (ASCII decimal), checked at open
    'r' ‖ record id (16) ‖ u32 version     → SealedRecord.encode()
    'b' ‖ SHA-256 of the bytes (32)         → the bytes: artefacts the ledger pins by hash
                                              (wasm modules, joint keys, aggregate results and
                                              input listings, decryption shares)

The version is big-endian so a prefix scan over ``'r' ‖ record id`` yields a
record's versions in numeric order. The vault stores ciphertext only: it never
sees a data key unwrapped, so a copied vault directory reveals nothing without
the node's seed.
"""

from __future__ import annotations

import pathlib
import struct

from ledger.crypto import sha256
from ledger.errors import EncodingError, FormatVersionError, StorageError
from ledger.rules.records import RECORD_ID_SIZE
from ledger.storage.kv import KeyValueStore
from ledger.storage.leveldb import LevelDBStore
from privacy.envelope import SealedRecord

__all__ = ["FORMAT_VERSION", "META_FORMAT", "Vault", "open_vault"]

FORMAT_VERSION = b"1"
META_FORMAT = b"\x00format"

_RECORD = b"r"
_BLOB = b"b"
_U32 = struct.Struct(">I")


def _record_key(record_id: bytes, version: int) -> bytes:
    if type(record_id) is not bytes or len(record_id) != RECORD_ID_SIZE:
        raise ValueError(f"record_id must be {RECORD_ID_SIZE} bytes")
    if type(version) is not int or not 0 <= version <= 0xFFFFFFFF:
        raise ValueError("version must be an integer in [0, 2^32 - 1]")
    return _RECORD + record_id + _U32.pack(version)


class Vault:
    """Sealed record payloads by (record_id, version). Lives in its own LevelDB (data_dir/vault), never replicated."""

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv
        found = kv.get(META_FORMAT)
        if found is None:
            if next(iter(kv.iterate()), None) is not None:
                raise FormatVersionError("vault has data but no format-version key")
            batch = kv.batch()
            batch.put(META_FORMAT, FORMAT_VERSION)
            kv.write(batch)
        elif found != FORMAT_VERSION:
            raise FormatVersionError(
                f"vault format version {found!r} is not supported (this build reads {FORMAT_VERSION!r})"
            )

    def put(self, record_id: bytes, version: int, sealed: SealedRecord, *, sync: bool = True) -> None:
        """Store (or replace) one sealed payload; with ``sync`` it is durable on return."""
        key = _record_key(record_id, version)
        batch = self._kv.batch()
        batch.put(key, sealed.encode())
        self._kv.write(batch, sync=sync)

    def get(self, record_id: bytes, version: int) -> SealedRecord | None:
        """The sealed payload, or None if it was never stored or has been deleted."""
        raw = self._kv.get(_record_key(record_id, version))
        if raw is None:
            return None
        try:
            return SealedRecord.decode(raw)
        except EncodingError as exc:
            raise StorageError(f"vault entry for record {record_id.hex()} version {version} is corrupt: {exc}") from None

    def delete(self, record_id: bytes, version: int) -> None:
        """Remove one payload (idempotent); the on-chain record of its existence is untouched."""
        batch = self._kv.batch()
        batch.delete(_record_key(record_id, version))
        self._kv.write(batch)

    def put_blob(self, data: bytes) -> bytes:
        """Store ``data`` under its SHA-256 (durable on return) and return the hash."""
        digest = sha256(data)
        batch = self._kv.batch()
        batch.put(_BLOB + digest, data)
        self._kv.write(batch, sync=True)
        return digest

    def get_blob(self, digest: bytes) -> bytes | None:
        """The bytes stored under ``digest``, re-hashed: a damaged entry is an error, never returned."""
        data = self._kv.get(_BLOB + digest)
        if data is not None and sha256(data) != digest:
            raise StorageError(f"vault blob {digest.hex()} is corrupt")
        return data

    def close(self) -> None:
        self._kv.close()


def open_vault(path: pathlib.Path) -> Vault:
    """Open (creating if missing) the vault's LevelDB at ``path``; the store is closed if the check fails."""
    store = LevelDBStore(path)
    try:
        return Vault(store)
    except BaseException:
        store.close()
        raise
