"""privacy.budget, threshold.keyset, aggregate.request / computed / share.

The budget is spent when a request is ordered, so every peer refuses an exhausted one the same way
and a refused request changes nothing; the custodian's receipt must use the budget's minimum cohort;
the result is released only when every party of the joint key gave its share.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compute_builders import (
    AUDIT,
    PROFILE,
    REGULATOR,
    aggregate_computed,
    aggregate_request,
    budget,
    compute_chain,
    keyset,
    share,
)
from consent_builders import ALICE, BANK, BIGDATA, CIVIL, DEATH, HEALTH, INCOME, INSURER, MEDICAL, NODE, NODE_HEALTH, OUTSIDER, TAX, ConsentChain
from consent_builders import unchanged
from ledger.rules import Code
from ledger.rules.aggregates import aggregate_key, budget_key, keyset_key, spent_key

KS = b"K" * 32  # parties audit, tax, bank
KS_NO_PROVIDER = b"N" * 32  # parties audit, bank, insurer
PARTIES = [AUDIT, "tax", "bank"]


def aid(n: int) -> bytes:
    return n.to_bytes(16, "big")


@lru_cache(maxsize=1)
def _with_keys() -> ConsentChain:
    chain = compute_chain()
    codes = chain.codes([keyset(KS, PARTIES), keyset(KS_NO_PROVIDER, [AUDIT, "bank", "insurer"], signer=INSURER)])
    assert codes == [Code.VALID, Code.VALID], codes
    return chain


@pytest.fixture
def chain() -> ConsentChain:
    """The computation network with the two joint keys registered and no budget set."""
    return copy.deepcopy(_with_keys())


@pytest.fixture
def budgeted(chain) -> ConsentChain:
    """tax.profile's budget: 1.0 per consumer, 1.5 in all, cohorts of at least 10."""
    assert chain.codes([budget(1000, 1500)]) == [Code.VALID]
    return chain


def commit_one(chain: ConsentChain, envelope: bytes):
    (outcome,) = chain.commit([envelope]).txs
    return outcome


# --- privacy.budget -------------------------------------------------------------------------


def test_the_provider_sets_a_budget(chain):
    assert chain.codes([budget(1000, 1500, min_cohort=25)]) == [Code.VALID]
    assert budget_key(PROFILE) == b"dp-budget/" + PROFILE.encode()
    assert chain.read(budget_key(PROFILE)) == {
        "data_type": PROFILE,
        "consumer_epsilon_milli": 1000,
        "total_epsilon_milli": 1500,
        "min_cohort": 25,
        "spent_milli": 0,
    }


def test_resetting_a_budget_keeps_what_was_spent(budgeted):
    chain = budgeted
    assert chain.codes([aggregate_request(aid(1), KS, epsilon_milli=700)]) == [Code.VALID]
    assert chain.codes([budget(2000, 5000, min_cohort=50)]) == [Code.VALID]
    assert chain.read(budget_key(PROFILE)) == {
        "data_type": PROFILE,
        "consumer_epsilon_milli": 2000,
        "total_epsilon_milli": 5000,
        "min_cohort": 50,
        "spent_milli": 700,
    }
    assert chain.read(spent_key(PROFILE, "bank")) == 700
    # a lower cap than what is spent stops further spending, nothing is given back
    assert chain.codes([budget(500, 600)]) == [Code.VALID]
    assert unchanged(chain, aggregate_request(aid(2), KS, signer=INSURER, epsilon_milli=1)) == Code.POLICY_NOT_MET


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        (budget(1000, 1500, signer=HEALTH), Code.FORBIDDEN),  # a provider, not of this type
        (budget(1000, 1500, signer=CIVIL), Code.FORBIDDEN),
        (budget(1000, 1500, signer=BANK), Code.FORBIDDEN),
        (budget(1000, 1500, signer=REGULATOR), Code.FORBIDDEN),
        (budget(1000, 1500, signer=BIGDATA), Code.FORBIDDEN),
        (budget(1000, 1500, signer=NODE), Code.UNKNOWN_SIGNER),
        (budget(1000, 1500, data_type="tax.unknown"), Code.NOT_FOUND),
        (budget(1001, 1000), Code.BAD_PAYLOAD),  # consumer cap above the global cap
        (budget(0, 1000), Code.BAD_PAYLOAD),
        (budget(1000, 100_001), Code.BAD_PAYLOAD),
        (budget(1000, 1500, min_cohort=1), Code.BAD_PAYLOAD),  # a cohort of one is one citizen's value
    ],
    ids=["other-provider", "third-provider", "consumer", "regulator", "custodian", "node", "unknown-type", "caps-inverted", "zero-cap", "cap-too-big", "cohort-1"],
)
def test_budget_refusals(chain, envelope, code):
    assert unchanged(chain, envelope) == code


def test_each_type_has_its_own_budget(chain):
    assert chain.codes([budget(100, 200, data_type=INCOME), budget(300, 400, data_type=DEATH, signer=CIVIL)]) == [Code.VALID] * 2
    assert chain.read(budget_key(INCOME))["consumer_epsilon_milli"] == 100
    assert chain.read(budget_key(DEATH))["consumer_epsilon_milli"] == 300
    assert chain.read(budget_key(PROFILE)) is None


# --- threshold.keyset -----------------------------------------------------------------------


def test_a_party_registers_a_joint_key(chain):
    assert chain.read(keyset_key(KS)) == {"keyset_id": KS, "params": "bfv-threshold-v1", "parties": PARTIES, "registered_by": "bank"}
    for n, signer, parties in [(1, REGULATOR, [AUDIT, "health"]), (2, BIGDATA, ["bigdata", AUDIT, "tax"]), (3, TAX, ["tax", AUDIT])]:
        assert chain.codes([keyset(bytes([n]) * 32, parties, signer=signer)]) == [Code.VALID]
        assert chain.read(keyset_key(bytes([n]) * 32))["registered_by"] == chain.read(b"member/" + signer.public_key)["org"]


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        (keyset(KS, [AUDIT, "bank"]), Code.ALREADY_EXISTS),
        (keyset(b"\x01" * 32, [AUDIT, "tax"]), Code.FORBIDDEN),  # the bank is not a party
        (keyset(b"\x01" * 32, ["bank", "tax"]), Code.POLICY_NOT_MET),  # no regulator
        (keyset(b"\x01" * 32, ["bank", AUDIT, "nobody"]), Code.NOT_FOUND),
        (keyset(b"\x01" * 32, ["bank"]), Code.BAD_PAYLOAD),  # a joint key of one
        (keyset(b"\x01" * 32, ["bank", AUDIT, "bank"]), Code.BAD_PAYLOAD),
        (keyset(b"\x01" * 32, ["bank", AUDIT, "tax", "health", "civil", "insurer", "bigdata", "x", "y"]), Code.BAD_PAYLOAD),  # > 8
        (keyset(b"\x01" * 32, [AUDIT, "bank"], signer=ALICE), Code.FORBIDDEN),
        (keyset(b"\x01" * 32, [AUDIT, "bank"], signer=NODE), Code.UNKNOWN_SIGNER),
        (keyset(b"\x01" * 31, [AUDIT, "bank"]), Code.BAD_PAYLOAD),
    ],
    ids=["taken-id", "signer-not-party", "no-regulator", "unknown-party", "one-party", "repeated-party", "nine-parties", "citizen", "node", "short-id"],
)
def test_keyset_refusals(chain, envelope, code):
    assert unchanged(chain, envelope) == code


# --- aggregate.request ----------------------------------------------------------------------


def test_a_request_spends_its_epsilon_when_ordered(budgeted):
    chain = budgeted
    outcome = commit_one(chain, aggregate_request(aid(1), KS, epsilon_milli=400))
    assert outcome.code is Code.VALID
    assert aggregate_key(aid(1)) == b"aggregate/" + aid(1)
    assert chain.read(aggregate_key(aid(1))) == {
        "aggregate_id": aid(1),
        "data_type": PROFILE,
        "field": "annual",
        "statistic": "mean",
        "lower": 0,
        "upper": 10_000_000,
        "epsilon_milli": 400,
        "keyset_id": KS,
        "purpose": "market.statistics",
        "requester": "bank",
        "parties": PARTIES,
        "status": "requested",
        "requested": outcome.log_index,
        "shares": [],
    }
    assert spent_key(PROFILE, "bank") == b"dp-spent/tax.profile/bank"
    assert chain.read(spent_key(PROFILE, "bank")) == 400
    assert chain.read(budget_key(PROFILE))["spent_milli"] == 400


def test_a_regulator_requests_under_its_own_cap(budgeted):
    chain = budgeted
    assert chain.codes([aggregate_request(aid(1), KS, signer=REGULATOR, epsilon_milli=1000)]) == [Code.VALID]
    assert chain.read(aggregate_key(aid(1)))["requester"] == AUDIT
    assert chain.read(spent_key(PROFILE, AUDIT)) == 1000
    assert chain.read(spent_key(PROFILE, "bank")) is None


def test_the_consumer_cap_is_reached_exactly_then_refused(budgeted):
    chain = budgeted
    assert chain.codes([aggregate_request(aid(1), KS, epsilon_milli=600), aggregate_request(aid(2), KS, epsilon_milli=400)]) == [Code.VALID] * 2
    assert chain.read(spent_key(PROFILE, "bank")) == 1000
    assert unchanged(chain, aggregate_request(aid(3), KS, epsilon_milli=1)) == Code.POLICY_NOT_MET
    # another consumer still has its own cap, within what is left of the global one
    assert chain.codes([aggregate_request(aid(3), KS, signer=INSURER, epsilon_milli=500)]) == [Code.VALID]
    assert chain.read(budget_key(PROFILE))["spent_milli"] == 1500


def test_colluding_consumers_share_the_global_cap(budgeted):
    chain = budgeted
    assert chain.codes([aggregate_request(aid(1), KS, epsilon_milli=900), aggregate_request(aid(2), KS, signer=INSURER, epsilon_milli=500)]) == [Code.VALID] * 2
    assert unchanged(chain, aggregate_request(aid(3), KS, signer=INSURER, epsilon_milli=101)) == Code.POLICY_NOT_MET  # insurer at 600 of 1000
    assert unchanged(chain, aggregate_request(aid(3), KS, signer=REGULATOR, epsilon_milli=101)) == Code.POLICY_NOT_MET
    assert chain.codes([aggregate_request(aid(3), KS, signer=REGULATOR, epsilon_milli=100)]) == [Code.VALID]
    assert chain.read(budget_key(PROFILE))["spent_milli"] == 1500


def test_no_budget_means_no_aggregate(chain):
    assert unchanged(chain, aggregate_request(aid(1), KS)) == Code.POLICY_NOT_MET


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"lower": 11, "upper": 10}, Code.BAD_PAYLOAD),
        ({"field": "employer"}, Code.BAD_PAYLOAD),  # text
        ({"field": "taxpayer"}, Code.BAD_PAYLOAD),  # identifier
        ({"field": "born"}, Code.BAD_PAYLOAD),  # date
        ({"field": "filed"}, Code.BAD_PAYLOAD),  # month
        ({"field": "salary"}, Code.BAD_PAYLOAD),  # no such field
        ({"data_type": "tax.unknown"}, Code.NOT_FOUND),
        ({"keyset_id": b"\x09" * 32}, Code.NOT_FOUND),
        ({"keyset_id": KS_NO_PROVIDER}, Code.POLICY_NOT_MET),  # tax holds no part of that key
        ({"statistic": "median"}, Code.BAD_PAYLOAD),
        ({"epsilon_milli": 0}, Code.BAD_PAYLOAD),
        ({"epsilon_milli": 100_001}, Code.BAD_PAYLOAD),
        ({"upper": 2**26 + 1}, Code.BAD_PAYLOAD),  # beyond the threshold parameter set's proven range
        ({"purpose": None}, Code.BAD_PAYLOAD),
        ({"epsilon_milli": 1001}, Code.POLICY_NOT_MET),  # above the bank's cap on its own
    ],
)
def test_request_refusals(budgeted, changes, code):
    changes = dict(changes)
    keyset_id = changes.pop("keyset_id", KS)
    assert unchanged(budgeted, aggregate_request(aid(1), keyset_id, **changes)) == code


@pytest.mark.parametrize(("field", "statistic"), [("dependants", "sum"), ("retired", "count"), ("monthly", "mean"), ("annual", "count")])
def test_numeric_fields_of_every_kind_can_be_aggregated(budgeted, field, statistic):
    assert budgeted.codes([aggregate_request(aid(1), KS, field=field, statistic=statistic, epsilon_milli=10)]) == [Code.VALID]


@pytest.mark.parametrize(
    ("signer", "code"),
    [(TAX, Code.FORBIDDEN), (BIGDATA, Code.FORBIDDEN), (ALICE, Code.FORBIDDEN), (NODE, Code.UNKNOWN_SIGNER), (OUTSIDER, Code.UNKNOWN_SIGNER)],
    ids=["provider", "custodian", "citizen", "node", "outsider"],
)
def test_only_consumers_and_regulators_request(budgeted, signer, code):
    assert unchanged(budgeted, aggregate_request(aid(1), KS, signer=signer)) == code


def test_an_aggregate_id_is_used_once(budgeted):
    chain = budgeted
    assert chain.codes([aggregate_request(aid(1), KS, epsilon_milli=100)]) == [Code.VALID]
    assert unchanged(chain, aggregate_request(aid(1), KS, signer=INSURER, epsilon_milli=100)) == Code.ALREADY_EXISTS


@lru_cache(maxsize=4)
def _property_base(consumer_cap: int, total_cap: int) -> ConsentChain:
    chain = copy.deepcopy(_with_keys())
    assert chain.codes([budget(consumer_cap, total_cap)]) == [Code.VALID]
    return chain


REQUESTERS = {"bank": BANK, "insurer": INSURER, AUDIT: REGULATOR}


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([(300, 300), (300, 700), (1000, 1500), (1000, 5000)]),
    st.lists(st.tuples(st.sampled_from(sorted(REQUESTERS)), st.integers(1, 700)), min_size=1, max_size=12),
)
def test_no_sequence_of_requests_overspends_a_cap(caps, requests):
    consumer_cap, total_cap = caps
    chain = copy.deepcopy(_property_base(consumer_cap, total_cap))
    envelopes = [aggregate_request(aid(n), KS, signer=REQUESTERS[org], epsilon_milli=eps) for n, (org, eps) in enumerate(requests)]
    codes = chain.codes(envelopes)
    # the model: a request passes iff its requester and everyone together stay within the caps
    spent: dict[str, int] = {}
    for (org, eps), code in zip(requests, codes):
        fits = spent.get(org, 0) + eps <= consumer_cap and sum(spent.values()) + eps <= total_cap
        assert code is (Code.VALID if fits else Code.POLICY_NOT_MET)
        if fits:
            spent[org] = spent.get(org, 0) + eps
    assert sum(spent.values()) <= total_cap
    assert all(value <= consumer_cap for value in spent.values())
    assert chain.read(budget_key(PROFILE))["spent_milli"] == sum(eps for (_, eps), code in zip(requests, codes) if code is Code.VALID)
    for org in REQUESTERS:
        assert chain.read(spent_key(PROFILE, org)) == spent.get(org)
    assert [chain.read(aggregate_key(aid(n))) is not None for n in range(len(requests))] == [code is Code.VALID for code in codes]


# --- aggregate.computed ---------------------------------------------------------------------


@pytest.fixture
def requested(budgeted) -> ConsentChain:
    assert budgeted.codes([aggregate_request(aid(1), KS)]) == [Code.VALID]
    return budgeted


def test_the_custodian_node_records_a_computed_aggregate(requested):
    chain = requested
    assert unchanged(chain, aggregate_computed(aid(2))) == Code.NOT_FOUND
    before = chain.read(aggregate_key(aid(1)))
    outcome = commit_one(chain, aggregate_computed(aid(1)))
    assert outcome.code is Code.VALID
    assert chain.read(aggregate_key(aid(1))) == {
        **before,
        "status": "computed",
        "receipt": {
            "outcome": "computed",
            "min_cohort": 10,
            "inputs_root": b"\x01" * 32,
            "result_hash": b"\x02" * 32,
            "engine": "openfhe test",
            "params": b"\xa0",
        },
        "computed": outcome.log_index,
    }
    assert unchanged(chain, aggregate_computed(aid(1))) == Code.WRONG_STATE


def test_a_cohort_too_small_is_refused_and_takes_no_shares(requested):
    chain = requested
    before = chain.read(aggregate_key(aid(1)))
    outcome = commit_one(chain, aggregate_computed(aid(1), "refused"))
    assert outcome.code is Code.VALID
    aggregate = chain.read(aggregate_key(aid(1)))
    assert aggregate == {
        **before,
        "status": "refused",
        "receipt": {"outcome": "refused", "reason": "cohort_too_small", "min_cohort": 10, "engine": "openfhe test", "params": b"\xa0"},
        "computed": outcome.log_index,
    }
    assert unchanged(chain, share(aid(1), BANK)) == Code.WRONG_STATE
    assert unchanged(chain, aggregate_computed(aid(1))) == Code.WRONG_STATE
    assert chain.read(spent_key(PROFILE, "bank")) == 500  # the epsilon stays spent: the refusal itself says something


@pytest.mark.parametrize(
    "signer",
    [BIGDATA, NODE_HEALTH, HEALTH, BANK, REGULATOR, OUTSIDER],
    ids=["custodian-admin", "provider-node", "provider", "consumer", "regulator", "outsider"],
)
def test_only_a_custodian_node_computes(requested, signer):
    assert unchanged(requested, aggregate_computed(aid(1), signer=signer)) == Code.FORBIDDEN


@pytest.mark.parametrize(
    ("outcome", "changes", "code"),
    [
        ("computed", {"result_hash": None}, Code.BAD_PAYLOAD),
        ("computed", {"inputs_root": None}, Code.BAD_PAYLOAD),
        ("computed", {"reason": "cohort_too_small"}, Code.BAD_PAYLOAD),
        ("refused", {"reason": None}, Code.BAD_PAYLOAD),
        ("refused", {"reason": "too_noisy"}, Code.BAD_PAYLOAD),
        ("refused", {"inputs_root": b"\x01" * 32, "result_hash": b"\x02" * 32}, Code.BAD_PAYLOAD),
        ("computed", {"min_cohort": 9}, Code.BAD_PAYLOAD),  # the budget says 10
        ("computed", {"min_cohort": 11}, Code.BAD_PAYLOAD),
        ("computed", {"params": b"\x00" * 8193}, Code.BAD_PAYLOAD),
    ],
)
def test_computed_refusals(requested, outcome, changes, code):
    assert unchanged(requested, aggregate_computed(aid(1), outcome, **changes)) == code


@pytest.mark.parametrize("field", ["inputs_root", "result_hash"])
def test_a_refused_receipt_carries_no_result(requested, field):
    assert unchanged(requested, aggregate_computed(aid(1), "refused", **{field: b"\x05" * 32})) == Code.BAD_PAYLOAD


def test_the_receipt_follows_the_budgets_current_min_cohort(requested):
    chain = requested
    assert chain.codes([budget(1000, 1500, min_cohort=40)]) == [Code.VALID]
    assert unchanged(chain, aggregate_computed(aid(1), min_cohort=10)) == Code.BAD_PAYLOAD
    assert chain.codes([aggregate_computed(aid(1), min_cohort=40)]) == [Code.VALID]


# --- aggregate.share ------------------------------------------------------------------------


@pytest.fixture
def computed(requested) -> ConsentChain:
    assert requested.codes([aggregate_computed(aid(1))]) == [Code.VALID]
    return requested


def test_the_result_is_released_when_every_party_shared(computed):
    chain = computed
    before = chain.read(aggregate_key(aid(1)))
    first = commit_one(chain, share(aid(1), TAX, b"\x0a" * 32))
    assert first.code is Code.VALID
    assert chain.read(aggregate_key(aid(1))) == {**before, "shares": [{"party": "tax", "share_hash": b"\x0a" * 32, "log_index": first.log_index}]}
    assert unchanged(chain, share(aid(1), TAX, b"\x0b" * 32)) == Code.ALREADY_EXISTS
    second = commit_one(chain, share(aid(1), REGULATOR, b"\x0c" * 32))
    assert chain.read(aggregate_key(aid(1)))["status"] == "computed"
    last = commit_one(chain, share(aid(1), BANK, b"\x0d" * 32))
    assert last.code is Code.VALID
    released = chain.read(aggregate_key(aid(1)))
    assert released["status"] == "released"
    assert released["shares"] == [
        {"party": "tax", "share_hash": b"\x0a" * 32, "log_index": first.log_index},
        {"party": AUDIT, "share_hash": b"\x0c" * 32, "log_index": second.log_index},
        {"party": "bank", "share_hash": b"\x0d" * 32, "log_index": last.log_index},
    ]
    assert unchanged(chain, share(aid(1), BANK)) == Code.WRONG_STATE


@pytest.mark.parametrize(
    ("signer", "code"),
    [(INSURER, Code.FORBIDDEN), (HEALTH, Code.FORBIDDEN), (BIGDATA, Code.FORBIDDEN), (ALICE, Code.FORBIDDEN), (NODE, Code.UNKNOWN_SIGNER)],
    ids=["consumer-not-party", "provider-not-party", "custodian-not-party", "citizen", "node"],
)
def test_only_parties_share(computed, signer, code):
    assert unchanged(computed, share(aid(1), signer)) == code


def test_shares_wait_for_the_computed_result(requested):
    assert unchanged(requested, share(aid(1), TAX)) == Code.WRONG_STATE
    assert unchanged(requested, share(aid(2), TAX)) == Code.NOT_FOUND
    assert unchanged(requested, share(aid(1), INSURER)) == Code.FORBIDDEN  # not a party, whatever the state


def test_a_requester_outside_the_joint_key_waits_for_the_parties(budgeted):
    """The insurer asks under a key it holds no part of: the parties' shares alone release the result."""
    chain = budgeted
    envelopes = [aggregate_request(aid(1), KS, signer=INSURER, epsilon_milli=100), aggregate_computed(aid(1))]
    envelopes += [share(aid(1), signer) for signer in (REGULATOR, TAX)]
    assert chain.codes(envelopes) == [Code.VALID] * 4
    assert chain.read(aggregate_key(aid(1)))["status"] == "computed"
    assert unchanged(chain, share(aid(1), INSURER)) == Code.FORBIDDEN
    assert chain.codes([share(aid(1), BANK)]) == [Code.VALID]
    assert chain.read(aggregate_key(aid(1)))["status"] == "released"


def test_each_type_is_aggregated_under_its_own_budget_and_fields(chain):
    """tax.income has a budget, tax.profile none; a medical diagnosis is text, never aggregated."""
    assert chain.codes([budget(500, 500, data_type=INCOME)]) == [Code.VALID]
    assert unchanged(chain, aggregate_request(aid(1), KS, data_type=MEDICAL, field="diagnosis")) == Code.BAD_PAYLOAD
    assert unchanged(chain, aggregate_request(aid(1), KS_NO_PROVIDER, data_type=INCOME, field="monthly", epsilon_milli=10)) == Code.POLICY_NOT_MET
    assert chain.codes([aggregate_request(aid(1), KS, data_type=INCOME, field="monthly", epsilon_milli=10)]) == [Code.VALID]
    assert chain.read(spent_key(INCOME, "bank")) == 10
    assert unchanged(chain, aggregate_request(aid(2), KS)) == Code.POLICY_NOT_MET  # tax.profile has no budget
