"""Tests for workbench.io.ingest: OTLP spans, mapped JSONL/CSV/Parquet, quarantine reasons, dedup, lineage, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.cli import main as cli_main
from workbench.io.ingest import IngestError, IngestSummary, ingest, load_mapping

DATA = Path(__file__).parent / "data"
OTEL = DATA / "otel"
MAPS = DATA / "mappings"
COUNTS = ("read", "inserted", "duplicates", "quarantined")


@pytest.fixture
def db():
    d = wb.connect(":memory:")
    yield d
    d.close()


def rows(db, sql, params=None):
    """Rows as dicts (db.sql goes through polars, which cannot take the JSON columns)."""
    cur = db.duckdb.execute(sql, params or [])
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def call(db, call_id):
    (r,) = rows(db, "select * from calls where call_id = ?", [call_id])
    return r


def counts(db):
    return {t: db.duckdb.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("calls", "feedback", "events", "quarantine", "ingest_runs")}


def check_invariant(s: IngestSummary):
    assert s.read == s.inserted + s.duplicates + s.quarantined
    assert sum(s.reasons.values()) == s.quarantined
    for f in s.files:
        assert f["read"] == f["inserted"] + f["duplicates"] + f["quarantined"], f
    for k in COUNTS:
        assert getattr(s, k) == sum(f[k] for f in s.files)


def ts(*a):
    return dt.datetime(*a)


# ------------------------------------------------------------------------------------------------------ OTLP spans


def test_otel_openai_chat_span_every_column(db):
    s = ingest(db, OTEL / "openai_chat.jsonl", progress=False)
    assert s.as_dict() == {"read": 1, "inserted": 1, "duplicates": 0, "quarantined": 0, "reasons": {}}
    r = call(db, "eee19b7ec3c1b174")  # hex ids are lower-cased
    assert r["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert r["parent_id"] is None  # "" parentSpanId = root span
    assert r["ts"] == ts(2025, 11, 20, 10, 0, 0)
    assert r["end_ts"] == ts(2025, 11, 20, 10, 0, 1, 500000)
    assert r["latency_ms"] == 1500.0
    assert r["ttft_ms"] == 250.0  # gen_ai.response.time_to_first_chunk is in seconds
    assert (r["operation"], r["name"], r["provider"]) == ("chat", "chat gpt-4o", "openai")
    assert (r["model"], r["request_model"]) == ("gpt-4o-2024-08-06", "gpt-4o")
    assert (r["input_tokens"], r["output_tokens"]) == (1200, 300)
    assert (r["cache_read_tokens"], r["cache_write_tokens"], r["reasoning_tokens"]) == (1000, None, 120)
    assert (r["feature"], r["environment"]) == ("support-assistant", "production")  # service.name, resource env
    assert (r["prompt_version"], r["variant"], r["user_id"], r["session_id"]) == ("v7", "treatment", "u-1", "conv-42")
    assert (r["status"], r["error_type"], r["finish_reason"]) == ("ok", None, "stop")
    attrs = json.loads(r["attributes"])
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.response.id"] == "chatcmpl-123"
    assert attrs["resource"] == {"service.version": "2.3.1"}
    assert attrs["otel.scope.name"] == "opentelemetry.instrumentation.openai_v2"
    assert "gen_ai.usage.input_tokens" not in attrs and "service.name" not in attrs.get("resource", {})
    (run,) = rows(db, "select * from ingest_runs")
    assert r["ingest_run_id"] == run["run_id"] == s.files[0]["run_id"]
    assert (run["format"], run["target_table"], run["rows_read"], run["rows_inserted"]) == ("otel", "calls", 1, 1)
    import hashlib

    assert run["content_hash"] == hashlib.sha256((OTEL / "openai_chat.jsonl").read_bytes()).hexdigest()
    assert run["workbench_version"] == wb.__version__


def test_otel_anthropic_span_with_gen_ai_system_and_first_token_event(db):
    ingest(db, OTEL / "anthropic_system.jsonl", progress=False)
    r = call(db, "b7ad6b7169203331")
    assert r["provider"] == "anthropic"  # the older gen_ai.system
    assert r["model"] == r["request_model"] == "claude-sonnet-4-5"  # no response model: falls back to the request
    assert r["ttft_ms"] == 400.0  # gen_ai.first_token event 0.4 s after the span start
    assert r["cache_write_tokens"] == 4000 and r["cache_read_tokens"] is None
    assert (r["feature"], r["environment"], r["user_id"]) == ("summariser", "staging", "u-9")  # app.feature, old env
    assert (r["status"], r["finish_reason"], r["latency_ms"]) == ("ok", "end_turn", 2000.0)
    events = json.loads(r["attributes"])["otel.events"]
    assert [e["name"] for e in events] == ["gen_ai.choice"]  # the first-token event became ttft_ms


def test_otel_openinference_span(db):
    ingest(db, OTEL / "openinference.jsonl", progress=False)
    r = call(db, "1a2b3c4d5e6f7081")
    assert (r["operation"], r["provider"], r["model"]) == ("chat", "openai", "gpt-4o-mini")  # span kind LLM -> chat
    assert (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"]) == (640, 64, 512)
    assert (r["session_id"], r["user_id"], r["latency_ms"]) == ("sess-7", "u-3", 750.0)
    assert json.loads(r["attributes"])["input.value"] == "What is the refund policy?"


def test_otel_status_mapping_error_timeout_blocked(db):
    s = ingest(db, OTEL / "errors.jsonl", progress=False)  # three spans on one line
    assert s.read == s.inserted == 3
    got = {r["call_id"]: (r["status"], r["error_type"]) for r in rows(db, "select * from calls")}
    assert got == {
        "e000000000000001": ("error", "openai.RateLimitError"),  # status.code 2
        "e000000000000002": ("timeout", "httpx.ReadTimeout"),  # error.type contains timeout
        "e000000000000003": ("blocked", None),  # finish reason content_filter
    }
    assert call(db, "e000000000000002")["latency_ms"] == 30000.0


def test_otel_tool_span_with_parent(db):
    ingest(db, OTEL / "agent_tool.jsonl", progress=False)
    agent, tool = call(db, "a000000000000001"), call(db, "a000000000000002")
    assert (agent["operation"], agent["parent_id"], agent["feature"]) == ("invoke_agent", None, "travel-agent")
    assert (tool["operation"], tool["name"], tool["parent_id"]) == ("execute_tool", "get_weather", "a000000000000001")
    assert tool["trace_id"] == agent["trace_id"]
    assert tool["feature"] == "trip_planner"  # workbench.feature beats service.name
    attrs = json.loads(tool["attributes"])
    assert attrs["otel.span.name"] == "execute_tool get_weather" and attrs["gen_ai.tool.call.id"] == "call_abc"


def test_otel_pretty_printed_single_object(db):
    s = ingest(db, OTEL / "pretty.json", progress=False)
    assert s.as_dict()["inserted"] == 1 and s.files[0]["format"] == "otel"
    r = call(db, "c000000000000001")
    assert (r["operation"], r["model"], r["input_tokens"], r["latency_ms"]) == ("embeddings", "text-embedding-3-small",
                                                                                12, 50.0)


def test_otel_malformed_lines_and_spans_are_quarantined_with_lines(db):
    s = ingest(db, OTEL / "malformed.jsonl", progress=False)
    check_invariant(s)
    # 5 spans (one repeats a span id of line 1) + 2 unreadable lines; the blank line 3 is not a record
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (7, 1, 1, 5)
    q = {(r["line_no"], r["field"], r["reason"]) for r in rows(db, "select * from quarantine")}
    assert q == {
        (2, None, "invalid JSON"),
        (4, None, "not an OTLP trace export (no resourceSpans)"),
        (5, "ts", "missing required field ts (source field 'startTimeUnixNano')"),
        (5, "end_ts", "end before start: end_ts 2025-11-20 16:00:01 < ts 2025-11-20 16:00:02"),
        (5, "output_tokens", "negative token count in output_tokens: -5"),
    }
    raws = [r["raw"] for r in rows(db, "select raw from quarantine where line_no = 5 order by field")]
    assert all(json.loads(r)["spanId"].startswith("d00000000000000") for r in raws)  # the span itself is kept
    assert call(db, "d000000000000001")["name"] == "chat ok"  # first occurrence wins


def test_long_lines_pick_the_line_limit_and_one_over_the_largest_is_quarantined(db, tmp_path, monkeypatch):
    import workbench.io.ingest as ing

    # one big OTLP batch line among small ones (the chunk used to measure lines is made small too)
    monkeypatch.setattr(ing, "_HASH_CHUNK", 4096)
    small = (OTEL / "openai_chat.jsonl").read_text().strip()
    line = json.loads((OTEL / "errors.jsonl").read_text().splitlines()[0])
    spans = line["resourceSpans"][0]["scopeSpans"][0]["spans"]
    line["resourceSpans"][0]["scopeSpans"][0]["spans"] = [
        dict(spans[i % 3], spanId=f"{i + 1:016x}") for i in range(300)]
    big = json.dumps(line)
    p = tmp_path / "big.jsonl"
    p.write_text(f"{small}\n{big}\n{{bad\n")
    monkeypatch.setattr(ing, "LINE_BYTES_STEPS", (8 * 1024, 64 * 1024, len(big) * 2))
    s = ingest(db, p, progress=False)
    check_invariant(s)
    assert (s.read, s.inserted, s.quarantined) == (302, 301, 1)
    assert rows(db, "select line_no, reason from quarantine") == [{"line_no": 3, "reason": "invalid JSON"}]
    # over the largest limit: quarantined as too long (never skipped), line numbers stay right
    monkeypatch.setattr(ing, "LINE_BYTES_STEPS", (8 * 1024, 16 * 1024))
    s = ingest(db, p, progress=False)
    check_invariant(s)
    assert (s.read, s.duplicates, s.quarantined) == (3, 1, 2) and s.reasons.get("line too long") == 1
    q = rows(db, "select line_no, reason from quarantine where run_id = ? order by line_no", [s.files[0]["run_id"]])
    assert [r["line_no"] for r in q] == [2, 3] and q[0]["reason"].startswith("line too long")


def _otlp_line(*spans):
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeSpans": [{"spans": list(spans)}]}]}) + "\n"


def _span(trace, span, parent=None, name="chat"):
    d = {"traceId": trace, "spanId": span, "name": name, "startTimeUnixNano": "1763632800000000000",
         "endTimeUnixNano": "1763632801000000000"}
    if parent is not None:
        d["parentSpanId"] = parent
    return d


def test_otel_ids_in_base64_are_read_as_the_hex_of_their_bytes(db, tmp_path):
    # Protobuf's generic JSON mapping (Go's protojson, Python's MessageToJson) writes the id bytes in base64, not hex.
    # Before, the reader lower-cased them: "Wmn8F4uo+Dc=" became "wmn8f4uo+dc=", not the span's id, and two ids that
    # differ in case only became one: the second span was dropped as a duplicate.
    import base64

    trace = base64.b64encode(bytes(range(16))).decode()
    a = base64.b64encode(bytes.fromhex("0101010101010141")).decode()  # "AQEBAQEBAUE="
    b = a[0] + a[1].lower() + a[2:]  # "AqEBAQEBAUE=": another span, whose id differs from a's in case only
    root = base64.b64encode(bytes(range(8, 16))).decode()
    assert a.lower() == b.lower() and a != b
    f = tmp_path / "b64.jsonl"
    f.write_text(_otlp_line(_span(trace, root, parent="AAAAAAAAAAA=", name="agent"), _span(trace, a, parent=root),
                            _span(trace, b, parent=root)))
    s = ingest(db, f, progress=False)
    assert (s.inserted, s.duplicates, s.quarantined) == (3, 0, 0)
    got = {r["call_id"]: r for r in rows(db, "select call_id, trace_id, parent_id from calls")}
    other = base64.b64decode(b).hex()
    assert set(got) == {"08090a0b0c0d0e0f", "0101010101010141", other}
    assert {r["trace_id"] for r in got.values()} == {bytes(range(16)).hex()}
    assert got["0101010101010141"]["parent_id"] == got[other]["parent_id"] == "08090a0b0c0d0e0f"
    assert got["08090a0b0c0d0e0f"]["parent_id"] is None  # an all-zero id is no parent (OTLP: invalid id)


@pytest.mark.parametrize("raw", ["5B8EFFF798038103D269B633813FC60C", "00f067aa0ba902b7", "AQIDBAUGBwg=",
                                 "AAECAwQFBgcICQoLDA0ODw==", " 0102 ", "0000000000000000", "", "span-Ab1",
                                 "AQIDBAUGBwh=", "!!!!!!!!!!!=", "AQIDBAUGBwgJ", "AAAAAAAAAAA=",
                                 "0x00F067AA0BA902B7", "0x0000000000000000", "0x", "0xz1"])
def test_otel_json_ids_are_read_as_the_record_formats_read_them(db, raw):
    # one rule for an OTLP id, in SQL for the OTLP reader and in Python (spans.hex_id) for the record formats
    from workbench.io.ingest import _otel_id
    from workbench.io.spans import hex_id

    got = db.duckdb.execute(f"SELECT {_otel_id('x')} FROM (SELECT ? AS x)", [raw]).fetchone()[0]
    assert got == hex_id(raw)


def test_each_span_format_reads_its_own_attribute_names():
    """A column's attribute names are worked out once per format (spans._names_plan), not per span: a span mapped
    with a format's own names, then with the shared ones only, then with the format's again, reads each time what
    that format names, and keeps the rest in attributes. (The Vercel AI SDK's names are shared ones now: its spans
    give the same row from OTLP.)"""
    from workbench.io.spans import Span, span_values

    own = {"model": ("x.model.id",), "input_tokens": ("x.usage.promptTokens",)}
    span = Span("ab" * 8, "cd" * 8, None, "x", 1_763_632_800_000_000_000, None,
                {"x.model.id": "m-v", "x.usage.promptTokens": 7})
    for extra, want in [(own, ("m-v", "7")), (None, (None, None)), (own, ("m-v", "7"))]:
        v = span_values(span, extra)
        assert (v["model"], v["input_tokens"]) == want
        assert ("x.model.id" in v["attributes"], "x.usage.promptTokens" in v["attributes"]) == ((extra is None,) * 2)
    vercel = Span("ab" * 8, "cd" * 8, None, "x", 1_763_632_800_000_000_000, None,
                  {"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "m-v", "ai.usage.promptTokens": 7})
    assert (span_values(vercel)["model"], span_values(vercel)["input_tokens"]) == ("m-v", "7")
    other = Span("ab" * 8, "cd" * 8, None, "x", 1_763_632_800_000_000_000, None, {"ai.model.id": "m-v"})
    assert span_values(other)["model"] is None  # ai.* names are the SDK's: read with its operation id, as in SQL


_OPERATION_CASES = [
    ({"gen_ai.operation.name": "chat", "http.method": "POST"}, "chat"),
    ({"gen_ai.request.model": "gpt-4o"}, None),  # a model call that does not name its operation: as before
    ({"llm.model_name": "m", "openinference.span.kind": "LLM"}, "chat"),
    ({"openinference.span.kind": "RETRIEVER"}, "retriever"),
    ({"llm.request.type": "chat", "gen_ai.system": "openai"}, "chat"),  # OpenLLMetry's model call
    ({"llm.request.type": "embedding"}, "embeddings"),
    ({"traceloop.span.kind": "workflow", "traceloop.workflow.name": "answer"}, "workflow"),
    ({"traceloop.span.kind": "agent"}, "invoke_agent"),
    ({"traceloop.span.kind": "tool"}, "execute_tool"),
    ({"ai.operationId": "ai.generateText", "ai.model.id": "gpt-4o"}, "chain"),  # the Vercel AI SDK's outer span
    ({"ai.operationId": "ai.generateText.doGenerate", "gen_ai.system": "openai"}, "chat"),
    ({"ai.operationId": "ai.embedMany.doEmbed"}, "embeddings"),
    ({"ai.operationId": "ai.toolCall", "ai.toolCall.name": "search"}, "execute_tool"),
    ({"gen_ai.tool.name": "search"}, "execute_tool"),
    ({"http.method": "GET", "http.route": "/chat"}, "other"),  # the web server's span of the same trace
    ({"db.system": "postgresql"}, "other"),
    ({"mlflow.spanType": '"CHAT_MODEL"', "mlflow.traceRequestId": '"tr-1"'}, "chat"),  # MLflow: JSON-quoted values
    ({"mlflow.spanType": '"RETRIEVER"'}, "retriever"),
    ({"mlflow.traceRequestId": '"tr-1"'}, None),
    ({"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o"}, "chat"),
    ({"langfuse.observation.type": "span"}, "span"),
    ({"langsmith.span.kind": "llm"}, "chat"),
    ({"lmnr.span.type": "LLM"}, "chat"),
    ({"openinference.span.kind": ""}, None),  # an empty kind: a span of that convention all the same
    ({"span.name": "chat gpt-4o"}, "chat"),  # no attribute of a convention, but the GenAI span name
    ({"span.name": "execute_tool lookup"}, "execute_tool"),
    ({"span.name": "chatter"}, "other"),
    ({}, "other"),
]


@pytest.mark.parametrize("attrs, want", _OPERATION_CASES)
def test_a_span_without_an_operation_name_gets_the_one_its_conventions_give(db, tmp_path, attrs, want):
    # Before, every span without gen_ai.operation.name or an OpenInference kind was a model call: the HTTP and
    # database spans of an exported trace counted in error_rate and latency, the Vercel AI SDK's outer span counted
    # each call twice, and OpenLLMetry's workflow and task spans counted as model calls.
    from workbench.io.spans import default_operation

    attrs = dict(attrs)
    name = attrs.pop("span.name", "GET /health")  # (the span's own name, not an attribute)
    if "gen_ai.operation.name" not in attrs:  # (the name, when given, wins before the default is looked for)
        assert default_operation(attrs, name) == want
    f = tmp_path / "one.jsonl"
    f.write_text(_otlp_line({**_span("0af7651916cd43dd8448eb211c80319c", "00f067aa0ba902b7", name=name),
                             "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}))
    assert ingest(db, f, progress=False).inserted == 1
    assert call(db, "00f067aa0ba902b7")["operation"] == want
    if "langfuse.observation.model.name" in attrs:  # Langfuse's OpenTelemetry SDK names the model there
        assert call(db, "00f067aa0ba902b7")["model"] == attrs["langfuse.observation.model.name"]


def test_spans_of_no_genai_convention_are_kept_but_not_counted_as_model_calls(db, tmp_path):
    f = tmp_path / "trace.jsonl"
    trace = "0af7651916cd43dd8448eb211c80319c"
    http = {**_span(trace, "00000000000000a1", name="POST /ask"), "status": {"code": 2},
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": "500"}}]}
    llm = {**_span(trace, "00000000000000a2", parent="00000000000000a1"), "attributes": [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]}
    f.write_text(_otlp_line(http, llm))
    assert ingest(db, f, progress=False).inserted == 2
    er = wb.error_rate(db, by=(), period="all")
    assert (er["n"][0], er["value"][0]) == (1, 0.0)  # the failing web request is not a failed model call
    assert wb.error_rate(db, by=(), period="all", operation="all")["n"][0] == 2


def test_otlp_json_lines_with_the_proto_field_names_load_like_camel_case(db, tmp_path):
    # protobuf's JSON printer with preserving_proto_field_name=True (Python's MessageToJson/MessageToDict) writes
    # resource_spans, scope_spans, span_id, string_value... Before, every line was quarantined as "not an OTLP trace
    # export (no resourceSpans)".
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "support-bot"
    sp = rs.scope_spans.add().spans.add()
    sp.trace_id, sp.span_id, sp.name = bytes(range(16)), bytes(range(1, 9)), "chat gpt-4o"
    sp.start_time_unix_nano, sp.end_time_unix_nano = 1763632800 * 10**9, 1763632801 * 10**9 + 250 * 10**6
    for key, value in (("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "gpt-4o")):
        a = sp.attributes.add()
        a.key, a.value.string_value = key, value
    a = sp.attributes.add()
    a.key, a.value.int_value = "gen_ai.usage.input_tokens", 120
    sp.status.code = 2  # STATUS_CODE_ERROR
    snake, camel = tmp_path / "snake.jsonl", tmp_path / "camel.jsonl"
    snake.write_text(MessageToJson(req, preserving_proto_field_name=True, indent=None) + "\n")
    camel.write_text(MessageToJson(req, indent=None) + "\n")
    assert '"resource_spans"' in snake.read_text() and '"resourceSpans"' in camel.read_text()
    s = ingest(db, snake, progress=False)
    assert (s.inserted, s.quarantined) == (1, 0)
    cols = "call_id, trace_id, operation, model, input_tokens, latency_ms, status, feature"
    got = rows(db, f"select {cols} from calls")
    db2 = wb.connect(":memory:")
    ingest(db2, camel, progress=False)
    assert got == rows(db2, f"select {cols} from calls")
    assert got[0]["call_id"] == "0102030405060708" and got[0]["status"] == "error" and got[0]["input_tokens"] == 120


def test_otlp_json_lines_in_both_spellings_load_whatever_the_first_line(tmp_path):
    # a file appended to by two writers (the Collector's camelCase, a Python exporter's proto field names): the first
    # line chose the reader, so the same lines loaded whole in one order and lost the snake_case ones to quarantine
    # ("not an OTLP trace export") in the other
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def export(span_byte: int) -> ExportTraceServiceRequest:
        req = ExportTraceServiceRequest()
        sp = req.resource_spans.add().scope_spans.add().spans.add()
        sp.trace_id, sp.span_id, sp.name = bytes(range(16)), bytes([span_byte] * 8), "chat gpt-4o"
        sp.start_time_unix_nano, sp.end_time_unix_nano = 1763632800 * 10**9, 1763632801 * 10**9
        a = sp.attributes.add()
        a.key, a.value.string_value = "gen_ai.request.model", "gpt-4o"
        return req

    camel = MessageToJson(export(1), indent=None)
    snake = MessageToJson(export(2), preserving_proto_field_name=True, indent=None)
    filler = [MessageToJson(export(10 + i), indent=None) for i in range(3)]
    for name, lines in (("camel_first", [camel, *filler, snake]), ("snake_first", [snake, *filler, camel])):
        f = tmp_path / f"{name}.jsonl"
        f.write_text("\n".join(lines) + "\n")
        db = wb.connect(":memory:")
        try:
            s = ingest(db, f, progress=False)
            assert (s.read, s.inserted, s.quarantined) == (5, 5, 0), (name, s)
            ids = {r["call_id"] for r in rows(db, "select call_id from calls")}
            assert {"0101010101010101", "0202020202020202"} <= ids
        finally:
            db.close()


def test_otel_mapping_overrides_attribute_names(db, tmp_path):
    line = json.loads((OTEL / "agent_tool.jsonl").read_text().splitlines()[1])
    attrs = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    attrs.append({"key": "team.product", "value": {"stringValue": "planner-pro"}})
    (tmp_path / "t.jsonl").write_text(json.dumps(line) + "\n")
    ingest(db, tmp_path / "t.jsonl", format="otel", mapping=MAPS / "otel_override.toml", progress=False)
    r = call(db, "a000000000000002")
    assert (r["feature"], r["variant"]) == ("planner-pro", "control")  # overridden name; default for a missing one
    assert json.loads(r["attributes"]).get("team.product") is None  # used, so not repeated in attributes


# ---------------------------------------------------------------------------------------------- mapped formats


def test_csv_calls_mapping_units_formats_hash_and_every_reason(db):
    s = ingest(db, MAPS / "calls.csv", mapping=MAPS / "calls_csv.toml", progress=False)
    check_invariant(s)
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (9, 3, 0, 6)
    good = rows(db, "select * from calls order by ts, call_id")
    assert [(r["ts"], r["latency_ms"], r["input_tokens"], r["output_tokens"], r["feature"], r["status"], r["provider"])
            for r in good] == [
        (ts(2025, 11, 20, 9, 0, 0), 1250.0, 1500, 200, "support", "ok", "openai"),
        (ts(2025, 11, 20, 9, 0, 5), 400.0, 900, 50, "unknown", "ok", "openai"),  # default; status lower-cased
        (ts(2025, 11, 20, 9, 0, 5), 400.0, 900, 50, "unknown", "ok", "openai"),
    ]
    # two identical rows are both kept: the hash includes the occurrence number
    assert len({r["call_id"] for r in good}) == 3 and all(len(r["call_id"]) == 64 for r in good)
    q = {r["line_no"]: (r["field"], r["reason"]) for r in rows(db, "select * from quarantine")}
    assert q == {
        5: ("input_tokens", "non-numeric value in input_tokens: 'abc'"),
        6: (None, "wrong number of fields: Expected Number of Columns: 7 Found: 6"),
        7: ("ts", "unparseable timestamp in ts: '31/02/2025 09:03:00' (expected format %d/%m/%Y %H:%M:%S)"),
        8: ("status", "unknown status value 'done' in status (expected ok, error, timeout or blocked)"),
        9: ("output_tokens", "negative token count in output_tokens: -3"),
        10: ("latency_ms", "negative latency in latency_ms: -500.0 ms (end before start?)"),
    }
    assert rows(db, "select raw from quarantine where line_no = 6")[0]["raw"] == "20/11/2025 09:02:00;10;10;0.5;gpt-4o;support"
    assert json.loads(rows(db, "select raw from quarantine where line_no = 5")[0]["raw"])["ContextTokens"] == "abc"
    assert s.reasons["wrong number of fields"] == 1 and s.reasons["unknown status value: status"] == 1


def test_reloading_the_same_file_is_all_duplicates(db):
    first = ingest(db, MAPS / "calls.csv", mapping=MAPS / "calls_csv.toml", progress=False)
    before = counts(db)
    again = ingest(db, MAPS / "calls.csv", mapping=MAPS / "calls_csv.toml", progress=False)
    check_invariant(again)
    assert (again.inserted, again.duplicates, again.quarantined) == (0, first.inserted, first.quarantined)
    after = counts(db)
    assert after["calls"] == before["calls"]
    assert after["ingest_runs"] == before["ingest_runs"] + 1  # every load is recorded
    otel = ingest(db, [OTEL / "errors.jsonl", OTEL / "errors.jsonl"], progress=False)
    assert [(f["inserted"], f["duplicates"]) for f in otel.files] == [(3, 0), (0, 3)]


def test_jsonl_calls_nested_paths_epoch_seconds_and_reasons(db):
    s = ingest(db, MAPS / "calls.jsonl", mapping=MAPS / "calls_jsonl.toml", progress=False)
    check_invariant(s)
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (7, 2, 1, 4)
    r1 = call(db, "r-1")
    assert r1["ts"] == ts(2025, 11, 20, 10, 0, 0, 500000)  # fractional epoch seconds
    assert r1["latency_ms"] == 1500.0  # derived from end_ts - ts
    assert (r1["input_tokens"], r1["output_tokens"], r1["cache_read_tokens"]) == (1000, 120, 800)  # usage.input ...
    assert (r1["feature"], r1["status"]) == ("support", "ok")
    assert json.loads(r1["attributes"]) == {"region": "eu"}
    r2 = call(db, "r-2")
    assert (r2["status"], r2["error_type"], r2["feature"]) == ("error", "RateLimitError", "unknown")
    q = {r["line_no"]: (r["field"], r["reason"]) for r in rows(db, "select * from quarantine")}
    assert q == {
        3: ("end_ts", "end before start: end_ts 2025-11-20 10:01:30 < ts 2025-11-20 10:01:40"),
        4: ("input_tokens", "out of range for input_tokens (BIGINT): '1e30'"),
        5: ("input_tokens", "not an integer in input_tokens: '12.5'"),
        6: ("call_id", "missing required field call_id (source field 'id')"),
    }
    assert rows(db, "select raw from quarantine where line_no = 6")[0]["raw"] == '{"time": 1763632940}'


def test_feedback_csv_epoch_ms_hashed_key_and_unknown_kind(db):
    s = ingest(db, MAPS / "feedback.csv", mapping=MAPS / "feedback_csv.toml", progress=False)
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (5, 4, 0, 1)
    got = rows(db, "select call_id, user_id, ts, kind, value from feedback order by ts, value")
    assert got[0] == {"call_id": "r-1", "user_id": "u-1", "ts": ts(2025, 11, 20, 10, 1, 40), "kind": "thumbs",
                      "value": 1.0}
    assert [r["value"] for r in got] == [1.0, 1.0, 0.0, 4.5]
    (q,) = rows(db, "select * from quarantine")
    assert (q["line_no"], q["target_table"], q["field"]) == (6, "feedback", "kind")
    assert q["reason"] == "unknown kind value 'smile' in kind (expected thumbs, accept, edit, copy or rating)"


def test_integer_float_and_boolean_constants(db, tmp_path):
    src = tmp_path / "evals.jsonl"
    src.write_text('{"id": "c1", "m": "faithfulness", "v": 0.5}\n{"id": "c2", "m": "faithfulness", "v": 1}\n')
    m = tmp_path / "evals.toml"
    m.write_text('table = "evals"\n[columns]\ncall_id = "id"\nmetric = "m"\nvalue = "v"\n'
                 'evaluator = { value = "judge" }\nevaluator_version = { value = 3 }\nrepeat = { value = 0 }\n')
    s = ingest(db, src, mapping=m, progress=False)
    assert s.as_dict() == {"read": 2, "inserted": 2, "duplicates": 0, "quarantined": 0, "reasons": {}}
    got = rows(db, "select call_id, value, evaluator_version, repeat from evals order by call_id")
    assert [(r["call_id"], r["value"], r["evaluator_version"], r["repeat"]) for r in got] == [
        ("c1", 0.5, "3", 0), ("c2", 1.0, "3", 0)]
    # float and boolean constants, and a default that is a number
    calls = tmp_path / "calls.toml"
    calls.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { value = 1763632800, unit = "s" }\n'
                     'status = { value = "ok" }\ncost_usd = { value = 0.25 }\nfallback = { value = true }\n'
                     'attempt = { field = "missing", default = 2, optional = true }\nlatency_ms = { value = 1.5, unit = "s" }\n')
    s = ingest(db, src, mapping=calls, progress=False)
    assert (s.inserted, s.quarantined) == (2, 0)
    r = call(db, "c1")
    assert (r["cost_usd"], r["fallback"], r["attempt"], r["latency_ms"]) == (0.25, True, 2, 1500.0)
    assert r["ts"] == ts(2025, 11, 20, 10, 0)
    # a constant that fails its check is quoted in the reason like any value
    m.write_text(m.read_text().replace("repeat = { value = 0 }", "repeat = { value = 1.5 }"))
    s = ingest(db, src, mapping=m, progress=False)
    assert s.reasons == {"not an integer: repeat": 2}
    assert {r["reason"] for r in rows(db, "select reason from quarantine")} == {"not an integer in repeat: '1.5'"}
    m.write_text(m.read_text().replace("repeat = { value = 1.5 }", "repeat = { value = false }"))
    assert ingest(db, src, mapping=m, progress=False).reasons == {"non-numeric value: repeat": 2}


def test_an_optional_field_may_be_absent_from_a_csv_or_parquet_header_as_from_every_jsonl_record(db, tmp_path):
    # one mapping for a tool's exports: an export without the optional column loads, with the column null (or its
    # default), whatever the file's format; a required field absent from the header is still an error naming it
    import polars as pl

    m = tmp_path / "calls.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = "t"\nstatus = { value = "ok" }\n'
                 'model = { field = "model", optional = true }\n'
                 'attempt = { field = "try", default = 2, optional = true }\n')
    (tmp_path / "a.jsonl").write_text('{"id": "j1", "t": "2026-01-01T00:00:00Z"}\n')
    (tmp_path / "a.csv").write_text("id,t\nc1,2026-01-01T00:00:00Z\n")
    pl.DataFrame({"id": ["p1"], "t": ["2026-01-01T00:00:00Z"]}).write_parquet(tmp_path / "a.parquet")
    for name in ("a.jsonl", "a.csv", "a.parquet"):
        s = ingest(db, tmp_path / name, mapping=m, progress=False)
        assert (s.inserted, s.quarantined) == (1, 0), name
    got = rows(db, "select call_id, model, attempt from calls order by call_id")
    assert [(r["call_id"], r["model"], r["attempt"]) for r in got] == [
        ("c1", None, 2), ("j1", None, 2), ("p1", None, 2)]
    m.write_text(m.read_text().replace('model = { field = "model", optional = true }', 'model = "model"'))
    with pytest.raises(IngestError, match=r"\[columns\] model: no field 'model' in the CSV"):
        ingest(db, tmp_path / "a.csv", mapping=m, progress=False)
    with pytest.raises(IngestError, match=r"\[columns\] model: no field 'model' in the Parquet"):
        ingest(db, tmp_path / "a.parquet", mapping=m, progress=False)


def test_events_jsonl_iso_timestamps_with_zones(db):
    s = ingest(db, MAPS / "events.jsonl", mapping=MAPS / "events_jsonl.toml", progress=False)
    assert (s.inserted, s.quarantined) == (3, 1)
    got = {r["event_id"]: r for r in rows(db, "select * from events")}
    assert got["e1"]["ts"] == ts(2025, 11, 20, 9, 0)  # Z
    assert got["e2"]["ts"] == ts(2025, 11, 20, 9, 0)  # +01:00 converted to UTC
    assert got["e3"]["ts"] == ts(2025, 11, 20, 9, 30)  # no zone: taken as UTC
    assert json.loads(got["e2"]["properties"]) == {"chars": 120}
    assert got["e3"]["properties"] is None
    (q,) = rows(db, "select * from quarantine")
    assert (q["line_no"], q["field"]) == (4, "user_id")


def test_a_zone_offset_after_a_space_loads_as_that_instant_in_every_reader(db, tmp_path):
    # Java's and Go's default writers put a space before the offset ("+0100", Go's "+0100 CET"): each reader
    # (typed JSON, the line reader, CSV) reads the instant, not a quarantined "expected ISO 8601".
    stamps = ["2025-11-20 11:00:00.250 +0100", "2025-11-20 11:00:00.250 +01:00 ", "2025-11-20 05:00:00.250 -0500 EST",
              "2025-11-20 10:00:00.250 +0000 UTC"]
    m = tmp_path / "m.toml"
    m.write_text('table = "events"\n[columns]\nevent_id = "u"\nuser_id = "u"\nts = "t"\nevent = "n"\n')
    j = tmp_path / "e.jsonl"
    j.write_text("".join(json.dumps({"u": f"u{i}", "t": t, "n": "open"}) + "\n" for i, t in enumerate(stamps)))
    s = ingest(db, j, mapping=m, progress=False)
    assert (s.inserted, s.quarantined) == (4, 0), rows(db, "select reason from quarantine")
    c = tmp_path / "e.csv"
    c.write_text("u,t,n\n" + "".join(f"v{i},{t},open\n" for i, t in enumerate(stamps)))
    s = ingest(db, c, mapping=m, progress=False)
    assert (s.inserted, s.quarantined) == (4, 0), rows(db, "select reason from quarantine")
    got = {r["ts"] for r in rows(db, "select ts from events")}
    assert got == {ts(2025, 11, 20, 10, 0, 0, 250000)}
    # a line the typed reader cannot vouch for sends the file through the line reader: the same instants
    j2 = tmp_path / "e2.jsonl"
    j2.write_text(j.read_text().replace('"u": "u', '"u": "w') + '{"u": "w9", "t": "soon", "n": "open"}\n')
    s = ingest(db, j2, mapping=m, progress=False)
    assert (s.inserted, s.quarantined) == (4, 1)
    assert {r["ts"] for r in rows(db, "select ts from events where user_id like 'w%'")} == got


def test_parquet_events_epoch_us_and_whole_row_hash(db, tmp_path):
    p = tmp_path / "events.parquet"
    db.duckdb.execute(f"""COPY (SELECT * FROM (VALUES ('u-1', 1763629200000000, 'open_assistant', 'support'),
                          ('u-2', 1763629260000000, 'ask', NULL), ('u-2', 1763629260000000, 'ask', NULL),
                          (NULL, 1763629270000000, 'ask', 'x')) t("user", ts_us, name, feature))
                          TO '{p}' (FORMAT parquet)""")
    s = ingest(db, p, mapping=MAPS / "events_parquet.toml", progress=False)
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (4, 3, 0, 1)
    got = rows(db, "select user_id, ts, event, feature from events order by ts, user_id")
    assert got[0] == {"user_id": "u-1", "ts": ts(2025, 11, 20, 9, 0), "event": "open_assistant", "feature": "support"}
    assert [g["feature"] for g in got[1:]] == ["unknown", "unknown"]
    (q,) = rows(db, "select * from quarantine")
    assert (q["line_no"], q["field"]) == (4, "user_id") and json.loads(q["raw"])["name"] == "ask"
    again = ingest(db, p, mapping=MAPS / "events_parquet.toml", progress=False)
    assert (again.inserted, again.duplicates) == (0, 3)


def test_jsonl_invalid_json_not_object_encoding_and_reserved_bytes(db, tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('table = "events"\n[columns]\nuser_id = "u"\nts = "t"\nevent = "e"\n')
    p = tmp_path / "e.jsonl"
    p.write_bytes(b'{"u": "a", "t": "2025-11-20T09:00:00Z", "e": "x"}\n'
                  b'{"u": "b", "t": \n'
                  b'[1, 2]\n'
                  b'\n'
                  b'{"u": "\xff\xfe", "t": "2025-11-20T09:00:00Z", "e": "x"}\n'
                  b'{"u": "c\x1e\x1f", "t": "2025-11-20T09:00:00Z", "e": "x"}\n'
                  b'{"u": "d", "t": "2025-11-20T09:00:01Z", "e": "x"}\n')
    s = ingest(db, p, mapping=m, progress=False)
    check_invariant(s)
    assert (s.read, s.inserted, s.quarantined) == (6, 2, 4)
    q = {r["line_no"]: r["reason"] for r in rows(db, "select * from quarantine")}
    assert q[2] == "invalid JSON" and q[3] == "not a JSON object"
    assert q[5].startswith("invalid encoding (not UTF-8)")
    assert q[6] == "line contains the reserved bytes 0x1E 0x1F"
    assert sorted(r["user_id"] for r in rows(db, "select user_id from events")) == ["a", "d"]


@pytest.mark.parametrize("ext, data", [
    ("csv", b"u,t,e,f\r\na,2025-11-20T09:00:00Z,x,caf\xe9\r\nb,2025-11-20T09:00:01Z,x,chat\r\n"),
    ("jsonl", b'{"u": "a", "t": "2025-11-20T09:00:00Z", "e": "x", "f": "caf\xe9"}\n'
              b'{"u": "b", "t": "2025-11-20T09:00:01Z", "e": "x", "f": "chat"}\n'),
])
def test_a_record_not_in_utf8_in_an_otherwise_clean_file_is_quarantined_not_counted_a_duplicate(db, tmp_path, ext,
                                                                                                 data):
    """A Windows-1252 export (é as the byte 0xE9) in a field that is not the key: the pass counting the file's rows
    read only the key, so the record looked clean; the insert then read every field, DuckDB rejected the record, and
    the load said "read 2, inserted 1, duplicates 1, quarantined 0": a record lost as a duplicate it was not."""
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "u"\nts = "t"\nmodel = "e"\nfeature = "f"\n'
                 'status = { value = "ok" }\n')
    p = tmp_path / f"e.{ext}"
    p.write_bytes(data)
    s = ingest(db, p, format=ext, mapping=m, progress=False)
    check_invariant(s)
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (2, 1, 0, 1)
    (q,) = rows(db, "select line_no, reason from quarantine")
    assert q["line_no"] == (2 if ext == "csv" else 1) and q["reason"].startswith("invalid encoding (not UTF-8)")
    assert [r["call_id"] for r in rows(db, "select call_id from calls")] == ["b"]


def test_a_timestamp_that_is_not_iso_says_how_to_map_an_epoch_or_another_layout(db, tmp_path):
    """An export with epoch seconds or "11/20/2025 09:00" in a field mapped as ISO 8601 was quarantined row by row
    with "(expected ISO 8601)" and no word of the mapping's unit and format, which read them."""
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = "time"\nstatus = { value = "ok" }\n')
    p = tmp_path / "c.csv"
    p.write_text("id,time\na,1763629200\nb,11/20/2025 09:00\nc,2025-11-20T09:00:00Z\n")
    s = ingest(db, p, mapping=m, progress=False)
    assert (s.inserted, s.quarantined) == (1, 2)
    assert dict(db.duckdb.execute("select line_no, reason from quarantine").fetchall()) == {
        2: "unparseable timestamp in ts: '1763629200' (expected ISO 8601; an epoch number is mapped as "
           "ts = { field = \"time\", unit = \"s\" }, or ms, us, ns)",
        3: "unparseable timestamp in ts: '11/20/2025 09:00' (expected ISO 8601; another layout is mapped as "
           "ts = { field = \"time\", format = \"%m/%d/%Y %H:%M\" }, a strptime format)"}


def test_crlf_and_mixed_line_endings(db, tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('table = "events"\n[columns]\nuser_id = "u"\nts = "t"\nevent = "e"\n')
    crlf, mixed = tmp_path / "crlf.jsonl", tmp_path / "mixed.jsonl"
    line = '{{"u": "{}", "t": "2025-11-20T09:00:0{}Z", "e": "x"}}'
    crlf.write_bytes(("\r\n".join(line.format(u, i) for i, u in enumerate("abc")) + "\r\n{bad\r\n").encode())
    s = ingest(db, crlf, mapping=m, progress=False)
    assert (s.read, s.inserted, s.quarantined) == (4, 3, 1)
    assert rows(db, "select line_no from quarantine")[0]["line_no"] == 4  # exact for consistent CRLF
    mixed.write_bytes((line.format("d", 1) + "\n" + line.format("e", 2) + "\r\n{bad\n" + line.format("f", 3)
                       + "\n").encode())
    s = ingest(db, mixed, mapping=m, progress=False)  # falls back to the lenient line reader
    check_invariant(s)
    assert (s.read, s.inserted, s.quarantined) == (4, 3, 1)


# ------------------------------------------------------------------------------------------- errors, all or nothing


def test_missing_file_unknown_format_or_mapping_raise_and_write_nothing(db, tmp_path):
    before = counts(db)
    with pytest.raises(IngestError, match="nope.jsonl: no such file"):
        ingest(db, [OTEL / "openai_chat.jsonl", tmp_path / "nope.jsonl"], progress=False)
    (tmp_path / "x.txt").write_text("hello\n")
    with pytest.raises(IngestError, match=r"x.txt: unknown format '.txt'"):
        ingest(db, [OTEL / "openai_chat.jsonl", tmp_path / "x.txt"], progress=False)
    with pytest.raises(IngestError, match="calls.csv: a mapping is required for csv files"):
        ingest(db, MAPS / "calls.csv", progress=False)
    with pytest.raises(IngestError, match="calls.jsonl: not OpenTelemetry spans"):
        ingest(db, MAPS / "calls.jsonl", progress=False)
    with pytest.raises(IngestError, match="format must be"):
        ingest(db, MAPS / "calls.csv", format="xml", progress=False)
    with pytest.raises(IngestError, match=r"no field 'Nope' in the CSV"):
        ingest(db, MAPS / "calls.csv", mapping={"table": "calls", "csv": {"delimiter": ";"},
                                                "columns": {"ts": "Nope", "status": {"value": "ok"}}}, progress=False)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(IngestError, match="bad.parquet"):
        ingest(db, tmp_path / "bad.parquet", mapping=MAPS / "events_parquet.toml", progress=False)
    assert counts(db) == before


def test_unexpected_failure_rolls_back_the_file(db, monkeypatch):
    import workbench.io.ingest as ing

    real = ing._load

    def boom(con, *a, **k):
        real(con, *a, **k)  # writes quarantine rows and calls, then fails
        raise RuntimeError("disk full")

    monkeypatch.setattr(ing, "_load", boom)
    before = counts(db)
    with pytest.raises(IngestError, match=r"malformed.jsonl: could not be loaded as otel .*disk full"):
        ingest(db, OTEL / "malformed.jsonl", progress=False)
    assert counts(db) == before
    monkeypatch.setattr(ing, "_load", real)
    assert ingest(db, OTEL / "malformed.jsonl", progress=False).inserted == 1  # nothing was half-written


@pytest.mark.parametrize("mapping, message", [
    ({"table": "nope", "columns": {"a": "b"}}, "table: unknown or not loadable table 'nope'"),
    ({"table": "quarantine", "columns": {"reason": "r"}}, "table: unknown or not loadable table 'quarantine'"),
    ({"columns": {"ts": "t"}}, "table: required"),
    ({"table": "calls", "columns": {"ts": "t", "status": "s", "colour": "c"}}, "[columns] colour: table calls has no"),
    ({"table": "calls", "columns": {"ts": "t"}}, "[columns] status: required column of calls is not mapped"),
    ({"table": "calls", "columns": {"ts": {"field": "t", "unit": "h"}, "status": "s"}}, "[columns] ts: unit must be"),
    ({"table": "calls", "columns": {"input_tokens": {"field": "t", "unit": "s"}, "ts": "t", "status": "s"}},
     "[columns] input_tokens: unit applies to"),
    ({"table": "calls", "columns": {"ts": {"field": "t", "value": 1}, "status": "s"}}, "give exactly one of"),
    ({"table": "calls", "columns": {"ts": {"fild": "t"}, "status": "s"}}, "[columns] ts: unknown key(s) fild"),
    ({"table": "calls", "csv": {"delim": ";"}, "columns": {"ts": "t", "status": "s"}}, "[csv] delim: unknown option"),
    ({"table": "calls", "format": "xml", "columns": {"ts": "t", "status": "s"}}, "format: expected csv, jsonl"),
])
def test_bad_mappings_name_the_file_and_key(tmp_path, mapping, message):
    with pytest.raises(IngestError) as e:
        load_mapping(mapping)
    assert message in str(e.value) and str(e.value).startswith("<mapping>:")
    f = tmp_path / "m.toml"
    f.write_text("table = \n")
    with pytest.raises(IngestError, match=r"m.toml: not valid TOML"):
        load_mapping(f)


def test_summary_shapes():
    s = IngestSummary()
    s._add({"path": "a", "table": "calls", "format": "otel", "run_id": "r", "read": 3, "inserted": 1,
            "duplicates": 1, "quarantined": 1}, {"invalid JSON": 1})
    assert s.as_dict() == {"read": 3, "inserted": 1, "duplicates": 1, "quarantined": 1, "reasons": {"invalid JSON": 1}}
    text = str(s)
    assert "read 3, inserted 1, duplicates 1, quarantined 1" in text and "invalid JSON" in text


# ------------------------------------------------------------------------------------------------ property tests

CELL = st.one_of(
    st.none(), st.text(max_size=12), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.just(""),
    st.sampled_from(["2025-11-20T09:00:00Z", "1763632800", "ok", "error", "nan", "-1", "1e400", "\u00e9\u6f22\U0001f600",
                     "2025-02-31", "timeout", "BLOCKED"]),
)
ROW = st.fixed_dictionaries({}, optional={k: CELL for k in ("id", "t", "dur", "inp", "out", "st", "app")})
LINE = st.one_of(ROW.map(json.dumps), st.text(max_size=40).map(lambda x: x.replace("\n", " ").replace("\r", " ")),
                 st.just("{"), st.just("[]"), st.just(""))
JSONL_MAP = {"table": "calls", "columns": {
    "call_id": "id", "ts": {"field": "t", "unit": "s"}, "latency_ms": {"field": "dur", "unit": "ms"},
    "input_tokens": "inp", "output_tokens": "out", "status": {"field": "st", "default": "ok"}, "feature": "app"}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=25))
def test_property_jsonl_never_crashes_and_counts_add_up(tmp_path_factory, lines):
    d = tmp_path_factory.mktemp("pj")
    p = d / "x.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    db = wb.connect(":memory:")
    try:
        s = ingest(db, p, mapping=JSONL_MAP, progress=False)
    except IngestError:
        return
    check_invariant(s)
    assert s.read == sum(1 for ln in lines if ln.strip())
    c = counts(db)
    assert (c["calls"], c["quarantine"]) == (s.inserted, s.quarantined)
    again = ingest(db, p, mapping=JSONL_MAP, progress=False)
    assert (again.inserted, again.duplicates) == (0, s.inserted + s.duplicates)
    db.close()


FIELD = st.one_of(st.text(alphabet=string.ascii_letters + string.digits + " -:.\u00e9\u6f22\"';", max_size=10),
                  st.sampled_from(["", "1763632800", "-5", "99999999999999999999999", "1.5", "ok", "nan"]))
CSV_ROW = st.lists(FIELD, min_size=0, max_size=6)
CSV_MAP = {"table": "feedback", "columns": {
    "call_id": "a", "ts": {"field": "b", "unit": "s"}, "kind": {"field": "c", "default": "thumbs"}, "value": "d"}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(CSV_ROW, max_size=20))
def test_property_csv_never_crashes_and_counts_add_up(tmp_path_factory, body):
    import csv

    d = tmp_path_factory.mktemp("pc")
    p = d / "x.csv"
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "c", "d"])
        for r in body:
            w.writerow(r)
    db = wb.connect(":memory:")
    try:
        s = ingest(db, p, mapping=CSV_MAP, progress=False)
    except IngestError:
        return
    check_invariant(s)
    assert s.read == sum(1 for r in body if r)  # csv.writer writes an empty list as a blank line
    assert counts(db)["feedback"] == s.inserted
    lines = {r["line_no"] for r in rows(db, "select line_no from quarantine")}
    assert all(2 <= n <= len(body) + 1 for n in lines)
    db.close()


# ------------------------------------------------------------------------------------------------------------- CLI


def test_cli_ingest_json_and_exit_codes(tmp_path, capsys):
    dbp = str(tmp_path / "w.duckdb")
    assert cli_main(["ingest", str(OTEL / "errors.jsonl"), str(OTEL / "malformed.jsonl"), "--db", dbp, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    files = out.pop("files")
    assert out.pop("prices") > 0  # the prices table refreshed for the models the new calls name
    assert out == {"read": 10, "inserted": 4, "duplicates": 1, "quarantined": 5,
                   "reasons": {"missing required field: ts": 1, "end before start: end_ts": 1,
                               "not an OTLP trace export": 1, "negative token count: output_tokens": 1,
                               "invalid JSON": 1}}
    # each file: where it went, its run (the ingest_runs row) and how it was read, for a scheduled job's log
    with wb.connect(dbp) as db:
        runs = dict(db.duckdb.execute("select source_path, run_id from ingest_runs").fetchall())
    assert [(f["path"], f["format"], f["table"], f["run_id"], f["same_as"], f["appended_to"], f["read"])
            for f in files] == [(str(OTEL / n), "otel", "calls", runs[str(OTEL / n)], None, None, r)
                                for n, r in (("errors.jsonl", 3), ("malformed.jsonl", 7))]
    assert set(files[0]["seconds"]) == {"hash", "parse", "validate", "write"}
    assert cli_main(["ingest", str(MAPS / "calls.csv"), "--db", dbp, "--mapping", str(MAPS / "calls_csv.toml")]) == 0
    text = capsys.readouterr().out
    assert "read 9, inserted 3, duplicates 0, quarantined 6" in text
    assert cli_main(["ingest", str(tmp_path / "missing.jsonl"), "--db", dbp, "--json"]) == 2
    err = capsys.readouterr().err
    assert "missing.jsonl: no such file" in err
    with wb.connect(dbp) as db:
        assert db.duckdb.execute("select count(*) from ingest_runs").fetchone()[0] == 3


def test_calls_loaded_by_the_cli_are_priced_and_prices_lists_what_is_not(tmp_path, capsys, monkeypatch):
    # Nothing but `workbench demo` and the library's load_prices filled the prices table: a team loading its calls with
    # `workbench ingest` had every call unpriced (cost_usd null, unpriced_rate 1), gpt-4o included
    monkeypatch.chdir(tmp_path)  # away from the project's workbench.toml
    (tmp_path / "calls.csv").write_text("id,ts,model,in,out\n1,2026-11-16 09:00:00,gpt-4o,1000000,0\n"
                                        "2,2026-11-16 10:00:00,acme-ft,10,10\n")
    (tmp_path / "m.toml").write_text('table = "calls"\nformat = "csv"\n[columns]\ncall_id = "id"\nts = "ts"\n'
                                     'model = "model"\ninput_tokens = "in"\noutput_tokens = "out"\n'
                                     'provider = { value = "openai" }\nfeature = { value = "chat" }\n'
                                     'status = { value = "ok" }\n')
    dbp = str(tmp_path / "w.duckdb")
    assert cli_main(["ingest", str(tmp_path / "calls.csv"), "--db", dbp, "--mapping", str(tmp_path / "m.toml")]) == 0
    assert "prices: " in capsys.readouterr().out
    with wb.connect(dbp, read_only=True) as db:
        c = wb.cost_usd(db, by=("model",), period="all").sort("model")
    # gpt-4o's list price, 2.5 USD per million input tokens (genai-prices); acme-ft has none: unpriced, never 0
    assert c.select("model", "value", "unpriced_count").rows() == [("acme-ft", None, 1), ("gpt-4o", 2.5, 0)]
    assert cli_main(["prices", "--db", dbp, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "openai,acme-ft,unpriced_rate,1.0" in out and "openai,gpt-4o,unpriced_rate,0.0" in out
    # --no-prices leaves the table as it is
    dbp2 = str(tmp_path / "w2.duckdb")
    assert cli_main(["ingest", str(tmp_path / "calls.csv"), "--db", dbp2, "--mapping", str(tmp_path / "m.toml"),
                     "--no-prices"]) == 0
    with wb.connect(dbp2, read_only=True) as db:
        assert db.duckdb.execute("select count(*) from prices").fetchone()[0] == 0


def test_a_broken_prices_override_stops_the_cli_ingest_before_it_writes(tmp_path, capsys, monkeypatch):
    # the [[prices]] of workbench.toml were read after the load: exit 2 with the calls and the run already committed,
    # and the next load (every call a duplicate) never refreshed the prices
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calls.csv").write_text("id,ts,model,in,out\n1,2026-11-16 09:00:00,gpt-4o,1000000,0\n")
    (tmp_path / "m.toml").write_text('table = "calls"\nformat = "csv"\n[columns]\ncall_id = "id"\nts = "ts"\n'
                                     'model = "model"\ninput_tokens = "in"\noutput_tokens = "out"\n'
                                     'provider = { value = "openai" }\nstatus = { value = "ok" }\n')
    (tmp_path / "workbench.toml").write_text('[[prices]]\nprovider = "x"\nmodel = "m"\ninput_usd_per_mtok = "cheap"\n'
                                             'output_usd_per_mtok = 1.5\n')
    args = ["ingest", str(tmp_path / "calls.csv"), "--db", str(tmp_path / "w.duckdb"), "--mapping", str(tmp_path / "m.toml")]
    assert cli_main(args) == 2
    assert "input_usd_per_mtok" in capsys.readouterr().err and not (tmp_path / "w.duckdb").exists()
    # loaded with --no-prices, then again once the file is fixed: nothing inserted, but the empty prices are filled
    assert cli_main([*args, "--no-prices"]) == 0
    (tmp_path / "workbench.toml").unlink()
    assert cli_main(args) == 0
    with wb.connect(tmp_path / "w.duckdb", read_only=True) as db:
        assert wb.cost_usd(db, period="all")["value"].to_list() == [2.5]


def test_an_ingest_from_another_folder_keeps_the_price_overrides_and_a_found_config_is_the_truth(tmp_path, capsys,
                                                                                                   monkeypatch):
    """An hourly `workbench ingest` run by cron (its folder $HOME: no ./workbench.toml, no $WORKBENCH_CONFIG) deleted
    every [[prices]] override and printed 'refreshed (genai-prices and workbench.toml [[prices]])': a contract price
    of 1.5x list vanished and the over-budget month read ok. With no config found the overrides already in the table
    are kept, and said so; `--config` names the file; a config that is found is the truth (an override removed from
    it goes away)."""
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    proj, home = tmp_path / "proj", tmp_path / "home"
    proj.mkdir(), home.mkdir()
    cfg = proj / "workbench.toml"
    contract = ('[[prices]]\nprovider = "openai"\nmodel = "gpt-4o"\ninput_usd_per_mtok = 3.75\noutput_usd_per_mtok = 15.0\n'
                'note = "our contract price"\n')
    cfg.write_text("[budget.chat]\nmonthly_usd = 10\n" + contract)
    (proj / "m.toml").write_text('table = "calls"\nformat = "csv"\n[columns]\ncall_id = "id"\nts = "ts"\n'
                                 'model = "model"\ninput_tokens = "in"\noutput_tokens = "out"\n'
                                 'provider = { value = "openai" }\nfeature = { value = "chat" }\n'
                                 'status = { value = "ok" }\n')
    for i in range(1, 5):  # a call of a million input tokens each: $3.75 at the contract price, $2.50 at list
        (proj / f"c{i}.csv").write_text(f"id,ts,model,in,out\n{i},2026-12-0{i} 09:00:00,gpt-4o,1000000,0\n")
    dbp = str(proj / "w.duckdb")

    def ingest_from(folder, i, *extra):
        monkeypatch.chdir(folder)
        assert cli_main(["ingest", str(proj / f"c{i}.csv"), "--db", dbp, "--mapping", str(proj / "m.toml"), *extra]) == 0
        return capsys.readouterr().out.splitlines()[-1]

    def spend():
        with wb.connect(dbp, read_only=True) as db:
            b, _ = wb.budget_status(db, config=cfg, at="2026-12-05")
            overrides = db.duckdb.execute("select count(*) from prices where source like '%[[prices]]%'").fetchone()[0]
        return b["spend_usd"].round(4).item(), b["status"].item(), overrides

    line = ingest_from(proj, 1)
    assert str(cfg.resolve()) in line and "1 [[prices]] override" in line
    assert spend() == (3.75, "ok", 1)
    line = ingest_from(home, 2)  # cron: no workbench.toml here
    assert "no workbench.toml found" in line and "1 [[prices]] override row kept" in line
    assert spend() == (7.5, "ok", 1)  # was (5.0, 'ok', 0): the contract price gone
    monkeypatch.chdir(home)
    assert cli_main(["prices", "--db", dbp]) == 0  # `workbench prices` from there too
    assert "1 [[prices]] override row kept" in capsys.readouterr().err
    line = ingest_from(home, 3, "--config", str(cfg))
    assert str(cfg.resolve()) in line
    assert spend() == (11.25, "over", 1)
    cfg.write_text("[budget.chat]\nmonthly_usd = 10\n")  # the team drops the contract price: it goes away
    line = ingest_from(home, 4, "--config", str(cfg))
    assert str(cfg.resolve()) in line and "no [[prices]] override" in line
    assert spend() == (10.0, "over", 0)
    # a --config that is not there is an error (exit 2, before the load), not "none found"
    assert cli_main(["ingest", str(proj / "c1.csv"), "--db", dbp, "--config", str(home / "nope.toml")]) == 2
    assert "no config file at" in capsys.readouterr().err


def test_db_given_as_a_path_is_closed_and_empty_files_load_nothing(tmp_path):
    dbp = tmp_path / "w.duckdb"
    s = ingest(dbp, OTEL / "agent_tool.jsonl", progress=False)
    assert s.inserted == 2
    with wb.connect(dbp) as db:  # the file is not left locked by ingest
        assert db.duckdb.execute("select count(*) from calls").fetchone()[0] == 2
        (tmp_path / "empty.csv").write_text("")
        (tmp_path / "empty.jsonl").write_text("\n\n")
        s = ingest(db, [tmp_path / "empty.csv", tmp_path / "empty.jsonl"], mapping=MAPS / "feedback_csv.toml",
                   format="auto", progress=False)
        assert s.as_dict() == {"read": 0, "inserted": 0, "duplicates": 0, "quarantined": 0, "reasons": {}}
        assert db.duckdb.execute("select count(*) from ingest_runs").fetchone()[0] == 3


def test_duckdb_progress_bar_stays_out_of_logs(tmp_path, capfd):
    """ingest has its own progress bar (on a terminal): DuckDB's, printed to the process's stderr whatever it is, would
    fill logs and cron mail during long loads. Here DuckDB is told to show it at once; nothing may be printed, and the
    connection's setting is back afterwards."""
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"id": f"c{i}", "t": 1763632800 + i}) + "\n" for i in range(2000)))
    db = wb.connect(":memory:")
    db.duckdb.execute("SET progress_bar_time = 0")
    db.duckdb.execute("SET enable_progress_bar_print = true")  # as on a terminal (connect turns it off otherwise)
    capfd.readouterr()
    s = ingest(db, p, mapping={"table": "calls", "columns": {"call_id": "id", "ts": {"field": "t", "unit": "s"},
                                                             "status": {"value": "ok"}}}, progress=False)
    out, err = capfd.readouterr()
    assert s.inserted == 2000
    # at 0 ms every statement shows a bar: only the two that read the setting and switch it off may
    assert (out + err).count("100%") <= 2
    assert db.duckdb.execute("select current_setting('enable_progress_bar_print')").fetchone()[0] is True


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_file_scan_hashes_and_counts_across_chunks(tmp_path, monkeypatch, chunk):
    # the sha256 runs on a second thread while the lines are counted: the same digest and counts at any chunk size
    import hashlib

    import workbench.io.ingest as ing

    data = b"".join(b'{"id": "c%d", "pad": "%s"}\n' % (i, b"x" * (i * 37 % 300)) for i in range(400)) + b"{}"
    p = tmp_path / "f.jsonl"
    p.write_bytes(data)
    monkeypatch.setattr(ing, "_HASH_CHUNK", chunk)
    # the beginnings asked for: hashed and counted where they end a line, skipped where they do not
    ends = [i + 1 for i, b in enumerate(data) if b == 10]
    cuts = [ends[0], ends[7], ends[7] + 3, ends[-1], len(data) - 1, len(data)]
    got = ing._scan(p, b'"c399", "pad"', cuts)
    assert got.found and not ing._scan(p, b'"c400"').found
    assert got.sha256 == hashlib.sha256(data).hexdigest() and got.size == len(data)
    assert got.lines == 401
    assert got.longest >= max(len(x) for x in data.split(b"\n"))
    assert got.prefixes == {c: (hashlib.sha256(data[:c]).hexdigest(), data[:c].count(b"\n"))
                            for c in cuts if data[c - 1] == 10}
    assert len(got.prefixes) == 3


def test_the_scan_finds_a_key_split_across_its_chunks(tmp_path, monkeypatch):
    import random

    from workbench.io import ingest as ing

    monkeypatch.setattr(ing, "_HASH_CHUNK", 7)
    rng = random.Random(4)
    needle = b'"resource_spans"'
    for _ in range(200):
        body = bytes(rng.choice(b'ab"_ce\n') for _ in range(rng.randrange(0, 60)))
        at = rng.randrange(0, len(body) + 1)
        text = body[:at] + (needle if rng.random() < 0.5 else b"") + body[at:]
        f = tmp_path / "f.jsonl"
        f.write_bytes(text)
        assert ing._scan(f, needle).found == (needle in text), text


# what SDKs write for an id they do not have: empty, blank, or the text of JS's null/undefined and Python's None
_NO_ID = ["", "  ", "null", "undefined", "None"]


def test_blank_and_placeholder_user_and_session_ids_are_missing_in_every_format(db, tmp_path):
    # Before, only "" was missing: "  ", "null", "undefined" and "None" loaded as four more users (a DAU of 5 where
    # two people used the product) and four more sessions.
    ids = [*_NO_ID, "u1", "u2"]
    lines = [{"id": f"j{i}", "time": 1763632800 + i, "user": u, "session": u} for i, u in enumerate(ids)]
    (tmp_path / "calls.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    mapping = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "time", "unit": "s"},
                                             "user_id": "user", "session_id": "session",
                                             "status": {"value": "ok"}}}
    ingest(db, tmp_path / "calls.jsonl", mapping=mapping, progress=False)
    (tmp_path / "calls.csv").write_text("id,time,user,session\n" + "".join(
        f"c{i},{1763632800 + i},{u},{u}\n" for i, u in enumerate(ids)))
    ingest(db, tmp_path / "calls.csv", mapping=mapping, progress=False)
    # OTLP JSON lines (read in SQL) and LiteLLM payloads (read in Python)
    spans = []
    for i, u in enumerate(ids):
        s = _span("0" * 31 + "1", f"{i + 1:016x}")
        s["attributes"] = [{"key": "user.id", "value": {"stringValue": u}},
                           {"key": "session.id", "value": {"stringValue": u}}]
        spans.append(s)
    (tmp_path / "spans.jsonl").write_text(_otlp_line(*spans))
    ingest(db, tmp_path / "spans.jsonl", progress=False)
    base = json.loads((DATA / "formats" / "litellm_payloads.jsonl").read_text().splitlines()[0])
    base["metadata"] = {k: v for k, v in base["metadata"].items() if "user" not in k and "session" not in k}
    base.pop("user", None)
    payloads = [{**base, "id": f"l{i}", "trace_id": f"lt{i}", "end_user": u, "session_id": u}
                for i, u in enumerate(ids)]
    (tmp_path / "litellm.jsonl").write_text("".join(json.dumps(p) + "\n" for p in payloads))
    ingest(db, tmp_path / "litellm.jsonl", format="litellm", progress=False)
    got = rows(db, "select call_id, user_id, session_id from calls order by call_id")
    assert len(got) == 4 * len(ids)
    for r in got:
        assert r["user_id"] in (None, "u1", "u2"), r
        assert r["session_id"] in (None, "u1", "u2"), r
    assert sum(r["user_id"] is None for r in got) == 4 * len(_NO_ID)
    from workbench.metrics.adoption import dau_count
    assert dau_count(db, by=(), period="all", activity="calls")["value"].to_list() == [2.0]  # u1, u2
    # events need a user: a row without one is quarantined, blank or placeholder alike
    (tmp_path / "events.jsonl").write_text("".join(
        json.dumps({"id": f"e{i}", "t": 1763632800 + i, "u": u, "e": "ask"}) + "\n" for i, u in enumerate(ids)))
    s = ingest(db, tmp_path / "events.jsonl", mapping={"table": "events", "columns": {
        "event_id": "id", "ts": {"field": "t", "unit": "s"}, "user_id": "u", "event": "e"}}, progress=False)
    assert (s.inserted, s.quarantined) == (2, len(_NO_ID))
