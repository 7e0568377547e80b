"""CompactRange, ProofBuilder and MemoryNodes: contracts at the edges."""

from __future__ import annotations

import pytest

from ledger.errors import ProofError, StorageError
from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodes,
    ProofBuilder,
    hash_children,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [hash_leaf(bytes([i])) for i in range(10)]


def _stored(leaves: list[bytes]) -> tuple[CompactRange, MemoryNodes]:
    tree = CompactRange()
    nodes = MemoryNodes()
    for leaf in leaves:
        for node in tree.append(leaf):
            nodes.put(*node)
    return tree, nodes


def test_empty_tree() -> None:
    tree = CompactRange()
    assert (tree.size, tree.hashes, tree.root()) == (0, (), EMPTY_ROOT)
    assert ProofBuilder(MemoryNodes()).root(0) == EMPTY_ROOT
    assert CompactRange.from_reader(MemoryNodes(), 0).root() == EMPTY_ROOT


def test_append_reports_each_completed_node() -> None:
    tree = CompactRange()
    a, b, c, d = LEAVES[:4]
    ab, cd = hash_children(a, b), hash_children(c, d)
    assert tree.append(a) == [(0, 0, a)]
    assert tree.append(b) == [(0, 1, b), (1, 0, ab)]
    assert tree.append(c) == [(0, 2, c)]
    assert tree.hashes == (ab, c)
    assert tree.append(d) == [(0, 3, d), (1, 1, cd), (2, 0, hash_children(ab, cd))]
    assert tree.hashes == (hash_children(ab, cd),)


def test_appending_to_a_resumed_range_is_like_never_stopping() -> None:
    full, _ = _stored(LEAVES)
    half, _ = _stored(LEAVES[:5])
    resumed = CompactRange(half.size, half.hashes)
    for leaf in LEAVES[5:]:
        resumed.append(leaf)
    assert (resumed.size, resumed.hashes, resumed.root()) == (full.size, full.hashes, full.root())


def test_hashes_cannot_be_changed_from_outside() -> None:
    tree, _ = _stored(LEAVES[:3])
    edge = list(tree.hashes)
    resumed = CompactRange(3, edge)
    edge.clear()
    resumed.append(LEAVES[3])
    assert tree.hashes == (hash_children(LEAVES[0], LEAVES[1]), LEAVES[2])
    assert isinstance(tree.hashes, tuple)


@pytest.mark.parametrize(
    ("size", "hashes"),
    [
        (-1, []),
        (1, []),  # one piece missing
        (3, [LEAVES[0]]),  # 3 = 2 + 1 needs two pieces
        (2, [LEAVES[0], LEAVES[1]]),  # 2 is one perfect piece
        (1, [b"short"]),
    ],
)
def test_compact_range_rejects_an_edge_that_does_not_fit(size: int, hashes: list[bytes]) -> None:
    with pytest.raises(ProofError):
        CompactRange(size, hashes)


@pytest.mark.parametrize("leaf", [b"", b"x" * 31, b"x" * 33])
def test_append_rejects_a_leaf_hash_of_the_wrong_size(leaf: bytes) -> None:
    tree = CompactRange()
    with pytest.raises(ProofError):
        tree.append(leaf)
    assert tree.size == 0


def test_memory_nodes_report_a_missing_node_as_a_storage_error() -> None:
    _, nodes = _stored(LEAVES[:4])
    assert nodes.node(2, 0) == ProofBuilder(nodes).root(4)
    with pytest.raises(StorageError):
        nodes.node(0, 4)
    with pytest.raises(StorageError):
        ProofBuilder(nodes).root(5)  # beyond the store, with no tree_size to say so
    with pytest.raises(StorageError):
        CompactRange.from_reader(nodes, 6)


def test_builder_and_verifier_agree_on_what_a_valid_request_is() -> None:
    # For every (index, size) and (size1, size2) around a small tree, the
    # builder refuses exactly what the verifier would refuse, and what it
    # builds verifies. Sizes beyond the stored tree are refused by tree_size.
    n = len(LEAVES)
    _, nodes = _stored(LEAVES)
    builder = ProofBuilder(nodes, tree_size=n)
    roots = {size: builder.root(size) for size in range(n + 1)}
    for a in range(-2, n + 3):
        for b in range(-2, n + 3):
            valid_inclusion = 0 <= a < b <= n
            if valid_inclusion:
                verify_inclusion(LEAVES[a], a, b, builder.inclusion_proof(a, b), roots[b])
            else:
                with pytest.raises(ProofError):
                    builder.inclusion_proof(a, b)
                with pytest.raises(ProofError):
                    verify_inclusion(LEAVES[0], a, b, [], roots.get(b, EMPTY_ROOT))
            valid_consistency = 0 < a <= b <= n
            if valid_consistency:
                proof = builder.consistency_proof(a, b)
                verify_consistency(a, b, roots[a], roots[b], proof)
            else:
                with pytest.raises(ProofError):
                    builder.consistency_proof(a, b)
                if b <= n:  # beyond n only the builder knows the request is bad
                    root1, root2 = roots.get(a, EMPTY_ROOT), roots.get(b, EMPTY_ROOT)
                    with pytest.raises(ProofError):
                        verify_consistency(a, b, root1, root2, [])


def test_builder_refuses_sizes_beyond_tree_size() -> None:
    _, nodes = _stored(LEAVES)
    builder = ProofBuilder(nodes, tree_size=9)
    builder.root(9)
    with pytest.raises(ProofError):
        builder.root(10)
    # The one request a missing node would not catch: leaf 9's audit path
    # never reads leaf 9 itself.
    with pytest.raises(ProofError):
        builder.inclusion_proof(9, 10)
    with pytest.raises(ProofError):
        builder.consistency_proof(1, 10)
