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
    assert len(_connectors(html, "active-insights")) == 150

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
    assert shown[:50] == [i["connector"]["name"] for i in reversed(resolved)][:50]
    assert set(shown[:50]) == {f"Old {n:03d}" for n in range(100, 150)}
    assert set(shown[50:]) == {f"Old {n:03d}" for n in range(50, 100)}
    assert number(html.texts("span", "count", within="resolved-insights")[0]) == 150
    assert re.search(r"50\s+older resolved insights", html.html)

    # The new insight comes after 300 transitions in the feed: still on its connector's page.
    connectors_store.put_definition(redis_client, "default", "inbound", "Partner X",
                                    ConnectorDefinition("partner"))  # fmt: skip
    html = _page(reader, "/connectors/inbound/Partner%20X")
    assert _connectors(html, "insight-list") == ["Partner X"]
