"""Hardening of ingest (issue 13): nothing lost, no alert silenced by bad data, no mapping text reaching SQL.

Each test fails on the code before the fix. "Records in the file" is always counted here, independently of the
loader (Python's csv/json modules, pyarrow), and ``read = inserted + duplicates + quarantined`` is checked against it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import workbench as wb
from workbench.cli import main as cli_main
from workbench.io.ingest import IngestError, IngestSummary, count_records, ingest

FEEDBACK_MAP = {"table": "feedback", "columns": {
    "call_id": "id", "ts": {"field": "ts", "unit": "s"}, "kind": "kind", "value": "value"}}
NOW_S = int(dt.datetime.now(dt.timezone.utc).timestamp()) - 86400  # yesterday: inside every plausibility bound


@pytest.fixture
def db():
    d = wb.connect(":memory:")
    yield d
    d.close()


def balanced(s: IngestSummary, records: int) -> None:
    """The invariant against an independent count of the file's records."""
    assert s.read == records == s.inserted + s.duplicates + s.quarantined, s.as_dict()
    assert sum(s.reasons.values()) == s.quarantined


def q(db, sql, params=None):
    return db.duckdb.execute(sql, params or []).fetchall()


# ------------------------------------------------------------------------------- 1. CSV with an unterminated quote


def _unterminated_csv(path: Path, trailing: int) -> None:
    with open(path, "w") as fh:
        fh.write("id,ts,kind,value\n")
        fh.write(f"u1,{NOW_S},thumbs,1\n")
        fh.write(f'u2,{NOW_S},thumbs,"unterminated,1\n')
        for i in range(trailing):
            fh.write(f"v{i},{NOW_S - i},thumbs,1\n")


def test_unterminated_quote_fails_loudly_naming_file_and_line(tmp_path, capsys):
    p = tmp_path / "q.csv"
    _unterminated_csv(p, 100_000)
    (tmp_path / "q.toml").write_text('table = "feedback"\n[columns]\ncall_id = "id"\n'
                                     'ts = { field = "ts", unit = "s" }\nkind = "kind"\nvalue = "value"\n')
    dbp = tmp_path / "w.duckdb"
    rc = cli_main(["ingest", str(p), "--mapping", str(tmp_path / "q.toml"), "--db", str(dbp), "--json"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{p}: line 3: a quoted field opens here and is never closed" in err
    with wb.connect(dbp) as d:  # nothing of the file was written
        assert q(d, "select count(*) from feedback")[0][0] == 0
        assert q(d, "select count(*) from quarantine")[0][0] == 0


def test_csv_records_are_counted_independently_of_duckdb(tmp_path, db):
    # quoted line breaks, blank lines, a bad quote after a closed one, a ragged row: every record accounted for
    p = tmp_path / "x.csv"
    p.write_text(f'id,ts,kind,value\na,{NOW_S},thumbs,"1"\n\nb,{NOW_S},thumbs,"x\ny"\n'
                 f'c,{NOW_S},"thumbs"z,1\nd,{NOW_S}\ne,{NOW_S},thumbs,1\n')
    assert count_records(p, "csv") == 5
    s = ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    balanced(s, 5)
    assert s.inserted == 2 and s.quarantined == 3


def test_a_reader_that_accounts_for_fewer_records_fails_the_file(tmp_path, db, monkeypatch):
    import workbench.io.ingest as ing

    p = tmp_path / "x.csv"
    p.write_text(f"id,ts,kind,value\na,{NOW_S},thumbs,1\nb,{NOW_S},thumbs,1\n")
    real = ing._count_records  # (what the load counts with; count_records is its public face)
    monkeypatch.setattr(ing, "_count_records", lambda *a, **k: real(*a, **k) + 1)  # a record DuckDB never returns
    with pytest.raises(IngestError, match="holds 3 records but the csv reader accounted for 2; nothing"):
        ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    assert q(db, "select count(*) from feedback")[0][0] == 0


# ------------------------------------------------------------------------- 4. a mistyped JSONL field is an error


def test_jsonl_field_no_record_has_is_an_error_naming_the_mapping_key(tmp_path, db, capsys):
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"id": f"c{i}", "time": NOW_S, "feature": "chat", "dur": 1.5}) + "\n"
                         for i in range(3)) + "{not json\n")
    (tmp_path / "m.toml").write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\n'
                                     'feature = "featrue"\nlatency_ms = { field = "dur", unit = "s" }\n'
                                     'status = { value = "ok" }\n')
    rc = cli_main(["ingest", str(p), "--mapping", str(tmp_path / "m.toml"), "--db", str(tmp_path / "w.duckdb")])
    err = capsys.readouterr().err
    assert rc == 2 and "m.toml [columns] feature: no record of the file has the field 'featrue'" in err
    # the same with a default: the default would hide the typo
    m = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "time", "unit": "s"},
                                       "feature": {"field": "app", "default": "x"}, "status": {"value": "ok"}}}
    with pytest.raises(IngestError, match=r"\[columns\] feature: no record of the file has the field 'app'"):
        ingest(db, p, mapping=m, progress=False)
    assert q(db, "select count(*) from calls")[0][0] == 0
    # a field present as null in some record is present; optional = true allows a field absent from the file
    m["columns"]["feature"] = {"field": "app", "default": "x", "optional": True}
    m["columns"]["error_type"] = "err"
    p.write_text(p.read_text() + json.dumps({"id": "c9", "time": NOW_S, "err": None}) + "\n")
    s = ingest(db, p, mapping=m, progress=False)
    balanced(s, 5)
    assert (s.inserted, s.quarantined) == (4, 1)
    assert q(db, "select distinct feature from calls") == [("x",)]


# -------------------------------------------------------------- 7. no mapping text reaches SQL unescaped

HOSTILE = [
    "%Y' || (SELECT content FROM read_text('{secret}')) || '",
    "' || (SELECT content FROM read_text('{secret}')) || '",
    "x'); CREATE TABLE pwned AS SELECT content FROM read_text('{secret}'); --",
    '"; DROP TABLE calls; --',
    "a\\' || (SELECT 1) || '\\",
    "é漢😀' ; \u202e'--",
    "a\u0000b",
]
# every place of a mapping that takes text: (description, mapping builder)
_BASE = {"call_id": "id", "ts": {"field": "time", "unit": "s"}, "feature": "app", "status": {"value": "ok"}}


def _with(col, spec):
    return {"table": "calls", "columns": {**_BASE, col: spec}}


MAPPING_KEYS = {
    "ts.format": lambda h: _with("ts", {"field": "time", "format": h}),
    "feature.field": lambda h: _with("feature", {"field": h}),
    "feature.value": lambda h: _with("feature", {"value": h}),
    "feature.default": lambda h: _with("feature", {"field": "app", "default": h}),
    "status.value": lambda h: _with("status", {"value": h}),
    "attributes.value": lambda h: _with("attributes", {"value": {"k": h}}),
    "call_id.hash": lambda h: _with("call_id", {"hash": [h, "app"]}),
    "ts.unit": lambda h: _with("ts", {"field": "time", "unit": h}),
    "table": lambda h: {"table": h, "columns": _BASE},
    "format": lambda h: {"table": "calls", "format": h, "columns": _BASE},
    "columns key": lambda h: {"table": "calls", "columns": {**_BASE, h: "app"}},
    "csv.delimiter": lambda h: {"table": "calls", "format": "csv", "csv": {"delimiter": h}, "columns": _BASE},
    "csv.quote": lambda h: {"table": "calls", "format": "csv", "csv": {"quote": h}, "columns": _BASE},
    "csv.escape": lambda h: {"table": "calls", "format": "csv", "csv": {"escape": h}, "columns": _BASE},
}


@pytest.mark.parametrize("key", sorted(MAPPING_KEYS))
def test_hostile_text_in_every_mapping_key_never_reaches_sql(tmp_path, key):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-4711")
    rows = [{"id": "a", "time": "yesterday", "app": "x"}, {"id": "b", "time": NOW_S, "app": "y"}]
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "x.csv").write_text(f"id,time,app\na,yesterday,x\nb,{NOW_S},y\n")
    d = wb.connect(tmp_path / "w.duckdb")
    try:
        for h in HOSTILE:
            h = h.format(secret=secret)
            m = MAPPING_KEYS[key](h)
            src = tmp_path / ("x.csv" if m.get("format") == "csv" else "x.jsonl")
            try:
                ingest(d, src, mapping=m, format="auto" if "format" in m else "jsonl", progress=False)
            except IngestError:
                pass  # refused with a message: fine; anything else propagates and fails the test
            tables = {r[0] for r in q(d, "select table_name from duckdb_tables()")}
            assert "pwned" not in tables and "calls" in tables
            for t in ("calls", "quarantine", "ingest_runs"):
                dump = q(d, f"select cast(to_json(x) as varchar) from {t} x")
                assert not any("TOPSECRET" in r[0] for r in dump), (key, h, t)
    finally:
        d.close()


# --------------------------------------------------- 2. a future-dated row neither silences alerts nor crashes


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def test_future_dated_rows_are_quarantined_and_alerts_use_the_clock(tmp_path, capsys):
    dbp = tmp_path / "w.duckdb"
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[budget.chat]\nmonthly_usd = 100\n"
                   "[slo.chat]\nlatency_ms = 1000\nlatency_target = 0.9\navailability_target = 0.99\n")
    now = _now()
    recent = [now - dt.timedelta(minutes=1 + i) for i in range(20)]
    rows = [{"id": f"c{i}", "t": t.isoformat() + "Z", "cost": 10.0, "lat": 200, "st": "error" if i % 2 else "ok"}
            for i, t in enumerate(recent)]
    future = now + dt.timedelta(days=400)
    rows += [{"id": "f1", "t": future.isoformat() + "Z", "cost": 0.01, "lat": 200, "st": "ok"},
             {"id": "f2", "t": "9999-12-31T00:00:00Z", "cost": 0.01, "lat": 200, "st": "ok"},
             {"id": "s1", "t": (now + dt.timedelta(minutes=2)).isoformat() + "Z", "cost": 0.0, "lat": 1, "st": "ok"}]
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = {"table": "calls", "columns": {"call_id": "id", "ts": "t", "cost_usd": "cost", "latency_ms": "lat",
                                       "status": "st", "feature": {"value": "chat"}, "model": {"value": "m"}}}
    s = ingest(dbp, p, mapping=m, progress=False)
    balanced(s, 23)
    assert (s.inserted, s.quarantined) == (21, 2)  # 2 minutes ahead is within the allowed skew
    assert s.reasons == {"in the future: ts": 2}
    with wb.connect(dbp) as d:
        reasons = [r[0] for r in q(d, "select reason from quarantine order by line_no")]
        assert reasons[0].startswith(f"in the future: ts {future}") and "allowed skew 5 min" in reasons[0]
        # a future row written by another tool does not move "now" either
        d.duckdb.execute("insert into calls (call_id, ts, feature, status, model, cost_usd, latency_ms) "
                         "values ('x', ?, 'chat', 'ok', 'm', 0.01, 100)", [future])
    capsys.readouterr()
    # 200 USD spent this month on a 100 USD budget: critical, exit 1
    assert cli_main(["budget", "--db", str(dbp), "--config", str(cfg), "--format", "json"]) == 1
    (b,) = json.loads(capsys.readouterr().out)
    assert b["alert"] == "critical" and b["spend_usd"] == pytest.approx(200.0)
    assert cli_main(["slo", "--db", str(dbp), "--config", str(cfg), "--format", "json"]) == 1
    slo_rows = json.loads(capsys.readouterr().out)
    assert [r.get("n") for r in slo_rows if r["sli"] == "availability"] == [20], slo_rows  # s1 is after now
    # an --at after the clock is refused: a time that has not come yet would read the lone future row as "ok"
    at = future.isoformat()
    assert cli_main(["budget", "--db", str(dbp), "--config", str(cfg), "--format", "json", "--at", at]) == 2
    assert "is after the clock" in capsys.readouterr().err


def test_a_row_dated_9999_does_not_crash_metrics_or_report(small_demo, tmp_path, capsys):
    import shutil

    dbp = tmp_path / "demo.duckdb"
    shutil.copy(small_demo, dbp)
    p = tmp_path / "f.jsonl"
    p.write_text(json.dumps({"id": "z", "t": "9999-12-31T23:59:59Z"}) + "\n")
    m = {"table": "calls", "columns": {"call_id": "id", "ts": "t", "feature": {"value": "chat"},
                                       "status": {"value": "ok"}}}
    s = ingest(dbp, p, mapping=m, progress=False)
    assert s.reasons == {"in the future: ts": 1}
    with wb.connect(dbp) as d:  # written around ingest, as another tool could
        d.duckdb.execute("insert into calls (call_id, ts, feature, status, model, latency_ms, cost_usd) "
                         "values ('z', '9999-12-31 23:59:59', 'chat', 'ok', 'gpt-4o-mini', 100, 0.01)")
    capsys.readouterr()
    assert cli_main(["metrics", "latency_p95_ms", "--db", str(dbp), "--period", "month", "--format", "json"]) == 0
    months = {r["period_start"][:7] for r in json.loads(capsys.readouterr().out)}
    assert "9999-12" in months
    assert cli_main(["report", "latency", "--db", str(dbp), "--out", str(tmp_path / "R")]) == 0


# ------------------------------------------------------------- 14. implausible values, whole raw, duplicate keys


def _span(span_id: str, start: str, end: str, attrs: dict | None = None) -> dict:
    a = [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
         for k, v in (attrs or {}).items()]
    return {"traceId": "1" * 32, "spanId": span_id, "name": "chat", "startTimeUnixNano": start,
            "endTimeUnixNano": end, "attributes": a}


def _otlp(spans: list[dict]) -> str:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                          "scopeSpans": [{"scope": {"name": "s"}, "spans": spans}]}]})


def test_a_span_not_in_utf8_is_quarantined_alone_not_with_its_batch(tmp_path, db):
    # An OTLP JSON line whose batch held one span with bytes that are not UTF-8 was quarantined whole (DuckDB rejects
    # the line): its valid spans were lost with it, and counted as one record. Only that span is quarantined, naming
    # its line and span id; bytes outside any span (a resource attribute) still quarantine the line whole.
    t0 = NOW_S * 10**9
    spans = [_span(i, str(t0), str(t0 + 10**9), {"x": "BAD!" if i == "b2" else "ok"}) for i in ("b1", "b2", "b3")]
    in_resource = json.loads(_otlp([_span("d1", str(t0), str(t0 + 10**9))]))
    in_resource["resourceSpans"][0]["resource"]["attributes"] = [{"key": "r", "value": {"stringValue": "BAD!"}}]
    text = "\n".join([_otlp(spans), json.dumps(in_resource), _otlp([_span("c1", str(t0), str(t0 + 10**9))])]) + "\n"
    p = tmp_path / "s.jsonl"
    p.write_bytes(text.encode().replace(b"BAD!", b"B\xff\xfeD"))
    s = ingest(db, p, progress=False)
    balanced(s, 5)  # three spans of line 1, line 2 whole, one span of line 3
    assert (s.inserted, s.reasons) == (3, {"invalid encoding (not UTF-8)": 2})
    assert q(db, "select call_id, attributes->>'x' from calls order by 1") == [("b1", "ok"), ("b3", "ok"), ("c1", None)]
    got = q(db, "select line_no, reason, raw like '%\"b2\"%B\ufffd\ufffdD%' from quarantine order by 1")
    assert got[0] == (1, "invalid encoding (not UTF-8) in span b2", True)  # its text, the bad bytes replaced
    assert got[1][0] == 2 and got[1][1].startswith("invalid encoding (not UTF-8): ")


@pytest.mark.parametrize("pad", [0, 1 << 21], ids=["small", "read-in-chunks"])
def test_a_span_not_in_utf8_in_a_pretty_printed_document_or_array_is_quarantined_alone(tmp_path, db, pad):
    # A pretty-printed OTLP document or a JSON array was decoded with the bytes that are not UTF-8 replaced: the span
    # loaded with U+FFFD in its text and nothing was quarantined. As in JSON lines, that span is quarantined alone,
    # where its document starts (line) or at its place in the array; bytes outside any span quarantine the export.
    t0 = NOW_S * 10**9
    spans = [_span(i, str(t0), str(t0 + 10**9), {"x": "BAD!" if i == "b2" else "ok"}) for i in ("b1", "b2", "b3")]
    spans[0]["attributes"].append({"key": "pad", "value": {"stringValue": "p" * pad}})  # past the first read
    in_resource = json.loads(_otlp([_span("d1", str(t0), str(t0 + 10**9))]))
    in_resource["resourceSpans"][0]["resource"]["attributes"] = [{"key": "r", "value": {"stringValue": "BAD!"}}]
    doc = json.dumps(json.loads(_otlp(spans)), indent=2)  # 69 lines
    docs = tmp_path / "docs.json"
    docs.write_bytes((doc + "\n" + json.dumps(in_resource, indent=2)).encode().replace(b"BAD!", b"B\xff\xfeD"))
    arr = tmp_path / "arr.json"
    arr.write_bytes(("[" + _otlp([_span("c1", str(t0), str(t0 + 10**9))]) + ",\n"
                     + json.dumps(in_resource) + ",\n" + _otlp(spans) + "]").encode().replace(b"BAD!", b"B\xff\xfeD"))
    s = ingest(db, docs, progress=False)
    balanced(s, 4)  # three spans of the first document, the second document whole
    assert (s.inserted, s.reasons) == (2, {"invalid encoding (not UTF-8)": 2})
    assert q(db, "select call_id, attributes->>'x' from calls order by 1") == [("b1", "ok"), ("b3", "ok")]
    got = q(db, "select line_no, reason, raw like '%\"b2\"%B\ufffd\ufffdD%', raw like '%B\ufffd\ufffdD%\"d1\"%' "
                "from quarantine order by 1")
    assert got == [(1, "invalid encoding (not UTF-8)", True, False), (70, "invalid encoding (not UTF-8)", False, True)]
    s = ingest(db, arr, progress=False)
    balanced(s, 5)  # one span of element 1, element 2 whole, three spans of element 3 (two already loaded)
    assert (s.inserted, s.duplicates, s.reasons) == (1, 2, {"invalid encoding (not UTF-8)": 2})
    got = q(db, "select line_no, raw like '%\"b2\"%B\ufffd\ufffdD%' from quarantine where source_path like '%arr%' "
                "order by 1")
    assert got == [(2, False), (3, True)]


def test_otlp_start_minus_one_and_implausible_values_are_quarantined(tmp_path, db):
    t0 = (NOW_S - 20 * 86400) * 10**9
    spans = [_span("a1", "-1", str(t0)),                                   # a 56-year latency
             _span("a2", str(t0), str(t0 + 10**9)),                        # fine
             _span("a3", str(t0), str(t0 + 10**9), {"gen_ai.usage.input_tokens": 10**18}),
             _span("a4", str(t0), str(t0 + 8 * 86400 * 10**9)),            # 8 days
             _span("a5", "0", "0"),                                         # 0 is "not set": no start
             _span("a6", str(t0 + 400 * 86400 * 10**9), str(t0 + 401 * 86400 * 10**9))]
    p = tmp_path / "s.jsonl"
    p.write_text(_otlp(spans) + "\n")
    s = ingest(db, p, progress=False)
    balanced(s, 6)
    assert s.inserted == 1
    assert s.reasons == {"implausible timestamp: ts": 1, "missing required field: ts": 1,
                         "implausible value: input_tokens": 1, "implausible value: latency_ms": 1, "in the future: ts": 1}
    got = dict(q(db, "select json_extract_string(raw, '$.spanId'), reason from quarantine"))
    assert got["a1"].startswith("implausible timestamp in ts: 1970-01-01 00:00:00 is before 2000-01-01")
    assert got["a3"] == ("implausible value in input_tokens: 1000000000000000000 "
                         "(more than 1,000,000,000 tokens in one call)")
    assert got["a4"].startswith("implausible value in latency_ms: 691200000.0 (more than 604,800,000 ms (7 days))")


@pytest.mark.parametrize("text", ["0000-01-01", "0044-03-15 BC", "10000-01-01", "infinity", "-infinity", "epoch",
                                  "now", "1970-01-01T00:00:00Z", "1999-12-31 23:59:59"])
def test_timestamps_outside_the_plausible_range_are_quarantined_with_a_reason(db, tmp_path, text):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"id": "a", "t": text}) + "\n")
    m = {"table": "calls", "columns": {"call_id": "id", "ts": "t", "feature": {"value": "f"},
                                       "status": {"value": "ok"}}}
    s = ingest(db, p, mapping=m, progress=False)
    balanced(s, 1)
    assert s.quarantined == 1
    (reason,) = q(db, "select reason from quarantine")[0]
    assert reason.startswith(("unparseable timestamp in ts", "implausible timestamp in ts")), reason


def test_quarantine_keeps_rejected_records_whole(tmp_path, db):
    big = "é" * 30_000  # 60 kB of UTF-8 text
    p = tmp_path / "w.csv"
    p.write_text(f'id,ts,kind,value\na,{NOW_S},thumbs,1\nb,{NOW_S},"{big}\nline two",1,extra\n')
    s = ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    balanced(s, 2)
    (raw,) = q(db, "select raw from quarantine")[0]
    assert raw == f'b,{NOW_S},"{big}\nline two",1,extra'
    j = tmp_path / "w.jsonl"
    line = '{"id": "a", "kind": "' + big + '"'  # not JSON (no closing brace)
    j.write_text(line + "\n")
    s = ingest(db, j, mapping={**FEEDBACK_MAP, "columns": {**FEEDBACK_MAP["columns"], "ts": "ts"}}, progress=False)
    assert q(db, "select raw from quarantine where run_id = ?", [s.files[0]["run_id"]]) == [(line,)]


def test_duplicate_json_keys_are_quarantined(tmp_path, db):
    p = tmp_path / "d.jsonl"
    p.write_text(f'{{"id": "a", "ts": {NOW_S}, "kind": "thumbs", "value": 1, "value": 0}}\n'
                 f'{{"id": "b", "ts": {NOW_S}, "kind": "thumbs", "value": 1, "extra": {{"x": 1, "x": 2}}}}\n'
                 f'{{"id": "c", "ts": {NOW_S}, "kind": "thumbs", "value": 1}}\n')
    s = ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    balanced(s, 3)
    assert s.reasons == {"duplicate JSON key": 1}  # an unmapped nested object is not looked at
    assert q(db, "select line_no, reason from quarantine") == [
        (1, 'duplicate key "value" in the JSON object (readers disagree on which value counts)')]


# ------------------------------------------- 14. spill files of a process killed with SIGKILL are removed


def _spilling_ingest(tmp_path: Path, dbp: Path, limit: str = "24MB"):
    import os
    import subprocess
    import sys

    p = tmp_path / "many.jsonl"
    if not p.exists():
        with open(p, "w") as fh:
            # one quarantined line sends the file through the staging table, which spills (a clean file goes
            # straight into the table, streamed, and needs no spill)
            fh.write(json.dumps({"id": "bad", "t": 0, "pad": "x"}) + "\n")
            for i in range(400_000):
                fh.write(json.dumps({"id": f"c{i:07d}", "t": NOW_S - i, "pad": f"{i:x}" * 12}) + "\n")
    (tmp_path / "m.toml").write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "t", unit = "s" }\n'
                                     'feature = "pad"\nstatus = { value = "ok" }\n')
    env = {**os.environ, "WORKBENCH_INGEST_MEMORY_LIMIT": limit}
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", "ingest", str(p), "--mapping",
                             str(tmp_path / "m.toml"), "--db", str(dbp), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_spill_files_of_a_killed_ingest_are_removed_by_the_next(tmp_path):
    import signal
    import time

    dbp = tmp_path / "w.duckdb"
    wb.connect(dbp).close()
    root = Path(f"{dbp}.ingest-spill")
    proc = _spilling_ingest(tmp_path, dbp)
    deadline, spilled = time.monotonic() + 240, []
    while time.monotonic() < deadline and proc.poll() is None:
        spilled = [f for d in root.glob(f"{proc.pid}-*") for f in d.iterdir()] if root.exists() else []
        if sum(f.stat().st_size for f in spilled if f.exists()) > 1_000_000:
            break
        time.sleep(0.05)
    assert proc.poll() is None and spilled, "the ingest did not spill (or finished) before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = list(root.glob(f"{proc.pid}-*"))
    assert left and any(d.iterdir() for d in left)  # what SIGKILL leaves: this process's folder, with files
    # the next ingest removes it before it starts, and leaves no folder of its own
    small = tmp_path / "one.jsonl"
    small.write_text(json.dumps({"id": "x", "t": NOW_S, "pad": "p"}) + "\n")
    s = ingest(dbp, small, mapping=tmp_path / "m.toml", progress=False)
    assert s.inserted == 1
    assert not root.exists() or not any(root.iterdir())


def test_a_completed_spilling_ingest_leaves_no_spill_files(tmp_path):
    import time

    dbp = tmp_path / "w.duckdb"
    root = Path(f"{dbp}.ingest-spill")
    proc = _spilling_ingest(tmp_path, dbp, "96MB")
    spilled = 0
    while proc.poll() is None:
        files = [f for d in root.glob(f"{proc.pid}-*") for f in d.iterdir()] if root.exists() else []
        spilled = max(spilled, sum(f.stat().st_size for f in files if f.exists()))
        time.sleep(0.05)
    out, err = proc.communicate(timeout=600)
    assert spilled > 0  # it did spill, in its own folder
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["inserted"] == 400_000
    assert not Path(f"{dbp}.ingest-spill").exists() and not Path(f"{dbp}.tmp").exists()


# -------------------------------------------------------------------------- 11. a 50 MB line loads


def test_a_50_mb_line_loads_under_the_ingest_memory_limit(tmp_path, db):
    p = tmp_path / "big.jsonl"
    p.write_text(json.dumps({"id": "a", "t": NOW_S, "a": {"blob": "x" * 50_000_000}}) + "\n"
                 + json.dumps({"id": "b", "t": NOW_S}) + "\n")
    m = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "t", "unit": "s"},
                                       "attributes": {"field": "a", "optional": True},
                                       "feature": {"value": "f"}, "status": {"value": "ok"}}}
    s = ingest(db, p, mapping=m, progress=False)
    balanced(s, 2)
    assert s.inserted == 2
    assert q(db, "select length(json_extract_string(attributes, '$.blob')) from calls where call_id = 'a'") == [
        (50_000_000,)]
    # the setting is put back after the load
    assert q(db, "select current_setting('memory_limit')") == q(wb.connect(":memory:"),
                                                                "select current_setting('memory_limit')")


def test_readme_ingest_guarantees_name_existing_tests():
    import re

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    section = re.search(r"## Guarantees\n.*?### Ingest\n(.*?)(?:\n### |\n## )", readme, re.S).group(1)
    names = re.findall(r"`(test_\w+)`", section)
    assert len(names) >= 12
    tests = "".join(p.read_text() for p in (root / "tests").glob("test_*.py"))
    for name in names:
        assert f"def {name}(" in tests, name


# ------------------------------------------------- hostile file names: the path goes into SQL as a literal


def test_a_hostile_file_name_is_kept_exactly_and_cannot_reach_the_sql(tmp_path):
    """ingest writes its run and quarantine rows with SQL literals: a path with quotes, a backslash and SQL in it must
    come back byte for byte (mapped CSV straight and staged, a Langfuse file through its module); a name that is not
    UTF-8 is an IngestError with nothing written."""
    import os
    import shutil

    d = tmp_path / "we'ird \"dir\\; DROP TABLE calls; --é"
    d.mkdir()
    csv_map = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "ts", "unit": "s"},
                                             "latency_ms": "ms", "status": {"value": "ok"}}}
    clean, dirty = d / "a'1.csv", d / "b'2.csv"
    clean.write_text(f"id,ts,ms\nc1,{NOW_S},5\n")
    dirty.write_text(f"id,ts,ms\nc2,{NOW_S},5\nc3,{NOW_S},-1\n")
    lf = d / "lf.jsonl"
    shutil.copy(Path(__file__).parent / "data" / "formats" / "langfuse_traces.jsonl", lf)
    db = wb.connect(":memory:")
    for p, mapping in ((clean, csv_map), (dirty, csv_map), (lf, None)):
        ingest(db, p, mapping=mapping, progress=False)
    runs = q(db, "select source_path from ingest_runs order by started_at")
    assert [r[0] for r in runs] == [str(clean), str(dirty), str(lf)]
    assert sorted({r[0] for r in q(db, "select source_path from quarantine")}) == sorted([str(dirty), str(lf)])
    assert q(db, "select count(*) from calls where call_id in ('c1', 'c2')") == [(2,)]
    bad = tmp_path / os.fsdecode(b"bad\xff")
    bad.mkdir()
    shutil.copy(lf, bad / "lf.jsonl")
    with pytest.raises(IngestError):
        ingest(db, bad / "lf.jsonl", progress=False)
    assert q(db, "select count(*) from ingest_runs") == [(3,)]


@pytest.mark.parametrize("name, twin", [("a[1]", "a1"), ("b*", "bb"), ("c?", "cc")])
@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "jsonl-lines"])
def test_a_file_name_with_glob_characters_loads_that_file_and_no_other(tmp_path, fmt, name, twin):
    """DuckDB's readers take a path as a pattern: before, ingesting "a[1].csv" read its neighbour "a1.csv" (a Parquet
    file was then refused for a count that did not match, a CSV or JSONL file of the same count loaded silently), and
    "b*.csv" every file from "b" to ".csv". The file named is the file read."""
    import duckdb

    mapping = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "ts", "unit": "s"},
                                             "latency_ms": "ms", "status": {"value": "ok"}}}
    ext = "jsonl" if fmt.startswith("jsonl") else fmt

    def write(path: Path, ids: list[str]) -> None:
        if fmt == "csv":
            path.write_text("id,ts,ms\n" + "".join(f"{i},{NOW_S},5\n" for i in ids))
        elif fmt.startswith("jsonl"):
            # "jsonl-lines": one line is not JSON, so the file goes through the line reader
            bad = "not json\n" if fmt == "jsonl-lines" else ""
            path.write_text(bad + "".join(json.dumps({"id": i, "ts": NOW_S, "ms": 5}) + "\n" for i in ids))
        else:
            duckdb.sql(f"COPY (SELECT unnest({ids!r}) AS id, {NOW_S} AS ts, 5 AS ms) TO '{path}' (FORMAT parquet)")

    target, other = tmp_path / f"{name}.{ext}", tmp_path / f"{twin}.{ext}"
    write(other, ["other-1", "other-2"])  # the same number of records: a count cannot tell them apart
    write(target, ["mine-1", "mine-2"])
    db = wb.connect(":memory:")
    s = ingest(db, target, mapping=mapping, progress=False)
    assert sorted(r[0] for r in q(db, "select call_id from calls")) == ["mine-1", "mine-2"]
    assert s.inserted == 2 and s.quarantined == (1 if fmt == "jsonl-lines" else 0)
    db.close()


def test_labels_from_a_file_name_with_glob_characters_are_that_file(tmp_path):
    from workbench.eval.labels import import_labels

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into answers (call_id, ts, question, contexts, answer) values "
                      "('a', '2026-01-01', 'q', ['c'], 'x'), ('b', '2026-01-01', 'q', ['c'], 'y')")
    for ext, write in (("csv", lambda p, c: p.write_text(f"call_id,label\n{c},1\n")),
                       ("jsonl", lambda p, c: p.write_text(json.dumps({"call_id": c, "label": 1}) + "\n"))):
        write(tmp_path / f"l1.{ext}", "b")
        write(tmp_path / f"l[1].{ext}", "a")
        import_labels(db, tmp_path / f"l[1].{ext}")
        assert [r[0] for r in q(db, "select distinct call_id from evals")] == ["a"], ext
    db.close()


def test_labels_from_a_folder_named_tilde_are_that_folder_not_home(tmp_path, monkeypatch):
    from workbench.eval.labels import import_labels

    home, work = tmp_path / "home", tmp_path / "work"
    (work / "~").mkdir(parents=True)
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into answers (call_id, ts, question, contexts, answer) values "
                      "('a', '2026-01-01', 'q', ['c'], 'x'), ('b', '2026-01-01', 'q', ['c'], 'y')")
    for ext in ("csv", "parquet"):
        for folder, cid in ((home, "b"), (work / "~", "a")):
            import polars as pl

            frame = pl.DataFrame({"call_id": [cid], "label": [1]})
            frame.write_csv(folder / "l.csv") if ext == "csv" else frame.write_parquet(folder / "l.parquet")
        import_labels(db, f"~/l.{ext}")
        assert [r[0] for r in q(db, "select distinct call_id from evals")] == ["a"], ext
    db.close()


def test_a_parquet_file_is_counted_from_its_footer_without_pyarrow(tmp_path):
    # The count of a Parquet file's rows came from pyarrow, whose import (with NumPy) took 0.09-0.11 s of every
    # process loading a Parquet file. In a fresh interpreter: the count is right across row groups, a file that is not
    # Parquet counts as None, and the whole load imports neither.
    import subprocess
    import sys

    code = f"""
import sys, duckdb
import workbench as wb
from workbench.io.ingest import count_records, ingest
p = {str(tmp_path / "r[1].parquet")!r}
duckdb.sql(f"COPY (SELECT 'c' || range AS id, {NOW_S} AS ts, 5 AS ms FROM range(25000)) TO '{{p}}' "
           "(FORMAT parquet, ROW_GROUP_SIZE 10000)")
other = {str(tmp_path / "x.parquet")!r}
open(other, "w").write("id,ts\\n")
db = wb.connect(":memory:")
s = ingest(db, p, mapping={{"table": "calls", "columns": {{"call_id": "id", "ts": {{"field": "ts", "unit": "s"}},
                                                          "latency_ms": "ms", "status": {{"value": "ok"}}}}}},
           progress=False)
print(count_records(p, "parquet"), count_records(other, "parquet"), s.read, s.inserted,
      "pyarrow" in sys.modules, "numpy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["25000", "None", "25000", "25000", "False", "False"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_rows_repeating_keys_the_table_holds_are_duplicates_and_the_first_new_row_of_a_key_counts(tmp_path, fmt):
    # A load surveys the file first; only the keys the table lacks must be distinct for the one-pass insert (the
    # others are duplicates however often they repeat). Each case is checked against what the line-ordered load
    # keeps: the first row of a new key, every other row a duplicate.
    import duckdb

    mapping = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "ts", "unit": "s"},
                                             "latency_ms": "ms", "status": {"value": "ok"}}}

    def write(path: Path, rows: list[tuple[str, int]]) -> Path:
        if fmt == "csv":
            path.write_text("id,ts,ms\n" + "".join(f"{i},{NOW_S},{ms}\n" for i, ms in rows))
        else:
            values = ", ".join(f"('{i}', {NOW_S}, {ms})" for i, ms in rows)
            duckdb.sql(f"COPY (SELECT * FROM (VALUES {values}) v(id, ts, ms)) TO '{path}' (FORMAT parquet)")
        return path

    db = wb.connect(":memory:")
    ingest(db, write(tmp_path / f"first.{fmt}", [("a", 1), ("b", 2)]), mapping=mapping, progress=False)
    # a and b repeat (already held), c and d are new and distinct
    s = ingest(db, write(tmp_path / f"again.{fmt}", [("a", 9), ("a", 9), ("b", 9), ("c", 3), ("d", 4), ("b", 9)]),
               mapping=mapping, progress=False)
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (6, 2, 4, 0)
    # e repeats among the new rows: its first row counts
    s = ingest(db, write(tmp_path / f"third.{fmt}", [("c", 9), ("e", 5), ("e", 6), ("a", 9)]),
               mapping=mapping, progress=False)
    assert (s.read, s.inserted, s.duplicates, s.quarantined) == (4, 1, 3, 0)
    assert q(db, "select call_id, latency_ms from calls order by call_id") == [
        ("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0)]
    # the same file again: nothing new
    s = ingest(db, tmp_path / f"again.{fmt}", mapping=mapping, progress=False)
    assert (s.read, s.inserted, s.duplicates) == (6, 0, 6)
    db.close()


def test_a_relative_path_through_a_folder_named_tilde_reads_that_folder_not_home(tmp_path, monkeypatch):
    # DuckDB reads "~/x.csv" in the home directory; the workbench found the file in ./~ and counted its records
    # there: a file of the same count at home loaded instead.
    mapping = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "ts", "unit": "s"},
                                             "latency_ms": "ms", "status": {"value": "ok"}}}
    home, work = tmp_path / "home", tmp_path / "work"
    (work / "~").mkdir(parents=True)
    home.mkdir()
    (home / "x.csv").write_text(f"id,ts,ms\nhome-1,{NOW_S},5\n")
    (work / "~" / "x.csv").write_text(f"id,ts,ms\nmine-1,{NOW_S},5\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    db = wb.connect(":memory:")
    s = ingest(db, "~/x.csv", mapping=mapping, progress=False)
    assert s.inserted == 1 and q(db, "select call_id from calls") == [("mine-1",)]
    db.close()


# ------------------------------------------------------------- text in UTF-16 or UTF-32 (PowerShell, Excel "Unicode")

_FEEDBACK_CSV = "id,ts,kind,value\na,{t},thumbs,1\nb,{t},thumbs,0\n"


@pytest.mark.parametrize("encoding, named", [
    ("utf-16", "UTF-16"),            # a byte-order mark, as PowerShell's Out-File and Excel's "Unicode text" write
    ("utf-16-be", "UTF-16"),         # big-endian, no mark
    ("utf-16-le", "UTF-16"),         # little-endian, no mark
    ("utf-32", "UTF-32"),
])
@pytest.mark.parametrize("kind", ["otlp", "csv", "otlp.gz"])
def test_a_file_in_utf16_or_utf32_is_an_error_naming_the_encoding_not_a_wrong_format(tmp_path, db, encoding, named,
                                                                                     kind):
    import gzip

    if kind.startswith("otlp"):
        text = _otlp([_span("a1", str(NOW_S * 10**9), str((NOW_S + 1) * 10**9))]) + "\n"
        p, mapping = tmp_path / f"spans.{'jsonl.gz' if kind.endswith('gz') else 'jsonl'}", None
    else:
        text = _FEEDBACK_CSV.format(t=NOW_S)
        p, mapping = tmp_path / "feedback.csv", FEEDBACK_MAP
    data = text.encode(encoding)
    p.write_bytes(gzip.compress(data) if kind.endswith("gz") else data)
    with pytest.raises(IngestError, match=rf"{p.name}: .*{named}.*UTF-8") as err:
        ingest(db, p, mapping=mapping, progress=False)
    assert "iconv" in str(err.value)
    assert q(db, "select count(*) from calls")[0][0] == q(db, "select count(*) from feedback")[0][0] == 0
    # forcing the format does not get past it either
    with pytest.raises(IngestError, match=named):
        ingest(db, p, format="otel" if mapping is None else "csv", mapping=mapping, progress=False)


def test_the_same_file_in_utf8_with_or_without_a_byte_order_mark_loads(tmp_path, db):
    text = _FEEDBACK_CSV.format(t=NOW_S)
    for name, data in (("plain.csv", text.encode()), ("bom.csv", text.encode("utf-8-sig"))):
        (tmp_path / name).write_bytes(data)
        s = ingest(db, tmp_path / name, mapping=FEEDBACK_MAP, progress=False)
        assert (s.read, s.quarantined) == (2, 0), s.as_dict()
    p = tmp_path / "spans.jsonl"
    # text that merely holds NUL characters inside strings is UTF-8, not UTF-16
    p.write_text(_otlp([_span("n1", str(NOW_S * 10**9), str((NOW_S + 1) * 10**9), {"x": "a\u0000b"})]) + "\n")
    assert ingest(db, p, progress=False).inserted == 1


def test_a_nul_byte_in_a_csv_value_quarantines_its_record_naming_line_and_field(tmp_path, db):
    # A NUL byte inside a CSV value was loaded into the table ("a\x00b" as a call id), where a JSON line holding
    # one is quarantined as invalid JSON. A NUL in a column the mapping does not read loses nothing.
    p = tmp_path / "f.csv"
    p.write_bytes(f"id,ts,kind,value,note\na\x00b,{NOW_S},thumbs,1,x\nc,{NOW_S},thumbs,1,y\x00z\n"
                  f"d,{NOW_S},thumbs,1,\n".encode())
    s = ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    balanced(s, 3)
    assert (s.inserted, s.reasons) == (2, {"NUL byte: call_id": 1})
    assert q(db, "select call_id from feedback order by 1") == [("c",), ("d",)]
    assert q(db, "select line_no, field, reason from quarantine") == [(2, "call_id", "NUL byte in call_id (field 'id')")]


@pytest.mark.parametrize("sep, delimiter", [(",", None), (";", None), (";", ","), ("\t", "|")])
def test_an_excel_sep_line_sets_the_delimiter_of_its_csv_and_is_skipped(tmp_path, db, sep, delimiter):
    # A CSV saved by Excel may start with its separator hint "sep=;": the file failed, its fields being "sep=;".
    # The hint sets the file's delimiter, over the mapping's own (it is said of this file), and the line is skipped;
    # a record's line is still the file's line.
    p = tmp_path / "excel.csv"
    p.write_text(f"sep={sep}\r\n" + "".join(sep.join(r) + "\r\n" for r in [
        ["id", "ts", "kind", "value"], ["u1", str(NOW_S), "thumbs", "1"], ["u2", "soon", "thumbs", "0"]]))
    m = FEEDBACK_MAP if delimiter is None else {**FEEDBACK_MAP, "csv": {"delimiter": delimiter}}
    assert count_records(p, "csv") == 2
    s = ingest(db, p, mapping=m, progress=False)
    balanced(s, 2)
    assert (s.inserted, s.reasons) == (1, {"unparseable timestamp: ts": 1})
    assert q(db, "select call_id, kind, value from feedback") == [("u1", "thumbs", 1.0)]
    assert q(db, "select line_no, field from quarantine") == [(4, "ts")]


def test_a_litellm_spend_csv_with_an_excel_sep_line_is_still_recognised(tmp_path, db):
    # Without a mapping the format is told by the header: with Excel's "sep=;" line first, a LiteLLM spend-log
    # export was "a mapping is required for csv files". The hint is read there too, and by the LiteLLM reader.
    p = tmp_path / "spend.csv"
    p.write_text("sep=;\nrequest_id;call_type;model;startTime;endTime;spend;prompt_tokens;completion_tokens\n"
                 "r1;acompletion;gpt-4o;2026-12-06 10:00:00;2026-12-06 10:00:01;0.01;10;5\n"
                 "r2;acompletion;gpt-4o;soon;2026-12-06 10:00:01;0.01;10;5\n")
    s = ingest(db, p, progress=False)
    balanced(s, 2)
    assert (s.inserted, s.reasons) == (1, {"unparseable timestamp: ts": 1})
    assert q(db, "select call_id, model, input_tokens from calls") == [("r1", "gpt-4o", 10)]
    assert q(db, "select line_no from quarantine") == [(4,)]


def test_cli_says_which_encoding_a_file_is_in(tmp_path, capsys):
    p = tmp_path / "spans.jsonl"
    p.write_bytes((_otlp([_span("a1", str(NOW_S * 10**9), str((NOW_S + 1) * 10**9))]) + "\n").encode("utf-16"))
    rc = cli_main(["ingest", str(p), "--db", str(tmp_path / "w.duckdb")])
    err = capsys.readouterr().err
    assert rc == 2 and "UTF-16" in err and "spans.jsonl" in err and "Traceback" not in err


def test_labels_in_utf16_are_an_error_naming_the_encoding(tmp_path, db):
    from workbench.eval.labels import import_labels

    p = tmp_path / "labels.csv"
    p.write_bytes("call_id,label\na,1\n".encode("utf-16"))
    with pytest.raises(IngestError, match=r"labels.csv: .*UTF-16"):
        import_labels(db, p)


@pytest.mark.parametrize("delim", [";", "\t", "|"])
def test_a_csv_split_by_another_delimiter_names_the_delimiter_to_set(tmp_path, db, delim):
    import re

    shown = re.escape(json.dumps(delim))  # as TOML writes it: "\t" is a tab in a basic string
    p = tmp_path / "feedback.csv"
    p.write_text(_FEEDBACK_CSV.format(t=NOW_S).replace(",", delim))
    with pytest.raises(IngestError, match=rf"no field 'id' in the CSV.*delimiter = {shown}") as err:
        ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    assert "[csv]" in str(err.value)
    # and with the delimiter the message names, the file loads
    fixed = {**FEEDBACK_MAP, "csv": {"delimiter": delim}}
    assert ingest(db, p, mapping=fixed, progress=False).inserted == 2


def test_a_csv_field_missing_for_another_reason_suggests_no_delimiter(tmp_path, db):
    p = tmp_path / "feedback.csv"
    p.write_text(_FEEDBACK_CSV.format(t=NOW_S).replace("id,", "ident,", 1))
    with pytest.raises(IngestError, match="no field 'id' in the CSV") as err:
        ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    assert "delimiter" not in str(err.value)


def test_a_csv_header_naming_a_mapped_field_twice_is_an_error_naming_its_columns(tmp_path, db):
    """The first of the two columns was read, silently: which one the mapping meant, nobody can tell."""
    p = tmp_path / "feedback.csv"
    p.write_text(f"id,ts,kind,value,value\na,{NOW_S},thumbs,1,0\n")
    with pytest.raises(IngestError, match=r"\[columns\] value: the header names 'value' 2 times \(columns 4 and 5\)"):
        ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    assert q(db, "select count(*) from feedback")[0][0] == 0
    # a repeated name the mapping does not read is no ambiguity: the file loads
    p.write_text(f"id,ts,kind,value,note,note\na,{NOW_S},thumbs,1,x,y\n")
    s = ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    assert (s.read, s.inserted) == (1, 1)


def test_a_parquet_file_with_two_columns_of_a_mapped_name_is_an_error_naming_them(tmp_path, db):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "feedback.parquet"
    cols = [pa.array(["a"]), pa.array([NOW_S]), pa.array(["thumbs"]), pa.array([1.0]), pa.array([0.0])]
    pq.write_table(pa.Table.from_arrays(cols, names=["id", "ts", "kind", "value", "value"]), p)
    with pytest.raises(IngestError, match=r"\[columns\] value: the file has 2 columns named 'value' \(columns 4 and 5\)"):
        ingest(db, p, mapping=FEEDBACK_MAP, progress=False)
    assert q(db, "select count(*) from feedback")[0][0] == 0
    pq.write_table(pa.Table.from_arrays(cols, names=["id", "ts", "kind", "value", "note"]), p)
    assert ingest(db, p, mapping=FEEDBACK_MAP, progress=False).inserted == 1
    # a column named like a dotted field beside the struct it would reach into is two names, not one twice
    p2 = tmp_path / "dotted.parquet"
    t = pa.table({"id": ["b"], "ts": [NOW_S], "kind": ["thumbs"], "v": [{"x": 9.0}], "v.x": [2.0]})
    pq.write_table(t, p2)
    m = {**FEEDBACK_MAP, "columns": {**FEEDBACK_MAP["columns"], "value": "v.x"}}
    assert ingest(db, p2, mapping=m, progress=False).inserted == 1
    assert q(db, "select value from feedback where call_id = 'b'") == [(2.0,)]


def test_an_id_given_a_json_object_or_list_is_quarantined_not_kept_as_its_text(tmp_path, db):
    """Mapping user_id to 'user' where the record holds {"id": ..., "email": ...} stored the whole object's JSON as the
    id: every join on it failed and the email sat in an id column, without a word."""
    lines = [{"id": "a", "ts": NOW_S, "user": {"id": "u1", "email": "x@y.z"}},
             {"id": ["b"], "ts": NOW_S, "user": "u2"},
             {"id": "c", "ts": NOW_S, "user": "[draft] u3"},     # text that starts with a bracket: an id as written
             {"id": "d", "ts": NOW_S, "user": "u4"}]
    p = tmp_path / "calls.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in lines))
    m = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "ts", "unit": "s"}, "user_id": "user",
                                       "feature": {"value": "f"}, "status": {"value": "ok"}}}
    s = ingest(db, p, mapping=m, progress=False)
    balanced(s, 4)
    assert s.reasons == {"nested value: user_id": 1, "nested value: call_id": 1}, s.reasons
    assert q(db, "select call_id, user_id from calls order by 1") == [("c", "[draft] u3"), ("d", "u4")]
    reasons = dict(q(db, "select line_no, reason from quarantine order by 1"))
    assert reasons[1].startswith("nested value in user_id: '{\"id\":") and "map a field inside it" in reasons[1]
    # the same from a CSV cell and a Parquet struct column
    c = tmp_path / "calls.csv"
    c.write_text(f'id,ts,user\ne,{NOW_S},"{{""id"": ""u5""}}"\nf,{NOW_S},u6\n')
    s = ingest(db, c, mapping={**m, "format": "csv"}, progress=False)
    assert (s.inserted, s.reasons) == (1, {"nested value: user_id": 1})
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["g", "h"], "ts": [NOW_S, NOW_S], "user": [{"id": "u7"}, {"id": "u8"}]}),
                   tmp_path / "calls.parquet")
    s = ingest(db, tmp_path / "calls.parquet", mapping={**m, "format": "parquet"}, progress=False)
    assert (s.inserted, s.reasons) == (0, {"nested value: user_id": 2})
    m2 = {**m, "columns": {**m["columns"], "user_id": "user.id"}}
    assert ingest(db, tmp_path / "calls.parquet", mapping={**m2, "format": "parquet"}, progress=False).inserted == 2


@pytest.mark.parametrize("body, message", [
    ('table = "calls"\n[columns]\ncall_id = "id"\nts = "t"\nstatus = "s"\n[csv]\nquote = ","\n',
     r"\[csv\] quote ',' is also the delimiter ','"),
    ('table = "calls"\n[columns]\ncall_id = "id"\nts = "t"\nstatus = "s"\n[csv]\ndelimiter = ";"\nescape = ";"\n',
     r"\[csv\] escape ';' is also the delimiter ';'"),
    ('table = "calls"\n[columns]\ncall_id = "id"\nts = "t"\nstatus = "s"\nfeature = "a\\u0000b"\n',
     r"\[columns\] feature: a field name holds a NUL character"),
    ('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "t", format = "%Q-%Y" }\nstatus = "s"\n',
     r"\[columns\] ts: format '%Q-%Y' is not a strptime format DuckDB reads \(.*%Q"),
    ('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "t", format = "" }\nstatus = "s"\n',
     r"\[columns\] ts: format '' is not a strptime format DuckDB reads \(.*Empty format string"),
])
def test_a_mapping_duckdb_would_refuse_is_an_error_naming_its_key(tmp_path, body, message):
    from workbench.io.ingest import load_mapping

    m = tmp_path / "m.toml"
    m.write_text(body)
    with pytest.raises(IngestError, match=message):  # were DuckDB's own errors at load, naming the data file only
        load_mapping(m)


def test_hash_on_a_column_that_is_not_the_key_is_an_error_naming_it(tmp_path):
    # trace_id = { hash = ["session"] } numbered the repeats of each session: two calls of one session got two trace
    # ids, a trace split into single calls without a word
    from workbench.io.ingest import load_mapping

    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = "t"\nstatus = "s"\ntrace_id = { hash = ["session"] }\n')
    with pytest.raises(IngestError, match=r"\[columns\] trace_id: hash is for the key of calls \(call_id\)"):
        load_mapping(m)


def test_an_incident_detected_or_resolved_before_it_started_is_quarantined(tmp_path, db):
    """started_at written in local time beside UTC times: detected 09:00 and resolved 08:00 for a start at 10:00 were
    loaded, and MTTD read -25 minutes (n 2) and MTTR -30 for +10 and +60."""
    (tmp_path / "inc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "i1", "feature": "chat", "start": "2026-01-01T10:00:00Z", "det": "2026-01-01T09:00:00Z",
         "res": "2026-01-01T08:00:00Z"},
        {"id": "i2", "feature": "chat", "start": "2026-01-01T10:00:00Z", "det": "2026-01-01T10:10:00Z",
         "res": "2026-01-01T11:00:00Z"}]))
    (tmp_path / "m.toml").write_text('format = "jsonl"\ntable = "incidents"\n[columns]\nincident_id = "id"\n'
                                     'feature = "feature"\nstarted_at = "start"\ndetected_at = "det"\nresolved_at = "res"\n')
    s = ingest(db, [tmp_path / "inc.jsonl"], mapping=tmp_path / "m.toml", progress=False)
    assert (s.read, s.inserted, s.quarantined) == (2, 1, 1)
    assert db.duckdb.execute("select line_no, field, reason from quarantine").fetchall() == [
        (1, "detected_at", "before start: detected_at 2026-01-01 09:00:00 < started_at 2026-01-01 10:00:00")]
    assert wb.mttd_minutes(db, period="all").select("value", "n").rows() == [(10.0, 1)]
    assert wb.mttr_minutes(db, period="all").select("value", "n").rows() == [(60.0, 1)]


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_an_incident_loaded_open_then_again_resolved_gets_its_resolution(tmp_path, db, ext):
    """An incident tracker's export is loaded while an incident is open and again once it is resolved: the second
    load counted it a duplicate, its resolved_at was never stored, and MTTR left it out for good. A field the stored
    row lacks is now filled from the later load (never one it holds), and the load says how many rows it completed."""
    m = tmp_path / "m.toml"
    m.write_text(f'format = "{ext}"\ntable = "incidents"\n[columns]\nincident_id = "id"\nstarted_at = "start"\n'
                 'detected_at = { field = "det", optional = true }\nresolved_at = { field = "res", optional = true }\n'
                 'severity = { field = "sev", optional = true }\n')

    def export(name: str, rows: list[dict]) -> Path:
        p = tmp_path / f"{name}.{ext}"
        if ext == "jsonl":
            p.write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            p.write_text("id,start,det,res,sev\n" + "".join(
                f"{r['id']},{r['start']},{r.get('det', '')},{r.get('res', '')},{r.get('sev', '')}\n" for r in rows))
        return p

    t0 = "2026-01-01T10:00:00Z"
    first = export("monday", [{"id": "i1", "start": t0, "det": "2026-01-01T10:10:00Z", "sev": "sev2"},
                              {"id": "i2", "start": t0, "det": "2026-01-01T10:05:00Z",
                               "res": "2026-01-01T10:35:00Z", "sev": "sev3"}])
    s = ingest(db, [first], mapping=m, progress=False)
    assert (s.inserted, s.files[0]["completed"]) == (2, 0)
    assert wb.mttr_minutes(db, period="all").select("value", "n").rows() == [(35.0, 1)]
    # i1 resolved; i2's export now says another resolution and severity: what is stored is kept
    second = export("tuesday", [{"id": "i1", "start": t0, "det": "2026-01-01T10:10:00Z",
                                 "res": "2026-01-01T11:10:00Z", "sev": "sev1"},
                                {"id": "i2", "start": t0, "det": "2026-01-01T10:05:00Z",
                                 "res": "2026-01-01T12:00:00Z", "sev": "sev1"}])
    s = ingest(db, [second], mapping=m, progress=False)
    assert (s.read, s.inserted, s.duplicates, s.files[0]["completed"]) == (2, 0, 2, 1)
    assert "1 stored row completed" in str(s)
    assert db.duckdb.execute("select incident_id, severity, resolved_at::varchar from incidents order by 1"
                             ).fetchall() == [("i1", "sev2", "2026-01-01 11:10:00"), ("i2", "sev3", "2026-01-01 10:35:00")]
    assert wb.mttr_minutes(db, period="all").select("value", "n").rows() == [(52.5, 2)]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to stand for a full disk")
def test_a_full_disk_at_commit_is_one_error_line_and_the_database_is_unchanged(tmp_path, capsys):
    # A COMMIT that cannot write the write-ahead log has rolled back already: the ROLLBACK after it raised "no
    # transaction is active", a traceback that hid the reason. The write-ahead log on /dev/full: every write to it
    # fails with ENOSPC, as on a full disk.
    dbp = tmp_path / "w.duckdb"
    m = tmp_path / "m.toml"
    m.write_text('table = "feedback"\n[columns]\ncall_id = "id"\nts = { field = "ts", unit = "s" }\n'
                 'kind = "kind"\nvalue = "value"\n')
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps({"id": f"a{i}", "ts": NOW_S, "kind": "thumbs", "value": 1}) + "\n"
                             for i in range(3)))
    second.write_text("".join(json.dumps({"id": f"b{i}", "ts": NOW_S, "kind": "thumbs", "value": 0}) + "\n"
                              for i in range(5)))
    assert cli_main(["ingest", str(first), "--mapping", str(m), "--db", str(dbp), "--no-prices", "--json"]) == 0
    capsys.readouterr()
    wal = Path(f"{dbp}.wal")
    assert not wal.exists()  # checkpointed on close
    wal.symlink_to("/dev/full")
    rc = cli_main(["ingest", str(second), "--mapping", str(m), "--db", str(dbp), "--no-prices", "--json"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "no transaction is active" not in err
    assert f"{second}: could not be loaded as jsonl (nothing of it was written)" in err
    assert "No space left on device" in err
    wal.unlink()
    with wb.connect(dbp) as d:  # the first load whole, nothing of the second, one run recorded
        assert q(d, "select count(*), count(*) filter (where call_id like 'a%') from feedback")[0] == (3, 3)
        assert q(d, "select count(*) from ingest_runs")[0][0] == 1


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path, db, monkeypatch, empty):
    # Path("") is ".": `workbench ingest "$FILE"` with FILE unset loaded every file of the current folder
    (tmp_path / "feedback.jsonl").write_text(json.dumps({"id": "a", "ts": NOW_S, "kind": "thumbs", "value": 1}) + "\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IngestError, match=r"ingest: an empty path \('\s*'\) names no file; give a file or a folder"):
        ingest(db, [empty], mapping=FEEDBACK_MAP, progress=False)
    assert q(db, "select count(*) from feedback")[0][0] == 0
    assert ingest(db, ["."], mapping=FEEDBACK_MAP, progress=False).inserted == 1  # the current folder, said so
