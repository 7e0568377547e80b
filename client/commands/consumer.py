"""``qcl consumer``: a bank or insurer asks for consent, then fetches exactly the consented data.

``fetch`` believes nothing unchecked (:func:`client.received.verify_access_answer`):
the access record must be in the signed log and name this consumer, the
result must match its hash, every record must open its on-chain commitment.
``--receipt-out`` keeps the evidence to prove later what was received.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from client.commands.shared import (
    ACCESS_COLUMNS,
    CONSENT_COLUMNS,
    DEFAULT_URL,
    AsJson,
    ConsentIdArg,
    SubjectKey,
    Url,
    WalletFile,
    done,
    hex_bytes,
    listing,
    session,
    show_received,
    typer_app,
    wall_clock_ms,
)
from client.consumer import Consumer
from client.sdk import LedgerClient

__all__ = ["app"]

app = typer_app("A data consumer (bank, insurer): request consents, fetch consented data with a receipt.")


def _consumer(client: LedgerClient) -> Consumer:
    return Consumer(client, wall_clock_ms)


@app.command("request")
def request(
    wallet: WalletFile,
    subject: SubjectKey,
    data_types: Annotated[list[str], typer.Option("--type", metavar="TYPE", help="A data type to ask for (repeatable).")],
    purpose: Annotated[str, typer.Option(metavar="CODE", help="The purpose code, e.g. insurance.claim.")],
    purpose_text: Annotated[str, typer.Option(metavar="TEXT", help="The purpose in words, shown to the citizen.")],
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days the consent is valid.")],
    mode: Annotated[
        Literal["raw", "masked", "computed"],
        typer.Option(help="raw: the records; masked: a masked view of them; computed: a computed result only."),
    ] = "raw",
    max_uses: Annotated[int, typer.Option(min=1, help="Total accesses allowed.")] = 10,
    per_day: Annotated[int, typer.Option(min=1, help="Accesses allowed per day.")] = 5,
    contact: Annotated[str, typer.Option(help="Where the citizen can reach you about this consent.")] = "",
    grantor: Annotated[
        Optional[bytes],
        typer.Option(
            parser=hex_bytes(32, "a citizen key"), metavar="HEX",
            help="A registered relative who answers for a deceased subject (death registration only).",
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Ask a citizen (or, after a death, a registered relative) for consent; prints the consent id."""
    with session(url, wallet) as client:
        consent_id = _consumer(client).request_consent(
            subject, data_types, purpose_code=purpose, purpose_text=purpose_text, valid_days=days, contact=contact,
            mode=mode, max_uses=max_uses, frequency=(per_day, "day"), grantor=grantor,
        )
    done(f"requested consent {consent_id.hex()}", {"consent_id": consent_id.hex()}, as_json=as_json)


@app.command("consents")
def consents(
    wallet: WalletFile,
    url: Url = DEFAULT_URL,
    status: Annotated[Optional[str], typer.Option(help="Only consents in this status (requested, active, revoked, expired…).")] = None,
    as_json: AsJson = False,
) -> None:
    """The consents you requested, with their current status."""
    with session(url, wallet) as client:
        found = _consumer(client).consents(status)
    listing(found, (*CONSENT_COLUMNS, ("subject", lambda c: c["terms"]["subject"])), as_json=as_json, title="your consents")


@app.command("fetch")
def fetch(
    consent_id: ConsentIdArg,
    wallet: WalletFile,
    subject: SubjectKey,
    data_types: Annotated[
        Optional[list[str]], typer.Option("--type", metavar="TYPE", help="Only this data type (repeatable; default: all consented).")
    ] = None,
    receipt_out: Annotated[
        Optional[Path], typer.Option("--receipt-out", metavar="FILE", help="Write the receipt (access record, checkpoint, audit path).")
    ] = None,
    masked: Annotated[bool, typer.Option("--masked", help="Ask for the masked view (consents in masked or raw mode).")] = False,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Fetch the consented records under a consent, verified end to end; a refusal exits 1 with its reason."""
    with session(url, wallet) as client:
        received = _consumer(client).fetch(consent_id, subject, data_types or None, masked=masked)
    if receipt_out is not None:
        receipt_out.write_text(json.dumps(received.receipt(), indent=2) + "\n")
    show_received(received, as_json=as_json)


@app.command("accesses")
def accesses(wallet: WalletFile, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Your accesses, granted and refused, as the ledger recorded them."""
    with session(url, wallet) as client:
        found = _consumer(client).accesses()
    listing(found, (*ACCESS_COLUMNS, ("subject", lambda a: a["subject"])), as_json=as_json, title="your accesses")
