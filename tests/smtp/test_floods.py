"""Floods: a session's command budget counts every verb together (a NOOP/RSET/HELP rotation
gets no more than one verb would), and one client address holds a bounded number of open
connections — the PROXY client behind a balancer, not the balancer."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from gateway.protocol import replies
from tests.conftest import Pki, running_harness
from tests.support.proxy import BALANCER, v1

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def line(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\r\n"):
        try:
            chunk = sock.recv(1024)
        except ConnectionResetError:  # the gateway closed with our next command unread
            chunk = b""
        if not chunk:
            return data.decode() or "closed"
        data += chunk
    return data.decode().strip()


async def test_a_rotation_of_cheap_verbs_shares_one_budget(tmp_path: Path, pki: Pki, database,
                                                            monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__SMTP__MAX_COMMANDS", "12")
    async with running_harness(tmp_path, pki, database) as h:
        def run() -> list[str]:
            with socket.create_connection(("127.0.0.1", h.port), 5) as s:
                line(s)
                answers = []
                for i in range(20):
                    try:
                        s.sendall([b"NOOP\r\n", b"RSET\r\n", b"HELP\r\n"][i % 3])
                    except (BrokenPipeError, ConnectionResetError):
                        answers.append("closed")
                        break
                    answers.append(line(s))
                    if answers[-1] == "closed":
                        break
                return answers

        answers = await asyncio.to_thread(run)
    assert all(a.startswith(("250", "214")) for a in answers[:12]), answers
    assert answers[12].startswith(str(replies.TOO_MANY_COMMANDS)[:9]), answers
    assert answers[-1] == "closed" and len(answers) <= 14


async def test_one_client_holds_a_bounded_number_of_connections(
        tmp_path: Path, pki: Pki, database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__SMTP__MAX_CONNECTIONS_PER_CLIENT", "3")
    async with running_harness(tmp_path, pki, database) as h:
        def run() -> tuple[list[str], str, str]:
            held = [socket.create_connection(("127.0.0.1", h.port), 5) for _ in range(3)]
            banners = [line(s) for s in held]
            refused = _over_cap(h.port)
            held.pop().close()
            time.sleep(0.2)  # the gateway sees the close
            with socket.create_connection(("127.0.0.1", h.port), 5) as again:
                after = line(again)
            for s in held:
                s.close()
            return banners, refused, after

        banners, refused, after = await asyncio.to_thread(run)
    assert all(b.startswith("220 ") for b in banners)
    assert refused == str(replies.TOO_MANY_CONNECTIONS)
    assert after.startswith("220 ")


def _over_cap(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        return line(s)


async def test_behind_a_balancer_the_cap_is_per_real_client(tmp_path: Path, pki: Pki, database,
                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__SMTP__PROXY_PROTOCOL", "true")
    monkeypatch.setenv("GATEWAY__SMTP__LOAD_BALANCERS", f'["{BALANCER}/32"]')
    monkeypatch.setenv("GATEWAY__SMTP__MAX_CONNECTIONS_PER_CLIENT", "2")
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.submission

        def open_as(client: str) -> tuple[socket.socket, str]:
            s = socket.create_connection(("127.0.0.1", port), 5, source_address=(BALANCER, 0))
            s.sendall(v1(client, port))
            return s, line(s)

        def run() -> list[str]:
            opened = [open_as("198.51.100.7") for _ in range(3)]
            opened.append(open_as("198.51.100.8"))
            answers = [a for _, a in opened]
            for s, _ in opened:
                s.close()
            return answers

        answers = await asyncio.to_thread(run)
    assert answers[0].startswith("220 ") and answers[1].startswith("220 ")
    assert answers[2] == str(replies.TOO_MANY_CONNECTIONS)
    assert answers[3].startswith("220 ")  # another client behind the same balancer
