"""Turning consented records into the integers a computation reads.

A sandbox module and a homomorphic scoring job both read integer vectors, laid
out by an *input layout* pinned on the ledger (``ledger.rules.modules``): a list
of vectors, each the concatenation of items ``{type, field, encode}``. This
module is the one implementation of those encodings, so the custodian that runs
a job and the regulator that re-runs it build the same bytes from the same
record versions.

Encodings (the field kinds they apply to are checked on chain when the layout is pinned):

``value``           integer, amount (fen) or boolean (0/1): the value itself
``yuan``            amount: whole yuan, ``fen // 100``
``is:<text>``       text: 1 when equal to ``<text>``, else 0
``years_to_as_of``  date: full years from the date to the record's ``as_of`` day
``months:<n>``      series: the ``n`` calendar months ending with the series' latest month not
                    after the record's ``as_of``, oldest first, each in whole yuan; 0 for a
                    month missing from the series

Dates of ``as_of`` (milliseconds since the epoch) are read in China Standard
Time (UTC+8), the time zone the records describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

__all__ = ["FeatureError", "SourceRecord", "build_vectors", "flatten"]

CHINA_STANDARD_TIME = timezone(timedelta(hours=8))


class FeatureError(Exception):
    """Raised when the records at hand cannot fill an input layout (a type missing, a field malformed)."""

    code = "missing_input"


@dataclass(frozen=True)
class SourceRecord:
    """The current version of one consented record, opened: what the encodings read."""

    data_type: str
    as_of_ms: int
    payload: Mapping[str, Any]


def build_vectors(layout: Sequence[Sequence[Mapping[str, str]]], records: Mapping[str, SourceRecord]) -> list[list[int]]:
    """The integer vectors of ``layout`` from ``records`` (one current record per data type)."""
    vectors = []
    for v, vector in enumerate(layout):
        values: list[int] = []
        for i, item in enumerate(vector):
            record = records.get(item["type"])
            if record is None:
                raise FeatureError(f"inputs[{v}][{i}]: the subject has no current {item['type']!r} record in the consented range")
            try:
                values.extend(_encode(item, record, f"inputs[{v}][{i}]"))
            except (TypeError, ValueError, KeyError) as exc:
                raise FeatureError(f"inputs[{v}][{i}]: {item['encode']!r} does not apply to {item['type']}.{item['field']} ({exc})") from None
        vectors.append(values)
    return vectors


def flatten(vectors: Sequence[Sequence[int]]) -> list[int]:
    """One feature list, vector after vector (the order an HE scoring job's weights follow)."""
    return [value for vector in vectors for value in vector]


def _encode(item: Mapping[str, str], record: SourceRecord, where: str) -> list[int]:
    if item["field"] not in record.payload:
        raise FeatureError(f"{where}: the record has no field {item['field']!r}")
    value = record.payload[item["field"]]
    encoding, _, argument = item["encode"].partition(":")
    if encoding == "value":
        return [int(value)]
    if encoding == "yuan":
        return [value // 100]
    if encoding == "is":
        return [1 if value == argument else 0]
    as_of = datetime.fromtimestamp(record.as_of_ms / 1000, CHINA_STANDARD_TIME).date()
    if encoding == "years_to_as_of":
        return [_full_years(date.fromisoformat(value), as_of)]
    if encoding == "months":
        by_month = {point["month"]: point["amount"] for point in value}
        latest = max((month for month in by_month if month <= f"{as_of.year:04d}-{as_of.month:02d}"), default=None)
        if latest is None:
            raise FeatureError(f"{where}: the series has no month up to the record's as_of date")
        return [by_month.get(month, 0) // 100 for month in _months_ending(latest, int(argument))]
    raise FeatureError(f"{where}: unknown encoding {item['encode']!r}")


def _full_years(start: date, end: date) -> int:
    years = end.year - start.year - ((end.month, end.day) < (start.month, start.day))
    return max(years, 0)


def _months_ending(last: str, count: int) -> list[str]:
    index = int(last[:4]) * 12 + int(last[5:7]) - 1
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(index - count + 1, index + 1)]
