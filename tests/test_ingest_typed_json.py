"""JSONL is loaded through DuckDB's typed JSON reader when it reads the file whole, and through the line reader
otherwise. Both must load exactly the same rows, quarantine the same lines with the same reasons and raw text, and
count the same: every case here is loaded both ways and compared, and the typed reader must have been the one used
where the file allows it (else the comparison would test nothing).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.io import ingest as ing

T = 1763632800  # 2025-11-20 10:00 UTC

CALLS_MAP = {"table": "calls", "columns": {
    "call_id": "id", "ts": {"field": "time", "unit": "s"}, "latency_ms": {"field": "duration", "unit": "s"},
    "input_tokens": "usage.input", "output_tokens": "usage.output", "model": "model",
    "feature": {"field": "app", "default": "unknown"}, "status": {"field": "status", "default": "ok"},
    "attributes": {"field": "meta", "optional": True}}}
# no natural key: feedback_id is a hash of the mapped fields, numbered by occurrence in the file
FEEDBACK_MAP = {"table": "feedback", "columns": {"ts": {"field": "ts", "unit": "s"}, "kind": "kind",
                                                 "value": {"field": "v", "optional": True}}}


def call(i: int, **over) -> str:
    rec = {"id": f"c{i}", "time": T + i, "duration": 1.5, "usage": {"input": 10, "output": 5}, "model": "m",
           "app": "support", "status": "ok"}
    rec.update(over)
    return json.dumps(rec)


def load_both(tmp_path: Path, monkeypatch, text: str | bytes, mapping: dict, name: str = "f.jsonl"):
    """Load the file with the typed reader allowed and with the line reader only; return both results and whether
    the typed reader read the file."""
    p = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    used = []
    real = ing._load

    def spy(con, src, *args, **kwargs):
        used.append(src.lines is not None)  # a typed source carries the line reader for the lines it re-reads
        return real(con, src, *args, **kwargs)

    straight = ing._straight

    def spy_straight(con, src, *args):
        loaded = straight(con, src, *args)
        if loaded is not None:  # inserted in one read
            used.append(src.lines is not None)
        return loaded

    monkeypatch.setattr(ing, "_load", spy)
    monkeypatch.setattr(ing, "_straight", spy_straight)
    out = []
    for typed in (True, False):
        monkeypatch.setattr(ing, "_TYPED_JSON", typed)
        db = wb.connect(":memory:")
        try:
            try:
                s = ing.ingest(db, p, format="jsonl", mapping=mapping, progress=False).as_dict()
            except ing.IngestError as exc:
                s = str(exc)
            cols = [c for c in db.duckdb.execute(f"describe {mapping['table']}").fetchall()]
            names = ", ".join(f'"{c[0]}"' for c in cols if c[0] != "ingest_run_id")
            rows = db.duckdb.execute(f"select {names} from {mapping['table']} order by all").fetchall()
            q = db.duckdb.execute("select line_no, target_table, field, reason, raw from quarantine order by line_no"
                                  ).fetchall()
            out.append((s, rows, q))
        finally:
            db.close()
    return out[0], out[1], used[0]


CASES = {
    # clean files: the typed reader reads them
    "clean": ("\n".join(call(i) for i in range(50)) + "\n", True),
    "no final newline": ("\n".join(call(i) for i in range(3)), True),
    "CRLF": ("\r\n".join(call(i) for i in range(3)) + "\r\n", True),
    "dotted key as a literal": (call(1) + "\n" + json.dumps({"id": "c2", "time": T, "duration": 1, "usage.input": 7,
                                                              "model": "m"}) + "\n", True),
    "numbers written every way": ("\n".join(call(i, duration=d) for i, d in
                                            enumerate([1, 1.0, 1e0, 1E-1, -0.0, 0.5e1, 12345678901234567890])) + "\n",
                                  True),
    "values of other JSON types": ("\n".join(call(i, model=m) for i, m in
                                             enumerate([1, True, None, [1, "x"], {"a": 1}, "é\n\"", ""])) + "\n", True),
    "attributes of every kind": ("\n".join(call(i, meta=m) for i, m in
                                           enumerate([{"k": [1, 2.50]}, "text", None, [1], 3, {}])) + "\n", True),
    "an unmapped key repeats": (call(1)[:-1] + ', "extra": 1, "extra": 2}\n' + call(2) + "\n", True),
    "a key in another case": (call(1)[:-1] + ', "Model": "M", "ID": "x"}\n', True),
    "escaped key names": ('{"\\u0069d": "c1", "time": ' + str(T) + ', "duration": 1, "model": "m"}\n', True),
    "repeated ids": ("\n".join(call(i % 3, duration=i) for i in range(9)) + "\n", True),
    # rows a check quarantines: read again by the line reader for their reasons and raw text
    "checks quarantine": ("\n".join([call(1), call(2, duration=-1), call(3, time=0), call(4, status="weird"),
                                     call(5, usage={"input": 1.5}), call(6, id=None), call(7)]) + "\n", True),
    "a JSON null and an empty object": (call(1) + "\nnull\n{}\n" + call(2) + "\n", True),
    "quarantine and repeats": ("\n".join([call(1), call(1, duration=-1), call(2), call(1, duration=3)]) + "\n",
                               True),
    # files the typed reader refuses, or that it would number wrongly: read by the line reader
    "a mapped key repeats": (call(1)[:-1] + ', "model": "n"}\n' + call(2) + "\n", False),
    "a nested mapped key repeats": (call(1, usage={"input": 1})[:-2] + ', "input": 2}}\n', False),
    "invalid JSON": (call(1) + "\n{nope\n" + call(2) + "\n", False),
    "not an object": (call(1) + '\n[1, 2]\n5\n"s"\n' + call(2) + "\n", False),
    "a parent is not an object": (call(1) + "\n" + call(2, usage="n/a") + "\n", False),
    "blank lines": (call(1) + "\n\n   \n" + call(2) + "\n", False),
    "a byte order mark": ("\ufeff" + call(1) + "\n" + call(2) + "\n", False),
    "trailing comma": (call(1)[:-1] + ",}\n" + call(2) + "\n", None),
    "NaN": (call(1, duration=float("nan")) + "\n", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_typed_and_line_readers_load_the_same(tmp_path, monkeypatch, name):
    text, typed = CASES[name]
    a, b, used = load_both(tmp_path, monkeypatch, text, CALLS_MAP)
    assert a == b
    if typed is not None:
        assert used is typed


def test_the_same_through_gzip(tmp_path, monkeypatch):
    text = "\n".join([call(1), call(2, duration=-1), call(3)]) + "\n"
    a, b, used = load_both(tmp_path, monkeypatch, text, CALLS_MAP, name="f.jsonl.gz")
    assert used and a == b
    assert a[0]["inserted"] == 2 and a[2][0][0] == 2  # line 2 quarantined, named by its line


def test_hash_keys_are_numbered_in_file_order(tmp_path, monkeypatch):
    rows = [{"ts": T, "kind": "thumbs", "v": 1}, {"ts": T, "kind": "thumbs", "v": 1}, {"ts": T + 1, "kind": "edit"},
            {"ts": T, "kind": "thumbs", "v": 1}, {"ts": -5, "kind": "thumbs"}, {"ts": T, "kind": "nope"}]
    text = "\n".join(json.dumps(r) for r in rows) + "\nnull\n"
    a, b, used = load_both(tmp_path, monkeypatch, text, FEEDBACK_MAP)
    assert used and a == b
    assert a[0]["inserted"] == 4 and a[0]["quarantined"] == 3


def test_a_repeated_mapped_key_is_quarantined_an_unmapped_one_is_not(tmp_path, monkeypatch):
    text = call(1)[:-1] + ', "x": 1, "x": 2}\n' + call(2)[:-1] + ', "duration": 99}\n'
    for typed in (True, False):
        monkeypatch.setattr(ing, "_TYPED_JSON", typed)
        p = tmp_path / f"{typed}.jsonl"
        p.write_text(text)
        db = wb.connect(":memory:")
        s = ing.ingest(db, p, format="jsonl", mapping=CALLS_MAP, progress=False)
        assert (s.inserted, s.quarantined) == (1, 1)
        assert db.duckdb.execute("select line_no, reason from quarantine").fetchall() == [
            (2, 'duplicate key "duration" in the JSON object (readers disagree on which value counts)')]
        db.close()


def test_a_field_no_record_has_is_still_found_to_be_missing(tmp_path, monkeypatch):
    text = "\n".join(call(i) for i in range(3)) + "\n"
    m = {**CALLS_MAP, "columns": {**CALLS_MAP["columns"], "model": "modle"}}
    a, b, used = load_both(tmp_path, monkeypatch, text, m)
    assert used and a == b
    assert "no record of the file has the field 'modle'" in a[0]


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 2 * T), st.floats(allow_nan=False), st.text(max_size=5),
                  st.just(T), st.just("ok"), st.just("error"), st.lists(st.integers(), max_size=2))


@st.composite
def record(draw):
    keys = draw(st.lists(st.sampled_from(["id", "time", "duration", "model", "status", "meta", "other"]),
                         max_size=8))
    parts = [f'"id": {json.dumps(draw(st.sampled_from(["a", "b", "c"])))}', f'"time": {T}']
    parts += [f"{json.dumps(k)}: {json.dumps(draw(VALUE))}" for k in keys]
    if draw(st.booleans()):
        parts.append('"usage": {' + ", ".join(f"{json.dumps(k)}: {json.dumps(draw(VALUE))}"
                                             for k in draw(st.lists(st.sampled_from(["input", "output", "x"]),
                                                                    max_size=3))) + "}")
    return "{" + ", ".join(draw(st.permutations(parts))) + "}"


@FUZZ
@given(lines=st.lists(st.one_of(record(), st.sampled_from(["null", "{}", "[1]", "{", ""])), min_size=1,
                      max_size=10))
def test_fuzz_typed_and_line_readers_agree(tmp_path_factory, lines):
    tmp = tmp_path_factory.mktemp("typed")
    mp = pytest.MonkeyPatch()
    try:
        a, b, _used = load_both(tmp, mp, "\n".join(lines) + "\n", CALLS_MAP)
    finally:
        mp.undo()
    assert a == b


# ------------------------------------------------- clean files go straight in; the others through the staging table


def load_straight_and_staged(tmp_path: Path, monkeypatch, path: Path, mapping: dict, fmt: str):
    """Load the file as ingest does, and again with the survey failing (so through the staging table); return both
    results and whether the first went straight in."""
    straight = []
    real = ing._load

    def spy(con, src, t, run_id, p, offset, survey=None, ls=None, **kwargs):
        straight.append(survey is not None and survey.clean)
        return real(con, src, t, run_id, p, offset, survey, ls, **kwargs)

    one_read = ing._straight

    def spy_straight(*args):
        loaded = one_read(*args)
        if loaded is not None:  # inserted in one read: the clean load, without a survey
            straight.append(True)
        return loaded

    monkeypatch.setattr(ing, "_load", spy)
    monkeypatch.setattr(ing, "_straight", spy_straight)
    out = []
    for staged in (False, True):
        if staged:
            def refuse(*a):
                raise RuntimeError("no survey")
            monkeypatch.setattr(ing, "_survey", refuse)
            monkeypatch.setattr(ing, "_straight", lambda *a: None)
        db = wb.connect(":memory:")
        try:
            try:
                s = ing.ingest(db, path, format=fmt, mapping=mapping, progress=False).as_dict()
            except ing.IngestError as exc:
                s = str(exc)
            t = mapping["table"] if mapping else "calls"
            cols = [c[0] for c in db.duckdb.execute(f"describe {t}").fetchall() if c[0] != "ingest_run_id"]
            rows = db.duckdb.execute(f"select {', '.join(cols)} from {t} order by all").fetchall()
            q = db.duckdb.execute("select line_no, field, reason, raw from quarantine order by line_no").fetchall()
            out.append((s, rows, q))
        finally:
            db.close()
    return out[0], out[1], bool(straight) and straight[0]


FLAT_MAP = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "time", "unit": "s"},
                                          "latency_ms": {"field": "duration", "unit": "s"}, "model": "model",
                                          "input_tokens": "input", "status": {"value": "ok"}}}
FLAT = [{"id": f"c{i}", "time": T + i, "duration": 0.5 + i, "model": "m", "input": 10 * i} for i in range(20)]
FLAT_CASES = {
    "clean": (FLAT, True),
    "a check quarantines": (FLAT[:5] + [{**FLAT[5], "duration": -2}] + FLAT[6:], False),
    "a key repeats": (FLAT + [{**FLAT[3], "duration": 99}], False),
}


def write_flat_case(tmp_path: Path, fmt: str, name: str) -> tuple[Path, bool]:
    """The rows of FLAT_CASES[name] written as a file of ``fmt``; with whether it should go straight in."""
    import polars as pl

    rows, straight = FLAT_CASES[name]
    p = tmp_path / f"f.{fmt}"
    frame = pl.DataFrame(rows)
    {"csv": frame.write_csv, "parquet": frame.write_parquet, "jsonl": frame.write_ndjson}[fmt](p)
    return p, straight


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("name", sorted(FLAT_CASES))
def test_straight_and_staged_loads_agree(tmp_path, monkeypatch, fmt, name):
    p, straight = write_flat_case(tmp_path, fmt, name)
    a, b, went = load_straight_and_staged(tmp_path, monkeypatch, p, FLAT_MAP, fmt)
    assert a == b
    assert went is straight


def test_a_csv_record_duckdb_rejects_is_still_quarantined(tmp_path, monkeypatch):
    p = tmp_path / "f.csv"
    p.write_text(f"id,time,duration,model,input\nc1,{T},1,m,1\nc2,{T},1,m,1,extra\nc3,{T},1,m,1\n")
    a, b, went = load_straight_and_staged(tmp_path, monkeypatch, p, FLAT_MAP, "csv")
    assert a == b and not went
    assert a[0]["quarantined"] == 1 and a[2][0][0] == 3  # the record on line 3


def test_a_file_for_the_line_reader_is_read_once_not_surveyed_first(tmp_path, monkeypatch):
    """The survey pass is for sources cheap to read twice; the line reader (a JSON function per line) is not one:
    a file it reads goes to the staging table without a survey before it."""
    surveyed = []
    real = ing._survey

    def spy(con, src, ls, rows=None):
        surveyed.append(src.lines is not None or src.csv_opts is not None or "read_parquet" in src.sql)
        return real(con, src, ls, rows)

    one_read = []
    straight = ing._straight

    def spy_straight(con, src, *args):
        loaded = straight(con, src, *args)
        one_read.append((src.lines is not None, loaded is not None))
        return loaded

    monkeypatch.setattr(ing, "_survey", spy)
    monkeypatch.setattr(ing, "_straight", spy_straight)
    p = tmp_path / "f.jsonl"
    p.write_text("\n".join(call(i) for i in range(5)) + "\n")
    monkeypatch.setattr(ing, "_TYPED_JSON", False)
    s = ing.ingest(wb.connect(":memory:"), p, format="jsonl", mapping=CALLS_MAP, progress=False)
    assert s.inserted == 5 and surveyed == [] and one_read == []
    monkeypatch.setattr(ing, "_TYPED_JSON", True)
    s = ing.ingest(wb.connect(":memory:"), p, format="jsonl", mapping=CALLS_MAP, progress=False)
    # the typed reader's source, clean: inserted in one read, no survey
    assert s.inserted == 5 and surveyed == [] and one_read == [(True, True)]


def test_hostile_mapping_keys_reach_neither_reader_as_sql(tmp_path, monkeypatch):
    """Mapped field names go into both readers' SQL (JSON paths, read_json's columns and struct types): quotes,
    backslashes and SQL in them must be read as the keys they are, the same by both readers."""
    evil = "x'); DROP TABLE calls; --"
    m = {"table": "calls", "columns": {"call_id": "it's.id", "ts": {"field": "t's", "unit": "s"},
                                       "model": {"field": evil, "optional": True}, "feature": "a\\b",
                                       "status": {"value": "ok"}}}
    rows = [{"it's": {"id": f"c{i}"}, "t's": T + i, evil: "m", "a\\b": "f"} for i in range(3)]
    a, b, _used = load_both(tmp_path, monkeypatch, "\n".join(json.dumps(r) for r in rows) + "\n", m)
    assert a == b
    assert a[0]["inserted"] == 3
    assert sorted((r[0], r[9], r[12]) for r in a[1]) == [("c0", "f", "m"), ("c1", "f", "m"), ("c2", "f", "m")]
    # a double quote cannot be named in a JSON path: refused at the mapping, before any file is read
    with pytest.raises(ing.IngestError, match="without double quotes"):
        ing.load_mapping({**m, "columns": {**m["columns"], "feature": 'a"b'}})


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("name", sorted(FLAT_CASES))
def test_repeated_keys_found_in_passes_load_the_same(tmp_path, monkeypatch, fmt, name):
    # A file whose keys would not fit in the ingest memory limit (100M rows under 512 MB ran out of memory) has its
    # repeated keys found in passes over disjoint shares of the keys: the same decision (straight or staged), rows,
    # quarantine and counts as in one pass, both when the file goes straight in and when it is staged.
    p, straight = write_flat_case(tmp_path, fmt, name)
    one = load_straight_and_staged(tmp_path, monkeypatch, p, FLAT_MAP, fmt)
    monkeypatch.undo()
    passes: list[int] = []
    real = ing._repeated_keys

    def spy(con, rel, key, k):
        passes.append(k)
        return real(con, rel, key, k)

    monkeypatch.setattr(ing, "_repeated_keys", spy)
    monkeypatch.setattr(ing, "_KEY_BYTES", 2 ** 26)  # ~21 rows x 64 MiB against the 512 MB limit: 3 passes
    many = load_straight_and_staged(tmp_path, monkeypatch, p, FLAT_MAP, fmt)
    assert many == one
    assert one[2] is straight
    assert passes and min(passes) >= 2


def test_key_passes_follow_the_rows_and_the_memory_limit():
    con = wb.connect(":memory:").duckdb
    con.execute("set memory_limit = '512MB'")
    assert ing._key_passes(con, 1_000_000) == 1
    assert ing._key_passes(con, None) == 1
    assert 6 <= ing._key_passes(con, 100_000_000) <= 10


# ----------------------------------------------------------------------------------- a clean file in one read

def load_files_both_ways(tmp_path: Path, monkeypatch, files: list[tuple[str, str]], fmt: str = "jsonl",
                         mapping: dict | None = CALLS_MAP):
    """Load the files (name, text) one after the other into one database, with the one-read load allowed and with
    it refused (every file surveyed first); return both results (per file: summary, then the table and the
    quarantine) and, per file, whether it went in in one read."""
    paths = []
    for name, text in files:
        p = tmp_path / name
        p.write_text(text)
        paths.append(p)
    one_read: list[bool] = []
    real = ing._straight

    def spy(*args):
        loaded = real(*args)
        one_read.append(loaded is not None)
        return loaded

    out = []
    for allowed in (True, False):
        monkeypatch.setattr(ing, "_straight", spy if allowed else (lambda *a: None))
        db = wb.connect(":memory:")
        try:
            got = []
            for p in paths:
                try:
                    s = ing.ingest(db, p, format=fmt, mapping=mapping, progress=False).as_dict()
                    s = {k: v for k, v in s.items() if k != "files"}
                except ing.IngestError as exc:
                    s = str(exc)
                got.append(s)
            t = mapping["table"] if mapping else "calls"
            cols = [c[0] for c in db.duckdb.execute(f"describe {t}").fetchall() if c[0] != "ingest_run_id"]
            got.append(db.duckdb.execute(f"select {', '.join(cols)} from {t} order by all").fetchall())
            got.append(db.duckdb.execute("select line_no, field, reason, raw from quarantine order by all").fetchall())
            out.append(got)
        finally:
            db.close()
    return out[0], out[1], one_read


def lines(*recs: str) -> str:
    return "\n".join(recs) + "\n"


OTEL = Path(__file__).parent / "data" / "otel"


def _otlp_line(*span_ids: str, **changes) -> str:
    """One OTLP export line of the openai_chat span, once per id (``changes`` set on the last span)."""
    line = json.loads((OTEL / "openai_chat.jsonl").read_text().splitlines()[0])
    scope = line["resourceSpans"][0]["scopeSpans"][0]
    span = scope["spans"][0]
    scope["spans"] = [dict(span, spanId=i) for i in span_ids]
    scope["spans"][-1].update(changes)
    return json.dumps(line)


CLEAN_OTLP = [_otlp_line("a000000000000001", "a000000000000002"), "", '{"resourceSpans": []}',
              _otlp_line("a000000000000003")]
OTLP_ONE_READ = {  # lines of the file, lines loaded before it, whether it goes in in one read, counts
    "clean": (CLEAN_OTLP, [], True, (3, 3, 0, 0)),
    "a line that is not JSON": (CLEAN_OTLP + ["{bad"], [], False, (4, 3, 0, 1)),
    "a span to quarantine": (CLEAN_OTLP + [_otlp_line("a000000000000004", endTimeUnixNano="1")], [], False,
                             (4, 3, 0, 1)),
    "a span id repeated in the file": (CLEAN_OTLP + [_otlp_line("a000000000000001")], [], False, (4, 3, 1, 0)),
    "a span the table holds": (CLEAN_OTLP, [_otlp_line("a000000000000002")], False, (3, 2, 1, 0)),
    "a line with the reserved bytes": (CLEAN_OTLP + [_otlp_line("a000000000000005", name="x@y").replace(
        "x@y", "x\x1e\x1fy")], [], False, (4, 3, 0, 1)),
}


@pytest.mark.parametrize("case", sorted(OTLP_ONE_READ))
def test_an_otlp_file_read_on_all_cores_loads_as_read_in_line_order(tmp_path, monkeypatch, case):
    """A clean OTLP JSON file is read without line numbers (on all cores) and inserted in one read; any other is
    loaded in line order, as before: both give the same rows, counts and quarantine."""
    spans, before, clean, want = OTLP_ONE_READ[case]
    files = ([("before.jsonl", lines(*before))] if before else []) + [("spans.jsonl", lines(*spans))]
    a, b, one_read = load_files_both_ways(tmp_path, monkeypatch, files, fmt="otel", mapping=None)
    assert a == b
    s = a[len(files) - 1]
    assert (s["read"], s["inserted"], s["duplicates"], s["quarantined"]) == want
    assert one_read[-1] is clean


def test_a_clean_file_goes_in_in_one_read_without_a_survey(tmp_path, monkeypatch):
    surveyed = []
    real = ing._survey
    monkeypatch.setattr(ing, "_survey", lambda *a: surveyed.append(1) or real(*a))
    a, b, one_read = load_files_both_ways(tmp_path, monkeypatch, [("a.jsonl", lines(*(call(i) for i in range(30))))])
    assert a == b and a[0]["inserted"] == 30 and len(a[1]) == 30
    assert one_read == [True] and surveyed == [1]  # the one survey: the load with the one-read path refused


@pytest.mark.parametrize("name, second, went", [
    # a row a check quarantines, whose key is already in the table: the anti-join would drop it, the guard must not
    ("bad row with a key in the table", lines(call(2, duration=-1), call(100)), False),
    ("bad row, new key", lines(call(100), call(101, duration="x")), False),
    ("key repeated in the file", lines(call(100), call(101), call(100, model="other")), False),
    ("keys already in the table", lines(call(1), call(100), call(2)), False),
    ("a line with no value", lines(call(100), json.dumps({"other": 1}), call(101)), False),
    ("clean, new keys", lines(call(100), call(101)), True),
])
def test_one_read_backs_off_to_the_survey_with_the_same_result(tmp_path, monkeypatch, name, second, went):
    first = lines(*(call(i) for i in range(5)))
    a, b, one_read = load_files_both_ways(tmp_path, monkeypatch, [("a.jsonl", first), ("b.jsonl", second)])
    assert a == b
    assert one_read == [True, went]


def test_a_file_loaded_before_is_not_tried_in_one_read(tmp_path, monkeypatch):
    # a re-load is mostly duplicates: the guarded insert would read the file for few new rows, then the survey again
    # (a re-load that is not replayed: a row of the first load deleted since, say)
    monkeypatch.setattr(ing, "_replay", lambda *a: None)
    worth = []
    real = ing._one_read_records
    monkeypatch.setattr(ing, "_one_read_records", lambda *a: worth.append(r := real(*a)) or r)
    text = lines(*(call(i) for i in range(5)))
    a, b, one_read = load_files_both_ways(tmp_path, monkeypatch, [("a.jsonl", text), ("again.jsonl", text)])
    assert a == b and a[1]["duplicates"] == 5
    assert one_read == [True, False] and worth == [5, None]  # the second (same content): not tried


def test_a_mapped_field_found_only_past_the_head_is_found_by_the_survey(tmp_path, monkeypatch):
    # the head check reads the first records only; a field that appears later sends the file to the survey, which
    # finds it (and a field no record has is still an error naming the mapping key)
    monkeypatch.setattr(ing, "_HEAD_RECORDS", 2)
    recs = [json.loads(call(i)) for i in range(6)]
    for r in recs[:4]:
        del r["model"]
    a, b, one_read = load_files_both_ways(tmp_path, monkeypatch, [("a.jsonl", lines(*map(json.dumps, recs)))])
    assert a == b and a[0]["inserted"] == 6 and one_read == [False]
    for r in recs:
        r.pop("model", None)
    a, b, one_read = load_files_both_ways(tmp_path, monkeypatch, [("b.jsonl", lines(*map(json.dumps, recs)))])
    assert a == b and "no record of the file has the field 'model'" in a[0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_one_read_for_csv_and_parquet_backs_off_the_same(tmp_path, monkeypatch, fmt):
    import polars as pl

    files = []
    for name, rows in [("a", FLAT[:10]), ("b", FLAT[5:8] + [{**FLAT[12], "duration": -2}] + FLAT[14:]),
                       ("c", [{**FLAT[3], "id": "new"}, {**FLAT[4], "id": "new2"}])]:
        p = tmp_path / f"{name}.{fmt}"
        frame = pl.DataFrame(rows)
        frame.write_csv(p) if fmt == "csv" else frame.write_parquet(p)
        files.append(p)
    one_read: list[bool] = []
    real = ing._straight
    out = []
    for allowed in (True, False):
        monkeypatch.setattr(ing, "_straight", (lambda *a: one_read.append(r := real(*a)) or r) if allowed
                            else (lambda *a: None))
        db = wb.connect(":memory:")
        try:
            got = [{k: v for k, v in ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False).as_dict().items()
                    if k != "files"} for p in files]
            got.append(db.duckdb.execute("select * exclude (ingest_run_id) from calls order by all").fetchall())
            got.append(db.duckdb.execute("select line_no, field, reason, raw from quarantine order by all").fetchall())
            out.append(got)
        finally:
            db.close()
    assert out[0] == out[1]
    assert [r is not None for r in one_read] == [True, False, True]
    assert out[0][1]["quarantined"] == 1 and out[0][1]["duplicates"] == 3


# ------------------------------------------------------------------------- Parquet numbers taken as they are

def loaded(path: Path, mapping: dict):
    """Load ``path`` into a new in-memory database: the summary (without the per-file part), the calls and the
    quarantine, each in a fixed order."""
    db = wb.connect(":memory:")
    try:
        s = {k: v for k, v in ing.ingest(db, path, mapping=mapping, progress=False).as_dict().items() if k != "files"}
        rows = db.duckdb.execute("select * exclude (ingest_run_id) from calls order by all").fetchall()
        q = db.duckdb.execute("select line_no, field, reason, raw from quarantine order by all").fetchall()
        return s, rows, q
    finally:
        db.close()


def by_number_and_by_text(monkeypatch, as_text: tuple, load):
    """``load()`` twice: Parquet numbers typed from their value, then from their text (``as_text``: the name in
    ingest and the value that sends every column through its text); also the ``numbers`` of each Parquet source."""
    numbers = []
    real = ing._parquet_source
    monkeypatch.setattr(ing, "_parquet_source", lambda *a: numbers.append((src := real(*a)).numbers) or src)
    by_number = load()
    monkeypatch.setattr(ing, *as_text)
    return numbers, [by_number, load()]


def test_parquet_numbers_load_the_same_as_their_text(tmp_path, monkeypatch):
    """A Parquet DOUBLE or integer column mapped to a numeric or epoch column is typed from its value, not from its
    text: the same rows, quarantine (reasons name the same text) and counts as through the text, on the values where
    the two could part: NaN, infinities, -0.0, fractions of integers, out-of-range, negative and implausible ones."""
    import polars as pl

    nan, inf = float("nan"), float("inf")
    time = [T + 0.5, T, nan, inf, -inf, -0.0, 1e-5, 1e20, T + 1e-6, None, T + 7, T + 8, T + 9, T + 10]
    duration = [0.25, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, nan, inf, -1.5, 1e12, -0.0, None]
    output = [10.0, 10.5, nan, 1e19, -3.0, 2.0 ** 53, 0.0, None, 7.0, 1e-300, 5.0, 6.0, 7.0, 8.0]
    n = len(time)
    frame = pl.DataFrame({
        "id": [f"c{i}" for i in range(n)],
        "time": pl.Series(time, dtype=pl.Float64),
        "duration": pl.Series(duration, dtype=pl.Float64),
        "input": pl.Series([5, -1, 2 ** 62, None, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], dtype=pl.Int64),
        "output": pl.Series(output, dtype=pl.Float64),
        "att": pl.Series([1, -2, 3, None, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], dtype=pl.Int16),
        "end_ms": pl.Series([(T + 60) * 1000 + i for i in range(n - 2)] + [-5, None], dtype=pl.Int64),
        "cost": pl.Series([0.1] * n, dtype=pl.Float32),  # read through its text
    })
    p = tmp_path / "f.parquet"
    frame.write_parquet(p)
    mapping = {"table": "calls", "columns": {
        "call_id": "id", "ts": {"field": "time", "unit": "s"}, "latency_ms": {"field": "duration", "unit": "s"},
        "input_tokens": "input", "output_tokens": "output", "attempt": "att",
        "end_ts": {"field": "end_ms", "unit": "ms"}, "cost_usd": "cost", "status": {"value": "ok"},
        "model": {"field": "id", "default": "m"}}}
    numbers, out = by_number_and_by_text(monkeypatch, ("_PARQUET_NUMBERS", {}), lambda: loaded(p, mapping))
    assert numbers[0] == {"ts": "DOUBLE", "latency_ms": "DOUBLE", "input_tokens": "INTEGER",
                          "output_tokens": "DOUBLE", "attempt": "INTEGER", "end_ts": "INTEGER"}
    assert numbers[1] == {}
    assert out[0] == out[1]
    s, rows, q = out[0]
    assert s["inserted"] + s["quarantined"] == n and s["quarantined"] >= 8 and len(rows) == s["inserted"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_reload_whose_rows_are_all_in_the_table_is_read_once(tmp_path, fmt):
    # the survey counts the rows whose key the table holds: when that is every row, there is no insert pass
    p, _ = write_flat_case(tmp_path, fmt, "clean")
    db = wb.connect(":memory:")
    try:
        first = ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)
        again = ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)
        assert (first.inserted, again.inserted, again.duplicates) == (20, 0, 20)
        assert again.files[0]["seconds"]["write"] == 0.0
        # a row deleted since: the re-load puts it back (the file is not skipped for having been loaded before)
        db.duckdb.execute("delete from calls where call_id in ('c3', 'c17')")
        third = ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)
        assert (third.inserted, third.duplicates) == (2, 18)
        assert third.files[0]["seconds"]["write"] > 0
        assert db.duckdb.execute("select count(*), count(distinct call_id) from calls").fetchone() == (20, 20)
    finally:
        db.close()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_table_holding_a_key_twice_still_loads_right(tmp_path, fmt):
    # the survey joins the file to the table's keys; a key the table holds twice (rows written by hand) repeats the
    # file's row in that join: the counts then disagree, the file is staged, and the result is still exact
    p, _ = write_flat_case(tmp_path, fmt, "clean")
    db = wb.connect(":memory:")
    try:
        db.duckdb.execute(f"insert into calls (call_id, ts, status) values ('c3', to_timestamp({T}), 'ok'), "
                          f"('c3', to_timestamp({T}), 'ok')")
        s = ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)
        assert (s.read, s.inserted, s.duplicates, s.quarantined) == (20, 19, 1, 0)
        again = ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)
        assert (again.read, again.inserted, again.duplicates) == (20, 0, 20)
        assert db.duckdb.execute("select count(*), count(distinct call_id) from calls").fetchone() == (21, 20)
    finally:
        db.close()


def test_parquet_decimals_load_the_same_as_their_text(tmp_path, monkeypatch):
    """A Parquet DECIMAL column (warehouse exports: money as DECIMAL(18, 6), epoch seconds as DECIMAL(23, 2)) is
    typed from its value, 15x faster than through its text, with the same rows, quarantine (reasons name the
    decimal's own text) and counts: values past 2^53 unscaled and scales past 22 go through the text."""
    con = __import__("duckdb").connect()
    p = tmp_path / "d.parquet"
    ts = ["1763632800.05", "1763632800", "-5.25", "0.00", "100000000000000000000.00", "1763632801.99", None,
          "1763632802.10", "1763632803.33", "1763632804.44", "1763632805.55", "1763632806.66"]
    n = len(ts)
    col = lambda vals, typ: "[" + ", ".join("NULL" if v is None else f"'{v}'::{typ}" for v in vals) + "]"  # noqa: E731
    lat = ["0.250", "1.000", "-1.500", "999999999.999", "2.125", "3.000", None, "4.5", "0.001", "5", "6", "7"]
    tok = ["12", "-3", "999999999999999999", None, "0", "5", "6", "7", "8", "9", "10", "11"]
    frac = ["12.50", "3.00", "7.25", "0.00", None, "1.00", "2.00", "3.00", "4.00", "5.00", "6.00", "7.00"]
    cost = ["0.000123456", "123456789012345678.123456789", "-0.5", None, "1.1", "2.2", "3.3", "4.4", "5.5",
            "6.6", "7.7", "8.8"]
    tiny = ["0.0000000000000000000000001"] + [None] * (n - 1)
    ns = ["1763632800123456789", "1763632800000000001"] + ["1763632800999999999"] * (n - 2)
    end_ms = ["1763632860000", "-5"] + ["1763632870000"] * (n - 2)
    con.execute(f"""COPY (SELECT 'c' || i AS id, {col(ts, 'DECIMAL(23,2)')}[i] AS "time",
                               {col(lat, 'DECIMAL(12,3)')}[i] AS duration, {col(tok, 'DECIMAL(18,0)')}[i] AS "input",
                               {col(frac, 'DECIMAL(10,2)')}[i] AS "output", {col(cost, 'DECIMAL(38,9)')}[i] AS cost,
                               {col(tiny, 'DECIMAL(30,28)')}[i] AS tiny,
                               {col(ns, 'DECIMAL(38,0)')}[i] AS ns, {col(end_ms, 'DECIMAL(18,0)')}[i] AS end_ms
                        FROM range(1, {n + 1}) r(i)) TO '{p}' (FORMAT parquet)""")
    con.close()
    mapping = {"table": "calls", "columns": {
        "call_id": "id", "ts": {"field": "time", "unit": "s"}, "latency_ms": {"field": "duration", "unit": "s"},
        "input_tokens": "input", "output_tokens": "output", "cost_usd": "cost", "reasoning_tokens": "tiny",
        "end_ts": {"field": "end_ms", "unit": "ms"}, "status": {"value": "ok"}}}
    mapping_ns = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "ns", "unit": "ns"},
                                                "status": {"value": "ok"}}}
    numbers, out = by_number_and_by_text(monkeypatch, ("_parquet_number_kind", lambda typ: None),
                                         lambda: [loaded(p, m) for m in (mapping, mapping_ns)])
    assert numbers[0] == {"ts": "DECIMAL:2", "latency_ms": "DECIMAL:3", "input_tokens": "DECIMAL:0",
                          "output_tokens": "DECIMAL:2", "cost_usd": "DECIMAL:9", "end_ts": "DECIMAL:0"}
    assert numbers[1] == {"ts": "DECIMAL:0"} and numbers[2] == numbers[3] == {}
    assert out[0] == out[1]
    (s, rows, q), (s_ns, rows_ns, _q) = out[0]
    reasons = [r[2] for r in q]
    assert s["quarantined"] >= 5 and s["inserted"] + s["quarantined"] == n
    assert "not an integer in output_tokens: '12.50'" in reasons  # the decimal's own text
    assert any(r.startswith("unparseable timestamp in ts: '100000000000000000000.00'") for r in reasons)
    assert s_ns["inserted"] == n and rows_ns[0][3].microsecond == 123456  # nanoseconds truncated to microseconds


def _not_read(monkeypatch) -> None:
    """Make every way of reading a file fail: a load that still reads it raises."""
    from workbench.io import otlp_proto

    def boom(*a, **k):
        raise AssertionError("the file was read again")

    for name in ("_straight", "_survey", "_load", "_jsonl_source", "_csv_source", "_parquet_source", "_otel_source",
                 "_records_source"):
        monkeypatch.setattr(ing, name, boom)
    monkeypatch.setattr(otlp_proto, "file_to_jsonl", boom)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_reload_of_a_mapped_file_loaded_whole_is_not_read_again(tmp_path, fmt, monkeypatch):
    """The same bytes, the same mapping and the same version, every row of that load still in the table: the counts
    of a full re-load (all duplicates) without reading the file. Another mapping, a row deleted since, or a run
    recorded before mappings were (no mapping hash) read it in full."""
    p, _ = write_flat_case(tmp_path, fmt, "clean")
    counts = lambda s: (s.read, s.inserted, s.duplicates, s.quarantined)  # noqa: E731
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        assert counts(ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)) == (20, 20, 0, 0)
        with monkeypatch.context() as m:
            _not_read(m)
            again = ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)
        assert counts(again) == (20, 0, 20, 0)
        first_run = db.duckdb.execute("select run_id from ingest_runs order by started_at limit 1").fetchone()[0]
        assert again.files[0]["same_as"] == first_run and f"not read again: loaded whole by run {first_run}" in str(again)
        runs = db.duckdb.execute("select count(*), count(distinct mapping_hash), min(rows_duplicate) "
                                 "from ingest_runs").fetchone()
        assert runs == (2, 1, 0)
        # another mapping (input_tokens from another field): read in full, and its rows are duplicates too
        other = {"table": "calls", "columns": {**FLAT_MAP["columns"], "input_tokens": {"field": "input",
                                                                                      "default": 0}}}
        assert counts(ing.ingest(db, p, format=fmt, mapping=other, progress=False)) == (20, 0, 20, 0)
        with monkeypatch.context() as m:
            _not_read(m)
            with pytest.raises(AssertionError, match="read again"):
                ing.ingest(db, p, format=fmt, mapping=other, progress=False)
        # a row deleted since: read, and the row goes in again
        db.duckdb.execute("delete from calls where call_id = 'c4'")
        assert counts(ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)) == (20, 1, 19, 0)
        # runs recorded without a mapping hash (a database of schema version 1): read in full
        db.duckdb.execute("update ingest_runs set mapping_hash = NULL")
        with monkeypatch.context() as m:
            _not_read(m)
            with pytest.raises(AssertionError, match="read again"):
                ing.ingest(db, p, format=fmt, mapping=FLAT_MAP, progress=False)
    finally:
        db.close()


@pytest.mark.parametrize("name", ["openai_chat.jsonl", "proto"])
def test_a_reload_of_otlp_spans_loaded_whole_is_not_read_again(tmp_path, name, monkeypatch):
    from google.protobuf import json_format

    from workbench.io import otlp_proto

    src = Path(__file__).parent / "data" / "otel" / "openai_chat.jsonl"
    if name == "proto":
        p = tmp_path / "spans.pb"
        with open(p, "wb") as out:
            for line in src.read_bytes().splitlines():
                if line.strip():
                    msg = json_format.Parse(line, otlp_proto._request_class()(), ignore_unknown_fields=True)
                    out.write(otlp_proto.frame(msg.SerializeToString()))
    else:
        p = tmp_path / name
        p.write_bytes(src.read_bytes())
    db = wb.connect(":memory:")
    try:
        first = ing.ingest(db, p, progress=False)
        assert first.read > 0 and first.inserted == first.read
        with monkeypatch.context() as m:
            _not_read(m)
            again = ing.ingest(db, p, progress=False)
        assert (again.read, again.inserted, again.duplicates) == (first.read, 0, first.read)
    finally:
        db.close()
