"""One copy's transaction in two round trips, for an upstream that offers PIPELINING
(RFC 2920): MAIL, RCPT and DATA written together, their three replies read in turn, then
the message and its end in one write.

aiosmtplib's protocol keeps one reply at a time (a second reply in the same segment waits
in its buffer until more bytes come), so for the length of the transaction the connection's
replies are read here: the transport is handed to `_Replies`, which parses every reply as
it arrives, and handed back to aiosmtplib after. If the connection is lost meanwhile,
aiosmtplib's protocol is told, as if it had been reading.

The copy is written as the gateway made it: its lines already end in CRLF (DATA refused bare
CR and LF; every byte the gateway adds ends in CRLF), so it is only dot-stuffed; a copy that
is not in that form goes through aiosmtplib's normalisation first.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque

import aiosmtplib
from aiosmtplib import errors as smtp_errors
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import normalize_message_line_endings

_MAX_REPLY = 32 * 1024  # bytes of one reply (multi-line included): an upstream gone wrong
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")  # nothing a command line may carry


class _Replies(asyncio.Protocol):
    """Reads SMTP replies off the connection while a pipelined transaction owns it."""

    def __init__(self, owner: asyncio.BaseProtocol) -> None:
        self._owner = owner  # aiosmtplib's protocol: told if the connection goes
        self._buffer = bytearray()
        self._replies: deque[tuple[int, str]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: smtp_errors.SMTPException | None = None

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        while True:
            end = self._reply_end()
            if end < 0:
                break
            lines = bytes(self._buffer[:end]).split(b"\n")[:-1]
            del self._buffer[:end]
            try:
                code = int(lines[-1][:3])
            except ValueError:
                self._fail(smtp_errors.SMTPResponseException(-1, "Malformed SMTP response"))
                return
            text = "\n".join(line[4:].strip(b" \t\r").decode("utf-8", "surrogateescape")
                             for line in lines)
            self._replies.append((code, text))
        if len(self._buffer) > _MAX_REPLY:
            self._fail(smtp_errors.SMTPResponseException(-1, "Response too long"))
            return
        self._wake()

    def _reply_end(self) -> int:
        """Where the first complete reply ends (after its last line's LF), or -1."""
        start = 0
        while True:
            newline = self._buffer.find(b"\n", start)
            if newline < 0:
                return -1
            if self._buffer[start + 3:start + 4] != b"-":  # `250 ok`, not `250-more`
                return newline + 1
            start = newline + 1

    def _fail(self, error: smtp_errors.SMTPException) -> None:
        self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(smtp_errors.SMTPServerDisconnected("Connection lost"))
        self._owner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._owner.pause_writing()

    def resume_writing(self) -> None:
        self._owner.resume_writing()

    async def next(self, timeout: float | None) -> tuple[int, str]:
        while not self._replies:
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except TimeoutError:
                raise smtp_errors.SMTPReadTimeoutError(
                    "Timed out waiting for server response") from None
        return self._replies.popleft()


def _wire_form(message: bytes) -> bytes:
    """The copy as DATA carries it: dot-stuffed, ended by `.` on a line of its own."""
    if message.count(b"\r") != message.count(b"\r\n") or \
            message.count(b"\n") != message.count(b"\r\n") or not message.endswith(b"\r\n"):
        message = normalize_message_line_endings(message)
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def _refusal(got: list[tuple[int, str]], sender: str, recipient: str
             ) -> smtp_errors.SMTPResponseException | None:
    """The first refusal among the replies to MAIL, RCPT and DATA, as aiosmtplib raises it."""
    if got and got[0][0] != 250:
        return smtp_errors.SMTPSenderRefused(*got[0], sender)
    if len(got) > 1 and got[1][0] not in (250, 251):
        return smtp_errors.SMTPRecipientRefused(*got[1], recipient)
    if len(got) > 2 and got[2][0] != 354:
        return smtp_errors.SMTPDataError(*got[2])
    return None


async def send(client: aiosmtplib.SMTP, sender: str, options: list[str], recipient: str,
               message: bytes, utf8: bool, timeout: float | None) -> bool:
    """Send one copy pipelined. Raises what aiosmtplib's own calls raise for the same
    replies (SMTPSenderRefused, SMTPRecipientRefused, SMTPDataError, SMTPServerDisconnected,
    SMTPReadTimeoutError). Returns False when the connection was gone before the upstream
    said a word (a pooled one it had closed): nothing of the copy was taken. True when the
    upstream took the copy."""
    encoding = "utf-8" if utf8 else "ascii"
    mail = b" ".join([b"MAIL FROM:" + quote_address(sender).encode(encoding),
                      *(o.encode("ascii") for o in options)])
    rcpt = b"RCPT TO:" + quote_address(recipient).encode(encoding)
    if _CONTROL.search(mail) or _CONTROL.search(rcpt):
        raise ValueError("Command arg contains a prohibited control character")
    transport, owner = client.transport, client.protocol
    if transport is None or owner is None or transport.is_closing():
        return False
    replies = _Replies(owner)
    transport.set_protocol(replies)
    try:
        transport.write(mail + b"\r\n" + rcpt + b"\r\nDATA\r\n")  # type: ignore[attr-defined]
        got: list[tuple[int, str]] = []  # the replies to MAIL, RCPT and DATA
        try:
            while len(got) < 3:
                got.append(await replies.next(timeout))
        except smtp_errors.SMTPServerDisconnected:
            if not got:
                return False  # gone before a word: nothing of the copy was taken
        refusal = _refusal(got, sender, recipient)
        if any(code == 421 for code, _ in got):
            client.close()  # the upstream is closing the connection (as aiosmtplib does)
        elif refusal is not None and got[-1][0] == 354:  # DATA taken after all
            transport.write(b".\r\n")  # type: ignore[attr-defined]  # an empty message
            await replies.next(timeout)
        if refusal is not None:
            raise refusal
        if len(got) < 3:
            raise smtp_errors.SMTPServerDisconnected("Connection lost")
        transport.write(_wire_form(message))  # type: ignore[attr-defined]
        final = await replies.next(timeout)
        if final[0] != 250:
            raise smtp_errors.SMTPDataError(*final)
        return True
    except smtp_errors.SMTPReadTimeoutError:
        client.close()  # replies still on their way would pair with the wrong commands
        raise
    finally:
        if not transport.is_closing():
            transport.set_protocol(owner)
