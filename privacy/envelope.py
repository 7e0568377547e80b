"""Envelope encryption for record payloads, and sealed boxes for results.

Two recipes, both built so that callers never handle a nonce or a raw cipher:

* **Record payloads at rest** (:func:`seal_record` / :func:`open_record`). Each
  payload is encrypted with AES-256-GCM under a fresh random 32-byte data key
  and a fresh 12-byte nonce; the data key is then wrapped in a libsodium sealed
  box to the custodian node's X25519 *vault key*. The vault key is derived from
  the node's Ed25519 seed (:func:`vault_keypair`), so a client wraps to the node
  key it already sees on chain (:func:`x25519_public_from_ed25519`) and needs no
  second key distribution. The GCM associated data is :func:`record_aad`, which
  names the record, version, data type and subject: a vault that swaps a
  ciphertext between records or versions produces something that will not open.

* **Results to a person** (:func:`seal_to` / :func:`open_sealed`). A query
  result is sealed to the X25519 key of the consuming agency or the citizen
  (often an ephemeral key from :func:`generate_x25519`), so only they can read
  it, whatever path it takes.

Every failure to open — wrong key, a flipped bit in any field, the wrong
associated data — is one :class:`EnvelopeError` with one fixed message: telling
the caller *which* check failed helps an attacker more than an operator, and the
message must never carry key bytes or plaintext. Wrong argument *sizes* are
programming errors and raise :class:`ValueError` naming the argument.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl import bindings
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from ledger import codec
from ledger.errors import EncodingError
from ledger.fields import Bytes, check_map

__all__ = [
    "AAD_CONTEXT",
    "DATA_KEY_SIZE",
    "EnvelopeError",
    "KEY_SIZE",
    "MAX_PAYLOAD_SIZE",
    "NONCE_SIZE",
    "SealedRecord",
    "TAG_SIZE",
    "WRAPPED_KEY_SIZE",
    "generate_x25519",
    "open_record",
    "open_sealed",
    "record_aad",
    "seal_record",
    "seal_to",
    "vault_keypair",
    "x25519_public_from_ed25519",
]

KEY_SIZE = 32  # Ed25519 seeds and public keys, X25519 private and public keys
DATA_KEY_SIZE = 32  # AES-256
NONCE_SIZE = 12  # AES-GCM's native nonce size: no GHASH of the IV
TAG_SIZE = 16
_SEAL_OVERHEAD = 48  # sealed box: 32-byte ephemeral public key + 16-byte Poly1305 tag
WRAPPED_KEY_SIZE = DATA_KEY_SIZE + _SEAL_OVERHEAD
MAX_PAYLOAD_SIZE = 16 * 1024 * 1024  # one record payload; bounds what a decoder will accept

AAD_CONTEXT = "quancheng-ledger/v1/record-payload"

_OPAQUE = "cannot open sealed data: wrong key, altered bytes or wrong associated data"

_SEALED_RECORD_SPEC = {
    "nonce": Bytes(size=NONCE_SIZE),
    "ciphertext": Bytes(max_size=MAX_PAYLOAD_SIZE + TAG_SIZE),
    "wrapped_key": Bytes(size=WRAPPED_KEY_SIZE),
}


class EnvelopeError(Exception):
    """Raised when a sealed record or box cannot be opened: wrong key, tampered bytes, wrong AAD.

    One opaque message; never includes key material or plaintext.
    """


def _check_key(value: bytes, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != KEY_SIZE:
        raise ValueError(f"{name} must be {KEY_SIZE} bytes")
    return bytes(value)


# --- keys --------------------------------------------------------------------------------------


def vault_keypair(node_seed: bytes) -> tuple[bytes, bytes]:
    """Return (x25519_private_key, x25519_public_key) derived from a node's 32-byte Ed25519 seed.

    Derived, not generated, so the custodian's record-wrapping key is bound to its
    on-chain node key: rotating the node key rotates the vault key with it.
    """
    seed = _check_key(node_seed, "node_seed")
    ed_public, ed_secret = bindings.crypto_sign_seed_keypair(seed)
    return (
        bindings.crypto_sign_ed25519_sk_to_curve25519(ed_secret),
        bindings.crypto_sign_ed25519_pk_to_curve25519(ed_public),
    )


def x25519_public_from_ed25519(ed25519_public_key: bytes) -> bytes:
    """The X25519 key to wrap to, from the Ed25519 node key a client reads on chain."""
    public = _check_key(ed25519_public_key, "ed25519_public_key")
    try:
        return bindings.crypto_sign_ed25519_pk_to_curve25519(public)
    except CryptoError:  # libsodium refuses points not on the curve or of small order
        raise ValueError("ed25519_public_key is not a valid Ed25519 public key") from None


def generate_x25519() -> tuple[bytes, bytes]:
    """Return a fresh (private, public) X25519 pair, e.g. an ephemeral key to receive one result."""
    private = PrivateKey.generate()
    return bytes(private), bytes(private.public_key)


# --- sealed boxes ------------------------------------------------------------------------------


def seal_to(plaintext: bytes, recipient_public_key: bytes) -> bytes:
    """Encrypt ``plaintext`` so only the holder of the X25519 private key can read it (anonymous sender)."""
    public = _check_key(recipient_public_key, "recipient_public_key")
    return SealedBox(PublicKey(public)).encrypt(bytes(plaintext))


def open_sealed(ciphertext: bytes, recipient_private_key: bytes) -> bytes:
    """Return the plaintext of a box made by :func:`seal_to`; raise EnvelopeError on any failure."""
    private = _check_key(recipient_private_key, "recipient_private_key")
    try:
        return SealedBox(PrivateKey(private)).decrypt(bytes(ciphertext))
    except (CryptoError, TypeError, ValueError):  # malformed or forged: all one answer
        raise EnvelopeError(_OPAQUE) from None


# --- record payloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedRecord:
    """A record payload encrypted at rest: AES-256-GCM output plus the data key wrapped for the vault."""

    nonce: bytes  # 12 bytes, AES-GCM nonce
    ciphertext: bytes  # AES-256-GCM ciphertext || 16-byte tag
    wrapped_key: bytes  # the 32-byte data key in a sealed box to the vault key: 80 bytes

    def encode(self) -> bytes:
        """The canonical CBOR map {"nonce", "ciphertext", "wrapped_key"}."""
        return codec.encode(
            {"nonce": self.nonce, "ciphertext": self.ciphertext, "wrapped_key": self.wrapped_key}
        )

    @classmethod
    def decode(cls, data: bytes) -> SealedRecord:
        """Parse :meth:`encode` output strictly; raise EncodingError naming the offending field."""
        fields = codec.decode(data)
        check_map(fields, _SEALED_RECORD_SPEC, "sealed_record")
        if len(fields["ciphertext"]) < TAG_SIZE:
            raise EncodingError(
                f"sealed_record.ciphertext: expected at least {TAG_SIZE} bytes (the GCM tag), "
                f"got {len(fields['ciphertext'])}"
            )
        return cls(nonce=fields["nonce"], ciphertext=fields["ciphertext"], wrapped_key=fields["wrapped_key"])

    def __repr__(self) -> str:  # payloads can be megabytes; logs need only the shape
        return f"SealedRecord(nonce={self.nonce.hex()}, ciphertext=<{len(self.ciphertext)} bytes>)"


def record_aad(record_id: bytes, version: int, data_type: str, subject: bytes) -> bytes:
    """Canonical CBOR of [AAD_CONTEXT, record_id, version, data_type, subject].

    Binds a ciphertext to its record, so the vault cannot swap payloads between
    records or versions, nor relabel one subject's data as another's.
    """
    if type(version) is not int or version < 0:
        raise ValueError("version must be a non-negative integer")
    return codec.encode([AAD_CONTEXT, bytes(record_id), version, data_type, bytes(subject)])


def seal_record(plaintext: bytes, vault_public_key: bytes, aad: bytes) -> SealedRecord:
    """Encrypt a record payload under a fresh data key and nonce, the key wrapped to ``vault_public_key``.

    A fresh data key per call means a nonce is never reused under one key, and a
    leaked data key exposes exactly one payload version.
    """
    public = _check_key(vault_public_key, "vault_public_key")
    if len(plaintext) > MAX_PAYLOAD_SIZE:
        raise ValueError(f"plaintext is larger than {MAX_PAYLOAD_SIZE} bytes")
    data_key = AESGCM.generate_key(bit_length=8 * DATA_KEY_SIZE)
    nonce = secrets.token_bytes(NONCE_SIZE)
    ciphertext = AESGCM(data_key).encrypt(nonce, bytes(plaintext), bytes(aad))
    wrapped_key = SealedBox(PublicKey(public)).encrypt(data_key)
    return SealedRecord(nonce=nonce, ciphertext=ciphertext, wrapped_key=wrapped_key)


def open_record(sealed: SealedRecord, vault_private_key: bytes, aad: bytes) -> bytes:
    """Unwrap the data key with ``vault_private_key`` and decrypt; raise EnvelopeError on any failure."""
    private = _check_key(vault_private_key, "vault_private_key")
    try:
        data_key = SealedBox(PrivateKey(private)).decrypt(bytes(sealed.wrapped_key))
        if len(data_key) != DATA_KEY_SIZE or len(sealed.nonce) != NONCE_SIZE:
            raise EnvelopeError(_OPAQUE)
        return AESGCM(data_key).decrypt(bytes(sealed.nonce), bytes(sealed.ciphertext), bytes(aad))
    except (EnvelopeError, CryptoError, InvalidTag, TypeError, ValueError):
        raise EnvelopeError(_OPAQUE) from None
