"""`cnet delete ...` (alias `rm`)."""

import click

from .completion import networks, routers, sandboxes


def _delete_network(obj, name, if_exists, force):
    if obj.api.delete_network(name, if_exists=if_exists, force=force):
        click.echo(name)


def _make_group(group_name: str, help_text: str) -> click.Group:
    @click.group(group_name, help=help_text)
    def group():
        pass

    for kind in ("bridge", "network"):
        @group.command(kind, help="Delete a network (in use: exit 4 unless --force).")
        @click.argument("name", shell_complete=networks)
        @click.option("--if-exists", is_flag=True, help="Succeed if there is no such network.")
        @click.option("--force", is_flag=True, help="Detach the sandboxes still on it first.")
        @click.pass_obj
        def delete_network(obj, name, if_exists, force):
            _delete_network(obj, name, if_exists, force)

    @group.command("ns", help="Delete a sandbox: its endpoints, mappings and name.")
    @click.argument("name", shell_complete=sandboxes)
    @click.option("--if-exists", is_flag=True, help="Succeed if there is no such sandbox.")
    @click.pass_obj
    def delete_ns(obj, name, if_exists):
        if obj.api.delete_ns(name, if_exists=if_exists):
            click.echo(name)

    @group.command("router", help="Delete a router, and the routes through it in the other sandboxes.")
    @click.argument("name", shell_complete=routers)
    @click.option("--if-exists", is_flag=True, help="Succeed if there is no such router.")
    @click.pass_obj
    def delete_router(obj, name, if_exists):
        if obj.api.delete_router(name, if_exists=if_exists):
            click.echo(name)

    return group


delete = _make_group("delete", "Delete a network or a sandbox.")
rm = _make_group("rm", "Delete a network or a sandbox (alias of delete).")
