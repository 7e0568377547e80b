"""Pinning a consumer's module: store the bytes, order the pin, check the bytes, record the verdict.

The consumer signs ``module.submit`` (hash, input layout, output type); the node
keeps the wasm in its vault under that hash, orders the pin, then checks the
bytes with :func:`privacy.sandbox.check_module` (no imports, the documented ABI)
and orders its own ``module.check``. A module refused by the check — one that
imports anything, say — is thereby refused *on the ledger*, with its error code,
and can never be approved or run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ledger.crypto import sha256
from ledger.tx import build_transaction
from node.api.errors import ApiError
from node.api.parsing import parse_envelope
from node.peer import Peer, SubmitResult
from node.vault import Vault
from privacy.sandbox import SandboxError, check_module

__all__ = ["ModuleDesk", "PinnedModule"]

MAX_MODULE_BYTES = 1 << 20


@dataclass(frozen=True)
class PinnedModule:
    submit: SubmitResult
    check: SubmitResult | None  # None when the pin itself was not committed
    error: SandboxError | None  # why the check refused the bytes


class ModuleDesk:
    def __init__(self, peer: Peer, vault: Vault, clock_ms: Callable[[], int]) -> None:
        self._peer = peer
        self._vault = vault
        self._clock_ms = clock_ms

    def pin(self, envelope: bytes, wasm: bytes, *, timeout_s: float) -> PinnedModule:
        tx = parse_envelope(envelope, {"module.submit"})
        if len(wasm) > MAX_MODULE_BYTES:
            raise ApiError("payload_too_large", f"wasm: {len(wasm)} bytes, at most {MAX_MODULE_BYTES}")
        if tx.payload.get("module_hash") != sha256(wasm):
            raise ApiError("invalid_argument", "module_hash: is not SHA-256 of the wasm bytes sent")
        self._vault.put_blob(wasm)
        submitted = self._peer.submit([envelope], timeout_s=timeout_s)[0]
        if submitted.status != "committed":
            return PinnedModule(submitted, None, None)
        verdict: dict[str, object] = {"module_hash": tx.payload["module_hash"], "outcome": "accepted"}
        error = None
        try:
            check_module(wasm)
        except SandboxError as exc:
            error = exc
            verdict.update(outcome="refused", error=exc.code, message=exc.message[:500])
        check_tx = build_transaction(self._peer.node_key, self._peer.network, "module.check", verdict, time_ms=self._clock_ms())
        return PinnedModule(submitted, self._peer.submit([check_tx], timeout_s=timeout_s)[0], error)
