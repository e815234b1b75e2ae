"""A small etcd v3 client over etcd's JSON gateway (HTTP, the API's own JSON
mapping of its gRPC messages: keys and values base64, 64-bit numbers as
strings, fields at their zero value left out).

Why not a client library: the well-kept ones cost a CLI more than an
overlay attach may take in all (measured here, Python 3.11, warm caches:
`import etcd3gw` 150-175 ms, most of it requests and futurist; `import
pyetcd` (etcd-sdk-python, gRPC) 115-120 ms; this module with http.client
about 8 ms). docs/design-notes.md has the figures.

The members are tried in order; one that cannot be reached (refused,
timed out) is skipped for the next. None answering is StoreUnreachable,
and so is an error that says the cluster has no quorum.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket

from . import StoreUnreachable

TIMEOUT = 2.5  # seconds per member and request: etcd answers in ms, a lost quorum never


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


def put(key: str, value, lease: int = 0) -> dict:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    request = {"key": _b64(key), "value": _b64(text)}
    if lease:
        request["lease"] = str(lease)
    return {"request_put": request}


def delete(key: str) -> dict:
    return {"request_delete_range": {"key": _b64(key)}}


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
                if self._conn is None:
                    host, port = self.endpoints[0]
                    self._conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
                self._conn.request("POST", f"/v3/{path}", json.dumps(body), {"Content-Type": "application/json"})
                response = self._conn.getresponse()
                answer = json.loads(response.read() or b"{}")
            except (OSError, http.client.HTTPException, ValueError) as e:
                errors.append(f"{self.endpoints[0][0]}:{self.endpoints[0][1]}: {_reason(e)}")
                self.close()
                self.endpoints.append(self.endpoints.pop(0))  # the next member first from now on
                continue
            if response.status != 200:
                message = answer.get("message") or answer.get("error") or f"HTTP {response.status}"
                if answer.get("code") in (4, 14) or "deadline" in message or "leader" in message:
                    # DEADLINE_EXCEEDED, UNAVAILABLE: this member has no quorum
                    errors.append(f"{self.endpoints[0][0]}:{self.endpoints[0][1]}: {message}")
                    self.close()
                    self.endpoints.append(self.endpoints.pop(0))
                    continue
                raise StoreUnreachable(f"store {self.url} refused a request: {message}")
            return answer
        raise StoreUnreachable(f"store unreachable: {self.url} ({'; '.join(errors)})")

    def get(self, key: str) -> KV | None:
        kvs = self.call("kv/range", {"key": _b64(key)}).get("kvs", [])
        return KV(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[list[KV], int]:
        """Every key under prefix, and the store's revision they were read at."""
        answer = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        return [KV(kv) for kv in answer.get("kvs", [])], int(answer["header"]["revision"])

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
        raises StoreUnreachable when it breaks. Its own connection, so the
        client's other requests go on beside it."""
        host, port = self.endpoints[0]
        conn = http.client.HTTPConnection(host, port, timeout=None)
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                                   "start_revision": str(start_revision)}}
        try:
            conn.request("POST", "/v3/watch", json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status != 200:
                raise StoreUnreachable(f"store {self.url}: watch refused (HTTP {response.status})")
            while line := response.readline():
                result = json.loads(line).get("result", {})
                if result.get("canceled"):
                    reason = result.get("cancel_reason") or "canceled"
                    raise StoreUnreachable(f"store {self.url}: watch ended: {reason}")
                for event in result.get("events", ()):
                    yield event.get("type", "PUT"), KV(event["kv"])
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise StoreUnreachable(f"store unreachable: {host}:{port}: {_reason(e)}") from None
        finally:
            conn.close()


def _reason(e: Exception) -> str:
    if isinstance(e, socket.timeout):
        return "timed out"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__
