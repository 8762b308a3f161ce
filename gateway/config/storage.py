"""`[database]`, `[vault]`, `[audit]`, `[retention]`: where the data lives, what seals it,
the audit trail and how long each store keeps personal data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.config.rules import require
from gateway.config.schema import POSITIVE, ZERO_OR_MORE, Rule, setting

DATABASE_URL = Rule(lambda v: v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
                    "Must start with sqlite+aiosqlite:// or postgresql+asyncpg://.")
_REDIS_URLS = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """`[database]`: SQLite for one node, PostgreSQL for several."""

    url: str = setting("sqlite+aiosqlite:///var/gateway.db",
                       "`sqlite+aiosqlite:///...` or `postgresql+asyncpg://...`.", DATABASE_URL)
    schema: str = setting("", "PostgreSQL only: the schema (search path) the tables live in.")
    pool_size: int = setting(10, "Connections kept open per node (`serve --workers` splits "
                                 "them among its workers, at least 2 each).")
    min_free_mb: int = setting(100, "SQLite: new mail is refused (`452 4.3.1`) while the "
                               "database's directory has less free space than this "
                               "(Postfix's queue_minfree); 0 turns the check off "
                               "(docs/operations.md, \"Delivery guarantees\").", ZERO_OR_MORE)


@dataclass(frozen=True, slots=True)
class VaultConfig:
    """`[vault]`: the master keys that seal every secret, and where sealed secrets and
    tenant keys live (docs/keys.md). A rotation: add the new key as `master_key_file`, list
    the old one in `previous_key_files`, reload every node, `gateway vault rewrap`."""

    master_key_file: str = setting("", "The primary key (mode 600, 32 random bytes in base64): "
                                   "new secrets are sealed under it. This or "
                                   "`master_key_env` is required.")
    master_key_env: str = setting("", "The name of an environment variable holding the key "
                                  "(base64).")
    previous_key_files: tuple[str, ...] = setting((), "Older keys that still open what they "
                                                  "sealed, during a rotation.")
    dev_generate: bool = setting(False, "Generate `var/dev-master.key`; development only.")
    backend: Literal["database", "redis"] = setting(
        "database", "Where sealed mailbox secrets live: the main database, or a separate "
        "Redis database (which must run with appendonly yes and appendfsync always; checked "
        "at start-up).")
    redis_url: str = setting("", "The Redis of `backend = \"redis\"`.")
    tenant_key_store: str = setting("", "Where tenant keys live, apart from the data so that "
                                    "deleting one shreds the tenant's backups too: a "
                                    "directory (`dir:/path`; default "
                                    "`<data_dir>-tenant-keys`, beside the data, not in it), "
                                    "`redis://...` or a separate `postgresql://...` database.")
    tenant_key_store_single_node: bool = setting(
        False, "A directory store is one node's: `serve` refuses it with a PostgreSQL "
        "database (shared by several nodes) unless this says there is only one node.")


def check_vault(vault: VaultConfig, database_url: str, data_dir: str,
                development: bool) -> None:
    if vault.dev_generate:
        require(development, "vault.dev_generate", True,
                "The generated development master key is refused unless "
                "environment = 'development'.")
    else:
        require(bool(vault.master_key_file or vault.master_key_env),
                "vault.master_key_file", "", "A master key source is required.")
    if vault.backend == "redis":
        require(vault.redis_url.startswith(_REDIS_URLS), "vault.redis_url", vault.redis_url,
                "vault.backend = 'redis' needs a redis://, rediss:// or unix:// URL.")
    store = vault.tenant_key_store
    if store.startswith(("redis", "unix:", "postgresql")):
        require(store.startswith((*_REDIS_URLS, "postgresql://", "postgresql+asyncpg://")),
                "vault.tenant_key_store", store,
                "A directory (dir:/path), redis://, rediss://, unix:// or postgresql:// URL.")
        require(store.rstrip("/") != database_url.rstrip("/"), "vault.tenant_key_store",
                store, "Must not be the main database: its backups would keep the keys.")
    elif store:
        where = Path(store.removeprefix("dir:")).resolve()
        # development may keep them in var/, so that one 'make clean' resets everything
        require(development or not where.is_relative_to(Path(data_dir).resolve()),
                "vault.tenant_key_store", store,
                "Must be outside data_dir: a backup of the data must not carry the keys.")


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """`[audit]`: the audit trail, a hash chain per node anchored under an HMAC key
    (`gateway audit verify`)."""

    batch_max_rows: int = setting(1000, "Rows per group commit at most.")
    batch_max_delay: float = setting(0.0, "Extra seconds to gather a batch; 0: commit at "
                                     "once.")
    chain: str = setting("", "This node's hash chain, unique per node; empty: the host name.")
    anchor_interval: float = setting(60.0, "Seconds between HMAC anchors of every chain's "
                                     "head.", Rule(lambda v: v > 0,
                                                   "Must be greater than 0 seconds."))


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """`[retention]`: how long each store of personal data is kept, in days. Held and
    refused copies are under `[review]`, expired suppressions under `[suppressions]`;
    `gateway retention` prints the whole schedule (docs/retention.md)."""

    audit_days: float = setting(730.0, "Audit rows, pruned under a signed checkpoint.",
                                POSITIVE)
    queue_days: float = setting(30.0, "Finished queue copies (sealed copy, Message-ID, "
                                "recipient).", POSITIVE)
    events_days: float = setting(90.0, "Tenant events (opt-outs, deliveries, bounces...).",
                                 POSITIVE)
    webhook_outbox_days: float = setting(7.0, "Delivered or failed webhook deliveries.",
                                         POSITIVE)
    opens_days: float = setting(180.0, "Pixel opens (digest, network, user-agent family).",
                                POSITIVE)
    sent_index_days: float = setting(180.0, "Sent Message-IDs that bounces, complaints and "
                                     "replies are matched against.", POSITIVE)
    feedback_marks_days: float = setting(30.0, "Counted soft bounces and policy blocks "
                                         "(digests).", POSITIVE)
    optout_reviews_days: float = setting(90.0, "Possible opt-outs waiting for a person (the "
                                         "reply, sealed), from arrival.", POSITIVE)
    abuse_mail_days: float = setting(90.0, "postmaster@ and abuse@ mail kept in the Maildir.",
                                     POSITIVE)
    oauth_flows_days: float = setting(1.0, "Finished or abandoned OAuth sign-ins.", POSITIVE)
    interval: float = setting(3600.0, "Seconds between purge rounds inside `gateway serve`.",
                              POSITIVE)
