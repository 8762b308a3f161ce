"""Log redaction is enforced in one place: whatever a caller passes, a log line holds no
address, no full client IP (IPv4 or IPv6) and no API key, and times and networks survive."""

from __future__ import annotations

import json
import logging

from gateway.logs import JsonFormatter


def line(message: str, exc: BaseException | None = None, **extra: object) -> dict:
    record = logging.LogRecord("gateway.test", logging.WARNING, __file__, 1, message, None,
                               (type(exc), exc, None) if exc else None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_addresses_ips_and_keys_never_reach_a_line():
    entry = line("refused bob@example.org from 203.0.113.7",
                 ValueError("bad rcpt <carol@example.net> at 2001:db8::42"),
                 client="198.51.100.23", recipients=["dave@example.com"],
                 detail={"key": "ocg_0123456789ab_abcdefghijklmnopqrstuvwxyz12"},
                 network="203.0.113.0/24", when="17:03:23")
    text = json.dumps(entry)
    for secret in ("bob@", "carol@", "dave@", "203.0.113.7", "198.51.100.23", "2001:db8::42",
                   "abcdefghijklmnop"):
        assert secret not in text, secret
    assert entry["client"] == "198.51.100.0/24" and entry["network"] == "203.0.113.0/24"
    assert entry["when"] == "17:03:23" and entry["recipients"] == ["<address>"]
    assert entry["detail"]["key"] == "ocg_0123456789ab_<redacted>"
    assert "2001:db8::/48" in entry["traceback"]
