"""The in-memory twin of the LevelDB store, for unit tests and for rebuilding in ``qcl verify``."""

from __future__ import annotations

import bisect
from typing import Iterator

from ledger.errors import StorageError
from ledger.storage.kv import WriteBatch

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] | None = None
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def iterate(self, prefix: bytes = b"", start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        position = bisect.bisect_left(keys, max(prefix, start or b""))
        while position < len(keys) and keys[position].startswith(prefix):
            key = keys[position]
            yield key, self._data[key]
            position += 1
            if keys is not self._sorted:
                raise StorageError("store changed during iteration")

    def batch(self) -> WriteBatch:
        return WriteBatch(self)

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self._check_open()
        for key, value in batch.ops.items():  # validate everything before changing anything
            if type(key) is not bytes or (value is not None and not isinstance(value, (bytes, bytearray, memoryview))):
                raise StorageError(f"keys and values are bytes (key {key!r})")
        for key, value in batch.ops.items():
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = bytes(value)
        if batch.ops:
            self._sorted = None

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("store is closed")
