"""Reports: papermill executes a notebook, the HTML is self-contained, runs are archived, failures name the cell."""

from __future__ import annotations

import datetime as dt
import json
import re

import nbformat
import polars as pl
import pytest

import workbench as wb
from workbench.reports import publish as reports


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('db = ""\nstart = None\nend = None\nperiod = None\nout_dir = None\nconfig = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[nbformat.v4.new_code_cell(c) for c in cells]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    monkeypatch.setenv(reports.NOTEBOOKS_ENV, str(nbdir))
    dbp = tmp_path / "w.duckdb"
    db = wb.connect(dbp)
    rows = [(f"c{i}", dt.datetime(2026, 11, 16 + i % 7, 9 + i % 8), "chat" if i % 3 else "code", "error" if i % 5 == 0 else "ok")
            for i in range(70)]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, ?, ?, ?)", rows)
    db.close()
    _notebook(
        nbdir / "mini.ipynb",
        "import workbench as wb\nfrom workbench.reports import charts\ncharts.use_svg()\nrep = wb.Report(db, start=start, end=end, out_dir=out_dir)",
        "err = rep.metric('error_rate', by=['feature'], period='day')",
        "charts.chart(err)",
        "rep.save()",
    )
    _notebook(nbdir / "broken.ipynb", "x = 1", "raise ValueError('boom in the third cell')")
    return tmp_path, dbp


def test_report_publishes_offline_html_metrics_and_params(env):
    tmp, dbp = env
    out = reports.run_report("mini", db=dbp, out=tmp / "reports")
    assert out == tmp / "reports" / "mini" / "2026-W47"  # the ISO week of the newest call (2026-11-22)
    html = (out / "report.html").read_text()
    assert "<svg" in html or "data:image/svg+xml;base64," in html  # the chart itself, embedded
    assert not re.search(r"<(script|link)[^>]*(src|href)=\"https?:", html)
    assert "cdnjs" not in html and "import(\"http" not in html
    m = pl.read_parquet(out / "metrics.parquet")
    assert set(m["suite_metric"]) == {"error_rate"}
    # 70 calls, every 5th an error: 14 errors; the parquet holds the same numbers the metric computes
    assert m["n"].sum() == 70
    assert round(float((m["value"] * m["n"]).sum())) == 14
    params = json.loads((out / "params.json").read_text())
    assert params["start"] == "2026-11-16T00:00:00" and params["end"] == "2026-11-23T00:00:00"
    assert "error_rate" in params["definitions"]
    executed = nbformat.read(out / "report.ipynb", as_version=4)
    assert executed.metadata["papermill"]["parameters"]["period"] == "2026-W47"


def test_second_run_archives_the_first_and_force_replaces(env):
    tmp, dbp = env
    out = reports.run_report("mini", db=dbp, out=tmp / "reports", period="2026-11-16..2026-11-18")
    first = json.loads((out / "params.json").read_text())["executed_at"]
    first_run = json.loads((out / "params.json").read_text())["run_id"]
    reports.run_report("mini", db=dbp, out=tmp / "reports", period="2026-11-16..2026-11-18")
    archived = list((out / "archive").iterdir())
    assert len(archived) == 1 and (archived[0] / "report.html").exists()
    assert archived[0].name == first.replace("-", "").replace(":", "") + "-" + first_run  # <executed_at>-<run id>
    assert json.loads((archived[0] / "params.json").read_text())["executed_at"] == first
    reports.run_report("mini", db=dbp, out=tmp / "reports", period="2026-11-16..2026-11-18", force=True)
    assert len(list((out / "archive").iterdir())) == 1


def test_failing_cell_is_named_and_partial_notebook_kept(env):
    tmp, dbp = env
    with pytest.raises(reports.ReportError, match=r"cell 3 failed: ValueError: boom in the third cell") as err:
        reports.run_report("broken", db=dbp, out=tmp / "reports", period="2026-11-20")
    # nothing is published for the period; the partial notebook is kept aside, named in the message
    assert not (tmp / "reports" / "broken" / "2026-11-20").exists()
    kept = list((tmp / "reports" / "broken" / ".failed").glob("2026-11-20~*.ipynb"))
    assert len(kept) == 1 and str(kept[0]) in str(err.value)
    assert not [p for p in (tmp / "reports" / "broken").iterdir() if p.name.endswith("~build")]


def test_unknown_report_and_bad_period(env):
    tmp, dbp = env
    with pytest.raises(wb.errors.UnknownNameError, match=r"no report 'nope' \(known: broken, mini\)"):
        reports.run_report("nope", db=dbp, out=tmp)
    with pytest.raises(ValueError, match="cannot read 'W47'"):
        reports.resolve_period("W47")
    with pytest.raises(ValueError, match="ends before it starts"):
        reports.resolve_period("2026-11-20..2026-11-01")


def test_a_period_in_the_future_is_refused_even_with_a_row_dated_in_it(env):
    # a row dated in 2031 (a client's wrong clock, written without ingest) had the week of 2031 published, exit 0
    tmp, dbp = env
    with wb.connect(dbp) as db:
        db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('f', '2031-03-04 10:00', 'chat', 'ok')")
    with pytest.raises(wb.errors.ReportError, match=r"no data for 2031-W10: it starts in the future"):
        reports.run_report("mini", db=dbp, out=tmp, period="2031-W10")
    assert not (tmp / "mini" / "2031-W10").exists()


def test_a_day_without_data_is_told_the_newest_day_not_its_month(env):
    # "no data for 2026-11-24; the newest data is in 2026-11": a day read as a month, which says nothing of the day
    tmp, dbp = env
    with pytest.raises(wb.errors.ReportError, match=r"no data for 2026-11-24; the newest data is in 2026-11-22$"):
        reports.run_report("mini", db=dbp, out=tmp, period="2026-11-24")
    assert reports.same_kind("2026-11-01..2026-11-15", dt.datetime(2026, 11, 22, 9)) == "2026-11-22"


def test_relative_periods_for_cron():
    today = dt.date(2026, 11, 24)  # a Tuesday
    assert reports.resolve_period("last-week", today=today)[2] == "2026-W47"
    assert reports.resolve_period("yesterday", today=today)[2] == "2026-11-23"
    assert reports.resolve_period("last-month", today=today)[2] == "2026-10"
    assert reports.resolve_period("2026-12")[1] == dt.datetime(2027, 1, 1)


def test_scorecard_targets_and_status(tmp_path):
    db = wb.connect(":memory:")
    week = dt.datetime(2026, 11, 2)
    rows = [(f"a{i}", week + dt.timedelta(days=i % 7), "chat", "error" if i < 2 else "ok") for i in range(10)]  # 20% now
    rows += [(f"b{i}", week - dt.timedelta(days=7 - i % 7), "chat", "error" if i < 1 else "ok") for i in range(10)]  # 10% before
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, ?, ?, ?)", rows)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[targets.chat]\nerror_rate_max = 0.15\n")
    rep = reports.Report(db, start="2026-11-02", end="2026-11-09")
    card = reports.scorecard(rep, ["error_rate"], config=cfg)
    row = card.row(0, named=True)
    assert (row["value"], row["previous"], row["target"], row["status"]) == (0.2, 0.1, 0.15, "missed")
    assert row["change"] == pytest.approx(0.1) and row["relative_change"] == pytest.approx(1.0)
    cfg.write_text("[targets.chat]\nerror_rate = 0.15\n")
    with pytest.raises(wb.config.ConfigError, match="must end in _max or _min"):
        reports.scorecard(rep, ["error_rate"], config=cfg)


def test_on_which_data_names_the_files_of_the_window_s_rows_and_the_scores_behind_the_rates():
    # it listed every file ever loaded into a table (a file of another week, one of zero rows inserted), merged two
    # calls.csv of different folders into one name, and counted evals by their scoring time: the human labels shown,
    # the detector's scores behind the hallucination rate missing
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into ingest_runs (run_id, source_path, content_hash, target_table) values "
                      "('r1', '/d/day1/calls.csv', 'h1', 'calls'), ('r2', '/d/day2/calls.csv', 'h2', 'calls'), "
                      "('r3', '/d/old.csv', 'h3', 'calls'), ('r4', '/d/copy.csv', 'h1', 'calls'), "
                      "('r5', '/d/labels.jsonl', 'h5', 'evals')")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, ingest_run_id) values "
                      "('a', '2026-11-17', 'chat', 'ok', 'r1'), ('b', '2026-11-18', 'chat', 'ok', 'r2'), "
                      "('c', '2026-11-19', 'chat', 'ok', 'r2'), ('d', '2026-11-02', 'chat', 'ok', 'r3')")
    db.duckdb.execute("insert into evals (call_id, metric, evaluator, evaluator_version, ts, label, ingest_run_id) "
                      "values ('a', 'hallucination_score', 'support', '2.8.0', '2026-12-06', 'supported', null), "
                      "('b', 'hallucination_score', 'support', '2.8.0', '2026-12-06', 'hallucinated', null), "
                      "('d', 'hallucination_label', 'human', 'v1', '2026-11-18', 'supported', 'r5')")
    got = {r["table"]: (r["rows"], r["files"]) for r in
           reports.Report(db, start="2026-11-16", end="2026-11-23").data_summary().iter_rows(named=True)}
    assert got["calls"] == (3, ["/d/day2/calls.csv (2 rows)", "/d/day1/calls.csv (1 row)"])
    # the two scores of the week's answers, dated by their calls; the label of a call of 2026-11-02 is not the week's
    assert got["evals"] == (2, ["scored by support 2.8.0 (2 rows)"])
    # a score of an answer with neither a call nor a time of its own is undated (answer_time), as the hallucination
    # metrics read it: not the window's because it was scored in it (it was dated by its scoring time)
    db.duckdb.execute("insert into evals (call_id, metric, evaluator, evaluator_version, ts, label) values "
                      "('nowhere', 'hallucination_score', 'support', '2.8.0', '2026-11-20', 'supported')")
    got = {r["table"]: (r["rows"], r["files"]) for r in
           reports.Report(db, start="2026-11-16", end="2026-11-23").data_summary().iter_rows(named=True)}
    assert got["evals"] == (2, ["scored by support 2.8.0 (2 rows)"])


def _two_weeks(tmp_path, targets: str):
    """chat and search busy and healthy in W48; in W49 chat is fast but fails half its calls, search has no call."""
    db = wb.connect(":memory:")
    rows = []
    for i in range(400):
        ts = dt.datetime(2026, 11, 23, 0, 10) + dt.timedelta(minutes=25 * i)
        rows += [(f"p{i}", ts, "chat", "ok", 300, f"u{i % 80}"), (f"q{i}", ts, "search", "ok", 300, f"v{i % 80}")]
        rows.append((f"c{i}", ts + dt.timedelta(days=7), "chat", "error" if i % 2 else "ok", 300, f"u{i % 80}"))
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms, user_id) values "
                          "(?, ?, ?, ?, ?, ?)", rows)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(targets)
    return reports.Report(db, start="2026-11-30", end="2026-12-07", config=cfg)


HEADLINE = ["hallucination_rate", "latency_p95_ms", "cost_per_success_usd", "wau_count"]


def test_a_feature_with_targets_and_no_call_shows_its_targets_as_no_data_never_all_clear(tmp_path):
    # search broke (or its logging did): it vanished from the scorecard and the summary read "All clear: 2 of 3"
    from workbench.reports.attention import attention

    rep = _two_weeks(tmp_path, "[targets.chat]\nlatency_p95_ms_max = 1000\n"
                               "[targets.search]\nlatency_p95_ms_max = 1000\nwau_count_min = 50\n")
    card = reports.scorecard(rep, HEADLINE)
    got = {(r["feature"], r["metric"]): (r["value"], r["status"]) for r in card.iter_rows(named=True)}
    assert got[("search", "latency_p95_ms")] == (None, "no data")
    assert got[("search", "wau_count")][1] == "no data"
    prev = card.filter((pl.col("feature") == "search") & (pl.col("metric") == "latency_p95_ms"))["previous"].to_list()
    assert prev == [300.0]  # the week before is shown: it stopped
    said = attention(rep, card, slo=False, budgets=False)
    text = " ".join(said.sentences)
    assert not any(s.startswith("All clear") for s in said.sentences), text
    assert any(sev == "alert" and s.startswith("Search:") and "no data" in s for sev, s in said.items), said.items


def test_a_target_on_a_metric_beyond_the_headline_four_is_evaluated(tmp_path):
    # error_rate_max = 0.01 with chat at 50% errors was accepted and never evaluated
    from workbench.reports.attention import attention

    rep = _two_weeks(tmp_path, "[targets.chat]\nlatency_p95_ms_max = 1000\nerror_rate_max = 0.01\n")
    card = reports.scorecard(rep, HEADLINE)
    row = card.filter(pl.col("metric") == "error_rate").row(0, named=True)
    assert (row["feature"], row["value"], row["previous"], row["target"], row["status"]) == ("chat", 0.5, 0.0, 0.01, "missed")
    # the same value the report's own metric gives (one definition)
    assert rep.metric("error_rate", by=["feature"], period="all").filter(pl.col("feature") == "chat")["value"][0] == 0.5
    said = attention(rep, card, slo=False, budgets=False)
    assert any(s.startswith("Chat: error rate 50.0% missed its target (at most 1.0%)") for s in said.sentences), said.sentences
    # a metric nobody targets is not added to the scorecard (hallucination_rate: no answer scored, no row)
    assert set(card["metric"]) == {"latency_p95_ms", "cost_per_success_usd", "wau_count", "error_rate"}


def test_all_clear_counts_the_targets_not_the_rows_without_one(tmp_path):
    from workbench.reports.attention import attention

    rep = _two_weeks(tmp_path, "[targets.chat]\nlatency_p95_ms_max = 1000\nwau_count_min = 50\n")
    card = reports.scorecard(rep, HEADLINE)
    said = attention(rep, card, slo=False, budgets=False)
    assert said.sentences[0] == "All clear: 2 of 2 scorecard targets met, no SLO alert firing.", said.sentences
    view = reports.scorecard_view(rep, card)
    assert "0 of 2 targets missed" in view.as_raw_html(), "subtitle counts the rows without a target"


def test_every_target_the_config_accepts_is_evaluated_on_the_demo(small_demo, tmp_path):
    """Whatever registered metric a target names, the scorecard computes it for the feature (met, missed or no data)."""
    from workbench.metrics.core import contracts

    lines = []
    for name, c in sorted(contracts().items()):
        bound = {"lower": "max", "higher": "min"}.get(c.direction)
        if bound:
            lines.append(f"{name}_{bound} = 1")
    cfg = tmp_path / "all.toml"
    accepted = []
    for line in lines:  # keep those the config accepts (the refused ones say why: test_settings)
        cfg.write_text("[targets.support_assistant]\n" + line + "\n")
        try:
            reports.targets(cfg)
        except wb.config.ConfigError:
            continue
        accepted.append(line)
    assert len(accepted) >= 40, accepted
    cfg.write_text("[targets.support_assistant]\n" + "\n".join(accepted) + "\n")
    with wb.connect(small_demo) as db:  # closed after: a read-only connection left open locks the shared file
        rep = reports.Report(db, start="2026-11-16", end="2026-11-23", config=cfg)
        card = reports.scorecard(rep, HEADLINE)
    targeted = card.filter(pl.col("target").is_not_null())
    assert targeted.height == len(accepted) and set(targeted["feature"]) == {"support_assistant"}
    assert set(targeted["status"]) <= {"met", "missed", "no data"}


def test_a_target_no_report_can_evaluate_stops_the_run_before_the_kernel(env):
    tmp, dbp = env
    cfg = tmp / "workbench.toml"
    cfg.write_text("[targets.chat]\nhallucinaton_rate_max = 0.05\n")
    with pytest.raises(wb.config.ConfigError, match=r"\[targets\.chat\]: hallucinaton_rate_max: .*did you mean 'hallucination_rate'"):
        reports.run_report("mini", db=dbp, out=tmp, period="2026-W47", config=cfg)
    assert not (tmp / "mini" / "2026-W47").exists()


def test_the_config_a_report_read_is_recorded_in_its_params(env, monkeypatch):
    """With no config named, the report reads ./workbench.toml; params.json names that file, not null."""
    tmp, dbp = env
    project = tmp / "project"
    project.mkdir()
    (project / "workbench.toml").write_text("[targets.chat]\nerror_rate_max = 0.5\n")
    monkeypatch.chdir(project)
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    out = reports.run_report("mini", db=dbp, out=tmp / "reports", period="2026-W47")
    params = json.loads((out / "params.json").read_text())["parameters"]
    assert params["config"] == str((project / "workbench.toml").resolve())


def test_report_command_takes_a_config(env, monkeypatch, capsys):
    """`workbench report NAME --config FILE` (as slo, budget, schedule): read, checked before the kernel, recorded."""
    from workbench import cli

    tmp, dbp = env
    monkeypatch.chdir(tmp)
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    bad = tmp / "elsewhere" / "bad.toml"
    bad.parent.mkdir()
    bad.write_text("[targets.chat]\nerror_rat_max = 0.5\n")
    args = ["report", "mini", "--db", str(dbp), "--out", str(tmp / "reports"), "--period", "2026-W47"]
    assert cli.main([*args, "--config", str(bad)]) != 0
    assert "did you mean 'error_rate'" in capsys.readouterr().err
    assert not (tmp / "reports" / "mini" / "2026-W47").exists()
    good = tmp / "it's {period} \"q\"\n$HOME" / "good.toml"  # a folder name papermill and a shell would misread
    good.parent.mkdir()
    good.write_text("[targets.chat]\nerror_rate_max = 0.5\n")
    assert cli.main([*args, "--config", str(good)]) == 0
    params = json.loads((tmp / "reports" / "mini" / "2026-W47" / "params.json").read_text())["parameters"]
    assert params["config"] == str(good.resolve())


def test_an_slo_with_no_call_in_its_window_is_not_measured_never_all_clear(tmp_path):
    # [slo.serach] (a typo) matched no call: `workbench slo` warned on standard error, but a report ignores warnings,
    # its SLO table showed n = 0 and the attention list opened "All clear: ... no SLO alert firing"
    from workbench.reports.attention import attention

    slo = "[slo.{}]\nlatency_ms = 1000\nlatency_target = 0.95\n"
    rep = _two_weeks(tmp_path, slo.format("chat") + slo.format("serach"))
    said = attention(rep, slo=True, budgets=False)
    assert not any(s.startswith("All clear") for s in said.sentences), said.sentences
    assert [s for sev, s in said.items if sev == "alert"] == [
        "SLO not measured: Serach latency: no call in its 30-day window to Mon 07 Dec 2026 00:00 (a misspelt or "
        "renamed feature, or calls that stopped, is never measured and never fires)."]


def test_an_slo_alert_sentence_says_which_alert_fires(tmp_path):
    """The scorecard read 'SLO alert firing: Chat availability (ticket)' while the latency report's burn-rate table
    said 'no' on every window: the SLO fired because its 30-day budget was spent, which the sentence did not say."""
    from workbench.reports.attention import attention

    db = wb.connect(":memory:")
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, 'chat', ?, 300)",
                          [(f"c{i}", dt.datetime(2026, 11, 20) + dt.timedelta(hours=i), "error" if i % 2 else "ok")
                           for i in range(100)])
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[slo.chat]\navailability_target = 0.99\n")
    rep = reports.Report(db, start="2026-11-24", end="2026-12-01", config=cfg)
    alerts = [s for sev, s in attention(rep, slo=True, budgets=False).items if s.startswith("SLO")]
    assert alerts == ["SLO alert firing: Chat availability (ticket: budget spent 30d); error budget left -4,900%."]


def test_a_feature_that_records_no_suggestion_is_not_read_as_none_accepted(tmp_path):
    """The adoption report read 'Suggestions accepted: Support assistant 0.0% (0.0% – 0.1%), Summariser 0.0%,
    Agent 0.0%' above a funnel where 79% of the support assistant's users accepted a suggestion: those features
    record no kept-suggestion feedback (accept, edit, copy) at all, so every call was counted as a suggestion
    turned down. The section shows the features that record suggestions; one of them with none kept this week
    still reads 0%; with none at all, a sentence says so."""
    from workbench.config import Settings

    db = wb.connect(tmp_path / "s.duckdb")
    calls = [(f"{f}{i}", dt.datetime(2026, 11, 16 + i % 7, 10), f, "ok") for f in ("code", "chat", "quiet")
             for i in range(20)]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, ?, ?, ?)", calls)
    feedback = [(f"f{i}", f"code{i}", dt.datetime(2026, 11, 16 + i % 7, 11), "accept") for i in range(0, 20, 4)]
    feedback += [("t1", "chat1", dt.datetime(2026, 11, 17, 11), "thumbs"),
                 ("q1", "quiet_old", dt.datetime(2026, 11, 2, 11), "copy")]
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
                      "('quiet_old', '2026-11-02 10:00', 'quiet', 'ok')")
    db.duckdb.executemany("insert into feedback (feedback_id, call_id, ts, kind) values (?, ?, ?, ?)", feedback)
    rep = wb.Report(db, start="2026-11-16", end="2026-11-23", config=Settings())
    shown = rep.suggestions()
    assert sorted(shown.select("feature", "value", "n").rows()) == [("code", 0.25, 20), ("quiet", 0.0, 20)]
    none = wb.Report(db, start="2026-11-16", end="2026-11-23", config=Settings())
    db.duckdb.execute("delete from feedback where kind <> 'thumbs'")
    assert "No suggestion" in repr(none.suggestions())


def test_a_report_shows_what_its_metrics_left_out_as_data_notes(tmp_path):
    """A report silenced every warning: a score without a verdict left out of the hallucination rate, an incident
    resolved before it started left out of MTTR, an agreement with no pair showed only as a lower n (or none). The
    report keeps them, once each, and its Data notes list names the metric, what was left out and why."""
    from workbench.config import Settings

    db = wb.connect(":memory:")
    db.duckdb.execute("""
      insert into calls (call_id, ts, feature, status) values ('a', '2026-11-16 10:00', 'chat', 'ok'),
        ('b', '2026-11-17 10:00', 'chat', 'ok'), ('c', '2026-11-18 10:00', 'chat', 'ok');
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version) values
        ('a', 'hallucination_score', 0.9, 'hallucinated', 'j', '1'), ('b', 'hallucination_score', 0.1, 'supported', 'j', '1'),
        ('c', 'hallucination_score', 0.7, null, 'j', '1');
      insert into incidents (incident_id, feature, started_at, detected_at, mitigated_at, resolved_at) values
        ('i1', 'chat', '2026-11-17 10:00', '2026-11-17 10:30', '2026-11-17 11:00', '2026-11-17 12:00'),
        ('i2', 'chat', '2026-11-18 10:00', '2026-11-18 10:30', '2026-11-18 11:00', '2026-11-18 09:00')""")
    rep = reports.Report(db, start="2026-11-16", end="2026-11-23", config=Settings())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes to the notebook's standard error
        for _ in range(2):  # a metric shown twice (a chart and the scorecard) is noted once
            rate = rep.metric("hallucination_rate", by=["feature"], period="all", evaluator="j")
        mttr = rep.metric("mttr_minutes", by=["feature"], period="all")
        rep.call("agreement", evaluator="j")
    assert rate.select("value", "n").row(0) == (0.5, 2) and mttr["n"].item() == 1
    assert rep.notes == [
        ("hallucination_rate", "1 scored answer has no label hallucinated or supported (e.g. call 'c', label null): "
                               "left out of the rate; hallucination_score counts it"),
        ("mttr_minutes", "1 incident with resolved_at before started_at is left out (i2)"),
        ("agreement", "no answer scored by both 'j' and 'human'"),
    ]
    html = rep.data_notes().data
    assert html.startswith("<h2>Data notes</h2>")
    assert ("<li><strong>Hallucination rate</strong>: 1 scored answer has no label hallucinated or supported (e.g. "
            "call &#x27;c&#x27;, label null): left out of the rate; hallucination_score counts it</li>") in html
    empty = reports.Report(db, start="2026-11-16", end="2026-11-23", config=Settings())
    assert "No data notes: no metric in this report left a row out or had a group without data." in \
        empty.data_notes().data


def test_a_configured_feature_with_no_call_in_the_period_is_said_once_in_the_data_notes(tmp_path):
    """[reports] feature = "search" and search had no call in the week: retention, lifecycle, hallucination by prompt
    version and model and the what-if showed "–", 0 or "no data in this period" for search and nothing said why (the
    multi-feature charts fell back to chat, which had the calls). The data notes say so once, and name chat."""
    rep = _two_weeks(tmp_path, '[reports]\nfeature = "search"\n')
    assert rep.features() == ["chat"]
    assert rep.feature == "search" and rep.feature == "search"  # the team's choice is kept, read twice
    assert rep.notes == [("feature", "[reports] feature = 'search' in workbench.toml had no call in this period, so "
                                     "its one-feature sections are empty; the features with calls: chat")]
    assert "had no call in this period" in rep.data_notes().data
    busy = _two_weeks(tmp_path, '[reports]\nfeature = "chat"\n')
    assert busy.feature == "chat" and busy.notes == []


def test_the_total_change_of_a_feature_says_it_leaves_out_the_rows_whose_change_is_unknown(tmp_path):
    """The cost report read "the rows sum to the total change" above coding_assistant's rows claude-sonnet-4 +$0.43,
    o4-mini +$0.12, acme-llama-ft – and a total change of +$0.54: the unpriced model's change is unknown and the
    total is of the known rows. The data notes say so and count the rows left out."""
    from workbench.config import Settings

    db = wb.connect(":memory:")
    rows = [(f"{m}{w}{i}", dt.datetime(2026, 11, 10 + 7 * w, 9 + i), "chat", "ok", p, m, c, 100, 20)
            for w in (0, 1) for i in range(2 + w)
            for p, m, c in (("openai", "big", 1.0), ("self", "local", None))]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, provider, model, cost_usd, input_tokens, "
                          "output_tokens) values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    rep = reports.Report(db, start="2026-11-16", end="2026-11-23", config=Settings())
    df = rep.metric("cost_change_usd", by=["feature"], period="week", start=rep.since(weeks=2))
    got = {r["model"]: (r["value"], r["total_change_usd"]) for r in df.iter_rows(named=True)}
    assert got == {"big": (1.0, 1.0), "local": (None, 1.0)}
    said = [t for n, t in rep.notes if n == "cost_change_usd" and "total_change_usd" in t]
    assert len(said) == 1 and said[0].startswith(
        "1 row has an unknown change (all its calls unpriced in a period compared, e.g. feature='chat', "
        "model='local'): left out of total_change_usd, the change of the rows whose change is known"), rep.notes
