"""The metric suite and the machinery every metric shares.

Every metric is a plain function with one signature::

    fn(db, *, by=("feature",), period="day", start=None, end=None, where=None, **options) -> polars.DataFrame

``db`` is a :class:`~workbench.db.Workbench` (or a path to one). The aggregate is one Ibis expression, so it runs on
the DuckDB default and on any backend Ibis supports. The result is the one tidy shape of the workbench:

    group keys..., ``period_start``, ``metric``, ``value``, ``n``, ``lo``, ``hi``

``n`` is the denominator (calls, answers, users...). ``lo``/``hi`` are the interval where one makes sense, else null.
An empty or undefined group has a null ``value`` with ``n = 0`` and an :class:`UndefinedMetricWarning`, never a
silent 0, and it never vanishes: every group of the selection's scope appears in every period of the window
(:func:`complete_grid`).

Naming: ``*_rate`` is a share in 0..1, ``*_ms`` milliseconds, ``*_usd`` dollars, ``*_count`` a count, ``*_score``
higher is better (``hallucination_score``: higher is more likely hallucinated, as its docs say).

The suite is a plain dict, name -> function, merged from the ``SUITE`` dict of each metric module; the same dict drives
the CLI (``workbench metrics NAME``), the reports and the invariant tests.

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

from workbench.errors import NotFoundError, ParameterError, UnknownNameError

import datetime as _dt
import importlib
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

from workbench.db import Where, as_timestamp, parse_where, scope  # noqa: F401  (re-exported: the metric toolkit)

__all__ = ["PERIODS", "RESULT_COLUMNS", "UndefinedMetricWarning", "Where", "parse_where", "as_timestamp", "scope",
           "check_by", "with_period", "tidy", "complete_grid", "proportion", "percentile_frame", "mean_interval", "suite", "compute"]

PERIODS = ("hour", "day", "week", "month", "all")
_UNITS = {"hour": "h", "day": "D", "week": "W", "month": "M"}
RESULT_COLUMNS = ("period_start", "metric", "value", "n", "lo", "hi")

# Modules whose SUITE dicts make up the suite, imported only when the suite is asked for.
SUITE_MODULES = ("latency", "cost", "reliability", "adoption", "experiments", "drift", "hallucination")


class UndefinedMetricWarning(UserWarning):
    """A metric was asked for a group with no data (n = 0); its value is null."""


def check_by(t: "ir.Table", by: Iterable[str] | str | None, *, fn: str = "metric") -> list[str]:
    """Validate the grouping columns, raising a ``KeyError`` that names the function and the available columns."""
    if by is None:
        return []
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in t.columns]
    if missing:
        raise NotFoundError(f"{fn}: cannot group by {missing}; columns: {', '.join(t.columns)}")
    return keys


def with_period(t: "ir.Table", period: str, *, time: str = "ts", start: Any = None) -> "ir.Table":
    """Add ``period_start``: the time truncated to the period (weeks start on Monday), or ``start`` for ``"all"``."""
    import ibis

    if period not in PERIODS:
        raise ParameterError(f"period: expected one of {', '.join(PERIODS)}, got {period!r}")
    if period == "all":
        s = as_timestamp(start)
        return t.mutate(period_start=ibis.literal(s, type="timestamp") if s else ibis.null("timestamp"))
    return t.mutate(period_start=t[time].cast("timestamp").truncate(_UNITS[period]))


def tidy(df: "pl.DataFrame", *, keys: Sequence[str], metric: str | None = None) -> "pl.DataFrame":
    """Shape an aggregate into the tidy result: ``keys..., period_start, metric, value, n, lo, hi``.

    Rows with ``n == 0`` get a null value. An empty frame becomes one row with null keys and ``n = 0``. Either case
    warns with :class:`UndefinedMetricWarning`.

    >>> import polars as pl
    >>> tidy(pl.DataFrame({"feature": ["a"], "period_start": [None], "value": [1.0], "n": [3]}),
    ...      keys=["feature"], metric="x_count").columns
    ['feature', 'period_start', 'metric', 'value', 'n', 'lo', 'hi']
    """
    import polars as pl

    if metric is not None:
        df = df.with_columns(pl.lit(metric).alias("metric"))
    for col, dtype in (("lo", pl.Float64), ("hi", pl.Float64), ("period_start", pl.Datetime("us"))):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(col))
    df = df.with_columns(
        pl.col("period_start").cast(pl.Datetime("us")),
        pl.col("value").cast(pl.Float64),
        pl.col("n").fill_null(0).cast(pl.Int64),
        pl.col("lo").cast(pl.Float64),
        pl.col("hi").cast(pl.Float64),
    )
    if df.height == 0:
        warnings.warn(f"{metric or 'metric'}: no data in the selection; value is null (n = 0)", UndefinedMetricWarning, stacklevel=3)
        row = {k: [None] for k in keys} | {"period_start": [None], "metric": [metric], "value": [None], "n": [0], "lo": [None], "hi": [None]}
        df = pl.DataFrame(row, schema_overrides={c: df.schema[c] for c in df.columns if c in row})
    elif df.filter(pl.col("n") == 0).height:
        warnings.warn(f"{metric or 'metric'}: some groups have n = 0; their value is null", UndefinedMetricWarning, stacklevel=3)
    df = df.with_columns(
        pl.when(pl.col("n") > 0).then(pl.col("value")).otherwise(None).alias("value"),
        pl.when(pl.col("n") > 0).then(pl.col("lo")).otherwise(None).alias("lo"),
        pl.when(pl.col("n") > 0).then(pl.col("hi")).otherwise(None).alias("hi"),
    )
    cols = [*keys, *RESULT_COLUMNS]
    extra = [c for c in df.columns if c not in cols]
    return df.select(*cols, *extra).sort([*keys, "period_start", "metric"], nulls_last=True)


_POLARS_EVERY = {"hour": "1h", "day": "1d", "week": "1w", "month": "1mo"}


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
) -> "pl.DataFrame":
    """Every group of the selection in every period of the window: missing (group, period) rows added with a null
    value, ``n = 0`` and an :class:`UndefinedMetricWarning`, so an empty group never vanishes from a result.

    ``universe`` is the selection's scope (the rows after ``start``/``end``/``where``, before the metric keeps only
    the rows it can measure): its distinct ``keys`` are the groups. The periods run from ``start`` to ``end``; an open
    side is the first (last) period the metric measured, else the first (last) row of the scope; truncated to
    ``period``; at ``"all"`` the one period is ``start``.
    ``df`` is a tidy frame (:func:`tidy`); the added rows carry nulls in every other column.

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
        periods = pl.DataFrame({"period_start": [s]}, schema={"period_start": pl.Datetime("us")})
    else:
        lo, hi = s, (e - _dt.timedelta(microseconds=1)) if e is not None else None
        measured = df["period_start"].drop_nulls() if "period_start" in df.columns else None
        if (lo is None or hi is None) and measured is not None and measured.len():
            # an open window spans the periods the metric measured (not, say, a years-old import of the same table)
            lo = lo if lo is not None else measured.min()
            hi = hi if hi is not None else measured.max()
        if lo is None or hi is None:
            span = universe.aggregate(_lo=universe[time].min(), _hi=universe[time].max()).to_polars()
            lo = lo if lo is not None else span["_lo"][0]
            hi = hi if hi is not None else span["_hi"][0]
        if lo is None or hi is None or hi < lo:
            return df
        first = pl.Series([lo], dtype=pl.Datetime("us")).dt.truncate(_POLARS_EVERY[period])[0]
        periods = pl.DataFrame({"period_start": pl.datetime_range(first, hi, _POLARS_EVERY[period], time_unit="us",
                                                                  eager=True)})
    if keys:
        groups = universe.select(*keys).distinct().to_polars()
        if groups.height == 0:
            return df
        grid = groups.join(periods, how="cross")
    else:
        grid = periods
    have = df.select(*keys, "period_start").with_columns(pl.col("period_start").cast(pl.Datetime("us")))
    grid = grid.with_columns([pl.col(k).cast(df.schema[k]) for k in keys if k in df.columns])
    missing = grid.join(have, on=[*keys, "period_start"], how="anti", nulls_equal=True)
    if missing.height == 0:
        return df
    # the one all-null row tidy() makes for an empty selection is replaced by the grid
    if df.height == 1 and df["n"][0] == 0 and all(df[k][0] is None for k in [*keys, "period_start"]):
        df = df.clear()
    name = metric if metric is not None else (df["metric"][0] if df.height else None)
    warnings.warn(f"{name or 'metric'}: {missing.height} group-period(s) of the selection have no data; their value "
                  "is null (n = 0)", UndefinedMetricWarning, stacklevel=3)
    added = missing.with_columns(pl.lit(name, dtype=pl.String).alias("metric"), pl.lit(None, pl.Float64).alias("value"),
                                 pl.lit(0, pl.Int64).alias("n"), pl.lit(None, pl.Float64).alias("lo"),
                                 pl.lit(None, pl.Float64).alias("hi"))
    out = pl.concat([df, added], how="diagonal_relaxed")
    return out.select(df.columns).sort([*keys, "period_start", "metric"], nulls_last=True)


def proportion(
    t: "ir.Table",
    success: "ir.BooleanValue",
    *,
    by: Iterable[str] | str | None,
    period: str,
    metric: str,
    time: str = "ts",
    start: Any = None,
    denominator: "ir.BooleanValue | None" = None,
    confidence: float = 0.95,
) -> "pl.DataFrame":
    """Share of rows (of ``denominator`` rows, default all) for which ``success`` holds, with a Wilson interval.

    The one definition behind every ``*_rate`` metric.
    """
    from workbench.stats import wilson_interval

    import ibis

    keys = check_by(t, by, fn=metric)
    den = denominator.fill_null(False) if denominator is not None else ibis.literal(True)
    # Groups are formed over all rows, so a group whose denominator is empty stays visible with n = 0.
    t = with_period(t.mutate(_hit=(success.fill_null(False) & den).cast("int64"), _den=den.cast("int64")), period, time=time, start=start)
    agg = t.group_by([*keys, "period_start"]).aggregate(k=t._hit.sum(), n=t._den.sum()).to_polars()
    import polars as pl

    lo, hi = wilson_interval(agg["k"].to_numpy(), agg["n"].to_numpy(), confidence=confidence)
    agg = agg.with_columns(
        (pl.col("k") / pl.col("n")).alias("value"), pl.Series("lo", lo), pl.Series("hi", hi)
    ).drop("k")
    return complete_grid(tidy(agg, keys=keys, metric=metric), t, keys=keys, period=period, start=start, time=time,
                         metric=metric)


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
) -> "pl.DataFrame":
    """The q-quantile of ``value`` per group (linear interpolation) with its order-statistic interval, tidy.

    Two Ibis queries: the groups and their sizes (to look the binomial ranks up, which SQL cannot compute), then one
    aggregate over the rows ranked by a window. The window is partitioned by a small integer group id joined from the
    first result rather than by the group keys themselves: the ranks are the same, but DuckDB sorts one integer
    about twice as fast as strings and a timestamp (benchmarks/bench_metrics.py, 10M calls).
    """
    import ibis
    import polars as pl

    t = t.mutate(_v=value.cast("float64"))
    t = with_period(t.filter(t._v.notnull()), period, time=time, start=start)
    gk = [*keys, "period_start"]
    groups = t.group_by(gk).aggregate(_n=t.count()).to_polars()
    if groups.height == 0:
        empty = t.group_by(gk).aggregate(value=t._v.mean(), n=t.count()).to_polars()
        return tidy(empty, keys=keys, metric=metric)
    from workbench.stats import order_statistic_ranks

    lo_rank, hi_rank = order_statistic_ranks(groups["_n"].to_numpy(), q, confidence)
    groups = groups.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_g"), pl.Series("_l", lo_rank),
                                 pl.Series("_u", hi_rank))
    schema = ibis.schema({**{k: t.schema()[k] for k in gk}, "_g": "int64", "_l": "int64", "_u": "int64"})
    lut = ibis.memtable(groups.select(*gk, "_g", "_l", "_u"), schema=schema)
    # null-safe: a null feature or model is a group of its own, as in the group_by above
    j = t.join(lut, [t[k].identical_to(lut[k]) for k in gk]).select("_v", "_g", "_l", "_u")
    j = j.mutate(_r=ibis.row_number().over(group_by=j._g, order_by=j._v) + 1)
    aggs = dict(
        value=j._v.quantile(q),
        n=j.count(),
        lo=j._v.max(where=j._r == j._l),
        hi=j._v.max(where=j._r == j._u),
    )
    for name, fn in (extra or {}).items():
        aggs[name] = fn(j._v)
    df = j.group_by("_g").aggregate(**aggs).to_polars()
    df = groups.select(*gk, "_g").join(df, on="_g", how="inner").drop("_g")
    return tidy(df, keys=keys, metric=metric)


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


def suite() -> dict[str, Callable[..., "pl.DataFrame"]]:
    """All registered metrics, name -> function, from the metric modules' ``SUITE`` dicts.

    >>> "latency_p95_ms" in suite()
    True
    """
    merged: dict[str, Callable[..., Any]] = {}
    for mod in SUITE_MODULES:
        try:
            module = importlib.import_module(f"workbench.metrics.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name == f"workbench.metrics.{mod}":
                continue
            raise
        for name, fn in getattr(module, "SUITE", {}).items():
            if name in merged:
                raise RuntimeError(f"metric {name!r} is registered twice ({mod})")
            merged[name] = fn
    return merged


def compute(name: str, db: Any, **kwargs: Any) -> "pl.DataFrame":
    """Compute one metric of the suite by name.

    Raises a ``KeyError`` listing the known metrics when ``name`` is not one of them.
    """
    from workbench.db import as_workbench

    s = suite()
    if name not in s:
        raise UnknownNameError("metric", name, s)
    return s[name](as_workbench(db), **kwargs)
