"""A tenant's webhook: where its events are posted, signed with HMAC-SHA256.

The signing secret is answered once, when the webhook is set; a tenant-bound key reaches
its own tenant's webhook only.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.events.targets import check_target
from gateway.web.api.auth import OpsCaller, Web, visible_tenant

router = APIRouter(prefix="/api/v1/tenants", tags=["webhooks"])


class WebhookOut(BaseModel):
    tenant: str
    url: str | None = Field(description="none when the tenant has no webhook")


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=2000, description="an https URL that the "
                     "gateway may reach (not a private address unless the operator allows)")


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="the signing secret, shown once")


@router.get("/{tenant_name}/webhook", response_model=WebhookOut)
async def show_webhook(tenant_name: str, caller: OpsCaller, web: Web) -> WebhookOut:
    tenant = await visible_tenant(web, caller, tenant_name)
    return WebhookOut(tenant=tenant.name, url=await web.operator.webhooks.url_of(tenant.id))


@router.put("/{tenant_name}/webhook", response_model=NewWebhookOut)
async def set_webhook(tenant_name: str, body: WebhookIn, caller: OpsCaller,
                      web: Web) -> NewWebhookOut:
    """Point the tenant's events at the URL (events from now on); a new secret each time."""
    tenant = await visible_tenant(web, caller, tenant_name)
    await check_target(body.url, web.config.events.allow_private_targets, web.config.fetch)
    secret = await web.operator.webhooks.set(tenant.id, body.url, caller.actor)
    return NewWebhookOut(tenant=tenant.name, url=body.url, secret=secret)


@router.delete("/{tenant_name}/webhook", response_model=WebhookOut)
async def remove_webhook(tenant_name: str, caller: OpsCaller, web: Web) -> WebhookOut:
    """Its events stay readable from `/events`; 404 if it has none."""
    tenant = await visible_tenant(web, caller, tenant_name)
    await web.operator.webhooks.remove(tenant.id, caller.actor)
    return WebhookOut(tenant=tenant.name, url=None)
