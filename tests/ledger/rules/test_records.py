"""Catalogue, records, corrections: the on-chain half of publishing government data."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import Chain
from ledger import codec
from ledger.crypto import KeyPair
from ledger.genesis import genesis_transaction, network_id
from ledger.rules import Code
from ledger.rules.catalogue import catalogue_key
from ledger.rules.records import (
    commit_record_payload,
    correction_key,
    record_key,
    record_version_key,
    subject_record_key,
)
from ledger.tx import build_transaction

T0 = 1_750_000_000_000


def key(n: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"records-test-key-%d" % n).digest())


BUREAU, PSB, CIVIL, BANK = key(1), key(2), key(3), key(4)
ALICE, BOB = key(10), key(11)


def org(org_id: str, roles: list[str], admin: KeyPair) -> dict:
    return {"id": org_id, "name": org_id, "roles": roles, "admin_keys": [admin.public_key], "nodes": []}


GENESIS = {
    "version": 1,
    "name": "records test",
    "time": T0,
    "admin_threshold": 2,
    "orgs": [
        org("bureau", ["custodian", "identity_authority", "regulator"], BUREAU),
        org("psb", ["provider"], PSB),
        org("civil", ["provider"], CIVIL),
        org("bank", ["consumer"], BANK),
    ],
}
NETWORK = network_id(GENESIS)


def tx(signer: KeyPair, tx_type: str, payload: dict, cosigners=()) -> bytes:
    return build_transaction(signer, NETWORK, tx_type, payload, time_ms=T0, cosigners=cosigners)


def entry(data_type: str = "vehicle.registration", provider: str = "psb", version: int = 1, **changes) -> dict:
    fields = [{"name": "plate", "kind": "identifier"}, {"name": "registered", "kind": "date"}]
    return {"type": data_type, "version": version, "title": data_type, "provider": provider, "fields": fields,
            "sensitivity": "general", **changes}


def publish(record_id: bytes, subject: KeyPair = ALICE, signer: KeyPair = PSB, data_type: str = "vehicle.registration") -> bytes:
    commitment = commit_record_payload(os.urandom(32), codec.encode({"plate": "鲁A12345"}))
    return tx(signer, "record.publish", {"record_id": record_id, "subject": subject.public_key, "type": data_type, "as_of": T0, "commitment": commitment})


@pytest.fixture
def chain() -> Chain:
    chain = Chain(NETWORK, T0)
    assert chain.codes([genesis_transaction(GENESIS, [BUREAU, PSB, CIVIL, BANK])]) == [Code.VALID]
    enrollments = [
        tx(BUREAU, "citizen.enroll", {"citizen_key": c.public_key, "id_commitment": bytes(32)}, cosigners=[c])
        for c in (ALICE, BOB)
    ]
    assert chain.codes(enrollments) == [Code.VALID, Code.VALID]
    assert chain.codes([tx(BUREAU, "catalogue.define", {"entry": entry()})]) == [Code.VALID]
    return chain


# --- catalogue ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signer", "document", "code"),
    [
        (PSB, entry("civil.death_registration", "civil"), Code.FORBIDDEN),  # only the custodian
        (BUREAU, entry("civil.death_registration", "bank"), Code.NOT_FOUND),  # not a provider
        (BUREAU, entry("civil.death_registration", "nobody"), Code.NOT_FOUND),
        (BUREAU, entry("civil.death_registration", "civil", version=2), Code.BAD_PAYLOAD),
        (BUREAU, entry("medical.claims", "civil", sensitivity="sensitive"), Code.BAD_PAYLOAD),  # no category
        (BUREAU, entry("tax.payments", "civil", category="financial"), Code.BAD_PAYLOAD),  # general with category
        (BUREAU, entry("x.y", "civil", fields=[{"name": "a", "kind": "text"}] * 2), Code.BAD_PAYLOAD),
        (BUREAU, entry("x.y", "civil", fields=[{"name": "a", "kind": "float"}]), Code.BAD_PAYLOAD),
        (BUREAU, entry("medical.claims", "civil", sensitivity="sensitive", category="medical"), Code.VALID),
    ],
)
def test_catalogue_define_rules(chain, signer, document, code):
    assert chain.codes([tx(signer, "catalogue.define", {"entry": document})]) == [code]
    stored = chain.read(catalogue_key(document["type"]))
    assert (stored == document) == (code is Code.VALID)


def test_catalogue_versions_advance_and_keep_their_provider(chain):
    assert chain.codes([tx(BUREAU, "catalogue.define", {"entry": entry(version=2, title="v2")})]) == [Code.VALID]
    assert chain.read(catalogue_key("vehicle.registration"))["title"] == "v2"
    assert chain.codes([tx(BUREAU, "catalogue.define", {"entry": entry(version=2)})]) == [Code.BAD_PAYLOAD]
    assert chain.codes([tx(BUREAU, "catalogue.define", {"entry": entry(provider="civil", version=3)})]) == [Code.FORBIDDEN]
    assert len(chain.store.history(catalogue_key("vehicle.registration"))) == 2


# --- publishing -----------------------------------------------------------------------------


def test_publish_puts_only_a_commitment_on_chain(chain):
    record_id = bytes(range(16))
    envelope = publish(record_id)
    assert chain.codes([envelope]) == [Code.VALID]
    assert b"\xe9\xb2\x81A12345" not in envelope and "鲁A12345".encode() not in envelope
    head = chain.read(record_key(record_id))
    assert head == {"subject": ALICE.public_key, "type": "vehicle.registration", "provider": "psb", "version": 1, "status": "active"}
    assert chain.read(record_version_key(record_id, 1))["status"] == "current"
    assert chain.read(subject_record_key(ALICE.public_key, record_id)) == "vehicle.registration"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: publish(b"\x01" * 16, signer=CIVIL), Code.FORBIDDEN),  # civil does not provide vehicles
        (lambda: publish(b"\x01" * 16, signer=BANK), Code.FORBIDDEN),  # not a provider at all
        (lambda: publish(b"\x01" * 16, subject=key(55)), Code.NOT_FOUND),  # not enrolled
        (lambda: publish(b"\x01" * 16, data_type="no.such"), Code.NOT_FOUND),
        (lambda: publish(b"\x01" * 15), Code.BAD_PAYLOAD),
    ],
)
def test_publish_refusals(chain, make, code):
    assert chain.codes([make()]) == [code]
    assert chain.read(record_key(b"\x01" * 16)) is None


def test_record_ids_are_unique(chain):
    assert chain.codes([publish(b"\x02" * 16), publish(b"\x02" * 16, subject=BOB)]) == [Code.VALID, Code.ALREADY_EXISTS]
    assert chain.read(record_key(b"\x02" * 16))["subject"] == ALICE.public_key


# --- corrections ----------------------------------------------------------------------------


def request(record_id: bytes, request_id: bytes, version: int = 1, citizen: KeyPair = ALICE) -> bytes:
    return tx(citizen, "correction.request", {"request_id": request_id, "record_id": record_id, "version": version, "reason": "wrong plate"})


def correct(record_id: bytes, version: int, request_id: bytes | None = None, signer: KeyPair = PSB) -> bytes:
    payload = {"record_id": record_id, "version": version, "as_of": T0, "commitment": os.urandom(32)}
    if request_id is not None:
        payload["request_id"] = request_id
    return tx(signer, "record.correct", payload)


def test_correction_round_trip_keeps_the_old_version(chain):
    record_id, request_id = b"\x03" * 16, b"\x04" * 16
    chain.commit([publish(record_id)])
    assert chain.codes([request(record_id, request_id)]) == [Code.VALID]
    assert chain.read(correction_key(request_id))["status"] == "open"
    assert chain.codes([correct(record_id, 2, request_id)]) == [Code.VALID]
    assert chain.read(record_version_key(record_id, 1))["status"] == "superseded"
    assert chain.read(record_version_key(record_id, 2))["status"] == "current"
    assert chain.read(record_key(record_id))["version"] == 2
    closed = chain.read(correction_key(request_id))
    assert (closed["status"], closed["new_version"]) == ("corrected", 2)
    # answered once only; the old version can no longer be disputed
    assert chain.codes([correct(record_id, 3, request_id)]) == [Code.ALREADY_EXISTS]
    assert chain.codes([request(record_id, b"\x05" * 16, version=1)]) == [Code.BAD_PAYLOAD]


def test_correction_requests_are_the_subjects_and_answers_the_providers(chain):
    record_id = b"\x06" * 16
    chain.commit([publish(record_id)])
    assert chain.codes([request(record_id, b"\x07" * 16, citizen=BOB)]) == [Code.NOT_FOUND]
    assert chain.codes([tx(PSB, "correction.request", {"request_id": b"\x07" * 16, "record_id": record_id, "version": 1, "reason": "x"})]) == [Code.FORBIDDEN]
    assert chain.codes([request(record_id, b"\x08" * 16)]) == [Code.VALID]
    assert chain.codes([tx(CIVIL, "correction.reject", {"request_id": b"\x08" * 16, "note": "no"})]) == [Code.FORBIDDEN]
    assert chain.codes([tx(PSB, "correction.reject", {"request_id": b"\x08" * 16, "note": "the plate is right"})]) == [Code.VALID]
    assert chain.read(correction_key(b"\x08" * 16))["status"] == "rejected"


def test_withdrawal_ends_a_record(chain):
    record_id = b"\x09" * 16
    chain.commit([publish(record_id)])
    assert chain.codes([tx(CIVIL, "record.withdraw", {"record_id": record_id, "reason": "x"})]) == [Code.FORBIDDEN]
    assert chain.codes([tx(PSB, "record.withdraw", {"record_id": record_id, "reason": "registered in error"})]) == [Code.VALID]
    assert chain.read(record_key(record_id))["status"] == "withdrawn"
    assert chain.codes([correct(record_id, 2), request(record_id, b"\x0a" * 16)]) == [Code.BAD_PAYLOAD, Code.BAD_PAYLOAD]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12))
def test_versions_form_one_line_whatever_order_corrections_arrive_in(claimed_versions):
    """Only the next version is accepted; every accepted one supersedes exactly its predecessor."""
    chain = Chain(NETWORK, T0)
    chain.commit([genesis_transaction(GENESIS, [BUREAU, PSB, CIVIL, BANK])])
    chain.commit([tx(BUREAU, "citizen.enroll", {"citizen_key": ALICE.public_key, "id_commitment": bytes(32)}, cosigners=[ALICE])])
    chain.commit([tx(BUREAU, "catalogue.define", {"entry": entry()})])
    record_id = b"\x0b" * 16
    chain.commit([publish(record_id)])
    current = 1
    for claimed in claimed_versions:
        (code,) = chain.codes([correct(record_id, claimed)])
        assert (code is Code.VALID) == (claimed == current + 1)
        current += code is Code.VALID
    assert chain.read(record_key(record_id))["version"] == current
    statuses = [chain.read(record_version_key(record_id, v))["status"] for v in range(1, current + 1)]
    assert statuses == ["superseded"] * (current - 1) + ["current"]


@pytest.mark.parametrize("bad", [[], {}, 3, b"general", None])
def test_a_choice_field_of_the_wrong_type_is_refused_not_fatal(chain, bad):
    """A signed payload with an array where a choice is expected must not stop block building."""
    assert chain.codes([tx(BUREAU, "catalogue.define", {"entry": entry("x.y", "civil", sensitivity=bad)})]) == [Code.BAD_PAYLOAD]
    roles_payload = {"org": {"id": "x", "name": "x", "roles": [[]], "admin_keys": [key(70).public_key], "nodes": []}}
    assert chain.codes([tx(BUREAU, "org.upsert", roles_payload, cosigners=[PSB])]) == [Code.BAD_PAYLOAD]


def test_a_defect_inside_a_rule_refuses_the_transaction_and_the_chain_goes_on(chain, monkeypatch):
    from ledger.rules import engine

    def broken(ctx):
        raise KeyError("defect")

    rule = engine.RULES["record.withdraw"]
    monkeypatch.setitem(engine.RULES, "record.withdraw", engine.Rule(rule.tx_type, rule.payload, rule.roles, broken))
    record_id = b"\x0c" * 16
    outcome = chain.commit([publish(record_id), tx(PSB, "record.withdraw", {"record_id": record_id, "reason": "x"}), publish(b"\x0d" * 16)])
    assert [t.code for t in outcome.txs] == [Code.VALID, Code.RULE_FAILED, Code.VALID]
    assert chain.read(record_key(record_id))["status"] == "active"
