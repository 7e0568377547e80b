"""The README's main command plays the brief's scenarios end to end, and the ledger it leaves says so by itself.

The demo runs as a real subprocess. Its narration is checked for the facts a
newcomer is told; then the kept data directory is reopened and the regulator's
audit, the consents and the corrected record are read back through the SDK,
so the counts are checked independently of anything the demo printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from typer.testing import CliRunner

from client.cli import app
from client.demo_data import RIGHT_BRAND
from client.provider import Provider
from client.regulator import AuditOutcome, Regulator
from client.sdk import LedgerClient
from client.wallet import load_wallet_key
from node.embedded import embedded_node
from node.runtime import clock_ms
from processes import REPO, run_verify

pytestmark = pytest.mark.slow

REFUSALS = ("consent_revoked", "consent_paused", "frequency", "exhausted", "consent_expired", "mode", "module_not_approved")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    data_dir = tmp_path_factory.mktemp("demo") / "store"
    result = subprocess.run(
        [sys.executable, "-m", "client.demo", "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
        env={**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, data_dir


@pytest.fixture
def reopened(demo: tuple[subprocess.CompletedProcess[str], Path]) -> Iterator[tuple[Regulator, Provider, str]]:
    """The regulator and a provider on the kept store, and the reopened node's URL."""
    _, data_dir = demo
    with embedded_node(data_dir) as node:
        regulator = LedgerClient(node.url, key=node.config.admin_key("pbc-jinan"))
        psb = LedgerClient(node.url, key=node.config.admin_key("jinan-psb"))
        with regulator, psb:
            yield Regulator(regulator), Provider(psb, clock_ms), node.url


def test_the_narration_tells_the_key_facts(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    out = demo[0].stdout
    assert out.count("consent granted, now active") == 2  # the car claim and the life claim
    assert "safe box stops her" in out  # the sensitive type needed its separate confirmation
    for code in REFUSALS:
        assert f"refused {code} (HTTP 403)" in out, f"the demo does not show the refusal {code}"
    assert "Version 2 current, version 1 superseded" in out
    assert "the bank runs the approved module over Liu Yang's records: granted" in out
    assert "same as the receipt" in out  # the regulator's sandbox re-run matched
    assert "refused module_refused" in out  # the module importing a host function
    assert "violations 0" in out
    assert "OK — " in out  # qcl verify's verdict
    assert "All scenarios behaved as expected" in out
    assert not re.search(r"\d{17}[\dX]", out), "the demo printed something shaped like a national ID number"


def test_the_kept_ledger_audits_clean_with_every_refusal_on_it(reopened: tuple[Regulator, Provider, str]) -> None:
    outcome: AuditOutcome = reopened[0].audit()
    report = outcome.compliance
    assert report.violations == []
    assert dict(report.refusal_reasons) == {code: 1 for code in REFUSALS}
    # 7 consented fetches, 2 computations for the loan, 2 of Zhang Wei's own views
    assert report.granted == 11 and report.self_views == 2
    assert {name: dict(counts) for name, counts in report.by_consumer.items()} == {
        "taiping-insurance": {"granted": 5, "refused": 3},
        "qilu-bank": {"granted": 4, "refused": 4},
        "(subject's own view)": {"granted": 2},
    }


def test_the_kept_ledger_holds_the_consents_in_their_final_states(reopened: tuple[Regulator, Provider, str]) -> None:
    consents = reopened[0].consents()
    assert len(consents) == 6
    assert {(c["consumer"], c["terms"]["purpose"]["code"], c["status"]) for c in consents} == {
        ("taiping-insurance", "insurance.claim", "revoked"),  # the car claim
        ("taiping-insurance", "insurance.claim", "active"),  # the life claim
        ("taiping-insurance", "insurance.claim", "exhausted"),  # the health claim, one use
        ("taiping-insurance", "insurance.quote", "expired"),  # nobody revoked it: its validity ended
        ("qilu-bank", "loan.application", "active"),  # paused, resumed, then rate-limited
        ("qilu-bank", "loan.credit-score", "active"),  # computed results only (scenario 2)
    }
    life = next(c for c in consents if c["terms"]["legal_basis"] == "pipl-49-next-of-kin")
    assert life["grantor"] != life["terms"]["subject"] and life["sensitive_types"] == ["civil.death_registration"]


def test_the_corrected_record_keeps_its_superseded_version(reopened: tuple[Regulator, Provider, str]) -> None:
    psb = reopened[1]
    vehicle = next(record for record in psb.records() if record["type"] == "vehicle.registration")
    assert [(v["version"], v["status"]) for v in vehicle["versions"]] == [(1, "superseded"), (2, "current")]
    assert [(c["status"], c.get("new_version")) for c in psb.corrections()] == [("corrected", 2)]
    assert RIGHT_BRAND in psb.corrections()[0]["reason"]


def test_the_kept_wallets_hold_the_residents_keys(
    demo: tuple[subprocess.CompletedProcess[str], Path], reopened: tuple[Regulator, Provider]
) -> None:
    zhang = load_wallet_key(demo[1] / "wallets" / "zhang-wei.wallet", "demo")  # the passphrase the demo prints
    vehicle = next(record for record in reopened[1].records() if record["type"] == "vehicle.registration")
    assert vehicle["subject"] == zhang.public_key.hex()


def test_the_kept_store_verifies(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result = run_verify(demo[1])
    assert result.returncode == 0, result.stdout[-2000:]


def test_the_kept_ledger_holds_scenario_2s_computations_and_they_replay(
    demo: tuple[subprocess.CompletedProcess[str], Path], reopened: tuple[Regulator, Provider, str], tmp_path: Path
) -> None:
    regulator, _, url = reopened
    assert dict(regulator.audit().compliance.computations) == {"sandbox": 1, "he_score": 1}
    (sandbox,) = [a for a in regulator.accesses(consumer="qilu-bank", outcome="granted") if (a.get("computation") or {}).get("kind") == "sandbox"]
    assert regulator.replay_computation(sandbox["log_index"])["matches"]
    # the same through the CLI, as a regulator would run it
    env = {"QCL_PASSPHRASE": "x", "QCL_URL": url}
    wallet = tmp_path / "pbc.wallet"
    runner = CliRunner()
    imported = runner.invoke(app, ["wallet", "import-dev", "--data-dir", str(demo[1]), "--org", "pbc-jinan", "--out", str(wallet),
                                   "--kdf-cost", "interactive"], env=env)
    assert imported.exit_code == 0, imported.stdout
    replayed = runner.invoke(app, ["regulator", "replay", str(sandbox["log_index"]), "--wallet", str(wallet), "--json"], env=env)
    assert replayed.exit_code == 0, replayed.stdout + replayed.stderr
    assert '"matches": true' in replayed.stdout
