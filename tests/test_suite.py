"""Invariants over the whole metric suite, driven by the one registry (``metrics.suite()``)."""

from __future__ import annotations

import datetime as dt
import warnings

import polars as pl
import pytest

import workbench as wb
from workbench.metrics import RESULT_COLUMNS, UndefinedMetricWarning, suite

SUITE = suite()
START, END = "2026-11-09", "2026-11-23"

# options a metric needs beyond the common signature, and the period it supports
OPTIONS: dict[str, dict] = {
    "whatif_cost_usd": {"model": "gpt-4o-mini"},
    "experiment_effect": {"experiment": "support_model_ab", "period": "all"},
    "drifted_column_rate": {"period": "all", "columns": ["latency_ms", "input_tokens", "model", "status"]},
}
# metrics grouped by something other than feature by default
BY: dict[str, tuple] = {"experiment_effect": ("experiment", "variant"), "drifted_column_rate": (), "incident_count": ("severity",),
                        "mttd_minutes": ("severity",), "mttm_minutes": ("severity",), "mttr_minutes": ("severity",),
                        "guardrail_block_rate": ("guard",), "guardrail_redact_rate": ("guard",), "guardrail_catch_rate": ("guard",),
                        "guardrail_false_block_rate": ("guard",)}


def _run(db, name, **kw):
    opts = dict(OPTIONS.get(name, {}))
    opts.setdefault("period", "week")
    opts.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SUITE[name](db, by=BY.get(name, ("feature",)), start=START, end=END, **opts)


@pytest.fixture(scope="module")
def db(small_demo):
    return wb.connect(small_demo, read_only=True)


def test_the_suite_covers_the_four_questions():
    for name in ("hallucination_rate", "latency_p95_ms", "cost_usd", "dau_count", "retention_rate", "error_rate",
                 "guardrail_catch_rate", "mttr_minutes", "experiment_effect", "drifted_column_rate"):
        assert name in SUITE


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_metric_returns_the_tidy_shape(db, name):
    df = _run(db, name)
    keys = list(BY.get(name, ("feature",)))
    i = df.columns.index("period_start")
    assert df.columns[i: i + len(RESULT_COLUMNS)] == list(RESULT_COLUMNS), df.columns
    assert df.columns[: len(keys)] == keys, df.columns  # the requested keys first (a breakdown may add its own)
    assert df.height > 0
    assert (df["n"] >= 0).all()
    assert df.filter((pl.col("n") == 0) & pl.col("value").is_not_null()).height == 0  # undefined is null, never 0
    both = df.filter(pl.col("lo").is_not_null() & pl.col("hi").is_not_null())
    assert (both["lo"] <= both["hi"] + 1e-9).all()


@pytest.mark.parametrize("name", sorted(n for n in SUITE if n.endswith("_rate")))
def test_rates_are_shares_inside_their_interval(db, name):
    df = _run(db, name).drop_nulls("value")
    assert ((df["value"] >= 0) & (df["value"] <= 1)).all()
    inside = df.drop_nulls(["lo", "hi"])
    assert ((inside["lo"] <= inside["value"] + 1e-9) & (inside["value"] <= inside["hi"] + 1e-9)).all()


# metrics defined per period only (a lifecycle or a retained/churned split needs a previous period)
PER_PERIOD = {"lifecycle_count": "week", "retained_vs_churned": "week"}


@pytest.mark.parametrize("name", sorted(n for n in SUITE if n not in OPTIONS))
def test_an_empty_selection_is_null_with_n_zero_and_warns(db, name):
    with pytest.warns(UndefinedMetricWarning):
        df = SUITE[name](db, by=BY.get(name, ("feature",)), period=PER_PERIOD.get(name, "all"), start="2030-01-01", end="2030-01-02")
    assert df["n"].sum() == 0
    assert df["value"].is_null().all()


@pytest.mark.parametrize("name", ["cost_usd", "error_rate", "latency_p95_ms", "hallucination_rate", "dau_count", "thumbs_up_rate"])
def test_a_where_filter_equals_the_matching_group(db, name):
    by_feature = _run(db, name, period="all").filter(pl.col("feature") == "support_assistant")
    filtered = _run(db, name, period="all", where={"feature": "support_assistant"})
    assert filtered["n"].to_list() == by_feature["n"].to_list()
    assert filtered["value"].to_list() == pytest.approx(by_feature["value"].to_list())


@pytest.mark.parametrize("name", ["cost_usd", "incident_count"])
def test_additive_metrics_recombine_to_the_total(db, name):
    by = BY.get(name, ("feature",))
    parts = _run(db, name, period="all")
    total = SUITE[name](db, by=(), period="all", start=START, end=END)
    assert parts["value"].sum() == pytest.approx(total["value"].sum())


def test_rate_counts_recombine_to_the_total(db):
    parts = _run(db, "error_rate", period="all")
    total = SUITE["error_rate"](db, by=(), period="all", start=START, end=END)
    assert parts["n"].sum() == total["n"][0]
    assert (parts["value"] * parts["n"]).sum() == pytest.approx(total["value"][0] * total["n"][0])


def test_metric_values_trace_back_to_the_rows(db):
    """error_rate over the window equals the share counted directly in SQL on the same table."""
    df = _run(db, "error_rate", period="all").filter(pl.col("feature") == "summariser")
    k, n = db.duckdb.execute(
        "select count(*) filter (where status = 'error'), count(*) from calls "
        "where feature = 'summariser' and ts >= ? and ts < ?", [dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 23)]).fetchone()
    assert (df["n"][0], df["value"][0]) == (n, pytest.approx(k / n))


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_interval_contains_its_value_exactly(db, name):
    # strict, no tolerance: Wilson bounds are exactly 0 and 1 at the edges (issue 10, item 9)
    df = _run(db, name).drop_nulls(["value", "lo", "hi"])
    assert ((df["lo"] <= df["value"]) & (df["value"] <= df["hi"])).all(), df.filter(
        (pl.col("lo") > pl.col("value")) | (pl.col("value") > pl.col("hi")))


# metrics whose rows are split further than keys x period (a status, a cohort offset, a funnel step, a day count)
SPLIT = {"lifecycle_count", "retention_rate", "funnel_conversion_rate", "active_days_distribution",
         "retained_vs_churned", "experiment_effect", "drifted_column_rate", "latency_change_ms", "cost_change_usd"}


@pytest.mark.parametrize("name", sorted(n for n in SUITE if n not in SPLIT))
def test_no_group_vanishes_from_a_period(db, name):
    # every group of the result is in every week of the window: a group without data that week is null with n = 0
    df = _run(db, name)
    keys = list(BY.get(name, ("feature",)))
    weeks = {dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 16)}
    for group, part in df.group_by(keys):
        assert set(part["period_start"]) == weeks, (group, part.select("period_start", "value", "n"))


CALLS_METRICS = ("latency_p95_ms", "ttft_p95_ms", "error_rate", "cost_usd", "cost_per_call_usd", "tpot_ms")


@pytest.mark.parametrize("name", CALLS_METRICS)
def test_every_feature_of_the_calls_is_in_a_calls_metric(db, name):
    # a feature whose calls carry no latency, no TTFT or no price is there with n = 0, not missing
    features = set(wb.connect(db.path, read_only=True).calls.filter(
        lambda t: (t.ts >= dt.datetime(2026, 11, 9)) & (t.ts < dt.datetime(2026, 11, 23))
        & (t.operation.isnull() | t.operation.isin(["chat", "text_completion", "generate_content"]))
    ).select("feature").distinct().to_polars()["feature"])
    assert set(_run(db, name)["feature"]) >= features
