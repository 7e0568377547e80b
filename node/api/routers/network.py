"""The consortium as the committed state describes it now."""

from __future__ import annotations

from fastapi import APIRouter

from ledger import codec
from ledger.rules.engine import org_key
from ledger.rules.membership import ORGS_KEY, POLICY_KEY
from node.api.auth import CallerDep
from node.api.dependencies import PeerDep, committed_head

router = APIRouter(prefix="/v1", tags=["network"])


@router.get("/network")
def get_network(caller: CallerDep, peer: PeerDep) -> dict:
    """Any authenticated caller (member or citizen) may read the organizations, roles and keys."""
    head = committed_head(peer)
    state = peer.store.state
    policy = codec.decode(state.get(POLICY_KEY))
    orgs = []
    for org_id in codec.decode(state.get(ORGS_KEY)):
        org = codec.decode(state.get(org_key(org_id)))
        orgs.append(
            {
                "id": org["id"],
                "name": org["name"],
                "roles": org["roles"],
                "admin_keys": [key.hex() for key in org["admin_keys"]],
                "nodes": [{"id": node["id"], "key": node["key"].hex()} for node in org["nodes"]],
            }
        )
    return {
        "network": peer.network.hex(),
        "name": policy["name"],
        "admin_threshold": policy["admin_threshold"],
        "height": head.height,
        "tree_size": head.tree_size,
        "this_node": {"id": peer.node_id, "key": peer.node_key.public_key.hex()},
        "orgs": orgs,
    }
