"""The role CLIs (``qcl wallet|citizen|provider|consumer|regulator``) against a real embedded node.

One node per module (LevelDB + HTTP on loopback); every member acts through a
wallet file, as a real user would. Wallets use the fast Argon2id cost.
"""

from __future__ import annotations

import json
import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import typer
from typer.testing import CliRunner, Result

from client.cli import app
from client.citizen import SafeBox
from client.consumer import Consumer
from client.enrollment import enrollment_transaction, synthetic_national_id
from client.sdk import ApiError, LedgerClient
from client.wallet import load_wallet_key
from ledger.crypto import KeyPair
from node.embedded import EmbeddedNode, embedded_node
from node.runtime import clock_ms

PASSPHRASE = "correct horse battery staple"
ORGS = ("jinan-psb", "jinan-medins", "taiping-insurance", "jinan-bigdata")
VEHICLE = {"plate": "鲁A12345", "vehicle_type": "car", "brand": "BYD", "registered": "2021-03-04", "status": "normal"}
CLAIMS = {"year": 2024, "visits": 3, "total_cost": 123_400, "reimbursed": 80_000}

runner = CliRunner()


def qcl(env: dict[str, Any], *args: str, code: int = 0) -> Result:
    """Run ``qcl args``; check the exit code, and that a failure follows the error contract rather than crashing."""
    result = runner.invoke(app, list(args), env=env)
    shown = f"qcl {' '.join(args)} exited {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.exit_code == code, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    if code == 1:
        assert result.stderr.startswith("error "), shown
    return result


def qcl_json(env: dict[str, Any], *args: str) -> Any:
    return json.loads(qcl(env, *args, "--json").stdout)


@dataclass(frozen=True)
class Network:
    node: EmbeddedNode
    env: dict[str, Any]
    wallets: dict[str, str]
    citizen: str

    def as_(self, who: str) -> tuple[str, str]:
        return "--wallet", self.wallets[who]


def enroll(node: EmbeddedNode, citizen: KeyPair, seed: int) -> None:
    authority = node.config.admin_key("jinan-bigdata")
    with LedgerClient(node.url, key=authority) as bureau:
        national_id = synthetic_national_id(random.Random(seed))
        bureau.commit(enrollment_transaction(authority, citizen, bureau.network_id, national_id, os.urandom(32), time_ms=clock_ms()))


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    root = tmp_path_factory.mktemp("cli")
    with embedded_node(root / "node") as node:
        env = {"QCL_URL": node.url, "QCL_PASSPHRASE": PASSPHRASE, "QCL_WALLET": None, "COLUMNS": "200"}
        wallets = {}
        for org in ORGS:
            wallets[org] = str(root / f"{org}.wallet")
            qcl(env, "wallet", "import-dev", "--data-dir", str(root / "node"), "--org", org, "--out", wallets[org], "--kdf-cost", "interactive")
        wallets["citizen"] = str(root / "citizen.wallet")
        created = qcl_json(env, "wallet", "create", "--out", wallets["citizen"], "--label", "Zhang Wei", "--kdf-cost", "interactive")
        enroll(node, load_wallet_key(Path(wallets["citizen"]), PASSPHRASE), seed=1)
        yield Network(node, env, wallets, created["public_key"])


def publish(net: Network, provider: str, data_type: str, payload: dict[str, Any]) -> str:
    return qcl_json(
        net.env, "provider", "publish", *net.as_(provider), "--subject", net.citizen, "--type", data_type,
        "--as-of", "2025-01-31", "--payload-json", json.dumps(payload),
    )["record_id"]


def test_every_command_has_help(network: Network) -> None:
    root = typer.main.get_command(app)
    for group in ("wallet", "citizen", "provider", "consumer", "regulator"):
        assert "Usage" in qcl(network.env, group, "--help").stdout
        for command in root.commands[group].commands:
            assert "Usage" in qcl(network.env, group, command, "--help").stdout


def test_wallet_create_show_and_a_wrong_passphrase(network: Network, tmp_path: Path) -> None:
    path = str(tmp_path / "alice.wallet")
    created = qcl_json(network.env, "wallet", "create", "--out", path, "--label", "alice", "--kdf-cost", "interactive")
    no_passphrase = {**network.env, "QCL_PASSPHRASE": None}
    assert qcl_json(no_passphrase, "wallet", "show", path) == {"path": path, "public_key": created["public_key"], "label": "alice"}
    assert PASSPHRASE not in Path(path).read_text()
    qcl(network.env, "wallet", "create", "--out", path, code=2)  # never overwrites a key

    wrong = qcl({**network.env, "QCL_PASSPHRASE": "not it"}, "citizen", "records", *network.as_("citizen"), code=1)
    assert "error wallet: wrong passphrase" in wrong.stderr
    prompted = runner.invoke(app, ["citizen", "records", *network.as_("citizen"), "--json"], env=no_passphrase, input=f"{PASSPHRASE}\n")
    assert prompted.exit_code == 0, prompted.stderr
    assert isinstance(json.loads(prompted.stdout), list)  # the prompt goes to stderr
    assert "Passphrase" in prompted.stderr and PASSPHRASE not in prompted.stdout + prompted.stderr


def test_published_record_shows_in_the_citizens_records(network: Network) -> None:
    record_id = publish(network, "jinan-psb", "vehicle.registration", VEHICLE)
    mine = qcl_json(network.env, "citizen", "records", *network.as_("citizen"))
    assert {(r["record_id"], r["type"], r["provider"]) for r in mine} >= {(record_id, "vehicle.registration", "jinan-psb")}
    assert record_id in qcl(network.env, "citizen", "records", *network.as_("citizen")).stdout
    assert record_id in [r["record_id"] for r in qcl_json(network.env, "provider", "records", *network.as_("jinan-psb"))]

    opened = qcl_json(network.env, "citizen", "open", *network.as_("citizen"), "--type", "vehicle.registration")
    assert VEHICLE in [record["payload"] for record in opened["records"]]


def test_bad_arguments_exit_2(network: Network) -> None:
    base = ("provider", "publish", *network.as_("jinan-psb"), "--subject", network.citizen, "--type", "vehicle.registration")
    qcl(network.env, *base, "--as-of", "2025-01-31", "--payload-json", "[1, 2]", code=2)
    qcl(network.env, *base, "--as-of", "2025-01-31", code=2)  # no payload
    qcl(network.env, *base, "--as-of", "last tuesday", "--payload-json", "{}", code=2)
    qcl(network.env, "citizen", "grant", "not-hex", *network.as_("citizen"), code=2)
    qcl(network.env, "citizen", "grant", "abcd", *network.as_("citizen"), code=2)  # hex, but not 16 bytes


def test_consent_from_request_to_revocation(network: Network, tmp_path: Path) -> None:
    env, citizen = network.env, network.as_("citizen")
    publish(network, "jinan-psb", "vehicle.registration", VEHICLE)
    publish(network, "jinan-medins", "medical.claims", CLAIMS)
    consent_id = qcl_json(
        env, "consumer", "request", *network.as_("taiping-insurance"), "--subject", network.citizen,
        "--type", "vehicle.registration", "--type", "medical.claims", "--purpose", "insurance.claim",
        "--purpose-text", "car accident claim", "--days", "7", "--contact", "claims@taiping.example",
    )["consent_id"]
    assert consent_id in [c["consent_id"] for c in qcl_json(env, "citizen", "pending", *citizen)]

    refused = qcl(env, "citizen", "grant", consent_id, *citizen, code=1)
    assert "SENSITIVE data types" in refused.stdout and "medical.claims" in refused.stdout
    assert "error sensitive_confirmation_needed:" in refused.stderr
    assert consent_id in [c["consent_id"] for c in qcl_json(env, "citizen", "pending", *citizen)]
    qcl(env, "citizen", "grant", consent_id, *citizen, "--confirm-sensitive")
    assert consent_id not in [c["consent_id"] for c in qcl_json(env, "citizen", "pending", *citizen)]

    receipt = tmp_path / "receipt.json"
    fetched = qcl(env, "consumer", "fetch", consent_id, *network.as_("taiping-insurance"), "--subject", network.citizen,
                  "--receipt-out", str(receipt))
    assert "鲁A12345" in fetched.stdout and "total_cost" in fetched.stdout
    kept = json.loads(receipt.read_text())
    assert set(kept) == {"access", "access_record", "block_header", "result_hash", "checkpoint", "audit_path"}

    log_index = kept["access"]["log_index"]
    entry = next(a for a in qcl_json(env, "citizen", "log", *citizen) if a["log_index"] == log_index)
    assert (entry["consumer"], entry["outcome"], entry["consent_id"], entry["purpose"]) == (
        "taiping-insurance", "granted", consent_id, "insurance.claim")
    proof = qcl_json(env, "regulator", "prove", str(log_index), *network.as_("jinan-bigdata"))
    assert proof["log_index"] == log_index and proof["tree_size"] > log_index

    qcl(env, "citizen", "revoke", consent_id, *citizen)
    again = qcl(env, "consumer", "fetch", consent_id, *network.as_("taiping-insurance"), "--subject", network.citizen, code=1)
    assert again.stderr.startswith("error consent_revoked:")
    refusal = qcl_json(env, "consumer", "accesses", *network.as_("taiping-insurance"))[-1]
    assert (refusal["outcome"], refusal["reason"], refusal["consent_id"]) == ("refused", "consent_revoked", consent_id)


def test_correction_request_answered_by_a_new_version(network: Network) -> None:
    env = network.env
    record_id = publish(network, "jinan-psb", "vehicle.registration", VEHICLE)
    request_id = qcl_json(env, "citizen", "correct", record_id, *network.as_("citizen"), "--reason", "the brand is wrong")["request_id"]
    assert request_id in [c["request_id"] for c in qcl_json(env, "provider", "corrections", *network.as_("jinan-psb"), "--status", "open")]

    fixed = {**VEHICLE, "brand": "Geely"}
    corrected = qcl_json(env, "provider", "correct", record_id, *network.as_("jinan-psb"), "--payload-json", json.dumps(fixed),
                         "--request", request_id)
    assert corrected["version"] == 2
    record = next(r for r in qcl_json(env, "citizen", "records", *network.as_("citizen")) if r["record_id"] == record_id)
    assert [v["status"] for v in record["versions"]] == ["superseded", "current"]
    assert request_id in [c["request_id"] for c in qcl_json(env, "provider", "corrections", *network.as_("jinan-psb"), "--status", "corrected")]

    second = qcl_json(env, "citizen", "correct", record_id, *network.as_("citizen"), "--reason", "still wrong")["request_id"]
    qcl(env, "provider", "reject-correction", second, *network.as_("jinan-psb"), "--note", "checked against the register")
    qcl(env, "provider", "reject-correction", second, *network.as_("jinan-psb"), "--note", "twice", code=1)  # already answered
    qcl(env, "provider", "withdraw", record_id, *network.as_("jinan-psb"), "--reason", "vehicle deregistered")
    withdrawn = next(r for r in qcl_json(env, "provider", "records", *network.as_("jinan-psb")) if r["record_id"] == record_id)
    assert withdrawn["status"] == "withdrawn"


def test_regulator_audit_counts_accesses_and_refusals(network: Network, tmp_path: Path) -> None:
    env, regulator = network.env, network.as_("jinan-bigdata")
    qcl(env, "citizen", "open", *network.as_("citizen"))  # a granted access (the citizen's own view)
    unknown = qcl(env, "consumer", "fetch", "00" * 16, *network.as_("taiping-insurance"), "--subject", network.citizen,
                  "--type", "vehicle.registration", code=1)
    assert unknown.stderr.startswith("error no_consent:")

    csv_file = tmp_path / "report.csv"
    summary = qcl_json(env, "regulator", "audit", *regulator, "--csv", str(csv_file))
    assert summary["log_root_recomputed"] is True
    assert summary["violations"] == 0 and summary["accesses_granted"] > 0 and summary["refusals"] > 0
    assert summary["refusal_reasons"]["no_consent"] >= 1
    assert csv_file.read_text().splitlines()[0] == "dimension,name,granted,refused"
    assert "taiping-insurance" in csv_file.read_text()
    assert "violations 0" in qcl(env, "regulator", "audit", *regulator).stdout

    refusals = qcl_json(env, "regulator", "accesses", *regulator, "--outcome", "refused", "--consumer", "taiping-insurance")
    assert refusals and {a["outcome"] for a in refusals} == {"refused"}
    assert {c["consumer"] for c in qcl_json(env, "regulator", "consents", *regulator, "--subject", network.citizen)} <= {"taiping-insurance"}
    qcl(env, "regulator", "audit", code=2)  # neither a wallet nor a data directory


def test_citizen_log_follow_prints_an_access_as_it_happens(network: Network) -> None:
    seen = qcl_json(network.env, "citizen", "log", *network.as_("citizen"))
    after = str(seen[-1]["log_index"]) if seen else "0"
    followed: list[Result] = []
    follower = threading.Thread(
        target=lambda: followed.append(
            runner.invoke(app, ["citizen", "log", *network.as_("citizen"), "--follow", "--json", "--max", "1", "--after", after], env=network.env)
        )
    )
    follower.start()
    with LedgerClient(network.node.url, key=load_wallet_key(Path(network.wallets["citizen"]), PASSPHRASE)) as client:
        opened = SafeBox(client, clock_ms).open_my_data()
    follower.join(timeout=120)
    assert not follower.is_alive(), "the follower did not see the access"
    assert followed[0].exit_code == 0, followed[0].stderr
    entry = json.loads(followed[0].stdout.strip())
    assert (entry["log_index"], entry["purpose"], entry["outcome"]) == (opened.log_index, "subject.view", "granted")


def test_audit_data_dir_shortcut_on_a_stopped_node(network: Network, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    with embedded_node(data_dir) as node:
        citizen = KeyPair.generate()
        enroll(node, citizen, seed=2)
        with LedgerClient(node.url, key=citizen) as client:
            SafeBox(client, clock_ms).open_my_data(["vehicle.registration"])
        with LedgerClient(node.url, key=node.config.admin_key("qilu-bank")) as bank, pytest.raises(ApiError):
            Consumer(bank, clock_ms).fetch(os.urandom(16), citizen.public_key, ["vehicle.registration"])
    summary = qcl_json({}, "regulator", "audit", "--data-dir", str(data_dir))
    assert (summary["accesses_granted"], summary["refusals"], summary["violations"]) == (1, 1, 0)

    qcl({}, "regulator", "audit", "--data-dir", str(data_dir), "--url", network.node.url, code=2)
    qcl({}, "regulator", "audit", "--data-dir", str(tmp_path / "nothing"), code=2)
    running = qcl({}, "regulator", "audit", "--data-dir", str(network.node.config.data_dir), code=1)
    assert running.stderr.startswith("error unavailable:")
