"""Hallucination: evaluate() into evals with the offline detector, human labels, the aggregates, agreement, offenders."""

from __future__ import annotations

import datetime as dt
import json
import math
import types

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm, t as student_t

import workbench as wb
from workbench.errors import InputError, ParameterError
from workbench.eval import labels, score
from workbench.metrics import hallucination as h

try:
    from workbench.eval import detector
except ImportError as exc:  # pragma: no cover - detector.py is another module; say why the tests are skipped
    detector = None
    DETECTOR_SKIP = f"workbench.eval.detector is not importable: {exc}"
else:
    DETECTOR_SKIP = ""

needs_detector = pytest.mark.skipif(detector is None, reason=DETECTOR_SKIP or "detector present")

CTX = "The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall."
FIVE = f"""
insert into calls (call_id, ts, feature, model, prompt_version, status) values
  ('a', '2026-03-02 09:00', 'support', 'm1', 'v1', 'ok'), ('b', '2026-03-02 10:00', 'support', 'm1', 'v2', 'ok'),
  ('c', '2026-03-02 11:00', 'support', 'm2', 'v2', 'ok'), ('d', '2026-03-03 09:00', 'search', 'm2', 'v1', 'ok'),
  ('e', '2026-03-03 10:00', 'search', 'm2', 'v1', 'ok');
insert into answers (call_id, question, contexts, answer, source) values
  ('a', 'When was it completed?', ['{CTX}'], 'The Eiffel Tower was completed in 1889.', 'prod'),
  ('b', 'When was it completed?', ['{CTX}'], 'The Eiffel Tower was completed in 1887.', 'prod'),
  ('c', 'How tall is it?', ['{CTX}'], 'It is 330 metres tall. It was designed by Napoleon in Berlin.', 'prod'),
  ('d', 'Where is it?', ['{CTX}'], '', 'test'),
  ('e', 'Where is it?', [], 'The Eiffel Tower is in Paris.', 'test')
"""


@pytest.fixture
def db():
    d = wb.connect(":memory:")
    d.duckdb.execute(FIVE)
    yield d
    d.close()


def evals_rows(db):
    return db.duckdb.execute(
        "select call_id, value, label, evaluator, evaluator_version, repeat, explanation, cast(details as varchar) "
        "from evals order by call_id, evaluator_version"
    ).fetchall()


# ------------------------------------------------------------------------------------------------
# evaluate() with the offline detector
# ------------------------------------------------------------------------------------------------


@needs_detector
def test_evaluate_writes_one_row_per_answer_and_never_rescores(db):
    s = score.evaluate(db, progress=False)
    assert (s["evaluator"], s["version"]) == (detector.DETECTOR_NAME, detector.DETECTOR_VERSION)
    assert (s["scored"], s["unscorable"], s["skipped"]) == (3, 2, 0)
    rows = evals_rows(db)
    assert [r[0] for r in rows] == ["a", "b", "c", "d", "e"]  # one row per answer, unscorable ones included
    by_id = {r[0]: r for r in rows}
    assert by_id["a"][2] == "supported" and by_id["b"][2] == "hallucinated" and by_id["c"][2] == "hallucinated"
    assert by_id["d"][1:3] == (None, "unscorable") and by_id["e"][1:3] == (None, "unscorable")
    assert all(r[5] == 0 and 0 <= (r[1] if r[1] is not None else 0) <= 1 for r in rows)
    # the explanation names the unsupported claim and why; details carry per-claim evidence
    assert "1887" in by_id["b"][6] and "1 of 1 claims unsupported" in by_id["b"][6]
    claims = json.loads(by_id["b"][7])["claims"]
    assert claims[0]["supported"] is False and "1889" in claims[0]["evidence"]
    c_claims = json.loads(by_id["c"][7])["claims"]
    assert [c["supported"] for c in c_claims] == [True, False]
    # unchanged detector version: nothing is re-scored
    again = score.evaluate(db, progress=False)
    assert (again["scored"], again["unscorable"], again["skipped"]) == (0, 0, 5)
    assert len(evals_rows(db)) == 5


def _fussy(on: str, version: str = "fussy-1"):
    """A user's detector (the documented protocol: name, version, threshold, detect_batch) that raises on any answer
    holding ``on``, as a model tier can on one input it cannot take; the offline detector scores the others."""
    def detect_batch(rows, *, threshold=detector.THRESHOLD):
        for r in rows:
            if on in r["answer"]:
                raise ValueError(f"cannot take the answer {r['answer'][:20]!r}")
            yield detector.detect(r["answer"], r["contexts"], r.get("question"), threshold=threshold)

    return types.SimpleNamespace(DETECTOR_NAME="fussy", DETECTOR_VERSION=version, THRESHOLD=detector.THRESHOLD,
                                 detect_batch=detect_batch)


@needs_detector
@pytest.mark.parametrize("batch_rows", [1, 2, 100])
def test_an_answer_the_detector_raises_on_is_named_and_the_others_are_scored(db, batch_rows):
    # Before: the exception ended the run, and every later run stopped at the same answer, so the answers after it
    # were never scored.
    with pytest.warns(detector.DetectorRowWarning, match=r"detector fussy fussy-1 raised on answer 'b' "
                                                          r"\(ValueError: cannot take the answer"):
        s = score.evaluate(db, detector=_fussy("1887"), progress=False, batch_rows=batch_rows)
    assert (s["scored"], s["unscorable"], s["failed"]) == (2, 3, 1)  # d, e have nothing to check; b raised
    got = {r[0]: r for r in evals_rows(db)}
    assert set(got) == {"a", "b", "c", "d", "e"}
    assert (got["a"][2], got["c"][2]) == ("supported", "hallucinated")
    assert got["b"][1:3] == (None, "unscorable")
    assert json.loads(got["b"][7])["error"].startswith("ValueError: cannot take the answer")
    assert "the detector raised on this answer" in got["b"][6]
    # the next run tries that answer again (and only it); once the detector takes it, it is scored
    with pytest.warns(detector.DetectorRowWarning):
        again = score.evaluate(db, detector=_fussy("1887"), progress=False)
    assert (again["skipped"], again["failed"], again["to_score"]) == (4, 1, 1)
    fixed = score.evaluate(db, detector=_fussy("no answer says this"), progress=False)
    assert (fixed["to_score"], fixed["scored"], fixed["failed"]) == (1, 1, 0)
    assert evals_rows(db)[1][2] == "hallucinated"


@needs_detector
def test_a_detector_that_raises_on_every_answer_stops_the_run_with_its_error(db):
    with pytest.raises(ValueError, match="cannot take the answer"):
        score.evaluate(db, detector=_fussy(""), progress=False)


@needs_detector
def test_score_jsonl_refuses_an_id_no_reader_can_join_on(tmp_path):
    # NaN and 1e400 (read as infinity) were written back as NaN and Infinity, which are not JSON; an object was
    # echoed as an id; two rows of one id gave two scores nobody could tell apart. Nothing is written then.
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ok = '{"id": "a", "contexts": ["It was completed in 1889."], "answer": "It was completed in 1889."}\n'
    for bad, said in (("NaN", "field 'id' must be a string or a whole number, got nan"),
                      ("1e400", "field 'id' must be a string or a whole number, got inf"),
                      ('{"k": 1}', "field 'id' must be a string or a whole number, got dict"),
                      ("true", "field 'id' must be a string or a whole number, got bool"),
                      ('"a"', "id 'a' is the id of line 1 too; the scores of the two could not be told apart")):
        src.write_text(ok + ok.replace('"id": "a"', f'"id": {bad}'))
        with pytest.raises(ParameterError) as err:
            detector.score_jsonl(src, out, progress=False)
        assert str(err.value) == f"{src}:2: {said}"
        assert not out.exists()
    src.write_text(ok + ok.replace('"id": "a"', '"id": 7') + ok.replace('"id": "a", ', ""))
    assert detector.score_jsonl(src, out, progress=False)["rows"] == 3
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", 7, None]


@needs_detector
def test_score_jsonl_writes_the_error_of_the_answer_the_detector_raised_on(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": i, "contexts": [CTX], "answer": a} for i, a in
            enumerate(["It was completed in 1889.", "It was completed in 1887.", "It is 330 metres tall."])]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.warns(detector.DetectorRowWarning, match=r"raised on line 2 \(id 1\) \(ValueError"):
        stats = detector.score_jsonl(src, out, progress=False, detector=_fussy("1887"))
    assert (stats["rows"], stats["errors"]) == (3, 1)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == [0, 1, 2]
    assert (got[0]["label"], got[2]["label"]) == (0, 0)
    assert got[1]["score"] is None and got[1]["error"].startswith("ValueError: cannot take the answer")
    assert "error" not in got[0]


@needs_detector
def test_a_new_detector_version_rescores(db):
    score.evaluate(db, progress=False)
    bumped = types.SimpleNamespace(DETECTOR_NAME=detector.DETECTOR_NAME,
                                   DETECTOR_VERSION=detector.DETECTOR_VERSION + "+bumped",
                                   THRESHOLD=detector.THRESHOLD, detect_batch=detector.detect_batch)
    s = score.evaluate(db, detector=bumped, progress=False)
    assert (s["version"], s["scored"] + s["unscorable"], s["skipped"]) == (bumped.DETECTOR_VERSION, 5, 0)
    assert score.evaluate(db, detector=bumped, progress=False)["skipped"] == 5
    versions = db.duckdb.execute("select evaluator_version, count(*) from evals group by 1 order by 1").fetchall()
    assert versions == [(detector.DETECTOR_VERSION, 5), (bumped.DETECTOR_VERSION, 5)]  # history kept


@needs_detector
def test_where_batches_and_dry_run(db):
    est = score.evaluate(db, where={"feature": "support"}, dry_run=True)
    assert (est["dry_run"], est["to_score"], est["skipped"]) == (True, 3, 0)
    assert len(evals_rows(db)) == 0
    s = score.evaluate(db, where=["feature=support", "model=m1"], progress=False)
    assert s["scored"] + s["unscorable"] == 2 and {r[0] for r in evals_rows(db)} == {"a", "b"}
    s = score.evaluate(db, where={"source": "test"}, progress=False, batch_rows=1)  # answers.source; 1-row batches
    assert (s["scored"], s["unscorable"]) == (0, 2)
    s = score.evaluate(db, progress=False, batch_rows=1)
    assert (s["scored"], s["skipped"]) == (1, 4)
    with pytest.raises(KeyError, match="no column 'team'"):
        score.evaluate(db, where={"team": "x"})
    with pytest.raises(ValueError, match="unknown detector 'gpt-judge'"):
        score.evaluate(db, detector="gpt-judge")
    with pytest.raises(ValueError, match="repeat applies to LLM judges"):
        score.evaluate(db, repeat=3)


@needs_detector
def test_cli_eval_calls_evaluate(tmp_path, capsys):
    from workbench.cli import main

    path = tmp_path / "wb.duckdb"
    with wb.connect(path) as d:
        d.duckdb.execute(FIVE)
    assert main(["eval", "--db", str(path), "--where", "feature=search"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["scored"], out["unscorable"]) == (0, 2)


# ------------------------------------------------------------------------------------------------
# Aggregates, hand-computed on a 5-answer table of evals
# ------------------------------------------------------------------------------------------------

SCORES = """
insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat, ts) values
  ('a', 'hallucination_score', 0.9, 'hallucinated', 'det', '2', 0, '2026-03-10'),
  ('b', 'hallucination_score', 0.7, 'hallucinated', 'det', '2', 0, '2026-03-10'),
  ('c', 'hallucination_score', 0.2, 'supported', 'det', '2', 0, '2026-03-10'),
  ('d', 'hallucination_score', 0.1, 'supported', 'det', '2', 0, '2026-03-10'),
  ('e', 'hallucination_score', null, 'unscorable', 'det', '2', 0, '2026-03-10'),
  ('a', 'hallucination_score', 0.1, 'supported', 'det', '1', 0, '2026-03-01')
"""


def wilson(k, n, conf=0.95):
    z = norm.ppf(0.5 + conf / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@needs_detector
@pytest.mark.parametrize("fn", [h.hallucination_rate, h.hallucination_score, h.unscorable_rate])
def test_scores_of_an_older_detector_version_are_named_with_how_to_rescore(db, fn):
    # After an upgrade the database holds the previous version's scores only. Before: "no data in the selection",
    # nothing saying the scores are there, of which version, and how to get the current one's.
    import warnings

    from workbench.metrics.core import UndefinedMetricWarning

    old = types.SimpleNamespace(DETECTOR_NAME=detector.DETECTOR_NAME, DETECTOR_VERSION="1.9.0",
                                THRESHOLD=detector.THRESHOLD, detect_batch=detector.detect_batch)
    score.evaluate(db, detector=old, progress=False)
    with pytest.warns(UndefinedMetricWarning) as seen:
        r = fn(db, by=(), period="all", traffic="all")
    assert r["n"].sum() == 0
    text = " ".join(str(w.message) for w in seen)
    assert f"no scores of the detector {detector.DETECTOR_NAME} {detector.DETECTOR_VERSION}" in text
    assert "5 scores of version 1.9.0" in text and "workbench eval" in text and "version='1.9.0'" in text
    assert fn(db, by=(), period="all", traffic="all", version="1.9.0")["n"].sum() > 0  # what the message offers
    score.evaluate(db, progress=False)  # re-scored: the current version's scores, no such warning
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert fn(db, by=(), period="all", traffic="all")["n"].sum() > 0
    assert not [w for w in again if "no scores of the detector" in str(w.message)]


@pytest.mark.parametrize("fn", [h.hallucination_rate, h.hallucination_score, h.unscorable_rate])
def test_answers_never_scored_are_named_with_how_to_score_them(db, fn):
    # Answers loaded, `workbench eval` never run: the hallucination report was published with every section "–" and
    # the one note "no data in the selection", nothing saying there are answers waiting to be scored.
    from workbench.metrics.core import UndefinedMetricWarning

    with pytest.warns(UndefinedMetricWarning) as seen:
        r = fn(db, by=(), period="all", traffic="all")
    assert r["n"].sum() == 0
    text = " ".join(str(w.message) for w in seen)
    assert "5 answers and no score of them by any version of the detector" in text and "workbench eval" in text


def test_hallucination_rate_hand_computed_with_wilson(db):
    db.duckdb.execute(SCORES)
    r = h.hallucination_rate(db, evaluator="det", by=(), period="all")
    # version defaults to the one written most recently ('2'): 2 hallucinated of 4 scored; 'e' is unscorable
    lo, hi = wilson(2, 4)
    assert r.select("metric", "value", "n").row(0) == ("hallucination_rate", 0.5, 4)
    assert (r["lo"][0], r["hi"][0]) == (pytest.approx(lo), pytest.approx(hi))
    assert (round(lo, 6), round(hi, 6)) == (0.150039, 0.849961)  # by hand: centre .5, half-width .349961
    old = h.hallucination_rate(db, evaluator="det", version="1", by=(), period="all")
    assert old.select("value", "n").row(0) == (0.0, 1)
    # grouped by calls columns and answers.source, per day of the call
    by_model = h.hallucination_rate(db, evaluator="det", by=("model",), period="all")
    assert by_model.select("model", "value", "n").rows() == [("m1", 1.0, 2), ("m2", 0.0, 2)]
    by_source = h.hallucination_rate(db, evaluator="det", by="source", period="day")
    # every group in every period (issue 10, empty groups never vanish): prod has no answer on Mar 3, test none on Mar 2
    assert by_source.select("source", "period_start", "value", "n").rows() == [
        ("prod", dt.datetime(2026, 3, 2), pytest.approx(2 / 3), 3), ("prod", dt.datetime(2026, 3, 3), None, 0),
        ("test", dt.datetime(2026, 3, 2), None, 0), ("test", dt.datetime(2026, 3, 3), 0.0, 1)]
    # start/end on the call time
    day2 = h.hallucination_rate(db, evaluator="det", by=(), period="all", start="2026-03-03", end="2026-03-04")
    assert day2.select("value", "n").row(0) == (0.0, 1)
    with pytest.raises(KeyError, match="cannot group by"):
        h.hallucination_rate(db, evaluator="det", by="team")


def test_unscorable_counted_never_dropped(db):
    db.duckdb.execute(SCORES)
    u = h.unscorable_rate(db, evaluator="det", by=(), period="all")
    assert u.select("metric", "value", "n").row(0) == ("unscorable_rate", 0.2, 5)
    lo, hi = wilson(1, 5)
    assert (u["lo"][0], u["hi"][0]) == (pytest.approx(lo), pytest.approx(hi))
    by_feature = h.unscorable_rate(db, evaluator="det", period="all")
    assert by_feature.select("feature", "value", "n").rows() == [("search", 0.5, 2), ("support", 0.0, 3)]


def test_rate_score_and_unscorable_rate_agree_on_which_answers_are_scored():
    """A score row without a verdict label (ragas writes none; a row inserted by hand): label NULL failed both
    ``label == 'hallucinated'`` and ``label != 'unscorable'``, so the rate dropped it silently while the mean score
    counted it, and unscorable_rate counted a row with neither value nor label as scored."""
    from workbench.metrics import ExcludedRowWarning

    d = wb.connect(":memory:")
    d.duckdb.execute("""
      insert into calls (call_id, ts, feature, status)
        select x, '2026-01-05 10:00', 'chat', 'ok' from unnest(['a', 'b', 'c', 'd', 'e', 'f', 'g']) t(x);
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
        ('a', 'hallucination_score', 0.9, 'hallucinated', 'j', '1', 0),
        ('b', 'hallucination_score', 0.2, 'supported', 'j', '1', 0),
        ('c', 'hallucination_score', 0.6, 'hallucinated', 'j', '1', 0),
        ('d', 'hallucination_score', null, 'unscorable', 'j', '1', 0),
        ('e', 'hallucination_score', 0.7, null, 'j', '1', 0),
        ('f', 'hallucination_score', null, null, 'j', '1', 0),
        ('g', 'hallucination_score', 0.5, 'Supported', 'j', '1', 0)""")
    # unscorable: d (so labelled) and f (no score): 2 of 7; scored: a, b, c, e, g
    u = h.unscorable_rate(d, evaluator="j", period="all")
    assert u.select("value", "n").row(0) == (pytest.approx(2 / 7), 7)
    s = h.hallucination_score(d, evaluator="j", period="all")
    assert s.select("value", "n").row(0) == (pytest.approx((0.9 + 0.2 + 0.6 + 0.7 + 0.5) / 5), 5)
    # the rate needs a verdict: e (none) and g (not one of the two) are left out, named, not read as supported
    with pytest.warns(ExcludedRowWarning) as seen:
        r = h.hallucination_rate(d, evaluator="j", period="all")
    assert r.select("value", "n").row(0) == (pytest.approx(2 / 3), 3)  # a, c of a, b, c
    assert [str(w.message) for w in seen if w.category is ExcludedRowWarning] == [
        "hallucination_rate: 2 scored answers have no label hallucinated or supported (e.g. call 'e', label null): "
        "left out of the rate; hallucination_score counts them"]


def test_hallucination_score_mean_with_t_interval(db):
    db.duckdb.execute(SCORES)
    s = h.hallucination_score(db, evaluator="det", by=(), period="all")
    x = np.array([0.9, 0.7, 0.2, 0.1])
    half = student_t.ppf(0.975, 3) * x.std(ddof=1) / 2
    assert s.select("metric", "n").row(0) == ("hallucination_score", 4)
    assert s["value"][0] == pytest.approx(0.475)
    assert s["lo"][0] == pytest.approx(max(0.0, 0.475 - half)) and s["hi"][0] == pytest.approx(min(1.0, 0.475 + half))
    one = h.hallucination_score(db, evaluator="det", version="1", by=(), period="all")
    assert one.select("value", "n", "lo", "hi").row(0) == (0.1, 1, None, None)  # no interval from one score


def test_time_is_the_call_else_the_answer_never_the_score():
    d = wb.connect(":memory:")
    d.duckdb.execute("""
      insert into calls (call_id, ts, status) values ('a', '2026-01-01 10:00', 'ok');
      insert into answers (call_id, answer, ts) values ('a', 'x', '2026-05-05'), ('b', 'y', '2026-02-01 08:00');
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat, ts) values
        ('a', 'hallucination_score', 1, 'hallucinated', 'j', '1', 0, '2026-06-01'),
        ('b', 'hallucination_score', 0, 'supported', 'j', '1', 0, '2026-06-01'),
        ('c', 'hallucination_score', 0, 'supported', 'j', '1', 0, '2026-03-01')""")
    r = h.hallucination_rate(d, evaluator="j", by=(), period="month")
    # a: its call (January), not its answer (May) nor its score (June); b: its answer (February); c has neither:
    # undated (definition change, issue 10: an evaluation is dated by the answer's time, no longer by its score's)
    assert r.select("period_start", "value", "n").rows() == [
        (dt.datetime(2026, 1, 1), 1.0, 1), (dt.datetime(2026, 2, 1), 0.0, 1), (None, 0.0, 1)]


def test_suite_registration():
    assert {"hallucination_rate", "hallucination_score", "unscorable_rate"} <= set(wb.suite())
    assert wb.hallucination_rate is h.hallucination_rate


# ------------------------------------------------------------------------------------------------
# Human labels and agreement
# ------------------------------------------------------------------------------------------------

AGREE = """
insert into answers (call_id, answer) select 'x' || i, 'answer ' || i from range(1, 9) t(i);
insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
  ('x1', 'hallucination_score', 0.9, 'hallucinated', 'det', '1', 0),
  ('x2', 'hallucination_score', 0.8, 'hallucinated', 'det', '1', 0),
  ('x3', 'hallucination_score', 0.3, 'supported', 'det', '1', 0),
  ('x4', 'hallucination_score', 0.6, 'hallucinated', 'det', '1', 0),
  ('x5', 'hallucination_score', 0.2, 'supported', 'det', '1', 0),
  ('x6', 'hallucination_score', 0.1, 'supported', 'det', '1', 0),
  ('x7', 'hallucination_score', null, 'unscorable', 'det', '1', 0)
"""


def test_import_labels_and_agreement_hand_computed(tmp_path):
    d = wb.connect(":memory:")
    d.duckdb.execute(AGREE)
    p = tmp_path / "labels.csv"
    p.write_text("call_id,hallucinated,explanation\nx1,true,\nx2,false,\nx3,true,invented date\nx4,1,\nx5,0,\n"
                 "x6,supported,\nx7,1,\nx8,0,\n")
    s = labels.import_labels(d, p)
    assert (s["imported"], s["hallucinated"], s["evaluator"]) == (8, 4, "human")
    assert d.duckdb.execute("select value, label, explanation from evals where evaluator = 'human' and call_id = 'x3'"
                            ).fetchone() == (1.0, "hallucinated", "invented date")
    assert labels.import_labels(d, p)["imported"] == 8  # re-import replaces, does not duplicate
    assert d.duckdb.execute("select count(*) from evals where evaluator = 'human'").fetchone()[0] == 8

    a = h.agreement(d, evaluator="det")
    # scored by both: x1..x6 (x7 unscorable for det, x8 has no det score). truth 1,0,1,1,0,0; pred 1,1,0,1,0,0
    # AUROC: positives {.9, .3, .6} vs negatives {.8, .2, .1}: 3 + 2 + 2 of 9 pairs -> 7/9
    # kappa: p_o = 4/6, p_e = .5*.5 + .5*.5 = .5 -> (2/3 - 1/2) / (1/2) = 1/3; TP 2, FP 1, FN 1
    row = a.row(0, named=True)
    assert (row["n"], row["n_unscorable"], row["positives"]) == (6, 1, 3)
    assert row["auroc"] == pytest.approx(7 / 9)
    assert row["kappa"] == pytest.approx(1 / 3)
    assert (row["precision"], row["recall"], row["f1"]) == (pytest.approx(2 / 3),) * 3
    # one score per bin: |.9-1| + |.8-0| + |.3-1| + |.6-1| + |.2-0| + |.1-0| = 2.3, over 6 answers
    assert row["calibration_error"] == pytest.approx(2.3 / 6)
    at = h.agreement(d, evaluator="det", threshold=0.7).row(0, named=True)  # pred 1,1,0,0,0,0: TP 1 FP 1 FN 2
    assert (at["precision"], at["recall"], at["auroc"]) == (0.5, pytest.approx(1 / 3), pytest.approx(7 / 9))
    # two evaluators with each other: the human labels as the "evaluator", det as the reference
    both = h.agreement(d, evaluator="human", reference="det").row(0, named=True)
    assert both["n"] == 6 and both["kappa"] == pytest.approx(1 / 3)


def test_agreement_over_a_window_of_the_answers_time():
    """agreement had no window: a report's agreement was over every label ever imported. start <= ts < end on the
    answer's time, as hallucination_rate: its call's time, else answers.ts; never the time of the score."""
    d = wb.connect(":memory:")
    d.duckdb.execute("""
      insert into calls (call_id, ts, status) values ('c1', '2026-01-05', 'ok'), ('c2', '2026-01-05', 'ok'),
        ('c3', '2026-01-12', 'ok');
      insert into answers (call_id, answer, ts) values ('c1', 'x', '2026-03-01'), ('c4', 'y', '2026-01-06'),
        ('c5', 'z', null);
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat, ts)
        select call_id, 'hallucination_score', v, if(v >= 0.5, 'hallucinated', 'supported'), 'det', '1', 0,
               '2026-02-01' from (values ('c1', 0.9), ('c2', 0.2), ('c3', 0.8), ('c4', 0.7), ('c5', 0.6)) t(call_id, v);
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat, ts)
        select call_id, 'hallucination_label', v, if(v = 1, 'hallucinated', 'supported'), 'human', '1', 0,
               '2026-02-01' from (values ('c1', 1), ('c2', 0), ('c3', 0), ('c4', 0), ('c5', 1)) t(call_id, v)""")
    cols = ("n", "positives", "precision", "recall", "accuracy")
    assert h.agreement(d, evaluator="det").select(cols).row(0) == (5, 2, 0.5, 1.0, 0.6)  # every answer
    # c1 (its call's time, not its answer's March), c2, c4 (its answer's time): truth 1, 0, 0; predicted 1, 0, 1
    week = h.agreement(d, evaluator="det", start="2026-01-01", end="2026-01-08")
    assert week.select(cols).row(0) == (3, 1, 0.5, 1.0, pytest.approx(2 / 3))
    assert h.agreement(d, evaluator="det", start="2026-01-08").select("n", "positives").row(0) == (1, 0)  # c3
    with pytest.warns(UserWarning, match="no answer scored by both"):  # the scoring time does not date an answer
        assert h.agreement(d, evaluator="det", start="2026-02-01", end="2026-02-02")["n"].item() == 0
    with pytest.raises(wb.errors.ParameterError, match="agreement: start 2026-01-08 is not before end 2026-01-01"):
        h.agreement(d, evaluator="det", start="2026-01-08", end="2026-01-01")


NO_VERDICT = """
insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
  ('a', 'hallucination_score', 0.9, 'hallucinated', 'det', '1', 0), ('a', 'hallucination_label', 1, 'hallucinated', 'human', '1', 0),
  ('b', 'hallucination_score', 0.2, 'supported', 'det', '1', 0),    ('b', 'hallucination_label', 0, 'supported', 'human', '1', 0),
  ('c', 'hallucination_score', 0.8, null, 'det', '1', 0),           ('c', 'hallucination_label', 0, 'supported', 'human', '1', 0),
  ('d', 'hallucination_score', 0.1, null, 'det', '1', 0),           ('d', 'hallucination_label', 1, 'hallucinated', 'human', '1', 0)
"""


def test_agreement_leaves_out_an_evaluator_score_without_a_verdict_and_says_so():
    """Without a threshold the evaluator's own label is its prediction: a NULL label (ragas writes none; a row
    inserted by hand) was read as "supported", so c (0.8) and d (0.1) counted as two predicted-supported answers."""
    d = wb.connect(":memory:")
    d.duckdb.execute(NO_VERDICT)
    cols = ("n", "n_no_verdict", "positives", "precision", "recall", "accuracy")
    with pytest.warns(wb.metrics.ExcludedRowWarning, match=r"agreement: 2 answers scored by 'det' have no label "
                      r"hallucinated or supported \(e.g. call 'c'\): left out of the pairs"):
        got = h.agreement(d, evaluator="det")
    # the pairs a (pred 1, truth 1) and b (pred 0, truth 0): was n 4, recall 1/2, accuracy 3/4
    assert got.select(cols).row(0) == (2, 2, 1, 1.0, 1.0, 1.0)
    # with a threshold the values predict, labels are not needed: c 0.8 -> 1 (truth 0), d 0.1 -> 0 (truth 1)
    at = h.agreement(d, evaluator="det", threshold=0.5)
    assert at.select(cols).row(0) == (4, 0, 2, 0.5, 0.5, 0.5)


def test_agreement_leaves_out_a_reference_without_label_or_value():
    """A reference row with neither a verdict nor a value (a label row inserted by hand) is no truth: left out and
    counted, not read as 'supported' (the agreement of before failed on it: a NaN truth)."""
    d = wb.connect(":memory:")
    d.duckdb.execute(NO_VERDICT + """;
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
        ('e', 'hallucination_score', 0.7, 'hallucinated', 'det', '1', 0),
        ('e', 'hallucination_label', null, null, 'human', '1', 0)""")
    with pytest.warns(wb.metrics.ExcludedRowWarning, match=r"1 answer labelled by 'human' has no label "
                      r"hallucinated or supported nor a value \(e.g. call 'e'\)"):
        got = h.agreement(d, evaluator="det", threshold=0.5)
    assert got.select("n", "n_no_verdict", "positives").row(0) == (4, 1, 2)


def test_agreement_resolves_each_evaluator_once(queries):
    """An evaluator without scores: its latest version was looked up twice (once for the frame, once again inside
    the scores' view); one look-up and one read of the scores per side."""
    d = wb.connect(":memory:")
    d.duckdb.execute(NO_VERDICT)
    queries.clear()
    with pytest.warns(UserWarning, match="no answer scored by both"):
        assert h.agreement(d, evaluator="judge:none")["n"].item() == 0
    assert len(queries) == 4  # per side: the latest version, the scores


def test_import_labels_rejects_bad_input(tmp_path):
    d = wb.connect(":memory:")
    d.duckdb.execute("insert into answers (call_id, answer) values ('a', 'x')")
    with pytest.raises(ValueError, match=r"row 2: call_id 'zz' is not in answers"):
        labels.import_labels(d, [{"call_id": "a", "label": 1}, {"call_id": "zz", "label": 0}])
    # an empty call id was "call_id None is not in answers" (CSV) or "call_id '' ..." : it is named as empty
    for empty in (None, "", "  "):
        with pytest.raises(ValueError, match=r"row 2 column 'call_id': empty; every label needs the call it is of"):
            labels.import_labels(d, [{"call_id": "a", "label": 1}, {"call_id": empty, "label": 0}])
    with pytest.raises(ValueError, match=r"row 1 column 'label': expected 1/0.*got 'maybe'"):
        labels.import_labels(d, [{"call_id": "a", "label": "maybe"}])
    with pytest.raises(KeyError, match="no label column"):
        labels.import_labels(d, [{"call_id": "a", "verdict": 1}])
    # a label_column that is not there was "no label column (label, hallucinated or value)", of a file with a label
    with pytest.raises(KeyError) as err:
        labels.import_labels(d, [{"call_id": "a", "label": 1}], label_column="verdict")
    assert str(err.value) == "import_labels: list: no label column 'verdict'; columns: call_id, label"
    assert d.duckdb.execute("select count(*) from evals").fetchone()[0] == 0  # nothing half-written


def _labels_db():
    d = wb.connect(":memory:")
    d.duckdb.execute("insert into answers (call_id, answer) values ('a', 'x'), ('b', 'y'), ('c', 'z')")
    return d


def test_import_labels_refuses_an_answer_labelled_both_ways(tmp_path):
    # Two rows of one answer with different labels were both written, under the key evals upserts on: the agreement
    # counted the answer twice and the calibration took either label, at random.
    d = _labels_db()
    p = tmp_path / "labels.csv"
    p.write_text("call_id,label\na,1\nb,0\na,supported\n")
    with pytest.raises(ParameterError, match=r"labels.csv line 4: call_id 'a' is labelled supported here and "
                                                 r"hallucinated on line 2"):
        labels.import_labels(d, p)
    assert d.duckdb.execute("select count(*) from evals").fetchone()[0] == 0
    # the same label twice (a row pasted twice): one label, the repeat counted
    p.write_text("call_id,label\na,1\nb,0\na,yes\n")
    s = labels.import_labels(d, p)
    assert (s["imported"], s["hallucinated"], s["duplicates"]) == (2, 1, 1)
    assert d.duckdb.execute("select call_id, value from evals order by call_id").fetchall() == [("a", 1.0), ("b", 0.0)]


def test_import_labels_reads_odd_files_and_names_the_line_of_a_bad_one(tmp_path):
    d = _labels_db()
    p = tmp_path / "labels.jsonl"  # byte-order mark, CRLF, a blank line (polars: "InternalError(TapeError)")
    p.write_bytes(b'\xef\xbb\xbf{"call_id": "a", "label": 1}\r\n\r\n{"call_id": "b", "label": "No"}\r\n')
    assert labels.import_labels(d, p)["hallucinated"] == 1
    p.write_bytes(b'{"call_id": "a", "label": 1}\n\n{"call_id": "b", "label": \n')
    with pytest.raises(InputError, match=r"labels.jsonl line 3: invalid JSON"):
        labels.import_labels(d, p)
    p.write_bytes(b'{"call_id": "a", "label": 1}\n["b", 0]\n')
    with pytest.raises(InputError, match=r"labels.jsonl line 2: expected an object with call_id and a label, "
                                            r"got str"):
        labels.import_labels(d, p)
    p.write_bytes(b'{"call_id": "a", "label": 1}\n{"call_id": "b"}\n')
    with pytest.raises(InputError, match=r"labels.jsonl line 2 column 'label': expected 1/0.*got nothing"):
        labels.import_labels(d, p)
    c = tmp_path / "labels.csv"  # what pandas writes for a float column, an explanation over two lines
    c.write_text('call_id,label,explanation\na,1.0,"invented\ndate"\nb,0.0,\nc,2.0,\n')
    with pytest.raises(InputError, match=r"labels.csv line 5 column 'label': expected 1/0.*got '2.0'"):
        labels.import_labels(d, c)
    c.write_text('call_id,label,explanation\na,1.0,"invented\ndate"\nb,0.0,\n')
    assert labels.import_labels(d, c)["hallucinated"] == 1
    assert d.duckdb.execute("select explanation from evals where call_id = 'a' and evaluator = 'human'").fetchone() == (
        "invented\ndate",)
    c.write_text("call_id,label\na,1\nb,0,extra\n")  # polars: "found more fields than defined in 'Schema'"
    with pytest.raises(InputError, match=r"labels.csv line 3: expected 2 fields \(call_id, label\), got 3"):
        labels.import_labels(d, c)
    c.write_text("")
    with pytest.raises(InputError, match=r"labels.csv: no column 'call_id'"):
        labels.import_labels(d, c)


def test_import_labels_refuses_a_csv_header_naming_a_column_twice(tmp_path):
    # "call_id,label,label": each row kept the last label column's value, the first one unread, and the import
    # said nothing: a (b, 0) labelled 1 by the column nobody meant
    d = _labels_db()
    c = tmp_path / "labels.csv"
    c.write_text("call_id,label,label\na,1,1\nb,0,1\n")
    with pytest.raises(InputError, match=r"labels.csv line 1: the header names 'label' 2 times \(columns 2 and 3\); "
                                         r"rename all but one"):
        labels.import_labels(d, c)
    assert d.duckdb.execute("select count(*) from evals").fetchone()[0] == 0


def test_import_labels_refuses_an_empty_evaluator_or_version(tmp_path):
    d = _labels_db()
    for kw in ({"evaluator": ""}, {"evaluator": "  "}, {"version": ""}):
        with pytest.raises(ParameterError, match=rf"import_labels: {next(iter(kw))} must be a name \(a non-empty "
                                                 r"string\), got"):
            labels.import_labels(d, [{"call_id": "a", "label": 1}], **kw)
    assert d.duckdb.execute("select count(*) from evals").fetchone()[0] == 0
    assert labels.import_labels(d, [{"call_id": "a", "label": 1}], version=2)["version"] == "2"


def test_judge_variance_hand_computed():
    d = wb.connect(":memory:")
    d.duckdb.execute("""insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
      ('a', 'hallucination_score', 0.0, 'supported', 'j', '1', 0), ('a', 'hallucination_score', 0.5, 'hallucinated', 'j', '1', 1),
      ('a', 'hallucination_score', 1.0, 'hallucinated', 'j', '1', 2), ('b', 'hallucination_score', 0.25, 'hallucinated', 'j', '1', 0),
      ('b', 'hallucination_score', 0.25, 'hallucinated', 'j', '1', 1), ('b', 'hallucination_score', 0.25, 'hallucinated', 'j', '1', 2),
      ('c', 'hallucination_score', 0.5, 'hallucinated', 'j', '1', 0)""")
    per = h.judge_variance(d, evaluator="j", per_answer=True)
    assert per.select("call_id", "k", "std", "flipped").rows() == [("a", 3, 0.5, True), ("b", 3, 0.0, False)]
    s = h.judge_variance(d, evaluator="j").row(0, named=True)
    assert (s["answers"], s["k"], s["mean_std"], s["flip_rate"]) == (2, 3, 0.25, 0.5)  # c has one repeat: left out


# ------------------------------------------------------------------------------------------------
# Worst offenders
# ------------------------------------------------------------------------------------------------


@needs_detector
def test_worst_offenders_with_claims_and_evidence(db):
    db.duckdb.execute(f"""insert into calls (call_id, ts, feature, model, prompt_version, status) values
      ('f', '2026-03-03 11:00', 'search', 'm1', 'v3', 'ok');
      insert into answers (call_id, question, contexts, answer) values
      ('f', 'How tall?', ['{CTX}'], 'It is 512 metres tall. {"Padding words here. " * 30}')""")
    score.evaluate(db, progress=False)
    w = h.worst_offenders(db, n=3)
    assert w.columns[:8] == ["call_id", "feature", "model", "prompt_version", "ts", "score", "label",
                             "unsupported_claims"]
    assert w["score"].to_list() == sorted(w["score"].to_list(), reverse=True)
    assert set(w["call_id"]) <= {"b", "c", "f"} and "d" not in set(w["call_id"])  # unscorable never an offender
    b = w.filter(pl.col("call_id") == "b").row(0, named=True)
    assert "1887" in b["unsupported_claims"] and "1889" in b["evidence"]
    assert b["feature"] == "support" and b["prompt_version"] == "v2"
    f = h.worst_offenders(db, n=10, max_chars=40).filter(pl.col("call_id") == "f").row(0, named=True)
    assert len(f["answer"]) == 40 and f["answer"].endswith("…")
    per_feature = h.worst_offenders(db, n=1, by="feature")
    assert per_feature["feature"].to_list() == ["search", "support"] and per_feature.height == 2
    with pytest.raises(ValueError, match="worst_offenders: n must be an integer >= 1, got 0"):
        h.worst_offenders(db, n=0)


def test_a_group_with_only_unscorable_answers_stays_visible():
    import warnings as _w

    from workbench.metrics import UndefinedMetricWarning

    d = wb.connect(":memory:")
    d.duckdb.execute("""
      insert into calls (call_id, ts, feature, status) values ('a', '2026-01-05', 'chat', 'ok'), ('b', '2026-01-05', 'code', 'ok');
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values
        ('a', 'hallucination_score', 0.9, 'hallucinated', 'j', '1', 0),
        ('b', 'hallucination_score', null, 'unscorable', 'j', '1', 0)""")
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        df = h.hallucination_rate(d, evaluator="j", period="all")
    assert df.select("feature", "value", "n").rows() == [("chat", 1.0, 1), ("code", None, 0)]
    assert any(issubclass(w.category, UndefinedMetricWarning) for w in caught)


def test_benchmark_answers_are_not_production_traffic_and_scores_are_dated_by_the_answer():
    # two logged calls (Mar 2): one hallucinated, one supported; three benchmark answers (no call, source HaluEval-QA,
    # no time) all hallucinated, scored on Mar 10. Before: a null-feature group of 3 in the week of Mar 9.
    db = wb.connect(":memory:")
    db.duckdb.execute("""
      insert into calls (call_id, ts, feature, status) values ('p1', '2026-03-02', 'chat', 'ok'), ('p2', '2026-03-02', 'chat', 'ok');
      insert into answers (call_id, answer, source, ts) values ('p1', 'x', 'prod', '2026-03-02'), ('p2', 'y', 'prod', '2026-03-02'),
        ('halueval_qa_1', 'z', 'HaluEval-QA', null), ('halueval_qa_2', 'z', 'HaluEval-QA', null), ('begin_3', 'z', 'BEGIN', null);
      insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat, ts) values
        ('p1', 'hallucination_score', 0.9, 'hallucinated', 'det', '1', 0, '2026-03-10'),
        ('p2', 'hallucination_score', 0.1, 'supported', 'det', '1', 0, '2026-03-10'),
        ('halueval_qa_1', 'hallucination_score', 0.9, 'hallucinated', 'det', '1', 0, '2026-03-10'),
        ('halueval_qa_2', 'hallucination_score', 0.9, 'hallucinated', 'det', '1', 0, '2026-03-10'),
        ('begin_3', 'hallucination_score', 0.9, 'hallucinated', 'det', '1', 0, '2026-03-10')""")
    r = h.hallucination_rate(db, evaluator="det", period="week")
    assert r.select("feature", "period_start", "value", "n").rows() == [("chat", dt.datetime(2026, 3, 2), 0.5, 2)]
    bench = h.hallucination_rate(db, evaluator="det", by="source", period="all", traffic="benchmark")
    assert bench.select("source", "value", "n").rows() == [("BEGIN", 1.0, 1), ("HaluEval-QA", 1.0, 2)]
    assert h.hallucination_rate(db, evaluator="det", by=(), period="all", traffic="all")["n"].item() == 5
    with pytest.raises(ValueError, match="traffic"):
        h.hallucination_rate(db, evaluator="det", traffic="prod")


@needs_detector
def test_a_detector_of_its_own_result_type_that_scored_a_row_is_not_judged_broken_by_later_failures():
    # The protocol asks only for detect_batch: a custom detector may return its own objects. Before, "broken" was
    # "no detector.Detection among the results", so three failures in a row after rows it had scored stopped the run.
    class Own:
        def detect_batch(self, rows, *, threshold):
            for r in rows:
                if "bad" in r["answer"]:
                    raise ValueError("cannot take it")
                yield types.SimpleNamespace(score=0.1, label=0, claims=(), unscorable=False)

    rows = [{"answer": a, "contexts": [CTX]} for a in ("fine", "bad 1", "bad 2", "bad 3", "fine again")]
    got = detector.detect_each(Own(), rows)
    assert [type(d).__name__ for d in got] == ["SimpleNamespace", "ValueError", "ValueError", "ValueError",
                                               "SimpleNamespace"]
    with pytest.raises(ValueError):  # three failures before any row is scored: the detector is broken
        detector.detect_each(Own(), rows[1:])
