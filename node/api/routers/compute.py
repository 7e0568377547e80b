"""Computed results instead of data: modules, computation jobs, and the regulator's re-run.

``POST /v1/modules``          a consumer pins a WebAssembly module (bytes + signed module.submit);
                              the node checks it and records the verdict (module.check)
``GET /v1/modules/{hash}``    a pinned module's metadata, check and approvals (any member, any citizen)
``POST /v1/compute``          a consumer runs an approved module or an HE scoring job over one citizen's
                              records under a consent in ``computed`` (or wider) mode; the answer is shaped
                              like ``POST /v1/access``'s and carries only the output
``POST /v1/compute/replay``   a regulator re-runs the sandbox job recorded at a log index on the same
                              record versions and gets the output hash and fuel to compare with the receipt
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger import codec
from ledger.errors import EncodingError
from ledger.genesis import Role
from ledger.rules import Code, RuleViolation
from ledger.rules.catalogue import catalogue_key
from ledger.rules.modules import INPUT_LAYOUT, check_input_layout, module_key
from ledger.tx import parse_transaction
from node.access import AccessRequest
from node.api.auth import AUDITOR_ROLES, CallerDep, require_role
from node.api.dependencies import NodeDep
from node.api.errors import ApiError
from node.api.parsing import parse_base64, parse_hex
from node.api.routers.access import granted_json
from node.api.routers.transactions import result_json
from node.queries import to_json
from node.compute import HeScoringJob, ModuleNotApproved, SandboxJob, sandbox_job
from privacy.sandbox import SandboxLimits

router = APIRouter(tags=["compute"])

SANDBOX_LIMITS = SandboxLimits()


class PinRequest(BaseModel):
    transaction: str = Field(description="base64 of the consumer's signed module.submit")
    wasm: str = Field(description="base64 of the WebAssembly module (at most 1 MiB)")
    timeout_ms: int = Field(30_000, ge=1, le=120_000)


@router.post("/v1/modules")
def pin_module(body: PinRequest, caller: CallerDep, node: NodeDep) -> dict:
    require_role(caller, Role.CONSUMER)
    pinned = node.modules.pin(parse_base64(body.transaction, "transaction"), parse_base64(body.wasm, "wasm"), timeout_s=body.timeout_ms / 1000)
    if pinned.error is not None:
        recorded = pinned.check is not None and pinned.check.status == "committed"
        where = f" (refusal recorded at log index {pinned.check.log_index})" if recorded else " (the refusal could not be recorded yet)"
        raise ApiError("module_refused", f"{pinned.error}{where}")
    return {"submit": result_json(pinned.submit), "check": None if pinned.check is None else result_json(pinned.check)}


@router.get("/v1/modules/{module_hash}")
def get_module(module_hash: str, caller: CallerDep, node: NodeDep) -> dict:
    module = node.peer.store.read_state(module_key(parse_hex(module_hash, "module_hash", 32)))
    if module is None:
        raise ApiError("not_found", f"no module {module_hash} is pinned")
    return {"module_hash": module_hash, **to_json(module)}


class JobBody(BaseModel):
    kind: Literal["sandbox", "he_score"]
    module_hash: str | None = Field(None, description="sandbox: hex SHA-256 of the approved module")
    bundle: str | None = Field(None, description="he_score: base64 of the encrypted model bundle (docs/HE.md)")
    inputs: list[list[dict[str, str]]] | None = Field(None, description="he_score: the input layout the features follow")


class ComputeBody(BaseModel):
    subject: str = Field(description="hex key of the citizen")
    consent_id: str = Field(description="hex consent id")
    recipient_key: str = Field(description="hex X25519 public key the output is sealed to")
    job: JobBody
    timeout_ms: int = Field(30_000, ge=1, le=120_000)


@router.post("/v1/compute")
def compute(body: ComputeBody, caller: CallerDep, node: NodeDep) -> dict:
    require_role(caller, Role.CONSUMER)
    refusal = None
    if body.job.kind == "sandbox":
        if body.job.module_hash is None:
            raise ApiError("invalid_argument", "job.module_hash: a sandbox job names its module")
        module_hash = parse_hex(body.job.module_hash, "job.module_hash", 32)
        module = node.peer.store.read_state(module_key(module_hash))
        if module is None:
            raise ApiError("not_found", f"no module {body.job.module_hash} is pinned")
        try:
            job = sandbox_job(node.peer.store, node.vault, module_hash, caller.org, SANDBOX_LIMITS)
        except ModuleNotApproved as exc:  # recorded as a refusal naming the module
            job = SandboxJob(module_hash, b"", module["inputs"], module["output"], SANDBOX_LIMITS)
            refusal = ("module_not_approved", str(exc))
    else:
        if body.job.bundle is None or body.job.inputs is None:
            raise ApiError("invalid_argument", "job: an he_score job carries bundle and inputs")
        try:
            INPUT_LAYOUT(body.job.inputs, "job.inputs")
            check_input_layout(body.job.inputs, lambda data_type: node.peer.store.read_state(catalogue_key(data_type)))
        except EncodingError as exc:
            raise ApiError("invalid_argument", str(exc)) from None
        except RuleViolation as exc:
            raise ApiError("invalid_argument", f"job.inputs: {exc}") from None
        bundle = parse_base64(body.job.bundle, "job.bundle")
        try:
            codec.decode(bundle)["params"]
        except (EncodingError, KeyError, TypeError):
            raise ApiError("invalid_argument", "job.bundle: not an encrypted model bundle (canonical CBOR map with params)") from None
        job = HeScoringJob(bundle, body.job.inputs)
    request = AccessRequest(
        requester=caller.key,
        consumer=caller.org,
        request_digest=caller.request_digest,
        subject=parse_hex(body.subject, "subject", 32),
        consent_id=parse_hex(body.consent_id, "consent_id", 16),
        data_types=None,
        recipient_key=parse_hex(body.recipient_key, "recipient_key", 32),
        mode="computed",
        computation=job,
        refusal=refusal,
    )
    granted = node.access.access(request, timeout_s=body.timeout_ms / 1000)
    return granted_json(node, granted)


class ReplayBody(BaseModel):
    log_index: int = Field(ge=0, description="log index of a granted sandbox access record")


@router.post("/v1/compute/replay")
def replay(body: ReplayBody, caller: CallerDep, node: NodeDep) -> dict:
    """Regulators: run the recorded module again on the recorded record versions; nothing but hashes leaves."""
    require_role(caller, *AUDITOR_ROLES)
    store = node.peer.store
    leaf = store.leaf(body.log_index) if body.log_index < store.head().tree_size else None
    tx = parse_transaction(leaf) if leaf is not None else None
    if tx is None or tx.type != "access.record" or tx.payload.get("computation", {}).get("kind") != "sandbox" or tx.payload["outcome"] != "granted":
        raise ApiError("not_found", f"log index {body.log_index} is not a granted sandbox computation")
    if store.tx_location(tx.tx_id).code != Code.VALID:
        raise ApiError("not_found", f"log index {body.log_index} is marked invalid: nothing was computed")
    receipt = tx.payload["computation"]
    params = codec.decode(receipt["params"])
    limits = SandboxLimits(fuel=params["fuel_limit"], memory_bytes=params["memory_bytes"])
    module = store.read_state(module_key(receipt["code_hash"]))
    wasm = node.vault.get_blob(receipt["code_hash"])
    if module is None or wasm is None:
        raise ApiError("unavailable", "the module's pin or bytes are not on this node")
    output = node.access.replay(tx.payload, SandboxJob(receipt["code_hash"], wasm, module["inputs"], module["output"], limits))
    return {
        "log_index": body.log_index,
        "output_hash": output.output_hash.hex(),
        "fuel": output.fuel,
        "recorded_output_hash": receipt["output_hash"].hex(),
        "recorded_fuel": receipt.get("fuel"),
        "matches": output.output_hash == receipt["output_hash"] and output.fuel == receipt.get("fuel"),
    }
