"""privacy.dp: counts, sums and means released through OpenDP, within the ε asked for.

Noise comes from OpenDP's own CSPRNG and cannot be seeded, so the statistical checks use bounds
(five standard errors, a factor of two on the spread) that a correct mechanism misses with a
probability far below one in a million.
"""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.dp import DpError, NoisyPart, noisy_parts

DRAWS = 200  # each release re-runs OpenDP's scale search (~15 ms): enough draws for the checks, a few seconds in all


def discrete_laplace_sd(scale: float) -> float:
    """Standard deviation of the discrete Laplace distribution P(k) ∝ exp(-|k| / scale)."""
    q = math.exp(-1 / scale)
    return math.sqrt(2 * q / (1 - q) ** 2)


# --- what is released -----------------------------------------------------------------------


def test_a_count_is_one_noisy_part():
    (part,) = noisy_parts("count", [5, 7, 9], 0, 10, 1000)
    assert isinstance(part, NoisyPart)
    assert (part.name, part.exact) == ("count", 3)
    assert type(part.noisy) is int
    assert 0 < part.epsilon <= 1.0


def test_a_sum_clamps_each_citizen_to_the_bounds():
    (part,) = noisy_parts("sum", [0, 5, 50, 200, -7], 10, 100, 1000)
    assert (part.name, part.exact) == ("sum", 10 + 10 + 50 + 100 + 10)
    assert type(part.noisy) is int


def test_a_mean_is_a_noisy_sum_and_a_noisy_count_at_half_the_epsilon_each():
    total, count = noisy_parts("mean", [1, 2, 3, 40], 0, 10, 1000)
    assert (total.name, total.exact, count.name, count.exact) == ("sum", 16, "count", 4)
    assert 0 < total.epsilon <= 0.5 and 0 < count.epsilon <= 0.5
    assert total.epsilon + count.epsilon <= 1.0
    # half the ε doubles the scale: sensitivity 10 for the sum, 1 for the count
    assert total.scale == pytest.approx(20, rel=0.01) and count.scale == pytest.approx(2, rel=0.01)


def test_an_empty_cohort_counts_zero():
    (part,) = noisy_parts("count", [], 0, 10, 1000)
    assert part.exact == 0


def test_a_sum_bounded_by_zero_reveals_nothing_and_gets_no_noise():
    (part,) = noisy_parts("sum", [3, 4, 5], 0, 0, 1000)
    assert part == NoisyPart("sum", 0, 0, 0.0, 0.0)
    total, count = noisy_parts("mean", [3, 4, 5], 0, 0, 1000)
    assert (total.noisy, total.epsilon) == (0, 0.0)
    assert count.epsilon > 0  # the count still is noised


@pytest.mark.parametrize(
    ("statistic", "lower", "upper", "epsilon_milli"),
    [
        ("count", 5, 4, 1000),  # bounds inverted
        ("sum", -1, 4, 1000),  # a negative lower bound
        ("sum", 0, 4, 0),
        ("mean", 0, 4, -5),
        ("median", 0, 4, 1000),
    ],
)
def test_requests_the_mechanism_cannot_serve(statistic, lower, upper, epsilon_milli):
    with pytest.raises(DpError) as raised:
        noisy_parts(statistic, [1, 2, 3], lower, upper, epsilon_milli)
    assert raised.value.code == "invalid_argument"


# --- the privacy map and the scale ----------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    st.sampled_from(["count", "sum", "mean"]),
    st.integers(1, 100_000),
    st.integers(0, 2**24).flatmap(lambda upper: st.tuples(st.integers(0, upper), st.just(upper))),
)
def test_the_privacy_map_never_exceeds_the_epsilon_asked_for(statistic, epsilon_milli, bounds):
    lower, upper = bounds
    parts = noisy_parts(statistic, [lower, upper, (lower + upper) // 2], lower, upper, epsilon_milli)
    epsilon = epsilon_milli / 1000
    share = epsilon / len(parts)
    assert sum(part.epsilon for part in parts) <= epsilon
    for part in parts:
        assert part.epsilon <= share
        sensitivity = 1 if part.name == "count" else upper
        if sensitivity == 0:
            assert (part.epsilon, part.scale, part.noisy) == (0.0, 0.0, part.exact)
        else:
            # the scale OpenDP finds is the smallest that fits: sensitivity / ε, give or take its search's tolerance
            assert sensitivity / share <= part.scale * (1 + 1e-9)
            assert part.scale <= sensitivity / share * 1.01
            assert part.epsilon >= share * 0.99


# Values and sums past 32 bits must not saturate (OpenDP's T=int is i32): in fen, a thousand
# ordinary annual incomes already sum past 2**31 fen (21.5 million yuan).
@pytest.mark.parametrize(
    ("values", "upper"),
    [([24_000_000] * 1000, 30_000_000), ([2**31, 2**40], 2**40)],
    ids=["sum-past-32-bits", "values-past-32-bits"],
)
def test_sums_and_values_past_32_bits(values, upper):
    (part,) = noisy_parts("sum", values, 0, upper, 1000)
    assert part.exact == sum(values)
    # noised around the exact sum (a saturated i32 sum would be hundreds of scales below it)
    assert abs(part.noisy - part.exact) < 50 * part.scale


# --- the noise, statistically ---------------------------------------------------------------


def test_count_noise_is_centred_with_a_spread_of_the_scale():
    values = list(range(50))
    draws = [noisy_parts("count", values, 0, 100, 100)[0] for _ in range(DRAWS)]  # ε = 0.1: scale 10
    scale = draws[0].scale
    assert scale == pytest.approx(10, rel=0.01)
    errors = [part.noisy - part.exact for part in draws]
    sd = discrete_laplace_sd(scale)
    assert abs(statistics.fmean(errors)) <= 5 * sd / math.sqrt(DRAWS)
    assert 0.5 * sd <= statistics.stdev(errors) <= 2 * sd
    assert len(set(errors)) > 10  # the noise is not a constant offset


def test_sum_noise_scales_with_the_upper_bound():
    """Sensitivity is the upper bound: ten times the bound, ten times the spread."""
    values = [3, 9, 27, 81]
    narrow = [noisy_parts("sum", values, 0, 100, 1000)[0] for _ in range(DRAWS // 2)]
    wide = [noisy_parts("sum", values, 0, 1000, 1000)[0] for _ in range(DRAWS // 2)]
    for draws, scale in ((narrow, 100), (wide, 1000)):
        assert draws[0].scale == pytest.approx(scale, rel=0.01)
        errors = [part.noisy - part.exact for part in draws]
        sd = discrete_laplace_sd(scale)
        assert abs(statistics.fmean(errors)) <= 5 * sd / math.sqrt(len(errors))
        assert 0.5 * sd <= statistics.stdev(errors) <= 2 * sd
