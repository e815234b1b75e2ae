"""`cnet -v` tells each kernel and firewall change as it happens; `-q` silences warnings."""

from __future__ import annotations

import pytest


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_verbose_lines_tell_what_was_made_and_removed(host, backend):
    host.env["CNET_FIREWALL"] = backend
    made = host.cnet("-v", "create", "bridge", "mybr0", "--subnet", "172.26.0.0/16")
    assert made.stdout == "mybr0\n"  # stdout stays what scripts read
    lines = made.stderr.splitlines()
    assert lines[0] == "+ link mybr0 (bridge)"
    assert "+ address 172.26.0.1/16 on mybr0" in lines and "~ link mybr0 up" in lines
    firewall = "+ nft table inet cnet (1 bridges, 0 published ports)" if backend == "nftables" else \
        "+ iptables chains CNET-* (1 bridges, 0 published ports)"
    assert firewall in lines
    out = host.cnet("-v", "create", "ns", "web", "--network", "mybr0", "--publish", "8080:80")
    ok(out)
    lines = out.stderr.splitlines()
    veth = next(line for line in lines if "(veth" in line)
    host_link = veth.split()[2]
    assert host_link in host.links()
    assert lines[0] == "+ netns web"
    assert "+ address 172.26.0.2/16 on eth0 in web" in lines
    assert "+ route default via 172.26.0.1 in web" in lines
    if backend == "nftables":
        assert lines[-1] == "+ nft element inet cnet dnat4any tcp . 8080 : 172.26.0.2 . 80"
    gone = host.cnet("-v", "delete", "ns", "web")
    assert f"- link {host_link}" in gone.stderr.splitlines() and "- netns web" in gone.stderr.splitlines()
    assert host_link not in host.links()
    quiet = host.cnet("delete", "bridge", "mybr0")
    assert quiet.stderr == ""  # without -v: nothing on stderr


def test_quiet_silences_warnings_but_not_errors(host):
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16"))
    host.run(["ip", "link", "del", "mybr0"], check=True)
    loud = host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--exist-ok")
    assert loud.returncode == 0 and "cnet: warning: network mybr0 was not whole" in loud.stderr
    host.run(["ip", "link", "del", "mybr0"], check=True)
    hushed = host.cnet("-q", "create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--exist-ok")
    assert hushed.returncode == 0 and hushed.stderr == "" and "mybr0" in host.links()
    failed = host.cnet("-q", "create", "bridge", "mybr0", "--subnet", "10.9.0.0/24", "--exist-ok")
    assert failed.returncode == 4 and failed.stderr.startswith("cnet: error:")
