"""Load and save time of a large cnet state file, and the YAML-vs-JSON comparison.

The state holds 10,000 sandboxes, 10,000 endpoints spread over 2 networks and
1,000 port mappings (--quick: 1,000 / 1,000 / 100). It is written once by
StateStore.save() -- cnet's JSON-compatible flow style -- and once as
block-style YAML (PyYAML's C dumper), the way a person editing the file by
hand might leave it. Then, in-process, each operation is timed with
time.perf_counter after one untimed warm-up call:

  StateStore.load()       read + json.loads + build the State objects
  StateStore.save()       encode + write temp file + fsync + rename + fsync dir
  lock + load + save      what an operation does with the file, changing nothing
  encode()                json.dumps of the whole state, no I/O
  json.loads              read + parse cnet's file, no State objects
  yaml CSafeLoader        read + parse the block-style file, no State objects
  yaml CSafeLoader        read + parse cnet's flow-style file (YAML parsing JSON)
  StateStore.load()       of the block-style file: json fails, then the C loader

The json.loads vs CSafeLoader rows are the figures behind cnet writing its
state in flow style: the same content, two parsers.

    .venv/bin/python bench/state_io.py [--quick] [--runs N] [--tmpdir DIR]
"""

from __future__ import annotations

import json
import os
import tempfile

import common

ENDPOINTS = 10_000
QUICK_ENDPOINTS = 1_000
NETWORKS = 2


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def main(argv: list[str] | None = None) -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--tmpdir", metavar="DIR", default=None,
                   help="where to write the state files (default: the system temp dir); "
                        "save() fsyncs, so the file system matters")
    args = common.parse(p, argv)
    endpoints = QUICK_ENDPOINTS if args.quick else ENDPOINTS
    ports = endpoints // 10

    import yaml

    from cnet.state import StateStore, encode

    if not hasattr(yaml, "CSafeLoader"):
        raise SystemExit("bench/state_io.py: this PyYAML has no C loader (libyaml); "
                         "the comparison would not be the one cnet makes")

    state = common.build_state(endpoints, networks=NETWORKS, ports=ports)

    with tempfile.TemporaryDirectory(prefix="cnet-bench-", dir=args.tmpdir) as tmp:
        flow_path = os.path.join(tmp, "state.yaml")
        block_path = os.path.join(tmp, "block", "state.yaml")
        os.makedirs(os.path.dirname(block_path))

        store = StateStore(flow_path)
        store.save(state)
        doc = json.loads(read(flow_path))
        with open(block_path, "w", encoding="utf-8") as f:
            yaml.dump(doc, f, Dumper=yaml.CSafeDumper, default_flow_style=False, sort_keys=False)
        block_store = StateStore(block_path)

        # Not timings: make sure both files hold the state that was built,
        # so every row below measures the same content.
        if store.load() != state:
            raise SystemExit("bench/state_io.py: StateStore.load() did not return the saved state")
        if block_store.load() != state:
            raise SystemExit("bench/state_io.py: the block-style file does not load to the same state")
        if yaml.load(read(block_path), Loader=yaml.CSafeLoader) != doc:
            raise SystemExit("bench/state_io.py: the block-style file does not parse to the same document")

        def transaction():
            with store.locked():
                store.save(store.load())

        # (label, file, function)
        cases = [
            ("StateStore.load()", "flow", store.load),
            ("StateStore.save()", "flow", lambda: store.save(state)),
            ("lock + load + save", "flow", transaction),
            ("encode() (no I/O)", "-", lambda: encode(state)),
            ("read + json.loads", "flow", lambda: json.loads(read(flow_path))),
            ("read + yaml.load(CSafeLoader)", "block", lambda: yaml.load(read(block_path), Loader=yaml.CSafeLoader)),
            ("read + yaml.load(CSafeLoader)", "flow", lambda: yaml.load(read(flow_path), Loader=yaml.CSafeLoader)),
            ("StateStore.load()", "block", block_store.load),
        ]
        results = []
        for label, which, fn in cases:
            results.append({"name": label, "file": which, **common.summary(common.time_call(fn, args.runs))})

        sizes = {"flow": os.path.getsize(flow_path), "block": os.path.getsize(block_path)}

    rows = [[f"`{r['name']}`", r["file"], common.ms(r["median"]), common.ms(r["min"]), common.ms(r["max"])]
            for r in results]
    print(f"### cnet state file I/O ({args.runs} runs; {endpoints:,} sandboxes, {endpoints:,} endpoints "
          f"on {NETWORKS} networks, {ports:,} port mappings)\n")
    print(common.markdown_table(["operation", "file", "median ms", "min ms", "max ms"], rows,
                                align=["l", "l", "r", "r", "r"]))

    def median(name, which):
        return next(r["median"] for r in results if r["name"] == name and r["file"] == which)

    json_parse = median("read + json.loads", "flow")
    yaml_block = median("read + yaml.load(CSafeLoader)", "block")
    load_flow = median("StateStore.load()", "flow")
    load_block = median("StateStore.load()", "block")
    print()
    print(common.markdown_table(
        ["file", "bytes", "size"],
        [["flow (cnet's, json.dumps indent=1)", f"{sizes['flow']:,}", common.human_size(sizes["flow"])],
         ["block-style YAML (CSafeDumper)", f"{sizes['block']:,}", common.human_size(sizes["block"])]],
        align=["l", "r", "r"]))
    print(f"\nparse only: yaml C loader on block YAML / json.loads = {yaml_block / json_parse:.1f}x; "
          f"StateStore.load() block / flow = {load_block / load_flow:.1f}x")

    path = common.write_results("state_io", args, {
        "sandboxes": endpoints,
        "endpoints": endpoints,
        "networks": NETWORKS,
        "ports": ports,
        "file_bytes": sizes,
        "tmpdir": args.tmpdir or tempfile.gettempdir(),
        "pyyaml": yaml.__version__,
    }, results)
    print(f"\nraw figures: {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
