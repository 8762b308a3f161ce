"""The one canonical form every suppression lookup and entry uses.

    canonical("Bob.Smith+News@GoogleMail.com") == "bobsmith@gmail.com"

1. email-validator's normal form (syntax only, no DNS; quoted local parts allowed, as the
   gateway's RCPT check allows them). The domain becomes its ASCII (IDNA A-label) form,
   lower-cased: `bücher.de` and `xn--bcher-kva.de` are one domain.
2. The local part is case-folded. RFC 5321 lets a mailbox be case-sensitive, but no
   provider in practice makes `Alice@` and `alice@` two people, and a false suppression is
   safe while a missed one is not.
3. A `+tag` is dropped for every domain (`bob+news@` is `bob@`), unless the local part
   starts with `+`.
4. Gmail: `googlemail.com` is `gmail.com`, and dots in the local part are ignored.

Fast path: plain ASCII dot-atom addresses skip email-validator's full parse. Their domain
still goes through email-validator once (the verdict is cached), and
`tests/suppression/test_canonical_differential.py` checks over a million generated addresses
that both paths give exactly the same result.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_MAX_ADDRESS = 254
_MAX_LOCAL = 64
# RFC 5322 dot-atom of atext, ASCII only; anything else takes the full path.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@([A-Za-z0-9.-]+)")


class InvalidAddress(ValueError):
    """Not an address email-validator accepts; the message says which rule failed."""


def _validate(address: str) -> tuple[str, str]:
    try:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=True,
                                allow_quoted_local=True, allow_display_name=False,
                                allow_domain_literal=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    assert result.ascii_domain is not None  # domain literals are refused above
    return result.local_part, result.ascii_domain


@lru_cache(maxsize=200_000)
def _plain_domain(domain: str) -> str | None:
    """The ASCII form of a domain email-validator accepts, or None (take the full path)."""
    if "xn--" in domain.lower():
        return None  # its Unicode form is longer or shorter: lengths differ, be exact
    try:
        return _validate(f"a@{domain}")[1]
    except InvalidAddress:
        return None


def fold(local: str, domain: str) -> str:
    """Steps 2 to 4 on a validated local part and ASCII domain."""
    local = local.casefold()
    if not local.startswith('"'):
        base = local.split("+", 1)[0]
        local = base or local
    if domain in GMAIL_DOMAINS:
        domain = "gmail.com"
        local = local.replace(".", "")
    return f"{local}@{domain}"


def canonical(address: str) -> str:
    """The canonical form of `address`; raises InvalidAddress."""
    plain = _PLAIN.fullmatch(address)
    if plain is not None and len(address) <= _MAX_ADDRESS and len(plain[1]) <= _MAX_LOCAL:
        domain = _plain_domain(plain[2])
        if domain is not None:
            return fold(plain[1], domain)
    return fold(*_validate(address))


def canonical_slow(address: str) -> str:
    """email-validator on every address: the reference the fast path is tested against."""
    return fold(*_validate(address))


def canonical_domain(name: str) -> str:
    """A domain's ASCII form, lower-cased, as entries and lookups use it."""
    name = name.strip().rstrip(".")
    if name.startswith("*."):
        raise InvalidAddress("Give the domain without '*.'; ask for its subdomains apart.")
    if "@" in name:
        raise InvalidAddress("A domain has no '@'.")
    return _validate(f"postmaster@{name}")[1]


def parent_domains(domain: str) -> list[str]:
    """`a.b.example.com` -> [a.b.example.com, b.example.com, example.com, com]."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]
