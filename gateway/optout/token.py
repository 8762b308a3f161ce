"""The unsubscribe token: who unsubscribes from whom, sealed so that it names nobody.

A token is `base32(version || nonce || AES-256-GCM(claims))`, lower case, no padding:
- `version` (2 bytes) picks the `unsubscribe-token` purpose key that sealed it, so tokens
  keep working across rotations until their version is retired (`gateway key retire`);
- the claims (tenant, sending mailbox, queue id, recipient) are padded to a multiple of 16
  bytes, so a token's length does not tell the recipient's address length;
- base32 because the token also travels in a `mailto:` subject, and some software changes
  case: decoding folds case.

There is no expiry: an unsubscribe link must work as long as mail carrying it may be read.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import VaultError
from gateway.vault.purpose import PurposeKeys

PURPOSE = "unsubscribe-token"
_AAD = b"ocg unsubscribe token v1"
_HEAD = struct.Struct(">IIB")  # tenant id, mailbox id, queue id length
_NONCE = 12
_PAD = 16
MAX_TOKEN_CHARS = 700  # a 320-octet recipient and a 40-character queue id seal to 664


class InvalidToken(Exception):
    """Forged, damaged or sealed with a retired key: the caller answers 4xx, writes nothing."""


@dataclass(frozen=True, slots=True)
class Claims:
    tenant_id: int
    mailbox_id: int
    queue_id: str
    recipient: str


def _pack(claims: Claims) -> bytes:
    queue_id = claims.queue_id.encode("ascii")
    body = _HEAD.pack(claims.tenant_id, claims.mailbox_id, len(queue_id)) + queue_id
    body += claims.recipient.encode("utf-8")
    body += b"\x80"  # ISO/IEC 7816-4 padding: a marker byte, then zeros
    return body + b"\0" * (-len(body) % _PAD)


def _unpack(body: bytes) -> Claims:
    end = body.rstrip(b"\0")
    if not end.endswith(b"\x80"):
        raise InvalidToken("bad padding")
    body = end[:-1]
    if len(body) < _HEAD.size:
        raise InvalidToken("too short")
    tenant_id, mailbox_id, qlen = _HEAD.unpack_from(body)
    queue_id = body[_HEAD.size:_HEAD.size + qlen]
    recipient = body[_HEAD.size + qlen:]
    try:
        return Claims(tenant_id, mailbox_id, queue_id.decode("ascii"), recipient.decode())
    except UnicodeDecodeError:
        raise InvalidToken("bad text") from None


def _raw(token: str) -> bytes | None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    text = token.strip().upper()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) >= 2 + _NONCE + 16 + _PAD else None


class TokenSealer:
    """Seals with the newest key version; opens with any version not retired."""

    def __init__(self, keys: PurposeKeys) -> None:
        self._keys = keys
        self._aead: dict[int, AESGCM] = {}
        self._reloaded = 0.0

    def newer_version(self, token: str) -> bool:
        """Whether the token names a key version above the newest one loaded here: another
        node rotated the key a moment ago (`refresh`, then open again)."""
        raw = _raw(token)
        if raw is None:
            return False
        try:
            newest = self._keys.current(PURPOSE)[0]
        except VaultError:
            newest = 0
        version: int = struct.unpack_from(">H", raw)[0]
        return newest < version <= newest + 3  # rotations are one version at a time

    async def refresh(self) -> None:
        """Reload the key versions, at most once a second (a forger cannot make it more)."""
        if time.monotonic() - self._reloaded < 1.0:
            return
        self._reloaded = time.monotonic()
        await self._keys.load()

    def _cipher(self, version: int, key: bytes) -> AESGCM:
        cipher = self._aead.get(version)
        if cipher is None:
            cipher = self._aead[version] = AESGCM(key)
        return cipher

    def seal(self, claims: Claims) -> str:
        version, key = self._keys.current(PURPOSE)
        nonce = os.urandom(_NONCE)
        sealed = self._cipher(version, key).encrypt(nonce, _pack(claims), _AAD)
        raw = struct.pack(">H", version) + nonce + sealed
        return base64.b32encode(raw).decode("ascii").rstrip("=").lower()

    def open(self, token: str) -> Claims:
        raw = _raw(token)
        if raw is None:
            raise InvalidToken("not a token")
        version = struct.unpack_from(">H", raw)[0]
        key = self._keys.version(PURPOSE, version)
        if key is None:
            raise InvalidToken("unknown or retired key version")
        try:
            body = self._cipher(version, key).decrypt(raw[2:2 + _NONCE], raw[2 + _NONCE:], _AAD)
        except InvalidTag:
            raise InvalidToken("does not open") from None
        return _unpack(body)
