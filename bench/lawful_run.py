"""Issue 30's run: one-recipient messages over two nodes to recipients across the table's
countries, kinds and signals, with a stricter table published half way; nothing may be sent
contrary to the table, and the counts say on what each decision rested.

Two `gateway serve` processes share one PostgreSQL database and relay to an aiosmtpd sink in
this process. The tenant enforces the table, states some recipients in the message
(`X-Gateway-Recipient`, `lawful_statements = yes`), imports attribute and consent records
through `gateway records` (CASL consents inside and past their period among them), and
mails gTLD recipients on its default, `allow-with-notice`. Half way, `gateway policy load`
publishes a table under which the US needs consent; each node is probed until it refuses
under the new version.

The expected decision of every send comes from the issue's table written out here, not from
the gateway's code. A send is contrary to policy if it went where the table said no, or was
refused where the table said yes (a send begun while the new version was spreading may
follow either). Printed: msgs/s, the counts by decision and signal source, contrary sends
(must be 0), each node's time to the new version, the copies per version in the audit, and
the notice: in the first copy to each person owed it, absent from later ones.

    python bench/lawful_run.py [--messages 10000] [--people 2000] [--sessions 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import asyncpg
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.optout_run import Node, env, node_config  # noqa: E402
from bench.relay_throughput import SENDER, free_port, prepare, wait_port, write_config  # noqa: E402

PER_CONNECTION = 100
RC, AWN, ALLOW = "require-consent", "allow-with-notice", "allow"
# the issue's table: (named, generic, sole trader)
ISSUE_TABLE = {
    "DE": (RC, RC, RC), "AT": (RC, RC, RC), "FR": (AWN, AWN, RC), "GB": (AWN, AWN, RC),
    "IE": (AWN, AWN, RC), "FI": (AWN, AWN, RC), "IT": (RC, RC, RC), "DK": (RC, RC, RC),
    "BE": (RC, AWN, RC), "NL": (RC, RC, RC), "CA": (RC, RC, RC), "US": (ALLOW, ALLOW, ALLOW),
}
DEFAULT_ROW = (RC, RC, RC)
STRICTNESS = {ALLOW: 0, AWN: 1, RC: 2, "deny": 3}
KINDS = ("named", "generic", "sole_trader")
TLDS = {"de": "DE", "at": "AT", "fr": "FR", "co.uk": "GB", "ie": "IE", "fi": "FI", "it": "IT",
        "dk": "DK", "be": "BE", "nl": "NL", "ca": "CA", "us": "US", "com": None, "io": None}
TENANT_DEFAULT = AWN
NOTICE = b"GDPR Art. 14"
PROBE = "probe@newco.us"


@dataclass
class Person:
    address: str
    record: tuple[str | None, str | None] | None = None  # (country, kind) imported
    stated: tuple[str | None, str | None] | None = None  # said in the message
    consent: str = ""  # "", "valid", "lapsed"


def decided(p: Person, us_strict: bool) -> tuple[str, str, bool]:
    """(decision, source, sends) from the issue's table, written out independently."""
    tld = p.address.split("@")[1].split(".", 1)[1]
    for said, signal in ((p.record, "record"), (p.stated, "header")):
        if said is not None:
            country, kind, source = said[0] or TLDS.get(tld), said[1], signal
            break
    else:
        country, kind, source = TLDS.get(tld), None, "cctld"
        if country is None:
            return TENANT_DEFAULT, "tenant-default", True
    row = ISSUE_TABLE.get(country or "", DEFAULT_ROW)
    if country == "US" and us_strict:
        row = (RC, RC, RC)
    decision = row[KINDS.index(kind)] if kind else max(row, key=STRICTNESS.__getitem__)
    return decision, source, decision in (ALLOW, AWN) or (
        decision == RC and p.consent == "valid")


def people(count: int) -> list[Person]:
    rng = random.Random(30)
    found = []
    for i in range(count):
        tld = rng.choice(list(TLDS))
        p = Person(f"p{i}@firm{i % 53}.{tld}")
        roll = rng.random()
        if roll < 0.25:
            p.record = (rng.choice([None, *ISSUE_TABLE, "JP"]), rng.choice([None, *KINDS]))
            if p.record == (None, None):
                p.record = ("DE", None)
        elif roll < 0.40:
            p.stated = (rng.choice([None, *ISSUE_TABLE]), rng.choice([None, *KINDS]))
            if p.stated == (None, None):
                p.stated = ("FR", "named")
        if rng.random() < 0.2:
            p.consent = rng.choice(["valid", "valid", "lapsed"])
        found.append(p)
    return found


def write_records(work: Path, pool: list[Person]) -> tuple[Path, Path]:
    attributes, consents = work / "attributes.csv", work / "consents.csv"
    now = datetime.now(UTC)
    with attributes.open("w") as fh:
        fh.write("address,country,kind\n")
        for p in pool:
            if p.record is not None:
                fh.write(f"{p.address},{p.record[0] or ''},{p.record[1] or ''}\n")
    with consents.open("w") as fh:
        fh.write("address,basis,given_at,source\n")
        for n, p in enumerate(pool):
            if p.consent == "valid":
                basis, given = ("express", now - timedelta(days=30)) if n % 2 else (
                    "casl-purchase", now - timedelta(days=400))
            elif p.consent == "lapsed":  # CASL: an inquiry counts 6 months
                basis, given = "casl-inquiry", now - timedelta(days=200)
            else:
                continue
            fh.write(f"{p.address},{basis},{given.date().isoformat()},bench\n")
    return attributes, consents


@dataclass
class Sink:
    """Whether each message's copy carried the notice, by the message's number."""

    told: dict[int, bool] = field(default_factory=dict)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content: bytes = envelope.content  # type: ignore[attr-defined]
        found = re.search(rb"Message-ID: <law\.(\d+)@bench\.example>", content)
        if found is not None:
            self.told[int(found.group(1))] = NOTICE in content
        return "250 OK"


@dataclass
class Send:
    index: int  # the message's number (its Message-ID)
    person: Person
    began: float
    outcome: str  # sent | refused-rcpt | refused-data | other
    reply: str = ""
    ended: float = 0.0  # when the DATA reply came: the gateway's records were written


def gateway(node: Node, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(node.config),
                           *args], capture_output=True, text=True, env=env())
    if done.returncode != 0:
        raise SystemExit(f"gateway {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


async def send_all(nodes: list[Node], pool: list[Person], count: int, sessions: int,
                   sends: list[Send], half: asyncio.Event) -> float:
    work = iter(range(count))
    rng = random.Random(31)

    async def session(n: int) -> None:
        node = nodes[n % len(nodes)]
        while True:
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=node.smtp, start_tls=False)
            await smtp.connect()
            await smtp.ehlo()
            done = 0
            for i in work:
                if i == count // 2:
                    half.set()
                p = pool[i] if i < len(pool) else rng.choice(pool)
                stated = "" if p.stated is None else (
                    f"X-Gateway-Recipient: <{p.address}>"
                    + (f"; country={p.stated[0]}" if p.stated[0] else "")
                    + (f"; kind={p.stated[1].replace('_', '-')}" if p.stated[1] else "")
                    + "\r\n")
                body = (f"From: {SENDER}\r\nTo: {p.address}\r\nSubject: run {i}\r\n"
                        f"Message-ID: <law.{i}@bench.example>\r\n{stated}\r\n"
                        f"Hello {i}\r\n").encode()
                began = time.time()
                try:
                    await smtp.sendmail(SENDER, [p.address], body)
                    send = Send(i, p, began, "sent")
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    send = Send(i, p, began, "refused-rcpt", str(exc.recipients[0]))
                except aiosmtplib.SMTPDataError as exc:
                    send = Send(i, p, began, "refused-data" if exc.code == 550 else "other",
                                f"{exc.code} {exc.message}")
                send.ended = time.time()  # before any other await: other sessions run then
                sends.append(send)
                if send.outcome != "sent":
                    await smtp.rset()
                done += 1
                if done == PER_CONNECTION:
                    break
            await smtp.quit()
            if done < PER_CONNECTION:
                return

    start = time.perf_counter()
    await asyncio.gather(*(session(n) for n in range(sessions)))
    return count / (time.perf_counter() - start)


async def publish_half_way(nodes: list[Node], table: Path, half: asyncio.Event,
                           seen: dict[str, float]) -> float:
    """At half the run: the stricter table, then each node probed until it refuses."""
    await half.wait()
    published = time.time()
    said = await asyncio.to_thread(gateway, nodes[0], "policy", "load", str(table))
    version = said.split(" published")[0].rsplit(" ", 1)[-1]  # "ocg-default v2 published"
    if version != "v2":
        raise SystemExit(f"the stricter table should be version 2: {said.strip()!r}")
    deadline = time.time() + 60

    async def probe(node: Node) -> None:
        """A whole message: this tenant's RCPT defers a ccTLD's refusal to after DATA."""
        body = (f"From: {SENDER}\r\nTo: {PROBE}\r\nSubject: probe\r\n\r\nprobe\r\n").encode()
        while node.name not in seen:  # a connection a try: a session has a command cap
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=node.smtp, start_tls=False)
            await smtp.connect()
            try:
                await smtp.sendmail(SENDER, [PROBE], body)
            except aiosmtplib.SMTPResponseException as exc:
                if "v2" in exc.message:
                    seen[node.name] = time.time()
            smtp.close()
            if time.time() > deadline:
                raise SystemExit(f"{node.name} did not refuse under v2 within 60 s")
            await asyncio.sleep(0.05)

    await asyncio.gather(*(probe(n) for n in nodes))
    return published


def stricter_table(work: Path) -> Path:
    shipped = (ROOT / "deploy" / "lawful-basis.toml").read_text()
    us = '[countries.US]\nnamed = "allow"\ngeneric = "allow"\nsole_trader = "allow"'
    assert us in shipped, "the shipped table's US row moved: update the bench"
    path = work / "counsel.toml"
    path.write_text(shipped.replace(us, us.replace('"allow"', '"require-consent"')))
    return path


async def audit_counts(schema: str) -> collections.Counter[tuple[str, str, str]]:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    try:
        rows = await conn.fetch(f"SELECT detail FROM {schema}.audit_events "
                                "WHERE event = 'copy.delivered'")
    finally:
        await conn.close()
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for row in rows:
        lawful = json.loads(row["detail"]).get("lawful", {})
        counts[(lawful.get("policy", "?").split(" + ")[0], lawful.get("decision", "?"),
                lawful.get("source", "?"))] += 1
    return counts


def report(args: argparse.Namespace, sends: list[Send], rate: float, published: float,
           seen: dict[str, float], sink: Sink,
           audit: collections.Counter[tuple[str, str, str]]) -> int:
    both = max(seen.values())
    by: collections.Counter[tuple[str, str, str]] = collections.Counter()
    contrary: list[str] = []
    for s in sends:
        if s.outcome == "other":
            contrary.append(f"{s.person.address}: {s.reply}")
            continue
        before, after = decided(s.person, False), decided(s.person, True)
        if s.began >= both:  # begun once both nodes refused under the new version
            allowed = {after[2]}
        elif s.ended < published:  # answered before it was published
            allowed = {before[2]}
        else:  # decided while it was spreading: either version is right
            allowed = {before[2], after[2]}
        went = s.outcome == "sent"
        if went not in allowed:
            contrary.append(f"{s.person.address} {s.outcome} ({before}, {after}) {s.reply}")
        d = after if s.began >= both else before
        by[(d[0], d[1], "sent" if went else "not sent")] += 1
    print(f"{len(sends)} messages over 2 nodes ({args.sessions} sessions, {rate:.0f} msgs/s), "
          f"{args.people} people, PostgreSQL; a stricter table published after "
          f"{args.messages // 2}")
    print("  by decision and signal source (the issue's table, per send):")
    for decision in (ALLOW, AWN, RC, "deny"):
        for source in ("record", "header", "cctld", "tenant-default"):
            sent, held = by[(decision, source, "sent")], by[(decision, source, "not sent")]
            if sent or held:
                print(f"    {decision:<18} {source:<15} sent {sent:>6}   not sent {held:>6}")
    print(f"  sends contrary to the table: {len(contrary)}")
    for line in contrary[:10]:
        print(f"    {line}")
    for node, at in sorted(seen.items()):
        print(f"  {node} refused under v2 {at - published:.2f} s after `gateway policy load`")
    print("  copies in the audit trail by version, decision, source:")
    for (policy, decision, source), n in sorted(audit.items()):
        print(f"    {policy:<16} {decision:<18} {source:<15} {n:>6}")
    # The notice: a copy owed it goes without it only once a copy that carried it was
    # answered (the gateway marks the person told before its DATA reply); a copy carries it
    # again only if its send began before that answer (two in flight at once).
    by_person: dict[str, list[Send]] = collections.defaultdict(list)
    for s in sends:
        if s.outcome == "sent" and s.index in sink.told and \
                decided(s.person, s.began >= both)[0] == AWN:
            by_person[s.person.address].append(s)
    missing = extra = told_first = 0
    for copies in by_person.values():
        told_at = min((s.ended for s in copies if sink.told[s.index]), default=None)
        if told_at is None:
            missing += 1
            continue
        missing += sum(1 for s in copies if not sink.told[s.index] and s.began < told_at)
        extra += sum(1 for s in copies if sink.told[s.index] and s.began > told_at)
        told_first += sink.told[min(copies, key=lambda s: s.began).index]
    print(f"  notice: {told_first} of {len(by_person)} people owed it had it in their first "
          f"copy; copies without it before one with it was answered: {missing}; copies "
          f"with it begun after that: {extra}")
    return 1 if contrary or missing or extra else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--schema", default="bench", help="PostgreSQL schema (dropped first)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        sink = Sink()
        controller = Controller(sink, hostname="127.0.0.1", port=free_port())
        controller.start()
        base = write_config(work, controller.port, 0, "postgres", args.schema)
        asyncio.run(prepare(base, "postgres"))
        nodes = [Node(name, free_port(), free_port(), free_port(), work / f"{name}.toml")
                 for name in ("node-a", "node-b")]
        pool = people(args.people)
        try:
            for node in nodes:
                node_config(base, node)
            for name, value in (("lawful_basis", "enforce"), ("lawful_statements", "yes"),
                                ("lawful_default", TENANT_DEFAULT),
                                ("notice_source", "your company's website"),
                                ("notice_purpose", "our services; legitimate interest"),
                                ("notice_url", "https://bench.example/privacy")):
                gateway(nodes[0], "tenant", "set", "bench", name, value)
            attributes, consents = write_records(work, pool)
            gateway(nodes[0], "records", "import-attributes", "bench", str(attributes))
            gateway(nodes[0], "records", "import-consent", "bench", str(consents))
            for node in nodes:
                node.process = subprocess.Popen(
                    [sys.executable, "-m", "gateway", "--config", str(node.config), "serve",
                     "--workers", "1"], env=env(), stderr=(work / f"{node.name}.log").open("wb"))
            for node in nodes:
                try:
                    wait_port(node.smtp, 60)
                except SystemExit:
                    raise SystemExit((work / f"{node.name}.log").read_text()[-3000:]) from None

            async def run() -> int:
                sends: list[Send] = []
                half = asyncio.Event()
                seen: dict[str, float] = {}
                publishing = asyncio.create_task(
                    publish_half_way(nodes, stricter_table(work), half, seen))
                rate = await send_all(nodes, pool, args.messages, args.sessions, sends, half)
                published = await publishing
                return report(args, sends, rate, published, seen, sink,
                              await audit_counts(args.schema))

            failed = asyncio.run(run())
        finally:
            for node in nodes:
                if node.process is not None:
                    node.process.terminate()
                    node.process.wait(timeout=30)
            controller.stop()
    raise SystemExit(failed)


if __name__ == "__main__":
    main()
