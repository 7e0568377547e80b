"""etcd's v3 API through its JSON gateway, with failover between the cluster's members.

Why the gateway and httpx instead of an etcd client library: the node already
speaks HTTP with httpx, the calls the orderer needs are six (put, range, watch,
status, member list, compaction), and the gateway is part of every etcd
server, so nothing new has to be installed or kept in step with etcd's gRPC
stubs. Keys and values travel base64-encoded; 64-bit numbers as decimal strings.

Every call goes to the member that answered last; when that member does not
answer (killed, stopped, cut off, without a leader) the next endpoint is tried,
so a client follows the cluster through member failures without being told.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import httpx

from node.ordering.base import OrderingError

__all__ = ["Compacted", "EtcdGateway", "EtcdRefused", "EtcdUnavailable", "KeyValue", "WatchStream"]

# gRPC status codes etcd answers with that retrying elsewhere cannot fix (a bad request, not a bad member).
_DEFINITIVE = {3: "invalid_argument", 7: "permission_denied", 9: "failed_precondition", 11: "out_of_range", 16: "unauthenticated"}


class EtcdUnavailable(OrderingError):
    """No member answered (or none could serve the request): worth retrying later."""

    code = "etcd_unavailable"


class EtcdRefused(OrderingError):
    """etcd answered and refused the request itself (too large, compacted revision, ...)."""

    code = "etcd_refused"

    def __init__(self, message: str, *, grpc_code: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.grpc_code = grpc_code


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    version: int  # modifications of the key since it was created: 1 after the first put
    mod_revision: int  # the cluster revision of the last modification
    create_revision: int


@dataclass(frozen=True)
class Compacted:
    """The watch started below the oldest revision etcd still keeps."""

    compact_revision: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key_value(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=base64.b64decode(raw.get("key", "")),
        value=base64.b64decode(raw.get("value", "")),
        version=int(raw.get("version", 0)),
        mod_revision=int(raw.get("mod_revision", 0)),
        create_revision=int(raw.get("create_revision", 0)),
    )


def _raise_for_error(answer: dict[str, Any], endpoint: str, path: str) -> None:
    error = answer.get("error")
    if error is None:
        return
    message = answer.get("message") or (error if isinstance(error, str) else json.dumps(error))
    code = int(answer.get("code", 2))
    if code in _DEFINITIVE:
        raise EtcdRefused(f"etcd {endpoint} refused {path}: {message}", grpc_code=code)
    raise EtcdUnavailable(f"etcd {endpoint} could not serve {path}: {message}")


class EtcdGateway:
    """A thread-safe client for a list of etcd client URLs (``http://host:port``)."""

    def __init__(self, endpoints: Sequence[str], *, timeout_s: float = 5.0) -> None:
        if not endpoints:
            raise ValueError("an etcd gateway needs at least one endpoint")
        self.endpoints = tuple(url.rstrip("/") for url in endpoints)
        self._timeout_s = timeout_s
        self._preferred = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=timeout_s)

    # --- unary calls ---------------------------------------------------------

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` on the preferred member, then on each other one until one answers."""
        with self._lock:
            first = self._preferred
        failures: list[str] = []
        for offset in range(len(self.endpoints)):
            index = (first + offset) % len(self.endpoints)
            endpoint = self.endpoints[index]
            try:
                answer = self.call_member(endpoint, path, body)
            except EtcdUnavailable as exc:
                failures.append(str(exc))
                continue
            with self._lock:
                self._preferred = index
            return answer
        raise EtcdUnavailable("no etcd member could serve the request: " + "; ".join(failures))

    def call_member(self, endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to one member only (status of that member, say)."""
        try:
            response = self._client.post(f"{endpoint}{path}", json=body)
            answer = response.json()
        except httpx.HTTPError as exc:
            raise EtcdUnavailable(f"etcd {endpoint} did not answer {path}: {type(exc).__name__} {exc}") from None
        except ValueError:
            raise EtcdUnavailable(f"etcd {endpoint} answered {path} with something that is not JSON") from None
        _raise_for_error(answer, endpoint, path)
        if response.status_code != 200:
            raise EtcdUnavailable(f"etcd {endpoint} answered {path} with HTTP {response.status_code}")
        return answer

    def put(self, key: bytes, value: bytes) -> int:
        """Write ``value`` under ``key``; returns the cluster revision of the write."""
        answer = self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(answer["header"]["revision"])

    def get(self, key: bytes, *, revision: int | None = None) -> tuple[KeyValue | None, int]:
        """A linearizable read of ``key`` (as of ``revision``, default now): (its value or None, the cluster revision).

        A revision below the last compaction is refused (:class:`EtcdRefused`, gRPC code 11).
        """
        body = {"key": _b64(key)} if revision is None else {"key": _b64(key), "revision": str(revision)}
        answer = self.call("/v3/kv/range", body)
        kvs = answer.get("kvs") or []
        return (_key_value(kvs[0]) if kvs else None), int(answer["header"]["revision"])

    def status(self, endpoint: str) -> dict[str, Any]:
        """That member's status: ``header.member_id``, ``leader`` (0 when it knows none), ``raftIndex``, ..."""
        return self.call_member(endpoint, "/v3/maintenance/status", {})

    def members(self) -> list[dict[str, Any]]:
        return self.call("/v3/cluster/member/list", {}).get("members", [])

    def compact(self, revision: int) -> None:
        """Forget every revision below ``revision`` (physically, before returning)."""
        self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    def close(self) -> None:
        self._client.close()

    # --- watching ------------------------------------------------------------

    def watch(self, key: bytes, start_revision: int, *, idle_s: float) -> WatchStream:
        """Open a watch of ``key`` from ``start_revision`` on the preferred member (or the next that accepts it)."""
        with self._lock:
            first = self._preferred
        failures: list[str] = []
        for offset in range(len(self.endpoints)):
            index = (first + offset) % len(self.endpoints)
            stream = WatchStream(self.endpoints[index], key, start_revision, idle_s=idle_s, connect_s=self._timeout_s)
            try:
                stream.open()
            except EtcdUnavailable as exc:
                failures.append(str(exc))
                continue
            with self._lock:
                self._preferred = index
            return stream
        raise EtcdUnavailable("no etcd member accepted the watch: " + "; ".join(failures))


class WatchStream:
    """One streaming ``POST /v3/watch``: iterate for lists of changed KeyValues, or a final :class:`Compacted`.

    Iteration raises :class:`EtcdUnavailable` when the member goes away and
    ``httpx.ReadTimeout`` after ``idle_s`` without a message (the caller
    reopens from the revision after the last one it saw). :meth:`close` may be
    called from another thread.
    """

    def __init__(self, endpoint: str, key: bytes, start_revision: int, *, idle_s: float, connect_s: float) -> None:
        self.endpoint = endpoint
        self._body = {"create_request": {"key": _b64(key), "start_revision": str(start_revision)}}
        self._client = httpx.Client(timeout=httpx.Timeout(connect_s, read=idle_s))
        self._response: httpx.Response | None = None

    def open(self) -> None:
        try:
            request = self._client.build_request("POST", f"{self.endpoint}/v3/watch", json=self._body)
            self._response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            self.close()
            raise EtcdUnavailable(f"etcd {self.endpoint} did not accept the watch: {type(exc).__name__} {exc}") from None
        if self._response.status_code != 200:
            status = self._response.status_code
            self.close()
            raise EtcdUnavailable(f"etcd {self.endpoint} answered the watch with HTTP {status}")

    def __iter__(self) -> Iterator[list[KeyValue] | Compacted]:
        assert self._response is not None, "open() the stream first"
        try:
            for line in self._response.iter_lines():
                if not line.strip():
                    continue
                message = json.loads(line)
                _raise_for_error(message, self.endpoint, "/v3/watch")
                result = message.get("result", {})
                if result.get("compact_revision") not in (None, "0", 0):
                    yield Compacted(int(result["compact_revision"]))
                    return
                if result.get("canceled"):
                    reason = result.get("cancel_reason", "no reason given")
                    raise EtcdUnavailable(f"etcd {self.endpoint} cancelled the watch: {reason}")
                events = result.get("events") or []
                if any(event.get("type") == "DELETE" for event in events):
                    raise EtcdRefused(f"the watched key was deleted (seen on etcd {self.endpoint})", grpc_code=9, code="stream_deleted")
                if events:
                    yield [_key_value(event["kv"]) for event in events]
        except httpx.ReadTimeout:
            raise
        except httpx.HTTPError as exc:
            raise EtcdUnavailable(f"the watch on etcd {self.endpoint} broke: {type(exc).__name__} {exc}") from None
        except ValueError:
            raise EtcdUnavailable(f"etcd {self.endpoint} sent a watch message that is not JSON") from None
        raise EtcdUnavailable(f"etcd {self.endpoint} ended the watch")

    def close(self) -> None:
        if self._response is not None:
            try:
                self._response.close()
            except Exception:  # closing from another thread while it reads: the reader sees the break
                pass
        self._client.close()
