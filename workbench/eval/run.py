"""The evaluation run: score pending answers into ``evals`` (the data flow's second hop).

The plumbing of one run, whatever the evaluator: select the answers the evaluator (name + version + metric) has not scored yet (an
anti-join, so an unchanged evaluator never re-scores and a new version does), stream them from DuckDB in Arrow
batches, score them, and upsert one ``evals`` row per answer atomically, with a progress bar on a terminal. The
offline detector (:mod:`workbench.eval.score`), the LLM judge (:mod:`workbench.eval.judge`) and ragas
(:mod:`workbench.eval.ragas`) all run on it, and every run returns one :class:`EvalSummary` shape.

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
...                       "('a', ['Water boils at 100 C at sea level.'], 'Water boils at 100 C.')")
>>> wb.evaluate(db, progress=False)["scored"]
1
"""

from __future__ import annotations

import datetime as _dt
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from workbench.schema import BATCH_ROWS, SCORE_METRIC, utc_now

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import pyarrow as pa

    from workbench.db import Workbench

__all__ = ["EvalSummary", "summary", "pending", "stream", "write_evals", "now", "new_run_id", "progress_bar", "claims_explanation"]

EVALS_ARROW_COLUMNS = (
    ("call_id", "string"), ("metric", "string"), ("value", "float64"), ("label", "string"),
    ("evaluator", "string"), ("evaluator_version", "string"), ("run_id", "string"), ("repeat", "int32"),
    ("ts", "timestamp"), ("explanation", "string"), ("details", "string"),
)


def now() -> _dt.datetime:
    """The time an evaluation is recorded at (naive UTC, as the tables store it)."""
    return utc_now()


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def answers_view(db: "Workbench") -> "ir.Table":
    """Answers left-joined to their calls: the answer columns plus every calls column a ``where`` may name."""
    a, c = db.answers, db.calls
    extra = [col for col in c.columns if col not in a.columns and col != "attributes"]
    cc = c.select(_c_call_id=c.call_id, call_ts=c.ts, **{col: c[col] for col in extra})
    j = a.left_join(cc, a.call_id == cc._c_call_id)
    return j.drop("_c_call_id")


def pending(db: "Workbench", *, where: Any, evaluator: str, version: str, metric: str, repeat: int = 0,
             require: Iterable[str] = (), retry_failed: bool = True) -> tuple["ir.Table", "ir.Table"]:
    """(selected answers, those not yet scored by evaluator+version+metric at this repeat index).

    With ``retry_failed``, a row written after a transport failure (``details.error`` set) does not count as scored,
    so the next run asks again; a reply that was received but did not parse stays unscorable.
    """
    from workbench.db import scope

    sel = scope(answers_view(db), time=None, where=where)
    for col in require:
        sel = sel.filter(sel[col].notnull())
    e = db.evals
    done = e.filter(e.evaluator == evaluator, e.evaluator_version == version, e.metric == metric,
                    e.repeat.fill_null(0) == repeat)
    if retry_failed:
        done = done.filter(done.details["error"].isnull())
    return sel, sel.anti_join(done.select("call_id"), "call_id")


def stream(db: "Workbench", expr: "ir.Table", batch_rows: int = BATCH_ROWS) -> Iterator[list[dict]]:
    """Rows of ``expr`` in Arrow batches, read on a separate DuckDB cursor so the caller can write while reading."""
    sql = db.ibis.compile(expr)
    cur = db.duckdb.cursor()
    try:
        reader = cur.execute(sql).fetch_record_batch(batch_rows)
        for batch in reader:
            if batch.num_rows:
                yield batch.to_pylist()
    finally:
        cur.close()


def evals_table(rows: list[Mapping[str, Any]]) -> "pa.Table":
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int32": pa.int32(), "timestamp": pa.timestamp("us")}
    schema = pa.schema([(name, types[t]) for name, t in EVALS_ARROW_COLUMNS])
    cols = {name: [r.get(name) for r in rows] for name, _ in EVALS_ARROW_COLUMNS}
    return pa.table(cols, schema=schema)


def write_evals(db: "Workbench", rows: list[Mapping[str, Any]]) -> int:
    """Upsert ``rows`` into ``evals`` on its key (call_id, metric, evaluator, evaluator_version, repeat), atomically."""
    if not rows:
        return 0
    con = db.duckdb
    name = f"_wb_evals_{uuid.uuid4().hex[:8]}"
    con.register(name, evals_table(rows))
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f'DELETE FROM evals AS e USING "{name}" AS b WHERE e.call_id = b.call_id AND e.metric = b.metric '
                "AND e.evaluator = b.evaluator AND e.evaluator_version = b.evaluator_version "
                "AND coalesce(e.repeat, 0) = b.repeat"
            )
            cols = ", ".join(f'"{c}"' for c, _ in EVALS_ARROW_COLUMNS)
            sel = ", ".join('CAST("details" AS JSON)' if c == "details" else f'"{c}"' for c, _ in EVALS_ARROW_COLUMNS)
            con.execute(f'INSERT INTO evals ({cols}) SELECT {sel} FROM "{name}"')
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister(name)
    return len(rows)


def progress_bar(total: int, progress: bool | None, desc: str):
    from tqdm.auto import tqdm

    # progress=None: a bar only when stderr is a terminal (tqdm's disable=None), quiet in CI, logs and papermill.
    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, unit="answer", disable=disable, file=sys.stderr)


def claims_explanation(claims: list[dict], total: int) -> str:
    bad = [c for c in claims if not c.get("supported")]
    if not bad:
        return f"all {total} claims supported"
    parts = [f"{c['text']!r} ({c.get('reason') or 'not supported'})" for c in bad]
    return f"{len(bad)} of {total} claims unsupported: " + "; ".join(parts)


class EvalSummary(dict):
    """What an evaluation run did, the same keys for every evaluator (a dict, so it prints and serialises as JSON).

    Always present: ``evaluator``, ``version``, ``metric``, ``run_id`` (None on a dry run), ``dry_run``, ``scored``
    (rows written with a value), ``unscorable`` (rows written without one), ``skipped`` (already scored by this
    version), ``failed`` (transport failures, retried next run), ``to_score``, ``cost_usd`` (None when unknown) and
    ``seconds``. An evaluator may add its own keys (a judge's tokens and cache hits).
    """


#: The keys every :class:`EvalSummary` has, with their value when an evaluator has nothing to say.
SUMMARY_DEFAULTS: dict[str, Any] = {
    "evaluator": None, "version": None, "metric": SCORE_METRIC, "run_id": None, "dry_run": False, "scored": 0,
    "unscorable": 0, "skipped": 0, "failed": 0, "to_score": 0, "cost_usd": None, "seconds": 0.0,
}


def summary(fields: Mapping[str, Any]) -> EvalSummary:
    """An :class:`EvalSummary` from an evaluator's fields, every common key filled.

    >>> s = summary({"evaluator": "support", "version": "1", "scored": 3})
    >>> s["scored"], s["unscorable"], s["dry_run"], s["cost_usd"]
    (3, 0, False, None)
    """
    out = EvalSummary(SUMMARY_DEFAULTS)
    out.update(fields)
    return out

