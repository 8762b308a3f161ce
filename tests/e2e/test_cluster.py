"""Two gateway nodes (separate processes) on one PostgreSQL, behind Debian's HAProxy,
started from the shipped files as shipped: `deploy/multi-node.example.toml` for the nodes and
`deploy/haproxy.cfg` for the balancer, with only addresses, paths and secrets from the
environment, the way an operator (or the compose file) sets them. A port or a PROXY setting
that does not meet fails here. Driven by real SMTP clients:

- a message through each of HAProxy's frontends (587, 465, the public HTTP side, 25);
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
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from gateway import config as config_module
from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine
from tests.conftest import PASSWORD, PG_DSN, Database, Pki, master_key_file, seed
from tests.support import messages
from tests.support.proxy import v2
from tests.support.sink import RecordingSink

pytestmark = pytest.mark.parametrize("database", ["postgres"], indirect=True)
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
DEPLOY = Path(__file__).parents[2] / "deploy"
SHIPPED = DEPLOY / "multi-node.example.toml"
LINK = re.compile(rb"List-Unsubscribe: <(https://links\.mail\.example\.net/u/[a-z2-7]+)>")
# Each node on an address of its own, on the shipped ports; HAProxy reaches them from
# 127.0.0.1 (the balancer the nodes believe).
ADDRESSES = {"node-a": "127.0.0.11", "node-b": "127.0.0.12"}
BALANCER = "127.0.0.1"
SHIPPED_PORTS = config_module.load(SHIPPED, {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One `gateway serve` process on the shipped configuration (a restart keeps it)."""

    def __init__(self, name: str, env: dict[str, str], work: Path) -> None:
        self.name, self.address, self.log = name, ADDRESSES[name], work / "stderr.log"
        self.smtp = SHIPPED_PORTS.smtp.submission_port
        self.public = SHIPPED_PORTS.http.public_port
        self.admin = SHIPPED_PORTS.http.admin_port
        self.env = {**env,
                    # where this node listens (one host here: an address per node)
                    "GATEWAY__SMTP__LISTEN": self.address,
                    "GATEWAY__HTTP__PUBLIC_LISTEN": self.address,
                    "GATEWAY__HTTP__ADMIN_LISTEN": self.address,
                    "GATEWAY__UNSUBSCRIBE__MAILTO_LISTEN": self.address,
                    "GATEWAY__DATA_DIR": str(work / "var"),
                    "GATEWAY__AUDIT__CHAIN": name}  # as compose.yaml sets it
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve",
                 "--workers", "1"],  # a node is one process here: SIGKILL kills all of it
                env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(300):
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://{self.address}:{self.admin}/readyz", timeout=0.5) as ready:
                if ready.status == 200:
                    return
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.05)
        raise AssertionError(f"node {self.name} did not start")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=90)


class Balancer:
    """`deploy/haproxy.cfg` as shipped; where it listens comes from its variables."""

    def __init__(self) -> None:
        self.submission, self.submissions = free_port(), free_port()
        self.mailto, self.public = free_port(), free_port()


@contextlib.contextmanager
def haproxy() -> Iterator[Balancer]:
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is required (scripts/install-system-packages.sh)")
    ports = Balancer()
    env = {**os.environ, "OCG_NODE1": ADDRESSES["node-a"], "OCG_NODE2": ADDRESSES["node-b"],
           "OCG_SUBMISSION": f"127.0.0.1:{ports.submission}",
           "OCG_SUBMISSIONS": f"127.0.0.1:{ports.submissions}",
           "OCG_MAILTO": f"127.0.0.1:{ports.mailto}",
           "OCG_PUBLIC": f"127.0.0.1:{ports.public}"}
    output = tempfile.TemporaryFile()
    proc = subprocess.Popen([HAPROXY, "-f", str(DEPLOY / "haproxy.cfg"), "-db"], env=env,
                            stdout=output, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", ports.submission), 0.2):
                break
            if proc.poll() is not None:  # the shipped file did not start as shipped
                output.seek(0)
                pytest.fail("haproxy exited: " + output.read().decode()[-2000:])
            time.sleep(0.05)
        time.sleep(2.5)  # its health checks (inter 1s, rise 2) find the nodes up
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        output.close()


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


def gateway(env: dict[str, str], *args: str, stdin: str = "") -> None:
    done = subprocess.run([sys.executable, "-m", "gateway", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@contextlib.asynccontextmanager
async def _cluster(tmp_path: Path, pki: Pki, database: Database, keys: str):
    upstream_password = secrets.token_urlsafe(12)
    sink = await RecordingSink(tls=pki.server_context(),
                               auth=("gateway", upstream_password)).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env.update({
        "GATEWAY_CONFIG": str(SHIPPED),  # as shipped; the rest is this installation's own
        # paths and secrets
        "GATEWAY__SMTP__TLS_CERT": pki.cert_file, "GATEWAY__SMTP__TLS_KEY": pki.key_file,
        "GATEWAY__VAULT__MASTER_KEY_FILE": str(master_key_file(tmp_path)),
        "GATEWAY__DATABASE__URL": database.url, "GATEWAY__DATABASE__SCHEMA": database.schema,
        "GATEWAY__VAULT__TENANT_KEY_STORE": keys,
        # addresses: the balancer as the nodes see it, and the smarthost
        "GATEWAY__SMTP__LOAD_BALANCERS": f'["{BALANCER}/32"]',
        "GATEWAY__HTTP__TRUSTED_PROXIES": f'["{BALANCER}/32"]',
        "GATEWAY__UPSTREAMS__RELAY__HOST": "localhost",
        "GATEWAY__UPSTREAMS__RELAY__PORT": str(sink.port),
        "GATEWAY__UPSTREAMS__RELAY__CA_FILE": str(Path(pki.cert_file).with_name("ca.pem"))})
    # the operator's first steps, with the CLI
    await asyncio.to_thread(gateway, env, "db", "upgrade")
    await asyncio.to_thread(gateway, env, "upstream", "password", "relay", "--password-stdin",
                            stdin=upstream_password + "\n")
    engine = create_engine(database.url, schema=database.schema)
    await seed(DirectoryStore(engine), upstream="relay")
    await engine.dispose()
    nodes = []
    for name in ADDRESSES:
        (tmp_path / name).mkdir()
        nodes.append(Node(name, env, tmp_path / name))
    try:
        for node in nodes:
            await asyncio.to_thread(node.start)
        yield nodes, sink
    finally:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait()
        await sink.stop()


class ToNode(smtplib.SMTP):
    """smtplib straight to one node, as HAProxy would connect: from the balancer's address,
    with its PROXY header first."""

    def __init__(self, node: Node, client: str) -> None:
        self._header = v2(client, node.smtp)
        super().__init__(node.address, node.smtp, timeout=10, source_address=(BALANCER, 0))
        self._host = "localhost"  # the name its certificate is checked against

    def _get_socket(self, host, port, timeout):  # type: ignore[no-untyped-def]
        sock = socket.create_connection((host, port), timeout, self.source_address)
        sock.sendall(self._header)
        return sock


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


async def test_every_frontend_of_the_shipped_balancer_reaches_a_node(tmp_path, pki, database):
    async with cluster(tmp_path, pki, database) as (nodes, sink):
        with haproxy() as balancer:
            def send_587(to: str) -> dict:
                with smtplib.SMTP("localhost", balancer.submission, timeout=30) as smtp:
                    smtp.starttls(context=pki.client_context())
                    smtp.login("campaign", PASSWORD)
                    return smtp.sendmail("sales@acme.example", [to], messages.simple(to=to))

            def send_465(to: str) -> dict:
                with smtplib.SMTP_SSL("localhost", balancer.submissions, timeout=30,
                                      context=pki.client_context()) as smtp:
                    smtp.login("campaign", PASSWORD)
                    return smtp.sendmail("sales@acme.example", [to], messages.simple(to=to))

            def rcpt_587(to: str) -> int:
                with smtplib.SMTP("localhost", balancer.submission, timeout=30) as smtp:
                    smtp.starttls(context=pki.client_context())
                    smtp.login("campaign", PASSWORD)
                    smtp.mail("sales@acme.example")
                    return smtp.rcpt(to)[0]

            def mail_25(token: str) -> tuple[int, bytes]:
                with smtplib.SMTP("127.0.0.1", balancer.mailto, timeout=30) as smtp:
                    smtp.ehlo("mx.example.org")
                    smtp.mail("dora@example.org")
                    smtp.rcpt("unsubscribe@links.mail.example.net")
                    return smtp.data(b"From: dora@example.org\r\nSubject: unsubscribe "
                                     + token.encode() + b"\r\n\r\nPlease remove me.\r\n")

            assert await asyncio.to_thread(send_587, "dora@example.org") == {}
            assert await asyncio.to_thread(send_465, "erin@example.org") == {}
            tokens = {r.recipients[0]: LINK.findall(r.content)[0].decode().rsplit("/", 1)[1]
                      for r in sink.received}
            # public HTTP through the balancer: the one-click POST Gmail would send
            request = urllib.request.Request(
                f"http://127.0.0.1:{balancer.public}/u/{tokens['erin@example.org']}",
                data=b"List-Unsubscribe=One-Click")
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            # a mail to the unsubscribe address through the balancer's port 25
            code, _ = await asyncio.to_thread(mail_25, tokens["dora@example.org"])
            assert code == 250
            assert await asyncio.to_thread(rcpt_587, "erin@example.org") == 550
            assert await asyncio.to_thread(rcpt_587, "dora@example.org") == 550
        for node in nodes:  # the nodes believed the balancer's PROXY headers
            assert "PROXY header refused" not in node.log.read_text()


async def test_an_unsubscribe_on_one_node_is_refused_by_the_other(tmp_path, pki, database):
    async with cluster(tmp_path, pki, database) as (nodes, sink):
        a, b = nodes

        def via(node: Node) -> ToNode:
            return ToNode(node, "192.0.2.2")

        def send_through_a() -> None:
            with via(a) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.login("campaign", PASSWORD)
                smtp.sendmail("sales@acme.example", ["dora@example.org"],
                              messages.simple(to="dora@example.org"))

        await asyncio.to_thread(send_through_a)
        (link,) = LINK.findall(sink.received[-1].content)
        token = link.decode().rsplit("/", 1)[1]
        request = urllib.request.Request(f"http://{a.address}:{a.public}/u/{token}",
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
        with haproxy() as balancer:
            port = balancer.submission
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
        with haproxy() as balancer:
            port = balancer.submission
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
