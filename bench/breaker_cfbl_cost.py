"""What issue 28 adds to each message and each copy, in-process (`time.process_time`), where
the peer bench's noise (±0.5 ms a message on this shared machine) cannot resolve it:

- per copy: the CFBL fields (a sealed CFBL-Feedback-ID, CFBL-Address and Feedback-ID
  covered by the DKIM signature), on the 10 KB multipart/alternative message signed with
  RSA-2048, complaint fields on against off, rounds interleaved;
- per message: the breakers (the after-DATA scopes, counting the copies upstream answered in
  five scopes, the check at MAIL FROM and after DATA) and the last suppression lookup
  before sending (`check_many`, one query for all recipients, SQLite).

    python bench/breaker_cfbl_cost.py [--messages 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import POSTAL_ADDRESS, SENDER, write_config  # noqa: E402
from bench.unsubscribe_cost import alternative_10k  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.config import tenant_key_location  # noqa: E402
from gateway.directory.cache import DirectoryCache  # noqa: E402
from gateway.directory.records import Mailbox  # noqa: E402
from gateway.directory.store import DirectoryStore  # noqa: E402
from gateway.dkim.keys import DkimKeys  # noqa: E402
from gateway.feedback.cfbl import PURPOSE as REF_PURPOSE  # noqa: E402
from gateway.feedback.cfbl import FeedbackRefs  # noqa: E402
from gateway.limits.breakers import Breakers, Outcome  # noqa: E402
from gateway.optout.suppressions import Suppressions  # noqa: E402
from gateway.optout.token import PURPOSE, TokenSealer  # noqa: E402
from gateway.outbound.compose import Composer  # noqa: E402
from gateway.policy.message import Message  # noqa: E402
from gateway.store.engine import create_engine, upgrade  # noqa: E402
from gateway.vault.envelope import Vault  # noqa: E402
from gateway.vault.key_store import key_store_for  # noqa: E402
from gateway.vault.master_keys import provider_for  # noqa: E402
from gateway.vault.purpose import AuditDigest, PurposeKeys  # noqa: E402
from gateway.vault.tenant_keys import TenantKeys, TenantSealer  # noqa: E402

DOMAIN = "bench.example"


async def parts(work: Path):  # noqa: ANN201
    config = config_module.load(write_config(work, 2525, 2526, "sqlite"), {})
    config = dataclasses.replace(config, unsubscribe=dataclasses.replace(
        config.unsubscribe, mailto_listen="127.0.0.1"))
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    store = DirectoryStore(engine)
    await store.add_tenant("bench", "bench")
    await store.add_domain("bench", DOMAIN, "bench")
    await store.mark_verified(DOMAIN, "bench", "benchmark")
    await store.set_tenant_setting("bench", "postal_address", POSTAL_ADDRESS, "bench")
    await store.set_tenant_setting("bench", "link_domain", f"links.{DOMAIN}", "bench")
    await store.add_login("bench", "bench", "a long bench password", "bench")
    await store.add_mailbox("bench", SENDER, "sink", "bench")
    vault = Vault(provider_for(config))
    keys = PurposeKeys(engine, vault)
    for purpose in (PURPOSE, REF_PURPOSE, "suppression-digest"):
        await keys.ensure(purpose)
    digest = AuditDigest(keys)
    await digest.open()
    dkim = DkimKeys(engine, vault, TenantSealer(TenantKeys(
        engine, vault, key_store_for(tenant_key_location(config)))))
    await dkim.generate(DOMAIN, "rsa", actor="bench")
    await dkim.load()
    directory = DirectoryCache(store, config)
    await directory.refresh()
    tenant = await store.tenant("bench")
    mailbox = directory.mailbox(SENDER)
    assert mailbox is not None
    off = dataclasses.replace(config, feedback=dataclasses.replace(
        config.feedback, complaint_fields=False))
    composers = {
        "on": Composer(config, TokenSealer(keys), dkim, None, digest, FeedbackRefs(keys),
                       directory.domain_id),
        "off": Composer(off, TokenSealer(keys), dkim, None, digest, FeedbackRefs(keys),
                        directory.domain_id)}
    suppressions = Suppressions(engine, config.database.url, config.database.schema)
    suppressions.open(*reversed(keys.current("suppression-digest")))
    breakers = Breakers(config, engine, None, directory, None)  # type: ignore[arg-type]
    return composers, tenant, mailbox, suppressions, breakers, engine


def composing(composer: Composer, tenant, mailbox: Mailbox, raw: bytes,  # noqa: ANN001
              recipients: list[str], messages: int) -> float:
    start = time.process_time()
    for _ in range(messages):
        prepared = composer.prepare(Message(raw), tenant, mailbox, "BENCHQUEUEID")
        for r in recipients:
            prepared.copy(r)
    return 1000 * (time.process_time() - start) / messages


async def per_message(suppressions: Suppressions, breakers: Breakers, tenant_id: int,
                      mailbox: Mailbox, raw: bytes, recipients: list[str],
                      messages: int) -> tuple[float, float]:
    message = Message(raw)
    outcomes = [Outcome("example.org", True, "2.0.0") for _ in recipients]
    start = time.process_time()
    for _ in range(messages):
        breakers.tripped(tenant_id, mailbox)
        scopes = breakers.message_scopes(tenant_id, message.from_domain(),
                                         message.campaign(("X-Campaign-ID",)))
        breakers.open_among(scopes)
        await breakers.answered(tenant_id, mailbox, outcomes, scopes)
    counted = 1000 * (time.process_time() - start) / messages
    start = time.process_time()
    for _ in range(messages):
        await suppressions.check_many(tenant_id, recipients)
    looked = 1000 * (time.process_time() - start) / messages
    return counted, looked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    raw = alternative_10k().replace(b"MIME-Version:", b"X-Campaign-ID: spring\r\nMIME-Version:")
    with tempfile.TemporaryDirectory() as tmp:
        loop = asyncio.new_event_loop()
        composers, tenant, mailbox, suppressions, breakers, engine = loop.run_until_complete(
            parts(Path(tmp)))
        sample = composers["on"].prepare(Message(raw), tenant, mailbox, "Q").copy("r@x.org")
        assert b"CFBL-Feedback-ID: " in sample and b"CFBL-Address: fbl@links." in sample
        assert b"CFBL" not in composers["off"].prepare(Message(raw), tenant, mailbox,
                                                       "Q").copy("r@x.org")
        print(f"{args.messages} messages x {args.rounds} rounds interleaved, 10 KB "
              "multipart/alternative, DKIM RSA-2048; medians of CPU-ms (process_time)")
        for count in (1, 10):
            recipients = [f"r{i}@example.org" for i in range(count)]
            times: dict[str, list[float]] = {"on": [], "off": []}
            counted: list[float] = []
            looked: list[float] = []
            for _ in range(args.rounds):
                for name in ("off", "on"):
                    times[name].append(composing(composers[name], tenant, mailbox, raw,
                                                 recipients, args.messages // count))
                c, s = loop.run_until_complete(per_message(
                    suppressions, breakers, tenant.id, mailbox, raw, recipients,
                    args.messages))
                counted.append(c)
                looked.append(s)
            on, off = statistics.median(times["on"]), statistics.median(times["off"])
            print(f"\n{count} rcpt/message")
            print(f"  compose + sign, CFBL fields off   {off:7.3f} ms/message")
            print(f"  compose + sign, CFBL fields on    {on:7.3f} ms/message   "
                  f"(+{on - off:.3f}: {(on - off) / count:.3f} ms a copy)")
            print(f"  breakers (check, scopes, count)   {statistics.median(counted):7.3f} "
                  "ms/message")
            print(f"  check_many before sending         {statistics.median(looked):7.3f} "
                  "ms/message")
        loop.run_until_complete(suppressions.close())
        loop.run_until_complete(engine.dispose())
        loop.close()


if __name__ == "__main__":
    main()
