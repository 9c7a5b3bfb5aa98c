"""Offline default hallucination detector: claim-level support in the retrieved contexts.

The detector needs no LLM, no network and no GPU, and is deterministic. It

1. splits an answer into claims (sentences, then clauses at ``;``, ``, but`` and dashes);
2. scores each claim's support in the contexts, matching words lower-cased with accents, HTML character references
   and invisible characters folded (:func:`_fold`): the share of its content words (lightly stemmed, stopwords and
   summary boilerplate removed; "I"/"you" kept, since personal claims cannot be grounded) found in the contexts, with
   half credit for a shared word family (same 5-letter prefix) and for words echoed from the question; word bigrams
   and trigrams absent from the contexts; plus hard checks that every number (by value: "1,200,000" = "1.2 million"
   = "$1.2M"), every date (by value: "March 5, 2020" = "2020-03-05"; a weekday must be that date's), every
   capitalised name and the polarity (negation, antonyms) of the claim agree with the contexts and its best
   supporting sentence;
3. maps interpretable answer-level features (``FEATURES``) through a small non-negative logistic regression into a
   calibrated probability that the answer contains an unsupported claim.

Naming follows the rest of the workbench: the detection ``score`` is a probability in [0, 1] where
**higher means more likely hallucinated**; a claim's ``support`` is in [0, 1] where **higher means
better supported**.

The weights ship in ``_detector_weights.json`` next to this module, fitted by
``benchmarks/bench_detector.py --fit`` on ``halu_dev.jsonl`` (HaluEval-QA, MIT; BEGIN, CC BY 4.0 /
CDLA-Sharing) and ``halu_contrastive.jsonl``: non-negative coefficients (each feature means "less support"), the
features chosen on leave-one-source-out AUROC only, sources weighted equally, then Platt-scaled for calibration (the
leave-one-source-out figures are in the weights file and the README). :data:`DETECTOR_VERSION` must change
whenever the algorithm or the weights change, so that stored scores get recomputed; loading refuses
a weights file fitted for another version.

Speed: contexts are tokenised once per answer; set algebra on a warm stem cache does most of the
work in C (about 1.2 ms for a 100-word answer against 1,000 words of context on the reference
machine; see ``benchmarks/bench_detector.py``).
"""

from __future__ import annotations

from workbench.errors import MissingFileError, ParameterError, ParameterTypeError, check_number, first_line

from workbench._gc import paused
import datetime
import html
import json
import math
import re
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from collections import Counter, OrderedDict
from itertools import chain, compress, filterfalse, islice, repeat
from operator import and_, not_
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from workbench.schema import DETECTOR_NAME as _DETECTOR_NAME, DETECTOR_VERSION as _DETECTOR_VERSION
from workbench.stats import auroc, brier_score  # noqa: F401  (public here too: the detector's benchmark reports them)

__all__ = [
    "DETECTOR_NAME",
    "DETECTOR_VERSION",
    "THRESHOLD",
    "Claim",
    "Detection",
    "detect",
    "detect_batch",
    "detect_each",
    "DetectorRowWarning",
    "score_jsonl",
    "read_labelled",
    "split_sentences",
    "split_claims",
    "benchmark_jsonl",
    "benchmark_rows",
    "format_benchmark",
    "feature_matrix",
    "passage_cache_info",
    "clear_passage_cache",
    "auroc",
    "brier_score",
]

# The name and version live with the evals contract (schema.py) so the metrics can read them without importing the
# evaluator. Bump the version there on any change of the algorithm or of ``_detector_weights.json``.
DETECTOR_NAME: str = _DETECTOR_NAME
DETECTOR_VERSION: str = _DETECTOR_VERSION
#: Default decision threshold on the probability (the weights are fitted for calibration, so 0.5 is the
#: Bayes decision at balanced priors).
THRESHOLD: float = 0.5
#: A claim whose support falls below this, or that fails a hard check, carries a reason.
CLAIM_SUPPORT_MIN: float = 0.5

_WEIGHTS_PATH = Path(__file__).with_name("_detector_weights.json")

# --------------------------------------------------------------------------------------------------
# Text primitives
# --------------------------------------------------------------------------------------------------

# [0-9] rather than \d: a character set lets the regex engine skip ahead fast (and the answer's
# numbers are ASCII digits in practice).
_NUM_RE = re.compile(r"[0-9]+(?:[.,:][0-9]+)*%?")
# A pattern that must see something after a run of digits or spaces starts only where the run starts (a look-behind,
# over the run's first digit: see _CAP_RE): tried again from every character of a long run, it took time quadratic in
# the run (20,000 digits: 7 s).
_MULT_RE = re.compile(r"([0-9](?<![0-9][0-9])[0-9]*(?:\.[0-9]+)?)\s+(hundred|thousand|million|billion)\b")
_DIGIT_RE = re.compile(r"[0-9]")
_DIGIT_RUN_RE = re.compile(r"\d*")
# A pattern that starts with a character set lets the regex engine skip ahead to the characters of the set; one that
# starts with a word boundary or a look-behind is tried at every character (3x slower on a claim). So a capital "not
# after a word character" below is the capital then a look-behind over it: the same matches as r"\b[A-Z]...", and a
# number's "(?<![0-9])[0-9]+" is written "[0-9](?<![0-9][0-9])[0-9]*".
_CAP_RE = re.compile(r"[A-Z](?<!\w[A-Z])\w*(?:['’]\w+)*")
_THOUSANDS_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Words, with internal apostrophes ("don't") and number punctuation ("1,000", "3.5") kept inside.
_TOKEN_RE = re.compile(r"\w+(?:[.,:'’]\w+)*%?")
# The same tokens, faster (tokenising is the largest single cost of the detector): for ASCII text,
# where \w is exactly [0-9A-Za-z_], a character-set version runs ~1.3x faster. Possessive
# quantifiers do not change the matches, since every tail of the pattern can match the empty string,
# the greedy first try always succeeds and nothing is ever backtracked into (a possessive final "%?"
# saves pushing a backtrack point per token: ~5% faster).
_TOKEN_ASCII_RE = re.compile(r"[0-9A-Z_a-z]++(?:[.,:'][0-9A-Z_a-z]++)*+%?+")


# Characters that only break a word: soft hyphen, zero-width space / non-joiner / joiner, word joiner, BOM.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# ... and the typographic apostrophes, written as the ASCII one: "wasn’t" is "wasn't", "Paris’s" is "Paris's".
_INVISIBLE.update(dict.fromkeys(map(ord, "\u2019\u02bc"), "'"))
# The same mapping as (character, replacement) pairs: ``str.translate`` with a table walks a non-ASCII text character by
# character through the table (9 us for a sentence of 170 characters, two thirds of folding it), while a text holding
# none of these characters (most) is settled by eight substring tests, and one that does by a replace per character
# held (each replacement is ASCII or empty, so the order of the replaces does not matter).
_INVISIBLE_PAIRS = tuple((chr(k), v or "") for k, v in _INVISIBLE.items())
# A negation glued to its verb ("wasn't", "don't"): at the end of a word, not inside one ("champion'Twin").
_NT_RE = re.compile(r"n't\b")
_LATIN_MARKS_RE = re.compile("[\u0300-\u036f]+")  # the combining accents of Latin, Greek and Cyrillic letters


def _replace_held(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """``text`` with each character of ``pairs`` that it holds replaced by its text: a substring test per pair, and a
    replace only for a character held (what ``str.translate`` does, without walking the text character by character
    through a table). The replacements must hold none of the characters, so that their order does not matter.

    >>> _replace_held("a\u2013b\u2019s", (("\u2013", " "), ("\u2019", "'")))
    "a b's"
    """
    for ch, repl in pairs:
        if ch in text:
            text = text.replace(ch, repl)
    return text


def _fold(text: str) -> str:
    """The form in which the detector matches words: lower-cased, with HTML character references decoded (contexts
    scraped from web pages hold ``&amp;`` and ``cor&shy;ner&shy;back``), soft hyphens and zero-width characters
    removed, typographic apostrophes written as ``'``, accents folded and compatibility forms unified, so that "Pokémon" and "pokemon", "Zürich" typed as one
    character or as "u" and a combining mark, "２０２０" and "2020", "ﬁnal" and "final" are the same word.

    Answers and contexts go through the same folding; claims and evidence are shown as written. ASCII text without
    ``&`` is only lower-cased.

    >>> _fold("Cor&shy;ner&shy;back Pokémon ２０２０")
    'cornerback pokemon 2020'
    """
    if "&" in text:
        text = html.unescape(text)
    low = text.lower()
    if low.isascii():
        return low
    low = _replace_held(low, _INVISIBLE_PAIRS)  # low.translate(_INVISIBLE), faster
    low = _LATIN_MARKS_RE.sub("", unicodedata.normalize("NFKD", low))
    return unicodedata.normalize("NFKC", low)  # marks of other scripts composed again (Japanese voicing, Hangul)


def _tokens(low: str) -> list[str]:
    """``_TOKEN_RE.findall(low)``, by the ASCII pattern when the text is ASCII (``isascii`` is O(1))."""
    return _TOKEN_ASCII_RE.findall(low) if low.isascii() else _TOKEN_RE.findall(low)


# The tokens of many ASCII texts at once, without a regex match per token (:func:`_ascii_token_lists`): every character
# that no token holds becomes a space (one C-level translate), then the few punctuation marks that end up outside a
# token as well (a [.,:'] not between two word characters, a "%" not after one) become spaces too, and a "%" that ends
# a token with a word character after it gets a space after it. What is left is the tokens between spaces.
_NOT_IN_TOKEN = str.maketrans({c: " " for c in map(chr, range(128)) if not re.match(r"[0-9A-Za-z_.,:'%\x00]", c)})
_LOOSE_MARK_RE = re.compile(r"[%.,:'](?:(?<![0-9A-Z_a-z].)|(?<!%)(?![0-9A-Z_a-z]))")
_GLUED_PERCENT_RE = re.compile(r"%(?=[0-9A-Z_a-z])")


def _ascii_token_lists(joined: str) -> list[list[str]]:
    """``[_TOKEN_ASCII_RE.findall(t) for t in joined.split("\\x00")]`` for ASCII text: the texts joined by NUL (which no
    text may hold) are tokenised in three C-level passes over the whole and one split per text, about twice as fast as
    the pattern's per-token matches (tests/test_detector_validation checks it on random texts).

    >>> _ascii_token_lists("it's 1,000.5% of u.s. gdp,\\x00so (50%)x.")
    [["it's", '1,000.5%', 'of', 'u.s', 'gdp'], ['so', '50%', 'x']]
    """
    text = _LOOSE_MARK_RE.sub(" ", joined.translate(_NOT_IN_TOKEN))
    if "%" in text:
        text = _GLUED_PERCENT_RE.sub("% ", text)
    return list(map(str.split, text.split("\x00")))


# Punctuation that only separates tokens (no token holds it; tests/test_detector_validation checks that): dashes,
# quotation marks, a bullet, a middle dot.
_SEPARATORS = "\u2013\u2014\u201c\u201d\u2018\u00ab\u00bb\u2022\u00b7"
_SEPARATOR_PAIRS = tuple((ch, " ") for ch in _SEPARATORS)


def _separate(text: str) -> str:
    """``text`` with the separators of :data:`_SEPARATORS` written as spaces: the same tokens, and often an ASCII text
    (one that C-level passes tokenise: :func:`_ascii_token_lists`).

    >>> _separate("1914\u20131918 \u201cthe war\u201d")
    '1914 1918  the war '
    """
    return _replace_held(text, _SEPARATOR_PAIRS)


# Sentence ends: terminal punctuation followed by space, or glued to a capital (HotpotQA passages
# are often concatenated without a space: "...Officers.The Government").
_ABBREVIATIONS = (
    "Mr Mrs Ms Dr Prof Sr Jr St Mt Ft No vs etc Inc Ltd Co Corp Gen Col Lt Sgt Capt Gov Sen Rep "
    "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec"
).split()
# Sentence ends: terminal punctuation followed by space, or glued to a capital (HotpotQA passages
# are often concatenated without a space: "...Officers.The Government"). Fixed-width look-behinds
# keep abbreviations and initials ("Dr.", "U.S.", "H. Bruce") inside their sentence. The pattern
# starts with a character class so the regex engine only stops at candidate ends (2.5x faster), and
# groups the abbreviations by length, one look-behind per length rather than one per abbreviation
# (1.5x faster; the same matches). The look-ahead for the following space comes before the
# look-behinds, so a "." inside a number or an initialism ("3.5", "U.S") skips them (the closing
# quotes and brackets are then taken possessively: the look-ahead has checked a space follows them).
_ABBREVIATIONS_BY_LEN: dict[int, list[str]] = {}
for _a in _ABBREVIATIONS:
    _ABBREVIATIONS_BY_LEN.setdefault(len(_a), []).append(_a)
_SENT_END_RE = re.compile(
    r"[.!?\n](?:(?<=\n)|(?=[\"'”’)\]]*\s)(?<!\b[A-Z]\.)"
    + "".join(rf"(?<!\b(?:{'|'.join(v)})\.)" for _, v in sorted(_ABBREVIATIONS_BY_LEN.items()))
    + r"[\"'”’)\]]*+|(?<=[a-z0-9)][.!?])(?=[A-Z]))"
)
# Clause breaks: "; ", ", but ", " - ". Spaces before ";" or a dash are matched from the start of their run only (see
# _MULT_RE); a ";" right after an earlier break's spaces by the first branch. The same splits as without the guards.
_CLAUSE_RE = re.compile(r";\s*|(?<!\s)\s+;\s*|,\s+(?=but\s|whereas\s|while\s|although\s|though\s)|(?<!\s)\s+-{1,2}\s+")


def _may_split(sent: str) -> bool:
    """Whether :data:`_CLAUSE_RE` can split ``sent``: every break it finds holds a ";", a "-", or a "," before one of
    its words. Most sentences have none and are one clause without the pattern's scan (tests/test_detector_validation
    checks this against the pattern on random text)."""
    return ";" in sent or "-" in sent or "," in sent and ("but" in sent or "whi" in sent or "whereas" in sent
                                                           or "though" in sent)
_EVIDENCE_CLAUSE_RE = re.compile(r"[;:()\[\]]|,\s|\s-{1,2}\s|\s(?:but|while|whereas|although|though|and|which|who)\s")

_STOPWORDS = frozenset(
    """
    a an the and or but if then else so of to in on at by for with from into onto over under about
    as than that this these those there here is are was were be been being am do does did doing done
    have has had having he him his she her hers it its they them their theirs what which who whom
    whose when where why how all any both each few more most other some such only own same too very
    can will just should would could may might must shall also yes oh well ok okay yeah really like
    just get got know think thing things lot lots one ones much many up down out off again further
    once s t d ll m re ve o y because while whereas although though until during before after above
    below between through against among per via let lets go going gonna said say says however
    additionally furthermore moreover overall including include includes included various several
    according article text passage summary document discuss discusses discussed mention mentions
    mentioned highlight highlights highlighted describe describes described provide provides
    emphasize emphasizes emphasized emphasise emphasises emphasised note notes noted explain explains
    explained outline outlines outlined suggest suggests suggested
    """.split()
)
# First- and second-person words are deliberately *not* stopwords: a personal claim ("I was born in
# 1777", "you would love it") is content that the contexts must support, and usually cannot.
# Words such as "additionally" or "the article highlights" are discourse, not claims, in LLM summaries.
_NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor without cannot nowhere n't cant dont doesnt didnt isnt "
    "wasnt arent werent wont wouldnt couldnt shouldnt hasnt havent hadnt".split()
)
# "not only X but Y", "no doubt" assert, they do not deny: drop them before looking for a negation. So does a "no" that
# opens a reply and answers the question ("No, but it has 92% on Rotten Tomatoes", "Nope - it opened in 1889"): it is
# followed by a mark or "but"; "No people were hurt", "No, no people were hurt" keep their negation.
_NOT_NEGATION_RE = re.compile(
    r"\b(?:not only|not just|no doubt|nothing but|not least)\b"
    r"|^\W*(?:no|nope|nah)\b(?:\s*[,.!;:\u2013\u2014-]+|\s+(?=but\b))", re.IGNORECASE)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "thousand": 1000, "million": 1000000, "billion": 1000000000, "first": 1, "second": 2, "third": 3,
    "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
    "once": 1, "twice": 2, "single": 1, "double": 2, "triple": 3, "dozen": 12, "half": 0.5,
}  # fmt: skip
# Number words that also have an ordinary sense are not treated as numeric claims in the answer
# ("one of the best", "second-hand", "half the time"), but still support a digit in the answer.
_WEAK_NUMBER_WORDS = frozenset({"one", "first", "second", "once", "single", "double", "half", "zero"})
_STRONG_NUMBER_WORDS = frozenset(_NUMBER_WORDS).difference(_WEAK_NUMBER_WORDS)
# Antonym pairs (general English, both directions): a claim saying "rose" where its evidence says "fell".
_ANTONYM_PAIRS = (
    "increase decrease,increased decreased,rise fall,rose fell,risen fallen,higher lower,more less,most least,"
    "larger smaller,largest smallest,bigger smaller,biggest smallest,before after,earlier later,won lost,win lose,"
    "wins loses,victory defeat,first last,oldest youngest,older younger,early late,north south,east west,"
    "above below,inside outside,import export,imports exports,buy sell,bought sold,accepted rejected,accept reject,"
    "approved rejected,allowed banned,allow ban,open closed,opened closed,true false,male female,men women,"
    "maximum minimum,gain loss,gained lost,success failure,succeeded failed,positive negative,always never,"
    "strong weak,stronger weaker,cheaper dearer,increase cut,up down,left right,top bottom,start end,"
    "started ended,began ended,born died,birth death,entered left,arrived departed,public private,legal illegal,"
    "possible impossible,able unable,agree disagree,agreed disagreed,like dislike,liked disliked,love hate,"
    "loved hated,support oppose,supported opposed,include exclude,included excluded,majority minority,"
    "wealthy poor,rich poor,ancient modern,full empty,heavy light,fast slow,faster slower,long short,"
    "longer shorter,longest shortest,high low,highest lowest,good bad,better worse,best worst,hot cold,"
    "warm cool,wet dry,easy difficult,easier harder,same different,similar different,expand shrink,"
    "expanded shrank,add remove,added removed,internal external,domestic foreign,urban rural,day night,"
    "morning evening,summer winter,dead alive,win loss,won defeated,married divorced"
)
_ANTONYMS: dict[str, frozenset[str]] = {}
for _pair in _ANTONYM_PAIRS.split(","):
    _x, _y = _pair.split()
    _ANTONYMS[_x] = _ANTONYMS.get(_x, frozenset()) | {_y}
    _ANTONYMS[_y] = _ANTONYMS.get(_y, frozenset()) | {_x}
_ANTONYM_WORDS = frozenset(_ANTONYMS)
_MULTIPLIERS = {"hundred": 100, "thousand": 1000, "million": 1000000, "billion": 1000000000}
# Business shorthand: "$1.2M", "12k", "3.4bn" (folded text, so lower-case). "5 m" may be metres: such a number is
# accepted as written too.
_SUFFIXES = {"k": 10**3, "m": 10**6, "mn": 10**6, "b": 10**9, "bn": 10**9}
# A number and a short unit, glued or apart ("5gb", "5 gb", "200ms"), or "percent": matched against the contexts in
# either writing ("20 percent" against "20%").
_UNIT_RE = re.compile(r"([0-9](?<![0-9.,][0-9])[0-9]*(?:[.,][0-9]+)?) ?(percent|per cent|[a-z]{1,4})\b")
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})
_CURRENCY_SIGNS = frozenset("$€£¥₹₩₽")
_SUFFIX_MULT_RE = re.compile(r"([0-9](?<![0-9.,][0-9])[0-9]*(?:\.[0-9]+)?) ?(k|mn|m|bn|b)(?![\w.,][0-9]|\w)")

_STEM_CACHE: dict[str, str] = {}
_STEM_CACHE_MAX = 200_000
# Tokens longer than this are stemmed each time, not remembered: a context's base64 image or hash would otherwise keep
# its whole text in the caches (100 kB tokens grew the process by 100 MB per 1,000 answers, for good).
_CACHED_TOKEN_MAX = 64
# Token -> stem for content words and -> _STOP for stopwords: a sentence's content stems in a single
# C-level map over its tokens (no stopword set difference first). Filled as tokens are met.
_STOP = "\x00"  # never a stem: stems come from tokens, which are made of word characters
_CONTENT_STEM: dict[str, str] = dict.fromkeys(_STOPWORDS, _STOP)


def _stem(word: str) -> str:
    """A light, deterministic suffix stripper (lower-case input); cached."""
    s = _STEM_CACHE.get(word)
    if s is not None:
        return s
    w = word
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    n = len(w)
    if n > 4:
        if w.endswith("ies"):
            w = w[:-3] + "y"
        elif w.endswith("sses"):
            w = w[:-2]
        elif w.endswith("ness"):
            w = w[:-4]
        elif w.endswith("ingly"):
            w = w[:-5]
        elif w.endswith("edly") or w.endswith("ment"):
            w = w[:-4]
        elif w.endswith("ing") and n > 5:
            w = w[:-3]
        elif w.endswith("ed") and n > 4:
            w = w[:-2]
        elif w.endswith("ly") and n > 5:
            w = w[:-2]
        elif w.endswith("es") and w[-3] in "sxz" or w.endswith(("ches", "shes")):
            w = w[:-2]
        elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":  # "stopped" -> "stopp" -> "stop"
            w = w[:-1]
        if len(w) > 4 and w.endswith("e"):  # "dance"/"danced"/"dancing" meet at "danc"
            w = w[:-1]
    elif n > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(_STEM_CACHE) < _STEM_CACHE_MAX and len(word) <= _CACHED_TOKEN_MAX:
        _STEM_CACHE[word] = w
    return w


def _number_value(tok: str) -> float | None:
    """Numeric value of a digit token ("1,000" -> 1000.0, "45%" -> 45.0); None when it is not one."""
    if tok.isdigit():  # fast path: most numbers are plain integers (years, counts)
        return float(tok)
    t = tok.rstrip("%")
    if not t or not t[0].isdigit():
        return None
    if ":" in t:  # times "10:30" compare as text
        return None
    t = t.replace(",", "") if _THOUSANDS_RE.fullmatch(t) else t.replace(",", ".")
    try:
        return float(t)
    except ValueError:
        return None


def _split_sentences(text: str) -> list[str]:
    ends = [m.end() for m in _SENT_END_RE.finditer(text)]
    if not ends:
        piece = text.strip()
        return [piece] if piece else []
    starts = [0, *ends]
    ends.append(len(text))
    return [p for p in (text[a:b].strip() for a, b in zip(starts, ends)) if p]


#: Words of the longest claim. A longer sentence (a generation that ran on without punctuation, say) is cut into
#: claims of this many words: the checks of a claim compare its words with each other and with its own text, so their
#: cost grows with the square of its length (a 40,000-word sentence took 15 s). Ordinary claims are far shorter
#: (the longest in the development sources has 71 words).
MAX_CLAIM_WORDS = 150
_WORD_SPAN_RE = re.compile(r"\S+")


def _cut_long(claim: str, n: int) -> list[str]:
    """``claim`` as written, cut after every ``n``-th word when it has more."""
    if len(claim) < 2 * n:  # a word and its separator take two characters: no more than n words (the usual case)
        return [claim]
    ends = [m.end() for m in _WORD_SPAN_RE.finditer(claim)]
    if len(ends) <= n:
        return [claim]
    bounds = [0, *ends[n - 1::n]]
    if bounds[-1] != len(claim):
        bounds.append(len(claim))
    return [p for p in (claim[a:b].strip() for a, b in zip(bounds, bounds[1:])) if p]


# Chat models answer in Markdown: its marks are layout, not claims. A heading is a title (dropped); list, quote and
# emphasis marks, inline code ticks and a link's address are removed, their text kept.
_MD_DROP_RE = re.compile(r"(?m)^[ \t]{0,3}(?:#{1,6}[ \t][^\n]*|(?:[-*_][ \t]*){3,}|(?:```|~~~)[^\n]*)$")
# A reference's definition, "[1]: https://..." or "[^1]: the source": where a citation points, not a claim.
_REF_DEF_RE = re.compile(r"(?m)^[ \t]{0,3}\[\^?[^\]\n]{1,40}\]:[ \t]+\S[^\n]*$")
# A table: its header row (the row above the |---|---| line) names columns, it claims nothing; the separator is layout;
# a row's cells are read as "cell, cell". Read line by line (:func:`_untable`): patterns spanning a line's optional
# spaces on both sides of a pipe took time quadratic in a run of spaces (30,000 spaces: 22 s).
_TABLE_RULE_CELL_RE = re.compile(r":?-{3,}:?")
# Citation marks of a retrieval answer: "[1]", "[^2]", OpenAI's "【4:0†source】".
_CITATION_RE = re.compile(r"[ \t]?(?:\[\^?\d{1,3}\](?!\()|\u3010[^\u3011\n]{0,80}\u3011)")
_MD_LINE_START_RE = re.compile(r"(?m)^[ \t]*(?:>[ \t]?)*(?:(?:[-*+\u2022\u2023\u25e6\u25aa]|\d{1,3}[.)]|[a-z]\))[ \t]+)?")
# (each with the text that must occur for it to match: most answers skip every pattern by a substring test)
_MD_INLINE = (
    ("](", re.compile(r"!?\[([^\[\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)"), r"\1"),  # [text](url)
    # (the marked text holds no mark of its kind: each search ends at the next one, so a line of many unmatched marks
    # is read in linear time; "[^\n]+?" up to the end of the line took 5.7 s on "**a " x 10,000)
    ("**", re.compile(r"(\*\*)(?=\S)([^*\n]+?)(?<=\S)\1"), r"\2"),  # **strong**
    ("__", re.compile(r"(__)(?=\S)([^_\n]+?)(?<=\S)\1"), r"\2"),  # __strong__
    ("*", re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *emphasis*
    ("_", re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),  # _emphasis_ (not snake_case)
    ("`", re.compile(r"`([^`\n]+)`"), r"\1"),  # `code`
)
# What a first line starts with when it is Markdown block structure (a list, a heading, a quote, a rule, a fence).
_MD_HEADS = frozenset("#>-*+_~`0123456789\u2022\u2023\u25e6\u25aa")
# A line that only introduces what follows ("Here are the main points:"): no number, no name after its first word.
_LEAD_IN_RE = re.compile(r"(?m)^[^\n0-9]*:[ \t]*$")
# What frames an answer rather than states a fact: "Based on the provided context, ...", "According to the documents:".
_FRAME_RE = re.compile(
    r"^(?:based on|according to|from|per|as (?:stated|mentioned|described|shown) in|in)\s+the\s+"
    r"(?:provided\s+|given\s+|above\s+|retrieved\s+|available\s+)?"
    r"(?:context|information|documents?|passages?|sources?|text|articles?|excerpts?|snippets?)\s*[,:]\s*",
    re.IGNORECASE)
# Words of a chat model's courtesies ("Sure!", "I hope this helps.", "Let me know if you need anything else."): a claim
# of these and stopwords only, with no number or name, asserts nothing the contexts could support.
_COURTESY = frozenset(
    """
    sure certainly absolutely course great good excellent question questions hope helps help helpful glad happy
    let know need needs anything else feel free ask further assistance assist thanks thank welcome me you your i we us
    hi hello hey please anytime clarification more any other something information details want would love answer
    explain explanation below follows following note keep mind hesitate reach out here summary overview
    """.split()
)


def _unmark(answer: str) -> str:
    """The answer without its Markdown marks, table headers and citation marks, and without lines that only introduce
    a list (see :data:`_MD_DROP_RE`).

    >>> _unmark("## Landmarks\\nHere are two:\\n1. **The tower** is in [Paris](https://x.fr).\\n- It opened in 1889.")
    '\\n\\nThe tower is in Paris.\\nIt opened in 1889.'
    """
    text = answer
    if "|" in text:  # a table
        text = _untable(text)
    if "]:" in text:
        text = _REF_DEF_RE.sub("", text)
    if "[" in text or "\u3010" in text:
        text = _CITATION_RE.sub("", text)
    if "\n" in text or text.lstrip()[:1] in _MD_HEADS:  # block structure starts lines
        text = _MD_LINE_START_RE.sub("", _MD_DROP_RE.sub("", text))
    for mark, pattern, repl in _MD_INLINE:
        if mark in text:
            text = pattern.sub(repl, text)
    if ":\n" in text or text.rstrip().endswith(":"):
        text = _LEAD_IN_RE.sub(_lead_in, text)
    return text


def _table_rule(line: str) -> bool:
    """Whether a line is a table's separator row: two or more cells of ``---`` (``:---:`` aligned) between pipes."""
    s = line.strip(" \t")
    if "|" not in s or "-" not in s:
        return False
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") else s
    cells = s.split("|")
    return len(cells) >= 2 and all(_TABLE_RULE_CELL_RE.fullmatch(c.strip(" \t")) for c in cells)


def _untable(text: str) -> str:
    """Markdown tables as text: a header row (a line with a pipe above a separator row) dropped with its line, a
    separator row emptied, and a row (a line starting with a pipe) read as its cells joined by ", ". In time linear in
    the text.

    >>> _untable("| City | Year |\\n|---|:---:|\\n| Paris | 1889 |\\nDone.")
    '\\nParis, 1889\\nDone.'
    """
    lines = text.split("\n")
    rules = list(map(_table_rule, lines))
    out = []
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and rules[i + 1] and "|" in line:
            continue  # a header row: its line goes
        if rules[i]:
            out.append("")
            continue
        body = line.lstrip(" \t")
        if body.startswith("|"):
            line = ", ".join(c.strip(" \t") for c in body[1:].strip(" \t|").split("|"))
        out.append(line)
    return "\n".join(out)


def _lead_in(m: re.Match) -> str:
    """A line ending with a colon, dropped when it names nothing (no capitalised word after its first)."""
    line = m.group(0)
    return "" if not _CAP_RE.findall(line.strip())[1:] else line


def _courtesy(claim: str, folded: dict | None = None) -> bool:
    """Whether a claim is only a courtesy (:data:`_COURTESY`): no number, no name, no other content word.

    >>> _courtesy("Sure!"), _courtesy("Let me know if you need anything else."), _courtesy("You need a visa.")
    (True, True, False)
    """
    if len(claim) > 120 or _DIGIT_RE.search(claim):  # a courtesy is short and has no number
        return False
    tl = _fold(claim)
    toks = _tokens(tl)
    if folded is not None:  # kept for _score_claim, which folds and tokenises each claim the same way
        folded[claim] = (tl, toks)
    if not toks or any(t not in _COURTESY and t not in _STOPWORDS for t in toks):
        return False
    return all(c == "I" for c in _CAP_RE.findall(claim.strip())[1:])


# An HTML character reference, named or numeric ("&shy;", "&#8217;", "&#x2019;").
_CHAR_REF_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_HELD = "\ue000"  # a private-use character: stands for a reference's ";" while clauses are split


def _hold_ref(m: re.Match) -> str:
    return m.group(0)[:-1] + _HELD


def _unframe(claim: str) -> str:
    """``claim`` without a framing phrase at its start (``_FRAME_RE.sub("", claim, count=1)``: the pattern is anchored
    at the start, so a match there is the only one; matched there, not searched for at every character)."""
    m = _FRAME_RE.match(claim)
    return claim[m.end():] if m else claim


def _split_claims(answer: str, folded: dict | None = None) -> list[str]:
    """Sentences, then clauses; a clause of fewer than three words is glued back to its neighbour; a claim of more than
    :data:`MAX_CLAIM_WORDS` words is cut into claims of that many. Markdown marks, headings and lines that only
    introduce a list are left out first (:func:`_unmark`); a framing phrase ("Based on the provided context,") is cut
    from a claim, and a claim that is only a courtesy ("Sure!", "I hope this helps.") is not a claim, unless the
    answer has nothing else. ``folded``: filled with claim -> (folded text, tokens) for the claims :func:`_courtesy`
    folded (reused by :func:`_score_claim`)."""
    claims: list[str] = []
    for sent in _split_sentences(_unmark(answer)):
        # the ";" ending a character reference ("re&shy;al&shy;ly", "it&rsquo;s": text scraped from web pages) breaks
        # no clause: held back while the clauses are split
        held = "&" in sent and ";" in sent and _HELD not in sent
        if held:
            sent = _CHAR_REF_RE.sub(_hold_ref, sent)
        if _may_split(sent):
            pieces = [c for c in _CLAUSE_RE.split(sent) if c and c.strip()]
        else:
            pieces = [sent] if sent.strip() else []
        if held:
            pieces = [c.replace(_HELD, ";") for c in pieces]
        merged: list[list[str]] = []  # each claim's clauses, joined once (gluing by copying was quadratic)
        last = 0  # words of merged[-1] (counted up to 4), kept rather than counted again at each glued clause
        for c in pieces:
            c = c.strip()
            words = len(c.split(None, 3))  # up to 4: only whether there are fewer than 3 is asked, also of the sums
            if merged and (words < 3 or last < 3):
                merged[-1].append(c)
                last += words
            else:
                merged.append([c])
                last = words
        for parts in merged:
            claims.extend(_cut_long(", ".join(parts), MAX_CLAIM_WORDS))
    claims = [c for c in map(_unframe, claims) if c]
    kept = [c for c in claims if not _courtesy(c, folded)]
    return kept or claims  # an answer that is only a courtesy ("Yes.", "Sure!") keeps it: that is what was said


def split_sentences(text: str) -> list[str]:
    """The detector's sentence splitter (abbreviations and initials stay inside their sentence).

    Examples
    --------
    >>> split_sentences("Dr. Smith came. He left at 10.30 on Monday.")
    ['Dr. Smith came.', 'He left at 10.30 on Monday.']
    """
    return _split_sentences(text)


def split_claims(answer: str) -> list[str]:
    """The claims the detector scores: sentences, then clauses at ``;``, ``, but`` and dashes.

    Examples
    --------
    >>> split_claims("It opened in 1889; it is 330 m tall. Paris loves it.")
    ['It opened in 1889', 'it is 330 m tall.', 'Paris loves it.']
    """
    return _split_claims(answer)


@dataclass(slots=True)
class _Passage:
    """One context passage, tokenised once and kept in the passage cache (see :func:`passage_cache_info`)."""

    sentences: list[str]
    lowers: list[str]
    toks: list[list[str]]
    sentsets: list[set[str]]
    text: str  # lower-cased, sentences joined by newlines
    _stems: set[str] | None = None
    _tokline: str | None = None
    _stem_lines: str | None = None
    _df: dict[str, int] | None = None

    @property
    def stems(self) -> set[str]:
        """Content stems plus every raw lower-case token (built on first use: see :func:`_prepare_source`)."""
        if self._stems is None:
            self._stems = _word_set(self.toks, self.sentsets)
        return self._stems

    @property
    def tokline(self) -> str:
        """" " + every token, space-separated, + " ": trigrams are found by substring search (built on first use)."""
        if self._tokline is None:
            self._tokline = " %s " % " ".join(map(" ".join, self.toks))  # ~20% faster than one join over chain()
        return self._tokline

    @property
    def stem_lines(self) -> str:
        """"\\n" + the content stems joined by newlines: prefix search by substring (built on first use)."""
        if self._stem_lines is None:
            # Every sentence's stems, repeats kept: a substring search does not mind them, a set first costs more.
            self._stem_lines = "\n" + "\n".join(chain.from_iterable(self.sentsets))
        return self._stem_lines

    _dates: dict | None = None
    _original: str | None = None
    _acronyms: dict | None = None  # acronym -> whether the passage writes it (writes_acronym)

    @property
    def original(self) -> str:
        """The passage as written (its sentences joined by newlines), for the look-ups that need its capitals."""
        if self._original is None:
            self._original = "\n".join(self.sentences)
        return self._original

    def dates(self, month: int) -> list:
        """The dates of ``month`` the passage states, as (year, month, day) with None for a missing part (found on
        first use, per month: :func:`_month_dates`)."""
        if self._dates is None:
            self._dates = {}
        got = self._dates.get(month)
        if got is None:
            got = self._dates[month] = _month_dates(self, month)
        return got

    def writes_acronym(self, bare: str) -> bool:
        """Whether the passage writes the acronym ``bare`` (lower-case, no dots) in one of its forms
        (:func:`_acronym_re`): found on first use, per acronym."""
        if self._acronyms is None:
            self._acronyms = {}
        got = self._acronyms.get(bare)
        if got is None:
            text = self.original
            # Each form (:func:`_acronym_re`) writes every letter of the acronym as a capital: a passage lacking one
            # cannot hold it, and is settled by a few substring searches instead of the pattern's scan.
            got = self._acronyms[bare] = all(map(text.__contains__, bare.upper())) and any(
                m.start() == 0 or not text[m.start() - 1].isalnum() for m in _acronym_re(bare).finditer(text))
        return got

    @property
    def df(self) -> dict[str, int]:
        """Content stem -> number of the passage's sentences holding it (built on first use)."""
        if self._df is None:
            self._df = Counter(chain.from_iterable(self.sentsets))
        return self._df


@dataclass(slots=True)
class _Source:
    """The contexts (and question) of one answer: its passages' pieces put together."""

    stems: set[str]  # content stems plus every raw lower-case token
    question_stems: set[str]
    sentences: list[str]
    sentsets: list[set[str]]  # content stems of each sentence
    toks: list[list[str]]  # raw lower-case tokens of each sentence
    lowers: list[str]  # each sentence, lower-cased
    text: str  # lower-cased contexts, searched for the surface forms of the answer's numbers
    passages: list[_Passage]
    _stem_lines: str | None = None

    def has_prefix(self, prefix: str) -> bool:
        """Whether a content stem of the contexts starts with ``prefix``.

        One substring search in the passages' newline-joined stems (each passage's built once and
        cached with it; a stem holds no newline) instead of building the set of every stem's prefix.
        """
        if self._stem_lines is None:
            self._stem_lines = "".join(p.stem_lines for p in self.passages)
        return "\n" + prefix in self._stem_lines

    _toklines: str | None = None

    def novel(self, words: list[str], n: int, known: list[bool]) -> list[bool]:
        """Which word n-grams of ``words`` (gram i: ``words[i:i + n]``) occur in no passage.

        ``known[i]`` says whether gram i can occur at all (all its words are in the contexts): a gram with a word
        absent from every context is novel for sure, with no search. The others are looked up by substring search
        in the passages' token lines (tokens joined by single spaces, passages by newlines so that no n-gram spans
        two passages): cheaper than building sets of n-gram tuples for every new passage. A run of 4 or more
        consecutive known grams is first searched whole (its words as one space-padded string): when the run occurs,
        every gram inside it does, and one search settles them all (answers copy whole phrases from their sources);
        otherwise it is halved and each half tried the same way. A run of 2 or 3 grams is searched gram by gram
        (on the benchmark's answers such a run occurs whole once in six: its search was mostly one more). Exact
        either way.
        """
        if not any(known):
            return [True] * len(known)
        if self._toklines is None:
            self._toklines = "\n".join(p.tokline for p in self.passages)
        lines = self._toklines
        out = [True] * len(known)
        i, size = 0, len(known)
        while i < size:
            if not known[i]:
                i += 1
                continue
            k = i + 1
            while k < size and known[k]:
                k += 1
            # grams i..k-1 are all known: words i..k+n-2
            stack = [(i, k)]
            while stack:
                a, b = stack.pop()
                if 1 < b - a < 4:
                    for j in range(a, b):
                        out[j] = " " + " ".join(words[j:j + n]) + " " not in lines
                elif " " + " ".join(words[a:b + n - 1]) + " " in lines:
                    out[a:b] = [False] * (b - a)
                elif b - a >= 4:
                    m = (a + b) // 2
                    stack += ((m, b), (a, m))
            i = k
        return out

    def dates(self, month: int) -> list:
        """The dates of ``month`` the contexts state (:meth:`_Passage.dates`, cached with each passage)."""
        return [d for p in self.passages for d in p.dates(month)]

    def idf(self, stem: str) -> float:
        """Inverse sentence frequency of a stem in these contexts: rare words weigh more; absent ones most."""
        n = len(self.sentsets)
        df = sum(p.df.get(stem, 0) for p in self.passages)
        return math.log((n + 1) / (df + 0.5))

    def negated(self, sid: int) -> bool:
        """Whether sentence ``sid`` has a negation; computed on demand (few sentences ever need it)."""
        low = self.lowers[sid]
        if _NEGATIONS.isdisjoint(self.toks[sid]) and ("n't" not in low or _NT_RE.search(low) is None):
            return False
        if _NOT_NEGATION_RE.search(low):  # "not only ... but": look again without it
            rest = set(_tokens(_NOT_NEGATION_RE.sub(" ", low)))
            return not _NEGATIONS.isdisjoint(rest) or _NT_RE.search(low) is not None
        return True


def _content_stem(tok: str) -> str:
    """The stem of a token, or _STOP for a stopword (through the _CONTENT_STEM map)."""
    st = _CONTENT_STEM.get(tok)
    if st is None:
        st = _STOP if tok in _STOPWORDS else _stem(tok)
        if len(_CONTENT_STEM) < _STEM_CACHE_MAX and len(tok) <= _CACHED_TOKEN_MAX:
            _CONTENT_STEM[tok] = st
    return st


def _content_stems(toks: set[str]) -> set[str]:
    """Stems of the non-stopword tokens; C-level set/map work on a warm stem cache."""
    content = toks.difference(_STOPWORDS)
    stems = set(map(_STEM_CACHE.get, content))
    if None in stems:  # cache misses: stem in Python
        stems = {_stem(t) for t in content}
    return stems


_SENT_SPLIT = re.compile(f"({_SENT_END_RE.pattern})").split  # the ends kept, as odd items
# The same split for a text without "!", "?" or a newline (most passages), where a sentence can only end at a ".": the
# pattern then starts with that one character, which the regex engine finds by a fast scan for it, instead of testing
# every character against the set [.!?\n] (2.5x faster on the benchmark's passages).
# (tests/test_detector checks the two splits agree on such texts.)
_SENT_SPLIT_DOT = re.compile(r"(\." + _SENT_END_RE.pattern.removeprefix("[.!?\\n]") + ")").split
_CONCAT = str.__add__


def _context_sentences(text: str) -> list[str]:
    """Like :func:`_split_sentences`, unstripped and possibly with blank pieces: the hot path.

    One C-level split (the pattern never matches the empty string) and each piece glued back to
    its end (no match objects, no Python loop).
    """
    parts = (_SENT_SPLIT if "\n" in text or "!" in text or "?" in text else _SENT_SPLIT_DOT)(text)
    return list(map(_CONCAT, parts[0::2], [*parts[1::2], ""]))


#: Passages kept tokenised between answers (production traffic retrieves the same passages again and again).
PASSAGE_CACHE_SIZE: int = 1024
#: ... and at most this many characters of passage text in all (the oldest go first): a tokenised passage takes
#: several times its text, and a thousand passages of a megabyte each would otherwise stay in memory.
PASSAGE_CACHE_CHARS: int = 16_000_000
_PASSAGES: OrderedDict[str, _Passage] = OrderedDict()
_CACHE_STATS = {"hits": 0, "misses": 0, "chars": 0}


def passage_cache_info() -> dict:
    """Hits, misses and size of the passage cache (passages are keyed by their full text).

    Returns
    -------
    dict
        ``hits``, ``misses``, ``size``, ``max_size``, ``chars`` (of the passages held; at most
        :data:`PASSAGE_CACHE_CHARS`) and ``hit_rate`` (NaN before any look-up).

    Examples
    --------
    >>> clear_passage_cache()
    >>> _ = detect("It opened in 1889.", ["The tower opened in 1889."])
    >>> _ = detect("It opened in 1890.", ["The tower opened in 1889."])
    >>> info = passage_cache_info()
    >>> info["hits"], info["misses"], info["hit_rate"]
    (1, 1, 0.5)
    """
    n = _CACHE_STATS["hits"] + _CACHE_STATS["misses"]
    return {**_CACHE_STATS, "size": len(_PASSAGES), "max_size": PASSAGE_CACHE_SIZE,
            "hit_rate": _CACHE_STATS["hits"] / n if n else float("nan")}


def clear_passage_cache() -> None:
    """Empty the passage cache and reset its counters.

    Examples
    --------
    >>> clear_passage_cache(); passage_cache_info()["size"]
    0
    """
    _PASSAGES.clear()
    _CACHE_STATS.update(hits=0, misses=0, chars=0)


def _prepare_passage(text: str) -> _Passage:
    got = _PASSAGES.get(text)
    if got is not None:
        _CACHE_STATS["hits"] += 1
        got.stems  # a passage seen again keeps its word set: the next answers union sets, not lists
        return got
    _CACHE_STATS["misses"] += 1
    sentences = _context_sentences(text)
    # An ASCII passage without "&" (the usual case) is lower-cased and tokenised by C-level passes over its sentences
    # joined by NUL (:func:`_ascii_token_lists`). Otherwise each sentence is folded (:func:`_fold`) and the folded
    # sentences are tokenised the same way when they are ASCII once their dashes and quotation marks, which only
    # separate tokens as a space does, are written as spaces (:func:`_separate`; accents and typographic apostrophes are
    # folded already): about 90% of the benchmark's other passages. Else each by the pattern its folded text needs.
    if text.isascii() and "&" not in text and "\x00" not in text:
        low = "\x00".join(sentences).lower()
        lowers = low.split("\x00")
        toks = _ascii_token_lists(low)
    else:
        lowers = list(map(_fold, sentences))
        low = "\x00".join(lowers)
        if not low.isascii():
            low = _separate(low)
        if low.isascii() and "\x00" not in text:
            toks = _ascii_token_lists(low)
        else:
            toks = list(map(_tokens, lowers))
    # Content stems per sentence, by C-level maps over its tokens on the (warm) token -> stem map, stopwords
    # (mapped to _STOP) dropped; Python visits only a sentence with a token the map does not hold yet (None).
    get, stop = _CONTENT_STEM.get, _STOP
    sentsets = [set(map(get, ts)) for ts in toks]
    for _ in map(set.discard, sentsets, repeat(stop)):
        pass
    for i in compress(range(len(sentsets)), map(set.__contains__, sentsets, repeat(None))):
        ts = toks[i]  # first sight of some tokens: stem (only) them in Python, remember them
        for _ in map(_content_stem, filterfalse(_CONTENT_STEM.__contains__, ts)):
            pass
        ss = sentsets[i] = set(map(get, ts))
        ss.discard(stop)
        if None in ss:  # the map is full: stem them all in Python
            sentsets[i] = {st for st in map(_content_stem, ts) if st != stop}
    # N-grams (looked up in the token line) run across sentence ends inside a passage (harmless: an answer n-gram
    # rarely spans one).
    p = _Passage(sentences, lowers, toks, sentsets, "\n".join(lowers))
    if len(text) <= PASSAGE_CACHE_CHARS:
        while _PASSAGES and (len(_PASSAGES) >= PASSAGE_CACHE_SIZE
                             or _CACHE_STATS["chars"] + len(text) > PASSAGE_CACHE_CHARS):  # the oldest go, in O(1) each
            _CACHE_STATS["chars"] -= len(_PASSAGES.popitem(last=False)[0])
        _PASSAGES[text] = p
        _CACHE_STATS["chars"] += len(text)
    return p


def _word_set(token_lists: list[list[str]], sets: list[set[str]]) -> set[str]:
    """The union of the token lists and the sets: one set of every token first, then the sets merged into it (a set
    merged into a set is sized for it at once, and its items are not hashed again): 15% faster than
    ``set().union(*token_lists, *sets)``, which grows the set list by list."""
    words = set(chain.from_iterable(token_lists))
    words.update(*sets)
    return words


def _prepare_source(contexts: Sequence[str], question: str | None) -> _Source:
    ps = [_prepare_passage(c) for c in contexts]
    q_stems: set[str] = set()
    if question:
        q_stems = {t for t in _content_stems(set(_tokens(_fold(question)))) if not t[0].isdigit()}
    if len(ps) == 1:
        p = ps[0]
        return _Source(p.stems, q_stems, p.sentences, p.sentsets, p.toks, p.lowers, p.text, ps)
    # Every word of the contexts (stopwords are not content, but a stopword-like answer word such as "one" still
    # counts as present), in one set: from the word sets of passages seen before, and straight from the token and
    # stem lists of new ones (a set per new passage first would insert every word twice).
    toks: list = []
    sets: list = []
    for p in ps:
        if p._stems is not None:
            sets.append(p._stems)
        else:
            toks += p.toks
            sets += p.sentsets
    flat = chain.from_iterable
    return _Source(
        _word_set(toks, sets), q_stems,
        list(flat([p.sentences for p in ps])), list(flat([p.sentsets for p in ps])),
        list(flat([p.toks for p in ps])), list(flat([p.lowers for p in ps])),
        "\n".join([p.text for p in ps]), ps,
    )


# --------------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One claim of an answer and how well the contexts support it.

    Attributes
    ----------
    text : str
        The claim (a sentence or clause of the answer).
    support : float
        Support in [0, 1], higher is better supported.
    evidence : str
        The context sentence that shares most content words with the claim ("" when none does).
    reason : str or None
        Why the claim is not supported (``"number 1987 not in context"``, ``"entity 'Paris' not in
        context"``, ``"negation mismatch"``, ``"low overlap 0.21"``), or None when it is supported.

    Examples
    --------
    >>> Claim("Paris is in France.", 1.0, "Paris is the capital of France.", None).reason is None
    True
    """

    text: str
    support: float
    evidence: str
    reason: str | None


@dataclass(frozen=True)
class Detection:
    """The detector's verdict on one answer.

    Attributes
    ----------
    score : float or None
        Calibrated probability that the answer contains an unsupported claim (higher = more likely
        hallucinated); None when unscorable.
    label : int or None
        1 when ``score >= threshold`` else 0; None when unscorable.
    claims : tuple of Claim
        Per-claim evidence, in answer order.
    unscorable : bool
        True when no claim could be extracted (empty answer) or there is no context.

    Examples
    --------
    >>> Detection(score=None, label=None, claims=(), unscorable=True).unscorable
    True
    """

    score: float | None
    label: int | None
    claims: tuple[Claim, ...]
    unscorable: bool


@dataclass(slots=True)
class _ClaimStats:
    content: int  # content tokens
    credit: float  # summed support credit of content tokens
    bad_numbers: list[str]
    bad_entities: list[str]
    negation_mismatch: bool
    support: float
    evidence: str
    reason: str | None
    locality: float  # share of the claim's supported words found in its single best sentence
    words: int  # all word tokens, function words included
    novel_words: int  # of which absent from the contexts
    bigrams: int  # word bigrams of the claim
    novel_bigrams: int  # of which absent from the contexts
    trigrams: int
    novel_trigrams: int
    alignment: float  # IDF-weighted share of the claim's content covered by its best single context sentence
    misplaced: list[str]  # numbers / names found in the contexts but not in the claim's (well-aligned) evidence
    antonym: str | None  # "rose/fell" when the claim uses a word whose antonym its evidence uses


def _clause_negated(sentence: str, claim_stems: set[str]) -> bool:
    """Whether the clause of ``sentence`` that best matches the claim is negated.

    Long source sentences often negate one clause and affirm another ("the NFL has no written rule
    against female players; women would be allowed if ..."): compare polarity clause to clause.
    """
    best_hits, best_neg = -1, False
    for clause in _EVIDENCE_CLAUSE_RE.split(_NOT_NEGATION_RE.sub(" ", _fold(sentence))):
        toks = _tokens(clause)
        n = sum(1 for t in toks if t not in _STOPWORDS and _stem(t) in claim_stems)
        if n > best_hits:
            best_hits = n
            best_neg = any(t in _NEGATIONS or t.endswith("n't") for t in toks)
    return best_neg


def _literal_in(tok: str, text: str) -> bool:
    """Whether the number ``tok`` occurs verbatim in ``text`` and not inside a longer number (nor, for one ending in
    a letter such as "1.2m", inside a longer word: "1.2mm").

    A fast path: a C-level substring search saves building the context's set of number values
    (a regex pass over all of it) for the usual case of a number copied from the source.
    """
    n, size = len(tok), len(text)
    word = tok[-1].isalpha()
    i = text.find(tok)
    while i != -1:
        j = i + n
        # Not a piece of a longer number: "3" is not in "13", "3.5" or "1,300".
        before = i > 0 and (text[i - 1].isdigit() or (i > 1 and text[i - 1] in ".," and text[i - 2].isdigit()))
        after = j < size and (text[j].isdigit() or (j + 1 < size and text[j] in ".," and text[j + 1].isdigit())
                              or word and text[j].isalpha())
        if not before and not after:
            return True
        if before and text[i - 1].isdigit() and tok[0].isdigit():
            # every occurrence starting inside this run of digits has a digit before it too: search past the run (a
            # context of a long digit string, a serial or a table of numbers, was walked a digit at a time per claim)
            i = text.find(tok, max(_DIGIT_RUN_RE.match(text, i).end(), i + 1))
        else:
            i = text.find(tok, i + 1)
    return False


_WORD_OF: dict[float, list[str]] = {}
for _w, _v in _NUMBER_WORDS.items():
    _WORD_OF.setdefault(_v, []).append(_w)


def _number_forms(value: float) -> list[str]:
    """Surface forms a source may use for ``value``: 1200000 -> "1,200,000", "1.2 million", ...

    Checking a handful of forms with substring search is much cheaper than extracting and
    parsing every number of a 1,000-word context. A number too large for a float (400 digits) has no other
    form: it is judged as written.
    """
    forms: list[str] = []
    if not math.isfinite(value):
        return forms
    if value == int(value):
        n = int(value)
        forms += [str(n), f"{n:,}"]
        for word, mult in (("billion", 10**9), ("million", 10**6), ("thousand", 10**3), ("hundred", 100)):
            if n >= mult and (n * 100) % mult == 0:
                forms += [f"{n / mult:g} {word}", f"{n / mult:,g} {word}"]
        for suffix in ("bn", "b", "m", "k"):
            mult = _SUFFIXES[suffix]
            if n >= mult and (n * 100) % mult == 0:
                forms.append(f"{n / mult:g}{suffix}")
    else:
        forms += [f"{value:g}", f"{value:g}".replace(".", ",")]
    forms += _WORD_OF.get(value, [])
    return forms


def _number_in(value: float, src: _Source, tried: str = "") -> bool:
    """Whether the contexts state ``value`` in any usual form (digits, separators, words).

    ``tried``: a digit form already searched for (each distinct form is searched once).
    """
    for form in dict.fromkeys(_number_forms(value)):
        if form == tried:
            continue
        if form[0].isdigit():
            if _literal_in(form, src.text):
                return True
        elif form in src.stems:
            return True
    return False


# Dates, matched in folded (lower-case) text: "2020-03-05", "03/05/2020" (either order), "March 5, 2020", "Mar. 5th",
# "5 March 2020", "the 5th of March", "March 2020", each with an optional weekday before it ("Thursday, March 5");
# a comma may have spaces on both sides ("January 8 , 1935": tokenised text). Two-digit years are not read.
_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2, "thursday": 3, "thu": 3,
    "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))  # longest first: "march" before "mar"
_MON = f"(?:{_MONTH_NAMES})" + r"\.?"
_DAY = r"(?:[12][0-9]|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
_DATE_RE = re.compile(
    r"\b(?:(?P<wd>" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")\.?(?:\s*,\s*|\s+))?(?:"
    rf"(?P<iy>{_YEAR})[-/.](?P<im>1[0-2]|0?[1-9])[-/.](?P<id>[12][0-9]|3[01]|0?[1-9])"
    rf"|(?P<na>[12][0-9]|3[01]|0?[1-9])[-/.](?P<nb>[12][0-9]|3[01]|0?[1-9])[-/.](?P<ny>{_YEAR})"
    rf"|(?P<m1>{_MON})\s+(?P<d1>{_DAY})\b(?:(?:\s*,\s*|\s+)(?P<y1>{_YEAR}))?"
    rf"|(?:the\s+)?(?P<d2>{_DAY})\s+(?:of\s+)?(?P<m2>{_MON})(?:(?:\s*,\s*|\s+)(?P<y2>{_YEAR}))?"
    rf"|(?P<m3>{_MON})\s+(?P<y3>{_YEAR})"
    r")(?![0-9])"
)
_DATE_HINT = re.compile(r"[0-9][-/.][0-9]|\b(?:" + _MONTH_NAMES + r")\b")
_Date = tuple  # (year or None, month, day or None)


def _date_values(m: re.Match) -> list[_Date]:
    """The dates a match may mean: one, or two for a numeric day and month in either order ("03/05/2020")."""
    g = m.groupdict()
    if g["iy"]:
        return [(int(g["iy"]), int(g["im"]), int(g["id"]))]
    if g["ny"]:
        a, b, y = int(g["na"]), int(g["nb"]), int(g["ny"])
        return [(y, mo, d) for mo, d in dict.fromkeys(((a, b), (b, a))) if mo <= 12]
    mon = g["m1"] or g["m2"] or g["m3"]
    day = g["d1"] or g["d2"]
    year = g["y1"] or g["y2"] or g["y3"]
    return [(int(year) if year else None, _MONTHS[mon.rstrip(".")],
             int(day.rstrip("stndrh")) if day else None)]


_NUMERIC_DATE_RE = re.compile(r"[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}")  # starts at a digit: a fast scan
_WORD_START_RE = re.compile(r"\b\w")
_MONTH_STEMS = {month: name[:3] for name, month in _MONTHS.items()}  # 3 -> "mar": every form begins so


def _month_dates(p: "_Passage", month: int) -> list[_Date]:
    """The dates of ``month`` a passage states, in any form of _DATE_RE.

    Not one scan of the whole pattern (about 110 us for a passage of 200 words): its numeric dates are found once by a
    scan for digits with separators, and the month's written dates only where its first three letters begin a word,
    the pattern then anchored there or up to three words before ("the 5th of March"). About 10 us."""
    text = p.text
    numeric = p._dates.get("numeric")  # (the passage's cache of dates: _Passage.dates)
    if numeric is None:
        numeric = p._dates["numeric"] = []
        for c in _NUMERIC_DATE_RE.finditer(text):
            m = _DATE_RE.match(text, c.start()) if c.start() == 0 or not text[c.start() - 1].isalnum() else None
            if m is not None:
                numeric += _date_values(m)
    out = [d for d in numeric if d[1] == month]
    stem = _MONTH_STEMS[month]
    i = text.find(stem)
    while i != -1:
        if i == 0 or not text[i - 1].isalnum():
            starts = [w.start() for w in _WORD_START_RE.finditer(text, max(0, i - 40), i)][-3:]
            for st in (*starts, i):  # the earliest start that gives a date through this month name
                m = _DATE_RE.match(text, st)
                if m is not None and m.end() > i:
                    out += [d for d in _date_values(m) if d[1] == month]
                    break
        i = text.find(stem, i + 3)
    return out


def _date_supported(m: re.Match, src: _Source) -> bool:
    """Whether the contexts state the date of a claim's match: a date of theirs with the same month, and the same day
    and year where the claim gives them (a year the context date lacks may stand elsewhere in the contexts); a
    weekday the claim names must be that date's."""
    wd = m.group("wd")
    for y, mo, d in _date_values(m):
        year_elsewhere = None  # whether the contexts write the year y somewhere: searched once, when first needed
        for cy, cmo, cd in src.dates(mo):
            if d is not None and cd != d:
                continue
            if y is not None and cy != y:
                if cy is not None:
                    continue
                if year_elsewhere is None:
                    year_elsewhere = _literal_in(str(y), src.text)
                if not year_elsewhere:
                    continue
            year = y if y is not None else cy
            if wd and (year is None or d is None or _weekday(year, mo, d) != _WEEKDAYS[wd]):
                continue
            return True
    return False


def _weekday(year: int, month: int, day: int) -> int | None:
    """Monday 0 .. Sunday 6; None for a date no calendar has ("February 31")."""
    try:
        return datetime.date(year, month, day).weekday()
    except ValueError:
        return None


# Acronyms the claim writes in capitals, looked for in the contexts written the other way: "US" / "U.S." (each in
# capitals), or spelled out as capitalised words with those initials ("United Nations", "National Aeronautics and
# Space Administration", "Single Sign-On"), connectors such as "of" and "and" giving no letter.
_CONNECTOR = r"(?:[\s-]+(?:(?:of|and|for|the|on|in|de|du|la|&)\s+)*)"


@lru_cache(maxsize=4096)
def _acronym_re(bare: str) -> re.Pattern:
    """The forms of the acronym ``bare`` (lower-case, no dots) in a context, as one pattern. It starts with a letter,
    so the regex engine skips to its occurrences; the caller checks that a match begins a word."""
    up = bare.upper()
    dotted = r"\.".join(up[1:]) + r"\."
    spelled = _CONNECTOR.join(c + r"[\w'’]*" for c in up[1:])
    return re.compile(rf"{up[0]}(?:{up[1:]}\b|\.{dotted}|[\w'’]*{_CONNECTOR}{spelled})")


def _abbreviated(t: str, src: _Source) -> bool:
    """Whether an acronym the claim writes in capitals ("US", "U.S.", "UN"), which the contexts lack as written, is
    there the other way (:meth:`_Passage.writes_acronym`, kept with each passage). (The claim spelling out what the
    contexts abbreviate is not looked for: it would cost a look at every capitalised word of every claim.)"""
    bare = t.replace(".", "")
    if not (2 <= len(bare) <= 7 and bare.isalpha() and bare.isascii()):
        return False
    return any(p.writes_acronym(bare) for p in src.passages)


def _score_claim(text: str, src: _Source, align: bool = True, folded: tuple | None = None) -> _ClaimStats:
    # Set algebra on unique words does the bulk of the work in C; Python only visits the few
    # words that are missing from the contexts, and the numbers. ``folded``: (_fold(text), its _tokens), when known.
    if folded is None:
        tl = _fold(text)
        lows = _tokens(tl)
    else:
        tl, lows = folded
    low_set = set(lows)
    stems = src.stems
    get = _STEM_CACHE.get
    pol = (_NOT_NEGATION_RE.sub(" ", tl)
           if "not " in tl or "no doubt" in tl or "nothing but" in tl or "n" in tl[:3] else tl)
    neg = not _NEGATIONS.isdisjoint(_tokens(pol) if pol is not tl else low_set) or (
        "n't" in pol and _NT_RE.search(pol) is not None)

    novel = low_set - stems
    if novel:
        novel = {t for t in novel if (get(t) or _stem(t)) not in stems}
    novel_any = sum(map(novel.__contains__, lows)) if novel else 0

    # Numbers (digits, "3 million", number words): each must appear in the contexts by value.
    found: set[str] = set()  # the claim's content words (stems) present in the contexts
    bad_numbers: list[str] = []
    ok_values: list[tuple[str, float]] = []  # numbers the contexts state somewhere
    n_num = ok_num = 0
    digit_toks = _NUM_RE.findall(tl)
    word_nums = low_set.intersection(_STRONG_NUMBER_WORDS)
    # A date is one fact, judged by its value against the contexts' dates in whatever form they write them
    # ("March 5, 2020" = "2020-03-05"); its numbers, month and weekday are not judged again on their own.
    value_words: set[str] = set()  # the tokens of the claim's dates and shorthand numbers ("1.2m"), judged by value
    date_grams: list[int] = []  # the bigrams (by first token) inside a supported date
    bad_dates: set[str] = set()
    if digit_toks:
        for m in _DATE_RE.finditer(tl) if _DATE_HINT.search(tl) else ():
            toks = _tokens(m.group(0))
            for t in _NUM_RE.findall(m.group(0)):
                if t in digit_toks:  # (not when the date is glued to a number before it: "12,2020-03-05")
                    digit_toks.remove(t)
            value_words.update(toks)
            units = sum(1 for t in toks if t not in _STOPWORDS)  # as many as its words weighed when read one by one
            n_num += units
            if _date_supported(m, src):
                ok_num += units
                found.update(t for t in toks if t in stems)  # what the evidence sentence shares with it
                first_tok = len(_tokens(tl[:m.start()]))
                if lows[first_tok:first_tok + len(toks)] == toks:
                    date_grams += range(first_tok, first_tok + len(toks) - 1)
            else:
                shown = text[m.start():m.end()] if len(text) == len(tl) else m.group(0)
                bad_numbers.append(shown)
                bad_dates.add(shown)
    if digit_toks or word_nums:
        # "3 million" is one quantity: judged by its value, and its "3" not on its own.
        # (Substring tests first: most claims name no multiplier, and then the regex cannot match.)
        if "hundred" in tl or "thousand" in tl or "illion" in tl:
            mult = [(m.group(0), _number_value(m.group(1)) * _MULTIPLIERS[m.group(2)]) for m in _MULT_RE.finditer(tl)]
        else:
            mult = []
        # "$1.2M": 1,200,000, or 1.2 as written (metres, say); its "1.2" not on its own
        bare: dict[str, float] = {}
        as_written: set[str] = set()
        for m in _SUFFIX_MULT_RE.finditer(tl) if digit_toks else ():
            number = _number_value(m.group(1))
            mult.append((m.group(0), number * _SUFFIXES[m.group(2)]))
            bare[m.group(0)] = number
            # only "m" can be a unit (metres); after a currency sign it is millions, and "k", "b", "bn", "mn" are
            # magnitudes: "$5bn" is not supported by a context's "$5 million"
            if m.group(2) == "m" and tl[:m.start()].rstrip()[-1:] not in _CURRENCY_SIGNS:
                as_written.add(m.group(0))
            value_words.update(_tokens(m.group(0)))
        # "5 gb" against a context's "5gb" (one word there), or the other way round: the unit is the context's
        for m in _UNIT_RE.finditer(tl) if digit_toks else ():
            number, unit = m.groups()
            if unit in _ORDINAL_SUFFIXES or unit in _STOPWORDS:
                continue
            if unit in ("percent", "per cent", "pct"):  # "20 percent" against "20%"
                if _literal_in(number + "%", src.text):
                    value_words.update(unit.split())
                continue
            glued, apart = number + unit, " " in m.group(0)
            if (apart and unit not in stems and _literal_in(glued, src.text)
                    or not apart and glued not in stems and _literal_in(number + " " + unit, src.text)):
                value_words.update((unit, glued))
        if mult:
            scaled = {tok.split()[0] for tok, _ in mult} | {_NUM_RE.match(tok).group(0) for tok in bare}
            checks = [(t, _number_value(t)) for t in dict.fromkeys(digit_toks) if t not in scaled] + mult
            units = {tok.split()[-1] for tok, _ in mult}
            checks += [(w, _NUMBER_WORDS[w]) for w in sorted(word_nums - units, key=lows.index)]
        else:
            checks = [(t, _number_value(t)) for t in dict.fromkeys(digit_toks)]
            if word_nums:
                checks += [(w, _NUMBER_WORDS[w]) for w in sorted(word_nums, key=lows.index)]
        for tok, value in checks:
            if value is None and ":" not in tok:  # (a time or a score, "10:30" or "3:1", is compared as written)
                continue
            n_num += 1
            if tok in stems or _literal_in(tok, src.text) or value is not None and _number_in(value, src, tok):
                ok_num += 1
                found.add(tok)
                if value is not None:
                    ok_values.append((tok, value))
            elif tok in as_written and _number_in(bare[tok], src):  # "5 m" as written: 5 (metres)
                ok_num += 1
                number = _NUM_RE.match(tok).group(0)
                found.add(number)
                ok_values.append((number, bare[tok]))
            else:
                bad_numbers.append(tok)

    # Content words, counted once per stem, visited in answer order (never in set order: that
    # varies with the interpreter's hash seed and would make scores differ between processes).
    words = filterfalse(_STOPWORDS.__contains__, dict.fromkeys(lows))
    if digit_toks or word_nums or value_words:
        words = filterfalse(word_nums.union(digit_toks, value_words).__contains__, words)
    words = list(words)
    smap = dict(zip(words, map(get, words)))
    if None in smap.values():
        for t in [t for t, st in smap.items() if st is None]:
            smap[t] = _stem(t)
    stem_set = set(smap.values())
    direct = stem_set & stems
    found |= direct
    credit = float(len(direct) + ok_num)
    hard_missing: set[str] = set()
    missing = stem_set - stems
    if missing:
        q_stems = src.question_stems
        variants: dict[str, list[str]] = {}
        for t, st in smap.items():
            if st in missing:
                variants.setdefault(st, []).append(t)
        for st, toks in variants.items():
            if not stems.isdisjoint(toks):  # the surface form is there, only its stem differs
                found.add(st)
                credit += 1.0
            elif st in q_stems:
                # Restating the question is not fabrication, but the question is not evidence
                # either: half credit (full credit let hallucinated answers hide behind echoes).
                credit += 0.5
            elif len(st) >= 5 and src.has_prefix(st[:5]):
                credit += 0.5  # same word family: "economic" / "economy"
            elif toks[0].upper() in text and _abbreviated(toks[0], src):
                found.add(st)  # "US" / "U.S." / "United States" in the contexts
                credit += 1.0
            else:
                hard_missing.update(toks)
    content = len(stem_set) + n_num

    # A capitalised word inside the sentence (or an acronym anywhere) that the contexts lack is a name.
    bad_entities: list[str] = []
    all_caps: list[str] | None = None  # the claim's capitalised words (found on first need, at most once)
    if hard_missing:
        caps = all_caps = _CAP_RE.findall(text)
        for k, tok in enumerate(caps):
            initial = k == 0 and text.lstrip().startswith(tok)
            if _fold(tok) in hard_missing and (not initial or tok.isupper() and len(tok) > 1):
                bad_entities.append(tok)
    lex = credit / content if content else 1.0
    evidence = ""
    mismatch = False
    locality = 1.0
    # Shared content words per context sentence, by C-level map (no Python loop over sentences).
    # Most sentences share no word with a claim: an allocation-free disjointness test first, then
    # counts (which build a set each) only for the sentences that share some word, in order.
    sentsets = src.sentsets
    if found:
        ids = list(compress(range(len(sentsets)), map(not_, map(found.isdisjoint, sentsets))))
        hits = list(map(len, map(found.intersection, map(sentsets.__getitem__, ids))))
    else:
        ids = hits = []
    top = max(hits, default=0)
    if top:
        # Best sentence: most shared content words, ties to the shorter (more specific) sentence.
        best = ids[hits.index(top)]
        if hits.count(top) > 1:
            best = min((i for i, h in zip(ids, hits) if h == top), key=lambda i: len(sentsets[i]))
        evidence = src.sentences[best].strip()
        overlap = top / max(content, 1)
        # Polarity only matters when the claim and its evidence talk about the same thing.
        # A question asserts nothing, and a two-word overlap is too thin to compare polarity on.
        mismatch = (
            top >= 3
            and overlap >= 0.6
            and not text.rstrip().endswith("?")
            # Clause-level check only when the evidence has a negation somewhere.
            and neg != (src.negated(best) and _clause_negated(evidence, stem_set))
        )
        # Words found only in sentences other than the evidence: a claim stitched together from
        # unrelated places (a best-two-sentences cover lost most of this signal in cross-validation).
        if len(found) >= 2:
            locality = top / len(found)
    # N-gram novelty of the claim (every word, function words too: "was not" / "is now" carry meaning).
    # Bigrams are looked up in the passages' token lines (no per-passage bigram set to build for a new passage).
    # A gram can occur only when all its words are in the contexts, and a trigram only when both its bigrams do.
    n_bg = max(len(lows) - 1, 0)
    in_ctx = list(map(stems.__contains__, lows))
    bg_novel = src.novel(lows, 2, list(map(and_, in_ctx, islice(in_ctx, 1, None)))) if n_bg else []
    for i in date_grams:  # a supported date's own bigrams ("march 5", "5 2020") are the contexts' date
        bg_novel[i] = False
    nov_bg = sum(bg_novel)
    nov_tg = n_tg = 0
    if n_bg > 1 and align:
        n_tg = n_bg - 1
        bg_found = list(map(not_, bg_novel))
        nov_tg = sum(src.novel(lows, 3, list(map(and_, bg_found, islice(bg_found, 1, None)))))
    # Alignment: the IDF-weighted share of the claim's content found in its best single sentence (rare words
    # count more than common ones; a claim word absent from every context sentence weighs most).
    alignment = 1.0
    misplaced: list[str] = []
    antonym: str | None = None
    claim_stems = stem_set | set(found) if align else set()
    if claim_stems:  # only when a weight uses it (IDF look-ups are the costliest part of a claim)
        idf = {st: src.idf(st) for st in claim_stems}
        # exactly rounded sums (math.fsum): the same whatever order the sets are walked in, so the same in every
        # process (set order follows the interpreter's hash seed)
        total = math.fsum(idf.values())
        if top and total > 0:
            cands = [i for i, h in zip(ids, hits) if h >= top - 1] if len(ids) > 1 else ids
            alignment = max(math.fsum([idf[st] for st in claim_stems.intersection(sentsets[i])]) for i in cands) / total
            alignment = min(alignment, 1.0)
        elif total > 0:
            alignment = 0.0
    if top and top >= 2 and top / max(content, 1) >= 0.5:
        # A number or name that the contexts hold, but not the sentence the claim is about, while that sentence
        # states another one: "completed in 1887" against "completed in 1889 ... founded in 1887" elsewhere.
        ev_low = src.lowers[best]
        ev_toks = set(src.toks[best])
        if ok_values and _DIGIT_RE.search(ev_low):
            for tok, value in ok_values:
                if not _literal_in(tok, ev_low) and tok not in ev_toks and not any(
                    _literal_in(f, ev_low) if f[0].isdigit() else f in ev_toks for f in _number_forms(value)
                ):
                    misplaced.append(tok)
        if all_caps is None:
            all_caps = _CAP_RE.findall(text)
        caps = [c for k, c in enumerate(all_caps) if k or not text.lstrip().startswith(c)]
        if caps and evidence[1:] != evidence[1:].lower():
            for tok in dict.fromkeys(caps):
                lt = _fold(tok)
                if tok not in bad_entities and lt not in _STOPWORDS and lt not in ev_toks and lt in stems \
                        and lt not in src.question_stems:
                    misplaced.append(tok)
        ants = low_set.intersection(_ANTONYM_WORDS)
        if ants:
            for a in sorted(ants, key=lows.index):
                flip = _ANTONYMS[a].intersection(ev_toks)
                if flip and a not in ev_toks:
                    antonym = f"{a}/{min(flip)}"
                    break
    support = lex
    if bad_numbers:
        support *= 0.5
    if bad_entities:
        support *= 0.5
    if mismatch or antonym:
        support *= 0.5
    if misplaced:
        support *= 0.75
    reason: str | None = None
    if bad_numbers:
        first_bad = bad_numbers[0]
        reason = f"date '{first_bad}' not in context" if first_bad in bad_dates else f"number {first_bad} not in context"
    elif bad_entities:
        reason = f"entity '{bad_entities[0]}' not in context"
    elif mismatch:
        reason = "negation mismatch"
    elif antonym:
        reason = "antonym '{}' where the evidence says '{}'".format(*antonym.split("/"))
    elif misplaced:
        kind = "number" if any(misplaced[0] == tok for tok, _ in ok_values) else "entity"
        reason = f"{kind} '{misplaced[0]}' not in its evidence sentence"
    elif lex < CLAIM_SUPPORT_MIN:
        reason = f"low overlap {lex:.2f}"
    return _ClaimStats(
        content, credit, bad_numbers, bad_entities, mismatch, support, evidence, reason, locality, len(lows),
        novel_any, n_bg, nov_bg, n_tg, nov_tg, alignment, misplaced, antonym,
    )


# --------------------------------------------------------------------------------------------------
# Answer-level features and the calibrated mapping
# --------------------------------------------------------------------------------------------------

FEATURES: tuple[str, ...] = (
    "unsupported_share",  # 1 - content-weighted support over the whole answer
    "worst_claim",  # 1 - support of the least supported claim (hard checks included)
    "unsupported_numbers",  # log1p(count) of numbers absent from every context
    "unsupported_entities",  # log1p(count) of names absent from every context
    "negation_mismatch",  # any claim with flipped polarity versus its evidence
    "scattered_support",  # 1 - mean claim locality: words pulled from unrelated source sentences
    "novel_word_share",  # share of all answer words (function words too) absent from the contexts
    "novel_bigram_share",  # share of the answer's word bigrams absent from the contexts
    "novel_trigram_share",  # share of the answer's word trigrams absent from the contexts
    "worst_bigram_novelty",  # the same share for the claim where it is highest
    "weak_alignment",  # 1 - IDF-weighted coverage of the worst claim by its best single context sentence
    "mean_weak_alignment",  # the same, averaged over claims (weighted by content words)
    "misplaced_facts",  # log1p(count) of numbers/names in the contexts but not in the claim's evidence sentence
    "antonym_flip",  # any claim using a word whose antonym its evidence sentence uses
)


def _features(stats: Sequence[_ClaimStats]) -> list[float]:
    content = sum(s.content for s in stats)
    credit = sum(s.credit for s in stats)
    scored = [s for s in stats if s.content]
    n_bg = sum(s.bigrams for s in stats)
    n_tg = sum(s.trigrams for s in stats)
    return [
        1.0 - credit / content if content else 0.0,
        1.0 - min(s.support for s in scored) if scored else 0.0,
        math.log1p(sum(len(s.bad_numbers) for s in stats)),
        math.log1p(sum(len(s.bad_entities) for s in stats)),
        1.0 if any(s.negation_mismatch for s in stats) else 0.0,
        # Content-weighted mean, not the minimum: faithful multi-sentence summaries routinely fuse
        # two source sentences in some claim, so the minimum would grow with answer length.
        1.0 - sum(s.locality * s.content for s in scored) / content if content else 0.0,
        sum(s.novel_words for s in stats) / max(sum(s.words for s in stats), 1),
        sum(s.novel_bigrams for s in stats) / n_bg if n_bg else 0.0,
        sum(s.novel_trigrams for s in stats) / n_tg if n_tg else 0.0,
        max((s.novel_bigrams / s.bigrams for s in stats if s.bigrams >= 2), default=0.0),
        1.0 - min(s.alignment for s in scored) if scored else 0.0,
        1.0 - sum(s.alignment * s.content for s in scored) / content if content else 0.0,
        math.log1p(sum(len(s.misplaced) for s in stats)),
        1.0 if any(s.antonym for s in stats) else 0.0,
    ]


def _load_weights() -> tuple[list[float], float]:
    with open(_WEIGHTS_PATH, encoding="utf-8") as fh:
        spec = json.load(fh)
    if tuple(spec["features"]) != FEATURES:
        raise RuntimeError(
            f"{_WEIGHTS_PATH.name}: features {spec['features']} do not match detector features {FEATURES}"
        )
    if spec.get("detector_version") != DETECTOR_VERSION:
        raise RuntimeError(
            f"{_WEIGHTS_PATH.name}: fitted for detector {spec.get('detector_version')!r}, "
            f"module is {DETECTOR_VERSION!r}; refit or bump DETECTOR_VERSION"
        )
    return [float(w) for w in spec["coef"]], float(spec["intercept"])


_WEIGHTS: list = []  # [(coef, intercept)] once loaded: loaded on first use, so a refit can import this module


def _weights() -> tuple[list[float], float]:
    if not _WEIGHTS:
        _WEIGHTS.append(_load_weights())
    return _WEIGHTS[0]


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _as_contexts(contexts: Sequence[str] | str | None) -> list[str]:
    if contexts is None:
        return []
    if isinstance(contexts, str):
        return [contexts]
    return [c for c in contexts if isinstance(c, str)]


# Features computed only when a weight uses them (or when fitting): they cost the most per claim.
_ALIGN_FEATURES = ("weak_alignment", "mean_weak_alignment", "novel_trigram_share")


def _needs_alignment() -> bool:
    coef, _ = _weights()
    return any(coef[FEATURES.index(f)] for f in _ALIGN_FEATURES)


def _analyse(answer: str, contexts: Sequence[str] | str | None, question: str | None, align: bool | None = None):
    ctx = [c for c in _as_contexts(contexts) if c.strip()]
    folded: dict[str, tuple] = {}
    claims = _split_claims(answer or "", folded)
    if not claims or not ctx:
        return None, claims
    src = _prepare_source(ctx, question)
    # Index the contexts once for the answer's content words, not once per claim (a stem not yet
    # seen maps to None, and src.hits indexes any other word a claim needs: this only saves work).
    if align is None:
        align = _needs_alignment()
    get = folded.get
    return [_score_claim(c, src, align, get(c)) for c in claims], claims


def detect(
    answer: str,
    contexts: Sequence[str] | str,
    question: str | None = None,
    *,
    threshold: float = THRESHOLD,
) -> Detection:
    """Score one answer against its retrieved contexts.

    Parameters
    ----------
    answer : str
        The generated answer.
    contexts : list of str or str
        The retrieved passages the answer should be grounded in.
    question : str, optional
        The user's question; words copied from it are not counted as unsupported.
    threshold : float, default THRESHOLD
        Decision threshold on the probability for ``label``.

    Returns
    -------
    Detection
        ``score`` is the calibrated probability that the answer contains an unsupported claim
        (higher = more likely hallucinated, best value 0 for a faithful answer); ``claims`` holds
        per-claim support, evidence and the reason of any failure. An empty answer or no context
        gives ``unscorable=True`` with ``score`` and ``label`` None.

    Examples
    --------
    >>> ctx = ["The Eiffel Tower was completed in 1889 in Paris."]
    >>> d = detect("The Eiffel Tower was completed in 1887.", ctx)
    >>> d.label, d.claims[0].reason
    (1, 'number 1887 not in context')
    >>> detect("The Eiffel Tower was completed in 1889.", ctx).label
    0
    >>> detect("", ctx).unscorable
    True
    """
    if not isinstance(answer, str):
        raise ParameterTypeError(f"detect: answer must be str, got {type(answer).__name__}")
    check_row({"answer": answer, "contexts": contexts, "question": question}, "detect")
    check_number("detect", "threshold", threshold, lo=0, hi=1)
    # The cyclic garbage collector is paused while one answer is scored (workbench._gc: 12-15% of the time with
    # all-new passages), never across a yield; the call's temporaries are freed before it is back on.
    with paused():
        return _detect(answer, contexts, question, threshold)


def _detect(answer: str, contexts: Sequence[str] | str, question: str | None, threshold: float) -> Detection:
    stats, claims = _analyse(answer, contexts, question)
    if stats is None:
        return Detection(None, None, (), True)
    coef, intercept = _weights()
    z = intercept + sum(w * f for w, f in zip(coef, _features(stats)))
    p = _sigmoid(z)
    out = tuple(
        Claim(text, round(s.support, 4), s.evidence, s.reason) for text, s in zip(claims, stats)
    )
    return Detection(p, int(p >= threshold), out, False)


def _progress(it: Iterable, progress: bool, total: int | None = None, desc: str = "detect") -> Iterable:
    if not progress:
        return it
    from tqdm.auto import tqdm

    # disable=None: tqdm shows the bar only when stderr is a terminal (quiet in CI and in logs).
    return tqdm(it, total=total, desc=desc, unit="answer", disable=None, file=sys.stderr)


def detect_batch(
    rows: Iterable[Mapping],
    *,
    threshold: float = THRESHOLD,
    progress: bool = False,
) -> Iterator[Detection]:
    """Score many answers lazily, one :class:`Detection` per row, in order.

    Parameters
    ----------
    rows : iterable of mapping
        Each with keys ``answer``, ``contexts`` (list of str or str) and optionally ``question``.
    threshold : float, default THRESHOLD
        Decision threshold on the probability.
    progress : bool, default False
        Show a tqdm progress bar (only when stderr is a terminal).

    Returns
    -------
    iterator of Detection

    Examples
    --------
    >>> rows = [{"answer": "It opened in 1889.", "contexts": ["The tower opened in 1889."]},
    ...         {"answer": "", "contexts": ["The tower opened in 1889."]}]
    >>> [(d.label, d.unscorable) for d in detect_batch(rows)]
    [(0, False), (None, True)]
    """
    for row in _progress(rows, progress):
        yield detect(row["answer"], row["contexts"], row.get("question"), threshold=threshold)


class DetectorRowWarning(UserWarning):
    """A detector raised on one answer: that answer is left unscored (named, with the error), the others are scored.

    Examples
    --------
    >>> import json, tempfile, pathlib, warnings
    >>> class Fussy:  # the offline detector, except that it cannot take one answer
    ...     DETECTOR_NAME, DETECTOR_VERSION = "fussy", "1"
    ...     def detect_batch(self, rows, *, threshold):
    ...         for r in rows:
    ...             if "boom" in r["answer"]:
    ...                 raise ValueError("cannot parse")
    ...             yield detect(r["answer"], r["contexts"], threshold=threshold)
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rows = [{"id": "a", "answer": "It opened in 1889.", "contexts": ["It opened in 1889."]},
    ...         {"id": "b", "answer": "boom", "contexts": ["It opened in 1889."]}]
    >>> _ = (d / "in.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
    >>> with warnings.catch_warnings(record=True) as got:
    ...     warnings.simplefilter("always")
    ...     score_jsonl(d / "in.jsonl", d / "out.jsonl", progress=False, detector=Fussy())["errors"]
    1
    >>> [str(w.message) for w in got if w.category is DetectorRowWarning]
    ["detector fussy 1 raised on line 2 (id 'b') (ValueError: cannot parse); that answer is left unscored, the others
      are scored"]
    >>> [(r["id"], r["label"], r.get("error")) for r in map(json.loads, (d / "out.jsonl").read_text().splitlines())]
    [('a', 0, None), ('b', None, 'ValueError: cannot parse')]
    """


#: Answers in a row that raise, with none scored before them, that stop a run: the detector itself is broken (a model
#: file that does not load, say), not one answer.
BROKEN_AFTER = 3


def detect_each(det: Any, rows: Sequence[Mapping], *, threshold: float = THRESHOLD) -> list[Any]:
    """``det.detect_batch(rows)`` with each answer isolated: one :class:`Detection` per row, in order, or the
    exception the detector raised on that row in its place.

    The rows go to the detector as one batch (a model tier batches its inferences). When it raises, the detections
    before the failure are kept, the row it stopped at is scored alone (an error again is that row's), and the rest go
    on as a batch. So one pathological answer no longer stops a scoring run, nor every later run that meets it again.
    A detector that raises on :data:`BROKEN_AFTER` rows in a row before scoring any is broken, not the rows: its
    error is raised.

    Examples
    --------
    >>> class Fussy:  # a detector that cannot take one answer
    ...     def detect_batch(self, rows, *, threshold):
    ...         for r in rows:
    ...             if "boom" in r["answer"]:
    ...                 raise ValueError("cannot parse")
    ...             yield detect(r["answer"], r["contexts"], threshold=threshold)
    >>> rows = [{"answer": a, "contexts": ["It opened in 1889."]} for a in ("It opened in 1889.", "boom", "It opened.")]
    >>> [type(d).__name__ for d in detect_each(Fussy(), rows)]
    ['Detection', 'ValueError', 'Detection']
    """
    out: list[Any] = []
    rest = list(rows)
    scored, failures = False, 0  # whether any row was scored (whatever object the detector returns); rows that raised
    while rest:
        got: list[Any] = []
        try:
            for d in det.detect_batch(rest, threshold=threshold):
                got.append(d)
            finished = True
        except Exception:  # the row at len(got), or a later one of the detector's own inference batch
            finished = False
        out += got
        scored = scored or bool(got)
        if finished:
            if len(got) != len(rest):
                raise RuntimeError(f"{type(det).__name__}.detect_batch returned {len(got)} detections for "
                                   f"{len(rest)} answers")
            break
        try:
            (d,) = list(det.detect_batch(rest[len(got):len(got) + 1], threshold=threshold))
            scored = True
        except Exception as exc:
            failures += 1
            if not scored and failures >= BROKEN_AFTER:
                raise
            d = exc
        out.append(d)
        rest = rest[len(got) + 1:]
    return out


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message``, for a report naming the answer an error came from.

    >>> describe_error(ValueError("bad input\\nmore"))
    'ValueError: bad input'
    """
    return f"{type(exc).__name__}: {first_line(exc)[:300]}" if str(exc).strip() else type(exc).__name__


def warn_failed_rows(failed: Sequence[tuple[str, BaseException]], what: str, *, stacklevel: int = 3) -> None:
    """One :class:`DetectorRowWarning` per failed row (``(where, error)``, at most 10, then one for the rest).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_failed_rows([(f"row {i}", ValueError("no contexts")) for i in range(12)], "detect")
    >>> len(caught), str(caught[0].message)
    (11, 'detect raised on row 0 (ValueError: no contexts); that answer is left unscored, the others are scored')
    >>> str(caught[-1].message)
    'detect raised on 2 more answers; they are left unscored'
    """
    import warnings

    for where, exc in failed[:10]:
        warnings.warn(f"{what} raised on {where} ({describe_error(exc)}); that answer is left unscored, the others "
                      f"are scored", DetectorRowWarning, stacklevel=stacklevel)
    if len(failed) > 10:
        warnings.warn(f"{what} raised on {len(failed) - 10} more answers; they are left unscored",
                      DetectorRowWarning, stacklevel=stacklevel)


# --------------------------------------------------------------------------------------------------
# JSONL entry points
# --------------------------------------------------------------------------------------------------


def check_row(row: Any, where: str, *, labelled: bool = False) -> None:
    """Refuse a row the detector cannot score (``answer`` a string, ``contexts`` a list of strings or a string,
    ``question`` a string or None; with ``labelled``, ``label`` 0 or 1), with a :class:`ParameterError` that begins
    with ``where`` (``"rows.jsonl:3"``, ``"fit_calibration: rows[2]"``) and names the field.

    >>> check_row({"answer": "It opened in 1889.", "contexts": ["..."], "label": 1}, "rows[0]", labelled=True)
    >>> check_row({"answer": "It opened in 1889.", "contexts": 5}, "rows[1]")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: rows[1]: field 'contexts' must be a list of strings or a string, got int
    """
    if not isinstance(row, Mapping):
        raise ParameterError(f"{where}: expected a mapping with answer, contexts and question, got "
                             f"{type(row).__name__}")
    if not isinstance(row.get("answer"), str):
        got = "missing" if "answer" not in row else type(row["answer"]).__name__
        raise ParameterError(f"{where}: field 'answer' must be a string, got {got}")
    ctx = row.get("contexts")
    if not (isinstance(ctx, str) or (isinstance(ctx, (list, tuple)) and all(isinstance(c, str) for c in ctx))):
        got = "missing" if "contexts" not in row else type(ctx).__name__
        raise ParameterError(f"{where}: field 'contexts' must be a list of strings or a string, got {got}")
    q = row.get("question")
    if q is not None and not isinstance(q, str):
        raise ParameterError(f"{where}: field 'question' must be a string or null, got {type(q).__name__}")
    if labelled and row.get("label") not in (0, 1):
        raise ParameterError(f"{where}: field 'label' must be 0 or 1, got {row.get('label')!r}")


def _read_rows(path: str | Path, *, labelled: bool = False) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such file")
    if not path.is_file():  # a folder, a device such as /dev/zero, a pipe: read as lines they never end
        raise ParameterError(f"{path}: not a file")
    from workbench.io.records import refuse_wide_text

    refuse_wide_text(path)  # UTF-16 (PowerShell's Out-File): named, with the command that converts it
    rows: list[dict] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ParameterError(f"{path}:{lineno}: not UTF-8 text (byte {exc.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ParameterError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            except RecursionError:
                raise ParameterError(f"{path}:{lineno}: invalid JSON (nested too deeply)") from None
            except ValueError as exc:  # an integer of more than 4,300 digits (the interpreter's limit)
                raise ParameterError(f"{path}:{lineno}: a JSON number too long to read ({str(exc)[:80]})") from None
            if not isinstance(row, dict):
                raise ParameterError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            check_row(row, f"{path}:{lineno}", labelled=labelled)
            row["_line"] = lineno
            rows.append(row)
    return rows


def read_labelled(path: str | Path) -> list[dict]:
    """The validated rows of a labelled JSONL file (``answer, contexts, question, label (0/1), source``).

    Raises
    ------
    ParameterError
        A bad line: the message names the file, line and field.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "l.jsonl"
    >>> _ = p.write_text(json.dumps({"answer": "a", "contexts": ["b"], "label": 2}) + "\\n")
    >>> read_labelled(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: ...l.jsonl:1: field 'label' must be 0 or 1, got 2
    """
    return _read_rows(path, labelled=True)


def score_jsonl(
    in_path: str | Path,
    out_path: str | Path,
    *,
    threshold: float = THRESHOLD,
    progress: bool = True,
    detector=None,
) -> dict:
    """Score a JSONL file of answers and write one JSON line of results per input row.

    Input rows: ``{id, question, contexts, answer}``. Output rows: ``{id, score, label, claims:
    [{text, support, evidence, reason}], unscorable, detector, detector_version}``. All rows are
    validated before anything is written; the output replaces ``out_path`` only when every row is scored (an
    interrupted run leaves the file as it was), and it may not be the input file.

    Parameters
    ----------
    in_path, out_path : str or Path
        Input and output JSONL files.
    threshold : float, default THRESHOLD
        Decision threshold on the probability.
    progress : bool, default True
        Show a tqdm progress bar when stderr is a terminal.
    detector : object with ``detect``, optional
        Default: this offline detector; e.g. :class:`workbench.eval.nli.NLIDetector`.

    Returns
    -------
    dict
        ``{"rows": n, "unscorable": k, "errors": e, "seconds": s}``. An answer the detector raised on is written with
        ``score`` and ``label`` null and ``error`` (the exception's type and message), counted in ``errors`` and named
        (line, id) in a :class:`DetectorRowWarning`; the other answers are scored (:func:`detect_each`).

    Raises
    ------
    ValueError
        On invalid JSON, a missing or non-string answer, contexts that are not a list of strings or a string, or an
        id that is not a string or a whole number or that an earlier row has; the message names the file, line
        number and field.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "in.jsonl").write_text(json.dumps(
    ...     {"id": "a", "answer": "It opened in 1887.", "contexts": ["It opened in 1889."]}) + "\\n")
    >>> score_jsonl(d / "in.jsonl", d / "out.jsonl", progress=False)["rows"]
    1
    >>> json.loads((d / "out.jsonl").read_text())["claims"][0]["reason"]
    'number 1887 not in context'
    """
    from workbench._files import same_file, written_atomically

    if same_file(in_path, out_path):
        raise ParameterError(f"{out_path}: is the input file {in_path}; write the scores to another file")
    rows = _read_rows(in_path)
    _check_ids(rows, in_path)
    det = detector if detector is not None else sys.modules[__name__]
    name, version = str(det.DETECTOR_NAME), str(det.DETECTOR_VERSION)
    t0 = time.perf_counter()
    unscorable = 0
    failed: list[tuple[str, BaseException]] = []
    bar = _progress(range(len(rows)), progress, total=len(rows))
    ticks = iter(bar)
    # replaced in one rename at the end: an interrupted run leaves the previous scores, never a part that looks whole
    with written_atomically(out_path, into_special=True) as out:
        for at in range(0, len(rows), _SCORE_CHUNK):
            chunk = rows[at:at + _SCORE_CHUNK]
            for row, d in zip(chunk, detect_each(det, chunk, threshold=threshold)):
                rec: dict[str, Any] = {"id": row.get("id")}
                if isinstance(d, BaseException):  # the answer the detector raised on: named, with the error
                    failed.append((f"line {row['_line']}" + (f" (id {row['id']!r})" if row.get("id") is not None
                                                             else ""), d))
                    rec.update(score=None, label=None, claims=[], unscorable=False, error=describe_error(d))
                else:
                    unscorable += d.unscorable
                    rec.update(score=d.score, label=d.label, claims=[
                        {"text": c.text, "support": c.support, "evidence": c.evidence, "reason": c.reason}
                        for c in d.claims], unscorable=d.unscorable)
                rec.update(detector=name, detector_version=version)
                line = json.dumps(rec, ensure_ascii=False)
                try:
                    line.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate read from a "\ud800" escape: written escaped, as read
                    line = json.dumps(rec)
                out.write(line + "\n")
                next(ticks, None)
    warn_failed_rows(failed, f"detector {name} {version}", stacklevel=2)
    return {"rows": len(rows), "unscorable": unscorable, "errors": len(failed), "seconds": time.perf_counter() - t0}


def _check_ids(rows: list[dict], path: str | Path) -> None:
    """Refuse an ``id`` of a row of ``path`` that no reader can join the scores back on: one that is not a string or a
    whole number (``NaN`` and ``1e400``, which Python's JSON reads as infinity, were written back as ``NaN`` and
    ``Infinity``, which are not JSON; an object), or one that a row before had already. A row without an id is kept.

    >>> _check_ids([{"id": "a", "_line": 1}, {"id": 2, "_line": 2}, {"_line": 3}], "in.jsonl")
    >>> _check_ids([{"id": "a", "_line": 1}, {"id": "a", "_line": 4}], "in.jsonl")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: in.jsonl:4: id 'a' is the id of line 1 too; the scores of the two could not be told apart
    """
    seen: dict[Any, int] = {}
    for row in rows:
        if "id" not in row or row["id"] is None:
            continue
        rid = row["id"]
        if isinstance(rid, bool) or not isinstance(rid, (str, int)):
            shown = str(rid)[:60] if isinstance(rid, float) else type(rid).__name__
            raise ParameterError(f"{path}:{row['_line']}: field 'id' must be a string or a whole number, got {shown}")
        key = (type(rid), rid)
        if key in seen:
            raise ParameterError(f"{path}:{row['_line']}: id {rid!r} is the id of line {seen[key]} too; the scores of "
                                 f"the two could not be told apart")
        seen[key] = row["_line"]


#: Answers :func:`score_jsonl` hands the detector at a time (a model tier batches its inferences within them).
_SCORE_CHUNK = 256


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def benchmark_rows(rows: Sequence[Mapping], *, detector=None, reps: int = 1000, l2: float = 5.0, seed: int = 0):
    """Quality of a detector on labelled rows, per source, with bootstrap intervals and next to two baselines.

    Parameters
    ----------
    rows : sequence of mapping
        ``answer, contexts, question, label (0/1), source``.
    detector : object with ``detect_batch``, optional
        Default: this module (the offline detector); e.g. an :class:`workbench.eval.nli.NLIDetector`.
    reps : int
        Bootstrap resamples for the 95% intervals.
    l2 : float
        Penalty of the leave-one-source-out refits.
    seed : int
        Bootstrap seed.

    Returns
    -------
    (polars.DataFrame, polars.DataFrame)
        Per source then ``"overall"``: ``n, unscorable, auroc, brier`` of the detector as shipped, each with
        ``_lo``/``_hi`` bounds; ``loso_auroc``/``loso_brier`` (+ bounds): the offline detector's features refitted on
        every *other* source of the rows and scored on this one (None with fewer than two sources); the baselines
        ``absent_word_auroc`` (share of answer words absent from the contexts) and ``length_auroc`` (+ bounds);
        ``answers_per_s``. Unscorable answers enter the metrics with probability 0.5. Second: the reliability table
        of the held-out probabilities (LOSO when there are two sources or more, else the shipped ones).

    Examples
    --------
    >>> rows = [dict(answer=a, contexts=["It opened in 1889 in Paris."], label=l, source="x")
    ...         for a, l in [("It opened in 1889.", 0), ("It opened in 1925 in Rome.", 1)] * 5]
    >>> table, rel = benchmark_rows(rows, reps=50)
    >>> table.select("source", "n", "auroc", "loso_auroc").rows()
    [('x', 10, 1.0, None), ('overall', 10, 1.0, None)]
    """
    import polars as pl

    from workbench.eval import fit as F

    if not rows:
        raise ParameterError("benchmark_rows: no labelled rows to measure on")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ParameterError(f"benchmark_rows: reps must be a whole number >= 1 (bootstrap resamples), got {reps!r}")
    det = detector if detector is not None else sys.modules[__name__]
    t0 = time.perf_counter()
    dets = list(det.detect_batch(rows))
    rate = len(rows) / max(time.perf_counter() - t0, 1e-9)
    y = np.array([r["label"] for r in rows], dtype=float)
    probs = np.array([0.5 if d.unscorable else d.score for d in dets], dtype=float)
    unsc = np.array([d.unscorable for d in dets])
    src = np.array([str(r.get("source", "")) for r in rows])
    names = sorted(set(src.tolist()))
    base = F.baseline_scores(rows)
    loso = None
    if len(names) >= 2:
        coef, _ = _weights()
        active = [j for j, c in enumerate(coef) if c > 0]
        # an unscorable answer (no context, no claim) has no features to fit on: left out of every fit and, as in
        # the shipped figures, scored 0.5
        loso = F.loso_predictions(feature_matrix(rows), y, src, l2=l2, active=active, scorable=~unsc)
    out = []
    for name in [*names, "overall"]:
        m = np.ones(len(rows), bool) if name == "overall" else src == name
        rec: dict = {"source": name, "n": int(m.sum()), "unscorable": int(unsc[m].sum())}
        two = 0 < y[m].sum() < m.sum()
        for key, score, metric in [("auroc", probs, auroc), ("brier", probs, brier_score),
                                   ("loso_auroc", loso, auroc), ("loso_brier", loso, brier_score),
                                   ("absent_word", base["absent_word_share"], auroc),
                                   ("length", base["answer_length"], auroc)]:
            lo_k, hi_k = (f"{key}_lo", f"{key}_hi") if key in ("auroc", "brier") or key.startswith("loso") \
                else (f"{key}_lo", f"{key}_hi")
            main_k = key if key in ("auroc", "brier") or key.startswith("loso") else f"{key}_auroc"
            # AUROC needs both labels among the rows; the Brier score only some rows.
            if score is None or not (two if metric is auroc else m.any()):
                rec[main_k] = rec[lo_k] = rec[hi_k] = None if score is None else float("nan")
                continue
            est, lo, hi = F.bootstrap_interval(y[m], score[m], metric, reps=reps, seed=seed,
                                               both_labels=metric is auroc)
            rec[main_k], rec[lo_k], rec[hi_k] = est, lo, hi
        rec["answers_per_s"] = rate
        out.append(rec)
    rel = F.reliability_table(y, loso if loso is not None else probs)
    return pl.DataFrame(out), rel


def format_benchmark(table, rel=None) -> str:
    """The tables of :func:`benchmark_rows` as readable text: one block per source, intervals in brackets.

    Examples
    --------
    >>> rows = [dict(answer=a, contexts=["It opened in 1889 in Paris."], label=l, source="x")
    ...         for a, l in [("It opened in 1889.", 0), ("It opened in 1925 in Rome.", 1)] * 5]
    >>> print(format_benchmark(benchmark_rows(rows, reps=20)[0]).splitlines()[1].split())
    ['x', 'n=10', 'detector', 'AUROC', '1.000', '[1.000,', '1.000]', 'Brier', ...]
    """

    def ci(r: dict, k: str, lo: str, hi: str) -> str:
        v = r.get(k)
        if v is None:
            return "n/a"
        if v != v:  # NaN: not measurable on these rows
            return "n/a (one label only)" if "auroc" in k else "n/a"
        return f"{v:.3f} [{r[lo]:.3f}, {r[hi]:.3f}]"

    lines = ["source        n      figures [95% bootstrap interval]"]
    for r in table.iter_rows(named=True):
        name = r["source"] or "(no source)"
        lines.append(f"{name:12s} n={r['n']:<5d} detector AUROC {ci(r, 'auroc', 'auroc_lo', 'auroc_hi')}  "
                     f"Brier {ci(r, 'brier', 'brier_lo', 'brier_hi')}  unscorable {r['unscorable']}")
        if r.get("loso_auroc") is not None:
            lines.append(f"{'':20s} LOSO     AUROC {ci(r, 'loso_auroc', 'loso_auroc_lo', 'loso_auroc_hi')}  "
                         f"Brier {ci(r, 'loso_brier', 'loso_brier_lo', 'loso_brier_hi')}  "
                         + ("(each source's held-out scores, pooled)" if r["source"] == "overall"
                            else "(refitted without this source)"))
        lines.append(f"{'':20s} baselines: absent-word share AUROC "
                     f"{ci(r, 'absent_word_auroc', 'absent_word_lo', 'absent_word_hi')}  answer length AUROC "
                     f"{ci(r, 'length_auroc', 'length_lo', 'length_hi')}")
    if rel is not None:
        lines.append("reliability: bin  n  mean predicted  observed rate [95% Wilson]")
        for r in rel.iter_rows(named=True):
            if r["bin"] == "ECE":
                lines.append(f"  expected calibration error {r['mean_predicted']:.3f} over {r['n']} answers")
            else:
                lines.append(f"  {r['bin']}  {r['n']:5d}  {r['mean_predicted']:.3f}  {r['observed_rate']:.3f} "
                             f"[{r['observed_lo']:.3f}, {r['observed_hi']:.3f}]")
    return "\n".join(lines)


def benchmark_jsonl(path: str | Path, *, threshold: float = THRESHOLD, detector=None, reps: int = 1000):
    """Detector quality and speed on a labelled JSONL file: :func:`benchmark_rows` on its validated rows.

    Parameters
    ----------
    path : str or Path
        JSONL with ``answer, contexts, question, label (0/1), source``.
    threshold : float, default THRESHOLD
        Unused by the metrics (AUROC and Brier do not depend on it); kept for the call's stability.
    detector : object with ``detect_batch``, optional
        Default: the offline detector.
    reps : int
        Bootstrap resamples.

    Returns
    -------
    (polars.DataFrame, polars.DataFrame)
        The per-source table and the reliability table (see :func:`benchmark_rows`).

    Raises
    ------
    ParameterError
        A bad line: the message names the file, line and field.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "dev.jsonl"
    >>> rows = [dict(answer=a, contexts=["It opened in 1889 in Paris."], label=l, source="x")
    ...         for a, l in [("It opened in 1889.", 0), ("It opened in 1925 in Rome.", 1)]]
    >>> _ = p.write_text("".join(json.dumps(r) + "\\n" for r in rows))
    >>> benchmark_jsonl(p, reps=20)[0].select("source", "n", "auroc").rows()
    [('x', 2, 1.0), ('overall', 2, 1.0)]
    """
    rows = _read_rows(path, labelled=True)
    if not rows:
        raise ParameterError(f"{path}: no labelled rows (the file is empty or holds only blank lines)")
    return benchmark_rows(rows, detector=detector, reps=reps)


# --------------------------------------------------------------------------------------------------
# Features for fitting (the fits themselves: workbench.eval.fit; benchmarks/bench_detector.py --fit)
# --------------------------------------------------------------------------------------------------


def feature_matrix(rows: Iterable[Mapping]) -> np.ndarray:
    """The detector's answer-level features (columns in :data:`FEATURES` order), one row per answer.

    Unscorable answers (empty, or without context) get all-zero features. Used to fit and validate the weights
    (:mod:`workbench.eval.fit`, ``benchmarks/bench_detector.py --fit``).

    Parameters
    ----------
    rows : iterable of mapping
        With ``answer``, ``contexts`` and optionally ``question``.

    Returns
    -------
    numpy.ndarray of shape (n, len(FEATURES))

    Examples
    --------
    >>> x = feature_matrix([{"answer": "It opened in 1887.", "contexts": ["It opened in 1889."]}])
    >>> x.shape == (1, len(FEATURES)), float(x[0, FEATURES.index("unsupported_numbers")]) > 0
    (True, True)
    """
    feats = []
    for r in rows:
        stats, _ = _analyse(r["answer"], r["contexts"], r.get("question"), align=True)
        feats.append(_features(stats) if stats else [0.0] * len(FEATURES))
    return np.asarray(feats, dtype=float).reshape(-1, len(FEATURES))
