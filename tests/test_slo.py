"""workbench.metrics.slo: config validation, attainment and budgets by hand, burn-rate alerts against sloth's numbers, CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.metrics import slo
from workbench.cli import main
from workbench.config import ConfigError, load_config
from workbench.metrics import UndefinedMetricWarning

GOLDENS = json.loads((Path(__file__).resolve().parent / "goldens" / "published.json").read_text())
AT = dt.datetime(2026, 3, 10, 12, 0)


def _toml(tmp_path, body: str, name: str = "workbench.toml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


def _slo_toml(tmp_path, *, availability=0.999, latency_ms=2000, latency_target=0.95, extra=""):
    return _toml(tmp_path, f"[slo.chat]\nlatency_ms = {latency_ms}\nlatency_target = {latency_target}\n"
                           f"availability_target = {availability}\n{extra}")


def _stream(db, n_bins: int, per_bin: int, error_if: str, feature: str = "chat") -> None:
    """``per_bin`` calls in each 5-minute bin b = 0..n_bins-1 before AT (bin b: (AT - 5(b+1) min, AT - 5b min]);
    the calls of a bin are spread 1..(2 per_bin - 1) s before its end; ``error_if`` is SQL over b and i (call index)."""
    db.duckdb.execute(f"""
        insert into calls (call_id, ts, feature, status, latency_ms)
        select '{feature}' || b || '_' || i, ?::timestamp - to_seconds(b * 300 + 1 + i * 2), '{feature}',
               case when {error_if} then 'error' else 'ok' end, 100
        from range(0, {n_bins}) as bb(b), range(0, {per_bin}) as ii(i)""", [AT])


# ------------------------------------------------------------------------------------------------------------ config


def test_load_slos_reads_every_sli(tmp_path):
    p = _slo_toml(tmp_path, extra="ttft_p95_ms = 800\nwindow_days = 28\n")
    got = slo.load_slos(p)
    assert [(s.feature, s.sli, s.objective, s.threshold_ms, s.window_days) for s in got] == [
        ("chat", "latency", 0.95, 2000.0, 28), ("chat", "availability", 0.999, None, 28), ("chat", "ttft", 0.95, 800.0, 28)]
    assert got[1].error_budget == pytest.approx(0.001)
    # a file that declares other things and no SLO (a table no module reads, such as [cost], is refused: config.TABLES)
    assert slo.load_slos(_toml(tmp_path, "[budget.chat]\nmonthly_usd = 1\n", "other.toml")) == []


@pytest.mark.parametrize("body, key", [
    ("latency_ms = 2000\navailability_target = 0.99\n", "'latency_target'"),          # missing
    ("latency_ms = 2000\nlatency_target = 1.2\navailability_target = 0.99\n", "latency_target"),  # > 1
    ("latency_ms = 2000\nlatency_target = 0.9\navailability_target = 1\n", "availability_target"),  # no budget
    ("latency_ms = 2000\nlatency_target = 0.9\navailability_target = 0.99\nwindow_days = 29\n", "window_days"),
    ("latency_ms = -5\nlatency_target = 0.9\navailability_target = 0.99\n", "latency_ms"),
    ("latency_ms = '2s'\nlatency_target = 0.9\navailability_target = 0.99\n", "latency_ms"),
    ("latency_ms = 2000\nlatency_target = 0.9\navailability_target = 0.99\nttft_p95 = 800\n", "'ttft_p95'"),  # typo
])
def test_config_errors_name_file_table_and_key(tmp_path, body, key):
    p = _toml(tmp_path, "[slo.support_assistant]\n" + body, "team.toml")
    with pytest.raises(ConfigError) as exc:
        slo.load_slos(p)
    msg = str(exc.value)
    assert msg.startswith("team.toml [slo.support_assistant]: ") and key in msg, msg


def test_each_objective_stands_alone(tmp_path):
    """A team promising latency and not availability (or only availability) declared a target it did not have:
    'missing availability_target' stopped the latency report at its SLO cell."""
    lat = slo.load_slos(_toml(tmp_path, "[slo.chat]\nlatency_ms = 800\nlatency_target = 0.95\n", "a.toml"))
    assert [(s.sli, s.objective, s.threshold_ms) for s in lat] == [("latency", 0.95, 800.0)]
    avail = slo.load_slos(_toml(tmp_path, "[slo.chat]\navailability_target = 0.99\nwindow_days = 28\n", "b.toml"))
    assert [(s.sli, s.objective, s.window_days) for s in avail] == [("availability", 0.99, 28)]
    ttft = slo.load_slos(_toml(tmp_path, "[slo.chat]\nttft_p95_ms = 900\n", "c.toml"))
    assert [(s.sli, s.threshold_ms) for s in ttft] == [("ttft", 900.0)]
    with pytest.raises(ConfigError, match=r"d.toml \[slo.chat\]: declares no objective"):
        slo.load_slos(_toml(tmp_path, "[slo.chat]\nwindow_days = 28\n", "d.toml"))
    with pytest.raises(ConfigError, match=r"e.toml \[slo.chat\]: missing 'latency_ms'"):
        slo.load_slos(_toml(tmp_path, "[slo.chat]\nlatency_target = 0.95\n", "e.toml"))
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
                      "('a', TIMESTAMP '2026-11-18 10:00', 'chat', 'ok', 500), "
                      "('b', TIMESTAMP '2026-11-18 11:00', 'chat', 'error', 1500)")
    rep = slo.slo_report(db, config=tmp_path / "a.toml", at="2026-11-19")
    assert rep.select("sli", "n", "good").rows() == [("latency", 2, 1)]


def test_no_slo_declared_is_an_error_for_the_report(tmp_path):
    db = wb.connect(":memory:")
    with pytest.raises(ConfigError, match=r"other.toml \[slo\]: no SLOs declared"):
        slo.slo_report(db, config=_toml(tmp_path, "", "other.toml"))
    with pytest.raises(ConfigError, match="expected a table"):
        slo.load_slos(_toml(tmp_path, "[slo]\nchat = 3\n"))


# ------------------------------------------------------------------------------------------------------------ report


def test_slo_report_by_hand(tmp_path):
    db = wb.connect(":memory:")
    rows = [
        # inside the 30-day window (AT - 30d, AT]
        ("a", AT, "ok", 1000.0, 300.0),
        ("b", AT - dt.timedelta(days=1), "ok", 2500.0, 900.0),      # slow, slow first token
        ("c", AT - dt.timedelta(days=2), "error", 200.0, None),     # error, not streamed
        ("d", AT - dt.timedelta(days=3), "blocked", 50.0, None),    # blocked counts as available
        ("e", AT - dt.timedelta(days=29), "timeout", None, None),   # timeout: no latency, a slow call
        # outside: exactly 30 days before is excluded, after AT too
        ("f", AT - dt.timedelta(days=30), "error", 9000.0, 9000.0),
        ("g", AT + dt.timedelta(seconds=1), "error", 9000.0, 9000.0),
    ]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms, ttft_ms) values (?, ?, 'chat', ?, ?, ?)",
                          rows)
    p = _slo_toml(tmp_path, availability=0.9, latency_target=0.5, extra="ttft_p95_ms = 800\n")
    df = slo.slo_report(db, config=p, at=AT)
    lat, avail, ttft = df.rows(named=True)
    # latency: a, b, c, d have a latency, e timed out; b is over 2000 and e is bad -> 3 / 5 = .6 >= .5; budget .5,
    # consumed .4 / .5 = .8
    assert (lat["n"], lat["good"], lat["sli_value"], lat["met"]) == (5, 3, 0.6, True)
    assert lat["budget_consumed"] == pytest.approx(0.8) and lat["budget_remaining"] == pytest.approx(0.2)
    # observed p50 of 50, 200, 1000, 2500 and e, a timeout with no latency counted as infinite: 1000
    assert lat["observed_ms"] == pytest.approx(1000.0)
    # availability: a, b, d good; c, e bad -> 3 / 5 = .6 < .9; consumed .4 / .1 = 4 (budget spent four times)
    assert (avail["n"], avail["good"], avail["sli_value"], avail["met"]) == (5, 3, 0.6, False)
    assert avail["budget_consumed"] == pytest.approx(4.0) and avail["budget_remaining"] == pytest.approx(-3.0)
    # ttft: a (300) good, b (900) bad -> .5 < .95; consumed .5 / .05 = 10; observed p95 = 300 + .95 * 600
    assert (ttft["n"], ttft["sli_value"], ttft["met"], ttft["threshold_ms"]) == (2, 0.5, False, 800.0)
    assert ttft["budget_consumed"] == pytest.approx(10.0) and ttft["observed_ms"] == pytest.approx(870.0)
    assert df["window_start"].to_list() == [AT - dt.timedelta(days=30)] * 3
    # default at: the clock (UTC), not the latest call (a future-dated row must not move the window)
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    with pytest.warns(UndefinedMetricWarning):  # these calls are months before the clock: none in the window
        now = slo.slo_report(db, config=p)
    assert before <= now["window_end"][0] <= before + dt.timedelta(seconds=30)
    assert now["n"].to_list() == [0, 0, 0]


def test_a_latency_slo_s_observed_percentile_counts_timeouts_without_latency(tmp_path):
    """The SLI counts a timeout with no latency as a bad call, but the observed percentile left it out: two calls at
    100 and 200 ms and two such timeouts read p90 190 ms under a 1000 ms threshold next to an attainment of 0.5, SLO
    missed. A timeout without a latency is slower than any threshold in the percentile too: infinite."""
    db = wb.connect(":memory:")
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, 'chat', ?, ?)",
                          [("a", AT, "ok", 100.0), ("b", AT, "ok", 200.0), ("c", AT, "timeout", None),
                           ("d", AT, "timeout", None)])
    df = slo.slo_report(db, config=_slo_toml(tmp_path, latency_ms=1000, latency_target=0.9), at=AT)
    lat = df.row(0, named=True)
    assert (lat["n"], lat["sli_value"], lat["met"], lat["observed_ms"]) == (4, 0.5, False, float("inf"))
    # below the timeouts the percentile is a latency measured: p25 of 100, 200, inf, inf = 100 + .75 * 100
    df = slo.slo_report(db, config=_slo_toml(tmp_path, latency_ms=1000, latency_target=0.25), at=AT)
    assert df.row(0, named=True)["observed_ms"] == pytest.approx(175.0)


def test_slo_report_window_28_days_and_empty_feature(tmp_path):
    db = wb.connect(":memory:")
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, 'chat', ?, 10)",
                          [("a", AT - dt.timedelta(days=27), "ok"), ("b", AT - dt.timedelta(days=29), "error")])
    p = _toml(tmp_path, "[slo.chat]\nlatency_ms = 100\nlatency_target = 0.9\navailability_target = 0.9\nwindow_days = 28\n"
                        "[slo.idle]\nlatency_ms = 100\nlatency_target = 0.9\navailability_target = 0.9\n")
    with pytest.warns(UndefinedMetricWarning, match="idle"):
        df = slo.slo_report(db, config=p, at=AT)
    chat = df.filter(pl.col("feature") == "chat", pl.col("sli") == "availability").row(0, named=True)
    assert (chat["n"], chat["sli_value"]) == (1, 1.0)  # b is 29 days old: outside 28 days
    idle = df.filter(pl.col("feature") == "idle")
    assert idle["n"].to_list() == [0, 0] and idle["sli_value"].to_list() == [None, None]


def test_an_slo_for_a_misspelled_feature_warns_with_the_closest_name(tmp_path, capsys):
    """An SLO whose feature no call has is never measured: it read as met for ever, one warning per SLI about an
    empty window the only trace."""
    from workbench.metrics.core import UnknownFeatureWarning

    path = tmp_path / "wb.duckdb"
    db = wb.connect(path)
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, 'chat', 'ok', 10)",
                          [("a", AT - dt.timedelta(hours=1))])
    db.close()
    p = _toml(tmp_path, "[slo.Chat]\nlatency_ms = 100\nlatency_target = 0.9\navailability_target = 0.9\n"
                        "[slo.chat]\nlatency_ms = 100\nlatency_target = 0.9\navailability_target = 0.9\n")
    with pytest.warns(UnknownFeatureWarning) as got:
        slo.slo_status(path, config=p, at=AT)
    assert [str(w.message) for w in got if w.category is UnknownFeatureWarning] == [
        "workbench.toml [slo.Chat]: no call has feature 'Chat', so it is never measured and never fires; "
        "did you mean 'chat'?"]
    assert main(["slo", "--db", str(path), "--config", str(p), "--at", AT.isoformat()]) == 3  # Chat: no data
    assert "workbench slo: warning: workbench.toml [slo.Chat]: no call has feature 'Chat'" in capsys.readouterr().err


def test_calls_of_a_renamed_or_re_cased_feature_warn_that_the_slo_does_not_measure_them(tmp_path):
    """The deploy that logs 'Support Assistant' for support_assistant: the feature had calls (in September), so no
    warning, and the SLO read n = 0 while every call of the window failed; 'support_assistant ' and
    'Support_Assistant' among the calls of one load: the SLO saw 1 call of 3."""
    from workbench.metrics.core import UnknownFeatureWarning

    db = wb.connect(":memory:")
    rows = [("old", AT - dt.timedelta(days=90), "support_assistant", "ok")]
    rows += [(f"n{i}", AT - dt.timedelta(hours=i + 1), "Support Assistant", "error") for i in range(200)]
    rows += [("m1", AT - dt.timedelta(hours=1), "search", "ok"), ("m2", AT - dt.timedelta(hours=2), "search ", "error"),
             ("m3", AT - dt.timedelta(hours=3), "Search", "error")]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, ?, ?, 10)", rows)
    p = _toml(tmp_path, "[slo.support_assistant]\navailability_target = 0.99\n[slo.search]\navailability_target = 0.9\n")
    with pytest.warns(UnknownFeatureWarning) as got:
        slo.slo_report(db, config=p, at=AT)
    msgs = sorted(str(w.message) for w in got if w.category is UnknownFeatureWarning)
    assert msgs == [
        "workbench.toml [slo.search]: calls of this window name feature 'search ' (1 calls) and 'Search' (1 calls), "
        "not 'search' (1 calls), so they are not measured by it; a feature is matched exactly (renamed?)",
        "workbench.toml [slo.support_assistant]: calls of this window name feature 'Support Assistant' (200 calls), "
        "not 'support_assistant' (0 calls), so they are not measured by it; a feature is matched exactly (renamed?)"]


def test_slo_and_budget_refuse_an_at_after_the_clock(tmp_path, capsys):
    """2062 typed for 2026: the window held no call and the commands read ok, exit 0."""
    path = tmp_path / "wb.duckdb"
    wb.connect(path).close()
    p = _slo_toml(tmp_path)
    for verb in ("slo", "budget"):
        assert main([verb, "--db", str(path), "--config", str(p), "--at", "2062-03-10"]) == 2
        err = capsys.readouterr().err
        assert f"workbench {verb}: error: {verb}: --at: 2062-03-10 00:00:00 is after the clock (" in err, err
        assert err.count("\n") == 1


def test_slo_and_budget_name_the_at_option_they_cannot_read(tmp_path, capsys):
    """`--at 2026-13-01` (month and day swapped) said only "expected an ISO date or timestamp, got '2026-13-01'",
    not which option of the command it was."""
    path = tmp_path / "wb.duckdb"
    wb.connect(path).close()
    p = _slo_toml(tmp_path, extra="[budget.chat]\nmonthly_usd = 100\n")
    for verb in ("slo", "budget"):
        assert main([verb, "--db", str(path), "--config", str(p), "--at", "2026-13-01"]) == 2
        assert capsys.readouterr().err == (f"workbench {verb}: error: {verb}: --at: expected an ISO date or timestamp, "
                                           f"got '2026-13-01'\n")


# ------------------------------------------------------------------------------------------------------------ alerts


def test_burn_rate_factors_match_sloth():
    gold = GOLDENS["burn_rate_sloth"]
    assert [w["budget_spent"] for w in gold["windows"]] == [a[3] for a in slo.ALERT_WINDOWS]
    assert [slo._window_label(a[1]) for a in slo.ALERT_WINDOWS] == [w["long"] for w in gold["windows"]]
    assert [slo._window_label(a[2]) for a in slo.ALERT_WINDOWS] == [w["short"] for w in gold["windows"]]
    for days, key in ((30, "factors_30d"), (28, "factors_28d")):
        s = slo.Slo("chat", "availability", gold["slo"], None, days)
        assert [s.burn_factor(a[3], a[1]) for a in slo.ALERT_WINDOWS] == pytest.approx(gold[key], rel=1e-12)


def _alerts(df, sli="availability"):
    return {(r["long_window"], r["short_window"]): r for r in df.filter(pl.col("sli") == sli).iter_rows(named=True)}


def test_fast_burn_fires_only_the_1h_page(tmp_path):
    db = wb.connect(":memory:")
    # 100 calls per 5-minute bin for 3 days; 2 errors in each of the last 12 bins (the last hour), none before.
    # SLO 0.999 (budget .001):
    #   5m, 30m, 1h: 2% -> burn 20;  2h: 24 / 2400 = 1% -> 10;  6h: 24 / 7200 -> 3.33;  1d: 24 / 28800 -> 0.833;
    #   3d: 24 / 86400 -> 0.278
    #   page 1h/5m: 20 > 14.4 and 20 > 14.4 -> fires;  page 6h/30m: 3.33 < 6;  ticket 1d/2h: 0.833 < 3;
    #   ticket 3d/6h: 0.278 < 1.
    # firing since: at step e (AT - 5e min) the 1h window holds 12 - e error bins -> burn 20 (12 - e) / 12 > 14.4
    #   while e <= 3, and the 5m bin e is an error bin: continuously firing since AT - 15 min.
    _stream(db, 864, 100, "b < 12 and i < 2")
    df = slo.burn_rate_alerts(db, config=_slo_toml(tmp_path), at=AT)
    a = _alerts(df)
    assert {k: r["firing"] for k, r in a.items()} == {
        ("1h", "5m"): True, ("6h", "30m"): False, ("1d", "2h"): False, ("3d", "6h"): False}
    assert [round(a[k]["long_burn"], 4) for k in a] == [20.0, 3.3333, 0.8333, 0.2778]
    assert [round(a[k]["short_burn"], 4) for k in a] == [20.0, 20.0, 10.0, 3.3333]
    assert a[("1h", "5m")]["severity"] == "page" and a[("1h", "5m")]["factor"] == pytest.approx(14.4)
    assert a[("1h", "5m")]["firing_since"] == AT - dt.timedelta(minutes=15)
    assert a[("6h", "30m")]["firing_since"] is None
    assert not df.filter(pl.col("sli") == "latency")["firing"].any()  # every call is 100 ms


def test_a_call_under_a_millisecond_inside_a_window_is_in_it(tmp_path):
    # Windows are (at - w, at]: an error 4 min 59.9995 s before `at` is in the 5-minute window. Its bin came from
    # milliseconds between the two times, each truncated first (300,000 ms: the older bin), so the page did not fire
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, 'chat', 'error', 100),"
                      " (?, ?, 'chat', 'ok', 100)", ["bad", AT - dt.timedelta(minutes=5, microseconds=-500),
                                                      "good", AT - dt.timedelta(minutes=1)])
    a = _alerts(slo.burn_rate_alerts(db, config=_slo_toml(tmp_path), at=AT))[("1h", "5m")]
    assert (a["short_burn"], a["long_burn"], a["firing"]) == (pytest.approx(500.0), pytest.approx(500.0), True)
    # and exactly 5 minutes before is out of it (the window is open at its start)
    db.duckdb.execute("update calls set ts = ? where call_id = 'bad'", [AT - dt.timedelta(minutes=5)])
    a = _alerts(slo.burn_rate_alerts(db, config=_slo_toml(tmp_path), at=AT))[("1h", "5m")]
    assert (a["short_burn"], a["long_burn"], a["firing"]) == (0.0, pytest.approx(500.0), False)


def test_recovered_short_window_resets_the_page(tmp_path):
    db = wb.connect(":memory:")
    # errors 3% in bins 1..11, none in the last 5 minutes: 1h burn (11 * 3) / 1200 / .001 = 27.5 > 14.4, but the 5m
    # burn is 0 -> the page does not fire (the short window is what stops an alert once the problem is fixed)
    _stream(db, 864, 100, "b between 1 and 11 and i < 3")
    a = _alerts(slo.burn_rate_alerts(db, config=_slo_toml(tmp_path), at=AT))
    assert a[("1h", "5m")]["long_burn"] == pytest.approx(27.5) and a[("1h", "5m")]["short_burn"] == 0.0
    assert not any(r["firing"] for r in a.values())


def test_slow_burn_fires_only_the_3d_ticket_and_since_the_lookback_start(tmp_path):
    db = wb.connect(":memory:")
    # one error in every 6th bin of 100 calls, for 6 days: every window of whole multiples of 30 min has 1/600 errors
    # -> burn 1.667: > 1 (3d/6h ticket) but < 3, 6, 14.4. It fires at every 5-minute step of the 3-day look-back.
    _stream(db, 6 * 288, 100, "b % 6 = 0 and i = 0")
    df = slo.burn_rate_alerts(db, config=_slo_toml(tmp_path), at=AT)
    a = _alerts(df)
    assert {k: r["firing"] for k, r in a.items()} == {
        ("1h", "5m"): False, ("6h", "30m"): False, ("1d", "2h"): False, ("3d", "6h"): True}
    assert a[("3d", "6h")]["long_burn"] == pytest.approx(1000 / 600) and a[("3d", "6h")]["severity"] == "ticket"
    assert a[("3d", "6h")]["firing_since"] == AT - dt.timedelta(minutes=5 * 863)


def test_a_timeout_without_a_latency_is_a_slow_call_for_the_latency_slo(tmp_path):
    """A gateway log records no duration for a request it gave up on: the timeouts had no latency_ms and were left
    out of the latency SLI, so a latency-only SLO read 100% met and no burn-rate alert fired while half the calls of
    the last hour timed out. A timeout was not served under any threshold: it is a bad call."""
    db = wb.connect(":memory:")
    # the last hour: 6 calls of 100 ms and 6 timeouts without a latency, one of each per 5-minute bin (AT - 10 s and
    # AT - 20 s in bin 0); an error without a latency stays out of the latency SLI (availability counts it)
    rows = []
    for b in range(6):
        rows.append((f"ok{b}", AT - dt.timedelta(minutes=5 * b, seconds=10), "ok", 100.0))
        rows.append((f"to{b}", AT - dt.timedelta(minutes=5 * b, seconds=20), "timeout", None))
    rows.append(("err", AT - dt.timedelta(seconds=30), "error", None))
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, 'chat', ?, ?)",
                          rows)
    p = _toml(tmp_path, "[slo.chat]\nlatency_ms = 2000\nlatency_target = 0.99\n")
    (lat,) = slo.slo_report(db, config=p, at=AT).rows(named=True)
    # 12 valid (6 ok + 6 timeouts), 6 good: .5 < .99; consumed .5 / .01 = 50
    assert (lat["n"], lat["good"], lat["sli_value"], lat["met"]) == (12, 6, 0.5, False)
    assert lat["budget_consumed"] == pytest.approx(50.0)
    a = _alerts(slo.burn_rate_alerts(db, config=p, at=AT), sli="latency")
    # every window holds the same calls: error rate .5, burn .5 / .01 = 50 > 14.4, 6, 3, 1: all four fire
    assert [round(r["long_burn"], 6) for r in a.values()] == [50.0] * 4
    assert [round(r["short_burn"], 6) for r in a.values()] == [50.0] * 4
    assert all(r["firing"] for r in a.values())


def test_28_day_slo_uses_the_scaled_factors(tmp_path):
    db = wb.connect(":memory:")
    # 130 calls per bin, one error every 8th bin: 1 / 1040 -> burn 0.9615 over 3d and 6h (both multiples of 8 bins):
    # below 1 (30 days) but above 28/30 = 0.9333 (28 days)
    _stream(db, 864, 130, "b % 8 = 0 and i = 0")
    d30 = _alerts(slo.burn_rate_alerts(db, config=_slo_toml(tmp_path), at=AT))
    d28 = _alerts(slo.burn_rate_alerts(db, config=_slo_toml(tmp_path, extra="window_days = 28\n"), at=AT))
    assert d30[("3d", "6h")]["long_burn"] == pytest.approx(1000 / 1040)
    assert d30[("3d", "6h")]["firing"] is False and d28[("3d", "6h")]["firing"] is True
    assert d28[("3d", "6h")]["factor"] == pytest.approx(0.9333333333333333)


def test_slo_status_combines_report_and_alerts(tmp_path):
    db = wb.connect(":memory:")
    _stream(db, 864, 100, "b < 12 and i < 2")
    df, firing = slo.slo_status(db, config=_slo_toml(tmp_path), at=AT)
    assert firing is True
    avail = df.filter(pl.col("sli") == "availability").row(0, named=True)
    # 30-day window: 24 errors in 86400 calls
    assert avail["n"] == 86400 and avail["sli_value"] == pytest.approx(1 - 24 / 86400)
    assert (avail["severity"], avail["alerts"], avail["burn_1h"]) == ("page", "page 1h/5m", pytest.approx(20.0))
    assert avail["firing_since"] == AT - dt.timedelta(minutes=15)
    lat = df.filter(pl.col("sli") == "latency").row(0, named=True)
    assert lat["firing"] is False and lat["severity"] is None and lat["sli_value"] == 1.0


def test_an_slo_whose_error_budget_is_spent_fires_without_a_burn_rate_alert(tmp_path, capsys):
    """An outage ten days ago spent the 30-day availability budget 18 times over (met false, budget left -1718%),
    and no call has failed since: no burn-rate window (3 days at most) sees it, so slo_status read firing false and
    `workbench slo` exited 0 for the rest of the window. A missed SLO is a breach: a ticket, exit 1."""
    path = tmp_path / "wb.duckdb"
    db = wb.connect(path)
    # 1,000 calls 10 days before AT, the first 200 failed; 100 ok calls in the last 100 minutes
    db.duckdb.executemany(
        "insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, 'chat', ?, 100)",
        [(f"old{i}", AT - dt.timedelta(days=10, minutes=i), "error" if i < 200 else "ok") for i in range(1000)]
        + [(f"new{i}", AT - dt.timedelta(minutes=i), "ok") for i in range(100)])
    cfg = _slo_toml(tmp_path, availability=0.99)
    df, firing = slo.slo_status(db, config=cfg, at=AT)
    db.close()
    avail = df.filter(pl.col("sli") == "availability").row(0, named=True)
    # 900 good of 1,100: 0.81818; budget .01, consumed (200 / 1100) / .01 = 18.1818, left -17.1818
    assert avail["sli_value"] == pytest.approx(900 / 1100) and avail["met"] is False
    assert avail["budget_remaining"] == pytest.approx(1 - 200 / 1100 / 0.01)
    assert avail["burn_1h"] == 0.0  # no burn-rate alert: the last 3 days are all ok
    assert (avail["firing"], avail["severity"], avail["alerts"], avail["firing_since"]) == (
        True, "ticket", "budget spent 30d", None)
    lat = df.filter(pl.col("sli") == "latency").row(0, named=True)
    assert (lat["met"], lat["firing"], lat["severity"], lat["alerts"]) == (True, False, None, None)
    assert firing is True
    assert main(["slo", "--db", str(path), "--config", str(cfg), "--at", AT.isoformat()]) == 1
    assert "budget spent 30d" in capsys.readouterr().out


def test_row_order_does_not_change_the_slo_status(tmp_path):
    p = _slo_toml(tmp_path, availability=0.99)
    db1, db2 = wb.connect(":memory:"), wb.connect(":memory:")
    _stream(db1, 300, 20, "(b * 7 + i) % 13 = 0")
    _stream(db2, 300, 20, "(b * 7 + i) % 13 = 0")
    db2.duckdb.execute("create table _x as select * from calls order by random()")
    db2.duckdb.execute("delete from calls")
    db2.duckdb.execute("insert into calls select * from _x order by random()")
    a, b = slo.slo_status(db1, config=p, at=AT), slo.slo_status(db2, config=p, at=AT)
    assert a[0].equals(b[0]) and a[1] == b[1]


def test_cli_slo_exit_codes(tmp_path, capsys):
    cfg = _slo_toml(tmp_path)
    bad, good = tmp_path / "bad.duckdb", tmp_path / "good.duckdb"
    for path, rule in ((bad, "b < 12 and i < 2"), (good, "false")):
        db = wb.connect(path)
        _stream(db, 864, 10, rule)
        db.close()
    at = ["--at", AT.isoformat()]
    assert main(["slo", "--db", str(bad), "--config", str(cfg), *at]) == 1
    assert "page 1h/5m" in capsys.readouterr().out
    assert main(["slo", "--db", str(good), "--config", str(cfg), "--format", "json", *at]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["sli"], r["firing"]) for r in rows] == [("latency", False), ("availability", False)]
    broken = _toml(tmp_path, "[slo.chat]\nlatency_ms = 2000\nlatency_target = 0.95\navailability_target = 0.9\n"
                             "window_days = 29\n", "broken.toml")
    assert main(["slo", "--db", str(good), "--config", str(broken)]) == 2
    assert "broken.toml [slo.chat]: window_days" in capsys.readouterr().err


def test_an_slo_with_no_call_in_its_window_exits_3_never_0(tmp_path, capsys):
    """An SLO with no call in its window (calls that stopped, a renamed feature) is not measured: it warned and exited
    0, as a healthy SLO does, so a cron job read "no data" as "ok". It exits 3 (no data), distinct from 0 (measured,
    nothing fires) and from 1 (an alert fires), which wins when both happen."""
    cfg = _toml(tmp_path, "[slo.chat]\navailability_target = 0.9\n[slo.search]\navailability_target = 0.9\n")
    path = tmp_path / "wb.duckdb"
    db = wb.connect(path)
    # chat: one good call an hour ago; search: its last call 31 days ago, outside the 30-day window
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, ?, ?, ?)",
                          [("a", AT - dt.timedelta(hours=1), "chat", "ok"),
                           ("b", AT - dt.timedelta(days=31), "search", "ok")])
    db.close()
    at = ["--at", AT.isoformat()]
    assert main(["slo", "--db", str(path), "--config", str(cfg), "--format", "csv", *at]) == 3
    out = pl.read_csv(capsys.readouterr().out.encode())
    assert out.select("feature", "n", "met", "firing", "alerts").rows() == [
        ("chat", 1, True, False, None), ("search", 0, None, False, "no data 30d")]
    # a failing chat call: 1 bad of 2 fires, and the alert's exit code wins over search's missing data
    db = wb.connect(path)
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('c', ?, 'chat', 'error')",
                      [AT - dt.timedelta(minutes=1)])
    db.close()
    assert main(["slo", "--db", str(path), "--config", str(cfg), *at]) == 1
    # every SLO measured and none firing: 0
    only_chat = _toml(tmp_path, "[slo.chat]\navailability_target = 0.4\n", "chat.toml")
    assert main(["slo", "--db", str(path), "--config", str(only_chat), *at]) == 0


def test_load_config_object_is_accepted(tmp_path):
    cfg = load_config(_slo_toml(tmp_path))
    assert [s.sli for s in slo.load_slos(cfg)] == ["latency", "availability"]


def test_slis_count_requests_not_the_steps_inside_them(tmp_path):
    db = wb.connect(":memory:")
    rows = [
        # an agent task: the root took 40 s and failed; its steps were fast and mostly fine
        ("r1", "t1", None, "invoke_agent", "error", 40_000.0),
        ("s1", "t1", "r1", "chat", "ok", 500.0),
        ("s2", "t1", "r1", "execute_tool", "error", 100.0),
        # a task whose parent span (an HTTP server span) was not loaded still counts as a request
        ("r2", "t2", "http-1", "invoke_agent", "ok", 1_000.0),
        ("s3", "t2", "r2", "chat", "ok", 700.0),
    ]
    db.duckdb.executemany("insert into calls (call_id, trace_id, parent_id, operation, status, latency_ms, ts, feature) "
                          "values (?, ?, ?, ?, ?, ?, ?, 'agent')", [(*r, AT) for r in rows])
    p = _toml(tmp_path, "[slo.agent]\nlatency_ms = 30000\nlatency_target = 0.9\navailability_target = 0.9\n")
    lat, avail = slo.slo_report(db, config=p, at=AT).rows(named=True)
    assert (lat["n"], lat["good"]) == (2, 1) and (avail["n"], avail["good"]) == (2, 1)


def test_spans_of_no_genai_convention_are_never_requests_and_hide_no_call(tmp_path):
    """The usual OpenTelemetry trace: the web framework's POST /chat span around the model call, and the probes'
    GET /healthz spans in the same export, both loaded as operation 'other'. The SLO counted the HTTP span (naming
    the service, not the feature) instead of the failing call under it, n = 0; with the feature from service.name,
    2,880 health checks diluted 60 failed calls to 98% available, no alert."""
    db = wb.connect(":memory:")
    rows = []
    for i in range(60):  # every model call fails, each under its HTTP request span
        rows.append((f"http{i}", f"t{i}", None, "other", "ok", 900.0, "chat"))
        rows.append((f"llm{i}", f"t{i}", f"http{i}", "chat", "error", 800.0, "chat"))
    rows += [(f"hz{i}", f"h{i}", None, "other", "ok", 2.0, "chat") for i in range(2880)]
    db.duckdb.executemany("insert into calls (call_id, trace_id, parent_id, operation, status, latency_ms, ts, feature) "
                          "values (?, ?, ?, ?, ?, ?, ?, ?)", [(*r[:6], AT, r[6]) for r in rows])
    p = _toml(tmp_path, "[slo.chat]\nlatency_ms = 1000\nlatency_target = 0.9\navailability_target = 0.975\n")
    lat, avail = slo.slo_report(db, config=p, at=AT).rows(named=True)
    assert (avail["n"], avail["good"], avail["met"]) == (60, 0, False)
    assert (lat["n"], lat["good"]) == (60, 60)
    alerts = slo.burn_rate_alerts(db, config=p, at=AT + dt.timedelta(minutes=1))
    assert alerts.filter(alerts["sli"] == "availability")["firing"].any()


def test_a_span_that_names_itself_as_its_parent_is_a_request(tmp_path):
    # a broken tracer's spans were dropped as steps of themselves: an outage of them fired no alert
    db = wb.connect(":memory:")
    db.duckdb.executemany("insert into calls (call_id, parent_id, status, latency_ms, ts, feature) values "
                          "(?, ?, 'error', 100, ?, 'chat')", [(f"s{i}", f"s{i}", AT) for i in range(30)])
    p = _slo_toml(tmp_path)
    lat, avail = slo.slo_report(db, config=p, at=AT).rows(named=True)
    assert (avail["n"], avail["good"]) == (30, 0)


@pytest.mark.parametrize("body, message", [
    ('[slo."agent\\u0000"]\nlatency_ms = 2000\nlatency_target = 0.95\n', r"\[slo.'agent\\x00'\]: a name holds a NUL"),
    ("[slo.agent]\nlatency_ms = 1" + "0" * 400 + "\nlatency_target = 0.95\n",
     r"\[slo.agent\]: latency_ms must be a finite number"),
])
def test_a_setting_no_float_or_name_can_hold_is_a_config_error_not_an_alert(tmp_path, body, message, capsys):
    # a NUL ended the feature's quoted name in SQL (ParserException), a 400-digit integer overflowed a float: both
    # tracebacks with exit 1, the code of a firing alert
    p = _toml(tmp_path, body)
    db = tmp_path / "w.duckdb"
    wb.connect(str(db)).close()
    rc = main(["slo", "--db", str(db), "--config", str(p)])
    assert rc == 2 and re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("days", [float("inf"), float("nan"), 1e309, 1e12, -1, 0])
def test_a_lookback_that_is_no_finite_positive_number_of_days_is_an_error_naming_it(days):
    with pytest.raises(ValueError, match="burn_rate_alerts: lookback_days must be a positive number"):
        slo.burn_rate_alerts(None, lookback_days=days)


def test_requests_and_agent_tasks_find_the_outermost_spans_by_a_hash_join():
    """The outermost spans were an anti-join on parent_id = span id AND parent_id <> call_id. With the second test
    in the join condition DuckDB ran a nested-loop join: 5.6 s for the 112,320 calls of the burn-rate tests (30 s per
    burn_rate_alerts), growing with the square of the calls (hours at 10M). The self-parent test now comes first, as a
    column, and the anti-join is on the equality alone."""
    import ibis

    from workbench.metrics.core import agent_tasks

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, parent_id, ts, status, operation) values "
                      "('root', null, '2026-01-01', 'ok', 'invoke_agent'), ('self', 'self', '2026-01-01', 'ok', 'chat'), "
                      "('kid', 'root', '2026-01-01', 'ok', 'invoke_agent'), ('orphan', 'gone', '2026-01-01', 'ok', 'chat')")
    for rel in (slo._requests(db), agent_tasks(db)):
        plan = "".join(r[1] for r in db.duckdb.execute("EXPLAIN " + str(ibis.to_sql(rel))).fetchall())
        assert "NL_JOIN" not in plan and "HASH_JOIN" in plan, plan
    assert sorted(slo._requests(db).call_id.to_pyarrow().to_pylist()) == ["orphan", "root", "self"]
    assert agent_tasks(db).call_id.to_pyarrow().to_pylist() == ["root"]
