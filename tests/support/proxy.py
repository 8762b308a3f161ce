"""PROXY protocol headers (v1, v2) and the shipped HAProxy in front of a gateway."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import smtplib
import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest

BALANCER = "127.0.0.3"  # connects to the gateway; the clients are behind it


def v1(client: str, port: int) -> bytes:
    return f"PROXY TCP4 {client} 127.0.0.1 40000 {port}\r\n".encode()


def v2(client: str | None, port: int) -> bytes:
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    if client is None:  # LOCAL: the balancer's own health check
        return signature + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    addresses = ipaddress.IPv4Address(client).packed + ipaddress.IPv4Address(
        "127.0.0.1").packed + struct.pack("!HH", 40001, port)
    return signature + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


class Proxied(smtplib.SMTP):
    """smtplib, connecting from the balancer's address and writing its PROXY header first."""

    def __init__(self, port: int, header: bytes, source: str = BALANCER) -> None:
        self._header = header
        super().__init__("127.0.0.1", port, timeout=10, source_address=(source, 0))

    def _get_socket(self, host, port, timeout):  # type: ignore[no-untyped-def]
        sock = socket.create_connection((host, port), timeout, self.source_address)
        sock.sendall(self._header)
        return sock


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@contextlib.contextmanager
def haproxy(tmp_path, backend_port: int, send_proxy: str) -> Iterator[int]:
    """Debian's HAProxy in TCP mode in front of the gateway, connecting from the
    balancer's address and sending a PROXY header (`send-proxy` or `send-proxy-v2`)."""
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is required (scripts/install-system-packages.sh)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen smtp
    bind 127.0.0.1:{port}
    server gw 127.0.0.1:{backend_port} {send_proxy} source {BALANCER}
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
