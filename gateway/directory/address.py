"""Address syntax and normal form (email-validator; syntax only, never DNS)."""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from gateway.errors import InvalidValue


@lru_cache(maxsize=65536)
def normalize(address: str, smtputf8: bool = True) -> str:
    """The validated bare form of `address`: domain lower-cased and IDNA-normalised.

    The local part keeps its case on the wire (RFC 5321 s 2.4); `key()` folds it for lookups.
    Raises InvalidValue naming the rule that failed, never echoing more than the address.
    """
    try:
        result = validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=smtputf8,
            allow_quoted_local=True,
            allow_display_name=False,
            allow_domain_literal=False,
        )
    except EmailNotValidError as exc:
        raise InvalidValue(f"'{address}' is not a valid address: {exc}") from None
    return result.normalized


# Specials (RFC 5322 s 3.2.3) and the old routing characters: inside a quoted local part they
# let a next hop read a second address out of the first.
_ROUTING = frozenset('@%!:,;<>()[]\\"')


def relay_form(address: str) -> bool:
    """True for an address written in a form some next hop still routes on: a source route
    (`@relay:a@b`), the percent hack (`a%b@x`), a bang path (`b!a@x`), or a quoted local part
    holding specials (`"a@b"@x`). RFC 5321 s 4.1.1.3 lets a server decline them; we do, so the
    suppression check and the upstream always see one plain address."""
    text = address.strip()
    if text.startswith("@"):
        return True
    local = text.rpartition("@")[0]
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        return any(c in _ROUTING for c in local[1:-1])  # a backslash escape counts too
    return "%" in local or "!" in local


def key(address: str) -> str:
    """Lookup key: the normal form, case-folded (mailboxes are case-insensitive in practice)."""
    return address.casefold()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@lru_cache(maxsize=4096)
def normalize_domain(name: str) -> str:
    probe = normalize(f"postmaster@{name.strip().rstrip('.')}")
    return domain_of(probe)


# where complaint reports go: the local part of a copy's RFC 9477 CFBL-Address
FEEDBACK_LOCAL_PART = "fbl"


def aligned_domain(author: str, candidates: tuple[str, ...]) -> str | None:
    """The first candidate that is `author` or a child of it: a feedback domain aligned
    with the From domain (RFC 9477 s 3.1), or a DKIM `d=` that `author` lies under."""
    base = author.lower().rstrip(".")
    if not base:
        return None
    for candidate in candidates:
        name = candidate.lower().rstrip(".")
        if name and (name == base or name.endswith("." + base)):
            return name
    return None
