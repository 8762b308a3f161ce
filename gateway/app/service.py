"""A running gateway: the parts built from the configuration (`parts.py`), started and
stopped in order.

`gateway serve` runs one; the tests run one in-process on port 0.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from gateway import background
from gateway import config as config_module
from gateway.app.parts import Parts
from gateway.app.workers import runs_node_duties
from gateway.audit import chain as audit_chain
from gateway.config import OAUTH_UPSTREAM_KINDS, Config, data_path
from gateway.errors import ConfigError, VaultError, port_unavailable
from gateway.feedback import mailto
from gateway.pixels.networks import load as load_networks
from gateway.policy.check import PolicyContext
from gateway.policy.pipeline import Pipeline
from gateway.smtp.server import GatewaySMTP, Listener, server_tls_context
from gateway.smtp.tls import tls_files
from gateway.store.engine import require_head
from gateway.vault.master_keys import provider_for
from gateway.web.admin import create_admin_app
from gateway.web.public import create_public_app
from gateway.web.server import HttpListener

log = logging.getLogger("gateway")


ROLES = ("smtp", "public", "admin")


async def _listen(name: str, host: str, port: int, start: Callable[[], Awaitable[int]]
                  ) -> int:
    """Start a listener; a port that cannot be bound is one line naming it (exit code 9)."""
    try:
        return await start()
    except OSError as exc:
        raise port_unavailable(name, host, port, exc) from None


@dataclass(frozen=True, slots=True)
class Ports:
    submission: int
    implicit_tls: int
    public: int = 0
    admin: int = 0
    mailto: int = 0


class Gateway(Parts):
    """The parts, with the listeners and pollers of a running gateway."""

    def __init__(self, config: Config, config_path: str | None = None,
                 sockets: Mapping[str, socket.socket] | None = None) -> None:
        super().__init__(config)
        self._config_path = config_path
        self._sockets = dict(sockets or {})  # name -> a socket bound by `serve --workers`
        self._alert_checks = self._poller(self._check_alerts, 2, config.alerts.check_interval,
                                          "alert-checks")
        self._anchors = self._poller(self._anchor, 2, config.audit.anchor_interval,
                                     "audit-anchor")
        self._keys_refresh = self._poller(self._reload_keys, 1, 10.0, "key-refresh")
        self._purge = self._poller(self._retention_round, 1, config.retention.interval,
                                   "retention")
        self._inbox = self._poller(self.inbox.run_once, 1, config.feedback.inbox_poll_seconds,
                                   "inbox-reader")
        self._review = self._poller(self.review.run_once, 50, config.queue.poll_interval,
                                    "review-releases")
        cert, key = tls_files(config)
        self._tls: ssl.SSLContext = server_tls_context(cert, key)
        self._http_tls = server_tls_context(config.http.tls_cert, config.http.tls_key) \
            if config.http.tls_cert else None
        self._listeners: list[Listener] = []
        self._http: list[HttpListener] = []
        self.ports = Ports(0, 0)
        self.keyless_tenants: list[int] = []  # live tenants whose key the store lacks

    @staticmethod
    def _poller(run: Callable[[], Awaitable[int]], full: int, interval: float, name: str
                ) -> background.Poller:
        return background.Poller(run, full=full, interval=interval, log=log, name=name)

    def _factory(self, implicit_tls: bool) -> GatewaySMTP:
        return GatewaySMTP(self.handler, self.config.smtp, self._tls, implicit_tls,
                           self.client_connections)

    async def start(self, run_queue: bool = True, roles: tuple[str, ...] = ROLES) -> Ports:
        """Start the parts of `roles`: `smtp` (listeners, queue, webhooks), `public` and
        `admin` (the two HTTP listeners)."""
        await self.alerts.start()  # first: a failing start-up alerts too
        await require_head(self.engine)
        await self._open_tenant_keys()
        await self.credentials.secrets.check()
        await self.upstream_passwords.adopt_configured()
        await self.open_keys()
        await self._open_suppressions()
        await self._seal_legacy_names()
        self._keys_refresh.start()  # every role: a public node opens tokens of new key versions
        await self.directory.start()
        await self.audit.start()
        await self.breakers.start()  # every node counts, evaluates and reads the states
        await self.policies.start()  # every node decides with the newest lawful-basis table
        await self.lawful.index.start()  # and knows who has records
        self._anchors.start()  # every node: any of them anchors every chain
        http = self.config.http
        public = admin = 0
        if "public" in roles:
            await self.opens.start()
            await self.forwarder.start()
            listener_http = HttpListener(create_public_app(self.web), http.public_listen,
                                         http.public_port, http.access_log,
                                         self._sockets.get("public"), self._http_tls)
            public = await _listen("public HTTP", http.public_listen, http.public_port,
                                   listener_http.start)
            self._http.append(listener_http)
        # a runtime fact, not wiring: with port 0 the public base URL is known once bound
        self.web.public_base_url = http.public_base_url or (
            f"{http.scheme}://{http.public_listen}:{public or http.public_port}")
        self.composer.public_base_url = self.web.public_base_url
        if "admin" in roles:
            listener_http = HttpListener(create_admin_app(self.web), http.admin_listen,
                                         http.admin_port, http.access_log,
                                         self._sockets.get("admin"), self._http_tls)
            admin = await _listen("admin HTTP", http.admin_listen, http.admin_port,
                                  listener_http.start)
            self._http.append(listener_http)
        submission = implicit = mailto_port = 0
        duties = run_queue and runs_node_duties()  # one worker of a node runs the pollers
        if "smtp" in roles:
            if duties:
                self._review.start()
                if self.config.feedback.read_inboxes and any(
                        up.kind in OAUTH_UPSTREAM_KINDS for up in self.config.upstreams.values()):
                    self._inbox.start()
                self._alert_checks.start()
                await self.worker.start()
                await self.webhooks.start()
                self._purge.start()
            submission, implicit = await self._start_smtp()
            if self.config.unsubscribe.mailto_listen:
                mailto_port = await self._start_mailto()
        self.ports = Ports(submission, implicit, public, admin, mailto_port)
        log.info("gateway started", extra={"submission_port": submission,
                                           "implicit_tls_port": implicit,
                                           "public_port": public, "admin_port": admin,
                                           "mailto_port": mailto_port,
                                           "node_duties": duties and "smtp" in roles,
                                           "environment": self.config.environment})
        return self.ports

    async def _open_tenant_keys(self) -> None:
        """The tenant key store: one node's directory only with a one-node database; keys
        moved out of the database; live tenants whose key is missing reported."""
        store = self.tenant_keys.store
        if not store.shared and self.engine.dialect.name == "postgresql" \
                and not self.config.vault.tenant_key_store_single_node:
            raise ConfigError(
                "Config 'vault.tenant_key_store' is a directory, which only this node can "
                "read, but the database is PostgreSQL (shared by nodes). Use a redis:// or a "
                "separate postgresql:// key store, or set vault.tenant_key_store_single_node "
                "= true if this is the only node.")
        missing = await self.tenant_keys.start()
        if missing:
            log.error("tenants without their key: their sealed data cannot be opened and "
                      "their mail is deferred until the key store is restored", extra={
                          "tenants": missing, "alert": "ops"})
        self.keyless_tenants = missing

    async def _seal_legacy_names(self) -> None:
        """Rows written before migration 0020 name people in clear: seal them now."""
        sealed = await self.event_names.seal_legacy(self.engine)
        sealed_held = await self.held.seal_legacy()
        if sealed or sealed_held:
            log.info("sealed the names of older rows", extra={
                "events": sealed, "held_messages": sealed_held})

    async def _open_suppressions(self) -> None:
        """The digest key is made once and never replaced. If it cannot be unsealed, the
        gateway still starts, and every suppression check fails closed (451 4.3.5)."""
        try:
            await self.open_suppressions()
        except VaultError as exc:
            log.error("suppression lists unavailable: recipients get 451 4.3.5 until the "
                      "master key that sealed the digest key is loaded",
                      extra={"error": exc.message, "alert": "ops"})

    async def _check_alerts(self) -> int:
        await self.alerts.check_once()
        return 0

    async def _anchor(self) -> int:
        """Anchor every chain's head under the audit-anchor key (audit/chain.py)."""
        try:
            key = self.anchor_key()
        except VaultError:
            log.error("audit anchors cannot be written: the audit-anchor key is not loaded",
                      extra={"alert": "ops"})
            return 0
        return int(await audit_chain.write_anchor(self.engine, key))

    async def _reload_keys(self) -> int:
        await self.dkim.load()  # keys generated by the CLI or another node
        await self.purpose_keys.load()  # token key rotations and retirements
        return 0

    async def _retention_round(self) -> int:
        signed = await self.receipts.complete_pending(self.engine)  # left by a killed process
        if signed:
            log.warning("signed opt-out receipts a stopped process left pending",
                        extra={"receipts": signed})
        await self.retention.run_once()
        return 0  # one round per interval: each store's purge is one statement

    async def _start_mailto(self) -> int:
        unsub = self.config.unsubscribe
        handler = self.mailto_handler
        listener = Listener(mailto.factory(handler, self.config.smtp.hostname, self._tls),
                            unsub.mailto_listen, unsub.mailto_port, None,
                            self._sockets.get("mailto"))
        port = await _listen("mailto", unsub.mailto_listen, unsub.mailto_port, listener.start)
        self._listeners.append(listener)
        return port

    async def _start_smtp(self) -> tuple[int, int]:
        smtp = self.config.smtp
        implicit = 0
        listener = Listener(lambda: self._factory(False), smtp.listen, smtp.submission_port, None,
                            self._sockets.get("submission"))
        submission = await _listen("submission", smtp.listen, smtp.submission_port,
                                   listener.start)
        self._listeners.append(listener)
        if smtp.implicit_tls:
            # behind a balancer its PROXY header comes first here too, before TLS
            proxy = ((self.authenticator.is_balancer, smtp.proxy_timeout)
                     if smtp.proxy_protocol else None)
            listener = Listener(lambda: self._factory(True), smtp.listen, smtp.implicit_tls_port,
                                self._tls, self._sockets.get("implicit"), proxy)
            implicit = await _listen("implicit TLS", smtp.listen, smtp.implicit_tls_port,
                                     listener.start)
            self._listeners.append(listener)
        return submission, implicit

    async def stop(self, deadline: float = 30.0) -> None:
        """Stop accepting, answer new commands 421 4.3.2, let in-flight messages finish."""
        self.web.ready = False  # /readyz: 503, while still accepting for drain_seconds
        if self.config.http.drain_seconds and self._listeners:
            await asyncio.sleep(min(self.config.http.drain_seconds, deadline))
        self.handler.closing = True
        for listener in self._listeners:
            listener.close()
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while self.handler.in_flight and loop.time() < end:
            await asyncio.sleep(0.05)
        for http in self._http:
            await http.stop()
        await self.forwarder.stop()
        await self.opens.stop()
        await self.worker.stop()
        await self.webhooks.stop()
        await self._purge.stop()
        await self._keys_refresh.stop()
        await self._review.stop()
        await self._inbox.stop()
        await self._alert_checks.stop()
        await self.breakers.stop()  # this node's last counts, before the trail closes
        await self.policies.stop()
        await self.lawful.index.stop()
        await self.audit.stop()
        await self.write_health.stop()
        await self._anchors.stop()
        try:
            await self._anchor()  # the last rows of this run, anchored at a clean stop
        except (SQLAlchemyError, OSError) as exc:  # the store's trouble: the next start anchors
            log.error("final audit anchor not written", extra={"error": type(exc).__name__})
        await self.directory.stop()
        await self.relay.close()
        await self.credentials.close()
        await self.suppressions.close()
        await self.limits.close()
        self.authenticator.close()
        await self.alerts.stop()
        await self.dispose_engines()

    def reload(self) -> None:
        """SIGHUP: re-read what is safe to change live (TLS files, master keys, limits).

        A bad new configuration is logged and the running one kept. Listener addresses and
        the database URL need a restart.
        """
        try:
            new = config_module.load(self._config_path)
            cert, key = tls_files(new)
            self._tls.load_cert_chain(cert, key)  # new sessions get the new certificate
            if self._http_tls is not None and new.http.tls_cert:
                self._http_tls.load_cert_chain(new.http.tls_cert, new.http.tls_key)
            networks = load_networks(new.pixels.networks_file)
            self.vault.reload(provider_for(new))
        except Exception as exc:
            log.error("reload refused; keeping the running configuration",
                      extra={"error": str(exc)})
            return
        if (new.smtp.listen, new.smtp.submission_port, new.smtp.implicit_tls_port,
                new.database.url, new.http.scheme) != (
                    self.config.smtp.listen, self.config.smtp.submission_port,
                    self.config.smtp.implicit_tls_port, self.config.database.url,
                    self.config.http.scheme):
            log.warning("listener or database changes take effect after a restart")
        self.config = new
        self.pipeline = Pipeline(PolicyContext(new, self.directory, self.suppressions,
                                               self.breakers, self.lawful))
        self.breakers.reconfigure(new)
        self.handler.set_config(new, self.pipeline)
        self.composer.config = new
        self.authenticator.reconfigure(new.smtp)
        self.directory.reconfigure(new)
        self.pixel_judge.networks = networks
        self.pixel_judge.fast_seconds = new.pixels.machine_open_seconds
        log.info("configuration reloaded", extra={"pixel_networks": networks.size})


def demo_credentials_path(config: Config) -> Path:
    return data_path(config, "demo-credentials.txt")
