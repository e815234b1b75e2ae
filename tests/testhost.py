"""Throw-away test hosts: every kernel test runs in one, never on the machine's own network.

A test host is a process started with `unshare --net --mount` (through
tools/testhost) that has tmpfs over the directories cnet writes and then
waits; commands run in it through `nsenter`. Closing it kills whatever was
started inside and lets the kernel free every link, namespace and rule made
there. Two hosts can be wired together with a veth pair to stand in for a LAN.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTHOST = ROOT / "tools" / "testhost"
LOCK = "/tmp/.cnet-testhost.lock"  # as in tools/testhost: one for the machine
MOUNTPOINTS = ("/run/netns", "/var/lib/cnet", "/etc/netns", "/etc/cnet")
CNET = [sys.executable, "-m", "cnet"]


def _ns_inode(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


class TestHost:
    __test__ = False  # not a test class, whatever its name says

    def __init__(self, name: str = "host"):
        self.name = name
        self.env: dict[str, str] = {}  # added to every command's environment (e.g. CNET_FIREWALL)
        if os.environ.get("CNET_TEST_FIREWALL"):  # the whole suite on another backend (make test-iptables)
            self.env["CNET_FIREWALL"] = os.environ["CNET_TEST_FIREWALL"]
        self.started: list[subprocess.Popen] = []
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--",
             str(TESTHOST), "--inside", "sh", "-c", "echo ready; exec cat >/dev/null"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"test host {name} did not start (got {line!r})")
        # unshare (without --fork) execs tools/testhost, which runs the waiting
        # `cat` as its child: the pid we started is inside, with its namespaces.
        self.pid = self.proc.pid
        if _ns_inode(self.pid, "net") == _ns_inode("self", "net"):
            self.close()
            raise RuntimeError("refusing to test: the test host shares this machine's network namespace")

    # -- running things inside ---------------------------------------------

    def run(self, cmd: list[str], *, check: bool = False, input: str | None = None,
            env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        for var in ("CNET_STATE", "CNET_CONFIG", "CNET_FIREWALL", "CNET_FAULT"):
            full_env.pop(var, None)
        full_env.update(self.env)
        full_env.update(env or {})
        result = subprocess.run(
            ["nsenter", f"--target={self.pid}", "--net", "--mount", "--", *cmd],
            input=input, capture_output=True, text=True, env=full_env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def sh(self, script: str, **kw) -> subprocess.CompletedProcess:
        return self.run(["sh", "-c", script], **kw)

    def cnet(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run([*CNET, *args], **kw)

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        """A background process in the host, killed at close() (`ip netns exec`
        gives it a mount namespace of its own, so the sweep there would miss it)."""
        proc = subprocess.Popen(["nsenter", f"--target={self.pid}", "--net", "--mount", "--", *cmd], **kw)
        self.started.append(proc)
        return proc

    # -- what the kernel shows -----------------------------------------------

    def ip_json(self, *args: str) -> list[dict]:
        out = self.run(["ip", "-j", *args], check=True).stdout
        return json.loads(out) if out.strip() else []

    def links(self) -> dict[str, dict]:
        return {link["ifname"]: link for link in self.ip_json("-d", "link", "show")}

    def addresses(self, ifname: str) -> list[str]:
        (link,) = self.ip_json("addr", "show", "dev", ifname)
        return [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]

    def read(self, path: str) -> str:
        return self.run(["cat", path], check=True).stdout

    # -- the end -------------------------------------------------------------

    def close(self) -> None:
        """Kill everything started inside (it would keep namespaces alive), then the host."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                if stream:
                    stream.close()
        if self.proc.poll() is not None:
            return
        namespaces = self._namespaces_inside()
        self.proc.stdin.close()  # the waiting `cat` ends; tools/testhost sweeps its mount namespace
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        # What runs in a sandbox through `ip netns exec` has a mount namespace of
        # its own: find it by its network namespace.
        for _ in range(3):
            left = self._processes_in(namespaces)
            if not left:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def _namespaces_inside(self) -> set[int]:
        """The host's network namespace and those named under its /run/netns."""
        found = {_ns_inode(self.pid, "net")}
        listing = self.sh("for f in /run/netns/*; do [ -e \"$f\" ] && stat -L -c %i \"$f\"; done")
        found.update(int(line) for line in listing.stdout.split() if line.isdigit())
        return found

    @staticmethod
    def _processes_in(namespaces: set[int]) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if _ns_inode(entry, "net") in namespaces:
                        found.append(int(entry))
                except (FileNotFoundError, PermissionError, ProcessLookupError):
                    pass
        return found


PROBE = str(ROOT / "tests" / "netprobe.py")


def serve(host: TestHost, proto: str, port: int, ns: str | None = None, bind: str = "::") -> subprocess.Popen:
    """A netprobe server in the host (or in sandbox ns), started and ready."""
    cmd = [sys.executable, PROBE, "serve", proto, str(port), "--bind", bind]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    proc = host.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"server {proto}/{port} did not start")
    return proc


def ask(host: TestHost, proto: str, address: str, port: int, ns: str | None = None,
        timeout: float = 2, sport: int = 0) -> str | None:
    """The address the server saw us come from, or None when nothing answered."""
    cmd = [sys.executable, PROBE, "ask", proto, address, str(port), "--timeout", str(timeout)]
    if sport:
        cmd += ["--sport", str(sport)]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    result = host.run(cmd, timeout=timeout * 4 + 10)
    return result.stdout.strip() if result.returncode == 0 else None


def link_hosts(a: TestHost, b: TestHost, a_if: str, b_if: str) -> None:
    """A veth pair between two test hosts: a cable of a LAN that exists nowhere else."""
    a.run(["ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if,
           "netns", str(b.pid)], check=True)
    a.run(["ip", "link", "set", a_if, "up"], check=True)
    b.run(["ip", "link", "set", b_if, "up"], check=True)


def eventually(check, timeout: float = 10, step: float = 0.1) -> bool:
    """check() became true within timeout seconds. For what the kernel does
    after the call returns: a namespace whose last name is gone is torn down
    by a kernel worker, its veth pairs with it, a moment later."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
