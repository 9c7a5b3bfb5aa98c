"""Shapes the tools really write, found in their sources (each test names where) and loaded as a user would: each
value the source states lands in its column. Each case failed before the change that fixed it."""

from __future__ import annotations

import base64
import json

import workbench as wb
from workbench.io.ingest import ingest

T0 = 1763632800_000000000


def _kv(attrs: dict) -> list[dict]:
    return [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"doubleValue": v}
             if isinstance(v, float) else {"stringValue": v}} for k, v in attrs.items()]


def _otlp_line(attrs: dict, resource: dict, span_id: str = "3333333333333333") -> str:
    span = {"traceId": "1af7651916cd43dd8448eb211c80319c", "spanId": span_id, "name": "chat", "kind": 3,
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 4_200_000_000), "attributes": _kv(attrs)}
    return json.dumps({"resourceSpans": [{"resource": {"attributes": _kv(resource)},
                                          "scopeSpans": [{"scope": {"name": "s"}, "spans": [span]}]}]})


def _load(tmp_path, name: str, text: str, cols: str) -> list[tuple]:
    p = tmp_path / name
    p.write_text(text)
    db = wb.connect(str(tmp_path / f"{name}.duckdb"))
    s = ingest(db, p, progress=False)
    assert s.quarantined == 0
    return db.duckdb.execute(f"select {cols} from calls order by call_id").fetchall()


def _load_proto(tmp_path, name: str, lines: str, cols: str) -> list[tuple]:
    """:func:`_load` of OTLP JSON lines written as framed protobuf messages (format otel-proto)."""
    from google.protobuf import json_format

    from workbench.io import otlp_proto

    p = tmp_path / name
    with open(p, "wb") as out:
        for line in lines.splitlines():
            if line.strip():
                doc = json.loads(line)
                for rs in doc["resourceSpans"]:
                    for sp in rs["scopeSpans"][0]["spans"]:  # (hex ids as protobuf's JSON mapping writes bytes)
                        for key in ("traceId", "spanId"):
                            sp[key] = base64.b64encode(bytes.fromhex(sp[key])).decode()
                msg = json_format.ParseDict(doc, otlp_proto._request_class()())
                out.write(otlp_proto.frame(msg.SerializeToString()))
    db = wb.connect(str(tmp_path / f"{name}.duckdb"))
    assert ingest(db, p, progress=False).quarantined == 0
    return db.duckdb.execute(f"select {cols} from calls order by call_id").fetchall()


def test_pydantic_ai_cache_reasoning_tokens_and_cost(tmp_path):
    # pydantic/pydantic-ai: usage.py opentelemetry_attributes() writes gen_ai.usage.details.*; instrumented.py sets
    # operation.cost (USD). They were NULL.
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-0",
             "gen_ai.usage.input_tokens": 9344, "gen_ai.usage.output_tokens": 812,
             "gen_ai.usage.details.cache_read_tokens": 7166, "gen_ai.usage.details.cache_write_tokens": 2175,
             "gen_ai.usage.details.reasoning_tokens": 300, "operation.cost": 0.02310105}
    rows = _load(tmp_path, "logfire.jsonl", _otlp_line(attrs, {"service.name": "agent"}) + "\n",
                 "input_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd")
    assert rows == [(9344, 7166, 2175, 300, 0.02310105)]


def test_vercel_ai_sdk_spans_over_otlp_name_their_user_session_and_feature(tmp_path):
    # vercel/ai: telemetry metadata (ai.telemetry.metadata.*) and ai.telemetry.functionId; read from a ReadableSpan
    # array, NULL (and the feature the service's name) when the same span came as OTLP
    attrs = {"ai.operationId": "ai.generateText.doGenerate", "gen_ai.system": "openai.chat",
             "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1500, "gen_ai.usage.output_tokens": 90,
             "ai.telemetry.functionId": "support-bot", "ai.telemetry.metadata.userId": "user-17",
             "ai.telemetry.metadata.sessionId": "sess-3"}
    rows = _load(tmp_path, "vercel.jsonl", _otlp_line(attrs, {"service.name": "web"}) + "\n",
                 "feature, user_id, session_id, input_tokens")
    assert rows == [("support-bot", "user-17", "sess-3", 1500)]


def test_litellm_spend_logs_keep_status_error_and_usage_in_their_metadata(tmp_path):
    # BerriAI/litellm spend_tracking_utils.py: a spend-log row keeps usage beyond prompt/completion tokens in
    # metadata.additional_usage_values, and (without a status column) its status and error in metadata. A failed call
    # loaded as ok; cached and reasoning tokens were NULL.
    ok = {"status": "success", "additional_usage_values": {"prompt_tokens_details": {"cached_tokens": 1024},
                                                           "completion_tokens_details": {"reasoning_tokens": 256}}}
    fail = {"status": "failure", "error_information": {"error_class": "RateLimitError", "error_code": "429",
                                                      "error_message": "litellm.RateLimitError: rate limited"}}
    common = {"call_type": "acompletion", "model": "o3-mini", "custom_llm_provider": "openai", "user": "u1",
              "startTime": "2025-11-20T10:00:00.000000Z", "endTime": "2025-11-20T10:00:02.000000Z"}
    rows = [{**common, "request_id": "ok", "spend": 0.0021, "prompt_tokens": 1200, "completion_tokens": 400,
             "metadata": json.dumps(ok)},
            {**common, "request_id": "fail", "spend": 0.0, "prompt_tokens": 0, "completion_tokens": 0,
             "metadata": json.dumps(fail)}]
    got = _load(tmp_path, "spendlogs.json", json.dumps(rows, indent=1),
                "call_id, status, error_type, cache_read_tokens, reasoning_tokens")
    assert got == [("fail", "error", "RateLimitError", None, None), ("ok", "ok", None, 1024, 256)]


def test_a_failed_span_takes_its_error_type_from_the_exception_event(tmp_path):
    # opentelemetry-python Span.record_exception: an event named "exception" with exception.type / exception.message;
    # no error.type attribute. The error type was NULL (status error was right).
    span = {"traceId": "1af7651916cd43dd8448eb211c80319c", "spanId": "4444444444444444", "name": "chat gpt-4o",
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 10**9),
            "attributes": _kv({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}),
            "events": [{"name": "exception", "timeUnixNano": str(T0 + 10**9),
                        "attributes": _kv({"exception.type": "openai.RateLimitError",
                                           "exception.message": "Rate limit reached"})}],
            "status": {"code": 2, "message": "Rate limit reached"}}
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    assert _load(tmp_path, "sdk.jsonl", line + "\n", "status, error_type") == [("error", "openai.RateLimitError")]
    # the same span in a pretty-printed document (read by the span formats in Python): the same row
    doc = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}, indent=2)
    assert _load(tmp_path, "sdk.json", doc, "status, error_type") == [("error", "openai.RateLimitError")]


def _vercel_as_otlp(spans: list[dict]) -> dict:
    """The ReadableSpans of tests/data/formats/vercel_spans.json as the OTLP export @vercel/otel sends."""
    def value(v):
        if isinstance(v, list):
            return {"arrayValue": {"values": [value(x) for x in v]}}
        return {"boolValue": v} if isinstance(v, bool) else {"intValue": str(v)} if isinstance(v, int) else \
            {"doubleValue": v} if isinstance(v, float) else {"stringValue": str(v)}

    def kv(attrs: dict) -> list[dict]:
        return [{"key": k, "value": value(v)} for k, v in attrs.items()]

    def ns(t: list[int]) -> str:
        return str(t[0] * 10**9 + t[1])

    out = []
    for s in spans:
        o = {"traceId": s["spanContext"]["traceId"], "spanId": s["spanContext"]["spanId"], "name": s["name"],
             "startTimeUnixNano": ns(s["startTime"]), "endTimeUnixNano": ns(s["endTime"]),
             "attributes": kv(s["attributes"]), "status": {k: v for k, v in s.get("status", {}).items()},
             "events": [{"name": e["name"], "timeUnixNano": ns(e["time"]), "attributes": kv(e.get("attributes") or {})}
                        for e in s.get("events") or []]}
        parent = s.get("parentSpanId") or (s.get("parentSpanContext") or {}).get("spanId")
        if parent:
            o["parentSpanId"] = parent
        out.append(o)
    resource = kv(spans[0]["resource"]["attributes"])
    return {"resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"scope": {"name": "ai"},
                                                                                     "spans": out}]}]}


def test_vercel_ai_sdk_spans_give_the_same_row_from_otlp_as_from_their_own_file(tmp_path):
    # vercel/ai telemetry: every usage, model and provider name is ai.*; the outer ai.streamText span repeats its
    # provider call's usage. Over OTLP the tokens, models, time to first chunk and finish reasons were NULL, the
    # provider "openai.chat", a tool call named "ai.toolCall".
    from pathlib import Path

    fixture = Path(__file__).resolve().parent / "data" / "formats" / "vercel_spans.json"
    spans = json.loads(fixture.read_text())
    cols = ("call_id, parent_id, ts, latency_ms, ttft_ms, operation, name, feature, provider, model, request_model, "
            "user_id, session_id, status, finish_reason, input_tokens, output_tokens, cache_read_tokens, "
            "reasoning_tokens, cost_usd")
    own = _load(tmp_path, "vercel.json", fixture.read_text(), cols)
    otlp = _load(tmp_path, "vercel_otlp.jsonl", json.dumps(_vercel_as_otlp(spans)) + "\n", cols)
    assert otlp == own
    assert sum(r[15] or 0 for r in otlp) == 120 + 180 + 8  # the two calls and the embedding, once: not the outer spans


def test_a_finish_reason_that_only_starts_with_a_bracket_is_read_as_written(tmp_path):
    # a text attribute "[stop" was parsed as JSON for its first element: the whole file failed to load
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.response.finish_reasons": "[stop"}
    assert _load(tmp_path, "fr.jsonl", _otlp_line(attrs, {}) + "\n", "finish_reason") == [("[stop",)]


def test_otlp_lines_of_the_deprecated_instrumentation_library_spans_load_every_span(tmp_path):
    # opentelemetry-proto before 0.15 (collectors and exporters of 2021-22) named scopeSpans instrumentationLibrarySpans
    # and its scope instrumentationLibrary. As JSON lines the file loaded nothing and quarantined nothing: read 0.
    span = {"traceId": "1af7651916cd43dd8448eb211c80319c", "spanId": "5555555555555555", "name": "chat",
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 1_500_000_000),
            "attributes": _kv({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo",
                               "gen_ai.usage.prompt_tokens": 40, "gen_ai.usage.completion_tokens": 9})}
    old = {"resourceSpans": [{"resource": {"attributes": _kv({"service.name": "bot"})},
                              "instrumentationLibrarySpans": [{"instrumentationLibrary": {"name": "openai-v0"},
                                                               "spans": [span]}]}]}
    cols = "call_id, model, feature, input_tokens, output_tokens, latency_ms, attributes->>'otel.scope.name'"
    want = [("5555555555555555", "gpt-3.5-turbo", "bot", 40, 9, 1500.0, "openai-v0")]
    assert _load(tmp_path, "old.jsonl", json.dumps(old) + "\n", cols) == want
    # the same export pretty-printed (read in Python): the same row
    assert _load(tmp_path, "old.json", json.dumps(old, indent=2), cols) == want


def test_langfuse_observations_of_the_v2_api_and_of_langfuse_v2_name_their_model_and_tokens(tmp_path):
    # langfuse/langfuse fern/apis/server/definition/observations-v2.yml: GET /api/public/v2/observations names the
    # model providedModelName (field group "model"), usage in usageDetails; the model was NULL.
    # packages/shared/prisma/schema.prisma of Langfuse v2: the observation view keeps promptTokens, completionTokens
    # and totalTokens beside the other fields (no usage object in an export of it); the tokens were NULL.
    v2_api = {"data": [{"id": "obs-1", "traceId": "tr-1", "type": "GENERATION", "name": "chat",
                        "startTime": "2025-11-20T10:00:00.000Z", "endTime": "2025-11-20T10:00:02.500Z",
                        "projectId": "p1", "userId": "user-7", "sessionId": "sess-3",
                        "completionStartTime": "2025-11-20T10:00:00.400Z", "providedModelName": "gpt-4o-mini",
                        "internalModelId": "cm123", "usageDetails": {"input": 100, "output": 20, "total": 120},
                        "costDetails": {"input": 0.0001, "output": 0.0002, "total": 0.0003}, "totalCost": 0.0003,
                        "latency": 2.5, "timeToFirstToken": 0.4}],
              "meta": {"cursor": "abc"}}
    cols = "call_id, model, request_model, user_id, session_id, input_tokens, output_tokens, cost_usd, ttft_ms"
    assert _load(tmp_path, "v2obs.json", json.dumps(v2_api), cols) == [
        ("obs-1", "gpt-4o-mini", "gpt-4o-mini", "user-7", "sess-3", 100, 20, 0.0003, 400.0)]
    lf2 = {"trace": {"id": "tr-2", "name": "support-bot", "userId": "u1", "timestamp": "2024-05-01T10:00:00Z"},
           "observations": [{"id": "g-1", "traceId": "tr-2", "type": "GENERATION", "startTime": "2024-05-01T10:00:00Z",
                             "endTime": "2024-05-01T10:00:01Z", "model": "gpt-3.5-turbo", "promptTokens": 50,
                             "completionTokens": 10, "totalTokens": 60, "unit": "TOKENS",
                             "calculatedTotalCost": 0.00004, "level": "DEFAULT"}]}
    assert _load(tmp_path, "lf2.json", json.dumps(lf2), "call_id, model, input_tokens, output_tokens, cost_usd") == [
        ("g-1", "gpt-3.5-turbo", 50, 10, 0.00004)]


def test_openlit_cost_and_time_to_first_token(tmp_path):
    # openlit/openlit sdk/python semcov: gen_ai.usage.cost (USD) and gen_ai.server.time_to_first_token (seconds) are
    # set on the span; __helpers.get_chat_model_cost writes 0 for a model missing from its price list. Both columns
    # were NULL. A 0 is no price (NULL, so the call is priced from its tokens), kept in attributes.
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200, "gen_ai.usage.total_tokens": 1200,
             "gen_ai.usage.cost": 0.00027, "gen_ai.server.time_to_first_token": 0.25,
             "gen_ai.server.time_per_output_token": 0.01}
    unpriced = {**attrs, "gen_ai.request.model": "my-finetune", "gen_ai.usage.cost": 0.0}
    text = _otlp_line(attrs, {"service.name": "bot"}) + "\n" + _otlp_line(unpriced, {}, "4444444444444444") + "\n"
    cols = "call_id, cost_usd, ttft_ms, attributes->>'gen_ai.usage.cost'"
    want = [("3333333333333333", 0.00027, 250.0, None), ("4444444444444444", None, 250.0, "0.0")]
    assert _load(tmp_path, "openlit.jsonl", text, cols) == want
    # the same spans in one pretty-printed document (read in Python): the same rows
    doc = json.loads(_otlp_line(attrs, {"service.name": "bot"}))
    doc["resourceSpans"] += json.loads(_otlp_line(unpriced, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "openlit.json", json.dumps(doc, indent=1), cols) == want


def test_openllmetry_finish_reason_of_its_completion_attributes(tmp_path):
    # traceloop/openllmetry opentelemetry-instrumentation-openai _set_completions: each choice's finish reason is
    # gen_ai.completion.{index}.finish_reason (no gen_ai.response.finish_reasons); an Azure OpenAI answer withheld by
    # its content filter is "content_filter". finish_reason was NULL and the filtered call loaded as ok.
    attrs = {"llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.prompt_tokens": 30, "gen_ai.usage.completion_tokens": 1,
             "gen_ai.completion.0.finish_reason": "content_filter", "gen_ai.completion.0.role": "assistant",
             "gen_ai.completion.0.content": "FILTERED"}
    stop = {**attrs, "gen_ai.completion.0.finish_reason": "stop", "gen_ai.completion.0.content": "Hello"}
    text = _otlp_line(attrs, {}) + "\n" + _otlp_line(stop, {}, "4444444444444444") + "\n"
    cols = "call_id, operation, provider, status, finish_reason"
    want = [("3333333333333333", "chat", "openai", "blocked", "content_filter"),
            ("4444444444444444", "chat", "openai", "ok", "stop")]
    assert _load(tmp_path, "traceloop.jsonl", text, cols) == want
    doc = json.loads(_otlp_line(attrs, {}))
    doc["resourceSpans"] += json.loads(_otlp_line(stop, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "traceloop.json", json.dumps(doc, indent=1), cols) == want


def test_langfuse_sdk_spans_name_their_trace_environment_user_session_and_prompt_version(tmp_path):
    # langfuse/langfuse-python langfuse/_client/attributes.py (LangfuseOtelSpanAttributes): the SDK's OpenTelemetry
    # spans carry langfuse.trace.name, langfuse.environment, langfuse.observation.prompt.version and, in the
    # documented compatibility names, langfuse.user.id / langfuse.session.id. The feature was the service's name, the
    # environment, user, session and prompt version NULL. (Read in the Langfuse export, the trace's name is the
    # feature: the same here.)
    attrs = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
             "langfuse.trace.name": "support-chat", "langfuse.environment": "staging",
             "langfuse.user.id": "user-3", "langfuse.session.id": "sess-8", "langfuse.observation.prompt.name": "faq",
             "langfuse.observation.prompt.version": 4}
    cols = "operation, model, feature, environment, user_id, session_id, prompt_version"
    want = [("chat", "gpt-4o", "support-chat", "staging", "user-3", "sess-8", "4")]
    assert _load(tmp_path, "lf_sdk.jsonl", _otlp_line(attrs, {"service.name": "api"}) + "\n", cols) == want
    doc = json.dumps(json.loads(_otlp_line(attrs, {"service.name": "api"})), indent=1)
    assert _load(tmp_path, "lf_sdk.json", doc, cols) == want


def test_openllmetry_before_the_gen_ai_names_model_provider_and_tokens(tmp_path):
    # traceloop/openllmetry(-js) semantic conventions before the move to gen_ai.* (2023 - early 2024): llm.vendor,
    # llm.request.model, llm.response.model, llm.usage.prompt_tokens / completion_tokens / total_tokens. The span
    # loaded as a chat call with no model, provider or tokens.
    attrs = {"llm.request.type": "chat", "llm.vendor": "OpenAI", "llm.request.model": "gpt-3.5-turbo",
             "llm.response.model": "gpt-3.5-turbo-0613", "llm.usage.prompt_tokens": 82,
             "llm.usage.completion_tokens": 17, "llm.usage.total_tokens": 99, "llm.prompts.0.role": "user"}
    cols = ("operation, provider, model, request_model, input_tokens, output_tokens, "
            "attributes->>'llm.usage.total_tokens'")
    want = [("chat", "openai", "gpt-3.5-turbo-0613", "gpt-3.5-turbo", 82, 17, "99")]
    assert _load(tmp_path, "oldtl.jsonl", _otlp_line(attrs, {}) + "\n", cols) == want
    assert _load(tmp_path, "oldtl.json", json.dumps(json.loads(_otlp_line(attrs, {})), indent=1), cols) == want


def test_litellm_opentelemetry_spans_name_their_cost_user_and_team(tmp_path):
    # BerriAI/litellm integrations/opentelemetry.py set_attributes: the cost breakdown as gen_ai.cost.* (total_cost,
    # 0 for a call LiteLLM could not price, as in its spend logs), the payload's metadata as metadata.* (the end
    # user, the key's user and team alias; a missing value written ""). Cost, user and feature were NULL / the
    # service's name; the same call read from LiteLLM's own log has them.
    attrs = {"gen_ai.request.model": "gpt-4o", "llm.request.type": "acompletion", "gen_ai.system": "openai",
             "gen_ai.usage.input_tokens": 36, "gen_ai.usage.output_tokens": 48, "gen_ai.cost.input_cost": 0.00009,
             "gen_ai.cost.output_cost": 0.00048, "gen_ai.cost.total_cost": 0.00057,
             "metadata.user_api_key_end_user_id": "end-7", "metadata.user_api_key_user_id": "key-owner",
             "metadata.user_api_key_team_alias": "support-team", "gen_ai.operation.name": "acompletion"}
    no_end_user = {**attrs, "metadata.user_api_key_end_user_id": "", "gen_ai.cost.total_cost": 0.0}
    text = (_otlp_line(attrs, {"service.name": "litellm"}) + "\n"
            + _otlp_line(no_end_user, {"service.name": "litellm"}, "4444444444444444") + "\n")
    cols = "call_id, cost_usd, user_id, feature"
    want = [("3333333333333333", 0.00057, "end-7", "support-team"),
            ("4444444444444444", None, "key-owner", "support-team")]
    assert _load(tmp_path, "litellm_otel.jsonl", text, cols) == want
    doc = json.loads(_otlp_line(attrs, {"service.name": "litellm"}))
    doc["resourceSpans"] += json.loads(_otlp_line(no_end_user, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "litellm_otel.json", json.dumps(doc, indent=1), cols) == want


def test_litellm_opentelemetry_call_types_are_operations(tmp_path):
    # BerriAI/litellm integrations/opentelemetry.py: gen_ai.operation.name is "chat" for call type completion, else
    # the call type itself (acompletion, aembedding...). The calls loaded as operations "acompletion" and
    # "aembedding", not chat and embeddings as the same calls from LiteLLM's own log.
    chat = {"gen_ai.operation.name": "acompletion", "gen_ai.request.model": "gpt-4o", "gen_ai.system": "openai"}
    embed = {"gen_ai.operation.name": "aembedding", "gen_ai.request.model": "text-embedding-3-small",
             "gen_ai.system": "openai"}
    text = _otlp_line(chat, {}) + "\n" + _otlp_line(embed, {}, "4444444444444444") + "\n"
    want = [("3333333333333333", "chat"), ("4444444444444444", "embeddings")]
    assert _load(tmp_path, "litellm_ops.jsonl", text, "call_id, operation") == want
    doc = json.loads(_otlp_line(chat, {}))
    doc["resourceSpans"] += json.loads(_otlp_line(embed, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "litellm_ops.json", json.dumps(doc, indent=1), "call_id, operation") == want


def test_langfuse_sdk_spans_read_their_usage_and_cost_details(tmp_path):
    # langfuse/langfuse-python langfuse/_client/attributes.py create_generation_attributes: usage_details and
    # cost_details are written as JSON text (json.dumps) in langfuse.observation.usage_details / cost_details, with no
    # gen_ai.usage.* beside them; its OpenAI integration (langfuse/openai.py _parse_usage) writes OpenAI's usage object
    # there. Langfuse's own OTel ingestion (OtelIngestionProcessor.extractUsageDetails) reads them first. Tokens and
    # cost were NULL.
    manual = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
              "langfuse.observation.usage_details": '{"input": 80, "input_cached_tokens": 20, "output": 30, '
                                                    '"total": 130}',
              "langfuse.observation.cost_details": '{"input": 0.0002, "output": 0.0003, "total": 0.0005}'}
    openai = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o-mini",
              "langfuse.observation.usage_details": json.dumps({
                  "prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70,
                  "prompt_tokens_details": {"cached_tokens": 10}, "completion_tokens_details": {"reasoning_tokens": 5}}),
              "gen_ai.usage.input_tokens": 999}  # (Langfuse's details win, as Langfuse reads them)
    text = _otlp_line(manual, {}) + "\n" + _otlp_line(openai, {}, "4444444444444444") + "\n"
    cols = ("call_id, input_tokens, output_tokens, cache_read_tokens, reasoning_tokens, cost_usd, "
            "attributes->>'langfuse.observation.usage_details' IS NOT NULL")
    want = [("3333333333333333", 100, 30, 20, None, 0.0005, True), ("4444444444444444", 50, 20, 10, 5, None, True)]
    assert _load(tmp_path, "lf_usage.jsonl", text, cols) == want
    assert _load_proto(tmp_path, "lf_usage.pb", text, cols) == want
    doc = json.loads(_otlp_line(manual, {}))
    doc["resourceSpans"] += json.loads(_otlp_line(openai, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "lf_usage.json", json.dumps(doc, indent=1), cols) == want


def test_langfuse_sdk_span_of_level_error_is_a_failed_call(tmp_path):
    # langfuse/langfuse-python: a failed observation gets langfuse.observation.level "ERROR" and its message in
    # langfuse.observation.status_message (the span's own status may stay unset); Langfuse's OTel ingestion reads the
    # level first. It loaded as status ok.
    failed = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
              "langfuse.observation.level": "ERROR", "langfuse.observation.status_message": "RateLimitError: 429"}
    warned = {**failed, "langfuse.observation.level": "WARNING", "langfuse.observation.status_message": "slow"}
    text = _otlp_line(failed, {}) + "\n" + _otlp_line(warned, {}, "4444444444444444") + "\n"
    cols = "call_id, status, error_type, attributes->>'langfuse.observation.level'"
    want = [("3333333333333333", "error", "RateLimitError: 429", "ERROR"),
            ("4444444444444444", "ok", None, "WARNING")]
    assert _load(tmp_path, "lf_level.jsonl", text, cols) == want
    assert _load_proto(tmp_path, "lf_level.pb", text, cols) == want
    doc = json.loads(_otlp_line(failed, {}))
    doc["resourceSpans"] += json.loads(_otlp_line(warned, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "lf_level.json", json.dumps(doc, indent=1), cols) == want


def test_langfuse_usage_details_that_are_no_json_are_quarantined_naming_the_attribute(tmp_path):
    # a usage_details text cut short (an attribute length limit, say): the span is quarantined naming the file, its
    # line and the attribute, the other span of the file loads; neither a crash nor a call without tokens
    bad = {"langfuse.observation.type": "generation", "langfuse.observation.usage_details": '{"input": 80, "outp'}
    good = {"langfuse.observation.type": "generation", "langfuse.observation.usage_details": '{"input": 7}'}
    kind, field = "invalid JSON: langfuse.observation.usage_details", "langfuse.observation.usage_details"
    reason = "invalid JSON in langfuse.observation.usage_details: '{\"input\": 80, \"outp' (expected a JSON object)"
    doc = json.loads(_otlp_line(good, {}, "4444444444444444"))
    doc["resourceSpans"] += json.loads(_otlp_line(bad, {}))["resourceSpans"]
    # (JSON lines: the bad span's line; a pretty-printed document: the line it starts on)
    for name, text, line in (("bad.jsonl", _otlp_line(good, {}, "4444444444444444") + "\n" + _otlp_line(bad, {}), 2),
                             ("bad.json", json.dumps(doc, indent=1), 1)):
        p = tmp_path / name
        p.write_text(text)
        db = wb.connect(str(tmp_path / f"{name}.duckdb"))
        s = ingest(db, p, progress=False)
        assert (s.inserted, s.quarantined, s.reasons) == (1, 1, {kind: 1})
        con = db.duckdb
        assert con.execute("select input_tokens from calls").fetchall() == [(7,)]
        assert con.execute("select line_no, field, reason from quarantine").fetchall() == [(line, field, reason)]
        assert con.execute("select source_path from quarantine").fetchone()[0].endswith(name)


def _langsmith_runs() -> list[dict]:
    # langchain-ai/langsmith-sdk python/langsmith/schemas.py (Run) and the "Run (span) data format" reference: a chain
    # run, the ChatOpenAI run inside it (extra.metadata.ls_provider / ls_model_name as LangChain sets them, the token
    # and cost fields LangSmith fills, Decimal costs written as text), and a tool run that failed
    chain = {"id": "0a1e0e5e-0000-4000-8000-000000000001", "name": "support_chain", "run_type": "chain",
             "start_time": "2025-11-20T10:00:00.000000", "end_time": "2025-11-20T10:00:03.000000",
             "trace_id": "0a1e0e5e-0000-4000-8000-000000000001", "parent_run_id": None, "status": "success",
             "session_id": "5c0ffee0-0000-4000-8000-0000000000aa", "tags": ["prod"],
             "extra": {"metadata": {"thread_id": "thread-9", "user_id": "user-4"}},
             "inputs": {"question": "hi"}, "outputs": {"answer": "hello"}, "total_tokens": 150,
             "prompt_tokens": 120, "completion_tokens": 30, "total_cost": "0.000036"}
    llm = {"id": "0a1e0e5e-0000-4000-8000-000000000002", "name": "ChatOpenAI", "run_type": "llm",
           "start_time": "2025-11-20T10:00:00.500000", "end_time": "2025-11-20T10:00:02.500000",
           "first_token_time": "2025-11-20T10:00:00.900000",
           "trace_id": "0a1e0e5e-0000-4000-8000-000000000001",
           "parent_run_id": "0a1e0e5e-0000-4000-8000-000000000001", "status": "success",
           "extra": {"invocation_params": {"model": "gpt-4o-mini", "temperature": 0},
                     "metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o-mini", "ls_model_type": "chat",
                                  "thread_id": "thread-9", "user_id": "user-4"}},
           "outputs": {"generations": [[{"text": "hello", "generation_info": {"finish_reason": "stop"}}]]},
           "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
           "prompt_token_details": {"cache_read": 64}, "completion_token_details": {"reasoning": 10},
           "prompt_cost": "0.000018", "completion_cost": "0.000018", "total_cost": "0.000036"}
    tool = {"id": "0a1e0e5e-0000-4000-8000-000000000003", "name": "search", "run_type": "tool",
            "start_time": "2025-11-20T10:00:02.600000", "end_time": "2025-11-20T10:00:03.000000",
            "trace_id": "0a1e0e5e-0000-4000-8000-000000000001",
            "parent_run_id": "0a1e0e5e-0000-4000-8000-000000000001", "status": "error",
            "error": "httpx.ReadTimeout('timed out')\n\nTraceback (most recent call last):\n  ...",
            "extra": {"metadata": {"thread_id": "thread-9"}}}
    return [chain, llm, tool]


_LANGSMITH_COLS = ("call_id[-1:], parent_id[-1:], operation, model, provider, input_tokens, cache_read_tokens, "
                   "reasoning_tokens, cost_usd, latency_ms, ttft_ms, status, error_type, session_id, user_id, "
                   "finish_reason, attributes->>'langsmith.run_type'")
_LANGSMITH_WANT = [
    ("1", None, "chain", None, None, None, None, None, None, 3000.0, None, "ok", None, "thread-9", "user-4", None,
     "chain"),
    ("2", "1", "chat", "gpt-4o-mini", "openai", 120, 64, 10, 0.000036, 2000.0, 400.0, "ok", None, "thread-9",
     "user-4", "stop", "llm"),
    ("3", "1", "execute_tool", None, None, None, None, None, None, 400.0, None, "timeout", "httpx.ReadTimeout",
     "thread-9", None, None, "tool")]


def test_langsmith_runs_from_its_sdk_load_as_calls(tmp_path):
    # LangSmith runs (Client.list_runs() saved with run.json(), one a line, or the API's {"runs": [...]} page): no
    # reader knew them, the file was refused ("no known format"). The chain's tokens and cost are its call's, summed
    # by LangSmith (its cost-tracking docs: "aggregated values for each parent run"): counted once, on the call.
    runs = _langsmith_runs()
    assert _load(tmp_path, "runs.jsonl", "".join(json.dumps(r) + "\n" for r in runs), _LANGSMITH_COLS) == \
        _LANGSMITH_WANT
    assert _load(tmp_path, "runs.json", json.dumps({"runs": runs}, indent=1), _LANGSMITH_COLS) == _LANGSMITH_WANT
    db = wb.connect(str(tmp_path / "runs.jsonl.duckdb"))
    assert db.duckdb.execute("select sum(input_tokens), sum(cost_usd), max(attributes->>'langsmith.prompt_tokens') "
                             "from calls").fetchone() == (120, 0.000036, "120")


def test_langsmith_bulk_export_parquet_loads_as_calls(tmp_path):
    # LangSmith's bulk data export writes the same fields as Parquet columns, nested ones (extra...) as JSON text
    import pyarrow as pa
    import pyarrow.parquet as pq

    runs = _langsmith_runs()
    keys = sorted({k for r in runs for k in r})
    table = pa.table({k: [None if r.get(k) is None else json.dumps(r[k]) if isinstance(r[k], (dict, list))
                          else r[k] for r in runs] for k in keys})
    pq.write_table(table, tmp_path / "export.parquet")
    db = wb.connect(str(tmp_path / "export.duckdb"))
    s = ingest(db, tmp_path / "export.parquet", progress=False)
    assert (s.inserted, s.quarantined, s.files[0]["format"]) == (3, 0, "langsmith")
    got = db.duckdb.execute(f"select {_LANGSMITH_COLS} from calls order by call_id").fetchall()
    assert got == _LANGSMITH_WANT


def test_langfuse_sdk_spans_give_their_time_to_first_token(tmp_path):
    # langfuse/langfuse-python attributes.py: completion_start_time goes through _serialize (json.dumps of the
    # datetime: a JSON-quoted ISO text) into langfuse.observation.completion_start_time; Langfuse's OTel ingestion
    # (extractCompletionStartTime) reads it, also unquoted as older SDKs wrote it. ttft_ms was NULL. The spans start at
    # T0 (2025-11-20T10:00:00Z).
    quoted = {"langfuse.observation.type": "generation",
              "langfuse.observation.completion_start_time": '"2025-11-20T10:00:00.350000+00:00"'}
    plain = {**quoted, "langfuse.observation.completion_start_time": "2025-11-20T10:00:01.5Z"}
    text = _otlp_line(quoted, {}) + "\n" + _otlp_line(plain, {}, "4444444444444444") + "\n"
    want = [("3333333333333333", 350.0), ("4444444444444444", 1500.0)]
    assert _load(tmp_path, "lf_ttft.jsonl", text, "call_id, ttft_ms") == want
    doc = json.loads(_otlp_line(quoted, {}))
    doc["resourceSpans"] += json.loads(_otlp_line(plain, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "lf_ttft.json", json.dumps(doc, indent=1), "call_id, ttft_ms") == want
    # a value that is no time: the span is quarantined naming the attribute, in either reader
    bad = {**quoted, "langfuse.observation.completion_start_time": '"soon"'}
    name = "langfuse.observation.completion_start_time"
    for fname, body in (("bad_ttft.jsonl", _otlp_line(bad, {}) + "\n"),
                        ("bad_ttft.json", json.dumps(json.loads(_otlp_line(bad, {})), indent=1))):
        p = tmp_path / fname
        p.write_text(body)
        db = wb.connect(str(tmp_path / f"{fname}.duckdb"))
        s = ingest(db, p, progress=False)
        assert (s.inserted, s.reasons) == (0, {f"unparseable timestamp: {name}": 1})
        assert db.duckdb.execute("select field, reason from quarantine").fetchall() == [
            (name, f"unparseable timestamp in {name}: '\"soon\"' (expected ISO 8601)")]


def _failed_span(span_id: str, status: dict | None, exception: dict | None) -> dict:
    """An OTLP span of a chat call with a status and an "exception" event (opentelemetry-python
    Span.record_exception: exception.type and exception.message)."""
    span = {"traceId": "1af7651916cd43dd8448eb211c80319c", "spanId": span_id, "name": "chat gpt-4o",
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 10**9),
            "attributes": _kv({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"})}
    if status is not None:
        span["status"] = status
    if exception is not None:
        span["events"] = [{"name": "exception", "timeUnixNano": str(T0 + 10**9), "attributes": _kv(exception)}]
    return span


def test_a_span_whose_status_or_exception_message_says_timed_out_is_a_timeout(tmp_path):
    # openai-python _exceptions.py: APITimeoutError's message is "Request timed out." (an instrumentation that sets
    # the status from the exception's text, without error.type or an exception event); google-api-core
    # exceptions.DeadlineExceeded (gRPC DEADLINE_EXCEEDED, "504 Deadline Exceeded"). They loaded as status error,
    # though the Langfuse export's reader already read "timed out" as a timeout. A rate limit stays an error, and an
    # exception recorded on a span that did not fail (retried) is no failure.
    spans = [
        _failed_span("1111111111111111", {"code": 2, "message": "Request timed out."}, None),
        _failed_span("2222222222222222", {"code": "STATUS_CODE_ERROR"},
                     {"exception.type": "google.api_core.exceptions.DeadlineExceeded",
                      "exception.message": "504 Deadline Exceeded"}),
        _failed_span("3333333333333333", {"code": 2, "message": "boom"},
                     {"exception.type": "openai.APIConnectionError", "exception.message": "Request timed out."}),
        _failed_span("4444444444444444", {"code": 2, "message": "Rate limit reached"},
                     {"exception.type": "openai.RateLimitError", "exception.message": "Rate limit reached"}),
        _failed_span("5555555555555555", None, {"exception.type": "httpx.ConnectError",
                                                 "exception.message": "timed out, retrying"}),
    ]
    want = [("1111111111111111", "timeout", None),
            ("2222222222222222", "timeout", "google.api_core.exceptions.DeadlineExceeded"),
            ("3333333333333333", "timeout", "openai.APIConnectionError"),
            ("4444444444444444", "error", "openai.RateLimitError"), ("5555555555555555", "ok", None)]
    cols = "call_id, status, error_type"
    lines = "".join(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [s]}]}]}) + "\n" for s in spans)
    assert _load(tmp_path, "timeouts.jsonl", lines, cols) == want
    assert _load_proto(tmp_path, "timeouts.pb", lines, cols) == want
    doc = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}, indent=1)
    assert _load(tmp_path, "timeouts.json", doc, cols) == want


def test_langsmith_opentelemetry_spans_read_their_token_details(tmp_path):
    # langchain-ai/langsmith-sdk: its OTel exporters write usage_metadata's input_token_details / output_token_details
    # (LangChain's keys cache_read, cache_creation, reasoning) in gen_ai.usage.input_token_details /
    # output_token_details: the Python SDK (_internal/otel/_otel_exporter.py) as str() of the dict, the JS SDK
    # (experimental/otel/translator.ts) as JSON.stringify. Cache and reasoning tokens were NULL.
    py = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
          "langsmith.span.kind": "llm", "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
          "gen_ai.usage.input_token_details": "{'audio': 0, 'cache_read': 64}",
          "gen_ai.usage.output_token_details": "{'audio': 0, 'reasoning': 10}"}
    js = {**py, "gen_ai.usage.input_token_details": '{"cache_read":32,"cache_creation":8}',
          "gen_ai.usage.output_token_details": '{"reasoning":4}'}
    text = _otlp_line(py, {}) + "\n" + _otlp_line(js, {}, "4444444444444444") + "\n"
    cols = ("call_id, input_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, "
            "attributes->>'gen_ai.usage.output_token_details'")
    want = [("3333333333333333", 120, 64, None, 10, "{'audio': 0, 'reasoning': 10}"),
            ("4444444444444444", 120, 32, 8, 4, '{"reasoning":4}')]
    assert _load(tmp_path, "ls_otel.jsonl", text, cols) == want
    assert _load_proto(tmp_path, "ls_otel.pb", text, cols) == want
    doc = json.loads(_otlp_line(py, {}))
    doc["resourceSpans"] += json.loads(_otlp_line(js, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "ls_otel.json", json.dumps(doc, indent=1), cols) == want


def test_a_repeated_key_in_metadata_or_token_details_reads_its_last_value_in_every_reader(tmp_path):
    # A JSON object that repeats a key means its last value (Python's json, orjson, JavaScript's JSON.parse). The
    # span readers in Python did; the OTLP JSON-lines reader's SQL took the first (DuckDB's JSON paths): the same span
    # loaded as feature "a", 10 cached tokens from a JSON line, and as "b", 64 from a pretty-printed document.
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 120,
             "metadata": '{"feature": "a", "user_id": "u1", "feature": "b"}',
             "gen_ai.usage.input_token_details": '{"cache_read": 10, "cache_read": 64}',
             "gen_ai.usage.output_token_details": "{'reasoning': 1, 'reasoning': 10}"}
    cols = "feature, user_id, cache_read_tokens, reasoning_tokens"
    want = [("b", "u1", 64, 10)]
    line = _otlp_line(attrs, {})
    assert _load(tmp_path, "dup.jsonl", line + "\n", cols) == want
    assert _load(tmp_path, "dup.json", json.dumps(json.loads(line), indent=1), cols) == want


def test_a_pending_langsmith_run_loads_as_an_unfinished_call(tmp_path):
    # langsmith-sdk types/run.py: status is SUCCESS, ERROR or PENDING, end_time "null if the run has not finished
    # yet". A pending run was quarantined (unknown status 'pending'); it loads as an OTLP span without an end does:
    # no end, no latency, status ok.
    run = {"id": "0a1e0e5e-0000-4000-8000-000000000009", "name": "ChatOpenAI", "run_type": "llm",
           "start_time": "2025-11-20T10:00:00.000000", "end_time": None, "status": "pending",
           "trace_id": "0a1e0e5e-0000-4000-8000-000000000009", "parent_run_id": None,
           "extra": {"metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o-mini"}}}
    cols = "operation, model, end_ts, latency_ms, status, error_type"
    assert _load(tmp_path, "pending.jsonl", json.dumps(run) + "\n", cols) == \
        [("chat", "gpt-4o-mini", None, None, "ok", None)]
    # the OTLP span without an end it matches
    span = _failed_span("1111111111111111", None, None)
    del span["endTimeUnixNano"]
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    assert _load(tmp_path, "open.jsonl", line + "\n", "end_ts, latency_ms, status") == [(None, None, "ok")]


def test_a_cancelled_or_interrupted_langsmith_run_loads_as_a_failed_call(tmp_path):
    # langsmith-sdk run_trees.RunEndStatus: "cancelled" and "interrupted" are terminal statuses a tracer sends besides
    # success and error (LangGraph marks a run stopped by hand "interrupted"). Such runs were quarantined (unknown
    # status value), so error_rate left out the calls that gave no answer. They load as failed calls.
    base = {"name": "ChatOpenAI", "run_type": "llm", "start_time": "2025-11-20T10:00:00.000000",
            "end_time": "2025-11-20T10:00:01.000000", "parent_run_id": None}
    runs = [{**base, "id": "r1", "trace_id": "r1", "status": "cancelled"},
            {**base, "id": "r2", "trace_id": "r2", "status": "INTERRUPTED"},
            {**base, "id": "r3", "trace_id": "r3", "status": "interrupted", "error": "GraphInterrupt()"},
            {**base, "id": "r4", "trace_id": "r4", "status": "success"}]
    text = "".join(json.dumps(r) + "\n" for r in runs)
    assert _load(tmp_path, "stopped.jsonl", text, "call_id, status, error_type") == [
        ("r1", "error", "cancelled"), ("r2", "error", "interrupted"), ("r3", "error", "GraphInterrupt"),
        ("r4", "ok", None)]
    db = wb.connect(str(tmp_path / "stopped.jsonl.duckdb"))
    assert wb.compute("error_rate", db, period="all").select("value", "n").rows() == [(0.75, 4)]


def test_sentry_time_to_first_token_in_seconds(tmp_path):
    # getsentry/sentry-conventions (relay_conventions GEN_AI__RESPONSE__TIME_TO_FIRST_TOKEN):
    # gen_ai.response.time_to_first_token is the "time in seconds when the first response content chunk arrived in
    # streaming responses", as Sentry's AI integrations set it. ttft_ms was NULL (the value left in attributes).
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.response.streaming": "true", "gen_ai.response.time_to_first_token": 0.4}
    cols = "ttft_ms, attributes->>'gen_ai.response.time_to_first_token'"
    text = _otlp_line(attrs, {}) + "\n"
    assert _load(tmp_path, "sentry.jsonl", text, cols) == [(400.0, None)]
    assert _load_proto(tmp_path, "sentry.pb", text, cols) == [(400.0, None)]
    assert _load(tmp_path, "sentry.json", json.dumps(json.loads(text), indent=1), cols) == [(400.0, None)]


def test_openinference_metadata_names_the_feature_user_session_and_prompt_version(tmp_path):
    # Arize-ai/openinference context attributes (spec/attributes/context, openinference-instrumentation
    # using_metadata / using_attributes): "metadata" is the application's key-value metadata as a JSON string, set on
    # every span of the request; "tag.tags" a list of strings. Its keys were not read: the feature was the service's
    # name, the user, session and prompt version NULL. A dedicated attribute (user.id) still wins; the metadata stays
    # in attributes, and so do the tags (no column).
    md = {"feature": "search", "user_id": "user-7", "session_id": "sess-3", "prompt_version": "v2", "country": "ZA"}
    phoenix = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.token_count.prompt": 30,
               "metadata": json.dumps(md)}
    dedicated = {**phoenix, "user.id": "user-1", "metadata": '{"user_id": "user-7", "variant": "b"}'}
    text = (_otlp_line(phoenix, {"service.name": "bot"}) + "\n"
            + _otlp_line(dedicated, {"service.name": "bot"}, "4444444444444444") + "\n")
    cols = ("call_id, feature, user_id, session_id, prompt_version, variant, "
            "json_extract_string(attributes->>'metadata', '$.country')")
    want = [("3333333333333333", "search", "user-7", "sess-3", "v2", None, "ZA"),
            ("4444444444444444", "bot", "user-1", None, None, "b", None)]
    assert _load(tmp_path, "oi_md.jsonl", text, cols) == want
    assert _load_proto(tmp_path, "oi_md.pb", text, cols) == want
    doc = json.loads(_otlp_line(phoenix, {"service.name": "bot"}))
    doc["resourceSpans"] += json.loads(_otlp_line(dedicated, {"service.name": "bot"}, "4444444444444444"))[
        "resourceSpans"]
    assert _load(tmp_path, "oi_md.json", json.dumps(doc, indent=1), cols) == want


def _langfuse_generation_row(i: int, **kw) -> dict:
    """A row of Langfuse's batch export of its generations table (langfuse/langfuse
    worker/src/features/batchExport/handleBatchExportJob.ts, table "generations": getObservationsTableWithModelData
    gives convertObservation's fields, latency and timeToFirstToken in seconds, the trace's traceName, traceTags and
    userId, the model's prices, then one column per score name)."""
    row = {"id": f"obs-{i}", "traceId": f"tr-{i}", "projectId": "p1", "type": "GENERATION",
           "environment": "production", "parentObservationId": None, "startTime": "2025-11-20T10:00:00.000Z",
           "endTime": "2025-11-20T10:00:02.500Z", "name": "ChatOpenAI", "metadata": {"ls_provider": "openai"},
           "level": "DEFAULT", "statusMessage": None, "version": None, "input": [{"role": "user", "content": "hi"}],
           "output": {"role": "assistant", "content": "hello"}, "modelParameters": {"temperature": 0},
           "completionStartTime": "2025-11-20T10:00:00.400Z", "promptId": "pr-1",
           "createdAt": "2025-11-20T10:00:03.000Z", "updatedAt": "2025-11-20T10:00:03.000Z",
           "usageDetails": {"input": 80, "input_cached_tokens": 20, "output": 20, "total": 120},
           "costDetails": {"input": 0.0001, "output": 0.0002, "total": 0.0003}, "providedCostDetails": {},
           "model": "gpt-4o-mini", "internalModelId": "m-1", "promptName": "support-prompt", "promptVersion": 3,
           "latency": 2.5, "timeToFirstToken": 0.4, "inputCost": 0.0001, "outputCost": 0.0002, "totalCost": 0.0003,
           "inputUsage": 100, "outputUsage": 20, "totalUsage": 120, "traceName": "support-bot",
           "traceTags": ["beta"], "traceTimestamp": "2025-11-20T10:00:00.000Z", "userId": "user-7",
           "toolDefinitionsCount": None, "toolCallsCount": None, "modelId": "m-1", "inputPrice": 1.5e-7,
           "outputPrice": 6e-7, "totalPrice": None, "helpfulness": 0.9}
    row.update(kw)
    return row


_LANGFUSE_EXPORT_COLS = ("call_id, model, feature, user_id, prompt_version, status, error_type, input_tokens, "
                         "cache_read_tokens, output_tokens, cost_usd, latency_ms, ttft_ms, "
                         "attributes->>'langfuse.tags'")
_LANGFUSE_EXPORT_ROWS = [
    ("obs-1", "gpt-4o-mini", "support-bot", "user-7", "3", "ok", None, 100, 20, 20, 0.0003, 2500.0, 400.0,
     '["beta"]'),
    ("obs-2", "gpt-4o-mini", "support-bot", "user-7", "3", "timeout", "Request timed out.", 100, 20, 20, 0.0003,
     2500.0, 400.0, '["beta"]')]


def test_langfuse_generations_export_names_its_trace_as_the_feature(tmp_path):
    # The export's rows carry no trace object: the trace's name is traceName, its tags traceTags (as a trace export's
    # trace.name and trace.tags). The feature was NULL, the tags lost.
    rows = [_langfuse_generation_row(1),
            _langfuse_generation_row(2, level="ERROR", statusMessage="Request timed out.")]
    assert _load(tmp_path, "generations.json", json.dumps(rows), _LANGFUSE_EXPORT_COLS) == _LANGFUSE_EXPORT_ROWS
    text = "".join(json.dumps(r) + "\n" for r in rows)
    assert _load(tmp_path, "generations.jsonl", text, _LANGFUSE_EXPORT_COLS) == _LANGFUSE_EXPORT_ROWS


def _langfuse_csv(rows: list[dict]) -> str:
    """Rows as Langfuse's batch export writes them to CSV (langfuse/langfuse
    packages/shared/src/server/utils/transforms/transformStreamToCsv.ts: the first row's keys as the header, every
    field quoted; stringify.ts stringifyForCsv: text as it is, anything else JSON.stringify'd, so a time, a Date,
    is JSON text with its quotes and usageDetails a JSON object; a null an empty field)."""
    times = ("startTime", "endTime", "completionStartTime", "createdAt", "updatedAt", "traceTimestamp")

    def cell(key, value):
        if value is None:
            return ""
        return value if isinstance(value, str) and key not in times else json.dumps(value, separators=(",", ":"))

    def line(fields):
        return ",".join('"' + f.replace('"', '""') + '"' for f in fields) + "\n"

    names = list(rows[0])
    return line(names) + "".join(line([cell(k, r[k]) for k in names]) for r in rows)


def test_langfuse_generations_export_as_csv_is_read_as_langfuse(tmp_path):
    # The same export saved as CSV needed a mapping, and none could read usageDetails' JSON into tokens. A row whose
    # start is no time is quarantined naming its line and the field, the others load.
    rows = [_langfuse_generation_row(1),
            _langfuse_generation_row(2, level="ERROR", statusMessage="Request timed out."),
            _langfuse_generation_row(3, startTime="soon")]
    p = tmp_path / "generations.csv"
    p.write_text(_langfuse_csv(rows))
    db = wb.connect(str(tmp_path / "csv.duckdb"))
    s = ingest(db, p, progress=False)
    assert (s.read, s.inserted, s.quarantined) == (3, 2, 1)
    got = db.duckdb.execute(f"select {_LANGFUSE_EXPORT_COLS} from calls order by call_id").fetchall()
    assert got == _LANGFUSE_EXPORT_ROWS
    assert db.duckdb.execute("select line_no, field, reason from quarantine").fetchall() == [
        (4, "ts", "unparseable timestamp in ts: 'soon' (expected ISO 8601, epoch seconds/ms/us/ns or [seconds, "
                  "nanos])")]


def test_phoenix_spans_dataframe_saved_as_csv_reads_its_metadata(tmp_path):
    # Arize-ai/phoenix src/phoenix/trace/dsl/query.py _flatten_semantic_conventions: the spans dataframe
    # (px.Client().get_spans_dataframe()) reads the JSON text of "metadata" back into a dict (load_json_strings) and
    # keeps it whole in the attributes.metadata column; pandas' DataFrame.to_csv writes that dict as its Python repr
    # (single quotes). Its keys were not read from the CSV (feature, user, session and prompt version NULL), while
    # the same frame saved as Parquet or JSON lines gave them.
    md = {"feature": "search", "user_id": "user-7", "session_id": "sess-3", "prompt_version": "v2"}
    header = ("name,span_kind,parent_id,start_time,end_time,status_code,status_message,events,context.span_id,"
              "context.trace_id,attributes.openinference.span.kind,attributes.llm.model_name,"
              "attributes.llm.token_count.prompt,attributes.llm.token_count.completion,attributes.metadata\n")
    row = ("ChatCompletion,LLM,,2025-11-24 10:00:00.500+00:00,2025-11-24 10:00:01.700+00:00,OK,,[],5e00000000000002,"
           f'7a000000000000000000000000000001,LLM,gpt-4o,250.0,40.0,"{md!r}"\n')
    cols = "feature, user_id, session_id, prompt_version, input_tokens, output_tokens, latency_ms"
    assert _load(tmp_path, "spans.csv", header + row, cols) == [("search", "user-7", "sess-3", "v2", 250, 40, 1200.0)]


def test_any_agent_call_llm_spans_are_model_calls(tmp_path):
    # mozilla-ai/any-agent src/any_agent/tracing/instrumentation/*.py: a model call's span is named
    # "call_llm {model}" with gen_ai.operation.name "call_llm" (agent_trace.py AgentSpan.is_llm_call). Its operation
    # was loaded as "call_llm", so every latency and error-rate metric of the model calls (operation chat,
    # text_completion, generate_content) left all of them out.
    attrs = {"gen_ai.operation.name": "call_llm", "gen_ai.request.model": "gpt-4.1-mini",
             "gen_ai.usage.input_tokens": 320, "gen_ai.usage.output_tokens": 25}
    text = _otlp_line(attrs, {"service.name": "agent"}) + "\n"
    cols = "operation, input_tokens, latency_ms"
    want = [("chat", 320, 4200.0)]
    assert _load(tmp_path, "any_agent.jsonl", text, cols) == want
    assert _load_proto(tmp_path, "any_agent.pb", text, cols) == want
    assert _load(tmp_path, "any_agent.json", json.dumps(json.loads(text), indent=1), cols) == want
    db = wb.connect(str(tmp_path / "any_agent.jsonl.duckdb"))
    assert wb.latency_p50_ms(db).select("value", "n").rows() == [(4200.0, 1)]


def test_any_agent_input_and_output_cost_make_the_cost(tmp_path):
    # mozilla-ai/any-agent src/any_agent/tracing/agent_trace.py (AgentSpan.add_cost_info, compute_cost_info) sets
    # gen_ai.usage.input_cost and gen_ai.usage.output_cost (USD, from LiteLLM's cost_per_token) and no total; when
    # LiteLLM cannot price the model it writes 0.0 for both. Laminar's and other writers use the same two names. The
    # cost was NULL. Their sum is the cost; a sum of 0 is no price (as the other writers' 0: spans.UNPRICED_ZERO);
    # both stay in attributes.
    attrs = {"gen_ai.operation.name": "call_llm", "gen_ai.request.model": "gpt-4.1-mini",
             "gen_ai.usage.input_tokens": 320, "gen_ai.usage.output_tokens": 25,
             "gen_ai.usage.input_cost": 0.000128, "gen_ai.usage.output_cost": 0.00004}
    unpriced = {**attrs, "gen_ai.request.model": "my-finetune", "gen_ai.usage.input_cost": 0.0,
                "gen_ai.usage.output_cost": 0.0}
    text = _otlp_line(attrs, {}) + "\n" + _otlp_line(unpriced, {}, "4444444444444444") + "\n"
    cols = "call_id, round(cost_usd, 9), attributes->>'gen_ai.usage.input_cost'"
    want = [("3333333333333333", 0.000168, "0.000128"), ("4444444444444444", None, "0.0")]
    assert _load(tmp_path, "cost.jsonl", text, cols) == want
    assert _load_proto(tmp_path, "cost.pb", text, cols) == want
    doc = json.loads(_otlp_line(attrs, {}))
    doc["resourceSpans"] += json.loads(_otlp_line(unpriced, {}, "4444444444444444"))["resourceSpans"]
    assert _load(tmp_path, "cost.json", json.dumps(doc, indent=1), cols) == want


def test_langfuse_sdk_spans_name_their_feature_and_variant_in_metadata(tmp_path):
    # langfuse/langfuse-python langfuse/_client/attributes.py _flatten_and_serialize_metadata: an observation's
    # metadata is written one key per attribute, langfuse.observation.metadata.<key> (a trace's
    # langfuse.trace.metadata.<key>), text as it is. Read in the Langfuse export, metadata.feature and
    # metadata.variant are the feature and variant, before the trace's name; from the SDK's spans they were not
    # read (the feature was the trace's name, the variant NULL).
    attrs = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
             "langfuse.trace.name": "support-chat", "langfuse.trace.metadata.feature": "refunds",
             "langfuse.observation.metadata.variant": "b", "langfuse.observation.metadata.region": "eu"}
    cols = "feature, variant, attributes->>'langfuse.observation.metadata.region'"
    want = [("refunds", "b", "eu")]
    text = _otlp_line(attrs, {"service.name": "api"}) + "\n"
    assert _load(tmp_path, "lf_md.jsonl", text, cols) == want
    assert _load(tmp_path, "lf_md.json", json.dumps(json.loads(text), indent=1), cols) == want


def test_langfuse_export_of_litellm_otel_spans_aliases_the_call_type(tmp_path):
    # A generation Langfuse ingested over OpenTelemetry keeps the span's attributes in metadata.attributes
    # (langfuse/langfuse OtelIngestionProcessor; zborek.Langfuse ObservationOtelMetadata reads them there); LiteLLM's
    # OpenTelemetry spans write their call type as gen_ai.operation.name (acompletion). The exported generation loaded
    # as operation "acompletion", not chat as the same span read from OTLP (spans.OPERATION_ALIASES).
    doc = {"trace": {"id": "tr-1", "name": "litellm-proxy"},
           "observations": [{"id": "g-1", "traceId": "tr-1", "type": "GENERATION", "model": "gpt-4o",
                             "startTime": "2025-11-20T10:00:00Z", "endTime": "2025-11-20T10:00:01Z",
                             "usageDetails": {"input": 36, "output": 48, "total": 84},
                             "metadata": {"attributes": {"gen_ai.operation.name": "acompletion",
                                                         "gen_ai.system": "openai"}}}]}
    assert _load(tmp_path, "lf_litellm.json", json.dumps(doc), "operation, provider, input_tokens") == [
        ("chat", "openai", 36)]


def test_langfuse_csv_export_keeps_a_status_message_of_json_as_written(tmp_path):
    # The export writes text as it is (stringifyForCsv): a failed generation's status message that holds the
    # provider's error body is text that looks like JSON. It was read as JSON and written back re-spaced; only the
    # fields that are objects or lists (usageDetails, metadata, traceTags...) are JSON.
    body = '{"error": {"message": "Rate limit reached", "type": "rate_limit"}}'
    p = tmp_path / "generations.csv"
    p.write_text(_langfuse_csv([_langfuse_generation_row(1, level="ERROR", statusMessage=body)]))
    db = wb.connect(str(tmp_path / "csv.duckdb"))
    assert ingest(db, p, progress=False).inserted == 1
    assert db.duckdb.execute("select status, error_type, input_tokens from calls").fetchall() == [
        ("error", body, 100)]


def test_langsmith_opentelemetry_prompt_and_retriever_runs_are_not_model_calls(tmp_path):
    # langchain-ai/langsmith-sdk python/langsmith/_internal/otel/_otel_exporter.py: gen_ai.operation.name comes from
    # the run type through WELL_KNOWN_OPERATION_NAMES, which writes "chat" for a prompt run (a template being
    # formatted) and "embeddings" for a retriever run; langsmith.span.kind keeps the run type. Those runs loaded as
    # model calls (a prompt run as a chat call of no model and a millisecond's latency), unlike the same runs read
    # from LangSmith's own export (operation prompt, retriever). The run type decides when the span carries it.
    llm = {"gen_ai.operation.name": "chat", "langsmith.span.kind": "llm", "gen_ai.system": "openai",
           "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 120}
    prompt = {"gen_ai.operation.name": "chat", "langsmith.span.kind": "prompt", "gen_ai.system": "langchain"}
    retriever = {"gen_ai.operation.name": "embeddings", "langsmith.span.kind": "retriever",
                 "gen_ai.system": "langchain"}
    text = "".join(_otlp_line(a, {}, sid) + "\n" for a, sid in ((llm, "3333333333333333"),
                                                                (prompt, "4444444444444444"),
                                                                (retriever, "5555555555555555")))
    want = [("3333333333333333", "chat"), ("4444444444444444", "prompt"), ("5555555555555555", "retriever")]
    assert _load(tmp_path, "ls_ops.jsonl", text, "call_id, operation") == want
    assert _load_proto(tmp_path, "ls_ops.pb", text, "call_id, operation") == want
    doc = {"resourceSpans": [json.loads(line)["resourceSpans"][0] for line in text.splitlines()]}
    assert _load(tmp_path, "ls_ops.json", json.dumps(doc, indent=1), "call_id, operation") == want


def test_langsmith_opentelemetry_spans_read_their_metadata(tmp_path):
    # langchain-ai/langsmith-sdk python/langsmith/_internal/otel/_otel_exporter.py _set_span_attributes: every key of
    # the run's extra.metadata is written as langsmith.metadata.<key>. LangSmith's own export reads metadata user_id,
    # thread_id (the thread), feature, variant and prompt_version into their columns (workbench.io.langsmith); from
    # its spans they were NULL (the feature the service's name).
    attrs = {"gen_ai.operation.name": "chat", "langsmith.span.kind": "llm", "gen_ai.system": "openai",
             "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 120,
             "langsmith.metadata.user_id": "user-7", "langsmith.metadata.thread_id": "thread-3",
             "langsmith.metadata.feature": "search", "langsmith.metadata.variant": "b",
             "langsmith.metadata.prompt_version": "v2", "langsmith.metadata.ls_model_name": "gpt-4o-mini"}
    cols = ("user_id, session_id, feature, variant, prompt_version, "
            "attributes->>'langsmith.metadata.ls_model_name'")
    want = [("user-7", "thread-3", "search", "b", "v2", "gpt-4o-mini")]
    text = _otlp_line(attrs, {"service.name": "api"}) + "\n"
    assert _load(tmp_path, "ls_md.jsonl", text, cols) == want
    assert _load(tmp_path, "ls_md.json", json.dumps(json.loads(text), indent=1), cols) == want
