"""`make screenshots`: the demo's pages in headless Chromium, at desktop and phone width, as PNGs
in docs/screenshots/ (the README shows them).

    python -m bench.screenshots [--out docs/screenshots]

It starts `mailflow run --demo` on a temporary data dir and a free port, waits until the worker
has folded the demo week, signs in with the printed read key when `/` has a sign-in form
(``form.sign-in`` with an input ``key``), and saves `/`, `/docs` and the pages reachable from
`/` in up to two clicks (one page per kind of address: one connector's page, not all). It stops
everything it started, whatever happens. Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench import chromium

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
WIDTHS = {"desktop": chromium.DESKTOP, "phone": chromium.PHONE}
MAX_PAGES = 10
# Links that are not pages to show: the API, the docs (shot anyway), downloads, signing out.
NOT_PAGES = re.compile(r"^/(api/|openapi\.json|docs|readyz|healthz|metrics|static/)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(what: str, condition: Callable[[], Any], seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def _get_json(url: str, key: str = "") -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


@contextmanager
def demo_server() -> Iterator[tuple[str, str]]:
    """`mailflow run --demo` on a temp data dir and a free port: (base URL, read key). Stopped
    (SIGTERM: it stops its API, worker and Redis in order) and its data dir removed on exit."""
    with tempfile.TemporaryDirectory(prefix="mailflow-screenshots-") as data_dir:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(data_dir) / "run.log"
        env = {**os.environ, "MAILFLOW_DATA_DIR": str(Path(data_dir) / "data")}
        env.pop("MAILFLOW_REDIS_URL", None)  # the embedded Redis, never a real one
        with log_path.open("w") as log:
            run = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "run", "--demo", "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        try:

            def read_key() -> str | None:
                if run.poll() is not None:
                    raise RuntimeError(f"mailflow run exited:\n{log_path.read_text()}")
                found = re.search(r"read key:\s+(\S+)", log_path.read_text())
                return found.group(1) if found else None

            key = _until("the demo's read key", read_key)
            _until("/readyz", lambda: _get_json(base + "/readyz") is not None)
            counts: list[int] = []
            _until("the demo week folded", lambda: _folded(base, key, counts))
            yield base, key
        finally:
            run.send_signal(signal.SIGTERM)
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)  # its own session: the children too
                run.wait()


def _folded(base: str, key: str, seen: list[int]) -> bool:
    """True once the snapshot counts inbound mail and the count held still since the last poll
    (``seen``: the counts so far)."""
    snapshot = _get_json(base + "/api/v1/mailflow/snapshot", key) or {}
    inbound = snapshot.get("directions", {}).get("inbound", {}).get("messages", 0)
    seen.append(inbound)
    return inbound > 0 and len(seen) >= 2 and seen[-1] == seen[-2]


def sign_in(driver: Any, base: str, key: str) -> bool:
    """Submit the read key through `/`'s sign-in form, if the page has one."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    forms = driver.find_elements(By.CSS_SELECTOR, "form.sign-in")
    if not forms:
        return False
    forms[0].find_element(By.NAME, "key").send_keys(key)
    forms[0].submit()
    _until("signing in", lambda: not driver.find_elements(By.CSS_SELECTOR, "form.sign-in"), 15)
    return True


def _page_links(driver: Any, base: str) -> list[str]:
    """Same-origin page paths linked from the current page (no downloads, no API, no docs)."""
    hrefs = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]:not([download]):not(.export-csv)'))"
        ".map(a => a.href);"
    )
    paths = []
    for href in hrefs:
        parts = urlsplit(href)
        if chromium.same_origin(href, base) and parts.scheme.startswith("http"):
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if not NOT_PAGES.match(parts.path) and path not in paths:
                paths.append(path)
    return paths


def _kind(path: str) -> tuple[str, int]:
    """Pages of one kind share a first segment and a depth: one connector's page stands for all."""
    segments = [s for s in urlsplit(path).path.split("/") if s]
    return (segments[0] if segments else "", len(segments))


def dashboard_pages(driver: Any, base: str) -> list[str]:
    """`/` and the pages reachable from it in up to two clicks, one per kind."""
    pages, kinds = ["/"], {_kind("/")}
    frontier = ["/"]
    for _ in range(2):
        following = []
        for page in frontier:
            driver.get(base + page)
            for path in _page_links(driver, base):
                if _kind(path) not in kinds and len(pages) < MAX_PAGES:
                    kinds.add(_kind(path))
                    pages.append(path)
                    following.append(path)
        frontier = following
    return pages


def _name(path: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", unquote(urlsplit(path).path).lower()).strip("-")
    return slug or "home"


def _settle(driver: Any, path: str) -> bool:
    """Wait for the page to be drawn; False when it is not an HTML page (``/`` is a 404
    problem+json until the dashboard exists): nothing to show."""
    from selenium.webdriver.common.by import By

    _until("the page to load",
           lambda: driver.execute_script("return document.readyState") == "complete", 20)  # fmt: skip
    status, kind = driver.execute_script(
        "return [performance.getEntriesByType('navigation')[0].responseStatus,"
        " document.contentType];"
    )
    if status != 200 or kind != "text/html":
        return False
    if path == "/docs":
        _until("Swagger UI", lambda: driver.find_elements(By.CSS_SELECTOR, ".opblock"), 20)
    return True


def shoot(out: Path) -> list[Path]:
    saved: list[Path] = []
    with demo_server() as (base, key), chromium.chromium() as driver:
        signed_in = sign_in(driver, base, key)
        print(f"demo on {base}; {'signed in' if signed_in else 'no sign-in form on /'}")
        pages = [*dashboard_pages(driver, base), "/docs"]
        for path in pages:
            for label, (width, height) in WIDTHS.items():
                chromium.set_viewport(driver, width, height)
                driver.get(base + path)
                if not _settle(driver, path):
                    print(f"{path}: not an HTML page, skipped")
                    break
                target = out / f"{_name(path)}-{label}.png"
                chromium.save_page(driver, target)
                saved.append(target)
                print(f"{path} at {width} px -> {target}")
        errors = chromium.console_errors(driver)
        if errors:
            print("console errors:", *errors, sep="\n  ", file=sys.stderr)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    reason = chromium.missing()
    if reason is not None:
        sys.exit(reason)
    shoot(args.out)


if __name__ == "__main__":
    main()
