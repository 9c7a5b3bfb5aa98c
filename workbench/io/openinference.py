"""OpenInference and OTLP spans from JSON documents, arrays, single spans and Phoenix's spans dataframe.

Format ``openinference`` (and ``otel`` when the file is not JSON lines: a pretty-printed document, several of them one
after the other, a JSON array, or a gzip file of any of these). Records of any of these shapes, mixed freely:

* a whole OTLP export ``{"resourceSpans": [...]}`` (every span in it);
* a single OTLP ``Span`` in protojson (``traceId``/``trace_id``, ``spanId``, ``attributes`` as ``[{key, value}]``),
  or an array of them;
* a Phoenix span: the JSON of its spans API (``context.trace_id``/``context.span_id``, ``span_kind``, ``start_time``,
  ``attributes`` as a map) or a row of its spans dataframe exported to Parquet or CSV (``context.span_id``,
  ``attributes.llm.token_count.prompt`` ... columns; ``NaN`` is missing; ``events`` and ``attributes.metadata`` as
  JSON, or in a CSV as the Python repr pandas writes);
* a page of spans as an API returns it, ``{"data": [span, ...]}`` (Phoenix's REST API, ``next_cursor`` beside it);
* a span as the OpenTelemetry Python SDK writes it (``ConsoleSpanExporter``, ``ReadableSpan.to_json()``): the same
  ``context`` with ids written ``0x...``, ``status`` as ``{"status_code", "description"}``, the ``resource``'s
  ``attributes`` map (``service.name`` is the feature, as in OTLP).

Every span becomes one ``calls`` row through :func:`workbench.io.spans.span_values`: OpenInference's ``llm.*`` names
(``llm.model_name``, ``llm.provider``, ``llm.token_count.prompt|completion``,
``llm.token_count.prompt_details.cache_read``, ``llm.token_count.completion_details.reasoning``,
``openinference.span.kind``, ``session.id``, ``user.id``) sit after the OpenTelemetry GenAI names in the one table;
the keys of its ``metadata`` JSON that name a column (``feature``, ``user_id``, ``session_id``, ``prompt_version``,
``variant``) fill it when no dedicated attribute does (:data:`workbench.io.spans.METADATA`).
``llm.token_count.total`` is not read (it is input + output). A record that is none of these is quarantined as
"not a span".

Examples
--------
>>> r = span_rows([(1, {"context": {"trace_id": "t1", "span_id": "s1"}, "name": "llm", "span_kind": "LLM",
...                     "start_time": "2025-11-20T10:00:00+00:00", "end_time": "2025-11-20T10:00:02+00:00",
...                     "status_code": "OK", "attributes": {"llm.model_name": "gpt-4o-mini",
...                     "llm.token_count.prompt": 30, "llm.token_count.completion": 7}}, None, None)])
>>> v = r.values[0]
>>> v["model"], v["input_tokens"], v["output_tokens"], v["latency_ms"], v["operation"]
('gpt-4o-mini', '30', '7', 2000.0, 'chat')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from workbench.io.records import MALFORMED, InvalidField, Rows, epoch_us, malformed, number, timestamp
from workbench.io.langfuse import span_columns
from workbench.io.spans import (LANGFUSE_COMPLETION_START, LANGFUSE_COST, LANGFUSE_USAGE, METADATA, Span,
                                attribute_map, hex_id, not_a_span, otlp_export_spans, otlp_span, span_values,
                                status_name)

FORMAT = "openinference"


def is_otlp_export(obj: Any) -> bool:
    """A whole OTLP export: ``{"resourceSpans": [...]}`` (or ``resource_spans``).

    Examples
    --------
    >>> is_otlp_export({"resourceSpans": []}), is_otlp_export({"resource_spans": []}), is_otlp_export({"spans": []})
    (True, True, False)
    """
    return isinstance(obj, dict) and ("resourceSpans" in obj or "resource_spans" in obj)


def is_otlp_span(obj: Any) -> bool:
    """A single OTLP ``Span`` in protojson: trace and span ids, attributes as a list (a map is another format's).

    Examples
    --------
    >>> is_otlp_span({"traceId": "ab", "spanId": "01", "attributes": [{"key": "a", "value": {"intValue": "1"}}]})
    True
    >>> is_otlp_span({"traceId": "ab", "spanId": "01", "attributes": {"a": 1}})
    False
    """
    return (isinstance(obj, dict) and ("spanId" in obj or "span_id" in obj)
            and ("traceId" in obj or "trace_id" in obj) and not isinstance(obj.get("attributes"), dict))


def is_span_page(obj: Any) -> bool:
    """A page of spans as an API returns it: ``{"data": [span, ...]}`` (Phoenix's REST API, with ``next_cursor``).

    >>> is_span_page({"data": [{"context": {"span_id": "a"}, "span_kind": "LLM"}], "next_cursor": None})
    True
    """
    data = obj.get("data") if isinstance(obj, dict) else None
    return isinstance(data, list) and bool(data) and (is_phoenix_span(data[0]) or is_otlp_span(data[0]))


def is_phoenix_span(obj: Any) -> bool:
    """A Phoenix span: its API's JSON (``context.span_id`` with ``span_kind`` or ``attributes``) or a row of its spans
    dataframe (a ``context.span_id`` column).

    Examples
    --------
    >>> is_phoenix_span({"context": {"trace_id": "ab", "span_id": "01"}, "span_kind": "LLM"})
    True
    >>> is_phoenix_span({"context.span_id": "01"}), is_phoenix_span({"context": {"span_id": "01"}})
    (True, False)
    """
    if not isinstance(obj, dict):
        return False
    if "context.span_id" in obj:
        return True
    ctx = obj.get("context")
    return isinstance(ctx, dict) and "span_id" in ctx and ("span_kind" in obj or "attributes" in obj)


def looks_like(obj: Any) -> bool:
    """A record this module reads.

    Examples
    --------
    >>> looks_like({"resourceSpans": []}), looks_like({"context.span_id": "01"}), looks_like({"id": 1})
    (True, True, False)
    """
    return is_otlp_export(obj) or is_otlp_span(obj) or is_phoenix_span(obj) or is_span_page(obj)


def _one_span(obj: Any) -> Span:
    return otlp_span(obj) if is_otlp_span(obj) else phoenix_span(obj)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k != "metadata":
            out.update(_flatten(v, key + "."))
        else:
            out[key] = _clean(v)
    return out


def _frame_value(text: str) -> Any:
    """A list or dict cell of a spans dataframe saved to CSV: its JSON, else the Python repr pandas writes
    (``[{'name': ..., 'timestamp': '...'}]``, ``{'feature': 'search'}``) read as a literal (never evaluated as code);
    None when it is neither.

    >>> _frame_value('[{"name": "first_token"}]'), _frame_value("{'feature': 'search'}"), _frame_value("{oops")
    ([{'name': 'first_token'}], {'feature': 'search'}, None)
    """
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        import ast

        try:
            return ast.literal_eval(text) if len(text) <= 1_000_000 else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None


def phoenix_span(obj: dict) -> Span:
    """A :class:`Span` from a Phoenix span (API JSON, or a spans-dataframe row with ``attributes.*`` columns).

    Examples
    --------
    >>> s = phoenix_span({"context.trace_id": "AB", "context.span_id": "01", "name": "llm", "span_kind": "LLM",
    ...                   "start_time": "2025-11-20T10:00:00Z", "status_code": "OK",
    ...                   "attributes.llm.model_name": "gpt-4o", "attributes.llm.token_count.prompt": float("nan")})
    >>> s.trace_id, s.span_id, s.status, s.attributes  # a NaN cell is missing
    ('ab', '01', 'ok', {'llm.model_name': 'gpt-4o', 'openinference.span.kind': 'LLM'})
    >>> s = phoenix_span({"context": {"trace_id": "0xAB", "span_id": "0x01"}, "name": "x",
    ...                   "attributes": {"llm": {"model_name": "gpt-4o"}},
    ...                   "status": {"status_code": "ERROR", "description": "boom"},
    ...                   "resource": {"attributes": {"service.name": "api"}}})  # the OpenTelemetry Python SDK's JSON
    >>> s.span_id, s.attributes, s.status, s.status_message, s.resource
    ('01', {'llm.model_name': 'gpt-4o'}, 'error', 'boom', {'service.name': 'api'})
    """
    if "context.span_id" in obj:
        attrs = {k[len("attributes."):]: _clean(v) for k, v in obj.items()
                 if k.startswith("attributes.") and _clean(v) is not None}
        trace_id, span_id = obj.get("context.trace_id"), obj.get("context.span_id")
    else:
        ctx = obj.get("context") or {}
        raw = obj.get("attributes")
        attrs = _flatten(raw) if isinstance(raw, dict) else attribute_map(raw)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        trace_id, span_id = ctx.get("trace_id"), ctx.get("span_id")
    kind = _clean(obj.get("span_kind"))
    if kind and "openinference.span.kind" not in attrs:
        attrs["openinference.span.kind"] = kind
    md = attrs.get(METADATA)
    if isinstance(md, str) and md.startswith("{") and isinstance(got := _frame_value(md), dict):
        attrs[METADATA] = got  # (the dataframe's dict, its Python repr in a CSV)
    events = []
    evs = obj.get("events")
    if isinstance(evs, str) and evs.startswith("["):
        evs = _frame_value(evs)
    for e in evs if isinstance(evs, list) else []:
        if isinstance(e, dict):
            events.append({"name": e.get("name"), "time": e.get("timestamp", e.get("time")),
                           "attributes": e.get("attributes") or {}})
    # The OpenTelemetry Python SDK's JSON of a span (ConsoleSpanExporter) nests the status ({"status_code",
    # "description"}) and the resource ({"attributes": {...}}); Phoenix has status_code and status_message at the top.
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    res = obj.get("resource") if isinstance(obj.get("resource"), dict) else {}
    res_attrs = res.get("attributes")
    resource = ({k: v for k, v in _flatten(res_attrs).items() if v is not None} if isinstance(res_attrs, dict)
                else attribute_map(res_attrs) if isinstance(res_attrs, list) else {})
    code = _clean(obj.get("status_code")) if obj.get("status_code") is not None else status.get("status_code")
    message = _clean(obj.get("status_message")) if obj.get("status_message") is not None else status.get("description")
    kind = obj.get("kind")
    return Span(trace_id=hex_id(_clean(trace_id)), span_id=hex_id(_clean(span_id)),
                parent_id=hex_id(_clean(obj.get("parent_id"))), name=_clean(obj.get("name")),
                start=_clean(obj.get("start_time")), end=_clean(obj.get("end_time")), attributes=attrs,
                resource=resource, status=status_name(code), status_message=message, events=events,
                kind=str(kind) if isinstance(kind, (str, int)) else None, raw=obj)


def _epoch_ns_us(value: Any) -> int | None:
    """:func:`epoch_us` of an OTLP ``*UnixNano`` time as :func:`workbench.io.spans.otlp_span` gives it: text that is
    no number (an ISO time) is refused, as the OTLP JSON-lines reader refuses it."""
    if value is not None and not isinstance(value, list) and type(value) not in (int, float) and number(value) is None:
        raise ValueError(repr(value))
    return epoch_us(value)


def add_span(rows: Rows, k: int, span: Span, raw: Any, extra: dict | None = None, used: tuple = (),
             override: dict | None = None) -> None:
    """Append one span's row (or, when a time cannot be read, its quarantine record).

    Examples
    --------
    >>> rows = Rows()
    >>> add_span(rows, 1, Span("ab", "01", None, "chat", 1763632800, 1763632801, {"gen_ai.request.model": "gpt-4o"}),
    ...          None, override={"feature": "search"})
    >>> add_span(rows, 2, Span("ab", "02", None, "chat", "soon", None, {}), None)
    >>> v = rows.values[0]
    >>> rows.k, v["model"], v["feature"], v["latency_ms"], rows.kind
    ([1, 2], 'gpt-4o', 'search', 1000.0, [None, 'unparseable timestamp: ts'])
    """
    if span.invalid is not None:  # (a time given as a duration, say, that no number is: read, it would be NULL)
        name, val = span.invalid
        rows.error(k, f"non-numeric value: {name}", f"non-numeric value in {name}: {str(val)[:80]!r}",
                   raw=raw if raw is not None else span.raw, field=name)
        return
    a, given = span.attributes, None
    if LANGFUSE_USAGE in a or LANGFUSE_COST in a or LANGFUSE_COMPLETION_START in a:
        # (read before the times, as the OTLP JSON-lines reader gives its reason first)
        try:
            start = epoch_us(span.start)
        except (ValueError, OverflowError, TypeError):  # (quarantined below)
            start = None
        try:
            given = span_columns(a.get(LANGFUSE_USAGE), a.get(LANGFUSE_COST), a.get(LANGFUSE_COMPLETION_START), start)
        except InvalidField as exc:  # an attribute that cannot be read: a Langfuse usage that is no JSON object
            rows.error(k, exc.kind, exc.reason, raw=raw if raw is not None else span.raw, field=exc.field)
            return
        except MALFORMED as exc:
            malformed(rows, k, "span", exc, raw if raw is not None else span.raw)
            return
    how = {"expected": "epoch ns", "parse": _epoch_ns_us} if span.epoch_ns else {}
    for col, val in (("ts", span.start), ("end_ts", span.end)):
        if not timestamp({}, rows, k, raw, col, val, **how):
            return
    try:
        values = span_values(span, extra, used, given)
    except MALFORMED as exc:
        malformed(rows, k, "span", exc, raw if raw is not None else span.raw)
        return
    if override:
        values.update(override)
    rows.add(k, values, raw=raw if raw is not None else span.raw)


def record_spans(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None,
                 looks: Callable[[Any], bool], spans: Callable[[Any], list[Span]], refusal: Callable[[Any], str],
                 what: str = "span") -> Rows:
    """``calls`` rows of span records, the loop every span format shares: each record ``looks`` accepts gives its
    ``spans``, each kept with its own JSON for the quarantine; an error of the file's reader, a record ``looks``
    refuses (quarantined as "not a span" with ``refusal(record)``) and a record of unexpected shape (a malformed
    ``what``) are quarantined.

    Examples
    --------
    >>> def spans(rec):
    ...     return [Span("ab", sp["id"], None, "chat", sp["start"], sp["end"], {}) for sp in rec["spans"]]
    >>> records = [(1, {"spans": [{"id": "a", "start": 1763632800, "end": 1763632801}]}, None, None),
    ...            (2, [], None, None), (3, {"spans": [{"id": "b"}]}, None, None)]
    >>> r = record_spans(records, None, lambda rec: isinstance(rec, dict), spans,
    ...                  lambda rec: f"not my span ({type(rec).__name__})")
    >>> r.k, [v.get("latency_ms") for v in r.values], r.err[1:]
    ([1, 2, 3], [1000.0, None, None], ['not my span (list)', "malformed span: KeyError: 'start'"])
    """
    rows = Rows() if rows is None else rows
    for k, obj, raw, err in records:
        if err is not None:
            rows.error(k, err, err, raw=raw)
        elif not looks(obj):
            rows.error(k, "not a span", refusal(obj), raw=obj)
        else:
            try:
                got = spans(obj)
            except MALFORMED as exc:
                malformed(rows, k, what, exc, obj)
                continue
            for sp in got:  # raw: the span's own JSON, as the SQL path keeps it
                add_span(rows, k, sp, sp.raw)
    return rows


def _spans_of(obj: Any) -> list[Span]:
    if is_otlp_export(obj):
        return otlp_export_spans(obj)
    if is_span_page(obj):
        return [_one_span(sp) if isinstance(sp, dict) else not_a_span(sp) for sp in obj["data"]]
    return [_one_span(obj)]


def _not_a_span(obj: Any) -> str:
    what = type(obj).__name__ if not isinstance(obj, dict) else "object without spanId/context.span_id"
    return f"not an OpenTelemetry or OpenInference span ({what})"


def span_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of span records (see the module docstring); unreadable records are quarantined.

    Examples
    --------
    >>> span = {"traceId": "AB", "spanId": "01", "name": "chat", "startTimeUnixNano": "1763632800000000000",
    ...         "endTimeUnixNano": "1763632800250000000",
    ...         "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}}]}
    >>> r = span_rows([(1, span, None, None), (2, {"id": 1}, None, None)])
    >>> [(v.get("call_id"), v.get("input_tokens"), v.get("latency_ms")) for v in r.values], r.kind
    ([('01', '7', 250.0), (None, None, None)], [None, 'not a span'])
    """
    return record_spans(records, rows, looks_like, _spans_of, _not_a_span)
