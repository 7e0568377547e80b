"""World state as the rules see it: a read-only base plus layered pending writes.

Rules never touch storage. They read through a :class:`StateOverlay` whose base
is anything with ``get(key) -> bytes | None`` (the committed state, or another
overlay) and write into the overlay; a transaction's overlay is merged into the
block's only if every rule check passed, so a refused transaction changes nothing.
Values are canonical CBOR, which makes the block's state hash well defined.
"""

from __future__ import annotations

from typing import Protocol

from ledger import codec
from ledger.codec import Value

__all__ = ["StateOverlay", "StateReader"]


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class StateOverlay:
    """Pending writes over a base reader; ``None`` in the write set marks a deletion."""

    __slots__ = ("_base", "_writes")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._base.get(key)

    def read(self, key: bytes) -> Value | None:
        raw = self.get(key)
        return None if raw is None else codec.decode(raw)

    def put(self, key: bytes, value: Value) -> None:
        self._writes[key] = codec.encode(value)

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def child(self) -> StateOverlay:
        return StateOverlay(self)

    def merge_into(self, parent: StateOverlay) -> None:
        parent._writes.update(self._writes)

    @property
    def writes(self) -> dict[bytes, bytes | None]:
        return self._writes
