"""Computation modules: consumer code pinned by hash, checked by the custodian, approved by the providers.

A consumer that wants a result computed over citizens' records — never the
records — submits a WebAssembly module. The chain pins it by SHA-256 together
with exactly what it reads (its *input layout*: which fields of which data
types, encoded how) and what it may return (an ``int`` or a ``bool``). The
custodian node that will run it checks the bytes (no imports, the documented
ABI, :mod:`privacy.sandbox`) and records the verdict; a refused module is on the
ledger with its error code. Then the provider of every data type the module
reads approves it — the agencies decide which computations may touch their data.
Only an ``approved`` module may run, only for the consumer that pinned it, and
only under a consent covering every type it reads (``ledger.rules.access``).

Status: ``submitted`` ─check→ ``checked`` | ``refused``; ``checked`` ─last approval→ ``approved``.

State keys::

    module/<sha256 of the wasm>    consumer, name, inputs, output, status, check, approvals
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from ledger.errors import EncodingError
from ledger.fields import Bytes, Choice, ListOf, MapOf, Optional, Text
from ledger.genesis import Role
from ledger.rules.catalogue import catalogue_key
from ledger.rules.engine import Code, Context, RuleViolation, register
from ledger.rules.membership import custodian_of_node_key

__all__ = [
    "INPUT_ITEM_SPEC",
    "INPUT_LAYOUT",
    "OUTPUT_TYPES",
    "check_input_layout",
    "input_types",
    "module_key",
]

OUTPUT_TYPES = frozenset({"int", "bool"})

# How one catalogue field becomes integers for a computation (privacy/features.py implements them):
#   value          integer, amount (fen) or boolean (0/1) as is: 1 value
#   yuan           an amount in whole yuan (fen // 100): 1 value
#   is:<text>      1 when a text field equals <text>, else 0: 1 value
#   years_to_as_of full years from a date field to the record's as_of date: 1 value
#   months:<n>     a monthly series: the n months ending with its latest month not after the record's as_of,
#                  in yuan, 0 for a missing month: n values
_ENCODING = re.compile(r"value|yuan|years_to_as_of|is:[^\x00-\x1f]{1,64}|months:([1-9][0-9]?|1[0-9][0-9]|2[0-3][0-9]|240)")
_KINDS_BY_ENCODING = {
    "value": frozenset({"integer", "amount", "boolean"}),
    "yuan": frozenset({"amount"}),
    "years_to_as_of": frozenset({"date"}),
    "is": frozenset({"text", "identifier"}),
    "months": frozenset({"series"}),
}


def _encoding(value: Any, where: str) -> None:
    Text(80)(value, where)
    if not _ENCODING.fullmatch(value):
        raise EncodingError(f"{where}: {value!r} is not an input encoding (value, yuan, years_to_as_of, is:<text>, months:<1..240>)")


INPUT_ITEM_SPEC = {
    "type": Text(64, identifier=True),
    "field": Text(64, identifier=True),
    "encode": _encoding,
}
# A module reads a list of integer vectors; each vector concatenates the values of its items.
INPUT_LAYOUT = ListOf(ListOf(MapOf(INPUT_ITEM_SPEC), 1, 32), 1, 16)

SUBMIT_SPEC = {
    "module_hash": Bytes(32),
    "name": Text(64, identifier=True),
    "inputs": INPUT_LAYOUT,
    "output": Choice(OUTPUT_TYPES),
    "description": Optional(Text(1000)),
}
CHECK_SPEC = {
    "module_hash": Bytes(32),
    "outcome": Choice(frozenset({"accepted", "refused"})),
    "error": Optional(Text(32, identifier=True)),
    "message": Optional(Text(500)),
}


def module_key(module_hash: bytes) -> bytes:
    return b"module/" + module_hash


def input_types(layout: Iterable[Iterable[dict[str, Any]]]) -> list[str]:
    """The data types an input layout (of a module or an HE job) reads, sorted."""
    return sorted({item["type"] for vector in layout for item in vector})


def check_input_layout(layout: list[list[dict[str, Any]]], entry_of: Callable[[str], dict[str, Any] | None]) -> set[str]:
    """Every item names an existing field of a catalogued type (``entry_of`` reads the catalogue entry)
    with an encoding fit for its kind; returns the providers of the types read. Raises RuleViolation.
    The custodian node runs the same check on an HE job's layout, which is not pinned on chain."""
    providers = set()
    for v, vector in enumerate(layout):
        for i, item in enumerate(vector):
            entry = entry_of(item["type"])
            if entry is None:
                raise RuleViolation(Code.NOT_FOUND, f"no catalogue entry for data type {item['type']!r}")
            kinds = {field["name"]: field["kind"] for field in entry["fields"]}
            where = f"inputs[{v}][{i}]"
            if item["field"] not in kinds:
                raise RuleViolation(Code.BAD_PAYLOAD, f"{where}: {item['type']!r} has no field {item['field']!r}")
            encoding = item["encode"].split(":", 1)[0]
            if kinds[item["field"]] not in _KINDS_BY_ENCODING[encoding]:
                raise RuleViolation(
                    Code.BAD_PAYLOAD, f"{where}: encoding {encoding!r} does not apply to a {kinds[item['field']]} field"
                )
            providers.add(entry["provider"])
    return providers


def _read_module(ctx: Context, module_hash: bytes) -> dict[str, Any]:
    module = ctx.state.read(module_key(module_hash))
    if module is None:
        raise RuleViolation(Code.NOT_FOUND, f"no module {module_hash.hex()} is pinned")
    return module


@register("module.submit", SUBMIT_SPEC, frozenset({Role.CONSUMER}))
def apply_module_submit(ctx: Context) -> None:
    payload = ctx.payload
    if ctx.state.read(module_key(payload["module_hash"])) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, f"module {payload['module_hash'].hex()} is already pinned")
    providers = check_input_layout(payload["inputs"], lambda data_type: ctx.state.read(catalogue_key(data_type)))
    module = {
        "consumer": ctx.signer.org,
        "name": payload["name"],
        "inputs": payload["inputs"],
        "output": payload["output"],
        "description": payload.get("description", ""),
        "providers": sorted(providers),
        "approvals": [],
        "status": "submitted",
        "submitted": ctx.log_index,
    }
    ctx.state.put(module_key(payload["module_hash"]), module)


@register("module.check", CHECK_SPEC, needs_known_signer=False)
def apply_module_check(ctx: Context) -> None:
    """The custodian node's verdict on the bytes: only the node that will run a module can check it."""
    payload = ctx.payload
    if custodian_of_node_key(ctx.state, ctx.tx.signer) is None:
        raise RuleViolation(Code.FORBIDDEN, "module checks are signed by a custodian organization's node key")
    refused = payload["outcome"] == "refused"
    if refused != ("error" in payload):
        raise RuleViolation(Code.BAD_PAYLOAD, "a refused module names its error code, an accepted one none")
    module = _read_module(ctx, payload["module_hash"])
    if module["status"] != "submitted":
        raise RuleViolation(Code.WRONG_STATE, f"the module is {module['status']}, not awaiting its check")
    check = {key: payload[key] for key in ("outcome", "error", "message") if key in payload}
    ctx.state.put(module_key(payload["module_hash"]), {**module, "status": "refused" if refused else "checked", "check": check})


@register("module.approve", {"module_hash": Bytes(32)}, frozenset({Role.PROVIDER}))
def apply_module_approve(ctx: Context) -> None:
    module = _read_module(ctx, ctx.payload["module_hash"])
    org = ctx.signer.org
    if org not in module["providers"]:
        raise RuleViolation(Code.FORBIDDEN, f"{org!r} provides none of the data types the module reads")
    if module["status"] != "checked":
        raise RuleViolation(Code.WRONG_STATE, f"the module is {module['status']}; only a checked module can be approved")
    if org in module["approvals"]:
        raise RuleViolation(Code.ALREADY_EXISTS, f"{org!r} already approved the module")
    approvals = sorted([*module["approvals"], org])
    status = "approved" if approvals == module["providers"] else "checked"
    ctx.state.put(module_key(ctx.payload["module_hash"]), {**module, "approvals": approvals, "status": status})
