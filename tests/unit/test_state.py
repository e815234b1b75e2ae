"""Tests for cnet.state: the state file's format, its errors, and its safety.

The file is YAML written in JSON-compatible flow style, with a `version:` key;
hand-written block YAML is read too. A file that cannot be read is an error
(StateFileError, exit 1) naming the file, and is never overwritten. Saves are
atomic (temp file + rename) and operations (read-modify-write) serialize on a
sibling lock file, also across processes.
"""

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from cnet.errors import StateFileError
from cnet.model import Endpoint, Network, PortMapping, Sandbox, State, Subnet, replace
from cnet.state import DEFAULT_STATE_PATH, VERSION, StateStore, decode, encode, state_path


def full_state() -> State:
    """A state with one of everything (and two networks, one dual-stack)."""
    return State(
        networks={
            "mybr0": Network(
                name="mybr0", driver="bridge",
                subnets=[Subnet("172.26.0.0/16", "172.26.0.1", "172.26.5.0/24", "172.26.5.7"),
                         Subnet("fd00:26::/64", "fd00:26::1")],
                mtu=1500, options={"counter": 0, "note": "é"}, created="2024-05-01T10:00:00+00:00"),
            "quiet": Network(
                name="quiet", driver="bridge", subnets=[Subnet("10.9.0.0/24", "10.9.0.254")],
                mtu=9000, internal=True, masquerade=False, created="2024-05-02T10:00:00+00:00"),
        },
        sandboxes={
            "web": Sandbox(name="web", dns=["1.1.1.1"], hosts=["db:10.9.0.3"], created="2024-05-03T00:00:00+00:00"),
            "side": Sandbox(name="side", mode="joined", target="web"),
        },
        endpoints=[
            Endpoint("web", "mybr0", "eth0", "veth1a2b3c", "02:42:ac:1a:00:02",
                     ["172.26.5.7/16", "fd00:26::2/64"]),
            Endpoint("web", "quiet", "eth1", "veth4d5e6f", "02:42:0a:09:00:02", ["10.9.0.2/24"]),
        ],
        ports=[
            PortMapping("web", "mybr0", "tcp", "0.0.0.0", 8080, 80),
            PortMapping("web", "mybr0", "udp", "127.0.0.1", 5000, 5000, count=10),
        ],
    )


def counter_state(n: int = 0) -> State:
    return State(networks={"c": Network("c", "bridge", [Subnet("10.1.0.0/24", "10.1.0.1")], 1500,
                                        options={"counter": n})})


def bump(state: State) -> None:
    """Count one more in counter_state's network, replacing it (objects of a state are never changed)."""
    net = state.networks["c"]
    state.networks["c"] = replace(net, options={"counter": net.options["counter"] + 1})


@contextlib.contextmanager
def operation(path: str):
    """What a changing operation does with the state file (core/base.py,
    CnetBase._change): lock, load, let the block change the state, save it;
    nothing is saved if the block raises. Opens no kernel handle unless the
    block asks for one, so it needs no root."""
    from cnet.core.base import CnetBase

    with CnetBase(state=path)._change() as change:
        yield change.state


@pytest.fixture(autouse=True)
def no_state_env(monkeypatch):
    monkeypatch.delenv("CNET_STATE", raising=False)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "state.yaml")


def read_bytes(p):
    with open(p, "rb") as f:
        return f.read()


# --- format -------------------------------------------------------------------

def test_encode_decode_round_trip():
    state = full_state()
    assert decode(encode(state), "x") == state


def test_save_load_round_trip(path):
    StateStore(path).save(full_state())
    assert StateStore(path).load() == full_state()


def test_written_file_is_yaml_equal_to_its_json_reading(path):
    StateStore(path).save(full_state())
    text = read_bytes(path).decode()
    assert yaml.safe_load(text) == json.loads(text)
    doc = json.loads(text)
    assert len(doc.pop("serial")) == 16  # a new one at each save: see the in-memory tests
    assert doc == {"version": VERSION, **full_state().to_dict()}


def test_written_file_starts_with_the_version(path):
    StateStore(path).save(full_state())
    text = read_bytes(path).decode()
    assert list(json.loads(text))[0] == "version"
    first_key_line = text.lstrip("{").lstrip().splitlines()[0]
    assert first_key_line == f'"version": {VERSION},'
    assert text.endswith("\n")


# Text of the BMP (no surrogates or controls); in free-text fields, which the
# state file may hold whatever they say (names are checked: statecheck.py).
bmp_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFFFF,
                                  blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
                                  blacklist_characters="/:"),
                    min_size=1, max_size=5)


@settings(max_examples=100, deadline=None)
@given(name=bmp_names, note=st.text(st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs",))))
def test_yaml_and_json_readings_agree_for_bmp_text(name, note):
    state = State(networks={"br0": Network("br0", "bridge", [Subnet("10.0.0.0/24", "10.0.0.1")], 1500,
                                           options={"note": note}, created=name)})
    text = encode(state)
    assert yaml.safe_load(text) == json.loads(text)
    assert decode(text, "x") == state


def test_yaml_and_json_readings_agree_for_astral_characters():
    note = "br\U0001F600"
    state = State(networks={"br0": Network("br0", "bridge", [Subnet("10.0.0.0/24", "10.0.0.1")], 1500,
                                           options={"note": note})})
    text = encode(state)
    assert yaml.safe_load(text) == json.loads(text)


def test_hand_written_block_yaml_is_read(path):
    with open(path, "w") as f:
        f.write(textwrap.dedent("""\
            # edited by hand
            version: 1
            networks:
              mybr0:
                name: mybr0
                driver: bridge
                subnets:
                  - subnet: 172.26.0.0/16
                    gateway: 172.26.0.1
                mtu: 1500
                options:
                  counter: 3
            sandboxes:
              web:
                name: web
                dns: [1.1.1.1]
            endpoints:
              - sandbox: web
                network: mybr0
                ifname: eth0
                host_ifname: veth0
                mac: "02:42:ac:1a:00:02"
                addresses: [172.26.0.2/16]
            ports: []
            """))
    state = StateStore(path).load()
    net = state.networks["mybr0"]
    assert net.subnets == [Subnet("172.26.0.0/16", "172.26.0.1")]
    assert net.mtu == 1500 and net.internal is False and net.masquerade is True
    assert net.options == {"counter": 3}
    assert state.sandboxes["web"] == Sandbox("web", dns=["1.1.1.1"])
    assert state.endpoints == [Endpoint("web", "mybr0", "eth0", "veth0", "02:42:ac:1a:00:02", ["172.26.0.2/16"])]
    assert state.ports == []


def test_block_yaml_is_written_back_in_flow_style(path):
    with open(path, "w") as f:
        f.write("version: 1\nnetworks: {}\n")
    with operation(path) as state:
        state.sandboxes["web"] = Sandbox("web")
    text = read_bytes(path).decode()
    assert json.loads(text)["sandboxes"] == {"web": Sandbox("web").to_dict()}


def test_missing_file_is_an_empty_state(path):
    assert StateStore(path).load() == State()
    assert not os.path.exists(path)


@pytest.mark.parametrize("text", ["", "\n", "  \n\t\n"])
def test_an_empty_file_is_an_error_not_an_empty_state(path, text):
    """A truncated file read as empty would make the next change drop every record."""
    with open(path, "w") as f:
        f.write(text)
    with pytest.raises(StateFileError, match="is empty"):
        StateStore(path).load()


def test_version_only_is_an_empty_state():
    assert decode('{"version": 1}', "x") == State()
    assert decode("version: 1\n", "x") == State()


# --- errors ------------------------------------------------------------------

UNPARSEABLE = ["a: [1\n", "{{{", "\t: :\n", "version: 1\nnetworks: {a: \n  - ]\n"]


@pytest.mark.parametrize("text", UNPARSEABLE)
def test_unparseable_file_is_a_one_line_error_naming_the_file(path, text):
    with open(path, "w") as f:
        f.write(text)
    with pytest.raises(StateFileError) as info:
        StateStore(path).load()
    message = str(info.value)
    assert info.value.exit_code == 1
    assert message.startswith(f"state file {path} cannot be parsed")
    assert "\n" not in message


@pytest.mark.parametrize("text", UNPARSEABLE)
def test_an_operation_leaves_an_unparseable_file_unchanged(path, text):
    with open(path, "w") as f:
        f.write(text)
    before = read_bytes(path)
    with pytest.raises(StateFileError):
        with operation(path):
            pytest.fail("the block must not run on an unreadable file")
    assert read_bytes(path) == before


def test_file_that_is_not_utf8_is_a_state_file_error(path):
    with open(path, "wb") as f:
        f.write(b'\xff\xfe{"version": 1}')
    with pytest.raises(StateFileError, match="state file .* cannot be"):
        StateStore(path).load()


@pytest.mark.parametrize("text, shown", [
    ('{"version": 99, "networks": {}}', "version 99"),
    ("version: 2\n", "version 2"),
    ('{"networks": {}}', "version None"),
    ('{"version": "1"}', "version '1'"),
])
def test_unknown_or_missing_version_is_an_error_naming_it(path, text, shown):
    with open(path, "w") as f:
        f.write(text)
    before = read_bytes(path)
    with pytest.raises(StateFileError) as info:
        with operation(path):
            pytest.fail("the block must not run on a file of another version")
    message = str(info.value)
    assert path in message and shown in message
    assert f"this cnet reads version {VERSION}" in message
    assert read_bytes(path) == before


@pytest.mark.parametrize("text", ["[]", "null", "42", '"text"', "- a\n- b\n"])
def test_a_document_that_is_not_a_mapping_is_an_error(text):
    with pytest.raises(StateFileError, match=r"^state file /s\.yaml is not a mapping$"):
        decode(text, "/s.yaml")


NET = {"name": "a", "driver": "bridge", "subnets": [{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}],
       "mtu": 1500}

MALFORMED = {
    "network missing mtu": {"networks": {"a": {k: v for k, v in NET.items() if k != "mtu"}}},
    "network missing name": {"networks": {"a": {k: v for k, v in NET.items() if k != "name"}}},
    "unknown network field": {"networks": {"a": {**NET, "colour": "blue"}}},
    "subnet missing gateway": {"networks": {"a": {**NET, "subnets": [{"subnet": "10.0.0.0/24"}]}}},
    "unknown subnet field": {"networks": {"a": {**NET, "subnets": [{**NET["subnets"][0], "vlan": 3}]}}},
    "subnets not a list": {"networks": {"a": {**NET, "subnets": 3}}},
    "network not a mapping": {"networks": {"a": 3}},
    "network a string": {"networks": {"a": "bridge"}},
    "networks a list of entries": {"networks": [NET]},
    "unknown sandbox field": {"sandboxes": {"s": {"name": "s", "colour": "red"}}},
    "endpoint missing mac": {"endpoints": [{"sandbox": "s", "network": "a", "ifname": "eth0",
                                            "host_ifname": "v", "addresses": []}]},
    "port missing port": {"ports": [{"sandbox": "s", "network": "a", "protocol": "tcp",
                                     "host_ip": "0.0.0.0", "host_port": 80}]},
}


@pytest.mark.parametrize("doc", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_content_is_an_error_naming_the_file(path, doc):
    with open(path, "w") as f:
        json.dump({"version": VERSION, **doc}, f)
    before = read_bytes(path)
    with pytest.raises(StateFileError) as info:
        with operation(path):
            pytest.fail("the block must not run on a malformed file")
    assert str(info.value).startswith(f"state file {path}: ")  # and then where in the file
    assert info.value.exit_code == 1
    assert read_bytes(path) == before


# --- operations and saving ---------------------------------------------------------

def test_an_operation_saves_on_success(path):
    StateStore(path).save(counter_state(1))
    with operation(path) as state:
        bump(state)
        state.sandboxes["web"] = Sandbox("web")
    loaded = StateStore(path).load()
    assert loaded.networks["c"].options == {"counter": 2}
    assert list(loaded.sandboxes) == ["web"]


def test_an_operation_on_a_missing_file_creates_it(tmp_path):
    path = str(tmp_path / "sub" / "dir" / "state.yaml")  # the directory is made too
    with operation(path) as state:
        state.networks["c"] = counter_state(7).networks["c"]
    assert StateStore(path).load() == counter_state(7)


def test_an_operation_that_raises_leaves_the_file_byte_identical(path):
    StateStore(path).save(full_state())
    before = read_bytes(path)
    with pytest.raises(RuntimeError, match="boom"):
        with operation(path) as state:
            state.networks.clear()
            state.sandboxes["new"] = Sandbox("new")
            raise RuntimeError("boom")
    assert read_bytes(path) == before


def test_an_operation_on_a_missing_file_that_raises_creates_no_state_file(path):
    with pytest.raises(RuntimeError):
        with operation(path) as state:
            state.sandboxes["new"] = Sandbox("new")
            raise RuntimeError("boom")
    assert not os.path.exists(path)


def test_save_leaves_no_temp_files(tmp_path, path):
    store = StateStore(path)
    for i in range(5):
        store.save(counter_state(i))
    with operation(path) as state:
        bump(state)
    assert sorted(os.listdir(tmp_path)) == ["state.yaml", "state.yaml.lock"]


def test_a_failed_save_leaves_no_temp_file_and_the_old_file(tmp_path, path, monkeypatch):
    store = StateStore(path)
    store.save(counter_state(1))
    before = read_bytes(path)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.save(counter_state(2))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["state.yaml"]
    assert read_bytes(path) == before


def test_a_concurrent_reader_never_sees_a_partial_file(path):
    # Big enough that a non-atomic write would be caught half-way now and then.
    a = full_state()
    b = State(networks={f"n{i}": Network(f"n{i}", "bridge", [Subnet(f"10.{i}.0.0/24", f"10.{i}.0.1")], 1500,
                                         options={"pad": "x" * 200})
                        for i in range(200)})
    store = StateStore(path)
    store.save(a)
    done = threading.Event()
    seen, errors = [], []

    def reader():
        while not done.is_set():
            try:
                seen.append(store.load())
            except Exception as e:  # noqa: BLE001 - any failure is a finding
                errors.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(50):
            store.save(b if i % 2 == 0 else a)
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert seen, "the reader never ran"
    assert all(s == a or s == b for s in seen)


# One process, one store (so its kept state is checked against the other's writes).
WORKER = textwrap.dedent("""\
    import sys
    from cnet.model import replace
    from cnet.core.base import CnetBase

    api = CnetBase(state=sys.argv[1])
    for _ in range(50):
        with api._change() as change:
            net = change.state.networks["c"]
            change.state.networks["c"] = replace(net, options={"counter": net.options["counter"] + 1})
""")


def test_the_lock_serializes_operations_of_two_processes(path):
    StateStore(path).save(counter_state(0))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, path]) for _ in range(2)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    assert StateStore(path).load().networks["c"].options["counter"] == 100


def test_a_held_lock_blocks_another_process(path):
    StateStore(path).save(counter_state(0))
    with StateStore(path).locked():
        worker = subprocess.Popen([sys.executable, "-c", WORKER, path])
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=1)
        assert StateStore(path).load().networks["c"].options["counter"] == 0
    assert worker.wait(timeout=120) == 0
    assert StateStore(path).load().networks["c"].options["counter"] == 50


# --- where the file is ----------------------------------------------------------

def test_state_path_default():
    assert state_path() == DEFAULT_STATE_PATH == "/var/lib/cnet/state.yaml"
    assert state_path(None) == DEFAULT_STATE_PATH


def test_state_path_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNET_STATE", "/tmp/env.yaml")
    assert state_path() == "/tmp/env.yaml"


def test_state_path_explicit_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("CNET_STATE", "/tmp/env.yaml")
    assert state_path("/tmp/explicit.yaml") == "/tmp/explicit.yaml"


def test_state_path_empty_environment_means_the_default(monkeypatch):
    monkeypatch.setenv("CNET_STATE", "")
    assert state_path() == DEFAULT_STATE_PATH


def test_lock_file_is_a_sibling(path):
    assert StateStore(path).lock_path == path + ".lock"


@pytest.mark.parametrize("value", [
    {"a": 1, "b": None, "c": True, "d": [1.5, "x"], "e": {"f": []}},
    {"name": "é\u2028\"\\\n\t", "n": -3},
    ["plain", {"nested": {"deep": ["é"]}}],
])
def test_the_object_encoder_writes_what_json_dumps_writes(value):
    from cnet.state import _dumps

    assert _dumps(value) == json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def test_an_object_that_is_not_json_is_a_type_error():
    from cnet.state import _dumps

    with pytest.raises(TypeError):
        _dumps({"a": object()})


def one_call_each(objects):
    return [json.dumps(o.to_dict(), ensure_ascii=False, separators=(", ", ": ")) for o in objects]


@pytest.mark.parametrize("hosts", [
    ["db:10.0.0.3"],
    ["a}, {b:10.0.0.3"],  # the text between two objects, inside a string: cut into one call each
    ["}, {", "{}, {}"],
    ['q"}, {"name": "x:10.0.0.3', "\\}, {\n\u2028é"],
    [],
])
def test_the_lines_of_flat_objects_are_what_one_call_each_writes(hosts):
    from cnet.state import _members

    objects = [Sandbox("a", hosts=hosts), Endpoint("a", "br0", "eth0", "cn1", "m", ["10.0.0.2/24"]),
               Sandbox("b", dns=["1.1.1.1"], hosts=hosts), PortMapping("a", "br0", "tcp", "0.0.0.0", 80, 80)]
    assert ["{" + m + "}" for m in _members(objects)] == one_call_each(objects)
    assert _members([]) == []


flat_text = st.text(st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(flat_text, st.lists(flat_text, max_size=3)), min_size=1, max_size=6))
def test_any_text_in_flat_objects_is_written_as_one_call_each_would(fields):
    from cnet.state import _members

    objects = [Sandbox(name, hosts=hosts, hostname=name or None) for name, hosts in fields]
    assert ["{" + m + "}" for m in _members(objects)] == one_call_each(objects)
    # in a file, the text goes where any text may be (names and entries are checked on reading)
    state = State(sandboxes={f"s{i}": Sandbox(f"s{i}", created=name + "".join(hosts)) for i, (name, hosts) in
                             enumerate(fields)})
    assert decode(encode(state), "x") == state


# --- the state a store keeps in memory after its own save ---------------------------------

def test_a_store_reads_back_what_it_saved_without_sharing_containers(path):
    store = StateStore(path)
    store.save(full_state())
    first = store.load()
    assert first == full_state()
    first.sandboxes.clear()
    first.endpoints.clear()
    name, net = next(iter(first.networks.items()))  # what an attach records
    first.networks[name] = replace(net, subnets=[replace(net.subnets[0], last="10.89.0.250")])
    first.host["changed"] = True
    assert store.load() == full_state()  # a failed operation's changes do not leak into the next


def test_another_writer_is_seen_at_the_next_load(path):
    mine, other = StateStore(path), StateStore(path)
    mine.save(full_state())
    changed = other.load()
    changed.ports = []
    other.save(changed)
    assert mine.load().ports == []


def test_a_file_changed_by_hand_is_read_again(path):
    store = StateStore(path)
    store.save(full_state())
    store.load()
    text = read_bytes(path).decode().replace('"mtu": 1500', '"mtu": 1400')
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    assert 1400 in {n.mtu for n in store.load().networks.values()}


def test_saving_again_reuses_the_lines_of_unchanged_objects_only():
    state, memo = full_state(), {}
    encode(state, "0" * 16, memo)
    assert {id(o) for o, _ in memo.values()} == {id(o) for o in [*state.sandboxes.values(), *state.endpoints,
                                                                    *state.ports]}
    state.ports = [replace(p, host_port=9999) for p in state.ports]  # replaced
    text = encode(state, "1" * 16, memo)
    assert json.loads(text)["ports"][0]["host_port"] == 9999
    assert len(memo) == len(state.sandboxes) + len(state.endpoints) + len(state.ports)  # no old objects kept


def test_a_del_character_is_escaped_so_yaml_reads_the_file_back():
    import yaml

    state = State(sandboxes={"a": Sandbox("a", hosts=["odd\x7fname:10.0.0.3"])})
    text = encode(state)
    assert "\x7f" not in text and "\\u007f" in text
    assert yaml.safe_load(text)["sandboxes"]["a"]["hosts"] == ["odd\x7fname:10.0.0.3"]
    assert decode(text, "f").sandboxes["a"].hosts == ("odd\x7fname:10.0.0.3",)


# --- the lock's bound, and the temporary files of saves ---------------------------

def test_a_held_lock_is_waited_for_a_bounded_time_naming_its_holder(path, monkeypatch):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r} + "/../src")
            from cnet.state import StateStore
            with StateStore({path!r}).locked():
                print("holding", flush=True)
                time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        monkeypatch.setenv("CNET_LOCK_TIMEOUT", "0.3")
        with pytest.raises(StateFileError) as info:
            with StateStore(path).locked():
                pytest.fail("the lock was taken while another process held it")
        message = str(info.value)
        assert f"is locked by process {holder.pid} (" in message and "for 0.3 s" in message, message
    finally:
        holder.kill()
        holder.wait()
    with StateStore(path).locked():  # free again once its holder is gone
        pass


def test_a_bad_lock_timeout_is_an_error(path, monkeypatch):
    monkeypatch.setenv("CNET_LOCK_TIMEOUT", "soon")
    with open(path + ".lock", "w"):
        pass
    with contextlib.ExitStack() as stack:
        import fcntl

        fd = os.open(path + ".lock", os.O_RDWR)
        stack.callback(os.close, fd)
        other = os.open(path + ".lock", os.O_RDWR)
        stack.callback(os.close, other)
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(StateFileError, match="CNET_LOCK_TIMEOUT='soon'"):
            with StateStore(path).locked():
                pass


def test_temporary_files_of_saves_name_their_state_file(path):
    from cnet.state import stale_temp_files

    directory = os.path.dirname(path)
    StateStore(path).save(State())
    assert stale_temp_files(path) == []  # a save that ended leaves none
    mine = os.path.join(directory, ".state.yaml.999999.0123456789ab.tmp")
    older = os.path.join(directory, ".state.999999.0123456789ab")
    live = os.path.join(directory, f".state.yaml.{os.getpid()}.0123456789ab.tmp")
    others = [os.path.join(directory, n) for n in (".other.yaml.999999.0123456789ab.tmp", "state.yaml.lock")]
    for p in (mine, older, live, *others):
        open(p, "w").close()
    assert stale_temp_files(path) == sorted([mine, older, live])  # under the lock: all of them
    assert stale_temp_files(path, locked=False) == sorted([mine, older])  # without: not a live writer's
