"""Submitting signed transactions and asking what became of them.

Both routes need a signed request (docs/PROTOCOL.md §10.1). Anyone
authenticated may submit (each transaction carries its own signatures and the
rules decide); a transaction is shown to regulators and custodians, and to the
keys that signed it.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger.errors import EncodingError
from ledger.tx import MAX_ENVELOPE_SIZE, parse_transaction
from node.api.auth import AUDITOR_ROLES, CallerDep
from node.api.dependencies import PeerDep
from node.api.errors import ApiError
from node.peer import PeerUnavailable, SubmitResult

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])

MAX_TRANSACTIONS_PER_REQUEST = 5000


class SubmitRequest(BaseModel):
    transactions: list[str] = Field(description="base64 of each envelope's canonical bytes")
    timeout_ms: int = Field(30_000, ge=0, le=120_000)


def result_json(result: SubmitResult) -> dict:
    return {
        "tx_id": result.tx_id.hex() if result.tx_id else None,
        "status": result.status,
        "code": result.code.name if result.code is not None else None,
        "reason": result.reason,
        "height": result.height,
        "log_index": result.log_index,
    }


# Transactions that must not be ordered without what their route adds: a record's sealed
# payload goes into the vault first (a record without one could never be released), as do a
# module's bytes, a joint key and a decryption share; access records, module checks and
# computed aggregates are written by the node itself.
ROUTED_ELSEWHERE = {
    "record.publish": "POST /v1/records (with the sealed payload)",
    "record.correct": "POST /v1/records (with the sealed payload)",
    "access.record": "POST /v1/access or POST /v1/compute (the node records accesses itself)",
    "module.submit": "POST /v1/modules (with the wasm bytes)",
    "module.check": "POST /v1/modules (the node checks the bytes itself)",
    "threshold.keyset": "POST /v1/keysets (with the joint key bytes)",
    "aggregate.request": "POST /v1/aggregates (the node computes the aggregate)",
    "aggregate.computed": "POST /v1/aggregates (the node records its computation itself)",
    "aggregate.share": "POST /v1/aggregates/{id}/shares (with the share bytes)",
}


def _refuse_types_with_their_own_route(envelope: bytes, position: int) -> None:
    try:
        tx_type = parse_transaction(envelope).type
    except EncodingError:
        return  # ordered and refused with BAD_ENCODING like any undecodable envelope
    if tx_type in ROUTED_ELSEWHERE:
        raise ApiError("invalid_argument", f"transactions[{position}]: send {tx_type} through {ROUTED_ELSEWHERE[tx_type]}")


@router.post("")
def submit(caller: CallerDep, request: SubmitRequest, peer: PeerDep) -> dict:
    """Order the batch and answer once each transaction is durably committed or refused."""
    if not request.transactions:
        raise ApiError("invalid_argument", "transactions: the batch is empty")
    if len(request.transactions) > MAX_TRANSACTIONS_PER_REQUEST:
        raise ApiError("payload_too_large", f"transactions: at most {MAX_TRANSACTIONS_PER_REQUEST} per request")
    envelopes = []
    for position, text in enumerate(request.transactions):
        try:
            envelope = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("invalid_argument", f"transactions[{position}]: not base64") from None
        if len(envelope) > MAX_ENVELOPE_SIZE:
            raise ApiError("payload_too_large", f"transactions[{position}]: larger than {MAX_ENVELOPE_SIZE} bytes")
        _refuse_types_with_their_own_route(envelope, position)
        envelopes.append(envelope)
    try:
        results = peer.submit(envelopes, timeout_s=request.timeout_ms / 1000)
    except PeerUnavailable as exc:
        raise ApiError("unavailable", str(exc)) from None
    return {"results": [result_json(result) for result in results]}


@router.get("/{tx_id}")
def get_transaction(caller: CallerDep, tx_id: str, peer: PeerDep) -> dict:
    """Where the transaction ``tx_id`` is in the log, its validation code and its envelope.

    Regulators and custodians see every transaction. Any other caller sees only
    transactions their key signed; for them a transaction they did not sign gets
    the same 404 ``not_found`` as one that does not exist, so the answer never
    reveals whether someone else's transaction is on the ledger.
    """
    try:
        raw_id = bytes.fromhex(tx_id)
    except ValueError:
        raw_id = b""
    if len(raw_id) != 32:
        raise ApiError("invalid_argument", "tx_id: expected 64 hex characters")
    location = peer.store.tx_location(raw_id)
    envelope = None if location is None else peer.store.leaf(location.log_index)
    if envelope is None or not (caller.has_role(*AUDITOR_ROLES) or _signed_by(envelope, caller.key)):
        raise ApiError("not_found", f"no committed transaction {tx_id}")
    return {
        "tx_id": tx_id,
        "status": "committed" if location.code == 0 else "invalid",
        "code": location.code.name,
        "height": location.height,
        "log_index": location.log_index,
        "envelope": base64.b64encode(envelope).decode(),
    }


def _signed_by(envelope: bytes, key: bytes) -> bool:
    try:
        return key in parse_transaction(envelope).signer_keys
    except EncodingError:  # only decodable envelopes reach the tx index; refuse rather than guess
        return False
