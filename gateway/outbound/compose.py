"""Each recipient's copy: the message with its own unsubscribe headers, footer link and
DKIM signatures.

Per message, once: the campaign tool's List-Unsubscribe fields and its DKIM signatures go
(neither can be right after the gateway's changes), the MIME structure is walked and the
footer rendered. Per recipient: a token is sealed, bytes are joined, the body is hashed and
the header signed. What the tenant chooses is only the body side (`body = add | require`);
the headers are always the gateway's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.config import Config
from gateway.directory.records import Mailbox, Tenant
from gateway.dkim.keys import DkimKeys
from gateway.dkim.signer import SigningKey, body_hash, parse_fields, sign
from gateway.optout.token import Claims, TokenSealer
from gateway.outbound import footer
from gateway.outbound.footer import FooterPlan
from gateway.outbound.mime import body_parts
from gateway.policy.message import Message

ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
REMOVED_FIELDS = ("list-unsubscribe", "list-unsubscribe-post", "dkim-signature")


@dataclass(frozen=True, slots=True)
class Links:
    """Where one tenant's unsubscribe links point."""

    base_url: str  # https://host[:port][/prefix], no trailing slash
    mailto_domain: str

    def url(self, token: str) -> str:
        return f"{self.base_url}/u/{token}"

    def mailto(self, token: str) -> str:
        return f"mailto:unsubscribe@{self.mailto_domain}?subject=unsubscribe%20{token}"


def links_for(config: Config, tenant: Tenant, public_base_url: str) -> Links:
    link_domain = str(tenant.settings.get("link_domain") or "")
    if link_domain:
        return Links(f"https://{link_domain}", link_domain)
    base = (config.unsubscribe.base_url or public_base_url).rstrip("/")
    mailto = config.unsubscribe.mailto_domain or urlsplit(base).hostname or "localhost"
    return Links(base, mailto)


class Prepared:
    """One message, ready to be written once per recipient."""

    def __init__(self, raw: bytes, head_end: int, plan: FooterPlan | None,
                 keys: tuple[SigningKey, ...], links: Links, claims: Claims,
                 sealer: TokenSealer) -> None:
        self._raw = raw
        self._plan = plan
        self._head_end = plan.head_end if plan is not None else head_end
        self._keys = keys
        self._links = links
        self._claims = claims
        self._sealer = sealer
        first = plan.render(footer.PLACEHOLDER) if plan is not None else raw
        self._fields = parse_fields(first[:self._head_end])

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
        whole = self._plan.render(url) if self._plan is not None else self._raw
        head, body = whole[:self._head_end], whole[self._head_end + 2:]
        unsubscribe = (f"List-Unsubscribe: <{url}>,\r\n <{self._links.mailto(token)}>\r\n"
                       ).encode("ascii")
        added = unsubscribe + ONE_CLICK
        if not self._keys:
            return head + added + b"\r\n" + body
        fields = [*self._fields, *parse_fields(added)]
        bh = body_hash(body)
        signatures = b"".join(sign(fields, bh, key) for key in self._keys)
        return signatures + head + added + b"\r\n" + body


class Composer:
    def __init__(self, config: Config, sealer: TokenSealer, dkim: DkimKeys) -> None:
        self.config = config
        self._sealer = sealer
        self._dkim = dkim
        self.public_base_url = ""

    def prepare(self, message: Message, tenant: Tenant, mailbox: Mailbox,
                queue_id: str) -> Prepared:
        for name in REMOVED_FIELDS:
            message.remove(name)
        raw = message.as_bytes()
        head_end = message.header_bytes
        plan = None
        if tenant.settings.get("body", "add") == "add":
            layout = body_parts(raw, head_end)
            if not layout.sealed:
                text, html = self.footers(tenant)
                plan = FooterPlan(raw, head_end, layout, text, html)
        sender = message.from_header()
        addresses = getattr(sender, "addresses", ())
        domain = addresses[0].domain.lower() if addresses else ""
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
        return Prepared(raw, head_end, plan, self._dkim.for_domain(domain),
                        links_for(self.config, tenant, self.public_base_url),
                        Claims(tenant.id, mailbox.id, queue_id, ""), self._sealer)

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
