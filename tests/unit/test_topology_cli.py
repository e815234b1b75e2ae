"""cnet apply --dry-run, export and graph from the command line, on a state
file of the test's own: they only read, so no kernel is touched (a bad file
is refused before the lock is taken)."""

from __future__ import annotations

import pytest

from apply_fake import FakeCnet
from cnet.cli import main
from cnet.core import apply_plan, topology
from cnet.state import StateStore

LAB = "networks:\n  front: {subnet: 10.1.0.0/24}\nsandboxes:\n  web: {networks: {front: {ip: 10.1.0.10}}}\n"


@pytest.fixture
def files(tmp_path, monkeypatch):
    for var in ("CNET_STATE", "CNET_FIREWALL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "config.yaml").write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(tmp_path / "config.yaml"))
    (tmp_path / "lab.yaml").write_text(LAB)
    return tmp_path


def cnet(files, capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(["--state", str(files / "state.yaml"), *args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_dry_run_prints_the_plan_and_exits_5_when_something_would_change(files, capsys):
    code, out, err = cnet(files, capsys, "apply", "--dry-run", str(files / "lab.yaml"))
    assert (code, err) == (5, "")
    assert out == "+ create network front (bridge 10.1.0.0/24)\n+ create sandbox web (on front (10.1.0.10))\n"
    assert not (files / "state.yaml").exists()


def test_dry_run_of_what_is_there_and_export_plan_nothing(files, capsys):
    fake = FakeCnet()
    fake.run(apply_plan.plan(fake.state, topology.load(LAB)))
    StateStore(str(files / "state.yaml")).save(fake.state)
    assert cnet(files, capsys, "apply", "--dry-run", str(files / "lab.yaml")) == (0, "no changes\n", "")
    code, exported, _ = cnet(files, capsys, "export")
    assert code == 0 and "ip: 10.1.0.10" in exported
    (files / "export.yaml").write_text(exported)
    assert cnet(files, capsys, "apply", "--dry-run", "--prune", str(files / "export.yaml")) == (0, "no changes\n", "")


def test_a_bad_file_is_one_error_line_with_exit_2(files, capsys):
    (files / "bad.yaml").write_text(LAB.replace("10.1.0.10", "10.9.0.10"))
    for args in (["apply", "--dry-run"], ["apply"], ["graph"]):
        code, out, err = cnet(files, capsys, *args, str(files / "bad.yaml"))
        assert (code, out) == (2, "")
        assert err == (f"cnet: error: {files}/bad.yaml line 4: sandboxes.web.networks.front.ip: 10.9.0.10 is outside"
                       " the subnet(s) 10.1.0.0/24 of network front\n")
    assert not (files / "state.yaml").exists()


def test_graph_writes_dot_text_to_stdout_or_a_file(files, capsys):
    code, out, _ = cnet(files, capsys, "graph", str(files / "lab.yaml"))
    assert code == 0 and out.startswith("digraph cnet {") and '"sb:web" -> "net:front" [label="10.1.0.10"];' in out
    code, _, _ = cnet(files, capsys, "graph", "-o", str(files / "lab.dot"), str(files / "lab.yaml"))
    assert code == 0 and (files / "lab.dot").read_text() == out


def test_svg_without_graphviz_names_the_package(files, capsys, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out, err = cnet(files, capsys, "graph", "--format", "svg", str(files / "lab.yaml"))
    assert (code, out) == (1, "") and "Debian package graphviz" in err and len(err.splitlines()) == 1
