"""Invariants over the whole metric suite, driven by the one registry (``metrics.suite()``)."""

from __future__ import annotations

import datetime as dt
import warnings

import polars as pl
import polars.testing  # noqa: F401
import pytest

import workbench as wb
from workbench.metrics import RESULT_COLUMNS, UndefinedMetricWarning, contracts, suite

SUITE = suite()
START, END = "2026-11-09", "2026-11-23"

CONTRACTS = contracts()
# A working value for each option a metric needs, and its default grouping: both from the registry.
OPTIONS: dict[str, dict] = {n: dict(c.example) | ({"period": "all"} if c.periods == ("all",) else {}) for n, c in CONTRACTS.items()}
BY: dict[str, tuple] = {n: c.by for n, c in CONTRACTS.items()}


def _run(db, name, **kw):
    opts = dict(OPTIONS.get(name, {}))
    opts.setdefault("period", "week")
    opts.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SUITE[name](db, by=BY.get(name, ("feature",)), start=START, end=END, **opts)


@pytest.fixture(scope="module")
def db(small_demo):
    # closed after the module: the queries cached per process refer to the connection, so it would otherwise stay
    # open, and a later read-write connection to the shared demo in the same process would be refused
    with wb.connect(small_demo, read_only=True) as con:
        yield con


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
    if CONTRACTS[name].unit != "count":  # a count of no events is 0, defined (incident_count of a quiet day)
        assert df.filter((pl.col("n") == 0) & pl.col("value").is_not_null()).height == 0  # undefined is null, never 0
    both = df.filter(pl.col("lo").is_not_null() & pl.col("hi").is_not_null())
    assert (both["lo"] <= both["hi"] + 1e-9).all()


@pytest.mark.parametrize("name", sorted(n for n, c in CONTRACTS.items() if "week" in c.periods and "month" in c.periods))
def test_every_metric_says_which_periods_the_window_covers_only_in_part(db, name):
    """A first week cut by start read as a drop (a third of the users of a whole week): ``partial`` says so."""
    assert RESULT_COLUMNS[-1] == "partial"
    weeks = _run(db, name, period="week")  # START..END: two whole weeks, Monday to Monday
    assert weeks["partial"].drop_nulls().to_list() == [False] * weeks.height, weeks
    months = _run(db, name, period="month")  # both weeks in November: the month is cut on both sides
    assert months.filter(pl.col("period_start").is_not_null())["partial"].to_list() == [True] * months.filter(
        pl.col("period_start").is_not_null()).height


@pytest.mark.parametrize("name", sorted(n for n in SUITE if n.endswith("_rate")))
def test_rates_are_shares_inside_their_interval(db, name):
    df = _run(db, name).drop_nulls("value")
    assert ((df["value"] >= 0) & (df["value"] <= 1)).all()
    inside = df.drop_nulls(["lo", "hi"])
    assert ((inside["lo"] <= inside["value"] + 1e-9) & (inside["value"] <= inside["hi"] + 1e-9)).all()


# metrics defined per period only (a lifecycle or a retained/churned split needs a previous period), from the registry
PER_PERIOD = {n: "week" for n, c in CONTRACTS.items() if "all" not in c.periods}


@pytest.mark.parametrize("name", sorted(n for n in SUITE if not CONTRACTS[n].example))
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


# --- the registry's contract, for every metric ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_copy(small_demo, tmp_path_factory):
    import shutil

    path = tmp_path_factory.mktemp("by_path") / "demo.duckdb"
    shutil.copy(small_demo, path)
    return path


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_metric_accepts_a_path_and_a_connection(demo_copy, db, name):
    kw = dict(OPTIONS.get(name, {}))
    kw.setdefault("period", PER_PERIOD.get(name, "all"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_conn = SUITE[name](db, start=START, end=END, **kw)
        by_path = SUITE[name](str(demo_copy), start=START, end=END, **kw)
        try:
            in_memory = SUITE[name](":memory:", start=START, end=END, **kw)  # a fresh, empty database
        except wb.errors.InputError as exc:  # e.g. no such experiment, no price for the model: said, not a crash
            assert name in str(exc) or "srm" in str(exc)
        else:
            assert in_memory["n"].sum() == 0
    # the same numbers either way (to float summation order: DuckDB aggregates in parallel)
    pl.testing.assert_frame_equal(by_conn, by_path, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_metric_declares_its_contract(name):
    c = CONTRACTS[name]
    assert c.name == name and c.definition and c.table in wb.TABLES
    suffix = {"share": "_rate", "ms": "_ms", "usd": "_usd", "count": "_count", "minutes": "_minutes", "score": "_score",
              "ratio": None, "per_s": "_per_s", "steps": "_per_task"}[c.unit]
    # two names predate the naming rule and keep it for compatibility
    assert suffix is None or name.endswith(suffix) or name in ("active_days_distribution", "retained_vs_churned"), (name, c.unit)
    assert c.periods and set(c.periods) <= {"hour", "day", "week", "month", "all"}
    assert set(c.example) <= set(c.options) or c.open_options


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_metric_refuses_an_unknown_option_naming_itself(db, name):
    if CONTRACTS[name].open_options:
        pytest.skip("passes further options through to its statistic")
    with pytest.raises(wb.errors.ParameterError, match=name):
        SUITE[name](db, no_such_option=1, **OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", sorted(n for n in SUITE if set(CONTRACTS[n].periods) != {"hour", "day", "week", "month", "all"}))
def test_an_unsupported_period_is_refused_naming_the_metric(db, name):
    bad = next(p for p in ("all", "day", "hour") if p not in CONTRACTS[name].periods)
    kw = {k: v for k, v in OPTIONS.get(name, {}).items() if k != "period"}
    with pytest.raises(wb.errors.ParameterError, match=f"{name}: period must be"):
        SUITE[name](db, period=bad, **kw)


@pytest.mark.parametrize("name", sorted(SUITE))
@pytest.mark.parametrize("start, end", [(END, START), (START, START)])
def test_a_window_that_ends_before_it_starts_is_refused_naming_the_metric(db, name, start, end):
    """An inverted or empty window was read as a selection of nothing: one null row, n = 0, exit 0."""
    kw = {k: v for k, v in OPTIONS.get(name, {}).items()}
    with pytest.raises(wb.errors.ParameterError, match=rf"{name}: start {start} is not before end {end}"):
        SUITE[name](db, start=start, end=end, **kw)


def test_cli_where_and_by_read_spaces_around_their_separators_as_the_plain_option(small_demo, capsys):
    from workbench.cli import main as cli_main
    from workbench.db import parse_where

    assert parse_where(["status = ok", " model= a , b"]) == {"status": "ok", "model": ["a", "b"]}
    outs = []
    for where in ("status=ok", "status = ok"):
        rc = cli_main(["metrics", "error_rate", "--db", str(small_demo), "--period", "all", "--where", where,
                       "--format", "csv"])
        outs.append((rc, capsys.readouterr().out))
    assert outs[0] == outs[1] and outs[0][0] == 0
    assert ",0," not in outs[0][1].splitlines()[1]  # calls were selected: n is not 0
    # and a list of group keys typed with spaces after the commas
    outs = []
    for by in ("feature,model", "feature, model"):
        rc = cli_main(["metrics", "error_rate", "--db", str(small_demo), "--period", "all", "--by", by, "--format", "csv"])
        outs.append((rc, capsys.readouterr().out))
    assert outs[0] == outs[1] and outs[0][0] == 0


def test_cli_refuses_an_inverted_window(small_demo, capsys):
    from workbench.cli import main as cli_main

    rc = cli_main(["metrics", "latency_p95_ms", "--db", str(small_demo), "--start", "2026-01-01", "--end", "2025-01-01"])
    err = capsys.readouterr().err
    assert rc == 2 and "start 2026-01-01 is not before end 2025-01-01" in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(n for n in SUITE if CONTRACTS[n].required))
def test_a_missing_required_option_is_refused_naming_it(db, name):
    with pytest.raises(wb.errors.ParameterError, match=CONTRACTS[name].required[0]):
        SUITE[name](db)


def test_no_metric_is_left_out_of_the_registry():
    """A public function of a metric module that has the metric signature and a unit suffix must be registered."""
    import importlib
    import inspect

    from workbench.metrics.core import SUITE_MODULES

    suffixes = ("_rate", "_ms", "_usd", "_count", "_minutes", "_score", "_ratio", "_per_s", "_per_task")
    # the generic quantile behind the named percentiles takes q; it is a toolkit function, not a metric of the suite
    not_metrics = {"latency.latency_quantile_ms"}
    missing = []
    for mod in SUITE_MODULES:
        module = importlib.import_module(f"workbench.metrics.{mod}")
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn) or not name.endswith(suffixes):
                continue
            ps = inspect.signature(fn).parameters
            if {"by", "period", "start", "end", "where"} <= set(ps) and name not in SUITE and f"{mod}.{name}" not in not_metrics:
                missing.append(f"{mod}.{name}")
    assert not missing, f"metrics not registered: {missing}"


@pytest.mark.parametrize("name,period", sorted((n, p) for n, c in CONTRACTS.items() for p in c.periods))
def test_every_declared_period_gives_the_tidy_shape(db, name, period):
    kw = {k: v for k, v in OPTIONS.get(name, {}).items() if k != "period"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = SUITE[name](db, period=period, start="2026-11-16", end="2026-11-23", **kw)
    i = df.columns.index("period_start")
    assert df.columns[i: i + len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    if period != "all" and df["period_start"].drop_nulls().len():
        starts = df["period_start"].drop_nulls()
        assert starts.min() >= dt.datetime(2026, 11, 16) - dt.timedelta(days=31) and starts.max() < dt.datetime(2026, 11, 23)


@pytest.mark.parametrize("name", sorted(SUITE))
def test_every_declared_option_is_accepted_at_its_default(db, name):
    import inspect

    c = CONTRACTS[name]
    ps = inspect.signature(c.fn).parameters
    kw = {o: ps[o].default for o in c.options if ps[o].default is not inspect.Parameter.empty}
    kw.update({k: v for k, v in OPTIONS.get(name, {}).items()})
    kw.setdefault("period", PER_PERIOD.get(name, "all"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explicit = SUITE[name](db, start="2026-11-16", end="2026-11-23", **kw)
        implicit = SUITE[name](db, start="2026-11-16", end="2026-11-23",
                               **{k: v for k, v in kw.items() if k not in c.options or k in c.required or k in c.example})
    pl.testing.assert_frame_equal(explicit, implicit, rtol=1e-9)

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
