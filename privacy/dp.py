"""Differentially private counts, sums and means with OpenDP — the privacy unit is one citizen.

Every released aggregate goes through an OpenDP measurement built here, never
through hand-written noise: clamp each citizen's value to the declared
``[lower, upper]`` (so one citizen moves a sum by at most ``max(|lower|, |upper|)``),
sum or count, then add discrete Laplace noise whose scale OpenDP searches for so
that the measurement's privacy map, at one citizen added or removed (symmetric
distance 1), is within the ε asked for. A mean is released as a noisy sum and a
noisy count, each with half the ε (sequential composition); the requester divides.

ε arrives as integer thousandths (``epsilon_milli``, the unit the ledger budgets
in). OpenDP works in floats; the check that the map does not exceed ε is done
by OpenDP's own arithmetic, which rounds conservatively.

The noisy values are integers. The custodian adds ``noisy - exact`` to the
homomorphic sum (:mod:`privacy.he.threshold`), so the exact aggregate is never
decrypted by anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import opendp.prelude as dp

__all__ = ["DpError", "NoisyPart", "noisy_parts"]

dp.enable_features("contrib")


class DpError(Exception):
    """Raised for an aggregate request the mechanism cannot serve as asked."""

    code = "invalid_argument"


@dataclass(frozen=True)
class NoisyPart:
    """One released number: ``exact`` never leaves the custodian, ``noisy`` does (encrypted)."""

    name: str  # "sum" or "count"
    exact: int
    noisy: int
    epsilon: float  # what OpenDP's privacy map charges for it at one citizen
    scale: float


def noisy_parts(statistic: str, values: Sequence[int], lower: int, upper: int, epsilon_milli: int) -> list[NoisyPart]:
    """The noisy parts a statistic is released as: count → [count], sum → [sum], mean → [sum, count]."""
    if not 0 <= lower <= upper:
        raise DpError(f"bounds must satisfy 0 <= lower <= upper, got [{lower}, {upper}]")
    if epsilon_milli <= 0:
        raise DpError("epsilon must be positive")
    names = {"count": ["count"], "sum": ["sum"], "mean": ["sum", "count"]}.get(statistic)
    if names is None:
        raise DpError(f"unknown statistic {statistic!r} (count, sum, mean)")
    epsilon = epsilon_milli / 1000 / len(names)
    return [_release(name, list(values), lower, upper, epsilon) for name in names]


def _release(name: str, values: list[int], lower: int, upper: int, epsilon: float) -> NoisyPart:
    space = (dp.vector_domain(dp.atom_domain(T="i64")), dp.symmetric_distance())  # not T=int: that is i32, and saturates
    if name == "sum":
        query = space >> dp.t.then_clamp((lower, upper)) >> dp.t.then_sum()
        exact = sum(min(max(value, lower), upper) for value in values)
    else:
        query = space >> dp.t.then_count()
        exact = len(values)
    if query.map(1) == 0:  # a sum whose bounds are [0, 0] reveals nothing and needs no noise
        return NoisyPart(name, exact, exact, 0.0, 0.0)
    scale = dp.binary_search_param(lambda s: query >> dp.m.then_laplace(scale=s), d_in=1, d_out=epsilon)
    measurement = query >> dp.m.then_laplace(scale=scale)
    charged = measurement.map(1)
    if charged > epsilon:
        raise DpError(f"OpenDP could not fit the release within epsilon {epsilon} (charged {charged})")
    return NoisyPart(name, exact, int(measurement(values)), charged, scale)
