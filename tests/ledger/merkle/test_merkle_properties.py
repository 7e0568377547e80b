"""Random trees checked against the naive RFC 6962 reference in merkle_reference.py."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from merkle_reference import mth, path, path_shape, proof, proof_shape

from ledger.errors import ProofError, RootMismatchError
from ledger.merkle import (
    CompactRange,
    MemoryNodes,
    ProofBuilder,
    hash_leaf,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
SETTINGS = settings(max_examples=150, deadline=None)


def _build(entries: list[bytes]) -> tuple[CompactRange, MemoryNodes]:
    """Append every entry, persisting the completed nodes as the ledger does."""
    tree = CompactRange()
    nodes = MemoryNodes()
    for entry in entries:
        for node in tree.append(hash_leaf(entry)):
            nodes.put(*node)
    return tree, nodes


@st.composite
def leaf_inputs(draw: st.DrawFn) -> list[bytes]:
    """Random leaf inputs of 0-12 bytes, duplicates allowed.

    Drawn from a seeded generator because Hypothesis keeps lists short, while
    trees of a few hundred leaves are needed to reach several levels.
    """
    n = draw(st.integers(0, MAX_LEAVES), label="leaves")
    rng = random.Random(draw(st.integers(0, 2**64), label="seed"))
    return [rng.randbytes(rng.randrange(13)) for _ in range(n)]


@st.composite
def distinct_leaf_inputs(draw: st.DrawFn) -> list[bytes]:
    """Random distinct leaf inputs.

    Distinct, because with two equal leaves a proof for one is also a proof
    for the other, and the tamper tests below rightly could not tell them apart.
    """
    n = draw(st.integers(1, MAX_LEAVES), label="leaves")
    salt = draw(st.binary(max_size=16), label="salt")
    return [salt + i.to_bytes(2, "big") for i in range(n)]


def _flip(hashes: list[bytes], position: int, bit: int) -> list[bytes]:
    tampered = list(hashes)
    value = bytearray(tampered[position])
    value[bit // 8] ^= 1 << (bit % 8)
    tampered[position] = bytes(value)
    return tampered


def _passes(verify: Callable[..., None], *args: object) -> bool:
    try:
        verify(*args)
    except ProofError:
        return False
    return True


def _nearby(value: int) -> set[int]:
    """Tampered values: small offsets, the vectors' XOR 2, and doubling/halving."""
    return {value + delta for delta in range(-3, 4)} | {value ^ 2, value * 2, value // 2}


@SETTINGS
@given(leaf_inputs())
def test_every_prefix_root_matches_reference(entries: list[bytes]) -> None:
    tree = CompactRange()
    nodes = MemoryNodes()
    builder = ProofBuilder(nodes)
    assert tree.root() == mth([])
    for size in range(1, len(entries) + 1):
        completed = tree.append(hash_leaf(entries[size - 1]))
        for level, index, node in completed:
            assert node == mth(entries[index << level : (index + 1) << level])
            nodes.put(level, index, node)
        assert [(level, index) for level, index, _ in completed] == [
            (level, (size - 1) >> level) for level in range(len(completed))
        ]
        expected = mth(entries[:size])
        assert tree.size == size
        assert tree.root() == expected
        assert builder.root(size) == expected
    assert builder.root(0) == mth([])


@SETTINGS
@given(leaf_inputs())
def test_compact_range_is_the_perfect_decomposition(entries: list[bytes]) -> None:
    tree, nodes = _build(entries)
    expected = []
    begin = 0
    for level in reversed(range(len(entries).bit_length())):
        if len(entries) >> level & 1:
            expected.append(mth(entries[begin : begin + (1 << level)]))
            begin += 1 << level
    assert list(tree.hashes) == expected

    loaded = CompactRange.from_reader(nodes, len(entries))
    resumed = CompactRange(len(entries), tree.hashes)
    for other in (loaded, resumed):
        assert (other.size, other.hashes, other.root()) == (tree.size, tree.hashes, tree.root())
    extra = hash_leaf(b"one more")
    assert loaded.append(extra) == resumed.append(extra) == tree.append(extra)
    assert loaded.root() == resumed.root() == tree.root() == mth([*entries, b"one more"])


@SETTINGS
@given(st.data(), distinct_leaf_inputs())
def test_inclusion_proof_matches_reference_and_resists_tampering(
    data: st.DataObject, entries: list[bytes]
) -> None:
    _, nodes = _build(entries)
    size = data.draw(st.integers(1, len(entries)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf, root = hash_leaf(entries[index]), mth(entries[:size])

    built = ProofBuilder(nodes, tree_size=len(entries)).inclusion_proof(index, size)
    assert built == path(index, entries[:size])
    verify_inclusion(leaf, index, size, built, root)
    assert root_from_inclusion_proof(leaf, index, size, built) == root

    bit = data.draw(st.integers(0, 255), label="bit")
    for position in range(len(built)):
        with pytest.raises(RootMismatchError):
            verify_inclusion(leaf, index, size, _flip(built, position, bit), root)

    # A verifier sees only the proof, so a tampered (index, size) passes exactly
    # when the reference tree puts the siblings on the same sides.
    shape = path_shape(index, size)
    for other_index in _nearby(index):
        for other_size in _nearby(size):
            if (other_index, other_size) == (index, size):
                continue
            expected = path_shape(other_index, other_size) == shape
            passes = _passes(verify_inclusion, leaf, other_index, other_size, built, root)
            assert passes == expected, (other_index, other_size)


@SETTINGS
@given(st.data(), distinct_leaf_inputs())
def test_consistency_proof_matches_reference_and_resists_tampering(
    data: st.DataObject, entries: list[bytes]
) -> None:
    _, nodes = _build(entries)
    size2 = data.draw(st.integers(1, len(entries)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    root1, root2 = mth(entries[:size1]), mth(entries[:size2])

    built = ProofBuilder(nodes, tree_size=len(entries)).consistency_proof(size1, size2)
    assert built == proof(size1, entries[:size2])
    verify_consistency(size1, size2, root1, root2, built)
    if size1 == size2:
        assert built == []
        return

    bit = data.draw(st.integers(0, 255), label="bit")
    for position in range(len(built)):
        with pytest.raises(RootMismatchError):
            verify_consistency(size1, size2, root1, root2, _flip(built, position, bit))
    with pytest.raises(RootMismatchError):
        verify_consistency(size1, size2, root2, root1, built)

    shape = proof_shape(size1, size2)
    for other1 in _nearby(size1):
        for other2 in _nearby(size2):
            if (other1, other2) == (size1, size2):
                continue
            expected = proof_shape(other1, other2) == shape
            passes = _passes(verify_consistency, other1, other2, root1, root2, built)
            assert passes == expected, (other1, other2)
