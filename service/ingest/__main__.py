"""`python -m service.ingest ...`: the ingest command without the rest of the CLI."""

import sys

from service.ingest.startup import ImportsWithoutCollection

with ImportsWithoutCollection():  # see service.ingest.startup
    from service.ingest.plain_entry import plain_dry_run

if __name__ == "__main__":
    # `--dry-run FILE...` alone needs no click (service.ingest.plain_entry); the rest does.
    status = plain_dry_run(sys.argv[1:])
    if status is not None:
        sys.exit(status)
    with ImportsWithoutCollection():
        from service.ingest.command import ingest
    ingest(prog_name="mailflow ingest")
