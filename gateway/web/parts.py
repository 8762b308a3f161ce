"""What the HTTP apps work with, passed in explicitly (no global configuration)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.api_keys import ApiKeys
from gateway.config import Config
from gateway.delivery.queue import QueueStore
from gateway.delivery.retries import QueueWorker
from gateway.directory.cache import DirectoryCache
from gateway.directory.domain_check import DomainChecks
from gateway.directory.store import DirectoryStore
from gateway.dkim.keys import DkimKeys
from gateway.events.names import EventNames
from gateway.events.webhook_store import WebhookStore
from gateway.feedback.reviews import OptOutReviews
from gateway.lawful.decider import LawfulBasis
from gateway.lawful.versions import Policies
from gateway.lifecycle.subjects import Subjects
from gateway.limits.attempts import InvalidAttempts
from gateway.limits.breakers import Breakers
from gateway.optout.receipts import ReceiptSigner
from gateway.optout.record import OptOuts
from gateway.optout.suppressions import Suppressions
from gateway.optout.token import TokenSealer
from gateway.pixels.forward import Forwarder
from gateway.pixels.opens import OpenRecorder
from gateway.pixels.token import PixelSealer
from gateway.pixels.verdict import Judge
from gateway.review.accounts import Reviewers
from gateway.review.decisions import HeldDecisions
from gateway.review.held import HeldStore
from gateway.vault.credentials import Credentials
from gateway.vault.flows import OAuthFlows
from gateway.vault.purpose import AuditDigest
from gateway.vault.tenant_keys import TenantKeys


@dataclass
class PixelParts:
    sealer: PixelSealer
    recorder: OpenRecorder
    forwarder: Forwarder | None
    judge: Judge


@dataclass
class ReviewParts:
    """What the review pages work with."""

    engine: AsyncEngine
    held: HeldStore
    reviewers: Reviewers
    decisions: HeldDecisions  # release, discard, note
    digest: Callable[[str], str]  # the audit trail's keyed digest of an address
    optouts: OptOutReviews | None = None  # replies that may ask to stop


@dataclass
class OperatorParts:
    """What the admin API's operator routes work with beyond the directory: the review
    queue's decisions, the delivery queue, webhooks, DKIM keys and domain checks."""

    decisions: HeldDecisions
    queue: QueueStore
    retries: QueueWorker  # deletes a waiting copy with its report
    webhooks: WebhookStore
    dkim: DkimKeys
    domains: DomainChecks
    digest: AuditDigest  # trace names the recipients an operator gives
    breakers: Breakers  # reputation breakers: listed and resumed
    receipts: ReceiptSigner  # opt-out receipts: the public keys, a verification
    policies: Policies  # the lawful-basis table's versions
    lawful: LawfulBasis  # the decision, and the index of who has records


@dataclass
class WebParts:
    config: Config
    directory: DirectoryStore
    credentials: Credentials
    flows: OAuthFlows
    api_keys: ApiKeys
    suppressions: Suppressions
    tenants: DirectoryCache
    sealer: TokenSealer
    optouts: OptOuts
    event_names: EventNames  # opens the recipient of the events the API lists
    operator: OperatorParts
    invalid_attempts: InvalidAttempts = field(default_factory=lambda: InvalidAttempts(30))
    pixels: PixelParts | None = None
    subjects: Subjects | None = None  # data subjects' export and erasure
    tenant_keys: TenantKeys | None = None  # /readyz names tenants whose key is missing
    review: ReviewParts | None = None  # the review pages
    public_base_url: str = ""  # known once the public listener is bound
    ready: bool = field(default=True)  # False while shutting down: /readyz answers 503

    def redirect_uri(self, provider: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/oauth/{provider}/callback"
