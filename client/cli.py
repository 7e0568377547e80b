"""``qcl``: the command line.

Operator commands (``qcl node start``, ``qcl verify``, ``qcl network``) run on
the machine that holds the data directory, so they import the node and the
ledger core directly; they are the only commands that do, with two development
shortcuts (``qcl wallet import-dev``, ``qcl regulator audit --data-dir``). Everything a citizen, provider, consumer
or regulator does goes through the SDK and the public API, signed with a key
from a local wallet: ``qcl wallet``, ``qcl citizen``, ``qcl provider``,
``qcl consumer``, ``qcl regulator`` (one module each in client/commands/).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from client.commands import citizen, consumer, network, provider, regulator, wallet

app = typer.Typer(help="Quancheng Ledger: a permissioned ledger for trusted sharing of government data.", no_args_is_help=True)
node_app = typer.Typer(help="Run a peer.", no_args_is_help=True)
app.add_typer(node_app, name="node")
for role in (wallet, citizen, provider, consumer, regulator):
    app.add_typer(role.app, name=role.__name__.rsplit(".", 1)[-1])
app.add_typer(network.app, name="network")

console = Console(stderr=True)

DEFAULT_PORT = 8700
DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="The node's data directory.")]


@node_app.command("start")
def node_start(
    data_dir: DataDir,
    port: Annotated[Optional[int], typer.Option(help="HTTP port [default: node.json's port, else 8700].")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Start a peer with the orderer its node.json names (the embedded one by default); a new data
    directory gets a one-peer development consortium."""
    import uvicorn

    from node.api.app import create_app
    from node.devnet import load_node_config
    from node.runtime import open_peer
    from node.vault import open_vault

    fresh = not (data_dir / "genesis.json").exists()
    peer = open_peer(data_dir)
    vault = open_vault(data_dir / "vault")
    head = peer.store.head()
    port = port or load_node_config(data_dir).port or DEFAULT_PORT
    if fresh:
        console.print(f"created a development consortium in {data_dir} (keys in {data_dir / 'keys'})")
    console.print(
        f"node {peer.node_id} serving http://{host}:{port}  network {peer.network.hex()[:16]}…  "
        f"height {head.height}  log size {head.tree_size}"
    )
    try:
        uvicorn.run(create_app(peer, vault=vault), host=host, port=port, log_level="warning", access_log=False)
    finally:
        peer.stop()
        vault.close()


@app.command("verify")
def verify(
    data_dir: DataDir,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    limit: Annotated[int, typer.Option(help="Print at most this many discrepancies.")] = 50,
) -> None:
    """Rebuild every hash, signature, Merkle node, state entry and index from the blocks and compare.

    Exits 0 when the store agrees with its blocks, 1 when it does not (printing
    where: key, block, tx), 2 when the store cannot be opened.
    """
    from ledger.errors import LedgerError
    from ledger.genesis import genesis_from_json, network_id
    from ledger.storage.leveldb import LevelDBStore
    from ledger.verify import verify_store
    from node.committer import PrecheckPool

    ledger_path = data_dir / "ledger"
    if not ledger_path.is_dir():
        console.print(f"[red]error:[/] no ledger in {data_dir} (expected {ledger_path})")
        raise typer.Exit(2)
    expected = None
    genesis_file = data_dir / "genesis.json"
    if genesis_file.exists():
        try:
            expected = network_id(genesis_from_json(genesis_file.read_text()))
        except LedgerError as exc:
            console.print(f"[red]error:[/] {genesis_file}: {exc}")
            raise typer.Exit(2)
    try:
        kv = LevelDBStore(ledger_path, create=False)
    except LedgerError as exc:
        console.print(f"[red]error:[/] {exc} (is the node still running?)")
        raise typer.Exit(2)
    pool = PrecheckPool()
    started = time.perf_counter()
    # The rebuild goes to a scratch LevelDB next to nothing else, so memory stays bounded
    # however long the ledger is.
    with tempfile.TemporaryDirectory(prefix="qcl-verify-") as scratch_dir:
        scratch = LevelDBStore(Path(scratch_dir) / "rebuilt")
        try:
            report = verify_store(kv, expected_network=expected, submit_precheck=pool.submit, scratch=scratch)
        finally:
            scratch.close()
            kv.close()
            pool.close()
    seconds = time.perf_counter() - started
    summary = {
        "ok": report.ok,
        "blocks": report.blocks,
        "transactions": report.transactions,
        "keys_compared": report.keys_compared,
        "seconds": round(seconds, 3),
        "discrepancy_count": len(report.discrepancies),
        "discrepancies": [
            {
                "key": d.key.hex() if d.key is not None else None,
                "block": d.height,
                "tx": d.tx_position,
                "log_index": d.log_index,
                "what": d.what,
            }
            for d in report.discrepancies[:limit]
        ],
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        out = Console()
        verdict = "[green]OK[/]" if report.ok else f"[red]FAILED[/]: {len(report.discrepancies)} discrepancies"
        out.print(
            f"{verdict} — {report.blocks} blocks, {report.transactions} transactions, "
            f"{report.keys_compared} keys compared in {seconds:.2f} s"
        )
        for discrepancy in report.discrepancies[:limit]:
            out.print(f"  {discrepancy}", highlight=False)
        if len(report.discrepancies) > limit:
            out.print(f"  … and {len(report.discrepancies) - limit} more")
    sys.stdout.flush()
    raise typer.Exit(0 if report.ok else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
