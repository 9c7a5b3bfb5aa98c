"""LangSmith: runs as its SDK and API return them, and as its bulk export writes them.

Format ``langsmith``: JSON lines, a JSON array or documents of LangSmith runs (``Client.list_runs()`` /
``read_run()`` saved with ``run.json()`` or ``run.dict()``, the API's ``{"runs": [...]}`` pages), or the Parquet
(also CSV) files of its bulk data export, whose columns are the same fields (``extra`` as JSON text). A run is one
call, a step of a trace (the LangSmith "Run (span) data format": ``id``, ``run_type``, ``start_time``...):

==================  ==============================================================================================
column              source (first present)
==================  ==============================================================================================
call_id, trace_id   ``id``, ``trace_id``; parent_id: ``parent_run_id``, else the last of ``parent_run_ids``
ts, end_ts          ``start_time``, ``end_time`` (ISO, naive = UTC; the JS SDK's epoch milliseconds too); latency:
                    their difference, else ``latency_seconds``
ttft_ms             ``first_token_time - start_time`` (a streamed run)
operation           ``run_type``: llm -> chat, embedding -> embeddings, tool -> execute_tool, others (chain,
                    retriever, prompt, parser) as written: the table of LangSmith's OpenTelemetry span kind
                    (``workbench.io.spans.SPAN_KINDS``)
model, provider     ``extra.metadata.ls_model_name`` (else ``extra.invocation_params.model`` / ``model_name``),
                    ``extra.metadata.ls_provider``
tokens              ``prompt_tokens`` (cached ones inside, as LangChain's ``usage_metadata`` counts them),
                    ``completion_tokens``; ``prompt_token_details.cache_read``, ``cache_write`` (or
                    ``cache_creation``), ``completion_token_details.reasoning``
cost_usd            ``total_cost`` (LangSmith's estimate, USD)
(usage)             counted on the model calls only (run_type llm and embedding): LangSmith gives every parent run
                    the sum of its children's tokens and cost, so a chain's or agent's totals would count its calls
                    again; there they are kept in ``attributes`` (``langsmith.prompt_tokens``...)
session_id          ``thread_id``, else the metadata key LangSmith groups a thread by: ``session_id``,
                    ``thread_id``, ``conversation_id``
user_id, feature    ``extra.metadata`` ``user_id``; ``workbench.feature`` / ``feature``; variant and
                    prompt_version from ``workbench.variant`` / ``variant``, ``prompt_version``
status              ``status`` success -> ok, error -> error (timeout when the error says so), timeout -> timeout,
                    pending or running (a run still running: no ``end_time``, so no latency) -> ok, as an OTLP span
                    without an end; cancelled or interrupted (stopped before it finished) -> error, error_type the
                    status unless the error names one; without a status, error when ``error`` is set; error_type:
                    the exception class the error starts with (``RateLimitError('...')``), else its first line
finish_reason       the first generation's ``generation_info.finish_reason`` (or its message's
                    ``response_metadata.finish_reason``)
attributes          ``langsmith.run_type``, ``langsmith.error``, ``langsmith.tags``, ``langsmith.metadata``,
                    ``langsmith.project_id`` (``session_id``: the project), ``langsmith.dotted_order``,
                    ``langsmith.feedback_stats``, ``langsmith.reference_example_id`` (never inputs or outputs)
==================  ==============================================================================================

Examples
--------
>>> run = {"id": "r1", "name": "ChatOpenAI", "run_type": "llm", "start_time": "2025-11-20T10:00:00",
...        "end_time": "2025-11-20T10:00:01.5", "trace_id": "t1", "parent_run_id": "p1", "status": "success",
...        "extra": {"metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o-mini", "user_id": "u7"}},
...        "prompt_tokens": 120, "completion_tokens": 30, "total_cost": "0.000036"}
>>> v = run_rows([(1, run, None, None)]).values[0]
>>> v["operation"], v["model"], v["provider"], v["latency_ms"], v["input_tokens"], v["cost_usd"], v["user_id"]
('chat', 'gpt-4o-mini', 'openai', 1500.0, 120, '0.000036', 'u7')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from workbench.io.records import MALFORMED, Rows, duration_ms, first, is_timeout, malformed, number, timestamp
from workbench.io.spans import SPAN_KINDS

FORMAT = "langsmith"
#: ``run_type`` -> operation: the table LangSmith's OpenTelemetry spans are read by (``langsmith.span.kind``).
_OPERATIONS = dict(SPAN_KINDS)["langsmith.span.kind"]
#: The run types whose tokens and cost are their own: the other runs repeat their children's sums.
USAGE_RUN_TYPES = ("llm", "embedding")
#: A run's usage fields -> the columns they fill on a model call.
_USAGE = {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens", "total_cost": "cost_usd"}
#: The columns that make a table a LangSmith export (Parquet, CSV).
COLUMNS = ("id", "run_type", "start_time")
#: Statuses of a run stopped before it finished: langsmith-sdk's ``RunEndStatus`` (``cancelled``, ``interrupted``),
#: LangGraph's interrupted run.
_STOPPED = ("cancelled", "canceled", "interrupted")
_ERROR_CLASS = re.compile(r"([A-Za-z_][\w.]*)(?:\(|: |$)")


def looks_like(obj: Any) -> bool:
    """A LangSmith run: ``id``, ``run_type`` and ``start_time``, or a page of them (``{"runs": [...]}``).

    >>> looks_like({"id": "r1", "run_type": "llm", "start_time": "2025-11-20T10:00:00"}), looks_like({"id": "r1"})
    (True, False)
    """
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("runs"), list) and obj["runs"] and looks_like(obj["runs"][0]):
        return True
    return all(k in obj for k in COLUMNS)


def _json(v: Any) -> Any:
    """A bulk export's (or CSV's) JSON text as its value."""
    if isinstance(v, str) and v[:1] in ("{", "["):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _dict(v: Any) -> dict:
    v = _json(v)
    return v if isinstance(v, dict) else {}


def error_type(error: Any) -> Any:
    """The error type of a run's ``error`` text: the exception class it starts with, else its first line.

    >>> error_type("RateLimitError('Rate limit reached')\\n\\nTraceback (most recent call last):"), error_type(None)
    ('RateLimitError', None)
    >>> error_type("openai.APITimeoutError: Request timed out."), error_type("the tool gave up\\nafter 3 tries")
    ('openai.APITimeoutError', 'the tool gave up')
    """
    if error is None or error == "":
        return None
    line = str(error).strip().split("\n", 1)[0]
    m = _ERROR_CLASS.match(line)
    if m and (m.group(1)[:1].isupper() or "." in m.group(1)):
        return m.group(1)
    return line[:200]


def _finish_reason(outputs: dict) -> Any:
    gens = outputs.get("generations")
    g = gens[0] if isinstance(gens, list) and gens else None
    g = g[0] if isinstance(g, list) and g else g
    if not isinstance(g, dict):
        return None
    info = g.get("generation_info") if isinstance(g.get("generation_info"), dict) else {}
    msg = g.get("message") if isinstance(g.get("message"), dict) else {}
    kw = msg.get("kwargs") if isinstance(msg.get("kwargs"), dict) else msg
    meta = kw.get("response_metadata") if isinstance(kw.get("response_metadata"), dict) else {}
    return first(info.get("finish_reason"), meta.get("finish_reason"), meta.get("stop_reason"))


def run_row(rows: Rows, k: int, run: dict) -> None:
    """Append the ``calls`` row of one run (see the module docstring), or its quarantine record.

    >>> rows = Rows()
    >>> run_row(rows, 4, {"id": "c1", "run_type": "chain", "start_time": "2025-11-20T10:00:00", "prompt_tokens": 90,
    ...                   "total_cost": 0.01})
    >>> v = rows.values[0]
    >>> v["operation"], v["input_tokens"], v["cost_usd"], v["attributes"]["langsmith.prompt_tokens"]
    ('chain', None, None, 90)
    >>> run_row(rows, 5, {"id": "c2", "run_type": "llm", "start_time": "soon"})
    >>> rows.kind[-1]
    'unparseable timestamp: ts'
    """
    v: dict[str, Any] = {}
    if not timestamp(v, rows, k, run, "ts", run.get("start_time")):
        return
    if not timestamp(v, rows, k, run, "end_ts", run.get("end_time")):
        return
    ft: dict[str, Any] = {}
    if not timestamp(ft, rows, k, run, "ttft_ms", run.get("first_token_time")):
        return
    extra = _dict(run.get("extra"))
    md = first(_dict(extra.get("metadata")) or None, _dict(run.get("metadata")))
    params = _dict(extra.get("invocation_params"))
    ptd, ctd = _dict(run.get("prompt_token_details")), _dict(run.get("completion_token_details"))
    parents = _json(run.get("parent_run_ids"))
    v["call_id"] = run.get("id")
    v["trace_id"] = run.get("trace_id")
    v["parent_id"] = first(run.get("parent_run_id"), parents[-1] if isinstance(parents, list) and parents else None)
    v["latency_ms"] = duration_ms(v["ts"], v["end_ts"])
    if v["latency_ms"] is None and run.get("latency_seconds") not in (None, ""):
        n = number(run["latency_seconds"]) if isinstance(run["latency_seconds"], str) else run["latency_seconds"]
        v["latency_ms"] = n * 1000.0 if isinstance(n, (int, float)) and not isinstance(n, bool) else n
    v["ttft_ms"] = duration_ms(v["ts"], ft.get("ttft_ms"))
    rt = run.get("run_type")
    v["operation"] = _OPERATIONS.get(str(rt).upper(), str(rt).lower()) if rt not in (None, "") else None
    v["name"] = run.get("name")
    v["provider"] = md.get("ls_provider")
    v["model"] = first(md.get("ls_model_name"), params.get("model"), params.get("model_name"))
    v["request_model"] = v["model"]
    own = str(rt).lower() in USAGE_RUN_TYPES  # (a parent run repeats its children's sums: see USAGE_RUN_TYPES)
    for key, col in _USAGE.items():
        v[col] = run.get(key) if own else None
    v["cache_read_tokens"] = ptd.get("cache_read") if own else None
    v["cache_write_tokens"] = first(ptd.get("cache_write"), ptd.get("cache_creation")) if own else None
    v["reasoning_tokens"] = ctd.get("reasoning") if own else None
    v["user_id"] = md.get("user_id")
    v["session_id"] = first(run.get("thread_id"), md.get("session_id"), md.get("thread_id"),
                            md.get("conversation_id"))
    v["feature"] = first(md.get("workbench.feature"), md.get("feature"))
    v["variant"] = first(md.get("workbench.variant"), md.get("variant"))
    pv = first(md.get("workbench.prompt_version"), md.get("prompt_version"))
    v["prompt_version"] = None if pv is None else str(pv)
    error = run.get("error")
    status = str(first(run.get("status"), "error" if error not in (None, "") else "success")).strip().lower()
    v["error_type"] = error_type(error)
    if status in ("success", "pending", "running"):
        # (pending: the run has not finished, no end_time yet; loaded as an OTLP span without an end is: no latency,
        # and ok, as nothing failed)
        v["status"] = "ok"
    elif status in ("error", "timeout"):
        v["status"] = "timeout" if status == "timeout" or is_timeout(error) else "error"
    elif status in _STOPPED:
        # a run stopped before it finished (its SDK's RunEndStatus; LangGraph's interrupted run) gave no answer: a
        # failed call, as OpenTelemetry records a cancelled operation (status error, error.type the reason)
        v["status"] = "error"
        v["error_type"] = v["error_type"] or status
    else:
        v["status"] = status  # (the engine quarantines an unknown status with the value)
    v["finish_reason"] = _finish_reason(_dict(run.get("outputs")))
    attrs: dict[str, Any] = {"langsmith.run_type": rt}
    for key, name in (("error", "langsmith.error"), ("tags", "langsmith.tags"), ("session_id", "langsmith.project_id"),
                      ("dotted_order", "langsmith.dotted_order"), ("feedback_stats", "langsmith.feedback_stats"),
                      ("reference_example_id", "langsmith.reference_example_id")):
        val = _json(run.get(key))
        if val not in (None, "", [], {}):
            attrs[name] = val
    if not own:
        for key in (*_USAGE, "total_tokens", "prompt_token_details", "completion_token_details"):
            val = _json(run.get(key))
            if val not in (None, "", {}):
                attrs[f"langsmith.{key}"] = val
    if md:
        attrs["langsmith.metadata"] = md
    v["attributes"] = attrs
    rows.add(k, v, raw=run)


def run_rows(records: Iterable[tuple[int, Any, str | None, str | None]], rows: Rows | None = None) -> Rows:
    """``calls`` rows of LangSmith runs and run pages (see the module docstring); anything else is quarantined.

    Examples
    --------
    >>> page = {"runs": [{"id": "r1", "run_type": "tool", "start_time": "2025-11-20T10:00:00", "status": "error",
    ...                   "error": "TimeoutError()"}]}
    >>> r = run_rows([(1, page, None, None), (2, {"id": "x"}, None, None)])
    >>> [(v.get("operation"), v.get("status"), v.get("error_type")) for v in r.values], r.kind
    ([('execute_tool', 'timeout', 'TimeoutError'), (None, None, None)], [None, 'not a LangSmith run'])
    """
    rows = Rows() if rows is None else rows
    for k, obj, raw, err in records:
        if err is not None:
            rows.error(k, err, err, raw=raw)
            continue
        runs = obj["runs"] if isinstance(obj, dict) and isinstance(obj.get("runs"), list) else [obj]
        for run in runs:
            if not looks_like(run) or isinstance(run.get("runs"), list):
                rows.error(k, "not a LangSmith run", "not a LangSmith run (id, run_type and start_time)", raw=run)
                continue
            try:
                run_row(rows, k, run)
            except MALFORMED as exc:
                malformed(rows, k, "LangSmith run", exc, run)
    return rows
