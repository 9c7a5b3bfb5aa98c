"""Intervals and tests shared by the metric modules.

Each function works on plain numbers or numpy arrays, so it can be applied to an aggregate that an Ibis expression
returned. Conventions are stated next to each function.

>>> lo, hi = wilson_interval(8, 10)
>>> round(float(lo), 6), round(float(hi), 6)
(0.490162, 0.943318)
"""

from __future__ import annotations

from workbench.errors import NotFoundError, ParameterError, ParameterTypeError, check_fraction

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import warnings

import math

import numpy as np

_EPS = float(np.finfo(float).eps)


def z_value(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (1.959964 for 0.95).

    >>> round(z_value(0.95), 6)
    1.959964
    """
    check_fraction("z_value", "confidence", confidence)
    z = _Z_COMMON.get(confidence)
    if z is not None:
        return z
    # scipy.special's ndtri is what scipy.stats.norm.ppf computes, without importing scipy.stats (0.6 s of a fresh
    # process's first rate metric)
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2))


# ndtri(0.5 + c / 2) for the usual confidences, written out: importing scipy.special takes about 0.18 s, most of a
# fresh process's first rate metric that is not the query (tests/test_stats.py checks each against ndtri).
_Z_COMMON = {0.5: 0.6744897501960817, 0.8: 1.2815515655446004, 0.9: 1.6448536269514722, 0.95: 1.959963984540054,
             0.98: 2.3263478740408408, 0.99: 2.5758293035489004, 0.995: 2.807033768343811,
             0.999: 3.2905267314919255}


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
    (lo, hi) : arrays of float in [0, 1]: exactly 0 at k = 0, exactly 1 at k = n, and lo <= k/n <= hi always.

    Examples
    --------
    >>> lo, hi = wilson_interval([0, 45], [20, 50])
    >>> [round(float(x), 6) for x in lo], [round(float(x), 6) for x in hi]
    ([0.0, 0.786398], [0.161125, 0.956524])
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(confidence)
    # NaN is a group without a count (a null in the frame): no interval. Anything else must be a count: a negative one,
    # more successes than trials or an infinite one is a mistake upstream, not a NaN to pass on.
    with np.errstate(invalid="ignore"):
        bad_n = np.isinf(n) | (n < 0)
        bad_k = np.isinf(k) | (k < 0) | (k > n)
    if bad_n.any():
        raise ParameterError(f"wilson_interval: n must be counts >= 0, got {_first_bad(n, bad_n)}")
    if bad_k.any():
        raise ParameterError(f"wilson_interval: k must be counts between 0 and n, got {_first_bad(k, bad_k)} "
                             f"against n = {_first_bad(n, bad_k)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        # Exact at the edges: k = 0 gives lo = 0 and k = n gives hi = 1 (the formula leaves rounding residue such as
        # 2.8e-17 or 0.9999999999999999), and lo <= k/n <= hi holds exactly, so a strict check never fails on rounding.
        lo = np.where(k <= 0, 0.0, np.minimum(np.clip(centre - half, 0, 1), p))
        hi = np.where(k >= n, 1.0, np.maximum(np.clip(centre + half, 0, 1), p))
        lo = np.where(n > 0, lo, np.nan)
        hi = np.where(n > 0, hi, np.nan)
    return lo, hi


def newcombe_interval(k_a, n_a, k_b, n_b, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for the difference of two proportions k_b/n_b - k_a/n_a (Newcombe 1998,
    method 10: the two :func:`wilson_interval` bounds combined in quadrature).

    Unlike the normal interval from p(1 - p), it stays an interval when a share is 0 or 1 (0/50 against 50/50 is a
    difference of 1 with a lower bound of 0.90, not "no variance"). NaN where an ``n`` is 0.

    Examples
    --------
    Newcombe's own example, 56/70 against 48/80:

    >>> lo, hi = newcombe_interval(48, 80, 56, 70)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.0524, 0.3339)
    """
    la, ua = wilson_interval(k_a, n_a, confidence=confidence)
    lb, ub = wilson_interval(k_b, n_b, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = np.asarray(k_a, dtype=float) / np.asarray(n_a, dtype=float)
        pb = np.asarray(k_b, dtype=float) / np.asarray(n_b, dtype=float)
    return difference_interval(pb, lb, ub, pa, la, ua)


def difference_interval(pb, lb, ub, pa, la, ua) -> tuple[np.ndarray, np.ndarray]:
    """The interval of the difference pb - pa from each estimate's own interval (lb, ub) and (la, ua), their
    distances to the estimate combined in quadrature (Newcombe 1998, method 10, when the intervals are Wilson's;
    for symmetric intervals, the usual quadrature). NaN where a bound is.

    >>> lo, hi = difference_interval(0.5, 0.4, 0.6, 0.2, 0.1, 0.3)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.1586, 0.4414)
    """
    pb, lb, ub, pa, la, ua = (np.asarray(x, dtype=float) for x in (pb, lb, ub, pa, la, ua))
    d = pb - pa
    with np.errstate(invalid="ignore"):
        return d - np.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + np.sqrt((ub - pb) ** 2 + (pa - la) ** 2)


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    """The first value of ``values`` where ``bad`` (broadcast together) holds, as text for an error message."""
    v, b = np.broadcast_arrays(values, bad)
    return f"{float(v[b][0]):g}"


# --------------------------------------------------------------------------------------------------------------------
# Experiments: effects of a treatment arm against a control arm, from per-arm summary statistics.
#
# Conventions (GrowthBook's gbstats, so that a readout here gives the numbers GrowthBook gives):
# * a mean metric's variance is the sample variance (n - 1); a proportion's is p(1 - p), without n - 1;
# * the relative lift is (mean_b - mean_a) / |mean_a| with the delta-method variance
#   var_b / (mean_a^2 n_b) + var_a mean_b^2 / (mean_a^4 n_a), arms independent;
# * the frequentist interval is a t interval with Welch-Satterthwaite degrees of freedom.
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmStats:
    """Summary of one experiment arm: the mean of the per-unit values, their variance and the number of units.

    Build one from sufficient statistics with :meth:`from_sums` (a mean metric) or :meth:`from_proportion`.

    Examples
    --------
    >>> ArmStats.from_sums(6.0, 14.0, 3)
    ArmStats(mean=2.0, var=1.0, n=3)
    >>> ArmStats.from_proportion(1, 4)
    ArmStats(mean=0.25, var=0.1875, n=4)
    """

    mean: float
    var: float
    n: int

    @classmethod
    def from_sums(cls, total: float, sum_squares: float, n: int) -> "ArmStats":
        """Mean and sample variance (n - 1 denominator) from the sum, the sum of squares and the count."""
        n = int(n)
        if n < 0:
            raise ParameterError(f"ArmStats.from_sums: n must be >= 0, got {n}")
        if n == 0:
            return cls(float("nan"), float("nan"), 0)
        mean = float(total) / n
        if n == 1:
            return cls(mean, float("nan"), 1)
        ss = float(sum_squares) - float(total) ** 2 / n
        # Constant data leaves a rounding residue here, not 0 (five values of 0.1: 6.9e-18), which made a t-test of
        # two constant arms "significant" (p = 1e-44). A sum of n squares is exact to about n * eps of itself: a
        # residue within that is no variance the sums can tell from 0 (a coefficient of variation under about
        # sqrt(n * eps): 3e-8 at n = 5, 1.5e-5 at a million).
        if ss <= n * _EPS * abs(float(sum_squares)):
            ss = 0.0
        return cls(mean, ss / (n - 1), n)

    @classmethod
    def from_proportion(cls, successes: float, n: int) -> "ArmStats":
        """Share and its variance p(1 - p) (GrowthBook's convention: no n - 1)."""
        n = int(n)
        if n < 0 or not 0 <= successes <= max(n, 0):
            raise ParameterError(f"ArmStats.from_proportion: expected 0 <= successes <= n, got {successes}/{n}")
        if n == 0:
            return cls(float("nan"), float("nan"), 0)
        p = float(successes) / n
        return cls(p, p * (1 - p), n)


@dataclass(frozen=True)
class Effect:
    """An effect of arm b against arm a, with its uncertainty.

    ``effect`` is b - a (absolute) or (b - a) / |a| (relative). Frequentist results fill ``p_value`` and ``dof``;
    Bayesian results fill ``chance_to_win`` and ``risk`` = (risk of keeping a, risk of shipping b): the expected loss,
    in the units of the effect, of each choice. Undefined quantities (no variance, n < 2) are NaN.

    Examples
    --------
    >>> e = welch_ttest(ArmStats.from_sums(6, 14, 3), ArmStats.from_sums(12, 56, 3), relative=False)
    >>> e.method, e.effect, round(e.lo, 3), round(e.hi, 3), e.chance_to_win  # frequentist: no chance to win
    ('frequentist', 2.0, -2.155, 6.155, nan)
    >>> d = e.as_dict()  # a flat row: risk split into its two sides
    >>> round(d["p_value"], 4), "risk" in d, [k for k in d if k.startswith("risk_")]
    (0.2209, False, ['risk_control', 'risk_variant'])
    >>> welch_ttest(ArmStats(1.0, 0.5, 1), ArmStats(2.0, 0.5, 1), relative=False).se  # n < 2: undefined
    nan
    """

    effect: float
    se: float
    lo: float
    hi: float
    p_value: float = float("nan")
    dof: float = float("nan")
    chance_to_win: float = float("nan")
    risk: tuple[float, float] = (float("nan"), float("nan"))
    relative: bool = True
    method: str = "frequentist"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["risk_control"], d["risk_variant"] = d.pop("risk")
        return d


def _check_arm(fn: str, name: str, arm: ArmStats) -> None:
    if not isinstance(arm, ArmStats):
        raise ParameterTypeError(f"{fn}: {name} must be an ArmStats, got {type(arm).__name__}")


def _diff_and_variance(a: ArmStats, b: ArmStats, relative: bool) -> tuple[float, float]:
    """Point estimate and its variance (delta method for the relative lift)."""
    if a.n < 1 or b.n < 1:  # an empty arm (ArmStats(nan, nan, 0)): nothing to compare (was a ZeroDivisionError)
        return float("nan"), float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        if relative:
            if a.mean == 0:
                return float("nan"), float("nan")
            est = (b.mean - a.mean) / abs(a.mean)
            var = b.var / (a.mean**2 * b.n) + a.var * b.mean**2 / (a.mean**4 * a.n)
        else:
            est = b.mean - a.mean
            var = b.var / b.n + a.var / a.n
    return float(est), float(var)


def welch_dof(a: ArmStats, b: ArmStats) -> float:
    """Welch-Satterthwaite degrees of freedom of the difference of two means.

    >>> round(welch_dof(ArmStats(0, 1.0, 10), ArmStats(0, 1.0, 10)), 6)
    18.0
    """
    if a.n < 2 or b.n < 2:
        return float("nan")
    va, vb = a.var / a.n, b.var / b.n
    den = va**2 / (a.n - 1) + vb**2 / (b.n - 1)
    return float((va + vb) ** 2 / den) if den > 0 else float("nan")


def welch_ttest(a: ArmStats, b: ArmStats, *, relative: bool = True, alpha: float = 0.05) -> Effect:
    """Two-sided Welch t-test of arm b against arm a (GrowthBook's frequentist engine).

    Parameters
    ----------
    a, b : ArmStats
        Control and treatment.
    relative : bool
        Relative lift (b - a) / |a| with the delta-method variance, else the absolute difference b - a.
    alpha : float
        1 - confidence of the interval.

    Returns
    -------
    Effect
        ``effect``, ``se``, t interval ``lo``/``hi`` with Welch-Satterthwaite ``dof``, two-sided ``p_value``.

    Examples
    --------
    Control 1, 2, 3 and treatment 2, 4, 6 (sums 6 and 12, sums of squares 14 and 56): the difference is 2 with
    standard error sqrt(1/3 + 4/3) = 1.29099 on 2.94 degrees of freedom.

    >>> r = welch_ttest(ArmStats.from_sums(6, 14, 3), ArmStats.from_sums(12, 56, 3), relative=False)
    >>> round(r.effect, 5), round(r.se, 5), round(r.dof, 5), round(r.p_value, 4)
    (2.0, 1.29099, 2.94118, 0.2209)
    """
    _check_arm("welch_ttest", "a", a)
    _check_arm("welch_ttest", "b", b)
    check_fraction("welch_ttest", "alpha", alpha)
    from scipy.stats import t

    est, var = _diff_and_variance(a, b, relative)
    dof = welch_dof(a, b)
    if not (var > 0 and dof == dof):
        return Effect(est, float("nan"), float("nan"), float("nan"), relative=relative)
    se = float(np.sqrt(var))
    half = float(t.ppf(1 - alpha / 2, dof)) * se
    p = float(2 * t.sf(abs(est) / se, dof))
    return Effect(est, se, est - half, est + half, p_value=p, dof=dof, relative=relative)


def sequential_rho(alpha: float = 0.05, tuning: float = 5000) -> float:
    """Mixing parameter of the normal-mixture confidence sequence for a tuning parameter (the n it is tightest at).

    Waudby-Smith et al. (2023), two-sided: rho = sqrt((-2 ln alpha + ln(1 - 2 ln alpha)) / N).

    >>> round(sequential_rho(0.05, 5000), 6)
    0.03984
    """
    if not 0 < alpha < 1 or not tuning > 0:
        raise ParameterError(f"sequential_rho: expected 0 < alpha < 1 and tuning > 0, got {alpha}, {tuning}")
    la = np.log(alpha)
    return float(np.sqrt((-2 * la + np.log(1 - 2 * la)) / tuning))


def sequential_ttest(
    a: ArmStats, b: ArmStats, *, relative: bool = True, alpha: float = 0.05, tuning: float = 5000
) -> Effect:
    """Always-valid (sequential) test: GrowthBook's confidence sequences, safe under continuous peeking.

    With n = n_a + n_b, rho = :func:`sequential_rho` and s2 = se^2 n (the per-observation variance), the half-width is
    sqrt(s2) sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) / alpha) / (n rho)^2); the always-valid p-value is
    min(1, sqrt(n rho^2 + 1) exp(-rho^2 n effect^2 / (2 se^2 (n rho^2 + 1)))), so p <= alpha exactly when the
    interval excludes 0.

    Examples
    --------
    >>> r = sequential_ttest(ArmStats.from_proportion(1396, 3000), ArmStats.from_proportion(2422, 3461))
    >>> round(r.effect, 5), round(r.se, 5), round(r.lo, 5), round(r.hi, 5)
    (0.50386, 0.03386, 0.40098, 0.60675)
    """
    _check_arm("sequential_ttest", "a", a)
    _check_arm("sequential_ttest", "b", b)
    check_fraction("sequential_ttest", "alpha", alpha)
    est, var = _diff_and_variance(a, b, relative)
    if not var > 0:
        return Effect(est, float("nan"), float("nan"), float("nan"), relative=relative, method="sequential")
    rho = sequential_rho(alpha, tuning)
    n = a.n + b.n
    r2 = n * rho**2 + 1
    se = float(np.sqrt(var))
    half = float(np.sqrt(var * n) * np.sqrt(2 * r2 * np.log(np.sqrt(r2) / alpha) / (n * rho) ** 2))
    log_p = 0.5 * np.log(r2) - rho**2 * n * est**2 / (2 * var * r2)
    p = float(min(1.0, np.exp(log_p)))
    return Effect(est, se, est - half, est + half, p_value=p, dof=float("nan"), relative=relative, method="sequential")


def normal_risk(mean: float, sd: float) -> tuple[float, float]:
    """Expected loss of each choice when the effect is N(mean, sd^2): (keep control, ship treatment).

    Keeping control loses E[max(X, 0)] = mean Phi(mean/sd) + sd phi(mean/sd); shipping loses E[max(-X, 0)], which
    is the former minus ``mean``.

    >>> [round(x, 5) for x in normal_risk(0.0, 1.0)]
    [0.39894, 0.39894]
    """
    from scipy.stats import norm

    if not sd > 0:
        return max(mean, 0.0), max(-mean, 0.0)
    z = mean / sd
    keep = float(mean * norm.cdf(z) + sd * norm.pdf(z))
    return keep, keep - float(mean)


def bayesian_effect(
    a: ArmStats,
    b: ArmStats,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    inverse: bool = False,
    prior: tuple[float, float] | None = None,
) -> Effect:
    """Bayesian effect of b against a, the way gbstats' effect engine computes it (no Monte Carlo).

    The likelihood of the effect is normal with the frequentist point estimate and variance (delta method for the
    relative lift). With a flat prior (``prior=None``, GrowthBook's default) the posterior is that normal; a proper
    Gaussian prior ``(mean, variance)`` on the effect is combined by precision weighting.

    Parameters
    ----------
    inverse : bool
        The metric is better when lower (latency, cost, hallucination): chance to win is then P(effect < 0) and the
        risks are swapped.

    Returns
    -------
    Effect
        ``effect`` is the posterior mean, ``se`` the posterior sd, ``lo``/``hi`` the central credible interval,
        ``chance_to_win`` and ``risk`` = (expected loss of keeping a, of shipping b).

    Examples
    --------
    >>> r = bayesian_effect(ArmStats.from_proportion(49, 100), ArmStats.from_proportion(51, 100))
    >>> round(r.effect, 5), round(r.se, 5), round(r.chance_to_win, 5), [round(x, 5) for x in r.risk]
    (0.04082, 0.14725, 0.60918, [0.0814, 0.04058])
    """
    _check_arm("bayesian_effect", "a", a)
    _check_arm("bayesian_effect", "b", b)
    check_fraction("bayesian_effect", "alpha", alpha)
    from scipy.stats import norm

    est, var = _diff_and_variance(a, b, relative)
    if not var > 0:
        return Effect(est, float("nan"), float("nan"), float("nan"), relative=relative, method="bayesian")
    prec = 1 / var
    mean = est
    if prior is not None:
        pm, pv = prior
        if not pv > 0:
            raise ParameterError(f"bayesian_effect: prior variance must be > 0, got {pv}")
        mean = (est / var + pm / pv) / (1 / var + 1 / pv)
        prec = 1 / var + 1 / pv
    sd = float(np.sqrt(1 / prec))
    z = float(norm.ppf(1 - alpha / 2))
    ctw = float(norm.cdf(-mean / sd) if inverse else norm.sf(-mean / sd))
    keep, ship = normal_risk(mean, sd)
    risk = (ship, keep) if inverse else (keep, ship)
    return Effect(float(mean), sd, mean - z * sd, mean + z * sd, chance_to_win=ctw, risk=risk, relative=relative,
                  method="bayesian")


def compare_arms(a: ArmStats, b: ArmStats, *, method: str = "frequentist", relative: bool = True,
                 alpha: float = 0.05, inverse: bool = False, tuning: float = 5000) -> Effect:
    """Dispatch to :func:`welch_ttest`, :func:`sequential_ttest` or :func:`bayesian_effect` by ``method``.

    >>> compare_arms(ArmStats(1, 1, 10), ArmStats(1, 1, 10), method="bayesian").chance_to_win
    0.5
    """
    if method == "frequentist":
        return welch_ttest(a, b, relative=relative, alpha=alpha)
    if method == "sequential":
        return sequential_ttest(a, b, relative=relative, alpha=alpha, tuning=tuning)
    if method == "bayesian":
        return bayesian_effect(a, b, relative=relative, alpha=alpha, inverse=inverse)
    raise ParameterError(f"compare_arms: method must be frequentist, sequential or bayesian, got {method!r}")


def paired_ttest(sum_d: float, sum_d2: float, n: int, *, alpha: float = 0.05) -> Effect:
    """Paired t-test from the sum, the sum of squares and the count of paired differences.

    >>> r = paired_ttest(6.0, 14.0, 3)   # differences 1, 2, 3
    >>> round(r.effect, 5), round(r.se, 5), round(r.lo, 5), round(r.hi, 5)
    (2.0, 0.57735, -0.48414, 4.48414)
    """
    from scipy.stats import t

    d = ArmStats.from_sums(sum_d, sum_d2, n)
    if d.n < 2 or not d.var > 0:
        return Effect(d.mean, float("nan"), float("nan"), float("nan"), relative=False, method="paired")
    se = float(np.sqrt(d.var / d.n))
    dof = d.n - 1
    half = float(t.ppf(1 - alpha / 2, dof)) * se
    p = float(2 * t.sf(abs(d.mean) / se, dof))
    return Effect(d.mean, se, d.mean - half, d.mean + half, p_value=p, dof=float(dof), relative=False, method="paired")


# CUPED -------------------------------------------------------------------------------------------------------------

CUPED_SUMS = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")


def cuped(arms: Sequence[Mapping[str, float]], *, theta: float | None = None) -> tuple[float, list[ArmStats]]:
    """CUPED: arm means of y adjusted with a pre-period covariate x, from per-arm sufficient statistics.

    theta = cov(y, x) / var(x) over all units of all arms pooled (GrowthBook computes it on the pooled arms too).
    Each arm's adjusted mean is mean_y - theta (mean_x_arm - mean_x_pooled), so adjusted means stay on the scale of
    y and their differences are the usual CUPED differences; its variance is
    var_y + theta^2 var_x - 2 theta cov(y, x) within the arm. ``theta=0`` gives the unadjusted statistics.

    Parameters
    ----------
    arms : sequence of mappings with keys n, sum_y, sum_y2, sum_x, sum_x2, sum_xy
    theta : float, optional
        Use this theta instead of estimating it.

    Returns
    -------
    (theta, [ArmStats, ...]) in the order of ``arms``.

    Examples
    --------
    y = x in control and y = x + 1 in treatment: the covariate explains all the variance.

    >>> arms = [cuped_sums([1, 2, 3], [1, 2, 3]), cuped_sums([2, 3, 4], [1, 2, 3])]
    >>> theta, (a, b) = cuped(arms)
    >>> round(theta, 6), a.mean, b.mean, a.var, b.var
    (1.0, 2.0, 3.0, 0.0, 0.0)
    """
    for i, arm in enumerate(arms):
        missing = [k for k in CUPED_SUMS if k not in arm]
        if missing:
            raise NotFoundError(f"cuped: arm {i} lacks {missing}; expected keys {', '.join(CUPED_SUMS)}")
    s = {k: float(sum(float(arm[k]) for arm in arms)) for k in CUPED_SUMS}
    if theta is None:
        n = s["n"]
        cov = (s["sum_xy"] - s["sum_x"] * s["sum_y"] / n) / (n - 1) if n > 1 else float("nan")
        var_x = (s["sum_x2"] - s["sum_x"] ** 2 / n) / (n - 1) if n > 1 else float("nan")
        theta = float(cov / var_x) if var_x > 0 else 0.0
    mean_x_all = s["sum_x"] / s["n"] if s["n"] else 0.0
    out = []
    for arm in arms:
        n = int(arm["n"])
        if n == 0:
            out.append(ArmStats(float("nan"), float("nan"), 0))
            continue
        my, mx = arm["sum_y"] / n, arm["sum_x"] / n
        if n > 1:
            vy = (arm["sum_y2"] - arm["sum_y"] ** 2 / n) / (n - 1)
            vx = (arm["sum_x2"] - arm["sum_x"] ** 2 / n) / (n - 1)
            cxy = (arm["sum_xy"] - arm["sum_x"] * arm["sum_y"] / n) / (n - 1)
            var = max(vy + theta**2 * vx - 2 * theta * cxy, 0.0)
        else:
            var = float("nan")
        out.append(ArmStats(float(my - theta * (mx - mean_x_all)), float(var), n))
    return theta, out


def cuped_sums(y, x) -> dict[str, float]:
    """Sufficient statistics of one arm for :func:`cuped` from per-unit arrays (y: metric, x: pre-period covariate).

    >>> cuped_sums([1, 2], [3, 4])
    {'n': 2, 'sum_y': 3.0, 'sum_y2': 5.0, 'sum_x': 7.0, 'sum_x2': 25.0, 'sum_xy': 11.0}
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if y.shape != x.shape:
        raise ParameterError(f"cuped_sums: y and x must have the same length, got {y.shape} and {x.shape}")
    return {"n": int(y.size), "sum_y": float(y.sum()), "sum_y2": float((y * y).sum()), "sum_x": float(x.sum()),
            "sum_x2": float((x * x).sum()), "sum_xy": float((x * y).sum())}


# Sample ratio mismatch ---------------------------------------------------------------------------------------------

SRM_P_THRESHOLD = 0.001


def srm_test(users: Sequence[float], weights: Sequence[float]) -> float:
    """p-value of the sample-ratio check: chi-square goodness of fit of the users per arm to the planned weights.

    GrowthBook's convention: arms with weight 0 are dropped entirely (their users and their weight); the remaining
    weights are renormalised to sum to 1; degrees of freedom = arms - 1. A p-value below
    :data:`SRM_P_THRESHOLD` (0.001) flags a mismatch. No users at all gives NaN; a single arm gives 1.

    Examples
    --------
    >>> round(srm_test([1000, 1200], [0.5, 0.5]), 9)
    2.0079e-05
    >>> round(srm_test([1000, 1200, 900], [0.5, 0.5, 0]), 9)
    2.0079e-05
    >>> srm_test([500, 500], [0.5, 0.5])
    1.0
    """
    from scipy.stats import chi2

    u = np.asarray(users, dtype=float)
    w = np.asarray(weights, dtype=float)
    if u.shape != w.shape or u.ndim != 1:
        raise ParameterError(f"srm_test: users and weights must be 1-d of the same length, got {u.shape} and {w.shape}")
    for name, x in (("users", u), ("weights", w)):
        bad = ~np.isfinite(x) | (x < 0)
        if bad.any():  # (a NaN weight failed w > 0 and dropped its arm: one arm left, p = 1, "ok")
            raise ParameterError(f"srm_test: {name} must be finite numbers >= 0, got {_first_bad(x, bad)}")
    keep = w > 0
    u, w = u[keep], w[keep] / w[keep].sum() if keep.any() else w[keep]
    total = u.sum()
    if total == 0:
        return float("nan")
    if u.size < 2:
        return 1.0
    expected = total * w
    stat = float(((u - expected) ** 2 / expected).sum())
    return float(chi2.sf(stat, u.size - 1))


# --------------------------------------------------------------------------------------------------------------------
# Drift: reference sample vs current sample (Evidently's stattests and their conventions).
# --------------------------------------------------------------------------------------------------------------------


class Counted(NamedTuple):
    """A sample as its distinct values (in any order) and how often each occurs: what ``GROUP BY value`` returns.

    The drift functions below take either raw samples or ``Counted`` ones and give the same numbers; a million rows
    with a few thousand distinct values are then a few thousand numbers to work on.

    >>> c = counted([3, 1, 3, 3])
    >>> c.values.tolist(), c.counts.tolist(), c.n
    ([1, 3], [1, 3], 4)
    """

    values: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def counted(sample) -> Counted:
    """``sample`` as :class:`Counted` (returned as is when it already is one).

    >>> counted(["b", "a", "b"]).counts.tolist()
    [1, 2]
    """
    if isinstance(sample, Counted):
        return sample
    values, counts = np.unique(np.asarray(sample), return_counts=True)
    return Counted(values, counts)


def _on_keys(keys: np.ndarray, c: Counted) -> np.ndarray:
    """``c``'s counts spread over ``keys`` (sorted, holding every value of ``c``), as floats; 0 where absent."""
    out = np.zeros(len(keys), dtype=float)
    out[np.searchsorted(keys, c.values)] = c.counts
    return out


def _sturges_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """``np.histogram_bin_edges(x, bins="sturges")`` from the sample's minimum, maximum and size alone."""
    width = (hi - lo) / (np.log2(n) + 1.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    bins = int(np.ceil((hi - lo) / width)) if width else 1
    return np.linspace(lo, hi, bins + 1, endpoint=True)


def binned_shares(reference, current, *, kind: str = "numeric", fill_zeros: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Shares of reference and current in common bins (Evidently's ``get_binned_data``).

    Numeric data with more than 20 distinct reference values is cut with Sturges' rule on both samples together;
    anything else is binned by value (the union of both samples' values). With ``fill_zeros`` an empty bin gets
    0.0001 (or a millionth of the smallest share, if that is below 0.0001) so that logarithms stay finite.
    Samples may be raw or :class:`Counted`.

    >>> r, c = binned_shares(["a", "a", "b"], ["a", "b", "b", "c"], kind="categorical")
    >>> [round(float(x), 4) for x in r], [round(float(x), 4) for x in c]
    ([0.6667, 0.3333, 0.0001], [0.25, 0.5, 0.25])
    """
    if kind not in ("numeric", "categorical"):
        raise ParameterError(f"binned_shares: kind must be numeric or categorical, got {kind!r}")
    ref, cur = counted(reference), counted(current)
    if ref.n == 0 or cur.n == 0:
        raise ParameterError(f"binned_shares: empty sample (reference {ref.n}, current {cur.n})")
    if kind == "numeric" and ref.values.size > 20:
        rv, cv = ref.values.astype(float), cur.values.astype(float)
        edges = _sturges_edges(min(rv.min(), cv.min()), max(rv.max(), cv.max()), ref.n + cur.n)
        rp = np.histogram(rv, edges, weights=ref.counts.astype(float))[0] / ref.n
        cp = np.histogram(cv, edges, weights=cur.counts.astype(float))[0] / cur.n
    else:
        keys = np.union1d(ref.values, cur.values)
        rp = _on_keys(keys, ref) / ref.n
        cp = _on_keys(keys, cur) / cur.n
    if fill_zeros:
        for arr in (rp, cp):
            small = arr[arr > 0].min()
            arr[arr == 0] = small / 1e6 if small <= 0.0001 else 0.0001
    return rp, cp


def psi(reference, current, *, kind: str = "numeric") -> float:
    """Population stability index: sum over bins of (ref - cur) ln(ref / cur), bins as in :func:`binned_shares`.

    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift (Evidently drifts at >= 0.1).

    Shares 0.5/0.5 against 0.25/0.75: 0.25 ln 2 + 0.25 ln 1.5.

    >>> round(psi([1, 1, 2, 2], [1, 2, 2, 2], kind="categorical"), 6)
    0.274653
    """
    r, c = binned_shares(reference, current, kind=kind, fill_zeros=True)
    return float(((r - c) * np.log(r / c)).sum())


def jensen_shannon_distance(reference, current, *, kind: str = "numeric", base: float = math.e) -> float:
    """Jensen-Shannon *distance* (the square root of the divergence) between the binned samples.

    Natural logarithm by default, as Evidently's ``jensenshannon`` stattest (it calls scipy's ``jensenshannon``
    without a base; checked against Evidently 0.7 itself, ``tests/goldens/evidently``), so the distance lies in
    [0, sqrt(ln 2)] = [0, 0.8326]; Evidently drifts at >= 0.1. ``base=2`` gives the [0, 1] distance in bits. Empty
    bins are not filled (the distance is finite without it).

    >>> round(jensen_shannon_distance(["a", "a"], ["b", "b"], kind="categorical"), 6)  # sqrt(ln 2)
    0.832555
    >>> jensen_shannon_distance(["a", "a"], ["b", "b"], kind="categorical", base=2)
    1.0
    """
    r, c = binned_shares(reference, current, kind=kind, fill_zeros=False)
    r, c = r / r.sum(), c / c.sum()
    m = (r + c) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_r = np.where(r > 0, r * np.log(r / m), 0.0).sum()
        kl_c = np.where(c > 0, c * np.log(c / m), 0.0).sum()
    div = max((kl_r + kl_c) / 2 / np.log(base), 0.0)
    return float(np.sqrt(div))


def wasserstein_normed(reference, current) -> float:
    """First Wasserstein distance divided by the reference standard deviation (population sd, at least 0.001).

    Evidently's ``wasserstein`` stattest; drifts at >= 0.1 (a shift of a tenth of a standard deviation). The distance
    is the area between the two empirical CDFs, computed on the distinct values (raw or :class:`Counted` samples).

    >>> wasserstein_normed([0.0, 2.0], [1.0, 3.0])
    1.0
    """
    ref, cur = counted(reference), counted(current)
    rv, cv = ref.values.astype(float), cur.values.astype(float)
    rw, cw = ref.counts.astype(float), cur.counts.astype(float)
    # Both samples on one sorted axis, reference shares up and current shares down: the running sum is the gap
    # between the two CDFs, and the distance the area under its absolute value.
    values = np.concatenate([rv, cv])
    order = np.argsort(values, kind="stable")
    gap = np.cumsum(np.concatenate([rw / rw.sum(), -cw / cw.sum()])[order])
    distance = float(np.sum(np.abs(gap[:-1]) * np.diff(values[order])))
    mean = float(np.dot(rw, rv) / rw.sum())
    sd = math.sqrt(float(np.dot(rw, (rv - mean) ** 2) / rw.sum()))
    return distance / max(sd, 0.001)


def ks_pvalue(reference, current) -> float:
    """Two-sample Kolmogorov-Smirnov p-value (two-sided, scipy's exact/asymptotic choice).

    >>> ks_pvalue([1, 2, 3], [1, 2, 3])
    1.0
    """
    from scipy.stats import ks_2samp

    def raw(x):
        return np.repeat(x.values.astype(float), x.counts) if isinstance(x, Counted) else np.asarray(x, dtype=float)

    return float(ks_2samp(raw(reference), raw(current)).pvalue)


def chi_square_pvalue(reference_counts: Mapping, current_counts: Mapping) -> float:
    """Chi-square p-value of the current category counts against the reference frequencies.

    Evidently's convention: expected count of a category = its reference share x the current total (a goodness of
    fit of the current sample to the reference distribution, not a contingency-table test); categories are the
    union of both. A category seen only in current has expected count 0, which gives p = 0.

    >>> ref = {1: 16, 2: 18, 3: 16, 4: 14, 5: 12, 6: 12}
    >>> cur = {1: 16, 2: 16, 3: 16, 4: 16, 5: 16, 6: 8}
    >>> round(chi_square_pvalue(ref, cur), 5)
    0.67309
    """
    from scipy.stats import chi2

    keys = list(dict.fromkeys([*reference_counts, *current_counts]))
    ref = np.array([float(reference_counts.get(k, 0)) for k in keys])
    cur = np.array([float(current_counts.get(k, 0)) for k in keys])
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ParameterError(f"chi_square_pvalue: empty counts (reference {ref.sum()}, current {cur.sum()})")
    if len(keys) < 2:
        return 1.0
    expected = ref / ref.sum() * cur.sum()
    if ((expected == 0) & (cur > 0)).any():
        return 0.0
    keep = expected > 0
    stat = float(((cur[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    return float(chi2.sf(stat, len(keys) - 1))


def z_test_pvalue(ref_successes: float, ref_n: int, cur_successes: float, cur_n: int) -> float:
    """Two-sided two-proportion z-test with the pooled proportion (Evidently's test for binary columns).

    >>> round(z_test_pvalue(50, 100, 50, 100), 6)
    1.0
    >>> round(z_test_pvalue(30, 100, 50, 100), 5)
    0.00389
    """
    from scipy.stats import norm

    if ref_n <= 0 or cur_n <= 0:
        raise ParameterError(f"z_test_pvalue: n must be > 0, got {ref_n} and {cur_n}")
    p1, p2 = ref_successes / ref_n, cur_successes / cur_n
    pooled = (ref_successes + cur_successes) / (ref_n + cur_n)
    var = pooled * (1 - pooled) * (1 / ref_n + 1 / cur_n)
    if var <= 0:
        return 1.0
    return float(2 * norm.sf(abs(p1 - p2) / np.sqrt(var)))


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), ties counted half.

    Parameters
    ----------
    labels : sequence of {0, 1}
        1 marks a positive (hallucinated) answer.
    scores : sequence of float
        Higher means more likely positive.

    Returns
    -------
    float
        AUROC in [0, 1], best value 1.0, chance 0.5; NaN with a warning when one class is absent.

    Examples
    --------
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auroc([0, 1], [0.5, 0.5])
    0.5
    """
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape:
        raise ParameterError(f"auroc: labels and scores differ in length ({y.size} vs {s.size})")
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        warnings.warn("auroc: only one class present, AUROC is undefined", RuntimeWarning, stacklevel=2)
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=float)
    sorted_s = s[order]
    # Average ranks within runs of tied scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def brier_score(labels: Sequence[int], probs: Sequence[float]) -> float:
    """Mean squared error of predicted probabilities against 0/1 outcomes.

    Parameters
    ----------
    labels : sequence of {0, 1}
    probs : sequence of float
        Predicted probability of label 1.

    Returns
    -------
    float
        Brier score in [0, 1], lower is better (0.25 for a constant 0.5); NaN for empty input.

    Examples
    --------
    >>> brier_score([0, 1, 1], [0.0, 1.0, 0.5])
    0.0833...
    """
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probs, dtype=float)
    if y.shape != p.shape:
        raise ParameterError(f"brier_score: labels and probs differ in length ({y.size} vs {p.size})")
    if y.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def calibration_bins(probs: Any, bins: int = 10) -> np.ndarray:
    """The bin of each probability among ``bins`` equal-width bins of [0, 1] (1.0 in the last one).

    >>> calibration_bins([0.0, 0.05, 0.1, 0.95, 1.0]).tolist()
    [0, 0, 1, 9, 9]
    """
    p = np.asarray(probs, dtype=float)
    return np.minimum((p * bins).astype(int), bins - 1)


def expected_calibration_error(labels: Sequence[int], probs: Sequence[float], *, bins: int = 10) -> float:
    """Expected calibration error: over equal-width bins of the predicted probability, the gap between the mean
    prediction and the observed rate of label 1, weighted by the bin's share of the rows. 0 is calibrated; lower is
    better; NaN for empty input.

    Examples
    --------
    >>> expected_calibration_error([0, 1, 1, 1], [0.1, 0.9, 0.9, 0.9], bins=2)   # (1 * 0.1 + 3 * 0.1) / 4
    0.1
    """
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probs, dtype=float)
    if y.shape != p.shape:
        raise ParameterError(f"expected_calibration_error: labels and probs differ in length ({y.size} vs {p.size})")
    if not y.size:
        return float("nan")
    idx = calibration_bins(p, bins)
    ece = 0.0
    for b in np.unique(idx):
        m = idx == b
        ece += m.sum() / y.size * abs(p[m].mean() - y[m].mean())
    return round(float(ece), 12)


def cohen_kappa(a: Any, b: Any) -> float | None:
    """Cohen's kappa of two binary raters, (p_o - p_e) / (1 - p_e); None when p_e = 1 (both constant and equal).

    >>> round(cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]), 6)
    0.5
    """
    a = np.asarray(a, dtype=int)
    b = np.asarray(b, dtype=int)
    if a.size == 0:
        return None
    po = float((a == b).mean())
    pe = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return None if pe >= 1 else (po - pe) / (1 - pe)


def order_statistic_ranks(n, q: float, confidence: float = 0.95):
    """1-based ranks ``(l, u)`` of the order statistics bounding the q-quantile of ``n`` values (binomial interval).

    ``l == 0`` means no lower bound and ``u == n + 1`` no upper bound at this confidence.

    Examples
    --------
    >>> # n = 10, median: Binomial(10, .5) CDF F(1) = 11/1024 < .025 <= F(2) = 56/1024 -> l = 2;
    >>> # F(7) = 968/1024 < .975 <= F(8) = 1013/1024 -> u = 9; coverage F(8) - F(1) = 0.979
    >>> [int(x) for x in order_statistic_ranks(10, 0.5)]
    [2, 9]
    """
    import numpy as np

    n = np.asarray(n, dtype=np.int64)
    alpha = 1 - confidence
    lo = binom_ppf(alpha / 2, n, q).astype(np.int64)
    hi = binom_ppf(1 - alpha / 2, n, q).astype(np.int64) + 1
    return lo, np.minimum(hi, n + 1)


def quantile_ranks(n, q: float):
    """The 1-based ranks of the two order statistics ``quantile_cont`` interpolates between (equal at an integer
    position).

    >>> quantile_ranks([5, 1], 0.6)
    (array([3, 1]), array([4, 1]))
    """
    import numpy as np

    pos = (np.asarray(n, dtype=np.int64) - 1) * q
    return np.floor(pos).astype(np.int64) + 1, np.ceil(pos).astype(np.int64) + 1


def quantile_interval_ranks(n, q: float, confidence: float = 0.95):
    """1-based ranks ``(l, u)`` of the interval of a percentile as the metrics report it: the binomial ranks
    (:func:`order_statistic_ranks`), widened where needed to the two order statistics the linearly interpolated value
    (:func:`quantile_ranks`) sits between, so that ``lo <= value <= hi`` always holds. On a small sample the binomial
    ranks can lie past them (p99 of two values: l = 2, above the value). Widening only raises the coverage; ``l == 0``
    and ``u == n + 1`` still mean no bound.

    Examples
    --------
    >>> [int(x) for x in order_statistic_ranks(2, 0.99)], [int(x) for x in quantile_interval_ranks(2, 0.99)]
    ([2, 3], [1, 3])
    >>> [int(x) for x in quantile_interval_ranks(10, 0.5)]  # a larger sample: the binomial ranks as they are
    [2, 9]
    """
    import numpy as np

    lo, hi = order_statistic_ranks(n, q, confidence)
    at, above = quantile_ranks(n, q)
    return np.minimum(lo, at), np.maximum(hi, above)


def binom_ppf(x: float, n, p: float):
    """``scipy.stats.binom.ppf(x, n, p)``, the same numbers, without importing ``scipy.stats``.

    For ``0 < x < 1``, ``0 <= p <= 1`` and counts ``n >= 0`` it calls the function ``binom.ppf`` calls there (Boost's
    binomial quantile, scipy.special's ``_binom_ppf``) directly: importing scipy.stats costs 0.6 s of a fresh process's
    first percentile metric, scipy.special 0.25 s of it. Any other argument goes to ``binom.ppf`` itself
    (tests/test_stats.py checks the two agree on 20,000 cases).

    >>> [float(v) for v in binom_ppf(0.025, [10, 1000], 0.5)]
    [2.0, 469.0]
    """
    import numpy as np

    n = np.asarray(n)
    try:
        from scipy.special._ufuncs import _binom_ppf
    except ImportError:  # a scipy without it: the public function
        _binom_ppf = None
    if (_binom_ppf is None or not 0 < x < 1 or not 0 <= p <= 1 or n.dtype.kind not in "iu"
            or (n.size and n.min() < 0)):
        from scipy.stats import binom

        return binom.ppf(x, n, p)
    out = _binom_ppf(x, n, p) + 0.0  # as binom.ppf: _ppf(q, n, p) + loc, in a float array (a scalar for a scalar n)
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out
