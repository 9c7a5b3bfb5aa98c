"""workbench.metrics.drift: Evidently's default tests on windows of a database, and text drift by a domain classifier."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.metrics import drift as D
from workbench import metrics
from workbench.errors import ParameterError

GOLDENS = json.loads((Path(__file__).resolve().parent / "goldens" / "published.json").read_text())
REF = ("2026-01-01", "2026-01-02")
CUR = ("2026-01-02", "2026-01-03")


def _load(db, ref: dict, cur: dict, table: str = "calls"):
    """Insert calls (or answers): columns given as lists, reference rows on 2026-01-01, current rows on 2026-01-02."""
    frames = []
    for day, cols in (("2026-01-01", ref), ("2026-01-02", cur)):
        n = len(next(iter(cols.values())))
        frames.append(pl.DataFrame({
            "call_id": [f"{day}-{i}" for i in range(n)],
            "ts": pl.datetime_range(pl.datetime(*map(int, day.split("-"))), pl.datetime(*map(int, day.split("-")))
                                    + pl.duration(seconds=n - 1), "1s", eager=True),
            **({"status": ["ok"] * n} if table == "calls" else {}), **cols}))
    df = pl.concat(frames, how="diagonal_relaxed")
    _insert(db, table, df)


def _insert(db, table, df):
    cols = ", ".join(df.columns)
    db.duckdb.register("_rows", df.to_arrow())
    db.duckdb.execute(f"insert into {table} ({cols}) select {cols} from _rows")
    db.duckdb.unregister("_rows")


def _report(db, **kw):
    r = D.drift_report(db, reference=REF, current=CUR, **kw)
    return {row["column"]: row for row in r.iter_rows(named=True)}


def test_identical_windows_do_not_drift_small_and_large():
    rng = np.random.default_rng(0)
    for n in (500, 3000):
        db = wb.connect(":memory:")
        x = rng.normal(100, 10, n).tolist()
        _load(db, {"latency_ms": x, "model": ["a", "b", "c"] * (n // 3) + ["a"] * (n % 3)},
              {"latency_ms": x, "model": ["a", "b", "c"] * (n // 3) + ["a"] * (n % 3)})
        r = _report(db, columns=["latency_ms", "model"])
        small = n <= 1000
        assert r["latency_ms"]["test"] == ("ks" if small else "wasserstein")
        assert r["model"]["test"] == ("chi_square" if small else "jensen_shannon")
        assert not r["latency_ms"]["drifted"] and not r["model"]["drifted"]
        assert r["latency_ms"]["psi"] == pytest.approx(0.0)
        assert r["__dataset__"]["statistic"] == 0.0 and not r["__dataset__"]["drifted"]


def test_shifted_normal_drifts_small_and_large():
    rng = np.random.default_rng(1)
    for n in (400, 2000):
        db = wb.connect(":memory:")
        _load(db, {"latency_ms": rng.normal(100, 10, n).tolist()}, {"latency_ms": rng.normal(105, 10, n).tolist()})
        r = _report(db, columns=["latency_ms"])
        assert r["latency_ms"]["drifted"], r["latency_ms"]
        assert r["__dataset__"]["drifted"]
        if n > 1000:
            # half a standard deviation: the normalised Wasserstein distance is ~0.5
            assert r["latency_ms"]["statistic"] == pytest.approx(0.5, abs=0.1)


def test_evidently_chi_square_golden_through_the_database():
    g = GOLDENS["drift_evidently"]["chi_square"]
    expand = lambda counts: [k for k, c in counts.items() for _ in range(c)]  # noqa: E731
    db = wb.connect(":memory:")
    _load(db, {"finish_reason": expand(g["reference_counts"])}, {"finish_reason": expand(g["current_counts"])})
    r = _report(db, columns=["finish_reason"])["finish_reason"]
    assert (r["type"], r["test"], round(r["statistic"], 5), r["drifted"]) == ("categorical", "chi_square", g["p"],
                                                                                False)


def test_type_rules_binary_and_few_distinct_numbers():
    db = wb.connect(":memory:")
    n = 300
    _load(db, {"fallback": [i % 10 == 0 for i in range(n)], "attempt": [1 + i % 3 for i in range(n)],
               "status": ["ok"] * n},
          {"fallback": [i % 2 == 0 for i in range(n)], "attempt": [1 + i % 3 for i in range(n)],
           "status": ["ok"] * n})
    r = _report(db, columns=["fallback", "attempt"])
    assert (r["fallback"]["type"], r["fallback"]["test"], r["fallback"]["drifted"]) == ("binary", "z", True)
    assert (r["attempt"]["type"], r["attempt"]["test"], r["attempt"]["drifted"]) == ("categorical", "chi_square",
                                                                                     False)
    # one of two columns drifted: 50% is dataset drift
    assert r["__dataset__"]["statistic"] == 0.5 and r["__dataset__"]["drifted"]


def test_evals_scores_for_one_metric():
    db = wb.connect(":memory:")
    rows = [f"('r{i}', 'hallucination_score', {0.1 + (i % 10) / 100}, 'd', '1', timestamp '2026-01-01')"
            for i in range(100)]
    rows += [f"('c{i}', 'hallucination_score', {0.6 + (i % 10) / 100}, 'd', '1', timestamp '2026-01-02')"
             for i in range(100)]
    rows += [f"('c{i}', 'faithfulness_score', 0.1, 'd', '1', timestamp '2026-01-02')" for i in range(100)]
    db.duckdb.execute("insert into evals (call_id, metric, value, evaluator, evaluator_version, ts) values "
                      + ",".join(rows))
    # dated by their answers (a score of an answer without a time is in neither window)
    db.duckdb.execute("insert into answers (call_id, answer, ts) select call_id, 'x', if(call_id[1] = 'r', "
                      "timestamp '2026-01-01', timestamp '2026-01-02') from (select distinct call_id from evals)")
    r = _report(db, table="evals", metric="hallucination_score", evaluator="d")
    assert (r["value"]["n_reference"], r["value"]["n_current"], r["value"]["drifted"]) == (100, 100, True)
    with pytest.raises(ValueError, match="needs metric="):
        D.drift_report(db, table="evals", reference=REF, current=CUR)



def test_scores_are_dated_by_their_answer_not_by_when_they_were_scored():
    """The experiments report's drift of the hallucination scores read 0 and 0 rows ('this week against the previous
    one') beside a hallucination report of 528 scored answers that week: the scores were windowed on evals.ts, the
    day `workbench eval` ran. A score is dated by its answer's call (as the hallucination metrics date it)."""
    db = wb.connect(":memory:")
    calls = [f"('r{i}', timestamp '2026-01-01 10:00', 'ok')" for i in range(100)]
    calls += [f"('c{i}', timestamp '2026-01-02 10:00', 'ok')" for i in range(100)]
    db.duckdb.execute("insert into calls (call_id, ts, status) values " + ",".join(calls))
    db.duckdb.execute("insert into answers (call_id, ts, answer) values ('a0', timestamp '2026-01-02 11:00', 'x')")
    scored = "timestamp '2026-02-01'"  # one batch evaluation, weeks later
    rows = [f"('r{i}', 'hallucination_score', {0.1 + (i % 10) / 100}, 'd', '1', {scored})" for i in range(100)]
    rows += [f"('c{i}', 'hallucination_score', {0.6 + (i % 10) / 100}, 'd', '1', {scored})" for i in range(100)]
    rows += [f"('a0', 'hallucination_score', 0.5, 'd', '1', {scored})"]  # an answer without a call: its own time
    # no call, no answer time: undated, in neither window, though scored in the current one (it was dated by its
    # score here, where hallucination_rate left it undated)
    rows += [f"('u0', 'hallucination_score', 0.9, 'd', '1', timestamp '2026-01-02 12:00')"]
    db.duckdb.execute("insert into evals (call_id, metric, value, evaluator, evaluator_version, ts) values "
                      + ",".join(rows))
    r = _report(db, table="evals", metric="hallucination_score", evaluator="d")
    assert (r["value"]["n_reference"], r["value"]["n_current"], r["value"]["drifted"]) == (100, 101, True)
    # the dates of the hallucination metrics, one definition: u0 is their undated row
    per_day = wb.hallucination_score(db, evaluator="d", version="1", by=(), period="day")
    assert per_day.select("period_start", "n").rows() == [
        (dt.datetime(2026, 1, 1), 100), (dt.datetime(2026, 1, 2), 101), (None, 1)]


def test_drift_of_scores_compares_one_evaluator_version_on_production_answers():
    """The drift of the hallucination scores mixed every evaluator, every version of each and the test-set answers
    with production: a judge upgraded in the current week (its new version scoring higher), another evaluator's
    scores in the reference week and a benchmark set scored this week all read as drift of production quality."""
    db = wb.connect(":memory:")
    calls = [f"('r{i}', timestamp '2026-01-01 10:00', 'chat', 'ok')" for i in range(100)]
    calls += [f"('c{i}', timestamp '2026-01-02 10:00', 'chat', 'ok')" for i in range(100)]
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) values " + ",".join(calls))
    # a labelled test set: no logged call, a dataset named as the source, answered this week
    db.duckdb.execute("insert into answers (call_id, answer, source, ts) select 'b' || i, 'x', 'halu_dev', "
                      "timestamp '2026-01-02 11:00' from range(100) t(i)")
    same = [f"('{k}{i}', 'hallucination_score', {0.1 + (i % 10) / 100}, 'd', '1', timestamp '2026-01-03')"
            for k in "rc" for i in range(100)]
    v2 = [f"('c{i}', 'hallucination_score', {0.6 + (i % 10) / 100}, 'd', '2', timestamp '2026-01-04')"
          for i in range(100)]
    other = [f"('r{i}', 'hallucination_score', 0.9, 'j', '1', timestamp '2026-01-03')" for i in range(100)]
    bench = [f"('b{i}', 'hallucination_score', 0.95, 'd', '1', timestamp '2026-01-03')" for i in range(100)]
    db.duckdb.execute("insert into evals (call_id, metric, value, evaluator, evaluator_version, ts) values "
                      + ",".join(same + v2 + other + bench))
    cols = ("n_reference", "n_current", "drifted")
    # by default the scores the hallucination metrics read: the configured detector's, none here (was 200 vs 300)
    r = _report(db, table="evals", metric="hallucination_score")["value"]
    assert tuple(r[c] for c in cols) == (0, 0, None)
    # version 1 of d on the production answers of both weeks: the same scores, no drift (was 200 vs 300, drift)
    r = _report(db, table="evals", metric="hallucination_score", evaluator="d", version="1")["value"]
    assert tuple(r[c] for c in cols) == (100, 100, False)
    # by default d's latest version: it scored the current week only, so there is nothing to compare against
    r = _report(db, table="evals", metric="hallucination_score", evaluator="d")["value"]
    assert tuple(r[c] for c in cols) == (0, 100, None)
    # the test set only when asked for (it is in the current week only)
    r = _report(db, table="evals", metric="hallucination_score", evaluator="d", version="1", traffic="all")["value"]
    assert tuple(r[c] for c in cols) == (100, 200, True)
    # the metric of the suite takes the same choices, and a feature of the answers' calls as its where
    rate = D.drifted_column_rate(db, table="evals", metric="hallucination_score", evaluator="d", version="1",
                                 start=CUR[0], end=CUR[1], where={"feature": "chat"})
    assert rate.select("value", "n", "dataset_drift").row(0) == (0.0, 1, False)
    with pytest.raises(ParameterError, match="drift_report: evaluator and version apply to table='evals'"):
        D.drift_report(db, evaluator="d", reference=REF, current=CUR)


def test_sampling_is_capped_and_deterministic():
    rng = np.random.default_rng(2)
    db = wb.connect(":memory:")
    _load(db, {"latency_ms": rng.normal(size=500).tolist()}, {"latency_ms": rng.normal(size=500).tolist()})
    a = D.drift_report(db, columns=["latency_ms"], reference=REF, current=CUR, max_rows=200)
    b = D.drift_report(db, columns=["latency_ms"], reference=REF, current=CUR, max_rows=200)
    assert a["n_reference"][0] == 200 and a["sampled"][0]
    assert a.equals(b)


def test_bad_inputs_are_named():
    db = wb.connect(":memory:")
    with pytest.raises(KeyError, match="no column"):
        D.drift_report(db, columns=["nope"], reference=REF, current=CUR)
    with pytest.raises(TypeError, match="reference must be a"):
        D.drift_report(db, columns=["latency_ms"], reference="2026-01-01", current=CUR)


def test_a_window_that_ends_before_it_starts_is_refused_not_read_as_no_data():
    # (end, start) for (start, end): the reference was an empty window and every column "not tested", silently
    db = wb.connect(":memory:")
    _load(db, {"latency_ms": [1.0, 2.0, 3.0]}, {"latency_ms": [1.0, 2.0, 3.0]})
    with pytest.raises(ParameterError, match="drift_report: reference: start 2026-01-02 is not before end 2026-01-01"):
        D.drift_report(db, columns=["latency_ms"], reference=("2026-01-02", "2026-01-01"), current=CUR)
    with pytest.raises(ParameterError, match="text_drift: current: start 2026-01-02 is not before end 2026-01-02"):
        D.text_drift(db, reference=REF, current=("2026-01-02", "2026-01-02"))
    with pytest.raises(ParameterError, match="drifted_column_rate: reference: start 2026-01-02 is not before end"):
        D.drifted_column_rate(db, start="2026-01-02", end="2026-01-03", reference=("2026-01-02", "2026-01-01"),
                              columns=["latency_ms"])


def test_empty_window_is_undefined_not_no_drift():
    db = wb.connect(":memory:")
    _load(db, {"latency_ms": [1.0, 2.0, 3.0]}, {"latency_ms": [1.0, 2.0, 3.0]})
    r = D.drift_report(db, columns=["latency_ms"], reference=("2025-01-01", "2025-01-02"), current=CUR)
    assert r["drifted"].to_list() == [None, None]
    # no values on either side: untested, and typed categorical (not binary for "at most 2 values")
    assert D.column_drift([None, None], [None])["type"] == "categorical"
    assert D.column_drift(["a"], [None])["type"] == "binary"


# -- text -------------------------------------------------------------------------------------------------------------

WORDS = ("order refund invoice account password delivery shipping card payment address email support ticket "
         "reset login update cancel return product warranty").split()


def _sentences(rng, words, n):
    return [" ".join(rng.choice(words, size=8)) for _ in range(n)]


def test_same_distribution_texts_do_not_drift():
    rng = np.random.default_rng(3)
    r = D.text_drift_score(_sentences(rng, WORDS, 300), _sentences(rng, WORDS, 300))
    assert abs(r["auc"] - 0.5) < 0.05
    assert not r["drifted"]


def test_new_vocabulary_drifts_and_names_its_terms():
    rng = np.random.default_rng(4)
    new = WORDS[:10] + ["router", "firmware", "reboot", "wifi", "modem"]
    r = D.text_drift_score(_sentences(rng, WORDS, 300), _sentences(rng, new, 300))
    assert r["auc"] > 0.9 and r["drifted"]
    assert set(r["terms_current"][:3]) <= {"router", "firmware", "reboot", "wifi", "modem"}


def test_a_few_texts_need_more_than_0_55_to_drift():
    # 200 reference and 5 current texts of the same words: the cross-validated AUC is noise of sd ~0.16 around 0.5,
    # and 0.55 flagged drift on such samples about half the time (here 0.571). The bar is raised to the 95th
    # percentile of the AUC of a classifier that cannot tell the sides apart (Mann-Whitney null, Evidently's
    # "random classifiers" percentile): 0.5 + 1.644854 sqrt((200 + 5 + 1) / (12 * 200 * 5)) = 0.715511.
    rng = np.random.default_rng(3)
    r = D.text_drift_score(_sentences(rng, WORDS, 200), _sentences(rng, WORDS, 5))
    assert (r["auc"], round(r["threshold"], 6), r["drifted"]) == (0.571, 0.715511, False)
    # new vocabulary drifts on five texts too
    new = ["router", "firmware", "reboot", "wifi", "modem"]
    assert D.text_drift_score(_sentences(rng, WORDS, 200), _sentences(rng, new, 5))["drifted"]
    # a few hundred a side: 0.5 + 1.644854 sqrt(401 / 480000) = 0.5475, below 0.55, which stays the bar
    assert D.text_drift_score(_sentences(rng, WORDS, 200), _sentences(rng, WORDS, 200))["threshold"] == 0.55


def test_text_drift_is_deterministic_for_a_seed():
    rng = np.random.default_rng(5)
    ref, cur = _sentences(rng, WORDS, 100), _sentences(rng, WORDS[:15], 100)
    assert D.text_drift_score(ref, cur, seed=7) == D.text_drift_score(ref, cur, seed=7)


def test_text_drift_on_answers_table():
    rng = np.random.default_rng(6)
    db = wb.connect(":memory:")
    import datetime as dt

    _insert(db, "answers", pl.DataFrame({
        "call_id": [f"r{i}" for i in range(200)] + [f"c{i}" for i in range(200)],
        "answer": _sentences(rng, WORDS, 400),
        "ts": [dt.datetime(2026, 1, 1)] * 200 + [dt.datetime(2026, 1, 2)] * 200}))
    r = D.text_drift(db, reference=REF, current=CUR)
    assert r["n_reference"][0] == 200 and r["auc"][0] < 0.55 and not r["drifted"][0]


def test_text_drift_of_answers_reads_production_answers_not_a_test_set_loaded_beside_them():
    # a labelled test set (no logged call, a dataset as its source) loaded in the current window is not a change of
    # what the product answers: it was read as drift of the answers (as it was of their scores, by evals drift)
    rng = np.random.default_rng(8)
    db = wb.connect(":memory:")
    other = "theorem integral matrix vector proof lemma axiom tensor manifold scalar".split()
    _insert(db, "answers", pl.DataFrame({
        "call_id": [f"r{i}" for i in range(200)] + [f"c{i}" for i in range(200)] + [f"h{i}" for i in range(200)],
        "answer": _sentences(rng, WORDS, 400) + _sentences(rng, other, 200),
        "source": [None] * 400 + ["halu_eval"] * 200,
        "ts": [dt.datetime(2026, 1, 1)] * 200 + [dt.datetime(2026, 1, 2)] * 400}))
    r = D.text_drift(db, reference=REF, current=CUR).row(0, named=True)
    assert (r["n_reference"], r["n_current"], r["drifted"]) == (200, 200, False)
    r = D.text_drift(db, reference=REF, current=CUR, traffic="all").row(0, named=True)
    assert (r["n_reference"], r["n_current"], r["drifted"]) == (200, 400, True)
    with pytest.raises(wb.errors.TooFewError, match="reference needs at least 3 texts, got 0"):  # the test set only
        D.text_drift(db, reference=REF, current=CUR, traffic="benchmark")
    with pytest.raises(ParameterError, match="traffic: expected one of production, benchmark, all"):
        D.text_drift(db, reference=REF, current=CUR, traffic="prod")


def test_drifted_column_rate_in_suite():
    assert metrics.suite()["drifted_column_rate"] is D.drifted_column_rate
    rng = np.random.default_rng(7)
    db = wb.connect(":memory:")
    _load(db, {"latency_ms": rng.normal(100, 10, 300).tolist(), "feature": ["a", "b"] * 150},
          {"latency_ms": (rng.normal(100, 10, 300) + np.array([0, 30] * 150)).tolist(), "feature": ["a", "b"] * 150})
    r = D.drifted_column_rate(db, by=("feature",), start=CUR[0], end=CUR[1], columns=["latency_ms"])
    assert r.select("feature", "metric", "value", "n", "dataset_drift").rows() == [
        ("a", "drifted_column_rate", 0.0, 1, False), ("b", "drifted_column_rate", 1.0, 1, True)]


# -- Evidently itself: goldens written by benchmarks/evidently_goldens.py with Evidently's DataDriftPreset -------------

EVIDENTLY = sorted((Path(__file__).resolve().parent / "goldens" / "evidently").glob("*.json"))
METHOD = {"K-S p_value": "ks", "chi-square p_value": "chi_square", "Z-test p_value": "z",
          "Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensen_shannon",
          "Percentile text content drift": "domain_classifier", "Absolute text content drift": "domain_classifier"}
COLUMN = {"retries": "attempt"}  # the golden's column names -> calls columns


@pytest.mark.parametrize("path", EVIDENTLY, ids=[p.stem for p in EVIDENTLY])
def test_drift_report_reproduces_evidently(path):
    g = json.loads(path.read_text())
    assert g["meta"]["evidently"].startswith("0.7.")
    db = wb.connect(":memory:")
    ref = {COLUMN.get(k, k): v for k, v in g["reference"].items()}
    cur = {COLUMN.get(k, k): v for k, v in g["current"].items()}
    table = g.get("table", "calls")
    _load(db, ref, cur, table)
    cols = list(ref)
    if "status" in g["reference"]:  # _load writes status = ok; put the golden's back
        for day, values in (("2026-01-01", g["reference"]["status"]), ("2026-01-02", g["current"]["status"])):
            db.duckdb.register("_s", pl.DataFrame({"call_id": [f"{day}-{i}" for i in range(len(values))],
                                                   "s": values}).to_arrow())
            db.duckdb.execute("update calls set status = _s.s from _s where calls.call_id = _s.call_id")
            db.duckdb.unregister("_s")
    # the goldens' answers have no logged call and a source: all traffic, not only the production answers
    r = _report(db, table=table, columns=cols, **({"traffic": "all"} if table == "answers" else {}))
    for name, ev in g["evidently"]["columns"].items():
        row = r[COLUMN.get(name, name)]
        assert row["test"] == METHOD[ev["method"]], name
        if row["test"] == "domain_classifier":
            # free text: the workbench's own text drift (not Evidently's classifier, so not its score): the same
            # verdict, and the AUC of text_drift_score on the same texts
            auc = D.text_drift_score(g["reference"][name], g["current"][name])["auc"]
            assert (row["statistic"], row["threshold"], row["drifted"]) == (auc, 0.55, ev["drifted"]), name
            assert D.column_drift(g["reference"][name], g["current"][name])["statistic"] == auc
            continue
        assert row["threshold"] == ev["threshold"], name
        assert row["statistic"] == pytest.approx(ev["score"], rel=1e-9, abs=1e-300), name
        assert row["drifted"] == ev["drifted"], name
        # the function on the raw values gives the same numbers
        one = D.column_drift(g["reference"][name], g["current"][name])
        assert (one["test"], one["drifted"]) == (METHOD[ev["method"]], ev["drifted"])
        assert one["statistic"] == pytest.approx(ev["score"], rel=1e-9, abs=1e-300)
    ds = g["evidently"]["dataset"]
    assert r["__dataset__"]["statistic"] == pytest.approx(ds["share"])
    assert r["__dataset__"]["drifted"] == (ds["share"] >= ds["drift_share"])


def test_jensen_shannon_uses_the_natural_log_as_evidently():
    # exact counts 600/500/400 vs 440/520/540: natural log 0.087592 (Evidently: no drift), base 2 0.105209 (was drift)
    g = json.loads((Path(__file__).resolve().parent / "goldens" / "evidently" / "large_js_borderline.json").read_text())
    r = D.column_drift(g["reference"]["model"], g["current"]["model"])
    assert (r["test"], round(r["statistic"], 6), r["drifted"]) == ("jensen_shannon", 0.087592, False)


def test_verdicts_at_the_threshold_compare_as_evidently(monkeypatch):
    # a p-value exactly at 0.05: K-S drifts (p <= 0.05), chi-square and z do not (p < 0.05); a distance at 0.1 drifts
    monkeypatch.setattr(D.stats, "ks_pvalue", lambda r, c: 0.05)
    monkeypatch.setattr(D.stats, "chi_square_pvalue", lambda r, c: 0.05)
    monkeypatch.setattr(D.stats, "z_test_pvalue", lambda *a: 0.05)
    monkeypatch.setattr(D.stats, "jensen_shannon_distance", lambda *a, **k: 0.1)
    assert D.column_drift(list(range(11)), list(range(11)))["drifted"] is True  # 11 integers: K-S (10: chi-square)
    assert D.column_drift(["a", "b", "c"] * 5, ["a", "b", "c"] * 5)["drifted"] is False
    assert D.column_drift(["a", "b"] * 5, ["a", "b"] * 5)["drifted"] is False
    assert D.column_drift(["a", "b", "c"] * 400, ["a", "b", "c"] * 400)["drifted"] is True


@pytest.mark.parametrize("folds", [0, 1, -1, 2.5, True])
def test_text_drift_refuses_folds_below_two(folds):
    # folds=0 returned the AUC of uninitialised memory (identical texts: 1.0, drifted), folds=1 fitted on no texts
    # (AUC 0.5 whatever the texts): neither is a cross-validated AUC
    texts = [f"hello world {i % 7}" for i in range(60)]
    with pytest.raises(ParameterError, match=r"text_drift_score: folds must be an integer >= 2, got "):
        D.text_drift_score(texts, texts, folds=folds)


def test_nan_and_infinity_are_dropped_before_testing_as_evidently():
    # NaN (a value, not a null, in a polars or numpy float column) and +-inf are dropped, as Evidently does: what is
    # left is the same six values on both sides (K-S p = 1, PSI 0), counted without them. Was p = NaN, "no drift",
    # or a ValueError from the PSI binning.
    nan, inf = float("nan"), float("inf")
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    for ref, cur in ((pl.Series(values + [nan, inf]), pl.Series(values + [-inf])),
                     (values + [nan] * 3, np.array(values + [inf]))):
        r = D.column_drift(ref, cur)
        assert (r["type"], r["test"], r["statistic"], r["drifted"], r["psi"], r["n_reference"], r["n_current"]) == (
            "numeric", "ks", 1.0, False, 0.0, 6, 6)
    r = D.column_drift([nan, inf], values)
    assert (r["test"], r["drifted"], r["n_reference"]) == (None, None, 0)  # nothing left: untested, as an empty side


def test_a_plain_list_mixing_ints_and_floats_is_a_numeric_sample_and_other_mixes_are_named():
    # [1, 2.5, ...] (numbers as JSON gives them) raised polars' "unexpected value while building Series of type
    # Int64" from inside column_drift. Here both sides are 1..7 but for one value each (2.5 for 2, 7.5 for 7): the
    # largest gap of the two empirical CDFs is 1/7, and scipy.stats.ks_2samp gives p = 0.99996 (asymptotic).
    r = D.column_drift([1, 2.5, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7.5])
    assert (r["type"], r["test"], round(r["statistic"], 5), r["n_reference"], r["n_current"]) == (
        "numeric", "ks", 0.99996, 7, 7)
    with pytest.raises(TypeError, match="column_drift: reference mixes value types .*int.*str"):
        D.column_drift([1, "a", 2], [1, 2, 3])
    with pytest.raises(TypeError, match="column_drift: current must be a sequence of values, got None"):
        D.column_drift([1, 2, 3], None)
    with pytest.raises(TypeError, match="column_drift: reference must be a sequence of values, got a string"):
        D.column_drift("abc", ["a", "b", "c"])


def test_a_float_column_with_more_than_five_values_over_both_windows_is_numeric():
    # 1, 2, 3, 4, 5 in reference and 1, 2, 3, 4, 5.5 in current: five values a side but six over both, which
    # Evidently (pd.concat([reference, current]).nunique() > 5) tests with K-S. It was counted per side (5), tested
    # as categories: 5.5 a new category, chi-square p = 0 and drift. K-S: the largest CDF gap is 0.2 (at 5), and
    # scipy.stats.ks_2samp gives p = 0.83197 (exact, n = m = 20).
    r = D.column_drift([1.0, 2.0, 3.0, 4.0, 5.0] * 4, [1.0, 2.0, 3.0, 4.0, 5.5] * 4)
    assert (r["type"], r["test"], round(r["statistic"], 5), r["drifted"]) == ("numeric", "ks", 0.83197, False)
    # five values over both windows stay categories
    assert D.column_drift([1.0, 2.0, 3.0, 4.0, 5.0] * 4, [1.0, 2.0, 3.0, 4.0, 4.0] * 4)["test"] == "chi_square"


def test_int_and_float_samples_of_the_same_numbers_compare_by_value():
    # 1 and 1.0 are one category (as in Evidently, where pandas counts them together): were "1" and "1.0", every
    # current value a new category, p = 0 and drift
    same = D.column_drift([1, 2, 3] * 50, [1.0, 2.0, 3.0] * 50)
    assert (same["type"], same["test"], same["statistic"], same["drifted"], same["psi"]) == (
        "categorical", "chi_square", 1.0, False, 0.0)
    # current 60/50/40 against reference shares 1/3: chi-square (100 + 0 + 100) / 50 = 4 on 2 df, p = exp(-2);
    # PSI (1/3 - 0.4) ln(5/6) + (1/3 - 4/15) ln(5/4)
    r = D.column_drift([1, 2, 3] * 50, [1.0] * 60 + [2.0] * 50 + [3.0] * 40)
    assert r["statistic"] == pytest.approx(np.exp(-2), rel=1e-12) and not r["drifted"]
    assert r["psi"] == pytest.approx((1 / 3 - 0.4) * np.log(5 / 6) + (1 / 3 - 4 / 15) * np.log(5 / 4), rel=1e-12)
    b = D.column_drift([0, 1] * 50, [0.0, 1.0] * 50)
    assert (b["type"], b["test"], b["statistic"], b["drifted"]) == ("binary", "z", 1.0, False)  # was p = 3e-16


def test_an_integer_column_is_categorical_by_its_distinct_values_in_current():
    # Evidently 0.7 types a column on the current data: integers with <= 10 distinct values there are categorical.
    # Reference 0..11 x 10, current 0..9 x 12: chi-square of 12 per value against 10 expected, and 0 against 10 for
    # 10 and 11: 10 x 4/10 + 2 x 100/10 = 24 on 11 df
    from scipy.stats import chi2

    r = D.column_drift(list(range(12)) * 10, list(range(10)) * 12)
    assert (r["type"], r["test"], r["drifted"]) == ("categorical", "chi_square", True)
    assert r["statistic"] == pytest.approx(chi2.sf(24, 11), rel=1e-12)
    # the other way round, 11 values in current: numeric, K-S (was K-S both ways: more than 5 values)
    assert (D.column_drift(list(range(10)) * 12, list(range(11)) * 11)["test"]) == "ks"
    # floats are numeric at any count of values above 5, as Evidently: 8 float values, K-S
    assert D.column_drift([x + 0.5 for x in range(8)] * 10, [x + 0.5 for x in range(8)] * 10)["test"] == "ks"
    # a reference of floats and a current of 8 integers: typed by current, categorical
    assert D.column_drift([x + 0.5 for x in range(8)] * 10, list(range(8)) * 10)["test"] == "chi_square"
    # one value on both sides: Evidently's z-test (at most 2 values), p = 1
    c = D.column_drift([0.5] * 30, [0.5] * 30)
    assert (c["type"], c["test"], c["statistic"], c["drifted"]) == ("binary", "z", 1.0, False)


def test_free_text_columns_get_the_text_drift_not_chi_square():
    # answers.question / answer: nearly every text is distinct, so chi-square read every current text as a new
    # category, p = 0 and drift on two samples of one distribution (and the dataset drifted). A string column with
    # more distinct values than half its current rows is text (Evidently's rule) and gets text_drift_score.
    rng = np.random.default_rng(6)
    db = wb.connect(":memory:")
    texts = _sentences(rng, WORDS, 400)
    _load(db, {"question": texts[:200], "answer": texts[:200], "source": ["app", "web"] * 100},
          {"question": texts[200:], "answer": texts[200:], "source": ["app", "web"] * 100}, table="answers")
    # the default columns: question, answer, reference (all null), source; answers with no logged call and a source
    # are a test set's, so all traffic is asked for
    r = _report(db, table="answers", traffic="all")
    one = D.text_drift(db, column="answer", reference=REF, current=CUR, traffic="all").row(0, named=True)
    assert one["auc"] < 0.55 and not one["drifted"]
    for col in ("question", "answer"):
        assert (r[col]["type"], r[col]["test"], r[col]["threshold"], r[col]["psi"]) == (
            "text", "domain_classifier", 0.55, None)
        # the same texts as text_drift's, the same AUC: one text drift
        assert (r[col]["statistic"], r[col]["drifted"], r[col]["n_reference"]) == (one["auc"], False, 200)
    assert r["reference"]["test"] is None and (r["source"]["test"], r["source"]["drifted"]) == ("z", False)
    assert r["__dataset__"]["statistic"] == 0.0  # was 2 of 3 drifted, dataset drift
    # the rule reads the current window: 3 distinct of 4 is text, 2 of 4 categorical
    assert D.column_drift(["a", "b", "c", "a"], ["a", "b", "c", "a"])["type"] == "text"
    assert D.column_drift(["a", "b", "c", "a"], ["a", "b", "a", "b"])["type"] == "categorical"
    # fewer texts than text_drift_score's folds (3) on a side: not tested, as an empty side
    r = D.column_drift(["x y", "y z"], ["p q", "q r"])
    assert (r["type"], r["test"], r["statistic"], r["drifted"]) == ("text", None, None, None)


def test_text_sampled_down_to_5000_a_side_is_flagged():
    # text_drift_score fits on at most 5,000 texts a side (a seeded sample): the row says it sampled
    rng = np.random.default_rng(8)
    db = wb.connect(":memory:")
    texts = [" ".join(rng.choice(WORDS, 6)) + f" {i}" for i in range(10_002)]
    _load(db, {"answer": texts[:5001]}, {"answer": texts[5001:]}, table="answers")
    r = _report(db, table="answers", columns=["answer"])["answer"]
    assert (r["test"], r["n_reference"], r["n_current"], r["sampled"], r["drifted"]) == (
        "domain_classifier", 5000, 5000, True, False)


def test_text_drift_of_texts_repeated_in_both_windows():
    """An evaluation set replayed in both windows: each text is on both sides. A held-out copy scored by a model that
    learnt the other copy with the other label read as the other side: AUC 0.06 for two identical samples, and 0.29
    (no drift) when a quarter of the current texts were a new topic."""
    asked = [f"question {i}: how do I {['reset', 'export', 'share', 'delete'][i % 4]} my "
             f"{['report', 'invoice', 'dashboard'][i % 3]}" for i in range(200)]
    same = D.text_drift_score(asked, asked)
    assert same["auc"] == 0.5 and same["drifted"] is False  # every copy tied with its twin: no ranking at all
    new = [f"why does the bot answer in {['french', 'german', 'spanish'][i % 3]} now, ticket {i}" for i in range(60)]
    # the 200 replayed texts tie with their copies; the 60 new ones, never seen in the reference, rank above every
    # reference text: AUC = (200 * 200 * 0.5 + 60 * 200) / (200 * 260) = 0.5 + 60 / 260 / 2
    moved = D.text_drift_score(asked, asked + new)
    assert moved["auc"] == pytest.approx(0.5 + 60 / 260 / 2, abs=1e-6) and moved["drifted"] is True
    # in drift_report, a column of these texts reads the same
    assert D.column_drift(asked, asked)["statistic"] == 0.5


def test_drift_columns_from_the_command_line_as_a_comma_list(tmp_path, capsys):
    """``--param columns=latency_ms,status``: it was read as one column named 'latency_ms,status' (not found)."""
    from workbench import cli

    path = tmp_path / "d.duckdb"
    with wb.connect(str(path), create=True) as db:
        # latency moves by 100 ms between the two days, status does not: one column of two drifted
        for day, base in (("2026-01-01", 100), ("2026-01-02", 200)):
            db.duckdb.execute(f"insert into calls (call_id, ts, status, latency_ms) select '{day}' || i, timestamp "
                              f"'{day}' + to_seconds(i), 'ok', {base} + i % 50 from range(200) t(i)")
    assert cli.main(["metrics", "drifted_column_rate", "--db", str(path), "--period", "all", "--by", "",
                     "--start", "2026-01-02", "--end", "2026-01-03", "--format", "json",
                     "--param", "columns=latency_ms, status"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["value"], r["n"], r["dataset_drift"]) for r in rows] == [(0.5, 2, True)]
