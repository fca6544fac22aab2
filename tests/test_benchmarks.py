"""The benchmark harness runs (figures are not asserted: they are machine-dependent)."""

from __future__ import annotations

from benchmarks.run import main


def test_quick_benchmark_runs_one_metric() -> None:
    report = main(["--quick", "--only", "sync", "--reps", "2", "--no-write"])
    sync = report["results"]["sync"]
    assert sync["send_one_ms"]["n"] == 2
    assert sync["receive_one_ms"]["n"] == 2
    assert report["machine"]["nproc"] >= 1


def test_quick_benchmark_of_the_cli_follow_and_exit_on_eof() -> None:
    report = main(["--quick", "--only", "follow,eof", "--reps", "1", "--no-write"])
    assert report["results"]["follow"]["post_to_printed_ms"]["n"] == 1
    assert report["results"]["eof"]["eof_to_exit_ms"]["n"] == 1
