"""Ordered batches in, blocks out: the deterministic commit function.

Validation runs in two phases, as in FastFabric: :func:`precheck` needs nothing
but the transaction (decoding, network id, signatures) so callers may run it in
parallel threads; :func:`build_block` then applies the rules in order against
state. Invalid transactions stay in the block with their validation code, as in
Fabric, but change nothing. The result carries every write the store must make
in one atomic batch; nothing here touches storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from ledger import codec
from ledger.block import ZERO_HASH, BlockHeader, ChainHead, OrderedBatch
from ledger.crypto import sha256
from ledger.errors import EncodingError, LedgerError, SignatureError
from ledger.merkle import CompactRange, hash_leaf
from ledger.rules import Code, apply_transaction
from ledger.state import StateOverlay, StateReader
from ledger.tx import Transaction, parse_transaction

__all__ = [
    "BatchOrderError",
    "BlockOutcome",
    "Prechecked",
    "TxOutcome",
    "build_block",
    "precheck",
    "precheck_many",
    "state_hash",
]


class BatchOrderError(LedgerError):
    """Raised when a batch cannot follow the chain head (sequence or time runs backwards)."""


@dataclass(frozen=True)
class Prechecked:
    """The stateless verdict on one envelope: a decoded transaction, or why it failed."""

    tx: Transaction | None
    code: Code
    reason: str = ""


@dataclass(frozen=True)
class TxOutcome:
    tx_id: bytes | None
    log_index: int
    code: Code
    reason: str
    indexed: bool  # signatures verified and no valid tx holds the id: the tx index points here


@dataclass
class BlockOutcome:
    header: BlockHeader
    header_bytes: bytes
    block_hash: bytes
    envelopes: tuple[bytes, ...]
    txs: list[TxOutcome]
    state_writes: dict[bytes, bytes | None]
    history: list[tuple[bytes, int]] = field(default_factory=list)
    merkle_nodes: list[tuple[int, int, bytes]] = field(default_factory=list)

    @property
    def head(self) -> ChainHead:
        header = self.header
        return ChainHead(header.height, self.block_hash, header.tree_size, header.order_seq, header.time)


def precheck(envelope: bytes, network: bytes) -> Prechecked:
    try:
        tx = parse_transaction(envelope)
    except EncodingError as exc:
        return Prechecked(None, Code.BAD_ENCODING, str(exc))
    if tx.network != network:
        return Prechecked(tx, Code.WRONG_NETWORK, "transaction names another network")
    try:
        tx.check_signatures()
    except SignatureError as exc:
        return Prechecked(tx, Code.BAD_SIGNATURE, str(exc))
    return Prechecked(tx, Code.VALID)


def precheck_many(envelopes: Sequence[bytes], network: bytes) -> list[Prechecked]:
    """:func:`precheck` over a list; the unit of work handed to worker processes."""
    return [precheck(envelope, network) for envelope in envelopes]


def state_hash(writes: dict[bytes, bytes | None]) -> bytes:
    """SHA-256 of the canonical array of [key, value-or-null] pairs sorted by key."""
    return sha256(codec.encode([[key, writes[key]] for key in sorted(writes)]))


def build_block(
    batch: OrderedBatch,
    *,
    network: bytes,
    head: ChainHead | None,
    log: CompactRange,
    state: StateReader,
    is_committed: Callable[[bytes], bool],
    prechecked: Sequence[Prechecked] | None = None,
) -> BlockOutcome:
    """Build the block that follows ``head`` from ``batch``; ``log`` is advanced in place.

    ``is_committed(tx_id)`` answers whether a *valid* transaction with this id is in
    the store: only a valid commit takes an id, so nobody can burn someone else's
    id by getting a mangled copy (say, with a co-signature stripped) refused first;
    ``prechecked`` lets the caller supply :func:`precheck` results computed in parallel.
    """
    height = 0 if head is None else head.height + 1
    if log.size != (0 if head is None else head.tree_size):
        raise ValueError("the compact range does not end where the chain head does")
    if head is None and len(batch.envelopes) != 1:
        raise BatchOrderError("block 0 holds exactly one transaction, the genesis")
    if head is not None and (batch.seq <= head.order_seq or batch.time < head.time):
        raise BatchOrderError(
            f"batch {batch.seq} at {batch.time} does not follow batch {head.order_seq} at {head.time}"
        )
    if prechecked is None:
        prechecked = [precheck(envelope, network) for envelope in batch.envelopes]
    block_state = StateOverlay(state)
    seen_here: set[bytes] = set()
    outcomes: list[TxOutcome] = []
    history: list[tuple[bytes, int]] = []
    nodes: list[tuple[int, int, bytes]] = []
    first_index = log.size
    for position, (envelope, checked) in enumerate(zip(batch.envelopes, prechecked)):
        log_index = first_index + position
        nodes.extend(log.append(hash_leaf(envelope)))
        tx = checked.tx
        if checked.code is not Code.VALID:
            outcomes.append(TxOutcome(tx.tx_id if tx else None, log_index, checked.code, checked.reason, False))
            continue
        if tx.tx_id in seen_here or is_committed(tx.tx_id):
            outcomes.append(TxOutcome(tx.tx_id, log_index, Code.DUPLICATE_TXID, "transaction id already committed", False))
            continue
        code, reason, writes = apply_transaction(tx, block_state, height=height, block_time=batch.time, log_index=log_index)
        if code is Code.VALID:
            seen_here.add(tx.tx_id)
            history.extend((key, log_index) for key in writes)
        outcomes.append(TxOutcome(tx.tx_id, log_index, code, reason, True))
    header = BlockHeader(
        network=network,
        height=height,
        prev_hash=ZERO_HASH if head is None else head.block_hash,
        order_seq=batch.seq,
        time=batch.time,
        first_index=first_index,
        tx_count=len(batch.envelopes),
        codes=bytes(outcome.code for outcome in outcomes),
        log_root=log.root(),
        state_hash=state_hash(block_state.writes),
    )
    header_bytes = header.encode()
    return BlockOutcome(
        header=header,
        header_bytes=header_bytes,
        block_hash=sha256(header_bytes),
        envelopes=batch.envelopes,
        txs=outcomes,
        state_writes=block_state.writes,
        history=history,
        merkle_nodes=nodes,
    )
