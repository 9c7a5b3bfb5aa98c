"""Benchmark ``drift_report`` on N reference + N current calls x 8 columns against Evidently's DataDriftPreset.

    .venv/bin/python benchmarks/bench_drift.py [--rows 1000000] [--evidently-venv /tmp/evid-bench] [--json OUT]

The calls are generated in DuckDB (hash-seeded; the current window has shifted latency and token counts and a new
model mix, the rest is the same distribution), written once to Parquet for Evidently. The workbench runs
``drift_report(db, columns=8 columns, reference=..., current=..., max_rows=N)`` (no sampling) in a spawned process;
Evidently 0.7 runs ``Report([DataDriftPreset()])`` on the same rows read from the Parquet files, in its own throwaway
environment (``python3 -m venv /tmp/evid-bench && /tmp/evid-bench/bin/pip install 'evidently==0.7.*'``), never in the
project's: when that environment is missing it is skipped with the reason printed. Before the times are reported the
per-column drift scores and verdicts of the two are compared and printed (the test definitions themselves are pinned
to Evidently by tests/test_drift.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ["latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "status", "model", "finish_reason"]
REF = ("2026-01-01", "2026-02-01")
CUR = ("2026-02-01", "2026-03-01")

EVIDENTLY = r'''
import json, sys, time, resource
t = time.perf_counter()
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t1 = time.perf_counter()
snap = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
d = snap.dict()
t2 = time.perf_counter()
out = []
for m in d["metrics"]:
    out.append({"id": str(m.get("metric_id") or m.get("metric_name")), "value": m.get("value")})
print(json.dumps({"seconds": t2 - t1, "read_s": t1 - t, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "metrics": out}, default=str))
'''


def generate(path: Path, n: int) -> None:
    import workbench as wb

    db = wb.connect(path)
    u = lambda k: f"((hash(i, {k}) % 1000003) + 0.5) / 1000003.0"  # noqa: E731
    for w, (start, _end), shift in ((0, REF, 0.0), (1, CUR, 0.15)):
        db.duckdb.execute(f"""
            insert into calls (call_id, ts, latency_ms, ttft_ms, input_tokens, output_tokens, cost_usd, status, model,
                               finish_reason)
            select 'c' || i, timestamp '{start}' + to_microseconds((hash(i, 1) % (28 * 86400000000))::bigint),
                   round(exp(6.5 + {shift} + 0.7 * sqrt(-2 * ln({u(2)})) * cos(2 * pi() * {u(3)})), 3),
                   round(50 + 400 * {u(4)}, 3), (200 + hash(i, 5) % (3000 + {int(shift * 4000)}))::bigint,
                   (20 + hash(i, 6) % 800)::bigint, round(0.0001 + 0.01 * {u(7)}, 6),
                   case when {u(8)} < 0.03 then 'error' else 'ok' end,
                   ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'o4-mini'][1 + (hash(i, 9) % {3 + w})::bigint],
                   case when {u(10)} < 0.9 then 'stop' else 'length' end
            from range({w * n}, {(w + 1) * n}) r(i)""")
    db.close()


def run_workbench(db: str, n: int) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import workbench as wb
    from workbench.metrics.drift import drift_report

    t = time.perf_counter()
    df = drift_report(wb.connect(db, read_only=True), columns=COLUMNS, reference=REF, current=CUR, max_rows=n)
    dt = time.perf_counter() - t
    with open("/proc/self/status") as fh:
        peak = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:")) / 1024
    return {"seconds": dt, "peak_mb": peak, "rows": df.to_dicts()}


def compare(rows: list[dict], metrics: list[dict]) -> list[str]:
    """Differences between the workbench's per-column statistics and Evidently's ValueDrift values (empty if none)."""
    import math
    import re

    ours = {r["column"]: r for r in rows}
    bad, seen = [], 0
    for m in metrics:
        got = re.match(r"ValueDrift\(column=([^,]+),", m["id"])
        if got:
            seen += 1
            mine = ours.get(got.group(1), {}).get("statistic")
            # relative 1e-9, or 1e-9 absolute near 0 (a distance of ~1e-4 is the root of a ~1e-8 difference of sums)
            if mine is None or not math.isclose(mine, float(m["value"]), rel_tol=1e-9, abs_tol=1e-9):
                bad.append(f"{got.group(1)}: workbench {mine} vs Evidently {m['value']}")
        elif m["id"].startswith("DriftedColumnsCount"):
            share = ours["__dataset__"]["statistic"]
            if not math.isclose(share, float(m["value"]["share"])):
                bad.append(f"drifted share: workbench {share} vs Evidently {m['value']['share']}")
    if seen != len(rows) - 1:
        bad.append(f"Evidently reported {seen} columns, the workbench {len(rows) - 1}")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per window")
    ap.add_argument("--evidently-venv", type=Path, default=Path("/tmp/evid-bench"))
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    from concurrent.futures import ProcessPoolExecutor

    import duckdb

    with open("/proc/loadavg") as fh:
        print(f"bench_drift: load average {' '.join(fh.read().split()[:3])}", flush=True)
    out = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-drift-") as tmp:
        d = Path(tmp)
        db = d / "drift.duckdb"
        t = time.perf_counter()
        generate(db, a.rows)
        con = duckdb.connect(str(db), read_only=True)
        for name, (s, e) in (("ref", REF), ("cur", CUR)):
            con.execute(f"copy (select {', '.join(COLUMNS)} from calls where ts >= '{s}' and ts < '{e}') "
                        f"to '{d / name}.parquet' (format parquet)")
        con.close()
        print(f"generated {a.rows:,} + {a.rows:,} calls x {len(COLUMNS)} columns in {time.perf_counter() - t:.1f} s",
              flush=True)
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
            w = ex.submit(run_workbench, str(db), a.rows).result()
        for r in w["rows"]:
            print(f"  workbench {r['column']:<14} {r['test'] or '':<24} {r['statistic'] if r['statistic'] is not None else float('nan'):10.4f} "
                  f"drifted={r['drifted']}")
        print(f"workbench drift_report: {w['seconds']:.2f} s, peak {w['peak_mb']:.0f} MB", flush=True)
        py = a.evidently_venv / "bin" / "python"
        row = {"work": f"drift_report 2x{a.rows:,} x {len(COLUMNS)} cols", "rows": 2 * a.rows, "wb_s": w["seconds"],
               "wb_mb": w["peak_mb"], "alt": "Evidently 0.7 DataDriftPreset", "alt_s": None, "alt_mb": None}
        if not py.exists():
            print(f"Evidently skipped: no throwaway environment at {a.evidently_venv} (python3 -m venv "
                  f"{a.evidently_venv} && {a.evidently_venv}/bin/pip install 'evidently==0.7.*')")
        else:
            p = subprocess.run([str(py), "-c", EVIDENTLY, str(d / "ref.parquet"), str(d / "cur.parquet")],
                               capture_output=True, text=True)
            if p.returncode != 0:
                print(f"Evidently failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
            else:
                ev = json.loads(p.stdout.strip().splitlines()[-1])
                for m in ev["metrics"]:
                    print(f"  evidently {m['id'][:90]:<90} {str(m['value'])[:60]}")
                bad = compare(w["rows"], ev["metrics"])
                if bad:
                    print("CHECK FAILED: workbench and Evidently disagree:\n  " + "\n  ".join(bad))
                    return 1
                print(f"check: the {len(COLUMNS)} column scores equal Evidently's (relative 1e-9, absolute 1e-9 near 0) and so does the "
                      "drifted-column share")
                print(f"Evidently DataDriftPreset: {ev['seconds']:.2f} s (+{ev['read_s']:.1f} s import and read), "
                      f"peak {ev['peak_mb']:.0f} MB; ratio workbench / Evidently {w['seconds'] / ev['seconds']:.2f}x")
                row.update(alt_s=ev["seconds"], alt_mb=ev["peak_mb"])
        if row["alt_s"] is not None:
            out.append(row)
    if a.json:
        a.json.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
