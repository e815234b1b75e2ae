"""The hosts files' content and which sandboxes need a private one (pure: no files written)."""

from cnet.model import Endpoint, Sandbox, State
from cnet.resolver import LOCALHOST, Resolver, _Index


def ep(sandbox, network, *addresses):
    return Endpoint(sandbox, network, "eth0", f"cn-{sandbox}-{network}", "02:00:00:00:00:01", list(addresses))


def sample() -> State:
    return State(
        sandboxes={
            "a": Sandbox("a"),                                   # one network: shares its file
            "b": Sandbox("b", hostname="bee"),                   # one network: shares
            "c": Sandbox("c", hosts=["db:10.9.9.9"]),            # --add-host: private
            "d": Sandbox("d"),                                   # two networks: private
            "j": Sandbox("j", mode="joined", target="a", hostname="jay"),  # a's stack: shares
            "n": Sandbox("n"),                                   # no network: private
        },
        endpoints=[ep("a", "n1", "10.0.0.2/24"), ep("b", "n1", "10.0.0.3/24", "fd00::3/64"),
                   ep("c", "n1", "10.0.0.4/24"), ep("d", "n1", "10.0.0.5/24"), ep("d", "n2", "10.1.0.5/24")],
    )


def test_names_of_a_stack_are_its_owner_joiners_and_hostnames():
    index = _Index(sample())
    assert index.names("a") == "a j jay"
    assert index.names("b") == "b bee"
    assert index.names("c") == "c"


def test_network_hosts_lists_every_stack_on_it():
    assert Resolver.network_hosts(_Index(sample()), "n1") == LOCALHOST + (
        "10.0.0.2\ta j jay\n10.0.0.3\tb bee\nfd00::3\tb bee\n10.0.0.4\tc\n10.0.0.5\td\n")


def test_private_files_by_network():
    index = _Index(sample())
    assert index.private_on == {"n1": {"c", "d"}, "n2": {"d"}}
    state = sample()
    assert [n for n, sb in state.sandboxes.items() if not index.shares_network_file(sb)] == ["c", "d", "n"]


def test_private_hosts_has_own_names_extra_entries_and_peers():
    state = sample()
    text = Resolver.private_hosts(_Index(state), state.sandboxes["c"])
    assert text == LOCALHOST + (
        "10.0.0.4\tc\n10.9.9.9\tdb\n10.0.0.2\ta j jay\n10.0.0.3\tb bee\nfd00::3\tb bee\n10.0.0.5\td\n")


def test_removing_a_sandboxs_files_empties_and_removes_its_directory(tmp_path, monkeypatch):
    import cnet.resolver as resolver

    monkeypatch.setattr(resolver, "ETC_NETNS", str(tmp_path))
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("resolv.conf", "hosts"):
        (flat / name).write_text("x")
    (flat / "link").symlink_to(tmp_path / "elsewhere")  # a dangling link is a file to remove, not followed
    nested = tmp_path / "nested"
    (nested / "sub").mkdir(parents=True)  # a directory someone made inside: rmtree takes it all
    (nested / "sub" / "f").write_text("x")
    (nested / "hosts").write_text("x")
    for name in ("flat", "nested", "never-made"):
        Resolver.remove_sandbox(name)
    assert list(tmp_path.iterdir()) == []
