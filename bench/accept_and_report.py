"""The added cost of a suppressed recipient under accept-and-report (issue 23), against the
default refuse: CPU-ms of the gateway process per message, each message to one deliverable
and one suppressed recipient, the two modes interleaved round by round on one gateway
(development configuration, SQLite, Maildir capture upstream). Under accept-and-report the
CPU includes writing the report, its rows and event, and delivering the report.

    python bench/accept_and_report.py [--messages 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
SUPPRESSED = "opted-out@example.org"  # the demo's own opt-out
BODY = ("From: Demo Ltd <outreach@demo.example>\r\nTo: lead@example.org\r\n"
        "Subject: A short note\r\n\r\n" + "Hello,\r\n\r\n" + "A line of text.\r\n" * 200)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway(work: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


async def send(port: int, password: str, cert: Path, n: int, accepted: bool) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, tls_context=context,
                           start_tls=True)
    await smtp.connect()
    await smtp.login("demo", password)
    for i in range(n):
        await smtp.mail("outreach@demo.example")
        await smtp.rcpt(f"lead{i}@example.org")
        try:
            await smtp.rcpt(SUPPRESSED)
            assert accepted, "refuse mode answered 250 to a suppressed recipient"
        except aiosmtplib.SMTPRecipientRefused:
            assert not accepted
        await smtp.data(BODY)
    await smtp.quit()


def files(path: Path) -> int:
    return len(list(path.iterdir())) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocg-bench-aar-"))
    config = (ROOT / "deploy/development.toml").read_text()
    for key, port in (("implicit_tls_port", 2465), ("public_port", 2080),
                      ("admin_port", 2081), ("mailto_port", 2526)):
        config = config.replace(f"{key} = {port}", f"{key} = 0")
    config = config.replace("submission_port = 2587", "submission_port = 0")
    (work / "gateway.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env.update(GATEWAY_CONFIG="gateway.toml", GATEWAY__TENANTS__SETTINGS_REFRESH="0.2",
               GATEWAY__QUEUE__POLL_INTERVAL="0.1", GATEWAY__LOG_LEVEL='"warning"')
    gateway(work, env, "db", "upgrade")
    gateway(work, env, "demo")
    password = (work / "var/demo-credentials.txt").read_text().split("password: ")[1].split()[0]
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().rsplit(":", 1)[1])
    outbox = work / "var/outbox/new"
    results: dict[str, list[float]] = {"refuse": [], "accept-and-report": []}
    try:
        for _ in range(args.rounds):
            for mode in results:
                gateway(work, env, "tenant", "set", "demo", "suppressed_recipients", mode)
                time.sleep(0.5)
                before_files, before = files(outbox), cpu_seconds(proc.pid)
                started = time.perf_counter()
                asyncio.run(send(port, password, work / "var/tls/dev-cert.pem",
                                 args.messages, mode != "refuse"))
                expected = args.messages * (2 if mode != "refuse" else 1)  # + the reports
                while files(outbox) - before_files < expected:
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started
                used = cpu_seconds(proc.pid) - before
                results[mode].append(used * 1000 / args.messages)
                print(f"{mode:18} {used * 1000 / args.messages:6.2f} CPU-ms/msg  "
                      f"{args.messages / elapsed:6.0f} msgs/s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    refuse = min(results["refuse"])
    accept = min(results["accept-and-report"])
    print(f"\nbest of {args.rounds}: refuse {refuse:.2f} CPU-ms/msg, accept-and-report "
          f"{accept:.2f} CPU-ms/msg: {accept - refuse:+.2f} ms per suppressed recipient "
          "(its report, rows and event, and the report's delivery)")


if __name__ == "__main__":
    main()
