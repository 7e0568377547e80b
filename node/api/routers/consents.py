"""Consents: read them here; request, grant, reject, pause, resume and revoke are signed
transactions sent to ``POST /v1/transactions`` (the SDK builds them).

Visibility: a citizen sees the consents about them and those they answer for
(a beneficiary), a consumer the consents it requested, a regulator or
custodian all. ``status`` is the effective status at the node's clock
(``expired`` once ``valid_until`` has passed); ``stored_status`` is the one in state.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledger.genesis import Role
from node.api.auth import AUDITOR_ROLES, CallerDep, require_role
from node.api.dependencies import NodeDep
from node.api.errors import ApiError
from node.api.parsing import parse_hex

router = APIRouter(prefix="/v1/consents", tags=["consents"])


@router.get("")
def list_consents(
    caller: CallerDep,
    node: NodeDep,
    status: Annotated[str | None, Query(description="only consents whose effective status is this")] = None,
    subject: Annotated[str | None, Query(description="hex citizen key (regulators)")] = None,
    consumer: Annotated[str | None, Query(description="consumer org id (regulators)")] = None,
) -> dict:
    now = node.clock_ms()
    queries = node.queries
    if caller.is_citizen:
        mine = queries.consents(now, subject=caller.key) + queries.consents(now, grantor=caller.key)
    elif caller.has_role(*AUDITOR_ROLES):
        if subject is not None:
            mine = queries.consents(now, subject=parse_hex(subject, "subject", 32))
        else:
            mine = queries.consents(now, consumer=consumer)
    else:
        require_role(caller, Role.CONSUMER)
        mine = queries.consents(now, consumer=caller.org)
    if status is not None:
        mine = [consent for consent in mine if consent["status"] == status]
    return {"consents": mine}


@router.get("/{consent_id}")
def get_consent(consent_id: str, caller: CallerDep, node: NodeDep) -> dict:
    consent = node.queries.consent(parse_hex(consent_id, "consent_id", 16), node.clock_ms())
    visible = consent is not None and (
        caller.has_role(*AUDITOR_ROLES)
        or caller.key.hex() in (consent["terms"]["subject"], consent["grantor"])
        or consent["consumer"] == caller.org
    )
    if not visible:
        raise ApiError("not_found", f"no consent {consent_id} visible to the caller")
    return consent
