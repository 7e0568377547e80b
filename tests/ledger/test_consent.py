"""The pure consent module: expiry, frequency windows, the access decision, and the terms hash."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.consent import (
    CONTEXT_CONSENT_TERMS,
    FINAL_STATUSES,
    NEXT_OF_KIN_TYPES,
    PERIOD_MS,
    REFUSAL_REASONS,
    effective_status,
    refusal_reason,
    terms_hash,
    window_index,
)

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 20_254 * DAY + 10 * HOUR
ALICE, BOB = hashlib.sha256(b"alice").digest(), hashlib.sha256(b"bob").digest()
STATUSES = ["requested", "active", "paused", "rejected", "revoked", "exhausted"]
TYPES = ["tax.income", "medical.records", "civil.death_registration", "vehicle.registration"]
STATUS_REASON = {
    "requested": "consent_pending",
    "rejected": "consent_rejected",
    "paused": "consent_paused",
    "revoked": "consent_revoked",
    "expired": "consent_expired",
    "exhausted": "exhausted",
}


def make_terms(**changes) -> dict:
    document = {
        "consent_id": bytes(range(16)),
        "subject": ALICE,
        "data_types": ["tax.income", "medical.records"],
        "purpose": {"code": "loan.credit-check", "text": "Assess a mortgage application"},
        "mode": "raw",
        "data_from": T0 - 365 * DAY,
        "data_until": T0,
        "valid_from": T0,
        "valid_until": T0 + 30 * DAY,
        "max_uses": 5,
        "frequency": {"max": 2, "per": "day"},
        "data_life_days": 30,
        "legal_basis": "pipl-13.1-consent",
        "contact": "privacy@bank.example",
    }
    document.update(changes)
    return document


def make_consent(status: str = "active", *, uses: int = 0, window: int = 0, window_uses: int = 0, consumer: str = "bank", **term_changes) -> dict:
    return {
        "terms": make_terms(**term_changes),
        "consumer": consumer,
        "grantor": ALICE,
        "status": status,
        "uses": uses,
        "window": window,
        "window_uses": window_uses,
    }


def decide(consent, *, consumer="bank", subject=ALICE, data_types=("tax.income",), mode="raw", now_ms=T0 + HOUR):
    return refusal_reason(consent, consumer=consumer, subject=subject, data_types=list(data_types), mode=mode, now_ms=now_ms)


# --- constants ------------------------------------------------------------------------------


def test_constants_describe_the_documented_lifecycle():
    assert FINAL_STATUSES == {"rejected", "revoked", "exhausted"}
    assert PERIOD_MS == {"hour": HOUR, "day": DAY, "week": 7 * DAY}
    assert NEXT_OF_KIN_TYPES == {"civil.death_registration"}
    assert set(STATUS_REASON.values()) <= set(REFUSAL_REASONS)
    assert all(isinstance(text, str) and text for text in REFUSAL_REASONS.values())


# --- effective_status -----------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_effective_status_before_the_end_is_the_stored_status(status):
    consent = make_consent(status)
    for now in (0, T0 - DAY, T0, T0 + 30 * DAY - 1):
        assert effective_status(consent, now) == status


@pytest.mark.parametrize("status", ["requested", "active", "paused"])
def test_a_non_final_status_is_expired_from_valid_until_on(status):
    consent = make_consent(status)
    end = consent["terms"]["valid_until"]
    assert effective_status(consent, end - 1) == status
    assert effective_status(consent, end) == "expired"
    assert effective_status(consent, end + 10 * 365 * DAY) == "expired"


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_a_final_status_never_turns_into_expired(status):
    consent = make_consent(status)
    assert effective_status(consent, consent["terms"]["valid_until"]) == status
    assert effective_status(consent, 2**63) == status


def test_effective_status_does_not_change_the_consent():
    consent = make_consent("active")
    snapshot = codec.encode(consent)
    effective_status(consent, T0 + 365 * DAY)
    assert codec.encode(consent) == snapshot


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STATUSES), st.integers(0, 2**50), st.integers(0, 2**50))
def test_effective_status_property(status, valid_until, now):
    consent = make_consent(status, valid_until=valid_until)
    expected = "expired" if status not in FINAL_STATUSES and now >= valid_until else status
    assert effective_status(consent, now) == expected


# --- window_index ---------------------------------------------------------------------------


@pytest.mark.parametrize("per", sorted(PERIOD_MS))
def test_windows_are_aligned_to_the_unix_epoch(per):
    consent = make_consent(frequency={"max": 1, "per": per})
    period = PERIOD_MS[per]
    assert window_index(consent, 0) == 0
    assert window_index(consent, period - 1) == 0
    assert window_index(consent, period) == 1
    start = (T0 // period) * period
    assert window_index(consent, start) == window_index(consent, start + period - 1) == T0 // period
    assert window_index(consent, start + period) == T0 // period + 1


def test_window_index_of_a_known_day_and_hour():
    assert window_index(make_consent(frequency={"max": 1, "per": "day"}), T0) == 20_254
    assert window_index(make_consent(frequency={"max": 1, "per": "hour"}), T0) == 20_254 * 24 + 10
    assert window_index(make_consent(frequency={"max": 1, "per": "week"}), T0) == 20_254 // 7


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PERIOD_MS)), st.integers(0, 2**52), st.integers(0, 2**52))
def test_two_times_share_a_window_exactly_when_they_fall_in_one_aligned_period(per, a, b):
    consent = make_consent(frequency={"max": 1, "per": per})
    period = PERIOD_MS[per]
    assert window_index(consent, a) == a // period
    assert (window_index(consent, a) == window_index(consent, b)) == (a // period == b // period)
    if a <= b:
        assert window_index(consent, a) <= window_index(consent, b)


# --- refusal_reason: each reason --------------------------------------------------------------


def test_an_active_consent_within_its_terms_allows_the_access():
    assert decide(make_consent()) is None
    assert decide(make_consent(), data_types=["tax.income", "medical.records"]) is None
    assert decide(make_consent(), mode="computed") is None
    assert decide(make_consent(), now_ms=T0) is None  # valid_from is inclusive
    assert decide(make_consent(), now_ms=T0 + 30 * DAY - 1) is None  # valid_until is exclusive


@pytest.mark.parametrize(
    ("consent", "ask", "reason"),
    [
        (None, {}, "no_consent"),
        (make_consent(consumer="insurer"), {}, "no_consent"),
        (make_consent(), {"consumer": "insurer"}, "no_consent"),
        (make_consent(), {"subject": BOB}, "no_consent"),
        (make_consent("requested"), {}, "consent_pending"),
        (make_consent("rejected"), {}, "consent_rejected"),
        (make_consent("paused"), {}, "consent_paused"),
        (make_consent("revoked"), {}, "consent_revoked"),
        (make_consent(), {"now_ms": T0 + 30 * DAY}, "consent_expired"),
        (make_consent(), {"now_ms": T0 - 1}, "consent_not_yet_valid"),
        (make_consent("exhausted", uses=5), {}, "exhausted"),
        (make_consent(uses=5), {}, "exhausted"),  # the count decides even before the status is written
        (make_consent(window=T0 // DAY, window_uses=2), {}, "frequency"),
        (make_consent(), {"data_types": ["vehicle.registration"]}, "scope"),
        (make_consent(), {"data_types": ["tax.income", "vehicle.registration"]}, "scope"),
        (make_consent(mode="computed"), {"mode": "raw"}, "mode"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_refusal_reason(consent, ask, reason):
    assert decide(consent, **ask) == reason
    assert reason in REFUSAL_REASONS


def test_every_documented_reason_is_reachable():
    reached = {
        decide(None),
        decide(make_consent("requested")),
        decide(make_consent("rejected")),
        decide(make_consent("paused")),
        decide(make_consent("revoked")),
        decide(make_consent(), now_ms=T0 + 31 * DAY),
        decide(make_consent(), now_ms=T0 - DAY),
        decide(make_consent(uses=5)),
        decide(make_consent(window=T0 // DAY, window_uses=2)),
        decide(make_consent(), data_types=["x.y"]),
        decide(make_consent(mode="computed")),
    }
    assert reached == set(REFUSAL_REASONS)


def test_a_computed_consent_allows_computed_use():
    assert decide(make_consent(mode="computed"), mode="computed") is None


def test_frequency_budget_counts_only_in_the_current_window():
    day = T0 // DAY
    assert decide(make_consent(window=day, window_uses=1)) is None  # one use left today
    assert decide(make_consent(window=day - 1, window_uses=2)) is None  # yesterday's uses do not count
    assert decide(make_consent(window=day, window_uses=2), now_ms=(day + 1) * DAY) is None  # tomorrow starts afresh
    assert decide(make_consent(window=day, window_uses=2), now_ms=(day + 1) * DAY - 1) == "frequency"


def test_another_consumer_or_subject_learns_nothing_about_the_consent():
    """Mismatches are 'no_consent' whatever the consent's state, so its status never leaks."""
    for status in STATUSES:
        for consent in (make_consent(status), make_consent(status, uses=5)):
            assert decide(consent, consumer="insurer") == "no_consent"
            assert decide(consent, subject=BOB) == "no_consent"
            assert decide(consent, consumer="insurer", now_ms=T0 + 60 * DAY) == "no_consent"


def test_refusal_reason_does_not_change_the_consent():
    consent = make_consent(window=T0 // DAY, window_uses=1, uses=4)
    snapshot = codec.encode(consent)
    assert decide(consent) is None
    assert codec.encode(consent) == snapshot


# --- refusal_reason: properties -------------------------------------------------------------

type_lists = st.lists(st.sampled_from(TYPES), min_size=1, max_size=4, unique=True)
consent_states = st.fixed_dictionaries(
    {
        "status": st.sampled_from(STATUSES),
        "consumer": st.sampled_from(["bank", "insurer"]),
        "subject": st.sampled_from([ALICE, BOB]),
        "data_types": type_lists,
        "mode": st.sampled_from(["raw", "computed"]),
        "valid_from": st.integers(0, 10 * DAY),
        "length": st.integers(1, 10 * DAY),
        "max_uses": st.integers(1, 6),
        "uses": st.integers(0, 7),
        "frequency": st.fixed_dictionaries({"max": st.integers(1, 4), "per": st.sampled_from(sorted(PERIOD_MS))}),
        "window": st.integers(0, 300),
        "window_uses": st.integers(0, 5),
    }
)
asks = st.fixed_dictionaries(
    {
        "consumer": st.sampled_from(["bank", "insurer"]),
        "subject": st.sampled_from([ALICE, BOB]),
        "data_types": type_lists,
        "mode": st.sampled_from(["raw", "computed"]),
        "now_ms": st.integers(0, 22 * DAY),
    }
)


def build(state: dict) -> dict:
    return make_consent(
        state["status"],
        uses=state["uses"],
        window=state["window"],
        window_uses=state["window_uses"],
        consumer=state["consumer"],
        subject=state["subject"],
        data_types=state["data_types"],
        mode=state["mode"],
        valid_from=state["valid_from"],
        valid_until=state["valid_from"] + state["length"],
        max_uses=state["max_uses"],
        frequency=state["frequency"],
    )


@st.composite
def situations(draw):
    """A consent and an ask biased towards each other — same consumer and subject, a time near the
    validity period, usage near the limits — so that allowed and every refusal are all common."""
    state = draw(consent_states)
    start, end = state["valid_from"], state["valid_from"] + state["length"]
    inside = st.integers(start, end - 1)
    now = draw(st.one_of(inside, inside, inside, st.integers(max(0, start - DAY), end + DAY)), label="now_ms")
    period = PERIOD_MS[state["frequency"]["per"]]
    state["status"] = draw(st.sampled_from(["active"] * 6 + STATUSES), label="status")
    state["uses"] = draw(st.one_of(st.integers(0, state["max_uses"] - 1), st.integers(0, 7)), label="uses")
    state["window"] = draw(st.sampled_from([now // period, now // period, max(0, now // period - 1), state["window"]]), label="window")
    state["window_uses"] = draw(st.integers(0, state["frequency"]["max"] + 1), label="window_uses")
    ask = {
        "consumer": draw(st.sampled_from([state["consumer"]] * 3 + ["insurer", "bank"]), label="consumer"),
        "subject": draw(st.sampled_from([state["subject"]] * 3 + [ALICE, BOB]), label="subject"),
        "data_types": draw(st.one_of(st.lists(st.sampled_from(state["data_types"]), min_size=1, unique=True), type_lists), label="types"),
        "mode": draw(st.sampled_from(["raw", "computed"]), label="mode"),
        "now_ms": now,
    }
    return state, ask


@settings(max_examples=600, deadline=None)
@given(situations())
def test_access_is_allowed_exactly_when_every_condition_holds(situation):
    state, ask = situation
    consent = build(state)
    now = ask["now_ms"]
    period = PERIOD_MS[state["frequency"]["per"]]
    allowed = (
        ask["consumer"] == state["consumer"]
        and ask["subject"] == state["subject"]
        and state["status"] == "active"
        and state["valid_from"] <= now < state["valid_from"] + state["length"]
        and set(ask["data_types"]) <= set(state["data_types"])
        and (ask["mode"] == "computed" or state["mode"] == "raw")
        and state["uses"] < state["max_uses"]
        and (state["window"] != now // period or state["window_uses"] < state["frequency"]["max"])
    )
    reason = refusal_reason(consent, **ask)
    assert (reason is None) == allowed, (reason, state, ask)
    assert reason is None or reason in REFUSAL_REASONS


@settings(max_examples=300, deadline=None)
@given(situations())
def test_the_reason_for_a_matching_consent_that_is_not_active_is_its_status(situation):
    state, ask = situation
    ask = {**ask, "consumer": state["consumer"], "subject": state["subject"]}
    consent = build(state)
    status = effective_status(consent, ask["now_ms"])
    reason = refusal_reason(consent, **ask)
    if status != "active":
        assert reason == STATUS_REASON[status]
    else:
        assert reason not in {"no_consent", "consent_pending", "consent_rejected", "consent_paused", "consent_revoked", "consent_expired"}


@settings(max_examples=300, deadline=None)
@given(consent_states, asks, st.sampled_from(["consumer", "subject", "both"]))
def test_a_consumer_or_subject_mismatch_is_always_no_consent(state, ask, which):
    other = {"bank": "insurer", "insurer": "bank", ALICE: BOB, BOB: ALICE}
    if which in ("consumer", "both"):
        ask = {**ask, "consumer": other[state["consumer"]]}
    if which in ("subject", "both"):
        ask = {**ask, "subject": other[state["subject"]]}
    assert refusal_reason(build(state), **ask) == "no_consent"


@settings(max_examples=100, deadline=None)
@given(asks)
def test_without_a_consent_the_answer_is_no_consent(ask):
    assert refusal_reason(None, **ask) == "no_consent"


@settings(max_examples=300, deadline=None)
@given(situations())
def test_asking_for_less_is_never_refused_for_scope_or_mode_when_more_was_allowed(situation):
    """Narrowing the asked-for types or asking for a computed result never turns an allowed access into a refusal."""
    state, ask = situation
    consent = build(state)
    if refusal_reason(consent, **ask) is None:
        assert refusal_reason(consent, **{**ask, "data_types": ask["data_types"][:1]}) is None
        assert refusal_reason(consent, **{**ask, "mode": "computed"}) is None


# --- terms_hash -----------------------------------------------------------------------------


def test_terms_hash_is_the_domain_separated_hash_of_the_canonical_terms():
    document = make_terms()
    expected = hashlib.sha256(CONTEXT_CONSENT_TERMS + codec.encode(document)).digest()
    assert terms_hash(document) == expected
    assert len(terms_hash(document)) == 32
    assert terms_hash(document) != hashlib.sha256(codec.encode(document)).digest()


def test_terms_hash_ignores_key_order_and_does_not_change_the_terms():
    document = make_terms()
    reordered = dict(reversed(list(document.items())))
    snapshot = codec.encode(document)
    assert terms_hash(reordered) == terms_hash(document)
    assert codec.encode(document) == snapshot


def test_naming_a_grantor_changes_the_terms_hash():
    assert terms_hash(make_terms(grantor=BOB)) != terms_hash(make_terms())
    assert terms_hash(make_terms(grantor=BOB)) != terms_hash(make_terms(grantor=ALICE))


terms_strategy = st.fixed_dictionaries(
    {
        "consent_id": st.binary(min_size=16, max_size=16),
        "subject": st.binary(min_size=32, max_size=32),
        "data_types": st.lists(st.sampled_from(TYPES), min_size=1, max_size=4, unique=True),
        "purpose": st.fixed_dictionaries({"code": st.sampled_from(["loan.credit-check", "insurance.claim"]), "text": st.text(max_size=20)}),
        "mode": st.sampled_from(["raw", "computed"]),
        "data_from": st.integers(0, 2**45),
        "data_until": st.integers(0, 2**45),
        "valid_from": st.integers(0, 2**45),
        "valid_until": st.integers(0, 2**45),
        "max_uses": st.integers(1, 1_000_000),
        "frequency": st.fixed_dictionaries({"max": st.integers(1, 1_000_000), "per": st.sampled_from(sorted(PERIOD_MS))}),
        "data_life_days": st.integers(0, 3650),
        "legal_basis": st.sampled_from(["pipl-13.1-consent", "pipl-49-next-of-kin"]),
        "contact": st.text(max_size=30),
    },
    optional={"grantor": st.binary(min_size=32, max_size=32)},
)


def _mutations(value):
    """Strategies for a value different from ``value`` of the same shape."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, int):
        return st.integers(0, 2**46).filter(lambda other: other != value)
    if isinstance(value, bytes):
        return st.binary(min_size=len(value), max_size=len(value)).filter(lambda other: other != value)
    if isinstance(value, str):
        return st.text(max_size=30).filter(lambda other: other != value)
    if isinstance(value, list):
        return st.lists(st.sampled_from(TYPES + ["x.y"]), min_size=1, max_size=5, unique=True).filter(lambda other: other != value)
    raise TypeError(value)


@settings(max_examples=250, deadline=None)
@given(terms_strategy, st.data())
def test_terms_hash_changes_when_any_term_changes(document, data):
    original = terms_hash(document)
    name = data.draw(st.sampled_from(sorted(document)), label="field")
    value = document[name]
    if isinstance(value, dict):
        inner = data.draw(st.sampled_from(sorted(value)), label="subfield")
        changed = {**document, name: {**value, inner: data.draw(_mutations(value[inner]), label="new value")}}
    else:
        changed = {**document, name: data.draw(_mutations(value), label="new value")}
    assert changed != document
    assert terms_hash(changed) != original
    assert terms_hash(dict(document)) == original  # and it is deterministic


@settings(max_examples=200, deadline=None)
@given(terms_strategy)
def test_terms_hash_changes_when_a_term_is_dropped_or_added(document):
    original = terms_hash(document)
    for name in document:
        assert terms_hash({k: v for k, v in document.items() if k != name}) != original
    assert terms_hash({**document, "extra": 1}) != original
