"""Complaint reports mailed to a copy's `CFBL-Address` (`fbl@<feedback domain>`, taken by the
inbound listener): which copy each is about, and whether to believe it.

A report counts only if
1. a DKIM signature of the reporting provider verifies: its `d=` is the report's From domain
   or a parent of it (relaxed alignment), looked up with `[dns] nameservers`;
2. it is an ARF complaint (RFC 5965) whose returned message — in full, its header block
   alone, or redacted (RFC 6590) — carries a `CFBL-Feedback-ID` that opens under the
   `feedback-ref` key (feedback/cfbl.py);
3. the reference names a copy in the sent index.
Then the complaint is applied like any other (feedback/apply.py), for that copy alone:
its tenant's suppression entry (digest-only when the report hides the address) and the
breakers' complaint count, once per person however often the report is replayed.

What is not believed is counted (`gateway_cfbl_reports_total{outcome}`) and answered `250`
like the rest: a forger learns nothing, and a provider does not retry a report we will never
believe. Only a store or DNS failure answers `451`, so the provider tries again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

import dkim

from gateway.directory.address import aligned_domain
from gateway.feedback.apply import Arrival, FeedbackApplier
from gateway.feedback.cfbl import FeedbackRefs, InvalidFeedbackRef
from gateway.feedback.reports import parse
from gateway.feedback.sent import SentCopy, SentIndex
from gateway.observability import metrics

log = logging.getLogger("gateway.complaints")

_HEADERS = BytesHeaderParser(policy=compat32)
_D_TAG = re.compile(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)

# a DKIM key record's text for a name, None when there is none (dkimpy's `dnsfunc`);
# raises NetworkError when no DNS server answers
KeyLookup = Callable[[bytes], bytes | None]


def authentic(report: bytes, lookup: KeyLookup) -> bool:
    """Whether a DKIM signature aligned with the report's From domain verifies (blocking:
    DNS and RSA; run it off the event loop). NetworkError when DNS does not answer."""
    headers = _HEADERS.parsebytes(report, headersonly=True)
    try:
        senders = [a for _, a in getaddresses([str(headers.get("from", ""))]) if "@" in a]
    except (ValueError, TypeError, IndexError):
        return False
    if len(senders) != 1:
        return False
    author = senders[0].rpartition("@")[2].lower()
    try:
        signed = dkim.DKIM(report)
        signatures = [v for n, v in signed.headers if n.lower() == b"dkim-signature"]
    except (dkim.DKIMException, ValueError, IndexError, UnicodeError):
        return False

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return lookup(name)

    for i, value in enumerate(signatures):
        found = _D_TAG.search(value.replace(b"\r\n", b""))
        domain = found.group(1).decode("ascii", "replace").lower() if found else ""
        # relaxed: d= is the author's domain or one of its parents (never a bare TLD)
        if "." not in domain or aligned_domain(domain, (author,)) is None:
            continue
        try:
            if signed.verify(idx=i, dnsfunc=dnsfunc):
                return True
        except (dkim.DKIMException, ValueError, IndexError, UnicodeError):
            continue
    return False


class ComplaintReports:
    def __init__(self, refs: FeedbackRefs, sent: SentIndex, applier: FeedbackApplier,
                 lookup: KeyLookup) -> None:
        self._refs = refs
        self._sent = sent
        self._applier = applier
        self._lookup = lookup

    async def read(self, report: bytes) -> str:
        """What became of one report: `counted`, or why it was ignored. Raises NetworkError
        (DNS), StoreError or VaultError when it cannot be decided now."""
        if not await asyncio.to_thread(authentic, report, self._lookup):
            return self._ignored("unverified")
        feedback = parse(report)
        if feedback.complaint is None:
            return self._ignored("not-a-complaint")
        if not feedback.feedback_refs:
            return self._ignored("unsealed")
        outcome = "forged"
        for value in feedback.feedback_refs:
            try:
                ref = self._refs.open(value)
            except InvalidFeedbackRef:
                continue
            copy = next((c for c in await self._sent.of_queue_id(ref.tenant_id, ref.queue_id)
                         if ref.names(c.recipient_digest)), None)
            if copy is None:
                outcome = "unknown-copy"  # sealed here, but purged from the sent index
                continue
            applied = await self._applier.apply(report, Arrival.cfbl(copy, ref.scopes()))
            return self._counted(copy, applied.kind)
        return self._ignored(outcome)

    @staticmethod
    def _ignored(outcome: str) -> str:
        metrics.CFBL_REPORTS.labels(outcome).inc()
        log.info("complaint report ignored", extra={"outcome": outcome})
        return outcome

    @staticmethod
    def _counted(copy: SentCopy, kind: str) -> str:
        metrics.CFBL_REPORTS.labels("counted").inc()
        log.info("complaint report counted", extra={
            "tenant_id": copy.tenant_id, "queue_id": copy.queue_id, "outcome": kind})
        return "counted"

