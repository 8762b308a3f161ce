"""Schemathesis fuzzes the admin API and the public side from our own OpenAPI documents, over
real sockets, with an admin key, a tenant-bound key, a revoked key and no key: no request may
get a 5xx, and no response may carry a traceback. Bounded (`--max-examples`, a fixed seed so
a failure reproduces, a database of its own); `OCG_FUZZ_EXAMPLES=500` runs it longer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.access.api_keys import ApiKeys
from gateway.web.public import openapi_document
from tests.conftest import Harness, running_harness
from tests.support.admin_api import key

EXAMPLES = int(os.environ.get("OCG_FUZZ_EXAMPLES", "25"))
SEED = 20261205
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def fuzz(location: str, base_url: str, report: Path, examples: int,
         headers: dict[str, str], checks: str = "not_a_server_error") -> list[dict]:
    """One schemathesis run; every exchange it made, from its HAR report."""
    return run(location, base_url, report, examples, headers, checks)[0]


def run(location: str, base_url: str, report: Path, examples: int, headers: dict[str, str],
        checks: str) -> tuple[list[dict], str, int]:
    """One schemathesis run: its exchanges (HAR), its output and its exit status."""
    if not os.path.exists(SCHEMATHESIS):
        pytest.fail("schemathesis is required (pip install -e '.[test]')")
    command = [SCHEMATHESIS, "run", location, "--url", base_url,
               "--max-examples", str(examples), "--seed", str(SEED),
               "--checks", checks, "--generation-database", "none",
               # one worker: two threads describing strategies at once hit a CPython 3.11
               # ast.parse race inside hypothesis ("AST constructor recursion depth
               # mismatch"), an error of the tool, not of the API
               "--phases", "examples,coverage,fuzzing", "--workers", "1",
               "--request-timeout", "10", "--no-color", "--warnings", "off",
               "--report", "har", "--report-har-path", str(report)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    if not report.exists():
        raise AssertionError(f"schemathesis did not run:\n{done.stdout[-3000:]}"
                             f"{done.stderr[-3000:]}")
    entries: list[dict] = json.loads(report.read_text())["log"]["entries"]
    assert entries, done.stdout[-3000:]
    return entries, done.stdout, done.returncode


def failures(entries: list[dict]) -> list[str]:
    found = []
    for entry in entries:
        status = entry["response"]["status"]
        text = entry["response"].get("content", {}).get("text", "") or ""
        if status >= 500 or "Traceback" in text or 'File "' in text:
            request = entry["request"]
            found.append(f"{status} {request['method']} {request['url']} "
                         f"{(request.get('postData') or {}).get('text', '')[:300]!r} "
                         f"-> {text[:300]!r}")
    return found


@pytest.fixture
async def h(tmp_path: Path, pki, database):
    async with running_harness(tmp_path, pki, database, extra="[oauth.google]\n") as harness:
        yield harness


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
async def test_the_admin_api_survives_fuzzing_with_every_kind_of_key(h: Harness, tmp_path):
    store = ApiKeys(h.gateway.engine)
    revoked_id, revoked = await store.create("old", "admin", None, "test")
    await store.revoke(revoked_id, "test")
    keys = {"admin": (await key(h, "admin"), EXAMPLES),
            "tenant": (await key(h, "ops", "acme"), EXAMPLES),
            "revoked": (revoked, max(EXAMPLES // 8, 3)), "missing": (None, max(EXAMPLES // 8, 3))}
    base = f"http://127.0.0.1:{h.gateway.ports.admin}"
    spec = tmp_path / "admin-openapi.json"
    async with httpx.AsyncClient() as client:
        spec.write_text((await client.get(f"{base}/api/v1/openapi.json")).text)
    found: dict[str, list[str]] = {}
    total = 0
    for name, (api_key, examples) in keys.items():
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        entries = await asyncio.to_thread(fuzz, str(spec), base, tmp_path / f"{name}.har",
                                          examples, headers)
        total += len(entries)
        found[name] = failures(entries)
    print(f"\n[fuzz admin API, {h.gateway.engine.dialect.name}] {total} requests, "
          f"{sum(len(v) for v in found.values())} with a 5xx or a traceback")
    assert total > 200
    assert found == {name: [] for name in keys}, json.dumps(found, indent=1)[:6000]


CONFORMANCE = ("status_code_conformance,content_type_conformance,"
               "response_headers_conformance,response_schema_conformance")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_admin_api_answers_are_what_its_openapi_document_declares(h: Harness, tmp_path):
    """Schemathesis' response checks: every status, content type, header and body the API
    answers is one its OpenAPI document declares for that route."""
    base = f"http://127.0.0.1:{h.gateway.ports.admin}"
    spec = tmp_path / "admin-openapi.json"
    async with httpx.AsyncClient() as client:
        spec.write_text((await client.get(f"{base}/api/v1/openapi.json")).text)
    total = 0
    for name, api_key in (("admin", await key(h, "admin")),
                          ("tenant", await key(h, "ops", "acme"))):
        entries, output, status = await asyncio.to_thread(
            run, str(spec), base, tmp_path / f"{name}.har", max(EXAMPLES // 2, 10),
            {"Authorization": f"Bearer {api_key}"}, CONFORMANCE)
        total += len(entries)
        assert status == 0, output[-8000:]
    print(f"\n[conformance, admin API] {total} requests, every answer as declared")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_public_side_survives_fuzzing(h: Harness, tmp_path):
    spec = tmp_path / "public-openapi.json"
    spec.write_text(json.dumps(openapi_document(h.gateway.web)))
    base = f"http://127.0.0.1:{h.gateway.ports.public}"
    entries = await asyncio.to_thread(fuzz, str(spec), base, tmp_path / "public.har",
                                      EXAMPLES, {})
    print(f"\n[fuzz public side] {len(entries)} requests, {len(failures(entries))} with a 5xx "
          "or a traceback")
    assert failures(entries) == []
    # the pixel path answers before the routes: hostile tokens too
    async with httpx.AsyncClient(base_url=base) as client:
        for token in ("", "A" * 5000, "%00", "..%2f..%2fetc", "\u00e9" * 10, "a/b/c"):
            response = await client.get(f"/p/{token}")
            assert response.status_code in (200, 404), (token, response.status_code)


LIST = "/api/v1/suppression-lists/acme"
BAD_INPUT = [  # (method, path, query, raw JSON body): each once gave a 5xx somewhere
    ("POST", f"{LIST}/entries", None, '{"target": "a@b.example", "expires_at": 1e20}'),
    ("POST", f"{LIST}/entries", None,
     '{"target": "a@b.example", "expires_at": 100000000000000000000}'),
    ("POST", f"{LIST}/entries", None, '{"target": "a@b.example", "expires_at": 1000000000000}'),
    ("POST", f"{LIST}/entries", None, '{"target": "a@b.example", "expires_at": NaN}'),
    ("POST", f"{LIST}/entries", None, '{"target": "a@b.example", "expires_at": -Infinity}'),
    ("POST", f"{LIST}/entries", None, '{"target": ["a@b.example"]}'),
    ("POST", f"{LIST}/check", None, '{"address": 12}'),
    ("GET", f"{LIST}/entries", {"after": str(10**30)}, None),
    ("GET", f"{LIST}/entries", {"limit": "NaN"}, None),
    ("GET", "/api/v1/tenants/acme/events", {"after": str(2**63)}, None),
    ("GET", "/api/v1/tenants/acme/opens", {"after": str(2**64)}, None),
    ("GET", "/api/v1/tenants/acme/opens", {"since": "9999-12-31T23:59:59-23:59"}, None),
    ("GET", "/api/v1/tenants/acme/opens/summary", {"until": "0001-01-01T00:00:00+14:00"}, None),
    ("POST", "/api/v1/apikeys", None, '{"role": "ops", "expires_at": "9999-12-31T23:59:59-23:59"}'),
    ("PUT", "/api/v1/mailboxes/{mailbox}/tokens", None,
     '{"refresh_token": "x", "expires_at": 1e300}'),
    ("PUT", "/api/v1/mailboxes/{mailbox}/tokens", None,
     '{"refresh_token": "x", "expires_at": "99999-01-01"}'),
]


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
async def test_out_of_range_and_wrong_types_get_422_naming_the_field(h: Harness):
    mailbox = h.gateway.directory.mailbox("sales@acme.example").public_id
    base = f"http://127.0.0.1:{h.gateway.ports.admin}"
    headers = {"Authorization": f"Bearer {await key(h, 'admin')}",
               "Content-Type": "application/json"}
    answers = []
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for method, path, query, body in BAD_INPUT:
            response = await client.request(method, path.format(mailbox=mailbox),
                                            params=query, content=body)
            answers.append((method, path, body or query, response.status_code,
                            response.json()["error"]))
    for method, path, given, status, error in answers:
        assert status in (400, 422), (method, path, given, status, error)
        assert error["code"] in ("invalid_request", "invalid_value"), error
