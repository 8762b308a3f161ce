"""What a tenant that mails recipients on `allow-with-notice` must have said (its notice)."""

from __future__ import annotations

from typing import Any

NOTICE_SETTINGS = {
    "notice_source": "your company's website, team page",
    "notice_purpose": "to offer our bookkeeping services to your business, on our "
                      "legitimate interest (Art. 6(1)(f) GDPR)",
    "notice_url": "https://acme.example/privacy",
}


async def give_notice(h: Any, tenant: str = "acme") -> None:
    """Set the tenant's notice settings, as `gateway tenant set` would."""
    for name, value in NOTICE_SETTINGS.items():
        await h.store().set_tenant_setting(tenant, name, value, "test")
    await h.refresh()
