"""Homomorphic computing over citizens' data with OpenFHE BFV (exact integer arithmetic).

Two recipes, both over named, pinned parameter sets (:mod:`privacy.he.params`):

* :mod:`privacy.he.scoring` — a consumer's linear model, encrypted under the
  consumer's own key, scored by the custodian over a citizen's plaintext
  features; only the consumer can read the score, and only the score.
* :mod:`privacy.he.threshold` — sums over many citizens under a joint key of
  several parties; the result decrypts only with every party's share.

Wire formats, parameter choices, evidence and limits: docs/HE.md.
"""

from __future__ import annotations

from privacy.he.errors import HeError, ThresholdError
from privacy.he.params import ENGINE, PARAMETER_SETS, SCORING_PARAMS, THRESHOLD_PARAMS, ParameterSet, ScoreBounds, SumBounds
from privacy.he.scoring import ScoringJob, ScoringKeys, model_hash, open_job, score_encrypted
from privacy.he.threshold import JointKey, ThresholdParty, encrypt_values, fuse, joint_key_hash, run_ceremony, sum_encrypted

__all__ = [
    "ENGINE",
    "PARAMETER_SETS",
    "SCORING_PARAMS",
    "THRESHOLD_PARAMS",
    "HeError",
    "JointKey",
    "ParameterSet",
    "ScoreBounds",
    "ScoringJob",
    "ScoringKeys",
    "SumBounds",
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
