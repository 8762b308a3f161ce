"""Helpers shared by several test modules (from tests/web/test_admin_api.py)."""

from __future__ import annotations

import httpx

from gateway.access.api_keys import ApiKeys
from tests.conftest import Harness


async def key(h: Harness, role: str, tenant: str | None = None) -> str:
    tenant_id = (await h.store().tenant(tenant)).id if tenant else None
    return (await ApiKeys(h.gateway.engine).create("test", role, tenant_id, "test"))[1]


def admin(h: Harness, api_key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.admin}",
                             headers=headers)
