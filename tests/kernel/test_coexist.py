"""cnet beside the host's own firewall (firewall/hostpolicy.py), on both backends.

Each row of FIREWALLS is set up in the host BEFORE cnet, as on a real host;
then a published port must answer the LAN client and a sandbox must reach a
server on the LAN, with no warning (cnet answers every one of them). Then the
foreign firewall is reloaded (flushed and made again, without cnet's rules):
`cnet check` exits 5 naming it, `cnet restore` puts cnet's accepts back.
And deleting the last network leaves the foreign firewall as it was.

Topology as in test_nat.py: lan (198.18.0.2, fd00:18::2) -- host (198.18.0.1,
fd00:18::1) with mybr0 172.26.0.0/16 + fd00:26::/64.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from testhost import ask, link_hosts, serve

BACKENDS = ["nftables", "iptables"]
IPTABLES_NFT_TABLES = {"filter", "nat", "mangle", "raw", "security"}

NFT_FILTER = "add table inet filter; add chain inet filter forward { type filter hook forward priority 0; policy drop; }"
FIREWALLD = ("add table inet firewalld; add chain inet firewalld filter_FORWARD { type filter hook forward priority"
             " filter + 10; policy accept; }; add rule inet firewalld filter_FORWARD ct state established,related"
             " accept; add rule inet firewalld filter_FORWARD reject with icmpx admin-prohibited")

class Firewall:
    """set up: a shell script; reload: one that flushes it and makes it again;
    names: what `cnet check` says of it once cnet's accepts are gone."""

    def __init__(self, setup: str, reload: str, names: str, needs: str = ""):
        self.setup, self.reload, self.names, self.needs = setup, reload, names, needs


def _iptables(tool: str, rules: str) -> Firewall:
    both = f"{rules.format(t=tool)} && {rules.format(t=tool.replace('iptables', 'ip6tables'))}"
    # a reload: the firewall's own rules file, loaded as firewall services do (iptables-restore, no --noflush)
    saved = "/etc/cnet/firewall.rules"
    reload = (f"{tool}-restore < {saved}.4 && {tool.replace('iptables', 'ip6tables')}-restore < {saved}.6")
    setup = (f"{both} && {tool}-save -t filter > {saved}.4 &&"
             f" {tool.replace('iptables', 'ip6tables')}-save -t filter > {saved}.6")
    return Firewall(setup, reload, f"{tool}: FORWARD", needs=tool)


FIREWALLS = {
    "policy-drop": _iptables("iptables", "{t} -P FORWARD DROP"),
    "rhel-reject": _iptables("iptables", "{t} -A FORWARD -j REJECT"),
    # DOCKER-USER and ufw's chains are reached from FORWARD after cnet's jump: its ACCEPT there ends FORWARD
    "docker-like": _iptables("iptables", "{t} -N DOCKER-USER && {t} -A DOCKER-USER -j RETURN && {t} -N DOCKER-FORWARD"
                                         " && {t} -A FORWARD -j DOCKER-USER && {t} -A FORWARD -j DOCKER-FORWARD"
                                         " && {t} -P FORWARD DROP"),
    "ufw-like": _iptables("iptables", "{t} -N ufw-before-forward && {t} -N ufw-user-forward && {t} -N ufw-reject-forward"
                                      " && {t} -A ufw-before-forward -j ufw-user-forward"
                                      " && {t} -A ufw-reject-forward -j REJECT && {t} -A FORWARD -j ufw-before-forward"
                                      " && {t} -A FORWARD -j ufw-reject-forward && {t} -P FORWARD DROP"),
    "nft-policy-drop": Firewall(f"nft '{NFT_FILTER}'", f"nft delete table inet filter && nft '{NFT_FILTER}'",
                                "nftables chain forward of table inet filter"),
    "firewalld": Firewall(f"nft '{FIREWALLD}'", f"nft delete table inet firewalld && nft '{FIREWALLD}'",
                          "nftables chain filter_FORWARD of table inet firewalld"),
    "legacy-policy-drop": _iptables("iptables-legacy", "{t} -P FORWARD DROP"),
}


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def quiet(result) -> str:
    """A command that succeeded and warned of nothing."""
    out = ok(result)
    assert "warning" not in result.stderr, result.stderr
    return out


def check(host) -> tuple[int, dict]:
    result = host.cnet("check", "--json")
    return result.returncode, json.loads(result.stdout)


def foreign_firewall(host) -> tuple:
    """What the host's firewall holds outside cnet: every nft table that is not
    cnet's nor iptables-nft's, as nft lists it; and per iptables stack the
    policies and rules of each table that holds more than ACCEPT policies
    (the iptables backend leaves iptables-nft's empty tables behind: not rules),
    without the iptables backend's own chains but with cnet's accepts."""
    tables = [t["table"] for t in json.loads(ok(host.run(["nft", "-j", "list", "tables"])))["nftables"] if "table" in t]
    nft = {(t["family"], t["name"]): ok(host.run(["nft", "list", "table", t["family"], t["name"]]))
           for t in tables if not t["name"].startswith("cnet")
           and not (t["family"] in ("ip", "ip6") and t["name"] in IPTABLES_NFT_TABLES)}
    stacks = {}
    for tool in ("iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"):
        if shutil.which(tool) is None:
            continue
        by_table, table = {}, None
        for line in ok(host.run([tool])).splitlines():
            if line.startswith("*"):
                table = by_table.setdefault(line[1:], [])
            elif "CNET" in line and "CNET-ACCEPT" not in line:
                continue  # the iptables backend's own chains
            elif line.startswith(":"):
                table.append(re.sub(r" \[\d+:\d+\]$", "", line))
            elif line.startswith("-A"):
                table.append(line)
        stacks[tool] = {name: lines for name, lines in by_table.items()
                        if any(not line.endswith(" ACCEPT") or line.startswith("-A") for line in lines)}
    return nft, stacks


@pytest.fixture(params=BACKENDS)
def two_hosts(request, make_host):
    host, lan = make_host("host"), make_host("lan")
    host.env["CNET_FIREWALL"] = request.param
    link_hosts(host, lan, "eth0", "eth0")
    for h, v4, v6 in ((host, "198.18.0.1/24", "fd00:18::1/64"), (lan, "198.18.0.2/24", "fd00:18::2/64")):
        h.run(["ip", "addr", "add", v4, "dev", "eth0"], check=True)
        h.run(["ip", "addr", "add", v6, "dev", "eth0", "nodad"], check=True)
    return host, lan


@pytest.fixture(params=list(FIREWALLS))
def firewalled(request, two_hosts):
    """(host, lan, firewall, the foreign firewall as it was before cnet)."""
    firewall = FIREWALLS[request.param]
    if firewall.needs and shutil.which(firewall.needs) is None:
        pytest.skip(f"{firewall.needs} is not installed")
    host, lan = two_hosts
    host.sh(firewall.setup, check=True)
    return host, lan, firewall, foreign_firewall(host)


def answers(host, lan) -> bool:
    """The published port 8080 (IPv4 and IPv6) from the LAN, and the LAN's server from sandbox web."""
    return (ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
            and ask(lan, "tcp", "fd00:18::1", 8080) == "fd00:18::2"
            and ask(host, "tcp", "198.18.0.2", 7000, ns="web") == "198.18.0.1")


def test_cnet_traffic_passes_the_hosts_firewall_and_survives_its_reload(firewalled):
    host, lan, firewall, _ = firewalled
    quiet(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--subnet", "fd00:26::/64"))
    quiet(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    serve(host, "tcp", 80, ns="web")
    serve(host, "tcp", 81, ns="web")
    serve(lan, "tcp", 7000)
    assert answers(host, lan)
    code, report = check(host)
    assert (code, report["differences"], report["warnings"]) == (0, [], [])
    assert report["foreign_rules"] and all("accept" in line or "CNET-ACCEPT" in line for line in report["foreign_rules"])

    host.sh(firewall.reload, check=True)  # cnet's accepts are gone with it
    assert ask(lan, "tcp", "198.18.0.1", 8080, timeout=1) is None
    code, report = check(host)
    assert code == 5 and any(d["text"].startswith(firewall.names) for d in report["differences"]), report
    ok(host.cnet("restore"))
    assert check(host)[0] == 0
    assert answers(host, lan)
    quiet(host.cnet("publish", "web", "8081:81"))
    assert ask(lan, "tcp", "198.18.0.1", 8081) == "198.18.0.2"


def test_the_last_network_leaves_the_hosts_firewall_as_it_was(firewalled):
    host, _, _, before = firewalled
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--subnet", "fd00:26::/64"))
    ok(host.cnet("create", "bridge", "routed0", "--subnet", "10.90.0.0/24", "--routed"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    assert foreign_firewall(host) != before  # cnet's accepts are in it
    ok(host.cnet("delete", "ns", "web"))
    ok(host.cnet("delete", "bridge", "routed0"))
    assert foreign_firewall(host) != before  # still, for mybr0
    ok(host.cnet("delete", "bridge", "mybr0"))
    assert foreign_firewall(host) == before
    assert "CNET" not in ok(host.run(["iptables-save"])) + ok(host.run(["ip6tables-save"]))


@pytest.mark.parametrize("row, warning", [
    ("nft-policy-drop", "nftables chain forward of table inet filter (not cnet's) has policy drop, and cnet's accepts at"
                        " its top are missing or out of date: forwarded traffic of cnet's networks is dropped there"),
    ("rhel-reject", "iptables: FORWARD may drop forwarded traffic of cnet's networks, and its jump to CNET-ACCEPT is"
                    " missing"),
])
def test_a_reloaded_firewall_is_named_at_the_next_publish(two_hosts, row, warning):
    host, _ = two_hosts
    host.sh(FIREWALLS[row].setup, check=True)
    quiet(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16"))
    quiet(host.cnet("create", "ns", "web", "--network", "mybr0"))
    host.sh(FIREWALLS[row].reload, check=True)
    r = host.cnet("publish", "web", "8080:80")
    assert r.returncode == 0
    assert f"cnet: warning: {warning}; `cnet restore` puts cnet's accepts back" in r.stderr, r.stderr


def test_a_chain_cnet_does_not_answer_is_warned_of_at_every_command_it_affects(two_hosts):
    host, _ = two_hosts
    host.sh("nft 'add table bridge theirs; add chain bridge theirs gate { type filter hook forward priority 0;"
            " policy drop; }'", check=True)
    before = foreign_firewall(host)
    warning = ("cnet: warning: nftables chain gate of table bridge theirs (not cnet's) has policy drop: a packet must"
               " pass every forward chain")
    for args in (("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16"), ("create", "ns", "web", "--network", "mybr0"),
                 ("create", "ns", "db"), ("attach", "db", "mybr0"), ("publish", "web", "8080:80")):
        r = host.cnet(*args)
        assert r.returncode == 0, r.stderr
        assert r.stderr.count(warning) == (0 if args == ("create", "ns", "db") else 1), (args, r.stderr)
    assert foreign_firewall(host) == before  # cnet added nothing there
    code, report = check(host)
    assert code == 0 and [w for w in report["warnings"] if "table bridge theirs" in w]
    assert report["foreign_rules"] == []


def test_two_state_files_keep_their_own_accepts(two_hosts):
    host, _ = two_hosts
    host.sh(f"nft '{NFT_FILTER}' && iptables -P FORWARD DROP", check=True)
    other = ["--state", "/var/lib/cnet/other.yaml"]
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16"))
    ok(host.cnet(*other, "create", "bridge", "theirs0", "--subnet", "10.91.0.0/24"))

    def owners() -> list[str]:
        """The first word of the comments in the foreign chain: whose accepts are there."""
        listing = json.loads(ok(host.run(["nft", "-j", "list", "chain", "inet", "filter", "forward"])))["nftables"]
        return sorted({i["rule"]["comment"].split()[0] for i in listing if "rule" in i})

    (ours, theirs) = owners()
    assert ours == "cnet" and theirs.startswith("cnet@")
    assert check(host)[0] == 0 and host.cnet(*other, "check").returncode == 0
    ok(host.cnet("delete", "bridge", "mybr0"))
    assert owners() == [theirs]
    assert "-A FORWARD -j CNET-ACCEPT" not in ok(host.run(["iptables", "-S"]))
    assert host.cnet(*other, "check").returncode == 0
    ok(host.cnet(*other, "delete", "bridge", "theirs0"))
    assert owners() == [] and "CNET" not in ok(host.run(["iptables", "-S"]))
