"""Every log option on, every route exercised, and the captured lines grepped: no unsubscribe or
pixel token, no OAuth code, no address (plain or %-encoded) and no full client IP, whichever
formatter writes the line."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from gateway.observability import logs
from gateway.observability.logs import JsonFormatter
from gateway.web.access_log import safe_path
from tests.conftest import Harness, running_harness
from tests.support.admin_api import key, objects_of_other
from tests.support.pixels import html_message, sent_pixels
from tests.support.receiver import Receiver
from tests.support.review import add_reviewer, csrf_of, signed_in

SECRET_ADDRESS = "zelda.secret+promo@example.org"
OAUTH_CODE = "4-0AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
LINK = re.compile(rb"List-Unsubscribe: <https://links\.gw\.test/u/([a-z2-7]+)>")


class Captured(logging.Handler):
    """Each record twice: as the gateway's JSON, and through a plain formatter (what an
    operator's own logging configuration might use)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.json: list[str] = []
        self.plain_access: list[str] = []
        self._plain = logging.Formatter("%(name)s %(message)s")
        self._json = JsonFormatter()
        self.own_ports: tuple[int, ...] = ()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")) and any(
                f":{p}" in record.getMessage() for p in self.own_ports):
            return  # this test's own client calling the gateway, not the gateway
        self.json.append(self._json.format(record))
        if record.name == "uvicorn.access":
            self.plain_access.append(self._plain.format(record))


@pytest.fixture
def captured() -> Iterator[Captured]:
    """The logging `gateway serve` sets up at `log_level = "debug"`, plus our capture."""
    handler, root = Captured(), logging.getLogger()
    before = (root.level, list(root.handlers),
              {n: logging.getLogger(n).level for n in logs._CHATTY})
    logs.setup("debug")
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.setLevel(before[0])
        root.handlers[:] = before[1]
        for name, level in before[2].items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def tracker():
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


def test_a_request_line_keeps_its_shape_and_loses_its_secrets():
    assert safe_path("/u/abcdefghijklmnopqrstuvwxyz234567") == "/u/<token>"
    assert safe_path("/api/v1/suppression-lists/acme/check?address=a%40b.example&x=1") == \
        "/api/v1/suppression-lists/acme/check?address=…&x=…"
    assert safe_path(f"/x/{quote(SECRET_ADDRESS)}/y") == "/x/<address>/y"
    assert safe_path("/api/v1/mailboxes/12") == "/api/v1/mailboxes/12"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_every_log_option_on_every_route_no_secret_in_any_line(
        tmp_path, pki, database, monkeypatch: pytest.MonkeyPatch, captured: Captured,
        tracker: Receiver):
    monkeypatch.setenv("GATEWAY__HTTP__ACCESS_LOG", "true")
    monkeypatch.setenv("GATEWAY__LOG_LEVEL", '"debug"')
    monkeypatch.setenv("GATEWAY__FETCH__ALLOW_HTTP", "true")
    monkeypatch.setenv("GATEWAY__FETCH__ALLOW_HOSTS", f'["127.0.0.1:{tracker.port}"]')
    async with running_harness(tmp_path, pki, database, extra="[oauth.google]\n") as h:
        captured.own_ports = (h.gateway.ports.public, h.gateway.ports.admin)
        secrets = await _exercise(h, tracker)
    assert any(line for line in captured.plain_access), "the access log was not on"
    for line in captured.json + captured.plain_access:
        for secret in secrets:
            assert secret not in line, (secret, line)
    for line in captured.plain_access:
        assert "127.0.0.1" not in line, line  # the client is its network, in any formatter
    for line in captured.json:
        assert "Traceback" not in line and json.loads(line)["level"] != "error", line


async def _exercise(h: Harness, tracker: Receiver) -> list[str]:
    """Every route once, with secrets where they could leak; the secrets to grep for."""
    before = len(h.sink.received)
    url = f"http://127.0.0.1:{tracker.port}/track/open?id=42"
    ((copy, pixel),) = await sent_pixels(h, html_message(url, to=SECRET_ADDRESS),
                                         [SECRET_ADDRESS])
    (token,) = LINK.findall(h.sink.received[before].content)
    unsubscribe = token.decode()
    secrets = [unsubscribe, pixel, OAUTH_CODE, SECRET_ADDRESS, quote(SECRET_ADDRESS),
               quote(SECRET_ADDRESS, safe=""), "zelda.secret", "x@y.example", "x%40y.example"]
    public = httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.public}")
    async with public:
        await public.get(f"/p/{pixel}")
        await public.get(f"/u/{unsubscribe}")
        await public.post(f"/u/{unsubscribe}", data={"List-Unsubscribe": "One-Click"})
        await public.get(f"/u/{unsubscribe}x")  # a forged one
        await public.get("/oauth/google/start", params={"mailbox": SECRET_ADDRESS})
        await public.get("/oauth/google/callback", params={"code": OAUTH_CODE,
                                                           "state": unsubscribe})
        await public.get("/healthz")
        await public.get(f"/nowhere/{quote(SECRET_ADDRESS)}")
    # the admin API: every path and method of its own OpenAPI document
    others = await objects_of_other(h)
    admin = httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.admin}",
                              headers={"Authorization": f"Bearer {await key(h, 'admin')}"})
    async with admin:
        spec = (await admin.get("/api/v1/openapi.json")).json()
        for path, operations in spec["paths"].items():
            target = path.format(**{**others, "list_name": "acme", "tenant_name": "acme"})
            for method in operations:
                await admin.request(method.upper(), target,
                                    params={"address": "x@y.example", "contains": "x@y.example"},
                                    json={"address": "x@y.example", "target": "x@y.example",
                                          "reason": "manual"})
        await admin.get("/metrics")
    secret = await add_reviewer(h, "alice")
    reviewer = await signed_in(h, "alice", secret)
    async with reviewer:
        page = await reviewer.get("/review/suppressions?list=acme")
        await reviewer.post("/review/suppressions", data={
            "csrf": csrf_of(page.text), "list": "acme", "action": "search",
            "address": SECRET_ADDRESS})
        await reviewer.get(f"/review/suppressions?list=acme&address={quote(SECRET_ADDRESS)}")
        await reviewer.get("/review/")
        await reviewer.get("/review/audit")
    return secrets
