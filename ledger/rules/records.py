"""Records on chain: fingerprints and metadata of government data, never the data.

A provider publishes a record about an enrolled citizen: the chain holds the
record id, subject, data type, version and a salted commitment to the payload
(see :func:`commit_record_payload`); the payload itself stays encrypted off the
replicated log. A correction publishes the next version and marks the previous
one superseded — it stays in state and history. A withdrawal ends the record.
Citizens file correction requests against their own records; the provider's
answer closes them.

State keys::

    record/<id>                  head: subject, type, provider, version, status
    record/<id>/<u32 version>    one version: commitment, as_of (the date the data describes), status, log index
    subject/<citizen key>/<id>   the citizen's record index (value: data type)
    provider-record/<org>/<id>   the provider's record index (value: data type)
    correction/<request id>      a correction request and, once answered, its outcome
    deceased/<citizen key>       id of the active death registration about the citizen
"""

from __future__ import annotations

import struct
from typing import Any

from ledger.crypto import sha256
from ledger.fields import Bytes, Optional, Text, UInt
from ledger.genesis import Role
from ledger.rules.catalogue import read_catalogue_entry
from ledger.rules.engine import Code, Context, RuleViolation, register
from ledger.rules.identity import citizen_key

__all__ = [
    "CONTEXT_RECORD_COMMITMENT",
    "DEATH_REGISTRATION_TYPE",
    "deceased_key",
    "provider_record_key",
    "RECORD_ID_SIZE",
    "commit_record_payload",
    "correction_key",
    "record_key",
    "record_version_key",
    "subject_record_key",
]

RECORD_ID_SIZE = 16
CONTEXT_RECORD_COMMITMENT = b"quancheng-ledger/v1/record\x00"
_U32 = struct.Struct(">I")
DEATH_REGISTRATION_TYPE = "civil.death_registration"


def commit_record_payload(salt: bytes, canonical_payload: bytes) -> bytes:
    """SHA-256(context ‖ salt(32) ‖ canonical payload bytes): binding, and hiding thanks to the salt."""
    if len(salt) != 32:
        raise ValueError("the record salt is 32 bytes")
    return sha256(CONTEXT_RECORD_COMMITMENT + salt + canonical_payload)


def record_key(record_id: bytes) -> bytes:
    return b"record/" + record_id


def record_version_key(record_id: bytes, version: int) -> bytes:
    return b"record/" + record_id + b"/" + _U32.pack(version)


def subject_record_key(subject: bytes, record_id: bytes) -> bytes:
    return b"subject/" + subject + b"/" + record_id


def correction_key(request_id: bytes) -> bytes:
    return b"correction/" + request_id


def provider_record_key(org: str, record_id: bytes) -> bytes:
    return b"provider-record/" + org.encode() + b"/" + record_id


def deceased_key(subject: bytes) -> bytes:
    return b"deceased/" + subject


PROVIDER = frozenset({Role.PROVIDER})


@register(
    "record.publish",
    {
        "record_id": Bytes(RECORD_ID_SIZE),
        "subject": Bytes(32),
        "type": Text(64, identifier=True),
        "as_of": UInt(),
        "commitment": Bytes(32),
    },
    PROVIDER,
)
def apply_record_publish(ctx: Context) -> None:
    record_id, subject, data_type = ctx.payload["record_id"], ctx.payload["subject"], ctx.payload["type"]
    entry = read_catalogue_entry(ctx, data_type)
    if entry["provider"] != ctx.signer.org:
        raise RuleViolation(Code.FORBIDDEN, f"{data_type!r} is provided by {entry['provider']!r}, not {ctx.signer.org!r}")
    if ctx.state.get(citizen_key(subject)) is None:
        raise RuleViolation(Code.NOT_FOUND, f"subject {subject.hex()} is not an enrolled citizen")
    if ctx.state.get(record_key(record_id)) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, f"record {record_id.hex()} exists; publish a correction instead")
    if data_type == DEATH_REGISTRATION_TYPE and ctx.state.get(deceased_key(subject)) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, "the subject's death is already registered; correct that record instead")
    ctx.state.put(
        record_key(record_id),
        {"subject": subject, "type": data_type, "provider": ctx.signer.org, "version": 1, "status": "active"},
    )
    _put_version(ctx, record_id, 1)
    ctx.state.put(subject_record_key(subject, record_id), data_type)
    ctx.state.put(provider_record_key(ctx.signer.org, record_id), data_type)
    if data_type == DEATH_REGISTRATION_TYPE:
        ctx.state.put(deceased_key(subject), record_id)


@register(
    "record.correct",
    {
        "record_id": Bytes(RECORD_ID_SIZE),
        "version": UInt(2, 2**32 - 1),
        "as_of": UInt(),
        "commitment": Bytes(32),
        "request_id": Optional(Bytes(RECORD_ID_SIZE)),
    },
    PROVIDER,
)
def apply_record_correct(ctx: Context) -> None:
    """Publish the next version; the previous one stays, marked superseded."""
    record_id = ctx.payload["record_id"]
    head = _own_active_record(ctx, record_id)
    if ctx.payload["version"] != head["version"] + 1:
        raise RuleViolation(Code.BAD_PAYLOAD, f"the next version of record {record_id.hex()} is {head['version'] + 1}")
    previous = ctx.state.read(record_version_key(record_id, head["version"]))
    ctx.state.put(record_version_key(record_id, head["version"]), {**previous, "status": "superseded"})
    _put_version(ctx, record_id, ctx.payload["version"])
    ctx.state.put(record_key(record_id), {**head, "version": ctx.payload["version"]})
    if "request_id" in ctx.payload:
        _close_request(ctx, ctx.payload["request_id"], record_id, "corrected", "", ctx.payload["version"])


@register("record.withdraw", {"record_id": Bytes(RECORD_ID_SIZE), "reason": Text(1000)}, PROVIDER)
def apply_record_withdraw(ctx: Context) -> None:
    record_id = ctx.payload["record_id"]
    head = _own_active_record(ctx, record_id)
    current = ctx.state.read(record_version_key(record_id, head["version"]))
    ctx.state.put(record_version_key(record_id, head["version"]), {**current, "status": "withdrawn"})
    ctx.state.put(record_key(record_id), {**head, "status": "withdrawn", "withdrawn_reason": ctx.payload["reason"]})
    if ctx.state.read(deceased_key(head["subject"])) == record_id:
        ctx.state.delete(deceased_key(head["subject"]))


@register(
    "correction.request",
    {"request_id": Bytes(RECORD_ID_SIZE), "record_id": Bytes(RECORD_ID_SIZE), "version": UInt(1, 2**32 - 1), "reason": Text(1000)},
)
def apply_correction_request(ctx: Context) -> None:
    """A citizen disputes one version of a record about them."""
    if not ctx.signer.is_citizen:
        raise RuleViolation(Code.FORBIDDEN, "only the citizen a record is about may ask to correct it")
    record_id = ctx.payload["record_id"]
    head = ctx.state.read(record_key(record_id))
    if head is None or head["subject"] != ctx.signer.key:
        raise RuleViolation(Code.NOT_FOUND, f"no record {record_id.hex()} about the signer")
    if head["status"] != "active" or ctx.payload["version"] != head["version"]:
        raise RuleViolation(Code.BAD_PAYLOAD, f"only the current version ({head['version']}) of an active record can be disputed")
    if ctx.state.get(correction_key(ctx.payload["request_id"])) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, "this correction request id is taken")
    ctx.state.put(
        correction_key(ctx.payload["request_id"]),
        {
            "record_id": record_id,
            "version": head["version"],
            "subject": ctx.signer.key,
            "provider": head["provider"],
            "reason": ctx.payload["reason"],
            "status": "open",
            "log_index": ctx.log_index,
        },
    )


@register(
    "correction.reject",
    {"request_id": Bytes(RECORD_ID_SIZE), "note": Text(1000)},
    PROVIDER,
)
def apply_correction_reject(ctx: Context) -> None:
    """The provider answers that the record is right, saying why (a correction answers with record.correct)."""
    request = ctx.state.read(correction_key(ctx.payload["request_id"]))
    if request is None:
        raise RuleViolation(Code.NOT_FOUND, "no such correction request")
    _close_request(ctx, ctx.payload["request_id"], request["record_id"], "rejected", ctx.payload["note"], None)


def _own_active_record(ctx: Context, record_id: bytes) -> dict[str, Any]:
    head = ctx.state.read(record_key(record_id))
    if head is None:
        raise RuleViolation(Code.NOT_FOUND, f"no record {record_id.hex()}")
    if head["provider"] != ctx.signer.org:
        raise RuleViolation(Code.FORBIDDEN, f"record {record_id.hex()} was published by {head['provider']!r}")
    if head["status"] != "active":
        raise RuleViolation(Code.BAD_PAYLOAD, f"record {record_id.hex()} is {head['status']}")
    return head


def _put_version(ctx: Context, record_id: bytes, version: int) -> None:
    ctx.state.put(
        record_version_key(record_id, version),
        {"commitment": ctx.payload["commitment"], "as_of": ctx.payload["as_of"], "status": "current", "log_index": ctx.log_index},
    )


def _close_request(
    ctx: Context, request_id: bytes, record_id: bytes, outcome: str, note: str, new_version: int | None
) -> None:
    request = ctx.state.read(correction_key(request_id))
    if request is None or request["record_id"] != record_id:
        raise RuleViolation(Code.NOT_FOUND, f"no correction request {request_id.hex()} for record {record_id.hex()}")
    if request["provider"] != ctx.signer.org:
        raise RuleViolation(Code.FORBIDDEN, "only the record's provider answers a correction request")
    if request["status"] != "open":
        raise RuleViolation(Code.ALREADY_EXISTS, "the correction request is already answered")
    answer: dict[str, Any] = {"status": outcome, "note": note, "answered_at": ctx.log_index}
    if new_version is not None:
        answer["new_version"] = new_version
    ctx.state.put(correction_key(request_id), {**request, **answer})
