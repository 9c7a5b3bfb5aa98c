"""Run the performance suite with modest defaults and print each benchmark's output (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--only metrics demo] [--list]

Each benchmark runs as its own subprocess with the arguments below (sized to finish in about 10 minutes in all on 2
shared cores); run a script directly for other sizes (see ``benchmarks/README.md``). A benchmark that is missing is
reported and skipped; the exit status is non-zero when any benchmark fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SUITE: dict[str, list[str]] = {
    "ingest": ["bench_ingest.py", "--rows", "300000", "--spans", "50000", "--baseline-rows", "5000"],
    "detector": ["bench_detector.py", "-n", "1000"],
    "demo": ["bench_demo.py", "--scale", "1", "5"],
    "metrics": ["bench_metrics.py", "--scale", "5"],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(SUITE), default=list(SUITE), help="run only these benchmarks")
    ap.add_argument("--list", action="store_true", help="print the commands and exit")
    a = ap.parse_args(argv)

    env = dict(os.environ, RAGAS_DO_NOT_TRACK="true", PYTHONUNBUFFERED="1")
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    print(f"run_all: {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores, load average {load}, "
          f"python {sys.version.split()[0]}", flush=True)
    failed, timings = [], {}
    for name in a.only:
        script, *args = SUITE[name]
        cmd = [sys.executable, str(HERE / script), *args]
        print(f"\n=== {name}: {' '.join([Path(cmd[0]).name, f'benchmarks/{script}', *args])}", flush=True)
        if a.list:
            continue
        if not (HERE / script).exists():
            print(f"skipped: benchmarks/{script} does not exist")
            failed.append(name)
            continue
        t = time.perf_counter()
        # output streams straight through, so a long benchmark shows its progress as it goes
        rc = subprocess.run(cmd, env=env, cwd=HERE.parent).returncode
        timings[name] = time.perf_counter() - t
        if rc != 0:
            print(f"FAILED: {name} exited with status {rc}")
            failed.append(name)
    if not a.list:
        print("\n=== summary: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
              + (f"; failed: {', '.join(failed)}" if failed else "; all passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
