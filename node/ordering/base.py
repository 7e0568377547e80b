"""The ordering service as the node sees it: submit envelopes, follow the ordered stream.

Ordering is separate from validation (as in Fabric): an orderer only fixes the
order and the batch boundaries; every peer validates and commits the stream
itself. Implementations: the embedded in-process orderer (the default) and
the etcd orderer (node/ordering/etcd.py), chosen by the peer's node.json.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

from ledger.block import OrderedBatch

__all__ = ["Orderer", "OrdererClosed", "OrderingError"]


class OrderingError(Exception):
    """Root of the ordering failures; ``code`` is a stable snake_case word."""

    code = "ordering"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class OrdererClosed(OrderingError):
    """Raised when submitting to an orderer that has been closed."""

    code = "closed"


class Orderer(Protocol):
    def submit(self, envelopes: Sequence[bytes]) -> None:
        """Queue envelopes for ordering; returns before they are ordered."""
        ...

    def batches(self, after_seq: int) -> Iterator[OrderedBatch]:
        """Yield ordered batches with seq > ``after_seq``, blocking for new ones; ends on close."""
        ...

    def close(self) -> None: ...
