"""The dashboard shows the transport security the API reports: the class split on the widget
and the flyout, the new columns of the connector report."""

from __future__ import annotations

from tests.helpers import post_batches
from tests.html_cells import Page, number, percent, sign_in
from tests.security_traces import make_security_traces

CLASSES = ("dane", "mta-sts", "authenticated", "encrypted", "none")


def _page(browser, path: str) -> Page:
    answer = browser.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    return Page(answer.get_data(as_text=True))


def test_widget_flyout_and_connector_report_show_the_api_numbers(
    app, client, clock, run_worker, make_key
):
    traces, _, _ = make_security_traces(600, clock.now, seed=31)
    post_batches(client, traces)
    run_worker()
    browser = sign_in(app, make_key("default", "read"))
    snapshot = client.get("/api/v1/mailflow/snapshot").json
    for path in ("/", "/tls"):
        html = _page(browser, path)
        for direction in ("inbound", "outbound"):
            expected = snapshot["directions"][direction]["security"]
            table = "legend security-split"
            shown = {
                klass: number(html.texts("td", "security-messages",
                                         within=f"security-{klass}")[index])
                for klass in CLASSES
                for index in [("inbound", "outbound").index(direction)]
            }  # fmt: skip
            assert shown == {k: expected["classes"][k]["messages"] for k in CLASSES}, path
            assert (
                percent(
                    html.texts("span", "authenticated-percent", within=table)[
                        ("inbound", "outbound").index(direction)
                    ]
                )
                == expected["authenticated_percent"]
            )
    rows = client.get("/api/v1/connectors?sort=-blocked").json["rows"]
    html = _page(browser, "/connectors?sort=-blocked")
    assert [number(t) for t in html.texts("td", "blocked")] == [r["blocked"] for r in rows]
    assert [percent(t) for t in html.texts("td", "dane_percent")] == [
        r["dane_percent"] for r in rows
    ]
