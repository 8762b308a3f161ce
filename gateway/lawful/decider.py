"""The decision at send time: for a tenant that holds its mail to the lawful-basis table
(tenant setting `lawful_basis = enforce`), each recipient's verdict from the version in
force, their attribute and consent records (held in memory on every node, by audit
digest) and their address — and the refusal that names the policy and version, never
the person's data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.directory import lawful_overrides
from gateway.lawful import records
from gateway.lawful.index import RecordIndex
from gateway.lawful.notices import Notices
from gateway.lawful.signals import Attributes, Verdict, decide
from gateway.lawful.stated import key
from gateway.lawful.table import Decision, Kind
from gateway.lawful.versions import Policies
from gateway.protocol import replies
from gateway.protocol.replies import Reply

MODE_SETTING = "lawful_basis"
OVERRIDES_SETTING = "lawful_overrides"
DEFAULT_SETTING = "lawful_default"
STATEMENTS_SETTING = "lawful_statements"


@dataclass(frozen=True, slots=True)
class Decided:
    verdict: Verdict
    policy: str  # "ocg-default v3": the version the recipient was decided under
    override: str = ""  # the country whose tenant rule made the decision stricter

    def detail(self) -> dict[str, str]:
        """What a copy's audit row records of it."""
        return {"policy": self.policy, "decision": self.verdict.decision.value,
                "source": self.verdict.source.value,
                **({"consent": "yes"} if self.verdict.consented else {}),
                **({"override": self.override} if self.override else {})}

    def refusal(self) -> Reply | None:
        if self.verdict.sends:
            return None
        return replies.NO_LAWFUL_BASIS.with_text(
            f"Not sent: no lawful basis for this recipient under {self.policy} "
            f"({self.verdict.decision.value})")


class LawfulBasis:
    def __init__(self, engine: AsyncEngine, policies: Policies,
                 digest: Callable[[str], str], index: RecordIndex,
                 notices: Notices | None = None) -> None:
        self._engine = engine
        self._policies = policies
        self._digest = digest  # the audit digest: how records name a person
        self.index = index  # who has records: most recipients are decided without a query
        self.notices = notices or Notices(engine)  # who has had a tenant's notice

    async def decide(self, tenant_id: int, address: str, tenant_default: str = "",
                     now: datetime | None = None, overrides: str = "") -> Decided:
        return (await self.decide_many(tenant_id, [address], tenant_default, now,
                                       overrides=overrides))[address]

    async def decide_many(self, tenant_id: int, addresses: Sequence[str],
                          tenant_default: str = "", now: datetime | None = None,
                          stated: Mapping[str, Attributes] | None = None,
                          overrides: str = "") -> dict[str, Decided]:
        """Each address's decision under the version in force, on the records every node
        holds in memory (lawful/index.py). `stated`: what the message
        says of its recipients, by `stated.key(address)` (lawful/stated.py); `overrides`: the
        tenant's own rules (directory/lawful_overrides.py), applied over the table's as a
        floor."""
        version = self._policies.current
        digests = {a: self._digest(a) for a in addresses}
        attributes: dict[str, Attributes] = {}
        consents: dict[str, Sequence[records.Consent]] = {}
        wanted = []
        for d in digests.values():
            held = self.index.held(tenant_id, d)
            if held is not None:
                if held[0] is not None:
                    attributes[d] = held[0]
                consents[d] = held[1]
            elif self.index.may_have(tenant_id, d):  # past what a node holds: ask
                wanted.append(d)
        if wanted:
            async with self._engine.connect() as conn:
                attributes.update(await records.attributes_of(conn, tenant_id, wanted))
                consents.update(await records.consents_of(conn, tenant_id, wanted))
        at = now or datetime.now(UTC)
        default = Decision(tenant_default) if tenant_default else None
        said = stated or {}
        rules = lawful_overrides.parse(overrides) if overrides else {}
        found = {}
        for a, d in digests.items():
            verdict = decide(version.table, a, attributes.get(d),
                             records.consented(consents.get(d, []), at), default,
                             said.get(key(a)))
            stricter = _floor(verdict, rules)
            found[a] = Decided(verdict, version.name) if stricter is None else Decided(
                stricter, f"{version.name} + tenant rules {lawful_overrides.revision(overrides)}",
                verdict.country)
        return found

    async def notice_owed(self, tenant_id: int, decided: Mapping[str, Decided]) -> set[str]:
        """The recipients sent to on `allow-with-notice` who have not had this tenant's
        notice: their copy carries it."""
        noticed = [a for a, d in decided.items() if d.verdict.sends and d.verdict.notice]
        if not noticed:
            return set()
        digests = {self._digest(a): a for a in noticed}
        return {digests[d] for d in await self.notices.owed(tenant_id, list(digests))}

    async def told(self, tenant_id: int, decided: Mapping[str, Decided], queue_id: str
                   ) -> None:
        """These recipients' copies, carrying the notice, went (or wait in the queue)."""
        by_policy: dict[str, list[str]] = {}
        for address, d in decided.items():
            by_policy.setdefault(d.policy, []).append(self._digest(address))
        for policy, digests in by_policy.items():
            await self.notices.told(tenant_id, digests, queue_id, policy)

    def enforced(self, setting: Callable[[int, str], Any], tenant_id: int) -> bool:
        return bool(setting(tenant_id, MODE_SETTING) == "enforce")


def _floor(verdict: Verdict, rules: Mapping[tuple[str, str], str]) -> Verdict | None:
    """The verdict a tenant's rules make stricter, or None where they change nothing: the
    rules for the recipient's country and kind (every kind's, when it is not known), and
    only where stricter than the table."""
    if not rules or not verdict.country:
        return None
    kinds = [verdict.kind.value] if verdict.kind is not None else [k.value for k in Kind]
    matched = [Decision(rules[(verdict.country, k)]) for k in ("", *kinds)
               if (verdict.country, k) in rules]
    if not matched:
        return None
    strictest = max(matched, key=lambda d: d.strictness)
    if strictest.strictness <= verdict.decision.strictness:
        return None
    return replace(verdict, decision=strictest)
