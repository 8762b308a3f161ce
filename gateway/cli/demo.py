"""`gateway demo`: the demo tenant `make run` creates (development only)."""

from __future__ import annotations

import contextlib
import os
import secrets

import click

from gateway.cli import parts, shared
from gateway.config import Config
from gateway.directory.store import DirectoryStore
from gateway.errors import (
    ConfigError,
    Conflict,
    NotFound,
)

DEMO_TENANT, DEMO_DOMAIN, DEMO_LOGIN = "demo", "demo.example", "demo"


DEMO_MAILBOX = f"outreach@{DEMO_DOMAIN}"


DEMO_OPTED_OUT = "opted-out@example.org"


DEMO_REVIEWER = "reviewer"


@click.command()
@shared.with_store
async def demo(store: DirectoryStore, config: Config) -> None:
    """Create the demo tenant, login and mailbox (development only; idempotent)."""
    from gateway.service import demo_credentials_path

    if not config.is_development:
        raise ConfigError("'gateway demo' runs only with environment = 'development'.")
    creds = demo_credentials_path(config)
    try:
        await store.add_tenant(DEMO_TENANT, shared.actor())
    except Conflict:
        if creds.exists():
            click.echo(creds.read_text().rstrip())
            return
        await store.remove_login(DEMO_LOGIN, shared.actor())
    else:
        await store.add_domain(DEMO_TENANT, DEMO_DOMAIN, shared.actor())
        # demo.example has no DNS to publish a TXT token in: the demo vouches for it
        await store.mark_verified(DEMO_DOMAIN, shared.actor(), "development demo")
        upstream = next(iter(config.upstreams))
        await store.add_mailbox(DEMO_TENANT, DEMO_MAILBOX, upstream, shared.actor())
        await store.set_tenant_setting(DEMO_TENANT, "postal_address",
                                       "Demo Ltd, 1 Example Street, 75002 Paris, France",
                                       shared.actor())
        await store.set_tenant_setting(DEMO_TENANT, "sender_name", "Demo Ltd", shared.actor())
        await _demo_opt_out(store, config)
        await _demo_dkim(store, config)
    password = secrets.token_urlsafe(15)
    await store.add_login(DEMO_TENANT, DEMO_LOGIN, password, shared.actor())
    reviewer_password, totp_uri = await _demo_reviewer(store, config)
    creds.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"demo login: {DEMO_LOGIN}  password: {password}  sender: {DEMO_MAILBOX}\n"
                 f"demo opt-out (refused at RCPT): {DEMO_OPTED_OUT}\n"
                 f"review pages reviewer: {DEMO_REVIEWER}  password: {reviewer_password}  "
                 f"code: gateway user code {DEMO_REVIEWER}  (totp: {totp_uri})\n")
    click.echo(creds.read_text().rstrip())


async def _demo_reviewer(store: DirectoryStore, config: Config) -> tuple[str, str]:
    """A compliance reviewer for the review pages (re-made with the demo's credentials)."""
    from gateway.review.accounts import Reviewers

    reviewers = Reviewers(store.engine, shared.open_vault(config), config.review)
    with contextlib.suppress(NotFound):
        await reviewers.remove(DEMO_REVIEWER, shared.actor())
    password = secrets.token_urlsafe(15)
    uri = await reviewers.add(DEMO_REVIEWER, password, "compliance", None, shared.actor())
    return password, uri


async def _demo_dkim(store: DirectoryStore, config: Config) -> None:
    """RSA and Ed25519 keys for the demo domain: var/outbox shows both signatures."""
    from gateway.dkim.keys import DkimKeys

    keys = DkimKeys(store.engine, shared.open_vault(config),
                    parts.tenant_sealer(store.engine, config))
    for algorithm in ("rsa", "ed25519"):
        await keys.generate(DEMO_DOMAIN, algorithm, actor=shared.actor())


async def _demo_opt_out(store: DirectoryStore, config: Config) -> None:
    """One address on the demo tenant's list: a message to it is refused at RCPT."""
    from gateway.optout.suppressions import Actor
    from suppression.entries import Reason

    suppressions = await parts.suppression_lists(store.engine, config)
    tenant_id = (await store.tenant(DEMO_TENANT)).id
    await suppressions.add(Actor(shared.actor()), tenant_id, DEMO_OPTED_OUT, Reason.UNSUBSCRIBE,
                           "cli", note="the demo's opted-out recipient")
    await suppressions.close()
