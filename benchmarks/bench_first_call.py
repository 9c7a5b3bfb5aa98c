"""Time a metric's first call in a fresh process, interleaved with another checkout of the workbench.

    .venv/bin/python benchmarks/bench_first_call.py --db demo1.duckdb [--other ../base] [--rounds 7] [--bare]

Each run is a new interpreter that imports duckdb, polars, scipy.stats and ``workbench.stats`` (as
``bench_metrics.py``'s processes do before their clock starts; ``--bare``: nothing), then times ``import workbench``,
``wb.connect(db, read_only=True)`` and ``compute(name, db, by=("feature", "model"), period="day")`` (``dau_count``
with ``activity="calls"``, ``hallucination_rate`` over the evaluator with the most rows). With ``--other`` (the root of
another checkout: ``git worktree add ../base <commit>``) each round runs both, the order alternating, and the table
shows both medians. The data is any workbench database; the fixed cost dominates on a small one
(``workbench.demo.build_demo(path, scale=1)``). Compile the bytecode of both checkouts first
(``python -m compileall -q workbench``): without it every process compiles the workbench from source.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("latency_p95_ms", "error_rate", "cost_usd", "tpot_ms", "hallucination_rate", "dau_count")

_CODE = """
import sys, time, warnings
sys.path.insert(0, {root!r})
warnings.simplefilter("ignore")
if {warm!r}:
    import duckdb, polars, scipy.stats  # noqa: F401
    import workbench.stats  # noqa: F401
t = time.perf_counter()
import workbench as wb
from workbench.metrics import compute
db = wb.connect({db!r}, read_only=True)
opts = {opts!r}
compute({metric!r}, db, **opts)
print(time.perf_counter() - t)
"""


def _options(db: str, metric: str) -> dict:
    opts: dict = {"by": ("feature", "model"), "period": "day"}
    if metric == "dau_count":
        opts["activity"] = "calls"
    if metric == "hallucination_rate":
        import duckdb

        con = duckdb.connect(db, read_only=True)
        row = con.execute("""
            select evaluator, evaluator_version, metric from evals
            where metric in ('hallucination_score', 'hallucination_label') and coalesce("repeat", 0) = 0
            group by 1, 2, 3 order by evaluator = 'human', count(*) desc limit 1""").fetchone()
        con.close()
        if row is None:
            return {}
        opts.update(evaluator=row[0], version=row[1], metric=row[2])
    return opts


def first_call(root: Path, db: str, metric: str, opts: dict, *, warm: bool) -> float:
    code = _CODE.format(root=str(root), warm=warm, db=db, opts=opts, metric=metric)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a workbench database (opened read-only)")
    ap.add_argument("--other", type=Path, default=None, help="root of another checkout to interleave with")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--metrics", nargs="+", default=list(METRICS), choices=METRICS)
    ap.add_argument("--bare", action="store_true", help="import nothing before the clock starts")
    a = ap.parse_args(argv)
    roots = {"this": ROOT, **({"other": a.other.resolve()} if a.other else {})}
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(a.rounds):
        for metric in a.metrics:
            opts = _options(a.db, metric)
            if metric == "hallucination_rate" and not opts:
                continue
            order = list(roots) if r % 2 == 0 else list(reversed(roots))
            for name in order:
                t = first_call(roots[name], a.db, metric, opts, warm=not a.bare)
                times.setdefault((metric, name), []).append(t)
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    before = "nothing" if a.bare else "duckdb, polars, scipy.stats, workbench.stats"
    print(f"first call in a fresh process, s (median of {a.rounds}; {before} imported before the clock; "
          f"load average {load})")
    for metric in dict.fromkeys(m for m, _ in times):
        cells = [f"{name} {statistics.median(times[(metric, name)]):.3f}" for name in roots if (metric, name) in times]
        print(f"{metric:<20} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
