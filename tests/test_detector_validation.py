"""Detector 2.0 features, the passage cache, the contrastive development set and the validation helpers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.eval import detector as D
from workbench.eval import fit as F
from workbench.stats import auroc, brier_score

ROOT = Path(__file__).resolve().parents[1]


# -- features and per-claim evidence ---------------------------------------------------------------------------------


def test_swapped_number_from_elsewhere_in_the_context_is_named():
    ctx = ["The bridge opened in 1932 and cost 12 million pounds.", "A second bridge was planned in 1958."]
    d = D.detect("The bridge opened in 1958 and cost 12 million pounds.", ctx)
    # 1958 is in the contexts (so the absent-word baseline sees nothing), but not in the claim's evidence sentence.
    assert d.claims[0].reason == "number '1958' not in its evidence sentence"
    assert "1932" in d.claims[0].evidence


def test_antonym_flip_is_named():
    ctx = ["Sales of the company rose sharply in the third quarter of the year."]
    d = D.detect("Sales of the company fell sharply in the third quarter of the year.", ctx)
    assert d.claims[0].reason == "antonym 'fell' where the evidence says 'rose'"
    same = D.detect("Sales of the company rose sharply in the third quarter of the year.", ctx)
    assert same.claims[0].reason is None and same.score < d.score


def test_bigram_novelty_counts_word_order_the_word_share_misses():
    ctx = ["The dog bit the man in the park."]
    x = D.feature_matrix([{"answer": "The man bit the dog in the park.", "contexts": ctx},
                          {"answer": "The dog bit the man in the park.", "contexts": ctx}])
    words, bigrams = D.FEATURES.index("novel_word_share"), D.FEATURES.index("novel_bigram_share")
    assert x[0, words] == x[1, words] == 0.0
    # bigrams of the swapped answer: the man, man bit, bit the, the dog, dog in, in the, the park; the context has
    # the dog, dog bit, bit the, the man, man in, in the, the park: "man bit" and "dog in" are new, 2 of 7
    assert x[0, bigrams] == pytest.approx(2 / 7)
    assert x[1, bigrams] == 0.0


def test_ngrams_do_not_span_two_passages():
    x = D.feature_matrix([{"answer": "alpha beta", "contexts": ["one alpha", "beta two"]}])
    assert x[0, D.FEATURES.index("novel_bigram_share")] == 1.0


def test_idf_alignment_weighs_rare_words():
    ctx = ["The the the report was written by Okonkwo.", "The report was long.", "The report was late."]
    x = D.feature_matrix([{"answer": "The report was written by Okonkwo.", "contexts": ctx},
                          {"answer": "The report was written by Adebayo.", "contexts": ctx}])
    j = D.FEATURES.index("weak_alignment")
    assert x[0, j] == pytest.approx(0.0)
    assert x[1, j] > 0.3  # the rare name carries most of the claim's weight


# -- passage cache ---------------------------------------------------------------------------------------------------


def test_passage_cache_hits_and_gives_identical_results():
    rows = [{"answer": f"The tower opened in {1880 + i}.", "contexts": ["The tower opened in 1889.", "It is tall."]}
            for i in range(20)]
    D.clear_passage_cache()
    warm = [D.detect(r["answer"], r["contexts"]) for r in rows]
    info = D.passage_cache_info()
    assert (info["misses"], info["hits"]) == (2, 38)
    cold = []
    for r in rows:
        D.clear_passage_cache()
        cold.append(D.detect(r["answer"], r["contexts"]))
    assert warm == cold


def test_new_and_seen_passages_mixed_in_one_source_give_the_all_new_result():
    # A source's word set is built from the word sets of passages seen before and from the token lists of new
    # ones: every mix of the two must give what all-new passages give.
    ctx = ["The tower opened in 1889 in Paris.", "It is 330 metres tall and made of iron.", "Gustave Eiffel built it."]
    answers = ["The tower opened in 1887 and is 330 metres tall.", "Eiffel built the iron tower in Paris.",
               "The tower, made of steel, opened in Lyon."]
    expected = []
    for a in answers:
        D.clear_passage_cache()
        expected.append(D.detect(a, ctx))
    for seen in ([0], [1, 2], [0, 2], [0, 1, 2]):
        for a, exp in zip(answers, expected):
            D.clear_passage_cache()
            D.detect("Nothing.", [ctx[i] for i in seen])  # cache these passages (a first sight)
            D.detect("Nothing.", [ctx[i] for i in seen])  # and see them again: their word sets are kept
            assert all(D._PASSAGES[ctx[i]]._stems is not None for i in seen)
            assert D.detect(a, ctx) == exp
    D.clear_passage_cache()


def test_passage_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(D, "PASSAGE_CACHE_SIZE", 3)
    D.clear_passage_cache()
    for i in range(10):
        D.detect("x y z.", [f"passage number {i}."])
    assert D.passage_cache_info()["size"] == 3
    D.clear_passage_cache()


# -- validation helpers ----------------------------------------------------------------------------------------------


def test_loso_predictions_never_see_the_held_out_source():
    rng = np.random.default_rng(1)
    x = rng.random((90, 2))
    y = (x[:, 0] > 0.5).astype(float)
    src = np.array(["a"] * 30 + ["b"] * 30 + ["c"] * 30)
    p = F.loso_predictions(x, y, src)
    y2 = y.copy()
    y2[src == "c"] = 1 - y2[src == "c"]  # scramble the held-out source's labels
    p2 = F.loso_predictions(x, y2, src)
    np.testing.assert_allclose(p[src == "c"], p2[src == "c"])
    assert not np.allclose(p[src == "a"], p2[src == "a"])


def test_nonnegative_fit_drops_a_feature_that_would_take_a_negative_weight():
    rng = np.random.default_rng(2)
    x = rng.random((400, 2))
    y = (rng.random(400) < 0.2 + 0.6 * x[:, 0] - 0.3 * x[:, 1]).astype(float)
    coef, _ = F.fit_nonnegative(x, y, l2=0.1)
    assert coef[0] > 0 and coef[1] == 0.0


def test_bootstrap_interval_covers_and_is_reproducible():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300).astype(float)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    a = F.bootstrap_interval(y, p, auroc, reps=300, seed=5)
    assert a == F.bootstrap_interval(y, p, auroc, reps=300, seed=5)
    assert a[1] < a[0] < a[2] and a[2] - a[1] < 0.15
    b = F.bootstrap_interval(y, p, brier_score, reps=300, seed=5)
    assert b[0] == pytest.approx(brier_score(y, p))


def test_reliability_table_counts_and_ece_by_hand():
    t = F.reliability_table([0, 1, 1, 1], [0.05, 0.15, 0.95, 0.85], bins=10)
    rows = {r["bin"]: r for r in t.iter_rows(named=True)}
    assert rows["0.0-0.1"]["n"] == 1 and rows["0.1-0.2"]["observed_rate"] == 1.0
    # ECE = (0.05 + 0.85 + 0.05 + 0.15) / 4
    assert rows["ECE"]["mean_predicted"] == pytest.approx(1.1 / 4)


def test_benchmark_rows_reports_baselines_loso_and_intervals():
    rows = []
    for s in ("a", "b"):
        for i in range(15):
            rows.append({"answer": f"The tower opened in 1889 in Paris {s}.", "contexts": ["The tower opened in 1889 "
                         f"in Paris {s}."], "label": 0, "source": s})
            rows.append({"answer": f"The castle opened in {1900 + i} in Rome.", "contexts": ["The tower opened in "
                         f"1889 in Paris {s}."], "label": 1, "source": s})
    table, rel = D.benchmark_rows(rows, reps=50)
    assert table["source"].to_list() == ["a", "b", "overall"]
    rec = table.row(0, named=True)
    base = F.baseline_scores(rows[:30])
    y = np.array([r["label"] for r in rows[:30]])
    assert rec["absent_word_auroc"] == pytest.approx(auroc(y, base["absent_word_share"]))
    assert rec["length_auroc"] == pytest.approx(auroc(y, base["answer_length"]))
    assert rec["loso_auroc"] == 1.0 and rec["auroc_lo"] <= rec["auroc"] <= rec["auroc_hi"]
    assert rel["n"].to_list()[-1] == 60


# -- the contrastive development set ---------------------------------------------------------------------------------


def test_contrastive_set_rebuilds_byte_for_byte(tmp_path):
    shipped = ROOT / "datasets" / "halu_contrastive.jsonl"
    out = tmp_path / "c.jsonl"
    subprocess.run([sys.executable, str(ROOT / "datasets" / "build_contrastive.py"), "--out", str(out)], check=True,
                   capture_output=True, timeout=120)
    assert out.read_bytes() == shipped.read_bytes()
    rows = [json.loads(line) for line in shipped.read_text(encoding="utf-8").splitlines()]
    assert {r["source"] for r in rows} == {"contrastive"}
    assert all((r["label"] == 1) == (r["perturbation"] is not None) for r in rows)
    dev = {c for line in (ROOT / "datasets" / "halu_dev.jsonl").read_text(encoding="utf-8").splitlines()
           for c in json.loads(line)["contexts"]}
    assert all(set(r["contexts"]) <= dev for r in rows)  # built only from contexts already shipped


def test_ngram_novelty_by_runs_equals_one_search_per_gram():
    # novel() settles a run of consecutive known grams with one search of the whole run when it occurs, and falls
    # back to halves and single grams when it does not; the answer must be the same as searching every gram alone,
    # whatever mix of copied and changed words the answer has (random answers over a tiny vocabulary: many partial
    # runs), with grams never spanning two passages.
    import random

    rng = random.Random(5)
    vocab = "a b c d e f g h".split()
    for case in range(400):
        passages = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 30))) for _ in range(rng.randint(1, 3))]
        src = D._prepare_source(passages, None)
        words = [rng.choice(vocab + ["zz"]) for _ in range(rng.randint(2, 25))]
        for n in (2, 3):
            grams = [words[i:i + n] for i in range(len(words) - n + 1)]
            known = [all(w in src.stems for w in g) for g in grams]
            lines = ["".join(f" {t} " for t in toks).replace("  ", " ") for toks in
                     ([t for toks in p.toks for t in toks] for p in src.passages)]
            expected = [not any(f" {' '.join(g)} " in line for line in lines) for g in grams]
            assert src.novel(words, n, known) == expected, (case, passages, words, n)


def test_the_prefix_look_up_equals_a_scan_of_every_stem():
    # has_prefix searches the passages' joined stems. It must answer as a scan of every content stem does: for the
    # prefixes of the stems themselves ("ies" -> "y" ones included), for every prefix an answer asks about, and for
    # prefixes no stem has, with passages new, cached, or both. (Guards any shortcut taken in the look-up: a token-line
    # pre-check that forgot the "y" case failed it.)
    rows = [json.loads(line) for line in open(ROOT / "datasets" / "halu_dev.jsonl", encoding="utf-8")][::9]
    extra = ["The studies of bodies and the companies' policies."]
    D.clear_passage_cache()
    asked = 0
    for k, r in enumerate(rows):
        contexts = r["contexts"] + (extra if k % 3 == 0 else [])
        if k % 2:
            D._prepare_source(contexts[:1], None)  # some passages already cached
        src = D._prepare_source(contexts, None)
        stems = set().union(*src.sentsets) - {D._STOP}
        answer_words = {D._stem(t) for t in D._tokens(D._fold(r["answer"]))}
        prefixes = {s[:5] for s in stems | answer_words if len(s) >= 5} | {"zzzzz", "studi", "study", "compy"}
        for p in sorted(prefixes):
            want = any(s.startswith(p) for s in stems)
            D.clear_passage_cache()  # every passage new
            assert D._prepare_source(contexts, None).has_prefix(p) == want, (k, p)
            assert src.has_prefix(p) == want, (k, p)  # its stems joined (or its passages cached) by now
            asked += 1
    assert asked > 1000


def test_the_acronym_look_up_equals_a_scan_of_the_pattern():
    # writes_acronym settles a passage lacking one of the acronym's capitals without the pattern's scan; every other
    # answer must be the scan's, for the acronyms the shipped answers write and for random ones.
    import random
    import re

    rows = [json.loads(line) for line in open(ROOT / "datasets" / "halu_dev.jsonl", encoding="utf-8")][::7]
    rng = random.Random(3)
    acronyms = {t.replace(".", "").lower() for r in rows for t in re.findall(r"\b[A-Z](?:\.?[A-Z])+\.?", r["answer"])}
    acronyms |= {"".join(rng.choice("ABCDEFGHIKLMNOPRSTUW") for _ in range(rng.randint(2, 4))).lower()
                 for _ in range(60)}
    acronyms = sorted(a for a in acronyms if 2 <= len(a) <= 7 and a.isalpha())
    D.clear_passage_cache()
    found = 0
    for r in rows:
        for c in r["contexts"]:
            p = D._prepare_passage(c)
            for a in acronyms:
                text = p.original
                want = any(m.start() == 0 or not text[m.start() - 1].isalnum()
                           for m in D._acronym_re(a).finditer(text))
                assert p.writes_acronym(a) == want, (a, c[:80])
                found += want
    assert found > 20 and len(acronyms) > 50


def test_a_sentence_that_runs_on_is_cut_into_claims_as_written():
    words = [f"Word{i}" for i in range(D.MAX_CLAIM_WORDS * 2 + 7)]
    text = "  ".join(words) + "."
    claims = D.split_claims("It opened in 1889. " + text)
    assert claims[0] == "It opened in 1889."
    assert [len(c.split()) for c in claims[1:]] == [D.MAX_CLAIM_WORDS, D.MAX_CLAIM_WORDS, 7]
    assert " ".join(" ".join(c.split()) for c in claims[1:]) == " ".join(words) + "."  # every word, in order
    assert claims[1].startswith("Word0  Word1")  # as written: spacing kept inside a claim
    long = " ".join(["word"] * D.MAX_CLAIM_WORDS)
    assert D.split_claims(long + ".") == [long + "."]  # exactly the limit: one claim


def test_scoring_time_grows_linearly_with_a_run_on_answer():
    # A generation that runs on without punctuation was one claim, and a claim's checks compare its words with each
    # other and with its text: 8x the words took 28x the time (40,000 words: 15 s). Cut into claims, it is linear.
    import time

    ctx = [" ".join(f"Word{i} eta{i}." for i in range(500))]

    def cpu(n: int) -> float:
        answer = " ".join(f"Word{i} zeta{i}" for i in range(n))
        t = time.process_time()
        D.detect(answer, ctx)
        return time.process_time() - t

    cpu(500)
    small, big = min(cpu(1250) for _ in range(3)), cpu(20000)
    assert big / small < 32, (small, big)  # 16x the words; quadratic growth gives 60x and more


def test_a_claim_date_against_a_context_of_many_dates_is_linear():
    # A claim's date without its year ("in March 2020") against context dates of the month without theirs: the
    # contexts were searched for the year again for each such date (40,000 dates: 8 s). Now once per claim date.
    import time

    def cpu(n: int) -> float:
        D.clear_passage_cache()
        t = time.process_time()
        d = D.detect("Sales rose in March 2020.", ["Sales rose on March 1 " * n + "in 2019."])
        assert d.claims[0].reason == "date 'March 2020' not in context"  # no 2020 anywhere: the verdict stays
        return time.process_time() - t

    cpu(100)
    small, big = min(cpu(2500) for _ in range(3)), cpu(40000)
    assert big / small < 32, (small, big)  # 16x the dates; searched per date it was 200x and more


@pytest.mark.parametrize("make", [
    lambda n: "It cost " + "9" * n + "x million francs.",  # a run of digits not followed by a multiplier
    lambda n: "It opened" + " " * n + "in 1889.",  # a run of spaces (clause split: '; ' and ' - ')
    lambda n: "It &" + "amp;" * n + " opened.",  # tens of thousands of one-word clauses, each glued to the last
], ids=["digits", "spaces", "short-clauses"])
def test_scoring_time_grows_linearly_with_a_long_run_of_digits_or_spaces(make):
    # A pattern that must see something after a run ("5 million", " ; ") was tried again from every character of the
    # run: 20,000 digits took 7.4 s, 20,000 spaces 2.2 s (16x the time for 4x the run); and a clause of fewer than three
    # words was glued to the claim before it by copying that claim again (160,000 characters of one-word clauses:
    # 4.2 s). One bad generation stalled a whole scoring run. Now a match can only start where the run starts, and a
    # claim's clauses are joined once: linear.
    import time

    ctx = ["The tower opened in 1889 and cost 5 million francs."]

    def cpu(n: int) -> float:
        t = time.process_time()
        D.detect(make(n), ctx)
        return time.process_time() - t

    cpu(1000)
    small, big = min(cpu(2500) for _ in range(3)), cpu(40000)
    assert big / small < 40, (small, big)  # 16x the run; quadratic growth gives 250x


def test_the_guarded_patterns_split_and_find_as_the_unguarded_ones():
    # The guards that keep the clause split and the "3 million" look-up linear must not change what they find: each is
    # compared with the pattern without them on random text of the characters that matter (the naive guard, a
    # lookbehind alone on "; ", fails this: it missed a ";" right after an earlier break's spaces).
    import random

    plain_clause = re.compile(r"\s*;\s*|,\s+(?=but\s|whereas\s|while\s|although\s|though\s)|\s+-{1,2}\s+")
    plain_mult = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s+(hundred|thousand|million|billion)\b")
    rng = random.Random(7)
    alphabet = [" ", " ", ";", "-", "--", ",", "a", "but ", "\t", "\n", "1", "2", ".", "5", " million", "million", "x",
                "\u00a0", "though ", "whereas ", "while ", "although "]
    for _ in range(30000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert D._CLAUSE_RE.split(text) == plain_clause.split(text), text
        # and the cheap test that skips the split finds every text the pattern would split
        assert D._may_split(text) or len(D._CLAUSE_RE.split(text)) == 1, text
        assert [m.group(0, 1, 2) for m in D._MULT_RE.finditer(text)] == \
            [m.group(0, 1, 2) for m in plain_mult.finditer(text)], text


def test_the_joined_ascii_tokeniser_finds_the_tokens_of_the_token_pattern():
    # _ascii_token_lists tokenises a passage's ASCII sentences joined by NUL with a translate, a substitution and splits
    # instead of the token pattern's per-token matches: the same tokens, sentence by sentence, on random texts of the
    # characters that matter (word characters, the marks a token may hold inside or at its end, every other kind of
    # ASCII character, runs of them). A version that forgets "a%b" (two tokens) or a mark before a sentence's first
    # word ("...so") fails it.
    import random

    rng = random.Random(11)
    alphabet = ["a", "b", "Z", "0", "7", "_", ".", ".", ",", ":", "'", "%", "%%", " ", "  ", "\t", "\n", "\x1c", "\x0b",
                "-", "(", ")", '"', ";", "!", "?", "&", "/", "\x7f", "u.s.", "1,000", "don't", "50%x"]
    for _ in range(30000):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 4))]
        assert D._ascii_token_lists("\x00".join(texts)) == [D._TOKEN_ASCII_RE.findall(t) for t in texts], texts
    every = "".join(map(chr, range(1, 128)))
    assert D._ascii_token_lists(every) == [D._TOKEN_ASCII_RE.findall(every)]


def test_the_separators_written_as_spaces_leave_the_tokens_unchanged():
    # A passage with non-ASCII characters is tokenised by the joined ASCII tokeniser when its dashes, quotation marks
    # and bullets (_SEPARATORS) written as spaces leave it ASCII: no token may hold one, so the token pattern finds the
    # same tokens either way, on random folded texts of word characters, marks, separators and other non-ASCII
    # characters. A separator that a token can hold (the typographic apostrophe, a letter) fails it.
    import random

    rng = random.Random(12)
    alphabet = ["a", "Z", "0", "_", ".", ",", ":", "'", "%", " ", "-", "(", "\u00e9", "\u0436", "\u2019", "\u00b2",
                "don't", "1,000", *D._SEPARATORS, *D._SEPARATORS]
    for _ in range(30000):
        folded = D._fold("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))))
        assert D._TOKEN_RE.findall(D._separate(folded)) == D._TOKEN_RE.findall(folded), folded
    assert not any(c.isalnum() or c == "_" or D._fold(c) != c for c in D._SEPARATORS)
    assert D._separate("1914\u20131918 \u201cwar\u201d").isascii()


def test_benchmark_of_an_empty_file_is_an_error_and_one_label_is_said(tmp_path):
    from workbench.errors import ParameterError

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ParameterError, match=r"empty.jsonl: no labelled rows"):
        D.benchmark_jsonl(empty, reps=10)
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "hallucination", "benchmark", str(empty)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "no labelled rows" in r.stderr
    # Rows of one label: no AUROC, said so; the Brier score is each row's, so it and its interval are there.
    rows = [dict(answer="It opened in 1889.", contexts=["It opened in 1889 in Paris."], label=0)] * 3
    table, _ = D.benchmark_rows(rows, reps=50)
    overall = table.filter(table["source"] == "overall").row(0, named=True)
    p = D.detect("It opened in 1889.", ["It opened in 1889 in Paris."]).score
    assert overall["brier"] == pytest.approx(p ** 2) and overall["brier_lo"] == pytest.approx(p ** 2)
    assert overall["auroc"] != overall["auroc"]  # NaN
    text = D.format_benchmark(table)
    assert "AUROC n/a (one label only)" in text and "(no source)" in text


def test_scoring_a_missing_file_or_a_device_is_a_one_line_error():
    # A missing input was a FileNotFoundError traceback (exit 1); /dev/zero was read as one endless line.
    from workbench.errors import MissingFileError, ParameterError

    with pytest.raises(MissingFileError, match=r"nope\.jsonl: no such file"):
        D.read_labelled(ROOT / "nope.jsonl")
    with pytest.raises(ParameterError, match="not a file"):
        D.read_labelled(ROOT)
    exe = [sys.executable, "-m", "workbench.cli", "hallucination"]
    for args, said in ((["score", "nope.jsonl", "--out", "o.jsonl"], "nope.jsonl: no such file"),
                       (["score", "/dev/zero", "--out", "o.jsonl"], "/dev/zero: not a file"),
                       (["benchmark", "/dev/zero"], "/dev/zero: not a file")):
        r = subprocess.run([*exe, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_the_patterns_that_start_with_their_character_set_find_what_the_boundary_forms_found():
    # _CAP_RE, _UNIT_RE and _SUFFIX_MULT_RE started with \b or a look-behind, which the regex engine tries at every
    # character; they now start with their character set and check the boundary by a look-behind over that first
    # character. Same matches (spans and groups) as the patterns they replaced, on random text of the characters that
    # matter; and the framing phrase, matched at the claim's start, is cut as _FRAME_RE.sub(count=1) cut it.
    import random

    before = {
        D._CAP_RE: re.compile(r"\b[A-Z]\w*(?:['’]\w+)*"),
        D._UNIT_RE: re.compile(r"(?<![0-9.,])([0-9]+(?:[.,][0-9]+)?) ?(percent|per cent|[a-z]{1,4})\b"),
        D._SUFFIX_MULT_RE: re.compile(r"(?<![0-9.,])([0-9]+(?:\.[0-9]+)?) ?(k|mn|m|bn|b)(?![\w.,][0-9]|\w)"),
    }
    rng = random.Random(11)
    alphabet = ["1", "2", "0", " ", ".", ",", "k", "m", "b", "n", "gb", "percent", "per cent", "A", "Zu", "É", "é",
                "_", "'", "’", "x", "\n", "$"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for now, then in before.items():
            assert [(m.span(), m.groups()) for m in now.finditer(text)] == \
                [(m.span(), m.groups()) for m in then.finditer(text)], (now.pattern, text)
    frames = ["", "Based on the provided context, ", "according to the documents: ", "In the text,", "From the passage:"]
    for _ in range(2000):
        claim = rng.choice(frames) + rng.choice(frames) + rng.choice(["It opened in 1889.", "in the text", ""])
        assert D._unframe(claim) == D._FRAME_RE.sub("", claim, count=1), claim
