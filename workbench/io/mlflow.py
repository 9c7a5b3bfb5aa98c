"""MLflow traces: ``Trace.to_json()`` / ``Trace.to_dict()``, ``mlflow.search_traces()`` rows, MLflow span dicts.

Format ``mlflow``. Records of these shapes, one per line (JSON lines), in a JSON array, or as documents one after the
other (gzip too), mixed freely:

* a trace, ``{"info": {...}, "data": {"spans": [...]}}``, as ``Trace.to_json()`` and ``Trace.to_dict()`` write it
  (``mlflow/entities/trace.py``, ``mlflow/entities/trace_data.py``). Its ``info`` is MLflow 2's ``TraceInfo``
  (``asdict``: ``request_id``, ``experiment_id``, ``timestamp_ms``, ``execution_time_ms``, ``status``,
  ``request_metadata``, ``tags``; ``mlflow/entities/trace_info.py`` of 2.x, ``tests/entities/test_trace_info.py``) or
  MLflow 3's (``MessageToDict`` of the proto: ``trace_id`` ``"tr-..."``, ``client_request_id``, ``trace_location``,
  ``request_preview``/``request``, ``request_time`` as ISO 8601, ``execution_duration`` as ``"0.100s"`` or
  ``execution_duration_ms``, ``state``, ``trace_metadata``, ``assessments``, ``tags``;
  ``tests/entities/test_trace_info_v3.py``, ``tests/entities/test_trace_info.py`` of 3.x);
* a row of the DataFrame ``mlflow.search_traces()`` returns, saved with ``df.to_json(orient="records", lines=True)``
  (``Trace.to_pandas_dataframe_row``: MLflow 2 ``request_id``, ``timestamp_ms``, ``status``, ``execution_time_ms``,
  ``request_metadata``, ``spans``, ``tags``; MLflow 3 ``trace_id``, ``trace`` (the trace's own ``to_json()`` text,
  read first when present), ``state``, ``request_time``, ``execution_duration``, ``trace_metadata``, ``tags``,
  ``spans``);
* ``TraceData.to_dict()`` (``{"spans": [...]}``) or single span dicts (``Span.to_dict()``), without a trace info.

Spans, as ``Span.to_dict()`` (``mlflow/entities/span.py``) has written them over the versions (``Span.from_dict``
reads all of them; ``tests/entities/test_span.py``, ``tests/entities/test_trace.py``,
``tests/tracing/sample_code/model_with_add_trace.py``):

* MLflow 2.x: ``name``, ``context`` (``trace_id``, ``span_id``: hex, ``0x``-prefixed up to 2.x), ``parent_id``,
  ``start_time``/``end_time`` (epoch nanoseconds), ``status_code`` (``OK``/``ERROR``/``UNSET``), ``status_message``,
  ``attributes``, ``events`` (``name``, ``timestamp``, ``attributes``);
* MLflow 3.0-3.4: OTLP-like ``trace_id``/``span_id``/``parent_span_id`` in base64, ``start_time_unix_nano``,
  ``end_time_unix_nano``, ``status`` ``{"code": "STATUS_CODE_OK", "message"}``, ``events`` with ``time_unix_nano``;
* MLflow 3.5 and later: ``trace_id`` the MLflow id ``"tr-<hex>"`` (``otel_trace_id`` beside it from the v4 dict on),
  ``span_id``/``parent_span_id`` in hex, ``status.code`` ``OK``/``ERROR``;
* the pre-release dataclass ``Span`` (``span_type``, ``inputs``, ``outputs`` and a plain ``attributes`` map beside
  ``context``, ``parent_span_id``, ``status`` ``{"status_code", "description"}``).

Every attribute value is the JSON text of the value (``mlflow.spanType`` = ``'"LLM"'``,
``mlflow.chat.tokenUsage`` = ``'{"input_tokens": 10, ...}'``: ``LiveSpan`` dumps each one); it is decoded, and a
value that is not JSON (a span ingested from OTLP) is kept as given. Ids are lower-case hex whatever the version wrote
(:func:`workbench.io.spans.hex_id`); times are UTC, read by their size (nanoseconds, or the microseconds some event
times hold).

Each span is one ``calls`` row through :func:`workbench.io.spans.span_values` (the shared table of every span format),
then MLflow's own names (``mlflow/tracing/constant.py``: ``SpanAttributeKey``, ``TokenUsageKey``, ``CostKey``,
``TraceMetadataKey``, ``TraceTagKey``):

==================  ===========================================================================================
column              source
==================  ===========================================================================================
call_id, parent_id  the span's id, its parent's (hex)
trace_id            the OpenTelemetry trace id in hex: ``otel_trace_id``, ``context.trace_id``, the span's
                    ``trace_id`` (``tr-`` removed); the MLflow trace id is ``attributes["mlflow.trace_id"]``
ts, end_ts          the span's start and end (latency: their difference)
operation           ``gen_ai.operation.name``, else ``mlflow.spanType`` by the shared rule
                    (:data:`workbench.io.spans.SPAN_KINDS`): ``LLM``/``CHAT_MODEL`` -> ``chat``, ``EMBEDDING`` ->
                    ``embeddings``, ``TOOL`` -> ``execute_tool``, ``AGENT`` -> ``invoke_agent``, the others
                    (``CHAIN``, ``RETRIEVER``, ``PARSER``, ``RERANKER``, ``MEMORY``, ``UNKNOWN``) lower-cased
input_tokens ...    ``mlflow.chat.tokenUsage``: ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``
                    (cache_read_tokens), ``cache_creation_input_tokens`` (cache_write_tokens); without it, the
                    shared OpenTelemetry GenAI / OpenInference names (``gen_ai.usage.input_tokens`` ...), never
                    both
cost_usd            ``mlflow.llm.cost`` ``total_cost`` (USD), else the shared names
model               the shared names, else ``mlflow.llm.model``, else ``invocation_params`` ``model`` /
                    ``model_name`` (LangChain autolog passes the callback's kwargs as attributes), else the
                    span inputs' ``model`` (OpenAI-style autolog), else ``metadata.ls_model_name``
request_model       the shared names, else the span inputs' ``model``, else the model
provider            the shared names, else ``mlflow.llm.provider``, else ``metadata.ls_provider``
user_id, session_id the span's ``user.id`` / ``session.id`` (MLflow copies them to the root span for OTLP), else
                    the trace's metadata (then tags) ``mlflow.trace.user`` / ``mlflow.trace.session``
feature             the shared names, else the trace's ``workbench.feature`` / ``feature`` (metadata, tags),
                    else its name (tag ``mlflow.traceName``)
status              the span status (``ERROR`` -> error; ``timeout`` when the error type or message says so);
                    error_type: ``error.type``, else the ``exception`` event's ``exception.type``
attributes          the span's other attributes (decoded), ``mlflow.trace_id``, the trace's ``tags``; on the
                    root span also the trace's metadata, state and duration
==================  ===========================================================================================

Counting tokens once. MLflow adds a trace's usage up into its metadata (``mlflow.trace.tokenUsage``): that total is
kept in the root span's ``attributes`` only, never a row's tokens. A span that carries usage while a span inside it
does too (a framework's step repeating its model calls' usage) keeps its usage in ``attributes`` only (as
``mlflow.chat.tokenUsage``): the innermost spans with usage are the calls that count, so a sum over ``calls`` equals
MLflow's own trace total (``aggregate_usage_from_spans`` in ``mlflow/tracing/utils/__init__.py`` counts the outermost
span with usage, whose usage is its calls').

Not read: the MLflow REST API's trace searches (``GET /api/2.0/mlflow/traces``) list trace infos without spans; a
trace without spans is quarantined (field ``spans``), naming it. ``answers`` are not derived (MLflow traces have no
retrieval contexts of a known shape).

Examples
--------
>>> trace = {"info": {"trace_id": "tr-0af7651916cd43dd8448eb211c80319c", "request_time": "2025-11-20T10:00:00Z",
...                   "state": "OK", "trace_metadata": {"mlflow.trace.user": "u1"}, "tags": {}},
...          "data": {"spans": [{"trace_id": "tr-0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331",
...                              "parent_span_id": None, "name": "ChatOpenAI",
...                              "start_time_unix_nano": 1763632800000000000,
...                              "end_time_unix_nano": 1763632801500000000, "status": {"code": "OK", "message": ""},
...                              "attributes": {"mlflow.spanType": '"CHAT_MODEL"', "mlflow.llm.model": '"gpt-4o"',
...                                             "mlflow.chat.tokenUsage": '{"input_tokens": 12, "output_tokens": 5,'
...                                                                       ' "total_tokens": 17}'}}]}}
>>> v = mlflow_rows([(1, trace, None, None)]).values[0]
>>> v["operation"], v["model"], v["input_tokens"], v["output_tokens"], v["latency_ms"], v["user_id"]
('chat', 'gpt-4o', 12, 5, 1500.0, 'u1')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import math

import orjson

from workbench.io.openinference import add_span
from workbench.io.records import MALFORMED, Rows, first, malformed
from workbench.io.spans import USAGE_COLUMNS, Span, hex_id, status_name

FORMAT = "mlflow"

USAGE = "mlflow.chat.tokenUsage"
SPAN_TYPE = "mlflow.spanType"
REQUEST_ID = "mlflow.traceRequestId"
#: MLflow's names after the shared ones, per column (read by :func:`workbench.io.spans.span_values`).
_EXTRA = {"model": ("mlflow.llm.model",), "provider": ("mlflow.llm.provider",)}
#: Read into columns (or repeated elsewhere): kept out of ``attributes``.
_USED = (USAGE, SPAN_TYPE, REQUEST_ID, "mlflow.llm.cost")
_TOKEN_KEYS = (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
               ("cache_read_tokens", "cache_read_input_tokens"), ("cache_write_tokens", "cache_creation_input_tokens"))
_ROW_KEYS = ("trace_metadata", "request_metadata", "state", "status", "timestamp_ms", "request_time", "trace")


# ------------------------------------------------------------------------------------------------------ recognising


def is_trace(obj: Any) -> bool:
    """``Trace.to_json()`` / ``to_dict()``: ``{"info": {...}, "data": {"spans": [...]}}``.

    >>> is_trace({"info": {"request_id": "r"}, "data": {"spans": []}}), is_trace({"info": {}, "data": []})
    (True, False)
    """
    return (isinstance(obj, dict) and isinstance(obj.get("info"), dict) and isinstance(obj.get("data"), dict)
            and isinstance(obj["data"].get("spans"), list))


def is_trace_row(obj: Any) -> bool:
    """A row of ``mlflow.search_traces()`` saved as JSON: ``spans`` beside the trace's id and info columns.

    Examples
    --------
    >>> is_trace_row({"request_id": "r1", "status": "OK", "timestamp_ms": 1763632800000, "spans": []})
    True
    >>> is_trace_row({"request_id": "r1", "spans": []})  # no info column: not a search_traces() row
    False
    """
    return (isinstance(obj, dict) and isinstance(obj.get("spans"), list)
            and ("trace_id" in obj or "request_id" in obj) and any(k in obj for k in _ROW_KEYS))


def is_span(obj: Any) -> bool:
    """A span dict of any MLflow version: an ``attributes`` map with MLflow's reserved names, and an id.

    >>> is_span({"span_id": "a", "attributes": {"mlflow.spanType": '"LLM"'}})
    True
    >>> is_span({"span_id": "a", "attributes": {}})
    False
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("attributes"), dict):
        return False
    if "span_id" not in obj and not isinstance(obj.get("context"), dict):
        return False
    return "span_type" in obj or any(str(k).startswith(("mlflow.span", REQUEST_ID)) for k in obj["attributes"])


def is_span_list(obj: Any) -> bool:
    """``TraceData.to_dict()``: ``{"spans": [span, ...]}`` (no trace info).

    Examples
    --------
    >>> is_span_list({"spans": [{"span_id": "01", "attributes": {"mlflow.spanType": '"LLM"'}}]})
    True
    >>> is_span_list({"spans": []}), is_span_list({"spans": [{"span_id": "01", "attributes": {}}]})
    (False, False)
    """
    spans = obj.get("spans") if isinstance(obj, dict) else None
    return isinstance(spans, list) and bool(spans) and is_span(spans[0])


def looks_like(obj: Any) -> bool:
    """A record this module reads.

    Examples
    --------
    >>> looks_like({"info": {"trace_id": "tr-1"}, "data": {"spans": []}})
    True
    >>> looks_like({"span_id": "01", "attributes": {"mlflow.spanType": '"TOOL"'}}), looks_like({"spans": []})
    (True, False)
    """
    return is_trace(obj) or is_trace_row(obj) or is_span(obj) or is_span_list(obj)


# --------------------------------------------------------------------------------------------------------- reading


def _decode(v: Any) -> Any:
    """An attribute value as MLflow stored it (its JSON text) decoded; a value that is not JSON text as given."""
    if isinstance(v, str) and v:
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _trace_hex(v: Any) -> str | None:
    """An OpenTelemetry trace id in hex from any id MLflow writes: hex, ``0x``, base64, ``tr-<hex>``,
    ``trace:/<location>/<hex>``."""
    if v is None:
        return None
    s = str(v).strip()
    if s.startswith("trace:/"):
        s = s.rsplit("/", 1)[-1]
    return hex_id(s.removeprefix("tr-"))


def _parts(obj: dict) -> tuple[dict, list]:
    """(trace info, spans) of a record :func:`looks_like` accepts."""
    if is_trace(obj):
        return obj["info"], obj["data"]["spans"]
    if is_trace_row(obj):
        tr = obj.get("trace")
        if isinstance(tr, str) and tr.lstrip().startswith("{"):
            try:
                tr = orjson.loads(tr)
            except orjson.JSONDecodeError:
                tr = None
        if is_trace(tr):
            return tr["info"], tr["data"]["spans"]
        return obj, obj["spans"]
    if is_span_list(obj):
        return {}, obj["spans"]
    return {}, [obj]


def _map(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


class _Trace:
    """What a trace's info gives each of its spans' rows."""

    def __init__(self, info: dict) -> None:
        self.id = first(info.get("trace_id"), info.get("request_id"))
        self.metadata = _map(info.get("trace_metadata")) or _map(info.get("request_metadata"))
        self.tags = _map(info.get("tags"))
        self.otel_id = _trace_hex(self.id) if isinstance(self.id, str) and self.id.startswith("tr-") else None
        self.state = first(info.get("state"), info.get("status"))
        self.duration = first(info.get("execution_duration_ms"), info.get("execution_time_ms"),
                              info.get("execution_duration"))

    def get(self, *keys: str) -> Any:
        """The first of ``keys`` in the trace's metadata, then in its tags."""
        return first(*(self.metadata.get(k) for k in keys), *(self.tags.get(k) for k in keys))


def mlflow_span(sp: dict, trace: _Trace | None = None) -> Span:
    """A :class:`~workbench.io.spans.Span` from an MLflow span dict of any version (see the module docstring).

    Examples
    --------
    >>> s = mlflow_span({"name": "ChatOpenAI", "context": {"trace_id": "0xAB", "span_id": "0x01"}, "parent_id": None,
    ...                  "start_time": 1763632800000000000, "end_time": 1763632800400000000, "status_code": "OK",
    ...                  "attributes": {"mlflow.spanType": '"LLM"', "mlflow.chat.tokenUsage": '{"input_tokens": 3}'}})
    >>> s.trace_id, s.span_id, s.parent_id, s.status, s.attributes  # MLflow 2.x: values are JSON text, decoded
    ('ab', '01', None, 'ok', {'mlflow.spanType': 'LLM', 'mlflow.chat.tokenUsage': {'input_tokens': 3}})
    >>> s = mlflow_span({"name": "x", "trace_id": "tr-0af7651916cd43dd8448eb211c80319c", "span_id": "AQIDBAUGBwg=",
    ...                  "start_time_unix_nano": 1, "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
    ...                  "attributes": {}})  # MLflow 3.0-3.4: base64 ids
    >>> s.trace_id, s.span_id, s.status, s.status_message
    ('0af7651916cd43dd8448eb211c80319c', '0102030405060708', 'error', 'boom')
    """
    trace = trace or _Trace({})
    attrs = {str(k): _decode(v) for k, v in sp["attributes"].items()} if isinstance(sp.get("attributes"), dict) \
        else {}
    # the pre-release dataclass Span: its type, inputs and outputs beside the attributes
    for key, name in (("span_type", SPAN_TYPE), ("inputs", "mlflow.spanInputs"), ("outputs", "mlflow.spanOutputs")):
        if sp.get(key) is not None and name not in attrs:
            attrs[name] = sp[key]
    ctx = _map(sp.get("context"))
    st = sp.get("status")
    if isinstance(st, dict):
        code, message = first(st.get("code"), st.get("status_code")), first(st.get("message"), st.get("description"))
    else:
        code, message = first(sp.get("status_code"), st), sp.get("status_message")
    events = []
    for e in sp.get("events") or []:
        if isinstance(e, dict):
            events.append({"name": e.get("name"), "time": first(e.get("time_unix_nano"), e.get("timestamp")),
                           "attributes": _map(e.get("attributes"))})
    ids = {"trace_id": first(sp.get("otel_trace_id"), ctx.get("trace_id"), sp.get("trace_id")),
           "span_id": first(sp.get("span_id"), ctx.get("span_id")),
           "parent_span_id": first(sp.get("parent_span_id"), sp.get("parent_id"))}
    for name, v in ids.items():  # (an id given an object or a list was stored as its Python repr)
        if isinstance(v, (dict, list)):
            raise TypeError(f"{name} is a nested value, not an id: {str(v)[:80]}")
    return Span(
        trace_id=first(_trace_hex(ids["trace_id"]), trace.otel_id),
        span_id=hex_id(ids["span_id"]),
        parent_id=hex_id(ids["parent_span_id"]),
        name=sp.get("name"),
        start=first(sp.get("start_time_unix_nano"), sp.get("start_time")),
        end=first(sp.get("end_time_unix_nano"), sp.get("end_time")),
        attributes=attrs, status=status_name(code), status_message=message or None, events=events,
        kind=str(sp["kind"]) if sp.get("kind") is not None else None, raw=sp)


def _usage(a: dict) -> dict | None:
    u = a.get(USAGE)
    return u if isinstance(u, dict) else None


def _rolled_up(spans: list[Span]) -> set[str]:
    """Ids of the spans with usage that have a span with usage inside them (their usage repeats their calls')."""
    parent = {s.span_id: s.parent_id for s in spans if s.span_id}
    with_usage = {s.span_id for s in spans if s.span_id and _usage(s.attributes) is not None}
    above: set[str] = set()
    for sid in with_usage:
        seen, chain = {sid}, []
        p = parent.get(sid)
        while p and p not in seen and p not in above:
            seen.add(p)
            chain.append(p)
            p = parent.get(p)
        if p in seen:  # parents that loop (a names b, b names a): the spans on the loop contain none of each other
            chain = chain[:chain.index(p)] if p in chain else []
        above.update(chain)
    return above & with_usage


def _override(span: Span, trace: _Trace, rolled_up: bool) -> dict[str, Any]:
    """The columns MLflow's own names give (the shared ones are read by span_values first)."""
    a = span.attributes
    out: dict[str, Any] = {}
    usage = _usage(a)
    if rolled_up:
        out.update(dict.fromkeys(USAGE_COLUMNS))
    elif usage is not None:
        for col, key in _TOKEN_KEYS:
            v = usage.get(key)
            # a NaN or an infinity is no count: written as text, the validation quarantines it ("not an integer";
            # as a float it became NULL without a word)
            out[col] = repr(v) if isinstance(v, float) and not math.isfinite(v) else v
    cost = a.get("mlflow.llm.cost")
    if isinstance(cost, dict) and cost.get("total_cost") is not None and not rolled_up:
        out["cost_usd"] = cost["total_cost"]
    return out


def _after(v: dict, span: Span, trace: _Trace, rolled_up: bool, root: bool) -> None:
    """Fill what the shared table left empty from MLflow's places, and the trace's context."""
    a = span.attributes
    inv, md, inputs = _map(a.get("invocation_params")), _map(a.get("metadata")), _map(a.get("mlflow.spanInputs"))
    if v.get("model") is None:
        v["model"] = first(inv.get("model"), inv.get("model_name"), inputs.get("model"), md.get("ls_model_name"))
    if v.get("request_model") is None:
        v["request_model"] = first(inputs.get("model"), v.get("model"))
    if v.get("provider") is None:
        v["provider"] = md.get("ls_provider")
    for col in ("model", "request_model", "provider"):
        if v.get(col) is not None and not isinstance(v[col], str):
            v[col] = str(v[col])
    v["user_id"] = first(v.get("user_id"), trace.get("mlflow.trace.user"))
    v["session_id"] = first(v.get("session_id"), trace.get("mlflow.trace.session"))
    v["feature"] = first(v.get("feature"), trace.get("workbench.feature", "feature"), trace.get("mlflow.traceName"))
    extra = v["attributes"]
    if trace.id is not None:
        extra["mlflow.trace_id"] = trace.id
    if trace.tags:
        extra["mlflow.trace.tags"] = trace.tags
    if rolled_up:  # the repeated usage: visible, not counted
        extra[USAGE] = a.get(USAGE)
    if root:
        if trace.metadata:
            extra["mlflow.trace.metadata"] = trace.metadata
        if trace.state is not None:
            extra["mlflow.trace.state"] = trace.state
        if trace.duration is not None:
            extra["mlflow.trace.execution_duration"] = trace.duration


def _trace_rows(rows: Rows, k: int, obj: dict) -> None:
    info, raw_spans = _parts(obj)
    trace = _Trace(info)
    if not raw_spans:
        rows.error(k, "MLflow trace without spans", f"MLflow trace {trace.id or '(no id)'} has no spans (a trace "
                   f"info alone, as the REST API's searches list them, has no calls: save the trace with "
                   f"mlflow.get_trace(...).to_json())", raw=obj, field="spans")
        return
    _span_rows(rows, [(k, sp) for sp in raw_spans], trace)


_MAPS = (USAGE, "mlflow.llm.cost")  # attributes MLflow writes as a JSON object: anything else is a malformed value


def _span_rows(rows: Rows, items: list[tuple[int, Any]], trace: _Trace) -> None:
    """The rows of spans (each with the number of its record), read together: a usage repeated by an outer span is
    found among all of them, whether they came in one trace or one span a record (an array or lines of
    ``Span.to_dict()``: counted twice when each record was read alone)."""
    spans: list[tuple[int, Span]] = []
    for k, sp in items:
        if not isinstance(sp, dict):
            rows.error(k, "not an MLflow span", f"not an MLflow span in trace {trace.id or '(no id)'}: "
                       f"{type(sp).__name__}", raw=sp, field="spans")
            continue
        try:
            span = mlflow_span(sp, trace)
        except MALFORMED as exc:
            malformed(rows, k, "MLflow span", exc, sp)
            continue
        bad = [key for key in _MAPS if key in span.attributes and not isinstance(span.attributes[key], dict)]
        if bad:  # (its tokens were dropped without a word, and the value with them)
            rows.error(k, f"malformed value: {bad[0]}", f"malformed {bad[0]} of span {span.name!r}: not a JSON "
                       f"object: {str(span.attributes[bad[0]])[:80]!r}", raw=sp, field=bad[0])
            continue
        spans.append((k, span))
    rolled = _rolled_up([span for _, span in spans])
    for k, span in spans:
        if not span.span_id:
            rows.error(k, "MLflow span without id", f"MLflow span {span.name!r} of trace {trace.id or '(no id)'} "
                       f"has no span_id", raw=span.raw, field="call_id")
            continue
        up = span.span_id in rolled
        before = len(rows)
        add_span(rows, k, span, span.raw, extra=_EXTRA, used=_USED, override=_override(span, trace, up))
        if len(rows) > before and rows.err[-1] is None:
            _after(rows.values[-1], span, trace, up, root=span.parent_id is None)


def mlflow_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of MLflow trace records (see the module docstring); a record that is none is quarantined.

    Examples
    --------
    An agent span repeating the usage of the model call inside it (one span per record, read together): only the
    call counts its tokens.

    >>> usage = '{"input_tokens": 10, "output_tokens": 4}'
    >>> outer = {"name": "agent", "span_id": "01", "trace_id": "tr-ab", "start_time_unix_nano": 1763632800000000000,
    ...          "end_time_unix_nano": 1763632802000000000,
    ...          "attributes": {"mlflow.spanType": '"AGENT"', "mlflow.chat.tokenUsage": usage}}
    >>> inner = {"name": "llm", "span_id": "02", "parent_span_id": "01", "trace_id": "tr-ab",
    ...          "start_time_unix_nano": 1763632800500000000, "end_time_unix_nano": 1763632801500000000,
    ...          "attributes": {"mlflow.spanType": '"CHAT_MODEL"', "mlflow.chat.tokenUsage": usage}}
    >>> r = mlflow_rows([(1, outer, None, None), (2, inner, None, None),
    ...                  (3, {"info": {"trace_id": "tr-x"}, "data": {"spans": []}}, None, None)])
    >>> [(k, v.get("operation"), v.get("input_tokens"), v.get("latency_ms")) for k, v in zip(r.k, r.values)]
    [(3, None, None, None), (1, 'invoke_agent', None, 2000.0), (2, 'chat', 10, 1000.0)]
    >>> r.kind[0]
    'MLflow trace without spans'
    """
    rows = Rows() if rows is None else rows
    singles: list[tuple[int, Any]] = []  # records that are one span each: read together at the end
    for k, obj, raw, err in records:
        if err is not None:
            rows.error(k, err, err, raw=raw)
        elif not looks_like(obj):
            what = type(obj).__name__ if not isinstance(obj, dict) else "object without info/data.spans or spans"
            rows.error(k, "not an MLflow trace", f"not an MLflow trace, search_traces row or span ({what})", raw=obj)
        elif is_span(obj) and not (is_trace(obj) or is_trace_row(obj) or is_span_list(obj)):
            singles.append((k, obj))
        else:
            try:
                _trace_rows(rows, k, obj)
            except MALFORMED as exc:
                malformed(rows, k, "MLflow trace", exc, obj)
    if singles:
        _span_rows(rows, singles, _Trace({}))
    return rows
