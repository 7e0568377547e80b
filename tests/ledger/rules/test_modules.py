"""module.submit / module.check / module.approve, and sandbox receipts on access.record.

A module is pinned by a consumer, checked by the custodian's node key, approved by the provider of
every type it reads; only then may an access record name it, for the consumer that pinned it and for
exactly the types it reads.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compute_builders import (
    AUDIT,
    PROFILE,
    PROFILE_FIELDS,
    REGULATOR,
    approve,
    check,
    compute_chain,
    item,
    mhash,
    pin,
    sandbox_receipt,
    submit,
)
from consent_builders import (
    ALICE,
    BANK,
    BIGDATA,
    CIVIL,
    DEATH,
    HEALTH,
    INCOME,
    INSURER,
    MEDICAL,
    NODE,
    NODE_HEALTH,
    OUTSIDER,
    PRESCRIPTIONS,
    TAX,
    ConsentChain,
    access,
    activate,
    answer,
    publish,
    record_access,
    rid,
    terms,
)
from ledger.errors import EncodingError
from consent_builders import unchanged
from ledger.rules import Code
from ledger.rules.access import access_key
from ledger.rules.consents import consent_key
from ledger.rules.modules import INPUT_LAYOUT, input_types, module_key

INCOME_ONLY = [[item(INCOME, "monthly", "months:12")]]
INCOME_AND_DEATH = [[item(INCOME, "monthly", "months:6"), item(DEATH, "natural", "value")], [item(INCOME, "taxpayer", "is:370102")]]
MEDICAL_BOTH = [[item(MEDICAL, "visited", "years_to_as_of"), item(PRESCRIPTIONS, "drug", "is:insulin")]]


@pytest.fixture
def chain() -> ConsentChain:
    return compute_chain()


def commit_one(chain: ConsentChain, envelope: bytes):
    (outcome,) = chain.commit([envelope]).txs
    return outcome


# --- module.submit --------------------------------------------------------------------------


def test_a_consumer_pins_a_module_with_its_layout_and_providers(chain):
    outcome = commit_one(chain, submit(mhash(1), INCOME_AND_DEATH, output="bool", description="eligible for a mortgage"))
    assert outcome.code is Code.VALID
    assert module_key(mhash(1)) == b"module/" + mhash(1)
    assert chain.read(module_key(mhash(1))) == {
        "consumer": "bank",
        "name": "loan-score",
        "inputs": INCOME_AND_DEATH,
        "output": "bool",
        "description": "eligible for a mortgage",
        "providers": ["civil", "tax"],
        "approvals": [],
        "status": "submitted",
        "submitted": outcome.log_index,
    }


def test_every_encoding_fits_its_field_kind(chain):
    layout = [
        [item(PROFILE, "annual", "value"), item(PROFILE, "annual", "yuan"), item(PROFILE, "dependants", "value"), item(PROFILE, "retired", "value")],
        [item(PROFILE, "employer", "is:Jinan Steel"), item(PROFILE, "taxpayer", "is:370102"), item(PROFILE, "born", "years_to_as_of")],
        [item(PROFILE, "monthly", "months:1"), item(PROFILE, "monthly", "months:240")],
    ]
    assert chain.codes([submit(mhash(1), layout)]) == [Code.VALID]
    assert chain.read(module_key(mhash(1)))["providers"] == ["tax"]


@pytest.mark.parametrize(
    ("field", "encode"),
    [
        ("monthly", "yuan"),  # series
        ("monthly", "value"),
        ("employer", "value"),  # text
        ("employer", "years_to_as_of"),
        ("born", "months:3"),  # date
        ("born", "value"),
        ("annual", "is:100"),  # amount
        ("annual", "months:1"),
        ("dependants", "yuan"),  # integer
        ("retired", "yuan"),  # boolean
        ("filed", "value"),  # month: no encoding applies
        ("filed", "years_to_as_of"),
        ("taxpayer", "years_to_as_of"),  # identifier
    ],
)
def test_an_encoding_that_does_not_fit_the_field_kind_is_refused(chain, field, encode):
    assert unchanged(chain, submit(mhash(1), [[item(PROFILE, "annual", "value"), item(PROFILE, field, encode)]])) == Code.BAD_PAYLOAD


@pytest.mark.parametrize(
    ("inputs", "changes", "code"),
    [
        ([[item("tax.unknown", "monthly", "months:3")]], {}, Code.NOT_FOUND),
        ([[item(INCOME, "salary", "months:3")]], {}, Code.BAD_PAYLOAD),  # no such field
        ([[item(INCOME, "monthly", "months:0")]], {}, Code.BAD_PAYLOAD),
        ([[item(INCOME, "monthly", "months:241")]], {}, Code.BAD_PAYLOAD),
        ([[item(INCOME, "monthly", "months:07")]], {}, Code.BAD_PAYLOAD),
        ([[item(INCOME, "taxpayer", "is:")]], {}, Code.BAD_PAYLOAD),
        ([[item(INCOME, "taxpayer", "equals:x")]], {}, Code.BAD_PAYLOAD),
        ([], {}, Code.BAD_PAYLOAD),  # reads nothing
        ([[]], {}, Code.BAD_PAYLOAD),  # an empty vector
        ([[item(INCOME, "monthly", "months:1")]] * 17, {}, Code.BAD_PAYLOAD),  # more than 16 vectors
        ([[item(INCOME, "monthly", "months:1")] * 33], {}, Code.BAD_PAYLOAD),  # more than 32 items in a vector
        ([[{**item(INCOME, "monthly", "months:1"), "weight": "3"}]], {}, Code.BAD_PAYLOAD),  # an unknown item key
        (INCOME_ONLY, {"output": "float"}, Code.BAD_PAYLOAD),
        (INCOME_ONLY, {"name": "Loan Score"}, Code.BAD_PAYLOAD),  # not an identifier
        (INCOME_ONLY, {"module_hash": b"\x01" * 31}, Code.BAD_PAYLOAD),
    ],
)
def test_submit_payload_refusals(chain, inputs, changes, code):
    changes = dict(changes)
    module_hash = changes.pop("module_hash", mhash(1))
    assert unchanged(chain, submit(module_hash, inputs, **changes)) == code


@pytest.mark.parametrize(
    ("signer", "code"),
    [(TAX, Code.FORBIDDEN), (REGULATOR, Code.FORBIDDEN), (BIGDATA, Code.FORBIDDEN), (ALICE, Code.FORBIDDEN), (NODE, Code.UNKNOWN_SIGNER), (OUTSIDER, Code.UNKNOWN_SIGNER)],
    ids=["provider", "regulator", "custodian", "citizen", "custodian-node", "outsider"],
)
def test_only_a_consumer_pins_modules(chain, signer, code):
    assert unchanged(chain, submit(mhash(1), INCOME_ONLY, signer=signer)) == code


def test_a_module_is_pinned_once_by_anyone(chain):
    assert chain.codes([submit(mhash(1), INCOME_ONLY)]) == [Code.VALID]
    assert unchanged(chain, submit(mhash(1), INCOME_ONLY)) == Code.ALREADY_EXISTS
    assert unchanged(chain, submit(mhash(1), MEDICAL_BOTH, signer=INSURER)) == Code.ALREADY_EXISTS
    assert chain.read(module_key(mhash(1)))["consumer"] == "bank"


@settings(max_examples=60, deadline=None)
@given(st.integers(-5, 400))
def test_months_takes_one_to_240(n):
    layout = [[item(INCOME, "monthly", f"months:{n}")]]
    if 1 <= n <= 240:
        INPUT_LAYOUT(layout, "inputs")
    else:
        with pytest.raises(EncodingError):
            INPUT_LAYOUT(layout, "inputs")


def test_input_types_are_the_sorted_distinct_types_read():
    assert input_types(INCOME_AND_DEATH) == [DEATH, INCOME]
    assert input_types(MEDICAL_BOTH) == [PRESCRIPTIONS, MEDICAL]  # "medical.prescriptions" < "medical.records"


# --- module.check ---------------------------------------------------------------------------


def test_the_custodian_node_accepts_a_module(chain):
    assert chain.codes([submit(mhash(1), INCOME_ONLY)]) == [Code.VALID]
    pinned = chain.read(module_key(mhash(1)))
    assert chain.codes([check(mhash(1), message="no imports, ABI v1")]) == [Code.VALID]
    assert chain.read(module_key(mhash(1))) == {**pinned, "status": "checked", "check": {"outcome": "accepted", "message": "no imports, ABI v1"}}


def test_a_refused_module_stays_on_the_ledger_with_its_error_and_cannot_be_approved(chain):
    assert chain.codes([submit(mhash(1), INCOME_ONLY)]) == [Code.VALID]
    pinned = chain.read(module_key(mhash(1)))
    assert chain.codes([check(mhash(1), "refused", error="imports_forbidden", message="imports wasi_snapshot_preview1")]) == [Code.VALID]
    assert chain.read(module_key(mhash(1))) == {
        **pinned,
        "status": "refused",
        "check": {"outcome": "refused", "error": "imports_forbidden", "message": "imports wasi_snapshot_preview1"},
    }
    assert unchanged(chain, approve(mhash(1), TAX)) == Code.WRONG_STATE
    assert unchanged(chain, check(mhash(1))) == Code.WRONG_STATE  # no second verdict


@pytest.mark.parametrize(
    "signer",
    [BIGDATA, NODE_HEALTH, HEALTH, BANK, REGULATOR, ALICE, OUTSIDER],
    ids=["custodian-admin", "provider-node", "provider-admin", "consumer", "regulator", "citizen", "outsider"],
)
def test_only_a_custodian_node_checks_modules(chain, signer):
    assert chain.codes([submit(mhash(1), INCOME_ONLY)]) == [Code.VALID]
    assert unchanged(chain, check(mhash(1), signer=signer)) == Code.FORBIDDEN


@pytest.mark.parametrize(
    ("outcome", "extra", "code"),
    [
        ("refused", {}, Code.BAD_PAYLOAD),  # a refusal names its error
        ("accepted", {"error": "trap"}, Code.BAD_PAYLOAD),  # an acceptance names none
        ("refused", {"error": "Not An Id"}, Code.BAD_PAYLOAD),
        ("maybe", {}, Code.BAD_PAYLOAD),
    ],
)
def test_check_payload_refusals(chain, outcome, extra, code):
    assert chain.codes([submit(mhash(1), INCOME_ONLY)]) == [Code.VALID]
    assert unchanged(chain, check(mhash(1), outcome, **extra)) == code


def test_checking_an_unknown_or_already_checked_module(chain):
    assert unchanged(chain, check(mhash(9))) == Code.NOT_FOUND
    assert chain.codes([submit(mhash(1), INCOME_ONLY), check(mhash(1))]) == [Code.VALID] * 2
    assert unchanged(chain, check(mhash(1))) == Code.WRONG_STATE
    assert unchanged(chain, check(mhash(1), "refused", error="late")) == Code.WRONG_STATE


# --- module.approve -------------------------------------------------------------------------


def test_a_module_is_approved_when_every_provider_of_its_types_approved(chain):
    assert chain.codes([submit(mhash(1), INCOME_AND_DEATH), check(mhash(1))]) == [Code.VALID] * 2
    checked = chain.read(module_key(mhash(1)))
    assert chain.codes([approve(mhash(1), TAX)]) == [Code.VALID]
    assert chain.read(module_key(mhash(1))) == {**checked, "approvals": ["tax"], "status": "checked"}
    assert unchanged(chain, approve(mhash(1), TAX)) == Code.ALREADY_EXISTS
    assert chain.codes([approve(mhash(1), CIVIL)]) == [Code.VALID]
    assert chain.read(module_key(mhash(1))) == {**checked, "approvals": ["civil", "tax"], "status": "approved"}
    # approved is final for approvals: a provider's repeat meets the state first
    assert unchanged(chain, approve(mhash(1), CIVIL)) == Code.WRONG_STATE


def test_one_provider_of_several_read_types_approves_once(chain):
    assert chain.codes([submit(mhash(1), MEDICAL_BOTH), check(mhash(1))]) == [Code.VALID] * 2
    assert chain.read(module_key(mhash(1)))["providers"] == ["health"]
    assert chain.codes([approve(mhash(1), HEALTH)]) == [Code.VALID]
    module = chain.read(module_key(mhash(1)))
    assert (module["approvals"], module["status"]) == (["health"], "approved")


@pytest.mark.parametrize(
    ("signer", "code"),
    [(HEALTH, Code.FORBIDDEN), (BANK, Code.FORBIDDEN), (REGULATOR, Code.FORBIDDEN), (BIGDATA, Code.FORBIDDEN), (NODE, Code.UNKNOWN_SIGNER)],
    ids=["provider-of-other-types", "consumer-that-pinned-it", "regulator", "custodian", "custodian-node"],
)
def test_only_a_provider_of_a_read_type_approves(chain, signer, code):
    assert chain.codes([submit(mhash(1), INCOME_AND_DEATH), check(mhash(1))]) == [Code.VALID] * 2
    assert unchanged(chain, approve(mhash(1), signer)) == code


def test_approval_waits_for_the_check(chain):
    assert unchanged(chain, approve(mhash(9), TAX)) == Code.NOT_FOUND
    assert chain.codes([submit(mhash(1), INCOME_ONLY)]) == [Code.VALID]
    assert unchanged(chain, approve(mhash(1), TAX)) == Code.WRONG_STATE
    assert unchanged(chain, approve(mhash(1), HEALTH)) == Code.FORBIDDEN  # not a provider of its data, whatever the state


# --- sandbox receipts on access.record ------------------------------------------------------


@pytest.fixture
def consented(chain) -> tuple[ConsentChain, dict]:
    """Alice granted the bank consent 1 over her income and death registration, computed results only;
    the bank's module 1 reads her income and is approved by the tax bureau."""
    document = terms(1, data_types=[INCOME, DEATH], mode="computed")
    activate(chain, document)
    assert chain.codes([publish(rid(1))]) == [Code.VALID]
    pin(chain, mhash(1), INCOME_ONLY)
    return chain, document


def computed_access(document: dict, module_hash: bytes, *, data_types=(INCOME,), error: str | None = None, **changes) -> dict:
    """A computed access under ``document`` by ``module_hash``: granted with records, or, with ``error``, stopped."""
    if error is None:
        return access(document, records=[(rid(1), 1)], mode="computed", data_types=list(data_types), computation=sandbox_receipt(module_hash), **changes)
    return access(
        document,
        outcome="refused",
        reason=changes.pop("reason", "computation_failed"),
        mode="computed",
        data_types=list(data_types),
        computation=sandbox_receipt(module_hash, error=error),
        **changes,
    )


def test_an_approved_module_computes_under_the_consent(consented):
    chain, document = consented
    outcome = commit_one(chain, record_access(computed_access(document, mhash(1))))
    assert outcome.code is Code.VALID
    summary = chain.read(access_key(outcome.log_index))
    assert summary["outcome"] == "granted"
    assert summary["mode"] == "computed"
    assert summary["computation"] == {"kind": "sandbox", "code_hash": mhash(1)}  # engine, params, fuel and output stay in the tx
    assert summary["records"] == 1
    assert chain.read(consent_key(document["consent_id"]))["uses"] == 1


def test_a_module_pinned_by_another_consumer_is_forbidden(consented):
    chain, document = consented
    pin(chain, mhash(2), INCOME_ONLY, signer=INSURER)
    assert unchanged(chain, record_access(computed_access(document, mhash(2)))) == Code.FORBIDDEN
    assert unchanged(chain, record_access(computed_access(document, mhash(9)))) == Code.FORBIDDEN  # pinned by nobody


@pytest.mark.parametrize("stage", ["submitted", "checked", "refused"])
def test_a_module_not_yet_approved_does_not_run(consented, stage):
    chain, document = consented
    envelopes = [submit(mhash(2), INCOME_AND_DEATH)]
    if stage == "checked":
        envelopes += [check(mhash(2)), approve(mhash(2), TAX)]  # civil has not approved
    if stage == "refused":
        envelopes.append(check(mhash(2), "refused", error="bad_abi"))
    assert chain.codes(envelopes) == [Code.VALID] * len(envelopes)
    assert chain.read(module_key(mhash(2)))["status"] == stage
    payload = computed_access(document, mhash(2), data_types=[INCOME, DEATH])
    assert unchanged(chain, record_access(payload)) == Code.POLICY_NOT_MET
    # the last approval lets the very same access through
    if stage == "checked":
        assert chain.codes([approve(mhash(2), CIVIL), record_access(payload)]) == [Code.VALID, Code.VALID]


@pytest.mark.parametrize("data_types", [[INCOME, DEATH], [DEATH]], ids=["more-than-read", "other-than-read"])
def test_the_access_types_are_exactly_those_the_module_reads(consented, data_types):
    chain, document = consented
    assert unchanged(chain, record_access(computed_access(document, mhash(1), data_types=data_types))) == Code.BAD_PAYLOAD


def test_the_types_of_a_two_type_module_may_come_in_any_order(consented):
    chain, document = consented
    pin(chain, mhash(2), INCOME_AND_DEATH)
    assert chain.codes([record_access(computed_access(document, mhash(2), data_types=[DEATH, INCOME]))]) == [Code.VALID]
    assert unchanged(chain, record_access(computed_access(document, mhash(2), data_types=[INCOME]))) == Code.BAD_PAYLOAD


def test_a_stopped_computation_is_recorded_as_refused_with_its_error(consented):
    chain, document = consented
    outcome = commit_one(chain, record_access(computed_access(document, mhash(1), error="fuel_exhausted")))
    assert outcome.code is Code.VALID
    summary = chain.read(access_key(outcome.log_index))
    assert (summary["outcome"], summary["reason"], summary["records"]) == ("refused", "computation_failed", 0)
    assert summary["computation"] == {"kind": "sandbox", "code_hash": mhash(1), "error": "fuel_exhausted"}
    assert chain.read(consent_key(document["consent_id"]))["uses"] == 0  # nothing was released
    # a stopped run still names an approved module of this consumer, for exactly its types
    pin(chain, mhash(2), INCOME_ONLY, signer=INSURER)
    assert unchanged(chain, record_access(computed_access(document, mhash(2), error="trap"))) == Code.FORBIDDEN
    assert unchanged(chain, record_access(computed_access(document, mhash(1), error="trap", data_types=[DEATH]))) == Code.BAD_PAYLOAD


def test_a_module_not_approved_refusal_names_the_module_whatever_its_state(consented):
    chain, document = consented
    assert chain.codes([submit(mhash(2), INCOME_ONLY)]) == [Code.VALID]
    for module_hash in (mhash(2), mhash(9)):  # submitted only, and pinned by nobody
        payload = computed_access(document, module_hash, error="module_not_approved", reason="module_not_approved")
        outcome = commit_one(chain, record_access(payload))
        assert outcome.code is Code.VALID
        summary = chain.read(access_key(outcome.log_index))
        assert (summary["outcome"], summary["reason"]) == ("refused", "module_not_approved")
        assert summary["computation"]["code_hash"] == module_hash
    assert chain.read(consent_key(document["consent_id"]))["uses"] == 0


@pytest.mark.parametrize(
    ("payload_of", "code"),
    [
        # computation_failed without the receipt
        (lambda d: access(d, outcome="refused", reason="computation_failed", mode="computed"), Code.BAD_PAYLOAD),
        # a stopped run that claims an output
        (lambda d: access(d, outcome="refused", reason="computation_failed", mode="computed", computation={**sandbox_receipt(mhash(1)), "error": "trap"}), Code.BAD_PAYLOAD),
        # a stopped run without its error
        (lambda d: access(d, outcome="refused", reason="computation_failed", mode="computed", computation={**sandbox_receipt(mhash(1), error="x"), "error": None}), Code.BAD_PAYLOAD),
        # a completed run without its output
        (lambda d: access(d, mode="computed", computation={**sandbox_receipt(mhash(1)), "output_hash": None}), Code.BAD_PAYLOAD),
        # a consent refusal carries no receipt: nothing ran
        (lambda d: access(d, outcome="refused", reason="consent_revoked", mode="computed", computation=sandbox_receipt(mhash(1), error="trap")), Code.BAD_PAYLOAD),
        # a computed access without its receipt
        (lambda d: access(d, mode="computed"), Code.BAD_PAYLOAD),
        # a receipt on a masked view
        (lambda d: access(d, mode="masked", computation=sandbox_receipt(mhash(1))), Code.BAD_PAYLOAD),
        # computation_failed on a raw read
        (lambda d: access(d, outcome="refused", reason="computation_failed", mode="raw", computation=sandbox_receipt(mhash(1), error="trap")), Code.BAD_PAYLOAD),
        # the subject's own view runs no consumer's module
        (lambda d: access(mode="computed", computation=sandbox_receipt(mhash(1))), Code.FORBIDDEN),
    ],
    ids=["failed-no-receipt", "failed-with-output", "failed-no-error", "done-no-output", "consent-refusal-with-receipt", "computed-no-receipt", "masked-with-receipt", "failed-raw", "own-view"],
)
def test_receipt_shape_refusals(consented, payload_of, code):
    chain, document = consented
    payload = payload_of(document)
    if "computation" in payload:
        payload["computation"] = {k: v for k, v in payload["computation"].items() if v is not None}
    assert unchanged(chain, record_access(payload)) == code


def test_a_revoked_consent_stops_an_approved_module(consented):
    chain, document = consented
    assert chain.codes([answer("revoke", 1)]) == [Code.VALID]
    assert unchanged(chain, record_access(computed_access(document, mhash(1)))) == Code.POLICY_NOT_MET


def test_the_regulator_is_no_party_to_modules(chain):
    """A regulator audits modules but neither pins nor approves them (it would otherwise be a consumer)."""
    assert AUDIT in chain.read(b"network/orgs")
    layout = [[item(PROFILE, name, "value")] for name, kind in PROFILE_FIELDS.items() if kind in ("amount", "integer", "boolean")]
    assert unchanged(chain, submit(mhash(1), layout, signer=REGULATOR)) == Code.FORBIDDEN
    assert chain.codes([submit(mhash(1), layout), check(mhash(1))]) == [Code.VALID] * 2
    assert unchanged(chain, approve(mhash(1), REGULATOR)) == Code.FORBIDDEN
