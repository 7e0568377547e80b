"""Verifiers for RFC 6962 inclusion and consistency proofs.

A line-for-line port of transparency-dev/merkle ``proof/verify.go`` so that a
proof accepted here is accepted there and vice versa; the published test
vectors in ``tests/vectors/merkle`` pin the behaviour down, edge cases included.

Every function returns normally only when the proof holds, and otherwise raises
:class:`~ledger.errors.ProofError` (malformed input) or its subclass
:class:`~ledger.errors.RootMismatchError` (well-formed proof, different root).
There is deliberately no boolean variant: a forgotten ``if`` must not turn a
failed check into a pass.

Root hashes are compared, never parsed, so a root of the wrong length is not
"malformed", it simply fails to match (as upstream). Leaf and proof hashes are
inputs to hashing, so they must be exactly :data:`HASH_SIZE` bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import ProofError, RootMismatchError
from ledger.merkle.hasher import HASH_SIZE, hash_children

__all__ = ["root_from_inclusion_proof", "verify_consistency", "verify_inclusion"]


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` implies for leaf ``index`` of a tree of ``size`` leaves.

    Useful when the caller wants to look the root up rather than compare it.
    Requires ``0 <= index < size``, a 32-byte ``leaf_hash``, and exactly as many
    32-byte proof hashes as the RFC 6962 audit path of ``index`` has; anything
    else raises :class:`ProofError`.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _require_hash(leaf_hash, "leaf hash")
    inner, border = _decompose_inclusion_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, want {inner + border}")
    _require_proof_hashes(proof)
    seed = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(seed, proof[inner:])


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` places ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    Same preconditions as :func:`root_from_inclusion_proof`. Raises
    :class:`RootMismatchError` when the proof is well formed but leads elsewhere.
    """
    _require_match(root, root_from_inclusion_proof(leaf_hash, index, size, proof))


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    Requires ``0 < size1 <= size2``. A proof *from* the empty tree is rejected,
    even towards another empty tree: every tree extends it, so such a "proof"
    proves nothing and accepting it would only hide a caller's mistake
    (the vectors demand this). Equal sizes need an empty proof and equal roots.
    Otherwise the proof must be non-empty, of the exact RFC 6962 length, made of
    32-byte hashes, and reproduce both roots.
    """
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 <= 0:
        raise ProofError("consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("size1 == size2, but the proof is not empty")
        _require_match(root2, root1)
        return
    if not proof:
        raise ProofError("empty consistency proof between different sizes")
    _require_proof_hashes(proof)

    inner, border = _decompose_inclusion_proof(size1 - 1, size2)
    # size1 - 1 and size2 - 1 share the path above the lowest set bit of size1,
    # so the proof starts at that level, from the perfect subtree ending at size1.
    shift = _trailing_zeros(size1)
    inner -= shift
    if size1 == 1 << shift:
        # The old tree *is* that perfect subtree: its root seeds both chains.
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes, want {start + inner + border}"
        )
    path = proof[start:]
    mask = (size1 - 1) >> shift

    computed1 = _chain_border_right(_chain_inner_right(seed, path[:inner], mask), path[inner:])
    _require_match(root1, computed1)
    computed2 = _chain_border_right(_chain_inner(seed, path[:inner], mask), path[inner:])
    _require_match(root2, computed2)


def _require_hash(value: bytes, what: str) -> None:
    """Reject a hash input of the wrong size before it is fed to SHA-256."""
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, want {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes]) -> None:
    """Reject a proof containing a hash of the wrong size."""
    for position, value in enumerate(proof):
        _require_hash(value, f"proof hash {position}")


def _require_match(expected: bytes, computed: bytes) -> None:
    """Turn a root comparison into the project's exception contract."""
    if computed != expected:
        raise RootMismatchError(expected, computed)


def _trailing_zeros(value: int) -> int:
    """Count the trailing zero bits of a positive integer."""
    return (value & -value).bit_length() - 1


def _decompose_inclusion_proof(index: int, size: int) -> tuple[int, int]:
    """Split the audit path of ``index`` at the level where it joins the path of ``size - 1``.

    Returns ``(inner, border)``: below the split, sibling sides follow the bits
    of ``index``; above it the path runs along the right border, where only
    the levels at which ``index`` has a 1 bit contribute a (left) sibling.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash ``seed`` up the levels below the split, taking sides from the bits of ``index``."""
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = hash_children(sibling, seed)
        else:
            seed = hash_children(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like :func:`_chain_inner`, but keep only left siblings.

    Right siblings lie beyond the old tree's edge, so skipping them yields the
    hash of the same subtree as it stood in the old tree.
    """
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = hash_children(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash ``seed`` up the right border, where every sibling is on the left."""
    for sibling in proof:
        seed = hash_children(sibling, seed)
    return seed
