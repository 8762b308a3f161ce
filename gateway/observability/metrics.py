"""Prometheus metrics of the gateway, served at `/metrics` on the admin listener.

Under `serve --workers N` the supervisor gives every worker one directory
(PROMETHEUS_MULTIPROC_DIR): each worker writes its values there and a scrape, whichever
worker answers it, reads them all (`exposition()`).

Labels hold only bounded, non-personal values: actions, check names, reply codes, upstream
and provider names. Never a tenant's or a person's address, never a token. Queue depths and
the size of the suppression lists are read from the database when scraped.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter(
    "ocg_messages", "Messages by final action (relayed, held, refused, deferred) and the "
    "check that decided (empty when none did)", ["action", "check"], registry=REGISTRY)
TLS_HANDSHAKE_FAILURES = Counter(
    "ocg_tls_handshake_failures", "TLS handshakes that failed, by listener (implicit-tls, "
    "starttls)", ["listener"], registry=REGISTRY)
CLIENT_DROPS = Counter("ocg_smtp_client_drops", "SMTP clients that dropped the connection "
                       "mid-session", registry=REGISTRY)
REPLIES = Counter("ocg_smtp_replies", "SMTP replies sent, by reply code", ["code"],
                  registry=REGISTRY)
UPSTREAM_SECONDS = Histogram(
    "ocg_upstream_seconds", "Time to hand one copy to its upstream, by upstream and outcome",
    ["upstream", "outcome"], registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
CHECK_SECONDS = Histogram(
    "ocg_check_seconds", "Policy check latency, by check", ["check"], registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
TOKEN_REFRESHES = Counter(
    "ocg_token_refreshes", "OAuth access-token refreshes, by provider and outcome (ok, "
    "revoked, failed)", ["provider", "outcome"], registry=REGISTRY)
PIXEL_OPENS = Counter("ocg_pixel_opens", "Tracking-pixel opens recorded, by verdict (human, "
                      "machine, bot)", ["verdict"], registry=REGISTRY)
OPTOUT_ENFORCEMENT = Histogram(
    "ocg_optout_enforcement_seconds", "Opt-outs: from the request to its enforcement on every "
    "node (the receipt's effective-at), by channel", ["channel"], registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 60, 3600, 86400, 172800))
OPT_OUTS = Counter("ocg_opt_outs", "Opt-outs recorded, by source", ["source"],
                   registry=REGISTRY)
FEEDBACK = Counter("ocg_feedback_messages", "Bounces, complaints and replies read, by where "
                   "they came from (inbox, verp, cfbl) and outcome (suppressed, review, counted, "
                   "ignored)", ["source", "outcome"], registry=REGISTRY)
CFBL_REPORTS = Counter("ocg_cfbl_reports", "Complaint reports mailed to a CFBL-Address, by "
                       "outcome (counted, unverified, not-a-complaint, unsealed, forged, "
                       "unknown-copy)", ["outcome"], registry=REGISTRY)
# Read from the database at scrape: the newest value wins across workers.
QUEUE_DEPTH = Gauge("ocg_queue_depth", "Copies in the delivery queue, by state", ["state"],
                    registry=REGISTRY, multiprocess_mode="mostrecent")
HELD_DEPTH = Gauge("ocg_held_messages", "Messages held for review (undecided)",
                   registry=REGISTRY, multiprocess_mode="mostrecent")
SUPPRESSIONS = Gauge("ocg_suppression_entries", "Entries on all suppression lists",
                     registry=REGISTRY, multiprocess_mode="mostrecent")
BREAKERS = Gauge("ocg_breakers", "Stored breakers by scope kind (tenant, domain, mailbox, "
                 "campaign) and state (warn, open; closed: resumed)", ["kind", "state"],
                 registry=REGISTRY, multiprocess_mode="mostrecent")
BREAKER_RATE = Gauge("ocg_breaker_rate_max", "The highest rate over the last 24 hours among "
                     "the scopes of each kind (a fraction; metric: complaints, bounces, "
                     "blocks); the review pages show each scope's", ["kind", "metric"],
                     registry=REGISTRY, multiprocess_mode="mostrecent")
CERT_DAYS = Gauge("ocg_tls_certificate_days_left", "Days until a listener's TLS certificate "
                  "expires (listener: smtp, http)", ["listener"], registry=REGISTRY,
                  multiprocess_mode="mostrecent")


def exposition() -> bytes:
    """The text a scrape gets: this process's metrics, or every worker's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
