"""Tests for cnet.portspec: the `docker run -p` grammar that `cnet publish` takes.

    [HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|udp|sctp]

Table-driven: each valid spec names the PortSpec it parses to and its
canonical spelling, which parses to the same; each invalid spec names a
substring of the one-line message, and every error is InvalidInput (exit 2).
Properties (hypothesis): generated spec texts parse to the spec they were
made from, and no text makes parse raise anything but InvalidInput.
"""

import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from cnet.errors import CnetError, InvalidInput
from cnet.portspec import PROTOCOLS, PortSpec, format_mapping, parse


# --- valid specs ------------------------------------------------------------

# spec, (protocol, port, count, host_ip, host_port), the canonical spelling of the same spec
VALID = [
    ("80", ("tcp", 80, 1, None, None), "80/tcp"),
    ("8080:80", ("tcp", 80, 1, None, 8080), "8080:80/tcp"),
    ("8080:80/udp", ("udp", 80, 1, None, 8080), "8080:80/udp"),
    ("80/sctp", ("sctp", 80, 1, None, None), "80/sctp"),
    ("80/tcp", ("tcp", 80, 1, None, None), "80/tcp"),
    ("127.0.0.1:8080:80", ("tcp", 80, 1, "127.0.0.1", 8080), "127.0.0.1:8080:80/tcp"),
    ("127.0.0.1::80", ("tcp", 80, 1, "127.0.0.1", None), "127.0.0.1::80/tcp"),
    ("[::1]:8080:80", ("tcp", 80, 1, "::1", 8080), "[::1]:8080:80/tcp"),
    ("[2001:db8::1]::80/udp", ("udp", 80, 1, "2001:db8::1", None), "[2001:db8::1]::80/udp"),
    ("[2001:db8::1]:5353:53/udp", ("udp", 53, 1, "2001:db8::1", 5353), "[2001:db8::1]:5353:53/udp"),
    ("[::]:8080:80", ("tcp", 80, 1, "::", 8080), "[::]:8080:80/tcp"),
    ("8000-8010:8000-8010", ("tcp", 8000, 11, None, 8000), "8000-8010:8000-8010/tcp"),
    ("0.0.0.0:8000-8001:9000-9001", ("tcp", 9000, 2, "0.0.0.0", 8000), "0.0.0.0:8000-8001:9000-9001/tcp"),
    ("9000-9002:7000-7002/udp", ("udp", 7000, 3, None, 9000), "9000-9002:7000-7002/udp"),
    ("1", ("tcp", 1, 1, None, None), "1/tcp"),
    ("65535:65535", ("tcp", 65535, 1, None, 65535), "65535:65535/tcp"),
    ("65534-65535:1-2", ("tcp", 1, 2, None, 65534), "65534-65535:1-2/tcp"),
    ("8080-8080:80", ("tcp", 80, 1, None, 8080), "8080:80/tcp"),  # a one-port range is a port
    # Docker reads an empty host port before the last ':' as "pick one"
    # (go-connections splitParts/ParsePortSpec); cnet does the same.
    (":80", ("tcp", 80, 1, None, None), "80/tcp"),
]


@pytest.mark.parametrize("spec, fields, formatted", VALID, ids=[v[0] for v in VALID])
def test_parse_valid(spec, fields, formatted):
    parsed = parse(spec)
    assert parsed == PortSpec(*fields)
    protocol, port, count, host_ip, host_port = fields
    assert (parsed.protocol, parsed.port, parsed.count, parsed.host_ip, parsed.host_port) == (
        protocol, port, count, host_ip, host_port)
    assert parse(formatted) == parsed


# --- invalid specs ----------------------------------------------------------

# id, spec, substring of the message
INVALID = [
    ("port 0", "0", "port spec '0': port 0 is out of range (1-65535)"),
    ("port 65536", "65536", "port spec '65536': port 65536 is out of range (1-65535)"),
    ("host port 0", "0:80", "port 0 is out of range (1-65535)"),
    ("host port 65536", "65536:80", "port 65536 is out of range (1-65535)"),
    ("range end 65536", "65535-65536:1-2", "port 65536 is out of range (1-65535)"),
    ("letters", "abc", "port spec 'abc': 'abc' is not a port number"),
    ("sign", "+80", "'+80' is not a port number"),
    ("negative", "-80", "'' is not a port number"),
    ("open range", "80-", "'' is not a port number"),
    ("spaces", " 80", "' 80' is not a port number"),
    ("host port without sandbox port", "8080:", "port spec '8080:': the sandbox port is missing"),
    ("reversed ranges", "90-80:90-80", "port spec '90-80:90-80': range 90-80 is reversed"),
    ("reversed sandbox range", "80-90:90-80", "range 90-80 is reversed"),
    ("ranges of different lengths", "8000-8001:80-82",
     "port spec '8000-8001:80-82': the host range has 2 ports and the sandbox range 3"),
    ("host range for one port", "8000-8010:80", "the host range has 11 ports and the sandbox range 1"),
    ("sandbox range without host range", "80-82",
     "port spec '80-82': a range of sandbox ports needs a host range of the same length"),
    ("sandbox range, host ip, no host range", "127.0.0.1::80-82",
     "a range of sandbox ports needs a host range of the same length"),
    ("unknown protocol", "80/icmp", "port spec '80/icmp': unknown protocol 'icmp' (tcp, udp or sctp)"),
    ("protocol in capitals", "80/TCP", "unknown protocol 'TCP' (tcp, udp or sctp)"),
    ("two protocols", "80/tcp/udp", "unknown protocol 'tcp/udp'"),
    ("unbracketed IPv6", "::1:8080:80",
     "port spec '::1:8080:80': too many ':' (IPv6 host addresses go in brackets)"),
    ("unbracketed IPv6 with random port", "2001:db8::1::80", "too many ':' (IPv6 host addresses go in brackets)"),
    ("no ':' after the bracket", "[::1]8080:80",
     "port spec '[::1]8080:80': an IPv6 host address is written [ADDRESS]:HOST_PORT:PORT"),
    ("unclosed bracket", "[::1:8080:80", "an IPv6 host address is written [ADDRESS]:HOST_PORT:PORT"),
    ("bracketed address alone", "[::1]", "an IPv6 host address is written [ADDRESS]:HOST_PORT:PORT"),
    ("not an address in brackets", "[nothere]:1:2", "port spec '[nothere]:1:2': 'nothere' is not an IP address"),
    ("three-part IPv4", "1.2.3:8080:80", "port spec '1.2.3:8080:80': '1.2.3' is not an IP address"),
    ("IPv4 octet too big", "1.2.3.256:8080:80", "'1.2.3.256' is not an IP address"),
    ("host name", "localhost:8080:80", "'localhost' is not an IP address"),
    ("IPv4 in brackets", "[127.0.0.1]:8080:80", "port spec '[127.0.0.1]:8080:80': an IPv4 host address is written without brackets"),
    ("too many colons", "1:2:3:4", "port spec '1:2:3:4': too many ':' (IPv6 host addresses go in brackets)"),
    ("bracketed address and another", "[::1]:1.2.3.4:1:2", "port spec '[::1]:1.2.3.4:1:2': an IPv6 host address is written [ADDRESS]:HOST_PORT:PORT"),
    ("IPv4 and a sandbox port only", "127.0.0.1:80", "'127.0.0.1' is not a port number"),
    ("empty host ip", "::80", "'' is not an IP address"),
    ("empty string", "", "port spec '': the sandbox port is missing"),
    ("protocol only", "/tcp", "the sandbox port is missing"),
]


@pytest.mark.parametrize("spec, message", [v[1:] for v in INVALID], ids=[v[0] for v in INVALID])
def test_parse_invalid(spec, message):
    with pytest.raises(InvalidInput) as info:
        parse(spec)
    assert info.value.exit_code == 2
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_error_messages_name_the_spec():
    for _, spec, _ in INVALID:
        with pytest.raises(InvalidInput, match=r"^port spec "):
            parse(spec)


def test_empty_protocol_means_tcp():
    assert parse("80/") == parse("80/tcp")


def test_leading_zeros_are_the_same_port():
    assert parse("080:0080") == parse("80:80")


def test_ipv6_host_ip_is_kept_without_its_brackets():
    spec = parse("[2001:db8::1]:8080:80")
    assert spec.host_ip == "2001:db8::1"


def test_ipv4_in_brackets_is_refused_with_exit_2():
    with pytest.raises(InvalidInput) as info:
        parse("[127.0.0.1]:8080:80")
    assert info.value.exit_code == 2


def test_ipv4_in_brackets_message_does_not_suggest_brackets():
    with pytest.raises(InvalidInput) as info:
        parse("[127.0.0.1]:8080:80")
    assert "[127.0.0.1]" not in str(info.value).replace("'[127.0.0.1]:8080:80'", "")


@pytest.mark.parametrize("spec", ["²", "8080:²", "¹-²:1-2"])
def test_superscript_digits_are_invalid_input(spec):
    with pytest.raises(InvalidInput):
        parse(spec)


@pytest.mark.parametrize("spec", ["٨٠", "８０:８０"])
def test_non_ascii_digits_are_refused(spec):
    with pytest.raises(InvalidInput):
        parse(spec)


def test_ip_and_sandbox_port_only_same_for_both_families():
    """The message for a bad bracket says the form is [ADDRESS]:HOST_PORT:PORT;
    IPv4 has no IP:PORT form (Docker refuses both); the two families should agree."""
    with pytest.raises(InvalidInput):
        parse("127.0.0.1:80")
    with pytest.raises(InvalidInput):
        parse("[2001:db8::1]:80")


# --- format_mapping ---------------------------------------------------------

@pytest.mark.parametrize("args, shown", [
    (("0.0.0.0", 8080, 80, "tcp"), "0.0.0.0:8080->80/tcp"),
    (("127.0.0.1", 5353, 53, "udp"), "127.0.0.1:5353->53/udp"),
    (("::", 8080, 80, "tcp"), "[::]:8080->80/tcp"),
    (("2001:db8::1", 5353, 53, "udp"), "[2001:db8::1]:5353->53/udp"),
    (("::ffff:10.0.0.1", 1, 2, "sctp"), "[::ffff:10.0.0.1]:1->2/sctp"),
])
def test_format_mapping(args, shown):
    assert format_mapping(*args) == shown


# --- properties -------------------------------------------------------------

@st.composite
def port_specs(draw):
    protocol = draw(st.sampled_from(PROTOCOLS))
    count = draw(st.one_of(st.just(1), st.integers(1, 300)))
    port = draw(st.integers(1, 65536 - count))
    host_port = draw(st.one_of(st.none(), st.integers(1, 65536 - count)) if count == 1
                     else st.integers(1, 65536 - count))
    host_ip = draw(st.one_of(st.none(), st.ip_addresses().map(str)))
    return PortSpec(protocol, port, count, host_ip, host_port)


@st.composite
def spec_texts(draw):
    """Valid spec texts, written with the optional parts left out at random."""
    spec = draw(port_specs())

    def span(first):
        return f"{first}-{first + spec.count - 1}" if spec.count > 1 else str(first)

    text = span(spec.port)
    if spec.host_port is not None:
        text = f"{span(spec.host_port)}:{text}"
    if spec.host_ip is not None:
        ip = f"[{spec.host_ip}]" if ":" in spec.host_ip else spec.host_ip
        text = f"{ip}:{text}" if spec.host_port is not None else f"{ip}::{text}"
    if spec.protocol != "tcp" or draw(st.booleans()):
        text += f"/{spec.protocol}"
    return spec, text


@settings(max_examples=500, deadline=None)
@given(spec_texts())
def test_parse_generated_text(case):
    spec, text = case
    assert parse(text) == spec


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789:-/[].abcdefptu ", max_size=30))
def test_parse_returns_a_spec_or_invalid_input(text):
    try:
        spec = parse(text)
    except CnetError as e:
        assert isinstance(e, InvalidInput) and e.exit_code == 2
        return
    assert spec.protocol in PROTOCOLS
    assert 1 <= spec.port and spec.port + spec.count - 1 <= 65535
    if spec.host_port is not None:
        assert 1 <= spec.host_port and spec.host_port + spec.count - 1 <= 65535
    if spec.host_ip is not None:
        ipaddress.ip_address(spec.host_ip)
