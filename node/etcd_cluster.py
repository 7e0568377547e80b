"""A local etcd cluster on loopback: start, inspect, hurt and heal its members.

The consortium orders its transactions through etcd (node/ordering/etcd.py);
tests and ``qcl network up`` need a real cluster of real etcd processes on one
machine, and the fault tests need to kill, stop and restart members. This is
that operations helper, and nothing more: each member is an ``etcd`` process
with its own data directory under ``base_dir``, its own client and peer port,
and a log file. ``base_dir/cluster.json`` describes the cluster (ports, pids),
so another process (``qcl network status``/``down``) can :meth:`EtcdCluster.load`
it and act on the same members.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.ordering.etcd_gateway import EtcdGateway, EtcdUnavailable

__all__ = ["ETCD_BINARY", "EtcdCluster", "EtcdClusterError", "EtcdMember", "find_etcd"]

ETCD_BINARY = Path("/usr/bin/etcd")
MANIFEST = "cluster.json"
MISSING_MESSAGE = "etcd not found — run scripts/setup-etcd.sh (installs Debian's etcd-server)"


class EtcdClusterError(Exception):
    """A cluster that cannot be started, found or brought to health; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class EtcdMember:
    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    pid: int | None = None  # None while the member is not running

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"


def find_etcd(binary: Path | None = None) -> Path:
    """The etcd binary: ``binary``, else $QCL_ETCD, else /usr/bin/etcd; a clear error when it is missing."""
    candidate = binary or Path(os.environ.get("QCL_ETCD", str(ETCD_BINARY)))
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        raise EtcdClusterError("etcd_missing", f"{MISSING_MESSAGE} (looked for {candidate})")
    return candidate


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out as free right now (all held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


class EtcdCluster:
    """Members ``etcd0``..``etcdN-1``; every method that changes a member waits until the change happened."""

    def __init__(self, base_dir: Path, members: list[EtcdMember], *, token: str, binary: Path, detach: bool) -> None:
        self.base_dir = base_dir
        self.members = members
        self._token = token
        self._binary = binary
        self._detach = detach
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._gateway = EtcdGateway(self.endpoints, timeout_s=2.0)

    # --- creating and finding ------------------------------------------------

    @classmethod
    def start(
        cls,
        base_dir: Path,
        members: int = 3,
        *,
        binary: Path | None = None,
        detach: bool = False,
        timeout_s: float = 30.0,
    ) -> EtcdCluster:
        """Create and start a new cluster of ``members`` in ``base_dir``; returns once it has a leader.

        ``detach``: run the members in their own session, so they outlive this
        process and a Ctrl-C in its terminal (``qcl network up``).
        """
        etcd = find_etcd(binary)
        if not 1 <= members <= 9:
            raise EtcdClusterError("invalid_argument", f"an etcd cluster here has 1 to 9 members, not {members}")
        if (base_dir / MANIFEST).exists():
            raise EtcdClusterError("already_exists", f"{base_dir} already holds an etcd cluster ({MANIFEST})")
        base_dir.mkdir(parents=True, exist_ok=True)
        ports = _free_ports(2 * members)
        cluster = cls(
            base_dir,
            [
                EtcdMember(
                    name=f"etcd{i}",
                    client_url=f"http://127.0.0.1:{ports[2 * i]}",
                    peer_url=f"http://127.0.0.1:{ports[2 * i + 1]}",
                    data_dir=base_dir / f"etcd{i}",
                )
                for i in range(members)
            ],
            token=f"qcl-{secrets.token_hex(6)}",
            binary=etcd,
            detach=detach,
        )
        try:
            for member in cluster.members:
                cluster._spawn(member)
            cluster._save()
            cluster.wait_healthy(timeout_s)
        except BaseException:
            cluster.stop_all()
            raise
        return cluster

    @classmethod
    def load(cls, base_dir: Path, *, binary: Path | None = None) -> EtcdCluster:
        """The cluster described by ``base_dir/cluster.json`` (members may be running or not)."""
        try:
            manifest = json.loads((base_dir / MANIFEST).read_text())
        except FileNotFoundError:
            raise EtcdClusterError("not_found", f"{base_dir} holds no etcd cluster (no {MANIFEST})") from None
        members = [
            EtcdMember(entry["name"], entry["client_url"], entry["peer_url"], base_dir / entry["name"], entry.get("pid"))
            for entry in manifest["members"]
        ]
        for member in members:
            if member.pid is not None and not _alive(member.pid):
                member.pid = None
        return cls(base_dir, members, token=manifest["token"], binary=find_etcd(binary), detach=manifest.get("detach", False))

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    @property
    def endpoints(self) -> list[str]:
        return [member.client_url for member in self.members]

    def member(self, name: str) -> EtcdMember:
        for member in self.members:
            if member.name == name:
                return member
        raise EtcdClusterError("not_found", f"no member {name!r}; the members are {[m.name for m in self.members]}")

    def running(self) -> list[EtcdMember]:
        return [member for member in self.members if member.pid is not None and self._is_running(member)]

    # --- looking -------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        """The member's own status answer (``leader``, ``raftIndex``, ``header.revision``, ...)."""
        member = self.member(name)
        try:
            return self._gateway.status(member.client_url)
        except EtcdUnavailable as exc:
            raise EtcdClusterError("unavailable", f"member {name} does not answer: {exc}") from None

    def leader(self) -> EtcdMember:
        """The member the running members agree leads (raises ``no_leader`` when there is none)."""
        ids: dict[int, EtcdMember] = {}
        leaders: set[int] = set()
        for member in self.running():
            try:
                answer = self._gateway.status(member.client_url)
            except EtcdUnavailable:
                continue
            ids[int(answer["header"]["member_id"])] = member
            leaders.add(int(answer.get("leader", 0)))
        if len(leaders) == 1:
            (leader_id,) = leaders
            if leader_id in ids:
                return ids[leader_id]
        raise EtcdClusterError("no_leader", f"the running members do not agree on a running leader (they name {sorted(leaders)})")

    def revision(self) -> int:
        """The cluster's current revision (a linearizable read)."""
        try:
            return self._gateway.get(b"\0")[1]
        except EtcdUnavailable as exc:
            raise EtcdClusterError("unavailable", f"the cluster cannot serve a read: {exc}") from None

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Return when every running member answers, they agree on a leader, and a quorum serves reads."""
        deadline = time.monotonic() + timeout_s
        problem = "no member has answered yet"
        while time.monotonic() < deadline:
            self._check_children()
            try:
                self.leader()
                for member in self.running():
                    self._gateway.call_member(member.client_url, "/v3/kv/range", {"key": "AA=="})
                return
            except (EtcdClusterError, EtcdUnavailable) as exc:
                problem = str(exc)
            time.sleep(0.05)
        raise EtcdClusterError("timeout", f"the etcd cluster in {self.base_dir} is not healthy after {timeout_s:.0f} s: {problem}")

    # --- hurting and healing -------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL the member (no shutdown code runs) and wait until it is gone."""
        self._signal(self.member(name), signal.SIGKILL, timeout_s=10.0)

    def stop(self, name: str, *, timeout_s: float = 15.0) -> None:
        """SIGTERM the member (a clean shutdown), SIGKILL after ``timeout_s``."""
        member = self.member(name)
        self._signal(member, signal.SIGTERM, timeout_s=timeout_s, then_kill=True)

    def restart(self, name: str, *, timeout_s: float = 30.0) -> None:
        """Start a stopped or killed member again on its data directory; return once it answers as a member with a leader."""
        member = self.member(name)
        if member.pid is not None and self._is_running(member):
            raise EtcdClusterError("running", f"member {name} is still running (pid {member.pid})")
        self._spawn(member)
        self._save()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_children()
            try:
                if int(self._gateway.status(member.client_url).get("leader", 0)):
                    return
            except EtcdUnavailable:
                pass
            time.sleep(0.05)
        raise EtcdClusterError("timeout", f"member {name} did not rejoin within {timeout_s:.0f} s (see {member.log_file})")

    def compact(self, revision: int | None = None) -> int:
        """Compact the key space up to ``revision`` (default: the current revision); returns the revision."""
        target = self.revision() if revision is None else revision
        try:
            self._gateway.compact(target)
        except EtcdUnavailable as exc:
            raise EtcdClusterError("unavailable", f"compaction to {target} failed: {exc}") from None
        return target

    def stop_all(self) -> None:
        """Stop every running member (SIGTERM, SIGKILL after 10 s), one at a time, the leader last; keeps the data.

        One at a time because members told to stop together each wait for the
        others (leadership transfer) and take seconds; in turn they take milliseconds.
        """
        try:
            last = self.leader().name
        except EtcdClusterError:
            last = None
        for member in sorted(self.members, key=lambda m: m.name == last):
            if member.pid is None:
                continue
            if self._is_running(member):
                self._send(member, signal.SIGTERM)
                if not self._wait_gone(member, 10.0):
                    self._send(member, signal.SIGKILL)
                    self._wait_gone(member, 5.0)
            member.pid = None
        self._children.clear()
        if (self.base_dir / MANIFEST).exists():
            self._save()

    def remove(self) -> None:
        """Stop every member and delete the cluster's directory."""
        self.stop_all()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # --- processes -----------------------------------------------------------

    def _command(self, member: EtcdMember) -> list[str]:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            str(self._binary),
            "--name", member.name,
            "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-token", self._token,
            "--initial-cluster-state", "new",  # ignored once the data directory holds the membership
            "--logger", "zap",
            "--log-level", "warn",
        ]

    def _spawn(self, member: EtcdMember) -> None:
        with open(member.log_file, "ab") as log:
            process = subprocess.Popen(
                self._command(member),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self._detach,
            )
        self._children[member.name] = process
        member.pid = process.pid

    def _check_children(self) -> None:
        """Fail fast, with the member's log, when one of our members exited (a port taken, a bad flag)."""
        for name, process in self._children.items():
            if process.poll() is not None and self.member(name).pid == process.pid:
                member = self.member(name)
                member.pid = None
                tail = member.log_file.read_text(errors="replace")[-1500:] if member.log_file.exists() else ""
                raise EtcdClusterError("start_failed", f"etcd member {name} exited with {process.returncode}: {tail}")

    def _is_running(self, member: EtcdMember) -> bool:
        child = self._children.get(member.name)
        if child is not None and child.pid == member.pid:
            return child.poll() is None
        return member.pid is not None and _alive(member.pid)

    def _send(self, member: EtcdMember, signum: int) -> None:
        if member.pid is None:
            return
        try:
            os.kill(member.pid, signum)
        except ProcessLookupError:
            pass

    def _wait_gone(self, member: EtcdMember, timeout_s: float) -> bool:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        child = self._children.get(member.name)
        while True:
            if child is not None and child.pid == member.pid:
                try:
                    child.wait(timeout=max(deadline - time.monotonic(), 0.0))
                    return True
                except subprocess.TimeoutExpired:
                    return False
            if member.pid is None or not _alive(member.pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _signal(self, member: EtcdMember, signum: int, *, timeout_s: float, then_kill: bool = False) -> None:
        if member.pid is None or not self._is_running(member):
            raise EtcdClusterError("not_running", f"member {member.name} is not running")
        self._send(member, signum)
        gone = self._wait_gone(member, timeout_s)
        if not gone and then_kill:
            self._send(member, signal.SIGKILL)
            gone = self._wait_gone(member, 10.0)
        if not gone:
            raise EtcdClusterError("timeout", f"member {member.name} (pid {member.pid}) did not exit within {timeout_s:.0f} s")
        self._children.pop(member.name, None)
        member.pid = None
        self._save()

    def _save(self) -> None:
        manifest = {
            "token": self._token,
            "detach": self._detach,
            "members": [
                {"name": m.name, "client_url": m.client_url, "peer_url": m.peer_url, "pid": m.pid} for m in self.members
            ],
        }
        temporary = self.base_dir / (MANIFEST + ".tmp")
        temporary.write_text(json.dumps(manifest, indent=2))
        os.replace(temporary, self.base_dir / MANIFEST)
