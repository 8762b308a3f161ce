"""Serving an app with uvicorn on a socket we bind (port 0 works), inside the gateway's loop.

uvicorn's access log is off unless `http.access_log`; then its lines go through the gateway's
JSON logs (never uvicorn's own text handlers) after access_log.py took every token, address
and query value out of the request line. The public app is wrapped in AnonymizeClient, and
the formatter cuts any IP to its network. uvicorn's own X-Forwarded-For handling is off: the
anonymizer applies the trusted-proxy rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Generator
from typing import Any

import uvicorn

from gateway.web import access_log


def bind_tcp(host: str, port: int, *, reuse_port: bool = False,
             listen: bool = True) -> socket.socket:
    """A TCP socket bound to (host, port), listening unless told not to (port 0: any free
    port). `reuse_port`: one of several sockets on the same port, each worker's own, the
    kernel spreading new connections evenly over the listening ones (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and
    # without it every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(1024)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: `gateway serve` owns SIGTERM/SIGINT/SIGHUP
    and stops the listeners in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _Config(uvicorn.Config):
    """uvicorn's configuration, serving TLS with a context we keep: uvicorn would build its
    own from file names and never read them again; ours is reloaded in place (SIGHUP), and
    the connections already open keep theirs."""

    def __init__(self, app: Any, tls: ssl.SSLContext | None, **kw: Any) -> None:
        super().__init__(app, **kw)
        self._tls = tls

    def load(self) -> None:
        super().load()
        self.ssl = self._tls


class HttpListener:
    def __init__(self, app: Any, host: str, port: int, access_log: bool = False,
                 sock: socket.socket | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self._app = app
        self._tls = tls
        self._sock = sock  # bound by the supervisor, shared by every worker
        self._host = host
        self._port = port
        self._access_log = access_log
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        sock = self._sock or bind_tcp(self._host, self._port)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = _Config(self._app, self._tls, server_header=False, date_header=True,
                         lifespan="off", timeout_graceful_shutdown=10,
                         proxy_headers=False,  # AnonymizeClient reads X-Forwarded-For
                         access_log=self._access_log, log_config=None)
        access_log.install(self._access_log)  # after uvicorn's own logging set-up
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]),
                                         name=f"http-{self._host}:{self.port}")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raise what stopped it
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server, self._task = None, None
