"""The LLM judge against a real HTTP server on 127.0.0.1 speaking the chat completions protocol (tests/fake_openai.py)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

import workbench as wb
from workbench.eval import score
from workbench.metrics import hallucination as h
from workbench.eval import judge
from workbench.config import ConfigError


ANSWERS = """
insert into calls (call_id, ts, feature, model, status) values
  ('a', '2026-02-02 09:00', 'support', 'm1', 'ok'), ('b', '2026-02-02 10:00', 'support', 'm1', 'ok'),
  ('c', '2026-02-02 11:00', 'support', 'm2', 'ok'), ('d', '2026-02-02 12:00', 'search', 'm2', 'ok');
insert into answers (call_id, question, contexts, answer) values
  ('a', 'What is the refund window?', ['Refunds are accepted within 30 days.'], 'Refunds are accepted within 30 days. You need the receipt.'),
  ('b', 'What is the refund window?', ['Refunds are accepted within 30 days.'], 'Refunds are accepted within 30 days. Shipping is free UNSUPPORTED.'),
  ('c', 'Where is the office?', ['The office is in Lyon.'], 'GARBAGE reply please.'),
  ('d', 'Who founded it?', ['It was founded in 1990.'], 'NOCLAIMS')
"""

pytestmark = pytest.mark.usefixtures("no_project_config")



@pytest.fixture
def db():
    d = wb.connect(":memory:")
    d.duckdb.execute(ANSWERS)
    yield d
    d.close()


def cfg_for(fake, **kw):
    opts = {"base_url": fake.base_url, "model": "fake-judge", "retry_backoff_s": 0.01, "timeout_s": 5}
    return judge.judge_config(**(opts | kw))


def evals(db, **filters):
    cond = " and ".join(f"{k} = '{v}'" for k, v in filters.items()) or "true"
    return {(r[0], r[1]): r[2:] for r in db.duckdb.execute(
        f"select call_id, repeat, value, label, explanation, cast(details as varchar) from evals where {cond}"
    ).fetchall()}


def test_end_to_end_through_evaluate(db, fake):
    cfg = cfg_for(fake)
    s = score.evaluate(db, detector="judge", config=cfg, progress=False)
    assert (s["evaluator"], s["version"]) == ("judge:fake-judge", "faithfulness-p2-t0")
    assert (s["scored"], s["unscorable"], s["skipped"], s["failed"]) == (2, 2, 0, 0)
    assert fake.count == 4 and s["requests"] == 4
    rows = evals(db)
    assert rows[("a", 0)][:2] == (0.0, "supported")
    assert rows[("b", 0)][:2] == (0.5, "hallucinated")  # 1 of 2 claims unsupported
    assert "Shipping is free UNSUPPORTED." in rows[("b", 0)][2]
    assert rows[("c", 0)][:2] == (None, "unscorable") and "not JSON" in rows[("c", 0)][2]
    assert rows[("d", 0)][:3] == (None, "unscorable", "no claim extracted")
    claims = json.loads(rows[("b", 0)][3])["claims"]
    assert [c["supported"] for c in claims] == [True, False]
    # the request is the chat completions wire format, JSON mode, temperature 0
    body = fake.requests[0]
    assert body["model"] == "fake-judge" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    # the aggregates read the judge's rows: support has a (scored), b (hallucinated), c (unscorable)
    with pytest.warns(wb.UndefinedMetricWarning, match="n = 0"):  # search: its one answer is unscorable
        rate = h.hallucination_rate(db, evaluator="judge:fake-judge", period="all")
    assert rate.select("feature", "value", "n").rows() == [("search", None, 0), ("support", 0.5, 2)]
    un = h.unscorable_rate(db, evaluator="judge:fake-judge", period="all")
    assert un.select("feature", "value", "n").rows() == [("search", 1.0, 1), ("support", pytest.approx(1 / 3), 3)]


def test_rerun_costs_nothing_and_cache_answers_without_requests(db, fake):
    cfg = cfg_for(fake)
    judge.evaluate(db, config=cfg, progress=False)
    assert fake.count == 4
    first = evals(db)
    s = judge.evaluate(db, config=cfg, progress=False)  # every answer already scored by this version
    assert (s["scored"], s["skipped"], s["requests"]) == (0, 4, 0) and fake.count == 4
    # Drop the scores: the judge_cache still holds every reply, so re-scoring sends zero HTTP requests.
    db.duckdb.execute("delete from evals")
    s = judge.evaluate(db, config=cfg, progress=False)
    assert fake.count == 4
    assert (s["cached"], s["requests"], s["scored"], s["unscorable"]) == (4, 0, 2, 2)
    assert {k: v[:2] for k, v in evals(db).items()} == {k: v[:2] for k, v in first.items()}
    assert db.duckdb.execute("select count(*), sum(input_tokens) > 0 from judge_cache").fetchone() == (4, True)
    # another model is another request (the cache key holds the model)
    judge.evaluate(db, config=cfg_for(fake, model="other-judge"), progress=False, where={"call_id": "a"})
    assert fake.count == 5


def test_retries_recover_from_429_and_5xx(db, fake):
    fake.fail_statuses = [429, 500, 503]
    s = judge.evaluate(db, config=cfg_for(fake, concurrency=1, max_retries=3), where={"call_id": "b"},
                       progress=False)
    assert fake.count == 4  # three failures, then the answer
    assert (s["scored"], s["failed"], s["requests"]) == (1, 0, 4)
    assert evals(db)[("b", 0)][:2] == (0.5, "hallucinated")
    assert json.loads(evals(db)[("b", 0)][3])["attempts"] == 4


def test_failed_request_is_unscorable_then_retried_by_next_run(db, fake):
    fake.fail_statuses = [500] * 3
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=2), where={"call_id": "a"}, progress=False)
    assert fake.count == 3 and (s["scored"], s["unscorable"], s["failed"]) == (0, 1, 1)
    value, label, expl, details = evals(db)[("a", 0)]
    assert (value, label) == (None, "unscorable") and "HTTP 500" in expl and "3 attempts" in expl
    assert "error" in json.loads(details)
    assert db.duckdb.execute("select count(*) from judge_cache").fetchone()[0] == 0  # failures are not cached
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=2), where={"call_id": "a"}, progress=False)
    assert (s["scored"], s["skipped"]) == (1, 0) and fake.count == 4
    assert evals(db)[("a", 0)][:2] == (0.0, "supported")
    assert db.duckdb.execute("select count(*) from evals").fetchone()[0] == 1  # replaced, not duplicated


def test_4xx_is_not_retried(db, fake):
    fake.fail_statuses = [400]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=3), where={"call_id": "a"}, progress=False)
    assert fake.count == 1 and s["failed"] == 1 and "HTTP 400" in evals(db)[("a", 0)][2]


def test_timeout_is_retried_then_unscorable(db, fake):
    fake.sleep_s = 1.0
    s = judge.evaluate(db, config=cfg_for(fake, timeout_s=0.2, max_retries=1), where={"call_id": "a"},
                       progress=False)
    assert fake.count == 2  # the first attempt and one retry, both timed out
    assert (s["unscorable"], s["failed"]) == (1, 1)
    assert evals(db)[("a", 0)][2].startswith("timeout: no complete reply within 0.2 s")


def test_garbage_replies_are_unscorable_and_counted(db, fake):
    fake.garbage = True
    s = judge.evaluate(db, config=cfg_for(fake), progress=False)
    assert (s["scored"], s["unscorable"], s["failed"]) == (0, 4, 0)
    un = h.unscorable_rate(db, evaluator="judge:fake-judge", by=(), period="all")
    assert un.select("value", "n").rows() == [(1.0, 4)]


def test_dry_run_sends_nothing_and_estimates(db, fake):
    cfg = cfg_for(fake, input_usd_per_mtok=1.0, output_usd_per_mtok=4.0)
    s = judge.evaluate(db, config=cfg, dry_run=True)
    assert fake.count == 0 and db.duckdb.execute("select count(*) from evals").fetchone()[0] == 0
    rows = db.duckdb.execute("select question, contexts, answer from answers order by call_id").fetchall()
    tin = sum(judge.estimate_tokens(m["content"]) for q, c, a in rows for m in judge.build_messages(a, c, q))
    tout = sum(20 + 2 * ((len(a) + 3) // 4) for _, _, a in rows)
    assert (s["to_score"], s["requests"], s["input_tokens_est"], s["output_tokens_est"]) == (4, 4, tin, tout)
    assert s["cost_usd_est"] == pytest.approx((tin * 1.0 + tout * 4.0) / 1e6, abs=1e-6)
    assert s["price_source"].endswith("[judge]") and s["token_estimate"] == "characters / 4"
    # a model genai-prices knows is priced from it; an unknown local model says so instead of guessing
    s = judge.evaluate(db, config=cfg_for(fake, model="gpt-4o-mini"), dry_run=True)
    assert s["price_source"] == "genai-prices"
    assert s["cost_usd_est"] == pytest.approx((s["input_tokens_est"] * 0.15 + s["output_tokens_est"] * 0.6) / 1e6,
                                              abs=1e-6)
    s = judge.evaluate(db, config=cfg_for(fake, model="my-local-llama"), dry_run=True)
    assert (s["cost_usd_est"], s["price_source"]) == (None, "unknown cost")
    assert fake.count == 0
    # cached requests are not counted as to be spent
    judge.evaluate(db, config=cfg, progress=False, where={"call_id": ["a", "b"]})
    db.duckdb.execute("delete from evals")
    s = judge.evaluate(db, config=cfg, dry_run=True)
    assert (s["to_score"], s["cached"], s["requests"]) == (4, 2, 2)


def test_repeat_k_rows_and_judge_variance(db, fake):
    db.duckdb.execute("""insert into answers (call_id, question, contexts, answer) values
      ('e', 'q', ['Alpha holds.'], 'Alpha holds. Beta is FLAKY.')""")
    cfg = cfg_for(fake, temperature=0.7)
    s = judge.evaluate(db, config=cfg, repeat=3, where={"call_id": ["a", "e"]}, progress=False)
    assert s["scored"] == 6 and fake.count == 6
    assert sorted(b.get("seed", -1) for b in fake.requests) == [-1, -1, 1, 1, 2, 2]  # repeat r -> seed r (none for 0)
    rows = evals(db)
    # the fake judge marks FLAKY unsupported on odd seeds: e scores 0, 0.5, 0 over repeats 0, 1, 2
    assert [rows[("e", r)][0] for r in range(3)] == [0.0, 0.5, 0.0]
    per = h.judge_variance(db, evaluator="judge:fake-judge", per_answer=True)
    std_e = per.filter(per["call_id"] == "e")["std"][0]
    # sample std (ddof 1) of (0, .5, 0): mean 1/6, var = (2 (1/6)^2 + (1/3)^2) / 2 = 1/12
    assert std_e == pytest.approx(math.sqrt(1 / 12))
    assert per.filter(per["call_id"] == "a")["std"][0] == 0.0
    summary = h.judge_variance(db, evaluator="judge:fake-judge")
    assert summary.select("answers", "k").row(0) == (2, 3)
    assert summary["mean_std"][0] == pytest.approx(math.sqrt(1 / 12) / 2)
    assert summary["flip_rate"][0] == 0.5  # e flips between supported and hallucinated, a never does
    # the aggregates read repeat 0 only
    assert h.hallucination_rate(db, evaluator="judge:fake-judge", by=(), period="all")["n"][0] == 2
    # asking for 3 repeats again sends nothing; 4 repeats sends one more per answer
    judge.evaluate(db, config=cfg, repeat=3, where={"call_id": ["a", "e"]}, progress=False)
    assert fake.count == 6
    judge.evaluate(db, config=cfg, repeat=4, where={"call_id": ["a", "e"]}, progress=False)
    assert fake.count == 8


def test_concurrency_is_bounded(db, fake):
    db.duckdb.execute("insert into answers (call_id, contexts, answer) select 'x' || i, ['c'], 'Claim ' || i || '.' "
                      "from range(8) t(i)")
    fake.sleep_s = 0.15
    judge.evaluate(db, config=cfg_for(fake, concurrency=2), progress=False)
    assert fake.count == 12 and fake.max_inflight == 2


def test_works_inside_a_running_event_loop(db, fake):
    cfg = cfg_for(fake)

    async def notebook_cell():
        # a Jupyter cell runs inside the kernel's loop: the sync API must still work, and so must the coroutine
        s1 = judge.evaluate(db, config=cfg, where={"call_id": "a"}, progress=False)
        s2 = await judge.aevaluate(db, config=cfg, where={"call_id": "b"}, progress=False)
        v = judge.judge("A fact. Another UNSUPPORTED one.", ["A fact."], config=cfg)
        return s1, s2, v

    s1, s2, v = asyncio.run(notebook_cell())
    assert (s1["scored"], s2["scored"]) == (1, 1)
    assert (v.score, v.label) == (0.5, "hallucinated")


def test_api_key_only_from_the_environment(tmp_path, db, fake, monkeypatch):
    p = tmp_path / "workbench.toml"
    p.write_text(f'[judge]\nbase_url = "{fake.base_url}"\nmodel = "m"\napi_key = "sk-secret"\n')
    with pytest.raises(ConfigError, match="never put the API key in the file"):
        judge.judge_config(p)
    p.write_text(f'[judge]\nbase_url = "{fake.base_url}"\nmodel = "m"\napi_key_env = "WB_TEST_JUDGE_KEY"\n'
                 "retry_backoff_s = 0.01\n")
    monkeypatch.delenv("WB_TEST_JUDGE_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$WB_TEST_JUDGE_KEY, which is not set"):
        judge.evaluate(db, config=p, progress=False)
    monkeypatch.setenv("WB_TEST_JUDGE_KEY", "sk-test-123")
    judge.evaluate(db, config=p, where={"call_id": "a"}, progress=False)
    assert fake.headers[-1].get("Authorization") == "Bearer sk-test-123"


@pytest.mark.parametrize("body, message", [
    ('model = "m"\n', "missing 'base_url'"),
    ('base_url = "http://x/v1"\n', "missing 'model'"),
    ('base_url = "http://x/v1"\nmodel = "m"\nconcurency = 2\n', "unknown key 'concurency'"),
    ('base_url = "http://x/v1"\nmodel = "m"\nconcurrency = 0\n', "concurrency must be an integer >= 1, got 0"),
    ('base_url = "http://x/v1"\nmodel = "m"\ntimeout_s = "fast"\n', "timeout_s must be a number"),
    ('base_url = "http://x/v1"\nmodel = "m"\ntemperature = 3\n', "temperature must be in"),
])
def test_config_errors_name_the_key(tmp_path, body, message):
    p = tmp_path / "workbench.toml"
    p.write_text("[judge]\n" + body)
    with pytest.raises(ConfigError, match=message) as exc:
        judge.judge_config(p)
    assert "workbench.toml [judge]" in str(exc.value)


def test_parse_verdict_cases():
    v = judge.parse_verdict('{"claims": [{"claim": "a", "supported": true}, {"claim": "b", "supported": false},'
                            ' {"claim": "c", "supported": 0}, {"claim": "d", "supported": "yes"}]}')
    assert (v.score, v.label) == (0.5, "hallucinated")
    assert judge.parse_verdict('{"claims": [{"claim": "a", "supported": "maybe"}]}').label == "unscorable"
    assert judge.parse_verdict('{"verdict": "ok"}').reason == "reply has no 'claims' list"
    assert judge.parse_verdict("").reason == "empty reply"


def test_cache_key_covers_endpoint_model_messages_options_and_repeat(fake):
    cfg = cfg_for(fake)
    msgs = judge.build_messages("A.", ["B."])
    base = judge.request_hash(cfg, judge.request_body(cfg, msgs), 0)
    assert judge.request_hash(cfg, judge.request_body(cfg, msgs), 0) == base
    others = {
        judge.request_hash(cfg_for(fake, base_url="http://127.0.0.1:1/v1"), judge.request_body(cfg, msgs), 0),
        judge.request_hash(cfg, judge.request_body(cfg_for(fake, model="m2"), msgs), 0),
        judge.request_hash(cfg, judge.request_body(cfg, judge.build_messages("A!", ["B."])), 0),
        judge.request_hash(cfg, judge.request_body(cfg_for(fake, temperature=0.5), msgs), 0),
        judge.request_hash(cfg, judge.request_body(cfg, msgs, 1), 1),
    }
    assert base not in others and len(others) == 5


def test_nothing_to_check_is_unscorable_without_a_request(db, fake):
    db.duckdb.execute("insert into answers (call_id, question, contexts, answer) values "
                      "('empty', 'q', ['Some context.'], '  '), ('noctx', 'q', [], 'A claim.'), ('nullctx', 'q', null, 'A.')")
    ids = {"call_id": ["empty", "noctx", "nullctx"]}
    assert judge.evaluate(db, config=cfg_for(fake), where=ids, dry_run=True)["requests"] == 0
    s = judge.evaluate(db, config=cfg_for(fake), where=ids, progress=False)
    assert fake.count == 0 and (s["scored"], s["unscorable"], s["requests"]) == (0, 3, 0)
    expl = {k[0]: v[2] for k, v in evals(db).items()}
    assert expl == {"empty": "empty answer", "noctx": "no context to check against",
                    "nullctx": "no context to check against"}


@pytest.mark.parametrize("reply, score", [
    # a fenced verdict inside prose (models without JSON mode): "reply is not JSON", cached, unscorable for good
    ('Here is my verdict:\n```json\n{"claims": [{"claim": "A", "supported": true}, {"claim": "B", "supported": false}]}'
     '\n```\nHope this helps.', 0.5),
    ('Sure! {"claims": [{"claim": "A", "supported": false}]} Let me know.', 1.0),
    ('```JSON\n{"claims": [{"claim": "A", "supported": true}]}\n```', 0.0),
    # verdicts in words and in another case
    ('{"claims": [{"claim": "A", "supported": "Unsupported"}, {"claim": "B", "supported": "SUPPORTED"}]}', 0.5),
    ('{"claims": [{"claim": "A", "verdict": "Hallucinated"}, {"claim": "B", "verdict": "supported"},'
     ' {"claim": "C", "verdict": "Not supported"}, {"claim": "D", "supported": "True"}]}', 0.5),
    ('{"Claims": [{"Claim": "A", "Supported": false}, {"Claim": "B", "Supported": true}]}', 0.5),
    # a brace in the prose before the verdict, or another object first: unscorable ("not JSON", "no 'claims' list")
    ('I checked the claims {A, B} one by one. {"claims": [{"claim": "A", "supported": false}]}', 1.0),
    ('{"model": "gpt"}\n{"claims": [{"claim": "A", "supported": true}]}', 0.0),
])
def test_a_verdict_in_prose_fences_words_or_another_case_is_read(reply, score):
    v = judge.parse_verdict(reply)
    assert (v.score, v.label) == (score, "hallucinated" if score else "supported")
    assert v.claims[0]["text"] == "A"


@pytest.mark.parametrize("reply, reason", [
    ('{"claims": [{"claim": "A", "supported": 2}]}', "claim 1 has no true/false 'supported'"),
    ('{"claims": [{"claim": "A", "supported": 0.7}]}', "claim 1 has no true/false 'supported'"),
    ('{"claims": [{"claim": "A", "supported": "partly"}]}', "claim 1 has no true/false 'supported'"),
    ("I think it is fine {but not sure}.", "reply is not JSON: 'I think it is fine {but not sure}.'"),
])
def test_a_verdict_out_of_range_or_in_other_words_stays_unscorable(reply, reason):
    assert judge.parse_verdict(reply).reason == reason


ROOT = Path(__file__).resolve().parents[1]  # the child imports this checkout's workbench
_RUN = """
import asyncio, sys
from workbench.eval import judge
cfg = judge.judge_config(base_url=sys.argv[2], model="fake-judge", concurrency=1, retry_backoff_s=0.01, timeout_s=30)
if sys.argv[3] == "script":
    judge.evaluate(sys.argv[1], config=cfg, progress=False)
else:  # a notebook: the cell runs in the kernel's event loop, and an interrupt is a KeyboardInterrupt there
    async def cell():
        judge.evaluate(sys.argv[1], config=cfg, progress=False)
    asyncio.new_event_loop().run_until_complete(cell())
"""


@pytest.mark.parametrize("where", ["script", "notebook"])
def test_an_interrupted_run_keeps_what_was_judged_and_the_next_asks_only_the_rest(tmp_path, fake, where):
    # the replies of a batch (256 answers) were written only when the whole batch was back: Ctrl-C lost every reply
    # of the batch, paid for and asked again; in a notebook the interrupt waited for the whole run to finish
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "wb.duckdb"
    d = wb.connect(path)
    d.duckdb.execute("insert into answers (call_id, contexts, answer) select 'x' || i, ['c'], 'Claim ' || i || '.' "
                     "from range(10) t(i)")
    d.close()
    fake.sleep_s = 1.0
    child = subprocess.Popen([sys.executable, "-c", _RUN, str(path), fake.base_url, where],
                             env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while fake.count < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = child.communicate(timeout=60)
    assert time.monotonic() - t0 < 5, "the interrupt waited for the run"  # the rest takes 7 s
    assert b"KeyboardInterrupt" in err and child.returncode != 0
    d = wb.connect(path)
    kept = d.duckdb.execute("select count(*) from judge_cache").fetchone()[0]
    scored = d.duckdb.execute("select count(*) from evals where value is not null").fetchone()[0]
    assert kept == scored >= 2  # the replies received before the interrupt: cached and written
    asked = fake.count
    fake.sleep_s = 0
    s = judge.evaluate(d, config=cfg_for(fake), progress=False)
    assert (s["skipped"], s["scored"]) == (kept, 10 - kept) and fake.count == asked + 10 - kept
    d.close()


def test_the_same_request_in_a_batch_is_sent_once(db, fake):
    # the same question, contexts and answer logged twice (a FAQ answered alike): each was sent and paid for, though
    # the cache answers it for every later batch
    db.duckdb.execute("insert into answers (call_id, question, contexts, answer) select 'dup' || i, 'q', ['c'], "
                      "'Same claim.' from range(3) t(i)")
    ids = {"call_id": ["a", "dup0", "dup1", "dup2"]}
    assert judge.evaluate(db, config=cfg_for(fake), where=ids, dry_run=True)["requests"] == 2
    s = judge.evaluate(db, config=cfg_for(fake), where=ids, progress=False)
    assert fake.count == 2 and (s["scored"], s["requests"], s["cached"]) == (4, 2, 0)
    tokens = db.duckdb.execute("select sum(input_tokens), sum(output_tokens) from judge_cache").fetchone()
    assert (s["input_tokens"], s["output_tokens"]) == tokens  # spent once
    assert [r[:2] for k, r in sorted(evals(db).items()) if k[0].startswith("dup")] == [(0.0, "supported")] * 3
