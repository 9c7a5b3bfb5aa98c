"""workbench.metrics.reliability: incidents, guardrails and agent spans, by hand; invariants over the module's suite."""

from __future__ import annotations

import datetime as dt
import random
import warnings

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import workbench as wb
from workbench.metrics import reliability as rel
from workbench.metrics import UndefinedMetricWarning

T0 = dt.datetime(2026, 2, 2, 9)


def _insert(db, table, cols, rows):
    """Insert rows through one Arrow scan (DuckDB's executemany goes row by row: seconds for a few hundred rows)."""
    frame = pl.DataFrame(list(rows), schema=cols, orient="row", infer_schema_length=None).to_arrow()
    db.duckdb.register("_rows", frame)
    db.duckdb.execute(f"insert into {table} ({', '.join(cols)}) select {', '.join(cols)} from _rows")
    db.duckdb.unregister("_rows")


def _m(minutes):
    return None if minutes is None else T0 + dt.timedelta(minutes=minutes)


def _incidents(db, rows):
    """rows: (id, feature, severity, start offset min, detect min after start, mitigate min, resolve min)."""
    _insert(
        db, "incidents", ["incident_id", "feature", "severity", "started_at", "detected_at", "mitigated_at", "resolved_at"],
        [(i, f, s, _m(st), _m(None if d is None else st + d), _m(None if m is None else st + m),
          _m(None if r is None else st + r)) for i, f, s, st, d, m, r in rows])


INCIDENTS = [
    # id, feature, severity, start, +detect, +mitigate, +resolve (minutes)
    ("i1", "chat", "sev1", 0, 5, 20, 60),
    ("i2", "chat", "sev2", 60, 15, 30, 240),
    ("i3", "chat", "sev2", 120, 40, 45, 90),
    ("i4", "chat", "sev3", 180, 60, 90, None),   # not yet resolved
    ("i5", "chat", "sev2", 240, 240, 250, 300),
    ("i6", "search", "sev1", 30, 2, 3, 4),
]


def test_incident_durations_median_and_mean_by_hand():
    db = wb.connect(":memory:")
    _incidents(db, INCIDENTS)
    # chat detection: 5, 15, 40, 60, 240 -> median 40, mean 360 / 5 = 72
    d = rel.mttd_minutes(db).filter(pl.col("feature") == "chat").row(0, named=True)
    assert (d["value"], d["n"], d["mean"]) == (40.0, 5, 72.0)
    # n = 5 is too few for a 95% distribution-free interval of the median: F(0) = 1/32 = .031 >= .025 -> l = 0
    assert d["lo"] is None and d["hi"] is None
    # chat mitigation: 20, 30, 45, 90, 250 -> median 45, mean 87
    m = rel.mttm_minutes(db).filter(pl.col("feature") == "chat").row(0, named=True)
    assert (m["value"], m["n"], m["mean"]) == (45.0, 5, 87.0)
    # chat resolution: 60, 240, 90, 300 (i4 open, left out) -> sorted 60 90 240 300, median (90 + 240) / 2 = 165
    r = rel.mttr_minutes(db).filter(pl.col("feature") == "chat").row(0, named=True)
    assert (r["value"], r["n"], r["mean"]) == (165.0, 4, 172.5)
    s = rel.mttr_minutes(db, by=("severity",)).filter(pl.col("severity") == "sev2").row(0, named=True)
    assert (s["value"], s["n"]) == (240.0, 3)  # 240, 90, 300


def test_incident_median_interval_with_nine_incidents():
    db = wb.connect(":memory:")
    detect = [3, 9, 1, 7, 5, 2, 8, 4, 6]  # sorted 1..9
    _incidents(db, [(f"i{k}", "chat", "sev2", 10 * k, d, None, None) for k, d in enumerate(detect)])
    # Binomial(9, .5): F(1) = 10/512 = .0195 < .025 <= F(2) = 46/512 -> l = 2;
    # F(6) = 466/512 = .910 < .975 <= F(7) = 502/512 -> u = 8: [X(2), X(8)] = [2, 8] around the median 5
    r = rel.mttd_minutes(db, period="all").row(0, named=True)
    assert (r["value"], r["lo"], r["hi"], r["n"], r["mean"]) == (5.0, 2.0, 8.0, 9, 5.0)


def test_incident_count_with_exact_poisson_interval():
    db = wb.connect(":memory:")
    _incidents(db, INCIDENTS)
    df = rel.incident_count(db, by=("feature", "severity"), period="all")
    assert [(r["feature"], r["severity"], r["value"], r["n"]) for r in df.iter_rows(named=True)] == [
        ("chat", "sev1", 1.0, 1), ("chat", "sev2", 3.0, 3), ("chat", "sev3", 1.0, 1), ("search", "sev1", 1.0, 1)]
    # Garwood interval for k = 3: chi2(.025, 6) / 2 = 0.6187, chi2(.975, 8) / 2 = 8.7673 (standard tables)
    r = df.filter(pl.col("severity") == "sev2").row(0, named=True)
    assert (round(r["lo"], 4), round(r["hi"], 4)) == (0.6187, 8.7673)
    by_hour = rel.incident_count(db, by=(), period="hour")
    assert by_hour["n"].to_list() == [2, 1, 1, 1, 1]  # 9:00 (i1, i6), 10:00, 11:00, 12:00, 13:00


def test_incident_count_of_a_period_without_incidents_is_zero_not_undefined():
    # Before, a day of the window without incidents had a null count (n = 0, a warning), where dau_count of a day
    # nobody was active says 0: no incident is a count of 0, with the Garwood interval of 0, [0, chi2(.975, 2) / 2].
    db = wb.connect(":memory:")
    _insert(db, "incidents", ["incident_id", "feature", "started_at"],
            [("i1", "chat", dt.datetime(2026, 1, 1, 10)), ("i2", "chat", dt.datetime(2026, 1, 3, 10)),
             ("i3", "search", dt.datetime(2026, 1, 3, 11))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a count of nothing is defined: no UndefinedMetricWarning
        df = rel.incident_count(db, start="2026-01-01", end="2026-01-04")
    got = [(r["feature"], r["period_start"].day, r["value"], r["n"], r["lo"]) for r in df.iter_rows(named=True)]
    assert got == [("chat", 1, 1.0, 1, pytest.approx(0.0253, abs=1e-4)), ("chat", 2, 0.0, 0, 0.0),
                   ("chat", 3, 1.0, 1, pytest.approx(0.0253, abs=1e-4)), ("search", 1, 0.0, 0, 0.0),
                   ("search", 2, 0.0, 0, 0.0), ("search", 3, 1.0, 1, pytest.approx(0.0253, abs=1e-4))]
    assert df.filter(pl.col("n") == 0)["hi"].round(4).unique().to_list() == [3.6889]  # -ln(0.025), Garwood k = 0
    # the sum over the days is the count of the window
    assert df.group_by("feature").agg(pl.col("value").sum()).sort("feature").rows() == [("chat", 2.0), ("search", 1.0)]
    # no incident at all in the selection: nothing says they were recorded, null with n = 0 (as every metric)
    with pytest.warns(UndefinedMetricWarning):
        empty = rel.incident_count(db, by=(), start="2030-01-01", end="2030-01-03")
    assert empty.select("value", "n").rows() == [(None, 0), (None, 0)]


def test_incident_count_and_durations_read_the_incidents_once_and_keep_every_group_and_hour(queries):
    db = wb.connect(":memory:")
    _incidents(db, INCIDENTS)
    counts = rel.incident_count(db, by=("feature",), period="hour")
    # chat at 9:00 (i1), 10:00, 11:00, 12:00, 13:00; search at 9:00 (i6): search's four empty hours are kept, n = 0
    assert counts.filter(pl.col("feature") == "search")["n"].to_list() == [1, 0, 0, 0, 0]
    assert len(queries) == 1  # no second scan of the incidents for their groups
    queries.clear()
    with pytest.warns(UndefinedMetricWarning, match="group-period"):
        resolve = rel.mttr_minutes(db, by=("feature",), period="hour")
    assert resolve.filter(pl.col("feature") == "chat")["n"].to_list() == [1, 1, 1, 0, 1]  # i4 is not resolved
    # the incidents that ended before they started (none here), the sizes with the groups, the order statistics
    assert len(queries) == 3


def _guard(db, events):
    _insert(db, "calls", ["call_id", "ts", "feature", "model", "status"],
            [("c1", T0, "chat", "m1", "ok"), ("c2", T0, "search", "m2", "ok")])
    _insert(
        db, "guardrail_events", ["guard_event_id", "call_id", "ts", "guard", "action", "verdict"],
        [(f"g{i}", c, T0 + dt.timedelta(minutes=i), g, a, v) for i, (c, g, a, v) in enumerate(events)])


GUARD = [
    ("c1", "pii", "block", "bad"), ("c1", "pii", "block", "bad"), ("c1", "pii", "pass", "bad"),
    ("c1", "pii", "redact", "bad"), ("c1", "pii", "block", "good"), ("c1", "pii", "pass", "good"),
    ("c1", "pii", "pass", "good"), ("c1", "pii", "pass", "good"), ("c1", "jailbreak", "block", None),
    ("c1", "jailbreak", "flag", None), ("c2", "pii", "pass", None), ("c9", "pii", "block", "bad"),  # c9: no call
]


def test_guardrail_rates_by_hand():
    db = wb.connect(":memory:")
    _guard(db, GUARD)
    block = rel.guardrail_block_rate(db, period="all")
    # chat: blocks g0 g1 g4 g8 of 10 events; search: 0 of 1; c9 has no call -> feature null: 1 of 1
    assert [(r["feature"], r["value"], r["n"]) for r in block.iter_rows(named=True)] == [
        ("chat", 0.4, 10), ("search", 0.0, 1), (None, 1.0, 1)]
    assert rel.guardrail_redact_rate(db, by=("guard",), period="all").filter(
        pl.col("guard") == "pii")["value"][0] == pytest.approx(1 / 10)
    # reviewed bad (chat): g0 block, g1 block, g2 pass, g3 redact -> caught 2 / 4; with redact counted 3 / 4
    catch = rel.guardrail_catch_rate(db, period="all").filter(pl.col("feature") == "chat").row(0, named=True)
    assert (catch["value"], catch["n"]) == (0.5, 4)
    assert rel.guardrail_catch_rate(db, actions=("block", "redact"), period="all").filter(
        pl.col("feature") == "chat")["value"][0] == 0.75
    # reviewed good (chat): g4 block, g5 g6 g7 pass -> 1 / 4 false blocks
    with pytest.warns(UndefinedMetricWarning):  # guards with no reviewed-good event stay visible: n = 0, null value
        fbs = rel.guardrail_false_block_rate(db, by=("guard", "model"), period="all")
    fb = fbs.filter(pl.col("guard") == "pii").row(0, named=True)
    assert (fb["guard"], fb["model"], fb["value"], fb["n"]) == ("pii", "m1", 0.25, 4)
    assert fbs.filter(pl.col("n") == 0)["value"].is_null().all() and fbs.filter(pl.col("n") == 0).height >= 1
    with pytest.raises(ValueError, match="guardrail_catch_rate: actions must be among"):
        rel.guardrail_catch_rate(db, actions="blocked")


def _spans(db, rows):
    _insert(
        db, "calls", ["call_id", "trace_id", "parent_id", "ts", "operation", "name", "feature", "model", "status"],
        [(c, t, p, T0 + dt.timedelta(seconds=k), op, n, f, m, s) for k, (c, t, p, op, n, f, m, s) in enumerate(rows)])


SPANS = [
    # trace t1: agent on m1 with a chat, two searches (one failing) and an escalation
    ("r1", "t1", None, "invoke_agent", "support_agent", "support", "m1", "ok"),
    ("a1", "t1", "r1", "chat", "chat m1", "support", "m1", "ok"),
    ("a2", "t1", "a1", "execute_tool", "search", None, None, "ok"),
    ("a3", "t1", "a1", "execute_tool", "search", None, None, "error"),
    ("a4", "t1", "r1", "execute_tool", "escalate_to_human", None, None, "ok"),
    # trace t2: agent on m2, a chat, a lookup, and a sub-agent with its own chat (one task, not two)
    ("r2", "t2", "http-span-not-in-calls", "invoke_agent", "support_agent", "support", "m2", "ok"),
    ("b1", "t2", "r2", "chat", "chat m2", "support", "m2", "ok"),
    ("b2", "t2", "r2", "execute_tool", "lookup", None, None, "ok"),
    ("b3", "t2", "r2", "invoke_agent", "sub_agent", "support", "m2", "ok"),
    ("b4", "t2", "b3", "chat", "chat m2", "support", "m2", "ok"),
    # trace t3: agent that answered with no step; trace t9: a tool outside any agent
    ("r3", "t3", None, "invoke_agent", "support_agent", "support", "m1", "ok"),
    ("z1", "t9", None, "execute_tool", "search", "batch", None, "timeout"),
]


def test_agent_metrics_by_hand():
    db = wb.connect(":memory:")
    _spans(db, SPANS)
    # steps: t1 = a1 a2 a3 a4 = 4; t2 = b1 b2 b4 = 3 (b3 is an agent, not a step); t3 = 0 -> mean 7 / 3
    steps = rel.agent_steps_per_task(db).row(0, named=True)
    assert (steps["feature"], steps["n"]) == ("support", 3) and steps["value"] == pytest.approx(7 / 3)
    by_model = rel.agent_steps_per_task(db, by=("model",))
    assert [(r["model"], r["value"], r["n"]) for r in by_model.iter_rows(named=True)] == [("m1", 2.0, 2), ("m2", 3.0, 1)]
    # escalation: t1 only -> 1 / 3
    esc = rel.escalation_rate(db).row(0, named=True)
    assert (esc["value"], esc["n"]) == (pytest.approx(1 / 3), 3)
    assert rel.escalation_rate(db, tool="lookup")["value"][0] == pytest.approx(1 / 3)
    # tools: support (from the roots) a2 ok, a3 error, a4 ok, b2 ok -> 3 / 4; batch (no root): z1 timeout -> 0 / 1
    tools = rel.tool_call_success_rate(db)
    assert [(r["feature"], r["value"], r["n"]) for r in tools.iter_rows(named=True)] == [("batch", 0.0, 1), ("support", 0.75, 4)]
    by_tool = rel.tool_call_success_rate(db, by=("model", "tool"), where={"feature": "support"})
    assert [(r["model"], r["tool"], r["value"], r["n"]) for r in by_tool.iter_rows(named=True)] == [
        ("m1", "escalate_to_human", 1.0, 1), ("m1", "search", 0.5, 2), ("m2", "lookup", 1.0, 1)]


def _mixed(db, seed=2):
    rnd = random.Random(seed)
    _incidents(db, [(f"i{k}", rnd.choice(["chat", "search"]), rnd.choice(["sev1", "sev2"]), rnd.randint(0, 4000),
                     rnd.randint(1, 90), rnd.choice([None, rnd.randint(90, 200)]), rnd.choice([None, rnd.randint(200, 900)]))
                    for k in range(60)])
    calls = [(f"c{k}", T0 + dt.timedelta(minutes=k * 37), rnd.choice(["chat", "search"]), rnd.choice(["m1", "m2"]))
             for k in range(40)]
    _insert(db, "calls", ["call_id", "ts", "feature", "model", "status"], [(*c, "ok") for c in calls])
    _insert(
        db, "guardrail_events", ["guard_event_id", "call_id", "ts", "guard", "action", "verdict"],
        [(f"g{k}", rnd.choice(calls)[0], T0 + dt.timedelta(minutes=rnd.randint(0, 3000)), rnd.choice(["pii", "jb"]),
          rnd.choice(["pass", "pass", "block", "redact", "flag"]), rnd.choice(["bad", "good", None])) for k in range(300)])
    spans = []
    for k in range(40):
        f, m = rnd.choice(["chat", "search"]), rnd.choice(["m1", "m2"])
        spans.append((f"r{k}", f"t{k}", None, "invoke_agent", "agent", f, m, "ok"))
        for j in range(rnd.randint(0, 5)):
            tool = rnd.choice(["search", "lookup", "escalate_to_human"])
            spans.append((f"s{k}_{j}", f"t{k}", f"r{k}", rnd.choice(["chat", "execute_tool"]), tool, None, None,
                          rnd.choice(["ok", "ok", "error"])))
    _insert(
        db, "calls", ["call_id", "trace_id", "parent_id", "ts", "operation", "name", "feature", "model", "status"],
        [(c, t, p, T0 + dt.timedelta(minutes=7 * i), op, n, f, m, s) for i, (c, t, p, op, n, f, m, s) in enumerate(spans)])


def _by(name):
    return ("feature", "severity") if name in ("incident_count", "mttd_minutes", "mttm_minutes", "mttr_minutes") else ("feature",)


@pytest.mark.parametrize("name", sorted(rel.SUITE))
def test_row_order_does_not_change_the_result(name):
    db1, db2 = wb.connect(":memory:"), wb.connect(":memory:")
    _mixed(db1)
    _mixed(db2)
    # the same rows in another physical order
    for table in ("incidents", "calls", "guardrail_events"):
        db2.duckdb.execute(f"create table _x as select * from {table} order by random()")
        db2.duckdb.execute(f"delete from {table}")
        db2.duckdb.execute(f"insert into {table} select * from _x order by random()")
        db2.duckdb.execute("drop table _x")
    a, b = rel.SUITE[name](db1, by=_by(name)), rel.SUITE[name](db2, by=_by(name))
    assert a.height > 1
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("name", sorted(rel.SUITE))
def test_empty_selection_gives_one_null_row_and_a_warning(name):
    db = wb.connect(":memory:")
    _mixed(db)
    with pytest.warns(UndefinedMetricWarning):
        df = rel.SUITE[name](db, where={"feature": "nope"})
    assert df.height == 1 and df["n"][0] == 0 and df["value"][0] is None and df["metric"][0] == name


@pytest.mark.parametrize("name", sorted(rel.SUITE))
def test_counts_recombine_over_groups(name):
    db = wb.connect(":memory:")
    _mixed(db)
    fn = rel.SUITE[name]
    with warnings.catch_warnings():
        # a group without rows on a day is now in the result with n = 0 (and a warning): it adds 0
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        parts = fn(db, by=_by(name), period="day")
        whole = fn(db, by=(), period="all")
    assert parts["n"].sum() == whole["n"][0] > 0


def test_unknown_group_column_names_the_metric():
    db = wb.connect(":memory:")
    with pytest.raises(KeyError, match="mttr_minutes: cannot group by \\['guard'\\]"):
        rel.mttr_minutes(db, by=("guard",))
    with pytest.raises(KeyError, match="escalation_rate: cannot group by \\['tool'\\]"):
        rel.escalation_rate(db, by=("tool",))


def test_agent_roots_without_a_trace_id_are_tasks_each():
    # parentless invoke_agent spans with no trace id (request logs) were one window partition: 3 tasks counted as 1
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, trace_id, parent_id, ts, operation, name, feature, status) values "
                      "('r1', null, null, '2026-01-01 10:00', 'invoke_agent', 'agent', 'support', 'ok'),"
                      "('r2', null, null, '2026-01-01 11:00', 'invoke_agent', 'agent', 'support', 'ok'),"
                      "('r3', null, null, '2026-01-01 12:00', 'invoke_agent', 'agent', 'support', 'ok'),"
                      "('r4', 't1', null, '2026-01-01 12:00', 'invoke_agent', 'agent', 'support', 'ok'),"
                      "('r5', 't1', null, '2026-01-01 12:30', 'invoke_agent', 'agent', 'support', 'ok')")
    from workbench.metrics.reliability import agent_steps_per_task, escalation_rate

    # r1, r2, r3 each a task; r4 and r5 share a trace: its earliest, r4, is the task
    assert agent_steps_per_task(db, period="all")["n"].to_list() == [4]
    assert escalation_rate(db, period="all")["n"].to_list() == [4]


def test_a_task_is_the_outermost_agent_span_whatever_wraps_it():
    """Ten 10 s tasks of three 200 ms sub-agents each: the sub-agents counted as tasks (n 40, task p50 200 ms); an
    agent under the web server's POST /ask span (operation 'other') was no task at all (steps and escalation n 0)."""
    import workbench as wb

    db = wb.connect(":memory:")
    rows = []
    for t in range(10):
        rows.append((f"r{t}", f"t{t}", None, "invoke_agent", "planner", "ok", 10_000.0))
        for s in range(3):
            rows.append((f"s{t}_{s}", f"t{t}", f"r{t}", "invoke_agent", "sub_agent", "ok", 200.0))
            rows.append((f"c{t}_{s}", f"t{t}", f"s{t}_{s}", "chat", "chat", "ok", 150.0))
    # one task under an HTTP request span: its chat step and its escalation belong to it
    rows += [("http", "w", None, "other", "POST /ask", "ok", 5_000.0),
             ("agent", "w", "http", "invoke_agent", "support", "error", 4_900.0),
             ("chat", "w", "agent", "chat", "chat", "ok", 800.0),
             ("esc", "w", "agent", "execute_tool", "escalate_to_human", "ok", 50.0)]
    db.duckdb.executemany("insert into calls (call_id, trace_id, parent_id, operation, name, status, latency_ms, ts, "
                          "feature) values (?, ?, ?, ?, ?, ?, ?, '2026-01-01 10:00', 'support')", rows)
    p95 = wb.task_latency_p95_ms(db, period="all").row(0, named=True)
    assert (p95["n"], p95["value"]) == (11, 10_000.0)
    assert wb.latency_p50_ms(db, period="all", operation="task")["value"][0] == 10_000.0
    steps = wb.agent_steps_per_task(db, period="all").row(0, named=True)
    # 10 tasks of 3 chat steps each, one task of a chat and a tool step: (30 + 2) / 11
    assert steps["n"] == 11 and steps["value"] == pytest.approx(32 / 11)
    assert wb.escalation_rate(db, period="all").select("value", "n").row(0) == (pytest.approx(1 / 11), 11)
    assert wb.error_rate(db, period="all", operation="task").select("value", "n").row(0) == (pytest.approx(1 / 11), 11)


def test_incident_durations_are_exact_to_the_microsecond():
    """10:00:00.0005 to 10:00:01.0004 is 0.9999 s: it read 1,000 ms (DuckDB counts millisecond boundaries), and
    Spark 999 ms; 23:59:59.999999 to 00:30:00 read 1,800,001 ms for 1,800,000.001."""
    import workbench as wb

    db = wb.connect(":memory:")
    db.duckdb.executemany(
        "insert into incidents (incident_id, feature, severity, started_at, detected_at) values (?, ?, 'sev2', ?, ?)",
        [("i1", "search", dt.datetime(2026, 1, 3, 10, 0, 0, 500), dt.datetime(2026, 1, 3, 10, 0, 1, 400)),
         ("i2", "chat", dt.datetime(2026, 1, 3, 23, 59, 59, 999999), dt.datetime(2026, 1, 4, 0, 30))])
    got = dict(wb.mttd_minutes(db, period="all").select("feature", "value").rows())
    assert got["search"] == pytest.approx(0.9999 / 60, rel=1e-12)
    assert got["chat"] == pytest.approx(1_800_000.001 / 60_000, rel=1e-12)


def test_tool_calls_take_every_key_from_their_task_s_root_when_the_trace_has_one():
    """The root has no environment, its tool calls say 'staging': they were filed under 'staging' (the root's null
    taken column by column), a group the task is not in for agent_steps_per_task."""
    import workbench as wb

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into calls (call_id, trace_id, parent_id, ts, operation, name, feature, environment, "
                      "status) values ('r1', 't1', null, '2026-01-01 10:00', 'invoke_agent', 'agent', 'support', null, 'ok'),"
                      "('a', 't1', 'r1', '2026-01-01 10:00', 'execute_tool', 'search', 'support', 'staging', 'ok'),"
                      "('b', 't1', 'r1', '2026-01-01 10:00', 'execute_tool', 'search', 'support', 'staging', 'error'),"
                      "('x', 't9', null, '2026-01-01 10:00', 'execute_tool', 'search', 'solo', 'prod', 'ok')")
    by = ("environment",)
    assert wb.agent_steps_per_task(db, by=by, period="all").select("environment", "n").rows() == [(None, 1)]
    got = wb.tool_call_success_rate(db, by=by, period="all").select("environment", "value", "n").sort("environment")
    assert got.rows() == [(None, 0.5, 2), ("prod", 1.0, 1)]  # a tool call of no agent keeps its own keys


def test_incident_ended_before_it_started_is_left_out_with_a_warning_naming_it():
    """A row inserted by hand with detected_at / resolved_at before started_at (ingest quarantines such rows) gave
    negative minutes that entered the median and the mean: -25 for i3 made chat's MTTD mean (5 + 15 - 25) / 3."""
    from workbench.metrics import ExcludedRowWarning

    db = wb.connect(":memory:")
    _incidents(db, [("i1", "chat", "sev1", 0, 5, None, 60), ("i2", "chat", "sev2", 60, 15, None, 30),
                    ("i3", "chat", "sev2", 120, -25, None, -5), ("i4", "search", "sev2", 0, -1, None, None)])
    with pytest.warns(ExcludedRowWarning) as seen:
        d = rel.mttd_minutes(db, period="all")
    # chat: 5 and 15 (i3 left out) -> median 10, mean 10; search: its only incident left out -> n = 0, null
    assert d.select("feature", "value", "n", "mean").rows() == [("chat", 10.0, 2, 10.0), ("search", None, 0, None)]
    msgs = [str(w.message) for w in seen if w.category is ExcludedRowWarning]
    assert msgs == ["mttd_minutes: 2 incidents with detected_at before started_at are left out (i3, i4)"]
    with pytest.warns(ExcludedRowWarning, match=r"^mttr_minutes: 1 incident with resolved_at before started_at "
                                                r"is left out \(i3\)$"):
        r = rel.mttr_minutes(db, period="all")
    assert r.filter(pl.col("feature") == "chat").select("value", "n").row(0) == (45.0, 2)  # 60 and 30
    # the window and where select the rows checked: i3 starts at 11:00, after a window that ends at 10:01
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExcludedRowWarning)
        rel.mttr_minutes(db, period="all", end=T0 + dt.timedelta(minutes=61), where={"feature": "chat"})


def test_an_open_incident_left_out_of_its_duration_is_named_in_a_warning():
    """An incident still open (no resolved_at) has no time to resolve, and was left out of MTTR without a word: two
    sev1s open for days beside one resolved in 10 minutes read MTTR 10, n 1, and a report's Data notes said nothing.
    It is still left out (its duration is not known yet), and a warning names it, as a report's Data notes then do."""
    from workbench.metrics import ExcludedRowWarning

    db = wb.connect(":memory:")
    _incidents(db, [("i1", "chat", "sev1", 0, 5, 8, 10), ("i2", "chat", "sev1", 60, 5, None, None),
                    ("i3", "chat", "sev1", 120, 5, None, None), ("i4", "chat", "sev2", 180, 5, None, -5)])
    with pytest.warns(ExcludedRowWarning) as seen:
        r = rel.mttr_minutes(db, period="all")
    assert r.select("feature", "value", "n").rows() == [("chat", 10.0, 1)]  # i1 alone
    assert [str(w.message) for w in seen if w.category is ExcludedRowWarning] == [
        "mttr_minutes: 1 incident with resolved_at before started_at is left out (i4)",
        "mttr_minutes: 2 incidents not yet resolved (no resolved_at) are left out (i2, i3)"]
    with pytest.warns(ExcludedRowWarning, match=r"^mttm_minutes: 3 incidents not yet mitigated \(no mitigated_at\) "
                                                r"are left out \(i2, i3, i4\)$"):
        m = rel.mttm_minutes(db, period="all")
    assert m.select("value", "n").row(0) == (8.0, 1)
    with warnings.catch_warnings():  # every incident was detected: nothing to say
        warnings.simplefilter("error", ExcludedRowWarning)
        assert rel.mttd_minutes(db, period="all").select("value", "n").row(0) == (5.0, 4)


def test_guardrail_actions_from_the_command_line_as_a_comma_list(tmp_path, capsys):
    """``--param actions=block,redact``, as ``--where`` and ``steps=`` take a list: it was refused as one action
    named 'block,redact'."""
    import json

    from workbench import cli

    path = tmp_path / "g.duckdb"
    with wb.connect(str(path), create=True) as db:
        _guard(db, GUARD)
    assert cli.main(["metrics", "guardrail_catch_rate", "--db", str(path), "--period", "all", "--format", "json",
                     "--where", "feature=chat", "--param", "actions=block, redact"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # reviewed bad (chat): g0 block, g1 block, g2 pass, g3 redact -> 3 / 4 with redact counted
    assert [(r["feature"], r["value"], r["n"]) for r in rows] == [("chat", 0.75, 4)]
    with wb.connect(str(path)) as db:
        same = rel.guardrail_catch_rate(db, actions=("block", "redact"), period="all", where={"feature": "chat"})
    assert same["value"].to_list() == [0.75]
