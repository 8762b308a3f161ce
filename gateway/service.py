"""A running gateway: the parts built from the configuration, started and stopped in order.

`gateway serve` runs one; the tests run one in-process on port 0.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import background
from gateway import config as config_module
from gateway.access.api_keys import ApiKeys
from gateway.audit import chain as audit_chain
from gateway.audit.trail import DIGEST_PURPOSE, LEGACY_DIGEST_INFO, AuditTrail
from gateway.config import OAUTH_UPSTREAM_KINDS, Config, data_path, tenant_key_location
from gateway.directory.cache import Directory
from gateway.directory.records import Tenant
from gateway.directory.store import DirectoryStore
from gateway.dkim.keys import DkimKeys
from gateway.errors import ConfigError, VaultError, port_unavailable
from gateway.events.names import EventNames
from gateway.events.webhook_store import WebhookStore
from gateway.events.webhooks import WebhookDispatcher
from gateway.lifecycle.retention import Retention
from gateway.lifecycle.subjects import Subjects
from gateway.limits.attempts import InvalidAttempts
from gateway.limits.counters import Count, DatabaseCounters, counters_for
from gateway.limits.sending import SendingLimits
from gateway.net.fetch import GuardedFetcher
from gateway.observability.alerts import Alerts
from gateway.optout import mailto
from gateway.optout.apply import FeedbackApplier
from gateway.optout.bounces import HardBounces
from gateway.optout.inbox import InboxReader
from gateway.optout.mailto import Bounces, MailtoHandler
from gateway.optout.record import OptOuts
from gateway.optout.reviews import OptOutReviews
from gateway.optout.sent import SentIndex
from gateway.optout.suppressions import SUPPRESSION_PURPOSE, Suppressions
from gateway.optout.token import PURPOSE as UNSUBSCRIBE_PURPOSE
from gateway.optout.token import TokenSealer
from gateway.optout.verp import PURPOSE as VERP_PURPOSE
from gateway.optout.verp import ReturnPaths
from gateway.outbound.compose import Composer, links_for
from gateway.pixels.forward import Forwarder
from gateway.pixels.opens import OpenRecorder
from gateway.pixels.token import PURPOSE as PIXEL_PURPOSE
from gateway.pixels.token import PixelSealer
from gateway.policy.check import PolicyContext
from gateway.policy.pipeline import Pipeline
from gateway.queue.store import QueueStore
from gateway.queue.worker import QueueWorker
from gateway.review.accounts import Reviewers
from gateway.review.held import HeldStore
from gateway.review.release import ReviewWorker
from gateway.smtp.auth import Authenticator
from gateway.smtp.auth_throttle import AuthThrottle
from gateway.smtp.connections import ClientConnections
from gateway.smtp.handler import GatewayHandler
from gateway.smtp.relay import Relay
from gateway.smtp.server import GatewaySMTP, Listener, server_tls_context
from gateway.smtp.suppressed import SuppressedReports
from gateway.smtp.tls import certificate_days_left, tls_files
from gateway.store.engine import create_engine, require_head
from gateway.store.health import WriteHealth, sqlite_directory
from gateway.upstream.base import Upstream
from gateway.upstream.logins import MailboxPasswordLogin, SharedLogin, XOAuth2Login
from gateway.upstream.maildir import MaildirUpstream
from gateway.upstream.smarthost import SmarthostUpstream
from gateway.vault.credentials import Credentials
from gateway.vault.envelope import Vault
from gateway.vault.flows import OAuthFlows
from gateway.vault.key_store import key_store_for
from gateway.vault.keys import provider_for
from gateway.vault.oauth import ProviderEndpoints
from gateway.vault.purpose import PurposeKeys
from gateway.vault.secrets import secret_store_for
from gateway.vault.tenant_keys import TenantKeys, TenantSealedSecrets, TenantSealer
from gateway.vault.tokens import TokenBroker
from gateway.vault.upstream_passwords import UpstreamPasswords
from gateway.web.admin import create_admin_app
from gateway.web.parts import PixelParts, ReviewParts, WebParts
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


def build_upstreams(config: Config, credentials: Credentials, broker: TokenBroker,
                    passwords: UpstreamPasswords, return_paths: ReturnPaths | None = None
                    ) -> dict[str, Upstream]:
    upstreams: dict[str, Upstream] = {}
    for name, up in config.upstreams.items():
        if up.kind == "maildir":
            upstreams[name] = MaildirUpstream(name, up.path)
        elif up.kind in OAUTH_UPSTREAM_KINDS:
            upstreams[name] = SmarthostUpstream(name, up, config.smtp.hostname,
                                                XOAuth2Login(broker))
        else:
            shared = SharedLogin(name, up.username, passwords)
            upstreams[name] = SmarthostUpstream(name, up, config.smtp.hostname,
                                                MailboxPasswordLogin(credentials, shared),
                                                return_paths)
    return upstreams


def build_vault_parts(config: Config, engine: AsyncEngine, vault: Vault,
                      keys: TenantKeys | None = None) -> tuple[Credentials, TokenBroker]:
    """Sealed secrets, mailbox credentials and the token broker, as configured."""
    secrets = TenantSealedSecrets(
        secret_store_for(config.vault.backend, config.vault.redis_url, engine, vault),
        keys or TenantKeys(engine, vault, key_store_for(tenant_key_location(config))))
    providers = {name: ProviderEndpoints(name, p) for name, p in config.oauth.items()}
    credentials = Credentials(engine, secrets, config, providers)
    return credentials, TokenBroker(engine, credentials, providers)


class Gateway:
    def __init__(self, config: Config, config_path: str | None = None,
                 sockets: Mapping[str, socket.socket] | None = None) -> None:
        self.config = config
        self._config_path = config_path
        self._sockets = dict(sockets or {})  # name -> a socket bound by `serve --workers`
        self.engine: AsyncEngine = create_engine(config.database.url, config.database.pool_size,
                                                  config.database.schema)
        self.vault = Vault(provider_for(config))
        self.directory = Directory(DirectoryStore(self.engine), config)
        self.purpose_keys = PurposeKeys(self.engine, self.vault)
        audit_chain.set_chain_name(config.audit.chain)
        # the heartbeat: a counter row in the database (even when the limits count in Redis),
        # expiring at once so the retention purge takes it
        heartbeat = functools.partial(DatabaseCounters(self.engine).hit,
                                      [Count("store:heartbeat", 0, 0, 1, 0)])
        self.write_health = WriteHealth(heartbeat, sqlite_directory(config.database.url),
                                        config.database.min_free_mb)
        self.tenant_keys = TenantKeys(self.engine, self.vault,
                                      key_store_for(tenant_key_location(config)))
        self.tenant_sealer = TenantSealer(self.tenant_keys)
        self.event_names = EventNames(self.tenant_sealer, self._digest)
        self.audit = AuditTrail(self.engine, config.audit.batch_max_rows,
                                config.audit.batch_max_delay, self.write_health,
                                self.event_names)
        self.queue = QueueStore(self.engine, self.vault, config.queue.lifetime,
                                self.tenant_sealer)
        self.alerts = Alerts(config, self.queue.deferred_since,
                             lambda: certificate_days_left(self.config))
        self._alert_checks = background.Poller(self._check_alerts, full=2,
                                               interval=config.alerts.check_interval, log=log,
                                               name="alert-checks")
        self._anchors = background.Poller(self._anchor, full=2,
                                          interval=config.audit.anchor_interval, log=log,
                                          name="audit-anchor")
        self.credentials, self.tokens = build_vault_parts(config, self.engine, self.vault,
                                                          self.tenant_keys)
        self.upstream_passwords = UpstreamPasswords(self.engine, self.credentials.secrets,
                                                    config)
        self.return_paths = ReturnPaths(self.purpose_keys, self._digest,
                                        self.verp_domain)
        upstreams = build_upstreams(config, self.credentials, self.tokens,
                                    self.upstream_passwords, self.return_paths)
        self.relay = Relay(upstreams, self.queue, config.queue.data_deadline,
                           config.queue.retry_first)
        counters = counters_for(config.limits.redis_url, self.engine)
        self.auth_throttle = AuthThrottle(counters, config.smtp.auth)
        self.authenticator = Authenticator(self.directory, config.smtp, self.auth_throttle)
        self.client_connections = ClientConnections(config.smtp.max_connections_per_client)
        self.suppressions = Suppressions(self.engine, config.database.url,
                                         config.database.schema)
        self.pipeline = Pipeline(PolicyContext(config, self.directory, self.suppressions))
        self.sealer = TokenSealer(self.purpose_keys)
        self.dkim = DkimKeys(self.engine, self.vault, self.tenant_sealer)
        self._keys_refresh = background.Poller(self._reload_keys, full=1, interval=10.0,
                                               log=log, name="key-refresh")
        self.pixel_sealer = PixelSealer(self.purpose_keys)
        self.composer = Composer(config, self.sealer, self.dkim, self.pixel_sealer)
        self.optouts = OptOuts(self.engine, self.suppressions, self.event_names)
        self.sent_index = SentIndex(self.engine, self._digest)
        self.feedback = FeedbackApplier(self.engine, self.suppressions, self.sent_index,
                                        self.vault, config.feedback, self.event_names,
                                        self.tenant_sealer)
        self.held = HeldStore(self.engine, self.vault, self.tenant_sealer, self.event_names,
                              self._digest)
        self.retention = Retention(config, self.engine, self.held, self.suppressions,
                                   self._anchor_key, data_path(config, "postmaster"))
        self._purge = background.Poller(self._retention_round, full=1,
                                        interval=config.retention.interval, log=log,
                                        name="retention")
        self.limits = SendingLimits(
            config, counters,
            {name: up.kind for name, up in config.upstreams.items()})
        self.handler = GatewayHandler(
            config, self.directory, self.pipeline, self.authenticator, self.relay, self.audit,
            digest_key=b"",  # set in start(), from the stored purpose key
            composer=self.composer, held=self.held, limits=self.limits,
            suppression_digest=self.suppressions.digest_of,
            bounces=HardBounces(self.suppressions), write_health=self.write_health,
            suppressed=SuppressedReports(config, self.queue, self.audit),
        )
        self.inbox = InboxReader(config, self.engine, self.directory, self.tokens,
                                 self.feedback)
        self._inbox = background.Poller(self.inbox.run_once, full=1,
                                        interval=config.feedback.inbox_poll_seconds, log=log,
                                        name="inbox-reader")
        self.review = ReviewWorker(self.held, self.directory, self.composer, self.queue,
                                   self.audit, config, self.handler.digest,
                                   self.suppressions.digest_of)
        self._review = background.Poller(self.review.run_once, full=50,
                                         interval=config.queue.poll_interval, log=log,
                                         name="review-releases")
        self.composer.set_digest(self.handler.digest)
        self.worker = QueueWorker(config, self.queue, upstreams, self.directory,
                                  DirectoryStore(self.engine), self.audit, self.handler.digest,
                                  self.suppressions)
        self.webhooks = WebhookDispatcher(self.engine,
                                          WebhookStore(self.engine, self.vault,
                                                       self.tenant_sealer),
                                          config.events, self.event_names, config.fetch)
        self.api_keys = ApiKeys(self.engine)
        self.flows = OAuthFlows(self.engine, self.vault, self.credentials)
        self.web = WebParts(config, DirectoryStore(self.engine), self.credentials, self.flows,
                            self.api_keys, self.suppressions, self.directory, self.sealer,
                            self.optouts, self.event_names,
                            InvalidAttempts(config.unsubscribe.invalid_rate))
        self.opens = OpenRecorder(self.engine, config.pixels.flush_interval)
        self.forwarder = Forwarder(GuardedFetcher(config.fetch), config.pixels.forward_concurrency,
                                   config.pixels.forward_queue)
        self.web.pixels = PixelParts(self.pixel_sealer, self.opens, self.forwarder)
        self.web.tenant_keys = self.tenant_keys
        self.web.subjects = Subjects(self.engine, self.suppressions, self.handler.digest,
                                    self.held, self.queue, config.smtp.hostname)
        self.reviewers = Reviewers(self.engine, self.vault, config.review)
        self.optout_reviews = OptOutReviews(self.engine, self.vault, self.suppressions,
                                            self.event_names, self.tenant_sealer)
        self.web.review = ReviewParts(self.engine, self.held, self.reviewers, self.queue,
                                      self.handler.digest, self.optout_reviews)
        cert, key = tls_files(config)
        self._tls: ssl.SSLContext = server_tls_context(cert, key)
        self._http_tls = server_tls_context(config.http.tls_cert, config.http.tls_key) \
            if config.http.tls_cert else None
        self._listeners: list[Listener] = []
        self._http: list[HttpListener] = []
        self.ports = Ports(0, 0)
        self.keyless_tenants: list[int] = []  # live tenants whose key the store lacks

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
        await self.purpose_keys.ensure(DIGEST_PURPOSE,
                                       seed=self.vault.derived_key(LEGACY_DIGEST_INFO))
        self.handler.set_digest_key(self.purpose_keys.current(DIGEST_PURPOSE)[1])
        self.auth_throttle.set_key(self.purpose_keys.current(DIGEST_PURPOSE)[1])
        self.suppressions.audit_digest = self.handler.digest  # searches are audited by it
        await self.purpose_keys.ensure(UNSUBSCRIBE_PURPOSE)
        await self.purpose_keys.ensure(PIXEL_PURPOSE)
        await self.purpose_keys.ensure(VERP_PURPOSE)
        await self.purpose_keys.ensure(audit_chain.ANCHOR_PURPOSE)
        await self.dkim.load()
        await self._open_suppressions()
        await self._seal_legacy_names()
        self._keys_refresh.start()  # every role: a public node opens tokens of new key versions
        await self.directory.start()
        await self.audit.start()
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
        if "smtp" in roles:
            if run_queue:
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
            await self.purpose_keys.ensure(SUPPRESSION_PURPOSE)
            version, key = self.purpose_keys.current(SUPPRESSION_PURPOSE)
        except VaultError as exc:
            log.error("suppression lists unavailable: recipients get 451 4.3.5 until the "
                      "master key that sealed the digest key is loaded",
                      extra={"error": exc.message, "alert": "ops"})
            return
        self.suppressions.open(key, version)

    async def _check_alerts(self) -> int:
        await self.alerts.check_once()
        return 0

    async def _anchor(self) -> int:
        """Anchor every chain's head under the audit-anchor key (audit/chain.py)."""
        try:
            key = self._anchor_key()
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
        await self.retention.run_once()
        return 0  # one round per interval: each store's purge is one statement

    def _anchor_key(self) -> bytes:
        return self.purpose_keys.current(audit_chain.ANCHOR_PURPOSE)[1]

    def _digest(self, recipient: str) -> str:
        return self.handler.digest(recipient)

    def verp_domain(self) -> str:
        """The operator's mailto domain: where VERP return paths point."""
        unsub = self.config.unsubscribe
        base = links_for(self.config, Tenant(0, "", "active", ""), self.web.public_base_url)
        return (unsub.mailto_domain or base.mailto_domain).lower()

    def mailto_domains(self) -> frozenset[str]:
        """Where unsubscribe@ mail is taken: the operator's mailto domain and every tenant's
        link domain (a CNAME to the gateway, so its MX lookup finds the gateway too)."""
        return frozenset({self.verp_domain(), *(
            str(t.settings["link_domain"]).lower() for t in self.directory.all_tenants()
            if t.settings.get("link_domain"))})

    async def _start_mailto(self) -> int:
        unsub = self.config.unsubscribe
        handler = MailtoHandler(unsub, self.sealer, self.optouts, self.mailto_domains,
                                data_path(self.config, "postmaster"),
                                Bounces(self.return_paths, self.engine, self.feedback,
                                        self.verp_domain))
        handler.is_balancer = self.authenticator.is_balancer
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
        await self.engine.dispose()

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
        self.pipeline = Pipeline(PolicyContext(new, self.directory, self.suppressions))
        self.handler.set_config(new, self.pipeline)
        self.composer.config = new
        self.authenticator.reconfigure(new.smtp)
        self.directory.reconfigure(new)
        log.info("configuration reloaded")


def demo_credentials_path(config: Config) -> Path:
    return data_path(config, "demo-credentials.txt")
