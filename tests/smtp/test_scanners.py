"""What a scanner does to the TLS ports: sslyze (a public TLS scanner) checks protocol
versions and cipher suites on the implicit-TLS port and through STARTTLS; hand-made probes
send garbage, old protocol versions and half handshakes, and drop connections. The gateway
offers TLS 1.2 and later with strong suites only, keeps serving, and logs each failure as one
info line and a metric, never an error or a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

import pytest
from sslyze import (
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
)

from gateway.observability import metrics
from tests.conftest import PASSWORD, Harness
from tests.support.raw_smtp import RawSession

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

PROTOCOLS = {
    ScanCommand.SSL_2_0_CIPHER_SUITES: False, ScanCommand.SSL_3_0_CIPHER_SUITES: False,
    ScanCommand.TLS_1_0_CIPHER_SUITES: False, ScanCommand.TLS_1_1_CIPHER_SUITES: False,
    ScanCommand.TLS_1_2_CIPHER_SUITES: True, ScanCommand.TLS_1_3_CIPHER_SUITES: True,
}
WEAK = ("NULL", "EXPORT", "RC4", "3DES", "DES_", "anon", "MD5", "_CBC_SHA")


def failures(listener: str) -> float:
    return metrics.TLS_HANDSHAKE_FAILURES.labels(listener)._value.get()


def scan(port: int, starttls: bool) -> dict[str, list[str]]:
    """sslyze's verdict: for each protocol version, the cipher suites the server accepted."""
    location = ServerNetworkLocation("localhost", port, ip_address="127.0.0.1")
    network = ServerNetworkConfiguration(
        "localhost", tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.SMTP
        if starttls else None, network_timeout=5, network_max_retries=1)
    scanner = Scanner(per_server_concurrent_connections_limit=4,
                      concurrent_server_scans_limit=1)
    scanner.queue_scans([ServerScanRequest(location, scan_commands=set(PROTOCOLS),
                                           network_configuration=network)])
    (result,) = list(scanner.get_results())
    assert result.scan_result is not None, result.connectivity_error_trace
    accepted: dict[str, list[str]] = {}
    for command in PROTOCOLS:
        attempt = getattr(result.scan_result, command.value)
        assert attempt.result is not None, (command, attempt.error_trace)
        accepted[command.value] = [s.cipher_suite.name
                                   for s in attempt.result.accepted_cipher_suites]
    return accepted


@pytest.mark.parametrize("starttls", [False, True], ids=["implicit-tls", "starttls"])
async def test_sslyze_finds_tls_1_2_and_later_with_strong_suites_only(
        harness: Harness, starttls: bool, caplog: pytest.LogCaptureFixture):
    port = harness.port if starttls else harness.tls_port
    with caplog.at_level(logging.DEBUG, logger="gateway"):
        accepted = await asyncio.to_thread(scan, port, starttls)
    for command, expected in PROTOCOLS.items():
        assert bool(accepted[command.value]) is expected, (command, accepted[command.value])
    suites = [s for names in accepted.values() for s in names]
    assert not [s for s in suites if any(w in s for w in WEAK)], suites
    assert all("ECDHE" in s or s.startswith("TLS_AES") or s.startswith("TLS_CHACHA20")
               for s in suites), suites  # forward secrecy everywhere
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [(r.name, r.getMessage()) for r in noisy]
    await harness.send(b"From: sales@acme.example\r\nSubject: x\r\n\r\nstill serving\r\n",
                       ["alice@example.org"])
    assert len(harness.sink.received) == 1


async def test_probes_and_drops_are_one_info_line_each_and_counted(
        harness: Harness, caplog: pytest.LogCaptureFixture):
    implicit, starttls = failures("implicit-tls"), failures("starttls")
    drops = metrics.CLIENT_DROPS._value.get()

    def probe() -> None:
        with socket.create_connection(("127.0.0.1", harness.tls_port), 5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")  # not TLS at all
            s.recv(100)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_2
        old.set_ciphers("AES128-SHA")  # no forward secrecy: nothing in common
        with pytest.raises(ssl.SSLError), socket.create_connection(
                ("127.0.0.1", harness.tls_port), 5) as raw:
            old.wrap_socket(raw)
        with socket.create_connection(("127.0.0.1", harness.port), 5) as s:
            s.recv(200)
            s.sendall(b"EHLO x\r\n")
            s.recv(1000)
            s.sendall(b"STARTTLS\r\n")
            s.recv(100)
            s.sendall(b"\x16\x03\x01\x00\x05garbage")  # a broken ClientHello
            with contextlib.suppress(OSError):
                while s.recv(100):  # until the gateway hangs up: its side is done
                    pass
        with socket.create_connection(("127.0.0.1", harness.tls_port), 5) as s:
            s.sendall(b"\x16\x03\x01\x02\x00")  # half a record, then gone
        session = RawSession(harness.port, harness.pki.client_context()).ready(
            "campaign", PASSWORD)
        session.send(b"MAIL FROM:<sales@acme.example>\r\n")
        session.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00"
                                b"\x00\x00\x00\x00")
        session.close()  # a reset mid-session

    with caplog.at_level(logging.DEBUG, logger="gateway"):
        await asyncio.to_thread(probe)
        for _ in range(50):
            if failures("implicit-tls") >= implicit + 3 and failures("starttls") > starttls \
                    and metrics.CLIENT_DROPS._value.get() > drops:
                break
            await asyncio.sleep(0.05)
    assert failures("implicit-tls") - implicit >= 3
    assert failures("starttls") - starttls == 1
    assert metrics.CLIENT_DROPS._value.get() > drops
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [(r.name, r.getMessage()) for r in noisy]
    lines = [r for r in caplog.records if r.getMessage() == "TLS handshake failed"]
    assert all(r.levelno == logging.INFO and r.client.endswith("/24") for r in lines)
