"""The ingest benchmark's hand-written alternatives load what the workbench loads (benchmarks/bench_ingest.py checks
this before timing; here it is checked on every test run, so a change to a format cannot leave the benchmark
comparing different work)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_ingest as B  # noqa: E402


@pytest.mark.parametrize("fmt", ["litellm", "jsonl"])
def test_the_hand_written_load_holds_the_workbench_rows(tmp_path, fmt):
    rng = random.Random(3)
    if fmt == "litellm":
        path, mapping = tmp_path / "payloads.jsonl", None
        B.write_litellm(path, 500, rng)
    else:
        path, mapping = tmp_path / "calls.jsonl", tmp_path / "calls.toml"
        B.write_jsonl(path, 500, rng)
        mapping.write_text(B.MAPPING)
    a, b = B.empty_db(tmp_path / "wb.duckdb"), B.empty_db(tmp_path / "sql.duckdb")
    out = B.wb_load(a, path, mapping, fmt)
    assert out["inserted"] == 500 and out["quarantined"] == 0
    assert B.sql_load(b, fmt, path)["inserted"] == 500
    B.same_rows(a, b, B.FORMAT_COLS.get(fmt, B.COLS))
    if fmt == "litellm":  # the LiteLLM rows are compared on 20 columns, and the attributes kept on both sides
        import duckdb

        con = duckdb.connect(str(b), read_only=True)
        assert con.execute("select count(*) from calls where attributes->>'$.\"litellm.metadata\".user_api_key_team_alias'"
                           " = feature").fetchone()[0] == 500
        con.close()
        assert len(B.FORMAT_COLS["litellm"].split(", ")) == 20
    # a re-load inserts nothing on either side
    assert B.wb_load(a, path, mapping, fmt)["inserted"] == 0 and B.sql_load(b, fmt, path)["inserted"] == 0
    # the file grown by appending: the workbench reads the new records only, both sides insert them
    assert B.grow(fmt, path, 500, 7)
    out = B.wb_load(a, path, mapping, fmt)
    assert out["inserted"] == 7 and out["appended"] and B.sql_load(b, fmt, path)["inserted"] == 7
    B.same_rows(a, b, B.FORMAT_COLS.get(fmt, B.COLS))


def test_the_benchmark_protobuf_holds_the_spans_of_its_json_lines(tmp_path):
    """The OTLP protobuf file the benchmark builds from its JSON lines (by the generated classes, not protojson)
    decodes back to the same JSON lines and loads the same rows."""
    from workbench.io import otlp_proto

    src, pb = tmp_path / "spans.jsonl", tmp_path / "spans.pb"
    B.write_otlp(src, 250, random.Random(5), per_line=100)
    B.otlp_json_to_proto(src, pb)
    back = tmp_path / "back.jsonl"
    assert otlp_proto.file_to_jsonl(pb, back)[0] == 3
    import json

    want = [json.loads(x) for x in src.read_text().splitlines()]
    for line in want:  # an empty parent id is proto3's default: protobuf does not carry it
        for sp in line["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            if sp["parentSpanId"] == "":
                del sp["parentSpanId"]
    assert [json.loads(x) for x in back.read_text().splitlines()] == want
    a, b = B.empty_db(tmp_path / "json.duckdb"), B.empty_db(tmp_path / "pb.duckdb")
    assert B.wb_load(a, src, None, "auto")["inserted"] == 250 and B.wb_load(b, pb, None, "auto")["inserted"] == 250
    B.same_rows(a, b)


@pytest.mark.parametrize("fmt,name", B.REPLICATED)
def test_the_replicated_formats_load_clean_with_new_ids_in_every_copy(tmp_path, fmt, name):
    """The benchmark's Langfuse, OpenInference and Vercel files: the fixture's clean records again and again, every
    copy a new set of rows (no id repeats, nothing quarantined), so the rate is of loading new rows."""
    fixture = Path(__file__).parent / "data" / "formats" / name
    one = B.write_replicated(fixture, tmp_path / "one.jsonl", 1, fmt)  # one copy: its clean records
    three = B.write_replicated(fixture, tmp_path / "three.jsonl", 3 * one, fmt)
    assert three == 3 * one
    a = B.wb_load(B.empty_db(tmp_path / "a.duckdb"), tmp_path / "one.jsonl", None, fmt)
    b = B.wb_load(B.empty_db(tmp_path / "b.duckdb"), tmp_path / "three.jsonl", None, fmt)
    assert a["quarantined"] == b["quarantined"] == 0 and a["inserted"] >= one
    assert b["inserted"] == 3 * a["inserted"]
