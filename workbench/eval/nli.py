"""The model tier of the hallucination detector: a local NLI / cross-encoder / consistency model run with onnxruntime.

``--detector nli:PATH`` (CLI ``workbench eval`` and ``workbench hallucination score|benchmark``) or ``[detector]``
in ``workbench.toml`` (``model = "PATH"``) selects it. Nothing is downloaded: ``PATH`` is a folder the user exported
themselves, laid out as::

    PATH/                 # "~" is the home folder
      model.onnx          # or onnx/model.onnx (the layout of exported model repositories)
                          # inputs: input_ids, attention_mask (and token_type_ids if the model takes them), int64
                          # or int32; output "logits" (else the first output): shape (batch, n_labels) -- or
                          # (batch, 1): one "supported" logit
      tokenizer.json      # a `tokenizers` (Hugging Face fast tokenizer) file, pair-encoding (premise, hypothesis)
      config.json         # optional: {"id2label": {"0": "contradiction", "1": "neutral", "2": "entailment"}}
                          # (the Hugging Face export writes it); the one label naming support ("entailment",
                          # "consistent", "supported", "faithful"; never a negated one such as "not_entailment" or
                          # "inconsistent") is the support probability. Without names (none, or only "LABEL_0"...):
                          # 1 column -> sigmoid, 2 -> column 1. Its max_position_embeddings caps the pair length.
      calibration.json    # optional, written by `workbench hallucination calibrate`: how the model's evidence and
                          # the lexical detector combine into one calibrated probability

Each answer is split into claims as the offline detector does; every (context passage, claim) pair is scored in
batches on CPU, and a claim's support is its best passage's entailment probability. Pair scores are cached by content
hash (SHA-1 of premise and hypothesis), so passages and claims repeated across answers are scored once. Where both
exist, the answer's probability combines the lexical detector's log-odds and the model's worst-claim non-support
through a two-weight logistic calibration fitted on labelled rows (:meth:`NLIDetector.fit_calibration`); before it
is fitted the two probabilities are averaged (uncalibrated: the benchmark's Brier score shows it).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from workbench.errors import ConfigError, MissingFileError, ParameterError
from workbench.eval import detector as lexical
from workbench.detector_config import (MODEL_CALIBRATION, detector_choice, model_calibration, model_file,
                                       model_hash, model_version)

__all__ = ["NLIDetector", "load_detector", "SUPPORT_LABELS"]

#: Beginnings of a word of a label name that mean "the hypothesis is supported by the premise".
SUPPORT_LABELS = ("entail", "consistent", "support", "faithful")
#: Words of a label name that negate it ("not_entailment", "non-entailment", "no support").
_NEGATING = frozenset({"not", "non", "no"})
#: Model families whose position ids start after the padding index: two positions fewer for tokens.
_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart", "xmod"})


def _names_support(label: str) -> bool:
    """Whether a label name means support: a word of it begins with one of :data:`SUPPORT_LABELS` and none negates it.

    A prefix glued to the word is a negation too: "inconsistent", "unsupported", "unfaithful" begin otherwise.

    >>> [_names_support(x) for x in ("ENTAILMENT", "not_entailment", "inconsistent", "factually-consistent", "LABEL_1")]
    [True, False, False, True, False]
    """
    words = [w for w in "".join(c if c.isalpha() else " " for c in str(label).lower()).split()]
    return (any(w.startswith(SUPPORT_LABELS) for w in words)
            and not any(w in _NEGATING for w in words))


def _generic(label: str) -> bool:
    """A label with no name, as exports write them when the model was trained without: "LABEL_0", "label_1"."""
    return str(label).upper().startswith("LABEL_") and str(label)[6:].isdigit()


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class NLIDetector:
    """A detector object (``DETECTOR_NAME``, ``DETECTOR_VERSION``, ``THRESHOLD``, ``detect_batch``) backed by a
    local ONNX model.

    Parameters
    ----------
    path : str or Path
        The model folder (layout in the module docstring).
    batch_size : int
        Pairs per onnxruntime call.
    max_length : int
        Tokens per pair (truncation, longest first).
    max_passage_words : int
        Passages longer than this are cut into windows of whole sentences of about this size.
    threads : int
        onnxruntime intra-op threads (1: one core, like the offline detector).

    Raises
    ------
    MissingFileError
        The folder, ``model.onnx`` or ``tokenizer.json`` is missing.
    ConfigError
        onnxruntime or tokenizers is not installed (``pip install 'workbench[nli]'``), or the model's outputs cannot
        be read as support probabilities.

    Examples
    --------
    >>> NLIDetector("/no/such/folder")
    Traceback (most recent call last):
    ...
    workbench.errors.MissingFileError: nli: model folder /no/such/folder does not exist
    """

    DETECTOR_NAME = "nli"
    THRESHOLD = lexical.THRESHOLD

    def __init__(self, path: str | Path, *, batch_size: int = 32, max_length: int = 256,
                 max_passage_words: int = 200, threads: int = 1) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise MissingFileError(f"nli: model folder {self.path} does not exist")
        model, tok = model_file(self.path), self.path / "tokenizer.json"
        for f in (model, tok):
            if not f.is_file():
                raise MissingFileError(f"nli: {f} is missing (expected model.onnx (or onnx/model.onnx) and "
                                       f"tokenizer.json in {self.path})")
        cfg_file = self.path / "config.json"
        self.config: dict = {}
        if cfg_file.is_file():
            try:
                self.config = json.loads(cfg_file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(f"nli: {cfg_file} is not JSON: {exc}") from None
            if not isinstance(self.config, dict):
                raise ConfigError(f"nli: {cfg_file}: expected a JSON object, got {type(self.config).__name__}")
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - the extra is installed in the project env
            raise ConfigError(f"nli: {exc.name} is not installed; pip install 'workbench[nli]'") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds for a file that is no model
            raise ConfigError(f"nli: {model} cannot be loaded as an ONNX model: {str(exc).splitlines()[0][:200]}") from None
        # Each input fed in the integer type the graph declares (exports write int64; some int32).
        self.inputs = {i.name: np.int32 if i.type == "tensor(int32)" else np.int64 for i in self.session.get_inputs()}
        unknown = set(self.inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ConfigError(f"nli: {model} takes inputs {sorted(unknown)}; expected input_ids, attention_mask "
                              "and optionally token_type_ids")
        outputs = {o.name: o for o in self.session.get_outputs()}
        self.output = "logits" if "logits" in outputs else next(iter(outputs))
        try:
            self.tokenizer = Tokenizer.from_file(str(tok))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for a file that is no tokenizer
            raise ConfigError(f"nli: {tok} cannot be loaded as a tokenizer: {str(exc).splitlines()[0][:200]}") from None
        # A pair never longer than the model has positions for (an index error inside onnxruntime otherwise).
        positions = self.config.get("max_position_embeddings")
        if isinstance(positions, int) and positions > 0:
            if self.config.get("model_type") in _OFFSET_POSITIONS:
                positions -= 2
            max_length = min(max_length, positions)
        self.tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
        padding = self.tokenizer.padding  # the tokenizer file's own padding token, else the usual names
        if padding is not None:
            self.tokenizer.enable_padding(pad_id=padding["pad_id"], pad_token=padding["pad_token"])
        else:
            for name in ("[PAD]", "<pad>"):
                if self.tokenizer.token_to_id(name) is not None:
                    self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(name), pad_token=name)
                    break
            else:
                self.tokenizer.enable_padding(pad_id=0)
        self.batch_size = int(batch_size)
        self.max_passage_words = int(max_passage_words)
        # the model, tokenizer and config files (which column is support, how long a pair may be) decide the scores
        self.model_hash = model_hash(self.path)
        self.support_index = self._support_index()
        shape = outputs[self.output].shape
        width = shape[-1] if shape and isinstance(shape[-1], int) else None
        if self.support_index is None and width is not None and width > 2:
            named = f" names none of them ({self.config['id2label']})" if self.config.get("id2label") else " is missing"
            raise ConfigError(f"nli: {model} gives {width} labels and the id2label of {self.path / 'config.json'}"
                              f"{named}: name the entailment label there")
        self.calibration: dict | None = model_calibration(self.path)
        self.cache: dict[str, float] = {}
        self.cache_hits = 0
        self.pairs_scored = 0

    # -- identity ----------------------------------------------------------------------------------------------------
    @property
    def DETECTOR_VERSION(self) -> str:  # noqa: N802 (the detector protocol's name)
        """The lexical detector's version, the model's content hash and its calibration (``uncal``, or a hash of the
        calibration's weights): :func:`workbench.detector_config.model_version`."""
        return model_version(self.model_hash, self.calibration)

    def _support_index(self) -> int | None:
        """The output column of support: the one label of ``id2label`` naming it; None when the labels have no names
        (the column rule of :meth:`_run` applies)."""
        labels = self.config.get("id2label") or {}
        where = self.path / "config.json"
        if not isinstance(labels, dict) or not all(re.fullmatch(r"[0-9]{1,4}", str(k)) for k in labels):
            raise ConfigError(f"nli: {where}: id2label must map output columns (0, 1, 2...) to label names, got "
                              f"{labels!r}"[:300])
        if not labels or all(_generic(v) for v in labels.values()):
            return None
        found = sorted(int(k) for k, v in labels.items() if _names_support(v))
        if not found:
            raise ConfigError(f"nli: {where}: no label of id2label {labels} names support (a word beginning with "
                              f"{', '.join(SUPPORT_LABELS)}, not negated)")
        if len(found) > 1:
            names = " and ".join(repr(labels.get(str(k), labels.get(k))) for k in found)
            raise ConfigError(f"nli: {where}: two labels name support ({names}); keep one in id2label")
        return found[0]

    # -- model -------------------------------------------------------------------------------------------------------
    def _run(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(pairs)
        rows = {"input_ids": lambda e: e.ids, "attention_mask": lambda e: e.attention_mask,
                "token_type_ids": lambda e: e.type_ids}
        feed = {name: np.array([rows[name](e) for e in enc], dtype=dtype) for name, dtype in self.inputs.items()}
        logits = np.asarray(self.session.run([self.output], feed)[0], dtype=float)
        if logits.ndim == 1:
            logits = logits[:, None]
        if logits.ndim != 2 or logits.shape[0] != len(pairs):  # a token-classification export: (batch, tokens, labels)
            raise ConfigError(f"nli: {self.path}: the model's output {self.output!r} has shape {logits.shape}; a pair "
                              f"classifier gives (pairs, labels), here ({len(pairs)}, n)")
        if not np.isfinite(logits).all():  # NaN would label every answer supported, silently
            raise ConfigError(f"nli: {self.path}: the model's output holds {int((~np.isfinite(logits)).sum())} value(s) "
                             f"that are not finite numbers (NaN or infinity)")
        if logits.shape[1] == 1:
            return 1.0 / (1.0 + np.exp(-logits[:, 0]))
        idx = self.support_index if self.support_index is not None else (1 if logits.shape[1] == 2 else None)
        if idx is None or idx >= logits.shape[1]:
            raise ConfigError(f"nli: {self.path}: the model gives {logits.shape[1]} labels; add a config.json with "
                              "id2label naming the entailment label")
        return _softmax(logits)[:, idx]

    def support(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Support probability of each (premise, hypothesis) pair; cached by content hash, scored in batches.

        Parameters
        ----------
        pairs : sequence of (str, str)

        Returns
        -------
        numpy.ndarray
        """
        keys = [hashlib.sha1(f"{p}\x00{h}".encode()).hexdigest() for p, h in pairs]
        todo = list(dict.fromkeys(k for k in keys if k not in self.cache))
        self.cache_hits += len(keys) - len(todo)
        if todo:
            by_key = dict(zip(keys, pairs))
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i:i + self.batch_size]
                for k, v in zip(chunk, self._run([by_key[k] for k in chunk])):
                    self.cache[k] = float(v)
            self.pairs_scored += len(todo)
        return np.array([self.cache[k] for k in keys], dtype=float)

    def _windows(self, contexts: Sequence[str]) -> list[str]:
        out = []
        for c in contexts:
            if not c.strip():
                continue
            if len(c.split()) <= self.max_passage_words:
                out.append(c.strip())
                continue
            cur: list[str] = []
            n = 0
            for s in lexical.split_sentences(c):
                cur.append(s)
                n += len(s.split())
                if n >= self.max_passage_words:
                    out.append(" ".join(cur))
                    cur, n = [], 0
            if cur:
                out.append(" ".join(cur))
        return out

    # -- detection ---------------------------------------------------------------------------------------------------
    def evidence(self, answer: str, contexts: Sequence[str] | str) -> tuple[list[float], list[str]]:
        """Per claim of ``answer``: the best passage's support probability and that passage."""
        ctx = [contexts] if isinstance(contexts, str) else list(contexts or [])
        passages = self._windows(ctx)
        claims = lexical.split_claims(answer)
        if not passages or not claims:
            return [], []
        probs = self.support([(p, c) for c in claims for p in passages]).reshape(len(claims), len(passages))
        best = probs.argmax(axis=1)
        return [float(probs[i, b]) for i, b in enumerate(best)], [passages[b] for b in best]

    def _combine(self, lex_p: float, worst: float) -> float:
        unsupported = 1.0 - worst
        if not self.calibration:
            return 0.5 * lex_p + 0.5 * unsupported
        c = self.calibration
        z = c["intercept"] + c["coef"][0] * _logit(lex_p) + c["coef"][1] * unsupported
        return 1.0 / (1.0 + math.exp(-z))

    def detect(self, answer: str, contexts: Sequence[str] | str, question: str | None = None, *,
               threshold: float = THRESHOLD) -> lexical.Detection:
        """Score one answer: the lexical detection, with each claim's support from the model and the combined score.

        Returns
        -------
        Detection
            ``score``: the combined probability; ``claims``: per claim the model's support probability, the best
            passage as evidence, and the lexical reason or ``"model support 0.12"`` when the model does not support it.
        """
        lex = lexical.detect(answer, contexts, question, threshold=threshold)
        if lex.unscorable:
            return lex
        sup, ev = self.evidence(answer, contexts)
        if len(sup) != len(lex.claims):  # both split the same way; guard anyway
            return lex
        p = self._combine(lex.score, min(sup))
        claims = tuple(
            lexical.Claim(c.text, round(s, 4), c.evidence or e,
                          c.reason or (f"model support {s:.2f}" if s < lexical.CLAIM_SUPPORT_MIN else None))
            for c, s, e in zip(lex.claims, sup, ev)
        )
        return lexical.Detection(p, int(p >= threshold), claims, False)

    def detect_batch(self, rows: Iterable[Mapping], *, threshold: float = THRESHOLD,
                     progress: bool = False) -> Iterator[lexical.Detection]:
        """Score many answers lazily (same protocol as :func:`workbench.eval.detector.detect_batch`)."""
        it = rows
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(rows, desc="detect nli", unit="answer", disable=None, file=sys.stderr)
        for r in it:
            yield self.detect(r["answer"], r["contexts"], r.get("question"), threshold=threshold)

    def calibration_features(self, rows: Sequence[Mapping]) -> np.ndarray:
        """(lexical log-odds, model worst-claim non-support) per row; unscorable rows get (0, 0.5)."""
        out = []
        for r in rows:
            lex = lexical.detect(r["answer"], r["contexts"], r.get("question"))
            if lex.unscorable:
                out.append((0.0, 0.5))
                continue
            sup, _ = self.evidence(r["answer"], r["contexts"])
            out.append((_logit(lex.score), 1.0 - (min(sup) if sup else 1.0)))
        return np.array(out, dtype=float).reshape(-1, 2)

    def fit_calibration(self, rows: Sequence[Mapping], *, save: bool = False) -> dict:
        """Fit how the lexical score and the model combine, on labelled rows (both weights kept non-negative).

        Parameters
        ----------
        rows : sequence of mapping
            ``answer, contexts, label`` (and ``source``: sources weigh equally).
        save : bool
            Also write ``calibration.json`` into the model folder.

        Returns
        -------
        dict
            ``{"coef": [lexical, model], "intercept": b, "rows": n}``; also applied to this detector.
        """
        from workbench.eval import fit as F

        y = np.array([r["label"] for r in rows], dtype=float)
        if not 0 < y.sum() < len(y):
            raise ParameterError("nli: fit_calibration needs both labels among the rows")
        x = self.calibration_features(rows)
        w = F.source_weights([str(r.get("source", "")) for r in rows])
        coef, b = F.fit_nonnegative(x, y, w, l2=0.01)
        self.calibration = {"coef": [round(float(c), 6) for c in coef], "intercept": round(float(b), 6),
                            "rows": len(rows), "detector_version": lexical.DETECTOR_VERSION}
        if save:
            (self.path / MODEL_CALIBRATION).write_text(json.dumps(self.calibration, indent=2) + "\n", encoding="utf-8")
        return self.calibration


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def load_detector(spec: str | None = None, *, config=None):
    """The detector named by ``spec``: ``None``/``"support"`` the offline detector; ``"support:FILE"`` the offline
    detector with a calibration fitted on labelled answers (:mod:`workbench.eval.calibrate`); ``"nli:PATH"`` the
    model tier.

    With ``spec`` None, ``[detector]`` of ``workbench.toml`` decides
    (:func:`workbench.detector_config.detector_choice`): ``model = "PATH"`` selects the model tier (optional
    ``batch_size``, ``max_length``), ``calibration = "FILE"`` the calibrated offline detector.

    Parameters
    ----------
    spec : str, optional
    config : path or Config, optional

    Returns
    -------
    module, CalibratedDetector or NLIDetector
        An object with ``DETECTOR_NAME``, ``DETECTOR_VERSION``, ``THRESHOLD`` and ``detect_batch``.

    Examples
    --------
    >>> load_detector("support").DETECTOR_NAME
    'support'
    >>> load_detector("nli:")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: detector 'nli:' needs a model folder: nli:PATH
    """
    from workbench.eval.calibrate import load_calibrated

    if spec is None:
        choice = detector_choice(config)
        if choice.kind == "nli":
            return NLIDetector(choice.model, **choice.options)
        return lexical if choice.calibration is None else load_calibrated(choice.calibration)
    name = spec.strip()
    if name in (lexical.DETECTOR_NAME, "offline", "detector"):
        return lexical
    for kind, what in ((lexical.DETECTOR_NAME, "calibration file"), ("nli", "model folder")):
        if name.startswith(kind + ":"):
            path = name[len(kind) + 1:].strip()
            if not path:
                raise ParameterError(f"detector {spec!r} needs a {what}: {kind}:PATH")
            return load_calibrated(path) if kind == lexical.DETECTOR_NAME else NLIDetector(path)
    raise ParameterError(f"unknown detector {spec!r}; expected {lexical.DETECTOR_NAME!r}, "
                         f"'{lexical.DETECTOR_NAME}:CALIBRATION.json' or 'nli:PATH'")
