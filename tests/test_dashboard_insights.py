"""The dashboard's insight lists past the feed's first page: every active insight, the newest
resolved ones, and a connector's insights wherever they are in the feed.

The feed is read by rising sequence, so its first page holds the OLDEST insights; the lists used
to show that page only. Insights are made here by the store's own ``apply_findings`` (what the
worker calls), so a few hundred take a moment.
"""

from __future__ import annotations

import re

from service.core.connectors import ConnectorDefinition
from service.store import connectors_store
from tests.html_cells import Page, number, sign_in
from tests.test_insights_bounded import Evaluations


def _page(browser, path: str) -> Page:
    answer = browser.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.data[:300])
    return Page(answer.get_data(as_text=True))


def _connectors(html: Page, within: str) -> list[str]:
    return html.texts("a", "insight-connector", within=within)


def _every_active(browser) -> list[str]:
    """The connectors of the active insights on every page of /insights (by its page links)."""
    pages = [a["href"] for a in _page(browser, "/insights").elements("a", "insight-page")]
    return [name for path in pages or ["/insights"]
            for name in _connectors(_page(browser, path), "active-insights")]  # fmt: skip


def _feed(api, state: str) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {"state": state, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/insights", query_string=query).json
        items += body["items"]
        if not body["has_more"]:
            return items
        cursor = body["next_cursor"]


def test_the_lists_show_every_active_and_the_newest_resolved_insights(
    app, client, clock, redis_client, make_key
):
    evaluations = Evaluations(redis_client, clock)
    evaluations.apply([f"Old {n:03d}" for n in range(150)])
    reader = sign_in(app, make_key("default", "read"))

    html = _page(reader, "/insights")
    assert number(html.texts("span", "count", within="active-insights")[0]) == 150
    assert len(_every_active(reader)) == 150

    # Later evaluations hold fewer conditions: 50 old ones are resolved a minute, then 50 more,
    # then the last 50 as one new condition is held.
    for kept in ([f"Old {n:03d}" for n in range(50, 150)],
                 [f"Old {n:03d}" for n in range(100, 150)], ["Partner X"]):  # fmt: skip
        clock.advance(minutes=1)
        evaluations.apply(kept)
    resolved = _feed(client, "resolved")
    assert len(resolved) == 150
    html = _page(reader, "/insights")
    shown = _connectors(html, "resolved-insights")
    assert len(shown) == len(set(shown)) == 20
    assert set(shown) <= {f"Old {n:03d}" for n in range(100, 150)}  # the last ones resolved
    assert number(html.texts("span", "count", within="resolved-insights")[0]) == 150
    assert re.search(r"130\s+older resolved insights", html.html)

    # The new insight comes after 300 transitions in the feed: still on its connector's page.
    connectors_store.put_definition(redis_client, "default", "inbound", "Partner X",
                                    ConnectorDefinition("partner"))  # fmt: skip
    html = _page(reader, "/connectors/inbound/Partner%20X")
    assert _connectors(html, "insight-list") == ["Partner X"]


def _weight(browser, answer) -> int:
    """The page's HTML with the stylesheet, script and icon it loads."""
    weight = len(answer.data)
    for ref in set(re.findall(r'(?:href|src)="(/assets/[^"?]+)', answer.get_data(as_text=True))):
        with browser.get(ref) as asset:
            weight += len(asset.data)
    return weight


def test_hundreds_of_active_insights_are_paged_within_two_clicks_of_the_widget(
    app, client, clock, redis_client, make_key, run_worker
):
    client.post("/api/v1/traces", json=[{"id": "t-1", "timestamp": clock.now.isoformat(),
                                          "direction": "inbound", "tls_version": "TLS1.2"}])  # fmt: skip
    run_worker()  # mail: the widget shows its cards and the insights link
    evaluations = Evaluations(redis_client, clock)
    # Names of the longest a connector may have (128 characters), with spaces to escape.
    names = [(f"Partner {n:03d} " + "relay " * 30)[:128] for n in range(400)]
    evaluations.apply(names)
    clock.advance(minutes=1)
    evaluations.apply(names[100:])  # 300 active, the newest 100 resolved
    active = [i["connector"]["name"] for i in _feed(client, "active")]
    assert len(active) == 300
    reader = sign_in(app, make_key("default", "read"))

    # One click: the widget's count of active insights leads to the first page.
    (link,) = _page(reader, "/").elements("a", "insights-link")
    first = _page(reader, link["href"])
    assert number(first.texts("span", "count", within="active-insights")[0]) == 300
    assert len(_connectors(first, "resolved-insights")) == 20  # the newest, on page 1 only
    # The second click: the first page links to every page.
    pages = [a["href"] for a in first.elements("a", "insight-page")]
    assert len(pages) == 8 and pages[0] == "/insights"
    shown = []
    for path in pages:
        answer = reader.get(path)
        assert answer.status_code == 200
        assert _weight(reader, answer) < 150 * 1024, (path, _weight(reader, answer))
        html = Page(answer.get_data(as_text=True))
        assert [a["href"] for a in html.elements("a", "insight-page")] == pages
        on_page = _connectors(html, "active-insights")
        assert len(on_page) == (40 if path != pages[-1] else 20)
        assert len(html.texts("h3", "insight-title", within="active-insights")) == len(on_page)
        shown += on_page
        if path != "/insights":
            assert not _connectors(html, "resolved-insights")
    assert shown == active  # each once, in the feed's order

    # Next and previous walk the same pages.
    walked, path = [], "/insights"
    while path:
        html = _page(reader, path)
        walked.append(path)
        following = html.elements("a", "next-page")
        path = following[0]["href"] if following else None
    assert walked == pages
    assert _page(reader, pages[3]).elements("a", "prev-page")[0]["href"] == pages[2]

    # The connector report shows the first few at its top, and leads to them all.
    answer = reader.get("/connectors")
    assert _weight(reader, answer) < 150 * 1024
    html = Page(answer.get_data(as_text=True))
    assert _connectors(html, "connector-insights") == active[:5]
    assert html.elements("a", "all-insights")[0]["href"] == "/insights"

    # A page past the last (insights resolved since) leads to the last; a bad one is refused.
    past = reader.get("/insights?page=12")
    assert past.status_code == 303 and past.headers["Location"] == pages[-1]
    for bad in ("0", "-1", "x", "1" * 20, "\u00b2", "\u0661"):  # superscript 2, Arabic 1
        assert reader.get(f"/insights?page={bad}").status_code == 422
