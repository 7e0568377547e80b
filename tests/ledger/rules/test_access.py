"""access.record: who signs it, what a granted access uses up, what is refused, and the subject's own view."""

from __future__ import annotations

import copy
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent_builders import (
    ALICE,
    BANK,
    BIGDATA,
    BOB,
    CAROL,
    DAY,
    DEATH,
    GENESIS,
    HEALTH,
    HOUR,
    INCOME,
    INSURER,
    MEDICAL,
    NODE,
    NODE_HEALTH,
    OUTSIDER,
    PRESCRIPTIONS,
    T0,
    TAX,
    WEEK,
    ConsentChain,
    access,
    activate,
    answer,
    correct,
    death_registration,
    fresh_chain,
    grant,
    kin_terms,
    publish,
    record_access,
    relate,
    request,
    rid,
    terms,
    tx,
    withdraw,
)
from ledger.consent import REFUSAL_REASONS
from consent_builders import unchanged
from ledger.rules import Code
from ledger.rules.access import SUBJECT_VIEW_PURPOSE, access_key, consumer_access_key, subject_access_key
from ledger.rules.consents import consent_key


@pytest.fixture
def chain() -> ConsentChain:
    return fresh_chain()


@pytest.fixture
def consented(chain) -> tuple[ConsentChain, dict]:
    """Alice granted the bank consent 1 over her income; two of her income records are on chain."""
    document = terms(1, max_uses=5, frequency={"max": 3, "per": "day"})
    activate(chain, document)
    assert chain.codes([publish(rid(1)), publish(rid(2), as_of=T0 - 100 * DAY)]) == [Code.VALID, Code.VALID]
    return chain, document


def commit_one(chain: ConsentChain, envelope: bytes, *, time: int | None = None):
    (outcome,) = chain.commit([envelope], time).txs
    return outcome


# --- who signs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signer", "code"),
    [
        (NODE, Code.VALID),  # the custodian's node
        (BIGDATA, Code.FORBIDDEN),  # the custodian's admin key is not its node key
        (NODE_HEALTH, Code.FORBIDDEN),  # a provider's node
        (HEALTH, Code.FORBIDDEN),  # a provider's admin
        (TAX, Code.FORBIDDEN),
        (BANK, Code.FORBIDDEN),  # the consumer cannot record its own access
        (ALICE, Code.FORBIDDEN),  # a citizen
        (OUTSIDER, Code.FORBIDDEN),  # nobody (unknown signers pass the engine for this rule)
    ],
    ids=["custodian-node", "custodian-admin", "provider-node", "provider-admin", "other-provider", "consumer", "citizen", "outsider"],
)
def test_only_a_custodian_node_signs_access_records(consented, signer, code):
    chain, document = consented
    envelope = record_access(access(document, records=[(rid(1), 1)]), signer=signer)
    if code is Code.VALID:
        assert chain.codes([envelope]) == [Code.VALID]
    else:
        assert unchanged(chain, envelope) == code


def test_a_removed_custodian_node_can_no_longer_sign(consented):
    """Node keys are looked up in state: once the node leaves the custodian org, its key is refused."""
    chain, document = consented
    bigdata = next(o for o in GENESIS["orgs"] if o["id"] == "bigdata")
    assert chain.codes([tx(BIGDATA, "org.upsert", {"org": {**bigdata, "nodes": []}}, cosigners=[BANK])]) == [Code.VALID]
    assert unchanged(chain, record_access(access(document))) == Code.FORBIDDEN


# --- a granted access -----------------------------------------------------------------------


def test_a_granted_access_counts_a_use_and_is_logged(consented):
    chain, document = consented
    outcome = commit_one(chain, record_access(access(document, records=[(rid(1), 1), (rid(2), 1)])))
    assert outcome.code is Code.VALID
    index = outcome.log_index
    consent = chain.read(consent_key(document["consent_id"]))
    assert (consent["uses"], consent["window"], consent["window_uses"], consent["last_use"]) == (1, T0 // DAY, 1, index)
    assert consent["status"] == "active"
    assert chain.read(access_key(index)) == {
        "outcome": "granted",
        "subject": ALICE.public_key,
        "data_types": [INCOME],
        "purpose": "loan.credit-check",
        "mode": "raw",
        "consumer": "bank",
        "consent_id": document["consent_id"],
        "time": T0,
        "records": 2,
    }
    assert access_key(index) == b"access/" + struct.pack(">Q", index)
    assert chain.read(subject_access_key(ALICE.public_key, index)) == b""
    assert chain.read(consumer_access_key("bank", index)) == b""
    # a second one in the same window
    second = commit_one(chain, record_access(access(document)))
    consent = chain.read(consent_key(document["consent_id"]))
    assert (consent["uses"], consent["window_uses"], consent["last_use"]) == (2, 2, second.log_index)
    assert sorted(chain.keys(b"subject-access/" + ALICE.public_key + b"/")) == [
        subject_access_key(ALICE.public_key, index),
        subject_access_key(ALICE.public_key, second.log_index),
    ]


HE_RECEIPT = {"kind": "he_score", "code_hash": b"\x07" * 32, "engine": "openfhe test", "params": b"\xa0", "output_hash": b"\x08" * 32}


@pytest.mark.parametrize("mode", ["masked", "computed"])
def test_a_narrower_access_under_a_raw_consent_counts_too(consented, mode):
    chain, document = consented
    receipt = {"computation": HE_RECEIPT} if mode == "computed" else {}
    outcome = commit_one(chain, record_access(access(document, mode=mode, **receipt)))
    assert outcome.code == Code.VALID
    assert chain.read(consent_key(document["consent_id"]))["uses"] == 1
    assert chain.read(access_key(outcome.log_index)).get("computation") == (
        {"kind": "he_score", "code_hash": b"\x07" * 32} if receipt else None
    )


@pytest.mark.parametrize(
    "mode, computation, code",
    [
        ("computed", None, Code.BAD_PAYLOAD),  # a computed access without its receipt
        ("raw", HE_RECEIPT, Code.BAD_PAYLOAD),  # a receipt on a raw read
        ("computed", {**HE_RECEIPT, "output_hash": None}, Code.BAD_PAYLOAD),  # completed without output hash
        ("computed", {**HE_RECEIPT, "error": "trap"}, Code.BAD_PAYLOAD),  # both output and error
        ("computed", {**HE_RECEIPT, "kind": "sandbox"}, Code.FORBIDDEN),  # a module nobody pinned
    ],
)
def test_computation_receipts_are_checked(consented, mode, computation, code):
    chain, document = consented
    if computation is not None:
        computation = {key: value for key, value in computation.items() if value is not None}
    assert unchanged(chain, record_access(access(document, mode=mode, computation=computation))) == code


def test_the_last_allowed_use_exhausts_the_consent(chain):
    document = terms(1, max_uses=2)
    activate(chain, document)
    assert chain.codes([record_access(access(document))]) == [Code.VALID]
    assert chain.read(consent_key(document["consent_id"]))["status"] == "active"
    assert chain.codes([record_access(access(document))]) == [Code.VALID]
    consent = chain.read(consent_key(document["consent_id"]))
    assert (consent["status"], consent["uses"]) == ("exhausted", 2)
    assert unchanged(chain, record_access(access(document))) == Code.POLICY_NOT_MET
    # exhausted is final: no pause, resume or revoke, and it never turns into expired
    end = document["valid_until"]
    assert chain.codes([answer(a, 1) for a in ("pause", "resume", "revoke")]) == [Code.WRONG_STATE] * 3
    assert chain.codes([answer("revoke", 1, time_ms=end)], time=end) == [Code.WRONG_STATE]
    assert chain.read(consent_key(document["consent_id"]))["status"] == "exhausted"


def test_two_accesses_in_one_block_can_exhaust_a_single_use_consent(chain):
    document = terms(1, max_uses=1)
    activate(chain, document)
    assert chain.codes([record_access(access(document)), record_access(access(document))]) == [Code.VALID, Code.POLICY_NOT_MET]
    assert chain.read(consent_key(document["consent_id"]))["uses"] == 1


# --- refusals at the rule level -------------------------------------------------------------


def _setup_refusal(chain: ConsentChain, case: str) -> tuple[dict, int]:
    """Bring about ``case``; return the access payload that must be refused and the block time to try it at."""
    document = terms(1, max_uses=2, frequency={"max": 1, "per": "hour"})
    now = T0
    if case == "pending":
        assert chain.codes([request(document)]) == [Code.VALID]
    elif case == "rejected":
        assert chain.codes([request(document), answer("reject", 1)]) == [Code.VALID] * 2
    else:
        activate(chain, document)
    if case == "revoked":
        assert chain.codes([answer("revoke", 1)]) == [Code.VALID]
    elif case == "paused":
        assert chain.codes([answer("pause", 1)]) == [Code.VALID]
    elif case == "expired":
        now = document["valid_until"]
    elif case == "exhausted":
        assert chain.codes([record_access(access(document))]) == [Code.VALID]
        now = T0 + HOUR
        assert chain.codes([record_access(access(document), time_ms=now)], time=now) == [Code.VALID]
        now += HOUR
    elif case == "frequency":
        assert chain.codes([record_access(access(document))]) == [Code.VALID]
        now = T0 + HOUR - T0 % HOUR - 1  # the last millisecond of the same hour
    payload = access(document)
    if case == "not-yet-valid":
        later = terms(2, valid_from=T0 + DAY, valid_until=T0 + 10 * DAY)
        activate(chain, later)
        payload = access(later)
    elif case == "scope":
        payload = access(document, data_types=[INCOME, MEDICAL])
    elif case == "scope-other-type":
        payload = access(document, data_types=[DEATH])
    elif case == "mode":
        computed = terms(2, mode="computed")
        activate(chain, computed)
        payload = access(computed, mode="raw")
    elif case == "no-consent":
        payload = access(terms(9))  # never requested
    elif case == "wrong-consumer":
        payload = access(document, consumer="insurer", requester=INSURER)
    elif case == "wrong-subject":
        payload = access(document, subject=BOB.public_key)
    return payload, now


REFUSAL_CASES = [
    "pending",
    "rejected",
    "revoked",
    "paused",
    "expired",
    "not-yet-valid",
    "scope",
    "scope-other-type",
    "mode",
    "exhausted",
    "frequency",
    "no-consent",
    "wrong-consumer",
    "wrong-subject",
]


@pytest.mark.parametrize("case", REFUSAL_CASES)
def test_a_granted_access_the_consent_does_not_allow_is_refused_and_changes_nothing(chain, case):
    payload, now = _setup_refusal(chain, case)
    outcome_code = unchanged(chain, record_access(payload, time_ms=now), time=now)
    assert outcome_code is Code.POLICY_NOT_MET


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("pending", "consent_pending"),
        ("rejected", "consent_rejected"),
        ("revoked", "consent_revoked"),
        ("paused", "consent_paused"),
        ("expired", "consent_expired"),
        ("not-yet-valid", "consent_not_yet_valid"),
        ("scope", "scope"),
        ("mode", "mode"),
        ("exhausted", "exhausted"),
        ("frequency", "frequency"),
        ("no-consent", "no_consent"),
        ("wrong-consumer", "no_consent"),
        ("wrong-subject", "no_consent"),
    ],
)
def test_the_rule_names_the_refusal_reason(chain, case, reason):
    payload, now = _setup_refusal(chain, case)
    outcome = commit_one(chain, record_access(payload, time_ms=now), time=now)
    assert outcome.code is Code.POLICY_NOT_MET
    assert outcome.reason.endswith(f": {reason}")


def test_an_access_at_the_first_valid_millisecond_is_granted(chain):
    document = terms(1, valid_from=T0 + DAY, valid_until=T0 + 10 * DAY)
    activate(chain, document)
    start = document["valid_from"]
    assert chain.codes([record_access(access(document), time_ms=start - 1)], time=start - 1) == [Code.POLICY_NOT_MET]
    assert chain.codes([record_access(access(document), time_ms=start)], time=start) == [Code.VALID]
    end = document["valid_until"]
    assert chain.codes([record_access(access(document), time_ms=end - 1)], time=end - 1) == [Code.VALID]
    assert chain.codes([record_access(access(document), time_ms=end)], time=end) == [Code.POLICY_NOT_MET]


def test_a_resumed_consent_allows_access_again(consented):
    chain, document = consented
    assert chain.codes([answer("pause", 1), record_access(access(document))]) == [Code.VALID, Code.POLICY_NOT_MET]
    assert chain.codes([answer("resume", 1), record_access(access(document))]) == [Code.VALID, Code.VALID]
    assert chain.codes([answer("revoke", 1), record_access(access(document))]) == [Code.VALID, Code.POLICY_NOT_MET]
    assert chain.read(consent_key(document["consent_id"]))["uses"] == 1


def test_a_sensitive_consent_is_usable_once_confirmed(chain):
    document = terms(1, data_types=[MEDICAL, PRESCRIPTIONS])
    assert chain.codes([request(document), grant(document, confirm=[MEDICAL])]) == [Code.VALID, Code.POLICY_NOT_MET]
    assert chain.codes([record_access(access(document))]) == [Code.POLICY_NOT_MET]
    assert chain.codes([grant(document), publish(rid(5), data_type=MEDICAL)]) == [Code.VALID, Code.VALID]
    assert chain.codes([record_access(access(document, data_types=[MEDICAL], records=[(rid(5), 1)]))]) == [Code.VALID]


# --- frequency windows ----------------------------------------------------------------------


@pytest.mark.parametrize(("per", "period"), [("hour", HOUR), ("day", DAY), ("week", WEEK)])
def test_the_frequency_budget_resets_in_the_next_window(chain, per, period):
    document = terms(1, frequency={"max": 2, "per": per}, valid_until=T0 + 60 * DAY)
    activate(chain, document)
    start = T0 // period * period
    assert chain.codes([record_access(access(document)), record_access(access(document))]) == [Code.VALID] * 2
    last = start + period - 1
    assert unchanged(chain, record_access(access(document), time_ms=last), time=last) == Code.POLICY_NOT_MET
    following = start + period
    assert chain.codes([record_access(access(document), time_ms=following)], time=following) == [Code.VALID]
    consent = chain.read(consent_key(document["consent_id"]))
    assert (consent["window"], consent["window_uses"], consent["uses"]) == (following // period, 1, 3)
    assert chain.codes([record_access(access(document, mode="computed", computation=HE_RECEIPT), time_ms=following)], time=following) == [Code.VALID]
    assert chain.codes([record_access(access(document), time_ms=following)], time=following) == [Code.POLICY_NOT_MET]
    # skipping windows also starts afresh
    much_later = following + 3 * period
    assert chain.codes([record_access(access(document), time_ms=much_later)], time=much_later) == [Code.VALID]
    consent = chain.read(consent_key(document["consent_id"]))
    assert (consent["window"], consent["window_uses"], consent["uses"]) == (much_later // period, 1, 5)


@settings(max_examples=40, deadline=None)
@given(
    max_uses=st.integers(1, 6),
    per_window=st.integers(1, 3),
    gaps=st.lists(st.sampled_from([0, 1, 60_000, 30 * 60_000, HOUR, 3 * HOUR]), min_size=1, max_size=14),
)
def test_uses_and_windows_follow_a_simple_count(max_uses, per_window, gaps):
    """Whatever the access times, an access is granted exactly while uses and the hour's budget remain."""
    chain = fresh_chain()
    document = terms(1, max_uses=max_uses, frequency={"max": per_window, "per": "hour"})
    activate(chain, document)
    now, uses, counts = T0, 0, {}
    for gap in gaps:
        now += gap
        hour = now // HOUR
        allowed = uses < max_uses and counts.get(hour, 0) < per_window
        assert chain.codes([record_access(access(document), time_ms=now)], time=now) == [Code.VALID if allowed else Code.POLICY_NOT_MET]
        if allowed:
            uses += 1
            counts[hour] = counts.get(hour, 0) + 1
        consent = chain.read(consent_key(document["consent_id"]))
        assert consent["uses"] == uses
        assert consent["status"] == ("exhausted" if uses == max_uses else "active")


# --- the records released -------------------------------------------------------------------


def test_a_corrected_record_is_released_at_its_current_version_only(consented):
    chain, document = consented
    assert chain.codes([correct(rid(1), 2)]) == [Code.VALID]
    assert unchanged(chain, record_access(access(document, records=[(rid(1), 1)]))) == Code.WRONG_STATE
    assert unchanged(chain, record_access(access(document, records=[(rid(1), 3)]))) == Code.WRONG_STATE
    assert chain.codes([record_access(access(document, records=[(rid(1), 2)]))]) == [Code.VALID]


def test_a_withdrawn_record_is_not_released(consented):
    chain, document = consented
    assert chain.codes([withdraw(rid(1))]) == [Code.VALID]
    assert unchanged(chain, record_access(access(document, records=[(rid(1), 1)]))) == Code.WRONG_STATE
    assert unchanged(chain, record_access(access(document, records=[(rid(2), 1), (rid(1), 1)]))) == Code.WRONG_STATE


@pytest.mark.parametrize(
    ("records", "code"),
    [
        ([(rid(1), 1), (rid(1), 1)], Code.BAD_PAYLOAD),  # listed twice
        ([(rid(1), 1), (rid(2), 1), (rid(1), 2)], Code.BAD_PAYLOAD),  # twice, at different versions
        ([(rid(3), 1)], Code.FORBIDDEN),  # Bob's income
        ([(rid(4), 1)], Code.FORBIDDEN),  # Alice's medical record: not an asked-for type
        ([(rid(99), 1)], Code.FORBIDDEN),  # no such record
        ([(rid(1), 1), (rid(3), 1)], Code.FORBIDDEN),  # one bad apple
        ([(rid(6), 1)], Code.FORBIDDEN),  # as_of before data_from
        ([(rid(7), 1)], Code.FORBIDDEN),  # as_of after data_until
        ([(rid(8), 1)], Code.VALID),  # as_of == data_from
        ([(rid(9), 1)], Code.VALID),  # as_of == data_until
        ([], Code.VALID),
        ([(rid(1), 1), (rid(2), 1), (rid(8), 1), (rid(9), 1)], Code.VALID),
    ],
)
def test_released_records_are_checked(consented, records, code):
    chain, document = consented
    assert chain.codes(
        [
            publish(rid(3), subject=BOB),
            publish(rid(4), data_type=MEDICAL),
            publish(rid(6), as_of=document["data_from"] - 1),
            publish(rid(7), as_of=document["data_until"] + 1),
            publish(rid(8), as_of=document["data_from"]),
            publish(rid(9), as_of=document["data_until"]),
        ]
    ) == [Code.VALID] * 6
    envelope = record_access(access(document, records=records))
    if code is Code.VALID:
        assert chain.codes([envelope]) == [Code.VALID]
        assert chain.read(consent_key(document["consent_id"]))["uses"] == 1
    else:
        assert unchanged(chain, envelope) == code


def test_the_date_range_is_checked_against_the_released_version(consented):
    chain, document = consented
    assert chain.codes([correct(rid(1), 2, as_of=document["data_until"] + DAY)]) == [Code.VALID]
    assert unchanged(chain, record_access(access(document, records=[(rid(1), 2)]))) == Code.FORBIDDEN
    assert chain.codes([correct(rid(2), 2, as_of=document["data_until"])]) == [Code.VALID]
    assert chain.codes([record_access(access(document, records=[(rid(2), 2)]))]) == [Code.VALID]


def test_records_must_be_of_the_types_asked_for_in_this_access(chain):
    document = terms(1, data_types=[INCOME, MEDICAL])
    activate(chain, document)
    assert chain.codes([publish(rid(1)), publish(rid(2), data_type=MEDICAL)]) == [Code.VALID] * 2
    narrow = access(document, data_types=[INCOME], records=[(rid(1), 1), (rid(2), 1)])
    assert unchanged(chain, record_access(narrow)) == Code.FORBIDDEN
    assert chain.codes([record_access(access(document, records=[(rid(1), 1), (rid(2), 1)]))]) == [Code.VALID]


# --- the requester, the purpose and the payload's shape -------------------------------------


@pytest.mark.parametrize(
    "requester",
    [INSURER, BIGDATA, ALICE, BOB, NODE, OUTSIDER],
    ids=["other-consumer-admin", "custodian-admin", "subject", "citizen", "node", "nobody"],
)
def test_the_requester_is_an_admin_of_the_consumer(consented, requester):
    chain, document = consented
    assert unchanged(chain, record_access(access(document, requester=requester))) == Code.FORBIDDEN
    assert unchanged(chain, record_access(access(document, requester=requester, outcome="refused"))) == Code.FORBIDDEN


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"purpose": "marketing"}, Code.BAD_PAYLOAD),  # not the consent's purpose
        ({"purpose": SUBJECT_VIEW_PURPOSE}, Code.BAD_PAYLOAD),
        ({"consent_id": None}, Code.BAD_PAYLOAD),  # a consumer's granted access names its consent
        ({"result_hash": None}, Code.BAD_PAYLOAD),  # granted needs a result hash
        ({"reason": "scope"}, Code.BAD_PAYLOAD),  # and no reason
        ({"result_hash": b"short"}, Code.BAD_PAYLOAD),
        ({"records": [{"record_id": rid(1)}]}, Code.BAD_PAYLOAD),
        ({"records": [{"record_id": rid(1), "version": 0}]}, Code.BAD_PAYLOAD),
        ({"data_types": []}, Code.BAD_PAYLOAD),
        ({"mode": "everything"}, Code.BAD_PAYLOAD),
        ({"outcome": "maybe"}, Code.BAD_PAYLOAD),
        ({"extra": 1}, Code.BAD_PAYLOAD),
        ({"request_digest": None}, Code.BAD_PAYLOAD),
        ({"consumer": "Bank"}, Code.BAD_PAYLOAD),
    ],
)
def test_granted_access_payload_refusals(consented, changes, code):
    chain, document = consented
    assert unchanged(chain, record_access(access(document, **changes))) == code


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"reason": None}, Code.BAD_PAYLOAD),  # refused needs a reason
        ({"result_hash": bytes(32)}, Code.BAD_PAYLOAD),  # and no result hash
        ({"records": [{"record_id": rid(1), "version": 1}]}, Code.BAD_PAYLOAD),  # and releases nothing
        ({"reason": "because"}, Code.BAD_PAYLOAD),  # reasons are the stable codes
    ],
)
def test_refused_access_payload_refusals(consented, changes, code):
    chain, document = consented
    assert unchanged(chain, record_access(access(document, outcome="refused", **changes))) == code


# --- refused accesses are recorded ----------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(REFUSAL_REASONS))
def test_a_refused_access_is_recorded_and_leaves_the_consent_alone(consented, reason):
    chain, document = consented
    before = chain.read(consent_key(document["consent_id"]))
    outcome = commit_one(chain, record_access(access(document, outcome="refused", reason=reason)))
    assert outcome.code is Code.VALID
    assert chain.read(consent_key(document["consent_id"])) == before
    index = outcome.log_index
    assert chain.read(access_key(index)) == {
        "outcome": "refused",
        "reason": reason,
        "subject": ALICE.public_key,
        "data_types": [INCOME],
        "purpose": "loan.credit-check",
        "mode": "raw",
        "consumer": "bank",
        "consent_id": document["consent_id"],
        "time": T0,
        "records": 0,
    }
    assert chain.read(subject_access_key(ALICE.public_key, index)) == b""
    assert chain.read(consumer_access_key("bank", index)) == b""


def test_refusals_are_recorded_whatever_the_consents_state(chain):
    document = terms(1, max_uses=1)
    activate(chain, document)
    assert chain.codes([record_access(access(document))]) == [Code.VALID]  # now exhausted
    before = chain.read(consent_key(document["consent_id"]))
    envelopes = [
        record_access(access(document, outcome="refused", reason="exhausted")),
        record_access(access(terms(9), outcome="refused", reason="no_consent")),  # no such consent
        record_access(access(document, outcome="refused", reason="no_consent", consent_id=None)),
        record_access(access(document, outcome="refused", reason="no_consent", consumer="insurer", requester=INSURER)),
    ]
    outcome = chain.commit(envelopes)
    assert [t.code for t in outcome.txs] == [Code.VALID] * 4
    assert chain.read(consent_key(document["consent_id"])) == before
    indexes = [t.log_index for t in outcome.txs]
    assert set(chain.keys(b"consumer-access/bank/")) >= {consumer_access_key("bank", i) for i in indexes[:3]}
    assert set(chain.keys(b"consumer-access/insurer/")) == {consumer_access_key("insurer", indexes[3])}
    assert {chain.read(access_key(i))["reason"] for i in indexes} == {"exhausted", "no_consent"}


def test_a_refusal_does_not_use_up_the_frequency_budget(chain):
    document = terms(1, frequency={"max": 1, "per": "day"})
    activate(chain, document)
    refused = [record_access(access(document, outcome="refused", reason="frequency")) for _ in range(3)]
    assert chain.codes(refused + [record_access(access(document))]) == [Code.VALID] * 4
    consent = chain.read(consent_key(document["consent_id"]))
    assert (consent["uses"], consent["window_uses"]) == (1, 1)


# --- the subject's own view -----------------------------------------------------------------


def test_a_citizen_sees_their_own_records_without_a_consent(chain):
    assert chain.codes([publish(rid(1)), publish(rid(2), data_type=MEDICAL, as_of=0)]) == [Code.VALID] * 2
    payload = access(data_types=[INCOME, MEDICAL], records=[(rid(1), 1), (rid(2), 1)])
    outcome = commit_one(chain, record_access(payload))
    assert outcome.code is Code.VALID
    summary = chain.read(access_key(outcome.log_index))
    assert summary == {
        "outcome": "granted",
        "subject": ALICE.public_key,
        "data_types": [INCOME, MEDICAL],
        "purpose": SUBJECT_VIEW_PURPOSE,
        "mode": "raw",
        "time": T0,
        "records": 2,
    }
    assert chain.read(subject_access_key(ALICE.public_key, outcome.log_index)) == b""
    assert chain.keys(b"consumer-access/") == {}
    assert chain.keys(b"consent/") == {}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"requester": BOB}, Code.FORBIDDEN),  # someone else's data
        ({"requester": BANK}, Code.FORBIDDEN),
        ({"purpose": "loan.credit-check"}, Code.FORBIDDEN),
        ({"consent_id": bytes(16)}, Code.FORBIDDEN),
        ({"records": [(rid(3), 1)]}, Code.FORBIDDEN),  # Bob's record in Alice's view
        ({"records": [(rid(1), 1), (rid(1), 1)]}, Code.BAD_PAYLOAD),
        ({"records": [(rid(1), 2)]}, Code.WRONG_STATE),
    ],
)
def test_the_subjects_own_view_refusals(chain, changes, code):
    changes = dict(changes)
    assert chain.codes([publish(rid(1)), publish(rid(3), subject=BOB)]) == [Code.VALID] * 2
    records = changes.pop("records", [(rid(1), 1)])
    payload = access(records=records, **changes)
    assert unchanged(chain, record_access(payload)) == code


def test_a_refused_own_view_is_recorded_under_the_subject_only(chain):
    outcome = commit_one(chain, record_access(access(outcome="refused", reason="scope")))
    assert outcome.code is Code.VALID
    assert chain.read(access_key(outcome.log_index))["outcome"] == "refused"
    assert chain.read(subject_access_key(ALICE.public_key, outcome.log_index)) == b""
    assert chain.keys(b"consumer-access/") == {}
    assert unchanged(chain, record_access(access(outcome="refused", reason="scope", requester=BOB))) == Code.FORBIDDEN


def test_the_own_view_ignores_consent_date_ranges(chain):
    assert chain.codes([publish(rid(1), as_of=0), publish(rid(2), as_of=T0 + 365 * DAY)]) == [Code.VALID] * 2
    assert chain.codes([record_access(access(records=[(rid(1), 1), (rid(2), 1)]))]) == [Code.VALID]


# --- next of kin, end to end ----------------------------------------------------------------


def test_an_insurer_receives_the_death_registration_on_a_relatives_consent(chain):
    document = kin_terms()
    assert chain.codes([relate(ALICE, CAROL), death_registration(rid(1))]) == [Code.VALID] * 2
    assert chain.codes([request(document, signer=INSURER), grant(document, citizen=CAROL)]) == [Code.VALID] * 2
    payload = access(document, records=[(rid(1), 1)], consumer="insurer", requester=INSURER)
    assert chain.codes([record_access(payload)]) == [Code.VALID]
    assert chain.read(consent_key(document["consent_id"]))["uses"] == 1
    # the relative's revocation ends it
    assert chain.codes([answer("revoke", document["consent_id"], citizen=CAROL), record_access(payload)]) == [Code.VALID, Code.POLICY_NOT_MET]


# --- robustness -----------------------------------------------------------------------------

_FUZZ_CONSENTS = [terms(1, max_uses=3, frequency={"max": 2, "per": "hour"}), terms(2, subject=BOB, mode="computed")]


@pytest.fixture(scope="module")
def fuzz_base() -> ConsentChain:
    chain = fresh_chain()
    activate(chain, _FUZZ_CONSENTS[0])
    activate(chain, _FUZZ_CONSENTS[1], citizen=BOB)
    assert chain.codes([publish(rid(1)), publish(rid(2), subject=BOB), publish(rid(3), data_type=MEDICAL), correct(rid(1), 2)]) == [Code.VALID] * 4
    return chain


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "requester": st.sampled_from([ALICE, ALICE, BOB, BANK, BANK, INSURER, NODE]),
            "subject": st.sampled_from([ALICE, ALICE, BOB, CAROL]),
            "data_types": st.one_of(st.just([INCOME]), st.lists(st.sampled_from([INCOME, MEDICAL, DEATH]), min_size=1, max_size=3, unique=True)),
            "purpose": st.sampled_from(["loan.credit-check", "loan.credit-check", SUBJECT_VIEW_PURPOSE, "marketing"]),
            "mode": st.sampled_from(["raw", "computed"]),
            "outcome": st.sampled_from(["granted", "refused"]),
        },
        optional={
            "consumer": st.sampled_from(["bank", "insurer", "tax"]),
            "consent_id": st.sampled_from([c["consent_id"] for c in _FUZZ_CONSENTS] * 3 + [bytes(16)]),
        },
    ),
    # the outcome's companions: usually the right one, sometimes none, the wrong one or both
    st.sampled_from(["right"] * 6 + ["none", "wrong", "both"]),
    st.sampled_from(sorted(REFUSAL_REASONS)),
    st.lists(st.tuples(st.sampled_from([rid(1), rid(2), rid(3), rid(4)]), st.integers(1, 3)), max_size=3),
    st.sampled_from([NODE, NODE, NODE, BIGDATA]),
    st.sampled_from([0, 30 * 60_000, HOUR, 40 * DAY]),
)
def test_no_access_record_breaks_the_rule_and_a_refused_one_changes_nothing(fuzz_base, fields, companions, reason, records, signer, later):
    chain = copy.deepcopy(fuzz_base)
    now = T0 + later
    payload = {**access(_FUZZ_CONSENTS[0], records=records), "requester": fields["requester"].public_key, "subject": fields["subject"].public_key}
    for name in ("consumer", "consent_id", "result_hash", "reason"):
        payload.pop(name, None)
    payload.update({k: v for k, v in fields.items() if k not in ("requester", "subject")})
    granted = fields["outcome"] == "granted"
    if companions in ("both", "right" if granted else "wrong"):
        payload["result_hash"] = bytes(32)
    if companions in ("both", "wrong" if granted else "right"):
        payload["reason"] = reason
    if not granted and companions == "right":
        payload["records"] = []
    before = chain.state()
    (code,) = chain.codes([record_access(payload, signer=signer, time_ms=now)], time=now)
    assert code is not Code.RULE_FAILED
    if code is not Code.VALID:
        assert chain.state() == before
    else:
        assert signer is NODE
        assert ("consumer" in payload) or (payload["requester"] == payload["subject"] and payload["purpose"] == SUBJECT_VIEW_PURPOSE)
        written = {k for k in chain.state() if k not in before or chain.state()[k] != before[k]}
        assert any(k.startswith(b"access/") for k in written)
        assert any(k.startswith(b"consent/") for k in written) == (payload["outcome"] == "granted" and "consumer" in payload)
