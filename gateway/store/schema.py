"""The database schema, one SQLAlchemy Core `MetaData` for SQLite and PostgreSQL.

Migrations in `migrations/versions/` build exactly this; `tests/store/test_migrations.py`
checks that they agree. Changes are expand/contract: a column or table is added in one
release and only dropped in a later one, so two versions can run side by side.
"""

from __future__ import annotations

import sqlalchemy as sa

from suppression import schema as suppression_schema

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    sa.Column("status_reason", sa.String(500), nullable=False, server_default=""),
    sa.Column("settings", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Set by the operator only (`gateway tenant legal-hold`): retention purges and erasure
    # leave the tenant's held messages and suppression entries alone while it is set.
    sa.Column("legal_hold_since", Timestamp, nullable=True),
    sa.Column("legal_hold_reason", sa.String(500), nullable=False, server_default=""),
)

domains = sa.Table(
    "domains",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # `gateway domain verify`: the TXT token that proves the tenant controls the domain
    sa.Column("verify_token", sa.String(64), nullable=True),
    sa.Column("verified_at", Timestamp, nullable=True),
)

logins = sa.Table(
    "logins",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("username", sa.String(200), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

mailboxes = sa.Table(
    "mailboxes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("address", sa.String(320), nullable=False, unique=True),
    sa.Column("upstream", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    sa.Column("status_reason", sa.String(500), nullable=False, server_default=""),
    sa.Column("settings", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # The id the admin API shows: random, so ids reveal nothing and cannot be enumerated.
    sa.Column("public_id", sa.String(40), nullable=True, unique=True),
)

# Every decision and every human action. No message body, no secret; recipients only as
# keyed digests (`recipient_digest`), never as plain addresses.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", Timestamp, nullable=False, index=True),
    sa.Column("tenant_id", sa.Integer, nullable=True, index=True),
    sa.Column("queue_id", sa.String(40), nullable=True, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("event", sa.String(60), nullable=False),
    sa.Column("check_name", sa.String(60), nullable=True),
    sa.Column("action", sa.String(20), nullable=True),
    sa.Column("reason", sa.String(1000), nullable=False, server_default=""),
    sa.Column("recipient_digest", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("message_id", sa.String(998), nullable=True, index=True),
    # Tamper evidence (audit/chain.py): the batch the row was written in and its hash.
    sa.Column("chain", sa.String(60), nullable=True),
    sa.Column("batch_seq", sa.BigInteger, nullable=True),
    sa.Column("row_hash", sa.String(64), nullable=True),
)

# One row per chain (one per node): its newest batch. Writers take turns on this row.
audit_chains = sa.Table(
    "audit_chains",
    metadata,
    sa.Column("chain", sa.String(60), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("head", sa.String(64), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=True),
)

# Each batch of audit rows: where it sits in its chain, the head it extends and its own.
audit_batches = sa.Table(
    "audit_batches",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("chain", sa.String(60), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("prev_head", sa.String(64), nullable=False),
    sa.Column("head", sa.String(64), nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("at", Timestamp, nullable=False, index=True),
    sa.UniqueConstraint("chain", "seq", name="uq_audit_batches_chain_seq"),
)

# Every minute: every chain's head, HMAC'd under the vault's audit-anchor key; one chain of
# anchors (a second node anchoring the same moment loses on the unique prev_mac).
audit_anchors = sa.Table(
    "audit_anchors",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("heads", sa.JSON, nullable=False),
    sa.Column("prev_mac", sa.String(64), nullable=False, unique=True),
    sa.Column("mac", sa.String(64), nullable=False),
)

# Where pruning cut each chain, signed, so verification starts there.
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("heads", sa.JSON, nullable=False),
    sa.Column("anchor_mac", sa.String(64), nullable=False),
    sa.Column("rows_pruned", sa.BigInteger, nullable=False),
    sa.Column("prev_mac", sa.String(64), nullable=False),
    sa.Column("mac", sa.String(64), nullable=False),
)

# The delivery queue: copies the gateway accepted but has not delivered, and the delivery
# status notifications (kind 'dsn') it owes senders. The message is sealed by the vault.
# state: deferred (waiting for next_attempt_at) | sending (leased until lease_until) |
#        refused (a DSN is owed) | delivered | bounced (DSN queued) | expired | deleted | failed
# states of a copy that is not finished yet (delivery/queue.py's State values)
PENDING_OPEN_STATES = ("deferred", "refused", "sending")

pending_copies = sa.Table(
    "pending_copies",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("queue_id", sa.String(40), nullable=False, index=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("mailbox_id", sa.ForeignKey("mailboxes.id"), nullable=False),
    sa.Column("envelope_from", sa.String(320), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # deferred | refused
    sa.Column("reply_code", sa.Integer, nullable=False),
    sa.Column("reply_status", sa.String(12), nullable=False),
    sa.Column("reply_text", sa.String(500), nullable=False),
    sa.Column("smtputf8", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("sealed_message", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False, server_default="copy"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=True),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=True),
    sa.Column("message_id", sa.String(998), nullable=True),
    sa.Index("ix_pending_copies_state", "state", "next_attempt_at"),
)

# Messages held for review, and copies of refused ones: the body sealed by the vault, the
# metadata in clear for the review queue. status: held | refused | release-requested |
# released | discarded | expired.
held_messages = sa.Table(
    "held_messages",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("queue_id", sa.String(40), nullable=False, unique=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("login", sa.String(200), nullable=False),
    sa.Column("mailbox_id", sa.Integer, nullable=False),
    sa.Column("envelope_from", sa.String(320), nullable=False),
    # before 0020 the recipients and subject in clear; emptied once sealed (HeldStore.seal_legacy)
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("subject", sa.String(998), nullable=False, server_default=""),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("smtputf8", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("check_name", sa.String(60), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("verdicts", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("notes", sa.JSON, nullable=False),
    sa.Column("sealed_message", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("decided_at", Timestamp, nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    # {"recipients": [...], "subject": "..."} sealed under the tenant's key (review/held.py)
    sa.Column("sealed_names", sa.LargeBinary, nullable=True),
    sa.Column("subject_hash", sa.String(64), nullable=True),  # keyed, normalised: search
    sa.Column("recipient_digests", sa.JSON, nullable=True),  # export and erasure match these
    sa.Index("ix_held_messages_tenant_status", "tenant_id", "status", "id"),
    # the review queue's counts by reason across tenants, from the index alone (0015)
    sa.Index("ix_held_messages_status_check", "status", "check_name"),
)

# What happened to a tenant's mail, for the tenant: refused, deferred, delivered, bounced...
# The id is the cursor (`gateway events --after`). Later issues add kinds, not mechanisms.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("queue_id", sa.String(40), nullable=True),
    sa.Column("recipient", sa.String(320), nullable=True),  # before 0020 only; then NULL
    sa.Column("detail", sa.JSON, nullable=False, server_default="{}"),
    # the recipient as events/names.py keeps it: digest, masked, sealed under the tenant key
    sa.Column("recipient_digest", sa.String(64), nullable=True),
    sa.Column("recipient_masked", sa.String(320), nullable=True),
    sa.Column("sealed_recipient", sa.LargeBinary, nullable=True),
    sa.Index("ix_events_tenant_id", "tenant_id", "id"),
    sa.Index("ix_events_recipient_digest", "recipient_digest"),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id"), nullable=False, unique=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("sealed_secret", sa.LargeBinary, nullable=False),  # HMAC signing secret
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # The last event already put in the outbox: the dispatcher fans out from here.
    sa.Column("event_cursor", sa.BigInteger, nullable=False, server_default="0"),
)

# One row per event per webhook: delivered with retries and back-off, across restarts.
webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("webhook_id", sa.Integer, nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # pending | sending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("last_status", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_webhook_outbox_state", "state", "next_attempt_at"),
)

# Keys made once for one purpose and stored sealed like any other secret. A master-key
# rotation only re-wraps them, so digests and old links stay valid.
purpose_keys = sa.Table(
    "purpose_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("purpose", sa.String(60), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sealed_key", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("retired_at", Timestamp, nullable=True),
    sa.UniqueConstraint("purpose", "version", name="uq_purpose_keys_purpose"),
)

# Pixel opens: who opened is a keyed digest (none in aggregate mode), where from only a
# network (/24 or /16, /48), with what only a user-agent family.
opens = sa.Table(
    "opens",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("queue_id", sa.String(40), nullable=True),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("recipient_digest", sa.String(64), nullable=True),
    sa.Column("network", sa.String(50), nullable=False),
    sa.Column("ua_family", sa.String(40), nullable=False),
    sa.Column("machine", sa.Boolean, nullable=False),
    sa.Column("signals", sa.String(100), nullable=False, server_default=""),
    # human | machine | bot (pixels/verdict.py); NULL in rows from before it: see `machine`
    sa.Column("verdict", sa.String(8), nullable=True),
    sa.Index("ix_opens_tenant_at", "tenant_id", "at"),
    sa.Index("ix_opens_tenant_campaign", "tenant_id", "campaign"),
    sa.Index("ix_opens_tenant_queue", "tenant_id", "queue_id"),
)

# DKIM private keys, one or more per tenant domain, sealed like any other secret. The newest
# active key of each algorithm signs; a retired key stays listed until its DNS record goes.
dkim_keys = sa.Table(
    "dkim_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("selector", sa.String(63), nullable=False),
    sa.Column("algorithm", sa.String(20), nullable=False),  # rsa-sha256 | ed25519-sha256
    sa.Column("public_key", sa.Text, nullable=False),  # base64, as published in DNS
    sa.Column("sealed_key", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("retired_at", Timestamp, nullable=True),
    sa.UniqueConstraint("domain", "selector", name="uq_dkim_keys_domain"),
)

# Sealed secrets of mailboxes and OAuth clients (refresh and access tokens, smarthost
# passwords, client secrets). `name` says whose and which field ("mailbox/17/refresh_token");
# it and the tenant are bound into the sealing context. `vault.backend = "redis"` keeps these
# in a separate Redis database instead.
sealed_secrets = sa.Table(
    "sealed_secrets",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# How a mailbox logs in upstream; the secrets themselves are in `sealed_secrets`.
# The refresh lease makes a token refresh single-flight across processes and nodes.
mailbox_credentials = sa.Table(
    "mailbox_credentials",
    metadata,
    sa.Column("mailbox_id", sa.ForeignKey("mailboxes.id"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # oauth | password
    sa.Column("provider", sa.String(20), nullable=False, server_default=""),
    sa.Column("oauth_client_id", sa.Integer, nullable=True),
    sa.Column("username", sa.String(320), nullable=False),
    sa.Column("scopes", sa.String(2000), nullable=False, server_default=""),
    sa.Column("access_expires_at", Timestamp, nullable=True),
    sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("refresh_lease_until", Timestamp, nullable=True),
    sa.Column("connected_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# OAuth clients (client id; the secret is sealed): global, or one tenant's own, because an
# imported refresh token refreshes only with the client that issued it.
oauth_clients = sa.Table(
    "oauth_clients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("public_id", sa.String(40), nullable=False, unique=True),
    sa.Column("tenant_id", sa.Integer, nullable=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("client_id", sa.String(500), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# Admin API keys: only a SHA-256 of the key is kept (256 random bits need no slow KDF).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("prefix", sa.String(40), nullable=False, unique=True),  # public key id
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(20), nullable=False),  # ops | compliance | admin
    sa.Column("tenant_id", sa.Integer, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("last_used_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

# OAuth authorization-code flows in progress (PKCE): single use, 10 minutes. Only digests
# of the flow ticket, the state and the browser binding are kept; the verifier is sealed.
oauth_flows = sa.Table(
    "oauth_flows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("browser_hash", sa.String(64), nullable=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("mailbox_id", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("oauth_client_id", sa.Integer, nullable=False),
    sa.Column("sealed_verifier", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
)

# Suppression entries: defined by the `suppression` library (its queries are written against
# that definition), created by migration 0008.
suppressions = suppression_schema.suppressions.to_metadata(metadata)

# Reviewers of the review pages (`gateway user add`): scrypt password, sealed TOTP secret,
# lockout after repeated failures. `tenant_id` binds one to a tenant's messages only.
reviewers = sa.Table(
    "reviewers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(200), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),  # ops | compliance | admin
    sa.Column("tenant_id", sa.Integer, nullable=True),
    sa.Column("sealed_totp", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("totp_last_step", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", Timestamp, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_login_at", Timestamp, nullable=True),
)

# Signed-in reviewers: only a digest of the cookie's token is kept, with the session's CSRF
# token. Ends after review.idle_minutes without a request, or review.session_hours in all.
review_sessions = sa.Table(
    "review_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("reviewer_id", sa.Integer, nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_seen_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

# Before issue 21 each tenant's key (sealed by the vault) was kept here; a starting gateway
# moves them to the tenant key store (vault/key_store.py) and deletes the rows.
tenant_keys = sa.Table(
    "tenant_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False, unique=True),
    sa.Column("sealed_key", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# Sending-limit counters (gateway/limits/counters.py) when no Redis is configured: one row
# per sender and window, deleted by the retention round once the window is over.
rate_counters = sa.Table(
    "rate_counters",
    metadata,
    sa.Column("key", sa.String(120), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)


# Reputation circuit breakers (limits/breakers.py): one row per scope that ever warned or
# tripped. `generation` grows at each resume, and names the counters the rates are read
# from, so a resumed breaker starts its windows afresh. No personal data: ids and rates.
breakers = sa.Table(
    "breakers",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False, index=True),
    # t<tenant id>, d<domain id>, m<mailbox id>, c<tenant id>.<campaign key>
    sa.Column("scope", sa.String(40), nullable=False, unique=True),
    sa.Column("state", sa.String(12), nullable=False),  # closed | warn | open
    sa.Column("metric", sa.String(20), nullable=False),  # complaints | bounces | blocks | ...
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("window", sa.String(8), nullable=False),  # 24h | 7d | now
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("changed_at", Timestamp, nullable=False),
    sa.Column("changed_by", sa.String(200), nullable=False),
    sa.Column("label", sa.String(200), nullable=True),  # a campaign scope: its name
)


# Versions of the lawful-basis table (lawful/versions.py): the newest is in force; every
# version stays, so a copy's audit row names the one it was decided under.
lawful_policies = sa.Table(
    "lawful_policies",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("policy_id", sa.String(60), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    # the version it follows (0: the first): one each, so two publishers cannot both follow
    # the same version
    sa.Column("follows", sa.Integer, nullable=True),
    sa.Index("ux_lawful_policies_follows", "follows", unique=True),
)


# What a tenant knows of its recipients (lawful/records.py), by audit digest only.
recipient_records = sa.Table(
    "recipient_records",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("kind", sa.String(12), nullable=True),  # named | generic | sole_trader
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.UniqueConstraint("tenant_id", "digest", name="uq_recipient_records_digest"),
)
consent_records = sa.Table(
    "consent_records",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("basis", sa.String(20), nullable=False),
    sa.Column("given_at", Timestamp, nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("method", sa.String(100), nullable=False, server_default=""),
    sa.Column("evidence", sa.Text, nullable=False, server_default=""),  # sha256:... erased
    sa.Column("scope", sa.String(200), nullable=False, server_default=""),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("withdrawn_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Index("ix_consent_records_digest", "tenant_id", "digest"),
)


# Which people's lawful-basis records changed (lawful/index.py): every node re-reads them.
# Digests only (or none: the whole tenant); kept a day.
lawful_record_changes = sa.Table(
    "lawful_record_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("digests", sa.JSON, nullable=True),
    sa.Column("changed_at", Timestamp, nullable=False),
    sa.Index("ix_lawful_record_changes_at", "changed_at"),
)


# Who has had the allow-with-notice notice from which tenant (lawful/notices.py): the person
# by audit digest only; kept as the tenant's proof it told them, like a consent's.
lawful_notices = sa.Table(
    "lawful_notices",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("queue_id", sa.String(40), nullable=False),  # the message that carried it
    sa.Column("policy", sa.String(80), nullable=False),  # "ocg-default v3"
    sa.Column("noticed_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "digest", name="pk_lawful_notices"),
)


# Signed opt-out receipts (optout/receipts.py): the person only by audit digest, so a
# receipt outlives erasure; kept with the audit trail.
optout_receipts = sa.Table(
    "optout_receipts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("recipient_digest", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    sa.Column("effective_at", Timestamp, nullable=False),
    sa.Column("receipt", sa.Text, nullable=False),  # "" while pending (optout/receipts.py)
    sa.Column("audit_head", sa.String(64), nullable=False, server_default=""),
    sa.Column("expires_at", Timestamp, nullable=True),  # an entry that lapses (soft bounce)
    sa.Index("ix_optout_receipts_tenant", "tenant_id", "recipient_digest"),
    sa.Index("ix_optout_receipts_effective_at", "effective_at"),
)


# Every copy the gateway sent (or queued), by the Message-ID it carried: feedback about a
# message (a bounce, a complaint, an opt-out reply) counts only for a copy found here, and
# only for its tenant. No address: the recipient as the audit trail names it (keyed
# digest) and as a suppression entry would (suppression digest, for a complaint whose
# report hides the address).
sent_messages = sa.Table(
    "sent_messages",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("message_id_hash", sa.String(64), nullable=False),  # SHA-256 of the Message-ID
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("mailbox_id", sa.Integer, nullable=False),
    sa.Column("queue_id", sa.String(40), nullable=False),
    sa.Column("recipient_digest", sa.String(64), nullable=False),
    sa.Column("suppression_digest", sa.LargeBinary(16), nullable=True),
    sa.Column("sent_at", Timestamp, nullable=False),
    # keyed digest of the subject without reply prefixes: a reply whose mail program
    # dropped In-Reply-To and References still finds its thread (feedback/sent.py)
    sa.Column("subject_hash", sa.String(64), nullable=True),
    sa.Index("ix_sent_messages_message_id_hash", "message_id_hash"),
    sa.Index("ix_sent_messages_sent_at", "sent_at"),
    sa.Index("ix_sent_messages_queue_id", "queue_id"),  # a VERP bounce names its copy
    sa.Index("ix_sent_messages_suppression_digest", "suppression_digest"),  # a thread
)

# Feedback that suppresses nobody at once but is counted: soft bounces (4.x.x) per
# recipient, suppressing for a while after `[feedback] soft_bounces` within
# `soft_bounce_days`; policy blocks (5.7.x) per sending mailbox. Digest only, no address.
feedback_marks = sa.Table(
    "feedback_marks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("mailbox_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),  # soft | policy | complaint
    sa.Column("status", sa.String(12), nullable=False),  # the enhanced status code
    sa.Column("suppression_digest", sa.LargeBinary(16), nullable=True),
    sa.Column("recipient_digest", sa.String(64), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_feedback_marks_tenant_id", "tenant_id", "kind", "suppression_digest"),
    sa.Index("ix_feedback_marks_at", "at"),
)

# Replies that may ask to stop, for a person to confirm ("possible opt-out"). The reply is
# sealed by the vault (it holds the person's words and address); the row names the sent
# copy it answers.
optout_reviews = sa.Table(
    "optout_reviews",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("mailbox_id", sa.Integer, nullable=False),
    sa.Column("queue_id", sa.String(40), nullable=False),  # the copy the reply answers
    sa.Column("recipient_digest", sa.String(64), nullable=False),
    sa.Column("suppression_digest", sa.LargeBinary(16), nullable=True),
    sa.Column("rule", sa.String(80), nullable=False),
    sa.Column("sealed_reply", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # pending | confirmed | dismissed
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("decided_at", Timestamp, nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Index("ix_optout_reviews_status", "status", "tenant_id"),
    sa.Index("ix_optout_reviews_created_at", "created_at"),
)

# Where reading a mailbox's replies and bounces over IMAP got to, per folder: shared by
# every node, so nothing is read twice across restarts or nodes. A lease names the one node
# reading a mailbox now.
inbox_state = sa.Table(
    "inbox_state",
    metadata,
    sa.Column("mailbox_id", sa.Integer, primary_key=True),
    sa.Column("folder", sa.String(200), primary_key=True),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("next_uid", sa.BigInteger, nullable=False),  # the first UID not yet read
    sa.Column("lease_owner", sa.String(80), nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Which tenants have a key in the tenant key store, with a fingerprint of it (not the key):
# a live tenant listed here whose key the store lacks is reported, never silently re-keyed.
tenant_key_refs = sa.Table(
    "tenant_key_refs",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)
