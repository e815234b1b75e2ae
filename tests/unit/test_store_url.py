"""The store URL: etcd://HOST[:PORT][,HOST[:PORT]...] parsed into endpoints,
and which of --store, $CNET_STORE and the config's `store:` a command uses."""

from __future__ import annotations

import pytest

from cnet.cli import main
from cnet.errors import InvalidInput
from cnet.store import DEFAULT_PORT, STORE_ENV, StoreUnreachable, parse_url, store_url


@pytest.fixture(autouse=True)
def no_store_in_env(monkeypatch):
    monkeypatch.delenv(STORE_ENV, raising=False)


@pytest.mark.parametrize("url, endpoints", [
    ("etcd://10.0.0.1:2379", [("10.0.0.1", 2379)]),
    ("etcd://10.0.0.1", [("10.0.0.1", DEFAULT_PORT)]),
    ("etcd://h1:2379,h2:22379,h3", [("h1", 2379), ("h2", 22379), ("h3", DEFAULT_PORT)]),
    ("etcd://etcd-1.example.org:2379/", [("etcd-1.example.org", 2379)]),
    ("etcd://[::1]:2379", [("::1", 2379)]),
    ("etcd://[fd00::1]", [("fd00::1", DEFAULT_PORT)]),
    ("etcd://[fd00::1]:4001,10.0.0.2", [("fd00::1", 4001), ("10.0.0.2", DEFAULT_PORT)]),
    ("etcd://h1:2379, h2:2379", [("h1", 2379), ("h2", 2379)]),  # as a YAML line may be written
])
def test_endpoints_in_order(url, endpoints):
    assert parse_url(url) == endpoints


@pytest.mark.parametrize("url", [
    "", "10.0.0.1:2379", "http://10.0.0.1:2379", "etcd:/10.0.0.1", "etcd://", "etcd:///",
    "etcd://h1:", "etcd://h1:http", "etcd://h1:0", "etcd://h1:65536", "etcd://h1:-1",
    "etcd://h1,,h2", "etcd://h1,", "etcd://h1/path", "etcd://user@h1", "etcd://h1:2379/v3",
    "etcd://[::1", "etcd://[::1]x", "etcd://[::1]:", "etcd://[not-ipv6]:2379", "etcd://[]:2379",
    "etcd://::1", "etcd://fd00::1:2379",  # a bare IPv6 address: is :2379 its port or its last group?
    "etcd://h 1:2379", "etcd://h1:²",
])
def test_a_bad_url_is_invalid_input_in_one_line_naming_it(url):
    with pytest.raises(InvalidInput) as info:
        parse_url(url)
    message = str(info.value)
    assert "\n" not in message
    assert repr(url) in message
    assert "HOST" in message  # says what a good one looks like


def test_a_bare_ipv6_address_is_told_to_use_brackets():
    with pytest.raises(InvalidInput, match=r"\[ADDRESS\]"):
        parse_url("etcd://fd00::1:2379")


def test_store_option_wins_over_env_and_config(monkeypatch):
    monkeypatch.setenv(STORE_ENV, "etcd://from-env:2379")
    assert store_url("etcd://from-option:2379", "etcd://from-config:2379") == "etcd://from-option:2379"


def test_env_wins_over_config(monkeypatch):
    monkeypatch.setenv(STORE_ENV, "etcd://from-env:2379")
    assert store_url(None, "etcd://from-config:2379") == "etcd://from-env:2379"


def test_config_when_nothing_else():
    assert store_url(None, "etcd://from-config:2379") == "etcd://from-config:2379"


def test_no_store_anywhere_says_where_one_goes():
    with pytest.raises(InvalidInput) as info:
        store_url(None, None)
    assert all(where in str(info.value) for where in ("--store", STORE_ENV, "store:"))


@pytest.mark.parametrize("where", ["option", "env", "config"])
def test_the_chosen_url_is_checked_wherever_it_comes_from(monkeypatch, where):
    bad = "etcd://h1:99999"
    if where == "env":
        monkeypatch.setenv(STORE_ENV, bad)
    with pytest.raises(InvalidInput, match="99999"):
        store_url(bad if where == "option" else None, bad if where == "config" else None)


def test_store_unreachable_is_exit_1():
    assert StoreUnreachable("store unreachable: x").exit_code == 1


def test_the_cli_refuses_a_bad_store_with_exit_2_and_one_line(monkeypatch, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(config))
    monkeypatch.setenv("CNET_STATE", str(tmp_path / "state.yaml"))
    with pytest.raises(SystemExit) as info:
        main(["overlay", "forget", "h2", "--store", "http://10.0.0.1:2379"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnet: error: store 'http://10.0.0.1:2379'"), err


def test_a_bad_store_is_refused_even_when_the_state_has_an_overlay_on_a_good_one(monkeypatch, tmp_path, capsys):
    """The store of this host's overlays stands in only when nothing names one."""
    from cnet.model import Network, State, Subnet
    from cnet.state import StateStore

    config = tmp_path / "config.yaml"
    config.write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(config))
    monkeypatch.setenv("CNET_STATE", str(tmp_path / "state.yaml"))
    overlay = Network("ov0", "overlay", [Subnet("10.60.0.0/16", "10.60.0.1")], 1450,
                      options={"vni": 4096, "store": "etcd://10.0.0.1:2379", "host": "h1", "vtep": "10.0.0.11"})
    StateStore(str(tmp_path / "state.yaml")).save(State(networks={"ov0": overlay}))
    with pytest.raises(SystemExit) as info:
        main(["overlay", "forget", "h2", "--store", "etcd://h1:99999"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("cnet: error: store 'etcd://h1:99999'")
