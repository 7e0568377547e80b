"""A consumer (bank, insurer): ask for consent, then fetch exactly the consented data — or only a result
computed over it (a pinned module in the sandbox, or an encrypted private model) — verified, with a receipt."""

from __future__ import annotations

import os
from typing import Any

from client.received import ReceiptError, ReceivedData, verify_access_answer
from client.sdk import LedgerClient, TransactionRefused, b64
from ledger.crypto import sha256
from privacy.envelope import generate_x25519
from privacy.he.scoring import ScoringKeys

__all__ = ["Consumer"]

DAY_MS = 86_400_000


class Consumer:
    def __init__(self, client: LedgerClient, clock_ms: Any) -> None:
        self._client = client
        self._clock_ms = clock_ms
        self.key = client.key

    def request_consent(
        self,
        subject: bytes,
        data_types: list[str],
        *,
        purpose_code: str,
        purpose_text: str,
        valid_days: int,
        contact: str,
        mode: str = "raw",
        max_uses: int = 10,
        frequency: tuple[int, str] = (5, "day"),
        data_from: int = 0,
        data_until: int | None = None,
        data_life_days: int = 30,
        grantor: bytes | None = None,
    ) -> bytes:
        """Order a consent.request; the citizen (or, after a death, the named relative) answers it."""
        now = self._clock_ms()
        terms: dict[str, Any] = {
            "consent_id": os.urandom(16),
            "subject": subject,
            "data_types": data_types,
            "purpose": {"code": purpose_code, "text": purpose_text},
            "mode": mode,
            "data_from": data_from,
            "data_until": now if data_until is None else data_until,
            "valid_from": now,
            "valid_until": now + valid_days * DAY_MS,
            "max_uses": max_uses,
            "frequency": {"max": frequency[0], "per": frequency[1]},
            "data_life_days": data_life_days,
            "legal_basis": "pipl-13.1-consent" if grantor is None else "pipl-49-next-of-kin",
            "contact": contact,
        }
        if grantor is not None:
            terms["grantor"] = grantor
        envelope = self._client.sign("consent.request", terms, time_ms=now)
        self._client.commit(envelope)
        return terms["consent_id"]

    def consents(self, status: str | None = None) -> list[dict[str, Any]]:
        return self._client.get("/v1/consents", status=status)["consents"]

    def consent(self, consent_id: bytes) -> dict[str, Any]:
        return self._client.get(f"/v1/consents/{consent_id.hex()}")

    def fetch(
        self, consent_id: bytes, subject: bytes, data_types: list[str] | None = None, *, masked: bool = False
    ) -> ReceivedData:
        """The consented records (or, ``masked``, a masked view of them), sealed to a fresh X25519 key and
        checked; raises ApiError named by the refusal reason."""
        body = {"consent_id": consent_id.hex(), "data_types": data_types, "mode": "masked" if masked else "raw"}
        return self._ask("/v1/access", subject, body)

    def pin_module(self, wasm: bytes, name: str, inputs: list[list[dict[str, str]]], output: str, description: str = "") -> bytes:
        """Pin a WebAssembly module (the node checks it and records the verdict); returns its hash."""
        module_hash = sha256(wasm)
        payload: dict[str, Any] = {"module_hash": module_hash, "name": name, "inputs": inputs, "output": output}
        if description:
            payload["description"] = description
        envelope = self._client.sign("module.submit", payload, time_ms=self._clock_ms())
        answer = self._client.post("/v1/modules", {"transaction": b64(envelope), "wasm": b64(wasm)})
        if answer["submit"]["status"] != "committed":
            raise TransactionRefused(answer["submit"])
        return module_hash

    def module(self, module_hash: bytes) -> dict[str, Any]:
        return self._client.get(f"/v1/modules/{module_hash.hex()}")

    def run_module(self, consent_id: bytes, subject: bytes, module_hash: bytes) -> ReceivedData:
        """Run an approved module over the subject's consented records; only its output comes back."""
        job = {"kind": "sandbox", "module_hash": module_hash.hex()}
        return _ran(self._ask("/v1/compute", subject, {"consent_id": consent_id.hex(), "job": job}), module_hash)

    def score(self, consent_id: bytes, subject: bytes, keys: ScoringKeys, bundle: bytes, inputs: list[list[dict[str, str]]]) -> tuple[int, ReceivedData]:
        """Score the subject with an encrypted private model (``keys.encrypt_model``); the node sees
        neither the model nor the score, the consumer never the features."""
        job = {"kind": "he_score", "bundle": b64(bundle), "inputs": inputs}
        received = _ran(self._ask("/v1/compute", subject, {"consent_id": consent_id.hex(), "job": job}), sha256(bundle))
        return keys.decrypt_score(received.output["ciphertext"]), received

    def _ask(self, path: str, subject: bytes, body: dict[str, Any]) -> ReceivedData:
        private_key, public_key = generate_x25519()
        answer = self._client.post(path, {"subject": subject.hex(), "recipient_key": public_key.hex(), **body})
        return verify_access_answer(
            answer, recipient_private_key=private_key, requester=self.key.public_key, subject=subject, node_keys=self._client.node_keys()
        )

    def accesses(self, **filters: Any) -> list[dict[str, Any]]:
        return self._client.get("/v1/access", **filters)["accesses"]


def _ran(received: ReceivedData, code_hash: bytes) -> ReceivedData:
    """The answer, once its receipt names the module or model the consumer asked to run."""
    if received.access["computation"]["code_hash"] != code_hash:
        raise ReceiptError("the access record names another computation than the one asked for")
    return received
