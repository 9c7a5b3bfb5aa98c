"""``workbench collect``: an OTLP/HTTP trace receiver that spools every batch durably, then loads it like a file.

Point an application's OpenTelemetry exporter at it (``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318``; the
exporter adds ``/v1/traces``) and its GenAI spans land in ``calls`` through :func:`workbench.io.ingest.ingest`, with
the same columns, accounting, dedupe, quarantine and lineage as a loaded file.

The protocol (OTLP/HTTP, traces only)
-------------------------------------
``POST /v1/traces`` with a body of ``Content-Type: application/x-protobuf`` (the exporters' default) or
``application/json`` (OTLP JSON), optionally ``Content-Encoding: gzip`` (or ``deflate``). Answers:

* **200** with an empty ``ExportTraceServiceResponse`` in the request's encoding, only once the batch is on disk
  (written and fsync'ed to the spool). A batch with no span is acknowledged without being spooled. A JSON span
  with bytes that are not UTF-8 is rejected alone: the others are spooled and the answer's ``partialSuccess`` names
  it (``rejectedSpans``, ``errorMessage``); such bytes outside any span are a 400.
* **400** a body that is not an ``ExportTraceServiceRequest`` (bad protobuf, invalid JSON, no ``resourceSpans``
  list, a broken gzip stream): nothing is spooled; the body is a ``google.rpc.Status`` naming the problem. Also 400,
  and the connection closed, for a body whose length is ambiguous or no number (two different ``Content-Length``
  headers, ``Content-Length`` with ``Transfer-Encoding``, ``-1``): a proxy in front could read another length.
* **411** no ``Content-Length`` (a ``Transfer-Encoding: chunked`` body is read as well); **413** a body over
  ``max_body_bytes`` (default 16 MiB, compressed or not), or one holding more than 50,000 spans, 10,000 resource
  and scope entries, or 500,000 attributes, events and links (:data:`~workbench.io.otlp_proto.MAX_SPANS`,
  ``MAX_ENTRIES``, ``MAX_ITEMS``; parsing costs memory per message, so a protobuf body is counted on its wire format
  before it is parsed: 16 MiB of empty spans took 1.4 GB);
  **415** another content type or encoding; **404** another path; **405** another method on ``/v1/traces``, **501**
  a method unknown here, **505** HTTP/2 (its preface), **400** a request line or headers that do not parse: every
  refusal is a ``google.rpc.Status`` (JSON when the request is not protobuf) and those close the connection;
  **503** (with ``Retry-After``) while stopping, when the spool cannot be written, or when the request waited 10 s
  for one of the 2 parse slots (parsing takes many times a body's size: a few at a time): the exporter retries. Also
  503, at once and the connection closed, to a connection over the 64 served at once (``--max-connections``, a thread
  each; what its client still sends is read and dropped for up to 2 s, so it reads the answer); a connection with no request begun (new, or kept alive after one) is closed after 15 s. A body
  refused unread (413, 415, 404, 405) is drained first (up to 8 times the limit), so the client reads the answer.
  A request with ``Expect: 100-continue`` is checked (path, method, content type and encoding, declared length)
  before it is invited to send its body: a refused one gets its 4xx instead of ``100 Continue``, and its body is
  not read.
  **408** a body that has not arrived 120 s after the request's first byte (or stalls 60 s): a slow-loris client
  cannot hold a handler; one still sending its headers then is disconnected.

The spool (``--spool DIR``, default ``DB.spool`` beside the database)
---------------------------------------------------------------------
Append-only segment files ``traces-000001.spool``, ... (a new one at each start and past 64 MiB), each starting
with the line ``WBSPOOL1``. A record is ``length (4 bytes, big-endian) | crc32 (4 bytes) | kind (1 byte: 0 protobuf,
1 JSON) | body`` (the body decompressed); the crc32 covers the kind and the body. Each acknowledged batch is one
record, written and fsync'ed before the 200. A record whose write or fsync fails (a full disk) is answered 503; its
segment is cut back to the last acknowledged record and never written again, and the next batch goes to a new
segment (503 while none can be made). A record cut short by a crash (never acknowledged) fails its length
or crc check: reading that segment stops there, and the torn tail is reported and ignored. A new start never
appends to an old segment. Loaded segments are kept; delete them when the database is backed up.

Loading, exactly once
---------------------
A background thread reads the records not yet loaded, writes them as one OTLP JSON lines file named after the spool
and the byte range (``collect-<spool id>-<segment>-<start>-<end>.otlp.jsonl``, in ``DIR/loading``), and loads it with
:func:`~workbench.io.ingest.ingest` (format ``otel``): one transaction that inserts the spans and the
``ingest_runs`` row naming that range. The "loaded up to" offset of each segment is therefore read back from
``ingest_runs`` in the database itself, committed with the rows: after a crash at any moment, a restart loads exactly
what was not committed. Dedupe on ``call_id`` is a second guard: a span sent twice (an exporter retry) is counted as
a duplicate, not inserted twice. A quarantined span's ``line_no`` is the number of its batch within that range. A
record over the limits of one request (spooled before they existed) is not parsed: it is quarantined once, the limit
as its reason, and its bytes stay in the spool.

The database is open only while a batch loads (a new connection each load, closed after it), so reports, metrics and
``workbench schedule run`` open it beside the receiver: between two loads, or after waiting for one (their lock wait).
A load that finds the database held by another process (a writer, or readers: DuckDB lets a writer in only alone)
waits 1 s for it, then leaves the batches in the spool, says so once, and tries again (after 1 s, doubling up to
5 s): nothing is lost, the batches load once the database is free. Stopping, it waits the whole lock wait
(``$WORKBENCH_LOCK_TIMEOUT_S``, 30 s), then exits 2 with the batches kept for the next start.

Examples
--------
>>> import json, tempfile, threading, urllib.request, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> c = Collector(d / "wb.duckdb", port=0, progress=False)
>>> c.start()
>>> body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c",
...     "spanId": "b7ad6b7169203331", "name": "chat", "startTimeUnixNano": "1732000000000000000",
...     "endTimeUnixNano": "1732000001000000000", "attributes": [{"key": "gen_ai.usage.input_tokens",
...     "value": {"intValue": "42"}}]}]}]}]}).encode()
>>> req = urllib.request.Request(c.url, data=body, headers={"Content-Type": "application/json"})
>>> urllib.request.urlopen(req, timeout=10).read()
b'{}'
>>> c.stop()
0
>>> import workbench as wb
>>> with wb.connect(d / "wb.duckdb") as db:
...     db.sql("select call_id, input_tokens, latency_ms from calls").rows()
[('b7ad6b7169203331', 42, 1000.0)]
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import DatabaseError, InputError, ParameterError
from workbench.io import otlp_proto
from workbench.io.records import lone_surrogate, split_undecodable_spans

DEFAULT_PORT = 4318
DEFAULT_HOST = "127.0.0.1"
MAX_BODY_BYTES = 16 * 1024 * 1024
SEGMENT_BYTES = 64 * 1024 * 1024
BATCH_RECORDS = 1000  # records (acknowledged requests) loaded in one transaction at most
BATCH_BYTES = 64 * 1024 * 1024
FLUSH_SECONDS = 0.5  # the loader waits this long after new data, so that batches gather
SPOOL_MAGIC = b"WBSPOOL1\n"
KIND_PROTO, KIND_JSON = 0, 1
_HEADER = struct.Struct(">IIB")  # length of the body, crc32 of kind + body, kind
_CONTENT_TYPES = {"application/x-protobuf": KIND_PROTO, "application/protobuf": KIND_PROTO,
                  "application/json": KIND_JSON}
_BATCH_NAME = re.compile(r"collect-(?P<id>[0-9a-f]{32})-(?P<seg>\d+)-(?P<start>\d+)-(?P<end>\d+)\.otlp\.jsonl$")
_DISCARD_MIN = 64 << 20  # a refused body up to this size is always read to its end
_INFLATE_CHUNK = 4096  # compressed bytes fed to zlib at a time (see _decompressed)
PARSE_SLOTS = 2  # request bodies decompressed and checked at the same time (the rest wait for a slot)
SLOT_WAIT_SECONDS = 10.0  # how long a request waits for a slot before a 503 with Retry-After
REQUEST_SECONDS = 120.0  # a request's headers and body arrive within this many seconds of its first byte (else 408)
IDLE_SECONDS = 15.0  # a connection with no request begun (new, or kept alive after one) is closed after this long
MAX_CONNECTIONS = 64  # connections served at once, a thread each; one more is answered 503 and closed
LINGER_SECONDS = 2.0  # a refused connection's further bytes are read and dropped this long at most, then it is closed
LINGER_MAX = 1024  # refused connections lingering at once; past it the oldest is closed at once
LOCK_WAIT_SECONDS = 1.0  # how long a load waits for a database another process holds before it is tried again later
HELD_RETRY_SECONDS = 5.0  # the longest pause between two tries to open a database another process holds


class BadRequest(ValueError):
    """A request body that is not an OTLP trace export (HTTP 400).

    Examples
    --------
    >>> try:
    ...     check_body(KIND_JSON, b"[]")
    ... except BadRequest as exc:
    ...     print(isinstance(exc, ValueError), exc)
    True expected a JSON object (an ExportTraceServiceRequest), got list
    """


# ------------------------------------------------------------------------------------------------------------ spool


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_record(kind: int, body: bytes) -> bytes:
    """One spool record: length, crc32 of kind and body, kind, body.

    >>> encode_record(KIND_JSON, b"{}").hex()
    '000000021cfc1e99017b7d'
    """
    return _HEADER.pack(len(body), zlib.crc32(bytes([kind]) + body), kind) + body


@dataclass
class SpoolRead:
    """Records read from a segment: (kind, body, offset after the record), where reading stopped, and why.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> seg = pathlib.Path(tempfile.mkdtemp()) / "traces-000001.spool"
    >>> _ = seg.write_bytes(SPOOL_MAGIC + encode_record(KIND_JSON, b"{}"))
    >>> read_records(seg)
    SpoolRead(records=[(1, b'{}', 20)], end=20, torn=None)
    >>> _ = seg.write_bytes(b"not a spool")
    >>> read_records(seg)
    SpoolRead(records=[], end=0, torn='traces-000001.spool: not a workbench spool segment (bad header)')
    """

    records: list[tuple[int, bytes, int]]
    end: int
    torn: str | None = None  # a reason when the rest of the segment is a torn (never acknowledged) write


def read_records(path: str | os.PathLike, start: int = 0, stop: int | None = None,
                 max_records: int = BATCH_RECORDS, max_bytes: int = BATCH_BYTES) -> SpoolRead:
    """Read the records of a spool segment from byte ``start`` (0: after the header) up to ``stop`` (default: EOF).

    Stops at the first record that is incomplete or fails its crc: ``torn`` then says why, and ``end`` is where the
    good records end.

    >>> import tempfile, pathlib
    >>> seg = pathlib.Path(tempfile.mkdtemp()) / "traces-000001.spool"
    >>> _ = seg.write_bytes(SPOOL_MAGIC + encode_record(KIND_JSON, b"{}") + encode_record(KIND_JSON, b"{}")[:-1])
    >>> r = read_records(seg)
    >>> [(kind, body, end) for kind, body, end in r.records], r.end, r.torn
    ([(1, b'{}', 20)], 20, 'a record of 2 byte(s) cut short at 1')
    """
    p = Path(path)
    out: list[tuple[int, bytes, int]] = []
    with open(p, "rb") as fh:
        if fh.read(len(SPOOL_MAGIC)) != SPOOL_MAGIC:
            return SpoolRead([], start, f"{p.name}: not a workbench spool segment (bad header)")
        pos = max(start, len(SPOOL_MAGIC))
        limit = os.fstat(fh.fileno()).st_size if stop is None else stop
        fh.seek(pos)
        size = 0
        while pos < limit and len(out) < max_records and size < max_bytes:
            head = fh.read(_HEADER.size)
            if len(head) < _HEADER.size or pos + _HEADER.size > limit:
                return SpoolRead(out, pos, f"{limit - pos} byte(s) of an incomplete record header")
            n, crc, kind = _HEADER.unpack(head)
            body = fh.read(n)
            if len(body) < n or pos + _HEADER.size + n > limit:
                return SpoolRead(out, pos, f"a record of {n} byte(s) cut short at {len(body)}")
            if zlib.crc32(bytes([kind]) + body) != crc or kind not in (KIND_PROTO, KIND_JSON):
                return SpoolRead(out, pos, "a record failing its crc32 check")
            pos += _HEADER.size + n
            size += n
            out.append((kind, body, pos))
    return SpoolRead(out, pos)


class Spool:
    """The append-only spool directory: segments ``traces-NNNNNN.spool`` and the spool's id (``spool.id``).

    >>> import tempfile
    >>> sp = Spool(tempfile.mkdtemp())
    >>> sp.open_segment(); sp.append(KIND_PROTO, b"\\x0a\\x00"); sp.active()
    (1, 20)
    >>> [r[:2] for r in read_records(sp.path_of(1)).records]
    [(0, b'\\n\\x00')]
    >>> sp.close()
    """

    def __init__(self, path: str | os.PathLike, segment_bytes: int = SEGMENT_BYTES):
        self.dir = Path(path)
        self.segment_bytes = segment_bytes
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "loading").mkdir(exist_ok=True)
            self.id = self._read_id()
        except OSError as exc:
            raise InputError(f"{self.dir}: cannot use the spool directory: {exc}") from None
        self.lock = threading.Lock()
        self.changed = threading.Condition()
        self.version = 0  # counts the changes notified (under ``changed``): a waiter sees one made before it waits
        self._fd: int | None = None
        self.segment = 0
        self.durable = 0  # bytes of the active segment that are written and fsync'ed
        self.failed = False  # a write to the active segment failed: the next record goes to a new one

    def _read_id(self) -> str:
        f = self.dir / "spool.id"
        if f.exists():
            text = f.read_text(encoding="ascii").strip()
            if not re.fullmatch(r"[0-9a-f]{32}", text):
                raise OSError(f"{f} does not hold a spool id")
            return text
        text = uuid.uuid4().hex
        tmp = self.dir / "spool.id.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, f)
        _fsync_dir(self.dir)
        return text

    def segments(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.dir.glob("traces-*.spool"):
            m = re.fullmatch(r"traces-(\d+)\.spool", p.name)
            if m:
                out.append((int(m.group(1)), p))
        return sorted(out)

    def path_of(self, segment: int) -> Path:
        return self.dir / f"traces-{segment:06d}.spool"

    def open_segment(self) -> None:
        """Start a new segment (never appending after a possibly torn tail of an earlier run, or of a failed write).
        When it cannot be made (a full disk), the file is removed and the active segment stays as it was."""
        segs = self.segments()
        n = (segs[-1][0] if segs else 0) + 1
        path = self.path_of(n)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            if os.write(fd, SPOOL_MAGIC) != len(SPOOL_MAGIC):
                raise OSError(errno.ENOSPC, f"short write of the header of {path.name}")
            os.fsync(fd)
            _fsync_dir(self.dir)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        old, self._fd = self._fd, fd
        self.segment, self.durable, self.failed = n, len(SPOOL_MAGIC), False
        if old is not None:
            os.close(old)

    def append(self, kind: int, body: bytes) -> None:
        """Write one record and fsync it; returns once it is durable (then the batch may be acknowledged).

        A write or fsync that fails (``OSError``: the batch is not acknowledged) leaves the segment with bytes of
        unknown state after its durable end: it is cut back to that end and never written again (a record appended
        after them would be read behind them, or lost behind a torn one), and the next record goes to a new segment;
        while none can be made, every append raises."""
        rec = encode_record(kind, body)
        with self.lock:
            if self._fd is None:
                raise OSError("the spool is closed")
            if self.failed or (self.durable + len(rec) > self.segment_bytes and self.durable > len(SPOOL_MAGIC)):
                self.open_segment()
            try:
                written = os.write(self._fd, rec)
                if written != len(rec):  # a short write (disk full)
                    raise OSError(errno.ENOSPC, f"short write to the spool ({written} of {len(rec)} bytes)")
                os.fsync(self._fd)
            except OSError:
                self.failed = True
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self.durable)
                with contextlib.suppress(OSError):
                    self.open_segment()  # else the next append tries again
                raise
            self.durable += len(rec)
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def active(self) -> tuple[int, int]:
        """(active segment, its durable length): the loader reads the active segment up to there only."""
        with self.lock:
            return self.segment, self.durable

    def close(self) -> None:
        with self.lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


# ----------------------------------------------------------------------------------------------------- validation


def _decompressed(body: bytes, limit: int) -> bytes | None:
    """A gzip or zlib body decompressed (None: over ``limit`` bytes). Every gzip member of it: a body of several
    (``gzip(a) + gzip(b)``, as concatenated files and some clients write) is their concatenation; anything else after a
    stream is a :class:`zlib.error`.

    The input is fed a slice of at most ``_INFLATE_CHUNK`` bytes at a time and the output kept in parts, so the time is
    linear in the body: feeding it whole, each member's end copied the rest of the body (zlib's ``unused_data``), and a
    body of 200,000 empty members held the handler for minutes.

    >>> import gzip; _decompressed(gzip.compress(b"ab") + gzip.compress(b"cd"), 100)
    b'abcd'
    >>> _decompressed(gzip.compress(b"x" * 101), 100) is None
    True
    """
    view, n = memoryview(body), len(body)
    parts: list[bytes] = []
    size = pos = 0
    while True:  # one stream (a gzip member) a turn, from ``pos``
        d = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
        while not d.eof:
            if pos >= n:
                raise zlib.error("truncated stream")
            chunk = view[pos:pos + _INFLATE_CHUNK]
            pos += len(chunk)
            parts.append(d.decompress(chunk, limit + 1 - size))
            size += len(parts[-1])
            if d.unconsumed_tail or size > limit:
                return None
        pos -= len(d.unused_data)  # the input after the end of the stream, at most one chunk
        if pos == n:
            return b"".join(parts)
        if bytes(view[pos:pos + 2]) != b"\x1f\x8b":
            raise zlib.error(f"{n - pos} bytes after the end of the stream")


class OverLimit(BadRequest):
    """A request body holding more than one request may (HTTP 413): more spans, resource and scope entries, or
    attributes, events and links than :data:`~workbench.io.otlp_proto.MAX_SPANS`, ``MAX_ENTRIES``, ``MAX_ITEMS``.

    Examples
    --------
    >>> try:
    ...     check_body(KIND_PROTO, b"\\x0a\\x00" * 10_001)  # 10,001 empty resource entries
    ... except OverLimit as exc:
    ...     print(exc)
    over 10000 resource and scope entries in one request (MAX_ENTRIES); send smaller batches ...
    """


def _json_over_limit(doc: Any) -> str | None:
    """:func:`~workbench.io.otlp_proto.over_limit` of a parsed OTLP JSON request (the protobuf one is counted before
    it is parsed, by :func:`~workbench.io.otlp_proto.count_request`); parts of the wrong type count nothing."""

    def items(obj: Any, *names: str) -> int:
        return sum(len(v) for v in (obj.get(k) for k in names) if isinstance(v, list)) if isinstance(obj, dict) else 0

    counts = [0, 0, 0]
    rss = doc.get("resourceSpans") if isinstance(doc, dict) else None
    for rs in rss if isinstance(rss, list) else ():
        counts[1] += 1
        counts[2] += items(rs.get("resource") if isinstance(rs, dict) else None, "attributes")
        sss = rs.get("scopeSpans") if isinstance(rs, dict) else None
        for ss in sss if isinstance(sss, list) else ():
            counts[1] += 1
            counts[2] += items(ss.get("scope") if isinstance(ss, dict) else None, "attributes")
            spans = ss.get("spans") if isinstance(ss, dict) else None
            for span in spans if isinstance(spans, list) else ():
                counts[0] += 1
                counts[2] += items(span, "attributes", "events", "links")
    return otlp_proto.over_limit(counts)


class _NotUtf8(BadRequest):
    """A JSON request body with bytes that are not UTF-8 (:func:`without_undecodable_spans` may save its other
    spans)."""


def without_undecodable_spans(body: bytes) -> tuple[bytes, list[str]]:
    """A JSON request body whose bytes that are not UTF-8 all lie inside spans: the body without those spans, and
    their span ids (the rule of ingest: :func:`~workbench.io.records.split_undecodable_spans`). They are reported
    to the client in the response's ``partialSuccess`` and the others are acknowledged: a 400 is never retried, the
    whole batch would be lost. :class:`BadRequest` when such bytes lie outside any span or the body is no JSON.

    >>> without_undecodable_spans(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "a1"}, {"spanId": "a2", "name": "\\xff"}]}]}]}')
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "a1"}]}]}]}', ['a2'])
    """
    try:
        doc = json.loads(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    parts = split_undecodable_spans(doc)
    if parts is None:
        raise BadRequest("bytes that are not UTF-8 outside any span (in a resource or a scope): the batch cannot "
                         "be read; send its text in UTF-8")
    good, bad = parts
    return json.dumps(good, ensure_ascii=False).encode("utf-8"), [sid for sid, _span in bad]


def partial_success(span_ids: list[str]) -> bytes:
    """The JSON answer to a request whose spans ``span_ids`` were rejected for bytes that are not UTF-8 (OTLP's
    ``ExportTraceServiceResponse.partial_success``; ``rejectedSpans`` an int64, a string in JSON).

    >>> partial_success(["a2"])
    b'{"partialSuccess": {"rejectedSpans": "1", "errorMessage": "1 span with bytes that are not UTF-8 rejected: a2"}}'
    """
    n = len(span_ids)
    shown = ", ".join(span_ids[:10]) + (f" and {n - 10} more" if n > 10 else "")
    why = f"{n} span{'s' if n != 1 else ''} with bytes that are not UTF-8 rejected: {shown}"
    return json.dumps({"partialSuccess": {"rejectedSpans": str(n), "errorMessage": why}}).encode()


def check_body(kind: int, body: bytes) -> int:
    """The number of spans in a request body; :class:`BadRequest` when it is not an OTLP trace export, and
    :class:`OverLimit` when it holds more than one request may (see :func:`~workbench.io.otlp_proto.count_request`:
    a protobuf body is counted before it is parsed).

    >>> check_body(KIND_JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "01"}]}]}]}')
    1
    >>> check_body(KIND_JSON, b'{"resourceSpans": 3}')
    Traceback (most recent call last):
    ...
    workbench.io.collect.BadRequest: resourceSpans: expected a list, got int
    """
    if kind == KIND_PROTO:
        over = otlp_proto.count_request(body)
        if over is not None:
            raise OverLimit(over)
        try:
            msg = otlp_proto.parse_request(body)
        except otlp_proto.DecodeError as exc:
            raise BadRequest(str(exc)) from None
        return sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)
    try:
        doc = json.loads(body)
    except UnicodeDecodeError as exc:
        raise _NotUtf8(f"invalid JSON: {exc}") from None
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("invalid JSON: nested too deeply") from None
    if lone_surrogate(body, doc):  # acknowledged, it could never be loaded: the whole batch would be quarantined
        raise BadRequest("a string holds a lone surrogate escape (such as \\ud800): not Unicode text")
    if not isinstance(doc, dict):
        raise BadRequest(f"expected a JSON object (an ExportTraceServiceRequest), got {type(doc).__name__}")
    n = 0
    rss = doc.get("resourceSpans", [])
    if not isinstance(rss, list):
        raise BadRequest(f"resourceSpans: expected a list, got {type(rss).__name__}")
    for i, rs in enumerate(rss):
        where = f"resourceSpans[{i}]"
        if not isinstance(rs, dict):
            raise BadRequest(f"{where}: expected an object, got {type(rs).__name__}")
        sss = rs.get("scopeSpans", [])
        if not isinstance(sss, list):
            raise BadRequest(f"{where}.scopeSpans: expected a list, got {type(sss).__name__}")
        for j, ss in enumerate(sss):
            spans = ss.get("spans", []) if isinstance(ss, dict) else None
            if not isinstance(spans, list) or not all(isinstance(s, dict) for s in spans):
                raise BadRequest(f"{where}.scopeSpans[{j}].spans: expected a list of span objects")
            n += len(spans)
    over = _json_over_limit(doc)
    if over is not None:
        raise OverLimit(over)
    return n


def to_json_line(kind: int, body: bytes) -> bytes:
    """A spooled body as one line of OTLP JSON (what the ``otel`` ingest path reads).

    >>> to_json_line(KIND_JSON, b'{ "resourceSpans" : [] }')
    b'{"resourceSpans":[]}'
    >>> to_json_line(KIND_PROTO, b"")
    b'{"resourceSpans":[]}'

    A record over the limits of one request (spooled before they existed) is not parsed: it becomes a line that is
    quarantined once with the reason, instead of taking gigabytes at every try (the spool keeps its bytes).

    >>> to_json_line(KIND_PROTO, b"\\x0a\\x00" * 10_001)[:107]
    b'{"workbench.undecodable": "over 10000 resource and scope entries in one request (MAX_ENTRIES); send smaller'
    """
    try:
        if kind == KIND_PROTO:
            over = otlp_proto.count_request(body)
            if over is None:
                return otlp_proto.to_json_bytes(otlp_proto.parse_request(body))
        else:
            doc = json.loads(body)
            over = _json_over_limit(doc)
            if over is None:
                return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        why, kept = over, {"bytes": len(body)}
    except (otlp_proto.DecodeError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        # checked on receipt, so never expected; kept (quarantined with its reason), never dropped
        why, kept = str(exc), {"body": body.decode("latin-1")}
    return json.dumps({"workbench.undecodable": why, **kept}).encode("utf-8")


def _status_body(kind: int, code: int, message: str) -> bytes:
    """A google.rpc.Status (code, message), as protobuf or JSON: the OTLP/HTTP error body."""
    if kind == KIND_JSON:
        return json.dumps({"code": code, "message": message}).encode("utf-8")
    msg = message.encode("utf-8")

    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            b, v = v & 0x7F, v >> 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    return b"\x08" + varint(code) + b"\x12" + varint(len(msg)) + msg


# ----------------------------------------------------------------------------------------------------------- loader


class Loader(threading.Thread):
    """Loads spooled records into the database in batches, through :func:`~workbench.io.ingest.ingest`.

    Examples
    --------
    Each :class:`Collector` has one (started with it); what it will load, and where a restart resumes:

    >>> import tempfile, pathlib
    >>> c = Collector(pathlib.Path(tempfile.mkdtemp()) / "wb.duckdb", port=0, progress=False)
    >>> c.spool.open_segment(); c.spool.append(KIND_JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{}]}]}]}')
    >>> [(segment, path.name, durable_end) for segment, path, durable_end in c.loader.pending()]
    [(1, 'traces-000001.spool', 72)]
    >>> import workbench as wb
    >>> with wb.connect(c.db_path) as db:  # per segment, read back from ingest_runs: nothing committed yet
    ...     c.loader.committed_offsets(db)
    {}
    >>> c.server.server_close(); c.spool.close()  # never started: closed piece by piece
    """

    def __init__(self, collector: "Collector"):
        super().__init__(name="workbench-collect-loader", daemon=True)
        self.c = collector
        self.stopping = threading.Event()
        self.loaded: dict[int, int] = {}
        self.torn_reported: set[int] = set()
        self.spans_loaded = 0
        self.error: str | None = None
        self.models: set[tuple] = set()  # the (provider, model) pairs the prices table was last refreshed for

    def committed_offsets(self, db: Any) -> dict[int, int]:
        """Per segment, the end of the last range committed to the database ``db`` (from ``ingest_runs``)."""
        rows = db.duckdb.execute(
            "SELECT source_path FROM ingest_runs WHERE source_path LIKE ?", [f"%collect-{self.c.spool.id}-%"]
        ).fetchall()
        out: dict[int, int] = {}
        for (path,) in rows:
            m = _BATCH_NAME.search(path)
            if m and m.group("id") == self.c.spool.id:
                seg, end = int(m.group("seg")), int(m.group("end"))
                out[seg] = max(out.get(seg, 0), end)
        return out

    def pending(self) -> Iterator[tuple[int, Path, int | None]]:
        active, durable = self.c.spool.active()
        for seg, path in self.c.spool.segments():
            yield seg, path, (durable if seg == active else None)

    def load_once(self) -> int:
        """Load one batch from the first segment with unloaded records; returns the number of records loaded."""
        from workbench.io.ingest import ingest

        for seg, path, stop in self.pending():
            start = self.loaded.get(seg, 0)
            if stop is not None and start >= stop:
                continue
            got = read_records(path, start, stop)
            if got.torn and seg not in self.torn_reported and not got.records:
                self.torn_reported.add(seg)
                self.c.log(f"spool {path.name}: ignored the torn tail after byte {got.end} ({got.torn}); "
                           f"it was never acknowledged")
            if not got.records:
                self.loaded[seg] = max(start, got.end)
                continue
            first = max(start, len(SPOOL_MAGIC))
            name = f"collect-{self.c.spool.id}-{seg:06d}-{first}-{got.end}.otlp.jsonl"
            batch = self.c.spool.dir / "loading" / name
            with open(batch, "wb") as fh:
                for kind, body, _end in got.records:
                    fh.write(to_json_line(kind, body) + b"\n")
            try:
                with self.open_db() as db:  # open only for this load: readers have the file between loads
                    s = ingest(db, batch, format="otel", progress=False)
                    self.loaded[seg] = got.end
                    self.spans_loaded += s.read
                    self.c.log(f"loaded {len(got.records)} batch(es) from {path.name} [{first}, {got.end}): "
                               f"{s.read} span(s), inserted {s.inserted}, duplicates {s.duplicates}, "
                               f"quarantined {s.quarantined}")
                    if s.inserted:
                        self.refresh_prices(db, [f["run_id"] for f in s.files if f.get("run_id")])
            finally:
                batch.unlink(missing_ok=True)
            return len(got.records)
        return 0

    def open_db(self) -> Any:
        """The database, opened for one load. While another process holds it, wait :data:`LOCK_WAIT_SECONDS` (the
        loader tries again later), or the whole lock wait when stopping (``$WORKBENCH_LOCK_TIMEOUT_S``, 30 s)."""
        from workbench.db import connect

        return connect(self.c.db_path, create=False,
                       lock_timeout_s=None if self.stopping.is_set() else LOCK_WAIT_SECONDS)

    def refresh_prices(self, db: Any, runs: list[str]) -> None:
        """Refresh the prices table when the calls just loaded name a (provider, model) it was not refreshed for: the
        cost metrics price each call from it (as ``workbench ingest`` does after a load)."""
        from workbench.errors import ConfigError
        from workbench.io.prices import load_prices

        if not runs:
            return
        got = set(db.duckdb.execute(
            f"SELECT DISTINCT provider, model FROM calls WHERE ingest_run_id IN ({', '.join('?' * len(runs))})",
            runs).fetchall())
        if got - self.models:
            try:
                n = load_prices(db, config=self.c.config)
            except ConfigError as e:  # the spans are loaded; only the prices are not (said, retried at the next load)
                self.c.log(f"prices not refreshed: {e}")
                return
            self.models = set(db.duckdb.execute("SELECT DISTINCT provider, model FROM calls").fetchall())
            self.c.log(f"{n.sentence} for {len(self.models)} model(s) named by the calls")

    def drain(self) -> None:
        while self.load_once():
            pass

    def run(self) -> None:
        delay = 1.0
        changed = self.c.spool.changed
        while True:
            stopping = self.stopping.is_set()
            seen = self.c.spool.version  # a record spooled during the load below is loaded next, not after a wait
            try:
                self.drain()
                self.error, delay = None, 1.0
            except Exception as exc:  # noqa: BLE001 - kept in the spool, retried; reported to the operator
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                held = isinstance(exc, DatabaseError) and "locked by another process" in error  # see connect()
                if not held:
                    self.c.log(f"error: loading failed, the spool keeps the data, retrying in {delay:.0f} s: {error}")
                elif error != self.error:  # said once while the same process holds it (a report can take minutes)
                    self.c.log(f"{str(exc).split(';')[0]}: the spool keeps the batches, loaded once it is free")
                self.error = error
                if stopping:
                    return
                self.stopping.wait(delay)
                delay = min(delay * 2, HELD_RETRY_SECONDS if held else 30.0)
                continue
            if stopping:
                return
            # waits only when nothing happened since the load began, looked at under the lock that every wake-up
            # takes: a stop or a record notified while the loader was loading was lost, and waited for the timeout
            with changed:
                if not self.stopping.is_set() and self.c.spool.version == seen:
                    changed.wait(timeout=5.0)
            if not self.stopping.is_set():
                time.sleep(FLUSH_SECONDS)  # let a batch gather


# ----------------------------------------------------------------------------------------------------------- server


class _DeadlineReader(io.RawIOBase):
    """A connection's socket, read within the deadline of the request being read: :data:`REQUEST_SECONDS` from its
    first byte (:attr:`deadline`, reset by the handler before each request), and at most ``stall`` seconds a read.
    Past either, :class:`TimeoutError`. A per-read timeout alone let a client sending a byte every few seconds hold
    a handler, and what it had sent, as long as it liked. A connection with no request begun (a new one, or kept alive
    after one) waits ``idle`` seconds for its first byte: idle sockets each hold a thread.

    >>> import socket
    >>> a, b = socket.socketpair()
    >>> r = _DeadlineReader(a, stall=5.0, idle=1.0)
    >>> _ = b.sendall(b"POST"); buf = bytearray(8); r.readinto(buf), r.deadline is not None
    (4, True)
    >>> r.deadline = time.monotonic() - 1  # its time is up
    >>> r.readinto(buf)
    Traceback (most recent call last):
    ...
    TimeoutError: the request did not arrive within 120 s of its first byte
    >>> a.close(); b.close()
    """

    def __init__(self, sock: Any, stall: float, idle: float):
        self.sock, self.stall, self.idle = sock, stall, idle
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        wait = self.stall if self.deadline is not None else self.idle
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError(f"the request did not arrive within {REQUEST_SECONDS:g} s of its first byte")
        self.sock.settimeout(wait)
        n = self.sock.recv_into(buf)
        if self.deadline is None and n:
            self.deadline = time.monotonic() + REQUEST_SECONDS
        return n


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "workbench-collect"
    timeout = 60  # seconds a request being read may stall (before its first byte: IDLE_SECONDS)
    collector: "Collector"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # one line per request would drown the load lines; errors are answered to the client

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self.reader = _DeadlineReader(self.connection, self.timeout, IDLE_SECONDS)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        self.reader.deadline = None  # set by the first byte of the request
        super().handle_one_request()  # a TimeoutError while reading the headers: the connection is closed

    def _send(self, code: int, body: bytes, ctype: str, close: bool = False, headers: dict | None = None) -> None:
        self.connection.settimeout(self.timeout)  # the reads left it at what remained of the deadline
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":  # the answer to a HEAD is the status and headers a GET would get, no body
            self.wfile.write(body)

    def _error(self, code: int, message: str, kind: int = KIND_JSON, close: bool = False,
               headers: dict | None = None) -> None:
        grpc = {400: 3, 404: 5, 405: 12, 408: 4, 411: 3, 413: 8, 415: 3, 501: 12, 503: 14, 505: 12}.get(code, 2)
        ctype = "application/x-protobuf" if kind == KIND_PROTO else "application/json"
        self._send(code, _status_body(kind, grpc, message), ctype, close=close, headers=headers)

    def _discard(self, n: int) -> None:
        """Read and drop a refused body (up to 8 times the limit, and at least 64 MiB), so the client reads the
        answer, not a reset: a socket closed while the client still sends makes its send fail (broken pipe) before it
        reads the 413. Beyond that the connection is closed unread."""
        left = n if n <= max(8 * self.collector.max_body_bytes, _DISCARD_MIN) else 0
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def _length(self) -> int | None:
        """The Content-Length; None when there is none, when it is not a number of at most 15 digits (ASCII digits:
        "²" is a digit to Python), or when the length is ambiguous (several different ones, or a Transfer-Encoding)."""
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or ()}
        if len(lengths) != 1 or "Transfer-Encoding" in self.headers:
            return None
        length = lengths.pop()
        return int(length) if re.fullmatch(r"[0-9]{1,15}", length) else None

    def _kind(self) -> int:
        """The encoding of the request and of its error answers, by its Content-Type (JSON when none of OTLP's)."""
        return _CONTENT_TYPES.get(self.headers.get("Content-Type", "").split(";")[0].strip().lower(), KIND_JSON)

    def _refusal(self) -> tuple[int, str, dict | None] | None:
        """Why the request is refused by its request line and headers alone, as (status, message, extra headers);
        None when its body is to be read. Looked at before a ``100 Continue`` is sent (:meth:`handle_expect_100`), and
        by every ``do_*`` method."""
        c = self.collector
        # the body's length first: refused, an ambiguous one is not drained either (a proxy may read the other one)
        lengths = tuple(dict.fromkeys(v.strip() for v in self.headers.get_all("Content-Length") or ()))
        coding = self.headers.get("Transfer-Encoding")
        if len(lengths) > 1:
            return 400, f"conflicting Content-Length headers {lengths}", None
        if lengths and coding is not None:
            return 400, "both Content-Length and Transfer-Encoding: the body's length is ambiguous", None
        if lengths and not re.fullmatch(r"[0-9]+", lengths[0]):
            return 400, f"Content-Length must be a number of bytes, got {lengths[0][:40]!r}", None
        path = urlsplit(self.path).path
        if path.rstrip("/") != "/v1/traces":
            return 404, f"no such endpoint {path!r}; OTLP traces go to POST /v1/traces", None
        if self.command != "POST":
            return 405, "use POST /v1/traces", {"Allow": "POST"}
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in _CONTENT_TYPES:
            return 415, (f"unsupported Content-Type {ctype or '(none)'!r}; expected application/x-protobuf or "
                         f"application/json"), None
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("gzip", "deflate", "identity", ""):
            return 415, f"unsupported Content-Encoding {encoding!r}; expected gzip, deflate or none", None
        if coding is not None:
            if coding.strip().lower() != "chunked":
                return 501, f"unsupported Transfer-Encoding {coding!r}; expected chunked", None
            return None  # its size is known as it is read (:meth:`_chunked`)
        if not lengths:
            return 411, "a Content-Length header (a number of bytes) is required", None
        n = self._length()
        if n is None or n > c.max_body_bytes:  # None: over 15 digits
            return 413, self._too_large(lengths[0] if len(lengths[0]) <= 40 else f"{lengths[0][:20]}..."), None
        return None

    def _too_large(self, n: int | str) -> str:
        return (f"body of {n} bytes is over the limit of {self.collector.max_body_bytes} bytes; send smaller batches "
                f"(e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE)")

    def _refuse(self, code: int, message: str, headers: dict | None = None, drain: bool = True) -> None:
        """Answer ``code`` to a request whose body is not read, then close. Its body is drained first
        (:meth:`_discard`), or the client's send fails before it reads the answer; not when the client waits for a
        ``100 Continue`` to send it (``drain=False``)."""
        if drain and self.headers.get("Transfer-Encoding") is None:
            self._discard(self._length() or 0)
        self._error(code, message, self._kind(), close=True, headers=headers)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: the request is checked first, and a refused one gets its refusal instead of the
        invitation to send its body (which is then not read)."""
        refusal = self._refusal()
        if refusal is not None:
            self._refuse(*refusal, drain=False)
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The refusals of :mod:`http.server` itself in the receiver's format (a ``google.rpc.Status``, as every other
        refusal), the connection closed: a request line or headers that do not parse (400, 414, 431), HTTP/2 (505: an
        HTTP/2 preface got an HTML page with no status line, as the answer to an HTTP/0.9 request), and a method with
        no ``do_`` method here (501, its body drained first as any refused body: it was left unread)."""
        if code == 501 and self.command:  # the one 501 http.server sends: a method it has no handler for
            self._refuse(501, f"method {self.command[:20]!r} is not served; OTLP traces go to POST /v1/traces",
                         {"Allow": "POST"})
            return
        if self.request_version in ("HTTP/0.9", ""):  # no version was read: answered in HTTP/1.1 (a status line)
            self.request_version = "HTTP/1.1"
        if code == 505:
            message = "HTTP/2 is not served: send OTLP/HTTP over HTTP/1.1 (http/protobuf or http/json)"
        self._error(code, message or self.responses.get(code, ("error",))[0], close=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._refuse(*self._refusal())  # never None: only a POST is read

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815

    def _body(self, kind: int) -> bytes | None:
        """The request body, by its Content-Length (checked by :meth:`_refusal`) or ``Transfer-Encoding: chunked``
        (the OpenTelemetry JS exporter sends gzip'ed bodies chunked, with no Content-Length); None when it was refused
        (answered here): over ``max_body_bytes`` (413), cut short or badly framed (400). A read past the request's
        deadline raises :class:`TimeoutError`."""
        if self.headers.get("Transfer-Encoding") is not None:
            return self._chunked(kind)
        n = self._length() or 0
        body = self.rfile.read(n)
        if len(body) != n:  # the client stopped sending: a prefix of a message can parse as a whole one
            self._error(400, f"the body ended after {len(body)} of the {n} bytes its Content-Length says", kind,
                        close=True)
            return None
        return body

    def _chunked(self, kind: int) -> bytes | None:
        """A chunked body (RFC 9112 section 7.1): chunks of a hex size line, the data and CRLF, up to a chunk of size
        0 and the trailer lines (ignored); None when refused (answered here)."""
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            m = re.fullmatch(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n", line)
            if m is None:
                why = "ended" if not line.endswith(b"\n") else f"has the chunk size line {line[:40]!r}"
                self._error(400, f"the chunked body {why} after {size} bytes", kind, close=True)
                return None
            n = int(m.group(1), 16)
            if n == 0:
                break
            size += n
            if size > self.collector.max_body_bytes:
                self._error(413, self._too_large(f"{size}+"), kind, close=True)
                return None
            parts.append(self.rfile.read(n))
            if len(parts[-1]) != n or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                self._error(400, f"the chunked body ended inside a chunk of {n} bytes", kind, close=True)
                return None
        for _ in range(100):  # the trailer section, up to an empty line
            if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                return b"".join(parts)
        self._error(400, "the chunked body's trailer has over 100 lines", kind, close=True)
        return None

    def _checked(self, kind: int, body: bytes) -> tuple[int, bytes, list[str]] | None:
        """(spans, the body decompressed, span ids rejected) of a request body; None when it was refused (answered
        here). A JSON span with bytes that are not UTF-8 is rejected alone (:func:`without_undecodable_spans`)."""
        c = self.collector
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("gzip", "deflate"):
            try:
                decompressed = _decompressed(body, c.max_body_bytes)
            except zlib.error as exc:
                self._error(400, f"Content-Encoding {encoding}: the body is not a valid {encoding} stream ({exc})",
                            kind)
                return None
            if decompressed is None:
                self._error(413, f"decompressed body is over the limit of {c.max_body_bytes} bytes", kind, close=True)
                return None
            body = decompressed
        rejected: list[str] = []
        try:
            try:
                return check_body(kind, body), body, rejected
            except _NotUtf8:
                body, rejected = without_undecodable_spans(body)
                return check_body(kind, body), body, rejected
        except OverLimit as exc:
            self._error(413, str(exc), kind)
            return None
        except BadRequest as exc:
            self._error(400, f"not an OTLP trace export: {exc}", kind)
            return None

    def do_POST(self) -> None:  # noqa: N802
        refusal = self._refusal()
        if refusal is not None:
            self._refuse(*refusal)
            return
        c = self.collector
        kind = self._kind()
        try:
            body = self._body(kind)
        except TimeoutError:
            self._error(408, f"the body did not arrive in time ({REQUEST_SECONDS:g} s from the request's first byte, "
                             f"{self.timeout} s between two reads)", kind, close=True)
            return
        if body is None:
            return
        # Parsing takes memory many times the body (a 4 MiB JSON body of empty objects: ~110 MB): a few at a time.
        if not c.parse_slots.acquire(timeout=SLOT_WAIT_SECONDS):
            self._error(503, f"busy: {PARSE_SLOTS} request(s) have been parsed for {SLOT_WAIT_SECONDS:g} s; retry",
                        kind, headers={"Retry-After": "2"})
            return
        try:
            checked = self._checked(kind, body)
        finally:
            c.parse_slots.release()
        if checked is None:
            return
        spans, body, rejected = checked
        if not c.begin():
            self._error(503, "the receiver is stopping; retry", kind, close=True, headers={"Retry-After": "1"})
            return
        try:
            if spans:
                c.spool.append(kind, body)
        except OSError as exc:
            c.log(f"error: cannot write the spool: {exc}")
            self._error(503, f"cannot write the spool: {exc}", kind, headers={"Retry-After": "5"})
            return
        finally:
            c.end()
        c.count(spans)
        if kind == KIND_JSON:
            self._send(200, partial_success(rejected) if rejected else b"{}", "application/json")
        else:
            self._send(200, b"", "application/x-protobuf")


class _Server(ThreadingHTTPServer):
    """The HTTP server, serving at most ``max_connections`` connections at once (a thread each). One more is answered
    503 with ``Retry-After`` and closed by the accepting thread, without a thread of its own: a client opening
    thousands of idle sockets got a thread each (only the per-read timeout closed them), as many as it liked.

    >>> import socket
    >>> srv = _Server(("127.0.0.1", 0), BaseHTTPRequestHandler, max_connections=0)
    >>> client = socket.create_connection(srv.server_address[:2], timeout=5)
    >>> srv.handle_request()  # accepted, over the cap: answered at once
    >>> client.recv(4096).split(b"\\r\\n")[0]
    b'HTTP/1.1 503 Service Unavailable'
    >>> client.close(); srv.server_close()
    """

    daemon_threads = True
    request_queue_size = 128  # the listen backlog (5 in socketserver): a burst of connections is accepted at once

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int = MAX_CONNECTIONS):
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)
        self.lingerer = _Lingerer()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self._busy(request)
            return
        try:
            super().process_request(request, client_address)  # a thread running process_request_thread
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _busy(self, request: Any) -> None:
        """Answer 503 and close, never waiting (the accepting thread sends it): the answer fits the socket's buffer,
        and what the client already sent is read first. The close is left to :class:`_Lingerer`: a client whose
        request arrives after the answer would otherwise get a reset, its send failing before it reads the 503."""
        body = _status_body(KIND_JSON, 14, f"busy: {self.max_connections} connections are open, the most served at "
                                           f"once; retry")
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(OSError):
            request.setblocking(False)
            for _ in range(16):  # what has arrived, up to 1 MiB (BlockingIOError, an OSError, once there is no more)
                if not request.recv(65536):
                    break
        with contextlib.suppress(OSError):
            request.send(head.encode("ascii") + body)
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
        self.lingerer.add(request)

    def server_close(self) -> None:
        super().server_close()
        self.lingerer.close()


class _Lingerer:
    """Closes refused connections gracefully, one thread for all of them while there are any: each has had its
    answer and its write side shut; what its client still sends is read and dropped until the client closes, for at
    most :data:`LINGER_SECONDS` (at most :data:`LINGER_MAX` at once, the oldest closed first). Closed with bytes
    unread, a socket answers the client's next bytes with a reset, and its client's send fails before it reads the
    answer (a broken pipe instead of a 503 it would retry on).

    >>> import socket
    >>> a, b = socket.socketpair()
    >>> lingerer = _Lingerer()
    >>> a.shutdown(socket.SHUT_WR); lingerer.add(a)
    >>> b.sendall(b"late bytes"); b.recv(1)  # read and dropped, no reset; the other side is shut
    b''
    >>> b.close(); lingerer.close()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._new: list[Any] = []
        self._deadlines: dict[Any, float] = {}  # in the order they came: the first is the oldest
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, sock: Any) -> None:
        with self._lock:
            if self._closed:
                sock.close()
                return
            self._new.append(sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="workbench-collect-linger", daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout=LINGER_SECONDS + 1)

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            while True:
                with self._lock:
                    new, self._new = self._new, []
                    if self._closed or not (new or self._deadlines):
                        for sock in [*new, *self._deadlines]:
                            sock.close()
                        self._deadlines.clear()
                        self._thread = None
                        return
                for sock in new:
                    try:
                        sock.setblocking(False)
                        sel.register(sock, selectors.EVENT_READ)
                    except (OSError, ValueError):  # closed already
                        sock.close()
                        continue
                    self._deadlines[sock] = time.monotonic() + LINGER_SECONDS
                    while len(self._deadlines) > LINGER_MAX:
                        self._drop(sel, next(iter(self._deadlines)))
                for key, _ in sel.select(timeout=0.05):
                    try:
                        for _ in range(16):  # up to 1 MiB a turn: a fast sender cannot hold the thread
                            if not key.fileobj.recv(65536):
                                self._drop(sel, key.fileobj)  # its end: the client closed
                                break
                    except BlockingIOError:
                        pass  # nothing more for now
                    except OSError:
                        self._drop(sel, key.fileobj)
                now = time.monotonic()
                for sock in [s for s, t in self._deadlines.items() if t <= now]:
                    self._drop(sel, sock)

    def _drop(self, sel: selectors.BaseSelector, sock: Any) -> None:
        del self._deadlines[sock]
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(sock)
        sock.close()


class Collector:
    """The receiver, its spool and its loader; :meth:`run` serves until SIGTERM/SIGINT, :meth:`start`/:meth:`stop`
    drive it from code. See the module docstring for the protocol and the guarantees.

    Parameters
    ----------
    db : path
        The workbench database (created and migrated at start; then opened only while a batch loads).
    host, port : str, int
        Where to listen (default 127.0.0.1:4318; port 0 picks a free one, shown in :attr:`url`).
    spool : path, optional
        The spool directory (default: the database path with ``.spool`` appended).
    max_body_bytes : int
        Largest accepted request body, compressed and decompressed (413 beyond).
    max_connections : int
        Connections served at once (default :data:`MAX_CONNECTIONS`, a thread each); one more is answered 503 with
        ``Retry-After`` and closed. A connection with no request begun is closed after :data:`IDLE_SECONDS`.
    progress : bool
        Print a line per loaded batch to standard error.
    config : path, optional
        ``workbench.toml`` whose ``[[prices]]`` the price refresh after a load reads (default: ``$WORKBENCH_CONFIG``
        or ``./workbench.toml``; when neither exists, the override rows already in the table are kept: see
        :func:`~workbench.io.prices.load_prices`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> c = Collector(d / "wb.duckdb", port=0, progress=False)  # port 0: a free port
    >>> c.url
    'http://127.0.0.1:.../v1/traces'
    >>> c.spool.dir == (d / "wb.duckdb.spool").resolve(), c.max_body_bytes
    (True, 16777216)
    >>> c.server.server_close(); c.spool.close()  # never started (a started one: c.stop())
    >>> Collector(":memory:")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: collect: --db must be a database file (the spool is loaded into it across runs)
    """

    def __init__(self, db: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 spool: str | os.PathLike | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                 progress: bool = True, config: str | os.PathLike | None = None,
                 max_connections: int = MAX_CONNECTIONS):
        from workbench.config import load_config
        from workbench.db import connect

        if str(db) == ":memory:":
            raise ParameterError("collect: --db must be a database file (the spool is loaded into it across runs)")
        if not 0 <= int(port) <= 65535:
            raise ParameterError(f"collect: --port must be 0..65535, got {port}")
        if max_connections < 1:
            raise ParameterError(f"collect: --max-connections must be at least 1, got {max_connections}")
        if max_body_bytes < 1024:
            raise ParameterError(f"collect: max_body_bytes must be at least 1024, got {max_body_bytes}")
        if config is not None:
            load_config(config)  # a --config that is not there is an error at start, not at the first load
        self.config = config
        self.db_path = Path(db)
        self.spool = Spool(Path(spool if spool is not None else f"{db}.spool").resolve())
        self.max_body_bytes = int(max_body_bytes)
        self.progress = progress
        self._inflight = 0
        self._accepting = True
        self._cv = threading.Condition()
        self.parse_slots = threading.BoundedSemaphore(PARSE_SLOTS)
        self.batches = self.spans = 0
        self.loader = Loader(self)
        with connect(db) as first:  # created and migrated now: a database it cannot open is an error at start
            self.loader.loaded = self.loader.committed_offsets(first)
        handler = type("Handler", (_Handler,), {"collector": self})
        try:
            self.server = _Server((host, int(port)), handler, max_connections)
        except OSError as exc:
            raise InputError(f"collect: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1/traces"

    def log(self, message: str) -> None:
        if self.progress:
            print(f"workbench collect: {message}", file=sys.stderr, flush=True)

    def begin(self) -> bool:
        with self._cv:
            if not self._accepting:
                return False
            self._inflight += 1
            return True

    def end(self) -> None:
        with self._cv:
            self._inflight -= 1
            self._cv.notify_all()

    def count(self, spans: int) -> None:
        with self._cv:
            self.batches += 1
            self.spans += spans

    def start(self) -> None:
        """Open a new spool segment, start the loader (it first loads what earlier runs spooled) and serve."""
        self.spool.open_segment()
        self.loader.start()
        self._thread = threading.Thread(target=self.server.serve_forever, name="workbench-collect-http", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> int:
        """Stop receiving, wait for requests in flight, load everything spooled, close; 0 when all was loaded."""
        with self._cv:
            self._accepting = False
            self._cv.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self.server.shutdown()
        self.server.server_close()
        with self.spool.changed:  # set under the lock the loader looks at it under: the wake-up cannot be lost
            self.loader.stopping.set()
            self.spool.changed.notify_all()
        self.loader.join()
        self.spool.close()
        if self.loader.error:
            self.log(f"stopped with spooled batches not loaded ({self.loader.error}); they load at the next start")
            return 2
        self.log(f"stopped: received {self.batches} batch(es), {self.spans} span(s); loaded {self.loader.spans_loaded} "
                 f"span(s) this run")
        return 0

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT, then stop cleanly; prints the readiness line on standard output."""
        # The handler only records the signal: it runs in the main thread between any two bytecodes, so one that took
        # a lock (threading.Event.set) deadlocked when the signal came while the main thread held that same lock
        # inside Event.wait (seen: a SIGTERM left the receiver hanging). The main thread polls the record instead.
        signals: list[int] = []

        def on_signal(signum, frame):  # noqa: ARG001
            signals.append(signum)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            print(f"workbench collect: listening on {self.url} (db {self.db_path}, spool {self.spool.dir})",
                  flush=True)
            while not signals:
                time.sleep(0.2)
            return self.stop()
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def collect(db: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
            spool: str | os.PathLike | None = None, max_body_bytes: int = MAX_BODY_BYTES,
            config: str | os.PathLike | None = None, max_connections: int = MAX_CONNECTIONS) -> int:
    """Run the OTLP/HTTP receiver until SIGTERM/SIGINT (``workbench collect``); returns the exit code.

    See the module docstring (:mod:`workbench.io.collect`) for the protocol, the spool and the guarantees, and
    :class:`Collector` for a receiver driven from code (its example is runnable).

    Examples
    --------
    The arguments are checked before anything listens (serving blocks until a signal, so it is not run here):

    >>> collect(":memory:")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: collect: --db must be a database file ...
    >>> import tempfile, pathlib
    >>> collect(pathlib.Path(tempfile.mkdtemp()) / "wb.duckdb", port=70000)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: collect: --port must be 0..65535, got 70000
    """
    return Collector(db, host=host, port=port, spool=spool, max_body_bytes=max_body_bytes, config=config,
                     max_connections=max_connections).run()
