"""The admin API: keys of each role and tenant binding, a client on the admin listener,
and another tenant's objects to try isolation with."""

from __future__ import annotations

import httpx

from gateway.access.api_keys import ApiKeys
from tests.conftest import Harness
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET


async def key(h: Harness, role: str, tenant: str | None = None) -> str:
    tenant_id = (await h.store().tenant(tenant)).id if tenant else None
    return (await ApiKeys(h.gateway.engine).create("test", role, tenant_id, "test"))[1]


def admin(h: Harness, api_key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.gateway.ports.admin}",
                             headers=headers)


async def objects_of_other(h: Harness) -> dict[str, str]:
    """An id of tenant `other`'s object for every path parameter the API has."""
    other = (await h.store().tenant("other")).id
    client_id = await h.gateway.credentials.add_client("google", CLIENT_ID, CLIENT_SECRET,
                                                       other, "test")
    key_id, _ = await ApiKeys(h.gateway.engine).create("b", "ops", other, "test")
    return {"mailbox_id": h.gateway.directory.mailbox("ceo@other.example").public_id,
            "key_id": key_id, "client_id": client_id, "list_name": "other",
            "tenant_name": "other"}
