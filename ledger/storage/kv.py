"""The narrow storage interface: ordered bytes→bytes with prefix scans and atomic batches.

Everything above this line (the ledger store, the verifier) is written against
:class:`KeyValueStore`, so the in-memory twin and LevelDB are interchangeable
and one conformance suite (tests/ledger/storage) holds both to the same contract.
"""

from __future__ import annotations

from typing import Iterator, Protocol

__all__ = ["KeyValueStore", "WriteBatch"]


class WriteBatch:
    """Pending puts and deletes, applied all-or-nothing by :meth:`KeyValueStore.write`.

    Reads through :meth:`get` see the batch's own pending writes first.
    """

    __slots__ = ("_store", "ops")

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store
        self.ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value

    def delete(self, key: bytes) -> None:
        self.ops[key] = None

    def get(self, key: bytes) -> bytes | None:
        if key in self.ops:
            return self.ops[key]
        return self._store.get(key)


class KeyValueStore(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def iterate(self, prefix: bytes = b"", start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) for keys with ``prefix`` (and >= ``start``), in byte order."""
        ...

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        """Apply every op of ``batch`` atomically; with ``sync`` it is durable on return."""
        ...

    def batch(self) -> WriteBatch: ...

    def close(self) -> None: ...
