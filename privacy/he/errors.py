"""Exceptions of the homomorphic-computing recipes, with stable codes.

A custodian's node turns these into refusals on the ledger (``computation_failed``
with the code), so the codes are part of the protocol: they never change meaning.
Messages name what is wrong (which feature index, which party, which range) but
never carry a key, a weight or a citizen's value::

    HeError                 code: he_out_of_range, he_shape_mismatch, he_unknown_params,
    │                             he_bad_bundle, he_bad_ciphertext, he_bad_key
    └── ThresholdError      code: missing_share, unknown_party, bad_share, share_mismatch,
                                  bad_joint_key, bad_handoff
"""

from __future__ import annotations

__all__ = ["HeError", "ThresholdError"]


class HeError(Exception):
    """Raised when a homomorphic job cannot be run as asked; ``code`` is stable, snake_case."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ThresholdError(HeError):
    """Raised by the joint-key ceremony, partial decryption and fusion."""
