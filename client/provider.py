"""A provider agency: publish records (sealed for the custodian's vault), correct, withdraw, answer corrections.

The payload is sealed here, on the provider's side: a fresh AES-256-GCM key
per record, wrapped for the custodian node's vault key — which is derived
from the node key the network names, so the provider checks it against
``/v1/network``. Only the salted commitment goes on chain.
"""

from __future__ import annotations

import os
from typing import Any

from client.sdk import LedgerClient, TransactionRefused, b64
from ledger import codec
from ledger.rules.records import commit_record_payload
from privacy.envelope import record_aad, seal_record, x25519_public_from_ed25519

__all__ = ["Provider"]


class Provider:
    def __init__(self, client: LedgerClient, clock_ms: Any) -> None:
        self._client = client
        self._clock_ms = clock_ms
        self.key = client.key

    def _tx(self, tx_type: str, payload: dict[str, Any]) -> bytes:
        return self._client.sign(tx_type, payload, time_ms=self._clock_ms())

    def _vault_key(self) -> bytes:
        """The X25519 key of the node we talk to, once checked to be a custodian organization's node."""
        info = self._client.network_info()
        node_key = info["this_node"]["key"]
        custodian_nodes = {node["key"] for org in info["orgs"] if "custodian" in org["roles"] for node in org["nodes"]}
        if node_key not in custodian_nodes:
            raise ValueError("this node is not run by a custodian organization; refusing to seal records for it")
        return x25519_public_from_ed25519(bytes.fromhex(node_key))

    def _seal(self, record_id: bytes, version: int, data_type: str, subject: bytes, payload: dict[str, Any]) -> tuple[bytes, str]:
        salt = os.urandom(32)
        opening = codec.encode({"salt": salt, "payload": payload})
        sealed = seal_record(opening, self._vault_key(), record_aad(record_id, version, data_type, subject))
        return commit_record_payload(salt, codec.encode(payload)), b64(sealed.encode())

    def _post_record(self, envelope: bytes, sealed: str) -> dict[str, Any]:
        result = self._client.post("/v1/records", {"transaction": b64(envelope), "sealed_payload": sealed})
        if result["status"] != "committed":
            raise TransactionRefused(result)
        return result

    def publish(self, subject: bytes, data_type: str, payload: dict[str, Any], *, as_of: int, record_id: bytes | None = None) -> bytes:
        record_id = record_id or os.urandom(16)
        commitment, sealed = self._seal(record_id, 1, data_type, subject, payload)
        self._post_record(
            self._tx("record.publish", {"record_id": record_id, "subject": subject, "type": data_type, "as_of": as_of, "commitment": commitment}),
            sealed,
        )
        return record_id

    def correct(self, record_id: bytes, payload: dict[str, Any], *, as_of: int, request_id: bytes | None = None) -> int:
        record = self._client.get(f"/v1/records/{record_id.hex()}")
        version = record["version"] + 1
        commitment, sealed = self._seal(record_id, version, record["type"], bytes.fromhex(record["subject"]), payload)
        body: dict[str, Any] = {"record_id": record_id, "version": version, "as_of": as_of, "commitment": commitment}
        if request_id is not None:
            body["request_id"] = request_id
        self._post_record(self._tx("record.correct", body), sealed)
        return version

    def withdraw(self, record_id: bytes, reason: str) -> dict[str, Any]:
        return self._client.commit(self._tx("record.withdraw", {"record_id": record_id, "reason": reason}))

    def reject_correction(self, request_id: bytes, note: str) -> dict[str, Any]:
        return self._client.commit(self._tx("correction.reject", {"request_id": request_id, "note": note}))

    def records(self) -> list[dict[str, Any]]:
        return self._client.get("/v1/records")["records"]

    def corrections(self, status: str | None = None) -> list[dict[str, Any]]:
        return self._client.get("/v1/corrections", status=status)["corrections"]

    def approve_module(self, module_hash: bytes) -> dict[str, Any]:
        """Allow a pinned, checked module to read this provider's data types (see docs/SANDBOX.md)."""
        return self._client.commit(self._tx("module.approve", {"module_hash": module_hash}))

    def set_privacy_budget(self, data_type: str, *, consumer_epsilon: float, total_epsilon: float, min_cohort: int) -> dict[str, Any]:
        """The differential-privacy caps of one data type: per consumer, over all consumers, and the minimum cohort."""
        payload = {
            "data_type": data_type,
            "consumer_epsilon_milli": round(consumer_epsilon * 1000),
            "total_epsilon_milli": round(total_epsilon * 1000),
            "min_cohort": min_cohort,
        }
        return self._client.commit(self._tx("privacy.budget", payload))
