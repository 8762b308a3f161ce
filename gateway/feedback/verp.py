"""VERP return paths: each copy to a smarthost leaves with its own envelope sender,
`bounce+<queue id>-<mac>@<inbound domain>`, so a bounce names the copy it is about.

The handle is the copy's queue id and an 80-bit HMAC over that queue id and the
recipient's audit digest (the digest the sent index keeps), under the `return-path`
purpose key. A bounce is believed only when the MAC matches a row of the sent index: a
forger cannot make a handle for a copy, nor turn one copy's handle against another person.
The handle names nobody: 36 characters, within RFC 5321's 64-octet local part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.feedback.sent import SentCopy
from gateway.store.engine import aware
from gateway.store.schema import sent_messages
from gateway.vault.purpose import PurposeKeys

PURPOSE = "return-path"
PREFIX = "bounce+"
_HANDLE = re.compile(r"^bounce\+([0-9a-z]{8,40})-([a-z2-7]{16})$")


class ReturnPaths:
    def __init__(self, keys: PurposeKeys, digest: Callable[[str], str],
                 domain: Callable[[], str]) -> None:
        self._keys = keys
        self._digest = digest  # the audit digest of a recipient (the sent index's name)
        self._domain = domain

    def _mac(self, queue_id: str, recipient_digest: str) -> str:
        _, key = self._keys.current(PURPOSE)
        mac = hmac.new(key, f"{queue_id}|{recipient_digest}".encode(), hashlib.sha256).digest()
        return base64.b32encode(mac[:10]).decode().lower()

    def address(self, queue_id: str, recipient: str) -> str:
        """The return path of one copy."""
        mac = self._mac(queue_id, self._digest(recipient))
        return f"{PREFIX}{queue_id.lower()}-{mac}@{self._domain()}"

    @staticmethod
    def looks_like(local_part: str) -> bool:
        return _HANDLE.match(local_part.lower()) is not None

    async def copy_for(self, engine: AsyncEngine, local_part: str) -> SentCopy | None:
        """The sent copy a handle names, or None (forged, damaged, or purged by retention)."""
        found = _HANDLE.match(local_part.lower())
        if found is None:
            return None
        queue_id, mac = found.group(1).upper(), found.group(2)
        t = sent_messages
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(t).where(t.c.queue_id == queue_id))).all()
        for r in rows:
            if hmac.compare_digest(self._mac(queue_id, r.recipient_digest), mac):
                return SentCopy(r.tenant_id, r.mailbox_id, r.queue_id, r.recipient_digest,
                                r.suppression_digest, aware(r.sent_at) or r.sent_at)
        return None
