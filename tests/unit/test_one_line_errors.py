"""A line break in a value the user gave (a newline, U+2028, any character
str.splitlines() breaks at) never splits `cnet: error: ...`: it is shown
escaped, as \\n or \\u2028, in cnet's own errors and in click's usage errors.

Through the CLI in-process, kept away from the kernel as in test_cli_errors
(every command here fails validation first).
"""

import sys

import click
import pytest

from cnet.cli.output import usage_message
from test_cli_errors import isolated, one_error_line, run  # noqa: F401 (isolated: an autouse fixture)

# Every character that breaks a line, found the way a reader of the output would.
LINE_BREAKS = [chr(i) for i in range(sys.maxunicode + 1) if len(f"a{chr(i)}b".splitlines()) > 1]


def shown(c: str) -> str:
    """How the error line shows c: \\n, \\x85, \\u2028."""
    return repr(c)[1:-1]


def test_the_line_breaks_are_those_the_brief_names():
    assert LINE_BREAKS == list("\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029")


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state.yaml")


@pytest.mark.parametrize("c", LINE_BREAKS, ids=[shown(c) for c in LINE_BREAKS])
def test_a_value_cnet_does_not_quote_is_escaped(capsys, state, c):
    code, out, err = run(capsys, "--state", state, "inspect", f"x{c}y")
    assert code == 3
    assert one_error_line(err) == f"network x{shown(c)}y not found"


@pytest.mark.parametrize("c", LINE_BREAKS, ids=[shown(c) for c in LINE_BREAKS])
def test_a_path_in_an_error_is_escaped(capsys, state, tmp_path, c):
    config = tmp_path / f"con{c}fig.yaml"
    code, out, err = run(capsys, "--state", state, "--config", str(config),
                         "create", "bridge", "cnett0", "--subnet", "10.99.0.0/24")
    assert code == 2
    assert one_error_line(err) == f"config file {tmp_path}/con{shown(c)}fig.yaml does not exist"


@pytest.mark.parametrize("c", ["\n", "\u2028", "\x85"], ids=shown)
def test_a_value_click_does_not_quote_is_escaped(capsys, state, c):
    code, out, err = run(capsys, "--state", state, "ls", "ports", f"a{c}b")
    assert code == 2
    assert one_error_line(err) == f"Got unexpected extra argument (a{shown(c)}b) (see 'cnet ls --help')"


@pytest.mark.parametrize("argv, message", [
    (["ls", "x\u2028y"], "Invalid value for '[networks|ns|endpoints|ports|routers]': 'x\\u2028y' is not one of"),
    (["fr\nob"], "No such command 'fr\\nob'"),
    (["create", "bridge", "br1", "--mtu", "1\r2"], "Invalid value for '--mtu': '1\\r2' is not a valid integer"),
    (["create", "bridge", "a\u2029b"], "network name 'a\\u2029b' contains '\\u2029'"),
    (["create", "ns", "a\nb"], "sandbox name 'a\\nb' is invalid"),
])
def test_values_quoted_before_stay_as_they_were(capsys, state, argv, message):
    code, out, err = run(capsys, "--state", state, *argv)
    assert code == 2
    assert one_error_line(err).startswith(message)


def test_a_batch_line_holding_a_line_break_fails_on_one_line(capsys, state, tmp_path):
    lines = tmp_path / "lines"
    lines.write_text("ls\ncreate bridge 'a\u2028b'\n")  # no newline inside: the file is read by \n
    code, out, err = run(capsys, "--state", state, "batch", str(lines))
    assert code == 2
    assert one_error_line(err) == (
        "line 2: network name 'a\\u2028b' contains '\\u2028', which an interface name cannot hold")


def test_a_plain_message_is_left_as_it_is(capsys, state):
    code, out, err = run(capsys, "--state", state, "inspect", "a\tb c")  # tabs and spaces do not break lines
    assert one_error_line(err) == "network a\tb c not found"


def test_clicks_own_second_line_is_put_back_on_the_first():
    """click lays a missing choice's list out a line each, "Choose from:\\n\\t...": no
    cnet command has a required choice today, so a command of the test's own."""
    @click.command()
    @click.argument("what", type=click.Choice(["networks", "ports"]))
    def command(what):
        pass

    with pytest.raises(click.UsageError) as info:
        command.main(args=[], standalone_mode=False)
    assert usage_message(info.value) == "Missing argument '{networks|ports}'. Choose from: networks, ports"
