"""workbench.metrics.latency: hand-computed percentiles and intervals, published conventions, Wilson goldens, invariants."""

from __future__ import annotations

import datetime as dt
import json
import random
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.stats import binom, mannwhitneyu

import workbench as wb
from workbench.metrics import latency
from workbench.cli import main
from workbench.metrics import UndefinedMetricWarning

GOLDENS = json.loads((Path(__file__).resolve().parent / "goldens" / "published.json").read_text())
DAY = dt.datetime(2026, 1, 5)
COLS = ("call_id", "ts", "feature", "model", "request_model", "status", "latency_ms", "ttft_ms", "output_tokens",
        "attempt", "fallback", "operation", "reasoning_tokens")


def _insert(db, rows):
    # one Arrow scan instead of executemany: DuckDB inserts row by row there, seconds for a few hundred rows
    frame = pl.DataFrame([{c: r.get(c) for c in COLS} for r in rows], infer_schema_length=None).to_arrow()
    db.duckdb.register("_rows", frame)
    db.duckdb.execute(f"insert into calls ({', '.join(COLS)}) select {', '.join(COLS)} from _rows")
    db.duckdb.unregister("_rows")


def _row(i, **kw):
    r = {"call_id": f"c{i}", "ts": DAY + dt.timedelta(minutes=i), "feature": "chat", "model": "m1", "status": "ok",
         "request_model": "m1", "attempt": 1, "fallback": False}
    r.update(kw)
    return r


@pytest.fixture()
def ten():
    """Latencies 100, 200, ..., 1000 ms for one feature on one day."""
    db = wb.connect(":memory:")
    _insert(db, [_row(i, latency_ms=100.0 * (i + 1), ttft_ms=10.0 * (i + 1)) for i in range(10)])
    return db


def _mixed_rows(seed=1, n=300):
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        out = rnd.randint(0, 40)
        status = rnd.choice(["ok"] * 8 + ["error", "timeout", "blocked"])
        rows.append(_row(
            i, ts=DAY + dt.timedelta(hours=rnd.randint(0, 71), minutes=rnd.randint(0, 59)),
            feature=rnd.choice(["chat", "search", "summarise"]), model=rnd.choice(["m1", "m2"]),
            request_model=rnd.choice(["m1", "m1", "m2", None]), status=status,
            latency_ms=round(rnd.lognormvariate(6.5, 0.6), 1), ttft_ms=rnd.choice([None, round(rnd.uniform(50, 400), 1)]),
            output_tokens=out, attempt=rnd.choice([1, 1, 1, 2]), fallback=rnd.choice([None, False, False, True]),
        ))
    ops = random.Random(seed + 1000)  # a separate stream: the rows above stay as they were
    for r in rows:  # mostly LLM calls (named or not, as in a request log), some tool calls and whole agent tasks
        r["operation"] = ops.choice(["chat", "chat", None, "text_completion", "execute_tool", "invoke_agent"])
    return rows


def test_percentiles_and_order_statistic_intervals_by_hand(ten):
    # linear interpolation at h = (n - 1) q on 100..1000:
    #   p50: h = 4.5  -> X(5) + .5 (X(6) - X(5))  = 500 + 50 = 550
    #   p90: h = 8.1  -> 900 + .1 * 100 = 910;  p95: h = 8.55 -> 955;  p99: h = 8.91 -> 991
    # binomial ranks, n = 10, 95%:
    #   median: F(1) = 11/1024 < .025 <= F(2) = 56/1024 -> l = 2; F(7) = 968/1024 < .975 <= F(8) -> u = 9: [200, 900]
    #   p95: Bin(10, .95) F(7) = .0115 < .025 <= F(8) = .0861 -> l = 8 (800); F(9) = .401 < .975 <= F(10) -> u = 11 > n
    #   so no upper bound: hi is null
    #   p90: Bin(10, .9) F(6) = .0128 < .025 <= F(7) = .0702 -> l = 7 (700); u = 11: null
    #   p99: Bin(10, .99) F(8) = 1 - 10 * .99^9 * .01 - .99^10 = .0043 < .025 <= F(9) = 1 - .99^10 = .0956
    #        -> l = 9 (900); u = 11: null
    got = {name: getattr(latency, name)(ten).row(0, named=True) for name in
           ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms")}
    assert [(got[k]["value"], got[k]["lo"], got[k]["hi"], got[k]["n"]) for k in got] == [
        (550.0, 200.0, 900.0, 10), (910.0, 700.0, None, 10), (955.0, 800.0, None, 10), (991.0, 900.0, None, 10)]


def test_order_statistics_are_ranked_within_each_group_null_keys_included():
    # four groups of 10 calls, interleaved in time and inserted shuffled, two of them with a null key: each group's
    # order statistics come from its own rows. n = 10, median: h = 4.5, l = 2, u = 9 (see the test above), so
    # values s, 2s, ..., 10s give value 5.5 s, lo 2 s, hi 9 s
    scale = {("chat", "m1"): 100.0, ("chat", None): 10.0, (None, "m1"): 1.0, (None, None): 1000.0}
    rows, i = [], 0
    for k in range(10):
        for (feature, model), s in scale.items():
            rows.append(_row(i, feature=feature, model=model, latency_ms=s * (k + 1)))
            i += 1
    db = wb.connect(":memory:")
    _insert(db, random.Random(4).sample(rows, len(rows)))
    df = latency.latency_p50_ms(db, by=("feature", "model"))
    got = {(r["feature"], r["model"]): (r["value"], r["lo"], r["hi"], r["n"]) for r in df.iter_rows(named=True)}
    assert got == {k: (5.5 * s, 2 * s, 9 * s, 10) for k, s in scale.items()}


def test_ttft_percentiles_and_quantile_function(ten):
    df = latency.ttft_p50_ms(ten)
    assert (df["value"][0], df["lo"][0], df["hi"][0], df["metric"][0]) == (55.0, 20.0, 90.0, "ttft_p50_ms")
    q = latency.latency_quantile_ms(ten, q=0.25)
    assert q["metric"][0] == "latency_q25_ms" and q["value"][0] == pytest.approx(325.0)  # h = 2.25: 300 + .25 * 100
    with pytest.raises(ValueError, match="latency_quantile_ms: q must be a number in \\(0, 1\\), got 95"):
        latency.latency_quantile_ms(ten, q=95)


def test_percentile_equals_numpy_linear_on_random_data():
    rng = np.random.default_rng(3)
    db = wb.connect(":memory:")
    vals = {f: rng.lognormal(6, 0.8, size) for f, size in (("a", 997), ("b", 250), ("c", 31))}
    rows, i = [], 0
    for f, v in vals.items():
        for x in v:
            rows.append(_row(i, feature=f, latency_ms=float(x), ts=DAY + dt.timedelta(seconds=i)))
            i += 1
    _insert(db, rows)
    for q, name in ((0.5, "latency_p50_ms"), (0.9, "latency_p90_ms"), (0.95, "latency_p95_ms"), (0.99, "latency_p99_ms")):
        df = getattr(latency, name)(db, period="all")
        for r in df.iter_rows(named=True):
            v = np.sort(vals[r["feature"]])
            assert r["value"] == pytest.approx(np.percentile(v, q * 100, method="linear"), rel=1e-12)
            lo_rank, hi_rank = latency.order_statistic_ranks(len(v), q)
            assert r["lo"] == (v[lo_rank - 1] if lo_rank >= 1 else None)
            assert r["hi"] == (v[hi_rank - 1] if hi_rank <= len(v) else None)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_order_statistic_interval_covers_at_least_the_confidence(q):
    # coverage of [X(l), X(u)] is F(u - 1) - F(l - 1) for B ~ Binomial(n, q), whatever the distribution
    for n in (20, 50, 100, 400, 1000, 5000):
        lo, hi = (int(x) for x in latency.order_statistic_ranks(n, q))
        if lo >= 1 and hi <= n:
            cover = binom.cdf(hi - 1, n, q) - binom.cdf(lo - 1, n, q)
            assert 0.95 <= cover < 0.99, (n, q, lo, hi, cover)
    # p99 has no finite upper bound below about 370 calls: log(.025) / log(.99) = 367
    assert latency.order_statistic_ranks(360, 0.99)[1] == 361
    assert latency.order_statistic_ranks(380, 0.99)[1] <= 380


def test_tpot_follows_the_published_latency_convention():
    ex = GOLDENS["llm_latency_conventions"]["example"]
    db = wb.connect(":memory:")
    times = ex["token_times_s"]  # send at 0: ttft = first token, e2e = last token
    assert (times[0], times[-1]) == (ex["ttft"], ex["e2e"])
    _insert(db, [_row(0, latency_ms=times[-1] * 1000, ttft_ms=times[0] * 1000, output_tokens=len(times)),
                 _row(1, latency_ms=900.0, ttft_ms=None, output_tokens=9),  # not streamed: no TPOT
                 _row(2, latency_ms=400.0, ttft_ms=400.0, output_tokens=1)])  # one token: no TPOT
    df = latency.tpot_ms(db)
    # (0.58 - 0.35) / (5 - 1) = 0.0575 s
    assert df["value"][0] == pytest.approx(ex["tpot"] * 1000) and df["n"][0] == 1 and df["p50"][0] == pytest.approx(57.5)
    assert latency.ttft_p50_ms(db, where={"call_id": "c0"})["value"][0] == pytest.approx(ex["ttft"] * 1000)
    # the mean gap between streamed tokens (ITL) is the same number
    assert np.mean(np.diff(times)) == pytest.approx(ex["tpot"])


def test_tpot_mean_interval_and_tokens_per_second_by_hand():
    db = wb.connect(":memory:")
    # tpot per call: (1100-100)/10 = 100, (700-300)/5 = 80, (500-200)/5 = 60 -> mean 80, sd 20, median 80
    _insert(db, [_row(0, latency_ms=1100.0, ttft_ms=100.0, output_tokens=11),
                 _row(1, latency_ms=700.0, ttft_ms=300.0, output_tokens=6),
                 _row(2, latency_ms=500.0, ttft_ms=200.0, output_tokens=6)])
    r = latency.tpot_ms(db).row(0, named=True)
    half = 1.959964 * 20 / np.sqrt(3)
    assert (r["value"], r["n"], r["p50"]) == (80.0, 3, 80.0)
    assert r["lo"] == pytest.approx(80 - half, abs=1e-4) and r["hi"] == pytest.approx(80 + half, abs=1e-4)
    # tokens per second: (11 + 6 + 6) / (1.1 + .7 + .5) = 23 / 2.3 = 10
    t = latency.output_tokens_per_s(db).row(0, named=True)
    assert t["value"] == pytest.approx(10.0) and t["n"] == 3
    # delta method: residuals y - R x = 0, -1, 1 -> var = 2 / (2 * 3 * (2.3 / 3)^2)
    se = np.sqrt(2 / (2 * 3 * (2.3 / 3) ** 2))
    assert t["lo"] == pytest.approx(10 - 1.959964 * se, abs=1e-4)


def test_tokens_per_second_keeps_every_group_and_day_of_the_selection_from_its_one_query(queries):
    day2 = DAY + dt.timedelta(days=1)
    db = wb.connect(":memory:")
    # chat: measurable on day 1 (20 tokens / 2 s), on day 2 only a call without tokens and one with latency 0;
    # search: no measurable call at all
    _insert(db, [_row(0, latency_ms=1000.0, output_tokens=10), _row(1, latency_ms=1000.0, output_tokens=10),
                 _row(2, ts=day2, latency_ms=900.0), _row(3, ts=day2, latency_ms=0.0, output_tokens=5),
                 _row(4, feature="search", latency_ms=None, output_tokens=7)])
    with pytest.warns(UndefinedMetricWarning, match="3 group-period"):
        df = latency.output_tokens_per_s(db, by=("feature",), start=DAY, end=DAY + dt.timedelta(days=2))
    got = {(r["feature"], r["period_start"]): (r["value"], r["n"]) for r in df.iter_rows(named=True)}
    assert got == {("chat", DAY.replace(hour=0, minute=0)): (pytest.approx(10.0), 2),
                   ("chat", day2.replace(hour=0, minute=0)): (None, 0),
                   ("search", DAY.replace(hour=0, minute=0)): (None, 0),
                   ("search", day2.replace(hour=0, minute=0)): (None, 0)}
    assert len(queries) == 1  # the selection's groups came with the sums: no second scan for them


def test_a_first_token_after_the_last_gives_no_tpot():
    # A TTFT over the whole latency (clocks of two processes, a client's TTFT against a server's duration) made a
    # negative time per token that was averaged with the others: (400 - 500) / 4 = -25 pulled 80 down to 27.5
    db = wb.connect(":memory:")
    _insert(db, [_row(0, latency_ms=1100.0, ttft_ms=100.0, output_tokens=11),  # 100
                 _row(1, latency_ms=700.0, ttft_ms=300.0, output_tokens=6),  # 80
                 _row(2, latency_ms=500.0, ttft_ms=200.0, output_tokens=6),  # 60
                 _row(3, latency_ms=400.0, ttft_ms=500.0, output_tokens=5)])  # the first token after the last
    r = latency.tpot_ms(db).row(0, named=True)
    assert (r["value"], r["n"], r["p50"]) == (80.0, 3, 80.0)


def test_tpot_counts_the_streamed_tokens_not_the_hidden_reasoning_ones():
    """An o-series model counts its reasoning tokens in output_tokens but streams only the visible ones, after the
    first token: dividing the decode time by every output token made the time per token 60x too small."""
    db = wb.connect(":memory:")
    _insert(db, [_row(0, latency_ms=2100.0, ttft_ms=1100.0, output_tokens=611, reasoning_tokens=600),  # 1000 / 10
                 _row(1, latency_ms=700.0, ttft_ms=300.0, output_tokens=6),  # no reasoning count: 400 / 5 = 80
                 _row(2, latency_ms=900.0, ttft_ms=500.0, output_tokens=6, reasoning_tokens=0),  # 400 / 5 = 80
                 _row(3, latency_ms=800.0, ttft_ms=700.0, output_tokens=600, reasoning_tokens=599)])  # one streamed
    r = latency.tpot_ms(db).row(0, named=True)
    assert (r["value"], r["n"], r["p50"]) == (pytest.approx(260 / 3), 3, 80.0)


def test_error_rate_matches_published_wilson_intervals():
    rows, i = [], 0
    for case in GOLDENS["intervals"]["wilson"]:
        for j in range(case["n"]):
            rows.append(_row(i, feature=f"f{case['k']:03d}_{case['n']}", status="error" if j < case["k"] else "ok",
                             latency_ms=1.0))
            i += 1
    db = wb.connect(":memory:")
    _insert(db, rows)
    df = latency.error_rate(db, period="all")
    for case in GOLDENS["intervals"]["wilson"]:
        r = df.filter(pl.col("feature") == f"f{case['k']:03d}_{case['n']}").row(0, named=True)
        assert r["n"] == case["n"] and r["value"] == pytest.approx(case["k"] / case["n"])
        assert [round(r["lo"], 6), round(r["hi"], 6)] == case["ci"]


def test_timeout_and_fallback_rates_by_hand():
    db = wb.connect(":memory:")
    _insert(db, [
        _row(0, status="timeout"),
        _row(1, status="error", attempt=2),                      # retry -> fallback
        _row(2, model="m2", request_model="m1"),                 # another model answered -> fallback
        _row(3, fallback=True),                                  # flagged by the source -> fallback
        _row(4, model="m2", request_model=None, attempt=None, fallback=None),  # unknown: not a fallback
    ])
    assert latency.timeout_rate(db)["value"][0] == pytest.approx(1 / 5)
    assert latency.error_rate(db)["value"][0] == pytest.approx(1 / 5)
    assert latency.fallback_rate(db)["value"][0] == pytest.approx(3 / 5)


def test_a_dated_snapshot_of_the_model_asked_for_is_no_fallback():
    """OpenAI answers a request for gpt-4o as gpt-4o-2024-08-06 (gen_ai.response.model): every call of a real OpenAI
    trace counted as answered by another model, and fallback_rate read 100% with no fallback at all. A dated or
    numbered snapshot of the model asked for is that model; a smaller model of the same family is not."""
    db = wb.connect(":memory:")
    _insert(db, [
        _row(0, request_model="gpt-4o", model="gpt-4o-2024-08-06"),                          # snapshot: same
        _row(1, request_model="claude-3-5-sonnet-latest", model="claude-3-5-sonnet-20241022"),  # alias: same
        _row(2, request_model="gemini-1.5-pro", model="gemini-1.5-pro-002"),                 # version: same
        _row(3, request_model="gpt-3.5-turbo", model="gpt-3.5-turbo-0125"),                  # snapshot: same
        _row(4, request_model="gpt-4o", model="gpt-4o-mini-2024-07-18"),                     # another model
        _row(5, request_model="gpt-4o", model="gpt-4o-mini"),                                # another model
    ])
    assert latency.fallback_rate(db).select("value", "n").rows() == [(2 / 6, 6)]
    # the real trace: one OpenAI call, asked for gpt-4o, answered as gpt-4o-2024-08-06, no retry
    from workbench.io.ingest import ingest

    real = wb.connect(":memory:")
    ingest(real, Path(__file__).resolve().parent / "data" / "otel" / "openai_chat.jsonl", progress=False)
    assert latency.fallback_rate(real, period="all", by=None).select("value", "n").rows() == [(0.0, 1)]


def test_latency_change_hand_case_and_noise_test():
    db = wb.connect(":memory:")
    rng = np.random.default_rng(5)
    day1 = rng.normal(1000, 50, 200)
    day2_same = rng.normal(1000, 50, 200)
    day2_slow = day2_same + 300
    rows = [_row(i, feature="same", latency_ms=float(x)) for i, x in enumerate(day1)]
    rows += [_row(1000 + i, feature="slow", latency_ms=float(x)) for i, x in enumerate(day1)]
    rows += [_row(2000 + i, feature="same", ts=DAY + dt.timedelta(days=1, minutes=i), latency_ms=float(x))
             for i, x in enumerate(day2_same)]
    rows += [_row(3000 + i, feature="slow", ts=DAY + dt.timedelta(days=1, minutes=i), latency_ms=float(x))
             for i, x in enumerate(day2_slow)]
    _insert(db, rows)
    df = latency.latency_change_ms(db, n_boot=500)
    assert df["feature"].to_list() == ["same", "slow"] and df["period_start"].to_list() == [DAY + dt.timedelta(days=1)] * 2
    same, slow = df.rows(named=True)
    assert slow["value"] == pytest.approx(np.percentile(day2_slow, 95) - np.percentile(day1, 95))
    assert slow["previous"] == pytest.approx(np.percentile(day1, 95)) and slow["n"] == 200 and slow["n_previous"] == 200
    assert slow["p_value"] == pytest.approx(mannwhitneyu(day2_slow, day1).pvalue, abs=1e-6)
    assert slow["p_value"] < 1e-6 and slow["lo"] > 200            # more than noise: the interval excludes 0
    assert same["p_value"] > 0.05 and same["lo"] < 0 < same["hi"]  # noise: the interval covers 0
    # seeded: the same call gives the same interval
    assert latency.latency_change_ms(db, n_boot=500).equals(df)


def test_latency_change_needs_a_previous_period():
    db = wb.connect(":memory:")
    _insert(db, [_row(0, latency_ms=1.0), _row(1, latency_ms=2.0, ts=DAY + dt.timedelta(days=2))])  # a gap day
    with pytest.warns(UndefinedMetricWarning):
        df = latency.latency_change_ms(db)
    assert df.height == 1 and df["n"][0] == 0 and df["value"][0] is None
    with pytest.warns(UndefinedMetricWarning):
        assert latency.latency_change_ms(db, period="all")["n"][0] == 0


@pytest.mark.parametrize("name", sorted(latency.SUITE))
def test_row_order_does_not_change_the_result(name):
    rows = _mixed_rows()
    db1, db2 = wb.connect(":memory:"), wb.connect(":memory:")
    _insert(db1, rows)
    _insert(db2, random.Random(9).sample(rows, len(rows)))
    fn = latency.SUITE[name]
    a, b = fn(db1, by=("feature", "model")), fn(db2, by=("feature", "model"))
    assert a.height > 1
    # sums of floats may differ in the last bit with the order of addition; anything more is a bug
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("name", sorted(latency.SUITE))
def test_empty_selection_gives_one_null_row_and_a_warning(name):
    db = wb.connect(":memory:")
    _insert(db, _mixed_rows(n=30))
    with pytest.warns(UndefinedMetricWarning):
        df = latency.SUITE[name](db, where={"feature": "nope"})
    assert df.height == 1 and df["n"][0] == 0 and df["value"][0] is None and df["metric"][0] == name
    assert df.columns[:7] == ["feature", "period_start", "metric", "value", "n", "lo", "hi"]


@pytest.mark.parametrize("name", sorted(set(latency.SUITE) - {"latency_change_ms"}))
def test_counts_recombine_over_groups(name):
    db = wb.connect(":memory:")
    _insert(db, _mixed_rows())
    fn = latency.SUITE[name]
    with warnings.catch_warnings():
        # a (feature, model) pair without calls on a day is now in the result with n = 0 (and a warning): it adds 0
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        parts = fn(db, by=("feature", "model"), period="day")
        whole = fn(db, by=(), period="all")
    assert parts["n"].sum() == whole["n"][0] > 0


def test_unknown_group_column_names_the_metric():
    db = wb.connect(":memory:")
    with pytest.raises(KeyError, match="latency_p95_ms: cannot group by \\['team'\\]"):
        latency.latency_p95_ms(db, by=("team",))
    with pytest.raises(ValueError, match="confidence"):
        latency.error_rate(db, confidence=95)


def test_cli_metrics_prints_parseable_json(tmp_path, capsys):
    path = tmp_path / "w.duckdb"
    db = wb.connect(path)
    _insert(db, [_row(i, model=m, latency_ms=float(v)) for i, (m, v) in enumerate([("m1", 100), ("m1", 300), ("m2", 50)])])
    db.close()
    code = main(["metrics", "latency_p95_ms", "--db", str(path), "--by", "feature,model", "--period", "day",
                 "--format", "json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    # m1: h = .95 -> 100 + .95 * 200 = 290
    assert [(r["model"], r["value"], r["n"]) for r in rows] == [("m1", 290.0, 2), ("m2", 50.0, 1)]


def test_latency_and_errors_default_to_the_llm_calls_and_say_so():
    # one agent task: an invoke_agent span of 10,000 ms around two chat calls (400, 600 ms; one error) and two tool
    # calls (50, 70 ms; one error). Blended, p50 over all five spans would be 400 and the error rate 2/5.
    db = wb.connect(":memory:")
    spans = [("task", "invoke_agent", 10_000.0, "ok"), ("c1", "chat", 400.0, "ok"), ("c2", "chat", 600.0, "error"),
             ("t1", "execute_tool", 50.0, "error"), ("t2", "execute_tool", 70.0, "ok")]
    for i, (cid, op, ms, status) in enumerate(spans):
        db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms, operation) values (?, ?, 'agent', ?, ?, ?)",
                          [cid, DAY + dt.timedelta(minutes=i), status, ms, op])
    p50 = latency.latency_p50_ms(db, period="all").row(0, named=True)
    assert (p50["value"], p50["n"], p50["operations"]) == (500.0, 2, "llm")  # (400 + 600) / 2
    err = latency.error_rate(db, period="all").row(0, named=True)
    assert (err["value"], err["n"], err["operations"]) == (0.5, 2, "llm")
    task = latency.task_latency_p95_ms(db, period="all").row(0, named=True)
    assert (task["value"], task["n"], task["operations"]) == (10_000.0, 1, "task")
    tool = latency.latency_p50_ms(db, period="all", operation="tool").row(0, named=True)
    assert (tool["value"], tool["n"]) == (60.0, 2)
    every = latency.latency_p50_ms(db, period="all", operation="all").row(0, named=True)
    assert (every["value"], every["n"]) == (400.0, 5)
    with pytest.raises(wb.errors.ParameterError, match="operation"):
        latency.error_rate(db, operation="")


def test_a_group_without_latency_or_a_period_without_calls_is_null_not_missing():
    # chat has calls on Jan 5 and Jan 19 (latency 100, 300); trace has calls with no latency at all (a source without
    # durations). Weekly p50 over Jan 5..25: chat 100, (week of Jan 12: no call -> null, n 0), 300; trace null, n 0 x3.
    db = wb.connect(":memory:")
    _insert(db, [_row(0, latency_ms=100.0), _row(1, ts=dt.datetime(2026, 1, 19), latency_ms=300.0),
                 _row(2, feature="trace", latency_ms=None), _row(3, feature="trace", latency_ms=None)])
    with pytest.warns(UndefinedMetricWarning, match="no data"):
        df = latency.latency_p50_ms(db, period="week", start="2026-01-05", end="2026-01-26")
    got = {(r[0], r[1].day): (r[2], r[3]) for r in df.select("feature", "period_start", "value", "n").rows()}
    assert got == {("chat", 5): (100.0, 1), ("chat", 12): (None, 0), ("chat", 19): (300.0, 1),
                   ("trace", 5): (None, 0), ("trace", 12): (None, 0), ("trace", 19): (None, 0)}
    er = latency.error_rate(db, period="week", start="2026-01-05", end="2026-01-26")
    # trace's two calls count for the error rate (n = 2 on Jan 5); chat on Jan 12 and trace on Jan 12, 19 are empty
    assert er.height == 6 and er.filter(pl.col("n") == 0).height == 3


def test_tpot_median_is_the_same_held_whole_or_from_a_band(monkeypatch):
    # The bounded form (approximate quantiles, then a band of exact values) gives quantile_cont's median to the last
    # bit: groups of 1 to 5,000 measurable calls, even and odd sizes, heavy ties, a group with no TPOT at all.
    from workbench.metrics import core

    rng = np.random.default_rng(5)
    rows, i = [], 0
    for g, size in enumerate([1, 2, 5, 6, 400, 5001]):
        for j in range(size):
            gap = float(rng.integers(1, 30)) if g % 2 else float(rng.lognormal(3, 1))
            rows.append(_row(i, feature=f"f{g}", latency_ms=200.0 + gap * 9, ttft_ms=200.0, output_tokens=10))
            i += 1
    rows.append(_row(i, feature="none", latency_ms=300.0, ttft_ms=None, output_tokens=5))
    db = wb.connect(":memory:")
    _insert(db, rows)
    out = {}
    for holistic in (True, False):
        monkeypatch.setattr(core, "HOLISTIC_QUANTILES", holistic)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            out[holistic] = latency.tpot_ms(db, period="all").sort("feature")
    assert out[True].drop("value", "lo", "hi").equals(out[False].drop("value", "lo", "hi"))
    assert out[True]["p50"].null_count() == 1 and out[True].height == 7
    for r in out[True].iter_rows(named=True):  # the median by hand
        gaps = [(x["latency_ms"] - 200.0) / 9 for x in rows if x["feature"] == r["feature"] and x["ttft_ms"]]
        assert r["p50"] == (float(np.median(gaps)) if gaps else None) or r["p50"] == pytest.approx(np.median(gaps))


def test_quantiles_are_not_held_whole_when_they_would_not_fit_in_memory():
    # 32 bytes a row against half the memory limit: 200,000 rows (6.4 MB) fit in 64 MB, not in 8 MB
    from workbench.metrics import core

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) "
                      "select 'c' || i, '2026-01-01', 'chat', 'ok', i from range(200000) r(i)")
    t = db.calls.filter(db.calls.latency_ms > 5)
    db.duckdb.execute("set memory_limit = '64MB'")
    assert core.holistic_fits(t)
    db.duckdb.execute("set memory_limit = '8MB'")
    assert not core.holistic_fits(t)
    db.duckdb.execute("set memory_limit = '64MB'")
    r = latency.latency_p95_ms(db, period="all").row(0, named=True)
    assert (r["value"], r["n"]) == (pytest.approx(189999.05), 200000)


def test_intervals_of_quantities_that_cannot_be_negative_stop_at_zero():
    """A throughput of 674 tokens/s read '[-625.5, ...]', a time per token of 134 ms '[-126.7, ...]' and 4 steps per
    task '[-3.84, ...]' (three very different samples each): clipped at 0 as a cost's interval is; the value and the
    upper bound are unchanged."""
    import workbench as wb

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, operation, feature, status, latency_ms, ttft_ms, output_tokens) "
                      "values ('a', '2026-01-01', 'chat', 'chat', 'ok', 1000, 990, 11), "
                      "('b', '2026-01-01', 'chat', 'chat', 'ok', 1000, 990, 11), "
                      "('c', '2026-01-01', 'chat', 'chat', 'ok', 1000, 200, 2000)")
    tps = wb.output_tokens_per_s(db, period="all").row(0, named=True)
    assert tps["value"] == pytest.approx(2022 / 3) and tps["lo"] == 0.0 and tps["hi"] > 1900
    db2 = wb.connect(":memory:")
    db2.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms, ttft_ms, output_tokens) values "
                       "('a', '2026-01-01', 'chat', 'ok', 110, 100, 11), ('b', '2026-01-01', 'chat', 'ok', 110, 100, 11),"
                       "('c', '2026-01-01', 'chat', 'ok', 900, 100, 3)")
    tpot = wb.tpot_ms(db2, period="all").row(0, named=True)  # 10/10, 10/10, 800/2 ms per token
    assert tpot["value"] == pytest.approx(134.0) and tpot["lo"] == 0.0 and tpot["hi"] > 134.0
    agents = wb.connect(":memory:")
    rows = [(f"r{i}", f"t{i}", None, "invoke_agent") for i in (1, 2, 3)]
    rows += [(f"s{i}", "t3", "r3", "chat") for i in range(12)]
    agents.duckdb.executemany("insert into calls (call_id, trace_id, parent_id, operation, ts, feature, status) "
                              "values (?, ?, ?, ?, '2026-01-01', 'support', 'ok')", rows)
    steps = wb.agent_steps_per_task(agents, period="all").row(0, named=True)
    assert (steps["value"], steps["n"], steps["lo"]) == (4.0, 3, 0.0)


def test_a_percentile_interval_holds_its_value_on_a_small_sample():
    """Two calls of 100 and 200 ms read "p99 = 199 ms, 95% interval [200, unbounded)": the binomial lower rank (2) lay
    above the order statistics the interpolated value sits between (1 and 2), so the interval excluded its own value;
    a q = 0.01 read "101 ms, [unbounded, 100]". Each bound is now at most (at least) the order statistic the value
    interpolates from, which only widens the interval (its coverage stays at least the confidence)."""
    db = wb.connect(":memory:")
    _insert(db, [_row(0, latency_ms=100.0), _row(1, latency_ms=200.0)])
    p99 = latency.latency_p99_ms(db, period="all").row(0, named=True)
    assert (p99["value"], p99["lo"], p99["hi"]) == (pytest.approx(199.0), 100.0, None)
    q01 = latency.latency_quantile_ms(db, q=0.01, period="all").row(0, named=True)
    assert (q01["value"], q01["lo"], q01["hi"]) == (pytest.approx(101.0), None, 200.0)
    for c in (0.5, 0.8, 0.95):  # a narrower interval crosses its value on more sample sizes: p99 of up to 9 at 80%
        for n in range(1, 30):
            rows = [_row(i, latency_ms=100.0 * (i + 1)) for i in range(n)]
            one = wb.connect(":memory:")
            _insert(one, rows)
            for q in (0.01, 0.1, 0.9, 0.95, 0.99):
                r = latency.latency_quantile_ms(one, q=q, period="all", confidence=c).row(0, named=True)
                assert r["lo"] is None or r["lo"] <= r["value"], (c, n, q, r)
                assert r["hi"] is None or r["value"] <= r["hi"], (c, n, q, r)
