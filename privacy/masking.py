"""Masked views of records, for consents that allow a summary view (mode ``masked``).

A masked view is what a clerk may see on a screen: enough to recognise and
check a record, not enough to copy it into another database. Identifiers and
plate numbers keep a few characters at each end, names their first character,
places their district, dates their month; amounts become ranges. Each data
type has a profile (one rule per field); a type without one falls back to a
rule per field kind, so a new catalogue type is never released unmasked.

Rules (``apply_rule``):

``keep``            the value as is (counts, years, booleans)
``partial:<a>,<b>`` text: the first ``a`` and last ``b`` characters, ``*`` for each one between
``prefix:<n>``      text: the first ``n`` characters, then ``…``
``month``           a ``YYYY-MM-DD`` date: its ``YYYY-MM``
``bucket:<w>``      an amount in fen: ``{"from": lo, "to": hi}`` with ``lo`` a multiple of ``w`` and ``hi = lo + w``
``series:<w>``      a monthly series: each month's amount bucketed by ``w``

The profile set is versioned (:data:`MASKING_VERSION`); the version goes into
the released result, whose hash is on the ledger.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["DEFAULT_BY_KIND", "MASKING_VERSION", "PROFILES", "apply_rule", "mask_payload"]

MASKING_VERSION = "mask-v1"
_YUAN = 100

DEFAULT_BY_KIND: Mapping[str, str] = {
    "identifier": "partial:2,2",
    "text": "prefix:1",
    "integer": "keep",
    "boolean": "keep",
    "amount": f"bucket:{10_000 * _YUAN}",
    "date": "month",
    "month": "keep",
    "series": f"series:{1_000 * _YUAN}",
}

PROFILES: Mapping[str, Mapping[str, str]] = {
    "vehicle.registration": {"plate": "partial:2,2", "vehicle_type": "keep", "brand": "keep", "registered": "month", "status": "keep"},
    "traffic.violation": {"plate": "partial:2,2", "count": "keep", "points": "keep", "fines": f"bucket:{500 * _YUAN}", "latest": "prefix:10"},
    "civil.death_registration": {"date_of_death": "month", "place": "prefix:6", "certificate_no": "partial:4,0"},
    "medical.claims": {"year": "keep", "visits": "keep", "total_cost": f"bucket:{5_000 * _YUAN}", "reimbursed": f"bucket:{5_000 * _YUAN}"},
    "housing_fund.contributions": {"employer": "prefix:4", "monthly": f"series:{500 * _YUAN}"},
    "tax.payments": {"taxpayer": "prefix:4", "monthly": f"series:{500 * _YUAN}"},
    "market.business_licence": {
        "licence_no": "partial:4,2", "name": "prefix:4", "registered": "month", "capital": f"bucket:{100_000 * _YUAN}", "status": "keep",
    },
}


def mask_payload(data_type: str, fields: Mapping[str, str], payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with every field masked by ``data_type``'s profile (``fields``: name → catalogue kind)."""
    profile = PROFILES.get(data_type, {})
    return {name: apply_rule(profile.get(name, DEFAULT_BY_KIND[fields[name]]), value) for name, value in payload.items()}


def apply_rule(rule: str, value: Any) -> Any:
    name, _, argument = rule.partition(":")
    if name == "keep":
        return value
    if name == "partial":
        head, tail = (int(part) for part in argument.split(","))
        if len(value) <= head + tail:
            return "*" * len(value)
        return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]
    if name == "prefix":
        width = int(argument)
        return value if len(value) <= width else value[:width] + "…"
    if name == "month":
        return value[:7]
    if name == "bucket":
        return _bucket(value, int(argument))
    if name == "series":
        return [{"month": point["month"], "amount": _bucket(point["amount"], int(argument))} for point in value]
    raise ValueError(f"unknown masking rule {rule!r}")


def _bucket(amount: int, width: int) -> dict[str, int]:
    low = amount // width * width
    return {"from": low, "to": low + width}
