"""Privacy computing on a real node: consumers get results, never records.

A real embedded node (LevelDB, HTTP), real wasmtime in real worker processes,
real OpenFHE and OpenDP. Covers: a module's pin, check, approval and run with
its receipt on the ledger; the misbehaving modules stopped and their refusals
logged; the regulator's re-run; masked views; homomorphic scoring equal to the
plaintext score; threshold aggregates released only with every party's share,
under privacy budgets and a minimum cohort.
"""

from __future__ import annotations

import base64
from typing import Iterator

import pytest
import wasmtime

from client.citizen import SafeBox
from client.consumer import Consumer
from client.sdk import ApiError, TransactionRefused
from ledger import codec
from ledger.crypto import sha256
from ledger.rules import Code
from node.runtime import clock_ms
from privacy.features import SourceRecord, build_vectors, flatten
from privacy.sandbox import encode_input, load_module, run_module
from sharing import BANK, PROVIDER_OF, REGULATOR, SAMPLE_PAYLOADS, Sharing, sharing_network

pytestmark = pytest.mark.slow

HPF, TAX, LICENCE, MEDICAL = "housing_fund.contributions", "tax.payments", "market.business_licence", "medical.claims"
LOAN_TYPES = [HPF, LICENCE, TAX]
LOAN_LAYOUT = [
    [{"type": HPF, "field": "monthly", "encode": "months:24"}],
    [{"type": TAX, "field": "monthly", "encode": "months:24"}],
    [
        {"type": LICENCE, "field": "registered", "encode": "years_to_as_of"},
        {"type": LICENCE, "field": "capital", "encode": "yuan"},
        {"type": LICENCE, "field": "status", "encode": "is:active"},
    ],
]
LOOP_FOREVER = """(module (memory (export "memory") 1)
  (func (export "qcl_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "qcl_run") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))"""
GROW_FOREVER = """(module (memory (export "memory") 1)
  (func (export "qcl_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "qcl_run") (param i32 i32) (result i64)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable))"""
IMPORTS_NETWORK = """(module (import "wasi_snapshot_preview1" "sock_send" (func (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "qcl_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 0)))"""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sharing]:
    with sharing_network(tmp_path_factory.mktemp("privacy") / "node") as sharing:
        yield sharing


@pytest.fixture
def borrower(net: Sharing) -> SafeBox:
    box = net.enrol()
    net.publish_samples(box, LOAN_TYPES)
    return box


def computed_consent(net: Sharing, citizen: SafeBox, data_types: list[str] = LOAN_TYPES, **options) -> bytes:
    consent = net.consumer(BANK).request_consent(
        citizen.key.public_key, data_types, purpose_code="loan.credit-score", purpose_text="credit score only",
        valid_days=7, contact="loans@qilubank.example", mode=options.pop("mode", "computed"), **options,
    )
    citizen.grant(consent, confirm_sensitive=True)
    return consent


def approved_module(net: Sharing, wasm: bytes, name: str, layout=LOAN_LAYOUT, output: str = "int") -> bytes:
    bank = net.consumer(BANK)
    module_hash = bank.pin_module(wasm, name, layout, output)
    for provider in sorted({PROVIDER_OF[item["type"]] for vector in layout for item in vector}):
        net.provider(provider).approve_module(module_hash)
    assert bank.module(module_hash)["status"] == "approved"
    return module_hash


@pytest.fixture(scope="module")
def loan_module(net: Sharing) -> bytes:
    return approved_module(net, load_module("loan_score"), "loan-score")


def tagged(wasm: bytes, tag: str) -> bytes:
    """The same module with a custom section naming ``tag``: same code, a different hash to pin."""
    name = b"qcl-test"
    body = bytes([len(name)]) + name + tag.encode()
    return wasm + b"\x00" + bytes([len(body)]) + body


def plain_inputs(layout=LOAN_LAYOUT) -> list[list[int]]:
    as_of = clock_ms() - 86_400_000
    return build_vectors(layout, {t: SourceRecord(t, as_of, SAMPLE_PAYLOADS[t]) for t in SAMPLE_PAYLOADS})


# --- sandbox ---------------------------------------------------------------------------------


def test_a_module_runs_only_once_checked_and_approved_by_every_provider(net, borrower):
    bank = net.consumer(BANK)
    module_hash = bank.pin_module(tagged(load_module("loan_score"), "pending"), "loan-score-pending", LOAN_LAYOUT, "int")
    module = bank.module(module_hash)
    assert (module["status"], module["check"]["outcome"], module["providers"]) == ("checked", "accepted", ["jinan-amr", "jinan-hpf", "jinan-tax"])
    consent = computed_consent(net, borrower)
    net.provider("jinan-hpf").approve_module(module_hash)
    with pytest.raises(ApiError) as refused:
        bank.run_module(consent, borrower.key.public_key, module_hash)
    assert refused.value.code == "module_not_approved"
    (entry,) = [e for e in borrower.access_log() if e["outcome"] == "refused"]
    assert (entry["reason"], entry["mode"], entry["computation"]["code_hash"]) == ("module_not_approved", "computed", module_hash.hex())
    for provider in ("jinan-amr", "jinan-tax"):
        net.provider(provider).approve_module(module_hash)
    assert bank.run_module(consent, borrower.key.public_key, module_hash).output["type"] == "int"


def test_the_sandbox_score_equals_the_plain_score_and_leaves_a_verifiable_receipt(net, borrower, loan_module):
    consent = computed_consent(net, borrower)
    received = net.consumer(BANK).run_module(consent, borrower.key.public_key, loan_module)
    expected = run_module(load_module("loan_score"), encode_input(plain_inputs()), "int")
    assert received.output == {"type": "int", "value": expected.value}
    assert all("payload" not in record and "salt" not in record for record in received.records)
    receipt = received.access["computation"]
    assert (receipt["kind"], receipt["code_hash"], receipt["output_hash"]) == ("sandbox", loan_module, expected.output_hash)
    assert receipt["fuel"] == expected.fuel_used > 0
    assert codec.decode(receipt["params"])["inputs"] == LOAN_LAYOUT
    tx, code = net.leaf(received.log_index)
    assert code == "VALID" and tx.payload == received.access
    (entry,) = borrower.access_log()
    assert (entry["mode"], entry["consumer"], entry["computation"]["kind"]) == ("computed", BANK, "sandbox")
    rerun = net.regulator().replay_computation(received.log_index)
    assert rerun["matches"] and rerun["fuel"] == receipt["fuel"]


def test_a_computed_consent_never_releases_records_or_a_masked_view(net, borrower):
    consent = computed_consent(net, borrower)
    for masked in (False, True):
        with pytest.raises(ApiError) as refused:
            net.consumer(BANK).fetch(consent, borrower.key.public_key, masked=masked)
        assert refused.value.code == "mode"


@pytest.mark.parametrize(
    "wat, error",
    [(LOOP_FOREVER, {"out_of_fuel", "timeout"}), (GROW_FOREVER, {"memory_limit"})],
    ids=["loops-forever", "grows-memory"],
)
def test_a_misbehaving_module_is_stopped_and_the_refusal_is_logged(net, borrower, wat, error):
    module_hash = approved_module(net, wasmtime.wat2wasm(wat), f"misbehaving-{len(wat)}")
    consent = computed_consent(net, borrower)
    with pytest.raises(ApiError) as stopped:
        net.consumer(BANK).run_module(consent, borrower.key.public_key, module_hash)
    assert stopped.value.code == "computation_failed"
    (entry,) = borrower.access_log()
    assert entry["outcome"] == "refused" and entry["reason"] == "computation_failed"
    assert entry["computation"]["error"] in error
    tx, code = net.leaf(entry["log_index"])
    assert code == "VALID" and tx.payload["records"] == [] and "output_hash" not in tx.payload["computation"]


def test_a_module_that_imports_anything_is_refused_on_the_ledger(net):
    bank = net.consumer(BANK)
    wasm = wasmtime.wat2wasm(IMPORTS_NETWORK)
    with pytest.raises(ApiError) as refused:
        bank.pin_module(wasm, "network-client", LOAN_LAYOUT, "int")
    assert refused.value.code == "module_refused" and "imports_forbidden" in refused.value.message
    module = bank.module(sha256(wasm))
    assert (module["status"], module["check"]["error"]) == ("refused", "imports_forbidden")
    with pytest.raises(TransactionRefused) as not_approvable:
        net.provider("jinan-hpf").approve_module(sha256(wasm))
    assert not_approvable.value.code == Code.WRONG_STATE.name


# --- masking ---------------------------------------------------------------------------------


def test_a_masked_consent_releases_masked_payloads_only(net):
    citizen = net.enrol()
    net.publish_samples(citizen, [LICENCE])
    consent = computed_consent(net, citizen, [LICENCE], mode="masked")
    bank = net.consumer(BANK)
    with pytest.raises(ApiError) as refused:
        bank.fetch(consent, citizen.key.public_key)
    assert refused.value.code == "mode"
    received = bank.fetch(consent, citizen.key.public_key, masked=True)
    (record,) = received.records
    raw = SAMPLE_PAYLOADS[LICENCE]
    assert record["payload"]["licence_no"] != raw["licence_no"] and record["payload"]["licence_no"][:4] == raw["licence_no"][:4]
    assert record["payload"]["capital"] == {"from": 50_000_000, "to": 60_000_000}
    assert record["payload"]["registered"] == raw["registered"][:7]
    assert "salt" not in record and received.access["mode"] == "masked"


# --- homomorphic scoring ---------------------------------------------------------------------


def test_a_homomorphic_score_equals_the_plaintext_score(net, borrower):
    from privacy.he.scoring import ScoringKeys

    consent = computed_consent(net, borrower)
    features = flatten(plain_inputs())
    weights = [(-1) ** i * (i + 1) for i in range(len(features))]
    keys = ScoringKeys.generate()
    bundle = keys.encrypt_model(weights, 1234)
    score, received = net.consumer(BANK).score(consent, borrower.key.public_key, keys, bundle, LOAN_LAYOUT)
    assert score == 1234 + sum(w * x for w, x in zip(weights, features))
    assert received.access["computation"]["kind"] == "he_score"
    assert received.records and all("payload" not in record for record in received.records)


# --- threshold aggregates under differential privacy ------------------------------------------


@pytest.fixture(scope="module")
def parties(net: Sharing):
    from client.aggregates import KeyParty, register_joint_key
    from privacy.he.threshold import run_ceremony

    orgs = ["jinan-bigdata", REGULATOR, "jinan-hpf"]
    shares, joint = run_ceremony(orgs)
    keyset_id = register_joint_key(net.client(net.admin_key(REGULATOR)), joint, clock_ms)
    return {org: KeyParty(net.client(net.admin_key(org)), share, clock_ms) for org, share in zip(orgs, shares)}, joint, keyset_id


@pytest.fixture(scope="module")
def cohort(net: Sharing) -> list[int]:
    """Twelve citizens consenting to the bank's aggregates over their housing-fund contributions; their totals in fen."""
    net.provider("jinan-hpf").set_privacy_budget(HPF, consumer_epsilon=2.0, total_epsilon=3.0, min_cohort=10)
    totals = []
    for n in range(12):
        citizen = net.enrol()
        monthly = [{"month": f"2025-{month:02d}", "amount": 100_000 + 1_000 * n} for month in range(1, 13)]
        net.publish(citizen, HPF, {"employer": "X", "monthly": monthly})
        computed_consent(net, citizen, [HPF])
        totals.append(sum(point["amount"] for point in monthly))
    return totals


def test_an_aggregate_is_released_only_with_every_partys_share(net, parties, cohort):
    from client.aggregates import AggregateRequester

    members, joint, keyset_id = parties
    requester = AggregateRequester(net.client(net.admin_key(BANK)), clock_ms)
    aggregate_id = requester.request(HPF, "monthly", "sum", bounds=(0, 2_000_000), epsilon=1.0, keyset_id=keyset_id, purpose="portfolio.risk")
    for org in ("jinan-bigdata", REGULATOR):
        members[org].file_share(aggregate_id)
    with pytest.raises(ValueError, match="every party"):
        requester.collect(aggregate_id, joint)
    members["jinan-hpf"].file_share(aggregate_id)
    released = requester.collect(aggregate_id, joint)
    exact = sum(cohort)
    assert abs(released["sum"] - exact) < 40 * 2_000_000  # discrete Laplace, scale upper / ε = 2,000,000
    state = net.client(net.admin_key(REGULATOR)).get(f"/v1/aggregates/{aggregate_id.hex()}")
    assert state["status"] == "released" and len(state["shares"]) == 3 and "share_data" not in state


def test_budgets_are_enforced_per_consumer_and_refusals_are_logged(net, parties, cohort):
    from client.aggregates import AggregateRequester

    _, _, keyset_id = parties
    requester = AggregateRequester(net.client(net.admin_key(BANK)), clock_ms)
    outcomes = []
    for _ in range(4):
        try:
            requester.request(HPF, "monthly", "count", bounds=(0, 1), epsilon=0.8, keyset_id=keyset_id, purpose="portfolio.risk")
            outcomes.append("computed")
        except ApiError as refused:
            outcomes.append(refused.code)
            assert "privacy budget exhausted" in refused.message
    assert outcomes.count("computed") <= 2 and outcomes[-1] == "budget_exhausted"  # the bank's cap is 2.0
    spent = net.client(net.admin_key(REGULATOR)).get(f"/v1/privacy/budgets/{HPF}")
    assert spent["spent"][BANK] <= 2000


def test_a_cohort_under_the_minimum_is_refused(net, parties, cohort):
    """The regulator holds no consents over housing-fund data: its cohort is empty, under the minimum of 10."""
    from client.aggregates import AggregateRequester

    _, _, keyset_id = parties
    with pytest.raises(ApiError) as refused:
        AggregateRequester(net.client(net.admin_key(REGULATOR)), clock_ms).request(
            HPF, "monthly", "mean", bounds=(0, 10**7), epsilon=0.5, keyset_id=keyset_id, purpose="supervision"
        )
    assert refused.value.code == "cohort_too_small"


def test_no_budget_means_no_aggregate(net, parties):
    from client.aggregates import AggregateRequester

    _, _, keyset_id = parties
    with pytest.raises(ApiError) as refused:
        AggregateRequester(net.client(net.admin_key(REGULATOR)), clock_ms).request(
            MEDICAL, "visits", "count", bounds=(0, 1), epsilon=0.1, keyset_id=keyset_id, purpose="supervision"
        )
    assert refused.value.code == "no_budget" and "no privacy budget" in refused.value.message
