"""The benchmark harness runs (figures are not asserted: they are machine-dependent)."""

from __future__ import annotations

from benchmarks.run import main


def test_quick_benchmark_runs_one_metric() -> None:
    report = main(["--quick", "--only", "sync", "--reps", "2", "--no-write"])
    sync = report["results"]["sync"]
    assert sync["send_one_ms"]["n"] == 2
    assert sync["receive_one_ms"]["n"] == 2
    assert report["machine"]["nproc"] >= 1
