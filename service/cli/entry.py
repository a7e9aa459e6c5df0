"""The ``mailflow`` console script's entry: ``mailflow ingest --dry-run FILE...`` alone is run
without click (service.ingest.plain_entry); click and the command tree are imported only for
every other command line."""

import sys

from service.ingest.plain_entry import plain_dry_run
from service.ingest.startup import ImportsWithoutCollection


def main() -> None:
    if sys.argv[1:2] == ["ingest"]:
        status = plain_dry_run(sys.argv[2:])
        if status is not None:
            sys.exit(status)
    with ImportsWithoutCollection():  # click and the commands: see service.ingest.startup
        from service.cli.commands import main as click_main
    click_main()
