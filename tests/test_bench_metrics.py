"""The metric benchmark's hand-written SQL computes what the workbench's metric computes (benchmarks/bench_metrics.py
checks this before timing on whatever database it is given; here it is checked on every test run on a database that
holds what a real one does: calls, production answers scored, and a labelled benchmark set scored beside them)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_metrics as B  # noqa: E402


@pytest.fixture(scope="module")
def bench_db(tmp_path_factory):
    import workbench as wb

    path = tmp_path_factory.mktemp("bench") / "bench.duckdb"
    db = wb.connect(str(path))
    con = db.duckdb
    from workbench.io.prices import load_prices

    load_prices(db)  # the packaged price table (genai-prices), as the demo loads it
    B.generate_calls(con, 3000)
    # 300 production answers (logged calls), scored; labels cycle through hallucinated / supported / unscorable
    con.execute("""
        insert into answers (call_id, answer, source, ts)
        select call_id, 'a', 'production', null from calls order by call_id limit 300""")
    # a labelled benchmark set scored by the same detector version: answers with no logged call, a dataset as their
    # source, some dated and some not (the scoring time is not the answer's time)
    con.execute("""
        insert into answers (call_id, answer, source, ts)
        select 'bench' || i, 'a', 'halu_dev.jsonl', case when i % 2 = 0 then timestamp '2026-10-01' end
        from range(120) r(i)""")
    con.execute("""
        insert into evals (call_id, metric, value, label, evaluator, evaluator_version, "repeat", ts)
        select call_id, 'hallucination_score', 0.5,
               ['hallucinated', 'supported', 'unscorable'][1 + (hash(call_id) % 3)::int], 'support', '9.9', 0,
               timestamp '2026-12-05 10:00'
        from answers""")
    db.close()
    return path


@pytest.mark.parametrize("metric", ["hallucination_rate", "error_rate", "tpot_ms", "dau_count", "latency_p95_ms", "cost_usd"])
def test_the_hand_written_sql_computes_the_workbench_metric(bench_db, metric):
    ctx = {"db": str(bench_db), "parquet": {}, "memory_limit": None,
           "evaluator": "support", "version": "9.9", "eval_metric": "hallucination_score"}
    out = {}
    for approach, run in (("workbench", B.run_workbench), ("duckdb_sql", B.run_duckdb_sql)):
        B._OPEN.clear()  # each approach connects as in its own benchmark process
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[approach] = run(metric, dict(ctx))
        finally:
            for con in B._OPEN.values():
                con.close()
            B._OPEN.clear()
    ref, other = out["workbench"], out["duckdb_sql"]
    assert ref.filter(ref["n"] > 0).height > 0
    B.compare(metric, ref, other, "duckdb_sql")
