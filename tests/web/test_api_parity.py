"""Everything the CLI can change, the API can change, except the host's own work: every
command of `gateway` is held to one route of the OpenAPI document or to a reason it stays
on the host, and docs/api.md prints the table as it is."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.main import cli
from gateway.web.admin import openapi_document
from gateway.web.api.parity import HOST_ONLY, REASONS, ROUTES
from gateway.web.api.reference import markdown


def _commands() -> set[str]:
    found: set[str] = set()

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        if path and (not isinstance(command, click.Group) or command.invoke_without_command):
            found.add(" ".join(path))  # a group that runs on its own is a command too

    walk(cli, [])
    return found


def test_every_command_has_a_route_or_a_reason_to_stay_on_the_host():
    commands = _commands()
    assert len(commands) > 70
    assert commands - ROUTES.keys() - HOST_ONLY.keys() == set(), "map the new command"
    assert ROUTES.keys() & HOST_ONLY.keys() == set()
    assert (ROUTES.keys() | HOST_ONLY.keys()) - commands == set(), "a command is gone"


def test_every_route_named_is_in_the_openapi_document():
    paths = openapi_document()["paths"]
    named = {route for routes in ROUTES.values() for route in routes}
    missing = [r for r in named
               if r.split(" ", 1)[1] not in paths
               or r.split(" ", 1)[0].lower() not in paths[r.split(" ", 1)[1]]]
    assert missing == []


def test_only_host_operations_stay_on_the_host():
    """The issue's list: schema upgrades, master and purpose keys, rewrap, reviewer
    accounts, and the gateway's own process (serve and its configuration file)."""
    assert all(any(why.startswith(reason) for reason in REASONS)
               for why in HOST_ONLY.values()), HOST_ONLY
    changing_data = {"tenant", "domain", "login", "mailbox", "webhook", "held", "suppress",
                     "subject", "dkim", "optouts", "queue", "apikey", "oauth-client"}
    assert not {c for c in HOST_ONLY if c.split(" ")[0] in changing_data}


def test_docs_api_md_is_generated_from_the_routes_and_the_table():
    reference = Path(__file__).parents[2] / "docs/api.md"
    assert reference.read_text() == markdown(), "docs/api.md is stale: run 'make docs'"
