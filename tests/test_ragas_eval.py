"""ragas metrics into evals: hand-checked values for the non-LLM metrics, Faithfulness against the local fake endpoint."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

pytest.importorskip("ragas", reason="the ragas extra is not installed (uv sync --extra ragas)")

import workbench as wb  # noqa: E402
from workbench.eval import score
from workbench.eval import judge
from workbench.eval import ragas as ragas_eval


pytestmark = pytest.mark.usefixtures("no_project_config")


def make_db(rows):
    db = wb.connect(":memory:")
    if rows:
        db.duckdb.executemany("insert into answers (call_id, question, contexts, answer, reference) values (?, ?, ?, ?, ?)",
                              rows)
    return db


def values(db, metric):
    return dict(db.duckdb.execute("select call_id, value from evals where metric = ?", [metric]).fetchall())


def test_identical_strings_score_one_and_hand_checked_values():
    same = "The cat sat on the mat."
    db = make_db([
        ("same", None, None, same, same),
        ("rouge", None, None, "the cat lay on the mat", "the cat sat on the mat"),
        ("lev", None, None, "sitting", "kitten"),
        ("noref", None, None, "an answer", None),
    ])
    for m in ("rouge", "bleu", "chrf", "string_similarity"):
        s = ragas_eval.evaluate(db, metric=m, progress=False)
        assert (s["scored"], s["missing_input"], s["unscorable"]) == (3, 1, 0), m  # no reference: not scored
        v = values(db, f"ragas_{m}_score")
        assert v["same"] == pytest.approx(1.0), m
        assert "noref" not in v
    # ROUGE-L F1: LCS "the cat on the mat" = 5 of 6 tokens on both sides -> P = R = F = 5/6
    assert values(db, "ragas_rouge_score")["rouge"] == pytest.approx(5 / 6)
    # normalised Levenshtein: distance(kitten, sitting) = 3, longest 7 -> 1 - 3/7
    assert values(db, "ragas_string_similarity_score")["lev"] == pytest.approx(1 - 3 / 7)


def test_bleu_matches_sacrebleu_with_effective_order():
    import sacrebleu

    ref, hyp = "The cat sat on the mat near the door", "The cat sat on a mat"
    db = make_db([("a", None, None, hyp, ref)])
    ragas_eval.evaluate(db, metric="bleu", progress=False)
    expected = sacrebleu.corpus_bleu([hyp], [[ref]], use_effective_order=True).score / 100
    assert 0 < expected < 1
    assert values(db, "ragas_bleu_score")["a"] == pytest.approx(expected)
    stored = db.duckdb.execute("select evaluator, evaluator_version from evals").fetchone()
    assert stored[0] == "ragas" and stored[1].endswith("-effective-order")


def test_nonllm_context_recall_and_rescoring_rules():
    db = make_db([
        ("hit", "q", ["Refunds are accepted within 30 days.", "Shipping takes a week."],
         "a", "Refunds are accepted within 30 days."),
        ("miss", "q", ["Shipping takes a week."], "a", "Refunds are accepted within 30 days."),
    ])
    s = ragas_eval.evaluate(db, metric="nonllm_context_recall", progress=False)
    assert s["scored"] == 2
    assert values(db, "ragas_nonllm_context_recall_score") == {"hit": 1.0, "miss": 0.0}
    # same metric, same options: nothing new; other options: another version, re-scored
    assert ragas_eval.evaluate(db, metric="nonllm_context_recall", progress=False)["skipped"] == 2
    s = ragas_eval.evaluate(db, metric="nonllm_context_recall", progress=False, threshold=0.99)
    assert s["scored"] == 2 and "threshold=0.99" in s["version"]


def test_faithfulness_against_the_fake_endpoint(fake):
    db = make_db([
        ("good", "What is the window?", ["Refunds within 30 days."], "Refunds within 30 days. Bring a receipt.", None),
        ("half", "What is the window?", ["Refunds within 30 days."], "Refunds within 30 days. Shipping UNSUPPORTED.", None),
        ("blank", "What is the window?", ["Refunds within 30 days."], "   ", None),
        ("noctx", "What is the window?", [], "Refunds within 30 days.", None),
    ])
    cfg = judge.judge_config(base_url=fake.base_url, model="fake-judge", max_retries=0, timeout_s=10)
    est = score.evaluate(db, detector="ragas:faithfulness", config=cfg, dry_run=True)
    assert fake.count == 0 and est["to_score"] == 4 and est["requests"] == 8 and est["input_tokens_est"] > 0
    s = score.evaluate(db, detector="ragas:faithfulness", config=cfg, progress=False)
    assert (s["evaluator"], s["metric"]) == ("ragas:fake-judge", "ragas_faithfulness_score")
    assert (s["scored"], s["unscorable"]) == (2, 2)
    # statements = sentences; the fake NLI verdict is 0 for UNSUPPORTED: faithfulness = supported share
    assert values(db, "ragas_faithfulness_score") == {"good": 1.0, "half": 0.5, "blank": None, "noctx": None}
    expl = dict(db.duckdb.execute("select call_id, explanation from evals where label = 'unscorable'").fetchall())
    assert "NaN" in expl["blank"]  # no statement extracted
    assert "retrieved_contexts is missing" in expl["noctx"]
    # ragas's prompts went over the wire as chat completions in JSON mode
    assert all(b["model"] == "fake-judge" and b["response_format"] == {"type": "json_object"} for b in fake.requests)
    n = fake.count
    assert score.evaluate(db, detector="ragas:faithfulness", config=cfg, progress=False)["scored"] == 0
    assert fake.count == n  # nothing re-scored


def test_inside_a_running_event_loop():
    db = make_db([("a", None, None, "same text", "same text")])

    async def cell():
        return ragas_eval.evaluate(db, metric="rouge", progress=False)

    assert asyncio.run(cell())["scored"] == 1


def test_unknown_metric_and_repeat():
    db = make_db([])
    with pytest.raises(ValueError, match="unknown metric 'bleurt'"):
        ragas_eval.evaluate(db, metric="bleurt")
    with pytest.raises(ValueError, match="repeat must be 1"):
        ragas_eval.evaluate(db, metric="rouge", repeat=3)


def test_missing_extra_gives_the_install_hint():
    # A separate interpreter in which ragas cannot be imported, as in an install without the extra.
    code = ("import sys; sys.modules['ragas'] = None\n"
            "from workbench import ragas_eval\n"
            "try:\n    ragas_eval.require_ragas()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install 'workbench[ragas]'" in out.stdout and "uv sync --extra ragas" in out.stdout
