"""Data sharing end to end on a real node (LevelDB, HTTP), driven only through the SDK.

Scenarios 1 (insurance claims, including a beneficiary's consent to a death
registration), 3 (revocation and expiry), 4 (the regulator's proof and audit)
and 5 (correction) of the mission brief; every consent lifecycle transition;
every refusal reason of :data:`ledger.consent.REFUSAL_REASONS` through
``POST /v1/access``, each one recorded, visible to the citizen and the
regulator, and releasing nothing. Each test enrols its own citizens, so tests
share the node but never a consent.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import pytest

from client.citizen import SafeBox, SensitiveConfirmationNeeded
from client.sdk import ApiError, TransactionRefused
from ledger.consent import REFUSAL_REASONS
from node.runtime import clock_ms
from sharing import BANK, DAY_MS, INSURER, SAMPLE_PAYLOADS, Sharing, consent_terms, sharing_network

VEHICLE, TRAFFIC = "vehicle.registration", "traffic.violation"
DEATH, MEDICAL = "civil.death_registration", "medical.claims"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sharing]:
    with sharing_network(tmp_path_factory.mktemp("sharing") / "node") as sharing:
        yield sharing


@pytest.fixture
def citizen(net: Sharing) -> SafeBox:
    """A fresh citizen with no records."""
    return net.enrol()


@pytest.fixture
def claimant(net: Sharing) -> SafeBox:
    """A fresh citizen with a vehicle registration and a traffic violation record."""
    box = net.enrol()
    net.publish_samples(box, [VEHICLE, TRAFFIC])
    return box


def request_claim_consent(
    net: Sharing, citizen: SafeBox, data_types: tuple[str, ...] = (VEHICLE, TRAFFIC), org: str = INSURER, **options
) -> bytes:
    return net.consumer(org).request_consent(
        citizen.key.public_key,
        list(data_types),
        purpose_code="insurance.claim",
        purpose_text="car accident claim",
        valid_days=7,
        contact="claims@taiping.example",
        **options,
    )


def request_by_hand(net: Sharing, citizen: SafeBox, **changes) -> bytes:
    """A consent.request the SDK would not build (a validity period of seconds, or starting later)."""
    terms = consent_terms(citizen.key.public_key, [VEHICLE], now_ms=clock_ms(), **changes)
    net.commit_as(net.admin_key(INSURER), "consent.request", terms)
    return terms["consent_id"]


def uses(net: Sharing, citizen: SafeBox, consent_id: bytes) -> int:
    """The consent's use count as the regulator reads it."""
    (consent,) = [c for c in net.regulator().consents(subject=citizen.key.public_key.hex()) if c["consent_id"] == consent_id.hex()]
    return consent["uses"]


# --- scenario 1: fast insurance claims -----------------------------------------------------


def test_scenario_1_car_accident_claim(net, claimant):
    insurer = net.consumer(INSURER)
    subject = claimant.key.public_key
    consent_id = request_claim_consent(net, claimant)

    (pending,) = claimant.pending()
    assert pending["consent_id"] == consent_id.hex()
    assert (pending["consumer"], pending["terms"]["purpose"]["code"]) == (INSURER, "insurance.claim")
    assert pending["terms"]["valid_until"] - pending["terms"]["valid_from"] == 7 * DAY_MS
    claimant.grant(consent_id)
    assert claimant.consent(consent_id)["status"] == "active"

    received = {data_type: insurer.fetch(consent_id, subject, [data_type]) for data_type in (VEHICLE, TRAFFIC)}
    for data_type, data in received.items():
        assert [(record["type"], record["payload"]) for record in data.records] == [(data_type, SAMPLE_PAYLOADS[data_type])]

    shown = [(e["log_index"], e["consumer"], e["consent_id"], e["purpose"], e["data_types"], e["outcome"]) for e in claimant.access_log()]
    assert shown == [
        (received[data_type].log_index, INSURER, consent_id.hex(), "insurance.claim", [data_type], "granted")
        for data_type in (VEHICLE, TRAFFIC)
    ]
    assert uses(net, claimant, consent_id) == 2


def test_scenario_1_life_insurance_claim_on_a_beneficiarys_consent(net):
    deceased, beneficiary = net.enrol(), net.enrol()
    net.relate(deceased, beneficiary, "child")
    record_id = net.publish(deceased, DEATH)
    insurer = net.consumer(INSURER)
    consent_id = insurer.request_consent(
        deceased.key.public_key, [DEATH], purpose_code="insurance.claim", purpose_text="life insurance claim",
        valid_days=7, contact="claims@taiping.example", grantor=beneficiary.key.public_key,
    )
    assert [c["consent_id"] for c in beneficiary.pending()] == [consent_id.hex()]

    with pytest.raises(TransactionRefused) as not_the_grantor:
        deceased.grant(consent_id, confirm_sensitive=True)
    assert not_the_grantor.value.code == "NOT_FOUND"
    with pytest.raises(SensitiveConfirmationNeeded):
        beneficiary.grant(consent_id)
    beneficiary.grant(consent_id, confirm_sensitive=True)

    got = insurer.fetch(consent_id, deceased.key.public_key)
    assert [(record["record_id"], record["payload"]) for record in got.records] == [(record_id, SAMPLE_PAYLOADS[DEATH])]
    (logged,) = deceased.access_log()
    assert (logged["log_index"], logged["consent_id"], logged["outcome"]) == (got.log_index, consent_id.hex(), "granted")


def test_a_sensitive_grant_needs_its_own_confirmation_in_the_client_and_on_the_ledger(net, citizen):
    net.publish(citizen, MEDICAL)
    consent_id = request_claim_consent(net, citizen, (MEDICAL,))
    with pytest.raises(SensitiveConfirmationNeeded):
        citizen.grant(consent_id)

    terms_hash = bytes.fromhex(citizen.consent(consent_id)["terms_hash"])
    with pytest.raises(TransactionRefused) as refused:
        net.commit_as(citizen.key, "consent.grant", {"consent_id": consent_id, "terms_hash": terms_hash})
    assert refused.value.code == "POLICY_NOT_MET"
    assert citizen.consent(consent_id)["status"] == "requested"

    citizen.grant(consent_id, confirm_sensitive=True)
    assert citizen.consent(consent_id)["status"] == "active"


# --- the consent lifecycle -----------------------------------------------------------------

ALLOWED = {
    "grant": {"requested": "active"},
    "reject": {"requested": "rejected"},
    "pause": {"active": "paused"},
    "resume": {"paused": "active"},
    "revoke": {"requested": "revoked", "active": "revoked", "paused": "revoked"},
}
STEPS_TO = {  # the citizen's answers that bring a fresh request into each status ("exhausted" also needs one use)
    "requested": [],
    "active": ["grant"],
    "paused": ["grant", "pause"],
    "rejected": ["reject"],
    "revoked": ["revoke"],
    "exhausted": ["grant"],
}


def consent_in(net: Sharing, citizen: SafeBox, state: str) -> bytes:
    """A fresh single-use consent brought into ``state`` through the API."""
    consent_id = request_claim_consent(net, citizen, max_uses=1)
    for action in STEPS_TO[state]:
        getattr(citizen, action)(consent_id)
    if state == "exhausted":
        net.consumer(INSURER).fetch(consent_id, citizen.key.public_key)
    assert citizen.consent(consent_id)["status"] == state
    return consent_id


@pytest.mark.parametrize("state", list(STEPS_TO))
@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_every_lifecycle_transition_over_the_api(net, citizen, action, state):
    consent_id = consent_in(net, citizen, state)
    if state in ALLOWED[action]:
        getattr(citizen, action)(consent_id)
        assert citizen.consent(consent_id)["status"] == ALLOWED[action][state]
    else:
        with pytest.raises(TransactionRefused) as refused:
            getattr(citizen, action)(consent_id)
        assert refused.value.code == "WRONG_STATE"
        assert citizen.consent(consent_id)["status"] == state


# --- every refusal reason through POST /v1/access -----------------------------------------

# Each setup leaves a consent in the state that refuses the insurer's next access for that reason,
# and returns (the consent the insurer names, the data types it asks for; None: what the consent covers).
Setup = Callable[[Sharing, SafeBox], "tuple[bytes, list[str] | None]"]


def _granted(net: Sharing, citizen: SafeBox, data_types: tuple[str, ...] = (VEHICLE, TRAFFIC), org: str = INSURER, **options) -> bytes:
    consent_id = request_claim_consent(net, citizen, data_types, org, **options)
    citizen.grant(consent_id)
    return consent_id


def _then(action: str) -> Setup:
    def setup(net: Sharing, citizen: SafeBox) -> tuple[bytes, None]:
        consent_id = request_claim_consent(net, citizen) if action == "reject" else _granted(net, citizen)
        getattr(citizen, action)(consent_id)
        return consent_id, None

    return setup


def _used_once(**options) -> Setup:
    def setup(net: Sharing, citizen: SafeBox) -> tuple[bytes, None]:
        consent_id = _granted(net, citizen, **options)
        net.consumer(INSURER).fetch(consent_id, citizen.key.public_key)
        return consent_id, None

    return setup


def _expired(net: Sharing, citizen: SafeBox) -> tuple[bytes, None]:
    valid_until = clock_ms() + 3_000
    consent_id = request_by_hand(net, citizen, valid_until=valid_until)
    citizen.grant(consent_id)
    time.sleep(max(0, valid_until - clock_ms()) / 1000 + 0.05)
    return consent_id, None


def _not_yet_valid(net: Sharing, citizen: SafeBox) -> tuple[bytes, None]:
    now = clock_ms()
    consent_id = request_by_hand(net, citizen, valid_from=now + 120_000, valid_until=now + DAY_MS)
    citizen.grant(consent_id)
    return consent_id, None


REFUSAL_SETUPS: dict[str, Setup] = {
    "no_consent": lambda net, citizen: (_granted(net, citizen, org=BANK), [VEHICLE]),  # the bank's consent
    "consent_pending": lambda net, citizen: (request_claim_consent(net, citizen), None),
    "consent_rejected": _then("reject"),
    "consent_paused": _then("pause"),
    "consent_revoked": _then("revoke"),
    "consent_expired": _expired,
    "consent_not_yet_valid": _not_yet_valid,
    "exhausted": _used_once(max_uses=1),
    "frequency": _used_once(frequency=(1, "day")),
    "scope": lambda net, citizen: (_granted(net, citizen, (VEHICLE,)), [TRAFFIC]),
    "mode": lambda net, citizen: (_granted(net, citizen, mode="computed"), None),
}


def test_every_refusal_reason_has_a_scenario():
    assert set(REFUSAL_SETUPS) == set(REFUSAL_REASONS)


@pytest.mark.parametrize("reason", sorted(REFUSAL_REASONS))
def test_a_refused_access_is_answered_recorded_and_releases_nothing(net, claimant, reason):
    consent_id, data_types = REFUSAL_SETUPS[reason](net, claimant)
    subject = claimant.key.public_key
    uses_before = uses(net, claimant, consent_id)

    with pytest.raises(ApiError) as refused:
        net.consumer(INSURER).fetch(consent_id, subject, data_types)
    assert (refused.value.status, refused.value.code) == (403, reason)

    logged = claimant.access_log()[-1]
    assert (logged["outcome"], logged["reason"], logged["consumer"], logged["consent_id"], logged["records"]) == (
        "refused", reason, INSURER, consent_id.hex(), 0,
    )
    seen = net.regulator().accesses(outcome="refused", subject=subject.hex())
    assert [entry["reason"] for entry in seen if entry["log_index"] == logged["log_index"]] == [reason]

    tx, code = net.leaf(logged["log_index"])
    assert (code, tx.type, tx.signer) == ("VALID", "access.record", net.node.peer.node_key.public_key)
    assert (tx.payload["outcome"], tx.payload["reason"], tx.payload["records"]) == ("refused", reason, [])
    assert "result_hash" not in tx.payload
    assert uses(net, claimant, consent_id) == uses_before


# --- scenario 3 and 4: revocation, then the regulator's proof and audit --------------------


def test_scenario_3_and_4_revoked_consent_is_refused_proven_and_audited(net, claimant):
    insurer, regulator = net.consumer(INSURER), net.regulator()
    subject = claimant.key.public_key
    consent_id = _granted(net, claimant)
    got = insurer.fetch(consent_id, subject)
    assert sorted(record["type"] for record in got.records) == [TRAFFIC, VEHICLE]
    assert got.receipt()["access"]["log_index"] == got.log_index

    claimant.revoke(consent_id)
    for data_types in (None, [VEHICLE]):
        with pytest.raises(ApiError) as refused:
            insurer.fetch(consent_id, subject, data_types)
        assert refused.value.code == "consent_revoked"
    refusals = regulator.accesses(outcome="refused", subject=subject.hex())
    assert [(entry["consent_id"], entry["reason"]) for entry in refusals] == [(consent_id.hex(), "consent_revoked")] * 2

    proof = regulator.prove_access(got.log_index)
    assert proof["tree_size"] > got.log_index
    summary = regulator.audit().summary()
    assert summary["violations"] == 0, summary["violation_list"]
    assert summary["refusal_reasons"]["consent_revoked"] >= 2
    assert summary["by_consumer"][INSURER]["granted"] >= 1


# --- scenario 5: correction ----------------------------------------------------------------


def test_scenario_5_a_correction_supersedes_the_disputed_version(net, claimant):
    provider = net.provider("jinan-psb")
    (record_id,) = [bytes.fromhex(r["record_id"]) for r in claimant.records() if r["type"] == VEHICLE]
    request_id = claimant.request_correction(record_id, "the brand is wrong")
    assert request_id.hex() in [c["request_id"] for c in provider.corrections(status="open")]

    fixed = {**SAMPLE_PAYLOADS[VEHICLE], "brand": "Geely"}
    assert provider.correct(record_id, fixed, as_of=clock_ms() - 1000, request_id=request_id) == 2

    (record,) = [r for r in claimant.records() if r["record_id"] == record_id.hex()]
    assert (record["version"], record["status"]) == (2, "active")
    assert [(v["version"], v["status"]) for v in record["versions"]] == [(1, "superseded"), (2, "current")]
    (answered,) = [c for c in provider.corrections() if c["request_id"] == request_id.hex()]
    assert (answered["status"], answered["new_version"]) == ("corrected", 2)
    (mine,) = net.http(claimant.key).get("/v1/corrections").json()["corrections"]
    assert (mine["request_id"], mine["status"]) == (request_id.hex(), "corrected")

    opened = claimant.open_my_data([VEHICLE])
    assert [(r["version"], r["payload"]) for r in opened.records] == [(2, fixed)]


def test_scenario_5_a_provider_may_reject_a_correction_request(net, claimant):
    provider = net.provider("jinan-psb")
    (record_id,) = [bytes.fromhex(r["record_id"]) for r in claimant.records() if r["type"] == TRAFFIC]
    request_id = claimant.request_correction(record_id, "I was not driving")
    provider.reject_correction(request_id, "the camera record shows the registered vehicle")

    (answered,) = [c for c in provider.corrections() if c["request_id"] == request_id.hex()]
    assert (answered["status"], answered["note"]) == ("rejected", "the camera record shows the registered vehicle")
    assert request_id.hex() not in [c["request_id"] for c in provider.corrections(status="open")]
    (record,) = [r for r in claimant.records() if r["record_id"] == record_id.hex()]
    assert (record["version"], [v["status"] for v in record["versions"]]) == (1, ["current"])
    with pytest.raises(TransactionRefused) as again:
        provider.reject_correction(request_id, "twice")
    assert again.value.code == "ALREADY_EXISTS"


# --- the citizen's own view and live access log --------------------------------------------


def test_opening_my_own_data_is_logged_as_a_self_view(net, claimant):
    opened = claimant.open_my_data()
    assert sorted((r["type"], r["version"]) for r in opened.records) == [(TRAFFIC, 1), (VEHICLE, 1)]
    (logged,) = claimant.access_log()
    assert (logged["log_index"], logged["purpose"], logged["outcome"], logged["records"]) == (
        opened.log_index, "subject.view", "granted", 2,
    )
    assert "consumer" not in logged and "consent_id" not in logged
    tx, code = net.leaf(opened.log_index)
    assert (code, tx.payload["requester"], tx.payload["subject"]) == ("VALID", claimant.key.public_key, claimant.key.public_key)


def test_a_waiting_access_log_returns_the_access_a_consumer_makes(net, claimant):
    consent_id = _granted(net, claimant)
    after = net.client(claimant.key).checkpoint().checkpoint.tree_size - 1
    answers: list[list[dict]] = []
    waiting = threading.Thread(target=lambda: answers.append(claimant.access_log(after=after, wait_s=5)))
    waiting.start()
    time.sleep(0.2)  # let the request reach the node and wait there; the answer must be the same either way
    got = net.consumer(INSURER).fetch(consent_id, claimant.key.public_key)
    waiting.join(timeout=10)
    assert not waiting.is_alive()
    assert [(entry["log_index"], entry["consumer"]) for entry in answers[0]] == [(got.log_index, INSURER)]
