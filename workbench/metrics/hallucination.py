"""Hallucination metrics: aggregate the scores in ``evals`` per feature, model, prompt version and time.

The scores are written once by the evaluation run (:mod:`workbench.eval.run`); this module only reads them:

* **Evaluate** (row level, written once): :func:`evaluate` scores the answers that the chosen evaluator has not scored
  yet (an anti-join on evaluator name and version, so an unchanged detector never re-scores and a new version does)
  and writes one ``evals`` row per answer. The default evaluator is the offline detector (:mod:`workbench.eval.detector`);
  ``detector="judge"`` routes to the LLM judge (:mod:`workbench.eval.judge`), ``detector="ragas:<metric>"`` to ragas
  (:mod:`workbench.eval.ragas`). Human labels come in through :func:`import_labels`, as one more evaluator.
* **Aggregate** (the suite): :func:`hallucination_rate`, :func:`hallucination_score`, :func:`unscorable_rate` return
  the tidy frame of every workbench metric; :func:`agreement`, :func:`judge_variance` and :func:`worst_offenders`
  answer "can I trust this score?" and "which answers, which claims?".

Conventions (a contract with the other modules)
-----------------------------------------------
* Row metric ``hallucination_score``: the probability that an answer holds an unsupported claim; **higher is worse**.
  Label ``hallucinated`` | ``supported`` | ``unscorable``; the value is null when unscorable.
* Human labels: metric ``hallucination_label``, value 1 (hallucinated) / 0 (supported), evaluator ``human``.
* Unscorable answers (empty answer, no context, a judge reply that does not parse) are written and counted by
  :func:`unscorable_rate`, never dropped; :func:`hallucination_score` is the mean over the *scored* answers and
  :func:`hallucination_rate` the share of them labelled hallucinated. One reading serves the three: a row is
  unscorable when labelled so or when it has no ``value``; every other row is scored. The rate needs a verdict
  (label ``hallucinated`` or ``supported``): a scored row without one (ragas writes no label; a row inserted by
  hand) is left out of the rate with an :class:`~workbench.metrics.ExcludedRowWarning`, never read as supported.
* The time of a score is the time of its answer: of the call (``calls.ts``), else ``answers.ts``; never of the score
  (:func:`answer_time`, which the drift of ``evals`` uses too). A score whose answer has neither is undated: in no
  window with a ``start`` or an ``end``.
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
>>> summary = wb.evaluate(db, progress=False)
>>> summary["scored"], summary["unscorable"], summary["skipped"]
(3, 1, 0)
>>> wb.evaluate(db, progress=False)["scored"]        # nothing new to score: the detector version did not change
0
>>> hallucination_rate(db, period="all").select("feature", "value", "n").rows()
[('search', None, 0), ('support', 0.666667, 3)]
>>> unscorable_rate(db, period="all").select("feature", "value", "n").rows()
[('search', 1.0, 1), ('support', 0.0, 3)]
"""

from __future__ import annotations

from workbench.errors import ParameterError, check_int, check_name, check_number

import json
import warnings
from typing import TYPE_CHECKING, Any

from workbench import stats
from workbench.schema import HALLUCINATED, LABEL_METRIC, SCORE_METRIC, SUPPORTED, UNSCORABLE

from workbench.db import as_workbench
from workbench.metrics.core import Metric, register, to_polars

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

    from workbench.db import Workbench

__all__ = [
    "answer_time",
    "scored_answers",
    "hallucination_rate",
    "hallucination_score",
    "unscorable_rate",
    "agreement",
    "judge_variance",
    "worst_offenders",
]

# ------------------------------------------------------------------------------------------------
# Aggregates
# ------------------------------------------------------------------------------------------------


def _default_metric(evaluator: str) -> str:
    return LABEL_METRIC if evaluator == "human" else SCORE_METRIC


def _latest_version(db: "Workbench", evaluator: str, metric: str) -> str | None:
    """The version of ``evaluator`` written most recently (versions are not ordered strings, times are); of two
    written last at the same time, the greater name (the choice was the backend's: DuckDB and Spark chose apart)."""
    e = db.evals
    t = e.filter(e.evaluator == evaluator, e.metric == metric).group_by("evaluator_version").aggregate(last=e.ts.max())
    df = to_polars(t.order_by([t["last"].desc(), t.evaluator_version.desc()]).limit(1))
    return df["evaluator_version"][0] if df.height else None


def _default_detector(db: "Workbench") -> tuple[str, str]:
    """The name and version of the detector ``[detector]`` of the database's ``workbench.toml`` configures (the
    offline detector as shipped when none is): its scores are what the metrics read by default."""
    from workbench.detector_config import detector_identity

    return detector_identity(db.settings)


def _resolve(db: "Workbench", evaluator: str | None, version: str | None, metric: str | None, *, fn: str,
             names: tuple[str, str, str] = ("evaluator", "version", "metric")) -> tuple[str, str | None, str]:
    for name, value in zip(names, (evaluator, version, metric)):
        check_name(fn, name, value, optional=True)
    if evaluator is None:
        evaluator, default = _default_detector(db)
        version = version or default
    metric = metric or _default_metric(evaluator)
    if version is None:
        version = _latest_version(db, evaluator, metric)
    return evaluator, version, metric


TRAFFIC = ("production", "benchmark", "all")


def benchmark_answer(call_ts: Any, source: Any) -> Any:
    """Whether an answer belongs to a labelled test set rather than production traffic: no logged call (``call_ts``
    of its call is null) and a dataset named as its ``source`` (Ibis expressions in, a boolean expression out).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, status) values ('a', '2026-01-05', 'ok');"
    ...                       "insert into answers (call_id, answer, source) values ('a', 'x', null), "
    ...                       "('h1', 'y', 'halu_dev')")
    >>> a, c = db.answers, db.calls
    >>> j = a.left_join(c.select(cid=c.call_id, call_ts=c.ts), a.call_id == c.call_id)
    >>> j.select("call_id", b=benchmark_answer(j.call_ts, j.source)).order_by("call_id").to_polars().rows()
    [('a', False), ('h1', True)]
    """
    return call_ts.isnull() & source.notnull()


def answer_time(call_ts: Any, answer_ts: Any) -> Any:
    """The time a score is dated by: its answer's, i.e. its call's time, else ``answers.ts``; never when it was scored
    (Ibis expressions in, a timestamp expression out). The one definition of the hallucination metrics, agreement and
    the drift of ``evals``.

    A score whose answer has neither time (no logged call, an answer row without ``ts``, or none at all) is
    **undated** (null): it is in no window with a ``start`` or an ``end`` (and so in neither window of a drift
    report), and in a selection without them its ``period_start`` is null. It is not dated by its scoring time: one
    batch ``workbench eval`` would put every such score in the week it ran.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, status) values ('a', '2026-01-05', 'ok');"
    ...                       "insert into answers (call_id, answer, ts) values ('a', 'x', '2026-02-01'), "
    ...                       "('b', 'y', '2026-01-07'), ('c', 'z', null)")
    >>> a, c = db.answers, db.calls.select(cid="call_id", call_ts="ts")
    >>> j = a.left_join(c, a.call_id == c.cid)
    >>> [(k, t and t.day) for k, t in j.select("call_id", t=answer_time(j.call_ts, j.ts)).order_by("call_id")
    ...  .to_polars().rows()]
    [('a', 5), ('b', 7), ('c', None)]
    """
    import ibis

    return ibis.coalesce(call_ts, answer_ts)


def _explain_missing(db: "Workbench", fn: str, evaluator: str | None, version: str | None, metric: str | None,
                     df: "pl.DataFrame") -> "pl.DataFrame":
    """``df``, with a warning when it is empty because the database holds only other versions' scores of the default
    detector (after an upgrade: versions are never mixed) naming them and the two ways on: score the answers again,
    or read an older version explicitly; or because its answers were never scored. Looked up only when the
    selection came out empty."""
    if evaluator is not None or version is not None or df["n"].sum() > 0:
        return df
    from workbench.metrics.core import UndefinedMetricWarning

    name, current = _default_detector(db)
    e = db.evals
    t = e.filter(e.evaluator == name, e.metric == (metric or SCORE_METRIC))
    counts = to_polars(t.group_by("evaluator_version").aggregate(n=t.count(), last=t.ts.max()))
    if counts.height == 0:
        # answers loaded and never scored (no `workbench eval` yet): say so, not only "no data in the selection"
        answers = int(db.answers.count().execute())
        if answers:
            warnings.warn(UndefinedMetricWarning(
                f"{fn}: the database holds {answers:,} answers and no score of them by any version of the detector "
                f"{name}; score them with `workbench eval --db PATH` (or workbench.evaluate(db))"), stacklevel=3)
        return df
    if current in counts["evaluator_version"].to_list():
        return df
    counts = counts.sort("last", descending=True, nulls_last=True)
    held = ", ".join(f"{n:,} scores of version {v}" for v, n in zip(counts["evaluator_version"], counts["n"]))
    warnings.warn(UndefinedMetricWarning(
        f"{fn}: no scores of the detector {name} {current} (the current one); the database holds "
        f"{held}. Score the answers with the current version (`workbench eval --db PATH`, or "
        f"workbench.evaluate(db)), or pass version='{counts['evaluator_version'][0]}' to read the older scores"),
        stacklevel=3)
    return df


def _scored(db: "Workbench", who: tuple[str, str | None, str], *, repeat: int = 0, traffic: str = "all",
            fn: str) -> "ir.Table":
    """One row per score of ``who`` (the evaluator, version and metric :func:`_resolve` gave: resolved once, by the
    caller, which names them too): evals joined to answers (source) and calls (feature, model...), with ``ts`` = the
    answer's time (its call's time, else ``answers.ts``; never the time it was scored) and ``traffic``:
    ``"benchmark"`` for a labelled or test-set answer (no logged call, a dataset named in ``answers.source``), else
    ``"production"``. ``fn``: the public function, named by the errors."""
    evaluator, version, metric = who
    if traffic not in TRAFFIC:
        raise ParameterError(f"{fn}: traffic: expected one of {', '.join(TRAFFIC)}, got {traffic!r}")
    return db.view(("scored", evaluator, version, metric, repeat, traffic),
                   lambda: _scored_join(db, evaluator, version, metric, repeat, traffic))


def scored_answers(db: Any, *, evaluator: str | None = None, version: str | None = None, metric: str | None = None,
                   traffic: str = "production", caller: str = "scored_answers") -> "ir.Table":
    """The scores the hallucination metrics read, as an Ibis table: one evaluator at one version, one metric, repeat
    0, one row per answer, dated by the answer (:func:`answer_time`) and joined to its call (feature, model...).

    The one selection that :func:`hallucination_rate` and the drift of ``evals``
    (:func:`~workbench.metrics.drift.drift_report` with ``table="evals"``) share, so that both compare like with
    like: a new judge version, another evaluator or a test set scored this week is never read as a change of the
    production answers.

    Parameters
    ----------
    db : Workbench or path
    evaluator, version, metric : str, optional
        As for :func:`hallucination_rate`: default the detector ``workbench.toml`` names (the offline detector as
        shipped when none is) at its current version; another evaluator's default version is the one written most
        recently; metric ``hallucination_score`` (``hallucination_label`` for ``human``).
    traffic : {"production", "benchmark", "all"}
        As for :func:`hallucination_rate`: production answers (the default), labelled and test sets, or both.
    caller : str
        The function named by the errors.

    Returns
    -------
    ibis Table
        The ``evals`` columns ``call_id``, ``value``, ``label``, ``evaluator``, ``evaluator_version``, ``run_id``,
        ``explanation``, ``details``, the scoring time ``eval_ts``; the answer's ``source``, ``question``,
        ``answer``; the call's columns; ``ts`` (the answer's time) and ``traffic``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute('''
    ...   insert into calls (call_id, ts, feature, status) values ('a', '2026-01-05', 'chat', 'ok');
    ...   insert into answers (call_id, answer, source) values ('t', 'x', 'halu_dev');
    ...   insert into evals (call_id, metric, value, label, evaluator, evaluator_version, ts) values
    ...     ('a', 'hallucination_score', 0.2, 'supported', 'j', '1', '2026-01-06'),
    ...     ('a', 'hallucination_score', 0.9, 'hallucinated', 'j', '2', '2026-01-07'),
    ...     ('t', 'hallucination_score', 0.7, 'hallucinated', 'j', '2', '2026-01-07')''')
    >>> t = scored_answers(db, evaluator="j")  # version 2, written last; production answers only
    >>> t.select("call_id", "evaluator_version", "value", "feature").to_polars().rows()
    [('a', '2', 0.9, 'chat')]
    >>> scored_answers(db, evaluator="j", traffic="all").count().to_pyarrow().as_py()  # and the test set's
    2
    """
    db = as_workbench(db)
    return _scored(db, _resolve(db, evaluator, version, metric, fn=caller), traffic=traffic, fn=caller)


def _scored_join(db: "Workbench", evaluator: str, version: str | None, metric: str, repeat: int,
                 traffic: str) -> "ir.Table":
    import ibis

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
    kind = ibis.ifelse(benchmark_answer(j.call_ts, j.source), "benchmark", "production")
    j = j.mutate(ts=answer_time(j.call_ts, j.answer_ts), traffic=kind)
    return j if traffic == "all" else j.filter(j.traffic == traffic)


def _suite_input(db: Any, fn: str, *, by: Any, start: Any, end: Any, where: Any, evaluator: Any, version: Any,
                 metric: Any, traffic: str = "production") -> tuple["Workbench", "ir.Table", list[str]]:
    from workbench.metrics.core import check_by, scope

    db = as_workbench(db)
    t = scored_answers(db, evaluator=evaluator, version=version, metric=metric, traffic=traffic, caller=fn)
    keys = check_by(t, by, fn=fn)
    return db, scope(t, start=start, end=end, where=where), keys


def _unscorable(t: "ir.Table") -> "ir.BooleanValue":
    """Whether a score row is unscorable: labelled ``unscorable``, or without a score at all (the schema's
    ``value``: null when unscorable). The one reading the three aggregates share: :func:`unscorable_rate` counts
    these rows, :func:`hallucination_score` and :func:`hallucination_rate` the others (the rate those with a verdict).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into evals (call_id, metric, value, label, evaluator, evaluator_version) values "
    ...     "('a', 'm', 0.9, 'hallucinated', 'j', '1'), ('b', 'm', null, 'unscorable', 'j', '1'), "
    ...     "('c', 'm', 0.7, null, 'j', '1'), ('d', 'm', null, null, 'j', '1')")
    >>> e = db.evals
    >>> e.select("call_id", u=_unscorable(e)).order_by("call_id").to_polars().rows()
    [('a', False), ('b', True), ('c', False), ('d', True)]
    """
    return t.value.isnull() | (t.label == UNSCORABLE).fill_null(False)


def _verdict(t: "ir.Table") -> "ir.BooleanValue":
    """A scored row whose label is a verdict (hallucinated or supported): the rows :func:`hallucination_rate` counts."""
    return ~_unscorable(t) & t.label.isin([HALLUCINATED, SUPPORTED]).fill_null(False)


def _warn_no_verdict(t: "ir.Table", fn: str) -> None:
    """An :class:`~workbench.metrics.ExcludedRowWarning` naming the scored rows of ``t`` without a verdict (ragas
    writes no label; a row inserted by hand): a rate cannot read them as supported, nor as hallucinated."""
    from workbench.metrics.core import ExcludedRowWarning

    odd = t.filter(~_unscorable(t) & ~_verdict(t))
    got = to_polars(odd.aggregate(k=odd.count(), call_id=odd.call_id.min(), label=odd.label.argmin(odd.call_id)))
    k, cid, label = got.row(0)
    if k:
        warnings.warn(f"{fn}: {k} scored answer{'s have' if k > 1 else ' has'} no label hallucinated or supported "
                      f"(e.g. call {cid!r}, label {'null' if label is None else repr(label)}): left out of the rate; "
                      f"hallucination_score counts {'them' if k > 1 else 'it'}", ExcludedRowWarning, stacklevel=4)


def hallucination_rate(db: Any, *, by: Any = ("feature",), period: str = "day", start: Any = None, end: Any = None,
                       where: Any = None, evaluator: str | None = None, version: str | None = None,
                       metric: str | None = None, confidence: float = 0.95, traffic: str = "production") -> "pl.DataFrame":
    """Share of scored answers labelled hallucinated (above the evaluator's decision threshold), Wilson interval.

    Definition: of the production answers scored in the period (dated by when the answer was given; benchmark and
    labelled sets left out unless ``traffic`` asks for them), the share the evaluator labelled hallucinated.

    Parameters
    ----------
    db : Workbench or path
    by : column names
        Any ``calls`` column (feature, model, prompt_version, variant...) or ``source`` (from ``answers``).
    period : {"hour", "day", "week", "month", "all"}
    start, end : date or timestamp, optional
        ``start <= ts < end`` on the answer's time: its call's time, else ``answers.ts`` (never the scoring time).
    traffic : {"production", "benchmark", "all"}
        ``"production"`` (default): the answers of logged calls; labelled and benchmark sets (answers with no logged
        call and a dataset in ``answers.source``, e.g. halu_dev) are not production traffic and are left out.
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
        ``n`` = scored answers with a verdict (unscorable ones excluded, see :func:`unscorable_rate`; a scored answer
        whose label is neither ``hallucinated`` nor ``supported`` is left out with an
        :class:`~workbench.metrics.ExcludedRowWarning`), ``lo``, ``hi``.

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
    from workbench.metrics.core import proportion

    db, t, keys = _suite_input(db, "hallucination_rate", by=by, start=start, end=end, where=where,
                              evaluator=evaluator, version=version, metric=metric, traffic=traffic)
    # Unscorable answers are outside the denominator, and so are scored ones without a verdict (named: a NULL label
    # failed both comparisons and vanished); a group whose answers were all unscorable stays visible with n = 0
    # (proportion() groups over every row).
    _warn_no_verdict(t, "hallucination_rate")
    return _explain_missing(db, "hallucination_rate", evaluator, version, metric, proportion(
        t, t.label == HALLUCINATED, by=keys, period=period, metric="hallucination_rate", start=start, end=end,
        denominator=_verdict(t), confidence=confidence))


def hallucination_score(db: Any, *, by: Any = ("feature",), period: str = "day", start: Any = None, end: Any = None,
                        where: Any = None, evaluator: str | None = None, version: str | None = None,
                        metric: str | None = None, confidence: float = 0.95, traffic: str = "production") -> "pl.DataFrame":
    """Mean hallucination score of the scored answers, with a Student t interval (clipped to [0, 1]).

    Parameters are those of :func:`hallucination_rate`.

    Returns
    -------
    polars.DataFrame
        Tidy: ``metric`` = ``hallucination_score``, ``value`` = mean probability of an unsupported claim (lower is
        better), ``n`` = scored answers (those with a ``value`` not labelled ``unscorable``: the complement of
        :func:`unscorable_rate`'s); ``lo``/``hi`` null when n < 2.

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
    >>> hallucination_score(db, evaluator="j", by="source", period="all", traffic="benchmark").select(  # a test set
    ...     "source", "value", "n", "lo", "hi").rows()
    [('test', 0.5, 3, 0.0, 1.0)]
    """
    import numpy as np
    import polars as pl
    from scipy.stats import t as student_t

    from workbench.metrics.core import complete_grid, tidy, with_period

    db, t, keys = _suite_input(db, "hallucination_score", by=by, start=start, end=end, where=where,
                              evaluator=evaluator, version=version, metric=metric, traffic=traffic)
    scored = t  # every answer of the selection, unscorable ones too: its groups and periods are the result's
    t = with_period(t.filter(~_unscorable(t)), period, start=start)
    agg = to_polars(t.group_by([*keys, "period_start"]).aggregate(
        value=t.value.mean(), n=t.value.count(), sd=t.value.std(how="sample")
    ))
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
    out = complete_grid(tidy(agg, keys=keys, metric="hallucination_score"), scored, keys=keys, period=period,
                        start=start, end=end, metric="hallucination_score")
    return _explain_missing(db, "hallucination_score", evaluator, version, metric, out)


def unscorable_rate(db: Any, *, by: Any = ("feature",), period: str = "day", start: Any = None, end: Any = None,
                    where: Any = None, evaluator: str | None = None, version: str | None = None,
                    metric: str | None = None, confidence: float = 0.95, traffic: str = "production") -> "pl.DataFrame":
    """Share of evaluated answers the evaluator could not score (empty answer, no context, unparseable judge reply).

    Parameters are those of :func:`hallucination_rate`.

    Returns
    -------
    polars.DataFrame
        Tidy: ``metric`` = ``unscorable_rate`` (lower is better), ``n`` = every evaluated answer; unscorable: labelled
        ``unscorable`` or without a ``value``.

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
    from workbench.metrics.core import proportion

    db, t, keys = _suite_input(db, "unscorable_rate", by=by, start=start, end=end, where=where,
                              evaluator=evaluator, version=version, metric=metric, traffic=traffic)
    return _explain_missing(db, "unscorable_rate", evaluator, version, metric, proportion(
        t, _unscorable(t), by=keys, period=period, metric="unscorable_rate", start=start, end=end,
        confidence=confidence))


# ------------------------------------------------------------------------------------------------
# Trust: agreement between evaluators, judge variance; and the worst answers
# ------------------------------------------------------------------------------------------------


def _binary_frame(db: "Workbench", evaluator: str | None, version: str | None, metric: str | None, *,
                  start: Any = None, end: Any = None, names: tuple[str, str, str] = ("evaluator", "version", "metric")):
    from workbench.metrics.core import scope

    who = _resolve(db, evaluator, version, metric, fn="agreement", names=names)  # once: the scores' view takes it
    # the scores of the answers given in [start, end): dated by the answer as the aggregates date them (_scored_join)
    t = scope(_scored(db, who, fn="agreement"), start=start, end=end)
    return to_polars(t.select("call_id", "value", "label")), *who


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
    evaluator: str | None = None,
    reference: str = "human",
    version: str | None = None,
    reference_version: str | None = None,
    metric: str | None = None,
    reference_metric: str | None = None,
    threshold: float | None = None,
    start: Any = None,
    end: Any = None,
) -> "pl.DataFrame":
    """How well an evaluator agrees with a reference (human labels, or another evaluator) on the same answers.

    Parameters
    ----------
    db : Workbench or path
    evaluator : str, optional
        The evaluator under test; its ``value`` is the score for AUROC. Default: the detector ``[detector]`` of the
        database's ``workbench.toml`` names (the offline detector as shipped when none is), at its current version,
        whose scores the hallucination metrics read.
    reference : str
        The reference evaluator (default ``human``): its label is the truth (hallucinated = 1); where it has no
        label ``hallucinated`` or ``supported``, its value (hallucinated when ``>= 0.5``); with neither, the answer is
        left out (counted in ``n_no_verdict``, with an :class:`~workbench.metrics.ExcludedRowWarning`).
    version, reference_version : str, optional
        Default: the version of each written most recently.
    metric, reference_metric : str, optional
        Default ``hallucination_score`` (``hallucination_label`` for ``human``).
    threshold : float, optional
        The evaluator predicts hallucinated when ``value >= threshold``; default: its own stored label. Without a
        threshold, an answer whose label is neither ``hallucinated`` nor ``supported`` (ragas writes none; a row
        inserted by hand) has no prediction: it is left out of the pairs, never read as supported (counted in
        ``n_no_verdict``, with an :class:`~workbench.metrics.ExcludedRowWarning` naming one).
    start, end : date or timestamp, optional
        The answers given in the window: ``start <= ts < end`` on the answer's time, as for
        :func:`hallucination_rate` (its call's time, else ``answers.ts``; never when it was scored or labelled). An
        answer with neither time is only in an open window (neither ``start`` nor ``end``). Default: every answer.

    Returns
    -------
    polars.DataFrame
        One row: ``evaluator``, ``version``, ``reference``, ``reference_version``, ``threshold``, ``n`` (answers
        scored by both; unscorable on either side excluded and counted in ``n_unscorable``, those without a
        prediction or a truth, see ``threshold`` and ``reference``, in ``n_no_verdict``), ``positives``
        (reference hallucinated), ``auroc``, ``kappa``, ``precision``, ``recall``, ``f1``, ``accuracy``
        (all higher is better; null when undefined), and ``calibration_error``: the expected calibration error of the
        evaluator's values as probabilities against the reference (10 bins; 0 is calibrated, lower is better; above
        about 0.05, ``workbench hallucination calibrate --db`` fits the offline detector to these labels).

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
    import numpy as np
    import polars as pl

    from workbench.metrics.core import ExcludedRowWarning, check_window

    check_window("agreement", start, end)
    db = as_workbench(db)
    check_name("agreement", "reference", reference)
    check_number("agreement", "threshold", threshold, optional=True)
    # evaluator None: the default
    left, evaluator, version, metric = _binary_frame(db, evaluator, version, metric, start=start, end=end)
    right, reference, reference_version, reference_metric = _binary_frame(
        db, reference, reference_version, reference_metric, start=start, end=end,
        names=("reference", "reference_version", "reference_metric"))
    j = left.join(right, on="call_id", how="inner", suffix="_ref")
    bad = ((pl.col("label") == UNSCORABLE) | pl.col("value").is_null() | (pl.col("label_ref") == UNSCORABLE)
           ).fill_null(False)
    n_unscorable = j.filter(bad).height
    j = j.filter(~bad)
    # A pair needs a prediction and a truth. Without a threshold the prediction is the evaluator's label; the truth
    # is the reference's label, else its value (>= 0.5). A missing one is no verdict: a NULL label read as
    # "supported" before. Such pairs are left out, counted and named.
    verdict = pl.col("label").is_in([HALLUCINATED, SUPPORTED]).fill_null(False)
    ref_verdict = pl.col("label_ref").is_in([HALLUCINATED, SUPPORTED]).fill_null(False)
    no_pred = ~verdict if threshold is None else pl.lit(False)
    no_truth = ~ref_verdict & pl.col("value_ref").is_null()
    for rows, whose, lacks, hint in (
            (j.filter(no_pred), f"scored by {evaluator!r}", "no label hallucinated or supported",
             "; pass threshold= to predict from the evaluator's values"),
            (j.filter(no_truth), f"labelled by {reference!r}", "no label hallucinated or supported nor a value", "")):
        if k := rows.height:
            warnings.warn(ExcludedRowWarning(
                f"agreement: {k} answer{'s' if k > 1 else ''} {whose} {'have' if k > 1 else 'has'} {lacks} (e.g. "
                f"call {rows['call_id'].min()!r}): left out of the pairs{hint}"), stacklevel=2)
    n_no_verdict = j.filter(no_pred | no_truth).height
    j = j.filter(~(no_pred | no_truth))
    truth = j.select(
        pl.when(ref_verdict).then(pl.col("label_ref") == HALLUCINATED).otherwise(pl.col("value_ref") >= 0.5)
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
        "threshold": threshold, "n": n, "n_unscorable": n_unscorable, "n_no_verdict": n_no_verdict,
        "positives": int(truth.sum()),
        "auroc": _auroc_or_none(truth, score) if n else None, "kappa": stats.cohen_kappa(pred, truth) if n else None,
        "precision": precision, "recall": recall, "f1": f1,
        "accuracy": float((pred == truth).mean()) if n else None,
        "calibration_error": stats.expected_calibration_error(truth, np.clip(score, 0.0, 1.0)) if n else None,
    }], schema_overrides={"threshold": pl.Float64, "auroc": pl.Float64, "kappa": pl.Float64,
                          "precision": pl.Float64, "recall": pl.Float64, "f1": pl.Float64, "accuracy": pl.Float64,
                          "calibration_error": pl.Float64})


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
    check_name("judge_variance", "evaluator", evaluator)
    evaluator, version, metric = _resolve(db, evaluator, version, metric, fn="judge_variance")
    e = db.evals
    t = e.filter(e.evaluator == evaluator, e.metric == metric,
                 e.evaluator_version == (version if version is not None else ""))
    df = to_polars(t.select("call_id", "value", "label", repeat=e.repeat.fill_null(0)))
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
    >>> _ = wb.evaluate(db, progress=False)
    >>> worst_offenders(db, n=1).select("call_id", "label", "unsupported_claims", "evidence").rows()
    [('a', 'hallucinated', "'It opened in 1925.' (number 1925 not in context)", 'The tower opened in 1889.')]
    """
    import ibis
    import polars as pl

    from workbench.metrics.core import check_by, scope

    db = as_workbench(db)
    check_int("worst_offenders", "n", n, lo=1)
    check_int("worst_offenders", "max_chars", max_chars, lo=1)
    t = _scored(db, _resolve(db, evaluator, version, None, fn="worst_offenders"), fn="worst_offenders")
    keys = check_by(t, by, fn="worst_offenders")
    t = scope(t, start=start, end=end, where=where)
    t = t.filter(~_unscorable(t))
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
    df = to_polars(t.select(*cols))
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


# Each metric registered once with its contract (workbench.metrics.core.Metric).
SUITE = register(
    Metric(hallucination_rate, unit="share", direction="lower", table="evals"),
    Metric(hallucination_score, unit="score", direction="lower", table="evals"),
    Metric(unscorable_rate, unit="share", direction="lower", table="evals"),
    namespace=globals(),
)

