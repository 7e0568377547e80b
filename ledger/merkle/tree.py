"""The log's Merkle tree: appending leaves and serving proofs from stored nodes.

Only *perfect* subtrees are ever stored. Node ``(level, index)`` is the hash of
leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf
hashes. A perfect node never changes once complete, so the store is append-only,
while every other RFC 6962 subtree lies on the right edge of some tree size and
is cheap to recompute from at most ``log2(n) + 1`` perfect pieces.

- :class:`CompactRange` keeps the right edge in memory, so an append hashes
  once per interior node it completes and never reads the store.
- :class:`ProofBuilder` answers root, inclusion and consistency requests for
  any earlier size with O(log n) node reads; the tests count them.

Out-of-range arguments raise :class:`~ledger.errors.ProofError`, the same type
the verifiers raise, so a node can reject a bad proof request and a bad proof
through one ``except``. A node the reader lacks is the reader's problem and
surfaces as whatever the reader raises (:class:`MemoryNodes` raises
:class:`~ledger.errors.StorageError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ledger.errors import ProofError, StorageError
from ledger.merkle.hasher import EMPTY_ROOT, HASH_SIZE, hash_children

__all__ = ["CompactRange", "MemoryNodes", "NodeReader", "ProofBuilder"]


class NodeReader(Protocol):
    """Read access to stored perfect-subtree hashes."""

    def node(self, level: int, index: int) -> bytes:
        """Return the hash of leaves ``[index << level, (index + 1) << level)``.

        Raise the store's own error if that node was never written.
        """
        ...


class MemoryNodes:
    """A dict-backed :class:`NodeReader`, for tests and for trees that fit in memory."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}

    def put(self, level: int, index: int, hash_: bytes) -> None:
        """Store a node; ``put(*node)`` persists an element of :meth:`CompactRange.append`'s result."""
        self._nodes[level, index] = hash_

    def node(self, level: int, index: int) -> bytes:
        """Return a stored node, raising :class:`StorageError` when it was never put."""
        try:
            return self._nodes[level, index]
        except KeyError:
            raise StorageError(f"no Merkle node at level {level}, index {index}") from None


class CompactRange:
    """The right edge of a tree: the roots of the perfect subtrees its size decomposes into.

    For ``size = 2**a + 2**b + ...`` (``a > b > ...``) these are the roots of
    leaves ``[0, 2**a)``, ``[2**a, 2**a + 2**b)``, ... left to right, which is
    exactly what is needed to append and to compute the current root.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Resume from a known edge, e.g. one persisted next to a checkpoint.

        ``hashes`` must hold one 32-byte hash per set bit of ``size``, largest
        subtree first; a mismatch raises :class:`ProofError` rather than letting
        every later root be silently wrong.
        """
        if size < 0:
            raise ProofError(f"tree size {size} is negative")
        if len(hashes) != size.bit_count():
            raise ProofError(
                f"a tree of size {size} has {size.bit_count()} edge hashes, got {len(hashes)}"
            )
        for value in hashes:
            if len(value) != HASH_SIZE:
                raise ProofError(f"edge hash is {len(value)} bytes, want {HASH_SIZE}")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_reader(cls, reader: NodeReader, size: int) -> CompactRange:
        """Load the edge of the tree of ``size`` leaves with one read per set bit of ``size``."""
        if size < 0:
            raise ProofError(f"tree size {size} is negative")
        return cls(size, _read_range(reader, 0, size))

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The edge hashes, largest subtree first (a copy: the range stays private)."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf and return every perfect node it completes as ``(level, index, hash)``.

        The first element is always ``(0, old_size, leaf_hash)``; then one node
        per trailing 1 bit of the old size, as the new leaf merges with edge
        subtrees of equal size. Persisting all of them keeps the store able to
        answer :class:`ProofBuilder` for the new size.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ProofError(f"leaf hash is {len(leaf_hash)} bytes, want {HASH_SIZE}")
        index = self._size
        hashes = self._hashes
        completed = [(0, index, leaf_hash)]
        level = 0
        node = leaf_hash
        while index & 1:
            node = hash_children(hashes.pop(), node)
            index >>= 1
            level += 1
            completed.append((level, index, node))
        hashes.append(node)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """Return the RFC 6962 root of the leaves appended so far."""
        return _fold_right(self._hashes)


class ProofBuilder:
    """Computes roots and proofs for any tree size from stored perfect nodes.

    RFC 6962 §2.1 defines the proofs recursively over subtrees ``D[begin:end]``.
    A subtree is either perfect (one stored node) or sits on the right edge of
    the requested tree, where it decomposes into at most ``log2(n) + 1`` perfect
    nodes. Walking the recursion top-down, each step emits one sibling subtree
    and descends into the other. Only the right sibling emitted at the first
    step left can be non-perfect (before it, the walk only went right, so that
    sibling still ends at the tree size); after it, the walk is inside a perfect
    subtree. Hence O(log n) reads (bounds proved in the tests) and no rehashing.
    """

    __slots__ = ("_reader", "_tree_size")

    def __init__(self, reader: NodeReader, *, tree_size: int | None = None) -> None:
        """Serve proofs from ``reader``.

        ``tree_size``, when given, is the number of leaves the reader holds, and
        larger requested sizes raise :class:`ProofError`. Without it, a size
        beyond the stored tree usually trips over a missing node, but not always:
        the audit path of the last leaf never reads that leaf, so
        ``inclusion_proof(n, n + 1)`` on an ``n``-leaf store would "succeed".
        """
        self._reader = reader
        self._tree_size = tree_size

    def root(self, size: int) -> bytes:
        """Return MTH(D[0:size]), reading one node per set bit of ``size``."""
        self._require_size(size)
        return _fold_right(_read_range(self._reader, 0, size))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return PATH(index, D[0:size]) from RFC 6962 §2.1.1, lowest sibling first.

        Requires ``0 <= index < size``, the same precondition as
        :func:`~ledger.merkle.verify.verify_inclusion`.
        """
        self._require_size(size)
        if not 0 <= index < size:
            raise ProofError(f"leaf index {index} is outside a tree of size {size}")
        proof: list[bytes] = []
        begin, end = 0, size
        while end - begin > 1:
            middle = begin + _split_point(end - begin)
            if index < middle:
                proof.append(self._subtree_hash(middle, end))
                end = middle
            else:
                proof.append(self._subtree_hash(begin, middle))
                begin = middle
        proof.reverse()
        return proof

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Return PROOF(size1, D[0:size2]) from RFC 6962 §2.1.2, lowest level first.

        Requires ``0 < size1 <= size2``, the same precondition as
        :func:`~ledger.merkle.verify.verify_consistency`, so every proof built
        here is one the verifier can accept; equal sizes give the empty proof.
        """
        self._require_size(size2)
        if size1 > size2:
            raise ProofError(f"size1 ({size1}) > size2 ({size2})")
        if size1 <= 0:
            raise ProofError("consistency proof from the empty tree is meaningless")
        proof: list[bytes] = []
        begin, end = 0, size2
        while end != size1:  # stops at RFC 6962's m == n, in absolute positions
            middle = begin + _split_point(end - begin)
            if size1 <= middle:
                proof.append(self._subtree_hash(middle, end))
                end = middle
            else:
                proof.append(self._subtree_hash(begin, middle))
                begin = middle
        # RFC 6962's flag b turns false at the first step right. Until then the
        # walk ends at D[0:size1], the old tree, whose root the verifier holds.
        if begin:
            proof.append(self._subtree_hash(begin, end))
        proof.reverse()
        return proof

    def _require_size(self, size: int) -> None:
        """Reject sizes the tree cannot have (negative, or beyond the stored tree)."""
        if size < 0:
            raise ProofError(f"tree size {size} is negative")
        if self._tree_size is not None and size > self._tree_size:
            raise ProofError(f"tree size {size} exceeds the stored tree of {self._tree_size}")

    def _subtree_hash(self, begin: int, end: int) -> bytes:
        """Return MTH(D[begin:end]) for an RFC 6962 subtree (``begin`` aligned to its size)."""
        return _fold_right(_read_range(self._reader, begin, end))


def _split_point(size: int) -> int:
    """Return RFC 6962's k: the largest power of two strictly less than ``size`` (>= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _read_range(reader: NodeReader, begin: int, end: int) -> list[bytes]:
    """Read the perfect nodes that tile ``[begin, end)``, largest first.

    The tiling follows the binary decomposition of ``end - begin``, which is
    how RFC 6962 splits a subtree whose left part is perfect; ``begin`` must be
    a multiple of the largest piece, as it is for every RFC 6962 subtree.
    """
    hashes: list[bytes] = []
    remaining = end - begin
    while remaining:
        level = remaining.bit_length() - 1
        hashes.append(reader.node(level, begin >> level))
        begin += 1 << level
        remaining -= 1 << level
    return hashes


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine edge hashes (largest first) into a root: the smaller subtrees nest on the right."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = hash_children(left, root)
    return root
