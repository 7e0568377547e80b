"""What every role command shares: identity options, the unlocked session, the error contract, output.

The error contract, so that scripts can rely on it: a refusal or failure
prints ``error <code>: <message>`` on stderr and exits 1 (the code is the
API's error code, the rule's refusal code, or ``wallet``/``unavailable``/
``receipt_invalid``/``verification_failed`` for failures found here); a
malformed argument exits 2 (typer's usage error). Listings print a table for
people, or with ``--json`` the API's JSON (bytes as hex) for machines.

The passphrase is read from ``QCL_PASSPHRASE`` or prompted for without echo;
it is never an option, so it never shows in a shell history, a process list
or ``--help``.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, NoReturn, Sequence

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from client.received import ReceivedData, ReceiptError
from client.sdk import ApiError, LedgerClient, TransactionRefused
from client.wallet import WalletError, load_wallet_key
from ledger.errors import LedgerError

__all__ = [
    "ACCESS_COLUMNS",
    "CONSENT_COLUMNS",
    "DEFAULT_URL",
    "RECORD_COLUMNS",
    "AsJson",
    "ConsentIdArg",
    "RecordIdArg",
    "RequestIdArg",
    "SubjectKey",
    "Url",
    "WalletFile",
    "cell",
    "day",
    "done",
    "fail",
    "hex_bytes",
    "jsonable",
    "listing",
    "out",
    "parse_day",
    "passphrase",
    "print_json",
    "reported",
    "say",
    "session",
    "show_received",
    "typer_app",
    "wall_clock_ms",
    "wallet_option",
    "when",
]

DEFAULT_URL = "http://127.0.0.1:8700"
PASSPHRASE_ENV = "QCL_PASSPHRASE"

out = Console(highlight=False)


def typer_app(help_text: str) -> typer.Typer:
    """A command group as every role has it: help on ``-h``/``--help``, help when called bare."""
    return typer.Typer(help=help_text, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# --- arguments ------------------------------------------------------------------


def hex_bytes(size: int, what: str) -> Callable[[str], bytes]:
    """A parser for a fixed-size hex argument; a bad value is a usage error (exit 2)."""

    def parse(text: str) -> bytes:
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise typer.BadParameter(f"{what} must be hex") from None
        if len(value) != size:
            raise typer.BadParameter(f"{what} must be {size} bytes ({2 * size} hex digits)")
        return value

    return parse


def parse_day(text: str) -> int:
    """YYYY-MM-DD (or an ISO date-time) in local time, as milliseconds since the epoch."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return int(moment.timestamp() * 1000)


Url = Annotated[str, typer.Option("--url", envvar="QCL_URL", help="The node's API.")]
wallet_option = typer.Option(
    "--wallet", envvar="QCL_WALLET", metavar="PATH",
    help="Your wallet key file (qcl wallet create); its passphrase comes from QCL_PASSPHRASE or a prompt.",
)
WalletFile = Annotated[Path, wallet_option]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of tables.")]
SubjectKey = Annotated[
    bytes, typer.Option("--subject", parser=hex_bytes(32, "a citizen key"), metavar="HEX", help="The citizen's public key (hex).")
]
ConsentIdArg = Annotated[bytes, typer.Argument(parser=hex_bytes(16, "a consent id"), metavar="CONSENT_ID")]
RecordIdArg = Annotated[bytes, typer.Argument(parser=hex_bytes(16, "a record id"), metavar="RECORD_ID")]
RequestIdArg = Annotated[bytes, typer.Argument(parser=hex_bytes(16, "a correction request id"), metavar="REQUEST_ID")]


# --- identity and errors --------------------------------------------------------------


def passphrase(*, confirm: bool = False) -> str:
    """The wallet passphrase: QCL_PASSPHRASE, or asked for without echo (on stderr, so --json output stays clean)."""
    return os.environ.get(PASSPHRASE_ENV) or typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm, err=True)


def fail(code: str, message: str) -> NoReturn:
    typer.echo(f"error {code}: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def reported() -> Iterator[None]:
    """Turn every failure the SDK can raise into the error contract (exit 1)."""
    try:
        yield
    except ApiError as exc:
        fail(exc.code, exc.message)
    except TransactionRefused as exc:
        fail(exc.code, exc.result["reason"])
    except WalletError as exc:
        fail("wallet", str(exc))
    except ReceiptError as exc:
        fail("receipt_invalid", str(exc))
    except LedgerError as exc:  # a checkpoint, signature or proof the node served does not verify
        fail("verification_failed", str(exc))
    except httpx.TransportError as exc:
        fail("unavailable", f"cannot reach the node ({type(exc).__name__}: {exc})")


@contextmanager
def session(url: str, wallet: Path) -> Iterator[LedgerClient]:
    """A client signing with the wallet's key; anything failing inside is reported by the error contract."""
    with reported():
        key = load_wallet_key(wallet, passphrase())
        with LedgerClient(url, key=key) as client:
            yield client


# --- output -----------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Bytes as hex, containers recursively: how the API itself renders them."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    return value


def say(text: str | Text) -> None:
    """A line for people, never read as markup; long lines are left to the terminal to wrap, so ids stay copyable."""
    out.print(text, soft_wrap=True, markup=False)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def day(ms: int) -> str:
    return date.fromtimestamp(ms / 1000).isoformat()


def cell(value: Any) -> Text:
    """A table cell showing ``value`` literally (a payload's text is data, not markup)."""
    return Text(value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False))


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def listing(items: list[dict[str, Any]], columns: Sequence[Column], *, as_json: bool, title: str) -> None:
    """A table of ``items`` (one row each), or the items themselves as JSON."""
    if as_json:
        print_json(items)
        return
    if not items:
        say(f"no {title}")
        return
    table = Table(title=title, title_justify="left")
    for name, _ in columns:
        table.add_column(name, overflow="fold")
    for item in items:
        table.add_row(*(cell(get(item)) for _, get in columns))
    out.print(table)


def done(message: str, result: dict[str, Any], *, as_json: bool) -> None:
    """An action's outcome: one line for people, the result as JSON for machines."""
    if as_json:
        print_json(result)
    else:
        say(message)


def _access_outcome(entry: dict[str, Any]) -> str:
    return entry["outcome"] if entry["outcome"] == "granted" else f"refused: {entry.get('reason', '?')}"


RECORD_COLUMNS: tuple[Column, ...] = (
    ("record", lambda r: r["record_id"]),
    ("type", lambda r: r["type"]),
    ("provider", lambda r: r["provider"]),
    ("version", lambda r: str(r["version"])),
    ("status", lambda r: r["status"]),
    ("as of", lambda r: day(r["versions"][-1]["as_of"])),
)
CONSENT_COLUMNS: tuple[Column, ...] = (
    ("consent", lambda c: c["consent_id"]),
    ("consumer", lambda c: c["consumer"]),
    ("types", lambda c: ", ".join(c["terms"]["data_types"])),
    ("purpose", lambda c: c["terms"]["purpose"]["code"]),
    ("mode", lambda c: c["terms"]["mode"]),
    ("status", lambda c: c["status"]),
    ("valid until", lambda c: when(c["terms"]["valid_until"])),
    ("uses", lambda c: f"{c['uses']}/{c['terms']['max_uses']}"),
)
ACCESS_COLUMNS: tuple[Column, ...] = (
    ("log", lambda a: str(a["log_index"])),
    ("time", lambda a: when(a["time"])),
    ("consumer", lambda a: a.get("consumer") or "(the citizen)"),
    ("types", lambda a: ", ".join(a["data_types"])),
    ("purpose", lambda a: a["purpose"]),
    ("outcome", _access_outcome),
    ("consent", lambda a: a.get("consent_id", "")),
)


def show_received(received: ReceivedData, *, as_json: bool) -> None:
    """Records that passed every receipt check: each one's fields and values, and where the access is logged."""
    if as_json:
        print_json({"log_index": received.log_index, "tx_id": received.tx_id, "records": received.records})
        return
    say(f"{len(received.records)} record(s), access logged at log index {received.log_index} (tx {received.tx_id.hex()})")
    for record in received.records:
        say(Text.assemble("\n", (record["type"], "bold"), f"  record {record['record_id'].hex()} v{record['version']}  as of {day(record['as_of'])}"))
        table = Table()
        table.add_column("field")
        table.add_column("value", overflow="fold")
        for name, value in record["payload"].items():
            table.add_row(Text(name), cell(value))
        out.print(table)
