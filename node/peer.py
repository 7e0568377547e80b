"""A running peer: store + committer + orderer, and the submit-and-wait path the API uses."""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict, deque
from concurrent.futures import Future, TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Sequence

from ledger.block import OrderedBatch
from ledger.crypto import KeyPair
from ledger.processor import BlockOutcome
from ledger.rules import Code
from ledger.storage.ledger_store import LedgerStore
from node.committer import Committer, PendingBlock, PrecheckPool
from node.ordering.base import Orderer

__all__ = ["Peer", "PeerUnavailable", "SubmitResult"]

log = logging.getLogger(__name__)


class PeerUnavailable(Exception):
    """Raised when the peer cannot accept work (its commit loop stopped on an error)."""


@dataclass(frozen=True)
class SubmitResult:
    """``status``: committed (valid, durable), invalid (in a block, changed nothing),
    rejected (never ordered: undecodable, wrong network or bad signature), or pending
    (``code`` None: not committed before the timeout; ask GET /v1/transactions/{id})."""

    tx_id: bytes | None
    status: str
    code: Code | None
    reason: str = ""
    height: int | None = None
    log_index: int | None = None


class Peer:
    def __init__(
        self,
        store: LedgerStore,
        orderer: Orderer,
        *,
        node_id: str,
        node_key: KeyPair,
        clock_ms: Callable[[], int],
        sync: bool = True,
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.node_key = node_key
        self.orderer = orderer
        self._pool = PrecheckPool()
        self.committer = Committer(
            store, node_id=node_id, node_key=node_key, clock_ms=clock_ms, pool=self._pool, sync=sync
        )
        self._waiters: dict[bytes, deque[Future[SubmitResult]]] = defaultdict(deque)
        self._waiters_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._new_block = threading.Condition()
        self._follow_failure: BaseException | None = None
        self.failure: BaseException | None = None

    @property
    def network(self) -> bytes:
        network = self.committer.network
        if network is None:
            raise PeerUnavailable("the ledger has no genesis block")
        return network

    def bootstrap(self, genesis_envelope: bytes, genesis_time: int, network: bytes) -> BlockOutcome:
        """Commit block 0 from the genesis transaction; raises (storing nothing) if it is refused."""
        if self.committer.head is not None:
            raise ValueError("the ledger already has a genesis block")
        return self.committer.commit(OrderedBatch(0, genesis_time, (genesis_envelope,)), network=network, require_valid=True)

    def start(self) -> None:
        """Two threads: one follows the orderer and starts each batch's stateless checks,
        the other commits blocks in order — so batch N+1 is checked while block N is written."""
        head = self.committer.head
        if head is None:
            raise PeerUnavailable("bootstrap the genesis block before starting")
        begun: queue.Queue[PendingBlock | None] = queue.Queue(maxsize=2)
        follower = threading.Thread(target=self._follow_orderer, args=(head.order_seq, begun), name="follow", daemon=True)
        self._thread = threading.Thread(target=self._commit_loop, args=(begun,), name="commit", daemon=True)
        follower.start()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.orderer.close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.close()
        self.store.close()

    def submit(self, envelopes: Sequence[bytes], *, timeout_s: float = 30.0) -> list[SubmitResult]:
        """Order ``envelopes`` and wait until each is committed (durably) or refused."""
        if self.failure is not None:
            raise PeerUnavailable(f"commit loop stopped: {self.failure}")
        network = self.network
        results: list[SubmitResult | tuple[bytes, Future[SubmitResult]]] = []
        accepted: list[bytes] = []
        for envelope, checked in zip(envelopes, self._pool.run(envelopes, network)):
            if checked.code is not Code.VALID:
                tx_id = checked.tx.tx_id if checked.tx else None
                results.append(SubmitResult(tx_id, "rejected", checked.code, checked.reason))
                continue
            future: Future[SubmitResult] = Future()
            with self._waiters_lock:
                self._waiters[checked.tx.tx_id].append(future)
            self.committer.remember_precheck(envelope, checked)
            accepted.append(envelope)
            results.append((checked.tx.tx_id, future))
        self.orderer.submit(accepted)
        return [self._await(result, timeout_s) for result in results]

    def wait_for_block_after(self, height: int, timeout_s: float) -> bool:
        """Block until a block higher than ``height`` is committed (True) or ``timeout_s`` passes (False).

        Long-polling readers (a citizen following their access log) wait here instead of polling.
        """
        def advanced() -> bool:
            head = self.store.head()
            return head is not None and head.height > height

        with self._new_block:
            return self._new_block.wait_for(advanced, timeout=timeout_s)

    def _await(self, result: SubmitResult | tuple[bytes, Future[SubmitResult]], timeout_s: float) -> SubmitResult:
        if isinstance(result, SubmitResult):
            return result
        tx_id, future = result
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            return SubmitResult(tx_id, "pending", None, "not committed within the timeout; query it later")

    def _follow_orderer(self, after_seq: int, begun: queue.Queue[PendingBlock | None]) -> None:
        try:
            for batch in self.orderer.batches(after_seq):
                begun.put(self.committer.begin(batch))
        except BaseException as exc:
            log.critical("following the orderer failed: %s", exc, exc_info=True)
            self._follow_failure = exc
        finally:
            begun.put(None)

    def _commit_loop(self, begun: queue.Queue[PendingBlock | None]) -> None:
        try:
            while (pending := begun.get()) is not None:
                self._notify(self.committer.finish(pending))
            if not self._stopping.is_set():
                raise self._follow_failure or PeerUnavailable("the orderer stream ended while the peer was running")
        except BaseException as exc:  # the node must stop committing, loudly, on any failure
            log.critical("commit loop stopped: %s", exc, exc_info=True)
            self.failure = exc
            with self._waiters_lock:
                waiting = [future for futures in self._waiters.values() for future in futures]
                self._waiters.clear()
            for future in waiting:
                future.set_exception(PeerUnavailable(f"commit loop stopped: {exc}"))

    def _notify(self, outcome: BlockOutcome) -> None:
        height = outcome.header.height
        with self._waiters_lock:
            for tx in outcome.txs:
                futures = self._waiters.get(tx.tx_id) if tx.tx_id else None
                if not futures:
                    continue
                future = futures.popleft()
                if not futures:
                    del self._waiters[tx.tx_id]
                status = "committed" if tx.code is Code.VALID else "invalid"
                future.set_result(SubmitResult(tx.tx_id, status, tx.code, tx.reason, height, tx.log_index))
        with self._new_block:
            self._new_block.notify_all()
