"""The gateway's parts a command needs, built from the configuration as `serve` builds
them (issue 24 replaces this with the one wiring module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.cli import shared
from gateway.config import Config
from gateway.directory.store import DirectoryStore


async def queue_parts(engine: Any, config: Config) -> Any:
    """The queue with what an operator action needs (the vault opens the sealed copies)."""
    from gateway.audit.trail import (
        DIGEST_PURPOSE,
        LEGACY_DIGEST_INFO,
        AuditTrail,
        recipient_digest,
    )
    from gateway.directory.cache import Directory
    from gateway.queue.worker import QueueWorker
    from gateway.vault.purpose import PurposeKeys

    vault = shared.open_vault(config)
    purposes = PurposeKeys(engine, vault)
    await purposes.ensure(DIGEST_PURPOSE, seed=vault.derived_key(LEGACY_DIGEST_INFO))
    key = purposes.current(DIGEST_PURPOSE)[1]
    store = queue_store(engine, config)
    directory_store = DirectoryStore(engine)
    worker = QueueWorker(config, store, {}, Directory(directory_store, config), directory_store,
                         AuditTrail(engine, names=await event_names(engine, config)),
                         lambda r: recipient_digest(key, r),
                         await suppression_lists(engine, config, purposes))
    return store, worker, key


async def audit_digest(engine: Any, config: Config, purposes: Any = None) -> Callable[[str], str]:
    """The audit trail's keyed digest (made on first use), as the running gateway has it."""
    from gateway.audit.trail import DIGEST_PURPOSE, LEGACY_DIGEST_INFO, recipient_digest
    from gateway.vault.purpose import PurposeKeys

    vault = shared.open_vault(config)
    purposes = purposes or PurposeKeys(engine, vault)
    await purposes.ensure(DIGEST_PURPOSE, seed=vault.derived_key(LEGACY_DIGEST_INFO))
    key = purposes.current(DIGEST_PURPOSE)[1]
    return lambda value: recipient_digest(key, value)


def tenant_keys(engine: Any, config: Config) -> Any:
    """The tenant keys, in the configured key store."""
    from gateway.config import tenant_key_location
    from gateway.vault.key_store import key_store_for
    from gateway.vault.tenant_keys import TenantKeys

    return TenantKeys(engine, shared.open_vault(config), key_store_for(tenant_key_location(config)))


def tenant_sealer(engine: Any, config: Config) -> Any:
    """Seals a tenant's values under its key, as the gateway does."""
    from gateway.vault.tenant_keys import TenantSealer

    return TenantSealer(tenant_keys(engine, config))


def queue_store(engine: Any, config: Config) -> Any:
    """The delivery queue, its copies opened with their tenants' keys."""
    from gateway.queue.store import QueueStore
    from gateway.vault.tenant_keys import TenantSealer

    return QueueStore(engine, shared.open_vault(config), config.queue.lifetime,
                      TenantSealer(tenant_keys(engine, config)))


async def event_names(engine: Any, config: Config) -> Any:
    """How events name recipients (sealed under tenant keys), as the gateway wires it."""
    from gateway.events.names import EventNames
    from gateway.vault.tenant_keys import TenantSealer

    return EventNames(TenantSealer(tenant_keys(engine, config)),
                      await audit_digest(engine, config))


async def held_store(engine: Any, config: Config) -> Any:
    """The held messages, their names opened as the gateway opens them."""
    from gateway.events.names import EventNames
    from gateway.review.held import HeldStore
    from gateway.vault.tenant_keys import TenantSealer

    vault = shared.open_vault(config)
    sealer = TenantSealer(tenant_keys(engine, config))
    digest = await audit_digest(engine, config)
    return HeldStore(engine, vault, sealer, EventNames(sealer, digest), digest)


async def suppression_lists(engine: Any, config: Config, purposes: Any = None) -> Any:
    """The suppression lists, opened with the digest key (made on first use)."""
    from gateway.optout.suppressions import SUPPRESSION_PURPOSE, Suppressions
    from gateway.vault.purpose import PurposeKeys

    purposes = purposes or PurposeKeys(engine, shared.open_vault(config))
    await purposes.ensure(SUPPRESSION_PURPOSE)
    suppressions = Suppressions(engine, config.database.url, config.database.schema)
    suppressions.open(*reversed(purposes.current(SUPPRESSION_PURPOSE)))
    suppressions.audit_digest = await audit_digest(engine, config, purposes)
    return suppressions


def purpose_keys(engine: Any, config: Config) -> Any:
    from gateway.vault.purpose import PurposeKeys

    return PurposeKeys(engine, shared.open_vault(config))


async def credentials(engine: Any, config: Config) -> Any:
    from gateway.service import build_vault_parts

    credentials, _ = build_vault_parts(config, engine, shared.open_vault(config))
    await credentials.secrets.check()
    return credentials
