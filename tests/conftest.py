"""Fixtures: a clean environment, TLS from a test CA, both databases, a recording upstream,
and a real gateway on port 0 seeded with two tenants."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import smtplib
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import trustme

from gateway import config as config_module
from gateway.app.service import Gateway
from gateway.directory.store import DirectoryStore
from gateway.store.engine import create_engine, upgrade
from tests.support import messages
from tests.support.sink import RecordingSink

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "another long password!"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY"):
            monkeypatch.delenv(name)


# --- TLS -----------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: trustme.CA
    cert_file: str
    key_file: str

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def make_pki(directory: Path) -> Pki:
    """A test CA and a certificate for localhost, 127.0.0.1 and gw.test, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "gw.test")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return Pki(ca, str(cert_file), str(key_file))


# --- databases -----------------------------------------------------------------------------


def _postgres_or_fail() -> None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required in CI: {exc!r}")
        pytest.skip(f"PostgreSQL not reachable: {exc!r}")


@dataclass
class Database:
    kind: str
    url: str
    schema: str = ""

    def toml(self) -> str:
        schema = f'\nschema = "{self.schema}"' if self.schema else ""
        return f'[database]\nurl = "{self.url}"{schema}\n'


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
        return
    _postgres_or_fail()
    schema = f"t_{secrets.token_hex(6)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    try:
        yield Database("postgres", PG_URL, schema)
    finally:
        asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


# --- configuration -------------------------------------------------------------------------


def master_key_file(directory: Path) -> Path:
    """The directory's master key, made on first use (a config rewritten later keeps it)."""
    path = directory / "master.key"
    if path.exists():
        return path
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    path.chmod(0o600)
    return path


def write_config(tmp_path: Path, pki: Pki, database: Database, sink_port: int,
                 extra: str = "", upstream: str | None = None) -> Path:
    key = master_key_file(tmp_path)
    upstream = upstream or (
        f'[upstreams.sink]\nkind = "smtp"\nhost = "127.0.0.1"\nport = {sink_port}\n'
        'tls = "none"\ntimeout = 5\n'
    )
    # a PostgreSQL test runs one node: its tenant keys may stay in a directory
    single_node = ("tenant_key_store_single_node = true\n"
                   if database.kind == "postgres" else "")
    text = f"""
data_dir = "{tmp_path}/var"

[smtp]
hostname = "gw.test"
listen = "127.0.0.1"
submission_port = 0
implicit_tls_port = 0
tls_cert = "{pki.cert_file}"
tls_key = "{pki.key_file}"
max_message_size = 200000
max_recipients = 20
max_header_count = 50

[smtp.auth]
max_failures = 3

[vault]
master_key_file = "{key}"
{single_node}
[tenants]
max_recipients = 10
max_message_size = 100000

[audit]
batch_max_delay = 0.001

[http]
public_port = 0
admin_port = 0
drain_seconds = 0

[unsubscribe]
base_url = "https://links.gw.test"
mailto_listen = "127.0.0.1"  # its own port: List-Unsubscribe advertises mailto: only then
mailto_port = 0

{database.toml()}
{upstream}
[upstreams.capture]
kind = "maildir"
path = "{tmp_path}/outbox"
{extra}
"""
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


async def seed(store: DirectoryStore, upstream: str = "sink") -> None:
    await store.add_tenant("acme", "test")
    await store.add_domain("acme", "acme.example", "test")
    await store.add_login("acme", "campaign", PASSWORD, "test")
    await store.add_mailbox("acme", "sales@acme.example", upstream, "test")
    await store.add_mailbox("acme", "paused@acme.example", upstream, "test")
    await store.set_mailbox_status("paused@acme.example", "paused", "warming up", "test")
    await store.set_tenant_setting("acme", "postal_address",
                                   "Acme Corp, 1 Main Street, Springfield", "test")
    await store.add_tenant("other", "test")
    await store.add_domain("other", "other.example", "test")
    await store.add_login("other", "other-tool", OTHER_PASSWORD, "test")
    await store.add_mailbox("other", "ceo@other.example", upstream, "test")
    await store.set_tenant_setting("other", "postal_address", "Other BV, Damrak 1, Amsterdam",
                                   "test")
    for domain in ("acme.example", "other.example"):  # as `gateway domain verify` would
        await store.mark_verified(domain, "test", "test seed")


# --- the gateway ---------------------------------------------------------------------------


@dataclass
class Harness:
    gateway: Gateway
    sink: RecordingSink
    pki: Pki
    config_path: Path

    @property
    def port(self) -> int:
        return self.gateway.ports.submission

    @property
    def tls_port(self) -> int:
        return self.gateway.ports.implicit_tls

    def client(self, login: bool = True, user: str = "campaign",
               password: str = PASSWORD) -> smtplib.SMTP:
        """A blocking smtplib client, STARTTLS + AUTH done. Use from a thread."""
        smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
        smtp.ehlo("client.test")
        smtp.starttls(context=self.pki.client_context())
        smtp.ehlo("client.test")
        if login:
            smtp.login(user, password)
        return smtp

    async def send(self, message: bytes, recipients: list[str],
                   sender: str = "sales@acme.example", **kw: object) -> dict:
        def run() -> dict:
            with self.client(**kw) as smtp:  # type: ignore[arg-type]
                return smtp.sendmail(sender, recipients, message)

        return await asyncio.to_thread(run)

    async def data_reply(self, recipients: list[str],
                         body: bytes | None = None) -> tuple[int, str]:
        """One transaction from sales@acme.example; the DATA reply as (code, text)."""

        def run() -> tuple[int, bytes]:
            with self.client() as smtp:
                smtp.mail("sales@acme.example")
                for r in recipients:
                    smtp.rcpt(r)
                return smtp.data(body or messages.simple())

        code, text = await asyncio.to_thread(run)
        return code, text.decode()

    async def refresh(self) -> None:
        await self.gateway.directory.refresh()

    def store(self) -> DirectoryStore:
        return DirectoryStore(self.gateway.engine)


async def start_harness(tmp_path: Path, pki: Pki, database: Database, extra: str = "",
                        sink: RecordingSink | None = None, upstream: str | None = None,
                        run_queue: bool = False) -> Harness:
    """A seeded gateway on port 0. The queue worker runs only when asked: tests drive it
    with `gateway.worker.run_once(now=...)` so retries happen when the test says."""
    sink = sink or await RecordingSink().start()
    path = write_config(tmp_path, pki, database, sink.port, extra, upstream)
    config = config_module.load(path)
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    await seed(DirectoryStore(engine))
    await engine.dispose()
    gateway = Gateway(config, str(path))
    await gateway.start(run_queue=run_queue)
    return Harness(gateway, sink, pki, path)


@contextlib.asynccontextmanager
async def running_harness(tmp_path: Path, pki: Pki, database: Database,
                          **kw: object) -> AsyncIterator[Harness]:
    """A gateway with non-default settings for one test; stopped with its sink."""
    h = await start_harness(tmp_path, pki, database, **kw)  # type: ignore[arg-type]
    try:
        yield h
    finally:
        await h.gateway.stop(deadline=1)
        await h.sink.stop()


@pytest.fixture
async def harness(tmp_path: Path, pki: Pki, database: Database) -> AsyncIterator[Harness]:
    h = await start_harness(tmp_path, pki, database)
    try:
        yield h
    finally:
        await h.gateway.stop(deadline=2)
        await h.sink.stop()


@pytest.fixture
def gw(tmp_path: Path, pki: Pki, database: Database):
    """The CLI as an operator runs it (a real process) on a fresh database's config."""
    path = write_config(tmp_path, pki, database, sink_port=2525)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "--config", str(path), *args],
                              input=stdin, capture_output=True, text=True, timeout=60)

    return run


# Files of a minute or more, longest first. `--dist loadfile` hands whole files to workers in
# collection order, and these sort late by name: a worker that took one near the end kept
# the whole suite waiting for it. Started first, they overlap with everything else.
STARTS_FIRST = (
    "tests/web/test_fuzz.py", "tests/cli/test_cli.py", "tests/cli/test_suppress_cli.py",
    "tests/e2e/test_cluster.py", "tests/dkim/test_dkim.py", "tests/e2e/test_workers.py",
    "tests/store/test_full_store.py", "tests/e2e/test_readme.py", "tests/lawful/test_run.py",
    "tests/cli/test_domain_cli.py", "tests/delivery/test_upstream_login.py",
    "tests/suppression/test_canonical.py", "tests/feedback/test_optout_reviews.py",
    "tests/e2e/test_campaign_tools.py", "tests/cli/test_network_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(STARTS_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
