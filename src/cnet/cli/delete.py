"""`cnet delete ...` (alias `rm`)."""

import click

from . import views
from .completion import networks, routers, sandboxes
from .output import as_json, json_option


def _deleted(name: str, deleted: bool, gone: dict, json_out: bool) -> None:
    """The name, or with --json what went (read from the state before the delete; empty when
    --if-exists found nothing)."""
    if json_out:
        as_json(gone if deleted else views.removed())
    elif deleted:
        click.echo(name)


def _make_group(group_name: str, help_text: str) -> click.Group:
    @click.group(group_name, help=help_text)
    def group():
        pass

    for kind in ("bridge", "network"):
        @group.command(kind, help="Delete a network (in use: exit 4 unless --force)."
                       "\n\n\b\nExamples:\n  cnet delete bridge mybr0\n  cnet rm network mybr0 --force --if-exists")
        @click.argument("name", shell_complete=networks)
        @click.option("--if-exists", is_flag=True, help="Succeed if there is no such network.")
        @click.option("--force", is_flag=True, help="Detach the sandboxes still on it first.")
        @json_option
        @click.pass_obj
        def delete_network(obj, name, if_exists, force, json_out):
            gone = views.removal_of_network(obj.api.read_state(), name)
            _deleted(name, obj.api.delete_network(name, if_exists=if_exists, force=force), gone, json_out)

    @group.command("ns", help="Delete a sandbox: its endpoints, mappings and name."
                   "\n\n\b\nExamples:\n  cnet delete ns web\n  cnet rm ns web --if-exists")
    @click.argument("name", shell_complete=sandboxes)
    @click.option("--if-exists", is_flag=True, help="Succeed if there is no such sandbox.")
    @json_option
    @click.pass_obj
    def delete_ns(obj, name, if_exists, json_out):
        gone = views.removal_of_sandbox(obj.api.read_state(), name)
        _deleted(name, obj.api.delete_ns(name, if_exists=if_exists), gone, json_out)

    @group.command("router", help="Delete a router, and the routes through it in the other sandboxes."
                   "\n\n\b\nExample:\n  cnet delete router r1")
    @click.argument("name", shell_complete=routers)
    @click.option("--if-exists", is_flag=True, help="Succeed if there is no such router.")
    @json_option
    @click.pass_obj
    def delete_router(obj, name, if_exists, json_out):
        gone = views.removal_of_sandbox(obj.api.read_state(), name, as_router=True)
        _deleted(name, obj.api.delete_router(name, if_exists=if_exists), gone, json_out)

    return group


delete = _make_group("delete", "Delete a network or a sandbox.")
rm = _make_group("rm", "Delete a network or a sandbox (alias of delete).")
