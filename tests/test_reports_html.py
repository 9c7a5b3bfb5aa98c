"""What a reader sees: formatted tables (no raw frame), first screen, navigation, no data no report, in a browser."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess

import nbformat
import polars as pl
import pytest

import workbench as wb
from workbench.reports import publish as reports
from workbench.reports.index import build_index
from workbench.reports.tables import table
from workbench.reports.units import fmt

DTYPE_ROW = re.compile(r"\b(str|f64|i64|datetime\[μs\]|bool)\b\s*(┆|</t[dh]>)")


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('db = ""\nstart = None\nend = None\nperiod = None\nout_dir = None\nconfig = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[nbformat.v4.new_code_cell(c) for c in cells]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def mini(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    monkeypatch.setenv(reports.NOTEBOOKS_ENV, str(nbdir))
    dbp = tmp_path / "w.duckdb"
    db = wb.connect(dbp)
    rows = [(f"c{i}", dt.datetime(2026, 11, 9) + dt.timedelta(hours=5 * i), "chat", "error" if i % 5 == 0 else "ok", 1500.0 + i)
            for i in range(60)]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, ?, ?, ?)", rows)
    db.close()
    _notebook(nbdir / "mini.ipynb",
              "import workbench as wb\nfrom workbench import reports\nreports.setup_display()\n"
              "rep = wb.Report(db, start=start, end=end, out_dir=out_dir, title='Mini', period=period)",
              "rep.header()", "rep.metric('error_rate', by=['feature'], period='day')", "rep.save()")
    return tmp_path, dbp


def test_units_hand_computed():
    assert fmt(0.160985, "hallucination_rate") == "16.1%"
    assert fmt(0.02602, "cost_per_success_usd") == "$0.026"
    assert fmt(10646.375, "latency_p95_ms") == "10.6 s"
    assert fmt(163.285714, "wau_count") == "163"
    assert fmt(125, "mttr_minutes") == "2 h 5 min"
    assert fmt(12345.0, "calls_count") == "12,345"


def test_budget_sentence_reads_money_as_money():
    from workbench.reports.attention import budget_sentence

    r = {"feature": "agent", "spend_usd": 1234.5, "budget_usd": 1000.0, "share_used": 1.2345,
         "forecast_usd": 1910.0, "status": "over"}
    assert budget_sentence(r) == ("Budget at risk: Agent spent $1,234 of $1,000 (123%), forecast $1,910 by month "
                                  "end (over).")


def test_a_budget_of_unpriced_calls_is_said_unknown_not_on_track(tmp_path):
    """A month of unpriced calls read 'Budget at risk: ... spent $0.00 ... (ok)' nowhere and 'budgets on track' at the
    top: the report's attention list says the spend is unknown, and does not say the budgets are on track."""
    from workbench.reports.attention import attention, budget_sentence

    r = {"feature": "billing_helper", "spend_usd": 0.0, "budget_usd": 10.0, "share_used": 0.0, "forecast_usd": 0.0,
         "status": "unpriced", "unpriced_count": 8, "unpriced_rate": 1.0}
    assert budget_sentence(r) == ("Budget unknown: Billing helper has 8 unpriced calls this month (100% of its calls); "
                                  "it spent at least $0.00 of $10.00 (0.0%) (unpriced).")
    r = {"feature": "agent", "spend_usd": 1234.5, "budget_usd": 1000.0, "share_used": 1.2345, "forecast_usd": 1910.0,
         "status": "over", "unpriced_count": 3, "unpriced_rate": 0.01}
    assert budget_sentence(r) == ("Budget at risk: Agent spent at least $1,234 of $1,000 (123%), and 3 unpriced calls "
                                  "not counted, forecast $1,910 by month end (over).")
    p = tmp_path / "workbench.toml"
    p.write_text("[budget.billing_helper]\nmonthly_usd = 10\n")
    db = wb.connect(":memory:", config=p)
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, model, input_tokens, output_tokens) values "
                      "('a', '2026-11-20', 'billing_helper', 'ok', 'mystery', 1000, 100)")
    att = attention(wb.Report(db, start="2026-11-16", end="2026-11-23"), slo=False)
    assert ("warn", "Budget unknown: Billing helper has 1 unpriced calls this month (100% of its calls); it spent at "
                    "least $0.00 of $10.00 (0.0%) (unpriced).") in att.items
    assert not any("budgets on track" in s for s in att.sentences)


def test_a_budget_month_with_no_call_is_said_not_measured_and_a_quiet_feature_is_on_track(tmp_path):
    """budget_status says 'no data' for a month no call reached and 'no calls' for a feature quiet in a month other
    calls reached: the attention list read both as 'Budget at risk: ... spent $0.00 ...'. The first is a budget not
    measured (never 'on track'), the second is no risk at all."""
    from workbench.reports.attention import attention, budget_sentence

    r = {"feature": "chat", "spend_usd": 0.0, "budget_usd": 100.0, "share_used": 0.0, "forecast_usd": 0.0,
         "status": "no data", "unpriced_count": 0, "unpriced_rate": None}
    assert budget_sentence(r) == ("Budget not measured: Chat: no call of any feature this month, so nothing was spent "
                                  "or measured (calls that stopped arriving?) (no data).")
    p = tmp_path / "workbench.toml"
    p.write_text("[budget.chat]\nmonthly_usd = 100\n[budget.search]\nmonthly_usd = 100\n")
    db = wb.connect(":memory:", config=p)
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, cost_usd) values "
                      "('a', '2026-11-20', 'chat', 'ok', 1.0), ('b', '2026-10-20', 'search', 'ok', 1.0),"
                      "('c', '2026-11-30 12:00', 'chat', 'ok', 1.0)")
    att = attention(wb.Report(db, start="2026-11-16", end="2026-11-23"), slo=False)  # search quiet in November
    assert not [s for s in att.sentences if "Budget" in s] and any("budgets on track" in s for s in att.sentences)
    att = attention(wb.Report(db, start="2026-11-30", end="2026-12-07", period="week"), slo=False)  # December: none
    assert ("warn", "Budget not measured: Chat: no call of any feature this month, so nothing was spent or measured "
                    "(calls that stopped arriving?) (no data).") in att.items
    assert not any("budgets on track" in s for s in att.sentences)


def test_header_window_is_first_and_last_day():
    assert "Window:</strong> 2026-11-16 to 2026-11-22 (7 days, UTC)" in reports.header_html(
        "Cost", dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 23), "x.duckdb")
    assert "Window:</strong> 2026-11-16 06:30 to 2026-11-16 18:00 UTC (end excluded)" in reports.header_html(
        "Cost", "2026-11-16T06:30:00", "2026-11-16T18:00:00", "x.duckdb")


def test_table_has_no_raw_frame_and_colours_missed_first():
    card = pl.DataFrame({"feature": ["a", "a", "b"], "metric": ["error_rate", "latency_p95_ms", "error_rate"],
                         "value": [0.01, 9000.0, 0.3], "status": ["met", "missed", "missed"],
                         "answer": ["x" * 300, "short", "<script>alert(1)</script>"]})
    h = table(card).as_raw_html()
    assert "shape:" not in h and not DTYPE_ROW.search(h)
    assert "9.0 s" in h and "30.0%" in h and "<details>" in h
    assert "<script>alert" not in h and "&lt;script&gt;" in h
    body = h[h.index("<tbody"):]
    assert body.index("missed") < body.index(">met<")  # missed first
    assert "#fde0dc" in h


def test_published_report_html_is_formatted_titled_and_navigable(mini):
    tmp, dbp = mini
    out = tmp / "reports"
    w46 = reports.run_report("mini", db=dbp, out=out, period="2026-W46")
    w47 = reports.run_report("mini", db=dbp, out=out, period="2026-W47")
    html = (w46 / "report.html").read_text()
    assert "shape:" not in html and not DTYPE_ROW.search(html)
    assert "<title>Mini · 2026-W46</title>" in html
    assert 'href="../2026-W47/report.html"' in html  # the earlier report gained its "next" link
    assert str(dbp) not in html and "w.duckdb" in html  # database by file name only
    assert re.search(r"\d+\.\d%", html)  # the rate as a percentage
    assert json.loads((w47 / "params.json").read_text())["db"] == str(dbp.resolve())  # lineage keeps the path
    index = (out / "index.html").read_text()
    assert index.index("2026-W47") < index.index("2026-W46")
    assert 'href="mini/2026-W47/report.html"' in index


def test_no_data_no_report(mini):
    tmp, dbp = mini
    out = tmp / "reports"
    with pytest.raises(wb.errors.ReportError, match=r"no data for 2026-W48; the newest data is in 2026-W47"):
        reports.run_report("mini", db=dbp, out=out, period="2026-W48")
    assert not (out / "mini" / "2026-W48").exists()
    from workbench.cli import main

    assert main(["report", "mini", "--db", str(dbp), "--out", str(out), "--period", "2030-01"]) == 2


def test_scorecard_first_screen_and_parquet(small_demo, tmp_path):

    # a copy: the report's kernel is another process, and earlier tests of this process may hold the shared file open
    db = tmp_path / "demo.duckdb"
    shutil.copy(small_demo, db)
    out = reports.run_report("scorecard", db=db, out=tmp_path, period="2026-W47")
    html = (out / "report.html").read_text()
    assert "shape:" not in html and not DTYPE_ROW.search(html)
    first = html.index("What needs your attention")
    assert first < html.index(">Scorecard<")  # the sentences come before the table
    assert "missed its target" in html and "<svg" in html and "Weekly scorecard · 2026-W47" in html
    assert 'href="../../latency/2026-W47/report.html#Latency-by-model"' in html
    m = pl.read_parquet(out / "metrics.parquet")
    card = m.filter(pl.col("suite_metric") == "scorecard")
    assert card.height > 0 and {"previous", "target", "status"} <= set(card.columns)
    assert "No description has been provided" not in html
    # the window as a reader says it: first and last day, not midnight timestamps
    assert "00:00:00" not in html[:first] and "2026-11-16 to 2026-11-22" in html[:first]
    build_index(tmp_path)
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not on the PATH: browser rendering not checked (apt-get install chromium)")
    for page in (out / "report.html", tmp_path / "index.html"):
        shot = tmp_path / f"{page.parent.name}.png"
        # network off: every request would go to a dead proxy; console messages go to stderr as ":CONSOLE"
        proc = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                               "--proxy-server=127.0.0.1:9", f"--screenshot={shot}", "--window-size=1280,2000",
                               f"file://{page}"], capture_output=True, text=True, timeout=120)
        assert shot.exists() and shot.stat().st_size > 10_000
        assert ":CONSOLE" not in proc.stderr, proc.stderr


def test_a_bar_without_a_value_says_why():
    """Spend by model: a model nobody prices is 'unpriced: N calls'; the tool and agent spans, which have no model and
    no tokens, have nothing to price, and read as such, not as 'unpriced: 0 calls'."""
    from workbench.reports.charts import compare

    start = dt.datetime(2026, 11, 16)
    df = pl.DataFrame({"model": ["gpt-4o", "acme-llama-ft", None], "period_start": [start] * 3,
                       "metric": ["cost_usd"] * 3, "value": [26.58, None, None], "n": [3107, 0, 0],
                       "lo": [None, None, None], "hi": [None, None, None], "calls_count": [3107, 524, 1174],
                       "unpriced_count": [0, 524, 0]},
                      schema_overrides={"value": pl.Float64, "lo": pl.Float64, "hi": pl.Float64})
    spec = json.dumps(compare(df, by="model").chart.to_dict())
    assert "unpriced: 524 calls" in spec
    assert "unpriced: 0 calls" not in spec and "nothing to price: 1,174 calls without a model or tokens" in spec


def test_every_metric_is_read_better_in_the_direction_its_definition_declares():
    """Reports colour a change green or red, and the attention list calls a group the driver of a worsening, by the
    metric's direction. It was guessed from the name when the registry was not found: 'success' in
    cost_per_success_usd made a rising cost per successful task green, 'adoption' was not known as higher-is-better."""
    from workbench.metrics.core import contracts
    from workbench.reports.units import better, metric_unit

    wrong = {n: (m.direction, metric_unit(n).direction) for n, m in contracts().items()
             if metric_unit(n).direction != m.direction}
    assert wrong == {}
    assert better("cost_per_success_usd", 0.0008) is False and better("cost_per_active_user_usd", -0.1) is True
    assert better("feature_adoption_rate", 0.02) is True and better("incident_count", 1.0) is False
    assert metric_unit("error_rate").kind == "percent" and metric_unit("cost_per_success_usd").kind == "usd"


def test_a_change_of_a_fraction_of_a_cent_is_not_written_as_zero():
    """Cost per successful task $0.0054 -> $0.00543: the scorecard wrote the change '+$0.0000', in red."""
    assert fmt(0.00003, "cost_per_success_usd", signed=True, change=True) == "+$0.000030"
    assert fmt(-0.00000123, "cost_usd", signed=True) == "-$0.0000012"
    assert fmt(0.0054, "cost_per_success_usd") == "$0.0054" and fmt(0.0, "cost_usd") == "$0.00"


def test_the_agreement_measures_are_named_as_a_reader_knows_them():
    from workbench.reports.units import label

    assert [label(k) for k in ("auroc", "kappa", "ece", "brier")] == [
        "AUROC", "Cohen's kappa", "Expected calibration error", "Brier score"]


def test_a_small_rate_s_axis_does_not_repeat_its_tick_labels():
    """Error rates of 0-2.2% ticked every half point read '0%, 1%, 1%, 2%, 2%' with whole percents."""
    from workbench.reports.charts import trend

    days = [dt.datetime(2026, 11, 16) + dt.timedelta(days=i) for i in range(4)]
    df = pl.DataFrame({"feature": ["a"] * 4, "period_start": days, "metric": ["error_rate"] * 4,
                       "value": [0.022, 0.015, 0.0, 0.01], "n": [100] * 4, "lo": [None] * 4, "hi": [None] * 4},
                      schema_overrides={"lo": pl.Float64, "hi": pl.Float64})
    spec = trend(df).chart.to_dict()
    assert json.dumps(spec).count('"format": ".1%"') >= 1 and '".0%"' not in json.dumps(spec["layer"][0])
    big = df.with_columns(pl.col("value") * 20)
    assert '"format": ".0%"' in json.dumps(trend(big).chart.to_dict())


def test_a_small_spend_s_axis_has_the_decimals_its_ticks_need_and_a_count_s_ticks_are_whole():
    # a daily spend of $0.0035-$0.0066 was ticked "$0.00" x5 and "$0.01" x3; a DAU of 3-4 users "0 1 1 2 2 3 3 4 4"
    from workbench.reports.charts import trend

    days = [dt.datetime(2026, 11, 16) + dt.timedelta(days=i) for i in range(4)]
    frame = {"feature": ["a"] * 4, "period_start": days, "n": [10] * 4, "lo": [None] * 4, "hi": [None] * 4}
    spend = pl.DataFrame({**frame, "metric": ["cost_usd"] * 4, "value": [0.0035, 0.0066, 0.005, 0.004]},
                         schema_overrides={"lo": pl.Float64, "hi": pl.Float64})
    axis = trend(spend).chart.to_dict()["layer"][0]["encoding"]["y"]["axis"]
    assert axis["format"] == "$,.4f"
    assert trend(spend.with_columns(pl.col("value") * 1e5)).chart.to_dict()["layer"][0]["encoding"]["y"]["axis"][
        "format"] == "$,.2f"
    dau = pl.DataFrame({**frame, "metric": ["dau_count"] * 4, "value": [3.0, 4.0, 3.0, 4.0]},
                       schema_overrides={"lo": pl.Float64, "hi": pl.Float64})
    axis = trend(dau).chart.to_dict()["layer"][0]["encoding"]["y"]["axis"]
    assert axis["format"] == ",.0f" and axis["tickMinStep"] == 1


def test_a_trend_with_no_value_in_any_period_is_a_sentence_not_an_empty_chart():
    """A week of calls that report no time to first token: every group-period n = 0. It was drawn as an empty chart
    whose axis read 'values from NaN 0NaN to NaN 0NaN'."""
    from workbench.reports.charts import chart, trend

    days = [dt.datetime(2026, 11, 16) + dt.timedelta(days=i) for i in range(3)]
    df = pl.DataFrame({"feature": ["chat"] * 3, "period_start": days, "metric": ["ttft_p95_ms"] * 3,
                       "value": [None] * 3, "n": [0] * 3, "lo": [None] * 3, "hi": [None] * 3},
                      schema_overrides={"value": pl.Float64, "lo": pl.Float64, "hi": pl.Float64})
    for out in (chart(df), trend(df)):
        html = out._repr_html_()
        assert "no value in this period" in html and "NaN" not in html and "<svg" not in html, html
    one = df.with_columns(pl.Series("value", [None, 900.0, None]), pl.Series("n", [0, 40, 0]))
    assert "<svg" in chart(one)._repr_html_() or hasattr(chart(one), "chart")  # one value: still a chart


def test_a_spend_trend_of_unpriced_calls_says_they_are_unpriced_not_that_there_is_nothing():
    """A week whose 1,240 calls all ran on a model without a price read 'Spend: no value in this period (nothing to
    measure in any group)', as if no call had been made: the calls are there, their spend is unknown."""
    from workbench.reports.charts import trend

    days = [dt.datetime(2026, 11, 16) + dt.timedelta(days=i) for i in range(3)]
    df = pl.DataFrame({"feature": ["chat"] * 3, "period_start": days, "metric": ["cost_usd"] * 3,
                       "value": [None] * 3, "n": [0] * 3, "calls_count": [1000, 0, 240],
                       "unpriced_count": [1000, 0, 240]}, schema_overrides={"value": pl.Float64})
    html = trend(df)._repr_html_()
    assert "1,240 calls without a price" in html and "nothing to measure" not in html, html


def test_a_single_wide_row_names_its_feature_and_columns_as_the_same_table_of_several_rows_does():
    """A database with one feature showed its budget as measure / value rows that read 'Feature support_assistant',
    'Share used' and 'Month start 01 Nov 2026 00:00', where the table of several features reads 'Support assistant',
    'Budget used' and 'Sun 01 Nov 2026'."""
    row = {"feature": "support_assistant", "month_start": dt.datetime(2026, 11, 1), "budget_usd": 10.0,
           "spend_usd": 0.098, "share_used": 0.0098, "forecast_share": 0.013, "status": "ok"}
    one = table(pl.DataFrame([row])).as_raw_html()
    two = table(pl.DataFrame([row, {**row, "feature": "agent"}])).as_raw_html()
    for text in ("Support assistant", "Budget used", "Forecast share of budget", "Sun 01 Nov 2026"):
        assert text in two and text in one, text
    assert "support_assistant" not in one and "Share used" not in one and "00:00" not in one


def test_a_table_without_rows_says_so_under_its_headings():
    """A week with answers none of which was scored showed 'Worst offenders' as a row of headings over nothing: read
    as a table that failed to render. An empty table now says it has no row."""
    empty = pl.DataFrame(schema={"ts": pl.Datetime("us"), "feature": pl.Utf8, "score": pl.Float64})
    html = table(empty, title="Worst offenders").as_raw_html()
    assert "Worst offenders" in html and "No row in this period." in html
    assert "No row in this period." not in table(pl.DataFrame({"feature": ["chat"], "score": [0.9]})).as_raw_html()


def test_a_change_table_shows_both_periods_in_the_metric_s_unit_and_small_p_values_as_such():
    """Change in p95 latency: 'Previous 7.8 s' beside 'Current 7,604' (raw milliseconds), and a p-value of 2e-9
    written '0'."""
    frame = pl.DataFrame({"model": ["a", "b"], "metric": ["latency_change_ms"] * 2, "value": [-195.0, 3100.0],
                          "n": [524, 2426], "p_value": [0.995, 2e-9], "previous": [7800.0, 7500.0],
                          "current": [7604.0, 10596.0]})
    html = table(frame).as_raw_html()
    assert "7.6 s" in html and "10.6 s" in html and "7,604" not in html
    assert "&lt;\u00a00.001" in html
    assert fmt(0.0191, "p_value") == "0.019" and fmt(2e-9, "p_value") == "<\u00a00.001"


def test_an_experiment_s_effects_and_means_are_written_in_their_units():
    """The experiments report showed 'Effect -0.278 [-0.305, -0.252]' beside a chart of -27.8%, 'Chance to win 1',
    'Mean control 3,423' (milliseconds) and 'Srm status': relative effects are signed percents, absolute ones and
    means are in the metric's unit, the chance to win a percent, SRM and PSI named as such."""
    decision = pl.DataFrame({"experiment": ["e", "e"], "variant": ["t", "t"], "metric": ["latency_ms", "cost_usd"],
                             "role": ["goal", "goal"], "direction": ["lower is better"] * 2,
                             "effect": [-0.278, -0.952], "lo": [-0.305, -0.957], "hi": [-0.252, -0.946],
                             "p_value": [2e-9, 1e-12], "chance_to_win": [0.9996, 1.0], "srm_status": ["ok", "ok"],
                             "verdict": ["better", "better"], "relative": [True, True]})
    html = table(decision).as_raw_html()
    assert all(s in html for s in ("-27.8%", "-30.5%", "-25.2%", "-95.2%", "100%", "SRM status", "&lt;\u00a00.001"))
    summary = pl.DataFrame({"metric": ["latency_ms", "cost_usd"], "mean_control": [3423.0, 0.096],
                            "mean_variant": [2470.0, 0.005], "effect": [-953.0, -0.091], "lo": [-1000.0, -0.1],
                            "hi": [-900.0, -0.08], "relative": [False, False]})
    html = table(summary).as_raw_html()
    assert all(s in html for s in ("3.4 s", "2.5 s", "-953 ms", "$0.096", "$0.0050", "-$0.091"))
    drift = pl.DataFrame({"column": ["latency_ms"], "psi": [0.014], "drifted": [True]})
    assert "PSI" in table(drift).as_raw_html()
    one = pl.DataFrame({"table": ["answers"], "column": ["answer"], "auc": [0.487], "threshold": [0.55],
                        "drifted": [False], "n_reference": [440], "n_current": [528]})
    html = table(one).as_raw_html()  # one wide row: shown as measure / value rows
    assert "AUC" in html and ">no<" in html and "False" not in html


def test_a_retention_grid_keeps_its_cohorts_in_time_and_its_weeks_in_number_order():
    """Cohort labels ('05 Oct 2026 (81 users)') were sorted as text: 02 Nov, 05 Oct, 09 Nov, 12 Oct...; and week 10
    would come before week 2."""
    import re

    from workbench.reports.charts import retention_grid

    starts = [dt.datetime(2026, 9, 28) + dt.timedelta(weeks=i) for i in range(8)]
    rows = [{"cohort_start": s, "offset": k, "value": 1.0 if k == 0 else 0.5, "cohort_size": 10 + i}
            for i, s in enumerate(starts) for k in range(12 - i)]
    html = retention_grid(pl.DataFrame(rows)).as_raw_html()
    shown = re.findall(r"(\d\d \w\w\w 2026) \(\d+ users\)", html)
    assert shown == [s.strftime("%d %b %Y") for s in starts]
    weeks = [int(w) for w in re.findall(r">Week (\d+)<", html)]
    assert weeks == sorted(weeks) and weeks[-1] == 11


def test_the_lifecycle_bars_are_one_band_per_week_labelled_by_its_first_day():
    from workbench.reports.charts import lifecycle

    weeks = [dt.datetime(2026, 10, 5) + dt.timedelta(weeks=i) for i in range(3)]
    df = pl.DataFrame([{"period_start": w, "status": s, "value": v} for w in weeks
                       for s, v in (("new", 10.0), ("returning", 30.0), ("dormant", -5.0))])
    spec = lifecycle(df).chart.to_dict()
    x = spec["layer"][0]["encoding"]["x"]
    assert x["type"] == "ordinal" and x["sort"] == ["05 Oct", "12 Oct", "19 Oct"]


def test_a_budget_s_burn_rate_is_money_per_day():
    from workbench.reports.units import label

    assert fmt(4.8712, "burn_rate_usd_per_day") == "$4.87" and label("burn_rate_usd_per_day") == "Burn rate ($ per day)"


def test_the_mean_beside_a_median_is_in_the_metric_s_unit():
    """Time to detect: 'Value 12 h 5 min' beside 'Mean 725' (minutes, raw)."""
    frame = pl.DataFrame({"severity": ["sev3"], "metric": ["mttd_minutes"], "value": [725.0], "n": [2],
                          "mean": [725.0]})
    html = table(frame).as_raw_html()
    assert html.count("12 h 5 min") == 2 and ">725<" not in html


def test_a_value_that_rounds_to_zero_has_no_minus_sign():
    """Retained minus churned hallucination rate, -0.00004: shown '-0.0%'."""
    assert fmt(-0.00004, "hallucination_rate") == "0.0%" and fmt(-0.2, "latency_p95_ms") == "0 ms"
    assert fmt(-0.004, "hallucination_rate") == "-0.4%"


def test_a_retention_grid_is_shaded_on_one_scale_for_all_its_cells():
    """Each week's column was shaded on its own range: week 0 (all 100%) white, a 37% cell of week 6 darker than a
    69% cell of week 1. One scale for the grid: the same share, the same shade."""
    import re

    from workbench.reports.tables import grid

    df = pl.DataFrame({"cohort": ["a", "a", "a", "b", "b"], "offset": [0, 1, 2, 0, 1],
                       "value": [1.0, 0.69, 0.37, 1.0, 0.37]})
    html = grid(df, row="cohort", col="offset", metric="retention_rate").as_raw_html()
    cells = re.findall(r'background-color: (#[0-9A-Fa-f]{6})[^>]*>([0-9.]+%)<', html)
    shades = {}
    for c, v in cells:
        shades.setdefault(v, set()).add(c.lower())
    assert shades["100%"] == {"#08519c"}  # the top of the one scale, in both cohorts
    assert len(shades["37.0%"]) == 1  # week 2 of one cohort and week 1 of the other: the same shade


def test_a_long_feature_name_is_folded_in_a_table_and_cut_in_a_group_heading():
    # a 300-character feature name was printed whole in the timeout-rate table, pushing the values off the screen
    long = "f" * 300
    html = table(pl.DataFrame({"feature": [long, "short"], "metric": ["timeout_rate"] * 2, "value": [0.1, 0.2],
                               "n": [10, 10]})).as_raw_html()
    assert "<details><summary>F" + "f" * 89 in html  # folded (in words, as every feature): 90 characters, then the rest
    grouped = pl.DataFrame({"feature": [long, long, "short", "short"], "model": ["a", "b", "a", "b"],
                            "metric": ["timeout_rate"] * 4, "value": [0.1, 0.2, 0.3, 0.4], "n": [10] * 4})
    html = table(grouped).as_raw_html()
    assert long not in html and "F" + "f" * 88 + "…" in html


def _month_over_budget(tmp_path, first, last):
    """A $10 budget and $1 calls every 12 hours from ``first`` to ``last`` (the spend of a month), nothing after."""
    p = tmp_path / "workbench.toml"
    p.write_text("[budget.chat]\nmonthly_usd = 10\n")
    db = wb.connect(tmp_path / "m.duckdb", config=p)
    n = int((last - first) / dt.timedelta(hours=12)) + 1
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, model, cost_usd) values (?, ?, 'chat', 'ok', 'm', 1.0)",
                          [(f"c{i}", first + dt.timedelta(hours=12 * i)) for i in range(n)])
    return db, p, n


@pytest.mark.parametrize("period, month, spent", [
    ("2026-11", dt.datetime(2026, 11, 1), 60.0),        # a monthly report: its end is 2026-12-01 00:00 (excluded)
    ("2026-11-30", dt.datetime(2026, 11, 1), 60.0),     # the last day of a month
    ("2027-W08", dt.datetime(2027, 2, 1), 56.0),        # a week from Mon 22 Feb to Sun 28 Feb 2027 (ends Mon 1 Mar)
])
def test_a_period_ending_on_the_first_shows_its_own_month_s_budget_not_the_next(tmp_path, period, month, spent):
    """The November report showed December's budget ('Month start Tue 01 Dec 2026 ... $0.00 ... ok', and 'All clear
    ... budgets on track') for a month that spent $60 of $10: the reports evaluated the budget at the period's end,
    which is the first instant after it. Each report that shows a budget (attention list, cost and scorecard
    notebooks) shows the month of the period's last instant."""
    from workbench.reports.attention import attention

    start, end, _ = reports.resolve_period(period)
    nxt = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1)
    db, p, n = _month_over_budget(tmp_path, month, nxt - dt.timedelta(hours=12))
    assert n == spent
    rep = wb.Report(db, start=start, end=end, config=p)
    att = attention(rep, slo=False)
    assert ("alert", f"Budget at risk: Chat spent ${spent:.2f} of $10.00 ({spent / 10:.0%}), forecast ${spent:.2f} by "
                     "month end (over).") in att.items
    assert not any("All clear" in s or "budgets on track" in s for s in att.sentences)
    cells = {name: [c.source for c in nbformat.read(reports.notebooks_dir() / f"{name}.ipynb", as_version=4).cells
                    if c.cell_type == "code" and "budget_status" in c.source] for name in reports.available()}
    assert cells["cost"] and cells["scorecard"]
    for name, sources in cells.items():
        for src in sources:  # the notebook's own cell, run with the parameters papermill gives it
            ns = {"rep": wb.Report(db, start=start, end=end, config=p), "db": str(db.path), "start": start.isoformat(),
                  "end": end.isoformat(), "period": period, "config": str(p), "out_dir": None}
            exec(compile(src, f"{name}.ipynb", "exec"), ns)
            shown = ns["rep"].frames[-1][2]
            assert shown.select("feature", "month_start", "spend_usd", "status").rows() == [
                ("chat", month, spent, "over")], (name, src)


def test_a_feature_reads_the_same_in_a_table_a_chart_and_a_sentence():
    # The cost report's table of one row per feature showed the ids (coding_assistant) where its charts and the
    # attention sentences said "Coding assistant"; a model id was capitalised in sentences only ("Gpt-4o-mini").
    from workbench.reports.attention import feature_label
    from workbench.reports.charts import trend

    per_feature = pl.DataFrame({"feature": ["coding_assistant", "agent", None], "metric": ["cost_usd"] * 3,
                                "value": [12.5, 3.0, 1.0], "n": [10, 4, 1]})
    html = table(per_feature).as_raw_html()
    assert "Coding assistant" in html and "Agent" in html and "(none)" in html
    assert "coding_assistant" not in html
    grouped = pl.DataFrame({"feature": ["coding_assistant"] * 2 + ["agent"] * 2,
                            "metric": ["cost_usd", "latency_p95_ms"] * 2, "value": [1.0, 900.0, 2.0, 800.0]})
    html = table(grouped).as_raw_html()
    assert "Coding assistant" in html and "coding_assistant" not in html
    assert table(grouped.rename({"feature": "model"}), group="model").as_raw_html().count("Coding assistant") >= 1
    spec = json.dumps(trend(pl.DataFrame({"feature": ["coding_assistant"] * 2, "period_start": [dt.datetime(2026, 11, 9),
                                         dt.datetime(2026, 11, 10)], "metric": ["cost_usd"] * 2, "value": [1.0, 2.0],
                                         "n": [1, 1], "lo": [None, None], "hi": [None, None]}), color="feature").chart.to_dict())
    assert "Coding assistant" in spec and "coding_assistant" not in spec
    from workbench.reports.units import words

    assert feature_label("coding_assistant") == words("coding_assistant") == "Coding assistant"
    assert feature_label("gpt-4o-mini") == words("gpt-4o-mini") == "gpt-4o-mini"
    assert feature_label(None) == "All features"
    # a hostile feature name, put in words or not, is text in the cell and in a group's heading, never markup
    for hostile in (pl.DataFrame({"feature": ["<script_x>alert(1)</script_x>", "b"], "metric": ["cost_usd"] * 2,
                                  "value": [1.0, 2.0]}),
                    pl.DataFrame({"feature": ["<img_x onerror=alert(1)>"] * 2 + ["b"] * 2,
                                  "metric": ["cost_usd", "latency_p95_ms"] * 2, "value": [1.0, 2.0, 3.0, 4.0]})):
        html = table(hostile).as_raw_html()
        assert "<script" not in html and "<img" not in html and "&lt;" in html


def test_a_budget_whose_feature_no_call_has_is_not_on_track(tmp_path):
    # [budget.chta] (a typo) spent $0.00 for ever: `workbench budget` warned on standard error, a report silences
    # warnings, and its attention list read "All clear: no SLO alert firing, budgets on track."
    from workbench.reports.attention import attention

    p = tmp_path / "workbench.toml"
    p.write_text("[budget.chat]\nmonthly_usd = 100\n[budget.chta]\nmonthly_usd = 10\n")
    db = wb.connect(":memory:", config=p)
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, model, cost_usd) values "
                      "('a', '2026-11-22 20:00', 'chat', 'ok', 'm', 1.0)")
    att = attention(wb.Report(db, start="2026-11-16", end="2026-11-23"), slo=False)
    assert [s for sev, s in att.items if sev == "alert"] == [
        "Budget not measured: Chta: no call has this feature, so it spends $0.00 and never fires (a misspelt or "
        "renamed feature?)."]
    assert not any("All clear" in s or "budgets on track" in s for s in att.sentences), att.sentences


def test_a_column_in_milliseconds_or_minutes_is_not_headed_ms_over_cells_in_seconds():
    """The SLO table read 'Threshold (ms)' over '6.0 s' and 'Observed (ms)' over '5.7 s', the experiment tables
    'Latency (ms)' over '3.4 s': the cells carry their unit (ms, s, h, min), so the header names no other."""
    slo = pl.DataFrame({"feature": ["chat"], "sli": ["latency"], "objective": [0.95], "threshold_ms": [6000.0],
                        "observed_ms": [5664.4], "met": [True]})
    html = table(slo).as_raw_html()
    assert "6.0 s" in html and "5.7 s" in html
    assert "(ms)" not in html and ">Threshold<" in html and ">Observed<" in html
    summary = pl.DataFrame({"metric": ["latency_ms"], "mean_control": [3423.0], "mean_variant": [2470.0],
                            "effect": [-953.0], "lo": [-1000.0], "hi": [-900.0], "relative": [False]})
    html = table(summary).as_raw_html()
    assert "3.4 s" in html and "(ms)" not in html and ">Latency<" in html
    mins = pl.DataFrame({"severity": ["sev2", "sev3"], "detect_minutes": [21.0, 725.0]})
    html = table(mins).as_raw_html()
    assert "12 h 5 min" in html and "(minutes)" not in html


def test_the_retained_minus_churned_difference_of_two_rates_is_in_percentage_points():
    """Adoption's 'Adoption, quality and cost' read 'Hallucination rate -0.3%, 95% interval -9.8% – 7.2%' on the
    retained-churned row: 16.5% minus 16.8% is 0.3 percentage points, not 0.3% of anything (as the scorecard writes
    its changes: '+7.5 pp'). The difference row is a signed change; the segments' own rows stay rates."""
    rows = pl.DataFrame({"feature": ["chat"] * 4, "metric": ["hallucination_rate"] * 3 + ["latency_p50_ms"],
                         "value": [0.168, 0.165, -0.003, 55.0], "n": [95, 345, 440, 3505],
                         "lo": [0.106, 0.130, -0.098, -67.0], "hi": [0.256, 0.208, 0.072, 177.0],
                         "segment": ["churned", "retained", "retained-churned", "retained-churned"],
                         "users": [185, 478, 663, 663]})
    html = table(rows).as_raw_html()
    assert "16.8%" in html and "13.0% – 20.8%" in html
    assert "-0.3 pp" in html and "-9.8 pp – +7.2 pp" in html and "-0.3%" not in html
    assert "+55 ms" in html and "-67 ms – +177 ms" in html


def test_a_model_s_share_of_the_change_in_spend_is_a_percent():
    """The cost report's 'What drove the change' read 'Share of change 0.778' and '1' beside dollar columns: the
    share of the feature's total change each model drove is written as the other shares are, 77.8% and 100%."""
    frame = pl.DataFrame({"feature": ["coding_assistant"] * 2, "model": ["claude-sonnet-4", "o4-mini"],
                          "metric": ["cost_change_usd"] * 2, "value": [3.1476, 0.8985], "n": [4487, 1377],
                          "total_change_usd": [4.0461] * 2, "share_of_change": [0.777938, 0.222062]})
    html = table(frame).as_raw_html()
    assert "77.8%" in html and "22.2%" in html and "0.778" not in html
    assert fmt(1.0, "share_of_change") == "100%"


def test_two_features_with_the_same_target_share_one_line_and_one_label():
    """The scorecard's 'p95 latency by feature, daily' drew 'target Support assistant' and 'target Summariser' at the
    same 7,000 ms, one label over the other ('target Supportmassistant'): one dashed line and one label per value."""
    from workbench.reports.charts import trend

    days = [dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 17)]
    df = pl.DataFrame({"feature": [f for f in ("support_assistant", "summariser", "agent") for _ in days],
                       "period_start": days * 3, "metric": ["latency_p95_ms"] * 6,
                       "value": [6000.0, 6100.0, 6200.0, 6300.0, 5000.0, 5100.0], "n": [10] * 6})
    spec = trend(df, targets={"support_assistant": 7000, "summariser": 7000, "agent": 12000}).chart.to_dict()
    rows = [r for data in spec["datasets"].values() for r in data if "label" in r]
    assert sorted((r["target"], r["label"]) for r in rows) == [
        (7000.0, "target Summariser, Support assistant"), (12000.0, "target Agent")]


def test_a_chart_of_one_feature_draws_that_feature_s_target_only():
    """Only one feature had calls (a new database, or a feature renamed): its line lost its legend, and the chart drew
    the targets of the features not in it ('target Support assistant' at 12%), read as the one line's target."""
    from workbench.reports.charts import trend

    days = [dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 17)]
    df = pl.DataFrame({"feature": ["chat", "chat"], "period_start": days, "metric": ["hallucination_rate"] * 2,
                       "value": [0.30, 0.40], "n": [10, 10]})

    def labels(targets):
        spec = trend(df, targets=targets).chart.to_dict()
        return sorted(r["label"] for data in spec.get("datasets", {}).values() for r in data if "label" in r)

    assert labels({"support_assistant": 0.12, "chat": 0.2}) == ["target Chat"]
    assert labels({"support_assistant": 0.12}) == []
    assert labels(0.25) == ["target"]  # one value: the chart's own target


def test_a_chart_of_one_feature_names_it():
    """The scorecard's trends of a database with one feature read 'Hallucination rate: highest at 35.0%' over a line
    with no legend: which feature it was, the chart did not say (a feature's name is a legend only among several)."""
    from workbench.reports.charts import chart

    days = [dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 17)]
    df = pl.DataFrame({"feature": ["support_assistant"] * 2, "period_start": days, "metric": ["hallucination_rate"] * 2,
                       "value": [0.30, 0.40], "n": [10, 10]})
    fig = chart(df)
    assert fig.chart.to_dict()["title"] == "Hallucination rate, daily: Support assistant"
    assert fig.alt.startswith("Hallucination rate, daily: Support assistant: highest at 40.0%")
    assert chart(df, title="Mine").chart.to_dict()["title"] == "Mine"  # a title given is the title
    two = pl.concat([df, df.with_columns(pl.lit("chat").alias("feature"))])
    assert chart(two).chart.to_dict()["title"] == "Hallucination rate by feature, daily"  # a legend names them


def test_a_count_of_unpriced_calls_in_a_sentence_has_its_thousands_separator():
    """The scorecard's attention list read 'Coding assistant has 1469 unpriced calls this month' above a budget
    table that wrote the same count '1,469'."""
    from workbench.reports.attention import budget_sentence

    r = {"feature": "coding_assistant", "spend_usd": 75.2, "budget_usd": 150.0, "share_used": 0.501,
         "forecast_usd": 102.5, "status": "unpriced", "unpriced_count": 1469, "unpriced_rate": 0.151}
    assert "has 1,469 unpriced calls this month (15.1% of its calls)" in budget_sentence(r)
    r = {**r, "status": "over", "share_used": 1.2}
    assert "and 1,469 unpriced calls not counted" in budget_sentence(r)


def test_an_slo_window_ending_at_midnight_shows_its_last_day_not_the_next():
    """The SLO table of the W47 reports read 'Window start Sat 24 Oct 2026, Window end Mon 23 Nov 2026, Window days
    30' under a header 'Window: 2026-11-16 to 2026-11-22': the window is [24 Oct, 23 Nov), and a day written as its
    end reads as included (31 days, and the Monday after the report's week). Its last day is shown, Sun 22 Nov."""
    frame = pl.DataFrame({"feature": ["chat"], "sli": ["latency"], "window_days": [30],
                          "window_start": [dt.datetime(2026, 10, 24)], "window_end": [dt.datetime(2026, 11, 23)]})
    html = table(frame).as_raw_html()
    assert "Sat 24 Oct 2026" in html and "Sun 22 Nov 2026" in html and "23 Nov" not in html
    at_noon = frame.with_columns(pl.lit(dt.datetime(2026, 11, 23, 12, 30)).alias("window_end"))
    assert "23 Nov 2026 12:30" in table(at_noon).as_raw_html()  # an instant: as it is


def test_a_partial_period_is_drawn_hollow_and_said_so():
    """A weekly trend whose window starts on a Thursday drew its first week (four days of data) as a full week: a
    drop that was only the window's cut. A period the window cuts (partial True) is a hollow point, the legend says
    "Partial period" and so does the caption; a period whose coverage is unknown (null) or whole is drawn as before."""
    from workbench.reports.charts import trend

    weeks = [dt.datetime(2025, 12, 29), dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12)]
    df = pl.DataFrame({"feature": ["chat"] * 3, "period_start": weeks, "metric": ["dau_count"] * 3,
                       "value": [40.0, 100.0, 95.0], "n": [4, 7, 7], "partial": [True, False, None]})
    fig = trend(df)
    layers = fig.to_dict()["layer"]
    hollow, key = [x for x in layers if x["mark"]["type"] == "point"]  # the ringed points, their legend entry
    assert (hollow["mark"]["fill"], hollow["mark"]["filled"], hollow["mark"]["opacity"]) == ("white", False, 1)
    assert key["encoding"]["shape"]["legend"]["title"] is None and key["mark"]["opacity"] == 0
    drawn = fig.to_dict()["datasets"][hollow["data"]["name"]]
    assert [r["period_start"][:10] for r in drawn] == ["2025-12-29"]
    assert {r["_period"] for r in drawn} == {"Partial period"}
    assert fig.alt.endswith(" Hollow points: partial periods (the window covers only part of them): Mon 29 Dec.")
    whole = trend(df.with_columns(pl.lit(False).alias("partial")))
    assert [x["mark"]["type"] for x in whole.to_dict()["layer"]] == ["line"]
    assert "Hollow" not in whole.alt


def test_a_partial_week_of_the_lifecycle_chart_is_paler_and_labelled():
    """The weekly lifecycle bars of a monthly report started on a Tuesday: its first week, six days of it, read as
    fewer users than the rest. A week the window cuts is paler, labelled '(partial)' and named in the caption."""
    from workbench.reports.charts import lifecycle

    weeks = [dt.datetime(2026, 11, 16)] * 2 + [dt.datetime(2026, 11, 23)] * 2
    df = pl.DataFrame({"period_start": weeks, "status": ["new", "dormant"] * 2, "value": [5.0, -2.0, 12.0, -3.0],
                       "partial": [True, True, False, False]})
    fig = lifecycle(df)
    spec = fig.to_dict()
    assert spec["layer"][0]["encoding"]["opacity"]["value"] == 1.0
    assert spec["layer"][0]["encoding"]["x"]["sort"] == ["16 Nov (partial)", "23 Nov"]
    assert fig.alt.endswith("Paler bars: partial periods (the window covers only part of them): Mon 16 Nov.")
    assert "opacity" not in lifecycle(df.drop("partial")).to_dict()["layer"][0]["encoding"]


def test_a_link_to_another_report_not_published_is_no_link_until_it_is(tmp_path):
    # `[schedule] reports = ["scorecard", "cost"]`: the scorecard's metrics link to the latency, hallucination and
    # adoption reports of the week, which were never published -- nine links that led nowhere
    out = tmp_path / "reports"
    page = out / "scorecard" / "2026-W47" / "report.html"
    page.parent.mkdir(parents=True)
    page.write_text('<html><body><table><tr><td><a href="../../latency/2026-W47/report.html#Latency-by-model">'
                    'Latency p95</a></td></tr></table></body></html>')
    build_index(out)
    html = page.read_text()
    assert '<a href="../../latency/' not in html and "Latency p95</a>" in html
    assert 'title="Latency and reliability 2026-W47 is not published"' in html
    latency = out / "latency" / "2026-W47" / "report.html"  # published later (by the next run, or by hand)
    latency.parent.mkdir(parents=True)
    latency.write_text("<html><body><h1>Latency</h1></body></html>")
    build_index(out)
    assert '<a href="../../latency/2026-W47/report.html#Latency-by-model">Latency p95</a>' in page.read_text()


def test_a_chart_title_does_not_repeat_the_grain_its_metric_already_names():
    """The adoption report's chart read "Daily active users by feature, daily": DAU per day, MAU per month and WAU
    per week name their grain once; a rolling WAU drawn per day still says daily (that is news)."""
    from workbench.reports.charts import trend

    def titled(metric, grain_days):
        days = [dt.datetime(2026, 9, 7) + dt.timedelta(days=grain_days * i) for i in range(3)]
        df = pl.DataFrame({"feature": ["a"] * 3 + ["b"] * 3, "period_start": days * 2, "metric": [metric] * 6,
                           "value": [3.0, 4.0, 5.0] * 2, "n": [10] * 6})
        fig = trend(df, color="feature")
        spec = json.dumps(fig.chart.to_dict())
        return fig.alt.split(":")[0], spec

    for metric, grain_days, want in (("dau_count", 1, "Daily active users by feature"),
                                     ("wau_count", 7, "Weekly active users by feature"),
                                     ("mau_count", 31, "Monthly active users by feature"),
                                     ("wau_count", 1, "Weekly active users by feature, daily"),
                                     ("error_rate", 1, "Error rate by feature, daily")):
        title, spec = titled(metric, grain_days)
        assert title == want and f'"{want}' in spec, (metric, title)


def test_an_interval_band_is_drawn_only_where_the_interval_is_known():
    """The latency report's p95 time to first token drew a triangle: a p95 of a few dozen answers has a lower bound and
    no upper one (hi null), and the band ran from the lower bounds of Thursday and Saturday up to Friday's upper
    bound. The band covers the runs of days with both bounds; a lone day with an interval is a bar, not a band."""
    from workbench.reports.charts import trend

    days = [dt.datetime(2026, 11, 16) + dt.timedelta(days=i) for i in range(4)]
    df = pl.DataFrame({"feature": ["a"] * 4 + ["b"] * 4, "period_start": days * 2, "metric": ["ttft_p95_ms"] * 8,
                       "value": [800.0, 900.0, 850.0, 700.0, 5000.0, 5300.0, 6000.0, 4300.0], "n": [60] * 8,
                       "lo": [600.0, 700.0, 650.0, 500.0, 3600.0, 3700.0, 5200.0, 1300.0],
                       "hi": [None, 1500.0, 1400.0, None, None, 9500.0, None, None]})
    spec = trend(df).chart.to_dict()

    def rows(mark):
        got = []
        for layer in spec["layer"]:
            if (layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]) == mark:
                data = spec["datasets"][layer["data"]["name"]]
                got += [(r["feature"], r["period_start"][:10], r["lo"], r["hi"]) for r in data]
        return sorted(got)

    assert rows("area") == [("A", "2026-11-17", 700.0, 1500.0), ("A", "2026-11-18", 650.0, 1400.0)]
    assert rows("rule") == [("B", "2026-11-17", 3700.0, 9500.0)]
