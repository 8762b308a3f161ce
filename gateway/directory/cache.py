"""An in-memory snapshot of the directory, refreshed every few seconds.

The SMTP hot path reads logins, mailboxes and tenant settings from here, never from the
database; a change made by the CLI (or another node) is seen within `tenants.settings_refresh`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from gateway import background
from gateway.config import Config
from gateway.directory import address as addr
from gateway.directory import settings as tenant_settings
from gateway.directory.records import Login, Mailbox, Tenant
from gateway.directory.store import DirectoryStore

log = logging.getLogger("gateway.directory")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    tenants: dict[int, Tenant] = field(default_factory=dict)
    settings: dict[int, dict[str, Any]] = field(default_factory=dict)
    domains: dict[str, int] = field(default_factory=dict)  # domain -> tenant id
    domain_ids: dict[str, int] = field(default_factory=dict)  # domain -> its own id
    verified: frozenset[str] = frozenset()  # domains proven by their TXT token
    logins: dict[str, Login] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)  # address key -> mailbox
    mailbox_ids: dict[int, Mailbox] = field(default_factory=dict)


class DirectoryCache:
    def __init__(self, store: DirectoryStore, config: Config) -> None:
        self._store = store
        self._config = config
        self._snap = _Snapshot()
        self._task: asyncio.Task[None] | None = None

    def reconfigure(self, config: Config) -> None:
        self._config = config
        self._snap = self._build(self._raw)

    async def refresh(self) -> None:
        self._raw = await self._store.snapshot()
        self._snap = self._build(self._raw)

    def _build(self, raw: Any) -> _Snapshot:
        tenants, domains, logins, mailboxes = raw
        return _Snapshot(
            tenants={x.id: x for x in tenants},
            settings={x.id: tenant_settings.effective(x.settings, self._config) for x in tenants},
            domains={d.name: d.tenant_id for d in domains},
            domain_ids={d.name: d.id for d in domains},
            verified=frozenset(d.name for d in domains if d.verified),
            logins={x.username: x for x in logins},
            mailboxes={addr.key(m.address): m for m in mailboxes},
            mailbox_ids={m.id: m for m in mailboxes},
        )

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="directory-refresh")

    async def stop(self) -> None:
        await background.stop(self._task)
        self._task = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.tenants.settings_refresh)
            try:
                await self.refresh()
            except Exception:  # keep serving from the last good snapshot
                log.exception("directory refresh failed; serving the previous snapshot")

    # --- lookups (synchronous: plain dict reads) -------------------------------------------
    def login(self, username: str) -> Login | None:
        return self._snap.logins.get(username)

    def tenant(self, tenant_id: int) -> Tenant | None:
        return self._snap.tenants.get(tenant_id)

    def all_tenants(self) -> list[Tenant]:
        return list(self._snap.tenants.values())

    def setting(self, tenant_id: int, key: str) -> Any:
        return self._snap.settings[tenant_id][key]

    def mailbox(self, address: str) -> Mailbox | None:
        return self._snap.mailboxes.get(addr.key(address))

    def all_mailboxes(self) -> list[Mailbox]:
        return list(self._snap.mailbox_ids.values())

    def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        return self._snap.mailbox_ids.get(mailbox_id)

    def domain_tenant(self, domain: str) -> int | None:
        return self._snap.domains.get(domain.lower())

    def domain_id(self, domain: str) -> int | None:
        return self._snap.domain_ids.get(domain.lower())

    def tenant_domains(self, tenant_id: int) -> list[tuple[str, int]]:
        """(name, id) of each of the tenant's domains."""
        return sorted((name, self._snap.domain_ids[name])
                      for name, owner in self._snap.domains.items() if owner == tenant_id)

    def domain_name(self, domain_id: int) -> str | None:
        return next((name for name, i in self._snap.domain_ids.items() if i == domain_id),
                    None)

    def domain_verified(self, domain: str) -> bool:
        return domain.lower() in self._snap.verified
