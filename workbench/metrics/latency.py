"""Latency and error metrics of the calls: percentiles with intervals, TTFT, TPOT, throughput, error rates.

Every function has the one metric signature (see :mod:`workbench.metrics`) and returns the tidy frame, grouped by
whatever ``by`` names (feature, model, provider, prompt_version, variant, environment, ...) and ``period``.

Conventions
-----------
* **Percentiles** use linear interpolation between order statistics: numpy's default (``method="linear"``), DuckDB's
  ``quantile_cont`` (what Ibis' ``quantile`` compiles to). polars' default ``"nearest"`` gives other numbers.
* **Percentile intervals** are the distribution-free order-statistic (binomial) interval: with ``B ~ Binomial(n, q)``
  the number of calls below the true q-quantile, ``[X(l), X(u)]`` with ``l = F⁻¹(α/2)`` and
  ``u = F⁻¹(1 - α/2) + 1`` (1-based ranks of the sorted values, ``F`` the binomial CDF) covers the q-quantile with
  probability ``F(u-1) - F(l-1) >= 1 - α`` whatever the latency distribution. When the sample is too small for a
  bound (``l < 1`` or ``u > n``, e.g. p99 of fewer than ~370 calls has no upper bound at 95%) that side is null:
  unbounded, not "equal to the max".
* **TTFT** (time to first token) is first streamed chunk - send time; **TPOT** (time per output token) is
  ``(latency - ttft) / (streamed tokens - 1)`` per call, as vLLM's benchmarks define it, the streamed tokens being
  ``output_tokens - reasoning_tokens`` (hidden reasoning is counted in the output tokens but never streamed: it
  happens before the first token); ``tpot_ms`` reports the *mean* over calls (vLLM's headline "Mean TPOT") with the
  median in an extra column ``p50``.
* **Rates** are shares of the calls in the selection, with a Wilson interval (:func:`workbench.metrics.proportion`).
* **Which operations**: an agent's trace holds three kinds of spans (the model calls, the tool calls and the whole
  task), whose latencies differ by an order of magnitude; a percentile over the mix describes none of them. Every
  metric here measures **one kind**, named by ``operation`` and repeated in the result's ``operations`` column:
  ``"llm"`` (the default) is the model calls (``operation`` chat, text_completion or generate_content, or none given,
  as in a request log); ``"task"`` the whole agent tasks (``invoke_agent``), also :func:`task_latency_p95_ms`;
  ``"tool"`` the tool calls (``execute_tool``); any other value an exact ``operation`` name; ``"all"`` every span.

Naming: ``*_ms`` milliseconds (lower is better), ``*_rate`` a share in 0..1 (lower is better for the error rates),
``*_per_s`` a throughput (higher is better).

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute(
...     "insert into calls (call_id, ts, feature, status, latency_ms) values "
...     "('a', '2026-01-01 10:00', 'chat', 'ok', 100), ('b', '2026-01-01 11:00', 'chat', 'ok', 300),"
...     "('c', '2026-01-01 12:00', 'chat', 'error', 200)")
>>> latency_p50_ms(db).select("feature", "metric", "value", "n").rows()
[('chat', 'latency_p50_ms', 200.0, 3)]
"""

from __future__ import annotations

from workbench.errors import ParameterError, check_fraction, check_int

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from workbench.metrics.core import (Metric, Where, agent_tasks, approx_matrix, band_grid, check_by, complete_grid, holistic_fits,
                                    mean_interval, order_statistics, percentile_frame, proportion, quantile_cont,
                                    quantile_ranks, register, scope, tidy, to_polars, with_period)
from workbench.stats import order_statistic_ranks  # noqa: F401  (public here too, as before)

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

_OFFSETS = {"hour": "-1h", "day": "-1d", "week": "-1w", "month": "-1mo"}
# gen_ai.operation.name values of a call to a model (OpenTelemetry GenAI "inference" operations)
LLM_OPERATIONS = ("chat", "text_completion", "generate_content")
OPERATION_KINDS = {"llm": LLM_OPERATIONS, "task": ("invoke_agent",), "tool": ("execute_tool",)}


def operation_filter(t: "ir.Table", operation: str, fn: str, db: Any = None) -> "ir.Table":
    """The spans of one operation kind: ``"llm"`` model calls (also those with no operation), ``"task"`` agent
    tasks (with ``db``: the task spans of :func:`~workbench.metrics.core.agent_tasks`, not a sub-agent nested in a
    task; without it every ``invoke_agent`` span), ``"tool"`` tool calls, any other string that exact ``operation``,
    ``"all"`` every span.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, status, operation) values ('a', '2026-01-01', 'ok', 'chat'),"
    ...     "('b', '2026-01-01', 'ok', null), ('c', '2026-01-01', 'ok', 'execute_tool')")
    >>> operation_filter(db.calls, "llm", "x").count().to_pyarrow().as_py()
    2
    """
    if not isinstance(operation, str) or not operation:
        raise ParameterError(f"{fn}: operation must be 'llm', 'task', 'tool', 'all' or an operation name, got {operation!r}")
    if operation == "all":
        return t
    if operation == "llm":
        return t.filter(t.operation.isnull() | t.operation.isin(LLM_OPERATIONS))
    if operation == "task" and db is not None:
        tasks = agent_tasks(db).select(_task_id="call_id")
        return t.semi_join(tasks, t.call_id == tasks._task_id)
    return t.filter(t.operation.isin(OPERATION_KINDS.get(operation, (operation,))))


#: The rest of an answering model's name after the name asked for, when it is a dated or numbered snapshot of it
#: (gpt-4o answers as gpt-4o-2024-08-06, claude-sonnet-4-5 as claude-sonnet-4-5-20250929, gpt-3.5-turbo as
#: gpt-3.5-turbo-0125, gemini-1.5-pro as gemini-1.5-pro-002, a Vertex model as name@20240620).
_SNAPSHOT_SUFFIX = r"^[-@]([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{3,8})$"


def other_model(t: "ir.Table") -> "ir.BooleanValue":
    """Whether a call was answered by another model than the one asked for: ``model`` and ``request_model`` both known
    and different, unless ``model`` is a dated or numbered snapshot of ``request_model`` (a trailing ``-latest`` of
    the name asked for is an alias of a snapshot too: claude-3-5-sonnet-latest answered as
    claude-3-5-sonnet-20241022). A smaller model of the same family (gpt-4o-mini for gpt-4o) is another model.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, status, request_model, model) values "
    ...     "('a', '2026-01-01', 'ok', 'gpt-4o', 'gpt-4o-2024-08-06'), ('b', '2026-01-01', 'ok', 'gpt-4o', 'gpt-4o-mini'),"
    ...     "('c', '2026-01-01', 'ok', null, 'gpt-4o')")
    >>> t = db.calls
    >>> t.select("call_id", other=other_model(t)).order_by("call_id").to_polars().rows()
    [('a', False), ('b', True), ('c', False)]
    """
    asked = t.request_model.re_replace(r"-latest$", "")
    snapshot = t.model.startswith(asked) & t.model.substr(asked.length()).re_search(_SNAPSHOT_SUFFIX)
    return ((t.model != t.request_model) & ~snapshot).fill_null(False)


def _label(df: "pl.DataFrame", operation: str) -> "pl.DataFrame":
    """Say which spans were measured: the ``operations`` column (``"llm"``, ``"task"``, ...)."""
    import polars as pl

    return df.with_columns(pl.lit(operation).alias("operations"))


def _calls_percentile(db, column: str, q: float, metric: str, *, by, period, start, end, where, confidence,
                      operation: str = "llm") -> "pl.DataFrame":
    check_fraction(metric, "confidence", confidence)
    t = operation_filter(scope(db.calls, start=start, end=end, where=where), operation, metric, db)
    keys = check_by(t, by, fn=metric)
    # groups whose calls have no latency at all (e.g. a trace without durations) stay visible with n = 0
    return _label(percentile_frame(t, t[column], q=q, keys=keys, period=period, time="ts", start=start, end=end,
                                   metric=metric, confidence=confidence, complete=True), operation)


def latency_quantile_ms(
    db, *, q: float, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None,
    end: Any = None, where: Where = None, column: str = "latency_ms", confidence: float = 0.95, operation: str = "llm",
) -> "pl.DataFrame":
    """Any quantile of a duration column of ``calls`` (``latency_ms`` or ``ttft_ms``) with its order-statistic interval.

    The named percentile metrics (``latency_p95_ms``...) call this; use it for other quantiles. The metric name in the
    result is ``{column stem}_q{q*100}_ms``, e.g. ``latency_q75_ms``.

    Parameters
    ----------
    db : Workbench
    q : float
        Quantile in (0, 1), interpolated linearly (numpy default, DuckDB ``quantile_cont``).
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    column : {"latency_ms", "ttft_ms"}
    confidence : float
        Level of the distribution-free binomial interval on the order statistics.
    operation : str
        Which spans: ``"llm"`` (default) model calls, ``"task"``, ``"tool"``, ``"all"`` or an operation name.

    Returns
    -------
    polars.DataFrame
        Tidy frame; ``value`` in milliseconds (lower is better), ``n`` calls with a non-null ``column``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 100), ('b', '2026-01-01', 'chat', 'ok', 200),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 400)")
    >>> latency_quantile_ms(db, q=0.75)[["metric", "value", "n"]].rows()  # 200 + 0.5 * (400 - 200)
    [('latency_q75_ms', 300.0, 3)]
    """
    fn = "latency_quantile_ms"
    q = check_fraction(fn, "q", q)
    if column not in ("latency_ms", "ttft_ms"):
        raise ParameterError(f"{fn}: column must be 'latency_ms' or 'ttft_ms', got {column!r}")
    stem = column.removesuffix("_ms")
    label = f"{q * 100:g}".replace(".", "_")
    return _calls_percentile(db, column, q, f"{stem}_q{label}_ms", by=by, period=period, start=start, end=end,
                             where=where, confidence=confidence, operation=operation)


_PCT_DOC = """{title}

    Definition: {definition}, by linear interpolation (numpy default, DuckDB ``quantile_cont``) over the
    {spans} with a non-null ``{column}``; ``lo``/``hi`` are the distribution-free order-statistic (binomial) interval
    at ``confidence``, null on a side the sample is too small to bound.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the interval (default 0.95).
    operation : str
        Which spans: ``"{operation}"`` (default{opdoc}), ``"llm"``, ``"task"``, ``"tool"``, ``"all"`` or an operation
        name; the result's ``operations`` column says which.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in milliseconds (lower is better), ``n`` = spans with a ``{column}``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms, ttft_ms, operation) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 100, 10, '{op}'), ('b', '2026-01-01', 'chat', 'ok', 200, 20, '{op}'),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 300, 30, '{op}'), ('d', '2026-01-01', 'chat', 'ok', 400, 40, '{op}'),"
    ...     "('e', '2026-01-01', 'chat', 'ok', 9000, 90, '{other}')")
    >>> {name}(db)[["metric", "value", "n", "operations"]].rows()  # {arithmetic}; e is {othername}
    [('{name}', {expected}, 4, '{operation}')]
"""


def _pct_doc(name: str, column: str, q: float, title: str, operation: str = "llm") -> str:
    import numpy as np

    spans = {"llm": "LLM calls (chat and completion operations; tool calls and whole agent tasks are not in it)",
             "task": "whole agent tasks (``invoke_agent`` spans)"}[operation]
    opdoc = {"llm": ": the LLM calls", "task": ": whole agent tasks"}[operation]
    what = "a time to first token" if column == "ttft_ms" else "an end-to-end latency"
    rank = {0.5: "half", 0.9: "90%", 0.95: "95%", 0.99: "99%"}[q]
    definition = f"{rank} of the {spans.split(' (')[0]} had {what} at or below this value"

    base = [100.0, 200.0, 300.0, 400.0] if column == "latency_ms" else [10.0, 20.0, 30.0, 40.0]
    h = 3 * q
    lo_i = math.floor(h)
    arithmetic = f"h = (n - 1) q = {h:g}: {base[lo_i]:g} + {h - lo_i:.2g} * ({base[min(lo_i + 1, 3)]:g} - {base[lo_i]:g})"
    expected = round(float(np.percentile(base, q * 100)), 6)
    return _PCT_DOC.format(title=title, column=column, name=name, arithmetic=arithmetic, expected=expected,
                           definition=definition, spans=spans, operation=operation, opdoc=opdoc,
                           op="chat" if operation == "llm" else "invoke_agent",
                           other="execute_tool", othername="a tool call, not counted")


def percentile_metric(name: str, column: str, q: float, title: str) -> Callable[..., "pl.DataFrame"]:
    """Make the named percentile metric ``name``: the ``q``-quantile of ``column`` with its interval.

    One function behind the whole family (``latency_p50_ms`` ... ``ttft_p99_ms``); ``title`` is the metric's one-line
    definition and heads its docstring, whose worked example is computed for the metric's own ``q``.

    >>> f = percentile_metric("latency_p90_ms", "latency_ms", 0.90, "90th percentile of end-to-end latency.")
    >>> f.__name__, f.__doc__.splitlines()[0]
    ('latency_p90_ms', '90th percentile of end-to-end latency.')
    """

    def metric(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95,
               operation="llm"):
        return _calls_percentile(db, column, q, name, by=by, period=period, start=start, end=end, where=where,
                                 confidence=confidence, operation=operation)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = _pct_doc(name, column, q, title)
    return metric


latency_p50_ms = percentile_metric("latency_p50_ms", "latency_ms", 0.50, "Median end-to-end latency of the calls, in milliseconds.")
latency_p90_ms = percentile_metric("latency_p90_ms", "latency_ms", 0.90, "90th percentile of end-to-end latency, in milliseconds.")
latency_p95_ms = percentile_metric("latency_p95_ms", "latency_ms", 0.95, "95th percentile of end-to-end latency, in milliseconds.")
latency_p99_ms = percentile_metric("latency_p99_ms", "latency_ms", 0.99, "99th percentile of end-to-end latency, in milliseconds.")
ttft_p50_ms = percentile_metric("ttft_p50_ms", "ttft_ms", 0.50, "Median time to first token (streamed calls), in milliseconds.")
ttft_p90_ms = percentile_metric("ttft_p90_ms", "ttft_ms", 0.90, "90th percentile of time to first token, in milliseconds.")
ttft_p95_ms = percentile_metric("ttft_p95_ms", "ttft_ms", 0.95, "95th percentile of time to first token, in milliseconds.")
ttft_p99_ms = percentile_metric("ttft_p99_ms", "ttft_ms", 0.99, "99th percentile of time to first token, in milliseconds.")


def task_latency_p95_ms(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95,
                        operation="task"):
    return _calls_percentile(db, "latency_ms", 0.95, "task_latency_p95_ms", by=by, period=period, start=start,
                             end=end, where=where, confidence=confidence, operation=operation)


task_latency_p95_ms.__doc__ = _pct_doc("task_latency_p95_ms", "latency_ms", 0.95,
                                       "95th percentile of the duration of a whole agent task, in milliseconds.", "task")


def tpot_ms(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95,
            operation="llm"):
    """Mean time per streamed output token after the first, in milliseconds: ``(latency - ttft) / (streamed - 1)``.

    The streamed tokens are ``output_tokens - reasoning_tokens`` (a null ``reasoning_tokens`` counts 0): a reasoning
    model (OpenAI o-series, ``completion_tokens_details.reasoning_tokens``) counts its hidden reasoning in the output
    tokens but streams only the visible answer, after the first token, so dividing by every output token made the time
    per token many times too small. (A provider that streams its reasoning as text, DeepSeek's ``reasoning_content``,
    and also reports it as reasoning tokens is read the same way, so its TPOT comes out too large: give its calls
    a null ``reasoning_tokens`` in the mapping.) Computed per call, over calls with more than one streamed token and non-null
    ``ttft_ms`` and ``latency_ms``, the first token not after the last (``ttft_ms <= latency_ms``: a TTFT over the whole latency, from clocks that disagree,
    would give a negative time per token); the value
    is the mean over those calls (vLLM's "Mean TPOT") with a normal interval, the median is the extra column ``p50``.
    1000 / tpot_ms is the decode speed in tokens per second.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the interval of the mean (default 0.95).
    operation : str
        Which spans: ``"llm"`` (default) the LLM calls, ``"task"``, ``"tool"``, ``"all"`` or an operation name.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in milliseconds per token (lower is better), ``n`` calls, extra column ``p50``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms, ttft_ms, output_tokens) "
    ...     "values ('a', '2026-01-01', 'chat', 'ok', 580, 350, 5), ('b', '2026-01-01', 'chat', 'ok', 400, 100, 7),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 300, 300, 1)")
    >>> tpot_ms(db)[["value", "n", "p50"]].rows()  # (230/4 + 300/6) / 2; c has one token: no TPOT
    [(53.75, 2, 53.75)]
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms, ttft_ms, output_tokens, "
    ...     "reasoning_tokens) values ('d', '2026-01-02', 'chat', 'ok', 1500, 900, 405, 400)")
    >>> tpot_ms(db, period="all")[["value", "n"]].rows()  # d streams 5 tokens: 600/4 = 150; (57.5 + 50 + 150) / 3
    [(85.833333, 3)]
    """
    import ibis
    import polars as pl

    fn = "tpot_ms"
    check_fraction(fn, "confidence", confidence)
    t = operation_filter(scope(db.calls, start=start, end=end, where=where), operation, "tpot_ms", db)
    keys = check_by(t, by, fn=fn)
    scoped = t
    # One pass over every row of the selection: _v is NULL where a call has no TPOT (the aggregates skip it), so the
    # groups come out of the same query and the selection is not read a second time for them.
    # (a first token after the last, from two clocks, gives no TPOT: a negative time per token is not a speed)
    # hidden reasoning tokens are in output_tokens (the OTel GenAI rule) but are not streamed
    streamed = t.output_tokens - t.reasoning_tokens.fill_null(0)
    measurable = (streamed > 1) & t.ttft_ms.notnull() & (t.latency_ms >= t.ttft_ms)
    v = (t.latency_ms - t.ttft_ms) / (streamed - 1).cast("float64")
    t = with_period(t.mutate(_v=measurable.ifelse(v, ibis.null("float64"))), period, start=start)
    # The median exactly: by a holistic aggregate when the values fit in memory, else (memory bounded at any size)
    # approximate quantiles here, then the two middle order statistics from a narrow band of values.
    grid = band_grid(0.5)
    gk = [*keys, "period_start"]
    holistic = holistic_fits(t)
    agg = to_polars(t.group_by(gk).aggregate(
        value=t._v.mean(), n=t._v.count(), _sd=t._v.std(how="sample"),
        _aq=t._v.quantile([0.5]) if holistic else t._v.approx_quantile(grid)))
    df = agg.filter(pl.col("n") > 0)  # groups and periods with no TPOT are added back by complete_grid, with a warning
    n = df["n"].to_numpy()
    p50 = []
    if holistic:
        p50 = approx_matrix(df["_aq"], 1)[:, 0]
    elif df.height:
        at, above = quantile_ranks(n, 0.5)
        x = order_statistics(t, "_v", keys=gk, groups=df, aq=approx_matrix(df["_aq"], len(grid)), grid=grid,
                             ranks={"a": at, "b": above})
        p50 = quantile_cont(x["a"].to_numpy(), x["b"].to_numpy(), n, 0.5)
    df = df.drop("_aq").with_columns(pl.Series("p50", p50, dtype=pl.Float64))
    out = tidy(mean_interval(df, confidence, floor=0.0), keys=keys, metric=fn)  # a time per token is not negative
    return _label(complete_grid(out, scoped, keys=keys, period=period, start=start, end=end, metric=fn,
                                groups=agg.select(keys)), operation)


def output_tokens_per_s(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95,
                        operation="llm"):
    """End-to-end output throughput: output tokens per second of call duration (TTFT included).

    The ratio of sums ``sum(output_tokens) / sum(latency_ms / 1000)`` over calls with both (and latency > 0): each
    second of waiting counts once, so long calls weigh more than a mean of per-call speeds would give them. The
    interval is the delta-method (ratio-estimator) normal interval. ``output_tokens`` includes a reasoning model's
    hidden reasoning tokens (they are generated and billed as output, though never streamed): this is the rate at
    which the model produced tokens, not the rate at which the user saw text; :func:`tpot_ms` leaves them out.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the interval (default 0.95).

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in tokens per second (higher is better), ``n`` calls.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms, output_tokens) "
    ...     "values ('a', '2026-01-01', 'chat', 'ok', 1000, 50), ('b', '2026-01-01', 'chat', 'ok', 3000, 250)")
    >>> output_tokens_per_s(db)[["value", "n"]].rows()  # (50 + 250) / (1 + 3)
    [(75.0, 2)]
    """
    import polars as pl

    from workbench.stats import z_value

    fn = "output_tokens_per_s"
    z = z_value(check_fraction(fn, "confidence", confidence))
    t = operation_filter(scope(db.calls, start=start, end=end, where=where), operation, "output_tokens_per_s", db)
    keys = check_by(t, by, fn=fn)
    scoped = t
    # every call of the selection grouped, the sums over the measurable ones: the selection's groups come with them,
    # not from a second scan (complete_grid's groups)
    t = with_period(t.mutate(_y=t.output_tokens.cast("float64"), _x=t.latency_ms / 1000.0,
                             _ok=t.output_tokens.notnull() & (t.latency_ms > 0)), period, start=start)
    ok = t._ok
    df = to_polars(t.group_by([*keys, "period_start"]).aggregate(
        n=t.count(where=ok), _sy=t._y.sum(where=ok), _sx=t._x.sum(where=ok), _syy=(t._y * t._y).sum(where=ok),
        _sxx=(t._x * t._x).sum(where=ok), _sxy=(t._x * t._y).sum(where=ok),
    ))
    groups = df.select(keys)
    df = df.filter(pl.col("n") > 0)
    n, r = pl.col("n").cast(pl.Float64), pl.col("_sy") / pl.col("_sx")
    # var(R) ~ sum((y - R x)^2) / ((n - 1) n xbar^2), from the sums alone
    resid = pl.col("_syy") - 2 * r * pl.col("_sxy") + r * r * pl.col("_sxx")
    se = (resid.clip(lower_bound=0) / ((n - 1) * n * (pl.col("_sx") / n) ** 2)).sqrt()
    # (a speed is not negative: the normal interval's lower bound is clipped at 0, as a cost's is)
    df = df.with_columns(value=r, lo=pl.when(n > 1).then(pl.max_horizontal(r - z * se, pl.lit(0.0))),
                         hi=pl.when(n > 1).then(r + z * se))
    out = tidy(df.drop("_sy", "_sx", "_syy", "_sxx", "_sxy"), keys=keys, metric=fn)
    return _label(complete_grid(out, scoped, keys=keys, period=period, start=start, end=end, metric=fn,
                                groups=groups), operation)


def error_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95,
               operation="llm"):
    """Share of calls with ``status = 'error'`` (timeouts have their own rate, blocked calls are not errors).

    Definition: of the LLM calls (by default; ``operation`` picks tool calls or whole agent tasks instead), the share
    that ended in an error.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the Wilson interval.
    operation : str
        Which spans: ``"llm"`` (default) the LLM calls, ``"task"``, ``"tool"``, ``"all"`` or an operation name; the
        result's ``operations`` column says which.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in 0..1 (lower is better), ``n`` calls.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...     "('a', '2026-01-01', 'chat', 'ok'), ('b', '2026-01-01', 'chat', 'error'),"
    ...     "('c', '2026-01-01', 'chat', 'timeout'), ('d', '2026-01-01', 'chat', 'blocked')")
    >>> error_rate(db)[["value", "n"]].rows()
    [(0.25, 4)]
    """
    check_fraction("error_rate", "confidence", confidence)
    t = operation_filter(scope(db.calls, start=start, end=end, where=where), operation, "error_rate", db)
    return _label(proportion(t, t.status == "error", by=by, period=period, metric="error_rate", start=start, end=end,
                             confidence=confidence), operation)


def timeout_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95,
                 operation="llm"):
    """Share of calls with ``status = 'timeout'``.

    Definition: of the LLM calls (by default; ``operation`` picks another kind of span), the share that timed out.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the Wilson interval.
    operation : str
        Which spans: ``"llm"`` (default) the LLM calls, ``"task"``, ``"tool"``, ``"all"`` or an operation name; the
        result's ``operations`` column says which.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in 0..1 (lower is better), ``n`` calls.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...     "('a', '2026-01-01', 'chat', 'ok'), ('b', '2026-01-01', 'chat', 'timeout')")
    >>> timeout_rate(db)[["value", "n"]].rows()
    [(0.5, 2)]
    """
    check_fraction("timeout_rate", "confidence", confidence)
    t = operation_filter(scope(db.calls, start=start, end=end, where=where), operation, "timeout_rate", db)
    return _label(proportion(t, t.status == "timeout", by=by, period=period, metric="timeout_rate", start=start, end=end,
                             confidence=confidence), operation)


def fallback_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95,
                  operation="llm"):
    """Share of calls that were a fallback: ``fallback`` is true, or ``attempt > 1`` (a retry), or the answering
    ``model`` differs from ``request_model`` (both known; a dated snapshot of the model asked for, as OpenAI answers
    gpt-4o with gpt-4o-2024-08-06, is the same model: :func:`other_model`).

    The union follows the schema's definition of the ``fallback`` column, so sources that set only one of the three
    signals are counted the same way.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the Wilson interval.
    operation : str
        Which spans: ``"llm"`` (default) the LLM calls, ``"task"``, ``"tool"``, ``"all"`` or an operation name; the
        result's ``operations`` column says which.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in 0..1 (lower is better), ``n`` calls.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, attempt, fallback, model, request_model) "
    ...     "values ('a', '2026-01-01', 'chat', 'ok', 1, false, 'm1', 'm1'), ('b', '2026-01-01', 'chat', 'ok', 2, null, 'm1', 'm1'),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 1, null, 'm2', 'm1'), ('d', '2026-01-01', 'chat', 'ok', null, null, 'm1', null)")
    >>> fallback_rate(db)[["value", "n"]].rows()  # b retried, c answered by another model
    [(0.5, 4)]
    """
    check_fraction("fallback_rate", "confidence", confidence)
    t = operation_filter(scope(db.calls, start=start, end=end, where=where), operation, "fallback_rate", db)
    hit = t.fallback.fill_null(False) | (t.attempt.fill_null(1) > 1) | other_model(t)
    return _label(proportion(t, hit, by=by, period=period, metric="fallback_rate", start=start, end=end, confidence=confidence),
                  operation)


def latency_change_ms(db, *, by=("feature",), period="day", start=None, end=None, where=None, q: float = 0.95,
                      column: str = "latency_ms", n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
                      operation: str = "llm"):
    """Period-over-period change of a latency percentile (default p95), and whether it is more than noise.

    For each group and period that has data in the period just before it (the previous hour/day/week/month), the
    value is ``percentile(this period) - percentile(previous period)`` in milliseconds. ``lo``/``hi`` are a
    percentile bootstrap interval of that difference (``n_boot`` resamples of each period, seeded: the same data
    gives the same interval). ``p_value`` is the two-sided Mann-Whitney U test of the two periods' latencies (scipy:
    exact for small samples without ties, else the normal approximation with tie correction): it tests a shift of the
    whole distribution, not of the percentile alone. ``period="all"`` has no previous period: the result is the
    empty (n = 0) row.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    q : float
        The percentile compared, as a quantile in (0, 1); linear interpolation.
    column : {"latency_ms", "ttft_ms"}
    n_boot : int
        Bootstrap resamples (default 1000: about 0.15 s per comparison of two 3,000-call periods).
    seed : int
        Seed of the bootstrap.
    confidence : float
        Level of the bootstrap interval.

    Returns
    -------
    polars.DataFrame
        Tidy frame; ``value`` in milliseconds (negative is faster), ``n`` calls in this period; extra columns
        ``p_value``, ``previous`` (the previous period's percentile), ``current``, ``n_previous``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 100), ('b', '2026-01-01', 'chat', 'ok', 200),"
    ...     "('c', '2026-01-02', 'chat', 'ok', 300), ('d', '2026-01-02', 'chat', 'ok', 500)")
    >>> latency_change_ms(db, q=0.5)[["value", "n", "p_value", "previous", "current"]].rows()  # 400 - 150
    [(250.0, 2, 0.333333, 150.0, 400.0)]
    """
    import numpy as np
    import polars as pl
    from scipy.stats import mannwhitneyu

    fn = "latency_change_ms"
    q = check_fraction(fn, "q", q)
    check_fraction(fn, "confidence", confidence)
    if column not in ("latency_ms", "ttft_ms"):
        raise ParameterError(f"{fn}: column must be 'latency_ms' or 'ttft_ms', got {column!r}")
    check_int(fn, "n_boot", n_boot, lo=1)
    check_int(fn, "seed", seed, lo=0)
    t = operation_filter(scope(db.calls, start=start, end=end, where=where), operation, "latency_change_ms", db)
    keys = check_by(t, by, fn=fn)
    t = t.filter(t[column].notnull())
    t = with_period(t.mutate(_v=t[column].cast("float64")), period, start=start)
    gk = [*keys, "period_start"]
    agg = to_polars(t.group_by(gk).aggregate(value=t._v.quantile(q), n=t.count()))
    if period == "all" or agg.height == 0:
        return _label(tidy(agg.clear(), keys=keys, metric=fn), operation)
    agg = agg.with_columns(pl.col("period_start").cast(pl.Datetime("us")))
    prev = agg.select(*keys, (pl.col("period_start").dt.offset_by(_OFFSETS[period][1:])).alias("period_start"),
                      pl.col("value").alias("previous"), pl.col("n").alias("n_previous"))
    pairs = agg.rename({"value": "current"}).join(prev, on=gk, how="inner", nulls_equal=True)
    if pairs.height == 0:
        return _label(tidy(agg.clear(), keys=keys, metric=fn), operation)
    values = to_polars(t.select(*gk, "_v")).with_columns(pl.col("period_start").cast(pl.Datetime("us")))
    groups = {k: np.sort(g["_v"].to_numpy()) for k, g in values.group_by(gk, maintain_order=False)}
    rng_rows = []
    alpha = 1 - confidence
    for row in pairs.iter_rows(named=True):
        cur_key = tuple(row[k] for k in gk)
        prev_start = pl.Series([row["period_start"]]).dt.offset_by(_OFFSETS[period]).item()
        prev_key = (*cur_key[:-1], prev_start)
        cur, old = groups[cur_key], groups[prev_key]
        diffs = _bootstrap_quantile_diff(cur, old, q, n_boot, seed)
        lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
        p = float(mannwhitneyu(cur, old, alternative="two-sided").pvalue)
        rng_rows.append({"lo": float(lo), "hi": float(hi), "p_value": p})
    out = pairs.hstack(pl.DataFrame(rng_rows)).with_columns(
        value=pl.col("current") - pl.col("previous"), p_value=pl.col("p_value").round(6))
    out = out.select(*gk, "value", "n", "lo", "hi", "p_value", "previous", "current", "n_previous")
    return _label(tidy(out, keys=keys, metric=fn), operation)


def _bootstrap_quantile_diff(cur, old, q: float, n_boot: int, seed: int):
    """``n_boot`` bootstrap replicates of quantile(cur) - quantile(old), in chunks to bound memory."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    chunk = max(1, 4_000_000 // max(len(cur), len(old)))
    for s in range(0, n_boot, chunk):
        b = min(chunk, n_boot - s)
        a = np.quantile(cur[rng.integers(0, len(cur), (b, len(cur)))], q, axis=1)
        o = np.quantile(old[rng.integers(0, len(old), (b, len(old)))], q, axis=1)
        out[s:s + b] = a - o
    return out


# Each metric registered once with its contract (workbench.metrics.core.Metric).
SUITE = register(
    Metric(latency_p50_ms, unit="ms", direction="lower", table="calls"),
    Metric(latency_p90_ms, unit="ms", direction="lower", table="calls"),
    Metric(latency_p95_ms, unit="ms", direction="lower", table="calls"),
    Metric(latency_p99_ms, unit="ms", direction="lower", table="calls"),
    Metric(ttft_p50_ms, unit="ms", direction="lower", table="calls"),
    Metric(ttft_p90_ms, unit="ms", direction="lower", table="calls"),
    Metric(ttft_p95_ms, unit="ms", direction="lower", table="calls"),
    Metric(ttft_p99_ms, unit="ms", direction="lower", table="calls"),
    Metric(tpot_ms, unit="ms", direction="lower", table="calls"),
    Metric(output_tokens_per_s, unit="per_s", direction="higher", table="calls"),
    Metric(error_rate, unit="share", direction="lower", table="calls"),
    Metric(timeout_rate, unit="share", direction="lower", table="calls"),
    Metric(fallback_rate, unit="share", direction="lower", table="calls"),
    Metric(latency_change_ms, unit="ms", direction="lower", table="calls"),
    Metric(task_latency_p95_ms, unit="ms", direction="lower", table="calls"),
    namespace=globals(),
)
