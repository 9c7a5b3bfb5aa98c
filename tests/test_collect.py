"""workbench collect (OTLP/HTTP receiver, durable spool) and binary protobuf OTLP files.

The receiver runs as a real subprocess on 127.0.0.1 (a free port); the real OpenTelemetry SDK and its OTLP/HTTP
exporters (protobuf and JSON) send to it. Every loop and wait is bounded.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.io import collect as wc
from workbench.io import otlp_proto

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

START_TIMEOUT = 90  # seconds for a receiver to print its readiness line (imports on a busy machine)
STOP_TIMEOUT = 120


# ----------------------------------------------------------------------------------------------------- helpers


class Receiver:
    """``python -m workbench.cli collect`` as a subprocess; its readiness line gives the URL (port 0: a free port)."""

    def __init__(self, db: Path, spool: Path | None = None, *extra: str):
        cmd = [sys.executable, "-m", "workbench.cli", "collect", "--db", str(db), "--port", "0", *extra]
        if spool is not None:
            cmd += ["--spool", str(spool)]
        self.stderr_path = db.parent / f"collect-{time.monotonic_ns()}.stderr"
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, text=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            self.ready = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no readiness line in {START_TIMEOUT} s; stderr: {self.stderr()}") from None
        assert self.ready.startswith("workbench collect: listening on http://127.0.0.1:"), (self.ready, self.stderr())
        self.url = self.ready.split("listening on ")[1].split()[0]
        self.port = int(self.url.split(":")[2].split("/")[0])
        self.endpoint = self.url.removesuffix("/v1/traces")

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit code (the receiver loads everything spooled before it exits)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._err.close()
        return rc

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._err.close()


def post(port: int, body: bytes, ctype: str = "application/x-protobuf", path: str = "/v1/traces",
         headers: dict | None = None, method: str = "POST") -> tuple[int, bytes, dict]:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        h = {"Content-Type": ctype, **(headers or {})}
        con.request(method, path, body=body, headers=h)
        r = con.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        con.close()


def genai_spans(n_chats: int, service: str = "support-bot", seed: int = 0):
    """Finished SDK spans: an agent span with ``n_chats`` chat children (gen_ai.* with token counts) and a tool span.

    Chat i has input tokens 100 + 10*i + seed and output tokens 20 + i; the provider is openai, model gpt-4o-mini.
    """
    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("test.genai")
    with tracer.start_as_current_span("invoke_agent helper", attributes={"gen_ai.operation.name": "invoke_agent"}):
        for i in range(n_chats):
            with tracer.start_as_current_span("chat gpt-4o-mini") as sp:
                sp.set_attributes({
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.usage.input_tokens": 100 + 10 * i + seed, "gen_ai.usage.output_tokens": 20 + i,
                    "gen_ai.response.finish_reasons": ["stop"], "user.id": f"u{i % 2}",
                })
        with tracer.start_as_current_span("execute_tool search") as sp:
            sp.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
    provider.shutdown()
    return list(mem.get_finished_spans())


def exporter(kind: str, endpoint: str, compression: str | None = None, timeout: float = 10):
    if kind == "proto":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.common.http import Compression
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
    comp = Compression(compression or "none") if kind == "json" else \
        (Compression.Gzip if compression == "gzip" else Compression.NoCompression)
    return OTLPSpanExporter(endpoint=endpoint + "/v1/traces", compression=comp, timeout=timeout)


def calls(db_path: Path, sql: str) -> list[tuple]:
    with wb.connect(db_path, read_only=True) as db:
        return db.sql(sql).rows()


def one_span_request(span_id: str = "00f067aa0ba902b7", input_tokens: int = 7) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "probe"
    sp = rs.scope_spans.add().spans.add()
    sp.trace_id, sp.span_id, sp.name = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"), bytes.fromhex(span_id), "chat"
    sp.start_time_unix_nano, sp.end_time_unix_nano = 1732000000000000000, 1732000000250000000
    a = sp.attributes.add()
    a.key, a.value.int_value = "gen_ai.usage.input_tokens", input_tokens
    return req


# ------------------------------------------------------------------------------------- the SDK exporters, live


@pytest.mark.parametrize("kind,compression", [("proto", None), ("proto", "gzip"), ("json", None), ("json", "gzip")])
def test_sdk_exporter_spans_land_in_calls(tmp_path, kind, compression):
    db = tmp_path / "wb.duckdb"
    r = Receiver(db)
    try:
        spans = genai_spans(4)
        exp = exporter(kind, r.endpoint, compression)
        assert exp.export(spans[:3]) == SpanExportResult.SUCCESS
        assert exp.export(spans[3:]) == SpanExportResult.SUCCESS
        exp.shutdown()
    finally:
        rc = r.stop()
    assert rc == 0, r.stderr()
    kinds = {k for _, p in wc.Spool(Path(f"{db}.spool")).segments() for k, _, _ in wc.read_records(p).records}
    assert kinds == {wc.KIND_PROTO if kind == "proto" else wc.KIND_JSON}  # the exporter's encoding, as received
    # 4 chats + 1 tool + 1 agent; inputs 100+110+120+130 = 460, outputs 20+21+22+23 = 86 (hand-counted)
    assert calls(db, "select count(*), sum(input_tokens), sum(output_tokens), count(input_tokens) from calls") == \
        [(6, 460, 86, 4)]
    rows = calls(db, "select operation, provider, model, request_model, feature, finish_reason, status, user_id "
                     "from calls where operation = 'chat' order by input_tokens")
    assert rows[0] == ("chat", "openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "support-bot", "stop", "ok", "u0")
    assert [x[-1] for x in rows] == ["u0", "u1", "u0", "u1"]
    ids = {s.context.span_id: s for s in spans}
    agent = next(s for s in spans if s.name.startswith("invoke_agent"))
    tool = calls(db, "select name, parent_id, trace_id, latency_ms from calls where operation = 'execute_tool'")
    assert tool[0][:3] == ("search", f"{agent.context.span_id:016x}", f"{agent.context.trace_id:032x}")
    got = {int(c, 16) for (c,) in calls(db, "select call_id from calls")}
    assert got == set(ids)
    # lineage: the load went through ingest (one otel run per loaded range), nothing quarantined
    runs = calls(db, "select format, sum(rows_read), sum(rows_inserted), sum(rows_quarantined) from ingest_runs group by 1")
    assert runs == [("otel", 6, 6, 0)]
    # the calls can be priced: the receiver filled the prices table for the models they name (it stayed empty, and
    # every live call was unpriced)
    with wb.connect(db, read_only=True) as con:
        cost = wb.cost_usd(con, by=("model",), period="all").filter(pl.col("model") == "gpt-4o-mini-2024-07-18")
    assert cost["unpriced_count"].to_list() == [0] and cost["value"][0] > 0


def test_exporter_retry_of_the_same_batch_is_a_duplicate_not_a_second_row(tmp_path):
    db = tmp_path / "wb.duckdb"
    r = Receiver(db)
    try:
        spans = genai_spans(2)
        exp = exporter("proto", r.endpoint)
        assert exp.export(spans) == SpanExportResult.SUCCESS
        assert exp.export(spans) == SpanExportResult.SUCCESS  # as an exporter retry after a lost answer would
    finally:
        assert r.stop() == 0
    assert calls(db, "select count(*), sum(input_tokens) from calls") == [(4, 210)]
    assert calls(db, "select sum(rows_read), sum(rows_inserted), sum(rows_duplicate) from ingest_runs") == [(8, 4, 4)]


# ---------------------------------------------------------------------------------------------- kill -9


def test_kill_9_mid_stream_loses_no_acknowledged_span_and_loads_each_once(tmp_path):
    db, spool = tmp_path / "wb.duckdb", tmp_path / "spool"
    r = Receiver(db, spool)
    spans = []
    for b in range(120):  # far more than are sent before the kill
        spans += genai_spans(3, seed=b)  # 5 spans a batch
    batches = [spans[i: i + 5] for i in range(0, len(spans), 5)]
    acked: list[int] = []
    exp = exporter("proto", r.endpoint, "gzip", timeout=10)
    stop = threading.Event()

    def send():
        for i, batch in enumerate(batches):
            if stop.is_set() or exp.export(batch) != SpanExportResult.SUCCESS:
                return
            acked.append(i)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    deadline = time.monotonic() + 120
    while len(acked) < 25 and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    r.kill()  # SIGKILL while batches are being sent and loaded
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive()
    n_acked = len(acked)
    assert 25 <= n_acked < len(batches), n_acked
    r2 = Receiver(db, spool)  # restarted: it loads what the first run spooled and had not loaded
    assert r2.stop() == 0, r2.stderr()
    want = {s.context.span_id for i in acked for s in batches[i]}
    rows = calls(db, "select call_id, count(*) from calls group by 1")
    got = {int(c, 16): n for c, n in rows}
    assert want <= set(got), f"{len(want - set(got))} acknowledged span(s) lost"
    assert set(got.values()) == {1}
    sent = {s.context.span_id for s in spans}
    assert set(got) <= sent
    # each spooled range was loaded once: the ranges named by the ingest runs do not overlap, and they cover the spool
    assert calls(db, "select sum(rows_inserted) from ingest_runs") == [(len(got),)]
    ranges: dict[int, list[tuple[int, int]]] = {}
    for (path,) in calls(db, "select source_path from ingest_runs"):
        m = wc._BATCH_NAME.search(path)
        ranges.setdefault(int(m.group("seg")), []).append((int(m.group("start")), int(m.group("end"))))
    for seg, rs in ranges.items():
        rs.sort()
        assert all(a[1] == b[0] for a, b in zip(rs, rs[1:])), (seg, rs)  # contiguous, never twice
        assert rs[0][0] == len(wc.SPOOL_MAGIC)


# ------------------------------------------------------------------------------------------ protocol errors


def test_bad_requests_get_4xx_and_are_not_spooled(tmp_path):
    db, spool = tmp_path / "wb.duckdb", tmp_path / "spool"
    r = Receiver(db, spool, "--max-body-mb", "0.05")  # 52,428 bytes
    limit = int(0.05 * 1024 * 1024)
    try:
        good = one_span_request().SerializeToString()
        status, body, _ = post(r.port, b"\xff\xff\xff\xff not protobuf")
        assert status == 400 and b"not an OTLP trace export" in body
        status, body, h = post(r.port, b'{"resourceSpans": [', "application/json")
        assert status == 400 and h["Content-Type"] == "application/json"
        assert json.loads(body)["message"].startswith("not an OTLP trace export: invalid JSON")
        status, body, _ = post(r.port, b'{"resourceSpans": {"a": 1}}', "application/json")
        assert (status, json.loads(body)["message"]) == (400, "not an OTLP trace export: resourceSpans: expected a "
                                                              "list, got dict")
        status, body, _ = post(r.port, b'[1, 2]', "application/json")
        assert status == 400
        deep = b'{"resourceSpans": ' + b"[" * 20000 + b"]" * 20000 + b"}"  # deeper than the parser's stack
        status, body, _ = post(r.port, deep, "application/json")
        assert (status, json.loads(body)["message"]) == (400, "not an OTLP trace export: invalid JSON: nested too deeply")
        status, body, _ = post(r.port, good[:-3], headers={"Content-Encoding": "gzip"})
        assert status == 400 and b"gzip" in body
        status, body, _ = post(r.port, gzip.compress(good)[:-6], headers={"Content-Encoding": "gzip"})
        assert status == 400 and b"not a valid gzip stream" in body
        status, body, _ = post(r.port, good, "text/plain")
        assert status == 415 and b"text/plain" in body
        status, body, _ = post(r.port, good, headers={"Content-Encoding": "br"})
        assert status == 415
        for size in (limit + 1, 20 * limit):  # the refused body is drained: the client reads the 413, not a reset
            status, body, _ = post(r.port, b"x" * size)
            assert status == 413 and str(limit).encode() in body
        bomb = gzip.compress(b"\x0a" * (limit * 4))  # small on the wire, over the limit decompressed
        assert len(bomb) < limit
        status, body, _ = post(r.port, bomb, headers={"Content-Encoding": "gzip"})
        assert status == 413
        assert post(r.port, good, path="/v1/metrics")[0] == 404
        assert post(r.port, good, path="/")[0] == 404
        assert post(r.port, b"", method="GET")[0] == 405
        # nothing of the above was spooled
        assert sum(len(wc.read_records(p).records) for _, p in wc.Spool(spool).segments()) == 0
        # a good batch after all that is acknowledged with the protocol's answers, in both encodings
        status, body, h = post(r.port, good)
        assert (status, body, h["Content-Type"]) == (200, b"", "application/x-protobuf")
        j = otlp_proto.to_json_line(one_span_request("00f067aa0ba902b8", 9)).encode()
        status, body, h = post(r.port, gzip.compress(j), "application/json; charset=utf-8",
                               headers={"Content-Encoding": "gzip"})
        assert (status, body) == (200, b"{}")
        assert post(r.port, b"", "application/x-protobuf")[0] == 200  # an empty request: nothing to spool
        assert sum(len(wc.read_records(p).records) for _, p in wc.Spool(spool).segments()) == 2
    finally:
        assert r.stop() == 0
    assert calls(db, "select call_id, input_tokens, latency_ms, feature from calls order by 1") == [
        ("00f067aa0ba902b7", 7, 250.0, "probe"), ("00f067aa0ba902b8", 9, 250.0, "probe")]


def test_a_json_span_not_in_utf8_is_rejected_alone_in_a_partial_success(tmp_path):
    # A JSON body with bytes that are not UTF-8 inside one span was refused whole with a 400 ("not an OTLP trace
    # export: invalid JSON"): a client must not retry a 400, so its good spans were lost too. The good spans are
    # acknowledged and loaded; the bad one is told in the response's partial_success, as OTLP/HTTP defines.
    db = tmp_path / "wb.duckdb"
    r = Receiver(db, tmp_path / "spool")
    try:
        doc = json.loads(otlp_proto.to_json_line(one_span_request("00f067aa0ba902b7", 7)))
        spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
        spans.append({**spans[0], "spanId": "00f067aa0ba902b8", "name": "BAD!"})
        status, body, _ = post(r.port, json.dumps(doc).encode().replace(b"BAD!", b"B\xff\xfeD"), "application/json")
        assert (status, json.loads(body)) == (200, {"partialSuccess": {
            "rejectedSpans": "1", "errorMessage": "1 span with bytes that are not UTF-8 rejected: 00f067aa0ba902b8"}})
        doc["resourceSpans"][0]["resource"]["attributes"].append({"key": "r", "value": {"stringValue": "BAD!"}})
        status, body, _ = post(r.port, json.dumps(doc).encode().replace(b"BAD!", b"B\xff\xfeD"), "application/json")
        assert status == 400 and json.loads(body)["message"].startswith(
            "not an OTLP trace export: bytes that are not UTF-8 outside any span")
    finally:
        assert r.stop() == 0
    assert calls(db, "select call_id, input_tokens from calls") == [("00f067aa0ba902b7", 7)]


def test_the_protobuf_error_body_is_a_google_rpc_status():
    from google.rpc.status_pb2 import Status  # googleapis-common-protos comes with the OTLP exporter

    s = Status()
    s.ParseFromString(wc._status_body(wc.KIND_PROTO, 3, "bad body ü"))
    assert (s.code, s.message) == (3, "bad body ü")


# --------------------------------------------------------------------------------------------- the spool


def test_torn_spool_tail_is_ignored_and_the_good_records_load(tmp_path):
    db, spool_dir = tmp_path / "wb.duckdb", tmp_path / "spool"
    spool = wc.Spool(spool_dir)
    spool.open_segment()
    for i, sid in enumerate(["0000000000000001", "0000000000000002"]):
        spool.append(wc.KIND_PROTO, one_span_request(sid, 10 + i).SerializeToString())
    spool.append(wc.KIND_JSON, otlp_proto.to_json_line(one_span_request("0000000000000003", 30)).encode())
    spool.close()
    seg = spool.path_of(1)
    full = seg.stat().st_size
    good = wc.read_records(seg)
    assert len(good.records) == 3 and good.torn is None and good.end == full
    end_of_second = good.records[1][2]
    # a write cut short by a crash: the third record loses its last 5 bytes
    with open(seg, "r+b") as fh:
        fh.truncate(full - 5)
    torn = wc.read_records(seg)
    assert [e for _, _, e in torn.records] == [good.records[0][2], end_of_second]
    assert torn.end == end_of_second and "cut short" in torn.torn
    # a flipped byte in a body fails the crc: reading stops before that record
    with open(seg, "r+b") as fh:
        fh.seek(end_of_second - 3)
        b = fh.read(1)
        fh.seek(end_of_second - 3)
        fh.write(bytes([b[0] ^ 0xFF]))
    crc = wc.read_records(seg)
    assert len(crc.records) == 1 and "crc32" in crc.torn
    with open(seg, "r+b") as fh:  # put the byte back: two good records and a torn tail
        fh.seek(end_of_second - 3)
        fh.write(b)
    r = Receiver(db, spool_dir)
    assert r.stop() == 0
    assert calls(db, "select call_id, input_tokens from calls order by 1") == [
        ("0000000000000001", 10), ("0000000000000002", 11)]
    assert "torn tail" in r.stderr()
    # a restart neither reloads the loaded records nor the torn tail, and new batches go to a new segment
    r = Receiver(db, spool_dir)
    assert post(r.port, one_span_request("0000000000000004", 40).SerializeToString())[0] == 200
    assert r.stop() == 0
    assert calls(db, "select count(*), sum(input_tokens) from calls") == [(3, 61)]
    assert calls(db, "select sum(rows_read), sum(rows_duplicate) from ingest_runs") == [(3, 0)]
    assert [p.name for _, p in wc.Spool(spool_dir).segments()] == [
        "traces-000001.spool", "traces-000002.spool", "traces-000003.spool"]


def test_loaded_offsets_come_from_the_database_so_a_lost_marker_cannot_reload(tmp_path):
    """The 'loaded up to' offset is the ingest_runs row committed with the spans: a second start reads nothing."""
    db, spool_dir = tmp_path / "wb.duckdb", tmp_path / "spool"
    r = Receiver(db, spool_dir)
    for i in range(3):
        assert post(r.port, one_span_request(f"00000000000000a{i}", i).SerializeToString())[0] == 200
    assert r.stop() == 0
    n_runs = calls(db, "select count(*) from ingest_runs")[0][0]
    assert n_runs >= 1
    r = Receiver(db, spool_dir)
    assert r.stop() == 0
    assert calls(db, "select count(*) from ingest_runs")[0][0] == n_runs
    assert calls(db, "select count(*) from calls") == [(3,)]


def test_collect_needs_a_database_file_and_a_free_port(tmp_path):
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "collect", "--db", ":memory:", "--port", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--db must be a database file" in out.stderr
    r = Receiver(tmp_path / "a.duckdb")
    try:
        out = subprocess.run([sys.executable, "-m", "workbench.cli", "collect", "--db", str(tmp_path / "b.duckdb"),
                              "--port", str(r.port)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and f"cannot listen on 127.0.0.1:{r.port}" in out.stderr
    finally:
        assert r.stop() == 0


# ------------------------------------------------------------------------------------ .pb and .pb.gz files


def _pb_fixture() -> tuple[ExportTraceServiceRequest, ExportTraceServiceRequest]:
    """Two requests. First: a chat span (input 1200, cached 400, output 300, reasoning 120, error status) and a tool
    child of it. Second: an OpenInference LLM span (prompt 50, completion 5) and a span with no end time."""
    a = ExportTraceServiceRequest()
    rs = a.resource_spans.add()
    for k, v in [("service.name", "billing-assistant"), ("deployment.environment.name", "prod")]:
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = k, v
    ss = rs.scope_spans.add()
    ss.scope.name = "openai.instrumentation"
    chat = ss.spans.add()
    chat.trace_id, chat.span_id = bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), bytes.fromhex("b7ad6b7169203331")
    chat.name, chat.kind = "chat gpt-4.1", 3
    chat.start_time_unix_nano, chat.end_time_unix_nano = 1764547200000000000, 1764547202500000000
    for k, v in [("gen_ai.operation.name", "chat"), ("gen_ai.system", "openai"), ("gen_ai.request.model", "gpt-4.1"),
                 ("error.type", "RateLimitError")]:
        x = chat.attributes.add()
        x.key, x.value.string_value = k, v
    for k, v in [("gen_ai.usage.input_tokens", 1200), ("gen_ai.usage.cache_read.input_tokens", 400),
                 ("gen_ai.usage.output_tokens", 300), ("gen_ai.usage.reasoning.output_tokens", 120)]:
        x = chat.attributes.add()
        x.key, x.value.int_value = k, v
    x = chat.attributes.add()
    x.key, x.value.double_value = "gen_ai.request.temperature", 0.2
    x = chat.attributes.add()
    x.key = "gen_ai.response.finish_reasons"
    x.value.array_value.values.add().string_value = "length"
    ev = chat.events.add()
    ev.name, ev.time_unix_nano = "gen_ai.first_token", 1764547200400000000
    chat.status.code = 2
    tool = ss.spans.add()
    tool.trace_id, tool.span_id = chat.trace_id, bytes.fromhex("00000000000000c1")
    tool.parent_span_id, tool.name = chat.span_id, "execute_tool"
    tool.start_time_unix_nano, tool.end_time_unix_nano = 1764547202500000000, 1764547202600000000
    x = tool.attributes.add()
    x.key, x.value.string_value = "gen_ai.tool.name", "lookup_invoice"
    b = ExportTraceServiceRequest()
    ss = b.resource_spans.add().scope_spans.add()
    llm = ss.spans.add()
    llm.trace_id, llm.span_id = bytes.fromhex("11111111111111111111111111111111"), bytes.fromhex("00000000000000d1")
    llm.name, llm.start_time_unix_nano, llm.end_time_unix_nano = "ChatCompletion", 1764547300000000000, 1764547301000000000
    for k, v in [("openinference.span.kind", "LLM"), ("llm.model_name", "claude-sonnet-4"), ("session.id", "s-9")]:
        x = llm.attributes.add()
        x.key, x.value.string_value = k, v
    for k, v in [("llm.token_count.prompt", 50), ("llm.token_count.completion", 5)]:
        x = llm.attributes.add()
        x.key, x.value.int_value = k, v
    bad = ss.spans.add()  # no end time: quarantined? no: end_ts is optional; no start time: ts is required
    bad.trace_id, bad.span_id, bad.name = llm.trace_id, bytes.fromhex("00000000000000d2"), "no times"
    return a, b


def _ingest_cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", "ingest", "--db", str(db), "--json", *args],
                          capture_output=True, text=True, timeout=300)


def test_pb_and_framed_pb_gz_files_via_workbench_ingest(tmp_path):
    a, b = _pb_fixture()
    (tmp_path / "one.pb").write_bytes(a.SerializeToString())
    (tmp_path / "two.pb.gz").write_bytes(gzip.compress(otlp_proto.frame(a.SerializeToString())
                                                       + otlp_proto.frame(b.SerializeToString())))
    db = tmp_path / "wb.duckdb"
    out = _ingest_cli(db, str(tmp_path / "one.pb"), str(tmp_path / "two.pb.gz"))
    assert out.returncode == 0, out.stderr
    # one.pb: 2 spans inserted; two.pb.gz: the same 2 (duplicates) + 2 new, of which the one without times is
    # quarantined (ts is required)
    summary = json.loads(out.stdout)
    files = summary.pop("files")
    assert summary.pop("prices") > 0  # refreshed for the models of the inserted calls
    assert summary == {"read": 6, "inserted": 3, "duplicates": 2, "quarantined": 1,
                       "reasons": {"missing required field: ts": 1}}
    assert [(Path(f["path"]).name, f["format"], f["read"]) for f in files] == [("one.pb", "otel-proto", 2),
                                                                            ("two.pb.gz", "otel-proto", 4)]
    rows = calls(db, "select call_id, parent_id, operation, name, provider, model, input_tokens, cache_read_tokens, "
                     "output_tokens, reasoning_tokens, latency_ms, ttft_ms, status, finish_reason, feature, "
                     "environment, session_id from calls order by ts")
    assert rows == [
        ("b7ad6b7169203331", None, "chat", "chat gpt-4.1", "openai", "gpt-4.1", 1200, 400, 300, 120, 2500.0, 400.0,
         "error", "length", "billing-assistant", "prod", None),
        ("00000000000000c1", "b7ad6b7169203331", "execute_tool", "lookup_invoice", None, None, None, None, None, None, 100.0,
         None, "ok", None, "billing-assistant", "prod", None),
        ("00000000000000d1", None, "chat", "ChatCompletion", None, "claude-sonnet-4", 50, None, 5, None, 1000.0, None,
         "ok", None, None, None, "s-9"),
    ]
    attrs = json.loads(calls(db, "select attributes from calls where call_id = 'b7ad6b7169203331'")[0][0])
    assert attrs["gen_ai.request.temperature"] == 0.2 and attrs["otel.scope.name"] == "openai.instrumentation"
    assert calls(db, "select source_path, format, rows_read from ingest_runs order by started_at") == [
        (str(tmp_path / "one.pb"), "otel-proto", 2), (str(tmp_path / "two.pb.gz"), "otel-proto", 4)]
    assert calls(db, "select source_path, line_no, field from quarantine") == [(str(tmp_path / "two.pb.gz"), 2, "ts")]


def test_the_file_exporters_zstd_files_load_in_json_and_in_proto(tmp_path):
    # The Collector's file exporter with `compression: zstd` writes each message compressed on its own, behind its
    # 4-byte length, in `format: json` (OTLP JSON text) as in `format: proto`. Before, neither loaded: "Wire format was
    # corrupt", or, named .json, "not OpenTelemetry spans".
    import pyarrow as pa

    a, b = _pb_fixture()

    def zstd(data: bytes) -> bytes:
        return pa.compress(data, codec="zstd", asbytes=True)

    (tmp_path / "traces.json").write_bytes(b"".join(otlp_proto.frame(zstd(otlp_proto.to_json_bytes(m)))
                                                    for m in (a, b)))
    (tmp_path / "traces.proto").write_bytes(b"".join(otlp_proto.frame(zstd(m.SerializeToString())) for m in (a, b)))
    (tmp_path / "plain.pb").write_bytes(otlp_proto.frame(a.SerializeToString()) + otlp_proto.frame(b.SerializeToString()))
    want = None
    for name in ("plain.pb", "traces.json", "traces.proto"):
        db = tmp_path / f"{name}.duckdb"
        out = _ingest_cli(db, str(tmp_path / name))
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) | {"reasons": None, "files": None, "prices": None} == {
            "read": 4, "inserted": 3, "duplicates": 0, "quarantined": 1, "reasons": None, "files": None, "prices": None}
        got = calls(db, "select * exclude (ingest_run_id) from calls order by call_id")
        assert want is None or got == want
        want = got
    # a frame that is compressed but not zstd's whole stream is named as not OTLP, not a traceback
    (tmp_path / "cut.json").write_bytes(otlp_proto.frame(zstd(otlp_proto.to_json_bytes(a))[:-8]))
    out = _ingest_cli(tmp_path / "cut.duckdb", str(tmp_path / "cut.json"))
    assert out.returncode == 2 and "cut.json" in out.stderr and "Traceback" not in out.stderr


def test_protobuf_content_is_detected_without_the_extension_and_the_format_can_be_forced(tmp_path):
    a, _ = _pb_fixture()
    (tmp_path / "export.bin").write_bytes(a.SerializeToString())
    (tmp_path / "spans.dat").write_bytes(gzip.compress(a.SerializeToString()))
    db = tmp_path / "wb.duckdb"
    out = _ingest_cli(db, str(tmp_path / "export.bin"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["inserted"] == 2
    out = _ingest_cli(db, "--format", "otel-proto", str(tmp_path / "spans.dat"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["duplicates"] == 2
    (tmp_path / "broken.pb").write_bytes(b"\x0a\xff\xff\xff\x0f garbage")
    out = _ingest_cli(db, str(tmp_path / "broken.pb"))
    assert out.returncode == 2
    assert f"{tmp_path / 'broken.pb'}: not a protobuf ExportTraceServiceRequest" in out.stderr
    assert calls(db, "select count(*) from calls") == [(2,)]


def _framed_file(tmp_path: Path, n: int, gz: bool = False) -> tuple[Path, list[bytes], list[bytes]]:
    """A file of ``n`` length-prefixed messages (the fixture's two, with other span ids): the file, the messages and
    each message's line."""
    a, b = _pb_fixture()
    msgs = []
    for i in range(n):
        m = ExportTraceServiceRequest()
        m.CopyFrom(a if i % 2 else b)
        for sp in m.resource_spans[0].scope_spans[0].spans:
            sp.span_id = bytes.fromhex(f"{i:08x}") + sp.span_id[4:]
        msgs.append(m.SerializeToString())
    data = b"".join(otlp_proto.frame(m) for m in msgs)
    p = tmp_path / ("many.pb.gz" if gz else "many.pb")
    p.write_bytes(gzip.compress(data) if gz else data)
    return p, msgs, [otlp_proto.to_json_bytes(otlp_proto.parse_request(m)) for m in msgs]


def _count_reads(monkeypatch) -> list[tuple[int, int]]:
    """(bytes asked, bytes got) of every read of a file opened by records.open_binary from now on."""
    import contextlib

    from workbench.io import records

    reads: list[tuple[int, int]] = []
    real = records.open_binary

    class Counted:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n=-1):
            data = self.fh.read(n)
            reads.append((n, len(data)))
            return data

        def __getattr__(self, name):
            return getattr(self.fh, name)

    @contextlib.contextmanager
    def spy(path):
        with real(path) as fh:
            yield Counted(fh)

    monkeypatch.setattr(records, "open_binary", spy)
    return reads


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_framed_protobuf_file_is_decoded_a_message_at_a_time_on_every_core(tmp_path, monkeypatch, gz, workers):
    """The Collector's framed files are read a message at a time (the whole file was read into memory), and a large
    one is decoded by worker processes: the same lines either way; a frame cut short fails the file, naming it."""
    from workbench.io.ingest import IngestError

    p, msgs, want = _framed_file(tmp_path, 40, gz)
    reads = _count_reads(monkeypatch)
    monkeypatch.setattr(otlp_proto, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(otlp_proto, "WORKER_BYTES", 3000)
    out = tmp_path / "out.jsonl"
    count, longest = otlp_proto.file_to_jsonl(p, out, workers=workers)
    assert out.read_bytes() == b"".join(line + b"\n" for line in want)
    assert (count, longest) == (40, max(map(len, want)))
    assert max(got for _asked, got in reads) == max(map(len, msgs))  # a length, then its message: never more
    cut = tmp_path / "cut.pb"
    cut.write_bytes(p.read_bytes()[:-7] if not gz else gzip.compress(gzip.decompress(p.read_bytes())[:-7]))
    with pytest.raises(IngestError, match=r"cut\.pb: not a protobuf ExportTraceServiceRequest, nor a sequence"):
        otlp_proto.file_to_jsonl(cut, out, workers=workers)
    if workers > 1:  # workers that cannot run (they end at once): decoded here, from the first message
        from workbench.io import workers as wk

        monkeypatch.setattr(wk, "_ARGS", ("-c", "import sys; sys.exit(3)"))
        assert otlp_proto.file_to_jsonl(p, out, workers=workers) == (40, max(map(len, want)))
        assert out.read_bytes() == b"".join(line + b"\n" for line in want)


def test_protobuf_and_json_of_the_same_spans_give_the_same_rows(tmp_path):
    a, b = _pb_fixture()
    (tmp_path / "x.pb").write_bytes(a.SerializeToString())
    (tmp_path / "x.jsonl").write_text(otlp_proto.to_json_line(a) + "\n" + otlp_proto.to_json_line(b) + "\n")
    cols = "call_id, trace_id, parent_id, ts, end_ts, latency_ms, ttft_ms, input_tokens, output_tokens, status, attributes"
    pb, js = wb.connect(":memory:"), wb.connect(":memory:")
    from workbench.io.ingest import ingest

    ingest(pb, tmp_path / "x.pb", progress=False)
    ingest(js, tmp_path / "x.jsonl", progress=False)
    q = f"select {cols} from calls where call_id in ('b7ad6b7169203331', '00000000000000c1') order by 1"
    assert pb.sql(q).rows() == js.sql(q).rows()
    assert len(pb.sql(q).rows()) == 2


def test_to_dict_matches_protojson_but_with_hex_ids():
    from google.protobuf.json_format import MessageToDict

    a, _ = _pb_fixture()
    ours = otlp_proto.to_dict(a)
    theirs = MessageToDict(a, use_integers_for_enums=True)
    for rs in theirs["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        import base64

                        sp[k] = base64.b64decode(sp[k]).hex()
    assert ours == theirs


def test_attribute_values_of_every_kind_walk_as_protojson_does():
    """Attributes (KeyValue, AnyValue) are walked by WhichOneof instead of ListFields (1.75x on a protobuf file):
    every kind of value, the ones proto3 leaves out (an empty key, a value never set) and the ones a oneof keeps (an
    empty string, false, 0) give what protojson gives, and the whole request what the generic walk gives."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(key, **value):
        k = KeyValue(key=key)
        if value:
            k.value.CopyFrom(AnyValue(**value))
        return k

    nested = AnyValue()
    nested.kvlist_value.values.add(key="deep").value.array_value.values.add(double_value=float("-inf"))
    arr = AnyValue()
    arr.array_value.values.add(string_value="")
    arr.array_value.values.add(int_value=-(2 ** 63))
    arr.array_value.values.add()  # an AnyValue with nothing set
    arr.array_value.values.add().CopyFrom(nested)
    attrs = [kv("s", string_value="x"), kv("empty", string_value=""), kv("f", bool_value=False),
             kv("zero", int_value=0), kv("big", int_value=2 ** 63 - 1), kv("nan", double_value=float("nan")),
             kv("inf", double_value=float("inf")), kv("d", double_value=0.1), kv("b", bytes_value=b"\x00\xff"),
             kv("", string_value="no key"), kv("no value"), kv("unset"), kv("arr"), kv("kv")]
    attrs[-2].value.CopyFrom(arr)
    attrs[-1].value.CopyFrom(nested)
    attrs[-3].value.CopyFrom(AnyValue())  # set, but holding nothing
    for a in attrs:
        assert otlp_proto._key_value(a) == MessageToDict(a, use_integers_for_enums=True), a
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(attrs)
    sp = rs.scope_spans.add().spans.add(name="chat", span_id=b"\x01" * 8)
    sp.attributes.extend(attrs)
    sp.events.add(name="e").attributes.extend(attrs)
    fast = otlp_proto.to_json_bytes(req)
    walks = dict(otlp_proto._MESSAGE_WALKS)
    try:  # the generic walk (ListFields) for every message
        otlp_proto._MESSAGE_WALKS.clear()
        otlp_proto._CONVERTERS.clear()
        generic = otlp_proto.to_json_bytes(req)
    finally:
        otlp_proto._MESSAGE_WALKS.update(walks)
        otlp_proto._CONVERTERS.clear()
    assert fast == generic
    assert b'"key":"empty","value":{"stringValue":""}' in fast and b'{"key":"unset","value":{}}' in fast


def test_a_frame_length_the_file_does_not_hold_fails_without_reading_that_much(tmp_path, monkeypatch):
    """Hostile input: a frame whose length says 1 GB in a file of a few bytes is refused as not OTLP, and no read
    asks for more than 16 MB at a time; an empty frame is an empty message."""
    from workbench.io.ingest import IngestError

    p = tmp_path / "liar.pb"
    p.write_bytes(otlp_proto.frame(b"") + b"\x3f\xff\xff\xff" + b"\x0a\x00")
    reads = _count_reads(monkeypatch)
    with pytest.raises(IngestError, match=r"liar\.pb: not a protobuf ExportTraceServiceRequest, nor a sequence"):
        otlp_proto.file_to_jsonl(p, tmp_path / "out.jsonl", workers=1)
    assert max(asked for asked, _got in reads) <= 16 << 20
    ok = tmp_path / "empty_frame.pb"
    ok.write_bytes(otlp_proto.frame(b"") * 2)
    empty = otlp_proto.to_json_bytes(otlp_proto.parse_request(b""))
    assert otlp_proto.file_to_jsonl(ok, tmp_path / "out.jsonl", workers=1) == (2, len(empty))
    assert (tmp_path / "out.jsonl").read_bytes() == (empty + b"\n") * 2


def test_a_signal_while_the_main_thread_holds_a_lock_still_stops_the_receiver(tmp_path):
    # A signal handler runs in the main thread between two bytecodes. The receiver's set a threading.Event, whose lock
    # the main thread held for a moment on every turn of its wait loop: a SIGTERM arriving then deadlocked it (seen
    # once in CI, the process idle for minutes). Here every Event wait of the main thread holds that lock while the
    # signal is delivered, so the old receiver hangs every time.
    script = tmp_path / "run.py"
    script.write_text(
        "import os, signal, sys, threading, time\n"
        "from workbench.io.collect import Collector\n"
        "real = threading.Event.wait\n"
        "def wait(self, timeout=None):\n"
        "    if threading.current_thread() is threading.main_thread():\n"
        "        with self._cond:\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "            time.sleep(0.05)\n"
        "    return real(self, timeout)\n"
        "threading.Event.wait = wait\n"
        "sys.exit(Collector(sys.argv[1], port=0).run())\n")
    try:
        out = subprocess.run([sys.executable, str(script), str(tmp_path / "wb.duckdb")], capture_output=True,
                             text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        raise AssertionError("the receiver did not stop on SIGTERM: its signal handler waited for a lock") from None
    assert out.returncode == 0, out.stderr
    assert "stopped: received 0 batch(es)" in out.stderr


# ------------------------------------------------------------------------------ hostile requests (fault injection)


def _raw_request(port: int, head: bytes, body: bytes, half_close: bool = False) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head + body)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_hostile_requests_are_answered_and_no_acknowledged_span_is_lost(tmp_path):
    db = tmp_path / "wb.duckdb"
    r = Receiver(db, tmp_path / "spool")
    try:
        a = one_span_request("1000000000000001").SerializeToString()
        b = one_span_request("1000000000000002").SerializeToString()
        # two gzip members back to back (concatenated files; valid gzip): only the first was read, after a 200
        status, _, _ = post(r.port, gzip.compress(a + b[:0]) + gzip.compress(b), headers={"Content-Encoding": "gzip"})
        assert status == 200
        status, body, _ = post(r.port, gzip.compress(a) + b"junk", headers={"Content-Encoding": "gzip"})
        assert status == 400 and b"after the end of the stream" in body
        # a lone surrogate in one span: acknowledged, then the whole batch quarantined at load
        lone = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "1000000000000003", "name": "\ud800x",
             "startTimeUnixNano": "1732000000000000000", "endTimeUnixNano": "1732000000250000000"}]}]}]})
        status, body, _ = post(r.port, lone.encode(), "application/json")
        assert status == 400 and b"lone surrogate" in body
        # a body shorter than its Content-Length (the client stopped): its prefix parsed as a whole message, 200
        short = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: "
        answer = _raw_request(r.port, short + str(len(a) + 40).encode() + b"\r\n\r\n", a, half_close=True)
        assert answer.startswith(b"HTTP/1.1 400") and b"ended after" in answer
        # a Content-Length Python reads as a digit but is none: no answer at all, a traceback on stderr (now a 400
        # naming it, as any Content-Length that is not a number of bytes)
        odd = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: \xc2\xb2\r\n\r\n"
        assert _raw_request(r.port, odd, b"", half_close=True).startswith(b"HTTP/1.1 400")
    finally:
        assert r.stop() == 0
    assert "Traceback" not in r.stderr()
    assert calls(db, "select call_id from calls order by 1") == [("1000000000000001",), ("1000000000000002",)]


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
def test_collect_refuses_a_body_limit_that_is_not_a_size(tmp_path, value):
    p = subprocess.run([sys.executable, "-m", "workbench.cli", "collect", "--db", str(tmp_path / "wb.duckdb"),
                        "--max-body-mb", value], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--max-body-mb: expected a size in MiB" in p.stderr and "Traceback" not in p.stderr


def test_collect_reads_the_prices_of_its_config_and_keeps_the_overrides_when_none_is_found(tmp_path, monkeypatch):
    """`workbench collect` refreshed the prices from ./workbench.toml only: started from another folder (a service's
    working directory) it deleted every [[prices]] override. It takes --config; with no file found it keeps them."""
    monkeypatch.chdir(tmp_path)  # no workbench.toml here
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    cfg = tmp_path / "team.toml"
    cfg.write_text('[[prices]]\nprovider = "openai"\nmodel = "gpt-4o-mini-2024-07-18"\ninput_usd_per_mtok = 1000.0\n'
                   'output_usd_per_mtok = 0.0\nnote = "contract"\n')
    db = tmp_path / "wb.duckdb"

    def serve(**kw):
        c = wc.Collector(db, port=0, progress=False, **kw)
        c.start()
        try:
            exp = exporter("proto", f"http://{c.host}:{c.port}")
            assert exp.export(genai_spans(2)) == SpanExportResult.SUCCESS
            exp.shutdown()
        finally:
            assert c.stop() == 0
        # 2 chats of 100 + 110 input tokens at the contract's $1,000 per million: $0.21 per load
        with wb.connect(db, read_only=True) as con:
            cost = wb.cost_usd(con, by=("model",), period="all").filter(pl.col("model") == "gpt-4o-mini-2024-07-18")
            src = con.sql("select source from prices where source like '%[[prices]]%'")["source"].to_list()
        return round(cost["value"].item(), 6), src

    assert serve(config=cfg) == (0.21, ["team.toml [[prices]] #1: contract"])
    assert serve() == (0.42, ["team.toml [[prices]] #1: contract"])  # none found: kept (was 4 chats at list price)
    with pytest.raises(wb.errors.ConfigError, match="no config file at"):
        wc.Collector(db, port=0, progress=False, config=tmp_path / "missing.toml")


def test_stop_during_a_load_does_not_wait_for_the_loaders_timeout(tmp_path):
    """The loader waited for new data after each load without looking again at whether it had been told to stop:
    a stop() whose wake-up came while it was loading was lost, and stop() took the loader's 5-second wait longer
    (as did data spooled during a load, loaded 5 s late). Here the wake-up comes while the loader is inside a load."""
    import threading
    import time

    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)
    inside, release = threading.Event(), threading.Event()
    real_drain, calls = c.loader.drain, []

    def drain():
        calls.append(1)
        if len(calls) == 2:  # the second load: the one the stop's wake-up arrives during
            inside.set()
            release.wait(10)
        real_drain()

    c.loader.drain = drain
    c.start()
    # the first load ran; make the loader load again (data arriving) and hold it inside that load
    with c.spool.changed:
        c.spool.changed.notify_all()
    assert inside.wait(10)
    took: list[float] = []
    stopper = threading.Thread(target=lambda: (t := time.perf_counter(), c.stop(), took.append(time.perf_counter() - t)))
    stopper.start()
    while not c.loader.stopping.is_set():
        time.sleep(0.01)
    time.sleep(0.3)  # stop() has notified by now, while the loader is still inside its load
    release.set()
    stopper.join(30)
    assert took and took[0] < 2.5, f"stop() took {took[0] if took else 'over 30'} s"


def test_a_body_of_many_gzip_members_is_decompressed_in_linear_time(tmp_path):
    """Each gzip member copied the rest of the body (zlib's unused_data) and the output so far: a 4 MB body of
    200,000 empty members kept a handler on the CPU, holding the GIL, for minutes (the exporter timed out, every other
    request and the loader waited). Two spans around the empty members: answered at once, both loaded."""
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)
    c.start()
    try:
        a = one_span_request("2000000000000001", 3).SerializeToString()
        b = one_span_request("2000000000000002", 4).SerializeToString()
        empty = gzip.compress(b"", mtime=0)
        body = gzip.compress(a) + empty * 200_000 + gzip.compress(b)  # concatenated protobuf messages merge
        assert len(body) > 4_000_000
        t0 = time.monotonic()
        status, _, _ = post(c.port, body, headers={"Content-Encoding": "gzip"})
        took = time.monotonic() - t0
    finally:
        assert c.stop() == 0
    assert status == 200 and took < 10, took
    assert calls(tmp_path / "wb.duckdb", "select call_id, input_tokens from calls order by 1") == [
        ("2000000000000001", 3), ("2000000000000002", 4)]


def test_a_refused_body_is_read_so_the_client_gets_the_answer_not_a_reset(tmp_path):
    """An SDK given OTEL_EXPORTER_OTLP_ENDPOINT sends its metrics and logs here too: a large body to /v1/metrics, or one
    of another Content-Type, was answered and the connection closed unread, and the client's send failed (broken pipe,
    a retryable error to an exporter) before it could read the 404 or 415 (not retryable)."""
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)
    c.start()
    try:
        big = b"x" * (8 << 20)
        got = [post(c.port, big, ctype, path=path)[0] for path, ctype in (
            ("/v1/metrics", "application/x-protobuf"), ("/v1/logs", "application/json"), ("/v1/traces", "text/plain"))]
        got.append(post(c.port, big, method="PUT")[0])
        assert got == [404, 404, 415, 405]
        assert post(c.port, one_span_request().SerializeToString())[0] == 200  # and the receiver still serves
    finally:
        assert c.stop() == 0


def _trickle(port: int, head: bytes, drip: bytes, every: float = 0.2, limit: float = 20.0) -> tuple[bytes, float]:
    """Send ``head``, then ``drip`` a byte every ``every`` seconds (a slow-loris client) until the server answers or
    closes, or ``limit`` seconds pass: (what the server sent, seconds until it answered or closed)."""
    import socket

    t0 = time.monotonic()
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=every) as s:
        s.sendall(head)
        for i in range(int(limit / every)):
            try:
                s.sendall(drip[i % len(drip): i % len(drip) + 1])
            except OSError:  # the server closed: read what it answered
                pass
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out, time.monotonic() - t0


def test_a_slow_loris_client_is_cut_off_at_the_request_deadline(tmp_path, monkeypatch):
    """The 60 s timeout was per read: a client sending a byte every few seconds, in its headers or its body, held a
    handler thread and the bytes it had sent for as long as it liked. A request now has a total deadline
    (REQUEST_SECONDS): the body's sender gets a 408, the headers' sender is disconnected."""
    monkeypatch.setattr(wc, "REQUEST_SECONDS", 1.5, raising=False)
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)
    c.start()
    try:
        head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n"
        answer, took = _trickle(c.port, head + b"\x0a", b"\x00")
        assert answer.startswith(b"HTTP/1.1 408") and b"1.5 s" in answer, answer
        assert took < 6, took
        answer, took = _trickle(c.port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a")
        assert answer == b"" and took < 6, (answer, took)
        assert post(c.port, one_span_request().SerializeToString())[0] == 200  # a client in time is served
    finally:
        assert c.stop() == 0
    assert calls(tmp_path / "wb.duckdb", "select count(*) from calls") == [(1,)]


def test_concurrent_large_bodies_are_parsed_a_few_at_a_time(tmp_path):
    """A 4 MiB OTLP JSON body of a million empty objects takes about 110 MB to parse: eight clients at once took the
    receiver to about a gigabyte more, and with more clients it had no bound but the machine's memory. Bodies are
    now decompressed and checked PARSE_SLOTS at a time; a request that waits too long for a slot gets 503 with a
    Retry-After (the OTLP exporters' signal to retry later)."""
    r = Receiver(tmp_path / "wb.duckdb", None, "--max-body-mb", "4")

    def hwm() -> int:  # the receiver's peak resident memory, in MB
        status = Path(f"/proc/{r.proc.pid}/status").read_text()
        return int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) // 1024

    body = b'{"resourceSpans":[' + b"{}," * ((4 << 20) // 3 - 10) + b"{}]}"
    results: list = []
    try:
        before = hwm()
        threads = [threading.Thread(target=lambda: results.append(post(r.port, body, "application/json")))
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        grown = hwm() - before
    finally:
        assert r.stop() == 0, r.stderr()
    statuses = sorted(s for s, _, _ in results)
    # each body is parsed, then refused: its 1.4 million resource entries are over MAX_ENTRIES
    assert len(statuses) == 8 and set(statuses) <= {413, 503} and statuses.count(413) >= 2, statuses
    assert all(b"(MAX_ENTRIES)" in b for s, b, _ in results if s == 413)
    assert all(h.get("Retry-After") for s, _, h in results if s == 503)
    assert grown < 450, f"the receiver grew by {grown} MB parsing 8 bodies of 4 MiB"


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: its tag byte, its length as a varint, then the payload."""
    n, length = len(payload), bytearray()
    while True:
        length.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes([tag]) + bytes(length) + payload


def test_a_body_of_millions_of_tiny_messages_is_refused_before_it_is_parsed(tmp_path):
    """Parsing costs memory per message: a 4 MB protobuf body of 2 million empty spans (a 4 KB gzip on the wire)
    took about 350 MB to check and was acknowledged; the loader took more to turn it into JSON (8 million: 1.4 GB,
    then 2 GB). What a request holds is now counted on the wire format before it is parsed, and one over
    MAX_SPANS, MAX_ENTRIES or MAX_ITEMS is answered 413 naming the limit, nothing spooled."""
    r = Receiver(tmp_path / "wb.duckdb", None)

    def hwm() -> int:  # the receiver's peak resident memory, in MB
        status = Path(f"/proc/{r.proc.pid}/status").read_text()
        return int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) // 1024

    spans = _field(0x0A, _field(0x12, b"\x12\x00" * 2_000_000))  # one resource, one scope, 2,000,000 empty spans
    entries = b"\x0a\x00" * 2_000_000  # 2,000,000 empty resource entries
    # one span, one attribute whose value is an array of 600,000 empty values
    values = _field(0x0A, _field(0x12, _field(0x12, _field(0x4A, _field(0x12, _field(0x2A, b"\x0a\x00" * 600_000))))))
    try:
        before = hwm()
        t0 = time.monotonic()
        got = [post(r.port, gzip.compress(b), headers={"Content-Encoding": "gzip"}) for b in (spans, entries, values)]
        took = time.monotonic() - t0
        grown = hwm() - before
        assert post(r.port, one_span_request("5000000000000001", 8).SerializeToString())[0] == 200
    finally:
        assert r.stop() == 0, r.stderr()
    assert [status for status, _, _ in got] == [413, 413, 413]
    assert b"over 50000 spans in one request (MAX_SPANS)" in got[0][1]
    assert b"over 10000 resource and scope entries in one request (MAX_ENTRIES)" in got[1][1]
    assert b"over 500000 attributes, events and links in one request (MAX_ITEMS)" in got[2][1]
    assert grown < 60 and took < 10, (grown, took)
    assert calls(tmp_path / "wb.duckdb", "select call_id from calls") == [("5000000000000001",)]


def test_the_span_limit_holds_for_both_encodings_and_a_spooled_record_over_it_is_quarantined_once(tmp_path,
                                                                                                  monkeypatch):
    """A record spooled before the limits existed would be parsed at every load try (gigabytes for the worst, and
    again after every restart if that killed the receiver): it is now quarantined once, with the limit as the
    reason, and the records around it load."""
    monkeypatch.setattr(otlp_proto, "MAX_SPANS", 2, raising=False)
    three = one_span_request("6000000000000001", 1)
    for sid in ("6000000000000002", "6000000000000003"):
        sp = three.resource_spans[0].scope_spans[0].spans.add()
        sp.CopyFrom(three.resource_spans[0].scope_spans[0].spans[0])
        sp.span_id = bytes.fromhex(sid)
    spool = wc.Spool(tmp_path / "wb.duckdb.spool")
    spool.open_segment()
    spool.append(wc.KIND_PROTO, three.SerializeToString())  # spooled by an older receiver
    spool.append(wc.KIND_PROTO, one_span_request("6000000000000004", 4).SerializeToString())
    spool.close()
    two = ExportTraceServiceRequest()
    two.CopyFrom(three)
    del two.resource_spans[0].scope_spans[0].spans[2]
    for sp in two.resource_spans[0].scope_spans[0].spans:
        sp.span_id = bytes([0x70]) + sp.span_id[1:]
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)
    c.start()
    try:
        assert post(c.port, two.SerializeToString())[0] == 200  # at the limit
        status, body, _ = post(c.port, three.SerializeToString())
        assert status == 413 and b"over 2 spans in one request (MAX_SPANS)" in body
        status, body, _ = post(c.port, otlp_proto.to_json_line(three).encode(), "application/json")
        assert status == 413 and json.loads(body) == {"code": 8, "message": "over 2 spans in one request (MAX_SPANS); "
                                                      "send smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)"}
    finally:
        assert c.stop() == 0
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)  # a restart tries nothing again
    c.start()
    assert c.stop() == 0
    assert calls(tmp_path / "wb.duckdb", "select call_id from calls order by 1") == [
        ("6000000000000004",), ("7000000000000001",), ("7000000000000002",)]
    assert calls(tmp_path / "wb.duckdb", "select line_no, reason, raw from quarantine") == [
        (1, "not an OTLP trace export (no resourceSpans)",
         '{"workbench.undecodable": "over 2 spans in one request (MAX_SPANS); send smaller batches '
         f'(OTEL_BSP_MAX_EXPORT_BATCH_SIZE)", "bytes": {len(three.SerializeToString())}}}')]


def test_a_chunked_body_is_read_as_the_node_exporter_sends_it_with_gzip(tmp_path):
    """The OpenTelemetry JS exporter with gzip compression sends no Content-Length, only Transfer-Encoding: chunked
    (opentelemetry-js #2879): every export was answered 411 (not retried) and its spans lost. A chunked body is read,
    within the same limit; broken framing is a 400, a body over the limit a 413."""
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False, max_body_bytes=4096)
    c.start()

    def chunked(pieces: list[bytes], headers: dict | None = None) -> tuple[int, bytes]:
        con = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        try:  # an iterable body and no Content-Length: http.client sends it chunked
            con.request("POST", "/v1/traces", body=iter(pieces), headers={
                "Content-Type": "application/x-protobuf", **(headers or {})})
            r = con.getresponse()
            assert r.getheader("Content-Type") == "application/x-protobuf"
            return r.status, r.read()
        finally:
            con.close()

    try:
        z = gzip.compress(one_span_request("3000000000000001", 5).SerializeToString())
        assert chunked([z[:10], z[10:11], z[11:]], {"Content-Encoding": "gzip"}) == (200, b"")
        assert chunked([b"\x0a\x00" * 1500, b"\x0a\x00" * 1500])[0] == 413  # 6,000 bytes over 4,096
        head = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        assert _raw_request(c.port, head, b"zz\r\n\x0a\x00\r\n0\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert _raw_request(c.port, head, b"4\r\n\x0a\x00\r\n0\r\n\r\n", half_close=True).startswith(b"HTTP/1.1 400")
    finally:
        assert c.stop() == 0
    assert calls(tmp_path / "wb.duckdb", "select call_id, input_tokens from calls") == [("3000000000000001", 5)]


def test_a_head_request_gets_the_status_and_headers_without_a_body(tmp_path):
    # A HEAD was answered as a GET, body included: a response to HEAD has none (RFC 9110 9.3.2), and a client reads
    # none: the bytes were left unread on the connection.
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)
    c.start()
    try:
        for path, code in (("/v1/traces", b"405"), ("/v1/metrics", b"404")):
            answer = _raw_request(c.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), b"")
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 " + code) and body == b"", answer
    finally:
        assert c.stop() == 0


def test_an_unknown_method_http2_or_a_broken_request_line_is_refused_in_the_receivers_format(tmp_path):
    """http.server answered these itself with an HTML page: an HTTP/2 preface got the page with no status line at all
    (as to an HTTP/0.9 request), and an unknown method's body was left unread (a large one: the client's send failed
    before it read the 501). They are now answered as every other refusal: a google.rpc.Status in JSON, the
    connection closed, an unknown method's body drained first."""
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False)
    c.start()

    def split(answer: bytes) -> tuple[list[bytes], dict]:
        head, _, body = answer.partition(b"\r\n\r\n")
        return head.split(b"\r\n"), json.loads(body)

    try:
        head, body = split(_raw_request(c.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b""))
        assert head[0] == b"HTTP/1.1 505 HTTP Version Not Supported"
        assert b"Content-Type: application/json" in head and b"Connection: close" in head
        assert body == {"code": 12, "message": "HTTP/2 is not served: send OTLP/HTTP over HTTP/1.1 (http/protobuf or "
                                               "http/json)"}
        head, body = split(_raw_request(c.port, b"GARBAGE\r\n\r\n", b""))
        assert head[0] == b"HTTP/1.1 400 Bad Request" and body == {"code": 3, "message": "Bad request syntax ('GARBAGE')"}
        status, answer, headers = post(c.port, b"x" * (8 << 20), "application/json", method="FROB")
        assert (status, json.loads(answer), headers["Allow"], headers["Connection"]) == (
            501, {"code": 12, "message": "method 'FROB' is not served; OTLP traces go to POST /v1/traces"}, "POST", "close")
        assert post(c.port, one_span_request().SerializeToString())[0] == 200  # and the receiver still serves
    finally:
        assert c.stop() == 0


def test_connections_over_the_cap_get_a_503_and_idle_ones_are_closed(tmp_path, monkeypatch):
    """Every connection got a thread, with no bound, and an idle one was closed only by the 60 s read timeout: a client
    opening thousands of idle sockets held thousands of threads. Connections over max_connections are now answered
    503 with Retry-After and closed by the accepting thread, and one with no request begun is closed after
    IDLE_SECONDS."""
    import socket

    monkeypatch.setattr(wc, "IDLE_SECONDS", 5.0, raising=False)  # the 50 answers below come well within it
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False, max_connections=3)
    c.start()
    kept = [http.client.HTTPConnection("127.0.0.1", c.port, timeout=10) for _ in range(3)]
    extra: list = []
    try:
        for i, con in enumerate(kept):  # three keep-alive connections, each served once and left open
            con.request("POST", "/v1/traces", body=one_span_request(f"800000000000000{i}", i).SerializeToString(),
                        headers={"Content-Type": "application/x-protobuf"})
            assert con.getresponse().read() == b""
        threads = threading.active_count()
        extra = [socket.create_connection(("127.0.0.1", c.port), timeout=10) for _ in range(50)]
        answers = []
        for s in extra:
            got = b""
            while chunk := s.recv(4096):
                got += chunk
            answers.append(got)
        head, _, body = answers[0].partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable" and b"Retry-After: 1" in head
        assert json.loads(body) == {"code": 14, "message": "busy: 3 connections are open, the most served at once; "
                                                           "retry"}
        assert set(answers) == {answers[0]}
        assert threading.active_count() <= threads + 1  # one thread closes the refused sockets, not one each
        status, _, headers = post(c.port, one_span_request("8000000000000009").SerializeToString())
        assert (status, headers["Retry-After"]) == (503, "1")  # a client sending its request gets the answer too
        time.sleep(5.5)  # the three kept-alive connections are idle past IDLE_SECONDS: closed
        assert [con.sock.recv(1) for con in kept] == [b"", b"", b""]
        assert post(c.port, one_span_request("8000000000000003", 3).SerializeToString())[0] == 200
    finally:
        for s in extra:
            s.close()
        for con in kept:
            con.close()
        assert c.stop() == 0
    assert calls(tmp_path / "wb.duckdb", "select count(*) from calls") == [(4,)]


def _read_answers(port: int, head: bytes, then: bytes | None = None, wait: float = 5.0) -> list[bytes]:
    """Send ``head`` (headers with Expect: 100-continue and no body), read the first answer's status line; when it is
    100, send ``then`` (the body). Returns the status lines read until the server closes or ``wait`` seconds pass."""
    import socket

    lines: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(head)
        buf = b""
        try:
            while chunk := s.recv(65536):
                buf += chunk
                while b"\r\n\r\n" in buf:
                    answer, buf = buf.split(b"\r\n\r\n", 1)
                    lines.append(answer.split(b"\r\n")[0])
                    if lines[-1].startswith(b"HTTP/1.1 100") and then is not None:
                        s.sendall(then)
                    elif not lines[-1].startswith(b"HTTP/1.1 100"):
                        n = int(next((x.split(b":")[1] for x in answer.split(b"\r\n")
                                      if x.lower().startswith(b"content-length:")), b"0"))
                        buf = buf[n:]
        except TimeoutError:
            lines.append(b"(no answer in time)")
    return lines


def test_expect_100_continue_is_answered_with_the_refusal_before_the_body_is_sent(tmp_path):
    """A client announcing its body with Expect: 100-continue was invited to send it (100 Continue) before the request
    was checked: one declaring 1 GB over the 4 KiB limit, or posting to /v1/metrics, was then waited for, its body read
    (or the connection stalled until the client gave up). The refusal now comes instead of the 100, the body unread,
    and the connection is closed; an acceptable request still gets 100, then 200."""
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False, max_body_bytes=4096)
    c.start()
    good = one_span_request("4000000000000001", 6).SerializeToString()

    def head(length: int, path: str = "/v1/traces", method: str = "POST", ctype: str = "application/x-protobuf",
             extra: bytes = b"") -> bytes:
        return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n"
                f"Expect: 100-continue\r\n").encode() + extra + b"\r\n"

    try:
        assert _read_answers(c.port, head(1 << 30)) == [b"HTTP/1.1 413 Request Entity Too Large"]
        assert _read_answers(c.port, head(4097)) == [b"HTTP/1.1 413 Request Entity Too Large"]
        assert _read_answers(c.port, head(100, path="/v1/metrics")) == [b"HTTP/1.1 404 Not Found"]
        assert _read_answers(c.port, head(100, method="PUT")) == [b"HTTP/1.1 405 Method Not Allowed"]
        assert _read_answers(c.port, head(100, ctype="text/plain")) == [b"HTTP/1.1 415 Unsupported Media Type"]
        assert _read_answers(c.port, head(100, extra=b"Content-Encoding: br\r\n")) == [
            b"HTTP/1.1 415 Unsupported Media Type"]
        assert _read_answers(c.port, head(len(good)).replace(b"Content-Length", b"X-Length")) == [
            b"HTTP/1.1 411 Length Required"]
        assert _read_answers(c.port, head(len(good)), then=good, wait=5) == [
            b"HTTP/1.1 100 Continue", b"HTTP/1.1 200 OK", b"(no answer in time)"]  # kept alive after the 200
    finally:
        assert c.stop() == 0
    assert calls(tmp_path / "wb.duckdb", "select call_id, input_tokens from calls") == [("4000000000000001", 6)]


def _spool_fd(fd: int) -> bool:
    return Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith("traces-")


@pytest.mark.parametrize("fault", ["fsync", "short write, then no new segment"])
def test_a_spool_write_that_fails_is_a_503_and_loses_no_acknowledged_batch(tmp_path, monkeypatch, fault):
    """A record whose write or fsync failed (a full disk) was answered 503, but the next records went on into the
    same segment after it, acknowledged. After a failed fsync the loader, reading the active segment up to its
    durable length, read one record behind (the last acknowledged batch stayed unloaded until a restart); after a
    short write, whose new segment could not be created either, the partial record failed its crc and every batch
    acknowledged after it was ignored as a torn tail: lost. The segment a write failed in is now cut back to its
    durable end and never written again: the next batch goes to a new segment (503 while none can be made)."""
    import errno

    real_fsync, real_write, real_open = os.fsync, os.write, os.open
    armed = {"n": 0}

    def enospc():
        armed["n"] -= 1
        return OSError(errno.ENOSPC, "No space left on device")

    def fsync(fd):
        if armed["n"] and _spool_fd(fd):
            raise enospc()
        return real_fsync(fd)

    def write(fd, data):
        if armed["n"] and _spool_fd(fd):
            armed["n"] -= 1
            return real_write(fd, bytes(data)[: len(data) // 2])
        return real_write(fd, data)

    def open_(path, flags, *a, **kw):
        if armed["n"] and Path(path).name.startswith("traces-") and flags & os.O_CREAT:
            raise enospc()
        return real_open(path, flags, *a, **kw)

    if fault == "fsync":
        monkeypatch.setattr(os, "fsync", fsync)
    else:
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "open", open_)
    db = tmp_path / "wb.duckdb"
    c = wc.Collector(db, port=0, progress=False, spool=tmp_path / "spool")
    c.start()
    a, b, d = (one_span_request(f"500000000000000{i}", i).SerializeToString() for i in (1, 2, 3))
    try:
        armed["n"] = 1 if fault == "fsync" else 2  # the fsync; or the write, then the new segment
        status, _, h = post(c.port, a)
        assert (status, h.get("Retry-After"), armed["n"]) == (503, "5", 0)
        assert post(c.port, b)[0] == 200
        assert post(c.port, d)[0] == 200
    finally:
        assert c.stop() == 0
    # both acknowledged batches are loaded now, not at the next start; the refused one is not (its exporter retries)
    assert calls(db, "select call_id, input_tokens from calls order by 1") == [
        ("5000000000000002", 2), ("5000000000000003", 3)]
    monkeypatch.undo()
    c = wc.Collector(db, port=0, progress=False, spool=tmp_path / "spool")
    c.start()
    try:
        assert post(c.port, a)[0] == 200  # the exporter's retry
    finally:
        assert c.stop() == 0
    assert calls(db, "select call_id, count(*) from calls group by 1 order by 1") == [
        ("5000000000000001", 1), ("5000000000000002", 1), ("5000000000000003", 1)]


def test_the_database_is_free_between_loads_and_one_held_elsewhere_is_loaded_once_free(tmp_path, capsys):
    """`workbench collect` held its database open for writing as long as it ran: no report, metric or `schedule run`
    could open it beside it (each gave up after the lock wait). It is now open only while a batch loads. Here another
    process opens it for writing between two loads and holds it; the receiver still acknowledges (the spool keeps the
    batch), says so once, and loads the batch once the database is free."""
    db = tmp_path / "wb.duckdb"
    c = wc.Collector(db, port=0, spool=tmp_path / "spool")
    c.start()

    def loaded(n: int) -> bool:
        deadline = time.monotonic() + 60
        while c.loader.spans_loaded < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return c.loader.spans_loaded == n

    holder = None
    try:
        assert post(c.port, one_span_request("6000000000000001", 1).SerializeToString())[0] == 200
        assert loaded(1)
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, workbench as wb\n"
             "db = wb.connect(sys.argv[1], lock_timeout_s=20)\n"
             "print(db.sql('select call_id from calls').rows(), flush=True)\nsys.stdin.read()", str(db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert holder.stdout.readline() == "[('6000000000000001',)]\n", holder.stderr.read()
        assert post(c.port, one_span_request("6000000000000002", 2).SerializeToString())[0] == 200
        time.sleep(3)  # the loader tried, found the database held, and waits
        assert c.loader.spans_loaded == 1 and "locked by another process" in (c.loader.error or "")
        holder.communicate("", timeout=30)
        assert loaded(2)
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        assert c.stop() == 0
    err = capsys.readouterr().err
    assert err.count("the database is locked by another process") == 1, err
    assert "the spool keeps the batches, loaded once it is free" in err
    assert calls(db, "select call_id, input_tokens from calls order by 1") == [
        ("6000000000000001", 1), ("6000000000000002", 2)]


def test_a_request_whose_length_is_ambiguous_or_absurd_is_refused_and_the_connection_closed(tmp_path):
    """Two different Content-Lengths were read by the first, and Content-Length with Transfer-Encoding by the chunks,
    both acknowledged and the connection kept for a next request: a proxy reading the other length sees another
    request boundary (request smuggling; RFC 9112 section 6.3 says reject, or answer and close). A Content-Length of
    20 digits (far over the limit) or of -1 got 411 "a Content-Length header is required"."""
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False, max_body_bytes=4096)
    c.start()
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    body = json.dumps({"resourceSpans": []}).encode()  # 21 bytes

    def status(extra: bytes, data: bytes = body) -> tuple[bytes, bytes]:
        answer = _raw_request(c.port, head + extra + b"\r\n", data, half_close=True)
        first, _, rest = answer.partition(b"\r\n\r\n")
        n = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        return first.split(b"\r\n")[0], json.loads(rest[:n]).get("message", "")

    try:
        assert status(b"Content-Length: 21\r\nContent-Length: 60\r\n") == (
            b"HTTP/1.1 400 Bad Request", "conflicting Content-Length headers ('21', '60')")
        assert status(b"Content-Length: 21\r\nTransfer-Encoding: chunked\r\n", b"15\r\n" + body + b"\r\n0\r\n\r\n") == (
            b"HTTP/1.1 400 Bad Request", "both Content-Length and Transfer-Encoding: the body's length is ambiguous")
        assert status(b"Content-Length: 99999999999999999999\r\n", b"") == (
            b"HTTP/1.1 413 Request Entity Too Large",
            "body of 99999999999999999999 bytes is over the limit of 4096 bytes; send smaller batches "
            "(e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE)")
        assert status(b"Content-Length: " + b"9" * 5000 + b"\r\n", b"")[0] == b"HTTP/1.1 413 Request Entity Too Large"
        assert status(b"Content-Length: -1\r\n", b"") == (
            b"HTTP/1.1 400 Bad Request", "Content-Length must be a number of bytes, got '-1'")
        assert status(b"Content-Length: 21\r\ncontent-length: 21\r\n", body)[0] == b"HTTP/1.1 200 OK"  # the same twice
    finally:
        assert c.stop() == 0


def test_a_refused_connection_reads_its_answer_while_its_client_still_sends(tmp_path, monkeypatch):
    """A connection over max_connections was answered 503 and closed at once. A client whose request body arrived
    after that close got a reset: its next send failed with a broken pipe (seen in CI under load) instead of it
    reading the 503 it can retry on. The refused socket is now closed gracefully: its write side is shut, what the
    client still sends is read and dropped until it closes, for at most LINGER_SECONDS, by one thread for all."""
    import socket

    monkeypatch.setattr(wc, "LINGER_SECONDS", 1.0, raising=False)
    c = wc.Collector(tmp_path / "wb.duckdb", port=0, progress=False, max_connections=1)
    c.start()
    kept = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    body = one_span_request("8000000000000001").SerializeToString()
    try:
        kept.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
        assert kept.getresponse().read() == b""  # the one slot is held by this kept-alive connection
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as s:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                      b"Content-Length: %d\r\n\r\n" % (2 * len(body)))
            got = b""
            while b"\r\n\r\n" not in got or not got.endswith(b"}"):
                got += s.recv(4096)
            assert got.startswith(b"HTTP/1.1 503 Service Unavailable")
            time.sleep(0.2)
            s.sendall(body)  # the body after the answer: read and dropped, no reset
            time.sleep(0.2)
            s.sendall(body)
            assert s.recv(4096) == b""  # the server's side is shut for writing
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as s:  # one that never closes: at most
            s.sendall(b"POST /v1/traces HTTP/1.1\r\n")                          # LINGER_SECONDS, then closed
            while s.recv(4096):
                pass
            time.sleep(1.6)
            with pytest.raises(OSError):  # closed: the first send is answered by a reset, the next one fails
                for _ in range(20):
                    s.sendall(b"x" * 1024)
                    time.sleep(0.05)
        assert {t.name for t in threading.enumerate()} & {"workbench-collect-linger"} == set()  # gone when idle
    finally:
        kept.close()
        assert c.stop() == 0


def test_the_cli_sets_how_many_connections_are_served_at_once(tmp_path):
    """max_connections (64) could be set from Python only: a fleet of more than 64 exporters keeping their
    connections alive saw 503s with no way to raise the cap from the command line. ``--max-connections N``."""
    import socket

    p = subprocess.run([sys.executable, "-m", "workbench.cli", "collect", "--db", str(tmp_path / "a.duckdb"),
                        "--max-connections", "0"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--max-connections must be at least 1, got 0" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    r = Receiver(tmp_path / "wb.duckdb", None, "--max-connections", "1")
    kept = http.client.HTTPConnection("127.0.0.1", r.port, timeout=30)
    try:
        kept.request("POST", "/v1/traces", body=one_span_request("8100000000000001").SerializeToString(),
                     headers={"Content-Type": "application/x-protobuf"})
        assert kept.getresponse().read() == b""
        with socket.create_connection(("127.0.0.1", r.port), timeout=30) as s:  # the second: over the cap of 1
            got = b""
            while chunk := s.recv(4096):
                got += chunk
        assert got.startswith(b"HTTP/1.1 503 Service Unavailable") and b"busy: 1 connections are open" in got
    finally:
        kept.close()
        assert r.stop() == 0, r.stderr()
