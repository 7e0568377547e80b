"""The citizen's digital safe box: my records, my data, my consents, who used my data.

Every consent answer is a transaction signed here, with the citizen's key;
the node only relays it. Before granting, the safe box recomputes the hash of
the terms it shows from the terms themselves, so a node cannot get a grant
signed for terms the citizen never saw. Sensitive data types (PIPL art. 28)
need ``confirm_sensitive=True``: a separate, explicit confirmation that is
signed into the grant.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from client.received import ReceivedData, verify_access_answer
from client.sdk import LedgerClient
from ledger.consent import terms_hash
from privacy.envelope import generate_x25519

__all__ = ["SafeBox", "SensitiveConfirmationNeeded", "terms_from_json"]

_BYTES_TERMS = ("consent_id", "subject", "grantor")


class SensitiveConfirmationNeeded(Exception):
    """Raised when a grant covers sensitive data types and the citizen has not confirmed them separately."""


def terms_from_json(terms: dict[str, Any]) -> dict[str, Any]:
    """The consent terms as signed (byte fields back from hex)."""
    return {key: bytes.fromhex(value) if key in _BYTES_TERMS else value for key, value in terms.items()}


class SafeBox:
    def __init__(self, client: LedgerClient, clock_ms: Any) -> None:
        self._client = client
        self._clock_ms = clock_ms
        self.key = client.key

    def _send(self, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        envelope = self._client.sign(tx_type, payload, time_ms=self._clock_ms())
        return self._client.commit(envelope)

    # --- records and my own data -----------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        return self._client.get("/v1/records")["records"]

    def open_my_data(self, data_types: list[str] | None = None) -> ReceivedData:
        """My own records' payloads, sealed to a fresh key of mine; the view is logged like any access."""
        private_key, public_key = generate_x25519()
        answer = self._client.post(
            "/v1/access", {"subject": self.key.public_key.hex(), "data_types": data_types, "recipient_key": public_key.hex()}
        )
        return verify_access_answer(
            answer, recipient_private_key=private_key, requester=self.key.public_key, subject=self.key.public_key,
            node_keys=self._client.node_keys(),
        )

    def request_correction(self, record_id: bytes, reason: str) -> bytes:
        record = self._client.get(f"/v1/records/{record_id.hex()}")
        request_id = os.urandom(16)
        self._send(
            "correction.request", {"request_id": request_id, "record_id": record_id, "version": record["version"], "reason": reason}
        )
        return request_id

    # --- consents --------------------------------------------------------------

    def consents(self, status: str | None = None) -> list[dict[str, Any]]:
        return self._client.get("/v1/consents", status=status)["consents"]

    def pending(self) -> list[dict[str, Any]]:
        return self.consents(status="requested")

    def consent(self, consent_id: bytes) -> dict[str, Any]:
        return self._client.get(f"/v1/consents/{consent_id.hex()}")

    def grant(self, consent_id: bytes, *, confirm_sensitive: bool = False) -> dict[str, Any]:
        consent = self.consent(consent_id)
        terms = terms_from_json(consent["terms"])
        digest = terms_hash(terms)
        if digest.hex() != consent["terms_hash"] or terms["consent_id"] != consent_id:
            raise ValueError("the node's terms do not hash to the terms_hash it reports; refusing to sign")
        payload: dict[str, Any] = {"consent_id": consent_id, "terms_hash": digest}
        if consent["sensitive_types"]:
            if not confirm_sensitive:
                raise SensitiveConfirmationNeeded(
                    f"this consent covers sensitive data ({', '.join(consent['sensitive_types'])}); confirm it separately"
                )
            payload["sensitive_confirmation"] = consent["sensitive_types"]
        return self._send("consent.grant", payload)

    def reject(self, consent_id: bytes, reason: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"consent_id": consent_id}
        if reason:
            payload["reason"] = reason
        return self._send("consent.reject", payload)

    def pause(self, consent_id: bytes) -> dict[str, Any]:
        return self._send("consent.pause", {"consent_id": consent_id})

    def resume(self, consent_id: bytes) -> dict[str, Any]:
        return self._send("consent.resume", {"consent_id": consent_id})

    def revoke(self, consent_id: bytes) -> dict[str, Any]:
        return self._send("consent.revoke", {"consent_id": consent_id})

    # --- my access log ---------------------------------------------------------

    def access_log(self, *, after: int | None = None, wait_s: float = 0) -> list[dict[str, Any]]:
        return self._client.get("/v1/access", after=after, wait_s=wait_s or None)["accesses"]

    def follow(self, *, after: int | None = None, wait_s: float = 25) -> Iterator[dict[str, Any]]:
        """Every access to my data as it is committed (long-poll; runs until the caller stops)."""
        while True:
            for entry in self.access_log(after=after, wait_s=wait_s):
                after = entry["log_index"]
                yield entry
