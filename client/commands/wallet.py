"""``qcl wallet``: the passphrase-encrypted key file every role command signs with (see client/wallet.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from client.commands.shared import AsJson, done, fail, passphrase, print_json, reported, typer_app
from client.wallet import save_wallet_key, wallet_public_key
from ledger.crypto import KeyPair

__all__ = ["app"]

app = typer_app("Your signing key, kept in a passphrase-encrypted file.")

OutFile = Annotated[Path, typer.Option("--out", metavar="PATH", help="Where to write the wallet file (never overwritten).")]
KdfCost = Annotated[
    Literal["moderate", "sensitive", "interactive"],
    typer.Option(
        "--kdf-cost",
        help="Argon2id cost of unlocking: moderate; sensitive (slower, stronger); interactive (fast: tests, small devices).",
    ),
]


def _write(path: Path, key: KeyPair, label: str, kdf_cost: str, *, as_json: bool) -> None:
    if path.exists():
        raise typer.BadParameter(f"{path} exists; refusing to overwrite a key", param_hint="--out")
    with reported():
        save_wallet_key(path, key, passphrase(confirm=True), label=label, ops=kdf_cost)
    public_key = key.public_key.hex()
    done(f"wrote {path}\npublic key {public_key}", {"path": str(path), "public_key": public_key, "label": label}, as_json=as_json)


@app.command("create")
def create(
    out: OutFile,
    label: Annotated[str, typer.Option(help="A name for the key, stored with it.")] = "",
    kdf_cost: KdfCost = "moderate",
    as_json: AsJson = False,
) -> None:
    """Generate a new signing key and write it, encrypted under a passphrase you choose, to --out.

    The passphrase is read from QCL_PASSPHRASE or asked for twice, without echo.
    """
    _write(out, KeyPair.generate(), label, kdf_cost, as_json=as_json)


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="A wallet file.")],
    as_json: AsJson = False,
) -> None:
    """The public key and label of a wallet file (no passphrase needed; the label is authenticated only on unlock)."""
    with reported():
        public_key = wallet_public_key(path).hex()
    label = json.loads(path.read_text()).get("label", "")
    if as_json:
        print_json({"path": str(path), "public_key": public_key, "label": label})
    else:
        typer.echo(f"public key {public_key}\nlabel      {label}")


@app.command("import-dev")
def import_dev(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="A development node's data directory.")],
    org: Annotated[str, typer.Option(help="The organization whose admin key to wrap, e.g. jinan-psb.")],
    out: OutFile,
    kdf_cost: KdfCost = "moderate",
    as_json: AsJson = False,
) -> None:
    """DEVELOPMENT ONLY: wrap ORG's clear-text admin key from D/keys/ORG.admin.key into a wallet.

    A development consortium keeps every member's admin key in the node's data
    directory so that one machine can play every role; a real member's key
    never leaves that member.
    """
    from node.keyfile import load_key

    try:
        key = load_key(data_dir / "keys" / f"{org}.admin.key")
    except ValueError as exc:
        fail("not_found", f"{exc} (is {data_dir} a development node directory, and {org!r} one of its organizations?)")
    _write(out, key, org, kdf_cost, as_json=as_json)
