"""Tiny servers and clients for the kernel tests: each answer says who asked.

    python netprobe.py serve tcp|udp PORT [--bind ADDR]   # prints "ready", then answers with the peer's address
    python netprobe.py ask tcp|udp HOST PORT [--timeout S] [--sport N]   # prints the answer; exit 1 if none

The server stops by itself after --lifetime seconds (default 120), so no test
leaves a listener behind even if it forgets to stop it.
"""

import argparse
import socket
import sys
import time


def serve(proto: str, port: int, bind: str, lifetime: float) -> None:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((bind, port))
    if proto == "tcp":
        s.listen(16)
    s.settimeout(0.5)
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        try:
            if proto == "tcp":
                conn, peer = s.accept()
                with conn:
                    conn.sendall(_peer(peer).encode())
            else:
                _, peer = s.recvfrom(2048)
                s.sendto(_peer(peer).encode(), peer)
        except socket.timeout:
            continue


def _peer(peer) -> str:
    host = peer[0]
    return host[7:] if host.startswith("::ffff:") else host


def ask(proto: str, host: str, port: int, timeout: float, sport: int) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    s.settimeout(timeout)
    if sport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", sport))
    try:
        if proto == "tcp":
            s.connect((host, port))
            answer = s.recv(2048)
        else:
            answer = b""
            for _ in range(int(timeout / 0.3) + 1):  # a datagram may meet an ARP not yet answered
                s.sendto(b"?", (host, port))
                try:
                    answer = s.recv(2048)
                    break
                except socket.timeout:
                    continue
    except OSError as e:
        print(f"no answer: {e}", file=sys.stderr)
        return 1
    finally:
        s.close()
    if not answer:
        return 1
    print(answer.decode())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("proto", choices=["tcp", "udp"])
    p.add_argument("port", type=int)
    p.add_argument("--bind", default="::")
    p.add_argument("--lifetime", type=float, default=120)
    a = sub.add_parser("ask")
    a.add_argument("proto", choices=["tcp", "udp"])
    a.add_argument("host")
    a.add_argument("port", type=int)
    a.add_argument("--timeout", type=float, default=2)
    a.add_argument("--sport", type=int, default=0)
    args = parser.parse_args()
    if args.cmd == "serve":
        serve(args.proto, args.port, args.bind, args.lifetime)
        return 0
    return ask(args.proto, args.host, args.port, args.timeout, args.sport)


if __name__ == "__main__":
    sys.exit(main())
