"""Signed checkpoints: a peer's signed statement of the log's size and root.

A checkpoint commits the peer to one history; two validly signed checkpoints
that no consistency proof can reconcile are proof that the peer misbehaved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ledger import codec
from ledger.crypto import CONTEXT_CHECKPOINT, KeyPair, sign, verify
from ledger.errors import CheckpointError, EncodingError, SignatureError
from ledger.fields import Bytes, Text, UInt, check_map

__all__ = ["Checkpoint", "SignedCheckpoint"]

_SPEC = {
    "network": Bytes(32),
    "node_id": Text(64, identifier=True),
    "tree_size": UInt(),
    "root_hash": Bytes(32),
    "height": UInt(),
    "block_hash": Bytes(32),
    "time": UInt(),
}


@dataclass(frozen=True)
class Checkpoint:
    network: bytes
    node_id: str
    tree_size: int
    root_hash: bytes
    height: int
    block_hash: bytes
    time: int

    def encode(self) -> bytes:
        return codec.encode(asdict(self))

    def sign(self, key: KeyPair) -> SignedCheckpoint:
        return SignedCheckpoint(self, key.public_key, sign(key, CONTEXT_CHECKPOINT, self.encode()))


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    node_key: bytes
    signature: bytes

    def verify(self) -> None:
        """Return None if the signature is the node key's over the canonical checkpoint bytes."""
        try:
            verify(self.node_key, CONTEXT_CHECKPOINT, self.checkpoint.encode(), self.signature)
        except SignatureError:
            raise CheckpointError(f"checkpoint of node {self.checkpoint.node_id!r} is not signed by its key") from None

    def encode(self) -> bytes:
        return codec.encode([self.checkpoint.encode(), self.node_key, self.signature])

    @classmethod
    def decode(cls, data: bytes) -> SignedCheckpoint:
        try:
            body, node_key, signature = codec.decode(data)
            fields = codec.decode(body)
            check_map(fields, _SPEC, "checkpoint")
            Bytes(32)(node_key, "checkpoint.node_key")
            Bytes(64)(signature, "checkpoint.signature")
        except (EncodingError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from None
        return cls(Checkpoint(**fields), node_key, signature)
