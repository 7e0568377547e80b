"""Private-model scoring: a consumer's encrypted linear model over a citizen's plaintext features.

A bank keeps its credit model private from the custodian, and the custodian keeps
the citizen's data private from the bank; the only thing that crosses is one
number, the score, and only the bank can read it.

* **Consumer** (:class:`ScoringKeys`): makes a BFV key pair under a named
  parameter set, encrypts its integer weights and bias under its *own* key, and
  sends a self-contained job bundle (:meth:`ScoringKeys.encrypt_model`). The
  bundle's hash (:func:`model_hash`) is what the consent and the access record
  name on the ledger.
* **Custodian** (:func:`score_encrypted`, or :func:`open_job` to score many
  citizens with one bundle): builds the context from the parameter set's *name*,
  checks and deserializes the consumer's public key and ciphertext into it,
  checks the citizen's features against the proven range, and computes
  ``ct(weights ‖ bias) × (features ‖ 1)`` (ciphertext × plaintext): slot i holds
  weight_i · feature_i, slot n the bias, every other slot 0. It does not sum
  them: it adds a fresh encryption, under the consumer's public key, of a mask
  that is uniformly random in all N slots subject to summing to 0 mod t
  (:meth:`~privacy.he.params.HeContext.mask`). The decrypted slots are then
  uniform among the vectors whose sum is the score — the consumer learns the
  score and nothing about any single product, nor which slots were used. The
  mask is *encrypted* rather than added as a plaintext because the result's
  second component would otherwise be c1 · x(X) — the consumer's own c1 times
  the feature polynomial, solvable for the features; a fresh encryption adds
  an RLWE sample that hides it. No rotation keys exist.
* **Consumer** again: :meth:`ScoringKeys.decrypt_score` adds up all slots mod t
  → a signed integer.

Bundle (canonical CBOR via :mod:`ledger.codec`)::

    {"params": "bfv-score-v2", "public_key": <Serialize(pk, BINARY)>,
     "weights": <Serialize(ciphertext of [w_0 … w_{n-1}, bias], BINARY)>, "features": n}

Limits (docs/HE.md): no circuit privacy — the result's noise is not flooded; it
is essentially the consumer's own encryption noise times the feature polynomial,
which a consumer holding the secret key can compute, so it carries information
about the features beyond the score; and a consumer chooses its weights, so
one-hot weights read one feature outright. The consent's use limit is the
control for both.
"""

from __future__ import annotations

from typing import Any, Sequence, cast

import openfhe

from ledger import codec
from ledger.crypto import sha256
from ledger.fields import Bytes, Text, UInt
from privacy.he.errors import HeError
from privacy.he.params import OPENFHE_LOCK, SCORING_PARAMS, HeContext, ParameterSet, ScoreBounds, context, decode_map, parameter_set

__all__ = ["BUNDLE_SPEC", "ScoringJob", "ScoringKeys", "model_hash", "open_job", "score_encrypted"]

_OPENFHE_BYTES = Bytes(max_size=1 << 30)  # exact sizes are checked against the parameter set on loading
BUNDLE_SPEC = {
    "params": Text(64),
    "public_key": _OPENFHE_BYTES,
    "weights": _OPENFHE_BYTES,
    "features": UInt(1, 2**16),
}
_SECRET_SPEC = {"params": Text(64), "secret_key": _OPENFHE_BYTES, "public_key": _OPENFHE_BYTES}


def _bounds(params: ParameterSet) -> ScoreBounds:
    return cast(ScoreBounds, params.bounds)


def _check_int(value: object, low: int, high: int, what: str) -> None:
    if type(value) is not int or not low <= value <= high:
        raise HeError("he_out_of_range", f"{what} is outside the proven range [{low}, {high}]")


class ScoringKeys:
    """The consumer's side: its key pair, model encryption and score decryption (:meth:`generate` or :meth:`load`)."""

    def __init__(self, params: ParameterSet, secret_key: Any, public_key: Any) -> None:
        self.params = parameter_set(params.name, ScoreBounds)
        self._ctx = context(self.params)
        self._secret_key = secret_key
        self._public_key = public_key

    @classmethod
    def generate(cls, params: ParameterSet = SCORING_PARAMS) -> ScoringKeys:
        ctx = context(parameter_set(params.name, ScoreBounds))
        with OPENFHE_LOCK:
            pair = ctx.cc.KeyGen()
        return cls(params, pair.secretKey, pair.publicKey)

    def encrypt_model(self, weights: Sequence[int], bias: int) -> bytes:
        """The job bundle for ``score = bias + Σ weights[i] · features[i]``."""
        bounds = _bounds(self.params)
        _check_int(len(weights), 1, bounds.max_features, "the number of weights")
        for index, weight in enumerate(weights):
            _check_int(weight, -bounds.weight_max, bounds.weight_max, f"weight {index}")
        _check_int(bias, -bounds.bias_max, bounds.bias_max, "the bias")
        with OPENFHE_LOCK:
            ciphertext = self._ctx.cc.Encrypt(self._public_key, self._ctx.packed([*weights, bias]))
            return codec.encode(
                {
                    "params": self.params.name,
                    "public_key": openfhe.Serialize(self._public_key, openfhe.BINARY),
                    "weights": openfhe.Serialize(ciphertext, openfhe.BINARY),
                    "features": len(weights),
                }
            )

    def decrypt_score(self, ciphertext: bytes) -> int:
        """The score in a custodian's answer (the sum of all its slots mod t); HeError if it is not under this key
        or not in the proven range."""
        loaded = self._ctx.load("ciphertext", ciphertext, what="the score", code="he_bad_ciphertext")
        if loaded.GetKeyTag() != self._secret_key.GetKeyTag():
            raise HeError("he_bad_ciphertext", "the score is not encrypted under this key")
        with OPENFHE_LOCK:
            plaintext = self._ctx.cc.Decrypt(self._secret_key, loaded)
        score = self._ctx.total(plaintext)
        limit = _bounds(self.params).max_abs_result
        if abs(score) > limit:
            raise HeError(
                "he_out_of_range",
                f"the decrypted score is outside the proven range [-{limit}, {limit}]: "
                "the model was outside its ranges or the custodian used other keys",
            )
        return score

    def export_secret(self) -> bytes:
        """Canonical CBOR {"params", "secret_key", "public_key"} for the consumer's wallet."""
        with OPENFHE_LOCK:
            return codec.encode(
                {
                    "params": self.params.name,
                    "secret_key": openfhe.Serialize(self._secret_key, openfhe.BINARY),
                    "public_key": openfhe.Serialize(self._public_key, openfhe.BINARY),
                }
            )

    @classmethod
    def load(cls, data: bytes) -> ScoringKeys:
        """Keys from :meth:`export_secret` bytes; HeError(he_bad_key) if they are not such bytes."""
        fields = decode_map(data, _SECRET_SPEC, "exported key", "he_bad_key")
        params = parameter_set(fields["params"], ScoreBounds)
        ctx = context(params)
        secret_key = ctx.load("private_key", fields["secret_key"], what="the exported secret key", code="he_bad_key")
        public_key = ctx.load("public_key", fields["public_key"], what="the exported public key", code="he_bad_key")
        if secret_key.GetKeyTag() != public_key.GetKeyTag():
            raise HeError("he_bad_key", "the exported secret and public keys are not a pair")
        return cls(params, secret_key, public_key)


def model_hash(bundle: bytes) -> bytes:
    """SHA-256 of the job bundle: what the consent and the access record name."""
    return sha256(bundle)


class ScoringJob:
    """A checked, deserialized bundle; :meth:`score` once per citizen. Dropping it frees the consumer's keys."""

    def __init__(self, ctx: HeContext, features: int, public_key: Any, weights: Any) -> None:
        self.params = ctx.params
        self.features = features
        self._ctx = ctx
        self._public_key = public_key
        self._weights = weights

    def score(self, features: Sequence[int]) -> bytes:
        """The encrypted score of one citizen (Serialize(ciphertext, BINARY)); only the consumer can decrypt it."""
        if len(features) != self.features:
            raise HeError("he_shape_mismatch", f"the model takes {self.features} features, got {len(features)}")
        feature_max = _bounds(self.params).feature_max
        for index, feature in enumerate(features):
            _check_int(feature, 0, feature_max, f"feature {index}")
        with OPENFHE_LOCK:
            products = self._ctx.cc.EvalMult(self._weights, self._ctx.packed([*features, 1]))
            return self._ctx.masked(products, self._public_key, 0)


def open_job(bundle: bytes) -> ScoringJob:
    """Check a job bundle and load it into the named parameter set's context; HeError naming what is wrong."""
    fields = decode_map(bundle, BUNDLE_SPEC, "bundle", "he_bad_bundle")
    params = parameter_set(fields["params"], ScoreBounds)
    max_features = _bounds(params).max_features
    features = fields["features"]
    if features > max_features:
        raise HeError("he_bad_bundle", f"the bundle's feature count must be in [1, {max_features}]")
    ctx = context(params)
    public_key = ctx.load("public_key", fields["public_key"], what="the bundle's public key", code="he_bad_bundle")
    weights = ctx.load("ciphertext", fields["weights"], what="the bundle's weights", code="he_bad_bundle")
    if weights.GetKeyTag() != public_key.GetKeyTag():
        raise HeError("he_bad_bundle", "the bundle's weights are not encrypted under its public key")
    return ScoringJob(ctx, features, public_key, weights)


def score_encrypted(bundle: bytes, features: Sequence[int]) -> bytes:
    """One citizen's encrypted score under the consumer's key (custodian side)."""
    return open_job(bundle).score(features)
