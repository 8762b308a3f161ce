"""`gateway domain verify|check`: prove a sending domain, and report what receivers will see.

Verification: the tenant publishes `_ocg-verify.<domain> TXT "ocg-verify=<token>"`; the
token is random per domain and kept until proven. The check reads SPF, each active DKIM
key's record (it must carry the same public key), DMARC, MX, and the tenant's link domain
(a CNAME to the host of the gateway's unsubscribe URL).
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import dns.exception
import dns.resolver
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Config, DnsConfig
from gateway.directory.address import FEEDBACK_LOCAL_PART, aligned_domain
from gateway.directory.store import DirectoryStore, audit_change
from gateway.dkim.keys import DkimKeys, KeyInfo
from gateway.errors import NetworkError, NotFound
from gateway.store.schema import domains

VERIFY_LABEL = "_ocg-verify"


class Level(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    check: str
    detail: str

    def line(self) -> str:
        return f"{self.level.value}\t{self.check}\t{self.detail}"


def _server(text: str) -> tuple[str, int]:
    """"192.0.2.53", "127.0.0.1:5353", "::1" or "[::1]:5353" -> (host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host.rstrip("]"), int(port or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


class DnsLookup:
    """TXT, MX and CNAME lookups with the configured resolver; NXDOMAIN/NOANSWER -> []."""

    def __init__(self, config: DnsConfig) -> None:
        self._resolver = dns.resolver.Resolver(configure=not config.nameservers)
        if config.nameservers:
            parsed = [_server(s) for s in config.nameservers]
            self._resolver.nameservers = [host for host, _ in parsed]
            self._resolver.port = parsed[0][1]  # dnspython uses one port for all
        self._resolver.lifetime = config.timeout

    def _answer(self, name: str, rdtype: str) -> list[object]:
        """The records, [] when the name or the type does not exist. A resolver that does not
        answer (or only fails) is a NetworkError: "no record" would be a false finding."""
        try:
            return list(self._resolver.resolve(name, rdtype, raise_on_no_answer=False))
        except dns.resolver.NXDOMAIN:
            return []
        except dns.exception.Timeout:
            raise NetworkError(f"The DNS lookup of {name} ({rdtype}) timed out after "
                               f"{self._resolver.lifetime:g} s; check [dns] nameservers.") from None
        except dns.resolver.NoNameservers:
            raise NetworkError(f"No DNS server answered the lookup of {name} ({rdtype}): "
                               "each failed or refused; check [dns] nameservers.") from None
        except dns.exception.DNSException as exc:
            raise NetworkError(f"The DNS lookup of {name} ({rdtype}) failed "
                               f"({type(exc).__name__}).") from None

    def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
                for r in self._answer(name, "TXT")]

    def dkim_key(self, name: bytes) -> bytes | None:
        """A DKIM key record's text (dkimpy's `dnsfunc`), None when there is none."""
        records = [b"".join(r.strings)  # type: ignore[attr-defined]
                   for r in self._answer(name.decode("ascii", "replace").rstrip("."), "TXT")]
        return records[0] if records else None

    def mx(self, name: str) -> list[str]:
        return [str(r.exchange).rstrip(".")  # type: ignore[attr-defined]
                for r in self._answer(name, "MX")]

    def cname(self, name: str) -> str | None:
        answers = self._answer(name, "CNAME")
        return str(answers[0].target).rstrip(".").lower() if answers else None  # type: ignore[attr-defined]


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


class DomainChecks:
    def __init__(self, engine: AsyncEngine, config: Config) -> None:
        self._engine = engine
        self._config = config

    async def token(self, domain: str, actor: str) -> tuple[str, datetime | None]:
        """The domain's verification token (made on first ask) and when it was proven."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(domains).where(domains.c.name == domain))).first()
            if row is None:
                raise NotFound(f"Domain {domain} is not a sending domain of any tenant.")
            if row.verify_token:
                return row.verify_token, row.verified_at
            token = secrets.token_hex(16)
            await conn.execute(domains.update().where(domains.c.id == row.id).values(
                verify_token=token))
            await audit_change(conn, actor, "domain.verify-token", row.tenant_id, domain=domain)
            return token, None

    async def verify(self, domain: str, lookup: DnsLookup, actor: str) -> Finding:
        token, verified_at = await self.token(domain, actor)
        expected = f"ocg-verify={token}"
        found = await asyncio.to_thread(lookup.txt, f"{VERIFY_LABEL}.{domain}")
        if expected not in found:
            return Finding(Level.FAIL, "verify", f'publish {VERIFY_LABEL}.{domain}. IN TXT '
                           f'"{expected}", then run this again')
        if verified_at is None:
            await DirectoryStore(self._engine).mark_verified(domain, actor, "txt token")
        return Finding(Level.OK, "verify", f"{domain} is proven by its TXT token")

    async def report(self, domain: str, lookup: DnsLookup, dkim: DkimKeys,
                     actor: str) -> list[Finding]:
        """Every finding for a tenant's sending domain, as receivers see it (the lookups
        run off the event loop)."""
        _, verified_at = await self.token(domain, actor)
        keys = await dkim.listing(domain=domain)
        directory = DirectoryStore(self._engine)
        owner = next((t for t, d in await directory.list_domains() if d == domain), "")
        tenant = await directory.tenant(owner)
        link_domain = str(tenant.settings.get("link_domain") or "")
        return await asyncio.to_thread(self.check, domain, lookup, keys, link_domain,
                                       verified_at is not None)

    def _feedback_address(self, domain: str, lookup: DnsLookup, link_domain: str) -> Finding:
        """Where complaint reports go (RFC 9477 CFBL-Address, feedback/cfbl.py): the link
        domain, if it lies under the sending domain and its MX reaches a listener."""
        address = f"{FEEDBACK_LOCAL_PART}@{link_domain}"
        if not self._config.unsubscribe.mailto_listen:
            return Finding(Level.WARN, "feedback-address", "no inbound listener "
                           "(unsubscribe.mailto_listen): copies carry no CFBL-Address")
        if not link_domain or aligned_domain(domain, (link_domain,)) is None:
            return Finding(Level.WARN, "feedback-address", "complaint reports cannot name "
                           f"their copy: set the tenant's link_domain to a name under {domain} "
                           f"(links.{domain}) for a CFBL-Address receivers believe")
        mx = lookup.mx(link_domain)
        if not mx:
            return Finding(Level.FAIL, "feedback-address", f"{address} cannot receive: "
                           f"{link_domain} has no MX (point it at the inbound listener)")
        return Finding(Level.OK, "feedback-address", f"{address} (MX {', '.join(mx)})")

    def check(self, domain: str, lookup: DnsLookup, keys: Sequence[KeyInfo],
              link_domain: str, verified: bool) -> list[Finding]:
        findings = [Finding(Level.OK if verified else Level.WARN, "verify",
                            "proven by TXT token" if verified else
                            "not proven yet (gateway domain verify)")]
        spf = [r for r in lookup.txt(domain) if r.lower().startswith("v=spf1")]
        if len(spf) == 1:
            findings.append(Finding(Level.OK, "spf", spf[0]))
        else:
            findings.append(Finding(Level.FAIL, "spf", "no SPF record" if not spf else
                                    f"{len(spf)} SPF records (receivers treat that as none)"))
        active = [k for k in keys if k.retired_at is None]
        if not any(k.algorithm == "rsa-sha256" for k in active):
            findings.append(Finding(Level.FAIL, "dkim", "no active RSA key: mail goes unsigned "
                                    f"(gateway dkim generate {domain})"))
        for key in active:
            published = [_tags(r) for r in lookup.txt(key.dns_name)]
            if any(t.get("p") == key.public_key for t in published):
                findings.append(Finding(Level.OK, "dkim", f"{key.dns_name} ({key.algorithm})"))
            elif published:
                findings.append(Finding(Level.FAIL, "dkim", f"{key.dns_name} publishes another "
                                        "key: signatures will fail"))
            else:
                findings.append(Finding(Level.FAIL, "dkim", f"{key.dns_name} not published: "
                                        f"{key.dns_value}"))
        dmarc = [_tags(r) for r in lookup.txt(f"_dmarc.{domain}")
                 if r.lower().startswith("v=dmarc1")]
        if not dmarc:
            findings.append(Finding(Level.FAIL, "dmarc", f"no record at _dmarc.{domain} "
                                    "(bulk senders need one)"))
        else:
            policy = dmarc[0].get("p", "?")
            findings.append(Finding(Level.OK if policy in ("quarantine", "reject", "none")
                                    else Level.WARN, "dmarc", f"p={policy}"))
        mx = lookup.mx(domain)
        findings.append(Finding(Level.OK, "mx", ", ".join(mx)) if mx else Finding(
            Level.WARN, "mx", "no MX: replies and bounces to this domain cannot arrive"))
        findings.append(self._feedback_address(domain, lookup, link_domain))
        if link_domain:
            target = urlsplit(self._config.unsubscribe.base_url).hostname or ""
            cname = lookup.cname(link_domain)
            if cname and cname == target.lower():
                findings.append(Finding(Level.OK, "link-domain", f"{link_domain} -> {cname}"))
            else:
                findings.append(Finding(Level.FAIL, "link-domain", f"{link_domain} must be a "
                                        f"CNAME to {target or 'the gateway'} (found "
                                        f"{cname or 'none'})"))
        return findings
