"""The metric suite and the machinery every metric shares.

Every metric is a plain function with one signature::

    fn(db, *, by=("feature",), period="day", start=None, end=None, where=None, **options) -> polars.DataFrame

``db`` is a :class:`~workbench.db.Workbench` (or a path to one). The aggregate is one Ibis expression, so it runs on
the DuckDB default and on any backend Ibis supports. The result is the one tidy shape of the workbench:

    group keys..., ``period_start``, ``metric``, ``value``, ``n``, ``lo``, ``hi``

``n`` is the denominator (calls, answers, users...). ``lo``/``hi`` are the interval where one makes sense, else null.
An empty or undefined group has a null ``value`` with ``n = 0`` and an :class:`UndefinedMetricWarning`, never a
silent 0.

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

import datetime as _dt
import importlib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

PERIODS = ("hour", "day", "week", "month", "all")
_UNITS = {"hour": "h", "day": "D", "week": "W", "month": "M"}
RESULT_COLUMNS = ("period_start", "metric", "value", "n", "lo", "hi")

# Modules whose SUITE dicts make up the suite, imported only when the suite is asked for.
SUITE_MODULES = ("latency", "cost", "reliability", "adoption", "experiments", "drift", "hallucination")


class UndefinedMetricWarning(UserWarning):
    """A metric was asked for a group with no data (n = 0); its value is null."""


Where = Mapping[str, Any] | Sequence[str] | None


def parse_where(where: Where) -> dict[str, Any]:
    """Normalise ``where``: a mapping column -> value (or list of values), or ``["col=value", ...]`` from the CLI.

    >>> parse_where(["feature=chat", "model=a,b"])
    {'feature': 'chat', 'model': ['a', 'b']}
    """
    if not where:
        return {}
    if isinstance(where, Mapping):
        return dict(where)
    out: dict[str, Any] = {}
    for item in where:
        if "=" not in item:
            raise ValueError(f"where: expected column=value, got {item!r}")
        col, _, val = item.partition("=")
        out[col.strip()] = val.split(",") if "," in val else val
    return out


def as_timestamp(value: Any) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo is None else value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    try:
        return as_timestamp(_dt.datetime.fromisoformat(str(value)))
    except ValueError:
        raise ValueError(f"expected an ISO date or timestamp, got {value!r}") from None


def scope(t: "ir.Table", *, time: str | None = "ts", start: Any = None, end: Any = None, where: Where = None) -> "ir.Table":
    """Filter a table to ``start <= time < end`` and the ``where`` conditions.

    ``where`` values given as strings are compared with the column cast to string, so CLI input works on any type.
    Unknown columns raise a ``KeyError`` naming the column and the table's columns.
    """
    conds = []
    s, e = as_timestamp(start), as_timestamp(end)
    if time is not None and (s is not None or e is not None):
        if s is not None:
            conds.append(t[time] >= s)
        if e is not None:
            conds.append(t[time] < e)
    for col, val in parse_where(where).items():
        if col not in t.columns:
            raise KeyError(f"where: no column {col!r}; columns: {', '.join(t.columns)}")
        c = t[col]
        values = val if isinstance(val, (list, tuple, set)) else [val]
        if any(isinstance(v, str) for v in values) and not c.type().is_string():
            c = c.cast("string")
        conds.append(c.isin(list(values)) if len(values) > 1 else c == values[0])
    return t.filter(conds) if conds else t


def check_by(t: "ir.Table", by: Iterable[str] | str | None, *, fn: str = "metric") -> list[str]:
    """Validate the grouping columns, raising a ``KeyError`` that names the function and the available columns."""
    if by is None:
        return []
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in t.columns]
    if missing:
        raise KeyError(f"{fn}: cannot group by {missing}; columns: {', '.join(t.columns)}")
    return keys


def with_period(t: "ir.Table", period: str, *, time: str = "ts", start: Any = None) -> "ir.Table":
    """Add ``period_start``: the time truncated to the period (weeks start on Monday), or ``start`` for ``"all"``."""
    import ibis

    if period not in PERIODS:
        raise ValueError(f"period: expected one of {', '.join(PERIODS)}, got {period!r}")
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
    return tidy(agg, keys=keys, metric=metric)


def suite() -> dict[str, Callable[..., "pl.DataFrame"]]:
    """All registered metrics, name -> function, from the metric modules' ``SUITE`` dicts.

    >>> "latency_p95_ms" in suite()
    True
    """
    merged: dict[str, Callable[..., Any]] = {}
    for mod in SUITE_MODULES:
        try:
            module = importlib.import_module(f"workbench.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name == f"workbench.{mod}":
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
        raise KeyError(f"no metric {name!r}; known: {', '.join(sorted(s))}")
    return s[name](as_workbench(db), **kwargs)
