"""Finding TLS-RPT reports where reporters leave them: JSON files, gzip'd JSON, report e-mails
(RFC 8460 §5.3: ``multipart/report; report-type="tlsrpt"`` with an ``application/tlsrpt+gzip``
or ``+json`` part), mbox files and Maildir folders.

A file is recognised by its content, not its name: gzip magic, a JSON object, an mbox's
``From `` line, else one e-mail. A message with no report part (a bounce, a newsletter in the
same mailbox) is counted as such, not sent. Nothing here parses the report: the API checks it
(``--dry-run`` checks it with the same code, see ``tlsrpt_send``). Each message and file is read
whole, at most ``MAX_FILE_BYTES``, since no report mail comes near it.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

GZIP = "application/tlsrpt+gzip"
JSON = "application/tlsrpt+json"
MAX_FILE_BYTES = 64 * 1024 * 1024
# Part types a report arrives as: RFC 8460's, and what some reporters label them instead.
_REPORT_TYPES = {GZIP: GZIP, JSON: JSON, "application/gzip": GZIP, "application/x-gzip": GZIP,
                 "application/json": JSON}  # fmt: skip


@dataclass(frozen=True)
class Found:
    """A report to send (``body`` and its ``media_type``), or why ``source`` gave none."""

    source: str
    body: bytes = b""
    media_type: str = ""
    problem: str | None = None  # unreadable: counted as an error
    not_a_report: bool = False  # a message without a report part: counted, not an error


def find_reports(paths: tuple[str, ...]) -> Iterator[Found]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from _maildir(path)
        else:
            yield from _file(path)


def _maildir(path: Path) -> Iterator[Found]:
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        yield Found(str(path), problem="a folder, but not a Maildir (no cur/ and new/)")
        return
    # Oldest first by name (Maildir names start with the delivery time); a re-read sends the
    # same reports again, which the API counts as duplicates.
    for sub in ("cur", "new"):
        for item in sorted((path / sub).iterdir()):
            if item.is_file():
                yield from _message_file(item)


def _file(path: Path) -> Iterator[Found]:
    try:
        with path.open("rb") as handle:
            head = handle.read(5)
    except OSError as error:
        yield Found(str(path), problem=error.strerror or str(error))
        return
    if head.startswith(b"\x1f\x8b"):
        yield from _whole(path, GZIP)
    elif head.lstrip().startswith(b"{") or head.startswith(b"\xef\xbb\xbf"):
        yield from _whole(path, JSON)
    elif head == b"From ":
        yield from _mbox(path)
    else:
        yield from _message_file(path)


def _read(path: Path) -> bytes | str:
    """The file's bytes, or why not."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return f"larger than {MAX_FILE_BYTES} bytes"
        return path.read_bytes()
    except OSError as error:
        return error.strerror or str(error)


def _whole(path: Path, media_type: str) -> Iterator[Found]:
    data = _read(path)
    if isinstance(data, str):
        yield Found(str(path), problem=data)
    else:
        yield Found(str(path), data.removeprefix(b"\xef\xbb\xbf"), media_type)


def _message_file(path: Path) -> Iterator[Found]:
    data = _read(path)
    if isinstance(data, str):
        yield Found(str(path), problem=data)
        return
    yield from reports_in_message(str(path), message_from_bytes(data, policy=policy.default))


def _mbox(path: Path) -> Iterator[Found]:
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            raw = box.get_bytes(key)
            if len(raw) > MAX_FILE_BYTES:
                yield Found(f"{path} message {number}", problem="message too large")
                continue
            message = message_from_bytes(raw, policy=policy.default)
            yield from reports_in_message(f"{path} message {number}", message)
    finally:
        box.close()


def reports_in_message(source: str, message: Message) -> Iterator[Found]:
    """Each report part of one e-mail (a report e-mail carries one; more are all sent)."""
    found = False
    for index, part in enumerate(message.walk()):
        media_type = _REPORT_TYPES.get(part.get_content_type())
        if media_type is None or part.is_multipart():
            continue
        if media_type == JSON and part.get_content_type() == "application/json":
            filename = part.get_filename() or ""
            if not filename.endswith(".json"):
                continue  # some other JSON attachment
        found = True
        body = part.get_payload(decode=True)
        if not isinstance(body, bytes) or not body:
            yield Found(f"{source} part {index}", problem="an empty or undecodable report part")
            continue
        yield Found(f"{source} part {index}", body, media_type)
    if not found:
        yield Found(source, not_a_report=True)
