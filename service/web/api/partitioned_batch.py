"""A batch the all-valid path declines, taken in parts: the doubtful records alone go the exact
path.

One record with a backslash, one repeated field or one bad timestamp used to send a whole batch
of 5,000 down the per-record path (``normalize_trace``), several times the cost of the batch
path. Here the records are cut apart at C speed (msgspec, as raw JSON; NDJSON by line); those
holding a backslash or a DEL, which the batch path never takes, go aside at once, and the rest
go through the batch path (``core.trace_batch.accept_valid_batch``) in eighths, and eighths of
the refused eighths, until the doubtful ones are found among few (bounded: MAX_REFUSED). Those
few go the exact path, as a body of their own, and every accepted trace is put back in its
record's place: the batch path only takes records the exact path accepts and gives them the
same columns (a property test holds it to that), so the result is the exact path's, record for
record, errors included.

Whatever is not plain (not an array of records, more records than allowed, a body the exact
path refuses as a whole) is left to the exact path over the whole body, which answers it as
before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec

from service.core.trace_batch import accept_valid_batch
from service.core.traces import AcceptedBatch, IngestWindow
from service.web.errors import Problem

# Parts this small that the batch path refuses go the exact path whole.
SMALLEST_PART = 16
# A refused part is cut in this many: one doubtful record among 5,000 is found in three steps,
# each looking again at an eighth of the records before it.
PARTS = 8
# Records the batch path may refuse, in all, as a multiple of the batch's (one doubtful record
# among 5,000 takes about 1.2); past that the rest go the exact path, so a batch of mostly bad
# records costs at most that much more than the exact path alone.
MAX_REFUSED = 2

Record = tuple[int, bytes]  # (the record's index as the exact path numbers it, its JSON)
AcceptEach = Callable[
    [bytes, str, int, IngestWindow, Mapping[tuple[str, str], str], list[dict[str, object]]],
    tuple[AcceptedBatch, list[int]],
]
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


def accept_partitioned(
    body: bytes,
    kind: str,
    ndjson: bool,
    max_records: int,
    window: IngestWindow,
    defined: Mapping[tuple[str, str], str],
    errors: list[dict[str, object]],
    accept_each: AcceptEach,
) -> tuple[AcceptedBatch, list[int]] | None:
    """What ``accept_each`` (the exact path) gives for ``body``, found mostly by the batch path;
    None when the body is for the exact path as a whole."""
    records = _records(body, ndjson)
    if not records or len(records) > max_records:
        return None
    aside = [r for r in records if b"\\" in r[1] or b"\x7f" in r[1]]
    clean = [r for r in records if not (b"\\" in r[1] or b"\x7f" in r[1])] if aside else records
    # Nothing set aside: the batch path refused these very records already, so cut them first.
    taken, doubtful = _batch_path_parts(clean, ndjson, max_records, window, defined,
                                        refused=not aside)  # fmt: skip
    doubtful = sorted(aside + doubtful)
    found: list[dict[str, object]] = []
    if doubtful:
        try:
            exact, positions = accept_each(_body(doubtful, ndjson), kind, max_records, window,
                                           defined, found)  # fmt: skip
        except Problem:
            return None  # refused whole: the whole body answers that, as it always did
        number = [index for index, _ in doubtful]
        for error in found:
            error["index"] = number[_position(error["index"], ndjson)]
        taken.append(([number[_position(p, ndjson)] for p in positions], exact))
    errors.extend(found)
    return _in_record_order(taken)


def _records(body: bytes, ndjson: bool) -> list[Record] | None:
    """Each record's index and JSON; None unless the body is plainly a list of records."""
    if ndjson:
        lines = body.split(b"\n")
        return [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not body.lstrip().startswith(b"["):
        return None  # {"traces": [...]} and anything else: the exact path
    try:
        raw = _RAW_ARRAY.decode(body)
    except Exception:  # noqa: BLE001 - whatever msgspec refuses (too deep, not JSON ...), the
        # exact path answers for the whole body
        return None
    return [(index, bytes(record)) for index, record in enumerate(raw)]


def _body(records: Sequence[Record], ndjson: bool) -> bytes:
    if ndjson:
        return b"\n".join(record for _, record in records)
    return b"[" + b",".join(record for _, record in records) + b"]"


def _position(index: object, ndjson: bool) -> int:
    """The position in a part's body of the record the exact path numbered ``index``."""
    assert isinstance(index, int)
    return index - 1 if ndjson else index


def _batch_path_parts(
    records: list[Record],
    ndjson: bool,
    max_records: int,
    window: IngestWindow,
    defined: Mapping[tuple[str, str], str],
    refused: bool,
) -> tuple[list[tuple[list[int], AcceptedBatch]], list[Record]]:
    """The parts the batch path takes (their records' indexes, their columns), and the records
    left doubtful. ``refused``: the batch path refused ``records`` as a whole already."""
    taken: list[tuple[list[int], AcceptedBatch]] = []
    doubtful: list[Record] = []
    pending = _cut(records) if refused and len(records) > SMALLEST_PART else [records]
    budget = MAX_REFUSED * len(records)
    while pending:
        part = pending.pop()
        if not part:
            continue
        if budget <= 0:
            doubtful += part
            continue
        batch = accept_valid_batch(_body(part, ndjson), ndjson, max_records, window, defined)
        if batch is not None:
            taken.append(([index for index, _ in part], batch))
            continue
        budget -= len(part)
        if len(part) <= SMALLEST_PART:
            doubtful += part
        else:
            pending += _cut(part)
    return taken, doubtful


def _cut(part: list[Record]) -> list[list[Record]]:
    """``part`` in PARTS parts of nearly equal size, the last first (they are popped)."""
    size = -(-len(part) // PARTS)
    return [part[at : at + size] for at in range(0, len(part), size)][::-1]


def _in_record_order(
    parts: list[tuple[list[int], AcceptedBatch]],
) -> tuple[AcceptedBatch, list[int]]:
    """The parts' traces as one batch in record order, and each one's record index."""
    indexes = [index for part_indexes, _ in parts for index in part_indexes]
    joined = AcceptedBatch(
        [day for _, batch in parts for day in batch.days],
        [digest for _, batch in parts for digest in batch.digests],
        [key for _, batch in parts for key in batch.counting_keys],
        [epoch for _, batch in parts for epoch in batch.epochs_ms],
        [who for _, batch in parts for who in batch.who_keys],
    )
    if len(joined.who_keys) != len(joined):
        joined.who_keys = []  # some part without them: none (as store.traces reads them)
    order = sorted(range(len(indexes)), key=indexes.__getitem__)
    return joined.select(order), [indexes[at] for at in order]
