"""The benchmarks' test data (bench/common.build_state) is built with the
model's own constructors and survives a save and a load: CI runs the
benchmarks after the tests, and a model change that breaks them should fail
here first."""

import importlib.util
from pathlib import Path

from cnet.state import StateStore

BENCH_COMMON = Path(__file__).resolve().parents[2] / "bench" / "common.py"


def _bench_common():
    spec = importlib.util.spec_from_file_location("bench_common", BENCH_COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_state_round_trips_through_the_state_file(tmp_path):
    state = _bench_common().build_state(7, networks=2, ports=5)
    assert len(state.sandboxes) == 7
    assert len(state.endpoints) == 7
    assert len(state.ports) == 5
    # each network's IPAM cursor is its last address handed out
    assert state.networks["bench0"].subnets[0].last == "10.100.0.5"
    assert state.networks["bench1"].subnets[0].last == "10.101.0.4"
    path = str(tmp_path / "state.yaml")
    StateStore(path).save(state)
    loaded = StateStore(path).load()  # a store of its own, so that the file is decoded
    assert loaded.networks == state.networks
    assert loaded.endpoints == state.endpoints
    assert loaded.ports == state.ports
