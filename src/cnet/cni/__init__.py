"""`cnet-cni`: cnet as a CNI plugin (spec 1.0.0 and 1.1.0) for podman,
containerd and any other CNI runtime.

The runtime runs it with CNI_COMMAND and the other CNI_* variables in the
environment and the network configuration on stdin; the answer goes to
stdout as the spec's JSON (a result, version information, or an error with
its code, msg and details), anything meant for a person to stderr. Installed
as `cnet` in the runtime's plugin directory, it serves conflist entries
`{"type": "cnet", "network": NET}`.

    protocol.py  the spec: requests, results, errors (pure)
    mapping.py   the entry's keys and runtimeConfig in cnet's terms (pure)
    registry.py  which sandboxes and endpoints are the runtime's
    plugin.py    the commands, done with cnet.core.Cnet
"""

from __future__ import annotations

import gc
import json
import os
import sys

from ..errors import CnetError, one_line
from . import protocol
from .protocol import CniError


def main() -> None:
    # One call, then the process ends: the cyclic garbage collector would only
    # walk the objects of the imports (pyroute2's hundreds of message classes)
    # over and over, ~10% of an ADD, to free nothing that matters before exit.
    gc.disable()
    status = run(os.environ, sys.stdin, sys.stdout, sys.stderr)
    gc.freeze()
    sys.exit(status)


def run(environ, stdin, stdout, stderr) -> int:
    """One call: 0 when it succeeded, 1 when it answered with an error."""
    config = None
    try:
        try:
            text = stdin.read()
        except (OSError, UnicodeDecodeError) as e:
            raise CniError(protocol.IO_FAILURE, "cannot read the network configuration from stdin", str(e)) from None
        command = protocol.parse_command(environ)
        if command == "VERSION":
            _write(stdout, protocol.version_answer(text))
            return 0
        config = _config_or_none(text)
        request = protocol.parse_request(environ, text, command)
        from .plugin import Plugin  # only now: VERSION and bad requests never load cnet's core

        plugin = Plugin(request)
        answer = plugin.run()
        for warning in plugin.api.warnings:
            stderr.write(f"cnet-cni: warning: {one_line(warning)}\n")
    except CniError as e:
        _write(stdout, e.to_json(protocol.error_version(config)))
        return 1
    except CnetError as e:
        error = CniError(protocol.PLUGIN_ERRORS + e.exit_code, one_line(str(e)), type(e).__name__)
        _write(stdout, error.to_json(protocol.error_version(config)))
        return 1
    except Exception as e:  # noqa: BLE001 - a runtime reads the error JSON, a person the traceback on stderr
        import traceback

        traceback.print_exc(file=stderr)
        error = CniError(protocol.PLUGIN_ERRORS, one_line(f"{type(e).__name__}: {e}"), "an error cnet did not expect")
        _write(stdout, error.to_json(protocol.error_version(config)))
        return 1
    if answer is not None:
        _write(stdout, answer)
    return 0


def _config_or_none(text: str) -> dict | None:
    try:
        config = json.loads(text)
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


def _write(stdout, answer: dict) -> None:
    stdout.write(json.dumps(answer) + "\n")
    stdout.flush()
