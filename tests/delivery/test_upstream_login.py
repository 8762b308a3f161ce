"""The operator's shared smarthost login: the username in the configuration, the password
sealed in the vault (`gateway upstream password`), a password left in the file adopted."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import config as config_module
from gateway.app.service import Gateway
from gateway.errors import ConfigError
from gateway.store.schema import audit_events, sealed_secrets
from tests.conftest import Database, Harness, Pki, running_harness, write_config
from tests.support.sink import RecordingSink

PASSWORD = "relay-pass-7c1e9a"


def smarthost(sink: RecordingSink, pki: Pki, password: str | None = None) -> str:
    return smarthost_at(sink.port, pki, password)


def smarthost_at(port: int, pki: Pki, password: str | None = None) -> str:
    ca_file = Path(pki.cert_file).with_name("ca.pem")
    line = f'password = "{password}"\n' if password else ""
    # pool_size 0: every message logs in again, so a changed password shows at once
    return (f'[upstreams.sink]\nkind = "smtp"\nhost = "localhost"\nport = {port}\n'
            f'tls = "starttls"\nusername = "relay-user"\n{line}ca_file = "{ca_file}"\n'
            'pool_size = 0\n')


def cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def raw_sqlite(tmp_path: Path) -> bytes:
    raw = (tmp_path / "gateway.db").read_bytes()
    for wal in tmp_path.glob("gateway.db-wal"):
        raw += wal.read_bytes()
    return raw


async def test_a_password_left_in_the_configuration_is_sealed_and_no_longer_needed_there(
        tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture):
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    caplog.set_level(logging.INFO)
    sink = await RecordingSink(tls=pki.server_context(), auth=("relay-user", PASSWORD)).start()
    async with running_harness(tmp_path, pki, database, sink=sink,
                               upstream=smarthost(sink, pki, PASSWORD)) as h:
        code, _ = await h.data_reply(["alice@example.org"])
        assert code == 250
        async with h.gateway.engine.connect() as conn:
            names = (await conn.execute(sa.select(sealed_secrets.c.name, sealed_secrets.c.tenant_id)
                                        )).all()
            events = (await conn.execute(sa.select(audit_events.c.event))).scalars().all()
    assert ("upstream/sink/password", 0) in names
    assert "upstream.password_set" in events
    warning = [r for r in caplog.records if "remove it from the file" in r.getMessage()]
    assert warning and warning[0].levelno == logging.WARNING
    assert warning[0].__dict__["setting"] == "upstreams.sink.password"
    assert PASSWORD not in caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert PASSWORD.encode() not in raw_sqlite(tmp_path)

    # the same gateway, the password gone from the file: it logs in from the vault
    caplog.clear()
    sink = await RecordingSink(tls=pki.server_context(), auth=("relay-user", PASSWORD)).start()
    path = write_config(tmp_path, pki, database, sink.port, upstream=smarthost(sink, pki))
    gateway = Gateway(config_module.load(path), str(path))
    await gateway.start(run_queue=False)
    try:
        code, _ = await Harness(gateway, sink, pki, path).data_reply(["bob@example.org"])
        assert code == 250 and [r.recipients for r in sink.received] == [["bob@example.org"]]
    finally:
        await gateway.stop(deadline=1)
        await sink.stop()
    assert "remove it from the file" not in caplog.text


async def test_username_without_a_sealed_password_stops_start_up_naming_the_command(
        tmp_path: Path, pki: Pki, database: Database):
    path = write_config(tmp_path, pki, database, 2525, upstream=smarthost_at(2525, pki))
    assert cli(path, "db", "upgrade").returncode == 0
    gateway = Gateway(config_module.load(path), str(path))
    try:
        with pytest.raises(ConfigError) as info:
            await gateway.start(run_queue=False)
        assert "gateway upstream password sink --password-stdin" in info.value.message
    finally:
        await gateway.stop(deadline=0)
    served = cli(path, "serve")
    assert served.returncode == ConfigError.exit_code
    assert "logs in as 'relay-user' but the vault holds no password" in served.stderr


async def test_password_sealed_by_the_cli_and_changed_while_the_gateway_runs(
        tmp_path: Path, pki: Pki, database: Database):
    sink = await RecordingSink(tls=pki.server_context(), auth=("relay-user", PASSWORD)).start()
    config = write_config(tmp_path, pki, database, sink.port, upstream=smarthost(sink, pki))
    assert cli(config, "db", "upgrade").returncode == 0
    sealed = cli(config, "upstream", "password", "sink", "--password-stdin",
                 stdin=PASSWORD + "\n")
    assert (sealed.returncode, sealed.stdout) == (0, "upstream sink: password sealed\n")
    assert PASSWORD not in sealed.stdout + sealed.stderr
    listed = cli(config, "upstream", "list").stdout.splitlines()
    assert f"sink\tsmtp\tlocalhost:{sink.port}\trelay-user (password sealed)" in listed
    assert "capture\tmaildir" in "\n".join(listed)

    async with running_harness(tmp_path, pki, database, sink=sink,
                               upstream=smarthost(sink, pki)) as h:
        assert (await h.data_reply(["alice@example.org"]))[0] == 250
        # the smarthost's password changes, then the operator seals the new one: the next
        # message is refused once with the cached password, which is then read again
        sink.auth = ("relay-user", "rotated-" + PASSWORD)
        changed = cli(config, "upstream", "password", "sink", "--password-stdin",
                      stdin="rotated-" + PASSWORD + "\n")
        assert changed.returncode == 0
        assert (await h.data_reply(["bob@example.org"]))[0] == 250
        assert [r.recipients for r in sink.received] == [["alice@example.org"],
                                                        ["bob@example.org"]]

        cleared = cli(config, "upstream", "password", "sink", "--clear")
        assert cleared.returncode == 0
        sink.auth = ("relay-user", "third-" + PASSWORD)  # refused: read again, none there
        code, text = await h.data_reply(["carol@example.org"])
        assert (code, text.split(" ")[0]) == (451, "4.7.0")
        assert "no password in the vault" in text


def test_upstream_password_refuses_oauth_and_unknown_upstreams(tmp_path: Path, pki: Pki,
                                                               database: Database):
    config = write_config(tmp_path, pki, database, 2525)
    assert cli(config, "db", "upgrade").returncode == 0
    unknown = cli(config, "upstream", "password", "nope", "--password-stdin", stdin="x\n")
    assert unknown.returncode == 5 and "Upstream 'nope' is not configured" in unknown.stderr
    maildir = cli(config, "upstream", "password", "capture", "--password-stdin", stdin="x\n")
    assert maildir.returncode == 5 and "only smtp smarthosts" in maildir.stderr
    no_user = cli(config, "upstream", "password", "sink", "--password-stdin", stdin="x\n")
    assert no_user.returncode == 5 and "upstreams.sink.username" in no_user.stderr
