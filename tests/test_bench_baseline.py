"""`make bench` measures each section again on an older commit and shows both with a ratio."""

from __future__ import annotations

import subprocess

import pytest

from bench import baseline


def test_every_number_both_have_is_shown_with_its_ratio():
    ours = [{"case": "10,000 traces", "build_ms": 10.0, "traces": 10_000, "note": "x",
             "new_ms": 3.0},
            {"case": "only here", "build_ms": 5.0}]  # fmt: skip
    theirs = [{"case": "10,000 traces", "build_ms": 40.0, "traces": 10_000, "note": "y"},
              {"case": "only there", "build_ms": 1.0}]  # fmt: skip
    assert baseline.side_by_side(ours, theirs) == [
        {"row": "10,000 traces", "figure": "build_ms", "this commit": 10.0,
         baseline.BASELINE: 40.0, "ratio": 0.25},
        {"row": "10,000 traces", "figure": "traces", "this commit": 10_000,
         baseline.BASELINE: 10_000, "ratio": 1.0},
    ]  # fmt: skip
    zero = baseline.side_by_side([{"m": "a", "v": 1}], [{"m": "a", "v": 0}])
    assert zero[0]["ratio"] is None


def test_a_row_of_the_other_server_is_shown_beside_the_older_row_of_its_measure():
    ours = [{"measure": "fold", "value": 300}, {"measure": "fold on Redis 6.2", "value": 200},
            {"measure": "fold on Redis 6.2 only", "value": 1}]  # fmt: skip
    theirs = [
        {"measure": "fold", "value": 400},
        {"measure": "fold on Redis 6.2 only x", "value": 9},
    ]
    shown = baseline.side_by_side(ours, theirs, (" on Redis 6.2",))
    assert [(row["row"], row["ratio"]) for row in shown] == [
        ("fold", 0.75), ("fold on Redis 6.2", 0.5)
    ]  # fmt: skip
    assert len(baseline.side_by_side(ours, theirs)) == 1  # without suffixes: the label alone


def test_the_older_commit_is_laid_out_and_removed_again():
    known = subprocess.run(["git", "cat-file", "-e", f"{baseline.BASELINE}^{{commit}}"],
                           cwd=baseline.ROOT, capture_output=True)  # fmt: skip
    if known.returncode != 0:
        pytest.skip(f"this clone does not hold commit {baseline.BASELINE}")
    with baseline.baseline_tree() as tree:
        assert (tree / "bench" / "__main__.py").exists()
        assert (tree / "service" / "store" / "embedded.py").exists()
        # Its own code, not this one: the older store knows no choice of server.
        assert "EMBEDDED_SERVERS" not in (tree / "service/store/embedded.py").read_text()
    assert not tree.exists()
