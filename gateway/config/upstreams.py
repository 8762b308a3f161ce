"""`[upstreams.<name>]` and `[oauth.<provider>]`: where copies go, and the OAuth providers
of the mailboxes that send through Gmail or Microsoft 365."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.config.rules import is_loopback, require, secure_url
from gateway.config.schema import REMOTE_PORT, UP_TO_A_MINUTE, required, secret, setting

# Provider defaults: SMTP host and OAuth endpoints. Operator configuration may override each
# (that is how the tests point them at local servers); a tenant never sets one of these URLs.
OAUTH_UPSTREAM_KINDS = {"gmail": "google", "microsoft": "microsoft"}
_PROVIDER_SMTP_HOSTS = {"gmail": "smtp.gmail.com", "microsoft": "smtp.office365.com"}
PROVIDER_DEFAULTS: dict[str, dict[str, Any]] = {
    "google": {
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "revoke_url": "https://oauth2.googleapis.com/revoke",
        # The full-mail scope is "restricted": app verification plus a yearly assessment.
        "scopes": ("https://mail.google.com/",),
    },
    "microsoft": {
        "authorize_url": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "token_url": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "revoke_url": "",  # Microsoft has no RFC 7009 endpoint; consent is removed in Entra
        "scopes": ("https://outlook.office.com/SMTP.Send",
                   "https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"),
    },
}


@dataclass(frozen=True, slots=True)
class OAuthProviderConfig:
    """`[oauth.google]`, `[oauth.microsoft]`: a provider's endpoints and the scopes a mailbox
    grant must hold. The providers' real endpoints are the defaults. Client ids and secrets
    are not configuration: they are sealed in the vault (`gateway oauth-client add`)."""

    authorize_url: str = setting("", "Where a mailbox owner signs in and consents.")
    token_url: str = setting("", "Where codes and refresh tokens become access tokens.")
    revoke_url: str = setting("", "Where a grant is revoked on disconnect (RFC 7009); "
                              "Microsoft has none.")
    scopes: tuple[str, ...] = setting((), "The scopes a grant must hold.")
    identity_scopes: tuple[str, ...] = setting(("openid", "email"),
                                               "Asked as well, to learn who consented.")
    timeout: float = setting(10.0, "Seconds for each request to the provider.",
                             UP_TO_A_MINUTE)
    ca_file: str = setting("", "An extra trust anchor for the endpoints (tests, private "
                           "proxies).")


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """`[upstreams.<name>]`: where a mailbox's copies go. `kind = "smtp"`: a smarthost;
    `"gmail"` or `"microsoft"`: Gmail or Microsoft 365 over SMTP with XOAUTH2, per mailbox
    (`host` and `port` default to smtp.gmail.com / smtp.office365.com:587, and replies and
    bounces are read over IMAP); `"maildir"`: a local capture (`path`).

    A smarthost's certificate is always verified: an untrusted, expired or wrong-name one
    gets no login and no message, and the client `451 4.7.5`. Its password is sealed in the
    vault (`gateway upstream password NAME --password-stdin`); a `password` still in the file
    is sealed at start-up with a warning to remove it."""

    kind: Literal["smtp", "gmail", "microsoft", "maildir"] = required(
        "`smtp`, `gmail`, `microsoft` or `maildir`.")
    host: str = setting("", "The smarthost (gmail, microsoft: the provider's).")
    port: int = setting(587, "Its port.")
    tls: Literal["starttls", "implicit", "none"] = setting(
        "starttls", "`starttls`, `implicit`, or `none` (a loopback host only).")
    username: str = setting("", "The smarthost login (its password is sealed in the vault).")
    password: str = secret("Deprecated here: sealed into the vault at start-up, then remove "
                           "it. Never in a repr, log or error.")
    ca_file: str = setting("", "An extra trust anchor (a private smarthost CA); the system's "
                           "CAs otherwise.")
    tls_verify: bool = setting(True, "false: the certificate is not checked (encryption "
                               "without authentication); only for a loopback host, logged at "
                               "start.")
    timeout: float = setting(30.0, "Seconds for each upstream command.")
    pool_size: int = setting(20, "smtp: connections per login, open at once and kept idle "
                             "between copies; a copy beyond waits its turn. 0: no limit, "
                             "none kept.")
    path: str = setting("", "maildir: the directory.")
    return_path: Literal["sender", "verp"] = setting(
        "sender", "smtp only. `verp`: each copy leaves with the return path "
        "`bounce+<handle>@<unsubscribe.mailto_domain>`, so its bounces come back to the "
        "gateway's inbound listener.")
    imap_host: str = setting("", "gmail, microsoft: where the mailbox's replies and bounces "
                             "are read (IMAP, XOAUTH2); empty: the provider's "
                             "(imap.gmail.com, outlook.office365.com).")
    imap_port: int = setting(993, "Its port.", REMOTE_PORT)
    imap_tls: Literal["implicit", "none"] = setting("implicit", "`none`: loopback tests "
                                                    "only.")


def with_provider_defaults(upstreams: Mapping[str, UpstreamConfig],
                           oauth: Mapping[str, OAuthProviderConfig]
                           ) -> tuple[Mapping[str, UpstreamConfig],
                                      Mapping[str, OAuthProviderConfig]]:
    """Fill Gmail / Microsoft 365 hosts and OAuth endpoints the operator did not override."""
    filled_upstreams = {}
    for name, up in upstreams.items():
        if up.kind in _PROVIDER_SMTP_HOSTS and not up.host:
            up = dataclasses.replace(up, host=_PROVIDER_SMTP_HOSTS[up.kind])
        filled_upstreams[name] = up
    providers = dict(oauth)
    for kind in {up.kind for up in filled_upstreams.values()} & set(OAUTH_UPSTREAM_KINDS):
        providers.setdefault(OAUTH_UPSTREAM_KINDS[kind], OAuthProviderConfig())
    filled = {}
    for name, provider in providers.items():
        defaults = PROVIDER_DEFAULTS.get(name, {})
        changes = {k: v for k, v in defaults.items() if not getattr(provider, k)}
        filled[name] = dataclasses.replace(provider, **changes)
    return types.MappingProxyType(filled_upstreams), types.MappingProxyType(filled)


def check_upstreams(upstreams: Mapping[str, UpstreamConfig], mailto_listen: str) -> None:
    require(bool(upstreams), "upstreams", {}, "At least one upstream is required.")
    for name, up in upstreams.items():
        _check_upstream(name, up)
    verp = [n for n, up in upstreams.items() if up.return_path == "verp"]
    if verp:
        require(bool(mailto_listen), f"upstreams.{verp[0]}.return_path", "verp",
                "VERP bounces come back to the inbound listener; set "
                "unsubscribe.mailto_listen.")


def _check_upstream(name: str, up: UpstreamConfig) -> None:
    key = f"upstreams.{name}"
    if up.return_path == "verp":
        require(up.kind == "smtp", f"{key}.return_path", "verp",
                "Only an smtp upstream lets the gateway choose the return path; Gmail and "
                "Microsoft 365 bounce to the mailbox, which the gateway reads over IMAP.")
    if up.imap_tls == "none":
        require(is_loopback(up.imap_host), f"{key}.imap_tls", "none",
                "Plain-text IMAP is allowed only to a loopback host.")
    if up.kind == "maildir":
        require(bool(up.path), f"{key}.path", up.path, "A maildir upstream needs a path.")
        return
    if up.kind in OAUTH_UPSTREAM_KINDS:
        require(not up.username and not up.password, f"{key}.password", up.password,
                "Gmail and Microsoft upstreams log in per mailbox with XOAUTH2; "
                "no username or password here.")
    require(bool(up.host), f"{key}.host", up.host, "An smtp upstream needs a host.")
    require(0 < up.port <= 65535, f"{key}.port", up.port, "Must be a port between 1 and 65535.")
    require(up.pool_size >= 0, f"{key}.pool_size", up.pool_size, "Must not be negative.")
    if up.tls == "none":
        require(is_loopback(up.host), f"{key}.tls", "none",
                "Plain-text upstream connections are allowed only to a loopback host.")
    if not up.tls_verify:
        require(is_loopback(up.host) and (not up.imap_host or is_loopback(up.imap_host)),
                f"{key}.tls_verify", False, "An unchecked certificate is allowed only for "
                "a loopback host; give a private CA in ca_file instead.")
    require(bool(up.username) or not up.password, f"{key}.password", up.password,
            "A password needs its username; better, keep only the username here and seal "
            f"the password: gateway upstream password {name} --password-stdin.")


def check_oauth(oauth: Mapping[str, OAuthProviderConfig]) -> None:
    for name, provider in oauth.items():
        key = f"oauth.{name}"
        require(name in PROVIDER_DEFAULTS, key, name,
                f"Must be one of {', '.join(repr(p) for p in PROVIDER_DEFAULTS)}.")
        for field_name in ("authorize_url", "token_url", "revoke_url"):
            url = getattr(provider, field_name)
            if url:
                require(secure_url(url), f"{key}.{field_name}", url,
                        "Must be an https:// URL (http:// only to a loopback host).")
        require(bool(provider.scopes), f"{key}.scopes", [], "At least one scope is required.")
