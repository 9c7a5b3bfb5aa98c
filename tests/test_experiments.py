"""workbench.metrics.experiments on small databases whose answers are computed by hand or published by GrowthBook."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.metrics import experiments as X
from workbench import metrics

GOLDENS = json.loads((Path(__file__).resolve().parent / "goldens" / "published.json").read_text())
GB = GOLDENS["experiments_growthbook"]


def _assign(db, rows, experiment="e"):
    """rows: (unit_id, variant[, weight])"""
    values = ",".join(
        f"('{experiment}', '{r[0]}', '{r[1]}', timestamp '2026-01-01', {r[2] if len(r) > 2 else 'NULL'})" for r in rows)
    db.duckdb.execute(f"insert into assignments (experiment, unit_id, variant, ts, weight) values {values}")


def _calls(db, rows):
    """rows: (call_id, user_id, ts, status, latency_ms, cost_usd)"""
    values = ",".join(f"('{c}', '{u}', timestamp '{ts}', '{s}', {'NULL' if lat is None else lat}, {cost})"
                      for c, u, ts, s, lat, cost in rows)
    db.duckdb.execute(f"insert into calls (call_id, user_id, ts, status, latency_ms, cost_usd) values {values}")


@pytest.fixture()
def tiny():
    """Two arms of two users; a pre-period call for every user (for CUPED), calls after exposure on 2026-01-01."""
    db = wb.connect(":memory:")
    _assign(db, [("u1", "control"), ("u2", "control"), ("u3", "treatment"), ("u4", "treatment")])
    _calls(db, [
        ("p1", "u1", "2025-12-30", "ok", 90, 0.1), ("p2", "u2", "2025-12-30", "ok", 310, 0.1),
        ("p3", "u3", "2025-12-30", "ok", 120, 0.1), ("p4", "u4", "2025-12-30", "ok", 280, 0.1),
        # u1: mean latency (100 + 200) / 2 = 150, cost 0.3; u2: 300, cost 0.5
        ("a1", "u1", "2026-01-02", "ok", 100, 0.1), ("a2", "u1", "2026-01-03", "error", 200, 0.2),
        ("b1", "u2", "2026-01-02", "ok", 300, 0.5),
        # u3: 110, cost 0.2; u4: (200 + 240 + 280) / 3 = 240, cost 0.6
        ("c1", "u3", "2026-01-02", "ok", 110, 0.2),
        ("d1", "u4", "2026-01-02", "ok", 200, 0.2), ("d2", "u4", "2026-01-02", "ok", 240, 0.2),
        ("d3", "u4", "2026-01-03", "error", 280, 0.2),
        ("d4", "u4", "2026-01-03", "timeout", None, 0.0),  # not an error (latency.error_rate's definition)
        # before its exposure window: outside the pre-period of 14 days, must be ignored
        ("z1", "u1", "2025-11-01", "ok", 99999, 99.0),
    ])
    return db


def test_summary_arm_means_by_hand(tiny):
    r = X.experiment_summary(tiny, "e", metrics=("latency_ms", "cost_usd", "error_rate"), relative=False)
    got = {row["metric"]: row for row in r.iter_rows(named=True)}
    lat = got["latency_ms"]
    assert (lat["control"], lat["variant"], lat["n_control"], lat["n_variant"]) == ("control", "treatment", 2, 2)
    assert (lat["mean_control"], lat["mean_variant"]) == (225.0, 175.0)
    assert lat["effect"] == -50.0
    # Welch: control values 150, 300 (var 11250), treatment 110, 240 (var 8450)
    assert lat["se"] == pytest.approx(math.sqrt(11250 / 2 + 8450 / 2))
    cost = got["cost_usd"]
    assert (cost["mean_control"], cost["mean_variant"]) == pytest.approx((0.4, 0.4))
    err = got["error_rate"]
    # per-user error shares: u1 1/2, u2 0 | u3 0, u4 1/4 (one error in four calls; the timeout is not an error)
    assert (err["mean_control"], err["mean_variant"]) == pytest.approx((0.25, 1 / 8))
    assert set(r["srm_status"]) == {"ok"}


def test_summary_relative_effect_is_lift_over_control(tiny):
    r = X.experiment_summary(tiny, "e", metrics=("latency_ms",))
    assert r["effect"][0] == pytest.approx(-50 / 225)


def test_cuped_in_summary_uses_pre_period_and_shrinks_se(tiny):
    plain = X.experiment_summary(tiny, "e", metrics=("latency_ms",), relative=False)
    adj = X.experiment_summary(tiny, "e", metrics=("latency_ms",), relative=False, cuped=True)
    # pre-period latencies 90, 310 | 120, 280 track the post-period ones closely
    assert adj["theta"][0] > 0.5
    assert adj["se"][0] < plain["se"][0]
    assert adj["mean_control"][0] == plain["mean_control"][0]  # means are reported unadjusted


def test_a_metric_is_a_proportion_only_when_every_unit_of_every_arm_is_0_or_1():
    # error rate per user: control 1, 0, 0 (one call each), treatment 0.5, 0, 1 (u4: one error in two calls).
    # Not 0/1 for every unit: both arms take the sample variance, control 1/3 (mean 1/3: (4/9 + 1/9 + 1/9) / 2),
    # treatment 1/4 (mean 1/2: (0 + 1/4 + 1/4) / 2), se = sqrt(1/3 / 3 + 1/4 / 3) = sqrt(7/36). Control took
    # p(1 - p) = 2/9 instead, as if its three users were a proportion and the treatment's were not.
    db = wb.connect(":memory:")
    _assign(db, [("u1", "control"), ("u2", "control"), ("u3", "control"), ("u4", "treatment"), ("u5", "treatment"),
                 ("u6", "treatment")])
    _calls(db, [("a", "u1", "2026-01-02", "error", 1, 0), ("b", "u2", "2026-01-02", "ok", 1, 0),
                ("c", "u3", "2026-01-02", "ok", 1, 0), ("d1", "u4", "2026-01-02", "error", 1, 0),
                ("d2", "u4", "2026-01-02", "ok", 1, 0), ("e", "u5", "2026-01-02", "ok", 1, 0),
                ("f", "u6", "2026-01-02", "error", 1, 0)])
    r = X.experiment_summary(db, "e", metrics=("error_rate",), relative=False).row(0, named=True)
    assert (r["mean_control"], r["mean_variant"]) == pytest.approx((1 / 3, 1 / 2))
    assert r["se"] == pytest.approx(math.sqrt(7 / 36))


def test_growthbook_proportion_golden_through_the_database():
    # unit = call: 28 control calls with 14 errors, 30 treatment calls with 16 errors
    case = GB["proportions_relative"]
    db = wb.connect(":memory:")
    rows, assign = [], []
    for arm, k, n in (("control", case["a"]["successes"], case["a"]["n"]), ("treatment", case["b"]["successes"],
                                                                            case["b"]["n"])):
        for i in range(n):
            cid = f"{arm}{i}"
            assign.append((cid, arm))
            rows.append((cid, "u", "2026-01-02", "error" if i < k else "ok", 1, 0))
    _assign(db, assign)
    _calls(db, rows)
    r = X.experiment_summary(db, "e", metrics=("error_rate",), unit="call_id").row(0, named=True)
    exp = case["expected"]
    assert (round(r["effect"], 5), round(r["se"], 5), [round(r["lo"], 5), round(r["hi"], 5)],
            round(r["p_value"], 5)) == (exp["effect"], exp["se"], exp["ci"], exp["p"])
    b = X.experiment_summary(db, "e", metrics=("error_rate",), unit="call_id", method="bayesian").row(0, named=True)
    # error_rate: lower is better, so chance to win is P(effect < 0)
    assert b["chance_to_win"] < 0.5
    assert b["p_value"] is None


def test_bayesian_golden_through_the_database_for_a_higher_is_better_metric():
    case = GB["bayesian_proportions_flat_prior"]
    db = wb.connect(":memory:")
    assign, fb, calls = [], [], []
    for arm, k, n in (("control", 49, 100), ("treatment", 51, 100)):
        for i in range(n):
            cid = f"{arm}{i}"
            assign.append((cid, arm))
            calls.append((cid, "u", "2026-01-02", "ok", 1, 0))
            fb.append(f"('f{cid}', '{cid}', timestamp '2026-01-02', 'thumbs', {1 if i < k else 0})")
    _assign(db, assign)
    _calls(db, calls)
    db.duckdb.execute(f"insert into feedback (feedback_id, call_id, ts, kind, value) values {','.join(fb)}")
    r = X.experiment_summary(db, "e", metrics=("thumbs_up_rate",), unit="call_id", method="bayesian").row(0, named=True)
    exp = case["expected"]
    assert (round(r["effect"], 5), round(r["se"], 5), round(r["chance_to_win"], 5),
            [round(r["risk_control"], 5), round(r["risk_variant"], 5)]) == (
        exp["mean"], exp["sd"], exp["chance_to_win"], exp["risk"])


def test_hallucination_and_retained_per_unit():
    db = wb.connect(":memory:")
    _assign(db, [("u1", "control"), ("u2", "treatment")])
    _calls(db, [("a", "u1", "2026-01-02", "ok", 1, 0), ("b", "u1", "2026-01-02", "ok", 1, 0),
                ("c", "u2", "2026-01-02", "ok", 1, 0)])
    db.duckdb.execute(
        "insert into evals (call_id, metric, value, label, evaluator, evaluator_version) values "
        "('a', 'hallucination_score', 0.9, 'hallucinated', 'd', '1'), ('b', 'hallucination_score', 0.1, 'supported', "
        "'d', '1'), ('b', 'hallucination_score', 0.8, 'hallucinated', 'judge', '1'),"
        "('c', 'hallucination_score', 0.1, 'supported', 'd', '1')")
    db.duckdb.execute(
        "insert into events (event_id, user_id, ts, event) values ('e1', 'u1', '2026-01-09', 'ask'),"
        "('e2', 'u2', '2026-01-03', 'ask'), ('e3', 'u2', '2026-01-20', 'open')")
    exp = X.UNIT_METRICS["hallucination_rate"](db, X._exposures(db, "e", fn="t"), unit="user_id")
    got = dict(exp.select("unit_id", "value").to_polars().rows())
    assert got == {"u1": 1.0, "u2": 0.0}  # call b counts as hallucinated once (any evaluator says so)
    only_d = X.UNIT_METRICS["hallucination_rate"](db, X._exposures(db, "e", fn="t"), unit="user_id", evaluator="d")
    assert dict(only_d.select("unit_id", "value").to_polars().rows()) == {"u1": 0.5, "u2": 0.0}
    ret = X.UNIT_METRICS["retained"](db, X._exposures(db, "e", fn="t"), retention_days=7)
    assert dict(ret.select("unit_id", "value").to_polars().rows()) == {"u1": 1.0, "u2": 1.0}
    ret14 = X.UNIT_METRICS["retained"](db, X._exposures(db, "e", fn="t"), retention_days=14)
    # u1's last event is 8 days after exposure; the data end (2026-01-20) lets 14 days be measured for both
    assert dict(ret14.select("unit_id", "value").to_polars().rows()) == {"u1": 0.0, "u2": 1.0}


def test_srm_from_weight_column_and_zero_weight_arm():
    db = wb.connect(":memory:")
    rows = [(f"a{i}", "a", 0.5) for i in range(1000)] + [(f"b{i}", "b", 0.5) for i in range(1200)]
    rows += [(f"c{i}", "c", 0) for i in range(900)]
    _assign(db, rows)
    r = X.srm(db, "e")
    assert r["users"].to_list() == [1000, 1200, 900]
    assert round(r["srm_p_value"][0], 9) == GOLDENS["srm_growthbook"]["cases"][-1]["p"]
    assert r["srm_status"][0] == "mismatch"
    assert r["expected_users"].to_list() == [1100.0, 1100.0, None]


def test_srm_partial_weights_is_an_error():
    db = wb.connect(":memory:")
    _assign(db, [("u1", "a", 0.5), ("u2", "b")])
    with pytest.raises(ValueError, match="weight is null for arm"):
        X.srm(db, "e")


def test_srm_refuses_a_nan_weight_in_the_assignments():
    # 50 users in control with weight NaN, 500 in treatment with 0.5: the NaN arm was dropped and the check read
    # "ok" (p = 1)
    db = wb.connect(":memory:")
    _assign(db, [(f"c{i}", "control", "'NaN'::double") for i in range(50)]
            + [(f"t{i}", "treatment", 0.5) for i in range(500)])
    with pytest.raises(ValueError, match=r"srm: assignments.weight is NaN or infinite for arm\(s\) \['control'\]"):
        X.srm(db, "e")


def test_an_arm_logged_under_two_spellings_is_refused_not_read_as_a_third_arm():
    # "control" and "Control " (case, a trailing space): read as three arms, an SRM "mismatch" against equal thirds
    # and a readout of "Control " against "control"; a unit logged under both spellings was silently left out
    db = wb.connect(":memory:")
    _assign(db, [(f"c{i}", "control") for i in range(50)] + [(f"C{i}", "Control ") for i in range(5)]
            + [(f"t{i}", "treatment") for i in range(55)])
    msg = r"srm: arms 'Control ' and 'control' of experiment 'e' differ only in case or surrounding spaces"
    with pytest.raises(ValueError, match=msg):
        X.srm(db, "e")
    with pytest.raises(ValueError, match=msg):
        X.experiment_summary(db, "e", metrics=("latency_ms",))


def test_unknown_inputs_are_named():
    db = wb.connect(":memory:")
    _assign(db, [("u1", "control"), ("u2", "b")])
    with pytest.raises(KeyError, match="known: latency_ms"):
        X.experiment_summary(db, "e", metrics=("nope",))
    with pytest.raises(ValueError, match="method"):
        X.experiment_summary(db, "e", method="magic")
    with pytest.raises(ValueError, match="no assignments"):
        X.srm(db, "missing")


def _decision_db(treat_latency, treat_error_every, n_control=40, n_treat=40):
    """Per user one call after exposure; control latency 200 + noise, errors every 10th user."""
    db = wb.connect(":memory:")
    assign, calls = [], []
    for arm, n in (("control", n_control), ("treatment", n_treat)):
        for i in range(n):
            u = f"{arm}{i}"
            assign.append((u, arm))
            lat = (200 if arm == "control" else treat_latency) + (i % 5) * 10
            every = 10 if arm == "control" else treat_error_every
            calls.append((f"c{u}", u, "2026-01-02", "error" if i % every == 0 else "ok", lat, 0.01))
    _assign(db, assign)
    _calls(db, calls)
    return db


def test_decision_clear_win():
    db = _decision_db(treat_latency=100, treat_error_every=10)
    d = X.decision_table(db, "e", metrics=("latency_ms",))
    rows = {r["metric"]: r for r in d.iter_rows(named=True)}
    assert rows["latency_ms"]["verdict"] == "better"
    assert rows["latency_ms"]["direction"] == "lower is better"
    assert rows["error_rate"]["verdict"] == "no clear difference"
    assert rows["overall"]["verdict"] == "ship"


def test_decision_guardrail_regression():
    # half the treatment users see an error (control: a tenth); the relative lift needs ~100 users per arm to be clear
    db = _decision_db(treat_latency=100, treat_error_every=2, n_control=100, n_treat=100)
    d = X.decision_table(db, "e", metrics=("latency_ms",), guardrails=("error_rate",))
    rows = {r["metric"]: r for r in d.iter_rows(named=True)}
    assert rows["error_rate"]["verdict"] == "worse"
    assert rows["overall"]["verdict"] == "do not ship: guardrail error_rate worse"


def test_decision_sample_ratio_mismatch_invalidates():
    db = _decision_db(treat_latency=100, treat_error_every=10, n_control=200, n_treat=100)
    d = X.decision_table(db, "e", metrics=("latency_ms",))
    assert d.filter(pl.col("metric") == "overall")["verdict"][0] == "invalid: sample ratio mismatch"


def test_decision_bayesian_and_inconclusive():
    db = _decision_db(treat_latency=200, treat_error_every=10)
    d = X.decision_table(db, "e", metrics=("latency_ms",), method="bayesian")
    assert d.filter(pl.col("metric") == "overall")["verdict"][0] == "inconclusive"


def test_chance_to_win_is_the_same_whichever_method_reads_the_effect_out():
    # Chance to win of the frequentist and sequential rows was backed out of their interval with the normal
    # quantile: a t interval (wider by t/z) and the sequential confidence sequence (wider by ~1.5 here) read as a
    # larger standard error, the chance pulled towards 0.5, and a guardrail "likely worse" missed. With the effect's
    # own standard error it is P(effect in the good direction) under the flat prior: the Bayesian readout's number.
    db = _decision_db(treat_latency=204, treat_error_every=10, n_control=40, n_treat=40)
    bayes = X.experiment_summary(db, "e", metrics=("latency_ms",), method="bayesian")["chance_to_win"][0]
    assert 0.05 < bayes < 0.5  # latency 2% higher: likely worse, not clearly
    for method in ("frequentist", "sequential"):
        d = X.decision_table(db, "e", metrics=("latency_ms",), guardrails=(), method=method)
        assert d.filter(pl.col("metric") == "latency_ms")["chance_to_win"][0] == pytest.approx(bayes, rel=1e-12), method


def test_shadow_comparison_paired_by_trace():
    db = wb.connect(":memory:")
    rows = []
    base = [100.0, 200.0, 300.0, 150.0]
    extra = [10.0, 30.0, 20.0, 20.0]
    for i, (b, d) in enumerate(zip(base, extra)):
        rows.append(f"('p{i}', 't{i}', timestamp '2026-01-01', 'ok', 'production', 'm-a', {b}, 0.01)")
        rows.append(f"('s{i}', 't{i}', timestamp '2026-01-01', 'ok', 'shadow', 'm-b', {b + d}, 0.005)")
    rows.append("('x', 'lonely', timestamp '2026-01-01', 'ok', 'shadow', 'm-b', 5000, 1)")  # no production twin
    db.duckdb.execute("insert into calls (call_id, trace_id, ts, status, environment, model, latency_ms, cost_usd) "
                      "values " + ",".join(rows))
    r = {x["metric"]: x for x in X.shadow_comparison(db).iter_rows(named=True)}
    lat = r["latency_ms"]
    from scipy.stats import ttest_rel

    assert lat["n_pairs"] == 4
    assert lat["mean_diff"] == pytest.approx(20.0)
    assert lat["p_value"] == pytest.approx(ttest_rel([b + d for b, d in zip(base, extra)], base).pvalue)
    assert (lat["baseline_model"], lat["candidate_model"]) == ("m-a", "m-b")
    assert r["cost_usd"]["mean_diff"] == pytest.approx(-0.005)
    assert r["hallucination_score"]["n_pairs"] == 0 and r["hallucination_score"]["mean_diff"] is None
    assert r["hallucination_score"]["note"] == ("no pairs: no trace has hallucination_score on both sides "
                                                "(production and shadow)")


def test_shadow_comparison_names_an_environment_no_call_has_and_those_that_exist():
    """A misspelt environment read every metric as "no pairs", as if the shadow run had answered nothing; it is an
    error naming the parameter, the value, the closest environment and the ones the calls have."""
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, trace_id, ts, status, environment, latency_ms) values "
                      "('p1', 't1', '2026-01-01', 'ok', 'production', 100), ('s1', 't1', '2026-01-01', 'ok', 'shadow', 110),"
                      "('x1', 't2', '2026-01-01', 'ok', null, 120)")
    from workbench.errors import UnknownNameError

    with pytest.raises(UnknownNameError) as e:
        X.shadow_comparison(db, environment="shadw")
    assert str(e.value) == ("shadow_comparison: environment: no environment 'shadw'; did you mean 'shadow'? "
                            "(known: production, shadow)")
    with pytest.raises(UnknownNameError, match=r"baseline: no environment 'producton'; did you mean 'production'\?"):
        X.shadow_comparison(db, baseline="producton")
    # an environment that exists but has no call in the window: no pairs, as before, the note naming both sides
    r = X.shadow_comparison(db, start="2026-02-01").filter(metric="latency_ms").row(0, named=True)
    assert (r["n_pairs"], r["note"]) == (0, "no pairs: no trace has latency_ms on both sides (production and shadow)")


def test_shadow_comparison_without_any_shadow_run_says_so_for_the_report():
    """A team that runs no shadow model has no 'shadow' environment: that is not a misspelling, and the experiments
    report shows the sentence in place of the section (it failed with the misspelling's error)."""
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, trace_id, ts, status, environment, latency_ms) values "
                      "('p1', 't1', '2026-01-01', 'ok', 'production', 100), ('p2', 't2', '2026-01-01', 'ok', 'prod', 90)")
    from workbench.errors import TooFewError

    with pytest.raises(TooFewError) as e:
        X.shadow_comparison(db)
    assert str(e.value) == ("shadow_comparison: environment='shadow': no call is in that environment, nothing to "
                            "compare (environments: prod, production)")


def test_experiment_effect_is_registered_and_tidy(tiny):
    assert metrics.suite()["experiment_effect"] is X.experiment_effect
    r = metrics.compute("experiment_effect", tiny, experiment="e", relative=False)
    assert r.columns[:8] == ["experiment", "variant", "period_start", "metric", "value", "n", "lo", "hi"]
    assert r.select("metric", "value", "n").rows() == [("latency_ms_effect", -50.0, 4)]
    with pytest.raises(ValueError, match="period must be 'all'"):
        X.experiment_effect(tiny, experiment="e", period="day")


def _scoped_db():
    # control u1, u2; treatment u3, u4, exposed Jan 1. The feature under test is chat (calls tagged with the arm):
    # chat latency control 100, 300 (mean 200), treatment 50, 150 (mean 100). Every user also has one 1000 ms search
    # call, untouched by the experiment. u1 comes back on day 10 in search only.
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values "
                      "('e', 'u1', 'control', '2026-01-01'), ('e', 'u2', 'control', '2026-01-01'),"
                      "('e', 'u3', 'treatment', '2026-01-01'), ('e', 'u4', 'treatment', '2026-01-01')")
    rows = [("u1", 100, "control"), ("u2", 300, "control"), ("u3", 50, "treatment"), ("u4", 150, "treatment")]
    for u, ms, arm in rows:
        db.duckdb.execute("insert into calls (call_id, ts, user_id, feature, status, latency_ms, variant) values "
                          f"('{u}c', '2026-01-02', '{u}', 'chat', 'ok', {ms}, '{arm}'),"
                          f"('{u}s', '2026-01-02', '{u}', 'search', 'ok', 1000, null)")
    db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
                      "('e1', 'u1', '2026-01-10', 'ask', 'search'), ('e0', 'u2', '2026-01-20', 'ask', 'chat')")
    return db


def test_experiment_metrics_are_computed_inside_its_scope():
    db = _scoped_db()
    r = X.experiment_summary(db, "e", metrics=("latency_ms",), config={}).row(0, named=True)
    # inside chat: (100 - 200) / 200 = -0.5. Before, every call of the users: control (550 + 650) / 2 = 600,
    # treatment (525 + 575) / 2 = 550 -> -0.0833
    assert (r["mean_control"], r["mean_variant"], r["effect"]) == (200.0, 100.0, pytest.approx(-0.5))
    assert r["scope"] == "feature=chat (inferred: the feature of the calls tagged with their arm)"
    every = X.experiment_summary(db, "e", metrics=("latency_ms",), scope="all").row(0, named=True)
    assert (every["mean_control"], every["effect"], every["scope"]) == (600.0, pytest.approx(-50 / 600),
                                                                       "all calls of the exposed units")
    # declared in workbench.toml wins over the inference
    declared = X.experiment_summary(db, "e", metrics=("latency_ms",),
                                    config={"experiments": {"e": {"feature": "search"}}}).row(0, named=True)
    assert (declared["effect"], declared["scope"]) == (0.0, "feature=search (declared in experiments.e)")
    # the decision table and the suite's view say the scope too
    assert set(X.decision_table(db, "e", metrics=("latency_ms",), guardrails=(), config={})["scope"]) == {r["scope"]}
    eff = X.experiment_effect(db, experiment="e", config={})
    assert eff["value"].item() == pytest.approx(-0.5) and eff["scope"].item() == r["scope"]


def test_retained_is_measured_inside_the_scope_too():
    db = _scoped_db()
    # retained = any event 7+ days after exposure. u1's day-10 event is in search: retained in all, not in chat;
    # u2 is back in chat on day 20. Control: all 2/2, chat 1/2.
    r = X.experiment_summary(db, "e", metrics=("retained",), config={}, end="2026-01-21").row(0, named=True)
    assert (r["mean_control"], r["n_control"]) == (0.5, 2)
    a = X.experiment_summary(db, "e", metrics=("retained",), scope="all", end="2026-01-21").row(0, named=True)
    assert a["mean_control"] == 1.0


def test_declared_scope_errors_name_the_table(tmp_path):
    p = tmp_path / "workbench.toml"
    p.write_text('[experiments.e]\nfeatures = "chat"\n')
    with pytest.raises(wb.errors.ConfigError, match=r"workbench.toml \[experiments.e\]: expected feature"):
        X.experiment_scope(_scoped_db(), "e", config=p)
    p.write_text('[experiments.e]\nfeature = "chat"\n')
    assert X.experiment_scope(_scoped_db(), "e", config=p) == (
        {"feature": "chat"}, "feature=chat (declared in workbench.toml [experiments.e])")


def test_a_unit_in_two_arms_is_left_out_and_a_row_without_an_arm_is_no_exposure():
    # u1 assigned to both arms was counted in each (srm 2/2) and twice in each arm's cost sums (n 3/3, mean 2.0 where
    # (1 + 2) / 2 = 1.5 with u1 once); a NULL variant made srm, experiment_summary and decision_table fail on sorted()
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values "
                      "('x', 'u1', 'control', '2026-01-01'), ('x', 'u1', 'treatment', '2026-01-01'),"
                      "('x', 'u2', 'control', '2026-01-01'), ('x', 'u3', 'treatment', '2026-01-01'),"
                      "('x', 'u4', 'control', '2026-01-01'), ('x', 'u4', 'control', '2026-01-02'),"
                      "('x', 'u5', null, '2026-01-01')")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, user_id, cost_usd) values "
                      "('c1', '2026-01-03', 'f', 'ok', 'u1', 1), ('c2', '2026-01-03', 'f', 'ok', 'u2', 2),"
                      "('c3', '2026-01-03', 'f', 'ok', 'u3', 3), ('c4', '2026-01-03', 'f', 'ok', 'u4', 4)")
    s = X.srm(db, "x", weights={"control": 0.5, "treatment": 0.5})
    assert dict(s.select("variant", "users").rows()) == {"control": 2, "treatment": 1}  # u2, u4 (once); u3
    # u1 was dropped without a word: the readout says how many units were left out for being in two arms
    assert s["multiple_exposures_count"].to_list() == [1, 1]
    r = X.experiment_summary(db, "x", metrics=["cost_usd"], relative=False, scope="all").row(0, named=True)
    assert (r["n_control"], r["n_variant"], r["multiple_exposures_count"]) == (2, 1, 1)
    assert (r["mean_control"], r["mean_variant"]) == (3.0, 3.0)  # (2 + 4) / 2; 3


def test_decision_guardrail_from_zero_in_control_is_judged_not_no_data():
    # control without a single error, half the treatment users with one: the relative lift over 0 is undefined, and
    # the guardrail read "no data" while every user had data, so the faster arm was "ship"
    db = wb.connect(":memory:")
    assign, calls = [], []
    for arm in ("control", "treatment"):
        for i in range(100):
            u = f"{arm}{i}"
            assign.append((u, arm))
            status = "error" if arm == "treatment" and i % 2 == 0 else "ok"
            calls.append((f"c{u}", u, "2026-01-02", status, (200 if arm == "control" else 100) + i % 5 * 10, 0.01))
    _assign(db, assign)
    _calls(db, calls)
    d = X.decision_table(db, "e", metrics=("latency_ms",), guardrails=("error_rate",))
    rows = {r["metric"]: r for r in d.iter_rows(named=True)}
    assert rows["error_rate"]["verdict"] == "worse"
    assert rows["error_rate"]["relative"] is False and rows["error_rate"]["effect"] == 0.5  # 0.5 - 0 errors per user
    assert rows["latency_ms"]["relative"] is True
    assert rows["overall"]["verdict"] == "do not ship: guardrail error_rate worse"


def test_decision_guardrail_at_zero_against_every_unit_failing_is_worse_not_ship():
    # every treatment call errors, no control call does: both arms are constant (error rate 0 and 1 per user), the
    # p(1 - p) variance is 0 in each, the t-test undefined, and the readout said "no clear difference" and "ship"
    # (the failing calls were fast). Newcombe's interval of the difference 1 - 0 (b - a): Wilson upper bound of 0/50
    # is (z^2/50) / (1 + z^2/50) = 0.071348 with z = 1.959964, so 1 - sqrt(2) * 0.071348 = 0.899099 to 1.
    db = wb.connect(":memory:")
    assign, calls = [], []
    for arm in ("control", "treatment"):
        for i in range(50):
            u = f"{arm}{i}"
            assign.append((u, arm))
            status = "error" if arm == "treatment" else "ok"
            calls.append((f"c{u}", u, "2026-01-02", status, (200 if arm == "control" else 100) + i % 5 * 10, 0.01))
    _assign(db, assign)
    _calls(db, calls)
    s = X.experiment_summary(db, "e", metrics=("error_rate",), relative=False).row(0, named=True)
    assert (s["effect"], round(s["lo"], 6), s["hi"]) == (1.0, 0.899099, 1.0)
    # a cost of 0 for every unit of both arms (no call priced) is 0/1 data too, but no proportion: no interval in
    # proportion units (it was -0.0713 to 0.0713 USD)
    empty = wb.connect(":memory:")
    _assign(empty, assign)
    c = X.experiment_summary(empty, "e", metrics=("cost_usd",), relative=False).row(0, named=True)
    assert (c["effect"], c["lo"], c["hi"]) == (0.0, None, None)
    # an arm of one unit keeps no interval either (it was 0.09 to 0.97 for 1 error of 1 against 3 of 30)
    one = wb.connect(":memory:")
    _assign(one, [(f"c{i}", "control") for i in range(30)] + [("t0", "treatment")])
    _calls(one, [(f"cc{i}", f"c{i}", "2026-01-02", "error" if i < 3 else "ok", 200, 0.01) for i in range(30)]
           + [("tc0", "t0", "2026-01-02", "error", 200, 0.01)])
    o = X.experiment_summary(one, "e", metrics=("error_rate",), relative=False).row(0, named=True)
    assert (round(o["effect"], 12), o["lo"], o["hi"]) == (0.9, None, None)
    for method in ("frequentist", "sequential", "bayesian"):
        d = X.decision_table(db, "e", metrics=("latency_ms",), guardrails=("error_rate",), method=method)
        rows = {r["metric"]: r for r in d.iter_rows(named=True)}
        assert rows["error_rate"]["verdict"] == "worse", method
        assert rows["overall"]["verdict"] == "do not ship: guardrail error_rate worse", method


def test_a_unit_in_two_arms_is_left_out_when_its_first_arm_is_before_start():
    # u1 saw control on 01-01 and treatment on 01-05: contaminated, but with start="2026-01-03" only its treatment row
    # was read, and it counted as a clean treatment unit (srm 1/2, its cost in the treatment arm's mean)
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values "
                      "('x', 'u1', 'control', '2026-01-01'), ('x', 'u1', 'treatment', '2026-01-05'),"
                      "('x', 'u2', 'control', '2026-01-04'), ('x', 'u3', 'treatment', '2026-01-04')")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, user_id, cost_usd) values "
                      "('c1', '2026-01-06', 'f', 'ok', 'u1', 10), ('c2', '2026-01-06', 'f', 'ok', 'u2', 2),"
                      "('c3', '2026-01-06', 'f', 'ok', 'u3', 3)")
    s = X.srm(db, "x", start="2026-01-03")
    assert dict(s.select("variant", "users").rows()) == {"control": 1, "treatment": 1}
    assert s["multiple_exposures_count"].to_list() == [1, 1]  # u1, whose first arm is before start
    r = X.experiment_summary(db, "x", metrics=["cost_usd"], relative=False, scope="all", start="2026-01-03")
    assert r.select("n_control", "n_variant", "mean_control", "mean_variant").row(0) == (1, 1, 2.0, 3.0)


def test_an_experiment_with_one_arm_is_refused_by_name_not_read_out_empty():
    """An experiment whose assignments hold one arm (the demo's summariser_shadow) gave experiment_summary,
    decision_table and shadow_comparison(experiment=) an empty frame: no row, no word of why."""
    from workbench.errors import ParameterError

    db = wb.connect(":memory:")
    _assign(db, [("u1", "shadow"), ("u2", "shadow")], experiment="solo")
    _calls(db, [("a", "u1", "2026-01-02", "ok", 100, 0.1), ("b", "u2", "2026-01-02", "ok", 200, 0.1)])
    message = ("experiment 'solo' has one arm in assignments ('shadow'): a readout compares a control arm with "
               "another arm")
    for call in (lambda: X.experiment_summary(db, "solo", metrics=["latency_ms"], scope="all"),
                 lambda: X.decision_table(db, "solo", metrics=["latency_ms"], guardrails=(), scope="all"),
                 lambda: X.shadow_comparison(db, experiment="solo")):
        with pytest.raises(ParameterError, match=re.escape(message)):
            call()
    assert X.srm(db, "solo")["users"].to_list() == [2]  # the sample-ratio check of one arm still reads


def test_retained_leaves_out_units_exposed_exactly_retention_days_before_end():
    # end is exclusive: a unit exposed 2026-01-02 is retained by an event from 2026-01-09 on, and with end 2026-01-09
    # none can be read, yet u3 and u4 were counted as not retained (control 0.5 where u1, the only one measurable, is 1)
    db = wb.connect(":memory:")
    _assign(db, [("u1", "control"), ("u2", "treatment")])
    db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values "
                      "('e', 'u3', 'control', '2026-01-02'), ('e', 'u4', 'treatment', '2026-01-02')")
    db.duckdb.execute("insert into events (event_id, ts, user_id, event) values ('1', '2026-01-08 12:00', 'u1', 'x'),"
                      "('2', '2026-01-09', 'u2', 'x'), ('3', '2026-01-09 05:00', 'u3', 'x'),"
                      "('4', '2026-01-09', 'u4', 'x')")
    r = X.experiment_summary(db, "e", metrics=["retained"], relative=False, scope="all", end="2026-01-09")
    assert r.select("n_control", "n_variant", "mean_control", "mean_variant").row(0) == (1, 1, 1.0, 0.0)
