"""Pixel tokens: what a pixel URL carries, sealed under the rotatable `pixel-token` key.

- `proxy` (one recipient): tenant, mailbox, queue id, recipient *digest* (never the
  address), when the copy was sent, the campaign and the tracker URL the pixel replaced.
  AES-256-GCM with a random nonce, like the unsubscribe token.
- `aggregate` (a campaign, nobody in particular): tenant and campaign only, sealed
  deterministically (AES-SIV), so every recipient's pixel URL is byte-identical and the URL
  cannot tell recipients apart.

`base64url(version(2) || kind(1) || sealed)`; image URLs keep their case.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from gateway.vault.purpose import PurposeKeys

PURPOSE = "pixel-token"
PROXY, AGGREGATE = 1, 2
_AAD = b"ocg pixel token v1"
_NONCE = 12
_HEAD = struct.Struct(">IIIB32sBH")  # tenant, mailbox, sent at, qid len, digest, camp len, url len
MAX_URL = 2048
MAX_TOKEN_CHARS = 3600


class InvalidPixelToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class PixelClaims:
    kind: int  # PROXY | AGGREGATE
    tenant_id: int
    campaign: str
    mailbox_id: int = 0
    queue_id: str = ""
    recipient_digest: bytes = b""  # 32 bytes (keyed digest), PROXY only
    sent_at: int = 0
    original_url: str = ""  # the tracker URL the pixel replaced ("" for the gateway's own)


def _pack(c: PixelClaims) -> bytes:
    queue_id, campaign = c.queue_id.encode()[:40], c.campaign.encode()[:200]
    url = c.original_url.encode()[:MAX_URL]
    digest = c.recipient_digest.ljust(32, b"\0")[:32]
    return (_HEAD.pack(c.tenant_id, c.mailbox_id, c.sent_at, len(queue_id), digest,
                       len(campaign), len(url)) + queue_id + campaign + url)


def _unpack(kind: int, body: bytes) -> PixelClaims:
    if len(body) < _HEAD.size:
        raise InvalidPixelToken("short")
    tenant, mailbox, sent_at, qlen, digest, clen, ulen = _HEAD.unpack_from(body)
    rest = body[_HEAD.size:]
    if len(rest) != qlen + clen + ulen:
        raise InvalidPixelToken("lengths")
    try:
        return PixelClaims(kind, tenant, rest[qlen:qlen + clen].decode(), mailbox,
                           rest[:qlen].decode(), digest if kind == PROXY else b"", sent_at,
                           rest[qlen + clen:].decode())
    except UnicodeDecodeError:
        raise InvalidPixelToken("text") from None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class PixelSealer:
    def __init__(self, keys: PurposeKeys) -> None:
        self._keys = keys
        self._gcm: dict[int, AESGCM] = {}
        self._siv: dict[int, AESSIV] = {}

    def _ciphers(self, version: int, key: bytes) -> tuple[AESGCM, AESSIV]:
        if version not in self._gcm:
            self._gcm[version] = AESGCM(key)
            self._siv[version] = AESSIV(hmac.digest(key, b"ocg pixel aggregate siv",
                                                    hashlib.sha512))
        return self._gcm[version], self._siv[version]

    def seal_proxy(self, claims: PixelClaims) -> str:
        version, key = self._keys.current(PURPOSE)
        gcm, _ = self._ciphers(version, key)
        nonce = os.urandom(_NONCE)
        sealed = gcm.encrypt(nonce, _pack(claims), _AAD)
        return _b64(struct.pack(">HB", version, PROXY) + nonce + sealed)

    def seal_aggregate(self, tenant_id: int, campaign: str) -> str:
        """Deterministic: the same campaign gives the same token, whoever receives it."""
        version, key = self._keys.current(PURPOSE)
        _, siv = self._ciphers(version, key)
        sealed = siv.encrypt(_pack(PixelClaims(AGGREGATE, tenant_id, campaign)), [_AAD])
        return _b64(struct.pack(">HB", version, AGGREGATE) + sealed)

    def open(self, token: str) -> PixelClaims:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidPixelToken("length")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidPixelToken("encoding") from None
        if len(raw) < 3 + 16:
            raise InvalidPixelToken("short")
        version, kind = struct.unpack_from(">HB", raw)
        key = self._keys.version(PURPOSE, version)
        if key is None:
            raise InvalidPixelToken("key version")
        gcm, siv = self._ciphers(version, key)
        try:
            if kind == PROXY:
                body = gcm.decrypt(raw[3:3 + _NONCE], raw[3 + _NONCE:], _AAD)
            elif kind == AGGREGATE:
                body = siv.decrypt(raw[3:], [_AAD])
            else:
                raise InvalidPixelToken("kind")
        except (InvalidTag, ValueError):
            raise InvalidPixelToken("does not open") from None
        return _unpack(kind, body)
