"""``qcl citizen``: the digital safe box on the command line, over :class:`client.citizen.SafeBox`.

Every answer to a consent is signed here with the citizen's own key. ``grant``
shows the terms first, sensitive data types apart, and signs a grant covering
sensitive types only with ``--confirm-sensitive`` (PIPL art. 28's separate
consent).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from client.citizen import SafeBox, SensitiveConfirmationNeeded
from client.commands.shared import (
    ACCESS_COLUMNS,
    CONSENT_COLUMNS,
    DEFAULT_URL,
    RECORD_COLUMNS,
    AsJson,
    ConsentIdArg,
    RecordIdArg,
    Url,
    WalletFile,
    cell,
    day,
    done,
    fail,
    jsonable,
    listing,
    out,
    session,
    show_received,
    typer_app,
    wall_clock_ms,
    when,
)
from client.sdk import LedgerClient

__all__ = ["app"]

app = typer_app("The digital safe box: your records, your data, your consents, and every access to your data.")

Types = Annotated[Optional[list[str]], typer.Option("--type", metavar="TYPE", help="Only this data type (repeatable).")]


MODE_WORDS = {
    "raw": "the records themselves",
    "masked": "a masked view (IDs, names and places partly hidden, amounts as ranges)",
    "computed": "a computed result only, never the records",
}


def _box(client: LedgerClient) -> SafeBox:
    return SafeBox(client, wall_clock_ms)


@app.command("records")
def records(wallet: WalletFile, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Every record the agencies hold about you (metadata; `open` shows the contents)."""
    with session(url, wallet) as client:
        found = _box(client).records()
    listing(found, RECORD_COLUMNS, as_json=as_json, title="records about you")


@app.command("open")
def open_data(wallet: WalletFile, url: Url = DEFAULT_URL, types: Types = None, as_json: AsJson = False) -> None:
    """The contents of your own records, sealed to a fresh key of yours and decrypted here.

    Opening your data is logged like any access (purpose subject.view).
    """
    with session(url, wallet) as client:
        received = _box(client).open_my_data(types or None)
    show_received(received, as_json=as_json)


@app.command("consents")
def consents(
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    status: Annotated[Optional[str], typer.Option(help="Only consents in this status (requested, active, paused, revoked, expired…).")] = None,
    as_json: AsJson = False,
) -> None:
    """The consents about you, and those you answer for as a relative."""
    with session(url, wallet) as client:
        found = _box(client).consents(status)
    listing(found, CONSENT_COLUMNS, as_json=as_json, title="consents")


@app.command("pending")
def pending(wallet: WalletFile, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Consent requests waiting for your answer (grant or reject them)."""
    with session(url, wallet) as client:
        found = _box(client).pending()
    listing(found, CONSENT_COLUMNS, as_json=as_json, title="requests waiting for your answer")


def _show_terms(consent: dict[str, Any]) -> None:
    """What the citizen is about to sign, in words, sensitive data types on their own line (shown literally: the
    consumer wrote the purpose and contact)."""
    terms = consent["terms"]
    sensitive = consent["sensitive_types"]
    rows = [
        ("requested by", consent["consumer"]),
        ("purpose", f"{terms['purpose']['code']}: {terms['purpose']['text']}"),
        ("data types", ", ".join(t for t in terms["data_types"] if t not in sensitive) or "-"),
        ("mode", MODE_WORDS[terms["mode"]]),
        ("valid", f"{when(terms['valid_from'])} to {when(terms['valid_until'])}"),
        ("data described", f"{day(terms['data_from'])} to {day(terms['data_until'])}"),
        ("uses", f"at most {terms['max_uses']}, {terms['frequency']['max']} per {terms['frequency']['per']}"),
        ("kept by the consumer", f"{terms['data_life_days']} days"),
        ("legal basis", terms["legal_basis"]),
        ("contact", terms["contact"] or "-"),
    ]
    if consent["grantor"] != terms["subject"]:
        rows.append(("about", f"{terms['subject']} (you answer as a registered relative)"))
    table = Table(title=f"consent {consent['consent_id']}  ({consent['status']})", title_justify="left", show_header=False)
    table.add_column("term", style="bold")
    table.add_column("value", overflow="fold")
    for term, value in rows:
        table.add_row(term, cell(value))
        if term == "data types" and sensitive:
            table.add_row("SENSITIVE data types", cell(", ".join(sensitive)), style="red")
    out.print(table)


@app.command("grant")
def grant(
    consent_id: ConsentIdArg,
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    confirm_sensitive: Annotated[
        bool, typer.Option("--confirm-sensitive", help="Separately confirm the sensitive data types the terms list.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Show a consent request's terms and sign your grant of exactly those terms.

    When the terms cover sensitive data types the grant is refused unless
    --confirm-sensitive is given; the confirmation is signed into the grant.
    """
    with session(url, wallet) as client:
        box = _box(client)
        consent = box.consent(consent_id)
        if not as_json:
            _show_terms(consent)
        try:
            result = box.grant(consent_id, confirm_sensitive=confirm_sensitive)
        except SensitiveConfirmationNeeded as exc:
            fail("sensitive_confirmation_needed", f"{exc} with --confirm-sensitive")
        except ValueError as exc:  # the node's terms do not hash to what it reports
            fail("verification_failed", str(exc))
    done(f"granted consent {consent_id.hex()} (log index {result['log_index']})", result, as_json=as_json)


@app.command("reject")
def reject(
    consent_id: ConsentIdArg,
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    reason: Annotated[Optional[str], typer.Option(help="Why, for the consumer.")] = None,
    as_json: AsJson = False,
) -> None:
    """Refuse a consent request."""
    with session(url, wallet) as client:
        result = _box(client).reject(consent_id, reason)
    done(f"rejected consent {consent_id.hex()} (log index {result['log_index']})", result, as_json=as_json)


def _lifecycle(verb: str, past: str, help_text: str) -> None:
    """Register one consent lifecycle command (pause, resume, revoke): same arguments, one SafeBox method."""

    def command(consent_id: ConsentIdArg, wallet: WalletFile, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
        with session(url, wallet) as client:
            result = getattr(_box(client), verb)(consent_id)
        done(f"{past} consent {consent_id.hex()} (log index {result['log_index']})", result, as_json=as_json)

    command.__doc__ = help_text
    app.command(verb)(command)


_lifecycle("pause", "paused", "Suspend an active consent; every access is refused until you resume it.")
_lifecycle("resume", "resumed", "Reactivate a paused consent.")
_lifecycle("revoke", "revoked", "Withdraw a consent for good; every further access is refused (consent_revoked).")


def _live_line(entry: dict[str, Any]) -> str:
    outcome = "granted" if entry["outcome"] == "granted" else f"REFUSED ({entry.get('reason', '?')})"
    return (
        f"{when(entry['time'])}  {entry.get('consumer') or '(you)'}  {', '.join(entry['data_types'])}  "
        f"purpose {entry['purpose']}  {outcome}  consent {entry.get('consent_id', '-')}  log {entry['log_index']}"
    )


@app.command("log")
def log(
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep waiting and print each access as it happens (Ctrl-C stops).")] = False,
    after: Annotated[Optional[int], typer.Option(help="Only accesses after this log index.")] = None,
    max_count: Annotated[Optional[int], typer.Option("--max", min=1, help="With --follow: stop after this many accesses.")] = None,
    as_json: AsJson = False,
) -> None:
    """Every access to your data, granted or refused: when, who, which types, why, under which consent.

    With --follow and --json, one JSON object per line.
    """
    with session(url, wallet) as client:
        box = _box(client)
        if not follow:
            listing(box.access_log(after=after), ACCESS_COLUMNS, as_json=as_json, title="accesses to your data")
            return
        try:
            for count, entry in enumerate(box.follow(after=after), 1):
                typer.echo(json.dumps(jsonable(entry), ensure_ascii=False) if as_json else _live_line(entry))
                if count == max_count:
                    break
        except KeyboardInterrupt:
            pass


@app.command("correct")
def correct(
    record_id: RecordIdArg,
    wallet: WalletFile,
    reason: Annotated[str, typer.Option(help="What is wrong, for the agency that published the record.")],
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Report a wrong record; its provider must correct it or answer why not."""
    with session(url, wallet) as client:
        request_id = _box(client).request_correction(record_id, reason)
    done(f"correction request {request_id.hex()} filed", {"request_id": request_id.hex()}, as_json=as_json)
