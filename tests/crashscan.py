"""An independent look at a test host: where the kernel and cnet's state file
disagree, read with `ip`, `nft` and `ls` only, never with cnet's own code
(it is what is being checked). Each difference is a line a person can read."""

from __future__ import annotations

import json

STATE = "/var/lib/cnet/state.yaml"


def _json(host, *cmd) -> list:
    result = host.run(list(cmd))
    return json.loads(result.stdout or "[]") if result.returncode == 0 else []


def differences(host) -> list[str]:
    text = host.run(["cat", STATE]).stdout
    try:
        state = json.loads(text) if text.strip() else {}
    except ValueError:
        return [f"state file does not parse: {text[:80]!r}"]
    networks = state.get("networks", {})
    sandboxes = state.get("sandboxes", {})
    endpoints = state.get("endpoints", [])
    found = []

    links = {link["ifname"]: link for link in _json(host, "ip", "-j", "-d", "link", "show")}
    namespaces = {ns["name"] for ns in _json(host, "ip", "-j", "netns", "list")}
    for name in networks:
        if name not in links:
            found.append(f"network {name}: no bridge")
    for name, sb in sandboxes.items():
        if sb.get("mode", "none") != "host" and name not in namespaces:
            found.append(f"sandbox {name}: no namespace")
    expected_links = set(networks) | {e["host_ifname"] for e in endpoints}
    for ep in endpoints:
        where = f"endpoint {ep['sandbox']}/{ep['network']}"
        link = links.get(ep["host_ifname"])
        if link is None:
            found.append(f"{where}: no host link {ep['host_ifname']}")
            continue
        if link.get("master") != ep["network"]:
            found.append(f"{where}: host link not on bridge {ep['network']}")
        if ep["sandbox"] not in namespaces:
            continue
        inside = {i["ifname"]: i for i in _json(host, "ip", "-n", ep["sandbox"], "-j", "addr", "show")}
        peer = inside.get(ep["ifname"])
        if peer is None:
            found.append(f"{where}: no {ep['ifname']} in the sandbox")
            continue
        if peer.get("address") != ep["mac"]:
            found.append(f"{where}: MAC {peer.get('address')} where the state has {ep['mac']}")
        have = {f"{a['local']}/{a['prefixlen']}" for a in peer.get("addr_info", ())}
        for cidr in ep["addresses"]:
            if cidr not in have:
                found.append(f"{where}: no address {cidr}")
    for name, link in links.items():
        tagged = (link.get("ifalias") or "").startswith("cnet") or name.startswith("cn")
        if tagged and name not in expected_links:
            found.append(f"link {name} ({link.get('ifalias') or 'no alias'}) is not in the state")
    for name in namespaces - set(sandboxes):
        found.append(f"namespace {name} is not in the state")
    etc = set(host.run(["ls", "/etc/netns"]).stdout.split())
    for name in etc - set(sandboxes):
        found.append(f"/etc/netns/{name} is not in the state")
    temps = [n for n in host.run(["ls", "-a", "/var/lib/cnet"]).stdout.split() if n.startswith(".state")]
    found += [f"temporary file {n}" for n in temps]
    found += _dnat_differences(host, state, endpoints)
    return found


def _dnat_differences(host, state, endpoints) -> list[str]:
    """The published ports of the state against table inet cnet's dnat maps."""
    addresses = {(e["sandbox"], e["network"]): e["addresses"] for e in endpoints}
    wanted = set()
    for p in state.get("ports", []):
        six = ":" in p["host_ip"]
        target = next((a.split("/")[0] for a in addresses.get((p["sandbox"], p["network"]), ())
                       if (":" in a) == six), None)
        any_ip = p["host_ip"] in ("0.0.0.0", "::")
        for i in range(p.get("count", 1)):
            wanted.add((f"dnat{6 if six else 4}{'any' if any_ip else ''}",
                        f"{'' if any_ip else p['host_ip'] + ' '}{p['protocol']} {p['host_port'] + i}",
                        f"{target} {p['port'] + i}"))
    have = _iptables_dnat(host) if host.env.get("CNET_FIREWALL") == "iptables" else _nft_dnat(host)
    return ([f"nft element missing: {' '.join(k)}" for k in sorted(wanted - have)]
            + [f"nft element not in the state: {' '.join(k)}" for k in sorted(have - wanted)])


def _words(value) -> str:
    return " ".join(str(x) for x in (value["concat"] if isinstance(value, dict) else [value]))


def _nft_dnat(host) -> set:
    listed = host.run(["nft", "-j", "list", "table", "inet", "cnet"])
    items = json.loads(listed.stdout).get("nftables", []) if listed.returncode == 0 else []
    have = set()
    for item in items:
        m = item.get("map")
        if m and m["name"].startswith("dnat"):
            for key, value in m.get("elem", ()):
                have.add((m["name"], _words(key), _words(value)))
    return have


def _iptables_dnat(host) -> set:
    """The DNAT rules of chain CNET-DNAT, as the nft maps' (map, key, value) would name them."""
    have = set()
    for tool, family in (("iptables-save", 4), ("ip6tables-save", 6)):
        for line in host.run([tool, "-t", "nat"]).stdout.splitlines():
            words = line.split()
            if words[:2] != ["-A", "CNET-DNAT"] or "--to-destination" not in words:
                continue
            host_ip = words[words.index("-d") + 1].split("/")[0] if "-d" in words else None
            protocol, port = words[words.index("-p") + 1], words[words.index("--dport") + 1]
            target, _, target_port = words[words.index("--to-destination") + 1].rpartition(":")
            key = f"{host_ip + ' ' if host_ip else ''}{protocol} {port}"
            have.add((f"dnat{family}{'' if host_ip else 'any'}", key, f"{target.strip('[]')} {target_port}"))
    return have
