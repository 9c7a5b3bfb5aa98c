"""Build ``datasets/halu_contrastive.jsonl``: a labelled contrastive set made from contexts already shipped.

Run from the repository root (deterministic: the same input and seed give the same file, byte for byte)::

    python datasets/build_contrastive.py                 # -> datasets/halu_contrastive.jsonl
    python datasets/build_contrastive.py --seed 11 --out /tmp/x.jsonl

How a row is made (the full recipe is also in datasets/README.md):

1. Passages: every distinct context passage of ``halu_dev.jsonl`` (HaluEval-QA knowledge, MIT; BEGIN knowledge,
   CC BY 4.0 / CDLA) with at least two sentences of 6-60 words. The row's contexts are the passage plus one or two
   distractor passages drawn from other rows (as a retriever would return them), shuffled.
2. A faithful answer (label 0) in one of four styles: ``extract`` (one or two sentences copied), ``compress``
   (sentences with parentheticals, leading adverbials and trailing clauses dropped, fused with "and"/";"),
   ``summary`` (a discourse opener such as "The passage says that" + a lower-cased sentence, a few words replaced by
   synonyms from a fixed list), ``dialogue`` (a chatty opener or closer around a compressed sentence).
3. Half of the rows (chosen at random) then get exactly one perturbation, and become label 1:
   ``entity`` (a capitalised name replaced by another name of the same passage, or of another passage when the
   passage has one name only), ``number`` (a number replaced by another number of the passage, or shifted),
   ``date`` (a year or month name changed), ``negation`` (a "not"/"never" inserted after an auxiliary, or removed),
   ``extrinsic`` (one sentence of an unrelated passage, with its first name swapped for a name of this passage,
   appended). A perturbation that cannot apply to the answer is replaced by the next kind in a fixed order; a row no
   kind applies to is dropped.

The set is a development set: the detector is fitted on it together with halu_dev (and judged leave-one-source-out),
so it must never be reported as unseen data.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][a-z]+)*")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20[0-4]\d)\b")
_MONTHS = "January February March April May June July August September October November December".split()
_AUX = re.compile(r"\b(is|was|are|were|has|had|have|can|will|would|could|does|did)\b(?! not\b)")
_NEG = re.compile(r"\b(is|was|are|were|has|had|have|can|will|would|could|does|did) not\b")
_SYNONYMS = {
    "began": "started", "begun": "started", "large": "big", "purchased": "bought", "located": "situated",
    "approximately": "about", "received": "got", "commenced": "started", "numerous": "many", "however": "but",
    "famous": "well-known", "popular": "widely liked", "small": "little", "biggest": "largest", "city": "town",
    "created": "made", "established": "set up", "founded": "set up", "died": "passed away", "film": "movie",
    "movies": "films", "author": "writer", "known": "recognised", "major": "important", "often": "frequently",
    "help": "assist", "helped": "assisted", "shows": "displays", "became": "turned into", "live": "reside",
}  # fmt: skip
_OPENERS = ["The passage says that", "According to the text,", "In short,", "To sum up,", "Put simply,"]
_CHAT_OPEN = ["Oh, I know that one!", "Interesting question.", "Sure.", "Yes,", "Well,"]
_CHAT_CLOSE = ["Pretty cool, right?", "Did you know that?", "I find that fascinating.", "What do you think?", ""]
_KINDS = ["entity", "number", "date", "negation", "extrinsic"]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text) if 6 <= len(s.split()) <= 60]


def _compress(s: str, rng: random.Random) -> str:
    out = re.sub(r"\s*\([^()]*\)", "", s)
    out = re.sub(r"^(?:In \d{4}|However|Additionally|Also|Later|Today|Currently),\s+", "", out)
    if rng.random() < 0.5:  # drop a trailing clause after the last comma when the rest is long enough
        head, sep, _ = out.rpartition(", ")
        if sep and len(head.split()) >= 6:
            out = head.rstrip(",;") + "."
    return out[0].upper() + out[1:] if out else s


def _synonyms(s: str, rng: random.Random) -> str:
    def sub(m: re.Match) -> str:
        w = m.group(0)
        rep = _SYNONYMS.get(w.lower())
        return rep if rep and rng.random() < 0.7 else w

    return re.sub(r"[A-Za-z]+", sub, s)


def _lower_first(s: str) -> str:
    first = s.split(" ", 1)[0]
    return s if first.isupper() or _NAME.match(s) and first not in ("The", "A", "An", "It", "In", "This") else s[0].lower() + s[1:]


def faithful(sents: list[str], rng: random.Random) -> tuple[str, str]:
    style = rng.choice(["extract", "compress", "summary", "dialogue"])
    k = 2 if len(sents) >= 2 and rng.random() < 0.5 else 1
    start = rng.randrange(0, len(sents) - k + 1)
    picked = sents[start:start + k]
    if style == "extract":
        return style, " ".join(picked)
    if style == "compress":
        parts = [_compress(s, rng) for s in picked]
        if len(parts) == 2 and rng.random() < 0.5:
            return style, parts[0].rstrip(".") + rng.choice([", and ", "; "]) + _lower_first(parts[1])
        return style, " ".join(parts)
    if style == "summary":
        body = " ".join(_synonyms(_compress(s, rng), rng) for s in picked)
        return style, f"{rng.choice(_OPENERS)} {_lower_first(body)}"
    body = _compress(picked[0], rng)
    return style, " ".join(p for p in (rng.choice(_CHAT_OPEN), body, rng.choice(_CHAT_CLOSE)) if p)


def _names(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(0) for m in _NAME.finditer(text) if m.group(0) not in _MONTHS))


def perturb(answer: str, passage: str, other: str, kind: str, rng: random.Random) -> str | None:
    """One perturbation of ``kind``, or None when it does not apply to this answer."""
    if kind == "entity":
        mine = [n for n in _names(answer) if n in passage]
        if not mine:
            return None
        target = rng.choice(mine)
        pool = [n for n in _names(passage) if n != target and n not in target and target not in n]
        if not pool:
            pool = [n for n in _names(other) if n not in passage]
        if not pool:
            return None
        return answer.replace(target, rng.choice(pool), 1)
    if kind == "number":
        nums = [m for m in _NUMBER.finditer(answer) if not _YEAR.fullmatch(m.group(0))]
        if not nums:
            return None
        m = rng.choice(nums)
        pool = [n for n in dict.fromkeys(_NUMBER.findall(passage)) if n != m.group(0) and not _YEAR.fullmatch(n)]
        if pool and rng.random() < 0.6:
            new = rng.choice(pool)
        else:
            v = float(m.group(0).replace(",", ""))
            new = str(int(v) + rng.choice([1, 2, 3, 5, 10])) if v == int(v) else f"{v * 1.5:g}"
        return answer[: m.start()] + new + answer[m.end():]
    if kind == "date":
        years = list(_YEAR.finditer(answer))
        if years:
            m = rng.choice(years)
            new = str(int(m.group(0)) + rng.choice([-3, -2, -1, 1, 2, 5, 10]))
            return answer[: m.start()] + new + answer[m.end():]
        months = [mo for mo in _MONTHS if re.search(rf"\b{mo}\b", answer)]
        if months:
            mo = rng.choice(months)
            return re.sub(rf"\b{mo}\b", rng.choice([x for x in _MONTHS if x != mo]), answer, count=1)
        return None
    if kind == "negation":
        m = _NEG.search(answer)
        if m:
            return answer[: m.start()] + m.group(1) + answer[m.end():]
        m = _AUX.search(answer)
        if m:
            return answer[: m.end()] + rng.choice([" not", " never"]) + answer[m.end():]
        return None
    if kind == "extrinsic":
        names = _names(passage)
        cands = [s for s in _sentences(other) if _names(s)]
        if not names or not cands:
            return None
        s = rng.choice(cands)
        s = s.replace(_names(s)[0], rng.choice(names), 1)
        return answer.rstrip() + " " + s
    raise ValueError(kind)


def build(dev: Path, seed: int = 7) -> list[dict]:
    rows = [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    passages: dict[str, str] = {}
    for r in rows:
        for c in r["contexts"]:
            if len(_sentences(c)) >= 2:
                passages.setdefault(c, r["source"])
    keys = list(passages)
    rng = random.Random(seed)
    out = []
    for i, passage in enumerate(keys):
        sents = _sentences(passage)
        distractors = rng.sample([k for k in keys if k != passage], rng.choice([1, 2]))
        other = rng.choice([k for k in keys if k != passage and k not in distractors])
        style, answer = faithful(sents, rng)
        label = int(rng.random() < 0.5)
        kind = None
        if label:
            first = rng.randrange(len(_KINDS))
            for kind in _KINDS[first:] + _KINDS[:first]:
                new = perturb(answer, passage, other, kind, rng)
                if new and new != answer:
                    answer = new
                    break
            else:
                continue
        contexts = [passage, *distractors]
        rng.shuffle(contexts)
        out.append({
            "id": f"contrastive_{i:04d}", "question": None, "contexts": contexts, "answer": answer, "label": label,
            "source": "contrastive", "task": style, "perturbation": kind, "passage_from": passages[passage],
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", default=str(ROOT / "datasets" / "halu_dev.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "datasets" / "halu_contrastive.jsonl"))
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rows = build(Path(a.dev), a.seed)
    with open(a.out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}: {len(rows)} rows, {sum(r['label'] for r in rows)} hallucinated")


if __name__ == "__main__":
    main()
