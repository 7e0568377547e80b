"""A forged access is caught: the regulator's replay (ledger.audit.check_compliance) judges what a node marked valid.

A dishonest node can mark any transaction VALID in its blocks. Here that node
is simulated by driving the pure block builder (tests/support/chain.py) over
the development network's genesis with one rule made permissive for exactly
one block — so the forged transaction is committed as VALID although the real
rule refuses it. The compliance check, which reads only the log and the
validity codes, must name that log index; the same steps with the rules intact
leave the forged transaction invalid and the audit clean. Finally the real
node: honest traffic audits clean, and a forged leaf appended to the real log
is caught.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from chain import Chain
from client.enrollment import enrollment_transaction, synthetic_national_id
from client.sdk import ApiError
from ledger.audit import AuditedEntry, check_compliance
from ledger.consent import terms_hash
from ledger.crypto import KeyPair
from ledger.genesis import network_id
from ledger.identity import new_salt
from ledger.rules import Code
from ledger.rules.engine import RULES
from ledger.storage.ledger_store import LedgerStore
from ledger.tx import build_transaction
from node.devnet import NodeConfig, create_dev_network, dev_catalogue_transactions, load_node_config
from node.runtime import clock_ms
from sharing import AUTHORITY, DAY_MS, INSURER, REGULATOR, Sharing, consent_terms, sharing_network

VEHICLE = "vehicle.registration"


def audited_entries(store: LedgerStore) -> list[AuditedEntry]:
    """Every leaf with its block's time and validity code, as a regulator reads them off the blocks."""
    entries = []
    for height in range(store.head().height + 1):
        header = store.header(height)
        leaves = store.leaves(header.first_index, header.first_index + header.tx_count)
        entries += [
            AuditedEntry(header.first_index + position, header.time, code == Code.VALID, leaf)
            for position, (code, leaf) in enumerate(zip(header.codes, leaves))
        ]
    return entries


@dataclass
class Ledger:
    """The development network on an in-memory chain: Alice has a vehicle record and granted the insurer a consent,
    which the insurer has used once. Everything happens at block time ``now``."""

    chain: Chain
    config: NodeConfig
    now: int
    alice: KeyPair
    bob: KeyPair
    consent: dict[str, Any]
    record_id: bytes

    def tx(self, signer: KeyPair, tx_type: str, payload: dict[str, Any]) -> bytes:
        return build_transaction(signer, self.chain.network, tx_type, payload, time_ms=self.now)

    def admin(self, org: str) -> KeyPair:
        return self.config.admin_key(org)

    def access(self, *, signer: KeyPair | None = None, **changes: Any) -> bytes:
        """A granted access.record of the insurer under the consent (signed by the custodian's node unless said otherwise)."""
        payload: dict[str, Any] = {
            "requester": self.admin(INSURER).public_key,
            "request_digest": os.urandom(32),
            "subject": self.alice.public_key,
            "data_types": [VEHICLE],
            "purpose": self.consent["purpose"]["code"],
            "mode": "raw",
            "consumer": INSURER,
            "consent_id": self.consent["consent_id"],
            "records": [{"record_id": self.record_id, "version": 1}],
            "outcome": "granted",
            "result_hash": os.urandom(32),
            **changes,
        }
        return self.tx(signer or self.config.node_key, "access.record", payload)

    def commit_valid(self, envelopes: list[bytes]) -> None:
        codes = self.chain.codes(envelopes)
        assert codes == [Code.VALID] * len(envelopes), codes


@pytest.fixture(scope="module")
def honest_ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    data_dir = tmp_path_factory.mktemp("forged") / "dev"
    data_dir.mkdir()
    create_dev_network(data_dir, clock_ms())
    config = load_node_config(data_dir)
    chain = Chain(network_id(config.genesis), config.genesis["time"])
    assert chain.codes([config.genesis_envelope]) == [Code.VALID]
    now = clock_ms()
    chain.time_ms = now
    alice, bob = KeyPair.generate(), KeyPair.generate()
    terms = consent_terms(alice.public_key, [VEHICLE], now_ms=now)
    ledger = Ledger(chain, config, now, alice, bob, terms, os.urandom(16))
    authority = config.admin_key(AUTHORITY)
    ledger.commit_valid(dev_catalogue_transactions(config, chain.network, now))
    ledger.commit_valid(
        [
            enrollment_transaction(authority, citizen, chain.network, synthetic_national_id(random.Random(n)), new_salt(), time_ms=now)
            for n, citizen in enumerate((alice, bob))
        ]
    )
    record = {
        "record_id": ledger.record_id, "subject": alice.public_key, "type": VEHICLE, "as_of": now - DAY_MS, "commitment": os.urandom(32),
    }
    ledger.commit_valid([ledger.tx(ledger.admin("jinan-psb"), "record.publish", record)])
    ledger.commit_valid([ledger.tx(ledger.admin(INSURER), "consent.request", terms)])
    ledger.commit_valid([ledger.tx(alice, "consent.grant", {"consent_id": terms["consent_id"], "terms_hash": terms_hash(terms)})])
    ledger.commit_valid([ledger.access()])
    return ledger


@dataclass(frozen=True)
class Forgery:
    """Honest steps, then one transaction the rule of type ``rule`` refuses with ``refused_as``."""

    prepare: Callable[[Ledger], list[bytes]]
    forged: Callable[[Ledger], bytes]
    rule: str
    refused_as: Code
    caught_as: str


def _second_consent(ledger: Ledger) -> dict[str, Any]:
    """Another request of the insurer to Alice (the same terms whenever it is asked for)."""
    return consent_terms(ledger.alice.public_key, [VEHICLE], now_ms=ledger.now, consent_id=b"second-consent!!")


def _grant_by_bob(ledger: Ledger) -> bytes:
    terms = _second_consent(ledger)
    return ledger.tx(ledger.bob, "consent.grant", {"consent_id": terms["consent_id"], "terms_hash": terms_hash(terms)})


UNAPPROVED_MODULE = b"\x3c" * 32


def _pin_unapproved_module(ledger: Ledger) -> list[bytes]:
    """The insurer pins a module reading the vehicle registration; the node checks it; the provider never approves it."""
    layout = [[{"type": VEHICLE, "field": "registered", "encode": "years_to_as_of"}]]
    pin = {"module_hash": UNAPPROVED_MODULE, "name": "unapproved", "inputs": layout, "output": "int"}
    check = {"module_hash": UNAPPROVED_MODULE, "outcome": "accepted"}
    return [ledger.tx(ledger.admin(INSURER), "module.submit", pin), ledger.tx(ledger.config.node_key, "module.check", check)]


def _computation_with_unapproved_module(ledger: Ledger) -> bytes:
    receipt = {"kind": "sandbox", "code_hash": UNAPPROVED_MODULE, "engine": "wasmtime", "params": b"\xa0", "fuel": 1, "output_hash": bytes(32)}
    return ledger.access(mode="computed", computation=receipt)


FORGERIES = {
    "access-after-revocation": Forgery(
        prepare=lambda ledger: [ledger.tx(ledger.alice, "consent.revoke", {"consent_id": ledger.consent["consent_id"]})],
        forged=lambda ledger: ledger.access(),
        rule="access.record",
        refused_as=Code.POLICY_NOT_MET,
        caught_as="granted without a valid consent: consent_revoked",
    ),
    "access-signed-by-a-provider": Forgery(
        prepare=lambda ledger: [],
        forged=lambda ledger: ledger.access(signer=ledger.admin("jinan-psb")),
        rule="access.record",
        refused_as=Code.FORBIDDEN,
        caught_as="access record not signed by a custodian organization's node",
    ),
    "grant-signed-by-another-citizen": Forgery(
        prepare=lambda ledger: [ledger.tx(ledger.admin(INSURER), "consent.request", _second_consent(ledger))],
        forged=_grant_by_bob,
        rule="consent.grant",
        refused_as=Code.NOT_FOUND,
        caught_as="consent.grant is not signed by the citizen who answers for the consent",
    ),
    "computation-with-an-unapproved-module": Forgery(
        prepare=_pin_unapproved_module,
        forged=_computation_with_unapproved_module,
        rule="access.record",
        refused_as=Code.POLICY_NOT_MET,
        caught_as="a sandbox computation ran a module not checked and approved by every provider of its data",
    ),
}


def run(honest_ledger: Ledger, forgery: Forgery, *, permissive: pytest.MonkeyPatch | None) -> tuple[Ledger, int, Code]:
    """A copy of the honest ledger, the forgery's honest steps, then its transaction — with its rule made
    permissive for that one block when ``permissive`` is given. Returns the ledger, the forged log index and its code."""
    ledger = copy.deepcopy(honest_ledger)
    ledger.commit_valid(forgery.prepare(ledger))
    envelope = forgery.forged(ledger)
    if permissive is None:
        (outcome,) = ledger.chain.commit([envelope]).txs
    else:
        with permissive.context() as patch:
            patch.setitem(RULES, forgery.rule, dataclasses.replace(RULES[forgery.rule], apply=lambda ctx: None))
            (outcome,) = ledger.chain.commit([envelope]).txs
    return ledger, outcome.log_index, outcome.code


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_forgery_marked_valid_is_caught_at_its_log_index(honest_ledger, name, monkeypatch):
    forgery = FORGERIES[name]
    ledger, index, code = run(honest_ledger, forgery, permissive=monkeypatch)
    assert code is Code.VALID
    report = check_compliance(audited_entries(ledger.chain.store))
    assert [(violation.log_index, violation.what) for violation in report.violations] == [(index, forgery.caught_as)]


@pytest.mark.parametrize("name", list(FORGERIES))
def test_the_same_steps_with_the_rules_intact_audit_clean(honest_ledger, name):
    forgery = FORGERIES[name]
    ledger, _, code = run(honest_ledger, forgery, permissive=None)
    assert code is forgery.refused_as
    report = check_compliance(audited_entries(ledger.chain.store))
    assert report.violations == []
    assert (report.accesses_checked, report.granted) == (1, 1)


def test_the_permissive_rule_does_not_outlive_its_block(honest_ledger, monkeypatch):
    """The forged ledger's next access, after the rule is restored, is refused as any other would be."""
    ledger, _, _ = run(honest_ledger, FORGERIES["access-after-revocation"], permissive=monkeypatch)
    assert ledger.chain.codes([ledger.access()]) == [Code.POLICY_NOT_MET]


# --- the real node -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sharing, bytes, bytes]]:
    """Honest traffic on a real node: a granted access, a self view, a revocation and a refused access.
    Yields the network, the citizen's key and the (revoked) consent id."""
    with sharing_network(tmp_path_factory.mktemp("forged-node") / "node") as net:
        citizen = net.enrol()
        net.publish_samples(citizen, [VEHICLE])
        insurer = net.consumer(INSURER)
        consent_id = insurer.request_consent(
            citizen.key.public_key, [VEHICLE], purpose_code="insurance.claim", purpose_text="claim", valid_days=7, contact="c@t.example"
        )
        citizen.grant(consent_id)
        insurer.fetch(consent_id, citizen.key.public_key)
        citizen.open_my_data()
        citizen.revoke(consent_id)
        with pytest.raises(ApiError):
            insurer.fetch(consent_id, citizen.key.public_key)
        yield net, citizen.key.public_key, consent_id


def test_an_honest_node_run_audits_with_no_violation(node_run):
    net, _, _ = node_run
    summary = net.regulator().audit().summary()
    assert summary["violations"] == 0, summary["violation_list"]
    assert (summary["accesses_checked"], summary["accesses_granted"], summary["self_views"]) == (3, 2, 1)
    assert summary["refusal_reasons"] == {"consent_revoked": 1}


def test_a_forged_leaf_appended_to_the_real_log_is_caught(node_run):
    """The node's own key signs a granted access under the revoked consent; marked valid, the audit names it."""
    net, subject, consent_id = node_run
    regulator = net.client(net.admin_key(REGULATOR))
    size = regulator.checkpoint().checkpoint.tree_size
    entries = [
        AuditedEntry(index, meta["time"], meta["code"] == "VALID", leaf)
        for index, (leaf, meta) in enumerate(regulator.entries_with_meta(0, size))
    ]
    now = clock_ms()
    forged = build_transaction(
        net.node.config.node_key,
        regulator.network_id,
        "access.record",
        {
            "requester": net.admin_key(INSURER).public_key,
            "request_digest": os.urandom(32),
            "subject": subject,
            "data_types": [VEHICLE],
            "purpose": "insurance.claim",
            "mode": "raw",
            "consumer": INSURER,
            "consent_id": consent_id,
            "records": [],
            "outcome": "granted",
            "result_hash": os.urandom(32),
        },
        time_ms=now,
    )
    assert check_compliance(entries).violations == []
    report = check_compliance([*entries, AuditedEntry(size, now, True, forged)])
    assert [(violation.log_index, violation.what) for violation in report.violations] == [
        (size, "granted without a valid consent: consent_revoked")
    ]
