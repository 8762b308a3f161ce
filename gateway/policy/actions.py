"""A content check's action for one tenant: the tenant's setting, never weaker than the
operator's floor (`[policy.<check>] floor`), defaulting to the operator's `action` or the
check's own default."""

from __future__ import annotations

from gateway.config import Config
from gateway.directory.records import Tenant

ORDER = ("off", "hold", "reject")


def stronger(a: str, b: str) -> str:
    return a if ORDER.index(a) >= ORDER.index(b) else b


def action_for(config: Config, tenant: Tenant, check: str, setting: str, default: str) -> str:
    operator = config.check_config(check)
    chosen = str(tenant.settings.get(setting) or operator.action or default)
    if chosen not in ORDER:
        chosen = default
    return stronger(chosen, operator.floor)
