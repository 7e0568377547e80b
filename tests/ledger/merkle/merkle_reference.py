"""A deliberately naive RFC 6962 §2.1 implementation to test ``ledger.merkle`` against.

MTH, PATH and PROOF/SUBPROOF are transcribed from the RFC text, recursing over
list slices and rehashing everything, and use hashlib directly rather than
``ledger.merkle.hasher``, so that a shared mistake is unlikely. Quadratic, and
only ever used on small trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256


def split_point(n: int) -> int:
    """The RFC's k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over the leaf inputs ``entries``."""
    n = len(entries)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return sha256(b"\x00" + entries[0]).digest()
    k = split_point(n)
    return sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:])).digest()


def path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf m, lowest sibling first."""
    n = len(entries)
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return path(m, entries[:k]) + [mth(entries[k:])]
    return path(m - k, entries[k:]) + [mth(entries[:k])]


def proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): the consistency proof from the first m leaves to all of them."""
    return _subproof(m, entries, True)


def _subproof(m: int, entries: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = split_point(n)
    if m <= k:
        return _subproof(m, entries[:k], b) + [mth(entries[k:])]
    return _subproof(m - k, entries[k:], False) + [mth(entries[:k])]


def path_shape(m: int, n: int) -> tuple[str, ...] | None:
    """Which side each sibling of PATH(m, D[n]) sits on, lowest first; None if m is not a leaf.

    A verifier sees only the proof hashes, never the tree, so two (index, size)
    pairs with the same shape are indistinguishable to it: a proof for one
    verifies as the other against the same root. The property tests use this
    to predict exactly which tampered parameters must still pass.
    """
    if not 0 <= m < n:
        return None
    return _path_shape(m, n)


def _path_shape(m: int, n: int) -> tuple[str, ...]:
    if n == 1:
        return ()
    k = split_point(n)
    if m < k:
        return _path_shape(m, k) + ("right",)
    return _path_shape(m - k, n - k) + ("left",)


def proof_shape(m: int, n: int) -> tuple[str, ...] | None:
    """The role of each hash of PROOF(m, D[n]), lowest first; None unless 0 < m < n.

    Roles are "right" and "left" siblings and "seed", the old subtree's own hash
    that SUBPROOF emits once b is false. Same purpose as :func:`path_shape`.
    """
    if not 0 < m < n:
        return None
    return _subproof_shape(m, n, True)


def _subproof_shape(m: int, n: int, b: bool) -> tuple[str, ...]:
    if m == n:
        return () if b else ("seed",)
    k = split_point(n)
    if m <= k:
        return _subproof_shape(m, k, b) + ("right",)
    return _subproof_shape(m - k, n - k, False) + ("left",)
