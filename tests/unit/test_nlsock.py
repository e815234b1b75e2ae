"""The netlink message codec (kernel/nlsock.py), on bytes alone: no socket
reaches the kernel here (a fake one answers)."""

import errno
import socket
import struct

import pytest

from cnet.kernel import nlsock
from cnet.kernel.nlsock import NetlinkError

HEADER = struct.Struct("=IHHII")


def test_an_attribute_is_padded_to_four_bytes():
    assert nlsock.attr(3, b"ab") == struct.pack("=HH", 6, 3) + b"ab\0\0"
    assert nlsock.attr(3, b"abcd") == struct.pack("=HH", 8, 3) + b"abcd"
    assert nlsock.string(3, "br0") == struct.pack("=HH", 8, 3) + b"br0\0"
    assert nlsock.u32(4, 1500) == struct.pack("=HHI", 8, 4, 1500)


def test_a_nest_holds_its_attributes_and_flags_itself_on_request():
    inner = nlsock.u8(4, 1)
    assert nlsock.nest(12, inner) == struct.pack("=HH", 4 + len(inner), 12) + inner
    flagged = nlsock.nest(12, inner, flag=True)
    assert struct.unpack_from("=HH", flagged)[1] == 12 | nlsock.NLA_F_NESTED


def test_parse_reads_back_what_was_built_whatever_the_flags():
    data = (nlsock.string(3, "eth0") + nlsock.u32(4, 9000)
            + nlsock.nest(18, nlsock.string(1, "veth"), flag=True) + nlsock.u8(16, 6))
    attrs = nlsock.parse(data)
    assert nlsock.as_str(attrs[3]) == "eth0"
    assert nlsock.as_u32(attrs[4]) == 9000
    assert nlsock.as_str(nlsock.parse(attrs[18])[1]) == "veth"
    assert attrs[16][0] == 6


def test_parse_stops_at_a_truncated_attribute():
    data = nlsock.u32(4, 1) + struct.pack("=HH", 2, 5)  # a length below the header's
    assert list(nlsock.parse(data)) == [4]


def test_addresses_are_shown_by_their_length():
    assert nlsock.as_ip(socket.inet_pton(socket.AF_INET, "10.1.2.3")) == "10.1.2.3"
    assert nlsock.as_ip(socket.inet_pton(socket.AF_INET6, "fd00::1")) == "fd00::1"
    assert nlsock.as_ip(None) is None


def error_payload(code: int, message: str | None) -> tuple[bytes, int]:
    payload = struct.pack("=i", -code) + HEADER.pack(16, 16, 0x605, 1, 0)
    if message is None:
        return payload, 0
    return payload + nlsock.string(1, message), 0x200


def test_an_error_carries_errno_and_the_kernels_message():
    payload, flags = error_payload(errno.EEXIST, "Link already exists")
    e = nlsock.error_of(errno.EEXIST, payload, flags, capped=True)
    assert isinstance(e, OSError) and e.code == errno.EEXIST
    assert e.strerror == "File exists (Link already exists)"


def test_an_error_without_a_message_is_strerror_alone():
    payload, flags = error_payload(errno.ENODEV, None)
    assert nlsock.error_of(errno.ENODEV, payload, flags, capped=True).strerror == "No such device"


class FakeSocket:
    """Answers each send with the datagrams given, in order."""

    def __init__(self, *datagrams):
        self.datagrams = list(datagrams)
        self.sent = []

    def send(self, data):
        self.sent.append(data)

    def recv(self, size):
        return self.datagrams.pop(0)


def message(kind, seq, payload, flags=0):
    padded = payload + b"\0" * (-len(payload) % 4)
    return HEADER.pack(16 + len(payload), kind, flags, seq, 0) + padded


def fake(*datagrams):
    s = nlsock.Socket.__new__(nlsock.Socket)
    s._sock, s._seq, s._capped = FakeSocket(*datagrams), 0, True
    return s


def test_a_request_returns_the_answers_before_its_ack_and_skips_stale_ones():
    s = fake(message(16, 0, b"stale") + message(16, 1, b"link"), message(2, 1, struct.pack("=i", 0)))
    assert s.request(18, b"body") == [(16, b"link")]
    length, kind, flags, seq, _ = HEADER.unpack_from(s._sock.sent[0])
    assert (length, kind, seq) == (20, 18, 1) and flags & nlsock.F_ACK and flags & nlsock.F_REQUEST


def test_a_dump_spans_datagrams_until_done():
    s = fake(message(16, 1, b"a") + message(16, 1, b"b"), message(16, 1, b"c") + message(3, 1, struct.pack("=i", 0)))
    assert [p[:1] for _, p in s.dump(18, b"")] == [b"a", b"b", b"c"]


def test_a_refused_request_raises_netlink_error():
    payload, flags = error_payload(errno.EPERM, "not allowed")
    s = fake(message(2, 1, payload, flags))
    with pytest.raises(NetlinkError) as caught:
        s.request(16, b"")
    assert caught.value.code == errno.EPERM and "not allowed" in caught.value.strerror
