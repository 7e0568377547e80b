"""The rules, driven through the pure block builder over an in-memory LedgerStore.

A consortium of three organizations (admin threshold 2) is founded in block 0;
every test then submits ordered batches with ``build_block`` and commits them
with ``LedgerStore.append``, and checks the per-transaction codes and the state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.block import OrderedBatch
from ledger.crypto import KeyPair
from ledger.genesis import genesis_transaction, network_id
from ledger.genesis import MAX_ORGS
from ledger.processor import BatchOrderError, build_block
from ledger.rules import Code
from ledger.rules.engine import MAX_CLOCK_SKEW_MS
from ledger.tx import build_transaction, parse_transaction
from chain import Chain as LedgerChain

T0 = 1_700_000_000_000
FIVE_MINUTES_MS = 5 * 60 * 1000


def key(n: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"rules-test-key-%d" % n).digest())


# org admins: "cityhall" has two admins, the others one each; every org runs one node
CITYHALL_1, CITYHALL_2, PSB, BANK = key(1), key(2), key(3), key(4)
NODE_CITYHALL, NODE_PSB, NODE_BANK = key(11), key(12), key(13)
OUTSIDER = key(99)
CITIZENS = [key(100 + i) for i in range(16)]


def org(org_id: str, roles: list[str], admins: list[KeyPair], node: KeyPair | None = None) -> dict:
    nodes = [] if node is None else [{"id": f"{org_id}-node", "key": node.public_key}]
    return {"id": org_id, "name": org_id.title(), "roles": roles, "admin_keys": [a.public_key for a in admins], "nodes": nodes}


GENESIS = {
    "version": 1,
    "name": "test consortium",
    "time": T0,
    "admin_threshold": 2,
    "orgs": [
        org("cityhall", ["regulator"], [CITYHALL_1, CITYHALL_2], NODE_CITYHALL),
        org("psb", ["identity_authority", "provider"], [PSB], NODE_PSB),
        org("bank", ["consumer"], [BANK], NODE_BANK),
    ],
}
NETWORK = network_id(GENESIS)
GENESIS_ENVELOPE = genesis_transaction(GENESIS, [CITYHALL_1, PSB, BANK])


class Chain(LedgerChain):
    def __init__(self, network: bytes = NETWORK) -> None:
        super().__init__(network, T0)


@pytest.fixture
def chain() -> Chain:
    chain = Chain()
    assert chain.codes([GENESIS_ENVELOPE]) == [Code.VALID]
    return chain


def tx(signer: KeyPair, tx_type: str, payload: dict, *, cosigners=(), time_ms: int = T0, network: bytes = NETWORK, nonce=None) -> bytes:
    return build_transaction(signer, network, tx_type, payload, time_ms=time_ms, cosigners=cosigners, nonce=nonce)


def enroll(citizen: KeyPair, *, authority: KeyPair = PSB, cosign: bool = True, commitment: bytes | None = None, **kw) -> bytes:
    payload = {"citizen_key": citizen.public_key, "id_commitment": commitment or hashlib.sha256(citizen.public_key).digest()}
    return tx(authority, "citizen.enroll", payload, cosigners=[citizen] if cosign else [], **kw)


def member(k: KeyPair) -> bytes:
    return b"member/" + k.public_key


# --- genesis --------------------------------------------------------------------------------


def test_genesis_founds_the_network_state():
    chain = Chain()
    outcome = chain.commit([GENESIS_ENVELOPE])
    assert [t.code for t in outcome.txs] == [Code.VALID]
    assert outcome.header.height == 0 and outcome.header.codes == b"\x00"
    assert chain.read(b"network/orgs") == ["bank", "cityhall", "psb"]
    assert chain.read(b"network/policy") == {"admin_threshold": 2, "name": "test consortium"}
    for document_org in GENESIS["orgs"]:
        assert chain.read(b"org/" + document_org["id"].encode()) == document_org
        for admin in document_org["admin_keys"]:
            assert chain.read(b"member/" + admin) == {"org": document_org["id"]}
        for node in document_org["nodes"]:
            assert chain.read(b"node/" + node["id"].encode()) == {"org": document_org["id"], "key": node["key"]}
            assert chain.read(b"nodekey/" + node["key"]) == {"node": node["id"]}
            assert chain.read(b"member/" + node["key"]) is None  # node keys never sign transactions


@pytest.mark.parametrize(
    "founders",
    [
        [CITYHALL_1, PSB],  # bank missing
        [PSB, BANK],  # cityhall missing
        [CITYHALL_1, CITYHALL_2, BANK],  # two admins of one org do not stand in for psb
        [CITYHALL_1, PSB, NODE_BANK],  # a node key is not an admin key
        [CITYHALL_1, PSB, OUTSIDER],
    ],
    ids=["no-bank", "no-cityhall", "two-cityhall-no-psb", "bank-node-key", "outsider"],
)
def test_genesis_needs_every_founding_org(founders):
    chain = Chain()
    outcome = chain.commit([genesis_transaction(GENESIS, founders)])
    assert [t.code for t in outcome.txs] == [Code.POLICY_NOT_MET]
    assert chain.state() == {}
    assert outcome.state_writes == {}


def test_genesis_signed_by_every_founder_in_any_order():
    chain = Chain()
    assert chain.codes([genesis_transaction(GENESIS, [BANK, CITYHALL_2, PSB])]) == [Code.VALID]


def test_genesis_only_at_height_zero(chain):
    again = genesis_transaction(GENESIS, [CITYHALL_1, PSB, BANK])  # fresh nonce, fresh id
    assert parse_transaction(again).tx_id != parse_transaction(GENESIS_ENVELOPE).tx_id
    before = chain.state()
    assert chain.codes([again]) == [Code.GENESIS_ONLY]
    assert chain.state() == before


def test_block_zero_holds_only_the_genesis():
    chain = Chain()
    citizen = CITIZENS[0]
    assert chain.codes([enroll(citizen)]) == [Code.GENESIS_ONLY]
    assert chain.read(member(citizen)) is None
    assert chain.state() == {}


@pytest.mark.parametrize(
    "envelopes",
    [[], [GENESIS_ENVELOPE, GENESIS_ENVELOPE], "genesis-then-enrollment"],
    ids=["empty", "genesis-twice", "genesis-then-enrollment"],
)
def test_block_zero_with_other_than_one_transaction_is_refused(envelopes):
    if envelopes == "genesis-then-enrollment":
        envelopes = [GENESIS_ENVELOPE, enroll(CITIZENS[0])]
    chain = Chain()
    with pytest.raises(BatchOrderError):
        chain.build(envelopes)
    assert chain.store.head() is None


def test_batches_must_move_forward(chain):
    head = chain.store.head()
    for seq, time in [(head.order_seq, T0), (head.order_seq - 1, T0), (head.order_seq + 1, T0 - 1)]:
        with pytest.raises(BatchOrderError):
            build_block(
                OrderedBatch(seq, time, (enroll(CITIZENS[0]),)),
                network=NETWORK,
                head=head,
                log=chain.store.compact_range(),
                state=chain.store.state,
                is_committed=chain.store.is_committed,
            )
    # same time, next sequence number: fine; and sequence numbers may skip
    chain.seq = head.order_seq + 5
    assert chain.codes([enroll(CITIZENS[0])], time=T0) == [Code.VALID]
    assert chain.store.head().order_seq == head.order_seq + 6


def test_genesis_for_another_document_is_the_wrong_network():
    chain = Chain()
    other = {**GENESIS, "name": "other consortium"}
    assert chain.codes([genesis_transaction(other, [CITYHALL_1, PSB, BANK])]) == [Code.WRONG_NETWORK]
    assert chain.state() == {}


def test_genesis_whose_payload_is_not_the_named_network():
    # well signed, names this network, but carries a different document
    other = {**GENESIS, "name": "smuggled"}
    envelope = build_transaction(CITYHALL_1, NETWORK, "network.genesis", other, time_ms=T0, cosigners=[PSB, BANK])
    chain = Chain()
    assert chain.codes([envelope]) == [Code.WRONG_NETWORK]
    assert chain.state() == {}


# --- governance: M-of-N admin approvals --------------------------------------------------------

NEW_ORG_ADMIN, NEW_ORG_NODE = key(50), key(51)
NEW_ORG = org("archive", ["custodian"], [NEW_ORG_ADMIN], NEW_ORG_NODE)

APPROVALS = {
    "one-org": [PSB],
    "one-org-two-admins": [CITYHALL_1, CITYHALL_2],
    "one-org-plus-outsider": [PSB, OUTSIDER],
    "one-org-plus-node-key": [PSB, NODE_BANK],
    "two-orgs": [PSB, BANK],
    "two-orgs-three-keys": [CITYHALL_1, CITYHALL_2, BANK],
    "three-orgs": [CITYHALL_2, PSB, BANK],
}
QUORUM = {"two-orgs", "two-orgs-three-keys", "three-orgs"}


def governed(tx_type: str, payload: dict, approvers: list[KeyPair], **kw) -> bytes:
    return tx(approvers[0], tx_type, payload, cosigners=approvers[1:], **kw)


@pytest.mark.parametrize("approval", list(APPROVALS))
def test_org_upsert_needs_threshold_distinct_orgs(chain, approval):
    code = chain.codes([governed("org.upsert", {"org": NEW_ORG}, APPROVALS[approval])])
    if approval in QUORUM:
        assert code == [Code.VALID]
        assert chain.read(b"org/archive") == NEW_ORG
        assert chain.read(b"network/orgs") == ["archive", "bank", "cityhall", "psb"]
        assert chain.read(member(NEW_ORG_ADMIN)) == {"org": "archive"}
        assert chain.read(b"node/archive-node") == {"org": "archive", "key": NEW_ORG_NODE.public_key}
        assert chain.read(b"nodekey/" + NEW_ORG_NODE.public_key) == {"node": "archive-node"}
    else:
        assert code == [Code.POLICY_NOT_MET]
        assert chain.read(b"org/archive") is None
        assert chain.read(member(NEW_ORG_ADMIN)) is None
        assert chain.read(b"network/orgs") == ["bank", "cityhall", "psb"]


@pytest.mark.parametrize("approval", list(APPROVALS))
def test_org_remove_needs_threshold_distinct_orgs(chain, approval):
    approvers = APPROVALS[approval]
    assert chain.codes([governed("org.upsert", {"org": NEW_ORG}, [PSB, BANK])]) == [Code.VALID]
    code = chain.codes([governed("org.remove", {"org": "archive"}, approvers)])
    if approval in QUORUM:
        assert code == [Code.VALID]
        assert chain.read(b"org/archive") is None
        assert chain.read(member(NEW_ORG_ADMIN)) is None
        assert chain.read(b"node/archive-node") is None
        assert chain.read(b"nodekey/" + NEW_ORG_NODE.public_key) is None
        assert chain.read(b"network/orgs") == ["bank", "cityhall", "psb"]
    else:
        assert code == [Code.POLICY_NOT_MET]
        assert chain.read(b"org/archive") == NEW_ORG
        assert chain.read(member(NEW_ORG_ADMIN)) == {"org": "archive"}


@pytest.mark.parametrize("approval", list(APPROVALS))
def test_policy_set_needs_threshold_distinct_orgs(chain, approval):
    code = chain.codes([governed("policy.set", {"admin_threshold": 3}, APPROVALS[approval])])
    policy = chain.read(b"network/policy")
    if approval in QUORUM:
        assert code == [Code.VALID]
        assert policy == {"admin_threshold": 3, "name": "test consortium"}
    else:
        assert code == [Code.POLICY_NOT_MET]
        assert policy == {"admin_threshold": 2, "name": "test consortium"}


def test_raised_threshold_applies_to_later_changes(chain):
    assert chain.codes([governed("policy.set", {"admin_threshold": 3}, [PSB, BANK])]) == [Code.VALID]
    assert chain.codes([governed("org.upsert", {"org": NEW_ORG}, [PSB, BANK])]) == [Code.POLICY_NOT_MET]
    assert chain.codes([governed("org.upsert", {"org": NEW_ORG}, [PSB, BANK, CITYHALL_1])]) == [Code.VALID]
    # and within one block: the lowered threshold counts for the next transaction
    codes = chain.codes(
        [
            governed("policy.set", {"admin_threshold": 1}, [PSB, BANK, CITYHALL_1]),
            governed("org.remove", {"org": "archive"}, [BANK]),
        ]
    )
    assert codes == [Code.VALID, Code.VALID]
    assert chain.read(b"org/archive") is None


def test_threshold_cannot_exceed_the_number_of_orgs(chain):
    assert chain.codes([governed("policy.set", {"admin_threshold": 4}, [CITYHALL_1, PSB, BANK])]) == [Code.POLICY_NOT_MET]
    assert chain.read(b"network/policy")["admin_threshold"] == 2
    assert chain.codes([governed("policy.set", {"admin_threshold": 0}, [PSB, BANK])]) == [Code.BAD_PAYLOAD]


def test_removal_cannot_leave_fewer_orgs_than_the_threshold(chain):
    assert chain.codes([governed("policy.set", {"admin_threshold": 3}, [PSB, BANK])]) == [Code.VALID]
    assert chain.codes([governed("org.remove", {"org": "bank"}, [CITYHALL_1, PSB, BANK])]) == [Code.POLICY_NOT_MET]
    assert chain.read(b"org/bank") is not None


def test_removing_an_unknown_org_is_not_found(chain):
    assert chain.codes([governed("org.remove", {"org": "nobody"}, [PSB, BANK])]) == [Code.NOT_FOUND]


def test_removed_org_admin_can_no_longer_sign(chain):
    assert chain.codes([governed("org.remove", {"org": "bank"}, [PSB, CITYHALL_1])]) == [Code.VALID]
    assert chain.codes([governed("policy.set", {"admin_threshold": 1}, [BANK, PSB])]) == [Code.UNKNOWN_SIGNER]
    # as a co-signer it no longer counts towards the quorum
    assert chain.codes([governed("policy.set", {"admin_threshold": 1}, [PSB, BANK])]) == [Code.POLICY_NOT_MET]


def test_org_upsert_rekeys_an_existing_org(chain):
    new_bank_admin = key(60)
    rekeyed = org("bank", ["consumer", "provider"], [new_bank_admin], NODE_BANK)
    assert chain.codes([governed("org.upsert", {"org": rekeyed}, [PSB, CITYHALL_1])]) == [Code.VALID]
    assert chain.read(b"org/bank") == rekeyed
    assert chain.read(member(BANK)) is None
    assert chain.read(member(new_bank_admin)) == {"org": "bank"}
    assert chain.read(b"network/orgs") == ["bank", "cityhall", "psb"]


@pytest.mark.parametrize(
    "clash",
    [
        org("archive", ["custodian"], [PSB]),  # an admin key of another org
        org("archive", ["custodian"], [NODE_PSB]),  # a node key of another org
        org("archive", ["custodian"], [NEW_ORG_ADMIN], NODE_BANK),  # node key already in use
        {**NEW_ORG, "nodes": [{"id": "psb-node", "key": NEW_ORG_NODE.public_key}]},  # node id taken
    ],
    ids=["admin-key", "node-key-as-admin", "node-key", "node-id"],
)
def test_org_upsert_refuses_keys_or_node_ids_in_use(chain, clash):
    before = chain.state()
    assert chain.codes([governed("org.upsert", {"org": clash}, [PSB, BANK])]) == [Code.ALREADY_EXISTS]
    assert chain.state() == before


def _inconsistent_orgs() -> dict[str, dict]:
    shared, node_a, node_b = key(70), key(71), key(72)
    base = org("archive", ["custodian"], [NEW_ORG_ADMIN])
    return {
        "admin-key-is-own-node-key": org("archive", ["custodian"], [shared], shared),
        "two-nodes-one-id": {**base, "nodes": [{"id": "vault", "key": node_a.public_key}, {"id": "vault", "key": node_b.public_key}]},
        "two-nodes-one-key": {**base, "nodes": [{"id": "vault-1", "key": node_a.public_key}, {"id": "vault-2", "key": node_a.public_key}]},
    }


@pytest.mark.parametrize("case", list(_inconsistent_orgs()))
def test_org_upsert_refuses_an_internally_inconsistent_org(chain, case):
    # genesis refuses these shapes (check_membership); an upsert must not let them in later
    bad = _inconsistent_orgs()[case]
    before = chain.state()
    assert chain.codes([governed("org.upsert", {"org": bad}, [PSB, BANK])]) == [Code.POLICY_NOT_MET]
    assert chain.state() == before


def test_org_count_is_capped(chain):
    assert MAX_ORGS >= 3
    extra = [org(f"org-{i:03d}", ["consumer"], [key(1000 + i)]) for i in range(MAX_ORGS - 3 + 1)]
    upserts = [governed("org.upsert", {"org": o}, [PSB, BANK]) for o in extra]
    codes = chain.codes(upserts)
    assert codes == [Code.VALID] * (MAX_ORGS - 3) + [Code.POLICY_NOT_MET]
    assert len(chain.read(b"network/orgs")) == MAX_ORGS
    # re-keying an existing org at the cap is still possible
    rekeyed = org("org-000", ["consumer", "provider"], [key(2000)])
    assert chain.codes([governed("org.upsert", {"org": rekeyed}, [PSB, BANK])]) == [Code.VALID]
    assert chain.codes([governed("policy.set", {"admin_threshold": MAX_ORGS + 1}, [PSB, BANK])]) == [Code.BAD_PAYLOAD]


def test_membership_changes_need_an_org_admin_as_signer(chain):
    citizen = CITIZENS[0]
    assert chain.codes([enroll(citizen)]) == [Code.VALID]
    # a citizen as first signer is refused even when two org admins co-sign
    assert chain.codes([governed("policy.set", {"admin_threshold": 1}, [citizen, PSB, BANK])]) == [Code.FORBIDDEN]
    assert chain.read(b"network/policy")["admin_threshold"] == 2


# --- citizen enrollment -----------------------------------------------------------------------


def test_enrollment_by_the_identity_authority(chain):
    citizen = CITIZENS[0]
    commitment = hashlib.sha256(b"commitment").digest()
    outcome = chain.commit([enroll(citizen, commitment=commitment)])
    assert [t.code for t in outcome.txs] == [Code.VALID]
    assert chain.read(member(citizen)) == {"citizen": True}
    assert chain.read(b"citizen/" + citizen.public_key) == {
        "id_commitment": commitment,
        "enrolled_by": "psb",
        "log_index": outcome.txs[0].log_index,
    }
    assert outcome.txs[0].log_index == 1  # genesis is leaf 0


@pytest.mark.parametrize("authority", [CITYHALL_1, BANK], ids=["regulator", "consumer"])
def test_enrollment_needs_the_identity_authority_role(chain, authority):
    citizen = CITIZENS[0]
    assert chain.codes([enroll(citizen, authority=authority)]) == [Code.FORBIDDEN]
    assert chain.read(member(citizen)) is None


def test_enrolled_citizen_cannot_enroll_others(chain):
    assert chain.codes([enroll(CITIZENS[0])]) == [Code.VALID]
    assert chain.codes([enroll(CITIZENS[1], authority=CITIZENS[0])]) == [Code.FORBIDDEN]


def test_enrollment_needs_the_citizen_cosignature(chain):
    citizen = CITIZENS[0]
    assert chain.codes([enroll(citizen, cosign=False)]) == [Code.POLICY_NOT_MET]
    # another citizen's co-signature does not count either
    wrong = tx(PSB, "citizen.enroll", {"citizen_key": citizen.public_key, "id_commitment": bytes(32)}, cosigners=[CITIZENS[1]])
    assert chain.codes([wrong]) == [Code.POLICY_NOT_MET]
    assert chain.read(member(citizen)) is None


def test_second_enrollment_of_a_key_already_exists(chain):
    citizen = CITIZENS[0]
    first = enroll(citizen, commitment=bytes(32))
    assert chain.codes([first]) == [Code.VALID]
    second = enroll(citizen, commitment=b"\x01" * 32)  # a different transaction
    assert chain.codes([second]) == [Code.ALREADY_EXISTS]
    assert chain.read(b"citizen/" + citizen.public_key)["id_commitment"] == bytes(32)
    # and inside one block
    other = CITIZENS[1]
    assert chain.codes([enroll(other), enroll(other)]) == [Code.VALID, Code.ALREADY_EXISTS]


@pytest.mark.parametrize("taken", [PSB, BANK, NODE_BANK], ids=["authority-admin", "other-admin", "node-key"])
def test_enrolling_a_member_or_node_key_already_exists(chain, taken):
    before = chain.state()
    # the authority's own key: its signature already is the "citizen's" signature
    assert chain.codes([enroll(taken, cosign=taken is not PSB)]) == [Code.ALREADY_EXISTS]
    assert chain.state() == before


def test_unknown_signer(chain):
    assert chain.codes([enroll(CITIZENS[0], authority=OUTSIDER)]) == [Code.UNKNOWN_SIGNER]
    assert chain.codes([governed("policy.set", {"admin_threshold": 1}, [OUTSIDER, PSB, BANK])]) == [Code.UNKNOWN_SIGNER]
    # node keys are not members either
    assert chain.codes([enroll(CITIZENS[1], authority=NODE_PSB)]) == [Code.UNKNOWN_SIGNER]


@pytest.mark.parametrize("tx_type", ["citizen.unenroll", "x", "network.genesis2", "org.upsert.v2"])
def test_unknown_type(chain, tx_type):
    assert chain.codes([tx(PSB, tx_type, {})]) == [Code.UNKNOWN_TYPE]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"citizen_key": CITIZENS[0].public_key},
        {"id_commitment": bytes(32)},
        {"citizen_key": CITIZENS[0].public_key, "id_commitment": bytes(31)},
        {"citizen_key": CITIZENS[0].public_key[:31], "id_commitment": bytes(32)},
        {"citizen_key": CITIZENS[0].public_key, "id_commitment": "00" * 32},
        {"citizen_key": CITIZENS[0].public_key, "id_commitment": bytes(32), "national_id": "110101199003078515"},
    ],
    ids=["empty", "no-commitment", "no-key", "short-commitment", "short-key", "text-commitment", "extra-field"],
)
def test_bad_enrollment_payload(chain, payload):
    before = chain.state()
    assert chain.codes([tx(PSB, "citizen.enroll", payload, cosigners=[CITIZENS[0]])]) == [Code.BAD_PAYLOAD]
    assert chain.state() == before


@pytest.mark.parametrize(
    ("tx_type", "payload"),
    [
        ("org.upsert", {"org": {**NEW_ORG, "roles": ["mayor"]}}),
        ("org.upsert", {"org": {**NEW_ORG, "id": "Archive"}}),
        ("org.upsert", {}),
        ("org.remove", {"org": 7}),
        ("policy.set", {"admin_threshold": "2"}),
        ("policy.set", {"admin_threshold": 2, "extra": True}),
    ],
)
def test_bad_governance_payload(chain, tx_type, payload):
    assert chain.codes([governed(tx_type, payload, [PSB, BANK])]) == [Code.BAD_PAYLOAD]


def test_clock_skew_limit(chain):
    assert MAX_CLOCK_SKEW_MS == FIVE_MINUTES_MS
    block_time = T0 + 10 * FIVE_MINUTES_MS
    envelopes = [
        enroll(CITIZENS[0], time_ms=block_time - FIVE_MINUTES_MS),
        enroll(CITIZENS[1], time_ms=block_time + FIVE_MINUTES_MS),
        enroll(CITIZENS[2], time_ms=block_time - FIVE_MINUTES_MS - 1),
        enroll(CITIZENS[3], time_ms=block_time + FIVE_MINUTES_MS + 1),
        enroll(CITIZENS[4], time_ms=0),
    ]
    codes = chain.codes(envelopes, time=block_time)
    assert codes == [Code.VALID, Code.VALID, Code.TIME_SKEW, Code.TIME_SKEW, Code.TIME_SKEW]
    assert chain.read(member(CITIZENS[2])) is None and chain.read(member(CITIZENS[3])) is None


def test_genesis_time_skew():
    chain = Chain()
    assert chain.codes([GENESIS_ENVELOPE], time=T0 + FIVE_MINUTES_MS + 1) == [Code.TIME_SKEW]
    assert chain.state() == {}


def test_wrong_network(chain):
    other_network = hashlib.sha256(b"another network").digest()
    citizen = CITIZENS[0]
    assert chain.codes([enroll(citizen, network=other_network)]) == [Code.WRONG_NETWORK]
    assert chain.read(member(citizen)) is None
    # refused before indexing: the same citizen can still be enrolled on this network
    assert chain.codes([enroll(citizen)]) == [Code.VALID]


def test_replay_in_the_same_block_and_in_a_later_block(chain):
    envelope = enroll(CITIZENS[0])
    outcome = chain.commit([envelope, envelope])
    assert [t.code for t in outcome.txs] == [Code.VALID, Code.DUPLICATE_TXID]
    assert [t.indexed for t in outcome.txs] == [True, False]
    location = chain.store.tx_location(parse_transaction(envelope).tx_id)
    assert (location.log_index, location.height, location.code) == (1, 1, Code.VALID)

    assert chain.codes([envelope]) == [Code.DUPLICATE_TXID]
    assert chain.codes([enroll(CITIZENS[1]), envelope]) == [Code.VALID, Code.DUPLICATE_TXID]
    # the original's index entry is not overwritten by the replays
    location = chain.store.tx_location(parse_transaction(envelope).tx_id)
    assert (location.log_index, location.height, location.code) == (1, 1, Code.VALID)


def test_a_refused_transaction_does_not_take_its_id(chain):
    envelope = enroll(CITIZENS[0], authority=BANK)
    tx_id = parse_transaction(envelope).tx_id
    assert chain.codes([envelope, envelope]) == [Code.FORBIDDEN, Code.FORBIDDEN]
    assert not chain.store.is_committed(tx_id)
    assert chain.codes([envelope]) == [Code.FORBIDDEN]
    assert chain.store.tx_location(tx_id).code is Code.FORBIDDEN


def test_a_refused_transaction_can_commit_once_the_state_allows_it(chain):
    assert chain.codes([governed("policy.set", {"admin_threshold": 3}, [PSB, BANK])]) == [Code.VALID]
    upsert = governed("org.upsert", {"org": NEW_ORG}, [PSB, BANK])
    assert chain.codes([upsert]) == [Code.POLICY_NOT_MET]
    lower = governed("policy.set", {"admin_threshold": 2}, [PSB, BANK, CITYHALL_1])
    outcome = chain.commit([lower, upsert, upsert])
    assert [t.code for t in outcome.txs] == [Code.VALID, Code.VALID, Code.DUPLICATE_TXID]
    assert chain.read(b"org/archive") == NEW_ORG
    location = chain.store.tx_location(parse_transaction(upsert).tx_id)
    assert (location.code, location.log_index) == (Code.VALID, outcome.txs[1].log_index)
    assert chain.codes([upsert]) == [Code.DUPLICATE_TXID]


def test_same_body_with_other_signatures_is_a_duplicate(chain):
    envelope = enroll(CITIZENS[0])
    body, signatures = codec.decode(envelope)
    stripped = codec.encode([body, signatures[:1]])  # the citizen's co-signature dropped
    assert parse_transaction(stripped).tx_id == parse_transaction(envelope).tx_id
    assert chain.codes([envelope, stripped]) == [Code.VALID, Code.DUPLICATE_TXID]


@pytest.mark.parametrize("kind", ["citizen.enroll", "policy.set"])
def test_stripping_cosignatures_cannot_burn_the_genuine_transaction(chain, kind):
    if kind == "citizen.enroll":
        genuine = enroll(CITIZENS[0])
    else:
        genuine = governed("policy.set", {"admin_threshold": 3}, [PSB, BANK])
    body, signatures = codec.decode(genuine)
    stripped = codec.encode([body, signatures[:1]])  # needs no key at all to produce
    assert parse_transaction(stripped).tx_id == parse_transaction(genuine).tx_id
    assert chain.codes([stripped]) == [Code.POLICY_NOT_MET]
    assert chain.codes([stripped, genuine]) == [Code.POLICY_NOT_MET, Code.VALID]
    assert chain.codes([genuine, stripped]) == [Code.DUPLICATE_TXID, Code.DUPLICATE_TXID]


def test_bad_signature_does_not_burn_the_tx_id(chain):
    envelope = enroll(CITIZENS[0])
    body, signatures = codec.decode(envelope)
    forged = codec.encode([body, [signatures[0], [signatures[1][0], bytes(64)]]])
    outcome = chain.commit([forged])
    assert [(t.code, t.indexed) for t in outcome.txs] == [(Code.BAD_SIGNATURE, False)]
    assert not chain.store.is_committed(parse_transaction(envelope).tx_id)
    assert chain.codes([envelope]) == [Code.VALID]


def test_undecodable_envelope_is_kept_as_bad_encoding(chain):
    outcome = chain.commit([b"\xff\x00garbage", enroll(CITIZENS[0])])
    assert [t.code for t in outcome.txs] == [Code.BAD_ENCODING, Code.VALID]
    assert outcome.txs[0].tx_id is None
    assert chain.store.leaf(1) == b"\xff\x00garbage"


def test_invalid_transactions_stay_in_the_block_and_change_nothing(chain):
    good = enroll(CITIZENS[0])
    envelopes = [
        enroll(CITIZENS[1], authority=BANK),  # FORBIDDEN
        enroll(CITIZENS[2], cosign=False),  # POLICY_NOT_MET
        good,
        enroll(CITIZENS[0]),  # ALREADY_EXISTS (same key, new tx)
        tx(PSB, "no.such.type", {}),  # UNKNOWN_TYPE
    ]
    expected = [Code.FORBIDDEN, Code.POLICY_NOT_MET, Code.VALID, Code.ALREADY_EXISTS, Code.UNKNOWN_TYPE]
    before = chain.state()
    outcome = chain.commit(envelopes)

    assert [t.code for t in outcome.txs] == expected
    header = chain.store.header(1)
    assert header.tx_count == 5 and header.first_index == 1
    assert header.codes == bytes([int(c) for c in expected])
    assert [chain.store.leaf(i) for i in range(1, 6)] == envelopes
    for position, envelope in enumerate(envelopes):
        location = chain.store.tx_location(parse_transaction(envelope).tx_id)
        assert (location.log_index, location.code) == (1 + position, expected[position])

    # the only state change is the valid enrollment's
    after = chain.state()
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {member(CITIZENS[0]), b"citizen/" + CITIZENS[0].public_key}
    assert set(outcome.state_writes) == changed
    assert chain.store.history(member(CITIZENS[0])) == [3]
    assert chain.store.history(member(CITIZENS[1])) == []


def test_a_block_of_only_invalid_transactions_writes_no_state(chain):
    outcome = chain.commit([enroll(CITIZENS[0], authority=OUTSIDER), enroll(CITIZENS[1], cosign=False)])
    assert [t.code for t in outcome.txs] == [Code.UNKNOWN_SIGNER, Code.POLICY_NOT_MET]
    assert outcome.state_writes == {}
    assert outcome.history == []
    # the state hash commits to the (empty) write set: SHA-256 of the empty CBOR array
    assert outcome.header.state_hash == hashlib.sha256(b"\x80").digest()


# --- property: valid and invalid enrollments, random batches -----------------------------------

KINDS = ["valid", "valid", "valid", "reuse_key", "no_cosign", "forbidden", "unknown_signer", "bad_payload", "skew", "replay", "bad_sig", "wrong_network"]
OTHER_NETWORK = hashlib.sha256(b"elsewhere").digest()


@dataclass
class Planned:
    envelope: bytes
    citizen: KeyPair | None  # the key a valid one enrolls
    commitment: bytes
    expected: Code


def plan_enrollments(steps: list[tuple[str, int]]) -> list[Planned]:
    """Build envelopes and, independently of the engine, the code each must get."""
    planned: list[Planned] = []
    enrolled: set[bytes] = set()
    committed: set[bytes] = set()  # envelopes of the valid ones
    for number, (kind, pick) in enumerate(steps):
        nonce = number.to_bytes(16, "big")
        commitment = hashlib.sha256(b"id-%d" % number).digest()
        citizen = CITIZENS[pick % len(CITIZENS)]
        if kind == "reuse_key" and planned:
            earlier = [p.citizen for p in planned if p.citizen is not None]
            citizen = earlier[pick % len(earlier)] if earlier else citizen
            kind = "valid"
        if kind == "replay" and planned:
            target = planned[pick % len(planned)]
            # only a valid commit takes an id; a refused one is judged again, with the same outcome here
            code = Code.DUPLICATE_TXID if target.envelope in committed else target.expected
            planned.append(Planned(target.envelope, None, commitment, code))
            continue
        if kind == "replay":
            kind = "valid"
        payload = {"citizen_key": citizen.public_key, "id_commitment": commitment}
        common = {"nonce": nonce}
        if kind == "valid":
            envelope = tx(PSB, "citizen.enroll", payload, cosigners=[citizen], **common)
            if citizen.public_key in enrolled:
                planned.append(Planned(envelope, None, commitment, Code.ALREADY_EXISTS))
            else:
                enrolled.add(citizen.public_key)
                committed.add(envelope)
                planned.append(Planned(envelope, citizen, commitment, Code.VALID))
            continue
        if kind == "no_cosign":
            envelope, code = tx(PSB, "citizen.enroll", payload, **common), Code.POLICY_NOT_MET
        elif kind == "forbidden":
            envelope, code = tx(BANK, "citizen.enroll", payload, cosigners=[citizen], **common), Code.FORBIDDEN
        elif kind == "unknown_signer":
            envelope, code = tx(OUTSIDER, "citizen.enroll", payload, cosigners=[citizen], **common), Code.UNKNOWN_SIGNER
        elif kind == "bad_payload":
            envelope = tx(PSB, "citizen.enroll", {**payload, "id_commitment": commitment[:16]}, cosigners=[citizen], **common)
            code = Code.BAD_PAYLOAD
        elif kind == "skew":
            envelope = tx(PSB, "citizen.enroll", payload, cosigners=[citizen], time_ms=T0 - FIVE_MINUTES_MS - 1, **common)
            code = Code.TIME_SKEW
        elif kind == "bad_sig":
            good = tx(PSB, "citizen.enroll", payload, cosigners=[citizen], **common)
            body, signatures = codec.decode(good)
            envelope = codec.encode([body, [signatures[0], [signatures[1][0], bytes(reversed(signatures[1][1]))]]])
            code = Code.BAD_SIGNATURE
        else:  # wrong_network
            envelope = tx(PSB, "citizen.enroll", payload, cosigners=[citizen], network=OTHER_NETWORK, **common)
            code = Code.WRONG_NETWORK
        planned.append(Planned(envelope, None, commitment, code))
    return planned


def split(items: list, cuts: list[int]) -> list[list]:
    points = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    return [items[a:b] for a, b in zip(points, points[1:])]


def without_log_index(state: dict[bytes, bytes]) -> dict[bytes, object]:
    out = {}
    for key, raw in state.items():
        value = codec.decode(raw)
        if key.startswith(b"citizen/"):
            value = {k: v for k, v in value.items() if k != "log_index"}
        out[key] = value
    return out


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 1000)), min_size=1, max_size=14),
    cuts=st.lists(st.integers(0, 1000), max_size=5),
)
def test_random_enrollment_batches(steps, cuts):
    planned = plan_enrollments(steps)
    batches = split(planned, cuts)

    chain = Chain()
    chain.commit([GENESIS_ENVELOPE])
    genesis_state = chain.state()
    outcomes = [chain.commit([p.envelope for p in batch], time=T0 + n) for n, batch in enumerate(batches)]

    # every transaction is in the log with the code the plan predicts
    got = [t.code for outcome in outcomes for t in outcome.txs]
    assert got == [p.expected for p in planned]

    # the state is the genesis state plus exactly the valid enrollments, at their log positions
    expected_state = {k: codec.decode(v) for k, v in genesis_state.items()}
    for log_index, p in enumerate(planned, start=1):
        if p.expected is Code.VALID:
            expected_state[member(p.citizen)] = {"citizen": True}
            expected_state[b"citizen/" + p.citizen.public_key] = {
                "id_commitment": p.commitment,
                "enrolled_by": "psb",
                "log_index": log_index,
            }
    assert {k: codec.decode(v) for k, v in chain.state().items()} == expected_state

    # applying only the valid ones, in the same batches, yields the same state (up to log positions)
    only_valid = Chain()
    only_valid.commit([GENESIS_ENVELOPE])
    for n, batch in enumerate(batches):
        kept = [p.envelope for p in batch if p.expected is Code.VALID]
        assert all(t.code is Code.VALID for t in only_valid.commit(kept, time=T0 + n).txs)
    assert without_log_index(only_valid.state()) == without_log_index(chain.state())

    # building the same batches again gives byte-identical blocks
    again = Chain()
    again.commit([GENESIS_ENVELOPE])
    for n, (batch, first) in enumerate(zip(batches, outcomes)):
        rebuilt = again.commit([p.envelope for p in batch], time=T0 + n)
        assert rebuilt.header_bytes == first.header_bytes
        assert rebuilt.block_hash == first.block_hash
        assert rebuilt.state_writes == first.state_writes
    assert again.store.head() == chain.store.head()
    assert dict(again.store.kv.iterate()) == dict(chain.store.kv.iterate())
