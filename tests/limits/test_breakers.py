"""Reputation breakers over real sockets (issue 28.1): mail relayed through the gateway to
an upstream that refuses some recipients, complaints applied as the inbox reader applies
them, thresholds tried at the boundary (at the threshold, one over, under the minimum
volume), MAIL FROM answered `451 4.7.1` naming the breaker and never a recipient, other
tenants untouched, resumed by a compliance key with the windows starting again — and two
nodes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import smtplib
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import config as config_module
from gateway.app.service import Gateway
from gateway.store.schema import audit_events, events
from tests.conftest import OTHER_PASSWORD, Harness, running_harness
from tests.support import messages
from tests.support.admin_api import admin, key
from tests.support.feedback import FEEDBACK

SMALL = ("[breakers]\nmin_volume = 40\ncomplaint_min_volume = 20\n"
         "complaint_warn_percent = 4\ncomplaint_trip_percent = 8\nsync_seconds = 60\n")


async def send_many(h: Harness, recipients: list[str]) -> list[int]:
    """One message per recipient, as a campaign tool sends; each DATA reply's code."""
    def run() -> list[int]:
        codes = []
        with h.client() as smtp:
            for r in recipients:
                try:
                    smtp.sendmail("sales@acme.example", [r], messages.simple())
                    codes.append(250)
                except smtplib.SMTPRecipientsRefused as exc:
                    codes.append(exc.recipients[r][0])
                except smtplib.SMTPDataError as exc:
                    codes.append(exc.smtp_code)
                smtp.rset()
        return codes

    return await asyncio.to_thread(run)


def mail_from(port: int, h: Harness, sender: str = "sales@acme.example",
              user: str = "campaign", password: str | None = None) -> tuple[int, str]:
    kw = {"user": user} if password is None else {"user": user, "password": password}
    with h.client(**kw) as smtp:  # type: ignore[arg-type]
        code, text = smtp.mail(sender)
        return code, text.decode()


async def states(h: Harness) -> dict[str, tuple[str, str]]:
    return {b.scope[0]: (b.state, b.metric) for b in await h.gateway.breakers.listing()}


async def audited(h: Harness) -> list[str]:
    async with h.gateway.engine.connect() as conn:
        return list((await conn.execute(sa.select(audit_events.c.event).where(
            audit_events.c.event.like("breaker.%")).order_by(audit_events.c.id))).scalars())


async def test_the_bounce_rate_trips_just_over_its_threshold_and_only_above_the_volume(
        tmp_path: Path, pki, database):
    async with running_harness(tmp_path, pki, database, extra=SMALL) as h:
        for n in range(3):
            h.sink.faults.rcpt[f"gone{n}@example.org"] = "550 5.1.1 No such user"
        # under the minimum volume: 1 hard bounce in 5 (20 %) trips nothing
        codes = await send_many(h, [f"a{n}@example.org" for n in range(4)] + ["gone0@example.org"])
        assert codes == [250] * 4 + [550]
        await h.gateway.breakers.run_once()
        assert await states(h) == {}
        # at the threshold: 2 in 40 is 5 %, not over it
        await send_many(h, [f"b{n}@example.org" for n in range(34)] + ["gone1@example.org"])
        await h.gateway.breakers.run_once()
        assert await states(h) == {}
        # one more: 3 in 41 (7.3 %) trips the tenant, its domain and its mailbox
        await send_many(h, ["gone2@example.org"])
        await h.gateway.breakers.run_once()
        assert await states(h) == {"t": ("open", "bounces"), "d": ("open", "bounces"),
                                   "m": ("open", "bounces")}
        code, text = await asyncio.to_thread(mail_from, 0, h)
        assert code == 451 and text.startswith("4.7.1 Sending paused: the bounce-rate "
                                               "breaker of tenant acme tripped (7.32 % over")
        assert "@example.org" not in text  # names the breaker, never a recipient
        # another tenant is unaffected
        other = await asyncio.to_thread(mail_from, 0, h, "ceo@other.example", "other-tool",
                                        OTHER_PASSWORD)
        assert other[0] == 250
        assert (await audited(h)).count("breaker.tripped") == 3
        async with h.gateway.engine.connect() as conn:
            kinds = list((await conn.execute(sa.select(events.c.kind))).scalars())
        assert kinds.count("breaker_tripped") == 3


async def test_a_compliance_key_resumes_and_the_windows_start_again(tmp_path: Path, pki,
                                                                     database):
    async with running_harness(tmp_path, pki, database, extra=SMALL) as h:
        h.sink.faults.rcpt["gone@example.org"] = "550 5.7.515 Access denied, sending " \
                                                 "domain does not meet authentication"
        assert await send_many(h, ["gone@example.org"]) == [550]
        # an authentication refusal pauses the domain at once, and suppresses nobody
        assert await states(h) == {"d": ("open", "authentication")}
        assert await h.gateway.suppressions.check(1, "gone@example.org") is None
        code, text = await asyncio.to_thread(mail_from, 0, h)
        assert code == 451 and "authentication breaker of domain acme.example" in text
        (breaker,) = await h.gateway.breakers.listing()
        async with admin(h, await key(h, "ops", "acme")) as client:
            listed = (await client.get("/api/v1/breakers")).json()
            assert [(b["scope"], b["name"], b["state"]) for b in listed] == [
                ("domain", "acme.example", "open")]
            refused = await client.post(f"/api/v1/breakers/{breaker.id}/resume",
                                        json={"reason": "SPF fixed"})
            assert refused.status_code == 403  # ops may look, not resume
        async with admin(h, await key(h, "ops", "other")) as client:
            assert (await client.get(f"/api/v1/breakers/{breaker.id}")).status_code == 404
            assert (await client.get("/api/v1/breakers")).json() == []
        async with admin(h, await key(h, "compliance", "acme")) as client:
            resumed = await client.post(f"/api/v1/breakers/{breaker.id}/resume",
                                        json={"reason": "SPF and DKIM fixed"})
            assert resumed.status_code == 200, resumed.text
            assert (resumed.json()["state"], resumed.json()["generation"]) == ("closed", 1)
            again = await client.post(f"/api/v1/breakers/{breaker.id}/resume",
                                      json={"reason": "x"})
            assert again.status_code == 409
        assert (await asyncio.to_thread(mail_from, 0, h))[0] == 250
        assert await audited(h) == ["breaker.tripped", "breaker.resumed"]
        async with h.gateway.engine.connect() as conn:
            actor = (await conn.execute(sa.select(audit_events.c.actor).where(
                audit_events.c.event == "breaker.resumed"))).scalar_one()
        assert actor.startswith("apikey:")
        # the windows start at the resume: 3 bounces in 3 copies are under the volume
        h.sink.faults.rcpt.clear()
        for n in range(3):
            h.sink.faults.rcpt[f"x{n}@example.org"] = "550 5.1.1 No such user"
        await send_many(h, [f"x{n}@example.org" for n in range(3)])
        await h.gateway.breakers.run_once()
        assert {s for s, _ in (await states(h)).values()} == {"closed"}


def arf(message_id: str, recipient: str) -> bytes:
    raw = (FEEDBACK / "arf-abuse.eml").read_bytes()
    return raw.replace(b"<OCG.EF90AB12CD.0@acme.example>", message_id.encode()).replace(
        b"oliver.taylor@brightpath.example", recipient.encode())


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_complaints_count_against_copies_to_feedback_providers_only(tmp_path: Path,
                                                                          pki, database):
    async with running_harness(tmp_path, pki, database, extra=SMALL) as h:
        yahoo = [f"reader{n}@yahoo.com" for n in range(20)]
        gmail = [f"reader{n}@gmail.com" for n in range(60)]  # no per-message feedback
        for n, r in enumerate(yahoo + gmail):
            await h.send(messages.simple().replace(b"<m1@acme.example>",
                                                   f"<c{n}@acme.example>".encode()), [r])
        copies = {r: (await h.gateway.sent_index.find([f"<c{n}@acme.example>"]))[0]
                  for n, r in enumerate(yahoo + gmail)}

        async def complain(n: int) -> None:
            copy = copies[yahoo[n]]
            from gateway.feedback.apply import Arrival

            applied = await h.gateway.feedback.apply(
                arf(f"<c{n}@acme.example>", yahoo[n]),
                Arrival.inbox(copy.tenant_id, copy.mailbox_id))
            assert applied.suppressed[:1] == ["complaint"] or applied.suppressed == []

        await complain(0)  # 1 in 20 copies to feedback providers: 5 % -> warns
        await complain(0)  # the same report again counts once
        await h.gateway.breakers.run_once()
        assert await states(h) == {"t": ("warn", "complaints"), "d": ("warn", "complaints"),
                                   "m": ("warn", "complaints")}
        assert (await asyncio.to_thread(mail_from, 0, h))[0] == 250  # a warning only
        await complain(1)  # 2 in 20: 10 % -> trips (with Gmail's copies it would be 2.5 %)
        await h.gateway.breakers.run_once()
        assert await states(h) == {"t": ("open", "complaints"), "d": ("open", "complaints"),
                                   "m": ("open", "complaints")}
        code, text = await asyncio.to_thread(mail_from, 0, h)
        assert code == 451 and "complaint-rate breaker of tenant acme" in text
        assert await audited(h) == ["breaker.warned"] * 3 + ["breaker.tripped"] * 3


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_tenant_may_be_stricter_never_looser(tmp_path: Path, pki, database):
    async with running_harness(tmp_path, pki, database, extra=SMALL) as h:
        async with admin(h, await key(h, "ops", "acme")) as client:
            looser = await client.patch("/api/v1/tenants/acme/settings",
                                        json={"breaker_bounce_trip_percent": 10})
            assert looser.status_code == 422 and "stricter" in looser.text
            stricter = await client.patch("/api/v1/tenants/acme/settings",
                                          json={"breaker_bounce_trip_percent": 2})
            assert stricter.json()["settings"]["breaker_bounce_trip_percent"] == 2
        await h.refresh()
        h.sink.faults.rcpt["gone@example.org"] = "550 5.1.1 No such user"
        await send_many(h, [f"a{n}@example.org" for n in range(39)] + ["gone@example.org"])
        await h.gateway.breakers.run_once()  # 1 in 40 is 2.5 %: over the tenant's 2 %
        assert (await states(h))["t"] == ("open", "bounces")


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_trip_on_one_node_reaches_the_other_within_seconds(tmp_path: Path, pki,
                                                                   database):
    extra = SMALL.replace("sync_seconds = 60", "sync_seconds = 0.5")
    async with running_harness(tmp_path, pki, database, extra=extra) as a:
        b = Gateway(config_module.load(a.config_path), str(a.config_path))
        await b.start(run_queue=False, roles=("smtp",))
        try:
            a.sink.faults.rcpt["gone@example.org"] = "550 5.7.26 Unauthenticated email"
            tripped = time.monotonic()
            assert await send_many(a, ["gone@example.org"]) == [550]
            assert (await asyncio.to_thread(mail_from, 0, a))[0] == 451  # at once here

            def b_answers() -> int:
                with smtplib.SMTP("127.0.0.1", b.ports.submission, timeout=10) as smtp:
                    smtp.starttls(context=pki.client_context())
                    smtp.login("campaign", "correct horse battery staple")
                    return smtp.mail("sales@acme.example")[0]

            while await asyncio.to_thread(b_answers) != 451:
                assert time.monotonic() - tripped < 5, "node B never saw the trip"
                await asyncio.sleep(0.1)
            print(f"\n[breakers] trip to 451 on the second node: "
                  f"{time.monotonic() - tripped:.2f} s")
        finally:
            await b.stop(deadline=1)
