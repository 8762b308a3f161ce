"""Take one person out of a kept message's address fields, for an erasure: a held message to
several recipients is kept for the others, and releasing it must not show the erased
address to them."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formataddr, getaddresses

from gateway.policy.message import Message

# Every field that can carry a recipient's address on its way.
ADDRESS_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc", "delivered-to",
                  "x-original-to", "envelope-to", "apparently-to", "x-rcpt-to")


def without_address(raw: bytes, is_person: Callable[[str], bool]) -> bytes:
    """`raw` with every address `is_person` recognises taken out of the address fields (a
    field left empty is dropped). The body is untouched."""
    message = Message(raw)
    for field in ADDRESS_FIELDS:
        values = message.values(field)
        if not values:
            continue
        kept = [[(name, address) for name, address in getaddresses([value])
                 if address and not is_person(address)] for value in values]
        if all(len(k) == len(getaddresses([v])) for k, v in zip(kept, values, strict=True)):
            continue  # the person is not in this field
        message.remove(field)
        for pairs in kept:
            if pairs:
                message.append(field.title(), ", ".join(formataddr(p) for p in pairs))
    return message.as_bytes()
