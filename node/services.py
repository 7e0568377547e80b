"""What the API routes work with: the peer plus the node-local services built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from node.access import AccessDesk
from node.aggregates import AggregateDesk
from node.modules import ModuleDesk
from node.peer import Peer
from node.publishing import Publisher
from node.queries import Queries
from node.vault import Vault
from privacy.envelope import vault_keypair

__all__ = ["NodeServices", "build_services"]


@dataclass(frozen=True)
class NodeServices:
    peer: Peer
    vault: Vault
    publisher: Publisher
    access: AccessDesk
    modules: ModuleDesk
    aggregates: AggregateDesk
    queries: Queries
    clock_ms: Callable[[], int]
    vault_public_key: bytes


def build_services(peer: Peer, vault: Vault, clock_ms: Callable[[], int]) -> NodeServices:
    """The vault key pair is derived from the node key, so the key providers wrap record keys
    for is bound to the node key the ledger names (docs/PROTOCOL.md, records)."""
    private_key, public_key = vault_keypair(peer.node_key.seed)
    return NodeServices(
        peer=peer,
        vault=vault,
        publisher=Publisher(peer, vault, private_key),
        access=AccessDesk(peer, vault, private_key, clock_ms),
        modules=ModuleDesk(peer, vault, clock_ms),
        aggregates=AggregateDesk(peer, vault, private_key, clock_ms),
        queries=Queries(peer.store),
        clock_ms=clock_ms,
        vault_public_key=public_key,
    )
