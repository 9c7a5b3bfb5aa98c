"""Traces saved from Jaeger and Zipkin: the JSON their UIs download and their query APIs return.

Format ``jaeger``: a Jaeger trace (``traceID``, ``spans``, ``processes``), the query API's ``{"data": [trace, ...]}``
(what the UI's "Download Results" saves) or an array of traces. Each span: ``spanID``, ``operationName``,
``references`` (the ``CHILD_OF`` one is the parent, else the first), ``startTime`` and ``duration`` in
microseconds, ``tags`` (``[{key, type, value}]``), ``logs`` (``[{timestamp, fields}]``: the ``event`` field names
it), ``processID`` into ``processes`` (``serviceName`` and its ``tags``: the resource).

Format ``zipkin``: Zipkin v2 spans (``traceId``, ``id``, ``parentId``, ``name``, ``kind``, ``timestamp`` and
``duration`` in microseconds, ``tags`` as a map, ``annotations`` as ``[{timestamp, value}]``,
``localEndpoint.serviceName``), one trace as an array of spans (the UI's "Download JSON") or several as an array of
arrays (the search API).

A time or duration written as JSON text (``"1500000"``) is read as its number; a duration that is no number
(``"1.5s"``) is quarantined as a non-numeric value in ``duration``, not loaded with a NULL latency.

OpenTelemetry spans keep their meaning through both, as the Collector's translators write them: the tags are the
span's attributes (``gen_ai.*`` ...), ``otel.status_code`` = ``ERROR`` (or Jaeger's ``error`` tag true, Zipkin's
``error`` tag) is an error with ``otel.status_description`` (Zipkin: the ``error`` tag's text) as its message,
``span.kind`` the kind, ``otel.scope.name`` the scope, the service name the resource's ``service.name`` (so it is the
feature, as in OTLP). Every span becomes one ``calls`` row through :func:`workbench.io.spans.span_values`, the one
table of every span format.

Examples
--------
>>> trace = {"traceID": "0af7651916cd43dd8448eb211c80319c", "processes": {"p1": {"serviceName": "support-bot"}},
...          "spans": [{"traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "b7ad6b7169203331",
...                     "operationName": "chat gpt-4o", "references": [], "startTime": 1763632800000000,
...                     "duration": 1500000, "processID": "p1", "tags": [
...                         {"key": "gen_ai.request.model", "type": "string", "value": "gpt-4o"},
...                         {"key": "gen_ai.usage.input_tokens", "type": "int64", "value": 120}]}]}
>>> v = jaeger_rows([(1, trace, None, None)]).values[0]
>>> v["call_id"], v["model"], v["input_tokens"], v["latency_ms"], v["feature"]
('b7ad6b7169203331', 'gpt-4o', '120', 1500.0, 'support-bot')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.io.openinference import record_spans
from workbench.io.records import Rows, number
from workbench.io.spans import Span, hex_id, not_a_span

JAEGER = "jaeger"
ZIPKIN = "zipkin"


# ------------------------------------------------------------------------------------------------------------ Jaeger


def _is_jaeger_trace(obj: Any) -> bool:
    return (isinstance(obj, dict) and isinstance(obj.get("spans"), list) and "traceID" in obj
            and ("processes" in obj or any(isinstance(s, dict) and "spanID" in s for s in obj["spans"][:1])))


def is_jaeger(obj: Any) -> bool:
    """A Jaeger trace, or the query API's ``{"data": [trace, ...]}``.

    >>> is_jaeger({"data": [{"traceID": "t", "spans": [], "processes": {}}]}), is_jaeger({"data": [{"id": 1}]})
    (True, False)
    """
    if isinstance(obj, dict) and isinstance(obj.get("data"), list) and obj["data"]:
        return _is_jaeger_trace(obj["data"][0])
    return _is_jaeger_trace(obj)


def _tags(tags: Any) -> dict[str, Any]:
    """``[{key, type, value}]`` as a map (a Jaeger ``bool`` or ``int64`` given as text is read as one)."""
    out: dict[str, Any] = {}
    for t in tags if isinstance(tags, list) else []:
        if not isinstance(t, dict) or not isinstance(t.get("key"), str):
            continue
        v, typ = t.get("value"), str(t.get("type", "")).lower()
        if typ == "bool" and isinstance(v, str):
            v = v.strip().lower() == "true"
        elif typ == "int64" and isinstance(number(v), int):
            v = number(v)
        out[t["key"]] = v
    return out


def _micros(v: Any) -> Any:
    """A time or duration in microseconds as its number, also when written as JSON text (``"1500000"``, as the OTLP
    readers read ``"intValue": "42"``; the one rule of :func:`workbench.io.records.number`); anything else as it is.

    >>> _micros("1500000"), _micros(" 2.5 "), _micros(7), _micros("1.5s"), _micros("nan"), _micros("1_000")
    (1500000, 2.5, 7, '1.5s', 'nan', '1_000')
    """
    n = number(v)
    return v if n is None else n


def _not_a_number(name: str, v: Any) -> tuple[str, Any] | None:
    """(name, value) of a duration present that is no number: its span is quarantined naming it, not given a NULL
    latency without a word."""
    return None if v is None or v == "" or (isinstance(v, (int, float)) and not isinstance(v, bool)) else (name, v)


def _status(tags: dict[str, Any], error_text: bool) -> tuple[str, str | None]:
    """(status, message) from the tags the OpenTelemetry translators write: ``otel.status_code`` and
    ``otel.status_description``, or an ``error`` tag (Jaeger: true; Zipkin: its text is the message)."""
    code = str(tags.get("otel.status_code") or "").upper()
    message = tags.get("otel.status_description")
    err = tags.get("error")
    failed = code == "ERROR" or err is True or (isinstance(err, str) and err.strip().lower() not in ("", "false"))
    if error_text and isinstance(err, str) and err.strip().lower() not in ("", "true", "false") and not message:
        message = err
    status = "error" if failed else ("ok" if code == "OK" else "unset")
    return status, (str(message) if message not in (None, "") else None)


_STATUS_TAGS = ("otel.status_code", "otel.status_description", "error", "span.kind", "otel.scope.name",
                "otel.library.name", "internal.span.format")


def jaeger_spans(obj: dict) -> list[Span]:
    """Every span of a Jaeger document (:func:`is_jaeger`), as :class:`~workbench.io.spans.Span`.

    Examples
    --------
    >>> doc = {"data": [{"traceID": "AB", "processes": {"p1": {"serviceName": "bot"}}, "spans": [
    ...     {"traceID": "AB", "spanID": "02", "operationName": "chat", "processID": "p1",
    ...      "references": [{"refType": "CHILD_OF", "spanID": "01"}], "startTime": 1763632800000000, "duration": 250000,
    ...      "tags": [{"key": "otel.status_code", "type": "string", "value": "ERROR"},
    ...               {"key": "otel.status_description", "type": "string", "value": "boom"},
    ...               {"key": "gen_ai.usage.input_tokens", "type": "int64", "value": "12"}]}]}]}
    >>> s = jaeger_spans(doc)[0]
    >>> s.span_id, s.parent_id, s.end, s.attributes, s.resource, s.status, s.status_message
    ('02', '01', 1763632800250000, {'gen_ai.usage.input_tokens': 12}, {'service.name': 'bot'}, 'error', 'boom')
    """
    traces = obj["data"] if isinstance(obj.get("data"), list) else [obj]
    out: list[Span] = []
    for tr in traces:
        if not isinstance(tr, dict):
            continue
        processes = tr.get("processes") if isinstance(tr.get("processes"), dict) else {}
        for sp in tr.get("spans") or []:
            if not isinstance(sp, dict):
                out.append(not_a_span(sp))
                continue
            tags = _tags(sp.get("tags"))
            proc = processes.get(sp.get("processID")) or sp.get("process") or {}
            resource = _tags(proc.get("tags")) if isinstance(proc, dict) else {}
            if isinstance(proc, dict) and proc.get("serviceName"):
                resource.setdefault("service.name", proc["serviceName"])
            refs = [r for r in sp.get("references") or [] if isinstance(r, dict)]
            parent = next((r for r in refs if r.get("refType") == "CHILD_OF"), refs[0] if refs else None)
            status, message = _status(tags, error_text=False)
            start, duration = _micros(sp.get("startTime")), _micros(sp.get("duration"))
            events = []
            for log in sp.get("logs") or []:
                if isinstance(log, dict):
                    fields = _tags(log.get("fields"))
                    events.append({"name": fields.pop("event", None), "time": log.get("timestamp"),
                                   "attributes": fields})
            out.append(Span(
                trace_id=hex_id(sp.get("traceID", tr.get("traceID"))), span_id=hex_id(sp.get("spanID")),
                parent_id=hex_id(parent.get("spanID")) if parent else hex_id(sp.get("parentSpanID")),
                name=sp.get("operationName"), start=start,
                end=start + duration if isinstance(start, (int, float)) and isinstance(duration, (int, float))
                else None,
                attributes={k: v for k, v in tags.items() if k not in _STATUS_TAGS}, resource=resource,
                status=status, status_message=message, events=events,
                scope=tags.get("otel.scope.name") or tags.get("otel.library.name"),
                kind=str(tags["span.kind"]) if tags.get("span.kind") is not None else None, raw=sp,
                invalid=_not_a_number("duration", duration)))
    return out


# ------------------------------------------------------------------------------------------------------------ Zipkin


def is_zipkin(obj: Any) -> bool:
    """A Zipkin v2 span, or an array of them (one trace).

    >>> is_zipkin({"traceId": "t", "id": "a", "timestamp": 1}), is_zipkin({"traceId": "t", "spanId": "a"})
    (True, False)
    """
    if isinstance(obj, list):
        return bool(obj) and all(is_zipkin(s) for s in obj[:1]) and not isinstance(obj[0], list)
    # (OpenTelemetry JS's console exporter also writes traceId, id, timestamp and duration, but its span has an
    # attributes map where Zipkin's has tags: that one is the Vercel AI SDK reader's)
    return (isinstance(obj, dict) and "traceId" in obj and "id" in obj and "spanId" not in obj
            and "attributes" not in obj
            and ("timestamp" in obj or "duration" in obj or "localEndpoint" in obj or "annotations" in obj))


def _annotation_name(value: Any) -> Any:
    """An annotation's event name: its value, or the one key of a JSON object value (``{"name": {attributes}}``, as
    OpenTelemetry's Zipkin exporters write an event with attributes)."""
    if isinstance(value, str) and value.startswith("{"):
        import orjson

        try:
            d = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if isinstance(d, dict) and len(d) == 1:
            return next(iter(d))
    return value


def zipkin_spans(obj: Any) -> list[Span]:
    """The spans of a Zipkin record (:func:`is_zipkin`), as :class:`~workbench.io.spans.Span`.

    Examples
    --------
    >>> trace = [{"traceId": "AB", "id": "01", "name": "chat", "kind": "CLIENT", "timestamp": 1763632800000000,
    ...           "duration": 1500000, "localEndpoint": {"serviceName": "bot"},
    ...           "tags": {"gen_ai.request.model": "gpt-4o", "otel.scope.name": "openai"}},
    ...          {"traceId": "AB", "id": "02", "parentId": "01", "name": "tool", "timestamp": 1763632800500000}]
    >>> [(s.span_id, s.parent_id, s.end, s.attributes, s.resource, s.scope, s.kind) for s in zipkin_spans(trace)]
    [('01', None, 1763632801500000, {'gen_ai.request.model': 'gpt-4o'}, {'service.name': 'bot'}, 'openai', 'CLIENT'),
     ('02', '01', None, {}, {}, None, None)]
    """
    out: list[Span] = []
    for sp in obj if isinstance(obj, list) else [obj]:
        if not isinstance(sp, dict):
            out.append(not_a_span(sp))
            continue
        tags = sp["tags"] if isinstance(sp.get("tags"), dict) else {}
        local = sp.get("localEndpoint") if isinstance(sp.get("localEndpoint"), dict) else {}
        resource = {"service.name": local["serviceName"]} if local.get("serviceName") else {}
        status, message = _status(tags, error_text=True)
        start, duration = _micros(sp.get("timestamp")), _micros(sp.get("duration"))
        events = [{"name": _annotation_name(a.get("value")), "time": a.get("timestamp"), "attributes": {}}
                  for a in sp.get("annotations") or [] if isinstance(a, dict)]
        out.append(Span(
            trace_id=hex_id(sp.get("traceId")), span_id=hex_id(sp.get("id")), parent_id=hex_id(sp.get("parentId")),
            name=sp.get("name"), start=start,
            end=start + duration if isinstance(start, (int, float)) and isinstance(duration, (int, float)) else None,
            attributes={k: v for k, v in tags.items() if k not in _STATUS_TAGS}, resource=resource, status=status,
            status_message=message, events=events, scope=tags.get("otel.scope.name") or tags.get("otel.library.name"),
            kind=str(sp["kind"]) if sp.get("kind") is not None else None, raw=sp,
            invalid=_not_a_number("duration", duration)))
    return out


# ---------------------------------------------------------------------------------------------------------- the rows


def jaeger_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of Jaeger records (see the module docstring); a record that is none is quarantined.

    Examples
    --------
    >>> span = {"traceID": "AB", "spanID": "01", "operationName": "chat gpt-4o", "startTime": 1763632800000000,
    ...         "duration": 800000, "processID": "p1",
    ...         "logs": [{"timestamp": 1763632800100000, "fields": [{"key": "event", "value": "first_token"}]}]}
    >>> trace = {"traceID": "AB", "processes": {"p1": {"serviceName": "bot"}}, "spans": [span]}
    >>> r = jaeger_rows([(1, trace, None, None), (2, {"spans": []}, None, None)])
    >>> v = r.values[0]
    >>> v["call_id"], v["operation"], v["latency_ms"], v["ttft_ms"], v["feature"], r.err[1]
    ('01', 'chat', 800.0, 100.0, 'bot', 'not a Jaeger trace or span')
    """
    return record_spans(records, rows, is_jaeger, jaeger_spans, lambda _: "not a Jaeger trace or span", "Jaeger span")


def zipkin_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of Zipkin v2 records (see the module docstring); a record that is none is quarantined.

    >>> r = zipkin_rows([(1, [{"traceId": "0af7651916cd43dd8448eb211c80319c", "id": "b7ad6b7169203331",
    ...     "name": "chat", "timestamp": 1763632800000000, "duration": 250000,
    ...     "localEndpoint": {"serviceName": "bot"}, "tags": {"gen_ai.request.model": "gpt-4o", "error": "boom"}}],
    ...     None, None)])
    >>> v = r.values[0]
    >>> v["model"], v["status"], v["latency_ms"], v["attributes"]["otel.status_message"]
    ('gpt-4o', 'error', 250.0, 'boom')
    """
    return record_spans(records, rows, is_zipkin, zipkin_spans, lambda _: "not a Zipkin trace or span", "Zipkin span")
