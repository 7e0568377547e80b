"""Proof building reads O(log n) stored nodes, never the whole log.

Bounds, for a tree of n leaves and d = ceil(log2 n):

- root(n) reads exactly popcount(n) <= d + 1 nodes: one per perfect piece.
- inclusion_proof reads at most max(d, 2d - 2). The walk from the root emits one
  sibling per level, d levels at most. Every sibling is one stored node except
  possibly one: the right sibling emitted at the first step left while the
  range still ends at n. If that step splits a range at k = 2^j, that sibling
  has fewer than 2^j leaves, so at most j pieces; t steps came before it and
  at most j come after it, with t + 1 + j <= d. Total <= t + 2j <= d - 1 + j
  <= 2d - 2 (as j <= d - 1); with no such sibling it is one read per level, <= d.
- consistency_proof reads at most 2d - 1: the same walk, plus one read for the
  seed subtree SUBPROOF emits at the bottom.

Both bounds are attained at n = 2^d - 1 (for consistency once d >= 3, as the
seed read needs a step right below the longest edge), which the exhaustive
test checks: they are tight, not just safe.
"""

from __future__ import annotations

from hashlib import sha256

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import CompactRange, ProofBuilder

BIG = 1 << 20


class SyntheticNodes:
    """Answers for every complete node of an n-leaf tree without storing any, and counts reads.

    The hashes are fakes (the builder never checks them against each other),
    which lets a 2^20-leaf tree cost nothing to set up. Asking for a node that
    is not complete in this tree fails the test: the builder must never need it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.reads = 0

    def node(self, level: int, index: int) -> bytes:
        assert level >= 0 and index >= 0 and (index + 1) << level <= self.size, (level, index)
        self.reads += 1
        return sha256(f"{level}/{index}".encode()).digest()

    def count(self) -> int:
        """Return the reads since the last call, and start counting afresh."""
        reads, self.reads = self.reads, 0
        return reads


def _depth(n: int) -> int:
    """ceil(log2 n) for n >= 1."""
    return (n - 1).bit_length()


def _inclusion_bound(n: int) -> int:
    return max(_depth(n), 2 * _depth(n) - 2)


def _consistency_bound(n: int) -> int:
    return max(0, 2 * _depth(n) - 1)


def test_bounds_hold_and_are_attained_for_every_small_tree() -> None:
    for n in range(1, 130):
        nodes = SyntheticNodes(n)
        builder = ProofBuilder(nodes)
        builder.root(n)
        assert nodes.count() == n.bit_count()
        worst_inclusion = worst_consistency = 0
        for index in range(n):
            builder.inclusion_proof(index, n)
            worst_inclusion = max(worst_inclusion, nodes.count())
        for size1 in range(1, n + 1):
            builder.consistency_proof(size1, n)
            worst_consistency = max(worst_consistency, nodes.count())
        assert worst_inclusion <= _inclusion_bound(n), n
        assert worst_consistency <= _consistency_bound(n), n
        if (n + 1).bit_count() == 1:  # n = 2^d - 1: the bounds are reached
            assert worst_inclusion == _inclusion_bound(n), n
            if n >= 7:
                assert worst_consistency == _consistency_bound(n), n


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, BIG))
def test_reads_are_logarithmic_up_to_a_million_leaves(data: st.DataObject, n: int) -> None:
    nodes = SyntheticNodes(n)
    builder = ProofBuilder(nodes, tree_size=n)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(1, size), label="size1")

    builder.root(size)
    assert nodes.count() == size.bit_count()
    builder.inclusion_proof(index, size)
    assert nodes.count() <= _inclusion_bound(size)
    builder.consistency_proof(size1, size)
    assert nodes.count() <= _consistency_bound(size)
    CompactRange.from_reader(nodes, size)
    assert nodes.count() == size.bit_count()


def test_worst_case_at_a_million_leaves() -> None:
    n = BIG - 1  # 2^20 - 1: twenty levels, the right edge has nineteen pieces
    nodes = SyntheticNodes(n)
    builder = ProofBuilder(nodes)
    builder.inclusion_proof(0, n)
    assert nodes.count() == 2 * 20 - 2
    builder.consistency_proof(BIG // 2 - 1, n)
    assert nodes.count() == 2 * 20 - 1
