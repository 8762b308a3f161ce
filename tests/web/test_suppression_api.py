"""The suppression API: roles, tenant binding, the global list's rules, protected removals,
streamed import and export."""

from __future__ import annotations

from gateway.optout.suppressions import Actor
from suppression.entries import GLOBAL, Reason
from tests.conftest import Harness
from tests.support.admin_api import admin, key

LIST = "/api/v1/suppression-lists"


async def test_tenant_key_works_on_its_list_and_only_checks_the_global_one(harness: Harness):
    await harness.gateway.suppressions.add(Actor("t"), GLOBAL, "hidden@example.org",
                                           Reason.COMPLAINT, "test")
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        added = await client.post(f"{LIST}/acme/entries",
                                  json={"target": "Bob+x@Example.com", "reason": "unsubscribe"})
        assert added.status_code == 201 and added.json()["target"] == "bob@example.com"
        check = (await client.post(f"{LIST}/global/check",
                                   json={"address": "hidden@example.org"})).json()
        assert check == {"suppressed": True}  # no reason, no entry
        legacy = (await client.get(f"{LIST}/global/check",
                                   params={"address": "hidden@example.org"})).json()
        assert legacy == check  # the deprecated GET still answers
        for method, path in (("GET", "/global/entries"), ("GET", "/global/export"),
                             ("POST", "/global/entries")):
            response = await client.request(method, LIST + path, json={"target": "a@b.example"})
            assert response.status_code == 403, path
            assert response.json()["error"]["code"] == "forbidden"
        assert (await client.get(f"{LIST}/other/entries")).status_code == 404
        bad = await client.post(f"{LIST}/acme/entries", json={"target": "not an address"})
        assert bad.status_code in (400, 422) and "error" in bad.json()
        # an opt-out is not removable by an ops key, nor without evidence
        removal = await client.post(f"{LIST}/acme/removals",
                                    json={"target": "bob@example.com", "reason": "oops"})
        assert removal.status_code == 403
    async with admin(harness, await key(harness, "compliance", None)) as client:
        no_evidence = await client.post(f"{LIST}/acme/removals",
                                        json={"target": "bob@example.com", "reason": "asked"})
        assert no_evidence.status_code in (400, 422)
        done = await client.post(f"{LIST}/acme/removals", json={
            "target": "bob@example.com", "reason": "re-subscribed", "evidence": "ticket 42"})
        assert done.status_code == 200 and done.json()["reason"] == "unsubscribe"


async def test_streamed_import_and_export_round_trip(harness: Harness):
    rows = "".join(f"user{i}@example.com\n" for i in range(3000)) + "junk\n"
    async with admin(harness, await key(harness, "ops", "acme")) as client:
        async def body():
            data = rows.encode()
            for start in range(0, len(data), 4096):
                yield data[start:start + 4096]

        report = (await client.post(f"{LIST}/acme/import", params={"reason": "bounce"},
                                    content=body())).json()
        assert (report["rows"], report["written"], report["bad_count"]) == (3001, 3000, 1)
        assert report["bad"] == [{"line": 3001, "message": report["bad"][0]["message"]}]
        exported = await client.get(f"{LIST}/acme/export")
        assert exported.headers["content-type"].startswith("text/csv")
        lines = exported.text.splitlines()
        assert len(lines) == 3001 and lines[0].startswith("target,kind,reason")
        page = (await client.get(f"{LIST}/acme/entries", params={"limit": 1000})).json()
        assert len(page["entries"]) == 1000 and page["next_after"]
        # the export read back into the same list: every row merges into its own entry
        again = (await client.post(f"{LIST}/acme/import", content=exported.content)).json()
        assert (again["rows"], again["written"], again["bad_count"]) == (3000, 3000, 0)
