import ipaddress

import pytest

from cnet import config
from cnet.config import (
    DEFAULT_POOLS,
    AddressPool,
    Config,
    config_path,
    iter_pool_subnets,
    load_config,
    with_overrides,
)
from cnet.errors import InvalidInput


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def first(n, pools=DEFAULT_POOLS):
    subnets = iter_pool_subnets(pools)
    return [str(next(subnets)) for _ in range(n)]


INVALID = [
    ("mtuu: 1500\n", "unknown key 'mtuu'"),
    ("mtu: big\n", "'mtu' must be an integer between 68 and 65535, not 'big'"),
    ("mtu: 67\n", "'mtu' must be an integer between 68 and 65535, not 67"),
    ("mtu: 65536\n", "'mtu' must be an integer"),
    ("mtu: true\n", "'mtu' must be an integer between 68 and 65535, not True"),
    ("mtu: 1500.0\n", "'mtu' must be an integer"),
    ("firewall: pf\n", "'firewall' must be one of nftables, iptables, not 'pf'"),
    ("firewall: NFTABLES\n", "'firewall' must be one of nftables, iptables"),
    ("dns: 1.1.1.1\n", "'dns' must be a list of IP addresses"),
    ("dns: [1.1.1.1, example.com]\n", "'dns[1]' must be an IP address, not 'example.com'"),
    ("dns: [16843009]\n", "'dns[0]' must be an IP address, not 16843009"),
    ("dns: [1.1.1.256]\n", "'dns[0]' must be an IP address"),
    ("address_pools: []\n", "'address_pools' must be a non-empty list"),
    ("address_pools: 10.0.0.0/8\n", "'address_pools' must be a non-empty list"),
    ("address_pools: [10.0.0.0/8]\n", "'address_pools[0]' must be a mapping"),
    (
        "address_pools:\n  - {base: 10.1.0.0/16, size: 24}\n  - {base: 10.0.0.0/16, size: 8}\n",
        "'address_pools[1].size' must be between 16 and 30 for 10.0.0.0/16",
    ),
    ("address_pools:\n  - {base: 10.0.0.0/16, size: 31}\n", "'address_pools[0].size' must be between 16 and 30"),
    ("address_pools:\n  - {base: 10.0.0.0/16, size: true}\n", "'address_pools[0].size' must be between"),
    ("address_pools:\n  - {base: 10.0.0.0/16, size: '24'}\n", "'address_pools[0].size' must be between"),
    ("address_pools:\n  - {base: 'fd00::/48', size: 127}\n", "must be between 48 and 126 for fd00::/48"),
    ("address_pools:\n  - {base: 10.0.0.0/33, size: 24}\n", "'address_pools[0].base' is not a valid network: "),
    ("address_pools:\n  - {base: nonsense, size: 24}\n", "'address_pools[0].base' is not a valid network: "),
    ("address_pools:\n  - {base: 167772160, size: 24}\n", "'address_pools[0].base' is not a valid network: "),
    ("address_pools:\n  - {base: 10.0.0.1/16, size: 24}\n", "'address_pools[0].base' has host bits set"),
    ("address_pools:\n  - {base: 10.0.0.0, size: 30}\n", "'address_pools[0].base' 10.0.0.0/32 is too small"),
    ("address_pools:\n  - {base: 10.0.0.0/16, size: 24, gw: x}\n", "unknown key 'gw' in 'address_pools[0]'"),
    ("address_pools:\n  - {size: 24}\n", "'address_pools[0].base' is required"),
    ("address_pools:\n  - {base: 10.0.0.0/16}\n", "'address_pools[0].size' is required"),
    ("store: [a, b]\n", "'store' must be a non-empty string, not ['a', 'b']"),
    ("advertise: 10\n", "'advertise' must be a non-empty string, not 10"),
    ("host: ''\n", "'host' must be a non-empty string, not ''"),
    ("- mtu: 1500\n", "the top level must be a mapping"),
    ("just a string\n", "the top level must be a mapping"),
    ("mtu: 1500\n  firewall: x\n", "invalid YAML at line 2: mapping values are not allowed"),
    ("dns: [1.1.1.1\n", "invalid YAML at line 2"),
    ("mtu: 1500\n---\nmtu: 1400\n", "invalid YAML"),
    ("mtu: \t1500\n\tfirewall: x\n", "invalid YAML"),
]


@pytest.mark.parametrize("text,expected", INVALID)
def test_invalid_config(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(InvalidInput) as info:
        load_config(path, must_exist=True)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_invalid_utf8_is_one_line_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"mtu: \xff\xfe\n")
    with pytest.raises(InvalidInput) as info:
        load_config(str(path), must_exist=True)
    assert str(info.value).startswith(f"{path}: invalid YAML")
    assert "\n" not in str(info.value)


def test_unreadable_path_is_invalid_input(tmp_path):
    with pytest.raises(InvalidInput) as info:
        load_config(str(tmp_path), must_exist=True)  # a directory
    assert str(info.value).startswith(f"{tmp_path}: cannot read config file")


def test_missing_default_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("CNET_CONFIG", raising=False)
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.yaml"))
    path = config_path(None)
    assert path == str(tmp_path / "absent.yaml")
    cfg = load_config(path, must_exist=False)
    assert cfg == Config()
    assert (cfg.firewall, cfg.mtu, cfg.dns, cfg.address_pools) == ("nftables", 1500, (), DEFAULT_POOLS)


def test_missing_explicit_file_is_an_error(tmp_path):
    path = str(tmp_path / "x" / "y.yaml")
    with pytest.raises(InvalidInput) as info:
        load_config(path, must_exist=True)
    assert str(info.value) == f"config file {path} does not exist"
    assert info.value.exit_code == 2


def test_config_path_precedence(monkeypatch):
    monkeypatch.setenv("CNET_CONFIG", "/from/env.yaml")
    assert config_path("/explicit.yaml") == "/explicit.yaml"
    assert config_path(None) == "/from/env.yaml"
    monkeypatch.setenv("CNET_CONFIG", "")
    assert config_path(None) == "/etc/cnet/config.yaml"
    monkeypatch.delenv("CNET_CONFIG")
    assert config_path(None) == config.DEFAULT_CONFIG_PATH == "/etc/cnet/config.yaml"


def test_default_pools_order():
    subnets = first(17)
    assert subnets[0] == "172.17.0.0/16"
    assert subnets[1] == "172.18.0.0/16"
    assert subnets[14] == "172.31.0.0/16"
    assert subnets[15] == "192.168.0.0/20"
    assert subnets[16] == "192.168.16.0/20"
    assert len(list(iter_pool_subnets(DEFAULT_POOLS))) == 15 + 16


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "mtu:\ndns:\n"])
def test_empty_file_or_null_values_mean_defaults(tmp_path, text):
    assert load_config(write(tmp_path, text), must_exist=True) == Config()


def test_full_custom_config(tmp_path):
    text = (
        "firewall: iptables\n"
        "mtu: 9000\n"
        "dns: [1.1.1.1, '2606:4700:4700:0::1111']\n"
        "address_pools:\n"
        "  - base: 10.200.0.0/16\n"
        "    size: 24\n"
        "  - base: fd00:cafe::/48\n"
        "    size: 64\n"
    )
    cfg = load_config(write(tmp_path, text), must_exist=True)
    assert cfg.firewall == "iptables"
    assert cfg.mtu == 9000
    assert cfg.dns == ("1.1.1.1", "2606:4700:4700::1111")
    assert cfg.address_pools == (
        AddressPool(ipaddress.ip_network("10.200.0.0/16"), 24),
        AddressPool(ipaddress.ip_network("fd00:cafe::/48"), 64),
    )
    assert first(2, cfg.address_pools) == ["10.200.0.0/24", "10.200.1.0/24"]
    subnets = list(iter_pool_subnets(cfg.address_pools[:1]))
    assert len(subnets) == 256 and str(subnets[-1]) == "10.200.255.0/24"


def test_overlay_keys_are_kept_as_given(tmp_path):
    text = "store: etcd://10.77.0.11:2379,10.77.0.12:2379\nadvertise: eth0\nhost: h1\n"
    cfg = load_config(write(tmp_path, text), must_exist=True)
    assert (cfg.store, cfg.advertise, cfg.host) == ("etcd://10.77.0.11:2379,10.77.0.12:2379", "eth0", "h1")


def test_ipv6_dns_unquoted(tmp_path):
    cfg = load_config(write(tmp_path, "dns: [2606:4700:4700::1111, 1.0.0.1]\n"), must_exist=True)
    assert cfg.dns == ("2606:4700:4700::1111", "1.0.0.1")


def test_pool_subnets_are_lazy():
    pool = AddressPool(ipaddress.ip_network("fd00::/16"), 126)
    assert str(next(pool.subnets())) == "fd00::/126"


def test_with_overrides():
    cfg = Config(mtu=1400)
    assert with_overrides(cfg) is cfg
    assert with_overrides(cfg, firewall=None) is cfg
    assert with_overrides(cfg, firewall="iptables") == Config(mtu=1400, firewall="iptables")
    with pytest.raises(InvalidInput) as info:
        with_overrides(cfg, firewall="pf")
    assert str(info.value) == "firewall must be one of nftables, iptables, not 'pf'"
    assert info.value.exit_code == 2
