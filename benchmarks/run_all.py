"""Run the performance suite and print ONE table: work, rows, workbench s and peak RSS, the alternative's s and peak
RSS, and the ratio (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--quick] [--only metrics ingest] [--list] [--log FILE]

Each benchmark runs as its own subprocess; its full output (the correctness checks, per-step lines) goes to the log
file (printed at the end), and each writes its summary rows as JSON for the table. ``--quick`` uses small sizes and
one round (under 3 minutes on 2 quiet cores) for day-to-day use; the default sizes take longer. The alternative is
hand-written DuckDB SQL computing the same numbers (metrics: value, n and interval) or DuckDB's own reader doing the
same load (ingest); ratio = workbench seconds / alternative seconds, so below 1 the workbench is faster. The
exit status is non-zero when any benchmark fails (a failed correctness check included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL: dict[str, list[str]] = {
    "ingest": ["bench_ingest.py", "--rows", "1000000", "--litellm", "100000", "--spans", "200000", "--rounds", "2"],
    "metrics": ["bench_metrics.py", "--scale", "10", "--rounds", "2", "--repeat", "2"],
    "drift": ["bench_drift.py", "--rows", "1000000"],
    "demo": ["bench_demo.py", "--scale", "1", "5"],
    "detector": ["bench_detector.py", "-n", "1000"],
}
QUICK: dict[str, list[str]] = {
    "ingest": ["bench_ingest.py", "--rows", "100000", "--litellm", "10000", "--spans", "20000", "--rounds", "1", "--baseline-rows", "1000"],
    "metrics": ["bench_metrics.py", "--scale", "1", "--rounds", "1", "--repeat", "1"],
    "drift": ["bench_drift.py", "--rows", "100000"],
}
JSON_OUT = {"ingest", "metrics", "drift"}  # the benchmarks whose rows go into the table; the others' output is in the log


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one round (under 3 minutes on 2 cores)")
    ap.add_argument("--only", nargs="+", choices=list(FULL), default=None, help="run only these benchmarks")
    ap.add_argument("--list", action="store_true", help="print the commands and exit")
    ap.add_argument("--log", type=Path, default=None, help="where the benchmarks' own output goes")
    a = ap.parse_args(argv)
    suite = QUICK if a.quick else FULL
    names = [n for n in (a.only or list(suite)) if n in suite]

    env = dict(os.environ, RAGAS_DO_NOT_TRACK="true", PYTHONUNBUFFERED="1")
    log = a.log or Path(tempfile.gettempdir()) / f"workbench-bench-{time.strftime('%Y%m%d-%H%M%S')}.log"
    print(f"run_all{' --quick' if a.quick else ''}: {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores, "
          f"load average {_load()}, python {sys.version.split()[0]}", flush=True)
    failed, timings, rows = [], {}, []
    with tempfile.TemporaryDirectory(prefix="wb-bench-all-") as tmp, open(log, "a") as out:
        for name in names:
            script, *args = suite[name]
            js = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / script), *args, *(["--json", str(js)] if name in JSON_OUT else [])]
            shown = " ".join([f"benchmarks/{script}", *args])
            if a.list:
                print(shown)
                continue
            print(f"  {name}: {shown} ...", end="", flush=True)
            out.write(f"\n=== {name}: {shown} (load average {_load()})\n")
            out.flush()
            t = time.perf_counter()
            rc = subprocess.run(cmd, env=env, cwd=HERE.parent, stdout=out, stderr=subprocess.STDOUT).returncode
            timings[name] = time.perf_counter() - t
            print(f" {timings[name]:.0f} s" + (f", FAILED (status {rc})" if rc else ""), flush=True)
            if rc:
                failed.append(name)
            if js.exists():
                rows.extend(json.loads(js.read_text()))
    if a.list:
        return 0
    if rows:
        head = (f"{'work':<40} {'rows':>11} {'wb s':>8} {'wb MB':>6}  {'alternative':<26} {'alt s':>8} {'alt MB':>6} "
                f"{'ratio':>6}")
        print("\n" + head + "\n" + "-" * len(head))
        for r in rows:
            alt_mb = f"{r['alt_mb']:,.0f}" if r.get("alt_mb") is not None else "-"
            print(f"{r['work']:<40} {r['rows']:>11,} {r['wb_s']:>8.2f} {r['wb_mb']:>6,.0f}  {r['alt']:<26} "
                  f"{r['alt_s']:>8.2f} {alt_mb:>6} {r['wb_s'] / r['alt_s']:>5.2f}x")
        print("ratio = workbench s / alternative s (below 1: the workbench is faster); s are medians of interleaved "
              "runs; MB = peak RSS of the process that did the work.")
    print(f"load average at the end: {_load()}; full output: {log}"
          + (f"; failed: {', '.join(failed)}" if failed else "; all checks passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
