"""cnet's etcd client (src/cnet/store/etcd.py) against the three-member
cluster of tests/overlay_cluster.py: keys, prefixes and their revision,
compare-and-swap transactions, leases, watches; one member down (listed
first), all down, quorum lost, and back.

The client runs where cnet does, in a test host (h1, on the underlay): each
test runs a short script there with this interpreter and the repository's
cnet (PYTHONPATH is passed on) and reads what it printed, one JSON document.
etcdctl on h1 gives the store's own view where the client's could be wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from overlay_cluster import MEMBERS, STORE_URL, address

# What every script starts with: db, a client of the store given as argv[1],
# and out(value), which prints the script's answer.
PRELUDE = """
import json, sys, threading
from cnet.store import StoreUnreachable, open_store
from cnet.store.etcd import absent, delete, get, put, unchanged
db = open_store(sys.argv[1])
def out(value):
    print(json.dumps(value))
"""


def client(cluster, script: str, url: str = STORE_URL, timeout: float = 60):
    """Run script on h1 with db a client of url; what it passed to out()."""
    result = cluster.host(1).run([sys.executable, "-c", PRELUDE + textwrap.dedent(script), url], timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def etcdctl_get(cluster, key: str) -> str | None:
    result = cluster.etcdctl("get", key, "--print-value-only")
    assert result.returncode == 0, result.stderr
    return result.stdout[:-1] if result.stdout else None


def url_of(members) -> str:
    return "etcd://" + ",".join(f"{address(n)}:2379" for n in members)


@pytest.fixture
def all_members_up(cluster):
    """Every member running and healthy at the end of the test, whatever it killed."""
    yield
    for n in MEMBERS:
        if cluster.members[n].poll() is not None:
            cluster.start_member(n)
    cluster.wait_healthy()


# -- keys -------------------------------------------------------------------------------------

def test_put_get_delete(cluster):
    got = client(cluster, """
        db.put("/t/kv/text", "plain text")
        db.put("/t/kv/record", {"b": 2, "a": [1, "x"]})
        text, record = db.get("/t/kv/text"), db.get("/t/kv/record")
        db.delete("/t/kv/text")
        out({"text": text.value, "record": record.json(), "mod": record.mod_revision,
             "created": record.create_revision, "missing": db.get("/t/kv/never"),
             "deleted": db.get("/t/kv/text")})
    """)
    assert got["text"] == "plain text" and got["record"] == {"a": [1, "x"], "b": 2}
    assert got["mod"] == got["created"] > 0
    assert got["missing"] is None and got["deleted"] is None
    assert json.loads(etcdctl_get(cluster, "/t/kv/record")) == {"a": [1, "x"], "b": 2}
    assert etcdctl_get(cluster, "/t/kv/text") is None


def test_get_prefix_has_exactly_the_prefix_and_its_revision(cluster):
    got = client(cluster, """
        for key in ("/t/pre/a", "/t/pre/b/deeper", "/t/pre/c", "/t/pre0", "/t/prd/x", "/t/pre"):
            db.put(key, key)
        kvs, revision = db.get_prefix("/t/pre/")
        db.put("/t/pre/d", "later")
        _, later = db.get_prefix("/t/pre/")
        out({"keys": [kv.key for kv in kvs], "values": [kv.value for kv in kvs],
             "newest": max(kv.mod_revision for kv in kvs), "revision": revision, "later": later,
             "keys_only": db.keys("/t/pre/")})
    """)
    assert got["keys"] == ["/t/pre/a", "/t/pre/b/deeper", "/t/pre/c"]
    assert got["keys_only"] == [*got["keys"], "/t/pre/d"]
    assert got["values"] == got["keys"]
    # The revision read at: the last put made it (only this test writes now).
    assert got["revision"] == got["newest"] + 3  # "/t/pre0", "/t/prd/x", "/t/pre" came after "/t/pre/c"
    assert got["later"] == got["revision"] + 1


# -- transactions ---------------------------------------------------------------------------------

def test_absent_creates_once(cluster):
    got = client(cluster, """
        first = db.txn([absent("/t/once")], [put("/t/once", "first")])
        second = db.txn([absent("/t/once")], [put("/t/once", "second")], [get("/t/once")])
        out({"first": first[0], "second": second[0], "responses": second[1]})
    """)
    assert got["first"] is True and got["second"] is False
    # The failure branch ran: its range answer holds the value the first wrote.
    (response,) = got["responses"]
    assert [kv["key"] for kv in response["response_range"]["kvs"]] == ["L3Qvb25jZQ=="]  # base64 of /t/once
    assert etcdctl_get(cluster, "/t/once") == "first"


def test_of_two_competing_swaps_the_second_fails(cluster):
    got = client(cluster, """
        db.put("/t/cursor", "0")
        other = open_store(sys.argv[1])  # a second client, as on another host
        seen = db.get("/t/cursor").mod_revision
        assert other.get("/t/cursor").mod_revision == seen
        mine = db.txn([unchanged("/t/cursor", seen)], [put("/t/cursor", "mine")])[0]
        theirs = other.txn([unchanged("/t/cursor", seen)], [put("/t/cursor", "theirs")])[0]
        # unchanged(key, 0) holds for a key that does not exist, like absent().
        fresh = db.txn([unchanged("/t/fresh", 0)], [put("/t/fresh", "1"), delete("/t/cursor-old")])[0]
        out({"mine": mine, "theirs": theirs, "fresh": fresh})
    """)
    assert got == {"mine": True, "theirs": False, "fresh": True}
    assert etcdctl_get(cluster, "/t/cursor") == "mine"


# -- leases ---------------------------------------------------------------------------------------

def test_lease_grant_keepalive_revoke(cluster):
    got = client(cluster, """
        lease = db.grant(60)
        db.put("/t/alive/h1", {"since": "now"}, lease=lease)
        held = db.get("/t/alive/h1").lease
        refreshed = db.keepalive(lease)
        db.revoke(lease)
        out({"lease": lease, "held": held, "refreshed": refreshed,
             "after_revoke": db.get("/t/alive/h1"), "refreshed_after": db.keepalive(lease)})
    """)
    assert got["lease"] > 0 and got["held"] == got["lease"]
    assert got["refreshed"] is True
    assert got["after_revoke"] is None and got["refreshed_after"] is False
    assert etcdctl_get(cluster, "/t/alive/h1") is None


def test_lease_runs_out_without_keepalive(cluster):
    got = client(cluster, """
        import time
        lease = db.grant(2)
        db.put("/t/alive/gone", "x", lease=lease)
        time.sleep(5)  # etcd may keep an expired lease up to about a second
        out({"key": db.get("/t/alive/gone"), "refreshed": db.keepalive(lease)})
    """)
    assert got == {"key": None, "refreshed": False}


# -- watching --------------------------------------------------------------------------------------

def test_watch_from_a_revision_gives_puts_and_deletes_then_live_changes(cluster):
    got = client(cluster, """
        db.put("/t/w/before", "not seen")
        _, revision = db.get_prefix("/t/w/")
        db.put("/t/w/a", "1")
        db.put("/t/w/b", "2")
        db.delete("/t/w/a")
        db.put("/t/outside", "not watched")
        writer = open_store(sys.argv[1])  # its own connection: the watch's thread is not this one
        events = []
        for kind, kv in db.watch("/t/w/", revision + 1):
            events.append([kind, kv.key, kv.value])
            if len(events) == 3:  # the past is told: now a change while watching
                threading.Timer(0.3, writer.put, ("/t/w/live", "3")).start()
            if len(events) == 4:
                break
        out(events)
    """)
    assert got == [["PUT", "/t/w/a", "1"], ["PUT", "/t/w/b", "2"], ["DELETE", "/t/w/a", ""],
                   ["PUT", "/t/w/live", "3"]]


# -- faults ------------------------------------------------------------------------------------------

# Every call of the client, as run under faults: each with a client of its
# own (so the first member listed is the first tried), on keys under KEY.
CALLS = {
    "put": "db.put(KEY, 'v')",
    "get": "db.get(KEY)",
    "get_prefix": "db.get_prefix(KEY + '/')",
    "keys": "db.keys(KEY + '/')",
    "txn": "db.txn([absent(KEY + '/cas')], [put(KEY + '/cas', 'v')])",
    "grant": "db.grant(30)",
    "keepalive": "db.keepalive(db.grant(30) if GRANTS else 1)",  # 1: none could be granted, ask anyway
    "revoke": "db.revoke(db.grant(30) if GRANTS else 1)",
    "delete": "db.delete(KEY + '/gone')",
    "watch": "next(iter(db.watch(KEY, 1)))",  # from the first revision: the put's event at once
}
EACH_CALL = """
    results = {}
    for name, call in CALLS.items():
        db = Etcd(parse_url(sys.argv[1]), timeout=TIMEOUT)
        try:
            eval(call)
            results[name] = "ok"
        except StoreUnreachable as e:
            results[name] = str(e)
    out(results)
"""


def each_call(cluster, key: str, url: str = STORE_URL, calls=tuple(CALLS), grants: bool = True,
              timeout: float | None = None) -> dict[str, str]:
    """What each call said ("ok", or the StoreUnreachable's message); timeout: the client's (default TIMEOUT)."""
    setup = (f"from cnet.store import parse_url\nfrom cnet.store.etcd import Etcd, TIMEOUT\n"
             f"KEY, GRANTS = {key!r}, {grants}\nCALLS = {dict((c, CALLS[c]) for c in calls)!r}\n"
             f"TIMEOUT = {timeout or 'TIMEOUT'}\n")
    return client(cluster, setup + textwrap.dedent(EACH_CALL), url=url, timeout=120)


def all_unreachable(results: dict[str, str]) -> None:
    for call, said in results.items():
        assert said.startswith("store unreachable"), f"{call}: {said}"
        assert "\n" not in said


def test_one_follower_down_listed_first_everything_works(cluster, all_members_up):
    follower = next(n for n in MEMBERS if n != cluster.leader())  # the leader's loss stalls writes a while
    cluster.kill_member(follower)
    first_the_dead = url_of([follower, *(n for n in MEMBERS if n != follower)])
    assert each_call(cluster, "/t/one-down", url=first_the_dead) == dict.fromkeys(CALLS, "ok")
    assert etcdctl_get(cluster, "/t/one-down/cas") == "v"


def test_all_members_down_every_call_is_store_unreachable_then_back(cluster, all_members_up):
    cluster.stop_all()
    results = each_call(cluster, "/t/all-down", grants=False)
    assert results.keys() == CALLS.keys()
    all_unreachable(results)
    cluster.start_all()
    assert each_call(cluster, "/t/all-down") == dict.fromkeys(CALLS, "ok")


def test_quorum_lost_calls_are_store_unreachable(cluster, all_members_up):
    """One member of three up, listed first: it takes the connection but
    cannot answer. A request waits out the client's TIMEOUT; a client that
    waits longer gets etcd's own refusals ("request timed out", "context
    deadline exceeded", "no leader"), which say the same. A watch is left
    out: it waits for events, there is no answer to time out. The writes may
    commit once the others are back: their keys go unchecked."""
    survivor = cluster.leader()
    for n in MEMBERS:
        if n != survivor:
            cluster.kill_member(n)
    survivor_first = url_of([survivor, *(n for n in MEMBERS if n != survivor)])
    all_unreachable(each_call(cluster, "/t/no-quorum", url=survivor_first, calls=("put", "get")))
    refusals = each_call(cluster, "/t/no-quorum", url=survivor_first, calls=("put", "get", "grant", "keepalive"),
                         grants=False, timeout=15)
    all_unreachable(refusals)
    assert all(f"{address(survivor)}:2379: etcdserver" in said or "deadline exceeded" in said
               for said in refusals.values()), refusals


def test_a_long_lived_client_of_one_member_goes_on_after_it_restarts(cluster, all_members_up):
    """As the agent holds its client: the connection it kept is closed by the
    member's restart, which is no reason to call the store unreachable."""
    member = next(n for n in MEMBERS if n != cluster.leader())
    script = PRELUDE + textwrap.dedent("""
        for line in sys.stdin:  # one get per line read
            try:
                db.get("/t/long-lived")
                out("ok")
            except StoreUnreachable as e:
                out(str(e))
            sys.stdout.flush()
    """)
    proc = cluster.host(1).popen([sys.executable, "-c", script, url_of([member])],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def get() -> str:
        proc.stdin.write("get\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    try:
        assert get() == "ok"
        cluster.kill_member(member)  # no call while it is down: the client has not noticed
        cluster.start_member(member)
        cluster.wait_healthy()
        assert get() == "ok"
        cluster.kill_member(member)
        assert get().startswith("store unreachable")
        cluster.start_member(member)
        cluster.wait_healthy()
        assert get() == "ok"
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
