"""What a telemetry file is (``--format auto``), and its ``calls`` rows for the record formats.

:func:`detect` looks at the content, not only the name: gzip is recognised by its magic bytes, Parquet by ``PAR1``,
JSON by its first character, and then the first records decide (up to :data:`SNIFF_RECORDS` of them, skipping
unreadable ones):

===================  ===========================================================================================
format               recognised by
===================  ===========================================================================================
``otel``             ``resourceSpans`` (OTLP export); JSON lines go to the SQL reader, any other layout (a
                     pretty-printed document, several, an array) to :mod:`workbench.io.openinference`
``langfuse_batch``   ``{"batch": [...]}``
``langfuse``         ``{"trace": ..., "observations": [...]}``, a trace with ``observations``, observations
                     (also the CSV columns of the UI's export: ``id``, ``traceId``, ``type``, ``startTime``)
``openinference``    an OTLP ``Span`` (``spanId`` + ``traceId``, attribute list) or a Phoenix span
                     (``context.span_id``; Parquet/CSV columns ``context.span_id`` or ``attributes.*``)
``vercel``           a ReadableSpan: ``attributes`` map with ``spanContext``/``startTime``
``litellm``          ``call_type`` + ``id`` (StandardLoggingPayload) or ``request_id`` (SpendLogs; also CSV)
``langsmith``        a LangSmith run (``id``, ``run_type``, ``start_time``; also its bulk export's Parquet/CSV
                     columns) or a page of them (``{"runs": [...]}``)
``jaeger``           a Jaeger trace (``traceID``, ``spans``, ``processes``) or the query API's ``{"data": [...]}``
``zipkin``           Zipkin v2 spans (``traceId`` + ``id``, ``timestamp``/``duration``/``localEndpoint``)
``mlflow``           an MLflow trace (``info`` + ``data.spans``), a ``search_traces()`` row (``spans`` beside
                     ``trace_id``/``request_id``), or a span dict whose attributes carry ``mlflow.span*`` names
===================  ===========================================================================================

A JSON file is never read line by line unless its first line is a whole JSON value: a pretty-printed array or
document is parsed as one. A JSON file without any record (empty, ``[]``) loads nothing, read as ``otel``. Anything else needs ``--mapping`` (JSONL, CSV, Parquet of any shape) or ``--format``.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "x.json").write_text('[\\n {"batch": []}\\n]')
>>> detect(d / "x.json")
('langfuse_batch', 'array')
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from itertools import islice, zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import IngestError
from workbench._gc import paused
from workbench.io import langfuse, langsmith, litellm, mlflow, openinference, tracers, vercel
from workbench.io.workers import default_workers, ordered_map
from workbench.io.records import (Rows, allow_long_csv_fields, excel_separator, head, iter_json_file, iter_json_records,
                                  json_layout, json_lines, line_records, open_binary, reads_as_lines, strict_csv_rows)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

#: Formats read through canonical rows built here (``otel`` too, for any layout other than JSON lines).
RECORD_FORMATS = (langfuse.FORMAT, langfuse.BATCH_FORMAT, openinference.FORMAT, vercel.FORMAT, litellm.FORMAT,
                  tracers.JAEGER, tracers.ZIPKIN, mlflow.FORMAT, langsmith.FORMAT)
SNIFF_RECORDS = 20


def _first_lines(path: Path, n: int) -> bytes:
    """The first ``n`` non-blank lines, whole however long (a JSON-lines OTLP batch can be megabytes)."""
    out: list[bytes] = []
    with open_binary(path) as fh:
        for line in fh:
            if line.strip():
                out.append(line)
                if len(out) >= n:
                    break
    return b"".join(out)


def _first_value(data: bytes, layout: str) -> Any:
    """The first record of a JSON array or document from the head of a file, or None when the head cuts it."""
    import json

    text = data.decode("utf-8", "replace")
    pos = len(text) - len(text.lstrip())
    if layout == "array":
        pos += 1
        while pos < len(text) and text[pos].isspace():
            pos += 1
    try:
        value, _end = json.JSONDecoder().raw_decode(text, pos)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list):
        return value[0] if value else None
    return value


def classify(obj: Any) -> str | None:
    """The format a single record belongs to, or None.

    >>> classify({"resourceSpans": []}), classify({"batch": []}), classify({"request_id": "r", "spend": 0})
    ('otel', 'langfuse_batch', 'litellm')
    """
    if openinference.is_otlp_export(obj):
        return "otel"
    if langfuse.is_batch(obj):
        return langfuse.BATCH_FORMAT
    if tracers.is_jaeger(obj):  # before Langfuse: both have a {"data": [...]} list
        return tracers.JAEGER
    if langfuse.looks_like(obj):
        return langfuse.FORMAT
    if mlflow.looks_like(obj):  # before OpenInference: an MLflow 2 span has a Phoenix-like context and attributes
        return mlflow.FORMAT
    if openinference.is_otlp_span(obj) or openinference.is_phoenix_span(obj) or openinference.is_span_page(obj):
        return openinference.FORMAT
    if vercel.looks_like(obj):
        return vercel.FORMAT
    if tracers.is_zipkin(obj):
        return tracers.ZIPKIN
    if litellm.looks_like(obj):
        return litellm.FORMAT
    if langsmith.looks_like(obj):
        return langsmith.FORMAT
    return None


def _columns_format(cols: list[str]) -> str | None:
    names = set(cols)
    if "context.span_id" in names or any(c.startswith("attributes.") for c in names):
        return openinference.FORMAT
    if "request_id" in names and ({"startTime", "spend"} & names):
        return litellm.FORMAT
    if set(langsmith.COLUMNS) <= names:
        return langsmith.FORMAT
    if set(langfuse.EXPORT_COLUMNS) <= names:
        return langfuse.FORMAT
    return None


def detect(path: str | Path) -> tuple[str | None, str]:
    """``(format, layout)`` of a file by its content: format None when not recognised; layout ``lines``, ``array``,
    ``document``, ``empty``, ``csv`` or ``parquet``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "spend.csv").write_text("request_id,startTime,spend\\nr1,2025-11-20 10:00:00,0.01\\n")
    >>> _ = (d / "traces.log").write_text('{"resourceSpans": []}\\n')
    >>> _ = (d / "trace.json").write_text('{\\n  "trace": {"id": "t1"},\\n  "observations": []\\n}\\n')
    >>> _ = (d / "other.csv").write_text("a,b\\n1,2\\n")
    >>> [detect(d / name) for name in ("spend.csv", "traces.log", "trace.json", "other.csv")]
    [('litellm', 'csv'), ('otel', 'lines'), ('langfuse', 'document'), (None, 'csv')]
    """
    path = Path(path)
    data = head(path)
    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        try:
            cols = pq.read_schema(path).names
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a broken file
            raise IngestError(f"{path}: cannot be read as Parquet: {exc}") from None
        return _columns_format(cols), "parquet"
    text = data.lstrip()
    if text[:1] in (b"{", b"["):
        layout = json_layout(data)
        if layout == "lines":
            recs = iter_json_records(_first_lines(path, SNIFF_RECORDS))
        else:
            found = _first_value(data, layout)  # usually decides from the head, without parsing the whole file
            if found is not None and classify(found) is not None:
                return classify(found), layout
            recs = iter_json_file(path)
        seen = False
        for i, (_k, obj, _raw, err) in enumerate(recs):
            seen = True
            if i >= SNIFF_RECORDS:
                break
            if err is None:
                fmt = classify(obj)
                if fmt is not None:
                    return fmt, layout
        # no record at all (an empty array or export): nothing to load, read as OTLP
        return (None if seen else "otel"), layout
    if not text:
        return ("otel" if _named_json(path) else None, "empty")
    sep = excel_separator(data)
    first = text.split(b"\n", 2)[1 if sep else 0].decode("utf-8", "replace").rstrip("\r")
    try:
        cols = next(csv.reader(io.StringIO(first), delimiter=sep or ","))
    except (csv.Error, StopIteration):
        return None, "csv"
    return _columns_format(cols), "csv"


def _csv_records(path: Path):
    """The records of a CSV file as they are read (a header line, then one record per row, its fields by name).

    Read strictly, as ingest counts CSV records: a quote never closed fails the file naming its line (read loosely,
    it swallowed every later record into one field), another malformed record is one record with an error."""
    allow_long_csv_fields()
    sep = excel_separator(head(path, 64))
    with open_binary(path) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="replace", newline="")
        if sep is not None:  # Excel's separator hint: the delimiter, and a line skipped
            text.readline()
        skipped = sep is not None
        # csv.reader, not DictReader: a DictReader's line count is not moved by a record it fails on
        reader = csv.reader(text, strict=True, delimiter=sep or ",")
        names: list[str] | None = None
        for start, row, err in strict_csv_rows(reader, path, line_offset=skipped, mapping_hint=False):
            start += skipped
            k = reader.line_num + skipped  # the record's last physical line; the header is line 1
            if err is not None:
                yield k, None, f"line {start}: {err}", "malformed CSV record"
                continue
            if not row:
                continue  # a blank line
            if names is None:
                names = row
                _refuse_repeated_names(path, names)
                continue
            if len(row) > len(names):
                yield k, None, ",".join(row[len(names):]), "wrong number of fields"
                continue
            # a short row's missing fields are None, as an empty field is
            yield k, {key: (val or None) for key, val in zip_longest(names, row)}, None, None


def _refuse_repeated_names(path: Path, names: list[str], where: str = "line 1: the header") -> None:
    """A header naming a column twice: which of the two a record's field is read from would be a guess (the last one
    won, silently); the file is refused, naming the column and both positions. Columns without a name (a
    spreadsheet's trailing empty columns) are read by no field: they may repeat.

    >>> _refuse_repeated_names(Path("a.csv"), ["id", "", ""])
    >>> _refuse_repeated_names(Path("a.csv"), ["id", "spend", "spend"])
    Traceback (most recent call last):
    ...
    workbench.errors.IngestError: a.csv: line 1: the header names the column 'spend' twice (columns 2 and 3); rename one of them
    """
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if not name.strip():
            continue
        if name in seen:
            raise IngestError(f"{path}: {where} names the column {name!r} twice (columns {seen[name]} and "
                              f"{i}); rename one of them")
        seen[name] = i


def _parquet_records(path: Path):
    import pyarrow.parquet as pq

    k = 0
    pf = pq.ParquetFile(path)
    _refuse_repeated_names(path, pf.schema_arrow.names, "its schema")
    for batch in pf.iter_batches(batch_size=10_000):
        for rec in batch.to_pylist():
            k += 1
            yield k, rec, None, None


def _named_json(path: Path) -> bool:
    """Whether the file's name says JSON: ``.json``, ``.jsonl`` or ``.ndjson``, gzipped or not."""
    return Path(path).name.lower().removesuffix(".gz").endswith((".json", ".jsonl", ".ndjson"))


def file_layout(path: Path) -> str:
    """How :func:`records` reads a file: ``parquet``, ``json`` (any JSON layout) or ``csv``, by its first bytes; a
    file named as JSON is JSON (a malformed first line is then that line's error, not a CSV header that swallows it).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.log").write_text('{"id": 1}\\n'); _ = (d / "b.csv").write_text("id,ts\\n1,2\\n")
    >>> file_layout(d / "a.log"), file_layout(d / "b.csv")
    ('json', 'csv')
    """
    start = head(path, 64).lstrip()
    if start[:4] == b"PAR1":
        return "parquet"
    if start[:1] in (b"{", b"[") or _named_json(path):
        return "json"
    return "csv"


def records(path: Path, layout: str | None = None):
    """``(position, record, raw, error)`` of any file: JSON in any layout, CSV (line numbers, header = 1), Parquet
    (row numbers).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "spend.csv").write_text("request_id,spend\\nr1,0.01\\nr2,0.02,extra\\n")
    >>> list(records(d / "spend.csv"))
    [(2, {'request_id': 'r1', 'spend': '0.01'}, None, None), (3, None, 'extra', 'wrong number of fields')]
    >>> _ = (d / "spans.json").write_text('[{"a": 1},\\n {"a": 2}]')
    >>> [(k, rec) for k, rec, _raw, _err in records(d / "spans.json")]
    [(1, {'a': 1}), (2, {'a': 2})]
    """
    path = Path(path)
    layout = layout or file_layout(path)
    if layout == "parquet":
        return _parquet_records(path)
    if layout == "csv":
        return _csv_records(path)
    return iter_json_file(path)


_READERS = {
    "otel": openinference.span_rows, openinference.FORMAT: openinference.span_rows,
    langfuse.FORMAT: langfuse.trace_rows, langfuse.BATCH_FORMAT: langfuse.batch_rows,
    vercel.FORMAT: vercel.vercel_rows, litellm.FORMAT: litellm.litellm_rows,
    tracers.JAEGER: tracers.jaeger_rows, tracers.ZIPKIN: tracers.zipkin_rows, mlflow.FORMAT: mlflow.mlflow_rows,
    langsmith.FORMAT: langsmith.run_rows,
}


#: Records turned into rows at a time by :func:`row_batches` (about 10 MB of rows for LiteLLM payloads).
BATCH_RECORDS = 10_000


def row_batches(path: str | Path, fmt: str) -> Iterator[Rows]:
    """The ``calls`` rows of a file read as ``fmt`` (one of :data:`RECORD_FORMATS` or ``otel``), in batches of
    :data:`BATCH_RECORDS` records: the rows held at a time are one batch's (JSON lines and Parquet are also read as
    they go, and so are CSV and arrays; a pretty-printed document is read whole). Langfuse ingestion batches merge events across records: they
    come as one batch. At least one batch, empty for a file without records.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.jsonl").write_text('{"id": "c1", "call_type": "completion", "startTime": 1763632800}\\n'
    ...                                '{"id": "c2"}\\n')
    >>> [(len(rows), rows.values[0]["call_id"], rows.kind) for rows in row_batches(d / "a.jsonl", "litellm")]
    [(2, 'c1', [None, 'not a LiteLLM record'])]
    >>> _ = (d / "empty.json").write_text("[]")
    >>> [len(rows) for rows in row_batches(d / "empty.json", "litellm")]
    [0]
    """
    reader = _READERS[fmt]
    recs = records(Path(path))
    if fmt == langfuse.BATCH_FORMAT:
        with paused():
            rows = reader(recs)
        yield rows
        return
    first = True
    while True:
        # The garbage collector is paused while a batch is parsed and mapped (workbench._gc: the parsed records are
        # dicts and lists, freed by reference counting; collections walking them took a third of the time), and is
        # back on before the batch is handed over.
        with paused():
            chunk = list(islice(recs, BATCH_RECORDS))
            rows = reader(chunk) if chunk else None
            del chunk
        if rows is None:
            break
        first = False
        yield rows
        rows = None
    if first:
        yield Rows()


#: A JSON-lines file of at least this many lines has its batches mapped by worker processes (:func:`arrow_batches`);
#: a smaller one is mapped here (a worker takes about half a second to start).
PARALLEL_LINES = 4 * BATCH_RECORDS


def arrow_batches(path: str | Path, fmt: str, columns: tuple[str, ...], *, lines: int | None = None,
                  workers: int | None = None) -> Iterator["pa.Table"]:
    """The rows of :func:`row_batches` as Arrow tables of ``columns`` (:meth:`Rows.to_arrow`), in the file's order.

    A JSON-lines file of at least :data:`PARALLEL_LINES` lines (``lines``: as the caller counted them) is mapped on
    every core: ``workers`` processes (default: one per core, at most 8, :func:`workbench.io.workers.default_workers`;
    :func:`workbench.io.workers.ordered_map`) parse and map one batch of :data:`WORKER_LINES` lines at a time, while
    this process reads the next batch's lines and takes the tables in order. The tables are those mapped here, with the same line numbers. Other layouts, Langfuse
    ingestion batches (events merged across records) and smaller files are mapped here. At least one table.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_text('{"id": "c1", "call_type": "completion", "startTime": 1763632800, "model": "m"}\\n')
    >>> [t.num_rows for t in arrow_batches(p, "litellm", ("call_id", "model"))]
    [1]
    """
    import pyarrow as pa

    path = Path(path)
    n = workers if workers is not None else default_workers()
    results = None
    if (n > 1 and lines is not None and lines >= PARALLEL_LINES and fmt != langfuse.BATCH_FORMAT
            and file_layout(path) == "json" and reads_as_lines(path)):
        pieces = (({"fmt": fmt, "start": start, "columns": list(columns)}, text)
                  for start, text in _line_batches(path))
        try:
            results = ordered_map("workbench.io.sniff:map_lines_ipc", pieces, n)
        except OSError:  # no interpreter to start (an embedded one, say): mapped here
            results = None
    if results is None:
        for rows in row_batches(path, fmt):
            yield rows.to_arrow(columns=columns)
        return
    got = False
    for data in results:
        got = True
        yield pa.ipc.open_stream(data).read_all()
    if not got:
        yield Rows().to_arrow(columns=columns)


#: Lines a worker maps at a time (:func:`arrow_batches`): small enough that the workers share the file evenly and the
#: first tables come soon, large enough that a batch's table costs little to hand over. A batch also ends at
#: WORKER_BYTES of text, so that long records (a trace with its observations) keep it small.
WORKER_LINES = 2_500
WORKER_BYTES = 16 << 20


def _line_batches(path: Path) -> Iterator[tuple[int, bytes]]:
    """(number of the first line, the lines joined by newlines) for each batch of WORKER_LINES lines, or fewer
    that hold WORKER_BYTES."""
    batch: list[bytes] = []
    start, size = 1, 0
    for line in json_lines(path):
        batch.append(line)
        size += len(line) + 1
        if len(batch) == WORKER_LINES or size >= WORKER_BYTES:
            yield start, b"\n".join(batch)
            start += len(batch)
            batch, size = [], 0
    if batch:
        yield start, b"\n".join(batch)


def map_lines(fmt: str, start: int, text: bytes, columns: tuple[str, ...]) -> "pa.Table":
    """One batch of lines (as :func:`_line_batches` gives them) parsed, mapped and made a table, as
    :func:`row_batches` and :func:`arrow_batches` do for the same records.

    >>> map_lines("litellm", 7, b'{"id": "c1", "call_type": "completion", "startTime": 1763632800}\\n{', ("call_id",)
    ...           ).select(["k", "s:call_id", "_err"]).to_pylist()
    [{'k': 7, 's:call_id': 'c1', '_err': None}, {'k': 8, 's:call_id': None, '_err': 'invalid JSON'}]
    """
    with paused():
        recs = list(line_records(text.split(b"\n"), start))
        rows = _READERS[fmt](recs)
        del recs
    return rows.to_arrow(columns=columns)


def map_lines_ipc(text: bytes, *, fmt: str, start: int, columns: list[str]) -> bytes:
    """:func:`map_lines` for a worker (:mod:`workbench.io.workers`): the table as an Arrow IPC stream.

    Examples
    --------
    >>> import pyarrow as pa
    >>> data = map_lines_ipc(b'{"id": "c1", "call_type": "completion", "startTime": 1763632800}', fmt="litellm",
    ...                      start=5, columns=["call_id"])
    >>> pa.ipc.open_stream(data).read_all().select(["k", "s:call_id"]).to_pylist()
    [{'k': 5, 's:call_id': 'c1'}]
    """
    import pyarrow as pa

    table = map_lines(fmt, start, text, tuple(columns))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
