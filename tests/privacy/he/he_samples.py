"""Helpers for the HE tests: a primality check for the plaintext moduli and a ciphertext of a foreign context."""

from __future__ import annotations

import os

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
    settings.SetMultiplicativeDepth(2)
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
