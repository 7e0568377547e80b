"""Consent artefacts: their terms, their lifecycle, and the one function that decides an access.

A consent is requested by a consumer (its terms are the request's payload and
never change afterwards — a wider scope is a new consent) and becomes
``active`` only when the citizen signs a grant over the hash of those terms.
The stored lifecycle status moves::

    requested ──grant──▶ active ⇄ paused        (pause / resume by the grantor)
        │                  │  │
        └─reject─▶ rejected │  └─ last allowed use ─▶ exhausted
                            └──────── revoke ─────▶ revoked   (also from paused or requested)

``expired`` is never written: it is what any non-final status *is* once the
clock passes ``valid_until`` (:func:`effective_status`), so expiry needs no
transaction and cannot be forgotten.

:func:`refusal_reason` is the single decision procedure for an access. The
custodian node calls it before answering, the ``access.record`` rule calls it
again at the access's log position, and the regulator's audit calls it while
replaying the log — one definition, three independent evaluations.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ledger import codec
from ledger.crypto import sha256

__all__ = [
    "ACCESS_REFUSALS",
    "COMPUTATION_REFUSALS",
    "CONSENT_ID_SIZE",
    "CONTEXT_CONSENT_TERMS",
    "FINAL_STATUSES",
    "MODES",
    "NEXT_OF_KIN_TYPES",
    "PERIOD_MS",
    "REFUSAL_REASONS",
    "effective_status",
    "record_use",
    "refusal_reason",
    "terms_hash",
    "window_index",
]

CONSENT_ID_SIZE = 16
CONTEXT_CONSENT_TERMS = b"quancheng-ledger/v1/consent-terms\x00"

PERIOD_MS = {"hour": 3_600_000, "day": 86_400_000, "week": 7 * 86_400_000}
FINAL_STATUSES = frozenset({"rejected", "revoked", "exhausted"})

# How much of the data an access reveals, most first. A consent's mode is the most it allows:
# a ``raw`` consent also allows a masked view or a computed result, a ``masked`` one a computed
# result, a ``computed`` one only a result computed over the records (never the records).
MODES: tuple[str, ...] = ("raw", "masked", "computed")

# PIPL art. 49: after a death, close relatives may exercise the deceased's rights for their
# own lawful interests. Here that is narrowed to the proof of death an insurer needs.
NEXT_OF_KIN_TYPES = frozenset({"civil.death_registration"})

# Stable reason codes of a refused access: on the ledger, in API errors, in audit reports.
REFUSAL_REASONS: Mapping[str, str] = {
    "no_consent": "no consent with this id names this consumer and subject",
    "consent_pending": "the consent was requested but the citizen has not granted it",
    "consent_rejected": "the citizen rejected the consent request",
    "consent_paused": "the citizen paused the consent",
    "consent_revoked": "the citizen revoked the consent",
    "consent_expired": "the consent's validity period has ended",
    "consent_not_yet_valid": "the consent's validity period has not started",
    "exhausted": "the consent's use limit is reached",
    "frequency": "the consent's frequency limit is reached for the current period",
    "scope": "a requested data type is not covered by the consent",
    "mode": "the consent does not allow this mode of access (raw, then masked, then computed: the consent's mode is the most it allows)",
}

# Not consent decisions: why the custodian refused an access the consent allowed, because the
# computation asked for may not run or was stopped. Recorded like the others.
COMPUTATION_REFUSALS: Mapping[str, str] = {
    "module_not_approved": "the computation module is not pinned, checked and approved by every provider of the data it reads",
    "computation_failed": "the computation was stopped: a sandbox limit, an input it could not be given, or an HE range check (see the access record's computation error)",
}
ACCESS_REFUSALS: Mapping[str, str] = {**REFUSAL_REASONS, **COMPUTATION_REFUSALS}


def terms_hash(terms: Mapping[str, Any]) -> bytes:
    """SHA-256(context ‖ canonical CBOR of the request payload): what the citizen's grant signs."""
    return sha256(CONTEXT_CONSENT_TERMS + codec.encode(dict(terms)))


def effective_status(consent: Mapping[str, Any], now_ms: int) -> str:
    """The stored status, or ``expired`` once ``valid_until`` has passed for a non-final one."""
    status: str = consent["status"]
    if status not in FINAL_STATUSES and now_ms >= consent["terms"]["valid_until"]:
        return "expired"
    return status


def window_index(consent: Mapping[str, Any], now_ms: int) -> int:
    """The fixed frequency window ``now_ms`` falls in (windows are aligned to the Unix epoch)."""
    return now_ms // PERIOD_MS[consent["terms"]["frequency"]["per"]]


def refusal_reason(
    consent: Mapping[str, Any] | None,
    *,
    consumer: str,
    subject: bytes,
    data_types: Sequence[str],
    mode: str,
    now_ms: int,
) -> str | None:
    """None when ``consumer`` may use ``data_types`` of ``subject`` in ``mode`` now, else a reason code.

    ``consent`` is the stored consent state (terms + lifecycle + usage) as the
    ``consent.*`` and ``access.record`` rules maintain it.
    """
    if consent is None or consent["consumer"] != consumer or consent["terms"]["subject"] != subject:
        return "no_consent"
    terms = consent["terms"]
    status = effective_status(consent, now_ms)
    if status != "active":
        return {
            "requested": "consent_pending",
            "rejected": "consent_rejected",
            "paused": "consent_paused",
            "revoked": "consent_revoked",
            "expired": "consent_expired",
            "exhausted": "exhausted",
        }[status]
    if now_ms < terms["valid_from"]:
        return "consent_not_yet_valid"
    if not set(data_types) <= set(terms["data_types"]):
        return "scope"
    if MODES.index(mode) < MODES.index(terms["mode"]):
        return "mode"
    if consent["uses"] >= terms["max_uses"]:
        return "exhausted"
    if consent["window"] == window_index(consent, now_ms) and consent["window_uses"] >= terms["frequency"]["max"]:
        return "frequency"
    return None


def record_use(consent: Mapping[str, Any], now_ms: int, log_index: int) -> dict[str, Any]:
    """The consent after one granted access at ``now_ms``: counters moved, ``exhausted`` at the limit."""
    window = window_index(consent, now_ms)
    used = {
        **consent,
        "uses": consent["uses"] + 1,
        "last_use": log_index,
        "window": window,
        "window_uses": consent["window_uses"] + 1 if consent["window"] == window else 1,
    }
    if used["uses"] >= consent["terms"]["max_uses"]:
        used["status"] = "exhausted"
    return used
