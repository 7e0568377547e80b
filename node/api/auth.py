"""Who is calling: every API request is signed by a member's key (docs/PROTOCOL.md §10.1).

:func:`authenticate` is a FastAPI dependency (so tests can replace it through
``app.dependency_overrides``): it checks the request signature, the time
window and the nonce, then looks the key up in the committed state. A route
that exposes more than its caller's own data narrows the audience with
:func:`require_role`.

A peer fetching blocks from another peer (node/sync.py) signs with its node
key. The network's node keys (state ``nodekey/<key>``) are callers too, but only
for the log routes (checkpoints, entries, headers, proofs, blocks): anywhere
else a node key is refused as ``forbidden``.

The node's clock is ``app.state.clock_ms`` when set (tests pin it), otherwise
the wall clock; the nonce memory is ``app.state.replay_guard``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Callable

from fastapi import Depends, Request

from ledger.genesis import Role
from ledger.request_auth import MAX_REQUEST_SKEW_MS, RequestAuthError, verify_request
from ledger.rules.engine import resolve_signer
from ledger.rules.membership import node_key_holder
from node.api.errors import ApiError
from node.runtime import clock_ms as wall_clock_ms

__all__ = ["AUDITOR_ROLES", "LOG_ROUTES", "Caller", "CallerDep", "ReplayGuard", "authenticate", "require_log_reader", "require_role"]

MAX_REMEMBERED_NONCES = 1_000_000
AUDITOR_ROLES = (Role.REGULATOR, Role.CUSTODIAN)  # may read every transaction's metadata
LOG_ROUTES = "/v1/log/"  # the only routes a peer's node key may call


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: an organization member (with its org's roles), an enrolled citizen,
    or a peer of the network (``node`` set; log routes only)."""

    key: bytes
    org: str | None
    roles: frozenset[Role]
    request_digest: bytes = b""  # SHA-256 of the signed request message
    node: str | None = None  # the node id, when the key is a node key

    @property
    def is_citizen(self) -> bool:
        return self.org is None and self.node is None

    def has_role(self, *roles: Role) -> bool:
        return any(role in self.roles for role in roles)


class ReplayGuard:
    """Remembers each (key, nonce) for ``retention_ms`` after it is first seen; a second use is refused.

    A request is accepted only within MAX_REQUEST_SKEW_MS of its signed time, so
    a nonce first seen at ``now`` cannot be accepted again after ``now + 2 *
    MAX_REQUEST_SKEW_MS``: remembering it that long is enough. Expired nonces are
    dropped on every insertion; beyond ``capacity`` live nonces new requests are
    refused (``unavailable``) rather than letting memory grow without bound.
    """

    def __init__(self, *, retention_ms: int = 2 * MAX_REQUEST_SKEW_MS, capacity: int = MAX_REMEMBERED_NONCES) -> None:
        self._retention_ms = retention_ms
        self._capacity = capacity
        self._expiry: dict[tuple[bytes, bytes], int] = {}
        self._order: deque[tuple[int, tuple[bytes, bytes]]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def check(self, key: bytes, nonce: bytes, now_ms: int) -> None:
        """Return None and remember the nonce the first time; raise ApiError on a replay or when full."""
        entry = (key, nonce)
        with self._lock:
            self._prune(now_ms)
            if entry in self._expiry:
                raise ApiError("unauthenticated", "replayed request: this key already used this nonce (QCL-Nonce)")
            if len(self._expiry) >= self._capacity:
                raise ApiError("unavailable", "the node is remembering too many recent requests; retry in a minute")
            expiry = now_ms + self._retention_ms
            self._expiry[entry] = expiry
            self._order.append((expiry, entry))

    def _prune(self, now_ms: int) -> None:
        # Insertion order is expiry order while the clock moves forward; if it steps back,
        # a later entry may wait behind an earlier one, which only keeps it longer.
        while self._order and self._order[0][0] < now_ms:
            _, entry = self._order.popleft()
            del self._expiry[entry]


def _request_target(request: Request) -> bytes:
    """The raw path as sent (ASGI ``raw_path``), plus ``?query`` when there is a query."""
    scope = request.scope
    target = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return target + b"?" + query if query else target


async def authenticate(request: Request) -> Caller:
    """The dependency every data route takes: a verified, replay-checked member key, or 401."""
    body = await request.body()
    clock: Callable[[], int] = getattr(request.app.state, "clock_ms", wall_clock_ms)
    now_ms = clock()
    try:
        verified = verify_request(request.headers, request.method, _request_target(request), body, now_ms=now_ms)
    except RequestAuthError as exc:
        raise ApiError("unauthenticated", str(exc)) from None
    store = request.app.state.peer.store
    signer = resolve_signer(store.state, verified.public_key)
    node = None if signer is not None else store.read_state(node_key_holder(verified.public_key))
    if signer is None and node is None:
        raise ApiError("unauthenticated", f"key {verified.public_key.hex()} is not a member of the network")
    if node is not None and not request.scope["path"].startswith(LOG_ROUTES):
        raise ApiError("forbidden", f"node {node['node']!r} signs as a peer: a node key may read the log routes ({LOG_ROUTES}) only")
    guard: ReplayGuard = request.app.state.replay_guard
    guard.check(verified.public_key, verified.nonce, now_ms)
    if node is not None:
        return Caller(key=verified.public_key, org=None, roles=frozenset(), request_digest=verified.digest, node=node["node"])
    return Caller(key=signer.key, org=signer.org, roles=signer.roles, request_digest=verified.digest)


CallerDep = Annotated[Caller, Depends(authenticate)]


def require_log_reader(caller: Caller) -> None:
    """The whole log (entries, headers, blocks) is for auditors, and for peers fetching blocks they miss."""
    if caller.node is None:
        require_role(caller, *AUDITOR_ROLES)


def require_role(caller: Caller, *roles: Role) -> None:
    """Return None if the caller's organization holds one of ``roles``, else raise ApiError("forbidden")."""
    if not caller.has_role(*roles):
        wanted = ", ".join(sorted(role.value for role in roles))
        raise ApiError("forbidden", f"this request needs a caller whose organization holds one of the roles: {wanted}")
