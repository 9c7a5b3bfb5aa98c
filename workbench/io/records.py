"""Shared plumbing of the record formats: reading JSON documents, timestamps in every shape, canonical rows.

The formats of other tools (Langfuse, OpenInference, Vercel AI SDK, LiteLLM, OTLP documents) are nested JSON whose
records need merging and cross-referencing (updates into creates, a trace's user into its observations, an outer span
against its leaf): each format module turns a file's records into canonical ``calls`` rows with :class:`Rows`, and the
ingest engine (:mod:`workbench.io.ingest`) validates, deduplicates, quarantines and inserts them like any other source.

Reading
-------
:func:`open_binary` opens a file, gunzipped when it starts with the gzip magic bytes (whatever its name says).
:func:`iter_json_records` yields the top-level records of a JSON text in any of its
layouts, with a position (:func:`iter_json_file` the same for a file, read as it goes: JSON lines line by line, an
array element by element):

* one JSON value per line (JSON lines): the physical line number (1 = first line); a line holding an array gives its
  elements (all numbered by that line); a line that is not JSON is one record with an error;
* a JSON array (pretty-printed, or the file's only line): each element, numbered 1, 2, ... (its position in the
  array); an array never is read line by line. An element that is not JSON ends the stream as one record with an
  error, numbered as that element, after the elements before it;
* one or more pretty-printed JSON documents one after the other (``jq .`` output): each document, numbered by the line
  it starts on. Text that is not JSON ends the stream as one record with an error.

In every layout a record whose text holds bytes that are not UTF-8 is an error (:data:`NOT_UTF8`), never read with
the bytes replaced; in an OTLP export, the span holding them alone (:func:`undecodable_records`).

Timestamps
----------
:func:`epoch_us` turns every timestamp shape into microseconds since the epoch, UTC:

* ISO 8601 with a zone offset or ``Z`` (converted to UTC), or naive (taken as UTC), with ``T`` or a space; an
  offset after a space too (``10:00:00 +0100``, Go's ``+0100 CET``);
* an epoch number or numeric string, its unit from its size: below 1e11 seconds (floats keep their fraction), below
  1e14 milliseconds, below 1e17 microseconds, else nanoseconds (OTLP ``*UnixNano`` strings);
* an OpenTelemetry-JS HrTime pair ``[seconds, nanoseconds]``;
* a ``datetime`` (from Parquet): an aware one converted to UTC, a naive one taken as UTC.

Examples
--------
>>> epoch_us("2025-11-20T10:00:00+01:00") == epoch_us("2025-11-20 09:00:00") == epoch_us([1763629200, 0])
True
>>> epoch_us("1763629200000000000") == epoch_us(1763629200.0) == epoch_us(1763629200000)
True
>>> [(k, v) for k, v, _raw, _err in iter_json_records(b'[\\n {"a": 1},\\n {"a": 2}\\n]')]
[(1, {'a': 1}), (2, {'a': 2})]
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as _dt
import gzip
import json
import math
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from workbench.errors import IngestError
from workbench._gc import paused

GZIP_MAGIC = b"\x1f\x8b"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
#: Numeric text as every reader takes it (:func:`number`): ASCII decimal digits with an optional sign, fraction and
#: exponent, whitespace around it allowed; no digit separators ("1_000"), no words ("nan", "inf"), no other scripts'
#: digits. (The engine's SQL casts read the same: ``ingest._numeric_text``.)
NUMBER = r"[ \t\n\r\f\v]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*"
_NUMBER_RE = re.compile(NUMBER)
_INTEGER_RE = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+[ \t\n\r\f\v]*")
#: A zone offset written after a space ("10:00:00.250 +0100", as Java's and Go's default writers put it; Go adds the
#: zone's abbreviation: "+0100 CET"): glued to the time it is ISO 8601's. The engine's SQL reads
#: timestamps with the same pattern (RE2 and Python's ``re`` read it alike). A time must come before the offset, so a
#: date with a negative number after it is not taken for a zone.
ZONE_AFTER_SPACE = r"(:[0-9]{2}(?:\.[0-9]+)?)\s+([+-][0-9]{2}(?::?[0-9]{2})?)(?:\s+[A-Za-z]{1,5})?\s*$"
_ZONE_AFTER_SPACE_RE = re.compile(ZONE_AFTER_SPACE)
#: What says a failed call timed out, in its error type or message (any case): a type naming a timeout (OpenAI's and
#: Anthropic's ``APITimeoutError``, httpx's ``ReadTimeout``, ``TimeoutError``, ``asyncio.TimeoutError``, LiteLLM's
#: ``Timeout``), gRPC's and Google's ``DeadlineExceeded`` (``DEADLINE_EXCEEDED``, "504 Deadline Exceeded"), or a
#: message saying it ("Request timed out."). The one rule of every reader (:func:`is_timeout`); the OTLP JSON-lines
#: reader's SQL matches the same pattern (RE2 and Python's ``re`` read it alike).
TIMEOUT = r"(?i)timeout|timed[ _-]?out|deadline[ _-]?exceeded"
_TIMEOUT_RE = re.compile(TIMEOUT)
#: The reason every reader quarantines a record for whose text holds bytes that are not UTF-8 (the readers never
#: load such text with the bytes replaced: :func:`undecodable_records`).
NOT_UTF8 = "invalid encoding (not UTF-8)"
# a byte that is not UTF-8, in text decoded with errors="surrogateescape"
_UNDECODED = re.compile("[\udc80-\udcff]")
# years 1..9999 in microseconds, as the engine checks
_US_MIN, _US_MAX = -62135596800 * 10**6, 253402300799 * 10**6


def allow_long_csv_fields() -> None:
    """Let Python's csv module read fields of any length: its default stops at 128 KB, and a LiteLLM spend-log
    export's prompt or response column can be longer (the whole file failed). Process-wide, only ever raised.

    >>> import csv
    >>> allow_long_csv_fields(); csv.field_size_limit() >= 2**31 - 1
    True
    """
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def unclosed_quote(path: str | Path, line: int, quote: str = '"', *, mapping_hint: bool = True) -> IngestError:
    """The error of a CSV file that cannot be split into records: a quoted field opened on ``line`` is never closed.

    >>> str(unclosed_quote("a.csv", 3, mapping_hint=False))
    'a.csv: line 3: a quoted field opens here and is never closed (unterminated "); the file cannot be split into records, nothing of it was loaded: close the quote and load it again'
    """
    hint = " (or set [csv] quote)" if mapping_hint else ""
    return IngestError(f"{path}: line {line}: a quoted field opens here and is never closed (unterminated {quote}); "
                       f"the file cannot be split into records, nothing of it was loaded: close the quote{hint} and "
                       f"load it again")


def strict_csv_rows(reader: Any, path: str | Path, *, quote: str = '"', line_offset: int = 0,
                    mapping_hint: bool = True) -> Iterator[tuple[int, Any, str | None]]:
    """``(first line, record, None)`` for each record of a strict ``csv.reader``, ``(first line, None, why)`` for a
    malformed one; a quoted field never closed raises :func:`unclosed_quote` naming its line (plus ``line_offset``,
    the lines skipped before the reader). One definition for ingest's CSV count and the record formats' CSV reader.
    Not for a ``DictReader``: its line count is not moved by a record it fails on.

    >>> import csv, io
    >>> rows = strict_csv_rows(csv.reader(io.StringIO('a,b\\n"x"y,2\\n3,4\\n'), strict=True), "a.csv")
    >>> [(line, rec, err is not None) for line, rec, err in rows]
    [(1, ['a', 'b'], False), (2, None, True), (3, ['3', '4'], False)]
    """
    while True:
        start = reader.line_num + 1
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "end of data" in str(exc) or reader.line_num < start:
                raise unclosed_quote(path, start + line_offset, quote, mapping_hint=mapping_hint) from None
            yield start, None, str(exc)
            continue
        yield start, rec, None


def head(path: str | Path, n: int = 1 << 20) -> bytes:
    """The first ``n`` bytes of a file, decompressed when it is gzip, without a byte-order mark.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "calls.jsonl.gz"
    >>> _ = p.write_bytes(gzip.compress(b'\\xef\\xbb\\xbf{"a": 1}\\n{"a": 2}\\n'))
    >>> head(p), head(p, 11)
    (b'{"a": 1}\\n{"a": 2}\\n', b'{"a": 1}')
    """
    with open_binary(path) as fh:
        chunk = fh.read(n)
    return chunk[3:] if chunk.startswith(b"\xef\xbb\xbf") else chunk


@contextlib.contextmanager
def open_binary(path: str | Path) -> Iterator[BinaryIO]:
    """A file opened for reading bytes, through gzip when it starts with the gzip magic bytes (whatever its name
    says). An unreadable file, while opening or while reading, is an :class:`IngestError` naming it.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_bytes(gzip.compress(b'{"a": 1}\\n'))
    >>> with open_binary(p) as fh:
    ...     fh.read()
    b'{"a": 1}\\n'
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            gz = fh.read(2) == GZIP_MAGIC
        with (gzip.open if gz else open)(p, "rb") as fh:
            yield fh
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise IngestError(f"{p}: cannot read the file: {exc}") from None



_WIDE_MARKS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
               (b"\xfe\xff", "UTF-16"))
# without a mark: where the NUL bytes of ASCII text fall in each code unit
_WIDE_UNITS = ((4, 0, "UTF-32LE"), (4, 3, "UTF-32BE"), (2, 0, "UTF-16LE"), (2, 1, "UTF-16BE"))


def wide_encoding(path: str | Path) -> str | None:
    """The UTF-16 or UTF-32 encoding a text file is written in (its ``iconv`` name), or None for anything else.

    By its byte-order mark (what Windows PowerShell's ``Out-File`` and Excel's "Unicode text" write), or, without
    one, by its first characters being ASCII with the NUL bytes of a wider code unit around each. The readers take
    UTF-8 (a UTF-8 byte-order mark is skipped): such a file would otherwise read as one of an unknown format or as
    fields with NULs in their names. A gzip file is looked at decompressed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name, data in [("a.csv", "id,ts\\n".encode("utf-16")), ("b.jsonl", b'{"a": "\\x00"}'),
    ...                    ("c.jsonl", '{"a": 1}'.encode("utf-16-le"))]:
    ...     _ = (d / name).write_bytes(data)
    ...     print(name, wide_encoding(d / name))
    a.csv UTF-16
    b.jsonl None
    c.jsonl UTF-16LE
    """
    with open_binary(path) as fh:
        data = fh.read(64)
    for mark, name in _WIDE_MARKS:
        if data.startswith(mark):
            return name
    for width, at, name in _WIDE_UNITS:
        units = [data[i:i + width] for i in range(0, len(data) - width + 1, width)]
        if len(units) >= 2 and all(u[at:at + 1] in _ASCII_TEXT and u.count(0) == width - 1 for u in units):
            return name
    return None


_ASCII_TEXT = frozenset(bytes([c]) for c in (*range(0x20, 0x7F), 0x09, 0x0A, 0x0D))


def refuse_wide_text(path: str | Path) -> None:
    """Raise an :class:`IngestError` naming the file and its encoding when it is UTF-16 or UTF-32 text
    (:func:`wide_encoding`), with the command that converts it.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "calls.csv"
    >>> _ = p.write_bytes("id,ts\\n".encode("utf-16"))
    >>> try:
    ...     refuse_wide_text(p)
    ... except IngestError as exc:
    ...     print(str(exc).split(": ", 1)[1].split(", e.g. ")[1].split(" (")[0])
    iconv -f UTF-16 -t UTF-8 calls.csv > calls.utf8.csv
    """
    enc = wide_encoding(path)
    if enc is None:
        return
    p = Path(path)
    with open(p, "rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    base = p.name[:-3] if gz and p.name.lower().endswith(".gz") else p.name
    stem, dot, ext = base.rpartition(".") if "." in base else (base, "", "")
    out = f"{stem}.utf8{dot}{ext}"
    how = (f"gunzip -c {p.name} | iconv -f {enc} -t UTF-8 > {out}" if gz else
           f"iconv -f {enc} -t UTF-8 {p.name} > {out} (PowerShell: Get-Content {p.name} | Set-Content -Encoding utf8 "
           f"{out})")
    raise IngestError(f"{p}: the file is {enc} text; workbench reads UTF-8 (with or without a byte-order mark): "
                      f"convert it first, e.g. {how}")


_EXCEL_SEP = re.compile(rb"sep=([^\r\n])\r?(?:\n|\Z)")


def excel_separator(data: bytes) -> str | None:
    """The delimiter Excel's separator hint names on the first line of a CSV (``sep=;``, ``sep=,``: what Excel
    writes, and Excel and LibreOffice read), or None. ``data``: the file's first bytes (:func:`head`). Every CSV
    reader reads the file with that delimiter and skips the line.

    >>> excel_separator(b"sep=;\\r\\nid;ts\\n"), excel_separator(b"id,ts\\n"), excel_separator(b"sep=,x\\n")
    (';', None, None)
    """
    m = _EXCEL_SEP.match(data)
    return m.group(1).decode("utf-8", "replace") if m else None


def _first_line(data: bytes) -> bytes:
    for line in data.splitlines():
        if line.strip():
            return line.strip()
    return b""


def _records_follow(data: bytes) -> bool:
    """Whether the lines after a first line that does not parse are JSON records, an object or an array each: JSON
    lines whose first line is broken, not a pretty-printed document or array. Two such lines settle it (no valid
    document holds two whole values on consecutive lines); one, when the text does not parse as a whole (a
    ``[``, one element and ``]`` on three lines is an array).

    >>> _records_follow(b'{"resourceSpans": [\\n{"a": 1}\\n{"a": 2}\\n'), _records_follow(b'[\\n{"a": 1}\\n]')
    (True, False)
    >>> _records_follow(b'{\\n  "a": 1\\n}'), _records_follow(b'[\\n{"a": 1},\\n{"a": 2}\\n]')
    (False, False)
    """
    pos, seen = data.find(b"\n"), 0
    while pos != -1 and seen < 2:
        end = data.find(b"\n", pos + 1)
        line = data[pos + 1:end if end != -1 else len(data)].strip()
        pos = end
        if not line:
            continue
        try:
            value = loads(line)
        except ValueError:
            return False
        if not isinstance(value, (dict, list)):
            return False
        seen += 1
    if seen != 1:
        return seen == 2
    try:
        loads(data)
    except ValueError:
        return True
    return False


def json_layout(data: bytes) -> str:
    """How JSON text is laid out: ``lines`` (JSON lines), ``array``, ``document`` (one or more documents), ``empty``.

    Examples
    --------
    >>> json_layout(b'{"a": 1}\\n{"a": 2}\\n'), json_layout(b'[{"a": 1}]'), json_layout(b'{\\n "a": 1\\n}')
    ('lines', 'array', 'document')
    >>> json_layout(b'{"a": \\n{"a": 1}\\n{"a": 2}\\n')  # a broken first line, then JSON lines
    'lines'
    """
    head = data.strip()
    if not head:
        return "empty"
    first = _first_line(data)
    try:
        loads(first)
    except ValueError:
        if _records_follow(data):  # JSON lines whose first line is broken (cut short by a writer that died)
            return "lines"
        return "array" if head[:1] == b"[" else "document"
    # a complete value on the first line: JSON lines, unless it is the file's only line and an array
    # (JSON.stringify output); a one-line object is a document and a JSON line alike
    if head[:1] == b"[" and b"\n" not in head:
        return "array"
    return "lines"


def line_records(lines: Iterable[bytes], start: int = 1) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """The records of JSON lines (each without its newline), numbered by line from ``start``.

    >>> [(k, v, e) for k, v, _r, e in line_records([b'{"a": 1}', b'', b'[{"a": 2}, {"a": 3}]', b'{'], start=7)]
    [(7, {'a': 1}, None), (9, {'a': 2}, None), (9, {'a': 3}, None), (10, None, 'invalid JSON')]
    """
    for i, line in enumerate(lines, start=start):
        if not line.strip():
            continue
        try:
            value = loads(line)
        except ValueError:
            text = line.decode("utf-8", "surrogateescape").rstrip("\r")
            if _UNDECODED.search(text):
                yield from undecodable_records(i, text)
            else:
                yield i, None, text, "invalid JSON"
            continue
        if isinstance(value, list):  # a line holding a batch: its elements, all on this line
            for v in value:
                yield i, v, None, None
        else:
            yield i, value, None, None


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """The records of a JSON-lines file as :func:`iter_json_records` gives them, read line by line: memory holds
    one line, not the file (gunzipped when it starts with the gzip magic bytes; a byte-order mark is skipped).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_bytes(b'\\xef\\xbb\\xbf{"a": 1}\\nnot json\\n\\n{"a": 2}')
    >>> [(k, v, e) for k, v, _r, e in iter_json_lines(p)]
    [(1, {'a': 1}, None), (2, None, 'invalid JSON'), (4, {'a': 2}, None)]
    """
    return line_records(json_lines(path))


def json_lines(path: str | Path) -> Iterator[bytes]:
    """The lines of a file as bytes, each without its newline (a byte-order mark before the first one skipped;
    gunzipped when the file starts with the gzip magic bytes), read as they go.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_bytes(b'\\xef\\xbb\\xbf{"a": 1}\\r\\n\\n{"a": 2}')
    >>> list(json_lines(p))
    [b'{"a": 1}\\r', b'', b'{"a": 2}']
    """
    with open_binary(path) as fh:
        for n, line in enumerate(fh):
            if n == 0 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            yield line[:-1] if line.endswith(b"\n") else line


def iter_json_records(data: bytes) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """Yield ``(position, value, raw, error)`` for each top-level record of JSON text (see the module docstring).

    ``value`` is the parsed record (None when ``error`` says why it could not be read); ``raw`` is the record's text
    for a record that could not be parsed (else None: the caller renders the value when it needs the text).

    Examples
    --------
    >>> [(k, v, e) for k, v, _r, e in iter_json_records(b'{"a": 1}\\nnot json\\n\\n{"a": 2}')]
    [(1, {'a': 1}, None), (2, None, 'invalid JSON'), (4, {'a': 2}, None)]
    """
    layout = json_layout(data)
    if layout == "empty":
        return
    if layout == "lines":
        yield from line_records(data.split(b"\n"))
        return
    yield from _stream_values(iter([data.decode("utf-8", "surrogateescape")]), layout == "array")


#: Text read at a time by :func:`iter_json_file` from an array or documents.
_CHUNK = 1 << 20
# A string (a lone backslash or no closing quote at the end: cut by the buffer) or a bracket.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]')
_NUMBER_GOES_ON = frozenset("0123456789+-.eE")


def iter_json_file(path: str | Path) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """The records of a JSON file in any layout, as :func:`iter_json_records` gives them, read as they go.

    JSON lines are read line by line (:func:`iter_json_lines`); an array is read element by element, 1 MB of text at
    a time, so memory holds one element and not the file. A pretty-printed document is parsed whole (documents one
    after the other: one at a time).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = p.write_text('[\\n {"a": 1},\\n {"a": 2}\\n]')
    >>> [(k, v) for k, v, _r, _e in iter_json_file(p)]
    [(1, {'a': 1}), (2, {'a': 2})]
    """
    start = head(path, _CHUNK)
    layout = json_layout(start)
    if layout == "empty":
        return iter(())
    if _lines_layout(start, layout) or (layout == "document" and _malformed_line(start)):
        return iter_json_lines(path)
    if len(start) < _CHUNK - 3:  # the whole file (however long a byte-order mark was cut)
        return iter_json_records(start)
    return _stream_values(_text_chunks(path), layout == "array")


def _malformed_line(start: bytes) -> bool:
    """Whether a first line that does not parse is a malformed JSON line rather than the opening of a pretty-printed
    document (which begins with a bracket, or ends with one, a comma or a colon): the file is then read line by line,
    that line an error and the lines after it records (read as one document, the error ended the file there).

    >>> _malformed_line(b'hello world\\n{"a": 1}\\n'), _malformed_line(b'{\\n  "a": 1\\n}'), _malformed_line(b'{"a": 1\\n, "b": 2}')
    (True, False, False)
    """
    first = _first_line(start)
    return (bool(first) and first[:1] not in (b"{", b"[") and not first.endswith((b"{", b"[", b",", b":"))
            and b"\n" in start.strip())


def _lines_layout(start: bytes, layout: str) -> bool:
    # JSON lines whose first line the head holds whole are JSON lines to the end; else the head alone cannot say
    return layout == "lines" and b"\n" in start.lstrip()


def reads_as_lines(path: str | Path) -> bool:
    """Whether :func:`iter_json_file` reads the file line by line (:func:`iter_json_lines`): JSON lines.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.jsonl").write_text('{"a": 1}\\n{"a": 2}\\n'); _ = (d / "b.json").write_text('[\\n {"a": 1}\\n]')
    >>> reads_as_lines(d / "a.jsonl"), reads_as_lines(d / "b.json")
    (True, False)
    """
    start = head(path, _CHUNK)
    return _lines_layout(start, json_layout(start))


def _value_end(text: str, pos: int) -> int:
    """Where the array or object starting at ``text[pos]`` ends, by its brackets (strings skipped); -1 when the text
    ends first. Used for a value too deeply nested to parse: the records after it are still read.

    >>> _value_end('[[["]"], {}]], 1', 0), _value_end('[[1]', 0)
    (13, -1)
    """
    depth = 0
    size = len(text)
    for m in _STRUCTURE.finditer(text, pos):
        c = m.group()
        if c[0] == '"':
            if m.end() == size:  # a string cut by the end of the text
                return -1
            continue
        depth += 1 if c in "[{" else -1
        if depth == 0:
            return m.end()
    return -1


def _text_chunks(path: str | Path) -> Iterator[str]:
    """The text of a file, 1 MB at a time (UTF-8, bytes that are not UTF-8 as surrogates: ``surrogateescape``, a
    leading byte-order mark skipped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
    with open_binary(path) as fh:
        while chunk := fh.read(_CHUNK):
            yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _stream_values(chunks: Iterator[str], array: bool) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """The records of JSON text given in chunks: the elements of top-level arrays one at a time, other top-level
    values (documents) whole.

    ``array``: the text is an array (positions are the records' order, 1, 2, ...); else documents (positions are the
    lines they start on; a document that is an array gives its elements, all with its line). Text that is not JSON
    ends the stream as one record with an error, after the records before it.
    """
    scan = json.JSONDecoder().raw_decode  # NaN and the infinities as Python's json.dumps writes them, as loads()
    buf, pos, line0, eof = "", 0, 1, False  # line0: the line of buf[0]
    k = 0

    def more(need: int = 1) -> bool:
        """Read at least ``need`` more characters into the buffer (dropping what was consumed); False at the end."""
        nonlocal buf, pos, line0, eof
        if eof:
            return False
        line0 += buf.count("\n", 0, pos)
        parts, got = [buf[pos:]], 0
        pos = 0
        while got < need:
            try:
                c = next(chunks)
            except StopIteration:
                eof = True
                break
            parts.append(c)
            got += len(c)
        buf = "".join(parts)
        return got > 0

    def skip_space() -> bool:
        """Move past whitespace; False at the end of the text."""
        nonlocal pos
        while True:
            n = len(buf)
            while pos < n and buf[pos] in " \t\r\n":
                pos += 1
            if pos < n:
                return True
            if not more():
                return False

    def value() -> tuple[str, Any]:
        """Parse the value at ``pos``, reading more text while it may be cut by the buffer's end: ``("ok", value)``,
        ``("bad", None)`` for text that is not JSON, ``("skip", its text)`` for a value that cannot be a record but
        whose end is known, so that the records after it still load: an array or object nested deeper than the
        interpreter's stack can parse (moved past by its brackets), or text with a lone surrogate escape."""
        nonlocal pos
        while True:
            try:
                v, end = scan(buf, pos)
            except RecursionError:
                end = _value_end(buf, pos)
                while end < 0 and more(max(len(buf) - pos, 1)):
                    end = _value_end(buf, pos)
                if end < 0:
                    return "bad", None
                v, pos = buf[pos:min(end, pos + 100_000)], end
                return "skip", v
            except json.JSONDecodeError:
                if more(max(len(buf) - pos, 1)):  # the value may go on past the buffer: twice as much text, retry
                    continue
                return "bad", None
            # a number may go on in the next chunk ("-1." parses as -1): a character that could continue one, or none
            if (end == len(buf) or buf[end] in _NUMBER_GOES_ON) and more():
                continue
            start, pos = pos, end
            if lone_surrogate(buf, v, start, end):  # not Unicode: quarantined with its text, the rest still loads
                return "skip", buf[start:min(end, start + 100_000)]
            if _UNDECODED.search(buf, start, end):  # bytes that are not UTF-8: quarantined, the rest still loads
                return "undecoded", buf[start:end]
            return "ok", v

    def bad() -> tuple[int, Any, str | None, str | None]:
        """The record with an error at ``pos``: its text up to 100,000 characters."""
        while len(buf) - pos < 100_000 and more(100_000):
            pass
        line = line0 + buf.count("\n", 0, pos)
        return (k + 1 if array else line), None, buf[pos:pos + 100_000], "invalid JSON"

    while skip_space():
        if array and buf[pos] == "[":
            pos += 1
            if not skip_space():
                yield bad()
                return
            if buf[pos] == "]":
                pos += 1
                continue
            while True:
                state, v = value()
                if state == "bad":
                    yield bad()
                    return
                k += 1
                if state == "undecoded":
                    yield from undecodable_records(k, v, batch=False)
                else:
                    yield (k, v, None, None) if state == "ok" else (k, None, v, "invalid JSON")
                if not skip_space():
                    yield bad()
                    return
                if buf[pos] == ",":
                    pos += 1
                    if not skip_space():
                        yield bad()
                        return
                    continue
                if buf[pos] == "]":
                    pos += 1
                    break
                yield bad()
                return
            continue
        line = line0 + buf.count("\n", 0, pos)
        state, v = value()
        if state == "bad":
            yield bad()
            return
        if state == "skip":
            k += 1
            yield (k if array else line), None, v, "invalid JSON"
            continue
        if state == "undecoded":  # (a document that is an array: its elements, all with its line)
            k += 1
            yield from undecodable_records(k if array else line, v)
            continue
        for item in (v if isinstance(v, list) else (v,)):
            k += 1
            yield (k if array else line), item, None, None


def undecodable_records(k: int, text: str, batch: bool = True) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """The records, all at position ``k``, of a JSON text holding bytes that are not UTF-8 (decoded with
    ``errors="surrogateescape"``): each record holding such bytes is an error (:data:`NOT_UTF8`) with its text, the
    others are read as they are; nothing is read with the bytes replaced. An OTLP export's spans are records here as
    in the engine: one holding such bytes is an error alone, the export without it is read
    (:func:`split_undecodable_spans`). ``batch``: a JSON array gives its elements (a line or a document holding a
    batch), else it is one record (an element of an array). Text that is no JSON is one error, :data:`NOT_UTF8`.

    The raw text of an error keeps the bytes as surrogates, so that a copy of it can be written back as they were
    (:meth:`Rows.error` shows them replaced).

    >>> text = b'[{"a": 1}, {"a": "\\xff"}]'.decode("utf-8", "surrogateescape")
    >>> [(k, v, e) for k, v, _raw, e in undecodable_records(3, text)]
    [(3, {'a': 1}, None), (3, None, 'invalid encoding (not UTF-8)')]
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        yield k, None, text, NOT_UTF8
        return
    items = value if batch and isinstance(value, list) else [value]
    for item in items:
        if _utf8(item):
            yield k, item, None, None
            continue
        parts = split_undecodable_spans(item)
        if parts is None:
            yield k, None, text if len(items) == 1 and item is value else _dumps_text(item), NOT_UTF8
            continue
        good, bad = parts
        yield k, good, None, None
        for _sid, span in bad:
            yield k, None, _dumps_text(span), NOT_UTF8


def split_undecodable_spans(doc: Any) -> tuple[Any, list[tuple[str, Any]]] | None:
    """An OTLP export parsed from text holding bytes that are not UTF-8 (as surrogates): the export without the
    spans holding such bytes (changed in place), and those spans with their span id (its bytes shown replaced); None
    when it is no OTLP export or such bytes lie outside its spans (a resource, a scope): it is then bad whole. One
    rule for the engine's OTLP JSON lines and the readers of documents and arrays.

    >>> doc = json.loads(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "a1"}, {"spanId": "a2", "x": "\\xff"}]}]}]}'
    ...                  .decode("utf-8", "surrogateescape"))
    >>> good, bad = split_undecodable_spans(doc)
    >>> good, [sid for sid, _span in bad]
    ({'resourceSpans': [{'scopeSpans': [{'spans': [{'spanId': 'a1'}]}]}]}, ['a2'])
    >>> split_undecodable_spans(json.loads(b'{"resourceSpans": [{"resource": {"x": "\\xff"}}]}'
    ...                                    .decode("utf-8", "surrogateescape"))) is None
    True
    """
    rss = doc.get("resourceSpans") if isinstance(doc, dict) else None
    if not isinstance(rss, list):
        return None
    bad: list[Any] = []
    for rs in rss:
        for key in ("scopeSpans", "instrumentationLibrarySpans"):
            for ss in (rs.get(key) if isinstance(rs, dict) and isinstance(rs.get(key), list) else []):
                if isinstance(ss, dict) and isinstance(ss.get("spans"), list):
                    good: list[Any] = []
                    for sp in ss["spans"]:  # each span's text encoded once
                        (good if _utf8(sp) else bad).append(sp)
                    ss["spans"] = good
    if not bad or not _utf8(doc):
        return None
    return doc, [(shown_text(str(sp.get("spanId") if isinstance(sp, dict) else None)), sp) for sp in bad]


def shown_text(text: str) -> str:
    """Text read with ``errors="surrogateescape"`` as it is shown and stored: its bytes that are not UTF-8 replaced
    by U+FFFD (a lone surrogate of another kind too).

    >>> shown_text(b"B\\xff\\xfeD".decode("utf-8", "surrogateescape"))
    'B\ufffd\ufffdD'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _utf8(v: Any) -> bool:
    try:
        json.dumps(v, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dumps_text(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def epoch_us(value: Any) -> int | None:
    """Microseconds since the epoch (UTC) of a timestamp in any shape (see the module docstring); None when empty.

    Raises
    ------
    ValueError
        The value is not a timestamp in any known shape, or out of years 1..9999.

    Examples
    --------
    >>> epoch_us("2025-11-20T10:00:00.250Z")
    1763632800250000
    >>> epoch_us([1763632800, 250000000])
    1763632800250000
    >>> epoch_us("yesterday")
    Traceback (most recent call last):
    ...
    ValueError: 'yesterday'
    """
    if value is None or value == "":
        return None
    us: int | None = None
    kind = type(value)
    if kind is float or kind is int:  # the common case first (epoch numbers; a bool is neither)
        us = _number_us(value)
    elif isinstance(value, bool):
        raise ValueError(repr(value))
    elif isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        d = value - _EPOCH
        us = (d.days * 86400 + d.seconds) * 10**6 + d.microseconds
    elif isinstance(value, (list, tuple)):
        if len(value) == 2 and _plain_number(value[0]) and _plain_number(value[1]):
            # nanoseconds cut to the microsecond, as DuckDB and the nanosecond numbers here cut them
            ns = value[1]
            us = int(value[0]) * 10**6 + (math.floor(ns / 1000) if isinstance(ns, float) else ns // 1000)
        else:
            raise ValueError(repr(value))
    elif isinstance(value, (int, float)):
        us = _number_us(value)
    elif isinstance(value, str):
        s = value.strip()
        n = number(s)
        if n is not None:
            us = _number_us(n)
        elif not _NUMBER_RE.fullmatch(s):
            # ISO 8601, else the same with an offset written after a space glued to the time
            for text in (s, _ZONE_AFTER_SPACE_RE.sub(r"\1\2", s, count=1)):
                try:
                    d = _dt.datetime.fromisoformat(text)
                except ValueError:
                    continue
                return epoch_us(d)
            raise ValueError(repr(value))
    else:
        raise ValueError(repr(value))
    if us is None or not (_US_MIN <= us <= _US_MAX):
        raise ValueError(repr(value))
    return us


def number(text: Any) -> int | float | None:
    """The number numeric text stands for (:data:`NUMBER`): an ``int`` when it has no fraction or exponent, else a
    finite ``float``; None for anything else (text that is no number, one too large for a float, a non-text value).
    The one rule every reader of a format applies to a number written as text; a caller quarantines what is None.

    Examples
    --------
    >>> number(" 12 "), number("-1.5e3"), number(".5"), number("+7"), number("12345678901234567890123")
    (12, -1500.0, 0.5, 7, 12345678901234567890123)
    >>> [number(t) for t in ("1_000", "nan", "inf", "1e999", "\u0661\u0662", "", "0x10", "+-1", "1,5", None, 3)]
    [None, None, None, None, None, None, None, None, None, None, None]
    """
    if not isinstance(text, str) or not _NUMBER_RE.fullmatch(text):
        return None
    if _INTEGER_RE.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts (4,300)
            return None
    x = float(text)
    return x if math.isfinite(x) else None


def numeric_text(s: str) -> str:
    """SQL of text ``s`` when it can be numeric text by :data:`NUMBER`, else NULL: what the engine's casts of text to
    a number (``TRY_CAST(... AS DOUBLE)``, ``HUGEINT``...) are given, so they read the rule of :func:`number`.
    DuckDB's casts already refuse other words than ``nan``/``inf`` (refused as not finite), other scripts' digits
    and hex in a double, but read digit separators (``1_000``) and a sign after a sign (``+-1``): those are
    refused here (two substring tests: a full match of the pattern doubles the time of the cast).

    >>> import duckdb
    >>> sql = f"SELECT TRY_CAST({numeric_text('x')} AS DOUBLE) FROM unnest($t) AS u(x)"
    >>> [v for (v,) in duckdb.execute(sql, {"t": [" 12 ", "1e3", "1_000", "+-1.5", "\u0661", "nan"]}).fetchall()]
    [12.0, 1000.0, None, None, None, nan]
    """
    return f"CASE WHEN NOT (contains({s}, '_') OR contains({s}, '+-')) THEN {s} END"


def _plain_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _number_us(x: int | float) -> int | None:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    a = abs(x)
    if a < 1e11:
        return int(round(x * 10**6))
    if a < 1e14:
        return int(round(x * 1000))
    if a < 1e17:
        return int(round(x))
    return int(x) // 1000 if isinstance(x, int) else int(round(x / 1000))


def duration_ms(start_us: int | None, end_us: int | None) -> float | None:
    """Milliseconds between two epoch-microsecond instants (None when one is missing).

    >>> duration_ms(0, 1500)
    1.5
    """
    if start_us is None or end_us is None:
        return None
    return (end_us - start_us) / 1000.0


def first(*values: Any) -> Any:
    """The first value that is not None and not an empty string (the documented "one wins" rule for old/new names).

    >>> first(None, "", 0, 5)
    0
    """
    for v in values:
        if v is not None and v != "":
            return v
    return None


def is_timeout(*texts: Any) -> bool:
    """Whether any of ``texts`` (error types and messages of a failed call; None skipped) says it timed out
    (:data:`TIMEOUT`).

    >>> is_timeout("openai.APITimeoutError"), is_timeout(None, "Request timed out."), is_timeout("DeadlineExceeded")
    (True, True, True)
    >>> is_timeout("httpx.ReadTimeout"), is_timeout("RateLimitError", "429 Too Many Requests"), is_timeout(None)
    (True, False, False)
    """
    return any(t is not None and _TIMEOUT_RE.search(str(t)) is not None for t in texts)


class Rows:
    """Canonical rows of one file, with their position, raw text and, for a record that cannot be a row, the reason.

    A format module calls :meth:`add` for each row it derives (a value per canonical column, ``ts``/``end_ts`` as
    epoch microseconds) and :meth:`error` for a record it cannot read; the engine takes :meth:`to_arrow`.

    Examples
    --------
    >>> r = Rows()
    >>> r.add(1, {"call_id": "a", "ts": 0, "input_tokens": 3, "attributes": {"x": 1}}, raw={"id": "a"})
    >>> r.error(2, "not a span", "not a span: no spanId", raw="[]", field=None)
    >>> t = r.to_arrow()
    >>> t.column("s:input_tokens").to_pylist(), t.column("_err_kind").to_pylist()
    (['3', None], [None, 'not a span'])
    """

    def __init__(self) -> None:
        self.k: list[int] = []
        self.raw: list[str | None] = []
        self.err: list[str | None] = []
        self.kind: list[str | None] = []
        self.field: list[str | None] = []
        self.values: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.k)

    def add(self, k: int, values: dict[str, Any], raw: Any = None) -> None:
        self.k.append(k)
        self.raw.append(raw if isinstance(raw, str) or raw is None else _dumps(raw))
        self.err.append(None)
        self.kind.append(None)
        self.field.append(None)
        self.values.append(values)

    def error(self, k: int, kind: str, reason: str, raw: Any = None, field: str | None = None) -> None:
        self.k.append(k)
        # (a record's text with bytes that are not UTF-8, :func:`undecodable_records`: shown replaced)
        self.raw.append(shown_text(raw) if isinstance(raw, str) else None if raw is None else _dumps(raw))
        self.err.append(reason)
        self.kind.append(kind)
        self.field.append(field)
        self.values.append({})

    def to_arrow(self, columns: tuple[str, ...] | None = None):
        """A pyarrow table: ``k``, ``raw``, ``_err``, ``_err_kind``, ``_err_field`` and ``s:<column>`` as text."""
        import pyarrow as pa

        if columns is None:
            seen: dict[str, None] = {}
            for v in self.values:
                for c in v:
                    seen.setdefault(c)
            columns = tuple(seen)
        data: dict[str, Any] = {
            "k": pa.array(self.k, pa.int64()),
            "raw": pa.array(self.raw, pa.string()),
            "_err": pa.array(self.err, pa.string()),
            "_err_kind": pa.array(self.kind, pa.string()),
            "_err_field": pa.array(self.field, pa.string()),
        }
        with paused():  # workbench._gc: a batch's texts, freed by reference counting
            for c in columns:
                vals = [v.get(c) for v in self.values]
                # Without a call per value where the column's types allow it (the type check is C-level): texts and
                # gaps are their own text; integers (not booleans) are written in decimal by Arrow, as str() does.
                kinds = set(map(type, vals))
                if kinds <= _TEXT_TYPES:
                    data["s:" + c] = pa.array(vals, pa.string())
                    continue
                if kinds <= _INT_TYPES:
                    try:
                        data["s:" + c] = pa.array(vals, pa.int64()).cast(pa.string())
                        continue
                    except OverflowError:  # beyond 64 bits: written by value_text
                        pass
                data["s:" + c] = pa.array(list(map(value_text, vals)), pa.string())
        return pa.table(data)


#: Stack the standard library's JSON writer may use: :func:`loads` reads at most 1,024 levels (orjson's limit), and
#: the writer takes one interpreter level per JSON level, above the caller's own frames.
_DUMPS_RECURSION = 1024 + 2000


def _dumps(v: Any) -> str:
    try:
        return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    except TypeError:
        # An integer beyond 64 bits, or a value nested deeper than orjson writes (255 levels): the standard library
        # writes it. Such a value can be as deep as loads() reads, past the interpreter's default limit of 1,000 (the
        # whole file failed with RecursionError): the limit is raised for this one call.
        limit = sys.getrecursionlimit()
        if limit < _DUMPS_RECURSION:
            sys.setrecursionlimit(_DUMPS_RECURSION)
        try:
            return json.dumps(v, default=str)
        finally:
            if limit < _DUMPS_RECURSION:
                sys.setrecursionlimit(limit)


def loads(data: bytes | str) -> Any:
    """Parse JSON with orjson, or the standard library for what orjson refuses (``NaN`` and ``Infinity``, which
    Python's own ``json.dumps`` writes: a NaN is read as missing).

    >>> loads(b'{"cost": NaN, "n": 1}')
    {'cost': nan, 'n': 1}
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(data)
        except RecursionError:  # deeper than the interpreter's stack (orjson stops at 1,024 levels)
            raise ValueError("JSON nested too deeply") from None
        if lone_surrogate(data, value):
            raise ValueError("JSON text with a lone surrogate escape (not Unicode)") from None
        return value


def lone_surrogate(text: bytes | str, value: Any, start: int = 0, end: int | None = None) -> bool:
    """Whether a value parsed from ``text[start:end]`` holds a lone surrogate (``"\\ud800"`` in JSON: no UTF-8 can
    hold it, and it would stop the whole file's load later). The value is checked only when its text has such an
    escape.

    Examples
    --------
    >>> import json
    >>> bad, good = json.dumps(["\\ud800"]), json.dumps(["\\u00e9"])  # JSON texts with the escapes \\ud800, \\u00e9
    >>> lone_surrogate(bad, json.loads(bad)), lone_surrogate(good, json.loads(good))
    (True, False)
    """
    esc = (b"\\ud", b"\\uD") if isinstance(text, bytes) else ("\\ud", "\\uD")
    if text.find(esc[0], start, end) < 0 and text.find(esc[1], start, end) < 0:
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_TEXT_TYPES = {str, type(None)}
_INT_TYPES = {int, type(None)}


def value_text(v: Any) -> str | None:
    """Text of a value for the engine, which types and checks it: JSON for lists and objects (how every row built in
    Python hands its values over, :meth:`Rows.to_arrow`).

    >>> value_text(12), value_text(0.5), value_text(True), value_text({"a": 1}), value_text(float("nan"))
    ('12', '0.5', 'true', '{"a":1}', None)
    """
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):  # Python's json writes NaN for a missing number; pandas has NaN for missing
            return None
        return repr(v) if math.isfinite(v) else str(v)
    return _dumps(v)


#: Exceptions a format module's mapping may raise on a record of unexpected shape: the record is quarantined.
MALFORMED = (TypeError, AttributeError, ValueError, KeyError, IndexError, OverflowError)


class InvalidField(ValueError):
    """A record's field that cannot be read (a JSON text that is none): the record is quarantined with ``kind``,
    ``reason`` and ``field`` (the source field's name), as a reader that finds it says.

    >>> e = InvalidField("invalid JSON: a.b", "invalid JSON in a.b: '{' (expected a JSON object)", "a.b")
    >>> e.kind, e.field, str(e)
    ('invalid JSON: a.b', 'a.b', "invalid JSON in a.b: '{' (expected a JSON object)")
    """

    def __init__(self, kind: str, reason: str, field: str) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.field = kind, reason, field


def malformed(rows: Rows, k: int, what: str, exc: Exception, raw: Any) -> None:
    """Quarantine a record whose shape the format module could not read (a member of an unexpected type).

    >>> r = Rows(); malformed(r, 3, "Vercel span", AttributeError("'int' object has no attribute 'get'"), {"a": 1})
    >>> r.kind[-1], r.err[-1]
    ('malformed Vercel span', "malformed Vercel span: AttributeError: 'int' object has no attribute 'get'")
    """
    rows.error(k, f"malformed {what}", f"malformed {what}: {type(exc).__name__}: {str(exc)[:200]}", raw=raw)


def timestamp(row_values: dict, rows: Rows, k: int, raw: Any, column: str, value: Any,
              expected: str = "ISO 8601, epoch seconds/ms/us/ns or [seconds, nanos]",
              parse: Any = None) -> bool:
    """Put the epoch microseconds of ``value`` into ``row_values[column]``; on failure record the row as quarantined
    with the reason and return False. ``parse`` (:func:`epoch_us` unless given) reads the field, ``expected`` says
    what it takes.

    >>> r, v = Rows(), {}
    >>> timestamp(v, r, 1, {}, "ts", "2025-01-01T00:00:00Z"), v["ts"]
    (True, 1735689600000000)
    >>> timestamp({}, r, 2, {}, "ts", "soon"), r.err[-1]
    (False, "unparseable timestamp in ts: 'soon' (expected ISO 8601, epoch seconds/ms/us/ns or [seconds, nanos])")
    """
    try:
        row_values[column] = (parse or epoch_us)(value)
        return True
    except (ValueError, OverflowError, TypeError):
        shown = value if isinstance(value, str) else _dumps(value)
        shown = shown[:80] + ("..." if len(shown) > 80 else "")
        rows.error(k, f"unparseable timestamp: {column}",
                   f"unparseable timestamp in {column}: {shown!r} (expected {expected})", raw=raw, field=column)
        return False
