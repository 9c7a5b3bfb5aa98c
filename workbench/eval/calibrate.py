"""The offline detector calibrated on a team's own labelled answers.

The shipped probabilities of the ``support`` detector are calibrated on its development sources. On traffic it was not
fitted on they rank answers as well but say the wrong probability: on each development source left out of the fit, the
expected calibration error is 0.14-0.21 (``benchmarks/bench_detector.py --quality``), so a "hallucination rate" read at
the 0.5 threshold is off by as much. A team that labels some of its own answers fixes that: :func:`fit_calibration`
fits Platt scaling of the detector's log-odds, ``p' = sigmoid(scale * logit(p) + shift)``, on those labels. The mapping
is increasing, so the order of the answers (AUROC) and every claim with its evidence stay as they are; only the
probability and the label at the threshold change. Measured on the development sources: 100 labelled answers of a
source left out of the fit bring its calibration error from 0.21 to 0.05 (BEGIN), 0.14 to 0.09 (HaluEval-QA) and 0.21
to 0.12 (contrastive), on the answers not used to calibrate (``bench_detector.py --quality``). On the demo's 1,238
reviewed support answers: 0.302 to 0.011 (5-fold cross-validated).

::

    workbench hallucination calibrate labelled.jsonl --out calibration.json    # fit, cross-validated report, write
    workbench hallucination calibrate --db wb.duckdb --out calibration.json    # ... on the reviewers' labels in it
    workbench eval --db wb.duckdb --detector support:calibration.json          # score with it
    # or in workbench.toml, for `workbench eval`, evaluate() and the hallucination metrics and reports by default:
    [detector]
    calibration = "calibration.json"

The calibrated detector's version is the detector's own plus a hash of the calibration (``2.8.1+cal.1a2b3c4d``), so
its scores are never mixed with the uncalibrated ones, and a new calibration scores the answers again. A calibration is
valid for the detector version it was fitted on: another version refuses it (fit again).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.detector_config import EPS, Calibration, read_calibration, write_calibration
from workbench.errors import ParameterError, ParameterTypeError, check_int
from workbench.schema import DETECTOR_NAME, DETECTOR_VERSION

if TYPE_CHECKING:
    import numpy as np

    from workbench.eval.detector import Detection

__all__ = ["Calibration", "CalibratedDetector", "fit_calibration", "fit_platt", "labelled_answers", "load_calibrated",
           "read_calibration", "write_calibration"]

#: Below this many labelled answers the fit is noisy (measured: 25 labels left a calibration error 0.01-0.03 above
#: that of 100): :func:`fit_calibration` says so in its report.
FEW_ROWS = 50


def _logit(p: "np.ndarray") -> "np.ndarray":
    import numpy as np

    q = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(q / (1 - q))


def _sigmoid(z: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


class CalibratedDetector:
    """The offline detector with a :class:`Calibration` applied: a detector object (``DETECTOR_NAME``,
    ``DETECTOR_VERSION``, ``THRESHOLD``, ``detect``, ``detect_batch``) for :func:`workbench.evaluate`,
    ``workbench eval`` and ``workbench hallucination score|benchmark``.

    Examples
    --------
    >>> from workbench.eval import detector as lexical
    >>> c = Calibration(scale=1.0, shift=-2.0, detector_version=lexical.DETECTOR_VERSION, rows=100, hallucinated=30)
    >>> det = CalibratedDetector(c)
    >>> det.DETECTOR_NAME, det.DETECTOR_VERSION == lexical.DETECTOR_VERSION + "+" + c.tag
    ('support', True)
    >>> ctx = ["The Eiffel Tower was completed in 1889 in Paris."]
    >>> d, base = det.detect("It was completed in 1887.", ctx), lexical.detect("It was completed in 1887.", ctx)
    >>> d.score < base.score, d.claims == base.claims
    (True, True)
    """

    DETECTOR_NAME = DETECTOR_NAME

    def __init__(self, calibration: Calibration, where: str = "calibration") -> None:
        from workbench.eval import detector as lexical

        self.calibration = calibration.check(where)
        self._lexical = lexical

    @property
    def DETECTOR_VERSION(self) -> str:  # noqa: N802 (the detector protocol's name)
        return self.calibration.version

    @property
    def THRESHOLD(self) -> float:  # noqa: N802 (the detector protocol's name)
        return self._lexical.THRESHOLD

    def _calibrated(self, d: "Detection", threshold: float) -> "Detection":
        if d.unscorable or d.score is None:
            return d
        p = self.calibration.apply(d.score)
        return self._lexical.Detection(p, int(p >= threshold), d.claims, False)

    def detect(self, answer: str, contexts: Sequence[str] | str, question: str | None = None, *,
               threshold: float | None = None) -> "Detection":
        """:func:`workbench.eval.detector.detect`, its probability calibrated (``threshold``: default
        :data:`workbench.eval.detector.THRESHOLD`)."""
        threshold = self.THRESHOLD if threshold is None else threshold
        return self._calibrated(self._lexical.detect(answer, contexts, question, threshold=threshold), threshold)

    def detect_batch(self, rows: Iterable[Mapping], *, threshold: float | None = None,
                     progress: bool = False) -> Iterator["Detection"]:
        """:func:`workbench.eval.detector.detect_batch`, each probability calibrated."""
        threshold = self.THRESHOLD if threshold is None else threshold
        for d in self._lexical.detect_batch(rows, threshold=threshold, progress=progress):
            yield self._calibrated(d, threshold)


def load_calibrated(path: str | Path) -> CalibratedDetector:
    """The offline detector with the calibration of the file ``path`` (:func:`read_calibration`, then checked against
    the installed detector version).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> c = Calibration(scale=1.0, shift=-1.0, detector_version=DETECTOR_VERSION, rows=100, hallucinated=20)
    >>> det = load_calibrated(write_calibration(c, pathlib.Path(tempfile.mkdtemp()) / "cal.json"))
    >>> det.DETECTOR_VERSION == f"{DETECTOR_VERSION}+{c.tag}"
    True
    """
    return CalibratedDetector(read_calibration(path), where=str(Path(path).expanduser()))


def fit_platt(z: "np.ndarray", y: "np.ndarray", w: "np.ndarray | None" = None) -> tuple[float, float]:
    """Platt scaling: ``(scale, shift)`` of the logistic fit of labels ``y`` on log-odds ``z`` (row weights ``w``),
    unpenalised. The one fit behind :func:`fit_calibration` and the benchmark's recalibration figures.

    Where the scores separate the labels (every answer labelled 1 scored at least as high as every answer labelled
    0, as a small set the detector ranks perfectly can be) the unpenalised fit has no optimum: its scale grows with
    every step and the calibrated probabilities become exactly 0 and 1. There the fit is on Platt's (1999) targets
    instead of the bare labels: a label 1 counts as ``(N1 + 1) / (N1 + 2)``, a label 0 as ``1 / (N0 + 2)``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0] * 2); y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 1], float)
    >>> scale, shift = fit_platt(z, y); round(scale, 4), abs(round(shift, 4))
    (1.012, 0.0)
    >>> z = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]); y = np.array([0, 0, 0, 1, 1, 1.0])  # separated
    >>> scale, shift = fit_platt(z, y); round(scale, 4), abs(round(shift, 4))  # on targets 1/5 and 4/5
    (0.6214, 0.0)
    """
    import numpy as np

    from workbench.eval import fit as F

    z, y = np.asarray(z, float), np.asarray(y, float)
    ones, zeros = z[y == 1], z[y != 1]
    if not len(ones) or not len(zeros) or ones.min() >= zeros.max() or ones.max() <= zeros.min():
        n1, n0 = len(ones), len(zeros)
        y = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
    (scale,), shift = F.fit_logistic(z[:, None], y, w, l2=0.0)
    return float(scale), float(shift)


def _folds(y: "np.ndarray", k: int, seed: int) -> "np.ndarray":
    """A fold number per row, each label spread evenly over the folds (stratified), shuffled with ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def fit_calibration(rows: Sequence[Mapping], *, folds: int = 5, seed: int = 0, progress: bool = False) -> Calibration:
    """Fit the offline detector's calibration on labelled answers of a team's own traffic.

    Parameters
    ----------
    rows : sequence of mapping
        ``answer, contexts, label`` (1 = hallucinated), optional ``question`` and ``source`` (sources weigh equally),
        as :func:`workbench.eval.detector.read_labelled` reads them. Unscorable answers (empty, or no context) are left
        out of the fit.
    folds : int
        Folds of the cross-validation that measures the calibration error before and after (stratified by label).
    seed : int
        Seed of the fold assignment.
    progress : bool
        A progress bar while the answers are scored.

    Returns
    -------
    Calibration
        With ``report``: ``ece_before``/``ece_after`` and ``brier_before``/``brier_after`` (``after`` cross-validated:
        each answer's probability from a calibration fitted without its fold; None with fewer than 2 answers of a
        label per fold), ``auroc`` of the detector on the labels, ``unscorable`` answers left out, and ``warning``
        when the rows are few.

    Raises
    ------
    ParameterError
        Fewer than two scorable answers of either label, or labels the detector's scores do not rank (AUROC at or
        below 0.5: calibrating would turn the scores around; check that 1 means hallucinated).

    Examples
    --------
    >>> ctx = ["The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall."]
    >>> rows = ([{"answer": "It was completed in 1889.", "contexts": ctx, "label": 0}] * 6
    ...         + [{"answer": "It was completed in 1887.", "contexts": ctx, "label": 1}] * 2
    ...         + [{"answer": "It was completed in 1887.", "contexts": ctx, "label": 0}] * 2)
    >>> c = fit_calibration(rows, folds=2)
    >>> c.rows, c.hallucinated, c.scale > 0
    (10, 2, True)
    >>> from workbench.eval.detector import detect
    >>> round(c.apply(detect("It was completed in 1887.", ctx).score), 3)  # 2 of its 4 answers, on Platt's targets
    0.425
    """
    import numpy as np

    from workbench import stats
    from workbench.eval import detector as lexical
    from workbench.eval import fit as F

    check_int("fit_calibration", "folds", folds, lo=2)
    check_int("fit_calibration", "seed", seed, lo=0)
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise ParameterTypeError(f"fit_calibration: rows must be a list of mappings with answer, contexts and label, "
                                 f"got {type(rows).__name__}")
    rows = list(rows)
    for i, row in enumerate(rows):
        lexical.check_row(row, f"fit_calibration: rows[{i}]", labelled=True)
    dets = list(lexical.detect_batch(rows, progress=progress))
    keep = [i for i, d in enumerate(dets) if not d.unscorable and d.score is not None]
    y = np.array([float(rows[i]["label"]) for i in keep])
    n1 = int(y.sum()) if len(y) else 0
    if n1 < 2 or len(y) - n1 < 2:
        raise ParameterError(f"fit_calibration: needs at least two scorable answers of each label, got {n1} labelled "
                             f"1 and {len(y) - n1} labelled 0 ({len(rows) - len(keep)} unscorable left out)")
    p = np.array([dets[i].score for i in keep])
    z = _logit(p)
    w = F.source_weights([str(rows[i].get("source", "")) for i in keep])
    auroc = float(stats.auroc(y, p))
    scale, shift = fit_platt(z, y, w)
    if auroc <= 0.5 or scale <= 0:
        raise ParameterError(f"fit_calibration: the detector's scores do not rank these labels (AUROC {auroc:.3f} on "
                             f"{len(y)} answers), so a calibration would turn them around; check that label 1 means "
                             "hallucinated")
    fold = _folds(y, folds, seed)
    after = np.full(len(y), np.nan)
    for f in range(folds):
        tr = fold != f
        if min(int(y[tr].sum()), int((1 - y[tr]).sum())) < 2:
            after = None
            break
        a, b = fit_platt(z[tr], y[tr], w[tr])
        after[~tr] = _sigmoid(max(a, 0.0) * z[~tr] + b)
    report: dict[str, Any] = {
        "auroc": round(auroc, 4), "unscorable": len(rows) - len(keep), "folds": folds,
        "ece_before": round(stats.expected_calibration_error(y, p), 4),
        "brier_before": round(stats.brier_score(y, p), 4),
        "ece_after": None if after is None else round(stats.expected_calibration_error(y, after), 4),
        "brier_after": None if after is None else round(stats.brier_score(y, after), 4),
    }
    if len(y) < FEW_ROWS:
        report["warning"] = (f"{len(y)} labelled answers: below {FEW_ROWS} the calibration is noisy; label more of "
                             "your traffic")
    return Calibration(scale=round(scale, 6), shift=round(shift, 6), detector_version=DETECTOR_VERSION,
                       rows=len(y), hallucinated=n1, report=report)



def labelled_answers(db: Any, *, reference: str = "human", version: str | None = None, where: Any = None,
                     traffic: str = "production") -> list[dict]:
    """The answers of a workbench database that ``reference`` labelled (reviewers' labels brought in by
    :func:`workbench.import_labels`), as :func:`fit_calibration` takes them: ``call_id, feature, answer, contexts,
    question, label`` (1 = hallucinated).

    Parameters
    ----------
    db : Workbench or path
    reference : str
        The evaluator whose labels are the truth (default ``human``).
    version : str, optional
        One version of its labels; default every version, the label written last where an answer has several.
    where : mapping or list of "col=value", optional
        Filter on the answers joined to their calls (``feature``, ``model``, ``prompt_version``...).
    traffic : str
        ``"production"`` (default): answers of logged calls, as the metrics count them; ``"benchmark"``: labelled test
        sets (no call, a dataset as their source); ``"all"``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('a', '2026-01-01', 'chat', "
    ...     "'ok'); insert into answers (call_id, contexts, answer) values ('a', ['It opened in 1889.'], 'In 1887.')")
    >>> _ = wb.import_labels(db, [{"call_id": "a", "label": 1}])
    >>> [(r["call_id"], r["label"]) for r in labelled_answers(db)]
    [('a', 1)]
    """
    import ibis

    from workbench.db import as_workbench, scope
    from workbench.eval.run import answers_view
    from workbench.metrics.hallucination import TRAFFIC, benchmark_answer
    from workbench.schema import HALLUCINATED, LABEL_METRIC, SUPPORTED

    if traffic not in TRAFFIC:
        raise ParameterError(f"traffic: expected one of {', '.join(TRAFFIC)}, got {traffic!r}")
    db = as_workbench(db)
    e = db.evals
    e = e.filter(e.evaluator == reference, e.metric == LABEL_METRIC, e.repeat.fill_null(0) == 0,
                 e.label.isin([HALLUCINATED, SUPPORTED]))
    if version is not None:
        e = e.filter(e.evaluator_version == version)
    # the label written last per answer (a later review of the same answer overrides an earlier one)
    e = e.mutate(_last=ibis.row_number().over(group_by=e.call_id, order_by=[e.ts.desc(), e.evaluator_version.desc()]))
    e = e.filter(e._last == 0).select(_call_id=e.call_id, _label=e.label)
    a = scope(answers_view(db), time=None, where=where)
    if traffic != "all":
        benchmark = benchmark_answer(a.call_ts, a.source)
        a = a.filter(benchmark if traffic == "benchmark" else ~benchmark)
    j = a.join(e, a.call_id == e._call_id)
    df = j.select("call_id", "feature", "answer", "contexts", "question", "_label").order_by("call_id").to_polars()
    return [{"call_id": r["call_id"], "feature": r["feature"], "answer": r["answer"] or "",
             "contexts": list(r["contexts"] or []), "question": r["question"],
             "label": int(r["_label"] == HALLUCINATED)} for r in df.iter_rows(named=True)]

