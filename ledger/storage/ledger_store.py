"""The ledger store: blocks, leaves, tx index, state, history and Merkle nodes over one KeyValueStore.

A block and everything derived from it (index entries, state and history
writes, Merkle nodes, the new head) go to the store in one atomic write batch,
so a crash leaves either the whole block or none of it. The format-version key
is checked at open: a store written by an incompatible version is refused
rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ledger import codec
from ledger.block import BlockHeader, ChainHead
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import FormatVersionError, StorageError
from ledger.merkle import CompactRange
from ledger.processor import BlockOutcome
from ledger.rules import Code
from ledger.storage import schema
from ledger.storage.kv import KeyValueStore

__all__ = ["LedgerStore", "TxLocation"]


@dataclass(frozen=True)
class TxLocation:
    log_index: int
    height: int
    code: Code


class _StateView:
    """Committed world state as a :class:`ledger.state.StateReader`."""

    __slots__ = ("_kv",)

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    def get(self, key: bytes) -> bytes | None:
        return self._kv.get(schema.state_key(key))


class LedgerStore:
    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv
        self.state = _StateView(kv)
        found = kv.get(schema.META_FORMAT)
        if found is None:
            if next(iter(kv.iterate()), None) is not None:
                raise FormatVersionError("store has data but no format-version key")
            batch = kv.batch()
            batch.put(schema.META_FORMAT, schema.FORMAT_VERSION)
            kv.write(batch)
        elif found != schema.FORMAT_VERSION:
            raise FormatVersionError(
                f"store format version {found!r} is not supported (this build reads {schema.FORMAT_VERSION!r})"
            )

    # --- reads -------------------------------------------------------------

    def head(self) -> ChainHead | None:
        raw = self.kv.get(schema.META_HEAD)
        if raw is None:
            return None
        fields = codec.decode(raw)
        return ChainHead(**fields)

    def header_bytes(self, height: int) -> bytes:
        raw = self.kv.get(schema.block_key(height))
        if raw is None:
            raise StorageError(f"block {height} is not in the store")
        return raw

    def header(self, height: int) -> BlockHeader:
        return BlockHeader.decode(self.header_bytes(height))

    def leaf(self, index: int) -> bytes:
        raw = self.kv.get(schema.leaf_key(index))
        if raw is None:
            raise StorageError(f"leaf {index} is not in the store")
        return raw

    def leaves(self, start: int, end: int) -> Iterator[bytes]:
        """Yield leaves start..end-1 in order (a prefix scan, not one get per leaf)."""
        expected = start
        for key, value in self.kv.iterate(schema.KeySpace.LEAF.value, schema.leaf_key(start)):
            if expected >= end:
                return
            if schema.decode_leaf_key(key) != expected:
                raise StorageError(f"leaf {expected} is missing from the store")
            yield value
            expected += 1
        if expected < end:
            raise StorageError(f"leaf {expected} is missing from the store")

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        raw = self.kv.get(schema.txid_key(tx_id))
        if raw is None:
            return None
        log_index, height, code = codec.decode(raw)
        return TxLocation(log_index, height, Code(code))

    def is_committed(self, tx_id: bytes) -> bool:
        """Whether a valid transaction holds ``tx_id`` (refused ones do not take the id)."""
        raw = self.kv.get(schema.txid_key(tx_id))
        return raw is not None and codec.decode(raw)[2] == Code.VALID

    def node(self, level: int, index: int) -> bytes:
        raw = self.kv.get(schema.node_key(level, index))
        if raw is None:
            raise StorageError(f"Merkle node (level {level}, index {index}) is not in the store")
        return raw

    def compact_range(self) -> CompactRange:
        head = self.head()
        return CompactRange.from_reader(self, 0 if head is None else head.tree_size)

    def read_state(self, key: bytes) -> codec.Value | None:
        """The decoded committed state value of ``key``, or None."""
        raw = self.state.get(key)
        return None if raw is None else codec.decode(raw)

    def state_scan(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Committed state entries whose key starts with ``prefix`` (from ``start`` on), in key order."""
        for key, value in self.kv.iterate(schema.state_key(prefix), None if start is None else schema.state_key(start)):
            yield key[1:], value

    def history(self, state_key: bytes) -> list[int]:
        """Log indexes of the valid transactions that wrote ``state_key``, oldest first."""
        return [schema.decode_history_key(key)[1] for key, _ in self.kv.iterate(schema.history_prefix(state_key))]

    def checkpoint(self, height: int) -> SignedCheckpoint | None:
        """This node's signed checkpoint after block ``height`` (kept for every block)."""
        raw = self.kv.get(schema.checkpoint_key(height))
        return None if raw is None else SignedCheckpoint.decode(raw)

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        head = self.head()
        return None if head is None else self.checkpoint(head.height)

    def height_of_log_index(self, log_index: int) -> int:
        """The height of the block holding leaf ``log_index`` (binary search over headers)."""
        head = self.head()
        if head is None or not 0 <= log_index < head.tree_size:
            raise StorageError(f"log index {log_index} is outside the log")
        low, high = 0, head.height
        while low < high:
            middle = (low + high) // 2
            if self.header(middle).tree_size <= log_index:
                low = middle + 1
            else:
                high = middle
        return low

    # --- the one write path ------------------------------------------------

    def append(self, outcome: BlockOutcome, checkpoint: SignedCheckpoint | None = None, *, sync: bool = True) -> None:
        """Write ``outcome`` and everything derived from it in one atomic batch."""
        header = outcome.header
        head = self.head()
        expected_height = 0 if head is None else head.height + 1
        if header.height != expected_height:
            raise StorageError(f"block {header.height} does not follow the stored head (expected {expected_height})")
        batch = self.kv.batch()
        put = batch.put
        put(schema.block_key(header.height), outcome.header_bytes)
        put(schema.block_hash_key(outcome.block_hash), schema.encode_u64(header.height))
        for position, envelope in enumerate(outcome.envelopes):
            put(schema.leaf_key(header.first_index + position), envelope)
        for tx in outcome.txs:
            if tx.indexed:
                put(schema.txid_key(tx.tx_id), codec.encode([tx.log_index, header.height, int(tx.code)]))
        for key, value in outcome.state_writes.items():
            if value is None:
                batch.delete(schema.state_key(key))
            else:
                put(schema.state_key(key), value)
        for key, log_index in outcome.history:
            put(schema.history_key(key, log_index), b"")
        for level, index, node_hash in outcome.merkle_nodes:
            put(schema.node_key(level, index), node_hash)
        put(schema.META_HEAD, encode_head(outcome.head))
        if checkpoint is not None:
            put(schema.checkpoint_key(header.height), checkpoint.encode())
        self.kv.write(batch, sync=sync)

    def close(self) -> None:
        self.kv.close()


def encode_head(head: ChainHead) -> bytes:
    return codec.encode(
        {
            "height": head.height,
            "block_hash": head.block_hash,
            "tree_size": head.tree_size,
            "order_seq": head.order_seq,
            "time": head.time,
        }
    )
