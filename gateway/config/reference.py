"""docs/configuration.md and deploy/production.example.toml, generated from the settings'
declarations (`schema.py`): `make docs` writes both, and a test keeps the files equal to
what this prints.

    python -m gateway.config.reference            # the reference page
    python -m gateway.config.reference example    # the production example
"""

from __future__ import annotations

import dataclasses
import re
import sys
import textwrap
from typing import Any

from gateway.config import Config
from gateway.config.schema import ConfigSetting, own_settings, sections

INTRO = """\
# Configuration

Generated from the settings' declarations (`gateway/config/`, one module per subject) by
`make docs`; do not edit by hand.

Operator settings live in one TOML file (`--config PATH` or `$GATEWAY_CONFIG`). Any key can be
overridden from the environment as `GATEWAY__SECTION__KEY`, for example
`GATEWAY__SMTP__MAX_RECIPIENTS=50` (each setting's variable is listed below; values are
TOML literals when they parse as one). Secrets are not configuration: smarthost passwords,
OAuth tokens and client secrets are sealed in the vault by the CLI or the admin API. A value
of the wrong type stops start-up with a message that names the key, the value and the rule;
a value outside its rules is reported with every other one in the file, one line each:

```
gateway: error: Config 'smtp.max_recipients' has value 'many'. Not a valid int.
```

```
gateway: error: Config 'smtp.submission_port' has value 99999. Must be a port between 0 and 65535.
gateway: error: Config 'tenants.max_recipients' has value 50. Must be between 1 and \
smtp.max_recipients (20).
```

`deploy/production.example.toml` is a one-host starting point (generated with this page) and
`deploy/multi-node.example.toml` the one for several nodes behind HAProxy
([deploy.md](deploy.md)). `gateway check-config` validates a file without starting anything.

`SIGHUP` reloads the TLS certificates (SMTP and HTTPS), the master key and the limits without
a restart; sessions already open keep the certificate they started with. A bad new file is
logged and the running configuration kept. Listener addresses and the database URL need a
restart.

Tenant settings live in the database, not here: they are changed with `gateway tenant set`,
audited, and can only be tightened below the operator's ceilings
([tenant-settings.md](tenant-settings.md)).
"""

_TABLE_PREFIX = re.compile(r"^(`\[\[?[^\]]+\]\]?`(, `\[[^\]]+\]`)*( and `\[[^\]]+\]`)?: )")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def _doc(cls: type[Any]) -> str:
    """A section's docstring without the table names it starts with, as one paragraph."""
    text = " ".join(line.strip() for line in (cls.__doc__ or "").split("\n\n")[0].splitlines())
    text = _TABLE_PREFIX.sub("", text)
    rest = "\n\n".join(" ".join(line.strip() for line in para.splitlines())
                       for para in (cls.__doc__ or "").split("\n\n")[1:])
    return (text[:1].upper() + text[1:] + ("\n\n" + rest if rest else "")).strip()


def _row(s: ConfigSetting) -> str:
    name = s.key.rsplit(".", 1)[-1]
    default = "required" if s.default is dataclasses.MISSING else f"`{toml_value(s.default)}`"
    meaning = s.doc + (f" {s.rule.text}" if s.rule else "")
    # an array of tables ([[smtp.ip_credentials]]) is written in the file only
    env = "file only" if "[]" in s.key else f"`{s.env}`"
    return f"| `{name}`<br>{env} | {default} | {meaning} |"


def markdown() -> str:
    out = [INTRO]
    tables: list[tuple[str, type[Any]]] = [("", Config), *sections(Config)]
    shown: dict[type[Any], str] = {}
    for key, cls in tables:
        heading = "The top level" if not key else (
            f"[[{key.removesuffix('[]')}]]" if key.endswith("[]") else f"[{key}]")
        out.append(f"## `{heading}`\n" if key else f"## {heading}\n")
        if cls in shown:
            out.append(f"The same settings as `[{shown[cls]}]`.\n")
        else:
            shown[cls] = key
            out.append(_doc(cls) + "\n")
        own = own_settings(cls, f"{key}." if key else "")
        if own:
            out.append("| setting and environment variable | default | meaning |")
            out.append("|---|---|---|")
            out.extend(_row(s) for s in own)
            out.append("")
    return "\n".join(out)


# --- the production example: the values chosen for one host, described by the schema ---

EXAMPLE_HEAD = """\
# A production starting point for one host (systemd; deploy/multi-node.example.toml is the
# one for several nodes). Generated from the settings' declarations by `make docs`: each
# comment is the setting's description (docs/configuration.md has every setting).
# `gateway check-config` validates a file without starting anything.
"""

# (table, {key: value}); a key starting with "#" is shown commented out.
EXAMPLE: list[tuple[str, dict[str, Any]]] = [
    ("", {"environment": "production", "data_dir": "/var/lib/ocg", "log_level": "info"}),
    ("smtp", {"hostname": "smtp-gw.example.com", "listen": "0.0.0.0", "submission_port": 587,
              "implicit_tls": True, "implicit_tls_port": 465,
              "tls_cert": "/etc/ocg/tls/fullchain.pem", "tls_key": "/etc/ocg/tls/privkey.pem",
              "max_message_size": 26214400, "max_recipients": 100, "max_commands": 2000,
              "session_timeout": 300, "load_balancers": [], "proxy_protocol": False}),
    ("smtp.auth", {"max_failures": 5, "failure_window": 300, "login_failure_budget": 50,
                   "budget_window": 3600, "known_network_days": 30,
                   "min_password_length": 12}),
    ("smtp.ip_credentials[]", {"#login": "legacy-tool", "#networks": ["203.0.113.10/32"]}),
    ("database", {"url": "postgresql+asyncpg://ocg@db.internal/ocg"}),
    ("vault", {"master_key_file": "/run/secrets/ocg-master-key",
               "tenant_key_store": "dir:/var/lib/ocg-tenant-keys",
               "tenant_key_store_single_node": True}),
    ("tenants", {"max_recipients": 50, "max_message_size": 10485760}),
    ("queue", {"retry_first": 60.0, "retry_factor": 2.0, "retry_max": 3600.0,
               "lifetime": 432000.0, "mailbox_concurrency": 5, "data_deadline": 60.0,
               "dsn_headers_only": True}),
    ("suppressions", {"keep_expired_days": 30.0}),
    ("review", {"held_days": 14.0, "refused_keep_days": 30.0}),
    ("audit", {"anchor_interval": 60.0, "#chain": "node-1"}),
    ("limits", {"#redis_url": "redis://10.0.0.5:6379/2", "tenant_sessions": 0}),
    ("limits.gmail", {"messages_per_day": 2000, "recipients_per_day": 10000}),
    ("limits.microsoft", {"messages_per_minute": 30, "recipients_per_day": 10000}),
    ("limits.tenant", {"messages_per_hour": 0}),
    ("retention", {"audit_days": 730.0, "queue_days": 30.0, "events_days": 90.0,
                   "webhook_outbox_days": 7.0, "opens_days": 180.0, "sent_index_days": 180.0,
                   "feedback_marks_days": 30.0, "optout_reviews_days": 90.0,
                   "abuse_mail_days": 90.0, "oauth_flows_days": 1.0, "interval": 3600.0}),
    ("unsubscribe", {"base_url": "https://links.mail.example.net", "mailto_listen": "0.0.0.0",
                     "mailto_port": 25}),
    ("pixels", {"ipv4_prefix": 24, "allow_off": False, "flush_interval": 1.0}),
    ("fetch", {"allow_http": False}),
    ("events", {"allow_private_targets": False}),
    ("upstreams.relay", {"kind": "smtp", "host": "smtp.relay.example.net", "port": 587,
                         "tls": "starttls", "username": "gateway", "return_path": "verp"}),
    ("feedback", {"read_inboxes": True, "inbox_poll_seconds": 60.0, "inbox_folders": ["INBOX"],
                  "soft_bounces": 3, "soft_bounce_days": 14.0, "soft_bounce_hold_days": 7.0,
                  "global_complaint_tenants": 2}),
    ("policy.parsed", {"timeout": 2.0}),
]


def _settings_by_key() -> dict[str, ConfigSetting]:
    found: dict[str, ConfigSetting] = {s.key: s for s in own_settings(Config)}
    for key, cls in sections(Config):
        found.update((s.key, s) for s in own_settings(cls, key + "."))
    return found


def _generic(table: str) -> str:
    """upstreams.relay -> upstreams.<name>: the key the schema declares it under."""
    parts = table.split(".")
    if parts[0] in ("upstreams", "oauth", "policy") and len(parts) > 1:
        return ".".join([parts[0], "<name>", *parts[2:]])
    return table


def _comment(text: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 90 - len(indent))]


def example() -> str:
    schema = _settings_by_key()
    classes = dict(sections(Config))
    out = [EXAMPLE_HEAD]
    for table, values in EXAMPLE:
        generic = _generic(table)
        if table:
            out.append("")
            commented = all(k.startswith("#") for k in values)
            header = (f"[[{table.removesuffix('[]')}]]" if table.endswith("[]")
                      else f"[{table}]")
            out.extend(_comment(_doc(classes[generic]).split("\n\n")[0]))
            out.append(("# " if commented else "") + header)
        for raw_key, value in values.items():
            key = raw_key.lstrip("#")
            full = f"{generic}.{key}" if generic else key
            setting = schema[full]  # a key the schema does not declare fails here
            out.extend(_comment(setting.doc))
            out.append(("# " if raw_key.startswith("#") else "") + f"{key} = {toml_value(value)}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(example() if sys.argv[1:] == ["example"] else markdown())
