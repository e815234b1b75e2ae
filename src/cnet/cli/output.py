"""Output formats: aligned tables for people, JSON for programs, names for -q.
What the JSON holds is views.py's."""

from __future__ import annotations

import json

import click

from .views import mapping_lines


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    # one echo: click.echo costs ~15 µs a call, 15 ms for `ls` of 1,000 sandboxes
    click.echo("\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]))


def as_json(value) -> None:
    """One JSON document; on one line when a `batch --json` runs the command (JSON Lines)."""
    ctx = click.get_current_context(silent=True)
    one_line = ctx is not None and getattr(ctx.find_root().obj, "json_lines", False)
    click.echo(json.dumps(value) if one_line else json.dumps(value, indent=2))


def json_option(command):
    """--json: print schema 1's object for the command (docs/json.md) instead of text."""
    return click.option("--json", "json_out", is_flag=True,
                        help="Print one JSON document instead of text (schema 1: docs/json.md).")(command)


def usage_message(error: click.UsageError) -> str:
    """click's message for a usage error, for `cnet: error: ...`: click lays
    a list of choices out a line each ("Choose from:\n\ta,\n\tb"), put back
    on one; line breaks in values the user typed are escaped when the message
    is printed (errors.one_line), as click quotes only some values."""
    return error.format_message().replace("\n\t", " ")


def mapping_name(p) -> str:
    """A mapping as `ls ports -q` names it, one line each: web:0.0.0.0:8080->80/tcp,
    web:[::]:9000-9010->90-100/udp for a range (format_mapping's form, with ranges)."""
    def ports(first: int) -> str:
        return f"{first}-{first + p.count - 1}" if p.count > 1 else str(first)

    host_ip = f"[{p.host_ip}]" if ":" in p.host_ip else p.host_ip
    return f"{p.sandbox}:{host_ip}:{ports(p.host_port)}->{ports(p.port)}/{p.protocol}"


def print_mappings(mappings) -> None:
    for p in mappings:
        for line in mapping_lines(p):
            click.echo(line)
