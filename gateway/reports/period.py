"""A report's period, as an operator types it: `--from 2026-11-01 --to 2026-12-01` (the end
is exclusive: that is November), or ISO times with a zone; UTC when none is given."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.errors import InvalidValue

DEFAULT_DAYS = 30
LONGEST = timedelta(days=3660)


def moment(text: str, name: str) -> datetime:
    """A date (midnight UTC) or an ISO time, as an operator types it; UTC when no zone."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue(f"{name} must be a date (2026-11-01) or an ISO time "
                           f"(2026-11-01T09:30:00Z), not {text[:40]!r}.") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def period(start: str | None, end: str | None, now: datetime | None = None
           ) -> tuple[datetime, datetime]:
    """[start, end): the end defaults to now, the start to 30 days before the end."""
    stop = moment(end, "--to") if end else (now or datetime.now(UTC))
    begin = moment(start, "--from") if start else stop - timedelta(days=DEFAULT_DAYS)
    if begin >= stop:
        raise InvalidValue("The period is empty: --from must come before --to.")
    if stop - begin > LONGEST:
        raise InvalidValue("A report covers at most ten years.")
    return begin, stop
