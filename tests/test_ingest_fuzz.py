"""Standing fuzz suite of ingest: a corpus of malformed files per format, and generated files per parser.

For every parser (OTLP JSON, mapped JSONL, CSV, Parquet) and every input: no crash (an IngestError is the only
exception allowed, and then nothing of the file is written), and the records of the file, counted here
independently of the loader (by hand for the corpus; Python's json/csv modules and pyarrow for generated files),
equal inserted + duplicates + quarantined. Example counts are small: the whole module runs in about a minute.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.io.ingest import IngestError, ingest

CORPUS = Path(__file__).parent / "data" / "malformed"
EXPECTED = json.loads((CORPUS / "EXPECTED.json").read_text())
T = 1763632800  # 2025-11-20 10:00 UTC
FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def _load(path: Path, fmt: str, mapping=None):
    """Ingest one file into a fresh database: (summary or the IngestError, row counts of the tables)."""
    db = wb.connect(":memory:")
    try:
        try:
            s = ingest(db, path, format=fmt, mapping=mapping, progress=False)
        except IngestError as exc:
            s = exc
        table = "calls" if mapping is None else (mapping["table"] if isinstance(mapping, dict) else "feedback")
        n = {t: db.duckdb.execute(f"select count(*) from {t}").fetchone()[0] for t in (table, "quarantine")}
        again = None if isinstance(s, IngestError) else ingest(db, path, format=fmt, mapping=mapping, progress=False)
        return s, n, again
    finally:
        db.close()


def _holds(s, n: dict, again, records: int) -> None:
    if isinstance(s, IngestError):
        assert sum(n.values()) == 0, "a failed file wrote rows"
        return
    assert s.read == records, (s.as_dict(), records)
    assert s.inserted + s.duplicates + s.quarantined == records
    assert sum(s.reasons.values()) == s.quarantined
    table, quarantine = n.values()
    assert (table, quarantine) == (s.inserted, s.quarantined)
    # loading the same file again: nothing new, everything accounted for again
    assert again.read == records and again.inserted == 0 and again.duplicates == s.inserted + s.duplicates


# ------------------------------------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_corpus(name):
    fmt = name.split("/")[0]
    path = CORPUS / name
    mapping = None if fmt == "otel" else CORPUS / fmt / "mapping.toml"
    s, n, again = _load(path, fmt, mapping)
    want = EXPECTED[name]
    if "error" in want:
        assert isinstance(s, IngestError) and want["error"] in str(s), s
        assert str(path) in str(s)  # the message names the file
        assert sum(n.values()) == 0
        return
    assert not isinstance(s, IngestError), s
    _holds(s, n, again, want["records"])


def test_corpus_covers_every_format():
    assert {k.split("/")[0] for k in EXPECTED} == {"csv", "jsonl", "otel", "parquet"}
    assert all((CORPUS / k).exists() for k in EXPECTED)


# ---------------------------------------------------------------------------------------------- generated: OTLP

ANY = st.one_of(st.none(), st.booleans(), st.integers(-2, 10**20), st.text(max_size=8),
                st.sampled_from(["-1", "0", "1e18", str(T * 10**9), str(T * 10**9 + 10**9), "abc", ""]))


@st.composite
def spans(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(ANY)  # not even an object
    sp = {"traceId": draw(st.sampled_from(["a" * 32, "", None, 5])),
          "spanId": draw(st.sampled_from(["%016x" % i for i in range(6)] + [None, 7])),
          "name": draw(st.sampled_from(["chat", None, 3])),
          "startTimeUnixNano": draw(st.sampled_from([str(T * 10**9), "-1", "0", None, "x", T * 10**9])),
          "endTimeUnixNano": draw(st.sampled_from([str(T * 10**9 + 10**9), str(T * 10**9), "1", None])),
          "attributes": draw(st.one_of(st.just([]), st.lists(st.fixed_dictionaries(
              {"key": st.sampled_from(["gen_ai.usage.input_tokens", "gen_ai.request.model", "error.type", "x"]),
               "value": st.one_of(st.fixed_dictionaries({"intValue": ANY}), st.fixed_dictionaries(
                   {"stringValue": ANY}), ANY)}), max_size=3), ANY))}
    return {k: v for k, v in sp.items() if draw(st.integers(0, 6))}  # some members missing


@st.composite
def otlp_lines(draw):
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(st.sampled_from(["{bad", "[]", "null", "42", '{"resourceSpans": 5}', '{"x": 1}', "", "   "]))
    if kind == 1:
        return json.dumps({"resourceSpans": draw(st.lists(ANY, max_size=2))})
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [
        {"scope": {"name": "s"}, "spans": draw(st.lists(spans(), max_size=4))}]}]})


def otlp_records(text: str) -> int:
    """Spans of the file, plus one record per non-blank line that is not an OTLP export (json module). A file whose
    only line is an array is a JSON array document (``JSON.stringify`` output, :func:`workbench.io.records.json_layout`):
    its elements are its records, none for ``[]``."""
    nonblank = [line for line in text.split("\n") if line.strip()]
    if len(nonblank) == 1:
        try:
            only = json.loads(nonblank[0])
        except ValueError:
            only = None
        if isinstance(only, list):
            return len(only)  # (the generator's only array line is [])
    n = 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            n += 1
            continue
        rs = obj.get("resourceSpans") if isinstance(obj, dict) else None
        if not isinstance(rs, list):
            n += 1
            continue
        for r in rs:
            for ss in (r.get("scopeSpans") or []) if isinstance(r, dict) else []:
                sps = ss.get("spans") if isinstance(ss, dict) else None
                n += len(sps) if isinstance(sps, list) else 0
    return n


@FUZZ
@given(lines=st.lists(otlp_lines(), max_size=6))
def test_fuzz_otlp(tmp_path_factory, lines):
    p = tmp_path_factory.mktemp("otlp") / "t.jsonl"
    text = "\n".join(lines) + "\n"
    p.write_text(text)
    s, n, again = _load(p, "otel")
    _holds(s, n, again, otlp_records(text))


# --------------------------------------------------------------------------------------------- generated: JSONL

VALUE = st.one_of(st.just(T), st.just(str(T)), st.just("thumbs"), st.just("rating"), ANY)
JSONL_MAP = {"table": "feedback", "columns": {"call_id": "id", "ts": {"field": "ts", "unit": "s"}, "kind": "kind",
                                              "value": {"field": "value", "optional": True}}}


@st.composite
def jsonl_lines(draw):
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from(["{", "[1]", "nul", "\u00a0", "\u3000 ", "\t", '{"id": "a", "id": "b"}',
                                     "\x1e\x1f", '"s"']))
    if kind == 1:
        return draw(st.text(max_size=20)).replace("\n", " ").replace("\r", " ")
    keys = draw(st.lists(st.sampled_from(["id", "ts", "kind", "value", "other"]), max_size=6))
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(draw(VALUE))}" for k in ["id", "ts", "kind", *keys]) + "}"


def jsonl_records(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.strip())


@FUZZ
@given(lines=st.lists(jsonl_lines(), max_size=12))
def test_fuzz_jsonl(tmp_path_factory, lines):
    p = tmp_path_factory.mktemp("jsonl") / "t.jsonl"
    text = "\n".join(lines) + "\n"
    p.write_bytes(text.encode("utf-8", "surrogatepass"))
    s, n, again = _load(p, "jsonl", JSONL_MAP)
    _holds(s, n, again, jsonl_records(text))


# ----------------------------------------------------------------------------------------------- generated: CSV

CELL = st.one_of(st.sampled_from(["", str(T), "thumbs", "1", "-1", "nan", "x\ny", 'a"b', '"q"', '"open', "é漢",
                                  "=cmd|' /C calc'!A0", " "]), st.text(alphabet="ab,\"\n\r ;'", max_size=6))
CSV_MAP = {"table": "feedback", "columns": {"call_id": "id", "ts": {"field": "ts", "unit": "s"}, "kind": "kind",
                                            "value": "value"}}


def csv_records(text: str) -> int:
    """Records after the header, by Python's csv module (blank lines are not records)."""
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=False))
    return max(sum(1 for r in rows if r) - 1, 0)


@FUZZ
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=6), max_size=10), quote_all=st.booleans())
def test_fuzz_csv(tmp_path_factory, rows, quote_all):
    p = tmp_path_factory.mktemp("csv") / "t.csv"
    if quote_all:  # well-formed CSV
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([["id", "ts", "kind", "value"], *rows])
        text = buf.getvalue()
    else:  # cells written raw: stray quotes, broken records
        text = "id,ts,kind,value\n" + "".join(",".join(r) + "\n" for r in rows)
    p.write_text(text, newline="")
    s, n, again = _load(p, "csv", CSV_MAP)
    if isinstance(s, IngestError):
        assert not quote_all or "never closed" not in str(s), s  # well-formed CSV always loads
        assert re.search(r"(line \d+|records|could not be loaded)", str(s)), s
        assert sum(n.values()) == 0
        return
    _holds(s, n, again, csv_records(text))


# ------------------------------------------------------------------------------------------- generated: Parquet


@st.composite
def parquet_tables(draw):
    import pyarrow as pa

    n = draw(st.integers(0, 8))
    col = lambda strat: [draw(strat) for _ in range(n)]  # noqa: E731
    ids = col(st.one_of(st.none(), st.sampled_from(["a", "b", "", "c"])))
    ts_type = draw(st.sampled_from(["int", "str", "float"]))
    ts = {"int": col(st.one_of(st.none(), st.integers(-2**40, 2**40), st.just(T))),
          "str": col(st.one_of(st.none(), st.text(max_size=5), st.just(str(T)))),
          "float": col(st.one_of(st.none(), st.floats(allow_nan=True), st.just(float(T))))}[ts_type]
    kinds = col(st.one_of(st.none(), st.sampled_from(["thumbs", "rating", "x", ""])))
    values = col(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
    return pa.table({"id": pa.array(ids, pa.string()), "ts": pa.array(ts), "kind": pa.array(kinds, pa.string()),
                     "value": pa.array(values, pa.float64())})


@FUZZ
@given(table=parquet_tables())
def test_fuzz_parquet(tmp_path_factory, table):
    import pyarrow.parquet as pq

    p = tmp_path_factory.mktemp("pq") / "t.parquet"
    pq.write_table(table, p)
    s, n, again = _load(p, "parquet", CSV_MAP)
    assert not isinstance(s, IngestError), s
    _holds(s, n, again, table.num_rows)


# ------------------------------------------------------------- the byte count of plain CSV against the csv module


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(["a", ",", "\n", "\r\n", "\r", '"', " ", "é", "\ufeff", "1"]), max_size=30).map("".join),
       chunk=st.sampled_from([1, 2, 3, 5, 1 << 20]), opts=st.sampled_from([{}, {"header": False}, {"quote": ""}]))
def test_plain_csv_is_counted_by_bytes_as_the_csv_module_counts_it(tmp_path_factory, text, chunk, opts):
    """A CSV file without quotes, blank lines or lone CRs is counted by its newlines; every file the byte count takes
    must give the csv module's count (the others return None and go to the csv module)."""
    from workbench.io import ingest as ing

    p = tmp_path_factory.mktemp("plain") / "t.csv"
    p.write_bytes(text.encode())
    old = ing._HASH_CHUNK
    ing._HASH_CHUNK = chunk
    try:
        got = ing._count_plain_csv(p, opts)
    finally:
        ing._HASH_CHUNK = old
    if got is not None:
        assert got == ing._count_csv_records(p, opts)
