"""Log redaction is enforced in one place: whatever a caller passes, a log line holds no
address, no full client IP (IPv4 or IPv6) and no API key, and times and networks survive."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.logs import JsonFormatter
from tests.conftest import Harness


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


class Lines(logging.Handler):
    """Every line the gateway logs, as the JSON an operator's collector would get."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.entries: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler, root = Lines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_one_message_is_followed_across_smtp_upstream_and_queue(harness: Harness,
                                                                      lines: Lines):
    harness.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 no such user"
    harness.sink.faults.rcpt["busy@example.org"] = "451 4.2.1 try later"
    code, text = await harness.data_reply(
        ["lead@example.org", "gone@example.org", "busy@example.org"])
    assert code == 250, text
    code, _ = await harness.data_reply(["other@example.org"])  # a second connection
    assert code == 250

    relayed = [e for e in lines.entries if e["event"] == "message relayed"]
    assert len(relayed) == 2
    first, second = relayed
    assert first["session"] != second["session"] and first["queue_id"] != second["queue_id"]
    session, queue_id = first["session"], first["queue_id"]
    of_session = [e for e in lines.entries if e.get("session") == session]
    events = [e["event"] for e in of_session]
    assert "auth ok" in events and "upstream refused copy" in events  # login, then upstream
    refused = next(e for e in of_session if e["event"] == "upstream refused copy")
    assert refused["queue_id"] == queue_id  # the relay's line names the message it was for
    auth = next(e for e in of_session if e["event"] == "auth ok")
    assert "queue_id" not in auth  # bound only while the message is handled

    # the deferred copy's retry, minutes later in the queue worker, carries the same queue id
    del harness.sink.faults.rcpt["busy@example.org"]
    await harness.gateway.worker.run_once(datetime.now(UTC) + timedelta(minutes=30))
    retried = [e for e in lines.entries if e["event"].startswith("queued copy")]
    assert retried and retried[0]["queue_id"] == queue_id and "session" not in retried[0]
    ours = [e for e in lines.entries if e["logger"].startswith("gateway")]
    assert not any("@" in json.dumps(e) for e in ours)  # no address on any line
