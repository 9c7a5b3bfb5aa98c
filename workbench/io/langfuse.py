"""Langfuse: trace exports and ingestion batches.

Format ``langfuse``: a trace as the Langfuse UI or public API exports it, ``{"trace": {...}, "observations": [...]}``
or the API's ``TraceWithFullDetails`` (the trace's fields with ``observations`` inside), one per file, several per file
(JSON lines, an array, concatenated documents), or the API's observation lists (``{"data": [observation, ...]}``, or
bare observation objects), or the UI's batch export of generations (JSON, JSON lines, or CSV: columns
:data:`EXPORT_COLUMNS`, its JSON values read by :func:`from_text`).

Format ``langfuse_batch``: the body of ``POST /api/public/ingestion`` as the SDKs and LiteLLM's Langfuse callback send
it, ``{"batch": [{"type": "trace-create" | "generation-create" | "span-create" | "event-create" | "<type>-create" |
"*-update" | "observation-create|update", "body": {...}}]}``. Events apply in file order: an update merges its
non-null fields into the row with the same ``body.id`` (``metadata`` merged key by key); ``score-create`` and
``sdk-log`` events are not calls and are skipped. ``read`` counts the observations the batch describes (each row once,
however many events built it); a row's position is its first event's index in the batch (1 = first).

Each observation is one ``calls`` row: ``GENERATION`` is an LLM call (operation ``chat``), ``EMBEDDING`` ->
``embeddings``, ``TOOL`` -> ``execute_tool``, ``AGENT`` -> ``invoke_agent``, the others (``SPAN``, ``CHAIN``,
``EVENT``, ``RETRIEVER``, ``EVALUATOR``, ``GUARDRAIL``) their type in lower case; ``parentObservationId`` is the
parent. Columns:

==================  ==============================================================================================
column              source
==================  ==============================================================================================
call_id, trace_id   observation ``id``, ``traceId`` (else the trace's ``id``); parent_id: ``parentObservationId``
ts, end_ts          ``startTime``, ``endTime`` (ISO 8601, converted to UTC); an EVENT has no end: latency null
latency_ms          ``endTime - startTime``, else the API's ``latency`` (seconds)
ttft_ms             ``completionStartTime - startTime``, else the API's ``timeToFirstToken`` (seconds)
model               ``model`` (``providedModelName`` in ``GET /api/public/v2/observations``); provider, request
                    model, finish reason from the OTel attributes in ``metadata``
input_tokens        sum of the ``usageDetails`` keys containing ``input`` (Langfuse's own rule: ``input`` is the
                    uncached part, ``input_cached_tokens``, ``cache_read_input_tokens``... the rest), so cached
                    tokens are inside input tokens; when ``total`` says a detail was left inside ``input`` too
                    (LiteLLM's callback), the reading that adds up to ``total`` wins; else ``usage.input`` /
                    ``promptTokens`` / ``prompt_tokens``, else the observation's own ``promptTokens`` (Langfuse
                    v2's observation view)
output_tokens       sum of the ``usageDetails`` keys containing ``output`` (reasoning inside); else ``usage.output``,
                    else ``completionTokens``
cache_read_tokens   ``usageDetails`` keys with ``cache_read`` or ``cached``; cache_write: ``cache_creation`` /
                    ``cache_write``; reasoning: keys with ``reasoning``
cost_usd            ``costDetails.total`` (else the sum of its keys), else ``calculatedTotalCost``, ``totalPrice``,
                    ``usage.totalCost``
user_id, session_id the trace's ``userId``, ``sessionId`` (else ``metadata.user_id``/``session_id``)
feature             ``metadata`` ``workbench.feature`` / ``feature``, else the trace's ``name`` (``traceName`` in a
                    row of the UI's batch export of generations, ``traceTags`` its tags)
prompt_version      ``promptVersion`` (``promptName`` in attributes), else the trace's ``version``
environment         ``environment`` of the observation or the trace
status              ``error`` when ``level`` is ``ERROR`` (``timeout`` when its ``statusMessage`` says so), else ok;
                    error_type: ``metadata`` ``error.type``, else the ``statusMessage``
attributes          ``langfuse.type``, ``level``, ``statusMessage``, ``promptName``, the trace's ``tags``,
                    ``release``, ``version`` and ``name``, ``modelParameters`` and the ``metadata``
==================  ==============================================================================================

Tokens come from ``usageDetails`` (or ``usage``) only: when ``metadata`` keeps the original OpenTelemetry attributes
(``gen_ai.usage.input_tokens``...), they are read only when Langfuse recorded no usage at all, never added to it.

Examples
--------
>>> doc = {"trace": {"id": "t1", "name": "support", "userId": "u1", "sessionId": "s1"},
...        "observations": [{"id": "g1", "traceId": "t1", "type": "GENERATION", "model": "gpt-4o",
...                          "startTime": "2025-11-20T10:00:00Z", "endTime": "2025-11-20T10:00:02Z",
...                          "usageDetails": {"input": 80, "input_cached_tokens": 20, "output": 30, "total": 130},
...                          "metadata": {"attributes": {"gen_ai.usage.input_tokens": 100}}}]}
>>> v = trace_rows([(1, doc, None, None)]).values[0]
>>> v["input_tokens"], v["cache_read_tokens"], v["output_tokens"], v["user_id"], v["feature"]
(100, 20, 30, 'u1', 'support')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.io.records import (MALFORMED, InvalidField, Rows, duration_ms, epoch_us, first, is_timeout, loads,
                                  malformed, number, timestamp)
from workbench.io.spans import (LANGFUSE_COMPLETION_START, LANGFUSE_COST, LANGFUSE_USAGE, OPERATION_ALIASES,
                                SPAN_ATTRIBUTES)

FORMAT, BATCH_FORMAT = "langfuse", "langfuse_batch"
TYPES = ("GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING", "GUARDRAIL")
_OPERATIONS = {"GENERATION": "chat", "EMBEDDING": "embeddings", "TOOL": "execute_tool", "AGENT": "invoke_agent"}
#: The OpenTelemetry token attributes an observation's metadata may carry (read only when Langfuse recorded no usage):
#: the names the span formats read (one table, :data:`workbench.io.spans.SPAN_ATTRIBUTES`).
_OTEL_TOKENS = {c: SPAN_ATTRIBUTES[c] for c in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                 "cache_write_tokens", "reasoning_tokens")}
#: The input and output counts of a ``usage`` object, first present wins (the camelCase ones also beside it).
_USAGE_INPUT = ("input", "promptTokens", "prompt_tokens")
_USAGE_OUTPUT = ("output", "completionTokens", "completion_tokens")
#: The model an observation names: ``model``, or ``providedModelName`` (``GET /api/public/v2/observations``).
_MODEL = ("model", "providedModelName")
#: The columns that make a CSV (or Parquet) file the UI's batch export of observations (its generations table).
EXPORT_COLUMNS = ("id", "traceId", "type", "startTime")


def is_trace_export(obj: Any) -> bool:
    """A Langfuse trace export: ``{"trace": {...}, "observations": [...]}``, or the API's ``TraceWithFullDetails``
    (the trace's fields with ``observations`` inside).

    Examples
    --------
    >>> is_trace_export({"trace": {"id": "t1"}, "observations": []})
    True
    >>> is_trace_export({"id": "t1", "userId": "u1", "observations": []}), is_trace_export({"id": "t1"})
    (True, False)
    """
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("trace"), dict) and isinstance(obj.get("observations"), list):
        return True
    return isinstance(obj.get("observations"), list) and "id" in obj and ("timestamp" in obj or "userId" in obj)


def is_trace_page(obj: Any) -> bool:
    """A page of ``GET /api/public/traces`` (``{"data": [trace, ...], "meta": ...}``): its traces name their
    observations by id only.

    Examples
    --------
    >>> page = {"data": [{"id": "t1", "timestamp": "2025-11-20T10:00:00Z", "observations": ["o1"]}], "meta": {}}
    >>> is_trace_page(page), is_trace_page({"data": []})
    (True, False)
    >>> trace_rows([(1, page, None, None)]).kind
    ['observation ids only']
    """
    data = obj.get("data") if isinstance(obj, dict) else None
    return isinstance(data, list) and bool(data) and is_trace_export(data[0])


_IDS_ONLY = ("a Langfuse trace list (GET /api/public/traces) names each trace's observations by id only: save each "
             "trace with GET /api/public/traces/{id} and load those files")


def is_observation(obj: Any) -> bool:
    """A single Langfuse observation: an ``id``, a ``startTime`` and a ``type`` Langfuse knows (:data:`TYPES`).

    Examples
    --------
    >>> is_observation({"id": "o1", "type": "generation", "startTime": "2025-11-20T10:00:00Z"})
    True
    >>> is_observation({"id": "o1", "type": "LOG", "startTime": "2025-11-20T10:00:00Z"})
    False
    """
    return (isinstance(obj, dict) and str(obj.get("type", "")).upper() in TYPES and "startTime" in obj
            and "id" in obj)


def is_observation_list(obj: Any) -> bool:
    """A page of the API's observations, ``{"data": [observation, ...]}`` (:func:`is_observation`).

    Examples
    --------
    >>> is_observation_list({"data": [{"id": "o1", "type": "SPAN", "startTime": "2025-11-20T10:00:00Z"}]})
    True
    >>> is_observation_list({"data": []}), is_observation_list({"data": [{"id": "o1"}]})
    (False, False)
    """
    data = obj.get("data") if isinstance(obj, dict) else None
    return isinstance(data, list) and bool(data) and is_observation(data[0])


def is_batch(obj: Any) -> bool:
    """The body of ``POST /api/public/ingestion``: ``{"batch": [event, ...]}`` (format ``langfuse_batch``).

    Examples
    --------
    >>> is_batch({"batch": [{"type": "trace-create", "body": {"id": "t1"}}]}), is_batch({"batch": {}})
    (True, False)
    """
    return isinstance(obj, dict) and isinstance(obj.get("batch"), list)


def looks_like(obj: Any) -> bool:
    """A record of format ``langfuse``: a trace export, an observation, a list of them or a page of traces (an
    ingestion batch is format ``langfuse_batch``, :func:`is_batch`).

    Examples
    --------
    >>> looks_like({"trace": {"id": "t1"}, "observations": []}), looks_like({"batch": []})
    (True, False)
    """
    return is_trace_export(obj) or is_observation(obj) or is_observation_list(obj) or is_trace_page(obj)


#: The fields of an exported observation that are JSON objects or lists (written as JSON text in a CSV export).
_JSON_FIELDS = frozenset({"metadata", "usageDetails", "costDetails", "providedUsageDetails", "providedCostDetails",
                          "modelParameters", "usage", "traceTags"})


def from_text(rec: Any) -> Any:
    """A record whose every value is text or missing (a CSV row of the UI's batch export) with its JSON values read:
    the export writes text as it is and anything else as JSON (``stringifyForCsv``), so a time is a quoted string,
    ``usageDetails`` and ``metadata`` objects, ``traceTags`` a list (an older export quoted every text too). Numbers
    stay text (read as numbers where a number is expected); a text that only looks like JSON (a status message
    holding an error body) stays as written, as does text that is no whole JSON value. Any other record is returned
    as given.

    >>> from_text({"id": "o1", "startTime": '"2025-11-20T10:00:00.000Z"', "usageDetails": '{"input": 5}',
    ...            "latency": "2.5", "statusMessage": '{"error": "quota"}', "endTime": None})
    {'id': 'o1', 'startTime': '2025-11-20T10:00:00.000Z', 'usageDetails': {'input': 5}, 'latency': '2.5',
     'statusMessage': '{"error": "quota"}', 'endTime': None}
    >>> from_text({"id": "o1", "usageDetails": {"input": 5}})
    {'id': 'o1', 'usageDetails': {'input': 5}}
    """
    if not isinstance(rec, dict) or not all(v is None or isinstance(v, str) for v in rec.values()):
        return rec
    out = {}
    for key, v in rec.items():
        if v is not None and (v[:1] == '"' or v[:1] in ("{", "[") and key in _JSON_FIELDS):
            try:
                got = loads(v)
            except ValueError:
                got = v
            # (a quoted text is its string; an older export's quoted JSON text is read again for its object)
            if isinstance(got, str) and key in _JSON_FIELDS and got[:1] in ("{", "["):
                try:
                    got = loads(got)
                except ValueError:
                    pass
            if isinstance(got, str) or key in _JSON_FIELDS:
                v = got
        out[key] = v
    return out


def _meta(obs: dict) -> dict:
    md = obs.get("metadata")
    return md if isinstance(md, dict) else {}


def _otel_attrs(md: dict) -> dict:
    """OTel attributes Langfuse kept in metadata: ``metadata.attributes`` (OTel ingestion) or top-level keys."""
    attrs = md.get("attributes")
    out = dict(attrs) if isinstance(attrs, dict) else {}
    for k, v in md.items():
        if k.startswith(("gen_ai.", "llm.")):
            out.setdefault(k, v)
    return out


def _int(v: Any) -> Any:
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _number(v: Any) -> Any:
    """A usage or cost value as a number: a number as given, numeric text (an exporter writing numbers as strings) read
    as one (:func:`workbench.io.records.number`); anything else None."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    return number(v)


def _seconds_ms(v: Any) -> Any:
    """Milliseconds of the API's ``latency`` or ``timeToFirstToken`` (seconds, also as numeric text); a value that is
    no number is handed to the engine, which quarantines it naming the field (it was dropped without a word).

    >>> _seconds_ms(1.5), _seconds_ms(" 0.25 "), _seconds_ms(None), _seconds_ms("soon")
    (1500.0, 250.0, None, 'soon')
    """
    n = _number(v)
    if n is not None:
        return n * 1000.0
    return None if v is None or v == "" else v


def _sum(values: list) -> Any:
    """The sum of the values (a null one left out, numeric text read as its number); a value that is no number is
    handed to the engine, which quarantines it with the field."""
    values = [v for v in values if v is not None]
    nums = [_number(v) for v in values]
    if None in nums:
        return values[nums.index(None)]
    return _int(sum(nums)) if nums else None


def usage_tokens(obs: dict) -> dict[str, Any]:
    """Token columns of an observation (the rule is in the module docstring).

    Examples
    --------
    >>> usage_tokens({"usageDetails": {"input": 80, "input_cached_tokens": 20, "output": 30, "output_reasoning": 5}})
    {'input_tokens': 100, 'output_tokens': 35, 'cache_read_tokens': 20, 'cache_write_tokens': None,
     'reasoning_tokens': 5}
    >>> usage_tokens({"usage": {"promptTokens": 5, "completionTokens": 2}})
    {'input_tokens': 5, 'output_tokens': 2}
    >>> usage_tokens({"input": "Hello", "promptTokens": 50, "completionTokens": 10})  # Langfuse v2's view
    {'input_tokens': 50, 'output_tokens': 10}
    """
    out: dict[str, Any] = {}
    ud = obs.get("usageDetails")
    if isinstance(ud, dict) and ud:
        if "prompt_tokens" in ud or "completion_tokens" in ud or "input_tokens_details" in ud \
                or "prompt_tokens_details" in ud:  # OpenAI usage schema, as the ingestion API accepts it
            pd = first(ud.get("prompt_tokens_details"), ud.get("input_tokens_details")) or {}
            cd = first(ud.get("completion_tokens_details"), ud.get("output_tokens_details")) or {}
            out["input_tokens"] = first(ud.get("prompt_tokens"), ud.get("input_tokens"))
            out["output_tokens"] = first(ud.get("completion_tokens"), ud.get("output_tokens"))
            out["cache_read_tokens"] = pd.get("cached_tokens") if isinstance(pd, dict) else None
            out["reasoning_tokens"] = cd.get("reasoning_tokens") if isinstance(cd, dict) else None
            return out
        keys = {k: v for k, v in ud.items() if not k.lower().startswith("total")}
        is_cr = lambda k: "cache_read" in k.lower() or "cached" in k.lower()  # noqa: E731
        is_cw = lambda k: "cache_creation" in k.lower() or "cache_write" in k.lower()  # noqa: E731
        ins = [v for k, v in keys.items() if "input" in k.lower()]
        outs = [v for k, v in keys.items() if "output" in k.lower()]
        out["input_tokens"] = _sum(ins) if ins else None
        out["output_tokens"] = _sum(outs) if outs else None
        total = _number(ud.get("total"))
        if total is not None and ins and outs:
            out["input_tokens"], out["output_tokens"] = _reconcile(keys, total, is_cr, is_cw, out)
        cr = [v for k, v in keys.items() if is_cr(k)]
        cw = [v for k, v in keys.items() if is_cw(k)]
        rs = [v for k, v in keys.items() if "reasoning" in k.lower()]
        out["cache_read_tokens"] = _sum(cr) if cr else None
        out["cache_write_tokens"] = _sum(cw) if cw else None
        out["reasoning_tokens"] = _sum(rs) if rs else None
        if out["input_tokens"] is not None or out["output_tokens"] is not None:
            return out
    u = obs.get("usage")
    # the usage object, then the counts beside it (Langfuse v2's observation view: promptTokens, completionTokens;
    # there "input" and "output" are the prompt and the completion, no counts)
    for src, ins, outs in ((u, _USAGE_INPUT, _USAGE_OUTPUT), (obs, _USAGE_INPUT[1:], _USAGE_OUTPUT[1:])):
        if isinstance(src, dict) and any(src.get(k) is not None for k in ins + outs):
            out["input_tokens"] = first(*(src.get(k) for k in ins))
            out["output_tokens"] = first(*(src.get(k) for k in outs))
            return out
    attrs = _otel_attrs(_meta(obs))  # only when Langfuse recorded no usage: never added to it
    for col, names in _OTEL_TOKENS.items():
        out[col] = first(*(attrs.get(n) for n in names))
    return out


def _reconcile(keys: dict, total: float, is_cr, is_cw, out: dict) -> tuple[Any, Any]:
    """Input and output tokens that add up to the ingested ``total`` when the sum of the keys does not.

    Langfuse's rule (every key containing ``input`` is input) assumes ``input`` is the uncached part. Some producers
    leave a detail inside ``input`` as well (LiteLLM's Langfuse callback subtracts cache reads but not cache
    creation; others subtract cache creation but not reads): then the sum overshoots ``total``, and the reading
    without the double-counted detail keys, the first that matches ``total``, wins. No match: Langfuse's rule."""
    def part(pred) -> Any:
        vals = [v for k, v in keys.items() if pred(k)]
        return _sum(vals) if vals else None

    if not all(isinstance(v, (int, float)) for v in (out["input_tokens"], out["output_tokens"])):
        return out["input_tokens"], out["output_tokens"]
    inputs = (part(lambda k: "input" in k.lower()),
              part(lambda k: "input" in k.lower() and not is_cw(k)),
              part(lambda k: "input" in k.lower() and not is_cr(k)),
              part(lambda k: "input" in k.lower() and not is_cr(k) and not is_cw(k)))
    outputs = (part(lambda k: "output" in k.lower()),
               part(lambda k: "output" in k.lower() and "reasoning" not in k.lower()))
    for o in outputs:
        for i in inputs:
            if isinstance(i, (int, float)) and isinstance(o, (int, float)) and i + o == total:
                return i, o
    return out["input_tokens"], out["output_tokens"]


def _cost(obs: dict) -> Any:
    cd = obs.get("costDetails")
    if isinstance(cd, dict) and cd:
        if cd.get("total") is not None:
            return cd["total"]
        return _sum([v for v in cd.values() if v is not None])
    u = obs.get("usage") if isinstance(obs.get("usage"), dict) else {}
    return first(obs.get("calculatedTotalCost"), obs.get("totalPrice"), obs.get("totalCost"), u.get("totalCost"))


def span_columns(usage: Any, cost: Any, completion_start: Any = None, start_us: int | None = None) -> dict[str, Any]:
    """The columns a span of Langfuse's OpenTelemetry SDKs gives in its own attributes: its ``usageDetails`` and
    ``costDetails``, written as JSON text in :data:`workbench.io.spans.LANGFUSE_USAGE` and
    :data:`~workbench.io.spans.LANGFUSE_COST`, read by the rule of the export's (:func:`usage_tokens`,
    ``costDetails.total``); and ``ttft_ms``, its ``completionStartTime``
    (:data:`~workbench.io.spans.LANGFUSE_COMPLETION_START`, ISO text, JSON-quoted as the Python SDK writes it) minus
    the span's start (``start_us``, epoch microseconds). None where they give nothing. Every span reader reads them
    so (the OTLP JSON-lines reader's SQL calls this function).

    Raises
    ------
    InvalidField
        A detail that is no JSON object (text cut short, say), or a completion start that is no time: the span is
        quarantined naming the attribute.

    Examples
    --------
    >>> v = span_columns('{"input": 80, "input_cached_tokens": 20, "output": 30, "total": 130}',
    ...                  '{"input": 0.0002, "output": 0.0003, "total": 0.0005}',
    ...                  '"2025-11-20T10:00:00.250000+00:00"', 1763632800000000)
    >>> v["input_tokens"], v["cache_read_tokens"], v["output_tokens"], v["cost_usd"], v["ttft_ms"]
    (100, 20, 30, 0.0005, 250.0)
    >>> span_columns('{"input": 80', None)
    Traceback (most recent call last):
    ...
    workbench.io.records.InvalidField: invalid JSON in langfuse.observation.usage_details: '{"input": 80' (expected a JSON object)
    """
    details: dict[str, dict] = {}
    for name, key, value in ((LANGFUSE_USAGE, "usageDetails", usage), (LANGFUSE_COST, "costDetails", cost)):
        if value is None or value == "":
            continue
        got: Any = None  # (text only, as the SDKs write it: a map or list attribute is refused in every reader)
        if isinstance(value, str):
            try:
                got = loads(value)
            except ValueError:
                pass
        if not isinstance(got, dict):
            raise InvalidField(f"invalid JSON: {name}", f"invalid JSON in {name}: {str(value)[:80]!r} (expected a "
                               "JSON object)", name)
        details[key] = got
    out = dict.fromkeys(("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                         "reasoning_tokens", "cost_usd", "ttft_ms"))
    if details.get("usageDetails"):
        out.update(usage_tokens({"usageDetails": details["usageDetails"]}))
    if details.get("costDetails"):
        out["cost_usd"] = _cost({"costDetails": details["costDetails"]})
    if completion_start is not None and completion_start != "":
        text = completion_start
        if isinstance(text, str) and text.startswith('"'):  # (json.dumps of the time: Langfuse's _serialize)
            try:
                text = loads(text)
            except ValueError:
                pass
        try:
            if not isinstance(text, str):
                raise ValueError(repr(text))
            at = epoch_us(text)
        except (ValueError, OverflowError):
            name = LANGFUSE_COMPLETION_START
            raise InvalidField(f"unparseable timestamp: {name}", f"unparseable timestamp in {name}: "
                               f"{str(completion_start)[:80]!r} (expected ISO 8601)", name) from None
        out["ttft_ms"] = duration_ms(start_us, at)
    return out


def observation_row(rows: Rows, k: int, obs: dict, trace: dict | None) -> None:
    """Append the ``calls`` row of one observation (with its trace's context), or its quarantine record.

    Examples
    --------
    >>> rows = Rows()
    >>> observation_row(rows, 3, {"id": "o1", "type": "TOOL", "name": "search", "startTime": "2025-11-20T10:00:00Z",
    ...                           "endTime": "2025-11-20T10:00:00.250Z", "level": "ERROR",
    ...                           "statusMessage": "request timed out"}, {"id": "t1", "name": "support"})
    >>> v = rows.values[0]
    >>> rows.k, v["trace_id"], v["operation"], v["latency_ms"], v["status"], v["error_type"], v["feature"]
    ([3], 't1', 'execute_tool', 250.0, 'timeout', 'request timed out', 'support')
    >>> observation_row(rows, 4, {"id": "o2", "type": "SPAN", "startTime": "soon"}, None)
    >>> rows.kind[-1]
    'unparseable timestamp: ts'
    """
    try:
        _observation_row(rows, k, obs, trace if isinstance(trace, dict) else None)
    except MALFORMED as exc:
        malformed(rows, k, "Langfuse observation", exc, obs)


def _observation_row(rows: Rows, k: int, obs: dict, trace: dict | None) -> None:
    trace = trace or {}
    v: dict[str, Any] = {}
    if not timestamp(v, rows, k, obs, "ts", obs.get("startTime")):
        return
    if not timestamp(v, rows, k, obs, "end_ts", obs.get("endTime")):
        return
    cst: dict[str, Any] = {}
    if not timestamp(cst, rows, k, obs, "ttft_ms", obs.get("completionStartTime")):
        return
    md, tmd = _meta(obs), (trace.get("metadata") if isinstance(trace.get("metadata"), dict) else {})
    attrs = _otel_attrs(md)
    typ = str(obs.get("type") or "SPAN").upper()
    v["call_id"] = obs.get("id")
    v["trace_id"] = first(obs.get("traceId"), trace.get("id"))
    v["parent_id"] = obs.get("parentObservationId")
    v["latency_ms"] = duration_ms(v["ts"], v["end_ts"])
    if v["latency_ms"] is None:
        v["latency_ms"] = _seconds_ms(obs.get("latency"))
    v["ttft_ms"] = duration_ms(v["ts"], cst.get("ttft_ms"))
    if v["ttft_ms"] is None:
        v["ttft_ms"] = _seconds_ms(obs.get("timeToFirstToken"))
    op = attrs.get("gen_ai.operation.name") if typ == "GENERATION" else None
    # (a call type as LiteLLM's spans write it is the operation it names, as every span reader reads it)
    v["operation"] = first(OPERATION_ALIASES.get(op, op) if isinstance(op, str) else op, _OPERATIONS.get(typ),
                           typ.lower())
    v["name"] = obs.get("name")
    v["feature"] = first(md.get("workbench.feature"), md.get("feature"), tmd.get("workbench.feature"),
                         tmd.get("feature"), trace.get("name"), obs.get("traceName"))
    v["environment"] = first(obs.get("environment"), trace.get("environment"))
    v["provider"] = first(attrs.get("gen_ai.provider.name"), attrs.get("gen_ai.system"), md.get("ls_provider"),
                          md.get("provider"), attrs.get("llm.provider"))
    model = first(*(obs.get(k) for k in _MODEL))
    v["model"] = first(model, attrs.get("gen_ai.response.model"), attrs.get("gen_ai.request.model"),
                       md.get("ls_model_name"))
    v["request_model"] = first(attrs.get("gen_ai.request.model"), model)
    pv = first(obs.get("promptVersion"), trace.get("version"))
    v["prompt_version"] = None if pv is None else str(pv)
    v["user_id"] = first(trace.get("userId"), obs.get("userId"), md.get("user_id"), md.get("userId"),
                         tmd.get("user_id"))
    v["session_id"] = first(trace.get("sessionId"), obs.get("sessionId"), md.get("session_id"),
                            md.get("sessionId"), tmd.get("session_id"))
    v["variant"] = first(md.get("workbench.variant"), md.get("variant"), tmd.get("variant"))
    level = str(obs.get("level") or "DEFAULT").upper()
    msg = obs.get("statusMessage")
    v["error_type"] = first(attrs.get("error.type"), md.get("error.type"), msg if level == "ERROR" else None)
    if level == "ERROR":
        v["status"] = "timeout" if is_timeout(v["error_type"], msg) else "error"
    else:
        v["status"] = "ok"
    fr = attrs.get("gen_ai.response.finish_reasons")
    v["finish_reason"] = (fr[0] if fr else None) if isinstance(fr, list) else first(fr, md.get("finish_reason"))
    if v["finish_reason"] == "content_filter" and v["status"] == "ok":
        v["status"] = "blocked"
    v.update(usage_tokens(obs))
    v["cost_usd"] = _cost(obs)
    extra: dict[str, Any] = {"langfuse.type": typ, "langfuse.level": level}
    for key, name in (("statusMessage", "langfuse.status_message"), ("promptName", "langfuse.prompt.name"),
                      ("version", "langfuse.version"), ("modelParameters", "langfuse.model_parameters"),
                      ("metadata", "langfuse.metadata")):
        if obs.get(key) not in (None, "", {}):
            extra[name] = obs[key]
    for key, name in (("name", "langfuse.trace.name"), ("tags", "langfuse.tags"), ("release", "langfuse.release"),
                      ("version", "langfuse.trace.version")):
        if trace.get(key) not in (None, "", [], {}):
            extra[name] = trace[key]
    for key, name in (("traceName", "langfuse.trace.name"), ("traceTags", "langfuse.tags")):  # (a batch export's)
        if name not in extra and obs.get(key) not in (None, "", [], {}):
            extra[name] = obs[key]
    v["attributes"] = extra
    rows.add(k, v, raw=obs)


def trace_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of Langfuse trace exports and observation lists (see the module docstring).

    Examples
    --------
    >>> obs = {"data": [{"id": "o1", "type": "GENERATION", "startTime": "2025-11-20T10:00:00Z", "model": "gpt-4o"}]}
    >>> r = trace_rows([(1, obs, None, None), (2, {"id": 7}, None, None)])
    >>> r.k, [v.get("model") for v in r.values], r.kind
    ([1, 2], ['gpt-4o', None], [None, 'not a Langfuse trace'])
    """
    rows = Rows() if rows is None else rows
    for k, obj, raw, err in records:
        obj = from_text(obj)  # (a CSV row of the UI's export)
        if err is not None:
            rows.error(k, err, err, raw=raw)
        elif is_trace_export(obj):
            _trace(rows, k, obj)
        elif is_trace_page(obj):
            for t in obj["data"]:
                if isinstance(t, dict):
                    _trace(rows, k, t)
                else:  # (a null or a string among the page's traces)
                    rows.error(k, "not a Langfuse trace", "not a Langfuse trace (an object with an id)", raw=t)
        elif is_observation_list(obj):
            for obs in obj["data"]:
                _one(rows, k, obs, None)
        elif is_observation(obj):
            _one(rows, k, obj, None)
        else:
            rows.error(k, "not a Langfuse trace", "not a Langfuse trace export ({\"trace\": ..., \"observations\": "
                       "[...]}) or observation", raw=obj)
    return rows


def _trace(rows: Rows, k: int, obj: Any) -> None:
    trace = obj["trace"] if isinstance(obj.get("trace"), dict) else obj
    observations = obj.get("observations") or []
    if observations and all(isinstance(o, str) for o in observations):
        rows.error(k, "observation ids only", _IDS_ONLY, raw=obj)
        return
    for obs in observations:
        _one(rows, k, obs, trace)


def _one(rows: Rows, k: int, obs: Any, trace: dict | None) -> None:
    if not isinstance(obs, dict) or not obs.get("id"):
        rows.error(k, "not a Langfuse observation", "not a Langfuse observation (an object with an id)", raw=obs)
        return
    observation_row(rows, k, obs, trace)


def _merge(base: dict, body: dict) -> None:
    for key, val in body.items():
        if val is None:
            continue
        if key == "metadata" and isinstance(val, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **val}
        else:
            base[key] = val


def batch_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of Langfuse ingestion batches: events merged in order (see the module docstring).

    Examples
    --------
    >>> batch = {"batch": [
    ...     {"type": "trace-create", "body": {"id": "t1", "userId": "u1", "name": "support"}},
    ...     {"type": "generation-create", "body": {"id": "g1", "traceId": "t1", "model": "gpt-4o",
    ...                                            "startTime": "2025-11-20T10:00:00Z"}},
    ...     {"type": "generation-update", "body": {"id": "g1", "endTime": "2025-11-20T10:00:01.5Z",
    ...                                            "usage": {"input": 10, "output": 3}}},
    ...     {"type": "score-create", "body": {"id": "s1", "traceId": "t1", "name": "quality", "value": 1}}]}
    >>> r = batch_rows([(1, batch, None, None)])
    >>> v = r.values[0]
    >>> r.k, v["call_id"], v["operation"], v["latency_ms"], v["input_tokens"], v["output_tokens"], v["user_id"]
    ([2], 'g1', 'chat', 1500.0, 10, 3, 'u1')
    """
    rows = Rows() if rows is None else rows
    traces: dict[str, dict] = {}
    obs: dict[str, tuple[int, dict]] = {}
    index = 0
    for k, doc, raw, err in records:
        if err is not None:
            rows.error(k, err, err, raw=raw)
            continue
        events = doc.get("batch") if is_batch(doc) else None
        if events is None:
            rows.error(k, "not a Langfuse batch", "not a Langfuse ingestion batch ({\"batch\": [...]})", raw=doc)
            continue
        for ev in events:
            index += 1
            typ = str(ev.get("type", "")) if isinstance(ev, dict) else ""
            body = ev.get("body") if isinstance(ev, dict) else None
            if not isinstance(body, dict):
                rows.error(index, "not a Langfuse event", "not a Langfuse ingestion event (type and body)", raw=ev)
                continue
            kind, _, action = typ.rpartition("-")
            if kind == "trace":
                tid = body.get("id") or ev.get("id")
                if tid is not None:  # (a trace without an id is no observation's: not one keyed by the text "None")
                    _merge(traces.setdefault(str(tid), {}), body)
            elif action in ("create", "update") and (kind.upper() in TYPES or kind == "observation"):
                oid = first(body.get("id"), ev.get("id"))
                oid = None if oid is None else str(oid)
                # (without any id an event is a row of its own, quarantined: missing call_id)
                pos, cur = obs.setdefault(oid if oid is not None else f"\0{index}", (index, {"id": oid}))
                if kind != "observation":
                    cur.setdefault("type", kind.upper())
                _merge(cur, body)
                if kind == "observation" and body.get("type"):
                    cur["type"] = str(body["type"]).upper()
            # score-create, sdk-log: not calls
    for oid, (pos, o) in obs.items():
        o.setdefault("type", "SPAN")
        tid = o.get("traceId")
        observation_row(rows, pos, o, traces.get(str(tid)) if tid is not None else None)
    return rows
