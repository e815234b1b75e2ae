"""`cnet agent`: keep this host's overlays current with the store.

It holds the host's membership (alive/HOST on a lease, so that other hosts
see a host whose agent died as down once the lease runs out), watches the
store's address records, and syncs the local overlay a change is on within
milliseconds. With --restore it also runs `cnet restore` whenever `cnet
check` finds the kernel differs from the state (a firewall reload, a link
deleted by hand), looking every RESTORE_EVERY seconds.

The watch runs in a thread of its own (a blocking HTTP stream) and hands
the keys it sees to the main thread, which does all the work: cnet's
transactions hold signals, which only the main thread may do. A store that
cannot be reached is retried with backoff, and a full sync follows when it
answers again. SIGTERM (KeyboardInterrupt here) ends it: the lease is
revoked so that the others see this host down at once. It never writes
another host's records.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from datetime import datetime, timezone

from ..drivers import overlay_store as records
from ..store import StoreUnreachable, open_store

LEASE_TTL = 10  # seconds: a dead agent's host shows as down after at most this
KEEPALIVE_EVERY = 3.0
RESTORE_EVERY = 5.0
BACKOFF = (0.5, 1, 2, 4, 8)  # seconds between attempts while the store is unreachable
ADDRS = records.ROOT + "addrs/"


def log(line: str) -> None:
    print(f"cnet agent: {line}", file=sys.stderr, flush=True)


class Agent:
    def __init__(self, api, url: str, *, restore: bool = False):
        self.api, self.url, self.restore = api, url, restore
        self.host = api.host_name()
        self.db = records.store(url)
        self.lease = 0
        self.events: queue.Queue = queue.Queue()
        self.failures = 0
        self.said: set[str] = set()  # lines of a failure that goes on, said once

    def _say_once(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            log(line)

    # -- the main loop ------------------------------------------------------------

    def run(self) -> None:
        """Until SIGTERM or ^C."""
        log(f"host {self.host}, store {self.url}" + (", restoring drift" if self.restore else ""))
        revision = self._first_sync()
        threading.Thread(target=self._watch, args=(revision + 1,), daemon=True).start()
        next_keepalive = next_restore = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                wake = min(next_keepalive, next_restore if self.restore else next_keepalive)
                networks = self._wait(max(0.0, wake - now))
                if networks:
                    self._sync(networks)
                if time.monotonic() >= next_keepalive:
                    next_keepalive = time.monotonic() + self._keep_alive()
                if self.restore and time.monotonic() >= next_restore:
                    self._restore_drift()
                    next_restore = time.monotonic() + RESTORE_EVERY
        finally:
            self._leave()

    def _wait(self, timeout: float) -> set[str] | None:
        """The networks whose records changed (None: all of them), waiting at
        most timeout for the first; everything queued by then comes along."""
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            return set()
        networks: set[str] | None = set()
        while True:
            networks = None if item is None or networks is None else networks | {item}
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                return networks

    def _first_sync(self) -> int:
        """The store's revision, read before a full sync (the watch starts after it)."""
        while True:
            try:
                _, revision = self.db.get_prefix(ADDRS)
                self._sync(None)
                return revision
            except StoreUnreachable as e:
                self._unreachable(e)

    def _sync(self, networks: set[str] | None) -> None:
        """Sync those networks; None: all, against the kernel's own tables
        (at the start, and after a break in the watch: whatever happened
        meanwhile, a hand edit included, is found)."""
        changed, failed = self.api.sync_overlays(networks, full=networks is None)
        for name, count in sorted(changed.items()):
            if count:
                log(f"synced {name}: {count} entries changed")
        for name, why in sorted(failed.items()):
            self._say_once(f"cannot sync {name}: {why}")
        if not failed:
            self.said.clear()

    def _unreachable(self, error: Exception) -> None:
        delay = BACKOFF[min(self.failures, len(BACKOFF) - 1)]
        if self.failures == 0 or delay == BACKOFF[-1]:
            log(f"{error}; retrying every {delay} s at most")
        self.failures += 1
        time.sleep(delay)

    # -- the watch (its own thread) ---------------------------------------------------

    def _watch(self, revision: int) -> None:
        """Queue the network of every address record that changes; on a
        broken stream queue None (a full sync) and watch again from the last
        revision seen, with backoff while the store is unreachable."""
        client = open_store(self.url)  # its own: http.client connections are not shared across threads
        failures = 0
        while True:
            try:
                for _, kv in client.watch(ADDRS, revision):
                    failures = 0
                    revision = kv.mod_revision + 1
                    self.events.put(kv.key[len(ADDRS):].split("/", 1)[0])
            except StoreUnreachable:
                failures += 1
                client.endpoints.append(client.endpoints.pop(0))  # the next member first
                time.sleep(BACKOFF[min(failures - 1, len(BACKOFF) - 1)])
            self.events.put(None)  # whatever was missed meanwhile

    # -- membership ----------------------------------------------------------------------

    def _keep_alive(self) -> float:
        """Refresh (or take) the lease and alive/HOST on it; seconds until the next time."""
        try:
            if not (self.lease and self.db.keepalive(self.lease)):
                self.lease = self.db.grant(LEASE_TTL)
                self.db.put(records.alive_key(self.host),
                            {"since": datetime.now(timezone.utc).isoformat(timespec="seconds")}, lease=self.lease)
                if self.failures:
                    log("store reachable again")
                    self.events.put(None)
            self.failures = 0
            return KEEPALIVE_EVERY
        except StoreUnreachable as e:
            self.lease = 0
            if self.failures == 0:
                log(f"{e}; the data path keeps working, retrying")
            self.failures += 1
            return BACKOFF[min(self.failures - 1, len(BACKOFF) - 1)]

    def _leave(self) -> None:
        if self.lease:
            try:
                self.db.revoke(self.lease)
            except StoreUnreachable:
                pass  # the lease runs out by itself
        log("stopped")

    # -- --restore ----------------------------------------------------------------------

    def _restore_drift(self) -> None:
        from ..errors import CnetError

        try:
            differences, _ = self.api.check()
            if differences:
                done, failed = self.api.restore()
                for line in done:
                    log(f"restored: {line}")
                for line in failed:
                    self._say_once(f"cannot restore: {line}")
        except CnetError as e:
            self._say_once(f"cannot check: {e}")
