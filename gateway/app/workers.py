"""`gateway serve --workers N`: N worker processes accepting on the same ports.

The supervisor binds every listener's port once (so port 0 means one port for all) and
starts N `gateway serve` workers; each listens on its own SO_REUSEPORT socket on those ports,
and the kernel spreads new connections over them. The supervisor does nothing else: no database, no
event handling. A worker that dies is started again (at most once a second per slot). On
SIGTERM or SIGINT each worker is asked to stop: its `/readyz` turns 503, it stops
accepting, answers new commands `421 4.3.2` and lets in-flight transactions finish; the
supervisor waits for all of them and exits 0. SIGHUP is passed on (each worker reloads). A
worker whose supervisor dies is stopped too (Linux parent-death signal).

Everything the workers share lives in the database (and Redis): the queue, the audit
chains (one per process), sending-limit counters; nothing needs them to talk to each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import multiprocess

from gateway.config import Config
from gateway.errors import port_unavailable
from gateway.web.server import bind_tcp

log = logging.getLogger("gateway.workers")
_PR_SET_PDEATHSIG = 1
READY_FD = "GATEWAY_READY_FD"  # the pipe a worker writes to once it serves
_RESTART_SPACING = 1.0


def bind_listeners(config: Config, roles: tuple[str, ...]) -> dict[str, socket.socket]:
    """The listening sockets of `roles`, by the names the workers know them by."""
    smtp, http, unsub = config.smtp, config.http, config.unsubscribe
    wanted: list[tuple[str, str, int]] = []
    if "smtp" in roles:
        wanted.append(("submission", smtp.listen, smtp.submission_port))
        if smtp.implicit_tls:
            wanted.append(("implicit", smtp.listen, smtp.implicit_tls_port))
        if unsub.mailto_listen:
            wanted.append(("mailto", unsub.mailto_listen, unsub.mailto_port))
    if "public" in roles:
        wanted.append(("public", http.public_listen, http.public_port))
    if "admin" in roles:
        wanted.append(("admin", http.admin_listen, http.admin_port))
    sockets: dict[str, socket.socket] = {}
    try:
        for name, host, port in wanted:
            # bound, not listening: it holds the port (port 0 becomes one port for all);
            # each worker listens on a socket of its own on it (SO_REUSEPORT)
            sockets[name] = bind_tcp(host, port, reuse_port=True, listen=False)
    except OSError as exc:
        for sock in sockets.values():
            sock.close()
        raise port_unavailable(_LISTENER_NAMES[name], host, port, exc) from None
    return sockets


# How an operator knows each socket (the names of errors and settings)
_LISTENER_NAMES = {"submission": "submission", "implicit": "implicit TLS", "mailto": "mailto",
                   "public": "public HTTP", "admin": "admin HTTP"}


def inherited(spec: str) -> dict[str, socket.socket]:
    """`submission=3,admin=4` (what the supervisor passes): for each, this worker's own
    listening socket on the same address, so the kernel balances new connections between
    the workers instead of waking all of them for each."""
    found = {}
    for part in filter(None, spec.split(",")):
        name, _, fd = part.partition("=")
        held = socket.socket(fileno=int(fd))
        host, port = held.getsockname()[:2]
        held.close()
        found[name] = bind_tcp(host, port, reuse_port=True)
    return found


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the supervisor goes (graceful stop). Linux
    only; elsewhere a killed supervisor leaves its workers to the service manager."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, config_path: str | None, role: str, workers: int,
                 sockets: Mapping[str, socket.socket], deadline: float = 60.0) -> None:
        self._config_path = config_path
        self._role = role
        self._sockets = dict(sockets)
        self._deadline = deadline
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * workers
        self._started: list[float] = [0.0] * workers
        self._ready: list[bool] = [False] * workers
        self._pipes: list[int | None] = [None] * workers
        self._backoff: list[float] = [_RESTART_SPACING] * workers
        # every worker's metrics, read by whichever worker answers a scrape
        self._metrics_dir = Path(tempfile.mkdtemp(prefix="ocg-metrics-"))
        self.restarts = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p is not None]

    def _spawn(self, slot: int) -> None:
        spec = ",".join(f"{name}={sock.fileno()}" for name, sock in self._sockets.items())
        args = [sys.executable, "-m", "gateway"]
        if self._config_path:
            args += ["--config", self._config_path]
        args += ["serve", "--role", self._role, "--worker-sockets", spec]
        ready_read, ready_write = os.pipe()  # the worker writes a byte once it serves
        env = {**os.environ, "GATEWAY_WORKER": str(slot), READY_FD: str(ready_write),
               "GATEWAY_WORKERS": str(len(self._procs)),
               "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir)}
        proc = subprocess.Popen(args, pass_fds=[*(s.fileno() for s in self._sockets.values()),
                                                ready_write],
                                stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent)
        os.close(ready_write)
        self._close_pipe(slot)
        self._pipes[slot] = ready_read
        self._ready[slot] = False
        asyncio.get_running_loop().add_reader(ready_read, self._on_ready, slot)
        self._procs[slot] = proc
        self._started[slot] = time.monotonic()
        log.info("worker started", extra={"worker": slot, "pid": proc.pid})

    def _on_ready(self, slot: int) -> None:
        fd = self._pipes[slot]
        said = os.read(fd, 1) if fd is not None else b""
        self._close_pipe(slot)
        if said == b"1":  # not the end of file a worker that died leaves
            self._ready[slot] = True
            self._backoff[slot] = _RESTART_SPACING
            proc = self._procs[slot]
            log.info("worker serving", extra={"worker": slot,
                                              "pid": proc.pid if proc else None})

    def _close_pipe(self, slot: int) -> None:
        fd = self._pipes[slot]
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            self._pipes[slot] = None

    async def run(self, stop: asyncio.Event, reload: asyncio.Event,
                  serving: Callable[[], None] = lambda: None) -> int:
        """Until `stop`; `serving` is called once every worker first serves."""
        for slot in range(len(self._procs)):
            self._spawn(slot)
        first_start = True
        while not stop.is_set():
            if first_start and all(self._ready):
                first_start = False
                serving()
            if first_start and any(p is not None and p.poll() is not None and not r
                                   for p, r in zip(self._procs, self._ready, strict=True)):
                # a worker that cannot even start (configuration, database): say so and
                # stop, rather than restart it forever
                failed = next(p for p, r in zip(self._procs, self._ready, strict=True)
                              if p is not None and p.poll() is not None and not r)
                log.error("a worker failed to start; stopping", extra={
                    "returncode": failed.returncode})
                await self._stop_all()
                return failed.returncode or 1
            if reload.is_set():
                reload.clear()
                self._signal(signal.SIGHUP)
            for slot, proc in enumerate(self._procs):
                if proc is None or proc.poll() is None:
                    continue
                if time.monotonic() - self._started[slot] < self._backoff[slot]:
                    continue  # a worker that dies at once is not restarted in a tight loop
                if not self._ready[slot]:  # it died starting: wait longer each time
                    self._backoff[slot] = min(self._backoff[slot] * 2, 30.0)
                log.error("worker died; starting another", extra={
                    "worker": slot, "pid": proc.pid, "returncode": proc.returncode,
                    "alert": "ops"})
                self.restarts += 1
                multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                    proc.pid, str(self._metrics_dir))
                self._spawn(slot)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        return await self._stop_all()

    def _signal(self, signum: int) -> None:
        for proc in self._procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signum)

    async def _stop_all(self) -> int:
        self._signal(signal.SIGTERM)
        end = time.monotonic() + self._deadline
        while time.monotonic() < end and any(
                p is not None and p.poll() is None for p in self._procs):
            await asyncio.sleep(0.1)
        failed = 0
        for slot, proc in enumerate(self._procs):
            if proc is None:
                continue
            if proc.poll() is None:
                log.error("worker did not stop in time; killed", extra={"worker": slot})
                proc.kill()
                proc.wait()
                failed += 1
            elif proc.returncode not in (0, -signal.SIGTERM):
                # -SIGTERM: stopped while still starting, before it could accept anything
                failed += 1
        for slot in range(len(self._procs)):
            self._close_pipe(slot)
        for sock in self._sockets.values():
            sock.close()
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        return 0 if failed == 0 else 1


def runs_node_duties() -> bool:
    """Whether this process runs the node-wide pollers (the delivery queue, retention
    purges, the inbox reader, webhooks, releases, alert checks): once per node, so alone or
    in the supervisor's worker 0; the other workers only serve."""
    return os.environ.get("GATEWAY_WORKER", "0") == "0"


def worker_count() -> int:
    """How many workers of one supervisor share this node (1 when run alone)."""
    count = os.environ.get("GATEWAY_WORKERS", "1")
    return max(1, int(count)) if count.isdigit() else 1


def tell_ready() -> None:
    """In a worker, once it serves: tell the supervisor (nothing when run alone)."""
    fd = os.environ.pop(READY_FD, "")
    if fd.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(fd), b"1")
            os.close(int(fd))
