"""The offline detector on hostile and unusual input: time linear in the input, no crash, no memory kept for good,
the same figures in every process, and the evidence read as a reader would (scraped text, typographic apostrophes,
magnitudes, times). Each case failed before the change that fixed it (timings: before, on the development machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ParameterError
from workbench.eval import detector as D
from workbench.eval import fit as F

ROOT = Path(__file__).resolve().parents[1]
WORKBENCH = str(Path(sys.executable).with_name("workbench"))


def _timed(answer, contexts):
    t = time.perf_counter()
    d = D.detect(answer, contexts)
    return d, time.perf_counter() - t


# -- time linear in the input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    "The tower opened in 1889.\n" + " " * 30_000 + "|",  # 22 s before (the table patterns)
    "| The tower opened in 1889." + " " * 20_000 + "x",  # a table row padded with spaces: 2 s
    "The tower opened in 1889. " + "[" * 40_000 + "](x",  # unclosed brackets before a link: 10.5 s
    "[a " * 20_000 + "[see](x) The tower opened in 1889.",  # 6.6 s
])
def test_markdown_patterns_take_time_linear_in_the_answer(answer):
    d, seconds = _timed(answer, ["The tower opened in 1889."])
    assert seconds < 1.0, seconds
    assert 0.0 <= d.score <= 1.0


def test_a_context_of_a_long_digit_string_is_searched_past_its_runs():
    # 30 claims "It is 1." against a million digits: each claim walked the digits one at a time (7.2 s)
    d, seconds = _timed("It is 1. " * 30, ["1" * 1_000_000])
    assert seconds < 2.0, seconds
    assert all(c.reason == "number 1 not in context" for c in d.claims)  # "1" inside a longer number is not "1"
    assert D._literal_in("3", "x 13 5..3 y")  # a number after two punctuation marks is still found
    assert not D._literal_in("3", "x 13 1,3 3.5 y")


def test_tables_are_read_as_before():
    text = "| City | Year |\n|:---|---:|\n| Paris |  1889 |\n  |a||b|  \nNot | a row\n---|---\nend | x"
    # a header (the line above a separator) dropped with its line; separators emptied; rows read as cells joined by
    # ", "; a line not starting with a pipe kept (the same as the patterns before, checked on 200,000 random texts)
    assert D._untable(text) == "\nParis, 1889\na, , b\n\nend | x"


# -- no crash, no memory kept ----------------------------------------------------------------------------------------


def test_a_row_holding_a_lone_surrogate_is_scored_and_written(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "ok", "answer": "It opened in 1889.", "contexts": ["It opened in 1889."]}) + "\n"
                   + '{"id": "odd", "answer": "It opened \\ud800 in 1889.", "contexts": ["It opened in 1889."]}\n')
    out = tmp_path / "out.jsonl"
    assert D.score_jsonl(src, out, progress=False)["rows"] == 2  # raised UnicodeEncodeError writing the second row
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["ok", "odd"] and rows[1]["answer" if "answer" in rows[1] else "claims"]
    assert rows[1]["claims"][0]["text"] == "It opened \ud800 in 1889."  # as read: the escape round-trips


def test_an_integer_too_long_to_read_is_named_with_file_and_line(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text(json.dumps({"answer": "a", "contexts": ["a"], "label": 0}) + "\n"
                 + '{"answer": "a", "contexts": ["a"], "label": 0, "id": ' + "9" * 5000 + "}\n")
    with pytest.raises(ParameterError, match=r"l\.jsonl:2: a JSON number too long to read"):
        D.read_labelled(p)  # was Python's ValueError with a traceback


def test_long_tokens_are_not_kept_in_the_word_caches(monkeypatch):
    blob = "Q" * 100_000  # a base64 image or a hash in a scraped page
    D.detect("The tower opened in 1889.", [f"The tower opened in 1889. {blob}{os.getpid()}"])
    longest = max(map(len, [*D._STEM_CACHE, *D._CONTENT_STEM]))
    assert longest <= D._CACHED_TOKEN_MAX  # was kept whole: 100 MB per 1,000 answers, for good


def test_the_passage_cache_holds_a_bounded_number_of_characters(monkeypatch):
    monkeypatch.setattr(D, "PASSAGE_CACHE_CHARS", 1_000)
    D.clear_passage_cache()
    passages = [f"Passage {i} says the tower opened in {1800 + i}. " * 5 for i in range(20)]  # 250+ chars each
    for p in passages:
        D.detect("The tower opened in 1889.", [p])
    info = D.passage_cache_info()
    assert 0 < info["chars"] <= 1_000 and info["size"] == info["chars"] // len(passages[0])
    assert list(D._PASSAGES) == passages[-info["size"]:]  # the newest kept
    D.clear_passage_cache()
    assert D.passage_cache_info()["chars"] == 0


# -- the same figures in every process --------------------------------------------------------------------------------


def test_features_are_the_same_whatever_the_hash_seed():
    code = ("import json; from workbench.eval import detector as D; "
            "rows = D.read_labelled('datasets/halu_dev.jsonl')[:150]; "
            "print(json.dumps(D.feature_matrix(rows).tolist()))")
    out = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert out[0] == out[1]  # weak_alignment summed floats in set order: its last bits followed the seed


def test_leave_one_source_out_scores_unscorable_answers_one_half():
    x = np.array([[0.1], [0.9], [0.2], [0.8], [0.0], [0.0]])
    y = np.array([0, 1, 0, 1, 1, 1.0])
    src = ["a", "a", "b", "b", "a", "b"]
    scorable = [True, True, True, True, False, False]
    p = F.loso_predictions(x, y, src, scorable=scorable)
    assert p[4] == p[5] == 0.5  # were scored by a fit that had learnt their zero features with their labels
    flipped = F.loso_predictions(x, np.array([0, 1, 0, 1, 0, 0.0]), src, scorable=scorable)
    assert np.array_equal(p[:4], flipped[:4])  # and they take no part in the fits


# -- evidence read as a reader would ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "It re&shy;al&shy;ly is hard to watch.",
    "The team&rsquo;s cor&shy;ner&shy;back won the game.",
    "It&#8217;s the real thing.",
])
def test_a_verbatim_copy_of_text_with_character_references_is_one_supported_claim(text):
    d = D.detect(text, [text])
    # the ";" of "&shy;" split the sentence into claims such as "It re&shy, al&shy" (support 0): flagged, 0.97
    assert [(c.text, c.support, c.reason) for c in d.claims] == [(text, 1.0, None)]
    assert d.label == 0


@pytest.mark.parametrize("answer, context", [
    ("The Eiffel Tower wasn\u2019t completed in 1889.", "The Eiffel Tower was completed in 1889."),
    ("The Eiffel Tower was completed in 1889.", "The Eiffel Tower wasn\u2019t completed in 1889."),
])
def test_a_negation_with_a_typographic_apostrophe_is_a_negation(answer, context):
    assert D.detect(answer, [context]).claims[0].reason == "negation mismatch"  # was support 1.0, label 0


def test_a_quote_glued_to_a_word_is_not_a_negation():
    text = "The title went to the champion'Twin Cities' after the 1999 final in Boston."
    assert [(c.support, c.reason) for c in D.detect(text, [text]).claims] == [(1.0, None)]  # was 'negation mismatch'


def test_a_typographic_apostrophe_matches_the_ascii_one():
    d = D.detect("The museum\u2019s collection doesn\u2019t include it.",
                 ["The museum's collection doesn't include it."])
    assert [(c.support, c.reason) for c in d.claims] == [(1.0, None)]


@pytest.mark.parametrize("answer, context, bad", [
    ("The company raised $5bn in 2021.", "The company raised $5 million in 2021.", "5bn"),
    ("The company raised $5M in 2021.", "The company raised $5 billion in 2021.", "5m"),
    ("The population is 2.1k.", "The population is 2.1 million.", "2.1k"),
])
def test_a_magnitude_the_contexts_do_not_state_is_flagged(answer, context, bad):
    # "5 m may be metres": the bare number was accepted whatever magnitude the context gave it (support 1.0)
    assert D.detect(answer, [context]).claims[0].reason == f"number {bad} not in context"


@pytest.mark.parametrize("answer, context, reason", [
    ("The meeting started at 11:45 in Paris.", "The meeting started at 10:30 in Paris.", "number 11:45 not in context"),
    ("The final score was 0:7 for Paris.", "The final score was 3:1 for Paris.", "number 0:7 not in context"),
    ("The meeting started at 10:30 in Paris.", "The meeting started at 10:30 in Paris.", None),
])
def test_times_and_scores_are_compared_as_written(answer, context, reason):
    assert D.detect(answer, [context]).claims[0].reason == reason  # were never checked: support 1.0


# -- the command line -------------------------------------------------------------------------------------------------


def test_benchmark_refuses_a_count_of_resamples_below_one(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text(json.dumps({"answer": "a b c", "contexts": ["a b c"], "label": 0}) + "\n")
    r = subprocess.run([WORKBENCH, "hallucination", "benchmark", str(p), "--reps", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--reps: expected a whole number > 0, got '0'" in r.stderr  # printed [nan, nan]
    with pytest.raises(ParameterError, match="reps must be a whole number >= 1"):
        D.benchmark_rows([{"answer": "a", "contexts": ["a"], "label": 0}], reps=-5)


def test_benchmark_json_has_no_nan(tmp_path):
    p = tmp_path / "l.jsonl"
    rows = [{"answer": "It opened in 1889.", "contexts": ["It opened in 1889."], "label": 0, "source": "a"}] * 6
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))  # one label: no AUROC
    r = subprocess.run([WORKBENCH, "hallucination", "benchmark", str(p), "--json", "--reps", "20"],
                       capture_output=True, text=True, check=True)

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    out = json.loads(r.stdout, parse_constant=refuse)  # was bare NaN
    assert out["sources"][0]["auroc"] is None
