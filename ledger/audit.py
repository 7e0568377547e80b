"""The regulator's compliance check: was every access covered by a consent valid at its log position?

The check replays the log from genesis — it reads no state a node computed.
It rebuilds, from the transactions the blocks mark valid, who belongs to
which organization (genesis, ``org.upsert``, ``org.remove``) and every
consent's lifecycle and usage, then judges each access record at its block's
time with :func:`ledger.consent.refusal_reason`. Signatures are re-verified.
A granted access is a **violation** when

- it is not signed by a node of a custodian organization,
- its requester is not an admin of the consumer it names,
- no consent allowed it at that position (the reason code says why: revoked,
  expired, exhausted, scope…), or its purpose differs from the consent's,
- a self-view (no consumer) was requested by someone other than the subject,
- a consent answer (grant, pause…) it depends on was signed by someone other
  than the citizen who answers for that consent, or granted different terms;
- it is a sandbox computation whose module was not, at that position, pinned by
  the same consumer, accepted by a custodian node's check and approved by the
  provider of every data type it reads — or it read other types than the module's.

The report also counts the computations (by kind) among granted accesses.

On an honest ledger the count is 0. A node that marks a forbidden access
valid (the rules would have refused it) is caught here, at that log index,
even by someone who only has the log entries and their validity codes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from ledger.consent import record_use, refusal_reason, terms_hash
from ledger.errors import LedgerError
from ledger.genesis import Role
from ledger.tx import Transaction, parse_transaction

__all__ = ["AuditedEntry", "ComplianceReport", "Violation", "check_compliance"]

_STATUS_AFTER = {
    "consent.grant": ("requested", "active"),
    "consent.reject": ("requested", "rejected"),
    "consent.pause": ("active", "paused"),
    "consent.resume": ("paused", "active"),
    "consent.revoke": (None, "revoked"),
}


@dataclass(frozen=True)
class AuditedEntry:
    """One log leaf with what its block says about it."""

    log_index: int
    block_time: int
    valid: bool
    envelope: bytes


@dataclass(frozen=True)
class Violation:
    log_index: int
    tx_id: str
    what: str


@dataclass
class ComplianceReport:
    entries: int = 0
    accesses_checked: int = 0
    granted: int = 0
    refused: int = 0
    self_views: int = 0
    violations: list[Violation] = field(default_factory=list)
    by_consumer: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_type: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    refusal_reasons: Counter[str] = field(default_factory=Counter)
    computations: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.violations


class _Replay:
    def __init__(self) -> None:
        self.admin_org: dict[bytes, str] = {}
        self.node_org: dict[bytes, str] = {}
        self.org_roles: dict[str, set[str]] = {}
        self.consents: dict[bytes, dict[str, Any]] = {}
        self.kin: set[tuple[bytes, bytes]] = set()
        self.providers: dict[str, str] = {}  # data type → its provider (catalogue.define)
        self.modules: dict[bytes, dict[str, Any]] = {}  # module hash → consumer, types, providers, checked, approvals

    def apply_membership(self, tx: Transaction) -> None:
        if tx.type == "network.genesis":
            for org in tx.payload["orgs"]:
                self._put_org(org)
        elif tx.type == "org.upsert":
            self._drop_org(tx.payload["org"]["id"])
            self._put_org(tx.payload["org"])
        elif tx.type == "org.remove":
            self._drop_org(tx.payload["org"])
        elif tx.type == "citizen.relate":
            self.kin.add((tx.payload["citizen"], tx.payload["relative"]))
        elif tx.type == "catalogue.define":
            self.providers[tx.payload["entry"]["type"]] = tx.payload["entry"]["provider"]

    def apply_modules(self, tx: Transaction) -> None:
        """Module pins, checks and approvals, as the rules apply them (ledger/rules/modules.py)."""
        payload = tx.payload
        if tx.type == "module.submit":
            types = sorted({item["type"] for vector in payload["inputs"] for item in vector})
            self.modules[payload["module_hash"]] = {
                "consumer": self.admin_org.get(tx.signer), "types": types, "checked": False,
                "providers": {self.providers.get(data_type) for data_type in types}, "approvals": set(),
            }
        elif tx.type == "module.check" and payload["module_hash"] in self.modules:
            custodian = self.node_org.get(tx.signer)
            if custodian is not None and Role.CUSTODIAN.value in self.org_roles.get(custodian, set()):
                self.modules[payload["module_hash"]]["checked"] = payload["outcome"] == "accepted"
        elif tx.type == "module.approve" and payload["module_hash"] in self.modules:
            self.modules[payload["module_hash"]]["approvals"].add(self.admin_org.get(tx.signer))

    def _put_org(self, org: dict[str, Any]) -> None:
        self.org_roles[org["id"]] = set(org["roles"])
        self.admin_org.update({key: org["id"] for key in org["admin_keys"]})
        self.node_org.update({node["key"]: org["id"] for node in org["nodes"]})

    def _drop_org(self, org_id: str) -> None:
        self.org_roles.pop(org_id, None)
        self.admin_org = {key: org for key, org in self.admin_org.items() if org != org_id}
        self.node_org = {key: org for key, org in self.node_org.items() if org != org_id}


def check_compliance(entries: Iterable[AuditedEntry]) -> ComplianceReport:
    """Replay ``entries`` (every leaf from index 0, in order) and judge every access record."""
    report = ComplianceReport()
    replay = _Replay()
    for entry in entries:
        report.entries += 1
        if not entry.valid:
            continue
        try:
            tx = parse_transaction(entry.envelope)
            tx.check_signatures()
        except LedgerError as exc:
            report.violations.append(Violation(entry.log_index, "", f"a leaf marked valid does not verify: {exc}"))
            continue
        replay.apply_membership(tx)
        replay.apply_modules(tx)
        if tx.type == "consent.request":
            _consent_requested(replay, tx, entry)
        elif tx.type in _STATUS_AFTER:
            _consent_answered(replay, tx, entry, report)
        elif tx.type == "access.record":
            _judge_access(replay, tx, entry, report)
    return report


def _consent_requested(replay: _Replay, tx: Transaction, entry: AuditedEntry) -> None:
    terms = tx.payload
    replay.consents[terms["consent_id"]] = {
        "terms": terms,
        "terms_hash": terms_hash(terms),
        "consumer": replay.admin_org.get(tx.signer),
        "grantor": terms.get("grantor", terms["subject"]),
        "status": "requested",
        "uses": 0,
        "window": 0,
        "window_uses": 0,
    }


def _consent_answered(replay: _Replay, tx: Transaction, entry: AuditedEntry, report: ComplianceReport) -> None:
    consent_id = tx.payload["consent_id"]
    consent = replay.consents.get(consent_id)
    violation = None
    if consent is None:
        violation = "answers a consent that was never requested"
    elif tx.signer != consent["grantor"]:
        violation = "is not signed by the citizen who answers for the consent"
    elif consent["grantor"] != consent["terms"]["subject"] and (consent["terms"]["subject"], consent["grantor"]) not in replay.kin:
        violation = "is signed by a grantor who is not a registered relative of the subject"
    elif tx.type == "consent.grant" and tx.payload["terms_hash"] != consent["terms_hash"]:
        violation = "grants terms other than those requested"
    if violation is not None:
        report.violations.append(Violation(entry.log_index, tx.tx_id.hex(), f"{tx.type} {violation}"))
        return
    required, status = _STATUS_AFTER[tx.type]
    if required is None or consent["status"] == required:
        replay.consents[consent_id] = {**consent, "status": status}


def _judge_access(replay: _Replay, tx: Transaction, entry: AuditedEntry, report: ComplianceReport) -> None:
    access = tx.payload
    report.accesses_checked += 1
    consumer = access.get("consumer")
    label = consumer or "(subject's own view)"
    for data_type in access["data_types"]:
        report.by_type[data_type][access["outcome"]] += 1
    report.by_consumer[label][access["outcome"]] += 1

    def violation(what: str) -> None:
        report.violations.append(Violation(entry.log_index, tx.tx_id.hex(), what))

    custodian = replay.node_org.get(tx.signer)
    if custodian is None or Role.CUSTODIAN.value not in replay.org_roles.get(custodian, set()):
        violation("access record not signed by a custodian organization's node")
        return
    if access["outcome"] == "refused":
        report.refused += 1
        report.refusal_reasons[access.get("reason", "?")] += 1
        return
    report.granted += 1
    if "computation" in access:
        report.computations[access["computation"]["kind"]] += 1
    if consumer is None:
        report.self_views += 1
        if access["requester"] != access["subject"]:
            violation("a self-view released data to someone other than the subject")
        return
    if replay.admin_org.get(access["requester"]) != consumer:
        violation(f"the requester is not an admin of {consumer!r}")
        return
    consent_id = access.get("consent_id")
    consent = replay.consents.get(consent_id) if consent_id is not None else None
    reason = refusal_reason(
        consent, consumer=consumer, subject=access["subject"], data_types=access["data_types"], mode=access["mode"], now_ms=entry.block_time
    )
    if reason is not None:
        violation(f"granted without a valid consent: {reason}")
        return
    if access["purpose"] != consent["terms"]["purpose"]["code"]:
        violation("the access purpose differs from the consent's purpose")
        return
    if "computation" in access and not _computation_allowed(replay, access, violation):
        return
    replay.consents[consent_id] = record_use(consent, entry.block_time, entry.log_index)


def _computation_allowed(replay: _Replay, access: dict[str, Any], violation: Any) -> bool:
    computation = access["computation"]
    if computation["kind"] != "sandbox":
        return True
    module = replay.modules.get(computation["code_hash"])
    if module is None or module["consumer"] != access["consumer"]:
        violation("a sandbox computation ran a module not pinned by its consumer")
    elif not module["checked"] or not module["providers"] <= module["approvals"]:
        violation("a sandbox computation ran a module not checked and approved by every provider of its data")
    elif sorted(access["data_types"]) != module["types"]:
        violation("a sandbox computation read other data types than its module's")
    else:
        return True
    return False
