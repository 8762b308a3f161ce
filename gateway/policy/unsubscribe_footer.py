"""The body side of unsubscribe (CAN-SPAM): a visible link and the sender's postal address.

In `add` mode (the default) the gateway adds both as a footer after the checks, so this
check only makes sure there is a postal address to add (without one the message waits:
451 4.3.5, an operator's fix). In `require` mode the campaign tool writes its own footer,
and a message whose text lacks an unsubscribe link or the postal address is refused.
"""

from __future__ import annotations

import html
import re
from typing import ClassVar

from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.readable import decoded_text_parts
from gateway.policy.verdict import Verdict
from gateway.protocol import replies

# "Unsubscribe" in the languages the unsubscribe page speaks, lower case.
UNSUBSCRIBE_WORDS = (
    "unsubscribe", "opt out", "opt-out", "abmelden", "abbestellen", "désabonner",
    "désinscrire", "desinscrire", "darse de baja", "darte de baja", "cancelar suscripción",
    "descadastrar", "cancelar inscrição", "cancelar a inscrição", "afmelden", "uitschrijven",
    "配信停止", "購読解除", "disiscriviti", "annulla iscrizione",
)
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_LINK = re.compile(r"(https?://|mailto:)", re.IGNORECASE)


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def visible_text(tx: Transaction) -> str:
    """The text a reader sees: text/plain parts as they are, HTML parts with tags dropped
    but link targets kept."""
    assert tx.message is not None
    chunks = []
    for _, kind, content in decoded_text_parts(tx.message):
        if kind == "text/html":
            hrefs = " ".join(re.findall(r'href\s*=\s*["\']([^"\']+)', content, re.IGNORECASE))
            content = html.unescape(_TAGS.sub(" ", content)) + " " + hrefs
        chunks.append(content)
    return _normal(" ".join(chunks))


class UnsubscribeFooter:
    name: ClassVar[str] = "unsubscribe-footer"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._directory = ctx.directory

    async def check(self, tx: Transaction) -> Verdict:
        settings = tx.tenant.settings
        postal = str(settings.get("postal_address") or "")
        if not postal.strip():
            return Verdict.reject(self.name, replies.NO_POSTAL_ADDRESS,
                                  "tenant has no postal_address setting")
        if settings.get("body", "add") != "require":
            return Verdict.ok(self.name)
        text = visible_text(tx)
        if not any(word in text for word in UNSUBSCRIBE_WORDS) or not _LINK.search(text):
            return Verdict.reject(self.name, replies.NO_UNSUBSCRIBE_IN_BODY,
                                  "body = require: no visible unsubscribe link")
        if _normal(postal) not in text:
            return Verdict.reject(self.name, replies.NO_UNSUBSCRIBE_IN_BODY,
                                  "body = require: the postal address is not in the body")
        return Verdict.ok(self.name)
