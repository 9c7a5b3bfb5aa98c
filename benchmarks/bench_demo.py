"""Benchmark ``workbench.demo.build_demo``: rows per table, seconds, rows/s and peak memory of a demo build.

    .venv/bin/python benchmarks/bench_demo.py [--scale 10] [--scale 1 5 10] [--keep DIR]

Each scale is built into a fresh DuckDB file in a temporary directory, in its own spawned process, so that one build's
peak memory does not carry over into the next. Peak memory is that process's ``VmHWM`` from ``/proc/self/status``
(the high-water mark of its resident set: interpreter, imports and the build together); ``base`` is its ``VmRSS``
just before the build starts (``workbench.demo`` imports numpy, polars and duckdb lazily, inside the build, so their
import cost is in ``peak``).

The build is the synthetic generator (numpy, vectorised, linear in ``scale``) plus the real public data loaded through
``workbench.io.ingest`` (Azure LLM inference traces and halu_dev: a fixed ~30k rows whatever the scale), written to one
DuckDB file. There is no alternative to compare it with: it is the fixture the metric benchmarks run on.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def proc_status_kb(field: str) -> int:
    """``VmHWM``/``VmRSS`` of this process in KiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"proc_status_kb: no {field} in /proc/self/status")


def _build(path: str, scale: float, seed: int) -> dict:
    """Runs in a spawned child: import, note the base RSS, build, return counts, seconds and memory."""
    from workbench.demo import build_demo  # imports its heavy libraries lazily, inside the build

    base = proc_status_kb("VmRSS")
    steps: list[tuple[float, str]] = []
    t = time.perf_counter()
    counts = build_demo(path, scale=scale, seed=seed, progress=lambda line: steps.append((time.perf_counter() - t, line)))
    seconds = time.perf_counter() - t
    return {"counts": counts, "seconds": seconds, "base_kb": base, "peak_kb": proc_status_kb("VmHWM"),
            "file_bytes": os.path.getsize(path), "steps": steps}


def run_build(path: Path, scale: float, seed: int = 7) -> dict:
    """Build the demo at ``scale`` into ``path`` in a fresh spawned process and return its measurements."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(_build, str(path), scale, seed).result()


def report(scale: float, r: dict, steps: bool = False) -> None:
    counts = {k: v for k, v in r["counts"].items() if isinstance(v, int)}
    total = sum(counts.values())
    s = r["seconds"]
    print(f"\nbuild_demo(scale={scale:g}): {s:.1f} s, {total:,} rows in {len(counts)} tables ({total / s:,.0f} rows/s; "
          f"calls {counts.get('calls', 0) / s:,.0f}/s), file {r['file_bytes'] / 1e6:.0f} MB, "
          f"peak RSS (VmHWM) {r['peak_kb'] / 1024:.0f} MB, base after imports {r['base_kb'] / 1024:.0f} MB")
    width = max(len(k) for k in counts)
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        if v:
            print(f"  {k:<{width}}  {v:>12,}")
    if steps:
        print("  progress (seconds since the build started):")
        for at, line in r["steps"]:
            print(f"  {at:7.1f} s  {line.strip()[:100]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, nargs="+", default=[10.0], help="one or more scales (default 10)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--steps", action="store_true", help="also print build_demo's progress lines with their times")
    ap.add_argument("--keep", type=Path, default=None, help="write the databases here instead of a temp dir")
    a = ap.parse_args(argv)
    if any(s <= 0 for s in a.scale):
        ap.error(f"--scale must be positive, got {a.scale}")

    import duckdb

    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    print(f"bench_demo: {os.cpu_count()} cores, load average {load}, duckdb {duckdb.__version__}; "
          f"peak = VmHWM of a spawned process per build (interpreter + imports + build)")
    with tempfile.TemporaryDirectory(prefix="wb-bench-demo-") as tmp:
        out = a.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for scale in a.scale:
            path = out / f"demo-scale{scale:g}.duckdb"
            report(scale, run_build(path, scale, a.seed), a.steps)
            if a.keep is None:
                path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
