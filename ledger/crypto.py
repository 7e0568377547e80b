"""The signature and hash suite: Ed25519 (RFC 8032, via libsodium) and SHA-256.

Every signature is over a domain-separation context followed by the message,
so a signature made for one purpose (a transaction) can never be replayed as
another (a checkpoint, an API request). Contexts are listed here and in
docs/PROTOCOL.md; adding a suite (SM2/SM3) means adding a module like this one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger.errors import SignatureError

__all__ = [
    "CONTEXT_CHECKPOINT",
    "CONTEXT_REQUEST",
    "CONTEXT_TRANSACTION",
    "KeyPair",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "sha256",
    "sign",
    "verify",
]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

CONTEXT_TRANSACTION = b"quancheng-ledger/v1/transaction\x00"
CONTEXT_CHECKPOINT = b"quancheng-ledger/v1/checkpoint\x00"
CONTEXT_REQUEST = b"quancheng-ledger/v1/request\x00"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair; ``seed`` is the 32-byte secret and is never printed."""

    seed: bytes
    public_key: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_seed(secrets.token_bytes(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(seed=seed, public_key=bytes(SigningKey(seed).verify_key))

    def __repr__(self) -> str:
        return f"KeyPair(public_key={self.public_key.hex()})"


def sign(key: KeyPair, context: bytes, message: bytes) -> bytes:
    """Sign ``context || message`` and return the 64-byte signature."""
    return SigningKey(key.seed).sign(context + message).signature


def verify(public_key: bytes, context: bytes, message: bytes, signature: bytes) -> None:
    """Return None if ``signature`` is valid for ``context || message``, else raise SignatureError."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        raise SignatureError("malformed public key or signature length")
    try:
        VerifyKey(public_key).verify(context + message, signature)
    except (BadSignatureError, ValueError, TypeError):
        raise SignatureError(f"signature does not verify under key {public_key.hex()}") from None
