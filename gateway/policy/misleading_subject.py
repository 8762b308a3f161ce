"""A subject that pretends: a reply or forward marker on a message that is in no thread
(no In-Reply-To, no References), or a merge tag the campaign tool did not fill
(`{{first_name}}`, `%FIRSTNAME%`, `[First Name]`, `*|FNAME|*`) in the subject or the text.

Tenant setting `misleading_subject` = hold (default) | reject | off, within the floor.
"""

from __future__ import annotations

import re
from typing import ClassVar

from gateway.policy.actions import action_for
from gateway.policy.check import PolicyContext, Stage, Transaction
from gateway.policy.readable import text_parts
from gateway.policy.verdict import Verdict
from gateway.protocol import replies

# Re/Fwd in English and the forms mail clients write in de, fr, es, it, pt, nl, nordic, ...
_THREAD_MARKER = re.compile(
    r"^\s*(?:\[[^\]]{1,40}\]\s*)?(?:re|fw|fwd|aw|wg|sv|vs|antw|doorst|rif|i|r|tr|rv|enc|"
    r"res|odp|vl|ynt|atb|ΑΠ|ΣΧΕΤ|回复|转发|答复)\s*(?:\[\d+\])?\s*[:：]", re.IGNORECASE)
_MERGE_TAG = re.compile(
    r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}|\{\$[A-Za-z_]\w*\}|%%?[A-Z][A-Z_]{2,}%%?|\*\|[A-Z_]+\|\*|"
    r"\[(?:first|last|full|company)[ _]?name\]|\[company\]|\{(?:first|last)_?name\}",
    re.IGNORECASE)


_TAG_STARTS = ("{", "%", "*|", "[")  # every alternative of _MERGE_TAG starts with one


def merge_tags(text: str) -> bool:
    """The pattern is tried only where a tag can start (a literal search finds those): a
    leading alternation would otherwise make the regex engine try every position."""
    for start in _TAG_STARTS:
        at = text.find(start)
        while at != -1:
            if _MERGE_TAG.match(text, at) is not None:
                return True
            at = text.find(start, at + 1)
    return False


class MisleadingSubject:
    name: ClassVar[str] = "misleading-subject"
    stage: ClassVar[Stage] = Stage.DATA
    waits: ClassVar[bool] = False

    def __init__(self, ctx: PolicyContext) -> None:
        self._config = ctx.config

    async def check(self, tx: Transaction) -> Verdict:
        message = tx.message
        assert message is not None
        action = action_for(self._config, tx.tenant, self.name, "misleading_subject", "hold")
        if action == "off":
            return Verdict.ok(self.name)
        subject = message.decoded("subject") or ""
        problems = []
        if _THREAD_MARKER.match(subject) and not (message.has("in-reply-to")
                                                  or message.has("references")):
            problems.append("reply or forward marker in Subject without In-Reply-To or "
                            "References")
        if merge_tags(subject):
            problems.append("unfilled merge tag in Subject")
        problems.extend(f"unfilled merge tag in {where}" for where, text in text_parts(message)
                        if merge_tags(text))
        if not problems:
            return Verdict.ok(self.name)
        reason = "; ".join(problems)
        if action == "reject":
            return Verdict.reject(self.name, replies.MISLEADING_SUBJECT, reason)
        return Verdict.hold(self.name, reason)
