"""`gateway check-config`: validate the configuration without starting."""

from __future__ import annotations

import click

from gateway.cli import shared
from gateway.errors import (
    GatewayError,
)


@click.command("check-config")
@click.pass_context
def check_config(ctx: click.Context) -> None:
    """Validate the configuration (and the master key) without starting anything."""
    from gateway.app.parts import Parts
    from gateway.config.advice import advice

    config = shared.load_config(ctx)
    try:
        Parts(config).vault  # noqa: B018  # built to open the master keys
    except GatewayError as exc:
        raise shared.CliError(exc.message, exc.exit_code) from None
    for setting, text in advice(config):
        click.echo(f"gateway: warning: {setting} {text}", err=True)
    click.echo(f"configuration ok (environment: {config.environment})")
