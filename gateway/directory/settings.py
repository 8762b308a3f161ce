"""Tenant settings: what a tenant may change, each within the floors the operator sets.

Stored as JSON on the tenant row; validated here with the same named errors as the operator
configuration. Later issues add their keys (policy modes, templates) to `SCHEMA`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.config import Config
from gateway.directory import lawful_overrides
from gateway.errors import InvalidValue
from gateway.outbound import footer


@dataclass(frozen=True, slots=True)
class Setting:
    kind: type
    describe: str
    ceiling: Callable[[Config], float] | None = None  # the operator's limit a tenant cannot pass
    default: Callable[[Config], Any] | None = None
    check: Callable[[str], None] | None = None  # text settings: raises InvalidValue


def _body_mode(value: str) -> None:
    if value not in ("add", "require"):
        raise InvalidValue("Must be 'add' (the gateway adds the footer) or 'require' (a message "
                           "without its own unsubscribe link and postal address is refused).")


def _postal_address(value: str) -> None:
    if not value.strip() or len(value) > 300 or "\n\n" in value:
        raise InvalidValue("A postal address of 1 to 300 characters (CAN-SPAM), on one or "
                           "a few lines.")


def _sender_name(value: str) -> None:
    if not value.strip() or len(value) > 100:
        raise InvalidValue("A name of 1 to 100 characters.")


def _lawful_overrides(value: str) -> None:
    lawful_overrides.parse(value)


def _one_line(value: str) -> None:
    if not value.strip() or len(value) > 500 or "\n" in value:
        raise InvalidValue("One line of 1 to 500 characters.")


def _https_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or len(value) > 500:
        raise InvalidValue("An https:// URL of up to 500 characters.")


# the values a notice template renders with (outbound/notice.py)
NOTICE_VALUES = ("controller", "postal_address", "data_source", "purpose", "notice_url",
                 "unsubscribe_url")


def _notice_template(value: str, html: bool) -> None:
    values = {name: "x" for name in NOTICE_VALUES} | {"unsubscribe_url": footer.PLACEHOLDER}
    footer.check_template(value, html, values, what="notice")


def _pixel_mode(value: str) -> None:
    if value not in ("proxy", "strip", "aggregate", "off"):
        raise InvalidValue("Must be proxy (the gateway counts opens and tells the tracker, "
                           "without the IP), strip, aggregate (counts per campaign only) or "
                           "off (needs the operator's pixels.allow_off).")


def _tracker_patterns(value: str) -> None:
    for pattern in value.replace(",", " ").split():
        host = pattern.partition("/")[0].removeprefix("*.")
        if "." not in host or not re.fullmatch(r"[a-z0-9.-]+", host.lower()):
            raise InvalidValue(f"{pattern!r} is not host[/path-prefix] (e.g. "
                               "track.example.com/open or *.example.com).")


def _content_action(value: str) -> None:
    if value not in ("off", "hold", "reject"):
        raise InvalidValue("Must be hold (kept for review), reject or off.")


def _alignment_action(value: str) -> None:
    if value not in ("hold", "reject"):
        raise InvalidValue("Must be reject or hold; only the operator can switch identity "
                           "alignment off ([policy.identity-alignment]).")


def _suppressed_mode(value: str) -> None:
    if value not in ("refuse", "accept-and-report"):
        raise InvalidValue("Must be refuse (550 5.7.1 at RCPT) or accept-and-report (250 at "
                           "RCPT, not sent, reported to the sender by a delivery report and a "
                           "'suppressed' event).")


def _yes_no(value: str) -> None:
    if value not in ("yes", "no"):
        raise InvalidValue("Must be yes or no.")


def _lawful_mode(value: str) -> None:
    if value not in ("off", "enforce"):
        raise InvalidValue("Must be off or enforce (a recipient without a lawful basis under "
                           "the table in force gets 550 5.7.1 at RCPT).")


def _lawful_default(value: str) -> None:
    if value not in ("", "allow", "allow-with-notice", "require-consent", "deny"):
        raise InvalidValue("Must be allow, allow-with-notice, require-consent, deny, or empty "
                           "(the table's default row).")


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _link_domain(value: str) -> None:
    labels = value.split(".")
    if value and (len(value) > 253 or len(labels) < 2
                  or not all(_LABEL.match(label) for label in labels)):
        raise InvalidValue("A host name in lower case (e.g. links.acme.example) that points "
                           "at the gateway by CNAME, with its certificate; or empty.")


SCHEMA: Mapping[str, Setting] = {
    "max_recipients": Setting(
        int, "recipients per message", ceiling=lambda c: c.smtp.max_recipients,
        default=lambda c: c.tenants.max_recipients,
    ),
    "max_message_size": Setting(
        int, "message size in bytes", ceiling=lambda c: c.smtp.max_message_size,
        default=lambda c: c.tenants.max_message_size,
    ),
    "body": Setting(str, "footer mode", default=lambda c: "add", check=_body_mode),
    "postal_address": Setting(str, "postal address", check=_postal_address),
    "sender_name": Setting(str, "sender name in the footer", check=_sender_name),
    "footer_text": Setting(str, "plain-text footer template",
                           check=lambda v: footer.check_template(v, html=False)),
    "footer_html": Setting(str, "HTML footer template",
                           check=lambda v: footer.check_template(v, html=True)),
    "link_domain": Setting(str, "unsubscribe link host", default=lambda c: "",
                           check=_link_domain),
    "pixels": Setting(str, "tracking pixel mode", default=lambda c: "proxy",
                      check=_pixel_mode),
    "tracker_patterns": Setting(str, "tracker URL patterns", default=lambda c: "",
                                check=_tracker_patterns),
    "add_pixel": Setting(str, "add the gateway's pixel", default=lambda c: "no",
                         check=_yes_no),
    "sensitive_data": Setting(str, "action on sensitive data", check=_content_action),
    "misleading_subject": Setting(str, "action on a misleading subject",
                                  check=_content_action),
    "keep_refused": Setting(str, "keep a sealed copy of refused mail for review",
                            default=lambda c: "yes", check=_yes_no),
    "identity_alignment": Setting(str, "action on a misaligned sender identity",
                                  check=_alignment_action),
    "suppressed_recipients": Setting(str, "what a suppressed recipient gets at RCPT",
                                     default=lambda c: "refuse", check=_suppressed_mode),
    "breaker_complaint_trip_percent": Setting(
        float, "% complaints that trip a breaker",
        ceiling=lambda c: c.breakers.complaint_trip_percent,
        default=lambda c: c.breakers.complaint_trip_percent),
    "breaker_bounce_trip_percent": Setting(
        float, "% hard bounces that trip a breaker",
        ceiling=lambda c: c.breakers.bounce_trip_percent,
        default=lambda c: c.breakers.bounce_trip_percent),
    "breaker_block_trip_percent": Setting(
        float, "% policy blocks that trip a breaker",
        ceiling=lambda c: c.breakers.block_trip_percent,
        default=lambda c: c.breakers.block_trip_percent),
    "lawful_basis": Setting(str, "hold mail to the lawful-basis table (docs/lawful-basis.md)",
                            default=lambda c: "off", check=_lawful_mode),
    "lawful_default": Setting(str, "the decision for a recipient nothing places",
                              default=lambda c: "", check=_lawful_default),
    "notice_controller": Setting(str, "the controller the allow-with-notice notice names "
                                 "(default: sender_name)", check=_sender_name),
    "notice_source": Setting(str, "where the tenant got its recipients' addresses, as the "
                             "notice says it", check=_one_line),
    "notice_purpose": Setting(str, "the purpose and legal basis, as the notice says them",
                              check=_one_line),
    "notice_url": Setting(str, "the tenant's full Art. 14 privacy notice (https://)",
                          check=_https_url),
    "notice_text": Setting(str, "plain-text notice template",
                           check=lambda v: _notice_template(v, html=False)),
    "notice_html": Setting(str, "HTML notice template",
                           check=lambda v: _notice_template(v, html=True)),
    "lawful_overrides": Setting(str, "the tenant's own, stricter lawful-basis rules: "
                                "COUNTRY[.kind]=decision ... (the operator's table is the "
                                "floor)", default=lambda c: "",
                                check=_lawful_overrides),
    "lawful_statements": Setting(str, "the campaign tool states its recipients' country and "
                                 "kind in X-Gateway-Recipient fields: RCPT refuses only on an "
                                 "attribute record, the rest is decided after DATA",
                                 default=lambda c: "no", check=_yes_no),
    "inbox_labelling": Setting(str, "flag the bounces and replies the gateway acted on in the "
                               "mailbox (otherwise it only reads)", default=lambda c: "no",
                               check=_yes_no),
}

# content-check settings and the check whose operator floor bounds them
CONTENT_CHECKS = {"sensitive_data": "sensitive-data", "misleading_subject": "misleading-subject"}


def parse(key: str, raw: str, config: Config) -> Any:
    """Parse and validate one value given as text (CLI), raising InvalidValue with the rule."""
    setting = SCHEMA.get(key)
    if setting is None:
        known = ", ".join(sorted(SCHEMA))
        raise InvalidValue(f"Tenant setting '{key}' does not exist (known: {known}).")
    if setting.kind is int or setting.kind is float:
        try:
            value: Any = setting.kind(raw)
        except ValueError:
            message = (f"Tenant setting '{key}' has value {raw!r}. Not a valid "
                       f"{setting.kind.__name__}.")
            raise InvalidValue(message) from None
    else:
        value = raw
    validate(key, value, config)
    return value


def validate(key: str, value: Any, config: Config) -> None:
    setting = SCHEMA[key]
    if key == "pixels" and value == "off" and not config.pixels.allow_off:
        raise InvalidValue("Tenant setting 'pixels' = 'off' leaves trackers untouched; the "
                           "operator must allow it first (pixels.allow_off = true).")
    if key in CONTENT_CHECKS and isinstance(value, str):
        floor = config.check_config(CONTENT_CHECKS[key]).floor
        order = ("off", "hold", "reject")
        if value in order and order.index(value) < order.index(floor):
            raise InvalidValue(f"Tenant setting '{key}' has value {value!r}. The operator "
                               f"requires at least {floor!r}.")
    if setting.kind is str:
        if not isinstance(value, str):
            raise InvalidValue(f"Tenant setting '{key}' must be text.")
        if setting.check is not None:
            try:
                setting.check(value)
            except InvalidValue as exc:
                raise InvalidValue(f"Tenant setting '{key}': {exc.message}") from None
        return
    if setting.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0 < value < float("inf"):
            raise InvalidValue(f"Tenant setting '{key}' has value {value!r}. Must be above 0.")
        if setting.ceiling is not None and value > setting.ceiling(config):
            raise InvalidValue(
                f"Tenant setting '{key}' has value {value!r}. The operator allows at most "
                f"{setting.ceiling(config):g} ({setting.describe}); a tenant may be stricter, "
                "not looser.")
        return
    if setting.kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValue(f"Tenant setting '{key}' has value {value!r}. Must be at least 1.")
        if setting.ceiling is not None and value > setting.ceiling(config):
            raise InvalidValue(
                f"Tenant setting '{key}' has value {value!r}. The operator allows at most "
                f"{setting.ceiling(config)} {setting.describe}."
            )


def effective(stored: Mapping[str, Any], config: Config) -> dict[str, Any]:
    """Every setting's value for one tenant: stored values clamped to today's ceilings."""
    values: dict[str, Any] = {}
    for key, setting in SCHEMA.items():
        value = stored.get(key)
        if value is None and setting.default is not None:
            value = setting.default(config)
        if setting.ceiling is not None and isinstance(value, int | float):
            value = min(value, setting.ceiling(config))  # the operator lowered a ceiling
        values[key] = value
    return values
