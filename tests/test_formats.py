"""Telemetry of other tools loaded with --format auto: Langfuse, OpenInference/Phoenix, Vercel AI SDK, LiteLLM, OTLP
documents, gzip. The fixtures in tests/data/formats/ are written from each format's public schema; the expected calls
and token totals below are counted by hand from them (tests/data/formats/README.md lists them)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import pytest

import workbench as wb
from workbench.cli import main as cli_main
from workbench.io.ingest import IngestError, ingest
from workbench.io.records import epoch_us
from workbench.io.sniff import detect

DATA = Path(__file__).parent / "data" / "formats"
COUNTS = ("read", "inserted", "duplicates", "quarantined")

# file -> (format read as, read, inserted, duplicates, quarantined) in an empty database
EXPECTED = {
    "langfuse_trace.json": ("langfuse", 5, 5, 0, 0),
    "langfuse_traces.jsonl": ("langfuse", 5, 2, 0, 3),
    "langfuse_batch.json": ("langfuse_batch", 5, 4, 0, 1),
    "langfuse_batch_litellm.jsonl": ("langfuse_batch", 2, 2, 0, 0),
    "openinference_span.json": ("openinference", 1, 1, 0, 0),
    "openinference_spans.json": ("openinference", 4, 2, 0, 2),
    "phoenix_spans.csv": ("openinference", 3, 3, 0, 0),
    "vercel_spans.json": ("vercel", 6, 6, 0, 0),
    "litellm_payloads.jsonl": ("litellm", 5, 3, 1, 1),
    "litellm_spendlogs.csv": ("litellm", 4, 3, 0, 1),
    "litellm_spendlogs.json": ("litellm", 3, 3, 0, 0),
    "otlp_documents.json": ("otel", 3, 2, 0, 1),
}


@pytest.fixture
def db():
    d = wb.connect(":memory:")
    yield d
    d.close()


def rows(db, sql, params=None):
    cur = db.duckdb.execute(sql, params or [])
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def call(db, call_id):
    (r,) = rows(db, "select * from calls where call_id = ?", [call_id])
    r["attributes"] = json.loads(r["attributes"]) if r["attributes"] else {}
    return r


def quarantine(db):
    return [(r["line_no"], r["field"], r["reason"]) for r in
            rows(db, "select line_no, field, reason from quarantine order by line_no, reason")]


def load(db, name, **kw):
    s = ingest(db, DATA / name if isinstance(name, str) else name, progress=False, **kw)
    assert s.read == s.inserted + s.duplicates + s.quarantined
    assert sum(s.reasons.values()) == s.quarantined
    return s


def counts(s):
    return tuple(getattr(s, k) for k in COUNTS)


def ts(*a):
    return dt.datetime(*a)


def totals(db, where="true"):
    return db.duckdb.execute(f"select count(*), sum(input_tokens), sum(output_tokens) from calls where {where}").fetchone()


# ------------------------------------------------------------------------------------------------------ auto-detection


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_loads_with_format_auto_and_says_how_it_was_read(db, name):
    fmt, *expected = EXPECTED[name]
    s = load(db, name)
    assert counts(s) == tuple(expected)
    assert s.files[0]["format"] == fmt and s.files[0]["table"] == "calls"
    assert f"({fmt} -> calls" in str(s)
    (run,) = rows(db, "select format, rows_read from ingest_runs")
    assert run == {"format": fmt, "rows_read": expected[0]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gzip_of_every_format_loads_the_same(db, tmp_path, name):
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress((DATA / name).read_bytes()))
    fmt, *expected = EXPECTED[name]
    s = load(db, gz)
    assert counts(s) == tuple(expected) and s.files[0]["format"] == fmt
    # gzip is recognised by its bytes, not its name
    other = wb.connect(":memory:")
    odd = tmp_path / ("copy-" + name)
    odd.write_bytes(gz.read_bytes())
    s2 = ingest(other, odd, progress=False)
    assert counts(s2) == tuple(expected)
    other.close()


def test_reloading_every_format_inserts_nothing(db):
    first = load(db, sorted(DATA.glob("*.json*")) + sorted(DATA.glob("*.csv")))
    again = load(db, sorted(DATA.glob("*.json*")) + sorted(DATA.glob("*.csv")))
    assert again.inserted == 0
    assert again.duplicates == first.inserted + first.duplicates
    assert again.quarantined == first.quarantined


def test_detect_reads_the_content_not_the_name(tmp_path):
    p = tmp_path / "export.txt"
    shutil.copy(DATA / "vercel_spans.json", p)
    assert detect(p) == ("vercel", "array")
    assert detect(DATA / "langfuse_trace.json") == ("langfuse", "document")
    assert detect(DATA / "litellm_payloads.jsonl") == ("litellm", "lines")
    assert detect(DATA / "phoenix_spans.csv") == ("openinference", "csv")
    assert detect(DATA / "otlp_documents.json") == ("otel", "document")


def test_forcing_a_format_reads_the_file_as_that_format(db):
    s = load(db, "langfuse_trace.json", format="litellm")
    assert s.files[0]["format"] == "litellm" and s.quarantined == 1 and s.inserted == 0
    assert s.reasons == {"not a LiteLLM record": 1}
    s = load(db, "langfuse_trace.json", format="langfuse")
    assert s.inserted == 5


def test_json_of_no_known_format_asks_for_a_mapping(db, tmp_path):
    p = tmp_path / "x.json"
    p.write_text('[{"hello": 1}]')
    with pytest.raises(IngestError, match="x.json: not OpenTelemetry spans, nor Langfuse"):
        ingest(db, p, progress=False)


def test_cli_summary_names_each_files_format(tmp_path, capsys):
    dbp = tmp_path / "wb.duckdb"
    code = cli_main(["ingest", str(DATA / "langfuse_batch.json"), str(DATA / "vercel_spans.json"), "--db", str(dbp)])
    out = capsys.readouterr().out
    assert code == 0
    assert "(langfuse_batch -> calls" in out and "(vercel -> calls" in out
    assert cli_main(["ingest", str(DATA / "vercel_spans.json"), "--db", str(dbp), "--format", "vercel", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicates"] == 6


# ------------------------------------------------------------------------------------------------------ timestamps


def test_five_timestamp_shapes_are_the_same_instant_in_utc():
    instant = epoch_us("2025-11-20T10:00:00.250Z")
    assert epoch_us("2025-11-20T11:00:00.250+01:00") == instant  # ISO with offset
    assert epoch_us("2025-11-20 10:00:00.250000") == instant  # naive ISO (LiteLLM SpendLogs): UTC
    assert epoch_us("1763632800250000000") == instant  # nanosecond string (OTLP)
    assert epoch_us([1763632800, 250000000]) == instant  # HrTime pair (OTel JS)
    assert epoch_us(1763632800.25) == instant  # epoch seconds as a float (LiteLLM payload)
    assert epoch_us(1763632800250) == instant  # epoch milliseconds
    assert epoch_us(dt.datetime(2025, 11, 20, 11, 0, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == instant
    with pytest.raises(ValueError):
        epoch_us("soon")


def test_a_nanosecond_time_is_the_same_microsecond_in_every_shape_and_reader(tmp_path):
    # The OTLP JSON-lines reader (SQL), protobuf and ns strings truncate to the microsecond, as DuckDB does; the
    # [seconds, nanos] pair that OTLP documents, OpenInference and Vercel HrTime are read through rounded: the same span
    # had ts 10:00:00.123457 from a pretty-printed document and .123456 from JSON lines, and a time 999999999 ns into a
    # second moved into the next second.
    assert epoch_us([1763632800, 123456789]) == epoch_us("1763632800123456789") == 1763632800123456
    assert epoch_us([1763632800, 999999999]) == epoch_us("2025-11-20T10:00:00.999999999Z") == 1763632800999999
    span = {"traceId": "1af7651916cd43dd8448eb211c80319c", "spanId": "3333333333333333", "name": "chat gpt-4o",
            "startTimeUnixNano": "1763632800123456789", "endTimeUnixNano": "1763632801999999999",
            "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    got = []
    for name, text in [("lines.jsonl", json.dumps(doc) + "\n"), ("doc.json", json.dumps(doc, indent=2))]:
        (tmp_path / name).write_text(text)
        d = wb.connect(str(tmp_path / f"{name}.duckdb"))
        ingest(d, tmp_path / name, progress=False)
        got.append(d.duckdb.execute("select ts, end_ts, latency_ms from calls").fetchall())
    assert got[0] == got[1] == [(ts(2025, 11, 20, 10, 0, 0, 123456), ts(2025, 11, 20, 10, 0, 1, 999999), 1876.54321)]


@pytest.mark.parametrize("code", ["ERROR", "error", "STATUS_CODE_ERROR", 2, "2", "status_code_error"])
def test_a_failed_span_is_an_error_whichever_reader_and_however_its_status_is_named(tmp_path, code):
    # The Python span readers take a status by its name or number, case aside (spans.status_name); the OTLP
    # JSON-lines reader (SQL) took only '2' and 'STATUS_CODE_ERROR': a span with status "ERROR" (as some exporters
    # write the enum) loaded as an error from a pretty-printed document and as ok from JSON lines, and the error
    # rate of a JSON-lines file missed it.
    span = {"traceId": "1af7651916cd43dd8448eb211c80319c", "spanId": "3333333333333333", "name": "chat gpt-4o",
            "startTimeUnixNano": "1763632800000000000", "endTimeUnixNano": "1763632801000000000",
            "status": {"code": code, "message": "upstream 500"},
            "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    got = []
    for name, text in [("lines.jsonl", json.dumps(doc) + "\n"), ("doc.json", json.dumps(doc, indent=2))]:
        (tmp_path / name).write_text(text)
        d = wb.connect(str(tmp_path / f"{name}.duckdb"))
        ingest(d, tmp_path / name, progress=False)
        got.append(d.duckdb.execute("select status, error_type from calls").fetchall())
    assert got[0] == got[1] == [("error", None)], got


@pytest.mark.parametrize("text", [
    "2025-11-20 11:00:00.250 +0100",  # a space before the offset (Java, Go and syslog-style writers)
    "2025-11-20 11:00:00.250 +01:00",
    "2025-11-20T05:00:00.250 -0500",
    "2025-11-20 11:00:00.250 +0100 CET",  # Go's time.Time.String(): offset, then the zone's abbreviation
    "2025-11-20 10:00:00.250 +0000 UTC",
    "2025-11-20 11:00:00.250123 +01",
])
def test_a_space_before_the_zone_offset_is_the_same_instant(text):
    want = epoch_us("2025-11-20T10:00:00.250Z") + (123 if text.endswith("250123 +01") else 0)
    assert epoch_us(text) == want


@pytest.mark.parametrize("text", ["2025-11-20 -0500", "2025-11-20 10:00:00 +01 00", "2025-11-20 10:00:00 +0100 Europe/Paris"])
def test_a_zone_offset_after_a_space_needs_a_time_before_it(text):
    with pytest.raises(ValueError):
        epoch_us(text)


# ------------------------------------------------------------------------------------------------------ Langfuse


def test_langfuse_trace_export_columns(db):
    load(db, "langfuse_trace.json")
    g = call(db, "gen-1")
    assert (g["trace_id"], g["parent_id"], g["operation"], g["name"]) == ("t-lf-1", "obs-agent", "chat", "draft-answer")
    assert g["ts"] == ts(2025, 11, 20, 10, 0, 0, 100000)  # +01:00 converted to UTC
    assert (g["latency_ms"], g["ttft_ms"]) == (2000.0, 500.0)  # completionStartTime - startTime
    assert (g["model"], g["provider"], g["finish_reason"]) == ("gpt-4o", "openai", "stop")
    # usageDetails: input 900 uncached + 300 cached; output 150 + 50 reasoning
    assert (g["input_tokens"], g["cache_read_tokens"], g["output_tokens"], g["reasoning_tokens"]) == (1200, 300, 200, 50)
    assert g["cost_usd"] == 0.005 and g["prompt_version"] == "3"
    assert (g["user_id"], g["session_id"], g["feature"], g["environment"]) == ("u-42", "sess-9", "support_assistant",
                                                                                 "production")
    assert g["attributes"]["langfuse.prompt.name"] == "support" and g["attributes"]["langfuse.tags"] == ["beta", "eu"]
    assert g["attributes"]["langfuse.release"] == "2.3.0"
    kinds = dict(db.duckdb.execute("select call_id, operation from calls").fetchall())
    assert kinds == {"obs-agent": "invoke_agent", "gen-1": "chat", "tool-1": "execute_tool", "gen-2": "chat",
                     "ev-1": "event"}
    assert call(db, "ev-1")["latency_ms"] is None  # an event has no end
    # two LLM calls: 1200 + 400 input, 200 + 80 output
    assert totals(db, "operation = 'chat'") == (2, 1600, 280)
    assert totals(db)[1:] == (1600, 280)


def test_langfuse_metadata_otel_attributes_never_add_tokens(db, tmp_path):
    load(db, "langfuse_trace.json")
    assert call(db, "gen-1")["input_tokens"] == 1200  # metadata also says 1200: counted once, not 2400
    doc = {"trace": {"id": "t9", "name": "f"}, "observations": [
        {"id": "o9", "type": "GENERATION", "startTime": "2025-11-20T10:00:00Z",
         "metadata": {"attributes": {"gen_ai.usage.input_tokens": 77, "gen_ai.usage.output_tokens": 7}}}]}
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc))
    load(db, p)
    r = call(db, "o9")  # no usage recorded by Langfuse: the kept OTel attributes are the only count
    assert (r["input_tokens"], r["output_tokens"]) == (77, 7)


def test_langfuse_usage_and_cost_details_as_numeric_text_or_null_are_summed_not_cut_to_one_key(db, tmp_path):
    # usageDetails / costDetails whose numbers an exporter wrote as text, or with a detail left null: the first key's
    # value was taken for the whole sum (input 80, not 80 + 20 cached; cost 0.001 of 0.003), and a null detail made
    # input_tokens NULL, all without a quarantined row.
    base = {"traceId": "t1", "type": "GENERATION", "model": "gpt-4o", "startTime": "2025-11-20T10:00:00Z"}
    doc = {"trace": {"id": "t1", "name": "f"}, "observations": [
        {**base, "id": "text", "usageDetails": {"input": "80", "input_cached_tokens": "20", "output": "30",
                                                "total": "130"}, "costDetails": {"input": "0.001", "output": "0.002"}},
        {**base, "id": "null", "usageDetails": {"input": 80, "input_cached_tokens": None, "output": 30}},
        {**base, "id": "word", "usageDetails": {"input": 80, "input_cached_tokens": "many", "output": 30}}]}
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc))
    s = load(db, p)
    t = call(db, "text")
    assert (t["input_tokens"], t["cache_read_tokens"], t["output_tokens"], t["cost_usd"]) == (100, 20, 30, 0.003)
    n = call(db, "null")
    assert (n["input_tokens"], n["cache_read_tokens"], n["output_tokens"]) == (80, None, 30)
    assert s.reasons == {"non-numeric value: input_tokens": 1}  # text that is no number is still quarantined


def test_langfuse_latency_and_first_token_seconds_as_text_are_read_in_exports_and_batches_alike(tmp_path):
    # The API's latency and timeToFirstToken (seconds, used when endTime or completionStartTime is missing) were read
    # only as JSON numbers: "1.5" was dropped without a word, and so was a latency that is no number at all.
    base = {"traceId": "t1", "type": "GENERATION", "startTime": "2025-11-20T10:00:00Z"}
    obs = [{**base, "id": "num", "latency": 1.5, "timeToFirstToken": 0.25},
           {**base, "id": "text", "latency": " 1.5 ", "timeToFirstToken": "0.25"},
           {**base, "id": "word", "latency": "soon"}]
    files = {"export.json": {"trace": {"id": "t1"}, "observations": obs},
             "batch.json": {"batch": [{"type": "generation-create", "body": o} for o in obs]}}
    for name, doc in files.items():
        (tmp_path / name).write_text(json.dumps(doc))
        d = wb.connect(":memory:")
        s = load(d, tmp_path / name)
        assert (s.read, s.inserted, s.reasons) == (3, 2, {"non-numeric value: latency_ms": 1}), name
        assert [r[1:] for r in quarantine(d)] == [("latency_ms", "non-numeric value in latency_ms: 'soon'")], name
        assert rows(d, "select call_id, latency_ms, ttft_ms from calls order by call_id") == [
            {"call_id": "num", "latency_ms": 1500.0, "ttft_ms": 250.0},
            {"call_id": "text", "latency_ms": 1500.0, "ttft_ms": 250.0}], name
        d.close()


def test_a_langfuse_trace_list_element_that_is_no_trace_is_quarantined_and_the_file_loads(db, tmp_path):
    # A page of traces with an element that is no object (a null, a string) failed the whole file with
    # "'str' object has no attribute 'get'", naming neither the element nor what was wrong.
    obs = {"id": "o1", "traceId": "t1", "type": "GENERATION", "startTime": "2025-11-20T10:00:00Z"}
    trace = {"id": "t1", "timestamp": "2025-11-20T10:00:00Z", "userId": "u1", "observations": [obs]}
    p = tmp_path / "traces.json"
    p.write_text(json.dumps({"data": [trace, "junk", None], "meta": {}}, indent=2))
    s = load(db, p, format="langfuse")
    assert (s.read, s.inserted, s.quarantined) == (3, 1, 2)
    assert call(db, "o1")["user_id"] == "u1"
    assert s.reasons == {"not a Langfuse trace": 2}


def test_langfuse_deprecated_usage_naive_time_and_timeout(db):
    load(db, "langfuse_trace.json")
    g = call(db, "gen-2")
    assert (g["input_tokens"], g["output_tokens"], g["cost_usd"]) == (400, 80, 0.0024)
    assert g["ts"] == ts(2025, 11, 20, 10, 0, 2, 800000)  # naive ISO taken as UTC
    assert (g["status"], g["error_type"]) == ("timeout", "Request timed out after 2s")


def test_langfuse_json_lines_openai_usage_and_bad_records(db):
    load(db, "langfuse_traces.jsonl")
    g = call(db, "gen-3")
    assert (g["input_tokens"], g["cache_read_tokens"], g["output_tokens"]) == (500, 100, 60)  # prompt_tokens incl. cache
    assert (call(db, "gen-4")["input_tokens"], call(db, "gen-4")["user_id"]) == (70, "u-8")  # TraceWithFullDetails
    assert quarantine(db) == [
        (2, None, "invalid JSON"),
        (3, "input_tokens", "negative token count in input_tokens: -5"),
        (3, "ts", "unparseable timestamp in ts: 'yesterday' (expected ISO 8601, epoch seconds/ms/us/ns or "
                  "[seconds, nanos])"),
    ]


def test_langfuse_batch_observations_without_any_id_are_quarantined_not_merged_into_a_call_named_none(db, tmp_path):
    # Two generation-create events with neither a body id nor an event id were merged into one row whose call_id was
    # the text "None": one call lost, and the other kept under an id no source has.
    gen = {"traceId": "t1", "model": "gpt-4o", "startTime": "2025-11-20T10:00:00Z", "usage": {"input": 5, "output": 1}}
    batch = {"batch": [{"type": "trace-create", "body": {"id": "t1", "userId": "u1"}},
                       {"type": "generation-create", "body": gen},
                       {"type": "generation-create", "body": {**gen, "startTime": "2025-11-20T10:00:01Z"}},
                       {"id": "ev-3", "type": "generation-create", "body": gen}]}
    p = tmp_path / "batch.json"
    p.write_text(json.dumps(batch))
    s = load(db, p)
    assert (s.read, s.inserted, s.quarantined) == (3, 1, 2)
    assert rows(db, "select call_id, user_id from calls") == [{"call_id": "ev-3", "user_id": "u1"}]
    assert quarantine(db) == [(2, "call_id", "missing required field call_id (source field 'call_id')"),
                              (3, "call_id", "missing required field call_id (source field 'call_id')")]


def test_langfuse_batch_observation_without_a_trace_id_borrows_nothing_from_a_trace_without_one(db, tmp_path):
    # A trace-create and an observation that both lacked a trace id met under the key "None": the observation took
    # that unrelated trace's user, session, name (feature) and id.
    batch = {"batch": [{"type": "trace-create", "body": {"userId": "u-other", "sessionId": "s-other", "name": "x"}},
                       {"type": "generation-create", "body": {"id": "g1", "model": "gpt-4o",
                                                              "startTime": "2025-11-20T10:00:00Z"}}]}
    p = tmp_path / "batch.json"
    p.write_text(json.dumps(batch))
    s = load(db, p)
    assert (s.read, s.inserted, s.quarantined) == (1, 1, 0)
    assert rows(db, "select call_id, trace_id, user_id, session_id, feature from calls") == [
        {"call_id": "g1", "trace_id": None, "user_id": None, "session_id": None, "feature": None}]

def test_langfuse_batch_merges_creates_and_updates_in_order(db):
    s = load(db, "langfuse_batch.json")
    g = call(db, "g-b1")
    assert (g["ts"], g["end_ts"], g["ttft_ms"]) == (ts(2025, 11, 22, 12, 0, 0, 100000), ts(2025, 11, 22, 12, 0, 1, 100000),
                                                    300.0)
    assert (g["input_tokens"], g["output_tokens"], g["cost_usd"], g["finish_reason"]) == (30, 12, 0.0001, "stop")
    assert g["attributes"]["langfuse.metadata"] == {"step": 1, "finish_reason": "stop"}  # metadata merged by key
    assert (g["user_id"], g["session_id"], g["feature"]) == ("u-b", "s-b", "chat_api")
    assert g["attributes"]["langfuse.tags"] == ["api"]  # the second trace-create merged into the trace
    r = call(db, "g-b2")
    assert r["ts"] == ts(2025, 11, 22, 12, 0, 2) and r["latency_ms"] == 500.0  # +02:00 -> UTC
    assert (r["status"], r["error_type"], r["input_tokens"], r["output_tokens"]) == ("error", "RateLimitError: 429", 20, 5)
    assert call(db, "sp-b1")["latency_ms"] == 90.0 and call(db, "ev-b1")["operation"] == "event"
    # an update of an observation never created has no start time; scores and sdk logs are not calls
    assert quarantine(db) == [(11, "ts", "missing required field ts (source field 'ts')")]
    assert s.reasons == {"missing required field: ts": 1}
    assert totals(db, "operation = 'chat'") == (2, 50, 17)


# ------------------------------------------------------------------------------------------------------ OpenInference


def test_openinference_single_protojson_span_counts_tokens_once(db):
    load(db, "openinference_span.json")
    r = call(db, "b7ad6b7169203331")  # hex ids lower-cased
    assert r["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and r["parent_id"] is None
    assert (r["operation"], r["model"], r["latency_ms"]) == ("chat", "gpt-4o", 1250.0)
    # gen_ai.usage.input_tokens (a JSON number) and llm.token_count.prompt (a string) both say 100: 100, not 200
    assert (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"], r["reasoning_tokens"]) == (100, 20, 40, 5)
    assert r["provider"] == "azure.ai.openai"  # gen_ai.provider.name wins over gen_ai.system and llm.provider
    assert (r["user_id"], r["session_id"], r["status"]) == ("u-oi", "sess-oi", "ok")
    assert r["attributes"]["llm.token_count.total"] == 120  # kept, never added


def test_a_span_list_element_that_is_no_span_is_quarantined_not_dropped(db, tmp_path):
    # A null, a string or an object without a span id among the spans of a pretty-printed OTLP document, of a page of
    # Phoenix's REST API or of a Jaeger or Zipkin trace was skipped: not read, not quarantined, while the same OTLP
    # document as JSON lines counted and quarantined each (missing call_id).
    sp = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "chat gpt-4o",
          "startTimeUnixNano": "1763632800000000000", "endTimeUnixNano": "1763632801000000000"}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [sp, None, "x"]}]}]}
    phoenix = {"name": "ChatCompletion", "span_kind": "LLM", "start_time": "2025-11-24T10:00:00+00:00",
               "context": {"trace_id": "7a000000000000000000000000000001", "span_id": "5e00000000000001"}}
    page = {"data": [phoenix, {"name": "cut", "span_kind": "LLM", "context": {"trace_id": "7a"}}, 5],
            "next_cursor": None}
    jaeger = {"traceID": "ab", "processes": {}, "spans": [
        {"traceID": "ab", "spanID": "01", "operationName": "chat", "startTime": 1763632800000000}, None]}
    zipkin = [[{"traceId": "ab", "id": "02", "name": "chat", "timestamp": 1763632800000000}, "junk"]]  # (a search)
    for name, obj, fmt in [("lines.jsonl", None, "otel"), ("doc.json", doc, "otel"),
                           ("page.json", page, "openinference"), ("jaeger.json", jaeger, "jaeger"),
                           ("zipkin.json", zipkin, "zipkin")]:
        p = tmp_path / name
        p.write_text(json.dumps(doc) + "\n" if obj is None else json.dumps(obj, indent=2))
        s = load(db, p, format=fmt)
        assert (s.read, s.quarantined) == (3, 2) if fmt in ("otel", "openinference") else (2, 1), name
        assert s.reasons == {"missing required field: call_id": s.quarantined}, name


def test_openinference_array_snake_case_base64_ids_and_missing_times(db):
    load(db, "openinference_spans.json")
    r = call(db, "0102030405060708")  # base64 ids decoded, snake_case members, times as numbers
    assert (r["trace_id"], r["parent_id"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert (r["operation"], r["latency_ms"], r["ts"]) == ("retriever", 400.0, ts(2025, 11, 21, 9, 59, 59, 500000))
    # no start time (c1, with an end) or no times at all (c2): neither can be dated, both quarantined, as the OTLP
    # JSON-lines reader quarantines them
    assert rows(db, "select count(*) as n from calls where call_id in ('00000000000000c1', '00000000000000c2')") == [
        {"n": 0}]
    assert quarantine(db) == [(k, "ts", "missing required field ts (source field 'ts')") for k in (3, 4)]


def _phoenix_parquet(path: Path) -> None:
    """The spans dataframe as Phoenix returns it: tz-aware times, float token counts, NaN for missing."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(DATA / "phoenix_spans.csv", newline="") as fh:
        recs = list(csv.DictReader(fh))
    cols = {}
    for name in recs[0]:
        vals = [r[name] for r in recs]
        if name in ("start_time", "end_time"):
            cols[name] = pa.array([dt.datetime.fromisoformat(v) for v in vals], pa.timestamp("us", tz="UTC"))
        elif "token_count" in name:
            cols[name] = pa.array([float(v) if v else float("nan") for v in vals], pa.float64())
        else:
            cols[name] = pa.array([v or None for v in vals], pa.string())
    pq.write_table(pa.table(cols), path)


def test_phoenix_spans_dataframe_csv_and_parquet(db, tmp_path):
    load(db, "phoenix_spans.csv")
    r = call(db, "5e00000000000002")
    assert (r["operation"], r["model"], r["input_tokens"], r["output_tokens"], r["cache_read_tokens"]) == \
        ("chat", "gpt-4o", 250, 40, 100)
    assert (r["parent_id"], r["latency_ms"], r["ttft_ms"]) == ("5e00000000000001", 1200.0, 300.0)  # first_token event
    assert call(db, "5e00000000000003")["status"] == "error"
    assert totals(db) == (3, 262, 40)
    pq_path = tmp_path / "spans.parquet"
    _phoenix_parquet(pq_path)
    other = wb.connect(":memory:")
    s = load(other, pq_path)
    assert counts(s) == (3, 3, 0, 0) and s.files[0]["format"] == "openinference"
    cols = "call_id, parent_id, ts, end_ts, operation, model, input_tokens, output_tokens, cache_read_tokens, status"
    q = f"select {cols} from calls order by call_id"
    assert db.duckdb.execute(q).fetchall() == other.duckdb.execute(q).fetchall()
    other.close()


# ------------------------------------------------------------------------------------------------------ Vercel AI SDK


def test_vercel_counts_each_llm_call_once_at_the_leaf(db):
    load(db, "vercel_spans.json")
    outer = call(db, "00f067aa0ba902b7")
    assert (outer["operation"], outer["input_tokens"], outer["output_tokens"]) == ("chain", None, None)
    assert outer["attributes"]["ai.usage.promptTokens"] == 300  # kept for reference, not counted
    a = call(db, "00f067aa0ba902b8")  # v4 leaf: gen_ai.usage.* and ai.usage.* side by side, counted once
    assert (a["operation"], a["input_tokens"], a["output_tokens"], a["ttft_ms"]) == ("chat", 120, 20, 180.5)
    assert (a["provider"], a["model"], a["request_model"]) == ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini")
    assert (a["ts"], a["latency_ms"], a["parent_id"]) == (ts(2025, 11, 22, 10, 0, 0, 100000), 1400.0, "00f067aa0ba902b7")
    assert (a["user_id"], a["session_id"], a["feature"], a["finish_reason"]) == ("u-v", "s-v", "chat-route",
                                                                                   "tool-calls")
    b = call(db, "00f067aa0ba902ba")  # v5 leaf: ai.usage.inputTokens with cached and reasoning details
    assert (b["input_tokens"], b["cache_read_tokens"], b["output_tokens"], b["reasoning_tokens"]) == (180, 100, 30, 10)
    t = call(db, "00f067aa0ba902b9")
    assert (t["operation"], t["name"], t["status"]) == ("execute_tool", "weather", "error")
    e = call(db, "00f067aa0ba902bc")
    assert (e["operation"], e["input_tokens"]) == ("embeddings", 8)
    assert call(db, "00f067aa0ba902bb")["input_tokens"] is None
    # the outer span said 300 / 50: the two provider calls are 120 + 180 and 20 + 30; plus the 8 embedded tokens
    assert totals(db, "operation = 'chat'") == (2, 300, 50)
    assert totals(db)[1:] == (308, 50)


# ------------------------------------------------------------------------------------------------------ LiteLLM


def test_litellm_standard_logging_payload_lines(db):
    s = load(db, "litellm_payloads.jsonl")
    r = call(db, "chatcmpl-1")
    assert (r["ts"], r["latency_ms"], r["ttft_ms"]) == (ts(2025, 11, 20, 10, 0), 2500.0, 400.0)  # epoch float seconds
    assert (r["input_tokens"], r["cache_read_tokens"], r["output_tokens"], r["reasoning_tokens"]) == (1000, 800, 100, 30)
    assert (r["cost_usd"], r["user_id"], r["feature"], r["provider"]) == (0.0035, "cust-1", "support_assistant", "openai")
    assert (r["model"], r["request_model"], r["finish_reason"]) == ("gpt-4o-2024-08-06", "gpt-4o", "stop")
    assert "litellm.messages" not in r["attributes"] and r["attributes"]["litellm.cache_hit"] is False
    f = call(db, "chatcmpl-2")
    assert (f["status"], f["error_type"], f["ttft_ms"], f["user_id"]) == ("timeout", "Timeout", None, "internal-2")
    e = call(db, "emb-1")
    assert (e["operation"], e["ts"], e["latency_ms"]) == ("embeddings", ts(2025, 11, 20, 10, 3, 20, 250000), 250.0)
    assert quarantine(db) == [(4, "input_tokens", "non-numeric value in input_tokens: 'many'")]
    assert s.duplicates == 1  # line 5 repeats line 1


def test_litellm_spend_logs_csv_export(db):
    load(db, "litellm_spendlogs.csv")
    r = call(db, "req-1")
    assert (r["ts"], r["latency_ms"], r["ttft_ms"]) == (ts(2025, 11, 23, 9, 0), 1250.0, 300.0)  # naive: UTC
    assert (r["input_tokens"], r["cache_read_tokens"], r["cost_usd"]) == (300, 64, 0.00042)  # metadata JSON in a cell
    assert (r["user_id"], r["session_id"], r["feature"]) == ("cust-9", "sess-l1", "summariser")
    c = call(db, "req-2")  # a cache hit of the proxy: no first chunk before the end, flagged
    assert (c["ttft_ms"], c["attributes"]["litellm.cache_hit"], c["user_id"]) == (None, True, "internal-1")
    assert call(db, "req-3")["ts"] == ts(2025, 11, 23, 9, 10)  # ISO with Z in the same column
    assert quarantine(db) == [(5, "end_ts", "end before start: end_ts 2025-11-23 09:20:00 < ts 2025-11-23 09:20:05")]


def test_a_litellm_cost_of_zero_is_unknown_unless_the_call_was_a_cache_hit(db, tmp_path):
    """LiteLLM writes spend (response_cost) 0.0 for a call it could not price (a model missing from its cost map, a
    self-hosted model): read as a reported cost of $0, 2 gpt-4o calls of 200k + 20k tokens ($1.40 at list price) and a
    call of a model with no price anywhere made a $1 budget read spend 0, ok, unpriced_count 0. A 0 on a call with
    tokens that is not a cache hit is no cost: the workbench prices it from its tokens, or counts it unpriced. A cache
    hit (LiteLLM's response_cost_calculator: cache_hit -> 0.0) costs 0, and a cost LiteLLM did compute is kept."""
    from workbench.io.prices import load_prices

    def spend_log(i, model, provider, prompt, completion, spend, hit):
        return {"request_id": f"r{i}", "call_type": "acompletion", "startTime": f"2026-12-05 10:0{i}:00.000000",
                "endTime": f"2026-12-05 10:0{i}:01.000000", "model": model, "custom_llm_provider": provider,
                "prompt_tokens": prompt, "completion_tokens": completion, "spend": spend, "status": "success",
                "cache_hit": hit, "metadata": {"spend_logs_metadata": {"feature": "chat"}}}

    recs = [spend_log(1, "gpt-4o", "openai", 200_000, 20_000, 0.0, "False"),
            spend_log(2, "gpt-4o", "openai", 200_000, 20_000, 0.0, "False"),
            spend_log(3, "acme-llama-ft", "hosted_vllm", 200_000, 20_000, 0.0, "False"),
            spend_log(4, "gpt-4o", "openai", 200_000, 20_000, 0.0, "True"),     # a cache hit of the proxy: free
            spend_log(5, "gpt-4o", "openai", 1_000, 100, 0.0035, "False"),      # priced by LiteLLM: kept
            spend_log(6, "gpt-4o", "openai", 0, 0, 0.0, "False")]               # no token: nothing to price, 0
    payload = {"id": "p1", "call_type": "acompletion", "startTime": 1796292000.0, "endTime": 1796292001.0,
               "model": "acme-llama-ft", "custom_llm_provider": "hosted_vllm", "prompt_tokens": 10,
               "completion_tokens": 5, "response_cost": 0.0, "status": "success", "cache_hit": False,
               "metadata": {"spend_logs_metadata": {"feature": "chat"}}}
    f = tmp_path / "spend.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in [*recs, payload]))
    load(db, f)
    got = {r["call_id"]: r["cost_usd"] for r in rows(db, "select call_id, cost_usd from calls")}
    assert got == {"r1": None, "r2": None, "r3": None, "r4": 0.0, "r5": 0.0035, "r6": 0.0, "p1": None}
    assert call(db, "r1")["attributes"]["litellm.reported_cost"] == 0.0  # what LiteLLM wrote, kept beside
    load_prices(db, config=False)
    cfg = tmp_path / "wb.toml"
    cfg.write_text("[budget.chat]\nmonthly_usd = 1\n")
    b, firing = wb.budget_status(db, config=cfg, at="2026-12-06")
    # 2 x (200k x $2.50 + 20k x $10 per million) = $1.40, + $0.0035 reported; acme-llama-ft twice unpriced
    assert b.select(pl_round("spend_usd"), "status", "unpriced_count").rows() == [(1.4035, "over", 2)] and firing


def pl_round(col):
    import polars as pl

    return pl.col(col).round(6)


def test_pretty_printed_json_array_is_read_as_an_array_not_line_by_line(db, tmp_path):
    s = load(db, "litellm_spendlogs.json")
    assert counts(s) == (3, 3, 0, 0)  # 3 elements, not the file's dozens of lines
    assert call(db, "req-1")["cache_read_tokens"] == 64
    # with a mapping too: the array's elements are the records
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "request_id"\nts = "startTime"\nstatus = { value = "ok" }\n')
    other = wb.connect(":memory:")
    s2 = ingest(other, DATA / "litellm_spendlogs.json", mapping=m, progress=False)
    assert (s2.files[0]["format"], counts(s2)) == ("jsonl", (3, 3, 0, 0))
    other.close()


# ------------------------------------------------------------------------------------------------------ OTLP documents


def test_otlp_pretty_documents_give_the_same_rows_as_json_lines(db, tmp_path):
    load(db, "otlp_documents.json")
    lines = tmp_path / "same.jsonl"
    from workbench.io.records import iter_json_records

    docs = [v for _k, v, _r, _e in iter_json_records((DATA / "otlp_documents.json").read_bytes())]
    lines.write_text("".join(json.dumps(d) + "\n" for d in docs))
    other = wb.connect(":memory:")
    s = ingest(other, lines, progress=False)  # the SQL line reader
    assert counts(s) == (3, 2, 0, 1)
    q = "select * exclude (ingest_run_id) from calls order by call_id"
    assert db.duckdb.execute(q).fetchall() == other.duckdb.execute(q).fetchall()
    assert [r[1:] for r in quarantine(db)] == [r[1:] for r in quarantine(other)]
    other.close()
    r = call(db, "1111111111111111")
    assert (r["input_tokens"], r["output_tokens"]) == (700, 70)  # input_tokens and the older prompt_tokens: once
    assert call(db, "2222222222222222")["status"] == "blocked"  # content_filter
    assert totals(db) == (2, 1000, 100)


def test_langfuse_batch_lines_from_litellms_callback_reconcile_with_total(db):
    s = load(db, "langfuse_batch_litellm.jsonl")
    assert counts(s) == (2, 2, 0, 0) and s.files[0]["format"] == "langfuse_batch"
    r = call(db, "time-08-00-00-000000_chatcmpl-a1")
    # input 700 (prompt 1000 minus the 300 cache reads) + 300 read + 200 creation would be 1200 + 50 > total 1050:
    # the creation tokens were left inside input, so input is 700 + 300 = 1000
    assert (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"], r["cache_write_tokens"]) == (1000, 50, 300, 200)
    assert (r["ttft_ms"], r["cost_usd"], r["user_id"], r["feature"]) == (900.0, 0.0042, "cust-5", "triage")
    assert totals(db) == (2, 1500, 70)


def test_langfuse_observations_api_page_and_bare_observations(db, tmp_path):
    obs = {"id": "o-1", "traceId": "t-x", "type": "GENERATION", "model": "gpt-4o", "startTime": "2025-11-26T10:00:00Z",
           "endTime": "2025-11-26T10:00:01Z", "latency": 1.0, "timeToFirstToken": 0.25,
           "usageDetails": {"input": 10, "output": 2, "total": 12}, "calculatedTotalCost": 0.0001}
    page = tmp_path / "observations.json"
    page.write_text(json.dumps({"data": [obs, {**obs, "id": "o-2", "endTime": None}], "meta": {"page": 1}}))
    s = load(db, page)
    assert (s.files[0]["format"], counts(s)) == ("langfuse", (2, 2, 0, 0))
    r = call(db, "o-1")
    assert (r["ttft_ms"], r["cost_usd"], r["input_tokens"], r["trace_id"]) == (250.0, 0.0001, 10, "t-x")
    assert call(db, "o-2")["latency_ms"] == 1000.0  # no endTime: the API's latency (seconds)


def test_vercel_console_exporter_objects(db, tmp_path):
    span = {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "parentId": "00f067aa0ba902b7", "name": "ai.generateText.doGenerate",
            "id": "00f067aa0ba90300", "kind": 0, "timestamp": 1763805600000000, "duration": 750000,
            "attributes": {"ai.operationId": "ai.generateText.doGenerate", "ai.usage.promptTokens": 9,
                           "ai.usage.completionTokens": 3, "ai.model.id": "gpt-4o", "ai.model.provider": "openai.chat"},
            "status": {"code": 0}, "events": [], "links": []}
    p = tmp_path / "console.json"
    p.write_text(json.dumps([span]))
    s = load(db, p)
    assert (s.files[0]["format"], counts(s)) == ("vercel", (1, 1, 0, 0))
    r = call(db, "00f067aa0ba90300")  # timestamp and duration in microseconds
    assert (r["ts"], r["latency_ms"], r["parent_id"]) == (ts(2025, 11, 22, 10, 0), 750.0, "00f067aa0ba902b7")
    assert (r["input_tokens"], r["output_tokens"], r["operation"]) == (9, 3, "chat")


def test_a_json_file_without_records_loads_nothing(db, tmp_path):
    (tmp_path / "a.json").write_text("[]\n")
    (tmp_path / "b.json").write_text("")
    s = load(db, [tmp_path / "a.json", tmp_path / "b.json"])
    assert counts(s) == (0, 0, 0, 0) and [f["format"] for f in s.files] == ["otel", "otel"]


# ------------------------------------------------------------------------------------------------------ robustness

_WEIRD = [None, "", "x", -1, 0, 1.5e308, 10**30, True, [], {}, [1, 2], {"a": 1}, "2025-13-45", "nan", ["a", "b"]]


def _mutate(o, rng):
    """Replace or drop members at random: the shapes real exports get wrong."""
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            r = rng.random()
            if r < 0.15:
                out[k] = rng.choice(_WEIRD)
            elif r >= 0.2:
                out[k] = _mutate(v, rng)
        return out
    if isinstance(o, list):
        return [_mutate(x, rng) for x in o if rng.random() > 0.1]
    return o


@pytest.mark.parametrize("name", ["langfuse_trace.json", "langfuse_batch.json", "vercel_spans.json",
                                  "openinference_spans.json", "litellm_payloads.jsonl", "otlp_documents.json"])
def test_members_of_unexpected_types_are_quarantined_never_fatal(tmp_path, name):
    import random

    from workbench.io.records import iter_json_records

    fmt = EXPECTED[name][0]
    recs = [v for _k, v, _r, _e in iter_json_records((DATA / name).read_bytes())]
    rng = random.Random(7)
    for i in range(6):
        p = tmp_path / f"{i}-{name}.json"
        p.write_text(json.dumps([_mutate(r, rng) for r in recs], default=str))
        d = wb.connect(":memory:")
        s = ingest(d, p, format=fmt, progress=False)  # never an IngestError for the whole file
        assert s.read == s.inserted + s.duplicates + s.quarantined
        got = d.duckdb.execute("select count(*) from quarantine where reason is null or reason = ''").fetchone()[0]
        assert got == 0  # every quarantined record says why
        d.close()


@pytest.mark.parametrize("name", ["agent_tool.jsonl", "anthropic_system.jsonl", "errors.jsonl", "openai_chat.jsonl",
                                  "openinference.jsonl"])
def test_otlp_sql_and_python_paths_give_identical_rows(tmp_path, name):
    """The same spans as JSON lines (DuckDB SQL reader) and as a pretty-printed array (Python reader)."""
    src = Path(__file__).parent / "data" / "otel" / name
    docs = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    pretty = tmp_path / (name + ".json")
    pretty.write_text(json.dumps(docs, indent=2))
    a, b = wb.connect(":memory:"), wb.connect(":memory:")
    sa, sb = ingest(a, src, progress=False), ingest(b, pretty, progress=False)
    assert counts(sa) == counts(sb) and sb.files[0]["format"] == "otel"
    q = "select * exclude (ingest_run_id, attributes), attributes::VARCHAR as attributes from calls order by call_id"
    ra, rb = a.duckdb.execute(q).fetchall(), b.duckdb.execute(q).fetchall()
    assert [r[:-1] for r in ra] == [r[:-1] for r in rb]
    assert [json.loads(r[-1]) for r in ra] == [json.loads(r[-1]) for r in rb]
    a.close(), b.close()


# ------------------------------------------------------------------------- read as they go, in batches of records

def _load_all(path: Path, monkeypatch, batch: int):
    from workbench.io import sniff

    monkeypatch.setattr(sniff, "BATCH_RECORDS", batch)
    db = wb.connect(":memory:")
    try:
        summary = ingest(db, path, progress=False)
        s = (summary.read, summary.inserted, summary.duplicates, summary.quarantined, summary.files[0]["format"])
        rows = db.duckdb.execute("select * exclude (ingest_run_id) from calls order by all").fetchall()
        q = db.duckdb.execute("select line_no, field, reason, raw from quarantine order by all").fetchall()
        return s, rows, q
    finally:
        db.close()


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.iterdir() if p.suffix in (".json", ".jsonl", ".csv")))
def test_record_formats_load_the_same_in_batches_of_records(tmp_path, monkeypatch, name):
    """The formats read in Python are turned into rows a batch of records at a time; a batch of 2 records gives the
    same rows, quarantine and counts as the whole file at once (Langfuse ingestion batches, which merge events across
    records, come as one batch)."""
    whole = _load_all(DATA / name, monkeypatch, 10**9)
    assert _load_all(DATA / name, monkeypatch, 2) == whole


def test_json_lines_are_read_line_by_line_as_the_whole_text_reads_them(tmp_path):
    from workbench.io.records import iter_json_lines, iter_json_records

    text = (b'\xef\xbb\xbf{"a": 1}\r\n\n  \nnot json\n[{"b": 2}, {"b": 3}]\n{"c": "\xc3\xa9"}\n'
            b'{"d": 1} trailing\n{"e": 5}')
    for name, data in (("a.jsonl", text), ("a.jsonl.gz", gzip.compress(text))):
        p = tmp_path / name
        p.write_bytes(data)
        assert list(iter_json_lines(p)) == list(iter_json_records(text[3:]))


def _ingest_python_peak(path):
    """Load ``path`` into a new in-memory database: its summary and Python's peak memory (tracemalloc) meanwhile."""
    import tracemalloc

    db = wb.connect(":memory:")
    try:
        tracemalloc.start()
        try:
            s = ingest(db, path, progress=False)
            return s, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        db.close()


def test_a_large_litellm_file_is_not_held_in_python_memory(tmp_path, monkeypatch):
    """Python's memory while loading a JSON-lines file of a record format stays that of a batch of records: 4 times
    the records take about the same peak (it was the whole file's rows, about 20 KB a record)."""
    from workbench.io import sniff

    monkeypatch.setattr(sniff, "BATCH_RECORDS", 200)
    recs = [json.loads(line) for line in (DATA / "litellm_payloads.jsonl").read_text().splitlines() if line.strip()]

    def peak(n: int) -> int:
        p = tmp_path / f"l{n}.jsonl"
        with open(p, "w") as fh:
            for i in range(n):
                r = dict(recs[i % len(recs)], id=f"x-{i}")
                fh.write(json.dumps(r) + "\n")
        s, size = _ingest_python_peak(p)
        assert s.read == n
        return size

    small, large = peak(1000), peak(4000)
    assert large < 1.5 * small, (small, large)



def test_a_batch_of_records_is_parsed_and_mapped_without_garbage_collection(tmp_path, monkeypatch, gc_collections):
    """The cyclic collector is paused while a batch of records is parsed and mapped (the records are dicts and
    lists freed by reference counting; collections walking them took a third of the time): at most one run per
    batch, when the collector is back on and the batch's rows are handed over. Before, every few hundred records."""
    import gc

    from workbench.io import sniff
    from workbench.schema import TABLES

    monkeypatch.setattr(sniff, "BATCH_RECORDS", 2000)
    recs = [json.loads(line) for line in (DATA / "litellm_payloads.jsonl").read_text().splitlines() if line.strip()]
    p = tmp_path / "l.jsonl"
    with open(p, "w") as fh:
        for i in range(6000):
            fh.write(json.dumps(dict(recs[i % len(recs)], id=f"x-{i}")) + "\n")
    names = TABLES["calls"].names
    [r.to_arrow(columns=names) for r in sniff.row_batches(DATA / "litellm_payloads.jsonl", "litellm")]  # imports
    batches, runs = gc_collections(lambda: [len(r.to_arrow(columns=names)) for r in sniff.row_batches(p, "litellm")])
    assert batches == [2000, 2000, 2000]
    assert len(runs) <= len(batches), runs
    assert gc.isenabled()
    # A failure inside a batch (a CSV quote never closed) still turns the collector back on.
    bad = tmp_path / "spend.csv"
    bad.write_text((DATA / "litellm_spendlogs.csv").read_text() + '"never closed,\n')
    with pytest.raises(IngestError):
        list(sniff.row_batches(bad, "litellm"))
    assert gc.isenabled()
    # A caller who turned the collector off keeps it off.
    gc.disable()
    try:
        assert sum(len(r) for r in sniff.row_batches(p, "litellm")) == 6000 and not gc.isenabled()
    finally:
        gc.enable()


def test_a_record_format_csv_whose_header_names_a_column_twice_is_refused_naming_it(db, tmp_path):
    # Before, the second "spend" column silently replaced the first: every call got the other column's cost.
    text = (DATA / "litellm_spendlogs.csv").read_text()
    header, rest = text.split("\n", 1)
    bad = tmp_path / "spend.csv"
    bad.write_text(header.replace(",total_tokens,", ",spend,", 1) + "\n" + rest)
    with pytest.raises(IngestError, match=r"spend\.csv: line 1: the header names the column 'spend' twice "
                                          r"\(columns 4 and 5\)"):
        ingest(db, bad, progress=False)
    assert db.duckdb.execute("select count(*) from calls").fetchone()[0] == 0
    # a Phoenix spans export in Parquet, its schema naming a column twice
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_arrays([pa.array(["s1"]), pa.array(["t1"]), pa.array(["LLM"]), pa.array(["t2"])],
                                        names=["context.span_id", "context.trace_id", "span_kind", "context.trace_id"]),
                   tmp_path / "spans.parquet")
    with pytest.raises(IngestError, match=r"spans\.parquet: its schema names the column 'context.trace_id' twice "
                                          r"\(columns 2 and 4\)"):
        ingest(db, tmp_path / "spans.parquet", progress=False, format="openinference")


def test_the_opentelemetry_sdk_console_exporter_output_loads_with_status_resource_and_ids(db, tmp_path):
    # The Python SDK's ConsoleSpanExporter (spans pretty-printed one after the other, the usual way to save spans to
    # a file while developing): "status": {"status_code": "ERROR"}, "resource": {"attributes": {...}} and ids written
    # "0x..." . Before, an error span loaded as ok, the service name was lost and the ids kept their "0x".
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace as otel
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    path = tmp_path / "console.json"
    with open(path, "w") as out:
        tp = TracerProvider(resource=Resource.create({"service.name": "support-bot",
                                                      "deployment.environment.name": "prod"}))
        tp.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out)))
        tracer = tp.get_tracer("t")
        with tracer.start_as_current_span("invoke_agent support") as root:
            root.set_attribute("gen_ai.operation.name", "invoke_agent")
            with tracer.start_as_current_span("chat gpt-4o", kind=otel.SpanKind.CLIENT) as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.request.model", "gpt-4o")
                chat.set_attribute("gen_ai.usage.input_tokens", 120)
            with tracer.start_as_current_span("execute_tool lookup") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "lookup")
                tool.set_status(otel.Status(otel.StatusCode.ERROR, "lookup failed"))
        tp.shutdown()
    s = load(db, path)
    assert (s.inserted, s.quarantined) == (3, 0)
    got = {r["operation"]: r for r in rows(db, "select * from calls")}
    root_id = format(root.get_span_context().span_id, "016x")
    assert got["invoke_agent"]["call_id"] == root_id and got["invoke_agent"]["parent_id"] is None
    assert got["chat"]["parent_id"] == root_id == got["execute_tool"]["parent_id"]
    assert got["chat"]["trace_id"] == format(root.get_span_context().trace_id, "032x")
    assert (got["execute_tool"]["status"], got["chat"]["status"]) == ("error", "ok")
    assert json.loads(got["execute_tool"]["attributes"])["otel.status_message"] == "lookup failed"
    assert {r["feature"] for r in got.values()} == {"support-bot"}
    assert {r["environment"] for r in got.values()} == {"prod"}
    assert (got["chat"]["model"], got["chat"]["input_tokens"]) == ("gpt-4o", 120)


_T = "0af7651916cd43dd8448eb211c80319c"


def _jaeger_doc():
    """What Jaeger's UI downloads for a trace of OpenTelemetry GenAI spans (its query API's JSON model)."""
    def tag(k, v, t="string"):
        return {"key": k, "type": t, "value": v}

    t0 = 1763632800000000  # microseconds
    return {"data": [{"traceID": _T, "processes": {"p1": {"serviceName": "support-bot", "tags": [
        tag("deployment.environment.name", "prod"), tag("telemetry.sdk.language", "python")]}}, "warnings": None,
        "spans": [
            {"traceID": _T, "spanID": "00000000000000a1", "operationName": "invoke_agent support", "references": [],
             "startTime": t0, "duration": 3000000, "processID": "p1", "flags": 1, "logs": [], "warnings": None,
             "tags": [tag("gen_ai.operation.name", "invoke_agent"), tag("span.kind", "internal"),
                      tag("otel.scope.name", "agent-lib"), tag("internal.span.format", "otlp")]},
            {"traceID": _T, "spanID": "00000000000000a2", "operationName": "chat gpt-4o", "processID": "p1",
             "references": [{"refType": "CHILD_OF", "traceID": _T, "spanID": "00000000000000a1"}],
             "startTime": t0 + 100000, "duration": 1500000,
             "tags": [tag("gen_ai.operation.name", "chat"), tag("gen_ai.request.model", "gpt-4o"),
                      tag("gen_ai.usage.input_tokens", 120, "int64"), tag("gen_ai.usage.output_tokens", 30, "int64"),
                      tag("otel.status_code", "ERROR"), tag("otel.status_description", "rate limited"),
                      tag("error", True, "bool"), tag("span.kind", "client")],
             "logs": [{"timestamp": t0 + 400000, "fields": [tag("event", "gen_ai.first_token")]}]}]}],
        "total": 0, "limit": 0, "offset": 0, "errors": None}


def test_a_jaeger_ui_download_loads_with_parents_errors_service_and_first_token(db, tmp_path):
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(_jaeger_doc(), indent=2))
    s = load(db, path)
    assert (s.inserted, s.quarantined) == (2, 0)
    got = {r["call_id"]: r for r in rows(db, "select * from calls")}
    agent, chat = got["00000000000000a1"], got["00000000000000a2"]
    assert (agent["parent_id"], chat["parent_id"], chat["trace_id"]) == (None, "00000000000000a1", _T)
    assert (agent["operation"], chat["operation"], chat["model"]) == ("invoke_agent", "chat", "gpt-4o")
    assert (chat["input_tokens"], chat["output_tokens"], chat["latency_ms"], chat["ttft_ms"]) == (120, 30, 1500.0, 300.0)
    assert (chat["status"], agent["status"]) == ("error", "ok")
    assert json.loads(chat["attributes"])["otel.status_message"] == "rate limited"
    assert (chat["feature"], chat["environment"]) == ("support-bot", "prod")
    assert chat["ts"] == dt.datetime(2025, 11, 20, 10, 0, 0, 100000)
    assert db.duckdb.execute("select format from ingest_runs").fetchone()[0] == "jaeger"


def test_a_zipkin_trace_loads_as_one_array_or_a_search_result(db, tmp_path):
    t0 = 1763632800000000
    spans = [
        {"traceId": _T, "id": "00000000000000b1", "name": "post /ask", "kind": "SERVER", "timestamp": t0,
         "duration": 2000000, "localEndpoint": {"serviceName": "support-bot", "ipv4": "10.0.0.1"},
         "tags": {"http.method": "POST", "http.route": "/ask"}},
        {"traceId": _T, "parentId": "00000000000000b1", "id": "00000000000000b2", "name": "chat gpt-4o",
         "kind": "CLIENT", "timestamp": t0 + 200000, "duration": 1000000,
         "localEndpoint": {"serviceName": "support-bot"},
         "tags": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                  "gen_ai.usage.input_tokens": "90", "otel.status_code": "ERROR", "error": "upstream timeout"},
         "annotations": [{"timestamp": t0 + 450000, "value": '{"gen_ai.first_token":{}}'}]},
    ]
    (tmp_path / "one.json").write_text(json.dumps(spans))
    s = load(db, tmp_path / "one.json")
    assert (s.inserted, s.quarantined) == (2, 0)
    got = {r["call_id"]: r for r in rows(db, "select * from calls")}
    web, chat = got["00000000000000b1"], got["00000000000000b2"]
    assert (web["operation"], chat["operation"], chat["parent_id"]) == ("other", "chat", "00000000000000b1")
    # (its message says it timed out: a timeout, by the rule of every reader, records.is_timeout)
    assert (chat["status"], chat["input_tokens"], chat["latency_ms"], chat["ttft_ms"]) == ("timeout", 90, 1000.0, 250.0)
    assert json.loads(chat["attributes"])["otel.status_message"] == "upstream timeout"
    assert chat["feature"] == "support-bot"
    (tmp_path / "search.json").write_text(json.dumps([spans]))  # the search API: an array of traces
    s = load(db, tmp_path / "search.json")
    assert (s.read, s.duplicates) == (2, 2)
    assert db.duckdb.execute("select distinct format from ingest_runs").fetchall() == [("zipkin",)]


def test_jaeger_and_zipkin_times_given_as_json_strings_are_read_as_numbers_or_quarantined(db, tmp_path):
    # A span whose startTime/duration (Jaeger) or timestamp/duration (Zipkin) was written as a JSON string loaded with
    # end_ts and latency_ms NULL, without a word; a numeric string is its number, as the OTLP readers read "42".
    t0 = 1763632800000000
    jaeger = {"traceID": _T, "processes": {"p1": {"serviceName": "bot"}}, "spans": [
        {"traceID": _T, "spanID": "00000000000000d1", "operationName": "chat", "processID": "p1",
         "startTime": str(t0), "duration": "1500000"},
        {"traceID": _T, "spanID": "00000000000000d2", "operationName": "chat", "processID": "p1",
         "startTime": t0, "duration": "1.5s"}]}
    (tmp_path / "jaeger.json").write_text(json.dumps(jaeger))
    s = load(db, tmp_path / "jaeger.json")
    assert (s.read, s.inserted, s.quarantined) == (2, 1, 1)
    assert quarantine(db) == [(1, "duration", "non-numeric value in duration: '1.5s'")]
    zipkin = [{"traceId": _T, "id": "00000000000000e1", "name": "chat", "timestamp": str(t0 + 1), "duration": "250000"},
              {"traceId": _T, "id": "00000000000000e2", "name": "chat", "timestamp": t0, "duration": "soon"}]
    (tmp_path / "zipkin.json").write_text(json.dumps(zipkin))
    s = load(db, tmp_path / "zipkin.json")
    assert (s.read, s.inserted, s.quarantined) == (2, 1, 1)
    got = {r["call_id"]: r for r in rows(db, "select call_id, ts, end_ts, latency_ms from calls")}
    assert (got["00000000000000d1"]["latency_ms"], got["00000000000000e1"]["latency_ms"]) == (1500.0, 250.0)
    assert got["00000000000000d1"]["end_ts"] == dt.datetime(2025, 11, 20, 10, 0, 1, 500000)
    assert ("duration", "non-numeric value in duration: 'soon'") in [q[1:] for q in quarantine(db)]


# ------------------------------------------------------------------ numbers written as text: one rule in every reader

def _token_files(text: str) -> dict[str, object]:
    """One call with ``text`` as its input token count, in each reader that can write it as text."""
    t0 = "2025-11-20T10:00:00Z"
    attr = {"key": "gen_ai.usage.input_tokens", "value": {"intValue": text}}
    otlp = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": _T, "spanId": "00000000000000a1", "name": "chat", "startTimeUnixNano": "1763632800000000000",
         "attributes": [attr]}]}]}]}
    obs = {"id": "00000000000000a1", "traceId": "t1", "type": "GENERATION", "startTime": t0,
           "usageDetails": {"input": text}}
    return {
        "calls.jsonl": json.dumps({"id": "00000000000000a1", "t": t0, "s": "ok", "n": text}) + "\n",
        "otlp.jsonl": json.dumps(otlp) + "\n", "otlp.json": json.dumps(otlp, indent=2),
        "langfuse.json": json.dumps({"trace": {"id": "t1"}, "observations": [obs]}),
        "langfuse_batch.json": json.dumps({"batch": [{"type": "generation-create", "body": obs}]}),
        "jaeger.json": json.dumps({"traceID": _T, "processes": {}, "spans": [
            {"traceID": _T, "spanID": "00000000000000a1", "operationName": "chat", "startTime": 1763632800000000,
             "tags": [{"key": "gen_ai.usage.input_tokens", "type": "int64", "value": text}]}]}),
        "zipkin.json": json.dumps([{"traceId": _T, "id": "00000000000000a1", "name": "chat",
                                    "timestamp": 1763632800000000, "tags": {"gen_ai.usage.input_tokens": text}}]),
    }


def _outcome(tmp_path, name: str, data: str, column: str):
    """(the column's value, None) when the call loaded, (None, (field, kind)) when it was quarantined."""
    p = tmp_path / name
    p.write_text(data)
    d = wb.connect(":memory:")
    try:
        m = tmp_path / "calls.toml"
        m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = "t"\nstatus = "s"\ninput_tokens = "n"\n')
        s = ingest(d, p, progress=False, **({"mapping": m} if name == "calls.jsonl" else {}))
        assert s.read == 1 and s.read == s.inserted + s.quarantined, name
        got = d.duckdb.execute(f"select {column} from calls").fetchall()
        q = d.duckdb.execute("select field from quarantine").fetchall()
        return (got[0][0], None) if got else (None, (q[0][0], next(iter(s.reasons))))
    finally:
        d.close()


@pytest.mark.parametrize("text,want", [
    (" 12 ", (12, None)), ("+12", (12, None)), ("1.2e1", (12, None)), ("12.0", (12, None)), ("", (None, None)),
    ("1_2", (None, ("input_tokens", "non-numeric value: input_tokens"))),
    ("\u0661\u0662", (None, ("input_tokens", "non-numeric value: input_tokens"))),  # Arabic-Indic 12
    ("+-12", (None, ("input_tokens", "non-numeric value: input_tokens"))),
    ("0x0c", (None, ("input_tokens", "non-numeric value: input_tokens"))),
    ("12.5", (None, ("input_tokens", "not an integer: input_tokens"))),
    ("nan", (None, ("input_tokens", "not an integer: input_tokens"))),
    ("inf", (None, ("input_tokens", "out of range: input_tokens"))),
])
def test_a_number_written_as_text_is_read_by_one_rule_in_every_reader(tmp_path, text, want):
    # Numeric text was read by three rules: the engine's SQL cast and Jaeger's float() took "1_2" as 12 (and
    # Jaeger's int64 tags took Arabic-Indic digits), Langfuse handed it on to the engine, which took it, the OTLP
    # documents' int() took it and Jaeger's float() took "nan" for a duration. One rule now (records.number):
    # ASCII decimal digits, sign, fraction, exponent, whitespace around; whatever else is quarantined naming the field.
    got = {name: _outcome(tmp_path, name, data, "input_tokens") for name, data in _token_files(text).items()}
    assert got == dict.fromkeys(got, want)


_ARABIC_INDIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")


@pytest.mark.parametrize("shape,ok", [
    (lambda d: f" {d}\t", True), (lambda d: d[:1] + "_" + d[1:], False), (lambda d: d.translate(_ARABIC_INDIC), False),
    (lambda d: "nan", False), (lambda d: "", False)], ids=["spaces", "separator", "arabic-indic", "nan", "empty"])
def test_a_time_written_as_text_is_read_by_one_rule_in_every_reader(tmp_path, shape, ok):
    # The same epoch time, in each reader's unit, written as text: with spaces around it is the time; with a digit
    # separator, other digits, as "nan" or empty the span is quarantined in every reader, naming ts (Jaeger's and
    # Zipkin's float() and the OTLP documents' int() read "1_763..." as the time, the JSON-lines reader's cast too).
    us, ns = shape(str(1763632800 * 10**6)), shape(str(1763632800 * 10**9))
    otlp = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": _T, "spanId": "00000000000000a1", "name": "chat", "startTimeUnixNano": ns}]}]}]}
    files = {
        "otlp.jsonl": json.dumps(otlp) + "\n", "otlp.json": json.dumps(otlp, indent=2),
        "langfuse.json": json.dumps({"trace": {"id": "t1"}, "observations": [
            {"id": "00000000000000a1", "traceId": "t1", "type": "SPAN", "startTime": us}]}),
        "jaeger.json": json.dumps({"traceID": _T, "processes": {}, "spans": [
            {"traceID": _T, "spanID": "00000000000000a1", "operationName": "chat", "startTime": us}]}),
        "zipkin.json": json.dumps([{"traceId": _T, "id": "00000000000000a1", "name": "chat", "timestamp": us}]),
    }
    got = {name: _outcome(tmp_path, name, data, "ts") for name, data in files.items()}
    if ok:
        assert got == dict.fromkeys(got, (ts(2025, 11, 20, 10, 0), None))
    else:
        assert {n: (g[0], g[1][0]) for n, g in got.items()} == dict.fromkeys(got, (None, "ts")), got


def test_phoenix_rest_api_span_pages_load(db, tmp_path):
    # Phoenix's REST API (GET /v1/projects/{project}/spans) returns a page {"data": [span, ...], "next_cursor": ...};
    # saved as a file it was refused as "not OpenTelemetry spans". Each span of each page is read as a Phoenix span.
    def span(i, kind, parent=None, **attrs):
        return {"id": f"U3BhbjoK{i}", "name": f"s{i}", "span_kind": kind, "parent_id": parent,
                "context": {"trace_id": _T, "span_id": f"00000000000000c{i}"},
                "start_time": f"2025-11-20T10:00:0{i}.000Z", "end_time": f"2025-11-20T10:00:0{i}.500Z",
                "status_code": "ERROR" if i == 2 else "OK", "status_message": "", "events": [],
                "attributes": attrs}

    page1 = {"data": [span(1, "CHAIN", **{"input.value": "q"}),
                      span(2, "LLM", "00000000000000c1", **{"llm.model_name": "gpt-4o",
                                                           "llm.token_count.prompt": 12})],
             "next_cursor": "U3BhbjoxMjM="}
    page2 = {"data": [span(3, "TOOL", "00000000000000c1", **{"tool.name": "search"})], "next_cursor": None}
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(page1) + "\n" + json.dumps(page2) + "\n")
    s = load(db, path)
    assert (s.inserted, s.quarantined, s.files[0]["format"]) == (3, 0, "openinference")
    got = {r["call_id"]: r for r in rows(db, "select * from calls")}
    assert [got[f"00000000000000c{i}"]["operation"] for i in (1, 2, 3)] == ["chain", "chat", "execute_tool"]
    llm = got["00000000000000c2"]
    assert (llm["model"], llm["input_tokens"], llm["status"], llm["parent_id"]) == ("gpt-4o", 12, "error",
                                                                                    "00000000000000c1")


def test_rows_to_arrow_writes_every_value_as_its_text_by_any_path():
    """Rows.to_arrow writes columns of texts and of integers without a Python call per value: every column, of
    whatever mix of types, holds exactly records.value_text of each value (integers beyond 64 bits, booleans among
    integers, NaN among floats, objects, gaps)."""
    import math
    import random

    from workbench.io.records import Rows, value_text

    columns = {
        "texts": ["a", None, "", "é"],
        "ints": [0, -(2 ** 63), 2 ** 63 - 1, None],
        "huge": [1, 2 ** 70, None, -5],
        "bools_and_ints": [True, 1, False, None],
        "floats": [0.1, float("nan"), float("inf"), None, 1e-07, -0.0],
        "mixed": ["1", 1, 1.0, None, {"a": [1, 2]}, [None]],
        "objects": [{"x": 1}, None, [], {}],
        "gaps": [None, None],
    }
    rng = random.Random(1)
    rows = Rows()
    for i in range(200):
        rows.add(i + 1, {c: rng.choice(vals) for c, vals in columns.items() if rng.random() < 0.9})
    t = rows.to_arrow(columns=tuple(columns))
    for c in columns:
        assert t.column("s:" + c).to_pylist() == [value_text(v.get(c)) for v in rows.values], c
    assert t.column("s:huge").to_pylist().count(str(2 ** 70)) > 0
    assert all(x is None or not math.isnan(float(x)) for x in t.column("s:floats").to_pylist() if x != "inf")

# ------------------------------------------------------------------------------------------- arrays read as they go

_STREAM_CASES = [
    b'[\n {"a": 1},\n {"a": [1, 2, {"b": "]},["}]},\n {"s": "caf\xc3\xa9 \\" , ] [ \\\\"}\n]\n',
    b'[{"a": 1}, 12345678901234567890, -1.5e-7, true, null, "x", [], {}, [1, [2]]]',
    b'[  ]',
    b'[\n  {"cost": NaN, "n": Infinity, "m": -Infinity}\n]',
    b'{\n "a": 1\n}\n{\n "b": [1, 2]\n}\n[\n {"c": 3}, {"c": 4}\n]\n',  # documents, one of them an array
    b'[{"a": 1}, {"a": 2}]\n[{"a": 3}]',  # two arrays one after the other
    b'[{"a": 1}, {"a": 2}, {"a": ',  # cut short
    b'[{"a": 1}, {"a": 2} {"a": 3}]',  # a comma missing
    b'[{"a": 1}, {"a": 2},]',  # a trailing comma
    b'[{"a": 1}, not json, {"a": 3}]',
    b'{\n "a": 1\n}\n{ "b": \n',  # a document cut short
    b'[1, 2, 3',
    b'[1, 2, 3]   x',
    b'[{"a": 1}, ' + b'[' * 5000 + b'"]["' + b']' * 5000 + b', {"a": 3}]',  # nested too deeply to parse
    b'{"a": 1}\n' + b'{"b": ' * 5000 + b'1' + b'}' * 5000 + b'\n{"a": 3}\n',  # a document the same
    b'[{"a": 1}, {"a": "x\\ud800y"}, {"a": "\\ud83d\\ude00"}, {"a": 3}]',  # a lone surrogate; a valid pair
]


@pytest.mark.parametrize("text", _STREAM_CASES)
def test_an_array_read_in_pieces_of_any_size_gives_what_the_whole_text_gives(text):
    from workbench.io.records import _stream_values, json_layout

    array = json_layout(text) == "array"
    whole = list(_stream_values(iter([text.decode()]), array))
    for size in (1, 2, 3, 7, 64):
        s = text.decode()
        pieces = [s[i:i + size] for i in range(0, len(s), size)]
        assert list(_stream_values(iter(pieces), array)) == whole, size


def _nan_equal(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_a_valid_array_streams_its_elements_in_order_with_their_positions():
    from workbench.io.records import iter_json_records

    assert [(k, v) for k, v, _r, _e in iter_json_records(_STREAM_CASES[1])] == list(
        enumerate(json.loads(_STREAM_CASES[1]), start=1))
    got = list(iter_json_records(_STREAM_CASES[3]))
    assert len(got) == 1 and _nan_equal(got[0][1], {"cost": float("nan"), "n": float("inf"), "m": float("-inf")})
    # documents: numbered by the line they start on; a document that is an array gives its elements, with its line
    assert [(k, v) for k, v, _r, _e in iter_json_records(_STREAM_CASES[4])] == [
        (1, {"a": 1}), (4, {"b": [1, 2]}), (7, {"c": 3}), (7, {"c": 4})]


@pytest.mark.parametrize("text, kept, position, raw_start", [
    (b'[{"a": 1}, {"a": 2}, {"a": ', 2, 3, '{"a": '),
    (b'[{"a": 1}, {"a": 2} {"a": 3}]', 2, 3, '{"a": 3}]'),
    (b'[{"a": 1}, not json, {"a": 3}]', 1, 2, "not json"),
    (b'[{"a": 1}, {"a": 2},]', 2, 3, "]"),
])
def test_an_array_with_a_broken_element_keeps_the_elements_before_it_and_names_where_it_broke(
        text, kept, position, raw_start):
    from workbench.io.records import iter_json_records

    got = list(iter_json_records(text))
    assert [v for _k, v, _r, e in got if e is None] == [{"a": i} for i in range(1, kept + 1)]
    k, v, raw, err = got[-1]
    assert (k, v, err) == (position, None, "invalid JSON") and raw.startswith(raw_start)


def test_a_json_array_file_larger_than_the_read_size_streams_the_same_records(tmp_path, monkeypatch):
    from workbench.io import records

    monkeypatch.setattr(records, "_CHUNK", 97)  # many reads, elements cut anywhere, a multi-byte character too
    elems = [{"request_id": f"r-{i}", "note": "é" * (i % 5), "spend": i / 7, "tags": ["a", "b"][: i % 3]}
             for i in range(300)]
    text = ("\ufeff[\n" + ",\n".join(json.dumps(e, ensure_ascii=False, indent=1) for e in elems) + "\n]\n").encode()
    for name, data in (("a.json", text), ("a.json.gz", gzip.compress(text))):
        p = tmp_path / name
        p.write_bytes(data)
        assert [(k, v) for k, v, _r, _e in records.iter_json_file(p)] == list(enumerate(elems, start=1))


def test_a_large_json_array_or_csv_file_is_not_held_in_python_memory(tmp_path, monkeypatch):
    """Python's memory while loading a LiteLLM spend-logs export (a JSON array, and the same as CSV) stays that of
    a batch of records: 4 times the records take about the same peak (both were read whole before)."""
    import csv

    from workbench.io import records, sniff

    monkeypatch.setattr(sniff, "BATCH_RECORDS", 200)
    monkeypatch.setattr(records, "_CHUNK", 1 << 16)
    base = json.loads((DATA / "litellm_spendlogs.json").read_text())
    fields = list(csv.DictReader(open(DATA / "litellm_spendlogs.csv", newline="")).fieldnames)
    base_csv = list(csv.DictReader(open(DATA / "litellm_spendlogs.csv", newline="")))

    def peak(n: int, kind: str) -> int:
        p = tmp_path / f"s{n}.{kind}"
        if kind == "json":
            p.write_text("[\n" + ",\n".join(json.dumps(dict(base[i % len(base)], request_id=f"x-{i}",
                                                            padding="p" * 2000), indent=2) for i in range(n)) + "\n]")
        else:
            with open(p, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=fields)
                w.writeheader()
                for i in range(n):
                    r = dict(base_csv[i % len(base_csv)])
                    r["request_id"] = f"x-{i}"
                    r["metadata"] = (r.get("metadata") or "") + " " * 2000
                    w.writerow(r)
        s, size = _ingest_python_peak(p)
        assert s.read == n and s.files[0]["format"] == "litellm", s.files
        return size

    for kind in ("json", "csv"):
        small, large = peak(1000, kind), peak(4000, kind)
        assert large < 1.5 * small, (kind, small, large)


def test_batches_staged_from_python_are_let_go_before_the_load(tmp_path, monkeypatch):
    """Inside a transaction DuckDB keeps every Arrow batch it was handed until the end (the whole file again, in
    Arrow buffers): the batches are staged before it, so none is left when the load starts."""
    import pyarrow as pa

    from workbench.io import ingest as ing, sniff

    monkeypatch.setattr(sniff, "BATCH_RECORDS", 100)
    base = json.loads((DATA / "litellm_spendlogs.json").read_text())
    p = tmp_path / "s.json"
    p.write_text(json.dumps([dict(base[i % len(base)], request_id=f"x-{i}", padding="p" * 1000) for i in range(2000)]))
    held = []
    real_load = ing._load

    def load(con, *a, **k):
        held.append(pa.total_allocated_bytes())
        return real_load(con, *a, **k)

    monkeypatch.setattr(ing, "_load", load)
    db = wb.connect(tmp_path / "w.duckdb")
    try:
        s = ingest(db, p, progress=False)
        assert s.read == 2000 and s.inserted == 2000
    finally:
        db.close()
    assert held and held[0] < 1_000_000, held  # 20 batches of about 100 KB each were held before


def test_a_format_reader_that_fails_while_staging_writes_nothing_and_says_which_file(tmp_path, monkeypatch):
    from workbench.io import sniff

    def broken(path, fmt):
        yield sniff.Rows()
        raise KeyError("spanContext")

    monkeypatch.setattr(sniff, "row_batches", broken)
    db = wb.connect(tmp_path / "w.duckdb")
    try:
        with pytest.raises(IngestError, match=r"litellm_spendlogs\.json: could not be loaded as .*nothing of it was written.*spanContext"):
            ingest(db, DATA / "litellm_spendlogs.json", progress=False)
        assert db.duckdb.execute("select count(*) from calls").fetchone() == (0,)
        assert db.duckdb.execute("select count(*) from duckdb_tables() where table_name = '_wb_records'").fetchone() == (0,)
    finally:
        db.close()


def test_a_record_nested_too_deeply_to_parse_is_quarantined_and_the_records_after_it_load(tmp_path):
    """Hostile input: a record nested deeper than the interpreter's stack (the parser raised RecursionError and the
    load died with a traceback), and one with a lone surrogate escape, which no UTF-8 can hold (the whole load
    failed: "surrogates not allowed"). Each is one quarantined record, in every layout, and the others load."""
    deep = b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    recs = [json.dumps(dict(r, request_id=f"x-{i}")).encode()
            for i, r in enumerate(json.loads((DATA / "litellm_spendlogs.json").read_text()))]
    lone = recs[1].replace(b'"x-1"', b'"x-1b"').replace(b'"model": "', b'"model": "\\ud800', 1)
    assert b"\\ud800" in lone
    order = [recs[0], deep, recs[1], lone, recs[2]]
    layouts = {
        "lines.jsonl": b"\n".join(order) + b"\n",
        "array.json": b"[" + b", ".join(order) + b"]",
        "pretty.json": b"[\n  " + b",\n  ".join(order) + b"\n]\n",
    }
    for name, data in layouts.items():
        p = tmp_path / name
        p.write_bytes(data)
        db = wb.connect(":memory:")
        s = ingest(db, p, progress=False)
        assert (s.read, s.inserted, s.quarantined) == (5, 3, 2), name
        assert db.duckdb.execute("select reason from quarantine").fetchall() == [("invalid JSON",)] * 2, name
        db.close()
    deep_first = tmp_path / "deep_first.json"
    deep_first.write_bytes(b"[" + deep + b", " + recs[0] + b"]")
    assert detect(deep_first) == ("litellm", "array")


@pytest.mark.parametrize("depth", [300, 1000, 1023])
def test_a_record_nested_as_deep_as_the_parser_reads_loads_whole(tmp_path, depth):
    """Hostile input: a field nested 300 to 1,023 levels deep parses (the reader takes 1,024), but writing the record
    back as JSON for its provenance went past orjson's 255 levels and then the interpreter's stack: the whole file
    failed ("could not be loaded as litellm (nothing of it was written): maximum recursion depth exceeded"). The
    record loads, with the field in its attributes, and so do the others."""
    recs = [json.loads(x) for x in (DATA / "litellm_payloads.jsonl").read_text().splitlines() if x.strip()]
    deep = "[" * depth + "]" * depth
    lines = [json.dumps(recs[0])[:-1] + ', "deep_field": ' + deep + "}"] + [json.dumps(r) for r in recs[1:]]
    p = tmp_path / "deep.jsonl"
    p.write_text("\n".join(lines) + "\n")
    db = wb.connect(":memory:")
    try:
        s = ingest(db, p, progress=False)
        assert (s.read, s.inserted, s.quarantined, s.duplicates) == (5, 3, 1, 1)  # as without the field (FILES)
        got = db.duckdb.execute("select attributes->>'$.\"litellm.deep_field\"' from calls "
                                "where attributes->>'$.\"litellm.deep_field\"' is not null").fetchall()
        assert [v.replace(" ", "") for (v,) in got] == [deep]  # (json.loads here would need the same stack)
    finally:
        db.close()


def test_a_csv_export_with_a_field_over_128_kb_loads(tmp_path):
    """Python's csv module stops at 128 KB a field, and a LiteLLM spend-log export's metadata, prompt or response
    column can be longer: the whole file failed ("field larger than field limit"). Run in a fresh process, where the
    limit is still the default (ingest's own CSV counting raises it for the whole process)."""
    import csv
    import subprocess
    import sys

    rows = list(csv.DictReader(open(DATA / "litellm_spendlogs.csv", newline="")))
    rows[1]["metadata"] = json.dumps({"note": "a" * 300_000})
    p = tmp_path / "big.csv"
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    code = ("import sys, workbench as wb\nfrom workbench.io.ingest import ingest\n"
            f"s = ingest(wb.connect(':memory:'), {str(p)!r}, progress=False)\n"
            "print(s.files[0]['format'], s.read, s.inserted, s.quarantined)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["litellm", "4", "3", "1"], out.stdout + out.stderr[-500:]


def test_a_record_format_csv_with_a_quote_never_closed_fails_naming_the_line_and_writes_nothing(tmp_path):
    """Read loosely, a quote never closed swallowed every later record into one field: 2 records read of 4, the rest
    gone from the counts. It now fails like any CSV that cannot be split into records; a record malformed in another
    way is one record with an error, and the others load."""
    lines = (DATA / "litellm_spendlogs.csv").read_text().split("\n")
    p = tmp_path / "quote.csv"
    p.write_text("\n".join(lines[:2] + [lines[2].replace(",", ',"oops', 1)] + lines[3:]))
    db = wb.connect(tmp_path / "w.duckdb")
    try:
        with pytest.raises(IngestError, match=r"quote\.csv: line 3: a quoted field opens here and is never closed"):
            ingest(db, p, progress=False)
        first = tmp_path / "first.csv"  # in the first record after the header: its line, not the header's
        first.write_text(lines[0] + '\n"req-9,acompletion\nreq-10,acompletion\n')
        with pytest.raises(IngestError, match=r"first\.csv: line 2: a quoted field opens here and is never closed"):
            ingest(db, first, progress=False)
        assert db.duckdb.execute("select count(*) from calls").fetchone() == (0,)
        odd = tmp_path / "odd.csv"
        first, rest = lines[2].split(",", 1)
        odd.write_text("\n".join(lines[:2] + [f'"{first}"x,{rest}'] + lines[3:]))
        s = ingest(db, odd, progress=False)
        assert (s.read, s.inserted) == (4, 2)
        assert ("malformed CSV record",) in db.duckdb.execute("select reason from quarantine").fetchall()
    finally:
        db.close()


def test_an_unchanged_file_loaded_whole_before_is_not_parsed_again(tmp_path, monkeypatch):
    """Loading again the same bytes of a format parsed in Python, whose first load went in whole and is still in the
    table, gives the full load's counts without parsing the file (8 s for 100,000 LiteLLM records before). A record
    to quarantine, a row deleted since, or a clock set back before that load: parsed in full, as before."""
    import random
    import sys

    from workbench.io import ingest as ing
    from workbench.io import sniff

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_ingest as B

    p = tmp_path / "payloads.jsonl"
    B.write_litellm(p, 300, random.Random(2))
    real = sniff.row_batches
    parsed = []
    monkeypatch.setattr(sniff, "row_batches", lambda *a: parsed.append(a[0]) or real(*a))
    counts = lambda s: (s.read, s.inserted, s.duplicates, s.quarantined)  # noqa: E731
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        assert counts(ingest(db, p, progress=False)) == (300, 300, 0, 0) and len(parsed) == 1
        again = ingest(db, p, progress=False)
        assert counts(again) == (300, 0, 300, 0) and len(parsed) == 1  # not parsed
        assert again.files[0]["seconds"]["parse"] == 0
        # the full load of the same file gives the same counts
        monkeypatch.setattr(ing, "_replay", lambda *a: None)
        assert counts(ingest(db, p, progress=False)) == (300, 0, 300, 0) and len(parsed) == 2
        monkeypatch.undo()
        monkeypatch.setattr(sniff, "row_batches", lambda *a: parsed.append(a[0]) or real(*a))
        # a row deleted since: parsed, and the row goes in again
        db.duckdb.execute("DELETE FROM calls WHERE call_id = 'chatcmpl-000000007'")
        assert counts(ingest(db, p, progress=False)) == (300, 1, 299, 0) and len(parsed) == 3
        # a clock set back before the first load: parsed
        db2 = wb.connect(tmp_path / "b.duckdb")
        try:
            ingest(db2, p, progress=False)
            db2.duckdb.execute("UPDATE ingest_runs SET finished_at = finished_at + INTERVAL 1 DAY")
            assert counts(ingest(db2, p, progress=False)) == (300, 0, 300, 0) and len(parsed) == 5
        finally:
            db2.close()
    finally:
        db.close()
    # a file with a record to quarantine is parsed every time
    bad = tmp_path / "bad.jsonl"
    bad.write_text(p.read_text() + p.read_text().splitlines()[0].replace('"prompt_tokens": ', '"prompt_tokens": "x') + "\n")
    db = wb.connect(":memory:")
    try:
        first = ingest(db, bad, progress=False)
        assert first.quarantined >= 1
        n = len(parsed)
        assert counts(ingest(db, bad, progress=False)) == (first.read, 0, first.read - first.quarantined,
                                                            first.quarantined) and len(parsed) == n + 1
    finally:
        db.close()


# ------------------------------------------------------------- a large JSON-lines file mapped on every core

WORKER_SOURCES = {"litellm": "litellm_payloads.jsonl", "langfuse": "langfuse_traces.jsonl",
                  "openinference": "openinference_spans.json", "vercel": "vercel_spans.json"}


def _worker_file(tmp_path: Path, fmt: str) -> tuple[Path, int]:
    """The format's sample records as JSON lines, 60 times over, with what a real file also has: a byte-order mark,
    blank lines, a line that is not JSON, a line holding two records, a CRLF line end, a value that is no record."""
    from workbench.io.records import iter_json_file

    recs = [v for _k, v, _r, _e in iter_json_file(DATA / WORKER_SOURCES[fmt])]
    lines = [json.dumps(recs[i % len(recs)]).encode() for i in range(60)]
    lines[3] = b""
    lines[10] = b"{not json"
    lines[17] = json.dumps(recs[:2]).encode()
    lines[23] += b"\r"
    lines[31] = b"42"
    p = tmp_path / f"{fmt}.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    return p, len(lines)


@pytest.mark.parametrize("fmt", sorted(WORKER_SOURCES))
def test_a_large_json_lines_file_is_mapped_by_workers_into_the_tables_mapped_here(tmp_path, monkeypatch, fmt):
    import pyarrow as pa

    from workbench.io import sniff, workers
    from workbench.schema import TABLES

    p, n = _worker_file(tmp_path, fmt)
    names = TABLES["calls"].names
    here = pa.concat_tables(rows.to_arrow(columns=names) for rows in sniff.row_batches(p, fmt))
    monkeypatch.setattr(sniff, "PARALLEL_LINES", 20)
    monkeypatch.setattr(sniff, "WORKER_LINES", 7)
    started = []
    real = workers._Worker.__init__
    monkeypatch.setattr(workers._Worker, "__init__", lambda self: started.append(1) or real(self))
    tables = list(sniff.arrow_batches(p, fmt, names, lines=n, workers=2))
    assert len(started) == 2 and len(tables) == -(-n // 7)  # each batch of 7 lines by a worker
    assert pa.concat_tables(tables).equals(here)
    # a batch also ends at WORKER_BYTES of text: a long record is a batch of its own, numbered the same
    longest = max(len(line) for line in p.read_bytes().split(b"\n"))
    monkeypatch.setattr(sniff, "WORKER_BYTES", longest)
    tables = list(sniff.arrow_batches(p, fmt, names, lines=n, workers=2))
    assert len(tables) > -(-n // 7) and pa.concat_tables(tables).equals(here)
    assert here.num_rows >= 55 and pa.compute.sum(pa.compute.is_valid(here["_err"])).as_py() >= 2
    # below the threshold, or one core: mapped here
    assert pa.concat_tables(sniff.arrow_batches(p, fmt, names, lines=19, workers=2)).equals(here)
    assert pa.concat_tables(sniff.arrow_batches(p, fmt, names, lines=n, workers=1)).equals(here)
    assert len(started) == 4  # two for each of the two loads by workers above


# A worker that answers its first request, then ends with exit status 3.
ONE_ANSWER = ("import sys, orjson, workbench.io.workers as w\n"
              "inp, out = sys.stdin.buffer, sys.stdout.buffer\n"
              "hl, dl = w._REQUEST.unpack(inp.read(w._REQUEST.size))\n"
              "h = orjson.loads(inp.read(hl)); d = inp.read(dl)\n"
              "r = w.task(h.pop('task'))(d, **h)\n"
              "out.write(b't' + w._LENGTH.pack(len(r)) + r); out.flush(); sys.exit(3)\n")


def test_a_mapping_worker_that_stops_fails_the_file_and_workers_that_cannot_run_leave_it_mapped_here(
        tmp_path, monkeypatch):
    import pyarrow as pa

    from workbench.io import sniff, workers
    from workbench.schema import TABLES

    p, n = _worker_file(tmp_path, "litellm")
    names = TABLES["calls"].names
    here = pa.concat_tables(rows.to_arrow(columns=names) for rows in sniff.row_batches(p, "litellm"))
    monkeypatch.setattr(sniff, "PARALLEL_LINES", 20)
    monkeypatch.setattr(sniff, "WORKER_LINES", 7)
    # Workers that cannot run (no interpreter to start; one that ends at once, as a frozen Python would): mapped here.
    for how in [("executable", str(tmp_path / "no-such-python")), ("_ARGS", ("-c", "import sys; sys.exit(3)"))]:
        with monkeypatch.context() as m:
            m.setattr(workers.sys if how[0] == "executable" else workers, *how)
            assert pa.concat_tables(sniff.arrow_batches(p, "litellm", names, lines=n, workers=2)).equals(here)
    # A worker that stops after its first answer: the file fails with its exit status.
    monkeypatch.setattr(workers, "_ARGS", ("-c", ONE_ANSWER))
    with pytest.raises(workers.WorkerStopped, match=r"stopped \(exit status 3\)"):
        list(sniff.arrow_batches(p, "litellm", names, lines=n, workers=2))
    # through ingest (on two cores, whatever this machine has): the file is not loaded, nothing of it written, and
    # the error says why
    monkeypatch.setattr(sniff, "default_workers", lambda: 2)
    db = wb.connect(tmp_path / "w.duckdb")
    try:
        with pytest.raises(IngestError, match=r"litellm\.jsonl: could not be loaded.*exit status 3"):
            ingest(db, p, progress=False)
        assert db.duckdb.execute("select count(*) from calls").fetchone() == (0,)
    finally:
        db.close()


def test_the_workers_are_one_per_core_this_process_may_use_and_at_most_eight(monkeypatch):
    """os.cpu_count() counts the whole machine: in a container pinned to 2 of 64 cores it would start 64 workers of
    about 200 MB each. The default follows the process's CPU affinity, capped."""
    from workbench.io import workers

    monkeypatch.setattr(workers.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: {3, 5}, raising=False)
    assert workers.default_workers() == 2
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert workers.default_workers() == workers.MAX_WORKERS == 8
    monkeypatch.delattr(workers.os, "sched_getaffinity", raising=False)
    assert workers.default_workers() == 8  # where there is no affinity: the machine's count, capped


def test_the_number_of_workers_can_be_set_and_a_bad_one_is_refused_naming_the_variable(tmp_path, monkeypatch):
    from workbench.errors import ParameterError
    from workbench.io import sniff, workers

    monkeypatch.setenv("WORKBENCH_INGEST_WORKERS", "3")
    assert workers.default_workers() == 3
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("WORKBENCH_INGEST_WORKERS", bad)
        with pytest.raises(ParameterError, match=r"\$WORKBENCH_INGEST_WORKERS must be a whole number .* got"):
            workers.default_workers()
    # 1: no worker starts, the file is mapped here
    monkeypatch.setenv("WORKBENCH_INGEST_WORKERS", "1")
    monkeypatch.setattr(sniff, "PARALLEL_LINES", 20)
    started = []
    monkeypatch.setattr(workers, "_Worker", lambda: started.append(1))
    p, n = _worker_file(tmp_path, "litellm")
    db = wb.connect(":memory:")
    try:
        s = ingest(db, p, progress=False)
        assert s.read > 50 and not started
    finally:
        db.close()


def test_the_progress_bar_moves_while_a_file_parsed_in_python_loads(tmp_path, monkeypatch):
    """A large file of a format parsed in Python took minutes with the bar still at 0 until its end: the bar now
    moves with each batch staged (by the last line read), and ends at the file's size."""
    import tqdm

    from workbench.io import sniff

    recs = [json.loads(line) for line in (DATA / "litellm_payloads.jsonl").read_text().splitlines() if line.strip()]
    p = tmp_path / "many.jsonl"
    p.write_text("".join(json.dumps(dict(recs[i % len(recs)], id=f"x-{i}")) + "\n" for i in range(500)))
    monkeypatch.setattr(sniff, "BATCH_RECORDS", 50)
    steps = []

    class Bar:
        def __init__(self, *a, total=0, **k):
            self.total, self.n = total, 0  # n: the count shown, as tqdm keeps it

        def update(self, n):
            steps.append(n)
            self.n += n

        def set_postfix_str(self, s):
            pass

        def close(self):
            pass

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    db = wb.connect(":memory:")
    try:
        s = ingest(db, p, progress=True)
    finally:
        db.close()
    assert s.read == 500
    assert len(steps) >= 10 and all(n > 0 for n in steps) and sum(steps) == p.stat().st_size


@pytest.mark.parametrize("fmt, name", [("langfuse", "langfuse_traces.jsonl"), ("litellm", "litellm_payloads.jsonl")])
def test_a_malformed_first_line_is_quarantined_and_the_lines_after_it_load(db, tmp_path, fmt, name):
    # A JSON-lines file whose first line is not JSON was read as a CSV: that line became a header, nothing was
    # read from a file of one such line (read 0, quarantined 0: the line lost without a word), and the JSON lines
    # after it were single-column CSV rows, all quarantined as not the format. A file named as JSON is JSON: the line
    # is quarantined as invalid JSON and the others load as they do without it.
    clean = load(db, name, format=fmt)
    db2 = wb.connect(":memory:")
    try:
        bad = tmp_path / name
        bad.write_text("hello world, not JSON\n" + (DATA / name).read_text())
        s = load(db2, bad, format=fmt)
        assert (s.read, s.inserted, s.quarantined) == (clean.read + 1, clean.inserted, clean.quarantined + 1)
        assert quarantine(db2)[0] == (1, None, "invalid JSON")
        only = tmp_path / "only.jsonl"
        only.write_text("hello world\n")
        s = load(db2, only, format=fmt)
        assert (s.read, s.quarantined) == (1, 1)
    finally:
        db2.close()


# ------------------------------------------------------------------------------------------- OpenLLMetry (Traceloop)


def _openllmetry_span(span_id: str, **extra) -> dict:
    """An Anthropic call as OpenLLMetry's instrumentation writes it: input_tokens already holds the cached tokens
    (it adds Anthropic's uncached input, cache reads and cache writes), which it also writes under its own names."""
    attrs = {"gen_ai.system": "Anthropic", "llm.request.type": "chat", "gen_ai.request.model": "claude-sonnet-4-5",
             "gen_ai.usage.input_tokens": 1250, "gen_ai.usage.output_tokens": 80,
             "gen_ai.usage.cache_read_input_tokens": 1000, "gen_ai.usage.cache_creation_input_tokens": 200,
             "gen_ai.usage.reasoning_tokens": 30, "llm.usage.total_tokens": 1330, **extra}
    return {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": span_id, "name": "anthropic.chat", "kind": 3,
            "startTimeUnixNano": "1763632800000000000", "endTimeUnixNano": "1763632801500000000",
            "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                           for k, v in attrs.items()], "status": {"code": 1}}


@pytest.mark.parametrize("layout", ["otlp lines (read by DuckDB)", "a single span (read in Python)"])
def test_openllmetry_cache_and_reasoning_tokens_are_read(db, tmp_path, layout):
    """OpenLLMetry names cached tokens gen_ai.usage.cache_read_input_tokens / cache_creation_input_tokens and
    reasoning tokens gen_ai.usage.reasoning_tokens; read as the columns (not left in attributes), the cache reads are
    priced at the cache price instead of the full input price."""
    span = _openllmetry_span("00000000000000a1")
    path = tmp_path / "spans.json"
    if layout.startswith("otlp"):
        path = tmp_path / "spans.jsonl"
        path.write_text(json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                                       "scopeSpans": [{"spans": [span]}]}]}) + "\n")
    else:
        path.write_text(json.dumps(span))
    s = load(db, path)
    assert (s.inserted, s.quarantined) == (1, 0)
    r = call(db, "00000000000000a1")
    assert (r["input_tokens"], r["output_tokens"]) == (1250, 80)
    assert (r["cache_read_tokens"], r["cache_write_tokens"], r["reasoning_tokens"]) == (1000, 200, 30)
    assert not {"gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                "gen_ai.usage.reasoning_tokens"} & set(r["attributes"])


@pytest.mark.parametrize("layout", ["mapped jsonl", "otlp lines (read by DuckDB)", "a single span (read in Python)"])
def test_input_tokens_counted_without_the_cached_ones_are_read_as_their_sum(db, tmp_path, layout):
    """The OpenTelemetry rule (input_tokens holds the cached tokens) is what the cost formula assumes. Anthropic's API
    counts them apart (input_tokens is the uncached part): read as written, 50 input tokens with 5,000 cache reads
    gave a negative uncached part and a cost below the cache reads' own. Cached tokens above the input tokens can only
    mean that: the input becomes their sum, the count read is kept in attributes. A count that holds its cached
    tokens is left as it is."""
    anthropic = {"input": 50, "cache_read": 5000, "cache_write": 200}
    holds = {"input": 1250, "cache_read": 1000, "cache_write": 200}
    if layout == "mapped jsonl":
        path = tmp_path / "calls.jsonl"
        path.write_text("".join(json.dumps({"id": f"c{i}", "time": 1763632800 + i, "model": "claude-sonnet-4-5",
                                            "usage": u}) + "\n" for i, u in enumerate((anthropic, holds))))
        mapping = {"table": "calls", "columns": {
            "call_id": "id", "ts": {"field": "time", "unit": "s"}, "model": "model", "status": {"value": "ok"},
            "input_tokens": "usage.input", "cache_read_tokens": "usage.cache_read",
            "cache_write_tokens": "usage.cache_write"}}
        s = ingest(db, path, mapping=mapping, progress=False)
        ids = ("c0", "c1")
    else:
        spans = [_openllmetry_span(f"00000000000000b{i}", **{
            "gen_ai.usage.input_tokens": u["input"], "gen_ai.usage.cache_read_input_tokens": u["cache_read"],
            "gen_ai.usage.cache_creation_input_tokens": u["cache_write"]}) for i, u in enumerate((anthropic, holds))]
        if layout.startswith("otlp"):
            path = tmp_path / "spans.jsonl"
            path.write_text(json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                                           "scopeSpans": [{"spans": spans}]}]}) + "\n")
        else:
            path = tmp_path / "spans.json"
            path.write_text(json.dumps(spans))
        s = load(db, path)
        ids = ("00000000000000b0", "00000000000000b1")
    assert (s.inserted, s.quarantined) == (2, 0)
    a, b = call(db, ids[0]), call(db, ids[1])
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_write_tokens"]) == (5250, 5000, 200)
    assert a["attributes"]["workbench.uncached_input_tokens"] == 50
    assert (b["input_tokens"], b["cache_read_tokens"], b["cache_write_tokens"]) == (1250, 1000, 200)
    assert "workbench.uncached_input_tokens" not in (b["attributes"] or {})


# ----------------------------------------------------------------------------- agent runs and association properties


def _otlp_span(trace: str, span_id: str, parent: str | None, name: str, start_ms: int, end_ms: int, attrs: dict,
               kind: int) -> dict:
    def value(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": v}

    t0 = 1763632800000  # 2025-11-20 10:00 UTC, in ms
    out = {"traceId": trace, "spanId": span_id, "name": name, "kind": kind,
           "startTimeUnixNano": str((t0 + start_ms) * 1_000_000), "endTimeUnixNano": str((t0 + end_ms) * 1_000_000),
           "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()], "status": {"code": 1}}
    if parent:
        out["parentSpanId"] = parent
    return out


def _write_spans(tmp_path, spans: list[dict], layout: str):
    """The spans as the Collector's file exporter writes them (one OTLP export a line: read by DuckDB), or as a JSON
    array of single spans (read in Python)."""
    if layout.startswith("otlp"):
        path = tmp_path / "spans.jsonl"
        path.write_text(json.dumps({"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "support-api"}}]},
            "scopeSpans": [{"scope": {"name": "pydantic-ai"}, "spans": spans}]}]}) + "\n")
    else:
        path = tmp_path / "spans.json"
        path.write_text(json.dumps(spans))
    return path


LAYOUTS = ["otlp lines (read by DuckDB)", "an array of spans (read in Python)"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_agent_run_s_span_does_not_count_its_calls_tokens_again(db, tmp_path, layout):
    """Pydantic AI (instrumentation version 3) names its agent span "invoke_agent <agent>", gives it no operation
    attribute and writes the run's token totals on it (``_run_span_end_attributes``). It was read as a model call of
    unnamed operation with those totals: every token of the run counted twice (6,000 input tokens for 3,000). A
    CLIENT span invoking a remote agent (whose calls are not in the trace) keeps its usage: it is the only record."""
    T = "4bf92f3577b34da6a3ce929d0e0e4736"
    usage = lambda i, o: {"gen_ai.usage.input_tokens": i, "gen_ai.usage.output_tokens": o}  # noqa: E731
    chat = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}
    spans = [
        _otlp_span(T, "00f067aa0ba902b7", None, "invoke_agent support_agent", 0, 5200,
                   {"model_name": "gpt-4o", "gen_ai.agent.name": "support_agent", **usage(3000, 260),
                    "gen_ai.usage.cache_read.input_tokens": 1024}, kind=1),
        _otlp_span(T, "b7ad6b7169203331", "00f067aa0ba902b7", "chat gpt-4o", 10, 1510, {**chat, **usage(1200, 60)}, 3),
        _otlp_span(T, "c1d2e3f4a5b6c7d8", "00f067aa0ba902b7", "execute_tool get_order", 1520, 1600,
                   {"gen_ai.tool.name": "get_order"}, kind=1),
        _otlp_span(T, "d8e9f0a1b2c3d4e5", "00f067aa0ba902b7", "chat gpt-4o", 1610, 5190,
                   {**chat, **usage(1800, 200), "gen_ai.usage.cache_read.input_tokens": 1024}, kind=3),
        # Pydantic AI before version 3 named the run "agent run": an agent named, no model
        _otlp_span("5bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7", None, "agent run", 6000, 7000,
                   {"gen_ai.agent.name": "triage", "logfire.msg": "triage run", **usage(10, 2)}, kind=1),
        # a remote agent called over the network: its usage is the only record of it
        _otlp_span("6bf92f3577b34da6a3ce929d0e0e4736", "20f067aa0ba902b7", None, "invoke_agent billing", 8000, 9000,
                   {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o", **usage(500, 40)},
                   kind=3),
    ]
    s = load(db, _write_spans(tmp_path, spans, layout))
    assert (s.inserted, s.quarantined) == (6, 0)
    got = {r["call_id"]: r for r in rows(db, "select * from calls")}
    assert [(got[i]["operation"], got[i]["input_tokens"], got[i]["output_tokens"], got[i]["cache_read_tokens"])
            for i in ("00f067aa0ba902b7", "b7ad6b7169203331", "c1d2e3f4a5b6c7d8", "d8e9f0a1b2c3d4e5",
                      "10f067aa0ba902b7", "20f067aa0ba902b7")] == [
        ("invoke_agent", None, None, None), ("chat", 1200, 60, None), ("execute_tool", None, None, None),
        ("chat", 1800, 200, 1024), ("invoke_agent", None, None, None), ("invoke_agent", 500, 40, None)]
    assert rows(db, "select sum(input_tokens) i, sum(output_tokens) o from calls")[0] == {"i": 3500, "o": 300}
    # the run's totals stay visible where the span is read
    attrs = json.loads(got["00f067aa0ba902b7"]["attributes"])
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (3000, 260)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_openllmetry_association_properties_give_user_and_session_and_providers_are_lower_case(db, tmp_path, layout):
    """OpenLLMetry's SDK writes a workflow's user and session as traceloop.association.properties.* on every span of
    it (they were left in attributes: every row without a user), and its instrumentations write gen_ai.system
    "OpenAI" where the GenAI conventions (and other tools) write "openai": one provider in two groups."""
    assoc = {"traceloop.association.properties.user_id": "user-42",
             "traceloop.association.properties.session_id": "sess-9"}
    spans = [_openllmetry_span("00000000000000a1", **assoc)]
    spans[0]["attributes"] = [a for a in spans[0]["attributes"] if a["key"] != "gen_ai.system"] + [
        {"key": "gen_ai.system", "value": {"stringValue": "OpenAI"}}]
    camel = _openllmetry_span("00000000000000a2", **{"traceloop.association.properties.userId": "user-7",
                                                     "traceloop.association.properties.sessionId": "sess-1"})
    s = load(db, _write_spans(tmp_path, [*spans, camel], layout))
    assert (s.inserted, s.quarantined) == (2, 0)
    assert [(r["call_id"], r["user_id"], r["session_id"], r["provider"]) for r in rows(
        db, "select * from calls order by call_id")] == [
        ("00000000000000a1", "user-42", "sess-9", "openai"), ("00000000000000a2", "user-7", "sess-1", "anthropic")]


def test_a_langfuse_trace_list_page_is_refused_saying_how_to_fetch_the_traces(db, tmp_path):
    """GET /api/public/traces pages name each trace's observations by id only: nothing in them can be a call. The page
    was read as OTLP and quarantined as 'not an OpenTelemetry or OpenInference span', a reason nobody can act on."""
    page = {"data": [{"id": f"tr-{i}", "timestamp": "2025-11-20T10:00:00.000Z", "name": "support-chat",
                      "userId": "u1", "observations": [f"obs-{i}-a", f"obs-{i}-b"], "totalCost": 0.01}
                     for i in range(2)],
            "meta": {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}}
    path = tmp_path / "traces_page.json"
    path.write_text(json.dumps(page))
    s = load(db, path)
    assert (s.read, s.inserted, s.quarantined) == (2, 0, 2)  # a record per trace of the page
    assert rows(db, "select format from ingest_runs")[0]["format"] == "langfuse"
    reasons = [r for _, _, r in quarantine(db)]
    assert len(reasons) == 2 and all("by id only" in r and "GET /api/public/traces/{id}" in r for r in reasons)


def test_phoenix_csv_events_written_as_python_repr_still_give_the_time_to_first_token(db, tmp_path):
    """pandas writes the dataframe's events (a list of dicts) to CSV as its Python repr, single quotes: the reader
    took only JSON, and the first-token event's TTFT was lost (NULL for 300 ms)."""
    import ast
    import csv

    with open(DATA / "phoenix_spans.csv", newline="") as fh:
        recs = list(csv.DictReader(fh))
    for r in recs:
        if r["events"].startswith("[{"):
            r["events"] = repr(json.loads(r["events"]))  # [{'name': ..., 'timestamp': ...}]
            assert "'" in r["events"] and ast.literal_eval(r["events"])
    path = tmp_path / "spans_df.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(recs[0]))
        w.writeheader()
        w.writerows(recs)
    load(db, path)
    assert call(db, "5e00000000000002")["ttft_ms"] == 300.0


# ------------------------------------------------------------------ OTLP span times: the same in every encoding

def test_an_otlp_span_without_a_start_time_is_quarantined_in_json_lines_documents_and_protobuf(tmp_path):
    # A span whose startTimeUnixNano was missing or 0 loaded at 1970 from JSON lines (quarantined as implausible, its
    # end 0 as "end before start") and at its end time from a pretty-printed document; protobuf cannot even tell 0
    # from missing (proto3 leaves a zero out). Now every encoding reads 0 as not set: no start, quarantined (missing
    # required field ts); no end, loaded without latency; an end before its start, quarantined.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    start, end = 1763632800000000000, 1763632801000000000
    cases = {"01": (start, end), "02": (None, end), "03": (0, end), "04": (start, None), "05": (start, 0),
             "06": (end, start), "07": (None, None), "08": (0, 0), "09": (start, start)}
    spans, req = [], ExportTraceServiceRequest()
    pb = req.resource_spans.add().scope_spans.add()
    for sid, (a, b) in cases.items():
        sp = {"traceId": _T, "spanId": sid * 8, "name": "chat gpt-4o"}
        p = pb.spans.add()
        p.trace_id, p.span_id, p.name = bytes.fromhex(_T), bytes.fromhex(sid * 8), "chat gpt-4o"
        if a is not None:
            sp["startTimeUnixNano"], p.start_time_unix_nano = str(a), a
        if b is not None:
            sp["endTimeUnixNano"], p.end_time_unix_nano = str(b), b
        spans.append(sp)
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    files = {"lines.jsonl": (json.dumps(doc) + "\n").encode(), "doc.json": json.dumps(doc, indent=2).encode(),
             "req.pb": req.SerializeToString()}
    t0, t1 = ts(2025, 11, 20, 10, 0), ts(2025, 11, 20, 10, 0, 1)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        d = wb.connect(":memory:")
        s = load(d, tmp_path / name)
        assert (s.read, s.inserted, s.quarantined) == (9, 4, 5), name
        assert s.reasons == {"missing required field: ts": 4, "end before start: end_ts": 1}, name
        assert rows(d, "select call_id, ts, end_ts, latency_ms from calls order by call_id") == [
            {"call_id": "0101010101010101", "ts": t0, "end_ts": t1, "latency_ms": 1000.0},
            {"call_id": "0404040404040404", "ts": t0, "end_ts": None, "latency_ms": None},
            {"call_id": "0505050505050505", "ts": t0, "end_ts": None, "latency_ms": None},
            {"call_id": "0909090909090909", "ts": t0, "end_ts": t0, "latency_ms": 0.0}], name
        assert d.duckdb.execute("select count(*) from quarantine where reason like '%1970%'").fetchone() == (0,)
        d.close()


def test_otlp_first_token_times_and_integer_attributes_read_the_same_from_json_lines_and_documents(tmp_path):
    # A first-token event at time 0 gave a negative ttft quarantined from JSON lines and no ttft from a document; one
    # at "abc" loaded without ttft from JSON lines and was quarantined as a malformed span from a document. An
    # intValue "12.5" was kept as 13 in the JSON-lines attributes, "1e3" as "1e3" in the document's, and an
    # attribute without a key was kept as "None" by the document reader only.
    t0 = 1763632800000000000

    def span(sid, events=(), attrs=()):
        return {"traceId": _T, "spanId": sid * 8, "name": "chat gpt-4o", "startTimeUnixNano": str(t0),
                "events": [{"name": "gen_ai.first_token", "timeUnixNano": t} for t in events],
                "attributes": [{"key": k, "value": {"intValue": x}} for k, x in attrs]}

    spans = [span("01", ["0"]), span("02", ["abc"]), span("03", [str(t0 + 250_000_000)]), span("04", [""]),
             span("05", attrs=[("i1", "12.5"), ("i2", "1e3"), ("i3", "9223372036854775808"), ("i4", " 7 "),
                               (None, "1")])]
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    got = []
    for name, text in [("lines.jsonl", json.dumps(doc) + "\n"), ("doc.json", json.dumps(doc, indent=2))]:
        (tmp_path / name).write_text(text)
        d = wb.connect(":memory:")
        s = load(d, tmp_path / name)
        assert (s.read, s.inserted, s.reasons) == (5, 4, {"non-numeric value: ttft_ms": 1}), name
        assert quarantine(d) == [(1, "ttft_ms", "non-numeric value in ttft_ms: 'abc'")], name
        got.append({r["call_id"]: (r["ttft_ms"], json.loads(r["attributes"])) for r in
                    rows(d, "select call_id, ttft_ms, attributes::VARCHAR as attributes from calls")})
        d.close()
    assert got[0] == got[1] == {
        "0101010101010101": (None, {}), "0303030303030303": (250.0, {}), "0404040404040404": (None, {}),
        "0505050505050505": (None, {"i1": "12.5", "i2": 1000, "i3": "9223372036854775808", "i4": 7})}


def test_an_otlp_time_that_is_no_nanosecond_number_is_unparseable_in_json_lines_and_documents(tmp_path):
    # startTimeUnixNano written as an ISO time was quarantined from JSON lines (expected epoch ns) and loaded from a
    # pretty-printed document, which read it as any timestamp.
    spans = [{"traceId": _T, "spanId": "00000000000000a1", "name": "chat", "startTimeUnixNano": "2025-11-20T10:00:00Z"},
             {"traceId": _T, "spanId": "00000000000000a2", "name": "chat", "startTimeUnixNano": "1763632800000000000",
              "endTimeUnixNano": "2025-11-20T10:00:01Z"},
             {"traceId": _T, "spanId": "00000000000000a3", "name": "chat", "startTimeUnixNano": "1763632800000000000"}]
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    for name, text in [("lines.jsonl", json.dumps(doc) + "\n"), ("doc.json", json.dumps(doc, indent=2))]:
        (tmp_path / name).write_text(text)
        d = wb.connect(":memory:")
        s = load(d, tmp_path / name)
        assert (s.read, s.inserted, s.quarantined) == (3, 1, 2), name
        assert quarantine(d) == [
            (1, "end_ts", "unparseable timestamp in end_ts: '2025-11-20T10:00:01Z' (expected epoch ns)"),
            (1, "ts", "unparseable timestamp in ts: '2025-11-20T10:00:00Z' (expected epoch ns)")], name
        d.close()
