"""A batch the all-valid path declines is taken in parts (web/api/partitioned_batch.py): its
result is the exact path's over the whole body, record for record, errors and indexes included;
and only the doubtful records go the exact path."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.traces import AcceptedBatch
from service.web.api.partitioned_batch import accept_partitioned
from service.web.api.traces import _accept_each
from service.web.errors import Problem
from tests.test_batch_fast_path_property import DEFINED, VALID, encode
from tests.test_fast_path_property import WINDOW, records

MAX_RECORDS = 80
JSON, NDJSON = "application/json", "application/x-ndjson"
# Mostly valid records (a valid one repeated, ids made unique or not), some of anything.
valid_records = st.sampled_from(VALID).map(dict)
batches = st.lists(st.one_of(valid_records, valid_records, valid_records, records),
                   min_size=1, max_size=MAX_RECORDS + 2)  # fmt: skip


def exact(
    body: bytes, kind: str, defined, max_records: int = MAX_RECORDS
) -> tuple[AcceptedBatch, list[int], list] | Problem:
    errors: list[dict[str, object]] = []
    try:
        batch, indexes = _accept_each(body, kind, max_records, WINDOW, defined, errors)
    except Problem as problem:
        return problem
    return batch, indexes, errors


def partitioned(body: bytes, kind: str, defined, seen: list | None = None, max_records=MAX_RECORDS):
    errors: list[dict[str, object]] = []

    def exact_part(*args):
        if seen is not None:
            seen.append(args[0])
        return _accept_each(*args)

    result = accept_partitioned(body, kind, kind == NDJSON, max_records, WINDOW, defined, errors,
                                exact_part)  # fmt: skip
    return None if result is None else (*result, errors)


def _unique_ids(batch: list[dict], unique: bool) -> list[dict]:
    if not unique:
        return batch  # repeated ids: the first of them counts, on every path
    return [{**r, "id": f"{r.get('id')}-{n}"} if isinstance(r, dict) and "id" in r else r
            for n, r in enumerate(batch)]  # fmt: skip


@settings(max_examples=600, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
@given(
    batch=batches,
    style=st.sampled_from(["array", "ndjson", "spaced", "wrapped"]),
    ensure_ascii=st.booleans(),
    defined=st.sampled_from([{}, DEFINED]),
    unique=st.booleans(),
)
def test_the_parts_give_what_the_exact_path_gives(batch, style, ensure_ascii, defined, unique):
    body = encode(_unique_ids(batch, unique), style, ensure_ascii)
    kind = NDJSON if style == "ndjson" else JSON
    whole = exact(body, kind, defined)
    parts = partitioned(body, kind, defined)
    if style == "wrapped" or isinstance(whole, Problem) or len(batch) > MAX_RECORDS:
        assert parts is None  # the exact path answers these as a whole
    else:
        assert parts == whole, body


def test_only_the_doubtful_records_go_the_exact_path():
    # 200 valid records and three doubtful ones: an escaped id (set aside at once), a time
    # outside the window and an unknown field (found by cutting the rest in parts).
    batch = [{**VALID[n % 2], "id": f"t{n}"} for n in range(200)]
    batch[7]["id"] = 'quote"d'
    batch[90]["timestamp"] = "2020-01-01T00:00:00Z"
    batch[150]["colour"] = "blue"
    for kind, body in ((JSON, orjson.dumps(batch)),
                       (NDJSON, b"\n".join(orjson.dumps(r) for r in batch))):  # fmt: skip
        seen: list[bytes] = []
        result = partitioned(body, kind, DEFINED, seen, max_records=500)
        assert result is not None
        accepted, indexes, errors = result
        first = 1 if kind == NDJSON else 0
        assert indexes == [first + n for n in range(200) if n not in (90, 150)]
        assert [e["index"] for e in errors] == [first + 90, first + 150]
        assert len(accepted) == 198
        # The exact path saw one small body holding the three, among at most a few others.
        assert len(seen) == 1 and b'quote\\"d' in seen[0] and b"colour" in seen[0]
        assert len(seen[0]) < len(body) / 4
        assert result == exact(body, kind, DEFINED, max_records=500)


def test_a_body_refused_whole_is_left_to_the_exact_path():
    deep = b"[" + orjson.dumps(VALID[0]) + b',{"id":' + b"[" * 70 + b"]" * 70 + b"}]"
    for body in (deep, b'{"traces": [' + orjson.dumps(VALID[0]) + b"]}", b"[1, 2"):
        assert partitioned(body, JSON, {}) is None
