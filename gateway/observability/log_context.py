"""The ids every log line of one SMTP session or one queued attempt carries.

An SMTP session binds its `session` id when its task starts, and the queue id while it
handles a message; checks and the upstream relay run in that task (or in tasks it starts,
which inherit the context), so their lines carry the same ids without being passed them.
Grep a session id to follow one connection, a queue id to follow one message.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_FIELDS: ContextVar[dict[str, str] | None] = ContextVar("log_fields", default=None)


def new_session_id() -> str:
    return secrets.token_hex(6)


def bind(**fields: str) -> None:
    """Add fields for the rest of the current task (and the tasks it starts)."""
    _FIELDS.set({**(_FIELDS.get() or {}), **fields})


@contextmanager
def bound(**fields: str) -> Iterator[None]:
    """Add fields for the lines logged inside the block only."""
    token = _FIELDS.set({**(_FIELDS.get() or {}), **fields})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def fields() -> dict[str, str]:
    return _FIELDS.get() or {}
