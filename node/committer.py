"""Turns ordered batches into durable blocks on this peer.

The stateless checks (decoding, signatures) of a batch run in worker
processes, and results computed when a transaction was submitted are reused,
so a signature is verified once per peer. Then the block is built in order and written in one
synced batch; only after that write returns is anyone told it committed.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from ledger.block import ChainHead, OrderedBatch
from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.crypto import KeyPair
from ledger.processor import BlockOutcome, Prechecked, build_block, precheck_many
from ledger.rules import Code
from ledger.storage.ledger_store import LedgerStore
from node.sync import FetchedBatch
from node.metrics import CommitMetrics

__all__ = ["Committer", "PendingBlock", "PrecheckPool"]


class PrecheckPool:
    """Runs the stateless checks (decode, network, signatures) in worker processes.

    Decoding is pure Python and holds the GIL, so threads cannot share it out;
    worker processes take both decoding and Ed25519 off the interpreter that
    applies the rules and writes blocks. Small inputs are checked in the
    calling thread, where a round trip to a worker would cost more than it saves.
    """

    INLINE_BELOW = 64

    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers or os.cpu_count() or 2
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, envelopes: Sequence[bytes], network: bytes) -> list[Prechecked]:
        return self.submit(envelopes, network)()

    def submit(self, envelopes: Sequence[bytes], network: bytes) -> Callable[[], list[Prechecked]]:
        """Start checking ``envelopes``; the returned function waits for the results, in order."""
        if len(envelopes) < self.INLINE_BELOW:
            results = precheck_many(envelopes, network)
            return lambda: results
        chunk = -(-len(envelopes) // self._workers)
        executor = self._executor()
        futures = [executor.submit(precheck_many, envelopes[start : start + chunk], network) for start in range(0, len(envelopes), chunk)]
        return lambda: [result for future in futures for result in future.result()]

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: a worker whose node was SIGKILLed must not linger as an orphan.

    A daemon thread in the worker checks every half second that its parent is
    still the node, and ends the worker when it is not. (prctl PR_SET_PDEATHSIG
    is not used: Linux fires it when the *thread* that started the worker exits,
    and the API's worker threads that may start the pool are retired when idle —
    that killed healthy workers under load.)
    """
    if os.getppid() != parent_pid:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


_PARENT_CHECK_S = 0.5


@dataclass(frozen=True)
class PendingBlock:
    """A batch whose stateless checks are running; ``wait`` returns those not cached, in order."""

    batch: OrderedBatch
    network: bytes
    cached: list[Prechecked | None]
    wait: Callable[[], list[Prechecked]]
    begun_at: float  # time.monotonic() when the batch reached the committer


class Committer:
    def __init__(
        self,
        store: LedgerStore,
        *,
        node_id: str,
        node_key: KeyPair,
        clock_ms: Callable[[], int],
        pool: PrecheckPool,
        sync: bool = True,
    ) -> None:
        self.store = store
        self._node_id = node_id
        self._node_key = node_key
        self._clock_ms = clock_ms
        self._pool = pool
        self._sync = sync
        self._log = store.compact_range()
        self._head = store.head()
        self._network = None if self._head is None else store.header(0).network
        self._prechecked: dict[bytes, Prechecked] = {}
        self._lock = threading.Lock()
        self.metrics = CommitMetrics()

    @property
    def head(self) -> ChainHead | None:
        return self._head

    @property
    def network(self) -> bytes | None:
        return self._network

    def remember_precheck(self, envelope: bytes, result: Prechecked) -> None:
        """Keep a submission-time precheck so the commit does not verify the signatures again."""
        self._prechecked[envelope] = result

    def begin(self, batch: OrderedBatch, *, network: bytes | None = None) -> PendingBlock:
        """Start the stateless checks of ``batch`` so they overlap the commit of the block before."""
        network = network or self._network
        if network is None:
            raise ValueError("the first block needs the network id")
        cached = [self._prechecked.pop(envelope, None) for envelope in batch.envelopes]
        missing = [envelope for envelope, result in zip(batch.envelopes, cached) if result is None]
        waiter = self._pool.submit(missing, network) if missing else list
        return PendingBlock(batch, network, cached, waiter, time.monotonic())

    def commit(self, batch: OrderedBatch, *, network: bytes | None = None, require_valid: bool = False) -> BlockOutcome:
        return self.finish(self.begin(batch, network=network), require_valid=require_valid)

    def finish(self, pending: PendingBlock, *, require_valid: bool = False) -> BlockOutcome:
        """Build, sign a checkpoint for, and durably store the block of a begun batch.

        With ``require_valid`` (the genesis block) nothing is stored unless every
        transaction is valid: a peer must not start on a refused genesis.
        """
        batch, network = pending.batch, pending.network
        computed = iter(pending.wait())
        prechecked = [result if result is not None else next(computed) for result in pending.cached]
        with self._lock:
            outcome = build_block(
                batch,
                network=network,
                head=self._head,
                log=self._log,
                state=self.store.state,
                is_committed=self.store.is_committed,
                prechecked=prechecked,
            )
            refused = [tx for tx in outcome.txs if tx.code is not Code.VALID]
            if require_valid and refused:
                self._log = self.store.compact_range()
                raise ValueError(f"transaction refused: {refused[0].code.name} {refused[0].reason}")
            checkpoint = self._checkpoint(outcome, network)
            try:
                if isinstance(batch, FetchedBatch):  # a block from another peer must rebuild to its own hash
                    batch.check(outcome.block_hash)
                self.store.append(outcome, checkpoint, sync=self._sync)
            except BaseException:
                self._log = self.store.compact_range()  # the in-memory edge ran ahead of the store
                raise
            self._head = outcome.head
            self._network = network
        self.metrics.observe(outcome, time.monotonic() - pending.begun_at)
        return outcome

    def _checkpoint(self, outcome: BlockOutcome, network: bytes) -> SignedCheckpoint:
        header = outcome.header
        return Checkpoint(
            network=network,
            node_id=self._node_id,
            tree_size=header.tree_size,
            root_hash=header.log_root,
            height=header.height,
            block_hash=outcome.block_hash,
            time=self._clock_ms(),
        ).sign(self._node_key)
