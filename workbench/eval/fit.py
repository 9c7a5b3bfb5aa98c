"""Fitting and validation of the hallucination detector: constrained logistic fits, leave-one-source-out (LOSO)
predictions, bootstrap intervals, the two trivial baselines and a reliability (calibration) table.

Validation that cannot flatter: every quality figure the benchmark prints comes with a bootstrap interval and next to
the two baselines a user would try first (the share of answer words absent from the contexts, and the answer length);
model and feature choices are judged on leave-one-source-out predictions (fit on every source but one, score that
one), never on the rows a model was fitted on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from workbench.errors import ParameterError
from workbench.stats import calibration_bins, expected_calibration_error

__all__ = [
    "fit_logistic",
    "fit_nonnegative",
    "fit_calibrated",
    "predict",
    "source_weights",
    "loso_predictions",
    "bootstrap_interval",
    "baseline_scores",
    "reliability_table",
]

_WORD = re.compile(r"\w+")


def fit_logistic(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, l2: float = 1.0, iters: int = 50
) -> tuple[np.ndarray, float]:
    """Weighted L2-penalised logistic regression by Newton's method (intercept unpenalised).

    Parameters
    ----------
    x : ndarray (n, k)
    y : ndarray (n,) of {0, 1}
    w : ndarray (n,), optional
        Row weights (rescaled to sum to n).
    l2 : float
        Penalty on the coefficients.
    iters : int
        Newton steps at most.

    Returns
    -------
    (ndarray, float)
        Coefficients and intercept.

    Examples
    --------
    >>> x = np.array([[0.0], [0.2], [0.8], [1.0]]); y = np.array([0, 0, 1, 1.0])
    >>> coef, b = fit_logistic(x, y, l2=1.0)
    >>> bool(coef[0] > 0), abs(round(float(b + coef[0] / 2), 6))   # symmetric data: the boundary sits at x = 0.5
    (True, 0.0)
    """
    n, k = x.shape
    w = np.ones(n) if w is None else np.asarray(w, float)
    w = w * n / w.sum()
    xa = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(k + 1)
    pen = np.full(k + 1, float(l2))
    pen[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xa @ beta, -500, 500)))
        g = xa.T @ (w * (p - y)) + pen * beta
        h = (xa * (w * p * (1 - p))[:, None]).T @ xa + np.diag(pen) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(h, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta[:-1], float(beta[-1])


def fit_nonnegative(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, l2: float = 5.0, active: Sequence[int] | None = None
) -> tuple[np.ndarray, float]:
    """Logistic fit whose coefficients are all >= 0 (every feature is built so that larger means less support).

    A feature that would take a negative weight fits a quirk of the training data, not evidence: it is dropped
    (weight 0) and the rest refitted, until every weight is non-negative.

    Parameters
    ----------
    x, y, w, l2
        As :func:`fit_logistic`.
    active : sequence of int, optional
        Columns allowed to take a weight (default all); the others get 0.

    Returns
    -------
    (ndarray, float)

    Examples
    --------
    >>> x = np.array([[0, 1], [0, 0], [1, 1], [1, 0.0]]); y = np.array([0, 0, 1, 1.0])
    >>> coef, _ = fit_nonnegative(x, y, l2=0.1)
    >>> bool(coef[0] > 0), float(coef[1])
    (True, 0.0)
    """
    act = list(range(x.shape[1])) if active is None else list(active)
    coef, intercept = np.zeros(0), float(np.log((y.mean() + 1e-9) / (1 - y.mean() + 1e-9)))
    while act:
        coef, intercept = fit_logistic(x[:, act], y, w, l2=l2)
        if (coef >= 0).all():
            break
        act = [a for a, c in zip(act, coef) if c >= 0]
    full = np.zeros(x.shape[1])
    if act:
        full[act] = coef
    return full, intercept


def fit_calibrated(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, l2: float = 5.0, active: Sequence[int] | None = None
) -> tuple[np.ndarray, float]:
    """Penalised non-negative fit for the direction, then Platt scaling of the linear score for calibration.

    Parameters
    ----------
    x, y, w, l2, active
        As :func:`fit_nonnegative`.

    Returns
    -------
    (ndarray, float)

    Examples
    --------
    >>> rng = np.random.default_rng(0); x = rng.random((400, 1)); y = (rng.random(400) < x[:, 0]).astype(float)
    >>> coef, b = fit_calibrated(x, y)
    >>> p = predict(x, coef, b); bool(abs(p.mean() - y.mean()) < 0.02)
    True
    """
    coef, intercept = fit_nonnegative(x, y, w, l2=l2, active=active)
    z = (x @ coef + intercept)[:, None]
    if not coef.any():
        return coef, intercept
    (scale,), shift = fit_logistic(z, y, w, l2=0.0)
    scale = max(scale, 0.0)
    return coef * scale, intercept * scale + shift


def predict(x: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    """Probabilities of the logistic model ``(coef, intercept)`` for feature rows ``x``.

    Examples
    --------
    >>> predict(np.array([[0.0], [1.0]]), np.array([2.0]), -1.0).round(3).tolist()
    [0.269, 0.731]
    """
    return 1.0 / (1.0 + np.exp(-np.clip(x @ coef + intercept, -500, 500)))


def source_weights(src: Sequence[str]) -> np.ndarray:
    """Row weights giving each source the same total weight, whatever its row count.

    Examples
    --------
    >>> source_weights(["a", "a", "b"]).tolist()
    [0.5, 0.5, 1.0]
    """
    s = np.asarray(src)
    names, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    return 1.0 / counts[inv]


def loso_predictions(
    x: np.ndarray, y: np.ndarray, src: Sequence[str], *, l2: float = 5.0, active: Sequence[int] | None = None,
    scorable: Sequence[bool] | None = None,
) -> np.ndarray:
    """Leave-one-source-out probabilities: each row scored by a model fitted on every *other* source.

    Parameters
    ----------
    x, y
        Features and labels.
    src : sequence of str
        The source of each row (at least two distinct).
    l2, active
        As :func:`fit_calibrated`; each training fit weighs its sources equally.
    scorable : sequence of bool, optional
        Rows the detector could score; the others (no context, no claim: their features say nothing) are left out of
        every fit and get 0.5. Default: every row.

    Returns
    -------
    ndarray
        One held-out probability per row.

    Examples
    --------
    >>> x = np.array([[0.1], [0.9], [0.2], [0.8]]); y = np.array([0, 1, 0, 1.0])
    >>> (loso_predictions(x, y, ["a", "a", "b", "b"]) > 0.5).tolist()
    [False, True, False, True]
    """
    s = np.asarray(src)
    names = sorted(set(s.tolist()))
    if len(names) < 2:
        raise ParameterError(f"loso_predictions: need at least two sources, got {names}")
    keep = np.ones(len(y), bool) if scorable is None else np.asarray(scorable, bool)
    out = np.full(len(y), 0.5)
    for name in names:
        te = (s == name) & keep
        tr = (s != name) & keep
        if not te.any() or not tr.any():  # nothing to score, or nothing to fit on: 0.5
            continue
        coef, b = fit_calibrated(x[tr], y[tr], source_weights(s[tr]), l2=l2, active=active)
        out[te] = predict(x[te], coef, b)
    return out


def bootstrap_interval(
    y: np.ndarray, p: np.ndarray, metric, *, reps: int = 1000, seed: int = 0, confidence: float = 0.95,
    both_labels: bool = True,
) -> tuple[float, float, float]:
    """A metric and its percentile bootstrap interval (rows resampled with replacement, a fixed seed).

    Parameters
    ----------
    y, p : ndarray
        Labels and scores.
    metric : callable (y, p) -> float
        E.g. :func:`workbench.stats.auroc` or :func:`workbench.stats.brier_score`.
    reps : int
        Bootstrap resamples.
    seed : int
    confidence : float
    both_labels : bool
        Skip the resamples with one label only (True, default: for AUROC, undefined on them); False for a metric of
        each row such as the Brier score.

    Returns
    -------
    (float, float, float)
        The metric on all rows, then the lower and upper bounds.

    Examples
    --------
    >>> from workbench.stats import auroc
    >>> y = np.array([0, 0, 1, 1] * 25); p = np.array([0.1, 0.6, 0.4, 0.9] * 25)
    >>> est, lo, hi = bootstrap_interval(y, p, auroc, reps=200)
    >>> est, bool(lo < est < hi)
    (0.75, True)
    """
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    est = float(metric(y, p))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        yi = y[i]
        if not both_labels or 0 < yi.sum() < len(yi):
            vals.append(metric(yi, p[i]))
    if not vals:
        return est, float("nan"), float("nan")
    a = (1 - confidence) / 2
    lo, hi = np.quantile(vals, [a, 1 - a])
    return est, float(lo), float(hi)


def baseline_scores(rows: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """The two trivial baselines every detector figure is shown next to.

    ``absent_word_share``: the share of the answer's words (lower-case ``\\w+``) absent from its contexts;
    ``answer_length``: the answer's number of whitespace-separated words.

    Examples
    --------
    >>> b = baseline_scores([{"answer": "Paris is big", "contexts": ["Paris is a city."]}])
    >>> float(b["absent_word_share"][0]), float(b["answer_length"][0])
    (0.3333333333333333, 3.0)
    """
    nov, length = [], []
    for r in rows:
        ctx = r.get("contexts") or []
        ctx = [ctx] if isinstance(ctx, str) else ctx
        cw = {t for c in ctx for t in _WORD.findall(c.lower())}
        a = _WORD.findall((r.get("answer") or "").lower())
        nov.append(sum(t not in cw for t in a) / max(len(a), 1))
        length.append(len((r.get("answer") or "").split()))
    return {"absent_word_share": np.array(nov, float), "answer_length": np.array(length, float)}


def reliability_table(y: Sequence[float], p: Sequence[float], *, bins: int = 10):
    """Calibration: rows grouped by predicted probability, mean prediction next to the observed rate.

    Parameters
    ----------
    y, p : sequence
        Labels (0/1) and probabilities.
    bins : int
        Equal-width bins on [0, 1].

    Returns
    -------
    polars.DataFrame
        ``bin, n, mean_predicted, observed_rate, observed_lo, observed_hi`` (Wilson 95% interval), empty bins left
        out, plus the expected calibration error in the frame's last row (``bin = "ECE"``, in ``mean_predicted``).

    Examples
    --------
    >>> t = reliability_table([0, 0, 1, 1], [0.1, 0.15, 0.85, 0.9], bins=2)
    >>> t["bin"].to_list(), t["n"].to_list()
    (['0.0-0.5', '0.5-1.0', 'ECE'], [2, 2, 4])
    """
    import polars as pl

    from workbench.stats import wilson_interval

    y = np.asarray(y, float)
    p = np.asarray(p, float)
    idx = calibration_bins(p, bins)
    out = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        if not n:
            continue
        k = float(y[m].sum())
        lo, hi = wilson_interval(np.array([k]), np.array([n]))
        out.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": n, "mean_predicted": float(p[m].mean()),
                    "observed_rate": k / n, "observed_lo": float(lo[0]), "observed_hi": float(hi[0])})
    out.append({"bin": "ECE", "n": len(y), "mean_predicted": expected_calibration_error(y, p, bins=bins),
                "observed_rate": None, "observed_lo": None, "observed_hi": None})
    return pl.DataFrame(out, schema={"bin": pl.Utf8, "n": pl.Int64, "mean_predicted": pl.Float64,
                                     "observed_rate": pl.Float64, "observed_lo": pl.Float64,
                                     "observed_hi": pl.Float64})
