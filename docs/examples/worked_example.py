"""Reproduce the worked example of docs/PROTOCOL.md §11.

    .venv/bin/python docs/examples/worked_example.py

Everything is fixed (seeds, nonces, times), and Ed25519 signatures are
deterministic, so the output is the same on every run and every machine.
The script builds a one-organization network, its genesis block, one block with
a `policy.set` transaction (and the same envelope again, to show a refused
duplicate: only a VALID transaction takes its id), a checkpoint, and the
national-ID and record commitments and record keys of §11.6-11.7; it cross-checks the ledger code against
independent re-computations (hashlib, the RFC 6962 definitions) as it goes.
It does not touch any data directory: the store is in memory.
"""

from __future__ import annotations

import hashlib

from ledger import codec
from ledger.block import BlockHeader, OrderedBatch
from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.crypto import CONTEXT_CHECKPOINT, CONTEXT_TRANSACTION, KeyPair, verify
from ledger.genesis import genesis_to_json, network_id
from ledger.identity import CONTEXT_NATIONAL_ID, commit_national_id
from ledger.merkle import hash_children, hash_leaf, verify_consistency, verify_inclusion
from ledger.processor import build_block, state_hash
from ledger.rules.records import CONTEXT_RECORD_COMMITMENT, commit_record_payload, record_key, record_version_key
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.memory import MemoryStore
from ledger.tx import build_transaction, parse_transaction

ADMIN = KeyPair.from_seed(bytes(32))          # admin of org "demo-bureau"
NODE = KeyPair.from_seed(bytes([1]) * 32)     # key of node "demo-peer0"
GENESIS_TIME = 1_700_000_000_000              # 2023-11-14T22:13:20Z, in ms
BLOCK1_TIME = 1_700_000_060_000
CHECKPOINT_TIME = 1_700_000_060_123


def show(label: str, value: bytes | str | int) -> None:
    if isinstance(value, bytes):
        value = value.hex()
    print(f"{label}: {value}")


def show_key(key: bytes) -> str:
    """A state key as text prefix + hex of a binary (public key) suffix."""
    prefix, _, rest = key.partition(b"/")
    if rest.isascii() and rest.decode().isprintable():
        return key.decode()
    return f"{prefix.decode()}/<{rest.hex()}>"


def annotate(data: bytes) -> list[str]:
    """A minimal CBOR annotator for the ledger's data model (one line per data item)."""
    lines: list[str] = []

    def head(pos: int) -> tuple[int, int, int]:
        initial = data[pos]
        major, info = initial >> 5, initial & 31
        if info < 24:
            return major, info, pos + 1
        width = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        return major, int.from_bytes(data[pos + 1 : pos + 1 + width], "big"), pos + 1 + width

    def item(pos: int, indent: int) -> int:
        major, arg, after = head(pos)
        pad = "  " * indent
        if major in (0, 1):
            value = arg if major == 0 else -1 - arg
            lines.append(f"{pad}{data[pos:after].hex():<20} # int {value}")
            return after
        if major in (2, 3):
            end = after + arg
            kind = "bytes" if major == 2 else "text"
            shown = data[after:end].decode() if major == 3 else f"({arg} bytes)"
            lines.append(f"{pad}{data[pos:after].hex():<20} # {kind}({arg}) {shown}")
            if major == 2 and arg:
                lines.append(f"{pad}  {data[after:end].hex()}")
            elif major == 3:
                lines.append(f"{pad}  {data[after:end].hex()}")
            return end
        if major == 4:
            lines.append(f"{pad}{data[pos:after].hex():<20} # array({arg})")
            for _ in range(arg):
                after = item(after, indent + 1)
            return after
        if major == 5:
            lines.append(f"{pad}{data[pos:after].hex():<20} # map({arg})")
            for _ in range(arg):
                after = item(after, indent + 1)
                after = item(after, indent + 2)
            return after
        simple = {20: "false", 21: "true", 22: "null"}[arg]
        lines.append(f"{pad}{data[pos:after].hex():<20} # {simple}")
        return after

    end = item(0, 0)
    assert end == len(data)
    return lines


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash, straight from the definition (independent of ledger.merkle)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def main() -> None:
    print("== Keys (Ed25519, RFC 8032) ==")
    show("admin seed", ADMIN.seed)
    show("admin public key", ADMIN.public_key)
    show("node seed", NODE.seed)
    show("node public key", NODE.public_key)

    print("\n== Genesis document ==")
    document = {
        "version": 1,
        "name": "demo",
        "time": GENESIS_TIME,
        "admin_threshold": 1,
        "orgs": [
            {
                "id": "demo-bureau",
                "name": "Demo Bureau",
                "roles": ["custodian", "identity_authority"],
                "admin_keys": [ADMIN.public_key],
                "nodes": [{"id": "demo-peer0", "key": NODE.public_key}],
            }
        ],
    }
    print(genesis_to_json(document))
    genesis_bytes = codec.encode(document)
    network = network_id(document)
    assert network == hashlib.sha256(genesis_bytes).digest()
    show("canonical genesis", genesis_bytes)
    show("network id = SHA-256(canonical genesis)", network)

    genesis_env = build_transaction(
        ADMIN, network, "network.genesis", document, time_ms=GENESIS_TIME, nonce=bytes(16)
    )
    genesis_tx = parse_transaction(genesis_env)
    show("genesis envelope", genesis_env)
    show("genesis tx id", genesis_tx.tx_id)

    print("\n== The worked transaction: policy.set ==")
    envelope = build_transaction(
        ADMIN,
        network,
        "policy.set",
        {"admin_threshold": 1},
        time_ms=BLOCK1_TIME,
        nonce=bytes(range(16)),
    )
    tx = parse_transaction(envelope)
    (public_key, signature), = tx.signatures
    assert tx.tx_id == hashlib.sha256(tx.body).digest()
    verify(public_key, CONTEXT_TRANSACTION, tx.body, signature)
    show("body", tx.body)
    print("body, annotated:")
    for line in annotate(tx.body):
        print("  " + line)
    show("tx id = SHA-256(body)", tx.tx_id)
    show("signed message = CONTEXT_TRANSACTION || body", CONTEXT_TRANSACTION + tx.body)
    show("signature", signature)
    show("envelope", envelope)
    print("envelope, annotated:")
    for line in annotate(envelope):
        print("  " + line)
    show("leaf hash = SHA-256(0x00 || envelope)", hash_leaf(envelope))

    print("\n== Blocks ==")
    store = LedgerStore(MemoryStore())
    outcomes = []
    for batch in (
        OrderedBatch(0, GENESIS_TIME, (genesis_env,)),
        OrderedBatch(1, BLOCK1_TIME, (envelope, envelope)),
    ):
        outcome = build_block(
            batch,
            network=network,
            head=store.head(),
            log=store.compact_range(),
            state=store.state,
            is_committed=store.is_committed,
        )
        store.append(outcome, sync=False)
        outcomes.append(outcome)
        header = outcome.header
        assert outcome.block_hash == hashlib.sha256(outcome.header_bytes).digest()
        assert BlockHeader.decode(outcome.header_bytes) == header
        assert header.state_hash == state_hash(outcome.state_writes)
        print(f"-- block {header.height} --")
        for tx_outcome in outcome.txs:
            print(f"  leaf {tx_outcome.log_index}: code {int(tx_outcome.code)} {tx_outcome.code.name}"
                  f"{' (' + tx_outcome.reason + ')' if tx_outcome.reason else ''}"
                  f"; takes the id: {tx_outcome.code == 0}; tx index entry: {tx_outcome.indexed}")
        print("  state writes (key -> value, sorted by key):")
        for key in sorted(outcome.state_writes):
            value = outcome.state_writes[key]
            shown = "null (deleted)" if value is None else f"{value.hex()}  = {codec.decode(value)!r}"
            print(f"    {show_key(key)} -> {shown}")
        preimage = codec.encode([[key, outcome.state_writes[key]] for key in sorted(outcome.state_writes)])
        if len(preimage) < 200:
            show("  state_hash preimage", preimage)
        show("  state_hash", header.state_hash)
        show("  header bytes", outcome.header_bytes)
        show("  block hash = SHA-256(header bytes)", outcome.block_hash)
    # Only the VALID copy took the id; the duplicate wrote no tx index entry.
    location = store.tx_location(tx.tx_id)
    assert (location.log_index, location.height, int(location.code)) == (1, 1, 0)
    assert store.is_committed(tx.tx_id)
    show("tx index entry for the tx id = [log_index, height, code]",
         codec.encode([location.log_index, location.height, int(location.code)]))
    print("block 1 header, annotated:")
    for line in annotate(outcomes[1].header_bytes):
        print("  " + line)

    print("\n== Log (RFC 6962) ==")
    leaves = [genesis_env, envelope, envelope]
    hashes = [hash_leaf(leaf) for leaf in leaves]
    for index, value in enumerate(hashes):
        show(f"leaf hash {index}", value)
    root1, root3 = mth(leaves[:1]), mth(leaves)
    assert root1 == outcomes[0].header.log_root and root3 == outcomes[1].header.log_root
    assert root3 == hash_children(hash_children(hashes[0], hashes[1]), hashes[2])
    show("root(size 1)", root1)
    show("root(size 3) = H(0x01 || H(0x01 || h0 || h1) || h2)", root3)
    inclusion = [hashes[0], hashes[2]]  # PATH(1, D[0:3]) of RFC 6962 §2.1.1
    verify_inclusion(hashes[1], 1, 3, inclusion, root3)
    print("inclusion proof of leaf 1 in size 3:", [h.hex() for h in inclusion])
    consistency = [hashes[1], hashes[2]]  # PROOF(1, D[0:3]) of RFC 6962 §2.1.2
    verify_consistency(1, 3, root1, root3, consistency)
    print("consistency proof 1 -> 3:", [h.hex() for h in consistency])

    print("\n== Checkpoint after block 1 ==")
    header = outcomes[1].header
    checkpoint = Checkpoint(
        network=network,
        node_id="demo-peer0",
        tree_size=header.tree_size,
        root_hash=header.log_root,
        height=header.height,
        block_hash=outcomes[1].block_hash,
        time=CHECKPOINT_TIME,
    )
    signed = checkpoint.sign(NODE)
    signed.verify()
    verify(NODE.public_key, CONTEXT_CHECKPOINT, checkpoint.encode(), signed.signature)
    assert SignedCheckpoint.decode(signed.encode()) == signed
    holder = store.state.get(b"nodekey/" + NODE.public_key)
    assert codec.decode(holder) == {"node": "demo-peer0"}
    show("checkpoint body (signed bytes)", checkpoint.encode())
    show("signature over CONTEXT_CHECKPOINT || body", signed.signature)
    show("encoded signed checkpoint [body, node_key, signature]", signed.encode())
    show("state nodekey/<node key>", holder)

    print("\n== National-ID commitment ==")
    national_id = "11010519491231002X"  # the specimen number of GB 11643-1999
    salt = bytes(range(32))
    commitment = commit_national_id(national_id, salt)
    assert commitment == hashlib.sha256(CONTEXT_NATIONAL_ID + salt + national_id.encode()).digest()
    show("id", national_id)
    show("salt", salt)
    show("commitment = SHA-256(CONTEXT_NATIONAL_ID || salt || id)", commitment)

    print("\n== Record commitment and record keys ==")
    record_context = b"quancheng-ledger/v1/record\x00"  # written out independently of the code
    assert CONTEXT_RECORD_COMMITMENT == record_context
    payload = codec.encode({"plate": "鲁A12345"})
    record_commitment = commit_record_payload(salt, payload)
    assert record_commitment == hashlib.sha256(record_context + salt + payload).digest()
    record_id = bytes(range(16))
    assert record_key(record_id) == b"record/" + record_id
    assert record_version_key(record_id, 2) == b"record/" + record_id + b"/" + (2).to_bytes(4, "big")
    show("CONTEXT_RECORD_COMMITMENT", record_context)
    show("enc(payload)", payload)
    show("salt", salt)
    show("commitment = SHA-256(CONTEXT_RECORD_COMMITMENT || salt || enc(payload))", record_commitment)
    show("record id", record_id)
    show("record/<id>", record_key(record_id))
    show("record/<id>/u32(2)", record_version_key(record_id, 2))


if __name__ == "__main__":
    main()
