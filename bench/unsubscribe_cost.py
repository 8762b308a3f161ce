"""What unsubscribe + footer + DKIM cost per copy, and the relay rate beside the foundation's.

Part 1, CPU per copy (in-process, `time.process_time`): a 10 KB multipart/alternative
message made compliant (List-Unsubscribe + token, footer in both alternatives, DKIM
RSA-2048), with 1 and with 10 recipients per message, beside the stdlib's
parse-edit-serialise of the same message.

Part 2, one run, same load (Postfix's smtp-source -> smtp-sink, 10 KB, 20 sessions): this
gateway (copies made compliant and signed) and the foundation's plain relay (the commit
before issue 6, checked out in a temporary git worktree).

    python bench/unsubscribe_cost.py [--copies 3000] [--messages 5000] [--foundation REV]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import (  # noqa: E402
    PASSWORD,
    POSTAL_ADDRESS,
    SENDER,
    SESSIONS,
    SIZE,
    cpu_seconds,
    free_port,
    smtp_source,
    wait_port,
    write_config,
)
from gateway.config import tenant_key_location  # noqa: E402
from gateway.directory.records import Mailbox, Tenant  # noqa: E402
from gateway.directory.store import DirectoryStore  # noqa: E402
from gateway.dkim.keys import DkimKeys  # noqa: E402
from gateway.optout.token import PURPOSE, TokenSealer  # noqa: E402
from gateway.outbound.compose import Composer  # noqa: E402
from gateway.policy.message import Message  # noqa: E402
from gateway.store.engine import create_engine, upgrade  # noqa: E402
from gateway.vault.envelope import Vault  # noqa: E402
from gateway.vault.key_store import key_store_for  # noqa: E402
from gateway.vault.master_keys import provider_for  # noqa: E402
from gateway.vault.purpose import PurposeKeys  # noqa: E402
from gateway.vault.tenant_keys import TenantKeys, TenantSealer  # noqa: E402

FOUNDATION = "b71308a"  # main before issue 6: the plain relay


def alternative_10k() -> bytes:
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    plain = line * 68
    html = "<html><body>" + "".join(f"<p>{line.strip()}</p>\r\n" for _ in range(60)) + \
        "</body></html>\r\n"
    return (f"From: Sales <{SENDER}>\r\nTo: rcpt@example.org\r\nSubject: Quarterly note\r\n"
            f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@bench.example>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n"
            f"\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{plain}\r\n--b1\r\n"
            f"Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{html}\r\n--b1--\r\n").encode()


async def composer_for(config_path: Path) -> tuple[Composer, Tenant, Mailbox]:
    from gateway import config as config_module

    config = config_module.load(config_path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    store = DirectoryStore(engine)
    await store.add_tenant("bench", "bench")
    await store.add_domain("bench", "bench.example", "bench")
    await store.mark_verified("bench.example", "bench", "benchmark")
    await store.set_tenant_setting("bench", "postal_address", POSTAL_ADDRESS, "bench")
    vault = Vault(provider_for(config))
    keys = PurposeKeys(engine, vault)
    await keys.ensure(PURPOSE)
    dkim = DkimKeys(engine, vault, TenantSealer(TenantKeys(
        engine, vault, key_store_for(tenant_key_location(config)))))
    await dkim.generate("bench.example", "rsa", actor="bench")
    await dkim.load()
    tenant = await store.tenant("bench")
    await engine.dispose()
    composer = Composer(config, TokenSealer(keys), dkim)
    return composer, tenant, Mailbox(1, tenant.id, SENDER, "sink", "active", "")


def per_copy_ms(run: object, copies: int) -> float:
    start = time.process_time()
    run()  # type: ignore[operator]
    return 1000 * (time.process_time() - start) / copies


def cpu_part(config_path: Path, copies: int) -> None:
    composer, tenant, mailbox = asyncio.run(composer_for(config_path))
    raw = alternative_10k()
    recipients = [f"r{i}@example.org" for i in range(10)]

    def stdlib() -> None:
        for _ in range(copies):
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            msg["List-Unsubscribe"] = "<https://links.bench.example/u/x>"
            msg.as_bytes()

    def compliant(per_message: int) -> None:
        for _ in range(copies // per_message):
            prepared = composer.prepare(Message(raw), tenant, mailbox, "BENCHQUEUEID")
            for r in recipients[:per_message]:
                prepared.copy(r)

    sample = composer.prepare(Message(raw), tenant, mailbox, "Q").copy("r@example.org")
    assert sample.startswith(b"DKIM-Signature:") and sample.count(b"links.bench.example") >= 3
    compliant(1)  # warm-up
    print(f"CPU per copy, {len(raw) // 1024} KB multipart/alternative, {copies} copies "
          "(process_time)")
    print(f"  stdlib parse + add header + serialise        {per_copy_ms(stdlib, copies):6.3f} ms")
    one = per_copy_ms(lambda: compliant(1), copies)
    ten = per_copy_ms(lambda: compliant(10), copies)
    print(f"  unsubscribe + footer + DKIM, 1 rcpt/message  {one:6.3f} ms")
    print(f"  unsubscribe + footer + DKIM, 10 rcpt/message {ten:6.3f} ms   (goal <= 1.2 ms)")


def signer_part(copies: int) -> None:
    """The signer alone: ours (dkimpy's canonicalization, OpenSSL's RSA) against dkimpy's
    own `dkim.sign` (pure-Python RSA), on the same 10 KB message and key."""
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from gateway.dkim.signer import ED25519, RSA, SigningKey, body_hash, parse_fields, sign

    raw = alternative_10k()
    head, body = raw.split(b"\r\n\r\n", 1)
    fields = parse_fields(head + b"\r\n")
    rsa_key = rsa.generate_private_key(65537, 2048)
    keys = {"rsa-sha256": SigningKey("bench.example", "s", RSA, rsa_key),
            "ed25519-sha256": SigningKey("bench.example", "e", ED25519,
                                         ed25519.Ed25519PrivateKey.generate())}
    pem = rsa_key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    names = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
             b"content-type"]
    print(f"\nDKIM signature of a {len(raw) // 1024} KB message (body hash included)")
    for label, key in keys.items():
        ms = per_copy_ms(lambda k=key: [sign(fields, body_hash(body), k)  # type: ignore[misc]
                                        for _ in range(copies)], copies)
        print(f"  ours, {label:15s}                  {ms:6.3f} ms")
    few = max(50, copies // 20)
    ms = per_copy_ms(lambda: [dkim.sign(raw, b"s", b"bench.example", pem, include_headers=names)
                              for _ in range(few)], few)
    print(f"  dkimpy dkim.sign, rsa-sha256              {ms:6.3f} ms")


def gateway_cli(cwd: Path, config: Path, *args: str, stdin: str = "") -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *args],
                   cwd=cwd, env=env, input=stdin, text=True, check=True,
                   stdout=subprocess.DEVNULL)


def relay_rate(cwd: Path, config: Path, port: int, messages: int) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "serve"],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        smtp_source(port, 500)  # warm-up
        before = cpu_seconds(proc.pid)
        rate = smtp_source(port, messages)
        cpu = 1000 * (cpu_seconds(proc.pid) - before) / messages
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return rate, cpu


def setup(cwd: Path, config: Path, current: bool) -> None:
    gateway_cli(cwd, config, "db", "upgrade")
    gateway_cli(cwd, config, "tenant", "add", "bench")
    gateway_cli(cwd, config, "domain", "add", "bench", "bench.example")
    gateway_cli(cwd, config, "login", "add", "bench", "bench", "--password-stdin",
                stdin=PASSWORD + "\n")
    gateway_cli(cwd, config, "mailbox", "add", "bench", SENDER, "--upstream", "sink")
    if current:
        asyncio.run(_verified(config))
        gateway_cli(cwd, config, "tenant", "set", "bench", "postal_address", POSTAL_ADDRESS)
        gateway_cli(cwd, config, "dkim", "generate", "bench.example")


async def _verified(config_path: Path) -> None:
    from gateway import config as config_module

    config = config_module.load(config_path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await DirectoryStore(engine).mark_verified("bench.example", "bench", "benchmark")
    await engine.dispose()


def throughput_part(work: Path, messages: int, foundation: str) -> None:
    tree = work / "foundation-src"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree),
                    foundation], check=True)
    sink_port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
    try:
        wait_port(sink_port)
        results = {}
        for name, cwd, current in (("foundation", tree, False), ("now", ROOT, True)):
            (work / name).mkdir()
            port = free_port()
            config = write_config(work / name, sink_port, port, "sqlite")
            if not current:  # the foundation knows no [unsubscribe] section
                text = config.read_text().replace(
                    '[unsubscribe]\nbase_url = "https://links.bench.example"\n', "")
                config.write_text(text)
            setup(cwd, config, current)
            results[name] = relay_rate(cwd, config, port, messages)
        direct = smtp_source(sink_port, messages)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       check=False)
    print(f"\nsmtp-source -> smtp-sink, {SIZE // 1024} KB, {SESSIONS} sessions, {messages} "
          "messages, SQLite, one gateway process each")
    print(f"  direct to the sink                    {direct:8.0f} msgs/s")
    for name, label in (("foundation", f"foundation's plain relay ({foundation})"),
                        ("now", "compliant: unsubscribe+footer+DKIM")):
        rate, cpu = results[name]
        print(f"  {label:37s} {rate:8.0f} msgs/s   CPU {cpu:6.3f} ms/msg")
    ratio = results["now"][0] / results["foundation"][0]
    print(f"  ratio compliant/plain                 {ratio:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--foundation", default=FOUNDATION)
    parser.add_argument("--skip-relay", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        (work / "cpu").mkdir()
        cpu_part(write_config(work / "cpu", 1, 2, "sqlite"), args.copies)
        signer_part(args.copies)
        if not args.skip_relay:
            throughput_part(work, args.messages, args.foundation)


if __name__ == "__main__":
    main()
