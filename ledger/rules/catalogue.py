"""The data catalogue: which data types exist, who provides them, how sensitive they are.

The catalogue is managed by the custodian (in Jinan, the big-data bureau that
runs the shared platform); each entry names the one provider organization
allowed to publish records of that type. Sensitivity follows PIPL art. 28:
medical, financial, identity, whereabouts and minors' data are ``sensitive``
and will need the citizen's separate explicit confirmation to be shared.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ledger.errors import EncodingError
from ledger.fields import Choice, ListOf, MapOf, Optional, Text, UInt, check_map
from ledger.genesis import Role
from ledger.rules.engine import Code, Context, RuleViolation, org_key, register

__all__ = ["SENSITIVE_CATEGORIES", "catalogue_key", "check_record_payload", "read_catalogue_entry"]

SENSITIVE_CATEGORIES = frozenset({"medical", "financial", "identity", "whereabouts", "minors"})
FIELD_KINDS = frozenset({"text", "integer", "amount", "date", "month", "boolean", "identifier", "series"})

FIELD_SPEC = {
    "name": Text(64, identifier=True),
    "kind": Choice(FIELD_KINDS),
    "description": Optional(Text(256)),
}
ENTRY_SPEC = {
    "type": Text(64, identifier=True),
    "version": UInt(1, 2**32),
    "title": Text(256),
    "provider": Text(64, identifier=True),
    "fields": ListOf(MapOf(FIELD_SPEC), 1, 128),
    "sensitivity": Choice(frozenset({"general", "sensitive"})),
    "category": Optional(Choice(SENSITIVE_CATEGORIES)),
}


_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_SERIES_POINT = {"month": Text(7), "amount": UInt(0, 2**63)}
# How each catalogue field kind is checked in a record's payload. Amounts are integers in the
# smallest currency unit (fen): no floats anywhere a hash or a sum depends on them.
_KIND_CHECKS: dict[str, Callable[[Any, str], None]] = {
    "text": Text(2000),
    "identifier": Text(64),
    "integer": lambda value, where: _integer(value, where),
    "amount": UInt(0, 2**63),
    "boolean": lambda value, where: _boolean(value, where),
    "date": lambda value, where: _pattern(value, where, _DATE, "YYYY-MM-DD"),
    "month": lambda value, where: _pattern(value, where, _MONTH, "YYYY-MM"),
    "series": lambda value, where: _series(value, where),
}


def check_record_payload(entry: dict[str, Any], payload: Any) -> None:
    """Raise EncodingError unless ``payload`` has exactly the entry's fields, each of its kind."""
    check_map(payload, {field["name"]: _KIND_CHECKS[field["kind"]] for field in entry["fields"]}, "payload")


def _integer(value: Any, where: str) -> None:
    if type(value) is not int:
        raise EncodingError(f"{where}: expected an integer, got {type(value).__name__}")


def _boolean(value: Any, where: str) -> None:
    if type(value) is not bool:
        raise EncodingError(f"{where}: expected true or false, got {type(value).__name__}")


def _pattern(value: Any, where: str, pattern: re.Pattern[str], shape: str) -> None:
    Text(10)(value, where)
    if not pattern.fullmatch(value):
        raise EncodingError(f"{where}: expected {shape}, got {value!r}")


def _series(value: Any, where: str) -> None:
    ListOf(MapOf(_SERIES_POINT), 1, 240)(value, where)
    for position, point in enumerate(value):
        _pattern(point["month"], f"{where}[{position}].month", _MONTH, "YYYY-MM")


def catalogue_key(data_type: str) -> bytes:
    return b"catalogue/" + data_type.encode()


def read_catalogue_entry(ctx: Context, data_type: str) -> dict[str, Any]:
    entry = ctx.state.read(catalogue_key(data_type))
    if entry is None:
        raise RuleViolation(Code.NOT_FOUND, f"no catalogue entry for data type {data_type!r}")
    return entry


@register("catalogue.define", {"entry": MapOf(ENTRY_SPEC)}, frozenset({Role.CUSTODIAN}))
def apply_catalogue_define(ctx: Context) -> None:
    """Create an entry (version 1) or replace it with the next version; history keeps the old ones."""
    entry = ctx.payload["entry"]
    current = ctx.state.read(catalogue_key(entry["type"]))
    expected = 1 if current is None else current["version"] + 1
    if entry["version"] != expected:
        raise RuleViolation(Code.BAD_PAYLOAD, f"entry version must be {expected}, got {entry['version']}")
    names = [field["name"] for field in entry["fields"]]
    if len(set(names)) != len(names):
        raise RuleViolation(Code.BAD_PAYLOAD, "field names repeat")
    if (entry["sensitivity"] == "sensitive") != ("category" in entry):
        raise RuleViolation(Code.BAD_PAYLOAD, "a sensitive type names its PIPL art. 28 category; a general one names none")
    provider = ctx.state.read(org_key(entry["provider"]))
    if provider is None or Role.PROVIDER.value not in provider["roles"]:
        raise RuleViolation(Code.NOT_FOUND, f"{entry['provider']!r} is not a provider organization")
    if current is not None and current["provider"] != entry["provider"]:
        raise RuleViolation(Code.FORBIDDEN, "a data type keeps its provider; define a new type instead")
    ctx.state.put(catalogue_key(entry["type"]), entry)
