"""What may travel on an SMTP line: no NUL in a command, no NUL, bare CR or bare LF in DATA.

Receivers disagree on where a line or a message ends when these bytes appear
(`<CR><LF><NUL>.<CR><LF>` ends the data for a server that drops NULs, not for us): a message
that holds one could be split in two further along, the second half unchecked. Every SMTP
listener of the gateway (submission, implicit TLS, inbound) refuses them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP

from gateway.protocol import replies
from gateway.protocol.replies import Reply


def data_fault(raw: bytes) -> Reply | None:
    """The refusal for message data whose line structure is ambiguous, or None."""
    if b"\0" in raw:
        return replies.NUL_IN_DATA
    crlf = raw.count(b"\r\n")
    if raw.count(b"\r") != crlf or raw.count(b"\n") != crlf:
        return replies.BARE_LINE_ENDING
    return None


def guard_commands(server: SMTP, budget: int) -> dict[str, Any]:
    """`server`'s command table with every command refusing an argument that holds NUL, and
    one budget for all commands of a session (instead of aiosmtpd's `command_call_limit`,
    which counts each verb apart: a flood alternating NOOP, RSET and HELP would get that many
    times the budget).

    (A NUL in the command word itself already finds no command and is refused as unknown.)
    """
    left = [budget]

    def guarded(method: Callable[[str | None], Awaitable[None]]
                ) -> Callable[[str | None], Awaitable[None]]:
        async def run(arg: str | None) -> None:
            left[0] -= 1
            if left[0] < 0:
                await server.push(str(replies.TOO_MANY_COMMANDS))
                if server.transport is not None:
                    server.transport.close()
                return
            if arg is not None and "\0" in arg:
                await server.push(str(replies.NUL_IN_COMMAND))
                return
            await method(arg)
        return run

    return {name: guarded(method) for name, method in server._smtp_methods.items()}
