"""consent.request / grant / reject / pause / resume / revoke, and the next-of-kin path, on a chain."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from consent_builders import (
    ALICE,
    BANK,
    BIGDATA,
    BOB,
    CAROL,
    CIVIL,
    DAVE,
    DAY,
    DEATH,
    HOUR,
    INCOME,
    INSURER,
    MEDICAL,
    NODE,
    OUTSIDER,
    PRESCRIPTIONS,
    T0,
    TAX,
    ConsentChain,
    access,
    activate,
    answer,
    cid,
    death_registration,
    enroll,
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
from ledger.consent import FINAL_STATUSES, terms_hash
from ledger.rules import Code
from ledger.rules.consents import (
    MAX_CONSENT_PERIOD_MS,
    consumer_consent_key,
    grantor_consent_key,
    subject_consent_key,
)
from ledger.rules.identity import kin_key
from ledger.rules.records import deceased_key

ACTIONS = ["grant", "reject", "pause", "resume", "revoke"]
# the allowed transitions: action -> {from status: to status}; everything else is WRONG_STATE
TRANSITIONS = {
    "grant": {"requested": "active"},
    "reject": {"requested": "rejected"},
    "pause": {"active": "paused"},
    "resume": {"paused": "active"},
    "revoke": {"requested": "revoked", "active": "revoked", "paused": "revoked"},
}


@pytest.fixture
def chain() -> ConsentChain:
    return fresh_chain()


def act(action: str, document: dict, *, citizen=ALICE, time_ms: int = T0) -> bytes:
    """The citizen's answer ``action`` to ``document`` (grant signs the right hash)."""
    if action == "grant":
        return grant(document, citizen=citizen, time_ms=time_ms)
    return answer(action, document["consent_id"], citizen=citizen, time_ms=time_ms)


def nothing_written_for(chain: ConsentChain, document: dict) -> bool:
    n = document["consent_id"]
    return chain.consent(n) is None and chain.read(subject_consent_key(document["subject"], n)) is None and not chain.keys(
        b"consumer-consent/"
    ).keys() & {consumer_consent_key("bank", n), consumer_consent_key("insurer", n)}


# --- consent.request ------------------------------------------------------------------------


def test_a_request_stores_the_terms_unchanged_and_indexes_them(chain):
    document = terms(1)
    outcome = chain.commit([request(document)])
    assert [t.code for t in outcome.txs] == [Code.VALID]
    stored = chain.consent(1)
    assert stored == {
        "terms": document,
        "terms_hash": terms_hash(document),
        "consumer": "bank",
        "grantor": ALICE.public_key,
        "sensitive_types": [],
        "status": "requested",
        "requested_at": outcome.txs[0].log_index,
        "uses": 0,
        "window": 0,
        "window_uses": 0,
    }
    assert chain.read(subject_consent_key(ALICE.public_key, cid(1))) == "bank"
    assert chain.read(consumer_consent_key("bank", cid(1))) == ALICE.public_key
    assert chain.keys(b"grantor-consent/") == {}  # the subject answers for themselves


def test_requested_sensitive_types_are_listed_sorted(chain):
    document = terms(1, data_types=[PRESCRIPTIONS, INCOME, MEDICAL])
    assert chain.codes([request(document)]) == [Code.VALID]
    assert chain.consent(1)["sensitive_types"] == sorted([MEDICAL, PRESCRIPTIONS]) == [PRESCRIPTIONS, MEDICAL]
    assert chain.consent(1)["terms"]["data_types"] == [PRESCRIPTIONS, INCOME, MEDICAL]


@pytest.mark.parametrize(
    ("signer", "code"),
    [
        (TAX, Code.FORBIDDEN),  # a provider
        (BIGDATA, Code.FORBIDDEN),  # the custodian
        (ALICE, Code.FORBIDDEN),  # a citizen cannot ask on a consumer's behalf
        (NODE, Code.UNKNOWN_SIGNER),  # node keys never sign transactions as members
        (OUTSIDER, Code.UNKNOWN_SIGNER),
        (INSURER, Code.VALID),
        (BANK, Code.VALID),
    ],
    ids=["provider", "custodian", "citizen", "node-key", "outsider", "insurer", "bank"],
)
def test_only_a_consumer_admin_may_request(chain, signer, code):
    document = terms(1)
    outcome = chain.commit([request(document, signer=signer)])
    assert [t.code for t in outcome.txs] == [code]
    if code is Code.VALID:
        org_id = {INSURER: "insurer", BANK: "bank"}[signer]
        assert chain.consent(1)["consumer"] == org_id
        assert chain.read(consumer_consent_key(org_id, cid(1))) == ALICE.public_key
    else:
        assert nothing_written_for(chain, document)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (terms(1, data_types=["no.such-type"]), Code.NOT_FOUND),
        (terms(1, data_types=[INCOME, "no.such-type"]), Code.NOT_FOUND),
        (terms(1, subject=DAVE), Code.NOT_FOUND),  # not enrolled
        (terms(1, subject=NODE), Code.NOT_FOUND),
        (terms(1, subject=BANK), Code.NOT_FOUND),  # an org admin is no citizen
        # validity period
        (terms(1, valid_until=T0), Code.BAD_PAYLOAD),  # empty
        (terms(1, valid_until=T0 - 1), Code.BAD_PAYLOAD),  # reversed
        (terms(1, valid_until=T0 + MAX_CONSENT_PERIOD_MS + 1), Code.BAD_PAYLOAD),  # longer than 366 days
        (terms(1, valid_from=T0 - 2 * DAY, valid_until=T0 - DAY), Code.BAD_PAYLOAD),  # already over
        (terms(1, valid_from=T0 - 2 * DAY, valid_until=T0), Code.BAD_PAYLOAD),  # ends at block time
        (terms(1, data_from=T0, data_until=T0 - 1), Code.BAD_PAYLOAD),
        # boundaries that are fine
        (terms(1, valid_until=T0 + MAX_CONSENT_PERIOD_MS), Code.VALID),
        (terms(1, valid_from=T0 - 2 * DAY, valid_until=T0 + 1), Code.VALID),
        (terms(1, valid_from=T0 + 10 * DAY, valid_until=T0 + 20 * DAY), Code.VALID),  # starts later
        (terms(1, data_from=T0, data_until=T0), Code.VALID),
        # the payload spec
        (terms(1, consent_id=bytes(15)), Code.BAD_PAYLOAD),
        (terms(1, data_types=[]), Code.BAD_PAYLOAD),
        (terms(1, data_types=[INCOME, INCOME]), Code.BAD_PAYLOAD),
        (terms(1, data_types=["Tax.Income"]), Code.BAD_PAYLOAD),
        (terms(1, mode="everything"), Code.BAD_PAYLOAD),
        (terms(1, max_uses=0), Code.BAD_PAYLOAD),
        (terms(1, frequency={"max": 1, "per": "month"}), Code.BAD_PAYLOAD),
        (terms(1, frequency={"max": 0, "per": "day"}), Code.BAD_PAYLOAD),
        (terms(1, data_life_days=3651), Code.BAD_PAYLOAD),
        (terms(1, legal_basis="contract"), Code.BAD_PAYLOAD),
        (terms(1, purpose={"code": "loan.credit-check"}), Code.BAD_PAYLOAD),
        (terms(1, status="active"), Code.BAD_PAYLOAD),  # no smuggled lifecycle fields
        (terms(1, uses=0), Code.BAD_PAYLOAD),
        # legal basis must match a named grantor other than the subject
        (terms(1, grantor=CAROL), Code.BAD_PAYLOAD),
        (terms(1, legal_basis="pipl-49-next-of-kin"), Code.BAD_PAYLOAD),
        (terms(1, grantor=ALICE, legal_basis="pipl-49-next-of-kin"), Code.BAD_PAYLOAD),
    ],
)
def test_request_refusals(chain, document, code):
    assert chain.codes([request(document)]) == [code]
    if code is not Code.VALID:
        assert nothing_written_for(chain, document)
    else:
        assert chain.status(1) == "requested"


def test_a_consent_id_is_used_once(chain):
    first, again, other = terms(7), terms(7, subject=BOB), terms(7, max_uses=3)
    assert chain.codes([request(first), request(again, signer=INSURER)]) == [Code.VALID, Code.ALREADY_EXISTS]
    assert chain.codes([request(other)]) == [Code.ALREADY_EXISTS]
    assert chain.consent(7)["terms"] == first and chain.consent(7)["consumer"] == "bank"
    assert chain.read(subject_consent_key(BOB.public_key, cid(7))) is None
    assert chain.read(consumer_consent_key("insurer", cid(7))) is None
    # even a rejected (final) consent keeps its id
    assert chain.codes([answer("reject", 7)]) == [Code.VALID]
    assert chain.codes([request(first)]) == [Code.ALREADY_EXISTS]


def test_a_named_grantor_equal_to_the_subject_is_the_ordinary_consent(chain):
    """The rule refuses pipl-49 'exactly when a grantor other than the subject is named'."""
    document = terms(1, grantor=ALICE)
    assert chain.codes([request(document)]) == [Code.VALID]
    assert chain.consent(1)["grantor"] == ALICE.public_key
    assert chain.keys(b"grantor-consent/") == {}
    assert chain.codes([grant(document)]) == [Code.VALID]


def test_indexes_list_each_subjects_and_consumers_consents(chain):
    documents = [terms(1), terms(2, subject=BOB), terms(3), terms(4)]
    signers = [BANK, BANK, INSURER, BANK]
    assert chain.codes([request(d, signer=s) for d, s in zip(documents, signers)]) == [Code.VALID] * 4
    assert chain.keys(b"subject-consent/" + ALICE.public_key + b"/") == {
        subject_consent_key(ALICE.public_key, cid(1)): "bank",
        subject_consent_key(ALICE.public_key, cid(3)): "insurer",
        subject_consent_key(ALICE.public_key, cid(4)): "bank",
    }
    assert chain.keys(b"subject-consent/" + BOB.public_key + b"/") == {subject_consent_key(BOB.public_key, cid(2)): "bank"}
    assert chain.keys(b"consumer-consent/bank/") == {
        consumer_consent_key("bank", cid(1)): ALICE.public_key,
        consumer_consent_key("bank", cid(2)): BOB.public_key,
        consumer_consent_key("bank", cid(4)): ALICE.public_key,
    }
    assert chain.keys(b"consumer-consent/insurer/") == {consumer_consent_key("insurer", cid(3)): ALICE.public_key}
    # answering changes the consent only, not its index entries
    before = {k: v for k, v in chain.state().items() if b"-consent/" in k}
    assert chain.codes([grant(documents[0]), answer("reject", 3), answer("revoke", 4)]) == [Code.VALID] * 3
    assert {k: v for k, v in chain.state().items() if b"-consent/" in k} == before


# --- consent.grant --------------------------------------------------------------------------


def test_the_subject_grants_over_the_terms_hash(chain):
    document = terms(1)
    chain.codes([request(document)])
    outcome = chain.commit([grant(document)])
    assert [t.code for t in outcome.txs] == [Code.VALID]
    stored = chain.consent(1)
    assert stored["status"] == "active" and stored["granted_at"] == outcome.txs[0].log_index
    assert stored["terms"] == document and stored["uses"] == 0


@pytest.mark.parametrize(
    "other_hash",
    [
        terms_hash(terms(1, max_uses=101)),  # the citizen saw different terms
        terms_hash(terms(2)),
        bytes(32),
    ],
    ids=["wider-terms", "another-consent", "zeros"],
)
def test_a_grant_over_other_terms_is_refused(chain, other_hash):
    document = terms(1)
    chain.codes([request(document)])
    assert chain.codes([grant(document, hash_=other_hash)]) == [Code.BAD_PAYLOAD]
    assert chain.status(1) == "requested"
    assert chain.codes([grant(document)]) == [Code.VALID]


@pytest.mark.parametrize(
    ("confirmation", "code"),
    [
        (None, Code.POLICY_NOT_MET),
        ([MEDICAL], Code.POLICY_NOT_MET),  # one of two sensitive types
        ([MEDICAL, PRESCRIPTIONS, INCOME], Code.POLICY_NOT_MET),  # a general type is not confirmed separately
        ([MEDICAL, PRESCRIPTIONS, "no.such"], Code.POLICY_NOT_MET),
        ([INCOME], Code.POLICY_NOT_MET),
        ([], Code.BAD_PAYLOAD),  # an empty confirmation is malformed
        ([MEDICAL, MEDICAL], Code.BAD_PAYLOAD),
        ([MEDICAL, PRESCRIPTIONS], Code.VALID),
        ([PRESCRIPTIONS, MEDICAL], Code.VALID),  # in any order
    ],
)
def test_sensitive_types_need_their_own_confirmation(chain, confirmation, code):
    document = terms(1, data_types=[INCOME, MEDICAL, PRESCRIPTIONS])
    chain.codes([request(document)])
    assert chain.codes([grant(document, confirm=confirmation)]) == [code]
    assert chain.status(1) == ("active" if code is Code.VALID else "requested")


@pytest.mark.parametrize("confirmation", [[INCOME], [MEDICAL]])
def test_a_general_consent_takes_no_sensitive_confirmation(chain, confirmation):
    document = terms(1)
    chain.codes([request(document)])
    assert chain.codes([grant(document, confirm=confirmation)]) == [Code.POLICY_NOT_MET]
    assert chain.codes([grant(document, confirm=None)]) == [Code.VALID]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    ("signer", "code"),
    [(BOB, Code.NOT_FOUND), (CAROL, Code.NOT_FOUND), (BANK, Code.FORBIDDEN), (BIGDATA, Code.FORBIDDEN), (NODE, Code.UNKNOWN_SIGNER), (DAVE, Code.UNKNOWN_SIGNER)],
    ids=["other-citizen", "relative", "consumer", "custodian", "node", "unenrolled"],
)
def test_only_the_grantor_answers(chain, action, signer, code):
    document = terms(1)
    chain.codes([request(document)])
    if action in ("pause", "resume"):
        chain.codes([grant(document)] + ([answer("pause", 1)] if action == "resume" else []))
    before = chain.consent(1)
    assert chain.codes([act(action, document, citizen=signer)]) == [code]
    assert chain.consent(1) == before


@pytest.mark.parametrize("action", ACTIONS)
def test_answering_an_unknown_consent_is_not_found(chain, action):
    assert chain.codes([act(action, terms(9))]) == [Code.NOT_FOUND]
    assert chain.consent(9) is None


# --- the lifecycle --------------------------------------------------------------------------


def test_reject_is_final(chain):
    document = terms(1)
    chain.codes([request(document)])
    assert chain.codes([answer("reject", 1, reason="I do not want a loan")]) == [Code.VALID]
    assert chain.status(1) == "rejected"
    assert chain.codes([act(a, document) for a in ACTIONS]) == [Code.WRONG_STATE] * 5
    assert chain.status(1) == "rejected"


def test_pause_and_resume_alternate(chain):
    document = terms(1)
    activate(chain, document)
    for _ in range(3):
        assert chain.codes([answer("resume", 1)]) == [Code.WRONG_STATE]
        assert chain.codes([answer("pause", 1)]) == [Code.VALID]
        assert chain.status(1) == "paused"
        assert chain.codes([answer("pause", 1)]) == [Code.WRONG_STATE]
        assert chain.codes([answer("resume", 1)]) == [Code.VALID]
        assert chain.status(1) == "active"


@pytest.mark.parametrize("path", [[], ["grant"], ["grant", "pause"], ["grant", "pause", "resume"]])
def test_revoke_from_every_live_status(chain, path):
    document = terms(1)
    chain.codes([request(document)])
    assert chain.codes([act(a, document) for a in path]) == [Code.VALID] * len(path)
    outcome = chain.commit([answer("revoke", 1)])
    assert [t.code for t in outcome.txs] == [Code.VALID]
    stored = chain.consent(1)
    assert stored["status"] == "revoked" and stored["revoked_at"] == outcome.txs[0].log_index
    assert chain.codes([act(a, document) for a in ACTIONS]) == [Code.WRONG_STATE] * 5
    assert chain.status(1) == "revoked"


def reach(chain: ConsentChain, document: dict, status: str) -> None:
    """Bring consent ``document`` (max_uses 1) to ``status`` at T0."""
    path = {
        "requested": [],
        "active": ["grant"],
        "paused": ["grant", "pause"],
        "rejected": ["reject"],
        "revoked": ["grant", "revoke"],
        "exhausted": ["grant"],
    }[status]
    assert chain.codes([request(document)] + [act(a, document) for a in path]) == [Code.VALID] * (1 + len(path))
    if status == "exhausted":
        assert chain.codes([record_access(access(document))]) == [Code.VALID]
    assert chain.status(document["consent_id"]) == status


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", ["requested", "active", "paused", "rejected", "revoked", "exhausted"])
def test_every_transition_follows_the_table(chain, status, action):
    document = terms(1, max_uses=1)
    reach(chain, document, status)
    expected = TRANSITIONS[action].get(status)
    outcome = chain.commit([act(action, document)])
    assert outcome.txs[0].code is (Code.VALID if expected else Code.WRONG_STATE), outcome.txs[0].reason
    assert chain.status(1) == (expected or status)
    if not expected:
        assert status in outcome.txs[0].reason


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", ["requested", "active", "paused", "rejected", "revoked", "exhausted"])
def test_nothing_can_be_answered_once_the_validity_period_is_over(chain, status, action):
    document = terms(1, max_uses=1, valid_until=T0 + DAY)
    reach(chain, document, status)
    end = document["valid_until"]
    outcome = chain.commit([act(action, document, time_ms=end)], time=end)
    assert outcome.txs[0].code is Code.WRONG_STATE
    shown = status if status in FINAL_STATUSES else "expired"
    assert outcome.txs[0].reason.endswith(f"it is {shown}")
    assert chain.status(1) == status  # expiry is never written


def test_a_grant_a_millisecond_before_the_end_is_still_in_time(chain):
    document = terms(1, valid_until=T0 + DAY)
    chain.codes([request(document)])
    end = document["valid_until"]
    assert chain.codes([grant(document, time_ms=end - 1)], time=end - 1) == [Code.VALID]
    assert chain.codes([answer("pause", 1, time_ms=end)], time=end) == [Code.WRONG_STATE]


def test_a_consent_may_be_granted_before_it_starts(chain):
    document = terms(1, valid_from=T0 + 5 * DAY, valid_until=T0 + 10 * DAY)
    activate(chain, document)
    assert chain.status(1) == "active"


def test_a_rejection_in_the_same_block_as_the_grant_loses(chain):
    document = terms(1)
    chain.codes([request(document)])
    assert chain.codes([grant(document), answer("reject", 1)]) == [Code.VALID, Code.WRONG_STATE]
    assert chain.status(1) == "active"


# --- next of kin ----------------------------------------------------------------------------


@pytest.fixture
def bereaved(chain) -> ConsentChain:
    """Carol is registered as Alice's child, and Alice's death is registered."""
    assert chain.codes([relate(ALICE, CAROL), death_registration(rid(1))]) == [Code.VALID, Code.VALID]
    return chain


def test_a_relative_consents_to_the_death_registration(bereaved):
    document = kin_terms()
    assert bereaved.codes([request(document, signer=INSURER)]) == [Code.VALID]
    stored = bereaved.consent(5)
    assert stored["grantor"] == CAROL.public_key and stored["consumer"] == "insurer"
    assert bereaved.read(grantor_consent_key(CAROL.public_key, cid(5))) == "insurer"
    assert bereaved.read(subject_consent_key(ALICE.public_key, cid(5))) == "insurer"
    assert bereaved.read(consumer_consent_key("insurer", cid(5))) == ALICE.public_key
    # the relative answers, not the subject
    assert bereaved.codes([grant(document, citizen=ALICE)]) == [Code.NOT_FOUND]
    assert bereaved.codes([grant(document, citizen=CAROL)]) == [Code.VALID]
    assert bereaved.codes([answer("pause", 5, citizen=ALICE)]) == [Code.NOT_FOUND]
    assert bereaved.codes([answer("pause", 5, citizen=CAROL), answer("resume", 5, citizen=CAROL)]) == [Code.VALID] * 2
    assert bereaved.codes([answer("revoke", 5, citizen=CAROL)]) == [Code.VALID]
    assert bereaved.status(5) == "revoked"


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (kin_terms(data_types=[INCOME]), Code.FORBIDDEN),
        (kin_terms(data_types=[DEATH, INCOME]), Code.FORBIDDEN),
        (kin_terms(data_types=[MEDICAL]), Code.FORBIDDEN),
        (kin_terms(grantor=BOB), Code.FORBIDDEN),  # not a registered relative
        (kin_terms(subject=BOB, grantor=CAROL), Code.FORBIDDEN),  # Carol is Alice's relative, not Bob's
        (kin_terms(grantor=DAVE), Code.FORBIDDEN),
        (kin_terms(legal_basis="pipl-13.1-consent"), Code.BAD_PAYLOAD),
        (kin_terms(grantor=None), Code.BAD_PAYLOAD),  # no grantor but the next-of-kin basis
    ],
)
def test_next_of_kin_refusals(bereaved, document, code):
    if document.get("grantor") is None:
        document = {k: v for k, v in document.items() if k != "grantor"}
    assert bereaved.codes([request(document, signer=INSURER)]) == [code]
    assert nothing_written_for(bereaved, document)
    assert bereaved.keys(b"grantor-consent/") == {}


def test_next_of_kin_needs_the_registered_relation(chain):
    assert chain.codes([death_registration(rid(1))]) == [Code.VALID]
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.FORBIDDEN]
    # a relation recorded the other way round (Alice as Carol's relative) does not count
    assert chain.codes([relate(CAROL, ALICE, "parent")]) == [Code.VALID]
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.FORBIDDEN]
    assert chain.codes([relate(ALICE, CAROL)]) == [Code.VALID]
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.VALID]


def test_next_of_kin_needs_a_death_registration_on_the_ledger(chain):
    assert chain.codes([relate(ALICE, CAROL)]) == [Code.VALID]
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.FORBIDDEN]
    assert chain.read(deceased_key(ALICE.public_key)) is None
    # Bob's death does not let Carol answer for Alice
    assert chain.codes([death_registration(rid(2), BOB)]) == [Code.VALID]
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.FORBIDDEN]
    assert chain.codes([death_registration(rid(1))]) == [Code.VALID]
    assert chain.read(deceased_key(ALICE.public_key)) == rid(1)
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.VALID]


def test_a_withdrawn_death_registration_no_longer_opens_the_next_of_kin_path(bereaved):
    assert bereaved.codes([withdraw(rid(1), data_type=DEATH)]) == [Code.VALID]
    assert bereaved.read(deceased_key(ALICE.public_key)) is None
    assert bereaved.codes([request(kin_terms(), signer=INSURER)]) == [Code.FORBIDDEN]


def test_only_a_death_registration_marks_a_citizen_deceased(chain):
    assert chain.codes([relate(ALICE, CAROL), publish(rid(3), data_type=INCOME)]) == [Code.VALID, Code.VALID]
    assert chain.read(deceased_key(ALICE.public_key)) is None
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.FORBIDDEN]


def test_a_subject_has_at_most_one_death_registration(chain):
    """A second death registration is refused, so withdrawing one can never hide another."""
    assert chain.codes([relate(ALICE, CAROL), death_registration(rid(1))]) == [Code.VALID] * 2
    assert chain.codes([death_registration(rid(2))]) == [Code.ALREADY_EXISTS]
    assert chain.codes([withdraw(rid(1), data_type=DEATH)]) == [Code.VALID]
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.FORBIDDEN]  # no longer registered as deceased
    assert chain.codes([death_registration(rid(2))]) == [Code.VALID]
    assert chain.codes([request(kin_terms(), signer=INSURER)]) == [Code.VALID]


# --- citizen.relate -------------------------------------------------------------------------


def test_relate_is_attested_by_the_identity_authority_and_cosigned_by_the_relative(chain):
    assert chain.codes([relate(ALICE, CAROL, "child")]) == [Code.VALID]
    assert chain.read(kin_key(ALICE.public_key, CAROL.public_key)) == {"relation": "child", "attested_by": "bigdata"}
    assert chain.read(kin_key(CAROL.public_key, ALICE.public_key)) is None  # directed


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        (relate(ALICE, CAROL, signer=BANK), Code.FORBIDDEN),
        (relate(ALICE, CAROL, signer=CIVIL), Code.FORBIDDEN),
        (relate(ALICE, CAROL, signer=CAROL, cosign=False), Code.FORBIDDEN),  # a citizen cannot attest their own relation
        (relate(ALICE, CAROL, cosign=False), Code.POLICY_NOT_MET),
        (tx(BIGDATA, "citizen.relate", {"citizen": ALICE.public_key, "relative": CAROL.public_key, "relation": "child"}, cosigners=[ALICE]), Code.POLICY_NOT_MET),
        (relate(DAVE, CAROL), Code.NOT_FOUND),
        (relate(ALICE, DAVE), Code.NOT_FOUND),
        (relate(ALICE, ALICE), Code.BAD_PAYLOAD),
        (relate(ALICE, CAROL, "cousin"), Code.BAD_PAYLOAD),
    ],
)
def test_relate_refusals(chain, envelope, code):
    assert chain.codes([envelope]) == [code]
    assert chain.keys(b"kin/") == {}


def test_a_relative_enrolled_later_can_be_related(chain):
    assert chain.codes([relate(ALICE, DAVE)]) == [Code.NOT_FOUND]
    assert chain.codes([enroll(DAVE), relate(ALICE, DAVE, "spouse")]) == [Code.VALID, Code.VALID]
    assert chain.read(kin_key(ALICE.public_key, DAVE.public_key))["relation"] == "spouse"


# --- random sequences against a model -------------------------------------------------------

MODEL_CONSENTS = [
    # (id, valid for, max uses, frequency)
    (11, 3 * HOUR, 3, {"max": 2, "per": "hour"}),
    (12, DAY, 2, {"max": 5, "per": "day"}),
    (13, 3 * DAY, 4, {"max": 1, "per": "hour"}),
]
CONSENT_IDS = st.sampled_from([c[0] for c in MODEL_CONSENTS])
# grants and resumes are drawn more often than the answers that end a consent, so that active
# consents — and their use up to exhaustion — are common
BIASED_ACTIONS = st.sampled_from(["grant", "grant", "grant", "pause", "resume", "resume", "reject", "revoke"])


class ConsentLifecycle(RuleBasedStateMachine):
    """Random answers, accesses and clock advances; the chain must agree with a tiny model."""

    @initialize()
    def setup(self):
        self.chain = fresh_chain()
        self.now = T0
        self.documents = {}
        self.model = {}
        for n, length, max_uses, frequency in MODEL_CONSENTS:
            document = terms(n, valid_until=T0 + length, max_uses=max_uses, frequency=frequency)
            self.documents[n] = document
            self.model[n] = {"status": "requested", "uses": 0, "window": None, "window_uses": 0}
        envelopes = [request(d) for d in self.documents.values()]
        assert self.chain.codes(envelopes) == [Code.VALID] * len(envelopes)
        self.finals: dict[int, str] = {}

    def effective(self, n: int) -> str:
        status = self.model[n]["status"]
        if status not in FINAL_STATUSES and self.now >= self.documents[n]["valid_until"]:
            return "expired"
        return status

    @rule(action=BIASED_ACTIONS, n=CONSENT_IDS, by_someone_else=st.sampled_from([False] * 5 + [True]))
    def answer(self, action, n, by_someone_else):
        citizen = BOB if by_someone_else else ALICE
        (code,) = self.chain.codes([act(action, self.documents[n], citizen=citizen, time_ms=self.now)], time=self.now)
        if by_someone_else:
            assert code is Code.NOT_FOUND
            return
        target = TRANSITIONS[action].get(self.effective(n))
        assert code is (Code.VALID if target else Code.WRONG_STATE), (action, self.effective(n), code)
        if target:
            self.model[n]["status"] = target

    def _use(self, n):
        document, state = self.documents[n], self.model[n]
        window = self.now // {"hour": HOUR, "day": DAY}[document["frequency"]["per"]]
        in_window = state["window_uses"] if state["window"] == window else 0
        allowed = self.effective(n) == "active" and state["uses"] < document["max_uses"] and in_window < document["frequency"]["max"]
        (code,) = self.chain.codes([record_access(access(document), time_ms=self.now)], time=self.now)
        assert code is (Code.VALID if allowed else Code.POLICY_NOT_MET)
        if allowed:
            state["uses"] += 1
            state["window"], state["window_uses"] = window, in_window + 1
            if state["uses"] == document["max_uses"]:
                state["status"] = "exhausted"

    @rule(n=CONSENT_IDS)
    def use(self, n):
        self._use(n)

    @rule(n=CONSENT_IDS)
    def use_again(self, n):
        self._use(n)

    @rule(step=st.sampled_from([1, 60_000, 20 * 60_000, 20 * 60_000, 40 * 60_000, HOUR, 6 * HOUR]))
    def wait(self, step):
        self.now += step

    @invariant()
    def chain_agrees_with_the_model(self):
        for n, state in self.model.items():
            stored = self.chain.consent(n)
            assert stored["status"] == state["status"]
            assert stored["uses"] == state["uses"]
            if state["status"] in FINAL_STATUSES:
                assert self.finals.setdefault(n, state["status"]) == state["status"]  # final stays final
            else:
                assert n not in self.finals


ConsentLifecycle.TestCase.settings = settings(
    max_examples=80, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestConsentLifecycle = ConsentLifecycle.TestCase
