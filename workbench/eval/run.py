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
    """The time an evaluation is recorded at (naive UTC, as the tables store it).

    Examples
    --------
    >>> import datetime as dt
    >>> t = now()
    >>> t.tzinfo is None, abs(t - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)) < dt.timedelta(seconds=5)
    (True, True)
    """
    return utc_now()


def new_run_id() -> str:
    """A new evaluation run id (``evals.run_id``): 16 random hexadecimal characters.

    Examples
    --------
    >>> run_id = new_run_id()
    >>> len(run_id), int(run_id, 16) >= 0, run_id != new_run_id()
    (16, True, True)
    """
    return uuid.uuid4().hex[:16]


def answers_view(db: "Workbench") -> "ir.Table":
    """Answers left-joined to their calls: the answer columns plus every calls column a ``where`` may name.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('a', '2026-01-05', 'faq', 'ok');"
    ...                       "insert into answers (call_id, answer) values ('a', 'Yes.'), ('b', 'No.')")
    >>> v = answers_view(db)
    >>> v.select("call_id", "answer", "feature").order_by("call_id").to_polars().rows()  # b: no logged call
    [('a', 'Yes.', 'faq'), ('b', 'No.', None)]
    """
    a, c = db.answers, db.calls
    extra = [col for col in c.columns if col not in a.columns and col != "attributes"]
    cc = c.select(_c_call_id=c.call_id, call_ts=c.ts, **{col: c[col] for col in extra})
    j = a.left_join(cc, a.call_id == cc._c_call_id)
    return j.drop("_c_call_id")


def pending(db: "Workbench", *, where: Any, evaluator: str, version: str, metric: str, repeat: int = 0,
             require: Iterable[str] = (), retry_failed: bool = True) -> tuple["ir.Table", "ir.Table"]:
    """(selected answers, those not yet scored by evaluator+version+metric at this repeat index).

    With ``retry_failed``, a row written after a failure (``details.error`` set: a request that failed, or a judge reply
    that held no verdict, such as a refusal) does not count as scored, so the next run asks again; a reply that was
    received but did not parse stays unscorable.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
    ...                       "('a', ['x'], 'x'), ('b', ['y'], 'y'), ('c', ['z'], 'z')")
    >>> row = {"metric": "hallucination_score", "evaluator": "support", "evaluator_version": "1", "repeat": 0,
    ...        "ts": now()}
    >>> _ = write_evals(db, [{**row, "call_id": "a", "value": 0.1},
    ...                      {**row, "call_id": "b", "details": '{"error": "HTTP 503"}'}])  # b: a transport failure
    >>> sel, todo = pending(db, where=None, evaluator="support", version="1", metric="hallucination_score")
    >>> sel.count().execute(), todo.select("call_id").order_by("call_id").to_polars()["call_id"].to_list()
    (3, ['b', 'c'])
    >>> pending(db, where=None, evaluator="support", version="2", metric="hallucination_score")[1].count().execute()
    3
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
    """Rows of ``expr`` in Arrow batches, read on a separate DuckDB cursor so the caller can write while reading.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, answer) values ('a', 'x'), ('b', 'y')")
    >>> list(stream(db, db.answers.select("call_id", "answer").order_by("call_id")))  # one batch of dicts
    [[{'call_id': 'a', 'answer': 'x'}, {'call_id': 'b', 'answer': 'y'}]]
    >>> [[r["call_id"] for r in batch] for batch in stream(db, db.answers.order_by("call_id"), batch_rows=1)]
    [['a'], ['b']]
    """
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
    """Rows of ``evals`` as an Arrow table of the table's columns and types (a column a row lacks is null), for one
    insert of many rows (:func:`write_evals`).

    Examples
    --------
    >>> t = evals_table([{"call_id": "a", "metric": "hallucination_score", "value": 0.25, "repeat": 0}])
    >>> t.num_rows, t.schema.field("value").type, t.column("evaluator").to_pylist()
    (1, DataType(double), [None])
    """
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int32": pa.int32(), "timestamp": pa.timestamp("us")}
    schema = pa.schema([(name, types[t]) for name, t in EVALS_ARROW_COLUMNS])
    cols = {name: [r.get(name) for r in rows] for name, _ in EVALS_ARROW_COLUMNS}
    return pa.table(cols, schema=schema)


def write_evals(db: "Workbench", rows: list[Mapping[str, Any]]) -> int:
    """Upsert ``rows`` into ``evals`` on its key (call_id, metric, evaluator, evaluator_version, repeat), atomically.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> row = {"call_id": "a", "metric": "hallucination_score", "evaluator": "support", "evaluator_version": "1",
    ...        "repeat": 0, "ts": now()}
    >>> write_evals(db, [{**row, "value": 0.1}]), write_evals(db, [{**row, "value": 0.3}]), write_evals(db, [])
    (1, 1, 0)
    >>> db.sql("select call_id, value from evals").rows()  # the second write replaced the first
    [('a', 0.3)]
    """
    from workbench.db import rollback

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
            rollback(con)
            raise
    finally:
        con.unregister(name)
    return len(rows)


def progress_bar(total: int, progress: bool | None, desc: str, *, unit: str = "answer"):
    """A tqdm bar over ``total`` items (``unit``: answers by default) on standard error: shown when ``progress`` is
    True, hidden when False, and when None shown only if standard error is a terminal.

    Examples
    --------
    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err), progress_bar(3, True, "scoring") as bar:
    ...     _ = bar.update(3)
    >>> print(err.getvalue().split("\\r")[-1].strip())
    scoring: 100%|...| 3/3 [...answer/s]
    >>> with progress_bar(3, False, "scoring") as bar:
    ...     bar.disable
    True
    """
    from tqdm.auto import tqdm

    # progress=None: a bar only when stderr is a terminal (tqdm's disable=None), quiet in CI, logs and papermill.
    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr)


def claims_explanation(claims: list[dict], total: int) -> str:
    """The ``explanation`` of an answer checked claim by claim: the unsupported claims (each with its ``reason``) out
    of ``total``.

    Examples
    --------
    >>> claims_explanation([{"text": "Paris is in France", "supported": True}], 1)
    'all 1 claims supported'
    >>> claims_explanation([{"text": "Paris is in France", "supported": True},
    ...                     {"text": "Paris has 90M people", "supported": False, "reason": "contradicted"},
    ...                     {"text": "It rains daily"}], 3)
    "2 of 3 claims unsupported: 'Paris has 90M people' (contradicted); 'It rains daily' (not supported)"
    """
    bad = [c for c in claims if not c.get("supported")]
    if not bad:
        return f"all {total} claims supported"
    parts = [f"{c['text']!r} ({c.get('reason') or 'not supported'})" for c in bad]
    return f"{len(bad)} of {total} claims unsupported: " + "; ".join(parts)


class EvalSummary(dict):
    """What an evaluation run did, the same keys for every evaluator (a dict, so it prints and serialises as JSON).

    Always present: ``evaluator``, ``version``, ``metric``, ``run_id`` (None on a dry run), ``dry_run``, ``scored``
    (rows written with a value), ``unscorable`` (rows written without one), ``skipped`` (already scored by this
    version), ``failed`` (failed requests and replies with no verdict, asked again next run), ``to_score``, ``cost_usd`` (None when unknown) and
    ``seconds``. An evaluator may add its own keys (a judge's tokens and cache hits).

    Examples
    --------
    >>> import json, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
    ...                       "('a', ['Water boils at 100 C at sea level.'], 'Water boils at 100 C.')")
    >>> s = wb.evaluate(db, progress=False)  # the offline detector
    >>> type(s).__name__, s["evaluator"], s["metric"], s["scored"], s["skipped"]
    ('EvalSummary', 'support', 'hallucination_score', 1, 0)
    >>> again = wb.evaluate(db, progress=False)  # nothing new to score
    >>> again["scored"], again["skipped"], json.loads(json.dumps(again)) == again
    (0, 1, True)
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

