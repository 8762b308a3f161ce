"""docs/api.md, generated from the admin API's own OpenAPI document and the CLI parity
table: `make docs` (or `python -m gateway.web.api.reference > docs/api.md`) writes it, and
a test keeps the file equal to what this prints."""

from __future__ import annotations

from typing import Any

from gateway.web.admin import openapi_document
from gateway.web.api.parity import HOST_ONLY, ROUTES

INTRO = """\
# Admin API

Generated from the API's OpenAPI document and `gateway/web/api/parity.py` by `make docs`;
do not edit by hand.

The admin listener serves a JSON API under `/api/v1/`. Its OpenAPI document is at
`/api/v1/openapi.json` and a browsable reference at `/api/v1/reference` (served from the
gateway itself: no script or style comes from another site). `GET /api/v1/` (no key
needed) names the entry points.

**Keys.** Every route needs `Authorization: Bearer <key>`, a key from `gateway apikey add`
or `POST /api/v1/apikeys`. A key holds one role: `ops` (tenants, domains, logins,
mailboxes, webhooks, the queue, suppression lists), `compliance` (held messages' bodies and
decisions, opt-out reviews, data subjects, legal holds) or `admin` (both, and deleting a
tenant). Reading the review queue and trace is open to `ops` and `compliance`.

**Tenants.** A key bound to a tenant sees that tenant only: another tenant's object is a
`404`, as if absent, and lists leave it out. Adding, suspending, resuming or deleting a
tenant and its legal hold are the operator's, so a bound key gets `403` there. Where a
request names no `tenant`, a bound key's own is meant.

**Errors** are JSON, `{"error": {"code": ..., "message": ...}}`, with the status the OpenAPI
document declares for each route (`401` no or bad key, `403` role or binding, `404`, `409`
state conflict, `422` invalid input naming the field, `503` a store or the vault is down).
Nothing that names a person travels in a URL: addresses go in bodies.

**Audit.** Every change, and every read of personal data (a held message's subject,
recipients or body, a reply's words, a data subject's export), is an audit row under the
key's id (`apikey:<id>`).

"""


def _routes(spec: dict[str, Any]) -> list[str]:
    out = ["## Routes\n\n", "| method | path | what it does |\n|---|---|---|\n"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            what = (operation.get("description") or operation.get("summary") or "")
            what = what.strip().split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
            out.append(f"| {method.upper()} | `{path}` | {what} |\n")
    return out


def _parity() -> list[str]:
    out = ["\n## The CLI and the API\n\n",
           "Everything the CLI can change, the API can change, except what belongs to the "
           "host. A test holds every command to one row here.\n\n",
           "| command | route |\n|---|---|\n"]
    for command, routes in sorted(ROUTES.items()):
        shown = "<br>".join(f"`{r}`" for r in routes)
        out.append(f"| `gateway {command}` | {shown} |\n")
    out += ["\n### Host only\n\n", "| command | why it stays on the host |\n|---|---|\n"]
    for command, why in sorted(HOST_ONLY.items()):
        out.append(f"| `gateway {command}` | {why} |\n")
    return out


def markdown() -> str:
    return "".join([INTRO, *_routes(openapi_document()), *_parity()])


if __name__ == "__main__":
    print(markdown(), end="")
