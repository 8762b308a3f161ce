"""`gateway serve --workers 2`: two worker processes on the same ports under a supervisor
that restarts a killed worker and stops them all gracefully on SIGTERM (exit 0); on SQLite
and on PostgreSQL, every message accepted reaches the upstream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from tests.conftest import PASSWORD, seed, write_config
from tests.support import messages
from tests.support.sink import RecordingSink

SQLITE_MESSAGES = 160


class Lines:
    """A process's stdout, line by line, read in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: [self._queue.put(line) for line in stream],
                         daemon=True).start()

    def until(self, needle: str, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r}")


def send(port: int, pki, n: int) -> list[object]:
    def one(i: int) -> object:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.starttls(context=pki.client_context())
            smtp.login("campaign", PASSWORD)
            return smtp.sendmail("sales@acme.example", [f"r{i}@example.org"],
                                 messages.simple(to=f"r{i}@example.org"))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def serving_again(log: Path, old: list[int], timeout: float = 30) -> int:
    """The pid of a worker that started serving and is none of `old` (from the logs)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in log.read_text().splitlines():
            if '"worker serving"' in line:
                pid = json.loads(line)["pid"]
                if pid not in old:
                    return int(pid)
        time.sleep(0.1)
    raise AssertionError("no worker started serving again")


def relayed(admin: str) -> list[float]:
    """`ocg_messages_total{action="relayed"}` from six scrapes (new connections each)."""
    values = []
    for _ in range(6):
        with urllib.request.urlopen(admin.replace("/api/v1/", "/metrics"), timeout=10) as r:
            text = r.read().decode()
        (value,) = re.findall(r'^ocg_messages_total\{action="relayed",check=""\} (\S+)$',
                              text, flags=re.M)
        values.append(float(value))
    return values


@contextlib.asynccontextmanager
async def two_workers(tmp_path: Path, pki, database, **env_extra: str
                      ) -> AsyncIterator[tuple[subprocess.Popen[str], Lines, RecordingSink]]:
    """`gateway serve --workers 2` on a seeded database, its logs in stderr.log; killed if
    the test did not stop it, with its sink."""
    sink = await RecordingSink().start()
    path = write_config(tmp_path, pki, database, sink.port)
    engine = create_engine(database.url, schema=database.schema)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    await engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env.update(env_extra)
    with open(tmp_path / "stderr.log", "w") as errors:  # the workers' logs, for a failure
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(path),
                                 "serve", "--workers", "2"], env=env, stdout=subprocess.PIPE,
                                stderr=errors, text=True)
    try:
        yield proc, Lines(proc), sink
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        await sink.stop()


async def test_two_workers_share_the_ports_survive_a_killed_worker_and_stop_cleanly(
        tmp_path, pki, database):
    async with two_workers(tmp_path, pki, database) as (proc, lines, sink):
        # the banner comes once both workers serve
        port = int(lines.until("SMTP submission (STARTTLS)").rsplit(":", 1)[1])
        admin = lines.until("HTTP admin API").split()[3]  # http://127.0.0.1:PORT/api/v1/
        first = [int(pid) for pid in lines.until("workers: 2").split("pids ")[1]
                 .split(";")[0].split()]
        assert await asyncio.to_thread(send, port, pki, 20) == [{}] * 20
        # the node-wide pollers (queue, purges, inbox, webhooks) run in one worker only
        started = [json.loads(line) for line in (tmp_path / "stderr.log").read_text()
                   .splitlines() if '"gateway started"' in line]
        assert sorted(e["node_duties"] for e in started) == [False, True]
        # whichever worker answers a scrape, it counts what both relayed
        assert await asyncio.to_thread(relayed, admin) == [20.0] * 6

        os.kill(first[0], signal.SIGKILL)  # a worker crashes ...
        again = await asyncio.to_thread(serving_again, tmp_path / "stderr.log", first)
        assert again not in first  # ... the supervisor started another, and it serves
        assert await asyncio.to_thread(send, port, pki, 10) == [{}] * 10  # ... still served
        assert await asyncio.to_thread(relayed, admin) == [30.0] * 6  # the dead one's too
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        for pid in (first[1], again):  # no worker outlives the supervisor
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"worker {pid} still running")
        assert sorted(len(r.recipients) for r in sink.received) == [1] * 30


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_two_workers_on_sqlite_share_one_file_without_database_is_locked(
        tmp_path, pki, database):
    """SQLite has one writer at a time; two worker processes write the same file at once
    (audit rows, queued copies, counters, chains) while worker 0's queue runner claims the
    deferred copies. Each waits its turn: every message gets its 250, none a 451 for a
    locked database, and every queued copy is delivered once."""
    later = {f"later{i}@example.org": "451 4.2.1 try later"  # to the delivery queue
             for i in range(SQLITE_MESSAGES)}
    async with two_workers(tmp_path, pki, database, GATEWAY__QUEUE__RETRY_FIRST="1",
                           GATEWAY__QUEUE__POLL_INTERVAL="0.2") as (proc, lines, sink):
        port = int(lines.until("SMTP submission (STARTTLS)").rsplit(":", 1)[1])
        lines.until("workers: 2")
        sink.faults.rcpt.update(later)

        def one(i: int) -> object:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                to = [f"now{i}@example.org", f"later{i}@example.org"]
                return smtp.sendmail("sales@acme.example", to, messages.simple(to=to[0]))

        with ThreadPoolExecutor(16) as pool:
            outcomes = await asyncio.to_thread(lambda: list(pool.map(one, range(SQLITE_MESSAGES))))
        assert outcomes == [{}] * SQLITE_MESSAGES  # every message 250, every recipient taken
        sink.faults.rcpt.clear()  # the retries, from both workers' queue runners, go through
        for _ in range(600):
            if len(sink.received) >= 2 * SQLITE_MESSAGES:
                break
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        log = (tmp_path / "stderr.log").read_text()
        assert "database is locked" not in log and '"level": "error"' not in log
        delivered = sorted(r for m in sink.received for r in m.recipients)
        expected = sorted(f"{kind}{i}@example.org" for kind in ("now", "later")
                          for i in range(SQLITE_MESSAGES))
        assert delivered == expected  # each copy once, none twice by both queue runners
