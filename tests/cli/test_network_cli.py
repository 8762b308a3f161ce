"""Every CLI command that talks to the network fails in one line with its own exit code when
the other side does not answer: a DNS server that stays silent or refuses, a closed port."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.errors import NetworkError
from tests.conftest import Database, Pki, write_config

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
Run = Callable[..., subprocess.CompletedProcess[str]]


def gateway_cli(tmp_path: Path, pki: Pki, database: Database, dns: str) -> Run:
    path = write_config(tmp_path, pki, database, sink_port=2525,
                        extra=f'[dns]\nnameservers = ["{dns}"]\ntimeout = 1\n')

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "--config", str(path), *args],
                              capture_output=True, text=True, timeout=60)

    assert run("db", "upgrade").returncode == 0
    assert run("tenant", "add", "acme").returncode == 0
    assert run("domain", "add", "acme", "acme.example").returncode == 0
    return run


@pytest.fixture
def silent_dns() -> Iterator[str]:
    """A UDP port that takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def closed_dns() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed when the fixture returns


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == NetworkError.exit_code, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "bug" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("command", ["verify", "check"])
def test_a_silent_resolver_is_a_timeout_in_one_line(tmp_path: Path, pki: Pki, database,
                                                    silent_dns: str, command: str):
    run = gateway_cli(tmp_path, pki, database, silent_dns)
    if command == "check":
        assert run("domain", "verify", "acme.example").returncode == NetworkError.exit_code
    message = one_line_failure(run("domain", command, "acme.example"))
    assert "timed out" in message and "[dns] nameservers" in message


@pytest.mark.parametrize("command", ["verify", "check"])
def test_a_refusing_resolver_fails_in_one_line(tmp_path: Path, pki: Pki, database,
                                               closed_dns: str, command: str):
    run = gateway_cli(tmp_path, pki, database, closed_dns)
    message = one_line_failure(run("domain", command, "acme.example"))
    assert "DNS" in message
