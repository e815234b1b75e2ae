"""`cnet check`, `cnet restore`, `cnet gc`: the kernel against the state."""

import click

from ..errors import CnetError
from . import views
from .output import as_json, json_option

CHECK_DIFFERS = 5  # pinned: scripts run `cnet check || cnet restore`


@click.command("check")
@json_option
@click.option("--deep", is_flag=True, help="Look inside every sandbox too (its links, MACs and addresses), and at the entries of overlays.")
@click.pass_obj
def check(obj, json_out, deep):
    """Compare the kernel with the state; change nothing.

    Prints one line per difference, then the host's health warnings (on
    stderr). Exits 0 when the kernel holds what the state says, 5 when not
    (`cnet check || cnet restore`), 1 when it cannot look (run it as root).

    \b
    Examples:
      cnet check
      cnet check --deep --json
      cnet check || cnet restore
    """
    differences, warnings = obj.api.check(deep=deep)
    if json_out:
        as_json(views.check_report(differences, warnings, obj.api.foreign_rules()))
    else:
        for d in differences:
            click.echo(d.text)
        obj.api.warnings += warnings
    return CHECK_DIFFERS if differences else 0


@click.command("restore")
@json_option
@click.pass_obj
def restore(obj, json_out):
    """Make the kernel hold what the state says (after a reboot or a firewall
    reload): namespaces, networks, endpoints with their names, MACs and
    addresses, published ports, sysctls, resolver files. Prints what it made;
    a second run finds nothing to do. Exits 1 if something could not be made.

    \b
    Examples:
      cnet restore
      systemctl enable cnet-restore.service   # examples/: at every boot
    """
    done, failed = obj.api.restore()
    if json_out:  # the report even when something failed, as the text is: the error line follows on stderr
        as_json(views.restore_report(done, failed))
    else:
        for line in done:
            click.echo(line)
        if not done and not failed:
            click.echo("nothing to restore: the kernel holds what the state says")
    if failed:
        raise CnetError(f"{len(failed)} thing(s) could not be restored: " + "; ".join(failed))


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Print what would be removed, remove nothing.")
@json_option
@click.pass_obj
def gc(obj, dry_run, json_out):
    """Remove kernel objects carrying this state file's tag that the state
    does not list (what a killed cnet left behind). Never touches anything
    untagged.

    \b
    Examples:
      cnet gc --dry-run
      cnet restore && cnet gc
    """
    lines = obj.api.gc(dry_run=dry_run)
    if json_out:
        as_json(views.gc_report(lines, dry_run))
        return
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("nothing to remove")
