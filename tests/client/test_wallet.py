"""The local wallet: a key encrypted under a passphrase, opaque on every failure, never leaking a secret."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from client.wallet import WalletError, load_wallet_key, save_wallet_key, wallet_public_key
from ledger.crypto import KeyPair

PASSPHRASE = "correct horse battery staple 北京"


@pytest.fixture
def key() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture
def wallet(tmp_path: Path, key: KeyPair) -> Path:
    path = tmp_path / "wallet" / "alice.key"
    save_wallet_key(path, key, PASSPHRASE, label="alice", ops="interactive")
    return path


def assert_opaque(error: WalletError, key: KeyPair) -> None:
    message = str(error)
    assert message == "wrong passphrase or damaged key file"
    assert key.seed.hex() not in message and PASSPHRASE not in message


def test_round_trip(wallet, key):
    assert load_wallet_key(wallet, PASSPHRASE) == key
    assert wallet_public_key(wallet) == key.public_key


def test_the_file_is_json_with_the_documented_fields_and_no_secret(wallet, key):
    text = wallet.read_text()
    document = json.loads(text)
    assert set(document) == {"version", "kdf", "opslimit", "memlimit", "salt", "box", "public_key", "label"}
    assert (document["version"], document["kdf"], document["label"]) == (1, "argon2id", "alice")
    assert document["public_key"] == key.public_key.hex()
    assert len(base64.b64decode(document["salt"])) == 16
    assert key.seed.hex() not in text and base64.b64encode(key.seed).decode() not in text
    assert PASSPHRASE not in text


def test_file_mode_is_0600(wallet, tmp_path, key):
    assert stat.S_IMODE(wallet.stat().st_mode) == 0o600
    save_wallet_key(wallet, key, "another passphrase", ops="interactive")  # replacing keeps it private
    assert stat.S_IMODE(wallet.stat().st_mode) == 0o600
    assert [p.name for p in wallet.parent.iterdir()] == ["alice.key"], "no temporary file is left behind"


def test_each_save_uses_a_fresh_salt(tmp_path, key):
    first, second = tmp_path / "a", tmp_path / "b"
    save_wallet_key(first, key, PASSPHRASE, ops="interactive")
    save_wallet_key(second, key, PASSPHRASE, ops="interactive")
    assert json.loads(first.read_text())["salt"] != json.loads(second.read_text())["salt"]


@pytest.mark.parametrize("wrong", ["", "correct horse battery staple", PASSPHRASE + " ", PASSPHRASE.upper()])
def test_wrong_passphrase_is_opaque(wallet, key, wrong):
    with pytest.raises(WalletError) as caught:
        load_wallet_key(wallet, wrong)
    assert_opaque(caught.value, key)


def test_the_passphrase_is_unicode_normalized(tmp_path, key):
    path = tmp_path / "k"
    save_wallet_key(path, key, "caf\u00e9", ops="interactive")  # é precomposed
    assert load_wallet_key(path, "cafe\u0301") == key  # e + combining acute


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("box", None),
        ("salt", None),
        ("public_key", KeyPair.from_seed(bytes(32)).public_key.hex()),
        ("label", "mallory"),
        ("opslimit", 3),
        ("memlimit", 2**40),
        ("opslimit", True),
        ("kdf", "scrypt"),
        ("version", 2),
        ("box", "not base64!"),
    ],
)
def test_tampering_with_any_field_is_caught(wallet, key, field, value):
    document = json.loads(wallet.read_text())
    if value is None:  # flip one bit of the decoded bytes
        raw = bytearray(base64.b64decode(document[field]))
        raw[len(raw) // 2] ^= 0x01
        value = base64.b64encode(bytes(raw)).decode()
    document[field] = value
    wallet.write_text(json.dumps(document))
    with pytest.raises(WalletError) as caught:
        load_wallet_key(wallet, PASSPHRASE)
    assert_opaque(caught.value, key)


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"version": 1}'])
def test_a_damaged_file_is_opaque(tmp_path, key, content):
    path = tmp_path / "damaged"
    path.write_text(content)
    with pytest.raises(WalletError) as caught:
        load_wallet_key(path, PASSPHRASE)
    assert_opaque(caught.value, key)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(WalletError, match="cannot read wallet file"):
        load_wallet_key(tmp_path / "absent", PASSPHRASE)
    with pytest.raises(WalletError):
        wallet_public_key(tmp_path / "absent")


def test_empty_passphrase_is_refused(tmp_path, key):
    with pytest.raises(WalletError, match="empty passphrase"):
        save_wallet_key(tmp_path / "k", key, "", ops="interactive")
    assert not (tmp_path / "k").exists()


def test_unknown_cost_is_refused(tmp_path, key):
    with pytest.raises(WalletError, match="unknown Argon2id cost"):
        save_wallet_key(tmp_path / "k", key, PASSPHRASE, ops="fast")


def test_moderate_is_the_default(tmp_path, key):
    path = tmp_path / "k"
    save_wallet_key(path, key, PASSPHRASE)
    document = json.loads(path.read_text())
    assert (document["opslimit"], document["memlimit"]) == (3, 256 * 1024 * 1024)
    assert load_wallet_key(path, PASSPHRASE) == key


def test_the_public_key_needs_no_passphrase_but_a_readable_file(tmp_path):
    path = tmp_path / "k"
    path.write_text(json.dumps({"version": 1, "kdf": "argon2id", "public_key": "zz"}))
    with pytest.raises(WalletError, match="not a readable wallet key file"):
        wallet_public_key(path)
