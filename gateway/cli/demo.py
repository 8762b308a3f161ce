"""`gateway demo`: the demo tenant `make run` creates (development only)."""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import TYPE_CHECKING

import click

from gateway.cli import shared
from gateway.errors import (
    ConfigError,
    Conflict,
    NotFound,
)

if TYPE_CHECKING:
    from gateway.app.parts import Parts

DEMO_TENANT, DEMO_DOMAIN, DEMO_LOGIN = "demo", "demo.example", "demo"


DEMO_MAILBOX = f"outreach@{DEMO_DOMAIN}"


DEMO_OPTED_OUT = "opted-out@example.org"


DEMO_REVIEWER = "reviewer"


@click.command()
@shared.with_parts
async def demo(app: Parts) -> None:
    """Create the demo tenant, login and mailbox (development only; idempotent)."""
    from gateway.app.service import demo_credentials_path

    if not app.config.is_development:
        raise ConfigError("'gateway demo' runs only with environment = 'development'.")
    creds = demo_credentials_path(app.config)
    try:
        await app.directory_store.add_tenant(DEMO_TENANT, shared.actor())
    except Conflict:
        if creds.exists():
            click.echo(creds.read_text().rstrip())
            return
        await app.directory_store.remove_login(DEMO_LOGIN, shared.actor())
    else:
        await app.directory_store.add_domain(DEMO_TENANT, DEMO_DOMAIN, shared.actor())
        # demo.example has no DNS to publish a TXT token in: the demo vouches for it
        await app.directory_store.mark_verified(DEMO_DOMAIN, shared.actor(), "development demo")
        upstream = next(iter(app.config.upstreams))
        await app.directory_store.add_mailbox(DEMO_TENANT, DEMO_MAILBOX, upstream, shared.actor())
        await app.directory_store.set_tenant_setting(DEMO_TENANT, "postal_address",
                                       "Demo Ltd, 1 Example Street, 75002 Paris, France",
                                       shared.actor())
        await app.directory_store.set_tenant_setting(DEMO_TENANT, "sender_name", "Demo Ltd",
                                                     shared.actor())
        await _demo_lawful_basis(app)
        await _demo_opt_out(app)
        await _demo_dkim(app)
    password = secrets.token_urlsafe(15)
    await app.directory_store.add_login(DEMO_TENANT, DEMO_LOGIN, password, shared.actor())
    reviewer_password, totp_uri = await _demo_reviewer(app)
    creds.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"demo login: {DEMO_LOGIN}  password: {password}  sender: {DEMO_MAILBOX}\n"
                 f"demo opt-out (refused at RCPT): {DEMO_OPTED_OUT}  "
                 f"(its signed receipt: gateway receipt list {DEMO_TENANT} {DEMO_OPTED_OUT}; "
                 f"the proof: gateway optouts report --tenant {DEMO_TENANT}; for a DPO, "
                 f"the signed evidence pack: gateway report --tenant {DEMO_TENANT})\n"
                 f"review pages reviewer: {DEMO_REVIEWER}  password: {reviewer_password}  "
                 f"code: gateway user code {DEMO_REVIEWER}  (totp: {totp_uri})  "
                 f"pages: Overview (charts), Opt-out report, Evidence pack, Breakers\n"
                 "lawful basis (docs/lawful-basis.md): mail to anyone@firma.de is refused "
                 "(require-consent under ocg-default v1: gateway policy show); add the field "
                 "'X-Gateway-Recipient: <jean@societe.fr>; kind=named' and the first copy to "
                 "him carries the Art. 14 notice (var/outbox)\n")
    click.echo(creds.read_text().rstrip())


async def _demo_lawful_basis(app: Parts) -> None:
    """The demo tenant holds its mail to the shipped table: example.org (a gTLD) goes on
    its default, a .de address is refused, a stated French named person gets the notice."""
    for key, value in (("lawful_basis", "enforce"), ("lawful_default", "allow"),
                       ("lawful_statements", "yes"),
                       ("notice_source", "your company's website"),
                       ("notice_purpose", "to offer our services to your business, on our "
                                          "legitimate interest (GDPR Art. 6(1)(f))"),
                       ("notice_url", f"https://{DEMO_DOMAIN}/privacy")):
        await app.directory_store.set_tenant_setting(DEMO_TENANT, key, value, shared.actor())


async def _demo_reviewer(app: Parts) -> tuple[str, str]:
    """A compliance reviewer for the review pages (re-made with the demo's credentials)."""

    reviewers = app.reviewers
    with contextlib.suppress(NotFound):
        await reviewers.remove(DEMO_REVIEWER, shared.actor())
    password = secrets.token_urlsafe(15)
    uri = await reviewers.add(DEMO_REVIEWER, password, "compliance", None, shared.actor())
    return password, uri


async def _demo_dkim(app: Parts) -> None:
    """RSA and Ed25519 keys for the demo domain: var/outbox shows both signatures."""

    keys = app.dkim
    for algorithm in ("rsa", "ed25519"):
        await keys.generate(DEMO_DOMAIN, algorithm, actor=shared.actor())


async def _demo_opt_out(app: Parts) -> None:
    """One address on the demo tenant's list: a message to it is refused at RCPT."""
    from gateway.optout.suppressions import Actor
    from suppression.entries import Reason

    suppressions = await app.open_suppressions()
    tenant_id = (await app.directory_store.tenant(DEMO_TENANT)).id
    await suppressions.add(Actor(shared.actor()), tenant_id, DEMO_OPTED_OUT, Reason.UNSUBSCRIBE,
                           "cli", note="the demo's opted-out recipient")
    await suppressions.close()
