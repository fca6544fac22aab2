"""Cost of each candidate embedding backend: load time, memory, throughput, query latency.

Each backend runs in a fresh subprocess (``python measure_models.py --one NAME``) so that
import time and RSS are those of a cold process. Threads are capped at 2 (the machine class).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_one(name: str) -> dict[str, float]:
    baseline_rss = _rss_mib()
    started = time.perf_counter()
    from evaluate import EMBEDDERS, load_messages

    embedder = EMBEDDERS[name]()
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - started
    rss_loaded = _rss_mib()

    texts = [m["content_markdown"] for m in load_messages()]
    started = time.perf_counter()
    embedder.embed(texts)
    throughput = len(texts) / (time.perf_counter() - started)

    latencies = []
    for query in ("how long should we wait before re-sending", "ERR_DB_LOCKED", "dark mode"):
        for _ in range(10):
            t0 = time.perf_counter()
            embedder.embed([query])
            latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "load_s": round(load_s, 2),
        "rss_base_mib": round(baseline_rss, 1),
        "rss_loaded_mib": round(rss_loaded, 1),
        "rss_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "texts_per_s": round(throughput, 1),
        "query_ms_p50": round(statistics.median(latencies), 2),
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure_one(sys.argv[2])))
        return 0
    from evaluate import EMBEDDERS

    names = sys.argv[1:] or list(EMBEDDERS)
    print("| model | load s | RSS after load MiB | peak RSS MiB | texts/s | query ms p50 |")
    print("|---|---|---|---|---|---|")
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", name], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            print(f"| {name} | failed: {proc.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"| {name} | {r['load_s']} | {r['rss_loaded_mib']} | {r['rss_peak_mib']} "
            f"| {r['texts_per_s']} | {r['query_ms_p50']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
