"""Verifier error contract: which failures are malformed input and which are a wrong root."""

from __future__ import annotations

import pytest

from ledger.errors import ProofError, RootMismatchError
from ledger.merkle import (
    CompactRange,
    MemoryNodes,
    ProofBuilder,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [hash_leaf(bytes([i])) for i in range(6)]


def _builder() -> ProofBuilder:
    tree = CompactRange()
    nodes = MemoryNodes()
    for leaf in LEAVES:
        for node in tree.append(leaf):
            nodes.put(*node)
    return ProofBuilder(nodes)


def _resized(value: bytes, size: int) -> bytes:
    return (value * 2)[:size]


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_hash_inputs_of_the_wrong_size_are_malformed_not_mismatched(size: int) -> None:
    builder = _builder()
    proof = builder.inclusion_proof(2, 6)
    root = builder.root(6)
    with pytest.raises(ProofError) as leaf_error:
        verify_inclusion(_resized(LEAVES[2], size), 2, 6, proof, root)
    bad_proof = [proof[0], _resized(proof[1], size), *proof[2:]]
    with pytest.raises(ProofError) as proof_error:
        verify_inclusion(LEAVES[2], 2, 6, bad_proof, root)
    consistency = builder.consistency_proof(3, 6)
    bad_consistency = [*consistency[:-1], _resized(consistency[-1], size)]
    with pytest.raises(ProofError) as consistency_error:
        verify_consistency(3, 6, builder.root(3), root, bad_consistency)
    for error in (leaf_error, proof_error, consistency_error):
        assert not isinstance(error.value, RootMismatchError)


def test_a_root_of_the_wrong_size_is_just_a_mismatch() -> None:
    builder = _builder()
    root = builder.root(6)
    with pytest.raises(RootMismatchError) as error:
        verify_inclusion(LEAVES[2], 2, 6, builder.inclusion_proof(2, 6), root[:-1])
    assert (error.value.expected, error.value.computed) == (root[:-1], root)


def test_consistency_mismatch_names_the_root_that_failed() -> None:
    builder = _builder()
    root3, root6 = builder.root(3), builder.root(6)
    proof = builder.consistency_proof(3, 6)
    wrong = hash_leaf(b"wrong")
    with pytest.raises(RootMismatchError) as old:
        verify_consistency(3, 6, wrong, root6, proof)
    assert (old.value.expected, old.value.computed) == (wrong, root3)
    with pytest.raises(RootMismatchError) as new:
        verify_consistency(3, 6, root3, wrong, proof)
    assert (new.value.expected, new.value.computed) == (wrong, root6)


def test_a_negative_index_is_refused_even_where_the_bit_arithmetic_would_fit() -> None:
    # In Python's unbounded ints, index -1 reads as "all ones": for size 2 it
    # asks for a three-hash, all-left-sibling chain, which is exactly the path
    # of the last leaf of an 8-leaf tree. Only the range check stops it.
    tree = CompactRange()
    nodes = MemoryNodes()
    for leaf in [hash_leaf(bytes([i])) for i in range(8)]:
        for node in tree.append(leaf):
            nodes.put(*node)
    builder = ProofBuilder(nodes)
    last = nodes.node(0, 7)
    proof = builder.inclusion_proof(7, 8)
    verify_inclusion(last, 7, 8, proof, tree.root())
    with pytest.raises(ProofError) as error:
        verify_inclusion(last, -1, 2, proof, tree.root())
    assert not isinstance(error.value, RootMismatchError)
