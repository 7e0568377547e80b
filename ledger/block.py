"""Blocks: what the orderer hands over, and the hash-linked headers peers build from it.

A block is a deterministic function of the previous block and one ordered batch,
so every honest peer builds byte-identical blocks (docs/PROTOCOL.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec
from ledger.crypto import sha256
from ledger.errors import EncodingError
from ledger.fields import Bytes, UInt, check_map

__all__ = ["BlockHeader", "ChainHead", "OrderedBatch", "ZERO_HASH"]

ZERO_HASH = bytes(32)
BLOCK_VERSION = 1

_HEADER_SPEC = {
    "version": UInt(BLOCK_VERSION, BLOCK_VERSION),
    "network": Bytes(32),
    "height": UInt(),
    "prev_hash": Bytes(32),
    "order_seq": UInt(),
    "time": UInt(),
    "first_index": UInt(),
    "tx_count": UInt(),
    "codes": Bytes(),
    "log_root": Bytes(32),
    "state_hash": Bytes(32),
}


@dataclass(frozen=True)
class OrderedBatch:
    """Transactions in the order the ordering service fixed, with its sequence number and time."""

    seq: int
    time: int
    envelopes: tuple[bytes, ...]


@dataclass(frozen=True)
class BlockHeader:
    """``codes`` holds one validation code byte per transaction; ``log_root`` is the
    RFC 6962 root of the whole log after this block (size first_index + tx_count)."""

    network: bytes
    height: int
    prev_hash: bytes
    order_seq: int
    time: int
    first_index: int
    tx_count: int
    codes: bytes
    log_root: bytes
    state_hash: bytes
    version: int = BLOCK_VERSION

    @property
    def tree_size(self) -> int:
        return self.first_index + self.tx_count

    def encode(self) -> bytes:
        return codec.encode(
            {
                "version": self.version,
                "network": self.network,
                "height": self.height,
                "prev_hash": self.prev_hash,
                "order_seq": self.order_seq,
                "time": self.time,
                "first_index": self.first_index,
                "tx_count": self.tx_count,
                "codes": self.codes,
                "log_root": self.log_root,
                "state_hash": self.state_hash,
            }
        )

    def hash(self) -> bytes:
        return sha256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        fields = codec.decode(data)
        check_map(fields, _HEADER_SPEC, "block header")
        if len(fields["codes"]) != fields["tx_count"]:
            raise EncodingError("block header: codes length differs from tx_count")
        return cls(**fields)


@dataclass(frozen=True)
class ChainHead:
    """Where the chain ends: the last block and the log size after it."""

    height: int
    block_hash: bytes
    tree_size: int
    order_seq: int
    time: int
