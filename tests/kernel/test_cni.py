"""cnet-cni as CNI runtimes call it, in test hosts.

First a plain harness (the CNI_* environment and the configuration on stdin,
as cnitool or a runtime sets them) for ADD, CHECK, DEL and GC on namespaces
made with `ip netns add`; then podman 4.3 (its CNI backend) and containerd
1.6 (`ctr run --cni`) each running two busybox containers on a cnet network
(skipped, with the reason, where they are not installed: `make test`
installs them with apt when it can).

    lan (198.18.0.2) ---- eth0 ---- eth0 ---- host (198.18.0.1)
                                              cnet network cbr0, containers' namespaces
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

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
    second = add(host, "default-srv", two,
                 capabilities={"portMappings": True, "ips": True, "mac": True, "bandwidth": True},
                 runtimeConfig={"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
                                "ips": ["10.77.0.50/24"], "mac": "02:42:0a:4d:00:32",
                                "bandwidth": {"ingressRate": 20_000_000, "ingressBurst": 262144,
                                              "egressRate": 10_000_000}})
    assert second["ips"][0]["address"] == "10.77.0.50/24"
    assert second["interfaces"][1]["mac"] == "02:42:0a:4d:00:32"
    assert host.run(["ip", "netns", "exec", "rt-two", "cat", "/sys/class/net/eth0/address"]).stdout == (
        "02:42:0a:4d:00:32\n")
    # the bandwidth capability: bit/s and bits, as the CNI bandwidth plugin reads it
    shaped = next(e for e in json.loads(ok(host.cnet("ls", "endpoints", "--json"))) if e["sandbox"] == "default-srv")
    assert shaped["limits"]["ingress_rate"] == 20_000_000 and shaped["limits"]["ingress_burst"] == 32768
    assert shaped["limits"]["egress_rate"] == 10_000_000
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


# -- real runtimes: podman and containerd ----------------------------------------------

ROOTFS_TOOLS = ("sh", "httpd", "wget", "sleep", "cat")
PAGE = "hello-from-cnet\n"


def _missing(*tools: str) -> str | None:
    for tool in tools:
        if shutil.which(tool) is None:
            return (f"{tool} is not installed (`make test` installs podman, runc, containerd and busybox-static"
                    " with apt)")
    return None


def _rootfs(work) -> str:
    """A busybox root file system (no image to pull): httpd serves PAGE from /www."""
    rootfs = work / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "www"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), rootfs / "bin" / "busybox")
    for tool in ROOTFS_TOOLS:
        (rootfs / "bin" / tool).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "www" / "index.html").write_text(PAGE)
    return str(rootfs)


def _private_dirs(host, *more: str) -> None:
    """tmpfs of the test host's own where the runtimes write: /var/lib (libcni's
    cache in /var/lib/cni; /var/lib/cnet made again there), /run (runc's and
    the shims' sockets; the host's /run/netns moved onto it) and `more`."""
    ok(host.sh("mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/cnet /var/lib/cni /var/lib/keep"
               " && mount --move /run/netns /var/lib/keep && mount -t tmpfs tmpfs /run && mkdir /run/netns"
               " && mount --move /var/lib/keep /run/netns && rmdir /var/lib/keep"))
    for d in more:
        ok(host.run(["mount", "-t", "tmpfs", "tmpfs", d]))


def _plugin_script() -> str:
    return f"#!/bin/sh\nPYTHONPATH={ROOT / 'src'} exec {sys.executable} -m cnet.cni\n"


def _conflist(name: str, network: str, subnet: str) -> str:
    return json.dumps({"cniVersion": "1.0.0", "name": name,
                       "plugins": [{"type": "cnet", "network": network, "subnet": subnet,
                                    "capabilities": {"portMappings": True}}]})


def _podman(host, work) -> list[str]:
    """A podman that keeps everything in the host's tmpfs and under work, with
    the CNI backend and cnet's plugin; the settings REAL-CLIENTS.md found it needs here."""
    _private_dirs(host)
    plugins, netconf = work / "plugins", work / "netconf"
    plugins.mkdir()
    netconf.mkdir()
    (plugins / "cnet").write_text(_plugin_script())
    (plugins / "cnet").chmod(0o755)
    (netconf / "cnetpod.conflist").write_text(_conflist("cnetpod", "pod0", "10.89.0.0/24"))
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
    host.env["CONTAINERS_CONF"] = str(work / "containers.conf")
    # its runroot must be a short path (50 characters at most)
    return ["podman", "--root", "/var/lib/podman/root", "--runroot", "/var/lib/podman/run", "--storage-driver",
            "vfs", "--tmpdir", "/var/lib/podman/tmp", "--network-config-dir", str(netconf), "--cgroup-manager",
            "cgroupfs", "--events-backend", "file"]


def test_podman_containers_on_a_cnet_network(net, tmp_path):
    missing = _missing("podman", "runc", "conmon", "busybox")
    if missing:
        pytest.skip(missing)
    host, lan = net
    rootfs = _rootfs(tmp_path)
    podman = _podman(host, tmp_path)
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
        assert ok(host.run([*podman, "exec", "cli", "wget", "-q", "-O", "-", f"http://{srv_ip}/index.html"])) == PAGE
        assert ok(lan.run(["busybox", "wget", "-q", "-O", "-", "http://198.18.0.1:8080/index.html"],
                          timeout=20)) == PAGE
    finally:
        ok(host.run([*podman, "rm", "-f", "-t", "0", "srv", "cli"], timeout=120))
    nothing_left(host, links_before)
    assert "8080" not in ok(host.run(["nft", "list", "ruleset"]))


def test_containerd_containers_on_a_cnet_network(host, tmp_path):
    """`ctr run --cni`: the conflist in /etc/cni/net.d, the plugin in /opt/cni/bin.
    ctr has no -p, so no published port here. The ctr that ran a container
    sends DEL, with an empty CNI_NETNS, once the task is gone."""
    missing = _missing("containerd", "ctr", "runc", "busybox")
    if missing:
        pytest.skip(missing)
    rootfs = _rootfs(tmp_path)
    _private_dirs(host, "/etc/cni", "/opt")
    ok(host.sh("mkdir -p /etc/cni/net.d /opt/cni/bin /var/lib/ctd"))
    ok(host.sh("cat > /opt/cni/bin/cnet && chmod 755 /opt/cni/bin/cnet", input=_plugin_script()))
    ok(host.sh("cat > /etc/cni/net.d/10-cnet.conflist", input=_conflist("cnetctd", "ctd0", "10.90.0.0/24")))
    ok(host.sh("cat > /var/lib/ctd/config.toml", input="""\
version = 2
root = "/var/lib/ctd/root"
state = "/run/ctd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "/run/ctd/ctd.sock"
[ttrpc]
  address = "/run/ctd/ttrpc.sock"
"""))
    host.popen(["containerd", "--config", "/var/lib/ctd/config.toml"], stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
    ok(host.sh("for i in $(seq 100); do [ -S /run/ctd/ctd.sock ] && exit 0; sleep 0.1; done; exit 1"))
    ctr = ["ctr", "--address", "/run/ctd/ctd.sock"]
    links_before = host_links(host) | {"ctd0"}
    runs = [host.popen([*ctr, "run", "--rm", "--cni", "--rootfs", rootfs, name, *argv],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, argv in (("srv", ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]), ("cli", ["/bin/sleep", "120"]))]
    for _ in range(100):  # until both ADDs are done
        names = sorted(ok(host.cnet("ls", "endpoints", "-q")).split())
        if len(names) == 2:
            break
        time.sleep(0.1)
    assert names == ["default-cli:ctd0", "default-srv:ctd0"]  # sandboxes named by the container IDs as they are
    endpoints = {e["sandbox"]: e for e in json.loads(ok(host.cnet("ls", "endpoints", "--json")))}
    srv_ip = endpoints["default-srv"]["addresses"][0].split("/")[0]
    page = ok(host.run([*ctr, "task", "exec", "--exec-id", "get", "cli", "/bin/wget", "-q", "-O", "-",
                        f"http://{srv_ip}/index.html"], timeout=30))
    assert page == PAGE
    for name in ("srv", "cli"):
        ok(host.run([*ctr, "task", "kill", "-s", "KILL", name]))
    for run in runs:
        run.wait(timeout=30)
    nothing_left(host, links_before)
