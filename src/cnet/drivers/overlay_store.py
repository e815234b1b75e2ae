"""What the hosts of an overlay share, in etcd: no driver, the overlay
driver's records (drivers/overlay.py).

Keys, under /cnet/:
    networks/NAME        {"subnets": [...], "vni", "mtu", "internal", "masquerade"}
    vnis/VNI             NAME (a VNI is one network's in the whole store)
    hosts/HOST           {"vtep"}: the host's underlay address (kept)
    members/NAME/HOST    {}: HOST has the network (the last one to delete it retires it)
    alive/HOST           {"vtep"}, on the lease of the host's `cnet agent`
    addrs/NAME/IP        {"host", "sandbox", "mac", "vtep"}: one endpoint address
    cursor/NAME/v4|v6    the address handed out last, network-wide

An address key is made only where it is absent, in the transaction that
moves its subnet's cursor (compare-and-swap on the cursor's revision), so
no two hosts ever hand out one address, and round-robin holds across hosts.
Each host writes and deletes only its own address keys (`cnet overlay
forget` aside).
"""

from __future__ import annotations

import ipaddress

from ..errors import Conflict
from ..ipam import SubnetPool
from ..model import Endpoint, Network
from ..store import open_store
from ..store.etcd import absent, delete, delete_prefix, get, none_newer, put, unchanged

ROOT = "/cnet/"
FIRST_VNI = 4096  # below it, VNIs people pick by hand (Docker starts its overlays there too)
MAX_VNI = 2**24 - 1
ATTEMPTS = 30  # compare-and-swap rounds lost to other hosts before a command gives up

_stores: dict[str, object] = {}


def store(url: str):
    """The client of that store, one per process (a batch or the agent reuses its connection)."""
    if url not in _stores:
        _stores[url] = open_store(url)
    return _stores[url]


def network_key(name: str) -> str:
    return f"{ROOT}networks/{name}"


def vni_key(vni: int) -> str:
    return f"{ROOT}vnis/{vni}"


def addr_prefix(name: str) -> str:
    return f"{ROOT}addrs/{name}/"


def cursor_key(name: str, version: int) -> str:
    return f"{ROOT}cursor/{name}/v{version}"


def members_prefix(name: str) -> str:
    return f"{ROOT}members/{name}/"


def member_key(name: str, host: str) -> str:
    return members_prefix(name) + host


def alive_key(host: str) -> str:
    return f"{ROOT}alive/{host}"


def _from_responses(responses: list) -> list:
    """The KVs of a transaction's range responses, in order (None for a missing key)."""
    from ..store.etcd import KV

    found = []
    for response in responses:
        kvs = response.get("response_range", {}).get("kvs", [])
        found.append(KV(kvs[0]) if kvs else None)
    return found


# -- the network ----------------------------------------------------------------

def definition(net: Network) -> dict:
    """What every host of the overlay makes the same."""
    return {"subnets": [{"subnet": s.subnet, "gateway": s.gateway, "ip_range": s.ip_range} for s in net.subnets],
            "vni": net.options["vni"], "mtu": net.mtu, "internal": net.internal, "masquerade": net.masquerade}


def read_network(db, name: str) -> dict | None:
    kv = db.get(network_key(name))
    return None if kv is None else kv.json()


def free_vni(db) -> int:
    """The lowest VNI from FIRST_VNI up that no network of the store has."""
    kvs, _ = db.get_prefix(f"{ROOT}vnis/")
    taken = {int(kv.key.rsplit("/", 1)[1]) for kv in kvs}
    vni = FIRST_VNI
    while vni in taken:
        vni += 1
    if vni > MAX_VNI:
        raise Conflict("no free VNI left in the store")
    return vni


def define(db, net: Network) -> bool:
    """Record the network (and claim its VNI) unless the store has it: True
    when this call made the record. Conflict when the VNI is another
    network's, or another host has just recorded the network differently."""
    name, vni = net.name, net.options["vni"]
    ok, responses = db.txn([absent(network_key(name)), absent(vni_key(vni))],
                           [put(network_key(name), definition(net)), put(vni_key(vni), name)],
                           [get(network_key(name)), get(vni_key(vni))])
    if ok:
        return True
    record, vni_owner = _from_responses(responses)
    if record is not None:
        if record.json() != definition(net):
            raise Conflict(f"overlay {name} was just created on another host with other settings; run again to join it")
        return False
    raise Conflict(f"VNI {vni} is used by overlay {vni_owner.value} in the store")


def undefine(db, net: Network) -> None:
    """Undo of define(): the record and the VNI claim, if they are still this definition."""
    kv = db.get(network_key(net.name))
    if kv is not None and kv.json() == definition(net):
        db.txn([unchanged(network_key(net.name), kv.mod_revision)],
               [delete(network_key(net.name)), delete(vni_key(net.options["vni"]))])


def register_host(db, host: str, vtep: str) -> None:
    db.put(f"{ROOT}hosts/{host}", {"vtep": vtep})


def join(db, name: str, host: str) -> None:
    db.put(member_key(name, host), {})


def leave(db, net: Network, host: str) -> list[tuple[str, str]]:
    """Take host off the network's members. The last member out, when no
    other host holds an address on it, retires the network: its definition,
    VNI claim, cursors, members and address records (this host's last ones)
    go in one transaction that holds only if nothing under its members or
    addresses was written since they were read. Returns the (key, value)
    pairs deleted, for an undo to put back."""
    name, mine = net.name, member_key(net.name, host)
    for _ in range(ATTEMPTS):
        members, revision = db.get_prefix(members_prefix(name))
        addresses, _ = db.get_prefix(addr_prefix(name))
        others = [kv for kv in members if kv.key != mine] + [kv for kv in addresses if kv.json().get("host") != host]
        if others:
            deleted = [(kv.key, kv.value) for kv in members if kv.key == mine]
            db.delete(mine)
            return deleted
        record, cursors = db.get(network_key(name)), db.get_prefix(f"{ROOT}cursor/{name}/")[0]
        vni = db.get(vni_key(net.options["vni"]))
        compare = [none_newer(members_prefix(name), revision), none_newer(addr_prefix(name), revision),
                   unchanged(network_key(name), record.mod_revision if record else 0)]
        success = [delete_prefix(members_prefix(name)), delete_prefix(addr_prefix(name)),
                   delete_prefix(f"{ROOT}cursor/{name}/"), delete(network_key(name))]
        if vni is not None and vni.value == name:
            compare.append(unchanged(vni_key(net.options["vni"]), vni.mod_revision))
            success.append(delete(vni_key(net.options["vni"])))
        ok, _ = db.txn(compare, success)
        if ok:
            kept = [record, vni if vni is not None and vni.value == name else None, *members, *addresses, *cursors]
            return [(kv.key, kv.value) for kv in kept if kv is not None]
    raise Conflict(f"overlay {name}: other hosts kept changing it; run the delete again")


def member_vteps(db, name: str) -> dict[str, str]:
    """{host: its underlay address} of the network's hosts: the VTEPs of its
    address records, and of its members as they registered them."""
    found = {record["host"]: record["vtep"] for _, record in records(db, name) if record.get("vtep")}
    members, _ = db.get_prefix(members_prefix(name))
    for kv in members:
        host = kv.key.rsplit("/", 1)[1]
        if host in found:
            continue
        registered = db.get(f"{ROOT}hosts/{host}")
        if registered is not None and registered.json().get("vtep"):
            found[host] = registered.json()["vtep"]
    return found


def holders(db, name: str) -> set[str]:
    """The hosts that hold the network: its members, and the hosts of its address records."""
    members, _ = db.get_prefix(members_prefix(name))
    addresses, _ = db.get_prefix(addr_prefix(name))
    return {kv.key.rsplit("/", 1)[1] for kv in members} | {kv.json().get("host") for kv in addresses} - {None}


def put_back(db, pairs: list[tuple[str, str]]) -> None:
    """Undo of leave(): each key it deleted, where none was written since."""
    for key, value in pairs:
        db.txn([absent(key)], [put(key, value)])


def hosts(db) -> dict[str, dict]:
    """Every host that ever joined an overlay of the store: {host: {"vtep", "alive"}}."""
    known, _ = db.get_prefix(f"{ROOT}hosts/")
    alive, _ = db.get_prefix(f"{ROOT}alive/")
    up = {kv.key.rsplit("/", 1)[1] for kv in alive}
    return {kv.key.rsplit("/", 1)[1]: {**kv.json(), "alive": kv.key.rsplit("/", 1)[1] in up} for kv in known}


# -- addresses ------------------------------------------------------------------

def records(db, name: str) -> list[tuple[str, dict]]:
    """(IP, record) of every endpoint address of the network, on every host."""
    kvs, _ = db.get_prefix(addr_prefix(name))
    return [(kv.key[len(addr_prefix(name)):], kv.json()) for kv in kvs]


def reserve(db, net: Network, ep: Endpoint, pinned: set[str], host: str, vtep: str) -> list[str]:
    """Addresses for ep, one per subnet, unique network-wide: the pinned ones
    (`--ip`) as given, the others the next free ones after the network's
    cursor. Recorded with ep's host, sandbox and MAC in one transaction, or
    not at all. Returns them as CIDRs."""
    pools = [SubnetPool(s.subnet, s.gateway, s.ip_range) for s in net.subnets]
    prefix = addr_prefix(net.name)
    value = {"host": host, "sandbox": ep.sandbox, "mac": ep.mac, "vtep": vtep}
    for _ in range(ATTEMPTS):
        used = {key[len(prefix):] for key in db.keys(prefix)}  # the values only for a conflict's message
        cursors = {p.version: db.get(cursor_key(net.name, p.version)) for p in pools}
        chosen, compare, success = [], [], []
        for pool in pools:
            wanted = next((ip for ip in pinned if ipaddress.ip_address(ip).version == pool.version), None)
            if wanted is not None:
                taken = str(ipaddress.ip_address(wanted))
                holder = db.get(prefix + taken) if taken in used else None  # None: released since
                if holder is not None:
                    holder = holder.json()
                    raise Conflict(f"address {wanted} is already in use on network {net.name}"
                                   f" (sandbox {holder['sandbox']} on host {holder['host']})")
                ip = pool.check_request(wanted, ())
            else:
                cursor = cursors[pool.version]
                try:
                    ip = pool.allocate(used, cursor.value if cursor else None)
                except Conflict as e:
                    raise Conflict(f"network {net.name}: {e}") from None
                compare.append(unchanged(cursor_key(net.name, pool.version), cursor.mod_revision if cursor else 0))
                success.append(put(cursor_key(net.name, pool.version), str(ip)))
            compare.append(absent(prefix + str(ip)))
            success.append(put(prefix + str(ip), value))
            chosen.append(f"{ip}/{pool.prefixlen}")
        ok, _ = db.txn(compare, success)
        if ok:
            return chosen
    raise Conflict(f"network {net.name}: other hosts kept taking the next address; run the attach again")


def release(db, name: str, addresses, host: str) -> None:
    """Delete the address records of an endpoint of this host (another
    host's record under one of those addresses is left alone)."""
    prefix = addr_prefix(name)
    for cidr in addresses:
        key = prefix + cidr.partition("/")[0]
        kv = db.get(key)
        if kv is not None and kv.json().get("host") == host:
            db.txn([unchanged(key, kv.mod_revision)], [delete(key)])


def forget(db, host: str) -> list[str]:
    """Release every address record of a host that is gone for good, its
    memberships and its registration: the "NETWORK IP" of each released."""
    members, _ = db.get_prefix(f"{ROOT}members/")
    for kv in members:
        if kv.key.rsplit("/", 1)[1] == host:
            db.delete(kv.key)
    kvs, _ = db.get_prefix(f"{ROOT}addrs/")
    released = []
    for kv in kvs:
        if kv.json().get("host") == host:
            ok, _ = db.txn([unchanged(kv.key, kv.mod_revision)], [delete(kv.key)])
            if ok:
                network, ip = kv.key[len(ROOT) + len("addrs/"):].rsplit("/", 1)
                released.append(f"{network} {ip}")
    db.delete(f"{ROOT}hosts/{host}")
    return released
