"""Talking to an OAuth provider's endpoints: refresh (RFC 6749 s 6), code exchange with PKCE
(RFC 7636), revocation (RFC 7009).

Endpoints come from operator configuration only. Nothing here logs or raises a token, a
client secret or a response body: errors carry the OAuth error code at most.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.config import OAuthProviderConfig

log = logging.getLogger("gateway.oauth")


class ProviderError(Exception):
    """The provider did not give a token. `temporary` says whether trying later may help."""

    def __init__(self, message: str, *, temporary: bool, revoked: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.temporary = temporary
        self.revoked = revoked  # invalid_grant: consent revoked or refresh token dead


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A registered OAuth client: id and secret (opened from the vault for each use)."""

    id: int
    provider: str
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str = field(repr=False)
    expires_at: datetime
    refresh_token: str | None = field(default=None, repr=False)  # set when rotated/issued
    scopes: tuple[str, ...] = ()
    email: str | None = None  # from the id_token, when the grant included openid email


def pkce_challenge(verifier: str) -> str:
    """S256 code challenge, RFC 7636 s 4.2."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge), RFC 7636 s 4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


def _id_token_email(id_token: str | None) -> str | None:
    """The `email` claim of an ID token received directly from the token endpoint over TLS
    (OpenID Connect Core s 3.1.3.7: TLS validation of the issuer stands in for the
    signature check in this case)."""
    if not id_token or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    email = claims.get("email")
    if isinstance(email, str) and claims.get("email_verified", True) in (True, "true"):
        return email
    # Microsoft identity platform: work accounts carry the UPN here, often without `email`.
    upn = claims.get("preferred_username")
    if email is None and isinstance(upn, str) and "@" in upn:
        return upn
    return None


class ProviderEndpoints:
    """One provider's token and revocation endpoints over one pooled HTTP client."""

    def __init__(self, name: str, config: OAuthProviderConfig) -> None:
        self.name = name
        self.config = config
        verify: ssl.SSLContext | bool = True
        if config.ca_file:
            verify = ssl.create_default_context(cafile=config.ca_file)
        self._http = httpx.AsyncClient(timeout=config.timeout, verify=verify,
                                       follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def refresh(self, client: OAuthClient, refresh_token: str) -> TokenGrant:
        return await self._token_request(client, {
            "grant_type": "refresh_token", "refresh_token": refresh_token})

    async def exchange_code(self, client: OAuthClient, code: str, verifier: str,
                            redirect_uri: str) -> TokenGrant:
        return await self._token_request(client, {
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect_uri})

    async def _token_request(self, client: OAuthClient, form: dict[str, str]) -> TokenGrant:
        form = {**form, "client_id": client.client_id, "client_secret": client.client_secret}
        try:
            response = await self._http.post(self.config.token_url, data=form,
                                             headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("token endpoint unreachable", extra={
                "provider": self.name, "error": type(exc).__name__})
            raise ProviderError("token endpoint unreachable", temporary=True) from None
        body = _json(response)
        if response.status_code >= 500:
            log.warning("token endpoint failed", extra={
                "provider": self.name, "status": response.status_code})
            raise ProviderError(f"token endpoint answered {response.status_code}",
                                temporary=True)
        if response.status_code != 200:
            error = str(body.get("error", "unknown"))[:60]
            log.warning("token endpoint refused", extra={"provider": self.name,
                                                         "status": response.status_code,
                                                         "oauth_error": error})
            raise ProviderError(f"token endpoint refused: {error}",
                                temporary=error == "temporarily_unavailable",
                                revoked=error == "invalid_grant")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProviderError("token endpoint answered without an access token",
                                temporary=True)
        try:
            expires_in = int(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600
        refresh = body.get("refresh_token")
        scope = body.get("scope")
        return TokenGrant(
            access_token=access,
            expires_at=datetime.now(UTC) + timedelta(seconds=max(expires_in, 0)),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            scopes=tuple(scope.split()) if isinstance(scope, str) else (),
            email=_id_token_email(body.get("id_token")),
        )

    async def revoke(self, client: OAuthClient, token: str) -> bool:
        """RFC 7009; True when the provider confirmed. Best effort: a failure is logged."""
        if not self.config.revoke_url:
            return False
        try:
            response = await self._http.post(self.config.revoke_url, data={
                "token": token, "client_id": client.client_id,
                "client_secret": client.client_secret})
        except httpx.HTTPError as exc:
            log.warning("revocation endpoint unreachable", extra={
                "provider": self.name, "error": type(exc).__name__})
            return False
        if response.status_code != 200:
            log.warning("revocation refused", extra={"provider": self.name,
                                                     "status": response.status_code})
        return response.status_code == 200


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
