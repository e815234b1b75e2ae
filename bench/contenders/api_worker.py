"""cnet's Python API in one process, driven by bench/peers.py (inside a test host).

Reads one JSON request a line on stdin and answers one JSON line on stdout:

    {"op": "create", "items": [[name, spec], ...], "network": NET}
        api.create_ns(name, network=NET, publish=[spec]) for each item (spec null: none)
    {"op": "delete", "names": [...]}      api.delete_ns(name) for each
    {"op": "publish", "ns": NAME, "specs": [...]}   api.publish(NAME, spec) for each
    {"op": "exit"}

The answer is {"times": [seconds of each call]}, or {"error": "..."} (the
worker then exits). The first line it writes gives the time of
`from cnet.core import Cnet` and of `Cnet()`.
"""

import json
import os
import sys
import time

# This file's folder holds modules (cni.py, ...) that must not shadow installed ones.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]


def main() -> int:
    t0 = time.perf_counter()
    from cnet.core import Cnet
    t1 = time.perf_counter()
    api = Cnet()
    t2 = time.perf_counter()
    out = sys.stdout
    out.write(json.dumps({"import": t1 - t0, "init": t2 - t1}) + "\n")
    out.flush()
    clock = time.perf_counter
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "exit":
            return 0
        times = []
        try:
            if op == "create":
                network = req["network"]
                for name, spec in req["items"]:
                    t = clock()
                    api.create_ns(name, network=network, publish=[spec] if spec else [])
                    times.append(clock() - t)
            elif op == "delete":
                for name in req["names"]:
                    t = clock()
                    api.delete_ns(name)
                    times.append(clock() - t)
            elif op == "publish":
                ns = req["ns"]
                for spec in req["specs"]:
                    t = clock()
                    api.publish(ns, spec)
                    times.append(clock() - t)
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as e:  # reported to the harness, which fails the run
            out.write(json.dumps({"error": f"{op} after {len(times)} calls: {type(e).__name__}: {e}"}) + "\n")
            out.flush()
            return 1
        out.write(json.dumps({"times": times}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
