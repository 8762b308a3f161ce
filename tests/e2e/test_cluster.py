"""Two gateway nodes (separate processes and ports) on one PostgreSQL, behind Debian's
HAProxy with PROXY protocol, driven by real SMTP clients:

- an unsubscribe answered by node A is refused at RCPT by node B on the very next message;
- a node killed with SIGKILL mid-load: every message a client saw 250 for is at the
  upstream, every other one got a 4xx or an error (none lost silently);
- a rolling restart: no 5xx, no message lost; the 4xx and errors are counted and each
  message retried by its client until accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from gateway.store.directory import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from tests.conftest import PASSWORD, PG_DSN, Database, Pki, seed, write_config
from tests.smtp.test_proxy_protocol import BALANCER, Proxied, v2
from tests.support import messages
from tests.support.sink import RecordingSink

pytestmark = pytest.mark.parametrize("database", ["postgres"], indirect=True)
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
LINK = re.compile(rb"List-Unsubscribe: <(https://links\.gw\.test/u/[a-z2-7]+)>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One `gateway serve` process with fixed ports (a restart keeps them)."""

    def __init__(self, name: str, config: Path, env: dict[str, str], log: Path) -> None:
        self.name, self.config, self.log = name, config, log
        self.smtp, self.public = free_port(), free_port()
        self.env = {**env, "GATEWAY__SMTP__SUBMISSION_PORT": str(self.smtp),
                    "GATEWAY__HTTP__PUBLIC_PORT": str(self.public),
                    "GATEWAY__AUDIT__CHAIN": name}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), "serve",
                 "--workers", "1"],  # a node is one process here: SIGKILL kills all of it
                env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.public), 0.2):
                return
            time.sleep(0.05)
        raise AssertionError(f"node {self.name} did not start")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=90)


@contextlib.contextmanager
def haproxy(tmp_path: Path, nodes: list[Node]) -> Iterator[int]:
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is required (scripts/install-system-packages.sh)")
    port = free_port()
    servers = "\n".join(
        f"    server {n.name} 127.0.0.1:{n.smtp} send-proxy-v2 source {BALANCER} "
        "check inter 300 fall 1 rise 1" for n in nodes)
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""
defaults
    mode tcp
    retries 3
    option redispatch
    timeout connect 2s
    timeout client 60s
    timeout server 60s
listen smtp
    bind 127.0.0.1:{port}
    balance roundrobin
{servers}
""")
    proc = subprocess.Popen([HAPROXY, "-f", str(config), "-db"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                         0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def key_database() -> AsyncIterator[str]:
    """A database of its own for the tenant keys, as a cluster runs them (docs/keys.md)."""
    name = f"ocg_keys_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield PG_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, pki: Pki, database: Database):
    async with key_database() as keys:
        async with _cluster(tmp_path, pki, database, keys) as running:
            yield running


@contextlib.asynccontextmanager
async def _cluster(tmp_path: Path, pki: Pki, database: Database, keys: str):
    sink = await RecordingSink().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env.update({"GATEWAY__VAULT__TENANT_KEY_STORE": keys,  # shared by the two nodes
                "GATEWAY__VAULT__TENANT_KEY_STORE_SINGLE_NODE": "false",
                "GATEWAY__SMTP__PROXY_PROTOCOL": "true",
                "GATEWAY__SMTP__LOAD_BALANCERS": f'["{BALANCER}/32"]',
                "GATEWAY__SMTP__IMPLICIT_TLS": "false",
                "GATEWAY__QUEUE__POLL_INTERVAL": "0.2"})
    nodes = []
    for name in ("node-a", "node-b"):
        work = tmp_path / name
        work.mkdir()
        nodes.append(Node(name, write_config(work, pki, database, sink.port), env,
                          work / "stderr.log"))
    # one master key for the whole installation
    shutil.copy(tmp_path / "node-a" / "master.key", tmp_path / "node-b" / "master.key")
    engine = create_engine(database.url, schema=database.schema)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    await engine.dispose()
    try:
        for node in nodes:
            node.start()
        yield nodes, sink
    finally:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait()
        await sink.stop()


def submit(port: int, pki: Pki, tag: str) -> str:
    """One message in its own session through the balancer: "250", "4xx"/"5xx", or the
    error a client would see."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.starttls(context=pki.client_context())
            smtp.login("campaign", PASSWORD)
            refused = smtp.sendmail("sales@acme.example", [f"{tag}@example.org"],
                                    messages.simple(to=f"{tag}@example.org"))
            return "250" if not refused else "5xx"
    except smtplib.SMTPResponseException as exc:
        return f"{exc.smtp_code // 100}xx"
    except (OSError, smtplib.SMTPException) as exc:
        return type(exc).__name__


def delivered(sink: RecordingSink) -> Counter[str]:
    return Counter(r.recipients[0].split("@")[0] for r in sink.received)


async def test_an_unsubscribe_on_one_node_is_refused_by_the_other(tmp_path, pki, database):
    async with cluster(tmp_path, pki, database) as (nodes, sink):
        a, b = nodes

        def via(node: Node) -> Proxied:
            return Proxied(node.smtp, v2("127.0.0.2", node.smtp))

        def send_through_a() -> None:
            with via(a) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                smtp.sendmail("sales@acme.example", ["dora@example.org"],
                              messages.simple(to="dora@example.org"))

        await asyncio.to_thread(send_through_a)
        (link,) = LINK.findall(sink.received[-1].content)
        token = link.decode().rsplit("/", 1)[1]
        request = urllib.request.Request(f"http://127.0.0.1:{a.public}/u/{token}",
                                         data=b"List-Unsubscribe=One-Click")
        with urllib.request.urlopen(request, timeout=10) as response:  # node A answers
            assert response.status == 200

        def rcpt_at_b() -> int:
            with via(b) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                smtp.mail("sales@acme.example")
                return smtp.rcpt("dora@example.org")[0]

        assert await asyncio.to_thread(rcpt_at_b) == 550  # node B, the very next message


async def test_a_node_killed_mid_load_loses_nothing_it_acknowledged(tmp_path, pki, database):
    async with cluster(tmp_path, pki, database) as (nodes, sink):
        with haproxy(tmp_path, nodes) as port:
            outcomes: dict[str, str] = {}

            def client(c: int) -> None:
                for i in range(15):
                    tag = f"k{c}x{i}"
                    outcomes[tag] = submit(port, pki, tag)
                    if c == 0 and i == 4:
                        nodes[0].proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]

            def run_all() -> None:  # in a thread: the sink lives on this event loop
                with ThreadPoolExecutor(6) as pool:
                    list(pool.map(client, range(6)))

            await asyncio.to_thread(run_all)
        acknowledged = [t for t, o in outcomes.items() if o == "250"]
        at_sink = delivered(sink)
        assert all(at_sink[t] >= 1 for t in acknowledged)  # nothing acknowledged is lost
        assert "5xx" not in outcomes.values()  # the others were told to retry
        assert len(acknowledged) >= 60, Counter(outcomes.values())  # the other node served
        print("after SIGKILL:", Counter(outcomes.values()))


async def test_a_rolling_restart_gives_no_5xx_and_loses_nothing(tmp_path, pki, database):
    async with cluster(tmp_path, pki, database) as (nodes, sink):
        with haproxy(tmp_path, nodes) as port:
            retried: Counter[str] = Counter()
            done = asyncio.Event()
            tags = [f"r{i}" for i in range(80)]

            def client(batch: list[str]) -> None:
                for tag in batch:
                    for _ in range(50):  # a client retries what it was told to retry
                        outcome = submit(port, pki, tag)
                        if outcome == "250":
                            break
                        retried[outcome] += 1
                        assert outcome != "5xx", tag
                        time.sleep(0.2)
                    else:
                        raise AssertionError(f"{tag} never accepted")

            async def restart_each() -> None:
                for node in nodes:
                    await asyncio.sleep(1.0)
                    assert await asyncio.to_thread(node.stop) == 0  # graceful: exit 0
                    await asyncio.to_thread(node.start)
                done.set()

            loop = asyncio.get_running_loop()
            with ThreadPoolExecutor(4) as pool:
                work = [loop.run_in_executor(pool, client, tags[i::4]) for i in range(4)]
                await asyncio.gather(restart_each(), *work)
        assert done.is_set()
        at_sink = delivered(sink)
        assert all(at_sink[t] >= 1 for t in tags)  # every message arrived
        print("rolling restart, retried:", dict(retried))
