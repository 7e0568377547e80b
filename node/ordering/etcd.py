"""The etcd orderer: etcd's Raft log fixes one order of batches for every peer of a network.

Never a home-made consensus: each peer cuts batches of the transactions its own
API accepted and puts them, one put per batch, on the network's single stream
key in etcd; etcd's Raft orders the puts of all peers. Every peer watches the
key and turns each put into the same :class:`OrderedBatch`, which its committer
validates and commits deterministically, so honest peers build byte-identical
blocks (docs/CONSORTIUM.md, "Ordering on etcd"):

- stream key ``/qcl/<network id hex>/stream``;
- value: canonical CBOR ``{"from": node id, "time": proposer's clock ms, "txs": [envelope, ...]}``;
- seq (= block height) is the key's ``version`` after the put (etcd counts the
  key's modifications: 1, 2, 3, ...), time is ``max(previous block time, value time)``;
- a value that is not such a map becomes an empty block, on every peer alike.

A peer remembers where it is in ``ordering.json`` (recent (seq, mod_revision)
pairs) and resumes watching after the newest pair at or below its committed
head, skipping what it already has. When etcd has compacted batches it lacks,
it fetches those blocks from other peers (node/sync.py), then watches on from
the compaction revision.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Mapping, Sequence

import httpx

from ledger import codec
from ledger.block import OrderedBatch
from ledger.errors import EncodingError
from node.metrics import OrderingStatus
from node.ordering.base import OrdererClosed, OrderingError
from node.ordering.etcd_gateway import Compacted, EtcdGateway, EtcdRefused, EtcdUnavailable, KeyValue, WatchStream
from node.sync import PeerSync

__all__ = [
    "BATCH_TIMEOUT_S",
    "MAX_BATCH_BYTES",
    "POSITION_FILE",
    "PUT_TIMEOUT_S",
    "EtcdOrderer",
    "EtcdSettings",
    "decode_batch",
    "encode_batch",
    "ordered_batch",
    "stream_key",
]

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 1_000_000  # etcd refuses requests above 1.5 MiB (--max-request-bytes)
BATCH_TIMEOUT_S = 0.005
POSITION_FILE = "ordering.json"
POSITIONS_KEPT = 64  # far more than the batches a peer has handed out but not yet committed
PERSIST_EVERY_S = 0.2
WATCH_IDLE_S = 10.0  # a silent watch is reopened after this long (and notices a dead member)
# etcd itself gives up on a proposal after ~7 s when its leader dies under it; a put normally takes
# milliseconds, so the orderer's client gives up after 2 s and retries on another member.
PUT_TIMEOUT_S = 2.0
_ENVELOPE_OVERHEAD = 8  # CBOR header of one byte string in the txs array, rounded up
_CLOSE = object()


def stream_key(network: bytes) -> bytes:
    return f"/qcl/{network.hex()}/stream".encode()


def encode_batch(node_id: str, time_ms: int, envelopes: Sequence[bytes]) -> bytes:
    return codec.encode({"from": node_id, "time": time_ms, "txs": list(envelopes)})


def decode_batch(value: bytes) -> tuple[int, tuple[bytes, ...]] | None:
    """(time, envelopes) of a stream value, or None when it is not a well-formed batch."""
    try:
        batch = codec.decode(value)
    except (EncodingError, ValueError):
        return None
    if not (isinstance(batch, dict) and set(batch) == {"from", "time", "txs"}):
        return None
    time_ms, txs = batch["time"], batch["txs"]
    if not (isinstance(batch["from"], str) and isinstance(time_ms, int) and time_ms >= 0 and isinstance(txs, list)):
        return None
    if not all(isinstance(envelope, bytes) for envelope in txs):
        return None
    return time_ms, tuple(txs)


def ordered_batch(seq: int, value: bytes, previous_time: int) -> OrderedBatch:
    """The batch every peer derives from the stream's ``seq``-th value: the same bytes give the same batch."""
    decoded = decode_batch(value)
    if decoded is None:
        log.warning("stream value %d is not a batch; it becomes an empty block", seq)
        return OrderedBatch(seq, previous_time, ())
    time_ms, envelopes = decoded
    return OrderedBatch(seq, max(previous_time, time_ms), envelopes)


@dataclass(frozen=True)
class EtcdSettings:
    """node.json's ``{"kind": "etcd", "endpoints": [url, ...], "peers": {node id: url}}``."""

    endpoints: tuple[str, ...]
    peers: Mapping[str, str]

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> EtcdSettings:
        endpoints, peers = raw.get("endpoints"), raw.get("peers", {})
        if not (isinstance(endpoints, list) and endpoints and all(isinstance(url, str) and url.startswith("http") for url in endpoints)):
            raise OrderingError("node.json: orderer.endpoints must list etcd client URLs (http://host:port)", code="config")
        if not (isinstance(peers, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in peers.items())):
            raise OrderingError("node.json: orderer.peers must map node ids to peer URLs", code="config")
        unknown = set(raw) - {"kind", "endpoints", "peers"}
        if unknown:
            raise OrderingError(f"node.json: unknown orderer setting(s) {sorted(unknown)}", code="config")
        return cls(tuple(endpoints), dict(peers))


class EtcdOrderer:
    """The :class:`node.ordering.base.Orderer` of a peer in an etcd-ordered network.

    ``position_file`` keeps where this peer is in the stream; ``sync`` fetches
    blocks from other peers when etcd no longer has them (None: such a gap stops
    the peer with an error). ``last_time_ms`` is the time of the peer's head block.
    """

    def __init__(
        self,
        gateway: EtcdGateway,
        *,
        network: bytes,
        node_id: str,
        position_file: Path,
        last_time_ms: int,
        sync: PeerSync | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_batch_txs: int = 2000,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        batch_timeout_s: float = BATCH_TIMEOUT_S,
    ) -> None:
        self._gateway = gateway
        self._key = stream_key(network)
        self._node_id = node_id
        self._position_file = position_file
        self._last_time = last_time_ms
        self._sync = sync
        self._clock_ms = clock_ms
        self._max_batch_txs = max_batch_txs
        self._max_batch_bytes = max_batch_bytes
        self._batch_timeout_s = batch_timeout_s
        self._closed = threading.Event()
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._positions: deque[tuple[int, int]] = deque(self._read_positions(), maxlen=POSITIONS_KEPT)
        self._positions_lock = threading.Lock()
        self._persist_lock = threading.Lock()
        self._persisted_at = 0.0
        self._session: _WatchSession | None = None
        self._session_lock = threading.Lock()
        self.fetched_blocks = 0  # blocks that came from other peers instead of etcd
        self._latest_seq: int | None = None
        self._connected = False
        self.resumed_from_revision: int | None = None
        self._proposer = threading.Thread(target=self._propose_loop, name="etcd-propose", daemon=True)
        self._proposer.start()

    @property
    def key(self) -> bytes:
        return self._key

    def ordering_status(self) -> OrderingStatus:
        """The highest batch seq seen in etcd, and whether the last exchange with etcd succeeded (for /metrics)."""
        return OrderingStatus(self._latest_seq, self._connected)

    def _report(self, connected: bool, seq: int | None = None) -> None:
        self._connected = connected
        if seq is not None and (self._latest_seq is None or seq > self._latest_seq):
            self._latest_seq = seq

    # --- proposing -----------------------------------------------------------

    def submit(self, envelopes: Sequence[bytes]) -> None:
        if self._closed.is_set():
            raise OrdererClosed("the orderer is closed")
        for envelope in envelopes:
            self._outbox.put(envelope)

    def _propose_loop(self) -> None:
        carried: object | None = None
        while True:
            first = carried if carried is not None else self._outbox.get()
            carried = None
            if first is _CLOSE:
                return
            assert isinstance(first, bytes)
            envelopes, size = [first], len(first) + _ENVELOPE_OVERHEAD
            deadline = time.monotonic() + self._batch_timeout_s
            while len(envelopes) < self._max_batch_txs:
                try:
                    item = self._outbox.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = self._outbox.get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is _CLOSE:
                    return  # what is not yet put is dropped; its submitters were told nothing
                assert isinstance(item, bytes)
                if size + len(item) + _ENVELOPE_OVERHEAD > self._max_batch_bytes:
                    carried = item
                    break
                envelopes.append(item)
                size += len(item) + _ENVELOPE_OVERHEAD
            self._put(envelopes)

    def _put(self, envelopes: list[bytes]) -> None:
        """Put one batch, retrying through member failures until it is written or the orderer closes.

        A put that timed out may still have been applied, so a retry can order the
        same transactions twice; the second copy is refused in its block as a
        duplicate transaction id and changes nothing.
        """
        value = encode_batch(self._node_id, self._clock_ms(), envelopes)
        delay = 0.05
        while not self._closed.is_set():
            try:
                self._gateway.put(self._key, value)
                self._report(True)
                return
            except EtcdRefused as exc:
                log.error("etcd refused a batch of %d transactions (%d bytes); they are not ordered: %s", len(envelopes), len(value), exc)
                return
            except EtcdUnavailable as exc:
                self._report(False)
                log.warning("putting a batch failed, retrying in %.2f s: %s", delay, exc)
                self._closed.wait(delay)
                delay = min(2 * delay, 1.0)

    # --- following -----------------------------------------------------------

    def batches(self, after_seq: int) -> Iterator[OrderedBatch]:
        try:
            yield from self._follow(after_seq)
        finally:
            if self._sync is not None:
                self._sync.close()

    def _follow(self, after_seq: int) -> Iterator[OrderedBatch]:
        head = after_seq
        start = self._resume_revision(after_seq)
        self.resumed_from_revision = start
        while not self._closed.is_set():
            session = self._open_session(start)
            if session is None:
                return
            for item in session.items(self._closed):
                if isinstance(item, Compacted):
                    head, start = yield from self._catch_up(head, item.compact_revision)
                    break
                if item.version <= head:
                    continue  # committed before a restart
                if item.version != head + 1:
                    raise OrderingError(
                        f"the stream jumped from batch {head} to {item.version} (was the key {self._key.decode()} deleted?)",
                        code="stream_gap",
                    )
                batch = ordered_batch(item.version, item.value, self._last_time)
                self._last_time = batch.time
                self._remember(item.version, item.mod_revision)
                yield batch
                head = item.version
            else:
                return  # closed
            session.stop()
        self._persist()

    def _open_session(self, start: int) -> _WatchSession | None:
        with self._session_lock:
            if self._closed.is_set():
                return None
            if self._session is not None:
                self._session.stop()
            self._session = _WatchSession(self._gateway, self._key, start, self._report)
            return self._session

    def _catch_up(self, head: int, compact_revision: int) -> Generator[OrderedBatch, None, tuple[int, int]]:
        """After a compaction: fetch from peers what etcd no longer holds; returns (head, revision to watch from).

        The key as of the compaction revision C (still readable) says how far the
        lost history goes: if its version there is at most ``head``, every batch
        this peer needs is in events after C and nothing is fetched; else blocks
        head+1..version come from peers and the watch goes on from C + 1.
        """
        at_compaction = self._read_stream(compact_revision)
        if at_compaction is None or at_compaction.version <= head:
            return head, compact_revision  # (None also when closing, or compacted again: the watch says so)
        target = at_compaction.version
        if self._sync is None:
            raise OrderingError(
                f"etcd compacted the stream past block {head + 1} and this peer lists no peers to fetch blocks from",
                code="compacted",
            )
        log.warning("etcd compacted the stream up to block %d, past this peer's block %d; fetching from peers", target, head)
        for block in self._sync.blocks(head, target, self._closed):
            self._last_time = block.time
            self.fetched_blocks += 1
            if block.seq == target:
                self._remember(target, at_compaction.mod_revision)
            yield block
            head = block.seq
        return head, compact_revision + 1

    def _read_stream(self, revision: int) -> KeyValue | None:
        """The stream key as of ``revision`` (None if absent then, or if it is compacted already, or on close)."""
        delay = 0.05
        while not self._closed.is_set():
            try:
                found = self._gateway.get(self._key, revision=revision)[0]
            except RuntimeError:  # the client was closed under us: the orderer is closing
                if self._closed.is_set():
                    return None
                raise
            except EtcdRefused:
                return None
            except EtcdUnavailable as exc:
                self._report(False)
                log.warning("reading the stream failed, retrying: %s", exc)
                self._closed.wait(delay)
                delay = min(2 * delay, 1.0)
                continue
            self._report(True, None if found is None else found.version)
            return found
        return None

    # --- where this peer is in the stream -------------------------------------

    def _resume_revision(self, head: int) -> int:
        with self._positions_lock:
            known = [position for position in self._positions if position[0] <= head]
        return max(known)[1] + 1 if known else 1

    def _remember(self, seq: int, revision: int) -> None:
        with self._positions_lock:
            self._positions.append((seq, revision))
        if time.monotonic() - self._persisted_at >= PERSIST_EVERY_S:
            self._persist()

    def _read_positions(self) -> list[tuple[int, int]]:
        try:
            saved = json.loads(self._position_file.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", self._position_file, exc)
            return []
        if saved.get("stream") != self._key.decode():
            return []
        return [(int(seq), int(revision)) for seq, revision in saved.get("positions", [])]

    def _persist(self) -> None:
        with self._persist_lock:  # the follower and close() may both write
            with self._positions_lock:
                positions = list(self._positions)
            self._persisted_at = time.monotonic()
            temporary = self._position_file.with_name(self._position_file.name + ".tmp")
            try:
                temporary.write_text(json.dumps({"stream": self._key.decode(), "positions": positions}))
                os.replace(temporary, self._position_file)
            except OSError as exc:
                log.warning("could not save the stream position to %s: %s", self._position_file, exc)

    def close(self) -> None:
        """Stop proposing and following; batches not yet put are dropped (their submitters were told nothing)."""
        self._closed.set()
        self._outbox.put(_CLOSE)
        with self._session_lock:
            if self._session is not None:
                self._session.stop()
        self._persist()
        self._proposer.join(timeout=10)
        self._gateway.close()


class _WatchSession:
    """One logical watch from ``start``: a reader thread reopens it through member failures and idle timeouts."""

    def __init__(self, gateway: EtcdGateway, key: bytes, start: int, report: Callable[..., None]) -> None:
        self._gateway = gateway
        self._report = report
        self._key = key
        self._next = start
        self._queue: queue.Queue[object] = queue.Queue(maxsize=256)
        self._stopped = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._thread = threading.Thread(target=self._read, name="etcd-watch", daemon=True)
        self._thread.start()

    def items(self, closed: threading.Event) -> Iterator[KeyValue | Compacted]:
        while not closed.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, (KeyValue, Compacted))
            yield item

    def stop(self) -> None:
        self._stopped.set()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.close()

    def _deliver(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        delay = 0.05
        while not self._stopped.is_set():
            try:
                stream = self._gateway.watch(self._key, self._next, idle_s=WATCH_IDLE_S)
            except EtcdUnavailable as exc:
                self._report(False)
                log.warning("cannot watch the stream, retrying in %.2f s: %s", delay, exc)
                self._stopped.wait(delay)
                delay = min(2 * delay, 1.0)
                continue
            self._report(True)
            with self._stream_lock:
                self._stream = stream
            if self._stopped.is_set():
                stream.close()
                return
            try:
                for message in stream:
                    delay = 0.05
                    if isinstance(message, Compacted):
                        self._deliver(message)
                        return
                    self._report(True, message[-1].version)
                    for kv in message:
                        if not self._deliver(kv):
                            return
                        self._next = kv.mod_revision + 1
            except httpx.ReadTimeout:
                continue  # quiet stream: reopen from where it was
            except EtcdRefused as exc:  # the key was deleted, or etcd refuses this watch: no retry can help
                self._deliver(exc)
                return
            except Exception as exc:  # a member went away (or stop() closed the stream under us)
                if self._stopped.is_set():
                    return
                self._report(False)
                log.warning("the watch broke, reopening from revision %d: %s", self._next, exc)
                self._stopped.wait(delay)
                delay = min(2 * delay, 1.0)
            finally:
                stream.close()
