"""The data catalogue: which data types exist, who provides them, how sensitive they are.

The catalogue is managed by the custodian (in Jinan, the big-data bureau that
runs the shared platform); each entry names the one provider organization
allowed to publish records of that type. Sensitivity follows PIPL art. 28:
medical, financial, identity, whereabouts and minors' data are ``sensitive``
and will need the citizen's separate explicit confirmation to be shared.
"""

from __future__ import annotations

from typing import Any

from ledger.fields import Choice, ListOf, MapOf, Optional, Text, UInt
from ledger.genesis import Role
from ledger.rules.engine import Code, Context, RuleViolation, org_key, register

__all__ = ["SENSITIVE_CATEGORIES", "catalogue_key", "read_catalogue_entry"]

SENSITIVE_CATEGORIES = frozenset({"medical", "financial", "identity", "whereabouts", "minors"})
FIELD_KINDS = frozenset({"text", "integer", "amount", "date", "month", "boolean", "identifier"})

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
