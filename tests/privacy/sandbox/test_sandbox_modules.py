"""The shipped example modules against their plain-Python twins."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.sandbox import (
    SHIPPED_MODULES,
    SandboxError,
    check_module,
    encode_input,
    load_module,
    run_module,
)
from privacy.sandbox.abi import I64_MAX, I64_MIN
from sandbox_samples import insurance_eligibility_twin, loan_score_twin

any_i64 = st.integers(min_value=I64_MIN, max_value=I64_MAX)
yuan = st.integers(min_value=-1000, max_value=150_000) | any_i64
months = st.lists(st.one_of(st.just(0), yuan), min_size=24, max_size=24)
licence = st.tuples(
    st.integers(min_value=-3, max_value=40) | any_i64,
    st.sampled_from([0, 99_999, 100_000, 999_999, 1_000_000]) | st.integers(min_value=-1, max_value=10**7) | any_i64,
    st.sampled_from([0, 1, 2, -1]) | any_i64,
)
claims = st.tuples(
    st.integers(min_value=2000, max_value=2030),
    st.integers(min_value=-2, max_value=20) | any_i64,
    st.integers(min_value=-10, max_value=60_000) | any_i64,
    st.integers(min_value=-10, max_value=60_000) | any_i64,
)


def loan_score(contributions: list[int], taxes: list[int], facts: tuple[int, int, int]) -> int:
    result = run_module(load_module("loan_score"), encode_input([contributions, taxes, list(facts)]), "int")
    return result.value


def eligible(facts: tuple[int, int, int, int]) -> bool | int:
    return run_module(load_module("insurance_eligibility"), encode_input([list(facts)]), "bool").value


def test_shipped_modules_pass_the_checks() -> None:
    assert dict(SHIPPED_MODULES) == {"loan_score": "int", "insurance_eligibility": "bool"}
    for name in SHIPPED_MODULES:
        wasm = load_module(name)
        assert check_module(wasm).module_hash == hashlib.sha256(wasm).digest()


def test_unknown_module_name() -> None:
    with pytest.raises(SandboxError) as caught:
        load_module("../../etc/passwd")
    assert caught.value.code == "bad_module"
    assert "shipped: insurance_eligibility, loan_score" in caught.value.message


def test_loan_score_known_answers() -> None:
    # 300 + 24*10 + min(1000, 5000)//50 + 24*5 + 5*6 + 30 + 40
    assert loan_score([1000] * 24, [500] * 24, (5, 2_000_000, 1)) == 780
    assert loan_score([0] * 24, [0] * 24, (0, 0, 0)) == 300  # 200 before the clamp
    assert loan_score([100_000] * 24, [1] * 24, (30, 10**9, 1)) == 850  # 890 before the clamp
    assert loan_score([6000] * 12 + [0] * 12, [0] * 24, (2, 150_000, 1)) == 300 + 120 + 60 + 12 + 15 + 40


@settings(max_examples=200, deadline=None)
@given(months, months, licence)
def test_loan_score_matches_its_twin(contributions: list[int], taxes: list[int], facts: tuple[int, int, int]) -> None:
    expected = loan_score_twin(contributions, taxes, facts)
    assert 300 <= expected <= 850
    assert loan_score(contributions, taxes, facts) == expected


def test_insurance_eligibility_known_answers() -> None:
    assert eligible((2024, 3, 10_000, 8_000)) is True
    assert eligible((2024, 12, 50_000, 30_000)) is True  # every bound inclusive
    assert eligible((2024, 13, 10_000, 8_000)) is False  # too many visits
    assert eligible((2024, 3, 50_001, 40_000)) is False  # too costly
    assert eligible((2024, 3, 30_000, 9_999)) is False  # 20,001 out of pocket
    assert eligible((2024, 3, 10_000, 10_001)) is False  # reimbursed more than it cost
    assert eligible((2024, 3, I64_MAX, I64_MIN)) is False  # the subtraction wraps; still false


@settings(max_examples=200, deadline=None)
@given(claims)
def test_insurance_eligibility_matches_its_twin(facts: tuple[int, int, int, int]) -> None:
    assert eligible(facts) is insurance_eligibility_twin(facts)


@pytest.mark.parametrize(
    ("name", "vectors"),
    [
        ("loan_score", [[0] * 24, [0] * 24]),
        ("loan_score", [[0] * 23, [0] * 24, [0, 0, 0]]),
        ("loan_score", [[0] * 24, [0] * 24, [0, 0, 0, 0]]),
        ("insurance_eligibility", [[2024, 1, 2]]),
        ("insurance_eligibility", [[2024, 1, 2, 3], []]),
    ],
)
def test_modules_trap_on_the_wrong_shape(name: str, vectors: list[list[int]]) -> None:
    with pytest.raises(SandboxError) as caught:
        run_module(load_module(name), encode_input(vectors), SHIPPED_MODULES[name])
    assert caught.value.code == "trap"
    assert caught.value.message == "the module trapped: wasm `unreachable` instruction executed"


def test_shipped_module_fuel_is_deterministic() -> None:
    data = encode_input([[1200] * 24, [300] * 24, [4, 500_000, 1]])
    runs = [run_module(load_module("loan_score"), data, "int") for _ in range(3)]
    assert len({(run.value, run.fuel_used, run.output_hash) for run in runs}) == 1
