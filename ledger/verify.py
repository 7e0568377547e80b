"""Independent verification of a store: rebuild everything from the blocks and compare.

Derived data is never trusted. The verifier replays every block's transactions
through the same deterministic rules into a fresh in-memory store, checks each
stored header (hash chain, validation codes, log root, state hash) against the
rebuilt one, then compares every key of the two stores. Whatever byte of
whatever key was changed, added or removed, some comparison differs, and the
key is mapped back to the block and transaction it belongs to.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ledger import codec
from ledger.block import BlockHeader, ChainHead, OrderedBatch
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import EncodingError, LedgerError, StorageError
from ledger.processor import BatchOrderError, BlockOutcome, Prechecked, build_block, precheck_many
from ledger.rules.membership import node_key_holder
from ledger.storage import schema
from ledger.storage.kv import KeyValueStore
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.memory import MemoryStore

__all__ = ["Discrepancy", "VerifyReport", "verify_store"]

SubmitPrecheck = Callable[[list[bytes], bytes], Callable[[], list[Prechecked]]]


@dataclass(frozen=True)
class Discrepancy:
    """One place where the store disagrees with what its blocks imply."""

    key: bytes | None
    what: str
    height: int | None = None
    tx_position: int | None = None
    log_index: int | None = None

    def __str__(self) -> str:
        where = []
        if self.key is not None:
            where.append(f"key={self.key.hex()}")
        if self.height is not None:
            where.append(f"block={self.height}")
        if self.tx_position is not None:
            where.append(f"tx={self.tx_position}")
        if self.log_index is not None:
            where.append(f"log_index={self.log_index}")
        return f"{' '.join(where) or 'store'}: {self.what}"


@dataclass
class VerifyReport:
    blocks: int = 0
    transactions: int = 0
    keys_compared: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies


def verify_store(
    kv: KeyValueStore,
    *,
    expected_network: bytes | None = None,
    submit_precheck: SubmitPrecheck | None = None,
    scratch: KeyValueStore | None = None,
) -> VerifyReport:
    """Rebuild the ledger held in ``kv`` from its blocks and report every disagreement.

    ``submit_precheck(envelopes, network)`` starts the stateless checks of a block
    and returns a function that waits for them; a caller with worker processes
    passes one, so block N+1 is checked while block N is replayed.
    ``scratch`` is an empty store to rebuild into (default: in memory); a large
    ledger passes a temporary on-disk store so memory stays bounded.
    """
    report = VerifyReport()
    run_precheck = submit_precheck or _inline_precheck
    rebuilt = LedgerStore(scratch if scratch is not None else MemoryStore())
    try:
        headers = _stored_headers(kv, report)
        _replay(kv, headers, rebuilt, run_precheck, expected_network, report)
    except LedgerError as exc:
        report.discrepancies.append(Discrepancy(None, f"cannot read the store: {exc}"))
        return report
    locator = _Locator(rebuilt)
    _compare_keys(kv, rebuilt.kv, locator, report)
    _check_checkpoints(kv, rebuilt, report)
    return report


def _inline_precheck(envelopes: list[bytes], network: bytes) -> Callable[[], list[Prechecked]]:
    results = precheck_many(envelopes, network)
    return lambda: results


def _stored_headers(kv: KeyValueStore, report: VerifyReport) -> list[tuple[bytes, BlockHeader | None]]:
    """The contiguous run of headers from block 0; gaps up to the claimed head are reported."""
    headers: list[tuple[bytes, BlockHeader | None]] = []
    highest = -1
    for key, raw in kv.iterate(schema.KeySpace.BLOCK.value):
        height = schema.decode_block_key(key)
        highest = max(highest, height)
        if height != len(headers):
            continue  # after a gap nothing can be replayed; keep scanning to see how far blocks go
        try:
            headers.append((raw, BlockHeader.decode(raw)))
        except EncodingError as exc:
            report.discrepancies.append(Discrepancy(key, f"header does not decode: {exc}", height=height))
            headers.append((raw, None))
    for height in range(len(headers), max(highest, _claimed_height(kv)) + 1):
        if kv.get(schema.block_key(height)) is None:
            report.discrepancies.append(Discrepancy(schema.block_key(height), f"block {height} is missing", height=height))
    return headers


def _claimed_height(kv: KeyValueStore) -> int:
    """The height the stored head claims (-1 if it is absent or unreadable: compared later anyway)."""
    try:
        return codec.decode(kv.get(schema.META_HEAD))["height"]
    except (LedgerError, TypeError, KeyError):
        return -1


def _replay(
    kv: KeyValueStore,
    headers: list[tuple[bytes, BlockHeader | None]],
    rebuilt: LedgerStore,
    submit_precheck: SubmitPrecheck,
    expected_network: bytes | None,
    report: VerifyReport,
) -> None:
    log = rebuilt.compact_range()
    network = expected_network or next((header.network for _, header in headers[:1] if header), None)
    for height, raw, header, envelopes, prechecked in _blocks_with_prechecks(kv, headers, network, submit_precheck, report):
        batch = OrderedBatch(header.order_seq, header.time, tuple(envelopes))
        try:
            outcome = build_block(
                batch,
                network=network,
                head=rebuilt.head(),
                log=log,
                state=rebuilt.state,
                is_committed=rebuilt.is_committed,
                prechecked=prechecked(),
            )
        except BatchOrderError as exc:
            report.discrepancies.append(Discrepancy(schema.block_key(height), str(exc), height=height))
            return
        if outcome.header_bytes != raw:
            _explain_header(header, outcome, report)
        if height == 0 and outcome.txs and outcome.txs[0].code != 0:
            report.discrepancies.append(Discrepancy(None, "block 0 does not hold a valid genesis transaction", height=0))
        rebuilt.append(outcome, sync=False)
        report.blocks += 1
        report.transactions += header.tx_count
    extra = _LeafReader.leftover_after(kv, rebuilt.head())
    if extra is not None:
        report.discrepancies.append(Discrepancy(schema.leaf_key(extra), "leaf beyond the last block", log_index=extra))


def _blocks_with_prechecks(
    kv: KeyValueStore,
    headers: list[tuple[bytes, BlockHeader | None]],
    network: bytes | None,
    submit_precheck: SubmitPrecheck,
    report: VerifyReport,
) -> Iterator[tuple[int, bytes, BlockHeader, list[bytes], Callable[[], list[Prechecked]]]]:
    """Yield each replayable block with its prechecks already started, one block ahead."""
    leaves = _LeafReader(kv)
    ahead = None
    for height, (raw, header) in enumerate(headers):
        if header is None:
            break  # nothing after an unreadable header can be placed in the log
        envelopes = leaves.take(header.first_index, header.tx_count, height, report)
        if envelopes is None:
            break
        started = (height, raw, header, envelopes, submit_precheck(envelopes, network or header.network))
        if ahead is not None:
            yield ahead
        ahead = started
    if ahead is not None:
        yield ahead


def _explain_header(stored: BlockHeader, outcome: BlockOutcome, report: VerifyReport) -> None:
    rebuilt = outcome.header
    height = stored.height
    key = schema.block_key(height)
    for name in ("network", "height", "prev_hash", "first_index", "tx_count", "log_root", "state_hash"):
        if getattr(stored, name) != getattr(rebuilt, name):
            report.discrepancies.append(Discrepancy(key, f"header field {name} differs from the rebuilt block", height=height))
    for position, (mine, theirs) in enumerate(zip(stored.codes, rebuilt.codes)):
        if mine != theirs:
            report.discrepancies.append(
                Discrepancy(
                    key,
                    f"validation code {mine} stored, rules give {theirs}",
                    height=height,
                    tx_position=position,
                    log_index=stored.first_index + position,
                )
            )
    if not any(d.height == height for d in report.discrepancies):
        report.discrepancies.append(Discrepancy(key, "header bytes differ from the rebuilt block", height=height))


class _LeafReader:
    """Reads the stored leaves in order with one scan, noting gaps."""

    def __init__(self, kv: KeyValueStore) -> None:
        self._items: Iterator[tuple[bytes, bytes]] = iter(kv.iterate(schema.KeySpace.LEAF.value))
        self._next_index = 0
        self._pending: tuple[bytes, bytes] | None = None

    def take(self, first: int, count: int, height: int, report: VerifyReport) -> list[bytes] | None:
        if first != self._next_index:
            report.discrepancies.append(Discrepancy(None, f"block starts at leaf {first}, expected {self._next_index}", height=height))
            return None
        envelopes = []
        for index in range(first, first + count):
            item = self._pending or next(self._items, None)
            self._pending = None
            if item is None or schema.decode_leaf_key(item[0]) != index:
                self._pending = item
                report.discrepancies.append(
                    Discrepancy(schema.leaf_key(index), "leaf missing", height=height, log_index=index)
                )
                return None
            envelopes.append(item[1])
        self._next_index = first + count
        return envelopes

    @staticmethod
    def leftover_after(kv: KeyValueStore, head: ChainHead | None) -> int | None:
        """The index of the first stored leaf beyond the replayed chain, if any."""
        start = 0 if head is None else head.tree_size
        for key, _ in kv.iterate(schema.KeySpace.LEAF.value, schema.leaf_key(start)):
            return schema.decode_leaf_key(key)
        return None


class _Locator:
    """Maps a store key to the block and transaction it derives from."""

    def __init__(self, rebuilt: LedgerStore) -> None:
        self._rebuilt = rebuilt
        head = rebuilt.head()
        self._ends = [rebuilt.header(h).tree_size for h in range(head.height + 1)] if head else []

    def locate(self, key: bytes, stored_value: bytes | None) -> tuple[int | None, int | None, int | None]:
        space = key[:1]
        try:
            if space == schema.KeySpace.BLOCK.value:
                return schema.decode_block_key(key), None, None
            if space == schema.KeySpace.BLOCK_HASH.value and stored_value is not None:
                return schema.decode_u64(stored_value), None, None
            if space == schema.KeySpace.LEAF.value:
                return self._by_index(schema.decode_leaf_key(key))
            if space == schema.KeySpace.NODE.value:
                level, index = schema.decode_node_key(key)
                return self._by_index(index << level)
            if space == schema.KeySpace.HISTORY.value:
                return self._by_index(schema.decode_history_key(key)[1])
            if space == schema.KeySpace.TXID.value:
                location = self._rebuilt.tx_location(key[1:])
                if location is None and stored_value is not None:
                    return self._by_index(codec.decode(stored_value)[0])
                return self._by_index(location.log_index) if location else (None, None, None)
            if space == schema.KeySpace.STATE.value:
                writers = self._rebuilt.history(key[1:])
                return self._by_index(writers[-1]) if writers else (None, None, None)
        except (LedgerError, ValueError, TypeError, IndexError, KeyError, struct.error):
            pass
        return None, None, None

    def _by_index(self, log_index: int) -> tuple[int | None, int | None, int | None]:
        height = bisect.bisect_right(self._ends, log_index)
        if height >= len(self._ends):
            return None, None, log_index
        first = self._ends[height - 1] if height else 0
        return height, log_index - first, log_index


def _compare_keys(kv: KeyValueStore, rebuilt: KeyValueStore, locator: _Locator, report: VerifyReport) -> None:
    stored_items = iter(kv.iterate())
    rebuilt_items = iter(rebuilt.iterate())
    stored = next(stored_items, None)
    expected = next(rebuilt_items, None)
    while stored is not None or expected is not None:
        if stored is not None and stored[0][:1] == schema.KeySpace.CHECKPOINT.value:
            stored = next(stored_items, None)  # checked on their own: signed, not derived
            continue
        report.keys_compared += 1
        if expected is None or (stored is not None and stored[0] < expected[0]):
            _record(report, locator, stored[0], stored[1], "key should not exist")
            stored = next(stored_items, None)
        elif stored is None or expected[0] < stored[0]:
            _record(report, locator, expected[0], None, "key is missing")
            expected = next(rebuilt_items, None)
        else:
            if stored[1] != expected[1]:
                _record(report, locator, stored[0], stored[1], "value differs from the rebuilt value")
            stored = next(stored_items, None)
            expected = next(rebuilt_items, None)


def _record(report: VerifyReport, locator: _Locator, key: bytes, stored_value: bytes | None, what: str) -> None:
    height, position, log_index = locator.locate(key, stored_value)
    space = schema.KeySpace(key[:1]).name.lower() if key[:1] in {s.value for s in schema.KeySpace} else "unknown"
    report.discrepancies.append(Discrepancy(key, f"{space}: {what}", height, position, log_index))


def _check_checkpoints(kv: KeyValueStore, rebuilt: LedgerStore, report: VerifyReport) -> None:
    """Every block has this node's checkpoint; each is well signed and agrees with its block."""
    head = rebuilt.head()
    signed_heights = set()
    for key, raw in kv.iterate(schema.KeySpace.CHECKPOINT.value):
        height = schema.decode_block_key(key)
        signed_heights.add(height)
        _check_checkpoint(key, height, raw, rebuilt, report)
    for height in range(0 if head is None else head.height + 1):
        if height not in signed_heights:
            report.discrepancies.append(Discrepancy(schema.checkpoint_key(height), "checkpoint missing", height=height))


def _check_checkpoint(key: bytes, height: int, raw: bytes, rebuilt: LedgerStore, report: VerifyReport) -> None:
    try:
        signed = SignedCheckpoint.decode(raw)
        signed.verify()
    except LedgerError as exc:
        report.discrepancies.append(Discrepancy(key, f"checkpoint: {exc}", height=height))
        return
    checkpoint = signed.checkpoint
    if rebuilt.head() is not None and checkpoint.network != rebuilt.header(0).network:
        report.discrepancies.append(Discrepancy(key, "checkpoint names another network", height=height))
    holder = rebuilt.state.get(node_key_holder(signed.node_key))
    if holder is None or codec.decode(holder)["node"] != checkpoint.node_id:
        report.discrepancies.append(
            Discrepancy(key, f"checkpoint signed by a key that is not node {checkpoint.node_id!r}", height=height)
        )
    try:
        header = rebuilt.header(checkpoint.height)
    except StorageError:
        report.discrepancies.append(Discrepancy(key, f"checkpoint names block {checkpoint.height}, which does not exist"))
        return
    if checkpoint.height != height or (header.tree_size, header.log_root, header.hash()) != (
        checkpoint.tree_size,
        checkpoint.root_hash,
        checkpoint.block_hash,
    ):
        report.discrepancies.append(Discrepancy(key, "checkpoint disagrees with the block it names", height=height))
