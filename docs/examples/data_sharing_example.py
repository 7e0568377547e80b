"""Reproduce the data-sharing worked example of docs/PROTOCOL.md §11.8.

    .venv/bin/python docs/examples/data_sharing_example.py

Everything is fixed: seeds, nonces, times, and also the values a real client
draws at random (record salt, AES data key and nonce, the sealed boxes'
ephemeral keys), so the output is the same on every run. The script builds a
three-organization network in memory, enrolls a citizen, defines a catalogue
entry, publishes a sealed record, requests and grants a consent, records a
granted access (its result compared with the bytes the node's own builder,
node.access.AccessDesk, makes; the answer, shaped as granted_json in
node/api/routers/access.py shapes it, checked by the receiver's verifier,
client.received), then a
revocation and an access in the same block (refused by the rule at block time)
followed by the refusal the node records, and finally runs the regulator's
compliance check over the log. Each derived value is re-computed independently
(hashlib, cryptography's AES-GCM, libsodium's raw box, the Ed25519→X25519 map
done by hand) and compared with the ledger's functions.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl import bindings
from nacl.public import PrivateKey, SealedBox

from client.received import verify_access_answer
from ledger import codec
from ledger.audit import AuditedEntry, check_compliance
from ledger.block import OrderedBatch
from ledger.checkpoint import Checkpoint
from ledger.consent import CONTEXT_CONSENT_TERMS, PERIOD_MS, terms_hash, window_index
from ledger.crypto import KeyPair
from ledger.errors import EncodingError
from ledger.genesis import network_id
from ledger.merkle import ProofBuilder, hash_leaf, verify_inclusion
from ledger.processor import build_block
from ledger.request_auth import request_message, sign_request, verify_request
from ledger.rules.access import RESULT_CONTEXT, access_key, access_result_hash, consumer_access_key, subject_access_key
from ledger.rules.catalogue import check_record_payload
from ledger.rules.consents import consent_key, consumer_consent_key, subject_consent_key
from ledger.rules.records import commit_record_payload, provider_record_key, subject_record_key
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.memory import MemoryStore
from ledger.tx import build_transaction, parse_transaction
from node.access import AccessDesk, AccessRequest
from node.publishing import decode_opening
from privacy.envelope import AAD_CONTEXT, SealedRecord, open_record, open_sealed, record_aad, vault_keypair, x25519_public_from_ed25519

BUREAU = KeyPair.from_seed(bytes(32))             # admin of "bureau": custodian, identity_authority, regulator
NODE = KeyPair.from_seed(bytes([1]) * 32)         # node "bureau-peer0" (the custodian's node)
ALICE = KeyPair.from_seed(bytes([2]) * 32)        # an enrolled citizen
PSB = KeyPair.from_seed(bytes([3]) * 32)          # admin of "psb": provider
INSURER = KeyPair.from_seed(bytes([4]) * 32)      # admin of "insurer": consumer

T = 1_767_225_600_000                             # 2026-01-01T00:00:00Z, in ms
DAY = PERIOD_MS["day"]

RECORD_ID = bytes(range(16))
SALT = bytes(range(32))
DATA_KEY = bytes(range(0x20, 0x40))               # drawn at random by a real provider
GCM_NONCE = bytes(range(0x40, 0x4C))              # drawn at random by a real provider
WRAP_EPHEMERAL = bytes([5]) * 32                  # the sealed box's ephemeral X25519 key (random in libsodium)
RECIPIENT = bytes([6]) * 32                       # the consumer's one-time X25519 private key
RESULT_EPHEMERAL = bytes([7]) * 32
CONSENT_ID = bytes(range(0x10, 0x20))

ENTRY = {
    "type": "vehicle.registration",
    "version": 1,
    "title": "Motor vehicle registration",
    "provider": "psb",
    "sensitivity": "general",
    "fields": [
        {"name": "plate", "kind": "identifier"},
        {"name": "vehicle_type", "kind": "text"},
        {"name": "brand", "kind": "text"},
        {"name": "registered", "kind": "date"},
        {"name": "status", "kind": "text"},
    ],
}
PAYLOAD = {"plate": "鲁A12345", "vehicle_type": "car", "brand": "BYD", "registered": "2021-03-04", "status": "normal"}
P = 2**255 - 19


def show(label: str, value: bytes | str | int) -> None:
    if isinstance(value, bytes):
        value = value.hex()
    print(f"{label}: {value}")


def tx(key: KeyPair, network: bytes, tx_type: str, payload: dict, time_ms: int, nonce_byte: int, cosigners=()) -> bytes:
    return build_transaction(key, network, tx_type, payload, time_ms=time_ms, nonce=bytes([nonce_byte]) * 16, cosigners=cosigners)


def seal_with(plaintext: bytes, recipient_public: bytes, ephemeral_private: bytes) -> bytes:
    """libsodium crypto_box_seal written out, with a chosen ephemeral key:
    epk ‖ crypto_box(m, nonce = BLAKE2b-192(epk ‖ pk), pk, esk)."""
    ephemeral_public = bindings.crypto_scalarmult_base(ephemeral_private)
    nonce = hashlib.blake2b(ephemeral_public + recipient_public, digest_size=24).digest()
    return ephemeral_public + bindings.crypto_box(plaintext, nonce, recipient_public, ephemeral_private)


def ed25519_public_to_x25519(public: bytes) -> bytes:
    """The birational map u = (1 + y) / (1 − y) mod p, by hand (RFC 7748 §4.1)."""
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    return ((1 + y) * pow(1 - y, P - 2, P) % P).to_bytes(32, "little")


def main() -> None:
    print("== Vault key (X25519) derived from the custodian's Ed25519 node seed ==")
    vault_private, vault_public = vault_keypair(NODE.seed)
    clamped = bytearray(hashlib.sha512(NODE.seed).digest()[:32])
    clamped[0] &= 248
    clamped[31] = (clamped[31] & 127) | 64
    assert vault_private == bytes(clamped)
    assert vault_public == bindings.crypto_scalarmult_base(vault_private)
    assert vault_public == x25519_public_from_ed25519(NODE.public_key) == ed25519_public_to_x25519(NODE.public_key)
    show("node seed", NODE.seed)
    show("node public key (Ed25519)", NODE.public_key)
    show("vault private key = clamp(SHA-512(seed)[0:32])", vault_private)
    show("vault public key = Montgomery u of the node key", vault_public)

    print("\n== Network (block 0) ==")
    document = {
        "version": 1,
        "name": "sharing-demo",
        "time": T,
        "admin_threshold": 1,
        "orgs": [
            {"id": "bureau", "name": "Big Data Bureau", "roles": ["custodian", "identity_authority", "regulator"],
             "admin_keys": [BUREAU.public_key], "nodes": [{"id": "bureau-peer0", "key": NODE.public_key}]},
            {"id": "insurer", "name": "Insurer", "roles": ["consumer"], "admin_keys": [INSURER.public_key], "nodes": []},
            {"id": "psb", "name": "Public Security Bureau", "roles": ["provider"], "admin_keys": [PSB.public_key], "nodes": []},
        ],
    }
    network = network_id(document)
    show("network id", network)
    show("citizen key (seed 02×32)", ALICE.public_key)

    print("\n== Catalogue entry and the payload check ==")
    check_record_payload(ENTRY, PAYLOAD)
    for bad, why in (
        ({**PAYLOAD, "registered": "2021-3-4"}, "date not YYYY-MM-DD"),
        ({**PAYLOAD, "extra": 1}, "a field the entry does not name"),
        ({key: value for key, value in PAYLOAD.items() if key != "status"}, "a missing field"),
    ):
        try:
            check_record_payload(ENTRY, bad)
            raise AssertionError(why)
        except EncodingError as exc:
            print(f"refused ({why}): {exc}")

    print("\n== Record version 1: opening, commitment, AAD, sealed record ==")
    payload_bytes = codec.encode(PAYLOAD)
    opening = codec.encode({"salt": SALT, "payload": PAYLOAD})
    assert decode_opening(opening) == {"salt": SALT, "payload": PAYLOAD}
    commitment = commit_record_payload(SALT, payload_bytes)
    assert commitment == hashlib.sha256(b"quancheng-ledger/v1/record\x00" + SALT + payload_bytes).digest()
    aad = record_aad(RECORD_ID, 1, ENTRY["type"], ALICE.public_key)
    assert aad == codec.encode([AAD_CONTEXT, RECORD_ID, 1, ENTRY["type"], ALICE.public_key])
    assert aad[:37] == bytes.fromhex("85") + bytes([0x78, 34]) + b"quancheng-ledger/v1/record-payload"
    ciphertext = AESGCM(DATA_KEY).encrypt(GCM_NONCE, opening, aad)
    wrapped = seal_with(DATA_KEY, vault_public, WRAP_EPHEMERAL)
    assert SealedBox(PrivateKey(vault_private)).decrypt(wrapped) == DATA_KEY
    sealed = SealedRecord(nonce=GCM_NONCE, ciphertext=ciphertext, wrapped_key=wrapped)
    assert open_record(sealed, vault_private, aad) == opening
    assert SealedRecord.decode(sealed.encode()) == sealed
    show("enc(payload)", payload_bytes)
    show("salt", SALT)
    show("opening = enc({salt, payload})", opening)
    show("commitment = SHA-256(CONTEXT_RECORD_COMMITMENT || salt || enc(payload))", commitment)
    show("record id", RECORD_ID)
    show("AAD = enc([AAD_CONTEXT, record_id, 1, type, subject])", aad)
    show("data key (AES-256)", DATA_KEY)
    show("GCM nonce", GCM_NONCE)
    show("ciphertext = AES-256-GCM(data key, nonce, opening, AAD) (ct || 16-byte tag)", ciphertext)
    show("sealed-box ephemeral X25519 private key", WRAP_EPHEMERAL)
    show("wrapped_key = epk(32) || crypto_box(data key) (80 bytes)", wrapped)
    show("SealedRecord.encode() = enc({nonce, ciphertext, wrapped_key})", sealed.encode())

    print("\n== Consent terms ==")
    requested_at = T + 3000
    terms = {
        "consent_id": CONSENT_ID,
        "subject": ALICE.public_key,
        "data_types": ["vehicle.registration"],
        "purpose": {"code": "insurance.claim", "text": "car accident claim"},
        "mode": "raw",
        "data_from": 0,
        "data_until": requested_at,
        "valid_from": requested_at,
        "valid_until": requested_at + 7 * DAY,
        "max_uses": 10,
        "frequency": {"max": 5, "per": "day"},
        "data_life_days": 30,
        "legal_basis": "pipl-13.1-consent",
        "contact": "claims@insurer.example",
    }
    digest = terms_hash(terms)
    assert digest == hashlib.sha256(b"quancheng-ledger/v1/consent-terms\x00" + codec.encode(terms)).digest()
    show("CONTEXT_CONSENT_TERMS", CONTEXT_CONSENT_TERMS)
    show("enc(terms)", codec.encode(terms))
    show("terms_hash = SHA-256(CONTEXT_CONSENT_TERMS || enc(terms))", digest)

    print("\n== The access request (POST /v1/access, signed as in §10.1) ==")
    recipient_public = bindings.crypto_scalarmult_base(RECIPIENT)
    body = json.dumps(
        {"subject": ALICE.public_key.hex(), "consent_id": CONSENT_ID.hex(), "recipient_key": recipient_public.hex()},
        separators=(",", ":"),
    ).encode()
    access_time = T + 5000
    request_nonce = bytes(range(0x50, 0x60))
    headers = sign_request(INSURER, "POST", b"/v1/access", body, time_ms=access_time, nonce=request_nonce)
    verified = verify_request(headers, "POST", b"/v1/access", body, now_ms=access_time)
    message = request_message("POST", b"/v1/access", body, access_time, request_nonce)
    assert verified.digest == hashlib.sha256(message).digest()
    print(f"body: {body.decode()}")
    show("recipient X25519 private key", RECIPIENT)
    show("recipient_key", recipient_public)
    show("signed message", message)
    show("request_digest = SHA-256(message)", verified.digest)

    print("\n== The result released, its hash, sealed to the recipient ==")
    released = {
        "access": {"subject": ALICE.public_key, "data_types": ["vehicle.registration"], "purpose": "insurance.claim", "mode": "raw",
                   "consent_id": CONSENT_ID},
        "records": [
            {"record_id": RECORD_ID, "version": 1, "type": "vehicle.registration", "as_of": T - DAY,
             "commitment": commitment, "salt": SALT, "payload": PAYLOAD},
        ],
    }
    result = codec.encode(released)
    # The same bytes as the custodian's node builds them (a raw result needs neither its peer nor its vault).
    node_request = AccessRequest(requester=INSURER.public_key, consumer="insurer", request_digest=verified.digest, subject=ALICE.public_key,
                                 consent_id=CONSENT_ID, data_types=None, recipient_key=recipient_public)
    desk = AccessDesk(None, None, b"", lambda: access_time)  # type: ignore[arg-type]
    assert desk._result(node_request, ["vehicle.registration"], "insurance.claim", released["records"], None) == result
    result_hash = access_result_hash(result)
    assert result_hash == hashlib.sha256(b"quancheng-ledger/v1/access-result\x00" + result).digest()
    sealed_result = seal_with(result, recipient_public, RESULT_EPHEMERAL)
    assert open_sealed(sealed_result, RECIPIENT) == result
    show("RESULT_CONTEXT", RESULT_CONTEXT)
    show("result plaintext", result)
    show("result_hash = SHA-256(RESULT_CONTEXT || result)", result_hash)
    show("sealed_result (ephemeral key 07×32)", sealed_result)

    print("\n== The chain ==")
    access_payload = {
        "requester": INSURER.public_key,
        "request_digest": verified.digest,
        "subject": ALICE.public_key,
        "data_types": ["vehicle.registration"],
        "purpose": "insurance.claim",
        "mode": "raw",
        "consumer": "insurer",
        "consent_id": CONSENT_ID,
        "records": [{"record_id": RECORD_ID, "version": 1}],
        "outcome": "granted",
        "result_hash": result_hash,
    }
    revoked_at = T + 6000
    refused_payload = {key: value for key, value in access_payload.items() if key not in ("records", "outcome", "result_hash")}
    batches = [
        (T, [tx(BUREAU, network, "network.genesis", document, T, 0, [INSURER, PSB])]),
        (T + 1000, [
            tx(BUREAU, network, "catalogue.define", {"entry": ENTRY}, T + 1000, 1),
            tx(BUREAU, network, "citizen.enroll", {"citizen_key": ALICE.public_key, "id_commitment": bytes(32)}, T + 1000, 2, [ALICE]),
        ]),
        (T + 2000, [tx(PSB, network, "record.publish",
                       {"record_id": RECORD_ID, "subject": ALICE.public_key, "type": ENTRY["type"], "as_of": T - DAY, "commitment": commitment},
                       T + 2000, 3)]),
        (requested_at, [tx(INSURER, network, "consent.request", terms, requested_at, 4)]),
        (T + 4000, [tx(ALICE, network, "consent.grant", {"consent_id": CONSENT_ID, "terms_hash": digest}, T + 4000, 5)]),
        (access_time, [tx(NODE, network, "access.record", access_payload, access_time, 6)]),
        (revoked_at, [
            tx(ALICE, network, "consent.revoke", {"consent_id": CONSENT_ID}, revoked_at, 7),
            tx(NODE, network, "access.record", {**access_payload, "result_hash": bytes(32)}, revoked_at, 8),
        ]),
        (T + 7000, [tx(NODE, network, "access.record", {**refused_payload, "records": [], "outcome": "refused", "reason": "consent_revoked"}, T + 7000, 9)]),
    ]
    store = LedgerStore(MemoryStore())
    for seq, (time_ms, envelopes) in enumerate(batches):
        outcome = build_block(
            OrderedBatch(seq, time_ms, tuple(envelopes)),
            network=network, head=store.head(), log=store.compact_range(), state=store.state, is_committed=store.is_committed,
        )
        checkpoint = Checkpoint(network, "bureau-peer0", outcome.header.tree_size, outcome.header.log_root,
                                outcome.header.height, outcome.block_hash, time_ms + 1)
        store.append(outcome, checkpoint.sign(NODE), sync=False)
        for result_tx in outcome.txs:
            envelope = envelopes[result_tx.log_index - outcome.header.first_index]
            print(f"block {outcome.header.height} (time T+{time_ms - T}) leaf {result_tx.log_index}: "
                  f"{parse_transaction(envelope).type} -> {int(result_tx.code)} {result_tx.code.name}"
                  f"{' (' + result_tx.reason + ')' if result_tx.reason else ''}")
    granted_tx = parse_transaction(store.leaf(6))
    show("access.record body (leaf 6, signed by the node key)", granted_tx.body)
    show("its tx id", granted_tx.tx_id)
    codes = [int(code) for height in range(len(batches)) for code in store.header(height).codes]
    assert codes == [0, 0, 0, 0, 0, 0, 0, 0, 12, 0], codes

    print("\n== State written for the record, the consent and the access ==")
    state = store.state
    for key in (
        subject_record_key(ALICE.public_key, RECORD_ID),
        provider_record_key("psb", RECORD_ID),
        subject_consent_key(ALICE.public_key, CONSENT_ID),
        consumer_consent_key("insurer", CONSENT_ID),
        access_key(6),
        subject_access_key(ALICE.public_key, 6),
        consumer_access_key("insurer", 6),
        access_key(9),
    ):
        show(f"key {key.hex()}\n  value", state.get(key))
        print(f"  = {codec.decode(state.get(key))!r}")
    consent = codec.decode(state.get(consent_key(CONSENT_ID)))
    print(f"consent/<id> after the revoke: status={consent['status']} uses={consent['uses']} window={consent['window']} "
          f"window_uses={consent['window_uses']} granted_at={consent['granted_at']} last_use={consent['last_use']} "
          f"revoked_at={consent['revoked_at']}")
    assert consent["window"] == window_index(consent, access_time) == access_time // DAY

    print("\n== The receiver's check (client.received.verify_access_answer) ==")
    granted_envelope = store.leaf(6)
    signed = store.checkpoint(5)
    path = ProofBuilder(store, tree_size=signed.checkpoint.tree_size).inclusion_proof(6, signed.checkpoint.tree_size)
    verify_inclusion(hash_leaf(granted_envelope), 6, signed.checkpoint.tree_size, path, signed.checkpoint.root_hash)
    answer = {
        "access": {"tx_id": parse_transaction(granted_envelope).tx_id.hex(), "log_index": 6, "height": 5},
        "access_record": base64.b64encode(granted_envelope).decode(),
        "block_header": base64.b64encode(store.header_bytes(5)).decode(),  # as node/api/routers/access.py granted_json
        "result_hash": result_hash.hex(),
        "record_count": 1,
        "sealed_result": base64.b64encode(sealed_result).decode(),
        "checkpoint": base64.b64encode(signed.encode()).decode(),
        "audit_path": [node.hex() for node in path],
    }
    received = verify_access_answer(
        answer, recipient_private_key=RECIPIENT, requester=INSURER.public_key, subject=ALICE.public_key,
        node_keys={NODE.public_key: "bureau-peer0"},
    )
    assert received.records[0]["payload"] == PAYLOAD
    show("access record tx id", received.tx_id)
    show("checkpoint after block 5 (tree size 7) root", signed.checkpoint.root_hash)
    print("audit path of leaf 6 in size 7:", [node.hex() for node in path])

    print("\n== The regulator's compliance check ==")
    entries = []
    for height in range(len(batches)):
        header = store.header(height)
        for position, leaf in enumerate(store.leaves(header.first_index, header.first_index + header.tx_count)):
            entries.append(AuditedEntry(header.first_index + position, header.time, header.codes[position] == 0, leaf))
    report = check_compliance(entries)
    assert (report.accesses_checked, report.granted, report.refused, report.violations) == (2, 1, 1, [])
    print(f"entries {report.entries}, accesses judged {report.accesses_checked} (granted {report.granted}, "
          f"refused {report.refused}: {dict(report.refusal_reasons)}), violations {len(report.violations)}")
    forged = list(entries)
    forged[8] = AuditedEntry(8, entries[8].block_time, True, entries[8].envelope)  # a node marks the refused access valid
    print("if leaf 8 were marked VALID:", [vars(v) for v in check_compliance(forged).violations])


if __name__ == "__main__":
    main()
