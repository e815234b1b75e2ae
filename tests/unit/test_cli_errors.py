"""Tests of the `cnet` command line's contract: exit codes, the one-line
`cnet: error: ...` on stderr, and plain output for scripts.

Commands run in-process through cnet.cli.main with a state file under
tmp_path. Only invocations that fail validation before the kernel are used
(this machine's network must not be touched), and run() makes every way into
the kernel (netlink sockets, subprocesses, namespace syscalls) fail the test,
so a change in the order of checks cannot create a real bridge. The last tests run cnet in a subprocess to show that commands
which only read the state (or fail validation) never load the netlink code.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

import cnet
from cnet.cli import main
from cnet.model import Endpoint, Network, PortMapping, Sandbox, State, Subnet
from cnet.state import StateStore


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No CNET_* from the caller's environment, an empty config file, and no
    links or namespaces (what `ls` reads for its STATUS) but empty directories
    of this test's own."""
    from cnet.kernel import netns, sysfs

    for var in ("CNET_STATE", "CNET_CONFIG", "CNET_FIREWALL"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "config.yaml"
    config.write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(config))
    for name, module, attribute in (("sys-class-net", sysfs, "SYS_CLASS_NET"), ("run-netns", netns, "NETNS_RUN_DIR")):
        (tmp_path / name).mkdir()
        monkeypatch.setattr(module, attribute, str(tmp_path / name))


def reached_the_kernel(*args, **kwargs):
    # pytest.fail raises a BaseException, which cnet.cli.main does not catch.
    pytest.fail("this command reached the kernel; it must fail validation first")


def guard_the_kernel(mp: pytest.MonkeyPatch) -> None:
    """Make every way into the kernel fail the test: netlink sockets,
    subprocesses (nft, iptables) and the libc calls that make namespaces."""
    real_init = socket.socket.__init__

    def socket_init(self, family=-1, *args, **kwargs):
        if family == getattr(socket, "AF_NETLINK", 16):
            reached_the_kernel()
        real_init(self, family, *args, **kwargs)

    mp.setattr(socket.socket, "__init__", socket_init)
    mp.setattr(subprocess.Popen, "__init__", reached_the_kernel)
    mp.setattr(os, "system", reached_the_kernel)
    try:
        from cnet.kernel import netns
    except ImportError:
        return
    mp.setattr(netns, "_libc", SimpleNamespace(**{f: reached_the_kernel for f in (
        "mount", "umount2", "unshare", "setns")}), raising=False)


@pytest.fixture
def state_file(tmp_path):
    return tmp_path / "state.yaml"


def run(capsys, *argv):
    """Run cnet in-process, kept away from the kernel; return (exit code, stdout, stderr)."""
    with pytest.MonkeyPatch.context() as mp, pytest.raises(SystemExit) as info:
        guard_the_kernel(mp)
        main(list(argv))
    out, err = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else code), out, err


def one_error_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, f"not exactly one line: {err!r}"
    assert err.startswith("cnet: error: "), err
    return err[len("cnet: error: "):-1]


def prepared_state() -> State:
    return State(
        networks={
            "mybr0": Network("mybr0", "bridge", [Subnet("172.26.0.0/16", "172.26.0.1"),
                                                 Subnet("fd00:26::/64", "fd00:26::1")],
                             1500, created="2024-05-01T10:00:00+00:00"),
            "quiet": Network("quiet", "bridge", [Subnet("10.9.0.0/24", "10.9.0.254", "10.9.0.128/25")],
                             9000, internal=True, masquerade=False, created="2024-05-02T10:00:00+00:00"),
            "nonat": Network("nonat", "bridge", [Subnet("10.10.0.0/24", "10.10.0.1")], 1500,
                             masquerade=False, created="2024-05-03T10:00:00+00:00"),
        },
        sandboxes={"web": Sandbox("web"), "side": Sandbox("side", mode="joined", target="web")},
        endpoints=[Endpoint("web", "mybr0", "eth0", "veth0a", "02:42:ac:1a:00:02", ["172.26.0.2/16", "fd00:26::2/64"])],
        ports=[PortMapping("web", "mybr0", "tcp", "0.0.0.0", 8080, 80)],
    )


@pytest.fixture
def prepared(state_file):
    StateStore(str(state_file)).save(prepared_state())
    return state_file


# --- usage errors (exit 2) ---------------------------------------------------------

USAGE = [
    ("unknown command", ["frob"], "No such command 'frob' (see 'cnet --help')"),
    ("unknown global option", ["--zzz", "ls"], "No such option '--zzz' (see 'cnet --help')"),
    ("unknown command option", ["ls", "--bogus"], "No such option '--bogus' (see 'cnet ls --help')"),
    ("unknown create option", ["create", "bridge", "br0", "--colour", "red"], "No such option '--colour'"),
    ("missing argument", ["create", "bridge"], "Missing argument 'NAME' (see 'cnet create bridge --help')"),
    ("missing delete argument", ["delete", "bridge"], "Missing argument 'NAME'"),
    ("missing option value", ["create", "bridge", "br0", "--subnet"], "Option '--subnet' requires an argument"),
    ("mtu not a number", ["create", "bridge", "cnett0", "--subnet", "10.0.0.0/24", "--mtu", "abc"],
     "Invalid value for '--mtu': 'abc' is not a valid integer"),
    ("unknown firewall", ["--firewall", "pf", "ls"],
     "Invalid value for '--firewall': 'pf' is not one of 'nftables', 'iptables'"),
    ("unknown list", ["ls", "bogus"], "'bogus' is not one of 'networks', 'ns', 'endpoints', 'ports', 'routers'"),
    ("unknown delete kind", ["delete", "frob", "x"], "No such command 'frob' (see 'cnet delete --help')"),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in USAGE], ids=[c[0] for c in USAGE])
def test_usage_errors(capsys, tmp_path, state_file, argv, message):
    code, out, err = run(capsys, "--state", str(state_file), *argv)
    assert code == 2
    assert message in one_error_line(err)
    assert out == ""
    assert not state_file.exists()


def test_a_refusal_for_want_of_privilege_says_what_cnet_needs():
    import errno

    from cnet.cli import _privilege_hint
    from cnet.errors import OperationFailed

    def raised(inner: Exception) -> OperationFailed:
        try:
            try:
                raise inner
            except Exception as e:
                raise OperationFailed("cannot create bridge br0: Operation not permitted") from e
        except OperationFailed as outer:
            return outer

    assert "needs root" in _privilege_hint(raised(OSError(errno.EPERM, "Operation not permitted")))
    assert _privilege_hint(raised(OSError(errno.EEXIST, "File exists"))) == ""
    assert _privilege_hint(OperationFailed("no cause")) == ""


def test_a_bad_cnet_firewall_variable_is_a_usage_error(capsys, monkeypatch, state_file):
    monkeypatch.setenv("CNET_FIREWALL", "pf")
    code, out, err = run(capsys, "--state", str(state_file), "ls")
    assert code == 2
    assert "'pf' is not one of 'nftables', 'iptables'" in one_error_line(err)


def test_no_command_is_a_usage_error(capsys):
    code, out, err = run(capsys)
    assert code == 2
    one_error_line(err)


def test_no_command_error_is_short(capsys):
    code, out, err = run(capsys)
    message = one_error_line(err)
    assert "Options:" not in message and len(message) < 200


# --- invalid input, conflicts, not found -------------------------------------------------

INVALID = [
    ("name with slash", ["create", "bridge", "a/b", "--subnet", "10.0.0.0/24"], 2,
     "network name 'a/b' contains '/', which an interface name cannot hold"),
    ("name too long", ["create", "bridge", "abcdefghijklmnop", "--subnet", "10.0.0.0/24"], 2,
     "network name 'abcdefghijklmnop' is 16 bytes long; an interface name has at most 15"),
    ("name empty", ["create", "bridge", "", "--subnet", "10.0.0.0/24"], 2, "network name must not be empty"),
    ("bad subnet", ["create", "bridge", "cnett0", "--subnet", "10.0.0.0/33"], 2,
     "subnet '10.0.0.0/33' is not a valid CIDR (expected ADDRESS/PREFIX)"),
    ("subnet host bits", ["create", "bridge", "cnett0", "--subnet", "10.0.0.1/24"], 2,
     "subnet 10.0.0.1/24 has host bits set (did you mean 10.0.0.0/24?)"),
    ("gateway outside subnet", ["create", "bridge", "cnett0", "--subnet", "10.0.0.0/24", "--gateway", "10.0.1.1"], 2,
     "gateway 10.0.1.1 is outside subnet 10.0.0.0/24"),
    ("mtu out of range", ["create", "bridge", "cnett0", "--subnet", "10.0.0.0/24", "--mtu", "70000"], 2,
     "MTU 70000 is out of range (68-65535)"),
    ("delete of a missing network", ["delete", "bridge", "nosuch"], 3, "network nosuch not found"),
    ("delete network of a missing network", ["delete", "network", "nosuch"], 3, "network nosuch not found"),
    ("rm of a missing network", ["rm", "bridge", "nosuch"], 3, "network nosuch not found"),
    ("inspect of a missing network", ["inspect", "nosuch"], 3, "network nosuch not found"),
    ("inspect --json of a missing network", ["inspect", "nosuch", "--json"], 3, "network nosuch not found"),
]


@pytest.mark.parametrize("argv, code, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_errors_on_an_empty_state(capsys, tmp_path, state_file, argv, code, message):
    got, out, err = run(capsys, "--state", str(state_file), *argv)
    assert got == code
    assert one_error_line(err) == message
    assert out == ""
    assert not state_file.exists()
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".state.")]


EXISTING = [
    ("overlap", ["create", "bridge", "cnett0", "--subnet", "172.26.3.0/24"], 4,
     "subnet 172.26.3.0/24 overlaps subnet 172.26.0.0/16 of network mybr0"),
    ("ipv6 overlap", ["create", "bridge", "cnett0", "--subnet", "10.99.0.0/24", "--subnet", "fd00:26::/48"], 4,
     "subnet fd00:26::/48 overlaps subnet fd00:26::/64 of network mybr0"),
    ("name exists", ["create", "bridge", "quiet", "--subnet", "10.99.0.0/24"], 4, "network quiet already exists"),
    ("name exists, different settings, --exist-ok",
     ["create", "bridge", "quiet", "--subnet", "10.99.0.0/24", "--exist-ok"], 4,
     "network quiet exists with other settings"),
    ("delete of a network in use", ["delete", "bridge", "mybr0"], 4,
     "network mybr0 is in use by sandbox(es) web (use --force to detach them)"),
    ("invalid name with an existing state", ["create", "bridge", "a:b", "--subnet", "10.99.0.0/24"], 2,
     "network name 'a:b' contains ':', which an interface name cannot hold"),
]


@pytest.mark.parametrize("argv, code, message", [c[1:] for c in EXISTING], ids=[c[0] for c in EXISTING])
def test_errors_against_a_prepared_state(capsys, prepared, argv, code, message):
    before = prepared.read_bytes()
    got, out, err = run(capsys, "--state", str(prepared), *argv)
    assert got == code
    assert one_error_line(err) == message
    assert out == ""
    assert prepared.read_bytes() == before


def test_delete_if_exists_of_a_missing_network_succeeds_silently(capsys, state_file):
    code, out, err = run(capsys, "--state", str(state_file), "delete", "bridge", "x", "--if-exists")
    assert (code, out, err) == (0, "", "")


def test_delete_if_exists_of_a_missing_network_writes_no_state_file(capsys, state_file):
    run(capsys, "--state", str(state_file), "delete", "bridge", "x", "--if-exists")
    assert not state_file.exists()


def test_delete_if_exists_of_a_missing_network_leaves_the_file_alone(capsys, state_file):
    state_file.write_text("# my notes\nversion: 1\nnetworks: {}\n")
    before = state_file.read_bytes()
    run(capsys, "--state", str(state_file), "delete", "bridge", "x", "--if-exists")
    assert state_file.read_bytes() == before


# --- state file and config file errors (exit 1 / 2) -----------------------------------------

@pytest.mark.parametrize("argv", [["ls"], ["ls", "-q"], ["ls", "ns"], ["inspect", "mybr0"],
                                  ["delete", "bridge", "mybr0"],
                                  ["create", "bridge", "cnett0", "--subnet", "10.99.0.0/24"]])
def test_a_corrupt_state_file_is_exit_1_naming_the_file(capsys, state_file, argv):
    state_file.write_text("networks: [unclosed\n")
    before = state_file.read_bytes()
    code, out, err = run(capsys, "--state", str(state_file), *argv)
    assert code == 1
    message = one_error_line(err)
    assert message.startswith(f"state file {state_file} cannot be parsed at line 2: ")
    assert out == ""
    assert state_file.read_bytes() == before


def test_a_binary_state_file_is_exit_1_naming_the_file(capsys, state_file):
    state_file.write_bytes(b"\xff\xfe\x00garbage")
    code, out, err = run(capsys, "--state", str(state_file), "ls")
    assert code == 1
    assert str(state_file) in one_error_line(err)


@pytest.mark.parametrize("text, shown", [('{"version": 99, "networks": {}}', "version 99"),
                                         ("networks: {}\n", "version None")])
def test_an_unknown_version_is_exit_1_and_the_file_is_unchanged(capsys, state_file, text, shown):
    state_file.write_text(text)
    before = state_file.read_bytes()
    code, out, err = run(capsys, "--state", str(state_file),
                         "create", "bridge", "cnett0", "--subnet", "10.99.0.0/24")
    assert code == 1
    message = one_error_line(err)
    assert message == (f"state file {state_file} has version {shown.split()[1]}; this cnet reads "
                       "version 1 (was it written by another cnet release?)")
    assert out == ""
    assert state_file.read_bytes() == before


def test_a_missing_explicit_config_file_is_exit_2(capsys, tmp_path, prepared):
    # Cnet.create_bridge reads the config (for plan_bridge's arguments) after loading the
    # state and before any kernel access. The subnet also overlaps mybr0, so even if that
    # order changed the command would still stop before the kernel.
    missing = tmp_path / "nope" / "config.yaml"
    before = prepared.read_bytes()
    code, out, err = run(capsys, "--state", str(prepared), "--config", str(missing),
                         "create", "bridge", "cnett0", "--subnet", "172.26.0.0/16")
    assert code == 2
    assert one_error_line(err) == f"config file {missing} does not exist"
    assert out == ""
    assert prepared.read_bytes() == before


def test_a_missing_config_file_from_the_environment_is_exit_2(capsys, tmp_path, monkeypatch, prepared):
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv("CNET_CONFIG", str(missing))
    code, out, err = run(capsys, "--state", str(prepared), "create", "bridge", "cnett0", "--subnet", "172.26.0.0/16")
    assert code == 2
    assert one_error_line(err) == f"config file {missing} does not exist"


def test_an_invalid_config_file_is_exit_2(capsys, tmp_path, prepared):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mtuu: 1500\n")
    code, out, err = run(capsys, "--state", str(prepared), "--config", str(bad),
                         "create", "bridge", "cnett0", "--subnet", "172.26.0.0/16")
    assert code == 2
    assert one_error_line(err) == f"{bad}: unknown key 'mtuu'"


def test_ls_does_not_read_the_config(capsys, tmp_path, prepared):
    code, out, err = run(capsys, "--state", str(prepared), "--config", str(tmp_path / "nope.yaml"), "ls", "-q")
    assert (code, err) == (0, "")


def test_debug_adds_a_traceback_to_the_error(capsys, state_file):
    code, out, err = run(capsys, "--debug", "--state", str(state_file), "inspect", "nosuch")
    assert code == 3
    assert "Traceback" in err
    assert err.splitlines()[-1] == "cnet: error: network nosuch not found"


# --- output for people and scripts ----------------------------------------------------------

LS_TABLE = """\
NAME   DRIVER  SUBNETS                     GATEWAYS               MTU   FLAGS          ENDPOINTS  STATUS
mybr0  bridge  172.26.0.0/16,fd00:26::/64  172.26.0.1,fd00:26::1  1500  -              1          missing
quiet  bridge  10.9.0.0/24                 10.9.0.254             9000  internal       0          missing
nonat  bridge  10.10.0.0/24                10.10.0.1              1500  no-masquerade  0          missing
"""


@pytest.mark.parametrize("argv", [["ls"], ["ls", "networks"]])
def test_ls_table(capsys, prepared, argv):
    assert run(capsys, "--state", str(prepared), *argv) == (0, LS_TABLE, "")


def test_ls_quiet(capsys, prepared):
    assert run(capsys, "--state", str(prepared), "ls", "-q") == (0, "mybr0\nquiet\nnonat\n", "")
    assert run(capsys, "--state", str(prepared), "ls", "--quiet") == (0, "mybr0\nquiet\nnonat\n", "")


def test_ls_json(capsys, prepared):
    code, out, err = run(capsys, "--state", str(prepared), "ls", "--json")
    assert (code, err) == (0, "")
    expected = [
        {"name": "mybr0", "driver": "bridge",
         "subnets": [{"subnet": "172.26.0.0/16", "gateway": "172.26.0.1", "ip_range": None},
                     {"subnet": "fd00:26::/64", "gateway": "fd00:26::1", "ip_range": None}],
         "mtu": 1500, "internal": False, "masquerade": True, "options": {},
         "created": "2024-05-01T10:00:00+00:00", "endpoints": 1, "status": "missing"},
        {"name": "quiet", "driver": "bridge",
         "subnets": [{"subnet": "10.9.0.0/24", "gateway": "10.9.0.254", "ip_range": "10.9.0.128/25"}],
         "mtu": 9000, "internal": True, "masquerade": False, "options": {},
         "created": "2024-05-02T10:00:00+00:00", "endpoints": 0, "status": "missing"},
        {"name": "nonat", "driver": "bridge",
         "subnets": [{"subnet": "10.10.0.0/24", "gateway": "10.10.0.1", "ip_range": None}],
         "mtu": 1500, "internal": False, "masquerade": False, "options": {},
         "created": "2024-05-03T10:00:00+00:00", "endpoints": 0, "status": "missing"},
    ]
    assert json.loads(out) == expected
    assert out == json.dumps(expected, indent=2) + "\n"  # same keys in the same order, 2-space indent
    assert out.startswith('[\n  {\n    "name": "mybr0",\n    "driver": "bridge",\n')


def test_ls_other_lists(capsys, prepared):
    s = str(prepared)
    assert run(capsys, "--state", s, "ls", "ns", "-q") == (0, "web\nside\n", "")
    assert run(capsys, "--state", s, "ls", "endpoints", "-q") == (0, "web:mybr0\n", "")
    assert run(capsys, "--state", s, "ls", "ports") == (
        0, "SANDBOX  NETWORK  MAPPING               STATUS\nweb      mybr0    0.0.0.0:8080->80/tcp  missing\n", "")
    code, out, err = run(capsys, "--state", s, "ls", "endpoints", "--json")
    assert json.loads(out) == [{**prepared_state().endpoints[0].to_dict(), "limits": None, "device": None,
                                "status": "missing"}]


def test_ls_on_a_missing_state_file(capsys, tmp_path, state_file):
    assert run(capsys, "--state", str(state_file), "ls") == (
        0, "NAME  DRIVER  SUBNETS  GATEWAYS  MTU  FLAGS  ENDPOINTS  STATUS\n", "")
    assert run(capsys, "--state", str(state_file), "ls", "-q") == (0, "", "")
    assert run(capsys, "--state", str(state_file), "ls", "--json") == (0, "[]\n", "")
    assert sorted(os.listdir(tmp_path)) == ["config.yaml", "run-netns", "sys-class-net"]  # no lock, nothing written


def test_ls_reads_cnet_state_from_the_environment(capsys, monkeypatch, prepared):
    monkeypatch.setenv("CNET_STATE", str(prepared))
    assert run(capsys, "ls", "-q") == (0, "mybr0\nquiet\nnonat\n", "")


def test_version(capsys):
    assert run(capsys, "--version") == (0, f"cnet {cnet.__version__}\n", "")
    assert cnet.__version__ == "0.1.0"


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["create", "bridge", "--help"], ["ls", "--help"]])
def test_help(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    assert out.startswith("Usage: cnet")


def test_help_lists_the_commands(capsys):
    code, out, err = run(capsys, "--help")
    for command in ("create", "delete", "inspect", "ls", "rm"):
        assert f"\n  {command} " in out


# --- netlink code stays out of commands that do not need the kernel -----------------------

PROBE = textwrap.dedent("""\
    import json, sys

    attempted = []

    class Blocker:
        # Refuses pyroute2 and cnet's netlink modules, so that nothing here can
        # reach the kernel whatever the code does.
        def find_spec(self, name, path=None, target=None):
            if name in NETLINK or name.split(".")[0] == "pyroute2":
                attempted.append(name)
                raise ImportError(name + " is blocked by the test")
            return None

    NETLINK = {"cnet.kernel.netlink", "cnet.kernel.conntrack", "cnet.kernel.pyroute"}

    sys.meta_path.insert(0, Blocker())
    sys.argv = ["cnet", *sys.argv[1:]]
    from cnet.cli import main
    try:
        main()
        code = 0
    except SystemExit as e:
        code = 0 if e.code is None else e.code
    sys.stdout.flush()
    loaded = {m for m in sys.modules if m in NETLINK or m.split(".")[0] == "pyroute2"}
    print(json.dumps({"code": code, "netlink": sorted(loaded),
                      "attempted": attempted}),
          file=sys.stderr)
""")


def probe(tmp_path, *argv, stdin=""):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNET_")}
    env["CNET_CONFIG"] = str(tmp_path / "config.yaml")
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True,
                          text=True, timeout=60, input=stdin)
    return json.loads(done.stderr.splitlines()[-1]), done.stdout, done.stderr


@pytest.mark.parametrize("argv, code", [
    (["--version"], 0),
    (["--help"], 0),
    (["ls"], 0),
    (["ls", "-q"], 0),
    (["ls", "--json"], 0),
    (["ls", "ports"], 0),
    *([["ls", what, *flags], 0] for what in ("networks", "ns", "endpoints", "ports")
      for flags in ([], ["-q"], ["--json"])),
])
def test_commands_that_only_read_the_state_do_not_load_netlink(tmp_path, prepared, argv, code):
    result, out, err = probe(tmp_path, "--state", str(prepared), *argv)
    assert result == {"code": code, "netlink": [], "attempted": []}, err


@pytest.mark.parametrize("argv, code", [
    (["create", "bridge", "a/b", "--subnet", "10.99.0.0/24"], 2),
    (["create", "bridge", "cnett0", "--subnet", "172.26.0.0/16"], 4),
    (["delete", "bridge", "nosuch"], 3),
    (["inspect", "nosuch"], 3),
])
def test_commands_that_fail_validation_do_not_load_netlink(tmp_path, prepared, argv, code):
    result, out, err = probe(tmp_path, "--state", str(prepared), *argv)
    assert result == {"code": code, "netlink": [], "attempted": []}, err


@pytest.mark.parametrize("lines", ['create bridge "unbalanced\n', "create bridge a/b --subnet 10.99.0.0/24\n",
                                   "frobnicate\ncreate bridge x\n",
                                   # these take the state lock themselves: inside a batch they would wait for ever
                                   "restore\n", "gc\n", "check\n"])
def test_a_batch_failing_on_its_first_line_does_not_load_netlink(tmp_path, prepared, lines):
    result, out, err = probe(tmp_path, "--state", str(prepared), "batch", stdin=lines)
    assert result == {"code": 2, "netlink": [], "attempted": []}, err
    assert "line 1:" in err


def test_the_probe_catches_a_command_that_loads_netlink(tmp_path, prepared):
    """inspect shows the kernel's view, so it must try to load netlink: the
    blocker sees it (else the tests above could not fail)."""
    result, out, err = probe(tmp_path, "--state", str(prepared), "inspect", "mybr0")
    assert result["attempted"] and result["code"] != 0, err


def test_the_probe_sees_ls_output(tmp_path, prepared):
    result, out, err = probe(tmp_path, "--state", str(prepared), "ls")
    assert out == LS_TABLE


def test_ls_status_reads_no_netlink(tmp_path):
    """ls STATUS from /sys/class/net and /run/netns, netlink blocked: a network
    named after a link every host has (lo) is there, one named after none is
    missing; a host-mode sandbox is there, one with no namespace is not."""
    state = tmp_path / "state.yaml"
    StateStore(str(state)).save(State(
        networks={name: Network(name, "bridge", [Subnet(subnet, gateway)], 1500)
                  for name, subnet, gateway in (("lo", "10.7.0.0/24", "10.7.0.1"),
                                                ("cnet-nosuch0", "10.8.0.0/24", "10.8.0.1"))},
        sandboxes={"me": Sandbox("me", mode="host"), "cnet-nosuch-ns": Sandbox("cnet-nosuch-ns")}))
    for what, expected in (("networks", {"lo": "ok", "cnet-nosuch0": "missing"}),
                           ("ns", {"me": "ok", "cnet-nosuch-ns": "missing"})):
        result, out, err = probe(tmp_path, "--state", str(state), "ls", what, "--json")
        assert result == {"code": 0, "netlink": [], "attempted": []}, err
        assert {item["name"]: item["status"] for item in json.loads(out)} == expected
