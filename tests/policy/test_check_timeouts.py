"""A check that waits runs under its timeout; one that never waits runs without one.

The timeout is asyncio's: it can interrupt a check only at an await. So a check declares
`waits`, the pipeline arms the timeout for those, and this test keeps the declaration true
(a check whose `check()` awaits must say so) and drives a real stall: PostgreSQL holding
the suppression table locked while a recipient is looked up.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
import time

import asyncpg
import pytest

from gateway.policy.pipeline import DATA_CHECKS, MAIL_CHECKS, RCPT_CHECKS
from gateway.protocol import replies
from tests.conftest import PG_DSN, Database, running_harness


def _suspends(cls: type) -> bool:
    source = textwrap.dedent(inspect.getsource(cls.check))  # type: ignore[attr-defined]
    return any(isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith))
               for node in ast.walk(ast.parse(source)))


@pytest.mark.parametrize("cls", [*MAIL_CHECKS, *RCPT_CHECKS, *DATA_CHECKS],
                         ids=lambda c: c.name)
def test_a_check_says_whether_it_waits(cls: type) -> None:
    assert cls.waits is _suspends(cls), (  # type: ignore[attr-defined]
        f"{cls.__name__}.waits must be {_suspends(cls)}: its check() "
        f"{'awaits' if _suspends(cls) else 'never awaits'}")


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_stalled_suppression_lookup_is_a_temporary_failure(tmp_path, pki,
                                                                   database: Database):
    extra = "[policy.recipient-suppressed]\ntimeout = 0.5\n"
    async with running_harness(tmp_path, pki, database, extra=extra) as h:
        locker = await asyncpg.connect(PG_DSN)
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute(
                f"LOCK TABLE {database.schema}.suppressions IN ACCESS EXCLUSIVE MODE")

            def rcpt() -> tuple[int, bytes, float]:
                with h.client() as smtp:
                    smtp.mail("sales@acme.example")
                    start = time.monotonic()
                    code, text = smtp.rcpt("someone@example.org")
                    return code, text, time.monotonic() - start

            code, text, seconds = await asyncio.to_thread(rcpt)
            await transaction.rollback()
        finally:
            await locker.close()
        assert (code, text.decode()) == (replies.TEMPORARY_FAILURE.code,
                                         f"{replies.TEMPORARY_FAILURE.status} "
                                         f"{replies.TEMPORARY_FAILURE.text}")
        assert 0.4 < seconds < 5

        def again() -> int:  # the lock gone, the same recipient is accepted
            with h.client() as smtp:
                smtp.mail("sales@acme.example")
                return smtp.rcpt("someone@example.org")[0]

        assert await asyncio.to_thread(again) == 250
