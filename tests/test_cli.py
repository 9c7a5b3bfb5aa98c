"""The command line: a thin wrapper, one library call per verb, exit codes that cron can act on."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings

import polars as pl
import pytest

from workbench import cli

from workbench import metrics

VERBS = ("ingest", "demo", "metrics", "slo", "budget", "eval", "hallucination", "labels", "report", "schedule")


def test_help_lists_every_verb():
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for verb in VERBS:
        assert verb in out


def test_no_verb_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: workbench" in capsys.readouterr().out


def test_metrics_list_names_every_metric(capsys):
    assert cli.main(["metrics", "list"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert listed == set(metrics.suite())


def test_metrics_csv_equals_the_library_call(small_demo, capsys):
    args = ["metrics", "error_rate", "--db", str(small_demo), "--by", "feature,model", "--period", "week",
            "--start", "2026-11-02", "--end", "2026-11-16", "--where", "environment=production", "--format", "csv"]
    assert cli.main(args) == 0
    got = pl.read_csv(io.StringIO(capsys.readouterr().out))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = metrics.compute("error_rate", str(small_demo), by=("feature", "model"), period="week", start="2026-11-02",
                               end="2026-11-16", where=["environment=production"])
    assert got["n"].to_list() == want["n"].to_list()
    assert got["value"].to_list() == want["value"].to_list()


def test_metrics_param_and_parquet_out(small_demo, tmp_path):
    out = tmp_path / "whatif.parquet"
    assert cli.main(["metrics", "whatif_cost_usd", "--db", str(small_demo), "--period", "all", "--param", "model=gpt-4o-mini",
                     "--format", "parquet", "--out", str(out)]) == 0
    df = pl.read_parquet(out)
    assert set(df["metric"]) == {"whatif_cost_usd"} and df["value"].drop_nulls().len() > 0


def test_unknown_metric_is_a_clear_error(small_demo, capsys):
    assert cli.main(["metrics", "latency_p96_ms", "--db", str(small_demo)]) == 2
    err = capsys.readouterr().err
    assert "no metric 'latency_p96_ms'" in err and "latency_p95_ms" in err


def test_bad_group_key_names_the_columns(small_demo, capsys):
    assert cli.main(["metrics", "error_rate", "--db", str(small_demo), "--by", "team"]) == 2
    assert "cannot group by ['team']" in capsys.readouterr().err


def test_hallucination_score_round_trip(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "q1", "question": "When did it open?", "contexts": ["The museum opened in 1889."],
                               "answer": "The museum opened in 1887."}) + "\n")
    assert cli.main(["hallucination", "score", str(src), "--out", str(tmp_path / "out.jsonl")]) == 0
    row = json.loads((tmp_path / "out.jsonl").read_text())
    assert row["id"] == "q1" and row["label"] == 1 and "1887" in row["claims"][0]["reason"]


def test_report_list_and_schedule(capsys):
    assert cli.main(["report", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"scorecard", "hallucination", "latency", "cost", "adoption", "experiments"} <= set(names)
    assert cli.main(["schedule", "export", "--crontab", "--db", "/data/wb.duckdb"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#") and "=" not in line.split()[0]]
    assert len(lines) == 1  # one entry: `schedule run` publishes whatever is due
    assert lines[0].startswith("0 6 * * * /") and "schedule run" in lines[0] and "--db /data/wb.duckdb" in lines[0]


def _score_input(path):
    path.write_text("".join(json.dumps({"id": f"q{i}", "contexts": ["The museum opened in 1889."],
                                        "answer": "The museum opened in 1887."}) + "\n" for i in range(3)))
    return path.read_bytes()


def test_hallucination_score_refuses_to_write_over_its_input(tmp_path, capsys):
    src = tmp_path / "answers.jsonl"
    before = _score_input(src)
    assert cli.main(["hallucination", "score", str(src), "--out", str(src)]) == 2
    assert "is the input" in capsys.readouterr().err
    # the same file by another name: a relative path, a symbolic link
    (tmp_path / "link.jsonl").symlink_to(src)
    assert cli.main(["hallucination", "score", str(src), "--out", str(tmp_path / "link.jsonl")]) == 2
    assert src.read_bytes() == before


def test_an_interrupted_score_leaves_the_previous_output_and_no_partial_one(tmp_path, monkeypatch):
    from workbench.eval import detector

    src = tmp_path / "answers.jsonl"
    _score_input(src)
    out = tmp_path / "scores.jsonl"
    out.write_text("yesterday's scores\n")
    real, calls = detector.detect, []

    def failing(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(detector, "detect", failing)
    try:
        detector.score_jsonl(src, out, progress=False)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interruption did not reach the caller")
    assert out.read_text() == "yesterday's scores\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl", "scores.jsonl"]  # no temporary file left


def test_metrics_out_refuses_to_write_over_the_database(small_demo, tmp_path, capsys):
    import shutil

    db = tmp_path / "wb.duckdb"
    shutil.copy(small_demo, db)
    before = db.read_bytes()
    for verb in (["metrics", "error_rate"], ["slo"], ["budget"]):
        assert cli.main([*verb, "--db", str(db), "--format", "csv", "--out", str(db)]) == 2, verb
        assert "is the database" in capsys.readouterr().err
    assert db.read_bytes() == before


def test_eval_with_a_filter_that_selects_nothing_names_the_closest_value(small_demo, tmp_path, capsys):
    import shutil

    db = tmp_path / "wb.duckdb"
    shutil.copy(small_demo, db)
    assert cli.main(["eval", "--db", str(db), "--where", "feature=suport_assistant", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["to_score"] == 0
    assert ("workbench eval: warning: --where feature=suport_assistant matches no row of calls; closest: "
            "support_assistant") in captured.err
    # a filter that selects answers says nothing
    assert cli.main(["eval", "--db", str(db), "--where", "feature=support_assistant", "--dry-run"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_metrics_out_is_replaced_whole_or_not_at_all(small_demo, tmp_path, monkeypatch, capsys):
    out = tmp_path / "p95.csv"
    out.write_text("last week's numbers\n")
    for fmt, reader in (("csv", pl.read_csv), ("json", pl.read_json), ("parquet", pl.read_parquet)):
        target = tmp_path / f"all.{fmt}"
        assert cli.main(["metrics", "latency_p95_ms", "--db", str(small_demo), "--period", "all", "--format", fmt,
                         "--out", str(target)]) == 0
        assert reader(target).height > 0 and "latency_p95_ms" in reader(target)["metric"].to_list()

    def half_then_fail(self, file, *a, **kw):
        file.write(b"feature,period_start\nchat,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", half_then_fail)
    capsys.readouterr()
    assert cli.main(["metrics", "latency_p95_ms", "--db", str(small_demo), "--period", "all", "--format", "csv",
                     "--out", str(out)]) == 2
    assert f"--out {out}: cannot write it: No space left on device" in capsys.readouterr().err
    assert out.read_text() == "last week's numbers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv", "all.json", "all.parquet", "p95.csv"]


def test_metrics_out_to_a_pipe_or_device_writes_into_it_and_never_replaces_it(small_demo, tmp_path, capsys):
    # `--out /dev/stdout`, a named pipe, /dev/full: the rename that replaces a regular file whole replaced the device
    # or pipe by a regular file (/dev/full became one), and "wrote N rows" was said of a write that went nowhere
    import os
    import stat
    import threading

    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert cli.main(["metrics", "error_rate", "--db", str(small_demo), "--period", "all", "--format", "csv",
                     "--out", str(fifo)]) == 0
    reader.join(10)
    assert got and got[0].startswith(b"feature,period_start,metric,value,n,lo,hi,partial") and b"agent," in got[0]
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["rows.fifo"]
    if os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode):
        capsys.readouterr()
        assert cli.main(["metrics", "error_rate", "--db", str(small_demo), "--period", "all", "--format", "csv",
                         "--out", "/dev/full"]) == 2
        assert "--out /dev/full: cannot write it: No space left on device" in capsys.readouterr().err
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_hallucination_score_names_a_utf16_input_and_how_to_convert_it(tmp_path, capsys):
    src = tmp_path / "answers.jsonl"
    src.write_bytes((json.dumps({"id": "q1", "contexts": ["a"], "answer": "a"}) + "\n").encode("utf-16"))
    assert cli.main(["hallucination", "score", str(src), "--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "answers.jsonl: the file is UTF-16 text" in err and "iconv -f UTF-16 -t UTF-8" in err
    assert not (tmp_path / "out.jsonl").exists()


def test_labels_import_loads_reviewers_labels_and_says_what_it_did(tmp_path, capsys):
    # import_labels had no command: reviewers' labels could only come in through Python, though `hallucination
    # benchmark|calibrate --db` read them and told the user to bring them in
    import workbench as wb

    dbp = tmp_path / "w.duckdb"
    with wb.connect(dbp) as db:
        db.duckdb.execute("insert into answers (call_id, answer) values ('a', 'x'), ('b', 'y'), ('c', 'z')")
    good = tmp_path / "labels.csv"
    good.write_text("call_id,label,explanation\na,1,made up a refund policy\nb,supported,\nc,no,\na,yes,again\n")
    assert cli.main(["labels", "import", str(good), "--db", str(dbp)]) == 0
    assert capsys.readouterr().out.startswith(f"imported 3 labels of human version 1 from {good} (1 hallucinated, "
                                              "2 supported; 1 repeated row skipped); run ")
    with wb.connect(dbp, read_only=True) as db:
        got = db.sql("select call_id, value, label, evaluator, evaluator_version from evals order by call_id").rows()
    assert got == [("a", 1.0, "hallucinated", "human", "1"), ("b", 0.0, "supported", "human", "1"),
                   ("c", 0.0, "supported", "human", "1")]
    assert cli.main(["labels", "import", str(good), "--db", str(dbp), "--evaluator", "qa", "--version", "2",
                     "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["evaluator"], s["version"], s["imported"], s["hallucinated"], s["duplicates"]) == ("qa", "2", 3, 1, 1)

    bad = tmp_path / "bad.csv"
    bad.write_text("call_id,label\na,1\nzz,0\n")
    maybe = tmp_path / "maybe.jsonl"
    maybe.write_text('{"call_id": "a", "label": "maybe"}\n')
    for argv, message in [
        ([str(bad), "--db", str(dbp)], f"import_labels: {bad} line 3: call_id 'zz' is not in answers"),
        ([str(maybe), "--db", str(dbp)], f"import_labels: {maybe} line 1 column 'label': expected 1/0, true/false or "
                                         "hallucinated/supported, got 'maybe'"),
        ([str(tmp_path / "none.csv"), "--db", str(dbp)], f"import_labels: no file at {tmp_path / 'none.csv'}"),
        ([str(good), "--db", str(tmp_path / "none.duckdb")], f"no database at {tmp_path / 'none.duckdb'}"),
    ]:
        assert cli.main(["labels", "import", *argv]) == 2
        assert capsys.readouterr().err.startswith(f"workbench labels: error: {message}")
    with wb.connect(dbp, read_only=True) as db:  # a refused file wrote nothing
        assert db.sql("select count(*) from evals").rows() == [(6,)]


@pytest.mark.parametrize("argv", [
    ["report", "latency", "--out", ""],
    ["schedule", "run", "--out", " "],
    ["collect", "--db", "w.duckdb", "--spool", ""],
    ["hallucination", "score", "in.jsonl", "--out", ""],
    ["metrics", "error_rate", "--out", ""],
    ["ingest", "calls.jsonl", "--mapping", ""],
    ["demo", "--reports", ""],
])
def test_an_empty_path_option_is_refused_not_read_as_the_current_folder(tmp_path, monkeypatch, capsys, argv):
    # `--out "$OUT"` with OUT unset: Path("") is ".", and the reports, the schedule's lock and records, the spool
    # were written into the current folder (the metrics were printed instead of written), all said to be fine
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    at = next(i for i, x in enumerate(argv) if not x.strip())
    assert (f"argument {argv[at - 1]}: expected a path, got {argv[at]!r}: an empty path names no file or folder"
            in capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
