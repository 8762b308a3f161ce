"""Operator configuration: one TOML file plus GATEWAY__SECTION__KEY overrides -> frozen values.

Every value is checked once, at start-up (and on SIGHUP); a bad one raises `ConfigError`
naming the key, the value and the rule, in the manner of Starlette's
"Config 'X' has value 'Y'. Not a valid int."
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.errors import ConfigError

ENV_PREFIX = "GATEWAY__"
CONFIG_PATH_ENV = "GATEWAY_CONFIG"


@dataclass(frozen=True, slots=True)
class IpCredential:
    """A login that clients from `networks` get without AUTH (for tools that cannot AUTH)."""

    login: str
    networks: tuple[str, ...]
    force: bool = False  # allow a range wider than /24 (IPv4) or /64 (IPv6)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    concurrency: int = 4  # password checks running at once (each costs tens of ms)
    cache_seconds: float = 60.0  # remember a successful check this long
    max_failures: int = 5  # per (client network, login), within failure_window: then back off
    failure_window: float = 300.0
    # per login from all networks within budget_window; once spent, only networks that
    # logged in as it before (within known_network_days) may still try, and ops are alerted
    login_failure_budget: int = 50
    budget_window: float = 3600.0
    known_network_days: int = 30
    min_password_length: int = 12  # `gateway login add` refuses shorter passwords


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    hostname: str = "localhost"
    listen: str = "127.0.0.1"
    submission_port: int = 587  # STARTTLS (RFC 6409); 0 = any free port (tests)
    implicit_tls: bool = True  # a second listener with TLS from the first byte (RFC 8314)
    implicit_tls_port: int = 465
    tls_cert: str = ""
    tls_key: str = ""
    tls_self_signed: bool = False  # generate one under data_dir; development only
    max_message_size: int = 25 * 1024 * 1024
    max_recipients: int = 100
    max_commands: int = 2000  # per session, all verbs together (NOOP/RSET floods too)
    # open SMTP connections from one client address (the PROXY client behind a balancer),
    # per process: a scanner or a looping tool cannot take every slot
    max_connections_per_client: int = 100
    session_timeout: float = 300.0
    max_header_count: int = 1000
    max_header_bytes: int = 256 * 1024
    max_mime_depth: int = 20
    load_balancers: tuple[str, ...] = ()
    # PROXY protocol (v1 or v2) on the submission port: every connection must start with a
    # PROXY header, from one of `load_balancers`; the client it names is the client (logs,
    # AUTH back-off, IP credentials). On the implicit-TLS port
    # the header comes before TLS (smtp/proxy_tls.py).
    proxy_protocol: bool = False
    proxy_timeout: float = 5.0
    auth: AuthConfig = field(default_factory=AuthConfig)
    ip_credentials: tuple[IpCredential, ...] = ()


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
    """One OAuth provider's endpoints and the scopes a mailbox grant must hold."""

    authorize_url: str = ""
    token_url: str = ""
    revoke_url: str = ""
    scopes: tuple[str, ...] = ()
    identity_scopes: tuple[str, ...] = ("openid", "email")  # to learn who consented
    timeout: float = 10.0
    ca_file: str = ""  # extra trust anchor for the endpoints (tests, private proxies)


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """Where a mailbox's copies go: a smarthost over SMTP, Gmail or Microsoft 365 over SMTP
    with XOAUTH2 (per-mailbox tokens from the vault), or a local maildir capture."""

    kind: Literal["smtp", "gmail", "microsoft", "maildir"]
    host: str = ""
    port: int = 587
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    username: str = ""
    # Deprecated here: sealed into the vault at start-up (`gateway upstream password`).
    password: str = field(default="", repr=False)  # never in a repr, log or error
    ca_file: str = ""  # extra trust anchor (a private smarthost CA); system CAs otherwise
    # false: the upstream's certificate is not checked (encryption without authentication).
    # Only for a loopback host (a local relay's self-signed certificate), logged at start.
    tls_verify: bool = True
    timeout: float = 30.0
    pool_size: int = 20  # idle connections kept per upstream
    path: str = ""  # maildir only
    # smtp only: "verp" sends each copy with the return path bounce+<handle>@ on
    # [unsubscribe] mailto_domain, so its bounces come back to the gateway's inbound listener.
    return_path: Literal["sender", "verp"] = "sender"
    # gmail and microsoft: where the mailbox's replies and bounces are read (IMAP, XOAUTH2).
    # Empty host: the provider's (imap.gmail.com, outlook.office365.com).
    imap_host: str = ""
    imap_port: int = 993
    imap_tls: Literal["implicit", "none"] = "implicit"  # "none": loopback tests only


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///var/gateway.db"
    schema: str = ""  # PostgreSQL only: the schema (search_path) the tables live in
    pool_size: int = 10
    # SQLite: new mail is refused (452 4.3.1) while the database's directory has less free
    # space than this (Postfix's queue_minfree); 0 turns the check off
    min_free_mb: int = 100


@dataclass(frozen=True, slots=True)
class VaultConfig:
    master_key_file: str = ""  # the primary key: new secrets are sealed under it
    master_key_env: str = ""  # name of an environment variable holding the key (base64)
    # Older keys that still open what they sealed, during a rotation (`gateway vault rewrap`).
    previous_key_files: tuple[str, ...] = ()
    dev_generate: bool = False  # generate var/dev-master.key; development only
    # Where sealed mailbox secrets live: the main database, or a separate Redis database
    # (which must run with appendonly yes and appendfsync always; checked at start-up).
    backend: Literal["database", "redis"] = "database"
    redis_url: str = ""
    # Where tenant keys live, apart from the data (gateway/vault/key_store.py): a directory
    # (`dir:/path` or a path; default `<data_dir>-tenant-keys`, beside the data, not in it),
    # `redis://...` or a separate `postgresql://...` database.
    tenant_key_store: str = ""
    # A directory store is one node's: `serve` refuses it with a PostgreSQL database (shared
    # by several nodes) unless this says there is only one node.
    tenant_key_store_single_node: bool = False


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The HTTP side: a public listener (OAuth callback, later unsubscribe and pixel) and a
    private admin listener (API, OpenAPI document)."""

    public_listen: str = "127.0.0.1"
    public_port: int = 8080  # 0 = any free port (tests)
    # How browsers and providers reach the public listener, e.g. https://mail-links.example.
    # Empty: http://<public_listen>:<port>, allowed only on a loopback address.
    public_base_url: str = ""
    admin_listen: str = "127.0.0.1"
    admin_port: int = 8081
    admin_public: bool = False  # allow the admin listener on a public address
    # Proxies whose X-Forwarded-For is believed (networks); the client is the rightmost
    # address not in this list. Empty: the socket's peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # One JSON line per HTTP request in the gateway's logs: tokens, addresses and query
    # values taken out of the request line, the client cut to its network.
    access_log: bool = False
    # On SIGTERM /readyz answers 503 this long before the listeners close, so a load
    # balancer or Kubernetes stops sending new connections first.
    drain_seconds: float = 5.0
    # Both listeners serve HTTPS with this certificate (PEM, chain first), re-read on
    # SIGHUP. Empty: plain HTTP, for a TLS-terminating proxy or ingress in front.
    tls_cert: str = ""
    tls_key: str = ""

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


@dataclass(frozen=True, slots=True)
class AuditConfig:
    batch_max_rows: int = 1000
    batch_max_delay: float = 0.0  # extra seconds to gather a batch; 0 = commit at once
    chain: str = ""  # this node's hash chain; empty: the host name. Unique per node.
    anchor_interval: float = 60.0  # seconds between HMAC anchors of the chain heads


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Where ops hear about what needs a person: every log event marked for ops (a mailbox
    disconnected, token refreshes failing, an upstream refusing our credentials...), and
    what the periodic checks find (a stuck delivery queue, a certificate near expiry)."""

    webhook_url: str = ""  # JSON POST per alert; empty: alerts are in the logs only
    repeat_minutes: float = 60.0  # the same alert is sent again at most this often
    check_interval: float = 300.0  # seconds between the periodic checks
    queue_stuck_minutes: float = 60.0  # a deferred copy older than this: the queue is stuck
    certificate_days: float = 14.0  # the SMTP certificate expires within this


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long each store of personal data is kept (docs/retention.md has the full table;
    held and refused copies are under [review], expired suppressions under [suppressions])."""

    audit_days: float = 730.0  # audit rows, pruned under a signed checkpoint
    queue_days: float = 30.0  # finished queue copies (sealed body, Message-ID, recipient)
    events_days: float = 90.0  # tenant events (opt-outs, deliveries, bounces...)
    webhook_outbox_days: float = 7.0  # delivered or failed webhook deliveries
    opens_days: float = 180.0  # pixel opens (digest, network, user-agent family)
    sent_index_days: float = 180.0  # sent Message-IDs that feedback is matched against
    feedback_marks_days: float = 30.0  # soft bounces and policy blocks counted (digests)
    optout_reviews_days: float = 90.0  # possible opt-outs (the reply, sealed), from arrival
    abuse_mail_days: float = 90.0  # postmaster@/abuse@ mail kept in the Maildir
    oauth_flows_days: float = 1.0  # finished or abandoned OAuth sign-ins
    interval: float = 3600.0  # seconds between purge rounds inside `gateway serve`


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The delivery queue: retries of deferred copies and the reports the gateway owes."""

    retry_first: float = 60.0  # seconds before the first retry
    retry_factor: float = 2.0  # each later wait is this much longer ...
    retry_max: float = 3600.0  # ... up to this
    lifetime: float = 5 * 24 * 3600.0  # then the copy expires and the sender gets a DSN
    poll_interval: float = 1.0
    batch: int = 100  # copies claimed per round
    lease: float = 600.0  # a claimed copy not finished by then is taken up again
    mailbox_concurrency: int = 5  # upstream transactions at once per mailbox
    data_deadline: float = 60.0  # the DATA reply comes by then; slower copies are queued
    quota_pause: float = 3600.0  # a mailbox over its provider quota waits this long
    dsn_headers_only: bool = True  # DSNs carry the original headers, never the body


@dataclass(frozen=True, slots=True)
class EventsConfig:
    """Tenant events and their webhook deliveries."""

    retry_first: float = 10.0
    retry_factor: float = 2.0
    retry_max: float = 3600.0
    lifetime: float = 3 * 24 * 3600.0  # then an undeliverable webhook row is marked failed
    batch: int = 100  # events per webhook request
    timeout: float = 10.0
    poll_interval: float = 1.0
    # Tenant URLs are hostile input: only https to public addresses, unless the operator
    # allows private targets (a webhook receiver inside the operator's own network, tests).
    allow_private_targets: bool = False


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Messages and recipients one sender may send per window; 0 = no limit."""

    messages_per_minute: int = 0
    messages_per_hour: int = 0
    messages_per_day: int = 0
    recipients_per_day: int = 0


@dataclass(frozen=True, slots=True)
class GmailLimits:
    """Google Workspace's published per-user limits (a key set alone keeps the others)."""

    messages_per_minute: int = 0
    messages_per_hour: int = 0
    messages_per_day: int = 2000
    recipients_per_day: int = 10000


@dataclass(frozen=True, slots=True)
class MicrosoftLimits:
    """Exchange Online's published per-mailbox limits."""

    messages_per_minute: int = 30
    messages_per_hour: int = 0
    messages_per_day: int = 0
    recipients_per_day: int = 10000


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Sending limits, counted across every node (protects the mailboxes' reputation).

    A mailbox's limits follow its upstream's kind. The defaults are the providers' published
    per-mailbox limits: Google Workspace sends at most 2,000 messages and 10,000 recipients
    a day per user (support.google.com/a/answer/166852); Exchange Online at most 30 messages
    a minute and 10,000 recipients a day per mailbox (learn.microsoft.com/office365/
    servicedescriptions/exchange-online-service-description/exchange-online-limits).
    """

    gmail: GmailLimits = field(default_factory=GmailLimits)
    microsoft: MicrosoftLimits = field(default_factory=MicrosoftLimits)
    smtp: RateLimits = field(default_factory=RateLimits)  # a smarthost's are the operator's
    maildir: RateLimits = field(default_factory=RateLimits)
    tenant: RateLimits = field(default_factory=RateLimits)  # all its mailboxes together
    tenant_sessions: int = 0  # concurrent SMTP sessions per tenant on one node; 0 = no cap
    redis_url: str = ""  # counters in this Redis; empty: in the database


@dataclass(frozen=True, slots=True)
class SuppressionConfig:
    """Suppression lists. An entry with an expiry (a soft bounce's 7 days) stops suppressing
    the moment it expires; it is kept this long after for review, then deleted."""

    keep_expired_days: float = 30.0


@dataclass(frozen=True, slots=True)
class UnsubscribeConfig:
    """The unsubscribe links every copy carries, and the mailto listener that honors them."""

    # https://<host> the public listener is reached at for unsubscribe links (a tenant's own
    # link domain replaces the host). Empty: the public listener's loopback http:// URL,
    # allowed only with environment = 'development'.
    base_url: str = ""
    mailto_domain: str = ""  # unsubscribe@<this>; empty: the host of base_url
    # The mailto listener (unauthenticated, no path to any upstream). Empty: not started.
    mailto_listen: str = ""
    mailto_port: int = 25
    # Behind a TCP balancer (port 25 -> mailto_port): every connection starts with a PROXY
    # header, believed only from smtp.load_balancers (the rate limit keys on the client).
    mailto_proxy_protocol: bool = False
    mailto_max_message_size: int = 64 * 1024
    mailto_max_connections: int = 100
    mailto_rate: int = 120  # messages per minute from one /24 (IPv4) or /48 (IPv6)
    invalid_rate: int = 30  # invalid-token POSTs per minute from one /24 or /48


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    """Automatic opt-out: bounces, complaints and replies that become suppression entries."""

    # Read connected Gmail and Microsoft 365 mailboxes over IMAP (replies and bounces land
    # there). Read-only unless a tenant sets `inbox_labelling = on`.
    read_inboxes: bool = True
    inbox_poll_seconds: float = 60.0
    inbox_folders: tuple[str, ...] = ("INBOX",)
    inbox_batch: int = 200  # messages fetched per round and mailbox
    # soft bounces (4.x.x): this many within soft_bounce_days suppress for soft_bounce_hold_days
    soft_bounces: int = 3
    soft_bounce_days: float = 14.0
    soft_bounce_hold_days: float = 7.0
    # A complaint suppresses for its tenant at once; globally once this many tenants have
    # a complaint from the same person (0: never automatically; a person can still add it).
    global_complaint_tenants: int = 2


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """Held and refused messages (sealed copies kept for compliance review)."""

    held_days: float = 14.0  # a held message nobody decided on expires: the sender is told
    refused_keep_days: float = 30.0  # copies of refused messages are deleted after this
    # the review pages (admin listener): reviewer sessions and sign-in lockout
    idle_minutes: float = 15.0  # a session without a request for this long ends
    session_hours: float = 12.0  # and every session ends after this
    lockout_failures: int = 5  # wrong sign-ins in a row that lock the account ...
    lockout_minutes: float = 15.0  # ... for this long (gateway user unlock lifts it)
    page_size: int = 50  # messages per page of the review queue


@dataclass(frozen=True, slots=True)
class PixelConfig:
    """Tracking pixels: taken over in outgoing HTML, opens counted with anonymized IPs."""

    allow_off: bool = False  # may a tenant set pixels = "off" (leave trackers untouched)?
    ipv4_prefix: int = 24  # 24 or 16; IPv6 is always cut to /48
    campaign_headers: tuple[str, ...] = ("X-Campaign-ID", "X-OCG-Campaign",
                                         "X-Mailgun-Campaign-Id")
    machine_open_seconds: float = 10.0  # an open this soon after sending is a machine's
    forward_concurrency: int = 20  # proxy mode: tracker fetches in flight per node
    forward_queue: int = 10000  # fetches waiting; beyond it they are dropped and counted
    flush_interval: float = 1.0  # open events are written in batches at least this often


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """The guarded fetcher for URLs tenants supply (pixel forwards, webhooks)."""

    allow_http: bool = False  # plain http:// (ports 80/443 still)
    # host or host:port reachable even when not public (the operator's own receivers)
    allow_hosts: tuple[str, ...] = ()
    timeout: float = 5.0
    max_response_bytes: int = 65536


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """The resolver `gateway domain verify|check` asks. Empty: the system's resolver."""

    nameservers: tuple[str, ...] = ()  # "192.0.2.53" or "127.0.0.1:5353"
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class TenantFloors:
    """Operator-wide defaults and limits for tenant settings; a tenant can only tighten them."""

    max_recipients: int = 50
    max_message_size: int = 10 * 1024 * 1024
    settings_refresh: float = 2.0  # seconds until every worker sees a tenant change


@dataclass(frozen=True, slots=True)
class CheckConfig:
    timeout: float = 2.0
    action: str = ""  # content checks: the default for tenants without a setting
    floor: str = "off"  # content checks: tenants cannot choose weaker (off < hold < reject)


@dataclass(frozen=True, slots=True)
class Config:
    environment: Literal["production", "development"] = "production"
    data_dir: str = "var"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # auto: readable lines in development or at a terminal, JSON lines otherwise
    log_format: Literal["auto", "json", "human"] = "auto"
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    vault: VaultConfig = field(default_factory=VaultConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    tenants: TenantFloors = field(default_factory=TenantFloors)
    queue: QueueConfig = field(default_factory=QueueConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    suppressions: SuppressionConfig = field(default_factory=SuppressionConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    unsubscribe: UnsubscribeConfig = field(default_factory=UnsubscribeConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    pixels: PixelConfig = field(default_factory=PixelConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    upstreams: Mapping[str, UpstreamConfig] = field(default_factory=dict)
    oauth: Mapping[str, OAuthProviderConfig] = field(default_factory=dict)
    policy: Mapping[str, CheckConfig] = field(default_factory=dict)

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    def check_config(self, name: str) -> CheckConfig:
        """`[policy.sensitive-data]`, or `_` for `-` (environment variable names)."""
        return self.policy.get(name) or self.policy.get(name.replace("-", "_"), CheckConfig())


# --- loading -------------------------------------------------------------------------------


def load(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read the TOML file (if any), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get(CONFIG_PATH_ENV) or None
    table: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                table = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"Config file '{path}' does not exist.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Config file '{path}' is not valid TOML: {exc}.") from None
    _apply_environment(table, environ)
    config: Config = _with_provider_defaults(_build(Config, table, ""))
    _validate(config)
    return config


def _with_provider_defaults(config: Config) -> Config:
    """Fill Gmail / Microsoft 365 hosts and OAuth endpoints the operator did not override."""
    upstreams = {}
    for name, up in config.upstreams.items():
        if up.kind in _PROVIDER_SMTP_HOSTS and not up.host:
            up = dataclasses.replace(up, host=_PROVIDER_SMTP_HOSTS[up.kind])
        upstreams[name] = up
    providers = dict(config.oauth)
    for kind in {up.kind for up in upstreams.values()} & set(OAUTH_UPSTREAM_KINDS):
        providers.setdefault(OAUTH_UPSTREAM_KINDS[kind], OAuthProviderConfig())
    filled = {}
    for name, provider in providers.items():
        defaults = PROVIDER_DEFAULTS.get(name, {})
        changes = {k: v for k, v in defaults.items() if not getattr(provider, k)}
        filled[name] = dataclasses.replace(provider, **changes)
    return dataclasses.replace(config, upstreams=types.MappingProxyType(upstreams),
                               oauth=types.MappingProxyType(filled))


def _apply_environment(table: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(f"Environment variable '{name}' does not name a config key.")
        node = table
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"Environment variable '{name}' overrides a non-table key.")
            node = child
        node[keys[-1]] = _env_value(raw)


def _env_value(raw: str) -> Any:
    """Environment values are TOML literals when they parse as one, else plain strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _build(cls: type[Any], table: Any, prefix: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"Config '{prefix}' has value {_shown(prefix, table)}. Not a table.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(f"Config '{prefix}{key}' is not a known setting.")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in table:
            values[f.name] = _coerce(hints[f.name], table[f.name], f"{prefix}{f.name}")
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, f"{key}.")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(
                f"Config '{key}' has value {_shown(key, value)}. Must be one of {choices}.")
        return value
    if origin in (Mapping, dict) or origin is typing.Mapping:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"Config '{key}' has value {_shown(key, value)}. Not a table.")
        return types.MappingProxyType({k: _coerce(item, v, f"{key}.{k}") for k, v in value.items()})
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"Config '{key}' has value {_shown(key, value)}. Not a list.")
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Config '{key}' has value {_shown(key, value)}. Not a valid bool.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"Config '{key}' has value {_shown(key, value)}. Not a valid int.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"Config '{key}' has value {_shown(key, value)}. Not a valid number.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"Config '{key}' has value {_shown(key, value)}. Not a valid string.")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in this module


# --- cross-field rules ---------------------------------------------------------------------


_SECRET_KEYS = ("password", "secret", "token")


def _shown(key: str, value: Any) -> str:
    """The value as an error message may show it: never a secret's value."""
    if key.rsplit(".", 1)[-1].endswith(_SECRET_KEYS):
        return "'***'"
    return repr(value)


# While _validate runs, every broken rule is collected here, so one start-up reports them all.
_PROBLEMS: ContextVar[list[str] | None] = ContextVar("config_problems", default=None)


def _require(ok: bool, key: str, value: Any, rule: str) -> None:
    if ok:
        return
    message = f"Config '{key}' has value {_shown(key, value)}. {rule}"
    problems = _PROBLEMS.get()
    if problems is None:
        raise ConfigError(message)
    problems.append(message)


def _validate(config: Config) -> None:
    """Every value checked, section by section, in the order an operator reads the file;
    start-up stops with every broken rule, one line each (key, value and rule)."""
    problems: list[str] = []
    token = _PROBLEMS.set(problems)
    try:
        _validate_sections(config)
    finally:
        _PROBLEMS.reset(token)
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))


def _validate_sections(config: Config) -> None:
    dev = config.is_development
    _check_smtp(config, dev)
    _check_master_key_and_upstreams(config, dev)
    _check_tenants_and_queue(config)
    _check_sides(config, dev)
    _check_review_alerts_limits(config)
    _check_retention_pixels_proxies(config)
    _check_vault_stores(config)
    _check_policy(config)


def _check_smtp(config: Config, dev: bool) -> None:
    smtp = config.smtp
    for key in ("submission_port", "implicit_tls_port"):
        port = getattr(smtp, key)
        _require(0 <= port <= 65535, f"smtp.{key}", port, "Must be a port between 0 and 65535.")
    _require(bool(smtp.hostname) and " " not in smtp.hostname, "smtp.hostname", smtp.hostname,
             "Must be a host name.")
    for key in ("max_message_size", "max_recipients", "max_commands",
                "max_connections_per_client", "max_header_count",
                "max_header_bytes", "max_mime_depth"):
        value = getattr(smtp, key)
        _require(value > 0, f"smtp.{key}", value, "Must be greater than 0.")
    _require(smtp.session_timeout > 0, "smtp.session_timeout", smtp.session_timeout,
             "Must be greater than 0.")
    _require(smtp.auth.concurrency > 0, "smtp.auth.concurrency", smtp.auth.concurrency,
             "Must be greater than 0.")
    _require(config.database.min_free_mb >= 0, "database.min_free_mb",
             config.database.min_free_mb, "Must be 0 or more.")
    for key in ("max_failures", "failure_window", "login_failure_budget", "budget_window",
                "known_network_days", "min_password_length"):
        value = getattr(smtp.auth, key)
        _require(value > 0, f"smtp.auth.{key}", value, "Must be greater than 0.")
    # TLS is mandatory: AUTH is only offered inside TLS, so without it nobody could log in,
    # and a listener without AUTH would be an open relay.
    if smtp.tls_self_signed:
        _require(dev, "smtp.tls_self_signed", True,
                 "A self-signed certificate is allowed only with environment = 'development'.")
    else:
        _require(bool(smtp.tls_cert), "smtp.tls_cert", smtp.tls_cert,
                 "A TLS certificate is required (AUTH is offered only over TLS).")
        _require(bool(smtp.tls_key), "smtp.tls_key", smtp.tls_key, "A TLS key is required.")
    balancers = []
    for i, lb in enumerate(smtp.load_balancers):
        try:
            balancers.append(ipaddress.ip_network(lb, strict=False))
        except ValueError:
            _require(False, f"smtp.load_balancers[{i}]", lb, "Not an IP address or network.")
    for i, cred in enumerate(smtp.ip_credentials):
        _check_ip_credential(cred, f"smtp.ip_credentials[{i}]", balancers)
    if smtp.proxy_protocol:
        _require(bool(balancers), "smtp.proxy_protocol", True,
                 "PROXY headers are believed only from smtp.load_balancers; list them.")
        _require(smtp.proxy_timeout >= 3, "smtp.proxy_timeout", smtp.proxy_timeout,
                 "Must be at least 3 seconds.")


def _check_master_key_and_upstreams(config: Config, dev: bool) -> None:
    if config.vault.dev_generate:
        _require(dev, "vault.dev_generate", True,
                 "The generated development master key is refused unless "
                 "environment = 'development'.")
    else:
        _require(bool(config.vault.master_key_file or config.vault.master_key_env),
                 "vault.master_key_file", "", "A master key source is required.")
    _require(config.database.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
             "database.url", config.database.url,
             "Must start with sqlite+aiosqlite:// or postgresql+asyncpg://.")
    _require(bool(config.upstreams), "upstreams", {}, "At least one upstream is required.")
    for name, up in config.upstreams.items():
        _check_upstream(name, up, dev)


def _check_tenants_and_queue(config: Config) -> None:
    smtp, floors = config.smtp, config.tenants
    _require(0 < floors.max_recipients <= smtp.max_recipients, "tenants.max_recipients",
             floors.max_recipients, f"Must be between 1 and smtp.max_recipients "
             f"({smtp.max_recipients}).")
    _require(0 < floors.max_message_size <= smtp.max_message_size, "tenants.max_message_size",
             floors.max_message_size, f"Must be between 1 and smtp.max_message_size "
             f"({smtp.max_message_size}).")
    queue = config.queue
    for key in ("retry_first", "retry_max", "lifetime", "poll_interval", "lease",
                "quota_pause"):
        value = getattr(queue, key)
        _require(value > 0, f"queue.{key}", value, "Must be greater than 0.")
    _require(queue.retry_factor >= 1, "queue.retry_factor", queue.retry_factor,
             "Must be at least 1.")
    _require(0 < queue.data_deadline < 600, "queue.data_deadline", queue.data_deadline,
             "Must be between 0 and 600 seconds (RFC 5321 s 4.5.3.2.6 gives clients 10 minutes).")
    for key in ("batch", "mailbox_concurrency"):
        value = getattr(queue, key)
        _require(value > 0, f"queue.{key}", value, "Must be greater than 0.")


def _check_sides(config: Config, dev: bool) -> None:
    for name, provider in config.oauth.items():
        _check_provider(name, provider)
    _check_http(config.http)
    _check_unsubscribe(config.unsubscribe, dev)
    if config.unsubscribe.mailto_proxy_protocol:
        _require(bool(config.smtp.load_balancers), "unsubscribe.mailto_proxy_protocol", True,
                 "PROXY headers are believed only from smtp.load_balancers; list them.")


def _check_review_alerts_limits(config: Config) -> None:
    for key in ("held_days", "refused_keep_days", "idle_minutes", "session_hours",
                "lockout_failures", "lockout_minutes", "page_size"):
        _require(getattr(config.review, key) > 0, f"review.{key}", getattr(config.review, key),
                 "Must be greater than 0.")
    _check_feedback(config)
    if config.alerts.webhook_url:
        _require(config.alerts.webhook_url.startswith(("https://", "http://")),
                 "alerts.webhook_url", config.alerts.webhook_url, "Must be an http(s) URL.")
    for key in AlertsConfig.__dataclass_fields__:
        if key != "webhook_url":
            value = getattr(config.alerts, key)
            _require(value > 0, f"alerts.{key}", value, "Must be greater than 0.")
    for kind in ("gmail", "microsoft", "smtp", "maildir", "tenant"):
        for key in RateLimits.__dataclass_fields__:
            value = getattr(getattr(config.limits, kind), key)
            _require(value >= 0, f"limits.{kind}.{key}", value, "Must be 0 (no limit) or more.")
    _require(config.limits.tenant_sessions >= 0, "limits.tenant_sessions",
             config.limits.tenant_sessions, "Must be 0 (no cap) or more.")
    if config.limits.redis_url:
        _require(config.limits.redis_url.startswith(("redis://", "rediss://", "unix://")),
                 "limits.redis_url", config.limits.redis_url,
                 "Must be a redis://, rediss:// or unix:// URL (or empty: the database).")


def _check_retention_pixels_proxies(config: Config) -> None:
    for key in RetentionConfig.__dataclass_fields__:
        value = getattr(config.retention, key)
        _require(value > 0, f"retention.{key}", value, "Must be greater than 0.")
    _require(config.audit.anchor_interval > 0, "audit.anchor_interval",
             config.audit.anchor_interval, "Must be greater than 0 seconds.")
    pixels = config.pixels
    _require(pixels.ipv4_prefix in (16, 24), "pixels.ipv4_prefix", pixels.ipv4_prefix,
             "Must be 24 or 16 (an opener's IPv4 address is kept to that network).")
    for key in ("forward_concurrency", "forward_queue", "flush_interval"):
        _require(getattr(pixels, key) > 0, f"pixels.{key}", getattr(pixels, key),
                 "Must be greater than 0.")
    for i, proxy in enumerate(config.http.trusted_proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            _require(False, f"http.trusted_proxies[{i}]", proxy, "Not an IP address or network.")


def _check_vault_stores(config: Config) -> None:
    if config.vault.backend == "redis":
        _require(config.vault.redis_url.startswith(("redis://", "rediss://", "unix://")),
                 "vault.redis_url", config.vault.redis_url,
                 "vault.backend = 'redis' needs a redis://, rediss:// or unix:// URL.")
    store = config.vault.tenant_key_store
    if store.startswith(("redis", "unix:", "postgresql")):
        _require(store.startswith(("redis://", "rediss://", "unix://", "postgresql://",
                                   "postgresql+asyncpg://")), "vault.tenant_key_store", store,
                 "A directory (dir:/path), redis://, rediss://, unix:// or postgresql:// URL.")
        _require(store.rstrip("/") != config.database.url.rstrip("/"), "vault.tenant_key_store",
                 store, "Must not be the main database: its backups would keep the keys.")
    elif store:
        where = Path(store.removeprefix("dir:")).resolve()
        # development may keep them in var/, so that one 'make clean' resets everything
        _require(config.is_development
                 or not where.is_relative_to(Path(config.data_dir).resolve()),
                 "vault.tenant_key_store", store,
                 "Must be outside data_dir: a backup of the data must not carry the keys.")


def _check_policy(config: Config) -> None:
    for name, check in config.policy.items():
        _require(0 < check.timeout <= 60, f"policy.{name}.timeout", check.timeout,
                 "Must be between 0 and 60 seconds.")
        _require(check.action in ("", "off", "hold", "reject"), f"policy.{name}.action",
                 check.action, "Must be off, hold or reject.")
        _require(check.floor in ("off", "hold", "reject"), f"policy.{name}.floor", check.floor,
                 "Must be off, hold or reject.")


def _check_ip_credential(cred: IpCredential, key: str, balancers: list[Any]) -> None:
    _require(bool(cred.networks), f"{key}.networks", [], "At least one network is required.")
    for j, raw in enumerate(cred.networks):
        try:
            net = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            _require(False, f"{key}.networks[{j}]", raw, "Not an IP network.")
            continue  # the rules below need a network
        _require(net.prefixlen > 0, f"{key}.networks[{j}]", raw,
                 "A network covering every address would make the gateway an open relay.")
        widest = 24 if net.version == 4 else 64
        _require(cred.force or net.prefixlen >= widest, f"{key}.networks[{j}]", raw,
                 f"Wider than /{widest}; set force = true to allow it.")
        for lb in balancers:
            _require(not (net.version == lb.version and net.overlaps(lb)), f"{key}.networks[{j}]",
                     raw, f"Contains the load balancer {lb}: every proxied client would match.")


def _check_provider(name: str, provider: OAuthProviderConfig) -> None:
    key = f"oauth.{name}"
    _require(name in PROVIDER_DEFAULTS, key, name,
             f"Must be one of {', '.join(repr(p) for p in PROVIDER_DEFAULTS)}.")
    for field_name in ("authorize_url", "token_url", "revoke_url"):
        url = getattr(provider, field_name)
        if url:
            _require(_secure_url(url), f"{key}.{field_name}", url,
                     "Must be an https:// URL (http:// only to a loopback host).")
    _require(bool(provider.scopes), f"{key}.scopes", [], "At least one scope is required.")
    _require(0 < provider.timeout <= 60, f"{key}.timeout", provider.timeout,
             "Must be between 0 and 60 seconds.")


def _secure_url(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        return False
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and _is_loopback(parsed.hostname)


def _check_http(http: HttpConfig) -> None:
    for key in ("public_port", "admin_port"):
        port = getattr(http, key)
        _require(0 <= port <= 65535, f"http.{key}", port, "Must be a port between 0 and 65535.")
    _require(bool(http.tls_cert) == bool(http.tls_key), "http.tls_key", http.tls_key,
             "http.tls_cert and http.tls_key go together (both set: HTTPS; both empty: HTTP).")
    if http.public_base_url:
        _require(_secure_url(http.public_base_url) and
                 not urllib.parse.urlsplit(http.public_base_url).query,
                 "http.public_base_url", http.public_base_url,
                 "Must be an https:// URL (http:// only to a loopback host).")
    else:
        _require(_is_loopback(http.public_listen), "http.public_base_url", "",
                 "Required unless http.public_listen is a loopback address.")
    if not http.admin_public:
        _require(_is_private(http.admin_listen), "http.admin_listen", http.admin_listen,
                 "The admin listener must be on a loopback or private address "
                 "(or set http.admin_public = true).")


def _check_unsubscribe(unsub: UnsubscribeConfig, dev: bool) -> None:
    url = urllib.parse.urlsplit(unsub.base_url)
    if unsub.base_url:
        https = url.scheme == "https" and bool(url.hostname)
        dev_http = dev and url.scheme == "http" and _is_loopback(url.hostname or "")
        _require((https or dev_http) and not url.query and not url.fragment,
                 "unsubscribe.base_url", unsub.base_url,
                 "Must be an https:// URL (a loopback http:// URL only with "
                 "environment = 'development').")
    else:
        _require(dev, "unsubscribe.base_url", "",
                 "Required: the https:// URL unsubscribe links point at.")
    _require(0 <= unsub.mailto_port <= 65535, "unsubscribe.mailto_port", unsub.mailto_port,
             "Must be a port between 0 and 65535.")

    for key in ("mailto_max_message_size", "mailto_max_connections", "mailto_rate",
                "invalid_rate"):
        value = getattr(unsub, key)
        _require(value > 0, f"unsubscribe.{key}", value, "Must be greater than 0.")


def _is_private(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    # 0.0.0.0 and :: count as private to ipaddress, but listen on every interface
    return ip.is_private and not ip.is_unspecified


def _check_upstream(name: str, up: UpstreamConfig, dev: bool) -> None:
    key = f"upstreams.{name}"
    if up.return_path == "verp":
        _require(up.kind == "smtp", f"{key}.return_path", "verp",
                 "Only an smtp upstream lets the gateway choose the return path; Gmail and "
                 "Microsoft 365 bounce to the mailbox, which the gateway reads over IMAP.")
    if up.imap_tls == "none":
        _require(_is_loopback(up.imap_host), f"{key}.imap_tls", "none",
                 "Plain-text IMAP is allowed only to a loopback host.")
    _require(0 < up.imap_port <= 65535, f"{key}.imap_port", up.imap_port,
             "Must be a port between 1 and 65535.")
    if up.kind == "maildir":
        _require(bool(up.path), f"{key}.path", up.path, "A maildir upstream needs a path.")
        return
    if up.kind in OAUTH_UPSTREAM_KINDS:
        _require(not up.username and not up.password, f"{key}.password", up.password,
                 "Gmail and Microsoft upstreams log in per mailbox with XOAUTH2; "
                 "no username or password here.")
    _require(bool(up.host), f"{key}.host", up.host, "An smtp upstream needs a host.")
    _require(0 < up.port <= 65535, f"{key}.port", up.port, "Must be a port between 1 and 65535.")
    _require(up.pool_size >= 0, f"{key}.pool_size", up.pool_size, "Must not be negative.")
    if up.tls == "none":
        _require(_is_loopback(up.host), f"{key}.tls", "none",
                 "Plain-text upstream connections are allowed only to a loopback host.")
    if not up.tls_verify:
        _require(_is_loopback(up.host) and (not up.imap_host or _is_loopback(up.imap_host)),
                 f"{key}.tls_verify", False, "An unchecked certificate is allowed only for "
                 "a loopback host; give a private CA in ca_file instead.")
    _require(bool(up.username) or not up.password, f"{key}.password", up.password,
             "A password needs its username; better, keep only the username here and seal "
             f"the password: gateway upstream password {name} --password-stdin.")


def _check_feedback(config: Config) -> None:
    feedback = config.feedback
    for key in ("inbox_poll_seconds", "inbox_batch", "soft_bounces", "soft_bounce_days",
                "soft_bounce_hold_days"):
        value = getattr(feedback, key)
        _require(value > 0, f"feedback.{key}", value, "Must be greater than 0.")
    _require(feedback.global_complaint_tenants in (0,) or feedback.global_complaint_tenants >= 2,
             "feedback.global_complaint_tenants", feedback.global_complaint_tenants,
             "Must be 0 (never automatically) or at least 2: one tenant's complaints cannot "
             "suppress for every tenant.")
    _require(bool(feedback.inbox_folders), "feedback.inbox_folders", [],
             "Name at least one folder.")
    verp = [n for n, up in config.upstreams.items() if up.return_path == "verp"]
    if verp:
        _require(bool(config.unsubscribe.mailto_listen), f"upstreams.{verp[0]}.return_path",
                 "verp", "VERP bounces come back to the inbound listener; set "
                 "unsubscribe.mailto_listen.")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def data_path(config: Config, *parts: str) -> Path:
    return Path(config.data_dir).joinpath(*parts)


def tenant_key_location(config: Config) -> str:
    """Where the tenant keys are: as configured, or a directory beside data_dir."""
    return config.vault.tenant_key_store or \
        f"dir:{Path(config.data_dir).resolve()}-tenant-keys"
