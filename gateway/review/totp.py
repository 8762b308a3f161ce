"""Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30 s, 6 digits, the
kind every authenticator app reads from an otpauth:// URI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

STEP = 30
DIGITS = 6
WINDOW = 1  # one step either side: a phone's clock a little off still works


def new_secret() -> bytes:
    return secrets.token_bytes(20)  # 160 bits, RFC 4226's recommendation


def code_at(secret: bytes, step: int) -> str:
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** DIGITS).zfill(DIGITS)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP)


def matching_step(secret: bytes, code: str, last_step: int, now: float | None = None
                  ) -> int | None:
    """The step `code` belongs to, if it is valid now and newer than `last_step` (a code
    already used is refused: it cannot be replayed)."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    step = current_step(now)
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if candidate > last_step and hmac.compare_digest(code_at(secret, candidate), code):
            return candidate
    return None


def provisioning_uri(secret: bytes, username: str, issuer: str = "Outreach Compliance Gateway"
                     ) -> str:
    label = quote(f"{issuer}:{username}")
    key = base64.b32encode(secret).decode().rstrip("=")
    return (f"otpauth://totp/{label}?secret={key}&issuer={quote(issuer)}"
            f"&algorithm=SHA1&digits={DIGITS}&period={STEP}")
