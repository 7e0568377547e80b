"""privacy.he.scoring: exact private-model scores at the range extremes, refusals, masking, key handling."""

from __future__ import annotations

import hashlib
import random
import threading

import openfhe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from privacy.he import (
    PARAMETER_SETS,
    SCORING_PARAMS,
    HeError,
    ScoreBounds,
    ScoringKeys,
    model_hash,
    open_job,
    score_encrypted,
)
from privacy.he.params import context

from he_samples import assert_reveals_only_the_total, foreign_ciphertext, resident_bytes

SCORING_SETS = [params for params in PARAMETER_SETS.values() if isinstance(params.bounds, ScoreBounds)]
BOUNDS = SCORING_PARAMS.bounds
F, W, B = BOUNDS.feature_max, BOUNDS.weight_max, BOUNDS.bias_max


def expected(weights: list[int], bias: int, features: list[int]) -> int:
    return bias + sum(w * x for w, x in zip(weights, features))


def kat_cases(bounds: ScoreBounds, count: int) -> list[tuple[list[int], int, list[int]]]:
    """Deterministic (weights, bias, features): the extremes first, then mixed signs, zeros and seeded draws."""
    n_max, f, w, b = bounds.max_features, bounds.feature_max, bounds.weight_max, bounds.bias_max
    rng = random.Random(20261122)
    cases = [
        ([w] * n_max, b, [f] * n_max),  # the largest score
        ([-w] * n_max, -b, [f] * n_max),  # the smallest score
        ([w] * n_max, -b, [f] * n_max),
        ([-w] * n_max, b, [f] * n_max),
        ([w] * n_max, 0, [0] * n_max),  # zeros
        ([0] * n_max, 0, [f] * n_max),
        ([w if i % 2 else -w for i in range(n_max)], 0, [f] * n_max),  # mixed signs cancel
        ([w if i % 2 else -w for i in range(n_max)], 1, [f - (i % 2) for i in range(n_max)]),
        ([w], b, [f]),  # a single feature
        ([-w], -b, [f]),
        ([1] * 48, -1, [0] * 48),
        ([w] * 48, b, [f] * 48),  # the 24 + 24 layout at its maximum
    ]
    while len(cases) < count:
        n = rng.choice([1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 63])
        cases.append(([rng.randint(-w, w) for _ in range(n)], rng.randint(-b, b), [rng.randint(0, f) for _ in range(n)]))
    return cases


@pytest.mark.parametrize("params", SCORING_SETS, ids=[p.name for p in SCORING_SETS])
def test_known_answers_at_the_range_extremes(params, scoring_keys):
    keys = scoring_keys if params is SCORING_PARAMS else ScoringKeys.generate(params)
    cases = kat_cases(params.bounds, 30)
    wrong = []
    for index, (weights, bias, features) in enumerate(cases):
        score = keys.decrypt_score(score_encrypted(keys.encrypt_model(weights, bias), features))
        if score != expected(weights, bias, features):
            wrong.append(index)
    assert wrong == []
    assert max(abs(expected(*case)) for case in cases) == params.bounds.max_abs_result  # the extreme was tried


def test_one_job_scores_many_citizens(scoring_keys):
    bundle = scoring_keys.encrypt_model([3, -2, 7], -5)
    job = open_job(bundle)
    assert (job.features, job.params) == (3, SCORING_PARAMS)
    citizens = [[0, 0, 0], [F, F, F], [1, 2, 3], [F, 0, 1]]
    assert [scoring_keys.decrypt_score(job.score(x)) for x in citizens] == [expected([3, -2, 7], -5, x) for x in citizens]


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_any_in_range_model_scores_exactly(scoring_keys, data):
    n = data.draw(st.integers(1, BOUNDS.max_features))
    weights = data.draw(st.lists(st.integers(-W, W), min_size=n, max_size=n))
    features = data.draw(st.lists(st.integers(0, F), min_size=n, max_size=n))
    bias = data.draw(st.integers(-B, B))
    assert scoring_keys.decrypt_score(score_encrypted(scoring_keys.encrypt_model(weights, bias), features)) == expected(weights, bias, features)


def test_model_hash_is_sha256_of_the_bundle(scoring_keys):
    bundle = scoring_keys.encrypt_model([1], 0)
    assert model_hash(bundle) == hashlib.sha256(bundle).digest()
    assert model_hash(scoring_keys.encrypt_model([1], 0)) != model_hash(bundle)  # fresh encryption each time


def test_bundle_is_the_documented_canonical_map(scoring_keys):
    fields = codec.decode(scoring_keys.encrypt_model([5, 6], 7))
    assert sorted(fields) == ["features", "params", "public_key", "weights"]
    assert fields["params"] == "bfv-score-v2" and fields["features"] == 2
    assert all(type(fields[name]) is bytes for name in ("public_key", "weights"))


@pytest.mark.parametrize(
    ("features", "index"),
    [([F + 1, 0, 0], 0), ([0, -1, 0], 1), ([0, 0, 2**64], 2), ([0, True, 0], 1), ([0, 0, 1.0], 2), ([0, "1", 0], 1)],
)
def test_features_outside_the_proven_range_are_refused_by_index(scoring_keys, features, index):
    bundle = scoring_keys.encrypt_model([1, 1, 1], 0)
    with pytest.raises(HeError) as caught:
        score_encrypted(bundle, features)
    assert caught.value.code == "he_out_of_range"
    assert caught.value.message == f"feature {index} is outside the proven range [0, {F}]"


def test_feature_count_must_match_the_model(scoring_keys):
    bundle = scoring_keys.encrypt_model([1, 1, 1], 0)
    for features in ([1, 1], [1, 1, 1, 1]):
        with pytest.raises(HeError) as caught:
            score_encrypted(bundle, features)
        assert caught.value.code == "he_shape_mismatch"
        assert caught.value.message == f"the model takes 3 features, got {len(features)}"


@pytest.mark.parametrize(
    ("weights", "bias", "message"),
    [
        ([W + 1], 0, f"weight 0 is outside the proven range [{-W}, {W}]"),
        ([0, -W - 1], 0, f"weight 1 is outside the proven range [{-W}, {W}]"),
        ([1], B + 1, f"the bias is outside the proven range [{-B}, {B}]"),
        ([], 0, "the number of weights is outside the proven range [1, 63]"),
        ([1] * 64, 0, "the number of weights is outside the proven range [1, 63]"),
        ([1], False, f"the bias is outside the proven range [{-B}, {B}]"),
    ],
)
def test_models_outside_the_proven_range_are_refused(scoring_keys, weights, bias, message):
    with pytest.raises(HeError) as caught:
        scoring_keys.encrypt_model(weights, bias)
    assert (caught.value.code, caught.value.message) == ("he_out_of_range", message)


def with_fields(bundle: bytes, **changes: object) -> bytes:
    return codec.encode({**codec.decode(bundle), **changes})


def test_unknown_parameter_sets_are_refused(scoring_keys):
    bundle = scoring_keys.encrypt_model([1], 0)
    for name in ("bfv-score-v1", "bfv-threshold-v2", "BFV-SCORE-V2"):
        with pytest.raises(HeError) as caught:
            score_encrypted(with_fields(bundle, params=name), [1])
        assert caught.value.code == "he_unknown_params"


def test_malformed_bundles_are_refused(scoring_keys):
    other = ScoringKeys.generate()
    bundle = scoring_keys.encrypt_model([1, 2], 3)
    fields = codec.decode(bundle)
    bad = {
        "not CBOR": b"\xff" + bundle,
        "missing field": codec.encode({k: v for k, v in fields.items() if k != "public_key"}),
        "rotation keys of the rotation design": with_fields(bundle, eval_keys=b"\x00" * 64),
        "extra field": with_fields(bundle, note="x"),
        "too many features": with_fields(bundle, features=64),
        "no features": with_fields(bundle, features=0),
        "weights under another key": with_fields(bundle, weights=codec.decode(other.encrypt_model([1, 2], 3))["weights"]),
        "weights from another context": with_fields(bundle, weights=foreign_ciphertext()),
        "truncated weights": with_fields(bundle, weights=fields["weights"][:-1000]),
        "public key as weights": with_fields(bundle, weights=fields["public_key"]),
        "public key cut short": with_fields(bundle, public_key=fields["public_key"][: len(fields["public_key"]) // 2]),
        "weights as public key": with_fields(bundle, public_key=fields["weights"]),
    }
    for case, data in bad.items():
        with pytest.raises(HeError) as caught:
            score_encrypted(data, [1, 1])
        assert caught.value.code == "he_bad_bundle", case


def test_decrypted_slots_show_the_score_and_nothing_else(scoring_keys):
    """The consumer's whole decrypted plaintext: uniform slots that add up to the score, the same for two models."""
    cc = context(SCORING_PARAMS).cc
    secret = scoring_keys._secret_key  # the consumer's own view of every slot
    weights, features, bias = [W, -W, 3, 4], [F, 5, 6, 7], 9
    score = expected(weights, bias, features)
    other = ([1], score - 7, [7])  # one product and another bias: the same score, other slots used
    inputs = [(weights, bias, features), other]
    decrypted, raw = [], []
    for model_weights, model_bias, model_features in inputs:
        job = open_job(scoring_keys.encrypt_model(model_weights, model_bias))
        products = [w * x for w, x in zip(model_weights, model_features)] + [model_bias]
        for _ in range(2):
            answer = job.score(model_features)
            assert scoring_keys.decrypt_score(answer) == score
            plaintext = cc.Decrypt(secret, context(SCORING_PARAMS).load("ciphertext", answer, what="s", code="x"))
            decrypted.append(plaintext.GetPackedValue())
            raw.append(products + [0] * (SCORING_PARAMS.ring_dim - len(products)))
    window_sums = [sum(raw[0][i:j]) for i in range(5) for j in range(i + 1, 6)]  # what rotations used to leave in slots
    assert_reveals_only_the_total(decrypted, raw, score, SCORING_PARAMS.plaintext_modulus, absent=window_sums)


def test_secret_export_round_trips(scoring_keys):
    loaded = ScoringKeys.load(scoring_keys.export_secret())
    bundle = scoring_keys.encrypt_model([2, 3], 1)
    assert loaded.decrypt_score(score_encrypted(bundle, [10, 100])) == 321
    assert scoring_keys.decrypt_score(score_encrypted(loaded.encrypt_model([-4], 0), [25])) == -100
    assert codec.decode(scoring_keys.export_secret())["params"] == "bfv-score-v2"


def test_bad_exported_keys_are_refused(scoring_keys):
    exported = codec.decode(scoring_keys.export_secret())
    other = codec.decode(ScoringKeys.generate().export_secret())
    for data in (b"", codec.encode({**exported, "secret_key": exported["public_key"]}), codec.encode({**exported, "public_key": other["public_key"]})):
        with pytest.raises(HeError) as caught:
            ScoringKeys.load(data)
        assert caught.value.code == "he_bad_key"
    with pytest.raises(HeError) as caught:
        ScoringKeys.load(codec.encode({**exported, "params": "bfv-score-v1"}))
    assert caught.value.code == "he_unknown_params"


def test_a_score_for_another_key_is_refused(scoring_keys):
    other = ScoringKeys.generate()
    answer = score_encrypted(other.encrypt_model([1], 0), [1])
    with pytest.raises(HeError) as caught:
        scoring_keys.decrypt_score(answer)
    assert caught.value.code == "he_bad_ciphertext"


def test_jobs_leave_no_keys_or_contexts_behind(scoring_keys):
    bundle = scoring_keys.encrypt_model([1] * 48, 0)
    score_encrypted(bundle, [1] * 48)
    contexts = len(openfhe.GetAllContexts())
    before = resident_bytes()
    for _ in range(50):  # each job deserializes 0.5 MB of the consumer's key and weights
        score_encrypted(bundle, [1] * 48)
    assert openfhe.CryptoContext.GetAllEvalAutomorphismKeys() == {}
    assert openfhe.CryptoContext.GetAllEvalMultKeys() == {}
    assert len(openfhe.GetAllContexts()) == contexts
    assert resident_bytes() - before < 12 * 2**20  # a leak of the objects would be ~26 MB


def test_jobs_in_two_threads_stay_apart(scoring_keys):
    consumers = [scoring_keys, ScoringKeys.generate()]
    models = [([5, -7, 11], 13), ([W, W], -B)]
    citizens = [[1, 2, 3], [F, 4, 0], [0, 0, 9]]
    results: dict[int, list[int]] = {}

    def work(which: int) -> None:
        keys, (weights, bias) = consumers[which], models[which]
        bundle = keys.encrypt_model(weights, bias)
        results[which] = [keys.decrypt_score(score_encrypted(bundle, x[: len(weights)])) for x in citizens]

    threads = [threading.Thread(target=work, args=(which,)) for which in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for which, (weights, bias) in enumerate(models):
        assert results[which] == [expected(weights, bias, x[: len(weights)]) for x in citizens]
