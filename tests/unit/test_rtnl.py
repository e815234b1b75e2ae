"""kernel/rtnl.py's exchange: what it makes of the kernel's answers, read from
a socket stand-in that hands back netlink messages as the kernel frames them
(pyroute2's classes encode them; the framing, sequence numbers and error
codes are the part rtnl.py does itself)."""

import errno
import struct

import pytest

from cnet.kernel.pyroute import NetlinkError
from cnet.kernel.rtnl import NLMSG_DONE, NLMSG_ERROR, RTM_GETLINK, RTM_NEWLINK, Rtnl


class Answers:
    """A socket that records what is sent and answers with the chunks given, one per recv()."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.sent = []

    def send(self, data):
        self.sent.append(bytes(data))

    def recv(self, size):
        return self.chunks.pop(0)

    def close(self):
        pass


def handle(chunks) -> tuple[Rtnl, Answers]:
    r = Rtnl.__new__(Rtnl)
    r._sequence = 0
    r.sock = Answers(chunks)
    return r, r.sock


def link(name: str, index: int, sequence: int) -> bytes:
    r, _ = handle([])
    msg = r.message(r.link, {"index": index}, [["IFLA_IFNAME", name]])
    msg["header"].update(type=RTM_NEWLINK, flags=0x2, sequence_number=sequence)
    msg.encode()
    return bytes(msg.data)


def control(kind: int, sequence: int, code: int = 0) -> bytes:
    payload = struct.pack("=i", -code) + (bytes(16) if kind == NLMSG_ERROR else b"")
    return struct.pack("=IHHII", 16 + len(payload), kind, 0, sequence, 0) + payload


def test_a_dump_in_two_parts_ends_at_done_and_skips_answers_to_other_requests():
    first = link("lo", 1, 1) + link("stray", 9, 7) + link("eth0", 2, 1)
    r, sock = handle([first, link("eth1", 3, 1) + control(NLMSG_DONE, 1)])
    got = r.dump(r.message(r.link), RTM_GETLINK)
    assert [(m.get("ifname"), m["index"]) for m in got] == [("lo", 1), ("eth0", 2), ("eth1", 3)]
    length, kind, flags, sequence, _ = struct.unpack_from("=IHHII", sock.sent[0])
    assert (kind, flags & 0x301, sequence, length) == (RTM_GETLINK, 0x301, 1, len(sock.sent[0]))


def test_an_acknowledgement_ends_a_request_and_an_error_raises_the_kernels_errno():
    r, _ = handle([link("eth0", 2, 1) + control(NLMSG_ERROR, 1), control(NLMSG_ERROR, 2, errno.ENODEV)])
    got = r.request(r.message(r.link, attrs=[["IFLA_IFNAME", "eth0"]]), RTM_GETLINK)
    assert [m.get("ifname") for m in got] == ["eth0"]
    with pytest.raises(NetlinkError) as refused:
        r.request(r.message(r.link, attrs=[["IFLA_IFNAME", "gone"]]), RTM_GETLINK)
    assert refused.value.code == errno.ENODEV


def test_an_old_acknowledgement_left_unread_is_not_taken_for_the_next_answer():
    r, _ = handle([control(NLMSG_ERROR, 1), control(NLMSG_ERROR, 1, errno.EEXIST) + control(NLMSG_ERROR, 2)])
    assert r.request(r.message(r.link), RTM_NEWLINK) == []
    assert r.request(r.message(r.link), RTM_NEWLINK) == []  # the EEXIST was for request 1


def test_a_message_shorter_than_its_header_is_an_error_not_a_loop():
    r, _ = handle([struct.pack("=IHHII", 8, RTM_NEWLINK, 0, 1, 0)])
    with pytest.raises(NetlinkError) as bad:
        r.request(r.message(r.link), RTM_GETLINK)
    assert bad.value.code == errno.EBADMSG
