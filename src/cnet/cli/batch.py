"""`cnet batch`: cnet commands one a line, in one process under one lock (like `ip -batch`)."""

import shlex
import sys

import click

from ..errors import CnetError, InvalidInput
from .output import json_option, usage_message

NOT_IN_BATCH = ("batch", "exec", "check", "restore", "gc", "apply")  # the last four take the lock themselves


class LineFailed(CnetError):
    """A line of a batch failed; carries that line's exit code."""


@click.command("batch")
@click.argument("source", type=click.File("r"), default="-", metavar="[FILE|-]")
@json_option
@click.pass_context
def batch(ctx, source, json_out):
    """Run cnet commands read one a line from FILE (or stdin), without `cnet`.

    Blank lines and # comments are skipped. The batch stops at the first line
    that fails, with its line number; what the lines before it did stays
    done and recorded.

    With --json, each line runs with --json and prints its document on one
    line (JSON Lines): one line of output per command line.

    \b
    Examples:
      cnet batch setup.txt
      printf 'create ns web --network mybr0\\npublish web 8080:80\\n' | cnet batch
    """
    from . import cli

    obj = ctx.obj
    obj.json_lines = json_out  # as_json: one line a document
    with obj.api.batch():
        for number, line in enumerate(source, start=1):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as e:
                raise _failed(number, InvalidInput(f"cannot split the line: {e}")) from None
            if words[:1] == ["cnet"]:
                words = words[1:]
            if not words:
                continue
            if words[0] in NOT_IN_BATCH or words[0].startswith("-"):
                raise _failed(number, InvalidInput(
                    f"{words[0]!r} cannot be used in a batch (global options go before `batch`)"))
            if json_out:
                words.append("--json")
            try:
                cli.main(args=words, prog_name="cnet", standalone_mode=False, obj=obj)
            except click.UsageError as e:
                raise _failed(number, InvalidInput(usage_message(e))) from None
            except CnetError as e:
                raise _failed(number, e) from e
            sys.stdout.flush()


def _failed(number: int, error: CnetError) -> LineFailed:
    failed = LineFailed(f"line {number}: {error}")
    failed.exit_code = error.exit_code
    return failed
