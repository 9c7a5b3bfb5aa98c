"""The foundation: schema, connection and migrations, the shared metric machinery, config."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import workbench as wb
from workbench import metrics
from workbench.config import ConfigError, load_config
from workbench.db import migrate
from workbench.errors import ParameterError
from workbench.schema import SCHEMA_VERSION, TABLES


def _calls(db, rows):
    db.duckdb.executemany("insert into calls (call_id, ts, feature, model, status, latency_ms) values (?, ?, ?, ?, ?, ?)", rows)


def test_every_canonical_table_is_created_with_its_declared_columns(tmp_path):
    db = wb.connect(tmp_path / "w.duckdb")
    for name, table in TABLES.items():
        cols = db.table(name).columns
        assert tuple(cols[: len(table.names)]) == table.names
        assert ("ingest_run_id" in cols) == table.lineage
    assert db.schema_version == SCHEMA_VERSION


def test_migrations_apply_once_and_reopen_keeps_data(tmp_path):
    path = tmp_path / "w.duckdb"
    db = wb.connect(path)
    _calls(db, [("a", dt.datetime(2026, 1, 1), "chat", "m", "ok", 10.0)])
    db.close()
    db = wb.connect(path)
    assert db.calls.count().execute() == 1
    assert db.sql("select count(*) as n from schema_version")["n"][0] == SCHEMA_VERSION
    assert migrate(db.duckdb) == SCHEMA_VERSION
    assert db.sql("select count(*) as n from schema_version")["n"][0] == SCHEMA_VERSION


def compute_ok(db) -> bool:
    """A metric runs on ``db`` (it has no calls: the metric says so, and gives its null row)."""
    from workbench.metrics import compute
    from workbench.metrics.core import UndefinedMetricWarning

    with pytest.warns(UndefinedMetricWarning, match="no data"):
        return compute("error_rate", db).height == 1


def test_a_version_1_database_gains_the_mapping_hash_of_its_runs(tmp_path):
    # version 1 had no ingest_runs.mapping_hash: made here as that version left it, then opened
    path = tmp_path / "w.duckdb"
    db = wb.connect(path)
    db.duckdb.execute("insert into ingest_runs (run_id, source_path, format) values ('r1', 'a.csv', 'csv')")
    for c in ("mapping_hash", "bytes", "base_run_id"):
        db.duckdb.execute(f"alter table ingest_runs drop column {c}")
    db.duckdb.execute("alter table prices drop column time_of_day_from_s")
    db.duckdb.execute("delete from schema_version where version > 1")
    db.close()
    # a reader needs nothing version 2 added (only ingest reads mapping_hash): a report or a metric run before any
    # writer has opened the file since the upgrade reads it as it is, and migrates nothing
    with wb.connect(path, read_only=True) as ro:
        assert ro.schema_version == 1
        assert ro.ingest_runs.select("source_path", "format").to_polars().rows() == [("a.csv", "csv")]
        assert compute_ok(ro)
    db = wb.connect(path)
    try:
        assert db.schema_version == SCHEMA_VERSION == 4  # a writer migrates it
        assert db.duckdb.execute("select run_id, format, mapping_hash, bytes, base_run_id from ingest_runs"
                                 ).fetchall() == [("r1", "csv", None, None, None)]
        assert db.ingest_runs.columns == TABLES["ingest_runs"].names
        assert set(db.prices.columns) == {*TABLES["prices"].names, "ingest_run_id"}
        # a migration readers do need is still refused read-only (version 1 creates the tables)
        db.duckdb.execute("delete from schema_version")
    finally:
        db.close()
    with pytest.raises(wb.errors.DatabaseError, match="schema version 0 is older"):
        wb.connect(path, read_only=True)


def test_newer_database_is_refused(tmp_path):
    db = wb.connect(tmp_path / "w.duckdb")
    db.duckdb.execute("insert into schema_version values (?, now())", [SCHEMA_VERSION + 1])
    with pytest.raises(RuntimeError, match="newer than this workbench"):
        migrate(db.duckdb)


def test_read_only_connect_of_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.duckdb"):
        wb.connect(tmp_path / "nope.duckdb", read_only=True)


def test_unknown_table_names_the_known_ones():
    db = wb.connect(":memory:")
    with pytest.raises(KeyError, match="calls"):
        db.table("call")


def test_every_column_is_documented():
    for table in TABLES.values():
        assert table.doc
        for c in table.columns:
            assert len(c.doc) > 3, (table.name, c.name)
        assert set(table.key) <= set(table.names)


def test_partial_marks_the_periods_the_window_cuts():
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) select 'c' || i, timestamp '2026-01-01' + "
                      "to_days(i), 'chat', if(i % 4 = 0, 'error', 'ok') from range(14) t(i)")  # Jan 1 (a Thursday)..14
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # weeks of Dec 29 (from Thursday Jan 1 on), Jan 5 (whole), Jan 12 (to Wednesday Jan 14 included)
        w = wb.compute("error_rate", db, period="week", start="2026-01-01", end="2026-01-15")
        assert w.select("period_start", "n", "partial").rows() == [
            (dt.datetime(2025, 12, 29), 4, True), (dt.datetime(2026, 1, 5), 7, False), (dt.datetime(2026, 1, 12), 3, True)]
        # a window of whole weeks: none; at "all" the one period is the window itself
        assert wb.compute("error_rate", db, period="week", start="2025-12-29", end="2026-01-19")["partial"].to_list() \
            == [False, False, False]
        assert wb.compute("error_rate", db, period="all", start="2026-01-01")["partial"].to_list() == [False]
        # an open side: whether the data covers its first (last) period whole is not known
        assert wb.compute("error_rate", db, period="week", start="2026-01-05")["partial"].to_list() == [False, None]
        assert wb.compute("error_rate", db, period="week")["partial"].to_list() == [None, False, None]
        assert wb.compute("error_rate", db, period="day", end="2026-01-03")["partial"].to_list() == [None, False]


def test_partial_marks_the_period_the_clock_has_not_finished():
    """A report of the current month (or week) has a window ending after the clock: its data stop today, and the
    month read as whole (partial False) showed its few days as a drop against the whole months before it."""
    from workbench.schema import utc_now

    now = utc_now()
    this_month = dt.datetime(now.year, now.month, 1)
    last_month = dt.datetime(now.year - (now.month == 1), (now.month - 2) % 12 + 1, 1)
    next_month = dt.datetime(now.year + (now.month == 12), now.month % 12 + 1, 1)
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) values (?, ?, 'chat', 'ok'), (?, ?, 'chat', 'ok')",
                      ["a", last_month, "b", this_month])  # the first instant of this month is before the clock
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = wb.compute("error_rate", db, period="month", start=last_month, end=next_month)
        assert got.select("period_start", "n", "partial").rows() == [(last_month, 1, False), (this_month, 1, True)]
        # the same window as one period: it reaches past the clock, so it is not whole either
        assert wb.compute("error_rate", db, period="all", start=last_month, end=next_month)["partial"].to_list() == [True]
        # a window that ends before the clock is unchanged
        assert wb.compute("error_rate", db, period="month", start=last_month,
                          end=this_month)["partial"].to_list() == [False]
        # with no end the clock still ends the data: the month it is in is partial, not unknown (the month before
        # is the data's first: unknown)
        assert wb.compute("error_rate", db, period="month")["partial"].to_list() == [None, True]


def test_scope_filters_window_and_where():
    db = wb.connect(":memory:")
    _calls(db, [
        ("a", dt.datetime(2026, 1, 1, 10), "chat", "m1", "ok", 10.0),
        ("b", dt.datetime(2026, 1, 2, 10), "chat", "m2", "ok", 20.0),
        ("c", dt.datetime(2026, 1, 3, 10), "code", "m1", "ok", 30.0),
    ])
    t = metrics.scope(db.calls, start="2026-01-02", end="2026-01-04")
    assert sorted(t.call_id.to_pyarrow().to_pylist()) == ["b", "c"]
    t = metrics.scope(db.calls, where=["model=m1"])
    assert sorted(t.call_id.to_pyarrow().to_pylist()) == ["a", "c"]
    t = metrics.scope(db.calls, where={"latency_ms": "20.0"})  # string from the CLI compared as text
    assert t.call_id.to_pyarrow().to_pylist() == ["b"]
    t = metrics.scope(db.calls, where=["model=m1,m2", "feature=chat"])
    assert sorted(t.call_id.to_pyarrow().to_pylist()) == ["a", "b"]
    with pytest.raises(KeyError, match="no column 'nope'"):
        metrics.scope(db.calls, where=["nope=1"])
    with pytest.raises(ValueError, match="column=value"):
        metrics.scope(db.calls, where=["feature"])


def test_where_on_a_timestamp_reads_the_text_as_an_instant_and_refuses_what_is_none():
    # ts was compared as its text ("2026-01-02 10:00:00"): "ts=yesterday" or an ISO "T" or a zone selected nothing,
    # and the metric said n = 0 as if no call had been made
    db = wb.connect(":memory:")
    _calls(db, [
        ("a", dt.datetime(2026, 1, 1, 10), "chat", "m1", "ok", 10.0),
        ("b", dt.datetime(2026, 1, 2, 10), "chat", "m2", "ok", 20.0),
    ])
    for text in ("2026-01-02T10:00:00", "2026-01-02 12:00:00+02:00", "2026-01-02T10:00:00Z"):
        t = metrics.scope(db.calls, where=[f"ts={text}"])
        assert t.call_id.to_pyarrow().to_pylist() == ["b"], text
    t = metrics.scope(db.calls, where=["ts=2026-01-01T10:00,2026-01-02T10:00"])
    assert sorted(t.call_id.to_pyarrow().to_pylist()) == ["a", "b"]
    for bad in ("yesterday", "1767348000"):
        with pytest.raises(ParameterError, match=rf"where: ts is a timestamp column: expected an ISO date or "
                                                 rf"timestamp, got '{bad}'"):
            metrics.compute("error_rate", db, where=[f"ts={bad}"])


def test_the_warning_for_groups_without_data_names_one_of_them():
    # "3 group-period(s) of the selection have no data" (in a report's Data notes, on the CLI) left the reader to
    # find which: the warning names the first, with its period
    from workbench.metrics.core import tidy

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, model, status) values "
                      "('a', '2026-01-01 10:00', 'chat', 'm', 'ok'), ('b', '2026-01-02 10:00', 'chat', 'm', 'ok'), "
                      "('c', '2026-01-01 11:00', 'search', 'm', 'error')")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        metrics.compute("error_rate", db, by=("feature", "model"), period="day")
    said = [str(w.message) for w in got if w.category is wb.UndefinedMetricWarning]
    assert said == ["error_rate: 1 group-period(s) of the selection have no data; their value is null (n = 0), "
                    "e.g. feature='search', model='m' in the period of 2026-01-02"]
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        tidy(pl.DataFrame({"feature": ["a", "b"], "period_start": [None, None], "value": [0.5, None], "n": [4, 0]}),
             keys=["feature"], metric="hallucination_rate")
    assert [str(w.message) for w in got] == [
        "hallucination_rate: some groups have n = 0; their value is null, e.g. feature='b'"]


def test_proportion_counts_and_wilson_interval_by_period():
    db = wb.connect(":memory:")
    rows = [(f"c{i}", dt.datetime(2026, 1, 1 + i // 10, 12), "chat", "m", "error" if i % 10 < (8 if i < 10 else 0) else "ok", 1.0)
            for i in range(20)]
    _calls(db, rows)
    t = db.calls
    df = metrics.proportion(t, t.status == "error", by=["feature"], period="day", metric="error_rate")
    assert df.columns[:8] == ["feature", "period_start", "metric", "value", "n", "lo", "hi", "partial"]
    d1, d2 = df.rows(named=True)
    assert d1["period_start"] == dt.datetime(2026, 1, 1) and d1["value"] == 0.8 and d1["n"] == 10
    # published golden: Wilson 8/10 = [0.490162, 0.943318]
    assert (round(d1["lo"], 6), round(d1["hi"], 6)) == (0.490162, 0.943318)
    assert d2["value"] == 0.0 and d2["n"] == 10 and d2["lo"] == 0.0


def test_proportion_order_of_rows_does_not_matter():
    db1, db2 = wb.connect(":memory:"), wb.connect(":memory:")
    rows = [(f"c{i}", dt.datetime(2026, 1, 1 + i % 3), "f" + str(i % 2), "m", "error" if i % 4 == 0 else "ok", 1.0) for i in range(40)]
    _calls(db1, rows)
    _calls(db2, rows[::-1])
    a = metrics.proportion(db1.calls, db1.calls.status == "error", by=["feature"], period="day", metric="error_rate")
    b = metrics.proportion(db2.calls, db2.calls.status == "error", by=["feature"], period="day", metric="error_rate")
    assert a.equals(b)


def test_empty_selection_gives_null_value_n_zero_and_a_warning():
    db = wb.connect(":memory:")
    _calls(db, [("a", dt.datetime(2026, 1, 1), "chat", "m", "ok", 1.0)])
    t = metrics.scope(db.calls, where={"feature": "none"})
    with pytest.warns(metrics.UndefinedMetricWarning):
        df = metrics.proportion(t, t.status == "error", by=["feature"], period="day", metric="error_rate")
    assert df.height == 1 and df["n"][0] == 0 and df["value"][0] is None


def test_tidy_nulls_groups_with_n_zero():
    df = pl.DataFrame({"feature": ["a", "b"], "period_start": [None, None], "value": [0.0, 2.0], "n": [0, 4]})
    with pytest.warns(metrics.UndefinedMetricWarning):
        out = metrics.tidy(df, keys=["feature"], metric="x_count")
    assert out["value"].to_list() == [None, 2.0]


def test_period_all_uses_start_as_window_start():
    db = wb.connect(":memory:")
    _calls(db, [("a", dt.datetime(2026, 1, 5), "chat", "m", "ok", 1.0)])
    df = metrics.proportion(db.calls, db.calls.status == "ok", by=["feature"], period="all", metric="ok_rate", start="2026-01-01")
    assert df["period_start"][0] == dt.datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="period"):
        metrics.with_period(db.calls, "fortnight")


def test_check_by_names_function_and_columns():
    db = wb.connect(":memory:")
    with pytest.raises(KeyError, match="error_rate: cannot group by \\['team'\\]"):
        metrics.check_by(db.calls, ["team"], fn="error_rate")


def test_compute_unknown_metric_lists_known():
    with pytest.raises(KeyError, match="no metric 'nope'"):
        metrics.compute("nope", wb.connect(":memory:"))


def test_config_missing_named_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "workbench.toml"
    bad.write_text("[slo\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    bad.write_text("[budget.chat]\nmonthly_usd = 'lots'\n")
    cfg = load_config(bad)
    with pytest.raises(ConfigError, match=r"\[budget.chat\]: monthly_usd must be a number"):
        cfg.number(cfg.section("budget")["chat"], "monthly_usd", "budget.chat")


def test_import_is_light():
    """``import workbench`` and the CLI module must not pull in the heavy libraries (fast ``workbench --help``)."""
    import subprocess
    import sys

    code = "import sys, workbench, workbench.cli; print(json.dumps(sorted(m for m in ('polars','ibis','duckdb','pyarrow','scipy','altair') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def _percentile_by_full_ranking(t, value, *, q, keys, period, time, start, metric, confidence, extra=None):
    """The reference: percentile_frame as it was before the band rewrite, ranking every row of a group by a window."""
    import ibis

    from workbench.metrics.core import tidy, with_period
    from workbench.stats import quantile_interval_ranks

    t = t.mutate(_v=value.cast("float64"))
    t = with_period(t.filter(t._v.notnull()), period, time=time, start=start)
    gk = [*keys, "period_start"]
    groups = t.group_by(gk).aggregate(_n=t.count()).to_polars()
    lo_rank, hi_rank = quantile_interval_ranks(groups["_n"].to_numpy(), q, confidence)
    groups = groups.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_g"), pl.Series("_l", lo_rank),
                                 pl.Series("_u", hi_rank))
    schema = ibis.schema({**{k: t.schema()[k] for k in gk}, "_g": "int64", "_l": "int64", "_u": "int64"})
    lut = ibis.memtable(groups.select(*gk, "_g", "_l", "_u"), schema=schema)
    j = t.join(lut, [t[k].identical_to(lut[k]) for k in gk]).select("_v", "_g", "_l", "_u")
    j = j.mutate(_r=ibis.row_number().over(group_by=j._g, order_by=j._v) + 1)
    aggs = dict(value=j._v.quantile(q), n=j.count(), lo=j._v.max(where=j._r == j._l), hi=j._v.max(where=j._r == j._u))
    for name, fn in (extra or {}).items():
        aggs[name] = fn(j._v)
    df = j.group_by("_g").aggregate(**aggs).to_polars()
    df = groups.select(*gk, "_g").join(df, on="_g", how="inner").drop("_g")
    return tidy(df, keys=keys, metric=metric)


@pytest.fixture(params=[True, False], ids=["holistic", "bounded"])
def quantile_form(request, monkeypatch):
    """Both ways of finding the quantiles: exact holistic ones, and approximate ones with a band of exact values."""
    from workbench.metrics import core

    monkeypatch.setattr(core, "HOLISTIC_QUANTILES", request.param)
    return request.param


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 0.05])
def test_percentile_frame_band_equals_ranking_every_row(q, quantile_form):
    # Groups from 1 to 20,000 rows, heavy ties (integers from a small range), a null feature and a null model as
    # groups of their own, two periods: the band's rows and ranks must give exactly the order statistics of a full
    # ranking, and the same value (quantile_cont) to the last bit.
    import numpy as np

    from workbench.metrics.core import percentile_frame

    rng = np.random.default_rng(12)
    db = wb.connect(":memory:")
    sizes = [1, 2, 3, 7, 19, 20, 40, 99, 370, 1000, 3001, 20000]
    frames = []
    for i, size in enumerate(sizes):
        tie = i % 3 == 0
        v = rng.integers(0, 50, size).astype(float) if tie else rng.lognormal(6, 1.2, size)
        frames.append(pl.DataFrame({
            "call_id": [f"g{i}-{j}" for j in range(size)],
            "ts": [dt.datetime(2026, 1, 1 + j % 2, 10) for j in range(size)],
            "feature": None if i == 4 else f"f{i % 4}", "model": None if i == 5 else f"m{i}",
            "status": "ok", "latency_ms": v}))
    df = pl.concat(frames, how="diagonal_relaxed")
    db.duckdb.register("_rows", df.to_arrow())
    db.duckdb.execute("insert into calls (call_id, ts, feature, model, status, latency_ms) "
                      "select call_id, ts, feature, model, status, latency_ms from _rows")
    t = db.calls
    for period in ("day", "all"):
        kw = dict(q=q, keys=["feature", "model"], period=period, time="ts", start=None, metric="x", confidence=0.95,
                  extra={"mean": lambda c: c.mean()})
        new = percentile_frame(t, t.latency_ms, **kw)
        old = _percentile_by_full_ranking(t, t.latency_ms, **kw)
        assert new.height == old.height == (len(sizes) * (2 if period == "day" else 1) - (1 if period == "day" else 0))
        # value, n, lo and hi to the last bit; the extra mean is a float sum whose order differs (1e-12)
        assert new.drop("mean").equals(old.drop("mean")), (new, old)
        assert (new["mean"] - old["mean"]).abs().max() <= 1e-12 * old["mean"].abs().max()
        assert new["lo"].null_count() < new.height and new["hi"].null_count() < new.height


@pytest.mark.parametrize("period", ["day", "week", "all"])
def test_percentile_frame_complete_equals_the_frame_completed_after_in_one_scan_less(period, quantile_form, queries):
    # Groups with values, a group whose calls have no latency at all, a day with calls but none with a latency, a
    # NaN latency, a null feature, and a window wider than the data: complete=True must give, row for row, the
    # frame percentile_frame gives with complete_grid run after it, without the second scan for the groups.
    from workbench.metrics import core

    db = wb.connect(":memory:")
    rows = [("a1", "2026-01-05 10:00", "chat", 100.0), ("a2", "2026-01-05 11:00", "chat", 300.0),
            ("a3", "2026-01-07 10:00", "chat", None), ("a4", "2026-01-08 10:00", "chat", 250.0),
            ("a5", "2026-01-08 12:00", "chat", float("nan")), ("b1", "2026-01-05 10:00", "search", None),
            ("b2", "2026-01-09 10:00", "search", None), ("c1", "2026-01-06 09:00", None, 40.0),
            ("c2", "2026-01-06 09:30", None, 60.0)]
    for call_id, ts, feature, latency in rows:
        db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, ?, 'ok', ?)",
                          [call_id, ts, feature, latency])
    t = db.calls
    kw = dict(q=0.5, keys=["feature"], period=period, time="ts", start="2026-01-04", metric="x", confidence=0.95,
              extra={"mean": lambda c: c.mean()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = core.complete_grid(core.percentile_frame(t, t.latency_ms, **kw), t, keys=["feature"],
                                    period=period, start="2026-01-04", end="2026-01-12", metric="x")
        queries.clear()
        after = core.percentile_frame(t, t.latency_ms, **kw, end="2026-01-12", complete=True)
    assert_frame_equal(after, before)
    assert set(after["feature"].to_list()) == {"chat", "search", None}
    assert after.filter(pl.col("feature") == "search")["n"].to_list() == [0] * after.filter(
        pl.col("feature") == "search").height
    # the sizes with the groups, then the order statistics: no distinct scan of the selection
    assert len(queries) == 2


def test_the_band_query_is_built_once_per_shape_and_reads_each_calls_thresholds(monkeypatch, quantile_form):
    # the join of the rows to the per-group thresholds is built once (15 ms of Ibis a call) over a placeholder table;
    # each call loads its own thresholds under that name, and nothing is left behind
    from workbench.metrics import core

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) select 'c' || i, '2026-01-01', "
                      "case when i % 3 = 0 then 'a' else 'b' end, 'ok', (i * 7919) % 1000 from range(1, 3001) r(i)")
    t = db.calls
    kw = dict(q=0.9, keys=["feature"], period="all", time="ts", start=None, metric="x", confidence=0.95)
    seen = []
    real = core.to_polars
    monkeypatch.setattr(core, "to_polars", lambda e, **k: seen.append((e, k.get("tables"))) or real(e, **k))
    first = core.percentile_frame(t, t.latency_ms, **kw)
    second = core.percentile_frame(t, t.latency_ms, **kw)
    banded = [(e, tables) for e, tables in seen if tables]
    assert len(banded) == 2 and banded[0][0] is banded[1][0]  # the same expression, built once
    assert first.equals(second) and first.equals(_percentile_by_full_ranking(t, t.latency_ms, **kw))
    # other data, same shape: the same expression, the new thresholds, the new order statistics
    db.duckdb.execute("update calls set latency_ms = latency_ms * 3 + 1")
    third = core.percentile_frame(t, t.latency_ms, **kw)
    assert third.equals(_percentile_by_full_ranking(t, t.latency_ms, **kw)) and not third.equals(first)
    left = db.duckdb.execute("select count(*) from duckdb_tables() where table_name = '_wb_thresholds'").fetchone()
    assert left == (0,)


def test_a_band_query_built_on_one_connection_is_not_run_on_another(quantile_form, monkeypatch):
    # Ibis' backends compare equal by the database they open (two in-memory databases are equal), so the same
    # percentile on two connections is the same query shape: each must still read its own rows (bands without a
    # lower bound, so that no floor from the data tells the two queries apart)
    from workbench.metrics import core

    real = core._band_thresholds
    monkeypatch.setattr(core, "_band_thresholds", lambda *a: (real(*a)[0] * float("nan"), real(*a)[1]))

    dbs = [wb.connect(":memory:") for _ in range(2)]
    for k, db in enumerate(dbs):
        db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) select 'c' || i, '2026-01-01', "
                          f"'a', 'ok', (i * 7919) % 1000 + {1000 * k} from range(1, 3001) r(i)")
    kw = dict(q=0.9, keys=["feature"], period="all", time="ts", start=None, metric="x", confidence=0.95)
    for _ in range(2):
        for db in dbs:
            t = db.calls
            assert core.percentile_frame(t, t.latency_ms, **kw).equals(
                _percentile_by_full_ranking(t, t.latency_ms, **kw))


@pytest.mark.parametrize("q", [0.5, 0.95, 0.05])
def test_percentile_frame_large_groups_only_skip_the_rows_below_every_band(q, monkeypatch):
    # Every group large enough for a lower bound: the rows under the lowest bound are not joined at all, and each
    # group's rows below its band are counted from its size. Groups of different levels (the lowest bound is far
    # below the others' bands), ties and a NaN; the same order statistics as ranking every row.
    import numpy as np

    from workbench.metrics import core

    monkeypatch.setattr(core, "HOLISTIC_QUANTILES", False)
    seen = []
    monkeypatch.setattr(core, "_band_thresholds", lambda *a, _f=core._band_thresholds: seen.append(_f(*a)) or seen[-1])
    rng = np.random.default_rng(3)
    frames = []
    for i, (size, level) in enumerate([(9000, 1.0), (12000, 100.0), (30000, 5.0)]):
        v = np.round(rng.lognormal(0, 0.5, size) * level, 1 if i == 1 else 3)
        frames.append(pl.DataFrame({"call_id": [f"g{i}-{j}" for j in range(size)], "ts": dt.datetime(2026, 1, 1),
                                    "feature": f"f{i}", "status": "ok", "latency_ms": v}))
    db = wb.connect(":memory:")
    db.duckdb.register("_rows", pl.concat(frames).to_arrow())
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) select * from _rows")
    db.duckdb.execute("update calls set latency_ms = 'nan'::double where call_id = 'g2-7'")
    t = db.calls
    kw = dict(q=q, keys=["feature"], period="all", time="ts", start=None, metric="x", confidence=0.95)
    new = core.percentile_frame(t, t.latency_ms, **kw)
    assert not np.isnan(seen[-1][0]).any()  # a lower bound for every group: the floor applies
    assert new.equals(_percentile_by_full_ranking(t, t.latency_ms, **kw))


def test_percentile_frame_band_nan_threshold_ranks_the_group_whole(quantile_form):
    # -inf then +inf values make the grid quantile at 0.935 NaN (-inf + d (inf - -inf) in the interpolation): no row
    # compares >= NaN, so that group is ranked whole instead of by a band
    from workbench.metrics.core import percentile_frame

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) select 'c' || i, '2026-01-01', "
                      "'chat', 'ok', case when i > 1870 then 'inf'::double else '-inf'::double end "
                      "from range(1, 2001) r(i)")
    t = db.calls
    kw = dict(q=0.95, keys=["feature"], period="all", time="ts", start=None, metric="x", confidence=0.95)
    new = percentile_frame(t, t.latency_ms, **kw)
    assert new.equals(_percentile_by_full_ranking(t, t.latency_ms, **kw))
    assert new.select("value", "n", "lo", "hi").rows() == [(float("inf"), 2000, float("inf"), float("inf"))]


@pytest.mark.parametrize("side", ["lower", "upper", "both"])
def test_percentile_frame_band_that_misses_a_rank_is_detected_and_redone(monkeypatch, quantile_form, side):
    # thresholds too high (the quantile itself, above the lower rank): the band misses rank l, which the check sees
    from workbench.metrics import core

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) select 'c' || i, '2026-01-01', "
                      "case when i % 3 = 0 then 'a' else 'b' end, 'ok', (i * 7919) % 1000 from range(1, 3001) r(i)")
    t = db.calls
    kw = dict(q=0.9, keys=["feature"], period="all", time="ts", start=None, metric="x", confidence=0.95)
    # a band above every row (lower bound too high), below every row (upper bound too low), or both
    nan = float("nan")
    bounds = {"lower": lambda aq: (aq[:, -1] + 1e6, aq[:, -1] * nan), "upper": lambda aq: (aq[:, -1] * nan, aq[:, 0] - 1e6),
              "both": lambda aq: (aq[:, -1] + 1e6, aq[:, -1] + 2e6)}[side]
    monkeypatch.setattr(core, "_band_thresholds", lambda grid, aq, n, first, last: bounds(aq))
    heights = []
    real = core.to_polars
    monkeypatch.setattr(core, "to_polars", lambda e, **kw: heights.append(real(e, **kw).height) or real(e, **kw))
    new = core.percentile_frame(t, t.latency_ms, **kw)
    # ranked whole in SQL, but only the rows between the wanted ranks come back (the interval: tens of the 3,000)
    assert max(heights) < 200, heights
    monkeypatch.setattr(core, "to_polars", real)
    assert new.equals(_percentile_by_full_ranking(t, t.latency_ms, **kw))
    assert new["lo"].null_count() == 0


def test_a_first_metric_call_does_not_import_pandas():
    """DuckDB's Python client imports pandas (0.28 s) the first time a query is given parameters: the metrics' own
    queries inline their values instead, so a fresh process computing tpot_ms or dau_count never imports it."""
    import subprocess
    import sys

    code = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "import workbench as wb\n"
        "from workbench.metrics import compute\n"
        "db = wb.connect(':memory:')\n"
        "db.duckdb.execute(\"insert into calls (call_id, ts, feature, status, latency_ms, ttft_ms, output_tokens, "
        "user_id) values ('a', '2026-01-01', 'chat', 'ok', 580, 350, 5, 'u1')\")\n"
        "compute('tpot_ms', db); compute('dau_count', db, activity='calls')\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_a_first_percentile_or_rate_call_imports_neither_pandas_nor_scipy_stats():
    """A fresh process's first latency_p95_ms loaded its per-group thresholds as an Arrow view, whose scan in DuckDB
    imports pyarrow.dataset and with it pandas (0.2-0.3 s), and took its binomial ranks from scipy.stats (0.6 s):
    the thresholds are now a temporary table written from SQL text and the ranks come from scipy.special. error_rate
    imports no scipy at all."""
    import subprocess
    import sys

    code = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "import workbench as wb\n"
        "from workbench.metrics import compute\n"
        "db = wb.connect(':memory:')\n"
        "db.duckdb.execute(\"insert into calls (call_id, ts, feature, model, status, latency_ms) select 'c' || i, "
        "'2026-01-01'::timestamp + (i % 3) * interval 1 day, 'f' || (i % 4), case when i % 5 = 0 then null else 'm' "
        "end, case when i % 7 = 0 then 'error' else 'ok' end, i % 997 from range(3000) r(i)\")\n"
        "compute('error_rate', db, by=('feature', 'model'), period='day')\n"
        "print('scipy' in sys.modules)\n"
        "df = compute('latency_p95_ms', db, by=('feature', 'model'), period='day')\n"
        "assert df['lo'].null_count() == 0, df\n"
        "print('pandas' in sys.modules, 'pyarrow.dataset' in sys.modules, 'scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False", "False"], out.stdout + out.stderr


def test_in_memory_tables_are_loaded_exactly_and_dropped_after_the_query():
    # a percentile's thresholds go to DuckDB as a temporary table written from SQL literals: every value as it was
    # (floats to the bit, quotes, NULLs, NaN and infinities, timestamps to the microsecond, dates), nothing left
    # behind; a column the literals do not cover (a list) goes as an Arrow view, as before
    import ibis
    import numpy as np

    from workbench.metrics import core

    db = wb.connect(":memory:")
    rng = np.random.default_rng(5)
    floats = [*rng.integers(0, 2**64, 600, dtype=np.uint64).view(np.float64).tolist(), 0.0, -0.0, 5e-324,
              float("inf"), float("-inf"), float("nan"), 0.1, None]
    n = len(floats)
    frame = pl.DataFrame({
        "x": floats,
        "s": [None if i % 11 == 0 else f"it's \"{i}\" -- é \\ \\u0041 \n\t😀 []" for i in range(n)],
        "i": [None if i % 13 == 0 else (i - 1000) * 2**40 for i in range(n)],
        "b": [None if i % 3 == 0 else i % 2 == 0 for i in range(n)],
        "ts": [None if i % 17 == 0 else dt.datetime(2026, 1, 1, 0, 0, 0, i * 37 % 10**6) for i in range(n)],
        "d": [None if i % 19 == 0 else dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(n)],
    }, schema={"x": pl.Float64, "s": pl.String, "i": pl.Int64, "b": pl.Boolean, "ts": pl.Datetime("us"),
               "d": pl.Date}).with_row_index("k")
    schema = ibis.schema({"k": "int64", "x": "float64", "s": "string", "i": "int64", "b": "boolean",
                          "ts": "timestamp(6)", "d": "date"})
    t = db.calls
    lut = ibis.memtable(frame, schema=schema)
    assert core._memtable_json(lut.op()) is not None  # the JSON text path
    got = core.to_polars(lut.cross_join(t.aggregate(n=t.count())).select(*schema.names)).sort("k")
    assert got.drop("x").equals(frame.drop("x").with_columns(pl.col("k").cast(pl.Int64)))
    x = got["x"].to_numpy()
    want = np.array([np.nan if v is None else v for v in floats])
    assert np.array_equal(x.view(np.uint64)[~np.isnan(want)], want.view(np.uint64)[~np.isnan(want)])
    assert got["x"].is_null().to_list() == [v is None for v in floats]
    assert np.isnan(x[n - 3]) and not got["x"].is_null()[n - 3]
    left = db.duckdb.execute("select count(*) from duckdb_tables() where table_name like '_wb_memtable_%'").fetchone()
    assert left == (0,)
    # a large table (a percentile's thresholds by user: thousands of groups) goes as an Arrow view: as text it cost
    # 0.4 s at every warm call for 16,000 groups, against 2 ms
    big = ibis.memtable(pl.DataFrame({"k": range(1000), "x": [0.5] * 1000, "s": ["a"] * 1000, "n": range(1000),
                                      "m": range(1000), "y": [1.0] * 1000}))
    assert core._memtable_json(big.op()) is None
    # a list column: not written as literals, registered as an Arrow view (and unregistered) as before
    lists = ibis.memtable(pl.DataFrame({"k": [1, 2], "v": [[1.0], None]}), schema=ibis.schema({"k": "int64",
                                                                                              "v": "array<float64>"}))
    assert core._memtable_json(lists.op()) is None
    got = core.to_polars(lists.cross_join(t.aggregate(n=t.count())).select("k", "v")).sort("k")
    assert got.rows() == [(1, [1.0]), (2, None)]
    assert db.duckdb.execute("select count(*) from duckdb_views() where view_name like '_wb_memtable_%'").fetchone() == (0,)


def test_to_polars_runs_a_cached_query_on_the_expressions_own_connection():
    # Ibis' backends compare equal by the database they open (two in-memory databases are equal): a query shape
    # compiled on one connection and found again for another must still run on the other
    from workbench.metrics import core

    dbs = [wb.connect(":memory:") for _ in range(2)]
    for i, db in enumerate(dbs):
        db.duckdb.execute(f"insert into calls (call_id, ts, feature, status) select 'c' || j, '2026-01-01', 'f', 'ok' "
                          f"from range({i + 1}) r(j)")
    counts = [core.to_polars(db.calls.aggregate(n=db.calls.count()))["n"][0] for db in dbs]
    assert counts == [1, 2]


def test_proportion_builds_its_query_once_per_shape_and_runs_it_on_each_connection():
    # the second call of a metric with the same options reuses the query built by the first (building it with Ibis
    # costs as much as running it on a small table); a connection to another database with an equal table still
    # gets its own numbers
    from workbench.metrics import core

    dbs = [wb.connect(":memory:") for _ in range(2)]
    for i, db in enumerate(dbs):
        _calls(db, [(f"c{j}", dt.datetime(2026, 1, 1), "chat", "m", "error" if j <= i else "ok", 1.0) for j in range(4)])
    core._BUILT.clear()
    first = [metrics.proportion(db.calls, db.calls.status == "error", by=["feature"], period="day", metric="error_rate")
             for db in dbs]
    assert [df["value"][0] for df in first] == [0.25, 0.5]
    built = dict(core._BUILT)
    again = metrics.proportion(dbs[1].calls, dbs[1].calls.status == "error", by=["feature"], period="day",
                               metric="error_rate")
    assert_frame_equal(again, first[1])
    (shape, entry), = core._BUILT.items()
    assert entry is built[shape]  # found, not built again


def test_to_polars_gives_integer_sums_as_int64_and_refuses_an_overflow():
    # DuckDB sums integers to a 128-bit integer (an Arrow decimal): the frame has the expression's int64, exactly
    from workbench.metrics import core

    db = wb.connect(":memory:")
    _calls(db, [("a", dt.datetime(2026, 1, 1), "chat", "m", "ok", 1.0), ("b", dt.datetime(2026, 1, 1), "chat", "m", "ok", 2.0)])
    t = db.calls.mutate(one=db.calls.latency_ms.cast("int64"))
    got = core.to_polars(t.group_by("feature").aggregate(s=t.one.sum(), n=t.count()))
    assert got.schema["s"] == pl.Int64 and got.rows() == [("chat", 3, 2)]
    import ibis

    big = db.calls.mutate(one=ibis.literal(5_000_000_000_000_000_000, "int64"))  # each fits in 64 bits, the sum not
    assert db.duckdb.execute("select sum(5000000000000000000::bigint) from calls").fetchone() == (10**19,)
    with pytest.raises(Exception, match="(?i)overflow|out of (range|bounds)"):
        core.to_polars(big.aggregate(s=big.one.sum()))


@pytest.mark.parametrize("period, at, bounds", [
    ("hour", dt.datetime(2026, 3, 1, 0, 59, 59, 999999), (dt.datetime(2026, 2, 28, 23), dt.datetime(2026, 3, 1),
                                                          dt.datetime(2026, 3, 1, 1))),
    ("day", dt.datetime(2024, 3, 1, 12), (dt.datetime(2024, 2, 29), dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2))),
    ("week", dt.datetime(2026, 1, 4, 23), (dt.datetime(2025, 12, 22), dt.datetime(2025, 12, 29), dt.datetime(2026, 1, 5))),
    ("week", dt.date(2026, 1, 5), (dt.datetime(2025, 12, 29), dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12))),
    ("month", dt.datetime(2026, 12, 31, 23), (dt.datetime(2026, 11, 1), dt.datetime(2026, 12, 1), dt.datetime(2027, 1, 1))),
])
def test_period_bounds_agree_with_duckdb_date_trunc(period, at, bounds):
    from workbench.metrics.core import period_bounds

    assert period_bounds(at, period) == bounds
    trunc = wb.connect(":memory:").duckdb.execute(f"select date_trunc('{period}', ?::timestamp)", [at]).fetchone()[0]
    assert trunc == bounds[1]
    with pytest.raises(ValueError, match="period"):
        period_bounds(at, "fortnight")


def test_a_query_run_again_reuses_its_plan_and_still_reads_the_data_as_it_is_now():
    # a metric's query is a prepared statement of the connection, its plan reused: new rows, a rolled-back delete and
    # a table emptied and filled again are read as they are at each run, never as they were when it was prepared
    from workbench.metrics import core

    db = wb.connect(":memory:")
    _calls(db, [("a", dt.datetime(2026, 1, 1), "chat", "m", "error", 1.0), ("b", dt.datetime(2026, 1, 1), "chat", "m", "ok", 1.0)])

    def rate():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = metrics.proportion(db.calls, db.calls.status == "error", by=["feature"], period="all", metric="error_rate")
        return df["value"][0], df["n"][0]

    assert rate() == (0.5, 2)  # prepared here
    plans = dict(core._PLANS[db.duckdb])
    assert any(name.startswith("_wb_plan_") for name, _ in plans.values())
    assert rate() == (0.5, 2)
    assert core._PLANS[db.duckdb] == plans  # the same data: the same plans, reused
    _calls(db, [("c", dt.datetime(2026, 1, 2), "chat", "m", "error", 1.0), ("d", dt.datetime(2026, 1, 2), "chat", "m", "error", 1.0)])
    assert rate() == (0.75, 4)
    db.duckdb.execute("begin")
    db.duckdb.execute("delete from calls where status = 'error'")
    assert rate() == (0.0, 1)
    db.duckdb.execute("rollback")
    assert rate() == (0.75, 4)
    db.duckdb.execute("create temp table keep as select * from calls where call_id in ('a', 'b')")
    db.duckdb.execute("delete from calls")
    db.duckdb.execute("insert into calls select * from keep")
    assert rate() == (0.5, 2)


def test_prepared_plans_per_connection_stay_bounded(monkeypatch):
    from workbench.metrics import core

    import duckdb

    con = duckdb.connect()
    monkeypatch.setattr(core, "_COMPILED_MAX", 3)
    for k in range(10):
        for _ in range(2):
            assert core._run(con, f"select {k} as x").column("x").to_pylist() == [k]
    assert len(core._PLANS[con]) <= 3
    prepared = con.execute("select count(*) from duckdb_prepared_statements()").fetchone()[0]
    assert prepared <= 3


def test_a_metric_given_a_path_leaves_the_file_free_for_a_writer(tmp_path):
    # the metric opens the file read-only and closes it when done; it used to stay open (the compiled queries cached
    # per process held the connection) and a later read-write connect in the same process failed: "Can't open a
    # connection to same database file with a different configuration"
    path = tmp_path / "w.duckdb"
    with wb.connect(path) as db:
        _calls(db, [("a", dt.datetime(2026, 1, 1), "chat", "m", "error", 1.0), ("b", dt.datetime(2026, 1, 1), "chat", "m", "ok", 1.0)])
    for _ in range(2):
        assert metrics.compute("error_rate", str(path), period="all")["value"].to_list() == [0.5]
    with wb.connect(path, lock_timeout_s=0.5) as db:
        _calls(db, [("c", dt.datetime(2026, 1, 1), "chat", "m", "ok", 1.0)])
    assert metrics.compute("error_rate", path, period="all")["n"].to_list() == [3]


def test_a_reused_plan_is_made_again_when_a_table_has_grown():
    # DuckDB keeps a prepared statement's plan when the data grows: a join planned while one table was empty builds
    # its hash table on that table once it holds millions of rows (600 times slower, 2 GB, measured). The plan is made
    # again when the tables' estimated sizes differ from those it was made for.
    from workbench.metrics import core

    import duckdb

    con = duckdb.connect()
    con.execute("create table big (k bigint, v double)")
    con.execute("create table small as select range as k, 1.0 as w from range(100)")
    sql = "select count(*) as n, sum(v * w) as s from big join small using (k)"
    assert core._run(con, sql).to_pylist() == [{"n": 0, "s": None}]
    assert core._run(con, sql).to_pylist() == [{"n": 0, "s": None}]
    name, planned_for = core._PLANS[con][sql]
    con.execute("insert into big select range % 1000, 2.0 from range(100000)")
    assert core._run(con, sql).to_pylist() == [{"n": 10000, "s": 20000.0}]
    again, sizes = core._PLANS[con][sql]
    assert again == name and sizes != planned_for
    assert sizes == con.execute(core._SIZES_SQL).fetchall()
    assert core._run(con, sql).to_pylist() == [{"n": 10000, "s": 20000.0}]
    assert core._PLANS[con][sql] == (name, sizes)  # unchanged data: the plan is reused
