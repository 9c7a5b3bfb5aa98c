"""A broken line where a reader decides how to read the file: the first line of JSON lines, the first line appended
to a log, a quote inside a CSV field of a log still being written, a record indented with a tab. Each loaded only
part of the file, or a record depending on an unrelated line, before the change that fixed it: read must equal the
records of the file, with the broken line alone quarantined (under its own line number)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

import workbench as wb
from workbench.io.ingest import ingest
from workbench.io.records import json_layout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_ingest import write_litellm  # noqa: E402  (the project's generator of LiteLLM payload lines)

T = 1763632800 * 10**9
COUNTS = ("read", "inserted", "duplicates", "quarantined")


def _span(i: int) -> dict:
    return {"traceId": "ab" * 16, "spanId": f"{i:016x}", "name": "chat", "startTimeUnixNano": str(T + i * 10**9),
            "endTimeUnixNano": str(T + i * 10**9 + 10**9),
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]}


def _export(spans: list[dict], proto: bool = False) -> str:
    s = json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                       "scopeSpans": [{"scope": {"name": "s"}, "spans": spans}]}]})
    if proto:  # protobuf's own field names, which the loader takes too
        for a, b in [("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ('"spanId"', '"span_id"'),
                     ('"traceId"', '"trace_id"'), ("startTimeUnixNano", "start_time_unix_nano"),
                     ("endTimeUnixNano", "end_time_unix_nano")]:
            s = s.replace(a, b)
    return s


def _load(tmp_path: Path, name: str, text: str, **kw) -> tuple[dict, list, int]:
    p = tmp_path / name
    p.write_text(text)
    db = wb.connect(str(tmp_path / f"{name}.duckdb"))
    f = ingest(db, p, progress=False, **kw).files[0]
    q = db.duckdb.execute("select line_no, reason from quarantine order by line_no").fetchall()
    n = db.duckdb.execute("select count(*) from calls").fetchone()[0]
    db.close()
    return {k: f[k] for k in COUNTS}, q, n


@pytest.mark.parametrize("first", ["{", '{"resourceSpans": [', "[", "{bad"])
def test_otlp_lines_whose_first_line_is_broken_load_the_other_lines(tmp_path, first):
    lines = [first, _export([_span(1), _span(2), _span(3)]), _export([_span(4), _span(5)], proto=first == "{bad")]
    got, q, n = _load(tmp_path, "traces.jsonl", "\n".join(lines) + "\n", format="otel")
    # was read as one pretty-printed document: the whole file one invalid record, no span loaded
    assert got == {"read": 6, "inserted": 5, "duplicates": 0, "quarantined": 1} and n == 5
    assert q == [(1, "invalid JSON")]


@pytest.mark.parametrize("first", ["cut", "{bad", "{"])
def test_litellm_lines_whose_first_line_is_broken_load_the_other_lines(tmp_path, first):
    src = tmp_path / "src.jsonl"
    write_litellm(src, 4, random.Random(0))
    good = src.read_text().splitlines()
    lines = [good[0][:200] if first == "cut" else first, *good[1:]]
    got, q, n = _load(tmp_path, "payloads.jsonl", "\n".join(lines) + "\n", format="litellm")
    assert got == {"read": 4, "inserted": 3, "duplicates": 0, "quarantined": 1} and n == 3
    assert q == [(1, "invalid JSON")]


@pytest.mark.parametrize("name", ["calls.json", "calls.jsonl"])
def test_mapped_lines_whose_first_line_is_broken_load_the_other_lines(tmp_path, name):
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\n'
                 'status = { value = "ok" }\n')
    recs = [json.dumps({"id": f"r{i}", "time": 1763632800 + i}) for i in range(4)]
    got, q, n = _load(tmp_path, name, "\n".join(['{"id": "r0",', *recs[1:]]) + "\n", mapping=m)
    assert got == {"read": 4, "inserted": 3, "duplicates": 0, "quarantined": 1} and n == 3
    assert [line for line, _ in q] == [1]


def test_a_broken_first_line_appended_to_a_log_does_not_hide_the_lines_after_it(tmp_path):
    src = tmp_path / "src.jsonl"
    write_litellm(src, 6, random.Random(0))
    lines = src.read_text().splitlines()
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(lines[:3]) + "\n")
    db = wb.connect(str(tmp_path / "log.duckdb"))
    assert ingest(db, p, format="litellm", progress=False).inserted == 3
    with open(p, "a") as fh:  # a writer died mid-record; the restarted one went on on a new line
        fh.write("{bad\n" + "\n".join(lines[3:]) + "\n")
    f = ingest(db, p, format="litellm", progress=False).files[0]
    # the appended part alone was read as one document: 1 quarantined, the 3 records after it neither loaded nor counted
    assert f["appended_to"] is not None
    assert {k: f[k] for k in COUNTS} == {"read": 7, "inserted": 3, "duplicates": 3, "quarantined": 1}
    assert db.duckdb.execute("select count(*) from calls").fetchone()[0] == 6
    assert db.duckdb.execute("select line_no from quarantine").fetchall() == [(4,)]


def test_a_log_being_written_whose_writer_restarted_loads_what_follows_the_cut_record(tmp_path):
    src = tmp_path / "src.jsonl"
    write_litellm(src, 6, random.Random(0))
    lines = src.read_text().splitlines()
    p = tmp_path / "tailed.jsonl"
    p.write_text("\n".join(lines[:3]) + "\n" + lines[3][:150])  # 3 payloads and one being written
    db = wb.connect(str(tmp_path / "tailed.duckdb"))
    assert ingest(db, p, format="litellm", growing=True, progress=False).files[0]["left_unread"] == 150
    with open(p, "a") as fh:  # the writer died; the restarted one starts a new line
        fh.write("\n" + "\n".join(lines[4:]) + "\n")
    f = ingest(db, p, format="litellm", growing=True, progress=False).files[0]
    assert {k: f[k] for k in COUNTS} == {"read": 6, "inserted": 2, "duplicates": 3, "quarantined": 1}
    assert db.duckdb.execute("select count(*) from calls").fetchone()[0] == 5


def test_a_quote_inside_a_csv_field_does_not_hold_back_a_growing_log(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\nmodel = "model"\n'
                 'status = { value = "ok" }\n')
    rows = ["id,time,model", *[f"r{i},{1763632800 + i},gpt-4o" for i in range(3)], 'r3,1763632803,12" pizza',
            *[f"r{i},{1763632800 + i},gpt-4o" for i in range(4, 8)]]
    p = tmp_path / "log.csv"
    p.write_text("\n".join(rows) + "\n")
    db = wb.connect(str(tmp_path / "log.duckdb"))
    f = ingest(db, p, mapping=m, growing=True, progress=False).files[0]
    # the odd count of quotes read every record after r3 as inside a quoted field: "still being written", forever
    assert (f["read"], f["inserted"], f["left_unread"]) == (8, 8, 0)
    with open(p, "a") as fh:
        fh.write('r8,1763632808,"a ""quoted""\nmodel"\nr9,1763632809,"being wri')
    f = ingest(db, p, mapping=m, growing=True, progress=False).files[0]
    assert (f["inserted"], f["left_unread"]) == (1, len('r9,1763632809,"being wri'))  # a real open field waits
    assert db.duckdb.execute("select model from calls where call_id = 'r8'").fetchone() == ('a "quoted"\nmodel',)


def test_a_record_indented_with_a_tab_is_read_whatever_the_rest_of_the_file(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\n'
                 'status = { value = "ok" }\n')
    recs = [json.dumps({"id": f"r{i}", "time": 1763632800 + i}) for i in range(4)]
    recs[1] = "\t" + recs[1]
    clean, _, _ = _load(tmp_path, "a.jsonl", "\n".join(recs) + "\n", mapping=m)
    blank, q, _ = _load(tmp_path, "b.jsonl", "\n".join(recs) + "\n\n", mapping=m)  # read line by line
    assert clean == blank == {"read": 4, "inserted": 4, "duplicates": 0, "quarantined": 0}, q  # was 'not a JSON object'


@pytest.mark.parametrize("text, layout", [
    (b'[\n{"a": 1}\n]', "array"),  # one element of an array on its own line: still an array
    (b'[\n{"a": 1},\n{"a": 2}\n]', "array"),
    (b'[\n {"a": 1}\n, {"a": 2}\n]', "array"),
    (b'{\n  "a": 1\n}', "document"),
    (b'{"a":\n{"b": 1}\n}', "document"),
    (b'{"a": \n{"a": 1}\n{"a": 2}\n', "lines"),
    (b'{bad\n{"a": 1}\n', "lines"),
])
def test_pretty_printed_json_is_still_a_document(text, layout):
    assert json_layout(text) == layout


@pytest.mark.parametrize("before, after", [("\f", ""), ("\v", ""), ("", "\f"), ("", "\v")])
def test_a_record_with_a_form_feed_or_vertical_tab_around_it_is_read_by_both_readers(tmp_path, before, after):
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\n'
                 'status = { value = "ok" }\n')
    recs = [json.dumps({"id": f"r{i}", "time": 1763632800 + i}) for i in range(4)]
    recs[1] = before + recs[1] + after
    clean, _, _ = _load(tmp_path, "a.jsonl", "\n".join(recs) + "\n", mapping=m)  # DuckDB's typed reader
    blank, q, _ = _load(tmp_path, "b.jsonl", "\n".join(recs) + "\n\n", mapping=m)  # the line reader
    assert clean == blank == {"read": 4, "inserted": 4, "duplicates": 0, "quarantined": 0}, q  # was 'invalid JSON'


@pytest.mark.parametrize("mb", [8.5, 17])
def test_a_csv_field_of_many_short_lines_over_the_longest_line_loads(tmp_path, mb):
    import csv
    import io

    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\nmodel = "model"\n'
                 'status = { value = "ok" }\n')
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "time", "model"])
    text = ("x" * 999 + "\n") * int(mb * 1000)  # a long answer with line breaks: every physical line is short
    for i in range(5):
        w.writerow([f"r{i}", 1763632800 + i, text if i == 2 else "gpt-4o"])
    got, q, n = _load(tmp_path, "long.csv", buf.getvalue(), mapping=m)
    # buffers were sized from the longest physical line: at 8.5 MB the record was quarantined "line too long", at
    # 17 MB the file refused ("the csv reader accounted for 8,393 records")
    assert got == {"read": 5, "inserted": 5, "duplicates": 0, "quarantined": 0} and n == 5, q


def test_what_is_appended_need_not_hold_every_mapped_field(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\n'
                 'feature = "app"\nstatus = { value = "ok" }\n')
    p = tmp_path / "log.jsonl"
    p.write_text("".join(json.dumps({"id": f"r{i}", "time": 1763632800 + i, "app": "chat"}) + "\n" for i in range(3)))
    db = wb.connect(str(tmp_path / "log.duckdb"))
    ingest(db, p, mapping=m, progress=False)
    with open(p, "a") as fh:  # a day of records without the field (mapped, with the records before holding it)
        fh.write("".join(json.dumps({"id": f"r{i}", "time": 1763632800 + i}) + "\n" for i in range(3, 6)))
    f = ingest(db, p, mapping=m, progress=False).files[0]  # was "no record of the file has the field 'app'", forever
    assert f["appended_to"] is not None and (f["read"], f["inserted"]) == (6, 3)


def test_a_byte_order_mark_starting_what_was_appended_is_read_as_in_the_whole_file(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\n'
                 'status = { value = "ok" }\n')
    rec = lambda i: json.dumps({"id": f"r{i}", "time": 1763632800 + i})  # noqa: E731
    p = tmp_path / "log.jsonl"
    p.write_text("".join(rec(i) + "\n" for i in range(3)))
    db = wb.connect(str(tmp_path / "log.duckdb"))
    ingest(db, p, mapping=m, progress=False)
    with open(p, "a", encoding="utf-8") as fh:  # a second writer starting with its own byte-order mark
        fh.write("\ufeff" + "".join(rec(i) + "\n" for i in range(3, 6)))
    f = ingest(db, p, mapping=m, progress=False).files[0]
    whole, q, _ = _load(tmp_path, "whole.jsonl", p.read_text(encoding="utf-8"), mapping=m)
    assert f["appended_to"] is not None and {k: f[k] for k in COUNTS} == {**whole, "inserted": 2, "duplicates": 3}
    assert db.duckdb.execute("select line_no, reason from quarantine").fetchall() == q == [(4, "invalid JSON")]


@pytest.mark.parametrize("skip", [3, 9])
def test_a_csv_skip_past_the_header_is_an_error_not_an_empty_load(tmp_path, skip):
    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "t", unit = "s" }\nstatus = "st"\n'
                 f'[csv]\nskip = {skip}\n')
    p = tmp_path / "calls.csv"
    p.write_text("id,t,st\na,1732000000,ok\nb,1732000001,ok\n")  # 3 lines: skip 3 or more leaves no header
    db = wb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(wb.errors.IngestError, match=r"\[csv\] skip = \d skips .* leaving no header to read"):
        ingest(db, p, mapping=m, progress=False)  # was read 0, inserted 0, the file recorded as loaded
    assert db.duckdb.execute("select count(*) from ingest_runs").fetchone()[0] == 0


@pytest.mark.parametrize("name, text", [("calls.jsonl", '{"id": "a", "t": 1732000000}\n'),
                                        ("calls.csv", "id,t\na,1732000000\n")])
def test_a_gzip_file_not_named_gz_is_an_error_saying_so(tmp_path, name, text):
    import gzip

    m = tmp_path / "m.toml"
    m.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "t", unit = "s" }\nstatus = { value = "ok" }\n')
    p = tmp_path / name
    p.write_bytes(gzip.compress(text.encode()))
    db = wb.connect(str(tmp_path / "w.duckdb"))
    # was "holds 5 records but the jsonl reader accounted for 7 ... check quotes", or fields of binary garbage
    with pytest.raises(wb.errors.IngestError, match=f"gzip-compressed but its name does not end in .gz; rename it to {name}.gz"):
        ingest(db, p, mapping=m, progress=False)
    gz = p.with_name(name + ".gz")
    p.rename(gz)
    assert ingest(db, gz, mapping=m, progress=False).inserted == 1
