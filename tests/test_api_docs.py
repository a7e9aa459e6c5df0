"""/docs is Swagger UI served by the app itself: every file from this origin, pinned, under a
Content-Security-Policy without inline scripts. (tests/browser/ renders it in Chromium.)"""

from __future__ import annotations

import re

from service.web.api_docs import SWAGGER_UI_VERSION


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href|data-spec-url)="([^"]*)"', html)


def test_docs_load_every_file_from_the_app(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    links = _links(html)
    assert "/openapi.json" in links and len(links) >= 5
    for link in links:
        assert link.startswith("/") and not link.startswith("//"), link
        served = client.get(link)
        assert served.status_code == 200, link
        served.close()
    assert "<script>" not in html and "<style" not in html
    assert re.search(r"\son\w+=", html) is None  # no inline event handler either


def test_docs_forbid_inline_scripts_other_origins_and_framing(client):
    policy = client.get("/docs").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def test_the_swagger_ui_files_are_pinned_and_cached_for_good(client):
    assert re.fullmatch(r"5\.\d+\.\d+", SWAGGER_UI_VERSION)  # 5.x reads OpenAPI 3.1
    url = f"/docs/swagger-ui/{SWAGGER_UI_VERSION}/swagger-ui-bundle.js"
    bundle = client.get(url)
    assert bundle.status_code == 200 and bundle.mimetype == "text/javascript"
    assert "immutable" in bundle.headers["Cache-Control"]
    bundle.close()
    initializer = client.get("/docs/assets/swagger-initializer.js")
    assert initializer.headers["Cache-Control"] == "no-cache" and initializer.headers["ETag"]
    initializer.close()


def test_only_the_named_files_are_served(client):
    for url in (
        "/docs/swagger-ui/0.0.1/swagger-ui-bundle.js",
        f"/docs/swagger-ui/{SWAGGER_UI_VERSION}/VERSION",
        f"/docs/swagger-ui/{SWAGGER_UI_VERSION}/index.css",
        "/docs/assets/../api_docs.py",
        "/docs/assets/api_docs.py",
    ):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert answer.mimetype == "application/problem+json", url
