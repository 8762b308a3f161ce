"""Each recipient's copy: the message with its own unsubscribe headers, complaint feedback
reference, footer link and DKIM signatures.

Per message, once: the campaign tool's List-Unsubscribe, CFBL and Feedback-ID fields and its
DKIM signatures go (none can be right after the gateway's changes), the MIME structure is
walked and the footer rendered. Per recipient: a token and a feedback reference are sealed
(feedback/cfbl.py), bytes are joined, the body is hashed and the header signed. What the
tenant chooses is only the body side (`body = add | require`); the headers are always the
gateway's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.config import Config
from gateway.directory.address import aligned_domain
from gateway.directory.records import Mailbox, Tenant
from gateway.dkim.keys import DkimKeys
from gateway.dkim.signer import (
    BodyHasher,
    SigningKey,
    body_hash,
    canonical_fields,
    parse_fields,
    sign_copy,
)
from gateway.feedback import cfbl
from gateway.feedback.cfbl import FeedbackRefs
from gateway.limits.breakers import NO_CAMPAIGN, campaign_key
from gateway.optout.token import Claims, TokenSealer
from gateway.outbound import footer, notice
from gateway.outbound.footer import FooterPlan, PixelPolicy
from gateway.outbound.mime import body_parts
from gateway.pixels.token import PROXY, PixelClaims, PixelSealer
from gateway.policy.message import Message

ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
# the campaign tool's fields that cannot be right after the gateway's changes, and its
# statement of who its recipients are (lawful/stated.py), which is for the gateway alone
REMOVED_FIELDS = ("list-unsubscribe", "list-unsubscribe-post", "dkim-signature",
                  "cfbl-address", "cfbl-feedback-id", "feedback-id", "x-gateway-recipient")


@dataclass(frozen=True, slots=True)
class Links:
    """Where one tenant's unsubscribe links point."""

    base_url: str  # https://host[:port][/prefix], no trailing slash
    mailto_domain: str
    # a mailto: link is advertised only where a listener takes it (unsubscribe.mailto_listen)
    mailto_listener: bool = True

    def url(self, token: str) -> str:
        return f"{self.base_url}/u/{token}"

    def mailto(self, token: str) -> str:
        return f"mailto:unsubscribe@{self.mailto_domain}?subject=unsubscribe%20{token}"

    def pixel(self, token: str) -> str:
        return f"{self.base_url}/p/{token}"


def links_for(config: Config, tenant: Tenant, public_base_url: str) -> Links:
    link_domain = str(tenant.settings.get("link_domain") or "")
    listener = bool(config.unsubscribe.mailto_listen)
    if link_domain:
        return Links(f"https://{link_domain}", link_domain, listener)
    base = (config.unsubscribe.base_url or public_base_url).rstrip("/")
    mailto = config.unsubscribe.mailto_domain or urlsplit(base).hostname or "localhost"
    return Links(base, mailto, listener)


@dataclass(frozen=True, slots=True)
class PixelSeal:
    """What the per-recipient pixel tokens need: the sealer, and the message's claims."""

    sealer: PixelSealer
    claims: PixelClaims  # recipient digest and tracker URL filled per copy
    digest: Callable[[str], str]  # the audit digest (hex) of a recipient


@dataclass(frozen=True, slots=True)
class ComplaintFields:
    """The complaint-feedback fields of a signed message: the same for every copy (the
    CFBL-Address, Gmail's Feedback-ID) and, with an aligned feedback domain, each copy's
    sealed CFBL-Feedback-ID."""

    shared: bytes
    refs: FeedbackRefs | None  # None: no aligned feedback domain, no per-copy reference
    tenant_id: int
    queue_id: str
    domain_id: int  # the header-From domain's id (0: not known)
    campaign: bytes  # campaign_key of the campaign the tool named
    digest: Callable[[str], str]  # the audit digest (hex) of a recipient

    def of(self, recipient: str) -> bytes:
        """The copy's own field (its CFBL-Feedback-ID), b"" without one."""
        if self.refs is None:
            return b""
        ref = self.refs.seal(self.tenant_id, self.queue_id, self.digest(recipient),
                             self.campaign, self.domain_id)
        return f"CFBL-Feedback-ID: {ref}\r\n".encode("ascii")


class Prepared:
    """One message, ready to be written once per recipient."""

    def __init__(self, raw: bytes, head_end: int, plan: FooterPlan | None,
                 keys: tuple[SigningKey, ...], links: Links, claims: Claims,
                 sealer: TokenSealer, pixels: PixelSeal | None = None,
                 complaints: ComplaintFields | None = None) -> None:
        self._raw = raw
        self._complaints = complaints
        self._plan = plan
        self._head_end = plan.head_end if plan is not None else head_end
        self._keys = keys
        self._links = links
        self._claims = claims
        self._sealer = sealer
        self._pixels = pixels
        self.notice_carried = False  # every copy carries the allow-with-notice notice
        self._aggregate = b""
        if plan is not None and pixels is not None and "pixel-aggregate" in plan.slots:
            self._aggregate = links.pixel(pixels.sealer.seal_aggregate(
                pixels.claims.tenant_id, pixels.claims.campaign)).encode()
        # the header block is the same for every recipient: read it once
        head = plan.header_block() if plan is not None else raw[:self._head_end]
        self._fields = parse_fields(head)
        self._canonical = canonical_fields(self._fields) if keys else []
        # the fields every copy adds alike, after its List-Unsubscribe: read once
        self._shared = ONE_CLICK + (complaints.shared if complaints is not None else b"")
        self._shared_fields = parse_fields(self._shared)
        self._shared_canonical = canonical_fields(self._shared_fields) if keys else []
        # the body: hashed once when every copy has the same; else its shared start once
        self._body_hash = b""
        self._hasher: BodyHasher | None = None
        if keys and (plan is None or not plan.touched):
            self._body_hash = body_hash(raw[self._head_end + 2:])
        elif keys and plan is not None:
            self._hasher = BodyHasher(plan.common_prefix()[self._head_end + 2:])

    @property
    def pixels_taken(self) -> int:
        return len(self._plan.pixels) if self._plan is not None else 0

    def _pixel_urls(self, recipient: str) -> dict[str, bytes]:
        """Each pixel slot's URL for one recipient: its own token per tracker URL (proxy),
        the campaign's one URL (aggregate)."""
        plan, seal = self._plan, self._pixels
        if plan is None or seal is None:
            return {}
        digest = bytes.fromhex(seal.digest(recipient)) if recipient else b""
        values: dict[str, bytes] = {}
        for name in plan.slots:
            if name == "pixel-aggregate":
                values[name] = self._aggregate
            elif name.startswith("pixel-"):
                index = name.removeprefix("pixel-")
                original = plan.pixels[int(index)] if index.isdigit() else ""
                claims = dataclasses.replace(seal.claims, recipient_digest=digest,
                                             original_url=original)
                values[name] = self._links.pixel(seal.sealer.seal_proxy(claims)).encode()
        return values

    @property
    def signed(self) -> bool:
        return bool(self._keys)

    @property
    def footer_parts(self) -> int:
        return self._plan.touched if self._plan is not None else 0

    def copy(self, recipient: str) -> bytes:
        token = self._sealer.seal(Claims(self._claims.tenant_id, self._claims.mailbox_id,
                                         self._claims.queue_id, recipient))
        url = self._links.url(token)
        whole = self._plan.render(url, self._pixel_urls(recipient)) \
            if self._plan is not None else self._raw
        head, body = whole[:self._head_end], whole[self._head_end + 2:]
        unsubscribe = (f"List-Unsubscribe: <{url}>,\r\n <{self._links.mailto(token)}>\r\n"
                       if self._links.mailto_listener else f"List-Unsubscribe: <{url}>\r\n"
                       ).encode("ascii")
        own = self._complaints.of(recipient) if self._complaints is not None else b""
        added = unsubscribe + self._shared + own
        if not self._keys:
            return head + added + b"\r\n" + body
        # relaxed canonicalization is per field: the shared fields were made canonical once
        first, last = parse_fields(unsubscribe), parse_fields(own)
        bh = self._hasher.hash(body) if self._hasher is not None else self._body_hash
        signatures = sign_copy(
            [*self._fields, *first, *self._shared_fields, *last],
            [*self._canonical, *canonical_fields(first), *self._shared_canonical,
             *(canonical_fields(last) if last else ())], bh, self._keys)
        return signatures + head + added + b"\r\n" + body


class Composer:
    def __init__(self, config: Config, sealer: TokenSealer, dkim: DkimKeys,
                 pixel_sealer: PixelSealer | None = None,
                 digest: Callable[[str], str] | None = None,
                 refs: FeedbackRefs | None = None,
                 domain_id: Callable[[str], int | None] = lambda domain: None) -> None:
        self.config = config
        self._refs = refs
        self._domain_id = domain_id  # a tenant domain's id (the breakers' domain scope)
        self._sealer = sealer
        self._dkim = dkim
        self._pixel_sealer = pixel_sealer
        self._digest = digest
        self.public_base_url = ""

    def pixel_policy(self, tenant: Tenant) -> PixelPolicy | None:
        s = tenant.settings
        mode = str(s.get("pixels") or "proxy")
        if mode == "off" and self.config.pixels.allow_off:
            return None
        if mode not in ("strip", "aggregate"):
            mode = "proxy"  # the default, and "off" once the operator withdrew it
        patterns = tuple(str(s.get("tracker_patterns") or "").replace(",", " ").split())
        return PixelPolicy(mode, patterns, s.get("add_pixel") == "yes")

    def named_campaign(self, message: Message) -> str | None:
        """The campaign the tool named (`[pixels] campaign_headers`), or None."""
        return message.campaign(self.config.pixels.campaign_headers)

    def campaign(self, message: Message, mailbox: Mailbox) -> str:
        """The campaign a message belongs to: the tool's campaign header, else the sending
        mailbox and the day (never something that names one recipient)."""
        return self.named_campaign(message) or _daily(mailbox)

    def prepare(self, message: Message, tenant: Tenant, mailbox: Mailbox,
                queue_id: str, with_notice: bool = False) -> Prepared:
        """`with_notice`: the copies carry the tenant's allow-with-notice notice
        (outbound/notice.py) before the footer; `Prepared.notice_carried` says whether the
        message had a text part it could go in."""
        for name in REMOVED_FIELDS:
            message.remove(name)
        raw = message.as_bytes()
        head_end = message.header_bytes
        plan = None
        policy = self.pixel_policy(tenant) if self._pixel_sealer is not None else None
        adding = tenant.settings.get("body", "add") == "add"
        if adding or policy is not None or with_notice:
            layout = body_parts(raw, head_end)
            if not layout.sealed:
                text, html = self.footers(tenant) if adding else ("", "")
                if with_notice:
                    told_text, told_html = notice.render(tenant.settings, tenant.name)
                    text, html = told_text + text, told_html + html
                plan = FooterPlan(raw, head_end, layout, text, html, policy)
        named = self.named_campaign(message)
        campaign = named or _daily(mailbox)
        pixels = None
        if self._pixel_sealer is not None and self._digest is not None:
            pixels = PixelSeal(self._pixel_sealer, PixelClaims(
                PROXY, tenant.id, campaign, mailbox.id, queue_id,
                sent_at=int(time.time())), self._digest)
        domain = message.from_domain()
        keys = self._dkim.for_domain(domain)
        links = links_for(self.config, tenant, self.public_base_url)
        complaints = self.complaint_fields(tenant, queue_id, campaign, named, domain, links) \
            if keys else None
        prepared = Prepared(raw, head_end, plan, keys, links,
                            Claims(tenant.id, mailbox.id, queue_id, ""), self._sealer,
                            pixels, complaints)
        prepared.notice_carried = with_notice and plan is not None and plan.touched > 0
        return prepared

    def complaint_fields(self, tenant: Tenant, queue_id: str, campaign: str,
                         named: str | None, from_domain: str, links: Links
                         ) -> ComplaintFields | None:
        """What a signed copy says about complaint feedback (feedback/cfbl.py): the
        CFBL fields where the feedback address is aligned with the From domain and a
        listener takes it; Gmail's Feedback-ID in any case."""
        feedback = self.config.feedback
        if not feedback.complaint_fields:
            return None
        shared = f"Feedback-ID: {cfbl.feedback_id(campaign, tenant.id, feedback.sender_id)}" \
            "\r\n".encode("ascii")
        domain = aligned_domain(from_domain, (links.mailto_domain,)) \
            if links.mailto_listener else None
        if domain is None or self._refs is None or self._digest is None:
            return ComplaintFields(shared, None, tenant.id, queue_id, 0, NO_CAMPAIGN, str)
        return ComplaintFields(cfbl.address_field(domain) + shared, self._refs, tenant.id,
                               queue_id, self._domain_id(from_domain) or 0,
                               campaign_key(named), self._digest)

    @staticmethod
    def footers(tenant: Tenant) -> tuple[str, str]:
        s = tenant.settings
        values = {"unsubscribe_url": footer.PLACEHOLDER,
                  "postal_address": str(s.get("postal_address") or ""),
                  "sender_name": str(s.get("sender_name") or tenant.name)}
        text = footer.render(str(s.get("footer_text") or footer.DEFAULT_TEXT), values,
                             html=False)
        html = footer.render(str(s.get("footer_html") or footer.DEFAULT_HTML), values,
                             html=True)
        return text, html


def _daily(mailbox: Mailbox) -> str:
    """The campaign of mail whose tool names none: its mailbox and the day."""
    return f"mailbox-{mailbox.id}-{time.strftime('%Y-%m-%d', time.gmtime())}"
