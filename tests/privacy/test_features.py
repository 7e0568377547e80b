"""privacy.features: the integers a computation reads, from an input layout and opened records."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.features import FeatureError, SourceRecord, build_vectors, flatten

CST = timezone(timedelta(hours=8))


def cst_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=CST).timestamp() * 1000)


def one(encode: str, field: str, value, *, as_of_ms: int = cst_ms(2025, 6, 15, 12)) -> list[int]:
    """The values of a one-item layout over a record whose ``field`` holds ``value``."""
    record = SourceRecord("t.x", as_of_ms, {field: value})
    (vector,) = build_vectors([[{"type": "t.x", "field": field, "encode": encode}]], {"t.x": record})
    return vector


def series(*points: tuple[str, int]) -> list[dict]:
    return [{"month": month, "amount": amount} for month, amount in points]


# --- known answers per encoding -------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(7, [7]), (0, [0]), (-3, [-3]), (12_345_678, [12_345_678]), (True, [1]), (False, [0])])
def test_value_is_the_integer_amount_or_boolean(value, expected):
    assert one("value", "f", value) == expected


@pytest.mark.parametrize(("fen", "yuan"), [(0, 0), (99, 0), (100, 1), (12_345, 123), (1_000_000_00, 1_000_000)])
def test_yuan_drops_the_fen(fen, yuan):
    assert one("yuan", "annual", fen) == [yuan]


@pytest.mark.parametrize(("value", "expected"), [("insulin", 1), ("Insulin", 0), ("insulin ", 0), ("", 0), ("metformin", 0)])
def test_is_compares_the_whole_text_exactly(value, expected):
    assert one("is:insulin", "drug", value) == [expected]


def test_is_takes_everything_after_the_first_colon():
    assert one("is:a:b", "f", "a:b") == [1]
    assert one("is:Jinan Steel", "employer", "Jinan Steel") == [1]


@pytest.mark.parametrize(
    ("born", "as_of", "years"),
    [
        ("1990-06-15", cst_ms(2025, 6, 14, 23, 59), 34),  # the day before the birthday
        ("1990-06-15", cst_ms(2025, 6, 15), 35),  # the birthday, at midnight in Jinan
        ("1990-06-16", cst_ms(2025, 6, 15), 34),
        ("2000-02-29", cst_ms(2025, 2, 28), 24),  # a leap-day birthday comes on 1 March
        ("2000-02-29", cst_ms(2025, 3, 1), 25),
        ("2000-02-29", cst_ms(2024, 2, 29), 24),
        ("2025-06-15", cst_ms(2025, 6, 15), 0),
        ("2030-01-01", cst_ms(2025, 6, 15), 0),  # a date after as_of counts as no years, never negative
    ],
)
def test_years_to_as_of(born, as_of, years):
    assert one("years_to_as_of", "born", born, as_of_ms=as_of) == [years]


def test_as_of_is_read_in_china_standard_time():
    """16:00 UTC on 14 June is already 15 June in Jinan: the birthday has come."""
    utc_afternoon = int(datetime(2025, 6, 14, 16, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert one("years_to_as_of", "born", "1990-06-15", as_of_ms=utc_afternoon) == [35]
    assert one("years_to_as_of", "born", "1990-06-15", as_of_ms=utc_afternoon - 1) == [34]
    # and the month of a series likewise: 31 May 16:00 UTC is June in Jinan
    may_end = int(datetime(2025, 5, 31, 16, 0, tzinfo=timezone.utc).timestamp() * 1000)
    monthly = series(("2025-05", 500), ("2025-06", 600))
    assert one("months:1", "monthly", monthly, as_of_ms=may_end) == [6]
    assert one("months:1", "monthly", monthly, as_of_ms=may_end - 1) == [5]


def test_months_ends_with_the_latest_month_up_to_as_of_oldest_first_in_yuan():
    monthly = series(("2025-03", 30_099), ("2025-01", 10_000), ("2025-04", 40_000), ("2025-07", 70_000), ("2024-12", 12_000))
    as_of = cst_ms(2025, 6, 15)  # July is after as_of; the latest month up to June is April
    assert one("months:3", "monthly", monthly, as_of_ms=as_of) == [0, 300, 400]  # February missing, March 300.99 → 300
    assert one("months:6", "monthly", monthly, as_of_ms=as_of) == [0, 120, 100, 0, 300, 400]  # Nov 2024 … Apr 2025
    assert one("months:1", "monthly", monthly, as_of_ms=cst_ms(2025, 8, 1)) == [700]


def test_months_with_nothing_up_to_as_of_is_an_error():
    with pytest.raises(FeatureError) as raised:
        one("months:3", "monthly", series(("2025-07", 123_456)), as_of_ms=cst_ms(2025, 6, 30))
    assert raised.value.code == "missing_input"
    assert "123456" not in str(raised.value)  # errors never carry record values


# --- layouts --------------------------------------------------------------------------------


def test_a_layout_concatenates_items_per_vector_across_types():
    records = {
        "tax.profile": SourceRecord("tax.profile", cst_ms(2025, 6, 15), {"annual": 24_000_000, "retired": False, "monthly": series(("2025-05", 200_000), ("2025-06", 210_000))}),
        "civil.death_registration": SourceRecord("civil.death_registration", cst_ms(2025, 1, 1), {"natural": True}),
    }
    layout = [
        [{"type": "tax.profile", "field": "annual", "encode": "yuan"}, {"type": "civil.death_registration", "field": "natural", "encode": "value"}],
        [{"type": "tax.profile", "field": "monthly", "encode": "months:2"}, {"type": "tax.profile", "field": "retired", "encode": "value"}],
    ]
    vectors = build_vectors(layout, records)
    assert vectors == [[240_000, 1], [2_000, 2_100, 0]]
    assert flatten(vectors) == [240_000, 1, 2_000, 2_100, 0]
    assert flatten([]) == []


def test_a_missing_record_or_field_is_a_feature_error_naming_the_position():
    record = SourceRecord("t.x", cst_ms(2025, 6, 15), {"a": 1})
    with pytest.raises(FeatureError, match=r"inputs\[1\]\[0\].*'t\.y'"):
        build_vectors([[{"type": "t.x", "field": "a", "encode": "value"}], [{"type": "t.y", "field": "a", "encode": "value"}]], {"t.x": record})
    with pytest.raises(FeatureError, match=r"inputs\[0\]\[1\].*'b'") as raised:
        build_vectors([[{"type": "t.x", "field": "a", "encode": "value"}, {"type": "t.x", "field": "b", "encode": "value"}]], {"t.x": record})
    assert raised.value.code == "missing_input"


def test_an_unknown_encoding_is_a_feature_error():
    with pytest.raises(FeatureError, match="unknown encoding"):
        one("cents", "f", 5)


def test_a_source_record_is_immutable():
    record = SourceRecord("t.x", 0, {})
    with pytest.raises(AttributeError):
        record.as_of_ms = 1  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------------

_MONTHS = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2000, 2030), st.integers(1, 12))


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 240),
    st.dictionaries(_MONTHS, st.integers(0, 10**12), min_size=1, max_size=30),
    st.builds(cst_ms, st.integers(2000, 2031), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23)),
)
def test_months_n_always_yields_n_consecutive_months_ending_at_the_latest(n, amounts, as_of):
    as_of_month = datetime.fromtimestamp(as_of / 1000, CST).strftime("%Y-%m")
    eligible = sorted(month for month in amounts if month <= as_of_month)
    monthly = series(*amounts.items())
    if not eligible:
        with pytest.raises(FeatureError):
            one(f"months:{n}", "monthly", monthly, as_of_ms=as_of)
        return
    values = one(f"months:{n}", "monthly", monthly, as_of_ms=as_of)
    assert len(values) == n
    latest = eligible[-1]
    assert values[-1] == amounts[latest] // 100
    # walking back from the latest month, each value is that month's amount in yuan, or 0
    year, month = int(latest[:4]), int(latest[5:])
    for value in reversed(values):
        assert value == amounts.get(f"{year:04d}-{month:02d}", 0) // 100
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=5), max_size=5))
def test_flatten_keeps_every_value_in_order(vectors):
    flat = flatten(vectors)
    assert len(flat) == sum(len(v) for v in vectors)
    assert flat == [value for vector in vectors for value in vector]
