"""What may travel on an SMTP line: no NUL in a command, no NUL, bare CR or bare LF in DATA.

Receivers disagree on where a line or a message ends when these bytes appear
(`<CR><LF><NUL>.<CR><LF>` ends the data for a server that drops NULs, not for us): a message
that holds one could be split in two further along, the second half unchecked. Every SMTP
listener of the gateway (submission, implicit TLS, inbound) refuses them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.smtp import replies
from gateway.smtp.replies import Reply


def data_fault(raw: bytes) -> Reply | None:
    """The refusal for message data whose line structure is ambiguous, or None."""
    if b"\0" in raw:
        return replies.NUL_IN_DATA
    crlf = raw.count(b"\r\n")
    if raw.count(b"\r") != crlf or raw.count(b"\n") != crlf:
        return replies.BARE_LINE_ENDING
    return None


def guard_commands(methods: dict[str, Any], push: Callable[[str], Awaitable[None]],
                   budget: int, close: Callable[[], None]) -> dict[str, Any]:
    """aiosmtpd's command table with every command refusing an argument that holds NUL, and
    one budget for all commands of a session: aiosmtpd's own limit counts each verb apart, so
    a flood that alternates NOOP, RSET and HELP would get that many times the budget.

    (A NUL in the command word itself already finds no command and is refused as unknown.)
    """
    left = [budget]

    def guarded(method: Callable[[str | None], Awaitable[None]]
                ) -> Callable[[str | None], Awaitable[None]]:
        async def run(arg: str | None) -> None:
            left[0] -= 1
            if left[0] < 0:
                await push(str(replies.TOO_MANY_COMMANDS))
                close()
                return
            if arg is not None and "\0" in arg:
                await push(str(replies.NUL_IN_COMMAND))
                return
            await method(arg)
        return run

    return {name: guarded(method) for name, method in methods.items()}
