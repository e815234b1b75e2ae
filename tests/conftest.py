"""Fixtures shared by the whole suite.

`host` gives a kernel test its own throw-away test host (see testhost.py);
kernel tests are skipped, with the reason, where there is no root or no
unshare. The session ends by checking that the machine's own network and
files are as they were before the suite: links, namespaces, firewall rules,
forwarding sysctls and cnet's directories.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

import pytest

from testhost import LOCK, MOUNTPOINTS, TestHost

MADE = "/tmp/.cnet-testhost-made"  # as in tools/testhost


def _kernel_tests_possible() -> str | None:
    """None if kernel tests can run here, else why not."""
    if os.geteuid() != 0:
        return "kernel tests need root (unshare --net --mount)"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"kernel tests need {tool} (run `make test`, which installs it)"
    return None


def _out(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return f"({cmd[0]} not installed)"
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else f"({' '.join(cmd)} failed: {r.stderr.strip()})"


def _machine_snapshot() -> dict:
    """What the suite must leave as it found it, read from the machine's own namespace."""
    sysctls = {}
    for key in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv4/conf/all/route_localnet"):
        try:
            with open(f"/proc/sys/{key}") as f:
                sysctls[key] = f.read().strip()
        except OSError:
            pass
    return {
        "link names": sorted(line.split(":")[1].strip() for line in _out(["ip", "-o", "link", "show"]).splitlines() if ":" in line),
        "addresses": _out(["ip", "-o", "addr", "show"]),
        "routes": _out(["ip", "route", "show", "table", "all"]),
        "netns": _out(["ip", "netns", "list"]),
        "nft": _out(["nft", "list", "ruleset"]),
        "iptables": _out(["iptables", "-S"]),
        "ip6tables": _out(["ip6tables", "-S"]),
        "sysctls": sysctls,
        # Mount points listed in MADE belong to test hosts still running (another
        # suite or a benchmark at the same time); the last of them removes them.
        "dirs": {d: sorted(os.listdir(d)) if os.path.isdir(d) else None for d in MOUNTPOINTS
                 if d not in _made_mountpoints()},
    }


def _made_mountpoints() -> set[str]:
    try:
        with open(MADE) as f:
            return set(f.read().split())
    except FileNotFoundError:
        return set()


def _remove_made_mountpoints() -> None:
    if not os.path.exists(MADE):
        return
    with open(MADE) as f:
        for d in f.read().split():
            try:
                os.rmdir(d)
            except OSError:
                pass
    os.unlink(MADE)


@pytest.fixture(scope="session")
def kernel_session():
    """Make the mount points test hosts need; at the end, remove them and check
    that nothing on the machine changed."""
    why_not = _kernel_tests_possible()
    if why_not:
        pytest.skip(why_not)
    before = _machine_snapshot()
    # The protocol of tools/testhost: a shared lock while test hosts may run,
    # and the mount points removed only by whoever finishes last.
    lock = os.open(LOCK, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_SH)
    for d in MOUNTPOINTS:
        if not os.path.isdir(d):
            os.makedirs(d)
            with open(MADE, "a") as f:
                f.write(d + "\n")
    yield
    fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _remove_made_mountpoints()
    except BlockingIOError:
        pass  # another test host still runs: it will remove them
    os.close(lock)
    after = _machine_snapshot()
    common = before["dirs"].keys() & after["dirs"].keys()
    before["dirs"] = {d: before["dirs"][d] for d in common}
    after["dirs"] = {d: after["dirs"][d] for d in common}
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"the suite left changes on this machine: {changed}"


@pytest.fixture
def host(kernel_session):
    h = TestHost("host")
    yield h
    h.close()


@pytest.fixture
def make_host(kernel_session):
    """For tests that need several hosts (a LAN client, a second machine)."""
    made = []

    def make(name: str = "host") -> TestHost:
        made.append(TestHost(name))
        return made[-1]

    yield make
    for h in made:
        h.close()
