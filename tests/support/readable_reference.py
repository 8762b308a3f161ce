"""The text of a message as the content checks read it before issue 25 (a full parse with
the modern `email` policy, `get_content()` per part): the oracle the one-parse reader
(gateway/policy/readable.py) is tested against."""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser

_PARSER = BytesParser(policy=email.policy.SMTP)


def decoded_text_parts(raw: bytes) -> Iterator[tuple[int, str, str]]:
    msg = _PARSER.parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    for index, part in enumerate(msg.walk()):
        if part.get_content_maintype() != "text" or part.is_attachment():
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError):
            continue
        if isinstance(content, str):
            yield index, part.get_content_type(), content
