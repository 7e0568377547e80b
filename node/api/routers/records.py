"""Records: providers publish (payload sealed to the vault, fingerprint on chain); everyone lists what they may see.

Visibility: a citizen sees the records about them, a provider the records it
published, a regulator or custodian every record's metadata. Nobody reads a
payload here — payloads leave only through ``POST /v1/access``, logged first.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ledger.errors import EncodingError
from ledger.genesis import Role
from node.api.auth import AUDITOR_ROLES, CallerDep, require_role
from node.api.dependencies import NodeDep
from node.api.errors import ApiError
from node.api.parsing import parse_hex
from node.api.routers.transactions import result_json
from privacy.envelope import SealedRecord

router = APIRouter(prefix="/v1/records", tags=["records"])


class PublishRequest(BaseModel):
    transaction: str = Field(description="base64 of the signed record.publish or record.correct envelope")
    sealed_payload: str = Field(description="base64 of the SealedRecord (canonical CBOR) sealed to the node's vault key")
    timeout_ms: int = Field(30_000, ge=0, le=120_000)


@router.post("")
def publish(request: PublishRequest, caller: CallerDep, node: NodeDep) -> dict:
    """Providers only: check the sealed payload against the catalogue and the commitment, store it, commit."""
    require_role(caller, Role.PROVIDER)
    try:
        envelope = base64.b64decode(request.transaction, validate=True)
        sealed = SealedRecord.decode(base64.b64decode(request.sealed_payload, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ApiError("invalid_argument", f"not base64: {exc}") from None
    except EncodingError as exc:
        raise ApiError("invalid_argument", f"sealed_payload: {exc}") from None
    result = node.publisher.publish(envelope, sealed, timeout_s=request.timeout_ms / 1000)
    return result_json(result)


@router.get("")
def list_records(
    caller: CallerDep,
    node: NodeDep,
    subject: Annotated[str | None, Query(description="hex citizen key (regulators; citizens may pass their own)")] = None,
    provider: Annotated[str | None, Query(description="provider org id (regulators; providers may pass their own)")] = None,
) -> dict:
    """Citizens: the records about them. Providers: their own. Regulators/custodians: by subject or provider."""
    queries = node.queries
    if caller.is_citizen:
        if subject is not None and parse_hex(subject, "subject", 32) != caller.key:
            raise ApiError("forbidden", "a citizen lists only the records about themselves")
        return {"records": queries.records_of_subject(caller.key)}
    if caller.has_role(*AUDITOR_ROLES):
        if subject is not None:
            return {"records": queries.records_of_subject(parse_hex(subject, "subject", 32))}
        if provider is None:
            raise ApiError("invalid_argument", "name a subject or a provider")
        return {"records": queries.records_of_provider(provider)}
    require_role(caller, Role.PROVIDER)
    if provider not in (None, caller.org) or subject is not None:
        raise ApiError("forbidden", "a provider lists only its own records")
    return {"records": queries.records_of_provider(caller.org)}


@router.get("/{record_id}")
def get_record(record_id: str, caller: CallerDep, node: NodeDep) -> dict:
    """One record with every version (superseded ones included). Unseen records answer not_found."""
    record = node.queries.record(parse_hex(record_id, "record_id", 16))
    visible = record is not None and (
        caller.has_role(*AUDITOR_ROLES)
        or (caller.is_citizen and record["subject"] == caller.key.hex())
        or (record["provider"] == caller.org)
    )
    if not visible:
        raise ApiError("not_found", f"no record {record_id} visible to the caller")
    return record


corrections_router = APIRouter(prefix="/v1/corrections", tags=["records"])


@corrections_router.get("")
def list_corrections(
    caller: CallerDep,
    node: NodeDep,
    status: Annotated[str | None, Query(pattern="^(open|corrected|rejected)$")] = None,
) -> dict:
    """Citizens: the requests they filed. Providers: the requests they must answer. Regulators: all."""
    if caller.is_citizen:
        found = node.queries.corrections(subject=caller.key)
    elif caller.has_role(*AUDITOR_ROLES):
        found = node.queries.corrections()
    else:
        require_role(caller, Role.PROVIDER)
        found = node.queries.corrections(provider=caller.org)
    return {"corrections": [request for request in found if status is None or request["status"] == status]}
