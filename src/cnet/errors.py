"""The errors cnet raises, each carrying the exit code the CLI contract gives it.

Only the CLI turns these into output; every other layer raises them with a
message that says what went wrong and why, in one line.
"""


class CnetError(Exception):
    """Base class. Exit code 1: the operation failed (and was rolled back)."""

    exit_code = 1


class OperationFailed(CnetError):
    """A kernel or file operation failed; whatever was applied was undone."""

    exit_code = 1


class Incomplete(CnetError):
    """A teardown went through every step, but some kernel objects could not be
    removed: the state keeps the records of those (and drops the rest), and the
    message names them. Running the same delete again finishes it."""

    exit_code = 1


class StateFileError(CnetError):
    """The state file cannot be read (unparseable, unknown version). Never overwritten."""

    exit_code = 1


class InvalidInput(CnetError):
    """Bad usage or an invalid value (exit 2)."""

    exit_code = 2


class NotFound(CnetError):
    """A named object does not exist (exit 3)."""

    exit_code = 3


class Conflict(CnetError):
    """Exists already, in use, address taken, pool exhausted (exit 4)."""

    exit_code = 4


# Every character str.splitlines() (and so a log reader or a script) breaks
# a line at, each to be shown as its escape: "\n" as \n, "\u2028" as \u2028.
_SHOW_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(message: str) -> str:
    """message with every line break it holds (a value a user gave may carry
    one) shown as an escape, so that `cnet: error: ...` stays one line."""
    return message.translate(_SHOW_LINE_BREAKS)
