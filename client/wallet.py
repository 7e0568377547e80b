"""The local wallet: one signing key per file, encrypted under a passphrase.

A recipe over libsodium (PyNaCl), in the spirit of Fernet: Argon2id stretches
the passphrase with a random salt, XSalsa20-Poly1305 (``SecretBox``) encrypts
and authenticates the key. The file is JSON, written atomically with mode 0600::

    {"version": 1, "kdf": "argon2id", "opslimit": int, "memlimit": int,
     "salt": base64(16 bytes), "box": base64(nonce ‖ ciphertext), "public_key": hex, "label": text}

The box holds ``enc({"label": label, "seed": seed})`` (canonical CBOR), so the
label and, through the derived key, the KDF parameters and salt are
authenticated too; after decrypting, the seed's public key must equal
``public_key``. The passphrase is NFC-normalized and UTF-8 encoded.

Every failure that involves the passphrase or the file's content raises the
same :class:`WalletError` ("wrong passphrase or damaged key file"), so an error
never tells an attacker which check failed and never contains a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.utils

from ledger import codec
from ledger.crypto import KeyPair
from ledger.errors import EncodingError

__all__ = ["WalletError", "load_wallet_key", "save_wallet_key", "wallet_public_key"]

VERSION = 1
KDF = "argon2id"
LIMITS = {
    "interactive": (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "sensitive": (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
}
_OPAQUE = "wrong passphrase or damaged key file"


class WalletError(Exception):
    """Raised when a wallet file cannot be written or opened; never carries a secret."""


def save_wallet_key(path: Path, key: KeyPair, passphrase: str, *, label: str = "", ops: str = "moderate") -> None:
    """Encrypt ``key`` under ``passphrase`` into ``path`` (replaced atomically, mode 0600).

    ``ops`` picks libsodium's Argon2id cost: "interactive" (fast, for tests),
    "moderate" (default) or "sensitive".
    """
    if not passphrase:
        raise WalletError("refusing to encrypt a key under an empty passphrase")
    if ops not in LIMITS:
        raise WalletError(f"unknown Argon2id cost {ops!r}; expected one of {', '.join(LIMITS)}")
    opslimit, memlimit = LIMITS[ops]
    salt = nacl.utils.random(argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    sealed = box.encrypt(codec.encode({"label": label, "seed": key.seed}))
    document = {
        "version": VERSION,
        "kdf": KDF,
        "opslimit": opslimit,
        "memlimit": memlimit,
        "salt": base64.b64encode(salt).decode(),
        "box": base64.b64encode(bytes(sealed)).decode(),
        "public_key": key.public_key.hex(),
        "label": label,
    }
    _write_private(path, json.dumps(document, indent=2).encode() + b"\n")


def load_wallet_key(path: Path, passphrase: str) -> KeyPair:
    """Decrypt the key in ``path``; raise WalletError on a wrong passphrase or any tampering."""
    document = _read(path)
    try:
        opslimit, memlimit = document["opslimit"], document["memlimit"]
        if not (_in_range(opslimit, argon2id.OPSLIMIT_MIN, argon2id.OPSLIMIT_SENSITIVE)
                and _in_range(memlimit, argon2id.MEMLIMIT_MIN, argon2id.MEMLIMIT_SENSITIVE)):
            raise ValueError("KDF limits out of range")  # also refuses a file crafted to exhaust memory
        salt = base64.b64decode(document["salt"], validate=True)
        sealed = base64.b64decode(document["box"], validate=True)
        if len(salt) != argon2id.SALTBYTES:
            raise ValueError("salt size")
        box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
        inner = codec.decode(box.decrypt(sealed))
        key = KeyPair.from_seed(inner["seed"])
        if key.public_key.hex() != document["public_key"] or inner["label"] != document["label"]:
            raise ValueError("contents do not match the header")
    except (KeyError, TypeError, ValueError, binascii.Error, EncodingError, nacl.exceptions.CryptoError):
        raise WalletError(_OPAQUE) from None
    return key


def wallet_public_key(path: Path) -> bytes:
    """The public key a wallet file holds, without the passphrase (not authenticated until loaded)."""
    try:
        public_key = bytes.fromhex(_read(path)["public_key"])
    except (KeyError, TypeError, ValueError):
        raise WalletError(f"{path} is not a readable wallet key file") from None
    if len(public_key) != 32:
        raise WalletError(f"{path} is not a readable wallet key file")
    return public_key


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode()
    return argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, secret, salt, opslimit=opslimit, memlimit=memlimit)


def _in_range(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _read(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise WalletError(f"cannot read wallet file {path}: {type(exc).__name__}") from None
    try:
        document = json.loads(text)
    except ValueError:
        raise WalletError(_OPAQUE) from None
    if not isinstance(document, dict) or document.get("version") != VERSION or document.get("kdf") != KDF:
        raise WalletError(_OPAQUE)
    return document


def _write_private(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
