"""PROXY protocol (v1 and v2) on the submission and implicit-TLS ports behind a load
balancer (on 465 the header comes before TLS): believed only
from `smtp.load_balancers`; the client it names drives IP credentials, AUTH back-off and
logs; the balancer's own address and its health checks never stand for a client."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import ssl
import time

import pytest

from tests.conftest import PASSWORD, running_harness
from tests.support import messages
from tests.support.proxy import BALANCER, Proxied, haproxy, v1, v2

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def proxied_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY__SMTP__PROXY_PROTOCOL", "true")
    monkeypatch.setenv("GATEWAY__SMTP__LOAD_BALANCERS", f'["{BALANCER}/32"]')
    monkeypatch.setenv("GATEWAY__SMTP__IP_CREDENTIALS",
                       '[{login = "campaign", networks = ["127.0.0.2/32"]}]')


async def test_the_client_a_balancer_names_is_the_client(tmp_path, pki, database, proxied_env):
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.submission

        def run() -> dict[str, object]:
            seen: dict[str, object] = {}
            with Proxied(port, v1("127.0.0.2", port)) as smtp:  # an IP-credential client
                smtp.ehlo("tool.test")
                seen["v1 ip credential"] = smtp.sendmail(
                    "sales@acme.example", ["a@example.org"], messages.simple())
            with Proxied(port, v2("127.0.0.9", port)) as smtp:  # anyone else must AUTH
                smtp.ehlo("tool.test")
                seen["v2 unknown"] = smtp.mail("sales@acme.example")[0]
                smtp.rset()
                smtp.starttls(context=h.pki.client_context())
                smtp.ehlo("tool.test")
                smtp.login("campaign", PASSWORD)
                seen["v2 after auth"] = smtp.mail("sales@acme.example")[0]
            with Proxied(port, v1(BALANCER, port)) as smtp:  # the balancer itself: nobody
                smtp.ehlo("tool.test")
                seen["balancer"] = smtp.mail("sales@acme.example")[0]
            with Proxied(port, v2(None, port)) as smtp:  # its health check: nobody
                seen["health check"] = smtp.noop()[0]
                smtp.ehlo("lb.test")
                seen["health check mail"] = smtp.mail("sales@acme.example")[0]
            return seen

        seen = await asyncio.to_thread(run)
        assert seen == {"v1 ip credential": {}, "v2 unknown": 530, "v2 after auth": 250,
                        "balancer": 530, "health check": 250, "health check mail": 530}
        assert [r.recipients for r in h.sink.received] == [["a@example.org"]]


async def test_a_proxy_header_from_anyone_else_is_refused(tmp_path, pki, database,
                                                          proxied_env):
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.submission

        def run(header: bytes, source: str) -> str:
            try:
                with Proxied(port, header, source=source) as smtp:
                    return f"banner {smtp.noop()[0]}"
            except smtplib.SMTPServerDisconnected:
                return "disconnected"

        assert await asyncio.to_thread(run, v1("127.0.0.2", port), "127.0.0.1") == \
            "disconnected"  # not a balancer: it cannot claim to speak for a client
        assert await asyncio.to_thread(run, b"PROXY TCP4 nonsense\r\n", BALANCER) == \
            "disconnected"
        assert await asyncio.to_thread(run, v1("127.0.0.2", port), BALANCER) == "banner 250"


async def test_auth_back_off_follows_the_real_client(tmp_path, pki, database, proxied_env):
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.submission

        def login(client: str, user: str, password: str) -> int:
            try:
                with Proxied(port, v1(client, port)) as smtp:
                    smtp.starttls(context=h.pki.client_context())
                    smtp.ehlo("tool.test")
                    return smtp.login(user, password)[0]
            except smtplib.SMTPResponseException as exc:
                return exc.smtp_code
            except smtplib.SMTPServerDisconnected:
                return 0  # locked out: the session was ended

        for _ in range(3):  # one client guesses (the last may end the session)
            assert await asyncio.to_thread(login, "127.0.0.5", "campaign", "x") in (535, 421, 0)
        assert await asyncio.to_thread(login, "127.0.0.5", "campaign", PASSWORD) != 235
        # another client behind the same balancer is not punished for it
        assert await asyncio.to_thread(login, "127.0.0.6", "campaign", PASSWORD) == 235


@pytest.mark.parametrize("send_proxy", ["send-proxy", "send-proxy-v2"])
async def test_through_haproxy_the_gateway_sees_the_real_client(tmp_path, pki, database,
                                                                 proxied_env, send_proxy):
    async with running_harness(tmp_path, pki, database) as h:
        with haproxy(tmp_path, h.gateway.ports.submission, send_proxy) as port:
            def send(source: str) -> object:
                with smtplib.SMTP("127.0.0.1", port, timeout=10,
                                  source_address=(source, 0)) as smtp:
                    smtp.ehlo("tool.test")
                    try:
                        return smtp.sendmail("sales@acme.example", ["a@example.org"],
                                             messages.simple())
                    except smtplib.SMTPSenderRefused as exc:
                        return exc.smtp_code

            assert await asyncio.to_thread(send, "127.0.0.2") == {}  # its IP credential
            assert await asyncio.to_thread(send, "127.0.0.7") == 530  # no credential: AUTH
        assert len(h.sink.received) == 1


class ProxiedTLS(smtplib.SMTP_SSL):
    """smtplib on the implicit-TLS port behind a balancer: the PROXY header in clear (here
    in two pieces, as a slow network may deliver it), then TLS."""

    def __init__(self, port: int, header: bytes, context, source: str = BALANCER) -> None:
        self._header = header
        super().__init__("127.0.0.1", port, timeout=10, source_address=(source, 0),
                         context=context)

    def _get_socket(self, host, port, timeout):  # type: ignore[no-untyped-def]
        sock = socket.create_connection((host, port), timeout, self.source_address)
        try:
            sock.sendall(self._header[:7])
            time.sleep(0.05)
            sock.sendall(self._header[7:])
            return self.context.wrap_socket(sock, server_hostname="localhost")
        except OSError:
            sock.close()
            raise


def test_the_header_length_is_known_before_the_handshake(database):
    from gateway.smtp.proxy_tls import header_length

    assert header_length(v2("127.0.0.2", 465)) == len(v2("127.0.0.2", 465))
    assert header_length(v2("127.0.0.2", 465)[:15]) is None  # more bytes needed
    assert header_length(v1("127.0.0.2", 465) + b"\x16\x03\x01") == len(v1("127.0.0.2", 465))
    assert header_length(b"PROXY TCP4 1.2.3.4") is None
    assert header_length(b"PROXY " + b"9" * 120) == -1  # no CRLF within 107 bytes
    assert header_length(b"\x16\x03\x01\x02\x00") == -1  # a ClientHello with no header
    assert header_length(b"") is None


async def test_on_the_implicit_tls_port_the_header_comes_before_tls(tmp_path, pki, database,
                                                                    proxied_env):
    async with running_harness(tmp_path, pki, database) as h:
        port = h.tls_port

        def run() -> dict[str, object]:
            seen: dict[str, object] = {}
            context = h.pki.client_context()
            with ProxiedTLS(port, v2("127.0.0.2", port), context) as smtp:  # IP credential
                smtp.ehlo("tool.test")
                seen["ip credential"] = smtp.sendmail("sales@acme.example", ["a@example.org"],
                                                      messages.simple())
            with ProxiedTLS(port, v1("127.0.0.9", port), context) as smtp:  # must AUTH
                smtp.ehlo("tool.test")
                seen["unknown"] = smtp.mail("sales@acme.example")[0]
                smtp.rset()
                smtp.login("campaign", PASSWORD)
                seen["after auth"] = smtp.mail("sales@acme.example")[0]
            for name, header, source in (("not a balancer", v2("127.0.0.2", port), "127.0.0.1"),
                                         ("no header", b"", BALANCER)):
                try:
                    with ProxiedTLS(port, header, context, source=source) as smtp:
                        seen[name] = smtp.noop()[0]
                except (OSError, smtplib.SMTPServerDisconnected):
                    seen[name] = "disconnected"
            return seen

        seen = await asyncio.to_thread(run)
        assert seen == {"ip credential": {}, "unknown": 530, "after auth": 250,
                        "not a balancer": "disconnected", "no header": "disconnected"}


async def test_through_haproxy_implicit_tls_keeps_the_real_client(tmp_path, pki, database,
                                                                 proxied_env):
    async with running_harness(tmp_path, pki, database) as h:
        with haproxy(tmp_path, h.tls_port, "send-proxy-v2") as port:
            def send(source: str) -> object:
                with smtplib.SMTP_SSL("localhost", port, timeout=10, source_address=(source, 0),
                                      context=h.pki.client_context()) as smtp:
                    smtp.ehlo("tool.test")
                    try:
                        return smtp.sendmail("sales@acme.example", ["a@example.org"],
                                             messages.simple())
                    except smtplib.SMTPSenderRefused as exc:
                        return exc.smtp_code

            assert await asyncio.to_thread(send, "127.0.0.2") == {}  # its IP credential
            assert await asyncio.to_thread(send, "127.0.0.7") == 530  # no credential: AUTH
        assert len(h.sink.received) == 1


def banner_after(header: bytes, port: int, context: ssl.SSLContext) -> bytes:
    """The header and the ClientHello in one segment (how a balancer may forward them):
    the bytes after the header must reach the handshake."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    with socket.create_connection(("127.0.0.1", port), 10, (BALANCER, 0)) as sock:
        sock.sendall(header + outgoing.read())
        while True:
            data = sock.recv(65536)
            assert data, "closed during the handshake"
            incoming.write(data)
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            finally:
                if outgoing.pending:
                    sock.sendall(outgoing.read())
        banner = b""
        while not banner.endswith(b"\r\n"):
            try:
                banner += tls.read()
            except ssl.SSLWantReadError:
                incoming.write(sock.recv(65536))
        return banner


async def test_the_client_hello_in_the_headers_segment_is_not_lost(tmp_path, pki, database,
                                                                   proxied_env):
    async with running_harness(tmp_path, pki, database) as h:
        banner = await asyncio.to_thread(banner_after, v2("127.0.0.2", h.tls_port), h.tls_port,
                                         h.pki.client_context())
        assert banner.startswith(b"220 ")
