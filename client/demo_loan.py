"""Scenario 2 of the demo (泉融通, inclusive finance): a loan decided on results, never on the figures.

Qilu Bank asks Liu Yang, who runs a small restaurant, for a consent in
``computed`` mode over his housing-fund contributions, tax payments and business
licence. Then, twice, it gets a result and nothing else:

- **sandbox**: the bank's credit-score module (WebAssembly, pinned by hash,
  checked by the custodian node, approved by the three agencies whose data it
  reads) runs on the node over Liu Yang's 24 months of figures; the bank gets
  the score; the regulator re-runs the job and gets the same output hash and fuel;
- **homomorphic encryption**: the bank's private credit-line model is
  encrypted under the bank's own OpenFHE key; the node computes the credit line
  over the plaintext features without seeing the model, and only the bank can
  decrypt the result.

The narrator (not the bank) checks both results against the same formulas
computed in the clear from the records the agencies published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import wasmtime

from client.demo_data import LIU_YANG, Publication
from client.demo_narration import DemoFailed, console, expect, granted, refused, step, table
from client.sdk import ApiError
from privacy.features import SourceRecord, build_vectors, flatten
from privacy.he.scoring import ScoringKeys
from privacy.sandbox import encode_input, load_module, run_module

if TYPE_CHECKING:
    from client.demo import Members

__all__ = ["LOAN_TYPES", "loan_scenario"]

LOAN_TYPES = ["housing_fund.contributions", "market.business_licence", "tax.payments"]
LOAN_LAYOUT = [
    [{"type": "housing_fund.contributions", "field": "monthly", "encode": "months:24"}],
    [{"type": "tax.payments", "field": "monthly", "encode": "months:24"}],
    [
        {"type": "market.business_licence", "field": "registered", "encode": "years_to_as_of"},
        {"type": "market.business_licence", "field": "capital", "encode": "yuan"},
        {"type": "market.business_licence", "field": "status", "encode": "is:in business"},
    ],
]
# Qilu Bank's private credit-line model (yuan): recent contributions weigh more, a year in business
# is worth 3,000, an active licence 4,000. The node never sees these numbers.
CREDIT_LINE_WEIGHTS = [2] * 12 + [4] * 12 + [1] * 24 + [3_000, 0, 4_000]
CREDIT_LINE_BIAS = -15_000
# A module that asks the host for the time: the node's check refuses it (no imports at all).
CLOCK_READER_WAT = """(module
  (import "env" "now" (func $now (result i64)))
  (memory (export "memory") 1)
  (func (export "qcl_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "qcl_run") (param i32 i32) (result i64) (call $now)))"""


def loan_scenario(members: Members, publications: list[Publication]) -> None:
    step("Scenario 2 · 泉融通: a loan decided on a score, never on the monthly figures")
    liu, subject, bank = members.boxes[LIU_YANG], members.key_of(LIU_YANG), members.bank
    consent = bank.request_consent(
        subject, LOAN_TYPES, purpose_code="loan.credit-score", purpose_text="business loan QL-2026-3301: credit score only",
        valid_days=30, contact="96588 · loans@qilubank.example", mode="computed", max_uses=5,
    )
    liu.grant(consent, confirm_sensitive=True)
    expect(liu.consent(consent)["status"] == "active", "Liu Yang's loan consent is not active after his grant")
    console.print("qilu-bank asks Liu Yang for a [bold]computed-only[/] consent over his housing-fund contributions, tax "
                  "payments and business licence; he grants it, confirming the two sensitive (financial) types separately.")
    refused("mode", "the bank tries to read the figures themselves", lambda: bank.fetch(consent, subject))

    wasm = load_module("loan_score")
    module_hash = bank.pin_module(wasm, "loan-score-v1", LOAN_LAYOUT, "int", "credit score 300..850 (docs/SANDBOX.md)")
    console.print(f"The bank pins its scoring module (WebAssembly, {len(wasm)} bytes, sha256 {module_hash.hex()[:16]}…); "
                  f"the custodian node checks it: {bank.module(module_hash)['status']}.")
    refused("module_not_approved", "the bank runs it before the agencies approved it",
            lambda: bank.run_module(consent, subject, module_hash))
    for org in ("jinan-hpf", "jinan-tax", "jinan-amr"):
        members.agencies[org].approve_module(module_hash)
    expect(bank.module(module_hash)["status"] == "approved", "the module is not approved after the three agencies' approvals")
    console.print("jinan-hpf, jinan-tax and jinan-amr — the providers of what it reads — approve it on the ledger: approved.")
    try:
        bank.pin_module(wasmtime.wat2wasm(CLOCK_READER_WAT), "clock-reader-v1", LOAN_LAYOUT, "int")
    except ApiError as error:
        expect(error.code == "module_refused", f"a module with imports was answered {error.code}")
        console.print(f"  a module that imports the host clock: [red]refused[/] [bold]{error.code}[/] — {error.message}")
    else:
        raise DemoFailed("a module importing a host function was accepted")

    scored = granted("the bank runs the approved module over Liu Yang's records", lambda: bank.run_module(consent, subject, module_hash))
    expected_score = _plain_loan_score(wasm, publications)
    expect(scored.output == {"type": "int", "value": expected_score}, f"the sandbox score {scored.output} is not {expected_score}")
    expect(all("payload" not in record for record in scored.records), "the computed answer carried record payloads")
    fuel = scored.access["computation"]["fuel"]
    console.print(f"  what the bank received: score [bold]{scored.output['value']}[/] — and the ids and versions of the "
                  f"{len(scored.records)} records it was computed from, no figures (fuel used {fuel:,}).")

    keys = ScoringKeys.generate()
    bundle = keys.encrypt_model(CREDIT_LINE_WEIGHTS, CREDIT_LINE_BIAS)
    line, he_received = bank.score(consent, subject, keys, bundle, LOAN_LAYOUT)
    expected_line = CREDIT_LINE_BIAS + sum(w * x for w, x in zip(CREDIT_LINE_WEIGHTS, _features(publications)))
    expect(line == expected_line, f"the homomorphic credit line {line} is not {expected_line}")
    console.print(f"  homomorphic scoring (OpenFHE BFV): the bank encrypts its private model ({len(CREDIT_LINE_WEIGHTS)} weights) "
                  f"under its own key ({len(bundle) / 1e6:.1f} MB job); the node computes over the plaintext features "
                  f"and returns only a ciphertext; the bank decrypts a credit line of [bold]¥{line:,}[/] "
                  f"(access record at log index {he_received.log_index}).")
    decision = "approved" if scored.output["value"] >= 600 and line > 0 else "declined"
    console.print(f"Qilu Bank decides: loan [green]{decision}[/] — without ever holding Liu Yang's monthly figures.")

    rerun = members.regulator.replay_computation(scored.log_index)
    expect(rerun["matches"], f"the regulator's re-run does not match the receipt: {rerun}")
    console.print(f"pbc-jinan re-runs the sandbox job recorded at log index {scored.log_index}: output hash "
                  f"{rerun['output_hash'][:16]}…, fuel {rerun['fuel']:,} — [green]same as the receipt[/].")

    log = [entry for entry in liu.access_log() if entry.get("consumer") == "qilu-bank"]
    receipts = table("log", "who, why", "mode", "computation (code hash)", "outcome", title="Liu Yang's access log: computations, not reads")
    for entry in log:
        computation = entry.get("computation") or {}
        outcome = "[green]granted[/]" if entry["outcome"] == "granted" else f"[red]refused: {entry['reason']}[/]"
        receipts.add_row(str(entry["log_index"]), f"{entry['consumer']}\n[dim]{entry['purpose']}[/]", entry["mode"],
                         f"{computation.get('kind', '—')} {computation.get('code_hash', '')[:16]}", outcome)
    console.print(receipts)
    expect(sum(entry["outcome"] == "granted" and entry["mode"] == "computed" for entry in log) == 2,
           "Liu Yang's log does not show the two computations")


def _sources(publications: list[Publication]) -> dict[str, SourceRecord]:
    return {p.data_type: SourceRecord(p.data_type, p.as_of_ms, p.payload) for p in publications if p.subject == LIU_YANG}


def _features(publications: list[Publication]) -> list[int]:
    return flatten(build_vectors(LOAN_LAYOUT, _sources(publications)))


def _plain_loan_score(wasm: bytes, publications: list[Publication]) -> int:
    """The narrator's check: the same module over the same inputs, run in this process."""
    return run_module(wasm, encode_input(build_vectors(LOAN_LAYOUT, _sources(publications))), "int").value
