"""privacy.he.params: the shipped parameter sets, the contexts built from them, checked loading, masks."""

from __future__ import annotations

import math

import numpy as np
import openfhe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import privacy.he
from privacy.he import PARAMETER_SETS, SCORING_PARAMS, THRESHOLD_PARAMS, HeError, ScoreBounds, SumBounds
from privacy.he.params import context, parameter_set

from he_samples import CHI2_15_CRITICAL, chi_square, foreign_ciphertext, is_prime


def test_public_api_is_pinned():
    assert sorted(privacy.he.__all__) == [
        "ENGINE",
        "HeError",
        "JointKey",
        "PARAMETER_SETS",
        "ParameterSet",
        "SCORING_PARAMS",
        "ScoreBounds",
        "ScoringJob",
        "ScoringKeys",
        "SumBounds",
        "THRESHOLD_PARAMS",
        "ThresholdError",
        "ThresholdParty",
        "encrypt_values",
        "fuse",
        "joint_key_hash",
        "model_hash",
        "open_job",
        "run_ceremony",
        "score_encrypted",
        "sum_encrypted",
    ]


def test_registry_names_each_set_once_and_every_set_has_a_kat_kind():
    assert set(PARAMETER_SETS) == {"bfv-score-v2", "bfv-threshold-v2"}
    assert all(name == params.name for name, params in PARAMETER_SETS.items())
    # the KATs in test_he_scoring / test_he_threshold are parametrized over the sets of their kind
    assert all(isinstance(params.bounds, (ScoreBounds, SumBounds)) for params in PARAMETER_SETS.values())


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_plaintext_modulus_batches_and_bounds_leave_a_margin(params):
    t = params.plaintext_modulus
    assert is_prime(t)
    assert t % (2 * params.ring_dim) == 1  # packed slots need t ≡ 1 mod 2N
    assert t.bit_length() <= 50  # above 50 bits this wheel decrypts wrongly (docs/HE.md)
    assert params.bounds.max_abs_result * 8 <= t // 2
    assert params.margin >= 8
    assert params.security_level == "HEStd_128_classic"
    assert params.batch_size == params.ring_dim
    assert params.ring_dim * t < 2**63  # HeContext.mask adds N − 1 draws below t in 64-bit integers


def test_score_bounds_are_the_documented_ones():
    bounds = SCORING_PARAMS.bounds
    assert bounds == ScoreBounds(max_features=63, feature_max=2**20, weight_max=2**12, bias_max=2**38)
    assert bounds.max_abs_result == 63 * 2**32 + 2**38
    assert bounds.used_slots == 64 <= SCORING_PARAMS.ring_dim
    assert (SCORING_PARAMS.multiplicative_depth, SCORING_PARAMS.modulus_bits) == (1, 120)


def test_sum_bounds_are_the_documented_ones():
    assert THRESHOLD_PARAMS.bounds == SumBounds(max_values=2**17, value_max=2**26, offset_max=2**43)
    assert THRESHOLD_PARAMS.max_parties == 8
    assert (THRESHOLD_PARAMS.multiplicative_depth, THRESHOLD_PARAMS.modulus_bits) == (0, 240)


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_context_is_built_from_the_set_and_cached(params):
    ctx = context(params)
    assert context(params) is ctx
    assert ctx.cc.GetRingDimension() == params.ring_dim
    assert ctx.cc.GetPlaintextModulus() == params.plaintext_modulus
    assert round(math.log2(ctx.cc.GetModulus())) == params.modulus_bits


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_contexts_make_no_evaluation_keys(params):
    ctx = context(params)
    ctx.cc.KeyGen()
    assert openfhe.CryptoContext.GetAllEvalAutomorphismKeys() == {}
    assert openfhe.CryptoContext.GetAllEvalMultKeys() == {}


def test_unknown_and_misused_parameter_sets_are_refused():
    with pytest.raises(HeError) as caught:
        parameter_set("bfv-score-v0", ScoreBounds)
    assert caught.value.code == "he_unknown_params"
    assert "bfv-score-v0" in caught.value.message
    with pytest.raises(HeError) as caught:
        parameter_set("bfv-threshold-v2", ScoreBounds)
    assert caught.value.code == "he_unknown_params"
    with pytest.raises(HeError) as caught:
        parameter_set(7, SumBounds)
    assert caught.value.code == "he_unknown_params"


def test_foreign_objects_are_refused_before_they_reach_openfhe():
    ctx = context(SCORING_PARAMS)
    foreign = foreign_ciphertext()
    contexts = len(openfhe.GetAllContexts())
    with pytest.raises(HeError) as caught:
        ctx.load("ciphertext", foreign, what="the test ciphertext", code="he_bad_ciphertext")
    assert caught.value.code == "he_bad_ciphertext"
    assert "bfv-score-v2" in caught.value.message
    assert len(openfhe.GetAllContexts()) == contexts  # nothing was deserialized, no context registered


def test_loading_checks_kind_size_and_bytes():
    ctx = context(SCORING_PARAMS)
    keys = ctx.cc.KeyGen()
    good = openfhe.Serialize(ctx.cc.Encrypt(keys.publicKey, ctx.packed([5])), openfhe.BINARY)
    assert ctx.load("ciphertext", good, what="c", code="x").GetKeyTag() == keys.publicKey.GetKeyTag()
    public = openfhe.Serialize(keys.publicKey, openfhe.BINARY)
    for bad in (good[:-8], good + bytes(5000), public, bytearray(good), "text", b""):
        with pytest.raises(HeError) as caught:
            ctx.load("ciphertext", bad, what="c", code="he_bad_ciphertext")
        assert caught.value.code == "he_bad_ciphertext"
    corrupted = good[:2000] + bytes(len(good) - 2000)  # right prefix and size, zeroed body
    try:
        ctx.load("ciphertext", corrupted, what="c", code="he_bad_ciphertext")
    except HeError as exc:
        assert exc.code == "he_bad_ciphertext"


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_mask_sums_to_its_total_and_is_uniform_in_every_slot(params):
    ctx = context(params)
    t = params.plaintext_modulus
    first = np.array(ctx.mask(-12345).GetPackedValue(), dtype=object)
    second = np.array(ctx.mask(-12345).GetPackedValue(), dtype=object)
    assert len(first) == params.ring_dim
    assert sum(first) % t == sum(second) % t == -12345 % t
    assert ctx.total(ctx.mask(-12345)) == -12345
    assert all(-t // 2 <= value <= t // 2 for value in first)
    assert sum(a == b for a, b in zip(first, second)) == 0
    residues = np.array([int(value) % t for value in first], dtype=np.float64)
    assert chi_square(np.floor(residues / t * 16)) < CHI2_15_CRITICAL  # high bits uniform
    assert chi_square(np.array([int(value) % t % 16 for value in first])) < CHI2_15_CRITICAL  # low bits uniform
    assert first[-1] != second[-1] and -t // 2 <= first[-1] <= t // 2  # the slot that makes up the sum is no different


@settings(max_examples=20, deadline=None)
@given(total=st.integers(-(2**62), 2**62))
def test_mask_total_is_any_residue(total):
    ctx = context(SCORING_PARAMS)
    t = SCORING_PARAMS.plaintext_modulus
    centred = total % t - t if total % t > t // 2 else total % t
    assert ctx.total(ctx.mask(total)) == centred
