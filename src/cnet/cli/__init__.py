"""The `cnet` command line: parse, call one core operation, print the result.

Only this package prints and chooses exit codes. Errors are one line on
stderr, `cnet: error: ...`, with the exit code of the error's class (see
errors.py); `--debug` adds the traceback. Core modules are imported inside
the commands, so `--help` and `--version` stay quick.
"""

from __future__ import annotations

import os
import signal
import sys

import click

from .. import __version__
from ..config import FIREWALLS
from ..errors import CnetError, one_line
from .attach import attach, detach, exec_
from .batch import batch
from .completion import COMPLETE_VAR, completion
from .create import create
from .delete import delete, rm
from .explain import explain
from .lifecycle import check, gc, restore
from .limit import limit
from .output import usage_message
from .overlay import agent, overlay
from .ports import publish, unpublish
from .show import inspect, ls
from .topology import apply, export, graph


class Context:
    """What the global options chose; the core API object is made on first use."""

    def __init__(self, state, config, firewall, debug, quiet=False):
        self.state, self.config, self.firewall, self.debug = state, config, firewall, debug
        self.quiet = quiet
        self._api = None

    @property
    def api(self):
        if self._api is None:
            from ..core import Cnet

            self._api = Cnet(state=self.state, config=self.config, firewall=self.firewall)
        return self._api

    def print_warnings(self) -> None:
        if self.quiet:
            return
        for warning in self._api.warnings if self._api else ():
            click.echo(f"cnet: warning: {one_line(warning)}", err=True)


# `cnet --help` lists the commands by what they act on; a command missing here is listed under "other".
SECTIONS = [
    ("Networks and sandboxes", ["create", "attach", "detach", "limit", "exec", "delete", "rm"]),
    ("Ports", ["publish", "unpublish", "explain"]),
    ("Seeing what is there", ["ls", "inspect"]),
    ("Lifecycle", ["check", "restore", "gc"]),
    ("Across hosts", ["agent", "overlay"]),
    ("Many at once", ["batch"]),
    ("Topologies", ["apply", "export", "graph"]),
    ("Shell", ["completion"]),
]


class SectionedGroup(click.Group):
    """click's group, with its commands listed in SECTIONS' groups."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}
        placed = {name for _, names in SECTIONS for name in names}
        sections = SECTIONS + [("Other", sorted(set(commands) - placed))]
        width = formatter.width - 6 - max(map(len, commands), default=0)
        for title, names in sections:
            rows = [(n, commands[n].get_short_help_str(width)) for n in names if n in commands]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=SectionedGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Examples:\n\n\b\n  cnet create bridge mybr0 --subnet 172.26.0.0/16\n"
                    "  cnet create ns web --network mybr0 --publish 8080:80\n  cnet explain web 80\n\n"
                    "'cnet COMMAND --help' tells more of each.")
@click.option("--state", metavar="PATH", help="State file (default /var/lib/cnet/state.yaml; env CNET_STATE).")
@click.option("--config", metavar="PATH", help="Config file (default /etc/cnet/config.yaml; env CNET_CONFIG).")
@click.option("--firewall", type=click.Choice(FIREWALLS), envvar="CNET_FIREWALL",
              help="Firewall backend (env CNET_FIREWALL; default from the config file, else nftables).")
@click.option("--store", metavar="URL", help="The overlays' etcd store (env CNET_STORE, else the config's store:).")
@click.option("-v", "--verbose", is_flag=True, help="One line on stderr per kernel and firewall change, as it happens.")
@click.option("-q", "--quiet", is_flag=True, help="No warnings (errors still print).")
@click.option("--debug", is_flag=True, help="Show a traceback with errors.")
@click.version_option(__version__, "--version", prog_name="cnet", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx, state, config, firewall, store, verbose, quiet, debug):
    """cnet: container networking for any network namespace, without a daemon."""
    if store:
        os.environ["CNET_STORE"] = store  # what store_url reads after a command's own --store
    if verbose:
        from .. import verbose as changes

        changes.enable()
    if ctx.obj is None:  # a line of `cnet batch` runs with the batch's own context
        ctx.obj = Context(state, config, firewall, debug, quiet)
        ctx.call_on_close(ctx.obj.print_warnings)


for command in (create, attach, detach, exec_, limit, publish, unpublish, ls, inspect, delete, rm, batch,
                check, restore, gc, completion, explain, apply, export, graph, agent, overlay):
    cli.add_command(command)


def _fail(message: str, code: int) -> None:
    click.echo(f"cnet: error: {one_line(message)}", err=True)
    sys.exit(code)


def _global_debug(args: list[str]) -> bool:
    """--debug among the global options (not in `cnet exec NS -- cmd --debug`)."""
    takes_value = {"--state", "--config", "--firewall", "--store"}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "--debug":
            return True
        i += 2 if args[i] in takes_value else 1
    return False


def _terminated(signum, frame):
    raise KeyboardInterrupt  # so that a transaction in progress is rolled back


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = _global_debug(args)
    if debug:
        _log_debug_to_stderr()
    signal.signal(signal.SIGTERM, _terminated)
    if COMPLETE_VAR in os.environ:  # the shell asks for completions (click's protocol): click answers and exits
        cli.main(args=args, prog_name="cnet", complete_var=COMPLETE_VAR)
    if not args:
        _fail("missing command (see 'cnet --help')", 2)
    try:
        result = cli.main(args=args, prog_name="cnet", standalone_mode=False)
    except click.UsageError as e:
        where = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        _fail(usage_message(e).rstrip(".") + where, 2)
    except CnetError as e:
        if debug:
            _print_traceback()
        _fail(str(e) + _privilege_hint(e), e.exit_code)
    except (KeyboardInterrupt, click.Abort):
        _fail("interrupted", 130)
    except OSError as e:  # a file or device cnet needs: still one line
        if debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        _fail(f"{e.strerror or e}{where}{_privilege_hint(e)}", 1)
    except Exception as e:  # a bug or an unforeseen failure: still one line, unless --debug
        if debug:
            raise
        _fail(f"unexpected {type(e).__name__}: {e} (run with --debug for a traceback)", 1)
    sys.exit(result if isinstance(result, int) else 0)


def _privilege_hint(error: BaseException) -> str:
    """What to add to an error that the kernel refused for want of privilege
    (EPERM from a system call or netlink, anywhere in the chain of causes)."""
    import errno

    seen = error
    while seen is not None:
        if getattr(seen, "errno", None) == errno.EPERM or getattr(seen, "code", None) == errno.EPERM:
            return " (cnet needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)"
        seen = seen.__cause__ or seen.__context__
    return ""


def _log_debug_to_stderr() -> None:
    """--debug: cnet's own debug log (an undo step that failed, ...) on stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cnet: debug: %(message)s"))
    log = logging.getLogger("cnet")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def _print_traceback() -> None:
    import traceback  # only with --debug: ~3 ms of every start otherwise

    traceback.print_exc()
