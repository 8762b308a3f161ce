"""A real local OAuth 2.0 provider over HTTP: token endpoint (refresh, authorization code with
PKCE), authorization page, revocation. It stands in for Google's and Microsoft's servers,
which cannot run here, and can be told to misbehave (invalid_grant, 500s, slow answers).

It also issues the access tokens the XOAUTH2 sink accepts, so the two together check that
the gateway logs in upstream with a token the provider really gave it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import secrets
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "gateway-client.apps.test"
CLIENT_SECRET = "client-secret-that-must-never-leak-0001"


def _jwt(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{'c2ln'}"


@dataclass
class Grant:
    user: str
    scope: str
    client_id: str


@dataclass
class Pending:
    user: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class OAuthServer:
    expires_in: int = 3600
    rotate: bool = False  # issue a new refresh token on each refresh
    mode: str = "ok"  # ok | invalid_grant | error500 | slow
    slow_seconds: float = 15.0
    granted_scope: str | None = None  # what grants say they hold (None: what was asked)
    consent_user: str | None = None  # who signs in on the consent page (None: login_hint)
    refreshes: int = 0
    exchanges: int = 0
    revoked: list[str] = field(default_factory=list)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # -> user, exp
    codes: dict[str, Pending] = field(default_factory=dict)
    userinfo_calls: int = 0
    port: int = 0

    # --- what tests set up -----------------------------------------------------------------
    def issue(self, user: str, scope: str = "https://mail.google.com/",
              expires_in: int | None = None) -> tuple[str, str]:
        """A refresh token and an access token for `user`, as if it had consented."""
        refresh = "1//rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = Grant(user, scope, CLIENT_ID)
        access = self._access(user, self.expires_in if expires_in is None else expires_in)
        return refresh, access

    def _access(self, user: str, expires_in: int) -> str:
        token = "ya29.at-" + secrets.token_urlsafe(24)
        self.access_tokens[token] = (user, time.time() + expires_in)
        return token

    def valid(self, user: str, token: str) -> bool:
        entry = self.access_tokens.get(token)
        return entry is not None and entry[0] == user and entry[1] > time.time()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- endpoints -------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = await request.form()
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if self.mode == "error500":
            return JSONResponse({"error": "internal"}, status_code=500)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if form.get("grant_type") == "refresh_token":
            return self._refresh(str(form.get("refresh_token", "")))
        if form.get("grant_type") == "authorization_code":
            return self._exchange(str(form.get("code", "")), str(form.get("code_verifier", "")),
                                  str(form.get("redirect_uri", "")))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    def _refresh(self, refresh_token: str) -> Response:
        self.refreshes += 1
        grant = self.refresh_tokens.get(refresh_token)
        if self.mode == "invalid_grant" or grant is None:
            return JSONResponse({"error": "invalid_grant",
                                 "error_description": "Token has been expired or revoked."},
                                status_code=400)
        body = {"access_token": self._access(grant.user, self.expires_in),
                "expires_in": self.expires_in, "token_type": "Bearer",
                "scope": self.granted_scope if self.granted_scope is not None else grant.scope}
        if self.rotate:
            del self.refresh_tokens[refresh_token]
            rotated = "1//rt-" + secrets.token_urlsafe(24)
            self.refresh_tokens[rotated] = grant
            body["refresh_token"] = rotated
        return JSONResponse(body)

    def _exchange(self, code: str, verifier: str, redirect_uri: str) -> Response:
        self.exchanges += 1
        pending = self.codes.pop(code, None)  # a code works once
        if pending is None or pending.redirect_uri != redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != pending.challenge:
            return JSONResponse({"error": "invalid_grant",
                                 "error_description": "code_verifier mismatch"},
                                status_code=400)
        refresh, access = self.issue(pending.user, pending.scope)
        scope = self.granted_scope if self.granted_scope is not None else pending.scope
        return JSONResponse({
            "access_token": access, "refresh_token": refresh, "expires_in": self.expires_in,
            "token_type": "Bearer", "scope": scope,
            "id_token": _jwt({"iss": self.base, "aud": CLIENT_ID, "email": pending.user,
                              "email_verified": True})})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" \
                or not q.get("code_challenge") or q.get("response_type") != "code":
            return HTMLResponse("<h1>invalid request</h1>", status_code=400)
        user = self.consent_user or q.get("login_hint", "")
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in q.items())
        return HTMLResponse(
            f"<!doctype html><title>Sign in - Test Provider</title>"
            f"<h1>Allow Outreach Gateway to send mail as {html.escape(user)}?</h1>"
            f'<form method="post" action="/authorize">{fields}'
            f'<input type="hidden" name="user" value="{html.escape(user)}">'
            f'<button type="submit">Allow</button></form>')

    async def consent(self, request: Request) -> Response:
        form = await request.form()
        code = "4/code-" + secrets.token_urlsafe(16)
        self.codes[code] = Pending(str(form["user"]), str(form["client_id"]),
                                   str(form["redirect_uri"]), str(form["code_challenge"]),
                                   str(form.get("scope", "")))
        query = urlencode({"code": code, "state": str(form["state"])})
        return RedirectResponse(f"{form['redirect_uri']}?{query}", status_code=302)

    async def userinfo(self, request: Request) -> Response:
        """Who a bearer token belongs to (Google's userinfo, Microsoft's /me): what an IMAP
        server's OAuth2 passdb asks before it lets the token log in."""
        self.userinfo_calls += 1
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        entry = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
        if entry is None or entry[1] <= time.time():
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"email": entry[0], "email_verified": True})

    async def revoke(self, request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token", ""))
        self.revoked.append(token)
        self.refresh_tokens.pop(token, None)
        return Response(status_code=200)

    # --- running ---------------------------------------------------------------------------
    async def start(self) -> OAuthServer:
        app = Starlette(routes=[
            Route("/token", self.token, methods=["POST"]),
            Route("/authorize", self.authorize, methods=["GET"]),
            Route("/authorize", self.consent, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/userinfo", self.userinfo, methods=["GET"]),
        ])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                     access_log=False, lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task

    def toml(self, provider: str = "google") -> str:
        return (f'[oauth.{provider}]\nauthorize_url = "{self.base}/authorize"\n'
                f'token_url = "{self.base}/token"\nrevoke_url = "{self.base}/revoke"\n'
                f"timeout = 3\n")
