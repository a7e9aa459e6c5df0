"""``/docs``: the API reference, Swagger UI served by the app itself.

Nothing is fetched from outside, so the page works offline: the Swagger UI files come from the
pinned ``flask-swagger-ui`` package (its ``dist/`` is swagger-ui-dist, 5.x reads OpenAPI 3.1),
and the spec from ``/openapi.json``. The page carries its own Content-Security-Policy: no
inline script (the initializer is ``api_docs_assets/swagger-initializer.js``), every request to
this origin only, and no framing.

We serve the files with our own two routes rather than that package's blueprint, whose page
configures Swagger UI in an inline script.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, abort, render_template_string, send_file, url_for

SWAGGER_UI_DIST = Path(str(files("flask_swagger_ui") / "dist"))
SWAGGER_UI_VERSION = (SWAGGER_UI_DIST / "VERSION").read_text().strip().lstrip("v")
OWN_ASSETS = Path(__file__).resolve().parent / "api_docs_assets"

# The only files served; BaseLayout needs no standalone preset (that one draws the top bar).
SWAGGER_UI_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
OWN_FILES = frozenset({"swagger-initializer.js", "api-docs.css"})

# Swagger UI's stylesheet draws some icons as data: images; its React code sets styles through
# the DOM, which style-src does not restrict.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
ONE_YEAR = 365 * 24 * 3600

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>mailflow API reference</title>
  <link rel="icon" type="image/png" href="{{ asset('favicon-32x32.png') }}">
  <link rel="stylesheet" href="{{ asset('swagger-ui.css') }}">
  <link rel="stylesheet" href="{{ url_for('api_docs.own_asset', name='api-docs.css') }}">
</head>
<body>
  <main id="swagger-ui" data-spec-url="{{ spec_url }}"></main>
  <script src="{{ asset('swagger-ui-bundle.js') }}"></script>
  <script src="{{ url_for('api_docs.own_asset', name='swagger-initializer.js') }}"></script>
</body>
</html>
"""

blp = Blueprint("api_docs", __name__)


def _swagger_ui_asset(name: str) -> str:
    return url_for("api_docs.swagger_ui_asset", version=SWAGGER_UI_VERSION, name=name)


@blp.after_request
def _page_policy(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


@blp.get("/docs")
def page() -> Response:
    html = render_template_string(PAGE, asset=_swagger_ui_asset,
                                  spec_url=url_for("api-docs.openapi_json"))  # fmt: skip
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("/docs/swagger-ui/<version>/<name>")
def swagger_ui_asset(version: str, name: str) -> Response:
    """The vendored files, under their version: cached for good, a new version is a new URL."""
    if version != SWAGGER_UI_VERSION or name not in SWAGGER_UI_FILES:
        abort(404)
    response = send_file(SWAGGER_UI_DIST / name, max_age=ONE_YEAR)
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response


@blp.get("/docs/assets/<name>")
def own_asset(name: str) -> Response:
    """Our own small files: revalidated (ETag) on each load, as they change with the code."""
    if name not in OWN_FILES:
        abort(404)
    response = send_file(OWN_ASSETS / name, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
