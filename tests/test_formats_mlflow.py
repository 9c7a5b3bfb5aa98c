"""MLflow traces (format ``mlflow``): ``Trace.to_json()`` of MLflow 2 and 3, ``mlflow.search_traces()`` rows saved as
JSON lines, span dicts. The fixtures in tests/data/formats/mlflow/ are written in the shapes MLflow's own serialisers
give (each one's source file in MLflow's repository is named below and in tests/data/formats/README.md); ids, names
and numbers are invented, and the expected rows are counted by hand from them."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

import workbench as wb
from workbench.cli import main as cli_main
from workbench.io.ingest import ingest
from workbench.io.sniff import detect

DATA = Path(__file__).parent / "data" / "formats" / "mlflow"
# mlflow3_trace.json: Trace.to_json() of MLflow 3.5+ (mlflow/entities/trace.py; info: TraceInfo.to_dict() as in
#   tests/entities/test_trace_info.py of MLflow 3 - request_time ISO, execution_duration_ms, state, trace_metadata;
#   spans: Span.to_dict() of mlflow/entities/span.py - hex span ids, trace_id "tr-<hex>", otel_trace_id, status
#   {"code": "OK" | "STATUS_CODE_OK"}, attributes JSON-encoded), pretty-printed
# mlflow2_trace.json: Trace.to_json() of MLflow 2.x (TraceInfo asdict: request_id, timestamp_ms, execution_time_ms,
#   status, request_metadata, tags; spans as tests/entities/test_trace.py::test_json_deserialization and
#   tests/tracing/sample_code/model_with_add_trace.py show them: context {trace_id, span_id} with 0x ids, parent_id,
#   start_time/end_time in ns, status_code/status_message, events with a microsecond timestamp)
# mlflow_search_traces.jsonl: mlflow.search_traces(...).to_json(orient="records", lines=True) (the columns of
#   Trace.to_pandas_dataframe_row): line 1 an MLflow 3 row whose "trace" column is the trace's to_json() text and whose
#   spans are MLflow 3.0-3.4's (base64 ids, status STATUS_CODE_OK; tests/entities/test_span.py::
#   test_load_from_old_span_dict), line 2 an MLflow 2 row (request_id, timestamp_ms, status, spans), line 3 an MLflow 3
#   row whose tool span has the start time "yesterday"
COUNTS = ("read", "inserted", "duplicates", "quarantined")
EXPECTED = {  # file -> (layout, read, inserted, duplicates, quarantined) in an empty database
    "mlflow3_trace.json": ("document", 5, 5, 0, 0),
    "mlflow2_trace.json": ("lines", 3, 3, 0, 0),
    "mlflow_search_traces.jsonl": ("lines", 5, 4, 0, 1),
}
T3 = "5b8efff798038103d269b633813fc60c"  # mlflow3_trace.json's OpenTelemetry trace id (its MLflow id: "tr-" + it)


@pytest.fixture
def db():
    d = wb.connect(":memory:")
    yield d
    d.close()


def rows(db, sql, params=None):
    cur = db.duckdb.execute(sql, params or [])
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def calls(db):
    out = {}
    for r in rows(db, "select * from calls"):
        r["attributes"] = json.loads(r["attributes"]) if r["attributes"] else {}
        out[r["call_id"]] = r
    return out


def load(db, path, **kw):
    s = ingest(db, path, progress=False, **kw)
    assert s.read == s.inserted + s.duplicates + s.quarantined
    return s


def counts(s):
    return tuple(getattr(s, k) for k in COUNTS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_mlflow_fixture_is_recognised_and_loads(db, name):
    layout, *expected = EXPECTED[name]
    assert detect(DATA / name) == ("mlflow", layout)
    s = load(db, DATA / name)
    assert counts(s) == tuple(expected)
    assert s.files[0]["format"] == "mlflow" and "(mlflow -> calls" in str(s)


def test_an_mlflow3_trace_gives_one_row_per_span_with_tokens_models_parents_and_the_traces_user(db):
    load(db, DATA / "mlflow3_trace.json")
    got = calls(db)
    agent, retr, chat1, tool, chat2 = (got[c * 8] for c in ("a1", "b2", "c3", "d4", "e5"))
    # span types: AGENT, RETRIEVER, CHAT_MODEL, TOOL, CHAT_MODEL
    assert [r["operation"] for r in (agent, retr, chat1, tool, chat2)] == [
        "invoke_agent", "retriever", "chat", "execute_tool", "chat"]
    assert agent["parent_id"] is None
    assert {r["parent_id"] for r in (retr, chat1, tool, chat2)} == {"a1a1a1a1a1a1a1a1"}
    assert {r["trace_id"] for r in got.values()} == {T3}
    # times: 10:00:00 + start/end in ms
    assert agent["ts"] == dt.datetime(2025, 11, 20, 10, 0) and agent["latency_ms"] == 2500.0
    assert [r["latency_ms"] for r in (retr, chat1, tool, chat2)] == [40.0, 1200.0, 200.0, 900.0]
    assert chat2["ts"] == dt.datetime(2025, 11, 20, 10, 0, 1, 500000)
    # mlflow.chat.tokenUsage; the model from mlflow.llm.model, else LangChain's invocation_params
    assert (chat1["input_tokens"], chat1["output_tokens"], chat1["cache_read_tokens"]) == (200, 40, 50)
    assert (chat2["input_tokens"], chat2["output_tokens"], chat2["cache_read_tokens"]) == (150, 30, None)
    assert (chat1["model"], chat1["provider"]) == ("gpt-4o-mini", "openai")
    assert (chat2["model"], chat2["provider"]) == ("gpt-4o", "openai")
    # the agent span repeats its calls' usage (350 / 70), as the trace metadata does: neither is counted again
    assert (agent["input_tokens"], agent["output_tokens"]) == (None, None)
    assert agent["attributes"]["mlflow.chat.tokenUsage"]["input_tokens"] == 350
    (total,) = rows(db, "select sum(input_tokens) i, sum(output_tokens) o from calls")
    assert (total["i"], total["o"]) == (350, 70)
    # the trace's metadata: user, session; its name: the feature
    assert {(r["user_id"], r["session_id"], r["feature"]) for r in got.values()} == {
        ("alice", "sess-42", "support_agent")}
    # the tool span's ERROR status and exception event: a timeout
    assert (tool["status"], tool["error_type"]) == ("timeout", "TimeoutError")
    assert tool["attributes"]["otel.status_message"] == "TimeoutError: order service timed out"
    assert {chat1["status"], chat2["status"], agent["status"], retr["status"]} == {"ok"}
    # MLflow's trace id and the trace's context are kept; the attributes read into columns are not repeated
    assert chat1["attributes"]["mlflow.trace_id"] == "tr-" + T3
    assert chat1["attributes"]["mlflow.trace.tags"]["team"] == "support"
    assert "mlflow.llm.model" not in chat1["attributes"] and "mlflow.spanType" not in chat1["attributes"]
    assert agent["attributes"]["mlflow.trace.metadata"]["mlflow.trace.user"] == "alice"
    assert agent["attributes"]["mlflow.trace.state"] == "OK"


def test_an_mlflow2_trace_reads_0x_ids_nanosecond_times_and_the_model_from_the_span_inputs(db):
    load(db, DATA / "mlflow2_trace.json")
    got = calls(db)
    root, llm, tool = got["337af925d6629c01"], got["a3dde9f2ebac1936"], got["b4eef0a3c2d11e22"]
    assert {r["trace_id"] for r in got.values()} == {"05e82d1fc4486f3986fae6dd7b5352b1"}
    assert (root["parent_id"], llm["parent_id"], tool["parent_id"]) == (None, "337af925d6629c01", "337af925d6629c01")
    assert (root["operation"], llm["operation"], tool["operation"]) == ("chain", "chat", "execute_tool")
    assert (root["latency_ms"], llm["latency_ms"], tool["latency_ms"]) == (1000.0, 700.0, 50.0)
    assert llm["ts"] == dt.datetime(2025, 11, 20, 11, 0, 0, 200000)
    # OpenAI autolog's inputs name the requested model; MLflow 2 recorded no token usage
    assert (llm["model"], llm["request_model"], llm["input_tokens"]) == ("gpt-4o-mini", "gpt-4o-mini", None)
    assert (tool["status"], tool["error_type"], root["status"]) == ("error", "ValueError", "error")
    assert llm["status"] == "ok"
    assert {r["feature"] for r in got.values()} == {"rag_chain"}
    assert {r["user_id"] for r in got.values()} == {None}
    assert root["attributes"]["mlflow.trace_id"] == "2e72d64369624e6888324462b62dc120"


def test_search_traces_rows_load_with_base64_ids_and_a_bad_span_named_by_line_and_field(db):
    s = load(db, DATA / "mlflow_search_traces.jsonl")
    assert s.reasons == {"unparseable timestamp: ts": 1}
    got = calls(db)
    # line 1: base64 ids of MLflow 3.0-3.4 decoded to hex; the row's "trace" text read
    root, llm = got["1a2b3c4d5e6f7081"], got["2b3c4d5e6f708192"]
    assert (llm["trace_id"], llm["parent_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "1a2b3c4d5e6f7081")
    assert (llm["operation"], llm["model"], llm["input_tokens"], llm["output_tokens"]) == ("chat", "gpt-4o-mini", 500,
                                                                                         120)
    assert (llm["latency_ms"], root["latency_ms"], llm["user_id"], llm["session_id"]) == (1200.0, 1500.0, "bob", "s-7")
    # line 2: an MLflow 2 row, read from its own columns
    emb = got["9c8b7a6f5e4d3c2b"]
    assert (emb["operation"], emb["feature"], emb["latency_ms"]) == ("embeddings", "embed_docs", 800.0)
    assert emb["trace_id"] == "8f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c"
    # line 3: its agent span loads, its tool span is quarantined naming the file, the line and the field
    assert got["3c4d5e6f70819203"]["operation"] == "invoke_agent"
    (q,) = rows(db, "select source_path, line_no, field, reason from quarantine")
    assert (Path(q["source_path"]).name, q["line_no"], q["field"]) == ("mlflow_search_traces.jsonl", 3, "ts")
    assert "'yesterday'" in q["reason"]


def test_reloading_inserts_nothing_and_a_gzip_copy_loads_the_same(db, tmp_path):
    files = [DATA / n for n in sorted(EXPECTED)]
    first = load(db, files)
    again = load(db, files)
    assert (again.inserted, again.duplicates, again.quarantined) == (0, first.inserted, first.quarantined)
    for name, (layout, *expected) in EXPECTED.items():
        gz = tmp_path / (name + ".gz")
        gz.write_bytes(gzip.compress((DATA / name).read_bytes()))
        other = wb.connect(":memory:")
        s = load(other, gz)
        assert counts(s) == tuple(expected) and s.files[0]["format"] == "mlflow"
        assert rows(other, "select sum(input_tokens) t from calls") == rows(
            db, "select sum(input_tokens) t from calls c join ingest_runs r on c.ingest_run_id = r.run_id "
                "where r.source_path like ?", [f"%{name}"])
        other.close()


def test_format_mlflow_forces_the_reader_on_the_command_line(tmp_path, capsys):
    dbp = tmp_path / "wb.duckdb"
    odd = tmp_path / "export.txt"  # a name that says nothing
    odd.write_bytes((DATA / "mlflow3_trace.json").read_bytes())
    assert cli_main(["ingest", str(odd), "--db", str(dbp), "--format", "mlflow", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["read"], out["inserted"]) == (5, 5)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"batch": []}))  # a Langfuse batch read as MLflow: refused record by record
    d = wb.connect(":memory:")
    s = load(d, other, format="mlflow")
    assert s.reasons == {"not an MLflow trace": 1} and s.inserted == 0
    d.close()


def test_a_trace_info_without_spans_is_quarantined_naming_the_trace(db, tmp_path):
    # what the REST API's trace searches list: a TraceInfo alone (MLflow 3 TraceInfo.to_dict(), no data.spans)
    info = {"trace_id": "tr-0123456789abcdef0123456789abcdef", "request_time": "2025-11-20T10:00:00Z",
            "state": "OK", "trace_metadata": {}, "tags": {}}
    p = tmp_path / "traces.jsonl"
    p.write_text(json.dumps({"info": info, "data": {"spans": []}}) + "\n")
    s = load(db, p)
    assert counts(s) == (1, 0, 0, 1)
    (q,) = rows(db, "select line_no, field, reason from quarantine")
    assert (q["line_no"], q["field"]) == (1, "spans")
    assert "tr-0123456789abcdef0123456789abcdef has no spans" in q["reason"]


def test_without_mlflow_usage_the_otel_genai_tokens_count_and_never_both(db, tmp_path):
    # span dicts of MLflow 3.5+ (Span.to_dict()), saved as an array; a span ingested from OTLP keeps its attributes as
    # OpenTelemetry sent them (Span.from_otel_proto: plain values, not JSON text)
    def span(sid, attrs):
        return {"trace_id": "tr-" + T3, "span_id": sid, "parent_span_id": None, "name": "chat gpt-4o",
                "start_time_unix_nano": 1763632800000000000, "end_time_unix_nano": 1763632800500000000,
                "status": {"code": "OK", "message": ""}, "events": [],
                "attributes": {"mlflow.traceRequestId": json.dumps("tr-" + T3), **attrs}}

    spans = [span("f1f1f1f1f1f1f1f1", {"mlflow.spanType": "LLM", "gen_ai.request.model": "gpt-4o",
                                       "gen_ai.usage.input_tokens": 90, "gen_ai.usage.output_tokens": 9}),
             span("f2f2f2f2f2f2f2f2", {"mlflow.spanType": '"LLM"', "gen_ai.usage.input_tokens": 1000,
                                       "mlflow.chat.tokenUsage": json.dumps({"input_tokens": 80, "output_tokens": 8,
                                                                             "total_tokens": 88})})]
    p = tmp_path / "spans.json"
    p.write_text(json.dumps(spans))
    assert detect(p) == ("mlflow", "array")
    s = load(db, p)
    assert counts(s) == (2, 2, 0, 0)
    got = calls(db)
    assert (got["f1f1f1f1f1f1f1f1"]["input_tokens"], got["f1f1f1f1f1f1f1f1"]["output_tokens"]) == (90, 9)
    assert (got["f1f1f1f1f1f1f1f1"]["model"], got["f1f1f1f1f1f1f1f1"]["operation"]) == ("gpt-4o", "chat")
    assert (got["f2f2f2f2f2f2f2f2"]["input_tokens"], got["f2f2f2f2f2f2f2f2"]["output_tokens"]) == (80, 8)
    assert {r["trace_id"] for r in got.values()} == {T3}


NS = 1763632800000000000


def _span(sid, parent, usage=None, *, kind="LLM", **attrs):
    a = {"mlflow.spanType": json.dumps(kind), **{k: json.dumps(v) for k, v in attrs.items()}}
    if usage is not None:
        a["mlflow.chat.tokenUsage"] = usage if isinstance(usage, str) else json.dumps(usage)
    return {"trace_id": "tr-" + "1" * 32, "span_id": sid, "parent_span_id": parent, "name": f"s{sid[:2]}",
            "start_time_unix_nano": NS, "end_time_unix_nano": NS + 10**9, "status": {"code": "OK"}, "attributes": a}


def test_an_array_or_lines_of_span_dicts_count_an_outer_span_s_repeated_usage_once(db, tmp_path):
    # each record was read alone, so the chain's usage (the sum of its call's) was counted beside the call's: 20 for 10
    outer = _span("aa" * 8, None, {"input_tokens": 10, "output_tokens": 4}, kind="CHAIN")
    inner = _span("bb" * 8, "aa" * 8, {"input_tokens": 10, "output_tokens": 4})
    (tmp_path / "array.json").write_text(json.dumps([outer, inner]))
    (tmp_path / "lines.jsonl").write_text(json.dumps(outer) + "\n" + json.dumps(inner) + "\n")
    for name in ("array.json", "lines.jsonl"):
        d = wb.connect(":memory:")
        load(d, tmp_path / name, format="mlflow")
        assert d.duckdb.execute("select sum(input_tokens), sum(output_tokens) from calls").fetchone() == (10, 4)


@pytest.mark.parametrize("usage", ['{"input_tokens": 12, "output', '"{\\"input_tokens\\": 1}"', "[1, 2]"])
def test_a_token_usage_that_is_no_json_object_is_quarantined_not_dropped(db, tmp_path, usage):
    # cut short, encoded twice or a list: the row was inserted with no tokens, the usage gone from its attributes
    (tmp_path / "t.json").write_text(json.dumps([_span("cc" * 8, None, usage)]))
    s = load(db, tmp_path / "t.json", format="mlflow")
    assert (s.inserted, s.quarantined) == (0, 1)
    assert rows(db, "select field from quarantine")[0]["field"] == "mlflow.chat.tokenUsage"


def test_spans_whose_parents_loop_keep_their_tokens_and_a_nested_id_or_a_nan_count_is_quarantined(db, tmp_path):
    # two spans each other's parent were both "rolled up" (their tokens only in attributes); an object span_id was
    # stored as its Python repr; a NaN count became NULL without a word
    a = _span("dd" * 8, "ee" * 8, {"input_tokens": 12, "output_tokens": 5})
    b = _span("ee" * 8, "dd" * 8, {"input_tokens": 12, "output_tokens": 5})
    nested = _span("ff" * 8, None)
    nested["span_id"] = {"a": 1}
    (tmp_path / "t.json").write_text(json.dumps([a, b, nested]))
    (tmp_path / "nan.json").write_text('[' + json.dumps(_span("ab" * 8, None)).replace(
        '"attributes": {', '"attributes": {"mlflow.chat.tokenUsage": {"input_tokens": NaN, "output_tokens": 3}, ', 1) + ']')
    s = load(db, tmp_path / "t.json", format="mlflow")
    assert (s.inserted, s.quarantined) == (2, 1)
    assert db.duckdb.execute("select sum(input_tokens), sum(output_tokens) from calls").fetchone() == (24, 10)
    assert "span_id is a nested value" in rows(db, "select reason from quarantine")[0]["reason"]
    s = load(db, tmp_path / "nan.json", format="mlflow")
    assert (s.inserted, s.quarantined, s.reasons) == (0, 1, {"not an integer: input_tokens": 1})
