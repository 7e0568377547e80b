"""Consented access: decide, record on the ledger, and only then release the data.

For every data request the custodian node

1. decides with :func:`ledger.consent.refusal_reason` at its clock;
2. on refusal, commits an ``access.record`` with outcome ``refused`` and the
   reason code, then answers the documented error named by that code;
3. otherwise opens the current versions of the consented records from the
   vault, builds the result (each record with its commitment opening), commits
   an ``access.record`` carrying SHA-256 of that result, and — only once that
   record is durable and valid — returns the result sealed to the requester's
   X25519 key, with the signed checkpoint of the block and the inclusion proof
   of the access record, so the requester can prove later what it received
   and that it was logged.

Many concurrent requests share a block (the orderer cuts a batch every few
milliseconds), which is how access records are group-committed. The rule
re-decides each access at block time; if the consent changed in between (it
was revoked, the frequency budget was used by a request in the same block),
the granted record is refused by the rule and the node records the refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ledger import codec
from ledger.checkpoint import SignedCheckpoint
from ledger.consent import REFUSAL_REASONS, refusal_reason
from ledger.merkle import ProofBuilder
from ledger.rules.access import SUBJECT_VIEW_PURPOSE, access_result_hash
from ledger.rules.consents import consent_key
from ledger.rules.records import record_key, record_version_key, subject_record_key
from ledger.tx import build_transaction
from node.api.errors import ApiError
from node.peer import Peer, SubmitResult
from node.publishing import decode_opening
from node.vault import Vault
from privacy.envelope import open_record, record_aad, seal_to

__all__ = ["AccessDesk", "AccessRequest", "GrantedAccess"]

UNSTATED_PURPOSE = "unstated"


@dataclass(frozen=True)
class AccessRequest:
    requester: bytes
    consumer: str | None  # None: a citizen opening their own data
    request_digest: bytes
    subject: bytes
    consent_id: bytes | None
    data_types: Sequence[str] | None
    recipient_key: bytes


@dataclass(frozen=True)
class GrantedAccess:
    submit: SubmitResult
    access_record: bytes  # the committed access.record envelope (the log leaf)
    sealed_result: bytes
    result_hash: bytes
    record_count: int
    checkpoint: SignedCheckpoint
    audit_path: list[bytes]


class AccessDesk:
    def __init__(self, peer: Peer, vault: Vault, vault_private_key: bytes, clock_ms: Callable[[], int]) -> None:
        self._peer = peer
        self._vault = vault
        self._vault_private_key = vault_private_key
        self._clock_ms = clock_ms

    def access(self, request: AccessRequest, *, timeout_s: float = 30.0) -> GrantedAccess:
        """Release the data, or raise ApiError named by the refusal reason after recording the refusal."""
        consent = self._peer.store.read_state(consent_key(request.consent_id)) if request.consent_id is not None else None
        if request.consumer is None:
            data_types = list(request.data_types or self._subject_types(request.subject))
            purpose, reason, date_range = SUBJECT_VIEW_PURPOSE, None, None
        else:
            if consent is not None and consent["consumer"] != request.consumer:
                consent = None  # someone else's consent is no consent, and must not lend its terms
            data_types = list(request.data_types or (consent["terms"]["data_types"] if consent else []))
            purpose = consent["terms"]["purpose"]["code"] if consent else UNSTATED_PURPOSE
            reason = refusal_reason(
                consent,
                consumer=request.consumer,
                subject=request.subject,
                data_types=data_types,
                mode="raw",
                now_ms=self._clock_ms(),
            )
            date_range = (consent["terms"]["data_from"], consent["terms"]["data_until"]) if consent else None
        if not data_types:
            raise ApiError("invalid_argument", "data_types: name at least one data type")
        base = self._base_payload(request, data_types, purpose)
        if reason is not None:
            self._refuse(base, reason, timeout_s)
        records = self._current_records(request.subject, data_types, date_range)
        plaintext = self._result(request, data_types, purpose, records)
        digest = access_result_hash(plaintext)
        granted = {**base, "outcome": "granted", "result_hash": digest, "records": [{"record_id": r, "version": v} for r, v, _ in records]}
        envelope, submitted = self._submit(granted, timeout_s)
        if submitted.status != "committed":
            later = self._peer.store.read_state(consent_key(request.consent_id)) if request.consent_id is not None else None
            reason = refusal_reason(
                later, consumer=request.consumer or "", subject=request.subject, data_types=data_types, mode="raw", now_ms=self._clock_ms()
            ) if request.consumer is not None else None
            if reason is None:
                raise ApiError("unavailable", f"the access record was not committed ({submitted.reason}); no data was released")
            self._refuse(base, reason, timeout_s)
        checkpoint = self._peer.store.checkpoint(submitted.height)
        path = ProofBuilder(self._peer.store, tree_size=checkpoint.checkpoint.tree_size).inclusion_proof(
            submitted.log_index, checkpoint.checkpoint.tree_size
        )
        return GrantedAccess(submitted, envelope, seal_to(plaintext, request.recipient_key), digest, len(records), checkpoint, path)

    def _base_payload(self, request: AccessRequest, data_types: list[str], purpose: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "requester": request.requester,
            "request_digest": request.request_digest,
            "subject": request.subject,
            "data_types": data_types,
            "purpose": purpose,
            "mode": "raw",
            "records": [],
        }
        if request.consumer is not None:
            payload["consumer"] = request.consumer
        if request.consent_id is not None:
            payload["consent_id"] = request.consent_id
        return payload

    def _refuse(self, base: dict[str, Any], reason: str, timeout_s: float) -> None:
        _, submitted = self._submit({**base, "outcome": "refused", "reason": reason}, timeout_s)
        where = f" (refusal recorded at log index {submitted.log_index})" if submitted.status == "committed" else ""
        raise ApiError(reason, f"access refused: {REFUSAL_REASONS[reason]}{where}")

    def _submit(self, payload: dict[str, Any], timeout_s: float) -> tuple[bytes, SubmitResult]:
        envelope = build_transaction(
            self._peer.node_key, self._peer.network, "access.record", payload, time_ms=self._clock_ms()
        )
        return envelope, self._peer.submit([envelope], timeout_s=timeout_s)[0]

    def _subject_types(self, subject: bytes) -> list[str]:
        return sorted({codec.decode(value) for _, value in self._peer.store.state_scan(subject_record_key(subject, b""))})

    def _current_records(
        self, subject: bytes, data_types: list[str], date_range: tuple[int, int] | None
    ) -> list[tuple[bytes, int, dict[str, Any]]]:
        """(record id, version, version entry) of the subject's active records of ``data_types``."""
        prefix = subject_record_key(subject, b"")
        wanted = set(data_types)
        found = []
        for key, value in self._peer.store.state_scan(prefix):
            if codec.decode(value) not in wanted:
                continue
            record_id = key[len(prefix) :]
            head = self._peer.store.read_state(record_key(record_id))
            if head["status"] != "active":
                continue
            version = self._peer.store.read_state(record_version_key(record_id, head["version"]))
            if date_range is not None and not date_range[0] <= version["as_of"] <= date_range[1]:
                continue
            found.append((record_id, head["version"], {**version, "type": head["type"]}))
        return found

    def _result(
        self, request: AccessRequest, data_types: list[str], purpose: str, records: list[tuple[bytes, int, dict[str, Any]]]
    ) -> bytes:
        released = []
        for record_id, version, entry in records:
            sealed = self._vault.get(record_id, version)
            if sealed is None:
                raise ApiError("internal", f"record {record_id.hex()} version {version} is missing from the vault")
            aad = record_aad(record_id, version, entry["type"], request.subject)
            opening = decode_opening(open_record(sealed, self._vault_private_key, aad))
            released.append(
                {
                    "record_id": record_id,
                    "version": version,
                    "type": entry["type"],
                    "as_of": entry["as_of"],
                    "commitment": entry["commitment"],
                    "salt": opening["salt"],
                    "payload": opening["payload"],
                }
            )
        header: dict[str, Any] = {"subject": request.subject, "data_types": data_types, "purpose": purpose}
        if request.consent_id is not None:
            header["consent_id"] = request.consent_id
        return codec.encode({"access": header, "records": released})
