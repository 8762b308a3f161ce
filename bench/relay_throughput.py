"""Relay throughput, added latency and CPU per message: the gateway against a direct send.

Uses the same tools as the peer figures in issue 2: Postfix's smtp-source (load) and
smtp-sink (upstream), 10 KB messages, 20 sessions, one gateway process with its shipped
defaults (printed), SQLite, the audit trail on. Also: sequential latency with one session,
and STARTTLS + AUTH with a new session per message from a load generator on aiosmtplib.

    python bench/relay_throughput.py [--messages 5000] [--database postgres] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pstats
import secrets
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import config as config_module  # noqa: E402
from gateway.directory.store import DirectoryStore  # noqa: E402
from gateway.smtp.tls import ensure_self_signed  # noqa: E402
from gateway.store.engine import create_engine, upgrade  # noqa: E402

SENDER = "sales@bench.example"
POSTAL_ADDRESS = "Bench Ltd, 1 Example Street, 75002 Paris"  # every tenant needs one
PASSWORD = "bench password 0123456789"
SIZE = 10 * 1024
SESSIONS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def smtp_source(port: int, messages: int, sessions: int = SESSIONS) -> float:
    """Messages per second smtp-source achieved against `port`."""
    start = time.perf_counter()
    subprocess.run(["smtp-source", "-s", str(sessions), "-l", str(SIZE), "-m", str(messages),
                    "-f", SENDER, "-t", "rcpt@example.org", "-M", "bench.client",
                    f"127.0.0.1:{port}"], check=True, timeout=600)
    return messages / (time.perf_counter() - start)


def message(i: int) -> bytes:
    body = ("x" * 76 + "\r\n") * (SIZE // 78)
    return (f"From: {SENDER}\r\nTo: rcpt@example.org\r\nSubject: bench {i}\r\n"
            f"Message-ID: <{i}.{secrets.token_hex(4)}@bench.example>\r\n"
            f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\n{body}").encode()


async def sequential_latency(port: int, count: int) -> list[float]:
    """One session, messages one after another; seconds per message."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    times = []
    for i in range(count):
        data = message(i)
        start = time.perf_counter()
        await client.sendmail(SENDER, ["rcpt@example.org"], data)
        times.append(time.perf_counter() - start)
    await client.quit()
    return times[20:]  # warm-up excluded


async def tls_auth_load(port: int, count: int, concurrency: int, ca_file: str) -> float:
    """A new session per message: connect, STARTTLS, AUTH, send, QUIT."""
    context = ssl.create_default_context(cafile=ca_file)
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await aiosmtplib.send(message(i), sender=SENDER, recipients=["rcpt@example.org"],
                                  hostname="127.0.0.1", port=port, start_tls=True,
                                  tls_context=context, username="bench", password=PASSWORD,
                                  # not 127.0.0.1, which holds the IP credential smtp-source uses
                                  source_address=("127.0.0.2", 0))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - start)


def tls_auth_load_process(port: int, count: int, ca_file: str) -> float:
    """Run the TLS load generator in its own process so it does not share the gateway's core."""
    code = (f"import asyncio,sys; sys.path.insert(0,{str(ROOT)!r}); "
            "from bench.relay_throughput import tls_auth_load; "
            f"print(asyncio.run(tls_auth_load({port}, {count}, {SESSIONS}, {ca_file!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=600)
    return float(out.stdout.strip())


def write_config(work: Path, sink_port: int, smtp_port: int, database: str,
                 schema: str = "bench") -> Path:
    cert, key = ensure_self_signed(work / "tls", "localhost")
    master = work / "master.key"
    master.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    master.chmod(0o600)
    if database == "postgres":
        db = f'url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"\nschema = "{schema}"'
    else:
        db = f'url = "sqlite+aiosqlite:///{work}/gateway.db"'
    # Only what a deployment must set; everything else is the shipped default.
    text = f"""log_level = "warning"
data_dir = "{work}"
[smtp]
hostname = "localhost"
submission_port = {smtp_port}
implicit_tls = false
tls_cert = "{cert}"
tls_key = "{key}"
[[smtp.ip_credentials]]
login = "bench"
networks = ["127.0.0.1/32"]
[database]
{db}
[vault]
master_key_file = "{master}"
[unsubscribe]
base_url = "https://links.bench.example"
[upstreams.sink]
kind = "smtp"
host = "127.0.0.1"
port = {sink_port}
tls = "none"
"""
    path = work / "bench.toml"
    path.write_text(text)
    return path


async def prepare(config_path: Path, database: str) -> None:
    config = config_module.load(config_path, {})
    if database == "postgres":
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        schema = config.database.schema
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        await conn.close()
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    store = DirectoryStore(engine)
    await store.add_tenant("bench", "bench")
    await store.add_domain("bench", "bench.example", "bench")
    await store.mark_verified("bench.example", "bench", "benchmark")
    await store.add_login("bench", "bench", PASSWORD, "bench")
    await store.add_mailbox("bench", SENDER, "sink", "bench")
    await store.set_tenant_setting("bench", "postal_address", POSTAL_ADDRESS, "bench")
    await engine.dispose()


def print_config(config_path: Path) -> None:
    import dataclasses

    config = config_module.load(config_path, {})
    print("configuration (shipped defaults plus the listed file):")
    for section in ("smtp", "database", "audit", "tenants"):
        values = dataclasses.asdict(getattr(config, section))
        values.pop("ip_credentials", None)
        print(f"  [{section}] " + json.dumps(values, default=str))


def summarise_profile(path: Path, messages: int) -> None:
    stats = pstats.Stats(str(path))
    buckets: dict[str, float] = {}
    total = 0.0
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        total += tottime
        key = "other"
        for marker, label in (
            ("/aiosmtpd/", "aiosmtpd (server)"), ("/aiosmtplib/", "aiosmtplib (upstream)"),
            ("/gateway/policy/", "gateway policy"), ("/gateway/smtp/", "gateway smtp"),
            ("/gateway/store/", "gateway store"), ("/gateway/audit/", "gateway audit"),
            ("/sqlalchemy/", "sqlalchemy"),
            ("/aiosqlite/", "aiosqlite"), ("/asyncpg/", "asyncpg"), ("/email/", "email parser"),
            ("/email_validator/", "email-validator"), ("/asyncio/", "asyncio"),
            ("/ssl.py", "ssl"), ("/logging/", "logging"), ("/cryptography/", "cryptography"),
            ("~", "builtins (socket I/O, select)"),
        ):
            if marker in filename:
                key = label
                break
        buckets[key] = buckets.get(key, 0.0) + tottime
    stats.sort_stats("tottime").print_stats(15)
    print(f"profile (cProfile, all threads of the event loop; {messages} messages):")
    for label, seconds in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"  {label:34s} {1000 * seconds / messages:6.3f} ms/msg  "
              f"{100 * seconds / total:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--profile", action="store_true",
                        help="run the gateway under cProfile and print where time goes")
    parser.add_argument("--skip-tls", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        sink_port, smtp_port = free_port(), free_port()
        config_path = write_config(work, sink_port, smtp_port, args.database)
        asyncio.run(prepare(config_path, args.database))
        print_config(config_path)
        sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
        wait_port(sink_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        command = [sys.executable]
        if args.profile:
            command += ["-m", "cProfile", "-o", str(work / "gateway.prof")]
            command += [str(ROOT / "gateway/__main__.py")]
        else:
            command += ["-m", "gateway"]
        gateway = subprocess.Popen(command + ["--config", str(config_path), "serve"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_port(smtp_port)
            smtp_source(smtp_port, 500)  # warm-up: connection pool, caches
            direct = smtp_source(sink_port, args.messages)
            cpu_before = cpu_seconds(gateway.pid)
            through = smtp_source(smtp_port, args.messages)
            cpu_ms = 1000 * (cpu_seconds(gateway.pid) - cpu_before) / args.messages
            print(f"\nsmtp-source -> smtp-sink, {SIZE // 1024} KB messages, {SESSIONS} sessions, "
                  f"{args.messages} messages, database {args.database}")
            print(f"  direct to the sink      {direct:8.0f} msgs/s")
            print(f"  through the gateway     {through:8.0f} msgs/s   (one worker process)")
            print(f"  ratio gateway/direct    {through / direct:8.2f}")
            print(f"  gateway CPU per message {cpu_ms:8.3f} ms")

            direct_lat = asyncio.run(sequential_latency(sink_port, 520))
            gw_lat = asyncio.run(sequential_latency(smtp_port, 520))
            med_d, med_g = statistics.median(direct_lat), statistics.median(gw_lat)
            p99_d = statistics.quantiles(direct_lat, n=100)[98]
            p99_g = statistics.quantiles(gw_lat, n=100)[98]
            print("\none session, sequential sends (aiosmtplib client), 500 messages")
            print(f"  direct   median {1000 * med_d:6.2f} ms   p99 {1000 * p99_d:6.2f} ms")
            print(f"  gateway  median {1000 * med_g:6.2f} ms   p99 {1000 * p99_g:6.2f} ms")
            print(f"  added    median {1000 * (med_g - med_d):6.2f} ms   "
                  f"p99 {1000 * (p99_g - p99_d):6.2f} ms")

            if not args.skip_tls:
                count = max(200, args.messages // 5)
                rate = tls_auth_load_process(smtp_port, count, str(work / "tls/dev-cert.pem"))
                print(f"\nSTARTTLS + AUTH, new session per message, {SESSIONS} concurrent, "
                      f"{count} messages")
                print(f"  through the gateway     {rate:8.0f} msgs/s")
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
            sink.terminate()
            sink.wait(timeout=10)
        if args.profile:
            summarise_profile(work / "gateway.prof", args.messages * 2 + 500 + 520)


if __name__ == "__main__":
    main()
