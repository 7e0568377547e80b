"""Every key layout of the store, in one place (docs/PROTOCOL.md §8).

One LevelDB holds several logical stores, each under a one-byte prefix, in the
spirit of Fabric's kvledger (block store, tx index, state DB, history DB):

    0x00 'format'            → format version (ASCII decimal)
    0x00 'head'              → CBOR {height, block_hash, tree_size, order_seq, time}
    'b' ‖ u64 height         → block header bytes
    'h' ‖ block hash         → u64 height
    'l' ‖ u64 log index      → leaf: the transaction envelope bytes
    't' ‖ tx id (32)         → CBOR [log_index, height, code]
    's' ‖ state key          → state value (canonical CBOR)
    'v' ‖ u16 len ‖ state key ‖ u64 log index → b"" (history: which tx wrote the key)
    'n' ‖ u8 level ‖ u64 index → 32-byte Merkle node (root of a perfect subtree)
    'c' ‖ u64 height         → this node's signed checkpoint after that block

Integers are big-endian so byte order equals numeric order for scans.
"""

from __future__ import annotations

import struct
from enum import Enum

__all__ = [
    "FORMAT_VERSION",
    "KeySpace",
    "checkpoint_key",
    "META_FORMAT",
    "META_HEAD",
    "block_hash_key",
    "block_key",
    "decode_block_key",
    "decode_history_key",
    "decode_leaf_key",
    "decode_node_key",
    "history_key",
    "history_prefix",
    "leaf_key",
    "node_key",
    "state_key",
    "txid_key",
]

FORMAT_VERSION = b"2"  # 2: one signed checkpoint per block, under "c"

_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_NODE = struct.Struct(">BQ")


class KeySpace(bytes, Enum):
    META = b"\x00"
    BLOCK = b"b"
    BLOCK_HASH = b"h"
    LEAF = b"l"
    TXID = b"t"
    STATE = b"s"
    HISTORY = b"v"
    NODE = b"n"
    CHECKPOINT = b"c"


META_FORMAT = b"\x00format"
META_HEAD = b"\x00head"


def block_key(height: int) -> bytes:
    return b"b" + _U64.pack(height)


def decode_block_key(key: bytes) -> int:
    return _U64.unpack(key[1:])[0]


def checkpoint_key(height: int) -> bytes:
    return b"c" + _U64.pack(height)


def block_hash_key(block_hash: bytes) -> bytes:
    return b"h" + block_hash


def leaf_key(index: int) -> bytes:
    return b"l" + _U64.pack(index)


def decode_leaf_key(key: bytes) -> int:
    return _U64.unpack(key[1:])[0]


def txid_key(tx_id: bytes) -> bytes:
    return b"t" + tx_id


def state_key(key: bytes) -> bytes:
    return b"s" + key


def history_prefix(key: bytes) -> bytes:
    return b"v" + _U16.pack(len(key)) + key


def history_key(key: bytes, log_index: int) -> bytes:
    return history_prefix(key) + _U64.pack(log_index)


def decode_history_key(key: bytes) -> tuple[bytes, int]:
    (length,) = _U16.unpack(key[1:3])
    return key[3 : 3 + length], _U64.unpack(key[3 + length :])[0]


def node_key(level: int, index: int) -> bytes:
    return b"n" + _NODE.pack(level, index)


def decode_node_key(key: bytes) -> tuple[int, int]:
    return _NODE.unpack(key[1:])


def encode_u64(value: int) -> bytes:
    return _U64.pack(value)


def decode_u64(data: bytes) -> int:
    return _U64.unpack(data)[0]
