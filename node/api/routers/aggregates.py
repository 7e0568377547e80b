"""Aggregates under a joint key: register the key, request a statistic, file shares, collect the result.

``POST /v1/keysets``                 a party registers a joint public key (bytes + signed threshold.keyset)
``GET /v1/keysets/{id}``             the joint key's bytes and parties (any member: parties encrypt nothing
                                     with it, but must check it is the key they built)
``POST /v1/aggregates``              a consumer or regulator orders its aggregate.request; the node spends
                                     the budget, computes, and records aggregate.computed (node/aggregates.py)
``GET /v1/aggregates/{id}``          status and receipt; the result ciphertexts for the requester and the
                                     parties; every party's share for the requester once all are on the ledger
``POST /v1/aggregates/{id}/shares``  a party files its partial decryption (bytes + signed aggregate.share)
``GET /v1/privacy/budgets/{type}``   a data type's ε caps and what was spent (each consumer's spending for the
                                     type's provider and auditors; a consumer sees its own)
"""

from __future__ import annotations

import base64
from typing import Callable

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger import codec
from ledger.crypto import sha256
from ledger.genesis import Role
from ledger.rules.aggregates import aggregate_key, budget_key, keyset_key, spent_key
from ledger.rules.catalogue import catalogue_key
from ledger.tx import Transaction
from node.api.auth import AUDITOR_ROLES, CallerDep, require_role
from node.api.dependencies import NodeDep
from node.api.errors import ApiError
from node.api.parsing import parse_base64, parse_envelope, parse_hex
from node.api.routers.transactions import result_json
from node.queries import to_json
from node.services import NodeServices
from privacy.he.errors import HeError
from privacy.he.threshold import JointKey

router = APIRouter(tags=["aggregates"])

MAX_BLOB_BYTES = 64 << 20


class BlobTransaction(BaseModel):
    transaction: str = Field(description="base64 of the signed transaction naming the bytes by SHA-256")
    data: str = Field(description="base64 of the bytes (joint key or share)")
    timeout_ms: int = Field(30_000, ge=1, le=120_000)


def _store_and_order(
    node: NodeServices, body: BlobTransaction, tx_type: str, hash_field: str, check: Callable[[Transaction, bytes], None] | None = None
) -> dict:
    """Keep the bytes the transaction names by hash in the vault (``check``-ed first), then order the transaction."""
    envelope, data = parse_base64(body.transaction, "transaction"), parse_base64(body.data, "data")
    if len(data) > MAX_BLOB_BYTES:
        raise ApiError("payload_too_large", f"data: at most {MAX_BLOB_BYTES} bytes")
    tx = parse_envelope(envelope, {tx_type})
    if tx.payload.get(hash_field) != sha256(data):
        raise ApiError("invalid_argument", f"{hash_field}: is not SHA-256 of the data sent")
    if check is not None:
        check(tx, data)
    node.vault.put_blob(data)
    return result_json(node.peer.submit([envelope], timeout_s=body.timeout_ms / 1000)[0])


@router.post("/v1/keysets")
def register_keyset(body: BlobTransaction, caller: CallerDep, node: NodeDep) -> dict:
    if caller.is_citizen:
        raise ApiError("forbidden", "joint keys are registered by member organizations")
    return _store_and_order(node, body, "threshold.keyset", "keyset_id", _check_joint_key)


def _check_joint_key(tx: Transaction, data: bytes) -> None:
    """The bytes are a joint key under the parameter set and parties the transaction names."""
    try:
        joint = JointKey.from_bytes(data)
    except HeError as exc:
        raise ApiError("invalid_argument", f"data: {exc.message}") from None
    if joint.params != tx.payload.get("params") or list(joint.parties) != tx.payload.get("parties"):
        raise ApiError("invalid_argument", "data: the joint key's parameter set or parties differ from the transaction's")


@router.get("/v1/keysets/{keyset_id}")
def get_keyset(keyset_id: str, caller: CallerDep, node: NodeDep) -> dict:
    if caller.is_citizen:
        raise ApiError("forbidden", "joint keys are read by member organizations")
    raw_id = parse_hex(keyset_id, "keyset_id", 32)
    keyset = node.peer.store.read_state(keyset_key(raw_id))
    data = node.vault.get_blob(raw_id)
    if keyset is None or data is None:
        raise ApiError("not_found", f"no joint key {keyset_id}")
    return {**keyset, "keyset_id": keyset_id, "joint_key": base64.b64encode(data).decode()}


class AggregateBody(BaseModel):
    transaction: str = Field(description="base64 of the signed aggregate.request")
    timeout_ms: int = Field(60_000, ge=1, le=300_000)


@router.post("/v1/aggregates")
def request_aggregate(body: AggregateBody, caller: CallerDep, node: NodeDep) -> dict:
    require_role(caller, Role.CONSUMER, Role.REGULATOR)
    computed = node.aggregates.compute(parse_base64(body.transaction, "transaction"), timeout_s=body.timeout_ms / 1000)
    return {"request": result_json(computed.request), "computed": result_json(computed.computed), "result_hash": computed.result_hash.hex()}


@router.get("/v1/aggregates/{aggregate_id}")
def get_aggregate(aggregate_id: str, caller: CallerDep, node: NodeDep) -> dict:
    aggregate = node.peer.store.read_state(aggregate_key(parse_hex(aggregate_id, "aggregate_id", 16)))
    is_requester = aggregate is not None and caller.org == aggregate["requester"]
    is_party = aggregate is not None and caller.org in aggregate["parties"]
    if aggregate is None or not (is_requester or is_party or caller.has_role(*AUDITOR_ROLES)):
        raise ApiError("not_found", f"no aggregate {aggregate_id} visible to the caller")
    answer = to_json(aggregate)
    receipt = aggregate.get("receipt", {})
    if "result_hash" in receipt and (is_requester or is_party):
        answer["result"] = base64.b64encode(node.vault.get_blob(receipt["result_hash"]) or b"").decode()
    if aggregate["status"] == "released" and is_requester:
        answer["share_data"] = {
            share["party"]: base64.b64encode(node.vault.get_blob(share["share_hash"]) or b"").decode() for share in aggregate["shares"]
        }
    return answer


@router.post("/v1/aggregates/{aggregate_id}/shares")
def file_share(aggregate_id: str, body: BlobTransaction, caller: CallerDep, node: NodeDep) -> dict:
    if caller.is_citizen:
        raise ApiError("forbidden", "shares are filed by the joint key's parties")
    raw_id = parse_hex(aggregate_id, "aggregate_id", 16)
    named = parse_envelope(parse_base64(body.transaction, "transaction"), {"aggregate.share"}).payload.get("aggregate_id")
    if named != raw_id:
        raise ApiError("invalid_argument", "transaction: names another aggregate than the path")
    return _store_and_order(node, body, "aggregate.share", "share_hash")


@router.get("/v1/privacy/budgets/{data_type}")
def get_budget(data_type: str, caller: CallerDep, node: NodeDep) -> dict:
    if caller.is_citizen:
        raise ApiError("forbidden", "privacy budgets are read by member organizations")
    store = node.peer.store
    budget = store.read_state(budget_key(data_type))
    if budget is None:
        raise ApiError("not_found", f"no privacy budget is set for {data_type!r}")
    provider = (store.read_state(catalogue_key(data_type)) or {}).get("provider")
    if caller.has_role(*AUDITOR_ROLES) or caller.org == provider:
        prefix = spent_key(data_type, "")
        spent = {key[len(prefix) :].decode(): codec.decode(value) for key, value in store.state_scan(prefix)}
    else:
        spent = {caller.org: store.read_state(spent_key(data_type, caller.org)) or 0}
    return {**budget, "spent": spent}
