"""The end-to-end demo (``make demo``): an embedded node, and the ledger core at work.

It starts a peer with its embedded orderer on a fresh data directory, serves
the HTTP API on loopback, and then acts only through the SDK, as the members
would, every request signed by the caller's key: the identity authority
enrolls citizens, forged, replayed and unauthorised transactions are refused,
unsigned requests and a citizen reading the whole log are refused, a membership
change needs 3 of the 10 founding organizations, and a regulator audits the log
from the outside — checkpoint signature, every entry against the signed root,
inclusion and consistency proofs. It ends with ``qcl verify`` over the store.

    python -m client.demo [--data-dir D] [--port P]
"""

from __future__ import annotations

import argparse
import random
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from client.enrollment import enrollment_transaction, synthetic_national_id
from client.sdk import ApiError, LedgerClient
from ledger import codec
from ledger.crypto import KeyPair
from ledger.genesis import Role, network_id
from ledger.identity import new_salt
from ledger.storage.leveldb import LevelDBStore
from ledger.tx import build_transaction, parse_transaction
from ledger.verify import verify_store
from node.api.app import create_app
from node.devnet import load_node_config
from node.runtime import clock_ms, open_peer

console = Console()

CITIZENS = ("Zhang Wei", "Li Na", "Wang Fang", "Liu Yang", "Chen Jing")


def step(title: str) -> None:
    console.print()
    console.rule(f"[bold]{title}")


def show(results: list[dict], labels: list[str]) -> None:
    table = Table(show_header=True, header_style="bold")
    for column in ("what", "status", "code", "block", "log index"):
        table.add_column(column)
    for label, result in zip(labels, results):
        colour = {"committed": "green", "invalid": "yellow", "rejected": "red"}.get(result["status"], "white")
        table.add_row(label, f"[{colour}]{result['status']}[/]", result["code"] or "", str(result["height"]), str(result["log_index"]))
    console.print(table)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(data_dir: Path, port: int) -> int:
    step("1. An embedded node on a fresh data directory")
    peer = open_peer(data_dir)
    config = load_node_config(data_dir)
    server = uvicorn.Server(uvicorn.Config(create_app(peer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    console.print(f"data directory [cyan]{data_dir}[/]  ·  node [cyan]{peer.node_id}[/] serving {url}")
    console.print("every request is signed by the caller's key; this demo acts as the Big Data Bureau's admin "
                  "(custodian and regulator) unless it says otherwise")
    client = LedgerClient(url, key=config.admin_key("jinan-bigdata"))
    try:
        return narrate(client, config, url)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)
        peer.stop()
        finish(data_dir, port)


def narrate(client: LedgerClient, config, url: str) -> int:
    network = client.network()
    table = Table("organization", "roles", "peer", header_style="bold")
    for org in network["orgs"]:
        table.add_row(org["name"], ", ".join(org["roles"]), ", ".join(node["id"] for node in org["nodes"]) or "—")
    console.print(f"consortium [bold]{network['name']}[/], network id {network['network'][:16]}…, "
                  f"membership changes need {network['admin_threshold']} of {len(network['orgs'])} organizations")
    console.print(table)
    network_id_bytes = bytes.fromhex(network["network"])
    first = client.checkpoint()
    console.print(f"genesis checkpoint: size {first.checkpoint.tree_size}, root {first.checkpoint.root_hash.hex()[:16]}…, "
                  f"signed by {first.checkpoint.node_id}")

    step("2. The Big Data Bureau (identity authority) enrolls five citizens")
    console.print("Each citizen holds their own Ed25519 key and co-signs; the chain gets a salted commitment "
                  "of the ID number, never the number itself.")
    rng = random.Random(2026)
    authority = config.admin_key("jinan-bigdata")
    citizens = [KeyPair.generate() for _ in CITIZENS]
    envelopes = [
        enrollment_transaction(authority, key, network_id_bytes, synthetic_national_id(rng), new_salt(), time_ms=clock_ms())
        for key in citizens
    ]
    show(client.submit(envelopes), [f"enroll {name}" for name in CITIZENS])
    payload = parse_transaction(envelopes[0]).payload
    console.print(f"on chain for {CITIZENS[0]}: citizen_key {payload['citizen_key'].hex()[:16]}…, "
                  f"id_commitment {payload['id_commitment'].hex()[:16]}…")

    step("3. What the ledger refuses")
    body, signatures = codec.decode(enrollment_transaction(
        authority, KeyPair.generate(), network_id_bytes, synthetic_national_id(rng), new_salt(), time_ms=clock_ms()))
    signatures[0][1] = bytes(64)
    forged = codec.encode([body, signatures])
    bank = config.admin_key("qilu-bank")
    by_bank = enrollment_transaction(bank, KeyPair.generate(), network_id_bytes, synthetic_national_id(rng), new_salt(), time_ms=clock_ms())
    stale = enrollment_transaction(authority, KeyPair.generate(), network_id_bytes, synthetic_national_id(rng), new_salt(),
                                   time_ms=clock_ms() - 3_600_000)
    show(
        client.submit([forged, envelopes[1], by_bank, stale]),
        ["forged signature", f"replay of {CITIZENS[1]}'s enrollment", "a bank tries to enroll a citizen", "signed an hour ago"],
    )
    console.print("Forged ones never reach the orderer; the others stay in their block with a validation code "
                  "and change nothing.")
    unsigned = httpx.get(f"{url}/v1/log/checkpoint").json()["error"]
    console.print(f"an unsigned request for the checkpoint: [red]{unsigned['code']}[/] ({unsigned['message']})")
    with LedgerClient(url, key=citizens[0]) as citizen:
        try:
            citizen.entries(0, 1)
            console.print(f"[red]{CITIZENS[0]} could read the whole log[/]")
            return 1
        except ApiError as refused:
            own = citizen.transaction(parse_transaction(envelopes[0]).tx_id)["status"]
            console.print(f"{CITIZENS[0]}, signing with their own key, asks for every log entry: [red]{refused.code}[/] "
                          f"({refused.message}); their own enrollment they may read: {own}")

    step("4. Admitting a new insurer: M-of-N organization admins")
    newcomer = KeyPair.generate()
    org = {"id": "pingan-jinan", "name": "Ping An Insurance Jinan", "roles": [Role.CONSUMER.value],
           "admin_keys": [newcomer.public_key], "nodes": []}
    admins = [config.admin_key(org_id) for org_id in ("jinan-bigdata", "pbc-jinan", "jinan-psb")]
    two = build_transaction(admins[0], network_id_bytes, "org.upsert", {"org": org}, time_ms=clock_ms(), cosigners=admins[1:2])
    three = build_transaction(admins[0], network_id_bytes, "org.upsert", {"org": org}, time_ms=clock_ms(), cosigners=admins[1:3])
    show(client.submit([two, three]), ["signed by 2 organizations", "signed by 3 organizations"])

    step("5. The regulator audits from the outside")
    latest = client.checkpoint()
    cp = latest.checkpoint
    console.print(f"checkpoint signature verified: size {cp.tree_size}, height {cp.height}, root {cp.root_hash.hex()[:16]}…")
    audit = client.audit_log(cp)
    console.print(f"downloaded all {audit.entries_checked} entries and recomputed the RFC 6962 root: [green]matches[/]")
    index = client.transaction(parse_transaction(envelopes[2]).tx_id)["log_index"]
    client.verify_inclusion(envelopes[2], index, cp)
    console.print(f"inclusion proof of {CITIZENS[2]}'s enrollment (log index {index}) against the signed root: [green]valid[/]")
    client.verify_consistency(first.checkpoint, cp)
    console.print(f"consistency proof from the genesis checkpoint (size {first.checkpoint.tree_size}) to size {cp.tree_size}: "
                  "[green]the log only grew[/]")
    previous = bytes(32)
    for height in range(cp.height + 1):
        block = client.block(height)
        if bytes.fromhex(block["prev_hash"]) != previous:
            console.print(f"[red]block {height} does not link to block {height - 1}[/]")
            return 1
        previous = bytes.fromhex(block["hash"])
    console.print(f"hash chain of {cp.height + 1} blocks links up to the checkpoint's block hash: "
                  f"[green]{previous == cp.block_hash}[/]")
    return 0


def finish(data_dir: Path, port: int) -> None:
    step("6. qcl verify: rebuild everything from the blocks and compare every key")
    kv = LevelDBStore(data_dir / "ledger", create=False)
    config = load_node_config(data_dir)
    report = verify_store(kv, expected_network=network_id(config.genesis))
    kv.close()
    verdict = "[green]OK[/]" if report.ok else f"[red]FAILED[/] {report.discrepancies[:3]}"
    console.print(f"{verdict}: {report.blocks} blocks, {report.transactions} transactions, {report.keys_compared} keys")
    step("Keep exploring")
    console.print(f"  .venv/bin/qcl node start --data-dir {data_dir} --port {port}")
    console.print(f"  curl -s http://127.0.0.1:{port}/healthz   (the only endpoint that needs no signature)")
    console.print("  signed requests from Python (client.sdk.LedgerClient, node.keyfile.load_key):")
    console.print(f"    LedgerClient('http://127.0.0.1:{port}', key=load_key(Path('{data_dir}/keys/jinan-bigdata.admin.key'))).network()")
    console.print(f"  .venv/bin/qcl verify --data-dir {data_dir}   (with the node stopped)")


def main() -> None:
    parser = argparse.ArgumentParser(description="Quancheng Ledger end-to-end demo")
    parser.add_argument("--data-dir", type=Path, help="keep the store here (default: a new temporary directory)")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="qcl-demo-"))
    raise SystemExit(run(data_dir, args.port or free_port()))


if __name__ == "__main__":
    main()
