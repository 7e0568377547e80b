"""A ledger driven batch by batch through the pure block builder, over an in-memory store."""

from __future__ import annotations

from ledger import codec
from ledger.block import OrderedBatch
from ledger.processor import BlockOutcome, build_block
from ledger.rules import Code
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.memory import MemoryStore


class Chain:
    """A LedgerStore over a MemoryStore, fed batch by batch through the pure block builder."""

    def __init__(self, network: bytes, time_ms: int) -> None:
        self.store = LedgerStore(MemoryStore())
        self.network = network
        self.time_ms = time_ms
        self.seq = 0

    def build(self, envelopes: list[bytes], time: int | None = None) -> BlockOutcome:
        self.seq += 1
        return build_block(
            OrderedBatch(self.seq, self.time_ms if time is None else time, tuple(envelopes)),
            network=self.network,
            head=self.store.head(),
            log=self.store.compact_range(),
            state=self.store.state,
            is_committed=self.store.is_committed,
        )

    def commit(self, envelopes: list[bytes], time: int | None = None) -> BlockOutcome:
        outcome = self.build(envelopes, time)
        self.store.append(outcome)
        return outcome

    def codes(self, envelopes: list[bytes], time: int | None = None) -> list[Code]:
        return [tx.code for tx in self.commit(envelopes, time).txs]

    def read(self, state_key: bytes):
        raw = self.store.state.get(state_key)
        return None if raw is None else codec.decode(raw)

    def state(self) -> dict[bytes, bytes]:
        return {k[1:]: v for k, v in self.store.kv.iterate(b"s")}
