"""`GET /p/<token>`: the tracking pixel, answered before any other work.

A raw ASGI handler in front of the public app (no routing, validation or dependency
injection on the hot path). Every request gets the same 43-byte transparent GIF at once,
`Cache-Control: no-store`, no cookie, no redirect; a token that does not open gets the same
GIF (no oracle) and records nothing. After the answer: the open is recorded in memory
(anonymized network, user-agent family, the fetch's signals and verdict: pixels/verdict.py)
and, in proxy mode, the tracker it replaced is told, in the background, without the client's
address — unless a bot fetched it (a scanner's fetch is nobody's open).
"""

from __future__ import annotations

import time
from typing import Any

from gateway.pixels.forward import Forwarder
from gateway.pixels.opens import OpenRecorder, open_row
from gateway.pixels.token import PROXY, InvalidPixelToken, PixelSealer
from gateway.pixels.verdict import Judge, Verdict

GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f904010000000"
                    "02c00000000010001000002024401003b")
_HEADERS = [
    (b"content-type", b"image/gif"), (b"content-length", str(len(GIF)).encode()),
    (b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0"),
    (b"pragma", b"no-cache"), (b"expires", b"0"), (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_START = {"type": "http.response.start", "status": 200, "headers": _HEADERS}


class PixelEndpoint:
    def __init__(self, app: Any, sealer: PixelSealer, recorder: OpenRecorder,
                 forwarder: Forwarder | None, judge: Judge) -> None:
        self.app = app
        self._sealer = sealer
        self._recorder = recorder
        self._forwarder = forwarder
        self._judge = judge

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/p/") \
                or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        await send(_START)
        await send({"type": "http.response.body",
                    "body": GIF if scope["method"] == "GET" else b""})
        self._count(scope)

    def _count(self, scope: dict[str, Any]) -> None:
        try:
            claims = self._sealer.open(scope["path"][3:])
        except InvalidPixelToken:
            return  # the same GIF, and nothing written
        user_agent = next((v.decode("latin-1") for k, v in scope["headers"]
                           if k == b"user-agent"), "")
        network = str(scope.get("ocg.client_network", "unknown"))
        judged = self._judge.judge(scope["path"], user_agent, scope["method"], network,
                                   claims.sent_at, time.time(),
                                   scope.get("ocg.client_kind", False))
        proxy = claims.kind == PROXY
        self._recorder.record(open_row(
            claims.tenant_id, claims.queue_id if proxy else None, claims.campaign,
            claims.recipient_digest.hex() if proxy else None, network, judged.family,
            judged.verdict, judged.signals))
        if proxy and claims.original_url and self._forwarder is not None \
                and judged.verdict is not Verdict.BOT:
            self._forwarder.submit(claims.original_url)
