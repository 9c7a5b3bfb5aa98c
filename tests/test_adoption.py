"""Adoption metrics on event logs small enough to count by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import datetime as dt
import json
import random
import warnings

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.metrics import adoption as ad
from workbench.metrics import UndefinedMetricWarning
from workbench.stats import wilson_interval

D = dt.datetime


def day(n: int, hour: int = 9) -> dt.datetime:
    """Day n of January 2026 (Jan 1 2026 is a Thursday)."""
    return D(2026, 1, n, hour)


def _events(db, rows, *, shuffle: int | None = None):
    """rows: (user_id, ts, event, feature)."""
    rows = list(rows)
    if shuffle is not None:
        random.Random(shuffle).shuffle(rows)
    db.duckdb.executemany(
        "insert into events (event_id, user_id, ts, event, feature) values (?, ?, ?, ?, ?)",
        [(f"e{i}", u, ts, ev, f) for i, (u, ts, ev, f) in enumerate(rows)],
    )


def _calls(db, rows):
    """rows: (call_id, user_id, ts, feature, latency_ms, cost_usd)."""
    db.duckdb.executemany(
        "insert into calls (call_id, user_id, ts, feature, status, latency_ms, cost_usd) values (?, ?, ?, ?, 'ok', ?, ?)",
        rows,
    )


def _values(df, col="value"):
    return dict(zip(df["period_start"].dt.day().to_list(), df[col].to_list()))


# ---------------------------------------------------------------------------------------------------------------- DAU

# a: every day 1..10; b: days 1 and 8; c: day 5; d: day 10 (twice)
TEN_DAYS = (
    [("a", day(i), "ask", "chat") for i in range(1, 11)]
    + [("b", day(1), "ask", "chat"), ("b", day(8), "ask", "chat"), ("c", day(5), "ask", "chat")]
    + [("d", day(10, 9), "ask", "chat"), ("d", day(10, 15), "open", "chat")]
)


@pytest.fixture
def ten_days():
    db = wb.connect(":memory:")
    _events(db, TEN_DAYS)
    return db


def test_dau_wau_mau_on_a_ten_day_log(ten_days):
    # DAU: d1 {a,b}=2, d2-d4 {a}=1, d5 {a,c}=2, d6-d7 1, d8 {a,b}=2, d9 1, d10 {a,d}=2
    dau = ad.dau_count(ten_days)
    assert _values(dau) == {1: 2, 2: 1, 3: 1, 4: 1, 5: 2, 6: 1, 7: 1, 8: 2, 9: 1, 10: 2}
    assert set(dau["n"]) == {1}
    # WAU on d = users in d-6..d: d1-d4 {a,b}=2; d5-d7 {a,b,c}=3 (b's day 1 still inside until d7);
    # d8 (2..8) {a,b,c}=3; d9 (3..9) {a,b,c}=3; d10 (4..10) {a,b,c,d}=4
    wau = ad.wau_count(ten_days)
    assert _values(wau) == {1: 2, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 3, 9: 3, 10: 4}
    # the window is only partly covered by the log before day 7
    assert _values(wau, "window_days") == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 7, 9: 7, 10: 7}
    # MAU (28 days) is cumulative over a 10-day log: 2 until c comes on d5, 4 when d comes on d10
    mau = ad.mau_count(ten_days)
    assert _values(mau) == {1: 2, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 3, 9: 3, 10: 4}
    assert mau["metric"].unique().to_list() == ["mau_count"]


def test_start_reads_the_look_back_so_windows_are_whole(ten_days):
    # WAU on d8 and d9 with start=d8 still counts c (active on d5, inside 2..8 and 3..9): 3 and 3
    wau = ad.wau_count(ten_days, start=day(8, 0), end=day(10, 0))
    assert _values(wau) == {8: 3, 9: 3}
    assert _values(wau, "window_days") == {8: 7, 9: 7}


def test_start_after_the_data_is_empty(ten_days):
    with pytest.warns(UndefinedMetricWarning):
        r = ad.wau_count(ten_days, start=day(12, 0))
    assert r.select("value", "n").rows() == [(None, 0)]


def test_calendar_periods_count_the_distinct_users_of_the_period(ten_days):
    # Definition change (issue: weekly actives are people): at a calendar period the value is the distinct users active
    # in it, no longer the mean of the daily rolling values. Monday weeks: Dec 29 holds Jan 1-4 -> {a, b} = 2 over 4
    # observed days; Jan 5 holds Jan 5-10 -> {a, b, c, d} = 4 over 6 days. The old mean of daily WAU was
    # (2+2+2+2)/4 = 2 and (3+3+3+3+3+4)/6 = 3.17 (fewer than the 4 people of that week).
    for fn in (ad.dau_count, ad.wau_count, ad.mau_count):
        wk = fn(ten_days, period="week")
        assert wk.select("period_start", "value", "n", "window").rows() == [
            (D(2025, 12, 29), 2.0, 4, "calendar week"), (D(2026, 1, 5), 4.0, 6, "calendar week")]
    # a week inside the window: Jan 5..11 -> the 4 people; month Jan 2026 -> 4; the whole window Jan 2..9 -> {a, b, c}
    assert ad.wau_count(ten_days, period="week", start=day(5, 0), end=day(12, 0))["value"].to_list() == [4.0]
    assert ad.mau_count(ten_days, period="month")["value"].to_list() == [4.0]
    allw = ad.wau_count(ten_days, period="all", start=day(2, 0), end=day(10, 0))
    assert allw.select("value", "n", "window").rows() == [(3.0, 8, "calendar window")]
    # the rolling daily series stays available, explicitly
    assert set(ad.wau_count(ten_days, period="day")["window"]) == {"rolling 7 days"}


def test_stickiness_per_calendar_period(ten_days):
    # week Jan 5-10: user-days a 6 + b 1 + c 1 + d 1 = 9 over 6 days -> mean DAU 1.5; 4 people -> DAU/WAU 0.375
    r = ad.dau_mau_ratio(ten_days, period="week").filter(pl.col("period_start") == D(2026, 1, 5))
    assert r.select("value", "n", "window").rows() == [(pytest.approx(0.375), 6, "calendar week")]


def test_activity_source_calls_and_both(ten_days):
    _calls(ten_days, [("c1", "e", day(3), "chat", 100.0, 0.1), ("c2", None, day(3), "chat", 100.0, 0.1)])
    # calls only: e on day 3 (the call without a user is not activity)
    assert ad.dau_count(ten_days, activity="calls").select("value").rows() == [(1.0,)]
    # both: d3 = {a (event), e (call)} = 2
    assert _values(ad.dau_count(ten_days, activity="both"))[3] == 2
    with pytest.raises(ValueError, match="dau_count: activity: expected one of auto, events, calls, both"):
        ad.dau_count(ten_days, activity="sessions")
    with pytest.raises(ValueError, match="mau_days"):
        ad.mau_count(ten_days, mau_days=31)


def test_dau_mau_ratio(ten_days):
    # d10, 28-day window covered from d1: 10 days; user-days = 10 (a) + 2 (b) + 1 (c) + 1 (d) = 14
    # mean DAU = 14 / 10 = 1.4; MAU = 4 -> 0.35
    r = ad.dau_mau_ratio(ten_days, start=day(10, 0))
    assert r["value"].to_list() == [pytest.approx(0.35)]
    assert r["window_days"].to_list() == [10]


# ----------------------------------------------------------------------------------------------------- stickiness

def test_active_days_exactly_and_at_least():
    db = wb.connect(":memory:")
    # week of Mon Jan 5: u1 Mon (twice), Tue, Wed = 3 days; u2 Mon = 1 day; u3 Mon and Sun = 2 days
    _events(db, [
        ("u1", day(5, 9), "ask", "chat"), ("u1", day(5, 17), "ask", "chat"), ("u1", day(6), "ask", "chat"),
        ("u1", day(7), "ask", "chat"), ("u2", day(5), "ask", "chat"), ("u3", day(5), "ask", "chat"),
        ("u3", day(11), "ask", "chat"),
    ])
    r = ad.active_days_distribution(db)
    # exactly: N=1 u2, N=2 u3, N=3 u1; at least N: 3, 2, 1, then 0 up to N=7
    assert r.select("active_days", "exactly_count", "at_least_count").rows() == [
        (1, 1, 3), (2, 1, 2), (3, 1, 1), (4, 0, 0), (5, 0, 0), (6, 0, 0), (7, 0, 0)]
    assert set(r["n"]) == {3}


def test_returning_share_rate():
    db = wb.connect(":memory:")
    # d1 {a,b,c}; d2 {a,b,d}; d3 {a}
    # d2: of yesterday's {a,b,c}, a and b are back: 2/3; d3: of {a,b,d}, a is back: 1/3; no row for d4 (no data)
    _events(db, [(u, day(1), "ask", "chat") for u in "abc"] + [(u, day(2), "ask", "chat") for u in "abd"]
            + [("a", day(3), "ask", "chat")])
    r = ad.returning_share_rate(db)
    assert r.select("period_start", "value", "n").rows() == [(D(2026, 1, 2), 2 / 3, 3), (D(2026, 1, 3), 1 / 3, 3)]
    lo, hi = wilson_interval(2, 3)
    assert r["lo"][0] == pytest.approx(float(lo)) and r["hi"][0] == pytest.approx(float(hi))
    # week: pooled (2 + 1) / (3 + 3)
    assert ad.returning_share_rate(db, period="week")["value"].to_list() == [pytest.approx(0.5)]


# ------------------------------------------------------------------------------------------------------ retention

# day-1 cohort {a, b, c}: a back on d2 and d3, b back on d3 only, c never; day-2 cohort {d}, back d3; day-3 {e}
RETENTION = [
    ("a", day(1), "ask", "chat"), ("a", day(2), "ask", "chat"), ("a", day(3), "ask", "chat"),
    ("b", day(1), "ask", "chat"), ("b", day(3), "ask", "chat"), ("c", day(1), "ask", "chat"),
    ("d", day(2), "ask", "chat"), ("d", day(3), "ask", "chat"), ("e", day(3), "ask", "chat"),
]


@pytest.fixture
def retention_db():
    db = wb.connect(":memory:")
    _events(db, RETENTION)
    return db


def _cohort(df, d):
    return df.filter(pl.col("cohort_start") == day(d, 0)).select("offset", "value", "cohort_size").rows()


def test_n_day_and_unbounded_retention_differ(retention_db):
    nday = ad.retention_rate(retention_db, mode="n_day")
    unb = ad.retention_rate(retention_db, mode="unbounded")
    # day-1 cohort (3): N-day: N=1 only a -> 1/3, N=2 a and b -> 2/3
    assert _cohort(nday, 1) == [(0, 1.0, 3), (1, 1 / 3, 3), (2, 2 / 3, 3)]
    # unbounded: N=1 a and b (b came back on day 2 >= 1) -> 2/3; N=2 -> 2/3
    assert _cohort(unb, 1) == [(0, 1.0, 3), (1, 2 / 3, 3), (2, 2 / 3, 3)]
    # the day-3 cohort cannot show N >= 1 yet: no row, not a 0
    assert _cohort(nday, 2) == [(0, 1.0, 1), (1, 1.0, 1)]
    assert _cohort(nday, 3) == [(0, 1.0, 1)]
    lo, hi = wilson_interval(1, 3)
    row = nday.filter((pl.col("cohort_start") == day(1, 0)) & (pl.col("offset") == 1))
    assert (row["lo"][0], row["hi"][0], row["n"][0]) == (pytest.approx(float(lo)), pytest.approx(float(hi)), 3)


def test_cohort_sizes_sum_to_the_distinct_users(retention_db):
    r = ad.retention_rate(retention_db).filter(pl.col("offset") == 0)
    assert r["cohort_size"].sum() == 5 == len({u for u, *_ in RETENTION})
    r = ad.retention_rate(retention_db, start=day(2, 0), cohort="first_in_window").filter(pl.col("offset") == 0)
    # users active from day 2 on: a, d (first in window on day 2), b, e (day 3); c was only active on day 1
    assert r["cohort_size"].sum() == 4 == len({u for u, ts, *_ in RETENTION if ts >= day(2, 0)})


def test_cohort_first_ever_vs_first_in_window(retention_db):
    # first_ever from day 2: only users new on or after day 2 -> {d} on day 2, {e} on day 3
    ever = ad.retention_rate(retention_db, start=day(2, 0), cohort="first_ever")
    assert ever.filter(pl.col("offset") == 0).select("cohort_start", "cohort_size").rows() == [
        (day(2, 0), 1), (day(3, 0), 1)]
    # first_in_window: history before day 2 ignored -> day 2 {a, d}, day 3 {b, e}; both of day 2 back on day 3
    win = ad.retention_rate(retention_db, start=day(2, 0), cohort="first_in_window")
    assert _cohort(win, 2) == [(0, 1.0, 2), (1, 1.0, 2)]
    assert _cohort(win, 3) == [(0, 1.0, 2)]


def test_weekly_grain_retention():
    db = wb.connect(":memory:")
    # Monday weeks: a starts Thu Jan 1 (week Dec 29), back Tue Jan 6 (week +1);
    # b starts Sun Jan 4 (week Dec 29), back Tue Jan 20 (week +3); last week of data = Jan 19 -> N up to 3
    _events(db, [("a", day(1), "ask", "chat"), ("a", day(6), "ask", "chat"),
                 ("b", day(4), "ask", "chat"), ("b", day(20), "ask", "chat")])
    nday = ad.retention_rate(db, period="week", grain="week")
    assert nday.select("offset", "value").rows() == [(0, 1.0), (1, 0.5), (2, 0.0), (3, 0.5)]
    unb = ad.retention_rate(db, period="week", grain="week", mode="unbounded")
    assert unb.select("offset", "value").rows() == [(0, 1.0), (1, 1.0), (2, 0.5), (3, 0.5)]
    assert ad.retention_rate(db, period="week", grain="week", max_offset=1)["offset"].to_list() == [0, 1]
    with pytest.raises(ValueError, match="retention_rate: mode"):
        ad.retention_rate(db, mode="bounded")


def test_retention_leaves_out_a_period_not_yet_over():
    """Weekly retention read on a Wednesday: the current week was an offset like the others, with three days of
    returns against whole weeks, so every cohort's latest week read as a drop. A period that the clock (or end) has
    not finished is left out, as an offset the data cannot show yet; its cohort keeps offset 0."""
    from workbench.schema import utc_now

    now = utc_now()
    monday = D(now.year, now.month, now.day) - dt.timedelta(days=now.weekday())  # this week's: before the clock
    w = dt.timedelta(days=7)
    db = wb.connect(":memory:")
    # cohort of two weeks ago: a and b; a back last week, b back this week (so far); c new this week
    _events(db, [("a", monday - 2 * w, "ask", "chat"), ("b", monday - 2 * w, "ask", "chat"),
                 ("a", monday - w, "ask", "chat"), ("b", monday, "ask", "chat"), ("c", monday, "ask", "chat")])
    r = ad.retention_rate(db, period="week")
    assert r.select("cohort_start", "offset", "value", "n").rows() == [
        (monday - 2 * w, 0, 1.0, 2), (monday - 2 * w, 1, 0.5, 2), (monday, 0, 1.0, 1)]
    assert ad.retention_rate(db, period="week", end=monday + w).select("offset").rows() == [(0,), (1,), (0,)]
    # a window that ends on Monday ends with whole weeks: last week is the last offset, as before
    assert ad.retention_rate(db, period="week", end=monday).select("offset", "value").rows() == [(0, 1.0), (1, 0.5)]


def test_retention_offsets_follow_the_period():
    # the same log as test_weekly_grain_retention: at period="week" without a grain, N counts weeks (before: days,
    # giving offsets 0..19 of day-grain retention for a weekly cohort)
    db = wb.connect(":memory:")
    _events(db, [("a", day(1), "ask", "chat"), ("a", day(6), "ask", "chat"),
                 ("b", day(4), "ask", "chat"), ("b", day(20), "ask", "chat")])
    r = ad.retention_rate(db, period="week")
    assert r.select("offset", "value", "grain").rows() == [(0, 1.0, "week"), (1, 0.5, "week"), (2, 0.0, "week"),
                                                            (3, 0.5, "week")]
    assert set(ad.retention_rate(db, period="day")["grain"]) == {"day"}
    # months: a and b start in January; a Feb 2 return is month 1
    _events(db, [("a", D(2026, 2, 2, 9), "ask", "chat")])
    m = ad.retention_rate(db, period="month")
    assert m.select("offset", "value", "n", "grain").rows() == [(0, 1.0, 2, "month"), (1, 0.5, 2, "month")]


def test_a_cohort_is_the_period_of_the_first_activity_whatever_the_grain():
    """Monthly cohorts followed week by week: b, first active Sunday Feb 1, was in the January cohort (its cohort
    was the month of the Monday of its first week, Jan 26), so January read 2 users and February none, and with
    start = Feb 1 a cohort began before start; weekly cohorts followed month by month put a (Thursday Jan 15) in
    the week of Jan 1 (the week of its first month's first day)."""
    db = wb.connect(":memory:")
    _events(db, [("a", D(2026, 1, 15, 9), "ask", "chat"), ("b", D(2026, 2, 1, 9), "ask", "chat"),
                 ("b", D(2026, 2, 9, 9), "ask", "chat"), ("a", D(2026, 2, 16, 9), "ask", "chat")])
    r = ad.retention_rate(db, period="month", grain="week", by=(), max_offset=0)
    assert r.select("cohort_start", "offset", "cohort_size").rows() == [(D(2026, 1, 1), 0, 1), (D(2026, 2, 1), 0, 1)]
    r = ad.retention_rate(db, period="month", grain="week", by=(), start="2026-02-01")
    assert set(r["cohort_start"]) == {D(2026, 2, 1)} and set(r["cohort_size"]) == {1}
    assert r.select("offset", "value").rows() == [(0, 1.0), (1, 0.0), (2, 1.0), (3, 0.0)]  # b: Jan 26, Feb 9
    r = ad.retention_rate(db, period="week", grain="month", by=(), max_offset=0)
    assert r.select("cohort_start", "cohort_size").rows() == [(D(2026, 1, 12), 1), (D(2026, 1, 26), 1)]


def test_retention_of_a_feature_is_the_same_by_group_or_by_where():
    """u1 used chat on Jan 1 and 2 and never again; the log runs to Jan 5 (docs). By feature, chat's cohort read
    offsets 0-4 (1, 1, 0, 0, 0); with where feature = chat the log seemed to end on Jan 2, the last day of chat, so
    offsets 2-4 were left out as not yet observable: a feature whose users all stopped showed no decline at all."""
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "chat"), ("u1", day(2), "ask", "chat"), ("u2", day(5), "ask", "docs")])
    by = ad.retention_rate(db, period="day").filter(pl.col("feature") == "chat")
    where = ad.retention_rate(db, period="day", where={"feature": "chat"})
    assert by.select("offset", "value").rows() == [(0, 1.0), (1, 1.0), (2, 0.0), (3, 0.0), (4, 0.0)]
    assert where.select("offset", "value", "n").rows() == by.select("offset", "value", "n").rows()


# ------------------------------------------------------------------------------------------------------ lifecycle

def test_lifecycle_on_four_periods():
    db = wb.connect(":memory:")
    # a: d1 d2 d3 d4; b: d1 d3; c: d2 d3; d: d4
    _events(db, [("a", day(i), "ask", "chat") for i in (1, 2, 3, 4)]
            + [("b", day(1), "ask", "chat"), ("b", day(3), "ask", "chat"),
               ("c", day(2), "ask", "chat"), ("c", day(3), "ask", "chat"), ("d", day(4), "ask", "chat")])
    r = ad.lifecycle_count(db)
    got = {(p.day, s): v for p, s, v in r.select("period_start", "status", "value").rows()}
    expected = {
        # d1: a, b new
        (1, "new"): 2, (1, "returning"): 0, (1, "resurrecting"): 0, (1, "dormant"): 0,
        # d2: c new, a returning, b dormant (negative)
        (2, "new"): 1, (2, "returning"): 1, (2, "resurrecting"): 0, (2, "dormant"): -1,
        # d3: a and c returning, b resurrecting
        (3, "new"): 0, (3, "returning"): 2, (3, "resurrecting"): 1, (3, "dormant"): 0,
        # d4: d new, a returning, b and c dormant; no d5 row (the data ends on d4)
        (4, "new"): 1, (4, "returning"): 1, (4, "resurrecting"): 0, (4, "dormant"): -2,
    }
    assert got == expected
    # n: users classified = active this period or the previous one
    assert _values(r.filter(pl.col("status") == "new"), "n") == {1: 2, 2: 3, 3: 3, 4: 4}
    # start only cuts the rows: the history before it still makes b resurrecting (not new) on d3
    late = ad.lifecycle_count(db, start=day(3, 0))
    assert {(p.day, s): v for p, s, v in late.select("period_start", "status", "value").rows()} == {
        k: v for k, v in expected.items() if k[0] >= 3}


def test_lifecycle_window_starting_mid_week_counts_only_activity_inside_it():
    # start Wednesday Jan 7; its week is Monday Jan 5 .. Sunday Jan 11. u1 was active on Monday only (before start),
    # u2 on Thursday; u3 on Monday and Friday; u4 in the week before and on Tuesday (before start), not after.
    db = wb.connect(":memory:")
    _events(db, [("u1", day(5), "ask", "chat"), ("u2", day(8), "ask", "chat"), ("u3", day(5), "ask", "chat"),
                 ("u3", day(9), "ask", "chat"), ("u4", day(1), "ask", "chat"), ("u4", day(6), "ask", "chat")])
    window = {"period": "week", "start": day(7, 0), "end": day(12, 0)}
    wau = ad.wau_count(db, **window)
    assert wau.select("value").rows() == [(2.0,)]  # u2, u3
    life = ad.lifecycle_count(db, **window)
    # Before: u1, u2, u3 new and u4 returning (Monday and Tuesday counted): 4 active where wau_count said 2. Now: u2 and u3 are new (first activity ever in this week, Monday's included),
    # u4 was active the week before and not in the window: dormant; u1 is not active in the window.
    assert {r["status"]: r["value"] for r in life.iter_rows(named=True)} == {
        "new": 2.0, "returning": 0.0, "resurrecting": 0.0, "dormant": -1.0}
    active = life.filter(pl.col("status") != "dormant")["value"].sum()
    assert active == wau["value"][0]
    # without start the whole week is counted: u1, u2, u3 new; u4 returning
    whole = ad.lifecycle_count(db, period="week", start=day(5, 0), end=day(12, 0))
    assert {r["status"]: r["value"] for r in whole.iter_rows(named=True)} == {
        "new": 3.0, "returning": 1.0, "resurrecting": 0.0, "dormant": 0.0}


def test_lifecycle_new_is_first_activity_at_all_by_default():
    db = wb.connect(":memory:")
    # x uses "search" on d1 and "chat" first on d3; y uses chat on d3 and nothing else; z uses chat on d2 and d3
    _events(db, [("x", day(1), "ask", "search"), ("x", day(3), "ask", "chat"), ("y", day(3), "ask", "chat"),
                 ("z", day(2), "ask", "chat"), ("z", day(3), "ask", "chat")])
    def chat_d3(**kw):
        r = ad.lifecycle_count(db, where={"feature": "chat"}, start=day(3, 0), **kw)
        return {s: v for s, v in r.select("status", "value").rows()}, set(r["new_definition"])
    # PostHog (default): x is not new on d3 (first seen d1): not active in chat on d2 -> resurrecting; y new; z returning
    assert chat_d3() == ({"new": 1, "returning": 1, "resurrecting": 1, "dormant": 0}, {"first_ever"})
    # per feature: x's first chat is d3 -> new (before this change the only definition: 56 feature-weeks differed)
    assert chat_d3(new="first_in_selection") == ({"new": 2, "returning": 1, "resurrecting": 0, "dormant": 0},
                                                  {"first_in_selection"})
    with pytest.raises(ValueError, match="lifecycle_count: new"):
        ad.lifecycle_count(db, new="first")


# -------------------------------------------------------------------------------------------------------- funnels

def test_funnel_order_and_window():
    db = wb.connect(":memory:")
    t0 = D(2026, 1, 1, 0)
    h = dt.timedelta(hours=1)
    _events(db, [
        # u1 completes: open, ask, accept within a day
        ("u1", t0, "open_assistant", "chat"), ("u1", t0 + h, "ask", "chat"), ("u1", t0 + 24 * h, "accept_suggestion", "chat"),
        # u2 out of order: accept before ask -> reaches ask only
        ("u2", t0, "open_assistant", "chat"), ("u2", t0 + h, "accept_suggestion", "chat"), ("u2", t0 + 2 * h, "ask", "chat"),
        # u3: accept 19 days after opening, outside the 14-day window -> reaches ask only
        ("u3", t0, "open_assistant", "chat"), ("u3", t0 + 24 * h, "ask", "chat"),
        ("u3", t0 + 19 * 24 * h, "accept_suggestion", "chat"),
        # u4 opens only; u5 asks without opening (not in the funnel)
        ("u4", t0, "open_assistant", "chat"), ("u5", t0, "ask", "chat"),
        # u6: ask exactly 14 days after opening (inclusive: counts), accept one second later (outside)
        ("u6", t0, "open_assistant", "chat"), ("u6", t0 + 14 * 24 * h, "ask", "chat"),
        ("u6", t0 + 14 * 24 * h + dt.timedelta(seconds=1), "accept_suggestion", "chat"),
    ])
    r = ad.funnel_conversion_rate(db, period="all")
    # step 0: u1 u2 u3 u4 u6 = 5; step 1: u1 u2 u3 u6 = 4; step 2: u1 = 1
    assert r.select("step", "step_index", "users").rows() == [
        ("open_assistant", 0, 5), ("ask", 1, 4), ("accept_suggestion", 2, 1)]
    assert r["step_rate"].to_list() == pytest.approx([1.0, 4 / 5, 1 / 4])
    assert r["overall_rate"].to_list() == pytest.approx([1.0, 4 / 5, 1 / 5])
    assert r["value"].to_list() == r["overall_rate"].to_list()
    assert set(r["n"]) == {5}
    # a 30-day window lets u3 (accept on day 19) and u6 (accept 14 days + 1 s) convert; u2 stays out of order
    wide = ad.funnel_conversion_rate(db, period="all", window_days=30)
    assert wide["users"].to_list() == [5, 4, 3]  # u1, u3, u6
    # the CLI form of steps
    two = ad.funnel_conversion_rate(db, period="all", steps="open_assistant,ask")
    assert two["users"].to_list() == [5, 4]
    with pytest.raises(ValueError, match="funnel_conversion_rate: steps"):
        ad.funnel_conversion_rate(db, steps=("open_assistant",))


def test_funnel_of_a_window_counts_steps_taken_after_its_end_within_each_users_window():
    """start/end choose who enters; a user who entered on the window's last day has the whole window_days to convert.
    The steps were read only up to end: u2, who opened on Sunday and asked on Monday, had not converted."""
    db = wb.connect(":memory:")
    _events(db, [
        ("u1", day(5, 9), "open_assistant", "chat"), ("u1", day(5, 10), "ask", "chat"),  # Monday, in the week
        ("u2", day(11, 22), "open_assistant", "chat"), ("u2", day(12, 8), "ask", "chat"),  # Sunday, asks Monday
        ("u3", day(11, 9), "open_assistant", "chat"), ("u3", day(26, 9), "ask", "chat"),  # 15 days: outside 14
        ("u4", day(12, 9), "open_assistant", "chat"), ("u4", day(12, 10), "ask", "chat"),  # enters after end: not in
    ])
    r = ad.funnel_conversion_rate(db, by=(), period="all", start="2026-01-05", end="2026-01-12",
                                  steps=("open_assistant", "ask"))
    # entered in the week: u1, u2, u3 = 3; asked within 14 days of opening: u1, u2 (u3 on day 15) -> 2 / 3
    assert r.select("step", "users", "n").rows() == [("open_assistant", 3, 3), ("ask", 2, 3)]
    assert r["value"].to_list() == pytest.approx([1.0, 2 / 3])


# ----------------------------------------------------------------------------------------------- feature adoption

def test_feature_adoption_over_active_and_exposed_users():
    db = wb.connect(":memory:")
    _events(db, [
        ("u1", day(1), "ask", "assistant"), ("u2", day(1), "ask", "assistant"), ("u3", day(1), "view", "docs"),
        ("u4", day(1), "view", "docs"), ("u2", day(2), "ask", "assistant"), ("u3", day(2), "view", "docs"),
    ])
    # active denominator: d1 users {u1..u4} = 4, assistant {u1, u2} -> 0.5; d2 {u2, u3}, assistant {u2} -> 0.5
    r = ad.feature_adoption_rate(db, where={"feature": "assistant"})
    assert r.select("period_start", "value", "n").rows() == [(day(1, 0), 0.5, 4), (day(2, 0), 0.5, 2)]
    # rollout: u1 exposed d1, u2 exposed d2 09:00, u3 exposed d5
    db.duckdb.executemany("insert into assignments (experiment, unit_id, variant, ts) values ('rollout', ?, 'on', ?)",
                          [("u1", day(1, 8)), ("u2", day(2, 9)), ("u3", day(5))])
    ex = ad.feature_adoption_rate(db, where={"feature": "assistant"}, denominator="exposed", experiment="rollout")
    # d1: exposed by the end of d1 = {u1}; u1 used it -> 1/1 (u2's use on d1 precedes its exposure... by period)
    # d2: exposed {u1, u2}; assistant users on d2 {u2} -> 1/2
    assert ex.select("period_start", "value", "n").rows() == [(day(1, 0), 1.0, 1), (day(2, 0), 0.5, 2)]
    with pytest.raises(ValueError, match="experiment: required"):
        ad.feature_adoption_rate(db, denominator="exposed")


# ------------------------------------------------------------------------------------------------------- feedback

def test_feedback_rates():
    db = wb.connect(":memory:")
    _calls(db, [(f"c{i}", "u1", day(1), "code" if i < 4 else "chat", 100.0, None) for i in range(6)])
    db.duckdb.executemany(
        "insert into feedback (feedback_id, call_id, ts, kind, value) values (?, ?, ?, ?, ?)",
        [("f0", "c0", day(1), "accept", 1), ("f1", "c1", day(1), "edit", 1), ("f2", "c1", day(1), "copy", 1),
         ("f3", "c2", day(1), "thumbs", 0), ("f4", "c4", day(1), "thumbs", 1), ("f5", "c5", day(1), "thumbs", 1),
         ("f6", "c5", day(1), "rating", 4)],
    )
    # code: c0..c3; chat: c4, c5
    fr = ad.feedback_rate(db)  # code: c0 c1 c2 of 4 -> 0.75; chat: both -> 1.0
    assert fr.select("feature", "value", "n").rows() == [("chat", 1.0, 2), ("code", 0.75, 4)]
    acc = ad.suggestion_acceptance_rate(db, where={"feature": "code"})  # c0 (accept), c1 (edit, copy) of 4
    assert acc.select("value", "n").rows() == [(0.5, 4)]
    strict = ad.suggestion_acceptance_rate(db, where={"feature": "code"}, kinds="accept")
    assert strict.select("value", "n").rows() == [(0.25, 4)]
    th = ad.thumbs_up_rate(db)  # chat: 2 up of 2; code: 0 up of 1
    assert th.select("feature", "value", "n").rows() == [("chat", 1.0, 2), ("code", 0.0, 1)]


def test_thumbs_up_rate_counts_each_users_latest_vote_on_a_call_once():
    db = wb.connect(":memory:")
    _calls(db, [("c1", "u1", day(1), "chat", 100.0, None), ("c2", "u2", day(1), "chat", 100.0, None)])
    db.duckdb.executemany(
        "insert into feedback (feedback_id, call_id, user_id, ts, kind, value) values (?, ?, ?, ?, ?, ?)",
        [("f1", "c1", "u1", day(1, 10), "thumbs", 0), ("f2", "c1", "u1", day(1, 11), "thumbs", 1),  # u1 changed it
         ("f3", "c2", "u2", day(1, 12), "thumbs", 1), ("f4", "c2", "u3", day(1, 13), "thumbs", 0),  # two people
         ("f5", "c2", None, day(1, 14), "thumbs", 1), ("f6", "c2", None, day(1, 15), "thumbs", 1)],  # anonymous: each
    )
    # votes: u1 on c1 up (its down replaced), u2 on c2 up, u3 on c2 down, two anonymous ups -> 4 up of 5
    assert ad.thumbs_up_rate(db).select("value", "n").rows() == [(0.8, 5)]
    # the latest vote before the window's end: at 10:30 u1's vote on c1 was down
    assert ad.thumbs_up_rate(db, end=day(1, 10) + dt.timedelta(minutes=30)).select("value", "n").rows() == [(0.0, 1)]
    # flipped back down: the vote counts as down, once
    db.duckdb.execute("insert into feedback (feedback_id, call_id, user_id, ts, kind, value) values "
                      "('f7', 'c1', 'u1', ?, 'thumbs', 0)", [day(1, 16)])
    assert ad.thumbs_up_rate(db).select("value", "n").rows() == [(0.6, 5)]


def test_feedback_rates_count_what_the_user_saw_not_the_spans_of_an_agent_trace():
    # An agent answer is a trace: its root span (what the user saw and rated) and three child spans (two model calls
    # and a tool). Before, the four spans were four calls: feedback on the answer read 1 of 4 = 0.25; with a plain
    # call beside it without feedback, 1 of 5.
    db = wb.connect(":memory:")
    db.duckdb.executemany(
        "insert into calls (call_id, trace_id, parent_id, ts, feature, status, operation) values (?, ?, ?, ?, ?, 'ok', ?)",
        [("r1", "t1", None, day(1, 9), "agent", "invoke_agent"), ("m1", "t1", "r1", day(1, 9), "agent", "chat"),
         ("x1", "t1", "r1", day(1, 9), "agent", "execute_tool"), ("m2", "t1", "r1", day(1, 9), "agent", "chat"),
         ("r2", "t2", None, day(1, 10), "agent", "invoke_agent"), ("m3", "t2", "r2", day(1, 10), "agent", "chat"),
         ("r3", "t3", None, day(1, 11), "agent", "invoke_agent"), ("m4", "t3", "r3", day(1, 11), "agent", "chat"),
         ("c1", None, None, day(1, 12), "agent", "chat")])
    db.duckdb.executemany(
        "insert into feedback (feedback_id, call_id, ts, kind, value) values (?, ?, ?, ?, ?)",
        [("f1", "r1", day(1, 13), "thumbs", 1), ("f2", "m3", day(1, 13), "accept", 1)])  # f2: on a span of t2
    # answers: t1 (rated on its root), t2 (accepted on its model span), t3 (none), c1 (none) -> 2 of 4
    assert ad.feedback_rate(db).select("value", "n").rows() == [(0.5, 4)]
    assert ad.suggestion_acceptance_rate(db).select("value", "n").rows() == [(0.25, 4)]  # t2 of 4


# ------------------------------------------------------------------------------------------- cost and quality

def test_cost_per_active_user():
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "chat"), ("u2", day(1), "ask", "chat"), ("u3", day(1), "ask", "chat"),
                 ("u1", day(2), "ask", "chat")])
    # reported costs: d1 0.3 + 0.6 = 0.9 over 3 active users = 0.3; d2 no calls: $0 over 1 user
    _calls(db, [("c1", "u1", day(1), "chat", 100.0, 0.3), ("c2", "u2", day(1), "chat", 100.0, 0.6)])
    r = ad.cost_per_active_user_usd(db)
    assert r.select("period_start", "value", "n", "cost_usd").rows() == [
        (day(1, 0), pytest.approx(0.3), 3, pytest.approx(0.9)), (day(2, 0), 0.0, 1, 0.0)]
    assert r["unpriced_calls"].to_list() == [0, 0]


RVC_CALLS = [
    # week of Jan 5: u1, u2, u3 active; week of Jan 12: u1 and u2 again (retained), u3 not (churned)
    ("c1", "u1", day(5), "chat", 100.0, None), ("c2", "u1", day(6), "chat", 200.0, None),
    ("c3", "u2", day(7), "chat", 300.0, None), ("c4", "u3", day(5), "chat", 500.0, None),
    ("c5", "u3", day(6), "chat", 700.0, None), ("c6", "u3", day(7), "chat", 900.0, None),
    ("c7", "u1", day(12), "chat", 100.0, None), ("c8", "u2", day(13), "chat", 100.0, None),
]
RVC_EVALS = [("c1", "supported", "d"), ("c2", "hallucinated", "d"), ("c3", "supported", "d"),
             ("c4", "hallucinated", "d"), ("c5", "unscorable", "d"), ("c1", "hallucinated", "judge")]


@pytest.fixture
def rvc_db():
    db = wb.connect(":memory:")
    _calls(db, RVC_CALLS)
    db.duckdb.executemany(
        "insert into evals (call_id, metric, label, evaluator, evaluator_version) values (?, 'hallucination_score', ?, ?, '1')",
        RVC_EVALS,
    )
    return db


def test_retained_vs_churned(rvc_db):
    r = ad.retained_vs_churned(rvc_db, activity="calls", evaluator="d")
    got = {(m, s): (v, n, u) for m, s, v, n, u in r.select("metric", "segment", "value", "n", "users").rows()}
    # week of Jan 12 is the last one: no next window, no rows for it
    assert r["period_start"].unique().to_list() == [D(2026, 1, 5)]
    # retained {u1, u2}: scored c1 c2 c3, hallucinated c2 -> 1/3; churned {u3}: scored c4 (c5 unscorable, c6 none) -> 1/1
    assert got[("hallucination_rate", "retained")] == (pytest.approx(1 / 3), 3, 2)
    assert got[("hallucination_rate", "churned")] == (1.0, 1, 1)
    # medians: retained 100, 200, 300 -> 200; churned 500, 700, 900 -> 700
    assert got[("latency_p50_ms", "retained")] == (200.0, 3, 2)
    assert got[("latency_p50_ms", "churned")] == (700.0, 3, 1)
    assert got[("latency_p50_ms", "retained-churned")] == (-500.0, 6, 3)
    # the difference of rates, with Newcombe's hybrid score interval from the two Wilson intervals
    d = r.filter((pl.col("metric") == "hallucination_rate") & (pl.col("segment") == "retained-churned"))
    (l1, l2), (u1, u2) = wilson_interval([1, 1], [3, 1])
    p1, p2 = 1 / 3, 1.0
    assert d["value"][0] == pytest.approx(-2 / 3)
    assert d["lo"][0] == pytest.approx(p1 - p2 - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2))
    assert d["hi"][0] == pytest.approx(p1 - p2 + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    assert d["lo"][0] < d["value"][0] < d["hi"][0]
    # any evaluator: the judge also calls c1 hallucinated -> retained 2/3
    anyev = ad.retained_vs_churned(rvc_db, activity="calls")
    row = anyev.filter((pl.col("metric") == "hallucination_rate") & (pl.col("segment") == "retained"))
    assert row["value"][0] == pytest.approx(2 / 3)


def test_retained_vs_churned_waits_for_the_next_window_to_be_over():
    """Read on a Wednesday, last week's users who had not come back by then were 'churned': the current week was
    their next window though it had three days to go. A first window whose next one is not over is left out, as the
    last window of the data already was."""
    from workbench.schema import utc_now

    now = utc_now()
    monday = D(now.year, now.month, now.day) - dt.timedelta(days=now.weekday())  # this week's: before the clock
    w = dt.timedelta(days=7)
    db = wb.connect(":memory:")
    # two weeks ago u1 and u2; last week u1 (retained) and not u2 (churned); this week, so far, u2 only
    _calls(db, [("a", "u1", monday - 2 * w, "chat", 100.0, None), ("b", "u2", monday - 2 * w, "chat", 300.0, None),
                ("c", "u1", monday - w, "chat", 200.0, None), ("d", "u2", monday, "chat", 400.0, None)])
    r = ad.retained_vs_churned(db, activity="calls").filter(pl.col("metric") == "latency_p50_ms")
    assert r.select("period_start", "segment", "value", "users").rows() == [
        (monday - 2 * w, "churned", 300.0, 1), (monday - 2 * w, "retained", 100.0, 1),
        (monday - 2 * w, "retained-churned", -200.0, 2)]


def test_a_where_column_the_activity_lacks_is_named_with_the_metric_and_the_table():
    """cost_per_active_user_usd(where={"model": ...}): model is a column of calls, but the users are counted from
    events, which has none; the error said only "where: no column 'model'; columns: event_id, ...", as if calls had
    no model. It names the metric, the activity table and how to read calls instead."""
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "chat")])
    _calls(db, [("c1", "u1", day(1), "chat", 100.0, 0.5)])
    with pytest.raises(wb.errors.NotFoundError) as got:
        ad.cost_per_active_user_usd(db, where={"model": "m1"})
    assert str(got.value) == ("cost_per_active_user_usd: where: no column 'model' in events, where the active users "
                              "are read from (activity='calls' reads calls); columns: event_id, user_id, ts, event, "
                              "feature, properties, ingest_run_id")
    with pytest.raises(wb.errors.NotFoundError, match=r"^dau_count: where: no column 'model' in events and calls "
                                                      r"\(activity='both'\); columns: user_id, ts, feature$"):
        ad.dau_count(db, activity="both", where={"model": "m1"})


def test_events_without_a_feature_form_their_own_group():
    # the null feature is a group like any other: joins on the keys must match null to null
    db = wb.connect(":memory:")
    _events(db, [(u, ts, ev, None) for u, ts, ev, _ in RETENTION])
    r = ad.retention_rate(db).filter(pl.col("cohort_start") == day(1, 0))
    assert r.select("feature", "offset", "value").rows() == [(None, 0, 1.0), (None, 1, 1 / 3), (None, 2, 2 / 3)]
    f = ad.funnel_conversion_rate(db, steps=("ask", "ask"), period="all")
    assert f["users"].to_list() == [5, 3]
    _calls(db, [("c1", "a", day(1), None, 100.0, 0.5)])
    c = ad.cost_per_active_user_usd(db, start=day(1, 0), end=day(2, 0))
    assert c.select("feature", "value", "n").rows() == [(None, pytest.approx(0.5 / 3), 3)]


# ----------------------------------------------------------------------------------------------------- invariants

def _rich_db(shuffle: int | None = None):
    db = wb.connect(":memory:")
    _events(db, TEN_DAYS + [("a", day(2), "open_assistant", "chat"), ("a", day(2, 10), "ask", "chat"),
                            ("e", day(3), "view", "docs")], shuffle=shuffle)
    calls = list(RVC_CALLS)
    if shuffle is not None:
        random.Random(shuffle).shuffle(calls)
    _calls(db, calls)
    db.duckdb.executemany(
        "insert into evals (call_id, metric, label, evaluator, evaluator_version) values (?, 'hallucination_score', ?, ?, '1')",
        RVC_EVALS,
    )
    db.duckdb.executemany("insert into feedback (feedback_id, call_id, ts, kind, value) values (?, ?, ?, ?, ?)",
                          [("f1", "c1", day(5), "thumbs", 1), ("f2", "c2", day(6), "accept", 1)])
    return db


def test_row_order_does_not_matter():
    a, b = _rich_db(), _rich_db(shuffle=3)
    for name, fn in ad.SUITE.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            x, y = fn(a), fn(b)
        assert x.equals(y), name
        assert x.columns[:7] == ["feature", "period_start", "metric", "value", "n", "lo", "hi"], name


def test_empty_selection_is_null_with_n_zero_and_a_warning():
    db = _rich_db()
    for name, fn in ad.SUITE.items():
        with pytest.warns(UndefinedMetricWarning):
            r = fn(db, where={"feature": "nope"})
        assert r.height >= 1, name
        assert r["n"].to_list() == [0] * r.height, name
        assert r["value"].is_null().all(), name


def test_suite_is_registered():
    assert set(ad.SUITE) <= set(wb.suite())
    assert wb.retention_rate is ad.retention_rate


def test_aggregates_compile_for_spark(retention_db):
    # the portable part: the Ibis expressions compile to Spark SQL without pyspark installed
    import ibis

    exprs = [
        ad._rolling_expr(retention_db, "x", window=7, by=("feature",), start=day(2), end=None, where=None, activity="both"),
        ad._retention_expr(retention_db, "x", by=("feature",), period="week", start=None, end=None, where=None,
                           activity="events", grain="week", cohort="first_ever")[1],
        ad._lifecycle_expr(retention_db, "x", by=("feature",), period="month", start="2026-01-07", end=None, where=None,
                           activity="events")[1],
        ad._funnel_expr(retention_db, "x", steps=("a", "b"), window_days=3, by=("feature",), period="day", start=None,
                        end=None, where=None)[1],
    ]
    for e in exprs:
        assert "SELECT" in ibis.to_sql(e, dialect="pyspark")
    # float literals (the quantiles) need the pyspark package to compile for Spark; check a warehouse dialect instead
    e = ad._retained_expr(retention_db, "x", by=("feature",), period="week", start=None, end=None, where=None,
                          activity="calls", evaluator=None)[1]
    assert "SELECT" in ibis.to_sql(e, dialect="snowflake")


# ------------------------------------------------------------------------------------------------------------ CLI

def test_cli_retention_json(tmp_path, capsys):
    from workbench.cli import main

    p = str(tmp_path / "w.duckdb")
    db = wb.connect(p)
    _events(db, RETENTION)
    db.close()
    assert main(["metrics", "retention_rate", "--db", p, "--param", "mode=unbounded", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    day1 = [(r["offset"], r["value"]) for r in rows if r["cohort_start"].startswith("2026-01-01")]
    assert day1 == [(0, 1.0), (1, pytest.approx(2 / 3)), (2, pytest.approx(2 / 3))]
    assert main(["metrics", "funnel_conversion_rate", "--db", p, "--param", "steps=ask,ask", "--period", "all",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["users"] for r in rows] == [5, 3]  # a: d1 then d2; b: d1 then d3; d: d2 then d3; c, e once


def test_active_users_in_user_shares_equal_one_pass(small_demo, monkeypatch):
    # On a large table the distinct-user counts run in passes over disjoint shares of the users (by a hash of
    # user_id), summed: every active-user metric, every period, with and without a start, must give the same frame.
    # read-only like the other readers of the shared demo file, and closed: a connection left open to it would
    # refuse the read-write connections of later tests
    cases = [(fn, period, activity, start)
             for fn in ("dau_count", "wau_count", "mau_count", "dau_mau_ratio")
             for period in ("day", "week")
             for activity in ("events", "calls")
             for start in (None, "2026-01-10")]
    cases += [(fn, "day", "both", None) for fn in ("dau_count", "wau_count", "mau_count", "dau_mau_ratio")]
    with warnings.catch_warnings(), wb.connect(small_demo, read_only=True) as db:
        warnings.simplefilter("ignore")
        monkeypatch.setattr(ad, "USER_PASSES", None)
        one = [getattr(ad, fn)(db, by=("feature",), period=period, activity=activity, start=start)
               for fn, period, activity, start in cases]
        shared = []
        for i, (fn, period, activity, start) in enumerate(cases):
            monkeypatch.setattr(ad, "USER_PASSES", 2 + i % 5)
            shared.append(getattr(ad, fn)(db, by=("feature",), period=period, activity=activity, start=start))
    assert sum(f.height for f in one) > 500 and any(f["value"].max() > 10 for f in one if f.height)
    for case, a, b in zip(cases, one, shared):
        assert a.equals(b), case


def test_user_share_splits_users_into_disjoint_shares(small_demo):
    # every active user falls in exactly one share, whatever the sign of the hash
    with wb.connect(small_demo, read_only=True) as db:
        t = ad._activity(db, "dau_count", activity="events")
        users = set(t.select("user_id").distinct().to_polars()["user_id"])
        shares = [set(ad._user_share(t, (i, 5)).select("user_id").distinct().to_polars()["user_id"])
                  for i in range(5)]
    assert sum(len(s) for s in shares) == len(users) > 100
    assert set().union(*shares) == users and all(shares)


def test_user_passes_follow_the_memory_limit(tmp_path, monkeypatch):
    # 1 pass while the distinct tuples fit in DuckDB's memory limit; more when the table would not
    path = tmp_path / "p.duckdb"
    with wb.connect(path) as db:
        db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) select i::varchar, "
                          "(i % 997)::varchar, timestamp '2026-01-01' + to_minutes(i), 'ask', 'chat' from range(200000) r(i)")
        db.duckdb.execute("checkpoint")
    with wb.connect(path, read_only=True) as db:
        t = ad._activity(db, "dau_count", activity="events")
        assert ad._user_passes(t) == 1
        db.duckdb.execute("set memory_limit = '10MB'")  # 200,000 rows x 100 B = 20 MB: two passes or more
        assert ad._user_passes(t) >= 2
        shared = ad.dau_count(db, by=())
        monkeypatch.setattr(ad, "USER_PASSES", 1)
        one = ad.dau_count(db, by=())
        assert shared.equals(one) and one["value"].to_list()[:2] == [997.0, 997.0]


# ---------------------------------------------------------------------------------------- series to the window's end


def test_a_rolling_series_runs_to_the_window_s_end_not_to_the_last_active_day():
    # u1 on Jan 1, u2 on Jan 2, window Jan 1 .. Jan 8: the series stopped at Jan 2 (WAU 2 on Jan 3..7 missing), and
    # a window whose look-back alone held activity crashed (TypeError comparing None with a date)
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "chat"), ("u2", day(2), "ask", "chat")])
    w = ad.wau_count(db, start="2026-01-01", end="2026-01-08")
    assert w["value"].to_list() == [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert ad.dau_count(db, start="2026-01-01", end="2026-01-08")["value"].to_list() == [1.0, 1.0, 0, 0, 0, 0, 0]
    # weeks: Jan 5 .. 11 holds no activity but is a week of the window (MAU 2 there)
    m = ad.mau_count(db, period="week", start="2026-01-01", end="2026-01-12")
    assert m.select("period_start", "value", "n").rows() == [(D(2025, 12, 29), 2.0, 4), (D(2026, 1, 5), 0.0, 7)]
    only_lookback = ad.wau_count(db, start="2026-01-05", end="2026-01-07")
    assert only_lookback.select("period_start", "value").rows() == [(D(2026, 1, 5), 2.0), (D(2026, 1, 6), 2.0)]
    assert ad.dau_mau_ratio(db, start="2026-01-05", end="2026-01-07")["value"].to_list() == [2 / 5 / 2, 2 / 6 / 2]


def test_a_calendar_ratio_counts_the_days_of_the_window_whatever_other_groups_hold():
    # search: u2 on Jan 5, u1 on Jan 20; chat: u3 on Jan 22. The week of Jan 19 has 7 days in the window: (1/7)/1
    # (it gave 0.25, n = 4 by feature and 0.5, n = 2 with where feature=search: the days up to the last active one)
    db = wb.connect(":memory:")
    _events(db, [("u2", day(5), "ask", "search"), ("u1", day(20), "ask", "search"), ("u3", day(22), "ask", "chat")])
    for kw in ({"by": ("feature",)}, {"where": {"feature": "search"}}):
        r = ad.dau_mau_ratio(db, period="week", start="2026-01-05", end="2026-02-02", **kw)
        r = r.filter(pl.col("period_start") == D(2026, 1, 19))
        if "feature" in r.columns:
            r = r.filter(pl.col("feature") == "search")
        assert r.select("value", "n").rows() == [(pytest.approx(1 / 7), 7)]


def test_feature_adoption_of_a_period_nobody_used_the_feature_in_is_zero_not_missing():
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "assistant"), ("u1", day(1, 10), "view", "docs"),
                 ("u2", day(2), "view", "docs"), ("u3", day(2, 10), "view", "docs")])
    got = ad.feature_adoption_rate(db, start="2026-01-01", end="2026-01-03").sort("feature", "period_start")
    assert got.select("feature", "period_start", "value", "n").rows() == [
        ("assistant", D(2026, 1, 1), 1.0, 1), ("assistant", D(2026, 1, 2), 0.0, 2),
        ("docs", D(2026, 1, 1), 1.0, 1), ("docs", D(2026, 1, 2), 1.0, 2)]


def test_returning_share_sees_the_window_s_last_day_whatever_other_groups_hold():
    # u1 and u2 on Jan 1, u1 on Jan 2; window Jan 2 .. Jan 4: on Jan 3 u1 (active yesterday) did not return: 0 of 1
    # (it was null, n = 0: the last day of the selection's data was the horizon, and another feature's event on
    # Jan 3 changed chat's value)
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "chat"), ("u2", day(1), "ask", "chat"), ("u1", day(2), "ask", "chat")])
    expected = [(D(2026, 1, 2), 0.5, 2), (D(2026, 1, 3), 0.0, 1)]
    assert ad.returning_share_rate(db, start="2026-01-02", end="2026-01-04").select(
        "period_start", "value", "n").rows() == expected
    _events(db, [("u9", day(3), "ask", "search")])
    assert ad.returning_share_rate(db, start="2026-01-02", end="2026-01-04", where={"feature": "chat"}).select(
        "period_start", "value", "n").rows() == expected


@pytest.mark.parametrize("metric", ["dau_count", "wau_count", "retention_rate", "lifecycle_count",
                                    "returning_share_rate", "feature_adoption_rate"])
def test_grouping_by_the_user_or_the_time_is_a_parameter_error(metric):
    # by=("user_id",) selected the column twice (IbisInputError: duplicate column name)
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "chat")])
    with pytest.raises(wb.errors.ParameterError, match=rf"{metric}: by 'user_id': the metric counts users"):
        getattr(ad, metric)(db, by=("user_id",))


def test_an_undefined_calendar_ratio_has_n_0_and_cost_per_active_user_keeps_every_week():
    # nobody active in a week: dau_mau_ratio gave null beside n = 7 (the contract: null with n = 0 and a warning);
    # cost_per_active_user_usd dropped the (feature, week) pairs nobody was active in
    db = wb.connect(":memory:")
    _events(db, [("u1", day(1), "ask", "chat"), ("u2", day(20), "ask", "search")])
    with pytest.warns(UndefinedMetricWarning):
        r = ad.dau_mau_ratio(db, period="week", start="2026-01-05", end="2026-01-26")
    assert r.select("period_start", "value", "n").rows() == [
        (D(2026, 1, 5), None, 0), (D(2026, 1, 12), None, 0), (D(2026, 1, 19), pytest.approx(1 / 7), 7)]
    c = ad.cost_per_active_user_usd(db, period="week", start="2026-01-05", end="2026-01-26", activity="events")
    assert c.select("feature", "period_start", "n").sort("period_start").rows() == [
        ("search", D(2026, 1, 5), 0), ("search", D(2026, 1, 12), 0), ("search", D(2026, 1, 19), 1)]


def test_without_product_events_the_users_are_those_of_the_calls():
    # a team that logs no events: every adoption metric read the empty events table ("-, sample 0" on the scorecard's
    # WAU, its wau_count_min target dropped); by default (activity="auto") the calls' users are the active users
    db = wb.connect(":memory:")
    _calls(db, [("c1", "u1", day(5), "chat", 100.0, 0.01), ("c2", "u2", day(6), "chat", 100.0, 0.01),
                ("c3", "u1", day(7), "chat", 100.0, 0.01)])
    assert ad.wau_count(db, period="week", start="2026-01-05", end="2026-01-12")["value"].to_list() == [2.0]
    assert ad.wau_count(db, period="week", start="2026-01-05", end="2026-01-12", activity="events")["n"].sum() == 0
    # once events are logged, they are the activity
    _events(db, [("u9", day(5), "ask", "chat")])
    assert ad.wau_count(db, period="week", start="2026-01-05", end="2026-01-12")["value"].to_list() == [1.0]


def test_anonymous_events_do_not_make_events_the_activity():
    # one event without a user made activity="auto" read events, and the calls' users vanished (null, n = 0)
    db = wb.connect(":memory:")
    _calls(db, [("c1", "u1", day(5), "chat", 100.0, 0.01), ("c2", "u2", day(6), "chat", 100.0, 0.01)])
    _events(db, [(None, day(5), "view", "chat")])
    assert ad.wau_count(db, period="week", start="2026-01-05", end="2026-01-12")["value"].to_list() == [2.0]


def test_feature_adoption_over_exposed_users_reports_every_feature_in_every_period():
    """A period in which no exposed user used a feature is 0 of the exposed, in that feature's own row: it was
    missing, or came back as one row with a null feature."""
    db = wb.connect(":memory:")
    _events(db, [
        ("u1", day(1), "ask", "assistant"), ("u1", day(1), "view", "docs"), ("u2", day(1), "view", "docs"),
        ("u3", day(2), "view", "docs"), ("u2", day(3), "ask", "assistant"),
    ])
    # u1 exposed before day 1, u2 and u4 at the first instant of day 2 (not before the end of day 1); u3 never
    db.duckdb.executemany("insert into assignments (experiment, unit_id, variant, ts) values ('rollout', ?, 'on', ?)",
                          [("u1", D(2025, 12, 31)), ("u2", day(2, 0)), ("u4", day(2, 0))])
    r = ad.feature_adoption_rate(db, denominator="exposed", experiment="rollout")
    # d1: exposed {u1}; assistant {u1} 1/1, docs {u1} (u2 not yet exposed) 1/1
    # d2: exposed {u1, u2, u4}; nobody exposed used either feature (u3 is not exposed): 0/3 and 0/3
    # d3: exposed {u1, u2, u4}; assistant {u2} 1/3, docs 0/3
    assert r.sort("feature", "period_start").select("feature", pl.col("period_start").dt.day(), "users", "n").rows() == [
        ("assistant", 1, 1, 1), ("assistant", 2, 0, 3), ("assistant", 3, 1, 3),
        ("docs", 1, 1, 1), ("docs", 2, 0, 3), ("docs", 3, 0, 3)]
    one = ad.feature_adoption_rate(db, where={"feature": "assistant"}, denominator="exposed", experiment="rollout")
    assert one.select(pl.col("period_start").dt.day(), "value", "n").rows() == [(1, 1.0, 1), (2, 0.0, 3),
                                                                               (3, 1 / 3, 3)]
