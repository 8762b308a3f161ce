"""Complaint feedback that maps back: RFC 9477 `CFBL-Address` and `CFBL-Feedback-ID`, and
Gmail's `Feedback-ID`.

Every signed copy names where complaints go (`CFBL-Address: fbl@<feedback domain>;
report=arf`) and carries a reference only the gateway can read (`CFBL-Feedback-ID`): the
tenant, the copy's queue id, the recipient's audit digest, the header-From domain and the
campaign (the breakers' scopes), sealed with AES-SIV under the rotatable `feedback-ref`
purpose key. A provider's report returns that
header (RFC 9477 s 3.2), even when it holds nothing else of the message (Microsoft's JMRP,
Yahoo's CFL) or redacts the recipient (RFC 6590): the reference alone names the copy and the
person, digest-only.

The feedback domain must be the From domain or a child of it, with the DKIM signature's
`d=` the From domain (RFC 9477 s 3.1): the tenant's link domain (`links.acme.example`,
whose MX is the inbound listener) when it lies under the From domain. Without an aligned
domain, or without a DKIM key, the copy carries no CFBL field: a receiver would ignore it.

`Feedback-ID` (Gmail's feedback loop) is aggregated by Gmail per identifier, so it holds
only low-cardinality values — campaign, tenant, stream and a stable sender id — and is the
same for every copy of a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from gateway.directory.address import FEEDBACK_LOCAL_PART
from gateway.limits.breakers import campaign_key, campaign_scope
from gateway.vault.purpose import PurposeKeys

PURPOSE = "feedback-ref"
STREAM = "outreach"
_AAD = b"ocg cfbl feedback ref v1"
# tenant, header-From domain id, recipient digest, campaign key, queue id length
_BODY = struct.Struct(">II16s8sB")
MAX_REF_CHARS = 200
_CAMPAIGN_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidFeedbackRef(Exception):
    pass


@dataclass(frozen=True, slots=True)
class FeedbackRef:
    """What a `CFBL-Feedback-ID` names: one copy, and the campaign it belonged to."""

    tenant_id: int
    queue_id: str
    recipient_digest: bytes  # the first 16 bytes of the audit digest
    campaign: bytes  # limits.breakers.campaign_key of the campaign the tool named
    domain_id: int = 0  # the header-From domain (0: not known)

    def scopes(self) -> tuple[str, ...]:
        """The breaker scopes this copy's message counted in besides its mailbox's: the
        header-From domain and the campaign."""
        named = campaign_scope(self.tenant_id, self.campaign)
        return (*((f"d{self.domain_id}",) if self.domain_id else ()),
                *((named,) if named else ()))

    def names(self, recipient_digest_hex: str) -> bool:
        """Whether the sent index's digest (hex) is this reference's recipient."""
        return hmac.compare_digest(recipient_digest_hex[:32].lower(),
                                   self.recipient_digest.hex())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class FeedbackRefs:
    """Seals and opens `CFBL-Feedback-ID` values. Deterministic (AES-SIV): the same copy gets
    the same value, and no nonce lengthens it (about 100 characters)."""

    def __init__(self, keys: PurposeKeys) -> None:
        self._keys = keys
        self._siv: dict[int, AESSIV] = {}

    def _cipher(self, version: int, key: bytes) -> AESSIV:
        if version not in self._siv:
            self._siv[version] = AESSIV(hmac.digest(key, b"ocg cfbl siv", hashlib.sha512))
        return self._siv[version]

    def seal(self, tenant_id: int, queue_id: str, recipient_digest_hex: str,
             campaign: bytes, domain_id: int = 0) -> str:
        version, key = self._keys.current(PURPOSE)
        qid = queue_id.encode("ascii")[:40]
        body = _BODY.pack(tenant_id, domain_id, bytes.fromhex(recipient_digest_hex[:32]),
                          campaign[:8], len(qid)) + qid
        head = struct.pack(">H", version)
        return _b64(head + self._cipher(version, key).encrypt(body, [_AAD, head]))

    def open(self, value: str) -> FeedbackRef:
        """The reference a report returned; InvalidFeedbackRef if it is not one of ours (or
        was sealed with a retired key version)."""
        value = value.strip()
        if not value or len(value) > MAX_REF_CHARS:
            raise InvalidFeedbackRef("length")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise InvalidFeedbackRef("encoding") from None
        if len(raw) < 2 + 16 + _BODY.size:  # version, SIV tag, body
            raise InvalidFeedbackRef("short")
        head = raw[:2]
        (version,) = struct.unpack(">H", head)
        key = self._keys.version(PURPOSE, version)
        if key is None:
            raise InvalidFeedbackRef("key version")
        try:
            body = self._cipher(version, key).decrypt(raw[2:], [_AAD, head])
        except (InvalidTag, ValueError):
            raise InvalidFeedbackRef("does not open") from None
        tenant_id, domain_id, digest, campaign, qlen = _BODY.unpack_from(body)
        qid = body[_BODY.size:]
        if len(qid) != qlen:
            raise InvalidFeedbackRef("lengths")
        try:
            return FeedbackRef(tenant_id, qid.decode("ascii"), digest, campaign, domain_id)
        except UnicodeDecodeError:
            raise InvalidFeedbackRef("text") from None


def feedback_id(campaign: str, tenant_id: int, sender_id: str) -> str:
    """Gmail's `Feedback-ID: campaign:tenant:stream:sender` — nothing per recipient. A
    campaign name that looks like it could name a person (an `@`) goes as a digest."""
    label = campaign if "@" not in campaign else campaign_key(campaign).hex()
    label = _CAMPAIGN_CHARS.sub("-", label).strip("-")[:40] or "none"
    sender = _CAMPAIGN_CHARS.sub("-", sender_id).strip("-")[:40] or "ocg"
    return f"{label}:t{tenant_id}:{STREAM}:{sender}"


def address_field(domain: str) -> bytes:
    return f"CFBL-Address: {FEEDBACK_LOCAL_PART}@{domain}; report=arf\r\n".encode("ascii")
