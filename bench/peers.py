"""The gateway beside its peers, in one run, configurations interleaved (issue 25).

Every relay listens on loopback and forwards to one Postfix smtp-sink; the load is Postfix's
smtp-source (20 sessions). Relays:

- bare: an aiosmtpd -> aiosmtplib pass-through (bench/bare_passthrough.py), the floor;
- postfix: Debian's Postfix as a relay, a private instance set up here;
- postfix+dkim: the same with OpenDKIM signing RSA-2048 over a unix socket (on a TCP
  socket Nagle and delayed ACKs cost it ~90 ms a message);
- gw-min: the gateway with content checks off, no DKIM key, an empty suppression list;
- gw-full: every check, DKIM RSA-2048 and Ed25519, 1,000,000 suppression entries, footer
  and pixel takeover, the CFBL complaint fields (a link domain under the From domain, the
  inbound listener on), the audit chain, log level info; SQLite, one worker;
- gw-full-pg, gw-full-pg-2w: the same on PostgreSQL, with one and two workers.

Messages: text (`smtp-source -l 10240`) and HTML (~10 KB multipart/alternative, quoted-
printable text and HTML parts, a 1x1 pixel, Subject, Message-ID, a campaign header), to 1
and to 10 recipients. For each relay: msgs/s, the CPU of its process tree per message (the
figure this shared machine keeps stable; reaped children included), and the ratio to
Postfix; then the added latency of one sequential session (p50/p99 over a direct send to the
sink), and an unscored STARTTLS + AUTH run of the gateway (each real tool does both).

    .venv/bin/python bench/peers.py [--messages 1000] [--rounds 3] [--only gw-full,postfix]
        [--baseline /path/to/an/older/checkout]

`--baseline` runs each selected gateway a second time from an older checkout (same
interpreter and packages), interleaved with the rest: a change's before and after measured
in one run, on the same machine minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import (  # noqa: E402
    SENDER,
    SESSIONS,
    SIZE,
    free_port,
    prepare,
    tls_auth_load_process,
    wait_port,
    write_config,
)

DOMAIN = "bench.example"
SUPPRESSED = 1_000_000
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TICK = os.sysconf("SC_CLK_TCK")


# --- measuring a process tree ------------------------------------------------------------

def _stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        cpu = sum(int(v) for v in fields[11:15]) / TICK  # utime stime cutime cstime
        found[int(entry.name)] = (ppid, cpu)
    return found


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds of `roots` and every process under them, including children that have
    exited and been reaped (a Postfix smtpd that reached max_use counts in its master)."""
    stats = _stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


# --- the relays ----------------------------------------------------------------------------

@dataclass
class Relay:
    name: str
    port: int
    roots: Callable[[], list[int]]
    stop: Callable[[], None]
    ca_file: str = ""  # the gateway's certificate, for the STARTTLS + AUTH run


def _quiet(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)  # type: ignore


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen(["smtp-sink", "-u", "postfix", f"127.0.0.1:{port}", "1024"])
    wait_port(port)
    return sink


def start_bare(port: int, sink: int) -> Relay:
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench/bare_passthrough.py"),
                             "--serve", str(port), str(sink)])
    wait_port(port)
    return Relay("bare", port, lambda: [proc.pid], lambda: _stop(proc))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def start_postfix(work: Path, name: str, port: int, sink: int,
                  milter: str | None = None) -> Relay:
    """A private Postfix instance on loopback relaying everything to the sink."""
    etc, spool, data = work / "etc", work / "spool", work / "data"
    for d in (etc, spool, data):
        d.mkdir(parents=True, exist_ok=True)
    shutil.chown(data, "postfix")
    milters = (f"smtpd_milters = unix:{milter}\nmilter_default_action = tempfail\n"
               if milter else "")
    (etc / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = {name}.bench.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file_prefixes = {work}
maillog_file = {work}/maillog
smtp_tls_security_level = none
default_destination_concurrency_limit = 20
{milters}""")
    (etc / "master.cf").write_text(MASTER_CF.format(port=port))
    _quiet(["script", "-qc", f"/usr/sbin/postfix -c {etc} start", "/dev/null"])
    wait_port(port)
    pidfile = spool / "pid" / "master.pid"
    end = time.monotonic() + 10
    while not pidfile.exists() and time.monotonic() < end:
        time.sleep(0.05)
    master = int(pidfile.read_text().split()[0])

    def stop() -> None:
        subprocess.run(["script", "-qc", f"/usr/sbin/postfix -c {etc} stop", "/dev/null"],
                       capture_output=True)

    return Relay(name, port, lambda: [master], stop)


def start_opendkim(work: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """OpenDKIM signing bench.example with RSA-2048, on a unix socket."""
    work.mkdir(parents=True, exist_ok=True)
    _quiet(["openssl", "genrsa", "-out", str(work / "bench.private"), "2048"])
    socket_path = work / "opendkim.sock"
    conf = work / "opendkim.conf"
    conf.write_text(f"""Domain {DOMAIN}
Selector bench
KeyFile {work}/bench.private
Socket local:{socket_path}
Mode s
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
Syslog no
UMask 000
UserID postfix
""")
    shutil.chown(work, "postfix")
    shutil.chown(work / "bench.private", "postfix")
    proc = subprocess.Popen(["opendkim", "-f", "-x", str(conf)])
    end = time.monotonic() + 10
    while not socket_path.exists() and time.monotonic() < end:
        time.sleep(0.05)
    return str(socket_path), proc


def gateway_cli(config: Path, *args: str, stdin: bytes | None = None, root: Path = ROOT
                ) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *args],
                   cwd=root, env=env, input=stdin, check=True, stdout=subprocess.DEVNULL)


def suppression_file(path: Path, count: int) -> Path:
    """`count` addresses at 50,000 domains, none of them a bench recipient."""
    with path.open("w") as out:
        out.write("email\n")
        for n in range(count):
            out.write(f"s{n}@d{n % 50_000}.example.com\n")
    return path


def gateway_config(work: Path, port: int, sink: int, database: str, full: bool) -> Path:
    path = write_config(work, sink, port, database)
    text = path.read_text().replace('log_level = "warning"', 'log_level = "info"')
    if database == "postgres":  # a schema of its own; one node: its tenant keys in a directory
        text = text.replace('schema = "bench"', f'schema = "{work.name.replace("-", "_")}"')
        text = text.replace("[vault]\n", "[vault]\ntenant_key_store_single_node = true\n")
        # several PostgreSQL gateways at once (twice as many with --baseline) stay under
        # the server's 100 connections
        text = text.replace("[database]\n", "[database]\npool_size = 4\n")
    # several gateways on one host: each its own HTTP ports
    text += f"[http]\npublic_port = {free_port()}\nadmin_port = {free_port()}\n"
    if full:  # the inbound listener takes complaint reports: copies carry the CFBL fields
        text = text.replace('[unsubscribe]\n', '[unsubscribe]\nmailto_listen = "127.0.0.1"\n'
                            f'mailto_port = {free_port()}\n')
    if not full:  # the operator switches the content checks off
        text += ("[policy.sensitive-data]\naction = \"off\"\n"
                 "[policy.misleading-subject]\naction = \"off\"\n"
                 "[policy.identity-alignment]\naction = \"off\"\n")
    path.write_text(text)
    return path


def start_gateway(work: Path, name: str, port: int, sink: int, database: str, full: bool,
                  workers: int, suppressions: Path | None, root: Path = ROOT) -> Relay:
    """One gateway relay, run from the checkout at `root` (`--baseline`: an older one)."""
    work.mkdir(parents=True, exist_ok=True)
    config = gateway_config(work, port, sink, database, full)
    if database == "postgres":
        schema = work.name.replace("-", "_")
        asyncio.run(_fresh_schema(schema))
    asyncio.run(prepare(config, database))
    if full:
        gateway_cli(config, "dkim", "generate", DOMAIN, "--algorithm", "rsa", root=root)
        gateway_cli(config, "dkim", "generate", DOMAIN, "--algorithm", "ed25519", root=root)
        # links and the complaint address under the From domain (RFC 9477 alignment)
        gateway_cli(config, "tenant", "set", "bench", "link_domain", f"links.{DOMAIN}",
                    root=root)
        if suppressions is not None:
            gateway_cli(config, "suppress", "import", str(suppressions), "--global",
                        "--reason", "unsubscribe", root=root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    log = (work / "gateway.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "serve",
                             "--workers", str(workers)], cwd=root, env=env, stdout=log,
                            stderr=log)
    try:
        wait_port(port, timeout=60)
    except SystemExit:
        log_text = (work / "gateway.log").read_text()[-3000:]
        raise SystemExit(f"{name} did not start:\n{log_text}") from None
    return Relay(name, port, lambda: [proc.pid], lambda: _stop(proc),
                 str(work / "tls" / "dev-cert.pem") if full and database == "sqlite" else "")


async def _drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await conn.close()


async def _fresh_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    await conn.close()


# --- the load ------------------------------------------------------------------------------

def html_message() -> str:
    """~10 KB multipart/alternative: quoted-printable text and HTML, a 1x1 pixel."""
    para = ("Hello =E2=80=94 we help teams like yours cut onboarding time in half; "
            "here is how three customers did it this quarter.=\n")
    text = "".join(para for _ in range(60))
    html = "".join(f"<p>{para}</p>=\n" for _ in range(55))
    return f"""From: Sales <{SENDER}>
To: <rcpt@example.org>
Subject: Cutting onboarding time in half
Message-ID: <{secrets.token_hex(8)}@{DOMAIN}>
Date: Sat, 05 Dec 2026 10:00:00 +0000
X-Campaign-ID: spring-outreach
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

{text}
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body>{html}<img src=3D"https://track.example.net/o.gif?u=3D1" width=3D"1" height=
=3D"1" alt=3D""></body></html>
--b1--
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    recipients: int
    html: bool


SCENARIOS = [Scenario("text, 1 rcpt", 1, False), Scenario("HTML, 1 rcpt", 1, True),
             Scenario("text, 10 rcpt", 10, False), Scenario("HTML, 10 rcpt", 10, True)]


def smtp_source(port: int, messages: int, scenario: Scenario, html_file: Path) -> float:
    command = ["smtp-source", "-s", str(SESSIONS), "-m", str(messages), "-f", SENDER,
               "-t", "rcpt@example.org", "-r", str(scenario.recipients), "-M", "bench.client"]
    command += ["-F", str(html_file)] if scenario.html else ["-l", str(SIZE)]
    start = time.perf_counter()
    subprocess.run(command + [f"127.0.0.1:{port}"], check=True, timeout=1200)
    return time.perf_counter() - start


def measure(relay: Relay, messages: int, scenario: Scenario, html_file: Path
            ) -> tuple[float, float]:
    """(msgs/s, CPU-ms per message) of one run."""
    roots = relay.roots()
    before = tree_cpu(roots)
    seconds = smtp_source(relay.port, messages, scenario, html_file)
    time.sleep(0.5)  # the last copies leave (a queueing relay answers before it relays)
    return messages / seconds, (tree_cpu(roots) - before) * 1000 / messages


async def sequential(port: int, count: int, data: bytes) -> list[float]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await client.sendmail(SENDER, ["rcpt@example.org"], data)
        times.append(time.perf_counter() - start)
    await client.quit()
    return times[20:]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


# --- the run -------------------------------------------------------------------------------

@contextlib.contextmanager
def relays(work: Path, sink: int, only: set[str] | None, suppressed: int,
           baseline: Path | None = None) -> Iterator[list[Relay]]:
    wanted = only or {"bare", "postfix", "postfix+dkim", "gw-min", "gw-full", "gw-full-pg",
                      "gw-full-pg-2w"}
    started: list[Relay] = []
    dkim: subprocess.Popen[bytes] | None = None
    try:
        suppressions = None
        if wanted & {"gw-full", "gw-full-pg", "gw-full-pg-2w"}:
            print(f"writing {suppressed:,} suppression entries ...", flush=True)
            suppressions = suppression_file(work / "suppressed.csv", suppressed)
        if "bare" in wanted:
            started.append(start_bare(free_port(), sink))
        if "postfix" in wanted:
            started.append(start_postfix(work / "postfix", "postfix", free_port(), sink))
        if "postfix+dkim" in wanted:
            socket_path, dkim = start_opendkim(work / "opendkim")
            relay = start_postfix(work / "postfix-dkim", "postfix-dkim", free_port(), sink,
                                  socket_path)
            master_roots, signer = relay.roots, dkim.pid
            relay.roots = lambda: [*master_roots(), signer]
            relay.name = "postfix+dkim"
            started.append(relay)
        for name, database, full, workers in (
                ("gw-min", "sqlite", False, 1), ("gw-full", "sqlite", True, 1),
                ("gw-full-pg", "postgres", True, 1), ("gw-full-pg-2w", "postgres", True, 2)):
            if name in wanted:
                print(f"setting up {name} ...", flush=True)
                started.append(start_gateway(work / name, name, free_port(), sink, database,
                                             full, workers, suppressions))
            if name in wanted and baseline is not None:  # the same, from the older code
                print(f"setting up {name} from {baseline} ...", flush=True)
                started.append(start_gateway(work / f"base-{name}", f"base:{name}",
                                             free_port(), sink, database, full, workers,
                                             suppressions, root=baseline))
        yield started
    finally:
        for relay in started:
            relay.stop()
        if dkim is not None:
            _stop(dkim)
        for name in ("gw-full-pg", "gw-full-pg-2w"):  # 1,000,000 entries each: not left behind
            if name in wanted:
                asyncio.run(_drop_schema(name.replace("-", "_")))
            if name in wanted and baseline is not None:
                asyncio.run(_drop_schema(f"base_{name.replace('-', '_')}"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated relay names")
    parser.add_argument("--latency", type=int, default=220, help="messages, one session")
    parser.add_argument("--suppressed", type=int, default=SUPPRESSED,
                        help="suppression entries of the full-policy gateways")
    parser.add_argument("--baseline", type=Path,
                        help="a checkout of older code: its gateways run beside ours, "
                             "interleaved (base:<name>)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    # not under /tmp: OpenDKIM refuses a configuration on a path others may write to
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-peers-", dir=ROOT / "var") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        html_file = work / "campaign.eml"
        html_file.write_text(html_message())
        sink_port = free_port()
        sink = start_sink(sink_port)
        try:
            with relays(work, sink_port, only, args.suppressed, args.baseline) as started:
                run(started, args, html_file, sink_port)
        finally:
            sink.send_signal(signal.SIGTERM)
            sink.wait()


def run(started: list[Relay], args: argparse.Namespace, html_file: Path,
        sink_port: int) -> None:
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    print("warm-up ...", flush=True)
    for relay in started:
        measure(relay, 200, SCENARIOS[0], html_file)
        measure(relay, 100, SCENARIOS[1], html_file)
    for rnd in range(args.rounds):
        for scenario in SCENARIOS:
            order = started[:]
            random.Random(rnd * 31 + len(scenario.name)).shuffle(order)
            for relay in order:  # interleaved: a slow phase of the machine hits every relay
                results.setdefault((scenario.name, relay.name), []).append(
                    measure(relay, args.messages, scenario, html_file))
        print(f"round {rnd + 1} of {args.rounds} done", flush=True)
    report(started, results, args)
    latency(started, args.latency, html_file, sink_port)
    for relay in started:
        if relay.ca_file:  # unscored: a new session per message, STARTTLS and AUTH
            rate = tls_auth_load_process(relay.port, args.messages, relay.ca_file)
            print(f"\nSTARTTLS + AUTH, a session per message ({relay.name}): {rate:.0f} msgs/s")
            break


def report(started: list[Relay], results: dict[tuple[str, str], list[tuple[float, float]]],
           args: argparse.Namespace) -> None:
    print(f"\n{args.messages} messages per run, {args.rounds} rounds interleaved, "
          f"{SESSIONS} sessions; medians (CPU-ms range over the rounds)")
    for scenario in SCENARIOS:
        print(f"\n{scenario.name}")
        print(f"  {'relay':<15}{'msgs/s':>9}{'CPU-ms/msg':>12}{'range':>15}{'x postfix':>11}")
        base = results.get((scenario.name, "postfix"))
        base_cpu = statistics.median(c for _, c in base) if base else None
        for relay in started:
            runs = results[(scenario.name, relay.name)]
            rate = statistics.median(r for r, _ in runs)
            cpus = [c for _, c in runs]
            cpu = statistics.median(cpus)
            ratio = f"{cpu / base_cpu:.2f}" if base_cpu else "-"
            print(f"  {relay.name:<15}{rate:>9.0f}{cpu:>12.2f}"
                  f"{f'{min(cpus):.2f}-{max(cpus):.2f}':>15}{ratio:>11}")


def latency(started: list[Relay], count: int, html_file: Path, sink_port: int) -> None:
    text = ("From: <" + SENDER + ">\r\nTo: <rcpt@example.org>\r\nSubject: latency\r\n\r\n"
            + ("x" * 76 + "\r\n") * (SIZE // 78)).encode()
    direct = asyncio.run(sequential(sink_port, count, text))
    floor = statistics.median(direct)
    print(f"\nadded latency, one sequential session, {count - 20} text messages "
          f"(direct to the sink: p50 {floor * 1000:.2f} ms)")
    for relay in started:
        times = asyncio.run(sequential(relay.port, count, text))
        print(f"  {relay.name:<15} p50 {(percentile(times, .5) - floor) * 1000:6.2f} ms   "
              f"p99 {(percentile(times, .99) - floor) * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
