"""Signed API requests: every call to a node is signed by the caller's own key.

Pure and deterministic (no clock, no I/O): the node passes its time in, the
client passes the time it signs at. The signed message binds everything that
decides what a request does (docs/PROTOCOL.md §10.1)::

    message   = enc([METHOD: text, target: bstr, SHA-256(body): bstr(32), time_ms: uint, nonce: bstr(16)])
    signature = Ed25519-Sign(sk, CONTEXT_REQUEST ‖ message)

``target`` is the raw request path exactly as sent, followed by ``?`` and the
raw query string when there is one. The four headers carry the key, time,
nonce and signature; a node refuses a request whose time is more than
:data:`MAX_REQUEST_SKEW_MS` from its clock, and (outside this module) a nonce
it has already seen from the same key.

Failures raise :class:`RequestAuthError`, whose ``reason`` is one of
``missing``, ``malformed``, ``stale`` or ``forged``.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from typing import Mapping

from ledger import codec
from ledger.crypto import CONTEXT_REQUEST, PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair, sha256, sign, verify
from ledger.errors import LedgerError, SignatureError

__all__ = [
    "HEADER_KEY",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIME",
    "MAX_REQUEST_SKEW_MS",
    "NONCE_SIZE",
    "RequestAuthError",
    "request_message",
    "sign_request",
    "VerifiedRequest",
    "verify_request",
]

HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE = "QCL-Key", "QCL-Time", "QCL-Nonce", "QCL-Signature"
MAX_REQUEST_SKEW_MS = 60_000
NONCE_SIZE = 16

_MAX_TIME_MS = 2**64 - 1
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,19})")
_LOWER_HEX = re.compile(r"([0-9a-f]{2})*")


class RequestAuthError(LedgerError):
    """Raised when a request's signature headers are missing, malformed, stale or forged.

    ``reason`` is the short stable word; the message says what is wrong and never
    contains anything secret.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def request_message(method: str, target: bytes, body: bytes, time_ms: int, nonce: bytes) -> bytes:
    """The bytes a request signature covers (after CONTEXT_REQUEST)."""
    return codec.encode([method.upper(), bytes(target), sha256(bytes(body)), time_ms, bytes(nonce)])


def sign_request(
    key: KeyPair, method: str, target: bytes, body: bytes, *, time_ms: int, nonce: bytes | None = None
) -> dict[str, str]:
    """The four headers that authenticate one request; a fresh random nonce unless one is given."""
    if nonce is None:
        nonce = secrets.token_bytes(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"a request nonce is {NONCE_SIZE} bytes")
    if not 0 <= time_ms <= _MAX_TIME_MS:
        raise ValueError("time_ms must be an unsigned 64-bit number of milliseconds")
    signature = sign(key, CONTEXT_REQUEST, request_message(method, target, body, time_ms, nonce))
    return {
        HEADER_KEY: key.public_key.hex(),
        HEADER_TIME: str(time_ms),
        HEADER_NONCE: nonce.hex(),
        HEADER_SIGNATURE: signature.hex(),
    }


@dataclass(frozen=True)
class VerifiedRequest:
    """``digest`` = SHA-256 of the signed request message: access records cite it, so the
    requester's signed ask can be matched to the access it caused."""

    public_key: bytes
    nonce: bytes
    digest: bytes


def verify_request(
    headers: Mapping[str, str], method: str, target: bytes, body: bytes, *, now_ms: int
) -> VerifiedRequest:
    """Return the verified key, nonce and digest if the headers authenticate this request at ``now_ms``.

    Raises RequestAuthError: ``missing`` or ``malformed`` header, ``stale`` when the
    signed time is more than MAX_REQUEST_SKEW_MS from ``now_ms`` (either way),
    ``forged`` when the signature does not verify. Checking the nonce against
    earlier requests is the caller's job.
    """
    fields = _lower_case(headers)
    public_key = _hex_header(fields, HEADER_KEY, PUBLIC_KEY_SIZE)
    time_ms = _time_header(fields)
    nonce = _hex_header(fields, HEADER_NONCE, NONCE_SIZE)
    signature = _hex_header(fields, HEADER_SIGNATURE, SIGNATURE_SIZE)
    skew = time_ms - now_ms
    if abs(skew) > MAX_REQUEST_SKEW_MS:
        seconds = math.ceil(abs(skew) / 100) / 10
        direction = "ahead of" if skew > 0 else "behind"
        raise RequestAuthError(
            "stale",
            f"request time is {seconds:g} s {direction} the node's clock (max {MAX_REQUEST_SKEW_MS // 1000} s)",
        )
    message = request_message(method, target, body, time_ms, nonce)
    try:
        verify(public_key, CONTEXT_REQUEST, message, signature)
    except SignatureError:
        raise RequestAuthError("forged", f"request signature does not verify under key {public_key.hex()}") from None
    return VerifiedRequest(public_key, nonce, sha256(message))


_HEADERS = {name.lower(): name for name in (HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE)}


def _lower_case(headers: Mapping[str, str]) -> dict[str, str]:
    """The signature headers by lower-case name; one given twice is malformed (proxies may disagree on which counts)."""
    folded: dict[str, str] = {}
    for name, value in headers.items():  # starlette's Headers.items() lists repeated headers
        lowered = name.lower()
        if lowered in _HEADERS:
            if lowered in folded:
                raise RequestAuthError("malformed", f"header {_HEADERS[lowered]} appears more than once")
            folded[lowered] = value
    return folded


def _header(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name.lower())
    if value is None:
        raise RequestAuthError("missing", f"missing header {name}; every request must be signed, see docs/PROTOCOL.md §10.1")
    return value


def _hex_header(fields: Mapping[str, str], name: str, size: int) -> bytes:
    value = _header(fields, name)
    if len(value) != 2 * size or not _LOWER_HEX.fullmatch(value):
        raise RequestAuthError("malformed", f"malformed header {name}: expected {2 * size} lower-case hex characters")
    return bytes.fromhex(value)


def _time_header(fields: Mapping[str, str]) -> int:
    value = _header(fields, HEADER_TIME)
    if not _DECIMAL.fullmatch(value) or int(value) > _MAX_TIME_MS:
        raise RequestAuthError(
            "malformed", f"malformed header {HEADER_TIME}: expected milliseconds since the epoch as a decimal integer"
        )
    return int(value)
