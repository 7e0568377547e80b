"""Signing every HTTP request with the caller's key (docs/PROTOCOL.md §10.1), as an httpx auth flow."""

from __future__ import annotations

import time
from typing import Callable, Generator

import httpx

from ledger.crypto import KeyPair
from ledger.request_auth import sign_request

__all__ = ["RequestSigner"]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class RequestSigner(httpx.Auth):
    """Adds the QCL-Key/-Time/-Nonce/-Signature headers; a fresh nonce for every request.

    Works with ``httpx.Client`` and ``httpx.AsyncClient`` (and FastAPI's TestClient).
    ``clock_ms`` is injectable for tests; the node accepts ±60 s of skew.
    """

    requires_request_body = True

    def __init__(self, key: KeyPair, *, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._key = key
        self._clock_ms = clock_ms

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # raw_path is the path and query exactly as they go on the wire.
        headers = sign_request(self._key, request.method, request.url.raw_path, request.content, time_ms=self._clock_ms())
        request.headers.update(headers)
        yield request

    def __repr__(self) -> str:
        return f"RequestSigner(public_key={self._key.public_key.hex()})"
