"""Key files of a node's data directory: JSON, hex seed, created with mode 0600.

Development only holds keys in clear; the client's wallet encrypts its keys
with a passphrase.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ledger.crypto import KeyPair

__all__ = ["load_key", "save_key"]


def save_key(path: Path, key: KeyPair) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"type": "ed25519", "public_key": key.public_key.hex(), "seed": key.seed.hex()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_key(path: Path) -> KeyPair:
    try:
        fields = json.loads(path.read_text())
        key = KeyPair.from_seed(bytes.fromhex(fields["seed"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot read key file {path}: {type(exc).__name__}") from None
    if key.public_key.hex() != fields.get("public_key"):
        raise ValueError(f"key file {path}: public key does not match the seed")
    return key
