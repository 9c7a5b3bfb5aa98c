"""The command line's contract: exit 2 with one line for bad input or environment, 1 only for a fired check, and a
traceback for anything else (a bug must not pass as bad input)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from workbench import cli

PY = sys.executable


def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"workbench {argv[0]}: error: ")
    return err


def test_unknown_metric(capsys, tmp_path):
    err = _one_line_error(capsys, ["metrics", "latncy_p95_ms", "--db", str(tmp_path / "x.duckdb")])
    assert "latncy_p95_ms" in err and "did you mean 'latency_p95_ms'" in err


def test_bad_parameter_names_the_metric(capsys, small_demo):
    err = _one_line_error(capsys, ["metrics", "error_rate", "--db", str(small_demo), "--param", "colour=red"])
    assert "error_rate" in err and "colour" in err


def test_bad_file_names_the_file(capsys, tmp_path):
    missing = tmp_path / "nope.jsonl"
    err = _one_line_error(capsys, ["ingest", str(missing), "--db", str(tmp_path / "db.duckdb")])
    assert "nope.jsonl" in err


def test_bad_mapping_names_the_key(capsys, tmp_path):
    data = tmp_path / "f.jsonl"
    data.write_text('{"t": "2026-01-01T00:00:00Z", "k": "thumbs"}\n')
    mapping = tmp_path / "m.toml"
    mapping.write_text('table = "feedback"\n[columns]\ncolour = "c"\n')
    err = _one_line_error(capsys, ["ingest", str(data), "--format", "jsonl", "--mapping", str(mapping),
                                   "--db", str(tmp_path / "db.duckdb")])
    assert "colour" in err and "m.toml" in err


def test_not_a_database(capsys, tmp_path):
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"this is not a database file at all\n" * 200)
    err = _one_line_error(capsys, ["metrics", "error_rate", "--db", str(junk)])
    assert "junk.duckdb" in err


def test_locked_by_another_process(capsys, tmp_path):
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r})
        con.execute("create table t (x int)")
        print("ready", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        err = _one_line_error(capsys, ["ingest", str(tmp_path / "none.jsonl"), "--db", str(db)])
        assert "locked.duckdb" in err
    finally:
        holder.kill()
        holder.wait()


def test_a_bug_is_not_passed_off_as_bad_input(monkeypatch, small_demo):
    import workbench.metrics.core as core

    def broken(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(core, "compute", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["metrics", "error_rate", "--db", str(small_demo)])


def test_a_fired_check_exits_1(small_demo, tmp_path):
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[budget.agent]\nmonthly_usd = 0.01\n")
    assert cli.main(["budget", "--db", str(small_demo), "--config", str(cfg), "--at", "2026-11-20"]) == 1


def test_a_metric_out_of_memory_exits_2_naming_the_metric_and_the_limit(capsys, tmp_path, monkeypatch):
    # Under a memory limit too small for the query (DuckDB: "Out of Memory Error"), a metric used to end in a
    # traceback and exit 1, which a scheduler reads as a fired check. Now: exit 2, one line, the metric and the limit.
    import workbench as wb
    from workbench.errors import InputError, ResourceError
    from workbench.metrics import compute

    p = tmp_path / "big.duckdb"
    db = wb.connect(p)
    db.duckdb.execute("insert into calls (call_id, ts, feature, model, status, user_id) select 'c' || i, "
                      "timestamp '2026-01-01' + to_seconds(i % 2592000), 'f' || (i % 7), 'm' || (i % 5), 'ok', "
                      "'user-' || i from range(400000) r(i)")
    db.close()
    with pytest.raises(ResourceError, match="dau_count: ran out of memory under DuckDB's memory_limit of 3.8 MiB"):
        compute("dau_count", wb.connect(p, read_only=True, memory_limit="4MB"), by=("feature", "model"),
                activity="calls")
    assert issubclass(ResourceError, InputError) and issubclass(ResourceError, MemoryError)
    monkeypatch.setenv("WORKBENCH_MEMORY_LIMIT", "4MB")
    err = _one_line_error(capsys, ["metrics", "dau_count", "--db", str(p), "--by", "feature,model",
                                   "--param", "activity=calls"])
    assert "dau_count" in err and "memory_limit" in err and "WORKBENCH_MEMORY_LIMIT" in err
    monkeypatch.setenv("WORKBENCH_MEMORY_LIMIT", "256MB")  # the same metric fits under a workable limit
    assert cli.main(["metrics", "dau_count", "--db", str(p), "--by", "feature,model", "--param", "activity=calls",
                     "--format", "csv"]) == 0


def test_a_report_with_a_broken_workbench_toml_stops_before_its_notebook_runs(capsys, tmp_path, monkeypatch):
    """[slo.chat] latency_p95_ms (a key the SLO tables do not have) failed the latency report at its fifteenth cell,
    after the kernel had run the rest, leaving a partial notebook in .failed/."""
    import workbench as wb

    db = tmp_path / "wb.duckdb"
    with wb.connect(db) as d:
        d.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
                         "('a', '2026-11-18 10:00', 'chat', 'ok', 100)")
    cfg = tmp_path / "team.toml"
    cfg.write_text("[slo.chat]\nlatency_p95_ms = 800\n")
    monkeypatch.setenv("WORKBENCH_CONFIG", str(cfg))
    out = tmp_path / "reports"
    err = _one_line_error(capsys, ["report", "latency", "--db", str(db), "--period", "2026-W47", "--out", str(out)])
    assert "team.toml [slo.chat]: unknown key 'latency_p95_ms'" in err
    assert not (out / "latency" / ".failed").exists()
