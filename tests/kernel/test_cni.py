"""cnet-cni as CNI runtimes call it, in test hosts.

First a plain harness (the CNI_* environment and the configuration on stdin,
as cnitool or a runtime sets them) for ADD, CHECK, DEL and GC on namespaces
made with `ip netns add`; then podman 4.3 with its CNI backend running two
busybox containers on a cnet network (skipped, with the reason, where podman
is not installed: `make test` installs it with apt when it can).

    lan (198.18.0.2) ---- eth0 ---- eth0 ---- host (198.18.0.1)
                                              cnet network cbr0, containers' namespaces
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from testhost import ROOT, ask, link_hosts, serve

PLUGIN = [sys.executable, "-m", "cnet.cni"]
PLUGIN_ENV = {"PYTHONPATH": str(ROOT / "src")}  # this checkout's cnet, whatever is installed
PODMAN_ID = "5d9949c0be8a" + "7" * 52  # 64 hex digits, as podman's IDs are


def ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def entry(**keys) -> dict:
    return {"cniVersion": "1.0.0", "name": "cnet0", "type": "cnet", "network": "cbr0", **keys}


def cni(host, command: str, config: dict, container: str, netns: str = "", ifname: str = "eth0", args: str = ""):
    """(exit status, the JSON answer or None)."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": args, **PLUGIN_ENV}
    r = host.run(PLUGIN, input=json.dumps(config), env=env)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None


def add(host, container: str, netns: str, **keys) -> dict:
    status, result = cni(host, "ADD", entry(**keys), container, netns)
    assert status == 0, result
    return result


def runtime_netns(host, name: str) -> str:
    """A namespace as a runtime makes one for a container: not cnet's."""
    ok(host.run(["ip", "netns", "add", name]))
    ok(host.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]))
    return f"/run/netns/{name}"


def host_links(host) -> set[str]:
    return set(host.links())


def nothing_left(host, links_before: set[str]) -> None:
    """No sandbox, endpoint link, port or record of a container; `cnet check` clean."""
    assert ok(host.cnet("ls", "ns", "-q")) == ""
    assert ok(host.cnet("ls", "ports", "-q")) == ""
    assert host_links(host) == links_before
    assert ok(host.cnet("check")) == ""
    assert host.sh("ls -A /var/lib/cnet/state.yaml.cni 2>/dev/null").stdout == ""


@pytest.fixture
def net(make_host):
    host, lan = make_host("host"), make_host("lan")
    link_hosts(host, lan, "eth0", "eth0")
    ok(host.run(["ip", "addr", "add", "198.18.0.1/24", "dev", "eth0"]))
    ok(lan.run(["ip", "addr", "add", "198.18.0.2/24", "dev", "eth0"]))
    return host, lan


def test_add_check_del_with_traffic_and_a_published_port(net):
    host, lan = net
    one, two = runtime_netns(host, "rt-one"), runtime_netns(host, "rt-two")
    # the first ADD makes the network from the entry's subnet
    first = add(host, PODMAN_ID, one, subnet="10.77.0.0/24")
    links_before = host_links(host) - {first["interfaces"][0]["name"]}
    second = add(host, "default-srv", two, capabilities={"portMappings": True},
                 runtimeConfig={"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    # the result as spec 1.0 writes it, and the kernel's view of it
    assert first["cniVersion"] == "1.0.0"
    host_if, inside = first["interfaces"]
    assert inside == {"name": "eth0", "mac": inside["mac"], "sandbox": one}
    (ip,) = first["ips"]
    assert ip["gateway"] == "10.77.0.1" and ip["interface"] == 1 and ip["address"].startswith("10.77.0.")
    assert first["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}]
    (link,) = json.loads(ok(host.run(["ip", "netns", "exec", "rt-one", "ip", "-j", "addr", "show", "eth0"])))
    assert link["address"] == inside["mac"]
    assert f"{link['addr_info'][0]['local']}/{link['addr_info'][0]['prefixlen']}" == ip["address"]
    assert host.links()[host_if["name"]]["master"] == "cbr0"
    # cnet sees the containers as sandboxes
    names = ok(host.cnet("ls", "ns", "-q")).split()
    assert names == sorted(["5d9949c0be8a-" + names[0].partition("-")[2], "default-srv"])
    # traffic between the containers, and to the published port from the LAN
    one_ip, two_ip = ip["address"].split("/")[0], second["ips"][0]["address"].split("/")[0]
    serve(host, "tcp", 80, ns="rt-two")
    assert ask(host, "tcp", two_ip, 80, ns="rt-one") == one_ip
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
    # CHECK: in sync, then not once the host side of the first is gone
    for container, netns, result in ((PODMAN_ID, one, first), ("default-srv", two, second)):
        assert cni(host, "CHECK", entry(prevResult=result), container, netns) == (0, None)
    ok(host.run(["ip", "link", "del", host_if["name"]]))
    status, answer = cni(host, "CHECK", entry(prevResult=first), PODMAN_ID, one)
    assert status == 1 and answer["code"] == 105 and host_if["name"] in answer["msg"]
    # a second ADD of the same attachment is refused, and changes nothing
    status, answer = cni(host, "ADD", entry(), "default-srv", two)
    assert status == 1 and answer["code"] == 104
    # DEL: twice each, the second with the empty CNI_NETNS containerd sends
    for _ in range(2):
        assert cni(host, "DEL", entry(), PODMAN_ID, one) == (0, None)
        assert cni(host, "DEL", entry(), "default-srv") == (0, None)
    assert ask(lan, "tcp", "198.18.0.1", 8080, timeout=1) is None
    nothing_left(host, links_before)
    # the runtime's namespaces are the runtime's: still there
    assert set(ok(host.run(["ip", "netns", "list"])).split()) >= {"rt-one", "rt-two"}


def test_del_after_the_namespace_is_gone_and_gc(host):
    """DEL after the container's namespace went (a reboot takes the bind of it
    too), and GC of the attachments the runtime no longer lists."""
    links_before = host_links(host) | {"cbr0"}
    for name in ("rt-a", "rt-b", "rt-c"):
        runtime_netns(host, name)
    add(host, "ctr-a", "/run/netns/rt-a", subnet="10.78.0.0/24")
    add(host, "ctr-b", "/run/netns/rt-b")
    add(host, "ctr-c", "/run/netns/rt-c")
    # as after a reboot: the runtime's namespace and cnet's name of it are gone, with their links
    ok(host.sh("ip netns del rt-a && umount /run/netns/ctr-a && rm /run/netns/ctr-a"))
    assert cni(host, "DEL", entry(), "ctr-a") == (0, None)
    assert ok(host.cnet("ls", "ns", "-q")).split() == ["ctr-b", "ctr-c"]
    # GC keeps what the runtime lists, for this network configuration only
    valid = [{"containerID": "ctr-b", "ifname": "eth0"}]
    gc = {**entry(**{"cni.dev/valid-attachments": valid}), "cniVersion": "1.1.0"}
    assert cni(host, "GC", {**gc, "name": "another"}, "") == (0, None)
    assert ok(host.cnet("ls", "ns", "-q")).split() == ["ctr-b", "ctr-c"]
    assert cni(host, "GC", gc, "") == (0, None)
    assert ok(host.cnet("ls", "ns", "-q")).split() == ["ctr-b"]
    assert cni(host, "DEL", entry(), "ctr-b", "/run/netns/rt-b") == (0, None)
    nothing_left(host, links_before)


# -- podman ---------------------------------------------------------------------

ROOTFS_TOOLS = ("sh", "httpd", "wget", "sleep", "cat", "ip")


def _podman_missing() -> str | None:
    for tool in ("podman", "runc", "conmon", "busybox"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (`make test` installs podman, runc and busybox-static with apt)"
    return None


def _podman_setup(host, work) -> list[str]:
    """A podman that keeps everything under work (and tmpfs), with the CNI
    backend and cnet's plugin; the settings REAL-CLIENTS.md found it needs here."""
    rootfs = work / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "www"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), rootfs / "bin" / "busybox")
    for tool in ROOTFS_TOOLS:
        (rootfs / "bin" / tool).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "www" / "index.html").write_text("hello-from-cnet\n")
    plugins, netconf = work / "plugins", work / "netconf"
    plugins.mkdir()
    netconf.mkdir()
    plugin = plugins / "cnet"
    plugin.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT / 'src'} exec {sys.executable} -m cnet.cni\n")
    plugin.chmod(0o755)
    (netconf / "cnetpod.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "cnetpod",
        "plugins": [{"type": "cnet", "network": "pod0", "subnet": "10.89.0.0/24",
                     "capabilities": {"portMappings": True}}]}))
    (work / "containers.conf").write_text(f"""\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "private"
[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}"]
network_config_dir = "{netconf}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
""")
    # libcni caches results in /var/lib/cni: a tmpfs of this host's, /var/lib/cnet made again on it,
    # and podman's own directories there too (its runroot must be a short path: 50 characters at most)
    ok(host.sh("mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/cnet /var/lib/cni /var/lib/podman"))
    host.env["CONTAINERS_CONF"] = str(work / "containers.conf")
    return ["podman", "--root", "/var/lib/podman/root", "--runroot", "/var/lib/podman/run", "--storage-driver",
            "vfs", "--tmpdir", "/var/lib/podman/tmp", "--network-config-dir", str(netconf), "--cgroup-manager",
            "cgroupfs", "--events-backend", "file"]


def test_podman_containers_on_a_cnet_network(net, tmp_path):
    missing = _podman_missing()
    if missing:
        pytest.skip(missing)
    host, lan = net
    podman = _podman_setup(host, tmp_path)
    rootfs = str(tmp_path / "rootfs")
    links_before = host_links(host) | {"pod0"}
    try:
        ok(host.run([*podman, "run", "-d", "--name", "srv", "--network", "cnetpod", "-p", "8080:80",
                     "--rootfs", rootfs, "/bin/httpd", "-f", "-p", "80", "-h", "/www"], timeout=120))
        ok(host.run([*podman, "run", "-d", "--name", "cli", "--network", "cnetpod", "--rootfs", rootfs,
                     "/bin/sleep", "120"], timeout=120))
        sandboxes = json.loads(ok(host.cnet("ls", "ns", "--json")))
        assert sorted(s["hostname"] for s in sandboxes) == ["cli", "srv"]  # podman's names, from CNI_ARGS
        assert all(s["mode"] == "adopted" and s["status"] == "ok" for s in sandboxes)
        endpoints = sorted(ok(host.cnet("ls", "endpoints", "-q")).split())
        assert endpoints == sorted(f"{s['name']}:pod0" for s in sandboxes)
        srv_ip = ok(host.run([*podman, "inspect", "srv", "--format",
                              "{{.NetworkSettings.Networks.cnetpod.IPAddress}}"])).strip()
        assert srv_ip.startswith("10.89.0.")
        page = ok(host.run([*podman, "exec", "cli", "wget", "-q", "-O", "-", f"http://{srv_ip}/index.html"]))
        assert page == "hello-from-cnet\n"
        assert ok(lan.run(["busybox", "wget", "-q", "-O", "-", "http://198.18.0.1:8080/index.html"],
                          timeout=20)) == "hello-from-cnet\n"
    finally:
        ok(host.run([*podman, "rm", "-f", "-t", "0", "srv", "cli"], timeout=120))
    nothing_left(host, links_before)
    assert "8080" not in ok(host.run(["nft", "list", "ruleset"]))
