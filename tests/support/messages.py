"""Real RFC 5322 messages, written as literals (as Mailman's tests do)."""

from __future__ import annotations

import asyncio
from typing import Any


def simple(sender: str = "sales@acme.example", to: str = "alice@example.org",
           subject: str = "Hello", body: str = "Hi Alice,\r\n\r\nA short note.\r\n",
           extra: str = "") -> bytes:
    return (
        f"From: Sales <{sender}>\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <m1@acme.example>\r\n"
        f"{extra}"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}"
    ).encode()


def multipart(sender: str = "sales@acme.example") -> bytes:
    return (
        f"From: {sender}\r\n"
        "To: alice@example.org\r\n"
        "Subject: Multipart\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <m2@acme.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n\r\nplain\r\n"
        "--b1\r\n"
        "Content-Type: text/html\r\n\r\n<p>html</p>\r\n"
        "--b1--\r\n"
    ).encode()


def of_size(size: int, sender: str = "sales@acme.example") -> bytes:
    head = simple(sender=sender, body="")
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head)) // len(line) + 1)


UTF8_RECIPIENT = "jöe@example.org"


async def send_to_utf8_recipient(h: Any) -> tuple[int, bytes]:
    """One SMTPUTF8 transaction (RFC 6531) to UTF8_RECIPIENT through a test harness's
    gateway, logged in: the DATA reply."""
    def run() -> tuple[int, bytes]:
        with h.client() as smtp:
            smtp.mail("sales@acme.example", ["SMTPUTF8"])
            smtp.rcpt(UTF8_RECIPIENT)
            return smtp.data(simple(to=UTF8_RECIPIENT))  # its To field in UTF-8

    return await asyncio.to_thread(run)
