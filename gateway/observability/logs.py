"""Structured logs: one JSON object per line, with the `extra` fields a call passes; or, for
a person at a terminal or in development, one readable line with the same fields.

Callers pass ids (queue id, tenant id, check name), counts and digests, never a recipient
address, a message body, a secret or a full client IP.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
from datetime import UTC, datetime

from gateway.observability import log_context

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# The one place redaction is enforced, whatever a caller passed: addresses, full client IPs
# (cut to their network) and the gateway's own API keys never reach a log line.
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|/\d)")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:/])")
_API_KEY = re.compile(r"\bocg_([0-9a-f]{12})_[\w-]{16,}")


def _network(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match.group(0))
    except ValueError:
        return match.group(0)  # a time of day, not an address
    return anonymize_ip(match.group(0))


def redact(value: object) -> object:
    """`value` with addresses, full IPs and API keys taken out (strings, and inside lists
    and dicts)."""
    if isinstance(value, str):  # each pattern needs its character: most values have none
        if "ocg_" in value:
            value = _API_KEY.sub(r"ocg_\1_<redacted>", value)
        if "@" in value:
            value = _ADDRESS.sub("<address>", value)
        if "." in value:
            value = _IPV4.sub(_network, value)
        if ":" in value:
            value = _IPV6.sub(_network, value)
        return value
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _entry(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, object]:
    """The record's fields, every value through `redact` (both formats print this)."""
    entry: dict[str, object] = {
        "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": redact(record.getMessage()),
    }
    entry.update(log_context.fields())  # session and queue ids; a caller's own win below
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            entry[key] = redact(value if isinstance(value, str | int | float | bool | list
                                               | tuple | dict) or value is None
                                else str(value))
    if record.exc_info:
        entry["traceback"] = redact(formatter.formatException(record.exc_info))
    return entry


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_entry(self, record), default=str)


class HumanFormatter(logging.Formatter):
    """`09:24:01 info  gateway.smtp  message relayed  queue_id=B5XX tenant_id=1`: the same
    redacted fields as the JSON line, for a person reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(self, record)
        at = str(entry.pop("at"))[11:19]
        level, logger, event = entry.pop("level"), entry.pop("logger"), entry.pop("event")
        traceback = entry.pop("traceback", None)
        fields = " ".join(f"{k}={_plain(v)}" for k, v in entry.items())
        line = f"{at} {level:<7} {logger}  {event}" + (f"  {fields}" if fields else "")
        return line + (f"\n{traceback}" if traceback else "")


def _plain(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if not text or any(c in text for c in ' ="\n') else text


def wants_human(log_format: str, development: bool, stream: object = None) -> bool:
    """`auto`: readable lines in development or when stderr is a terminal; JSON otherwise
    (the production default a log shipper reads)."""
    if log_format != "auto":
        return log_format == "human"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return development or bool(isatty and isatty())


def setup(level: str = "info", handler: logging.Handler | None = None,
          human: bool = False) -> None:
    """JSON lines (or readable ones) on stderr (or `handler`), at `level` for our loggers
    only."""
    handler = handler or logging.StreamHandler(sys.stderr)
    handler.setFormatter(HumanFormatter() if human else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs every command line at INFO, AUTH payloads included at DEBUG, and the
    # database drivers and HTTP clients log query parameters, URLs and bodies at DEBUG: their
    # details are not ours to print, whatever `log_level` asks for.
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(logging.WARNING)


_CHATTY = ("mail.log", "alembic", "aiosqlite", "sqlalchemy", "asyncpg", "httpx", "httpcore",
           "hpack", "multipart", "uvicorn.error", "redis", "asyncio")


def anonymize_ip(peer: object) -> str:
    """Client IP for logs: IPv4 to /24, IPv6 to /48."""
    host = peer[0] if isinstance(peer, tuple) else str(peer)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
