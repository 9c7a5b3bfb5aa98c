"""``make demo``'s steps: build the demo database from the synthetic enterprise, load the real public data through the
ingest path, evaluate, and publish the reports.

>>> from workbench.demo import pipeline
>>> pipeline.DEMO_DB
'datasets/demo.duckdb'
"""

from __future__ import annotations

from workbench.errors import ParameterError, ParameterTypeError

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.demo.synth import DATASETS, DEMO_CONFIG, DEMO_DB, DEMO_START, simulate
from workbench.schema import utc_now

if TYPE_CHECKING:  # pragma: no cover
    from workbench.db import Workbench


# --- writing --------------------------------------------------------------------------------------------------------

def _sel(table: str, **exprs: str) -> str:
    from workbench.schema import TABLES

    return ", ".join(exprs.get(c, f'"{c}"') for c in TABLES[table].names)


def _secs_to_ts(col: str) -> str:
    return f"(TIMESTAMP '{DEMO_START.isoformat(sep=' ')}' + to_microseconds(CAST(round({col} * 1e6) AS BIGINT)))"


_HEX = "printf('%016x', {})"
_USER = "printf('u%05d', {})"

# The summariser's claude-3-5-haiku calls go through a gateway that reports what it billed: the list price
# (0.80 / 4.00 USD per million input / output tokens) plus a 5% gateway fee. Reported cost wins over the computed one
# (datasets/README.md), so the cost report shows these calls as "reported" and 5% above their token price.
REPORTED_COST_MODEL, GATEWAY_FEE = "claude-3-5-haiku", 1.05
REPORTED_COST_SQL = (f"CASE WHEN model = '{REPORTED_COST_MODEL}' AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL) "
                     f"THEN round((coalesce(input_tokens, 0) * 0.80 + coalesce(output_tokens, 0) * 4.00) / 1e6 "
                     f"* {GATEWAY_FEE}, 9) END")

_SELECT = {
    "calls": lambda: _sel(
        "calls", call_id=_HEX.format("call_id"), trace_id="printf('%016x%016x', trace_a, trace_b)",
        parent_id=_HEX.format("parent_id"), user_id=_USER.format("user_n"),
        session_id="printf('s-%016x', session_n)", cost_usd=REPORTED_COST_SQL,
        attributes="CASE WHEN k_ctx IS NOT NULL THEN json_object('retrieval.documents', k_ctx, 'retrieval.index', "
                   "'helpcentre-2026-09') END"),
    "answers": lambda: _sel("answers", call_id=_HEX.format("call_id"), reference="CAST(NULL AS VARCHAR)"),
    "evals": lambda: _sel("evals", call_id=_HEX.format("call_id"),
                          details="json_object('corruption', corruption)"),
    "feedback": lambda: _sel("feedback", feedback_id=_HEX.format("feedback_id"), call_id=_HEX.format("call_id"),
                             user_id=_USER.format("user_n"), ts=_secs_to_ts("t")),
    "events": lambda: _sel("events", event_id=_HEX.format("event_n"), user_id=_USER.format("user_n"),
                           ts=_secs_to_ts("t"),
                           properties="CASE WHEN call_n IS NOT NULL THEN json_object('call_id', "
                                      "printf('%016x', call_n)) END"),
    "assignments": lambda: _sel("assignments", unit_id="coalesce(unit_id, printf('%016x%016x', trace, trace_b))",
                                ts=_secs_to_ts("t")),
    "guardrail_events": lambda: _sel("guardrail_events", guard_event_id=_HEX.format("guard_n"),
                                     call_id=_HEX.format("call_id"), ts=_secs_to_ts("t")),
    "incidents": lambda: _sel("incidents"),
}


def _report(progress: Any, msg: str) -> None:
    if callable(progress):
        progress(msg)
    elif progress:
        print(msg, file=sys.stderr, flush=True)


def build_demo(path: str | os.PathLike = DEMO_DB, *, scale: float = 1.0, seed: int = 7,
               progress: Callable[[str], None] | bool | None = None) -> dict[str, Any]:
    """(Re)build the demo database from scratch.

    Parameters
    ----------
    path : str or path
        DuckDB file to write; an existing file (and its WAL) is deleted first.
    scale : float
        Volume multiplier: users, calls, events and answers grow linearly (scale 1: about 2,000 users and 70,000
        calls over 60 days).
    seed : int
        numpy seed; the same seed and scale give the same database content.
    progress : callable or bool, optional
        Called with one line per step (``True`` prints them to standard error).

    Returns
    -------
    dict
        ``{table: row count}`` for every canonical table, plus ``"seconds"`` (wall time of the build) and
        ``"real_data"`` (what was loaded through ingest, or why not).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> counts = build_demo(pathlib.Path(tempfile.mkdtemp()) / "demo.duckdb", scale=0.02)
    >>> counts["calls"] > 1000 and counts["incidents"] == 3
    True
    """
    from workbench.db import connect

    if not isinstance(path, (str, os.PathLike)):  # (a bool is neither)
        raise ParameterTypeError(f"build_demo: path must be a str or path of the DuckDB file to build, "
                                 f"got {type(path).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParameterTypeError(f"build_demo: seed must be an int, got {type(seed).__name__}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise ParameterError(f"build_demo: scale must be a positive number, got {scale!r}")
    t0 = time.perf_counter()
    path = Path(path)
    for p in (path, Path(str(path) + ".wal")):
        if p.exists():
            p.unlink()
    _report(progress, f"generating synthetic data (scale={scale:g}, seed={seed})")
    frames = simulate(scale, seed)
    from workbench._version import __version__

    source = f"synthetic:seed={seed},scale={scale:g}"
    db = connect(path)
    try:
        con = db.duckdb
        for table, df in frames.items():
            started = utc_now()
            run_id = f"demo-{table}-seed{seed}-scale{scale:g}"
            con.register("_demo_frame", df.to_arrow())
            con.execute(f'INSERT INTO "{table}" SELECT {_SELECT[table]()}, ? FROM _demo_frame', [run_id])
            con.unregister("_demo_frame")
            finished = utc_now()
            con.execute("INSERT INTO ingest_runs VALUES (?, ?, NULL, 'synthetic', ?, ?, ?, ?, ?, 0, 0, ?, NULL, NULL, NULL)",
                        [run_id, source, table, started, finished, df.height, df.height, __version__])
            _report(progress, f"  {table}: {df.height:,} rows")
        real = load_real_data(db, progress=progress)
        from workbench.io.prices import load_prices

        # the demo team's [[prices]] (the assumed Azure trace price) live in the repository's workbench.toml
        n = load_prices(db, config=DEMO_CONFIG if DEMO_CONFIG.exists() else None)
        _report(progress, f"  prices: {n:,} rows (genai-prices + workbench.toml)")
        counts: dict[str, Any] = {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in db.tables}
    finally:
        db.close()
    counts["real_data"] = real
    counts["seconds"] = round(time.perf_counter() - t0, 2)
    return counts


# --- real data through ingest ---------------------------------------------------------------------------------------

REAL_DATA = (
    # (files, mapping)
    (("traces/AzureLLMInferenceTrace_code.csv",), "mappings/azure_code.toml"),
    (("traces/AzureLLMInferenceTrace_conv.csv",), "mappings/azure_conv.toml"),
    (("halu_dev.jsonl",), "mappings/halu_answers.toml"),
    (("halu_dev.jsonl",), "mappings/halu_labels.toml"),
)


def load_real_data(db: "Workbench", *, datasets: str | os.PathLike = DATASETS,
                   progress: Callable[[str], None] | bool | None = None) -> dict[str, Any]:
    """Load the public datasets under ``datasets/`` through ``workbench.io.ingest`` with their mapping files.

    Returns ``{mapping name: ingest summary dict}``, or ``{"skipped": reason}`` when the files are missing.

    Examples
    --------
    A folder with the repository's mapping files and a one-answer ``halu_dev.jsonl`` (no Azure traces):

    >>> import json, shutil, tempfile, pathlib, workbench as wb
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = shutil.copytree(DATASETS / "mappings", d / "mappings")
    >>> _ = (d / "halu_dev.jsonl").write_text(json.dumps({"id": "q1", "question": "Capital of France?",
    ...     "contexts": ["Paris is the capital of France."], "answer": "Lyon.", "source": "demo", "label": 1}) + "\\n")
    >>> db = wb.connect(":memory:")
    >>> out = load_real_data(db, datasets=d)
    >>> out["azure_code"]
    {'skipped': 'missing .../traces/AzureLLMInferenceTrace_code.csv'}
    >>> out["halu_answers"]["inserted"], out["halu_labels"]["inserted"]
    (1, 1)
    >>> db.sql("select call_id, metric, value, label from evals").rows()  # the label derived from the 0/1 value
    [('q1', 'hallucination_label', 1.0, 'hallucinated')]
    """
    from workbench.io.ingest import ingest

    root = Path(datasets)
    out: dict[str, Any] = {}
    for files, mapping in REAL_DATA:
        paths = [root / f for f in files]
        missing = [str(p) for p in [*paths, root / mapping] if not p.exists()]
        if missing:
            out[Path(mapping).stem] = {"skipped": f"missing {', '.join(missing)}"}
            continue
        summary = ingest(db, [str(p) for p in paths], mapping=str(root / mapping))
        out[Path(mapping).stem] = summary.as_dict()
        _report(progress, f"  {mapping}: {str(summary).splitlines()[0]}")
    if (root / "mappings/halu_labels.toml").exists():
        # a mapping cannot express CASE: derive the discrete label of the halu_dev human labels from the 0/1 value
        db.duckdb.execute("UPDATE evals SET label = CASE WHEN value = 1 THEN 'hallucinated' ELSE 'supported' END "
                          "WHERE evaluator_version = 'halu_dev-1' AND label IS NULL")
    return out


# --- determinism ----------------------------------------------------------------------------------------------------

def table_checksums(db: "Workbench | str | os.PathLike") -> dict[str, str]:
    """md5 of every canonical table's content, rows in key order, lineage columns left out (run ids and load times
    differ between builds; the data must not).

    Examples
    --------
    The same row written by two different ingest runs: the same checksum.

    >>> import workbench as wb
    >>> a, b = wb.connect(":memory:"), wb.connect(":memory:")
    >>> for db, run in ((a, "r1"), (b, "r2")):
    ...     _ = db.duckdb.execute(f"insert into calls (call_id, ts, status, ingest_run_id) values "
    ...                           f"('x', '2026-01-01', 'ok', '{run}')")
    >>> sums = table_checksums(a)
    >>> sums == table_checksums(b), sums["calls"] == sums["answers"]
    (True, False)
    >>> sums["answers"]  # an empty table: the md5 of the empty string
    'd41d8cd98f00b204e9800998ecf8427e'
    """
    from workbench.db import as_workbench
    from workbench.schema import TABLES

    wb = as_workbench(db)
    out = {}
    for name in wb.tables:
        t = TABLES[name]
        drop = {"ingest_run_id", "run_id", "started_at", "finished_at"} if name == "ingest_runs" else {"ingest_run_id"}
        if name == "quarantine":
            drop = {"run_id"}
        cols = [c for c in t.names if c not in drop]
        row = "concat_ws('\x1f', " + ", ".join(f'coalesce(CAST("{c}" AS VARCHAR), \'\\N\')' for c in cols) + ")"
        q = f'select md5(coalesce(string_agg({row}, \'\x1e\' ORDER BY {row}), \'\')) from "{name}"'
        out[name] = wb.duckdb.execute(q).fetchone()[0]
    return out


# --- the whole pipeline ---------------------------------------------------------------------------------------------

def _headline(path: str | os.PathLike) -> dict[str, Any]:
    """The metrics step of the demo: the week's scorecard, SLO and budget status, as a reader would see them first."""
    import datetime as dt
    import warnings

    import polars as pl

    from workbench.metrics.cost import budget_status
    from workbench.db import connect
    from workbench.reports.publish import Report, resolve_period, scorecard
    from workbench.metrics.slo import slo_status

    with connect(path, read_only=True) as db, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, end, label = resolve_period(None, latest=db.calls.ts.max().execute())
        card = scorecard(Report(db, start=start, end=end), ["hallucination_rate", "latency_p95_ms", "cost_per_success_usd", "wau_count"])
        card = card.filter(pl.col("target").is_not_null())
        _, slo_firing = slo_status(db, at=end)
        # the budget month of the week's last instant (end is excluded: a week ending Monday the 1st is last month's)
        budgets, _ = budget_status(db, at=end - dt.timedelta(microseconds=1))
    alerts = budgets.filter(pl.col("alert").is_not_null()).select("feature", "alert").rows()
    return {"period": label, "table": card, "slo_firing": slo_firing, "budget_alerts": alerts or "none"}


def run_demo(path: str | os.PathLike = DEMO_DB, *, scale: float = 1.0, seed: int = 7,
             reports: str | os.PathLike | None = "reports") -> dict[str, Any]:
    """Build the demo database, then run the rest of the pipeline as far as it exists, and print a summary.

    Steps after :func:`build_demo`, each only when its module is importable: score the answers
    (``workbench.hallucination.evaluate``), publish the reports (``workbench.reports.run_all``; skipped when
    ``reports`` is None).

    Examples
    --------
    A run builds and scores a whole database (seconds even at a small ``scale``), so this shows only what happens
    before anything is written: the arguments are checked, and a bad one leaves no file behind.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.duckdb"
    >>> run_demo(path, scale=0, reports=None)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: build_demo: scale must be a positive number, got 0
    >>> run_demo(path, seed="7", reports=None)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: build_demo: seed must be an int, got str
    >>> path.exists()
    False
    """
    summary: dict[str, Any] = {"db": str(path)}
    counts = build_demo(path, scale=scale, seed=seed, progress=True)
    summary["counts"] = counts

    from workbench.db import connect
    from workbench.eval.score import evaluate

    with connect(path) as db:
        n = db.answers.count().execute()
        _report(True, f"scoring {n:,} answers with the offline hallucination detector")
        summary["evaluate"] = evaluate(db)

    summary["scorecard"] = _headline(path)

    if reports is not None:
        from workbench.reports.publish import available, run_all

        _report(True, f"publishing {len(available())} reports into {reports}/ (a notebook each, run by papermill)")
        summary["reports"] = [str(p) for p in run_all(str(path), out=reports)]

    from workbench.db import connect

    with connect(path, read_only=True) as db:  # counted again: evaluation adds rows to evals
        final = {t: db.duckdb.execute(f'select count(*) from "{t}"').fetchone()[0] for t in db.tables}
    summary["final_counts"] = final
    print(f"demo database: {path}  (built in {counts['seconds']:.1f} s, scale={scale:g}, seed={seed})")
    for table, n in final.items():
        print(f"  {table:18s} {n:>12,}")
    real = counts.get("real_data", {})
    if "skipped" in real:
        print(f"  real data: skipped ({real['skipped']})")
    if "evaluate" in summary:
        e = summary["evaluate"]
        print(f"  scored {e['scored']:,} answers with the {e['evaluator']} detector {e['version']} in "
              f"{e['seconds']:.1f} s ({e['unscorable']:,} unscorable, {e['failed']:,} failed)")
    from workbench.reports.publish import scorecard_text
    from workbench.reports.units import words

    head = summary["scorecard"]
    print(f"\nscorecard for {head['period']} (targets from workbench.toml):")
    print(scorecard_text(head["table"]))
    print(f"SLO burn-rate alerts: {'firing' if head['slo_firing'] else 'none firing'}")
    alerts = head["budget_alerts"]
    print("budget alerts: " + (", ".join(f"{words(f)} {level}" for f, level in alerts) if alerts != "none" else "none"))
    if summary.get("reports"):
        print(f"reports: {reports}/ ({len(summary['reports'])} published)")
        for p in summary["reports"]:
            print(f"  {p}/report.html")
    return summary
