"""Benchmark ``workbench ingest``: calls as JSONL, CSV and Parquet, LiteLLM payload lines and OTLP spans, first load and
re-load, each against what an engineer fluent in DuckDB writes by hand.

    .venv/bin/python benchmarks/bench_ingest.py [--rows 1000000] [--litellm 100000] [--spans 200000] [--rounds 2]

Generates the files in a temporary directory (seeded) and loads each into a fresh DuckDB file in a fresh process,
interleaved with the alternative, and prints rows, seconds, rows/s, peak RSS and the ratio (the loads are checked to
hold the same rows first):

* JSONL, CSV, Parquet (a mapping file): DuckDB's own reader with explicit columns, the same mapping, dedupe by
  anti-join, one transaction;
* LiteLLM ``StandardLoggingPayload`` lines (a telemetry format parsed and mapped in Python by
  :mod:`workbench.io.litellm`): the same mapping written in DuckDB SQL over ``read_json`` (``_sql_litellm``), compared
  on 20 columns;
* OTLP spans, as JSON lines and as the same spans in protobuf: against the goal of 150,000 spans/s;
* Langfuse traces, OpenInference spans and Vercel AI SDK spans (``--litellm`` records of each, the tests' fixtures
  replicated with new ids, :func:`write_replicated`): against the same rate;
* the old baseline, ``json.loads`` per line and ``executemany`` with ``INSERT OR IGNORE``, on ``--baseline-rows``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAPPING = """
table = "calls"
[columns]
call_id = "id"
ts = { field = "time", unit = "s" }
latency_ms = { field = "duration", unit = "s" }
input_tokens = "usage.input"
output_tokens = "usage.output"
cache_read_tokens = "usage.cached"
model = "model"
feature = { field = "app", default = "unknown" }
user_id = "user"
status = { field = "status", default = "ok" }
"""

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]
APPS = ["support", "summariser", "search", "writer"]


_PEAK = [0.0]  # the process's peak over the steps (resetting the kernel's per-step peak resets ru_maxrss too)


def peak_rss_mb() -> float:
    _PEAK[0] = max(_PEAK[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB
    return _PEAK[0]


def reset_step_peak() -> bool:
    """Reset the kernel's peak RSS of this process (Linux) so a step's own peak can be read; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def step_peak_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def write_jsonl(path: Path, n: int, rng: random.Random, start: int = 0, mode: str = "w") -> None:
    """Records ``start`` .. ``start + n - 1`` (``mode="a"``: appended to the file)."""
    t0 = 1763632800
    with open(path, mode) as fh:
        for i in range(start, start + n):
            inp = rng.randint(50, 8000)
            fh.write(json.dumps({
                "id": f"req-{i:09d}", "time": t0 + i * 0.05, "duration": round(rng.uniform(0.1, 6.0), 3),
                "usage": {"input": inp, "output": rng.randint(1, 1200), "cached": rng.randint(0, inp)},
                "model": rng.choice(MODELS), "app": rng.choice(APPS), "user": f"u-{rng.randint(1, 20000)}",
                "status": "ok" if rng.random() > 0.02 else "error",
            }) + "\n")


def _attr(k: str, v) -> dict:
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    if isinstance(v, float):
        return {"key": k, "value": {"doubleValue": v}}
    if isinstance(v, list):
        return {"key": k, "value": {"arrayValue": {"values": [{"stringValue": x} for x in v]}}}
    return {"key": k, "value": {"stringValue": v}}


def write_otlp(path: Path, n: int, rng: random.Random, per_line: int = 100) -> None:
    """Collector file-exporter style: one ExportTraceServiceRequest per line, ``per_line`` spans each."""
    t0 = 1763632800 * 10**9
    with open(path, "w") as fh:
        for start in range(0, n, per_line):
            spans = []
            for i in range(start, min(n, start + per_line)):
                s = t0 + i * 50_000_000
                inp = rng.randint(50, 8000)
                spans.append({
                    "traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{i + 1:016x}", "parentSpanId": "",
                    "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": str(s),
                    "endTimeUnixNano": str(s + rng.randint(100, 6000) * 1_000_000),
                    "attributes": [
                        _attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", "openai"),
                        _attr("gen_ai.request.model", rng.choice(MODELS)),
                        _attr("gen_ai.response.model", rng.choice(MODELS)),
                        _attr("gen_ai.usage.input_tokens", inp),
                        _attr("gen_ai.usage.output_tokens", rng.randint(1, 1200)),
                        _attr("gen_ai.usage.cache_read.input_tokens", rng.randint(0, inp)),
                        _attr("gen_ai.response.finish_reasons", ["stop"]),
                        _attr("gen_ai.conversation.id", f"c-{rng.randint(1, 50000)}"),
                        _attr("gen_ai.request.temperature", 0.2),
                        _attr("workbench.feature", rng.choice(APPS)),
                        _attr("user.id", f"u-{rng.randint(1, 20000)}"),
                    ],
                    "status": {"code": 1 if rng.random() > 0.02 else 2},
                })
            fh.write(json.dumps({"resourceSpans": [{
                "resource": {"attributes": [_attr("service.name", "bench"),
                                            _attr("deployment.environment.name", "production")]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}) + "\n")



PROVIDERS = {"gpt-4o": "openai", "gpt-4o-mini": "openai", "claude-sonnet-4-5": "anthropic", "gemini-2.5-flash": "gemini"}


def write_litellm(path: Path, n: int, rng: random.Random, start: int = 0, mode: str = "w") -> None:
    """LiteLLM ``StandardLoggingPayload`` lines as its logging callbacks write them (about 1.3 KB each: usage object,
    hidden params, the messages and the response), times in whole milliseconds; records ``start`` .. ``start + n - 1``
    (``mode="a"``: appended to the file)."""
    t0 = 1763632800
    with open(path, mode) as fh:
        for i in range(start, start + n):
            model = rng.choice(MODELS)
            inp, out = rng.randint(50, 8000), rng.randint(1, 1200)
            cached = rng.randint(0, inp)
            start = t0 + i * 0.05
            end = round(start + rng.randint(100, 6000) / 1000, 3)
            user, app = f"u-{rng.randint(1, 20000)}", rng.choice(APPS)
            fh.write(json.dumps({
                "id": f"chatcmpl-{i:09d}", "trace_id": f"lt-{i:09d}", "call_type": "acompletion", "stream": True,
                "status": "success", "model": model, "model_group": model, "model_id": "m-1",
                "custom_llm_provider": PROVIDERS[model], "api_base": "https://llm.internal/v1",
                "startTime": round(start, 3), "endTime": end,
                "completionStartTime": round(start + rng.randint(50, 99) / 1000, 3),
                "response_time": round(end - start, 3), "prompt_tokens": inp, "completion_tokens": out,
                "total_tokens": inp + out, "response_cost": round((inp * 2.5 + out * 10) / 1e6, 8), "end_user": user,
                "cache_hit": False, "request_tags": ["prod"], "model_parameters": {"temperature": 0.2},
                "hidden_params": {"model_id": "m-1", "litellm_model_name": model, "api_base": "https://llm.internal/v1"},
                "metadata": {"user_api_key_hash": "h", "user_api_key_alias": "k", "user_api_key_team_alias": app,
                             "user_api_key_user_id": "internal-1", "user_api_key_end_user_id": user,
                             "requester_metadata": {}, "applied_guardrails": [],
                             "usage_object": {"prompt_tokens": inp, "completion_tokens": out,
                                              "total_tokens": inp + out,
                                              "prompt_tokens_details": {"cached_tokens": cached},
                                              "completion_tokens_details": {"reasoning_tokens": 0}}},
                "messages": [{"role": "system", "content": "You are a helpful support assistant."},
                             {"role": "user", "content": f"Where is my parcel {i}? It was due yesterday."}],
                "response": {"id": f"chatcmpl-{i:09d}", "object": "chat.completion", "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": "It left the depot this morning and arrives today."}}]},
            }) + "\n")


def otlp_json_to_proto(src: Path, dst: Path) -> None:
    """The spans of :func:`write_otlp`'s lines as the Collector's file exporter writes them with ``format: proto``:
    each ``ExportTraceServiceRequest`` serialized, preceded by its length. Built with the generated classes (the
    value kinds the generator writes), 4x faster than ``json_format.ParseDict`` (47 s for 200,000 spans)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

    from workbench.io import otlp_proto

    names = {"stringValue": "string_value", "doubleValue": "double_value", "boolValue": "bool_value"}

    def value(v: dict):
        if "arrayValue" in v:
            return AnyValue(array_value=ArrayValue(values=[value(x) for x in v["arrayValue"].get("values", [])]))
        (kind, x), = v.items()
        return AnyValue(int_value=int(x)) if kind == "intValue" else AnyValue(**{names[kind]: x})

    def attrs(items: list) -> list:
        return [KeyValue(key=a["key"], value=value(a["value"])) for a in items]

    with open(src) as fh, open(dst, "wb") as out:
        for line in fh:
            req = ExportTraceServiceRequest()
            for rs in json.loads(line)["resourceSpans"]:
                r = req.resource_spans.add()
                r.resource.attributes.extend(attrs(rs["resource"]["attributes"]))
                for ss in rs["scopeSpans"]:
                    s = r.scope_spans.add()
                    s.scope.name = ss["scope"]["name"]
                    for sp in ss["spans"]:
                        p = s.spans.add(trace_id=bytes.fromhex(sp["traceId"]), span_id=bytes.fromhex(sp["spanId"]),
                                        name=sp["name"], kind=sp["kind"],
                                        start_time_unix_nano=int(sp["startTimeUnixNano"]),
                                        end_time_unix_nano=int(sp["endTimeUnixNano"]))
                        if sp.get("parentSpanId"):
                            p.parent_span_id = bytes.fromhex(sp["parentSpanId"])
                        p.attributes.extend(attrs(sp["attributes"]))
                        p.status.code = sp["status"]["code"]
            out.write(otlp_proto.frame(req.SerializeToString()))

def timed(label: str, fn, rows: int) -> float:
    peak_rss_mb()
    step = reset_step_peak()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    own = step_peak_mb() if step else None
    print(f"{label:44s} rows {rows:>10,}  {dt:8.2f} s  {rows / dt:>12,.0f} rows/s  peak RSS {peak_rss_mb():7.0f} MB"
          + (f" (this step {own:5.0f} MB)" if own is not None else "") + (f"  {out}" if out else ""))
    return rows / dt


def python_baseline(path: Path, db_path: Path, n: int) -> None:
    """What a user writes by hand: json.loads per line, executemany INSERT OR IGNORE into a PRIMARY KEY table."""
    import duckdb

    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE calls_pk (call_id VARCHAR PRIMARY KEY, ts TIMESTAMP, latency_ms DOUBLE, "
                "input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, model VARCHAR, feature VARCHAR, "
                "user_id VARCHAR, status VARCHAR)")
    import datetime as dt

    batch = []
    with open(path) as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            r = json.loads(line)
            u = r["usage"]
            batch.append((r["id"], dt.datetime.fromtimestamp(r["time"], dt.timezone.utc).replace(tzinfo=None),
                          r["duration"] * 1000, u["input"], u["output"], u.get("cached"), r["model"], r["app"],
                          r["user"], r["status"]))
            if len(batch) == 50_000:
                con.executemany("INSERT OR IGNORE INTO calls_pk VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
                batch = []
    if batch:
        con.executemany("INSERT OR IGNORE INTO calls_pk VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    con.close()


COLS = "call_id, ts, latency_ms, input_tokens, output_tokens, cache_read_tokens, model, feature, user_id, status"
#: The columns each format's loads are compared on (and the hand-written load inserts; LiteLLM also its attributes).
FORMAT_COLS = {"litellm": "call_id, trace_id, ts, end_ts, latency_ms, ttft_ms, operation, name, provider, model, "
                          "request_model, input_tokens, output_tokens, cache_read_tokens, reasoning_tokens, cost_usd, "
                          "user_id, feature, status, finish_reason"}
CSV_MAPPING = MAPPING.replace('"usage.input"', '"input"').replace('"usage.output"', '"output"').replace(
    '"usage.cached"', '"cached"')


def _sql_reader(fmt: str, path: Path) -> str:
    """The hand-written read of each format: explicit columns and types, mapped to the calls columns."""
    flat = ("id: 'VARCHAR', time: 'DOUBLE', duration: 'DOUBLE', input: 'BIGINT', output: 'BIGINT', "
            "cached: 'BIGINT', model: 'VARCHAR', app: 'VARCHAR', user: 'VARCHAR', status: 'VARCHAR'")
    if fmt == "jsonl":
        src = (f"(select id, time, duration, usage.input as input, usage.output as output, usage.cached as cached, "
               f"model, app, user, status from read_json('{path}', format='newline_delimited', "
               f"columns={{id: 'VARCHAR', time: 'DOUBLE', duration: 'DOUBLE', "
               f"usage: 'STRUCT(input BIGINT, output BIGINT, cached BIGINT)', model: 'VARCHAR', app: 'VARCHAR', "
               f"user: 'VARCHAR', status: 'VARCHAR'}}))")
    elif fmt == "csv":
        src = f"read_csv('{path}', header=true, auto_detect=false, columns={{{flat}}})"
    elif fmt == "litellm":
        return _sql_litellm(path)
    else:
        src = f"read_parquet('{path}')"
    return f"""
        select id as call_id, make_timestamp(round(time * 1000000)::bigint) as ts, duration * 1000 as latency_ms,
               input as input_tokens, output as output_tokens, cached as cache_read_tokens, model,
               coalesce(app, 'unknown') as feature, user as user_id, coalesce(status, 'ok') as status
        from {src}"""



def _sql_litellm(path: Path) -> str:
    """LiteLLM payload lines mapped in DuckDB SQL as the format's table says (workbench.io.litellm): explicit types
    for the fields read, the same fallbacks, the metadata's fields taken in one JSON parse, and the other fields
    kept as the attributes JSON."""
    us = lambda c: f"round({c} * 1000000)::bigint"  # noqa: E731  (epoch seconds -> microseconds, as ingest rounds)
    cols = ("id: 'VARCHAR', trace_id: 'VARCHAR', call_type: 'VARCHAR', stream: 'BOOLEAN', status: 'VARCHAR', "
            "model: 'VARCHAR', model_group: 'VARCHAR', model_id: 'VARCHAR', custom_llm_provider: 'VARCHAR', "
            "api_base: 'VARCHAR', startTime: 'DOUBLE', endTime: 'DOUBLE', completionStartTime: 'DOUBLE', "
            "response_time: 'DOUBLE', prompt_tokens: 'BIGINT', completion_tokens: 'BIGINT', total_tokens: 'BIGINT', "
            "response_cost: 'DOUBLE', end_user: 'VARCHAR', \"user\": 'VARCHAR', cache_hit: 'BOOLEAN', "
            "request_tags: 'JSON', model_parameters: 'JSON', hidden_params: 'STRUCT(litellm_model_name VARCHAR)', "
            "metadata: 'JSON', response: 'STRUCT(choices STRUCT(finish_reason VARCHAR)[])'")
    paths = ["$.user_api_key_team_alias", "$.user_api_key_end_user_id", "$.user_api_key_user_id",
             '$.requester_metadata."workbench.feature"', "$.requester_metadata.feature",
             '$.spend_logs_metadata."workbench.feature"', "$.spend_logs_metadata.feature",
             "$.usage_object.prompt_tokens_details.cached_tokens", "$.usage_object.cache_read_input_tokens",
             "$.usage_object.completion_tokens_details.reasoning_tokens"]
    m = "[" + ", ".join("'" + x.replace("'", "''") + "'" for x in paths) + "]"
    return f"""
        select id as call_id, trace_id, make_timestamp({us('startTime')}) as ts, make_timestamp({us('endTime')}) as end_ts,
               ({us('endTime')} - {us('startTime')}) / 1000.0 as latency_ms,
               case when {us('completionStartTime')} < {us('endTime')} or stream
                    then ({us('completionStartTime')} - {us('startTime')}) / 1000.0 end as ttft_ms,
               case when call_type in ('completion', 'acompletion') then 'chat'
                    when call_type in ('embedding', 'aembedding') then 'embeddings'
                    when call_type in ('text_completion', 'atext_completion') then 'text_completion'
                    else call_type end as operation,
               call_type as name, custom_llm_provider as provider,
               coalesce(nullif(hidden_params.litellm_model_name, ''), nullif(model, '')) as model,
               coalesce(nullif(model_group, ''), nullif(model, '')) as request_model,
               prompt_tokens as input_tokens, completion_tokens as output_tokens,
               coalesce(m[8], m[9])::bigint as cache_read_tokens, m[10]::bigint as reasoning_tokens,
               response_cost as cost_usd,
               coalesce(nullif(end_user, ''), nullif(m[2], ''), nullif("user", ''), nullif(m[3], '')) as user_id,
               coalesce(m[4], m[5], m[6], m[7], m[1]) as feature,
               case when lower(status) in ('success', 'ok') then 'ok' else lower(status) end as status,
               response.choices[1].finish_reason as finish_reason,
               json_object('litellm.model_group', model_group, 'litellm.model_id', model_id,
                           'litellm.api_base', api_base, 'litellm.stream', stream,
                           'litellm.response_time', response_time, 'litellm.total_tokens', total_tokens,
                           'litellm.end_user', end_user, 'litellm.request_tags', request_tags,
                           'litellm.model_parameters', model_parameters, 'litellm.cache_hit', cache_hit,
                           'litellm.metadata', metadata) as attributes
        from (select *, json_extract_string(metadata, {m}) as m
              from read_json('{path}', format='newline_delimited', columns={{{cols}}}))"""

def sql_load(db_path: Path, fmt: str, path: Path) -> dict:
    """What an engineer fluent in DuckDB writes: read with explicit columns, map, dedupe (first per key in the file,
    anti-join against the table), one transaction."""
    import duckdb

    cols = FORMAT_COLS[fmt] + ", attributes" if fmt in FORMAT_COLS else COLS
    con = duckdb.connect(str(db_path))
    con.execute("begin")
    n = con.execute(f"""
        insert into calls ({cols})
        select {cols} from ({_sql_reader(fmt, path)}) s
        where not exists (select 1 from calls d where d.call_id = s.call_id)
        qualify row_number() over (partition by call_id) = 1""").fetchone()[0]
    con.execute("commit")
    con.close()
    return {"inserted": n}


def bare_insert(db_path: Path, fmt: str, path: Path) -> dict:
    """The floor under any load of the file into ``calls``: DuckDB's plain ``INSERT ... SELECT`` of the mapped rows,
    with no dedupe, no checks and no record of the load (what writing the rows alone costs on this machine)."""
    import duckdb

    con = duckdb.connect(str(db_path))
    n = con.execute(f"insert into calls ({COLS}) select {COLS} from ({_sql_reader(fmt, path)}) s").fetchone()[0]
    con.close()
    return {"inserted": n}


def same_rows(a: Path, b: Path, cols: str = COLS) -> None:
    """Raise unless the two databases' calls tables hold the same rows in the benchmark's columns (``cols``)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only); attach '{b}' as b (read_only)")
    na, nb = (con.execute(f"select count(*) from {x}.calls").fetchone()[0] for x in ("a", "b"))
    if na > 10_000_000:
        # EXCEPT ALL would hold a hash table of every row: compare an order-independent checksum of the rows instead
        # (the sum of a 64-bit hash of each row's columns, and of each column alone)
        sums = [con.execute(f"select sum(hash({cols})::hugeint), "
                            + ", ".join(f"sum(hash({c})::hugeint)" for c in cols.split(", "))
                            + f" from {x}.calls").fetchone() for x in ("a", "b")]
        con.close()
        assert na == nb and sums[0] == sums[1], f"the loads differ: {na:,} vs {nb:,} rows, checksums {sums}"
        return
    diff = con.execute(f"select count(*) from (select {cols} from a.calls except all select {cols} from b.calls)"
                       ).fetchone()[0]
    con.close()
    assert na == nb and diff == 0, f"the loads differ: {na:,} vs {nb:,} rows, {diff:,} rows of the first not in the second"


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def _in_child(fn, *args) -> dict:
    """Run ``fn(*args)`` in a fresh spawned process: seconds and that process's peak RSS (VmHWM)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(_child, fn, *args).result()


def _child(fn, *args) -> dict:
    import duckdb  # noqa: F401  (both approaches import it: not part of the timing)

    import workbench as wb  # noqa: F401

    t = time.perf_counter()
    out = fn(*args)
    return {"seconds": time.perf_counter() - t, "peak_mb": step_peak_mb(), "out": out}


def wb_load(db_path: Path, path: Path, mapping: Path | None, fmt: str) -> dict:
    import workbench as wb
    from workbench.io.ingest import ingest

    db = wb.connect(db_path)
    s = ingest(db, path, mapping=mapping, format=fmt, progress=False)
    db.close()
    return {"inserted": s.inserted, "quarantined": s.quarantined, "seconds": s.files[0]["seconds"],
            "replayed": s.files[0]["same_as"] is not None, "appended": s.files[0]["appended_to"] is not None}


def empty_db(path: Path) -> Path:
    import workbench as wb

    if path.exists():
        path.unlink()
    wb.connect(path).close()
    return path


def versus(d: Path, fmt: str, path: Path, mapping: Path | None, rows: int, rounds: int) -> list[dict]:
    """Interleaved rounds (workbench, SQL, workbench, SQL...) of a first load into an empty database, then one re-load
    of the same file on each side, then one load of the file grown by 1% (appended to, :func:`grow`; not Parquet);
    the loads are checked equal before any time is reported. The summary rows of the first load, the re-load and the
    grown file."""
    runs: dict[str, list[dict]] = {"wb": [], "sql": []}
    for r in range(rounds):
        a = empty_db(d / f"wb-{fmt}.duckdb")
        runs["wb"].append(_in_child(wb_load, a, path, mapping, fmt))
        b = empty_db(d / f"sql-{fmt}.duckdb")
        runs["sql"].append(_in_child(sql_load, b, fmt, path))
        if r == 0:
            same_rows(a, b, FORMAT_COLS.get(fmt, COLS))
            assert runs["wb"][0]["out"]["inserted"] == rows, runs["wb"][0]["out"]
    # the re-load (every row a duplicate) into the last databases
    again = {"wb": _in_child(wb_load, d / f"wb-{fmt}.duckdb", path, mapping, fmt),
             "sql": _in_child(sql_load, d / f"sql-{fmt}.duckdb", fmt, path)}
    assert again["wb"]["out"]["inserted"] == 0 and again["sql"]["out"]["inserted"] == 0
    res = {k: {"seconds": _median([x["seconds"] for x in v]), "peak_mb": max(x["peak_mb"] for x in v)}
           for k, v in runs.items()}
    w, s = res["wb"], res["sql"]
    parts = {k: _median([x["out"]["seconds"][k] for x in runs["wb"]]) for k in ("hash", "parse", "validate", "write")}
    # each round's workbench load against the hand-written one right after it: a slow spell of a shared machine
    # slows both of a pair, so the median of the paired ratios moves less than the ratio of the medians
    paired = sorted(a["seconds"] / b["seconds"] for a, b in zip(runs["wb"], runs["sql"]))
    print(f"{fmt:>8} first load  rows {rows:>10,}  workbench {w['seconds']:7.2f} s ({rows / w['seconds']:>10,.0f} rows/s, "
          f"{w['peak_mb']:5.0f} MB)  DuckDB SQL {s['seconds']:7.2f} s ({rows / s['seconds']:>10,.0f} rows/s, "
          f"{s['peak_mb']:5.0f} MB)  ratio {w['seconds'] / s['seconds']:.2f}x; paired ratio {_median(paired):.2f}x "
          f"(range {paired[0]:.2f}-{paired[-1]:.2f}, {len(paired)} pairs)", flush=True)
    parse = f"parsing and mapping the records in Python {parts['parse']:.2f} s, " if parts["parse"] else ""
    print(f"{'':>8} of the workbench's time: hashing and counting the file {parts['hash']:.2f} s, {parse}validation "
          f"(the head and key checks of a load in one read, the survey pass, or staging with the checks and quarantine) {parts['validate']:.2f} s, writing the rows "
          f"{parts['write']:.2f} s", flush=True)
    print(f"{fmt:>8} re-load     rows {rows:>10,}  workbench {again['wb']['seconds']:7.2f} s  DuckDB SQL "
          f"{again['sql']['seconds']:7.2f} s  ratio {again['wb']['seconds'] / again['sql']['seconds']:.2f}x", flush=True)
    again_parts = again["wb"]["out"]["seconds"]
    replayed = again["wb"]["out"]["replayed"]
    how = ("not read again: the same bytes, mapping and version were loaded whole before and every row of that load "
           "is still in the table" if replayed else
           "read and validated again: a row a check refuses is quarantined even when its key is in the table")
    print(f"{'':>8} of the workbench's re-load: hashing and counting the file {again_parts['hash']:.2f} s (the file's "
          f"provenance), validation {again_parts['validate']:.2f} s ({how}; the hand-written insert reads the file "
          f"and checks nothing)", flush=True)
    alt = "mapping in DuckDB SQL" if fmt in FORMAT_COLS else "DuckDB reader + anti-join"
    out = [{"work": f"ingest {fmt} (first load)", "rows": rows, "wb_s": w["seconds"], "wb_mb": w["peak_mb"],
            "alt": alt, "alt_s": s["seconds"], "alt_mb": s["peak_mb"], "paired_ratio": _median(paired)},
           {"work": f"ingest {fmt} (re-load, all duplicates)", "rows": rows, "wb_s": again["wb"]["seconds"],
            "wb_mb": again["wb"]["peak_mb"], "alt": alt, "alt_s": again["sql"]["seconds"],
            "alt_mb": again["sql"]["peak_mb"]}]
    # the file grown by 1% (a log loaded again the next day): the workbench reads what was appended since its last
    # load; the hand-written load reads the whole file again and inserts the new rows by its anti-join
    extra = max(1, rows // 100)
    if grow(fmt, path, rows, extra):
        grown = {"wb": _in_child(wb_load, d / f"wb-{fmt}.duckdb", path, mapping, fmt),
                 "sql": _in_child(sql_load, d / f"sql-{fmt}.duckdb", fmt, path)}
        assert grown["wb"]["out"]["inserted"] == extra == grown["sql"]["out"]["inserted"], grown
        same_rows(d / f"wb-{fmt}.duckdb", d / f"sql-{fmt}.duckdb", FORMAT_COLS.get(fmt, COLS))
        how = ("only what was appended read" if grown["wb"]["out"]["appended"] else "read whole")
        print(f"{fmt:>8} grown 1%    rows {rows + extra:>10,}  workbench {grown['wb']['seconds']:7.2f} s ({how})  "
              f"DuckDB SQL {grown['sql']['seconds']:7.2f} s (the whole file read, the new rows by anti-join)  ratio "
              f"{grown['wb']['seconds'] / grown['sql']['seconds']:.2f}x", flush=True)
        out.append({"work": f"ingest {fmt} (grown 1%, {extra:,} new)", "rows": rows + extra,
                    "wb_s": grown["wb"]["seconds"], "wb_mb": grown["wb"]["peak_mb"], "alt": alt,
                    "alt_s": grown["sql"]["seconds"], "alt_mb": grown["sql"]["peak_mb"]})
    return out


#: The telemetry formats parsed in Python besides LiteLLM, each from a fixture of the tests replicated with new ids:
#: (format, fixture under tests/data/formats).
REPLICATED = (("langfuse", "langfuse_traces.jsonl"), ("openinference", "openinference_spans.json"),
              ("vercel", "vercel_spans.json"))
_ID_KEYS = frozenset({"id", "traceId", "spanId", "parentSpanId", "parentObservationId", "trace_id", "span_id",
                      "parent_id"})


def _ids(v, out: set) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            if k in _ID_KEYS and isinstance(x, str) and x:
                out.add(x)
            else:
                _ids(x, out)
    elif isinstance(v, list):
        for x in v:
            _ids(x, out)


def _new_id(v: str, copy: int) -> str:
    """The id of copy ``copy``: hex ids keep their length (the readers check it), others get a suffix."""
    if len(v) >= 16 and all(c in "0123456789abcdefABCDEF" for c in v):
        return v[:-8] + f"{(int(v[-8:], 16) + copy * 2654435761 + 1) % 2**32:08x}"
    return f"{v}-{copy}"


def write_replicated(fixture: Path, path: Path, n: int, fmt: str) -> int:
    """JSON lines of at least ``n`` records: the fixture's records that load clean as ``fmt`` (the fixtures hold some
    to quarantine) again and again, every trace, span and observation id made new for each copy; the records
    written."""
    import workbench as wb
    from workbench.io.ingest import ingest
    from workbench.io.records import iter_json_file

    db = wb.connect(":memory:")
    ingest(db, fixture, format=fmt, progress=False)
    bad = {k for (k,) in db.duckdb.execute("select line_no from quarantine").fetchall()}
    db.close()
    recs = [v for k, v, _r, e in iter_json_file(fixture) if e is None and k not in bad]
    texts = []
    for rec in recs:
        ids: set = set()
        _ids(rec, ids)
        texts.append((json.dumps(rec), sorted(ids, key=len, reverse=True)))
    written = 0
    with open(path, "w") as fh:
        copy = 0
        while written < n:
            for text, ids in texts:
                for v in ids:
                    text = text.replace(f'"{v}"', f'"{_new_id(v, copy)}"')
                fh.write(text + "\n")
                written += 1
            copy += 1
    return written


def flat_calls(jsonl: Path) -> str:
    """The SELECT of the generated JSONL calls as the flat columns of the CSV and Parquet files."""
    return (f"select id, time, duration, usage.input as input, usage.output as output, usage.cached as cached, "
            f"model, app, user, status from read_json('{jsonl}', format='newline_delimited')")


def grow(fmt: str, path: Path, rows: int, extra: int) -> bool:
    """Append ``extra`` new records (keys after the file's ``rows``) to a file of the benchmark, as a log grows between
    two daily loads; False for a format that is not appended to (Parquet)."""
    import duckdb

    rng = random.Random(rows + extra)
    if fmt == "jsonl":
        write_jsonl(path, extra, rng, start=rows, mode="a")
    elif fmt == "litellm":
        write_litellm(path, extra, rng, start=rows, mode="a")
    elif fmt == "csv":  # the same columns as the file, without a header, from new JSONL records
        more = path.with_suffix(".more.jsonl")
        write_jsonl(more, extra, rng, start=rows)
        con = duckdb.connect()
        con.execute(f"copy ({flat_calls(more)}) to '{more.with_suffix('.csv')}' (header false)")
        con.close()
        with open(path, "ab") as fh:
            fh.write(more.with_suffix(".csv").read_bytes())
    else:
        return False
    return True


def write_parquet_in_duckdb(path: Path, n: int) -> None:
    """``n`` call rows in the columns of the generated Parquet file, made by DuckDB itself (``range(n)``, hash-seeded:
    the same mix of models, apps, ~2% errors and 20,000 users), for sizes a Python writer would take hours over.

    The columns have the types of the smaller file (written from the generated JSON lines): ``time`` a DOUBLE of epoch
    seconds, as a dataframe library writes a float column. (Written as ``1763632800 + i * 0.05`` it was a
    DECIMAL(23, 2), a 128-bit decimal: converting it to a timestamp took 6 s of every 10M-row load, both sides.)"""
    import duckdb

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    h = lambda k: f"CAST(hash(i, {k}) % 1000000007 AS BIGINT)"  # noqa: E731
    con.execute(f"""
        COPY (SELECT printf('req-%09d', i) AS id, CAST(1763632800 + i * 0.05 AS DOUBLE) AS "time",
                     round(0.1 + ({h(1)} % 5901) / 1000.0, 3) AS duration,
                     50 + {h(2)} % 7951 AS input, 1 + {h(3)} % 1200 AS output,
                     {h(4)} % (51 + {h(2)} % 7951) AS cached,
                     list_extract({MODELS}, 1 + {h(5)} % {len(MODELS)}) AS model,
                     list_extract({APPS}, 1 + {h(6)} % {len(APPS)}) AS app,
                     'u-' || (1 + {h(7)} % 20000) AS "user",
                     CASE WHEN {h(8)} % 50 = 0 THEN 'error' ELSE 'ok' END AS status
              FROM range({n}) r(i)) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
    con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="JSONL call rows")
    ap.add_argument("--spans", type=int, default=200_000, help="OTLP spans")
    ap.add_argument("--baseline-rows", type=int, default=None,
                    help="rows for the Python json.loads + executemany baseline (default: min(rows, 5000); it is slow)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per format against DuckDB SQL")
    ap.add_argument("--formats", nargs="+", default=["jsonl", "csv", "parquet"], choices=["jsonl", "csv", "parquet"])
    ap.add_argument("--litellm", type=int, default=100_000,
                    help="LiteLLM payload lines (a telemetry format parsed in Python), against the same mapping "
                         "written in DuckDB SQL; 0 to skip")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary rows as JSON here")
    ap.add_argument("--parquet-rows", type=int, default=None,
                    help="only a large Parquet load: N rows generated in DuckDB, workbench against DuckDB's own load "
                         "(e.g. 100000000: bounded memory at any size)")
    a = ap.parse_args(argv)
    if a.parquet_rows:
        with open("/proc/loadavg") as fh:
            print(f"bench_ingest: load average {' '.join(fh.read().split()[:3])}", flush=True)
        with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
            d = Path(tmp)
            (d / "calls_csv.toml").write_text(CSV_MAPPING)
            t = time.perf_counter()
            write_parquet_in_duckdb(d / "calls.parquet", a.parquet_rows)
            print(f"generated {a.parquet_rows:,} call rows as Parquet in DuckDB "
                  f"({(d / 'calls.parquet').stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f} s", flush=True)
            r = versus(d, "parquet", d / "calls.parquet", d / "calls_csv.toml", a.parquet_rows, a.rounds)
            floor = _in_child(bare_insert, empty_db(d / "bare.duckdb"), "parquet", d / "calls.parquet")
            assert floor["out"]["inserted"] == a.parquet_rows, floor["out"]
            print(f"{'':>8} floor: DuckDB's bare INSERT of the same mapped rows into an empty calls table (no dedupe, "
                  f"no checks, no record of the load) {floor['seconds']:.2f} s "
                  f"({a.parquet_rows / floor['seconds']:,.0f} rows/s, {floor['peak_mb']:.0f} MB)", flush=True)
        if a.json:
            a.json.write_text(json.dumps(r))
        return 0
    base_n = a.baseline_rows or min(a.rows, 5_000)

    import duckdb

    import workbench as wb

    with open("/proc/loadavg") as fh:
        print(f"bench_ingest: load average {' '.join(fh.read().split()[:3])}", flush=True)
    rng = random.Random(7)
    out = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        d = Path(tmp)
        jsonl, otlp, mapping = d / "calls.jsonl", d / "spans.jsonl", d / "calls.toml"
        csv_map = d / "calls_csv.toml"
        mapping.write_text(MAPPING)
        csv_map.write_text(CSV_MAPPING)
        t = time.perf_counter()
        write_jsonl(jsonl, a.rows, rng)
        write_otlp(otlp, a.spans, rng)
        files = {"jsonl": (jsonl, mapping)}
        con = duckdb.connect()
        flat = flat_calls(jsonl)
        if "csv" in a.formats:
            con.execute(f"copy ({flat}) to '{d / 'calls.csv'}' (header)")
            files["csv"] = (d / "calls.csv", csv_map)
        if "parquet" in a.formats:
            con.execute(f"copy ({flat}) to '{d / 'calls.parquet'}' (format parquet)")
            files["parquet"] = (d / "calls.parquet", csv_map)
        con.close()
        print(f"generated {a.rows:,} call rows as {', '.join(a.formats)} ({jsonl.stat().st_size / 1e6:.0f} MB of JSONL) "
              f"and {a.spans:,} OTLP spans ({otlp.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s; "
              f"duckdb {duckdb.__version__}, {os.cpu_count()} cores", flush=True)
        for fmt in a.formats:
            path, mp_ = files[fmt]
            out.extend(versus(d, fmt, path, mp_, a.rows, a.rounds))
        if a.litellm:
            lite = d / "litellm.jsonl"
            write_litellm(lite, a.litellm, rng)
            out.extend(versus(d, "litellm", lite, None, a.litellm, a.rounds))
            # the other formats parsed in Python, as many records, against the rate OTLP is asked for
            fixtures = Path(__file__).resolve().parents[1] / "tests" / "data" / "formats"
            for fmt, name in REPLICATED:
                src = d / f"{fmt}.jsonl"
                n = write_replicated(fixtures / name, src, a.litellm, fmt)
                r = _in_child(wb_load, empty_db(d / f"{fmt}.duckdb"), src, None, fmt)
                rows = r["out"]["inserted"]
                assert r["out"]["quarantined"] == 0 and rows >= n, r["out"]
                print(f"{fmt:>8} first load  records {n:>9,} ({rows:,} rows)  workbench {r['seconds']:7.2f} s "
                      f"({n / r['seconds']:>10,.0f} records/s, {r['peak_mb']:5.0f} MB; parsing and mapping in Python "
                      f"{r['out']['seconds']['parse']:.2f} s)", flush=True)
                out.append({"work": f"ingest {fmt} (first load)", "rows": n, "wb_s": r["seconds"],
                            "wb_mb": r["peak_mb"], "alt": "(goal: 150k records/s)", "alt_s": n / 150_000,
                            "alt_mb": None})
        db = wb.connect(d / "bench.duckdb")
        r_otlp = _in_child(wb_load, d / "otlp.duckdb", otlp, None, "auto")
        print(f"    otlp first load  spans {a.spans:>9,}  workbench {r_otlp['seconds']:7.2f} s "
              f"({a.spans / r_otlp['seconds']:>10,.0f} spans/s, {r_otlp['peak_mb']:5.0f} MB)", flush=True)
        out.append({"work": "ingest OTLP JSON spans (first load)", "rows": a.spans, "wb_s": r_otlp["seconds"],
                    "wb_mb": r_otlp["peak_mb"], "alt": "(goal: 150k spans/s)", "alt_s": a.spans / 150_000,
                    "alt_mb": None})
        otlp_json_to_proto(otlp, d / "spans.pb")
        r_pb = _in_child(wb_load, d / "otlp-pb.duckdb", d / "spans.pb", None, "auto")
        same_rows(d / "otlp.duckdb", d / "otlp-pb.duckdb")  # the same spans, so the same rows
        print(f" otlp-pb first load  spans {a.spans:>9,}  workbench {r_pb['seconds']:7.2f} s "
              f"({a.spans / r_pb['seconds']:>10,.0f} spans/s, {r_pb['peak_mb']:5.0f} MB; the Collector's file "
              f"exporter with format: proto, {(d / 'spans.pb').stat().st_size / 1e6:.0f} MB)", flush=True)
        out.append({"work": "ingest OTLP protobuf spans (first load)", "rows": a.spans, "wb_s": r_pb["seconds"],
                    "wb_mb": r_pb["peak_mb"], "alt": "(goal: 150k spans/s)", "alt_s": a.spans / 150_000,
                    "alt_mb": None})
        db.close()
        t = time.perf_counter()
        python_baseline(jsonl, d / "base.duckdb", base_n)
        rb = base_n / (time.perf_counter() - t)
        print(f"python json.loads + executemany OR IGNORE: {rb:,.0f} rows/s on {base_n:,} rows (the old baseline)")
    if a.json:
        a.json.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
