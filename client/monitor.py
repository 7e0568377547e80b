"""Checkpoint exchange and fork detection: the regulator's monitor over every peer.

Every peer signs a checkpoint (tree size, log root) after each block. Honest
peers follow one ordered stream, so they hold the same leaves in the same
order and any two of their checkpoints must be prefixes of one log (RFC 6962
consistency). The monitor collects each peer's latest checkpoint, and the one
it recorded on an earlier run, and checks every pair.

A conflict is only worth reporting if a third party can check it without
trusting the monitor, so a :class:`Misbehaviour` carries exactly what makes it
checkable offline (:func:`verify_evidence`): both signed checkpoints, and, for
different tree sizes, a *witness* — a consistency proof that reproduces the
larger root together with the prefix root it commits to; by collision
resistance that prefix root is the only one the larger tree has, so a
different smaller root cannot belong to the same log. A peer that signs a root
for which nobody can produce such a proof is reported too, but as an
*unproven* accusation: a failed proof shows nothing offline. Which of two
conflicting peers is to blame is a judgement (the minority among all peers),
except when one peer's own checkpoints conflict: that is proof by itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping

import httpx

from client.sdk import ApiError, LedgerClient
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import CheckpointError, LedgerError, ProofError
from ledger.merkle import root_from_inclusion_proof, verify_consistency

__all__ = [
    "Basis",
    "Conflict",
    "Membership",
    "Misbehaviour",
    "Monitor",
    "MonitorError",
    "MonitorReport",
    "MonitorState",
    "PeerReport",
    "Witness",
    "verify_evidence",
]

STATE_VERSION = 1
# What a peer can answer instead of a checkpoint or proof: an API error, no answer, or bytes that do not decode.
_FETCH_ERRORS = (ApiError, httpx.HTTPError, LedgerError, ValueError, KeyError, TypeError, binascii.Error)


class MonitorError(Exception):
    """Raised for evidence that does not check out, a malformed state file, or peers that disagree on membership.

    ``code`` is stable: ``evidence_invalid``, ``evidence_inconclusive``,
    ``membership_disagreement``, ``state_invalid``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Conflict(str, Enum):
    """Why two signed checkpoints cannot both describe one append-only log."""

    SAME_SIZE = "same_size"  # equal tree sizes, different roots: conclusive
    PREFIX_MISMATCH = "prefix_mismatch"  # a witness shows the larger tree has another prefix root: conclusive
    UNPROVEN = "unproven"  # nobody produced a proof reproducing the larger root: an accusation only


class Basis(str, Enum):
    """Why the named peers are named."""

    SELF = "self"  # both checkpoints are the named peer's own: proof by itself
    MINORITY = "minority"  # the other signer agrees with a strict majority of the peers, the named one does not
    NO_MAJORITY = "no_majority"  # neither or both signers have a majority behind them: both are named


@dataclass(frozen=True)
class Membership:
    """The network and its node keys (public key → node id), as the monitor trusts them."""

    network: bytes
    node_keys: Mapping[bytes, str]


@dataclass(frozen=True)
class Witness:
    """A consistency proof from the smaller to the larger tree size that reproduces the larger root.

    ``prefix_root`` is the root the larger tree has at the smaller size; the
    proof binds it (``verify_consistency(m, n, prefix_root, larger_root, nodes)``
    holds), so it differs from the smaller checkpoint's root only if the two
    histories differ.
    """

    served_by: str
    nodes: tuple[bytes, ...]
    prefix_root: bytes


@dataclass(frozen=True)
class Misbehaviour:
    """Two signed checkpoints that cannot both be honest, and whom that names."""

    conflict: Conflict
    first: SignedCheckpoint  # the smaller (or equal) tree
    second: SignedCheckpoint
    named: tuple[str, ...]
    basis: Basis
    witness: Witness | None = None
    detail: str = ""

    @property
    def conclusive(self) -> bool:
        """Whether :func:`verify_evidence` can confirm the conflict offline."""
        return self.conflict is not Conflict.UNPROVEN

    def explain(self) -> str:
        first, second = self.first.checkpoint, self.second.checkpoint
        if self.conflict is Conflict.SAME_SIZE:
            what = f"both sign tree size {first.tree_size} with different roots"
        elif self.witness is not None:
            what = (
                f"{self.witness.served_by}'s consistency proof shows the tree of size {second.tree_size} has root "
                f"{self.witness.prefix_root.hex()[:16]}… at size {first.tree_size}, not {first.root_hash.hex()[:16]}…"
            )
        else:
            what = f"no peer produced a consistency proof from size {first.tree_size} to the root signed at size {second.tree_size}"
        return f"{what}{f' ({self.detail})' if self.detail else ''}"

    def to_json(self) -> dict[str, Any]:
        """The evidence as JSON: signed checkpoints in base64 (as the API serves them), hashes in hex.

        The ``node_id``/``height``/``tree_size``/``root_hash`` next to each
        checkpoint are for reading; verification uses only ``encoded``.
        """
        return {
            "conflict": self.conflict.value,
            "conclusive": self.conclusive,
            "named": list(self.named),
            "basis": self.basis.value,
            "first": _checkpoint_json(self.first),
            "second": _checkpoint_json(self.second),
            "witness": None if self.witness is None else {
                "served_by": self.witness.served_by,
                "first": self.first.checkpoint.tree_size,
                "second": self.second.checkpoint.tree_size,
                "prefix_root": self.witness.prefix_root.hex(),
                "consistency": [node.hex() for node in self.witness.nodes],
            },
            "explanation": self.explain(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Misbehaviour:
        """Read evidence written by :meth:`to_json` (malformed input raises MonitorError ``evidence_invalid``)."""
        try:
            witness = data["witness"]
            return cls(
                conflict=Conflict(data["conflict"]),
                first=SignedCheckpoint.decode(base64.b64decode(data["first"]["encoded"], validate=True)),
                second=SignedCheckpoint.decode(base64.b64decode(data["second"]["encoded"], validate=True)),
                named=tuple(str(node) for node in data["named"]),
                basis=Basis(data["basis"]),
                witness=None if witness is None else Witness(
                    served_by=str(witness["served_by"]),
                    nodes=tuple(bytes.fromhex(node) for node in witness["consistency"]),
                    prefix_root=bytes.fromhex(witness["prefix_root"]),
                ),
            )
        except (KeyError, TypeError, ValueError, binascii.Error, LedgerError) as exc:
            raise MonitorError("evidence_invalid", f"malformed evidence: {exc}") from None


def _checkpoint_json(signed: SignedCheckpoint) -> dict[str, Any]:
    checkpoint = signed.checkpoint
    return {
        "node_id": checkpoint.node_id,
        "height": checkpoint.height,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash.hex(),
        "encoded": base64.b64encode(signed.encode()).decode(),
    }


def verify_evidence(evidence: Misbehaviour, node_keys: Mapping[bytes, str]) -> None:
    """Return None iff ``evidence`` proves that its two checkpoints cannot both be honest.

    Offline: needs only the evidence and the network's node keys (public key →
    node id, e.g. from the genesis document). Checks both signatures, that each
    key is the node key of the node the checkpoint names, the same network,
    and the conflict itself; for ``basis == self`` also that both checkpoints
    are the named node's. The naming between two different peers (the
    majority judgement) is not something the evidence can prove, and is not
    checked. Raises MonitorError ``evidence_invalid``, or
    ``evidence_inconclusive`` for an unproven accusation.
    """
    first, second = evidence.first.checkpoint, evidence.second.checkpoint
    for signed in (evidence.first, evidence.second):
        try:
            signed.verify()
        except LedgerError as exc:
            raise MonitorError("evidence_invalid", str(exc)) from None
        owner = node_keys.get(signed.node_key)
        if owner != signed.checkpoint.node_id:
            raise MonitorError(
                "evidence_invalid",
                f"the checkpoint naming node {signed.checkpoint.node_id!r} is signed by "
                f"{'no node key of the network' if owner is None else f'the key of node {owner!r}'}",
            )
    if first.network != second.network:
        raise MonitorError("evidence_invalid", "the two checkpoints belong to different networks")
    if first.tree_size > second.tree_size:
        raise MonitorError("evidence_invalid", "the first checkpoint must have the smaller (or equal) tree size")
    signers = {first.node_id, second.node_id}
    if evidence.basis is Basis.SELF and (len(signers) != 1 or evidence.named != (first.node_id,)):
        raise MonitorError("evidence_invalid", "self-contradiction evidence needs two checkpoints of the one node it names")
    if evidence.basis is not Basis.SELF and (len(signers) != 2 or not set(evidence.named) <= signers or not evidence.named):
        raise MonitorError("evidence_invalid", "evidence between two peers must name one or both of their signers")
    if evidence.conflict is Conflict.SAME_SIZE:
        if first.tree_size != second.tree_size or first.root_hash == second.root_hash:
            raise MonitorError("evidence_invalid", "not two different roots for one tree size")
    elif evidence.conflict is Conflict.PREFIX_MISMATCH:
        witness = evidence.witness
        if first.tree_size >= second.tree_size or witness is None or witness.prefix_root == first.root_hash:
            raise MonitorError("evidence_invalid", "a prefix mismatch needs a smaller first tree and a witness with another prefix root")
        try:
            verify_consistency(first.tree_size, second.tree_size, witness.prefix_root, second.root_hash, list(witness.nodes))
        except ProofError as exc:
            raise MonitorError("evidence_invalid", f"the witness is not a consistency proof to the larger root: {exc}") from None
    else:
        raise MonitorError(
            "evidence_inconclusive",
            f"an accusation, not a proof: {evidence.explain()}; a failed or missing proof cannot be checked offline",
        )


@dataclass(frozen=True)
class PeerReport:
    """One peer as the monitor saw it: its latest checkpoint, and what could not be checked."""

    node_id: str
    checkpoint: SignedCheckpoint | None
    named: bool
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        checkpoint = None if self.checkpoint is None else self.checkpoint.checkpoint
        return {
            "node_id": self.node_id,
            "height": None if checkpoint is None else checkpoint.height,
            "tree_size": None if checkpoint is None else checkpoint.tree_size,
            "root_hash": None if checkpoint is None else checkpoint.root_hash.hex(),
            "consistent": None if checkpoint is None else not self.named,
            "problems": list(self.problems),
        }


@dataclass
class MonitorState:
    """What each peer signed on earlier runs: its latest checkpoint the monitor accepted.

    One per peer suffices: each newly recorded checkpoint was checked to extend
    the one before, and consistency along one peer's checkpoints is transitive,
    so checking the next one against the last recorded covers all history.
    """

    network: bytes | None = None
    checkpoints: dict[str, SignedCheckpoint] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> MonitorState:
        """The state in ``path``, or an empty state when the file does not exist yet."""
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            if data["version"] != STATE_VERSION:
                raise ValueError(f"version {data['version']} is not {STATE_VERSION}")
            return cls(
                network=None if data["network"] is None else bytes.fromhex(data["network"]),
                checkpoints={
                    str(node): SignedCheckpoint.decode(base64.b64decode(encoded, validate=True))
                    for node, encoded in data["checkpoints"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error, LedgerError) as exc:
            raise MonitorError("state_invalid", f"the monitor state {path} is malformed: {exc}") from None

    def save(self, path: Path) -> None:
        """Write the state, replacing the file only once the new one is complete."""
        data = {
            "version": STATE_VERSION,
            "network": None if self.network is None else self.network.hex(),
            "checkpoints": {node: base64.b64encode(signed.encode()).decode() for node, signed in sorted(self.checkpoints.items())},
        }
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(partial, path)


@dataclass(frozen=True)
class MonitorReport:
    peers: tuple[PeerReport, ...]
    evidence: tuple[Misbehaviour, ...]
    state: MonitorState

    @property
    def ok(self) -> bool:
        """No misbehaviour, and every peer was checked."""
        return not self.evidence and not any(peer.problems for peer in self.peers)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "peers": [peer.to_json() for peer in self.peers],
            "evidence": [item.to_json() for item in self.evidence],
        }


@dataclass(frozen=True)
class _Verdict:
    conflict: Conflict | None
    witness: Witness | None = None
    detail: str = ""


class Monitor:
    """Collects every peer's signed checkpoints and checks each pair for consistency.

    ``peers`` maps node id → a client for that peer's API (signed by a key
    that may read checkpoints and proofs, e.g. the regulator's admin key).
    Without ``membership`` the network and its node keys are taken from the
    peers' ``/v1/network`` listings, as a strict majority of them state it.
    """

    def __init__(self, peers: Mapping[str, LedgerClient], *, membership: Membership | None = None) -> None:
        self._peers = dict(peers)
        self._membership = membership

    def membership(self) -> Membership:
        """The given membership, or the one a strict majority of the answering peers lists."""
        if self._membership is None:
            views: Counter[tuple[bytes, frozenset[tuple[bytes, str]]]] = Counter()
            for client in self._peers.values():
                try:
                    info = client.network()
                    keys = frozenset((bytes.fromhex(n["key"]), n["id"]) for org in info["orgs"] for n in org["nodes"])
                    views[bytes.fromhex(info["network"]), keys] += 1
                except _FETCH_ERRORS:
                    continue
            top = views.most_common(1)
            if not top or 2 * top[0][1] <= sum(views.values()):
                raise MonitorError(
                    "membership_disagreement",
                    f"no strict majority of the {sum(views.values())} answering peers lists the same network and node keys",
                )
            (network, keys), _ = top[0]
            self._membership = Membership(network, dict(keys))
        return self._membership

    def run(self, state: MonitorState | None = None) -> MonitorReport:
        """Collect, compare, and return the report with the state to keep for the next run."""
        membership = self.membership()
        state = state or MonitorState()
        if state.network is not None and state.network != membership.network:
            raise MonitorError("state_invalid", "the monitor state was recorded for another network")
        problems: dict[str, list[str]] = {node: [] for node in self._peers}
        latest: dict[str, SignedCheckpoint] = {}
        for node_id in self._peers:
            try:
                latest[node_id] = self._checkpoint(node_id, None, membership)
            except _FETCH_ERRORS as exc:
                problems[node_id].append(f"no usable checkpoint: {_reason(exc)}")

        evidence: list[Misbehaviour] = []
        recorded = dict(state.checkpoints)
        for node_id, earlier in state.checkpoints.items():
            if node_id not in self._peers:
                continue  # not asked this time: keep what it signed
            found = self._check_own_history(node_id, earlier, latest.get(node_id), membership, problems[node_id])
            evidence.extend(found)
            if not found and node_id in latest:
                recorded[node_id] = latest[node_id]
        for node_id, signed in latest.items():
            recorded.setdefault(node_id, signed)
        evidence.extend(self._check_between_peers(latest))

        named = {node for item in evidence for node in item.named}
        peers = tuple(
            PeerReport(node_id, latest.get(node_id), node_id in named, tuple(problems[node_id])) for node_id in self._peers
        )
        return MonitorReport(peers, tuple(evidence), MonitorState(membership.network, recorded))

    # --- collection -----------------------------------------------------------

    def _checkpoint(self, node_id: str, height: int | None, membership: Membership) -> SignedCheckpoint:
        """The peer's checkpoint (latest, or after block ``height``), checked to be that peer's signed statement."""
        answer = self._peers[node_id].get("/v1/log/checkpoint", height=height)
        signed = SignedCheckpoint.decode(base64.b64decode(answer["encoded"], validate=True))
        _require_attributable(signed, node_id, membership)
        return signed

    def _consistency_proof(self, node_id: str, first: int, second: int) -> tuple[bytes, ...]:
        answer = self._peers[node_id].get("/v1/log/proof/consistency", first=first, second=second)
        return tuple(bytes.fromhex(node) for node in answer["consistency"])

    def _prefix_root(self, node_id: str, size: int) -> bytes:
        """The root the peer's tree has at ``size``: leaf 0's inclusion proof in that tree, folded up."""
        answer = self._peers[node_id].get("/v1/log/proof/inclusion", index=0, tree_size=size)
        path = [bytes.fromhex(node) for node in answer["audit_path"]]
        return root_from_inclusion_proof(bytes.fromhex(answer["leaf_hash"]), 0, size, path)

    # --- comparison -----------------------------------------------------------

    def _compare(self, one: SignedCheckpoint, other: SignedCheckpoint) -> tuple[SignedCheckpoint, SignedCheckpoint, _Verdict]:
        """Order the pair by tree size and judge it; a proof is asked from the larger signer first, then from anyone."""
        first, second = sorted((one, other), key=lambda signed: signed.checkpoint.tree_size)
        small, large = first.checkpoint, second.checkpoint
        if small.tree_size == large.tree_size:
            return first, second, _Verdict(None if small.root_hash == large.root_hash else Conflict.SAME_SIZE)
        if small.tree_size == 0:
            return first, second, _Verdict(None)  # every log extends the empty one
        sources = [large.node_id, *(node for node in self._peers if node != large.node_id)]
        failures: list[str] = []
        for source in sources:
            if source not in self._peers:
                continue
            try:
                nodes = self._consistency_proof(source, small.tree_size, large.tree_size)
            except _FETCH_ERRORS as exc:
                failures.append(f"{source}: {_reason(exc)}")
                continue
            try:
                verify_consistency(small.tree_size, large.tree_size, small.root_hash, large.root_hash, list(nodes))
                return first, second, _Verdict(None)
            except ProofError:
                pass
            try:
                prefix = self._prefix_root(source, small.tree_size)
                verify_consistency(small.tree_size, large.tree_size, prefix, large.root_hash, list(nodes))
            except _FETCH_ERRORS as exc:  # ProofError is a LedgerError: the proof does not reproduce the larger root
                failures.append(f"{source}: {_reason(exc)}")
                continue
            return first, second, _Verdict(Conflict.PREFIX_MISMATCH, Witness(source, nodes, prefix))
        return first, second, _Verdict(Conflict.UNPROVEN, detail="; ".join(failures))

    def _check_own_history(
        self,
        node_id: str,
        earlier: SignedCheckpoint,
        now: SignedCheckpoint | None,
        membership: Membership,
        problems: list[str],
    ) -> list[Misbehaviour]:
        """The peer's earlier checkpoint against the one it serves now for that height, and against its latest."""
        try:
            _require_attributable(earlier, node_id, membership)
        except LedgerError as exc:
            problems.append(f"its recorded checkpoint cannot be checked: {exc}")
            return []
        compared = []
        height = earlier.checkpoint.height
        try:
            compared.append(self._checkpoint(node_id, height, membership))
        except _FETCH_ERRORS as exc:
            problems.append(f"no usable checkpoint at recorded height {height}: {_reason(exc)}")
        if now is not None:
            if now.checkpoint.tree_size < earlier.checkpoint.tree_size:
                problems.append(f"its log shrank from {earlier.checkpoint.tree_size} to {now.checkpoint.tree_size} entries")
            compared.append(now)
        found = []
        for signed in dict.fromkeys(compared):  # the latest may be the very checkpoint served for that height
            first, second, verdict = self._compare(earlier, signed)
            if verdict.conflict is not None:
                found.append(Misbehaviour(verdict.conflict, first, second, (node_id,), Basis.SELF, verdict.witness, verdict.detail))
        return found

    def _check_between_peers(self, latest: Mapping[str, SignedCheckpoint]) -> list[Misbehaviour]:
        """Every pair of peers' latest checkpoints; a conflict names the signer outside the majority."""
        verdicts = {
            (a, b): self._compare(latest[a], latest[b]) for a, b in combinations(latest, 2)
        }
        support = Counter({node: 1 for node in latest})
        for (a, b), (_, _, verdict) in verdicts.items():
            if verdict.conflict is None:
                support[a] += 1
                support[b] += 1
        majority = {node for node in latest if 2 * support[node] > len(latest)}
        found = []
        for (a, b), (first, second, verdict) in verdicts.items():
            if verdict.conflict is None:
                continue
            if (a in majority) != (b in majority):
                named, basis = (b if a in majority else a,), Basis.MINORITY
            else:
                named, basis = (a, b), Basis.NO_MAJORITY
            found.append(Misbehaviour(verdict.conflict, first, second, named, basis, verdict.witness, verdict.detail))
        return found


def _require_attributable(signed: SignedCheckpoint, node_id: str, membership: Membership) -> None:
    """Raise CheckpointError unless ``signed`` is validly signed by ``node_id``'s node key for this network."""
    signed.verify()
    checkpoint = signed.checkpoint
    if checkpoint.node_id != node_id or membership.node_keys.get(signed.node_key) != node_id:
        raise CheckpointError(f"the checkpoint served as node {node_id!r}'s is not signed with that node's key")
    if checkpoint.network != membership.network:
        raise CheckpointError(f"node {node_id!r} signed a checkpoint of another network")


def _reason(exc: BaseException) -> str:
    return f"{exc.code}: {exc.message}" if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
