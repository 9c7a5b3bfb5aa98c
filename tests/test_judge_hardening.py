"""The judge against a misbehaving server on 127.0.0.1: a slow-loris reply, an oversized reply, an HTTP 200 carrying an
error body, and redaction of what is sent (tests/fake_openai.py: a real socket, nothing patched)."""

from __future__ import annotations

import json
import time

import pytest

import workbench as wb
from workbench.config import ConfigError
from workbench.errors import InputError
from workbench.eval import judge

pytestmark = pytest.mark.usefixtures("no_project_config")

PII_ANSWER = ("Refunds are accepted within 30 days. Write to jane.doe@example.com or call +44 20 7946 0958. "
              "Card 4111 1111 1111 1111, SSN 123-45-6789, key sk-proj-abcdefghijklmnopqrstuvwx.")
PII_VERBATIM = ["jane.doe@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "123-45-6789",
                "sk-proj-abcdefghijklmnopqrstuvwx", "ops@corp.example", "555-867-5309"]


@pytest.fixture
def db():
    d = wb.connect(":memory:")
    d.duckdb.execute("""
      insert into calls (call_id, ts, feature, status) values ('a', '2026-02-02 09:00', 'support', 'ok');
      insert into answers (call_id, question, contexts, answer) values
        ('a', 'Refund window? I am at ops@corp.example', ['Refunds are accepted within 30 days. Call 555-867-5309.'],
         'Refunds are accepted within 30 days.')""")
    yield d
    d.close()


def cfg_for(fake, **kw):
    opts = {"base_url": fake.base_url, "model": "fake-judge", "retry_backoff_s": 0.01, "timeout_s": 5}
    return judge.judge_config(**(opts | kw))


def cached(db):
    return db.duckdb.execute("select count(*) from judge_cache").fetchone()[0]


def explanation(db):
    return db.duckdb.execute("select label, explanation from evals where call_id = 'a'").fetchone()


def test_timeout_is_a_total_deadline_against_a_trickling_server(db, fake):
    fake.trickle_s = 1.0  # one byte a second: every read arrives well within any per-read timeout
    t0 = time.monotonic()
    s = judge.evaluate(db, config=cfg_for(fake, timeout_s=2, max_retries=0), progress=False)
    elapsed = time.monotonic() - t0
    # the reply is ~300 bytes: a per-read timeout alone keeps the request open ~300 s; the deadline ends it at 2 s
    assert elapsed < 30, f"the request stayed open {elapsed:.0f} s with timeout_s = 2"
    assert (s["unscorable"], s["failed"]) == (1, 1)
    assert explanation(db) == ("unscorable", "timeout: no complete reply within 2 s (after 1 attempts)")
    assert cached(db) == 0


def test_reply_size_is_bounded_and_an_oversized_reply_is_not_cached(db, fake):
    fake.pad_bytes = 3_000_000
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=2), progress=False)
    assert fake.count == 1 and (s["failed"], s["unscorable"]) == (1, 1)  # not asked again within the run
    label, expl = explanation(db)
    assert label == "unscorable" and "larger than max_reply_bytes = 1048576" in expl
    assert cached(db) == 0
    s = judge.evaluate(db, config=cfg_for(fake, max_reply_bytes=4_000_000), progress=False)  # configurable
    assert s["scored"] == 1 and cached(db) == 1


def test_http_200_with_an_error_body_is_retried_and_never_cached(db, fake):
    fake.raw_replies = [b'{"error": {"message": "model overloaded", "type": "server_error"}}'] * 2
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=0), progress=False)
    assert (s["failed"], s["unscorable"]) == (1, 1)
    assert explanation(db) == ("unscorable", "HTTP 200 with an error body: model overloaded (after 1 attempts)")
    assert cached(db) == 0
    # the next run asks again; a retry within the run gets past the second error body
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=1), progress=False)
    assert fake.count == 3 and (s["scored"], s["failed"]) == (1, 0)
    assert explanation(db)[0] == "supported" and cached(db) == 1


@pytest.mark.parametrize("raw", [b'{"object": "chat.completion", "choices": []}', b"[1, 2]", b'"ok"', b"{not json",
                                 b"[" * 100_000 + b"]" * 100_000])  # nested deeper than the parser's stack
def test_http_200_that_is_no_completion_is_a_failure(db, fake, raw):
    fake.raw_replies = [raw]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=0), progress=False)
    assert s["failed"] == 1 and cached(db) == 0


def test_redact_sends_no_personal_data(db, fake, tmp_path):
    db.duckdb.execute("update answers set answer = ? where call_id = 'a'", [PII_ANSWER])
    raw = judge.evaluate(db, config=cfg_for(fake), progress=False)
    sent = json.dumps(fake.requests)
    assert "jane.doe@example.com" in sent  # off by default: the text goes as it is
    fake.reset()
    toml = tmp_path / "workbench.toml"
    toml.write_text(f'[judge]\nbase_url = "{fake.base_url}"\nmodel = "fake-judge"\nredact = true\nretry_backoff_s = 0.01\n')
    s = judge.evaluate(db, config=toml, progress=False)
    assert s["version"] == raw["version"] + "-redacted" and s["scored"] == 1  # a separate evaluator version
    sent = json.dumps(fake.requests, ensure_ascii=False)
    for secret in PII_VERBATIM:
        assert secret not in sent, secret
    for placeholder in ("[email]", "[phone]", "[card]", "[national_id]", "[api_key]"):
        assert placeholder in sent, placeholder
    assert "Refunds are accepted within 30 days." in sent  # the rest is untouched


@pytest.mark.parametrize("body, message", [
    ("max_reply_bytes = 10", "max_reply_bytes must be an integer >= 1024"),
    ('redact = "yes"', "redact must be true or false"),
])
def test_new_judge_keys_are_validated(tmp_path, body, message):
    p = tmp_path / "workbench.toml"
    p.write_text(f'[judge]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n{body}\n')
    with pytest.raises(ConfigError, match=message):
        judge.judge_config(p)


def test_a_reply_nested_too_deeply_is_unscorable_not_a_crash(db, fake):
    # a misbehaving server's completion whose content is JSON nested deeper than the parser's stack (RecursionError)
    deep = "[" * 100_000 + "]" * 100_000
    fake.raw_replies = [json.dumps({"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": deep}, "finish_reason": "stop"}]}).encode()]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=0), progress=False)
    assert s["unscorable"] == 1
    label, expl = explanation(db)
    assert label == "unscorable" and expl.startswith("reply is not JSON")


@pytest.mark.parametrize("content", [
    "```" + " " * 4000 + "x",  # an opening fence, then whitespace, no closing fence
    "```json\n{" + " \n" * 2000 + "}",
    "```" + "\t" * 2000 + "```" + " " * 2000 + "x",
])
def test_a_reply_of_whitespace_after_a_fence_is_read_in_linear_time(content):
    # The fence was stripped by a pattern whose lazy body and whitespace runs backtracked into each other: a reply of
    # '```' and 10,000 spaces took 320 s (4,000: about 20 s), inside the 1 MiB a reply may have. A judge that rambles
    # (or a hostile endpoint) stalled the evaluation. Now the fence is cut by string tests.
    import time

    t = time.process_time()
    v = judge.parse_verdict(content)
    assert time.process_time() - t < 1.0
    assert v.label == "unscorable"


def test_the_fence_is_cut_as_the_pattern_cut_it():
    import random
    import re

    fence = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)  # the old pattern, on short texts only
    rng = random.Random(11)
    alphabet = ["```", "`", "json", "JSON", " ", "\n", "\t", "{", "}", "[]", '"a"', ":", "x", "5", "\u00a0"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
        m = fence.match(text.strip())
        assert judge._unfence(text.strip()) == (m.group(1) if m else text.strip()), text


_VERDICT = json.dumps({"claims": [{"claim": "Refunds are accepted within 30 days.", "supported": True}]})


def _completion(content, usage=None) -> bytes:
    body = {"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


def test_a_reply_in_content_parts_is_read_and_one_without_text_is_unscorable_and_not_cached(db, fake):
    # content as a list of parts (some OpenAI-compatible gateways): AttributeError in parse_verdict, after the reply
    # was cached, so every later run crashed on it without asking again
    fake.raw_replies = [_completion([{"type": "text", "text": _VERDICT}])]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=0), progress=False)
    assert s["scored"] == 1 and explanation(db)[0] == "supported" and cached(db) == 1
    d = wb.connect(":memory:")
    d.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('a', '2026-02-02 09:00', 's', 'ok');"
                     "insert into answers (call_id, question, contexts, answer) values ('a', 'q', ['c d e'], 'c d e')")
    fake.reset()
    fake.raw_replies = [_completion({"text": _VERDICT})]  # an object: no text
    s = judge.evaluate(d, config=cfg_for(fake, max_retries=0), progress=False)
    assert s["unscorable"] == 1 and cached(d) == 0


@pytest.mark.parametrize("usage", ["12 tokens", {"prompt_tokens": "12", "completion_tokens": "3"},
                                   {"prompt_tokens": 1e30, "completion_tokens": 3}])
def test_a_malformed_usage_leaves_the_token_counts_unknown(db, fake, usage):
    # a string usage: AttributeError; string counts: TypeError after the cache row was written; 1e30: INT64 overflow
    fake.raw_replies = [_completion(_VERDICT, usage)]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=0), progress=False)
    assert s["scored"] == 1 and explanation(db)[0] == "supported" and cached(db) == 1
    assert s["input_tokens"] == 0  # not a whole number of tokens: unknown, not counted


def _choice(message: dict, finish_reason: str) -> bytes:
    return json.dumps({"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 5}}).encode()


@pytest.mark.parametrize("raw, why", [
    (_choice({"content": None, "refusal": "I can't help with that."}, "stop"),
     "no verdict in the reply: the judge refused: \"I can't help with that.\" (finish_reason stop)"),
    (_choice({"content": None, "tool_calls": [{"id": "t1", "type": "function",
                                               "function": {"name": "search", "arguments": "{}"}}]}, "tool_calls"),
     "no verdict in the reply: a tool call instead of text (finish_reason tool_calls)"),
    (_choice({"content": None}, "content_filter"),
     "no verdict in the reply: the reply was filtered (finish_reason content_filter)"),
    (_choice({"content": '{"claims": [{"claim": "Refunds are acc'}, "length"),
     "no verdict in the reply: the reply was cut at max_tokens = 1024 (finish_reason length); "
     "raise [judge] max_tokens"),
    (_choice({"content": None}, "stop"), "no verdict in the reply: no text (finish_reason stop)"),
    (_choice({"content": "  "}, "stop"), "no verdict in the reply: no text (finish_reason stop)"),
])
def test_a_reply_without_a_verdict_says_why_and_is_asked_again_next_run(db, fake, raw, why):
    # content null (a refusal, a tool call, a filtered or cut reply) was written unscorable as "empty reply" with no
    # error: the row counted as scored, so it was never asked again and the user could not see why
    fake.raw_replies = [raw]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=2), progress=False)
    assert fake.count == 1  # the same question gets the same answer: not asked again within the run
    assert (s["scored"], s["unscorable"], s["failed"], s["input_tokens"]) == (0, 1, 1, 40)  # its tokens were spent
    assert explanation(db) == ("unscorable", why)
    details = json.loads(db.duckdb.execute("select cast(details as varchar) from evals").fetchone()[0])
    assert details["error"] == why and cached(db) == 0
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=2), progress=False)  # the next run asks again
    assert fake.count == 2 and (s["scored"], s["failed"]) == (1, 0) and explanation(db)[0] == "supported"
    assert cached(db) == 1


def test_judge_says_why_a_reply_holds_no_verdict(fake):
    fake.raw_replies = [_choice({"content": None, "refusal": "No."}, "stop")]
    v = judge.judge("Refunds are accepted within 30 days.", ["Refunds are accepted within 30 days."],
                    config=cfg_for(fake))
    assert (v.label, v.reason) == ("unscorable", 'no verdict in the reply: the judge refused: "No." (finish_reason stop)')


def test_a_cached_reply_without_a_verdict_is_asked_again(db, fake):
    # a blank reply cached by an older version: read from the cache it would stay unscorable for good
    cfg = cfg_for(fake)
    [row] = db.duckdb.execute("select question, contexts, answer from answers").fetchall()
    body = judge.request_body(cfg, judge.judge_messages(cfg, row[2], row[1], row[0]))
    blank = _choice({"content": ""}, "stop").decode()
    db.duckdb.execute("insert into judge_cache (request_hash, model, request, response) values (?, ?, ?, ?)",
                      [judge.request_hash(cfg, body), cfg.model, json.dumps(body), blank])
    s = judge.evaluate(db, config=cfg, progress=False)
    assert fake.count == 1 and (s["cached"], s["scored"]) == (0, 1)


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_a_transient_status_is_retried(db, fake, status):
    # 408 (a proxy's request timeout), 409 (OpenAI: a concurrent request conflicted) and 425 (too early) were
    # failures at once, like a 400
    fake.fail_statuses = [status]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=1), progress=False)
    assert fake.count == 2 and (s["scored"], s["failed"], s["requests"]) == (1, 0, 2)


def _http_date(seconds_from_now: float) -> str:
    from email.utils import formatdate

    return formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize("headers, least", [
    ({"Retry-After": "1.5"}, 1.5),
    ({"Retry-After": "2"}, 2.0),
    ({"retry-after-ms": "1500"}, 1.5),  # OpenAI and Azure OpenAI
    ("date", 1.0),  # an HTTP-date 3 s ahead: at least 2 s left once the date's second is cut, minus a test margin
])
def test_retry_after_in_seconds_or_as_an_http_date_is_honoured(db, fake, headers, least):
    if headers == "date":
        headers = {"Retry-After": _http_date(3)}
    fake.raw_replies = [(429, headers, b'{"error": {"message": "Rate limit reached", "type": "requests"}}')]
    t0 = time.monotonic()
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=1), progress=False)
    assert time.monotonic() - t0 >= least and fake.count == 2 and s["scored"] == 1


def test_a_retry_after_beyond_the_cap_fails_at_once_and_says_so(db, fake):
    # a quota that resets in an hour: waiting the 60 s cap and asking again only spends the run's time
    fake.raw_replies = [(429, {"Retry-After": "3600"}, b'{"error": {"message": "Daily quota exceeded"}}')]
    t0 = time.monotonic()
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=3), progress=False)
    assert time.monotonic() - t0 < 10 and fake.count == 1 and s["failed"] == 1
    assert explanation(db) == ("unscorable", "HTTP 429: Daily quota exceeded; the endpoint asks to wait 3600 s, "
                                             "more than 60 s (after 1 attempts)")


@pytest.mark.parametrize("raw", [
    (200, {}, _completion(_VERDICT)[:40], "reset"),  # the connection reset mid-body
    (200, {"Content-Length": "400"}, _completion(_VERDICT)[:40]),  # closed before the declared length
    (200, {}, _completion(_VERDICT)[:40]),  # a complete HTTP reply of truncated JSON
    (502, {"Content-Type": "text/html"}, b"<html><body>502 Bad Gateway</body></html>"),  # a proxy's page
])
def test_a_reply_broken_in_transit_is_retried(db, fake, raw):
    fake.raw_replies = [raw]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=1), progress=False)
    assert fake.count == 2 and (s["scored"], s["failed"]) == (1, 0) and cached(db) == 1


@pytest.mark.parametrize("status, reason, hint", [
    (401, "Unauthorized", "check the key in $WB_TEST_JUDGE_KEY ([judge] api_key_env)"),
    (403, "Forbidden", "check the key in $WB_TEST_JUDGE_KEY ([judge] api_key_env)"),
    (404, "Not Found", "check [judge] base_url and model"),
])
def test_a_wrong_key_or_endpoint_stops_the_run_naming_the_endpoint_never_the_key(db, fake, monkeypatch, status,
                                                                                   reason, hint):
    # every answer was sent and written unscorable with the same 401, one request each: 10,000 answers, 10,000
    # requests and rows, and no clear word that the key or the URL is wrong
    db.duckdb.execute("insert into answers (call_id, contexts, answer) select 'x' || i, ['c'], 'Claim ' || i || '.' "
                      "from range(5) t(i)")
    monkeypatch.setenv("WB_TEST_JUDGE_KEY", "sk-test-9f8e7d6c5b4a")
    fake.raw_replies = [(status, {}, b'{"error": {"message": "Incorrect API key provided: sk-test-9f8e7d6c5b4a."}}')]
    cfg = cfg_for(fake, api_key_env="WB_TEST_JUDGE_KEY", concurrency=1, max_retries=3)
    with pytest.raises(ConfigError) as exc:
        judge.evaluate(db, config=cfg, progress=False)
    assert str(exc.value) == (f"judge endpoint {fake.base_url}/chat/completions answered HTTP {status} {reason}: "
                              f"Incorrect API key provided: [api_key].; {hint}")
    assert fake.count == 1 and db.duckdb.execute("select count(*) from evals").fetchone()[0] == 0


def test_an_event_stream_where_a_json_reply_was_asked_is_read(db, fake):
    # a gateway that streams whatever was asked: the reply was "not JSON", retried, then failed every time
    def event(delta, finish=None):
        return ("data: " + json.dumps({"object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n").encode()

    half = len(_VERDICT) // 2
    stream = (event({"role": "assistant", "content": ""}) + event({"content": _VERDICT[:half]})
              + event({"content": _VERDICT[half:]}, "stop") + b"data: [DONE]\n\n")
    fake.raw_replies = [(200, {"Content-Type": "text/event-stream"}, stream)]
    s = judge.evaluate(db, config=cfg_for(fake, max_retries=0), progress=False)
    assert fake.count == 1 and (s["scored"], s["failed"]) == (1, 0) and explanation(db)[0] == "supported"
    db.duckdb.execute("delete from evals")
    s = judge.evaluate(db, config=cfg_for(fake), progress=False)
    assert fake.count == 1 and s["cached"] == 1  # kept in the cache as a chat completion


def test_an_exhausted_quota_stops_the_run_instead_of_retrying_every_answer(db, fake):
    # OpenAI answers an account out of credit with a 429 like a rate limit: each answer was retried max_retries times
    # with backoff, then written unscorable, one after another for the whole run
    db.duckdb.execute("insert into answers (call_id, contexts, answer) select 'x' || i, ['c'], 'Claim ' || i || '.' "
                      "from range(5) t(i)")
    quota = (b'{"error": {"message": "You exceeded your current quota, please check your plan and billing details.",'
             b' "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}')
    fake.raw_replies = [(429, {}, quota)]
    with pytest.raises(InputError) as exc:
        judge.evaluate(db, config=cfg_for(fake, concurrency=1, max_retries=3), progress=False)
    assert str(exc.value) == (f"judge endpoint {fake.base_url}/chat/completions answered HTTP 429 insufficient_quota: "
                              "You exceeded your current quota, please check your plan and billing details.; "
                              "asking again will not help until the account has credit")
    assert fake.count == 1 and db.duckdb.execute("select count(*) from evals").fetchone()[0] == 0
