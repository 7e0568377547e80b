"""Consented access: the only way a payload leaves the node — and the access log that shows it.

``POST /v1/access`` answers only after the access record is committed (see
node/access.py). A consumer may ask for a ``masked`` view instead of the raw
records; computed results are asked for at ``POST /v1/compute``. Consumers ask under a consent; a citizen asks for their own
data (no consent, purpose ``subject.view``). Regulators never receive payloads.

``GET /v1/access`` lists access records (granted and refused) in log order:
a citizen their own, a consumer its own, a regulator or custodian any, with
filters. With ``wait_s`` it long-polls: when nothing newer than ``after``
exists yet it waits for the next block (up to ``wait_s`` seconds) — this is
how ``qcl citizen log --follow`` shows accesses live.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ledger.errors import EncodingError
from ledger.fields import ListOf, Text
from ledger.genesis import Role
from node.access import AccessRequest, GrantedAccess
from node.api.auth import AUDITOR_ROLES, CallerDep, require_role
from node.api.dependencies import NodeDep
from node.api.errors import ApiError
from node.api.parsing import parse_hex
from node.services import NodeServices

router = APIRouter(prefix="/v1/access", tags=["access"])

MAX_WAIT_S = 60


class AccessBody(BaseModel):
    subject: str = Field(description="hex key of the citizen whose data is asked for")
    consent_id: str | None = Field(None, description="hex consent id (consumers)")
    data_types: list[str] | None = Field(None, description="default: every type the consent covers (or, for a citizen, every type held)")
    recipient_key: str = Field(description="hex X25519 public key the result is sealed to (use a fresh one per request)")
    mode: Literal["raw", "masked"] = Field("raw", description="raw: the records; masked: a masked view (consents in masked or raw mode)")
    timeout_ms: int = Field(30_000, ge=1, le=120_000)


@router.post("")
def request_access(body: AccessBody, caller: CallerDep, node: NodeDep) -> dict:
    subject = parse_hex(body.subject, "subject", 32)
    if caller.is_citizen:
        if subject != caller.key or body.consent_id is not None:
            raise ApiError("forbidden", "a citizen opens only their own data, without a consent")
    else:
        require_role(caller, Role.CONSUMER)
        if body.consent_id is None and not body.data_types:
            raise ApiError("invalid_argument", "consent_id: a consumer names the consent it asks under")
    if body.data_types is not None:
        try:
            ListOf(Text(64, identifier=True), 1, 16, unique=True)(body.data_types, "data_types")
        except EncodingError as exc:
            raise ApiError("invalid_argument", str(exc)) from None
    request = AccessRequest(
        requester=caller.key,
        consumer=None if caller.is_citizen else caller.org,
        request_digest=caller.request_digest,
        subject=subject,
        consent_id=None if body.consent_id is None else parse_hex(body.consent_id, "consent_id", 16),
        data_types=body.data_types,
        recipient_key=parse_hex(body.recipient_key, "recipient_key", 32),
        mode="raw" if caller.is_citizen else body.mode,
    )
    granted = node.access.access(request, timeout_s=body.timeout_ms / 1000)
    return granted_json(node, granted)


def granted_json(node: NodeServices, granted: GrantedAccess) -> dict:
    """The answer to a granted access or computation: the sealed result and the proof it was logged first."""
    submitted = granted.submit
    return {
        "access": {"tx_id": submitted.tx_id.hex(), "log_index": submitted.log_index, "height": submitted.height},
        "access_record": base64.b64encode(granted.access_record).decode(),
        "block_header": base64.b64encode(node.peer.store.header_bytes(submitted.height)).decode(),
        "result_hash": granted.result_hash.hex(),
        "record_count": granted.record_count,
        "sealed_result": base64.b64encode(granted.sealed_result).decode(),
        "checkpoint": base64.b64encode(granted.checkpoint.encode()).decode(),
        "audit_path": [node_hash.hex() for node_hash in granted.audit_path],
    }


@router.get("")
def list_accesses(
    caller: CallerDep,
    node: NodeDep,
    subject: Annotated[str | None, Query(description="hex citizen key")] = None,
    consumer: Annotated[str | None, Query(description="consumer org id")] = None,
    data_type: Annotated[str | None, Query()] = None,
    outcome: Annotated[str | None, Query(pattern="^(granted|refused)$")] = None,
    since: Annotated[int | None, Query(ge=0, description="block time from (ms)")] = None,
    until: Annotated[int | None, Query(ge=0, description="block time before (ms)")] = None,
    after: Annotated[int | None, Query(ge=0, description="only log indexes greater than this")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0,
) -> dict:
    if caller.is_citizen:
        if subject is not None and parse_hex(subject, "subject", 32) != caller.key:
            raise ApiError("forbidden", "a citizen sees only the accesses to their own data")
        subject_key = caller.key
    elif caller.has_role(*AUDITOR_ROLES):
        subject_key = None if subject is None else parse_hex(subject, "subject", 32)
    else:
        require_role(caller, Role.CONSUMER)
        if consumer not in (None, caller.org):
            raise ApiError("forbidden", "a consumer sees only its own accesses")
        consumer, subject_key = caller.org, None if subject is None else parse_hex(subject, "subject", 32)

    def keep(entry: dict[str, Any]) -> bool:
        return (
            (subject_key is None or entry["subject"] == subject_key.hex())
            and (consumer is None or entry.get("consumer") == consumer)
            and (data_type is None or data_type in entry["data_types"])
            and (outcome is None or entry["outcome"] == outcome)
            and (since is None or entry["time"] >= since)
            and (until is None or entry["time"] < until)
        )

    def fetch() -> list[dict[str, Any]]:
        return node.queries.accesses(subject=subject_key, consumer=consumer, after=after, limit=limit, keep=keep)

    found = fetch()
    if not found and wait_s > 0:
        head = node.peer.store.head()
        if node.peer.wait_for_block_after(head.height, wait_s):
            found = fetch()
    return {"accesses": found, "tree_size": node.peer.store.head().tree_size}
