"""Reviewers for the review-page tests: accounts, codes, signed-in HTTP clients."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, urlsplit

import httpx

from gateway.review import totp
from gateway.store.schema import reviewers

PASSWORD = "correct horse battery staple"


async def add_reviewer(h, username: str, role: str = "compliance",
                       tenant: str | None = None) -> bytes:
    """The account's TOTP secret (from the otpauth:// URI it is shown as)."""
    tenant_id = (await h.store().tenant(tenant)).id if tenant else None
    uri = await h.gateway.reviewers.add(username, PASSWORD, role, tenant_id, "test")
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


async def fresh_code(h, username: str, secret: bytes) -> str:
    """A code the account has not used yet: a code works once, so tests that sign in more
    than once within 30 seconds forget the last one used."""
    async with h.gateway.engine.begin() as conn:
        await conn.execute(reviewers.update().where(reviewers.c.username == username)
                           .values(totp_last_step=0))
    return totp.code_at(secret, totp.current_step())


def admin_base(h) -> str:
    return f"http://127.0.0.1:{h.gateway.ports.admin}"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Client:
    """httpx with a cookie jar that, like a browser on a loopback origin, keeps `Secure`
    cookies over http:// (httpx's own jar would drop them)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, follow_redirects=False)
        self.cookies: dict[str, str] = {}

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def request(self, method: str, url: str, **kw: object) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.http.request(method, url, headers=headers, **kw)  # type: ignore[arg-type]
        for line in response.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if "max-age=0" in line.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    async def get(self, url: str, **kw: object) -> httpx.Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: object) -> httpx.Response:
        return await self.request("POST", url, **kw)


async def signed_in(h, username: str, secret: bytes) -> Client:
    """A client with a live session."""
    client = Client(admin_base(h))
    page = await client.get("/review/login")
    response = await client.post("/review/login", data={
        "csrf": csrf_of(page.text), "username": username, "password": PASSWORD,
        "code": await fresh_code(h, username, secret)})
    assert response.status_code == 303, response.text
    return client


async def sign_in(page, h, username: str, secret: bytes) -> None:
    await page.goto(f"{admin_base(h)}/review/")
    assert page.url.endswith("/review/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Code from your authenticator app").fill(
        await fresh_code(h, username, secret))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{admin_base(h)}/review/")
