"""`[tenants]`, `[queue]`, `[events]`, `[limits]`, `[suppressions]`: what tenants may set,
retries of copies and of webhook deliveries, sending limits, expired suppressions."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.rules import require
from gateway.config.schema import NO_LIMIT_OR_MORE, POSITIVE, Rule, section, setting
from gateway.config.smtp import SmtpConfig


@dataclass(frozen=True, slots=True)
class TenantFloors:
    """`[tenants]`: operator-wide defaults and ceilings for tenant settings; a tenant can
    only tighten them (`gateway tenant set`; the settings are listed in
    docs/tenant-settings.md)."""

    max_recipients: int = setting(50, "Recipients per message, at most "
                                  "`smtp.max_recipients`.")
    max_message_size: int = setting(10 * 1024 * 1024, "Bytes per message, at most "
                                    "`smtp.max_message_size`.")
    settings_refresh: float = setting(2.0, "Seconds until every worker sees a tenant change.")


def check_tenants(floors: TenantFloors, smtp: SmtpConfig) -> None:
    require(0 < floors.max_recipients <= smtp.max_recipients, "tenants.max_recipients",
            floors.max_recipients, f"Must be between 1 and smtp.max_recipients "
            f"({smtp.max_recipients}).")
    require(0 < floors.max_message_size <= smtp.max_message_size, "tenants.max_message_size",
            floors.max_message_size, f"Must be between 1 and smtp.max_message_size "
            f"({smtp.max_message_size}).")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """`[queue]`: retries of deferred copies and the delivery reports the gateway owes.
    Back-off: `retry_first`, then each wait `retry_factor` times longer, at most
    `retry_max`."""

    retry_first: float = setting(60.0, "Seconds before the first retry.", POSITIVE)
    retry_factor: float = setting(2.0, "Each later wait is this much longer ...",
                                  Rule(lambda v: v >= 1, "Must be at least 1."))
    retry_max: float = setting(3600.0, "... up to this many seconds.", POSITIVE)
    lifetime: float = setting(5 * 24 * 3600.0, "Seconds; then the copy expires and the sender "
                              "gets a delivery report.", POSITIVE)
    poll_interval: float = setting(1.0, "Seconds between rounds of the queue worker.",
                                   POSITIVE)
    batch: int = setting(100, "Copies claimed per round.", POSITIVE)
    lease: float = setting(600.0, "A claimed copy not finished by then (seconds) is taken "
                           "up again.", POSITIVE)
    mailbox_concurrency: int = setting(5, "Upstream transactions at once per mailbox.",
                                       POSITIVE)
    data_deadline: float = setting(60.0, "The DATA reply comes within this many seconds; "
                                   "slower copies are queued and the client gets 250.",
                                   Rule(lambda v: 0 < v < 600, "Must be between 0 and 600 "
                                        "seconds (RFC 5321 s 4.5.3.2.6 gives clients 10 "
                                        "minutes)."))
    quota_pause: float = setting(3600.0, "A mailbox over its provider's quota waits this many "
                                 "seconds.", POSITIVE)
    dsn_headers_only: bool = setting(True, "Delivery reports carry the original headers, "
                                     "never the body.")


@dataclass(frozen=True, slots=True)
class EventsConfig:
    """`[events]`: tenant events and their webhook deliveries, retried with back-off."""

    retry_first: float = setting(10.0, "Seconds before the first retry of a delivery.")
    retry_factor: float = setting(2.0, "Each later wait is this much longer ...")
    retry_max: float = setting(3600.0, "... up to this many seconds.")
    lifetime: float = setting(3 * 24 * 3600.0, "Seconds; then an undeliverable webhook row "
                              "is marked failed.")
    batch: int = setting(100, "Events per webhook request.")
    timeout: float = setting(10.0, "Seconds per webhook request.")
    poll_interval: float = setting(1.0, "Seconds between rounds of the dispatcher.")
    allow_private_targets: bool = setting(
        False, "Tenant URLs are hostile input: only https to public addresses, unless the "
        "operator allows private targets (a receiver inside the operator's own network, "
        "tests).")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """`[limits.smtp]`, `[limits.maildir]`, `[limits.tenant]`: messages and recipients one
    sender may send per window; 0: no limit."""

    messages_per_minute: int = setting(0, "Messages a minute.", NO_LIMIT_OR_MORE)
    messages_per_hour: int = setting(0, "Messages an hour.", NO_LIMIT_OR_MORE)
    messages_per_day: int = setting(0, "Messages a day.", NO_LIMIT_OR_MORE)
    recipients_per_day: int = setting(0, "Recipients a day.", NO_LIMIT_OR_MORE)


@dataclass(frozen=True, slots=True)
class GmailLimits:
    """`[limits.gmail]`: Google Workspace's published per-user limits, 2,000 messages and
    10,000 recipients a day (support.google.com/a/answer/166852). A key set alone keeps the
    others."""

    messages_per_minute: int = setting(0, "Messages a minute.", NO_LIMIT_OR_MORE)
    messages_per_hour: int = setting(0, "Messages an hour.", NO_LIMIT_OR_MORE)
    messages_per_day: int = setting(2000, "Messages a day.", NO_LIMIT_OR_MORE)
    recipients_per_day: int = setting(10000, "Recipients a day.", NO_LIMIT_OR_MORE)


@dataclass(frozen=True, slots=True)
class MicrosoftLimits:
    """`[limits.microsoft]`: Exchange Online's published per-mailbox limits, 30 messages a
    minute and 10,000 recipients a day (learn.microsoft.com/office365/servicedescriptions/
    exchange-online-service-description/exchange-online-limits)."""

    messages_per_minute: int = setting(30, "Messages a minute.", NO_LIMIT_OR_MORE)
    messages_per_hour: int = setting(0, "Messages an hour.", NO_LIMIT_OR_MORE)
    messages_per_day: int = setting(0, "Messages a day.", NO_LIMIT_OR_MORE)
    recipients_per_day: int = setting(10000, "Recipients a day.", NO_LIMIT_OR_MORE)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """`[limits]`: sending limits, counted across every node, that protect the mailboxes'
    reputation. A mailbox's limits follow its upstream's kind (`[limits.gmail]`,
    `[limits.microsoft]`, `[limits.smtp]`, `[limits.maildir]`); `[limits.tenant]` counts all
    of a tenant's mailboxes together. Over a limit the client gets `450 4.7.1` with the time
    the window resets, and keeps the message. A released held message is not counted."""

    gmail: GmailLimits = section(GmailLimits)
    microsoft: MicrosoftLimits = section(MicrosoftLimits)
    smtp: RateLimits = section(RateLimits)
    maildir: RateLimits = section(RateLimits)
    tenant: RateLimits = section(RateLimits)
    tenant_sessions: int = setting(0, "Concurrent SMTP sessions per tenant on one node; 0: no "
                                   "cap.", Rule(lambda v: v >= 0,
                                                "Must be 0 (no cap) or more."))
    redis_url: str = setting("", "Counters in this Redis; empty: in the database.",
                             Rule(lambda v: not v or v.startswith(
                                 ("redis://", "rediss://", "unix://")),
                                 "Must be a redis://, rediss:// or unix:// URL (or empty: "
                                 "the database)."))


PERCENT = Rule(lambda v: 0 < v <= 100, "Must be a percentage above 0 and at most 100.")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """`[breakers]`: reputation circuit breakers per tenant, sending domain and mailbox
    (docs/breakers.md). Rates over the last 24 hours and the last 7 days, counted across
    every node; a breaker trips only above its minimum volume, pausing that scope with
    `451 4.7.1` until a compliance reviewer resumes it. Tenants may set stricter thresholds
    (`breaker_*_percent`), never looser ones. Defaults follow the providers' published
    thresholds (Gmail and Yahoo: keep complaints under 0.1 %, never reach 0.3 %)."""

    enabled: bool = setting(True, "Count outcomes and answer `451` for a tripped breaker.")
    complaint_warn_percent: float = setting(
        0.1, "Complaint rate that warns (an ops alert, a tenant event); sending goes on. At "
        "or above the trip threshold it never warns.", PERCENT)
    complaint_trip_percent: float = setting(0.3, "Complaint rate that trips the breaker.",
                                            PERCENT)
    complaint_min_volume: int = setting(
        1000, "Copies delivered to feedback providers, in the window, before the complaint "
        "rate counts.", POSITIVE)
    bounce_trip_percent: float = setting(5.0, "Hard-bounce rate (5.1.x, synchronous or by "
                                         "DSN) that trips the breaker.", PERCENT)
    block_trip_percent: float = setting(
        5.0, "Policy-block rate (5.7.x from the provider: reputation, unusual rate) that "
        "trips the breaker.", PERCENT)
    min_volume: int = setting(200, "Copies relayed, in the window, before the bounce and "
                              "block rates count.", POSITIVE)
    feedback_providers: tuple[str, ...] = setting(
        ("yahoo.com", "aol.com", "ymail.com", "rocketmail.com", "outlook.com", "hotmail.com",
         "live.com", "msn.com", "comcast.net", "att.net", "sbcglobal.net"),
        "Recipient domains whose provider sends this deployment per-message complaint "
        "reports (Yahoo CFL, Microsoft JMRP, ...): only copies to them are the complaint "
        "rate's denominator. Gmail sends none per message, and counting its copies would "
        "dilute the rate.")
    sync_seconds: float = setting(2.0, "How often a node adds its counts to the shared ones, "
                                  "evaluates what changed and reads every breaker's state.",
                                  POSITIVE)


@dataclass(frozen=True, slots=True)
class SuppressionConfig:
    """`[suppressions]`: an entry with an expiry (a soft bounce's 7 days) stops suppressing
    the moment it expires; it is kept for review, then deleted by the retention round."""

    keep_expired_days: float = setting(30.0, "Days an expired entry is kept.")
