"""OpenTelemetry spans in Python: the attribute table every span format shares, and one span -> ``calls`` row mapping.

:data:`SPAN_ATTRIBUTES` is the one declaration of which attribute fills which ``calls`` column, first present wins
(span attributes, then resource attributes for names prefixed ``r:``). The SQL path of OTLP JSON lines in
:mod:`workbench.io.ingest` and the Python path here (OTLP documents and arrays, single protojson spans, OpenInference,
Vercel AI SDK and Phoenix spans) read the same table, so a span gives the same row whichever file it arrived in.

The rule for old and new names side by side: the newer OpenTelemetry GenAI name wins (``gen_ai.provider.name`` over
``gen_ai.system``, ``gen_ai.usage.input_tokens`` over ``gen_ai.usage.prompt_tokens``), then OpenInference's ``llm.*``;
values are never added across names, so a span carrying both counts its tokens once. Tokens follow the OpenTelemetry
GenAI rule: cached tokens are inside ``input_tokens``, reasoning tokens inside ``output_tokens`` (a writer that counts
input without its cached tokens, seen where they exceed it, is read into the rule at ingest: ``ingest._load_sql``).

Protojson leniency (:func:`otlp_span`): ``camelCase`` or ``snake_case`` member names, ``intValue`` as a string or a
number, ``kind`` as a name (``SPAN_KIND_CLIENT``) or a number, ids in hex or base64, ``status.code`` as a name or a
number, times as nanosecond strings or numbers (0 is "not set", as protobuf leaves a zero out; text that is no
number, an ISO time say, is an unparseable timestamp, as the JSON-lines reader reads it). A span without a
start time cannot be dated: it is quarantined (missing required field ts), in every span format, as the OTLP
JSON-lines and protobuf readers quarantine it; a span without an end time has no latency.

Examples
--------
>>> s = otlp_span({"traceId": "AB", "spanId": "01", "name": "chat", "startTimeUnixNano": "1000000000",
...                "endTimeUnixNano": "1500000000", "attributes": [
...                    {"key": "llm.token_count.prompt", "value": {"intValue": "12"}},
...                    {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}}]})
>>> row = span_values(s)
>>> row["call_id"], row["operation"], row["input_tokens"], row["latency_ms"]
('01', 'chat', '12', 500.0)
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from workbench.io.records import epoch_us, first, is_timeout, number

#: calls column -> attribute names, first present wins; ``r:`` = resource attribute, ``m:`` = a key of the span's
#: :data:`METADATA`.
SPAN_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "operation": ("gen_ai.operation.name",),
    # (the Vercel AI SDK's ai.* names come after the shared ones, in every column: its spans give the same row from a
    # ReadableSpan file and from OTLP)
    # (llm.vendor, llm.request.model, llm.response.model, llm.usage.*: OpenLLMetry before its gen_ai.* names)
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "llm.vendor",
                 "ai.model.provider"),
    "request_model": ("gen_ai.request.model", "llm.model_name", "llm.request.model", "langfuse.observation.model.name",
                      "ai.model.id"),
    "model": ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "llm.response.model",
              "llm.request.model", "langfuse.observation.model.name", "ai.response.model", "ai.model.id"),
    # (the Vercel AI SDK's telemetry metadata and function id name the feature better than the service does)
    # (Langfuse's SDK names the trace, which its own export reads as the feature, and the environment; it writes
    # the observation's and the trace's metadata one key per attribute, read before the trace's name as its export
    # reads them)
    "feature": ("workbench.feature", "app.feature", "ai.telemetry.metadata.feature",
                "ai.telemetry.metadata.workbench.feature", "ai.telemetry.functionId", "r:workbench.feature",
                "r:app.feature", "langfuse.observation.metadata.workbench.feature",
                "langfuse.observation.metadata.feature", "langfuse.trace.metadata.workbench.feature",
                "langfuse.trace.metadata.feature", "langfuse.trace.name", "metadata.user_api_key_team_alias",
                "langsmith.metadata.workbench.feature", "langsmith.metadata.feature", "m:workbench.feature",
                "m:feature", "r:service.name"),
    "environment": ("deployment.environment.name", "r:deployment.environment.name", "r:deployment.environment",
                    "deployment.environment", "langfuse.environment"),
    "prompt_version": ("workbench.prompt_version", "gen_ai.prompt.version", "llm.prompt_template.version",
                       "r:workbench.prompt_version", "ai.telemetry.metadata.promptVersion",
                       "ai.telemetry.metadata.prompt_version", "langfuse.observation.prompt.version",
                       "langsmith.metadata.workbench.prompt_version", "langsmith.metadata.prompt_version",
                       "m:workbench.prompt_version", "m:prompt_version"),
    # (OpenLLMetry's SDK writes a workflow's association properties on every span of it; LangSmith's exporter each key
    # of a run's metadata as langsmith.metadata.<key>, read by the keys its own export is read by)
    "user_id": ("user.id", "enduser.id", "r:user.id", "r:enduser.id", "ai.telemetry.metadata.userId",
                "ai.telemetry.metadata.user_id", "ai.telemetry.metadata.user.id",
                "traceloop.association.properties.user_id", "traceloop.association.properties.userId",
                "langfuse.user.id", "metadata.user_api_key_end_user_id", "metadata.user_api_key_user_id",
                "langsmith.metadata.user_id", "m:user_id"),
    "session_id": ("gen_ai.conversation.id", "session.id", "ai.telemetry.metadata.sessionId",
                   "ai.telemetry.metadata.session_id", "ai.telemetry.metadata.conversationId",
                   "traceloop.association.properties.session_id", "traceloop.association.properties.sessionId",
                   "langfuse.session.id", "langsmith.metadata.session_id", "langsmith.metadata.thread_id",
                   "langsmith.metadata.conversation_id", "m:session_id"),
    "variant": ("workbench.variant", "r:workbench.variant", "ai.telemetry.metadata.variant",
                "langfuse.observation.metadata.workbench.variant", "langfuse.observation.metadata.variant",
                "langfuse.trace.metadata.variant", "langsmith.metadata.workbench.variant",
                "langsmith.metadata.variant", "m:workbench.variant", "m:variant"),
    "error_type": ("error.type",),
    "attempt": ("workbench.attempt",),
    "fallback": ("workbench.fallback",),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
                     "llm.usage.prompt_tokens", "ai.usage.inputTokens", "ai.usage.promptTokens", "ai.usage.tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
                      "llm.usage.completion_tokens", "ai.usage.outputTokens", "ai.usage.completionTokens"),
    # OpenLLMetry (Traceloop) and Laminar write the cache and reasoning counts under their own names
    # (gen_ai.usage.cache_read_input_tokens...), with input_tokens holding the cached tokens as the OpenTelemetry rule
    # says (for Anthropic it adds the uncached input, cache reads and cache writes)
    # (Pydantic AI writes them as gen_ai.usage.details.*, and its cost as operation.cost, in USD)
    "cache_read_tokens": ("gen_ai.usage.cache_read.input_tokens", "llm.token_count.prompt_details.cache_read",
                          "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.details.cache_read_tokens",
                          "ai.usage.cachedInputTokens", "ai.usage.inputTokenDetails.cacheReadTokens"),
    "cache_write_tokens": ("gen_ai.usage.cache_creation.input_tokens", "llm.token_count.prompt_details.cache_write",
                           "gen_ai.usage.cache_creation_input_tokens", "gen_ai.usage.details.cache_write_tokens",
                           "ai.usage.inputTokenDetails.cacheWriteTokens"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning",
                         "gen_ai.usage.reasoning_tokens", "gen_ai.usage.details.reasoning_tokens",
                         "ai.usage.reasoningTokens", "ai.usage.outputTokenDetails.reasoningTokens"),
    # (OpenLIT writes its estimate as gen_ai.usage.cost, LiteLLM as gen_ai.cost.total_cost, USD: see UNPRICED_ZERO)
    "cost_usd": ("workbench.cost_usd", "llm.cost.total", "operation.cost", "gen_ai.usage.cost",
                 "gen_ai.cost.total_cost"),
}
#: OpenInference's ``metadata`` context attribute: the application's key-value metadata as JSON text
#: (``using_metadata``, ``setMetadata``), set on every span of a request (MLflow writes a LangChain run's metadata
#: under the same name). Its keys that name a ``calls`` column, the same keys LangSmith's metadata is read by
#: (:mod:`workbench.io.langsmith`: ``feature``, ``user_id``, ``session_id``, ``prompt_version``, ``variant``, or with
#: ``workbench.``), fill the column when no dedicated attribute does (the ``m:`` names of :data:`SPAN_ATTRIBUTES`: after
#: the span's own names, before the service's name as the feature); a text that is no JSON object gives none. It stays
#: in ``attributes``. (``tag.tags``, its list of tags, has no column: kept in ``attributes``.)
METADATA = "metadata"
#: Cost attributes whose 0 is no price: OpenLIT writes ``gen_ai.usage.cost`` 0 for a model missing from its price list
#: (``openlit.__helpers.get_chat_model_cost``), LiteLLM ``gen_ai.cost.total_cost`` 0 for a call it could not price
#: (as in its logs: :mod:`workbench.io.litellm`). Such a 0 is not read (the call is priced from its tokens, or counted
#: unpriced) and stays in ``attributes``.
UNPRICED_ZERO = ("gen_ai.usage.cost", "gen_ai.cost.total_cost")
#: A cost written in two parts and no total, USD: mozilla-ai's any-agent (``AgentSpan.add_cost_info``, from LiteLLM's
#: ``cost_per_token``) and Laminar's writers. When no name of ``cost_usd`` gives the cost, it is their sum if both are
#: numbers; a sum of 0 is no price (any-agent writes 0 and 0 for a model LiteLLM cannot price, as in
#: :data:`UNPRICED_ZERO`). Both stay in ``attributes``. The OTLP JSON-lines reader's SQL reads them alike.
COST_PARTS = ("gen_ai.usage.input_cost", "gen_ai.usage.output_cost")
#: The Vercel AI SDK's spans that repeat the usage of the provider calls inside them: their tokens (and cost) are not
#: counted again (kept in ``attributes`` only), so sums over ``calls`` count every token once.
VERCEL_OUTER = ("ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject", "ai.embed", "ai.embedMany")
#: Langfuse's OpenTelemetry SDKs (Python v3, JS v4: ``LangfuseOtelSpanAttributes``) write an observation's usage and
#: cost as JSON text of its ``usageDetails`` and ``costDetails`` (``{"input": 80, "output": 30, "total": 110}``), with
#: no gen_ai.usage.* beside them. Langfuse reads them before any other name, and so does every span reader: first in
#: each usage column, by the rule of Langfuse's export (:func:`workbench.io.langfuse.span_columns`); text that is no
#: JSON object quarantines the span, naming the attribute (:func:`workbench.io.openinference.add_span`; the OTLP
#: JSON-lines reader's SQL calls the same function). Both stay in ``attributes`` (their other keys too).
LANGFUSE_USAGE, LANGFUSE_COST = "langfuse.observation.usage_details", "langfuse.observation.cost_details"
#: The time its first token came (``completionStartTime``: ISO text, JSON-quoted by the Python SDK): the time to
#: first token after every other source of it (:data:`TTFT_SECONDS`, the Vercel AI SDK's, a first-token event), as
#: the same function reads it; a text that is no time quarantines the span. Kept in ``attributes``.
LANGFUSE_COMPLETION_START = "langfuse.observation.completion_start_time"
#: Its level (``DEBUG``, ``DEFAULT``, ``WARNING``, ``ERROR``) and status message: ``ERROR`` is a failed call whatever
#: the span's status (as Langfuse reads it, and as its export's ``level`` is read), the message its error type when
#: neither ``error.type`` nor an exception event names one. Both stay in ``attributes``.
LANGFUSE_LEVEL, LANGFUSE_STATUS_MESSAGE = "langfuse.observation.level", "langfuse.observation.status_message"
#: LangSmith's OpenTelemetry exporters write a run's ``usage_metadata`` token details as text: LangChain's
#: ``input_token_details`` (``cache_read``, ``cache_creation``, ``audio``) and ``output_token_details`` (``reasoning``,
#: ``audio``), as JSON from its JS SDK (``JSON.stringify``), as the dict's Python text from its Python SDK (``str()``:
#: ``{'cache_read': 64}``). Read by :func:`token_detail` after every other name of the column (a text of neither
#: shape gives nothing; the OTLP JSON-lines reader's SQL reads them alike); both stay in ``attributes``.
TOKEN_DETAILS = {"cache_read_tokens": ("gen_ai.usage.input_token_details", "cache_read"),
                 "cache_write_tokens": ("gen_ai.usage.input_token_details", "cache_creation"),
                 "reasoning_tokens": ("gen_ai.usage.output_token_details", "reasoning")}
#: Time to first token in seconds: the GenAI conventions' span attribute (documented in seconds), then Sentry's
#: (``gen_ai.response.time_to_first_token``, seconds in its span data conventions), then OpenLIT's. The
#: conventions name a histogram metric ``gen_ai.server.time_to_first_token`` of unit ``s``; OpenLIT sets the same name
#: on its spans, in seconds too (its Python and TypeScript SDKs divide their millisecond clocks by 1000). LangWatch's
#: span normaliser writes milliseconds under that name: writers differ, and the documented unit decides (seconds).
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.response.time_to_first_token",
                "gen_ai.server.time_to_first_token")
#: The Vercel AI SDK's time to first chunk (milliseconds) and finish reason, after the GenAI ones.
VERCEL_TTFT_MS = ("ai.response.msToFirstChunk", "ai.stream.msToFirstChunk")
VERCEL_FINISH = ("ai.response.finishReason", "ai.finishReason")
#: A call's finish reasons, first present wins: the GenAI conventions' list, OpenLLMetry's first choice's reason
#: (``gen_ai.completion.0.finish_reason``), the Vercel AI SDK's.
FINISH_REASONS = ("gen_ai.response.finish_reasons", "gen_ai.completion.0.finish_reason", *VERCEL_FINISH)
#: The columns of a call's usage (not counted on a :data:`VERCEL_OUTER` span).
USAGE_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
                 "cost_usd")
#: The attribute names the usage columns read (kept in ``attributes`` where a span's usage is not counted).
_USAGE_NAMES = frozenset(n for c in USAGE_COLUMNS for n in SPAN_ATTRIBUTES[c] if not n.startswith(("r:", "m:")))
#: Read but not a column of their own: kept out of ``attributes`` because a column holds them.
SPAN_USED = (*FINISH_REASONS, *TTFT_SECONDS, "gen_ai.tool.name", "tool.name",
             "openinference.span.kind", "ai.toolCall.name", *VERCEL_TTFT_MS)
#: OpenInference span kinds -> gen_ai operation names (others lower-cased).
OPENINFERENCE_KINDS = {"LLM": "chat", "EMBEDDING": "embeddings", "TOOL": "execute_tool", "AGENT": "invoke_agent"}
#: Values of ``gen_ai.operation.name`` that are a call type, not an operation of the GenAI conventions -> the operation:
#: LiteLLM writes its call type there (``acompletion``, ``aembedding``...), the ``call_type`` of its logs
#: (:mod:`workbench.io.litellm` reads those by the same table); mozilla-ai's any-agent names its model calls
#: ``call_llm``.
OPERATION_ALIASES = {"completion": "chat", "acompletion": "chat", "embedding": "embeddings", "aembedding": "embeddings",
                     "atext_completion": "text_completion", "call_llm": "chat"}
#: The attributes in which a framework names a span's kind, in the order they are looked at, each with the kinds that
#: are operations of the OpenTelemetry GenAI conventions (keys upper-case; a value is read upper-cased, without the
#: quotes MLflow writes around it; any other kind becomes the operation lower-cased): OpenInference, MLflow, Langfuse's
#: OpenTelemetry SDK, LangSmith, Laminar, OpenLLMetry (Traceloop).
SPAN_KINDS: tuple[tuple[str, dict[str, str]], ...] = (
    ("openinference.span.kind", OPENINFERENCE_KINDS),
    ("mlflow.spanType", {"LLM": "chat", "CHAT_MODEL": "chat", "EMBEDDING": "embeddings", "TOOL": "execute_tool",
                         "AGENT": "invoke_agent"}),
    ("langfuse.observation.type", {"GENERATION": "chat", "EMBEDDING": "embeddings", "TOOL": "execute_tool",
                                   "AGENT": "invoke_agent"}),
    ("langsmith.span.kind", {"LLM": "chat", "EMBEDDING": "embeddings", "TOOL": "execute_tool"}),
    ("lmnr.span.type", {"LLM": "chat", "TOOL": "execute_tool"}),
    ("llm.request.type", {"CHAT": "chat", "COMPLETION": "text_completion", "EMBEDDING": "embeddings"}),
    ("traceloop.span.kind", {"AGENT": "invoke_agent", "TOOL": "execute_tool"}),
)
#: Span kinds that decide the operation even where ``gen_ai.operation.name`` is set (by :func:`default_operation`'s
#: table): LangSmith's exporters derive that name from the run type lossily (``WELL_KNOWN_OPERATION_NAMES`` in
#: ``langsmith/_internal/otel/_otel_exporter.py``: a prompt run "chat", a retriever run "embeddings"), and keep the
#: run type in ``langsmith.span.kind``, as LangSmith's own export gives it (:mod:`workbench.io.langsmith`).
KIND_DECIDES = ("langsmith.span.kind",)
#: Attributes that name a span's operation when ``gen_ai.operation.name`` does not (:func:`default_operation`): read,
#: and kept in ``attributes``.
OPERATION_HINTS = tuple(name for name, _ in SPAN_KINDS if name != "openinference.span.kind") + (
    "ai.operationId", "gen_ai.tool.name", "tool.name", "gen_ai.agent.name")
#: Attribute name prefixes of the GenAI conventions (OpenTelemetry GenAI, OpenInference, the Vercel AI SDK and the
#: frameworks of :data:`SPAN_KINDS`): a span carrying none of them is not a model call.
GENAI_PREFIXES = ("gen_ai.", "llm.", "openinference.", "ai.", "traceloop.", "mlflow.", "langfuse.", "langsmith.",
                  "lmnr.")
#: The operations of the OpenTelemetry GenAI conventions, which also name their spans ("chat gpt-4o": operation, then
#: model): a span named so is that operation even without attributes.
GENAI_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings", "execute_tool", "invoke_agent",
                    "create_agent")
#: The operation of a span of no GenAI convention (an HTTP, database or queue span of the same trace).
OTHER_OPERATION = "other"
_STATUS_NAMES = {"0": "unset", "1": "ok", "2": "error", "STATUS_CODE_UNSET": "unset", "STATUS_CODE_OK": "ok",
                 "STATUS_CODE_ERROR": "error", "UNSET": "unset", "OK": "ok", "ERROR": "error"}
#: A failed span's status code as any reader compares it (trimmed, upper-cased): the OTLP JSON-lines reader's SQL
#: reads the same names as :func:`status_name`.
ERROR_STATUS_CODES = tuple(k for k, v in _STATUS_NAMES.items() if v == "error")


@dataclass
class Span:
    """A span, whatever file it came from: ids in lower-case hex, times as given (any shape :func:`epoch_us` reads),
    flat attribute maps, status ``ok``/``error``/``unset``.

    Examples
    --------
    >>> s = Span("0af7", "b7ad", None, "chat gpt-4o", 1763632800, 1763632801.5, {"gen_ai.request.model": "gpt-4o"},
    ...          {"service.name": "support-bot"})
    >>> s.status, s.events
    ('unset', [])
    >>> v = span_values(s)
    >>> v["operation"], v["model"], v["feature"], v["latency_ms"]
    ('chat', 'gpt-4o', 'support-bot', 1500.0)
    """

    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    name: str | None
    start: Any
    end: Any
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)
    status: str = "unset"
    status_message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # {"name", "time", "attributes"}
    scope: str | None = None
    kind: str | None = None
    raw: Any = None  # the record as read, kept in quarantine when the row is rejected
    invalid: tuple[str, Any] | None = None  # (source field, value): a number that is none, so the row is quarantined
    #: times are OTLP ``*UnixNano`` numbers: text that is no number (an ISO time) is unparseable, as the OTLP
    #: JSON-lines reader reads it
    epoch_ns: bool = False


def _get(d: dict, *names: str) -> Any:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return None


def any_value(v: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (protojson): scalars, arrays as lists, kvlists as dicts.

    >>> any_value({"intValue": "42"}), any_value({"arrayValue": {"values": [{"stringValue": "stop"}]}})
    (42, ['stop'])
    """
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "string_value"):
        if key in v:
            return v[key]
    for key in ("intValue", "int_value"):
        if key in v:
            # an integer (64-bit) as its number, also as text (records.number: "12", "1e3"); anything else as its
            # text, for the engine to refuse ("12.5", "1_000"), as the OTLP JSON-lines reader reads them
            x = v[key]
            n = x if type(x) in (int, float) else number(x)
            if isinstance(n, float) and n.is_integer():
                n = int(n)
            if isinstance(n, int) and -2**63 <= n < 2**63:
                return n
            return x if isinstance(x, str) or x is None else orjson.dumps(x).decode()
    for key in ("doubleValue", "double_value"):
        if key in v:
            try:
                return float(v[key])
            except (TypeError, ValueError):
                return v[key]
    for key in ("boolValue", "bool_value"):
        if key in v:
            return v[key]
    arr = _get(v, "arrayValue", "array_value")
    if arr is not None:
        return [any_value(e) for e in (arr.get("values") or [])] if isinstance(arr, dict) else arr
    kv = _get(v, "kvlistValue", "kvlist_value")
    if kv is not None:
        return attribute_map(kv.get("values") if isinstance(kv, dict) else kv)
    bts = _get(v, "bytesValue", "bytes_value")
    if bts is not None:
        return bts
    return None


def attribute_map(attrs: Any) -> dict[str, Any]:
    """A flat ``{key: value}`` of OTLP attributes: a list of ``{"key", "value": AnyValue}``, or already a map.

    Examples
    --------
    >>> attribute_map([{"key": "gen_ai.system", "value": {"stringValue": "openai"}},
    ...                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}])
    {'gen_ai.system': 'openai', 'gen_ai.usage.input_tokens': 12}
    >>> attribute_map({"already": "flat"}), attribute_map(None)
    ({'already': 'flat'}, {})
    """
    if isinstance(attrs, dict):
        return dict(attrs)
    out: dict[str, Any] = {}
    for a in attrs or []:
        if isinstance(a, dict) and a.get("key") is not None:  # (one without a key is no attribute)
            out[str(a["key"])] = any_value(a.get("value"))
    return out


_HEX = re.compile(r"[0-9a-fA-F]+")


def hex_id(v: Any) -> str | None:
    """An OTLP id as lower-case hex: hex as given (or after ``0x``, as the OpenTelemetry Python SDK prints it), or base64
    (generic protobuf JSON) decoded; empty or all zeros (an invalid id in OTLP) -> None; anything else as given.

    Base64 is decoded only in its canonical form (the id's 8 or 16 bytes encode back to it), so two different texts
    never become one id. The OTLP JSON reader applies the same rule in SQL (``workbench.io.ingest._otel_id``).

    >>> hex_id("5B8EFFF798038103D269B633813FC60C"), hex_id("AQIDBAUGBwg="), hex_id("0000000000000000")
    ('5b8efff798038103d269b633813fc60c', '0102030405060708', None)
    """
    if v is None:
        return None
    s = str(v).strip()
    if not s or set(s) == {"0"}:
        return None
    if _HEX.fullmatch(s):
        return s.lower()
    if s[:2] in ("0x", "0X") and _HEX.fullmatch(s, 2):
        # as the OpenTelemetry Python SDK writes ids (ConsoleSpanExporter, ReadableSpan.to_json)
        return s[2:].lower() if set(s[2:]) != {"0"} else None
    if len(s) in (12, 24) and s.endswith("="):
        try:
            b = base64.b64decode(s, validate=True)
            if len(b) in (8, 16) and base64.b64encode(b).decode() == s:
                return b.hex() if any(b) else None
        except (binascii.Error, ValueError):
            pass
    return s


def status_name(code: Any) -> str:
    """``ok``, ``error`` or ``unset`` from a status code given as a number or a name.

    Examples
    --------
    >>> status_name(2), status_name("STATUS_CODE_OK"), status_name("Error"), status_name(None)
    ('error', 'ok', 'error', 'unset')
    """
    if code is None:
        return "unset"
    return _STATUS_NAMES.get(str(code).strip().upper(), _STATUS_NAMES.get(str(code).strip(), "unset"))


def otlp_span(sp: dict, resource: dict | None = None, scope: str | None = None) -> Span:
    """A :class:`Span` from an OTLP ``Span`` in protojson (camelCase or snake_case).

    Examples
    --------
    >>> s = otlp_span({"trace_id": "0AF7", "span_id": "B7AD", "kind": "SPAN_KIND_CLIENT",
    ...                "start_time_unix_nano": "1763632800000000000", "end_time_unix_nano": 1763632801500000000,
    ...                "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}})
    >>> s.trace_id, s.span_id, s.kind, s.start, s.end, s.status, s.status_message
    ('0af7', 'b7ad', 'SPAN_KIND_CLIENT', [1763632800, 0], [1763632801, 500000000], 'error', 'boom')
    """
    status = sp.get("status") if isinstance(sp.get("status"), dict) else {}
    events = []
    for e in sp.get("events") or []:
        if isinstance(e, dict):
            t = _get(e, "timeUnixNano", "time_unix_nano")
            events.append({"name": e.get("name"), "time": _nanos(t), "attributes": attribute_map(e.get("attributes")),
                           # kept in attributes as the SQL reader keeps it
                           "raw": {"name": e.get("name"), "timeUnixNano": None if t is None else str(t),
                                   "attributes": e.get("attributes")}})
    return Span(
        trace_id=hex_id(_get(sp, "traceId", "trace_id")),
        span_id=hex_id(_get(sp, "spanId", "span_id")),
        parent_id=hex_id(_get(sp, "parentSpanId", "parent_span_id")),
        name=sp.get("name"),
        start=_nanos(_get(sp, "startTimeUnixNano", "start_time_unix_nano")),
        end=_nanos(_get(sp, "endTimeUnixNano", "end_time_unix_nano")),
        attributes=attribute_map(sp.get("attributes")),
        resource=resource or {},
        status=status_name(status.get("code")),
        status_message=status.get("message"),
        events=events,
        scope=scope,
        kind=str(sp.get("kind")) if sp.get("kind") is not None else None,
        raw=sp,
        epoch_ns=True,
    )


def _nanos(v: Any) -> Any:
    """An OTLP ``*UnixNano`` time as an exact ``[seconds, nanoseconds]`` pair (its unit is known, whatever its size);
    0 is "not set" (proto3 leaves a zero out); anything else is passed on for the reader to reject."""
    n = v if type(v) in (int, float) else number(v)
    if n == 0 or v is None or isinstance(v, str) and not v.strip():  # (0 or blank: not set)
        return None
    if type(n) is int:
        return [n // 10**9, n % 10**9]
    return v


def otlp_export_spans(doc: dict) -> list[Span]:
    """Every span of an OTLP ``ExportTraceServiceRequest`` (``resourceSpans -> scopeSpans -> spans``).

    Examples
    --------
    >>> service = {"key": "service.name", "value": {"stringValue": "bot"}}
    >>> doc = {"resourceSpans": [{"resource": {"attributes": [service]}, "scopeSpans": [{"scope": {"name": "openai"},
    ...        "spans": [{"traceId": "AB", "spanId": "01", "name": "chat"},
    ...                  {"traceId": "AB", "spanId": "02", "parentSpanId": "01", "name": "tool"}]}]}]}
    >>> [(s.span_id, s.parent_id, s.name, s.resource, s.scope) for s in otlp_export_spans(doc)]
    [('01', None, 'chat', {'service.name': 'bot'}, 'openai'), ('02', '01', 'tool', {'service.name': 'bot'}, 'openai')]
    """
    out = []
    for rs in _get(doc, "resourceSpans", "resource_spans") or []:
        if not isinstance(rs, dict):
            continue
        res = rs.get("resource") if isinstance(rs.get("resource"), dict) else {}
        rattrs = attribute_map(res.get("attributes"))
        for ss in _get(rs, "scopeSpans", "scope_spans", "instrumentationLibrarySpans") or []:
            if not isinstance(ss, dict):
                continue
            sc = _get(ss, "scope", "instrumentationLibrary") or {}
            for sp in ss.get("spans") or []:
                out.append(otlp_span(sp, rattrs, sc.get("name") if isinstance(sc, dict) else None)
                           if isinstance(sp, dict) else not_a_span(sp))
    return out


def not_a_span(raw: Any) -> Span:
    """The :class:`Span` of an element of a list of spans that is no span (a null, a string, a number): no id and no
    time, so its row is quarantined (missing call_id) with the element as read, as the OTLP JSON-lines reader
    quarantines it, instead of being dropped without a count.

    >>> s = not_a_span("x")
    >>> s.span_id, s.start, s.raw, span_values(s)["call_id"]
    (None, None, 'x', None)
    """
    return Span(None, None, None, None, None, None, {}, raw=raw)


def pick(span: Span, names: tuple[str, ...]) -> Any:
    """The first present attribute of ``names`` (``r:`` = resource, ``m:`` = a key of :data:`METADATA`).

    >>> pick(Span("a", "b", None, "x", 1, 2, {"llm.system": "openai"}, {"service.name": "api"}),
    ...      ("gen_ai.system", "llm.system", "r:service.name"))
    'openai'
    >>> pick(Span("a", "b", None, "x", 1, 2, {"metadata": '{"user_id": "u7"}'}), ("user.id", "m:user_id"))
    'u7'
    """
    return _first_present((span.attributes, span.resource, metadata(span.attributes)), _parsed(names))


def _parsed(names: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """``names`` as (source, key) pairs: 0 the span's attributes, 1 the resource (``r:``), 2 its :data:`METADATA`
    (``m:``)."""
    return tuple((1, n[2:]) if n.startswith("r:") else (2, n[2:]) if n.startswith("m:") else (0, n) for n in names)


def _first_present(sources: tuple[dict, dict, dict], names: tuple[tuple[int, str], ...]) -> Any:
    """The first attribute of ``names`` (:func:`_parsed`) that is present in its source: neither missing, None nor
    empty text."""
    for source, key in names:
        v = sources[source].get(key)
        if v is not None and v != "":
            return v
    return None


def metadata(attributes: dict) -> dict:
    """The span's :data:`METADATA` as a dict: its JSON object (or the object a reader already parsed); else empty.

    >>> metadata({"metadata": '{"feature": "search", "n": 2}'}), metadata({"metadata": "[1]"}), metadata({})
    ({'feature': 'search', 'n': 2}, {}, {})
    """
    md = attributes.get(METADATA)
    if isinstance(md, str) and md.lstrip().startswith("{"):
        try:
            md = orjson.loads(md)
        except ValueError:
            return {}
    return md if isinstance(md, dict) else {}


def _scalar(v: Any) -> Any:
    """Text-like value for a column: lists and dicts as JSON (the engine checks the type)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v) if not isinstance(v, str) else v
    return v


def default_operation(attributes: dict[str, Any], name: Any = None) -> str | None:
    """A span's operation when ``gen_ai.operation.name`` does not give it: a framework's span kind (:data:`SPAN_KINDS`:
    OpenInference, MLflow, Langfuse, LangSmith, Laminar, OpenLLMetry), the Vercel AI SDK's operation id
    (``*.doGenerate``/``*.doStream`` a chat call,
    ``*.doEmbed`` embeddings, ``ai.toolCall`` a tool call, any other ``ai.*`` the chain around them), a tool name;
    else None (a model call of unnamed operation) for a span with any attribute of a GenAI convention
    (:data:`GENAI_PREFIXES`); for one without, the operation its ``name`` starts with (the GenAI span name
    "chat gpt-4o") or :data:`OTHER_OPERATION`: an HTTP or database span exported with the model calls is kept in its
    trace but never counted as one. The OTLP JSON reader applies the same rule in SQL
    (``workbench.io.ingest._otel_operation``).

    >>> default_operation({"llm.request.type": "chat"}), default_operation({"ai.operationId": "ai.generateText"})
    ('chat', 'chain')
    >>> default_operation({"gen_ai.request.model": "gpt-4o"}), default_operation({"http.method": "GET"})
    (None, 'other')
    >>> default_operation({}, "chat gpt-4o"), default_operation({}, "GET /health")
    ('chat', 'other')
    """
    def text(key: str) -> str | None:
        v = attributes.get(key)
        return None if v is None or v == "" else str(v)

    for key, kinds in SPAN_KINDS:
        if (kind := text(key)) is not None and (kind := kind.strip('"')):
            return kinds.get(kind.upper(), kind.lower())
    if (op := text("ai.operationId")) is not None and op.startswith("ai."):
        if op.endswith((".doGenerate", ".doStream")):
            return "chat"
        if op.endswith(".doEmbed"):
            return "embeddings"
        return "execute_tool" if op == "ai.toolCall" else "chain"
    if text("gen_ai.tool.name") is not None or text("tool.name") is not None:
        return "execute_tool"
    if isinstance(name, str) and (first_word := name.split(" ", 1)[0]) in GENAI_OPERATIONS:
        return first_word  # the GenAI span name "{operation} {model}" ("invoke_agent support_agent")
    if any(str(k).startswith(GENAI_PREFIXES) for k in attributes):
        # an agent's span names the agent and no model (Pydantic AI's "agent run"): the agent, not a model call
        if text("gen_ai.agent.name") is not None and not any(text(k) is not None for k in MODEL_NAMES):
            return "invoke_agent"
        return None
    return OTHER_OPERATION


#: Attributes that name a span's model (:func:`default_operation`: a span naming an agent and none of these is the
#: agent's).
MODEL_NAMES = ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
#: Operations whose span, when the agent runs in the process (any span kind but CLIENT), carries the totals of the
#: model calls made inside it (Pydantic AI, Strands Agents write the run's usage on it): its usage is not counted
#: again (kept in ``attributes`` only, as a Vercel AI SDK outer span's). A CLIENT span calls a remote agent, whose model
#: calls are not in the trace: its usage is the only record and counts.
AGENT_OPERATIONS = ("invoke_agent", "create_agent")


def repeats_usage(operation: Any, kind: Any) -> bool:
    """Whether a span of ``operation`` and span ``kind`` (OTLP's name or number, as any reader gives it) repeats the
    usage of the calls inside it (:data:`AGENT_OPERATIONS`).

    >>> repeats_usage("invoke_agent", "SPAN_KIND_INTERNAL"), repeats_usage("invoke_agent", 3), repeats_usage("chat", 1)
    (True, False, False)
    """
    return operation in AGENT_OPERATIONS and not _client_kind(kind)


#: A CLIENT span's kind as the readers give it: OTLP's number, its enum name, or the short name.
CLIENT_KINDS = ("3", "CLIENT", "SPAN_KIND_CLIENT")


def _client_kind(kind: Any) -> bool:
    return kind is not None and str(kind).strip().upper() in CLIENT_KINDS


_PLANS: dict[tuple[int, tuple[str, ...]], tuple[Any, list, frozenset]] = {}


def _names_plan(extra: dict[str, tuple[str, ...]] | None, used: tuple[str, ...]) -> tuple[tuple[list, list], frozenset]:
    """For :func:`span_values`: each column's attribute names as (read from the resource, key) pairs (all of them, and
    without the Vercel AI SDK's ai.* names for a span that is not the SDK's), and the names
    that stay out of ``attributes``; worked out once per ``extra`` and ``used`` (a format's constants), not per span
    (a third of a span's mapping time)."""
    key = (id(extra), used)
    got = _PLANS.get(key)
    if got is None or got[0] is not extra:  # (the dict is kept with its plan: its id is not reused meanwhile)
        names = dict(SPAN_ATTRIBUTES)
        for c, more in (extra or {}).items():
            names[c] = names.get(c, ()) + more
        # (a span without the Vercel AI SDK's operation id is not read for its ai.* names, as the OTLP reader does)
        picks = ([(c, _parsed(ns)) for c, ns in names.items()],
                 [(c, _parsed(tuple(n for n in ns if not n.startswith("ai.")))) for c, ns in names.items()])
        used_names = frozenset({n.removeprefix("r:") for ns in names.values() for n in ns if not n.startswith("m:")}
                               | set(SPAN_USED)
                               | set(used))
        if len(_PLANS) >= 64:
            _PLANS.clear()
        got = _PLANS[key] = (extra, picks, used_names)
    return got[1], got[2]


def span_values(span: Span, extra: dict[str, tuple[str, ...]] | None = None,
                used: tuple[str, ...] = (), given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``calls`` values of a span (times as epoch microseconds; raises ValueError for an unreadable time).

    ``extra`` adds fallback attribute names per column after the shared ones (a format's own names); ``used`` names
    more attributes that a caller reads itself and that stay out of ``attributes``; ``given`` gives values that come
    first in the usage columns, and last in ``ttft_ms`` (what a Langfuse span's own attributes say, as
    :func:`workbench.io.langfuse.span_columns` reads them: :func:`workbench.io.openinference.add_span` passes them).

    Examples
    --------
    >>> s = Span("ab", "01", None, "chat", "2025-11-20T10:00:00Z", "2025-11-20T10:00:02Z",
    ...          {"gen_ai.usage.input_tokens": 12, "my.model": "gpt-4o", "team": "search"})
    >>> v = span_values(s, extra={"model": ("my.model",)})
    >>> v["ts"], v["latency_ms"], v["operation"], v["input_tokens"], v["model"], v["status"], v["attributes"]
    (1763632800000000, 2000.0, 'chat', '12', 'gpt-4o', 'ok', {'team': 'search'})
    >>> span_values(Span("ab", "02", None, "chat", "yesterday", None, {}))
    Traceback (most recent call last):
    ...
    ValueError: 'yesterday'
    """
    a, res = span.attributes, span.resource
    (all_names, plain), used_names = _names_plan(extra, used)
    unpriced = [n for n in UNPRICED_ZERO if _is_zero(a.get(n))]
    if unpriced:  # (read as absent; kept in attributes below)
        a = {k: val for k, val in a.items() if k not in unpriced}
    v: dict[str, Any] = {}
    sources = (a, res, metadata(a) if METADATA in a else {})
    # the first attribute present of each column's names (as pick, the names parsed once)
    for c, ns in all_names if "ai.operationId" in a else plain:
        got = _first_present(sources, ns)
        v[c] = got if got is None or type(got) is str else _scalar(got)
    start, end = epoch_us(span.start), epoch_us(span.end)
    v["call_id"], v["trace_id"], v["parent_id"] = span.span_id, span.trace_id, span.parent_id
    v["ts"] = start  # (a span without a start cannot be dated: quarantined, missing required field ts)
    v["end_ts"] = end
    v["latency_ms"] = _latency_ms(span.start, span.end, start, end)
    for c, (name, key) in TOKEN_DETAILS.items():  # (LangSmith's details: after every other name of the column)
        if v.get(c) is None and name in a:
            v[c] = _scalar(token_detail(a[name], key))
    if v.get("cost_usd") is None:  # (a cost in two parts: after every name of the column)
        v["cost_usd"] = cost_parts(a)
    if v.get("operation") is None or any(a.get(n) not in (None, "") for n in KIND_DECIDES):
        v["operation"] = default_operation(a, span.name)
    elif isinstance(v["operation"], str):
        v["operation"] = OPERATION_ALIASES.get(v["operation"], v["operation"])
    for c, x in (given or {}).items():  # (a Langfuse span's: first in the usage columns; ttft_ms is set below)
        if x is not None and c != "ttft_ms":
            v[c] = _scalar(x)
    agent_total = repeats_usage(v["operation"], span.kind)
    if agent_total:  # an agent run's totals: its calls are counted, each once
        v.update(dict.fromkeys(USAGE_COLUMNS))
    vercel = a.get("ai.operationId")
    vercel = vercel if isinstance(vercel, str) and vercel.startswith("ai.") else None
    if vercel is not None:  # the Vercel AI SDK: its provider ids are "openai.chat", "openai.responses"...
        if vercel in VERCEL_OUTER:
            v.update(dict.fromkeys(USAGE_COLUMNS))
        if v.get("provider"):
            v["provider"] = str(v["provider"]).split(".")[0]
    if isinstance(v.get("provider"), str):  # "OpenAI" (OpenLLMetry) is the "openai" of the GenAI conventions
        v["provider"] = v["provider"].lower()
    tool = first(a.get("gen_ai.tool.name"), a.get("tool.name"), a.get("ai.toolCall.name"))
    v["name"] = first(tool, span.name)
    fr = first(*(a.get(n) for n in FINISH_REASONS))
    if isinstance(fr, str) and fr.startswith("["):
        try:
            import orjson

            fr = orjson.loads(fr)
        except ValueError:
            pass
    v["finish_reason"] = (fr[0] if fr else None) if isinstance(fr, list) else fr
    ttft = first(*(a.get(n) for n in TTFT_SECONDS))
    ttft_ms = first(*(a.get(n) for n in VERCEL_TTFT_MS))
    first_ev = next((e for e in span.events if _is_first_token(e.get("name"))), None)
    if ttft is not None:
        n = ttft if type(ttft) in (int, float) else number(ttft)
        v["ttft_ms"] = ttft if n is None else n * 1000.0
    elif ttft_ms is not None:
        v["ttft_ms"] = _scalar(ttft_ms)
    elif first_ev is not None and start is not None:
        try:
            t = epoch_us(first_ev.get("time"))
        except (ValueError, OverflowError, TypeError):  # its text: quarantined as a non-numeric ttft_ms
            v["ttft_ms"] = str(first_ev.get("time"))
        else:
            v["ttft_ms"] = (t - start) / 1000.0 if t is not None else None
    if v.get("ttft_ms") is None and given and given.get("ttft_ms") is not None:
        v["ttft_ms"] = given["ttft_ms"]
    reasons = v.get("finish_reason")
    fr_all = fr if isinstance(fr, list) else [fr]
    lf_error = str(a.get(LANGFUSE_LEVEL) or "").strip().upper() == "ERROR"
    failed = span.status == "error" or lf_error
    # an OpenTelemetry SDK records the exception as a span event ("exception", with exception.type and
    # exception.message), not error.type
    exc = next((e for e in span.events if e.get("name") == "exception"), None) if failed else None
    exc = exc["attributes"] if exc is not None and isinstance(exc.get("attributes"), dict) else {}
    if v.get("error_type") is None and failed:
        v["error_type"] = exc.get("exception.type")
    if v.get("error_type") is None and lf_error and a.get(LANGFUSE_STATUS_MESSAGE) not in (None, ""):
        v["error_type"] = _scalar(a[LANGFUSE_STATUS_MESSAGE])
    # a timeout: its error type says so, or a failed call's status message, exception message or Langfuse status
    # message does (records.is_timeout: the rule of every reader)
    if is_timeout(v.get("error_type")) or failed and is_timeout(
            span.status_message, exc.get("exception.message"), a.get(LANGFUSE_STATUS_MESSAGE) if lf_error else None):
        v["status"] = "timeout"
    elif "content_filter" in fr_all or reasons in ("content_filter", "content-filter"):
        v["status"] = "blocked"
    elif failed:
        v["status"] = "error"
    else:
        v["status"] = "ok"
    attrs = {k: val for k, val in span.attributes.items()
             if k not in used_names or k in unpriced  # (the repeated usage: visible, not counted)
             or vercel in VERCEL_OUTER and k.startswith("ai.usage.")
             or agent_total and k in _USAGE_NAMES}
    rextra = {k: val for k, val in span.resource.items() if k not in used_names}
    if rextra:
        attrs["resource"] = rextra
    if span.scope:
        attrs["otel.scope.name"] = span.scope
    other = [e.get("raw", {k: x for k, x in e.items() if k != "raw"}) for e in span.events
             if not _is_first_token(e.get("name"))]
    if other:
        attrs["otel.events"] = other
    if tool is not None and tool != span.name:
        attrs["otel.span.name"] = span.name
    if span.status_message:
        attrs["otel.status_message"] = span.status_message
    v["attributes"] = attrs
    return v


def cost_parts(attributes: dict) -> str | None:
    """The cost of a span that writes it in two parts (:data:`COST_PARTS`): their sum when both are numbers (as text,
    as a column's value) and it is not 0; else None.

    >>> cost_parts({"gen_ai.usage.input_cost": 0.25, "gen_ai.usage.output_cost": "0.5"})
    '0.75'
    >>> cost_parts({"gen_ai.usage.input_cost": 0.0, "gen_ai.usage.output_cost": 0.0}), cost_parts({})
    (None, None)
    """
    parts = [attributes.get(n) for n in COST_PARTS]
    nums = [None if isinstance(x, bool) else x if type(x) in (int, float) else number(x) for x in parts]
    if None in nums or not all(math.isfinite(x) for x in nums) or sum(nums) == 0:
        return None
    return str(sum(nums))


def token_detail(text: Any, key: str) -> Any:
    """The ``key`` of a token-details text (:data:`TOKEN_DETAILS`): a JSON object, else a Python dict's text (its
    single quotes read as double ones); None for anything else.

    >>> token_detail('{"cache_read": 64, "audio": 0}', "cache_read"), token_detail("{'reasoning': 10}", "reasoning")
    (64, 10)
    >>> token_detail("[64]", "cache_read"), token_detail("{'cache_read'", "cache_read"), token_detail(None, "x")
    (None, None, None)
    """
    if not isinstance(text, str):
        return None
    for t in (text, text.replace("'", '"')):
        try:
            d = orjson.loads(t)
        except ValueError:
            continue
        return d.get(key) if isinstance(d, dict) else None
    return None


def _latency_ms(start: Any, end: Any, start_us: int | None, end_us: int | None) -> float | None:
    """End - start in milliseconds: from the nanoseconds of two ``[seconds, nanoseconds]`` times (OTLP, HrTime), as the
    OTLP JSON-lines reader takes it from the nanosecond numbers; else from the microseconds."""
    if start_us is None or end_us is None:
        return None
    if all(isinstance(t, list) and len(t) == 2 and all(type(x) is int for x in t) for t in (start, end)):
        return ((end[0] - start[0]) * 10**9 + end[1] - start[1]) / 1e6
    return (end_us - start_us) / 1000.0


def _is_zero(v: Any) -> bool:
    """Whether an attribute's value is the number 0 (as a number or as text)."""
    if isinstance(v, bool) or v is None:
        return False
    try:
        return float(v) == 0
    except (TypeError, ValueError):
        return False


def _is_first_token(name: Any) -> bool:
    n = str(name or "").lower()
    return "first" in n and ("token" in n or "chunk" in n)
