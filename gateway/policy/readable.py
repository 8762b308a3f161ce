"""The text of a message as a reader sees it, part by part, for the content checks.

HTML loses its tags (and with them every attribute: ids in `href`, `src` and `data-*` are
not text); entities are decoded. Attachments and non-text parts are skipped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from email.utils import collapse_rfc2231_value

from gateway.policy.message import Message

_TAGS = re.compile(r"<[^>]*>")
_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_HIDDEN = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.S | re.I)


def html_text(markup: str) -> str:
    markup = _HIDDEN.sub(" ", _COMMENTS.sub(" ", markup))
    return html.unescape(_TAGS.sub(" ", markup))


def decoded_text_parts(message: Message) -> list[tuple[int, str, str]]:
    """(index in the walk, content type, decoded content) of each text part that is not an
    attachment; parts whose charset or transfer encoding cannot be read are skipped. Read
    once per message body (every content check asks)."""
    found: list[tuple[int, str, str]] | None = message.body_cache.get("texts")
    if found is None:
        found = message.body_cache["texts"] = list(_decode(message))
    return found


def _decode(message: Message) -> Iterator[tuple[int, str, str]]:
    for index, part in enumerate(message.structure().walk()):
        if part.get_content_maintype() != "text" or part.get_content_disposition() == \
                "attachment":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        try:
            charset = collapse_rfc2231_value(part.get_param("charset", "ASCII"))
            yield index, part.get_content_type(), payload.decode(charset, "replace")
        except (LookupError, ValueError):  # an unknown charset: the part is not read
            continue


def text_parts(message: Message) -> list[tuple[str, str]]:
    """(where, text) for each text part: "text/plain part 1", "text/html part 2"."""
    found: list[tuple[str, str]] | None = message.body_cache.get("readable")
    if found is None:
        found = message.body_cache["readable"] = [
            (f"{kind} part {index}", html_text(content) if kind == "text/html" else content)
            for index, kind, content in decoded_text_parts(message)]
    return found
