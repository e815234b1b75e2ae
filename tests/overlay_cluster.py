"""Three cnet hosts on one LAN with a three-member etcd cluster: the bed of the overlay tests.

    underlay (test host): bridge sw0, 10.77.0.1/24 (the "LAN client" role)
      |-- p1 <-> eth0 of h1, 10.77.0.11/24, etcd member h1
      |-- p2 <-> eth0 of h2, 10.77.0.12/24, etcd member h2
      `-- p3 <-> eth0 of h3, 10.77.0.13/24, etcd member h3

Each hN is a TestHost (tests/testhost.py) with /etc/cnet/config.yaml naming the
store, its advertise address and its cluster name (test hosts share the
machine's hostname). No host has a route beyond 10.77.0.0/24. The etcd members
run in their host (TestHost.popen: closing the host kills them) with their data
in the host's tmpfs /var/lib/cnet, so a member killed and started again keeps
its data, and nothing is left on the machine. Members are numbered 1..3 like
the hosts.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

from testhost import TestHost, link_hosts

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
SUBNET_PREFIX = 24
SWITCH_ADDRESS = "10.77.0.1"
MEMBERS = (1, 2, 3)
PEER_PORT, CLIENT_PORT = 2380, 2379
DATA_DIR = "/var/lib/cnet/etcd-data"  # the test host's tmpfs
LOG_FILE = "/var/lib/cnet/etcd.log"
HEALTH_TIMEOUT = 20.0
# etcd's defaults (100 ms heartbeat, 1 s election timeout) are for WANs. Half
# of them elects a new leader after the leader is killed in 0.55-1.0 s instead
# of 1.0-1.95 s (measured here); a busy 2-core machine still keeps 50 ms
# heartbeats. The start is as fast either way (0.3-1.2 s to healthy: etcd
# fast-forwards the first election).
TIMING = ("--heartbeat-interval=50", "--election-timeout=500")


def address(n: int) -> str:
    """Underlay address of host hN."""
    return f"10.77.0.1{n}"


def member_name(n: int) -> str:
    return f"h{n}"


STORE_URL = "etcd://" + ",".join(f"{address(n)}:{CLIENT_PORT}" for n in MEMBERS)
INITIAL_CLUSTER = ",".join(f"{member_name(n)}=http://{address(n)}:{PEER_PORT}" for n in MEMBERS)


def etcd_missing() -> str | None:
    """Why the cluster cannot be made here, or None."""
    for tool in (ETCD, ETCDCTL):
        if shutil.which(tool) is None:
            return f"{tool} is missing (etcd-server and etcd-client; `make test` installs them)"
    return None


class Cluster:
    """The underlay, h1..h3 and their etcd members, healthy on return.

    If any step fails, whatever was made is closed before the error goes up.
    """

    def __init__(self) -> None:
        self.underlay: TestHost | None = None
        self.hosts: list[TestHost] = []
        self.members: dict[int, subprocess.Popen] = {}
        try:
            self._wire()
            for n in MEMBERS:
                self._write_config(n)
                self.start_member(n, state="new")
            self.wait_healthy()
        except BaseException:
            self.close()
            raise

    def host(self, n: int) -> TestHost:
        """Host hN, n in 1..3."""
        return self.hosts[n - 1]

    # -- the LAN ---------------------------------------------------------------

    def _wire(self) -> None:
        self.underlay = TestHost("underlay")
        sw = self.underlay
        sw.run(["ip", "link", "add", "sw0", "type", "bridge"], check=True)
        sw.run(["ip", "addr", "add", f"{SWITCH_ADDRESS}/{SUBNET_PREFIX}", "dev", "sw0"], check=True)
        sw.run(["ip", "link", "set", "sw0", "up"], check=True)
        for n in MEMBERS:
            h = TestHost(member_name(n))
            self.hosts.append(h)
            link_hosts(sw, h, f"p{n}", "eth0")
            sw.run(["ip", "link", "set", f"p{n}", "master", "sw0"], check=True)
            h.run(["ip", "addr", "add", f"{address(n)}/{SUBNET_PREFIX}", "dev", "eth0"], check=True)

    def client(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        """Run cmd on the underlay (10.77.0.1): a client on the LAN, on no cnet host."""
        return self.underlay.run(cmd, **kw)

    def _write_config(self, n: int) -> None:
        config = f"store: {STORE_URL}\nadvertise: {address(n)}\nhost: {member_name(n)}\n"
        self.host(n).run(["sh", "-c", "cat > /etc/cnet/config.yaml"], input=config, check=True)

    # -- etcd members ------------------------------------------------------------

    def start_member(self, n: int, state: str = "existing") -> None:
        """Start member n (again): "existing" rejoins with the data it had."""
        if n in self.members and self.members[n].poll() is None:
            raise RuntimeError(f"etcd member {member_name(n)} is already running")
        ip = address(n)
        # Its output goes to a log in the host (stderr too: a refused flag shows there).
        self.members[n] = self.host(n).popen(
            ["sh", "-c", f'exec "$0" "$@" >>{LOG_FILE} 2>&1',
             ETCD, f"--name={member_name(n)}", f"--data-dir={DATA_DIR}",
             f"--listen-peer-urls=http://{ip}:{PEER_PORT}",
             f"--initial-advertise-peer-urls=http://{ip}:{PEER_PORT}",
             f"--listen-client-urls=http://{ip}:{CLIENT_PORT}",
             f"--advertise-client-urls=http://{ip}:{CLIENT_PORT}",
             f"--initial-cluster={INITIAL_CLUSTER}", "--initial-cluster-token=cnet-test",
             f"--initial-cluster-state={state}", "--logger=zap", *TIMING],
            stdin=subprocess.DEVNULL)

    def kill_member(self, n: int) -> None:
        """SIGKILL member n, as a crash or a pulled plug would."""
        proc = self.members[n]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for n in MEMBERS:
            self.kill_member(n)

    def start_all(self) -> None:
        for n in MEMBERS:
            self.start_member(n)
        self.wait_healthy()

    def etcdctl(self, *args: str, members=MEMBERS, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        """etcdctl on h1 against the given members' endpoints (all three by
        default). Flags in args come after the defaults, and a later flag wins
        (e.g. --command-timeout=2s), except --endpoints, which adds up: use members."""
        endpoints = ",".join(f"http://{address(n)}:{CLIENT_PORT}" for n in members)
        return self.host(1).run(
            [ETCDCTL, f"--endpoints={endpoints}", "--dial-timeout=2s", "--command-timeout=5s", *args],
            timeout=timeout, **kw)

    def healthy(self, members=MEMBERS, wait: str = "2s") -> bool:
        """Each of these members answers a quorum read (`endpoint health`)
        within wait: they have a leader."""
        return self.etcdctl("endpoint", "health", f"--dial-timeout={wait}", f"--command-timeout={wait}",
                            members=members).returncode == 0

    def wait_healthy(self, members=MEMBERS, timeout: float = HEALTH_TIMEOUT) -> None:
        """Until healthy(members). After the leader is killed, wait_healthy on
        the others waits for the new leader: a put sent before it is elected is
        lost and waits out the client's whole timeout (etcd 3.4), and so is a
        read; a member that has just started accepts connections but answers
        only once it knows the leader. Hence short tries, many times."""
        deadline = time.monotonic() + timeout
        while not self.healthy(members, wait="500ms"):
            if dead := [member_name(n) for n in members if self.members[n].poll() is not None]:
                raise RuntimeError(f"etcd member(s) {', '.join(dead)} exited:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd members {list(members)} not healthy after {timeout:.0f} s:\n{self.logs()}")
            time.sleep(0.2)

    def leader(self) -> int:
        """The number of the member that leads now, as the running members see it."""
        running = [n for n, proc in self.members.items() if proc.poll() is None]
        statuses = json.loads(self.etcdctl("endpoint", "status", "-w", "json", members=running, check=True).stdout)
        by_id = {s["Status"]["header"]["member_id"]: s["Endpoint"] for s in statuses}
        (leader_id,) = {s["Status"]["leader"] for s in statuses}
        return next(n for n in MEMBERS if by_id[leader_id] == f"http://{address(n)}:{CLIENT_PORT}")

    def logs(self, lines: int = 10) -> str:
        """The last lines of each member's log, for a failure message."""
        return "\n".join(
            f"--- {member_name(n)}:\n" + self.host(n).run(["tail", f"-n{lines}", LOG_FILE]).stdout
            for n in MEMBERS if n <= len(self.hosts))

    # -- the end -------------------------------------------------------------------

    def close(self) -> None:
        """Close h1..h3 (their etcd members die with them), then the underlay."""
        for h in self.hosts:
            h.close()
        if self.underlay is not None:
            self.underlay.close()
