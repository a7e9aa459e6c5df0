"""What a dry run loads: `mailflow ingest` runs beside a mail server, and on one rotated log
its run time is mostly interpreter start-up, so it must not import the service's stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.ingest.synthetic import postfix_lines

# Modules of the API, the worker and the store, none of which reading a log needs.
NOT_NEEDED = ("redis", "flask", "werkzeug", "jinja2", "gunicorn", "asyncio", "ssl", "hashlib", "orjson",
              "service.store", "service.web", "service.worker", "service.config",
              "service.core.traces")  # fmt: skip

PROBE = """
import sys
from service.cli import main
sys.argv = ["mailflow", "ingest", "--dry-run", sys.argv[1]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(" ".join(sorted(sys.modules)))
"""


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_text("".join(postfix_lines(20)))
    return path


def loaded_by_a_dry_run(log: Path) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(log)], capture_output=True, text=True, check=True,
        timeout=60,
    ).stdout  # fmt: skip
    return set(out.split())


def test_a_dry_run_through_the_mailflow_command_loads_no_service_stack(log: Path) -> None:
    loaded = loaded_by_a_dry_run(log)
    assert "service.ingest.postfix" in loaded  # the probe did run the command
    heavy = sorted(m for m in loaded if m.split(".")[0] in NOT_NEEDED or m in NOT_NEEDED
                   or any(m.startswith(p + ".") for p in NOT_NEEDED))  # fmt: skip
    assert heavy == []
