"""The demo database: deterministic, complete, and carrying the planted effects that datasets/README.md documents.

The database is built once per session at scale 0.2 (about 14,000 calls); every number below is read back with plain
SQL, so a change to the generator that loses an effect fails here before a report silently stops showing it.
"""

from __future__ import annotations

import importlib.util

import pytest

from workbench import demo
from workbench.errors import ParameterTypeError
from workbench.schema import TABLES

SCALE = 0.2
HAS_INGEST = importlib.util.find_spec("workbench.io.ingest") is not None
# the synthetic calls only (the Azure trace rows of 2023 are in calls too when ingest is available)
SYN = "(select * from calls where ingest_run_id like 'demo-%') calls"
SYNTHETIC = ("calls", "answers", "evals", "feedback", "events", "assignments", "guardrail_events", "incidents")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    path = d / "demo.duckdb"
    counts = demo.build_demo(path, scale=SCALE, seed=7)
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    yield {"path": path, "counts": counts, "dir": d, "con": con}
    con.close()


def q(built, sql, params=None):
    return built["con"].execute(sql, params or []).fetchall()


def one(built, sql, params=None):
    return q(built, sql, params)[0][0]


# --- determinism ----------------------------------------------------------------------------------------------------

def test_same_seed_same_content_other_seed_other_content(built):
    again = built["dir"] / "again.duckdb"
    other = built["dir"] / "other.duckdb"
    demo.build_demo(again, scale=SCALE, seed=7)
    demo.build_demo(other, scale=SCALE, seed=8)
    built["con"].close()
    first = demo.table_checksums(built["path"])
    assert first == demo.table_checksums(again)
    diff = demo.table_checksums(other)
    for table in SYNTHETIC:
        if table != "incidents":  # incidents are fixed facts of the story, not sampled
            assert diff[table] != first[table], table
    import duckdb

    built["con"] = duckdb.connect(str(built["path"]), read_only=True)


def test_rebuild_replaces_the_file(built):
    path = built["dir"] / "rebuilt.duckdb"
    a = demo.build_demo(path, scale=0.05, seed=3)
    b = demo.build_demo(path, scale=0.05, seed=3)
    assert a["calls"] == b["calls"] > 0  # not doubled: the old file was deleted first


def test_scale_is_linear():
    one_x = demo.simulate(1.0, 7)["calls"].height
    two_x = demo.simulate(2.0, 7)["calls"].height
    assert 50_000 <= one_x <= 80_000
    assert 1.85 <= two_x / one_x <= 2.15


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="build_demo: scale"):
        demo.build_demo("unused.duckdb", scale=0)
    with pytest.raises(TypeError, match="build_demo: seed"):
        demo.build_demo("unused.duckdb", seed="7")
    # a path that is no path: a ParameterTypeError naming it, not a TypeError from pathlib
    with pytest.raises(ParameterTypeError, match="build_demo: path must be a str or path"):
        demo.build_demo(5)


@pytest.mark.parametrize("scale", [float("inf"), 1e309, float("nan")])
def test_a_scale_that_is_no_finite_number_is_an_error_naming_it(tmp_path, scale, capsys):
    from workbench import cli

    path = tmp_path / "demo.duckdb"
    with pytest.raises(ValueError, match="build_demo: scale must be a positive number"):
        demo.build_demo(path, scale=scale)
    with pytest.raises(ValueError, match="build_demo: scale must be a positive number"):
        demo.simulate(scale=scale)
    assert cli.main(["demo", "--db", str(path), "--scale", repr(scale), "--no-reports"]) == 2
    assert "scale must be a positive number" in capsys.readouterr().err
    assert not path.exists()


# --- completeness and lineage ---------------------------------------------------------------------------------------

def test_every_synthetic_table_is_filled_with_lineage(built):
    runs = dict(q(built, "select target_table, run_id from ingest_runs where format = 'synthetic'"))
    assert set(runs) == set(SYNTHETIC)
    for table in SYNTHETIC:
        n = one(built, f'select count(*) from "{table}"')
        assert n > 0, table
        assert built["counts"][table] == n
        # every row carries the run that wrote it, and that run counted it
        lineage = q(built, f'select ingest_run_id, count(*) from "{table}" where ingest_run_id is not null '
                           f'and ingest_run_id like \'demo-%\' group by 1')
        assert lineage == [(runs[table], one(built, "select rows_inserted from ingest_runs where run_id = ?",
                                             [runs[table]]))]
    src = one(built, "select any_value(source_path) from ingest_runs where format = 'synthetic'")
    assert src == "synthetic:seed=7,scale=0.2"


def test_required_columns_and_keys(built):
    for table in SYNTHETIC:
        t = TABLES[table]
        for col in t.required:
            assert one(built, f'select count(*) from "{table}" where "{col}" is null') == 0, (table, col)
        key = ", ".join(f'"{c}"' for c in t.key)
        dup = one(built, f'select count(*) from (select {key} from "{table}" group by all having count(*) > 1)')
        assert dup == 0, table


def test_calls_look_like_production(built):
    n = one(built, f"select count(*) from {SYN}")
    assert 10_000 < n < 16_000
    assert q(built, f"select distinct feature from {SYN} where ingest_run_id like 'demo-%' order by 1") == [
        (f,) for f in sorted(demo.FEATURES)]
    lo, hi = q(built, f"select min(ts), max(end_ts) from {SYN}")[0]
    assert lo.isoformat() >= "2026-09-24" and hi.isoformat() < "2026-11-23T00:01"
    assert one(built, f"select count(*) from {SYN} where end_ts < ts or latency_ms <= 0") == 0
    # end_ts = ts + latency (to the millisecond)
    assert one(built, f"select max(abs(epoch_ms(end_ts) - epoch_ms(ts) - latency_ms)) from {SYN}") <= 1
    share = dict(q(built, f"select status, count(*) / sum(count(*)) over () from {SYN} group by 1"))
    assert 0.01 < share["error"] < 0.03 and 0.002 < share["timeout"] < 0.01 and share["blocked"] > 0
    # weekday peaks, night troughs
    day, night = q(built, "select avg(case when hour(ts) between 9 and 16 then 1 else 0 end), "
                          f"avg(case when hour(ts) between 1 and 4 then 1 else 0 end) from {SYN}")[0]
    assert day > 10 * night
    wk = dict(q(built, f"select isodow(ts) >= 6, count(*) from {SYN} group by 1"))
    assert wk[False] / 5 > 2 * wk[True] / 2
    # growth: the last two weeks carry more traffic than the first two
    first, last = q(built, "select count(*) filter (ts < '2026-10-08'), count(*) filter (ts >= '2026-11-09') "
                           f"from {SYN}")[0]
    assert last > 1.3 * first
    # token rules: cached inside input, reasoning inside output; reasoning only on the reasoning model
    assert one(built, f"select count(*) from {SYN} where cache_read_tokens + cache_write_tokens > input_tokens "
                      "or reasoning_tokens > output_tokens") == 0
    assert q(built, f"select distinct model from {SYN} where reasoning_tokens > 0") == [("o4-mini",)]
    assert one(built, f"select count(*) from {SYN} where cache_read_tokens > 0") > 1000
    # streamed chat has a time to first token below its latency
    assert one(built, f"select count(*) from {SYN} where ttft_ms >= latency_ms") == 0
    assert one(built, f"select count(*) from {SYN} where feature = 'support_assistant' and status = 'ok' "
                      "and ttft_ms is null") == 0


def test_models_are_priced_except_the_self_hosted_one():
    from genai_prices import Usage, calc_price

    for model, (provider, _, _) in demo.MODELS.items():
        if model == "acme-llama-ft":
            with pytest.raises(LookupError):
                calc_price(Usage(input_tokens=1000, output_tokens=100), model, provider_id="openai")
            continue
        price = calc_price(Usage(input_tokens=1_000_000, output_tokens=0), model, provider_id=provider)
        assert float(price.total_price) > 0, model


def test_agent_spans_form_trees(built):
    # every parent exists, in the same trace, and is the invoke_agent root
    orphans = one(built, "select count(*) from calls c left join calls p on c.parent_id = p.call_id "
                         "where c.parent_id is not null and (p.call_id is null or p.trace_id <> c.trace_id "
                         "or p.operation <> 'invoke_agent' or p.parent_id is not null)")
    assert orphans == 0
    ops = dict(q(built, "select operation, count(*) from calls where feature = 'agent' group by 1"))
    assert set(ops) == {"invoke_agent", "chat", "execute_tool"}
    # children run inside their root's time span
    outside = one(built, "select count(*) from calls c join calls p on c.parent_id = p.call_id "
                         "where c.ts < p.ts or c.end_ts > p.end_ts + interval 1 millisecond")
    assert outside == 0
    assert one(built, "select count(*) from calls where name = 'escalate_to_human'") > 10
    assert one(built, "select count(*) from calls where operation = 'execute_tool' and status = 'error'") > 10
    # tokens live on the chat spans only
    assert one(built, "select count(*) from calls where operation <> 'chat' and input_tokens is not null") == 0


# --- planted effects ------------------------------------------------------------------------------------------------

def test_latency_regression_day(built):
    rows = dict(q(built, "select ts::date = date '2026-11-18', quantile_cont(latency_ms, 0.95) from calls "
                         "where model = 'claude-sonnet-4' and status = 'ok' and ts >= '2026-11-04' group by 1"))
    assert rows[True] > 1.8 * rows[False]
    ttft = dict(q(built, "select ts::date = date '2026-11-18', median(ttft_ms) from calls "
                         "where model = 'claude-sonnet-4' and ts >= '2026-11-04' group by 1"))
    assert ttft[True] > 2.0 * ttft[False]
    # other models did not slow down that day
    other = dict(q(built, "select ts::date = date '2026-11-18', median(ttft_ms) from calls "
                          "where model = 'gpt-4o' and ts >= '2026-11-04' group by 1"))
    assert other[True] < 1.3 * other[False]


def test_outage_errors_and_fallbacks(built):
    during, before = q(built, """
        select avg((status = 'error')::int) filter (ts >= '2026-10-29 13:20' and ts < '2026-10-29 15:05'),
               avg((status = 'error')::int) filter (ts < '2026-10-29')
        from calls where provider = 'openai' and attempt = 1""")[0]
    assert during > 0.35 and before < 0.03
    # after mitigation, retries of OpenAI requests were answered by claude-sonnet-4
    fb = q(built, "select model, count(*) from calls where fallback and request_model <> model group by 1")
    assert [m for m, _ in fb] == ["claude-sonnet-4"]
    lo, hi = q(built, "select min(ts), max(ts) from calls where fallback and request_model <> model")[0]
    assert lo.isoformat() >= "2026-10-29T14:05" and hi.isoformat() < "2026-10-29T15:06"
    assert one(built, "select count(*) from calls where attempt = 2 and not fallback") == 0
    inc = q(built, "select started_at, detected_at, mitigated_at, resolved_at from incidents "
                   "where incident_id = 'INC-0031'")[0]
    assert [t.strftime("%H:%M") for t in inc] == ["13:20", "13:41", "14:05", "15:05"]


def test_prompt_v7_hallucinates_more(built):
    rates = dict(q(built, "select c.prompt_version, avg(e.value) from evals e join calls c using (call_id) "
                          "where e.metric = 'hallucination_label' and e.evaluator_version = 'demo-review-1' "
                          "group by 1"))
    assert set(rates) == {"v6", "v7"}
    assert rates["v7"] > 1.8 * rates["v6"] and 0.03 < rates["v6"] < 0.15
    assert one(built, "select min(ts) from calls where prompt_version = 'v7'").isoformat() >= "2026-11-12T10:00"
    # thumbs-down follows hallucination: more downs on v7
    down = dict(q(built, "select c.prompt_version, avg(1 - f.value) from feedback f join calls c using (call_id) "
                         "where f.kind = 'thumbs' group by 1"))
    assert down["v7"] > down["v6"]


def test_cost_spike_runaway_agent(built):
    rows = q(built, "select ts::date, sum(input_tokens) from calls where feature = 'agent' group by 1 order by 2 desc")
    top = {str(d) for d, _ in rows[:2]}
    assert "2026-11-03" in top
    median = sorted(v for _, v in rows)[len(rows) // 2]
    assert rows[0][1] > 8 * median
    steps = one(built, "select max(n) from (select parent_id, count(*) n from calls where operation = 'chat' "
                       "and feature = 'agent' group by 1)")
    assert steps >= 25
    assert one(built, "select count(distinct prompt_version) from calls where feature = 'agent'") == 2


def test_answers_are_grounded_in_contexts(built):
    n, empty, short = q(built, "select count(*), count(*) filter (contexts is null or len(contexts) = 0), "
                               "count(*) filter (len(contexts) not between 2 and 4) from answers "
                               "where source = 'support_assistant'")[0]
    assert n == 600 and empty == 0 and short == 0
    # supported answers repeat facts of their passages: every number in the answer appears in the contexts
    rows = q(built, "select a.answer, a.contexts, e.value from answers a join evals e using (call_id) "
                    "where e.evaluator_version = 'demo-review-1'")
    import re

    def numbers_supported(answer, contexts):
        return set(re.findall(r"\d+", answer)) <= set(re.findall(r"\d+", " ".join(contexts)))

    supported = [numbers_supported(a, c) for a, c, v in rows if v == 0]
    assert all(supported)
    assert one(built, "select count(distinct label) from evals where evaluator = 'human' "
                      "and evaluator_version = 'demo-review-1'") == 2


def test_experiment_and_shadow(built):
    arms = dict(q(built, "select variant, count(*) from assignments where experiment = 'support_model_ab' group by 1"))
    assert set(arms) == {"control", "treatment"}
    n = sum(arms.values())
    assert abs(arms["control"] - n / 2) < 3 * (n ** 0.5) / 2  # no sample-ratio mismatch
    models = dict(q(built, "select variant, any_value(request_model) from calls where feature = 'support_assistant' "
                           "and variant is not null group by 1"))
    assert models == {"control": "gpt-4o", "treatment": "gpt-4o-mini"}
    # shadow: the same request answered in environment shadow, same trace as its production call
    unmatched = one(built, "select count(*) from calls s where s.environment = 'shadow' and not exists ("
                           "select 1 from calls p where p.trace_id = s.trace_id and p.environment = 'production')")
    assert unmatched == 0 and one(built, "select count(*) from calls where environment = 'shadow'") > 100
    missing = one(built, "select count(*) from assignments a where experiment = 'summariser_shadow' and not exists "
                         "(select 1 from calls c where c.trace_id = a.unit_id and c.variant = 'shadow')")
    assert missing == 0


def test_guardrails_are_reviewable(built):
    blocked_calls = one(built, "select count(*) from calls where status = 'blocked'")
    blocks = one(built, "select count(distinct call_id) from guardrail_events where action = 'block'")
    assert blocked_calls == blocks > 0
    rows = dict(q(built, "select action, count(*) filter (verdict is not null) from guardrail_events group by 1"))
    assert set(rows) == {"pass", "block", "redact", "flag"} and all(v > 0 for v in rows.values())
    # catch rate and false-block rate are computable and sensible
    catch, false_block = q(built, """
        select avg((action <> 'pass')::int) filter (verdict = 'bad'),
               avg((verdict = 'good')::int) filter (action = 'block' and verdict is not null)
        from guardrail_events""")[0]
    assert 0.3 < catch < 1 and 0 < false_block < 0.5


def test_funnel_and_retention(built):
    funnel = dict(q(built, "select event, count(distinct user_id) from events where feature = 'support_assistant' "
                           "group by 1"))
    assert funnel["open_assistant"] > funnel["ask"] > funnel["accept_suggestion"] > 0
    assert one(built, "select count(distinct event) from events where feature not in "
                      "('support_assistant', 'summariser', 'coding_assistant', 'agent')") >= 3
    users = one(built, "select count(distinct user_id) from events")
    assert 300 < users <= 400
    # staggered first use: users keep arriving through the window
    late = one(built, "select count(*) from (select user_id, min(ts) f from events group by 1) "
                      "where f >= '2026-11-01'")
    assert late > 0.1 * users
    # every ask points at its call
    assert one(built, "select count(*) from events e left join calls c on c.call_id = (e.properties->>'call_id') "
                      "where e.event = 'ask' and c.call_id is null") == 0


# --- real data through ingest ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_INGEST, reason="workbench.io.ingest is not written yet: the Azure and halu_dev loads are "
                                           "skipped by build_demo too")
def test_real_data_loaded_through_ingest(built):
    azure = dict(q(built, "select feature, count(*) from calls where provider = 'azure' group by 1"))
    assert azure == {"azure_code": 8_819, "azure_conv": 19_366}
    assert one(built, "select count(*) from answers where source in ('HaluEval-QA', 'BEGIN')") == 1_126
    labels = q(built, "select count(*), sum(value), count(distinct label) from evals "
                      "where evaluator_version = 'halu_dev-1'")[0]
    assert labels == (1_126, 563, 2)
    # ingest invariant: rows read = inserted + duplicates + quarantined, for every file
    bad = one(built, "select count(*) from ingest_runs where format <> 'synthetic' and "
                     "rows_read <> rows_inserted + rows_duplicate + rows_quarantined")
    assert bad == 0
    assert one(built, "select count(*) from calls where provider = 'azure' and ingest_run_id is null") == 0


def test_real_data_is_skipped_with_a_reason_without_ingest(built):
    real = built["counts"]["real_data"]
    if HAS_INGEST:
        assert set(real) == {"azure_code", "azure_conv", "halu_answers", "halu_labels"}
    else:
        assert "workbench.io.ingest" in real["skipped"]


def test_reported_cost_and_mid_period_price_cut_are_planted(built):
    import workbench as wb
    from workbench.metrics import cost

    db = wb.connect(built["path"], read_only=True)
    pc = cost.priced_calls(db, start="2026-11-02", end="2026-11-16").to_polars()
    # the summariser's haiku calls report their cost: list price + 5% gateway fee, and reported wins
    haiku = pc.filter((pc["model"] == "claude-3-5-haiku") & pc["cost_usd"].is_not_null())
    assert haiku.height > 0 and set(haiku["cost_source"]) == {"reported"}
    r = haiku.row(0, named=True)
    expected = ((r["input_tokens"] or 0) * 0.80 + (r["output_tokens"] or 0) * 4.00) / 1e6 * 1.05
    assert r["cost_usd_used"] == pytest.approx(expected, rel=1e-6)
    assert r["cost_usd_used"] == pytest.approx(r["cost_usd_computed"] * 1.05, rel=1e-6)
    # gpt-4o-mini is priced at 0.15 / 0.60 before 2026-11-09 and at half that from that day
    mini = pc.filter((pc["model"] == "gpt-4o-mini") & (pc["cost_source"] == "computed"))
    before = mini.filter(mini["ts"] < wb.metrics.core.as_timestamp("2026-11-09"))
    after = mini.filter(mini["ts"] >= wb.metrics.core.as_timestamp("2026-11-09"))
    assert set(before["price_input_usd_per_mtok"]) == {0.15} and set(after["price_input_usd_per_mtok"]) == {0.075}
    assert {str(x)[:10] for x in after["price_effective_from"]} == {"2026-11-09"}
