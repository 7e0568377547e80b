"""Keys shared by the HE tests: key generation and the joint-key ceremony are the slow parts."""

from __future__ import annotations

import pytest

from privacy.he import JointKey, ScoringKeys, ThresholdParty, run_ceremony

from he_samples import PARTIES


@pytest.fixture(scope="session")
def scoring_keys() -> ScoringKeys:
    return ScoringKeys.generate()


@pytest.fixture(scope="session")
def ceremony() -> tuple[list[ThresholdParty], JointKey]:
    return run_ceremony(list(PARTIES))
