"""The admin API over a real listener: API keys, roles, JSON errors, and tenant isolation
checked for every route of the OpenAPI document."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Harness, running_harness
from tests.support.admin_api import admin, key, objects_of_other


async def test_requests_without_a_valid_key_get_401_json(harness: Harness):
    async with admin(harness, None) as client:
        response = await client.get("/api/v1/mailboxes")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
    async with admin(harness, "ocg_000000000000_forged") as client:
        assert (await client.get("/api/v1/mailboxes")).status_code == 401


async def test_a_key_is_stored_only_as_a_digest_and_revocation_takes_effect(harness: Harness):
    api_key = await key(harness, "ops")
    async with harness.gateway.engine.connect() as conn:
        import sqlalchemy as sa

        from gateway.store.schema import api_keys

        stored = (await conn.execute(sa.select(api_keys))).one()
    assert api_key not in repr(tuple(stored)) and len(stored.key_hash) == 64
    async with admin(harness, api_key) as client:
        assert (await client.get("/api/v1/mailboxes")).status_code == 200
        revoked = await client.delete(f"/api/v1/apikeys/{stored.prefix}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert (await client.get("/api/v1/mailboxes")).status_code == 401


async def test_a_key_creates_keys_only_within_its_role_and_tenant(harness: Harness):
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        ok = await client.post("/api/v1/apikeys", json={"role": "ops", "tenant": "acme"})
        assert ok.status_code == 201 and ok.json()["key"].startswith("ocg_")
        for body in ({"role": "admin", "tenant": "acme"}, {"role": "ops"},
                     {"role": "ops", "tenant": "other"}, {"role": "compliance",
                                                          "tenant": "acme"}):
            refused = await client.post("/api/v1/apikeys", json=body)
            assert refused.status_code == 403, body
            assert refused.json()["error"]["code"] == "forbidden"
    async with admin(harness, await key(harness, "compliance")) as client:
        assert (await client.get("/api/v1/mailboxes")).status_code == 403


async def test_bad_requests_get_a_json_4xx_and_never_a_traceback(harness: Harness):
    async with admin(harness, await key(harness, "admin")) as client:
        mailbox = harness.gateway.directory.mailbox("sales@acme.example")
        bad = await client.put(f"/api/v1/mailboxes/{mailbox.public_id}/tokens",
                               content=b"{not json", headers={"Content-Type": "application/json"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        wrong = await client.put(f"/api/v1/mailboxes/{mailbox.public_id}/tokens",
                                 json={"refresh_token": "x"})
        # an smtp-smarthost mailbox has no OAuth provider: a clear 422, nothing stored
        assert wrong.status_code == 422
        assert "does not use OAuth" in wrong.json()["error"]["message"]
        assert "Traceback" not in bad.text + wrong.text


async def test_mailbox_ids_are_random_not_sequential(harness: Harness):
    async with admin(harness, await key(harness, "ops")) as client:
        ids = [m["id"] for m in (await client.get("/api/v1/mailboxes")).json()]
    assert len(ids) == 3 and all(re.fullmatch(r"mbx_[0-9a-f]{20}", i) for i in ids)


# --- tenant isolation, generated from the OpenAPI route list ----------------------------------


_BODIES = {"/tokens": {"refresh_token": "x"}, "/password": {"username": "u", "password": "p"},
           "/entries": {"target": "x@y.example"}, "/check": {"address": "x@y.example"},
           "/removals": {"target": "x@y.example",
                                                                "reason": "r"}}
_QUERIES = {"/check": {"address": "x@y.example"}}


async def test_every_route_gives_a_tenant_a_key_404_for_tenant_b_objects(tmp_path, pki,
                                                                          database):
    async with running_harness(tmp_path, pki, database, extra="[oauth.google]\n") as harness:
        await _isolation(harness)


async def _isolation(harness: Harness) -> None:
    others = await objects_of_other(harness)
    async with admin(harness, await key(harness, "admin", "acme")) as client:
        spec = (await client.get("/api/v1/openapi.json")).json()
        checked = 0
        for path, operations in spec["paths"].items():
            params = re.findall(r"{(\w+)}", path)
            if not params:
                continue
            for param in params:
                assert param in others, f"no tenant-B object for {param} in {path}: add one"
            url = path.format(**others)
            for method in operations:
                body = next((b for suffix, b in _BODIES.items() if path.endswith(suffix)), None)
                query = next((q for suffix, q in _QUERIES.items() if path.endswith(suffix)), None)
                response = await client.request(method.upper(), url, json=body, params=query)
                assert response.status_code == 404, (method, path, response.text)
                assert response.json()["error"]["code"] == "not_found"
                checked += 1
        assert checked >= 7
        # and lists never show tenant B's objects
        for path in ("/api/v1/mailboxes", "/api/v1/apikeys", "/api/v1/oauth-clients"):
            listing = (await client.get(path)).json()
            assert all(item.get("tenant") in ("acme", None) for item in listing), path
            assert others["mailbox_id"] not in str(listing)
            assert others["key_id"] not in str(listing)


@pytest.mark.parametrize("path", ["/api/v1/openapi.json"])
async def test_openapi_document_lists_the_api(harness: Harness, path: str):
    async with admin(harness, None) as client:
        spec = (await client.get(path)).json()
    assert "/api/v1/mailboxes/{mailbox_id}/tokens" in spec["paths"]


async def test_import_through_the_api_needs_a_configured_client(harness: Harness):
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        mailbox = harness.gateway.directory.mailbox("sales@acme.example")
        response = await client.delete(f"/api/v1/mailboxes/{mailbox.public_id}/tokens")
        assert response.status_code == 200 and response.json()["revoked_at_provider"] is False


async def test_the_openapi_document_declares_the_api_key_on_every_route_that_needs_one(
        harness: Harness):
    """Issue 27: a client generated from the document knows to send the key; the routes
    that answer without one (the index) declare none."""
    async with admin(harness, None) as client:
        spec = (await client.get("/api/v1/openapi.json")).json()
        scheme = spec["components"]["securitySchemes"]["apiKey"]
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        keyless = []
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if operation.get("security") != [{"apiKey": []}]:
                    keyless.append((method, path))
                    # declared keyless: it truly answers without a key
                    response = await client.request(method.upper(), path)
                    assert response.status_code != 401, (method, path)
        assert keyless == [("get", "/api/v1/")]
        refused = await client.get("/api/v1/mailboxes")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"


async def test_error_answers_are_what_the_openapi_document_declares(harness: Harness):
    """Issue 27: FastAPI declared its own 422 body (HTTPValidationError) while the API
    answers `{"error": {"code", "message"}}`; now the document declares that, for 422 and,
    where a key is needed, 401 and 403 — and real answers validate against it."""
    import jsonschema

    async with admin(harness, await key(harness, "ops", "acme")) as client:
        spec = (await client.get("/api/v1/openapi.json")).json()
        error = spec["components"]["schemas"]["Error"]
        assert "HTTPValidationError" not in spec["components"]["schemas"]
        with_body = [(path, method) for path, operations in spec["paths"].items()
                     for method, operation in operations.items()
                     if "requestBody" in operation and "{" not in path]
        assert with_body
        for path, method in with_body:
            declared = spec["paths"][path][method]["responses"]
            assert declared["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}
            assert "401" in declared and "403" in declared
            response = await client.request(method.upper(), path, content=b"[1, 2",
                                            headers={"content-type": "application/json"})
            assert response.status_code == 422, (method, path, response.text)
            jsonschema.validate(response.json(), error)
    async with admin(harness, None) as client:
        refused = await client.get("/api/v1/mailboxes")
        assert refused.status_code == 401
        jsonschema.validate(refused.json(), error)
