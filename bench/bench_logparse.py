"""Log parsing benchmark: `mailflow ingest --dry-run` against pflogsumm, and memory over length.

Run: `.venv/bin/python bench/bench_logparse.py [--runs N] [--quick]`. `main()` returns the rows
so a top-level bench runner can collect them.

- Speed: the same Postfix log (the pixelpark sample decompressed, 69,861 lines; a generated log
  of similar size when shared/ is absent) through our parser and through pflogsumm, the usual
  Perl log summariser. Both are whole processes (interpreter start included) and the median of
  several runs is reported; our in-process parse+correlation time is shown too, and the same
  dry run through the `mailflow` console script (as users run it) beside `python -m
  service.ingest` (which the ratio is taken from).
- Memory: peak RSS of a child process that parses 1M and 10M generated lines (`--quick`:
  100k and 1M). Flat means the correlation state is bounded, not growing with the log.
"""

from __future__ import annotations

import argparse
import itertools
import lzma
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The samples live next to the checkout; MAILFLOW_TEST_SHARED (as for the tests) names them
# for a checkout that is not next to them (a worktree).
SHARED = Path(os.environ.get("MAILFLOW_TEST_SHARED") or ROOT.parent / "shared")
SAMPLE = SHARED / "samples" / "postfix" / "pixelpark_postfix-logsums_test_mail.log.xz"

if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from service.ingest.postfix import PostfixParser  # noqa: E402
from service.ingest.synthetic import postfix_lines  # noqa: E402

Row = dict[str, Any]


def prepare_log(workdir: Path) -> tuple[Path, str]:
    path = workdir / "mail.log"
    if SAMPLE.exists():
        with lzma.open(SAMPLE) as src, path.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        return path, "pixelpark sample (real)"
    with path.open("w") as fh:
        fh.writelines(itertools.islice(postfix_lines(10_000), 69_861))
    return path, "generated (shared/ absent)"


def run_once(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + sys) of one run of a command.

    CPU time is the fairer comparison on a shared machine: it does not count time spent
    waiting for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def parse_in_process(path: Path) -> tuple[float, float]:
    parser = PostfixParser()
    start, cpu = time.perf_counter(), time.process_time()
    with path.open(encoding="utf-8", errors="replace") as fh:
        while chunk := fh.readlines(1 << 20):  # as the command reads: chunks, not lines
            parser.feed_lines(chunk)
    parser.flush()
    return time.perf_counter() - start, time.process_time() - cpu


def find_pflogsumm() -> tuple[str | None, str]:
    found = shutil.which("pflogsumm") or (
        "/usr/sbin/pflogsumm" if Path("/usr/sbin/pflogsumm").exists() else None
    )
    if found:
        return found, ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "pflogsumm"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        found = shutil.which("pflogsumm") or (
            "/usr/sbin/pflogsumm" if Path("/usr/sbin/pflogsumm").exists() else None
        )
        if found:
            return found, "installed with apt-get"
    return None, "pflogsumm not installed (apt-get install pflogsumm); row skipped"


def compile_bytecode() -> str:
    """Compile the package's bytecode, as an installed mailflow has it (pip compiles at install).

    With PYTHONDONTWRITEBYTECODE set (as in some CI and sandbox set-ups) nothing else writes it,
    and every run would compile the modules from source first: 10 ms of a 100 ms run."""
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "service")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip
    return "bytecode compiled first" if done.returncode == 0 else "bytecode not compiled"


def speed_rows(runs: int) -> list[Row]:
    rows: list[Row] = []
    compiled = compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        path, source = prepare_log(Path(tmp))
        lines = sum(1 for _ in path.open("rb"))
        pflogsumm, note = find_pflogsumm()
        ours_cmd = [sys.executable, "-m", "service.ingest", "--dry-run", str(path)]
        # The same run through the console script (service.cli's entry), where it is installed.
        script = Path(sys.executable).with_name("mailflow")
        script_cmd = [str(script), "ingest", "--dry-run", str(path)] if script.exists() else None
        ours_runs: list[tuple[float, float]] = []
        script_runs: list[tuple[float, float]] = []
        theirs_runs: list[tuple[float, float]] = []
        inproc_runs: list[tuple[float, float]] = []
        # Interleaved, so that a busy moment on a shared machine hits every contender alike.
        for _ in range(runs):
            ours_runs.append(run_once(ours_cmd))
            if script_cmd:
                script_runs.append(run_once(script_cmd))
            if pflogsumm:
                theirs_runs.append(run_once([pflogsumm, str(path)]))
            inproc_runs.append(parse_in_process(path))
        ours, ours_cpu = medians(ours_runs)
        what = "mailflow ingest --dry-run (process)"
        rows.append(_speed_row(what, source, lines, ours, ours_cpu, compiled))
        if script_runs:
            what = "mailflow ingest --dry-run (console script)"
            rows.append(_speed_row(what, source, lines, *medians(script_runs), compiled))
        what = "mailflow parse+correlate (in process)"
        rows.append(_speed_row(what, source, lines, *medians(inproc_runs)))
        if pflogsumm:
            theirs, theirs_cpu = medians(theirs_runs)
            rows.append(_speed_row("pflogsumm (process)", source, lines, theirs, theirs_cpu, note))
            rows.append(
                {
                    "what": "pflogsumm / mailflow, both processes",
                    "median_s": theirs / ours,
                    "cpu_s": theirs_cpu / ours_cpu,
                    "note": "ratios (>1: mailflow is faster)",
                }
            )
        else:
            rows.append({"what": "pflogsumm", "note": note})
    return rows


def _speed_row(what: str, source: str, lines: int, wall: float, cpu: float, note: str = "") -> Row:
    row: Row = {
        "what": what,
        "lines": lines,
        "median_s": wall,
        "cpu_s": cpu,
        "lines_per_s": lines / cpu,
        "note": f"{source}{'; ' + note if note else ''}",
    }
    return row


def rss_child(lines: int) -> None:
    """Runs in a child process: parse `lines` generated lines, print stats as key=value."""
    parser = PostfixParser()
    start = time.process_time()
    max_state = 0
    traces = 0
    source = itertools.islice(postfix_lines(lines), lines)
    while chunk := list(itertools.islice(source, 8192)):
        parser.feed_lines(chunk)
        traces += len(parser.take())
        max_state = max(max_state, parser.state_size())
    traces += len(parser.flush())
    seconds = time.process_time() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"seconds={seconds} peak_kb={peak_kb} max_state={max_state} traces={traces}")


def memory_rows(sizes: list[int]) -> list[Row]:
    rows: list[Row] = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(n)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        stats = dict(kv.split("=") for kv in out.split())
        seconds = float(stats["seconds"])
        rows.append(
            {
                "what": "generated log, parse+correlate (process)",
                "lines": n,
                "cpu_s": seconds,
                "lines_per_s": n / seconds,
                "peak_rss_mb": int(stats["peak_kb"]) / 1024,
                "max_state": int(stats["max_state"]),
                "traces": int(stats["traces"]),
            }
        )
    return rows


def print_table(rows: list[Row]) -> None:
    cols = ["what", "lines", "median_s", "cpu_s", "lines_per_s", "peak_rss_mb", "max_state", "note"]
    cols = [c for c in cols if any(c in r for r in rows)]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if v < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return "" if v is None else str(v)

    table = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))


def main(runs: int = 5, quick: bool = False) -> list[Row]:
    rows = speed_rows(runs)
    rows += memory_rows([100_000, 1_000_000] if quick else [1_000_000, 10_000_000])
    print_table(rows)
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="memory at 100k and 1M lines only")
    ap.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child)
    else:
        main(args.runs, args.quick)
