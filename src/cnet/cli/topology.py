"""`cnet apply`, `cnet export`, `cnet graph`: declarative topologies (docs/topology.md)."""

import sys

import click

APPLY_WOULD_CHANGE = 5  # --dry-run, like `cnet check`: something would change


@click.command("apply")
@click.argument("file", type=click.File("r"))
@click.option("--dry-run", is_flag=True, help="Print the plan and stop (exit 0: no changes, 5: changes).")
@click.option("--prune", is_flag=True, help="Also delete the networks, sandboxes and routers the file does not name.")
@click.option("--json", "json_out", is_flag=True, help="One JSON document: the plan's lines and whether it was carried out.")
@click.pass_obj
def apply(obj, file, dry_run, prune, json_out):
    """Make the networks, sandboxes and routers of a topology FILE so.

    Prints the plan first, one line an object: `+ create`, `~ change` (what
    changes), `-/+ replace` (what cannot change in place), `- delete` (only
    with --prune), or "no changes". Then carries it out in one process
    under one lock, stopping at the first step that fails (named; the steps
    before it stay done and recorded). The format: docs/topology.md.

    \b
    Examples:
      cnet apply lab.yaml --dry-run
      cnet apply lab.yaml
      cnet export > now.yaml && cnet apply now.yaml --prune
    """
    text, source = file.read(), file.name
    show = (lambda plan: None) if json_out else _show
    if dry_run:
        plan = obj.api.plan_topology(text, source, prune=prune)
        show(plan)
    else:
        counter = _Counter()
        try:
            plan = obj.api.apply_topology(text, source, prune=prune, show=show, progress=counter.step)
        finally:
            counter.end()
    if json_out:
        from .output import as_json

        as_json({"changes": list(plan.lines), "steps": len(plan.steps), "applied": not dry_run})
    return APPLY_WOULD_CHANGE if dry_run and not plan.empty else 0


def _show(plan) -> None:
    for line in plan.lines:
        click.echo(line)
    if plan.empty:
        click.echo("no changes")
    sys.stdout.flush()


class _Counter:
    """[3/12] create network front, on stderr while it runs, when that is a terminal."""

    def __init__(self):
        self.on = sys.stderr.isatty()
        self.shown = False

    def step(self, number: int, total: int, step) -> None:
        if self.on:
            verb = step.method.partition("_")[0]  # create_network: create, attach: attach
            click.echo(f"\r\033[K[{number}/{total}] {verb} {step.what}", err=True, nl=False)
            self.shown = True

    def end(self) -> None:
        if self.shown:
            click.echo("\r\033[K", err=True, nl=False)


@click.command("export")
@click.option("--json", "json_out", is_flag=True, help="The same document as JSON (which is YAML too).")
@click.pass_obj
def export(obj, json_out):
    """Print the current topology as a file for `cnet apply` (which then plans nothing).

    \b
    Example:
      cnet export > lab.yaml
    """
    text = obj.api.export_topology()
    if json_out:
        import yaml

        from .output import as_json

        as_json(yaml.safe_load(text))
        return
    click.echo(text, nl=False)


@click.command("graph")
@click.argument("file", type=click.File("r"), required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the picture to FILE (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(["dot", "svg", "png"]), default=None,
              help="dot text (the default), or svg/png drawn by Graphviz (package graphviz); default from -o's suffix.")
@click.pass_obj
def graph(obj, file, output, fmt):
    """Draw networks, sandboxes, routers and published ports (of FILE, else of the state).

    \b
    Examples:
      cnet graph | dot -Tsvg > now.svg
      cnet graph -o lab.png lab.yaml
    """
    if fmt is None:
        suffix = output.rpartition(".")[2] if output and "." in output else "dot"
        fmt = suffix if suffix in ("svg", "png") else "dot"
    picture = obj.api.graph(file.read() if file else None, file.name if file else "", fmt)
    if output:
        with open(output, "wb") as out:
            out.write(picture)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(picture)
