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

    def problem(self, status: int, description: str):  # type: ignore[no-untyped-def]
        """Document an error response of this operation as problem+json."""
        from service.api.schemas import ProblemSchema
        from service.errors import PROBLEM_JSON

        return self.alt_response(
            status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description
        )
