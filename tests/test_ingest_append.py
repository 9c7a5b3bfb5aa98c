"""A file that grows by appending (a log ingested again every day) is read from where the last load stopped.

Each case loads the first part of a file, appends the rest, and loads it again; the result must be the one of loading
the whole file into a new database (rows, quarantine with its line numbers, counts), and the second load must read
only the appended bytes when the first load is known to be whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import workbench as wb
from workbench.io import ingest as ing

T = 1763632800  # 2025-11-20 10:00 UTC
DATA = Path(__file__).parent / "data"

FLAT_MAP = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "time", "unit": "s"},
                                          "latency_ms": {"field": "duration", "unit": "s"}, "model": "model",
                                          "input_tokens": "input", "status": {"value": "ok"}}}


def _flat(i: int, **changes) -> dict:
    return {"id": f"c{i}", "time": T + i, "duration": 0.5 + i, "model": "m", "input": 10 * i, **changes}


def _jsonl(recs: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in recs)


def _csv(recs: list[dict], header: bool) -> bytes:
    text = pl.DataFrame(recs).write_csv(include_header=header)
    return text.encode()


def _otlp(i: int, **changes) -> dict:
    line = json.loads((DATA / "otel" / "openai_chat.jsonl").read_text().splitlines()[0])
    scope = line["resourceSpans"][0]["scopeSpans"][0]
    scope["spans"] = [dict(scope["spans"][0], spanId=f"{i + 1:016x}", **changes)]
    return line


def _litellm(i: int, **changes) -> dict:
    rec = json.loads((DATA / "formats" / "litellm_payloads.jsonl").read_text().splitlines()[0])
    return {**rec, "id": f"chatcmpl-{i}", "startTime": T + i, "completionStartTime": T + i + 0.5, "endTime": T + i + 1.5,
            **changes}


def _part(fmt: str, idx: range, bad: int | None = None, header: bool = False) -> bytes:
    """Records ``idx`` of a file of ``fmt`` (record ``bad`` one to quarantine; CSV with its header line or not)."""
    if fmt in ("jsonl", "csv"):
        recs = [_flat(i, duration=-2) if i == bad else _flat(i) for i in idx]
        return _jsonl(recs) if fmt == "jsonl" else _csv(recs, header)
    if fmt == "otel":
        return _jsonl([_otlp(i, endTimeUnixNano="1") if i == bad else _otlp(i) for i in idx])
    return _jsonl([_litellm(i, startTime="not a time") if i == bad else _litellm(i) for i in idx])


def _case(fmt: str, n: int, bad: int | None = None) -> tuple[dict | None, bytes, bytes]:
    """(mapping, the file's first part: records 0..n/2-1, what is appended: the others)."""
    mapping = FLAT_MAP if fmt in ("jsonl", "csv") else None
    return mapping, _part(fmt, range(n // 2), bad, header=True), _part(fmt, range(n // 2, n), bad)


FORMATS = {"jsonl": "f.jsonl", "csv": "f.csv", "otel": "traces.jsonl", "litellm": "litellm.jsonl"}


def _load(db, path: Path, fmt: str, mapping):
    return ing.ingest(db, path, format=fmt, mapping=mapping, progress=False)


def _load_then_append(db, path: Path, fmt: str, mapping, first: bytes, more: bytes):
    """The file written as ``first`` and loaded, then ``more`` appended and loaded again: the two summaries."""
    path.write_bytes(first)
    one = _load(db, path, fmt, mapping)
    with path.open("ab") as fh:
        fh.write(more)
    return one, _load(db, path, fmt, mapping)


def _counts(s) -> tuple[int, int, int, int]:
    return s.read, s.inserted, s.duplicates, s.quarantined


def _tables(db) -> tuple[list, list]:
    calls = db.duckdb.execute("select * exclude (ingest_run_id) from calls order by call_id").fetchall()
    quarantine = db.duckdb.execute("select source_path, line_no, target_table, field, reason, raw from quarantine "
                                   "order by line_no").fetchall()
    return calls, quarantine


def _spy(monkeypatch) -> list[int]:
    """The sizes of the files each load reads (a load of the appended part reads a copy of it)."""
    sizes: list[int] = []
    real = ing._ingest_file

    def spy(con, plan, *a, **k):
        sizes.append(plan.path.stat().st_size)
        return real(con, plan, *a, **k)

    monkeypatch.setattr(ing, "_ingest_file", spy)
    return sizes


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_file_that_grew_is_read_from_where_the_last_load_stopped(tmp_path, fmt, monkeypatch):
    mapping, first, more = _case(fmt, 12, bad=9)
    path = tmp_path / FORMATS[fmt]
    path.write_bytes(first)
    db = wb.connect(tmp_path / "a.duckdb")
    whole = wb.connect(tmp_path / "b.duckdb")
    try:
        one = _load(db, path, fmt, mapping)
        assert _counts(one) == (6, 6, 0, 0)
        with path.open("ab") as fh:
            fh.write(more)
        sizes = _spy(monkeypatch)
        two = _load(db, path, fmt, mapping)
        header = len(first.split(b"\n", 1)[0]) + 1 if fmt == "csv" else 0
        assert sizes == [len(first) + len(more), len(more) + header]  # the file's size, then only what was appended
        assert two.files[0]["appended_to"] == one.files[0]["run_id"]
        assert "read from where run" in str(two)
        # the same as loading the whole file at once: rows, quarantine (the line of the whole file), counts
        full = _load(whole, path, fmt, mapping)
        assert _counts(two) == (12, 5, 6, 1) == (full.read, full.inserted - 6, 6, full.quarantined)
        assert _tables(db) == _tables(whole)
        assert _tables(db)[1][0][1] == (11 if fmt == "csv" else 10)  # record 9: line 10 (CSV: after the header)
        run = db.duckdb.execute("select rows_read, rows_inserted, rows_duplicate, rows_quarantined, bytes, "
                                "base_run_id from ingest_runs where run_id = ?", [two.files[0]["run_id"]]).fetchone()
        assert run == (6, 5, 0, 1, len(first) + len(more), one.files[0]["run_id"])  # what this run read
    finally:
        db.close()
        whole.close()


@pytest.mark.parametrize("fmt", ["jsonl", "litellm"])
def test_a_chain_of_appends_and_a_reload_of_it(tmp_path, fmt, monkeypatch):
    """Day after day: each load reads what was appended since the last; the same bytes again are not read at all,
    and count every record of the chain as read."""
    mapping, first, more = _case(fmt, 12)
    path = tmp_path / FORMATS[fmt]
    path.write_bytes(first)
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        runs = [_load(db, path, fmt, mapping)]
        for part in (more, _part(fmt, range(12, 18))):
            with path.open("ab") as fh:
                fh.write(part)
            runs.append(_load(db, path, fmt, mapping))
            assert runs[-1].files[0]["appended_to"] == runs[-2].files[0]["run_id"]
            assert runs[-1].inserted == 6 and runs[-1].quarantined == 0
        assert db.duckdb.execute("select count(*) from calls").fetchone()[0] == 18
        again = _load(db, path, fmt, mapping)
        assert _counts(again) == (18, 0, 18, 0) and again.files[0]["same_as"] == runs[-1].files[0]["run_id"]
        # a row of the first load deleted: the chain is not whole, the file is read in full and the row comes back
        db.duckdb.execute("delete from calls where ingest_run_id = ? and rowid = (select min(rowid) from calls)",
                          [runs[0].files[0]["run_id"]])
        with path.open("ab") as fh:
            fh.write(_part(fmt, range(18, 19)))
        sizes = _spy(monkeypatch)
        last = _load(db, path, fmt, mapping)
        assert last.files[0]["appended_to"] is None and len(sizes) == 1
        assert _counts(last) == (19, 2, 17, 0)
    finally:
        db.close()


@pytest.mark.parametrize("change", ["the beginning changed", "a record quarantined", "no newline at the end",
                                    "another mapping"])
def test_a_file_is_read_whole_when_its_beginning_is_not_known_whole(tmp_path, change, monkeypatch):
    recs = [_flat(i) for i in range(12)]
    if change == "a record quarantined":
        recs[2] = _flat(2, duration=-2)
    first, more = _jsonl(recs[:6]), _jsonl(recs[6:])
    if change == "no newline at the end":
        first = first[:-1]
        more = b"\n" + more
    path = tmp_path / "f.jsonl"
    path.write_bytes(first)
    db = wb.connect(tmp_path / "a.duckdb")
    whole = wb.connect(tmp_path / "b.duckdb")
    try:
        _load(db, path, "jsonl", FLAT_MAP)
        data = path.read_bytes()
        if change == "the beginning changed":
            data = data.replace(b'"model": "m"', b'"model": "n"', 1)
        path.write_bytes(data + more)
        mapping = FLAT_MAP
        if change == "another mapping":
            mapping = {**FLAT_MAP, "columns": {**FLAT_MAP["columns"], "input_tokens": {"field": "input",
                                                                                         "default": 0}}}
        sizes = _spy(monkeypatch)
        two = _load(db, path, "jsonl", mapping)
        assert two.files[0]["appended_to"] is None and sizes == [len(data) + len(more)]
        assert two.read == 12 and two.inserted == 6
    finally:
        db.close()
        whole.close()


def test_a_key_hashed_from_the_fields_is_read_whole(tmp_path, monkeypatch):
    """Without an id the key is a hash of the fields and the repeat's number in the whole file: a record appended
    that repeats one of the beginning is its second occurrence, a new row, which only a whole read numbers."""
    mapping = {"table": "calls", "columns": {k: v for k, v in FLAT_MAP["columns"].items() if k != "call_id"}}
    recs = [_flat(i) for i in range(6)]
    path = tmp_path / "f.jsonl"
    path.write_bytes(_jsonl(recs))
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        _load(db, path, "jsonl", mapping)
        with path.open("ab") as fh:
            fh.write(_jsonl([recs[0], _flat(6)]))
        sizes = _spy(monkeypatch)
        two = _load(db, path, "jsonl", mapping)
        assert two.files[0]["appended_to"] is None and len(sizes) == 1
        assert _counts(two) == (8, 2, 6, 0)  # the repeat of record 0 is a row of its own
    finally:
        db.close()


def test_a_hostile_file_name_grows_and_is_named_as_it_is(tmp_path):
    """The name reaches SQL (the runs' look-up, the reader of the copy) and the copy's folder: quotes, glob
    characters and spaces stay text, and the quarantine names the file as given, not its copy."""
    mapping, first, more = _case("jsonl", 12, bad=9)
    path = tmp_path / "it's [a]* %s;--.jsonl"
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        one, two = _load_then_append(db, path, "jsonl", mapping, first, more)
        assert two.files[0]["appended_to"] == one.files[0]["run_id"] and _counts(two) == (12, 5, 6, 1)
        assert db.duckdb.execute("select source_path, line_no from quarantine").fetchall() == [(str(path), 10)]
        assert db.duckdb.execute("select distinct source_path from ingest_runs").fetchall() == [(str(path),)]
    finally:
        db.close()


# ------------------------------------------------------------------------------------ a log still being written


def _grow(db, path: Path, fmt: str, mapping):
    return ing.ingest(db, path, format=fmt, mapping=mapping, progress=False, growing=True)


def _load_into_new(tmp_path: Path, path: Path, fmt: str, growing: bool):
    """One load of the file with the flat mapping into a new database (closed after)."""
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        return ing.ingest(db, path, format=fmt, mapping=FLAT_MAP, progress=False, growing=growing)
    finally:
        db.close()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_log_still_being_written_is_read_up_to_its_last_complete_line(tmp_path, fmt):
    """A writer appends record after record while the hourly load runs: each load reads the complete lines, leaves
    the half-written last one for the next load (nothing quarantined for it) and the next load reads from there. In
    the end the tables are those of loading the finished file at once."""
    mapping, first, more = _case(fmt, 12, bad=9)
    half = len(more) // 2
    cut_in_line = more.rfind(b"\n", 0, half) + 1 + 7  # 7 bytes into a record
    path = tmp_path / FORMATS[fmt]
    db = wb.connect(tmp_path / "a.duckdb")
    whole = wb.connect(tmp_path / "b.duckdb")
    try:
        path.write_bytes(first + more[:cut_in_line])
        one = _grow(db, path, fmt, mapping)
        assert one.quarantined == 0 and one.files[0]["left_unread"] == 7
        assert "7 bytes after the last complete line" in str(one)
        again = _grow(db, path, fmt, mapping)  # nothing new: the same complete lines, not read again
        assert again.files[0]["same_as"] == one.files[0]["run_id"] and again.inserted == 0
        path.write_bytes(first + more)
        two = _grow(db, path, fmt, mapping)
        assert two.files[0]["appended_to"] == one.files[0]["run_id"] and two.files[0]["left_unread"] == 0
        full = _load(whole, path, fmt, mapping)
        assert _counts(two) == (full.read, full.inserted - one.inserted, one.read, full.quarantined)
        assert _tables(db) == _tables(whole)
        assert db.duckdb.execute("select bytes from ingest_runs where run_id = ?",
                                 [one.files[0]["run_id"]]).fetchone()[0] == len(first) + cut_in_line - 7
    finally:
        db.close()
        whole.close()


def test_lines_appended_while_the_load_runs_wait_for_the_next_load(tmp_path, monkeypatch):
    """The load reads the bytes it hashed, a snapshot: what a writer appends meanwhile is neither read half nor
    counted twice; the next load reads it from where this one stopped."""
    mapping, first, more = _case("jsonl", 12)
    path = tmp_path / "f.jsonl"
    path.write_bytes(first)
    real = ing._scan

    def scan_then_write(p, *a, **k):
        got = real(p, *a, **k)
        if Path(p) == path:
            with path.open("ab") as fh:
                fh.write(more)
        return got

    monkeypatch.setattr(ing, "_scan", scan_then_write)
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        one = _grow(db, path, "jsonl", mapping)
        assert _counts(one) == (6, 6, 0, 0)
        monkeypatch.setattr(ing, "_scan", real)
        two = _grow(db, path, "jsonl", mapping)
        assert two.files[0]["appended_to"] == one.files[0]["run_id"] and _counts(two) == (12, 6, 6, 0)
    finally:
        db.close()


def test_a_log_with_no_complete_line_yet_is_not_read(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"id": "c0", "ti')
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        s = _grow(db, path, "jsonl", FLAT_MAP)
        assert _counts(s) == (0, 0, 0, 0) and s.files[0]["left_unread"] == 16 and s.files[0]["run_id"] is None
        assert db.duckdb.execute("select count(*) from ingest_runs").fetchone()[0] == 0
    finally:
        db.close()


def test_without_growing_a_half_written_last_line_is_quarantined(tmp_path):
    """The default reads every byte: a last line cut short is a record to quarantine, as in any file."""
    path = tmp_path / "f.jsonl"
    path.write_bytes(_jsonl([_flat(0)]) + b'{"id": "c1", "ti')
    s = _load_into_new(tmp_path, path, "jsonl", growing=False)
    assert _counts(s) == (2, 1, 0, 1) and s.files[0]["left_unread"] == 0


def test_growing_reads_a_file_of_records_not_in_lines_whole(tmp_path):
    """Parquet (and gzip, JSON documents) is not appended line by line: --growing reads it whole as always."""
    path = tmp_path / "f.parquet"
    pl.DataFrame([_flat(i) for i in range(4)]).write_parquet(path)
    s = _load_into_new(tmp_path, path, "parquet", growing=True)
    assert _counts(s) == (4, 4, 0, 0) and s.files[0]["left_unread"] == 0


def test_the_command_line_reads_a_growing_log(tmp_path, capsys):
    """``workbench ingest --growing``: the text says what was left for the next load, ``--json`` has it per file."""
    from workbench.cli import main as cli_main

    path = tmp_path / "f.jsonl"
    path.write_bytes(_jsonl([_flat(0), _flat(1)]) + b'{"id": "c2"')
    mapping = tmp_path / "m.toml"
    mapping.write_text('table = "calls"\n[columns]\ncall_id = "id"\nts = { field = "time", unit = "s" }\n'
                       'status = { value = "ok" }\n')
    args = ["ingest", str(path), "--db", str(tmp_path / "a.duckdb"), "--mapping", str(mapping), "--growing"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "inserted 2" in out and "quarantined 0" in out and "11 bytes after the last complete line" in out
    with path.open("ab") as fh:
        fh.write(b', "time": 1763632802}\n')
    assert cli_main([*args, "--json"]) == 0
    f = json.loads(capsys.readouterr().out)["files"][0]
    assert (f["inserted"], f["left_unread"]) == (1, 0) and f["appended_to"]


def test_a_report_s_lineage_says_which_run_extended_which(tmp_path):
    """params.json's data_lineage lists every run; a run that read only what was appended names the run it extended,
    and each run's id and bytes tie it to the rows (calls.ingest_run_id) and the part of the file it read."""
    from workbench.reports.publish import _lineage

    mapping, first, more = _case("jsonl", 12)
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        one, two = _load_then_append(db, tmp_path / "f.jsonl", "jsonl", mapping, first, more)
    finally:
        db.close()
    runs = {r["run_id"]: r for r in _lineage(str(tmp_path / "a.duckdb"))}
    a, b = runs[one.files[0]["run_id"]], runs[two.files[0]["run_id"]]
    assert (a["base_run_id"], a["bytes"], a["rows_inserted"]) == (None, len(first), 6)
    assert (b["base_run_id"], b["bytes"], b["rows_inserted"]) == (a["run_id"], len(first) + len(more), 6)


def test_a_log_rotated_while_it_is_read_is_an_error_naming_it(tmp_path, monkeypatch):
    """Truncated between finding its last newline and hashing it (rotated): nothing is loaded, the error says so."""
    path = tmp_path / "f.jsonl"
    data = _jsonl([_flat(0), _flat(1)])
    path.write_bytes(data)
    real = ing._complete_end

    def then_rotated(p, *a):
        end = real(p, *a)
        path.write_bytes(data[: len(data) // 2])
        return end

    monkeypatch.setattr(ing, "_complete_end", then_rotated)
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        with pytest.raises(ing.IngestError, match="changed while it was read"):
            _grow(db, path, "jsonl", FLAT_MAP)
        assert db.duckdb.execute("select count(*) from calls").fetchone()[0] == 0
    finally:
        db.close()


def test_a_csv_log_cut_inside_a_quoted_field_waits_for_the_rest_of_the_record(tmp_path):
    """A CSV record may hold newlines inside a quoted field (a prompt's text): the last newline of a half-written
    file can fall inside that record, and the record must wait for the next load, not fail the load."""
    mapping = {"table": "calls", "format": "csv", "columns": {
        "call_id": "id", "ts": {"field": "time", "unit": "s"}, "status": {"value": "ok"}, "name": "note"}}
    head = "id,time,note\nc0,1763632800,plain\nc1,1763632801,\"two\nlines, \"\"quoted\"\"\"\n"
    rest = "c2,1763632802,\"three\nmore\nlines\"\nc3,1763632803,last\n"
    cut = rest.index("more")  # inside c2's quoted field, after one of its newlines
    path = tmp_path / "log.csv"
    path.write_text(head + rest[:cut])
    db = wb.connect(tmp_path / "a.duckdb")
    whole = wb.connect(tmp_path / "b.duckdb")
    try:
        one = _grow(db, path, "csv", mapping)
        assert _counts(one) == (2, 2, 0, 0) and one.files[0]["left_unread"] == cut
        path.write_text(head + rest)
        two = _grow(db, path, "csv", mapping)
        assert two.files[0]["appended_to"] == one.files[0]["run_id"] and _counts(two) == (4, 2, 2, 0)
        _load(whole, path, "csv", mapping)
        assert _tables(db) == _tables(whole)
        assert db.duckdb.execute("select name from calls where call_id = 'c2'").fetchone()[0] == "three\nmore\nlines"
    finally:
        db.close()
        whole.close()


def test_an_error_in_what_was_appended_names_the_file_and_its_own_line(tmp_path):
    """The appended part is read from a copy, but a CSV that cannot be split into records is refused before anything
    is read (the whole file is counted first): the error names the file given and the line of that file, never the
    copy's path and line (the copy's own errors are mapped back: ``ingest._as_original``)."""
    mapping = {"table": "calls", "format": "csv", "columns": {
        "call_id": "id", "ts": {"field": "time", "unit": "s"}, "status": {"value": "ok"}, "name": "note"}}
    path = tmp_path / "log.csv"
    path.write_text("id,time,note\nc0,1763632800,a\nc1,1763632801,b\nc2,1763632802,c\n")
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        _load(db, path, "csv", mapping)
        with path.open("a") as fh:
            fh.write('c3,1763632803,d\nc4,1763632804,"never closed\nc5,1763632805,f\n')
        with pytest.raises(ing.IngestError) as exc:
            _load(db, path, "csv", mapping)
        assert str(exc.value).startswith(f"{path}: line 6: a quoted field opens here")
        assert "workbench-tail" not in str(exc.value)
    finally:
        db.close()


def test_a_growing_log_with_a_hostile_name_is_named_as_it_is(tmp_path):
    """--growing reads from a copy in a folder of its own: quotes, glob characters and ';--' in the name stay text,
    and the run and what was left unread name the file as given."""
    path = tmp_path / "it's [a]* %s;--.jsonl"
    path.write_bytes(_jsonl([_flat(0), _flat(1)]) + b'{"id": "c2"')
    db = wb.connect(tmp_path / "a.duckdb")
    try:
        s = _grow(db, path, "jsonl", FLAT_MAP)
        assert _counts(s) == (2, 2, 0, 0) and s.files[0]["left_unread"] == 11 and s.files[0]["path"] == str(path)
        assert db.duckdb.execute("select distinct source_path from ingest_runs").fetchall() == [(str(path),)]
    finally:
        db.close()
