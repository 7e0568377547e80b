"""Catching up from other peers: blocks etcd no longer holds, fetched over HTTP and verified before use.

etcd keeps the stream's history only until it is compacted. A peer that was
down longer than that (or joins late) gets the blocks it lacks from another
peer listed in its node.json, but trusts that peer for nothing:

1. it fetches the headers from its own head to the target height and checks the
   hash chain: the first header must point at the peer's own block, each next
   one at the one before (a mismatch is a fork);
2. the last header's hash must be the one the serving peer signed in its
   checkpoint at that height, under the node key the network registered for
   it; every other listed peer that signed a checkpoint there must name the same
   hash (a validly signed disagreement is a fork, reported with both names);
3. each block's transactions (the log entries) go through the peer's own
   committer as ``OrderedBatch(height, block time, envelopes)``: signatures, rules,
   Merkle root and state hash are recomputed, and the resulting header hash must
   equal the served one (:meth:`FetchedBatch.check`, called before the block is
   stored), else the peer stops with a :class:`ForkError` naming the server.

Requests are signed with the peer's node key; the network's node keys may read
the log routes of every peer (node/api/auth.py).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import httpx

from client.auth import RequestSigner
from ledger.block import BlockHeader, OrderedBatch
from ledger.checkpoint import SignedCheckpoint
from ledger.crypto import KeyPair, sha256
from ledger.errors import LedgerError
from ledger.rules.membership import node_key as node_record_key
from ledger.storage.ledger_store import LedgerStore
from node.ordering.base import OrderingError

__all__ = ["FetchedBatch", "ForkError", "PeerSync"]

log = logging.getLogger(__name__)

PAGE = 1000  # the log routes' page size (node/api/routers/log.py)
CHUNK = 10_000  # blocks verified (headers held in memory) per round of a long catch-up


class ForkError(OrderingError):
    """A peer serves blocks that do not extend this peer's chain or do not match their own transactions."""

    code = "fork"


class _Unusable(Exception):
    """This peer cannot serve the range now (down, behind, refusing us): try another one."""


@dataclass(frozen=True)
class FetchedBatch(OrderedBatch):
    """A block fetched from a peer, as the batch to rebuild it from, with the hash it must rebuild to."""

    height: int
    block_hash: bytes
    source: str

    def check(self, rebuilt_hash: bytes) -> None:
        """Return None if rebuilding gave the served block; else raise ForkError (nothing is stored)."""
        if rebuilt_hash != self.block_hash:
            raise ForkError(
                f"block {self.height} served by {self.source} does not match its own transactions: it claims hash "
                f"{self.block_hash.hex()}, rebuilding it here gives {rebuilt_hash.hex()}; refusing it (fork or tampering)"
            )


class PeerSync:
    """Fetches and pre-verifies blocks from the peers in ``peers`` (node id → base URL)."""

    def __init__(
        self,
        peers: Mapping[str, str],
        *,
        node_key: KeyPair,
        store: LedgerStore,
        timeout_s: float = 10.0,
        poll_s: float = 0.2,
    ) -> None:
        self.peers = {node_id: url.rstrip("/") for node_id, url in peers.items()}
        self._store = store
        self._poll_s = poll_s
        self._http = httpx.Client(auth=RequestSigner(node_key), timeout=timeout_s)

    def blocks(self, after: int, target: int, stop: threading.Event) -> Iterator[FetchedBatch]:
        """Blocks after+1..target, each pre-verified as in the module docstring; ends early when ``stop`` is set.

        Waits (polling) while no listed peer has reached ``target``; a peer that
        fails mid-way is left for the next one, from where it stopped. A long
        range is verified in rounds of CHUNK blocks, each ending at a signed checkpoint.
        """
        if not self.peers:
            raise OrderingError(f"blocks {after + 1}..{target} must come from another peer, and none is listed", code="no_peers")
        failed: set[str] = set()
        warned_at = time.monotonic()
        while after < target and not stop.is_set():
            anchor = self._own_block_hash(after, stop)
            if anchor is None:
                return
            source = self._source(target, failed)
            if source is None:
                failed.clear()
                if time.monotonic() - warned_at > 5.0:
                    log.warning("no listed peer can serve blocks %d..%d yet; still trying", after + 1, target)
                    warned_at = time.monotonic()
                stop.wait(self._poll_s)
                continue
            node_id, url = source
            try:
                for batch in self._verified_blocks(node_id, url, after, min(target, after + CHUNK), anchor):
                    if stop.is_set():
                        return
                    yield batch
                    after = batch.height
            except _Unusable as exc:
                log.warning("peer %s could not serve blocks %d..%d: %s", node_id, after + 1, target, exc)
                failed.add(node_id)

    def close(self) -> None:
        self._http.close()

    # --- steps ---------------------------------------------------------------

    def _own_block_hash(self, height: int, stop: threading.Event) -> bytes | None:
        """This peer's block ``height`` once committed (the commit pipeline may still be writing it)."""
        while not stop.is_set():
            head = self._store.head()
            if head is not None and head.height >= height:
                return sha256(self._store.header_bytes(height))
            stop.wait(0.02)
        return None

    def _source(self, target: int, failed: set[str]) -> tuple[str, str] | None:
        for node_id, url in self.peers.items():
            if node_id in failed:
                continue
            try:
                height = self._get(url, "/v1/log/checkpoint")["checkpoint"]["height"]
            except _Unusable as exc:
                log.info("peer %s cannot be asked: %s", node_id, exc)
                failed.add(node_id)
                continue
            if height >= target:
                return node_id, url
        return None

    def _verified_blocks(self, node_id: str, url: str, after: int, target: int, anchor: bytes) -> Iterator[FetchedBatch]:
        source = f"peer {node_id} ({url})"
        headers = self._headers(url, after + 1, target + 1)
        previous = anchor
        for raw, header in headers:
            if header.prev_hash != previous:
                raise ForkError(
                    f"block {header.height} served by {source} does not follow block {header.height - 1} of this peer "
                    f"(it names {header.prev_hash.hex()}, this peer has {previous.hex()})"
                )
            previous = sha256(raw)
        self._attest(node_id, url, target, previous, source)
        leaves = self._leaves(url, headers[0][1].first_index)
        for raw, header in headers:
            envelopes = tuple(next(leaves) for _ in range(header.tx_count))
            yield FetchedBatch(header.order_seq, header.time, envelopes, height=header.height, block_hash=sha256(raw), source=source)

    def _headers(self, url: str, start: int, end: int) -> list[tuple[bytes, BlockHeader]]:
        found: list[tuple[bytes, BlockHeader]] = []
        while start + len(found) < end:
            first = start + len(found)
            page = self._get(url, f"/v1/log/headers?start={first}&end={min(end, first + PAGE)}")
            raws = [base64.b64decode(text) for text in page.get("headers", [])]
            if not raws:
                raise _Unusable(f"no headers from {first}")
            for raw in raws:
                try:
                    header = BlockHeader.decode(raw)
                except LedgerError as exc:
                    raise _Unusable(f"header {start + len(found)} is malformed: {exc}") from None
                if header.height != start + len(found):
                    raise _Unusable(f"asked for header {start + len(found)}, got {header.height}")
                found.append((raw, header))
        return found[: end - start]

    def _leaves(self, url: str, start: int) -> Iterator[bytes]:
        while True:
            page = self._get(url, f"/v1/log/entries?start={start}&end={start + PAGE}")
            entries = page.get("entries", [])
            if not entries:
                raise _Unusable(f"no log entries from {start}")
            for text in entries:
                yield base64.b64decode(text)
            start += len(entries)

    def _attest(self, node_id: str, url: str, height: int, block_hash: bytes, source: str) -> None:
        """The served chain must end at the block the server signed; no other listed peer may have signed another."""
        network = self._store.header(0).network
        served_signed = False
        for other_id, other_url in self.peers.items():
            try:
                signed = self._checkpoint(other_id, other_url, height, network)
            except _Unusable as exc:
                if other_id == node_id:
                    raise
                log.info("peer %s gives no usable checkpoint at %d: %s", other_id, height, exc)
                continue
            if signed is None:
                continue
            if signed.checkpoint.block_hash != block_hash:
                raise ForkError(
                    f"{source} serves block {height} with hash {block_hash.hex()}, but peer {other_id} signed a checkpoint "
                    f"naming {signed.checkpoint.block_hash.hex()} at that height"
                )
            served_signed = served_signed or other_id == node_id
        if not served_signed:
            raise _Unusable(f"it signed no checkpoint at height {height} under its registered node key")

    def _checkpoint(self, node_id: str, url: str, height: int, network: bytes) -> SignedCheckpoint | None:
        """That peer's checkpoint at ``height`` if it is signed by the key the network registered for it, else None."""
        answer = self._get(url, f"/v1/log/checkpoint?height={height}")
        try:
            signed = SignedCheckpoint.decode(base64.b64decode(answer["encoded"]))
            signed.verify()
        except (LedgerError, KeyError, ValueError) as exc:
            raise _Unusable(f"its checkpoint at {height} does not verify: {exc}") from None
        record = self._store.read_state(node_record_key(node_id))
        if not isinstance(record, dict) or record.get("key") != signed.node_key:
            log.info("peer %s signs with a key this peer does not know as its node key; its checkpoint is not counted", node_id)
            return None
        checkpoint = signed.checkpoint
        if (checkpoint.node_id, checkpoint.network, checkpoint.height) != (node_id, network, height):
            raise _Unusable(f"its checkpoint names node {checkpoint.node_id!r}, height {checkpoint.height} of another request")
        return signed

    def _get(self, url: str, target: str) -> dict[str, Any]:
        try:
            response = self._http.get(url + target)
        except httpx.HTTPError as exc:
            raise _Unusable(f"GET {target}: {type(exc).__name__} {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            detail = body.get("error", {}).get("message", "") if isinstance(body, dict) else response.text[:200]
            raise _Unusable(f"GET {target}: HTTP {response.status_code} {detail}")
        return body
