"""The overlay's records in the store (drivers/overlay_store.py) and the
join rules of drivers/overlay.py, on an in-memory store that evaluates the
same transactions etcd does (tests/kernel/test_overlay.py runs them on a
real etcd cluster)."""

from __future__ import annotations

import base64
import json

import pytest

from cnet.drivers import overlay, overlay_store as records
from cnet.errors import Conflict, InvalidInput
from cnet.model import Endpoint, Network, Subnet
from cnet.store.etcd import KV


def _key(b64: str) -> str:
    return base64.b64decode(b64).decode()


class MemoryStore:
    """get, get_prefix, put, delete and txn (CREATE and MOD compares) as etcd does them."""

    def __init__(self):
        self.data: dict[str, tuple[str, int, int]] = {}  # key: (value, create_revision, mod_revision)
        self.revision = 1
        self.endpoints = [("127.0.0.1", 2379)]

    def _kv(self, key):
        value, create, mod = self.data[key]
        return KV({"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value.encode()).decode(),
                   "create_revision": create, "mod_revision": mod})

    def get(self, key):
        return self._kv(key) if key in self.data else None

    def get_prefix(self, prefix):
        return [self._kv(k) for k in sorted(self.data) if k.startswith(prefix)], self.revision

    def keys(self, prefix):
        return [k for k in sorted(self.data) if k.startswith(prefix)]

    def put(self, key, value, lease=0):
        self._apply(records.put(key, value))

    def delete(self, key):
        self.data.pop(key, None)

    def _keys(self, request):
        """The keys a request names: one, or a range (range_end: every key from key up to it)."""
        key = _key(request["key"])
        if "range_end" not in request:
            return [key]
        end = _key(request["range_end"])
        return [k for k in self.data if key <= k < end]

    def _holds(self, compare):
        wanted = int(compare.get("create_revision", compare.get("mod_revision", 0)))
        if "range_end" in compare:  # etcd: every key of the range (none: compared as a key that is not there)
            keys = self._keys(compare) or [None]
        else:
            keys = [_key(compare["key"])]
        for key in keys:
            _, create, mod = self.data.get(key, (None, 0, 0))
            found = create if compare["target"] == "CREATE" else mod
            if not (found < wanted if compare.get("result") == "LESS" else found == wanted):
                return False
        return True

    def _apply(self, op):
        self.revision += 1
        if "request_put" in op:
            key, value = _key(op["request_put"]["key"]), _key(op["request_put"]["value"])
            create = self.data[key][1] if key in self.data else self.revision
            self.data[key] = (value, create, self.revision)
            return {}
        if "request_delete_range" in op:
            for key in self._keys(op["request_delete_range"]):
                self.data.pop(key, None)
            return {}
        key = _key(op["request_range"]["key"])
        return {"response_range": {"kvs": [vars_of(self._kv(key))] if key in self.data else []}}

    def txn(self, compare, success, failure=()):
        ok = all(self._holds(c) for c in compare)
        return ok, [self._apply(op) for op in (success if ok else failure)]


def vars_of(kv: KV) -> dict:
    return {"key": base64.b64encode(kv.key.encode()).decode(), "value": base64.b64encode(kv.value.encode()).decode(),
            "create_revision": kv.create_revision, "mod_revision": kv.mod_revision}


def net(subnet="10.60.0.0/29", vni=4096, **options) -> Network:
    gateway = subnet.rsplit(".", 1)[0] + ".1"
    return Network(name="ov0", driver="overlay", subnets=[Subnet(subnet, gateway)], mtu=1450,
                   options={"vni": vni, "store": "etcd://127.0.0.1:2379", "host": "h1", "vtep": "10.0.0.1", **options})


def ep(sandbox: str, mac: str = "02:00:00:00:00:01") -> Endpoint:
    return Endpoint(sandbox=sandbox, network="ov0", ifname="eth0", host_ifname="", mac=mac, addresses=[])


def test_reserve_hands_out_round_robin_across_hosts_and_never_twice():
    db = MemoryStore()
    got = [records.reserve(db, net(), ep(f"s{i}"), set(), f"h{i % 3}", "10.0.0.1")[0] for i in range(5)]
    assert got == ["10.60.0.2/29", "10.60.0.3/29", "10.60.0.4/29", "10.60.0.5/29", "10.60.0.6/29"]
    with pytest.raises(Conflict, match="no free address"):
        records.reserve(db, net(), ep("full"), set(), "h1", "10.0.0.1")
    records.release(db, "ov0", ["10.60.0.3/29"], "h1")  # h1 holds .3: released
    records.release(db, "ov0", ["10.60.0.4/29"], "h1")  # h2's: not h1's to release
    assert records.reserve(db, net(), ep("again"), set(), "h1", "10.0.0.1") == ["10.60.0.3/29"]
    record = json.loads(db.get("/cnet/addrs/ov0/10.60.0.3").value)
    assert record == {"host": "h1", "sandbox": "again", "mac": "02:00:00:00:00:01", "vtep": "10.0.0.1"}


def test_a_pinned_address_is_checked_against_every_host():
    db = MemoryStore()
    records.reserve(db, net(), ep("a"), {"10.60.0.5"}, "h2", "10.0.0.2")
    with pytest.raises(Conflict, match="10.60.0.5 is already in use on network ov0 \\(sandbox a on host h2\\)"):
        records.reserve(db, net(), ep("b"), {"10.60.0.5"}, "h1", "10.0.0.1")
    with pytest.raises(InvalidInput, match="gateway"):
        records.reserve(db, net(), ep("b"), {"10.60.0.1"}, "h1", "10.0.0.1")


def test_reserve_retries_when_another_host_moves_the_cursor_first():
    db = MemoryStore()
    real_txn, raced = db.txn, []

    def txn(compare, success, failure=()):
        if not raced:  # another host's attach lands between our read and our write
            raced.append(None)
            db.txn = real_txn
            raced[0] = records.reserve(db, net(), ep("other"), set(), "h2", "10.0.0.2")
            db.txn = txn
        return real_txn(compare, success, failure)

    db.txn = txn
    mine = records.reserve(db, net(), ep("mine"), set(), "h1", "10.0.0.1")
    assert raced == [["10.60.0.2/29"]] and mine == ["10.60.0.3/29"]


def test_define_records_once_and_refuses_a_taken_vni():
    db = MemoryStore()
    assert records.define(db, net()) is True
    assert records.define(db, net()) is False  # the same definition: joined
    with pytest.raises(Conflict, match="other settings"):
        records.define(db, net(subnet="10.61.0.0/29"))
    other = Network(name="ov1", driver="overlay", subnets=net().subnets, mtu=1450, options=net().options)
    with pytest.raises(Conflict, match="VNI 4096 is used by overlay ov0"):
        records.define(db, other)
    assert records.free_vni(db) == 4097
    records.undefine(db, net())
    assert db.get("/cnet/networks/ov0") is None and records.free_vni(db) == 4096


def test_forget_releases_only_that_hosts_records():
    db = MemoryStore()
    for i, host in enumerate(["h1", "h9", "h9"]):
        records.reserve(db, net(), ep(f"s{i}"), set(), host, "10.0.0.9")
    records.register_host(db, "h9", "10.0.0.9")
    assert records.forget(db, "h9") == ["ov0 10.60.0.3", "ov0 10.60.0.4"]
    assert [ip for ip, _ in records.records(db, "ov0")] == ["10.60.0.2"]
    assert db.get("/cnet/hosts/h9") is None


class NoKernel:
    netlink = None  # _advertise, the only user, is replaced


class Config:
    store, advertise, host = "etcd://127.0.0.1:2379", "10.0.0.1", "h1"


def test_join_takes_the_stores_definition_and_refuses_other_settings(monkeypatch):
    db = MemoryStore()
    monkeypatch.setattr(records, "store", lambda url: db)
    monkeypatch.setattr(overlay, "_advertise", lambda advertise, db, nl: ("10.0.0.1", 9000))
    request = dict(driver="overlay", subnets=(), gateways=(), ip_range=None, mtu=None, internal=False,
                   masquerade=True, options={})
    first = overlay.join("ov0", request, Config, kernel=NoKernel)
    assert first["mtu"] == 8950 and first["options"]["vni"] == 4096  # the underlay's MTU less 50
    records.define(db, net(subnet="10.60.0.0/24"))
    joined = overlay.join("ov0", request, Config, kernel=NoKernel)
    assert joined["subnets"] == ["10.60.0.0/24"] and joined["mtu"] == 1450
    assert joined["options"] == {"store": Config.store, "host": "h1", "vtep": "10.0.0.1", "vni": 4096}
    same = overlay.join("ov0", {**request, "subnets": ("10.60.0.0/24",), "mtu": 1450}, Config, kernel=NoKernel)
    assert same["subnets"] == ["10.60.0.0/24"]
    with pytest.raises(Conflict, match="subnet 10.61.0.0/24, the store's 10.60.0.0/24; VNI 7, the store's 4096"):
        overlay.join("ov0", {**request, "subnets": ("10.61.0.0/24",), "options": {"vni": 7}}, Config, kernel=NoKernel)


@pytest.mark.parametrize("options, message", [
    ({"vni": 0}, "VNI 0 is out of range"), ({"vni": 2**24}, "out of range"), ({"vni": True}, "out of range"),
    ({"icc": False}, "no option icc"), ({"store": ""}, "needs its store option"),
])
def test_validate_refuses_bad_options(options, message):
    with pytest.raises(InvalidInput, match=message):
        overlay.validate(net(**options))


def test_the_last_member_to_leave_retires_the_network_and_an_undo_puts_it_back():
    db = MemoryStore()
    n = net()
    assert records.define(db, n)
    for host in ("h1", "h2"):
        records.join(db, "ov0", host)
    records.reserve(db, n, ep("a"), set(), "h2", "10.0.0.2")
    assert records.leave(db, n, "h1") == [("/cnet/members/ov0/h1", "{}")]
    assert records.read_network(db, "ov0") is not None  # h2 still has it
    before = dict(db.data)
    deleted = records.leave(db, n, "h2")  # the last member; its own address goes with the network
    assert records.read_network(db, "ov0") is None
    assert [k for k in db.data if "ov0" in k or "/vnis/" in k] == []
    assert set(before) - set(db.data) == {k for k, _ in deleted}
    records.put_back(db, deleted)
    assert {k: v[0] for k, v in db.data.items()} == {k: v[0] for k, v in before.items()}


def test_a_host_holding_an_address_keeps_the_network_though_not_a_member():
    db = MemoryStore()
    n = net()
    records.define(db, n)
    records.join(db, "ov0", "h1")
    records.reserve(db, n, ep("a"), set(), "h3", "10.0.0.3")  # h3 (gone? `overlay forget` says) holds one
    records.leave(db, n, "h1")
    assert records.read_network(db, "ov0") is not None
    assert records.forget(db, "h3") == ["ov0 10.60.0.2"]


def test_leave_retries_when_another_host_joins_meanwhile():
    db = MemoryStore()
    n = net()
    records.define(db, n)
    records.join(db, "ov0", "h1")
    real_txn = db.txn

    def join_first(compare, success, failure=()):
        db.txn = real_txn
        records.join(db, "ov0", "h2")  # between h1's reads and its transaction
        return real_txn(compare, success, failure)

    db.txn = join_first
    records.leave(db, n, "h1")
    assert records.read_network(db, "ov0") is not None
    assert [kv.key for kv in db.get_prefix("/cnet/members/ov0/")[0]] == ["/cnet/members/ov0/h2"]


def test_member_vteps_are_the_records_then_the_members_registrations():
    db = MemoryStore()
    records.define(db, net())
    records.join(db, "ov0", "h1")
    records.register_host(db, "h1", "fd00::1")
    records.join(db, "ov0", "h2")  # a member without an address record, nor a registration yet
    records.reserve(db, net(), ep("a"), set(), "h3", "10.0.0.3")  # a host with an address, not a member
    assert records.member_vteps(db, "ov0") == {"h1": "fd00::1", "h3": "10.0.0.3"}
    records.register_host(db, "h3", "fd00::3")  # its record's VTEP is what other hosts install
    records.register_host(db, "h2", "10.0.0.2")
    assert records.member_vteps(db, "ov0") == {"h1": "fd00::1", "h2": "10.0.0.2", "h3": "10.0.0.3"}
