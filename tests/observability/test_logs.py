"""Log redaction is enforced in one place: whatever a caller passes, a log line holds no
address, no full client IP (IPv4 or IPv6) and no API key, and times and networks survive."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.observability.logs import HumanFormatter, JsonFormatter, wants_human
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


def test_the_human_format_carries_the_same_redacted_fields():
    record = logging.LogRecord("gateway.smtp", logging.INFO, __file__, 1,
                               "refused bob@example.org", None, None)
    record.client, record.code, record.note = "198.51.100.23", 550, "two words"
    text = HumanFormatter().format(record)
    assert "bob@" not in text and "198.51.100.23" not in text
    assert "info    gateway.smtp  refused <address>" in text
    assert "client=198.51.100.0/24 code=550 note=\"two words\"" in text
    assert text[2] == ":" and "{" not in text  # a time of day, not a JSON object


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_stays_the_default_away_from_a_terminal_and_development():
    assert not wants_human("auto", development=False, stream=io.StringIO())
    assert wants_human("auto", development=False, stream=Terminal())
    assert wants_human("auto", development=True, stream=io.StringIO())
    assert not wants_human("json", development=True, stream=Terminal())
    assert wants_human("human", development=False, stream=io.StringIO())


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


async def test_every_refusal_is_one_info_line_with_code_and_digest(harness: Harness,
                                                                   lines: Lines):
    def refusals() -> list[dict]:
        return [e for e in lines.entries if e["event"].startswith("refused at")]

    def session() -> tuple[int, int]:
        with harness.client() as smtp:
            smtp.mail("sales@acme.example")
            rcpt = smtp.rcpt("a%b@example.org")[0]  # relay syntax: 553 at RCPT
            mail = smtp.docmd("MAIL", "FROM:<ceo@other.example>")[0]  # nested MAIL: 503
            return rcpt, mail

    rcpt, _ = await asyncio.to_thread(session)
    assert rcpt == 553
    (line,) = refusals()
    assert line["level"] == "info" and line["stage"] == "RCPT" and line["code"] == 553
    assert line["status"] == "5.1.3"
    assert line["recipient_digest"] == harness.gateway.handler.digest("a%b@example.org")
    assert line["tenant_id"] is not None and "@" not in json.dumps(line)

    harness.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 no such user"
    code, _ = await harness.data_reply(["gone@example.org"])
    assert code == 550
    data = [e for e in refusals() if e["stage"] == "DATA"]
    assert len(data) == 1 and data[0]["code"] == 550 and data[0]["status"] == "5.1.1"
    assert data[0]["recipient_digests"] == [harness.gateway.handler.digest("gone@example.org")]
    assert not [e for e in lines.entries if e["event"] == "message relayed"]
