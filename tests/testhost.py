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
MOUNTPOINTS = ("/run/netns", "/var/lib/cnet", "/etc/netns", "/etc/cnet")
CNET = [sys.executable, "-m", "cnet"]


def _ns_inode(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


class TestHost:
    __test__ = False  # not a test class, whatever its name says

    def __init__(self, name: str = "host"):
        self.name = name
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--",
             str(TESTHOST), "--inside", "sh", "-c", "echo ready; exec cat >/dev/null"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"test host {name} did not start (got {line!r})")
        # unshare (without --fork), tools/testhost and sh all exec: the pid we
        # started is the `cat` that waits inside.
        self.pid = self.proc.pid
        if _ns_inode(self.pid, "net") == _ns_inode("self", "net"):
            self.close()
            raise RuntimeError("refusing to test: the test host shares this machine's network namespace")
        self.mnt_ns = _ns_inode(self.pid, "mnt")

    # -- running things inside ---------------------------------------------

    def run(self, cmd: list[str], *, check: bool = False, input: str | None = None,
            env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        for var in ("CNET_STATE", "CNET_CONFIG", "CNET_FIREWALL", "CNET_FAULT"):
            full_env.pop(var, None)
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
        return subprocess.Popen(["nsenter", f"--target={self.pid}", "--net", "--mount", "--", *cmd], **kw)

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
        if self.proc.poll() is not None:
            return
        for _ in range(3):
            others = [p for p in self._processes_inside() if p != self.pid]
            if not others:
                break
            for p in others:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def _processes_inside(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if _ns_inode(entry, "mnt") == self.mnt_ns:
                        found.append(int(entry))
                except (FileNotFoundError, PermissionError, ProcessLookupError):
                    pass
        return found


def link_hosts(a: TestHost, b: TestHost, a_if: str, b_if: str) -> None:
    """A veth pair between two test hosts: a cable of a LAN that exists nowhere else."""
    a.run(["ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if,
           "netns", str(b.pid)], check=True)
    a.run(["ip", "link", "set", a_if, "up"], check=True)
    b.run(["ip", "link", "set", b_if, "up"], check=True)
