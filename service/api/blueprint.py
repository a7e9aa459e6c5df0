"""The Blueprint every API module uses: unknown query parameters are errors, not ignored."""

from __future__ import annotations

import flask_smorest
from webargs.flaskparser import FlaskParser


class StrictParser(FlaskParser):
    # None defers to each schema's Meta.unknown, which StrictSchema sets to RAISE: a misspelt
    # filter (?directon=inbound) must be a 422, not a silently unfiltered report.
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()
