"""The embedded orderer: one process, one queue, batches cut by size or time.

It is the single source of order for a one-node network, so it needs no
consensus; its sequence numbers continue from the stored chain head after a
restart. Envelopes queued but not yet cut into a batch when the process dies
are lost — their submitters were never told they committed.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator, Sequence

from ledger.block import OrderedBatch
from node.ordering.base import OrdererClosed

__all__ = ["InProcessOrderer"]

_CLOSE = object()


class InProcessOrderer:
    def __init__(
        self,
        *,
        max_batch_txs: int = 2000,
        batch_timeout_s: float = 0.002,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        last_time_ms: int = 0,
    ) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._max_batch_txs = max_batch_txs
        self._batch_timeout_s = batch_timeout_s
        self._clock_ms = clock_ms
        self._last_time_ms = last_time_ms
        self._closed = threading.Event()

    def submit(self, envelopes: Sequence[bytes]) -> None:
        if self._closed.is_set():
            raise OrdererClosed("the orderer is closed")
        for envelope in envelopes:
            self._queue.put(envelope)

    def batches(self, after_seq: int) -> Iterator[OrderedBatch]:
        seq = after_seq
        while True:
            first = self._queue.get()
            if first is _CLOSE:
                return
            envelopes = [first]
            deadline = time.monotonic() + self._batch_timeout_s
            while len(envelopes) < self._max_batch_txs:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is _CLOSE:
                    self._queue.put(_CLOSE)
                    break
                envelopes.append(item)
            seq += 1
            # Block time never goes backwards, even if the wall clock does.
            self._last_time_ms = max(self._last_time_ms, self._clock_ms())
            yield OrderedBatch(seq, self._last_time_ms, tuple(envelopes))

    def close(self) -> None:
        self._closed.set()
        self._queue.put(_CLOSE)
