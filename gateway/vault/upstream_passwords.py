"""The operator's shared smarthost passwords, sealed in the secret store like every other
credential (tenant 0: they belong to no tenant).

The foundation read them from the configuration file; a password still found there is sealed
at start-up and a warning asks for it to be removed, so upgrading loses no login and the
file stops being a second copy of the secret.
"""

from __future__ import annotations

import hmac
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Config
from gateway.directory.store import audit_change
from gateway.errors import ConfigError, InvalidValue
from gateway.vault.secrets import SecretStore

log = logging.getLogger("gateway.vault")

OPERATOR_TENANT = 0  # secrets no tenant owns


def upstream_password_name(upstream: str) -> str:
    return f"upstream/{upstream}/password"


class UpstreamPasswords:
    def __init__(self, engine: AsyncEngine, secrets: SecretStore, config: Config) -> None:
        self._engine = engine
        self._secrets = secrets
        self._config = config

    async def get(self, upstream: str) -> str | None:
        value = await self._secrets.get(OPERATOR_TENANT, upstream_password_name(upstream))
        return value.decode() if value is not None else None

    async def set(self, upstream: str, password: str, actor: str) -> None:
        up = self._config.upstreams.get(upstream)
        if up is None:
            known = ", ".join(sorted(self._config.upstreams))
            raise InvalidValue(f"Upstream '{upstream}' is not configured (known: {known}).")
        if up.kind != "smtp":
            raise InvalidValue(f"Upstream '{upstream}' is a {up.kind} upstream; only smtp "
                               "smarthosts log in with a shared password.")
        if not up.username:
            raise InvalidValue(f"Set upstreams.{upstream}.username in the configuration first; "
                               "the password goes with that login.")
        if not password:
            raise InvalidValue("The password is empty.")
        await self._secrets.put(OPERATOR_TENANT, upstream_password_name(upstream),
                                password.encode())
        async with self._engine.begin() as conn:
            await audit_change(conn, actor, "upstream.password_set", None, upstream=upstream)

    async def clear(self, upstream: str, actor: str) -> None:
        await self._secrets.delete(OPERATOR_TENANT, [upstream_password_name(upstream)])
        async with self._engine.begin() as conn:
            await audit_change(conn, actor, "upstream.password_cleared", None,
                               upstream=upstream)

    async def adopt_configured(self) -> None:
        """Seal any password still in the configuration, then check every smarthost with a
        username has a password to go with it (start-up refuses one that has none)."""
        for name, up in sorted(self._config.upstreams.items()):
            if up.kind != "smtp" or not up.username:
                continue
            sealed = await self.get(name)
            if up.password:
                if sealed is None or not hmac.compare_digest(sealed, up.password):
                    await self.set(name, up.password, "config")
                log.warning("smarthost password found in the configuration; it is sealed in "
                            "the vault now, remove it from the file", extra={
                                "upstream": name, "setting": f"upstreams.{name}.password",
                                "command": f"gateway upstream password {name} "
                                           "--password-stdin"})
            elif sealed is None:
                raise ConfigError(
                    f"upstreams.{name} logs in as {up.username!r} but the vault holds no "
                    f"password for it: run `gateway upstream password {name} "
                    "--password-stdin`.")
