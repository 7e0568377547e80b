"""privacy.he.threshold: exact sums under a joint key, all-or-nothing fusion, ceremony and share handling."""

from __future__ import annotations

import itertools
import random
from typing import Sequence

import numpy as np
import pytest

from ledger import codec
from privacy.he import (
    PARAMETER_SETS,
    THRESHOLD_PARAMS,
    HeError,
    JointKey,
    SumBounds,
    ThresholdError,
    ThresholdParty,
    encrypt_values,
    fuse,
    joint_key_hash,
    run_ceremony,
    sum_encrypted,
)
from privacy.he.params import context

from he_samples import PARTIES, assert_reveals_only_the_total, foreign_ciphertext

THRESHOLD_SETS = [params for params in PARAMETER_SETS.values() if isinstance(params.bounds, SumBounds)]
BOUNDS = THRESHOLD_PARAMS.bounds
V, O, N = BOUNDS.value_max, BOUNDS.offset_max, BOUNDS.max_values
SLOTS = THRESHOLD_PARAMS.ring_dim


def decrypt(parties: list[ThresholdParty], joint: JointKey, ciphertext: bytes) -> int:
    return fuse(joint, {party.party_id: party.partial_decrypt(ciphertext) for party in parties})


def fused_slots(parties: list[ThresholdParty], ciphertext: bytes, which: Sequence[int] | None = None) -> list[int]:
    """Every slot of OpenFHE's own fusion of the partial decryptions of ``which`` parties (all of them by default)."""
    ctx = context(THRESHOLD_PARAMS)
    chosen = [parties[i] for i in which] if which is not None else parties
    partials = [ctx.load("partial", codec.decode(party.partial_decrypt(ciphertext))["partial"], what="p", code="x") for party in chosen]
    return list(ctx.cc.MultipartyDecryptFusion(partials).GetPackedValue())


def kat_cases(bounds: SumBounds, count: int) -> list[tuple[np.ndarray, int]]:
    """Deterministic (values, offset): the extremes first, then zeros, slot boundaries and seeded draws."""
    n, v, o = bounds.max_values, bounds.value_max, bounds.offset_max
    rng = np.random.default_rng(20261122)
    full = np.full(n, v, dtype=np.int64)
    cases = [
        (full, o),  # the largest total
        (full, -o),
        (np.zeros(n, dtype=np.int64), -o),  # the smallest total
        (np.zeros(n, dtype=np.int64), 0),
        (np.array([v]), 0),
        (np.array([0]), -1),
        (np.full(SLOTS, v), 1),  # exactly one ciphertext
        (np.full(SLOTS + 1, v), -1),  # one slot into the second
        (np.arange(SLOTS, dtype=np.int64), 0),
    ]
    while len(cases) < count:
        size = int(rng.choice([1, 2, 1000, SLOTS - 1, SLOTS + 5]))
        cases.append((rng.integers(0, v + 1, size), int(rng.integers(-o, o + 1))))
    return cases


@pytest.mark.parametrize("params", THRESHOLD_SETS, ids=[p.name for p in THRESHOLD_SETS])
def test_known_answers_at_the_range_extremes(params, ceremony):
    parties, joint = ceremony if params is THRESHOLD_PARAMS else run_ceremony(list(PARTIES), params)
    cases = kat_cases(params.bounds, 20)
    wrong = []
    for index, (values, offset) in enumerate(cases):
        total = decrypt(parties, joint, sum_encrypted(joint, encrypt_values(joint, values), offset))
        if total != int(values.sum()) + offset:
            wrong.append(index)
    assert wrong == []
    assert max(abs(int(values.sum()) + offset) for values, offset in cases) == params.bounds.max_abs_result


def test_a_key_of_the_most_parties_sums_exactly_at_the_extremes():
    """Eight parties: eight partial decryptions, each flooded with noise, still fuse to the exact total."""
    params = THRESHOLD_PARAMS
    parties, joint = run_ceremony([f"party-{i}" for i in range(params.max_parties)], params)
    full = np.full(params.bounds.max_values, V, dtype=np.int64)
    for values, offset in ((full, O), (np.zeros(1, dtype=np.int64), -O), (full[:12345], -987_654_321)):
        assert decrypt(parties, joint, sum_encrypted(joint, encrypt_values(joint, values), offset)) == int(values.sum()) + offset


def test_100000_values_sum_exactly_from_a_python_list(ceremony):
    parties, joint = ceremony
    values = [random.Random(7).randrange(0, V + 1) for _ in range(100_000)]
    ciphertexts = encrypt_values(joint, values)
    assert len(ciphertexts) == 7  # 16,384 values per ciphertext
    assert decrypt(parties, joint, sum_encrypted(joint, ciphertexts, -123_456)) == sum(values) - 123_456


def test_fewer_shares_fused_directly_give_garbage(ceremony):
    """fuse() refuses; OpenFHE's fusion itself, given any 2 of the 3 shares, yields no trace of the sum."""
    parties, joint = ceremony
    values = list(range(1000))
    ciphertext = sum_encrypted(joint, encrypt_values(joint, values))
    t = THRESHOLD_PARAMS.plaintext_modulus
    assert sum(values) == 499_500
    for pair in itertools.combinations(range(3), 2):
        total = sum(fused_slots(parties, ciphertext, pair)) % t
        assert min(total, t - total) > 2**20, pair  # not a small value at all
        assert min((total - sum(values)) % t, (sum(values) - total) % t) > 2**20, pair  # nor near the sum
    assert sum(fused_slots(parties, ciphertext)) % t == sum(values)


def test_decrypted_slots_show_the_total_and_nothing_else(ceremony):
    """Every slot the parties could fuse: uniform slots adding up to Σ values + offset, alike for two cohorts."""
    parties, joint = ceremony
    many = [5] * 3 + [0] * (SLOTS - 3) + [7] * 2  # two ciphertexts: per-slot sums 12, 12, 5, 0, …
    one = [29]  # one ciphertext, one value: the same total
    decrypted, raw = [], []
    for values, per_slot in ((many, [12, 12, 5]), (one, [29])):
        for _ in range(2):
            ciphertext = sum_encrypted(joint, encrypt_values(joint, values), 4)
            assert decrypt(parties, joint, ciphertext) == 33
            decrypted.append(fused_slots(parties, ciphertext))
            raw.append(per_slot + [0] * (SLOTS - len(per_slot)))
    assert_reveals_only_the_total(decrypted, raw, 33, THRESHOLD_PARAMS.plaintext_modulus, absent=[4, 29 + 4, 12 + 4])


def test_fuse_names_every_missing_party(ceremony):
    parties, joint = ceremony
    ciphertext = sum_encrypted(joint, encrypt_values(joint, [1, 2, 3]))
    shares = {party.party_id: party.partial_decrypt(ciphertext) for party in parties}
    with pytest.raises(ThresholdError) as caught:
        fuse(joint, {"custodian": shares["custodian"]})
    assert caught.value.code == "missing_share"
    assert caught.value.message == "no share from regulator, provider: all 3 parties of the key must decrypt"
    with pytest.raises(ThresholdError) as caught:
        fuse(joint, {})
    assert caught.value.code == "missing_share"
    with pytest.raises(ThresholdError) as caught:
        fuse(joint, {**shares, "bank": shares["custodian"]})
    assert caught.value.code == "unknown_party"
    assert fuse(joint, shares) == 6


def test_fuse_refuses_bad_and_mismatched_shares(ceremony):
    parties, joint = ceremony
    first = sum_encrypted(joint, encrypt_values(joint, [1]))
    second = sum_encrypted(joint, encrypt_values(joint, [2]))
    shares = {party.party_id: party.partial_decrypt(first) for party in parties}
    fields = codec.decode(shares["provider"])
    bad = {
        "undecodable": b"\x00garbage",
        "not a partial decryption": codec.encode({**fields, "partial": fields["partial"][:-100]}),
        "another party's share": shares["regulator"],
        "a foreign context": codec.encode({**fields, "partial": foreign_ciphertext()}),
    }
    for case, share in bad.items():
        with pytest.raises(ThresholdError) as caught:
            fuse(joint, {**shares, "provider": share})
        assert caught.value.code == "bad_share", case
        assert "provider" in caught.value.message
    with pytest.raises(ThresholdError) as caught:
        fuse(joint, {**shares, "provider": parties[2].partial_decrypt(second)})
    assert caught.value.code == "share_mismatch"
    assert caught.value.message == "the shares of provider decrypt another ciphertext than custodian's"


def test_each_party_decrypts_in_its_role(ceremony):
    parties, _ = ceremony
    assert [party.is_lead for party in parties] == [True, False, False]
    assert [party.index for party in parties] == [0, 1, 2]


def test_joint_key_round_trips_and_hashes(ceremony):
    _, joint = ceremony
    data = joint.to_bytes()
    again = JointKey.from_bytes(data)
    assert again == joint and again.to_bytes() == data
    assert joint_key_hash(again) == joint_key_hash(joint) and len(joint_key_hash(joint)) == 32
    assert sorted(codec.decode(data)) == ["params", "parties", "public_key"]
    assert codec.decode(data)["params"] == "bfv-threshold-v2"
    assert again.parties == PARTIES


def test_bad_joint_keys_are_refused(ceremony):
    _, joint = ceremony
    fields = codec.decode(joint.to_bytes())
    bad = (
        b"",
        codec.encode({**fields, "parties": ["custodian", "custodian"]}),
        codec.encode({**fields, "parties": ["Bad Id"]}),
        codec.encode({**fields, "eval_sum_keys": b"\x00" * 64}),  # the rotation design's field
    )
    for data in bad:
        with pytest.raises(ThresholdError) as caught:
            JointKey.from_bytes(data)
        assert caught.value.code == "bad_joint_key"
    with pytest.raises(HeError) as caught:
        JointKey.from_bytes(codec.encode({**fields, "params": "bfv-score-v2"}))
    assert caught.value.code == "he_unknown_params"
    broken = JointKey.from_bytes(codec.encode({**fields, "public_key": fields["public_key"][:-1]}))
    with pytest.raises(ThresholdError) as caught:
        encrypt_values(broken, [1])
    assert caught.value.code == "bad_joint_key"


def test_the_ceremony_passes_only_bytes_and_refuses_misuse(ceremony):
    lead, handoff = ThresholdParty.lead(THRESHOLD_PARAMS, "custodian")
    assert JointKey.from_bytes(handoff).parties == ("custodian",)
    with pytest.raises(ThresholdError) as caught:
        encrypt_values(JointKey.from_bytes(handoff), [1])  # a lone lead could decrypt alone
    assert caught.value.code == "bad_joint_key"
    with pytest.raises(ThresholdError) as caught:
        ThresholdParty.join(THRESHOLD_PARAMS, "custodian", handoff)
    assert caught.value.code == "bad_handoff"
    with pytest.raises(ThresholdError) as caught:
        ThresholdParty.join(THRESHOLD_PARAMS, "Regulator!", handoff)
    assert caught.value.code == "bad_handoff"
    with pytest.raises(ThresholdError) as caught:
        run_ceremony(["custodian"])
    assert caught.value.code == "bad_handoff"
    other, last = ThresholdParty.join(THRESHOLD_PARAMS, "regulator", handoff)
    joint = JointKey.from_bytes(last)
    assert decrypt([lead, other], joint, sum_encrypted(joint, encrypt_values(joint, [40, 2]))) == 42
    _, ours = ceremony
    with pytest.raises(HeError) as caught:  # a ciphertext under another joint key
        sum_encrypted(ours, encrypt_values(joint, [1]))
    assert caught.value.code == "he_bad_ciphertext"


def test_secret_shares_round_trip(ceremony):
    parties, joint = ceremony
    restored = [ThresholdParty.load(party.export_share()) for party in parties]
    assert [(p.party_id, p.index, p.is_lead) for p in restored] == [(p.party_id, p.index, p.is_lead) for p in parties]
    assert decrypt(restored, joint, sum_encrypted(joint, encrypt_values(joint, [9, 9]), 1)) == 19
    with pytest.raises(HeError) as caught:
        ThresholdParty.load(codec.encode({**codec.decode(parties[0].export_share()), "secret_key": b"\x01"}))
    assert caught.value.code == "he_bad_key"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0, V + 1], f"value 1 is not an integer in the proven range [0, {V}]"),
        ([-1], f"value 0 is not an integer in the proven range [0, {V}]"),
        ([1, 2, 2.5], f"value 2 is not an integer in the proven range [0, {V}]"),
        ([True], f"value 0 is not an integer in the proven range [0, {V}]"),
        ([1, 2**70], f"value 1 is not an integer in the proven range [0, {V}]"),
        (np.array([3, V + 5]), f"value 1 is not an integer in the proven range [0, {V}]"),
        ([], f"a sum takes 1 to {N} values, got 0"),
        (np.zeros(N + 1, dtype=np.int64), f"a sum takes 1 to {N} values, got {N + 1}"),
    ],
)
def test_values_outside_the_proven_range_are_refused(ceremony, values, message):
    _, joint = ceremony
    with pytest.raises(HeError) as caught:
        encrypt_values(joint, values)
    assert (caught.value.code, caught.value.message) == ("he_out_of_range", message)


def test_offsets_and_ciphertext_counts_outside_the_proven_range_are_refused(ceremony):
    _, joint = ceremony
    one = encrypt_values(joint, [1])
    for offset in (O + 1, -O - 1, 0.5):
        with pytest.raises(HeError) as caught:
            sum_encrypted(joint, one, offset)  # type: ignore[arg-type]
        assert caught.value.code == "he_out_of_range"
    for ciphertexts in ([], one * 9):
        with pytest.raises(HeError) as caught:
            sum_encrypted(joint, ciphertexts)
        assert caught.value.code == "he_out_of_range"
    with pytest.raises(HeError) as caught:
        sum_encrypted(joint, [foreign_ciphertext()])
    assert caught.value.code == "he_bad_ciphertext"
