"""The `gateway` command group; every command and group is added here."""

from __future__ import annotations

import sys

import click

from gateway.cli import (
    apikey,
    audit,
    breaker,
    check_config,
    db,
    demo,
    dkim,
    domain,
    events,
    held,
    key,
    login,
    mailbox,
    oauth_client,
    optouts,
    policy,
    queue,
    receipt,
    records,
    report,
    retention,
    send_test,
    serve,
    shared,
    subject,
    suppress,
    tenant,
    trace,
    upstream,
    user,
    vault,
    webhook,
)


@click.group()
@click.version_option(package_name="outreach-compliance-gateway")
@click.option("--config", "config_path", envvar="GATEWAY_CONFIG", type=click.Path(),
              help="Operator configuration (TOML). Default: $GATEWAY_CONFIG, else "
                   "/etc/ocg/gateway.toml, else (in a checkout after 'make run') "
                   "deploy/development.toml.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Outreach Compliance Gateway."""
    ctx.ensure_object(dict)["config_path"] = config_path


def main() -> None:
    """Console entry point: no traceback ever reaches the terminal."""
    try:
        cli(standalone_mode=True)
    except Exception as exc:
        click.echo(f"gateway: internal error ({type(exc).__name__}); this is a bug, "
                   "please report it", err=True)
        sys.exit(shared.INTERNAL_ERROR_EXIT)


# every command and group, in the order `gateway --help` lists them
for command in (
    serve.serve, check_config.check_config, db.db, demo.demo, tenant.tenant, domain.domain,
    login.login, queue.queue, trace.trace, vault.vault, key.key, events.events_list,
    webhook.webhook, mailbox.mailbox, upstream.upstream, oauth_client.oauth_client,
    apikey.apikey, audit.audit, dkim.dkim, optouts.optouts, retention.purge,
    retention.retention, held.held, breaker.breaker, receipt.receipt, policy.policy,
    records.records, report.report,
    send_test.send_test,
    subject.subject, suppress.suppress, user.user,
):
    cli.add_command(command)
# commands of the tenant group that live with their subject
tenant.tenant.add_command(retention.tenant_legal_hold)
tenant.tenant.add_command(subject.tenant_delete)
