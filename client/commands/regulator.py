"""``qcl regulator``: read every access and consent, audit the whole log, prove any access record,
re-run any recorded sandbox computation.

``audit`` runs :meth:`client.regulator.Regulator.audit`: every log entry is
downloaded up to a signed checkpoint and the root recomputed, then every
access is judged against the consent it claims. It exits 1 when any access
was not covered, so it can gate a script.

``audit --data-dir D`` is the development shortcut: it starts an embedded node
on D (which must not be running elsewhere) and audits as the development
regulator, whose key the development consortium keeps in D/keys. It is the
only role command, with `qcl wallet import-dev`, that imports the node.

``monitor`` runs :class:`client.monitor.Monitor` over several peers: it
collects their signed checkpoints, checks consistency proofs between them and
against what each peer signed on earlier runs (``--state``), and prints the
evidence of any misbehaviour; it exits 1 when there is any, so it can gate a
cron job.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal, Optional

import httpx
import typer
from rich.table import Table
from rich.text import Text

from client.commands.shared import (
    ACCESS_COLUMNS,
    CONSENT_COLUMNS,
    DEFAULT_URL,
    AsJson,
    Url,
    WalletFile,
    done,
    fail,
    hex_bytes,
    listing,
    out,
    parse_day,
    passphrase,
    print_json,
    reported,
    say,
    session,
    typer_app,
    wallet_option,
)
from client.monitor import Basis, Misbehaviour, Monitor, MonitorError, MonitorReport, MonitorState, PeerReport
from client.regulator import AuditError, AuditOutcome, Regulator, report_csv
from client.sdk import ApiError, LedgerClient
from client.wallet import load_wallet_key
from ledger.errors import StorageError

__all__ = ["app"]

app = typer_app("A regulator: every access and consent, the full-log audit, inclusion proofs.")

DEV_REGULATOR = "jinan-bigdata"

SubjectFilter = Annotated[
    Optional[bytes], typer.Option("--subject", parser=hex_bytes(32, "a citizen key"), metavar="HEX", help="Only this citizen.")
]
ConsumerFilter = Annotated[Optional[str], typer.Option("--consumer", metavar="ORG", help="Only this consumer organization.")]


@app.command("accesses")
def accesses(
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    consumer: ConsumerFilter = None,
    data_type: Annotated[Optional[str], typer.Option("--type", metavar="TYPE", help="Only accesses covering this data type.")] = None,
    subject: SubjectFilter = None,
    since: Annotated[Optional[int], typer.Option(parser=parse_day, metavar="YYYY-MM-DD", help="Only accesses from this date.")] = None,
    until: Annotated[Optional[int], typer.Option(parser=parse_day, metavar="YYYY-MM-DD", help="Only accesses before this date.")] = None,
    outcome: Annotated[Optional[Literal["granted", "refused"]], typer.Option(help="Only granted or only refused accesses.")] = None,
    as_json: AsJson = False,
) -> None:
    """Access records, granted and refused, in log order (at most 1000 per call)."""
    with session(url, wallet) as client:
        found = Regulator(client).accesses(
            consumer=consumer, data_type=data_type, subject=None if subject is None else subject.hex(),
            since=since, until=until, outcome=outcome,
        )
    listing(found, (*ACCESS_COLUMNS, ("subject", lambda a: a["subject"])), as_json=as_json, title="accesses")


@app.command("consents")
def consents(
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    status: Annotated[Optional[str], typer.Option(help="Only consents in this status (requested, active, revoked, expired…).")] = None,
    subject: SubjectFilter = None,
    consumer: ConsumerFilter = None,
    as_json: AsJson = False,
) -> None:
    """Consents, by citizen or by consumer (all when neither is given)."""
    with session(url, wallet) as client:
        found = Regulator(client).consents(status=status, subject=None if subject is None else subject.hex(), consumer=consumer)
    listing(found, (*CONSENT_COLUMNS, ("subject", lambda c: c["terms"]["subject"])), as_json=as_json, title="consents")


def _audit_embedded(data_dir: Path) -> AuditOutcome:
    """The development shortcut: an embedded node on ``data_dir``, audited as the development regulator."""
    from node.embedded import embedded_node

    if not (data_dir / "genesis.json").exists():
        raise typer.BadParameter(f"no node in {data_dir} (no genesis.json)", param_hint="--data-dir")
    try:
        with embedded_node(data_dir) as node:
            with reported(), LedgerClient(node.url, key=node.config.admin_key(DEV_REGULATOR)) as client:
                return Regulator(client).audit()
    except StorageError as exc:  # the store is locked: a node is running on it
        fail("unavailable", f"{exc} (is a node running on {data_dir}?)")


def _print_audit(outcome: AuditOutcome) -> None:
    summary = outcome.summary()
    reasons = ", ".join(f"{code} {count}" for code, count in sorted(summary["refusal_reasons"].items()))
    say(
        f"log root recomputed over {summary['entries']} entries: tree size {summary['tree_size']}, "
        f"root {summary['root_hash']}, checkpoint signed by {summary['checkpoint_node']}"
    )
    say(
        f"accesses checked {summary['accesses_checked']}: granted {summary['accesses_granted']}, "
        f"refusals {summary['refusals']}{f' ({reasons})' if reasons else ''}, citizens' own views {summary['self_views']}"
    )
    say(Text(f"violations {summary['violations']}", style="red" if summary["violations"] else "green"))
    if summary["violation_list"]:
        table = Table(title="violations", title_justify="left")
        for column in ("log index", "tx", "what"):
            table.add_column(column, overflow="fold")
        for violation in summary["violation_list"]:
            table.add_row(str(violation["log_index"]), violation["tx_id"], Text(violation["what"]))
        out.print(table)
    for key, title in (("by_consumer", "per consumer"), ("by_type", "per data type")):
        table = Table(title=title, title_justify="left")
        for column in ("name", "granted", "refused"):
            table.add_column(column)
        for name, counts in sorted(summary[key].items()):
            table.add_row(Text(name), str(counts.get("granted", 0)), str(counts.get("refused", 0)))
        out.print(table)


@app.command("audit")
def audit(
    ctx: typer.Context,
    wallet: Annotated[Optional[Path], wallet_option] = None,
    url: Url = DEFAULT_URL,
    data_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--data-dir", "-d",
            help="DEVELOPMENT SHORTCUT: start an embedded node on this stopped node directory and audit as its development regulator.",
        ),
    ] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", metavar="FILE", help="Also write the per-consumer/per-type report as CSV.")] = None,
    as_json: AsJson = False,
) -> None:
    """Recompute the log root from every entry and check that every access was covered by a valid consent.

    Prints the entries checked, accesses granted and refused, every violation
    with its log index, and per-consumer and per-type counts. Exits 1 when there
    is any violation.

    Development one-shot form: `qcl regulator audit --data-dir D --json` starts
    an embedded node on the stopped node directory D and audits as the
    development regulator (D/keys/jinan-bigdata.admin.key); no wallet needed.
    """
    if data_dir is not None:
        if ctx.get_parameter_source("url").name == "COMMANDLINE":
            raise typer.BadParameter("--data-dir runs its own embedded node; do not combine it with --url", param_hint="--url")
        outcome = _audit_embedded(data_dir)
    elif wallet is None:
        raise typer.BadParameter("give the regulator's --wallet (or QCL_WALLET), or --data-dir for a development node", param_hint="--wallet")
    else:
        with session(url, wallet) as client:
            outcome = Regulator(client).audit()
    if csv_out is not None:
        csv_out.write_text(report_csv(outcome.compliance))
    if as_json:
        print_json(outcome.summary())
    else:
        _print_audit(outcome)
    raise typer.Exit(1 if outcome.compliance.violations else 0)


@app.command("prove")
def prove(
    log_index: Annotated[int, typer.Argument(min=0, metavar="LOG_INDEX", help="The log index of an access record.")],
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Check that the entry at LOG_INDEX is included in the latest signed checkpoint (RFC 6962 audit path)."""
    with session(url, wallet) as client:
        proof = Regulator(client).prove_access(log_index)
    done(
        f"log index {log_index} is included in the signed tree of size {proof['tree_size']}, root {proof['root_hash']}",
        proof,
        as_json=as_json,
    )


@app.command("replay")
def replay(
    log_index: Annotated[int, typer.Argument(min=0, help="Log index of a granted sandbox computation.")],
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Have the node re-run a recorded sandbox computation; exits 1 unless output hash and fuel match the receipt."""
    with session(url, wallet) as client:
        try:
            result = Regulator(client).replay_computation(log_index)
        except AuditError as error:
            fail("not_replayable", str(error))
    if not result["matches"]:
        fail("replay_mismatch", f"the re-run of log index {log_index} does not match its receipt: {result}")
    done(f"log index {log_index}: same output hash {result['output_hash'][:16]}… and fuel {result['fuel']:,} as the receipt", result,
         as_json=as_json)


def _print_monitor(report: MonitorReport) -> None:
    table = Table(title="peers", title_justify="left")
    for column in ("node", "height", "tree size", "root", "consistent", "problems"):
        table.add_column(column, overflow="fold")
    for peer in report.peers:
        row = peer.to_json()
        consistent = {True: Text("yes", style="green"), False: Text("NO", style="red"), None: Text("?", style="yellow")}[row["consistent"]]
        table.add_row(
            Text(peer.node_id),
            "" if row["height"] is None else str(row["height"]),
            "" if row["tree_size"] is None else str(row["tree_size"]),
            "" if row["root_hash"] is None else row["root_hash"][:16] + "…",
            consistent,
            Text("; ".join(peer.problems)),
        )
    out.print(table)
    for number, item in enumerate(report.evidence, 1):
        _print_evidence(number, item)
    if report.ok:
        say(Text(f"{len(report.peers)} peers checked: every pair of checkpoints is consistent", style="green"))


def _print_evidence(number: int, item: Misbehaviour) -> None:
    basis = {Basis.SELF: "contradicts its own earlier checkpoint", Basis.MINORITY: "outside the majority of peers",
             Basis.NO_MAJORITY: "no majority: both signers named"}[item.basis]
    strength = "proof, verifiable offline" if item.conclusive else "accusation only, not verifiable offline"
    say(Text(f"misbehaviour {number}: {', '.join(item.named)} ({basis}; {strength})", style="red"))
    say(f"  {item.explain()}")
    for signed in (item.first, item.second):
        checkpoint = signed.checkpoint
        say(f"  {checkpoint.node_id}: height {checkpoint.height}, tree size {checkpoint.tree_size}, root {checkpoint.root_hash.hex()}")


@app.command("monitor")
def monitor(
    wallet: WalletFile,
    peers: Annotated[list[str], typer.Option("--peer", metavar="URL", help="A peer's API; repeat for every peer of the consortium.")],
    state: Annotated[
        Optional[Path],
        typer.Option("--state", metavar="FILE", help="Keep each peer's accepted checkpoint here, to catch a peer rewriting its history between runs."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Collect every peer's signed checkpoint, check consistency proofs between them, and report misbehaviour.

    Prints per peer its node id, height, tree size, root and whether it is
    consistent, then every piece of evidence: two signed checkpoints that
    cannot both be honest, the peer named, and the proof (--json prints the
    evidence in full, to keep and verify offline; see docs/PROTOCOL.md §7).
    Exits 1 when any misbehaviour is found or a peer could not be checked.
    """
    if len(set(peers)) != len(peers):
        raise typer.BadParameter("a peer URL is given twice", param_hint="--peer")
    with reported(), ExitStack() as stack:
        key = load_wallet_key(wallet, passphrase())
        clients: dict[str, LedgerClient] = {}
        unreachable: list[PeerReport] = []
        for url in peers:
            client = stack.enter_context(LedgerClient(url, key=key))
            try:
                node_id = client.network()["this_node"]["id"]
            except (ApiError, httpx.HTTPError) as exc:
                unreachable.append(PeerReport(url, None, False, (f"cannot ask {url} which node it is: {exc}",)))
                continue
            if node_id in clients:
                fail("invalid_argument", f"{url} and another --peer are the same node {node_id!r}")
            clients[node_id] = client
        try:
            report = Monitor(clients).run(None if state is None else MonitorState.load(state))
        except MonitorError as exc:
            fail(exc.code, str(exc))
        report = replace(report, peers=report.peers + tuple(unreachable))
    if state is not None:
        report.state.save(state)
    if as_json:
        print_json(report.to_json())
    else:
        _print_monitor(report)
    if not report.ok:
        named = sorted({node for item in report.evidence for node in item.named})
        fail("misbehaviour" if report.evidence else "unavailable",
             f"{len(report.evidence)} piece(s) of evidence naming {', '.join(named)}" if report.evidence
             else "some peers could not be checked: " + ", ".join(p.node_id for p in report.peers if p.problems))
