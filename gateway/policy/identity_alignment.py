"""The sender is who the message says (what receivers' DMARC and readers both judge).

- the From domain is one of the tenant's *verified* domains (`gateway domain verify`);
- the display name shows no other address or domain ("PayPal <x@acme.example>" is fine,
  "support@paypal.com <x@acme.example>" is not);
- Reply-To, Sender, Resent-From, Resent-Sender (every occurrence) and the envelope sender
  are in the From's organisational domain (relaxed alignment: `news.acme.example` aligns
  with `acme.example`); an address there that does not parse counts as outside;
- no bidirectional-text control characters in the Subject or a display name (they reorder
  what the reader sees).
(`parsed` already made sure there is exactly one From mailbox.)

Tenant setting `identity_alignment` = reject (default) | hold. Only the operator can switch
it off (`[policy.identity-alignment] action = "off"`, with `floor = "off"`).
"""

from __future__ import annotations

import re
from email.headerregistry import HeaderRegistry
from typing import ClassVar

from gateway.policy.actions import ORDER, stronger
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.verdict import Verdict
from gateway.protocol import replies

BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_DOMAIN_IN_TEXT = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,63}\b", re.IGNORECASE)
# second-level registries under which the organisational domain has three labels
_PUBLIC_SECOND = frozenset({"co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au",
                            "org.au", "co.jp", "ne.jp", "or.jp", "com.br", "com.mx", "co.nz",
                            "co.za", "com.cn", "com.tr", "co.in", "co.kr", "com.sg"})


def organisational(domain: str) -> str:
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in _PUBLIC_SECOND else 2
    return ".".join(labels[-keep:])


# Other fields that name who sent the message, as readers and receivers show them.
_OTHER_IDENTITIES = ("reply-to", "sender", "resent-from", "resent-sender")
_ADDRESS_LIST = HeaderRegistry()


def _aligned(value: str, org: str) -> bool:
    """Every address in one field's value is in the organisational domain `org`."""
    try:
        header = _ADDRESS_LIST("To", value)  # any address-list field parses the same way
        addresses = [a for group in header.groups for a in group.addresses]  # type: ignore[attr-defined]
    except (ValueError, IndexError, TypeError, AttributeError):
        return False
    if not addresses or header.defects:
        return False
    return all(a.domain and organisational(a.domain) == org for a in addresses)


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()


class IdentityAlignment:
    name: ClassVar[str] = "identity-alignment"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._config = ctx.config
        self._directory = ctx.directory

    def _action(self, tx: Transaction) -> str:
        operator = self._config.check_config(self.name)
        chosen = str(tx.tenant.settings.get("identity_alignment") or "")
        if chosen not in ("hold", "reject"):  # a tenant never switches it off
            chosen = operator.action if operator.action in ORDER else "reject"
        elif operator.action == "off" and operator.floor == "off":
            chosen = "off"  # the operator switched it off for everyone
        return stronger(chosen, operator.floor)

    async def check(self, tx: Transaction) -> Verdict:
        message = tx.message
        assert message is not None
        action = self._action(tx)
        if action == "off":
            return Verdict.ok(self.name)
        header = message.from_header()
        assert header is not None  # `parsed` ran first
        (mailbox,) = header.addresses  # type: ignore[attr-defined]
        from_domain = mailbox.domain.lower()
        org = organisational(from_domain)
        problems = []
        if not self._directory.domain_verified(from_domain):
            problems.append("From domain is not verified (gateway domain verify)")
        shown = mailbox.display_name or ""
        for found in _DOMAIN_IN_TEXT.findall(shown):
            if organisational(found) != org:
                problems.append("display name shows another domain")
                break
        for field in _OTHER_IDENTITIES:
            if any(not _aligned(value, org) for value in message.values(field)):
                problems.append(f"{field.title()} is outside the From domain")
        if organisational(_domain_of(tx.envelope_from)) != org:
            problems.append("envelope sender is outside the From domain")
        subject = message.decoded("subject") or ""
        if BIDI.search(subject) or BIDI.search(shown):
            problems.append("bidirectional control characters in Subject or display name")
        if not problems:
            return Verdict.ok(self.name)
        reason = "; ".join(problems)
        if action == "reject":
            return Verdict.reject(self.name, replies.IDENTITY_MISALIGNED, reason)
        return Verdict.hold(self.name, reason)
