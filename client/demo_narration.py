"""How the demo tells its story: the console, steps, tables, and granted/refused checks that stop the run.

Shared by the scenarios (client/demo.py, client/demo_loan.py). A scenario that
does not behave as the brief says raises :class:`DemoFailed`, and the demo exits non-zero.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from client.demo_data import BEIJING
from client.received import ReceivedData
from client.sdk import ApiError

__all__ = ["DemoFailed", "clock_text", "console", "expect", "granted", "refused", "show_access_log", "step", "table"]

console = Console()


class DemoFailed(Exception):
    """Raised when the ledger did not behave as a scenario expects; the demo then exits non-zero."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


def step(title: str) -> None:
    console.print()
    console.rule(f"[bold]{title}")


def table(*columns: str, title: str | None = None) -> Table:
    return Table(*columns, title=title, title_justify="left", header_style="bold", show_edge=False, pad_edge=False)


def clock_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, BEIJING).strftime("%H:%M:%S")


def granted(what: str, attempt: Callable[[], ReceivedData]) -> ReceivedData:
    received = attempt()
    console.print(f"  {what}: [green]granted[/] ({len(received.records)} record(s), access record at log index {received.log_index})")
    return received


def refused(expected: str, what: str, attempt: Callable[[], object]) -> None:
    """Run an access that must be refused with ``expected``; show the node's error code and message."""
    try:
        attempt()
    except ApiError as error:
        expect(error.code == expected, f"{what}: expected the refusal {expected}, got {error.code}: {error.message}")
        console.print(f"  {what}: [red]refused[/] [bold]{error.code}[/] (HTTP {error.status}) — {error.message}")
        return
    raise DemoFailed(f"{what}: the access was granted, but it should have been refused with {expected}")


def show_access_log(who: Callable[[str], str], log: list[dict[str, Any]], title: str) -> None:
    rows = table("log", "time UTC+8", "who, why", "data types", "outcome", title=title)
    for entry in log:
        outcome = "[green]granted[/]" if entry["outcome"] == "granted" else f"[red]refused: {entry['reason']}[/]"
        who = entry.get("consumer") or who(entry["subject"])
        rows.add_row(str(entry["log_index"]), clock_text(entry["time"]), f"{who}\n[dim]{entry['purpose']}[/]",
                     "\n".join(entry["data_types"]), outcome)
    console.print(rows)
