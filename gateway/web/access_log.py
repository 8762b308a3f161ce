"""uvicorn's access lines, made safe on the record itself, before any handler or formatter.

A request line can carry a capability (the unsubscribe token in `/u/<token>`, the pixel token
in `/p/<token>`, an OAuth `code` and `state` in a query string) and personal data (an address
in a path or query, `%40`-encoded or not). This filter sits on the `uvicorn.access` logger,
so whichever handler or formatter writes the line gets the redacted path: long token-like
segments become `<token>`, address-like segments `<address>`, every query value `…`, and the
client is cut to its network (IPv4 /24, IPv6 /48).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from gateway.observability.logs import anonymize_ip

_TOKEN = re.compile(r"[A-Za-z0-9_.~=+-]{16,}")
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")  # a route's own words: `suppression-lists`


def _token_like(segment: str) -> bool:
    return bool(_TOKEN.fullmatch(segment)) and (len(segment) >= 24
                                                 or not _WORD.fullmatch(segment))
ACCESS_LOGGER = "uvicorn.access"


def safe_path(full_path: str) -> str:
    """A request target with no capability and no address left in it."""
    path, question, query = str(full_path).partition("?")
    segments = []
    for segment in path.split("/"):
        plain = unquote(segment)
        if "@" in plain:
            segments.append("<address>")
        elif _token_like(plain):
            segments.append("<token>")
        else:
            segments.append(segment if segment.isascii() else "<segment>")
    safe = "/".join(segments)
    if question:
        names = [p.partition("=")[0] for p in query.split("&") if p]
        safe += "?" + "&".join(f"{n if re.fullmatch(r'[A-Za-z0-9_.-]{1,40}', n) else '_'}=…"
                               for n in names)
    return safe


def _network(client: str) -> str:
    """uvicorn's "host:port" (an IPv6 host unbracketed) as the host's network."""
    host = client.rpartition(":")[0] if ":" in client else client
    return anonymize_ip(host.strip("[]"))


class AccessLineRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn: '%s - "%s %s HTTP/%s" %d' % (client, method, path with query, version, status)
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            record.args = (_network(str(client)), method, safe_path(str(path)), version, status)
        elif args:  # a line of a shape we do not know: keep the fact, drop the details
            record.msg, record.args = "access line (unrecognised shape)", None
        return True


class _ToRoot(logging.Handler):
    """Hands access lines straight to the root logger's handlers (the gateway's JSON ones),
    whatever another uvicorn in this process did to the `uvicorn` parent logger."""

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


_REDACTOR = AccessLineRedactor()
_TO_ROOT = _ToRoot()


def install(enabled: bool) -> None:
    """One redactor on uvicorn's access logger (idempotent), whoever configured its handlers;
    its lines reach the gateway's handlers only when the access log is on."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addFilter(_REDACTOR)
    logger.handlers = [_TO_ROOT] if enabled else []  # never uvicorn's own text handlers
    logger.propagate = False
    logger.setLevel(logging.INFO if enabled else logging.WARNING)
