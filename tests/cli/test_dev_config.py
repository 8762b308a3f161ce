"""The CLI from a checkout, as the README prints it: without GATEWAY_CONFIG it uses the
development file only where `make run` left its marker, never a production file; and
`gateway send-test` submits through the gateway's own port with nothing else installed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from gateway.config.location import DEVELOPMENT_CONFIG, MAKE_RUN_MARKER, locate
from tests.conftest import PASSWORD, Harness

ROOT = Path(__file__).parents[2]


def checkout(tmp_path: Path, marker: bool, environment: str = "development") -> Path:
    work = tmp_path / "checkout"
    (work / "deploy").mkdir(parents=True)
    text = (ROOT / DEVELOPMENT_CONFIG).read_text().replace(
        'environment = "development"', f'environment = "{environment}"')
    (work / DEVELOPMENT_CONFIG).write_text(text)
    if marker:
        (work / MAKE_RUN_MARKER).parent.mkdir()
        (work / MAKE_RUN_MARKER).touch()
    return work


def gateway(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_order_named_file_then_system_file_then_checkout(tmp_path: Path):
    work = checkout(tmp_path, marker=True)
    system = tmp_path / "etc-gateway.toml"
    assert locate("mine.toml", work, system).path == "mine.toml"
    assert locate(None, work, system).path == str(DEVELOPMENT_CONFIG)
    assert locate(None, work, system).development_fallback
    system.write_text('environment = "production"\n')
    assert locate(None, work, system).path == str(system)  # a system file wins


def test_no_fallback_without_the_marker_or_for_a_production_file(tmp_path: Path):
    system = tmp_path / "absent.toml"
    assert locate(None, checkout(tmp_path / "a", marker=False), system).path is None
    assert locate(None, checkout(tmp_path / "b", marker=True, environment="production"),
                  system).path is None
    unmarked = checkout(tmp_path / "c", marker=True)
    (unmarked / DEVELOPMENT_CONFIG).write_text('data_dir = "var"\n')  # production by default
    assert locate(None, unmarked, system).path is None


def test_a_command_in_a_checkout_after_make_run_says_which_file_it_uses(tmp_path: Path):
    work = checkout(tmp_path, marker=True)
    assert gateway(work, "db", "upgrade").returncode == 0
    listed = gateway(work, "tenant", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.splitlines()[0] == "using deploy/development.toml (development)"
    assert (work / "var/gateway.db").exists()


def test_without_a_file_the_error_says_how_to_name_one(tmp_path: Path):
    for work in (checkout(tmp_path / "a", marker=False),
                 checkout(tmp_path / "b", marker=True, environment="production")):
        listed = gateway(work, "tenant", "list")
        assert listed.returncode == 2
        assert "using" not in listed.stderr
        assert "pass --config FILE or set GATEWAY_CONFIG" in listed.stderr
        assert "Traceback" not in listed.stderr


async def test_send_test_submits_as_a_named_login(harness: Harness):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env["SSL_CERT_FILE"] = str(Path(harness.pki.cert_file).with_name("ca.pem"))

    def send(to: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(harness.config_path),
             "send-test", "--login", "campaign", "--from", "sales@acme.example",
             "--password-stdin", "--to", to, "--server", f"localhost:{harness.port}"],
            input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60)

    sent = await asyncio.to_thread(send, "bob@example.org")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("250 2.0.0 Ok: queued as ")
    (got,) = harness.sink.received
    assert got.recipients == ["bob@example.org"] and b"List-Unsubscribe:" in got.content
    harness.sink.faults.rcpt["nobody@example.org"] = "550 5.1.1 No such user"
    refused = await asyncio.to_thread(send, "nobody@example.org")
    assert refused.returncode == 1
    assert refused.stderr.startswith("gateway: refused: 550 5.1.1")

