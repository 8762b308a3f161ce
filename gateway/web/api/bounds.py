"""Bounds for numbers and times a client sends, so out-of-range input is a 422 naming the
field, never an overflow deep in the store (a 5xx).

Cursors are database ids (signed 64-bit); unix times and datetimes stay within years
1970-9999, which every part of the gateway (SQLite, PostgreSQL, Python's datetime) can hold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

from gateway.optout.suppressions import LAST_EXPIRY

ID_MAX = 2**63 - 1
UNIX_MAX = LAST_EXPIRY  # 9999-12-31T23:59:59Z


def _moment(value: datetime) -> datetime:
    """A datetime in UTC; a naive one is taken as UTC. Out of range: a ValueError (422)."""
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("must be between years 1970 and 9999") from None
    if not 1970 <= moment.year <= 9999:
        raise ValueError("must be between years 1970 and 9999")
    return moment


RowId = Annotated[int, Path(ge=1, le=ID_MAX, description="a database id")]
Cursor = Annotated[int, Query(ge=0, le=ID_MAX, description="pass `next_after`")]
UnixSeconds = Annotated[int, Field(ge=0, le=UNIX_MAX, description="unix seconds")]
Moment = Annotated[datetime, AfterValidator(_moment)]
