"""RFC 6962 / RFC 9162 Merkle tree of the ledger: hashing, proof building and verification.

Modelled on transparency-dev/merkle and checked against its published vectors.
"""

from __future__ import annotations

from ledger.merkle.hasher import EMPTY_ROOT, HASH_SIZE, hash_children, hash_leaf
from ledger.merkle.tree import CompactRange, MemoryNodes, NodeReader, ProofBuilder
from ledger.merkle.verify import root_from_inclusion_proof, verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryNodes",
    "NodeReader",
    "ProofBuilder",
    "hash_children",
    "hash_leaf",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]
