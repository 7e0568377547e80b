"""Homomorphic-computing benchmark: private-model scoring and threshold sums (privacy.he).

    python -m bench.he_bench                         # every part, default repetitions
    python -m bench.he_bench --part score --runs 9
    python -m bench.he_bench --part noise            # only the noise-budget evidence
    python -m bench.he_bench --busy 2                # the same with 2 spinning processes on the cores
    OMP_NUM_THREADS=2 python -m bench.he_bench       # OpenFHE's own OpenMP threads (privacy.he sets 1)

What is measured, single process, after one warm-up of each operation (the
first use of a context builds its precomputed tables and the reference objects
the loaders compare against):
- the parameter sets as built (ring dimension, log2 Q, t, depth, multiparty
  mode, proven ranges and margin);
- scoring (bfv-score-v2): consumer key generation (one key pair, nothing else),
  model encryption (48 weights + bias → bundle bytes), the custodian's score of
  one citizen at 16, 32 and 48 features — *cold* (:func:`score_encrypted`: decode
  and check the bundle, deserialize the consumer's public key and ciphertext,
  multiply, encrypt and add the mask, serialize) and *warm*
  (:meth:`ScoringJob.score` on an opened job) — and the consumer's decryption
  (decrypt, add up the 8,192 slots mod t); every score is checked against the
  plain-Python value;
- threshold (bfv-threshold-v2): the 3-party key ceremony (lead + 2 joins, each
  handoff serialized and parsed as bytes), then a 100,000-value sum in stages:
  encrypt (7 ciphertexts), sum (load, add, encrypt and add the mask with the
  offset), 3 partial decryptions, fusion (check the shares, fuse, add up the
  16,384 slots); the result is checked;
- sizes in bytes of every object that travels or is stored;
- the noise budget (``--part noise``, also in ``all``): a released result at the
  extremes of the proven range is doubled j times (ciphertext + itself: the
  noise doubles, the plaintext becomes 2^j · slots mod t) and decrypted — with
  every party for the threshold set, so the flooding noise of each partial
  decryption is included — until some slot differs from 2^j times its value at
  j = 0; the last j that still decrypts every slot is the budget left, in bits.
  Scoring: all weights ±2^12, 63 features of 2^20, bias ±2^38. Threshold: 2^17
  values of 2^26 with offset +2^43, and 2^17 zeros with offset −2^43, under keys
  of 3 and of 8 parties.
Figures are medians of ``--runs`` repetitions (the ceremony: of 3). ``--busy N``
starts N processes that spin for the whole run, to show the figures when the
cores are shared.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import statistics
import time
from typing import Any, Callable

import numpy as np

from ledger import codec
from privacy.he import (
    ENGINE,
    SCORING_PARAMS,
    THRESHOLD_PARAMS,
    JointKey,
    ParameterSet,
    ScoringKeys,
    ThresholdParty,
    encrypt_values,
    fuse,
    joint_key_hash,
    open_job,
    run_ceremony,
    score_encrypted,
    sum_encrypted,
)
from privacy.he.params import HeContext, context

SCORE_TARGET_MS = 50.0
THRESHOLD_TARGET_MS = 1000.0
PARTIES = ["custodian", "regulator", "provider"]


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return (time.perf_counter() - started) * 1000, result


def median_ms(action: Callable[[], Any], runs: int) -> float:
    action()  # warm-up
    return statistics.median(timed(action)[0] for _ in range(runs))


def describe(params: ParameterSet) -> str:
    cc = context(params).cc
    multiparty = f", NOISE_FLOODING_MULTIPARTY (≤ {params.max_parties} parties)" if params.max_parties > 1 else ""
    return (
        f"{params.name}: N={cc.GetRingDimension()}, log2 Q={math.log2(cc.GetModulus()):.0f}, t={params.plaintext_modulus} "
        f"(2^{math.log2(params.plaintext_modulus):.2f}), depth {params.multiplicative_depth}, "
        f"{params.security_level}{multiparty}, no evaluation keys\n    {params.bounds}; max |result| = "
        f"{params.bounds.max_abs_result} = (t/2)/{params.margin:.1f}"
    )


def spin() -> None:
    while True:
        pass


def bench_score(runs: int) -> None:
    bounds = SCORING_PARAMS.bounds
    print(f"\nscoring ({SCORING_PARAMS.name}), median of {runs}")
    keygen_ms = median_ms(ScoringKeys.generate, runs)
    keys = ScoringKeys.generate()
    rng = random.Random(1)
    weights = [rng.randint(-bounds.weight_max, bounds.weight_max) for _ in range(48)]
    bias = rng.randint(-bounds.bias_max, bounds.bias_max)
    encrypt_ms = median_ms(lambda: keys.encrypt_model(weights, bias), runs)
    print(f"  consumer: keygen (one key pair) {keygen_ms:.1f} ms, encrypt model (48 weights + bias) {encrypt_ms:.1f} ms")
    print(f"  {'features':>8} {'cold ms':>8} {'warm ms':>8} {'decrypt ms':>10}  exact")
    cold_48 = warm_48 = 0.0
    for n in (16, 32, 48):
        bundle = keys.encrypt_model(weights[:n], bias)
        features = [rng.randint(0, bounds.feature_max) for _ in range(n)]
        cold = median_ms(lambda: score_encrypted(bundle, features), runs)
        job = open_job(bundle)
        warm = median_ms(lambda: job.score(features), runs)
        answer = job.score(features)
        decrypt = median_ms(lambda: keys.decrypt_score(answer), runs)
        exact = keys.decrypt_score(answer) == bias + sum(w * x for w, x in zip(weights, features))
        print(f"  {n:>8} {cold:>8.1f} {warm:>8.1f} {decrypt:>10.1f}  {exact}")
        cold_48, warm_48 = cold, warm
    bundle = keys.encrypt_model(weights, bias)
    fields = codec.decode(bundle)
    answer = score_encrypted(bundle, [0] * 48)
    print(
        f"  sizes: bundle {len(bundle):,} (public key {len(fields['public_key']):,}, weights ciphertext {len(fields['weights']):,}); "
        f"encrypted score {len(answer):,}; exported secret {len(keys.export_secret()):,}"
    )
    verdict = "met" if cold_48 < SCORE_TARGET_MS else "NOT met"
    print(f"  target: score < {SCORE_TARGET_MS:.0f} ms at 48 features: {verdict} (cold {cold_48:.1f} ms, warm {warm_48:.1f} ms)")


def bench_threshold(runs: int) -> None:
    print(f"\nthreshold ({THRESHOLD_PARAMS.name}), 3 parties")
    ceremony = []
    for _ in range(3):  # the first join of the first run also builds the loaders' reference objects
        started = time.perf_counter()
        lead, handoff = ThresholdParty.lead(THRESHOLD_PARAMS, PARTIES[0])
        lead_ms = (time.perf_counter() - started) * 1000
        joins = []
        parties = [lead]
        for party_id in PARTIES[1:]:
            join_ms, (party, handoff) = timed(lambda: ThresholdParty.join(THRESHOLD_PARAMS, party_id, handoff))
            joins.append(join_ms)
            parties.append(party)
        ceremony.append((lead_ms, joins, (time.perf_counter() - started) * 1000))
    lead_ms = statistics.median(c[0] for c in ceremony)
    join_ms = statistics.median(j for c in ceremony for j in c[1])
    total_ms = statistics.median(c[2] for c in ceremony)
    print(f"  ceremony (median of 3): lead {lead_ms:.0f} ms, each join {join_ms:.0f} ms, whole {total_ms:.0f} ms")
    joint = JointKey.from_bytes(handoff)
    values = np.random.default_rng(2).integers(0, THRESHOLD_PARAMS.bounds.value_max + 1, 100_000)
    offset = -31_337
    stages: dict[str, list[float]] = {"encrypt": [], "sum": [], "partial": [], "fuse": [], "total": []}
    exact = True
    for run in range(runs + 1):
        encrypt, ciphertexts = timed(lambda: encrypt_values(joint, values))
        summing, total = timed(lambda: sum_encrypted(joint, ciphertexts, offset))
        partial_times, shares = [], {}
        for party in parties:
            elapsed, shares[party.party_id] = timed(lambda: party.partial_decrypt(total))
            partial_times.append(elapsed)
        fusing, result = timed(lambda: fuse(joint, shares))
        exact = exact and result == int(values.sum()) + offset
        if run:  # the first run is the warm-up
            for name, figure in zip(stages, (encrypt, summing, statistics.median(partial_times), fusing)):
                stages[name].append(figure)
            stages["total"].append(encrypt + summing + sum(partial_times) + fusing)
    m = {name: statistics.median(figures) for name, figures in stages.items()}
    print(f"  100,000 values (median of {runs}): encrypt {m['encrypt']:.0f} ms ({len(ciphertexts)} ciphertexts), "
          f"sum {m['sum']:.0f} ms, partial decryption {m['partial']:.1f} ms each (×3), fusion {m['fuse']:.1f} ms; "
          f"total {m['total']:.0f} ms; exact {exact}")
    print(
        f"  sizes: ciphertext {len(ciphertexts[0]):,} (result {len(total):,}); joint key bytes {len(joint.to_bytes()):,} "
        f"(the joint public key {len(joint.public_key):,}; hash {joint_key_hash(joint).hex()[:16]}…); "
        f"partial decryption share {len(shares[PARTIES[1]]):,}; secret share {len(parties[1].export_share()):,}"
    )
    verdict = "met" if m["total"] < THRESHOLD_TARGET_MS else "NOT met"
    print(f"  target: 100,000-value sum (encrypt + sum + 3 partial decryptions + fusion) < {THRESHOLD_TARGET_MS:.0f} ms: "
          f"{verdict} ({m['total']:.0f} ms)")


def noise_budget(ctx: HeContext, result: bytes, decrypt: Callable[[Any], list[int]]) -> tuple[int, int]:
    """(last j that decrypts every slot of 2^j · result, first j that does not): binary search, then both ends checked."""
    t = ctx.params.plaintext_modulus
    base = ctx.load("ciphertext", result, what="the result", code="bench")
    start = [value % t for value in decrypt(base)]

    def decrypts(j: int) -> bool:
        ciphertext = base
        for _ in range(j):
            ciphertext = ctx.cc.EvalAdd(ciphertext, ciphertext)
        factor = pow(2, j, t)
        return all(value % t == factor * first % t for value, first in zip(decrypt(ciphertext), start))

    good, bad = 0, ctx.params.modulus_bits
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if decrypts(middle) else (good, middle)
    assert decrypts(good) and not decrypts(good + 1)
    return good, good + 1


def bench_noise() -> None:
    print("\nnoise budget at the extremes (bits: last j that decrypts 2^j · result, then the first that does not)")
    ctx = context(SCORING_PARAMS)
    bounds = SCORING_PARAMS.bounds
    features = [bounds.feature_max] * bounds.max_features
    for sign in (1, -1, 1, -1):
        keys = ScoringKeys.generate()
        secret = ctx.load("private_key", codec.decode(keys.export_secret())["secret_key"], what="the secret key", code="bench")
        answer = score_encrypted(keys.encrypt_model([sign * bounds.weight_max] * bounds.max_features, sign * bounds.bias_max), features)
        assert keys.decrypt_score(answer) == sign * bounds.max_abs_result
        budget = noise_budget(ctx, answer, lambda c: ctx.cc.Decrypt(secret, c).GetPackedValue())
        print(f"  {SCORING_PARAMS.name}, score {sign * bounds.max_abs_result:+}: {budget}")
    ctx = context(THRESHOLD_PARAMS)
    sums = THRESHOLD_PARAMS.bounds
    largest = np.full(sums.max_values, sums.value_max, dtype=np.int64)
    extremes = [(largest, sums.offset_max), (np.zeros_like(largest), -sums.offset_max)]
    for count in (3, THRESHOLD_PARAMS.max_parties):
        parties, joint = run_ceremony([f"party-{i}" for i in range(count)])
        secrets = [ctx.load("private_key", codec.decode(p.export_share())["secret_key"], what="a share", code="bench") for p in parties]

        def fused(ciphertext: Any) -> list[int]:
            partials = [ctx.cc.MultipartyDecryptLead([ciphertext], secrets[0])[0]]
            partials += [ctx.cc.MultipartyDecryptMain([ciphertext], secret)[0] for secret in secrets[1:]]
            return ctx.cc.MultipartyDecryptFusion(partials).GetPackedValue()

        for values, offset in extremes:
            result = sum_encrypted(joint, encrypt_values(joint, values), offset)
            assert fuse(joint, {p.party_id: p.partial_decrypt(result) for p in parties}) == int(values.sum()) + offset
            print(f"  {THRESHOLD_PARAMS.name}, {count} parties, total {int(values.sum()) + offset:+}: {noise_budget(ctx, result, fused)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="repetitions per figure (median)")
    parser.add_argument("--part", choices=["all", "score", "threshold", "noise"], default="all")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes competing for the cores")
    args = parser.parse_args()
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    print(f"machine: {os.cpu_count()} cores; {ENGINE}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
          f"{args.busy} spinning process(es)")
    for params in (SCORING_PARAMS, THRESHOLD_PARAMS):
        print("  " + describe(params))
    if args.part in ("all", "score"):
        bench_score(args.runs)
    if args.part in ("all", "threshold"):
        bench_threshold(max(3, args.runs // 2))
    if args.part in ("all", "noise"):
        bench_noise()
    for spinner in spinners:
        spinner.terminate()


if __name__ == "__main__":
    main()
