"""A development consortium for a fresh data directory: the agencies, banks and
regulator of the mission brief, each with an admin key, and one peer run by the
big-data bureau (the custodian). Every key is written into the data directory,
which is what makes it a development network and not a deployment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from ledger.crypto import KeyPair
from ledger.genesis import Role, genesis_from_json, genesis_to_json, genesis_transaction
from ledger.tx import build_transaction
from node.keyfile import load_key, save_key

__all__ = [
    "DEV_CATALOGUE",
    "DEV_CUSTODIAN",
    "DEV_NODE_ID",
    "DEV_ORGS",
    "HoldsAdminKeys",
    "NodeConfig",
    "create_dev_network",
    "dev_catalogue_transactions",
    "load_node_config",
    "write_dev_genesis",
]

DEV_NODE_ID = "bigdata-peer0"
DEV_CUSTODIAN = "jinan-bigdata"  # defines the catalogue; runs the development peer
DEV_ORGS: tuple[tuple[str, str, tuple[Role, ...]], ...] = (
    ("jinan-bigdata", "Jinan Big Data Bureau", (Role.CUSTODIAN, Role.IDENTITY_AUTHORITY, Role.REGULATOR)),
    ("jinan-psb", "Jinan Public Security Bureau (vehicle registration)", (Role.PROVIDER,)),
    ("jinan-civil", "Jinan Civil Affairs Bureau", (Role.PROVIDER,)),
    ("jinan-medins", "Jinan Medical Insurance Bureau", (Role.PROVIDER,)),
    ("jinan-hpf", "Jinan Housing Provident Fund Centre", (Role.PROVIDER,)),
    ("jinan-amr", "Jinan Administration for Market Regulation", (Role.PROVIDER,)),
    ("jinan-tax", "Jinan Tax Service", (Role.PROVIDER,)),
    ("qilu-bank", "Qilu Bank", (Role.CONSUMER,)),
    ("taiping-insurance", "Taiping Insurance Jinan", (Role.CONSUMER,)),
    ("pbc-jinan", "People's Bank of China, Jinan branch", (Role.REGULATOR,)),
)
DEV_ADMIN_THRESHOLD = 3


def _fields(*pairs: str) -> list[dict[str, str]]:
    return [{"name": name, "kind": kind} for name, kind in (pair.split(":") for pair in pairs)]


# The data types the development consortium starts with (defined on chain by the custodian).
DEV_CATALOGUE: tuple[dict, ...] = (
    {"type": "vehicle.registration", "title": "Motor vehicle registration", "provider": "jinan-psb", "sensitivity": "general",
     "fields": _fields("plate:identifier", "vehicle_type:text", "brand:text", "registered:date", "status:text")},
    {"type": "traffic.violation", "title": "Traffic violations (12 months)", "provider": "jinan-psb", "sensitivity": "general",
     "fields": _fields("plate:identifier", "count:integer", "points:integer", "fines:amount", "latest:text")},
    {"type": "civil.death_registration", "title": "Death registration", "provider": "jinan-civil", "sensitivity": "sensitive",
     "category": "identity", "fields": _fields("date_of_death:date", "place:text", "certificate_no:identifier")},
    {"type": "medical.claims", "title": "Medical insurance settlements", "provider": "jinan-medins", "sensitivity": "sensitive",
     "category": "medical", "fields": _fields("year:integer", "visits:integer", "total_cost:amount", "reimbursed:amount")},
    {"type": "housing_fund.contributions", "title": "Housing provident fund contributions", "provider": "jinan-hpf",
     "sensitivity": "sensitive", "category": "financial", "fields": _fields("employer:text", "monthly:series")},
    {"type": "tax.payments", "title": "Individual and business tax payments", "provider": "jinan-tax", "sensitivity": "sensitive",
     "category": "financial", "fields": _fields("taxpayer:text", "monthly:series")},
    {"type": "market.business_licence", "title": "Business licence", "provider": "jinan-amr", "sensitivity": "general",
     "fields": _fields("licence_no:identifier", "name:text", "registered:date", "capital:amount", "status:text")},
)


class HoldsAdminKeys(Protocol):
    """Where the development admin keys are: a development node's directory, or a consortium's root."""

    def admin_key(self, org_id: str) -> KeyPair: ...


def dev_catalogue_transactions(config: HoldsAdminKeys, network: bytes, time_ms: int) -> list[bytes]:
    """catalogue.define (version 1) for every DEV_CATALOGUE entry, signed by the custodian's admin.

    Submit them once per network: a second definition at version 1 is refused by the catalogue rule.
    """
    custodian = config.admin_key(DEV_CUSTODIAN)
    return [
        build_transaction(custodian, network, "catalogue.define", {"entry": {**entry, "version": 1}}, time_ms=time_ms)
        for entry in DEV_CATALOGUE
    ]


class NodeConfig:
    """What a node needs from its data directory to run."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        settings = json.loads((data_dir / "node.json").read_text())
        self.node_id: str = settings["node_id"]
        self.port: int | None = settings.get("port")  # the HTTP port to serve on, when the config fixes one
        self.genesis = genesis_from_json((data_dir / "genesis.json").read_text())
        self.node_key = load_key(data_dir / "keys" / "node.key")
        self.genesis_envelope = (data_dir / "genesis.tx").read_bytes()

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger"

    def admin_key(self, org_id: str) -> KeyPair:
        return load_key(self.data_dir / "keys" / f"{org_id}.admin.key")


def create_dev_network(data_dir: Path, time_ms: int) -> None:
    """Write genesis.json, node.json and every key of the development consortium into ``data_dir``."""
    node_key = KeyPair.generate()
    save_key(data_dir / "keys" / "node.key", node_key)
    write_dev_genesis(data_dir, time_ms, {DEV_CUSTODIAN: [(DEV_NODE_ID, node_key.public_key)]})
    (data_dir / "node.json").write_text(json.dumps({"node_id": DEV_NODE_ID}, indent=2))


def write_dev_genesis(directory: Path, time_ms: int, nodes: Mapping[str, Sequence[tuple[str, bytes]]]) -> None:
    """Generate every organization's admin key into ``directory/keys``; write genesis.json and genesis.tx.

    ``nodes`` maps an organization id to the peers it runs: (node id, public node key).
    """
    keys_dir = directory / "keys"
    orgs = []
    founders = []
    for org_id, name, roles in DEV_ORGS:
        admin = KeyPair.generate()
        founders.append(admin)
        save_key(keys_dir / f"{org_id}.admin.key", admin)
        org_nodes = [{"id": node_id, "key": key} for node_id, key in nodes.get(org_id, ())]
        orgs.append({"id": org_id, "name": name, "roles": [r.value for r in roles], "admin_keys": [admin.public_key], "nodes": org_nodes})
    document = {
        "version": 1,
        "name": "quancheng-dev",
        "time": time_ms,
        "admin_threshold": DEV_ADMIN_THRESHOLD,
        "orgs": orgs,
    }
    (directory / "genesis.json").write_text(genesis_to_json(document))
    (directory / "genesis.tx").write_bytes(genesis_transaction(document, founders))


def load_node_config(data_dir: Path) -> NodeConfig:
    return NodeConfig(data_dir)
