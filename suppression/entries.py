"""What a suppression entry is: a target (one address, a domain, or a domain with its
subdomains), a scope (global or one tenant), a reason, where it came from, and maybe an
expiry. Targets are found by keyed digest; see `digest.py`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

GLOBAL = 0  # the scope id of the global list; tenant ids start at 1


class Reason(enum.StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"
    ERASURE = "erasure"


# An opt-out a campaign tool must not be able to undo: removed only by a compliance
# operator not bound to a tenant, with a reason and evidence.
PROTECTED = frozenset({Reason.UNSUBSCRIBE, Reason.COMPLAINT, Reason.ERASURE})

# When an entry is added again with another reason, the stronger one stays, so re-adding
# never turns a protected opt-out into one ops may remove.
STRENGTH = {Reason.MANUAL: 1, Reason.BOUNCE: 2, Reason.UNSUBSCRIBE: 3, Reason.COMPLAINT: 4,
            Reason.ERASURE: 5}


class Kind(enum.StrEnum):
    ADDRESS = "address"
    DOMAIN = "domain"  # the domain itself only
    SUBDOMAINS = "subdomains"  # the domain and every subdomain: `*.example.com`


@dataclass(frozen=True, slots=True)
class Target:
    """A canonical address or domain, with the kind that says how it matches."""

    kind: Kind
    value: str  # canonical address, or ASCII domain (no `*.`)

    @property
    def display(self) -> str:
        return f"*.{self.value}" if self.kind is Kind.SUBDOMAINS else self.value


@dataclass(frozen=True, slots=True)
class NewEntry:
    scope: int  # GLOBAL or a tenant id
    target: Target
    reason: Reason
    source: str  # link, one-click, mailto, import, api, cli, bounce, ...
    created_at: int  # unix seconds
    expires_at: int | None = None
    note: str = ""
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored entry. `target` is None for erasure entries: only the digest is kept."""

    id: int
    scope: int
    kind: Kind
    digest: bytes
    target: str | None
    reason: Reason
    source: str
    created_at: int
    expires_at: int | None
    note: str
    created_by: str

    @property
    def display(self) -> str:
        """The target as people write it (`*.example.com`), or the digest of an erasure."""
        if self.target is None:
            return f"digest:{self.digest.hex()}"
        return f"*.{self.target}" if self.kind is Kind.SUBDOMAINS else self.target

    def active(self, now: int) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class Match:
    """Why a recipient is suppressed: the strongest active entry that matched."""

    scope: int
    reason: Reason
    kind: Kind
