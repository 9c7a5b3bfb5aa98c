"""The metric suite and the machinery every metric shares.

Every metric is a plain function with one signature::

    fn(db, *, by=("feature",), period="day", start=None, end=None, where=None, **options) -> polars.DataFrame

``db`` is a :class:`~workbench.db.Workbench` (or a path to one). The aggregate is one Ibis expression, so it runs on
the DuckDB default and on any backend Ibis supports. The result is the one tidy shape of the workbench:

    group keys..., ``period_start``, ``metric``, ``value``, ``n``, ``lo``, ``hi``, ``partial``

``n`` is the denominator (calls, answers, users...). ``lo``/``hi`` are the interval where one makes sense, else null.
``partial`` says whether the window ``[start, end)`` covers the row's period only in part (a first week the window
enters on a Thursday: its low count is no drop; the current week, whose days after the clock hold no data yet), null
on an open side of the window (:func:`mark_partial`).
An empty or undefined group has a null ``value`` with ``n = 0`` and an :class:`UndefinedMetricWarning`, never a
silent 0, and it never vanishes: every group of the selection's scope appears in every period of the window
(:func:`complete_grid`).

The selection: ``start`` inclusive, ``end`` exclusive (dates or ISO timestamps, an offset converted to UTC; years
1900-9000); ``where`` a column and a value or a list of values, compared as the column compares them, None for the
rows without one (:func:`scope`); ``by`` the grouping columns, each once.

Naming: ``*_rate`` is a share in 0..1, ``*_ms`` milliseconds, ``*_usd`` dollars, ``*_count`` a count, ``*_score``
higher is better (``hallucination_score``: higher is more likely hallucinated, as its docs say).

Each metric is registered once, at the bottom of its module, with its contract (:class:`Metric`: unit, direction,
source table, periods; default ``by``, options and the one-line definition come from the function itself). The
registry (:func:`suite`, :func:`contracts`) drives the CLI (``workbench metrics list``), the reports' formats and
definitions, and the invariant tests; registration does the boundary work once (a path or a connection, options
and the window checked with messages that name the metric: an ``end`` not after ``start`` is an error, not an empty
selection).

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute(
...     "insert into calls (call_id, ts, feature, status, latency_ms) values "
...     "('a', '2026-01-01 10:00', 'chat', 'ok', 100), ('b', '2026-01-01 11:00', 'chat', 'error', 300),"
...     "('c', '2026-01-02 09:00', 'chat', 'ok', 200)")
>>> t = scope(db.calls, start="2026-01-01", end="2026-01-02")
>>> proportion(t, t.status == "error", by=("feature",), period="all", metric="error_rate").select(
...     "feature", "metric", "value", "n").rows()
[('chat', 'error_rate', 0.5, 2)]
"""

from __future__ import annotations

from workbench.errors import NotFoundError, ParameterError, UnknownNameError, check_fraction, check_name, check_names

import functools

import datetime as _dt
import importlib
import inspect
import itertools
import os
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

from workbench.db import Where, as_timestamp, parse_where, scope, sql_identifier, sql_literal  # noqa: F401  (re-exported: the metric toolkit)
from workbench.stats import quantile_ranks  # noqa: F401  (re-exported: the metric toolkit)

__all__ = ["PERIODS", "RESULT_COLUMNS", "UndefinedMetricWarning", "ExcludedRowWarning", "UnknownFeatureWarning",
           "warn_unknown_features", "unknown_features", "agent_tasks", "latest_votes",
           "Where", "parse_where", "as_timestamp", "scope", "check_by", "with_period", "tidy", "complete_grid",
           "to_polars", "proportion", "percentile_frame",
           "mean_interval", "band_grid", "approx_matrix", "order_statistics", "quantile_ranks", "quantile_cont",
           "holistic_fits", "HOLISTIC_QUANTILES", "memory_passes",
           "Metric", "register", "suite", "contracts", "compute", "target_refusal", "check_targets", "check_window",
           "mark_partial"]

PERIODS = ("hour", "day", "week", "month", "all")
_UNITS = {"hour": "h", "day": "D", "week": "W", "month": "M"}
RESULT_COLUMNS = ("period_start", "metric", "value", "n", "lo", "hi", "partial")
#: A result is sorted on one thread up to this many rows: waking polars' thread pool costs more than sorting them
#: (a 100-row result: 150 us threaded, 85 us on one thread).
_SORT_THREADED_ROWS = 100_000

# Modules whose SUITE dicts make up the suite, imported only when the suite is asked for.
SUITE_MODULES = ("latency", "cost", "reliability", "adoption", "experiments", "drift", "hallucination")


class UndefinedMetricWarning(UserWarning):
    """A metric was asked for a group with no data (n = 0); its value is null.

    Examples
    --------
    >>> import warnings, workbench as wb
    >>> db = wb.connect(":memory:")  # no calls at all
    >>> with warnings.catch_warnings(record=True) as got:
    ...     warnings.simplefilter("always")
    ...     compute("error_rate", db, period="all").select("value", "n").rows()
    [(None, 0)]
    >>> [str(w.message) for w in got if w.category is UndefinedMetricWarning]
    ['error_rate: no data in the selection; value is null (n = 0)']
    """


class ExcludedRowWarning(UserWarning):
    """Rows of the selection that contradict themselves (an incident resolved before it started: a row inserted by
    hand, as ingest quarantines them) are left out of a metric rather than measured: the warning names them and
    their count, and ``n`` does not count them.

    Examples
    --------
    >>> import warnings, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into incidents (incident_id, feature, started_at, detected_at) values "
    ...     "('i1', 'chat', '2026-01-01 10:00', '2026-01-01 10:30'), ('i2', 'chat', '2026-01-01 10:00', '2026-01-01 09:00')")
    >>> with warnings.catch_warnings(record=True) as got:
    ...     warnings.simplefilter("always")
    ...     compute("mttd_minutes", db, period="all").select("value", "n").rows()
    [(30.0, 1)]
    >>> [str(w.message) for w in got if w.category is ExcludedRowWarning]
    ['mttd_minutes: 1 incident with detected_at before started_at is left out (i2)']
    """


class UnknownFeatureWarning(UserWarning):
    """A setting names a feature that no call has: what it declares (an SLO, a budget) is never measured and never
    fires. Usually a typo.

    Examples
    --------
    >>> import warnings, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) "
    ...                       "values ('a', '2026-01-01', 'chat', 'ok')")
    >>> with warnings.catch_warnings(record=True) as got:
    ...     warnings.simplefilter("always")
    ...     warn_unknown_features(db, {"chta": "workbench.toml [budget.chta]"})
    >>> [str(w.message) for w in got if w.category is UnknownFeatureWarning]
    ["workbench.toml [budget.chta]: no call has feature 'chta', so it is never measured and never fires;
      did you mean 'chat'?"]
    >>> issubclass(UnknownFeatureWarning, UserWarning)
    True
    """


def unknown_features(db: Any, names: Iterable[str]) -> list[str]:
    """The features of ``names`` that no call of ``db`` has (at any time), in the order given: what a setting
    declares for them (an SLO, a budget) is never measured. The calls are read for these features only.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) "
    ...                       "values ('a', '2026-01-01', 'chat', 'ok')")
    >>> unknown_features(db, ["chta", "chat"])
    ['chta']
    """
    names = [f for f in names if f is not None]
    if not names:
        return []
    t = db.calls
    seen = set(to_polars(t.filter(t.feature.isin(names)).select("feature").distinct())["feature"].to_list())
    return [f for f in names if f not in seen]


def warn_unknown_features(db: Any, where: Mapping[str, str], *, window: tuple[Any, Any] | None = None) -> None:
    """Warn (:class:`UnknownFeatureWarning`) for each feature that no call in ``db`` has, with the closest names.

    ``where`` maps each feature a setting names to the setting (``"workbench.toml [budget.chat]"``). An SLO or a
    budget of a misspelled feature reads as met, or as nothing spent, for ever: the warning is the only sign. A
    feature with calls, at any time, is known (a budget's feature may spend nothing this month). The calls are read
    for the named features only; all feature names are read only when one is missing, for the suggestion.

    ``window`` (``(start, end)``, both included: the SLO window, the budget's month) also warns where calls of the
    window name a feature the setting does not count: one that differs only in case, spaces, ``-`` or ``_``
    (``'Support Assistant'``, ``'support_assistant '``), or, for a feature with no call in the window, a close name
    no setting declares (a feature renamed by a deploy: the setting reads "ok" on nothing).

    >>> import warnings, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) "
    ...                       "values ('a', '2026-01-01', 'chat', 'ok')")
    >>> with warnings.catch_warnings(record=True) as got:
    ...     warnings.simplefilter("always")
    ...     warn_unknown_features(db, {"Chat": "[budget.Chat]", "chat": "[budget.chat]"})
    >>> [str(w.message) for w in got if w.category is UnknownFeatureWarning]
    ["[budget.Chat]: no call has feature 'Chat', so it is never measured and never fires; did you mean 'chat'?"]
    """
    import difflib

    names = sorted(where)
    if not names:
        return
    missing = unknown_features(db, names)
    if window is not None:
        _warn_renamed(db, where, [f for f in names if f not in missing], window)
    if not missing:
        return
    t = db.calls
    known = sorted(v for v in to_polars(t.select("feature").distinct())["feature"].to_list() if v is not None)
    folded = {k.casefold(): k for k in known}
    for f in missing:
        close = [folded[c] for c in difflib.get_close_matches(f.casefold(), list(folded), n=3, cutoff=0.75)]
        if close:
            hint = "; did you mean " + " or ".join(repr(c) for c in close) + "?"
        elif known:
            hint = f"; the features with calls: {', '.join(known[:10])}{' ...' if len(known) > 10 else ''}"
        else:
            hint = "; the database has no calls yet"
        warnings.warn(f"{where[f]}: no call has feature {f!r}, so it is never measured and never fires{hint}",
                      UnknownFeatureWarning, stacklevel=3)


def outermost(t: "ir.Table", spans: "ir.Table") -> "ir.Table":
    """The rows of ``t`` whose parent is not one of ``spans`` (by ``call_id``); a row naming itself as its parent (a
    broken tracer) has none. The anti-join is on an equality alone, so DuckDB hashes it: with the self-parent test in
    the join condition it ran a nested-loop join, 5.6 s for 112,320 calls and growing with their square.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, parent_id, ts, status) values ('a', null, '2026-01-01', "
    ...     "'ok'), ('b', 'a', '2026-01-01', 'ok'), ('c', 'c', '2026-01-01', 'ok'), ('d', 'gone', '2026-01-01', 'ok')")
    >>> sorted(outermost(db.calls, db.calls).call_id.to_pyarrow().to_pylist())
    ['a', 'c', 'd']
    """
    import ibis

    ids = spans.select(_span_id=spans.call_id)
    t = t.mutate(_parent=ibis.ifelse(t.parent_id != t.call_id, t.parent_id, ibis.null("string")))
    return t.anti_join(ids, t._parent == ids._span_id).drop("_parent")


def agent_tasks(db: Any) -> "ir.Table":
    """One row (its span's ``calls`` row) per agent task: of the ``invoke_agent`` spans whose parent is not an
    ``invoke_agent`` span of ``calls`` (none, one not loaded, or a span of another kind around the agent: the web
    server's ``POST /ask``, a framework's ``chain``), the earliest of each trace; a span without a trace id is a task
    of its own. A sub-agent nested in a task (directly, or under the task's tool span) is a step of that task, not a
    task: counted as tasks, ten 10 s tasks of three 200 ms sub-agents each read "p50 200 ms" over 40; under an HTTP
    span the task was lost. The one definition of a task for the agent metrics and ``operation="task"``.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, trace_id, parent_id, ts, status, operation) values "
    ...     "('http', 't', null, '2026-01-01 10:00', 'ok', 'other'), ('a', 't', 'http', '2026-01-01 10:00:01', 'ok', "
    ...     "'invoke_agent'), ('sub', 't', 'a', '2026-01-01 10:00:02', 'ok', 'invoke_agent')")
    >>> agent_tasks(db).call_id.to_pyarrow().to_pylist()
    ['a']
    """
    import ibis

    calls = db.calls
    agents = calls.filter(calls.operation == "invoke_agent")
    roots = outermost(agents, agents)
    # a root without a trace id is a task of its own (NULL trace ids made one partition: every such task but one lost)
    w = ibis.window(group_by=roots.trace_id.fill_null(roots.call_id), order_by=[roots.ts, roots.call_id])
    roots = roots.mutate(_k=ibis.row_number().over(w))
    return roots.filter(roots._k == 0).drop("_k")


def latest_votes(f: "ir.Table") -> "ir.Table":
    """The rows of feedback ``f`` that are a user's latest vote on a call: of the rows of one ``(call_id, user_id)``,
    the one with the latest ``ts`` (then the largest ``feedback_id``). A user who voted down, then up, on an answer
    holds one vote, up. A row without a ``call_id`` or a ``user_id`` cannot be told apart from another person's and
    is a vote of its own. Take ``f`` already scoped (window, kind): the vote is the latest one in the selection.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into feedback (feedback_id, call_id, user_id, ts, kind, value) values "
    ...     "('f1', 'c1', 'u1', '2026-01-01 10:00', 'thumbs', 0), ('f2', 'c1', 'u1', '2026-01-01 10:05', 'thumbs', 1),"
    ...     "('f3', 'c1', 'u2', '2026-01-01 10:10', 'thumbs', 0), ('f4', 'c1', null, '2026-01-01 10:20', 'thumbs', 1)")
    >>> sorted(latest_votes(db.feedback).feedback_id.to_pyarrow().to_pylist())
    ['f2', 'f3', 'f4']
    """
    import ibis

    w = ibis.window(group_by=[f.call_id.fill_null(f.feedback_id), f.user_id.fill_null(f.feedback_id)],
                    order_by=[ibis.desc(f.ts), ibis.desc(f.feedback_id)])
    f = f.mutate(_vote=ibis.row_number().over(w))
    return f.filter(f._vote == 0).drop("_vote")


def _warn_renamed(db: Any, where: Mapping[str, str], names: list[str], window: tuple[Any, Any]) -> None:
    """For :func:`warn_unknown_features`: the window's calls that name a variant of a declared feature."""
    import difflib
    import re

    if not names:
        return
    t = db.calls
    lo, hi = as_timestamp(window[0]), as_timestamp(window[1])
    w = t.filter(t.ts >= lo, t.ts <= hi, t.feature.notnull())
    got = to_polars(w.group_by("feature").aggregate(n=w.count()))
    counts = dict(zip(got["feature"].to_list(), got["n"].to_list()))
    others = [g for g in counts if g not in where]

    def norm(x: str) -> str:
        return re.sub(r"[\s_\-]+", " ", x.casefold()).strip()

    for f in names:
        variants = [g for g in others if norm(g) == norm(f)]
        if not variants and not counts.get(f):
            folded = {g.casefold(): g for g in others}
            variants = [folded[c] for c in difflib.get_close_matches(f.casefold(), list(folded), n=3, cutoff=0.75)]
        if variants:
            these = " and ".join(f"{g!r} ({counts[g]:,} calls)" for g in variants)
            warnings.warn(f"{where[f]}: calls of this window name feature {these}, not {f!r} ({counts.get(f, 0):,} "
                          f"calls), so they are not measured by it; a feature is matched exactly (renamed?)",
                          UnknownFeatureWarning, stacklevel=4)


def check_by(t: "ir.Table", by: Iterable[str] | str | None, *, fn: str = "metric") -> list[str]:
    """Validate the grouping columns (a column name or a list of them; None for none), raising a ``KeyError`` that
    names the function and the available columns, a :class:`~workbench.errors.ParameterTypeError` for anything else.

    Examples
    --------
    >>> import workbench as wb
    >>> t = wb.connect(":memory:").calls
    >>> check_by(t, "feature"), check_by(t, ("feature", "model")), check_by(t, None)
    (['feature'], ['feature', 'model'], [])
    >>> check_by(t, ("feature", "modle"), fn="error_rate")
    Traceback (most recent call last):
    ...
    workbench.errors.NotFoundError: error_rate: cannot group by ['modle']; columns: call_id, trace_id, ...
    >>> check_by(t, ["feature", "feature"], fn="error_rate")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: error_rate: by names 'feature' more than once
    >>> check_by(t, 0, fn="worst_offenders")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: worst_offenders: by must be a name or a list of column names, got 0
    """
    keys = list(check_names(fn, "by", by, optional=True, what="column names", empty=True) or ())
    missing = [k for k in keys if k not in t.columns]
    if missing:
        raise NotFoundError(f"{fn}: cannot group by {missing}; columns: {', '.join(t.columns)}")
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ParameterError(f"{fn}: by names {', '.join(map(repr, twice))} more than once")
    return keys


def with_period(t: "ir.Table", period: str, *, time: str = "ts", start: Any = None) -> "ir.Table":
    """Add ``period_start``: the time truncated to the period (weeks start on Monday), or ``start`` for ``"all"``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, status) values ('a', '2026-01-01 10:30', 'ok')")
    >>> with_period(db.calls, "week").select("period_start").to_polars().rows()  # 2026-01-01 is a Thursday
    [(datetime.datetime(2025, 12, 29, 0, 0),)]
    >>> with_period(db.calls, "all", start="2026-01-01").select("period_start").to_polars().rows()
    [(datetime.datetime(2026, 1, 1, 0, 0),)]
    >>> with_period(db.calls, "year")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: period: expected one of hour, day, week, month, all, got 'year'
    """
    import ibis

    if period not in PERIODS:
        raise ParameterError(f"period: expected one of {', '.join(PERIODS)}, got {period!r}")
    if period == "all":
        s = as_timestamp(start)
        return t.mutate(period_start=ibis.literal(s, type="timestamp") if s else ibis.null("timestamp"))
    return t.mutate(period_start=t[time].cast("timestamp").truncate(_UNITS[period]).cast("timestamp(6)"))


def tidy(df: "pl.DataFrame", *, keys: Sequence[str], metric: str | None = None) -> "pl.DataFrame":
    """Shape an aggregate into the tidy result: ``keys..., period_start, metric, value, n, lo, hi, partial``.

    ``partial`` is null here: the window is known at the metric's boundary, which sets it (:func:`mark_partial`).

    Rows with ``n == 0`` get a null value. An empty frame becomes one row with null keys and ``n = 0``. Either case
    warns with :class:`UndefinedMetricWarning`.

    >>> import polars as pl
    >>> tidy(pl.DataFrame({"feature": ["a"], "period_start": [None], "value": [1.0], "n": [3]}),
    ...      keys=["feature"], metric="x_count").columns
    ['feature', 'period_start', 'metric', 'value', 'n', 'lo', 'hi', 'partial']
    """
    import polars as pl

    # one lazy query (a polars step costs 0.1-0.2 ms however small the frame: on a small metric, as much as its query)
    lf = df.lazy()
    if metric is not None:
        lf = lf.with_columns(pl.lit(metric).alias("metric"))
    lf = lf.with_columns(pl.lit(None, dtype=dtype).alias(col)
                         for col, dtype in (("lo", pl.Float64), ("hi", pl.Float64), ("period_start", pl.Datetime("us")),
                                            ("partial", pl.Boolean))
                         if col not in df.columns)
    lf = lf.with_columns(
        pl.col("period_start").cast(pl.Datetime("us")),
        pl.col("value").cast(pl.Float64),
        pl.col("n").fill_null(0).cast(pl.Int64),
        pl.col("lo").cast(pl.Float64),
        pl.col("hi").cast(pl.Float64),
    )
    cols = [*keys, *RESULT_COLUMNS]
    if df.height == 0:
        warnings.warn(f"{metric or 'metric'}: no data in the selection; value is null (n = 0)", UndefinedMetricWarning, stacklevel=3)
        schema = lf.collect_schema()
        row = {k: [None] for k in keys} | {"period_start": [None], "metric": [metric], "value": [None], "n": [0], "lo": [None], "hi": [None],
                                            "partial": [None]}
        return pl.DataFrame(row, schema_overrides={c: schema[c] for c in schema if c in row}).select(cols)
    measured = pl.col("n") > 0
    extra = [c for c in lf.collect_schema() if c not in cols]
    out = lf.with_columns(
        pl.when(measured).then(pl.col("value")).otherwise(None).alias("value"),
        pl.when(measured).then(pl.col("lo")).otherwise(None).alias("lo"),
        pl.when(measured).then(pl.col("hi")).otherwise(None).alias("hi"),
    ).select(*cols, *extra).sort([*keys, "period_start", "metric"], nulls_last=True,
                                 multithreaded=df.height > _SORT_THREADED_ROWS).collect(engine="in-memory")
    if (out["n"] == 0).any():
        warnings.warn(f"{metric or 'metric'}: some groups have n = 0; their value is null{_one_unmeasured(out, keys)}",
                      UndefinedMetricWarning, stacklevel=3)
    return out


def _one_unmeasured(df: "pl.DataFrame", keys: Sequence[str]) -> str:
    """The first group (and period) of a tidy frame with ``n = 0``, for a warning: ``", e.g. feature='b' in the period
    of 2026-01-02"``; empty when there is none."""
    import polars as pl

    rows = df.filter(pl.col("n") == 0).head(1)
    if rows.height == 0:
        return ""
    row = rows.row(0, named=True)
    said = [", ".join(f"{k}={row[k]!r}" for k in keys)] if keys else []
    start = row.get("period_start")
    if start is not None:
        said.append(f"the period of {start:%Y-%m-%d}" + ("" if (start.hour, start.minute) == (0, 0)
                                                          else f" {start:%H:%M}"))
    return ", e.g. " + " in ".join(said) if said else ""


# A metric's queries compiled to SQL, per process: Ibis operation (structural hash and equality) -> (SQL text,
# whether Ibis' pre-execution hooks must run). The same metric asked again with the same options is the same
# operation and skips compilation, and the walk of the whole expression that finds what it reads.
_COMPILED: dict[Any, tuple[str, bool]] = {}
_COMPILED_MAX = 1024
# Queries built by the metrics' shared definitions (:func:`proportion`), per process: their inputs -> expressions.
_BUILT: dict[Any, Any] = {}


def _remember(cache: dict, key: Any, value: Any) -> Any:
    """Keep ``value`` under ``key`` in a per-process cache, emptied when it holds :data:`_COMPILED_MAX` entries."""
    if len(cache) >= _COMPILED_MAX:
        cache.clear()
    cache[key] = value
    return value


def to_polars(expr: "ir.Table", *, tables: Mapping[str, Any] | None = None) -> "pl.DataFrame":
    """Execute an Ibis table expression into a polars frame, with the compiled SQL cached per query shape.

    On DuckDB the SQL is compiled once per distinct expression (a metric and its options: the same call later in a
    session is not compiled again) and run directly on the connection into Arrow, then cast to the expression's
    schema: the same frame ``expr.to_polars()`` gives, without its per-call compilation and without the pandas-based
    result converter Ibis imports (about a second of a fresh session's first metric). DuckDB's plan of the query is
    kept as a prepared statement of the connection and reused while the tables' sizes stay as they were
    (:func:`_run`). Other backends use ``expr.to_polars()``.

    ``tables`` (DuckDB only): name -> in-memory table (``ibis.memtable(...).op()``) loaded under that name for this
    run, for an expression built once over a placeholder ``DatabaseTable`` of that name (:func:`order_statistics`'
    per-group thresholds: its join is built and compiled once per query shape, whatever the thresholds).

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> t = db.calls
    >>> to_polars(t.group_by("feature").aggregate(n=t.count())).shape
    (0, 2)
    """
    import polars as pl

    op = expr.op()
    got = _COMPILED.get(op)
    # (name, in-memory table) loaded on the connection for this run only: the expression's own, then those given
    loads: list = []
    # An equal operation may read another connection (Ibis' backends compare equal by the database they open, and
    # two connections to one file, or two in-memory databases, are then the same): the backend is this expression's.
    backend = _first_source(op) if got is not None else None
    if backend is None:
        got = None
        import ibis.expr.operations as ops

        # One walk finds what the query reads and the backend it runs on (the tables' source, as
        # ``expr._find_backend`` finds it with a walk of its own: 20-50 ms on a large expression, at every call).
        found = op.find((ops.PhysicalTable, ops.SQLQueryResult, ops.ScalarUDF))
        sources = {n.source for n in found if isinstance(n, (ops.DatabaseTable, ops.SQLQueryResult))}
        # none (the default backend) or several (an error): Ibis' own rules
        backend = next(iter(sources)) if len(sources) == 1 else expr._find_backend(use_default=True)
        if getattr(backend, "name", None) != "duckdb" or getattr(backend, "_run_pre_execute_hooks", None) is None:
            return expr.to_polars()
        # Ibis' pre-execution hooks walk the whole expression three times (in-memory tables, Python UDFs, tables
        # read from Arrow streams): 3-4 ms a query, most of a warm call on a small table. A query that reads only
        # database tables needs none of them, so the walk above decides, once per query shape.
        nodes = [n for n in found if not isinstance(n, ops.SQLQueryResult)]
        memtables = [n for n in nodes if isinstance(n, ops.InMemoryTable)]
        if memtables and all(isinstance(n, (ops.DatabaseTable, ops.InMemoryTable)) for n in nodes):
            # In-memory tables (a percentile's per-group thresholds) are new objects with new data at every call, so
            # the query would never be found here again (compiling it: 15-20 ms of a 80 ms warm percentile on 100k
            # calls). It is compiled once per shape with each replaced by a named placeholder table, and their data
            # are loaded under those names for the run.
            names = [f"_wb_memtable_{i}" for i in range(len(memtables))]
            key = op.replace({m: ops.DatabaseTable(name=name, schema=m.schema, source=backend)
                              for m, name in zip(memtables, names)})
            got = _COMPILED.get(key)
            if got is None:
                got = _remember(_COMPILED, key, (backend.compile(key.to_expr()), False))
            loads = list(zip(names, memtables))
        else:
            got = _remember(_COMPILED, op, (backend.compile(expr),
                                            any(not isinstance(n, ops.DatabaseTable) for n in nodes)))
    sql, needs_hooks = got
    loads += (tables or {}).items()
    if needs_hooks:
        backend._run_pre_execute_hooks(expr)  # registers what else the query reads (an Arrow stream, a Python UDF)
    con = backend.con
    loaded: list[tuple[str, bool]] = []  # (name, as a temporary table: else a registered Arrow view)
    try:
        for name, m in loads:
            loaded.append((name, _load_memtable(con, backend, name, m)))
        table = _run(con, sql, reuse_plan=not loads and not needs_hooks)
    finally:
        for name, as_table in loaded:
            if as_table:
                con.execute(f'DROP TABLE IF EXISTS temp.main."{name}"')
            else:
                con.unregister(name)
    want = expr.schema().to_polars()
    # A sum of integers comes back from DuckDB as a 128-bit integer, an Arrow decimal of scale 0: cast to the 64-bit
    # integer the expression has in Arrow (checked: an overflow raises), not by a polars query (0.1-0.3 ms each)
    for i, field in enumerate(table.schema):
        if want.get(field.name) == pl.Int64 and getattr(field.type, "scale", None) == 0:
            table = table.set_column(i, field.name, table.column(i).cast("int64"))
    df = pl.from_arrow(table)
    casts = [pl.col(c).cast(dt) for c, dt in want.items()
             if df.schema[c] != dt and not (isinstance(dt, pl.Datetime) and isinstance(df.schema[c], pl.Datetime))]
    return df.with_columns(casts) if casts else df


# Per connection: SQL text -> (name of its prepared statement, the tables' sizes it was planned for). A query is
# prepared by its first run, and DuckDB reuses its plan from then on: the optimizer's pass over a metric's nested
# query is 1-2 ms, as long as a small metric's query takes to run (preparing costs 0.17 ms more than running once).
# DuckDB binds a prepared statement again when a table it reads changes shape or is created again, but keeps its plan
# when the data grows: a join planned while a table was empty then builds its hash table on that table once it holds
# millions of rows (measured: 600 times slower, 2 GB). So the tables' estimated sizes are read before each run (one
# catalog query, itself prepared: 0.26 ms) and the statement is planned again when any has changed.
_PLANS: "weakref.WeakKeyDictionary[Any, dict[str, tuple[str, Any]]]" = weakref.WeakKeyDictionary()
_PLAN_NAMES = itertools.count()
_SIZES = "_wb_table_sizes"
# in the catalog's order (the same while the catalog is; a list() in a fixed order costs twice the time: 0.48 ms)
_SIZES_SQL = "SELECT estimated_size FROM duckdb_tables()"


def _run(con: Any, sql: str, *, reuse_plan: bool = True) -> Any:
    """Run ``sql`` on the DuckDB connection ``con`` into an Arrow table, reusing its plan while the tables' sizes are
    those it was planned for.

    ``reuse_plan=False`` for a query that reads tables loaded for this run only (a statement prepared over a
    temporary table would be bound again at every run).

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> [_run(con, "select 41 + 1 as x").column("x").to_pylist() for _ in range(3)]
    [[42], [42], [42]]
    """
    if not reuse_plan:
        return con.execute(sql).to_arrow_table()
    plans = _PLANS.get(con)
    if plans is None:
        plans = _PLANS[con] = {}
    if sql not in plans and len(plans) >= _COMPILED_MAX:
        for name, _ in plans.values():
            con.execute(f"DEALLOCATE {name}")
        plans.clear()
    if _SIZES not in plans:
        con.execute(f"PREPARE {_SIZES} AS {_SIZES_SQL}")
        plans[_SIZES] = (_SIZES, None)
    sizes = con.execute(f"EXECUTE {_SIZES}").fetchall()
    entry = plans.get(sql)
    if entry is None or entry[1] != sizes:
        name = entry[0] if entry is not None else f"_wb_plan_{next(_PLAN_NAMES)}"
        con.execute(f"PREPARE {name} AS {sql}")  # a name prepared again is replaced
        plans[sql] = entry = (name, sizes)
    return con.execute(f"EXECUTE {entry[0]}").to_arrow_table()


def forget_cached() -> None:
    """Empty the per-process caches of built and compiled queries (:data:`_COMPILED`, :data:`_BUILT`,
    :data:`_BAND_QUERIES`).

    Their queries refer to the connections they were built on, so a connection the caller has dropped stays open while
    they hold it. ``workbench.connect`` calls this when DuckDB refuses to open a file that this process holds open with
    other settings (a reader dropped, then a writer wanted), before it tries again.

    >>> forget_cached()
    >>> len(_COMPILED), len(_BUILT), len(_BAND_QUERIES)
    (0, 0, 0)
    """
    _COMPILED.clear()
    _BUILT.clear()
    _BAND_QUERIES.clear()


def _first_source(op: Any) -> Any:
    """The backend of the first database table of ``op`` depth first, parents first (a few nodes down the chain of
    relations a metric builds on its tables), or None when none is found.

    For an operation found in :data:`_COMPILED`, which was compiled when its one backend was found by a walk of the
    whole expression (as ``expr._find_backend`` walks it: 20-50 ms on a large expression, at every call).
    """
    import ibis.expr.operations as ops

    stack, seen = [op], {id(op)}
    while stack:
        node = stack.pop()
        if isinstance(node, (ops.DatabaseTable, ops.SQLQueryResult)):
            return node.source
        # Ibis' own flattening of a node's arguments (nested tuples, lists and mappings) into its child nodes
        children = [c for c in node.__children__ if id(c) not in seen]
        for c in reversed(children):  # the first argument (a relation's parent) is visited first
            seen.add(id(c))
            stack.append(c)
    return None


#: In-memory tables up to this many values are loaded as a temporary table from JSON text (:func:`_load_memtable`).
#: Writing and reading the text costs about 2 us a value at every call (as rows of SQL ``VALUES``: 4-5 us), against
#: 2 ms for an Arrow view once ``pyarrow.dataset`` is imported (0.2-0.3 s, once a process): 5,000 values (a
#: percentile's thresholds for about 600 groups, 10 ms) keep a warm call's cost small; a larger table (a percentile by
#: user: 16,000 groups) goes as an Arrow view.
_MEMTABLE_LITERAL_CELLS = 5_000


def _load_memtable(con: Any, backend: Any, name: str, m: Any) -> bool:
    """Make the in-memory table ``m`` readable as ``name`` on the DuckDB connection ``con`` for one query.

    A small polars table of plain columns (text, numbers, true/false, dates, timestamps) becomes a temporary table
    filled from one JSON list per column written into the SQL text (:func:`_memtable_json`), each value exactly as it
    is (a float by its shortest round-trip text, which DuckDB reads back to the same bits); True is returned. Anything
    else is registered as an Arrow view, as Ibis' DuckDB backend registers an in-memory table (False): DuckDB's Arrow
    scan imports ``pyarrow.dataset``, and it pandas, 0.2-0.3 s of a fresh process's first percentile metric (so would
    a query parameter). A temporary table is private to the connection and allowed on a read-only one.
    """
    try:
        rows = _memtable_json(m)
    except Exception:  # a value Python cannot hold (a timestamp past the year 9999): the Arrow view takes it
        rows = None
    if rows is not None:
        mapper = backend.compiler.type_mapper
        cols = ", ".join(f"{sql_identifier(c)} {mapper.to_string(t)}" for c, t in m.schema.items())
        try:
            con.execute(f'CREATE OR REPLACE TEMPORARY TABLE "{name}" ({cols})')
            if rows:
                con.execute(f'INSERT INTO "{name}" {rows}')
            return True
        except Exception:  # whatever DuckDB refused there: the Arrow view
            try:
                con.execute(f'DROP TABLE IF EXISTS temp.main."{name}"')
            except Exception:
                pass
    try:
        con.register(name, m.data.to_pyarrow_dataset(m.schema))
    except AttributeError:
        con.register(name, m.data.to_pyarrow(m.schema))
    return False


def _memtable_json(m: Any) -> str | None:
    """A ``SELECT`` giving the rows of the in-memory table ``m`` in its column order ("" for no rows), or None when a
    column is not one :func:`_load_memtable` writes as text (or the table is large).

    Each column is one JSON list in a string literal, read by ``json_transform`` and unnested beside the others:
    DuckDB parses one long string much faster than rows of ``VALUES`` (7 against 23 ms for 417 rows of 8 columns).
    Text, whole numbers and true/false are JSON values; a float is its shortest round-trip text (``repr``: ``nan``
    and the infinities included), a timestamp and a date their ISO text, cast to the column's type by DuckDB; null is
    JSON null.

    >>> import ibis, polars as pl
    >>> print(_memtable_json(ibis.memtable(pl.DataFrame({"k": ["it's"], "x": [0.1]})).op()))
    SELECT unnest(json_transform('["it''s"]', '["VARCHAR"]')) AS "k", unnest(json_transform('["0.1"]', '["VARCHAR"]'))::DOUBLE AS "x"
    """
    import json

    import polars as pl

    df = getattr(m.data, "obj", None)
    if not isinstance(df, pl.DataFrame) or list(df.columns) != list(m.schema.names):
        return None
    if df.height * max(1, df.width) > _MEMTABLE_LITERAL_CELLS:
        return None
    parts = []
    for c, typ in m.schema.items():
        s = df[c]
        if typ.is_string() and s.dtype == pl.String:
            vals, spec, cast = s.to_list(), "VARCHAR", ""
            if any(v is not None and "\x00" in v for v in vals):
                return None
        elif typ.is_boolean() and s.dtype == pl.Boolean:
            vals, spec, cast = s.to_list(), "BOOLEAN", ""
        elif typ.is_integer() and s.dtype.is_integer():
            vals, spec, cast = s.to_list(), "BIGINT", ""
        elif typ.is_floating() and typ.nbytes == 8 and s.dtype == pl.Float64:
            # the shortest text that reads back as the same double ('nan', 'inf' and '-inf' included)
            vals, spec, cast = [None if v is None else repr(v) for v in s.to_list()], "VARCHAR", "::DOUBLE"
        elif (typ.is_timestamp() and typ.timezone is None and typ.scale in (None, 6)
              and s.dtype == pl.Datetime("us", None)):
            vals = [None if v is None else v.isoformat(sep=" ") for v in s.to_list()]
            spec, cast = "VARCHAR", "::TIMESTAMP"
        elif typ.is_date() and s.dtype == pl.Date:
            vals, spec, cast = [None if v is None else v.isoformat() for v in s.to_list()], "VARCHAR", "::DATE"
        else:
            return None
        text = json.dumps(vals, ensure_ascii=False, allow_nan=False)
        parts.append(f"unnest(json_transform({sql_literal(text)}, '[\"{spec}\"]')){cast} AS {sql_identifier(c)}")
    if not parts:
        return None
    return "SELECT " + ", ".join(parts) if df.height else ""


_POLARS_EVERY = {"hour": "1h", "day": "1d", "week": "1w", "month": "1mo"}


def period_bounds(at: "_dt.datetime | _dt.date", period: str) -> tuple[_dt.datetime, _dt.datetime, _dt.datetime]:
    """(previous start, current start, current end) of the ``period`` (hour, day, week, month) holding ``at``.

    Weeks start on Monday, as ``date_trunc('week', ...)`` and polars' ``"1w"`` have them; a date is its midnight.

    >>> import datetime as dt
    >>> period_bounds(dt.datetime(2026, 1, 1, 10, 30), "week")[1:]
    (datetime.datetime(2025, 12, 29, 0, 0), datetime.datetime(2026, 1, 5, 0, 0))
    >>> period_bounds(dt.date(2026, 1, 15), "month")[0]
    datetime.datetime(2025, 12, 1, 0, 0)
    """
    if not isinstance(at, _dt.datetime):
        at = _dt.datetime(at.year, at.month, at.day)
    if period == "hour":
        s = at.replace(minute=0, second=0, microsecond=0)
        return s - _dt.timedelta(hours=1), s, s + _dt.timedelta(hours=1)
    day = _dt.datetime(at.year, at.month, at.day)
    if period == "day":
        return day - _dt.timedelta(days=1), day, day + _dt.timedelta(days=1)
    if period == "week":
        s = day - _dt.timedelta(days=at.weekday())
        return s - _dt.timedelta(days=7), s, s + _dt.timedelta(days=7)
    if period != "month":
        raise ParameterError(f"period: expected hour, day, week or month, got {period!r}")
    s = _dt.datetime(at.year, at.month, 1)
    prev = _dt.datetime(at.year - 1, 12, 1) if at.month == 1 else _dt.datetime(at.year, at.month - 1, 1)
    nxt = _dt.datetime(at.year + 1, 1, 1) if at.month == 12 else _dt.datetime(at.year, at.month + 1, 1)
    return prev, s, nxt


def complete_grid(
    df: "pl.DataFrame",
    universe: "ir.Table",
    *,
    keys: Sequence[str],
    period: str,
    start: Any = None,
    end: Any = None,
    time: str = "ts",
    metric: str | None = None,
    groups: "pl.DataFrame | None" = None,
    fill: "Mapping[str, float] | None" = None,
) -> "pl.DataFrame":
    """Every group of the selection in every period of the window: missing (group, period) rows added with a null
    value, ``n = 0`` and an :class:`UndefinedMetricWarning`, so an empty group never vanishes from a result.
    ``fill``: the ``value``, ``lo`` and ``hi`` of a (group, period) without rows when the metric defines them, as a
    count does (no events is a count of 0, :func:`workbench.metrics.reliability.incident_count`): the rows are added
    with those, ``n = 0``, and no warning.

    ``universe`` is the selection's scope (the rows after ``start``/``end``/``where``, before the metric keeps only
    the rows it can measure): its distinct ``keys`` are the groups. The periods run from ``start`` to ``end``; an open
    side is the first (last) period the metric measured, else the first (last) row of the scope; truncated to
    ``period``; at ``"all"`` the one period is ``start``.
    ``df`` is a tidy frame (:func:`tidy`); the added rows carry nulls in every other column. ``groups``: the
    selection's groups (the distinct ``keys`` of ``universe``) when the caller already has them, from a query that
    grouped every row of the scope: the scope is then not read again for them (a frame holding them in its ``keys``
    columns; other columns and repeated rows are ignored).

    >>> import polars as pl, warnings, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 100), ('b', '2026-01-02', 'search', 'ok', null)")
    >>> df = tidy(pl.DataFrame({"feature": ["chat"], "period_start": [None], "value": [100.0], "n": [1]}),
    ...           keys=["feature"], metric="latency_p50_ms")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     complete_grid(df, db.calls, keys=["feature"], period="all").select("feature", "value", "n").rows()
    [('chat', 100.0, 1), ('search', None, 0)]
    """
    import polars as pl

    if period not in PERIODS:
        raise ParameterError(f"period: expected one of {', '.join(PERIODS)}, got {period!r}")
    s, e = as_timestamp(start), as_timestamp(end)
    keys = list(keys)
    if period == "all":
        periods = pl.LazyFrame({"period_start": [s]}, schema={"period_start": pl.Datetime("us")})
    else:
        lo, hi = s, (e - _dt.timedelta(microseconds=1)) if e is not None else None
        if (lo is None or hi is None) and "period_start" in df.columns:
            # an open window spans the periods the metric measured (not, say, a years-old import of the same table)
            first_measured, last_measured = df["period_start"].min(), df["period_start"].max()
            if first_measured is not None:
                lo = lo if lo is not None else first_measured
                hi = hi if hi is not None else last_measured
        if lo is None or hi is None:
            span = to_polars(universe.aggregate(_lo=universe[time].min(), _hi=universe[time].max()))
            lo = lo if lo is not None else span["_lo"][0]
            hi = hi if hi is not None else span["_hi"][0]
        if lo is None or hi is None or hi < lo:
            return df
        periods = pl.LazyFrame().select(pl.datetime_range(period_bounds(lo, period)[1], hi, _POLARS_EVERY[period],
                                                          time_unit="us").alias("period_start"))
    # the (group, period) pairs without a row, in one lazy query (each polars step costs 0.1-0.2 ms however small
    # the frame: on a small metric, several steps cost as much as its query)
    if keys:
        if groups is None:
            groups = to_polars(universe.select(*keys).distinct())
        if groups.height == 0:
            return df
        grid = groups.lazy().select(keys).unique().join(periods, how="cross")
    else:
        grid = periods
    have = df.lazy().select(*keys, pl.col("period_start").cast(pl.Datetime("us")))
    grid = grid.with_columns([pl.col(k).cast(df.schema[k]) for k in keys if k in df.columns])
    missing = grid.join(have, on=[*keys, "period_start"], how="anti", nulls_equal=True)
    # the one all-null row tidy() makes for an empty selection is replaced by the grid, if the grid adds any row
    empty = df.height == 1 and df["n"][0] == 0 and all(df[k][0] is None for k in [*keys, "period_start"])
    base = df.clear() if empty else df
    name = metric if metric is not None else (base["metric"][0] if base.height else None)
    filled = dict(fill or {})
    added = missing.with_columns(pl.lit(name, dtype=pl.String).alias("metric"),
                                 pl.lit(filled.get("value"), pl.Float64).alias("value"), pl.lit(0, pl.Int64).alias("n"),
                                 pl.lit(filled.get("lo"), pl.Float64).alias("lo"),
                                 pl.lit(filled.get("hi"), pl.Float64).alias("hi"))
    out = (pl.concat([base.lazy(), added], how="diagonal_relaxed").select(df.columns)
           .sort([*keys, "period_start", "metric"], nulls_last=True, multithreaded=df.height > _SORT_THREADED_ROWS)
           .collect(engine="in-memory"))
    if out.height == base.height:
        return df
    if fill is not None:
        return out
    warnings.warn(f"{name or 'metric'}: {out.height - base.height} group-period(s) of the selection have no data; "
                  f"their value is null (n = 0){_one_unmeasured(out, keys)}", UndefinedMetricWarning, stacklevel=3)
    return out


def proportion(
    t: "ir.Table",
    success: "ir.BooleanValue",
    *,
    by: Iterable[str] | str | None,
    period: str,
    metric: str,
    time: str = "ts",
    start: Any = None,
    end: Any = None,
    denominator: "ir.BooleanValue | None" = None,
    confidence: float = 0.95,
) -> "pl.DataFrame":
    """Share of rows (of ``denominator`` rows, default all) for which ``success`` holds, with a Wilson interval.

    The one definition behind every ``*_rate`` metric; ``start``/``end``: the selection's window, whose every period
    is in the result (:func:`complete_grid`).

    Examples
    --------
    >>> import datetime as dt, warnings, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...                       "('a', '2026-01-01 10:00', 'chat', 'ok'), ('b', '2026-01-01 11:00', 'chat', 'error'),"
    ...                       "('c', '2026-01-03 09:00', 'chat', 'ok')")
    >>> t = db.calls
    >>> with warnings.catch_warnings(record=True) as got:
    ...     warnings.simplefilter("always")
    ...     r = proportion(t, t.status == "error", by="feature", period="day", metric="error_rate",
    ...                    start="2026-01-01", end="2026-01-04")
    >>> [(d.day, v, n) for d, v, n in r.select("period_start", "value", "n").rows()]  # the empty day stays, null
    [(1, 0.5, 2), (2, None, 0), (3, 0.0, 1)]
    >>> round(r["lo"][0], 4), round(r["hi"][0], 4)  # Wilson 95% interval of 1 error in 2 calls
    (0.0945, 0.9055)
    >>> [str(w.message) for w in got if w.category is UndefinedMetricWarning]
    ["error_rate: 1 group-period(s) of the selection have no data; their value is null (n = 0), e.g. feature='chat' in the period of 2026-01-02"]
    """
    from workbench.stats import wilson_interval

    import ibis

    keys = check_by(t, by, fn=metric)
    # The query is built once per shape (the same table, conditions and options: Ibis operations compare by
    # structure): building it takes Ibis 2-3 ms, as long as a small metric's query takes to run. Tables of two
    # connections to one database compare equal: a query built on another connection is built again on this one.
    shape = (t.op(), success.op(), None if denominator is None else denominator.op(), tuple(keys), period, time,
             as_timestamp(start) if period == "all" else None)
    source = _first_source(shape[0])
    built = _BUILT.get(shape)
    if built is None or built[0] is not source:
        den = denominator.fill_null(False) if denominator is not None else ibis.literal(True)
        # Groups are formed over all rows, so a group whose denominator is empty stays visible with n = 0.
        # only the columns the aggregate reads: projecting a wide table (the scored join's ~40 columns) with mutate
        # costs Ibis several milliseconds per call, a small query's whole budget
        rows = with_period(t.select(*dict.fromkeys([*keys, time]), _hit=(success.fill_null(False) & den).cast("int64"),
                                    _den=den.cast("int64")), period, time=time, start=start)
        built = _remember(_BUILT, shape, (source, rows, rows.group_by([*keys, "period_start"]).aggregate(
            k=rows._hit.sum(), n=rows._den.sum())))
    _, t, query = built
    agg = to_polars(query)
    import numpy as np
    import polars as pl

    k, n = agg["k"].to_numpy(), agg["n"].to_numpy()
    lo, hi = wilson_interval(k, n, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):  # n = 0: no value (tidy)
        value = k / n
    # a frame of its columns (no polars query: each costs 0.1-0.3 ms, as much as a small metric's own query)
    agg = pl.DataFrame([*(agg[c] for c in (*keys, "period_start", "n")), pl.Series("value", value, pl.Float64),
                        pl.Series("lo", lo, pl.Float64), pl.Series("hi", hi, pl.Float64)])
    # every row of t is in agg: its groups are the selection's
    return complete_grid(tidy(agg, keys=keys, metric=metric), t, keys=keys, period=period, start=start, end=end,
                         time=time, metric=metric, groups=agg)


#: Force the way quantiles are found: True holds each group's values (a holistic aggregate: fastest when it fits in
#: memory), False never does (approximate quantiles, then a narrow band of exact values: bounded memory at any size);
#: None (default) chooses by the size of the tables against DuckDB's memory limit (:func:`holistic_fits`). Both give
#: identical results.
HOLISTIC_QUANTILES: bool | None = None
#: Bytes per row a holistic quantile takes at its peak, measured (3.0 GB peak RSS for 100M calls, two threads).
_HOLISTIC_BYTES_PER_ROW = 32
#: Share of DuckDB's memory limit a holistic quantile may take before the bounded form is used.
_HOLISTIC_SHARE = 0.5


def memory_passes(t: "ir.Table", bytes_per_row: float, share: float = 0.5) -> int:
    """How many passes a query over ``t`` should be split into so that each fits in ``share`` of DuckDB's memory limit.

    Estimated without a scan: the rows of the tables ``t`` reads (DuckDB's own estimate) times ``bytes_per_row``, what
    the query holds per input row at its peak, measured. 1 when that fits, on another backend (it manages its own
    memory), with no memory limit, and for an expression on no backend.

    >>> import workbench as wb
    >>> memory_passes(wb.connect(":memory:").calls, 100)
    1
    """
    import ibis
    import ibis.expr.operations as ops

    from workbench.db import memory_passes_for

    try:
        backend = ibis.get_backend(t)
    except Exception:  # an expression on no backend (an in-memory table): nothing large
        return 1
    if getattr(backend, "name", "") != "duckdb":
        return 1
    names = sorted({op.name for op in t.op().find(ops.DatabaseTable)})
    if not names:
        return 1
    con = backend.con
    # the names as literals, not a query parameter: that would import pandas (0.28 s of a process's first call)
    rows = con.execute("SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() WHERE database_name = "
                       f"current_database() AND table_name IN ({', '.join(map(sql_literal, names))})").fetchone()[0]
    return memory_passes_for(con, rows, bytes_per_row, share)


def holistic_fits(t: "ir.Table") -> bool:
    """Whether a quantile that holds every value of its groups fits comfortably in memory for a selection of ``t``.

    DuckDB's holistic aggregates (``quantile_cont``) keep each group's values outside its memory limit, so on a large
    table they can take several times the limit. Estimated from the rows of the tables ``t`` reads (DuckDB's own
    estimate, no scan) at 32 bytes a row, against half of DuckDB's memory limit (:func:`memory_passes`). Another
    backend: True (it manages its own memory). :data:`HOLISTIC_QUANTILES` overrides the choice.

    >>> import workbench as wb
    >>> holistic_fits(wb.connect(":memory:").calls)
    True
    """
    if HOLISTIC_QUANTILES is not None:
        return bool(HOLISTIC_QUANTILES)
    return memory_passes(t, _HOLISTIC_BYTES_PER_ROW, _HOLISTIC_SHARE) == 1


def band_grid(q: float) -> list[float]:
    """Fixed fractions around ``q``, increasing, whose approximate quantiles bound the rows a group's order statistics
    can need (see :func:`order_statistics`): ``q (1 - 2**-k)`` for k = 1..12 below ``q``, then ``q + (1 - q) 2**-k``
    for k = 12..1 above it, nearer ``q`` as the groups get larger.

    >>> [round(c, 4) for c in band_grid(0.5)][:3], [round(c, 4) for c in band_grid(0.5)][-3:]
    ([0.25, 0.375, 0.4375], [0.5625, 0.625, 0.75])
    """
    return [q * (1 - 2.0 ** -k) for k in range(1, 13)] + [q + (1 - q) * 2.0 ** -k for k in range(12, 0, -1)]


def _band_thresholds(grid: list[float], aq: Any, n: Any, first: Any, last: Any) -> tuple[Any, Any]:
    """Per group, the band ``[lower, upper]`` of values meant to hold the ranks ``first .. last`` (1-based): the
    highest grid quantile (columns of ``aq``) at a fraction safely below ``first / n`` and the lowest safely above
    ``last / n``; NaN where no grid fraction is (no bound on that side).

    The quantiles are approximate (a t-digest: DuckDB's ``approx_quantile``): a margin of 0.001 + 0.02 c (1 - c) + 3 / n
    at fraction c makes a miss rare (with 0.001 + 3 / n: none at the 95th percentile in 600 groups of 10M and of 100M
    calls, but a few at the median). Whether the band really holds the ranks is checked exactly by
    :func:`order_statistics`, which ranks a group whole if it does not. (DuckDB's ``reservoir_quantile`` is cheaper
    but its sample is not uniform within a group: one group in five missed by six standard errors.)
    """
    import numpy as np

    g = np.asarray(grid)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    rows = np.arange(len(n))
    lo_frac, hi_frac = np.asarray(first) / n, np.asarray(last) / n

    def margin(c: Any) -> Any:  # a t-digest is most accurate in the tails, least at the median
        return 0.001 + 0.02 * np.clip(c, 0.0, 1.0) * (1 - np.clip(c, 0.0, 1.0)) + 3.0 / n

    k_lo = (g[None, :] <= (lo_frac - margin(lo_frac))[:, None]).sum(axis=1)  # grid increasing
    k_hi = (g[None, :] >= (hi_frac + margin(hi_frac))[:, None]).sum(axis=1)
    with np.errstate(invalid="ignore"):
        lower = np.where(k_lo > 0, aq[rows, np.maximum(k_lo - 1, 0)], np.nan)
        upper = np.where(k_hi > 0, aq[rows, np.minimum(len(g) - k_hi, len(g) - 1)], np.nan)
    return lower, upper


#: order_statistics' band queries over the placeholder table _LUT, per query shape: (backend, rows, value column,
#: floor, threshold schema) -> expression.
_BAND_QUERIES: dict[Any, Any] = {}
_LUT = "_wb_thresholds"


def order_statistics(t: "ir.Table", value: str, *, keys: list[str], groups: "pl.DataFrame", aq: Any,
                     grid: list[float], ranks: Mapping[str, Any]) -> "pl.DataFrame":
    """Exact order statistics of ``value`` per group at given ranks, without sorting or holding any group whole.

    ``groups`` has the ``keys`` and ``n`` (the non-null values of the group: exactly) per row, ``aq`` the quantiles of
    each row's group at the ``grid`` fractions, exact or not (``approx_quantile``: bounded memory) and
    ``ranks`` maps an output name to the 1-based rank wanted in each row's group (outside 1..n: null). One more pass:

    1. from the wanted ranks and ``aq``, a band of values per group meant to hold them (:func:`_band_thresholds`);
    2. per group, the rows below the band counted and the rows inside it collected (a few hundred for a tail quantile
       of a group of any size); sorted, the band's i-th value has rank ``below + i``;
    3. a group whose band misses a wanted rank (the approximation was off, or a threshold compares as NaN) is ranked
       whole by a window, as a last resort.

    Returns one row per row of ``groups``, in its order, with the columns of ``ranks`` (float64).

    >>> import numpy as np, polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) "
    ...     "select 'c' || i, '2026-01-01', 'chat', 'ok', i from range(1, 1001) r(i)")
    >>> t = db.calls.mutate(_v=db.calls.latency_ms.cast("float64"))
    >>> grid = band_grid(0.5)
    >>> g = to_polars(t.group_by("feature").aggregate(n=t.count(), _aq=t._v.approx_quantile(grid)))
    >>> aq = approx_matrix(g["_aq"], len(grid))
    >>> order_statistics(t, "_v", keys=["feature"], groups=g, aq=aq, grid=grid,
    ...                  ranks={"x500": [500], "x1": [1], "x1001": [1001]}).rows()
    [(500.0, 1.0, None)]
    """
    import numpy as np
    import polars as pl

    import ibis
    import ibis.expr.operations as ops

    n = groups["n"].to_numpy().astype(np.int64)
    want = {name: np.asarray(r, dtype=np.int64) for name, r in ranks.items()}
    valid = [np.where((r >= 1) & (r <= n), r, -1) for r in want.values()]
    has = np.any(np.stack([v > 0 for v in valid]), axis=0)
    first = np.min(np.stack([np.where(v > 0, v, np.iinfo(np.int64).max) for v in valid]), axis=0)
    last = np.max(np.stack(valid), axis=0)
    lower, upper = _band_thresholds(grid, aq, n, np.where(has, first, 1), np.where(has, last, 1))
    lut_frame = groups.select(keys).with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_g"), pl.Series("_lo", lower, nan_to_null=True),
        pl.Series("_hi", upper, nan_to_null=True), pl.Series("_first", first, dtype=pl.Int64),
        pl.Series("_last", last, dtype=pl.Int64))
    # Another backend than DuckDB may not carry a null through an in-memory table (Spark received a null key as the
    # text 'NaN' through pandas: the null group's rows matched no row of it, and its interval was null): there each
    # key's nullness travels as a flag of its own.
    backend = _first_source(t.op())
    duck = getattr(backend, "name", None) == "duckdb"
    flags = {f"_null{i}": c for i, c in enumerate(keys)} if not duck else {}
    lut_frame = lut_frame.with_columns(*[pl.col(c).is_null().alias(f) for f, c in flags.items()])
    schema = ibis.schema({**{c: t.schema()[c] for c in keys}, "_g": "int64", "_lo": "float64", "_hi": "float64",
                          "_first": "int64", "_last": "int64", **dict.fromkeys(flags, "boolean")})
    rows = t.filter(t[value].notnull())

    def joined(frame: "pl.DataFrame | None", floor: float | None = None) -> "ir.Table":
        # frame None: the placeholder table _LUT, whose rows to_polars loads for the run (DuckDB)
        lut = (ibis.memtable(frame.select(*schema.names), schema=schema) if frame is not None
               else ops.DatabaseTable(name=_LUT, schema=schema, source=backend).to_expr())
        r = rows if floor is None else rows.filter(rows[value] >= floor)
        # null-safe: a null feature or model is a group of its own, as in the caller's group_by
        on = ([(r[c].isnull() & lut[f]) | (~lut[f] & (r[c] == lut[c])) for f, c in flags.items()] if flags
              else [r[c].identical_to(lut[c]) for c in keys])
        return r.join(lut, on).select(
            _v=r[value].cast("float64"), _g=lut._g, _lo=lut._lo, _hi=lut._hi, _first=lut._first, _last=lut._last)

    # When every group has a lower bound, the rows below the lowest one are below every band: they are not joined
    # at all, and a group's rows below its band are counted as its size minus its rows at or above the bound.
    band_lo = lower[has]
    floor = float(band_lo.min()) if band_lo.size and not np.isnan(band_lo).any() else None
    def band_query(frame: "pl.DataFrame | None") -> "ir.Table":
        j = joined(frame, floor)
        inside = (j._lo.isnull() | (j._v >= j._lo)) & (j._hi.isnull() | (j._v <= j._hi))
        return j.group_by("_g").aggregate(_from=j.count(where=j._lo.isnull() | (j._v >= j._lo)),
                                          _band=j._v.collect(where=inside))

    banded = lut_frame.filter(pl.Series(has))
    if duck:
        # the band query over a placeholder for the thresholds, built once per query shape (its join: 15 ms of Ibis
        # at every call, a third of a warm percentile on a small table), the thresholds loaded under its name
        # the backend by identity: Ibis' backends compare equal by the database they open (two in-memory databases
        # are equal), and the query runs where its placeholder's source is (the kept expression keeps it alive)
        key = (id(backend), rows.op(), value, floor, tuple(schema.items()))
        query = _BAND_QUERIES.get(key)
        if query is None:
            query = _remember(_BAND_QUERIES, key, band_query(None))
        bands = to_polars(query, tables={_LUT: ibis.memtable(banded.select(*schema.names), schema=schema).op()})
    else:
        bands = to_polars(band_query(banded))
    bands = bands.with_columns((pl.lit(pl.Series(n[bands["_g"].to_numpy()])) - pl.col("_from")).alias("_below"))
    # the band's values in order, ranked from the rows below it (NaN sorts last, as in DuckDB)
    ranked = (bands.explode("_band").drop_nulls("_band").sort("_g", "_band")
              .with_columns((pl.int_range(pl.len(), dtype=pl.Int64).over("_g") + 1 + pl.col("_below")).alias("_r"))
              .select("_g", "_r", pl.col("_band").alias("_x")))
    span = ranked.group_by("_g").agg(pl.col("_r").min().alias("_a"), pl.col("_r").max().alias("_b"))
    span = pl.DataFrame({"_g": np.arange(len(n)), "_first": first, "_last": last, "_has": has}).join(
        span, on="_g", how="left")
    missed = span.filter(pl.col("_has") & (pl.col("_a").is_null() | (pl.col("_a") > pl.col("_first"))
                                           | (pl.col("_b") < pl.col("_last"))))["_g"]
    if missed.len():  # rank those groups whole (a window sorts them; DuckDB spills the sort when it must)
        j = joined(lut_frame.filter(pl.col("_g").is_in(missed.implode())))
        j = j.mutate(_r=ibis.row_number().over(group_by=j._g, order_by=j._v) + 1)
        whole = to_polars(j.filter((j._r >= j._first) & (j._r <= j._last)).select("_g", "_v", "_r"))
        ranked = pl.concat([ranked.filter(~pl.col("_g").is_in(missed.implode())),
                            whole.select("_g", "_r", pl.col("_v").alias("_x"))])
    out = pl.DataFrame({"_g": np.arange(len(n)), **{name: v for name, v in zip(want, valid)}})
    for name in want:
        out = out.join(ranked.rename({"_r": name, "_x": f"_x_{name}"}), on=["_g", name], how="left")
    return out.sort("_g").select(*[pl.col(f"_x_{name}").cast(pl.Float64).alias(name) for name in want])


def approx_matrix(lists: "pl.Series", width: int) -> Any:
    """The approximate quantiles of each group as a float matrix, NaN where a group has none (an empty or an
    infinite-valued sample can give a null list): such a group gets no band and is ranked whole.

    >>> import polars as pl
    >>> approx_matrix(pl.Series([[1.0, 2.0], None]), 2).tolist()
    [[1.0, 2.0], [nan, nan]]
    """
    import numpy as np

    rows = [r if r is not None and len(r) == width else [None] * width for r in lists.to_list()]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def quantile_cont(x_floor: Any, x_ceil: Any, n: Any, q: float) -> Any:
    """The linearly interpolated q-quantile from its two order statistics, as DuckDB's ``quantile_cont`` computes it
    (to the last bit): position ``(n - 1) q`` (0-based), ``lo (1 - d) + hi d`` between the order statistics at its
    floor and ceiling, the lower one alone at an integer position.

    >>> import numpy as np
    >>> quantile_cont(np.array([3.0]), np.array([4.0]), np.array([5]), 0.6)
    array([3.4])
    """
    import numpy as np

    pos = (np.asarray(n, dtype=np.int64) - 1) * q
    d = pos - np.floor(pos)
    lo, hi = np.asarray(x_floor, dtype=np.float64), np.asarray(x_ceil, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(d == 0, lo, lo * (1 - d) + hi * d)


def percentile_frame(
    t: "ir.Table",
    value: "ir.NumericValue",
    *,
    q: float,
    keys: list[str],
    period: str,
    time: str,
    start: Any,
    metric: str,
    confidence: float,
    extra: dict[str, Callable[["ir.NumericColumn"], "ir.Scalar"]] | None = None,
    complete: bool = False,
    end: Any = None,
) -> "pl.DataFrame":
    """The q-quantile of ``value`` per group (linear interpolation) with its order-statistic interval, tidy.

    The interval is the pair of order statistics at the binomial ranks ``l`` and ``u`` of each group's size
    (:func:`workbench.stats.order_statistic_ranks`, which SQL cannot compute). Two passes, neither sorting the rows;
    past what fits in memory, neither holds a group's values either (no holistic aggregate: bounded memory):

    1. per group: the size and the quantiles at ``q`` and around it (:func:`band_grid`): exact when the values fit in
       memory (:func:`holistic_fits`), else approximate ones (a t-digest per group: bounded memory);
    2. :func:`order_statistics` at the ranks of the interval (and, for approximate quantiles, of the two order
       statistics the quantile interpolates between: the value as ``quantile_cont`` computes it), from a band of a
       few hundred values per group.

    The result is identical to ranking every row (tests/test_core.py keeps that implementation as the reference).

    ``complete=True`` returns every group of the selection (``t``) in every period of the window ``start``..``end``,
    as :func:`complete_grid` completes it: the first pass then groups every row of ``t`` (``n`` counts the values),
    so the selection's groups come with the sizes instead of from a second scan of ``t``.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) "
    ...     "select 'c' || i, '2026-01-01', 'chat', 'ok', i from range(1, 1001) r(i)")
    >>> t = db.calls
    >>> percentile_frame(t, t.latency_ms, q=0.95, keys=["feature"], period="all", time="ts", start=None,
    ...                  metric="latency_p95_ms", confidence=0.95).select("value", "n", "lo", "hi").rows()
    [(950.05, 1000, 936.0, 964.0)]
    """
    import polars as pl

    universe = t
    t = t.mutate(_v=value.cast("float64"))
    # with complete=True every row is grouped and n counts the values (the aggregates skip nulls); else only the rows
    # with a value
    t = with_period(t if complete else t.filter(t._v.notnull()), period, time=time, start=start)
    gk = [*keys, "period_start"]
    grid = band_grid(q)
    holistic = holistic_fits(t)
    # exact quantiles at the grid and q when they fit in memory (the value comes with them), else approximate ones
    aggs: dict[str, Any] = dict(n=t._v.count() if complete else t.count(),
                                _aq=t._v.quantile([*grid, q]) if holistic else t._v.approx_quantile(grid))
    for name, fn in (extra or {}).items():
        aggs[name] = fn(t._v)
    groups = to_polars(t.group_by(gk).aggregate(**aggs))
    selection = groups.select(keys) if complete else None
    if complete:
        groups = groups.filter(pl.col("n") > 0)
        t = t.filter(t._v.notnull())

    def done(df: "pl.DataFrame") -> "pl.DataFrame":
        if selection is None:
            return df
        return complete_grid(df, universe, keys=keys, period=period, start=start, end=end, time=time, metric=metric,
                             groups=selection)
    if groups.height == 0:
        empty = to_polars(t.group_by(gk).aggregate(value=t._v.mean(), n=t.count()))
        return done(tidy(empty, keys=keys, metric=metric))
    from workbench.stats import quantile_interval_ranks

    n = groups["n"].to_numpy()
    # the interval holds the value: on a small sample the binomial ranks can lie past the two order statistics the
    # value interpolates between (p99 of 100 and 200 ms: 199 with lo = X(2) = 200)
    lo_rank, hi_rank = quantile_interval_ranks(n, q, confidence)
    at, above = quantile_ranks(n, q)
    if holistic:
        qs = approx_matrix(groups["_aq"], len(grid) + 1)
        x = order_statistics(t, "_v", keys=gk, groups=groups, aq=qs[:, :-1], grid=grid,
                             ranks={"lo": lo_rank, "hi": hi_rank})
        value = qs[:, -1]
    else:
        x = order_statistics(t, "_v", keys=gk, groups=groups, aq=approx_matrix(groups["_aq"], len(grid)), grid=grid,
                             ranks={"_at": at, "_above": above, "lo": lo_rank, "hi": hi_rank})
        value = quantile_cont(x["_at"].to_numpy(), x["_above"].to_numpy(), n, q)
    groups = groups.drop("_aq").with_columns(pl.Series("value", value), x["lo"], x["hi"])
    return done(tidy(groups, keys=keys, metric=metric))


def mean_interval(df: "pl.DataFrame", confidence: float, *, floor: float | None = None) -> "pl.DataFrame":
    """Normal (CLT) interval of a mean from ``n``, ``value`` (the mean) and ``_sd`` (sample sd); drops ``_sd``.

    Null where n < 2 or the sd is null; ``floor`` clips the lower bound (0 for a cost, which cannot be negative).

    >>> import polars as pl
    >>> mean_interval(pl.DataFrame({"value": [10.0, 5.0], "n": [100, 1], "_sd": [5.0, None]}), 0.95).rows()
    [(10.0, 100, 9.020018007729973, 10.979981992270027), (5.0, 1, None, None)]
    """
    import polars as pl

    from workbench.stats import z_value

    half = z_value(confidence) * pl.col("_sd") / pl.col("n").cast(pl.Float64).sqrt()
    ok = (pl.col("n") >= 2) & pl.col("_sd").is_not_null()
    lo = pl.col("value") - half
    if floor is not None:
        lo = pl.max_horizontal(lo, pl.lit(float(floor)))
    return df.with_columns(pl.when(ok).then(lo).alias("lo"), pl.when(ok).then(pl.col("value") + half).alias("hi")).drop("_sd")


# --- the registry: each metric's contract, registered once -------------------------------------------------------

#: Units a metric can carry, from the suffix of its name (the naming rule of the module docstring).
UNITS = ("share", "ms", "usd", "count", "minutes", "score", "ratio", "per_s", "steps")
DIRECTIONS = ("lower", "higher", "none")
#: The keyword options every metric takes; anything else a metric accepts is one of its own ``options``.
COMMON_OPTIONS = ("by", "period", "start", "end", "where", "confidence")


@dataclass(frozen=True)
class Metric:
    """A metric's contract: the function and what a caller, a report and a test may rely on.

    ``by``, ``options`` and ``required`` are read from the function's signature (its one source of truth);
    ``definition`` is the first line of its docstring. ``periods`` are the periods it is defined for; ``example``
    holds a working value for each required option (docs and the invariant tests use it). ``splits`` names the
    columns that split a group's value further within a period (a cohort and its offset, a funnel step, a model):
    such a metric has no one value per group, so no scorecard target can be set on it (:func:`target_refusal`).

    Examples
    --------
    >>> def slow_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, threshold_ms):
    ...     \"\"\"Share of calls slower than threshold_ms.\"\"\"
    >>> m = Metric(slow_rate, unit="share", direction="lower", table="calls", example={"threshold_ms": 1000})
    >>> m.name, m.by, m.options, m.required, m.definition
    ('slow_rate', ('feature',), ('threshold_ms',), ('threshold_ms',), 'Share of calls slower than threshold_ms.')
    >>> register(Metric(slow_rate, unit="share", direction="lower", table="calls"))  # no example for threshold_ms
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: register slow_rate: give an example value for the required options ['threshold_ms']
    """

    fn: Callable[..., Any]
    unit: str
    direction: str
    table: str
    periods: tuple[str, ...] = PERIODS
    needs: tuple[str, ...] = ()
    example: Mapping[str, Any] = field(default_factory=dict)
    splits: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def definition(self) -> str:
        doc = (self.fn.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split()) if doc else ""

    @functools.cached_property
    def _params(self) -> Mapping[str, inspect.Parameter]:
        # the signature, read once (registering 55 metrics read each five times: 5 ms of a process's first metric)
        return inspect.signature(self.fn).parameters

    @property
    def by(self) -> tuple[str, ...]:
        d = self._params["by"].default
        return (d,) if isinstance(d, str) else tuple(d or ())

    @property
    def options(self) -> tuple[str, ...]:
        ps = self._params
        return tuple(n for n, p in ps.items() if p.kind is p.KEYWORD_ONLY and n not in COMMON_OPTIONS)

    @property
    def open_options(self) -> bool:
        """Whether the metric passes further options through (``**options``), so any keyword is accepted."""
        return any(p.kind is p.VAR_KEYWORD for p in self._params.values())

    @property
    def required(self) -> tuple[str, ...]:
        ps = self._params
        sig = [n for n in self.options if ps[n].default is inspect.Parameter.empty and ps[n].kind is not ps[n].VAR_KEYWORD]
        return tuple(dict.fromkeys([*sig, *self.needs]))

    def as_dict(self) -> dict[str, Any]:
        """The contract as plain data (``workbench metrics list --format json``, a report's definitions block)."""
        return {"metric": self.name, "unit": self.unit, "direction": self.direction, "table": self.table,
                "by": list(self.by), "options": list(self.options), "required": list(self.required),
                "periods": list(self.periods), "definition": self.definition}


def _check_contract(m: Metric) -> None:
    name = m.name
    if m.unit not in UNITS:
        raise ParameterError(f"register {name}: unit must be one of {', '.join(UNITS)}, got {m.unit!r}")
    if m.direction not in DIRECTIONS:
        raise ParameterError(f"register {name}: direction must be one of {', '.join(DIRECTIONS)}, got {m.direction!r}")
    ps = m._params
    missing = [o for o in ("by", "period", "start", "end", "where") if o not in ps]
    if missing or next(iter(ps)) != "db":
        raise ParameterError(f"register {name}: a metric takes (db, *, by, period, start, end, where, ...); "
                             f"missing {missing or ['db first']}")
    bad = [p for p in m.periods if p not in PERIODS]
    if bad:
        raise ParameterError(f"register {name}: unknown periods {bad}")
    if not m.definition:
        raise ParameterError(f"register {name}: a metric needs a docstring whose first line defines it")
    lacking = [o for o in m.required if o not in m.example]
    if lacking:
        raise ParameterError(f"register {name}: give an example value for the required options {lacking}")


def _out_of_memory(name: str, db: Any, exc: Exception) -> Exception:
    """The one-line error for a metric DuckDB could not fit in its memory limit (a traceback, exit 1, would read as
    a check that fired)."""
    from workbench.errors import ResourceError, first_line

    try:
        limit = db.duckdb.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    except Exception:
        limit = "?"
    first = first_line(exc)
    return ResourceError(f"{name}: ran out of memory under DuckDB's memory_limit of {limit} ({first}); raise the limit "
                         f"($WORKBENCH_MEMORY_LIMIT or connect(memory_limit=...)) or narrow the selection "
                         f"(start, end, where)")


def mark_partial(df: "pl.DataFrame", period: str, start: Any = None, end: Any = None) -> "pl.DataFrame":
    """``df`` with ``partial`` set: whether the window ``[start, end)`` covers only part of the row's period.

    A first week that the window starts in on a Thursday holds four days of data, and its count reads as a drop:
    ``partial`` is True there (and for the last period, when ``end`` falls inside it), False for a period the window
    covers whole. Time after the clock holds no data yet: an ``end`` later than now counts as now, so the current
    week of a window that ends next Monday is partial, as is the period the clock is in when there is no ``end``.
    Otherwise, on an open side (no ``start``, no ``end``) the window runs to the data, whose coverage of its first
    (last) period is not known: that period's ``partial`` is null. At
    ``period="all"`` the one period is the window itself: False, True when its ``end`` is after the clock. A row
    without a ``period_start`` is null. Every metric of the suite gets it at its boundary.

    >>> import datetime as dt, polars as pl
    >>> df = pl.DataFrame({"period_start": [dt.datetime(2025, 12, 29), dt.datetime(2026, 1, 5)]})
    >>> mark_partial(df, "week", start="2026-01-01", end="2026-01-12")["partial"].to_list()  # Thursday to Monday
    [True, False]
    >>> mark_partial(df, "week", start="2026-01-01")["partial"].to_list()
    [True, None]
    """
    import polars as pl

    from workbench.schema import utc_now

    ps = pl.col("period_start")
    s, e = as_timestamp(start), as_timestamp(end)
    now = utc_now()
    # the clock ends what the window can hold: a window's end after it covers its last period only up to now
    unfinished = e is not None and e > now
    e = min(e, now) if e is not None else None
    if "period_start" not in df.columns or period not in PERIODS:
        partial = pl.lit(None, pl.Boolean)
    elif period == "all":
        partial = pl.when(ps.is_not_null() | pl.lit(start is None)).then(pl.lit(unfinished))
    else:
        # Kleene logic: a cut side is True whatever the other says; an unknown side leaves False unknown
        unknown = pl.lit(None, pl.Boolean)
        head = (ps < pl.lit(s)) if s is not None else pl.when(ps != ps.min()).then(False).otherwise(unknown)
        # (with no end, a period the clock is in is still cut by it: its days after now hold no data yet)
        tail = (ps.dt.offset_by(_POLARS_EVERY[period]) > pl.lit(e)) if e is not None else \
            pl.when(ps.dt.offset_by(_POLARS_EVERY[period]) > pl.lit(now)).then(True) \
            .when(ps != ps.max()).then(False).otherwise(unknown)
        partial = pl.when(ps.is_not_null()).then(head | tail)
    out = df.with_columns(partial.cast(pl.Boolean).alias("partial"))
    if "hi" in out.columns and "partial" not in df.columns:  # a frame built without tidy(): after hi, as tidy puts it
        cols = [c for c in out.columns if c != "partial"]
        cols.insert(cols.index("hi") + 1, "partial")
        out = out.select(cols)
    return out


def check_window(name: str, start: Any, end: Any) -> None:
    """Refuse a window ``[start, end)`` that holds no time (else a selection of nothing: one null row, n = 0), with a
    message naming ``name``; every metric's boundary, and the tables that take a window as the metrics do.

    >>> check_window("agreement", "2026-01-08", "2026-01-01")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: agreement: start 2026-01-08 is not before end 2026-01-01: the window [start, end) holds no time
    """
    lo, hi = as_timestamp(start, what=f"{name}: start"), as_timestamp(end, what=f"{name}: end")
    if lo is not None and hi is not None and lo >= hi:
        raise ParameterError(f"{name}: start {start} is not before end {end}: the window [start, end) holds no time")


def _bound(m: Metric) -> Callable[..., "pl.DataFrame"]:
    """The metric as callers see it: the common boundary work done once, here, for every metric.

    It accepts a path or a connection for ``db``, and refuses an unknown option, a missing required option, a period
    the metric is not defined for, a ``by``, ``where``, ``start``, ``end`` or ``confidence`` of the wrong type or out
    of its domain, or a window whose ``end`` is not after its ``start``, with a message that names the metric and the
    parameter.
    """
    fn, name = m.fn, m.name
    accepted = set(m._params) - {"db"}
    default_period = m._params["period"].default
    open_options, required = m.open_options, m.required

    @functools.wraps(fn)
    def metric(db: Any, **kwargs: Any) -> "pl.DataFrame":
        from workbench.db import as_workbench

        unknown = [] if open_options else sorted(set(kwargs) - accepted)
        if unknown:
            raise ParameterError(f"{name}: unknown option {unknown[0]!r}; it takes {', '.join(sorted(accepted))}")
        missing = [o for o in required if o not in kwargs]
        if missing:
            raise ParameterError(f"{name}: option {missing[0]} is required (e.g. {missing[0]}="
                                 f"{m.example[missing[0]]!r})")
        period = kwargs.get("period", default_period)
        if period not in m.periods:
            raise ParameterError(f"{name}: period must be {' or '.join(map(repr, m.periods))}, got {period!r}")
        if "by" in kwargs:
            check_names(name, "by", kwargs["by"], optional=True, what="column names", empty=True)
        if "confidence" in kwargs:
            check_fraction(name, "confidence", kwargs["confidence"])
        parse_where(kwargs.get("where"), fn=name)
        check_window(name, kwargs.get("start"), kwargs.get("end"))
        opened = isinstance(db, (str, os.PathLike))
        if opened:
            from workbench.db import connect

            db = connect(db, read_only=True)  # a metric only reads: a path is opened read-only, never created
        db = as_workbench(db)
        from workbench._gc import paused

        try:
            with paused():
                out = fn(db, **kwargs)
            return mark_partial(out, period, kwargs.get("start"), kwargs.get("end"))
        except Exception as exc:
            if type(exc).__name__ != "OutOfMemoryException":
                raise
            raise _out_of_memory(name, db, exc) from exc
        finally:
            if opened:  # closed here, not when collected: the compiled queries cached per process refer to it
                db.close()

    metric.contract = m  # type: ignore[attr-defined]
    return metric


def register(*metrics: Metric, namespace: dict[str, Any] | None = None) -> dict[str, Callable[..., "pl.DataFrame"]]:
    """Register a module's metrics: check each contract, return ``{name: metric}`` for the module's ``SUITE``.

    With ``namespace`` (the module's ``globals()``), the module's own names are rebound to the registered metrics,
    so ``workbench.metrics.latency.latency_p95_ms`` and ``wb.latency_p95_ms`` are one object, with the boundary work.

    >>> def demo_count(db, *, by=("feature",), period="day", start=None, end=None, where=None):
    ...     \"\"\"Calls in the period.\"\"\"
    >>> s = register(Metric(demo_count, unit="count", direction="none", table="calls"))
    >>> s["demo_count"].contract.as_dict()["definition"]
    'Calls in the period.'
    """
    out: dict[str, Callable[..., Any]] = {}
    for m in metrics:
        _check_contract(m)
        if m.name in out:
            raise ParameterError(f"metric {m.name!r} is registered twice")
        out[m.name] = _bound(m)
    if namespace is not None:
        namespace.update(out)
    return out


def _suite() -> dict[str, Callable[..., "pl.DataFrame"]]:
    # merged afresh on every call (the modules are imported once; a dict merge is cheap), so a reloaded module's
    # metrics are the ones served
    merged: dict[str, Callable[..., Any]] = {}
    for mod in SUITE_MODULES:
        module = importlib.import_module(f"workbench.metrics.{mod}")
        for name, fn in getattr(module, "SUITE", {}).items():
            if name in merged:
                raise ParameterError(f"metric {name!r} is registered twice ({mod})")
            merged[name] = fn
    return merged


def suite() -> dict[str, Callable[..., "pl.DataFrame"]]:
    """All registered metrics, name -> metric (with its contract as ``.contract``), from the modules' ``SUITE``.

    >>> "latency_p95_ms" in suite()
    True
    >>> suite()["latency_p95_ms"].contract.unit
    'ms'
    """
    return dict(_suite())


def contracts() -> dict[str, Metric]:
    """Every metric's contract, name -> :class:`Metric`.

    >>> contracts()["error_rate"].as_dict()["unit"], contracts()["error_rate"].direction
    ('share', 'lower')
    """
    return {name: fn.contract for name, fn in _suite().items()}


def target_refusal(name: str, bound: str) -> str | None:
    """Why a scorecard target ``<name>_<bound>`` (``bound``: ``max`` or ``min``) cannot be evaluated, or None when it
    can: the metric must be registered, give one value per feature over a report's window (period ``all``, no option
    it cannot run without, no further split) and have a better direction that the bound keeps (``max`` on a metric
    better lower, ``min`` on one better higher).

    >>> target_refusal("error_rate", "max") is None, target_refusal("error_rate", "min")
    (True, 'error_rate is better lower: its target is error_rate_max')
    >>> target_refusal("hallucinaton_rate", "max")
    "no metric 'hallucinaton_rate'; did you mean 'hallucination_rate'?"
    """
    import difflib

    known = contracts()
    m = known.get(name)
    if m is None:
        close = difflib.get_close_matches(name, list(known), n=1)
        return f"no metric {name!r}" + (f"; did you mean {close[0]!r}?" if close else
                                        " (workbench metrics list shows them)")
    if m.direction == "none":
        return f"{name} has no better direction (neither higher nor lower is better), so it has no target"
    if "all" not in m.periods:
        return f"{name} is defined per {', '.join(m.periods)} only, not over a report's window, so it has no target"
    if m.required:
        return f"{name} needs the option {m.required[0]} (e.g. {m.example.get(m.required[0])!r}), which a target cannot give"
    if m.splits:
        return f"{name} has no one value per feature (one per {' and '.join(m.splits)}), so it has no target"
    want = "max" if m.direction == "lower" else "min"
    if bound != want:
        return f"{name} is better {m.direction}: its target is {name}_{want}"
    return None


def check_targets(settings: Any) -> None:
    """Refuse a scorecard target of ``workbench.toml`` that the scorecard cannot evaluate, naming the file, the
    table, the key and why (:func:`target_refusal`): it would otherwise be accepted and never evaluated, which reads
    as met. ``settings``: :class:`workbench.config.Settings` (or what :func:`~workbench.config.load_settings` takes).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[targets.chat]\\nhallucinaton_rate_max = 0.05\\n")
    >>> check_targets(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [targets.chat]: hallucinaton_rate_max: no metric 'hallucinaton_rate'; did you mean 'hallucination_rate'?
    """
    from workbench.config import load_settings
    from workbench.errors import ConfigError

    s = load_settings(settings)
    for feature, ms in s.targets.items():
        for metric, t in ms.items():
            why = target_refusal(metric, t.bound)
            if why:
                raise ConfigError(f"{s.config.where(f'targets.{feature}')}: {metric}_{t.bound}: {why}")


def compute(name: str, db: Any, **kwargs: Any) -> "pl.DataFrame":
    """Compute one metric of the suite by name.

    Raises :class:`~workbench.errors.UnknownNameError` (a ``KeyError``) with the closest names when ``name`` is not
    one of them.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...                       "('a', '2026-01-05', 'chat', 'ok'), ('b', '2026-01-05', 'chat', 'error')")
    >>> compute("error_rate", db, period="all").select("feature", "value", "n").rows()
    [('chat', 0.5, 2)]
    >>> compute("eror_rate", db)
    Traceback (most recent call last):
    ...
    workbench.errors.UnknownNameError: ...
    """
    check_name("compute", "name", name, what="a metric name")  # a list or None is no name (not "unhashable type")
    s = _suite()
    if name not in s:
        raise UnknownNameError("metric", name, s)
    return s[name](db, **kwargs)
