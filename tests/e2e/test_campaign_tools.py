"""Campaign tools from PyPI, unmodified, against a `make run` gateway (the development
configuration, on ports of its own), with one suppressed recipient in the run:

- with the default `refuse`, Django's `send_mass_mail` raises at the suppressed address and
  the rest of the batch is never sent, and `mailmerge` stops its run there: why tools want
  the other mode;
- with `suppressed_recipients = accept-and-report`, both runs complete, every other
  recipient's copy is delivered, nothing reaches the upstream for the suppressed address, and
  it is reported by a delivery report to the sender and a `suppressed` event.

Per-recipient rule (DESIGN): every recipient ends delivered, refused in the reply, or
reported by a delivery report.
"""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SUPPRESSED = "opted-out@example.org"  # the demo's own opt-out
RUN = ["alice@example.org", SUPPRESSED, "bob@example.org"]


@dataclass
class Demo:
    work: Path
    port: int
    password: str
    env: dict[str, str]

    def gateway(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "gateway", *args], cwd=self.work,
                              env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    def outbox(self) -> list[tuple[str, bytes]]:
        """(recipient, copy) for everything the capture upstream received."""
        box = mailbox.Maildir(str(self.work / "var/outbox"), create=False)
        return [(str(m["Delivered-To"]), m.as_bytes()) for m in box]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """`make run`'s steps on a copy of deploy/development.toml with free ports."""
    work = tmp_path / "run"
    work.mkdir()
    config = (ROOT / "deploy/development.toml").read_text()
    for key, port in (("submission_port", 2587), ("implicit_tls_port", 2465),
                      ("public_port", 2080), ("admin_port", 2081), ("mailto_port", 2526)):
        config = config.replace(f"{key} = {port}", f"{key} = 0")
    (work / "gateway.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env["GATEWAY_CONFIG"] = "gateway.toml"
    env["GATEWAY__QUEUE__POLL_INTERVAL"] = "0.2"  # reports go out at once
    demo = Demo(work, 0, "", env)
    demo.gateway("db", "upgrade")
    demo.gateway("demo")
    demo.password = (work / "var/demo-credentials.txt").read_text().split(
        "password: ")[1].split()[0]
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # SMTP submission (STARTTLS): 127.0.0.1:PORT
        demo.port = int(first.rsplit(":", 1)[1])
        yield demo
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


def django_batch(demo: Demo) -> subprocess.CompletedProcess[str]:
    """Django's send_mass_mail: one message per recipient, one connection."""
    script = textwrap.dedent(f"""
        import django, json
        from django.conf import settings
        settings.configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT={demo.port},
                           EMAIL_USE_TLS=True, EMAIL_HOST_USER="demo",
                           EMAIL_HOST_PASSWORD={demo.password!r})
        django.setup()
        from django.core.mail import send_mass_mail
        sent = send_mass_mail([("Quick question", "Hello,\\n\\nA short note.\\n",
                                "Demo Ltd <outreach@demo.example>", [to])
                               for to in {RUN!r}])
        print(json.dumps({{"sent": sent}}))
    """)
    env = {**demo.env, "SSL_CERT_FILE": str(demo.work / "var/tls/dev-cert.pem")}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)


def mailmerge_run(demo: Demo) -> subprocess.CompletedProcess[str]:
    """mailmerge's CLI: a template, a CSV database and a server configuration."""
    (demo.work / "mailmerge_server.conf").write_text(textwrap.dedent(f"""
        [smtp_server]
        host = 127.0.0.1
        port = {demo.port}
        security = STARTTLS
        username = demo
    """))
    (demo.work / "mailmerge_template.txt").write_text(textwrap.dedent("""\
        TO: {{email}}
        SUBJECT: A note for {{name}}
        FROM: Demo Ltd <outreach@demo.example>

        Hi {{name}},

        a short note.
    """))
    rows = "".join(f"{to},{to.split('@')[0]}\n" for to in RUN)
    (demo.work / "mailmerge_database.csv").write_text("email,name\n" + rows)
    mailmerge = Path(sys.executable).with_name("mailmerge")
    return subprocess.run([str(mailmerge), "--no-dry-run", "--no-limit"], cwd=demo.work,
                          input=demo.password + "\n", capture_output=True, text=True,
                          timeout=120, start_new_session=True)  # no tty: password on stdin


def delivered(demo: Demo) -> list[str]:
    return sorted(to for to, copy in demo.outbox() if b"Undelivered Mail" not in copy)


def wait_for_report(demo: Demo) -> bytes:
    for _ in range(100):
        reports = [copy for _, copy in demo.outbox() if b"Undelivered Mail" in copy]
        if reports:
            (report,) = reports
            return report
        time.sleep(0.1)
    raise AssertionError("no delivery report reached the sender")


def test_with_refuse_django_and_mailmerge_stop_at_the_suppressed_address(demo: Demo):
    django = django_batch(demo)
    assert django.returncode != 0 and "SMTPRecipientsRefused" in django.stderr
    merge = mailmerge_run(demo)
    assert merge.returncode != 0
    assert delivered(demo) == ["alice@example.org", "alice@example.org"]  # bob never


@pytest.mark.parametrize("tool", ["django", "mailmerge"])
def test_with_accept_and_report_the_run_completes_and_the_address_is_reported(
        demo: Demo, tool: str):
    demo.gateway("tenant", "set", "demo", "suppressed_recipients", "accept-and-report")
    time.sleep(2.5)  # tenants.settings_refresh: every worker sees the change within 2 s
    done = django_batch(demo) if tool == "django" else mailmerge_run(demo)
    assert done.returncode == 0, done.stdout + done.stderr
    if tool == "django":
        assert json.loads(done.stdout.splitlines()[-1]) == {"sent": 3}
    assert delivered(demo) == ["alice@example.org", "bob@example.org"]
    assert all(SUPPRESSED.encode() not in copy for to, copy in demo.outbox()
               if b"Undelivered Mail" not in copy)  # nothing left for it
    report = wait_for_report(demo)
    assert f"Final-Recipient: rfc822; {SUPPRESSED}".encode() in report
    assert b"Status: 5.7.1" in report and b"Action: failed" in report
    listed = demo.gateway("events", "demo")
    assert "suppressed" in listed.stdout
