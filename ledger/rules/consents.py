"""Consents on chain: a consumer's request, the citizen's signed answer, and its lifecycle.

The request's payload is the artefact (``terms``) and is stored unchanged; the
grant signs :func:`ledger.consent.terms_hash` of exactly those terms, plus —
when any requested type is sensitive (PIPL art. 28) — a separate confirmation
listing those types. Lifecycle transitions are in :mod:`ledger.consent`.

State keys::

    consent/<id>                         terms, consumer, grantor, status, usage counters
    subject-consent/<subject>/<id>       the subject's consents (value: consumer org)
    grantor-consent/<grantor>/<id>       consents a citizen answers for (when not the subject)
    consumer-consent/<org>/<id>          the consumer's consents (value: subject)
"""

from __future__ import annotations

from typing import Any

from ledger.consent import CONSENT_ID_SIZE, FINAL_STATUSES, MODES, NEXT_OF_KIN_TYPES, PERIOD_MS, effective_status, terms_hash
from ledger.fields import Bytes, Choice, ListOf, MapOf, Optional, Text, UInt
from ledger.genesis import Role
from ledger.rules.catalogue import read_catalogue_entry
from ledger.rules.engine import Code, Context, RuleViolation, register
from ledger.rules.identity import citizen_key, kin_key
from ledger.rules.records import deceased_key

__all__ = [
    "MAX_CONSENT_PERIOD_MS",
    "TERMS_SPEC",
    "consent_key",
    "consumer_consent_key",
    "grantor_consent_key",
    "subject_consent_key",
]

MAX_CONSENT_PERIOD_MS = 366 * 86_400_000
LEGAL_BASES = frozenset({"pipl-13.1-consent", "pipl-49-next-of-kin"})

TERMS_SPEC = {
    "consent_id": Bytes(CONSENT_ID_SIZE),
    "subject": Bytes(32),
    "grantor": Optional(Bytes(32)),
    "data_types": ListOf(Text(64, identifier=True), 1, 16, unique=True),
    "purpose": MapOf({"code": Text(64, identifier=True), "text": Text(500)}),
    "mode": Choice(frozenset(MODES)),
    "data_from": UInt(),
    "data_until": UInt(),
    "valid_from": UInt(),
    "valid_until": UInt(),
    "max_uses": UInt(1, 1_000_000),
    "frequency": MapOf({"max": UInt(1, 1_000_000), "per": Choice(frozenset(PERIOD_MS))}),
    "data_life_days": UInt(0, 3650),
    "legal_basis": Choice(LEGAL_BASES),
    "contact": Text(256),
}
CONSENT_REF = {"consent_id": Bytes(CONSENT_ID_SIZE)}


def consent_key(consent_id: bytes) -> bytes:
    return b"consent/" + consent_id


def subject_consent_key(subject: bytes, consent_id: bytes) -> bytes:
    return b"subject-consent/" + subject + b"/" + consent_id


def grantor_consent_key(grantor: bytes, consent_id: bytes) -> bytes:
    return b"grantor-consent/" + grantor + b"/" + consent_id


def consumer_consent_key(org: str, consent_id: bytes) -> bytes:
    return b"consumer-consent/" + org.encode() + b"/" + consent_id


@register("consent.request", TERMS_SPEC, frozenset({Role.CONSUMER}))
def apply_consent_request(ctx: Context) -> None:
    """A consumer asks a citizen for a consent; the terms are fixed from here on."""
    terms = ctx.payload
    consent_id, subject = terms["consent_id"], terms["subject"]
    if ctx.state.get(consent_key(consent_id)) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, f"consent id {consent_id.hex()} is taken")
    if ctx.state.get(citizen_key(subject)) is None:
        raise RuleViolation(Code.NOT_FOUND, f"subject {subject.hex()} is not an enrolled citizen")
    if not terms["valid_from"] < terms["valid_until"] <= terms["valid_from"] + MAX_CONSENT_PERIOD_MS:
        raise RuleViolation(Code.BAD_PAYLOAD, "valid_from < valid_until, for at most 366 days")
    if terms["valid_until"] <= ctx.block_time:
        raise RuleViolation(Code.BAD_PAYLOAD, "valid_until is already past")
    if terms["data_from"] > terms["data_until"]:
        raise RuleViolation(Code.BAD_PAYLOAD, "data_from is after data_until")
    sensitive = sorted(
        data_type for data_type in terms["data_types"] if read_catalogue_entry(ctx, data_type)["sensitivity"] == "sensitive"
    )
    grantor = _check_grantor(ctx, terms)
    ctx.state.put(
        consent_key(consent_id),
        {
            "terms": terms,
            "terms_hash": terms_hash(terms),
            "consumer": ctx.signer.org,
            "grantor": grantor,
            "sensitive_types": sensitive,
            "status": "requested",
            "requested_at": ctx.log_index,
            "uses": 0,
            "window": 0,
            "window_uses": 0,
        },
    )
    ctx.state.put(subject_consent_key(subject, consent_id), ctx.signer.org)
    ctx.state.put(consumer_consent_key(ctx.signer.org, consent_id), subject)
    if grantor != subject:
        ctx.state.put(grantor_consent_key(grantor, consent_id), ctx.signer.org)


def _check_grantor(ctx: Context, terms: dict[str, Any]) -> bytes:
    """The subject answers for themselves; after a registered death, a registered close relative
    may answer for the death registration only (PIPL art. 49)."""
    grantor = terms.get("grantor", terms["subject"])
    next_of_kin = grantor != terms["subject"]
    if next_of_kin != (terms["legal_basis"] == "pipl-49-next-of-kin"):
        raise RuleViolation(Code.BAD_PAYLOAD, "legal_basis is pipl-49-next-of-kin exactly when a grantor other than the subject is named")
    if next_of_kin:
        if not set(terms["data_types"]) <= NEXT_OF_KIN_TYPES:
            raise RuleViolation(Code.FORBIDDEN, f"a relative may consent only to {sorted(NEXT_OF_KIN_TYPES)}")
        if ctx.state.get(kin_key(terms["subject"], grantor)) is None:
            raise RuleViolation(Code.FORBIDDEN, "the grantor is not a registered close relative of the subject")
        if ctx.state.get(deceased_key(terms["subject"])) is None:
            raise RuleViolation(Code.FORBIDDEN, "no death registration of the subject is on the ledger")
    return grantor


@register(
    "consent.grant",
    {**CONSENT_REF, "terms_hash": Bytes(32), "sensitive_confirmation": Optional(ListOf(Text(64, identifier=True), 1, 16, unique=True))},
)
def apply_consent_grant(ctx: Context) -> None:
    consent = _consent_answered_by_signer(ctx, "requested")
    if ctx.payload["terms_hash"] != consent["terms_hash"]:
        raise RuleViolation(Code.BAD_PAYLOAD, "terms_hash does not match the requested terms")
    confirmed = sorted(ctx.payload.get("sensitive_confirmation", []))
    if confirmed != consent["sensitive_types"]:
        raise RuleViolation(
            Code.POLICY_NOT_MET,
            f"sensitive types {consent['sensitive_types']} need their own explicit confirmation (got {confirmed})",
        )
    _set_status(ctx, consent, "active", granted_at=ctx.log_index)


@register("consent.reject", {**CONSENT_REF, "reason": Optional(Text(500))})
def apply_consent_reject(ctx: Context) -> None:
    _set_status(ctx, _consent_answered_by_signer(ctx, "requested"), "rejected")


@register("consent.pause", CONSENT_REF)
def apply_consent_pause(ctx: Context) -> None:
    _set_status(ctx, _consent_answered_by_signer(ctx, "active"), "paused")


@register("consent.resume", CONSENT_REF)
def apply_consent_resume(ctx: Context) -> None:
    _set_status(ctx, _consent_answered_by_signer(ctx, "paused"), "active")


@register("consent.revoke", CONSENT_REF)
def apply_consent_revoke(ctx: Context) -> None:
    """Withdrawal must be easy (PIPL art. 15): from requested, active or paused, while not expired."""
    _set_status(ctx, _consent_answered_by_signer(ctx, "requested", "active", "paused"), "revoked", revoked_at=ctx.log_index)


def _consent_answered_by_signer(ctx: Context, *allowed: str) -> dict[str, Any]:
    if ctx.signer is None or not ctx.signer.is_citizen:
        raise RuleViolation(Code.FORBIDDEN, f"{ctx.tx.type} is signed by the citizen who answers for the consent")
    consent = ctx.state.read(consent_key(ctx.payload["consent_id"]))
    if consent is None or consent["grantor"] != ctx.signer.key:
        raise RuleViolation(Code.NOT_FOUND, f"no consent {ctx.payload['consent_id'].hex()} answered by the signer")
    status = effective_status(consent, ctx.block_time)
    if status not in allowed:
        raise RuleViolation(Code.WRONG_STATE, f"{ctx.tx.type} needs a consent that is {' or '.join(allowed)}; it is {status}")
    return consent


def _set_status(ctx: Context, consent: dict[str, Any], status: str, **marks: int) -> None:
    assert status in FINAL_STATUSES or status in {"active", "paused"}
    ctx.state.put(consent_key(consent["terms"]["consent_id"]), {**consent, **marks, "status": status})
