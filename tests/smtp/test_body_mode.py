"""The tenant's body side: `add` (the footer is added) or `require` (the tool writes its own,
and a message without an unsubscribe link and the postal address is refused)."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from tests.conftest import OTHER_PASSWORD
from tests.support import messages

POSTAL = "Acme Corp, 1 Main Street, Springfield"


def with_body(text: str, html: bool = False) -> bytes:
    kind = "html" if html else "plain"
    return messages.simple().split(b"\r\n\r\n", 1)[0].replace(
        b"text/plain", f"text/{kind}".encode()) + b"\r\n\r\n" + text.encode() + b"\r\n"


async def refused(h, message: bytes) -> tuple[int, bytes] | None:
    try:
        await h.send(message, ["a@example.org"])
    except smtplib.SMTPDataError as exc:
        return exc.smtp_code, exc.smtp_error
    return None


@pytest.fixture
async def require(harness):
    await harness.store().set_tenant_setting("acme", "body", "require", "test")
    await harness.refresh()
    return harness


@pytest.mark.parametrize("text, html", [
    ("Hi. Bye.", False),
    (f"Hi. {POSTAL}", False),  # the address, but no link
    ("Unsubscribe: https://tool.example/u/1", False),  # a link, but no address
    (f'<p>Hi</p><p>{POSTAL}</p><a href="https://tool.example/">home</a>', True),
])
async def test_require_refuses_a_body_without_link_and_address(require, text, html):
    code, reply = await refused(require, with_body(text, html))
    assert code == 550 and reply.startswith(b"5.7.1")
    assert require.sink.received == []


@pytest.mark.parametrize("text, html", [
    (f"Hi.\r\n\r\nUnsubscribe: https://tool.example/u/1\r\n{POSTAL}", False),
    ('<p>Hi</p><p><a href="https://tool.example/u/1">Abmelden</a></p>'
     "<p>Acme Corp,\r\n1 Main Street, Springfield</p>", True),
])
async def test_require_passes_the_tools_own_footer_untouched(require, text, html):
    message = with_body(text, html)
    assert await refused(require, message) is None
    head, body = require.sink.received[0].content.split(b"\r\n\r\n", 1)
    assert body == message.split(b"\r\n\r\n", 1)[1]  # no footer added
    assert b"List-Unsubscribe: <https://links.gw.test/u/" in head  # the headers always


async def test_no_postal_address_means_the_message_waits(harness):
    await harness.store().set_tenant_setting("other", "postal_address", "", "test")
    await harness.refresh()

    def run() -> tuple[int, bytes]:
        with harness.client(user="other-tool", password=OTHER_PASSWORD) as smtp:
            smtp.mail("ceo@other.example")
            smtp.rcpt("a@example.org")
            return smtp.data(messages.simple(sender="ceo@other.example"))
    code, reply = await asyncio.to_thread(run)
    assert code == 451 and reply.startswith(b"4.3.5")  # an operator's fix; the tool retries
    assert harness.sink.received == []
