"""The AUTH lockout, attacked as a stranger would use it: as a lever to lock the customer out.

Wrong passwords from one network back that network off for that login only; a login's failure
budget, once spent, shuts out only networks it was never used from; counters are shared by
every node (two gateways on one database here); behind HAProxy the real client is the key;
and when the counters cannot be reached, AUTH fails closed and temporary.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.app.service import Gateway
from gateway.config import AuthConfig
from gateway.limits.counters import DatabaseCounters
from gateway.protocol import replies
from gateway.smtp.auth_throttle import Admission, AuthThrottle, client_network
from gateway.store.engine import create_engine, upgrade
from tests.conftest import OTHER_PASSWORD, PASSWORD, Pki, running_harness
from tests.support.proxy import BALANCER, Proxied, haproxy, v1

pytestmark = pytest.mark.usefixtures("proxied")


def v1_any(client: str, port: int) -> bytes:
    family = "TCP6" if ":" in client else "TCP4"
    local = "::1" if ":" in client else "127.0.0.1"
    return f"PROXY {family} {client} {local} 40000 {port}\r\n".encode()


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY__SMTP__PROXY_PROTOCOL", "true")
    monkeypatch.setenv("GATEWAY__SMTP__LOAD_BALANCERS", f'["{BALANCER}/32"]')
    monkeypatch.setenv("GATEWAY__SMTP__AUTH__MAX_FAILURES", "3")
    monkeypatch.setenv("GATEWAY__SMTP__AUTH__LOGIN_FAILURE_BUDGET", "6")


def login(port: int, pki: Pki, client: str, password: str, user: str = "campaign") -> int:
    """One AUTH from `client` (named by the balancer's PROXY header): the reply code, or 0
    when the gateway ended the session."""
    try:
        with Proxied(port, v1_any(client, port)) as smtp:
            smtp.starttls(context=pki.client_context())
            smtp.ehlo("tool.test")
            return plain(smtp, user, password)
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    except smtplib.SMTPServerDisconnected:
        return 0


def plain(smtp: smtplib.SMTP, user: str, password: str) -> int:
    """One AUTH PLAIN: smtplib's login() would try LOGIN after a refused PLAIN (two guesses)."""
    smtp.user, smtp.password = user, password
    return smtp.auth("PLAIN", smtp.auth_plain)[0]


def test_the_unit_of_back_off_is_an_ipv4_address_or_an_ipv6_64():
    assert client_network("192.0.2.7") == "192.0.2.7"
    assert client_network("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_network("2001:db8:1:2:aaaa::1") == client_network("2001:db8:1:2:ffff::9")
    assert client_network("2001:db8:1:2::1") != client_network("2001:db8:1:3::1")


async def test_wrong_passwords_from_anywhere_do_not_lock_the_customer_out(
        tmp_path: Path, pki: Pki, database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__SMTP__AUTH__LOGIN_FAILURE_BUDGET", "50")
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.submission

        def run() -> dict[str, object]:
            seen: dict[str, object] = {}
            seen["attacker"] = [login(port, pki, "198.51.100.7", "guess") for _ in range(4)]
            seen["attacker, right password"] = login(port, pki, "198.51.100.7", PASSWORD)
            seen["customer"] = login(port, pki, "203.0.113.20", PASSWORD)
            # IPv6: the attacker's whole /64 is backed off, the next /64 is not
            seen["v6 attacker"] = [login(port, pki, "2001:db8:1:2::1", "guess")
                                   for _ in range(3)]
            seen["v6 same /64"] = login(port, pki, "2001:db8:1:2::ffff", PASSWORD)
            seen["v6 other /64"] = login(port, pki, "2001:db8:1:3::1", PASSWORD)
            return seen

        seen = await asyncio.to_thread(run)
        assert seen["attacker"][:2] == [535, 535]
        assert seen["attacker"][2] in (421, 0) and seen["attacker"][3] in (421, 0)
        assert seen["attacker, right password"] in (421, 0)  # backed off, even when right
        assert seen["customer"] == 235
        assert seen["v6 attacker"][2] in (421, 0)
        assert seen["v6 same /64"] in (421, 0)
        assert seen["v6 other /64"] == 235


async def test_a_spent_budget_shuts_out_only_networks_the_login_never_used(
        tmp_path: Path, pki: Pki, database, caplog: pytest.LogCaptureFixture):
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.submission

        def run() -> dict[str, object]:
            seen: dict[str, object] = {"known": login(port, pki, "203.0.113.20", PASSWORD)}
            # a botnet: three networks, two guesses each, spends the budget of six
            seen["guesses"] = [login(port, pki, f"198.51.100.{n}", "guess")
                               for n in (1, 2, 3) for _ in range(2)]
            seen["new network"] = login(port, pki, "198.51.100.99", PASSWORD)
            seen["known network"] = login(port, pki, "203.0.113.20", PASSWORD)
            seen["other login"] = login(port, pki, "198.51.100.99", OTHER_PASSWORD,
                                        user="other-tool")
            return seen

        with caplog.at_level(logging.ERROR, logger="gateway.auth"):
            seen = await asyncio.to_thread(run)
        assert seen["known"] == 235
        assert seen["guesses"] == [535] * 5 + [seen["guesses"][5]]
        assert seen["guesses"][5] in (421, 0)  # the sixth spends the budget
        assert seen["new network"] in (421, 0)  # even with the right password
        assert seen["known network"] == 235  # the customer keeps working
        assert seen["other login"] == 235
        alerts = [r for r in caplog.records if getattr(r, "alert", None) == "ops"]
        assert [r.getMessage() for r in alerts] == [
            "login failure budget spent: unknown networks are refused"]
        assert "campaign" not in repr(alerts[0].__dict__)  # ids only, as every log line


async def test_two_nodes_share_the_counters(tmp_path: Path, pki: Pki, database):
    async with running_harness(tmp_path, pki, database) as a:
        config = config_module.load(a.config_path)
        b = Gateway(config, str(a.config_path))
        await b.start(run_queue=False, roles=("smtp",))
        try:
            ports = [a.gateway.ports.submission, b.ports.submission]

            def run() -> list[int]:
                # two guesses on node A, the third on node B: B knows about A's
                return [login(ports[0], pki, "198.51.100.7", "guess"),
                        login(ports[0], pki, "198.51.100.7", "guess"),
                        login(ports[1], pki, "198.51.100.7", "guess"),
                        login(ports[1], pki, "198.51.100.7", PASSWORD),
                        login(ports[0], pki, "198.51.100.7", PASSWORD)]

            answers = await asyncio.to_thread(run)
        finally:
            await b.stop(deadline=1)
        assert answers[:2] == [535, 535]
        assert all(code in (421, 0) for code in answers[2:]), answers


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_through_haproxy_the_throttle_keys_on_the_real_client(
        tmp_path: Path, pki: Pki, database):
    async with running_harness(tmp_path, pki, database) as h:
        with haproxy(tmp_path, h.gateway.ports.submission, "send-proxy-v2") as port:
            def attempt(source: str, password: str) -> int:
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0)) as smtp:
                        smtp.starttls(context=pki.client_context())
                        smtp.ehlo("tool.test")
                        return plain(smtp, "campaign", password)
                except smtplib.SMTPResponseException as exc:
                    return exc.smtp_code
                except smtplib.SMTPServerDisconnected:
                    return 0

            def run() -> list[int]:
                guesses = [attempt("127.0.0.5", "guess") for _ in range(3)]
                return [*guesses, attempt("127.0.0.5", PASSWORD),
                        attempt("127.0.0.6", PASSWORD)]

            answers = await asyncio.to_thread(run)
        assert answers[:2] == [535, 535] and answers[2] in (421, 0) and answers[3] in (421, 0)
        assert answers[4] == 235  # the balancer's address never stood for the clients


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_counters_out_of_reach_fail_closed(tmp_path: Path, pki: Pki, database,
                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__LIMITS__REDIS_URL", '"redis://127.0.0.1:9/0"')  # discard
    async with running_harness(tmp_path, pki, database) as h:
        port = h.gateway.ports.submission

        def run() -> tuple[int, bytes]:
            with Proxied(port, v1("127.0.0.6", port)) as smtp:
                smtp.starttls(context=pki.client_context())
                smtp.ehlo("tool.test")
                try:
                    plain(smtp, "campaign", PASSWORD)
                except smtplib.SMTPAuthenticationError as exc:
                    return exc.smtp_code, exc.smtp_error
                return 235, b""

        code, text = await asyncio.to_thread(run)
        expected = replies.AUTH_TEMPORARY
        assert (code, text[:5]) == (expected.code, expected.status.encode())


async def test_guesses_straddling_a_window_edge_are_counted_together(database):
    """Three wrong passwords in two seconds back the network off even when a window's edge
    falls between them: a lone fixed bucket would forget the first two."""
    engine = create_engine(database.url, schema=database.schema)
    await upgrade(engine)
    now = [1_000_000_000 // 300 * 300 + 299.5]  # half a second before an edge of 300 s
    throttle = AuthThrottle(DatabaseCounters(engine), AuthConfig(max_failures=3),
                            lambda: b"k" * 32, clock=lambda: now[0])
    try:
        for _ in range(2):
            assert await throttle.failed("campaign", "192.0.2.7", 1) is Admission.OPEN
        now[0] += 1.0  # over the edge
        assert await throttle.admit("campaign", "192.0.2.7") is Admission.OPEN
        assert await throttle.failed("campaign", "192.0.2.7", 1) is Admission.BACKED_OFF
        assert await throttle.admit("campaign", "192.0.2.7") is Admission.BACKED_OFF
        assert await throttle.admit("campaign", "192.0.2.8") is Admission.OPEN
        now[0] += 300  # the first two have aged out; the third is still inside a window
        assert await throttle.admit("campaign", "192.0.2.7") is Admission.OPEN
        assert await throttle.failed("campaign", "192.0.2.7", 1) is Admission.OPEN
        now[0] += 600  # every failure has aged out
        assert await throttle.admit("campaign", "192.0.2.7") is Admission.OPEN
    finally:
        await engine.dispose()
