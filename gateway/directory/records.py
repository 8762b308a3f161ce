"""The directory's values: tenants, their sending domains, submission logins and mailboxes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    status: str  # active | suspended
    status_reason: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    tenant_id: int
    name: str
    verified: bool = False  # proven by `gateway domain verify`


@dataclass(frozen=True, slots=True)
class Login:
    id: int
    tenant_id: int
    username: str
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    tenant_id: int
    address: str
    upstream: str
    status: str  # active | paused | disconnected | needs-reconsent
    status_reason: str
    settings: dict[str, Any] = field(default_factory=dict)
    public_id: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is sending in an SMTP session: a login, by password or by source network."""

    login_id: int
    username: str
    tenant_id: int
    via: str  # "password" | "ip"
