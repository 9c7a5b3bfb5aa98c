"""Vercel AI SDK spans: JSON arrays of OpenTelemetry-JS ``ReadableSpan`` objects.

Format ``vercel``. What ``JSON.stringify`` makes of the spans the AI SDK records with ``experimental_telemetry``
(collected by an in-memory exporter, or printed by the console exporter): flat attribute maps with native JSON
numbers, times as HrTime pairs ``[seconds, nanoseconds]`` (or the console exporter's ``timestamp``/``duration`` in
microseconds), ids in ``spanContext``/``_spanContext`` (or ``traceId``/``id``), the parent in ``parentSpanId``,
``parentSpanContext.spanId`` or ``parentId``.

Counting each LLM call once: the outer ``ai.generateText`` / ``ai.streamText`` / ``ai.generateObject`` /
``ai.streamObject`` / ``ai.embed`` / ``ai.embedMany`` span repeats the usage of its provider calls. The provider call
(``*.doGenerate``, ``*.doStream``, ``*.doEmbed``) is the LLM call (operation ``chat``, or ``embeddings``) and carries
the tokens; the outer span is kept as an operation ``chain`` without tokens or cost (its totals stay in
``attributes``), so sums over ``calls`` count every token once. ``ai.toolCall`` spans are ``execute_tool`` operations
named by ``ai.toolCall.name``.

Columns, after the shared OpenTelemetry names of :mod:`workbench.io.spans` (``gen_ai.*`` wins over ``ai.*``):

==================  ===========================================================================================
column              AI SDK attribute (first present)
==================  ===========================================================================================
input_tokens        ``ai.usage.inputTokens`` (v5), ``ai.usage.promptTokens`` (v3/v4), ``ai.usage.tokens`` (embed)
output_tokens       ``ai.usage.outputTokens``, ``ai.usage.completionTokens``
cache_read_tokens   ``ai.usage.cachedInputTokens``, ``ai.usage.inputTokenDetails.cacheReadTokens``
cache_write_tokens  ``ai.usage.inputTokenDetails.cacheWriteTokens``
reasoning_tokens    ``ai.usage.reasoningTokens``, ``ai.usage.outputTokenDetails.reasoningTokens``
model               ``ai.response.model``, ``ai.model.id``; request_model: ``ai.model.id``
provider            ``ai.model.provider`` (also ``gen_ai.system``), cut at the first dot: ``openai.chat`` -> openai
ttft_ms             ``ai.response.msToFirstChunk``, ``ai.stream.msToFirstChunk`` (ms), else the
                    ``ai.stream.firstChunk`` event
finish_reason       ``ai.response.finishReason``, ``ai.finishReason``
feature             ``workbench.feature``, ``ai.telemetry.metadata.feature``, ``ai.telemetry.functionId``, then the
                    resource ``service.name``
user_id, session_id ``ai.telemetry.metadata.userId`` / ``user_id``; ``ai.telemetry.metadata.sessionId`` /
                    ``session_id`` / ``conversationId``
prompt_version      ``ai.telemetry.metadata.promptVersion`` / ``prompt_version``
==================  ===========================================================================================

Examples
--------
>>> spans = [{"name": "ai.generateText", "spanContext": {"traceId": "t", "spanId": "a"},
...           "startTime": [1763632800, 0], "endTime": [1763632801, 0],
...           "attributes": {"ai.operationId": "ai.generateText", "ai.usage.promptTokens": 10}},
...          {"name": "ai.generateText.doGenerate", "spanContext": {"traceId": "t", "spanId": "b"},
...           "parentSpanId": "a", "startTime": [1763632800, 100000000], "endTime": [1763632801, 0],
...           "attributes": {"ai.operationId": "ai.generateText.doGenerate", "ai.usage.promptTokens": 10,
...                          "ai.model.provider": "openai.chat", "ai.model.id": "gpt-4o"}}]
>>> r = vercel_rows((i + 1, s, None, None) for i, s in enumerate(spans))
>>> [(v["operation"], v["input_tokens"], v["provider"]) for v in r.values]
[('chain', None, None), ('chat', '10', 'openai')]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.io.openinference import add_span
from workbench.io.records import MALFORMED, Rows, first, malformed
from workbench.io.spans import FINISH_REASONS, USAGE_COLUMNS, VERCEL_OUTER, Span, hex_id, status_name

FORMAT = "vercel"
LEAF_SUFFIXES = (".doGenerate", ".doStream", ".doEmbed")
_MD = "ai.telemetry.metadata."
# (its time to first chunk, finish reason and tool name are workbench.io.spans.SPAN_USED names; its attribute names
# are the shared table's: the format has none of its own)
_USED = ("ai.operationId", "operation.name")


def looks_like(obj: Any) -> bool:
    """A ReadableSpan-shaped record: a flat attribute map and HrTime or console-exporter times.

    Examples
    --------
    >>> looks_like({"name": "ai.generateText", "attributes": {}, "startTime": [1763632800, 0]})
    True
    >>> looks_like({"name": "chat", "attributes": [], "startTime": [1763632800, 0]})  # an OTLP attribute list
    False
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("attributes"), dict):
        return False
    return any(k in obj for k in ("spanContext", "_spanContext", "startTime", "timestamp")) and "name" in obj


def readable_span(obj: dict) -> Span:
    """A :class:`Span` from a serialised ReadableSpan (or the console exporter's object).

    Examples
    --------
    >>> s = readable_span({"name": "ai.generateText.doStream", "spanContext": {"traceId": "0AF7", "spanId": "B7AD"},
    ...                    "parentSpanContext": {"spanId": "A1"}, "startTime": [1763632800, 0],
    ...                    "endTime": [1763632801, 500000000], "attributes": {"ai.model.id": "gpt-4o"},
    ...                    "status": {"code": 2, "message": "boom"},
    ...                    "resource": {"attributes": {"service.name": "web"}}})
    >>> s.trace_id, s.span_id, s.parent_id, s.end, s.status, s.resource
    ('0af7', 'b7ad', 'a1', [1763632801, 500000000], 'error', {'service.name': 'web'})
    >>> s = readable_span({"name": "x", "traceId": "ab", "id": "cd", "timestamp": 1763632800000000,
    ...                    "duration": 250000, "attributes": {}})  # the console exporter: microseconds
    >>> s.span_id, s.start, s.end
    ('cd', [1763632800, 0], [1763632800, 250000000])
    """
    ctx = obj.get("spanContext") or obj.get("_spanContext") or {}
    pctx = obj.get("parentSpanContext") or {}
    start, end = obj.get("startTime"), obj.get("endTime")
    if start is None and obj.get("timestamp") is not None:  # console exporter: microseconds
        start = obj["timestamp"]
        dur = obj.get("duration")
        if isinstance(dur, (int, float)):
            end = start + dur
        elif isinstance(dur, list) and len(dur) == 2:
            end = start + dur[0] * 10**6 + dur[1] / 1000
        start, end = _us(start), _us(end)
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    res = obj.get("resource") or {}
    rattrs = res.get("attributes") or res.get("_attributes") or {} if isinstance(res, dict) else {}
    scope = obj.get("instrumentationScope") or obj.get("instrumentationLibrary") or {}
    events = []
    for e in obj.get("events") or []:
        if isinstance(e, dict):
            events.append({"name": e.get("name"), "time": e.get("time"), "attributes": e.get("attributes") or {}})
    return Span(
        trace_id=hex_id(first(ctx.get("traceId"), obj.get("traceId"))),
        span_id=hex_id(first(ctx.get("spanId"), obj.get("spanId"), obj.get("id"))),
        parent_id=hex_id(first(obj.get("parentSpanId"), pctx.get("spanId") if isinstance(pctx, dict) else None,
                               obj.get("parentId"))),
        name=obj.get("name"), start=start, end=end, attributes=dict(obj["attributes"]),
        resource=dict(rattrs) if isinstance(rattrs, dict) else {}, status=status_name(status.get("code")),
        status_message=status.get("message"), events=events,
        scope=scope.get("name") if isinstance(scope, dict) else None, raw=obj)


def _us(v: Any) -> Any:
    """Console-exporter microseconds as an integer text the timestamp reader takes as microseconds."""
    if isinstance(v, (int, float)):
        return [int(v // 10**6), int(round((v % 10**6) * 1000))]
    return v


def vercel_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of AI SDK spans (see the module docstring).

    Examples
    --------
    >>> tool = {"name": "ai.toolCall", "spanContext": {"traceId": "ab", "spanId": "01"}, "startTime": [1763632800, 0],
    ...         "endTime": [1763632800, 5000000], "attributes": {"ai.operationId": "ai.toolCall",
    ...                                                          "ai.toolCall.name": "search"}}
    >>> r = vercel_rows([(1, tool, None, None), (2, {"name": "x"}, None, None)])
    >>> [(v.get("operation"), v.get("name"), v.get("latency_ms")) for v in r.values], r.kind
    ([('execute_tool', 'search', 5.0), (None, None, None)], [None, 'not a span'])
    """
    rows = Rows() if rows is None else rows
    for k, obj, raw, err in records:
        if err is not None:
            rows.error(k, err, err, raw=raw)
            continue
        if not looks_like(obj):
            rows.error(k, "not a span", "not a ReadableSpan (no attributes map and startTime/spanContext)",
                       raw=obj)
            continue
        try:
            span = readable_span(obj)
        except MALFORMED as exc:
            malformed(rows, k, "Vercel AI SDK span", exc, obj)
            continue
        a = span.attributes
        op = str(first(a.get("ai.operationId"), span.name) or "")
        override: dict[str, Any] = {}
        if op in VERCEL_OUTER:
            override = dict.fromkeys(USAGE_COLUMNS)
            override["operation"] = first(a.get("gen_ai.operation.name"), "chain")
        elif op.endswith(LEAF_SUFFIXES):
            if not a.get("gen_ai.operation.name"):
                override["operation"] = "embeddings" if op.endswith(".doEmbed") else "chat"
        elif op == "ai.toolCall":
            override["operation"] = "execute_tool"
            override["name"] = first(a.get("ai.toolCall.name"), span.name)
        # the function id names the feature better than the service: before resource service.name
        override["feature"] = first(a.get("workbench.feature"), a.get("app.feature"), a.get(_MD + "feature"),
                                    a.get(_MD + "workbench.feature"), a.get("ai.telemetry.functionId"),
                                    span.resource.get("workbench.feature"), span.resource.get("service.name"))
        ttft = first(a.get("ai.response.msToFirstChunk"), a.get("ai.stream.msToFirstChunk"))
        if ttft is not None:
            override["ttft_ms"] = ttft
        fr = first(*(a.get(n) for n in FINISH_REASONS))
        if isinstance(fr, list):
            fr = fr[0] if fr else None
        if fr is not None:
            override["finish_reason"] = fr
        before = len(rows)
        add_span(rows, k, span, None, used=_USED, override=override)
        if len(rows) > before and rows.err[-1] is None:
            v = rows.values[-1]
            if v.get("provider"):
                v["provider"] = str(v["provider"]).split(".")[0]
            if op in VERCEL_OUTER:  # the repeated usage stays visible, in attributes only
                v["attributes"].update({n: val for n, val in a.items() if n.startswith("ai.usage.")})
            if fr == "content-filter" and v.get("status") == "ok":
                v["status"] = "blocked"
    return rows
