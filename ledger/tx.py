"""Signed transactions: the envelope, its id, and how it is built and checked.

Wire form (the log leaf), canonical CBOR — see docs/PROTOCOL.md §3::

    envelope = [ body: bstr, signatures: [ [public_key: bstr(32), signature: bstr(64)], + ] ]
    body     = canonical CBOR map {network, type, signer, nonce, time, payload}

The body travels as a byte string so signers and verifiers hash exactly the
bytes that were signed, with no re-encoding in between. The transaction id is
SHA-256(body): signatures are excluded so that nobody can mint a second id for
the same signed intent by re-signing or re-ordering signatures.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Sequence

from ledger import codec
from ledger.crypto import CONTEXT_TRANSACTION, KeyPair, sha256, sign, verify
from ledger.errors import EncodingError, SignatureError
from ledger.fields import Bytes, ListOf, MapOf, Text, UInt, check_map

__all__ = ["Transaction", "build_transaction", "cosign", "parse_transaction"]

NONCE_SIZE = 16
MAX_ENVELOPE_SIZE = 256 * 1024
MAX_SIGNATURES = 64  # = the most organizations a network may have, so any M-of-N can be met

_BODY_SPEC = {
    "network": Bytes(32),
    "type": Text(64, identifier=True),
    "signer": Bytes(32),
    "nonce": Bytes(NONCE_SIZE),
    "time": UInt(),
    "payload": MapOf({}),  # checked loosely here; the rule for `type` checks it exactly
}


@dataclass(frozen=True, slots=True)
class Transaction:
    """A decoded envelope. Holding one means the encoding is canonical, not that it is valid."""

    envelope: bytes
    body: bytes
    tx_id: bytes
    network: bytes
    type: str
    signer: bytes
    nonce: bytes
    time: int
    payload: dict[str, Any]
    signatures: tuple[tuple[bytes, bytes], ...]

    @property
    def signer_keys(self) -> frozenset[bytes]:
        return frozenset(key for key, _ in self.signatures)

    def check_signatures(self) -> None:
        """Return None if every signature verifies over the body, else raise SignatureError."""
        for public_key, signature in self.signatures:
            verify(public_key, CONTEXT_TRANSACTION, self.body, signature)


def parse_transaction(envelope: bytes) -> Transaction:
    """Decode an envelope; raise EncodingError naming the first thing that is wrong."""
    if len(envelope) > MAX_ENVELOPE_SIZE:
        raise EncodingError(f"envelope larger than {MAX_ENVELOPE_SIZE} bytes")
    outer = codec.decode(envelope)
    if type(outer) is not list or len(outer) != 2:
        raise EncodingError("envelope: expected [body, signatures]")
    body_bytes, signatures = outer
    Bytes(max_size=MAX_ENVELOPE_SIZE)(body_bytes, "envelope.body")
    ListOf(ListOf(Bytes(), 2, 2), 1, MAX_SIGNATURES)(signatures, "envelope.signatures")
    pairs = tuple((key, signature) for key, signature in signatures)
    for position, (key, signature) in enumerate(pairs):
        Bytes(32)(key, f"envelope.signatures[{position}].public_key")
        Bytes(64)(signature, f"envelope.signatures[{position}].signature")
    if len({key for key, _ in pairs}) != len(pairs):
        raise EncodingError("envelope.signatures: a key signs more than once")
    body = codec.decode(body_bytes)
    _check_body(body)
    if pairs[0][0] != body["signer"]:
        raise EncodingError("envelope.signatures[0] must be the body's signer")
    return Transaction(
        envelope=envelope,
        body=body_bytes,
        tx_id=sha256(body_bytes),
        network=body["network"],
        type=body["type"],
        signer=body["signer"],
        nonce=body["nonce"],
        time=body["time"],
        payload=body["payload"],
        signatures=pairs,
    )


def _check_body(body: Any) -> None:
    if type(body) is not dict:
        raise EncodingError("body: expected a map")
    payload = body.get("payload")
    check_map({**body, "payload": {}}, _BODY_SPEC, "body")
    if type(payload) is not dict:
        raise EncodingError("body.payload: expected a map")


def build_transaction(
    key: KeyPair,
    network: bytes,
    tx_type: str,
    payload: dict[str, Any],
    *,
    time_ms: int,
    nonce: bytes | None = None,
    cosigners: Sequence[KeyPair] = (),
) -> bytes:
    """Encode and sign a transaction; ``cosigners`` add approvals (e.g. M-of-N admins)."""
    body = codec.encode(
        {
            "network": network,
            "type": tx_type,
            "signer": key.public_key,
            "nonce": nonce if nonce is not None else secrets.token_bytes(NONCE_SIZE),
            "time": time_ms,
            "payload": payload,
        }
    )
    signatures = [[signer.public_key, sign(signer, CONTEXT_TRANSACTION, body)] for signer in (key, *cosigners)]
    envelope = codec.encode([body, signatures])
    parse_transaction(envelope)  # never hand out bytes we would refuse
    return envelope


def cosign(envelope: bytes, key: KeyPair) -> bytes:
    """Return ``envelope`` with one more signature over the same body."""
    tx = parse_transaction(envelope)
    if key.public_key in tx.signer_keys:
        raise SignatureError(f"key {key.public_key.hex()} has already signed")
    signatures = [[k, s] for k, s in tx.signatures]
    signatures.append([key.public_key, sign(key, CONTEXT_TRANSACTION, tx.body)])
    return codec.encode([tx.body, signatures])
