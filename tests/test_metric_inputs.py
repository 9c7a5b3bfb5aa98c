"""The metrics' common selection on hostile and unusual input: every period of a window in the result, a group whose
key is NULL measured on its own rows, a ``where`` value compared as the column compares it, and a clear error naming
the parameter where the input cannot be right. Each case failed before the change that fixed it."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import workbench as wb
from workbench.errors import ParameterError
from workbench.metrics import compute

WORKBENCH = str(Path(sys.executable).with_name("workbench"))


@pytest.fixture
def two_days():
    db = wb.connect(":memory:")
    db.duckdb.execute(
        "insert into calls (call_id, ts, feature, model, status, latency_ms, input_tokens, output_tokens, cost_usd) "
        "values ('a', '2026-01-01 10:00', 'chat', 'm', 'ok', 100, 100, 100, 0.001), "
        "('b', '2026-01-02 10:00', 'chat', 'm', 'error', 200, 100, 100, 0.002), "
        "('c', '2026-01-02 11:00', 'chat', 'm', 'ok', 100, 100, 100, 0.001)")
    return db


@pytest.mark.parametrize("name", ["error_rate", "timeout_rate", "fallback_rate", "cost_per_1k_tokens_usd"])
def test_every_period_of_the_window_is_in_the_result(two_days, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = compute(name, two_days, period="day", start="2025-12-30", end="2026-01-05")
    days = [d.day for d in df["period_start"]]
    # the grid stopped at the last day with data: 01-03 and 01-04 were missing
    assert days == [30, 31, 1, 2, 3, 4]
    assert df.filter(df["period_start"].dt.day().is_in([3, 4]))["n"].to_list() == [0, 0]


def test_error_rate_of_the_days_with_data_is_unchanged(two_days):
    df = compute("error_rate", two_days, period="day", start="2026-01-01", end="2026-01-03")
    assert df.select("value", "n").rows() == [(0.0, 1), (0.5, 2)]


def test_a_string_value_selects_rows_of_a_number_column_by_value(two_days):
    # the column was compared as text: latency_ms 100 is '100.0', so "100" (the CLI's --where latency_ms=100) selected
    # nothing, with no error
    by_text = compute("error_rate", two_days, period="all", where={"latency_ms": "100"})
    by_number = compute("error_rate", two_days, period="all", where={"latency_ms": 100})
    assert by_text.select("value", "n").rows() == by_number.select("value", "n").rows() == [(0.0, 2)]
    with pytest.raises(ParameterError, match="where: latency_ms is a number column; 'fast' is not a number"):
        compute("error_rate", two_days, where={"latency_ms": "fast"})


def test_none_among_the_where_values_selects_the_rows_without_one(two_days):
    two_days.duckdb.execute("insert into calls (call_id, ts, status) values ('n', '2026-01-02', 'error')")
    df = compute("error_rate", two_days, period="all", by=("feature",), where={"feature": ["chat", None]})
    assert df.select("feature", "value", "n").rows() == [("chat", 1 / 3, 3), (None, 1.0, 1)]  # the NULL row dropped


@pytest.mark.parametrize("where, message", [
    ({"feature": "a\x00b"}, "where: feature: a value holds a NUL character"),
    ({"feature": []}, "where: feature: an empty list of values selects nothing"),
    ({"feature": {"a": 1}}, "where: feature: expected a value or a list of values"),
])
def test_a_where_value_that_cannot_be_one_is_a_parameter_error(two_days, where, message):
    with pytest.raises(ParameterError, match=message):  # were DuckDB's ParserException, IndexError, IbisTypeError
        compute("error_rate", two_days, where=where)


@pytest.mark.parametrize("name", [["error_rate"], 5, None])
def test_compute_names_a_metric_name_that_is_no_string(two_days, name):
    from workbench.errors import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="compute: name must be a metric name"):
        compute(name, two_days)


def test_by_naming_a_column_twice_is_a_parameter_error(two_days):
    with pytest.raises(ParameterError, match="error_rate: by names 'feature' more than once"):  # was IbisInputError
        compute("error_rate", two_days, by=("feature", "feature"))


@pytest.mark.parametrize("name", ["latency_p95_ms", "error_rate"])
def test_a_window_outside_the_years_a_timestamp_computes_is_a_parameter_error(two_days, name):
    with pytest.raises(ParameterError, match="expected a date between the years 1900 and 9000"):  # was OverflowError
        compute(name, two_days, start="0001-01-01", end="2026-01-02")


@pytest.fixture
def drifting():
    db = wb.connect(":memory:")
    db.duckdb.execute("""insert into calls (call_id, ts, status, model, latency_ms)
      select 'c' || i, timestamp '2026-01-01' + to_minutes(i * 4), 'ok',
             case i % 3 when 0 then 'a' when 1 then 'b' else null end,
             case when i % 3 = 1 and i >= 360 then 900 + i % 7 else 100 + i % 7 end
      from range(720) t(i)""")  # model b drifts on the second day; a and the calls without a model do not
    return db


def test_drift_by_group_measures_a_null_group_on_its_own_rows_and_keeps_the_where(drifting):
    kw = dict(start="2026-01-02", end="2026-01-03", columns=["latency_ms"])
    rows = compute("drifted_column_rate", drifting, by=("model",), **kw).select("model", "value").rows()
    assert rows == [("a", 0.0), ("b", 1.0), (None, 0.0)]  # the NULL group was measured over every row: 1.0
    only_a = compute("drifted_column_rate", drifting, by=("model",), where={"model": "a"}, **kw)
    assert only_a.select("model", "value").rows() == [("a", 0.0)]  # returned b and NULL too
    with pytest.raises(ParameterError, match="drifted_column_rate: unknown option 'foo'"):
        compute("drifted_column_rate", drifting, foo=1, **kw)  # was drift_report's TypeError


def test_an_experiment_refuses_an_option_it_does_not_take():
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values ('e','u1','control',"
                      "'2026-01-01'), ('e','u2','control','2026-01-01'), ('e','u3','treatment','2026-01-01'),"
                      "('e','u4','treatment','2026-01-01')")
    db.duckdb.execute("insert into calls (call_id, ts, user_id, status, latency_ms) values ('a','2026-01-02','u1',"
                      "'ok',100), ('b','2026-01-02','u2','ok',300), ('c','2026-01-02','u3','ok',300),"
                      "('d','2026-01-02','u4','ok',500)")
    assert compute("experiment_effect", db, experiment="e", scope="all", relative=False)["value"].to_list() == [200.0]
    with pytest.raises(ParameterError, match="experiment_summary: unknown option 'relativ'"):
        compute("experiment_effect", db, experiment="e", scope="all", relativ=False)  # was the relative effect, 1.0


def test_the_cli_hint_for_a_number_column_names_values_not_a_traceback(tmp_path, two_days):
    path = tmp_path / "w.duckdb"
    db = wb.connect(str(path))
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms, user_id) values "
                      "('a', '2026-01-01', 'chat', 'ok', 100, 'u1'), ('b', '2026-01-01', 'chat', 'ok', 100, null)")
    db.close()
    run = lambda *w: subprocess.run([WORKBENCH, "metrics", "error_rate", "--db", str(path), *w],  # noqa: E731
                                    capture_output=True, text=True)
    r = run("--where", "latency_ms=100")
    assert r.returncode == 0 and "warning" not in r.stderr  # selected nothing (compared as text), then a KeyError
    r = run("--where", "input_tokens=999")
    assert r.returncode == 0 and "matches no row of calls" in r.stderr and "Traceback" not in r.stderr
    r = run("--where", "user_id=nobody")
    assert "some values: u1" in r.stderr and "nan" not in r.stderr  # a NULL user was shown as 'nan'


def test_hallucination_score_lists_every_group_and_period_as_the_rate_does():
    db = wb.connect(":memory:")
    db.duckdb.execute("""
        insert into calls (call_id, ts, feature, status) values ('a', '2026-01-05', 'chat', 'ok'),
          ('b', '2026-01-05', 'search', 'ok'), ('c', '2026-01-06', 'chat', 'ok');
        insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat, ts) values
          ('a', 'hallucination_score', 0.9, 'hallucinated', 'j', '1', 0, '2026-01-05'),
          ('b', 'hallucination_score', 0.2, 'supported', 'j', '1', 0, '2026-01-05'),
          ('c', 'hallucination_score', null, 'unscorable', 'j', '1', 0, '2026-01-06')""")
    kw = dict(evaluator="j", period="day", start="2026-01-05", end="2026-01-08")  # 3 days x 2 features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate = compute("hallucination_rate", db, **kw).select("feature", "period_start").rows()
        score = compute("hallucination_score", db, **kw)
    assert score.select("feature", "period_start").rows() == rate and len(rate) == 6  # gave the 2 with a score
    assert score.filter(score["n"] > 0).select("feature", "value").rows() == [("chat", 0.9), ("search", 0.2)]


# A wrong-typed or out-of-domain argument of a public function: a ParameterError (ParameterTypeError for a wrong type)
# naming the function, the parameter, what was expected and what was got. Each failed before its fix: a TypeError,
# IbisTypeError or polars ComputeError from inside, or a silent reading of the nonsense (where=0 selected everything,
# start=20260101 read as 2026-01-01).
WINDOWS = dict(reference=("2026-01-01", "2026-01-02"), current=("2026-01-02", "2026-01-03"))
BAD_ARGUMENTS = [
    ("error_rate", dict(by=0), "error_rate: by must be a name or a list of column names, got 0"),
    ("error_rate", dict(by=["feature", 1]), "error_rate: by must be a name or a list of column names"),
    ("error_rate", dict(where=-1), "error_rate: where must be a mapping column -> value or a list of 'column=value' "
                                   "strings, got -1"),
    ("error_rate", dict(where=0), "error_rate: where must be a mapping"),
    ("error_rate", dict(where="feature=chat"), "error_rate: where must be a mapping"),
    ("error_rate", dict(where={1: "chat"}), "error_rate: where must be a mapping"),
    ("latency_p95_ms", dict(start=20260101), "latency_p95_ms: start: expected an ISO date or timestamp, got 20260101"),
    ("latency_p95_ms", dict(end="soon"), "latency_p95_ms: end: expected an ISO date or timestamp, got 'soon'"),
    ("dau_count", dict(end=True), "dau_count: end: expected an ISO date or timestamp, got True"),
    ("cost_per_call_usd", dict(confidence="x"), "cost_per_call_usd: confidence must be a number in (0, 1), got 'x'"),
    ("cost_per_call_usd", dict(confidence=None), "cost_per_call_usd: confidence must be a number in (0, 1), got None"),
    ("error_rate", dict(confidence=float("nan")), "error_rate: confidence must be a number in (0, 1), got nan"),
    ("worst_offenders", dict(by=0), "worst_offenders: by must be a name or a list of column names, got 0"),
    ("agreement", dict(reference=5), "agreement: reference must be a name (a non-empty string), got 5"),
    ("agreement", dict(evaluator=["d"]), "agreement: evaluator must be a name (a non-empty string), got ['d']"),
    ("agreement", dict(reference_version=1), "agreement: reference_version must be a name (a non-empty string)"),
    ("agreement", dict(threshold="0.5"), "agreement: threshold must be a finite number, got '0.5'"),
    ("judge_variance", dict(evaluator=5), "judge_variance: evaluator must be a name (a non-empty string), got 5"),
    ("worst_offenders", dict(n=0), "worst_offenders: n must be an integer >= 1, got 0"),
    ("worst_offenders", dict(max_chars="40"), "worst_offenders: max_chars must be an integer >= 1, got '40'"),
    ("worst_offenders", dict(evaluator=True), "worst_offenders: evaluator must be a name (a non-empty string), got True"),
    ("hallucination_rate", dict(version=2), "hallucination_rate: version must be a name (a non-empty string), got 2"),
    ("shadow_comparison", dict(alpha="x"), "shadow_comparison: alpha must be a number in (0, 1), got 'x'"),
    ("shadow_comparison", dict(alpha=5), "shadow_comparison: alpha must be a number in (0, 1), got 5"),
    ("shadow_comparison", dict(environment=0), "shadow_comparison: environment must be an environment (a non-empty "
                                               "string), got 0"),
    ("shadow_comparison", dict(where=-1), "shadow_comparison: where must be a mapping"),
    ("experiment_summary", dict(experiment="e", metrics=0), "experiment_summary: metrics must be a name or a list of "
                                                            "metric names, got 0"),
    ("experiment_summary", dict(experiment="e", cuped="no"), "experiment_summary: cuped must be True or False, got 'no'"),
    ("experiment_summary", dict(experiment="e", alpha="x"), "experiment_summary: alpha must be a number in (0, 1)"),
    ("decision_table", dict(experiment="e", min_chance_to_win=95), "decision_table: min_chance_to_win must be a "
                                                                   "number in (0, 1), got 95"),
    ("srm", dict(experiment="e", weights=[0.5, 0.5]), "srm: weights must be a mapping arm -> planned share"),
    ("drift_report", dict(columns=0, **WINDOWS), "drift_report: columns must be a name or a list of column names, got 0"),
    ("drift_report", dict(max_rows="x", **WINDOWS), "drift_report: max_rows must be an integer >= 1, got 'x'"),
    ("drift_report", dict(table=["calls"], **WINDOWS), "drift_report: table must be a table name (a non-empty string)"),
    ("drift_report", dict(reference=(20260101, 20260102), current=WINDOWS["current"]),
     "drift_report: reference start: expected an ISO date or timestamp, got 20260101"),
    ("text_drift", dict(seed=-1, **WINDOWS), "text_drift: seed must be an integer >= 0, got -1"),
    ("drifted_column_rate", dict(period="all", columns=5), "drift_report: columns must be a name or a list of column "
                                                           "names, got 5"),
    ("guardrail_block_rate", dict(actions=0), "guardrail_block_rate: actions must be a name or a list of guardrail "
                                              "actions, got 0"),
    ("cost_per_success_usd", dict(success=5), "cost_per_success_usd: success must name one or more of"),
    ("cost_per_success_usd", dict(hallucinated_label=1), "cost_per_success_usd: hallucinated_label must be a label"),
    ("whatif_cost_usd", dict(model="m", provider=5), "whatif_cost_usd: provider must be a provider (a non-empty "
                                                     "string), got 5"),
    ("cost_change_usd", dict(period="week", at=5), "cost_change_usd: at: expected an ISO date or timestamp, got 5"),
    ("cost_change_usd", dict(period="all", start="2026-01-01", end="2026-01-03", at="2026-01-02"),
     "cost_change_usd: at applies to period hour, day, week or month"),
    ("latency_change_ms", dict(seed="x"), "latency_change_ms: seed must be an integer >= 0, got 'x'"),
    ("retained_vs_churned", dict(evaluator=5), "retained_vs_churned: evaluator must be an evaluator"),
    ("fit_calibration", dict(rows="x"), "fit_calibration: rows must be a list of mappings with answer, contexts and "
                                        "label, got str"),
    ("fit_calibration", dict(rows=[{"answer": "a", "label": 1}]), "fit_calibration: rows[0]: field 'contexts' must be "
                                                                  "a list of strings or a string, got missing"),
    ("Report", dict(start=20260101), "Report: start: expected an ISO date or timestamp, got 20260101"),
    ("Report", dict(show_raw_text="no"), "Report: show_raw_text must be True or False, got 'no'"),
    ("detect", dict(answer="a", contexts=5), "detect: field 'contexts' must be a list of strings or a string, got int"),
    ("detect", dict(answer="a", contexts=["a"], question=1), "detect: field 'question' must be a string or null"),
    ("detect", dict(answer="a", contexts=["a"], threshold=float("nan")), "detect: threshold must be a number in [0, 1]"),
    ("connect", dict(path=""), "connect: path must be the path of a DuckDB file or ':memory:', got ''"),
    ("config.load_config", dict(path=""), "config must be the path of a workbench.toml, a Config or Settings, got ''"),
    ("budget_status", dict(config=""), "config must be the path of a workbench.toml, a Config or Settings, got ''"),
]


@pytest.mark.parametrize("name, kwargs, message", BAD_ARGUMENTS, ids=lambda v: v if isinstance(v, str) else None)
def test_a_wrong_argument_is_a_parameter_error_naming_the_function_and_the_parameter(two_days, name, kwargs, message):
    import functools
    import inspect
    import re

    fn = functools.reduce(getattr, name.split("."), wb)
    args = (two_days,) if next(iter(inspect.signature(fn).parameters)) == "db" else ()
    with pytest.raises(ParameterError, match=re.escape(message)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(*args, **kwargs)
