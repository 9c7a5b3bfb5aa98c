"""Benchmark ``workbench ingest``: JSONL calls and OTLP spans, first load and re-load, against the Python alternative.

    .venv/bin/python benchmarks/bench_ingest.py [--rows 1000000] [--spans 200000] [--baseline-rows 200000]

Generates the files in a temporary directory (seeded), loads them into a fresh DuckDB file, and prints rows, seconds,
rows/s and peak RSS for each step (the process's peak so far and, on Linux, the step's own peak). The alternative is
what a user would write by hand: ``json.loads`` per line and ``executemany`` with ``INSERT OR IGNORE`` into a table
with a PRIMARY KEY; it runs on ``--baseline-rows`` rows (it is slow) and the ratio compares rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAPPING = """
table = "calls"
[columns]
call_id = "id"
ts = { field = "time", unit = "s" }
latency_ms = { field = "duration", unit = "s" }
input_tokens = "usage.input"
output_tokens = "usage.output"
cache_read_tokens = "usage.cached"
model = "model"
feature = { field = "app", default = "unknown" }
user_id = "user"
status = { field = "status", default = "ok" }
"""

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]
APPS = ["support", "summariser", "search", "writer"]


_PEAK = [0.0]  # the process's peak over the steps (resetting the kernel's per-step peak resets ru_maxrss too)


def peak_rss_mb() -> float:
    _PEAK[0] = max(_PEAK[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB
    return _PEAK[0]


def reset_step_peak() -> bool:
    """Reset the kernel's peak RSS of this process (Linux) so a step's own peak can be read; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def step_peak_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def write_jsonl(path: Path, n: int, rng: random.Random) -> None:
    t0 = 1763632800
    with open(path, "w") as fh:
        for i in range(n):
            inp = rng.randint(50, 8000)
            fh.write(json.dumps({
                "id": f"req-{i:09d}", "time": t0 + i * 0.05, "duration": round(rng.uniform(0.1, 6.0), 3),
                "usage": {"input": inp, "output": rng.randint(1, 1200), "cached": rng.randint(0, inp)},
                "model": rng.choice(MODELS), "app": rng.choice(APPS), "user": f"u-{rng.randint(1, 20000)}",
                "status": "ok" if rng.random() > 0.02 else "error",
            }) + "\n")


def _attr(k: str, v) -> dict:
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    if isinstance(v, float):
        return {"key": k, "value": {"doubleValue": v}}
    if isinstance(v, list):
        return {"key": k, "value": {"arrayValue": {"values": [{"stringValue": x} for x in v]}}}
    return {"key": k, "value": {"stringValue": v}}


def write_otlp(path: Path, n: int, rng: random.Random, per_line: int = 100) -> None:
    """Collector file-exporter style: one ExportTraceServiceRequest per line, ``per_line`` spans each."""
    t0 = 1763632800 * 10**9
    with open(path, "w") as fh:
        for start in range(0, n, per_line):
            spans = []
            for i in range(start, min(n, start + per_line)):
                s = t0 + i * 50_000_000
                inp = rng.randint(50, 8000)
                spans.append({
                    "traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{i + 1:016x}", "parentSpanId": "",
                    "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": str(s),
                    "endTimeUnixNano": str(s + rng.randint(100, 6000) * 1_000_000),
                    "attributes": [
                        _attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", "openai"),
                        _attr("gen_ai.request.model", rng.choice(MODELS)),
                        _attr("gen_ai.response.model", rng.choice(MODELS)),
                        _attr("gen_ai.usage.input_tokens", inp),
                        _attr("gen_ai.usage.output_tokens", rng.randint(1, 1200)),
                        _attr("gen_ai.usage.cache_read.input_tokens", rng.randint(0, inp)),
                        _attr("gen_ai.response.finish_reasons", ["stop"]),
                        _attr("gen_ai.conversation.id", f"c-{rng.randint(1, 50000)}"),
                        _attr("gen_ai.request.temperature", 0.2),
                        _attr("workbench.feature", rng.choice(APPS)),
                        _attr("user.id", f"u-{rng.randint(1, 20000)}"),
                    ],
                    "status": {"code": 1 if rng.random() > 0.02 else 2},
                })
            fh.write(json.dumps({"resourceSpans": [{
                "resource": {"attributes": [_attr("service.name", "bench"),
                                            _attr("deployment.environment.name", "production")]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}) + "\n")


def timed(label: str, fn, rows: int) -> float:
    peak_rss_mb()
    step = reset_step_peak()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    own = step_peak_mb() if step else None
    print(f"{label:44s} rows {rows:>10,}  {dt:8.2f} s  {rows / dt:>12,.0f} rows/s  peak RSS {peak_rss_mb():7.0f} MB"
          + (f" (this step {own:5.0f} MB)" if own is not None else "") + (f"  {out}" if out else ""))
    return rows / dt


def python_baseline(path: Path, db_path: Path, n: int) -> None:
    """What a user writes by hand: json.loads per line, executemany INSERT OR IGNORE into a PRIMARY KEY table."""
    import duckdb

    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE calls_pk (call_id VARCHAR PRIMARY KEY, ts TIMESTAMP, latency_ms DOUBLE, "
                "input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, model VARCHAR, feature VARCHAR, "
                "user_id VARCHAR, status VARCHAR)")
    import datetime as dt

    batch = []
    with open(path) as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            r = json.loads(line)
            u = r["usage"]
            batch.append((r["id"], dt.datetime.fromtimestamp(r["time"], dt.timezone.utc).replace(tzinfo=None),
                          r["duration"] * 1000, u["input"], u["output"], u.get("cached"), r["model"], r["app"],
                          r["user"], r["status"]))
            if len(batch) == 50_000:
                con.executemany("INSERT OR IGNORE INTO calls_pk VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
                batch = []
    if batch:
        con.executemany("INSERT OR IGNORE INTO calls_pk VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="JSONL call rows")
    ap.add_argument("--spans", type=int, default=200_000, help="OTLP spans")
    ap.add_argument("--baseline-rows", type=int, default=None,
                    help="rows for the Python json.loads + executemany baseline (default: min(rows, 5000); it is slow)")
    a = ap.parse_args(argv)
    base_n = a.baseline_rows or min(a.rows, 5_000)

    import duckdb

    import workbench as wb
    from workbench.io.ingest import ingest

    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        d = Path(tmp)
        jsonl, otlp, mapping = d / "calls.jsonl", d / "spans.jsonl", d / "calls.toml"
        mapping.write_text(MAPPING)
        t = time.perf_counter()
        write_jsonl(jsonl, a.rows, rng)
        write_otlp(otlp, a.spans, rng)
        print(f"generated {a.rows:,} JSONL rows ({jsonl.stat().st_size / 1e6:.0f} MB) and {a.spans:,} OTLP spans "
              f"({otlp.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s; duckdb {duckdb.__version__}, "
              f"{os.cpu_count()} cores")
        db = wb.connect(d / "bench.duckdb")
        r1 = timed("ingest JSONL (first load)", lambda: ingest(db, jsonl, mapping=mapping, progress=False).as_dict()
                   | {"reasons": None}, a.rows)
        timed("ingest JSONL again (all duplicates)", lambda: ingest(db, jsonl, mapping=mapping, progress=False)
              .as_dict() | {"reasons": None}, a.rows)
        timed("ingest OTLP spans (first load)", lambda: ingest(db, otlp, progress=False).as_dict() | {"reasons": None},
              a.spans)
        timed("ingest OTLP spans again (all duplicates)", lambda: ingest(db, otlp, progress=False).as_dict()
              | {"reasons": None}, a.spans)
        db.close()
        rb = timed(f"python json.loads + executemany OR IGNORE", lambda: python_baseline(jsonl, d / "base.duckdb",
                                                                                          base_n), base_n)
        print(f"ratio (ingest JSONL rows/s / python baseline rows/s): {r1 / rb:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
