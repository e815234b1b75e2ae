"""Shell completion: `cnet completion bash|zsh|fish` prints the script, and
the names of networks, sandboxes and published ports complete from the state
file.

Completion runs at every Tab, so it reads the state file and nothing else:
no lock (a half-written file cannot be seen: cnet replaces it by rename), no
model, no pyroute2, no kernel. A file it cannot read completes nothing.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CNET_COMPLETE"  # click's protocol: `_CNET_COMPLETE=bash_source cnet` prints the script


def _records(ctx: click.Context) -> dict:
    """The state file's document, or {} when it cannot be read."""
    import json

    from ..state import state_path

    root = ctx.find_root()
    path = state_path(root.params.get("state"))
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            import yaml  # a hand-edited block-style state file

            doc = yaml.safe_load(text)
        except Exception:
            return {}
    return doc if isinstance(doc, dict) else {}


def _matching(names, incomplete: str) -> list:
    from click.shell_completion import CompletionItem  # only when completing: not on every start

    return [CompletionItem(n) for n in sorted(set(names)) if isinstance(n, str) and n.startswith(incomplete)]


def networks(ctx: click.Context, param, incomplete: str) -> list:
    return _matching(_records(ctx).get("networks") or {}, incomplete)


def sandboxes(ctx: click.Context, param, incomplete: str) -> list:
    return _matching(_records(ctx).get("sandboxes") or {}, incomplete)


def routers(ctx: click.Context, param, incomplete: str) -> list:
    found = _records(ctx).get("sandboxes") or {}
    return _matching([n for n, sb in found.items() if isinstance(sb, dict) and sb.get("mode") == "router"],
                     incomplete)


def networks_and_sandboxes(ctx: click.Context, param, incomplete: str) -> list:
    doc = _records(ctx)
    return _matching([*(doc.get("networks") or {}), *(doc.get("sandboxes") or {})], incomplete)


def published_specs(ctx: click.Context, param, incomplete: str) -> list:
    """The published ports of the sandbox named before, as `unpublish` takes them."""
    sandbox = ctx.params.get("ns")
    specs = []
    for p in _records(ctx).get("ports") or ():
        if not isinstance(p, dict) or p.get("sandbox") != sandbox:
            continue
        try:
            count = int(p.get("count", 1))
            host, port, proto = int(p["host_port"]), int(p["port"]), p["protocol"]
        except (KeyError, TypeError, ValueError):
            continue
        hosts = f"{host}-{host + count - 1}" if count > 1 else str(host)
        ports = f"{port}-{port + count - 1}" if count > 1 else str(port)
        specs.append(f"{hosts}:{ports}/{proto}")
    return _matching(specs, incomplete)


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell):
    """Print the completion script for SHELL.

    \b
    Examples:
      eval "$(cnet completion bash)"                  # in ~/.bashrc
      eval "$(cnet completion zsh)"                   # in ~/.zshrc
      cnet completion fish > ~/.config/fish/completions/cnet.fish
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command
    click.echo(get_completion_class(shell)(root, {}, "cnet", COMPLETE_VAR).source())
