"""Named BFV parameter sets, their proven input ranges, and the one place a CryptoContext is built.

Why named sets: a custodian never takes cryptographic parameters from the party
that sends it keys and ciphertexts. A job names a set (``"bfv-score-v2"``); the
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
|result| stays below t/2 with a margin (:attr:`ParameterSet.margin`, at
least 8 for the shipped sets). The noise margin (how far the noise is from
corrupting a decryption) was measured, not assumed: see docs/HE.md, which also
records the parameter choices that decrypted wrongly.

Why no rotation keys: a result is released as *the sum of all slots* of a
ciphertext rather than as one slot. The custodian never moves values between
slots; it adds a fresh encryption of :meth:`HeContext.mask` — uniformly random in
every slot, subject only to the slots summing to a chosen total (0, or the
differential-privacy offset) mod t — and the reader adds up the decrypted slots
mod t (:meth:`HeContext.total`). The decrypted vector is then uniform among all
vectors with that sum: it tells the reader the total and nothing else, not which
slots were used nor what any slot held. No rotation, sum or relinearization key
exists, so nothing is ever put in OpenFHE's process-global key maps (the sets
enable only PKE, LEVELEDSHE and, for threshold sets, MULTIPARTY). Every OpenFHE
call that touches shared state runs under :data:`OPENFHE_LOCK` (the wheel holds
the GIL during its calls anyway, so nothing is lost).

Why one OpenMP thread: OpenFHE sizes its OpenMP teams once, from
``OMP_NUM_THREADS`` as it is when the library loads. Two threads gain little on
two idle cores, but when the cores are busy (a node's other threads, other
processes) the spinning team made a 25 ms score take 560–770 ms (docs/HE.md).
This module therefore sets ``OMP_NUM_THREADS=1`` unless the operator set it —
which only takes effect if it is imported before anything else imports
``openfhe``.
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
        """Slots the products fill: one per feature, one for the bias."""
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
    bounds: Bounds
    max_parties: int = 1  # > 1: multiparty (threshold) in noise-flooding mode
    security_level: str = "HEStd_128_classic"
    key_switching: str = "BV"  # no key-switching key is ever made; the setting only enters OpenFHE's choice of Q

    @property
    def batch_size(self) -> int:
        return self.ring_dim

    @property
    def margin(self) -> float:
        """How many times the largest proven |result| fits under t/2."""
        return (self.plaintext_modulus // 2) / self.bounds.max_abs_result


SCORING_PARAMS = ParameterSet(
    name="bfv-score-v2",
    ring_dim=8192,
    plaintext_modulus=8796093349889,  # 2^43 + 5·2^16 + 1, prime, ≡ 1 mod 65536
    multiplicative_depth=1,  # one ciphertext × plaintext product
    modulus_bits=120,
    bounds=ScoreBounds(max_features=63, feature_max=2**20, weight_max=2**12, bias_max=2**38),
)

THRESHOLD_PARAMS = ParameterSet(
    name="bfv-threshold-v2",
    ring_dim=16384,
    plaintext_modulus=281474978414593,  # 2^48 + 26·2^16 + 1, prime, ≡ 1 mod 65536
    multiplicative_depth=0,  # additions only; OpenFHE adds two 60-bit moduli for the flooding
    modulus_bits=240,
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
}


class HeContext:
    """The CryptoContext of one parameter set: slot-sum masking and reading, and checked loaders."""

    def __init__(self, params: ParameterSet) -> None:
        settings = openfhe.CCParamsBFVRNS()
        settings.SetPlaintextModulus(params.plaintext_modulus)
        settings.SetMultiplicativeDepth(params.multiplicative_depth)
        settings.SetSecurityLevel(getattr(openfhe, params.security_level))
        settings.SetRingDim(params.ring_dim)
        settings.SetKeySwitchTechnique(getattr(openfhe, params.key_switching))
        features = [openfhe.PKE, openfhe.LEVELEDSHE]
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
        self._references: dict[str, tuple[bytes, int]] | None = None

    def packed(self, values: Sequence[int] | np.ndarray) -> Any:
        """A packed plaintext of signed values (each already within ±t/2)."""
        return self.cc.MakePackedPlaintext(np.asarray(values, dtype=np.int64))

    def mask(self, total: int) -> Any:
        """A packed plaintext uniformly random in every slot, subject only to the slots summing to ``total`` mod t.

        N − 1 slots are drawn independently and uniformly mod t; the last makes up the
        sum. Any N − 1 of the slots are then independent and uniform, so adding the mask
        to a vector of slots leaves a vector uniform among those with the same sum.
        """
        t = self.params.plaintext_modulus
        values = _uniform_below(t, self.params.ring_dim)
        drawn = int(values[:-1].sum(dtype=np.uint64))  # < N·t < 2^63 for every shipped set (tested)
        values[-1] = (total - drawn) % t
        signed = values.astype(np.int64)
        signed[signed > t // 2] -= t
        return self.cc.MakePackedPlaintext(signed)

    def masked(self, ciphertext: Any, public_key: Any, total: int) -> bytes:
        """``ciphertext`` plus a fresh encryption of :meth:`mask` (``total``), serialized: the only form a result leaves in."""
        with OPENFHE_LOCK:
            result = self.cc.EvalAdd(ciphertext, self.cc.Encrypt(public_key, self.mask(total)))
            return cast(bytes, openfhe.Serialize(result, openfhe.BINARY))

    def total(self, plaintext: Any) -> int:
        """The sum of all slots of a decrypted result mod t, centred into (−t/2, t/2]: what a reader learns."""
        t = self.params.plaintext_modulus
        total = sum(plaintext.GetPackedValue()) % t
        return total - t if total > t // 2 else total

    def load(self, kind: str, data: object, *, what: str, code: str, error: type[HeError] = HeError) -> Any:
        """Deserialize ``data`` as a ``kind`` object of this context, or raise ``error(code)`` naming ``what``."""
        name, deserialize = _KINDS[kind]
        prefix, size = self._reference()[kind]
        if not isinstance(data, bytes) or not size <= len(data) <= size + _METADATA_SLACK or not data.startswith(prefix):
            raise error(code, f"{what} is not a serialized {name} of parameter set {self.params.name!r}")
        with OPENFHE_LOCK:
            try:
                loaded = deserialize(data, openfhe.BINARY)
                foreign = loaded.GetCryptoContext() != self.cc or not loaded.GetKeyTag()
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
                objects = {"ciphertext": ciphertext, "public_key": keys.publicKey, "private_key": keys.secretKey}
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
