"""Cost of the calls: priced from the ``prices`` table, per call, user, session and successful task; what drove a change;
what the same traffic would cost on another model; monthly budgets per feature.

Every metric has the one metric signature (see :mod:`workbench.metrics`) and returns the tidy frame. Fill the
``prices`` table first with :func:`load_prices` (genai-prices bundled data + ``workbench.toml`` ``[[prices]]``).

Conventions
-----------
* **Token rule** (OpenTelemetry GenAI): cached tokens are inside ``input_tokens``, reasoning tokens inside
  ``output_tokens``. The computed cost of a call, in USD, is::

      ((input - cache_read - cache_write) * input_price
       + cache_read * cache_read_price     (the input price when the model has none)
       + cache_write * cache_write_price   (the input price when the model has none)
       + output * output_price) / 1e6

  with prices per million tokens and null token counts taken as 0 (OpenTelemetry leaves usage out on failed calls).
  A *successful* model call missing a count it is billed for has no computed cost: a generation without its input or
  its output count (a stream read without ``include_usage`` has neither), an ``embeddings`` call without its input
  count (it has no output, so its input count alone prices it). It was billed for tokens no one counted, so it is
  unpriced unless its cost was reported.
  A writer that counts input tokens without the cached ones (Anthropic's API usage) is read into the rule at ingest:
  where the cached tokens exceed the input tokens, ``input_tokens`` is stored as their sum (the count read is kept as
  ``attributes["workbench.uncached_input_tokens"]``), so the uncached part is never negative.
* **Which price**: the ``prices`` row of the call's provider and model with the greatest ``effective_from <= ts`` (a
  price change mid-month prices each call at the price of its own day), within it the greatest
  ``time_of_day_from_s <=`` the call's seconds after midnight UTC (a time-of-day price: DeepSeek's standard hours and
  off-peak discount), and within that the greatest ``min_input_tokens <= input_tokens`` (context-size tier). A call
  without a provider is matched on the model alone, by the same date rule: the first provider by name among those
  whose price of the model is in force at the call's instant (a provider's prices hold from its first
  ``effective_from`` on); :func:`load_prices` warns when the providers of such a model price it differently, and
  ``price_provider`` says which one priced each call. One Ibis expression (a range join on the price rows' validity
  intervals), so it runs on Spark and the warehouses as on DuckDB.
* **Which cost** (``cost_source``): the **reported** cost (``calls.cost_usd``, from a gateway or the provider) when
  there is one; else the **computed** one; else the call is **unpriced** (its model has no price, or a successful
  call of it missed a token count): null, never 0, counted in ``unpriced_count``/``unpriced_rate``. A call with no model, no tokens and no reported cost (a tool call, a rule-based
  guardrail) is **none**: it costs 0 and is not counted as unpriced.
* **Value excludes unpriced calls**: a ``*_usd`` value is a lower bound when ``unpriced_count > 0``. Each cost metric
  carries ``calls_count``, ``unpriced_count``, ``unpriced_rate`` (of the calls that need a price) and
  ``reported_share`` (of the priced calls, the share whose cost was reported rather than computed).
* **Means** (``cost_per_*_usd``) have a normal-approximation (CLT) interval ``mean ± z·sd/√n`` on the per-unit costs,
  null below 2 units; costs are skewed, so read it as rough when n is small.

Naming: ``*_usd`` US dollars (lower is better), ``*_rate`` a share in 0..1.

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute(
...     "insert into prices (provider, model, effective_from, min_input_tokens, input_usd_per_mtok, "
...     "output_usd_per_mtok, source) values ('openai', 'm', '2025-01-01', 0, 2.0, 8.0, 'test');"
...     "insert into calls (call_id, ts, feature, status, provider, model, input_tokens, output_tokens, cost_usd) values "
...     "('a', '2026-01-01 10:00', 'chat', 'ok', 'openai', 'm', 1000, 500, null),"
...     "('b', '2026-01-01 11:00', 'chat', 'ok', 'openai', 'm', 1000, 500, 0.01),"
...     "('c', '2026-01-01 12:00', 'chat', 'ok', 'openai', 'other', 1000, 500, null)")
>>> cost_usd(db).select("feature", "value", "n", "unpriced_count", "reported_share").rows()  # 0.006 + 0.01
[('chat', 0.016, 2, 1, 0.5)]
"""

from __future__ import annotations

from workbench.errors import NotDeclaredError, ParameterError, ParameterTypeError, check_name

import calendar
import datetime as _dt
import os
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from workbench.metrics.core import (ExcludedRowWarning, Metric, Where, as_timestamp, check_by, complete_grid,
                                    mean_interval, parse_where, period_bounds, proportion, register, scope, tidy,
                                    to_polars, warn_unknown_features, with_period)
from workbench.io.prices import load_prices, price_overrides  # noqa: F401  (re-exported: cost.load_prices)
from workbench.schema import utc_now

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

    from workbench.config import Budget, Config, Settings
    from workbench.db import Workbench

SOURCES = ("reported", "computed", "none", "unpriced")
SUCCESS_CRITERIA = ("status", "feedback", "evals")
DEFAULT_WARN_AT = 0.85
_END_OF_TIME = _dt.datetime(9999, 12, 31)
_LAST_TOKENS = 2**63 - 1  # the greatest BIGINT: the open end of the last tier holds every token count
_DAY_S = 86400
_PRICE_FIELDS = ("provider", "model", "effective_from", "time_of_day_from_s", "min_input_tokens", "input_usd_per_mtok",
                 "output_usd_per_mtok", "cache_read_usd_per_mtok", "cache_write_usd_per_mtok", "source")


# --------------------------------------------------------------------------------------------------------- pricing


def _price_intervals(prices: "ir.Table", prefix: str) -> "ir.Table":
    """The price rows with the range each one covers: ``[effective_from, valid_to)`` x ``[time_of_day_from_s,
    time_of_day_to_s)`` x ``[min_input_tokens, last_input_tokens]``.

    A row covers its instants until the provider/model's next ``effective_from``, on each day the seconds after
    midnight until the next time-of-day window of the same version (or midnight), and its input-token counts until
    the next tier of the same version and window, so a call falls in exactly one row and pricing is a plain range join,
    with no per-call ranking (a window over the calls cost 4x more on DuckDB). Computed on the small prices table.
    """
    import ibis

    if "time_of_day_from_s" not in prices.columns:  # a database from before schema version 4, opened read-only
        prices = prices.mutate(time_of_day_from_s=ibis.null("int32"))
    p = prices.mutate(min_input_tokens=prices.min_input_tokens.fill_null(0),
                      time_of_day_from_s=prices.time_of_day_from_s.fill_null(0))
    key = [p.provider, p.model, p.effective_from, p.time_of_day_from_s, p.min_input_tokens]
    # a key written twice (by hand, from two sources) must not price a call twice: keep one, the first by source
    p = p.mutate(_dup=ibis.row_number().over(group_by=key, order_by=[p.source]))
    p = p.filter(p._dup == 0).drop("_dup")
    versions = p.select("provider", "model", "effective_from").distinct()
    versions = versions.mutate(_valid_to=versions.effective_from.lead().over(
        group_by=[versions.provider, versions.model], order_by=versions.effective_from))
    versions = versions.rename(_v_provider="provider", _v_model="model", _v_from="effective_from")
    p = p.join(versions, [p.provider == versions._v_provider, p.model == versions._v_model,
                          p.effective_from == versions._v_from])
    windows = p.select("provider", "model", "effective_from", "time_of_day_from_s").distinct()
    windows = windows.mutate(_tod_to=windows.time_of_day_from_s.lead().over(
        group_by=[windows.provider, windows.model, windows.effective_from], order_by=windows.time_of_day_from_s))
    windows = windows.rename(_w_provider="provider", _w_model="model", _w_from="effective_from",
                             _w_tod="time_of_day_from_s")
    p = p.join(windows, [p.provider == windows._w_provider, p.model == windows._w_model,
                         p.effective_from == windows._w_from, p.time_of_day_from_s == windows._w_tod])
    # the tier's last token count, not the next one's first: the last tier then ends at the greatest BIGINT, which
    # no count exceeds (an open end of 2**62 left larger counts unpriced)
    p = p.mutate(_last_input=p.min_input_tokens.lead().over(
        group_by=[p.provider, p.model, p.effective_from, p.time_of_day_from_s], order_by=p.min_input_tokens) - 1)
    # open ends filled (not "is null or ..."): a left join on an OR condition is a nested loop on DuckDB (40x slower)
    return p.select(**{f"{prefix}{c}": p[c] for c in _PRICE_FIELDS},
                    **{f"{prefix}valid_to": p._valid_to.fill_null(_END_OF_TIME),
                       f"{prefix}time_of_day_to_s": p._tod_to.fill_null(_DAY_S),
                       f"{prefix}last_input_tokens": p._last_input.fill_null(_LAST_TOKENS)})


def _seconds_of_day(ts: "ir.TimestampValue") -> "ir.IntegerValue":
    """Whole seconds after midnight (UTC, as ``calls.ts`` is stored) of each instant: the time-of-day price key."""
    return ts.hour().cast("int32") * 3600 + ts.minute().cast("int32") * 60 + ts.second().cast("int32")


def _first_provider(prices: "ir.Table") -> "ir.Table":
    """Per model, which provider prices a call that names none, over time: ``_f_model``, ``[_f_from, _f_to)``,
    ``_f_provider``, the first by name of the providers whose price of the model is in force (a provider's prices
    hold from its first ``effective_from`` on). Computed on the small prices table."""
    since = prices.group_by(_s_model=prices.model, _s_provider=prices.provider).aggregate(
        _s_from=prices.effective_from.min())
    edges = since.select(_e_model=since._s_model, _e_from=since._s_from).distinct()
    j = edges.join(since, [edges._e_model == since._s_model, since._s_from <= edges._e_from])
    steps = j.group_by(_f_model=j._e_model, _f_from=j._e_from).aggregate(_f_provider=j._s_provider.min())
    return steps.mutate(_f_to=steps._f_from.lead().over(group_by=steps._f_model, order_by=steps._f_from)
                        .fill_null(_END_OF_TIME))


def _join_prices(calls: "ir.Table", prices: "ir.Table", prefix: str, *, match_names: bool = True) -> "ir.Table":
    """``calls`` with the one applicable price row as ``{prefix}<price column>`` (null when none applies).

    ``match_names=False`` prices every call with ``prices`` whatever its model (the what-if re-pricing; ``prices``
    then holds one provider and model).
    """
    import ibis

    p = _price_intervals(prices, prefix)
    tokens = calls.input_tokens.fill_null(0)
    calls = calls.mutate(_tod_s=_seconds_of_day(calls.ts))
    if match_names:
        # a call without a provider is priced by the first provider (by name) whose price of its model is in force
        # at the call's instant: the first by name of every provider that ever priced it left a call before that
        # provider's first price unpriced, though another priced the model then
        first = _first_provider(prices)
        calls = calls.left_join(first, [calls.model == first._f_model, first._f_from <= calls.ts,
                                        calls.ts < first._f_to])
        calls = calls.mutate(_match_provider=ibis.coalesce(calls.provider, calls._f_provider)).drop(
            "_f_model", "_f_provider", "_f_from", "_f_to")
        conds = [calls._match_provider == p[f"{prefix}provider"], calls.model == p[f"{prefix}model"]]
    else:
        conds = []
    valid_to, last_input = p[f"{prefix}valid_to"], p[f"{prefix}last_input_tokens"]
    conds += [p[f"{prefix}effective_from"] <= calls.ts, calls.ts < valid_to,
              p[f"{prefix}time_of_day_from_s"] <= calls._tod_s, calls._tod_s < p[f"{prefix}time_of_day_to_s"],
              p[f"{prefix}min_input_tokens"] <= tokens, tokens <= last_input]
    j = calls.left_join(p, conds)
    return j.drop(*[c for c in ("_match_provider", "_tod_s", f"{prefix}valid_to", f"{prefix}time_of_day_to_s",
                                f"{prefix}last_input_tokens") if c in j.columns])


def _total_tokens(t: "ir.Table") -> "ir.NumericValue":
    """Input + output tokens of each call (null counts as 0), as a double: two BIGINT counts can add up past the
    BIGINT range (DuckDB raised OutOfRangeException), and so can a sum over calls. Exact below 2**53 tokens (9e15; ingest
    refuses more than 1e9 a call); a 38-digit decimal, exact everywhere, made cost_per_1k_tokens_usd 1.5x slower."""
    return t.input_tokens.fill_null(0).cast("float64") + t.output_tokens.fill_null(0).cast("float64")


def _usage_missing(t: "ir.Table") -> "ir.BooleanValue":
    """A successful model call of a named model missing a token count it is billed for: a generation (operation
    chat, text_completion, generate_content or none) without its input or its output count (a stream read without
    ``include_usage`` has neither; priced from the one it has, an answer of unknown length was free), an
    ``embeddings`` call without its input count (it has no output). It was billed, for a sum no one knows."""
    from workbench.metrics.latency import LLM_OPERATIONS

    generation = t.operation.isnull() | t.operation.isin(LLM_OPERATIONS)
    missing = ((generation & (t.input_tokens.isnull() | t.output_tokens.isnull()))
               | ((t.operation == "embeddings") & t.input_tokens.isnull()))
    return ((t.status == "ok") & t.model.notnull() & missing).fill_null(False)


def _token_cost(t: "ir.Table", prefix: str) -> "ir.NumericValue":
    """The computed cost (USD) of each call at the ``{prefix}`` prices; null where no price row applied, and where
    a successful model call missed a token count it is billed for (:func:`_usage_missing`: its cost is unknown,
    not 0)."""
    import ibis

    it, ot = t.input_tokens.fill_null(0), t.output_tokens.fill_null(0)
    cr, cw = t.cache_read_tokens.fill_null(0), t.cache_write_tokens.fill_null(0)
    ip = t[f"{prefix}input_usd_per_mtok"]
    op = t[f"{prefix}output_usd_per_mtok"].fill_null(0)
    crp = t[f"{prefix}cache_read_usd_per_mtok"].coalesce(ip).fill_null(0)
    cwp = t[f"{prefix}cache_write_usd_per_mtok"].coalesce(ip).fill_null(0)
    usd = ((it - cr - cw) * ip.fill_null(0) + cr * crp + cw * cwp + ot * op) / 1e6
    return ibis.ifelse(t[f"{prefix}effective_from"].notnull() & ~_usage_missing(t), usd, ibis.null("float64"))


def priced_calls(db: Any, *, start: Any = None, end: Any = None, where: Where = None) -> "ir.Table":
    """The calls with their price and cost: reported, computed, or unpriced.

    Adds to the ``calls`` columns: the price row that applied (``price_provider``, ``price_effective_from``,
    ``price_time_of_day_from_s``, ``price_min_input_tokens``, ``price_input_usd_per_mtok``... ``price_source``, null
    when none did), and

    * ``cost_usd_computed``: the cost at that price (module docstring has the formula), null without a price and
      for a successful model call missing a token count it is billed for (a stream without usage, an answer with
      no output count: its cost is unknown, not 0);
    * ``cost_usd_used``: the reported ``cost_usd`` when not null, else the computed cost; null for an unpriced call;
    * ``cost_source``: ``'reported'``, ``'computed'``, ``'none'`` (no model, no tokens: 0) or ``'unpriced'``;
    * ``attributes`` as JSON text (so the result converts to polars and pandas).

    Parameters
    ----------
    db : Workbench or path
    start, end : date or timestamp, optional
        ``start <= ts < end``.
    where : mapping or list of "col=value", optional
        Filter on any ``calls`` column or on the added ones (``cost_source``, ``price_provider``...).

    Returns
    -------
    ibis.Table
        One row per call (unexecuted; ``.to_polars()`` runs it).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into prices (provider, model, effective_from, min_input_tokens, input_usd_per_mtok, "
    ...     "output_usd_per_mtok, cache_read_usd_per_mtok, source) values "
    ...     "('openai', 'm', '2025-01-01', 0, 2.0, 8.0, 0.5, 'test');"
    ...     "insert into calls (call_id, ts, status, provider, model, input_tokens, output_tokens, "
    ...     "cache_read_tokens, cost_usd) values "
    ...     "('a', '2026-01-01', 'ok', 'openai', 'm', 1000, 500, 400, null),"
    ...     "('b', '2026-01-01', 'ok', 'openai', 'm', 1000, 500, 0, 0.5),"
    ...     "('c', '2026-01-01', 'ok', 'openai', 'x', 1000, 500, 0, null),"
    ...     "('d', '2026-01-01', 'ok', null, null, null, null, null, null)")
    >>> # a: (600 * 2 + 400 * 0.5 + 500 * 8) / 1e6 = 0.0054
    >>> priced_calls(db).select("call_id", "cost_usd_computed", "cost_usd_used", "cost_source").order_by(
    ...     "call_id").to_polars().rows()
    [('a', 0.0054, 0.0054, 'computed'), ('b', 0.006, 0.5, 'reported'), ('c', None, None, 'unpriced'), ('d', None, 0.0, 'none')]
    """
    from workbench.db import as_workbench, view_key

    db = as_workbench(db)
    key = view_key("priced_calls", start, end, where)
    if key is None:  # a where that cannot be a key (an unhashable value): built each time, and refused there
        return _priced_calls(db, start=start, end=end, where=where)
    # kept per connection and selection: the price join is some hundred Ibis nodes, 30-50 ms of Python to build at
    # every call, more than DuckDB takes to run the whole metric on a hundred thousand calls
    return db.view(key, lambda: _priced_calls(db, start=start, end=end, where=where))


def _priced_calls(db: "Workbench", *, start: Any, end: Any, where: Where) -> "ir.Table":
    import ibis

    calls = db.calls
    conds = parse_where(where)
    # filter on the calls' own columns before the join (cheaper), on the added columns after it
    before = {k: v for k, v in conds.items() if k in calls.columns}
    after = {k: v for k, v in conds.items() if k not in calls.columns}
    t = scope(calls, start=start, end=end, where=before)
    t = _join_prices(t, db.prices, "price_")
    computed = _token_cost(t, "price_")
    no_usage = (t.model.isnull() & (_total_tokens(t) == 0)
                & t.cost_usd.isnull())
    t = t.mutate(cost_usd_computed=computed)
    t = t.mutate(
        cost_usd_used=ibis.coalesce(t.cost_usd, t.cost_usd_computed,
                                    ibis.ifelse(no_usage, ibis.literal(0.0), ibis.null("float64"))),
        cost_source=ibis.cases(
            (t.cost_usd.notnull(), "reported"),
            (t.cost_usd_computed.notnull(), "computed"),
            (no_usage, "none"),
            else_="unpriced",
        ),
    )
    # the JSON ``attributes`` column as its text, so that ``.to_polars()`` works (polars has no JSON type)
    t = t.mutate(attributes=t.attributes.cast("string"))
    return scope(t, where=after, time=None) if after else t


# --------------------------------------------------------------------------------------------------------- helpers


def _prepared(db: Any, fn: str, by, period: str, start, end, where) -> tuple["ir.Table", list[str]]:
    from workbench.db import as_workbench

    t = priced_calls(as_workbench(db), start=start, end=end, where=where)
    keys = check_by(t, by, fn=fn)
    t = with_period(t, period, time="ts", start=start)
    return t, keys


def _counters(t: "ir.Table") -> dict[str, "ir.Scalar"]:
    """Counts behind the extra columns: calls, calls that need a price, unpriced, reported, priced-and-billable."""
    src = t.cost_source
    return dict(
        calls_count=t.count(),
        _billable=(src != "none").cast("int64").sum(),
        unpriced_count=(src == "unpriced").cast("int64").sum(),
        _reported=(src == "reported").cast("int64").sum(),
    )


def _unpriced_rate() -> "pl.Expr":
    """``unpriced_rate`` from the counters: the unpriced calls over the calls that need a price; null when none does."""
    import polars as pl

    return pl.when(pl.col("_billable") > 0).then(pl.col("unpriced_count") / pl.col("_billable")).alias("unpriced_rate")


def _finish(df: "pl.DataFrame", keys: list[str], metric: str) -> "pl.DataFrame":
    """Turn the counters into ``unpriced_rate`` and ``reported_share`` and shape the tidy frame."""
    import polars as pl

    priced = pl.col("_billable") - pl.col("unpriced_count")
    df = df.with_columns(
        pl.col("calls_count").cast(pl.Int64), pl.col("unpriced_count").cast(pl.Int64), _unpriced_rate(),
        pl.when(priced > 0).then(pl.col("_reported") / priced).alias("reported_share"),
    ).drop("_billable", "_reported")
    return tidy(df, keys=keys, metric=metric)


def cost_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None,
) -> "pl.DataFrame":
    """Total cost in USD of the priced LLM calls (reported cost where there is one, else tokens times prices).

    Definition: the sum of the cost of every priced call, and ``n`` is the number of priced calls (reported or
    computed); tool and agent spans with no model and no tokens cost nothing and are not counted in ``n``, and
    unpriced calls are counted apart in ``unpriced_count``. The value excludes unpriced calls (a lower bound when
    ``unpriced_count > 0``); a group with no priced call has a null value, never 0. Groups add up to the total.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` USD (lower is better), ``n`` priced LLM calls (those summed), no interval; extra columns
        ``calls_count``, ``unpriced_count``, ``unpriced_rate``, ``reported_share``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, feature, status, model, cost_usd) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 'm', 0.25), ('b', '2026-01-01', 'chat', 'ok', 'm', 0.5),"
    ...     "('c', '2026-01-02', 'search', 'ok', 'm', 1.0), ('d', '2026-01-02', 'search', 'ok', 'unknown', null)")
    >>> cost_usd(db, period="all").select("feature", "value", "n", "unpriced_count", "unpriced_rate").rows()
    [('chat', 0.75, 2, 0, 0.0), ('search', 1.0, 1, 1, 0.5)]
    """
    metric = "cost_usd"
    t, keys = _prepared(db, metric, by, period, start, end, where)
    df = to_polars(t.group_by([*keys, "period_start"]).aggregate(
        value=t.cost_usd_used.sum(), n=t.cost_source.isin(("reported", "computed")).cast("int64").sum(),
        **_counters(t)))
    return complete_grid(_finish(df, keys, metric), t, keys=keys, period=period, start=start, end=end, metric=metric,
                         groups=df.select(keys))  # every row of t is in df: its groups are the selection's


def _per_unit(db, unit: str | None, metric: str, *, by, period, start, end, where, confidence) -> "pl.DataFrame":
    t, keys = _prepared(db, metric, by, period, start, end, where)
    scoped = t
    gk = [*keys, "period_start"]
    if unit is None:  # per call: the model calls (a tool call is not a call to price)
        t = t.filter(t.cost_source != "none")
        units = t.mutate(_unit_cost=t.cost_usd_used)
        counters = _counters(units)
    else:
        t = t.filter(t[unit].notnull())
        units = t.group_by([*gk, unit]).aggregate(_unit_cost=t.cost_usd_used.sum(), **_counters(t))
        counters = dict(calls_count=units.calls_count.sum(), _billable=units._billable.sum(),
                        unpriced_count=units.unpriced_count.sum(), _reported=units._reported.sum())
    df = to_polars(units.group_by(gk).aggregate(
        value=units._unit_cost.mean(), n=units._unit_cost.count(), _sd=units._unit_cost.std(), **counters,
    ))
    return complete_grid(_finish(mean_interval(df, confidence, floor=0.0), keys, metric), scoped, keys=keys,
                         period=period, start=start, end=end, metric=metric)


def cost_per_call_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None, confidence: float = 0.95,
) -> "pl.DataFrame":
    """Mean cost of a model call in USD, over the priced calls (calls with no model and no tokens left out).

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the normal-approximation interval of the mean.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` USD per call (lower is better), ``n`` priced calls; the value excludes unpriced calls
        (``unpriced_count``, ``unpriced_rate``); ``reported_share``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, feature, status, model, cost_usd) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 'm', 0.25), ('b', '2026-01-01', 'chat', 'ok', 'm', 0.75),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 'unknown', null)")
    >>> cost_per_call_usd(db).select("value", "n", "unpriced_count").rows()
    [(0.5, 2, 1)]
    """
    return _per_unit(db, None, "cost_per_call_usd", by=by, period=period, start=start, end=end, where=where,
                     confidence=confidence)


def cost_per_1k_tokens_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None,
) -> "pl.DataFrame":
    """Blended price paid per 1,000 tokens, in USD: cost of the priced calls / their input + output tokens x 1,000.

    A ratio of sums (a call with many tokens weighs more than a short one), over the priced calls that carry token
    counts; cached and reasoning tokens are inside input and output (the OTel GenAI rule), so they are not added
    again. Unpriced calls are left out and counted in ``unpriced_count``; ``lo``/``hi`` are null.

    Parameters
    ----------
    db : Workbench or path
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` USD per 1,000 tokens (lower is better), ``n`` priced calls with tokens,
        ``tokens_count`` their tokens (null past the Int64 range, which only rows inserted directly reach);
        ``unpriced_count``, ``unpriced_rate``, ``reported_share``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, feature, status, model, input_tokens, output_tokens, cost_usd) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 'm', 1500, 500, 0.004), ('b', '2026-01-01', 'chat', 'ok', 'm', 800, 200, 0.002),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 'unknown', 100, 100, null)")
    >>> cost_per_1k_tokens_usd(db).select("value", "n", "tokens_count", "unpriced_count").rows()  # 0.006 / 3000 x 1000
    [(0.002, 2, 3000, 1)]
    """
    metric = "cost_per_1k_tokens_usd"
    t, keys = _prepared(db, metric, by, period, start, end, where)
    tokens = _total_tokens(t)
    priced = t.cost_source.isin(["reported", "computed"]) & (tokens > 0)
    df = to_polars(t.group_by([*keys, "period_start"]).aggregate(
        _cost=t.cost_usd_used.sum(where=priced), tokens_count=tokens.sum(where=priced), n=priced.cast("int64").sum(),
        **_counters(t),
    ))
    import polars as pl

    # tokens_count is summed as a double (_total_tokens); past the Int64 range (only rows inserted directly: ingest
    # refuses a call of more than 1e9 tokens) it is null, and the ratio is still taken on the sum
    df = df.with_columns(
        (pl.col("_cost") / pl.col("tokens_count").cast(pl.Float64) * 1000).alias("value"),
        pl.col("tokens_count").fill_null(0).cast(pl.Int64, strict=False),
    ).drop("_cost")
    return complete_grid(_finish(df, keys, metric), t, keys=keys, period=period, start=start, end=end, metric=metric,
                         groups=df.select(keys))


def cost_per_user_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None, confidence: float = 0.95,
) -> "pl.DataFrame":
    """Mean cost per user in USD: each user's total over the period, averaged over the users.

    Calls without a ``user_id`` are left out; the value excludes unpriced calls (a user with only unpriced calls is
    not counted in ``n``).

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the normal-approximation interval of the mean.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` USD per user (lower is better), ``n`` users; ``unpriced_count``, ``unpriced_rate``,
        ``reported_share``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, feature, status, model, user_id, cost_usd) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 'm', 'u1', 0.25), ('b', '2026-01-01', 'chat', 'ok', 'm', 'u1', 0.75),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 'm', 'u2', 2.0)")
    >>> cost_per_user_usd(db).select("value", "n").rows()  # (1.0 + 2.0) / 2
    [(1.5, 2)]
    """
    return _per_unit(db, "user_id", "cost_per_user_usd", by=by, period=period, start=start, end=end, where=where,
                     confidence=confidence)


def cost_per_session_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None, confidence: float = 0.95,
) -> "pl.DataFrame":
    """Mean cost per session (conversation) in USD: each session's total, averaged over the sessions.

    Calls without a ``session_id`` are left out; the value excludes unpriced calls. A session that crosses a period
    boundary counts in each period with the part of its cost that falls in it.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the normal-approximation interval of the mean.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` USD per session (lower is better), ``n`` sessions; ``unpriced_count``,
        ``unpriced_rate``, ``reported_share``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, feature, status, model, session_id, cost_usd) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 'm', 's1', 0.25), ('b', '2026-01-01', 'chat', 'ok', 'm', 's1', 0.25),"
    ...     "('c', '2026-01-01', 'chat', 'ok', 'm', 's2', 1.5)")
    >>> cost_per_session_usd(db).select("value", "n").rows()
    [(1.0, 2)]
    """
    return _per_unit(db, "session_id", "cost_per_session_usd", by=by, period=period, start=start, end=end,
                     where=where, confidence=confidence)


def unpriced_rate(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None, confidence: float = 0.95,
) -> "pl.DataFrame":
    """Share of the calls that need a price and have none: no reported cost and no ``prices`` row for the model, or
    a successful model call missing a token count it is billed for (a stream read without usage).

    The denominator leaves out calls with no model and no tokens (tool calls), which cost nothing. A high rate means
    the cost metrics undercount: add the model to ``workbench.toml`` ``[[prices]]`` and re-run ``load_prices``, or
    (for a priced model) record the usage of streamed calls (OpenAI ``stream_options={"include_usage": True}``).

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    confidence : float
        Level of the Wilson interval.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` in 0..1 (lower is better), ``n`` calls that need a price, Wilson ``lo``/``hi``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, feature, status, model, cost_usd) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 'm', 0.25), ('b', '2026-01-01', 'chat', 'ok', 'unknown', null),"
    ...     "('c', '2026-01-01', 'chat', 'ok', null, null)")
    >>> unpriced_rate(db).select("value", "n").rows()
    [(0.5, 2)]
    """
    from workbench.db import as_workbench

    metric = "unpriced_rate"
    t = priced_calls(as_workbench(db), start=start, end=end, where=where)
    return proportion(t, t.cost_source == "unpriced", by=by, period=period, metric=metric, start=start, end=end,
                      denominator=t.cost_source != "none", confidence=confidence)


def _criteria(success: Any, fn: str) -> tuple[str, ...]:
    if not isinstance(success, (str, list, tuple)):
        raise ParameterTypeError(f"{fn}: success must name one or more of {', '.join(SUCCESS_CRITERIA)}, got "
                                 f"{success!r}")
    items = success.replace("+", ",").split(",") if isinstance(success, str) else list(success)
    items = tuple(dict.fromkeys(s.strip() for s in items if s and s.strip()))
    bad = [s for s in items if s not in SUCCESS_CRITERIA]
    if bad or not items:
        raise ParameterError(f"{fn}: success must name one or more of {', '.join(SUCCESS_CRITERIA)}, got {success!r}")
    return items


def cost_per_success_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None, success: Iterable[str] | str = SUCCESS_CRITERIA,
    hallucination_metric: str = "hallucination_score", hallucinated_label: str = "hallucinated",
) -> "pl.DataFrame":
    """Cost per successful task in USD: what all tasks cost, divided by the tasks that succeeded.

    A **task** is a trace: every call sharing a ``trace_id`` (the root call, its retries, tool calls, guardrail calls);
    a call without a trace is a task of its own. The numerator is the cost of *all* tasks, failed ones included (what
    the feature spends to produce its successes). A task is placed in the period, and given the group keys, of its
    first call in the selection.

    A task is a **success** when every criterion named in ``success`` holds (default: all three):

    * ``"status"``: its last root call (``parent_id`` null; the last call when none is a root) has status ``ok``, so a
      retry that succeeded counts;
    * ``"feedback"``: no call of the task got a thumbs down (``feedback`` kind ``thumbs``, value 0);
    * ``"evals"``: no call of the task was scored hallucinated (``evals`` metric ``hallucination_metric`` with label
      ``hallucinated_label``, by any evaluator).

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics` (``where`` selects calls).
    success : str or sequence of {"status", "feedback", "evals"}
        The success definition; ``"status,feedback"`` from the CLI.
    hallucination_metric, hallucinated_label : str
        Which ``evals`` rows mark a failure.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` USD per successful task (lower is better), ``n`` successful tasks; extra columns
        ``tasks_count``, ``success_rate``, ``cost_total_usd``, ``unpriced_count`` (calls; the value excludes them).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, trace_id, parent_id, ts, feature, status, model, cost_usd) values "
    ...     "('a1', 't1', null, '2026-01-01 10:00', 'chat', 'error', 'm', 0.5),"   # failed attempt
    ...     "('a2', 't1', null, '2026-01-01 10:01', 'chat', 'ok', 'm', 0.5),"      # retry succeeded
    ...     "('a3', 't1', 'a2', '2026-01-01 10:01', 'chat', 'ok', null, null),"    # tool call: 0
    ...     "('b1', 't2', null, '2026-01-01 11:00', 'chat', 'ok', 'm', 1.0),"      # thumbs down below
    ...     "('c1', 't3', null, '2026-01-01 12:00', 'chat', 'ok', 'm', 1.0);"
    ...     "insert into feedback (feedback_id, call_id, ts, kind, value) values ('f', 'b1', '2026-01-01', 'thumbs', 0)")
    >>> cost_per_success_usd(db).select("value", "n", "tasks_count").rows()  # (0.5 + 0.5 + 1 + 1) / 2
    [(1.5, 2, 3)]
    >>> cost_per_success_usd(db, success="status").select("value", "n").rows()
    [(1.0, 3)]
    """
    import ibis

    from workbench.db import as_workbench

    metric = "cost_per_success_usd"
    check_name(metric, "hallucination_metric", hallucination_metric, what="an evals metric")
    check_name(metric, "hallucinated_label", hallucinated_label, what="a label")
    criteria = _criteria(success, metric)
    db = as_workbench(db)
    t = priced_calls(db, start=start, end=end, where=where)
    keys = check_by(t, by, fn=metric)
    t = t.mutate(_task=ibis.coalesce(t.trace_id, t.call_id))
    # the task's first call (its keys) and its last root call (its outcome); call_id breaks ties so the result does
    # not depend on row order
    first = ibis.window(group_by=t._task, order_by=[t.ts, t.call_id])
    last_root = ibis.window(group_by=t._task, order_by=[t.parent_id.notnull(), ibis.desc(t.ts),
                                                        ibis.desc(t.attempt.fill_null(0)), ibis.desc(t.call_id)])
    t = t.mutate(_first=ibis.row_number().over(first) == 0, _outcome=ibis.row_number().over(last_root) == 0)
    tasks = t.group_by("_task").aggregate(
        ts=t.ts.min(),
        **{k: t[k].max(where=t._first) for k in keys},
        _cost=t.cost_usd_used.sum(),
        _unpriced=(t.cost_source == "unpriced").cast("int64").sum(),
        _status=t.status.max(where=t._outcome),
    )
    ok = ibis.literal(True)
    if "status" in criteria:
        ok = ok & (tasks._status == "ok").fill_null(False)
    members = t.select(_m_call=t.call_id, _m_task=t._task)
    flagged = []
    if "feedback" in criteria:
        fb = db.feedback
        flagged.append(fb.filter((fb.kind == "thumbs") & (fb.value == 0)).select(_f_call=fb.call_id))
    if "evals" in criteria:
        ev = db.evals
        flagged.append(ev.filter((ev.metric == hallucination_metric) & (ev.label == hallucinated_label))
                       .select(_f_call=ev.call_id))
    if flagged:
        bad_calls = flagged[0] if len(flagged) == 1 else flagged[0].union(flagged[1])
        bad = members.join(bad_calls, members._m_call == bad_calls._f_call).select(_b_task=members._m_task).distinct()
        tasks = tasks.left_join(bad, tasks._task == bad._b_task)
        ok = ok & tasks._b_task.isnull()
    tasks = with_period(tasks.mutate(_ok=ok.cast("int64")), period, time="ts", start=start)
    df = to_polars(tasks.group_by([*keys, "period_start"]).aggregate(
        cost_total_usd=tasks._cost.sum(), n=tasks._ok.sum(), tasks_count=tasks.count(),
        unpriced_count=tasks._unpriced.sum(),
    ))
    import polars as pl

    df = df.with_columns(
        (pl.col("cost_total_usd") / pl.col("n")).alias("value"),
        (pl.col("n") / pl.col("tasks_count")).alias("success_rate"),
        pl.col("unpriced_count").cast(pl.Int64),
    )
    return complete_grid(tidy(df, keys=keys, metric=metric), tasks, keys=keys, period=period, start=start, end=end,
                         metric=metric, groups=df.select(keys))


def cost_change_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None, at: Any = None,
) -> "pl.DataFrame":
    """Which models drove the change in cost between the previous and the current period (also ``cost_drivers``).

    One row per group and (provider, model): its cost in the current period minus its cost in the previous one. The
    known contributions of a group add up exactly to the group's total change (``total_change_usd``); a row whose
    change is unknown (all its calls unpriced in a period) is left out of it, and an ``ExcludedRowWarning`` counts such
    rows. Each contribution is split into a **volume** effect (more or fewer priced calls at the previous cost per
    call) and a **rate** effect (the change of cost per call — price, tokens per call — on the current calls); a model
    new in the current period is all volume, a model gone is all volume.

    The **current period** is the ``period`` (hour, day, week, month) containing ``at``; ``at`` defaults to just before
    ``end`` when given, else the latest call. With ``period="all"``, the current period is ``[start, end)`` and the
    previous one the window of the same length before it (both required). ``start`` is otherwise not used. Like is
    compared with like: the current period stops at ``end`` and at the clock, and when it stops before its end (a
    week still running, or ``end`` on a Thursday) the previous period is compared over the same span from its start
    (Monday to Wednesday against Monday to Wednesday; ``period_end`` and ``previous_period_end`` say where each
    stops).

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics`.
    at : date or timestamp, optional
        An instant in the current period.

    Returns
    -------
    polars.DataFrame
        Tidy frame keyed by ``by`` + ``provider``, ``model``: ``value`` the change in USD (positive: spends more),
        ``n`` priced calls in both periods (tool and agent spans, which cost nothing, are not counted and have no
        row), ``period_start`` the current period; extra columns
        ``period_end`` and ``previous_period_start``, ``previous_period_end`` (the spans compared, ends excluded),
        ``previous_usd``, ``current_usd``, ``volume_effect_usd``, ``rate_effect_usd``,
        ``total_change_usd``, ``share_of_change`` (of the group's change), ``unpriced_count`` (calls; their cost is
        not in the numbers). A period in which every call of the model is unpriced has an unknown cost: its
        ``*_usd`` is null, and so are the change and its effects (not a drop to $0).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, feature, status, provider, model, cost_usd) values "
    ...     "('a', '2026-01-10', 'chat', 'ok', 'openai', 'big', 10.0), ('b', '2026-02-10', 'chat', 'ok', 'openai', 'big', 4.0),"
    ...     "('c', '2026-02-11', 'chat', 'ok', 'openai', 'small', 1.0), ('d', '2026-02-12', 'chat', 'ok', 'openai', 'small', 1.0)")
    >>> cost_change_usd(db, period="month").select("model", "value", "previous_usd", "current_usd", "total_change_usd").rows()
    [('big', -6.0, 10.0, 4.0, -4.0), ('small', 2.0, 0.0, 2.0, -4.0)]
    """
    import polars as pl

    from workbench.db import as_workbench

    metric = "cost_change_usd"
    db = as_workbench(db)
    at_ts = as_timestamp(at, what=f"{metric}: at")
    if period == "all":
        if at_ts is not None:  # the current window is [start, end): an at would be ignored
            raise ParameterError(f"{metric}: at applies to period hour, day, week or month; with period='all' the "
                                 f"current window is [start, end), got at={at!r}")
        s, e = as_timestamp(start), as_timestamp(end)
        if s is None or e is None or e <= s:
            raise ParameterError(f"{metric}: period='all' needs start < end (the current window), got {start!r}, {end!r}")
        prev_start, cur_start, cur_end = s - (e - s), s, e
    else:
        if period not in ("hour", "day", "week", "month"):
            raise ParameterError(f"{metric}: period: expected one of hour, day, week, month, all, got {period!r}")
        if at_ts is None and end is not None:
            at_ts = as_timestamp(end) - _dt.timedelta(microseconds=1)
        if at_ts is None:
            at_ts = priced_calls(db, where=where).ts.max().to_pyarrow().as_py()
        if at_ts is None:  # no calls at all
            at_ts = _dt.datetime(1970, 1, 1)
        prev_start, cur_start, cur_end = period_bounds(at_ts, period)
    # like with like: the current period stops at end and at the clock (no call is dated later), and then the previous
    # one is compared over the same span from its start (Monday to Wednesday against Monday to Wednesday)
    cur_stop = cur_end
    e = as_timestamp(end)
    for stop in (e if period != "all" else None, utc_now()):
        if stop is not None and cur_start < stop < cur_stop:
            cur_stop = stop
    prev_stop = min(prev_start + (cur_stop - cur_start), cur_start) if cur_stop < cur_end else cur_start
    t = priced_calls(db, start=prev_start, end=cur_stop, where=where)
    keys = check_by(t, by, fn=metric)
    t = t.filter(t.cost_source != "none")  # tool and agent spans cost nothing: not priced calls (as cost_usd's n)
    t = t.filter((t.ts >= cur_start) | (t.ts < prev_stop))
    gk = [*keys, *(k for k in ("provider", "model") if k not in keys)]
    cur = t.ts >= cur_start
    priced = t.cost_usd_used.notnull()
    unpriced = t.cost_source == "unpriced"
    df = to_polars(t.group_by(gk).aggregate(
        current_usd=t.cost_usd_used.sum(where=cur),
        previous_usd=t.cost_usd_used.sum(where=~cur),
        _cur_calls=(cur & priced).cast("int64").sum(),
        _prev_calls=(~cur & priced).cast("int64").sum(),
        _cur_unpriced=(cur & unpriced).cast("int64").sum(),
        _prev_unpriced=(~cur & unpriced).cast("int64").sum(),
        unpriced_count=unpriced.cast("int64").sum(),
    ))
    cpc_prev = pl.col("previous_usd") / pl.col("_prev_calls")
    # a period with no call of the model spent 0; one whose calls are all unpriced spent an unknown sum, not 0 (a
    # model streamed without usage from this month on read "spends less, all volume")
    df = df.with_columns(
        *(pl.when((pl.col(f"_{p}_calls") == 0) & (pl.col(f"_{p}_unpriced") > 0)).then(None)
          .otherwise(pl.col(f"{name}_usd").fill_null(0.0)).alias(f"{name}_usd")
          for p, name in (("cur", "current"), ("prev", "previous"))),
        pl.col("unpriced_count").cast(pl.Int64))
    df = df.with_columns(
        (pl.col("current_usd") - pl.col("previous_usd")).alias("value"),
        (pl.col("_cur_calls") + pl.col("_prev_calls")).alias("n"),
        pl.lit(cur_start).cast(pl.Datetime("us")).alias("period_start"),
        pl.lit(cur_stop).cast(pl.Datetime("us")).alias("period_end"),
        pl.lit(prev_start).cast(pl.Datetime("us")).alias("previous_period_start"),
        pl.lit(prev_stop).cast(pl.Datetime("us")).alias("previous_period_end"),
    )
    df = df.with_columns(
        pl.when(pl.col("value").is_null()).then(None)
        .when(pl.col("_prev_calls") == 0).then(pl.col("current_usd"))
        .when(pl.col("_cur_calls") == 0).then(-pl.col("previous_usd"))
        .otherwise((pl.col("_cur_calls") - pl.col("_prev_calls")) * cpc_prev).alias("volume_effect_usd"),
    ).with_columns((pl.col("value") - pl.col("volume_effect_usd")).alias("rate_effect_usd"))
    # the sum of the known contributions; a group none of whose changes is known (all its calls unpriced) has an
    # unknown total, not a total of $0.00 (polars sums nothing to 0)
    known = pl.col("value").is_not_null().any()
    total = pl.when(known).then(pl.col("value").sum())
    unknown = df.filter(pl.col("value").is_null() & (known.over(keys) if keys else known))
    if unknown.height:  # the rows then do not sum to the total: said, with how many (the report's data notes)
        named = unknown.select(*dict.fromkeys([*keys, "model"])).row(0, named=True)
        first = ", ".join(f"{k}={v!r}" for k, v in named.items())
        rows = "1 row has" if unknown.height == 1 else f"{unknown.height} rows have"
        its = "its" if unknown.height == 1 else "their"
        warnings.warn(f"{metric}: {rows} an unknown change (all {its} calls unpriced in a period compared, e.g. "
                      f"{first}): left out of total_change_usd, the change of the rows whose change is known",
                      ExcludedRowWarning, stacklevel=2)
    df = df.with_columns((total.over(keys) if keys else total).alias("total_change_usd"))
    df = df.with_columns(
        pl.when(pl.col("total_change_usd") != 0).then(pl.col("value") / pl.col("total_change_usd"))
        .alias("share_of_change"),
    ).drop("_cur_calls", "_prev_calls", "_cur_unpriced", "_prev_unpriced")
    out = tidy(df, keys=gk, metric=metric)
    return out


def _whatif_prices(db, model: str, provider: str | None, fn: str) -> tuple["ir.Table", str]:
    p = db.prices
    rows = p.filter(p.model == model)
    if provider is not None:
        rows = rows.filter(rows.provider == provider)
    providers = sorted(x for x in to_polars(rows.select("provider").distinct())["provider"].to_list())
    if not providers:
        import difflib

        # a typo of a priced model is told its closest name (it was told to load prices it already had)
        priced = p.filter(p.provider == provider) if provider is not None else p
        known = to_polars(priced.select("model").distinct())["model"].drop_nulls().to_list()
        close = difflib.get_close_matches(model, known, n=1)
        todo = "run load_prices, or add a [[prices]] entry to workbench.toml"
        raise ParameterError(f"{fn}: no price for model {model!r}" + (f" of provider {provider!r}" if provider else "")
                             + " in the prices table; "
                             + (f"did you mean {close[0]!r}? (else {todo})" if close else todo))
    if len(providers) > 1:
        from workbench.io.prices import bundled_providers, match_model

        found = match_model(bundled_providers(), None, model)
        if found is None or found[0].id not in providers:
            raise ParameterError(f"{fn}: model {model!r} is priced by several providers ({', '.join(providers)}); "
                             f"pass provider=")
        providers = [found[0].id]
    return rows.filter(rows.provider == providers[0]), providers[0]


def whatif_cost_usd(
    db, *, by: Iterable[str] | str | None = ("feature",), period: str = "day", start: Any = None, end: Any = None,
    where: Where = None, model: str | None = None, provider: str | None = None,
) -> "pl.DataFrame":
    """What the same traffic would have cost on another model: each call re-priced at ``model``'s prices.

    Same tokens (input, cached, output), ``model``'s price of each call's own day and context-size tier, next to the
    actual cost of the same calls. Only model calls that have an actual cost (reported or computed) and a ``model``
    price on their day are compared (``n``); the others are counted in ``skipped_count``. It re-prices tokens: a
    model that answers in more or fewer tokens, or needs more retries, would cost otherwise.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection, see :mod:`workbench.metrics` (``period="month", start=...`` for "last month").
    model : str
        The model to re-price at, as named in the ``prices`` table (``--param model=gpt-4o-mini`` from the CLI).
    provider : str, optional
        Its provider; needed only when several providers price a model of that name and genai-prices does not
        name one for it.

    Returns
    -------
    polars.DataFrame
        Tidy frame: ``value`` USD at ``model``'s prices (lower is better), ``n`` calls compared; extra columns
        ``whatif_provider``, ``whatif_model``, ``actual_usd``, ``change_usd`` (value - actual), ``change_rate``
        (change / actual), ``skipped_count``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into prices (provider, model, effective_from, min_input_tokens, input_usd_per_mtok, "
    ...     "output_usd_per_mtok, source) values ('openai', 'big', '2025-01-01', 0, 10.0, 30.0, 't'),"
    ...     "('openai', 'small', '2025-01-01', 0, 1.0, 2.0, 't');"
    ...     "insert into calls (call_id, ts, feature, status, provider, model, input_tokens, output_tokens) values "
    ...     "('a', '2026-01-01', 'chat', 'ok', 'openai', 'big', 1000, 100),"
    ...     "('b', '2026-01-01', 'chat', 'ok', 'openai', 'big', 2000, 200)")
    >>> # actual (3000 * 10 + 300 * 30) / 1e6 = 0.039; on small (3000 * 1 + 300 * 2) / 1e6 = 0.0036
    >>> whatif_cost_usd(db, model="small").select("value", "actual_usd", "n").rows()
    [(0.0036, 0.039, 2)]
    """
    import polars as pl

    from workbench.db import as_workbench

    metric = "whatif_cost_usd"
    if not isinstance(model, str) or not model:
        raise ParameterError(f"{metric}: option model is required (the model to re-price at), got {model!r}")
    check_name(metric, "provider", provider, optional=True, what="a provider")
    db = as_workbench(db)
    target, target_provider = _whatif_prices(db, model, provider, metric)
    t = priced_calls(db, start=start, end=end, where=where)
    keys = check_by(t, by, fn=metric)
    t = t.filter(t.cost_source != "none")
    t = _join_prices(t, target, "_w_", match_names=False)
    t = t.mutate(_w_cost=_token_cost(t, "_w_"))
    both = t.cost_usd_used.notnull() & t._w_cost.notnull()
    t = with_period(t, period, time="ts", start=start)
    df = to_polars(t.group_by([*keys, "period_start"]).aggregate(
        value=t._w_cost.sum(where=both), n=both.cast("int64").sum(), actual_usd=t.cost_usd_used.sum(where=both),
        skipped_count=(~both).cast("int64").sum(),
    ))
    df = df.with_columns(
        pl.lit(target_provider).alias("whatif_provider"), pl.lit(model).alias("whatif_model"),
        pl.col("actual_usd"), (pl.col("value") - pl.col("actual_usd")).alias("change_usd"),
        pl.when(pl.col("actual_usd") > 0).then(pl.col("value") / pl.col("actual_usd") - 1).alias("change_rate"),
        pl.col("skipped_count").cast(pl.Int64),
    )
    return complete_grid(tidy(df, keys=keys, metric=metric), t, keys=keys, period=period, start=start, end=end,
                         metric=metric, groups=df.select(keys))


# --------------------------------------------------------------------------------------------------------- budgets


def budgets(config: "str | os.PathLike | Config | Settings | None" = None) -> dict[str, "Budget"]:
    """The validated ``[budget.<feature>]`` tables of ``workbench.toml``: feature -> ``{monthly_usd, warn_at}``.

    ``monthly_usd`` (> 0) is required; ``warn_at`` (in (0, 1), default 0.85) is the share of the budget at which a
    warning fires, before the critical alert at 100% — LiteLLM's soft budget / max budget pair, as a share. An error
    raises :class:`~workbench.config.ConfigError` naming the file, the table and the key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text('[budget.chat]\\nmonthly_usd = 1500\\n')
    >>> budgets(p)
    {'chat': Budget(feature='chat', monthly_usd=1500.0, warn_at=0.85)}
    """
    from workbench.config import load_settings

    return dict(load_settings(config).budgets)


#: Each ``status`` of :func:`budget_status`: its ``alert`` (None: nothing to notify) and whether the spend was measured
#: (an unpriced month's spend is unknown; a month no call reached measured nothing). One table for the ``alert`` column
#: and the exit code of ``workbench budget`` (1 for an alert on measured spend, else 3 for an unmeasured month).
BUDGET_STATUSES: dict[str, tuple[str | None, bool]] = {
    "over": ("critical", True), "warn": ("warning", True), "unpriced": ("warning", False),
    "no data": ("warning", False), "no calls": (None, True), "ok": (None, True),
}


def budget_status(
    db: Any, *, config: "str | os.PathLike | Config | None" = None, at: Any = None,
) -> tuple["pl.DataFrame", bool]:
    """Monthly budget status per feature: spend to date, burn rate, forecast, and whether an alert fires.

    For each ``[budget.<feature>]`` of ``workbench.toml``, over the calendar month (UTC) containing ``at``, the spend
    of the feature's calls from the first of the month up to ``at`` (cost as in :func:`priced_calls`). Unpriced calls
    (no reported cost, and a model with no price or a successful call missing a token count) have no known cost: they
    are not in the spend, which is then a lower bound (and so are the share used, the burn rate and the forecast),
    and are counted in ``unpriced_count`` and ``unpriced_rate`` (of the feature's calls that need a price, as in
    :func:`unpriced_rate`).

    * ``burn_rate_usd_per_day`` = spend / ``days_elapsed`` (fractional days since the first of the month, at least
      1);
    * ``forecast_usd`` = spend + burn rate × (``days_in_month`` − ``days_elapsed``): a **linear** extrapolation of
      the month so far (burn rate × days in the month once a day has passed);
    * ``status``: ``no data`` when no call of any feature reached the month up to ``at``, nor the day before ``at``
      (calls that stopped arriving, an ``at`` before the data: nothing was measured, so no budget reads ``ok``; the
      first hours of a month, before its first call, are measured when calls arrived the day before), else ``over`` when spend >= budget, ``warn`` when spend >= ``warn_at`` ×
      budget, else ``unpriced`` when a call of the month is unpriced (its spend is unknown, so the month cannot read
      ``ok``), else ``no calls`` when the feature has no call in a month other calls reached (a quiet feature: $0
      spent, measured), else ``ok``; ``alert`` is ``warning`` / ``critical`` / ``warning`` / ``warning`` / null /
      null accordingly (LiteLLM's convention: the soft budget alerts when spend reaches it, the max budget when spend
      reaches it; an unpriced call warns until its model is priced, in ``workbench.toml`` ``[[prices]]`` and
      :func:`load_prices`, and a month with no call warns, as an SLO with no call in its window is notified). The
      forecast informs, it does not fire.

    Parameters
    ----------
    db : Workbench or path
    config : path or Config, optional
        ``workbench.toml`` (default: ``$WORKBENCH_CONFIG`` or ``./workbench.toml``).
    at : date or timestamp, optional
        Evaluate as of this instant (default: now, the clock in UTC; not the newest call, which a row dated in the
        future would move).

    Raises :class:`~workbench.errors.NotDeclaredError` when ``workbench.toml`` declares no budget: a check that
    cannot fire is not "on track" (the CLI exits 2 naming the file; a report says the budgets were not evaluated; a
    scheduled run skips the check).

    Returns
    -------
    (polars.DataFrame, bool)
        One row per budget: ``feature, month_start, at, budget_usd, spend_usd, share_used, burn_rate_usd_per_day,
        forecast_usd, forecast_share, warn_at, status, alert, unpriced_count, unpriced_rate, days_elapsed,
        days_in_month``; and whether any alert fires, the warning of an unpriced month or of a month with no call
        included (the CLI exits 1 when the spend reaches a warning or the budget, else 3, no data, when a month has
        unpriced calls or no call at all).

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text('[budget.chat]\\nmonthly_usd = 100\\n')
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, model, cost_usd) values "
    ...     "('a', '2026-04-02', 'chat', 'ok', 'm', 30.0), ('b', '2026-04-10', 'chat', 'ok', 'm', 60.0)")
    >>> df, firing = budget_status(db, config=p, at="2026-04-10")
    >>> df.select("spend_usd", "share_used", "burn_rate_usd_per_day", "forecast_usd", "status", "alert").rows()
    [(90.0, 0.9, 10.0, 300.0, 'warn', 'warning')]
    >>> firing
    True
    """
    import polars as pl

    from workbench.db import as_workbench

    db = as_workbench(db)
    source = config if config is not None else getattr(db, "settings", None)
    plan = budgets(source)
    from workbench.config import load_config

    cfg = load_config(source)
    if not plan:  # nothing can fire: said, never read as "on track" (as slo_status says no SLOs are declared)
        raise NotDeclaredError(f"{cfg.where('budget')}: no budgets declared (add a [budget.<feature>] table)")
    at_ts = as_timestamp(at)
    if at_ts is None:
        at_ts = utc_now(seconds=True)
    month_start = _dt.datetime(at_ts.year, at_ts.month, 1)
    days_in_month = calendar.monthrange(at_ts.year, at_ts.month)[1]
    days_elapsed = max((at_ts - month_start).total_seconds() / 86400, 1.0)
    schema = {"feature": pl.String, "spend_usd": pl.Float64, "unpriced_count": pl.Int64, "_billable": pl.Int64,
              "_calls": pl.Int64}
    end = at_ts + _dt.timedelta(microseconds=1)
    # a month that no call of any feature reached (calls that stopped arriving, an `at` before the data) measured
    # nothing: it read $0 spent, ok, for every budget. Calls in the day before `at` say the data is flowing: the
    # first hours of a month, before its first call, are measured ($0 so far), not 'no data' every month.
    c = db.calls
    since = min(month_start, at_ts - _dt.timedelta(days=1))
    month_empty = int(c.filter(c.ts >= since, c.ts < end).count().to_pyarrow().as_py()) == 0
    t = priced_calls(db, start=month_start, end=end)
    t = t.filter(t.feature.isin(list(plan)))
    counters = _counters(t)
    spent = to_polars(t.group_by("feature").aggregate(
        spend_usd=t.cost_usd_used.sum(), unpriced_count=counters["unpriced_count"], _billable=counters["_billable"],
        _calls=counters["calls_count"],
    ))
    spent = spent.cast({k: v for k, v in schema.items() if k in spent.columns})
    # a feature that spent nothing this month: is it one no call has at all (a typo)?
    warn_unknown_features(db, {f: cfg.where(f"budget.{f}") for f in sorted(plan)}, window=(month_start, at_ts))
    plan_df = pl.DataFrame(
        {"feature": list(plan), "budget_usd": [b.monthly_usd for b in plan.values()],
         "warn_at": [b.warn_at for b in plan.values()]},
        schema={"feature": pl.String, "budget_usd": pl.Float64, "warn_at": pl.Float64},
    )
    df = plan_df.join(spent, on="feature", how="left").with_columns(
        pl.col("spend_usd").fill_null(0.0), pl.col("unpriced_count").fill_null(0), pl.col("_billable").fill_null(0),
        pl.col("_calls").fill_null(0),
    ).with_columns(_unpriced_rate())
    share = pl.col("spend_usd") / pl.col("budget_usd")
    burn = pl.col("spend_usd") / days_elapsed
    # the days left after the days the burn rate is taken over: on the 1st, the day counted as elapsed is not left too
    forecast = pl.col("spend_usd") + burn * max(days_in_month - days_elapsed, 0.0)
    df = df.with_columns(
        pl.lit(month_start).cast(pl.Datetime("us")).alias("month_start"),
        pl.lit(at_ts).cast(pl.Datetime("us")).alias("at"),
        share.alias("share_used"), burn.alias("burn_rate_usd_per_day"), forecast.alias("forecast_usd"),
    ).with_columns(
        (pl.col("forecast_usd") / pl.col("budget_usd")).alias("forecast_share"),
        pl.when(pl.lit(month_empty)).then(pl.lit("no data"))
        .when(pl.col("share_used") >= 1.0).then(pl.lit("over"))
        .when(pl.col("share_used") >= pl.col("warn_at")).then(pl.lit("warn"))
        # the spend of unpriced calls is unknown, not 0: the month cannot be said to be ok
        .when(pl.col("unpriced_count") > 0).then(pl.lit("unpriced"))
        # a quiet feature in a month other calls reached: measured, nothing spent
        .when(pl.col("_calls") == 0).then(pl.lit("no calls"))
        .otherwise(pl.lit("ok")).alias("status"),
    ).with_columns(
        pl.col("status").replace_strict({s: alert for s, (alert, _) in BUDGET_STATUSES.items()},
                                        return_dtype=pl.String).alias("alert"),
        pl.lit(days_elapsed).alias("days_elapsed"), pl.lit(days_in_month).cast(pl.Int64).alias("days_in_month"),
    )
    cols = ["feature", "month_start", "at", "budget_usd", "spend_usd", "share_used", "burn_rate_usd_per_day",
            "forecast_usd", "forecast_share", "warn_at", "status", "alert", "unpriced_count", "unpriced_rate",
            "days_elapsed", "days_in_month"]
    df = df.select(cols).sort("feature")
    return df, bool(df["alert"].is_not_null().any())


# Each metric registered once with its contract (workbench.metrics.core.Metric).
SUITE = register(
    Metric(cost_usd, unit="usd", direction="lower", table="calls"),
    Metric(cost_per_call_usd, unit="usd", direction="lower", table="calls"),
    Metric(cost_per_1k_tokens_usd, unit="usd", direction="lower", table="calls"),
    Metric(cost_per_user_usd, unit="usd", direction="lower", table="calls"),
    Metric(cost_per_session_usd, unit="usd", direction="lower", table="calls"),
    Metric(cost_per_success_usd, unit="usd", direction="lower", table="calls"),
    Metric(unpriced_rate, unit="share", direction="lower", table="calls"),
    Metric(cost_change_usd, unit="usd", direction="lower", table="calls", splits=("provider", "model")),
    Metric(whatif_cost_usd, unit="usd", direction="lower", table="calls", needs=("model",), example={"model": "gpt-4o-mini"}),
    namespace=globals(),
)

# the same function under the name that says what it answers (after registration: the registered metric)
cost_drivers = cost_change_usd
