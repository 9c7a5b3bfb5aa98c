"""LiteLLM: the StandardLoggingPayload its callbacks log, and the rows of its SpendLogs table.

Format ``litellm``: JSON lines, a JSON array or documents of ``StandardLoggingPayload`` objects (``id``,
``call_type``, ``startTime``/``endTime``/``completionStartTime`` as epoch seconds, ``response_cost``, ``metadata``...),
or of ``LiteLLM_SpendLogs`` rows (``request_id``, ``startTime``/``endTime``/``completionStartTime`` as naive
``YYYY-MM-DD HH:MM:SS.ffffff`` UTC or ISO, ``spend``, ``user``, ``end_user``, ``status``, ``cache_hit``), also as the
CSV export of the spend logs table (every cell text; ``metadata`` as JSON text). One record is one call:

==================  ==============================================================================================
column              source (first present)
==================  ==============================================================================================
call_id             ``id`` (payload), ``request_id`` (spend log); trace_id: ``trace_id``
ts, end_ts          ``startTime``, ``endTime``; latency: their difference, else ``request_duration_ms``
ttft_ms             ``completionStartTime - startTime`` when the first chunk came before the end (LiteLLM sets
                    ``completionStartTime = endTime`` for a call that did not stream)
operation           ``call_type``: completion/acompletion -> chat, embedding/aembedding -> embeddings,
                    text_completion -> text_completion, others as written
model               ``hidden_params.litellm_model_name``, ``model``; request_model: ``model_group``, ``model``
provider            ``custom_llm_provider``
input/output tokens ``prompt_tokens``, ``completion_tokens`` (OpenAI usage: cached tokens are inside the prompt)
cache/reasoning     the usage object (``metadata.usage_object`` or ``hidden_params.usage_object``; a spend log's
                    ``metadata.additional_usage_values``):
                    ``prompt_tokens_details.cached_tokens`` or ``cache_read_input_tokens``,
                    ``cache_creation_input_tokens``, ``completion_tokens_details.reasoning_tokens``
cost_usd            ``response_cost`` (payload), ``spend`` (spend log); a **0** on a call with tokens that is not a
                    cache hit is no cost (null; kept as ``litellm.reported_cost``): LiteLLM writes 0 for a call it
                    could not price. Its logging sets ``response_cost = None`` when the model is not in its cost
                    map (``litellm/litellm_core_utils/litellm_logging.py``: "not found in completion cost map.
                    Setting 'response_cost' to None"), and the proxy's spend log stores
                    ``spend=kwargs.get("response_cost", 0)``
                    (``litellm/proxy/spend_tracking/spend_tracking_utils.py``, ``get_logging_payload``; the
                    column's default is 0.0); ``get_model_info`` also answers some unmapped names with zero rates
                    (BerriAI/litellm#42467). The workbench then prices the call from its tokens (``prices``), or
                    counts it unpriced. A cache hit costs 0 (``litellm/cost_calculator.py``,
                    ``response_cost_calculator``: ``if cache_hit ... response_cost = 0.0``): its 0 stays, as does a
                    0 with no token. A model that is free (self-hosted) is declared so in ``[[prices]]``.
user_id             ``end_user``, ``metadata.user_api_key_end_user_id``, ``user``,
                    ``metadata.user_api_key_user_id``
session_id          ``session_id``, ``metadata.session_id``, ``litellm_session_id``
feature             ``workbench.feature`` / ``feature`` in ``metadata.requester_metadata`` or
                    ``metadata.spend_logs_metadata``, else ``metadata.user_api_key_team_alias``
status              ``status`` (a spend log's ``metadata.status``) success -> ok, failure -> error (timeout when the
                    error class or text says so); error_type: ``error_information.error_class`` (or in metadata)
attributes          ``litellm.cache_hit``, ``litellm.api_base``, ``litellm.request_tags``, ``litellm.team_id``,
                    ``litellm.model_id``, ``litellm.metadata`` and the other fields, without messages/response
==================  ==============================================================================================

Examples
--------
>>> r = litellm_rows([(1, {"request_id": "r1", "call_type": "acompletion", "startTime": "2025-11-20 10:00:00.000000",
...     "endTime": "2025-11-20 10:00:01.500000", "completionStartTime": "2025-11-20 10:00:01.500000",
...     "model": "gpt-4o", "prompt_tokens": 100, "completion_tokens": 20, "spend": 0.0012, "end_user": "u9",
...     "status": "success", "cache_hit": "False"}, None, None)])
>>> v = r.values[0]
>>> v["call_id"], v["operation"], v["latency_ms"], v["ttft_ms"], v["cost_usd"], v["user_id"]
('r1', 'chat', 1500.0, None, 0.0012, 'u9')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import orjson

from workbench.io.records import MALFORMED, Rows, duration_ms, first, is_timeout, malformed, number, timestamp
from workbench.io.spans import OPERATION_ALIASES

FORMAT = "litellm"
_SKIP = {"messages", "response", "proxy_server_request", "metadata", "hidden_params", "model_map_information"}
CSV_COLUMNS = ("request_id", "startTime")
# fields that are columns, or not kept: not attributes
_NOT_ATTRIBUTES = frozenset(_SKIP | {"id", "request_id", "startTime", "endTime", "completionStartTime", "prompt_tokens",
                                     "completion_tokens", "response_cost", "spend", "model", "custom_llm_provider",
                                     "call_type", "status"})
_EMPTY_TYPES = (str, list, dict)  # the types whose empty value is no attribute


def looks_like(obj: Any) -> bool:
    """A StandardLoggingPayload or a SpendLogs row.

    Examples
    --------
    >>> looks_like({"id": "c1", "call_type": "acompletion", "startTime": 1763632800.0})
    True
    >>> looks_like({"request_id": "r1", "spend": 0.1}), looks_like({"id": "c1", "model": "gpt-4o"})
    (True, False)
    """
    if not isinstance(obj, dict):
        return False
    payload = "call_type" in obj and "id" in obj and ("startTime" in obj or "response_cost" in obj)
    spend = "request_id" in obj and ("spend" in obj or "startTime" in obj) and "call_type" in obj
    return payload or spend or ("request_id" in obj and "spend" in obj)


def _json(v: Any) -> Any:
    """CSV cells hold JSON as text."""
    if isinstance(v, str) and v[:1] in ("{", "["):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _truthy(v: Any) -> bool | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("true", "1", "yes")


def _number(v: Any) -> float | None:
    """A number as LiteLLM wrote it (a CSV export's cells are text), else None.

    >>> _number("0.0"), _number(0), _number("220000"), _number("n/a"), _number(None), _number(True), _number("nan")
    (0.0, 0.0, 220000.0, None, None, None, None)
    """
    if isinstance(v, bool):
        return None
    n = v if isinstance(v, (int, float)) else number(v)
    try:
        f = None if n is None else float(n)
    except OverflowError:  # an integer beyond a float's range
        return None
    return f if f is not None and math.isfinite(f) else None


def record_row(rows: Rows, k: int, rec: dict) -> None:
    """Append the ``calls`` row of one payload or spend-log record, or its quarantine record.

    Examples
    --------
    >>> rows = Rows()
    >>> record_row(rows, 1, {"id": "c1", "call_type": "acompletion", "startTime": 1763632800.0,
    ...                      "endTime": 1763632801.25, "completionStartTime": 1763632800.5, "model": "gpt-4o",
    ...                      "custom_llm_provider": "openai", "prompt_tokens": 100, "completion_tokens": 20,
    ...                      "response_cost": 0, "status": "success"})
    >>> v = rows.values[0]  # a 0 cost on a call with tokens is no cost: LiteLLM could not price it
    >>> v["operation"], v["latency_ms"], v["ttft_ms"], v["provider"], v["cost_usd"], v["attributes"]
    ('chat', 1250.0, 500.0, 'openai', None, {'litellm.reported_cost': 0.0})
    >>> record_row(rows, 2, {"id": "c2", "call_type": "completion", "startTime": "not a time"})
    >>> rows.kind[-1]
    'unparseable timestamp: ts'
    """
    v: dict[str, Any] = {}
    if not timestamp(v, rows, k, rec, "ts", first(rec.get("startTime"), rec.get("start_time"))):
        return
    if not timestamp(v, rows, k, rec, "end_ts", first(rec.get("endTime"), rec.get("end_time"))):
        return
    c: dict[str, Any] = {}
    if not timestamp(c, rows, k, rec, "ttft_ms", rec.get("completionStartTime")):
        return
    md = _json(rec.get("metadata"))
    md = md if isinstance(md, dict) else {}
    hp = _json(rec.get("hidden_params"))
    hp = hp if isinstance(hp, dict) else {}
    # the usage object; a spend-log row keeps the fields beyond prompt and completion tokens in
    # metadata.additional_usage_values instead
    usage = first(md.get("usage_object"), hp.get("usage_object"), md.get("additional_usage_values"))
    usage = usage if isinstance(usage, dict) else {}
    pd = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    cd = usage.get("completion_tokens_details") if isinstance(usage.get("completion_tokens_details"), dict) else {}
    req = md.get("requester_metadata") if isinstance(md.get("requester_metadata"), dict) else {}
    slm = md.get("spend_logs_metadata") if isinstance(md.get("spend_logs_metadata"), dict) else {}
    v["call_id"] = first(rec.get("id"), rec.get("request_id"))
    v["trace_id"] = first(rec.get("trace_id"), md.get("trace_id"))
    v["latency_ms"] = duration_ms(v["ts"], v["end_ts"])
    if v["latency_ms"] is None:
        v["latency_ms"] = rec.get("request_duration_ms")
    cst, v["ttft_ms"] = c.get("ttft_ms"), None
    if cst is not None and v["end_ts"] is not None and cst < v["end_ts"]:
        v["ttft_ms"] = duration_ms(v["ts"], cst)
    elif cst is not None and _truthy(rec.get("stream")):
        v["ttft_ms"] = duration_ms(v["ts"], cst)
    call_type = rec.get("call_type")
    v["operation"] = OPERATION_ALIASES.get(str(call_type), call_type)
    v["name"] = call_type
    v["provider"] = rec.get("custom_llm_provider")
    v["model"] = first(hp.get("litellm_model_name"), rec.get("model"))
    v["request_model"] = first(rec.get("model_group"), rec.get("model"))
    v["input_tokens"] = rec.get("prompt_tokens")
    v["output_tokens"] = rec.get("completion_tokens")
    v["cache_read_tokens"] = first(pd.get("cached_tokens"), usage.get("cache_read_input_tokens"))
    v["cache_write_tokens"] = usage.get("cache_creation_input_tokens")
    v["reasoning_tokens"] = cd.get("reasoning_tokens")
    v["cost_usd"] = first(rec.get("response_cost"), rec.get("spend"))
    hit = _truthy(rec.get("cache_hit"))
    # LiteLLM writes 0 for a call it could not price: see "cost_usd" in the module docstring
    unknown = _number(v["cost_usd"]) == 0 and not hit and any(_number(v[t]) for t in ("input_tokens", "output_tokens"))
    reported, v["cost_usd"] = (v["cost_usd"], None) if unknown else (None, v["cost_usd"])
    v["user_id"] = first(rec.get("end_user"), md.get("user_api_key_end_user_id"), rec.get("user"),
                         md.get("user_api_key_user_id"))
    v["session_id"] = first(rec.get("session_id"), md.get("session_id"), rec.get("litellm_session_id"))
    v["feature"] = first(req.get("workbench.feature"), req.get("feature"), slm.get("workbench.feature"),
                         slm.get("feature"), md.get("user_api_key_team_alias"))
    v["prompt_version"] = first(req.get("prompt_version"), slm.get("prompt_version"))
    v["environment"] = first(req.get("environment"), slm.get("environment"))
    # a spend-log row without a status column keeps its status and error in its metadata (a failed call read as ok)
    err = first(rec.get("error_information"), md.get("error_information"))
    err = err if isinstance(err, dict) else {}
    status = str(first(rec.get("status"), md.get("status"), "success")).strip().lower()
    v["error_type"] = first(err.get("error_class"), err.get("error_code")) if status != "success" else None
    if status in ("success", "ok"):
        v["status"] = "ok"
    elif status in ("failure", "error", "failed"):
        timed_out = is_timeout(v["error_type"], rec.get("error_str"), err.get("error_message"))
        v["status"] = "timeout" if timed_out else "error"
    else:
        v["status"] = status  # the engine quarantines an unknown status with the value
    fr = None
    resp = _json(rec.get("response"))
    if isinstance(resp, dict) and isinstance(resp.get("choices"), list) and resp["choices"]:
        ch = resp["choices"][0]
        fr = ch.get("finish_reason") if isinstance(ch, dict) else None
    v["finish_reason"] = fr
    # the other fields, without the empty ones (None, "", [], {}; a 0 or false stays)
    attrs = {f"litellm.{k2}": _json(val) for k2, val in rec.items()
             if k2 not in _NOT_ATTRIBUTES and val is not None and (val or type(val) not in _EMPTY_TYPES)}
    if hit is not None:
        attrs["litellm.cache_hit"] = hit
    if reported is not None:
        attrs["litellm.reported_cost"] = _number(reported)
    if md:
        attrs["litellm.metadata"] = md
    v["attributes"] = attrs
    rows.add(k, v, raw=rec)


def litellm_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of LiteLLM records (see the module docstring).

    Examples
    --------
    >>> r = litellm_rows([(1, {"request_id": "r1", "call_type": "embedding", "startTime": "2025-11-20 10:00:00",
    ...                        "spend": 0.0001, "status": "failure", "error_information": {"error_class": "Timeout"}},
    ...                    None, None),
    ...                   (2, {"hello": 1}, None, None)])
    >>> [(v.get("operation"), v.get("status"), v.get("error_type")) for v in r.values], r.kind
    ([('embeddings', 'timeout', 'Timeout'), (None, None, None)], [None, 'not a LiteLLM record'])
    """
    rows = Rows() if rows is None else rows
    for k, obj, raw, err in records:
        if err is not None:
            rows.error(k, err, err, raw=raw)
        elif not looks_like(obj):
            rows.error(k, "not a LiteLLM record", "not a LiteLLM StandardLoggingPayload or SpendLogs row (no id/"
                       "request_id with call_type, startTime or spend)", raw=obj)
        else:
            try:
                record_row(rows, k, obj)
            except MALFORMED as exc:
                malformed(rows, k, "LiteLLM record", exc, obj)
    return rows
