"""`cnet check` run without the capabilities it reads the kernel with: one
`cnet: error:` line and exit 1 ("cannot look" is neither "in sync", 0, nor
"differs", 5), and nothing of libnftables' own refusal on stderr."""

from __future__ import annotations

import pytest

from testhost import CNET

# Capabilities dropped, uid 0 kept: the interpreter and the state file stay
# readable, the kernel refuses netlink, nft and setns as for any other user.
NO_CAPABILITIES = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
NO_SYS_ADMIN = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"]


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("with_networks", [False, True])
@pytest.mark.parametrize("argv", [["check"], ["check", "--json"], ["check", "--deep"]])
def test_check_without_capabilities_says_it_cannot_look(host, with_networks, argv):
    if with_networks:
        ok(host.cnet("create", "bridge", "br0", "--subnet", "10.8.0.0/24"))
        ok(host.cnet("create", "ns", "a", "--network", "br0"))
    ok(host.cnet(*argv))  # in sync, as root
    r = host.run([*NO_CAPABILITIES, *CNET, *argv])
    assert (r.returncode, r.stdout) == (1, ""), (r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("cnet: error: cnet check cannot read the firewall"), \
        r.stderr
    assert "CAP_NET_ADMIN" in r.stderr


def test_check_deep_without_sys_admin_names_it_and_plain_check_still_works(host):
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.8.0.0/24"))
    ok(host.cnet("create", "ns", "a", "--network", "br0"))
    r = host.run([*NO_SYS_ADMIN, *CNET, "check", "--deep"])
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot enter the sandboxes (--deep) without CAP_SYS_ADMIN" in r.stderr
    assert ok(host.run([*NO_SYS_ADMIN, *CNET, "check"])) == ""
