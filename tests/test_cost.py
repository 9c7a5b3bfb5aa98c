"""Tests of workbench.metrics.cost and workbench.io.prices: hand-computed costs, price history, budgets, the genai-prices data."""

from __future__ import annotations

import datetime as dt
import random
import socket
import warnings

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import workbench as wb
from workbench.metrics import cost
from workbench.metrics.core import UnknownFeatureWarning
from workbench.config import ConfigError
from workbench.metrics import UndefinedMetricWarning
from workbench.io.prices import load_prices, package_source, price_overrides

CALL_COLS = ("call_id", "trace_id", "parent_id", "ts", "feature", "status", "provider", "model", "user_id",
             "session_id", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
             "reasoning_tokens", "cost_usd")
PRICE_COLS = ("provider", "model", "effective_from", "min_input_tokens", "input_usd_per_mtok", "output_usd_per_mtok",
              "cache_read_usd_per_mtok", "cache_write_usd_per_mtok", "source")


def call(call_id, ts, **kw):
    row = dict.fromkeys(CALL_COLS)
    row.update(call_id=call_id, ts=ts, feature="chat", status="ok", provider="acme", model="m1")
    row.update(kw)
    return row


def price(model, effective_from, inp, out, cr=None, cw=None, *, provider="acme", min_input_tokens=0):
    return dict(provider=provider, model=model, effective_from=effective_from, min_input_tokens=min_input_tokens,
                input_usd_per_mtok=inp, output_usd_per_mtok=out, cache_read_usd_per_mtok=cr,
                cache_write_usd_per_mtok=cw, source="test")


def make_db(calls, prices=(), path=":memory:"):
    db = wb.connect(path)
    con = db.duckdb
    for r in calls:
        con.execute(f"insert into calls ({', '.join(CALL_COLS)}) values ({', '.join('?' * len(CALL_COLS))})",
                    [r[c] for c in CALL_COLS])
    for r in prices:
        con.execute(f"insert into prices ({', '.join(PRICE_COLS)}) values ({', '.join('?' * len(PRICE_COLS))})",
                    [r[c] for c in PRICE_COLS])
    return db


def costs(db, **kw):
    df = cost.priced_calls(db, **kw).select("call_id", "cost_usd_computed", "cost_usd_used", "cost_source").to_polars()
    return {r["call_id"]: r for r in df.to_dicts()}


# ------------------------------------------------------------------------------------------------- hand-computed


def test_cached_and_reasoning_tokens_hand_computed():
    # 10,000 input of which 6,000 cache read and 1,000 cache write; 2,000 output of which 1,500 reasoning.
    # uncached 3,000 * 3 + 6,000 * 0.3 + 1,000 * 3.75 + 2,000 * 15 = 9,000 + 1,800 + 3,750 + 30,000 = 44,550 / 1e6
    db = make_db([call("a", "2026-03-05", input_tokens=10_000, output_tokens=2_000, cache_read_tokens=6_000,
                       cache_write_tokens=1_000, reasoning_tokens=1_500)],
                 [price("m1", "2025-01-01", 3.0, 15.0, 0.3, 3.75)])
    assert costs(db)["a"]["cost_usd_computed"] == pytest.approx(0.04455, rel=1e-12)
    assert costs(db)["a"]["cost_source"] == "computed"


def test_cache_prices_fall_back_to_input_price():
    # no cache prices: every input token at 2.0 -> (10,000 * 2 + 1,000 * 8) / 1e6 = 0.028
    db = make_db([call("a", "2026-03-05", input_tokens=10_000, output_tokens=1_000, cache_read_tokens=6_000,
                       cache_write_tokens=1_000)],
                 [price("m1", "2025-01-01", 2.0, 8.0)])
    assert costs(db)["a"]["cost_usd_computed"] == pytest.approx(0.028, rel=1e-12)


def test_context_size_tier():
    # base tier 1.25/10 up to 200,000 input tokens, 2.5/15 from 200,001 on (cliff: all tokens at the tier price)
    prices = [price("big", "2025-01-01", 1.25, 10.0), price("big", "2025-01-01", 2.5, 15.0, min_input_tokens=200_001)]
    db = make_db([call("small", "2026-03-05", model="big", input_tokens=200_000, output_tokens=1_000),
                  call("large", "2026-03-05", model="big", input_tokens=250_000, output_tokens=1_000)], prices)
    c = costs(db)
    assert c["small"]["cost_usd_computed"] == pytest.approx((200_000 * 1.25 + 1_000 * 10) / 1e6, rel=1e-12)  # 0.26
    assert c["large"]["cost_usd_computed"] == pytest.approx((250_000 * 2.5 + 1_000 * 15) / 1e6, rel=1e-12)  # 0.64


def test_price_change_mid_month_prices_each_call_at_its_day():
    # 1.0/2.0 until 2026-03-15, 0.5/1.0 from then on; same tokens on the 14th (23:59) and the 15th (00:00)
    prices = [price("m1", "2025-01-01", 1.0, 2.0), price("m1", "2026-03-15", 0.5, 1.0)]
    db = make_db([call("before", "2026-03-14 23:59:59", input_tokens=1_000_000, output_tokens=100_000),
                  call("after", "2026-03-15 00:00:00", input_tokens=1_000_000, output_tokens=100_000)], prices)
    c = costs(db)
    assert c["before"]["cost_usd_computed"] == pytest.approx(1.0 + 0.2, rel=1e-12)
    assert c["after"]["cost_usd_computed"] == pytest.approx(0.5 + 0.1, rel=1e-12)
    month = cost.cost_usd(db, period="month")
    assert month["value"].item() == pytest.approx(1.8, rel=1e-12)


def test_new_price_version_replaces_every_tier_of_the_old_one():
    # v1 (2025) has a long-context tier; v2 (from 2026-03-15) has one price for all sizes
    prices = [price("m1", "2025-01-01", 1.0, 2.0), price("m1", "2025-01-01", 4.0, 8.0, min_input_tokens=100_001),
              price("m1", "2026-03-15", 0.5, 1.0)]
    db = make_db([call("old_long", "2026-03-01", input_tokens=200_000, output_tokens=0),
                  call("new_long", "2026-03-20", input_tokens=200_000, output_tokens=0)], prices)
    c = costs(db)
    assert c["old_long"]["cost_usd_computed"] == pytest.approx(200_000 * 4.0 / 1e6)  # 0.8
    assert c["new_long"]["cost_usd_computed"] == pytest.approx(200_000 * 0.5 / 1e6)  # 0.1


def test_duplicate_price_rows_do_not_double_count_and_null_provider_matches_on_model():
    dup = price("m1", "2025-01-01", 1.0, 2.0)
    db = make_db([call("a", "2026-03-01", input_tokens=1_000_000, output_tokens=0),
                  call("b", "2026-03-01", provider=None, input_tokens=1_000_000, output_tokens=0)],
                 [dup, dup | {"source": "another file"}, price("m1", "2025-01-01", 9.0, 9.0, provider="zeta")])
    df = cost.priced_calls(db).select("call_id", "cost_usd_computed", "price_provider").order_by("call_id").to_polars()
    assert df.rows() == [("a", 1.0, "acme"), ("b", 1.0, "acme")]  # one row per call; 'acme' < 'zeta'


def test_a_call_without_provider_is_priced_by_a_provider_whose_price_is_in_force_at_its_time():
    """The provider was chosen by name among every provider that ever priced the model: acme's price from June made
    a March call without a provider unpriced, though zeta priced the model then."""
    db = make_db([call("a", "2026-03-01", input_tokens=1_000_000, output_tokens=0),  # acme named: no price in March
                  call("b", "2026-03-01", provider=None, input_tokens=1_000_000, output_tokens=0),
                  call("c", "2026-07-01", provider=None, input_tokens=1_000_000, output_tokens=0),
                  call("d", "2024-07-01", provider=None, input_tokens=1_000_000, output_tokens=0)],
                 [price("m1", "2026-06-01", 5.0, 5.0), price("m1", "2025-01-01", 1.0, 1.0, provider="zeta")])
    df = cost.priced_calls(db).select("call_id", "cost_usd_computed", "price_provider", "cost_source").order_by(
        "call_id").to_polars()
    assert df.rows() == [("a", None, None, "unpriced"), ("b", 1.0, "zeta", "computed"),  # zeta alone in force
                         ("c", 5.0, "acme", "computed"),  # both in force: the first by name
                         ("d", None, None, "unpriced")]  # before any price


def test_load_prices_says_when_providers_price_a_model_of_calls_without_provider_differently():
    db = make_db([call("b", "2026-03-01", provider=None, model="m1"), call("c", "2026-03-01", provider=None, model="m2"),
                  call("d", "2026-03-01", model="m3")],
                 [price("m1", "2025-01-01", 1.0, 2.0), price("m1", "2025-01-01", 9.0, 9.0, provider="zeta"),
                  price("m1", "2024-01-01", 1.0, 2.0, provider="beta"),
                  price("m2", "2025-01-01", 1.0, 2.0), price("m2", "2025-03-01", 1.0, 2.0, provider="zeta"),
                  price("m3", "2025-01-01", 1.0, 2.0), price("m3", "2025-01-01", 3.0, 2.0, provider="zeta")])
    with pytest.warns(UserWarning) as seen:
        load_prices(db, config=False)
    # m2: the same price at both; m3: its calls name their provider
    assert [str(w.message) for w in seen if str(w.message).startswith("prices:")] == [
        "prices: model 'm1' is priced differently by acme, beta, zeta; a call of it without a provider is priced by "
        "the first of them by name whose price is in force at the call's time (set the calls' provider)"]


def test_reported_cost_wins():
    db = make_db([call("a", "2026-03-05", input_tokens=1_000_000, output_tokens=0, cost_usd=0.42)],
                 [price("m1", "2025-01-01", 1.0, 2.0)])
    row = costs(db)["a"]
    assert (row["cost_usd_computed"], row["cost_usd_used"], row["cost_source"]) == (pytest.approx(1.0), 0.42, "reported")
    assert cost.cost_usd(db)["reported_share"].item() == 1.0


def test_unpriced_model_is_unpriced_never_zero():
    db = make_db([call("a", "2026-03-05", input_tokens=1_000_000, output_tokens=0),
                  call("b", "2026-03-05", model="mystery", input_tokens=1_000, output_tokens=10),
                  call("c", "2026-03-05", model="mystery", input_tokens=1_000, output_tokens=10),
                  call("tool", "2026-03-05", provider=None, model=None),
                  call("d", "2026-03-05", feature="lab", model="mystery", input_tokens=5, output_tokens=5)],
                 [price("m1", "2025-01-01", 1.0, 2.0)])
    c = costs(db)
    assert c["b"]["cost_usd_used"] is None and c["b"]["cost_source"] == "unpriced"
    assert (c["tool"]["cost_usd_used"], c["tool"]["cost_source"]) == (0.0, "none")
    with pytest.warns(UndefinedMetricWarning, match="cost_usd: some groups have n = 0"):
        df = cost.cost_usd(db, period="all")  # lab: every call unpriced, nothing to sum
    chat = df.filter(pl.col("feature") == "chat").row(0, named=True)
    assert chat["value"] == pytest.approx(1.0)
    assert (chat["unpriced_count"], chat["unpriced_rate"], chat["calls_count"]) == (2, pytest.approx(2 / 3), 4)
    lab = df.filter(pl.col("feature") == "lab").row(0, named=True)
    assert lab["value"] is None and lab["unpriced_count"] == 1 and lab["unpriced_rate"] == 1.0  # null, not 0
    rate = cost.unpriced_rate(db, period="all").filter(pl.col("feature") == "chat").row(0, named=True)
    assert (rate["value"], rate["n"]) == (pytest.approx(2 / 3), 3)
    assert rate["lo"] < 2 / 3 < rate["hi"]


def test_per_user_and_per_session():
    db = make_db([call("a", "2026-03-05", user_id="u1", session_id="s1", cost_usd=1.0),
                  call("b", "2026-03-05", user_id="u1", session_id="s2", cost_usd=3.0),
                  call("c", "2026-03-05", user_id="u2", session_id="s3", cost_usd=2.0),
                  call("d", "2026-03-05", user_id=None, session_id=None, cost_usd=100.0)])
    user = cost.cost_per_user_usd(db).row(0, named=True)
    assert (user["value"], user["n"]) == (3.0, 2)  # u1 4.0, u2 2.0; the call without a user is left out
    # sample sd of (4, 2) = sqrt(2); half width 1.959964 * sqrt(2) / sqrt(2)
    assert user["hi"] - user["value"] == pytest.approx(1.959964, abs=1e-6)
    session = cost.cost_per_session_usd(db).row(0, named=True)
    assert (session["value"], session["n"]) == (2.0, 3)
    per_call = cost.cost_per_call_usd(db).row(0, named=True)
    assert (per_call["value"], per_call["n"]) == (26.5, 4)


def test_cost_per_success_hand_computed():
    calls = [
        call("t1a", "2026-03-05 10:00", trace_id="t1", status="error", cost_usd=0.4),
        call("t1b", "2026-03-05 10:01", trace_id="t1", status="ok", cost_usd=0.4),  # retry succeeded
        call("t1c", "2026-03-05 10:01", trace_id="t1", parent_id="t1b", model=None, provider=None),  # tool
        call("t2", "2026-03-05 11:00", trace_id="t2", cost_usd=1.0),  # hallucinated
        call("t3", "2026-03-05 12:00", trace_id="t3", cost_usd=1.0),  # thumbs down
        call("t4", "2026-03-05 13:00", trace_id="t4", cost_usd=1.0),
        call("t5", "2026-03-05 14:00", trace_id="t5", status="timeout", cost_usd=0.2),
    ]
    db = make_db(calls)
    db.duckdb.execute("insert into evals (call_id, metric, value, label, evaluator, evaluator_version) values "
                      "('t2', 'hallucination_score', 0.9, 'hallucinated', 'det', '1'),"
                      "('t4', 'hallucination_score', 0.1, 'supported', 'det', '1')")
    db.duckdb.execute("insert into feedback (feedback_id, call_id, ts, kind, value) values "
                      "('f1', 't3', '2026-03-05', 'thumbs', 0), ('f2', 't4', '2026-03-05', 'thumbs', 1)")
    total = 0.4 + 0.4 + 1.0 + 1.0 + 1.0 + 0.2
    row = cost.cost_per_success_usd(db).row(0, named=True)  # successes: t1, t4
    assert (row["n"], row["tasks_count"]) == (2, 5)
    assert row["value"] == pytest.approx(total / 2)
    assert cost.cost_per_success_usd(db, success="status")["value"].item() == pytest.approx(total / 4)
    assert cost.cost_per_success_usd(db, success=["status", "feedback"])["value"].item() == pytest.approx(total / 3)
    with pytest.raises(ValueError, match="cost_per_success_usd: success"):
        cost.cost_per_success_usd(db, success="vibes")


# ------------------------------------------------------------------------------------------------- drivers, what-if


def test_cost_change_contributions_sum_to_total_change():
    rng = random.Random(3)
    calls = []
    for i in range(300):
        month = rng.choice([1, 2])
        calls.append(call(f"c{i}", dt.datetime(2026, month, rng.randint(1, 28), rng.randint(0, 23)),
                          feature=rng.choice(["chat", "search"]), model=rng.choice(["m1", "m2", "m3"]),
                          cost_usd=round(rng.uniform(0.001, 2.0), 6) if rng.random() > 0.05 else None,
                          input_tokens=1000, output_tokens=100))
    calls.append(call("new", "2026-02-03", model="m4", cost_usd=5.0))  # new in February: all volume
    db = make_db(calls, [price(m, "2025-01-01", 1.0, 2.0) for m in ("m1", "m2", "m3")])
    df = cost.cost_change_usd(db, period="month")
    assert df["period_start"].unique().to_list() == [dt.datetime(2026, 2, 1)]
    totals = cost.cost_usd(db, period="month").pivot(on="period_start", index="feature", values="value")
    for feature, jan, feb in totals.rows():
        part = df.filter(pl.col("feature") == feature)
        assert part["value"].sum() == pytest.approx(feb - jan, abs=1e-9)
        assert part["total_change_usd"].unique().item() == pytest.approx(feb - jan, abs=1e-9)
        assert (part["volume_effect_usd"] + part["rate_effect_usd"] - part["value"]).abs().max() < 1e-9
    m4 = df.filter(pl.col("model") == "m4").row(0, named=True)
    assert (m4["value"], m4["volume_effect_usd"], m4["rate_effect_usd"]) == (5.0, 5.0, 0.0)



def test_a_change_in_spend_of_only_unpriced_calls_is_unknown_not_zero():
    """A feature whose calls are all unpriced (a self-hosted model with no price) read 'Total change $0.00' in the cost
    report's 'What drove the change', next to its own rows' unknown change: no spend change known is no change."""
    calls = [call(f"u{i}", dt.datetime(2026, 1 + i % 2, 10), feature="chat", model="mystery", input_tokens=100,
                  output_tokens=10) for i in range(4)]
    calls += [call("p1", "2026-01-10", feature="search", model="m1", cost_usd=1.0),
              call("p2", "2026-02-10", feature="search", model="m1", cost_usd=3.0)]
    db = make_db(calls)
    got = {r[0]: r[1:] for r in cost.cost_change_usd(db, period="month").select(
        "feature", "value", "total_change_usd", "share_of_change", "unpriced_count").rows()}
    assert got == {"chat": (None, None, None, 4), "search": (2.0, 2.0, 1.0, 0)}


def test_cost_change_counts_priced_model_calls_not_tool_spans():
    """The cost report's 'What drove the change' showed an Agent row with no provider and no model, 'Change in spend
    $0.00, Sample 2,206': the agent's tool and agent spans (no model, no tokens: they cost nothing) counted as priced
    calls. As cost_usd's n, the change counts the model calls; spans that cost nothing are no row of their own."""
    calls = [call(f"m{i}", dt.datetime(2026, 2 if i % 2 else 1, 10), feature="agent", cost_usd=1.0) for i in range(6)]
    calls += [call(f"t{i}", dt.datetime(2026, 2 if i % 2 else 1, 11), feature="agent", provider=None, model=None)
              for i in range(8)]
    db = make_db(calls)
    df = cost.cost_change_usd(db, period="month")
    assert df.select("model", "value", "n", "previous_usd", "current_usd").rows() == [("m1", 0.0, 6, 3.0, 3.0)]
    assert cost.cost_usd(db, period="month")["n"].to_list() == [3, 3]

def test_cost_change_compares_the_current_period_up_to_end_with_as_much_of_the_previous_one():
    """cost_change_usd(period="week", end=Thursday) counted the current week's calls after end (the window's end was
    ignored), and a week still running (the clock mid-week) was compared with the whole previous week: every model
    read as a drop in volume. The current period stops at end and at the clock; the previous one is compared over
    the same span from its start."""
    calls = [call(f"d{i}", dt.datetime(2026, 11, 9, 10) + dt.timedelta(days=i), cost_usd=1.0) for i in range(14)]
    calls.append(call("late", "2026-11-21 10:00", cost_usd=10.0))  # Saturday of the current week: after end
    db = make_db(calls)
    df = cost.cost_change_usd(db, period="week", end="2026-11-19")  # Mon 16 .. Wed 18 against Mon 9 .. Wed 11
    assert df.select("period_start", "value", "n", "previous_usd", "current_usd", "period_end",
                     "previous_period_end").rows() == [
        (dt.datetime(2026, 11, 16), 0.0, 6, 3.0, 3.0, dt.datetime(2026, 11, 19), dt.datetime(2026, 11, 12))]
    # a whole week is compared with the whole week before it
    whole = cost.cost_change_usd(db, period="week", end="2026-11-23")
    assert whole.select("value", "previous_usd", "current_usd", "previous_period_end").rows() == [
        (10.0, 7.0, 17.0, dt.datetime(2026, 11, 16))]

    # the week the clock is in: only its elapsed part of the previous week is compared
    from workbench.schema import utc_now

    now = utc_now()
    monday = dt.datetime(now.year, now.month, now.day) - dt.timedelta(days=now.weekday())
    db = make_db([call("p1", monday - dt.timedelta(days=7), cost_usd=1.0),
                  call("p2", monday - dt.timedelta(microseconds=1), cost_usd=4.0),  # after the elapsed span
                  call("c1", monday, cost_usd=2.0)])
    df = cost.cost_change_usd(db, period="week")
    assert df.select("value", "previous_usd", "current_usd").rows() == [(1.0, 1.0, 2.0)]


def test_cost_change_of_a_period_whose_calls_are_all_unpriced_is_unknown_not_zero():
    """A model whose calls of a period are all unpriced spent an unknown sum, not $0: a model priced in February and
    streamed without usage in March read "spends $5 less, all volume", and one never priced read 0.0 in every column."""
    db = make_db([call("p1", "2026-02-10", cost_usd=5.0),  # m1: priced in February
                  call("s1", "2026-03-10"), call("s2", "2026-03-11"),  # m1 in March: no token count, unpriced
                  call("a", "2026-02-10", model="m2", cost_usd=1.0), call("b", "2026-03-10", model="m2", cost_usd=3.0),
                  call("x1", "2026-02-10", model="mystery", input_tokens=10, output_tokens=10),
                  call("x2", "2026-03-10", model="mystery", input_tokens=10, output_tokens=10)])
    with pytest.warns(UndefinedMetricWarning):  # mystery: no priced call in either month
        df = cost.cost_change_usd(db, period="month", at="2026-03-15")
    got = {r["model"]: r for r in df.iter_rows(named=True)}
    cols = ("previous_usd", "current_usd", "value", "n", "unpriced_count", "volume_effect_usd", "rate_effect_usd",
            "share_of_change")
    assert {m: tuple(r[c] for c in cols) for m, r in got.items()} == {
        "m1": (5.0, None, None, 1, 2, None, None, None),
        "m2": (1.0, 3.0, 2.0, 2, 0, 0.0, 2.0, 1.0),  # one call each month: all rate
        "mystery": (None, None, None, 0, 2, None, None, None),
    }
    assert df["total_change_usd"].to_list() == [2.0, 2.0, 2.0]  # of the known changes; unpriced_count says what is not


def test_cost_change_period_all_needs_a_window():
    db = make_db([call("a", "2026-03-05", cost_usd=1.0), call("b", "2026-03-01", cost_usd=3.0)])
    df = cost.cost_change_usd(db, period="all", start="2026-03-03", end="2026-03-05 12:00", by=None)
    assert df.select("value", "previous_usd", "current_usd").rows() == [(-2.0, 3.0, 1.0)]
    with pytest.raises(ValueError, match="cost_change_usd: period='all' needs start < end"):
        cost.cost_change_usd(db, period="all")


def test_whatif_repricing_hand_computed():
    prices = [price("big", "2025-01-01", 10.0, 30.0, 5.0),
              price("small", "2025-01-01", 1.0, 4.0, 0.1),
              price("small", "2026-03-15", 0.5, 2.0, 0.05),  # cheaper from the 15th
              price("small", "2025-01-01", 2.0, 8.0, 0.2, min_input_tokens=100_001)]  # long-context tier
    calls = [call("a", "2026-03-01", model="big", input_tokens=10_000, output_tokens=1_000, cache_read_tokens=4_000),
             call("b", "2026-03-20", model="big", input_tokens=10_000, output_tokens=1_000, cost_usd=0.5),
             call("c", "2026-03-02", model="big", input_tokens=150_000, output_tokens=1_000),
             call("d", "2026-03-03", model="mystery", input_tokens=10, output_tokens=10)]  # unpriced: skipped
    db = make_db(calls, prices)
    row = cost.whatif_cost_usd(db, model="small", period="month").row(0, named=True)
    # a: small 1.0/4.0/0.1 -> (6,000 * 1 + 4,000 * 0.1 + 1,000 * 4) / 1e6 = 0.0104; actual (6,000*10+4,000*5+1,000*30)/1e6 = 0.11
    # b: small from the 15th 0.5/2.0 -> (10,000 * 0.5 + 1,000 * 2) / 1e6 = 0.007; actual reported 0.5
    # c: tier 2.0/8.0 -> (150,000 * 2 + 1,000 * 8) / 1e6 = 0.308; actual (150,000 * 10 + 1,000 * 30) / 1e6 = 1.53
    assert row["value"] == pytest.approx(0.0104 + 0.007 + 0.308, rel=1e-12)
    assert row["actual_usd"] == pytest.approx(0.11 + 0.5 + 1.53, rel=1e-12)
    assert (row["n"], row["skipped_count"], row["whatif_model"], row["whatif_provider"]) == (3, 1, "small", "acme")
    assert row["change_usd"] == pytest.approx(row["value"] - row["actual_usd"])
    with pytest.raises(ValueError, match="whatif_cost_usd: no price for model 'nope'"):
        cost.whatif_cost_usd(db, model="nope")
    # a typo is told the priced model it is closest to, not only to load prices for a model that has them
    with pytest.raises(ValueError, match=r"^whatif_cost_usd: no price for model 'smal' in the prices table; did you "
                                         r"mean 'small'\? \(else run load_prices, or add a \[\[prices\]\] entry"):
        cost.whatif_cost_usd(db, model="smal")
    with pytest.raises(ValueError, match="whatif_cost_usd: option model is required"):
        cost.whatif_cost_usd(db)


def test_whatif_through_metrics_compute_as_the_cli_passes_it():
    from workbench.cli import _params
    from workbench.metrics import compute

    db = make_db([call("a", "2026-03-01", model="big", input_tokens=1_000, output_tokens=0)],
                 [price("big", "2025-01-01", 10.0, 30.0), price("small", "2025-01-01", 1.0, 4.0)])
    df = compute("whatif_cost_usd", db, **_params(["model=small"]))
    assert df["value"].item() == pytest.approx(0.001)


# ------------------------------------------------------------------------------------------------- budgets


def budget_toml(tmp_path, text='[budget.chat]\nmonthly_usd = 100\nwarn_at = 0.85\n'):
    p = tmp_path / "workbench.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("spend, status, alert", [(84.0, "ok", None), (86.0, "warn", "warning"),
                                                  (101.0, "over", "critical")])
def test_budget_status_thresholds(tmp_path, spend, status, alert):
    db = make_db([call("a", "2026-04-01 00:00", cost_usd=spend / 2), call("b", "2026-04-11 00:00", cost_usd=spend / 2),
                  call("old", "2026-03-31 23:59", cost_usd=1000.0)])  # last month: not counted
    df, firing = cost.budget_status(db, config=budget_toml(tmp_path), at="2026-04-11 00:00")
    row = df.row(0, named=True)
    assert (row["status"], row["alert"], firing) == (status, alert, alert is not None)
    assert row["spend_usd"] == pytest.approx(spend)
    # 10 days elapsed of 30: burn = spend / 10 per day, linear forecast = spend * 3
    assert row["burn_rate_usd_per_day"] == pytest.approx(spend / 10)
    assert row["forecast_usd"] == pytest.approx(spend * 3)
    assert row["forecast_share"] == pytest.approx(spend * 3 / 100)


@pytest.mark.parametrize("at, days_elapsed, forecast", [
    ("2026-03-01 00:00:00", 1.0, 10.0 + 10.0 * 30),                        # the first instant: at least one day
    ("2026-03-01 12:00:00", 1.0, 10.0 + 10.0 * 30),                        # half a day, counted as one
    ("2026-03-16 00:00:00", 15.0, 10.0 + 10.0 / 15 * 16),                  # 15 days gone, 16 left
    ("2026-03-31 23:59:59", 30 + 86399 / 86400, 10.0 * 31 / (30 + 86399 / 86400)),  # 1 s left
])
def test_budget_forecast_extrapolates_the_days_elapsed_over_the_month_once(tmp_path, at, days_elapsed, forecast):
    """forecast = spend + burn x (days_in_month - days_elapsed), the days_elapsed the burn rate is taken over: on the
    1st (31-day March, 10 USD spent at 00:00) 10 + 10 x 30 = 310 = 10 x 31, not 10 + 10 x 31 = 320 (a 32-day month)."""
    db = make_db([call("a", "2026-03-01 00:00:00", cost_usd=10.0)])
    df, _ = cost.budget_status(db, config=budget_toml(tmp_path, '[budget.chat]\nmonthly_usd = 300\n'), at=at)
    row = df.row(0, named=True)
    assert (row["spend_usd"], row["days_in_month"]) == (10.0, 31)
    assert row["days_elapsed"] == pytest.approx(days_elapsed, rel=1e-12)
    assert row["burn_rate_usd_per_day"] == pytest.approx(10.0 / days_elapsed, rel=1e-12)
    assert row["forecast_usd"] == pytest.approx(forecast, rel=1e-12)
    assert row["forecast_share"] == pytest.approx(forecast / 300, rel=1e-12)


def test_budget_cli_exit_codes(tmp_path, capsys):
    from workbench.cli import main

    path = str(tmp_path / "wb.duckdb")
    make_db([call("a", "2026-04-05", cost_usd=50.0), call("b", "2026-04-06", feature="search", cost_usd=95.0)],
            path=path).close()
    ok = budget_toml(tmp_path, '[budget.chat]\nmonthly_usd = 100\n')
    assert main(["budget", "--db", path, "--config", str(ok), "--at", "2026-04-06"]) == 0
    firing = tmp_path / "firing.toml"
    firing.write_text('[budget.chat]\nmonthly_usd = 100\n[budget.search]\nmonthly_usd = 100\nwarn_at = 0.9\n')
    assert main(["budget", "--db", path, "--config", str(firing), "--format", "csv", "--at", "2026-04-06"]) == 1
    out = capsys.readouterr().out
    assert "search" in out and "warning" in out
    assert main(["budget", "--db", path, "--config", str(firing), "--at", "2026-04-05 12:00"]) == 0


def test_a_budget_with_unpriced_calls_does_not_read_ok(tmp_path):
    """Unpriced calls have no spend to add, not a spend of 0: a month whose calls are all unpriced read spend 0,
    status ok, no alert, for ever. Their share is a column; while the known spend is below the warning, the status is
    'unpriced' and a warning fires (the CLI exits 3, no data); a known spend already over a threshold keeps its status."""
    rows = [call(f"u{i}", f"2026-04-0{1 + i}", feature="billing", model="mystery", input_tokens=100, output_tokens=10)
            for i in range(8)]
    rows += [call("p1", "2026-04-02", feature="mixed", cost_usd=10.0),
             call("p2", "2026-04-03", feature="mixed", model="mystery", input_tokens=100, output_tokens=10),
             call("tool", "2026-04-03", feature="mixed", provider=None, model=None),  # no model, no tokens: costs 0
             call("p3", "2026-04-02", feature="priced", cost_usd=10.0),
             call("p4", "2026-04-02", feature="over", cost_usd=120.0),
             call("p5", "2026-04-03", feature="over", model="mystery", input_tokens=100, output_tokens=10)]
    db = make_db(rows)
    toml = "".join(f"[budget.{f}]\nmonthly_usd = 100\n" for f in ("billing", "mixed", "priced", "over"))
    df, firing = cost.budget_status(db, config=budget_toml(tmp_path, toml), at="2026-04-10")
    got = {r["feature"]: r for r in df.iter_rows(named=True)}
    assert firing
    # feature: (spend, unpriced calls, their share of the calls that need a price, status, alert)
    assert {f: (r["spend_usd"], r["unpriced_count"], r["unpriced_rate"], r["status"], r["alert"])
            for f, r in got.items()} == {
        "billing": (0.0, 8, 1.0, "unpriced", "warning"),
        "mixed": (10.0, 1, 0.5, "unpriced", "warning"),
        "priced": (10.0, 0, 0.0, "ok", None),
        "over": (120.0, 1, 0.5, "over", "critical"),
    }
    # only the priced features are ok: a budget of priced calls alone does not fire
    df, firing = cost.budget_status(db, config=budget_toml(tmp_path, "[budget.priced]\nmonthly_usd = 100\n"),
                                    at="2026-04-10")
    assert df.select("status", "alert", "unpriced_rate").rows() == [("ok", None, 0.0)] and not firing


def test_a_successful_model_call_without_token_counts_is_unpriced_not_zero(tmp_path):
    """A stream read without include_usage records a successful call of a priced model with no token count: it was
    billed, for a sum nobody knows, and was priced as a computed $0.00, so the cost, the budget and a what-if read
    low and said nothing. It is unpriced now (counted in unpriced_count, the budget month 'unpriced'); a failed call
    without usage (OpenTelemetry leaves it out) still costs 0, a reported cost is still used, and an agent task
    span naming its model, whose tokens are on the model calls inside it, still costs 0."""
    db = make_db([call("priced", "2026-04-02", input_tokens=1_000_000, output_tokens=500_000),  # 1 + 1 = $2
                  call("stream", "2026-04-02"),  # ok, model m1, no token count, no reported cost
                  call("failed", "2026-04-02", status="error"),
                  call("gateway", "2026-04-02", cost_usd=0.25)],
                 [price("m1", "2025-01-01", 1.0, 2.0), price("m2", "2025-01-01", 0.5, 1.0)])
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, operation, provider, model) values "
                      "('task', '2026-04-02', 'chat', 'ok', 'invoke_agent', 'acme', 'm1')")
    c = costs(db)
    assert {k: (r["cost_usd_computed"], r["cost_usd_used"], r["cost_source"]) for k, r in c.items()} == {
        "priced": (pytest.approx(2.0), pytest.approx(2.0), "computed"),
        "stream": (None, None, "unpriced"),
        "failed": (0.0, 0.0, "computed"),
        "gateway": (None, 0.25, "reported"),
        "task": (0.0, 0.0, "computed"),
    }
    row = cost.cost_usd(db, period="all").row(0, named=True)
    assert (row["value"], row["n"], row["unpriced_count"], row["unpriced_rate"]) == (
        pytest.approx(2.25), 4, 1, pytest.approx(1 / 5))
    df, firing = cost.budget_status(db, config=budget_toml(tmp_path), at="2026-04-10")
    assert df.select("spend_usd", "status", "unpriced_count").rows() == [(pytest.approx(2.25), "unpriced", 1)]
    # re-priced on m2, the call of unknown tokens (reported cost or none) is skipped, not compared at $0
    w = cost.whatif_cost_usd(db, model="m2", period="all").row(0, named=True)
    assert (w["value"], w["actual_usd"], w["n"], w["skipped_count"]) == (pytest.approx(1.0), pytest.approx(2.0), 3, 2)


def test_a_model_call_missing_a_token_count_it_is_billed_for_is_unpriced(tmp_path):
    """A successful chat call with one of its two token counts null was priced from the other alone (an output of
    unknown length read as free), and an embeddings call with no input count (the only tokens it is billed for) was a
    computed $0.00. Both are unpriced now; an embeddings call with its input count and no output count is priced
    from the input (it has no output), and a failed call missing a count still costs what it counted."""
    db = make_db([call("chat_in", "2026-04-02", input_tokens=1_000_000),  # no output count: unknown cost
                  call("chat_out", "2026-04-02", output_tokens=1_000_000),  # no input count: unknown cost
                  call("failed", "2026-04-02", status="error", input_tokens=1_000_000)],  # $1, never answered
                 [price("m1", "2025-01-01", 1.0, 2.0)])
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, operation, provider, model, input_tokens) "
                      "values ('emb', '2026-04-02', 'chat', 'ok', 'embeddings', 'acme', 'm1', 1000000),"  # $1 of input
                      "('emb_none', '2026-04-02', 'chat', 'ok', 'embeddings', 'acme', 'm1', null)")  # unknown cost
    c = costs(db)
    assert {k: (r["cost_usd_computed"], r["cost_source"]) for k, r in c.items()} == {
        "chat_in": (None, "unpriced"), "chat_out": (None, "unpriced"), "emb": (pytest.approx(1.0), "computed"),
        "emb_none": (None, "unpriced"), "failed": (pytest.approx(1.0), "computed")}
    row = cost.cost_usd(db, period="all").row(0, named=True)
    assert (row["value"], row["n"], row["unpriced_count"]) == (pytest.approx(2.0), 2, 3)


def test_budget_cli_exits_3_when_the_month_s_calls_are_unpriced(tmp_path, capsys):
    """A month whose spend is unknown (unpriced calls) and under its thresholds exits 3, no data, as an SLO with no
    call in its window does: not 0 (measured and ok), and not 1, which says an alert fired on what was measured (and
    still wins: a known spend over the budget exits 1, unpriced calls or not)."""
    from workbench.cli import main

    path = str(tmp_path / "wb.duckdb")
    make_db([call(f"u{i}", "2026-11-2" + str(i), feature="billing_helper", model="mystery", input_tokens=1000,
                  output_tokens=100) for i in range(3)]
            + [call("o1", "2026-11-20", feature="search", cost_usd=120.0),
               call("o2", "2026-11-21", feature="search", model="mystery", input_tokens=1000, output_tokens=100)],
            path=path).close()
    cfg = budget_toml(tmp_path, "[budget.billing_helper]\nmonthly_usd = 100\n")
    assert main(["budget", "--db", path, "--config", str(cfg), "--format", "csv", "--at", "2026-11-23"]) == 3
    out = pl.read_csv(capsys.readouterr().out.encode())
    assert out.select("feature", "spend_usd", "unpriced_count", "unpriced_rate", "status", "alert").rows() == [
        ("billing_helper", 0.0, 3, 1.0, "unpriced", "warning")]
    both = budget_toml(tmp_path, "[budget.billing_helper]\nmonthly_usd = 100\n[budget.search]\nmonthly_usd = 100\n")
    assert main(["budget", "--db", path, "--config", str(both), "--format", "csv", "--at", "2026-11-23"]) == 1
    out = pl.read_csv(capsys.readouterr().out.encode())
    assert out.select("feature", "status").rows() == [("billing_helper", "unpriced"), ("search", "over")]


def test_a_budget_month_with_no_call_at_all_is_no_data_not_ok(tmp_path, capsys):
    """A month no call of any feature reached (calls that stopped arriving, or --at 1999-01-01 long before the data)
    read $0 spent, status ok, exit 0: nothing was measured. It is 'no data' now, a warning (a scheduled run notifies
    it) and exit 3, as an SLO with no call in its window. A feature that has no call in a month that other features'
    calls reached is quiet, not unmeasured: 'no calls', no alert, exit 0."""
    from workbench.cli import main

    path = str(tmp_path / "wb.duckdb")
    make_db([call("a", "2026-04-05", cost_usd=50.0), call("b", "2026-04-06", feature="search", cost_usd=10.0)],
            path=path).close()
    cfg = budget_toml(tmp_path, "[budget.chat]\nmonthly_usd = 100\n[budget.quiet]\nmonthly_usd = 100\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownFeatureWarning)  # 'quiet' has no call at all: warned apart
        for at in ("1999-01-01", "2026-05-20"):  # before the data; after the calls stopped (April's last on the 6th)
            assert main(["budget", "--db", path, "--config", str(cfg), "--format", "csv", "--at", at]) == 3
            out = pl.read_csv(capsys.readouterr().out.encode())
            assert out.select("feature", "spend_usd", "status", "alert").rows() == [
                ("chat", 0.0, "no data", "warning"), ("quiet", 0.0, "no data", "warning")]
        # April has calls (chat's $50 and search's): the budget of a feature without one is quiet, and said so
        assert main(["budget", "--db", path, "--config", str(cfg), "--format", "csv", "--at", "2026-04-10"]) == 0
        out = pl.read_csv(capsys.readouterr().out.encode())
        assert out.select("feature", "spend_usd", "status").rows() == [("chat", 50.0, "ok"), ("quiet", 0.0, "no calls")]
        df, firing = cost.budget_status(wb.connect(path, read_only=True), config=cfg, at="2026-05-20")
    assert firing and df["status"].to_list() == ["no data", "no data"]


def test_the_first_hours_of_a_month_before_its_first_call_are_not_no_data(tmp_path):
    """At 00:05 on the 1st no call has reached the new month yet, while calls arrived until the minute before: a run
    scheduled then warned 'no data' on every budget, month after month. Calls in the day before ``at`` show the data
    is flowing: the budgets are measured ($0 so far, quiet), not unmeasured."""
    db = make_db([call("a", "2026-04-30 23:59:00", cost_usd=5.0), call("b", "2026-04-29 10:00:00", cost_usd=1.0)])
    cfg = budget_toml(tmp_path, "[budget.chat]\nmonthly_usd = 100\n")
    df, firing = cost.budget_status(db, config=cfg, at="2026-05-01 00:05:00")
    assert df.select("feature", "spend_usd", "status", "alert").rows() == [("chat", 0.0, "no calls", None)]
    assert not firing
    # the last call two days before: the calls stopped, nothing measured
    df, firing = cost.budget_status(db, config=cfg, at="2026-05-02 00:05:00")
    assert df["status"].to_list() == ["no data"] and firing


def test_budget_feature_without_calls_spends_zero(tmp_path):
    db = make_db([call("a", "2026-04-05", cost_usd=1.0)])
    with pytest.warns(UnknownFeatureWarning, match=r"\[budget.other\]: no call has feature 'other'"):
        df, firing = cost.budget_status(db, config=budget_toml(tmp_path, '[budget.other]\nmonthly_usd = 10\n'),
                                        at="2026-04-10")
    # April has a call (of chat): the budget of a feature with none spent nothing, measured, and says so
    assert df.select("feature", "spend_usd", "status").rows() == [("other", 0.0, "no calls")] and not firing


def _feature_warnings(db, cfg, at="2026-04-06"):
    """The UnknownFeatureWarning messages of ``budget_status`` (at least one is expected)."""
    with pytest.warns(UnknownFeatureWarning) as got:
        cost.budget_status(db, config=cfg, at=at)
    return [str(w.message) for w in got if w.category is UnknownFeatureWarning]


def test_a_budget_for_a_misspelled_feature_warns_with_the_closest_name(tmp_path, capsys):
    """A typo in a budget's feature read as a feature that spends nothing: status ok for ever, no alert, no word."""
    from workbench.cli import main

    path = str(tmp_path / "wb.duckdb")
    make_db([call("a", "2026-04-05", cost_usd=500.0, feature="support_assistant"),
             call("b", "2026-04-05", cost_usd=1.0, feature="search")], path=path).close()
    cfg = budget_toml(tmp_path, '[budget.suport_assistant]\nmonthly_usd = 100\n[budget.search]\nmonthly_usd = 100\n')
    assert _feature_warnings(path, cfg) == [
        "workbench.toml [budget.suport_assistant]: no call has feature 'suport_assistant', so it is never measured and never fires; "
        "did you mean 'support_assistant'?"]
    # the command line prints it as one line on standard error
    assert main(["budget", "--db", path, "--config", str(cfg), "--at", "2026-04-06"]) == 0
    err = capsys.readouterr().err
    assert ("workbench budget: warning: workbench.toml [budget.suport_assistant]: no call has feature "
            "'suport_assistant', so it is never measured and never fires; did you mean 'support_assistant'?"
            ) in err.splitlines()
    assert "UnknownFeatureWarning" not in err and ".py:" not in err
    # a feature renamed by a deploy: the budget read "ok" at $0 while the new name spent $150
    renamed = str(tmp_path / "renamed.duckdb")
    make_db([call("a", "2026-03-05", cost_usd=5.0, feature="support_assistant"),
             call("b", "2026-04-05", cost_usd=150.0, feature="Support Assistant")], path=renamed).close()
    cfg3 = budget_toml(tmp_path, '[budget.support_assistant]\nmonthly_usd = 10\n')
    assert _feature_warnings(renamed, cfg3) == [
        "workbench.toml [budget.support_assistant]: calls of this window name feature 'Support Assistant' (1 calls), "
        "not 'support_assistant' (0 calls), so they are not measured by it; a feature is matched exactly (renamed?)"]
    # a feature the database has, even one that spent nothing this month, does not warn
    cfg2 = budget_toml(tmp_path, '[budget.search]\nmonthly_usd = 100\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownFeatureWarning)
        cost.budget_status(path, config=cfg2, at="2026-05-06")


@pytest.mark.parametrize("text, message", [
    ('[budget.chat]\nwarn_at = 0.5\n', "[budget.chat]: missing 'monthly_usd'"),
    ('[budget.chat]\nmonthly_usd = "lots"\n', "[budget.chat]: monthly_usd must be a number"),
    ('[budget.chat]\nmonthly_usd = 0\n', "[budget.chat]: monthly_usd must be > 0"),
    ('[budget.chat]\nmonthly_usd = 10\nwarn_at = 1.5\n', "[budget.chat]: warn_at must be in"),
    ('[budget.chat]\nmonthy_usd = 10\n', "[budget.chat]: unknown key 'monthy_usd'"),
])
def test_budget_config_errors_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        cost.budgets(budget_toml(tmp_path, text))
    assert "workbench.toml" in str(exc.value) and message in str(exc.value)


@pytest.mark.parametrize("entry, message", [
    ('provider = "azure"\nmodel = "m"\noutput_usd_per_mtok = 1.5\n', "missing 'input_usd_per_mtok'"),
    ('provider = "azure"\nmodel = "m"\ninput_usd_per_mtok = -1\noutput_usd_per_mtok = 1.5\n', "input_usd_per_mtok must be in"),
    ('model = "m"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1.5\n', "provider must be a non-empty string"),
    ('provider = "azure"\nmodel = "m"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1.5\neffective_from = "soon"\n',
     "effective_from must be a TOML date"),
    ('provider = "azure"\nmodel = "m"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1.5\ncached = 1\n',
     "unknown key 'cached'"),
])
def test_price_override_errors_name_the_key(tmp_path, entry, message):
    p = budget_toml(tmp_path, "[[prices]]\n" + entry)
    with pytest.raises(ConfigError) as exc:
        price_overrides(p)
    assert "workbench.toml [prices #1]" in str(exc.value) and message in str(exc.value)


# ------------------------------------------------------------------------------------------------- genai-prices data


@pytest.fixture(scope="module")
def loaded():
    db = make_db([call("a", "2025-03-01", provider="openai", model="gpt-4o-2024-08-06", input_tokens=10_000,
                       output_tokens=500, cache_read_tokens=4_000),
                  call("b", "2025-03-01", provider="openai", model="o3", input_tokens=10_000, output_tokens=2_000),
                  call("c", "2025-07-01", provider="openai", model="o3", input_tokens=10_000, output_tokens=2_000),
                  call("d", "2025-07-01", provider="gcp.vertex_ai", model="gemini-2.5-pro", input_tokens=250_000,
                       output_tokens=1_000, cache_read_tokens=50_000),
                  call("e", "2025-07-01", provider="azure", model="azure-trace-model", input_tokens=1_000,
                       output_tokens=1_000)])
    load_prices(db, config=False)
    return db


def test_gpt4o_input_price_matches_the_package_public_api(loaded):
    from genai_prices import Usage, calc_price

    ts = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
    expected = calc_price(Usage(input_tokens=1_000_000), "gpt-4o", provider_id="openai", genai_request_timestamp=ts)
    got = loaded.sql("select input_usd_per_mtok, source from prices where provider = 'openai' and model = 'gpt-4o' "
                     "and effective_from <= '2025-03-01' order by effective_from desc limit 1")
    assert got["input_usd_per_mtok"].item() == pytest.approx(float(expected.input_price), rel=1e-12)
    assert got["source"].item() == package_source()


@pytest.mark.parametrize("call_id", ["a", "b", "c", "d"])
def test_computed_cost_matches_genai_prices_calc_price(loaded, call_id):
    """Our join (alias names, price history, tiers, cache reads) against the package's own calc_price, per call."""
    from genai_prices import Usage, calc_price

    r = loaded.sql("select provider, model, ts, input_tokens, output_tokens, cache_read_tokens from calls "
                   f"where call_id = '{call_id}'").row(0, named=True)
    provider = {"gcp.vertex_ai": "google"}.get(r["provider"], r["provider"])
    usage = Usage(input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
                  cache_read_tokens=r["cache_read_tokens"] or 0)
    expected = calc_price(usage, r["model"], provider_id=provider,
                          genai_request_timestamp=r["ts"].replace(tzinfo=dt.timezone.utc))
    assert costs(loaded)[call_id]["cost_usd_computed"] == pytest.approx(float(expected.total_price), rel=1e-9)


def _time_of_day_models():
    """Every (provider, model) of the bundled genai-prices data with a time-of-day price, and the instants to try:
    00:00, each window edge, 1 µs before it, noon, 23:59:59.999999, on a day before and on each price-change day."""
    from genai_prices.types import ModelPrice, StartDateConstraint, TimeOfDateConstraint

    from workbench.io.prices import bundled_providers

    out = []
    for p in bundled_providers():
        for m in p.models:
            if isinstance(m.prices, ModelPrice):
                continue
            windows = [cp.constraint for cp in m.prices if isinstance(cp.constraint, TimeOfDateConstraint)]
            if not windows:
                continue
            days = {dt.date(2025, 6, 2)}
            for cp in m.prices:
                if isinstance(cp.constraint, StartDateConstraint):
                    days |= {cp.constraint.start_date, cp.constraint.start_date - dt.timedelta(days=1)}
            edges = {dt.time(0), dt.time(12), dt.time(23, 59, 59, 999999)}
            for w in windows:  # naive times are UTC in genai-prices, as here
                for t in (w.start_time, w.end_time):
                    at = dt.datetime.combine(dt.date(2025, 1, 2), t.replace(tzinfo=None))
                    edges |= {t.replace(tzinfo=None), (at - dt.timedelta(microseconds=1)).time()}
            out.append((p.id, m.id, sorted(dt.datetime.combine(d, t) for d in days for t in edges)))
    return out


def test_time_of_day_prices_match_genai_prices_calc_price_at_every_window_edge():
    """DeepSeek's (and every other) time-of-day price: each call at the price calc_price charges at its own instant.

    genai-prices 0.2.3 lists deepseek-chat's off-peak price (0.135 / 0.55 USD per Mtok) as the unconditional one and its
    standard price (0.27 / 1.10) as the one of 00:30-16:30 UTC; a 10:00 call of 1M input + 1M output tokens costs
    0.27 + 1.10 = 1.37 USD, not 0.685."""
    from genai_prices import Usage, calc_price

    models = _time_of_day_models()
    assert {("deepseek", "deepseek-chat"), ("deepseek", "deepseek-reasoner")} <= {(p, m) for p, m, _ in models}
    calls, expected = [], {}
    for p, m, instants in models:
        for ts in instants:
            cid = f"{m}@{ts.isoformat()}"
            calls.append(call(cid, ts, provider=p, model=m, input_tokens=1_000_000, output_tokens=1_000_000,
                              cache_read_tokens=200_000))
            usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=200_000)
            expected[cid] = float(calc_price(usage, m, provider_id=p,
                                             genai_request_timestamp=ts.replace(tzinfo=dt.timezone.utc)).total_price)
    db = make_db(calls)
    load_prices(db, config=False)
    got = {k: v["cost_usd_computed"] for k, v in costs(db).items()}
    assert got == pytest.approx(expected, rel=1e-12)
    # the figures of the doc: deepseek-chat at 10:00 UTC (standard) and 20:00 UTC (off-peak), 1M in + 1M out
    db = make_db([call("std", "2025-06-02 10:00", provider="deepseek", model="deepseek-chat", input_tokens=1_000_000,
                       output_tokens=1_000_000),
                  call("off", "2025-06-02 20:00", provider="deepseek", model="deepseek-chat", input_tokens=1_000_000,
                       output_tokens=1_000_000),
                  call("r_std", "2025-06-02 16:29:59", provider="deepseek", model="deepseek-reasoner",
                       input_tokens=1_000_000, output_tokens=1_000_000)])
    load_prices(db, config=False)
    got = {k: v["cost_usd_computed"] for k, v in costs(db).items()}
    assert got == pytest.approx({"std": 0.27 + 1.10, "off": 0.135 + 0.55, "r_std": 0.55 + 2.19}, rel=1e-12)


def test_o3_price_change_is_in_the_table(loaded):
    # genai-prices records o3's price cut (a StartDateConstraint): two rows with different effective_from
    df = loaded.sql("select effective_from, input_usd_per_mtok from prices where provider = 'openai' and model = 'o3' "
                    "order by effective_from")
    assert df.height >= 2 and df["input_usd_per_mtok"].n_unique() >= 2
    c = costs(loaded)
    assert c["b"]["cost_usd_computed"] != c["c"]["cost_usd_computed"]


def test_unknown_model_unpriced_until_overridden_then_idempotent(loaded, tmp_path):
    assert costs(loaded)["e"]["cost_source"] == "unpriced"
    p = budget_toml(tmp_path, '[[prices]]\nprovider = "azure"\nmodel = "azure-trace-model"\ninput_usd_per_mtok = 0.5\n'
                              'output_usd_per_mtok = 1.5\ncache_read_usd_per_mtok = 0.25\neffective_from = 2023-01-01\n'
                              'note = "assumed price"\n'
                              '[[prices]]\nprovider = "openai"\nmodel = "gpt-4o"\ninput_usd_per_mtok = 2.0\n'
                              'output_usd_per_mtok = 8.0\neffective_from = 1970-01-01\n')
    n1 = load_prices(loaded, config=p)
    n2 = load_prices(loaded, config=p)
    assert n1 == n2 == loaded.sql("select count(*) as n from prices")["n"].item()
    assert costs(loaded)["e"]["cost_usd_computed"] == pytest.approx((1_000 * 0.5 + 1_000 * 1.5) / 1e6)
    src = loaded.sql("select source from prices where model = 'azure-trace-model'")["source"].item()
    assert src == "workbench.toml [[prices]] #1: assumed price"
    # the override replaced the package's gpt-4o row of the same date: one row, the team's price
    gpt = loaded.sql("select input_usd_per_mtok from prices where provider = 'openai' and model = 'gpt-4o' "
                     "and effective_from = '1970-01-01'")
    assert gpt["input_usd_per_mtok"].to_list() == [2.0]
    load_prices(loaded, config=False)  # back to the package prices for the other tests
    assert costs(loaded)["e"]["cost_source"] == "unpriced"


def test_load_prices_does_not_touch_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    db = make_db([call("a", "2025-03-01", provider="openai", model="gpt-4o", input_tokens=1, output_tokens=1)])
    assert load_prices(db, config=False) > 1000
    import genai_prices.data_snapshot as snap

    assert snap._custom_snapshot is None  # no auto-updated snapshot in use


# ------------------------------------------------------------------------------------------------- invariants


def invariant_calls():
    rng = random.Random(11)
    rows = []
    for i in range(120):
        rows.append(call(f"c{i:03d}", dt.datetime(2026, 3, rng.randint(1, 20), rng.randint(0, 23)),
                         trace_id=f"t{i // 3}", parent_id=None if i % 3 == 0 else f"c{i - i % 3:03d}",
                         feature=rng.choice(["chat", "search", "summarise"]), model=rng.choice(["m1", "m2", "x"]),
                         status=rng.choice(["ok", "ok", "ok", "error"]), user_id=f"u{rng.randint(1, 15)}",
                         session_id=f"s{rng.randint(1, 30)}", input_tokens=rng.randint(100, 5_000),
                         output_tokens=rng.randint(10, 500), cache_read_tokens=rng.choice([0, 50]),
                         cost_usd=rng.choice([None, None, 0.01])))
    return rows


INV_PRICES = [price("m1", "2025-01-01", 1.0, 2.0, 0.1), price("m2", "2025-01-01", 3.0, 6.0),
              price("m2", "2026-03-10", 2.0, 4.0)]
OPTIONS = {"whatif_cost_usd": {"model": "m1"}}


@pytest.mark.parametrize("name", sorted(cost.SUITE))
def test_row_order_does_not_change_results(name):
    rows = invariant_calls()
    shuffled = rows[:]
    random.Random(5).shuffle(shuffled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # weeks without a success: null, as they should be
        a = cost.SUITE[name](make_db(rows, INV_PRICES), period="week", **OPTIONS.get(name, {}))
        b = cost.SUITE[name](make_db(shuffled, INV_PRICES[::-1]), period="week", **OPTIONS.get(name, {}))
    assert a.height > 0
    assert_frame_equal(a, b, rel_tol=1e-12, abs_tol=0)  # float sums may differ in the last bit, nothing more


def test_groups_sum_to_the_total():
    db = make_db(invariant_calls(), INV_PRICES)
    by_feature = cost.cost_usd(db, period="all")
    total = cost.cost_usd(db, by=None, period="all")
    assert by_feature["value"].sum() == pytest.approx(total["value"].item(), rel=1e-12)
    assert by_feature["n"].sum() == total["n"].item()
    assert by_feature["unpriced_count"].sum() == total["unpriced_count"].item()


@pytest.mark.parametrize("name", sorted(cost.SUITE))
def test_empty_selection_is_null_with_n_zero(name):
    db = make_db(invariant_calls(), INV_PRICES)
    with pytest.warns(UndefinedMetricWarning):
        df = cost.SUITE[name](db, start="2030-01-01", end="2030-02-01", **OPTIONS.get(name, {}))
    assert df.height == 1 and df["n"].item() == 0 and df["value"].item() is None


@pytest.mark.parametrize("name", sorted(cost.SUITE))
def test_tidy_shape_and_bad_group_key(name):
    db = make_db(invariant_calls(), INV_PRICES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        df = cost.SUITE[name](db, **OPTIONS.get(name, {}))
    keys = ["feature", "provider", "model"] if name == "cost_change_usd" else ["feature"]
    assert df.columns[: len(keys) + 6] == [*keys, "period_start", "metric", "value", "n", "lo", "hi"]
    assert df["metric"].unique().to_list() == [name]
    with pytest.raises(KeyError, match=f"{name}: cannot group by"):
        cost.SUITE[name](db, by=("nope",), **OPTIONS.get(name, {}))


def test_suite_is_registered():
    from workbench.metrics import suite

    assert set(cost.SUITE) <= set(suite())
    assert cost.cost_drivers is cost.cost_change_usd


def test_cost_per_1k_tokens_by_prompt_version_hand_computed():
    # v1: a computed call (1,000 in @ $2/M + 1,000 out @ $8/M = $0.010 for 2,000 tokens) and a reported one
    #     ($0.004 for 1,000 tokens): $0.014 / 3,000 tokens x 1,000 = $0.0046667 per 1k tokens;
    # v2: one computed call, 500 in + 500 out = $0.005 / 1,000 tokens = $0.005 per 1k; plus an unpriced model and a
    #     tool span with no model and no tokens, neither of which enters the ratio.
    rows = [call("a", "2026-03-05", input_tokens=1000, output_tokens=1000, prompt_version="v1"),
            call("b", "2026-03-05", input_tokens=600, output_tokens=400, cost_usd=0.004, prompt_version="v1"),
            call("c", "2026-03-05", input_tokens=500, output_tokens=500, prompt_version="v2"),
            call("d", "2026-03-05", model="mystery", input_tokens=900, output_tokens=100, prompt_version="v2"),
            call("e", "2026-03-05", model=None, provider=None, prompt_version="v2")]
    db = make_db([{k: v for k, v in r.items() if k != "prompt_version"} for r in rows], [price("m1", "2025-01-01", 2.0, 8.0)])
    for r in rows:
        db.duckdb.execute("update calls set prompt_version = ? where call_id = ?", [r["prompt_version"], r["call_id"]])
    df = wb.cost_per_1k_tokens_usd(db, by="prompt_version", period="all").sort("prompt_version")
    assert df["value"].to_list() == pytest.approx([0.014 / 3, 0.005], rel=1e-12)
    assert df["n"].to_list() == [2, 1]
    assert df["tokens_count"].to_list() == [3000, 1000]
    assert df["unpriced_count"].to_list() == [0, 1]

def test_cost_usd_n_counts_priced_llm_calls_only():
    # an agent task: 2 priced LLM calls (one computed, one reported), 3 tool spans (no model, no tokens), 1 unpriced
    db = make_db([call("llm1", "2026-03-05", input_tokens=1_000_000, output_tokens=0),            # 1.00 computed
                  call("llm2", "2026-03-05", input_tokens=10, output_tokens=10, cost_usd=0.25),   # 0.25 reported
                  call("t1", "2026-03-05", provider=None, model=None),
                  call("t2", "2026-03-05", provider=None, model=None),
                  call("t3", "2026-03-05", provider=None, model=None),
                  call("x", "2026-03-05", model="mystery", input_tokens=5, output_tokens=5)],
                 [price("m1", "2025-01-01", 1.0, 2.0)])
    row = cost.cost_usd(db, period="all").row(0, named=True)
    # before: n = 5 (every call with a cost, the zero-cost tool spans included); now the 2 priced calls
    assert (row["value"], row["n"], row["unpriced_count"], row["calls_count"]) == (pytest.approx(1.25), 2, 1, 6)
    assert cost.cost_per_call_usd(db, period="all")["n"].item() == row["n"]


def test_priced_calls_converts_to_polars_with_the_attributes_as_text():
    db = make_db([call("a", "2026-03-05", input_tokens=1_000, output_tokens=0)], [price("m1", "2025-01-01", 1.0, 2.0)])
    db.duckdb.execute("""update calls set attributes = '{"gen_ai.system": "acme"}'""")
    df = cost.priced_calls(db).to_polars()  # raised NotImplementedError on the JSON column
    assert df.height == 1 and df["attributes"].item() == '{"gen_ai.system": "acme"}'
    assert df["cost_usd_used"].item() == pytest.approx(0.001)


def test_the_price_join_is_built_once_per_selection_and_reads_the_prices_as_they_are_when_run():
    db = make_db([call("a", "2026-03-05", input_tokens=1_000_000, output_tokens=0),
                  call("b", "2026-03-06", input_tokens=1_000_000, output_tokens=0, feature="search")],
                 [price("m1", "2025-01-01", 1.0, 2.0)])
    chat = cost.priced_calls(db, start="2026-03-01", where={"feature": "chat"})
    # the same selection is the same expression (built once per connection: 30-50 ms of Ibis each time before)
    assert cost.priced_calls(db, start="2026-03-01", where={"feature": "chat"}) is chat
    assert cost.priced_calls(db, start="2026-03-01", where={"feature": "search"}) is not chat
    assert cost.priced_calls(db, start="2026-03-02", where={"feature": "chat"}) is not chat
    assert cost.priced_calls(db, where={"feature": "chat"}) is not chat
    assert costs(db, start="2026-03-01", where={"feature": "chat"})["a"]["cost_usd_computed"] == pytest.approx(1.0)
    # a description, not data: a price added later applies on the next call of the same selection
    db.duckdb.execute("insert into prices (provider, model, effective_from, min_input_tokens, input_usd_per_mtok, "
                      "output_usd_per_mtok, source) values ('acme', 'm1', '2026-03-01', 0, 4.0, 8.0, 'test')")
    assert costs(db, start="2026-03-01", where={"feature": "chat"})["a"]["cost_usd_computed"] == pytest.approx(4.0)
    assert cost.cost_usd(db, start="2026-03-01", where={"feature": "chat"}, period="all")["value"].item() == \
        pytest.approx(4.0)
    # a selection refused is refused at every call, never kept
    for _ in range(2):
        with pytest.raises(Exception, match="no column 'nope'"):
            cost.priced_calls(db, where={"nope": 1})


def test_a_version_3_database_read_only_prices_its_rows_all_day_and_a_writer_adds_the_windows(tmp_path):
    # schema version 3 had no prices.time_of_day_from_s: made here as that version left it
    path = tmp_path / "w.duckdb"
    db = make_db([call("a", "2026-01-01 10:00", input_tokens=1_000_000, output_tokens=1_000_000)],
                 [price("m1", "2025-01-01", 1.0, 2.0)], path=path)
    db.duckdb.execute("alter table prices drop column time_of_day_from_s")
    db.duckdb.execute("delete from schema_version where version > 3")
    db.close()
    with wb.connect(path, read_only=True) as ro:
        assert ro.schema_version == 3
        assert costs(ro)["a"]["cost_usd_computed"] == pytest.approx(3.0)  # 1 x 1.0 + 1 x 2.0
    with wb.connect(path) as db:
        assert db.schema_version == 4
        assert db.sql("select time_of_day_from_s from prices")["time_of_day_from_s"].to_list() == [None]
        assert costs(db)["a"]["cost_usd_computed"] == pytest.approx(3.0)


def test_token_counts_past_the_bigint_range_neither_crash_nor_go_unpriced():
    """Rows inserted directly (ingest refuses > 1e9 tokens a call): input + output above 2**63 overflowed DuckDB's
    BIGINT addition (OutOfRangeException), and a call of >= 2**62 input tokens fell past the last tier's open end
    (2**62) and was 'unpriced'."""
    big = 2**63 - 1
    db = make_db([call("a", "2026-01-01", input_tokens=2**62 - 1, output_tokens=2**62 + 5),
                  call("b", "2026-01-01", input_tokens=2**62, output_tokens=0),
                  call("c", "2026-01-01", input_tokens=big, output_tokens=0),
                  call("t", "2026-01-01", provider=None, model=None, input_tokens=big, output_tokens=big)],
                 [price("m1", "2025-01-01", 2.0, 8.0), price("m1", "2025-01-01", 4.0, 16.0, min_input_tokens=2**62)])
    got = costs(db)
    # a: below the tier at 2**62, at 2 / 8 USD per Mtok; b and c: in it, at 4 USD per Mtok
    assert got["a"]["cost_usd_computed"] == pytest.approx(((2**62 - 1) * 2.0 + (2**62 + 5) * 8.0) / 1e6, rel=1e-12)
    assert got["b"]["cost_usd_computed"] == pytest.approx(2**62 * 4.0 / 1e6, rel=1e-12)
    assert got["c"]["cost_usd_computed"] == pytest.approx(big * 4.0 / 1e6, rel=1e-12)
    assert got["t"]["cost_source"] == "unpriced"  # no model but tokens: needs a price (their sum overflowed BIGINT)
    cost_abc = sum(got[k]["cost_usd_computed"] for k in "abc")
    tokens = (2**62 - 1) + (2**62 + 5) + 2**62 + big  # above 2**64
    row = cost.cost_per_1k_tokens_usd(db, period="all").row(0, named=True)
    assert (row["n"], row["unpriced_count"]) == (3, 1)
    assert row["value"] == pytest.approx(cost_abc / tokens * 1000, rel=1e-12)
    assert row["tokens_count"] is None  # beyond Int64: not a count polars can hold
    # the same ratio where the tokens fit: two calls whose sum of tokens (2**63 + 2) is past BIGINT
    db = make_db([call("a", "2026-01-01", input_tokens=2**62 + 1, output_tokens=0),
                  call("b", "2026-01-01", input_tokens=2**62 + 1, output_tokens=0)], [price("m1", "2025-01-01", 2.0, 8.0)])
    assert cost.cost_per_1k_tokens_usd(db, period="all")["value"].item() == pytest.approx(2.0 / 1000, rel=1e-12)
    # a count below 2**53 is exact
    db = make_db([call("a", "2026-01-01", input_tokens=2**52, output_tokens=2**52 - 1)], [price("m1", "2025-01-01", 2.0, 8.0)])
    row = cost.cost_per_1k_tokens_usd(db, period="all").row(0, named=True)
    assert row["tokens_count"] == 2**53 - 1
    assert row["value"] == pytest.approx((2**52 * 2.0 + (2**52 - 1) * 8.0) / 1e6 / (2**53 - 1) * 1000, rel=1e-12)


def test_no_budget_declared_is_said_not_read_as_on_track(tmp_path, capsys):
    """With no [budget.*] table (a config without one, or the wrong file), `workbench budget` printed an empty line
    and exited 0, and a report's attention list said "budgets on track": a check that cannot fire read as passing.
    Now it is "nothing declared", as for SLOs: the command exits 2 naming the file, a report says the budgets were
    not evaluated, and a scheduled run skips the check (nothing can fire)."""
    from workbench.cli import main
    from workbench.errors import NotDeclaredError
    from workbench.reports.attention import attention

    cfg = budget_toml(tmp_path, "[slo.chat]\nsli = \"error_rate\"\nobjective = 0.99\n")
    path = tmp_path / "wb.duckdb"
    db = wb.connect(path)
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, model, cost_usd) values "
                      "('a', '2026-04-02', 'chat', 'ok', 'm', 3.0)")
    with pytest.raises(NotDeclaredError, match=r"workbench.toml \[budget\]: no budgets declared"):
        cost.budget_status(db, config=cfg, at="2026-04-10")
    att = attention(wb.Report(db, start="2026-04-06", end="2026-04-13", config=cfg), slo=False)
    assert not any("budgets on track" in s for s in att.sentences), att.sentences
    assert any(s.startswith("Budgets: not evaluated (") and "no budgets declared" in s for s in att.sentences)
    db.close()
    assert main(["budget", "--db", str(path), "--config", str(cfg), "--at", "2026-04-10"]) == 2
    err = capsys.readouterr().err
    assert "workbench budget: error:" in err and "no budgets declared (add a [budget.<feature>] table)" in err
