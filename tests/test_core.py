"""The foundation: schema, connection and migrations, the shared metric machinery, config."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

import workbench as wb
from workbench import metrics
from workbench.config import ConfigError, load_config
from workbench.db import migrate
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
    assert db.sql("select count(*) as n from schema_version")["n"][0] == 1
    assert migrate(db.duckdb) == SCHEMA_VERSION
    assert db.sql("select count(*) as n from schema_version")["n"][0] == 1


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


def test_proportion_counts_and_wilson_interval_by_period():
    db = wb.connect(":memory:")
    rows = [(f"c{i}", dt.datetime(2026, 1, 1 + i // 10, 12), "chat", "m", "error" if i % 10 < (8 if i < 10 else 0) else "ok", 1.0)
            for i in range(20)]
    _calls(db, rows)
    t = db.calls
    df = metrics.proportion(t, t.status == "error", by=["feature"], period="day", metric="error_rate")
    assert df.columns[:8] == ["feature", "period_start", "metric", "value", "n", "lo", "hi"][:8]
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
