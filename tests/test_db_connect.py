"""Opening the database from the command line: readers never create one, bad files and locks exit 2 with one line,
readers share the file, writers wait for the lock (real parallel processes), CSV output is safe from formulas."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import workbench as wb
from workbench.cli import main

CONFIG = "[slo.chat]\nlatency_ms = 2000\nlatency_target = 0.9\navailability_target = 0.9\n[budget.chat]\nmonthly_usd = 100\n"
READERS = [["slo"], ["budget"], ["metrics", "error_rate"], ["report", "scorecard", "--period", "2026-W47"]]
WRITERS = [["eval"]]


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    (tmp_path / "workbench.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    monkeypatch.delenv("WORKBENCH_DB", raising=False)
    return tmp_path


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.mark.parametrize("verb", READERS + WRITERS, ids=lambda v: v[0])
def test_readers_and_eval_never_create_a_database(cfg, capsys, verb):
    missing = cfg / "typo" / "wb.duckdb"
    assert main([*verb, "--db", str(missing)]) == 2
    _one_line_error(capsys, "no database at", "wb.duckdb")
    assert not missing.exists() and not missing.parent.exists()


def test_library_paths_never_create_a_database(tmp_path):
    missing = tmp_path / "typo.duckdb"
    with pytest.raises(wb.errors.MissingFileError, match="no database at"):
        wb.hallucination_rate(str(missing))
    with pytest.raises(wb.errors.MissingFileError):
        wb.connect(missing, read_only=True)
    assert not missing.exists()
    wb.connect(missing).close()  # the default still creates (notebooks, ingest, demo)
    assert missing.exists()


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    zero = tmp / "zero.duckdb"
    zero.write_bytes(b"")
    text = tmp / "notes.duckdb"
    text.write_text("SQLite format 3\x00 not really\n")
    foreign = tmp / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("create table t (x int)")
    con.close()
    return {"zero": (zero, "empty (0 bytes)"), "text": (text, "not a DuckDB database file"),
            "foreign": (foreign, "not a workbench database")}


@pytest.mark.parametrize("kind", ["zero", "text", "foreign"])
@pytest.mark.parametrize("verb", READERS + WRITERS, ids=lambda v: v[0])
def test_bad_database_files_exit_2_with_one_line(cfg, capsys, kind, verb):
    path, message = _bad_files(cfg)[kind]
    if kind == "foreign" and verb[0] == "eval":
        message = ""  # a writer migrates a DuckDB file into a workbench database; that is not an error
        assert main([*verb, "--db", str(path)]) == 0
        return
    assert main([*verb, "--db", str(path)]) == 2
    _one_line_error(capsys, message, path.name)


def test_ingest_on_an_empty_file_is_an_error_not_a_new_database(cfg, capsys):
    path, message = _bad_files(cfg)["zero"]
    src = cfg / "calls.jsonl"
    src.write_text('{"id": "a"}\n')
    assert main(["ingest", str(src), "--db", str(path)]) == 2
    _one_line_error(capsys, message)
    assert path.stat().st_size == 0


# --- real parallel processes ----------------------------------------------------------------------------------------

HOLD = """
import sys, time, workbench as wb
db = wb.connect(sys.argv[1])
db.duckdb.execute("begin; insert into calls (call_id, ts, feature, status) values ('held', '2026-11-20', 'chat', 'ok')")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
db.duckdb.execute("commit")
db.close()
"""


def _holder(db: Path, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding"
    return p


def _cli(args, env=None, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.fixture
def filled(cfg):
    db = cfg / "wb.duckdb"
    with wb.connect(db) as d:
        d.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
                         "('a', '2026-11-18 10:00', 'chat', 'ok', 100), ('b', '2026-11-19 10:00', 'chat', 'error', 90)")
    return db


def test_a_held_write_lock_gives_readers_exit_2_after_the_bounded_wait(filled, cfg):
    holder = _holder(filled, 60)
    try:
        t0 = time.monotonic()
        procs = [_cli([*v, "--db", str(filled)], env={"WORKBENCH_LOCK_TIMEOUT_S": "1"}, cwd=cfg) for v in READERS + WRITERS]
        outs = [p.communicate(timeout=240) for p in procs]
        for p, (out, err), verb in zip(procs, outs, READERS + WRITERS):
            assert p.returncode == 2, (verb, err)
            assert err.count("\n") == 1 and "Traceback" not in err, err
            assert f"locked by another process (PID {holder.pid}); gave up after waiting 1 s" in err, err
            assert "--lock-timeout SECONDS" in err, err  # the way to wait longer that the command line has too
    finally:
        holder.kill()
        holder.wait()


def test_readers_and_writers_wait_for_a_lock_that_is_released(filled, cfg):
    holder = _holder(filled, 4)
    try:
        procs = {v[0]: _cli([*v, "--db", str(filled), "--lock-timeout", "60"], cwd=cfg)
                 for v in [["metrics", "error_rate", "--period", "all", "--format", "csv"], ["eval"]]}
        results = {k: (p.wait(240), p.stdout.read(), p.stderr.read()) for k, p in procs.items()}
    finally:
        holder.wait(60)
    assert results["metrics"][0] == 0, results["metrics"]
    assert "chat" in results["metrics"][1]  # it read the database after the holder committed: 3 calls
    assert ",3," in results["metrics"][1]
    assert results["eval"][0] == 0, results["eval"]


def test_readers_started_in_the_same_second_share_the_database(filled, cfg):
    verbs = [["slo"], ["budget"], ["metrics", "error_rate", "--period", "all"]] * 2
    procs = [_cli([*v, "--db", str(filled), "--lock-timeout", "0"], cwd=cfg) for v in verbs]
    for p, v in zip(procs, verbs):
        out, err = p.communicate(timeout=240)
        # 1: an alert fired (the error rate is 50%); 3: no data (the budget's month, this month, has no call);
        # never 2, never a lock
        assert p.returncode in (0, 1, 3), (v, err)


# --- CSV output ----------------------------------------------------------------------------------------------------

HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\tcat", "\r=1", " =1+1", "＝1+1", "plain", "a=b"]


def test_csv_output_defuses_formula_cells(cfg, capsys, tmp_path):
    db = cfg / "wb.duckdb"
    with wb.connect(db) as d:
        d.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, '2026-11-18', ?, 'ok')",
                             [(f"c{i}", f) for i, f in enumerate(HOSTILE)])
    assert main(["metrics", "error_rate", "--db", str(db), "--period", "all", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    written = tmp_path / "out.csv"
    assert main(["metrics", "error_rate", "--db", str(db), "--period", "all", "--out", str(written)]) == 0
    with open(written, newline="", encoding="utf-8") as fh:
        saved = fh.read()
    for text in (out, saved):
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        features = {r["feature"] for r in rows}
        assert features == {"'" + f if f not in ("plain", "a=b") else f for f in HOSTILE}, features
        assert {r["value"] for r in rows} == {"0.0"}  # numbers are not touched


# --------------------------------------------------------------------------------------------- memory limit


def _limit_mib(db) -> float:
    text = db.duckdb.execute("select current_setting('memory_limit')").fetchone()[0]  # e.g. '286.1 MiB'
    number, unit = text.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 1024 ** 2}[unit]


def test_memory_limit_from_the_argument_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_MEMORY_LIMIT", raising=False)
    p = tmp_path / "w.duckdb"
    wb.connect(p).close()
    default = _limit_mib(wb.connect(p, read_only=True))
    assert default > 1024  # DuckDB's own: 80% of this machine's RAM
    db = wb.connect(p, read_only=True, memory_limit="300MB")
    assert 280 < _limit_mib(db) < 290  # 300 MB = 286.1 MiB
    db.close()
    monkeypatch.setenv("WORKBENCH_MEMORY_LIMIT", "1GB")
    db = wb.connect(p, read_only=True)
    assert 950 < _limit_mib(db) < 960  # 1 GB = 953.6 MiB
    db.close()
    monkeypatch.setenv("WORKBENCH_MEMORY_LIMIT", "a lot")
    with pytest.raises(wb.errors.ParameterError, match=r"\$WORKBENCH_MEMORY_LIMIT must be a size"):
        wb.connect(p, read_only=True)
    with pytest.raises(wb.errors.ParameterError, match="memory_limit must be a size"):
        wb.connect(p, read_only=True, memory_limit="300")


def test_a_metric_under_a_small_memory_limit_gives_the_same_frame(small_demo):
    from workbench.metrics import compute

    free = compute("dau_count", wb.connect(small_demo, read_only=True), by=("feature",), period="day")
    bounded = compute("dau_count", wb.connect(small_demo, read_only=True, memory_limit="64MB"), by=("feature",),
                      period="day")
    assert bounded.equals(free)


def test_duckdb_progress_bar_never_reaches_a_piped_stdout(tmp_path):
    """DuckDB prints its progress bar on standard output for long statements: piped into `jq` or a log, it would
    corrupt `--json` output. With the bar due at once, a long query's stdout must hold only what the script prints."""
    code = ("import workbench as wb\n"
            "db = wb.connect(':memory:')\n"
            "db.duckdb.execute('SET progress_bar_time = 0')\n"
            "print(db.duckdb.execute('select count(*) from range(50000000)').fetchone()[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout == "50000000\n"


def test_a_metric_called_again_reads_no_table_schema_again(monkeypatch):
    # Ibis reads a table's schema from the database each time it makes the table (1-3 ms a table): the workbench
    # makes each canonical table once per connection, so a metric called again asks for no schema.
    import workbench as wb
    from workbench.metrics import compute

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
                      "('a', '2026-01-01 10:00', 'chat', 'ok', 100), ('b', '2026-01-01 11:00', 'chat', 'error', 300)")
    first = compute("error_rate", db)
    asked = []
    real = type(db.ibis).get_schema
    monkeypatch.setattr(type(db.ibis), "get_schema", lambda self, *a, **k: asked.append(a) or real(self, *a, **k))
    again = compute("error_rate", db)
    assert asked == [] and again.equals(first)
    assert db.table("calls") is db.calls
    db.close()


def test_a_metric_called_again_builds_its_join_and_runs_ibis_hooks_no_more(monkeypatch):
    # A warm call on a small table was mostly Ibis' Python: the scores-answers-calls join built again (10-20 ms) and
    # Ibis' pre-execution hooks walking each query three times (3-4 ms a query). Both happen once now, the results
    # unchanged, and a new score is seen by the kept join.
    import workbench as wb
    from workbench.metrics import compute, hallucination

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
                      "('a', '2026-01-01 10:00', 'chat', 'ok', 100), ('b', '2026-01-01 11:00', 'chat', 'ok', 300)")
    db.duckdb.execute("insert into evals (call_id, ts, metric, evaluator, evaluator_version, value, label) "
                      "values ('a', '2026-01-02', 'hallucination_label', 'human', 'r1', 1, 'hallucinated')")
    opts = dict(evaluator="human", version="r1", metric="hallucination_label")
    first = compute("hallucination_rate", db, **opts)
    built, hooked = [], []
    real_join = hallucination._scored_join
    monkeypatch.setattr(hallucination, "_scored_join", lambda *a: built.append(a) or real_join(*a))
    real_hooks = type(db.ibis)._run_pre_execute_hooks
    monkeypatch.setattr(type(db.ibis), "_run_pre_execute_hooks", lambda self, e: hooked.append(e) or real_hooks(self, e))
    again = compute("hallucination_rate", db, **opts)
    assert built == [] and hooked == [] and again.equals(first)
    assert first["value"].to_list() == [1.0] and first["n"].to_list() == [1]
    db.duckdb.execute("insert into evals (call_id, ts, metric, evaluator, evaluator_version, value, label) "
                      "values ('b', '2026-01-02', 'hallucination_label', 'human', 'r1', 0, 'supported')")
    later = compute("hallucination_rate", db, **opts)
    assert later["value"].to_list() == [0.5] and later["n"].to_list() == [2]
    # A query reading an in-memory table (the percentile's per-group thresholds) has it registered for the run
    p95 = compute("latency_p95_ms", db)
    assert p95["value"].to_list() == [290.0]
    db.close()


def test_a_percentile_called_again_is_not_compiled_again_and_reads_its_new_thresholds(monkeypatch):
    # The percentile's per-group thresholds are an in-memory table with new data at every call, so its query was
    # compiled again every time (15-20 ms of a warm call on 100k calls). It is compiled once per shape with a
    # placeholder table; the data registered under it are the call's own, and unregistered after.
    import duckdb

    import workbench as wb
    from workbench.metrics import compute, core

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) "
                      "select 'c' || i, '2026-01-01', 'chat', 'ok', i from range(1, 1001) r(i)")
    monkeypatch.setattr(core, "HOLISTIC_QUANTILES", False)  # the bounded path: approximate quantiles + thresholds
    first = compute("latency_p95_ms", db)
    compiled = []
    real = type(db.ibis).compile
    monkeypatch.setattr(type(db.ibis), "compile", lambda self, *a, **k: compiled.append(a) or real(self, *a, **k))
    again = compute("latency_p95_ms", db)
    assert compiled == [] and again.equals(first)
    assert first["value"].to_list() == [pytest.approx(950.05)]  # type 7 on 1..1000
    # New rows: other thresholds, read from the call's own table (the query's pruning bound, a literal, moved with
    # them: compiled once more), the right order statistics; asked again, nothing compiled
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) "
                      "select 'd' || i, '2026-01-01', 'chat', 'ok', 1000 + i from range(1, 1001) r(i)")
    later = compute("latency_p95_ms", db)
    assert later["value"].to_list() == [pytest.approx(1900.05)]  # type 7 on 1..2000
    compiled.clear()
    assert compute("latency_p95_ms", db).equals(later) and compiled == []
    with pytest.raises(duckdb.CatalogException):
        db.duckdb.sql("select * from _wb_memtable_0")  # nothing left registered on the connection
    db.close()


def test_a_metric_imports_the_duckdb_compiler_only_and_every_other_stays_reachable():
    # Ibis' compilers package imports all twenty SQL dialects' compilers (about 70 ms of a first call); the workbench
    # defers them. In a fresh interpreter: a metric on DuckDB loads no other dialect, and the package's names, another
    # dialect's compiler and SQL for another dialect still work.
    code = """
import sys, warnings
warnings.simplefilter("ignore")
import workbench as wb
from workbench.metrics import compute
db = wb.connect(":memory:")
compute("error_rate", db)
loaded = sorted(m for m in sys.modules if m.startswith(("ibis.backends.sql.compilers.", "sqlglot.dialects.")))
print(",".join(loaded))
import ibis
import ibis.backends.sql.compilers as sc
from ibis.backends.sql.compilers import PySparkCompiler, DuckDBCompiler
assert sc.duckdb.DuckDBCompiler is DuckDBCompiler and PySparkCompiler.__name__ == "PySparkCompiler"
print(ibis.to_sql(db.calls.select("call_id").limit(1), dialect="postgres").split()[0])
try:
    sc.no_such_compiler
except AttributeError as exc:
    print("AttributeError", exc)
"""
    star = """
import workbench as wb
wb.connect(":memory:").calls
from ibis.backends.sql.compilers import *
print(sorted(n for n in dir() if n.endswith("Compiler")) == sorted(__import__("ibis.backends.sql.compilers",
      fromlist=["x"]).__all__), "TrinoCompiler" in dir())
"""
    got = subprocess.run([sys.executable, "-c", star], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0 and got.stdout.split() == ["True", "True"], got.stdout + got.stderr
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, sql, missing = out.stdout.splitlines()
    names = set(loaded.split(","))
    assert {"ibis.backends.sql.compilers.duckdb", "sqlglot.dialects.duckdb"} <= names
    assert not any(n.endswith((".trino", ".athena", ".bigquery", ".snowflake", ".postgres")) for n in names), names
    assert sql == "SELECT"
    assert "no_such_compiler" in missing


def test_the_ibis_import_runs_with_the_cyclic_collector_paused():
    # Importing Ibis makes some hundred thousand objects and no garbage; the collector's passes over them and over
    # everything imported before were 45-55 ms of a fresh process's first metric. In a fresh interpreter: no
    # collection of the older generations runs while the first table is made (with the collector on, the import
    # ran several), and the collector is on again afterwards. The allocations counted while it was paused may start
    # one collection of the youngest generation once it is back on, depending on where the count stood (the hash
    # seed moves it): that one walks only the objects made since, not the import.
    code = """
import gc
import polars, scipy.stats
import workbench as wb
db = wb.connect(":memory:")
runs = []
gc.callbacks.append(lambda phase, info: phase == "start" and runs.append(info["generation"]))
db.calls
print(*runs, "|", gc.isenabled())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    runs, enabled = out.stdout.split("|")
    assert enabled.strip() == "True"
    assert runs.split() in ([], ["0"]), runs  # generations of the collections that ran


def test_a_database_path_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    import os
    import subprocess
    import sys

    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/data\xff.duckdb")  # a name in Latin-1, as a shell passes it
    with pytest.raises(wb.errors.DatabaseError, match=r"data\\xff\.duckdb'?: the database path is not UTF-8"):
        wb.connect(bad)  # was UnicodeEncodeError inside DuckDB
    r = subprocess.run([str(Path(sys.executable).with_name("workbench")), "slo", "--db", os.fsencode(bad)],
                       capture_output=True)
    assert r.returncode == 2 and b"not UTF-8" in r.stderr and b"Traceback" not in r.stderr  # exit 1 = alert fired


def test_a_writer_opens_a_file_whose_reader_was_dropped_after_metrics_ran(tmp_path):
    # a notebook reads with a read-only connection, runs metrics, then rebinds `db` to a writable one to ingest: the
    # metrics' per-process query caches still referred to the reader, which kept the file open read-only, and DuckDB
    # refused the writer ("different configuration"). A reader still held by the caller is said plainly.
    import gc
    import warnings

    from workbench.errors import DatabaseError

    path = tmp_path / "w.duckdb"
    with wb.connect(path) as db:
        db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
                          "('a', '2026-01-01', 'chat', 'ok', 10), ('b', '2026-01-01', 'chat', 'error', 30)")
    db = wb.connect(path, read_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("error_rate", "error_rate", "latency_p95_ms", "latency_p95_ms", "hallucination_rate"):
            wb.metrics.compute(name, db, period="all")
    db = None
    gc.collect()
    db = wb.connect(path, lock_timeout_s=1)  # writable
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('c', '2026-01-02', 'chat', 'ok')")
    assert db.duckdb.execute("select count(*) from calls").fetchone() == (3,)
    db.close()
    reader = wb.connect(path, read_only=True)
    with pytest.raises(DatabaseError, match="holds it open with other settings.*close that connection first"):
        wb.connect(path, lock_timeout_s=1)
    reader.close()


@pytest.mark.parametrize("path", [5, 1.5, True, ["w.duckdb"], {"a": 1}, b"w.duckdb", object()])
def test_a_path_that_is_no_path_is_an_error_naming_it_and_creates_no_file(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match=r"connect: path must be a str or path"):
        wb.connect(path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"read_only": "x"}, "connect: read_only must be True or False, got 'x'"),
    ({"read_only": 1}, "connect: read_only must be True or False, got 1"),
    ({"create": "no"}, "connect: create must be True or False, got 'no'"),
    ({"config": 5}, "config must be the path of a workbench.toml, a Config or Settings, got int"),
])
def test_connect_names_a_switch_or_config_of_the_wrong_type(tmp_path, kwargs, message):
    # read_only="no" would have opened for writing; config=5 failed only later, at the first db.settings
    with pytest.raises(wb.errors.ParameterTypeError, match=re.escape(message)):
        wb.connect(tmp_path / "w.duckdb", **kwargs)
    assert not (tmp_path / "w.duckdb").exists()
