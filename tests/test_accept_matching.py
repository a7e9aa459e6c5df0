"""One decision for JSON or CSV on every lane: media types compared case-insensitively, with
wildcards and q-values, by the cached-read lane and the Flask view alike."""

from __future__ import annotations

import pytest

from service.app import create_app

ACCEPT_VALUES = {
    "text/csv": True, "Text/Csv": True, "TEXT/CSV": True, "text/*": True, "TEXT/*": True,
    "text/csv;q=0.9, application/json;q=0.5": True, "application/json, text/csv": False,
    "text/csv, application/json": False,  # a tie: JSON, the default, wins
    "text/csv;q=0": False, "text/csv;q=0.4, application/json;q=0.5": False,
    "application/json;q=0.1, text/*;q=0.2": True, "*/*": False, "": False,
    "application/json": False, "Application/JSON": False, "image/png": False,
    "text/html, */*;q=0.8": False, "text/html, text/csv;q=0.8, */*;q=0.1": True,
    "text/csv ;Q=0.000": False, "garbage;;;,": False,
}  # fmt: skip


@pytest.mark.parametrize("accept, csv", sorted(ACCEPT_VALUES.items()))
def test_prefers_csv(accept, csv):
    from service.web.media_types import prefers_csv

    assert prefers_csv(accept) is csv


@pytest.fixture
def lanes(redis_server, clock, closing, make_key):
    config = {"redis_url": redis_server.url, "CLOCK": clock}
    lane = closing(create_app(config))
    full = closing(create_app({**config, "cached_reads": False}))
    return lane, full, {"Authorization": f"Bearer {make_key('default')}"}


def test_both_lanes_decide_identically(lanes):
    lane, full, auth = lanes
    for accept, csv in ACCEPT_VALUES.items():
        answers = []
        for app in (lane, full):
            response = app.test_client().get(
                "/api/v1/connectors", headers={**auth, "Accept": accept}
            )
            assert response.status_code == 200, (accept, response.data[:200])
            answers.append(response.mimetype)
            response.close()  # a CSV answer streams: end it
        assert answers == ["text/csv" if csv else "application/json"] * 2, accept
