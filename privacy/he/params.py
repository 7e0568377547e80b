"""Named BFV parameter sets, their proven input ranges, and the one place a CryptoContext is built.

Why named sets: a custodian never takes cryptographic parameters from the party
that sends it keys and ciphertexts. A job names a set (``"bfv-score-v1"``); the
custodian builds the context from its own copy of that set and refuses any
serialized object that was not made under exactly that context — *before*
deserializing it, because OpenFHE registers the context embedded in every
serialized object in a process-global registry, so a foreign one would stay in
memory for the life of the process. :meth:`HeContext.load` compares the bytes in
front of the object's key tag (the serialized context parameters: ring
dimension, moduli, plaintext modulus, scheme options) with those of a reference
object made locally, checks the size, deserializes, and checks that the result
belongs to this context.

Why these numbers: each set pins ring dimension, plaintext modulus t, depth and
the ciphertext modulus OpenFHE derives from them (``modulus_bits``; a library
that derives another is refused rather than silently interoperating badly), and
states the input ranges for which the result is proven exact: every result is
computed mod t, so the sets bound the inputs such that the largest possible
|result| stays below t/2 with a margin (:attr:`ScoreBounds.margin`,
:attr:`SumBounds.margin`). The noise margin (how far the noise is from
corrupting a decryption) was measured, not assumed: see docs/HE.md, which also
records the parameter choices that decrypted wrongly.

Why explicit key maps: the wheel's ``EvalSum``/``EvalRotate`` read rotation keys
from a process-global map keyed by key tag, so concurrent jobs would share it and
every job would have to clean up after itself. This package applies each
automorphism with ``EvalAutomorphism(ciphertext, index, key_map)``, passing the
job's own map: nothing is left behind when a job's objects are dropped, and two
jobs in two threads never see each other's keys. Key generation in the wheel also
inserts the new keys into the global map; :meth:`HeContext.rotation_keys` clears
it (the wheel offers no per-tag clear) — nothing in this package reads it.
Every OpenFHE call that touches shared state runs under :data:`OPENFHE_LOCK`
(the wheel holds the GIL during its calls anyway, so nothing is lost).

Why one OpenMP thread: OpenFHE sizes its OpenMP teams once, from
``OMP_NUM_THREADS`` as it is when the library loads. Two threads gain nothing
measurable on two idle cores, but when the cores are busy (a node's other
threads, other processes) the spinning team made a 25 ms score take 560–770 ms
(docs/HE.md). This module therefore sets ``OMP_NUM_THREADS=1`` unless the
operator set it — which only takes effect if it is imported before anything
else imports ``openfhe``.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union, cast

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the first import of openfhe: see the docstring

import numpy as np  # noqa: E402
import openfhe  # noqa: E402

from ledger import codec  # noqa: E402
from ledger.errors import EncodingError  # noqa: E402
from ledger.fields import FieldType, check_map  # noqa: E402
from privacy.he.errors import HeError  # noqa: E402

__all__ = [
    "ENGINE",
    "OPENFHE_LOCK",
    "PARAMETER_SETS",
    "SCORING_PARAMS",
    "THRESHOLD_PARAMS",
    "HeContext",
    "ParameterSet",
    "ScoreBounds",
    "SumBounds",
    "context",
    "decode_map",
    "parameter_set",
]

ENGINE = f"openfhe {openfhe.__version__}"  # what an access or aggregate receipt names as the engine
OPENFHE_LOCK = threading.RLock()

# Serialized objects of one kind differ in size by a little metadata (an evaluated
# ciphertext carries ~200 bytes more than a fresh one); a foreign ring dimension or
# modulus chain changes the size by whole polynomials (tens of kilobytes and more).
_METADATA_SLACK = 4096


@dataclass(frozen=True)
class ScoreBounds:
    """Proven ranges of a private-model score: bias + Σ weight_i · feature_i."""

    max_features: int  # the bias takes one more slot
    feature_max: int  # features in [0, feature_max]
    weight_max: int  # weights in [-weight_max, weight_max]
    bias_max: int  # bias in [-bias_max, bias_max]

    @property
    def max_abs_result(self) -> int:
        return self.max_features * self.feature_max * self.weight_max + self.bias_max

    @property
    def used_slots(self) -> int:
        return self.max_features + 1


@dataclass(frozen=True)
class SumBounds:
    """Proven ranges of a threshold sum: Σ values + offset."""

    max_values: int
    value_max: int  # values in [0, value_max]
    offset_max: int  # offset in [-offset_max, offset_max]

    @property
    def max_abs_result(self) -> int:
        return self.max_values * self.value_max + self.offset_max


Bounds = Union[ScoreBounds, SumBounds]


@dataclass(frozen=True)
class ParameterSet:
    """One BFV parameter set; ``name`` is what goes on the ledger and in every job."""

    name: str
    ring_dim: int
    plaintext_modulus: int  # prime, ≡ 1 mod 2·ring_dim (packed slots)
    multiplicative_depth: int
    modulus_bits: int  # log2 Q as OpenFHE derives it from the above
    summed_slots: int  # slots one ciphertext is summed over (rotation keys are made for these)
    bounds: Bounds
    max_parties: int = 1  # > 1: multiparty (threshold) in noise-flooding mode
    security_level: str = "HEStd_128_classic"
    key_switching: str = "BV"

    @property
    def batch_size(self) -> int:
        return self.ring_dim

    @property
    def margin(self) -> float:
        """How many times the largest proven |result| fits under t/2."""
        return (self.plaintext_modulus // 2) / self.bounds.max_abs_result


SCORING_PARAMS = ParameterSet(
    name="bfv-score-v1",
    ring_dim=8192,
    plaintext_modulus=8796093349889,  # 2^43 + 5·2^16 + 1, prime, ≡ 1 mod 65536
    multiplicative_depth=2,
    modulus_bits=180,
    summed_slots=64,
    bounds=ScoreBounds(max_features=63, feature_max=2**20, weight_max=2**12, bias_max=2**38),
)

THRESHOLD_PARAMS = ParameterSet(
    name="bfv-threshold-v1",
    ring_dim=16384,
    plaintext_modulus=281474978414593,  # 2^48 + 26·2^16 + 1, prime, ≡ 1 mod 65536
    multiplicative_depth=1,
    modulus_bits=300,
    summed_slots=16384,
    bounds=SumBounds(max_values=2**17, value_max=2**26, offset_max=2**43),
    max_parties=8,
)

PARAMETER_SETS: dict[str, ParameterSet] = {p.name: p for p in (SCORING_PARAMS, THRESHOLD_PARAMS)}


def decode_map(data: object, spec: Mapping[str, FieldType], what: str, code: str, error: type[HeError] = HeError) -> dict[str, Any]:
    """The canonical-CBOR map ``data`` checked against ``spec``, or ``error(code)`` naming ``what``."""
    try:
        fields = codec.decode(cast(bytes, data))
    except EncodingError as exc:
        raise error(code, f"{what}: {exc}") from None
    try:
        check_map(fields, spec, what)
    except EncodingError as exc:
        raise error(code, str(exc)) from None
    return cast(dict[str, Any], fields)


def parameter_set(name: object, kind: type[ScoreBounds] | type[SumBounds]) -> ParameterSet:
    """The registered set called ``name`` serving ``kind`` of job, or HeError(he_unknown_params)."""
    params = PARAMETER_SETS.get(name) if isinstance(name, str) else None
    if params is None:
        raise HeError("he_unknown_params", f"unknown parameter set {name!r}; known: {', '.join(sorted(PARAMETER_SETS))}")
    if not isinstance(params.bounds, kind):
        use = "scoring" if kind is ScoreBounds else "threshold sums"
        raise HeError("he_unknown_params", f"parameter set {params.name!r} is not one for {use}")
    return params


_KINDS: dict[str, tuple[str, Callable[[bytes, Any], Any]]] = {
    "ciphertext": ("ciphertext", openfhe.DeserializeCiphertextString),
    "partial": ("partial decryption", openfhe.DeserializeCiphertextString),
    "public_key": ("public key", openfhe.DeserializePublicKeyString),
    "private_key": ("secret key", openfhe.DeserializePrivateKeyString),
    "eval_keys": ("evaluation key map", openfhe.DeserializeEvalKeyMapString),
}


class HeContext:
    """The CryptoContext of one parameter set, with its automorphism indices and checked loaders."""

    def __init__(self, params: ParameterSet) -> None:
        settings = openfhe.CCParamsBFVRNS()
        settings.SetPlaintextModulus(params.plaintext_modulus)
        settings.SetMultiplicativeDepth(params.multiplicative_depth)
        settings.SetSecurityLevel(getattr(openfhe, params.security_level))
        settings.SetRingDim(params.ring_dim)
        settings.SetKeySwitchTechnique(getattr(openfhe, params.key_switching))
        features = [openfhe.PKE, openfhe.KEYSWITCH, openfhe.LEVELEDSHE, openfhe.ADVANCEDSHE]
        if params.max_parties > 1:
            settings.SetMultipartyMode(openfhe.NOISE_FLOODING_MULTIPARTY)
            settings.SetThresholdNumOfParties(params.max_parties)
            features.append(openfhe.MULTIPARTY)
        cc = openfhe.GenCryptoContext(settings)
        for feature in features:
            cc.Enable(feature)
        derived = (cc.GetRingDimension(), cc.GetPlaintextModulus(), round(math.log2(cc.GetModulus())))
        if derived != (params.ring_dim, params.plaintext_modulus, params.modulus_bits):
            raise HeError(
                "he_unknown_params",
                f"this OpenFHE derives (N, t, log2 Q) = {derived} for {params.name!r}, "
                f"not {(params.ring_dim, params.plaintext_modulus, params.modulus_bits)}",
            )
        self.params = params
        self.cc = cc
        self.automorphisms = self._automorphism_indices()
        self._references: dict[str, tuple[bytes, int]] | None = None

    def _automorphism_indices(self) -> tuple[int, ...]:
        """Rotations by 1, 2, 4, … within a row of N/2 slots, then the row swap if all N slots are summed."""
        n = self.params.ring_dim
        indices = []
        step = 1
        while step < min(self.params.summed_slots, n // 2):
            indices.append(self.cc.FindAutomorphismIndex(step))
            step *= 2
        if self.params.summed_slots == n:
            indices.append(2 * n - 1)
        return tuple(indices)

    def rotation_keys(self, secret_key: Any) -> Any:
        """The automorphism keys :meth:`sum_slots` needs, made under ``secret_key`` (an EvalKeyMap)."""
        with OPENFHE_LOCK:
            keys = self.cc.EvalAutomorphismKeyGen(secret_key, list(self.automorphisms))
            openfhe.CryptoContext.ClearEvalAutomorphismKeys()
            return keys

    def sum_slots(self, ciphertext: Any, keys: Any, used: int) -> Any:
        """A ciphertext whose slot 0 holds the sum of slots [0, used) of ``ciphertext`` (all N slots if used = N)."""
        indices = self.automorphisms if used > self.params.ring_dim // 2 else self.automorphisms[: (used - 1).bit_length()]
        for index in indices:
            ciphertext = self.cc.EvalAdd(ciphertext, self.cc.EvalAutomorphism(ciphertext, index, keys))
        return ciphertext

    def packed(self, values: Sequence[int] | np.ndarray) -> Any:
        """A packed plaintext of signed values (each already within ±t/2)."""
        return self.cc.MakePackedPlaintext(np.asarray(values, dtype=np.int64))

    def mask(self, head: int) -> Any:
        """A packed plaintext: ``head`` in slot 0, independent uniform values mod t in every other slot."""
        t = self.params.plaintext_modulus
        values = _uniform_below(t, self.params.ring_dim).astype(np.int64)
        values[values > t // 2] -= t
        values[0] = head
        return self.cc.MakePackedPlaintext(values)

    def load(self, kind: str, data: object, *, what: str, code: str, error: type[HeError] = HeError) -> Any:
        """Deserialize ``data`` as a ``kind`` object of this context, or raise ``error(code)`` naming ``what``."""
        name, deserialize = _KINDS[kind]
        prefix, size = self._reference()[kind]
        if not isinstance(data, bytes) or not size <= len(data) <= size + _METADATA_SLACK or not data.startswith(prefix):
            raise error(code, f"{what} is not a serialized {name} of parameter set {self.params.name!r}")
        with OPENFHE_LOCK:
            try:
                loaded = deserialize(data, openfhe.BINARY)
                foreign = kind != "eval_keys" and (loaded.GetCryptoContext() != self.cc or not loaded.GetKeyTag())
            except Exception:  # hostile bytes: RuntimeError, MemoryError (bad_alloc), a key tag that is not UTF-8, …
                raise error(code, f"{what} does not deserialize as a {name}") from None
        if foreign:
            raise error(code, f"{what} is not a {name} of {self.params.name!r} (another crypto context, or no key tag)")
        return loaded

    def _reference(self) -> dict[str, tuple[bytes, int]]:
        """(bytes before the key tag, size) of each kind of object, serialized from throwaway keys."""
        with OPENFHE_LOCK:
            if self._references is None:
                keys = self.cc.KeyGen()
                ciphertext = self.cc.Encrypt(keys.publicKey, self.packed([0]))
                objects = {
                    "ciphertext": ciphertext,
                    "public_key": keys.publicKey,
                    "private_key": keys.secretKey,
                    "eval_keys": self.rotation_keys(keys.secretKey),
                }
                if self.params.max_parties > 1:
                    objects["partial"] = self.cc.MultipartyDecryptMain([ciphertext], keys.secretKey)[0]
                tag = keys.secretKey.GetKeyTag().encode()
                references = {}
                for kind, obj in objects.items():
                    data = openfhe.Serialize(obj, openfhe.BINARY)
                    references[kind] = (data[: data.index(tag)], len(data))
                self._references = references
            return self._references


def _uniform_below(bound: int, count: int) -> np.ndarray:
    """``count`` independent uniform integers in [0, bound) from the OS CSPRNG (rejection sampling)."""
    width = np.uint64((1 << bound.bit_length()) - 1)
    kept = np.empty(0, dtype=np.uint64)
    while kept.size < count:
        draws = np.frombuffer(os.urandom(8 * count), dtype=np.uint64) & width
        kept = np.concatenate([kept, draws[draws < np.uint64(bound)]])
    return kept[:count]


_CONTEXTS: dict[ParameterSet, HeContext] = {}


def context(params: ParameterSet) -> HeContext:
    """The process's HeContext for ``params``, built on first use."""
    with OPENFHE_LOCK:
        built = _CONTEXTS.get(params)
        if built is None:
            built = _CONTEXTS[params] = HeContext(params)
        return built
