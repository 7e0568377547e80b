"""Access records: every use of a citizen's data, and every refusal, on the ledger before any data leaves.

The custodian's node signs an ``access.record`` with its node key after
checking the consent, waits for it to commit, and only then releases the
data. The rule re-decides the access at its log position with
:func:`ledger.consent.refusal_reason` against the block time, checks that
every record released is the current, active version of a consented type
about the subject within the consent's data date range, and counts the use.
A refusal is recorded with its reason code and changes no consent.

An access with no ``consumer`` is a citizen opening their own data (purpose
``subject.view``): no consent applies, and the requester must be the subject.

The ``mode`` says what left the node: ``raw`` records, a ``masked`` view of them,
or only a ``computed`` result. A computed access carries its receipt in
``computation``: what ran (the pinned module's hash or the HE job's hash), on
which engine, with which parameters, the fuel it used and the hash of its
output — enough for a regulator to re-run a sandbox job and compare. A sandbox
module must be ``approved`` (``ledger.rules.modules``) and pinned by the consumer
that runs it. A computation the sandbox stopped is recorded as refused with
reason ``computation_failed`` and the sandbox's error code; nothing was released.

State keys (``<u64>`` is the access's log index, big-endian, so listings come in log order)::

    access/<u64>                      summary: outcome, reason, consumer, subject, consent, types, time
    subject-access/<subject>/<u64>    the subject's access log (value: empty)
    consumer-access/<org>/<u64>       the consumer's accesses (value: empty)
"""

from __future__ import annotations

import struct
from typing import Any

from ledger.crypto import sha256
from ledger.consent import ACCESS_REFUSALS, COMPUTATION_REFUSALS, CONSENT_ID_SIZE, MODES, record_use, refusal_reason
from ledger.fields import Bytes, Choice, ListOf, MapOf, Optional, Text, UInt
from ledger.rules.consents import consent_key
from ledger.rules.engine import Code, Context, RuleViolation, member_key, register
from ledger.rules.membership import custodian_of_node_key
from ledger.rules.modules import input_types, module_key
from ledger.rules.records import RECORD_ID_SIZE, record_key, record_version_key

__all__ = [
    "ACCESS_SPEC",
    "COMPUTATION_SPEC",
    "RESULT_CONTEXT",
    "access_result_hash",
    "SUBJECT_VIEW_PURPOSE",
    "access_key",
    "consumer_access_key",
    "subject_access_key",
]

_U64 = struct.Struct(">Q")
SUBJECT_VIEW_PURPOSE = "subject.view"
MAX_RECORDS_PER_ACCESS = 256

COMPUTATION_KINDS = frozenset({"sandbox", "he_score"})
COMPUTATION_SPEC = {
    "kind": Choice(COMPUTATION_KINDS),
    "code_hash": Bytes(32),  # sandbox: SHA-256 of the wasm module; he_score: SHA-256 of the job bundle
    "engine": Text(64),  # e.g. "wasmtime 50.0.1", "openfhe 1.6.1.0"
    "params": Bytes(max_size=1 << 17),  # canonical CBOR map: limits or parameter set, input layout (≤ 16×32 items)
    "fuel": Optional(UInt()),
    "output_hash": Optional(Bytes(32)),
    "error": Optional(Text(32, identifier=True)),
}

ACCESS_SPEC = {
    "requester": Bytes(32),
    "request_digest": Bytes(32),
    "subject": Bytes(32),
    "data_types": ListOf(Text(64, identifier=True), 1, 16, unique=True),
    "purpose": Text(64, identifier=True),
    "mode": Choice(frozenset(MODES)),
    "consumer": Optional(Text(64, identifier=True)),
    "consent_id": Optional(Bytes(CONSENT_ID_SIZE)),
    "records": ListOf(MapOf({"record_id": Bytes(RECORD_ID_SIZE), "version": UInt(1, 2**32 - 1)}), 0, MAX_RECORDS_PER_ACCESS),
    "outcome": Choice(frozenset({"granted", "refused"})),
    "result_hash": Optional(Bytes(32)),
    "reason": Optional(Choice(frozenset(ACCESS_REFUSALS))),
    "computation": Optional(MapOf(COMPUTATION_SPEC)),
}


RESULT_CONTEXT = b"quancheng-ledger/v1/access-result\x00"


def access_result_hash(result_plaintext: bytes) -> bytes:
    """What a granted access record commits to: SHA-256(context ‖ the canonical result bytes released)."""
    return sha256(RESULT_CONTEXT + result_plaintext)


def access_key(log_index: int) -> bytes:
    return b"access/" + _U64.pack(log_index)


def subject_access_key(subject: bytes, log_index: int) -> bytes:
    return b"subject-access/" + subject + b"/" + _U64.pack(log_index)


def consumer_access_key(org: str, log_index: int) -> bytes:
    return b"consumer-access/" + org.encode() + b"/" + _U64.pack(log_index)


@register("access.record", ACCESS_SPEC, needs_known_signer=False)
def apply_access_record(ctx: Context) -> None:
    access = ctx.payload
    if custodian_of_node_key(ctx.state, ctx.tx.signer) is None:
        raise RuleViolation(Code.FORBIDDEN, "access records are signed by a custodian organization's node key")
    granted = access["outcome"] == "granted"
    if granted != ("result_hash" in access) or granted == ("reason" in access):
        raise RuleViolation(Code.BAD_PAYLOAD, "a granted access carries result_hash, a refused one a reason")
    if not granted and access["records"]:
        raise RuleViolation(Code.BAD_PAYLOAD, "a refused access releases no records")
    _check_computation(ctx, access, granted)
    if "consumer" in access:
        _check_consumer_requester(ctx, access)
        if granted:
            _use_consent(ctx, access)
    else:
        if access["requester"] != access["subject"] or access["purpose"] != SUBJECT_VIEW_PURPOSE or "consent_id" in access:
            raise RuleViolation(Code.FORBIDDEN, f"an access without a consumer is the subject's own view ({SUBJECT_VIEW_PURPOSE})")
    if granted:
        _check_records(ctx, access)
    summary: dict[str, Any] = {
        key: access[key] for key in ("outcome", "subject", "data_types", "purpose", "mode", "consumer", "consent_id", "reason") if key in access
    }
    if "computation" in access:
        summary["computation"] = {key: access["computation"][key] for key in ("kind", "code_hash", "error") if key in access["computation"]}
    ctx.state.put(access_key(ctx.log_index), {**summary, "time": ctx.block_time, "records": len(access["records"])})
    ctx.state.put(subject_access_key(access["subject"], ctx.log_index), b"")
    if "consumer" in access:
        ctx.state.put(consumer_access_key(access["consumer"], ctx.log_index), b"")


def _check_computation(ctx: Context, access: dict[str, Any], granted: bool) -> None:
    """A computed access carries its receipt; a sandbox module must be approved and the consumer's own."""
    computation = access.get("computation")
    refused_computation = access.get("reason") in COMPUTATION_REFUSALS
    if (computation is not None) != (access["mode"] == "computed" and (granted or refused_computation)):
        raise RuleViolation(
            Code.BAD_PAYLOAD, "a computation receipt goes with a computed access that was granted or stopped, and only with one"
        )
    if computation is None:
        if refused_computation:
            raise RuleViolation(Code.BAD_PAYLOAD, f"reason {access['reason']!r} needs the computation receipt")
        return
    if "consumer" not in access:
        raise RuleViolation(Code.FORBIDDEN, "computations run for a consumer under its consent")
    if granted != ("output_hash" in computation) or granted == ("error" in computation):
        raise RuleViolation(Code.BAD_PAYLOAD, "a completed computation carries output_hash, a stopped one its error code")
    if computation["kind"] != "sandbox" or access.get("reason") == "module_not_approved":
        return
    module = ctx.state.read(module_key(computation["code_hash"]))
    if module is None or module["consumer"] != access["consumer"]:
        raise RuleViolation(Code.FORBIDDEN, "the module is not pinned by this consumer")
    if module["status"] != "approved":
        raise RuleViolation(Code.POLICY_NOT_MET, f"the module is {module['status']}, not approved by every provider of its data")
    if sorted(access["data_types"]) != input_types(module["inputs"]):
        raise RuleViolation(Code.BAD_PAYLOAD, "the access's data types are not exactly the ones the module reads")


def _check_consumer_requester(ctx: Context, access: dict[str, Any]) -> None:
    member = ctx.state.read(member_key(access["requester"]))
    if member is None or member.get("org") != access["consumer"]:
        raise RuleViolation(Code.FORBIDDEN, f"the requester is not an admin of {access['consumer']!r}")


def _use_consent(ctx: Context, access: dict[str, Any]) -> None:
    if "consent_id" not in access:
        raise RuleViolation(Code.BAD_PAYLOAD, "a consumer's granted access names its consent")
    consent = ctx.state.read(consent_key(access["consent_id"]))
    reason = refusal_reason(
        consent,
        consumer=access["consumer"],
        subject=access["subject"],
        data_types=access["data_types"],
        mode=access["mode"],
        now_ms=ctx.block_time,
    )
    if reason is not None:
        raise RuleViolation(Code.POLICY_NOT_MET, f"the consent does not allow this access at block time: {reason}")
    if access["purpose"] != consent["terms"]["purpose"]["code"]:
        raise RuleViolation(Code.BAD_PAYLOAD, "the access purpose differs from the consent's purpose")
    ctx.state.put(consent_key(access["consent_id"]), record_use(consent, ctx.block_time, ctx.log_index))


def _check_records(ctx: Context, access: dict[str, Any]) -> None:
    """Every released record is the current active version of an asked-for type about the subject,
    and — under a consent — its ``as_of`` lies within the consent's data date range."""
    terms = None
    if "consent_id" in access:
        terms = ctx.state.read(consent_key(access["consent_id"]))["terms"]
    seen: set[bytes] = set()
    for position, ref in enumerate(access["records"]):
        record_id = ref["record_id"]
        head = ctx.state.read(record_key(record_id))
        where = f"records[{position}] ({record_id.hex()})"
        if record_id in seen:
            raise RuleViolation(Code.BAD_PAYLOAD, f"{where} is listed twice")
        seen.add(record_id)
        if head is None or head["subject"] != access["subject"] or head["type"] not in access["data_types"]:
            raise RuleViolation(Code.FORBIDDEN, f"{where} is not a record of an asked-for type about the subject")
        if head["status"] != "active" or head["version"] != ref["version"]:
            raise RuleViolation(Code.WRONG_STATE, f"{where} is not the current version of an active record")
        if terms is not None:
            as_of = ctx.state.read(record_version_key(record_id, ref["version"]))["as_of"]
            if not terms["data_from"] <= as_of <= terms["data_until"]:
                raise RuleViolation(Code.FORBIDDEN, f"{where} lies outside the consent's data date range")
