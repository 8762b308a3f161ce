"""The admin API over a real listener: API keys, roles, JSON errors, and tenant isolation
checked for every route of the OpenAPI document."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Harness, running_harness
from tests.support.admin_api import admin, held_message, key, objects_of_other, queued_copy


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


def _example(schema: dict, spec: dict) -> object:
    """A value the schema accepts, so a request reaches the tenant check (not a 422)."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        return _example(schema["anyOf"][0], spec)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _example(schema["properties"][name], spec)
                for name in schema.get("required", [])}
    return {"integer": 1, "number": 1, "boolean": True, "array": []}.get(
        kind, "x@y.example")  # type: ignore[arg-type]


def _request(operation: dict, spec: dict) -> tuple[object, dict]:
    """The smallest valid body and query of an operation."""
    content = operation.get("requestBody", {}).get("content", {})
    body = _example(content["application/json"]["schema"], spec) \
        if "application/json" in content else None
    query = {p["name"]: _example(p.get("schema", {}), spec)
             for p in operation.get("parameters", []) if p["in"] == "query" and p["required"]}
    return body, query


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
            for method, operation in operations.items():
                body, query = _request(operation, spec)
                response = await client.request(method.upper(), url, json=body, params=query)
                assert response.status_code == 404, (method, path, response.text)
                assert response.json()["error"]["code"] == "not_found"
                checked += 1
        assert checked >= 40
        # and lists never show tenant B's objects
        await held_message(harness, "acme", "sales@acme.example")
        await queued_copy(harness, "acme", "sales@acme.example")
        shown = 0
        for path, query in (("/api/v1/mailboxes", {}), ("/api/v1/apikeys", {}),
                            ("/api/v1/oauth-clients", {}), ("/api/v1/tenants", {}),
                            ("/api/v1/domains", {}), ("/api/v1/logins", {}),
                            ("/api/v1/queue", {"all": "true"}), ("/api/v1/held", {}),
                            ("/api/v1/optout-reviews", {})):
            answer = (await client.get(path, params=query)).json()
            listing = answer["messages"] if path == "/api/v1/held" else answer
            shown += len(listing)
            assert all(item.get("tenant", item.get("name")) in ("acme", None)
                       or path == "/api/v1/queue" for item in listing), path
            for name in ("mailbox_id", "key_id", "reference", "username"):
                assert others[name] not in str(listing), (path, name)
            ids = {str(item.get("id")) for item in listing}
            assert not ids & {others["held_id"], others["copy_id"], others["review_id"]} \
                or path not in ("/api/v1/held", "/api/v1/queue", "/api/v1/optout-reviews")
            assert "other.example" not in str(listing), path
        assert shown >= 7  # acme's own objects are listed: the filter is not "nothing"


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
