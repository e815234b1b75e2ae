"""A small etcd v3 client over etcd's JSON gateway (HTTP, the API's own JSON
mapping of its gRPC messages: keys and values base64, 64-bit numbers as
strings, fields at their zero value left out).

Why not a client library: the well-kept ones cost a CLI more than an
overlay attach may take in all (measured here, Python 3.11, warm caches:
`import etcd3gw` 150-175 ms, most of it requests and futurist; `import
pyetcd` (etcd-sdk-python, gRPC) 115-120 ms; this module with http.client
about 8 ms). docs/design-notes.md has the figures.

The members are tried in order (a watch's too); one that cannot be reached
(refused, timed out) or says it has no quorum is moved to the back. None
answering is StoreUnreachable. tests/kernel/test_store_etcd.py holds it to
a three-member cluster with members down.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket

from . import StoreUnreachable

TIMEOUT = 2.5  # seconds per member and request: etcd answers in ms, a lost quorum never
# What a member says when it cannot reach a quorum: the next member may. gRPC
# DEADLINE_EXCEEDED and UNAVAILABLE; texts seen here (etcd 3.4): "etcdserver:
# request timed out" (14), "context deadline exceeded" (2, UNKNOWN), "etcdserver:
# no leader" (14); "leader changed" comes during an election.
NO_QUORUM_CODES = (4, 14)
NO_QUORUM_TEXTS = ("deadline exceeded", "request timed out", "no leader", "leader changed")


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _unb64(text: str | None) -> str:
    return base64.b64decode(text or "").decode()


def prefix_end(prefix: str) -> str:
    """The range end that makes a range request cover every key starting with prefix."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1  # our prefixes end in "/": never 0xff
    return raw.decode()


class KV:
    """One key as etcd returned it."""

    __slots__ = ("key", "value", "create_revision", "mod_revision", "lease")

    def __init__(self, kv: dict):
        self.key = _unb64(kv.get("key"))
        self.value = _unb64(kv.get("value"))
        self.create_revision = int(kv.get("create_revision", 0))
        self.mod_revision = int(kv.get("mod_revision", 0))
        self.lease = int(kv.get("lease", 0))

    def json(self):
        return json.loads(self.value)


# -- the parts of a transaction -------------------------------------------------

def absent(key: str) -> dict:
    """A compare that holds when key does not exist."""
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def unchanged(key: str, mod_revision: int) -> dict:
    """A compare that holds when key was last written at mod_revision (0: it does not exist)."""
    return {"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(mod_revision)}


def none_newer(prefix: str, revision: int) -> dict:
    """A compare that holds when no key under prefix was written after revision (none at all: holds too)."""
    return {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)), "target": "MOD", "result": "LESS",
            "mod_revision": str(revision + 1)}


def put(key: str, value, lease: int = 0) -> dict:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    request = {"key": _b64(key), "value": _b64(text)}
    if lease:
        request["lease"] = str(lease)
    return {"request_put": request}


def delete(key: str) -> dict:
    return {"request_delete_range": {"key": _b64(key)}}


def delete_prefix(prefix: str) -> dict:
    return {"request_delete_range": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}}


def get(key: str) -> dict:
    return {"request_range": {"key": _b64(key)}}


class Etcd:
    def __init__(self, endpoints: list[tuple[str, int]], url: str = "", timeout: float = TIMEOUT):
        self.endpoints = list(endpoints)
        self.url = url or "etcd://" + ",".join(f"{h}:{p}" for h, p in endpoints)
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- requests ---------------------------------------------------------

    def call(self, path: str, body: dict) -> dict:
        """POST body to /v3/PATH on the first member that answers."""
        errors = []
        for _ in range(len(self.endpoints)):
            try:
                status, answer = self._post(path, body)
            except (OSError, http.client.HTTPException, ValueError) as e:
                errors.append(f"{self._member()}: {_reason(e)}")
                self._next_member()
                continue
            if status != 200:
                code, message = _error(answer, status)
                if code in NO_QUORUM_CODES or any(text in message for text in NO_QUORUM_TEXTS):
                    errors.append(f"{self._member()}: {message}")
                    self._next_member()
                    continue
                raise StoreUnreachable(f"store {self.url} refused a request: {message}")
            return answer
        raise StoreUnreachable(f"store unreachable: {self.url} ({'; '.join(errors)})")

    def _post(self, path: str, body: dict) -> tuple[int, dict]:
        """(HTTP status, answer) from the first member listed. A kept
        connection that the member has closed since (it restarted) is made
        anew, once: that member may be up all the same."""
        kept = self._conn is not None
        while True:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(*self.endpoints[0], timeout=self.timeout)
            try:
                self._conn.request("POST", f"/v3/{path}", json.dumps(body), {"Content-Type": "application/json"})
                response = self._conn.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except ConnectionError:  # reset, broken pipe, closed before answering
                self.close()
                if not kept:
                    raise
                kept = False

    def _open_stream(self, path: str, body: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A connection of its own and the response to POST /v3/PATH, from
        the first member that takes the request."""
        errors = []
        for _ in range(len(self.endpoints)):
            conn = http.client.HTTPConnection(*self.endpoints[0], timeout=self.timeout)
            try:
                conn.request("POST", f"/v3/{path}", json.dumps(body), {"Content-Type": "application/json"})
                return conn, conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                errors.append(f"{self._member()}: {_reason(e)}")
                self._next_member()
        raise StoreUnreachable(f"store unreachable: {self.url} ({'; '.join(errors)})")

    def _member(self) -> str:
        return "%s:%d" % self.endpoints[0]

    def _next_member(self) -> None:
        """Try the next member first from now on (this one is down or cut off)."""
        self.close()
        self.endpoints.append(self.endpoints.pop(0))

    def get(self, key: str) -> KV | None:
        kvs = self.call("kv/range", {"key": _b64(key)}).get("kvs", [])
        return KV(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[list[KV], int]:
        """Every key under prefix, and the store's revision they were read at."""
        answer = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        return [KV(kv) for kv in answer.get("kvs", [])], int(answer["header"]["revision"])

    def keys(self, prefix: str) -> list[str]:
        """Every key under prefix, without the values (etcd sends none: less to read and decode)."""
        answer = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)), "keys_only": True})
        return [_unb64(kv.get("key")) for kv in answer.get("kvs", [])]

    def put(self, key: str, value, lease: int = 0) -> None:
        self.call("kv/put", put(key, value, lease)["request_put"])

    def delete(self, key: str) -> None:
        self.call("kv/deleterange", {"key": _b64(key)})

    def txn(self, compare: list[dict], success: list[dict], failure: list[dict] = ()) -> tuple[bool, list]:
        """(whether every compare held, the responses of the branch that ran)."""
        answer = self.call("kv/txn", {"compare": compare, "success": success, "failure": list(failure)})
        return bool(answer.get("succeeded")), answer.get("responses", [])

    # -- leases -------------------------------------------------------------

    def grant(self, ttl: int) -> int:
        return int(self.call("lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease: int) -> bool:
        """Refresh the lease; False when it has expired already."""
        result = self.call("lease/keepalive", {"ID": str(lease)}).get("result", {})
        return int(result.get("TTL", 0)) > 0

    def revoke(self, lease: int) -> None:
        self.call("lease/revoke", {"ID": str(lease)})

    # -- watching -------------------------------------------------------------

    def watch(self, prefix: str, start_revision: int):
        """Yield (event type "PUT" or "DELETE", KV) for every change under prefix
        from start_revision on, as they happen; returns when the stream ends,
        raises StoreUnreachable when no member takes it or it breaks. Its own
        connection, so the client's other requests go on beside it."""
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                                   "start_revision": str(start_revision)}}
        conn, response = self._open_stream("watch", body)
        member = self._member()
        try:
            if response.status != 200:
                raise StoreUnreachable(f"store {self.url}: watch refused (HTTP {response.status})")
            conn.sock.settimeout(None)  # a quiet stream is not a dead one
            while line := response.readline():
                answer = json.loads(line)
                if "error" in answer:
                    raise StoreUnreachable(f"store {self.url}: watch ended: {_error(answer, 200)[1]}")
                result = answer.get("result", {})
                if result.get("canceled"):
                    reason = result.get("cancel_reason") or "canceled"
                    raise StoreUnreachable(f"store {self.url}: watch ended: {reason}")
                for event in result.get("events", ()):
                    yield event.get("type", "PUT"), KV(event["kv"])
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise StoreUnreachable(f"store unreachable: {member}: {_reason(e)}") from None
        finally:
            conn.close()


def _error(answer: dict, status: int) -> tuple[int | None, str]:
    """The gRPC code and message of an error answer. Unary calls give
    {"code", "message"}; streaming ones (lease/keepalive, watch) give
    {"error": {"grpc_code", "message"}}."""
    error = answer.get("error")
    if isinstance(error, dict):
        return error.get("grpc_code"), str(error.get("message") or f"HTTP {status}")
    return answer.get("code"), str(answer.get("message") or error or f"HTTP {status}")


def _reason(e: Exception) -> str:
    if isinstance(e, socket.timeout):
        return "timed out"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__
