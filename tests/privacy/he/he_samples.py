"""Helpers for the HE tests: a primality check, a ciphertext of a foreign context, and checks that masked slots are uniform."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import openfhe

PARTIES = ("custodian", "regulator", "provider")  # the joint key of the session fixture, in ceremony order


def is_prime(n: int) -> bool:
    """Deterministic Miller–Rabin for n < 3.3·10^24 (the first 13 prime bases)."""
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    if n < 2 or any(n % p == 0 for p in bases):
        return n in bases
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def foreign_ciphertext() -> bytes:
    """A ciphertext with the scoring set's ring dimension and depth but another plaintext modulus."""
    settings = openfhe.CCParamsBFVRNS()
    settings.SetPlaintextModulus(8796096233473)  # the next prime ≡ 1 mod 65536 after the scoring set's t
    settings.SetMultiplicativeDepth(1)
    settings.SetRingDim(8192)
    settings.SetKeySwitchTechnique(openfhe.BV)
    cc = openfhe.GenCryptoContext(settings)
    cc.Enable(openfhe.PKE)
    keys = cc.KeyGen()
    return openfhe.Serialize(cc.Encrypt(keys.publicKey, cc.MakePackedPlaintext([1])), openfhe.BINARY)


def resident_bytes() -> int:
    """The process's current resident set size."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


CHI2_15_CRITICAL = 60.0  # Pearson's χ² with 15 degrees of freedom: P(χ² > 60) = 2.5·10^-7


def chi_square(bins: np.ndarray, other: np.ndarray | None = None) -> float:
    """χ² (15 degrees of freedom) that ``bins`` (integers 0–15) are uniform or, given ``other``, distributed like ``other``."""
    counts = np.bincount(np.asarray(bins, dtype=np.int64), minlength=16)[:16].astype(np.float64)
    if other is None:
        expected = np.full(16, counts.sum() / 16)
        return float(((counts - expected) ** 2 / expected).sum())
    table = np.stack([counts, np.bincount(np.asarray(other, dtype=np.int64), minlength=16)[:16].astype(np.float64)])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    return float(((table - expected) ** 2 / expected).sum())


def assert_reveals_only_the_total(
    decrypted: Sequence[Sequence[int]], raw: Sequence[Sequence[int]], total: int, t: int, absent: Sequence[int] = ()
) -> None:
    """The decrypted slot vectors of a released result show ``total`` and nothing else.

    ``decrypted[i]`` is the whole decrypted slot vector of a result whose unmasked
    slots were ``raw[i]`` (products, per-slot sums, zeros); different i may come from
    different inputs with the same total, or repeat one input. Each vector must sum
    to ``total`` mod t; no slot may hold its unmasked value, any unmasked value of
    any input, or any value in ``absent``; no two vectors may agree in any slot; the high and the low bits of the
    slots must be uniform; and the vectors of different inputs must be alike (χ²
    homogeneity of the first against each other).
    """
    residues = [np.array([int(value) % t for value in vector], dtype=object) for vector in decrypted]
    unmasked = {int(value) % t for vector in [*raw, absent] for value in vector}
    high = [np.array([value * 16 // t for value in vector], dtype=np.int64) for vector in residues]
    low = [np.array([value % 16 for value in vector], dtype=np.int64) for vector in residues]
    assert len(decrypted) == len(raw) >= 2
    for index, (vector, plain) in enumerate(zip(residues, raw)):
        assert sum(vector) % t == total % t, index
        assert sum(int(a) == int(b) % t for a, b in zip(vector, plain)) == 0, index
        assert not unmasked & set(vector), index
        assert chi_square(high[index]) < CHI2_15_CRITICAL and chi_square(low[index]) < CHI2_15_CRITICAL, index
    for i in range(len(residues)):
        for j in range(i + 1, len(residues)):
            assert sum(int(a) == int(b) for a, b in zip(residues[i], residues[j])) == 0, (i, j)
    for index in range(1, len(residues)):
        assert chi_square(high[0], high[index]) < CHI2_15_CRITICAL, index
        assert chi_square(low[0], low[index]) < CHI2_15_CRITICAL, index
