"""A DKIM signer (RFC 6376, RFC 8463) on dkimpy's canonicalization and `cryptography`.

dkimpy signs RSA in pure Python (milliseconds per message, holding the GIL) and has no hook
for another signer, so the hashing input is built here from dkimpy's own canonicalization
and header selection, and the private-key operation is OpenSSL's. Verification stays with
dkimpy (and, in the tests, Mail::DKIM), so a mistake here cannot hide.

The header list is explicit and oversigned: each name is listed once more than it occurs,
so a field added after signing (a second List-Unsubscribe, say) breaks the signature.
No `l=` tag: a signed body cannot be extended.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from dkim.canonicalization import Relaxed

SIGNED_FIELDS = (
    "from", "to", "cc", "reply-to", "subject", "date", "message-id", "mime-version",
    "content-type", "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post",
    "cfbl-address", "cfbl-feedback-id", "feedback-id",
)
RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"

Field = tuple[bytes, bytes]  # (name, everything after the colon, ending in CRLF)


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str  # the d= domain (ASCII)
    selector: str
    algorithm: str  # rsa-sha256 | ed25519-sha256
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = field(repr=False)


# Relaxed body canonicalization (RFC 6376 s 3.4.4) as dkimpy writes it, with patterns the
# regex engine finds by a literal search: dkimpy's `[\t ]+ -> " "` matches every single
# space of the prose (thousands per message). Without a tab, only runs of two spaces or
# more change; a body with tabs takes dkimpy's pattern.
_WSP = re.compile(rb"[\t ]+")
_SPACES = re.compile(rb"  +")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")


def relaxed_lines(text: bytes) -> bytes:
    """Relaxed canonicalization of each line (white space), without the end-of-body rule:
    for a stretch of lines that is not the body's end."""
    if b" \r\n" in text or b"\t\r\n" in text:
        text = _TRAILING_WSP.sub(b"\r\n", text)
    return _WSP.sub(b" ", text) if b"\t" in text else _SPACES.sub(b" ", text)


def relaxed_body(body: bytes) -> bytes:
    """What dkimpy's `Relaxed.canonicalize_body` gives (a differential test keeps it so)."""
    body = relaxed_lines(body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):  # no empty lines at the end; one CRLF ends it
        end -= 2
    body = body[:end] + b"\r\n"
    return b"" if body == b"\r\n" else body  # an empty body hashes as nothing


def body_hash(body: bytes) -> bytes:
    return base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())


class BodyHasher:
    """Body hashes of copies that begin with the same bytes (each recipient's copy differs
    only from its footer on): the shared whole lines are canonicalized and hashed once,
    and each copy hashes only its own rest, from a copy of the SHA-256 state.

    Relaxed canonicalization is line by line except at the end of the body (trailing
    empty lines go), so the split is at a line break and a rest of nothing but blank lines
    takes the whole body again."""

    def __init__(self, common: bytes) -> None:
        self._cut = common.rfind(b"\r\n") + 2 if b"\r\n" in common else 0
        self._common = common[:self._cut]
        self._state = hashlib.sha256(relaxed_lines(self._common))

    def hash(self, body: bytes) -> bytes:
        """`body_hash(body)`, for a body that begins with the common bytes."""
        rest = relaxed_body(body[self._cut:])
        if not rest or not body.startswith(self._common):
            return body_hash(body)
        state = self._state.copy()
        state.update(rest)
        return base64.b64encode(state.digest())


def header_list(fields: Sequence[Field]) -> list[bytes]:
    """Every signed name once per occurrence, plus once more (oversigning)."""
    present: dict[bytes, int] = {}
    for name, _ in fields:
        key = name.lower()
        present[key] = present.get(key, 0) + 1
    names: list[bytes] = []
    for signed in SIGNED_FIELDS:
        encoded = signed.encode()
        names.extend([encoded] * (present.get(encoded, 0) + 1))
    return names


def _fold_tags(tags: Sequence[bytes]) -> bytes:
    """Tags joined by "; ", folded before a tag when a line would pass 76 characters."""
    out, line = b"", len(b"DKIM-Signature:")
    for i, tag in enumerate(tags):
        sep = b" " if i == 0 else b"; "
        if i and line + len(sep) + len(tag) > 76:
            sep, line = b";\r\n\t", 1
        out += sep + tag
        line += len(sep) + len(tag)
    return out


def _fold_b64(value: bytes, width: int = 72) -> bytes:
    return b"\r\n\t".join(value[i:i + width] for i in range(0, len(value), width))


def canonical_fields(fields: Sequence[Field]) -> list[Field]:
    """Each field in relaxed canonical form (dkimpy's), in order: a message's fields are
    made canonical once, not once per copy and key."""
    canonical: list[Field] = Relaxed.canonicalize_headers(list(fields))
    return canonical


def chosen(fields: Sequence[Field], names: Sequence[bytes]) -> list[int]:
    """The index of the field each name in `names` signs, as dkimpy's `select_headers`
    picks them: the last occurrence first, then the one before; a name with none left
    signs nothing."""
    picked: list[int] = []
    last: dict[bytes, int] = {}
    for name in names:
        i = last.get(name, len(fields))
        while i > 0:
            i -= 1
            if fields[i][0].lower() == name:
                picked.append(i)
                break
        last[name] = i
    return picked


def sign_copy(fields: Sequence[Field], canonical: Sequence[Field], bh: bytes,
              keys: Sequence[SigningKey], timestamp: int | None = None) -> bytes:
    """The DKIM-Signature fields (each name to final CRLF), one per key, for a copy whose
    header fields are `fields` (`canonical`: the same, made canonical) and whose canonical
    body hash is `bh` (see `body_hash`). The signed fields are read once for every key."""
    names = header_list(fields)
    data = b"".join(canonical[i][0] + b":" + canonical[i][1] for i in chosen(fields, names))
    when = timestamp if timestamp is not None else int(time.time())
    return b"".join(_signature(data, names, bh, key, when) for key in keys)


def _signature(data: bytes, names: Sequence[bytes], bh: bytes, key: SigningKey,
               timestamp: int) -> bytes:
    tags = [b"v=1", b"a=" + key.algorithm.encode(), b"c=relaxed/relaxed",
            b"d=" + key.domain.encode(), b"s=" + key.selector.encode(),
            b"t=%d" % timestamp, b"h=" + b":".join(names), b"bh=" + bh, b"b="]
    value = _fold_tags(tags)
    own = Relaxed.canonicalize_headers([(b"DKIM-Signature", value)])[0]
    data += own[0] + b":" + own[1].rstrip()
    if isinstance(key.private, rsa.RSAPrivateKey):
        signature = key.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.private.sign(hashlib.sha256(data).digest())
    return b"DKIM-Signature:" + value + _fold_b64(base64.b64encode(signature)) + b"\r\n"


def parse_fields(head: bytes) -> list[Field]:
    """Split a header block (fields each ending in CRLF) into (name, value) pairs."""
    fields: list[Field] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + line + b"\r\n")
            continue
        name, _, value = line.partition(b":")
        fields.append((name, value + b"\r\n"))
    return fields
