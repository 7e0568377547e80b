"""The end-to-end demo (``make demo``): the mission brief's scenarios, played through the SDK.

It starts an embedded node (peer, record vault, HTTP API on loopback) on a fresh
data directory and plays every member with its own key — the Big Data Bureau
enrolls five residents, six agencies publish records about them — and then:

- scenario 1 (政保通): an insurer settles a car-accident claim, then a life
  claim whose proof of death a relative consents to for the deceased;
- scenario 2 (泉融通): a bank scores a small-business owner's loan with a
  sandboxed module and with an encrypted private model, and receives only the
  results (client/demo_loan.py);
- scenario 3: consents revoked, paused, used up, rate-limited and expired —
  every further access is refused with its reason, and the regulator sees it;
- scenario 5: a citizen has a wrong record corrected; the old version stays;
- scenario 4: the regulator audits the whole log, then ``qcl verify``
  rebuilds the stopped node's store from its blocks.

The exit code is 0 only when the ledger behaved as the brief says: every
expected refusal came with its code, the audit found no violation, and the
store verified. The demo never prints a national ID number.

    python -m client.demo [--data-dir D] [--port P]

Without ``--data-dir`` the store lives in a temporary directory, removed after
a successful run. With it, D is kept, and the residents' keys are saved as
wallets in D/wallets (passphrase "demo") so the ``qcl`` role commands can act
as them afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from client.citizen import SafeBox, SensitiveConfirmationNeeded
from client.consumer import Consumer
from client.demo_loan import loan_scenario
from client.demo_data import (
    BEIJING,
    CAST,
    CHEN_JING,
    LI_NA,
    LIU_YANG,
    RIGHT_BRAND,
    WANG_XIUYING,
    WRONG_BRAND,
    ZHANG_WEI,
    Person,
    Publication,
    agency_records,
    death_registration,
    describe,
)
from client.enrollment import enrollment_transaction, synthetic_national_id
from client.provider import Provider
from client.demo_narration import DemoFailed, clock_text, console, expect, granted, refused, show_access_log, step, table
from client.received import ReceiptError, ReceivedData
from client.regulator import Regulator, report_rows
from client.sdk import ApiError, LedgerClient, TransactionRefused
from client.wallet import save_wallet_key
from ledger.crypto import KeyPair
from ledger.identity import new_salt
from ledger.tx import build_transaction
from node.devnet import DEV_CATALOGUE
from node.embedded import EmbeddedNode, embedded_node
from node.runtime import clock_ms

REPO = Path(__file__).resolve().parents[1]
EXPECTED_REFUSALS = frozenset(
    {"consent_revoked", "consent_paused", "exhausted", "frequency", "consent_expired", "mode", "module_not_approved"}
)
SHORT_VALIDITY_MS = 4_000  # long enough to grant and use the consent first, short enough to watch it expire
WALLET_PASSPHRASE = "demo"  # the kept citizens' wallets: a development convenience, like the clear keys in D/keys



@dataclass(frozen=True)
class Members:
    """Every party of the story, each signing with its own key, each talking to the node through the SDK."""

    bureau: LedgerClient  # Jinan Big Data Bureau: identity authority (and custodian, running the node)
    keys: dict[Person, KeyPair]
    boxes: dict[Person, SafeBox]
    agencies: dict[str, Provider]
    insurer_client: LedgerClient
    insurer: Consumer
    bank: Consumer
    regulator: Regulator  # the People's Bank of China, Jinan branch

    @classmethod
    def connect(cls, node: EmbeddedNode, stack: ExitStack) -> Members:
        def client(key: KeyPair) -> LedgerClient:
            return stack.enter_context(LedgerClient(node.url, key=key))

        admin = node.config.admin_key
        keys = {person: KeyPair.generate() for person in CAST}
        insurer_client = client(admin("taiping-insurance"))
        return cls(
            bureau=client(admin("jinan-bigdata")),
            keys=keys,
            boxes={person: SafeBox(client(key), clock_ms) for person, key in keys.items()},
            agencies={org: Provider(client(admin(org)), clock_ms) for org in sorted({e["provider"] for e in DEV_CATALOGUE})},
            insurer_client=insurer_client,
            insurer=Consumer(insurer_client, clock_ms),
            bank=Consumer(client(admin("qilu-bank")), clock_ms),
            regulator=Regulator(client(admin("pbc-jinan"))),
        )

    def key_of(self, person: Person) -> bytes:
        return self.keys[person].public_key

    def who(self, subject_hex: str) -> str:
        return next(person.pinyin for person, key in self.keys.items() if key.public_key.hex() == subject_hex)


def show_received(*receipts: ReceivedData) -> None:
    rows = table("data type", "version", "content")
    for received in receipts:
        for record in received.records:
            rows.add_row(record["type"], str(record["version"]), describe(record["type"], record["payload"]))
    console.print(rows)
    indexes = ", ".join(str(received.log_index) for received in receipts)
    console.print(
        f"  [green]verified[/] before use: the access record (log index {indexes}) is in a checkpoint signed by "
        f"{receipts[-1].checkpoint.checkpoint.node_id} (inclusion proof checked against its root), and every record opens its "
        "on-chain commitment"
    )


def show_request(consent: dict[str, Any], title: str) -> None:
    """A consent request as the safe box shows it before the citizen answers."""
    terms = consent["terms"]
    valid_until = datetime.fromtimestamp(terms["valid_until"] / 1000, BEIJING).strftime("%Y-%m-%d %H:%M")
    card = Table.grid(padding=(0, 2))
    card.add_row("from", consent["consumer"])
    card.add_row("data", ", ".join(terms["data_types"]) + (" (sensitive)" if consent["sensitive_types"] else ""))
    card.add_row("purpose", f"{terms['purpose']['code']}: {terms['purpose']['text']}")
    card.add_row("limits", f"until {valid_until}, at most {terms['max_uses']} uses, "
                           f"{terms['frequency']['max']} per {terms['frequency']['per']}")
    card.add_row("legal basis", terms["legal_basis"])
    card.add_row("status", consent["status"])
    console.print(f"[bold]{title}[/]")
    console.print(card)


def publish(members: Members, publication: Publication) -> bytes:
    return members.agencies[publication.provider].publish(
        members.key_of(publication.subject), publication.data_type, publication.payload, as_of=publication.as_of_ms
    )


# --- the story ------------------------------------------------------------------


def setting(node: EmbeddedNode, members: Members, data_dir: Path) -> None:
    console.rule("[bold]Quancheng Ledger 泉城链 · demo")
    console.print("Government data on chain, citizens authorize on chain, society uses data on chain, the whole "
                  "process traced. The mission brief's scenarios 1, 2, 3, 5 and 4 follow.")
    step("The setting: a consortium of Jinan agencies, banks and regulators")
    network = members.bureau.network()
    console.print(f"An embedded node, {node.config.node_id}, serves {node.url} from {data_dir}. "
                  "This development consortium keeps every member's key in its keys/ directory.")
    orgs = table("organization", "name", "roles")
    for org in network["orgs"]:
        orgs.add_row(org["id"], org["name"], ", ".join(org["roles"]))
    console.print(orgs)
    console.print("Everyone below signs with their own key; every request to the node is signed too.")


def enroll(members: Members, wallet_dir: Path | None) -> None:
    step("Five residents get a digital safe box (数字保险箱)")
    rng = random.Random(2026)
    network = members.bureau.network_id
    envelopes = [
        enrollment_transaction(members.bureau.key, key, network, synthetic_national_id(rng), new_salt(), time_ms=clock_ms())
        for key in members.keys.values()
    ]
    results = members.bureau.submit(envelopes)
    expect(all(result["status"] == "committed" for result in results), f"an enrollment was refused: {results}")
    rows = table("resident", "part in the story", "key")
    for person, key in members.keys.items():
        rows.add_row(str(person), person.part, key.public_key.hex()[:16] + "…")
    console.print(rows)
    console.print("The Big Data Bureau (identity authority) enrolled them; each co-signed with their own key. "
                  "The ledger keeps a salted commitment of each ID number, never the number.")
    if wallet_dir is not None:
        for person, key in members.keys.items():
            save_wallet_key(wallet_dir / f"{person.handle}.wallet", key, WALLET_PASSPHRASE, label=person.pinyin, ops="interactive")
        console.print(f"Their keys are kept as wallets in {wallet_dir} (passphrase: {WALLET_PASSPHRASE}), to act as them later.")


def publish_records(members: Members, publications: list[Publication]) -> dict[tuple[Person, str], bytes]:
    step("The agencies publish what they hold")
    record_ids = {}
    rows = table("data type, agency", "about", "content")
    for publication in publications:
        record_ids[(publication.subject, publication.data_type)] = publish(members, publication)
        rows.add_row(f"{publication.data_type}\n[dim]{publication.provider}[/]", publication.subject.pinyin,
                     describe(publication.data_type, publication.payload))
    console.print(rows)
    console.print("Each payload is sealed by the agency for the custodian's vault; "
                  "only a salted fingerprint (commitment) of it goes on the ledger.")
    return record_ids


def car_claim(members: Members) -> tuple[bytes, int]:
    """Scenario 1: returns the consent (scenario 3 revokes it) and the log index of the first access (scenario 4 proves it)."""
    step("Scenario 1 · 政保通: a car-accident claim, settled with government data")
    zhang, subject = members.boxes[ZHANG_WEI], members.key_of(ZHANG_WEI)
    started = time.perf_counter()
    consent = members.insurer.request_consent(
        subject, ["vehicle.registration", "traffic.violation"], purpose_code="insurance.claim",
        purpose_text="claim TP-2026-0412: rear-end collision on 经十路", valid_days=7, contact="95589 · claims@taiping.example",
    )
    console.print("taiping-insurance asks Zhang Wei for his vehicle registration and traffic record, for 7 days.")
    pending = zhang.pending()
    expect(len(pending) == 1, f"Zhang Wei's safe box shows {len(pending)} pending requests")
    show_request(pending[0], "Zhang Wei's safe box: a request waiting for his answer")
    zhang.grant(consent)
    status = zhang.consent(consent)["status"]
    expect(status == "active", f"the car-claim consent is {status} after the grant")
    console.print(f"Zhang Wei grants it (his key signs the hash of exactly these terms): consent granted, now [green]{status}[/]")
    vehicle = granted("Taiping fetches the vehicle registration",
                      lambda: members.insurer.fetch(consent, subject, ["vehicle.registration"]))
    traffic = granted("Taiping fetches the traffic record",
                      lambda: members.insurer.fetch(consent, subject, ["traffic.violation"]))
    show_received(vehicle, traffic)
    car, driver = vehicle.records[0]["payload"], traffic.records[0]["payload"]
    approve = car["status"] == "normal" and driver["points"] < 12
    console.print(f"Taiping decides: {'[green]claim approved[/]' if approve else '[yellow]sent to an assessor[/]'} "
                  f"{time.perf_counter() - started:.1f} s after asking (Jinan's fastest real claim: 2 minutes)")
    log = zhang.access_log()
    show_access_log(members.who, log, "Zhang Wei's access log, as his safe box shows it")
    expect(sum(entry.get("consumer") == "taiping-insurance" and entry["outcome"] == "granted" for entry in log) == 2,
           "Zhang Wei's log does not show Taiping's two accesses")
    return consent, vehicle.log_index


def life_claim(members: Members, today: date, rng: random.Random) -> None:
    step("Scenario 1 · a life claim: the beneficiary consents for the deceased")
    wang, li = members.key_of(WANG_XIUYING), members.keys[LI_NA]
    death = death_registration(today, rng)
    publish(members, death)
    console.print(f"jinan-civil registers Wang Xiuying's death: {describe(death.data_type, death.payload)}.")
    relation = build_transaction(members.bureau.key, members.bureau.network_id, "citizen.relate",
                                 {"citizen": wang, "relative": li.public_key, "relation": "child"},
                                 time_ms=clock_ms(), cosigners=[li])
    members.bureau.commit(relation)
    console.print("The Big Data Bureau (household registration) records that Li Na is her daughter; Li Na co-signs.")
    consent = members.insurer.request_consent(
        wang, ["civil.death_registration"], purpose_code="insurance.claim", purpose_text="life policy TPL-88213: death benefit",
        valid_days=30, contact="95589 · claims@taiping.example", grantor=li.public_key,
    )
    box = members.boxes[LI_NA]
    pending = box.pending()
    expect(len(pending) == 1, f"Li Na's safe box shows {len(pending)} pending requests")
    show_request(pending[0], "Li Na's safe box: a request about her late mother's data, for her to answer")
    console.print("(PIPL art. 49 lets a close relative act for the deceased; the ledger allows it only for the death "
                  "registration, only once a death is registered, and only to a registered relative.)")
    try:
        box.grant(consent)
    except SensitiveConfirmationNeeded as needed:
        console.print(f"Li Na taps 'grant' and her safe box stops her: [yellow]{needed}[/]")
    else:
        raise DemoFailed("a consent to a sensitive data type was granted without its separate confirmation")
    box.grant(consent, confirm_sensitive=True)
    status = box.consent(consent)["status"]
    expect(status == "active", f"the life-claim consent is {status} after the confirmed grant")
    console.print("She confirms the sensitive type separately (the confirmation is signed into the grant): "
                  f"consent granted, now [green]{status}[/]")
    received = granted("Taiping fetches the death registration", lambda: members.insurer.fetch(consent, wang))
    show_received(received)
    console.print("Taiping decides: [green]death benefit payable to Li Na[/] — no paper certificate needed.")


def refusals(members: Members, car_consent: bytes) -> None:
    step("Scenario 3 · revoked, paused, used up, too often, expired: refused")
    zhang, liu, chen = members.key_of(ZHANG_WEI), members.key_of(LIU_YANG), members.key_of(CHEN_JING)
    short, valid_until = short_lived_consent(members, zhang)
    members.boxes[ZHANG_WEI].grant(short)
    console.print(f"Taiping asks Zhang Wei for a renewal quote under a consent valid for {SHORT_VALIDITY_MS // 1000} seconds, "
                  f"until {clock_text(valid_until)} (the SDK counts validity in days, so Taiping signs these terms "
                  "itself). He grants it.")
    granted("Taiping fetches the vehicle registration for the quote", lambda: members.insurer.fetch(short, zhang))

    console.print("[bold]Revocation[/] · Zhang Wei revokes the car-claim consent in his safe box.")
    members.boxes[ZHANG_WEI].revoke(car_consent)
    refused("consent_revoked", "Taiping fetches again", lambda: members.insurer.fetch(car_consent, zhang))

    console.print("[bold]Pause, resume, frequency limit[/] · Qilu Bank checks Liu Yang's business licence for a loan "
                  "(at most twice a day); he grants it.")
    loan = members.bank.request_consent(
        liu, ["market.business_licence"], purpose_code="loan.application", purpose_text="泉融通 business loan application",
        valid_days=30, contact="95538 · loans@qilubank.example", frequency=(2, "day"),
    )
    members.boxes[LIU_YANG].grant(loan)
    granted("Qilu Bank fetches (1st today)", lambda: members.bank.fetch(loan, liu))
    members.boxes[LIU_YANG].pause(loan)
    console.print("  Liu Yang pauses the consent.")
    refused("consent_paused", "Qilu Bank fetches", lambda: members.bank.fetch(loan, liu))
    members.boxes[LIU_YANG].resume(loan)
    console.print("  Liu Yang resumes it.")
    granted("Qilu Bank fetches (2nd today)", lambda: members.bank.fetch(loan, liu))
    refused("frequency", "Qilu Bank fetches a 3rd time today", lambda: members.bank.fetch(loan, liu))

    console.print("[bold]Use limit[/] · 保医通: Taiping settles Chen Jing's health claim with one look at her "
                  "medical-insurance settlements (a sensitive type: she confirms it separately).")
    health = members.insurer.request_consent(
        chen, ["medical.claims"], purpose_code="insurance.claim", purpose_text="commercial health claim TPH-5570",
        valid_days=7, contact="95589 · claims@taiping.example", max_uses=1,
    )
    members.boxes[CHEN_JING].grant(health, confirm_sensitive=True)
    granted("Taiping fetches (its one use)", lambda: members.insurer.fetch(health, chen))
    refused("exhausted", "Taiping fetches again", lambda: members.insurer.fetch(health, chen))

    console.print(f"[bold]Expiry[/] · the renewal-quote consent ends at {clock_text(valid_until)}; nobody revokes it.")
    time.sleep(max(0.0, (valid_until - clock_ms()) / 1000 + 0.05))
    refused("consent_expired", "Taiping fetches after it ended", lambda: members.insurer.fetch(short, zhang))

    refusals_seen = members.regulator.accesses(outcome="refused")
    rows = table("log", "consumer", "citizen", "data types", "reason", title="What the regulator (pbc-jinan) sees: every refusal")
    for entry in refusals_seen:
        rows.add_row(str(entry["log_index"]), entry["consumer"], members.who(entry["subject"]), "\n".join(entry["data_types"]),
                     f"[red]{entry['reason']}[/]")
    console.print(rows)
    reasons = {entry["reason"] for entry in refusals_seen}
    expect(reasons == EXPECTED_REFUSALS, f"the regulator sees refusals {sorted(reasons)}, expected {sorted(EXPECTED_REFUSALS)}")


def short_lived_consent(members: Members, subject: bytes) -> tuple[bytes, int]:
    """A consent.request valid for SHORT_VALIDITY_MS, signed by the insurer (Consumer.request_consent takes whole days)."""
    now = clock_ms()
    terms = {
        "consent_id": os.urandom(16),
        "subject": subject,
        "data_types": ["vehicle.registration"],
        "purpose": {"code": "insurance.quote", "text": "car policy renewal quote"},
        "mode": "raw",
        "data_from": 0,
        "data_until": now,
        "valid_from": now,
        "valid_until": now + SHORT_VALIDITY_MS,
        "max_uses": 3,
        "frequency": {"max": 3, "per": "hour"},
        "data_life_days": 1,
        "legal_basis": "pipl-13.1-consent",
        "contact": "95589 · renewals@taiping.example",
    }
    client = members.insurer_client
    client.commit(build_transaction(client.key, client.network_id, "consent.request", terms, time_ms=now))
    return terms["consent_id"], terms["valid_until"]


def correction(members: Members, record_id: bytes) -> None:
    step("Scenario 5 · a wrong record corrected; the old version stays on the ledger")
    box, psb = members.boxes[ZHANG_WEI], members.agencies["jinan-psb"]
    mine = box.open_my_data(["vehicle.registration"]).records[0]
    console.print(f"Zhang Wei opens his own data (a self-view, logged like any access): the registry says his car is a "
                  f"{mine['payload']['brand']}, but it is a {RIGHT_BRAND}.")
    request = box.request_correction(record_id, f"my car is a {RIGHT_BRAND}, not a {WRONG_BRAND}; purchase invoice attached")
    expect(any(item["request_id"] == request.hex() for item in psb.corrections(status="open")),
           "jinan-psb does not see the open correction request")
    console.print("He files a correction request; jinan-psb finds it among its open requests, checks, and publishes "
                  "version 2 answering it.")
    psb.correct(record_id, {**mine["payload"], "brand": RIGHT_BRAND}, as_of=mine["as_of"], request_id=request)
    record = next(item for item in box.records() if item["record_id"] == record_id.hex())
    rows = table("version", "status", "on the ledger at log index", "commitment")
    for version in record["versions"]:
        rows.add_row(str(version["version"]), version["status"], str(version["log_index"]), version["commitment"][:16] + "…")
    console.print(rows)
    states = [(version["version"], version["status"]) for version in record["versions"]]
    expect(states == [(1, "superseded"), (2, "current")], f"the record's versions are {states}")
    answer = next(item for item in psb.corrections() if item["request_id"] == request.hex())
    expect(answer["status"] == "corrected", f"the correction request is {answer['status']}")
    now_mine = box.open_my_data(["vehicle.registration"]).records[0]
    expect(now_mine["payload"]["brand"] == RIGHT_BRAND, "the corrected brand is not what the citizen now sees")
    console.print(f"Version 2 current, version 1 superseded (still on the ledger). The request is {answer['status']}; "
                  f"Zhang Wei's data now says {now_mine['payload']['brand']} (version {now_mine['version']}).")


def audit(members: Members, proof_index: int) -> None:
    step("Scenario 4 · the regulator audits the whole log")
    outcome = members.regulator.audit()
    summary = outcome.summary()
    console.print(f"pbc-jinan downloaded all {summary['entries']} log entries and recomputed the root from them: it matches "
                  f"the checkpoint signed by {outcome.checkpoint_node} (root {outcome.root_hash.hex()[:16]}…).")
    console.print("It replayed every transaction from genesis and judged each access against its consent as it stood then:")
    counts = table("accesses checked", "granted", "(own views)", "refused", "violations")
    counts.add_row(str(summary["accesses_checked"]), str(summary["accesses_granted"]), str(summary["self_views"]),
                   str(summary["refusals"]), f"[{'green' if summary['violations'] == 0 else 'red'}]{summary['violations']}[/]")
    console.print(counts)
    console.print("refusal reasons: " + ", ".join(f"{reason} {count}" for reason, count in sorted(summary["refusal_reasons"].items())))
    proof = members.regulator.prove_access(proof_index)
    console.print(f"inclusion proof of the access record at log index {proof_index} (Taiping's first fetch) against the "
                  f"signed root of size {proof['tree_size']}: [green]valid[/]")
    rows = table("by", "name", "granted", "refused")
    for row in report_rows(outcome.compliance):
        rows.add_row(row["dimension"], row["name"], str(row["granted"]), str(row["refused"]))
    console.print(rows)
    expect(summary["violations"] == 0, f"the audit found violations: {summary['violation_list']}")
    expect(summary["accesses_granted"] > 0 and summary["refusals"] > 0, "the audit saw no granted access or no refusal")
    expect(set(summary["refusal_reasons"]) == EXPECTED_REFUSALS, f"the audit's refusal reasons are {summary['refusal_reasons']}")
    console.print(f"violations {summary['violations']}: every granted access was covered by a valid consent")


def verify(data_dir: Path) -> None:
    step("qcl verify: rebuild the stopped node's store from its blocks")
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", "verify", "--data-dir", str(data_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    console.print(result.stdout.strip() or result.stderr.strip(), markup=False, highlight=False)
    expect(result.returncode == 0, f"qcl verify exited with {result.returncode}: {result.stderr.strip()[-500:]}")


def keep_exploring(data_dir: Path | None) -> None:
    step("Keep exploring")
    if data_dir is None:
        data_dir = Path("demo-data")
        console.print("This run's store was temporary and is gone. To keep it, run")
        console.print(f'  make demo DEMO_ARGS="--data-dir {data_dir}"', soft_wrap=True, highlight=False)
        console.print("and then:")
    else:
        console.print(f"The store is kept in {data_dir}. Serve it again, and act as any member from another terminal:")
    wallets = data_dir / "wallets"
    commands = (
        f"qcl node start --data-dir {data_dir}",
        f"export QCL_PASSPHRASE={WALLET_PASSPHRASE}",
        f"qcl citizen log --wallet {wallets}/zhang-wei.wallet",
        f"qcl citizen records --wallet {wallets}/zhang-wei.wallet",
        f"qcl wallet import-dev --data-dir {data_dir} --org pbc-jinan --out pbc.wallet",
        "qcl regulator accesses --wallet pbc.wallet --outcome refused",
    )
    for command in commands:
        console.print(f"  {'.venv/bin/' if command.startswith('qcl') else ''}{command}", soft_wrap=True, highlight=False)
    console.print("With the node stopped:")
    for command in (f"qcl regulator audit --data-dir {data_dir} --json", f"qcl verify --data-dir {data_dir}"):
        console.print(f"  .venv/bin/{command}", soft_wrap=True, highlight=False)


def run(data_dir: Path, *, port: int | None, wallet_dir: Path | None) -> None:
    today = datetime.now(BEIJING).date()
    rng = random.Random(today.toordinal())
    with embedded_node(data_dir, port=port) as node, ExitStack() as stack:
        members = Members.connect(node, stack)
        setting(node, members, data_dir)
        enroll(members, wallet_dir)
        publications = agency_records(today, rng)
        record_ids = publish_records(members, publications)
        car_consent, first_access = car_claim(members)
        life_claim(members, today, rng)
        loan_scenario(members, publications)
        refusals(members, car_consent)
        correction(members, record_ids[(ZHANG_WEI, "vehicle.registration")])
        audit(members, first_access)
    verify(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description="Quancheng Ledger end-to-end demo")
    parser.add_argument("--data-dir", type=Path, help="keep the store here (default: a temporary directory, removed at the end)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port of the embedded node (default: a free one)")
    args = parser.parse_args()
    if args.data_dir is not None and args.data_dir.exists() and any(args.data_dir.iterdir()):
        raise SystemExit(f"{args.data_dir} is not empty; the demo needs a fresh data directory")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="qcl-demo-"))
    started = time.perf_counter()
    try:
        run(data_dir, port=args.port, wallet_dir=None if args.data_dir is None else data_dir / "wallets")
    except (DemoFailed, ApiError, TransactionRefused, ReceiptError) as failure:
        console.print(f"\n[bold red]demo failed:[/] {failure}\nthe store is kept in {data_dir} for inspection")
        raise SystemExit(1)
    if args.data_dir is None:
        shutil.rmtree(data_dir)
    keep_exploring(args.data_dir)
    console.print(f"\n[bold green]All scenarios behaved as expected[/] in {time.perf_counter() - started:.1f} s.")


if __name__ == "__main__":
    main()
