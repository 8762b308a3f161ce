"""Opt-out receipts (optout/receipts.py): the public keys that verify them, a check of one
receipt, and a person's receipts from one tenant (named by address, kept by digest).

A receipt names nobody: listing them by address is allowed to any caller that sees the
tenant; a tenant-bound key sees only its own tenant's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.optout import receipts
from gateway.web.api.auth import AnyCaller, Web, visible_tenant_id

router = APIRouter(prefix="/api/v1", tags=["opt-out receipts"])


class PublicKeyOut(BaseModel):
    key: int = Field(description="the version a receipt names in `key`")
    public: str = Field(description="the raw Ed25519 public key, base64url")


class KeyDocumentOut(BaseModel):
    algorithm: str
    format: str
    keys: list[PublicKeyOut]


class VerifyIn(BaseModel):
    receipt: str = Field(min_length=1, max_length=receipts.MAX_RECEIPT,
                         description="the receipt as handed out (its JSON text)")


class VerifyOut(BaseModel):
    valid: bool
    reason: str = Field(default="", description="why not, when it is not valid")
    fields: dict[str, Any] = Field(default_factory=dict, description="what it attests")


class ReceiptsOut(BaseModel):
    receipts: list[str] = Field(description="each signed receipt, oldest first")


@router.get("/receipt-keys", response_model=KeyDocumentOut)
async def receipt_keys(caller: AnyCaller, web: Web) -> KeyDocumentOut:
    """Every public key that ever signed a receipt (the same document as the public
    listener's `/.well-known/ocg-receipt-keys.json`)."""
    return KeyDocumentOut.model_validate(web.operator.receipts.key_document())


@router.post("/receipts/verify", response_model=VerifyOut)
async def verify_receipt(body: VerifyIn, caller: AnyCaller, web: Web) -> VerifyOut:
    keys = receipts.keys_from(web.operator.receipts.key_document())
    try:
        return VerifyOut(valid=True, fields=receipts.verify(body.receipt, keys))
    except receipts.InvalidReceipt as exc:
        return VerifyOut(valid=False, reason=str(exc))


@router.get("/tenants/{tenant_name}/receipts", response_model=ReceiptsOut)
async def list_receipts(tenant_name: str, caller: AnyCaller, web: Web,
                        recipient: Annotated[str, Query(min_length=3, max_length=320)]
                        ) -> ReceiptsOut:
    """A person's receipts from this tenant (the address is digested, never stored)."""
    tenant_id = await visible_tenant_id(web, caller, tenant_name)
    async with web.directory.engine.connect() as conn:
        found = await receipts.receipts_of(conn, tenant_id,
                                           web.operator.digest(recipient.strip()))
    return ReceiptsOut(receipts=found)
