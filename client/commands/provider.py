"""``qcl provider``: an agency publishes, corrects and withdraws records, and answers correction requests.

Payloads are sealed for the custodian's vault on this machine
(:class:`client.provider.Provider`); only their salted fingerprint goes on
chain. The node checks each payload against the catalogue's field list.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from client.commands.shared import (
    DEFAULT_URL,
    RECORD_COLUMNS,
    AsJson,
    RecordIdArg,
    RequestIdArg,
    SubjectKey,
    Url,
    WalletFile,
    done,
    hex_bytes,
    listing,
    parse_day,
    session,
    typer_app,
    wall_clock_ms,
)
from client.provider import Provider
from client.sdk import LedgerClient

__all__ = ["app"]

app = typer_app("A data provider (agency): publish, correct and withdraw records; answer correction requests.")

PayloadJson = Annotated[Optional[str], typer.Option("--payload-json", metavar="JSON", help="The record's fields as a JSON object.")]
PayloadFile = Annotated[Optional[Path], typer.Option("--payload-file", metavar="FILE", help="A file holding the JSON object instead.")]
AsOf = Annotated[int, typer.Option("--as-of", parser=parse_day, metavar="YYYY-MM-DD", help="The date the data describes.")]

CORRECTION_COLUMNS = (
    ("request", lambda c: c["request_id"]),
    ("record", lambda c: c["record_id"]),
    ("version", lambda c: str(c["version"])),
    ("subject", lambda c: c["subject"]),
    ("status", lambda c: c["status"]),
    ("reason", lambda c: c["reason"]),
    ("note", lambda c: c.get("note", "")),
)


def _provider(client: LedgerClient) -> Provider:
    return Provider(client, wall_clock_ms)


def _payload(payload_json: str | None, payload_file: Path | None) -> dict[str, Any]:
    """Exactly one of --payload-json and --payload-file, holding a JSON object."""
    if (payload_json is None) == (payload_file is None):
        raise typer.BadParameter("give exactly one of --payload-json and --payload-file", param_hint="--payload-json")
    try:
        text = payload_json if payload_file is None else payload_file.read_text()
        payload = json.loads(text)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"not a readable JSON object: {exc}", param_hint="--payload-json") from None
    if not isinstance(payload, dict):
        raise typer.BadParameter("the payload must be a JSON object of the catalogue's fields", param_hint="--payload-json")
    return payload


@app.command("publish")
def publish(
    wallet: WalletFile,
    subject: SubjectKey,
    data_type: Annotated[str, typer.Option("--type", help="The catalogue data type, e.g. vehicle.registration.")],
    as_of: AsOf,
    payload_json: PayloadJson = None,
    payload_file: PayloadFile = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Publish a record about a citizen: the payload sealed for the vault, its fingerprint on chain."""
    payload = _payload(payload_json, payload_file)
    with session(url, wallet) as client:
        record_id = _provider(client).publish(subject, data_type, payload, as_of=as_of)
    done(f"published record {record_id.hex()} ({data_type}, version 1)", {"record_id": record_id.hex(), "version": 1}, as_json=as_json)


@app.command("correct")
def correct(
    record_id: RecordIdArg,
    wallet: WalletFile,
    payload_json: PayloadJson = None,
    payload_file: PayloadFile = None,
    request: Annotated[
        Optional[bytes],
        typer.Option(parser=hex_bytes(16, "a correction request id"), metavar="REQUEST_ID", help="The citizen's request this answers."),
    ] = None,
    as_of: Annotated[
        Optional[int], typer.Option("--as-of", parser=parse_day, metavar="YYYY-MM-DD", help="The date the data describes (default: today).")
    ] = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Publish the next version of a record; the old version stays on the ledger, marked superseded."""
    payload = _payload(payload_json, payload_file)
    described = as_of if as_of is not None else parse_day(date.today().isoformat())
    with session(url, wallet) as client:
        version = _provider(client).correct(record_id, payload, as_of=described, request_id=request)
    done(f"record {record_id.hex()} corrected: version {version}", {"record_id": record_id.hex(), "version": version}, as_json=as_json)


@app.command("withdraw")
def withdraw(
    record_id: RecordIdArg,
    wallet: WalletFile,
    reason: Annotated[str, typer.Option(help="Why the record is withdrawn.")],
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Withdraw a record: it stays on the ledger, but no access releases it any more."""
    with session(url, wallet) as client:
        result = _provider(client).withdraw(record_id, reason)
    done(f"record {record_id.hex()} withdrawn (log index {result['log_index']})", result, as_json=as_json)


@app.command("corrections")
def corrections(
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    status: Annotated[Optional[Literal["open", "corrected", "rejected"]], typer.Option(help="Only requests in this status.")] = None,
    as_json: AsJson = False,
) -> None:
    """Citizens' correction requests about your records."""
    with session(url, wallet) as client:
        found = _provider(client).corrections(status)
    listing(found, CORRECTION_COLUMNS, as_json=as_json, title="correction requests")


@app.command("reject-correction")
def reject_correction(
    request_id: RequestIdArg,
    wallet: WalletFile,
    note: Annotated[str, typer.Option(help="Why the record is right, for the citizen.")],
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Answer a correction request by keeping the record, saying why (to correct it, use `correct --request`)."""
    with session(url, wallet) as client:
        result = _provider(client).reject_correction(request_id, note)
    done(f"correction request {request_id.hex()} rejected (log index {result['log_index']})", result, as_json=as_json)


@app.command("records")
def records(wallet: WalletFile, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """The records you published."""
    with session(url, wallet) as client:
        found = _provider(client).records()
    listing(found, (*RECORD_COLUMNS, ("subject", lambda r: r["subject"])), as_json=as_json, title="records you published")
