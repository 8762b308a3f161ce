"""The one place that wires the application: each part built from the configuration, once.

`serve` and every worker build a `Gateway` (`service.py`), which is these parts started
and stopped in order; a CLI command builds `Parts` on its database and asks only for what
it needs. A part is made the first time it is asked for, with the parts it needs passed to
its constructor: nothing is connected after construction. What is opened at start (the
purpose keys and the digest they give, the suppression lists, the DKIM keys) is opened by
the part that owns it (`open_keys`).

The exception is a runtime fact, not wiring: the public base URL when the public listener
binds port 0 is known only once bound (`Gateway.start` tells the composer and the web apps).
"""

from __future__ import annotations

import functools
import logging
from functools import cached_property
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.api_keys import ApiKeys
from gateway.app.workers import worker_count
from gateway.audit import chain as audit_chain
from gateway.audit.trail import AuditTrail
from gateway.config import OAUTH_UPSTREAM_KINDS, Config, data_path, tenant_key_location
from gateway.delivery.queue import QueueStore
from gateway.delivery.relay import Relay
from gateway.delivery.retries import QueueWorker
from gateway.delivery.upstream.base import Upstream
from gateway.delivery.upstream.logins import MailboxPasswordLogin, SharedLogin, XOAuth2Login
from gateway.delivery.upstream.maildir import MaildirUpstream
from gateway.delivery.upstream.smarthost import SmarthostUpstream
from gateway.directory.cache import DirectoryCache
from gateway.directory.domain_check import DnsLookup, DomainChecks
from gateway.directory.records import Tenant
from gateway.directory.store import DirectoryStore
from gateway.dkim.keys import DkimKeys
from gateway.events.names import EventNames
from gateway.events.webhook_store import WebhookStore
from gateway.events.webhooks import WebhookDispatcher
from gateway.feedback.apply import FeedbackApplier
from gateway.feedback.bounces import HardBounces
from gateway.feedback.cfbl import PURPOSE as FEEDBACK_REF_PURPOSE
from gateway.feedback.cfbl import FeedbackRefs
from gateway.feedback.complaints import ComplaintReports
from gateway.feedback.inbox import InboxReader
from gateway.feedback.mailto import Bounces, MailtoHandler
from gateway.feedback.reviews import OptOutReviews
from gateway.feedback.sent import SentIndex
from gateway.feedback.verp import PURPOSE as VERP_PURPOSE
from gateway.feedback.verp import ReturnPaths
from gateway.lawful.decider import LawfulBasis
from gateway.lawful.index import RecordIndex
from gateway.lawful.versions import Policies
from gateway.lifecycle.retention import Retention
from gateway.lifecycle.subjects import Subjects
from gateway.limits.attempts import InvalidAttempts
from gateway.limits.breakers import Breakers
from gateway.limits.counters import Count, Counters, DatabaseCounters, counters_for
from gateway.limits.sending import SendingLimits
from gateway.net.fetch import GuardedFetcher
from gateway.observability.alerts import Alerts
from gateway.optout.receipts import PURPOSE as RECEIPT_PURPOSE
from gateway.optout.receipts import ReceiptSigner
from gateway.optout.record import OptOuts
from gateway.optout.suppressions import SUPPRESSION_PURPOSE, Suppressions
from gateway.optout.token import PURPOSE as UNSUBSCRIBE_PURPOSE
from gateway.optout.token import TokenSealer
from gateway.outbound.compose import Composer, links_for
from gateway.pixels.forward import Forwarder
from gateway.pixels.networks import load as load_networks
from gateway.pixels.opens import OpenRecorder
from gateway.pixels.token import PURPOSE as PIXEL_PURPOSE
from gateway.pixels.token import PixelSealer
from gateway.pixels.verdict import Judge
from gateway.policy.check import PolicyContext
from gateway.policy.pipeline import Pipeline
from gateway.review.accounts import Reviewers
from gateway.review.decisions import HeldDecisions
from gateway.review.held import HeldStore
from gateway.smtp.auth import Authenticator
from gateway.smtp.auth_throttle import AuthThrottle
from gateway.smtp.connections import ClientConnections
from gateway.smtp.handler import GatewayHandler
from gateway.smtp.suppressed import SuppressedReports
from gateway.smtp.tls import certificate_days_left
from gateway.store.engine import create_engine
from gateway.store.health import WriteHealth, sqlite_directory
from gateway.submission.handoff import Handoff
from gateway.submission.releases import ReviewWorker
from gateway.vault.credentials import Credentials
from gateway.vault.envelope import Vault
from gateway.vault.flows import OAuthFlows
from gateway.vault.key_store import key_store_for
from gateway.vault.master_keys import provider_for
from gateway.vault.oauth import ProviderEndpoints
from gateway.vault.purpose import AuditDigest, PurposeKeys
from gateway.vault.secrets import secret_store_for
from gateway.vault.tenant_keys import TenantKeys, TenantSealedSecrets, TenantSealer
from gateway.vault.tokens import TokenBroker
from gateway.vault.upstream_passwords import UpstreamPasswords
from gateway.web.parts import OperatorParts, PixelParts, ReviewParts, WebParts

log = logging.getLogger("gateway")
T = TypeVar("T")


class Parts:
    """The application's parts, each built from `config` the first time it is asked for."""

    def __init__(self, config: Config, engine: AsyncEngine | None = None,
                 command: bool = False) -> None:
        self.config = config
        self._command = command
        # a CLI command (`command`) writes an audit chain of its own (audit/chain.py)
        audit_chain.set_chain_name(config.audit.chain, command=command)
        if engine is not None:
            self.__dict__["engine"] = engine  # a command's engine, already open

    # --- the store, the vault and the keys ------------------------------------------------
    @cached_property
    def engine(self) -> AsyncEngine:
        db = self.config.database  # the node's connections, split among its workers
        return create_engine(db.url, max(2, -(-db.pool_size // worker_count())), db.schema)

    @cached_property
    def commit_engine(self) -> AsyncEngine:
        """The running gateway's audit group commits on PostgreSQL: two connections of their
        own, no ping before each commit (a stale one is replaced and the batch tried once
        more: audit/trail.py). Elsewhere, and for a command, the one engine."""
        db = self.config.database
        if self._command or not db.url.startswith("postgresql"):
            return self.engine
        return create_engine(db.url, 2, db.schema, pre_ping=False)

    async def dispose_engines(self) -> None:
        commit = self.__dict__.get("commit_engine")
        if commit is not None and commit is not self.engine:
            await commit.dispose()
        await self.engine.dispose()

    @cached_property
    def vault(self) -> Vault:
        return Vault(provider_for(self.config))

    @cached_property
    def purpose_keys(self) -> PurposeKeys:
        return PurposeKeys(self.engine, self.vault)

    @cached_property
    def digest(self) -> AuditDigest:
        """How the audit trail names a person (opened by `open_keys`)."""
        return AuditDigest(self.purpose_keys)

    @cached_property
    def tenant_keys(self) -> TenantKeys:
        return TenantKeys(self.engine, self.vault,
                          key_store_for(tenant_key_location(self.config)))

    @cached_property
    def tenant_sealer(self) -> TenantSealer:
        return TenantSealer(self.tenant_keys)

    @cached_property
    def dkim(self) -> DkimKeys:
        return DkimKeys(self.engine, self.vault, self.tenant_sealer)

    @cached_property
    def sealer(self) -> TokenSealer:
        return TokenSealer(self.purpose_keys)

    @cached_property
    def pixel_sealer(self) -> PixelSealer:
        return PixelSealer(self.purpose_keys)

    async def open_keys(self) -> None:
        """Make the purpose keys on first use and open them, with what they give: the audit
        digest, the token keys, the DKIM keys. The suppression lists open on their own
        (`open_suppressions`): they fail closed without stopping the rest."""
        await self.digest.open()
        for purpose in (UNSUBSCRIBE_PURPOSE, PIXEL_PURPOSE, VERP_PURPOSE,
                        FEEDBACK_REF_PURPOSE, RECEIPT_PURPOSE, audit_chain.ANCHOR_PURPOSE):
            await self.purpose_keys.ensure(purpose)
        await self.dkim.load()

    async def with_digest(self, part: T) -> T:
        """`part`, once the audit digest it names people by is open (for a command)."""
        await self.digest.open()
        return part

    async def open_suppressions(self) -> Suppressions:
        """The suppression lists on their digest key, made once and never replaced (raises
        VaultError if it cannot be unsealed); their searches are audited by the audit
        digest, opened first."""
        await self.digest.open()
        await self.purpose_keys.ensure(RECEIPT_PURPOSE)  # an opt-out added gets its receipt
        await self.purpose_keys.ensure(SUPPRESSION_PURPOSE)
        version, key = self.purpose_keys.current(SUPPRESSION_PURPOSE)
        self.suppressions.open(key, version)
        return self.suppressions

    def anchor_key(self) -> bytes:
        return self.purpose_keys.current(audit_chain.ANCHOR_PURPOSE)[1]

    # --- the directory, the audit trail, the events -----------------------------------------
    @cached_property
    def directory_store(self) -> DirectoryStore:
        return DirectoryStore(self.engine)

    @cached_property
    def directory(self) -> DirectoryCache:
        return DirectoryCache(self.directory_store, self.config)

    @cached_property
    def write_health(self) -> WriteHealth:
        # the heartbeat: a counter row in the database (even when the limits count in Redis),
        # expiring at once so the retention purge takes it
        heartbeat = functools.partial(DatabaseCounters(self.engine).hit,
                                      [Count("store:heartbeat", 0, 0, 1, 0)])
        return WriteHealth(heartbeat, sqlite_directory(self.config.database.url),
                           self.config.database.min_free_mb)

    @cached_property
    def event_names(self) -> EventNames:
        return EventNames(self.tenant_sealer, self.digest)

    @cached_property
    def audit(self) -> AuditTrail:
        cfg = self.config.audit
        return AuditTrail(self.commit_engine, cfg.batch_max_rows, cfg.batch_max_delay,
                          self.write_health, self.event_names)

    @cached_property
    def webhooks(self) -> WebhookDispatcher:
        return WebhookDispatcher(self.engine, self.webhook_store, self.config.events,
                                 self.event_names, self.config.fetch)

    @cached_property
    def webhook_store(self) -> WebhookStore:
        return WebhookStore(self.engine, self.vault, self.tenant_sealer)

    @cached_property
    def alerts(self) -> Alerts:
        return Alerts(self.config, self.queue.deferred_since,
                      lambda: certificate_days_left(self.config))

    @cached_property
    def api_keys(self) -> ApiKeys:
        return ApiKeys(self.engine)

    # --- mailboxes and their secrets ---------------------------------------------------------
    @cached_property
    def credentials(self) -> Credentials:
        secrets = TenantSealedSecrets(
            secret_store_for(self.config.vault.backend, self.config.vault.redis_url,
                             self.engine, self.vault),
            self.tenant_keys)
        return Credentials(self.engine, secrets, self.config, self.oauth_providers)

    async def open_credentials(self) -> Credentials:
        """The credentials, once their secret store is found reachable (for a command)."""
        await self.credentials.secrets.check()
        return self.credentials

    @cached_property
    def oauth_providers(self) -> dict[str, ProviderEndpoints]:
        return {name: ProviderEndpoints(name, p) for name, p in self.config.oauth.items()}

    @cached_property
    def tokens(self) -> TokenBroker:
        return TokenBroker(self.engine, self.credentials, self.oauth_providers)

    @cached_property
    def flows(self) -> OAuthFlows:
        return OAuthFlows(self.engine, self.vault, self.credentials)

    @cached_property
    def upstream_passwords(self) -> UpstreamPasswords:
        return UpstreamPasswords(self.engine, self.credentials.secrets, self.config)

    # --- deliver -------------------------------------------------------------------------------
    @cached_property
    def return_paths(self) -> ReturnPaths:
        return ReturnPaths(self.purpose_keys, self.digest, self.verp_domain)

    @cached_property
    def upstreams(self) -> dict[str, Upstream]:
        config = self.config
        upstreams: dict[str, Upstream] = {}
        for name, up in config.upstreams.items():
            if up.kind == "maildir":
                upstreams[name] = MaildirUpstream(name, up.path)
            elif up.kind in OAUTH_UPSTREAM_KINDS:
                upstreams[name] = SmarthostUpstream(name, up, config.smtp.hostname,
                                                    XOAuth2Login(self.tokens))
            else:
                shared = SharedLogin(name, up.username, self.upstream_passwords)
                upstreams[name] = SmarthostUpstream(
                    name, up, config.smtp.hostname,
                    MailboxPasswordLogin(self.credentials, shared), self.return_paths)
        return upstreams

    @cached_property
    def queue(self) -> QueueStore:
        return QueueStore(self.engine, self.vault, self.config.queue.lifetime,
                          self.tenant_sealer)

    @cached_property
    def relay(self) -> Relay:
        q = self.config.queue
        return Relay(self.upstreams, self.queue, q.data_deadline, q.retry_first)

    @cached_property
    def worker(self) -> QueueWorker:
        return QueueWorker(self.config, self.queue, self.upstreams, self.directory,
                           self.directory_store, self.audit, self.digest, self.suppressions,
                           self.breakers)

    # --- receive and decide --------------------------------------------------------------------
    @cached_property
    def counters(self) -> Counters:
        return counters_for(self.config.limits.redis_url, self.engine)

    @cached_property
    def auth_throttle(self) -> AuthThrottle:
        return AuthThrottle(self.counters, self.config.smtp.auth, lambda: self.digest.key)

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.directory, self.config.smtp, self.auth_throttle)

    @cached_property
    def client_connections(self) -> ClientConnections:
        return ClientConnections(self.config.smtp.max_connections_per_client)

    @cached_property
    def suppressions(self) -> Suppressions:
        """The suppression lists; searches are audited by the audit digest. Opened by
        `open_suppressions`."""
        db = self.config.database
        return Suppressions(self.engine, db.url, db.schema, self.digest, self.receipts)

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(PolicyContext(self.config, self.directory, self.suppressions,
                                      self.breakers, self.lawful))

    @cached_property
    def lawful(self) -> LawfulBasis:
        """Each recipient's lawful-basis decision (lawful/decider.py)."""
        return LawfulBasis(self.engine, self.policies, self.digest,
                           RecordIndex(self.engine, self.config.tenants.settings_refresh))

    @cached_property
    def policies(self) -> Policies:
        """The lawful-basis table in force (lawful/versions.py), re-read every two seconds."""
        return Policies(self.engine, self.config.tenants.settings_refresh)

    @cached_property
    def breakers(self) -> Breakers:
        return Breakers(self.config, self.engine, self.counters, self.directory, self.audit)

    @cached_property
    def limits(self) -> SendingLimits:
        return SendingLimits(self.config, self.counters,
                             {name: up.kind for name, up in self.config.upstreams.items()})

    @cached_property
    def composer(self) -> Composer:
        return Composer(self.config, self.sealer, self.dkim, self.pixel_sealer, self.digest,
                        self.feedback_refs, self.directory.domain_id)

    @cached_property
    def feedback_refs(self) -> FeedbackRefs:
        return FeedbackRefs(self.purpose_keys)

    @cached_property
    def handler(self) -> GatewayHandler:
        return GatewayHandler(
            self.config, self.directory, self.pipeline, self.authenticator, self.handoff,
            self.audit, self.digest, limits=self.limits, write_health=self.write_health,
            suppressed=SuppressedReports(self.config, self.queue, self.audit))

    # --- the hand-off: decide, keep, fix, deliver, record ----------------------------------
    @cached_property
    def handoff(self) -> Handoff:
        return Handoff(self.config, self.pipeline, self.composer, self.relay, self.queue,
                       self.audit, self.digest, self.suppressions.digest_of, held=self.held,
                       limits=self.limits, bounces=HardBounces(self.suppressions),
                       suppressions=self.suppressions, breakers=self.breakers,
                       lawful=self.lawful, setting=self.directory.setting)

    # --- keep ------------------------------------------------------------------------------------
    @cached_property
    def held(self) -> HeldStore:
        return HeldStore(self.engine, self.vault, self.tenant_sealer, self.event_names,
                         self.digest)

    @cached_property
    def held_decisions(self) -> HeldDecisions:
        return HeldDecisions(self.held, self.queue, self.config)

    @cached_property
    def review(self) -> ReviewWorker:
        return ReviewWorker(self.held, self.directory, self.handoff, self.queue, self.config)

    @cached_property
    def reviewers(self) -> Reviewers:
        return Reviewers(self.engine, self.vault, self.config.review)

    # --- opt-outs and what comes back --------------------------------------------------------
    @cached_property
    def optouts(self) -> OptOuts:
        return OptOuts(self.engine, self.suppressions, self.event_names, self.receipts)

    @cached_property
    def receipts(self) -> ReceiptSigner:
        return ReceiptSigner(self.purpose_keys)

    @cached_property
    def optout_reviews(self) -> OptOutReviews:
        return OptOutReviews(self.engine, self.vault, self.suppressions, self.event_names,
                             self.tenant_sealer, self.receipts)

    @cached_property
    def sent_index(self) -> SentIndex:
        return SentIndex(self.engine, self.digest)

    @cached_property
    def feedback(self) -> FeedbackApplier:
        return FeedbackApplier(self.engine, self.suppressions, self.sent_index, self.vault,
                               self.config.feedback, self.event_names, self.tenant_sealer,
                               self.breakers, self.receipts)

    @cached_property
    def inbox(self) -> InboxReader:
        return InboxReader(self.config, self.engine, self.directory, self.tokens,
                           self.feedback)

    @cached_property
    def mailto_handler(self) -> MailtoHandler:
        """What answers mail to the unsubscribe address and bounces to VERP return paths."""
        return MailtoHandler(self.config.unsubscribe, self.sealer, self.optouts,
                             self.mailto_domains, data_path(self.config, "postmaster"),
                             Bounces(self.return_paths, self.engine, self.feedback,
                                     self.verp_domain, self.complaint_reports),
                             self.authenticator.is_balancer)

    @cached_property
    def complaint_reports(self) -> ComplaintReports:
        return ComplaintReports(self.feedback_refs, self.sent_index, self.feedback,
                                DnsLookup(self.config.dns).dkim_key)

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

    # --- lifecycle ---------------------------------------------------------------------------
    @cached_property
    def retention(self) -> Retention:
        return Retention(self.config, self.engine, self.held, self.suppressions,
                         self.anchor_key, data_path(self.config, "postmaster"))

    @cached_property
    def subjects(self) -> Subjects:
        return Subjects(self.engine, self.suppressions, self.digest, self.held, self.queue,
                        self.config.smtp.hostname)

    # --- the HTTP side -------------------------------------------------------------------------
    @cached_property
    def opens(self) -> OpenRecorder:
        return OpenRecorder(self.engine, self.config.pixels.flush_interval)

    @cached_property
    def pixel_judge(self) -> Judge:
        """Judges each pixel fetch; its range file is read now (a bad one: no start)."""
        pixels = self.config.pixels
        return Judge(load_networks(pixels.networks_file), pixels.machine_open_seconds)

    @cached_property
    def forwarder(self) -> Forwarder:
        pixels = self.config.pixels
        return Forwarder(GuardedFetcher(self.config.fetch), pixels.forward_concurrency,
                         pixels.forward_queue)

    @cached_property
    def web(self) -> WebParts:
        return WebParts(
            self.config, self.directory_store, self.credentials, self.flows, self.api_keys,
            self.suppressions, self.directory, self.sealer, self.optouts, self.event_names,
            OperatorParts(self.held_decisions, self.queue, self.worker, self.webhook_store,
                          self.dkim, DomainChecks(self.engine, self.config), self.digest,
                          self.breakers, self.receipts, self.policies, self.lawful),
            InvalidAttempts(self.config.unsubscribe.invalid_rate),
            pixels=PixelParts(self.pixel_sealer, self.opens, self.forwarder, self.pixel_judge),
            subjects=self.subjects, tenant_keys=self.tenant_keys,
            review=ReviewParts(self.engine, self.held, self.reviewers, self.held_decisions,
                               self.digest, self.optout_reviews))

