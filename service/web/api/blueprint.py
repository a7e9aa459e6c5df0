"""The Blueprint every API module uses: unknown query parameters are errors, not ignored, and
JSON bodies are read with the limits of ``service.web.api.body``."""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import request
from webargs.flaskparser import FlaskParser


class StrictParser(FlaskParser):
    # None defers to each schema's Meta.unknown, which StrictSchema sets to RAISE: a misspelt
    # filter (?directon=inbound) must be a 422, not a silently unfiltered report.
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION)

    def __init__(self) -> None:
        super().__init__()
        self._empty_query: dict[int, Any] = {}

    def _raw_load_json(self, req: Any) -> Any:
        # Not webargs' own reading (no size limit, a form taken as "no data", a parser that
        # recurses): 415, 413 and 400 problems as on POST /traces.
        from service.web.api.body import read_json_object

        return read_json_object(req)

    def parse(
        self, argmap: Any, req: Any = None, *, location: str | None = None, **kwargs: Any
    ) -> Any:
        # Most report requests carry no query string (a dashboard polling the defaults); their
        # parsed arguments never change, so load them once per schema instead of per request.
        if location != "query" or request.query_string:
            return super().parse(argmap, req, location=location, **kwargs)
        cached = self._empty_query.get(id(argmap))
        if cached is None:
            cached = super().parse(argmap, req, location=location, **kwargs)
            self._empty_query[id(argmap)] = cached
        return dict(cached)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def problem(self, status: int, description: str):  # type: ignore[no-untyped-def]
        """Document an error response of this operation as problem+json."""
        from service.web.api.schemas import ProblemSchema
        from service.web.errors import PROBLEM_JSON

        return self.alt_response(
            status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description
        )
