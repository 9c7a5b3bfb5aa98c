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


def test_a_bug_is_not_passed_off_as_bad_input(monkeypatch, tmp_path):
    import workbench.metrics.core as core

    def broken(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(core, "compute", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["metrics", "error_rate", "--db", str(tmp_path / "x.duckdb")])


def test_a_fired_check_exits_1(small_demo, tmp_path):
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[budget.agent]\nmonthly_usd = 0.01\n")
    assert cli.main(["budget", "--db", str(small_demo), "--config", str(cfg), "--at", "2026-11-20"]) == 1
