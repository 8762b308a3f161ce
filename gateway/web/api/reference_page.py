"""The admin API's browsable reference at /api/v1/reference: Swagger UI 5 (it reads
OpenAPI 3.1, which FastAPI writes) from the `swagger-ui-py` package on PyPI, served by the
admin listener itself. The page's
policy lets it load scripts and styles from this origin only, so no asset comes from a CDN
and no key typed into "Authorize" leaves for another site."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from gateway.errors import NotFound

router = APIRouter(prefix="/api/v1/reference", include_in_schema=False)

HERE = Path(__file__).parent / "static"
BUNDLE = Path(swagger_ui.__file__).parent / "static"
# only these files: nothing else of the bundle (or of the disk) is reachable
ASSETS = {"swagger-ui-bundle.js": BUNDLE / "swagger-ui-bundle.js",
          "swagger-ui.css": BUNDLE / "swagger-ui.css",
          "reference.js": HERE / "reference.js"}
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
          "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Admin API reference: Outreach Compliance Gateway</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/api/v1/reference/swagger-ui.css">
</head>
<body>
<main id="reference" aria-label="Admin API reference"></main>
<noscript><p>This page needs JavaScript; the same reference is the OpenAPI document at
<a href="/api/v1/openapi.json">/api/v1/openapi.json</a> and docs/api.md.</p></noscript>
<script src="/api/v1/reference/swagger-ui-bundle.js"></script>
<script src="/api/v1/reference/reference.js"></script>
</body>
</html>
"""


@router.get("")
async def page() -> Response:
    return HTMLResponse(PAGE, headers={**HEADERS, "Cache-Control": "no-cache"})


@router.get("/{name}")
async def asset(name: str) -> Response:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound("No such file.")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(path, media_type=media,
                        headers={**HEADERS, "Cache-Control": "public, max-age=3600"})
