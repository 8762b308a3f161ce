"""`[review]`, `[feedback]`, `[alerts]`, `[policy.<check>]`: held messages and their
reviewers, automatic opt-out from what comes back, what ops hear about, the checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.config.rules import require
from gateway.config.schema import POSITIVE, UP_TO_A_MINUTE, Rule, setting

ACTIONS = Rule(lambda v: v in ("", "off", "hold", "reject"), "Must be off, hold or reject.")
FLOORS = Rule(lambda v: v in ("off", "hold", "reject"), "Must be off, hold or reject.")


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """`[review]`: held and refused messages, kept sealed for compliance review, and the
    review pages on the admin listener (docs/review.md)."""

    held_days: float = setting(14.0, "A held message nobody decided on expires after this "
                               "many days; its sender gets a delivery report.", POSITIVE)
    refused_keep_days: float = setting(30.0, "Copies of refused messages, and decided ones, "
                                       "are deleted after this many days.", POSITIVE)
    idle_minutes: float = setting(15.0, "A reviewer's session without a request for this long "
                                  "ends.", POSITIVE)
    session_hours: float = setting(12.0, "Every session ends after this.", POSITIVE)
    lockout_failures: int = setting(5, "Wrong sign-ins in a row that lock the account ...",
                                    POSITIVE)
    lockout_minutes: float = setting(15.0, "... for this long (`gateway user unlock` lifts "
                                     "it).", POSITIVE)
    page_size: int = setting(50, "Messages per page of the review queue.", POSITIVE)


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    """`[feedback]`: automatic opt-out: bounces, complaints and replies that become
    suppression entries (docs/feedback.md)."""

    read_inboxes: bool = setting(True, "Read connected Gmail and Microsoft 365 mailboxes over "
                                 "IMAP (replies and bounces land there); read-only unless a "
                                 "tenant sets `inbox_labelling`.")
    inbox_poll_seconds: float = setting(60.0, "Seconds between rounds.", POSITIVE)
    inbox_folders: tuple[str, ...] = setting(("INBOX",), "The folders read.")
    inbox_batch: int = setting(200, "Messages fetched per round and mailbox.", POSITIVE)
    soft_bounces: int = setting(3, "Soft bounces (4.x.x) within `soft_bounce_days` ...",
                                POSITIVE)
    soft_bounce_days: float = setting(14.0, "... suppress the address ...", POSITIVE)
    soft_bounce_hold_days: float = setting(7.0, "... for this many days.", POSITIVE)
    global_complaint_tenants: int = setting(
        2, "A complaint suppresses for its tenant at once; globally once this many tenants "
        "have a complaint from the same person (0: never automatically).",
        Rule(lambda v: v == 0 or v >= 2, "Must be 0 (never automatically) or at least 2: one "
             "tenant's complaints cannot suppress for every tenant."))
    complaint_fields: bool = setting(
        True, "Signed copies carry RFC 9477 `CFBL-Address` and `CFBL-Feedback-ID` (where the "
        "tenant's link domain lies under the From domain and the inbound listener runs) and "
        "Gmail's `Feedback-ID`; a campaign tool's own are replaced either way.")
    sender_id: str = setting(
        "ocg", "The stable sender id that ends Gmail's `Feedback-ID` (campaign:tenant:stream:"
        "sender), as registered in Postmaster Tools.", Rule(
            lambda v: bool(re.fullmatch(r"[A-Za-z0-9._-]{1,40}", v)),
            "1 to 40 letters, digits, dots, dashes or underscores."))


def check_feedback(feedback: FeedbackConfig) -> None:
    require(bool(feedback.inbox_folders), "feedback.inbox_folders", [],
            "Name at least one folder.")


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """`[alerts]`: where ops hear about what needs a person: every log event marked for ops
    (a mailbox disconnected, token refreshes failing, an upstream refusing our credentials, a
    dead worker...) and what the periodic checks find (a stuck delivery queue, a certificate
    near expiry). Alerts carry ids and counts, never an address."""

    webhook_url: str = setting("", "A JSON POST per alert; empty: alerts are in the logs "
                               "only.", Rule(lambda v: not v or v.startswith(
                                   ("https://", "http://")), "Must be an http(s) URL."))
    repeat_minutes: float = setting(60.0, "The same alert is sent again at most this often.",
                                    POSITIVE)
    check_interval: float = setting(300.0, "Seconds between the periodic checks.", POSITIVE)
    queue_stuck_minutes: float = setting(60.0, "A deferred copy older than this: the queue is "
                                         "stuck.", POSITIVE)
    certificate_days: float = setting(14.0, "The SMTP certificate expires within this many "
                                      "days.", POSITIVE)


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """`[policy.<check>]`: per-check settings (`[policy.sensitive-data]`). A held message is
    accepted (`250 2.0.0 Ok: held for review as <queue id>`), kept sealed and sent only if a
    reviewer releases it (`gateway held`)."""

    timeout: float = setting(2.0, "Seconds the check may take.", UP_TO_A_MINUTE)
    action: str = setting("", "Content checks: the default for tenants without a setting "
                          "(`off`, `hold` or `reject`).", ACTIONS)
    floor: str = setting("off", "Content checks: tenants cannot choose weaker (off < hold < "
                         "reject).", FLOORS)
