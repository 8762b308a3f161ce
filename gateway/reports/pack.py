"""The evidence pack as it is handed over: the document (reports/evidence.py), its SHA-256
and an Ed25519 signature of that hash under the gateway's receipt key.

    {"document": {...}, "sha256": "<hex>", "generated_at": "...Z",
     "signature": {"algorithm": "Ed25519", "key": 1, "sig": "<base64url>"}}

What is signed is the canonical JSON of {"format", "generated_at", "sha256"}: the hash
covers every figure and the chain heads they were computed against, so the PDF (a rendering
of the same document) need not be trusted on its own. Verifying takes three steps, each of
which can fail on its own: the hash is the document's; the signature is the gateway's (the
key document of `gateway receipt key`); and the trail, read again up to the same heads,
gives the same document (`recheck`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.optout.receipts import (
    InvalidReceipt,
    ReceiptSigner,
    canonical,
    check_signature,
    iso,
)
from gateway.reports.evidence import FORMAT, digest, evidence
from gateway.reports.heads import heads_for, heads_from, heads_hold
from gateway.reports.period import moment

MAX_PACK = 64 * 1024 * 1024


class InvalidPack(Exception):
    pass


async def generate(conn: AsyncConnection, tenant_id: int, tenant_name: str, start: datetime,
                   end: datetime, now: datetime | None = None) -> dict[str, Any]:
    """The document for a tenant and period, against the heads the period settles on."""
    heads, settled = await heads_for(conn, end, now or datetime.now(UTC))
    return await evidence(conn, tenant_id, tenant_name, start, end, heads, settled)


def signed(document: dict[str, Any], signer: ReceiptSigner,
           generated_at: datetime | None = None) -> dict[str, Any]:
    at = iso(generated_at or datetime.now(UTC))
    sha = digest(document)
    version, sig = signer.sign_bytes(_attested(sha, at))
    return {"document": document, "sha256": sha, "generated_at": at,
            "signature": {"algorithm": "Ed25519", "key": version, "sig": sig}}


def _attested(sha: str, generated_at: str) -> bytes:
    return canonical({"format": FORMAT, "generated_at": generated_at, "sha256": sha})


def read(text: str) -> dict[str, Any]:
    """A pack's JSON, checked for shape (InvalidPack)."""
    if len(text) > MAX_PACK:
        raise InvalidPack("too large")
    try:
        pack = json.loads(text)
    except ValueError:
        raise InvalidPack("not JSON") from None
    if not isinstance(pack, dict) or not isinstance(pack.get("document"), dict) \
            or not isinstance(pack.get("signature"), dict):
        raise InvalidPack("not an evidence pack: no document or signature")
    if pack["document"].get("format") != FORMAT:
        raise InvalidPack(f"not an evidence pack of format {FORMAT}")
    return pack


def check(pack: dict[str, Any], keys: dict[int, bytes]) -> str:
    """The hash, if it is the document's and the signature holds (InvalidPack otherwise)."""
    sha = digest(pack["document"])
    if sha != pack.get("sha256"):
        raise InvalidPack("the document does not hash to the signed value: it was changed")
    signature = pack["signature"]
    try:
        check_signature(_attested(sha, str(pack.get("generated_at"))),
                        int(signature.get("key")), str(signature.get("sig")), keys)
    except (InvalidReceipt, TypeError, ValueError) as exc:
        raise InvalidPack(f"the signature: {exc}") from None
    return sha


@dataclass(frozen=True, slots=True)
class Recheck:
    problems: list[str]  # heads the trail no longer has as recorded
    differences: list[str]  # figures that differ, by path

    @property
    def holds(self) -> bool:
        return not self.problems and not self.differences


async def recheck(conn: AsyncConnection, document: dict[str, Any]) -> Recheck:
    """Read the trail again up to the document's heads and compare every figure."""
    try:
        heads = heads_from(document["audit"]["heads"])
        tenant = document["tenant"]
        start = moment(document["period"]["from"], "from")
        end = moment(document["period"]["to"], "to")
        settled = bool(document["audit"]["settled"])
        tenant_id, tenant_name = int(tenant["id"]), str(tenant["name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPack(f"the document does not say what it was computed from "
                          f"({type(exc).__name__})") from None
    problems = await heads_hold(conn, heads)
    again = await evidence(conn, tenant_id, tenant_name, start, end, heads, settled)
    return Recheck(problems, list(_differences(document, again)))


def _differences(given: Any, computed: Any, path: str = "") -> Iterator[str]:
    if isinstance(given, dict) and isinstance(computed, dict):
        for key in sorted(set(given) | set(computed)):
            yield from _differences(given.get(key), computed.get(key), f"{path}.{key}")
    elif isinstance(given, list) and isinstance(computed, list) and len(given) == len(
            computed):
        for n, (a, b) in enumerate(zip(given, computed, strict=True)):
            yield from _differences(a, b, f"{path}[{n}]")
    elif given != computed:
        yield f"{path.lstrip('.')}: {json.dumps(given)[:80]} in the pack, " \
              f"{json.dumps(computed)[:80]} in the trail"
