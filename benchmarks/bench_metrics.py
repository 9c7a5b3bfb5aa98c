"""Benchmark a core metric set through the workbench against eager polars on Parquet and plain DuckDB SQL.

    .venv/bin/python benchmarks/bench_metrics.py [--scale 10] [--db FILE] [--calls 10000000] [--repeat 1]

The data is the demo database: built at ``--scale`` into a temporary directory (scale 10 is about 0.7M synthetic calls
plus ~28k real Azure trace calls), or an existing file given with ``--db`` (opened read-only; with ``--calls`` it is
copied first). ``--calls N`` makes the calls table larger than comfortable by replicating it inside DuckDB, whole
copies, until it holds at least N rows; each copy gets its ``call_id``, ``trace_id``, ``parent_id``, ``user_id`` and
``session_id`` suffixed with the copy number (so the copies are distinct calls by distinct users, at the same times).

Each metric is computed with ``by=("feature", "model"), period="day"`` three ways, each in its own spawned process so
that peak memory is per approach and per metric (``VmHWM`` from ``/proc/self/status`` at the end: the process's
high-water mark including the interpreter and imports; the imports' share, ``VmRSS`` before the work starts, is
printed below the table):

* **workbench**: ``workbench.metrics.compute(name, wb.connect(db, read_only=True), by=..., period="day")``, the Ibis
  expression executed by DuckDB, timed from connect to the tidy polars frame;
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
APPROACHES = ("workbench", "polars", "duckdb_sql")
TOL = 1e-9
_END_OF_TIME = "9999-12-31"
_MAX_TOKENS = 2**62


def proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"proc_status_kb: no {field} in /proc/self/status")


# ------------------------------------------------------------------------------------------------------ workbench


def run_workbench(metric: str, ctx: dict):
    import polars as pl

    import workbench as wb
    from workbench.metrics import compute

    db = wb.connect(ctx["db"], read_only=True)
    opts: dict = {"by": BY, "period": "day"}
    if metric == "dau_count":
        opts["activity"] = "calls"
    if metric == "hallucination_rate":
        opts.update(evaluator=ctx["evaluator"], version=ctx["version"], metric=ctx["eval_metric"])
    df = compute(metric, db, **opts)
    db.close()
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

    from workbench.metrics.latency import order_statistic_ranks

    calls = _pl_read(ctx, "calls", ["ts", *BY, "latency_ms"])
    g = (calls.filter(pl.col("latency_ms").is_not_null()).with_columns(_day())
         .group_by(*BY, "period_start")
         .agg(value=pl.col("latency_ms").quantile(0.95, interpolation="linear"), n=pl.len(),
              _sorted=pl.col("latency_ms").sort()))
    # distribution-free interval: the order statistics at the binomial ranks l and u (1-based; 0 / n+1 = unbounded)
    lo, hi = order_statistic_ranks(g["n"].to_numpy(), 0.95, 0.95)
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
    """Each price row with the range it covers: [effective_from, valid_to) x [min_input_tokens, max_input_tokens)."""
    import polars as pl

    p = prices.with_columns(pl.col("min_input_tokens").fill_null(0))
    p = p.sort("source").unique(["provider", "model", "effective_from", "min_input_tokens"], keep="first",
                                 maintain_order=True)
    versions = p.select("provider", "model", "effective_from").unique().sort("provider", "model", "effective_from")
    versions = versions.with_columns(pl.col("effective_from").shift(-1).over("provider", "model").alias("valid_to"))
    p = p.join(versions, on=["provider", "model", "effective_from"])
    p = p.sort("provider", "model", "effective_from", "min_input_tokens").with_columns(
        pl.col("min_input_tokens").shift(-1).over("provider", "model", "effective_from").alias("max_input_tokens"))
    end = pl.lit(_END_OF_TIME).str.to_datetime().cast(p.schema["effective_from"])
    return p.with_columns(
        pl.col("valid_to").fill_null(end),
        pl.col("max_input_tokens").fill_null(_MAX_TOKENS),
    )


def pl_cost_usd(ctx: dict):
    import polars as pl

    cols = ["ts", *BY, "provider", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cost_usd"]
    calls = _pl_read(ctx, "calls", list(dict.fromkeys(cols))).with_row_index("_row")
    prices = _pl_read(ctx, "prices", ["provider", "model", "effective_from", "min_input_tokens", "input_usd_per_mtok",
                                      "output_usd_per_mtok", "cache_read_usd_per_mtok", "cache_write_usd_per_mtok",
                                      "source"])
    p = _pl_price_table(prices)
    # a call without a provider is priced by the first provider (by name) that prices its model
    first = prices.group_by("model").agg(pl.col("provider").min().alias("_first"))
    c = calls.join(first, on="model", how="left").with_columns(
        pl.coalesce("provider", "_first").alias("_prov"), pl.col("input_tokens").fill_null(0).alias("_tok"))
    m = c.select("_row", "_prov", "model", "ts", "_tok").join(
        p.rename({"provider": "_prov"}), on=["_prov", "model"], how="inner"
    ).filter((pl.col("effective_from") <= pl.col("ts")) & (pl.col("ts") < pl.col("valid_to"))
             & (pl.col("min_input_tokens") <= pl.col("_tok")) & (pl.col("_tok") < pl.col("max_input_tokens")))
    c = c.join(m.select("_row", "effective_from", "input_usd_per_mtok", "output_usd_per_mtok",
                        "cache_read_usd_per_mtok", "cache_write_usd_per_mtok"), on="_row", how="left")
    it, ot = pl.col("input_tokens").fill_null(0), pl.col("output_tokens").fill_null(0)
    cr, cw = pl.col("cache_read_tokens").fill_null(0), pl.col("cache_write_tokens").fill_null(0)
    ip = pl.col("input_usd_per_mtok")
    computed = ((it - cr - cw) * ip.fill_null(0)
                + cr * pl.coalesce("cache_read_usd_per_mtok", ip).fill_null(0)
                + cw * pl.coalesce("cache_write_usd_per_mtok", ip).fill_null(0)
                + ot * pl.col("output_usd_per_mtok").fill_null(0)) / 1e6
    computed = pl.when(pl.col("effective_from").is_not_null()).then(computed)
    no_usage = pl.col("model").is_null() & ((it + ot) == 0) & pl.col("cost_usd").is_null()
    used = pl.coalesce(pl.col("cost_usd"), computed, pl.when(no_usage).then(pl.lit(0.0)))
    g = c.with_columns(_day(), used.alias("_used")).group_by(*BY, "period_start").agg(
        value=pl.col("_used").sum(), n=pl.col("_used").count())
    return g.with_columns(pl.when(pl.col("n") > 0).then(pl.col("value")).alias("value"),
                          pl.lit(None, pl.Float64).alias("lo"), pl.lit(None, pl.Float64).alias("hi"))


def pl_tpot_ms(ctx: dict):
    from statistics import NormalDist

    import polars as pl

    calls = _pl_read(ctx, "calls", ["ts", *BY, "latency_ms", "ttft_ms", "output_tokens"])
    v = (pl.col("latency_ms") - pl.col("ttft_ms")) / (pl.col("output_tokens") - 1).cast(pl.Float64)
    g = (calls.filter((pl.col("output_tokens") > 1) & pl.col("ttft_ms").is_not_null()
                      & pl.col("latency_ms").is_not_null())
         .with_columns(_day(), v.alias("_v")).group_by(*BY, "period_start")
         .agg(value=pl.col("_v").mean(), n=pl.len(), _sd=pl.col("_v").std(ddof=1)))
    half = NormalDist().inv_cdf(0.975) * pl.col("_sd") / pl.col("n").cast(pl.Float64).sqrt()
    return g.with_columns((pl.col("value") - half).alias("lo"), (pl.col("value") + half).alias("hi")).drop("_sd")


def pl_hallucination_rate(ctx: dict):
    import polars as pl

    e = _pl_read(ctx, "evals", ["call_id", "metric", "label", "evaluator", "evaluator_version", "repeat", "ts"])
    e = e.filter((pl.col("metric") == ctx["eval_metric"]) & (pl.col("evaluator") == ctx["evaluator"])
                 & (pl.col("repeat").fill_null(0) == 0) & (pl.col("evaluator_version") == ctx["version"]))
    a = _pl_read(ctx, "answers", ["call_id", "ts"]).rename({"ts": "_answer_ts"})
    c = _pl_read(ctx, "calls", ["call_id", "ts", *BY]).rename({"ts": "_call_ts"})
    j = e.rename({"ts": "_eval_ts"}).join(a, on="call_id", how="left").join(c, on="call_id", how="left")
    j = j.with_columns(pl.coalesce("_call_ts", "_answer_ts", "_eval_ts").alias("ts")).with_columns(_day())
    den = (pl.col("label") != "unscorable").fill_null(False)
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
    select * replace (coalesce(min_input_tokens, 0) as min_input_tokens) from prices
    qualify row_number() over (partition by provider, model, effective_from, coalesce(min_input_tokens, 0)
                               order by source) = 1),
versions as (
    select provider, model, effective_from,
           coalesce(lead(effective_from) over (partition by provider, model order by effective_from),
                    timestamp '{_END_OF_TIME}') as valid_to
    from (select distinct provider, model, effective_from from p0)),
p as (
    select p0.*, v.valid_to,
           coalesce(lead(min_input_tokens) over (partition by p0.provider, p0.model, p0.effective_from
                                                 order by min_input_tokens), {_MAX_TOKENS}) as max_input_tokens
    from p0 join versions v using (provider, model, effective_from)),
first_provider as (select model, min(provider) as provider from prices group by model),
c as (
    select calls.*, coalesce(calls.provider, f.provider) as match_provider, coalesce(input_tokens, 0) as tok
    from calls left join first_provider f on calls.model = f.model),
priced as (
    select c.*, p.effective_from as p_from,
        ((coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0) - coalesce(cache_write_tokens, 0))
            * coalesce(p.input_usd_per_mtok, 0)
         + coalesce(cache_read_tokens, 0) * coalesce(p.cache_read_usd_per_mtok, p.input_usd_per_mtok, 0)
         + coalesce(cache_write_tokens, 0) * coalesce(p.cache_write_usd_per_mtok, p.input_usd_per_mtok, 0)
         + coalesce(output_tokens, 0) * coalesce(p.output_usd_per_mtok, 0)) / 1e6 as computed
    from c left join p on c.match_provider = p.provider and c.model = p.model and p.effective_from <= c.ts
        and c.ts < p.valid_to and p.min_input_tokens <= c.tok and c.tok < p.max_input_tokens),
used as (
    select *, coalesce(cost_usd, case when p_from is not null then computed end,
                       case when model is null and coalesce(input_tokens, 0) + coalesce(output_tokens, 0) = 0
                                 and cost_usd is null then 0.0 end) as used
    from priced)
select feature, model, date_trunc('day', ts) as period_start, case when count(used) > 0 then sum(used) end as value,
       count(used) as n
from used group by all
"""

SQL = {
    "latency_p95_ms": """
        select feature, model, date_trunc('day', ts) as period_start, quantile_cont(latency_ms, 0.95) as value,
               count(*) as n
        from calls where latency_ms is not null group by all""",
    "error_rate": """
        select feature, model, date_trunc('day', ts) as period_start,
               avg(case when status = 'error' then 1 else 0 end) as value, count(*) as n
        from calls group by all""",
    "cost_usd": _SQL_PRICES,
    "tpot_ms": """
        select feature, model, date_trunc('day', ts) as period_start,
               avg((latency_ms - ttft_ms) / (output_tokens - 1)::double) as value, count(*) as n
        from calls where output_tokens > 1 and ttft_ms is not null and latency_ms is not null group by all""",
    "hallucination_rate": """
        with j as (
            select e.label, c.feature, c.model, coalesce(c.ts, a.ts, e.ts) as ts
            from evals e left join answers a on e.call_id = a.call_id left join calls c on e.call_id = c.call_id
            where e.metric = $metric and e.evaluator = $evaluator and coalesce(e."repeat", 0) = 0
              and e.evaluator_version = $version)
        select feature, model, date_trunc('day', ts) as period_start,
               sum(case when label = 'hallucinated' then 1 else 0 end) filter (where label <> 'unscorable')
                   / count(*) filter (where label <> 'unscorable') as value,
               count(*) filter (where label <> 'unscorable') as n
        from j group by all""",
    "dau_count": """
        with d as (
            select feature, model, date_trunc('day', ts) as period_start, count(distinct user_id) as users
            from calls where user_id is not null group by all),
        days as (select unnest(generate_series(min(period_start), max(period_start), interval 1 day)) as period_start
                 from d),
        grid as (select * from (select distinct feature, model from d) cross join days)
        select g.feature, g.model, g.period_start, coalesce(d.users, 0)::double as value, 1 as n
        from grid g left join d on g.feature is not distinct from d.feature and g.model is not distinct from d.model
            and g.period_start = d.period_start""",
}


def run_duckdb_sql(metric: str, ctx: dict):
    import duckdb
    import polars as pl

    con = duckdb.connect(ctx["db"], read_only=True)
    params = ({"metric": ctx["eval_metric"], "evaluator": ctx["evaluator"], "version": ctx["version"]}
              if metric == "hallucination_rate" else None)
    df = pl.from_arrow(con.execute(SQL[metric], params).fetch_arrow_table())
    con.close()
    return df.select(*BY, pl.col("period_start").cast(pl.Datetime("us")), pl.col("value").cast(pl.Float64),
                     pl.col("n").cast(pl.Int64))


# ------------------------------------------------------------------------------------------------------- driver


def _worker(approach: str, metric: str, ctx: dict, repeat: int) -> dict:
    """Runs in a fresh spawned process: import, note RSS, run once (the first call of a session), then ``repeat``
    more times and keep the fastest of those (the warm figure)."""
    warnings.simplefilter("ignore")  # UndefinedMetricWarning on n = 0 groups: expected, checked by the comparison
    # Import up front what each approach imports lazily (scipy for the intervals, the Ibis DuckDB backend, every
    # metric module), so the timing is the work and not a one-off import that a notebook pays once per session.
    import duckdb  # noqa: F401
    import polars  # noqa: F401
    import scipy.stats  # noqa: F401

    import workbench.metrics.latency  # noqa: F401
    import workbench.stats  # noqa: F401

    if approach == "workbench":
        import ibis
        import ibis.backends.duckdb  # noqa: F401

        from workbench.metrics import suite

        suite()
        ibis.duckdb.connect().disconnect()
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


def compare(metric: str, ref, other, name: str, *, intervals: bool) -> None:
    """Raise AssertionError unless ``other`` has the groups, n and values (and lo/hi) of ``ref``."""
    import polars as pl

    keys = [*BY, "period_start"]
    ref = ref.filter(pl.col("period_start").is_not_null() | (pl.col("n") > 0))
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
        base = con.execute("select count(*) from calls").fetchone()[0]
        copies = max(1, math.ceil(a.calls / base))
        t = time.perf_counter()
        if copies > 1:
            con.execute("create temp table calls_base as select * from calls")
            con.execute(f"""
                insert into calls select * exclude (_copy) replace (
                    call_id || '~' || _copy as call_id, trace_id || '~' || _copy as trace_id,
                    parent_id || '~' || _copy as parent_id, user_id || '~' || _copy as user_id,
                    session_id || '~' || _copy as session_id)
                from calls_base cross join range(1, {copies}) r(_copy)""")
            con.execute("drop table calls_base")
            con.execute("checkpoint")
        rows = con.execute("select count(*) from calls").fetchone()[0]
        con.close()
        how += (f"; calls replicated x{copies} ({base:,} -> {rows:,} rows) in {time.perf_counter() - t:.1f} s, "
                f"file {work.stat().st_size / 1e9:.2f} GB")
    return work, how


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=10.0, help="demo scale to build (default 10: ~0.7M calls)")
    ap.add_argument("--db", type=Path, default=None, help="use this demo database instead of building one")
    ap.add_argument("--calls", type=int, default=None, help="replicate calls to at least this many rows")
    ap.add_argument("--repeat", type=int, default=1,
                    help="warm runs per approach and metric after the first, fastest kept (default 1)")
    ap.add_argument("--metrics", nargs="+", default=list(METRICS), choices=METRICS)
    a = ap.parse_args(argv)
    if a.scale <= 0 or a.repeat < 1 or (a.calls is not None and a.calls < 1):
        ap.error("--scale, --repeat and --calls must be positive")
    if a.db is not None and not a.db.exists():
        ap.error(f"--db: no file {a.db}")

    import duckdb
    import polars as pl

    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    print(f"bench_metrics: {os.cpu_count()} cores, load average {load}, duckdb {duckdb.__version__}, "
          f"polars {pl.__version__}; by={BY}, period=day")
    with tempfile.TemporaryDirectory(prefix="wb-bench-metrics-") as tmp:
        tmp = Path(tmp)
        db, how = prepare(a, tmp)
        print(f"data: {how}")
        con = duckdb.connect(str(db), read_only=True)
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("calls", "evals", "answers", "prices")}
        ctx: dict = {"db": str(db), "parquet": {}}
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
        t = time.perf_counter()
        for table in ("calls", "evals", "answers", "prices"):
            path = tmp / f"{table}.parquet"
            con.execute(f"copy {table} to '{path}' (format parquet)")
            ctx["parquet"][table] = str(path)
        export_s = time.perf_counter() - t
        con.close()
        size = sum(Path(p).stat().st_size for p in ctx["parquet"].values())
        print(f"parquet export for the polars approach (all columns, one-off, not in the table): {export_s:.1f} s, "
              f"{size / 1e6:.0f} MB")

        rows, failed = [], []
        for metric in metrics:
            try:
                res = {ap_: measure(ap_, metric, ctx, a.repeat) for ap_ in APPROACHES}
                compare(metric, res["workbench"]["df"], res["polars"]["df"], "polars", intervals=True)
                compare(metric, res["workbench"]["df"].select(*BY, "period_start", "value", "n"),
                        res["duckdb_sql"]["df"], "duckdb sql", intervals=False)
            except Exception as exc:  # keep the other metrics' figures; the exit status says it failed
                print(f"  {metric}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                failed.append(metric)
                continue
            n_in = counts["evals"] if metric == "hallucination_rate" else counts["calls"]
            rows.append((metric, n_in, res["workbench"]["df"].height, res))
            w, p, q = res["workbench"], res["polars"], res["duckdb_sql"]
            print(f"  {metric}: agree (groups, n, value/lo/hi within {TOL:g}); workbench {w['first']:.2f} s first, "
                  f"{w['seconds']:.2f} s warm, {w['peak_kb'] / 1024:.0f} MB; polars {p['seconds']:.2f} s, "
                  f"{p['peak_kb'] / 1024:.0f} MB; sql {q['seconds']:.2f} s, {q['peak_kb'] / 1024:.0f} MB", flush=True)
        if not rows:
            return 1

    mb = lambda kb: f"{kb / 1024:,.0f}"  # noqa: E731
    head = (f"{'metric':<19} {'rows in':>11} {'groups':>6} {'wb 1st':>7} {'wb s':>7} {'polars s':>8} {'(read)':>7} "
            f"{'sql s':>7} {'ratio':>6} {'wb MB':>6} {'polars MB':>9} {'sql MB':>6}")
    print("\n" + head + "\n" + "-" * len(head))
    for metric, n_in, groups, r in rows:
        w, p, s = r["workbench"], r["polars"], r["duckdb_sql"]
        print(f"{metric:<19} {n_in:>11,} {groups:>6,} {w['first']:>7.2f} {w['seconds']:>7.2f} {p['seconds']:>8.2f} "
              f"{p['read_s']:>7.2f} {s['seconds']:>7.2f} {p['seconds'] / w['seconds']:>5.2f}x {mb(w['peak_kb']):>6} "
              f"{mb(p['peak_kb']):>9} {mb(s['peak_kb']):>6}")
    tot = {k: sum(r[k]["seconds"] for *_, r in rows) for k in APPROACHES}
    tot_first = sum(r["workbench"]["first"] for *_, r in rows)
    print(f"{'total':<19} {'':>11} {'':>6} {tot_first:>7.2f} {tot['workbench']:>7.2f} {tot['polars']:>8.2f} {'':>7} "
          f"{tot['duckdb_sql']:>7.2f} {tot['polars'] / tot['workbench']:>5.2f}x")
    bases = {k: max(r[k]["base_kb"] for *_, r in rows) for k in APPROACHES}
    print(f"wb 1st = the first call in a fresh process (Ibis/sqlglot compile paths and DuckDB's cold buffer pool: paid "
          f"once per session); the other seconds are the best of {a.repeat} warm run(s) in the same process.\n"
          f"ratio = polars s / wb s (above 1: the workbench is faster); (read) = polars read_parquet share; rows in = "
          f"rows of the table scanned (evals for hallucination_rate).\n"
          f"MB = peak RSS (VmHWM) of the process that ran that one metric, imports included; RSS after imports, "
          f"before the work: workbench {mb(bases['workbench'])}, polars {mb(bases['polars'])}, "
          f"sql {mb(bases['duckdb_sql'])} MB.")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
