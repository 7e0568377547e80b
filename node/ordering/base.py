"""The ordering service as the node sees it: submit envelopes, follow the ordered stream.

Ordering is separate from validation (as in Fabric): an orderer only fixes the
order and the batch boundaries; every peer validates and commits the stream
itself. Implementations: the embedded in-process orderer (the default) and,
later, etcd.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

from ledger.block import OrderedBatch

__all__ = ["Orderer", "OrdererClosed"]


class OrdererClosed(Exception):
    """Raised when submitting to an orderer that has been closed."""


class Orderer(Protocol):
    def submit(self, envelopes: Sequence[bytes]) -> None:
        """Queue envelopes for ordering; returns before they are ordered."""
        ...

    def batches(self, after_seq: int) -> Iterator[OrderedBatch]:
        """Yield ordered batches with seq > ``after_seq``, blocking for new ones; ends on close."""
        ...

    def close(self) -> None: ...
