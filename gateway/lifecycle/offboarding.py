"""`gateway tenant delete`: a tenant's data removed when it leaves.

Mailbox tokens are revoked at the provider where it can be done, their sealed copies deleted
with every other secret of the tenant (OAuth client secrets, upstream passwords), and the
tenant's own key deleted: any copy left anywhere (a backup, a replica) no longer opens.
Messages, copies (and the index of sent ones), events, webhooks, opens, keys, domains,
logins and mailboxes go. The tenant's row stays, marked `deleted` and emptied of settings,
so the audit trail's tenant ids still mean something and the name cannot be taken by
someone else. Under legal hold its held messages and suppression entries stay; the receipt
says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gateway.audit import trail as audit
from gateway.directory.store import DirectoryStore
from gateway.errors import Conflict
from gateway.lifecycle.scrub import scrub
from gateway.store import schema as t
from gateway.vault.credentials import Credentials
from gateway.vault.tenant_keys import TenantSealedSecrets
from suppression.schema import suppressions

DELETED = "deleted"


async def delete_tenant(store: DirectoryStore, credentials: Credentials, name: str,
                        actor: str) -> dict[str, Any]:
    tenant = await store.tenant(name)
    if tenant.status == DELETED:
        raise Conflict(f"Tenant '{name}' was deleted already.")
    hold = await store.legal_hold(name)
    revoked, shredded = await _revoke_and_shred(store, credentials, tenant.id, actor)
    tid = tenant.id
    deleted: dict[str, int] = {}
    kept: dict[str, int] = {}
    touched = {t.tenants.name}  # the tables this deletion changed (vacuumed after it)
    async with store.engine.begin() as conn:
        kept_tables = () if hold is None else _UNDER_LEGAL_HOLD
        for label, table, where in _owned_rows(tid):
            if label in kept_tables:
                kept[f"{label}_under_legal_hold"] = (await conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(where))).scalar_one()
                continue
            deleted[label] = (await conn.execute(table.delete().where(where))).rowcount or 0
            touched.add(table.name)
        await conn.execute(t.tenants.update().where(t.tenants.c.id == tid).values(
            status=DELETED, status_reason=f"deleted by {actor}", settings={},
            updated_at=datetime.now(UTC)))
        await audit.write(conn, [audit.row("tenant.deleted", actor=actor, tenant_id=tid,
                                           deleted=deleted, kept=kept,
                                           tokens_revoked=revoked,
                                           tenant_key_shredded=shredded)])
    await scrub(store.engine, touched)  # out of the WAL and free pages too
    return {"tenant": name, "deleted_at": datetime.now(UTC).isoformat(), "deleted": deleted,
            "kept": kept, "tokens_revoked_at_provider": revoked,
            "tenant_key_shredded": shredded,
            "legal_hold": None if hold is None else hold[1]}


async def _revoke_and_shred(store: DirectoryStore, credentials: Credentials, tid: int,
                            actor: str) -> tuple[int, bool]:
    """Revoke every mailbox grant at its provider, then shred the tenant's key: should
    anything after fail, what is left no longer opens (issue 21)."""
    _, _, _, mailboxes = await store.snapshot()
    revoked = 0
    for mailbox in (m for m in mailboxes if m.tenant_id == tid):
        revoked += await credentials.disconnect(mailbox, actor, "tenant deleted")
    shredded = False
    if isinstance(credentials.secrets, TenantSealedSecrets):
        shredded = await credentials.secrets.keys.shred(tid)
    return revoked, shredded


# kept (and counted) instead of deleted while the tenant is under a legal hold
_UNDER_LEGAL_HOLD = ("held_messages", "suppression_entries")


def _owned_rows(tid: int) -> list[tuple[str, sa.Table, sa.ColumnElement[bool]]]:
    """(label, table, which rows) of everything a tenant owns, in the order it goes."""
    hooks = sa.select(t.webhooks.c.id).where(t.webhooks.c.tenant_id == tid)
    mailboxes = sa.select(t.mailboxes.c.id).where(t.mailboxes.c.tenant_id == tid)
    return [
        ("webhook_outbox", t.webhook_outbox, t.webhook_outbox.c.webhook_id.in_(hooks)),
        ("webhooks", t.webhooks, t.webhooks.c.tenant_id == tid),
        ("queued_copies", t.pending_copies, t.pending_copies.c.tenant_id == tid),
        ("events", t.events, t.events.c.tenant_id == tid),
        ("opens", t.opens, t.opens.c.tenant_id == tid),
        ("sent_copies", t.sent_messages, t.sent_messages.c.tenant_id == tid),
        ("feedback_marks", t.feedback_marks, t.feedback_marks.c.tenant_id == tid),
        ("possible_opt_outs", t.optout_reviews, t.optout_reviews.c.tenant_id == tid),
        ("inbox_state", t.inbox_state, t.inbox_state.c.mailbox_id.in_(mailboxes)),
        ("api_keys", t.api_keys, t.api_keys.c.tenant_id == tid),
        ("oauth_flows", t.oauth_flows, t.oauth_flows.c.tenant_id == tid),
        ("oauth_clients", t.oauth_clients, t.oauth_clients.c.tenant_id == tid),
        ("sealed_secrets", t.sealed_secrets, t.sealed_secrets.c.tenant_id == tid),
        ("mailbox_credentials", t.mailbox_credentials,
         t.mailbox_credentials.c.tenant_id == tid),
        ("dkim_keys", t.dkim_keys, t.dkim_keys.c.tenant_id == tid),
        ("mailboxes", t.mailboxes, t.mailboxes.c.tenant_id == tid),
        ("logins", t.logins, t.logins.c.tenant_id == tid),
        ("domains", t.domains, t.domains.c.tenant_id == tid),
        ("held_messages", t.held_messages, t.held_messages.c.tenant_id == tid),
        ("suppression_entries", suppressions, suppressions.c.scope == tid),
    ]
