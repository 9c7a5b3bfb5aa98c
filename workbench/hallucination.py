"""Hallucination: score answers into ``evals``, then aggregate the scores per feature, model, prompt version and time.

Two halves, the second never recomputing the first:

* **Evaluate** (row level, written once): :func:`evaluate` scores the answers that the chosen evaluator has not scored
  yet (an anti-join on evaluator name and version, so an unchanged detector never re-scores and a new version does)
  and writes one ``evals`` row per answer. The default evaluator is the offline detector (:mod:`workbench.detector`);
  ``detector="judge"`` routes to the LLM judge (:mod:`workbench.judge`), ``detector="ragas:<metric>"`` to ragas
  (:mod:`workbench.ragas_eval`). Human labels come in through :func:`import_labels`, as one more evaluator.
* **Aggregate** (the suite): :func:`hallucination_rate`, :func:`hallucination_score`, :func:`unscorable_rate` return
  the tidy frame of every workbench metric; :func:`agreement`, :func:`judge_variance` and :func:`worst_offenders`
  answer "can I trust this score?" and "which answers, which claims?".

Conventions (a contract with the other modules)
-----------------------------------------------
* Row metric ``hallucination_score``: the probability that an answer holds an unsupported claim; **higher is worse**.
  Label ``hallucinated`` | ``supported`` | ``unscorable``; the value is null when unscorable.
* Human labels: metric ``hallucination_label``, value 1 (hallucinated) / 0 (supported), evaluator ``human``.
* Unscorable answers (empty answer, no context, a judge reply that does not parse) are written and counted by
  :func:`unscorable_rate`, never dropped; :func:`hallucination_rate` is the share of the *scored* answers.
* The time of a score is the time of the call (``calls.ts``), else of the answer (``answers.ts``), else of the score.
* Only repeat 0 of a repeat-k judge run enters the aggregates; the other repeats feed :func:`judge_variance`.

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute('''
...   insert into calls (call_id, ts, feature, model, status) values
...     ('a', '2026-03-02 09:00', 'support', 'm1', 'ok'), ('b', '2026-03-02 10:00', 'support', 'm1', 'ok'),
...     ('c', '2026-03-02 11:00', 'support', 'm2', 'ok'), ('d', '2026-03-02 12:00', 'search', 'm2', 'ok');
...   insert into answers (call_id, question, contexts, answer) values
...     ('a', 'When did it open?', ['The tower opened in 1889.'], 'It opened in 1889.'),
...     ('b', 'When did it open?', ['The tower opened in 1889.'], 'It opened in 1925.'),
...     ('c', 'Where is it?', ['The tower is in Paris.'], 'It is in Paris, and Rome.'),
...     ('d', 'Who built it?', [], 'Gustave Eiffel built it.')''')
>>> summary = evaluate(db, progress=False)
>>> summary["scored"], summary["unscorable"], summary["skipped"]
(3, 1, 0)
>>> evaluate(db, progress=False)["scored"]        # nothing new to score: the detector version did not change
0
>>> hallucination_rate(db, period="all").select("feature", "value", "n").rows()
[('search', None, 0), ('support', 0.666667, 3)]
>>> unscorable_rate(db, period="all").select("feature", "value", "n").rows()
[('search', 1.0, 1), ('support', 0.0, 3)]
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import stats

from workbench.db import as_workbench

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl
    import pyarrow as pa

    from workbench.db import Workbench

__all__ = [
    "SCORE_METRIC",
    "LABEL_METRIC",
    "evaluate",
    "import_labels",
    "hallucination_rate",
    "hallucination_score",
    "unscorable_rate",
    "agreement",
    "judge_variance",
    "worst_offenders",
]

SCORE_METRIC = "hallucination_score"
LABEL_METRIC = "hallucination_label"
HALLUCINATED, SUPPORTED, UNSCORABLE = "hallucinated", "supported", "unscorable"
#: Rows per Arrow batch read from DuckDB while scoring (bounded memory on any table size).
BATCH_ROWS = 2_000

_EVALS_ARROW_COLUMNS = (
    ("call_id", "string"), ("metric", "string"), ("value", "float64"), ("label", "string"),
    ("evaluator", "string"), ("evaluator_version", "string"), ("run_id", "string"), ("repeat", "int32"),
    ("ts", "timestamp"), ("explanation", "string"), ("details", "string"),
)


# ------------------------------------------------------------------------------------------------
# Shared plumbing for the three evaluator modules (detector here, judge.py, ragas_eval.py)
# ------------------------------------------------------------------------------------------------


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def _new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def _answers_view(db: "Workbench") -> "ir.Table":
    """Answers left-joined to their calls: the answer columns plus every calls column a ``where`` may name."""
    a, c = db.answers, db.calls
    extra = [col for col in c.columns if col not in a.columns and col != "attributes"]
    cc = c.select(_c_call_id=c.call_id, call_ts=c.ts, **{col: c[col] for col in extra})
    j = a.left_join(cc, a.call_id == cc._c_call_id)
    return j.drop("_c_call_id")


def _pending(db: "Workbench", *, where: Any, evaluator: str, version: str, metric: str, repeat: int = 0,
             require: Iterable[str] = (), retry_failed: bool = True) -> tuple["ir.Table", "ir.Table"]:
    """(selected answers, those not yet scored by evaluator+version+metric at this repeat index).

    With ``retry_failed``, a row written after a transport failure (``details.error`` set) does not count as scored,
    so the next run asks again; a reply that was received but did not parse stays unscorable.
    """
    from workbench.metrics import scope

    sel = scope(_answers_view(db), time=None, where=where)
    for col in require:
        sel = sel.filter(sel[col].notnull())
    e = db.evals
    done = e.filter(e.evaluator == evaluator, e.evaluator_version == version, e.metric == metric,
                    e.repeat.fill_null(0) == repeat)
    if retry_failed:
        done = done.filter(done.details["error"].isnull())
    return sel, sel.anti_join(done.select("call_id"), "call_id")


def _stream(db: "Workbench", expr: "ir.Table", batch_rows: int = BATCH_ROWS) -> Iterator[list[dict]]:
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


def _evals_table(rows: list[Mapping[str, Any]]) -> "pa.Table":
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int32": pa.int32(), "timestamp": pa.timestamp("us")}
    schema = pa.schema([(name, types[t]) for name, t in _EVALS_ARROW_COLUMNS])
    cols = {name: [r.get(name) for r in rows] for name, _ in _EVALS_ARROW_COLUMNS}
    return pa.table(cols, schema=schema)


def _write_evals(db: "Workbench", rows: list[Mapping[str, Any]]) -> int:
    """Upsert ``rows`` into ``evals`` on its key (call_id, metric, evaluator, evaluator_version, repeat), atomically."""
    if not rows:
        return 0
    con = db.duckdb
    name = f"_wb_evals_{uuid.uuid4().hex[:8]}"
    con.register(name, _evals_table(rows))
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f'DELETE FROM evals AS e USING "{name}" AS b WHERE e.call_id = b.call_id AND e.metric = b.metric '
                "AND e.evaluator = b.evaluator AND e.evaluator_version = b.evaluator_version "
                "AND coalesce(e.repeat, 0) = b.repeat"
            )
            cols = ", ".join(f'"{c}"' for c, _ in _EVALS_ARROW_COLUMNS)
            sel = ", ".join('CAST("details" AS JSON)' if c == "details" else f'"{c}"' for c, _ in _EVALS_ARROW_COLUMNS)
            con.execute(f'INSERT INTO evals ({cols}) SELECT {sel} FROM "{name}"')
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister(name)
    return len(rows)


def _progress_bar(total: int, progress: bool | None, desc: str):
    from tqdm.auto import tqdm

    # progress=None: a bar only when stderr is a terminal (tqdm's disable=None), quiet in CI, logs and papermill.
    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, unit="answer", disable=disable, file=sys.stderr)


def _claims_explanation(claims: list[dict], total: int) -> str:
    bad = [c for c in claims if not c.get("supported")]
    if not bad:
        return f"all {total} claims supported"
    parts = [f"{c['text']!r} ({c.get('reason') or 'not supported'})" for c in bad]
    return f"{len(bad)} of {total} claims unsupported: " + "; ".join(parts)


# ------------------------------------------------------------------------------------------------
# Evaluate
# ------------------------------------------------------------------------------------------------


def _detection_row(call_id: str, d: Any, *, evaluator: str, version: str, run_id: str, ts: _dt.datetime,
                   threshold: float) -> dict:
    claims = [
        {"text": c.text, "supported": c.reason is None, "support": c.support, "evidence": c.evidence or None,
         "reason": c.reason}
        for c in d.claims
    ]
    if d.unscorable:
        label, value, expl = UNSCORABLE, None, "no claim to check: the answer is empty or there is no context"
    else:
        value = float(d.score)
        label = HALLUCINATED if d.label else SUPPORTED
        expl = _claims_explanation(claims, len(claims))
    return {
        "call_id": call_id, "metric": SCORE_METRIC, "value": value, "label": label, "evaluator": evaluator,
        "evaluator_version": version, "run_id": run_id, "repeat": 0, "ts": ts, "explanation": expl,
        "details": json.dumps({"threshold": threshold, "claims": claims}, ensure_ascii=False),
    }


def evaluate(
    db: "Workbench | str",
    *,
    detector: Any = None,
    where: Any = None,
    config: Any = None,
    dry_run: bool = False,
    repeat: int = 1,
    progress: bool | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict:
    """Score the answers not yet scored by an evaluator (name + version) and write one ``evals`` row per answer.

    Parameters
    ----------
    db : Workbench or path
    detector : None, str or module-like, optional
        ``None`` (or the offline detector's name): the offline detector :mod:`workbench.detector`.
        ``"judge"`` or ``"judge:faithfulness"``: the LLM judge of :mod:`workbench.judge` (endpoint from ``[judge]``).
        ``"ragas:<metric>"``: a ragas metric (:mod:`workbench.ragas_eval`), e.g. ``"ragas:faithfulness"``.
        An object with ``DETECTOR_NAME``, ``DETECTOR_VERSION``, ``THRESHOLD`` and ``detect_batch`` is used as the
        detector (a custom or re-versioned detector).
    where : mapping or list of "col=value", optional
        Filter on the answers joined to their calls (``feature``, ``model``, ``prompt_version``, ``source``...).
    config : path, Config or JudgeConfig, optional
        ``workbench.toml`` for the LLM judges.
    dry_run : bool
        Count (and for a judge, estimate tokens and cost of) what would be scored; write and send nothing.
    repeat : int
        LLM judges only: score each answer k times (``repeat`` = 0..k-1) to measure the judge's variance.
    progress : bool, optional
        A tqdm bar; default: only when stderr is a terminal.
    batch_rows : int
        Rows per Arrow batch streamed from DuckDB.

    Returns
    -------
    dict
        ``evaluator``, ``version``, ``run_id``, ``scored`` (rows written with a value), ``unscorable`` (rows written
        as unscorable), ``skipped`` (already scored by this evaluator version), ``seconds``. A dry run returns the
        estimate instead (``dry_run: True``, ``to_score``, and for a judge the tokens and cost).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
    ...                       "('a', ['Water boils at 100 C at sea level.'], 'Water boils at 100 C.')")
    >>> s = evaluate(db, progress=False)
    >>> s["scored"], s["skipped"]
    (1, 0)
    >>> db.sql("select metric, label, repeat from evals").rows()
    [('hallucination_score', 'supported', 0)]
    """
    db = as_workbench(db)
    if isinstance(detector, str):
        name = detector.strip()
        if name == "judge" or name.startswith("judge:"):
            from workbench import judge

            metric = name.partition(":")[2] or "faithfulness"
            return judge.evaluate(db, metric=metric, where=where, config=config, dry_run=dry_run, repeat=repeat,
                                  progress=progress)
        if name.startswith("ragas:"):
            from workbench import ragas_eval

            return ragas_eval.evaluate(db, metric=name.partition(":")[2], where=where, config=config,
                                       dry_run=dry_run, repeat=repeat, progress=progress)
        from workbench import detector as offline

        if name not in (offline.DETECTOR_NAME, "offline", "detector"):
            raise ValueError(
                f"evaluate: unknown detector {detector!r}; expected None, {offline.DETECTOR_NAME!r}, 'judge', "
                "'judge:faithfulness' or 'ragas:<metric>'"
            )
        detector = None
    if detector is None:
        from workbench import detector as det
    else:
        det = detector
        missing = [a for a in ("DETECTOR_NAME", "DETECTOR_VERSION", "detect_batch") if not hasattr(det, a)]
        if missing:
            raise TypeError(f"evaluate: detector object lacks {', '.join(missing)}")
    if not isinstance(repeat, int) or repeat != 1:
        raise ValueError(f"evaluate: repeat applies to LLM judges; the offline detector is deterministic (got {repeat!r})")
    evaluator, version = str(det.DETECTOR_NAME), str(det.DETECTOR_VERSION)
    threshold = float(getattr(det, "THRESHOLD", 0.5))
    t0 = time.perf_counter()
    sel, todo = _pending(db, where=where, evaluator=evaluator, version=version, metric=SCORE_METRIC)
    total, n_todo = int(sel.count().execute()), int(todo.count().execute())
    if dry_run:
        return {"evaluator": evaluator, "version": version, "run_id": None, "dry_run": True, "to_score": n_todo,
                "skipped": total - n_todo, "cost_usd": 0.0, "seconds": round(time.perf_counter() - t0, 3)}
    run_id, scored, unscorable = _new_run_id(), 0, 0
    with _progress_bar(n_todo, progress, f"eval {evaluator} {version}") as bar:
        for rows in _stream(db, todo.select("call_id", "question", "contexts", "answer"), batch_rows):
            ts = _now()
            inputs = [{"answer": r["answer"] or "", "contexts": r["contexts"] or [], "question": r["question"]}
                      for r in rows]
            out = [
                _detection_row(r["call_id"], d, evaluator=evaluator, version=version, run_id=run_id, ts=ts,
                               threshold=threshold)
                for r, d in zip(rows, det.detect_batch(inputs, threshold=threshold))
            ]
            _write_evals(db, out)
            bad = sum(o["label"] == UNSCORABLE for o in out)
            unscorable += bad
            scored += len(out) - bad
            bar.update(len(out))
    return {"evaluator": evaluator, "version": version, "run_id": run_id, "scored": scored,
            "skipped": total - n_todo, "unscorable": unscorable, "seconds": round(time.perf_counter() - t0, 3)}


_TRUE = {"1", "true", "yes", "y", "t", HALLUCINATED}
_FALSE = {"0", "false", "no", "n", "f", SUPPORTED}


def import_labels(
    db: "Workbench | str",
    path_or_frame: Any,
    *,
    evaluator: str = "human",
    version: str = "1",
    label_column: str | None = None,
) -> dict:
    """Load human (or any external) hallucination labels into ``evals``, as an evaluator like any other.

    Parameters
    ----------
    db : Workbench or path
    path_or_frame : path (CSV, JSONL, Parquet) or polars/pandas frame or list of dicts
        One row per answer: ``call_id`` and a label column (``label``, ``hallucinated`` or ``value``; or
        ``label_column``) holding 1/0, true/false or ``hallucinated``/``supported``. Optional ``explanation``.
    evaluator, version : str
        Stored as ``evals.evaluator`` / ``evaluator_version``; re-importing the same version replaces the labels.
    label_column : str, optional
        The label column when it has another name.

    Returns
    -------
    dict
        ``evaluator``, ``version``, ``run_id``, ``imported`` (rows), ``hallucinated`` (of which labelled 1).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, answer) values ('a', 'x'), ('b', 'y')")
    >>> import_labels(db, [{"call_id": "a", "label": 1}, {"call_id": "b", "label": "supported"}])["imported"]
    2
    >>> db.sql("select call_id, metric, value, label from evals order by call_id").rows()
    [('a', 'hallucination_label', 1.0, 'hallucinated'), ('b', 'hallucination_label', 0.0, 'supported')]
    """
    import polars as pl

    db = as_workbench(db)
    fn = "import_labels"
    if isinstance(path_or_frame, (str, Path)):
        p = Path(path_or_frame)
        if not p.exists():
            raise FileNotFoundError(f"{fn}: no file at {p}")
        suffix = p.suffix.lower()
        if suffix == ".csv":
            df = pl.read_csv(p, infer_schema_length=0)
        elif suffix in (".jsonl", ".ndjson"):
            df = pl.read_ndjson(p)
        elif suffix == ".parquet":
            df = pl.read_parquet(p)
        else:
            raise ValueError(f"{fn}: {p}: expected .csv, .jsonl or .parquet, got {suffix or 'no suffix'}")
        where = str(p)
    elif isinstance(path_or_frame, pl.DataFrame):
        df, where = path_or_frame, "frame"
    elif isinstance(path_or_frame, list):
        df, where = pl.DataFrame(path_or_frame), "list"
    else:
        try:
            df, where = pl.from_pandas(path_or_frame), "frame"
        except Exception:
            raise TypeError(f"{fn}: expected a path or a frame, got {type(path_or_frame).__name__}") from None
    if "call_id" not in df.columns:
        raise KeyError(f"{fn}: {where}: no column 'call_id'; columns: {', '.join(df.columns)}")
    col = label_column or next((c for c in ("label", "hallucinated", "value") if c in df.columns), None)
    if col is None or col not in df.columns:
        raise KeyError(f"{fn}: {where}: no label column (label, hallucinated or value); columns: {', '.join(df.columns)}")
    known = set(db.answers.select("call_id").to_polars()["call_id"].to_list())
    run_id, ts, rows = _new_run_id(), _now(), []
    expl = df["explanation"].to_list() if "explanation" in df.columns else [None] * df.height
    for i, (cid, raw) in enumerate(zip(df["call_id"].to_list(), df[col].to_list())):
        line = i + 1
        if cid is None or str(cid) not in known:
            raise ValueError(f"{fn}: {where} row {line}: call_id {cid!r} is not in answers")
        s = str(raw).strip().lower() if raw is not None else ""
        if isinstance(raw, bool):
            s = "1" if raw else "0"
        elif isinstance(raw, (int, float)) and raw in (0, 1):
            s = str(int(raw))
        if s in _TRUE:
            v = 1.0
        elif s in _FALSE:
            v = 0.0
        else:
            raise ValueError(f"{fn}: {where} row {line} column {col!r}: expected 1/0, true/false or "
                             f"hallucinated/supported, got {raw!r}")
        rows.append({"call_id": str(cid), "metric": LABEL_METRIC, "value": v, "label": HALLUCINATED if v else SUPPORTED,
                     "evaluator": evaluator, "evaluator_version": str(version), "run_id": run_id, "repeat": 0,
                     "ts": ts, "explanation": expl[i], "details": None})
    _write_evals(db, rows)
    return {"evaluator": evaluator, "version": str(version), "run_id": run_id, "imported": len(rows),
            "hallucinated": int(sum(r["value"] for r in rows))}


# ------------------------------------------------------------------------------------------------
# Aggregates
# ------------------------------------------------------------------------------------------------


def _default_metric(evaluator: str) -> str:
    return LABEL_METRIC if evaluator == "human" else SCORE_METRIC


def _latest_version(db: "Workbench", evaluator: str, metric: str) -> str | None:
    """The version of ``evaluator`` written most recently (versions are not ordered strings, times are)."""
    e = db.evals
    t = e.filter(e.evaluator == evaluator, e.metric == metric).group_by("evaluator_version").aggregate(last=e.ts.max())
    df = t.order_by(t["last"].desc()).limit(1).to_polars()
    return df["evaluator_version"][0] if df.height else None


def _resolve(db: "Workbench", evaluator: str | None, version: str | None, metric: str | None) -> tuple[str, str | None, str]:
    if evaluator is None:
        from workbench import detector

        evaluator, version = detector.DETECTOR_NAME, version or detector.DETECTOR_VERSION
    metric = metric or _default_metric(evaluator)
    if version is None:
        version = _latest_version(db, evaluator, metric)
    return evaluator, version, metric


def _scored(db: "Workbench", *, evaluator: str | None = None, version: str | None = None, metric: str | None = None,
            repeat: int = 0) -> "ir.Table":
    """One row per score: evals joined to answers (source) and calls (feature, model...), with ``ts`` = call time,
    else answer time, else score time."""
    import ibis

    evaluator, version, metric = _resolve(db, evaluator, version, metric)
    e, a, c = db.evals, db.answers, db.calls
    e = e.filter(e.metric == metric, e.evaluator == evaluator, e.repeat.fill_null(0) == repeat)
    e = e.filter(e.evaluator_version == version) if version is not None else e.filter(ibis.literal(False))
    ee = e.select("call_id", "value", "label", "evaluator", "evaluator_version", "run_id", "explanation",
                  eval_ts=e.ts, details=e.details.cast("string"))
    aa = a.select(_a_call_id=a.call_id, source=a.source, answer_ts=a.ts, question=a.question, answer=a.answer)
    extra = [col for col in c.columns if col not in ("call_id", "ts", "ingest_run_id", "attributes")]
    cc = c.select(_c_call_id=c.call_id, call_ts=c.ts, **{col: c[col] for col in extra})
    j = ee.left_join(aa, ee.call_id == aa._a_call_id).left_join(cc, ee.call_id == cc._c_call_id)
    j = j.drop("_a_call_id", "_c_call_id")
    return j.mutate(ts=ibis.coalesce(j.call_ts, j.answer_ts, j.eval_ts))


def _suite_input(db: Any, fn: str, *, by: Any, start: Any, end: Any, where: Any, evaluator: Any, version: Any,
                 metric: Any) -> tuple["Workbench", "ir.Table", list[str]]:
    from workbench.metrics import check_by, scope

    db = as_workbench(db)
    t = _scored(db, evaluator=evaluator, version=version, metric=metric)
    keys = check_by(t, by, fn=fn)
    return db, scope(t, start=start, end=end, where=where), keys


def hallucination_rate(db: Any, *, by: Any = ("feature",), period: str = "day", start: Any = None, end: Any = None,
                       where: Any = None, evaluator: str | None = None, version: str | None = None,
                       metric: str | None = None, confidence: float = 0.95) -> "pl.DataFrame":
    """Share of scored answers labelled hallucinated (above the evaluator's decision threshold), Wilson interval.

    Parameters
    ----------
    db : Workbench or path
    by : column names
        Any ``calls`` column (feature, model, prompt_version, variant...) or ``source`` (from ``answers``).
    period : {"hour", "day", "week", "month", "all"}
    start, end : date or timestamp, optional
        ``start <= ts < end`` on the call time (else answer time, else score time).
    where : mapping or list of "col=value", optional
    evaluator, version : str, optional
        Whose scores; default the offline detector at its current version. For another evaluator the default
        version is the one written most recently. ``evaluator="human"`` gives the labelled rate.
    metric : str, optional
        Default ``hallucination_score`` (``hallucination_label`` for ``human``).
    confidence : float

    Returns
    -------
    polars.DataFrame
        Tidy: keys, ``period_start``, ``metric`` = ``hallucination_rate``, ``value`` in 0..1 (lower is better),
        ``n`` = scored answers (unscorable ones excluded, see :func:`unscorable_rate`), ``lo``, ``hi``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute('''
    ...   insert into calls (call_id, ts, feature, status) values ('a', '2026-01-05', 'chat', 'ok'),
    ...     ('b', '2026-01-05', 'chat', 'ok'), ('c', '2026-01-06', 'chat', 'ok');
    ...   insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
    ...     ('a', 'hallucination_score', 0.9, 'hallucinated', 'j', '1', 0),
    ...     ('b', 'hallucination_score', 0.1, 'supported', 'j', '1', 0),
    ...     ('c', 'hallucination_score', null, 'unscorable', 'j', '1', 0)''')
    >>> hallucination_rate(db, evaluator="j", period="all").select("feature", "value", "n", "lo", "hi").rows()
    [('chat', 0.5, 2, 0.094531, 0.905469)]
    """
    from workbench.metrics import proportion

    _, t, keys = _suite_input(db, "hallucination_rate", by=by, start=start, end=end, where=where,
                              evaluator=evaluator, version=version, metric=metric)
    # Unscorable answers are outside the denominator; a group whose answers were all unscorable stays visible with
    # n = 0 (proportion() groups over every row).
    return proportion(t, t.label == HALLUCINATED, by=keys, period=period, metric="hallucination_rate", start=start,
                      denominator=t.label != UNSCORABLE, confidence=confidence)


def hallucination_score(db: Any, *, by: Any = ("feature",), period: str = "day", start: Any = None, end: Any = None,
                        where: Any = None, evaluator: str | None = None, version: str | None = None,
                        metric: str | None = None, confidence: float = 0.95) -> "pl.DataFrame":
    """Mean hallucination score of the scored answers, with a Student t interval (clipped to [0, 1]).

    Parameters are those of :func:`hallucination_rate`.

    Returns
    -------
    polars.DataFrame
        Tidy: ``metric`` = ``hallucination_score``, ``value`` = mean probability of an unsupported claim (lower is
        better), ``n`` = scored answers; ``lo``/``hi`` null when n < 2.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute('''
    ...   insert into answers (call_id, answer, source, ts) values ('a', 'x', 'test', '2026-01-05'),
    ...     ('b', 'y', 'test', '2026-01-05'), ('c', 'z', 'test', '2026-01-05');
    ...   insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
    ...     ('a', 'hallucination_score', 0.2, 'supported', 'j', '1', 0),
    ...     ('b', 'hallucination_score', 0.4, 'supported', 'j', '1', 0),
    ...     ('c', 'hallucination_score', 0.9, 'hallucinated', 'j', '1', 0)''')
    >>> hallucination_score(db, evaluator="j", by="source", period="all").select("source", "value", "n", "lo", "hi").rows()
    [('test', 0.5, 3, 0.0, 1.0)]
    """
    import numpy as np
    import polars as pl
    from scipy.stats import t as student_t

    from workbench.metrics import tidy, with_period

    _, t, keys = _suite_input(db, "hallucination_score", by=by, start=start, end=end, where=where,
                              evaluator=evaluator, version=version, metric=metric)
    t = with_period(t.filter(t.value.notnull() & (t.label.isnull() | (t.label != UNSCORABLE))), period, start=start)
    agg = t.group_by([*keys, "period_start"]).aggregate(
        value=t.value.mean(), n=t.value.count(), sd=t.value.std(how="sample")
    ).to_polars()
    n = agg["n"].to_numpy().astype(float)
    sd = agg["sd"].fill_null(np.nan).to_numpy().astype(float)
    mean = agg["value"].fill_null(np.nan).to_numpy().astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = student_t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
        half = np.where(n > 1, q * sd / np.sqrt(n), np.nan)
    agg = agg.with_columns(
        pl.Series("lo", np.clip(mean - half, 0, 1)).fill_nan(None),
        pl.Series("hi", np.clip(mean + half, 0, 1)).fill_nan(None),
    ).drop("sd")
    return tidy(agg, keys=keys, metric="hallucination_score")


def unscorable_rate(db: Any, *, by: Any = ("feature",), period: str = "day", start: Any = None, end: Any = None,
                    where: Any = None, evaluator: str | None = None, version: str | None = None,
                    metric: str | None = None, confidence: float = 0.95) -> "pl.DataFrame":
    """Share of evaluated answers the evaluator could not score (empty answer, no context, unparseable judge reply).

    Parameters are those of :func:`hallucination_rate`.

    Returns
    -------
    polars.DataFrame
        Tidy: ``metric`` = ``unscorable_rate`` (lower is better), ``n`` = every evaluated answer.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute('''
    ...   insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat, ts) values
    ...     ('a', 'hallucination_score', 0.9, 'hallucinated', 'j', '1', 0, '2026-01-05'),
    ...     ('b', 'hallucination_score', null, 'unscorable', 'j', '1', 0, '2026-01-05'),
    ...     ('c', 'hallucination_score', 0.1, 'supported', 'j', '1', 0, '2026-01-05'),
    ...     ('d', 'hallucination_score', 0.2, 'supported', 'j', '1', 0, '2026-01-05')''')
    >>> unscorable_rate(db, evaluator="j", by=(), period="all").select("value", "n").rows()
    [(0.25, 4)]
    """
    from workbench.metrics import proportion

    _, t, keys = _suite_input(db, "unscorable_rate", by=by, start=start, end=end, where=where,
                              evaluator=evaluator, version=version, metric=metric)
    return proportion(t, t.label == UNSCORABLE, by=keys, period=period, metric="unscorable_rate", start=start,
                      confidence=confidence)


# ------------------------------------------------------------------------------------------------
# Trust: agreement between evaluators, judge variance; and the worst answers
# ------------------------------------------------------------------------------------------------


def _binary_frame(db: "Workbench", evaluator: str, version: str | None, metric: str | None, repeat: int = 0):
    import polars as pl

    evaluator, version, metric = _resolve(db, evaluator, version, metric)
    e = db.evals
    t = e.filter(e.evaluator == evaluator, e.metric == metric, e.repeat.fill_null(0) == repeat,
                 e.evaluator_version == (version if version is not None else ""))
    df = t.select("call_id", "value", "label").to_polars()
    return df.with_columns(pl.col("label").fill_null("")), evaluator, version, metric


def _auroc_or_none(truth: Any, score: Any) -> float | None:
    import math
    import warnings as _w

    from workbench.stats import auroc

    with _w.catch_warnings():
        _w.simplefilter("ignore")  # one class only: reported as None in the agreement table
        v = auroc(truth, score)
    return None if math.isnan(v) else v


def agreement(
    db: Any,
    *,
    evaluator: str,
    reference: str = "human",
    version: str | None = None,
    reference_version: str | None = None,
    metric: str | None = None,
    reference_metric: str | None = None,
    threshold: float | None = None,
) -> "pl.DataFrame":
    """How well an evaluator agrees with a reference (human labels, or another evaluator) on the same answers.

    Parameters
    ----------
    db : Workbench or path
    evaluator : str
        The evaluator under test; its ``value`` is the score for AUROC.
    reference : str
        The reference evaluator (default ``human``): its label is the truth (hallucinated = 1).
    version, reference_version : str, optional
        Default: the version of each written most recently.
    metric, reference_metric : str, optional
        Default ``hallucination_score`` (``hallucination_label`` for ``human``).
    threshold : float, optional
        The evaluator predicts hallucinated when ``value >= threshold``; default: its own stored label.

    Returns
    -------
    polars.DataFrame
        One row: ``evaluator``, ``version``, ``reference``, ``reference_version``, ``threshold``, ``n`` (answers
        scored by both; unscorable on either side excluded and counted in ``n_unscorable``), ``positives``
        (reference hallucinated), ``auroc``, ``kappa``, ``precision``, ``recall``, ``f1``, ``accuracy``
        (all higher is better; null when undefined).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute('''insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
    ...   ('a', 'hallucination_score', 0.9, 'hallucinated', 'd', '1', 0), ('a', 'hallucination_label', 1, 'hallucinated', 'human', '1', 0),
    ...   ('b', 'hallucination_score', 0.2, 'supported', 'd', '1', 0),    ('b', 'hallucination_label', 0, 'supported', 'human', '1', 0),
    ...   ('c', 'hallucination_score', 0.6, 'hallucinated', 'd', '1', 0), ('c', 'hallucination_label', 0, 'supported', 'human', '1', 0)''')
    >>> agreement(db, evaluator="d").select("n", "auroc", "kappa", "precision", "recall").rows()
    [(3, 1.0, 0.4, 0.5, 1.0)]
    """
    import polars as pl

    db = as_workbench(db)
    left, evaluator, version, metric = _binary_frame(db, evaluator, version, metric)
    right, reference, reference_version, reference_metric = _binary_frame(db, reference, reference_version,
                                                                          reference_metric)
    j = left.join(right, on="call_id", how="inner", suffix="_ref")
    bad = (pl.col("label") == UNSCORABLE) | pl.col("value").is_null() | (pl.col("label_ref") == UNSCORABLE)
    n_unscorable = j.filter(bad).height
    j = j.filter(~bad)
    truth = j.select(
        pl.when(pl.col("label_ref").is_in([HALLUCINATED, SUPPORTED]))
        .then(pl.col("label_ref") == HALLUCINATED)
        .otherwise(pl.col("value_ref") >= 0.5)
    ).to_series().cast(pl.Int64).to_numpy()
    if threshold is None:
        pred = (j["label"] == HALLUCINATED).cast(pl.Int64).to_numpy()
    else:
        pred = (j["value"] >= threshold).cast(pl.Int64).to_numpy()
    score = j["value"].to_numpy()
    tp = int(((pred == 1) & (truth == 1)).sum())
    fp = int(((pred == 1) & (truth == 0)).sum())
    fn = int(((pred == 0) & (truth == 1)).sum())
    n = int(j.height)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    if n == 0:
        warnings.warn(f"agreement: no answer scored by both {evaluator!r} and {reference!r}", stacklevel=2)
    return pl.DataFrame([{
        "evaluator": evaluator, "version": version, "reference": reference, "reference_version": reference_version,
        "threshold": threshold, "n": n, "n_unscorable": n_unscorable, "positives": int(truth.sum()),
        "auroc": _auroc_or_none(truth, score) if n else None, "kappa": stats.cohen_kappa(pred, truth) if n else None,
        "precision": precision, "recall": recall, "f1": f1,
        "accuracy": float((pred == truth).mean()) if n else None,
    }], schema_overrides={"threshold": pl.Float64, "auroc": pl.Float64, "kappa": pl.Float64,
                          "precision": pl.Float64, "recall": pl.Float64, "f1": pl.Float64, "accuracy": pl.Float64})


def judge_variance(db: Any, *, evaluator: str, version: str | None = None, metric: str | None = None,
                   per_answer: bool = False) -> "pl.DataFrame":
    """How much a judge varies between repeat runs (``workbench eval --detector judge --repeat k``).

    Parameters
    ----------
    db : Workbench or path
    evaluator : str
        The judge, e.g. ``judge:gpt-4o-mini``.
    version : str, optional
        Default: the version written most recently.
    metric : str, optional
        Default ``hallucination_score``.
    per_answer : bool
        Return one row per answer instead of the summary.

    Returns
    -------
    polars.DataFrame
        Summary (one row): ``evaluator``, ``version``, ``answers`` (with at least 2 scored repeats), ``k`` (most
        repeats of an answer), ``mean_std`` (mean over answers of the sample standard deviation, ddof = 1, of their
        repeat scores; lower is better), ``flip_rate`` (share of answers whose label is not the same in every
        repeat) with its Wilson ``flip_lo``/``flip_hi``. Per answer: ``call_id``, ``k``, ``mean``, ``std``,
        ``labels``, ``flipped``. Unscorable repeats are left out of the std but count as a label.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute('''insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
    ...   ('a', 'hallucination_score', 0.0, 'supported', 'j', '1', 0), ('a', 'hallucination_score', 0.5, 'hallucinated', 'j', '1', 1),
    ...   ('b', 'hallucination_score', 1.0, 'hallucinated', 'j', '1', 0), ('b', 'hallucination_score', 1.0, 'hallucinated', 'j', '1', 1)''')
    >>> judge_variance(db, evaluator="j").select("answers", "k", "mean_std", "flip_rate").rows()
    [(2, 2, 0.176777, 0.5)]
    """
    import polars as pl

    from workbench.stats import wilson_interval

    db = as_workbench(db)
    evaluator, version, metric = _resolve(db, evaluator, version, metric)
    e = db.evals
    t = e.filter(e.evaluator == evaluator, e.metric == metric,
                 e.evaluator_version == (version if version is not None else ""))
    df = t.select("call_id", "value", "label", repeat=e.repeat.fill_null(0)).to_polars()
    per = (
        df.sort("call_id", "repeat")
        .group_by("call_id", maintain_order=True)
        .agg(k=pl.len(), mean=pl.col("value").mean(), std=pl.col("value").std(ddof=1),
             labels=pl.col("label"), flipped=pl.col("label").n_unique() > 1)
        .filter(pl.col("k") >= 2)
    )
    if per_answer:
        return per
    n = per.height
    flips = int(per["flipped"].sum()) if n else 0
    lo, hi = wilson_interval(flips, n)
    if n == 0:
        warnings.warn(f"judge_variance: no answer of {evaluator!r} has 2 or more repeats; run with repeat >= 2",
                      stacklevel=2)
    return pl.DataFrame([{
        "evaluator": evaluator, "version": version, "answers": n, "k": int(per["k"].max()) if n else 0,
        "mean_std": per["std"].mean() if n else None, "flip_rate": flips / n if n else None,
        "flip_lo": float(lo) if n else None, "flip_hi": float(hi) if n else None,
    }], schema_overrides={"mean_std": pl.Float64, "flip_rate": pl.Float64, "flip_lo": pl.Float64,
                          "flip_hi": pl.Float64})


def _truncate(s: str | None, n: int) -> str | None:
    if s is None or len(s) <= n:
        return s
    return s[: n - 1].rstrip() + "…"


def worst_offenders(
    db: Any,
    *,
    n: int = 20,
    by: Any = None,
    where: Any = None,
    start: Any = None,
    end: Any = None,
    evaluator: str | None = None,
    version: str | None = None,
    max_chars: int = 240,
) -> "pl.DataFrame":
    """The answers most likely unsupported, with the unsupported claims and the closest context passage.

    Parameters
    ----------
    db : Workbench or path
    n : int
        Answers to return (per group of ``by`` when given).
    by : column names, optional
        Top ``n`` per group (e.g. ``("feature",)``).
    where, start, end : optional
        As for :func:`hallucination_rate`.
    evaluator, version : str, optional
        Default: the offline detector at its current version.
    max_chars : int
        Question, answer and passage texts are truncated to this many characters.

    Returns
    -------
    polars.DataFrame
        ``call_id``, group keys, ``feature``, ``model``, ``prompt_version``, ``ts``, ``score`` (highest first),
        ``label``, ``unsupported_claims`` (claim and reason, ``; `` separated), ``evidence`` (the context passage
        closest to the first unsupported claim, when the evaluator recorded one), ``question``, ``answer``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute('''
    ...   insert into answers (call_id, question, contexts, answer) values
    ...     ('a', 'When?', ['The tower opened in 1889.'], 'It opened in 1925.'),
    ...     ('b', 'When?', ['The tower opened in 1889.'], 'It opened in 1889.')''')
    >>> _ = evaluate(db, progress=False)
    >>> worst_offenders(db, n=1).select("call_id", "label", "unsupported_claims", "evidence").rows()
    [('a', 'hallucinated', "'It opened in 1925.' (number 1925 not in context)", 'The tower opened in 1889.')]
    """
    import ibis
    import polars as pl

    from workbench.metrics import check_by, scope

    db = as_workbench(db)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"worst_offenders: n must be a positive int, got {n!r}")
    t = _scored(db, evaluator=evaluator, version=version)
    keys = check_by(t, by, fn="worst_offenders")
    t = scope(t, start=start, end=end, where=where)
    t = t.filter(t.value.notnull() & (t.label.isnull() | (t.label != UNSCORABLE)))
    if keys:
        rank = ibis.row_number().over(group_by=[t[k] for k in keys], order_by=[t.value.desc(), t.call_id])
        t = t.mutate(_rank=rank).filter(lambda x: x._rank < n).drop("_rank")
        order = [*keys, ibis.desc("value"), "call_id"]
    else:
        order = [ibis.desc("value"), "call_id"]
    t = t.order_by(order)
    if not keys:
        t = t.limit(n)
    shown = ["feature", "model", "prompt_version"]
    cols = ["call_id", *keys, *[c for c in shown if c not in keys], "ts", "value", "label", "details", "question",
            "answer"]
    df = t.select(*cols).to_polars()
    claims_txt, evidence = [], []
    for d in df["details"].to_list():
        claims = (json.loads(d) or {}).get("claims", []) if d else []
        bad = [c for c in claims if not c.get("supported", True)]
        claims_txt.append("; ".join(f"{c.get('text')!r} ({c.get('reason') or 'not supported'})" for c in bad) or None)
        ev = next((c.get("evidence") for c in bad if c.get("evidence")), None)
        evidence.append(_truncate(ev, max_chars))
    return df.drop("details").rename({"value": "score"}).with_columns(
        pl.Series("unsupported_claims", claims_txt, dtype=pl.String),
        pl.Series("evidence", evidence, dtype=pl.String),
        pl.col("question").map_elements(lambda s: _truncate(s, max_chars), return_dtype=pl.String),
        pl.col("answer").map_elements(lambda s: _truncate(s, max_chars), return_dtype=pl.String),
    ).select("call_id", *keys, *[c for c in shown if c not in keys], "ts", "score", "label", "unsupported_claims",
             "evidence", "question", "answer")


SUITE = {
    "hallucination_rate": hallucination_rate,
    "hallucination_score": hallucination_score,
    "unscorable_rate": unscorable_rate,
}
