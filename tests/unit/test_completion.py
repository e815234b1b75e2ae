"""Shell completion through click's protocol, in a subprocess, as bash drives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
STATE = {
    "version": 1,
    "networks": {"mybr0": {}, "net2": {}},
    "sandboxes": {"web": {}, "db": {}, "worker": {}},
    "endpoints": [],
    "ports": [
        {"sandbox": "web", "network": "mybr0", "protocol": "tcp", "host_ip": "0.0.0.0", "host_port": 8080, "port": 80},
        {"sandbox": "web", "network": "mybr0", "protocol": "udp", "host_ip": "::", "host_port": 9000, "port": 90,
         "count": 3},
        {"sandbox": "db", "network": "mybr0", "protocol": "tcp", "host_ip": "0.0.0.0", "host_port": 5432, "port": 5432},
    ],
}


def complete(words: str, state: Path | None, shell: str = "bash") -> subprocess.CompletedProcess:
    """What `cnet` answers when bash asks for the completions of the line `words`."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "PYTHONPATH": SRC, "_CNET_COMPLETE": f"{shell}_complete",
           "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    env.pop("CNET_STATE", None)
    if state is not None:
        env["CNET_STATE"] = str(state)
    return subprocess.run([sys.executable, "-m", "cnet"], env=env, capture_output=True, text=True, timeout=30)


def offered(words: str, state: Path | None) -> list[str]:
    result = complete(words, state)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


@pytest.fixture
def state(tmp_path) -> Path:
    path = tmp_path / "state.yaml"
    path.write_text(json.dumps(STATE))
    return path


@pytest.mark.parametrize("words, expected", [
    ("cnet att", ["attach"]),
    ("cnet attach ", ["db", "web", "worker"]),
    ("cnet attach w", ["web", "worker"]),
    ("cnet attach web ", ["mybr0", "net2"]),
    ("cnet detach web n", ["net2"]),
    ("cnet exec ", ["db", "web", "worker"]),
    ("cnet publish d", ["db"]),
    ("cnet unpublish web ", ["8080:80/tcp", "9000-9002:90-92/udp"]),
    ("cnet unpublish db ", ["5432:5432/tcp"]),
    ("cnet inspect ", ["db", "mybr0", "net2", "web", "worker"]),
    ("cnet delete bridge ", ["mybr0", "net2"]),
    ("cnet rm ns wo", ["worker"]),
    ("cnet ls ", ["networks", "ns", "endpoints", "ports", "routers"]),
    ("cnet attach web mybr0 --i", ["--ip", "--ifname", "--ingress-rate", "--ingress-burst"]),
    ("cnet completion ", ["bash", "zsh", "fish"]),
])
def test_names_complete_from_the_state_file(state, words, expected):
    assert offered(words, state) == expected


def test_the_state_option_on_the_line_is_the_file_read(state, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(json.dumps({**STATE, "sandboxes": {"solo": {}}}))
    assert offered(f"cnet --state {other} attach ", state) == ["solo"]


@pytest.mark.parametrize("content", [None, "", "{not json", "[1, 2]", '{"sandboxes": [1]}'])
def test_an_unreadable_state_file_completes_nothing_and_says_nothing(tmp_path, content):
    path = tmp_path / "state.yaml"
    if content is not None:
        path.write_text(content)
    assert offered("cnet attach ", path) == []


def test_completion_takes_no_lock_and_changes_nothing(state):
    before = state.read_bytes()
    offered("cnet attach ", state)
    assert state.read_bytes() == before
    assert sorted(p.name for p in state.parent.iterdir()) == ["state.yaml"]


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F _cnet_completion cnet"),
                                            ("zsh", "compdef _cnet_completion cnet"),
                                            ("fish", "complete --no-files --command cnet")])
def test_completion_prints_the_script_of_each_shell(shell, marker):
    env = {**os.environ, "PYTHONPATH": SRC}
    result = subprocess.run([sys.executable, "-m", "cnet", "completion", shell], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0 and marker in result.stdout and "_CNET_COMPLETE" in result.stdout


def test_an_unknown_shell_is_a_usage_error():
    env = {**os.environ, "PYTHONPATH": SRC}
    result = subprocess.run([sys.executable, "-m", "cnet", "completion", "tcsh"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1


def test_help_lists_every_command_once_in_its_section():
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-m", "cnet", "--help"], env=env, capture_output=True, text=True,
                         timeout=30).stdout
    from cnet.cli import SECTIONS, cli

    for title, _ in SECTIONS:
        assert f"\n{title}:\n" in out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and not line.startswith("   ")
              and line.split()[0] in cli.commands]
    assert sorted(listed) == sorted(cli.commands)
    assert "Examples:" in out


def test_every_command_s_help_ends_with_examples():
    import click

    from cnet.cli import cli

    def leaves(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from leaves(sub, [*path, name])
        else:
            yield " ".join(path), command

    for path, command in leaves(cli, ["cnet"]):
        text = command.get_help(click.Context(command, info_name=path))
        assert "Example" in text, f"`{path} --help` has no examples"
