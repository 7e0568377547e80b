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

The same pipeline serves the three modes of access: ``raw`` releases the
records with their commitment openings, ``masked`` a view of them masked by the
type's profile (:mod:`privacy.masking`), ``computed`` only the output of a
computation over them (:mod:`node.compute`) — and the access record carries the
computation's receipt. A computation that is not allowed to run
(``module_not_approved``) or is stopped by the sandbox (``computation_failed``)
is recorded as a refusal, with the receipt naming the error.

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
from ledger.consent import ACCESS_REFUSALS, refusal_reason
from ledger.merkle import ProofBuilder
from ledger.rules.access import SUBJECT_VIEW_PURPOSE, access_result_hash
from ledger.rules.catalogue import catalogue_key
from ledger.rules.consents import consent_key
from ledger.rules.records import record_key, record_version_key, subject_record_key
from ledger.storage.ledger_store import LedgerStore
from ledger.tx import build_transaction
from node.api.errors import ApiError
from node.compute import Computation, ComputationStopped, ComputedOutput, data_types_of
from node.peer import Peer, SubmitResult
from node.publishing import decode_opening
from node.vault import Vault
from privacy.envelope import open_record, record_aad, seal_to
from privacy.features import SourceRecord
from privacy.masking import MASKING_VERSION, mask_payload

__all__ = ["AccessDesk", "AccessRequest", "GrantedAccess", "current_records"]

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
    mode: str = "raw"  # raw | masked | computed (then ``computation`` says what runs)
    computation: Computation | None = None
    refusal: tuple[str, str] | None = None  # (reason, detail) known before deciding, e.g. module_not_approved


@dataclass(frozen=True)
class GrantedAccess:
    submit: SubmitResult
    access_record: bytes  # the committed access.record envelope (the log leaf)
    sealed_result: bytes
    result_hash: bytes
    record_count: int
    checkpoint: SignedCheckpoint
    audit_path: list[bytes]
    output: dict[str, Any] | None  # a computed access's output (also inside the sealed result)


class AccessDesk:
    def __init__(self, peer: Peer, vault: Vault, vault_private_key: bytes, clock_ms: Callable[[], int]) -> None:
        self._peer = peer
        self._vault = vault
        self._vault_private_key = vault_private_key
        self._clock_ms = clock_ms

    def access(self, request: AccessRequest, *, timeout_s: float = 30.0) -> GrantedAccess:
        """Release the data (or the computed output), or raise ApiError named by the refusal reason
        after recording the refusal."""
        consent = self._peer.store.read_state(consent_key(request.consent_id)) if request.consent_id is not None else None
        if request.consumer is None:
            data_types = list(request.data_types or self._subject_types(request.subject))
            purpose, reason, date_range = SUBJECT_VIEW_PURPOSE, None, None
        else:
            if consent is not None and consent["consumer"] != request.consumer:
                consent = None  # someone else's consent is no consent, and must not lend its terms
            if request.computation is not None:
                data_types = data_types_of(request.computation)
            else:
                data_types = list(request.data_types or (consent["terms"]["data_types"] if consent else []))
            purpose = consent["terms"]["purpose"]["code"] if consent else UNSTATED_PURPOSE
            reason = self._decide(request, data_types)
            date_range = (consent["terms"]["data_from"], consent["terms"]["data_until"]) if consent else None
        if not data_types:
            raise ApiError("invalid_argument", "data_types: name at least one data type")
        base = self._base_payload(request, data_types, purpose)
        if reason is not None:
            self._refuse(base, reason, timeout_s)
        if request.refusal is not None:
            self._refuse(base, request.refusal[0], timeout_s, detail=request.refusal[1])
        records = current_records(self._peer.store, request.subject, data_types, date_range)
        opened = self._open(request.subject, records)
        output: ComputedOutput | None = None
        if request.computation is not None:
            opened = _latest_by_type(opened)
            try:
                output = request.computation.run(_sources(opened))
            except ComputationStopped as stopped:
                self._refuse({**base, "computation": {**base["computation"], "error": stopped.code}}, "computation_failed",
                             timeout_s, detail=str(stopped))
        plaintext = self._result(request, data_types, purpose, opened, output)
        digest = access_result_hash(plaintext)
        granted = {**base, "outcome": "granted", "result_hash": digest, "records": [{"record_id": r["record_id"], "version": r["version"]} for r in opened]}
        if output is not None:
            granted["computation"] = {**base["computation"], "output_hash": output.output_hash}
            if output.fuel is not None:
                granted["computation"]["fuel"] = output.fuel
        envelope, submitted = self._submit(granted, timeout_s)
        if submitted.status != "committed":
            reason = self._decide(request, data_types) if request.consumer is not None else None
            if reason is None:
                raise ApiError("unavailable", f"the access record was not committed ({submitted.reason}); no data was released")
            self._refuse(base, reason, timeout_s)
        checkpoint = self._peer.store.checkpoint(submitted.height)
        path = ProofBuilder(self._peer.store, tree_size=checkpoint.checkpoint.tree_size).inclusion_proof(
            submitted.log_index, checkpoint.checkpoint.tree_size
        )
        return GrantedAccess(
            submitted, envelope, seal_to(plaintext, request.recipient_key), digest, len(opened), checkpoint, path,
            None if output is None else output.output,
        )

    def replay(self, access: dict[str, Any], computation: Computation) -> ComputedOutput:
        """Run ``computation`` again on exactly the record versions a granted access record lists."""
        store = self._peer.store
        listed = [
            (ref["record_id"], ref["version"], {**store.read_state(record_version_key(ref["record_id"], ref["version"])),
                                                "type": store.read_state(record_key(ref["record_id"]))["type"]})
            for ref in access["records"]
        ]
        opened = self._open(access["subject"], listed)
        return computation.run(_sources(opened))

    def _decide(self, request: AccessRequest, data_types: list[str]) -> str | None:
        consent = self._peer.store.read_state(consent_key(request.consent_id)) if request.consent_id is not None else None
        return refusal_reason(
            consent, consumer=request.consumer or "", subject=request.subject, data_types=data_types, mode=request.mode,
            now_ms=self._clock_ms(),
        )

    def _base_payload(self, request: AccessRequest, data_types: list[str], purpose: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "requester": request.requester,
            "request_digest": request.request_digest,
            "subject": request.subject,
            "data_types": data_types,
            "purpose": purpose,
            "mode": request.mode,
            "records": [],
        }
        if request.consumer is not None:
            payload["consumer"] = request.consumer
        if request.consent_id is not None:
            payload["consent_id"] = request.consent_id
        if request.computation is not None:
            computation = request.computation
            payload["computation"] = {
                "kind": computation.kind, "code_hash": computation.code_hash, "engine": computation.engine, "params": computation.params,
            }
        return payload

    def _refuse(self, base: dict[str, Any], reason: str, timeout_s: float, *, detail: str = "") -> None:
        payload = {**base, "outcome": "refused", "reason": reason}
        if "computation" in payload and reason == "module_not_approved":
            payload["computation"] = {**payload["computation"], "error": reason}
        elif "computation" in payload and reason != "computation_failed":
            del payload["computation"]  # a consent refusal: nothing was computed
        _, submitted = self._submit(payload, timeout_s)
        where = f" (refusal recorded at log index {submitted.log_index})" if submitted.status == "committed" else ""
        raise ApiError(reason, f"access refused: {ACCESS_REFUSALS[reason]}{': ' + detail if detail else ''}{where}")

    def _submit(self, payload: dict[str, Any], timeout_s: float) -> tuple[bytes, SubmitResult]:
        envelope = build_transaction(
            self._peer.node_key, self._peer.network, "access.record", payload, time_ms=self._clock_ms()
        )
        return envelope, self._peer.submit([envelope], timeout_s=timeout_s)[0]

    def _subject_types(self, subject: bytes) -> list[str]:
        return sorted({codec.decode(value) for _, value in self._peer.store.state_scan(subject_record_key(subject, b""))})

    def _open(self, subject: bytes, records: list[tuple[bytes, int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Each record's version entry with its payload and salt, opened from the vault."""
        opened = []
        for record_id, version, entry in records:
            sealed = self._vault.get(record_id, version)
            if sealed is None:
                raise ApiError("internal", f"record {record_id.hex()} version {version} is missing from the vault")
            opening = decode_opening(open_record(sealed, self._vault_private_key, record_aad(record_id, version, entry["type"], subject)))
            opened.append(
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
        return opened

    def _result(
        self, request: AccessRequest, data_types: list[str], purpose: str, opened: list[dict[str, Any]], output: ComputedOutput | None
    ) -> bytes:
        """The canonical bytes released: raw records with openings, masked payloads, or only record
        references and the computed output."""
        header: dict[str, Any] = {"subject": request.subject, "data_types": data_types, "purpose": purpose, "mode": request.mode}
        if request.consent_id is not None:
            header["consent_id"] = request.consent_id
        if request.mode == "raw":
            return codec.encode({"access": header, "records": opened})
        references = [{key: record[key] for key in ("record_id", "version", "type", "as_of", "commitment")} for record in opened]
        if request.mode == "masked":
            header["masking"] = MASKING_VERSION
            for reference, record in zip(references, opened):
                kinds = {field["name"]: field["kind"] for field in self._peer.store.read_state(catalogue_key(record["type"]))["fields"]}
                reference["payload"] = mask_payload(record["type"], kinds, record["payload"])
            return codec.encode({"access": header, "records": references})
        assert output is not None and request.computation is not None
        header["computation"] = {"kind": request.computation.kind, "code_hash": request.computation.code_hash}
        return codec.encode({"access": header, "records": references, "output": output.output})


def current_records(
    store: LedgerStore, subject: bytes, data_types: Sequence[str], date_range: tuple[int, int] | None
) -> list[tuple[bytes, int, dict[str, Any]]]:
    """(record id, version, version entry with its type) of the subject's active records of
    ``data_types`` whose ``as_of`` lies in ``date_range`` (when given), in record-index order."""
    prefix = subject_record_key(subject, b"")
    wanted = set(data_types)
    found = []
    for key, value in store.state_scan(prefix):
        if codec.decode(value) not in wanted:
            continue
        record_id = key[len(prefix) :]
        head = store.read_state(record_key(record_id))
        if head["status"] != "active":
            continue
        version = store.read_state(record_version_key(record_id, head["version"]))
        if date_range is not None and not date_range[0] <= version["as_of"] <= date_range[1]:
            continue
        found.append((record_id, head["version"], {**version, "type": head["type"]}))
    return found


def _latest_by_type(opened: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records a computation reads, one per data type: the one describing the latest date (then
    the highest record id, so the choice is deterministic and a re-run picks the same)."""
    chosen: dict[str, dict[str, Any]] = {}
    for record in opened:
        current = chosen.get(record["type"])
        if current is None or (record["as_of"], record["record_id"]) > (current["as_of"], current["record_id"]):
            chosen[record["type"]] = record
    return [chosen[data_type] for data_type in sorted(chosen)]


def _sources(opened: list[dict[str, Any]]) -> dict[str, SourceRecord]:
    return {record["type"]: SourceRecord(record["type"], record["as_of"], record["payload"]) for record in opened}
