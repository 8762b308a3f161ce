"""The gateway as users meet it: swaks, IP credentials, reload, shutdown, `make run`'s demo."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx
import pytest

from gateway.protocol import replies
from tests.conftest import PASSWORD, Harness, Pki, running_harness
from tests.support import messages

ROOT = Path(__file__).parents[2]


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("swaks") is None:
        if os.environ.get("CI"):
            pytest.fail("swaks is required (scripts/install-system-packages.sh installs it)")
        pytest.skip("swaks not installed")
    return subprocess.run(["swaks", "--hide-informational", *args], capture_output=True,
                          text=True, timeout=30)


async def test_swaks_with_starttls_and_auth_login(harness: Harness):
    ca = str(Path(harness.pki.cert_file).with_name("ca.pem"))
    result = await asyncio.to_thread(
        swaks, "--server", f"127.0.0.1:{harness.port}", "--tls", "--tls-verify",
        "--tls-ca-path", ca, "--tls-sni", "localhost",
        "--auth", "LOGIN", "--auth-user", "campaign", "--auth-password", PASSWORD,
        "--from", "sales@acme.example", "--to", "bob@example.org",
        "--header", "From: Sales <sales@acme.example>")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Ok: queued as" in result.stdout
    (got,) = harness.sink.received
    assert got.recipients == ["bob@example.org"]


async def test_swaks_sees_the_refusal_for_a_foreign_sender(harness: Harness):
    result = await asyncio.to_thread(
        swaks, "--server", f"127.0.0.1:{harness.tls_port}", "--tlsc",
        "--auth", "PLAIN", "--auth-user", "campaign", "--auth-password", PASSWORD,
        "--from", "ceo@other.example", "--to", "bob@example.org")
    assert str(replies.SENDER_NOT_ALLOWED) in result.stdout
    assert harness.sink.received == []


async def test_ip_credential_sends_without_auth_and_only_as_its_tenant(
        tmp_path: Path, pki: Pki, database):
    extra = '[[smtp.ip_credentials]]\nlogin = "campaign"\nnetworks = ["127.0.0.1/32"]\n'
    async with running_harness(tmp_path, pki, database, extra=extra) as h:
        def run():
            with smtplib.SMTP("127.0.0.1", h.port, timeout=5) as smtp:  # no TLS, no AUTH
                smtp.ehlo("tool")
                ok = smtp.sendmail("sales@acme.example", ["a@example.org"], messages.simple())
                try:
                    smtp.sendmail("ceo@other.example", ["a@example.org"],
                                  messages.simple(sender="ceo@other.example"))
                except smtplib.SMTPSenderRefused as exc:
                    return ok, exc.smtp_code
            return ok, None

        ok, foreign = await asyncio.to_thread(run)
        assert ok == {} and foreign == 553
        (got,) = h.sink.received
        assert b"with ESMTP id" in got.content.split(b"\r\n")[0]  # no TLS, no AUTH


async def test_shutdown_answers_421_4_3_2_to_open_sessions(harness: Harness):
    def open_session():
        smtp = harness.client()
        return smtp

    smtp = await asyncio.to_thread(open_session)
    try:
        harness.gateway.handler.closing = True
        code, text = await asyncio.to_thread(smtp.docmd, "MAIL", "FROM:<sales@acme.example>")
        assert (code, text.decode().split(" ")[0]) == (421, "4.3.2")
    finally:
        smtp.close()
        harness.gateway.handler.closing = False


async def test_reload_picks_up_new_limits_and_keeps_running_on_a_bad_file(harness: Harness):
    path = harness.config_path
    original = path.read_text()
    path.write_text(original.replace("max_header_count = 50", "max_header_count = 5"))
    harness.gateway.reload()
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(8)) + messages.simple()
    with pytest.raises(smtplib.SMTPDataError) as info:
        await harness.send(many, ["a@example.org"])
    assert info.value.smtp_code == replies.HEADERS_TOO_LARGE.code
    path.write_text(original.replace("max_header_count = 50", "max_header_count = 'x'"))
    harness.gateway.reload()  # refused and logged; the running configuration stays
    assert harness.gateway.config.smtp.max_header_count == 5


def demo_review_queue(review: str, password: str, code: str) -> str:
    """Sign in as the demo reviewer (the session cookie is Secure: sent by hand over the
    loopback http listener, as a browser would) and fetch the queue page."""
    with httpx.Client(base_url=review) as client:
        page = client.get("login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        login_cookie = page.headers["set-cookie"].split(";", 1)[0]
        signed_in = client.post("login", data={
            "csrf": csrf, "username": "reviewer", "password": password, "code": code},
            headers={"Cookie": login_cookie})
        assert signed_in.status_code == 303, signed_in.text
        session = signed_in.headers["set-cookie"].split(";", 1)[0]
        queue = client.get("", headers={"Cookie": session})
        assert queue.status_code == 200
        return queue.text


def test_make_run_flow_starts_and_delivers_to_the_outbox(tmp_path: Path):
    """What `make run` does, in a copy of the development configuration."""
    work = tmp_path / "run"
    work.mkdir()
    config = (ROOT / "deploy/development.toml").read_text()
    config = config.replace("submission_port = 2587", "submission_port = 0").replace(
        "implicit_tls_port = 2465", "implicit_tls_port = 0").replace(
        "public_port = 2080", "public_port = 0").replace("admin_port = 2081", "admin_port = 0"
    ).replace("mailto_port = 2526", "mailto_port = 0")
    (work / "gateway.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env["GATEWAY_CONFIG"] = "gateway.toml"
    gateway = [sys.executable, "-m", "gateway"]
    for step in (["db", "upgrade"], ["demo"]):
        result = subprocess.run(gateway + step, cwd=work, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    creds = (work / "var/demo-credentials.txt").read_text()
    password = creds.split("password: ")[1].split()[0]
    proc = subprocess.Popen(gateway + ["serve"], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        banner = [proc.stdout.readline() for _ in range(10)]
        assert "NOT FOR PRODUCTION" in banner[6] and password in banner[7]
        assert banner[5].startswith("Review pages: http://127.0.0.1:")
        port = int(banner[0].rsplit(":", 1)[1])
        assert banner[2].startswith("SMTP mailto unsubscribe: 127.0.0.1:")
        admin = banner[4].split()[3]  # http://127.0.0.1:PORT/api/v1/
        assert banner[3].startswith("HTTP public: http://127.0.0.1:")
        public = banner[3].split()[2]
        with urllib.request.urlopen(admin + "openapi.json", timeout=10) as response:
            assert "/api/v1/mailboxes" in json.loads(response.read())["paths"]
        context = ssl.create_default_context(cafile=str(work / "var/tls/dev-cert.pem"))
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login("demo", password)
            refused = smtp.sendmail("outreach@demo.example",
                                    ["alice@example.org", "opted-out@example.org"],
                                    messages.simple(sender="outreach@demo.example"))
        assert refused["opted-out@example.org"][0] == 550  # the demo's opt-out
        delivered = list((work / "var/outbox/new").iterdir())
        assert len(delivered) == 1
        copy = delivered[0].read_bytes()
        assert b"Delivered-To: alice@example.org" in copy
        assert b"opted-out" not in copy
        # What the demo shows: both signatures, the unsubscribe fields, the footer ...
        assert copy.count(b"DKIM-Signature: v=1;") == 2
        (link,) = re.findall(rb"List-Unsubscribe: <(http://127\.0\.0\.1:\d+/u/[a-z2-7]+)>",
                             copy)
        assert link.decode().startswith(public)
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in copy
        assert b"Demo Ltd, 1 Example Street, 75002 Paris, France" in copy and link in \
            copy.split(b"\r\n\r\n", 1)[1]
        # ... and the link works against the local HTTP side: the next RCPT is refused.
        request = urllib.request.Request(link.decode(), data=b"List-Unsubscribe=One-Click")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login("demo", password)
            smtp.mail("outreach@demo.example")
            assert smtp.rcpt("alice@example.org")[0] == 550
            smtp.rset()
            # An HTML message with a campaign tool's pixel: it leaves with the gateway's.
            html = messages.simple(sender="outreach@demo.example", to="bob@example.org").split(
                b"\r\n\r\n")[0].replace(b"text/plain", b"text/html") + (
                b'\r\n\r\n<html><body>Hi<img src="https://t.tool.example/o.gif?u=1" '
                b'width="1" height="1"></body></html>\r\n')
            smtp.sendmail("outreach@demo.example", ["bob@example.org"], html)
        (copy,) = [f.read_bytes() for f in (work / "var/outbox/new").iterdir()
                   if b"Delivered-To: bob@example.org" in f.read_bytes()]
        (pixel,) = re.findall(rb'<img src="(http://127\.0\.0\.1:\d+/p/[\w-]+)"', copy)
        assert b"t.tool.example" not in copy
        with urllib.request.urlopen(pixel.decode(), timeout=10) as response:
            assert response.headers["Content-Type"] == "image/gif"
        # A message with a card number is held, and the demo reviewer sees it on the pages.
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login("demo", password)
            held = messages.simple(sender="outreach@demo.example", to="carol@example.org")
            smtp.sendmail("outreach@demo.example", ["carol@example.org"],
                          held + b"Card 4111 1111 1111 1111\r\n")
        assert not any(b"carol@" in f.read_bytes() for f in (work / "var/outbox/new").iterdir())
        # The lawful basis, as the demo's banner tells it: a .de address is refused, a French
        # named person the tool states gets the Art. 14 notice in the first copy only.
        stated = b"X-Gateway-Recipient: <jean@societe.fr>; kind=named\r\n"
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login("demo", password)
            with pytest.raises(smtplib.SMTPDataError) as unlawful:
                smtp.sendmail("outreach@demo.example", ["anyone@firma.de"],
                              messages.simple(sender="outreach@demo.example"))
            assert unlawful.value.smtp_code == 550 and b"ocg-default v1" in \
                unlawful.value.smtp_error
            smtp.rset()
            for _ in range(2):
                smtp.sendmail("outreach@demo.example", ["jean@societe.fr"],
                              stated + messages.simple(sender="outreach@demo.example"))
        to_jean = sorted((f.read_bytes() for f in (work / "var/outbox/new").iterdir()
                          if b"Delivered-To: jean@societe.fr" in f.read_bytes()), key=len)
        assert len(to_jean) == 2 and b"GDPR Art. 14" in to_jean[1]
        assert b"GDPR Art. 14" not in to_jean[0] and b"X-Gateway-Recipient" not in to_jean[1]
        review = banner[5].split()[2]  # http://127.0.0.1:PORT/review/
        reviewer_password = creds.split("reviewer: reviewer  password: ")[1].split()[0]
        code = subprocess.run(gateway + ["user", "code", "reviewer"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60).stdout.strip()
        assert re.fullmatch(r"\d{6}", code)
        assert "sensitive-data" in demo_review_queue(review, reviewer_password, code)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=15)
        assert proc.returncode == 0, errors
        assert "Traceback" not in errors
