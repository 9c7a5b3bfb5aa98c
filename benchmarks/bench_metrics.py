"""Benchmark a core metric set through the workbench against eager polars on Parquet and plain DuckDB SQL.

    .venv/bin/python benchmarks/bench_metrics.py [--scale 10] [--db FILE] [--calls 10000000] [--repeat 1]

The data is the demo database: built at ``--scale`` into a temporary directory (scale 10 is about 0.7M synthetic calls
plus ~28k real Azure trace calls), or an existing file given with ``--db`` (opened read-only; with ``--calls`` it is
copied first). ``--calls N`` grows the calls table to N rows with calls generated inside DuckDB (``generate_calls``:
``insert ... select ... from range(k)`` in slices of 20M rows, hash-seeded columns: the demo's feature/model/provider
mix over 60 days, about 40 calls per user, 3% errors and 1% timeouts, log-normal latency, a TTFT on 60% of the calls),
never by replicating rows in Python.

Each metric is computed with ``by=("feature", "model"), period="day"`` three ways, each in its own spawned process so
that peak memory is per approach and per metric (``VmHWM`` from ``/proc/self/status`` at the end: the process's
high-water mark including the interpreter and imports; the imports' share, ``VmRSS`` before the work starts, is
printed below the table):

* **workbench**: ``workbench.metrics.compute(name, wb.connect(db, read_only=True), by=..., period="day")``, the Ibis
  expression executed by DuckDB, timed from connect to the tidy polars frame (the warm calls reuse the first call's
  connection, as a notebook or a report run does; so does the SQL);
* **polars**: what a user writes instead: the tables exported once to Parquet (the export time is printed), then per
  metric ``pl.read_parquet`` of the columns it needs and eager ``group_by``/``quantile(interpolation="linear")``/
  ``mean``, computing the same outputs as the workbench: the value, ``n`` and the interval (order-statistic for the
  percentile, Wilson for rates, normal for the mean), prices matched by provider, model, effective date and input-token
  tier for the cost, a zero-filled calendar for DAU. Timed from the read (its share is the ``read`` column);
* **duckdb sql**: the same numbers (value and n only) in hand-written SQL on the DuckDB file, for reference.

The numbers are checked before any time is printed: the same groups, equal ``n``, and ``value``/``lo``/``hi`` within
1e-9 (relative above 1) between the workbench and polars, and ``value``/``n`` between the workbench and SQL. ``ratio``
is polars seconds / workbench seconds (above 1: the workbench is faster).

``dau_count`` reads activity from ``calls`` (``activity="calls"``): the product ``events`` table has no ``model``
column to group by. ``hallucination_rate`` uses the offline detector's scores when the database has them, else the
human labels (the version with the most rows), and is skipped when there are no evals.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

BY = ("feature", "model")
METRICS = ("latency_p95_ms", "error_rate", "cost_usd", "tpot_ms", "hallucination_rate", "dau_count")
TOL = 1e-9
_END_OF_TIME = "9999-12-31"
_LAST_TOKENS = 2**63 - 1


def proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"proc_status_kb: no {field} in /proc/self/status")


# ------------------------------------------------------------------------------------------------------ workbench


#: One connection per approach and process (each metric runs in its own spawned process): opened by the first call.
_OPEN: dict = {}


def run_workbench(metric: str, ctx: dict):
    import polars as pl

    import workbench as wb
    from workbench.metrics import compute

    db = _OPEN.get("workbench")
    if db is None:  # the first call connects; the warm calls reuse the connection, as a notebook or a report run does
        db = _OPEN["workbench"] = wb.connect(ctx["db"], read_only=True, memory_limit=ctx.get("memory_limit"))
    opts: dict = {"by": BY, "period": "day"}
    if metric == "dau_count":
        opts["activity"] = "calls"
    if metric == "hallucination_rate":
        opts.update(evaluator=ctx["evaluator"], version=ctx["version"], metric=ctx["eval_metric"])
    df = compute(metric, db, **opts)
    return df.select(*BY, "period_start", "value", "n", "lo", "hi").with_columns(pl.col("n").cast(pl.Int64))


# ------------------------------------------------------------------------------------------------------- polars


def _pl_read(ctx: dict, table: str, columns: list[str]):
    import polars as pl

    t = time.perf_counter()
    df = pl.read_parquet(ctx["parquet"][table], columns=columns)
    ctx["_read_s"] = ctx.get("_read_s", 0.0) + time.perf_counter() - t
    return df


def _day():
    import polars as pl

    return pl.col("ts").dt.truncate("1d").cast(pl.Datetime("us")).alias("period_start")


def _wilson(df):
    import polars as pl

    from workbench.stats import wilson_interval

    lo, hi = wilson_interval(df["k"].to_numpy(), df["n"].to_numpy(), confidence=0.95)
    return df.with_columns((pl.col("k") / pl.col("n")).alias("value"), pl.Series("lo", lo), pl.Series("hi", hi))


def pl_latency_p95_ms(ctx: dict):
    import polars as pl

    from workbench.stats import quantile_interval_ranks

    calls = _pl_read(ctx, "calls", ["ts", *BY, "latency_ms"])
    g = (calls.filter(pl.col("latency_ms").is_not_null()).with_columns(_day())
         .group_by(*BY, "period_start")
         .agg(value=pl.col("latency_ms").quantile(0.95, interpolation="linear"), n=pl.len(),
              _sorted=pl.col("latency_ms").sort()))
    # distribution-free interval: the order statistics at the binomial ranks l and u (1-based; 0 / n+1 = unbounded),
    # widened on a small sample to hold the value
    lo, hi = quantile_interval_ranks(g["n"].to_numpy(), 0.95, 0.95)
    g = g.with_columns(pl.Series("_l", lo), pl.Series("_u", hi))
    return g.with_columns(
        pl.when(pl.col("_l") >= 1).then(pl.col("_sorted").list.get(pl.col("_l") - 1, null_on_oob=True)).alias("lo"),
        pl.when(pl.col("_u") <= pl.col("n")).then(pl.col("_sorted").list.get(pl.col("_u") - 1, null_on_oob=True))
        .alias("hi"),
    ).drop("_sorted", "_l", "_u")


def pl_error_rate(ctx: dict):
    import polars as pl

    calls = _pl_read(ctx, "calls", ["ts", *BY, "status"])
    g = calls.with_columns(_day()).group_by(*BY, "period_start").agg(
        k=(pl.col("status") == "error").fill_null(False).sum(), n=pl.len())
    return _wilson(g).drop("k")


def _pl_price_table(prices):
    """Each price row with the range it covers: [effective_from, valid_to) x [time_of_day_from_s, time_of_day_to_s)
    x [min_input_tokens, last_input_tokens]."""
    import polars as pl

    p = prices.with_columns(pl.col("min_input_tokens").fill_null(0), pl.col("time_of_day_from_s").fill_null(0))
    version = ["provider", "model", "effective_from"]
    p = p.sort("source").unique([*version, "time_of_day_from_s", "min_input_tokens"], keep="first",
                                 maintain_order=True)
    versions = p.select(version).unique().sort(version)
    versions = versions.with_columns(pl.col("effective_from").shift(-1).over("provider", "model").alias("valid_to"))
    p = p.join(versions, on=version)
    windows = p.select(*version, "time_of_day_from_s").unique().sort(*version, "time_of_day_from_s")
    windows = windows.with_columns(pl.col("time_of_day_from_s").shift(-1).over(version).alias("time_of_day_to_s"))
    p = p.join(windows, on=[*version, "time_of_day_from_s"])
    p = p.sort(*version, "time_of_day_from_s", "min_input_tokens").with_columns(
        (pl.col("min_input_tokens").shift(-1).over(*version, "time_of_day_from_s") - 1).alias("last_input_tokens"))
    end = pl.lit(_END_OF_TIME).str.to_datetime().cast(p.schema["effective_from"])
    return p.with_columns(
        pl.col("valid_to").fill_null(end),
        pl.col("time_of_day_to_s").fill_null(86400),
        pl.col("last_input_tokens").fill_null(_LAST_TOKENS),
    )


def pl_cost_usd(ctx: dict):
    import polars as pl

    cols = ["ts", *BY, "provider", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cost_usd", "status", "operation"]
    calls = _pl_read(ctx, "calls", list(dict.fromkeys(cols))).with_row_index("_row")
    prices = _pl_read(ctx, "prices", ["provider", "model", "effective_from", "time_of_day_from_s", "min_input_tokens",
                                      "input_usd_per_mtok",
                                      "output_usd_per_mtok", "cache_read_usd_per_mtok", "cache_write_usd_per_mtok",
                                      "source"])
    p = _pl_price_table(prices)
    # a call without a provider is priced by the first provider (by name) that prices its model
    first = prices.group_by("model").agg(pl.col("provider").min().alias("_first"))
    c = calls.join(first, on="model", how="left").with_columns(
        pl.coalesce("provider", "_first").alias("_prov"), pl.col("input_tokens").fill_null(0).alias("_tok"),
        (pl.col("ts").dt.hour().cast(pl.Int32) * 3600 + pl.col("ts").dt.minute().cast(pl.Int32) * 60
         + pl.col("ts").dt.second().cast(pl.Int32)).alias("_tod"))
    m = c.select("_row", "_prov", "model", "ts", "_tod", "_tok").join(
        p.rename({"provider": "_prov"}), on=["_prov", "model"], how="inner"
    ).filter((pl.col("effective_from") <= pl.col("ts")) & (pl.col("ts") < pl.col("valid_to"))
             & (pl.col("time_of_day_from_s") <= pl.col("_tod")) & (pl.col("_tod") < pl.col("time_of_day_to_s"))
             & (pl.col("min_input_tokens") <= pl.col("_tok")) & (pl.col("_tok") <= pl.col("last_input_tokens")))
    c = c.join(m.select("_row", "effective_from", "input_usd_per_mtok", "output_usd_per_mtok",
                        "cache_read_usd_per_mtok", "cache_write_usd_per_mtok"), on="_row", how="left")
    it, ot = pl.col("input_tokens").fill_null(0), pl.col("output_tokens").fill_null(0)
    cr, cw = pl.col("cache_read_tokens").fill_null(0), pl.col("cache_write_tokens").fill_null(0)
    ip = pl.col("input_usd_per_mtok")
    computed = ((it - cr - cw) * ip.fill_null(0)
                + cr * pl.coalesce("cache_read_usd_per_mtok", ip).fill_null(0)
                + cw * pl.coalesce("cache_write_usd_per_mtok", ip).fill_null(0)
                + ot * pl.col("output_usd_per_mtok").fill_null(0)) / 1e6
    # a successful model call missing a token count it is billed for: its cost is unknown, not computed
    op, tin, tout = pl.col("operation"), pl.col("input_tokens"), pl.col("output_tokens")
    missing = ((pl.col("status") == "ok") & pl.col("model").is_not_null()
               & ((op.is_null() | op.is_in(["chat", "text_completion", "generate_content"]))
                  & (tin.is_null() | tout.is_null()) | (op == "embeddings") & tin.is_null())).fill_null(False)
    computed = pl.when(pl.col("effective_from").is_not_null() & ~missing).then(computed)
    no_usage = pl.col("model").is_null() & ((it.cast(pl.Int128) + ot) == 0) & pl.col("cost_usd").is_null()
    used = pl.coalesce(pl.col("cost_usd"), computed, pl.when(no_usage).then(pl.lit(0.0)))
    # n counts the priced calls (reported or computed), as the workbench does: a call without model and tokens costs
    # 0 but is not one
    priced = pl.col("cost_usd").is_not_null() | computed.is_not_null()
    g = c.with_columns(_day(), used.alias("_used"), priced.alias("_priced")).group_by(*BY, "period_start").agg(
        value=pl.col("_used").sum(), n=pl.col("_priced").sum())
    return g.with_columns(pl.when(pl.col("n") > 0).then(pl.col("value")).alias("value"),
                          pl.lit(None, pl.Float64).alias("lo"), pl.lit(None, pl.Float64).alias("hi"))


def pl_tpot_ms(ctx: dict):
    from statistics import NormalDist

    import polars as pl

    calls = _pl_read(ctx, "calls", ["ts", *BY, "latency_ms", "ttft_ms", "output_tokens", "reasoning_tokens"])
    streamed = pl.col("output_tokens") - pl.col("reasoning_tokens").fill_null(0)  # hidden reasoning is not streamed
    v = (pl.col("latency_ms") - pl.col("ttft_ms")) / (streamed - 1).cast(pl.Float64)
    g = (calls.filter((streamed > 1) & pl.col("ttft_ms").is_not_null()
                      & (pl.col("latency_ms") >= pl.col("ttft_ms")))
         .with_columns(_day(), v.alias("_v")).group_by(*BY, "period_start")
         .agg(value=pl.col("_v").mean(), n=pl.len(), _sd=pl.col("_v").std(ddof=1)))
    half = NormalDist().inv_cdf(0.975) * pl.col("_sd") / pl.col("n").cast(pl.Float64).sqrt()
    # no interval for a group of one call (no standard deviation): max_horizontal would read the null bound as 0
    return g.with_columns(pl.when(pl.col("_sd").is_not_null())
                          .then(pl.max_horizontal(pl.col("value") - half, pl.lit(0.0))).alias("lo"),
                          (pl.col("value") + half).alias("hi")).drop("_sd")


def pl_hallucination_rate(ctx: dict):
    import polars as pl

    e = _pl_read(ctx, "evals", ["call_id", "metric", "value", "label", "evaluator", "evaluator_version", "repeat", "ts"])
    e = e.filter((pl.col("metric") == ctx["eval_metric"]) & (pl.col("evaluator") == ctx["evaluator"])
                 & (pl.col("repeat").fill_null(0) == 0) & (pl.col("evaluator_version") == ctx["version"]))
    a = _pl_read(ctx, "answers", ["call_id", "ts"]).rename({"ts": "_answer_ts"})
    c = _pl_read(ctx, "calls", ["call_id", "ts", *BY]).rename({"ts": "_call_ts"})
    j = e.rename({"ts": "_eval_ts"}).join(a, on="call_id", how="left").join(c, on="call_id", how="left")
    j = j.with_columns(pl.coalesce("_call_ts", "_answer_ts", "_eval_ts").alias("ts")).with_columns(_day())
    den = (pl.col("value").is_not_null() & pl.col("label").is_in(["hallucinated", "supported"])).fill_null(False)
    g = j.group_by(*BY, "period_start").agg(
        k=((pl.col("label") == "hallucinated").fill_null(False) & den).sum(), n=den.sum().cast(pl.Int64))
    g = _wilson(g.filter(pl.col("n") > 0)).drop("k")
    empty = j.select(*BY, "period_start").unique().join(g, on=[*BY, "period_start"], how="anti", nulls_equal=True)
    empty = empty.with_columns(value=pl.lit(None, pl.Float64), n=pl.lit(0, pl.Int64), lo=pl.lit(None, pl.Float64),
                               hi=pl.lit(None, pl.Float64))
    return pl.concat([g, empty], how="diagonal_relaxed")


def pl_dau_count(ctx: dict):
    import polars as pl

    calls = _pl_read(ctx, "calls", ["ts", *BY, "user_id"])
    g = (calls.filter(pl.col("user_id").is_not_null()).with_columns(_day())
         .group_by(*BY, "period_start").agg(users=pl.col("user_id").n_unique()))
    # every day from the first to the last active day, for every group: a day without users is 0, not missing
    days = pl.DataFrame({"period_start": pl.datetime_range(g["period_start"].min(), g["period_start"].max(), "1d",
                                                           time_unit="us", eager=True)})
    grid = g.select(*BY).unique().join(days, how="cross")
    out = grid.join(g, on=[*BY, "period_start"], how="left", nulls_equal=True)
    return out.select(*BY, "period_start", pl.col("users").fill_null(0).cast(pl.Float64).alias("value"),
                      pl.lit(1, pl.Int64).alias("n"), pl.lit(None, pl.Float64).alias("lo"),
                      pl.lit(None, pl.Float64).alias("hi"))


def run_polars(metric: str, ctx: dict):
    import polars as pl

    df = globals()[f"pl_{metric}"](ctx)
    return df.select(*BY, pl.col("period_start").cast(pl.Datetime("us")), pl.col("value").cast(pl.Float64),
                     pl.col("n").cast(pl.Int64), pl.col("lo").cast(pl.Float64), pl.col("hi").cast(pl.Float64))


# --------------------------------------------------------------------------------------------------- duckdb sql

_SQL_PRICES = f"""
with p0 as (
    select * replace (coalesce(min_input_tokens, 0) as min_input_tokens,
                      coalesce(time_of_day_from_s, 0) as time_of_day_from_s) from prices
    qualify row_number() over (partition by provider, model, effective_from, coalesce(time_of_day_from_s, 0),
                                            coalesce(min_input_tokens, 0) order by source) = 1),
versions as (
    select provider, model, effective_from,
           coalesce(lead(effective_from) over (partition by provider, model order by effective_from),
                    timestamp '{_END_OF_TIME}') as valid_to
    from (select distinct provider, model, effective_from from p0)),
windows as (
    select provider, model, effective_from, time_of_day_from_s,
           coalesce(lead(time_of_day_from_s) over (partition by provider, model, effective_from
                                                   order by time_of_day_from_s), 86400) as time_of_day_to_s
    from (select distinct provider, model, effective_from, time_of_day_from_s from p0)),
p as (
    select p0.*, v.valid_to, w.time_of_day_to_s,
           coalesce(lead(min_input_tokens) over (partition by p0.provider, p0.model, p0.effective_from,
                                                              p0.time_of_day_from_s
                                                 order by min_input_tokens) - 1, {_LAST_TOKENS}) as last_input_tokens
    from p0 join versions v using (provider, model, effective_from)
    join windows w using (provider, model, effective_from, time_of_day_from_s)),
first_provider as (select model, min(provider) as provider from prices group by model),
c as (
    select calls.*, coalesce(calls.provider, f.provider) as match_provider, coalesce(input_tokens, 0) as tok,
           hour(ts) * 3600 + minute(ts) * 60 + second(ts) as tod,
           -- a successful model call missing a token count it is billed for: its cost is unknown, not computed
           coalesce(status = 'ok' and calls.model is not null
                    and ((operation is null or operation in ('chat', 'text_completion', 'generate_content'))
                         and (input_tokens is null or output_tokens is null)
                         or operation = 'embeddings' and input_tokens is null), false) as usage_missing
    from calls left join first_provider f on calls.model = f.model),
priced as (
    select c.*, case when not usage_missing then p.effective_from end as p_from,
        ((coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0) - coalesce(cache_write_tokens, 0))
            * coalesce(p.input_usd_per_mtok, 0)
         + coalesce(cache_read_tokens, 0) * coalesce(p.cache_read_usd_per_mtok, p.input_usd_per_mtok, 0)
         + coalesce(cache_write_tokens, 0) * coalesce(p.cache_write_usd_per_mtok, p.input_usd_per_mtok, 0)
         + coalesce(output_tokens, 0) * coalesce(p.output_usd_per_mtok, 0)) / 1e6 as computed
    from c left join p on c.match_provider = p.provider and c.model = p.model and p.effective_from <= c.ts
        and c.ts < p.valid_to and p.time_of_day_from_s <= c.tod and c.tod < p.time_of_day_to_s
        and p.min_input_tokens <= c.tok and c.tok <= p.last_input_tokens),
used as (
    select *, coalesce(cost_usd, case when p_from is not null then computed end,
                       case when model is null and coalesce(input_tokens, 0)::hugeint + coalesce(output_tokens, 0) = 0
                                 and cost_usd is null then 0.0 end) as used
    from priced)
select feature, model, date_trunc('day', ts) as period_start,
       -- n counts the priced calls (reported or computed); a call without model and tokens costs 0 but is not one
       case when count(*) filter (where cost_usd is not null or p_from is not null) > 0 then sum(used) end as value,
       count(*) filter (where cost_usd is not null or p_from is not null) as n
from used group by all
"""

_Z = "1.959963984540054"  # z_value(0.95), the two-sided normal quantile


def _wilson_sql(k: str, n: str) -> str:
    """value, lo, hi of the Wilson interval at 95% (what workbench.stats.wilson_interval computes), null where n = 0."""
    p, z2 = f"({k})::double / ({n})", f"{_Z} * {_Z}"
    centre = f"(({p} + {z2} / (2 * ({n}))) / (1 + {z2} / ({n})))"
    half = f"({_Z} * sqrt({p} * (1 - {p}) / ({n}) + {z2} / (4 * ({n}) * ({n}))) / (1 + {z2} / ({n})))"
    return (f"case when {n} > 0 then {p} end as value, "
            f"case when {n} > 0 then greatest(0, least(1, {centre} - {half})) end as lo, "
            f"case when {n} > 0 then greatest(0, least(1, {centre} + {half})) end as hi")


# Latency and error rates measure the LLM calls (workbench.metrics.latency.operation_filter): no operation, or a
# chat / completion operation; tool calls and agent tasks are not in them.
SQL = {
    # the binomial ranks of the interval come from the group sizes (SQL cannot compute them): the first statement
    # gives the sizes, the ranks are computed in numpy and joined as the table ``ranks``; the order statistics are
    # then picked from each group's sorted list (the fastest hand-written form measured; a row_number() window over
    # the groups is slower)
    "latency_p95_ms:sizes": """
        select feature, model, date_trunc('day', ts) as period_start, count(*) as n
        from calls where latency_ms is not null and (operation is null or operation in ('chat', 'text_completion', 'generate_content')) group by all""",
    "latency_p95_ms": """
        with g as (
            select feature, model, date_trunc('day', ts) as period_start, count(*) as n,
                   quantile_cont(latency_ms, 0.95) as value, list(latency_ms order by latency_ms) as xs
            from calls where latency_ms is not null and (operation is null or operation in ('chat', 'text_completion', 'generate_content')) group by all)
        select g.feature, g.model, g.period_start, g.value, g.n,
               case when r.l >= 1 then g.xs[r.l] end as lo, case when r.u <= g.n then g.xs[r.u] end as hi
        from g join ranks r on g.feature is not distinct from r.feature and g.model is not distinct from r.model
            and g.period_start = r.period_start""",
    "error_rate": f"""
        select feature, model, period_start, n, {_wilson_sql('k', 'n')}
        from (select feature, model, date_trunc('day', ts) as period_start, count(*) filter (where status = 'error') as k,
                     count(*) as n
              from calls where (operation is null or operation in ('chat', 'text_completion', 'generate_content')) group by all)""",
    "cost_usd": _SQL_PRICES,
    "tpot_ms": f"""
        select feature, model, period_start, value, n, p50,
               case when n >= 2 and sd is not null then greatest(value - {_Z} * sd / sqrt(n), 0) end as lo,
               case when n >= 2 and sd is not null then value + {_Z} * sd / sqrt(n) end as hi
        from (select feature, model, date_trunc('day', ts) as period_start, avg(v) as value, count(*) as n,
                     stddev_samp(v) as sd, quantile_cont(v, 0.5) as p50  -- tpot_ms returns the median too
              from (select *, (latency_ms - ttft_ms) / (streamed - 1)::double as v
                    -- hidden reasoning tokens are counted in output_tokens but not streamed
                    from (select *, output_tokens - coalesce(reasoning_tokens, 0) as streamed from calls)
                    where streamed > 1 and ttft_ms is not null and latency_ms >= ttft_ms
                      and (operation is null or operation in ('chat', 'text_completion', 'generate_content')))
              group by all)""",
    "hallucination_rate": f"""
        with j as (  -- production answers only (a scored benchmark set has no call and a dataset as its source),
                     -- dated by the answer (its call, else the answer's own time), never by when it was scored
            select e.label, e.value, c.feature, c.model, coalesce(c.ts, a.ts) as ts
            from evals e left join answers a on e.call_id = a.call_id left join calls c on e.call_id = c.call_id
            where e.metric = $metric and e.evaluator = $evaluator and coalesce(e."repeat", 0) = 0
              and e.evaluator_version = $version and not (c.ts is null and a.source is not null))
        select feature, model, period_start, n, {_wilson_sql('k', 'n')}
        from (select feature, model, date_trunc('day', ts) as period_start,
                     -- scored (a value) with a verdict: a label that is neither is in no count
                     count(*) filter (where value is not null and label = 'hallucinated') as k,
                     count(*) filter (where value is not null and label in ('hallucinated', 'supported')) as n
              from j group by all)""",
    "dau_count": """
        with d as (
            select feature, model, date_trunc('day', ts) as period_start, count(distinct user_id) as users
            from calls where user_id is not null group by all),
        days as (select unnest(generate_series(min(period_start), max(period_start), interval 1 day)) as period_start
                 from d),
        grid as (select * from (select distinct feature, model from d) cross join days)
        select g.feature, g.model, g.period_start, coalesce(d.users, 0)::double as value, 1 as n,
               null::double as lo, null::double as hi
        from grid g left join d on g.feature is not distinct from d.feature and g.model is not distinct from d.model
            and g.period_start = d.period_start""",
}


_PREPARED: dict[str, str] = {}


def _execute(con, sql: str, params: dict | None = None):
    """Run hand-written SQL as a DuckDB user runs a query again and again: prepared by its first run, executed from
    the plan after that, as the workbench runs its queries (``workbench.metrics.core._run``, which also prepares again
    when a table's size has changed; this does not check)."""
    from workbench.db import sql_literal

    name = _PREPARED.get(sql)
    if name is None:
        name = _PREPARED[sql] = f"hand_{len(_PREPARED)}"
        con.execute(f"PREPARE {name} AS {sql}")
    args = ", ".join(f"{k} := {sql_literal(v)}" for k, v in (params or {}).items())
    return con.execute(f"EXECUTE {name}" + (f"({args})" if args else "")).fetch_arrow_table()


def run_duckdb_sql(metric: str, ctx: dict):
    import duckdb
    import polars as pl

    con = _OPEN.get("duckdb_sql")
    if con is None:  # as the workbench: connected by the first call, reused by the warm ones
        con = _OPEN["duckdb_sql"] = duckdb.connect(ctx["db"], read_only=True)
        if ctx.get("memory_limit"):
            con.execute(f"set memory_limit = '{ctx['memory_limit']}'")
    params = ({"metric": ctx["eval_metric"], "evaluator": ctx["evaluator"], "version": ctx["version"]}
              if metric == "hallucination_rate" else None)
    if metric == "latency_p95_ms":
        from workbench.stats import quantile_interval_ranks

        sizes = _execute(con, SQL["latency_p95_ms:sizes"])
        l, u = quantile_interval_ranks(sizes["n"].to_numpy(), 0.95, 0.95)
        ranks = pl.from_arrow(sizes).with_columns(pl.Series("l", l), pl.Series("u", u)).to_arrow()
        con.register("ranks", ranks)
    sql = SQL[metric]
    if metric == "cost_usd":  # no interval for a sum
        sql = f"select *, null::double as lo, null::double as hi from ({sql})"
    df = pl.from_arrow(_execute(con, sql, params))
    return df.select(*BY, pl.col("period_start").cast(pl.Datetime("us")), pl.col("value").cast(pl.Float64),
                     pl.col("n").cast(pl.Int64), pl.col("lo").cast(pl.Float64), pl.col("hi").cast(pl.Float64))


# ------------------------------------------------------------------------------------------------------- driver


def _worker(approach: str, metric: str, ctx: dict, repeat: int) -> dict:
    """Runs in a fresh spawned process: import, note RSS, run once (the first call of a session), then ``repeat``
    more times and keep the fastest of those (the warm figure)."""
    warnings.simplefilter("ignore")  # UndefinedMetricWarning on n = 0 groups: expected, checked by the comparison
    # Import up front what every approach needs (scipy for the ranks and intervals, polars, duckdb), so the timing is
    # the work and not a one-off import that a notebook pays once per session. The workbench's own imports (Ibis, the
    # metric modules) are part of its first call: that is what a fresh session pays.
    import duckdb  # noqa: F401
    import polars  # noqa: F401
    import scipy.stats  # noqa: F401

    import workbench.stats  # noqa: F401

    fn = {"workbench": run_workbench, "polars": run_polars, "duckdb_sql": run_duckdb_sql}[approach]
    base = proc_status_kb("VmRSS")
    first, best, read_s, df = None, math.inf, None, None
    for i in range(1 + repeat):
        run_ctx = dict(ctx)
        t = time.perf_counter()
        df = fn(metric, run_ctx)
        dt = time.perf_counter() - t
        if i == 0:
            first = dt
        elif dt < best:
            best, read_s = dt, run_ctx.get("_read_s")
    return {"first": first, "seconds": best, "read_s": read_s, "base_kb": base, "peak_kb": proc_status_kb("VmHWM"),
            "df": df}


def measure(approach: str, metric: str, ctx: dict, repeat: int) -> dict:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(_worker, approach, metric, ctx, repeat).result()


def compare(metric: str, ref, other, name: str, *, intervals: bool = True) -> None:
    """Raise AssertionError unless ``other`` has the groups, n and values (and lo/hi) of ``ref``."""
    import polars as pl

    keys = [*BY, "period_start"]
    # The workbench also returns every group of the selection in every period, with n = 0 and a null value where
    # there was nothing to measure (complete_grid); hand-written SQL returns the measured groups only. Those rows
    # are checked to be empty and left out of the comparison (building them is part of the workbench's time).
    empty = ref.filter(pl.col("n") == 0)
    assert empty.filter(pl.col("value").is_not_null()).height == 0, f"{metric}: a group with n = 0 has a value"
    ref = ref.filter(pl.col("n") > 0)
    other = other.filter(pl.col("n") > 0) if "n" in other.columns else other
    missing = ref.join(other, on=keys, how="anti", nulls_equal=True)
    extra = other.join(ref, on=keys, how="anti", nulls_equal=True)
    assert missing.height == 0 and extra.height == 0, (
        f"{metric}: {name} groups differ from the workbench's: {missing.height} missing, {extra.height} extra\n"
        f"{missing.head(5)}\n{extra.head(5)}")
    j = ref.join(other, on=keys, how="inner", nulls_equal=True, suffix="_o")
    assert j.height == ref.height, f"{metric}: {name} has duplicate groups"
    bad_n = j.filter(pl.col("n") != pl.col("n_o"))
    assert bad_n.height == 0, f"{metric}: n differs ({name})\n{bad_n.head(5)}"
    for col in ("value", "lo", "hi") if intervals else ("value",):
        a, b = pl.col(col), pl.col(f"{col}_o")
        bad = j.filter((a.is_null() != b.is_null())
                       | ((a - b).abs() > TOL * pl.max_horizontal(pl.lit(1.0), a.abs())).fill_null(False))
        assert bad.height == 0, f"{metric}: {col} differs beyond {TOL:g} ({name})\n{bad.head(5)}"


# The generated calls: a mix of features, models and providers priced by the demo's price table, timestamps over 60
# days, ~40 calls per user, 3% errors and 1% timeouts, log-normal latency, time-to-first-token on 60% of the calls.
_MIX = [("support_assistant", "gpt-4o", "openai", 20), ("coding_assistant", "claude-sonnet-4", "anthropic", 18),
        ("summariser", "claude-3-5-haiku", "anthropic", 17), ("support_assistant", "gpt-4o-mini", "openai", 11),
        ("agent", None, None, 9), ("agent", "gpt-4o", "openai", 9), ("coding_assistant", "o4-mini", "openai", 6),
        ("coding_assistant", "acme-llama-ft", "self-hosted", 4), ("summariser", "gemini-2.0-flash", "google", 3),
        ("support_assistant", "claude-sonnet-4", "anthropic", 3)]


def generate_calls(con, n: int, *, start: str = "2026-09-24", days: int = 60, first: int = 0) -> None:
    """Insert ``n`` synthetic calls into ``calls``, computed in DuckDB from ``range`` (hash-seeded, deterministic)."""
    mix = [i for i, (*_, w) in enumerate(_MIX) for _ in range(w)]
    lst = lambda vals: "[" + ", ".join("NULL" if v is None else f"'{v}'" for v in vals) + "]::VARCHAR[]"  # noqa: E731
    feats, models, provs = (lst([m[j] for m in _MIX]) for j in range(3))
    users = max(1, n // 40)
    u = lambda k: f"((hash(i, {k}) % 1000003) + 0.5) / 1000003.0"  # noqa: E731 - uniform (0, 1), stream k
    con.execute(f"""
        insert into calls (call_id, trace_id, ts, latency_ms, ttft_ms, feature, provider, model, user_id, session_id,
                           status, input_tokens, output_tokens, cache_read_tokens)
        select 'g' || i, 't' || i, ts, lat, case when {u(5)} < 0.6 then round(lat * (0.1 + 0.3 * {u(6)}), 3) end,
               list_extract({feats}, c), list_extract({provs}, c), list_extract({models}, c), 'u' || (hash(i, 7) % {users})::bigint, 's' || (hash(i, 8) % {users * 5}),
               case when {u(9)} < 0.03 then 'error' when {u(9)} < 0.04 then 'timeout' else 'ok' end,
               (200 + hash(i, 10) % 3000)::bigint, (20 + hash(i, 11) % 800)::bigint,
               case when {u(12)} < 0.3 then (hash(i, 13) % 200)::bigint end
        from (select i, 1 + list_extract({mix}, (1 + hash(i, 1) % {len(mix)})::bigint) as c,
                     timestamp '{start}' + to_microseconds((hash(i, 2) % ({days} * 86400000000))::bigint) as ts,
                     round(exp(6.5 + 0.7 * sqrt(-2 * ln({u(3)})) * cos(2 * pi() * {u(4)})), 3) as lat
              from range({first}, {first + n}) r(i))""")


def prepare(a, tmp: Path) -> tuple[Path, str]:
    """The database to benchmark, and how it was made."""
    import duckdb

    if a.db is not None:
        src, how = a.db, f"{a.db}"
        if a.calls is None:
            return src, how
        work = tmp / "bench.duckdb"
        shutil.copyfile(src, work)
    else:
        from bench_demo import run_build

        work = tmp / "bench.duckdb"
        r = run_build(work, a.scale)
        how = (f"build_demo(scale={a.scale:g}) in {r['seconds']:.1f} s "
               f"(peak RSS {r['peak_kb'] / 1024:.0f} MB)")
    if a.calls is not None:
        con = duckdb.connect(str(work))
        con.execute(f"set memory_limit = '{a.gen_memory}'")
        base = con.execute("select count(*) from calls").fetchone()[0]
        t = time.perf_counter()
        todo, step, done = max(0, a.calls - base), 20_000_000, 0
        while done < todo:  # in slices: one insert of 100M rows would hold its whole undo state
            k = min(step, todo - done)
            generate_calls(con, k, first=done)
            con.execute("checkpoint")
            done += k
            print(f"  generated {done:,} / {todo:,} calls ({time.perf_counter() - t:.0f} s)", flush=True)
        rows = con.execute("select count(*) from calls").fetchone()[0]
        con.close()
        how += (f"; {todo:,} calls generated in DuckDB ({base:,} -> {rows:,} rows) in {time.perf_counter() - t:.1f} s, "
                f"file {work.stat().st_size / 1e9:.2f} GB")
    return work, how


def _median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


class _AlternativeFailed(Exception):
    """The alternative ran out of memory under --memory-limit (the workbench did not): reported, not a failure."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=10.0, help="demo scale to build (default 10: ~0.7M calls)")
    ap.add_argument("--db", type=Path, default=None, help="use this demo database instead of building one")
    ap.add_argument("--calls", type=int, default=None,
                    help="generate calls in DuckDB until the table holds at least this many rows")
    ap.add_argument("--repeat", type=int, default=2,
                    help="warm runs per process after the first, fastest kept (default 2)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="processes per approach and metric, interleaved workbench / sql (default 2; medians)")
    ap.add_argument("--polars", action="store_true", help="also run the eager polars version (needs a Parquet export)")
    ap.add_argument("--metrics", nargs="+", default=list(METRICS), choices=METRICS)
    ap.add_argument("--gen-memory", default="4GB", help="DuckDB memory limit while generating calls")
    ap.add_argument("--memory-limit", default=None,
                    help="DuckDB memory limit of both the workbench (wb.connect(memory_limit=)) and the SQL, e.g. 1.5GB")
    ap.add_argument("--json", type=Path, default=None, help="also write the table's rows as JSON here")
    a = ap.parse_args(argv)
    if a.scale <= 0 or a.repeat < 1 or a.rounds < 1 or (a.calls is not None and a.calls < 1):
        ap.error("--scale, --repeat, --rounds and --calls must be positive")
    if a.db is not None and not a.db.exists():
        ap.error(f"--db: no file {a.db}")

    import duckdb
    import polars as pl

    def load() -> str:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])

    print(f"bench_metrics: {os.cpu_count()} cores, load average {load()}, duckdb {duckdb.__version__}, "
          f"polars {pl.__version__}; by={BY}, period=day", flush=True)
    approaches = ("workbench", "duckdb_sql", *(("polars",) if a.polars else ()))
    with tempfile.TemporaryDirectory(prefix="wb-bench-metrics-") as tmp:
        tmp = Path(tmp)
        db, how = prepare(a, tmp)
        print(f"data: {how}", flush=True)
        con = duckdb.connect(str(db), read_only=True)
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("calls", "evals", "answers", "prices")}
        ctx: dict = {"db": str(db), "parquet": {}, "memory_limit": a.memory_limit}
        if a.memory_limit:
            print(f"DuckDB memory_limit {a.memory_limit} for the workbench and the SQL", flush=True)
        sel = con.execute("""
            select evaluator, evaluator_version, metric, count(*) from evals
            where metric in ('hallucination_score', 'hallucination_label') and coalesce("repeat", 0) = 0
            group by 1, 2, 3 order by evaluator = 'human', count(*) desc limit 1""").fetchone()
        metrics = list(a.metrics)
        if sel is None:
            metrics = [m for m in metrics if m != "hallucination_rate"]
            print("hallucination_rate skipped: no hallucination evals in the database")
        else:
            ctx.update(evaluator=sel[0], version=sel[1], eval_metric=sel[2])
            print(f"hallucination_rate over evaluator={sel[0]!r} version={sel[1]!r} metric={sel[2]!r} "
                  f"({sel[3]:,} scores)")
        if a.polars:
            t = time.perf_counter()
            for table in ("calls", "evals", "answers", "prices"):
                path = tmp / f"{table}.parquet"
                con.execute(f"copy {table} to '{path}' (format parquet)")
                ctx["parquet"][table] = str(path)
            size = sum(Path(p).stat().st_size for p in ctx["parquet"].values())
            print(f"parquet export for the polars approach (one-off, not in the table): "
                  f"{time.perf_counter() - t:.1f} s, {size / 1e6:.0f} MB")
        con.close()

        rows, failed = [], []
        for metric in metrics:
            runs: dict[str, list[dict]] = {k: [] for k in approaches}
            try:
                for _ in range(a.rounds):  # interleaved: workbench, sql(, polars), workbench, sql, ...
                    for ap_ in approaches:
                        try:
                            runs[ap_].append(measure(ap_, metric, ctx, a.repeat))
                        except Exception as exc:
                            if ap_ == "workbench" or not a.memory_limit or "Out of Memory" not in str(exc):
                                raise
                            # the alternative cannot run under the limit: say so, and keep the workbench's figures
                            w = runs["workbench"][-1]
                            print(f"  {metric}: {ap_} runs out of memory under memory_limit {a.memory_limit} "
                                  f"({str(exc).splitlines()[0][:90]}); workbench {w['first']:.2f} s first, "
                                  f"{w['seconds']:.2f} s warm, {w['peak_kb'] / 1024:.0f} MB", flush=True)
                            raise _AlternativeFailed from None
                # the numbers first: every run of every approach against the workbench's first run
                ref = runs["workbench"][0]["df"]
                for ap_ in approaches:
                    for r in runs[ap_]:
                        compare(metric, ref, r["df"], ap_)
            except _AlternativeFailed:
                continue
            except Exception as exc:  # keep the other metrics' figures; the exit status says it failed
                print(f"  {metric}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                failed.append(metric)
                continue
            res = {k: {"first": _median([r["first"] for r in v]), "seconds": _median([r["seconds"] for r in v]),
                       "peak_kb": max(r["peak_kb"] for r in v), "base_kb": max(r["base_kb"] for r in v),
                       "read_s": _median([r["read_s"] or 0.0 for r in v])} for k, v in runs.items()}
            n_in = counts["evals"] if metric == "hallucination_rate" else counts["calls"]
            rows.append((metric, n_in, ref.height, res))
            w, q = res["workbench"], res["duckdb_sql"]
            print(f"  {metric}: agree (groups, n, value/lo/hi within {TOL:g}); workbench {w['first']:.2f} s first, "
                  f"{w['seconds']:.2f} s warm, {w['peak_kb'] / 1024:.0f} MB; sql {q['first']:.2f} s first, "
                  f"{q['seconds']:.2f} s warm, {q['peak_kb'] / 1024:.0f} MB (load {load()})", flush=True)
        if not rows:
            return 1

    mb = lambda kb: f"{kb / 1024:,.0f}"  # noqa: E731
    head = (f"{'metric':<19} {'rows in':>11} {'groups':>6} {'wb 1st':>7} {'sql 1st':>7} {'ratio':>6} {'wb s':>7} "
            f"{'sql s':>7} {'ratio':>6} {'wb MB':>6} {'sql MB':>6}" + (f" {'polars s':>8} {'pl MB':>6}" if a.polars else ""))
    print("\n" + head + "\n" + "-" * len(head))
    out = []
    for metric, n_in, groups, r in rows:
        w, s = r["workbench"], r["duckdb_sql"]
        line = (f"{metric:<19} {n_in:>11,} {groups:>6,} {w['first']:>7.2f} {s['first']:>7.2f} "
                f"{w['first'] / s['first']:>5.2f}x {w['seconds']:>7.2f} {s['seconds']:>7.2f} "
                f"{w['seconds'] / s['seconds']:>5.2f}x {mb(w['peak_kb']):>6} {mb(s['peak_kb']):>6}")
        if a.polars:
            line += f" {r['polars']['seconds']:>8.2f} {mb(r['polars']['peak_kb']):>6}"
        print(line)
        for kind, key in (("warm", "seconds"), ("1st call", "first")):
            out.append({"work": f"{metric} ({kind})", "rows": n_in, "wb_s": w[key], "wb_mb": w["peak_kb"] / 1024,
                        "alt": "hand-written DuckDB SQL", "alt_s": s[key], "alt_mb": s["peak_kb"] / 1024})
    tot = {k: sum(r[k]["seconds"] for *_, r in rows) for k in approaches}
    tot_first = {k: sum(r[k]["first"] for *_, r in rows) for k in approaches}
    print(f"{'total':<19} {'':>11} {'':>6} {tot_first['workbench']:>7.2f} {tot_first['duckdb_sql']:>7.2f} "
          f"{tot_first['workbench'] / tot_first['duckdb_sql']:>5.2f}x {tot['workbench']:>7.2f} "
          f"{tot['duckdb_sql']:>7.2f} {tot['workbench'] / tot['duckdb_sql']:>5.2f}x")
    bases = {k: max(r[k]["base_kb"] for *_, r in rows) for k in approaches}
    print(f"1st = the first call in a fresh process (the workbench's imports of Ibis and the metric modules, connect, "
          f"compile, DuckDB's cold buffer pool); s = the best of {a.repeat} warm run(s) in that process; each the "
          f"median of {a.rounds} interleaved processes.\nratio = workbench / SQL (below 1: the workbench is faster; "
          f"goals: warm <= 1.2x, 1st <= 1.5x). MB = peak RSS (VmHWM) of the process that ran that one metric; RSS "
          f"after the shared imports: workbench {mb(bases['workbench'])}, sql {mb(bases['duckdb_sql'])} MB. "
          f"Load average at the end: {load()}.")
    if a.json:
        import json

        a.json.write_text(json.dumps(out))
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
