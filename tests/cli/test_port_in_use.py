"""A port already in use is an operator's problem, not our bug: `gateway serve` says which
listener, which address and which setting, in one line, with its own exit code (9)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import PortUnavailable
from tests.conftest import Database, Pki, write_config


@pytest.mark.parametrize("workers", [None, "1"])
def test_serve_names_the_listener_whose_port_is_taken(tmp_path: Path, pki: Pki,
                                                       workers: str | None):
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    path = write_config(tmp_path, pki, database, 25)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    subprocess.run([sys.executable, "-m", "gateway", "--config", str(path), "db", "upgrade"],
                   env=env, check=True, capture_output=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env["GATEWAY__SMTP__SUBMISSION_PORT"] = str(port)
        command = [sys.executable, "-m", "gateway", "--config", str(path), "serve"]
        result = subprocess.run(command + (["--workers", workers] if workers else []),
                                env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == PortUnavailable.exit_code, result.stderr[-2000:]
    assert f"The submission listener cannot listen on 127.0.0.1:{port}: the address is " \
           "already in use" in result.stderr
    assert "smtp.submission_port" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
