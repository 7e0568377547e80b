"""A consumer (bank, insurer): ask for consent, then fetch exactly the consented data — verified, with a receipt."""

from __future__ import annotations

import os
from typing import Any

from client.received import ReceivedData, verify_access_answer
from client.sdk import LedgerClient
from privacy.envelope import generate_x25519

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

    def fetch(self, consent_id: bytes, subject: bytes, data_types: list[str] | None = None) -> ReceivedData:
        """The consented records, sealed to a fresh X25519 key and checked; raises ApiError named by the refusal reason."""
        private_key, public_key = generate_x25519()
        answer = self._client.post(
            "/v1/access",
            {"subject": subject.hex(), "consent_id": consent_id.hex(), "data_types": data_types, "recipient_key": public_key.hex()},
        )
        return verify_access_answer(
            answer, recipient_private_key=private_key, requester=self.key.public_key, subject=subject, node_keys=self._client.node_keys()
        )

    def accesses(self, **filters: Any) -> list[dict[str, Any]]:
        return self._client.get("/v1/access", **filters)["accesses"]
