"""Tests for workbench.eval.detector: hand-made cases, determinism, metrics, file errors, dev-set quality."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from workbench.eval import detector as D
from workbench.eval.detector import Claim, Detection, auroc, brier_score, detect, detect_batch, score_jsonl

ROOT = Path(__file__).resolve().parents[1]

CTX = [
    "The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall.",
    "Gustave Eiffel's company designed and built the tower for the 1889 World's Fair.",
]


def _judged(d: Detection) -> list[tuple[float, str | None]]:
    """Each claim's (support, reason)."""
    return [(c.support, c.reason) for c in d.claims]


def _dev_path() -> Path | None:
    candidates = [ROOT / "datasets" / "halu_dev.jsonl"]
    if os.environ.get("WORKBENCH_SHARED"):
        candidates.append(Path(os.environ["WORKBENCH_SHARED"]) / "data" / "halu_dev.jsonl")
    candidates.append(ROOT.parent / "shared" / "data" / "halu_dev.jsonl")
    return next((c for c in candidates if c.exists()), None)


# ---------------------------------------------------------------------------------------------
# Hand-made cases
# ---------------------------------------------------------------------------------------------


def test_number_not_in_context_is_flagged_with_the_number():
    d = detect("The Eiffel Tower was completed in 1887.", CTX)
    assert d.label == 1
    assert d.score > 0.5
    assert d.claims[0].reason == "number 1887 not in context"
    assert "1889" in d.claims[0].evidence  # the evidence is the sentence the claim contradicts


def test_verbatim_supported_answer_scores_low():
    d = detect("The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall.", CTX)
    assert d.label == 0
    assert d.score < 0.25
    assert all(c.reason is None and c.support == 1.0 for c in d.claims)
    assert len(d.claims) == 2


def test_supported_scores_lower_than_hallucinated():
    good = detect("Gustave Eiffel's company built the tower for the World's Fair.", CTX)
    bad = detect("Gustave Eiffel's company built the tower for the Olympic Games in London.", CTX)
    assert good.score < bad.score
    assert bad.claims[0].reason == "entity 'Olympic' not in context"


def test_number_formats_match_by_value():
    ctx = ["The city had 1,200,000 residents and a budget of 3 million dollars."]
    d = detect("It had 1200000 residents and a budget of 3,000,000 dollars.", ctx)
    assert d.claims[0].reason is None


def test_negation_flip_is_flagged():
    ctx = ["The committee did not approve the new stadium budget in March."]
    d = detect("The committee approved the new stadium budget in March.", ctx)
    assert d.claims[0].reason == "negation mismatch"
    assert d.claims[0].support < 1.0
    same = detect("The committee did not approve the new stadium budget in March.", ctx)
    assert same.claims[0].reason is None
    assert same.score < d.score


def test_not_only_is_not_a_negation():
    ctx = ["It was not only the band's longest tour, but one of the longest tours in rock history."]
    d = detect("It was one of the longest tours in rock history.", ctx)
    assert d.claims[0].reason is None


def test_a_leading_no_that_answers_a_question_is_not_a_negation():
    # "Does it say what the ratings were?" - "No, but it has 92% ...": the "no" answers the user, the claim asserts
    ctx = ["movieName : Dunkirk rating : Rotten Tomatoes : 92 % and average : 8.6/10 year : 2017"]
    for answer in ("no but it has a 92% on rotten tomatoes and an average of 8.6/10.",
                   "No, it has 92% on Rotten Tomatoes and an average of 8.6/10.",
                   "Nope - it has 92% on Rotten Tomatoes and an average of 8.6/10."):
        d = detect(answer, ctx, question="Does it say what the ratings for the movie were?")
        assert [c.reason for c in d.claims] == [None] * len(d.claims), answer
    # a "no" that is part of the claim still is one
    ctx = ["Several people were injured in the crash."]
    for answer in ("No people were injured in the crash.", "No, no people were injured in the crash.",
                   "No, people were not injured in the crash."):
        assert detect(answer, ctx).claims[0].reason == "negation mismatch", answer


def test_low_overlap_reason_reports_the_overlap():
    d = detect("my grandmother loves knitting warm sweaters", CTX)
    assert d.claims[0].reason is not None
    m = re.fullmatch(r"low overlap (\d\.\d\d)", d.claims[0].reason)
    assert m and float(m.group(1)) < D.CLAIM_SUPPORT_MIN
    assert d.label == 1


def test_question_words_are_half_credit_not_unsupported():
    ctx = ["Rommel commanded the Afrika Korps."]
    with_q = detect("Rommel led the desert campaign.", ctx, question="Who led the desert campaign?")
    without_q = detect("Rommel led the desert campaign.", ctx)
    assert with_q.claims[0].support > without_q.claims[0].support
    assert with_q.score < without_q.score


@pytest.mark.parametrize("answer, contexts", [("", CTX), ("   ", CTX), ("Paris.", []), ("Paris.", ["  "])])
def test_empty_answer_or_no_context_is_unscorable(answer, contexts):
    d = detect(answer, contexts)
    assert d == Detection(score=None, label=None, claims=(), unscorable=True)


def test_context_may_be_a_single_string():
    assert detect("It is 330 metres tall.", CTX[0]).claims == detect("It is 330 metres tall.", [CTX[0]]).claims


def test_claims_split_into_sentences_and_clauses():
    d = detect("The tower is in Paris; it was completed in 1889. It is 330 metres tall.", CTX)
    assert [c.text for c in d.claims] == [
        "The tower is in Paris",
        "it was completed in 1889.",
        "It is 330 metres tall.",
    ]


def test_abbreviations_do_not_end_a_sentence():
    assert D._split_sentences("Dr. Smith moved to the U.S. in 1990. He stayed.") == [
        "Dr. Smith moved to the U.S. in 1990.",
        "He stayed.",
    ]
    assert D._split_sentences("officers.The Government") == ["officers.", "The Government"]


def test_threshold_sets_the_label():
    d = detect("The Eiffel Tower was completed in 1887.", CTX, threshold=0.99)
    assert d.label == 0 and d.score < 0.99


def test_non_string_answer_raises():
    with pytest.raises(TypeError, match="answer must be str"):
        detect(None, CTX)  # type: ignore[arg-type]


def test_detection_and_claim_are_frozen():
    d = detect("It is 330 metres tall.", CTX)
    assert isinstance(d.claims[0], Claim)
    with pytest.raises(AttributeError):
        d.score = 0.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Determinism, versioning, batch
# ---------------------------------------------------------------------------------------------


def test_deterministic_same_input_same_output():
    rows = [
        {"answer": "The tower was completed in 1887 in Lyon.", "contexts": CTX},
        {"answer": "It is 330 metres tall.", "contexts": CTX, "question": "How tall is it?"},
    ]
    first = list(detect_batch(rows))
    D._STEM_CACHE.clear()  # a cold cache must not change anything
    second = list(detect_batch(rows))
    assert first == second
    assert [detect(r["answer"], r["contexts"], r.get("question")) for r in rows] == first


def test_cold_and_warm_stem_cache_give_the_same_result():
    # A word new to the cache that occurs in two context sentences must count in both.
    ctx = ["The zorblaxian drug was tested in May.", "Gotham's water held the zorblaxian drug."]
    answer = "He put the zorblaxian drug into Gotham's water."
    D._STEM_CACHE.clear()
    D._CONTENT_STEM.clear()  # stopwords included: they are re-learnt as they are met
    cold = detect(answer, ctx)
    warm = detect(answer, ctx)
    assert cold == warm
    assert cold.claims[0].evidence == ctx[1]


def test_batch_preserves_order_and_count():
    rows = [{"answer": a, "contexts": CTX} for a in ["It is 330 metres tall.", "", "It is 500 metres tall."]]
    out = list(detect_batch(rows))
    assert [d.unscorable for d in out] == [False, True, False]
    assert out[0].score < out[2].score


def test_version_and_weights_agree():
    spec = json.loads((ROOT / "workbench" / "eval" / "_detector_weights.json").read_text())
    assert spec["detector_version"] == D.DETECTOR_VERSION
    assert tuple(spec["features"]) == D.FEATURES
    assert all(c >= 0 for c in spec["coef"])  # every feature means "less support": never a negative weight
    assert re.fullmatch(r"\d+\.\d+\.\d+", D.DETECTOR_VERSION)
    assert D.DETECTOR_NAME and 0 < D.THRESHOLD < 1


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def test_auroc_hand_computed():
    # Positives 0.35, 0.8; negatives 0.1, 0.4. Pairs (pos > neg): 0.35>0.1, 0.8>0.1, 0.8>0.4 = 3 of 4.
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # A tie between a positive and a negative counts one half: pairs 1 + 0.5 + 1 + 1 = 3.5 of 4.
    assert auroc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.875)
    assert auroc([1, 0], [0.9, 0.1]) == 1.0
    assert auroc([1, 0], [0.1, 0.9]) == 0.0
    assert auroc([0, 1, 0, 1], [0.3] * 4) == 0.5


def test_auroc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.integers(0, 10, 200).astype(float)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg)
    )
    assert auroc(y, s) == pytest.approx(pairwise)
    assert auroc(y, -s) == pytest.approx(1 - pairwise)


def test_auroc_one_class_is_nan_with_warning():
    with pytest.warns(RuntimeWarning, match="one class"):
        assert math.isnan(auroc([1, 1], [0.2, 0.3]))
    with pytest.raises(ValueError, match="differ in length"):
        auroc([0, 1], [0.5])


def test_brier_hand_computed():
    assert brier_score([0, 1, 1], [0.0, 1.0, 0.5]) == pytest.approx(0.25 / 3)
    assert brier_score([0, 1], [0.5, 0.5]) == pytest.approx(0.25)
    assert math.isnan(brier_score([], []))


# ---------------------------------------------------------------------------------------------
# JSONL entry points
# ---------------------------------------------------------------------------------------------


def test_score_jsonl_round_trip(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [
        {"id": "a", "question": "When?", "contexts": CTX, "answer": "It was completed in 1887."},
        {"id": "b", "contexts": CTX[0], "answer": ""},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    stats = score_jsonl(src, out, progress=False)
    assert stats["rows"] == 2 and stats["unscorable"] == 1 and stats["seconds"] >= 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == ["a", "b"]
    assert got[0]["label"] == 1 and got[0]["claims"][0]["reason"] == "number 1887 not in context"
    assert set(got[0]["claims"][0]) == {"text", "support", "evidence", "reason"}
    assert got[1] == {**got[1], "score": None, "label": None, "claims": [], "unscorable": True}
    assert got[0]["detector_version"] == D.DETECTOR_VERSION


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"bad\.jsonl:2: invalid JSON"),
        (json.dumps({"id": "x", "contexts": ["c"]}), r"bad\.jsonl:2: field 'answer' must be a string, got missing"),
        (json.dumps({"answer": "a", "contexts": 3}), r"bad\.jsonl:2: field 'contexts' .* got int"),
        (json.dumps({"answer": "a", "contexts": ["c", 1]}), r"bad\.jsonl:2: field 'contexts'"),
        (json.dumps({"answer": "a"}), r"bad\.jsonl:2: field 'contexts' .* got missing"),
    ],
)
def test_score_jsonl_bad_line_names_file_line_and_field(tmp_path, line, message):
    src = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "ok", "contexts": CTX, "answer": "It is 330 metres tall."})
    src.write_text(good + "\n" + line + "\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=message):
        score_jsonl(src, out, progress=False)
    assert not out.exists()  # validated before anything is written


# ---------------------------------------------------------------------------------------------
# Quality on the labelled dev set
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev():
    path = _dev_path()
    if path is None:
        pytest.skip("halu_dev.jsonl not found (datasets/, $WORKBENCH_SHARED/data, ../shared/data)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return path, rows


def _baselines(rows):
    word = re.compile(r"\w+")
    length = [len(r["answer"].split()) for r in rows]
    novelty = []
    for r in rows:
        ctx = {w for c in r["contexts"] for w in word.findall(c.lower())}
        ans = word.findall(r["answer"].lower())
        novelty.append(sum(w not in ctx for w in ans) / max(len(ans), 1))
    return {"length": np.array(length, float), "novelty": np.array(novelty)}


def test_dev_auroc_beats_both_baselines_per_source_and_overall(dev):
    path, rows = dev
    table, rel = D.benchmark_jsonl(path, reps=100)
    y = np.array([r["label"] for r in rows])
    src = np.array([r["source"] for r in rows])
    base = _baselines(rows)
    assert set(table["source"]) == {*src, "overall"}
    for rec in table.iter_rows(named=True):
        m = np.ones(len(rows), bool) if rec["source"] == "overall" else src == rec["source"]
        assert rec["n"] == m.sum()
        for name, b in base.items():
            b_auc = auroc(y[m], b[m])
            # A margin, not a tie: the detector must be clearly better than each trivial baseline.
            assert rec["auroc"] > b_auc + 0.005, (rec["source"], name, rec["auroc"], b_auc)
        assert rec["brier"] < 0.15, rec  # calibrated: far below the 0.25 of a constant 0.5
    # The reproduced baselines are the published ones (guards the comparison itself).
    assert auroc(y, base["novelty"]) == pytest.approx(0.903, abs=0.002)
    assert auroc(y, base["length"]) == pytest.approx(0.690, abs=0.002)


def test_dev_probabilities_are_calibrated_in_bins(dev):
    _, rows = dev
    dets = list(detect_batch(rows))
    p = np.array([d.score for d in dets])
    y = np.array([r["label"] for r in rows])
    assert not any(d.unscorable for d in dets)
    for lo, hi in [(0.0, 0.3), (0.7, 1.0)]:
        m = (p >= lo) & (p < hi)
        assert m.sum() > 50
        assert abs(y[m].mean() - p[m].mean()) < 0.1, (lo, hi, y[m].mean(), p[m].mean())


def test_a_number_inside_a_longer_number_does_not_support_it():
    ctx = ["The bridge is 13.5 km long and cost 1,300 million."]
    assert detect("The bridge is 3 km long.", ctx).claims[0].reason == "number 3 not in context"
    assert detect("The bridge is 13.5 km long.", ctx).claims[0].reason is None
    assert detect("It cost 1.3 billion.", ctx).claims[0].reason is None  # 1,300 million, by value
    assert detect("It cost 1.4 billion.", ctx).claims[0].reason == "number 1.4 billion not in context"


def test_number_words_and_digits_support_each_other():
    ctx = ["The team won three titles in 12 years."]
    assert detect("The team won 3 titles in twelve years.", ctx).claims[0].reason is None
    assert detect("The team won four titles.", ctx).claims[0].reason == "number four not in context"


@pytest.mark.parametrize("answer, context", [
    ("There are 750 episodes of Pokemon.", "There are 750 episodes of Pokémon."),  # the accent dropped by the answer
    ("The Pokémon series has 750 episodes.", "The Pokemon series has 750 episodes."),  # or added
    ("The Zürich office of Nestlé opened in 2019.", "The Zu\u0308rich office of Nestle\u0301 opened in 2019."),  # NFD
    ("Cornerback Josh Norman criticized the league.",  # a context scraped from HTML, soft hyphens as references
     "Cor&shy;ner&shy;back Josh Norman crit&shy;i&shy;cized the league."),
    ("Cornerback Josh Norman criticized the league.", "Cor\u00adner\u00adback Josh Nor\u200bman criticized the league."),
    ("Rock & roll began in Memphis in 1954.", "Rock &amp; roll began in Memphis in 1954."),
    ("It opened on 5 May 2020 with an ﬁnal budget.", "It opened on ５ May ２０２０ with an final budget."),
])
def test_accents_html_references_and_invisible_characters_do_not_make_a_copied_answer_unsupported(answer, context):
    # Before: "pokemon" and "pokémon", "cor&shy;ner&shy;back" and "cornerback", "２０２０" and "2020" were different
    # words: the copied answer got unsupported words, novel bigrams, a missing name or number, and a higher score.
    d = detect(answer, [context])
    assert _judged(d) == [(1.0, None)] * len(d.claims)
    assert d.score == pytest.approx(detect(answer, [answer]).score, abs=1e-12)


_ORDER = "Order 1182: shipped 2020-03-05, carrier DHL."


@pytest.mark.parametrize("answer, context", [
    ("Order 1182 shipped on March 5, 2020.", _ORDER),  # a database's ISO date, written out by the answer
    ("Order 1182 shipped on Thursday, March 5, 2020.", _ORDER),  # with the weekday that date was
    ("Order 1182 shipped in March 2020.", _ORDER),  # less precise than the context: still what it says
    ("Order 1182 shipped on March 5.", _ORDER),
    ("The order shipped on 5 March 2020.", "The order shipped on March 5, 2020 by DHL."),
    ("The order shipped on 2020-03-05.", "The order shipped on March 5, 2020 by DHL."),
    ("The order shipped on 03/05/2020.", "The order shipped on March 5, 2020 by DHL."),  # day and month either way
    ("The order shipped on 05.03.2020.", "The order shipped on March 5, 2020 by DHL."),
    ("The meeting is on Mar. 5th.", "The meeting is on March 5."),
    ("The meeting is on the 5th of March.", "The meeting is on March 5."),
    ("It shipped on March 5, 2020.", "It shipped on March 5. That was in 2020."),  # the year elsewhere
])
def test_a_date_the_context_states_in_another_form_supports_the_claim(answer, context):
    # Before: "March 5, 2020" against "2020-03-05" gave "number 5 not in context" and "entity 'March' not in
    # context", and a score as high as for a wrong date.
    d = detect(answer, [context])
    assert _judged(d) == [(1.0, None)]


@pytest.mark.parametrize("answer, reason", [
    ("Order 1182 shipped on March 6, 2020.", "date 'March 6, 2020' not in context"),
    ("Order 1182 shipped on March 5, 2021.", "date 'March 5, 2021' not in context"),
    ("Order 1182 shipped in April 2020.", "date 'April 2020' not in context"),
    ("Order 1182 shipped on Friday, March 5, 2020.", "date 'Friday, March 5, 2020' not in context"),
    ("Order 1182 shipped on 2020-05-03.", "date '2020-05-03' not in context"),
])
def test_a_date_the_context_does_not_state_is_flagged_as_a_date(answer, reason):
    d = detect(answer, [_ORDER])
    assert d.claims[0].reason == reason
    assert d.score > detect("Order 1182 shipped on March 5, 2020.", [_ORDER]).score + 0.3


@pytest.mark.parametrize("answer, context", [
    ("Revenue was $1.2M in 2023.", "Revenue in 2023 was $1,200,000."),
    ("Revenue was 1.2m dollars in 2023.", "Revenue in 2023 was 1.2 million dollars."),
    ("Revenue was $3.4bn in 2023.", "Revenue in 2023 was 3.4 billion dollars."),
    ("The plan costs $12k a year.", "The plan costs $12,000 per year."),
    ("Revenue was $1.2 million in 2023.", "Revenue in 2023 was $1.2M."),  # and the other way round
    ("The plan costs $12,000 a year.", "The plan costs $12K per year."),
    ("The mast is 5 m tall.", "The mast is 5 metres tall."),  # a unit, not a multiplier: read as written
])
def test_a_number_with_a_k_m_or_bn_suffix_is_judged_by_its_value(answer, context):
    # Before: "$1.2M" against "$1,200,000" gave "number 1.2 not in context", "$12k" "number 12 not in context".
    assert _judged(detect(answer, [context])) == [(1.0, None)]


@pytest.mark.parametrize("answer, reason", [
    ("Revenue was $1.3M in 2023.", "number 1.3m not in context"),
    ("Revenue was $1.2bn in 2023.", "number 1.2bn not in context"),
])
def test_a_suffixed_number_the_context_does_not_state_is_flagged(answer, reason):
    assert detect(answer, ["Revenue in 2023 was $1,200,000."]).claims[0].reason == reason


@pytest.mark.parametrize("answer, context", [
    ("The Pro plan includes 5 GB of storage.", "Pro plan: 5GB of storage per member."),
    ("The Pro plan includes 5GB of storage.", "Pro plan: 5 GB of storage per member."),
    ("Latency is under 200ms.", "Latency is under 200 ms."),
    ("Churn fell 20 percent.", "Churn fell 20%."),
    ("Churn fell 2.5 per cent.", "Churn fell 2.5%."),
])
def test_a_number_and_its_unit_match_written_glued_or_apart(answer, context):
    # Before: "5 GB" against "5GB" gave "entity 'GB' not in context" (the context's word was "5gb").
    assert _judged(detect(answer, [context])) == [(1.0, None)]


def test_a_unit_glued_to_another_number_does_not_support_the_claim():
    assert detect("The Pro plan includes 5 GB of storage.", ["Pro plan: 50GB of storage per member."]).claims[0].reason \
        == "number 5 not in context"


@pytest.mark.parametrize("number", ["1" + "0" * 400, "9" * 5000, "1" + ",000" * 150])
def test_a_number_too_large_for_a_float_is_judged_as_written(number):
    # Before: OverflowError (the value's forms took int() of an infinite float), so one answer holding such a number (a
    # generation stuck repeating a digit) stopped a whole scoring run.
    absent = detect(f"It cost {number} dollars.", ["It cost 5 dollars."])
    assert absent.label == 1 and absent.claims[0].reason == f"number {number} not in context"
    assert _judged(detect(f"It cost {number} dollars.", [f"The price: it cost {number} dollars."])) == [(1.0, None)]
    assert detect("It cost 5 dollars.", [f"It cost {number} dollars, or 5 dollars."]).claims[0].reason is None


@pytest.mark.parametrize("answer, context", [
    ("The UN was founded in 1945.", "The United Nations was founded in 1945."),
    ("He moved to the US in 1990.", "He moved to the U.S. in 1990."),
    ("He moved to the U.S. in 1990.", "He moved to the US in 1990."),
    ("NASA launched it in 1990.", "The National Aeronautics and Space Administration launched it in 1990."),
    ("SSO requires the Business plan.", "Single Sign-On requires the Business plan."),
])
def test_an_acronym_and_its_expansion_support_each_other(answer, context):
    # Before: "entity 'UN' not in context", "entity 'US' not in context", "entity 'NASA' not in context".
    assert _judged(detect(answer, [context])) == [(1.0, None)]


def test_an_acronym_the_contexts_do_not_expand_is_still_a_missing_name():
    assert detect("The IMF was founded in 1945.", ["The United Nations was founded in 1945."]).claims[0].reason \
        == "entity 'IMF' not in context"


def test_a_weekday_on_a_date_that_does_not_exist_is_unsupported_not_an_error():
    # Before: ValueError "day is out of range for month" from detect(), for a context stating 2020-02-31 as well.
    d = detect("It shipped on Monday, February 31, 2020.", ["It shipped 2020-02-31."])
    assert d.claims[0].reason == "date 'Monday, February 31, 2020' not in context"
    assert detect("It shipped on February 31, 2020.", ["It shipped 2020-02-31."]).claims[0].reason is None


def test_deterministic_across_processes_and_hash_seeds():
    # Set iteration order changes with PYTHONHASHSEED; the detector must not depend on it.
    import subprocess
    import sys

    code = (
        "import json; from workbench.eval.detector import detect; "
        "d = detect('Paris and paris are in France, the French capital, founded in 1887.', "
        "['Paris is the capital of France.', 'The city was founded long ago.'], 'Where is Paris?'); "
        "print(json.dumps([d.score, [(c.text, c.support, c.evidence, c.reason) for c in d.claims]]))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        for seed in ("0", "1", "2", "3")
    }
    assert len(outs) == 1, outs


def test_progress_bar_only_on_request_and_only_on_a_terminal(monkeypatch):
    import io

    assert D._progress([1, 2], False) == [1, 2]  # not asked: the iterable itself, no tqdm
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    bar = D._progress([1, 2], True)
    assert bar.disable is True and list(bar) == [1, 2]


# ---------------------------------------------------------------------------------------------
# Pinned outputs: speed work must not change a score, a label or a claim (DETECTOR_VERSION 2.8.1;
# re-recorded for each new version: a change of the algorithm or the weights moves the scores)
# ---------------------------------------------------------------------------------------------

_PINNED_CASES = [
    ("The Eiffel Tower was completed in 1887 by Gustave Eiffel's company; it is 330 metres tall.",
     ["The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall.",
      "Gustave Eiffel's company designed and built the tower for the 1889 World's Fair."],
     "When was the Eiffel Tower completed?"),
    ("Dr. Smith didn't approve the budget, but the U.S. Senate approved 1.2 million dollars in Jan. 2020.",
     ["Mr. Jones said Dr. Smith did not approve the budget.The U.S. Senate approved 1,200,000 dollars in "
      "Jan. 2020.\nIt was not only the largest grant, but the first."], None),
    ("Café Zoë’s owner, José, opened it in São Paulo in 1999 – it serves economic lunches to twelve guests.",
     ["José opened Café Zoë’s in São Paulo in 1999. The café’s economy menu seats twelve people.", "  "],
     "Who owns Café Zoë’s?"),
    ("Prof. Lee wrote three books about whales. He never visited Antarctica. Is it true?",
     ["Prof. Lee (born 1950) wrote two books about whales and dolphins. He visited Antarctica twice."], None),
]
# (score, label, claims as (text, support, evidence, reason)), recorded for 2.6.0 (2.0.0 gave the same claims; the
# scores moved by under 0.002 with the weights refitted as words were folded, 2.1.0, dates read, 2.2.0, and acronyms
# matched to their expansions, 2.6.0; 2.6.1 only cuts a sentence of more than 150 words into claims; 2.7.0 reads
# Markdown and leaves courtesies out, the same claims here, and its refitted weights moved the scores; 2.8.0 reads
# typographic apostrophes, magnitudes, times and character references as a reader does, the same claims here, and
# its refit moved the scores by under 0.001; 2.8.1 reads a reply's opening "no" as an answer, not a negation, and
# splits evidence at a spaced dash as claims are split, the same claims here, and its refit moved the scores by under
# 0.002).
_PINNED = [
    (0.8774245824076262, 1, [
        (
            "The Eiffel Tower was completed in 1887 by Gustave Eiffel's company",
            0.4167,
            "Gustave Eiffel's company designed and built the tower for the 1889 World's Fair.",
            'number 1887 not in context',
        ),
        (
            'it is 330 metres tall.',
            1.0,
            'It is 330 metres tall.',
            None,
        ),
    ]),
    (0.397272662244547, 0, [
        (
            "Dr. Smith didn't approve the budget",
            0.8,
            'Mr. Jones said Dr. Smith did not approve the budget.',
            None,
        ),
        (
            'but the U.S. Senate approved 1.2 million dollars in Jan. 2020.',
            1.0,
            'The U.S. Senate approved 1,200,000 dollars in Jan. 2020.',
            None,
        ),
    ]),
    (0.8890279666377716, 1, [
        (
            'Café Zoë’s owner, José, opened it in São Paulo in 1999 – it serves economic lunches to twelve guests.',
            0.4904,
            'José opened Café Zoë’s in São Paulo in 1999.',
            "number 'twelve' not in its evidence sentence",
        ),
    ]),
    (0.9951751496875952, 1, [
        (
            'Prof. Lee wrote three books about whales.',
            0.4167,
            'Prof. Lee (born 1950) wrote two books about whales and dolphins.',
            'number three not in context',
        ),
        (
            'He never visited Antarctica.',
            0.6667,
            'He visited Antarctica twice.',
            None,
        ),
        (
            'Is it true?',
            0.0,
            '',
            'low overlap 0.00',
        ),
    ]),
]


@pytest.mark.parametrize("case, expected", list(zip(_PINNED_CASES, _PINNED)))
def test_outputs_are_pinned(case, expected):
    assert D.DETECTOR_VERSION == "2.8.1"  # a new version may change these numbers: re-record them
    d = detect(*case)
    score, label, claims = expected
    assert abs(d.score - score) <= 1e-12
    assert d.label == label
    assert [(c.text, c.support, c.evidence, c.reason) for c in d.claims] == claims


_TRICKY = [
    "Mr. Smith met Dr. Jones. U.S. Army Capt. Kirk said 3.5 No. 5 etc. Fine.The end",
    "H. Bruce went.\nNext!  'Yes.' He said. (It was.) Then [x.] Sept. 5 Prof. X Sen. Y Mrs. Z vs. A",
    "Jr. Corp. Co. Inc. Ltd. Gen. Col. Lt. Sgt. Gov. Rep. Feb. 3 Officers.The Government? Yes!No.\n\n",
    "“Quoted.” Then… he left.) Done.” ok. 10:30 a.m. was 45% of 1,000.5 — café’s don’t Zoë_x ÉTÉ. Ⅻ²",
    "",
]


def test_grouped_abbreviation_lookbehinds_match_the_one_per_abbreviation_pattern():
    import re

    reference = re.compile(
        r"[.!?\n](?:(?<=\n)|(?<!\b[A-Z]\.)"
        + "".join(rf"(?<!\b{a}\.)" for a in D._ABBREVIATIONS)
        + r"[\"'”’)\]]*(?=\s)|(?<=[a-z0-9)][.!?])(?=[A-Z]))"
    )
    texts = _TRICKY + [f"See {a}. Next {a}.Then x {a}." for a in D._ABBREVIATIONS]
    for text in texts:
        spans = [m.span() for m in D._SENT_END_RE.finditer(text)]
        assert spans == [m.span() for m in reference.finditer(text)]
        ends = [m.end() for m in reference.finditer(text)]
        starts = [0, *ends]
        pieces = [text[a:b] for a, b in zip(starts, [*ends, len(text)])]
        assert D._context_sentences(text) == pieces


def test_folding_removes_and_rewrites_the_invisible_characters_as_the_translate_table_did():
    # _fold writes the invisible characters and typographic apostrophes (_INVISIBLE) by a replace per character held
    # instead of str.translate: the same text, on random texts mixing them with accents, other scripts and ASCII.
    import html
    import random
    import unicodedata

    def reference(text: str) -> str:
        if "&" in text:
            text = html.unescape(text)
        low = text.lower()
        if low.isascii():
            return low
        low = D._LATIN_MARKS_RE.sub("", unicodedata.normalize("NFKD", low.translate(D._INVISIBLE)))
        return unicodedata.normalize("NFKC", low)

    rng = random.Random(17)
    alphabet = list("aZ '’\u02bc\u00ad\u200b\u200c\u200d\u2060\ufeffé\u0301Üñ–ＡﬁΣς") + ["&shy;", "&rsquo;", "n’t"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        assert D._fold(text) == reference(text), text


def test_the_split_for_texts_without_other_sentence_ends_is_the_full_split():
    # _context_sentences splits a text without "!", "?" or a newline by the sentence-end pattern written to start with
    # a "." (which the regex engine scans for fast): the same pieces as the full pattern, on random texts of the
    # characters the pattern looks at around a "." (abbreviations, initials, closing quotes and brackets, spaces,
    # capitals glued to the end) and on the tricky texts with their other ends taken out.
    import random

    full = re.compile(f"({D._SENT_END_RE.pattern})").split
    rng = random.Random(13)
    alphabet = [".", ".", " ", "  ", "\t", "\u00a0", "A", "Z", "a", "x", "3", ")", "]", '"', "'", "\u201d", "\u2019",
                "Mr", "Dr", "Sept", "etc", "No", "U.S", "e.g", "vs", "Inc"]
    texts = [t.replace("!", "").replace("?", "").replace("\n", " ") for t in _TRICKY]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16))) for _ in range(30000)]
    for text in texts:
        assert "!" not in text and "?" not in text and "\n" not in text
        assert D._SENT_SPLIT_DOT(text) == full(text), text
        parts = full(text)
        assert D._context_sentences(text) == [a + b for a, b in zip(parts[0::2], [*parts[1::2], ""])], text


def test_ascii_token_pattern_gives_the_same_tokens():
    texts = [t.lower() for t in _TRICKY] + ["it's 1,000.5% of u.s. gdp: a_b 3:45 x.y.z, 'q' don't", "ab.,cd 5%% e'"]
    for text in texts:
        assert D._tokens(text) == D._TOKEN_RE.findall(text)
        assert D._TOKEN_ASCII_RE.findall(text) == D._TOKEN_RE.findall(text) or not text.isascii()


def test_outputs_on_shipped_rows_are_pinned():
    """Scores, supports and reasons on 400 shipped rows equal the pinned ones exactly (speed work must not move them).

    After a deliberate change (and a DETECTOR_VERSION bump) rewrite the golden: detect_batch over the same rows,
    {"score": ..., "claims": [[support, reason], ...]} per row, under "outputs" with the new "detector_version"."""
    from workbench.eval import detector as D

    g = json.loads((ROOT / "tests" / "goldens" / "detector_outputs.json").read_text())
    if g["detector_version"] != D.DETECTOR_VERSION:
        pytest.fail(f"golden written by detector {g['detector_version']}, module is {D.DETECTOR_VERSION}: rewrite it")
    rows = [json.loads(line) for line in (ROOT / "datasets" / "halu_dev.jsonl").open()][:300]
    rows += [json.loads(line) for line in (ROOT / "datasets" / "halu_contrastive.jsonl").open()][:100]
    got = [{"score": d.score, "claims": [[c.support, c.reason] for c in d.claims]} for d in D.detect_batch(rows)]
    assert len(got) == len(g["outputs"])
    for i, (a, b) in enumerate(zip(got, g["outputs"])):
        assert a == b, f"row {i}: {a} != {b}"


def test_scoring_one_answer_runs_no_garbage_collection_and_restores_the_collector(gc_collections):
    # 40 new passages of 60 sentences: tens of thousands of short-lived sets and lists. With the collector on they
    # pass its threshold many times during the call (each run walked every young object: 12-15% of the time).
    import gc

    D.clear_passage_cache()
    ctx = [" ".join(f"Station {p} {i} opened in {1800 + i} near river {p * i}." for i in range(60)) for p in range(40)]
    answer = " ".join(f"Station {p} {p} opened in {1800 + p} near river {p * p + 1}." for p in range(20))
    assert gc.isenabled()
    d, runs = gc_collections(lambda: detect(answer, ctx))
    assert runs == [] and gc.isenabled()
    assert d.score is not None and any("not in context" in (c.reason or "") for c in d.claims)
    # The same answer scored with the collector off by the caller: left off, same result.
    gc.disable()
    try:
        D.clear_passage_cache()
        d2 = detect(answer, ctx)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert d2 == d
    # An error inside the call still turns the collector back on.
    class Broken(str):
        def strip(self, *a):
            raise RuntimeError("broken passage")

    with pytest.raises(RuntimeError, match="broken passage"):
        detect("It opened in 1889.", [Broken("The tower opened in 1889.")])
    assert gc.isenabled()


@pytest.mark.parametrize("data, message", [
    (b'{"answer": "a", "contexts": ["c"]}\n{"answer": "caf\xe9", "contexts": ["c"]}\n',
     r"bad\.jsonl:2: not UTF-8 text \(byte 16 of the line\)"),
    (b'{"answer": "a", "contexts": ["c"]}\n{"answer": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
     r"bad\.jsonl:2: invalid JSON \(nested too deeply\)"),
])
def test_score_jsonl_hostile_bytes_name_the_line(tmp_path, data, message):
    # before: a UnicodeDecodeError or RecursionError traceback from `workbench hallucination score`
    src = tmp_path / "bad.jsonl"
    src.write_bytes(data)
    with pytest.raises(ValueError, match=message):
        score_jsonl(src, tmp_path / "out.jsonl", progress=False)
    src.write_bytes(b"\xef\xbb\xbf" + data.split(b"\n")[0] + b"\n")  # a byte-order mark is not an error
    assert score_jsonl(src, tmp_path / "out.jsonl", progress=False) is not None


# ---------------------------------------------------------------------------------------------
# Answers as chat models write them (2.7.0): Markdown and courtesies are not claims
# ---------------------------------------------------------------------------------------------

_LANDMARKS = ["The Eiffel Tower is in Paris. It was completed in 1889. The Brandenburg Gate stands in Berlin."]


@pytest.mark.parametrize("answer", [
    "Here are the landmarks:\n1. The Eiffel Tower is in Paris.\n2. The Brandenburg Gate stands in Berlin.",
    "Here are the landmarks:\n- **The Eiffel Tower** is in Paris.\n- The *Brandenburg Gate* stands in Berlin.",
    "## Landmarks\n\n1) The Eiffel Tower is in Paris.\n2) It was completed in `1889`.",
    "> The Eiffel Tower is in [Paris](https://en.wikipedia.org/wiki/Paris).\n\n---\n\n* It was completed in 1889.",
    "Sure! The Eiffel Tower is in Paris.",
    "The Eiffel Tower is in Paris. Let me know if you need anything else!",
    "Great question. The Eiffel Tower is in Paris, and it was completed in 1889.",
    "Based on the provided context, the Eiffel Tower is in Paris.",
    "I hope this helps! The Eiffel Tower is in Paris. Feel free to ask further questions.",
])
def test_markdown_and_courtesies_of_a_supported_answer_are_not_flagged(answer):
    # Before (2.6.1): list numbers were claims ("number 1 not in context"), a heading an unsupported name, and a
    # courtesy a claim with no support ("low overlap 0.00"): every one of these supported answers scored 0.75-0.96.
    d = detect(answer, _LANDMARKS)
    assert d.label == 0 and d.score < 0.3, d
    assert [c.reason for c in d.claims] == [None] * len(d.claims)
    assert not any(c.text.startswith(("1", "2", "#", "-", "*", ">")) or "**" in c.text for c in d.claims)


@pytest.mark.parametrize("answer, reasons", [
    ("## Landmarks\n1. The Eiffel Tower is in **Rome**.\n2. It was completed in 1887.",
     ["entity 'Rome' not in context", "number 1887 not in context"]),
    ("Sure! The Eiffel Tower is in London. I hope this helps!", ["entity 'London' not in context"]),
])
def test_a_wrong_fact_in_markdown_or_among_courtesies_is_still_flagged(answer, reasons):
    d = detect(answer, _LANDMARKS)
    assert d.label == 1
    assert [c.reason for c in d.claims if c.reason] == reasons


def test_an_answer_that_is_only_a_courtesy_keeps_it_as_its_claim():
    assert [c.text for c in detect("Yes.", _LANDMARKS).claims] == ["Yes."]
    assert D.split_claims("Sure! It opened in 1889. Hope this helps.") == ["It opened in 1889."]


@pytest.mark.parametrize("answer", ["**a " * 10000, "__a " * 10000, "*a " * 15000, "_a " * 15000, "[a](" * 10000,
                                    "`a " * 15000, "a:\n" * 10000, "\n".join(f"{i % 999}. item" for i in range(10000)),
                                    "**a *b _c `d [e](f " * 3000, "| a " * 15000, "| a | b |\n|---|---|\n" * 3000,
                                    "[1]" * 15000, "[1]: x\n" * 8000, "\u3010" * 20000])
def test_markdown_reading_takes_linear_time_on_hostile_answers(answer):
    # "**a " x 10,000 took 5.7 s in the first version of the Markdown reader (a bold span searched to the line's end
    # from every mark); a scoring run must not stall on one answer.
    import time

    t = time.perf_counter()
    D._unmark(answer)
    assert time.perf_counter() - t < 0.5


_TABLE_CTX = ["The Eiffel Tower is in Paris. It was completed in 1889. The Brandenburg Gate stands in Berlin. "
              "It was completed in 1791."]


@pytest.mark.parametrize("answer", [
    "| Landmark | City | Completed |\n|---|---|---|\n| Eiffel Tower | Paris | 1889 |\n| Brandenburg Gate | Berlin | 1791 |",
    "| Landmark | City |\n| :--- | ---: |\n| Eiffel Tower | Paris |",
    "The Eiffel Tower (completed in 1889) is in Paris [1].\n\n[1]: https://en.wikipedia.org/wiki/Eiffel_Tower",
    "The Eiffel Tower is in Paris.[^1] It was completed in 1889 [2][3].\n\n[^1]: Source: the city guide.",
    "The Eiffel Tower is in Paris 【4:0†source】 and it was completed in 1889.",
])
def test_tables_and_citation_marks_of_a_supported_answer_are_not_flagged(answer):
    # Before: a table's header row was a claim of unsupported names ("entity 'Landmark' not in context") and a
    # citation mark a number ("number 1 not in context"): these supported answers scored 0.99.
    d = detect(answer, _TABLE_CTX)
    assert d.label == 0, d  # (a table's rows are telegraphic: their bigrams across cells are new, the score higher)
    assert [c.reason for c in d.claims] == [None] * len(d.claims)
    assert not any("|" in c.text or "[" in c.text or "Landmark" in c.text for c in d.claims)


def test_a_wrong_cell_of_a_table_is_still_flagged():
    d = detect("| Landmark | City |\n|---|---|\n| Eiffel Tower | Rome |", _TABLE_CTX)
    assert d.label == 1 and [c.reason for c in d.claims if c.reason] == ["entity 'Rome' not in context"]
    assert [c.text for c in d.claims] == ["Eiffel Tower, Rome"]
