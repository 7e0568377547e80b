"""The published transparency-dev/merkle vectors, run against our verifiers and builders."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import ProofError
from ledger.merkle import (
    CompactRange,
    MemoryNodes,
    ProofBuilder,
    hash_leaf,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "merkle"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))
TREE = json.loads((VECTORS / "tree.json").read_text())
LEAVES = [bytes.fromhex(h) for h in TREE["leaf_inputs_hex"]]
ROOTS = [bytes.fromhex(h) for h in TREE["root_by_size_hex"]]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(VECTORS)) for p in paths]


def _load(path: Path) -> dict[str, Any]:
    """Decode a vector: base64 hash fields to bytes, a null proof to []."""
    raw = json.loads(path.read_text())
    decoded = dict(raw)
    for field in ("root", "leafHash", "root1", "root2"):
        if field in raw:
            decoded[field] = base64.b64decode(raw[field])
    decoded["proof"] = [base64.b64decode(h) for h in raw["proof"] or []]
    return decoded


def _published_tree() -> ProofBuilder:
    """A builder over the eight tree.json leaves, stored the way the ledger stores them."""
    nodes = MemoryNodes()
    tree = CompactRange()
    for leaf in LEAVES:
        for node in tree.append(hash_leaf(leaf)):
            nodes.put(*node)
    return ProofBuilder(nodes, tree_size=len(LEAVES))


def test_every_vector_folder_was_found() -> None:
    # Guards the parametrized tests below against silently collecting nothing
    # (98 files of each kind were copied).
    assert len(INCLUSION) > 50 and len(CONSISTENCY) > 50
    assert len(TREE_INCLUSION) == len(TREE_CONSISTENCY) == 5
    assert len(LEAVES) == 8 and len(ROOTS) == 9


@pytest.mark.parametrize("path", INCLUSION, ids=_ids(INCLUSION))
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(v["leafHash"], v["leafIdx"], v["treeSize"], v["proof"], v["root"])
    else:
        verify_inclusion(v["leafHash"], v["leafIdx"], v["treeSize"], v["proof"], v["root"])
        computed = root_from_inclusion_proof(v["leafHash"], v["leafIdx"], v["treeSize"], v["proof"])
        assert computed == v["root"]


@pytest.mark.parametrize("path", CONSISTENCY, ids=_ids(CONSISTENCY))
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(v["size1"], v["size2"], v["root1"], v["root2"], v["proof"])
    else:
        verify_consistency(v["size1"], v["size2"], v["root1"], v["root2"], v["proof"])


# The numbered happy paths are proofs over the tree.json leaves, so our builder
# must reproduce them byte for byte (the "additional"/"single-entry" ones are not).
TREE_INCLUSION = sorted(VECTORS.glob("inclusion/[0-9]*/happy-path.json"))
TREE_CONSISTENCY = sorted(VECTORS.glob("consistency/[0-9]*/happy-path.json"))


@pytest.mark.parametrize("path", TREE_INCLUSION, ids=_ids(TREE_INCLUSION))
def test_builder_reproduces_published_inclusion_proof(path: Path) -> None:
    v = _load(path)
    assert v["root"] == ROOTS[v["treeSize"]]
    assert v["leafHash"] == hash_leaf(LEAVES[v["leafIdx"]])
    assert _published_tree().inclusion_proof(v["leafIdx"], v["treeSize"]) == v["proof"]


@pytest.mark.parametrize("path", TREE_CONSISTENCY, ids=_ids(TREE_CONSISTENCY))
def test_builder_reproduces_published_consistency_proof(path: Path) -> None:
    v = _load(path)
    assert (v["root1"], v["root2"]) == (ROOTS[v["size1"]], ROOTS[v["size2"]])
    assert _published_tree().consistency_proof(v["size1"], v["size2"]) == v["proof"]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_published_roots(size: int) -> None:
    tree = CompactRange()
    nodes = MemoryNodes()
    for leaf in LEAVES[:size]:
        for node in tree.append(hash_leaf(leaf)):
            nodes.put(*node)
    assert tree.root() == ROOTS[size]
    assert ProofBuilder(nodes).root(size) == ROOTS[size]
    assert _published_tree().root(size) == ROOTS[size]
