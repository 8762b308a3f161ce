"""Operator configuration: one TOML file plus GATEWAY__SECTION__KEY overrides -> frozen values.

Each section is declared in the module of its subject, each setting once, with its default,
description and rule (`schema.py`); the reference page (`docs/configuration.md`) and the
example file are generated from the declarations (`reference.py`). Every value is checked
once, at start-up (and on SIGHUP); every broken rule is reported at once, each naming the
key, the value and the rule, in the manner of Starlette's
"Config 'X' has value 'Y'. Not a valid int."
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.config.compliance import (
    AlertsConfig,
    CheckConfig,
    FeedbackConfig,
    ReviewConfig,
    check_feedback,
)
from gateway.config.loading import apply_environment, build, read_file
from gateway.config.rules import collected, field_rules
from gateway.config.schema import ENV_PREFIX, section, setting
from gateway.config.sending import (
    BreakerConfig,
    EventsConfig,
    GmailLimits,
    LimitsConfig,
    MicrosoftLimits,
    QueueConfig,
    RateLimits,
    SuppressionConfig,
    TenantFloors,
    check_tenants,
)
from gateway.config.smtp import AuthConfig, IpCredential, SmtpConfig, check_smtp
from gateway.config.storage import (
    AuditConfig,
    DatabaseConfig,
    RetentionConfig,
    VaultConfig,
    check_vault,
)
from gateway.config.upstreams import (
    OAUTH_UPSTREAM_KINDS,
    PROVIDER_DEFAULTS,
    OAuthProviderConfig,
    UpstreamConfig,
    check_oauth,
    check_upstreams,
    with_provider_defaults,
)
from gateway.config.web import (
    DnsConfig,
    FetchConfig,
    HttpConfig,
    PixelConfig,
    UnsubscribeConfig,
    check_http,
    check_unsubscribe,
)

__all__ = [
    "CONFIG_PATH_ENV", "ENV_PREFIX", "OAUTH_UPSTREAM_KINDS", "PROVIDER_DEFAULTS", "AlertsConfig",
    "AuditConfig", "AuthConfig", "BreakerConfig", "CheckConfig", "Config", "DatabaseConfig",
    "DnsConfig",    "EventsConfig", "FeedbackConfig", "FetchConfig", "GmailLimits", "HttpConfig",
    "IpCredential", "LimitsConfig", "MicrosoftLimits", "OAuthProviderConfig", "PixelConfig",
    "QueueConfig", "RateLimits", "RetentionConfig", "ReviewConfig", "SmtpConfig",
    "SuppressionConfig", "TenantFloors", "UnsubscribeConfig", "UpstreamConfig", "VaultConfig",
    "data_path", "load", "tenant_key_location",
]

CONFIG_PATH_ENV = "GATEWAY_CONFIG"


@dataclass(frozen=True, slots=True)
class Config:
    """The environment, where data lives, the logs."""

    environment: Literal["production", "development"] = setting(
        "production", "`production`, or `development`: only development accepts the "
        "generated master key, the self-signed certificate and loopback http:// links.")
    data_dir: str = setting("var", "Where the gateway keeps its files (SQLite database, "
                            "Maildir captures, postmaster mail).")
    log_level: Literal["debug", "info", "warning", "error"] = setting(
        "info", "`debug`, `info`, `warning` or `error`.")
    log_format: Literal["auto", "json", "human"] = setting(
        "auto", "`auto`: readable lines in development or when stderr is a terminal, JSON "
        "lines otherwise; `json`; `human`. Both carry the same fields through the same "
        "redaction: no address, secret or full client IP.")
    smtp: SmtpConfig = section(SmtpConfig)
    database: DatabaseConfig = section(DatabaseConfig)
    vault: VaultConfig = section(VaultConfig)
    audit: AuditConfig = section(AuditConfig)
    retention: RetentionConfig = section(RetentionConfig)
    alerts: AlertsConfig = section(AlertsConfig)
    tenants: TenantFloors = section(TenantFloors)
    queue: QueueConfig = section(QueueConfig)
    events: EventsConfig = section(EventsConfig)
    suppressions: SuppressionConfig = section(SuppressionConfig)
    limits: LimitsConfig = section(LimitsConfig)
    breakers: BreakerConfig = section(BreakerConfig)
    unsubscribe: UnsubscribeConfig = section(UnsubscribeConfig)
    dns: DnsConfig = section(DnsConfig)
    fetch: FetchConfig = section(FetchConfig)
    pixels: PixelConfig = section(PixelConfig)
    review: ReviewConfig = section(ReviewConfig)
    feedback: FeedbackConfig = section(FeedbackConfig)
    http: HttpConfig = section(HttpConfig)
    upstreams: Mapping[str, UpstreamConfig] = dataclasses.field(default_factory=dict)
    oauth: Mapping[str, OAuthProviderConfig] = dataclasses.field(default_factory=dict)
    policy: Mapping[str, CheckConfig] = dataclasses.field(default_factory=dict)

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    def check_config(self, name: str) -> CheckConfig:
        """`[policy.sensitive-data]`, or `_` for `-` (environment variable names)."""
        return self.policy.get(name) or self.policy.get(name.replace("-", "_"), CheckConfig())


def load(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read the TOML file (if any), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get(CONFIG_PATH_ENV) or None
    table: dict[str, Any] = read_file(os.fspath(path)) if path is not None else {}
    apply_environment(table, environ)
    built: Config = build(Config, table, "")
    upstreams, oauth = with_provider_defaults(built.upstreams, built.oauth)
    config = dataclasses.replace(built, upstreams=upstreams, oauth=oauth)
    collected(lambda: _validate(config))
    return config


# Each section's checks of what its settings' own rules cannot see (another setting, the
# environment), run after its rules, section by section in the order of the file.
_SECTION_CHECKS: dict[str, Callable[[Config], None]] = {
    "smtp": lambda c: check_smtp(c.smtp, c.is_development),
    "vault": lambda c: check_vault(c.vault, c.database.url, c.data_dir, c.is_development),
    "tenants": lambda c: check_tenants(c.tenants, c.smtp),
    "unsubscribe": lambda c: check_unsubscribe(c.unsubscribe, c.is_development,
                                               c.smtp.load_balancers),
    "feedback": lambda c: check_feedback(c.feedback),
    "http": lambda c: check_http(c.http),
    "upstreams": lambda c: check_upstreams(c.upstreams, c.unsubscribe.mailto_listen),
    "oauth": lambda c: check_oauth(c.oauth),
}


def _validate(config: Config) -> None:
    for f in dataclasses.fields(config):  # the top-level values are Literals: typed is valid
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            field_rules(value, f"{f.name}.")
        elif isinstance(value, Mapping):
            for name, item in value.items():
                field_rules(item, f"{f.name}.{name}.")
        if f.name in _SECTION_CHECKS:
            _SECTION_CHECKS[f.name](config)


def data_path(config: Config, *parts: str) -> Path:
    return Path(config.data_dir).joinpath(*parts)


def tenant_key_location(config: Config) -> str:
    """Where the tenant keys are: as configured, or a directory beside data_dir."""
    return config.vault.tenant_key_store or \
        f"dir:{Path(config.data_dir).resolve()}-tenant-keys"
