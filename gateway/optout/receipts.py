"""Signed opt-out receipts: proof that an opt-out was accepted, and when it took effect.

Every accepted opt-out (one-click POST, the page's button, mailto, a confirmed or clear
reply, a bounce, a complaint) gets a receipt:

    {"audit_head": "<row hash of the opt-out's audit row>", "channel": "one-click",
     "effective_at": "2026-12-05T22:07:42Z", "key": 1, "received_at": "...",
     "recipient_digest": "<audit digest>", "tenant": 7, "v": 1, "sig": "<Ed25519>"}

The signature is Ed25519 over the canonical JSON of every other field (sorted keys, no
spaces, UTF-8), under the `receipt-signing` purpose key (its 32 random bytes are the
Ed25519 seed). The key rotates; versions are never retired, so every public key that ever
signed stays published (`/.well-known/ocg-receipt-keys.json`, `gateway receipt key`) and
a receipt verifies offline with nothing but that document (`gateway receipt verify`).

A receipt names the person only by the audit digest: it survives erasure, and it tells
nobody who opted out.

**Effective-at is a time the opt-out was already enforced.** The suppression entry, its
audit row and a *pending* receipt row (no signature yet) commit in one transaction; only
then is the time taken, the receipt signed with it and an `optout.effective` audit row
written (`complete`). Every node reads the shared suppression store at each RCPT and again
right before a copy goes upstream, with no cache, so a look that starts after effective-at
sees the entry: a copy checked later than that was never sent (reports/optouts.py counts
them from the audit rows — 0). A process killed between the two leaves the row pending;
`complete_pending` (each retention round) signs it with a later, still true, effective-at.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import trail as audit
from gateway.observability import metrics
from gateway.store.engine import aware
from gateway.store.schema import optout_receipts
from gateway.vault.purpose import PurposeKeys

PURPOSE = "receipt-signing"
VERSION = 1
FIELDS = ("audit_head", "channel", "effective_at", "key", "received_at", "recipient_digest",
          "tenant", "v")
MAX_RECEIPT = 4096


class InvalidReceipt(Exception):
    pass


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ReceiptSigner:
    def __init__(self, keys: PurposeKeys) -> None:
        self._keys = keys

    def _private(self, version: int) -> Ed25519PrivateKey:
        seed = self._keys.version(PURPOSE, version)
        if seed is None:
            raise InvalidReceipt(f"receipt key version {version} is not loaded")
        return Ed25519PrivateKey.from_private_bytes(seed)

    def sign(self, tenant_id: int, recipient_digest: str, channel: str,
             received_at: datetime, effective_at: datetime, audit_head: str) -> str:
        """The signed receipt, as it is handed out (its canonical JSON text)."""
        version, _ = self._keys.current(PURPOSE)
        fields = {"audit_head": audit_head, "channel": channel,
                  "effective_at": iso(effective_at), "key": version,
                  "received_at": iso(received_at), "recipient_digest": recipient_digest,
                  "tenant": tenant_id, "v": VERSION}
        signature = self._private(version).sign(canonical(fields))
        return canonical({**fields, "sig": _b64(signature)}).decode()

    def sign_bytes(self, data: bytes) -> tuple[int, str]:
        """Any other attestation under the same key (the evidence pack's hash): the key
        version and the base64url signature."""
        version, _ = self._keys.current(PURPOSE)
        return version, _b64(self._private(version).sign(data))

    def key_document(self) -> dict[str, Any]:
        """What `/.well-known/ocg-receipt-keys.json` serves (and `verify` reads offline):
        every loaded version's raw public key, base64url."""
        return {"algorithm": "Ed25519", "format": "ocg-optout-receipt/1", "keys": [
            {"key": version, "public": _b64(self._private(version).public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw))}
            for version in self._keys.versions(PURPOSE)]}

    @staticmethod
    async def pend(conn: AsyncConnection, tenant_id: int, recipient_digest: str,
                   channel: str, received_at: datetime, audit_head: str,
                   expires_at: int | None = None) -> int:
        """The receipt's row, unsigned, in the opt-out's own transaction; `complete` signs
        it once that transaction has committed. `expires_at` (Unix time): the entry lapses
        then (a soft bounce's), and the opt-out report stops counting there."""
        row = await conn.execute(optout_receipts.insert().values(
            tenant_id=tenant_id, recipient_digest=recipient_digest, channel=channel[:20],
            received_at=received_at, effective_at=received_at, receipt="",
            audit_head=audit_head, expires_at=None if expires_at is None
            else datetime.fromtimestamp(expires_at, UTC)))
        key = row.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def complete(self, engine: AsyncEngine, receipt_ids: list[int]) -> list[str]:
        """Sign pending receipts with effective-at = now (after their opt-out committed),
        each with its `optout.effective` audit row. The signed texts, in order; a receipt
        another process completed meanwhile is returned as it signed it."""
        if not receipt_ids:
            return []
        r = optout_receipts.c
        async with engine.begin() as conn:
            rows = {row.id: row for row in await conn.execute(
                sa.select(optout_receipts).where(r.id.in_(receipt_ids)).with_for_update())}
            effective = datetime.now(UTC)
            signed: dict[int, str] = {}
            audit_rows = []
            for rid, row in rows.items():
                if row.receipt:
                    signed[rid] = row.receipt
                    continue
                received = aware(row.received_at) or row.received_at
                text = self.sign(row.tenant_id, row.recipient_digest, row.channel, received,
                                 effective, row.audit_head)
                await conn.execute(optout_receipts.update().where(r.id == rid).values(
                    receipt=text, effective_at=effective))
                signed[rid] = text
                metrics.OPTOUT_ENFORCEMENT.labels(row.channel).observe(
                    max((effective - received).total_seconds(), 0.0))
                lapses = aware(row.expires_at)
                audit_rows.append(audit.row(
                    "optout.effective", actor="receipts", tenant_id=row.tenant_id,
                    recipient_digest=row.recipient_digest, channel=row.channel,
                    received_at=iso(received), effective_at=iso(effective), receipt=rid,
                    **({"expires_at": iso(lapses)} if lapses is not None else {})))
            if audit_rows:
                await audit.write(conn, audit_rows)
        return [signed[i] for i in receipt_ids if i in signed]

    async def complete_pending(self, engine: AsyncEngine, older_than: float = 60.0) -> int:
        """Sign the receipts a killed process left pending (pending over `older_than`
        seconds: younger ones are their own process's to sign); how many."""
        r = optout_receipts.c
        before = datetime.now(UTC) - timedelta(seconds=older_than)
        async with engine.connect() as conn:
            ids = [row.id for row in await conn.execute(sa.select(r.id).where(
                r.receipt == "", r.received_at < before).order_by(r.id).limit(1000))]
        return len(await self.complete(engine, ids))


def keys_from(document: dict[str, Any]) -> dict[int, bytes]:
    """The public keys of a key document (`key_document`), by version."""
    try:
        return {int(k["key"]): _unb64(str(k["public"])) for k in document["keys"]}
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise InvalidReceipt(f"not a receipt key document ({type(exc).__name__})") from None


def verify(text: str, keys: dict[int, bytes]) -> dict[str, Any]:
    """The receipt's fields if its signature holds under the key it names; InvalidReceipt
    otherwise (one altered byte anywhere fails)."""
    if len(text) > MAX_RECEIPT:
        raise InvalidReceipt("too long")
    try:
        fields = json.loads(text)
    except (ValueError, UnicodeError):
        raise InvalidReceipt("not JSON") from None
    if not isinstance(fields, dict) or set(fields) != {*FIELDS, "sig"}:
        raise InvalidReceipt("not a receipt: its fields differ")
    if canonical(fields).decode() != text.strip():
        raise InvalidReceipt("not in canonical form")
    sig_text = str(fields.pop("sig"))
    try:
        signature = _unb64(sig_text)
        public = keys.get(int(fields["key"]))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidReceipt("unreadable signature or key") from None
    if _b64(signature) != sig_text:  # base64's spare bits: one text per signature
        raise InvalidReceipt("signature not in canonical form")
    if public is None:
        raise InvalidReceipt(f"no public key for version {fields['key']}")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, canonical(fields))
    except (InvalidSignature, ValueError):
        raise InvalidReceipt("the signature does not hold") from None
    return dict(fields)


def check_signature(data: bytes, version: int, sig_text: str, keys: dict[int, bytes]) -> None:
    """InvalidReceipt unless `sig_text` is the signature of `data` under key `version`."""
    public = keys.get(version)
    if public is None:
        raise InvalidReceipt(f"no public key for version {version}")
    try:
        signature = _unb64(sig_text)
    except (ValueError, binascii.Error):
        raise InvalidReceipt("unreadable signature") from None
    if _b64(signature) != sig_text:
        raise InvalidReceipt("signature not in canonical form")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        raise InvalidReceipt("the signature does not hold") from None


async def receipts_of(conn: AsyncConnection, tenant_id: int, recipient_digest: str
                      ) -> list[str]:
    r = optout_receipts.c
    rows = await conn.execute(sa.select(r.receipt).where(
        r.tenant_id == tenant_id, r.recipient_digest == recipient_digest,
        r.receipt != "").order_by(r.id))
    return [row.receipt for row in rows]
