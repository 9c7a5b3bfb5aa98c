"""Intervals and tests shared by the metric modules.

Each function works on plain numbers or numpy arrays, so it can be applied to an aggregate that an Ibis expression
returned. Conventions are stated next to each function.

>>> lo, hi = wilson_interval(8, 10)
>>> round(float(lo), 6), round(float(hi), 6)
(0.490162, 0.943318)
"""

from __future__ import annotations

import numpy as np


def _z(confidence: float) -> float:
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(k, n, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion k/n (the interval statsmodels' ``proportion_confint(method="wilson")`` gives).

    Parameters
    ----------
    k, n : int or array of int
        Successes and trials. Where ``n == 0`` the interval is NaN.
    confidence : float
        Two-sided confidence level.

    Returns
    -------
    (lo, hi) : arrays of float, clipped to [0, 1].

    Examples
    --------
    >>> lo, hi = wilson_interval([0, 45], [20, 50])
    >>> [round(float(x), 6) for x in lo], [round(float(x), 6) for x in hi]
    ([0.0, 0.786398], [0.161125, 0.956524])
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return lo, hi
