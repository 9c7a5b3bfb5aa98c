"""Binary protobuf OTLP traces (``ExportTraceServiceRequest``) decoded into OTLP JSON, read by the OTLP JSON path.

One piece serves both encodings: a protobuf message is turned into the OTLP JSON object the OpenTelemetry Collector's
file exporter writes (``resourceSpans -> scopeSpans -> spans``, trace and span ids as lower-case hex, 64-bit integers
as decimal strings, enums as numbers, default values left out), one object per line, and that text goes through the
same SQL as an OTLP JSON file (:mod:`workbench.io.ingest`, format ``otel``). Column mapping, accounting, dedupe and
quarantine are therefore identical for both encodings. Decoding uses the official generated classes of the
``opentelemetry-proto`` package; the walk to JSON (:func:`to_dict`) is written here because
``google.protobuf.json_format`` renders ids as base64, not hex, and also takes the same time (see :func:`to_json_line`).

Files (format ``otel-proto``; extensions ``.pb``, ``.binpb``, ``.otlp``, optionally ``.gz``):

* one serialized ``ExportTraceServiceRequest`` (what ``SerializeToString()`` or an OTLP/HTTP protobuf body holds), or
* a sequence of them, each preceded by its length as a 4-byte big-endian unsigned integer (the Collector's file
  exporter with ``format: proto``);
* the file exporter's ``compression: zstd`` files, in ``format: proto`` or ``format: json``: each message (protobuf,
  or its OTLP JSON text) compressed on its own with zstd (decompressed by pyarrow's codec) behind its length.

Gzip compression is recognised by its magic bytes. ``quarantine.line_no`` of a span is the number of its message in
the file (1 = first).

Examples
--------
>>> from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
>>> req = ExportTraceServiceRequest()
>>> span = req.resource_spans.add().scope_spans.add().spans.add()
>>> span.trace_id, span.span_id, span.name = bytes(range(16)), bytes(range(8)), "chat"
>>> span.start_time_unix_nano = 1732000000000000000
>>> a = span.attributes.add(); a.key = "gen_ai.usage.input_tokens"; a.value.int_value = 12
>>> print(to_json_line(req))
{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"000102030405060708090a0b0c0d0e0f","spanId":"0001020304050607",\
"name":"chat","startTimeUnixNano":"1732000000000000000","attributes":[{"key":"gen_ai.usage.input_tokens",\
"value":{"intValue":"12"}}]}]}]}]}
>>> [m.resource_spans[0].scope_spans[0].spans[0].name for m in read_messages(frame(req.SerializeToString()) * 2)]
['chat', 'chat']
"""

from __future__ import annotations

import base64
import gzip
import io
import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from workbench._gc import paused
from workbench.errors import IngestError

EXTENSIONS = (".pb", ".binpb", ".otlp")
GZIP_MAGIC = b"\x1f\x8b"
# A length prefix larger than this is not a frame (the Collector's messages are far smaller).
MAX_MESSAGE_BYTES = 1 << 30
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: What one zstd-compressed message may decompress to: the longest line the OTLP JSON reader takes (a longer one is
#: quarantined as too long there), so a small frame made to expand is refused before it is held.
MAX_UNZSTD_BYTES = 256 << 20


class DecodeError(ValueError):
    """Bytes that are not a serialized ExportTraceServiceRequest (or a length-prefixed sequence of them).

    Examples
    --------
    >>> try:
    ...     read_messages(frame(b"\\x0a\\x00")[:-1])  # a frame cut short
    ... except DecodeError as exc:
    ...     print(isinstance(exc, ValueError), exc)
    True not a protobuf ExportTraceServiceRequest, nor a sequence of length-prefixed ones
    """


def _request_class():
    """The ``ExportTraceServiceRequest`` message class (imported on first use: protobuf is not cheap to import)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return ExportTraceServiceRequest


def parse_request(data: bytes):
    """One ``ExportTraceServiceRequest`` from its serialized bytes; :class:`DecodeError` when they are not one.

    >>> parse_request(b"\\x0a\\x00").resource_spans[0].scope_spans
    []
    >>> parse_request(b"\\xff\\xff")
    Traceback (most recent call last):
    ...
    workbench.io.otlp_proto.DecodeError: not a protobuf ExportTraceServiceRequest: Error parsing message...
    """
    from google.protobuf.message import DecodeError as _PbDecodeError

    msg = _request_class()()
    try:
        msg.ParseFromString(data)
    except (_PbDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"not a protobuf ExportTraceServiceRequest: {exc}") from None
    return msg


def _unzstd(data: bytes) -> bytes:
    """A zstd-compressed frame's content (at most :data:`MAX_UNZSTD_BYTES`: a small frame that decompresses to more
    is refused, not held); :class:`DecodeError` when it is not a whole zstd stream.

    >>> import pyarrow as pa
    >>> _unzstd(pa.compress(b"x" * 1000, codec="zstd", asbytes=True)) == b"x" * 1000
    True
    """
    import pyarrow as pa

    try:
        out = pa.CompressedInputStream(pa.py_buffer(data), "zstd").read(MAX_UNZSTD_BYTES + 1)
    except (OSError, pa.ArrowException) as exc:
        raise DecodeError(f"a zstd-compressed message that does not decompress ({str(exc).strip()[:120]})") from None
    if len(out) > MAX_UNZSTD_BYTES:
        raise DecodeError(f"a zstd-compressed message of more than {MAX_UNZSTD_BYTES >> 20} MB")
    return bytes(out)


def frame_line(data: bytes) -> bytes:
    """One frame of a framed file as one line of OTLP JSON: a protobuf message, or (the file exporter's ``format:
    json`` with compression) the OTLP JSON text of one, either compressed with zstd or not.

    >>> frame_line(b"\\x0a\\x00"), frame_line(b' {"resourceSpans": []}'), frame_line(b'{"resourceSpans":\\n []}')
    (b'{"resourceSpans":[{}]}', b'{"resourceSpans": []}', b'{"resourceSpans":[]}')
    >>> from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    >>> req = ExportTraceServiceRequest()
    >>> req.resource_spans.add().scope_spans.add().spans.add().name = "x" * 117  # the first length byte is "{"
    >>> data = req.SerializeToString(); data[1:2]
    b'{'
    >>> orjson.loads(frame_line(data))["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == "x" * 117
    True
    """
    if data[:4] == ZSTD_MAGIC:
        data = _unzstd(data)
    # JSON text starts with "{" (after spaces at most); a protobuf message with its first tag, 0x0a: a newline, which
    # must not be skipped as white space (a length of 123 would then read as "{")
    if data[:1] == b"{" or (data[:1] in (b" ", b"\t", b"\r") and data.lstrip(b" \t\r")[:1] == b"{"):
        if b"\n" not in data and b"\r" not in data:
            return data.strip(b" \t")  # already one line (the exporter writes compact JSON): the reader checks it
        try:
            return orjson.dumps(orjson.loads(data))  # one compact line, whatever the writer's layout
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"a message that starts as JSON but is not JSON ({exc})") from None
    return to_json_bytes(parse_request(data))


def frame(message: bytes) -> bytes:
    """``message`` preceded by its length as a 4-byte big-endian integer (the file exporter's framing).

    >>> frame(b"abc")
    b'\\x00\\x00\\x00\\x03abc'
    """
    return struct.pack(">I", len(message)) + message


_NOT_OTLP = "not a protobuf ExportTraceServiceRequest, nor a sequence of length-prefixed ones"


def _stream_frames(fh, first: bytes = b"") -> Iterator[bytes]:
    """The length-prefixed messages of a binary file, one at a time (``first``: its bytes already read); a
    :class:`DecodeError` at a frame cut short or too long."""
    while head := first + fh.read(4 - len(first)):
        first = b""
        (n,) = struct.unpack(">I", head) if len(head) == 4 else (MAX_MESSAGE_BYTES + 1,)
        if n > MAX_MESSAGE_BYTES:
            raise DecodeError(_NOT_OTLP)
        # in reads of at most 16 MB: a length that the file does not hold costs no allocation of that size
        parts, got = [], 0
        while got < n and (part := fh.read(min(n - got, 16 << 20))):
            parts.append(part)
            got += len(part)
        if got != n:
            raise DecodeError(_NOT_OTLP)
        yield b"".join(parts)


def _frames(data: bytes) -> list[bytes]:
    """The messages of a length-prefixed sequence that covers ``data`` exactly; :class:`DecodeError` otherwise."""
    return list(_stream_frames(io.BytesIO(data)))


def read_messages(data: bytes) -> Iterator[Any]:
    """The ``ExportTraceServiceRequest`` messages in ``data``: a single message, or length-prefixed ones.

    A serialized message never starts with a zero byte (field number 0 does not exist), while a 4-byte big-endian
    length below 16 MiB does: a leading zero byte means frames. Raises :class:`DecodeError` on anything else.

    Examples
    --------
    >>> import gzip
    >>> from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    >>> req = ExportTraceServiceRequest()
    >>> req.resource_spans.add().scope_spans.add().spans.add().name = "chat"
    >>> data = req.SerializeToString()
    >>> [m.resource_spans[0].scope_spans[0].spans[0].name for m in read_messages(data)]
    ['chat']
    >>> len(list(read_messages(gzip.compress(frame(data) * 3)))), list(read_messages(b""))
    (3, [])
    >>> read_messages(b"\\x1f\\x8b not gzip")
    Traceback (most recent call last):
    ...
    workbench.io.otlp_proto.DecodeError: not a valid gzip stream: ...
    """
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DecodeError(f"not a valid gzip stream: {exc}") from None
    if not data:
        return iter(())
    if data[0] == 0:
        return (parse_request(f) for f in _frames(data))
    return iter((parse_request(data),))


def looks_like(path: str | os.PathLike, limit: int = 1 << 16) -> bool:
    """True when the file starts like protobuf OTLP traces (a frame or a ``resourceSpans`` field), not like text.

    A cheap check of the first bytes, for ``--format auto`` on a file without a telling extension; the whole file is
    decoded when it is loaded. The first field must be ``resource_spans`` (tag byte 0x0a, a varint length) holding a
    ``ResourceSpans`` whose first field is one of its own (resource, scope_spans, schema_url).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_bytes(bytes.fromhex("0a04") + b"\\x12\\x02\\x12\\x00")
    >>> _ = (d / "b").write_text('{"resourceSpans": []}')
    >>> looks_like(d / "a"), looks_like(d / "b")
    (True, False)
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            gz = fh.read(2) == GZIP_MAGIC
        with (gzip.open(p, "rb") if gz else open(p, "rb")) as fh:
            head = fh.read(limit)
    except (OSError, EOFError):
        return False
    if head[:1] == b"\x00":
        head = head[4:]
        if head[:4] == ZSTD_MAGIC:  # the file exporter's compression: zstd (json or proto inside)
            return True
    if head[:1] != b"\x0a":
        return False
    got = _varint(head, 1, min(len(head), 11))
    if got is None:
        return False
    length, pos = got
    return length == 0 or head[pos: pos + 1] in (b"\x0a", b"\x12", b"\x1a")


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """The protobuf varint at ``data[pos:end]`` and the position after it; None when it runs past ``end`` or over
    ten bytes (64 bits).

    >>> _varint(b"\\x96\\x01", 0, 2), _varint(b"\\x96", 0, 1)
    ((150, 2), None)
    """
    value = shift = 0
    while pos < end:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            return None
    return None


# ------------------------------------------------------------------------------------------- protobuf -> OTLP JSON


# Ids are hex in OTLP JSON (the one departure from protojson, which writes bytes as base64).
_HEX_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_CONVERTERS: dict[Any, tuple[str, Any]] = {}


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _double(d: float) -> Any:
    if math.isfinite(d):
        return d
    return "NaN" if d != d else ("Infinity" if d > 0 else "-Infinity")


def _converter(fd) -> tuple[str, Any]:
    """(JSON name, value -> JSON) of a field, built once per field descriptor."""
    got = _CONVERTERS.get(fd)
    if got is not None:
        return got
    t = fd.type
    if fd.message_type is not None:
        conv = _MESSAGE_WALKS.get(fd.message_type.full_name, to_dict)
    elif t == fd.TYPE_BYTES:
        conv = bytes.hex if fd.name in _HEX_FIELDS else _b64
    elif t in (fd.TYPE_INT64, fd.TYPE_UINT64, fd.TYPE_FIXED64, fd.TYPE_SFIXED64, fd.TYPE_SINT64):
        conv = str  # 64-bit integers are decimal strings in protojson
    elif t in (fd.TYPE_DOUBLE, fd.TYPE_FLOAT):
        conv = _double
    else:
        conv = None  # strings, booleans, 32-bit integers, enums (as numbers) as they are
    if fd.is_repeated:
        one = conv
        conv = (lambda vals: [one(v) for v in vals]) if one is not None else list
    got = _CONVERTERS[fd] = (fd.json_name, conv)
    return got


def _any_value(v) -> dict:
    """:func:`to_dict` of an ``AnyValue``, by its one set member (``WhichOneof``; ``ListFields`` costs 3x as much)."""
    kind = v.WhichOneof("value")
    if kind is None:
        return {}
    fields = _ANY_VALUE_FIELDS or _any_value_fields(v)
    name, conv = fields[kind]
    x = getattr(v, kind)
    return {name: x if conv is None else conv(x)}


_ANY_VALUE_FIELDS: dict[str, tuple[str, Any]] = {}


def _any_value_fields(v) -> dict[str, tuple[str, Any]]:
    _ANY_VALUE_FIELDS.update({fd.name: _converter(fd) for fd in v.DESCRIPTOR.fields})
    return _ANY_VALUE_FIELDS


def _key_value(kv) -> dict:
    """:func:`to_dict` of a ``KeyValue`` (an attribute): ``key`` when not empty (proto3), ``value`` when set."""
    out = {}
    if kv.key:
        out["key"] = kv.key
    if kv.HasField("value"):
        out["value"] = _any_value(kv.value)
    return out


# Messages walked by a function of their own instead of ListFields: attributes are most of a span's fields.
_MESSAGE_WALKS = {"opentelemetry.proto.common.v1.AnyValue": _any_value,
                  "opentelemetry.proto.common.v1.KeyValue": _key_value}


def to_dict(message) -> dict:
    """A message (an ``ExportTraceServiceRequest`` or any part of one) as OTLP JSON: protojson with hex ids.

    Only the fields that are set appear (``ListFields``), under their JSON names; 64-bit integers become strings,
    enums numbers, bytes base64 except trace and span ids (hex), non-finite doubles ``"NaN"``/``"Infinity"``.

    >>> from opentelemetry.proto.trace.v1.trace_pb2 import Span
    >>> to_dict(Span(span_id=b"\\x01" * 8, kind=3, end_time_unix_nano=5))
    {'spanId': '0101010101010101', 'kind': 3, 'endTimeUnixNano': '5'}
    """
    out = {}
    for fd, val in message.ListFields():
        name, conv = _CONVERTERS.get(fd) or _converter(fd)
        out[name] = val if conv is None else conv(val)
    return out


def to_json_bytes(request) -> bytes:
    """An ``ExportTraceServiceRequest`` as one line of OTLP JSON, UTF-8 encoded (compact, no trailing newline).

    Measured on 50,000 GenAI spans of 12 attributes each (25 MB of protobuf, 500 messages): the walk
    (:func:`to_dict`) takes about 1.3 s; orjson writes the JSON in 0.09 s (``json.dumps`` took 0.6 s). The walk runs
    with the cyclic garbage collector paused by :func:`file_to_jsonl` (each message's dicts are freed by reference
    counting). ``google.protobuf.json_format.MessageToDict`` takes as long as the walk and gives base64 ids.

    Examples
    --------
    >>> from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    >>> req = ExportTraceServiceRequest()
    >>> span = req.resource_spans.add().scope_spans.add().spans.add()
    >>> span.span_id, span.name, span.kind = bytes.fromhex("b7ad6b7169203331"), "chat", 3
    >>> to_json_bytes(req)
    b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"b7ad6b7169203331","name":"chat","kind":3}]}]}]}'
    >>> to_json_bytes(ExportTraceServiceRequest())  # an empty request is an export of nothing
    b'{"resourceSpans":[]}'
    """
    d = to_dict(request)
    d.setdefault("resourceSpans", [])  # an empty request is still an export (of nothing), not a stray object
    return orjson.dumps(d)


def to_json_line(request) -> str:
    """:func:`to_json_bytes` as text.

    Examples
    --------
    >>> from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    >>> req = ExportTraceServiceRequest()
    >>> req.resource_spans.add().scope_spans.add().spans.add().trace_id = bytes(range(16))
    >>> to_json_line(req)
    '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"000102030405060708090a0b0c0d0e0f"}]}]}]}'
    """
    return to_json_bytes(request).decode("utf-8")


def _write_jsonl(lines: Iterator[bytes], out) -> tuple[int, int]:
    """Write each OTLP JSON line (a message's, :func:`to_json_bytes` or :func:`frame_line`) to the binary file
    ``out``.

    Returns the number of messages and the length in bytes of the longest line. Raises :class:`DecodeError` when
    the bytes behind ``lines`` are not protobuf OTLP traces.
    """
    n = longest = 0
    with paused():  # workbench._gc: the walk allocates a dict per span, attribute and value, freed by refcounting
        for line in lines:
            out.write(line + b"\n")
            n += 1
            longest = max(longest, len(line))
    return n, longest


def frames_to_jsonl(data: bytes) -> bytes:
    """Length-prefixed messages (whole frames, one after the other) as OTLP JSON lines, one a message.

    >>> frames_to_jsonl(frame(b"\\x0a\\x00") * 2)
    b'{"resourceSpans":[{}]}\\n{"resourceSpans":[{}]}\\n'
    """
    out = io.BytesIO()
    _write_jsonl(map(frame_line, _frames(data)), out)
    return out.getvalue()


#: A framed file of at least this many bytes is decoded on every core (:func:`file_to_jsonl`), in pieces of about
#: :data:`WORKER_BYTES` of frames.
PARALLEL_BYTES = 16 << 20
WORKER_BYTES = 4 << 20


def _frame_pieces(frames: Iterator[bytes]) -> Iterator[tuple[dict, bytes]]:
    piece: list[bytes] = []
    size = 0
    for f in frames:
        piece.append(frame(f))
        size += 4 + len(f)
        if size >= WORKER_BYTES:
            yield {}, b"".join(piece)
            piece, size = [], 0
    if piece:
        yield {}, b"".join(piece)


def file_to_jsonl(path: str | os.PathLike, out_path: str | os.PathLike, *, workers: int | None = None
                  ) -> tuple[int, int]:
    """Decode a protobuf OTLP file into an OTLP JSON lines file; errors name the file.

    Returns (messages, longest line in bytes). A file of length-prefixed messages (the Collector's file exporter) is
    read a message at a time, so memory holds a few messages and not the file; one of at least
    :data:`PARALLEL_BYTES` is decoded by ``workers`` processes (default: one per core, at most 8;
    :func:`workbench.io.workers.ordered_map`), into the same lines. A single message is read whole.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "x.pb").write_bytes(frame(b"\\x0a\\x00") * 3)
    >>> file_to_jsonl(d / "x.pb", d / "x.jsonl")
    (3, 22)
    >>> (d / "x.jsonl").read_text().splitlines()[0]
    '{"resourceSpans":[{}]}'
    """
    from workbench.io.records import open_binary
    from workbench.io.workers import default_workers, ordered_map

    try:
        with open_binary(path) as fh, open(out_path, "wb") as out:
            first = fh.read(1)
            if first != b"\x00":  # one message (or gzip inside gzip): read whole, as read_messages does
                return _write_jsonl(map(to_json_bytes, read_messages(first + fh.read())), out)
            n = workers if workers is not None else default_workers()
            if n > 1 and Path(path).stat().st_size >= PARALLEL_BYTES:
                try:
                    lines = ordered_map("workbench.io.otlp_proto:frames_to_jsonl",
                                        _frame_pieces(_stream_frames(fh, first)), n)
                except OSError:  # the workers cannot run here: decoded here, from the first frame again
                    fh.seek(1)
                    lines = None
                if lines is not None:
                    count = longest = 0
                    for text in lines:
                        out.write(text)
                        for line in text.split(b"\n")[:-1]:
                            count += 1
                            longest = max(longest, len(line))
                    return count, longest
            return _write_jsonl(map(frame_line, _stream_frames(fh, first)), out)
    except DecodeError as exc:
        raise IngestError(f"{path}: {exc}") from None
    except RuntimeError as exc:  # a worker's error: the decode error it raised, if that is what it was
        reason = str(exc).strip().splitlines()[-1]
        if reason.startswith(f"{DecodeError.__module__}.DecodeError: "):
            raise IngestError(f"{path}: {reason.split(': ', 1)[1]}") from None
        raise


# ------------------------------------------------------------------------------------ counting, before any parse

#: What one ``ExportTraceServiceRequest`` may hold; counted before it is parsed (:func:`count_request`). Parsing costs
#: memory per message (about 170 bytes for an empty span, 2 bytes on the wire), so a 16 MiB body of 8 million empty
#: spans (a 16 KB gzip) took 1.4 GB and 3.7 s to parse, and 2 GB and 18 s to turn into JSON. Real batches are far
#: smaller: an SDK's BatchSpanProcessor exports 512 spans at a time, each with at most 128 attributes, events and
#: links (the SDKs' default span limits), and the Collector's batch processor sends 8,192. At the limits an empty
#: body parses in about 100 MB.
MAX_SPANS = 50_000
MAX_ENTRIES = 10_000  # resource_spans and scope_spans entries (an SDK sends one resource and a few scopes)
MAX_ITEMS = 500_000  # attributes at every level, span events and links, and the values in array and kvlist values
_LIMITS = (("spans", "MAX_SPANS"), ("resource and scope entries", "MAX_ENTRIES"),
           ("attributes, events and links", "MAX_ITEMS"))

# Per message type (by name), its fields that hold messages: field number -> (message type, what it counts as).
_SCHEMA: dict[str, dict[int, tuple[str, int | None]]] = {
    "request": {1: ("resource_spans", 1)},
    "resource_spans": {1: ("resource", None), 2: ("scope_spans", 1)},
    "resource": {1: ("key_value", 2)},
    "scope_spans": {1: ("scope", None), 2: ("span", 0)},
    "scope": {3: ("key_value", 2)},
    "span": {9: ("key_value", 2), 11: ("event", 2), 13: ("link", 2)},
    "event": {3: ("key_value", 2)},
    "link": {4: ("key_value", 2)},
    "key_value": {2: ("any_value", None)},
    "any_value": {5: ("array_value", None), 6: ("kvlist_value", None)},
    "array_value": {1: ("any_value", 2)},
    "kvlist_value": {1: ("key_value", 2)},
}


def over_limit(counts: list[int]) -> str | None:
    """Which limit ``counts`` (spans, entries, items) is over, as a sentence; None when within them all.

    >>> over_limit([50_001, 1, 0])
    'over 50000 spans in one request (MAX_SPANS); send smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)'
    >>> over_limit([512, 2, 6000]) is None
    True
    """
    for n, (what, name) in zip(counts, _LIMITS):
        limit = globals()[name]
        if n > limit:
            return (f"over {limit} {what} in one request ({name}); send smaller batches "
                    f"(OTEL_BSP_MAX_EXPORT_BATCH_SIZE)")
    return None


def _plain_attribute(data: bytes, pos: int, end: int) -> bool:
    """True when ``data[pos:end]`` is a ``KeyValue`` of a short key and one short scalar value (a string, bytes, bool,
    int or double: no array or kvlist inside), as nearly every attribute is; it then needs no walk of its own (the
    walk costs a function call a message: this check halves the time :func:`count_request` takes on real spans)."""
    if end - pos < 4 or data[pos] != 0x0A or data[pos + 1] >= 0x80:
        return False
    q = pos + 2 + data[pos + 1]  # after the key: the value's tag, its length and the AnyValue's one field
    if q + 3 > end or data[q] != 0x12 or data[q + 1] >= 0x80 or q + 2 + data[q + 1] != end:
        return False
    t = data[q + 2]
    if t in (0x0A, 0x3A):  # string_value, bytes_value
        return q + 4 <= end and data[q + 3] < 0x80 and q + 4 + data[q + 3] == end
    if t in (0x10, 0x18):  # bool_value, int_value: a varint up to the end
        return end - q - 3 <= 10 and all(b >= 0x80 for b in data[q + 3:end - 1]) and data[end - 1] < 0x80
    return t == 0x21 and q + 11 == end  # double_value


def count_request(data: bytes) -> str | None:
    """Count what a serialized ``ExportTraceServiceRequest`` holds from its wire format, without parsing it, up to
    the limits (:data:`MAX_SPANS`, :data:`MAX_ENTRIES`, :data:`MAX_ITEMS`); the first limit exceeded as a sentence
    (:func:`over_limit`), None when it is within them all.

    The walk reads the tags and lengths of the messages that hold the counted ones and steps over everything else
    (a span's name or ids are skipped by their length), so it stops after at most the limits' worth of items: a
    16 MiB body of 8 million empty spans is refused after its first 50,001, in a few milliseconds. Bytes that are not
    protobuf end the walk early, uncounted: the parse that follows reports them.

    >>> count_request(b"\\x0a\\x04\\x12\\x02\\x12\\x00") is None  # one resource, one scope, one empty span
    True
    >>> count_request(b"\\x0a\\x00" * 10_001)
    'over 10000 resource and scope entries in one request (MAX_ENTRIES); send smaller batches ...'
    """
    counts = [0, 0, 0]
    limits = [MAX_SPANS, MAX_ENTRIES, MAX_ITEMS]
    # every item takes at least 2 bytes (a tag and a length): in a smaller body, only spans and entries are counted
    shallow = ("resource", "scope", "span") if len(data) <= 2 * MAX_ITEMS else ()

    def walk(pos: int, end: int, fields: dict[int, tuple[str, int | None]], depth: int) -> bool:
        """Count the messages in ``data[pos:end]``; False once a limit is passed (the walk stops)."""
        while pos < end:
            got = _varint(data, pos, end)  # the tag
            if got is None:
                return True
            key, pos = got
            wire = key & 7
            if wire == 2:  # length-delimited: a message, a string, bytes or packed numbers
                got = _varint(data, pos, end)
                if got is None:
                    return True
                n, pos = got
                if pos + n > end:
                    return True
                sub = fields.get(key >> 3)
                if sub is not None:
                    kind, counted = sub
                    if counted is not None:
                        counts[counted] += 1
                        if counts[counted] > limits[counted]:
                            return False
                    if kind == "key_value" and _plain_attribute(data, pos, pos + n):
                        pass  # most attributes: a key and one scalar value, nothing inside to count
                    elif kind in shallow:
                        pass
                    elif depth < 100 and not walk(pos, pos + n, _SCHEMA[kind], depth + 1):
                        return False
                pos += n
            elif wire == 0:
                while pos < end and data[pos] >= 0x80:
                    pos += 1
                pos += 1
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:  # groups (unused by OTLP) or no wire type at all: the parse reports it
                return True
        return True

    walk(0, len(data), _SCHEMA["request"], 0)
    return over_limit(counts)
