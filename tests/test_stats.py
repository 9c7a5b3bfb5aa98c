"""workbench.stats: GrowthBook and Evidently goldens, hand-computed cases, properties."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import stats
from workbench.errors import ParameterError
from workbench.stats import ArmStats

GOLDENS = json.loads((Path(__file__).resolve().parent / "goldens" / "published.json").read_text())
GB = GOLDENS["experiments_growthbook"]


def _r(x, d=5):
    return round(float(x), d)


def _means(case):
    return (ArmStats.from_sums(case["a"]["sum"], case["a"]["sum_squares"], case["a"]["n"]),
            ArmStats.from_sums(case["b"]["sum"], case["b"]["sum_squares"], case["b"]["n"]))


def _props(case):
    return (ArmStats.from_proportion(case["a"]["successes"], case["a"]["n"]),
            ArmStats.from_proportion(case["b"]["successes"], case["b"]["n"]))


@pytest.mark.parametrize("name,relative", [("welch_relative", True), ("welch_absolute", False)])
def test_growthbook_welch_goldens(name, relative):
    case = GB[name]
    r = stats.welch_ttest(*_means(case), relative=relative)
    exp = case["expected"]
    assert (_r(r.effect), _r(r.se), [_r(r.lo), _r(r.hi)], _r(r.p_value)) == (
        exp["effect"], exp["se"], exp["ci"], exp["p"])


def test_growthbook_proportions_relative_golden():
    case = GB["proportions_relative"]
    r = stats.welch_ttest(*_props(case), relative=True)
    exp = case["expected"]
    assert (_r(r.effect), _r(r.se), [_r(r.lo), _r(r.hi)], _r(r.p_value)) == (
        exp["effect"], exp["se"], exp["ci"], exp["p"])


def test_growthbook_sequential_golden():
    case = GB["sequential_proportions_relative"]
    r = stats.sequential_ttest(*_props(case), relative=True, tuning=case["tuning"])
    exp = case["expected"]
    assert (_r(r.effect), _r(r.se), [_r(r.lo), _r(r.hi)], _r(r.p_value)) == (
        exp["effect"], exp["se"], exp["ci"], exp["p"])


def test_sequential_interval_is_wider_than_fixed_horizon():
    a, b = _props(GB["sequential_proportions_relative"])
    seq, fixed = stats.sequential_ttest(a, b), stats.welch_ttest(a, b)
    assert seq.hi - seq.lo > fixed.hi - fixed.lo


def test_growthbook_bayesian_flat_prior_golden():
    case = GB["bayesian_proportions_flat_prior"]
    r = stats.bayesian_effect(*_props(case), relative=True)
    exp = case["expected"]
    assert (_r(r.effect), _r(r.se), [_r(r.lo), _r(r.hi)], _r(r.chance_to_win), [_r(x) for x in r.risk]) == (
        exp["mean"], exp["sd"], exp["ci"], exp["chance_to_win"], exp["risk"])


def test_bayesian_inverse_flips_chance_to_win_and_risks():
    a, b = _props(GB["bayesian_proportions_flat_prior"])
    up, down = stats.bayesian_effect(a, b), stats.bayesian_effect(a, b, inverse=True)
    assert down.chance_to_win == pytest.approx(1 - up.chance_to_win)
    assert down.risk == pytest.approx(up.risk[::-1])


def test_bayesian_proper_prior_shrinks_toward_prior_mean():
    a, b = _props(GB["bayesian_proportions_flat_prior"])
    flat = stats.bayesian_effect(a, b)
    shrunk = stats.bayesian_effect(a, b, prior=(0.0, flat.se**2))  # prior as informative as the data: halfway
    assert shrunk.effect == pytest.approx(flat.effect / 2)
    assert shrunk.se == pytest.approx(flat.se / math.sqrt(2))


def test_proportions_2x2_by_hand():
    # control 10/40 = 0.25, treatment 15/40 = 0.375; var p(1-p): 0.1875 and 0.234375
    a, b = ArmStats.from_proportion(10, 40), ArmStats.from_proportion(15, 40)
    r = stats.welch_ttest(a, b, relative=False)
    se = math.sqrt(0.1875 / 40 + 0.234375 / 40)
    assert r.effect == pytest.approx(0.125)
    assert r.se == pytest.approx(se)
    rel = stats.welch_ttest(a, b, relative=True)
    # delta method: var_b / (a^2 n_b) + var_a b^2 / (a^4 n_a)
    var_rel = 0.234375 / (0.0625 * 40) + 0.1875 * 0.375**2 / (0.25**4 * 40)
    assert rel.effect == pytest.approx(0.5)
    assert rel.se == pytest.approx(math.sqrt(var_rel))


def test_welch_by_hand_three_and_three():
    # a = 1, 2, 3 (mean 2, var 1); b = 2, 4, 6 (mean 4, var 4); se^2 = 1/3 + 4/3 = 5/3
    # dof = (5/3)^2 / ((1/3)^2 / 2 + (4/3)^2 / 2) = (25/9) / (17/18) = 50/17
    a = ArmStats.from_sums(6, 14, 3)
    b = ArmStats.from_sums(12, 56, 3)
    assert (a.mean, a.var, b.mean, b.var) == (2.0, 1.0, 4.0, 4.0)
    r = stats.welch_ttest(a, b, relative=False)
    assert r.effect == 2.0
    assert r.se == pytest.approx(math.sqrt(5 / 3))
    assert r.dof == pytest.approx(50 / 17)
    from scipy.stats import ttest_ind

    ref = ttest_ind([2, 4, 6], [1, 2, 3], equal_var=False)
    assert r.p_value == pytest.approx(ref.pvalue)


def test_zero_variance_gives_undefined_not_zero():
    r = stats.welch_ttest(ArmStats.from_proportion(0, 10), ArmStats.from_proportion(0, 10), relative=False)
    assert r.effect == 0.0 and math.isnan(r.se) and math.isnan(r.p_value)


def test_newcombe_interval_matches_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10 (hybrid score, no continuity correction):
    # 56/70 - 48/80 -> (0.0524, 0.3339); 9/10 - 3/10 -> (0.1705, 0.8090). The function gives b - a.
    lo, hi = stats.newcombe_interval(48, 80, 56, 70)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.0524, 0.3339)
    lo, hi = stats.newcombe_interval(3, 10, 9, 10)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.1705, 0.809)
    # 0/50 against 50/50: Wilson upper bound of 0/50 is (z^2/50) / (1 + z^2/50) = 0.071348 (z = 1.959964), the
    # lower bound of 50/50 is 1 - 0.071348, so the difference 1 has lower bound 1 - sqrt(2) * 0.071348 = 0.899099
    lo, hi = stats.newcombe_interval(0, 50, 50, 50)
    assert (round(float(lo), 6), float(hi)) == (0.899099, 1.0)


def test_paired_ttest_matches_scipy():
    from scipy.stats import ttest_rel

    x = np.array([10.0, 12, 9, 14, 11])
    y = np.array([11.0, 15, 9, 17, 12])
    d = y - x
    r = stats.paired_ttest(d.sum(), (d * d).sum(), d.size)
    assert r.effect == pytest.approx(d.mean())
    assert r.p_value == pytest.approx(ttest_rel(y, x).pvalue)


# -- CUPED ------------------------------------------------------------------------------------------------------------


def test_cuped_reduces_variance_on_correlated_data():
    rng = np.random.default_rng(1)
    x_a, x_b = rng.normal(10, 3, 500), rng.normal(10, 3, 500)
    y_a = x_a + rng.normal(0, 1, 500)
    y_b = x_b + 0.5 + rng.normal(0, 1, 500)
    arms = [stats.cuped_sums(y_a, x_a), stats.cuped_sums(y_b, x_b)]
    theta, (a, b) = stats.cuped(arms)
    assert theta == pytest.approx(1.0, abs=0.05)
    plain_a = ArmStats.from_sums(arms[0]["sum_y"], arms[0]["sum_y2"], 500)
    assert a.var < plain_a.var / 5
    adj = stats.welch_ttest(a, b, relative=False)
    raw = stats.welch_ttest(plain_a, ArmStats.from_sums(arms[1]["sum_y"], arms[1]["sum_y2"], 500), relative=False)
    assert adj.se < raw.se / 2
    assert adj.lo < 0.5 < adj.hi


def test_cuped_with_theta_zero_is_the_unadjusted_estimate():
    rng = np.random.default_rng(2)
    arms = [stats.cuped_sums(rng.normal(size=50), rng.normal(size=50)) for _ in range(2)]
    theta, adj = stats.cuped(arms, theta=0.0)
    for arm, s in zip(arms, adj):
        plain = ArmStats.from_sums(arm["sum_y"], arm["sum_y2"], arm["n"])
        assert (s.mean, s.var, s.n) == pytest.approx((plain.mean, plain.var, plain.n))


def test_cuped_theta_is_the_pooled_regression_slope():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = 2 * x + rng.normal(size=200)
    theta, _ = stats.cuped([stats.cuped_sums(y[:100], x[:100]), stats.cuped_sums(y[100:], x[100:])])
    assert theta == pytest.approx(np.cov(y, x)[0, 1] / np.var(x, ddof=1))


# -- SRM --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDENS["srm_growthbook"]["cases"], ids=lambda c: str(c["users"]))
def test_growthbook_srm_goldens(case):
    assert round(stats.srm_test(case["users"], case["weights"]), 9) == case["p"]


def test_srm_refuses_a_weight_or_count_that_is_no_number():
    # a NaN weight failed "w > 0", its arm was dropped, one arm was left and the check said p = 1: "ok" for 50
    # users against 500 planned equal
    with pytest.raises(ParameterError, match="srm_test: weights must be finite numbers >= 0, got nan"):
        stats.srm_test([50, 500], [float("nan"), 0.5])
    with pytest.raises(ParameterError, match="srm_test: users must be finite numbers >= 0, got inf"):
        stats.srm_test([float("inf"), 500], [0.5, 0.5])


def test_srm_threshold_matches_published():
    assert stats.SRM_P_THRESHOLD == GOLDENS["srm_growthbook"]["flag_below_p"]


@given(st.lists(st.integers(1, 50), min_size=2, max_size=5), st.integers(1, 200))
def test_srm_p_is_one_for_users_exactly_in_the_planned_ratio(parts, scale):
    users = [p * scale for p in parts]
    weights = [p / sum(parts) for p in parts]
    assert stats.srm_test(users, weights) == pytest.approx(1.0)


# -- properties of the experiment tests -------------------------------------------------------------------------------

arm = st.tuples(st.floats(0.5, 100), st.floats(0.1, 50), st.integers(2, 5000)).map(lambda t: ArmStats(*t))


@settings(max_examples=60, deadline=None)
@given(arm, arm, st.sampled_from(["frequentist", "sequential", "bayesian"]), st.booleans())
def test_interval_contains_estimate_and_p_in_unit_interval(a, b, method, relative):
    r = stats.compare_arms(a, b, method=method, relative=relative)
    assert r.lo <= r.effect <= r.hi
    if method == "bayesian":
        assert 0 <= r.chance_to_win <= 1 and min(r.risk) >= 0
    else:
        assert 0 <= r.p_value <= 1


@settings(max_examples=60, deadline=None)
@given(arm, arm, st.sampled_from(["frequentist", "sequential"]))
def test_swapping_arms_flips_absolute_effect_and_keeps_p(a, b, method):
    ab = stats.compare_arms(a, b, method=method, relative=False)
    ba = stats.compare_arms(b, a, method=method, relative=False)
    assert ba.effect == pytest.approx(-ab.effect)
    assert ba.p_value == pytest.approx(ab.p_value, abs=1e-12)
    assert (ba.lo, ba.hi) == pytest.approx((-ab.hi, -ab.lo))


# -- drift statistics -------------------------------------------------------------------------------------------------


def test_evidently_chi_square_golden():
    g = GOLDENS["drift_evidently"]["chi_square"]
    assert round(stats.chi_square_pvalue(g["reference_counts"], g["current_counts"]), 5) == g["p"]


def test_chi_square_new_category_in_current_is_drift():
    assert stats.chi_square_pvalue({"a": 10, "b": 10}, {"a": 10, "b": 5, "c": 5}) == 0.0


def test_psi_by_hand_and_identical_is_zero():
    # shares 0.5/0.5 vs 0.25/0.75: 0.25 ln 2 + 0.25 ln 1.5
    assert stats.psi([1, 1, 2, 2], [1, 2, 2, 2], kind="categorical") == pytest.approx(
        0.25 * math.log(2) + 0.25 * math.log(1.5))
    x = np.arange(100.0)
    assert stats.psi(x, x) == 0.0


def test_jensen_shannon_distance_by_hand():
    # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4): JSD = (KL(P|M) + KL(Q|M)) / 2; the distance is its root.
    # Definition change: natural log by default, as Evidently (was base 2; tests/goldens/evidently settles it).
    kl_p = math.log(4 / 3)
    kl_q = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    expected = math.sqrt((kl_p + kl_q) / 2)
    assert stats.jensen_shannon_distance(["a", "a"], ["a", "b"], kind="categorical") == pytest.approx(expected)
    bits = stats.jensen_shannon_distance(["a", "a"], ["a", "b"], kind="categorical", base=2)
    assert bits == pytest.approx(expected / math.sqrt(math.log(2)))
    from scipy.spatial.distance import jensenshannon

    assert expected == pytest.approx(jensenshannon([1, 0], [0.5, 0.5]))


def test_wasserstein_normed_is_shift_in_reference_sds():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 2, 20_000)
    assert stats.wasserstein_normed(ref, ref + 1.0) == pytest.approx(0.5, rel=0.01)


def test_z_test_matches_hand_computation():
    # 30/100 vs 50/100, pooled 0.4: z = 0.2 / sqrt(0.24 * 0.02)
    from scipy.stats import norm

    z = 0.2 / math.sqrt(0.24 * 0.02)
    assert stats.z_test_pvalue(30, 100, 50, 100) == pytest.approx(2 * norm.sf(z))


def test_auroc_with_ties():
    assert stats.auroc([0, 1, 0, 1], [1, 1, 1, 1]) == 0.5
    assert stats.auroc([0, 1], [0, 1]) == 1.0


def test_wilson_bounds_are_exact_at_the_edges_and_contain_the_share():
    # k = 0 and k = n: the formula gives 2.8e-17 and 0.9999999999999999 for some n; the bounds are exactly 0 and 1.
    n = np.arange(1, 2001)
    lo0, hi0 = stats.wilson_interval(np.zeros_like(n), n)
    lon, hin = stats.wilson_interval(n, n)
    assert (lo0 == 0.0).all() and (hin == 1.0).all()
    # hand-computed: k = 0, n = 20 -> hi = z^2 / (n + z^2) = 3.8415 / 23.8415 = 0.161125
    assert round(float(hi0[19]), 6) == 0.161125 and round(float(lon[19]), 6) == round(20 / 23.841459, 6)
    k = np.array([0, 1, 7, 99, 100, 3])
    m = np.array([100, 100, 9, 100, 100, 3])
    lo, hi = stats.wilson_interval(k, m)
    assert ((lo <= k / m) & (k / m <= hi)).all()
    assert lo.min() >= 0.0 and hi.max() <= 1.0


@pytest.mark.parametrize("k, n, what", [(-1, 5, "k"), (6, 5, "k"), (3, -5, "n"), ([1, -2], [4, 4], "k"),
                                        (1.0, float("inf"), "n")])
def test_wilson_refuses_counts_that_are_no_counts(k, n, what):
    # a negative count, more successes than trials or an infinite count is a mistake upstream: named, not NaN
    with pytest.raises(ParameterError, match=f"wilson_interval: {what} must be"):
        stats.wilson_interval(k, n)


def test_wilson_keeps_nan_for_a_missing_count():
    # a group without a count (null in the frame, NaN here) has no interval; it is no error
    lo, hi = stats.wilson_interval([np.nan, 2], [np.nan, 4])
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and 0 < lo[1] < 0.5 < hi[1] < 1


def _old_binned_shares(ref, cur, kind):
    """The row-by-row definition the counted one replaced (kept as the reference)."""
    ref, cur = np.asarray(ref), np.asarray(cur)
    if kind == "numeric" and np.unique(ref).size > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]).astype(float), bins="sturges")
        rp, cp = np.histogram(ref.astype(float), edges)[0] / ref.size, np.histogram(cur.astype(float), edges)[0] / cur.size
    else:
        keys = sorted(set(ref.tolist()) | set(cur.tolist()))
        rp = np.array([np.sum(ref == k) for k in keys], dtype=float) / ref.size
        cp = np.array([np.sum(cur == k) for k in keys], dtype=float) / cur.size
    for arr in (rp, cp):
        small = arr[arr > 0].min()
        arr[arr == 0] = small / 1e6 if small <= 0.0001 else 0.0001
    return rp, cp


@pytest.mark.parametrize("seed", range(6))
def test_counted_drift_statistics_equal_the_row_by_row_definitions(seed):
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(seed)
    n_r, n_c = int(rng.integers(30, 3000)), int(rng.integers(30, 3000))
    # ties on purpose: rounded values, a few distinct values, a shifted current
    ref = np.round(rng.lognormal(3, 1, n_r), int(rng.integers(0, 3)))
    cur = np.round(rng.lognormal(3.2, 1.1, n_c), int(rng.integers(0, 3)))
    for kind, r, c in (("numeric", ref, cur), ("categorical", rng.choice(["a", "b", "c", "d"], n_r),
                                                   rng.choice(["a", "b", "c", "e"], n_c))):
        old_r, old_c = _old_binned_shares(r, c, kind)
        new_r, new_c = stats.binned_shares(stats.counted(r), stats.counted(c), kind=kind)
        np.testing.assert_allclose(new_r, old_r, rtol=1e-12)
        np.testing.assert_allclose(new_c, old_c, rtol=1e-12)
        assert stats.psi(stats.counted(r), stats.counted(c), kind=kind) == pytest.approx(
            float(((old_r - old_c) * np.log(old_r / old_c)).sum()), rel=1e-12)
    old_w = wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
    assert stats.wasserstein_normed(ref, cur) == pytest.approx(old_w, rel=1e-10)
    assert stats.wasserstein_normed(stats.counted(ref), stats.counted(cur)) == pytest.approx(old_w, rel=1e-10)
    assert stats.ks_pvalue(stats.counted(ref), stats.counted(cur)) == stats.ks_pvalue(ref, cur)


def test_z_value_is_scipy_normal_quantile_bit_for_bit():
    from scipy.stats import norm

    for c in (0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.999, 0.123456, *stats._Z_COMMON):
        assert stats.z_value(c) == float(norm.ppf(0.5 + c / 2))


def test_the_usual_confidences_need_no_scipy_import():
    # importing scipy.special was most of a fresh process's first rate metric that is not the query
    import subprocess
    import sys

    code = ("import sys, workbench.stats as s; s.wilson_interval(3, 10); s.z_value(0.99); "
            "print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_constant_arms_have_no_variance_not_a_rounding_residue():
    # five values of 0.1: sum of squares 0.05000000000000001 - 0.5**2 / 5 left 6.9e-18, a "variance" that made the
    # t-test of two constant arms significant (p = 1e-44) and the readout "do not ship"
    a = stats.ArmStats.from_sums(0.5, 5 * 0.1**2, 5)
    b = stats.ArmStats.from_sums(1.0, 5 * 0.2**2, 5)
    assert (a.var, b.var) == (0.0, 0.0)
    r = stats.welch_ttest(a, b, relative=False)
    assert r.effect == pytest.approx(0.1) and math.isnan(r.se) and math.isnan(r.p_value)
    assert math.isnan(stats.paired_ttest(0.5, 5 * 0.1**2, 5).p_value)
    # a real spread is kept, however small against the mean (here 1e-6 of it)
    xs = [1000.0, 1000.001, 1000.002]
    v = stats.ArmStats.from_sums(sum(xs), sum(x * x for x in xs), 3).var
    assert v == pytest.approx(1e-6, rel=1e-3)


@pytest.mark.parametrize("fn", [stats.welch_ttest, stats.sequential_ttest, stats.bayesian_effect])
@pytest.mark.parametrize("relative", [False, True])
def test_an_empty_arm_gives_nan_not_a_division_by_zero(fn, relative):
    # ArmStats.from_sums(0, 0, 0) and from_proportion(0, 0) give ArmStats(nan, nan, 0): comparing with it raised
    # ZeroDivisionError (a.var / a.n on floats)
    b = stats.ArmStats.from_sums(6.0, 14.0, 3)
    for empty in (stats.ArmStats.from_sums(0, 0, 0), stats.ArmStats.from_proportion(0, 0)):
        for x, y in ((empty, b), (b, empty)):
            r = fn(x, y, relative=relative)
            assert math.isnan(r.effect) and math.isnan(r.se) and math.isnan(r.lo) and math.isnan(r.hi)
    assert math.isnan(stats.welch_dof(stats.ArmStats.from_sums(0, 0, 0), b))


@pytest.mark.parametrize("fn", [stats.welch_ttest, stats.sequential_ttest, stats.bayesian_effect])
def test_an_alpha_outside_0_1_is_refused_by_name(fn):
    # alpha = 0 gave an interval of -inf to inf, alpha = 5 NaN bounds beside a chance to win, and alpha = "0.05" a
    # TypeError from inside the arithmetic
    a, b = ArmStats(1.0, 1.0, 10), ArmStats(2.0, 1.0, 10)
    for alpha in (0, 5, "0.05"):
        with pytest.raises((ValueError, TypeError), match=rf"{fn.__name__}: alpha must be a number in \(0, 1\)"):
            fn(a, b, alpha=alpha)


def test_binom_ppf_is_scipy_stats_binom_ppf_exactly():
    # order_statistic_ranks' binomial quantile without importing scipy.stats: the same numbers on 20,000 cases, counts
    # from 0 to 10**8 (small, large, powers of ten), the usual and random quantiles and tails; off the fast path
    # (a tail of 0 or 1, a negative count, a float count) binom.ppf itself answers
    from scipy.stats import binom

    rng = np.random.default_rng(0)
    for _ in range(400):
        n = np.concatenate([rng.integers(0, 50, 20), rng.integers(0, 10**7, 20),
                            10 ** rng.integers(0, 9, 10)]).astype(np.int64)
        p = float(rng.choice([rng.random(), 0.5, 0.95, 0.99, 0.05, 0.9, 0.999, 1e-6]))
        x = float(rng.choice([rng.random(), 0.025, 0.975, 0.005, 0.995, 0.05, 0.95]))
        got, want = stats.binom_ppf(x, n, p), binom.ppf(x, n, p)
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), (x, p)
    for n in (0, 1, 7, 10, np.int64(10), [-1, 5], [2.5]):
        for x in (0.025, 0.0, 1.0):
            got, want = stats.binom_ppf(x, n, 0.5), binom.ppf(x, n, 0.5)
            assert type(got) is type(want) and np.array_equal(got, want, equal_nan=True), (n, x)
    assert [int(v) for v in stats.order_statistic_ranks(10, 0.5)] == [2, 9]


def test_order_statistic_ranks_need_no_scipy_stats_import():
    # importing scipy.stats was 0.6 s of a fresh process's first percentile metric (latency_p95_ms...)
    import subprocess
    import sys

    code = ("import sys, workbench.stats as s; s.order_statistic_ranks([10, 1000, 100000], 0.95); "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
