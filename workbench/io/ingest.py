"""Load telemetry files into the canonical tables: validated, deduplicated, bad rows quarantined, nothing lost.

``workbench ingest PATH... [--format auto|otel|otel-proto|jsonl|csv|parquet|langfuse|langfuse_batch|openinference|vercel|litellm|jaeger|zipkin|mlflow|langsmith]
[--mapping FILE.toml]`` and :func:`ingest` read OpenTelemetry GenAI spans (OTLP JSON or protobuf) and the telemetry other tools
write (Langfuse, OpenInference/Phoenix, Vercel AI SDK, LiteLLM, Jaeger, Zipkin, MLflow, LangSmith) into ``calls``, and JSONL, CSV or Parquet files with a
declared mapping into any canonical table. OTLP JSON lines and mapped files are read in DuckDB SQL, streaming from
the file; the other tools' formats are turned into canonical rows by their module (see below) and then go through
the same validation, deduplication, quarantine and lineage.

Formats and ``--format auto``
-----------------------------
Without a mapping, ``auto`` recognises a file by its content (:func:`workbench.io.sniff.detect`: gzip by its magic
bytes, Parquet, JSON lines, a JSON array, pretty-printed documents, CSV) and the summary and ``ingest_runs.format``
say what each file was read as. ``--format NAME`` forces one. A pretty-printed JSON array or document is never read
line by line: its records are its elements (numbered 1, 2, ...) or documents (numbered by their first line); with a
mapping it is rewritten one record a line for the JSONL reader.

* ``otel``: OTLP ``ExportTraceServiceRequest`` JSON (below); JSON lines in SQL, any other layout through
  :mod:`workbench.io.openinference` with the same attribute table (:data:`workbench.io.spans.SPAN_ATTRIBUTES`);
* ``langfuse``, ``langfuse_batch``: :mod:`workbench.io.langfuse` (trace exports; ingestion batches);
* ``openinference``: :mod:`workbench.io.openinference` (single protojson spans, arrays, Phoenix spans Parquet/CSV);
* ``vercel``: :mod:`workbench.io.vercel` (ReadableSpan arrays; each LLM call counted once, at the leaf);
* ``litellm``: :mod:`workbench.io.litellm` (StandardLoggingPayload, SpendLogs rows as JSON or CSV);
* ``mlflow``: :mod:`workbench.io.mlflow` (``Trace.to_json()`` of MLflow 2 and 3, ``search_traces()`` rows, span dicts);
* ``langsmith``: :mod:`workbench.io.langsmith` (runs from ``Client.list_runs()`` or the API, its bulk export's Parquet);
* ``otel-proto``: binary protobuf OTLP (``.pb``/``.binpb``, gzip too), decoded to OTLP JSON lines;
* ``jsonl``, ``csv``, ``parquet``: any table, with a mapping (below).

Timestamps of every shape become UTC (:func:`workbench.io.records.epoch_us`: ISO with an offset, naive ISO taken as
UTC, epoch numbers by their size, nanosecond strings, HrTime pairs). For records read this way, ``read`` counts the
rows the file describes (spans, observations, calls) plus unreadable records. Those formats are parsed and mapped in
Python, a batch at a time; a JSON-lines file of 40,000 lines or more has its batches mapped on every core, by worker
processes (:func:`workbench.io.sniff.arrow_batches`), into the same rows. The environment variable
``WORKBENCH_INGEST_WORKERS`` sets how many (default: one per core this process may use, at most 8; 1: none).

The invariant, per file and in total: ``read = inserted + duplicates + quarantined``.

* **read**: records in the file: non-blank lines (JSONL), spans plus unparseable lines (OTLP), data records (CSV),
  rows (Parquet). Blank lines are not records. Before loading, :func:`count_records` counts them with a reader
  independent of DuckDB (Python's csv module, a line count, the Parquet footer); a load that accounts for a different
  number fails the file (IngestError, nothing written), and a CSV that cannot be split into records (a quote never
  closed) fails before anything is loaded, naming the line of the quote.
* **duplicates**: rows whose natural key (``schema.TABLES[t].key``) is already in the table, or appeared earlier in the
  same file (the first occurrence wins).
* **quarantined**: rows written to the ``quarantine`` table with the file, line, canonical field, a reason a person can
  act on and the raw row. ``IngestSummary.reasons`` counts them by kind.

Each file is one transaction and one ``ingest_runs`` row (run id, path, sha256 of the bytes, format, table, times,
counts, workbench version, :func:`mapping_hash`); every inserted row carries ``ingest_run_id``. A file whose same
bytes were loaded whole before, as the same format, with the same mapping and version (none of its rows quarantined,
duplicated or deleted since) is not read again: every row counts as a duplicate, as reading it would find
(:func:`_replay`). A file that grew by appending since such a load (a log loaded again every day: JSON lines of any
format, or CSV, not compressed) is read from where that load stopped: its first bytes are the same (sha256 of them,
ending a line), so the records they hold are the table's, and only what was appended since is read, from a copy of it;
the quarantine names lines of the whole file, and the summary counts the earlier records as read and duplicates, as
reading the whole file would (``files[i]["appended_to"]``, :func:`_appended`). A load of the appended part extends
that run (``ingest_runs.base_run_id``), so the next day's load reads only its own new part; any row of the chain
deleted since, a mapping whose key is a hash of the fields (its repeats are numbered through the whole file), or a
beginning not known whole reads the file whole. A log still being written (``growing=True``, ``--growing``) is read
up to its last newline, from a copy of the bytes hashed: a last line not finished yet is left for the next load
(``files[i]["left_unread"]``) instead of quarantined, and the next load reads from where this one stopped. An
unreadable file, an unknown format or a bad mapping raises :class:`IngestError` (the CLI exits 2) before anything of
that file is written; all files are checked before the first one is loaded. An unexpected failure while loading a
file rolls that file back and raises :class:`IngestError`; files loaded before it stay loaded.

How a mapped file (JSONL, CSV, Parquet) is read: a file that looks clean is inserted in one read, streamed, with the
anti-join against the table and every check, guarded so that the first row a check would quarantine stops it; it
counts as loaded only when every record of the file was inserted (none already in the table, none rejected by DuckDB)
with distinct keys, and the mapped fields were found in the file's first records. Otherwise that insert is rolled
back and one pass counts what keeps the file from going straight in (rows a check quarantines, keys repeated in the
file, mapped fields no record has, records DuckDB rejects); a clean file is then inserted by a second pass. A file
loaded before (the same content) and not replayed skips the one-read attempt: a re-load is mostly duplicates, and
when the survey finds every row of the file in the table already there is no second pass at all. A file with something to
quarantine is read into a staging table first, which keeps every row's line number and raw text for the quarantine.
JSONL is parsed by DuckDB's typed JSON reader (``read_json`` with the columns the mapping reads) when it reads the
file whole: a file with a line that is not a JSON object, that repeats a key the mapping reads, or with blank lines
goes through the line reader (one JSON function call per line, every failure a reason); the lines the typed reader
cannot vouch for are read again by the line reader. Both readers give the same rows, reasons and counts
(``tests/test_ingest_typed_json.py``). OTLP JSON goes in one read the same way, without line numbers (DuckDB then
reads the file on all cores; numbering the lines takes one): its spans are not counted before, so the guard also
stops at a span whose key the table holds, and a line DuckDB rejects while reading rolls it back too. Any other OTLP
file is read again in line order, as the numbers and first occurrences of the quarantine and dedupe need.

Memory: while loading, DuckDB's ``memory_limit`` is lowered to :data:`INGEST_MEMORY_LIMIT` (512 MB; environment
variable ``WORKBENCH_INGEST_MEMORY_LIMIT``; a lower limit of the connection is kept, and the setting is put back
after), so a file larger than memory streams through and DuckDB spills to its ``temp_directory`` instead of growing.
Lines are read in buffers sized from the file's longest line (:data:`LINE_BYTES_STEPS`); a file with a line over the
first step (8 MB) is loaded with the connection's own limit (80% of RAM by default), as parsing one line takes many
times its size: lines up to :data:`MAX_LINE_BYTES` (256 MB) load, a longer one is quarantined as too long. Spill files
go to ``<database file>.ingest-spill/<pid>-<token>/`` (one folder per process; an in-memory database: the system's
temporary folder), removed when ingest closes its connection or at exit; the folders of processes killed with
SIGKILL are removed by the next ingest (:func:`remove_stale_spill`).

Line numbers (``quarantine.line_no``)
-------------------------------------
* JSONL and OTLP: the physical line of the file (1 = first line). All spans of one OTLP line share its number (the
  span itself is in ``raw``); in a file of pretty-printed documents, the line a document starts on.
* CSV: the line of the record, the header being line 1; exact unless the file has blank lines or quoted fields with
  line breaks before the record (DuckDB counts physical lines for rejected records, records for good ones).
* Parquet: the row number, 1 = first row.

OpenTelemetry GenAI spans (format ``otel``)
-------------------------------------------
What the OpenTelemetry Collector's file exporter writes: OTLP JSON, one ``ExportTraceServiceRequest`` per line
(``resourceSpans -> scopeSpans -> spans``, or the ``instrumentationLibrarySpans`` of OTLP before 0.15), or
pretty-printed documents, or an array of them; protobuf's own field names
(``resource_spans``, ``span_id``, ``string_value``, as ``MessageToJson(preserving_proto_field_name=True)`` writes them)
too, in any line of a file, whatever spelling its first line has. A line that is not JSON, or JSON without ``resourceSpans``, is quarantined. Columns of ``calls``, first attribute present wins (span attributes, then
resource attributes for the product-context columns):

============================  ==========================================================================================
column                        source
============================  ==========================================================================================
call_id, trace_id, parent_id  ``spanId``, ``traceId``, ``parentSpanId``: hex, lower-cased; base64 (protobuf's generic
                              JSON mapping) as the hex of its bytes; an empty or all-zero parent = root
ts, end_ts, latency_ms        ``startTimeUnixNano``, ``endTimeUnixNano``, their difference; 0 is "not set" (protobuf
                              leaves a zero out): a span without a start is quarantined (missing required field ts),
                              one without an end has no latency
ttft_ms                       ``gen_ai.response.time_to_first_chunk`` (seconds; Sentry's
                              ``gen_ai.response.time_to_first_token``, OpenLIT's
                              ``gen_ai.server.time_to_first_token``), else a span event whose name says
                              first token/chunk (``gen_ai.first_token``, ``first_chunk``...): event time - span start,
                              else Langfuse's ``langfuse.observation.completion_start_time`` - span start
operation                     ``gen_ai.operation.name`` (LiteLLM's call types ``acompletion``, ``aembedding``... as
                              their operation: ``workbench.io.spans.OPERATION_ALIASES``), else OpenInference ``openinference.span.kind`` (LLM -> chat,
                              EMBEDDING -> embeddings, TOOL -> execute_tool, AGENT -> invoke_agent, others lower-cased),
                              the span kinds of MLflow, Langfuse, LangSmith, Laminar and OpenLLMetry
                              (``workbench.io.spans.SPAN_KINDS``), the Vercel AI SDK's
                              ``ai.operationId`` (``*.doGenerate`` chat, the outer ``ai.generateText`` chain), a tool
                              name (execute_tool), the operation the span's name starts with ("invoke_agent triage"),
                              an agent's span naming ``gen_ai.agent.name`` and no model (invoke_agent); a span with no
                              attribute of a GenAI convention (an HTTP or database span of the trace) is ``other``,
                              never a model call (``workbench.io.spans.default_operation``)
name                          ``gen_ai.tool.name`` / ``tool.name`` for a tool span, else the span name
provider                      ``gen_ai.provider.name``, ``gen_ai.system`` (older), ``llm.provider``, ``llm.system``,
                              OpenLLMetry's older ``llm.vendor``, lower-cased ("OpenAI" is "openai")
model, request_model          ``gen_ai.response.model`` else ``gen_ai.request.model`` else ``llm.model_name`` else
                              OpenLLMetry's older ``llm.response.model`` / ``llm.request.model`` else Langfuse's
                              ``langfuse.observation.model.name``; request_model: the same without the response ones
input_tokens, output_tokens   ``gen_ai.usage.input_tokens`` / ``output_tokens`` (also the older ``prompt_tokens`` /
                              ``completion_tokens``), ``llm.token_count.prompt`` / ``llm.token_count.completion``,
                              OpenLLMetry's older ``llm.usage.prompt_tokens`` / ``llm.usage.completion_tokens``
cache_read_tokens             ``gen_ai.usage.cache_read.input_tokens``, ``llm.token_count.prompt_details.cache_read``,
                              OpenLLMetry's ``gen_ai.usage.cache_read_input_tokens``
cache_write_tokens            ``gen_ai.usage.cache_creation.input_tokens``, ``llm.token_count.prompt_details.cache_write``,
                              OpenLLMetry's ``gen_ai.usage.cache_creation_input_tokens``
reasoning_tokens              ``gen_ai.usage.reasoning.output_tokens``, ``llm.token_count.completion_details.reasoning``,
                              OpenLLMetry's ``gen_ai.usage.reasoning_tokens``
(LangSmith)                   the cache and reasoning tokens, last, from LangSmith's ``gen_ai.usage.input_token_details``
                              (``cache_read``, ``cache_creation``) and ``output_token_details`` (``reasoning``): JSON
                              or a Python dict's text (``workbench.io.spans.TOKEN_DETAILS``); kept in ``attributes``
session_id                    ``gen_ai.conversation.id``, ``session.id``, OpenLLMetry's
                              ``traceloop.association.properties.session_id``, Langfuse's ``langfuse.session.id``
user_id                       ``user.id``, ``enduser.id``, OpenLLMetry's ``traceloop.association.properties.user_id``,
                              Langfuse's ``langfuse.user.id``, LiteLLM's ``metadata.user_api_key_end_user_id`` /
                              ``metadata.user_api_key_user_id``
finish_reason                 first of ``gen_ai.response.finish_reasons``, else OpenLLMetry's
                              ``gen_ai.completion.0.finish_reason``
error_type                    ``error.type``, else a failed span's ``exception`` event's ``exception.type``, else
                              Langfuse's ``langfuse.observation.status_message`` when its level is ERROR
cost_usd                      ``workbench.cost_usd``, ``llm.cost.total``, Pydantic AI's ``operation.cost``, OpenLIT's
                              ``gen_ai.usage.cost``, LiteLLM's ``gen_ai.cost.total_cost`` (their 0 is a call they
                              could not price: no cost, kept in attributes)
(Langfuse)                    Langfuse's SDKs write usage and cost as JSON text: ``langfuse.observation.usage_details``
                              and ``cost_details`` come first in the five token columns and cost_usd, read as its export's
                              ``usageDetails`` / ``costDetails`` (``workbench.io.langfuse.span_columns``); text that is no
                              JSON object quarantines the span, naming the attribute; both kept in ``attributes``
(usage)                       not counted on a span that repeats the usage of the calls inside it: the Vercel AI SDK's
                              outer spans, and an agent run in the process (invoke_agent / create_agent, span kind not
                              CLIENT: Pydantic AI writes the run's totals on it); kept in ``attributes``
status                        ``timeout`` when error.type says so (``workbench.io.records.TIMEOUT``: "timeout", "timed
                              out", "deadline exceeded"), or a failed span's status message or exception message
                              does; ``blocked`` when a finish reason is
                              ``content_filter``; ``error`` when ``status.code`` is 2 or Langfuse's
                              ``langfuse.observation.level`` is ``ERROR``; else ``ok``
attributes                    every attribute not used above, as JSON; unused resource attributes under ``resource``,
                              the scope name under ``otel.scope.name``, other span events under ``otel.events``
============================  ==========================================================================================

Workbench attributes for product context (set them on the span, or on the resource where noted):

* ``feature``: ``workbench.feature`` / ``app.feature`` (span or resource), else the trace name of Langfuse's SDK
  (``langfuse.trace.name``) or LiteLLM's team alias (``metadata.user_api_key_team_alias``, as its logs are read),
  else the resource ``service.name``;
* ``prompt_version``: ``workbench.prompt_version``, ``gen_ai.prompt.version``, ``llm.prompt_template.version``
  (``langfuse.observation.prompt.version`` after them);
* ``variant``: ``workbench.variant``; ``attempt``: ``workbench.attempt``; ``fallback``: ``workbench.fallback``;
* ``environment``: ``deployment.environment.name`` / ``deployment.environment`` (resource or span), else
  ``langfuse.environment``;
* OpenInference's ``metadata`` JSON: its keys ``feature``, ``user_id``, ``session_id``, ``prompt_version``,
  ``variant`` (or ``workbench.feature``...) when no attribute above names them (before ``service.name`` as the
  feature: ``workbench.io.spans.METADATA``); kept in ``attributes``.

Binary protobuf OTLP (format ``otel-proto``; ``.pb``, ``.binpb``, ``.otlp``, optionally ``.gz``, or recognised by
content): one ``ExportTraceServiceRequest``, or a sequence of them each preceded by its 4-byte big-endian length (the
Collector's file exporter with ``format: proto``). :mod:`workbench.io.otlp_proto` decodes each message to one line of
OTLP JSON (a framed file read a message at a time, and decoded on every core from 16 MB), read exactly as above;
``ingest_runs`` keeps the original file's path, sha256 and format, and the line number of a quarantined span is the
number of its message.

A mapping file may override the source of any ``calls`` column for OTLP input: ``[columns] feature = "team.product"``
(an attribute name, span then resource), or ``{ field = ..., default = ..., unit = ... }``, or ``{ value = ... }``.

Mapping files (JSONL, CSV, Parquet; required for these formats)
---------------------------------------------------------------
A TOML file, read by :func:`load_mapping`::

    table = "calls"            # canonical table (required): any of schema.TABLES but ingest_runs/quarantine/judge_cache
    format = "csv"             # optional: csv | jsonl | parquet; default from the extension (.csv .tsv .jsonl .ndjson
                               #   .json .parquet, optionally .gz for csv/jsonl)
    [csv]                      # optional CSV options: delimiter (","), header (true), quote ('"'), escape ('"'),
    delimiter = ","            #   skip (0, lines skipped before the header); a first line "sep=;" (Excel's separator
                               #   hint) sets the delimiter of its file, over this one, and is skipped
    header = true              #   without a header the fields are named column0, column1, ...
    [columns]                  # canonical column = how to get it from a source row
    ts = "TIMESTAMP"                                     # a source field (JSON: a dotted path like "usage.input")
    latency_ms = { field = "duration", unit = "s" }      # *_ms columns: unit s|ms|us|ns converted to milliseconds
    ts = { field = "time", unit = "s" }                  # TIMESTAMP columns: epoch in s|ms|us|ns ...
    ts = { field = "time", format = "%d/%m/%Y %H:%M:%S" }#   ... or a strptime format; default: ISO 8601 (a zone
                                                         #   offset is converted to UTC, also after a space:
                                                         #   "10:00:00 +0100", Go's "+0100 CET")
    status = { value = "ok" }                            # a constant
    call_id = { hash = ["TIMESTAMP", "ContextTokens"] }  # stable hash of these source fields
    feature = { field = "app", default = "unknown" }     # default when the field is null, empty or missing
    error_type = { field = "err", optional = true }      # the field may be absent from a whole file (every JSONL
                                                         #   record, the CSV or Parquet header): the column is null

Unmapped columns are null, with three derivations: an unmapped key column of a table with ``hashed_key`` (calls,
feedback, events, guardrail_events) is a stable hash of all mapped source fields; ``calls.latency_ms`` is
``end_ts - ts`` when both are mapped; ``calls.model`` falls back to ``request_model``. Every required column
(``schema.Column.required``) other than such a key must be mapped.

The stable hash is the sha256 of the listed values (as a JSON list) and of the occurrence number of that content
within the file: two identical rows in one file are both kept, and loading the same file again finds them as
duplicates. Changing the mapping of a table with hashed keys changes the hashes: load a file with one mapping.

A JSONL mapping field (or hash field) that no record of the file has is an IngestError naming the mapping key (a
typo would silently null the column), and so is a CSV or Parquet field absent from the file's header, unless it is
marked ``optional = true``: then a file without it loads with the column null (or its ``default``).
A field present as JSON null is present.

Values are checked in SQL; the first problem of a row is its quarantine reason: invalid JSON, duplicate JSON key (a
key the mapping reads, repeated in the record or in an object on the path of a dotted field: readers disagree on which
value counts; a key nothing reads may repeat), missing required field,
unparseable timestamp (an ISO text must start with a 4-digit year: ``epoch``, ``infinity``, ``now``, BC dates are
refused), implausible timestamp (before :data:`EARLIEST_TS`, 2000-01-01), in the future (after the clock at ingest plus
:data:`ALLOWED_CLOCK_SKEW`, 5 minutes; ``prices.effective_from`` is exempt from both bounds), non-numeric number
(numeric text is ASCII decimal digits with an optional sign, fraction and exponent, spaces around it allowed, as
:func:`workbench.io.records.number` reads it in every format: not ``1_000``, ``nan``, ``inf`` or other scripts' digits),
not an integer, out of range, negative token count, negative latency, end before start, implausible value (over
:data:`MAX_TOKENS` tokens, :data:`MAX_DURATION_MS` for a ``*_ms`` duration (7 days), :data:`MAX_COST_USD` for
``cost_usd``, :data:`MAX_USD_PER_MTOK` for a price), unknown status (or kind/action/verdict) value, not a boolean,
not a list, nested value (an ``*_id`` column given a JSON object or list, whose text no join would find: a mapping
that names ``user`` where it means ``user.id``), and for CSV a record with the wrong number of fields or an invalid
encoding. Enumerated values
(``calls.status``, ``feedback.kind``, ``guardrail_events.action`` and ``verdict``) are lower-cased. An empty string
counts as missing. A ``user_id`` or ``session_id`` (:data:`MISSING_ID_COLUMNS`) of white space alone, or the text
``null``, ``undefined`` or ``None`` (what JavaScript and Python SDKs write for an id they do not have, in small
letters, in capitals or with a capital first, alone or after white space: :data:`MISSING_ID_SPELLINGS`) is missing too, in every format: it would count as one more user or session (a required
``events.user_id`` missing quarantines the row). The quarantine keeps a rejected record whole (DuckDB's copy of a record it rejects while reading
stops at 10,000 characters: longer ones are read again from the file).

Examples
--------
>>> import tempfile, pathlib, workbench as wb
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "log.jsonl").write_text(
...     '{"id": "a", "time": 1732000000, "dur": 1.5, "app": "support"}\\n'
...     '{"id": "b", "time": "yesterday", "dur": 0.2}\\n'
...     '{"id": "a", "time": 1732000000, "dur": 1.5, "app": "support"}\\n')
>>> _ = (d / "log.toml").write_text('table = "calls"\\n[columns]\\ncall_id = "id"\\n'
...     'ts = { field = "time", unit = "s" }\\nlatency_ms = { field = "dur", unit = "s" }\\n'
...     'feature = { field = "app", default = "unknown" }\\nstatus = { value = "ok" }\\n')
>>> db = wb.connect(":memory:")
>>> s = ingest(db, d / "log.jsonl", mapping=d / "log.toml", progress=False)
>>> s.as_dict()
{'read': 3, 'inserted': 1, 'duplicates': 1, 'quarantined': 1, 'reasons': {'unparseable timestamp: ts': 1}}
>>> db.sql("select call_id, ts, latency_ms, feature from calls").rows()
[('a', datetime.datetime(2024, 11, 19, 7, 6, 40), 1500.0, 'support')]
>>> db.sql("select line_no, field, reason from quarantine").rows()
[(2, 'ts', "unparseable timestamp in ts: 'yesterday' (expected epoch s)")]
"""

from __future__ import annotations

from workbench.errors import IngestError, first_line  # (IngestError importable from here as before)
from workbench.db import memory_passes_for, rollback, size_bytes, sql_identifier as _ident, sql_literal as _lit
from workbench.io.records import (NOT_UTF8, TIMEOUT, ZONE_AFTER_SPACE, allow_long_csv_fields, numeric_text,
                                  refuse_wide_text, strict_csv_rows)

import codecs
import datetime as _dt
import gzip
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.io import otlp_proto
from workbench.io import sniff
from workbench.io.spans import (ERROR_STATUS_CODES, GENAI_OPERATIONS, GENAI_PREFIXES, OPERATION_HINTS, OTHER_OPERATION,
                                SPAN_KINDS)
from workbench.io.spans import SPAN_ATTRIBUTES as _OTEL_DEFAULTS
from workbench.io.spans import SPAN_USED as _OTEL_USED
from workbench.io.spans import (AGENT_OPERATIONS, CLIENT_KINDS, FINISH_REASONS, KIND_DECIDES, MODEL_NAMES,
                                OPERATION_ALIASES, TTFT_SECONDS, UNPRICED_ZERO, USAGE_COLUMNS, VERCEL_OUTER,
                                VERCEL_TTFT_MS)
from workbench.io.spans import (COST_PARTS, LANGFUSE_COMPLETION_START, LANGFUSE_COST, LANGFUSE_LEVEL,
                                LANGFUSE_STATUS_MESSAGE, LANGFUSE_USAGE, METADATA, TOKEN_DETAILS)
from workbench.schema import ALLOWED_CLOCK_SKEW as _CLOCK_SKEW, TABLES, Table

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from workbench.db import Workbench

FORMATS = ("otel", "otel-proto", "jsonl", "csv", "parquet", *sniff.RECORD_FORMATS)
NOT_INGESTIBLE = ("ingest_runs", "quarantine", "judge_cache")
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
               ".parquet": "parquet", ".pq": "parquet", **{e: "otel-proto" for e in otlp_proto.EXTENSIONS}}
_UNITS_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 0.000001}
_UNITS_TO_US = {"s": 1_000_000, "ms": 1000, "us": 1, "ns": 0.001}
_ENUMS = {
    ("calls", "status"): ("ok", "error", "timeout", "blocked"),
    ("feedback", "kind"): ("thumbs", "accept", "edit", "copy", "rating"),
    ("guardrail_events", "action"): ("pass", "block", "redact", "flag"),
    ("guardrail_events", "verdict"): ("bad", "good"),
}
# A record/unit separator pair: no JSON text contains it unescaped, so each physical line is one value. A line that
# does contain it raw is rejected by DuckDB and quarantined (never dropped).
_RAW_DELIM = "\\x1e\\x1f"
# OTLP exports put a whole batch on one line; DuckDB's 2 MB default is too small for big batches. DuckDB reads a file
# in buffers of twice its line limit and processes a buffer's lines together, so the limit bounds the memory: a file is
# read with the smallest of these that holds its longest line (measured while hashing it). A line over the largest is
# quarantined as too long. (DuckDB silently skips a line longer than its buffer, so the buffer always holds the
# longest line.)
LINE_BYTES_STEPS = (8 * 1024 * 1024, 64 * 1024 * 1024, 256 * 1024 * 1024)
MAX_LINE_BYTES = LINE_BYTES_STEPS[-1]
# DuckDB's memory limit while loading (default 80% of RAM); beyond it DuckDB spills to its temp_directory, so files
# larger than memory load in bounded memory. A lower limit already set on the connection is kept.
# Override with the WORKBENCH_INGEST_MEMORY_LIMIT environment variable (e.g. "2GB"; "" keeps the connection's).
INGEST_MEMORY_LIMIT = "512MB"
_HASH_CHUNK = 1 << 20
# A blank line (not a record): only white space, as Python's str.isspace() has it.
_BLANK_RE = r"[\s\x0b\x1c-\x1f\x{85}\p{Z}]*"
# Timestamps outside years 1..9999 are treated as unparseable (microseconds since the epoch).
_TS_MIN_US, _TS_MAX_US = -62135596800 * 10**6, 253402300799 * 10**6

# Plausibility bounds: a value outside them is quarantined with a reason naming the bound (see the module docstring).
# Timestamps: not before EARLIEST_TS (a zero or default clock: 0, -1, "epoch", year 0, BC) and not after the clock of
# the ingest plus ALLOWED_CLOCK_SKEW ("in the future": one such row would move "now" of every report and alert).
# prices.effective_from is exempt (a price list may start at 1970-01-01, or announce a future price).
EARLIEST_TS = _dt.datetime(2000, 1, 1)
ALLOWED_CLOCK_SKEW = _CLOCK_SKEW  # (5 minutes, workbench.schema: slo and budget refuse an `at` past it too)
MAX_TOKENS = 1_000_000_000  # *_tokens of one call
MAX_DURATION_MS = 7 * 24 * 3600 * 1000.0  # *_ms of one call: 7 days
MAX_COST_USD = 10_000.0  # cost_usd of one call
MAX_USD_PER_MTOK = 100_000.0  # prices: *_usd_per_mtok
_TS_EXEMPT = {("prices", "effective_from")}
# Who and which conversation: a value that names no one is missing, not a user. Besides "" (missing in every column),
# white space alone and what SDKs write for an id they do not have (JavaScript's null and undefined, Python's None,
# as text) would each load as one more user or session: a DAU of 5 where 2 people used the product.
MISSING_ID_COLUMNS = ("user_id", "session_id")
MISSING_ID_TEXTS = ("null", "undefined", "none")
#: ... as SDKs spell them: small letters, capitals, a capital first
MISSING_ID_SPELLINGS = tuple(dict.fromkeys(f(w) for w in MISSING_ID_TEXTS for f in (str.lower, str.upper, str.title)))
_MISSING_ID_RE = r"(?i)\s*(" + "|".join(MISSING_ID_TEXTS) + r")?\s*"


def _missing_id_sql(base: str) -> str:
    """``base`` (an id column's text) as NULL when it names no one (:data:`MISSING_ID_SPELLINGS`, or white space alone
    or before one of them). The pattern runs only on a text that is one of the spellings or starts with white space
    (it sorts before "!"): on every id it cost about 0.2 us a row (a load of 1M mapped JSON lines took 7-25% longer),
    guarded it is within the noise of that load.

    >>> print(_missing_id_sql('"u"')[:40])
    CASE WHEN ("u" < '!' OR "u" IN ('null',
    """
    spellings = ", ".join(map(_lit, MISSING_ID_SPELLINGS))
    return (f"CASE WHEN ({base} < '!' OR {base} IN ({spellings})) AND regexp_full_match({base}, "
            f"{_lit(_MISSING_ID_RE)}) THEN NULL ELSE {base} END")


# --------------------------------------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class ColumnSpec:
    """How one canonical column is obtained from a source row (one of field, value or hash).

    Examples
    --------
    >>> m = load_mapping({"table": "calls", "columns": {"call_id": {"hash": ["session", "n"]},
    ...                                                 "status": {"value": "ok"}, "ts": {"field": "t", "unit": "s"}}})
    >>> m.columns["ts"]
    ColumnSpec(column='ts', field='t', value=None, has_value=False, hash=None, unit='s', format=None, default=None,
               optional=False)
    >>> [(c.field, c.value, c.has_value, c.hash) for c in (m.columns["status"], m.columns["call_id"])]
    [(None, 'ok', True, None), (None, None, False, ('session', 'n'))]
    """

    column: str
    field: str | None = None
    value: Any = None
    has_value: bool = False
    hash: tuple[str, ...] | None = None
    unit: str | None = None
    format: str | None = None
    default: Any = None
    optional: bool = False  # the field may be absent from a whole file (every JSONL record, the CSV or Parquet header)


@dataclass(frozen=True)
class Mapping:
    """A parsed and validated mapping file (see the module docstring for the TOML format).

    Examples
    --------
    >>> m = load_mapping({"table": "calls", "format": "jsonl",
    ...                   "columns": {"call_id": "id", "ts": {"field": "t", "unit": "s"}, "status": {"value": "ok"}}})
    >>> m.table, m.format, m.source, sorted(m.columns), m.target.key
    ('calls', 'jsonl', '<mapping>', ['call_id', 'status', 'ts'], ('call_id',))
    """

    table: str
    columns: dict[str, ColumnSpec]
    format: str | None = None
    csv: dict[str, Any] = field(default_factory=dict)
    source: str = "<mapping>"
    otel_only: bool = False  # loaded without a table: an attribute override for OTLP input only

    @property
    def target(self) -> Table:
        return TABLES[self.table]


_SPEC_KEYS = {"field", "value", "hash", "unit", "format", "default", "optional"}
_CSV_KEYS = {"delimiter": str, "header": bool, "quote": str, "escape": str, "skip": int}


def load_mapping(path: str | os.PathLike | dict | Mapping, *, otel: bool = False) -> Mapping:
    """Parse and validate a mapping TOML file (or an already loaded dict); errors name the file and the key.

    Parameters
    ----------
    path : path, dict or Mapping
        The TOML file, or its content as a dict.
    otel : bool
        The mapping overrides OTLP attribute names: ``table`` may be omitted (it must be ``calls``) and required
        columns need not be mapped.

    Examples
    --------
    >>> m = load_mapping({"table": "feedback", "columns": {"ts": {"field": "t", "unit": "ms"}, "kind": "kind"}})
    >>> m.table, m.columns["ts"].unit, m.columns["kind"].field
    ('feedback', 'ms', 'kind')
    >>> load_mapping({"table": "feedback", "columns": {"colour": "c"}})
    Traceback (most recent call last):
    ...
    workbench.errors.IngestError: <mapping>: [columns] colour: table feedback has no column 'colour'; columns: ...
    """
    if isinstance(path, Mapping):
        return path
    if isinstance(path, dict):
        data, src = path, "<mapping>"
    else:
        p = Path(path)
        src = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IngestError(f"{src}: no such mapping file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise IngestError(f"{src}: cannot read the mapping file: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise IngestError(f"{src}: not valid TOML: {exc}") from None
    unknown = set(data) - {"table", "format", "csv", "columns"}
    if unknown:
        raise IngestError(f"{src}: unknown key(s) {', '.join(sorted(unknown))}; expected table, format, [csv], [columns]")
    table = data.get("table", "calls" if otel else None)
    if not isinstance(table, str):
        raise IngestError(f"{src}: table: required, the canonical table to load, e.g. table = \"calls\"")
    if table not in TABLES or table in NOT_INGESTIBLE:
        ok = ", ".join(t for t in TABLES if t not in NOT_INGESTIBLE)
        raise IngestError(f"{src}: table: unknown or not loadable table {table!r}; expected one of {ok}")
    if otel and table != "calls":
        raise IngestError(f"{src}: table: OpenTelemetry spans load into calls, not {table!r}")
    fmt = data.get("format")
    if fmt is not None and fmt not in ("csv", "jsonl", "parquet"):
        raise IngestError(f"{src}: format: expected csv, jsonl or parquet, got {fmt!r}")
    csv = data.get("csv", {})
    if not isinstance(csv, dict):
        raise IngestError(f"{src}: [csv]: expected a table of CSV options")
    for key, val in csv.items():
        want = _CSV_KEYS.get(key)
        if want is None:
            raise IngestError(f"{src}: [csv] {key}: unknown option; expected {', '.join(_CSV_KEYS)}")
        if not isinstance(val, want) or (want is int and isinstance(val, bool)):
            raise IngestError(f"{src}: [csv] {key}: expected {want.__name__}, got {val!r}")
        if key in ("quote", "escape") and (len(val.encode("utf-8")) > 1 or val in "\r\n" and val):
            raise IngestError(f"{src}: [csv] {key}: expected one ASCII character (or \"\" for none), got {val!r}")
        if key == "delimiter" and not (0 < len(val.encode("utf-8")) <= 4 and not set(val) & {"\r", "\n", "\0"}):
            raise IngestError(f"{src}: [csv] delimiter: expected 1 to 4 bytes without line breaks, got {val!r}")
        if key == "skip" and val < 0:
            raise IngestError(f"{src}: [csv] skip: expected a count of lines >= 0, got {val!r}")
    delim = csv.get("delimiter", ",")
    for key in ("quote", "escape"):
        if csv.get(key) and csv[key] in delim:  # DuckDB's reader refused it with its own words, naming no mapping
            raise IngestError(f"{src}: [csv] {key} {csv[key]!r} is also the delimiter {delim!r}; set one of them "
                              f"to another character")
    cols = data.get("columns", {})
    if not isinstance(cols, dict) or (not cols and not otel):
        raise IngestError(f"{src}: [columns]: required, canonical column = source field")
    t = TABLES[table]
    specs: dict[str, ColumnSpec] = {}
    for name, raw in cols.items():
        where = f"{src}: [columns] {name}"
        if name not in t.names:
            raise IngestError(f"{where}: table {table} has no column {name!r}; columns: {', '.join(t.names)}")
        specs[name] = _parse_spec(name, raw, t, where, otel=otel)
        if specs[name].hash and name not in t.key:
            # the hash numbers repeats to keep identical rows apart: right for a key, wrong for a value shared by rows
            raise IngestError(f"{where}: hash is for the key of {table} ({', '.join(t.key)}), whose repeats it "
                              f"numbers; map {name} to a field (e.g. {name} = \"session\") to share its value")
        if any("\x00" in f for f in (specs[name].field, *(specs[name].hash or ())) if isinstance(f, str)):
            raise IngestError(f"{where}: a field name holds a NUL character")
    if not otel:
        for c in t.required:
            if c not in specs and not (t.hashed_key and t.key == (c,)):
                raise IngestError(
                    f"{src}: [columns] {c}: required column of {table} is not mapped; map a field, "
                    f"or give a constant: {c} = {{ value = ... }}"
                )
    return Mapping(table=table, columns=specs, format=fmt, csv=dict(csv), source=src,
                   otel_only=otel and "table" not in data)


def _parse_spec(name: str, raw: Any, t: Table, where: str, *, otel: bool) -> ColumnSpec:
    ctype = t.column(name).type
    if isinstance(raw, str):
        raw = {"field": raw}
    if not isinstance(raw, dict):
        raise IngestError(f"{where}: expected a field name or a table like {{ field = ... }}, got {raw!r}")
    bad = set(raw) - _SPEC_KEYS
    if bad:
        raise IngestError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; expected one of {', '.join(sorted(_SPEC_KEYS))}")
    given = [k for k in ("field", "value", "hash") if k in raw]
    if len(given) != 1:
        raise IngestError(f"{where}: give exactly one of field, value or hash")
    fld, hsh = raw.get("field"), raw.get("hash")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise IngestError(f"{where}: optional must be true or false, got {optional!r}")
    if optional and fld is None:
        raise IngestError(f"{where}: optional applies to a field")
    if fld is not None and (not isinstance(fld, str) or not fld or '"' in fld):
        raise IngestError(f"{where}: field must be a non-empty name without double quotes, got {fld!r}")
    if hsh is not None:
        if otel:
            raise IngestError(f"{where}: hash is not available for OpenTelemetry input (call_id is the span id)")
        if not isinstance(hsh, list) or not hsh or not all(isinstance(h, str) and h and '"' not in h for h in hsh):
            raise IngestError(f"{where}: hash must be a non-empty list of source field names, got {hsh!r}")
        if ctype != "VARCHAR":
            raise IngestError(f"{where}: hash gives text; column {name} is {ctype}")
    unit, fmt = raw.get("unit"), raw.get("format")
    if unit is not None:
        if unit not in _UNITS_TO_MS:
            raise IngestError(f"{where}: unit must be s, ms, us or ns, got {unit!r}")
        if not (name.endswith("_ms") or ctype == "TIMESTAMP"):
            raise IngestError(f"{where}: unit applies to *_ms and TIMESTAMP columns, not {name} ({ctype})")
    if fmt is not None:
        if ctype != "TIMESTAMP" or not isinstance(fmt, str):
            raise IngestError(f"{where}: format (a strptime format) applies to TIMESTAMP columns only")
        if unit is not None:
            raise IngestError(f"{where}: give unit (epoch) or format (strptime), not both")
        _check_strptime_format(where, fmt)
    return ColumnSpec(
        column=name, field=fld, value=raw.get("value"), has_value="value" in raw,
        hash=tuple(hsh) if hsh is not None else None, unit=unit, format=fmt, default=raw.get("default"),
        optional=optional,
    )


def _check_strptime_format(where: str, fmt: str) -> None:
    """Refuse a ``format`` DuckDB's strptime cannot read (``%Q``, an empty one) when the mapping is read, naming the
    column, rather than when the load runs (a DuckDB binder error about a format specifier, no column named)."""
    import duckdb

    try:
        duckdb.connect().execute("select try_strptime('', ?)", [fmt])
    except duckdb.Error as e:
        detail = str(e).split(": ", 1)[-1] if ": " in str(e) else str(e)
        raise IngestError(f"{where}: format {fmt!r} is not a strptime format DuckDB reads ({detail})") from None


# --------------------------------------------------------------------------------------------------------- summary


@dataclass
class IngestSummary:
    """Counts of one :func:`ingest` call, in total and per file; ``read = inserted + duplicates + quarantined``.

    ``files`` holds one dict per file: path, table, format, run_id, the four counts, ``same_as`` (the run that loaded
    the same bytes whole before, when the file was not read again for that; else None), ``appended_to`` (the run that
    loaded the file's beginning whole, when only what was appended to it since was read; its records count as read
    and duplicates, as they would reading the whole file), ``left_unread`` (with ``growing``: the bytes after the
    file's last newline, a line still being written, left for the next load; else 0) and ``seconds``: where the load's
    time went (``hash``: the sha256 and record count of the file; ``parse``: the records of a format parsed and mapped
    in Python (:mod:`workbench.io.sniff`) and staged, 0 for the formats read by DuckDB; ``validate``: the survey
    pass, or the staging with its checks and quarantine, or for a file loaded in one read the checks of its head and
    of its inserted keys; ``write``: inserting the rows).

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "log.csv").write_text("id,time,ms\\na,1732000000,120\\nb,1732000060,not a number\\na,1732000000,120\\n")
    >>> _ = (d / "log.toml").write_text('table = "calls"\\n[columns]\\ncall_id = "id"\\n'
    ...     'ts = { field = "time", unit = "s" }\\nlatency_ms = "ms"\\nstatus = { value = "ok" }\\n')
    >>> s = wb.ingest(wb.connect(":memory:"), d / "log.csv", mapping=d / "log.toml", progress=False)
    >>> s.read, s.inserted, s.duplicates, s.quarantined, s.reasons
    (3, 1, 1, 1, {'non-numeric value: latency_ms': 1})
    >>> f = s.files[0]
    >>> f["format"], f["table"], f["read"] == f["inserted"] + f["duplicates"] + f["quarantined"], sorted(f["seconds"])
    ('csv', 'calls', True, ['hash', 'parse', 'validate', 'write'])
    """

    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"read": self.read, "inserted": self.inserted, "duplicates": self.duplicates,
                "quarantined": self.quarantined, "reasons": dict(self.reasons)}

    def _add(self, f: dict, reasons: dict[str, int]) -> None:
        self.files.append(f)
        for k in ("read", "inserted", "duplicates", "quarantined"):
            setattr(self, k, getattr(self, k) + f[k])
        for r, n in reasons.items():
            self.reasons[r] = self.reasons.get(r, 0) + n

    def __str__(self) -> str:
        n = len(self.files)
        lines = [f"ingested {n} file{'s' if n != 1 else ''}: read {self.read:,}, inserted {self.inserted:,}, "
                 f"duplicates {self.duplicates:,}, quarantined {self.quarantined:,}"]
        for f in self.files:
            lines.append(f"  {f['path']} ({f['format']} -> {f['table']}, run {f['run_id']}): read {f['read']:,}, "
                         f"inserted {f['inserted']:,}, duplicates {f['duplicates']:,}, quarantined {f['quarantined']:,}"
                         + (f" (not read again: loaded whole by run {f['same_as']})" if f.get("same_as") else "")
                         + (f" (read from where run {f['appended_to']} stopped: only what was appended since)"
                            if f.get("appended_to") else "")
                         + (f" ({f['left_unread']:,} bytes after the last complete line left unread: a line still "
                            f"being written, read by the next load)" if f.get("left_unread") else "")
                         + (f" ({f['completed']:,} stored row{'s' if f['completed'] != 1 else ''} completed with "
                            f"fields {'they' if f['completed'] != 1 else 'it'} lacked, from this file's duplicates)"
                            if f.get("completed") else ""))
        if self.reasons:
            lines.append("quarantined rows by reason (see the quarantine table):")
            for r, c in sorted(self.reasons.items(), key=lambda x: (-x[1], x[0])):
                lines.append(f"  {c:>8,}  {r}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------- helpers


#: DuckDB's readers take a path as a glob pattern: "a[1].csv" would read "a1.csv", "x*.csv" every x...csv. Each
#: pattern character is written as a one-character class, which matches it and only it. They also read a path that
#: starts with "~" in the home directory, where the workbench found the file in a folder named "~": the path given
#: to them is absolute.
_GLOB_ESCAPES = str.maketrans({"[": "[[]", "*": "[*]", "?": "[?]"})


def _path_lit(path: str | os.PathLike) -> str:
    """The SQL literal of a file path for DuckDB's readers (``read_csv``, ``read_json``, ``read_parquet``): the path
    itself, never a pattern matching other files.

    >>> _path_lit("/data/a[1]*?.csv")
    "'/data/a[[]1][*][?].csv'"
    """
    return _lit(os.path.abspath(path).translate(_GLOB_ESCAPES))


def _json_paths(fld: str) -> list[str]:
    """JSON paths for a field: the literal key, then (for a dotted name) the nested path."""
    paths = ['$."' + fld + '"']
    if "." in fld:
        paths.append("$." + ".".join('"' + p + '"' for p in fld.split(".")))
    return paths


@dataclass
class _Scanned:
    """What :func:`_scan` read off a file."""

    sha256: str
    longest: int  # bytes of its longest line
    lines: int
    found: bool  # the needle occurs
    size: int = 0  # the bytes hashed
    prefixes: dict[int, tuple[str, int]] = field(default_factory=dict)  # cut -> (sha256 of the bytes before, lines)


def _scan(path: Path, needle: bytes = b"", cuts: Iterable[int] = ()) -> _Scanned:
    """sha256 of the file's bytes, the length in bytes of its longest line, its number of lines (split at ``\\n``, as
    iterating over the file does; of the decompressed text for .gz) and whether ``needle`` occurs in that text.

    ``cuts``: byte lengths of the file's beginning whose sha256 and line count are wanted too (a file that grew by
    appending since a load of its first bytes); given for those that end a line, not for .gz."""
    from concurrent.futures import ThreadPoolExecutor

    h = hashlib.sha256()
    longest = _LongestLine()
    seen = _Needle(needle)
    gz = path.name.endswith(".gz")
    todo = sorted(c for c in set(cuts) if c > 0) if not gz else []
    prefixes: dict[int, tuple[str, int]] = {}
    pos = 0
    # The hash runs on a second core while this one counts the lines (hashlib lets go of the GIL): 0.16 s and 0.12 s
    # of a 200 MB file, one after the other 0.28 s. One chunk is hashed while the next is read and counted.
    with open(path, "rb") as fh, ThreadPoolExecutor(1) as hasher:
        hashing = None
        while chunk := fh.read(_HASH_CHUNK):
            while todo and todo[0] <= pos + len(chunk):
                cut = todo.pop(0)
                if chunk[cut - pos - 1] == 10:  # the beginning ends a line
                    if hashing is not None:  # the hash of every chunk before this one
                        hashing.result()
                    part = h.copy()
                    part.update(chunk[:cut - pos])
                    prefixes[cut] = (part.hexdigest(), longest.newlines + chunk.count(b"\n", 0, cut - pos))
            done, hashing = hashing, hasher.submit(h.update, chunk)
            longest.add(chunk)
            pos += len(chunk)
            if not gz:
                seen.add(chunk)
            if done is not None:
                done.result()
        if hashing is not None:
            hashing.result()
    if gz:
        longest = _LongestLine()
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                longest.add(chunk)
                seen.add(chunk)
    return _Scanned(h.hexdigest(), longest.bytes, longest.lines, seen.found, pos, prefixes)


class _Needle:
    """Fed consecutive chunks: whether a byte string occurs in them, across chunk boundaries too.

    >>> n = _Needle(b"abcd"); [n.add(c) for c in (b"xxa", b"b", b"c", b"dyy")] and n.found
    True
    """

    def __init__(self, needle: bytes) -> None:
        self.needle, self.tail, self.found = needle, b"", False

    def add(self, chunk: bytes) -> None:
        if self.found or not self.needle:
            return
        keep = len(self.needle) - 1  # the most of it that can end a chunk without being found in it
        self.found = self.needle in chunk or self.needle in self.tail + chunk[:keep]
        if keep:
            self.tail = chunk[-keep:] if len(chunk) >= keep else (self.tail + chunk)[-keep:]


class _LongestLine:
    """Fed consecutive chunks: an upper bound of the longest line, exact for a line longer than a chunk (only lines
    crossing chunks are measured; the others are shorter than a chunk)."""

    def __init__(self) -> None:
        self.run = self.top = self.newlines = 0

    def add(self, chunk: bytes) -> None:
        first = chunk.find(b"\n")
        if first < 0:
            self.run += len(chunk)
        else:
            self.top = max(self.top, self.run + first, len(chunk))
            self.run = len(chunk) - 1 - chunk.rfind(b"\n")
            self.newlines += chunk.count(b"\n")

    @property
    def bytes(self) -> int:
        return max(self.top, self.run)

    @property
    def lines(self) -> int:
        """Lines, the last one counted whether or not a newline ends it."""
        return self.newlines + (self.run > 0)


# ------------------------------------------------------------------------------------------ counting records


def count_records(path: str | os.PathLike, fmt: str, mapping: "Mapping | None" = None) -> int | None:
    """Records in a file, counted by a reader independent of DuckDB's: the ``read`` the load must account for.

    * JSONL: non-blank physical lines (lines split at ``\\n``).
    * OTLP: None (its records are spans, many per line; the fuzz tests count them independently).
    * CSV: records as Python's :mod:`csv` module splits them (quotes open at the start of a field, ``""`` inside
      quotes), without blank lines, a first line ``sep=;`` (Excel's separator hint: its delimiter is read), the
      ``skip`` lines and the header.
    * Parquet: the row count the file's footer records (read by DuckDB's ``parquet_file_metadata``).

    Raises
    ------
    IngestError
        A CSV file that cannot be split into records: a quoted field that is never closed (the message names the
        line where it opens), or a file that cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text('a,b\\n1,"two\\nlines"\\n\\n3,4\\n')
    >>> count_records(p, "csv")
    2
    >>> _ = p.write_text('a,b\\n1,2\\n3,"never closed\\n5,6\\n')
    >>> count_records(p, "csv")
    Traceback (most recent call last):
    ...
    workbench.errors.IngestError: ...x.csv: line 3: a quoted field opens here and is never closed ...
    """
    path = Path(path)
    if fmt == "csv":  # (an Excel separator hint read as the load reads it)
        o = _excel_separator(path, mapping.csv if mapping is not None else {}, getattr(mapping, "source", None))
        mapping = replace(mapping, csv=o) if mapping is not None else Mapping("calls", {}, csv=o)
    return _count_records(path, fmt, mapping)


def _count_records(path: Path, fmt: str, mapping: "Mapping | None", spans: list[int] | None = None) -> int | None:
    """:func:`count_records`; a CSV's widest record (physical lines) appended to ``spans`` when given."""
    try:
        if fmt == "jsonl":
            return _count_lines(path)
        if fmt == "csv":
            return _count_csv(path, mapping.csv if mapping is not None else {}, spans)
        if fmt == "parquet":
            # Read by DuckDB from the file's footer, not by pyarrow: importing pyarrow and NumPy took 0.09-0.11 s of
            # every process that loads a Parquet file, and nothing else in the load needs them. The check stands: it
            # compares what the writer recorded with the rows DuckDB's reader then produces.
            import duckdb

            try:
                # offline, as every connection of the workbench: never fetch an extension
                with duckdb.connect(config={"autoinstall_known_extensions": False}) as con:
                    return con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({_path_lit(path)})"
                                       ).fetchone()[0]
            except duckdb.Error:  # not a Parquet file: the load reports it with DuckDB's own words
                return None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot read the file: {exc}") from None
    return None


def _csv_delimiter(o: dict, path: Path) -> str:
    """A CSV's field separator: the mapping's ``[csv] delimiter``, else a tab for a ``.tsv`` file, else a comma."""
    return o.get("delimiter", "\t" if _base_ext(path) == ".tsv" else ",")


def _has_header(o: dict) -> bool:
    """Whether a mapping's ``[csv]`` options say the file starts with a header line (the default)."""
    return bool(o.get("header", True))


def _count_lines(path: Path) -> int:
    return _line_counts(path)[1]


def _line_counts(path: Path) -> tuple[int, int]:
    """(physical lines, non-blank lines) of a text file, lines split at ``\\n`` (blank: only white space, as
    :meth:`str.isspace` has it)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    n = lines = 0
    with opener(path, "rb") as fh:
        for line in fh:
            lines += 1
            # a line starting with visible ASCII (every JSON object does) is not blank: no need to decode it
            if 32 < line[0] < 127 or (line.strip() and line.decode("utf-8", "replace").strip()):
                n += 1
    return lines, n


def _count_csv(path: Path, o: dict, spans: list[int] | None = None) -> int:
    plain = _count_plain_csv(path, o)  # (a record a line)
    return plain if plain is not None else _count_csv_records(path, o, spans)


def _count_plain_csv(path: Path, o: dict) -> int | None:
    """Records of a CSV file without a quote or escape character, a blank line or a lone CR: each line is one, so
    they are counted by bytes, without Python's csv module (several times faster). None for any other file."""
    if int(o.get("skip", 0)):
        return None
    quote = o.get("quote", '"')
    special = [c.encode() for c in {quote, o.get("escape", quote)} if c]
    opener = gzip.open if path.name.endswith(".gz") else open
    newlines, last, prev = 0, b"", b"\n"  # prev: as if a line ended before the file (a leading blank line shows)
    with opener(path, "rb") as fh:
        head = fh.read(3)
        chunks = chain([] if head == b"\xef\xbb\xbf" else [head], iter(lambda: fh.read(_HASH_CHUNK), b""))
        for chunk in chunks:
            if not chunk:
                continue
            # (a CR is looked for first: most files have none, and a one-byte search is 10-20x faster than the
            # counts and the three-byte search that only a file with CRs needs)
            cr = b"\r" in chunk or b"\r" in prev[-2:]
            if any(c in chunk for c in special) or cr and chunk.count(b"\r") != chunk.count(b"\r\n"):
                return None
            edge = prev[-2:] + chunk[:3]
            if b"\n\n" in chunk or b"\n\n" in edge or cr and (b"\n\r\n" in chunk or b"\n\r\n" in edge):
                return None  # a blank line: the csv module skips it
            newlines += chunk.count(b"\n")
            prev = last = chunk
    lines = newlines + (bool(last) and not last.endswith(b"\n"))
    return max(lines - _has_header(o), 0)


def _count_csv_records(path: Path, o: dict, spans: list[int] | None = None) -> int:
    """CSV records as Python's csv module splits them; the most physical lines one spans appended to ``spans``."""
    import csv

    delim = _csv_delimiter(o, path)
    quote = o.get("quote", '"')
    escape = o.get("escape", quote)
    opts: dict[str, Any] = {"strict": True}
    if not quote:
        opts["quoting"] = csv.QUOTE_NONE
    else:
        opts["quotechar"] = quote
        if escape and escape != quote:
            opts.update(escapechar=escape, doublequote=False)
    # a multi-character delimiter only separates fields; records are what is counted, so one character stands for it
    one = delim if len(delim) == 1 else "\x1f"
    allow_long_csv_fields()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        skipped = 0
        for _ in range(int(o.get("skip", 0))):
            skipped += bool(fh.readline())
        lines = fh if len(delim) == 1 else (ln.replace(delim, one) for ln in fh)
        reader = csv.reader(lines, delimiter=one, **opts)
        n, header = 0, _has_header(o)
        prev, widest = skipped + 1, 1
        for start, rec, err in strict_csv_rows(reader, path, quote=quote, line_offset=skipped):
            widest, prev = max(widest, start - prev), start  # (blank lines before a record count in: a bound)
            if err is not None:
                rec = [""]  # a malformed record (DuckDB rejects it): still one record
            if not rec:
                continue  # a blank line
            if header:
                header = False
                continue
            n += 1
    skip = int(o.get("skip", 0))
    if skip and (skipped < skip or header):  # the header (or the records) skipped with the lines: nothing to read
        raise IngestError(f"{path}: [csv] skip = {skip} skips {'past the end of' if skipped < skip else 'all of'} "
                          f"the file ({skipped} lines), leaving no {'header' if _has_header(o) else 'record'} to "
                          f"read; nothing was loaded: check skip in the mapping")
    if spans is not None:
        spans.append(max(widest, skipped + reader.line_num + 1 - prev))
    return n


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def _first_line(path: Path, limit: int = 1 << 20) -> bytes:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(limit)
    for line in head.splitlines():
        if line.strip():
            return line.strip()
    return b""


def _base_ext(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


@dataclass
class _Plan:
    path: Path
    fmt: str
    mapping: Mapping | None
    documents: bool = False  # read as records (workbench.io.sniff): any format of RECORD_FORMATS, OTLP not in lines
    json_records: bool = False  # mapped JSON that is an array or documents, not lines: rewritten one record a line
    lines_path: Path | None = None  # the rewritten copy that the line reader reads
    lenient: bool = False  # read lines with DuckDB's lenient CSV reader (mixed line endings)
    line_bytes: int = MAX_LINE_BYTES  # DuckDB's max_line_size and buffer_size: set from the file's longest line
    buffer_bytes: int = 2 * MAX_LINE_BYTES
    records: int | None = None  # records in the file, counted independently of DuckDB (count_records)
    record_lines: int = 1  # CSV: the most physical lines one record spans (a quoted field holding line breaks)
    growing: bool = False  # a log still being written: read up to its last complete line (ingest's ``growing``)
    lines: int | None = None  # JSONL lines (records: those not blank; counted while the file is hashed)
    # called with the share of the file read so far, as the records parsed in Python are staged (the progress bar)
    tick: Callable[[float], None] | None = field(default=None, repr=False, compare=False)


def _plan(path: Path, fmt: str, mapping: Mapping | None) -> _Plan:
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)  # (also: a gzip file's first bytes)
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the file: {exc}") from None
    if fmt not in ("parquet", "otel-proto"):
        refuse_wide_text(path)  # UTF-16 text would read as an unknown format, or as fields with NULs in their names
    if fmt == "auto":
        if mapping is not None and mapping.format:
            fmt = mapping.format
        elif (mapping is None or mapping.otel_only) and (found := sniff.detect(path)[0]) is not None:
            fmt = found  # recognised by its content
        else:
            ext = _base_ext(path)
            fmt = _EXTENSIONS.get(ext, "")
            if fmt in ("", "jsonl") and mapping is None and otlp_proto.looks_like(path):
                fmt = "otel-proto"  # binary whatever its name says (the file exporter's zstd files: traces.json)
            if fmt == "jsonl" and mapping is None:
                fmt = "otel" if _looks_otlp(path) else ""
                if not fmt:
                    raise IngestError(f"{path}: not OpenTelemetry spans, nor Langfuse, OpenInference, Vercel AI "
                                      f"SDK, LiteLLM, Jaeger, Zipkin, MLflow or LangSmith telemetry (no resourceSpans, trace, "
                                      f"batch, span, run or call); pass "
                                      f"--format NAME, or a mapping (--mapping FILE.toml) naming its table and columns")
            if not fmt:
                raise IngestError(f"{path}: unknown format {ext or '(no extension)'!r}; pass --format "
                                  f"{'|'.join(FORMATS)} (with a mapping for jsonl, csv, parquet)")
    if fmt not in FORMATS:
        raise IngestError(f"{path}: unknown format {fmt!r}; expected auto, {', '.join(FORMATS)}")
    if fmt == "parquet" and path.name.endswith(".gz"):
        raise IngestError(f"{path}: a gzip-compressed Parquet file is not supported; Parquet compresses internally")
    if fmt in ("jsonl", "csv") and not path.name.lower().endswith(".gz"):
        from workbench.io.records import GZIP_MAGIC

        if magic == GZIP_MAGIC:  # DuckDB's readers decompress by the name: the bytes would be read as text
            raise IngestError(f"{path}: the file is gzip-compressed but its name does not end in .gz; rename it "
                              f"to {path.name}.gz (or decompress it) and load it again")
    if fmt == "otel-proto":
        if mapping is not None and mapping.table != "calls":
            raise IngestError(f"{path}: OpenTelemetry spans load into calls, but the mapping {mapping.source} says "
                              f"table = {mapping.table!r}")
        return _Plan(path, fmt, mapping)
    if fmt == "otel" or fmt in sniff.RECORD_FORMATS:
        if mapping is not None and mapping.table != "calls":
            raise IngestError(f"{path}: OpenTelemetry spans load into calls, but the mapping {mapping.source} says "
                              f"table = {mapping.table!r}")
        documents = fmt != "otel" or _otel_documents(path)
        if documents and mapping is not None:
            raise IngestError(f"{path}: a mapping (attribute overrides) applies to OTLP JSON lines only; this file "
                              f"is read as {fmt}{' documents' if fmt == 'otel' else ''}")
        return _Plan(path, fmt, mapping, documents=documents)
    if mapping is not None and mapping.otel_only:
        raise IngestError(f"{path}: the mapping {mapping.source} has no table; a {fmt} file needs table = \"...\" "
                          f"and its required columns")
    if mapping is None:
        raise IngestError(f"{path}: a mapping is required for {fmt} files (--mapping FILE.toml, see workbench.io.ingest)")
    if fmt == "csv":
        mapping = replace(mapping, csv=_excel_separator(path, mapping.csv, mapping.source))
    return _Plan(path, fmt, mapping, json_records=fmt == "jsonl" and _json_records(path))


def _excel_separator(path: Path, o: dict, source: str | None = None) -> dict:
    """The ``[csv]`` options (of the mapping ``source``) as they read a CSV whose first line is Excel's separator hint (``sep=;``, ``sep=,``, ``sep=|``: what
    Excel writes, and Excel and LibreOffice read): that character is the delimiter and the line is skipped (before
    ``[csv] skip``). The file's hint wins over the mapping's ``delimiter``: it is said of this file, the mapping of
    every file it loads.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_text("sep=;\\nid;ts\\n")
    >>> _excel_separator(p, {"delimiter": ",", "skip": 1})
    {'delimiter': ';', 'skip': 2}
    """
    from workbench.io.records import excel_separator, head

    delim = excel_separator(head(path, 64))
    if delim is None:
        return o
    for key in ("quote", "escape"):
        if o.get(key, o.get("quote", '"')) == delim:
            of = f" of the mapping {source}" if source else ""
            raise IngestError(f"{path}: line 1: the separator hint sep={delim} is the CSV {key} character{of}; "
                              f"set [csv] {key} to another character")
    return {**o, "delimiter": delim, "skip": int(o.get("skip", 0)) + 1}


def _count(plan: _Plan) -> _Plan:
    """Count the plan's records (before anything is loaded: a CSV that cannot be split into records fails here)."""
    # records read by the format modules (workbench.io.sniff) or rewritten from a JSON array are counted by those
    # readers themselves; lines of JSONL, CSV rows and Parquet rows are counted here, independently of DuckDB
    # (JSONL lines are counted while the file is hashed, in _ingest_file)
    if plan.fmt != "jsonl" and not (plan.documents or plan.json_records):
        spans: list[int] = []
        plan.records = _count_records(plan.path, plan.fmt, plan.mapping, spans)
        plan.record_lines = max(spans, default=1)
    return plan


def _looks_otlp(path: Path) -> bool:
    try:
        head = _first_line(path, 1 << 16)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot read the file: {exc}") from None
    return b'"resourceSpans"' in head or head in (b"{", b"[")


def _json_records(path: Path) -> bool:
    """A mapped .json file holding a JSON array or pretty-printed documents (never read line by line)."""
    from workbench.io.records import json_layout

    if _base_ext(path) in (".jsonl", ".ndjson"):  # the name says JSON lines: each line is a record
        return False
    head = sniff.head(path)
    return json_layout(head) == "array" or (json_layout(head) == "document" and _first_line(path).endswith(
        (b"{", b"[", b",")))


#: The OTLP JSON key of protobuf's own field names (``resource_spans``; a JSON printer preserving field names)
_PROTO_NAMES = b'"resource_spans"'


def _otel_documents(path: Path) -> bool:
    """An OTLP file the SQL line reader cannot take: not JSON lines (a pretty-printed document, several of them, an
    array), gzip without a .gz name (DuckDB decompresses by the name), or lines in protobuf's own field names
    (``resource_spans``)."""
    from workbench.io.records import GZIP_MAGIC, json_layout

    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == GZIP_MAGIC else open
        with opener(path, "rb") as fh:
            head = fh.read(1 << 20)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot read the file: {exc}") from None
    if magic == GZIP_MAGIC and not path.name.lower().endswith(".gz"):
        return True
    line = head.split(b"\n", 1)[0]
    if _PROTO_NAMES in line and b'"resourceSpans"' not in line:
        # protobuf's field names (a JSON printer preserving them: resource_spans, span_id, string_value ...): the
        # record readers take either spelling, the SQL line reader the OTLP JSON one only
        return True
    first = _first_line(path) if json_layout(head) != "lines" else b""
    # a first line that does not parse but is not the opening of a document is a malformed JSON line: lines
    return json_layout(head) == "array" or (json_layout(head) == "document" and first.endswith((b"{", b"[", b",")))


# --------------------------------------------------------------------------------------------------------- the loader


def ingest(db: "Workbench | str | os.PathLike", paths: Any, *, format: str = "auto",  # noqa: A002 - CLI name
           mapping: "str | os.PathLike | dict | Mapping | None" = None, progress: bool | None = None,
           growing: bool = False) -> IngestSummary:
    """Load files into the canonical tables; see the module docstring for formats, mappings and reasons.

    Parameters
    ----------
    db : Workbench or path
        The workbench database (a path is opened with :func:`workbench.db.connect`).
    paths : str, path, or a list of them
        Files to load; a directory stands for its files (sorted, hidden files skipped).
    format : {"auto", "otel", "otel-proto", "jsonl", "csv", "parquet", "langfuse", "langfuse_batch", "openinference",
              "vercel", "litellm", "jaeger", "zipkin", "mlflow", "langsmith"}
        ``auto``: with a mapping, the mapping's ``format``, else the extension; without one, recognised from the
        content (:func:`workbench.io.sniff.detect`); a file of another extension holding protobuf OTLP traces is
        ``otel-proto``.
    mapping : path, dict or Mapping, optional
        Column mapping, required for jsonl, csv and parquet; optional attribute overrides for otel.
    progress : bool, optional
        Show a progress bar over the bytes of the files; default: only when standard error is a terminal.
    growing : bool, default False
        The files are logs still being written (a load scheduled every hour on today's log). A file of lines (JSON
        lines of any format, CSV; not compressed) is read up to its last newline, from a copy of those bytes taken
        when it is hashed: a last line without its newline is a record still being written, left for the next load
        (``files[i]["left_unread"]`` bytes) instead of quarantined as cut short, and lines appended while the load
        runs wait for the next load too. The next load reads from where this one stopped. Other files are read
        whole, as without it.

    Returns
    -------
    IngestSummary
        Totals, counts per file, quarantine reasons; ``read = inserted + duplicates + quarantined``.

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> d = pathlib.Path(tempfile.mkdtemp()); log = d / "calls.jsonl"
    >>> m = {"table": "calls", "columns": {"call_id": "id", "ts": {"field": "t", "unit": "s"},
    ...                                    "status": {"value": "ok"}}}
    >>> _ = log.write_text('{"id": "a", "t": 1763632800}\\n{"id": "b", "t": 17636')  # "b" is being written
    >>> db = wb.connect(d / "wb.duckdb")
    >>> s = ingest(db, log, mapping=m, growing=True, progress=False)
    >>> s.inserted, s.quarantined, s.files[0]["left_unread"]
    (1, 0, 22)
    >>> with log.open("a") as fh:
    ...     _ = fh.write('32801}\\n')
    >>> s = ingest(db, log, mapping=m, growing=True, progress=False)
    >>> s.inserted, s.files[0]["appended_to"] is not None
    (1, True)
    >>> db.close()

    Raises
    ------
    IngestError
        A file is missing, unreadable or of unknown format, or the mapping is invalid (nothing is written), or a
        file failed while loading (that file is rolled back).
    """
    import duckdb

    from workbench.db import as_workbench

    if format not in ("auto", *FORMATS):
        raise IngestError(f"ingest: format must be auto, {', '.join(FORMATS)}; got {format!r}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in paths:
        if isinstance(p, (str, os.PathLike)) and not os.fspath(p).strip():
            # Path("") is the current folder: an unset variable ("$FILE") loaded every file in it
            raise IngestError(f"ingest: an empty path ({os.fspath(p)!r}) names no file; give a file or a folder "
                              f"('.' for the current one)")
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")))
        else:
            files.append(p)
    if not files:
        raise IngestError("ingest: no files to load")
    m = None
    if mapping is not None:
        m = load_mapping(mapping, otel=format == "otel" or _otel_mapping(mapping))
    plans = [_plan(p, format, m) for p in files]
    for plan in plans:
        plan.growing = growing
        if not (growing and _line_file(plan)):  # (a log still being written: its complete lines are counted)
            _count(plan)
    wbench = as_workbench(db, create=True)  # ingest is one of the writers that may create a database (readers never do)
    opened_here = wbench is not db  # a path: close the connection we opened, so the file is not left locked
    con = wbench.duckdb
    # DuckDB's own progress bar (printed on standard output) would mix with ingest's own bar (on standard error) on a
    # terminal: off while loading, then as it was (off anyway when standard output is not a terminal: db.connect)
    bar_was = con.execute("SELECT current_setting('enable_progress_bar_print')").fetchone()[0]
    if bar_was:
        try:
            con.execute("SET enable_progress_bar_print = false")
        except duckdb.Error:  # a Jupyter kernel without ipywidgets: DuckDB has the bar off and refuses changes
            bar_was = False
    spill = _SpillDir(con)
    try:
        return _ingest_all(con, plans, progress)
    finally:
        if bar_was and not opened_here:
            con.execute("SET enable_progress_bar_print = true")
        if opened_here:
            wbench.close()
            spill.remove()  # the connection is closed: its spill folder can go


def _ingest_all(con: "duckdb.DuckDBPyConnection", plans: list[_Plan], progress: bool | None) -> IngestSummary:
    summary = IngestSummary()
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=sum(p.path.stat().st_size for p in plans), unit="B", unit_scale=True, desc="ingest",
                   file=sys.stderr, disable=False)
    memory = _MemoryLimit(con)
    try:
        for plan in plans:
            size = plan.path.stat().st_size
            if bar is not None:
                bar.set_postfix_str(plan.path.name)
                base = bar.n  # the bytes of the files before this one

                def tick(share: float, base: int = base, size: int = size) -> None:
                    step = base + int(min(max(share, 0.0), 1.0) * size) - bar.n
                    if step > 0:
                        bar.update(step)

                plan.tick = tick
            try:
                f, reasons = _ingest_file(con, plan, memory)
            except IngestError as exc:
                if plan.fmt not in ("jsonl", "otel") or plan.documents or "invalid state" not in str(exc):
                    raise
                plan.lenient = True
                f, reasons = _ingest_file(con, plan, memory)
            summary._add(f, reasons)
            if bar is not None and base + size > bar.n:
                bar.update(base + size - bar.n)
    finally:
        memory.restore()
        if bar is not None:
            bar.close()
    return summary


SPILL_SUFFIX = ".ingest-spill"


class _SpillDir:
    """Where DuckDB spills while loading: ``<db file>.ingest-spill/<pid>-<token>/`` (an in-memory database: the
    system's temporary folder), one folder per process. DuckDB deletes its spill files when they are freed; the
    folder is removed when ingest closes its connection, or at exit; a process killed with SIGKILL leaves its folder behind, and the next ingest
    removes every folder whose process is gone before it starts. A temp_directory the user set is kept, and so is one
    the connection has already used (DuckDB cannot switch it then)."""

    def __init__(self, con: "duckdb.DuckDBPyConnection") -> None:
        import tempfile

        self.root: Path | None = None
        self.folder: Path | None = None
        current = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
        db_file = row[0] if row and row[0] else None
        default = f"{db_file}.tmp" if db_file else ".tmp"
        if not current or current != default:
            return  # spilling disabled, or a folder the user chose
        root = Path(f"{db_file}{SPILL_SUFFIX}") if db_file else Path(tempfile.gettempdir()) / "workbench-ingest-spill"
        try:
            root.mkdir(exist_ok=True)
            remove_stale_spill(root)
            folder = root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            con.execute(f"SET temp_directory = {_lit(str(folder))}")
        except Exception:  # used already (DuckDB cannot switch), or the folder cannot be made: keep DuckDB's
            return
        self.root, self.folder = root, folder
        import atexit

        atexit.register(self.remove)  # a connection the caller closes later: at exit at the latest

    def remove(self) -> None:
        """After the connection is closed: remove this process's folder, and the root when it is empty."""
        import shutil

        if self.root is None:
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.root.rmdir()
        except OSError:
            pass  # another process's folder is in it


def remove_stale_spill(root: str | os.PathLike) -> list[Path]:
    """Remove the spill folders under ``root`` (``<pid>-<token>``) whose process is gone; return them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "999999999-dead").mkdir(); (root / f"{os.getpid()}-live").mkdir()
    >>> [p.name for p in remove_stale_spill(root)], sorted(p.name for p in root.iterdir()) == [f"{os.getpid()}-live"]
    (['999999999-dead'], True)
    """
    import shutil

    removed = []
    for d in Path(root).iterdir():
        pid = d.name.split("-", 1)[0]
        if not d.is_dir() or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # exists, owned by another user; an impossible pid is gone
    return True


class _MemoryLimit:
    """Lowers DuckDB's memory_limit to INGEST_MEMORY_LIMIT while loading (DuckDB then spills to its temp_directory
    instead of growing), never above the connection's own limit, and puts the connection's setting back after."""

    def __init__(self, con: "duckdb.DuckDBPyConnection") -> None:
        self.con = con
        self.before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        want = os.environ.get("WORKBENCH_INGEST_MEMORY_LIMIT", INGEST_MEMORY_LIMIT)
        self.base = size_bytes(want) if want and spill else None  # no temp_directory: a limit could only fail
        self.ceiling = size_bytes(self.before)
        self.current: float | None = None

    def apply(self, at_least: float) -> None:
        if self.base is None or self.ceiling is None:
            return
        limit = min(max(self.base, at_least), self.ceiling)
        if limit == self.current:
            return
        if limit >= self.ceiling:
            self.restore()
        else:
            self.con.execute(f"SET memory_limit = '{int(limit)}B'")
            self.current = limit

    def restore(self) -> None:
        if self.current is None:
            return
        self.con.execute("RESET memory_limit")
        if self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] != self.before:
            self.con.execute(f"SET memory_limit = {_lit(self.before)}")
        self.current = None


def _otel_mapping(mapping: Any) -> bool:
    """A mapping without a table, or for calls without a format, may be an OTLP override; decided per file later."""
    if isinstance(mapping, Mapping):
        return False
    if isinstance(mapping, dict):
        return "table" not in mapping
    try:
        data = tomllib.loads(Path(mapping).read_text(encoding="utf-8"))
    except Exception:  # load_mapping reports it properly
        return False
    return "table" not in data


@dataclass(frozen=True)
class _Tail:
    """A load of what was appended to a file since a run loaded its beginning whole (:func:`_appended`)."""

    base: str  # the run that loaded the beginning (itself possibly of a beginning: a chain)
    cut: int  # the bytes of the beginning
    shift: int  # the beginning's lines (CSV: without its header): the line numbers of the rest move past them
    before: int  # the records of the beginning, loaded by the chain of runs


def _ingest_file(con: "duckdb.DuckDBPyConnection", plan: _Plan, memory: "_MemoryLimit | None" = None,
                 source: tuple[Path, str, str, int] | None = None, tail: _Tail | None = None,
                 ) -> tuple[dict, dict[str, int]]:
    """Load one file in one transaction. ``source`` (path, sha256, format, bytes) names the original of a decoded
    file, or of the copy of what was appended to a file (``tail``)."""
    from workbench._version import __version__

    path = plan.path
    table = "calls" if plan.fmt in ("otel", "otel-proto") or plan.documents else plan.mapping.table
    mhash = mapping_hash(plan.mapping)
    # runs that loaded this file's beginning whole (it may have grown since): their lengths are hashed on the way
    bases = _bases(con, TABLES[table], plan, mhash) if source is None else []
    # a log still being written: only its complete lines are read (up to its last newline), the rest is left for the
    # next load; the bytes read are those hashed, from a copy (a writer may append while the load runs)
    end = _complete_end(path, *_csv_quote(plan)) if source is None and plan.growing and _line_file(plan) else None
    unread = 0
    try:
        clock = time.perf_counter()
        # protobuf's field names anywhere in OTLP JSON lines: the record reader reads both spellings, the SQL one
        # the OTLP JSON one only (a line of the other would be quarantined as "not an OTLP trace export")
        scanned = _scan(path, _PROTO_NAMES if plan.fmt == "otel" else b"", [b for _r, b, _h in bases] + [end or 0])
        if end is not None:
            unread = max(scanned.size - end, 0)
            if end and end not in scanned.prefixes:
                raise IngestError(f"{path}: the file changed while it was read (it no longer has its first {end:,} "
                                  f"bytes: rotated or rewritten?); nothing of it was loaded: load it again")
            if end:
                digest, n_lines = scanned.prefixes[end]
                scanned = replace(scanned, sha256=digest, lines=n_lines, size=end)
        content_hash, longest, lines, proto_names = scanned.sha256, scanned.longest, scanned.lines, scanned.found
        hashed = time.perf_counter() - clock
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot read the file: {exc}") from None
    if end == 0:  # not one complete line yet: no run
        counts = {"read": 0, "inserted": 0, "duplicates": 0, "quarantined": 0,
                  "seconds": {"hash": round(hashed, 4), "parse": 0.0, "validate": 0.0, "write": 0.0}}
        return _file_summary(path, table, plan.fmt, None, counts, unread), {}
    # the same bytes loaded whole before, as this format, with this mapping and version: not read again
    replayed = None if source is not None else _replay(con, TABLES[table], content_hash, plan.fmt, mhash)
    appended = _appended(con, TABLES[table], plan, bases, scanned) if replayed is None and bases else None
    if appended is not None or (end is not None and replayed is None):
        # only what was appended since (or a log's complete lines) is read, from a copy of it
        f, reasons = _load_copy(con, plan, memory, appended, (path, content_hash, plan.fmt, scanned.size))
        f["left_unread"] = unread
        return f, reasons
    if proto_names and not plan.documents and plan.mapping is None:  # (a mapping is for the SQL reader's lines)
        plan.documents = True
    if plan.fmt == "otel-proto" and replayed is None:  # decoded to OTLP JSON lines, then read as OTLP JSON
        with tempfile.TemporaryDirectory(prefix="workbench-otlp-") as tmp:
            jsonl = Path(tmp) / (path.name + ".jsonl")
            otlp_proto.file_to_jsonl(path, jsonl)
            text = replace(plan, path=jsonl, fmt="otel")
            return _ingest_file(con, text, memory, source=(path, content_hash, plan.fmt, scanned.size))
    size = scanned.size
    if source is not None:
        path, content_hash, fmt_name, size = source
    else:
        fmt_name = plan.fmt
    if plan.json_records and replayed is None:  # the line reader reads a one-record-a-line copy; its lines size the buffers
        plan.lines_path = _records_as_lines(path)
        longest = _scan(plan.lines_path).longest
    elif plan.fmt == "jsonl" and not plan.documents:
        plan.lines = lines
    if plan.record_lines > 1:  # a CSV record over several lines (quoted line breaks): DuckDB reads it as one line
        longest = max(longest, min(plan.record_lines * longest, size))
    plan.line_bytes = next((b for b in LINE_BYTES_STEPS if b > longest), LINE_BYTES_STEPS[-1])
    plan.buffer_bytes = max(2 * plan.line_bytes, longest + _HASH_CHUNK)
    if memory is not None:
        # Parsing one line takes many times its size in DuckDB's accounting (measured: a 50 MB JSONL line needs
        # over 2 GB, a 64 MB OTLP batch 1 GB): a file with a line over the first step gets the connection's own limit.
        memory.apply(float("inf") if longest > LINE_BYTES_STEPS[0] else 2 * plan.buffer_bytes)
    run_id = str(uuid.uuid4())
    started = _now()
    src = survey = ls = straight = None
    rejects_offset: int | None = None
    surveyed = 0.0
    if replayed is None and not plan.documents and plan.fmt in ("jsonl", "csv", "parquet"):
        # Built and surveyed before the transaction: they write nothing, and a typed JSON read that fails (the file
        # then goes through the line reader) must not abort it.
        _drop_temps(con)
        typed = _typed_jsonl(plan) if plan.fmt == "jsonl" else None
        if plan.fmt == "jsonl":
            src, rejects_offset = _jsonl_source(con, plan, typed=typed)
        elif plan.fmt == "csv":
            src, rejects_offset = _csv_source(con, plan)
        else:
            src, rejects_offset = _parquet_source(con, plan), None
        src.file = plan.path
        if src.direct:  # a source cheap to read twice (not the line reader)
            ls = _load_sql(src, TABLES[table], run_id)
            # a file that looks clean is inserted in one read; when it is not, it is surveyed (below)
            straight = _straight(con, src, ls, TABLES[table], plan, content_hash)
            if straight is None:
                try:
                    clock = time.perf_counter()
                    survey = _survey(con, src, ls, plan.records or plan.lines)
                    surveyed = time.perf_counter() - clock
                except Exception:  # a read that fails: the load below says why (inside the transaction)
                    survey = None
        if straight is not None:  # in its transaction, still open
            plan.records = straight["read"]
        elif plan.fmt == "jsonl" and plan.lines is not None:
            if typed is not None and survey is not None and survey.n == plan.lines:
                plan.records = plan.lines  # the typed reader read a record from every line: none is blank
            else:  # the line reader reads it, its blank lines not counted
                if typed is not None:
                    src, rejects_offset = _jsonl_source(con, plan)
                    src.file, ls, survey = plan.path, None, None
                try:
                    plan.records = _line_counts(plan.path)[1]
                except (OSError, EOFError, gzip.BadGzipFile) as exc:
                    raise IngestError(f"{path}: cannot read the file: {exc}") from None
        elif survey is not None and survey.n != plan.records:
            survey = None  # DuckDB rejected records while reading (CSV): the load below quarantines them
    if replayed is None and plan.fmt == "otel" and not plan.documents:
        # read on all cores (no line numbers) and inserted in one read when it is clean; else read again in line order
        _drop_temps(con)
        whole = _otel_source(con, plan, numbered=False)[0]
        straight = _straight(con, whole, _load_sql(whole, TABLES[table], run_id), TABLES[table], plan, content_hash)
    staged = src is None and plan.documents and replayed is None
    parsed = 0.0
    if staged:
        # Rows built in Python are staged before the transaction: each batch is appended in a statement of its own,
        # so DuckDB lets go of the batch's Arrow buffers after it (inside a transaction it keeps every registered
        # batch alive until the end: the whole file again). The staging table is the connection's own.
        _drop_temps(con)
        clock = time.perf_counter()
        try:
            src, rejects_offset = _records_source(con, plan, lines)
        except BaseException as exc:  # an interrupt too: the staging table is dropped
            _drop_temps(con)
            if isinstance(exc, Exception) and not isinstance(exc, IngestError):
                raise _not_loaded(path, fmt_name, exc, longest) from exc
            raise
        src.file = plan.path
        parsed = time.perf_counter() - clock
    if straight is None:
        con.execute("BEGIN TRANSACTION")
    try:
        if not staged:
            _drop_temps(con)
        if src is None and replayed is None and straight is None:
            src, rejects_offset = _otel_source(con, plan)
            src.file = plan.path
        counts = straight or replayed or _load(con, src, TABLES[table], run_id, str(path), rejects_offset, survey, ls,
                                               shift=tail.shift if tail is not None else 0)
        counts["completed"] = (_fill(con, TABLES[table], src, ls or _load_sql(src, TABLES[table], run_id))
                               if counts["duplicates"] and TABLES[table].fills and src is not None else 0)
        # where the time went: hashing and counting the file, parsing it in Python (the record formats), validating
        # (the survey pass, the staging with its checks and the quarantine), writing the rows into the table
        counts["seconds"] = {"hash": round(hashed, 4), "parse": round(parsed, 4),
                             "validate": round(surveyed + counts.pop("_validate"), 4),
                             "write": round(counts.pop("_write"), 4)}
        if plan.records is not None and counts["read"] != plan.records:
            # never silently lose records: the reader must account for every record the file holds
            raise IngestError(
                f"{path}: the file holds {plan.records:,} records but the {plan.fmt} reader accounted for "
                f"{counts['read']:,}; nothing of it was loaded (the file is malformed in a way that hides records: "
                f"check quotes and line endings)")
        finished = _now()
        row = [run_id, str(path), content_hash, fmt_name, table, started, finished, counts["read"],
               counts["inserted"], counts["duplicates"], counts["quarantined"], __version__, mhash, size,
               tail.base if tail is not None else None]
        con.execute(f"INSERT INTO ingest_runs VALUES ({_sql_values(row)})")
        _drop_temps(con)
        con.execute("COMMIT")
    except IngestError:
        rollback(con)
        raise
    except Exception as exc:
        rollback(con)
        raise _not_loaded(path, fmt_name, exc, longest) from exc
    finally:
        if plan.lines_path is not None:
            plan.lines_path.unlink(missing_ok=True)
            plan.lines_path = None
    reasons = counts.pop("reasons")
    return _file_summary(path, table, fmt_name, run_id, counts, unread), reasons


def _fill(con, t: Table, src: _Source, ls: _LoadSQL) -> int:
    """Stored rows completed by this load: for the columns of ``t.fills``, a value a stored row lacks (null) is taken
    from the file's rows of its key (an incident exported while open, loaded again once resolved: its resolution was
    a duplicate, and MTTR left it out for good). A value the stored row holds is never changed. Returns the rows
    changed."""
    cols = [c for c in t.fills if c in ls.out_cols]
    (key,) = t.key
    if not cols:
        return 0
    k = _ident(key)
    got = ", ".join(f"any_value({_ident(c)}) AS {_ident(c)}" for c in cols)  # (the first value that is not null)
    sets = ", ".join(f"{_ident(c)} = coalesce(d.{_ident(c)}, s.{_ident(c)})" for c in cols)
    lacks = " OR ".join(f"d.{_ident(c)} IS NULL AND s.{_ident(c)} IS NOT NULL" for c in cols)
    return con.execute(f"UPDATE {_ident(t.name)} AS d SET {sets} FROM (SELECT {k}, {got} FROM ({ls.stage(src.sql)}) "
                       f"WHERE _q_kind IS NULL GROUP BY {k}) s WHERE d.{k} = s.{k} AND ({lacks})").fetchone()[0]


def _file_summary(path: Path, table: str, fmt_name: str, run_id: str | None, counts: dict, unread: int) -> dict:
    """One file's entry of :attr:`IngestSummary.files` (``counts`` may carry ``same_as``)."""
    return {"path": str(path), "table": table, "format": fmt_name, "run_id": run_id, "same_as": None,
            "appended_to": None, **counts, "left_unread": unread}


def _bases(con, t: Table, plan: _Plan, mhash: str | None) -> list[tuple[str, int, str]]:
    """(run, bytes, sha256) of the latest runs that may have loaded this file's beginning whole: of this format,
    mapping, version and table, nothing quarantined or duplicated, shorter than the file is now (its own path's
    first). Empty for a file that cannot grow by appending records to it (see :func:`_appendable`)."""
    from workbench._version import __version__

    if not _appendable(plan, t):
        return []
    try:
        str(plan.path).encode("utf-8")
    except UnicodeEncodeError:  # a name DuckDB refuses: the load says so (_sql_values)
        return []
    same_mapping = "mapping_hash IS NULL" if mhash is None else f"mapping_hash = {_lit(mhash)}"
    return con.execute(
        f"SELECT run_id, bytes, content_hash FROM ingest_runs WHERE target_table = {_lit(t.name)} "
        f"AND format = {_lit(plan.fmt)} AND {same_mapping} AND workbench_version = {_lit(__version__)} "
        f"AND rows_read > 0 AND rows_inserted = rows_read AND rows_duplicate = 0 AND rows_quarantined = 0 "
        f"AND bytes > 0 AND bytes < {plan.path.stat().st_size} AND finished_at <= CAST({_lit(_now())} AS TIMESTAMP) "
        f"ORDER BY source_path = {_lit(str(plan.path))} DESC, finished_at DESC LIMIT 16").fetchall()


def _line_file(plan: _Plan) -> bool:
    """Whether records are written to the file a line at a time, so that its first lines are a file of the same
    records: JSON lines (OTLP, the record formats, mapped JSONL) and CSV, not compressed."""
    from workbench.io.records import GZIP_MAGIC, reads_as_lines

    path = plan.path
    try:
        with open(path, "rb") as fh:
            if path.name.endswith(".gz") or fh.read(2) == GZIP_MAGIC:
                return False
    except OSError:
        return False
    if plan.fmt in ("jsonl", "csv"):
        return not plan.json_records
    if plan.fmt == "otel" and not plan.documents:
        return True
    if plan.fmt == "otel" or plan.fmt in sniff.RECORD_FORMATS:
        return plan.fmt != "langfuse_batch" and sniff.file_layout(path) == "json" and reads_as_lines(path)
    return False


def _appendable(plan: _Plan, t: Table) -> bool:
    """Whether the file is one to which records are appended, so that a load of its beginning stays a load of the
    same records: a file of lines (:func:`_line_file`) without a key hashed from the fields (its repeats are numbered
    through the whole file) or CSV lines skipped before the header."""
    if not _line_file(plan):
        return False
    if plan.fmt in ("jsonl", "csv"):
        m = plan.mapping
        if m is None or _hash_plan(t, m.columns)[0] is not None:
            return False
        if plan.fmt == "csv":
            if m.csv.get("skip"):
                return False
            # the header line is copied before what was appended: a header of one line
            return not _has_header(m.csv) or m.csv.get("quote", '"') not in _first_line(plan.path).decode(
                "utf-8", "replace")
    return True


def _complete_end(path: Path, quote: str | None = None, delimiter: str = ",") -> int:
    """The length of the file's beginning that ends with its last complete line (0: none yet). ``quote``: the quote
    character of a CSV file (``delimiter``: its field separator), whose quoted fields may hold newlines: its beginning
    ends with the last newline outside a quoted field.

    A newline preceded by an even number of quote characters is (an escaped quote is a doubled one). An odd number
    means a quoted field still being written, or a quote inside a field that does not start with one ('12" pizza',
    which the CSV reader takes as a character): the file is then read as the reader reads it
    (:func:`_csv_records_end`), so such a record does not hold back the lines after it.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = p.write_bytes(b'a,b\\n1,x\\n2,"y\\nz')
    >>> _complete_end(p), _complete_end(p, '"')
    (13, 8)
    >>> _ = p.write_bytes(b'a,b\\n1,12" pizza\\n2,x\\n')
    >>> _complete_end(p, '"')  # the whole file: the quote of 12" is a character
    20
    """
    with open(path, "rb") as fh:
        end = _newline_before(fh, fh.seek(0, os.SEEK_END))
        if not quote or not end:
            return end
        q = quote.encode("utf-8")
        if _count_between(fh, q, 0, end) % 2 == 0:
            return end
        return _csv_records_end(fh, q, delimiter.encode("utf-8"), end)


def _csv_records_end(fh, quote: bytes, delimiter: bytes, end: int) -> int:
    """The end of the last whole CSV record in the file's first ``end`` bytes, read as the CSV reader reads quotes: a
    field that starts with the quote is quoted up to the quote that closes it (a doubled one is a quote inside it);
    in any other field a quote is a character. One regular expression match over the file mapped in memory, at
    about 50 MB/s (taken only when counting the quotes cannot settle it)."""
    import mmap
    import re

    q, d = re.escape(quote), re.escape(delimiter)
    rest = rb"(?:(?!" + d + rb")[^\n])*+"  # what follows a field's start up to the delimiter or the line's end
    field = (rb"(?>" + q + rb"(?:[^" + q + rb"]|" + q + q + rb")*+" + q + rest + rb"|(?:(?!" + d + rb")[^" + q
             + rb"\n]" + rest + rb")?+)")
    records = re.compile(rb"(?:(?>" + field + rb"(?:" + d + field + rb")*+\n))*+")
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return records.match(mm, 0, end).end()


def _newline_before(fh, pos: int) -> int:
    """The position after the last newline in the file's first ``pos`` bytes (0: none)."""
    while pos > 0:
        start = max(0, pos - _HASH_CHUNK)
        fh.seek(start)
        at = fh.read(pos - start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        pos = start
    return 0


def _count_between(fh, needle: bytes, start: int, stop: int) -> int:
    """Occurrences of a one-byte ``needle`` in the file's bytes ``[start, stop)``."""
    fh.seek(start)
    n = 0
    while start < stop and (chunk := fh.read(min(_HASH_CHUNK, stop - start))):
        n += chunk.count(needle)
        start += len(chunk)
    return n


def _csv_quote(plan: _Plan) -> tuple[str | None, str]:
    """The quote character and delimiter of a CSV plan whose quotes are escaped by doubling (the default), for
    :func:`_complete_end`; no quote for any other file (a CSV escaping quotes with another character is cut at its
    last newline)."""
    if plan.fmt != "csv" or plan.mapping is None:
        return None, ","
    o = plan.mapping.csv
    quote, delimiter = o.get("quote", '"'), _csv_delimiter(o, plan.path)
    if not quote or len(quote.encode("utf-8")) != 1 or o.get("escape", quote) != quote:
        return None, delimiter
    return quote, delimiter


def _appended(con, t: Table, plan: _Plan, bases: list[tuple[str, int, str]], scanned: _Scanned) -> _Tail | None:
    """The load of the file's beginning that the rest of it was appended to, when the beginning is the same bytes
    (sha256, ending a line) and every row of that run and of the runs it extended is still in the table: the rows the
    beginning gives are the table's, so reading it again would find every one a duplicate."""
    for run_id, cut, digest in bases:
        got = scanned.prefixes.get(cut)
        if got is None or got[0] != digest:
            continue
        before = _whole(con, t, run_id)
        if before is None:
            continue
        header = int(plan.fmt == "csv" and _has_header(plan.mapping.csv))
        return _Tail(run_id, cut, got[1] - header, before)
    return None


def _whole(con, t: Table, run_id: str) -> int | None:
    """The records a run read, with those of the runs whose file it extended (``base_run_id``), when every row they
    inserted is still in the table; else None."""
    read, inserted, runs = con.execute(
        f"WITH RECURSIVE chain(run_id, base_run_id) AS ("
        f"SELECT run_id, base_run_id FROM ingest_runs WHERE run_id = {_lit(run_id)} "
        f"UNION SELECT r.run_id, r.base_run_id FROM ingest_runs r JOIN chain c ON r.run_id = c.base_run_id) "
        f"SELECT sum(rows_read), sum(rows_inserted), list(run_id) FROM ingest_runs "
        f"WHERE run_id IN (SELECT run_id FROM chain)").fetchone()
    if read is None:
        return None
    # the run ids as literals, not the chain's subquery: a filter DuckDB runs at twice the speed of the semi-join
    # (0.11 s against 0.23 s over 20M rows)
    held = con.execute(f"SELECT count(*) FROM {_ident(t.name)} WHERE ingest_run_id IN "
                       f"({', '.join(_lit(r) for r in runs)})").fetchone()[0]
    return read if held == inserted else None


def _load_copy(con, plan: _Plan, memory: "_MemoryLimit | None", tail: _Tail | None,
               source: tuple[Path, str, str, int]) -> tuple[dict, dict[str, int]]:
    """Load the file's bytes up to the length hashed (``source``: path, sha256, format, bytes) from a copy of them:
    after ``tail.cut`` (CSV: after the header line), numbered as lines of the whole file, or all of them (a log still
    being written: what a writer appends meanwhile is not read). The counts are those of reading the whole file: the
    records of the beginning count as read and as duplicates."""
    path, size = plan.path, source[3]
    start = tail.cut if tail is not None else 0
    with tempfile.TemporaryDirectory(prefix="workbench-tail-") as tmp:
        copy = Path(tmp) / path.name
        with open(path, "rb") as src, open(copy, "wb") as out:
            if start and plan.fmt == "csv" and _has_header(plan.mapping.csv):
                out.write(src.readline())
            elif start:
                src.seek(start)
                if src.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
                    # a byte-order mark starting the appended part is inside the file, not at its start: the readers
                    # skip one at the start of what they read, so a blank line goes first (one line less of shift)
                    out.write(b"\n")
                    tail = replace(tail, shift=tail.shift - 1)
            src.seek(start)
            left = size - start
            while left > 0 and (chunk := src.read(min(_HASH_CHUNK, left))):
                out.write(chunk)
                left -= len(chunk)
        try:
            part = _count(replace(plan, path=copy, records=None, lines=None, lines_path=None))
            f, reasons = _ingest_file(con, part, memory, source=source, tail=tail)
        except IngestError as exc:  # named as the file given, at its own line numbers
            raise IngestError(_as_original(str(exc), copy, path, tail.shift if tail is not None else 0)) from None
    if tail is not None:
        f["read"] += tail.before
        f["duplicates"] += tail.before
        f["appended_to"] = tail.base
    return f, reasons


def _as_original(msg: str, copy: Path, path: Path, shift: int) -> str:
    """An error about the copy of a file's bytes (:func:`_load_copy`) as one about the file: its path, and a line
    number of the copy as the file's (the copy's lines start ``shift`` lines into it; a CSV copy's header is line 1).

    >>> _as_original("/tmp/x/a.csv: line 5: a quoted field opens here", Path("/tmp/x/a.csv"), Path("/d/a.csv"), 7)
    '/d/a.csv: line 12: a quoted field opens here'
    """
    msg = msg.replace(str(copy), str(path))
    if shift:
        msg = re.sub(r"\bline (\d+)\b", lambda m: f"line {int(m.group(1)) + shift}", msg, count=1)
    return msg


def mapping_hash(m: Mapping | None) -> str | None:
    """sha256 of what a mapping says (table, format, CSV options, columns), not of where it was read from; None for
    no mapping (a format read with its own). Two mappings with the same hash map every file to the same rows.

    >>> a = load_mapping({"table": "feedback", "columns": {"ts": {"field": "t", "unit": "ms"}, "kind": "kind"}})
    >>> b = load_mapping({"table": "feedback", "columns": {"kind": "kind", "ts": {"unit": "ms", "field": "t"}}})
    >>> mapping_hash(a) == mapping_hash(b) != mapping_hash(load_mapping({"table": "feedback", "columns": {
    ...     "ts": {"field": "t", "unit": "s"}, "kind": "kind"}}))
    True
    >>> mapping_hash(None) is None
    True
    """
    if m is None:
        return None
    # every field of the mapping and of its column specs but ``source``, read off the dataclasses: a field added to
    # either later is in the hash without anyone listing it here
    said = {f.name: getattr(m, f.name) for f in fields(m) if f.name not in ("source", "columns")}
    said["columns"] = {c: asdict(spec) for c, spec in m.columns.items()}
    # default=repr: a TOML date or time as value or default (repr names its type: a date and its text differ)
    text = json.dumps(said, sort_keys=True, default=repr, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _replay(con, t: Table, content_hash: str, fmt_name: str, mhash: str | None) -> dict | None:
    """The counts of loading again a file whose earlier load is still whole, without reading it; None when that is
    not known for sure.

    Known for sure when a run of this version loaded the same bytes (sha256) as this format, with the same mapping
    (:func:`mapping_hash`; a format's own when there is none), into this table, every record of it went in (none
    quarantined, none a duplicate), and every row it inserted is still in the table. The file then maps to the same
    rows (a record that passed the checks passes them later too, the clock being past that run's), all of whose keys
    are in the table: every record is a duplicate, as the full load would find after reading it (8 s for 100,000
    LiteLLM records, 0.9 s for 1M JSONL rows validated again; the checks here take milliseconds). A file with a record
    to quarantine, one loaded with duplicates, one whose rows were deleted since, or one recorded before runs named
    their mapping (schema version 1) is loaded in full.
    """
    from workbench._version import __version__

    same_mapping = "mapping_hash IS NULL" if mhash is None else f"mapping_hash = {_lit(mhash)}"
    for run_id, read in con.execute(
            f"SELECT run_id, rows_read FROM ingest_runs WHERE content_hash = {_lit(content_hash)} "
            f"AND target_table = {_lit(t.name)} AND format = {_lit(fmt_name)} AND {same_mapping} "
            f"AND workbench_version = {_lit(__version__)} AND rows_read > 0 AND rows_inserted = rows_read "
            f"AND rows_duplicate = 0 AND rows_quarantined = 0 AND finished_at <= CAST({_lit(_now())} AS TIMESTAMP) "
            f"ORDER BY finished_at DESC").fetchall():
        clock = time.perf_counter()
        read = _whole(con, t, run_id)  # (a run of what was appended to the file: with the runs of its beginning)
        if read is not None:
            return {"read": read, "inserted": 0, "duplicates": read, "quarantined": 0, "reasons": {},
                    "same_as": run_id, "_validate": time.perf_counter() - clock, "_write": 0.0}
    return None


def _not_loaded(path: Path, fmt_name: str, exc: Exception, longest: int) -> IngestError:
    """The error of a load that failed for a reason other than an :class:`IngestError`: nothing of it was written."""
    msg = first_line(exc)
    if "Out of Memory" in msg:
        long = f"a line of {longest / 1e6:,.0f} MB; " if longest > LINE_BYTES_STEPS[0] else ""
        msg += (f" ({long}give the load more memory: the environment variable WORKBENCH_INGEST_MEMORY_LIMIT, "
                f"or a machine with more RAM)")
    return IngestError(f"{path}: could not be loaded as {fmt_name} (nothing of it was written): {msg}")


def _records_as_lines(path: Path) -> Path:
    """A temporary JSON-lines copy of a JSON array or of pretty-printed documents: record n on line n (an element's
    position in the array, or the document's order), a part that is not JSON as one last line."""
    import tempfile

    import orjson

    from workbench.io.records import iter_json_file

    fd, name = tempfile.mkstemp(suffix=".jsonl", prefix="wb-records-")
    with os.fdopen(fd, "wb") as out:
        for _k, value, raw, err in iter_json_file(path):
            if err is not None:
                # (bytes that are not UTF-8 written back as they were: the reader quarantines their record)
                out.write(raw.replace("\n", " ").encode("utf-8", "surrogateescape") + b"\n")
            else:
                out.write(orjson.dumps(value) + b"\n")
    return Path(name)


def _drop_temps(con: "duckdb.DuckDBPyConnection") -> None:
    for t in ("_wb_stage", "_wb_rej", "_wb_rejscan", "_wb_shift", "_wb_records", "_wb_redo"):
        con.execute(f"DROP TABLE IF EXISTS temp.{t}")


# The source of a file is a SELECT with: k (line/row position), raw (text of the row), _err (a reason the whole row
# is unreadable, else NULL), and one VARCHAR column per canonical column ("s:<col>") and per hashed field ("h:<f>").


@dataclass
class _Source:
    sql: str
    cols: dict[str, ColumnSpec]  # canonical column -> spec; its text is in "s:<col>"
    hash_fields: tuple[str, ...] = ()  # fields of an explicit or whole-row hash, in "h:<i>"
    hash_column: str | None = None  # the canonical key column that is a hash
    json_cols: frozenset[str] = frozenset()  # "s:<col>" holds JSON text (JSON / list columns from JSON sources)
    fixed: dict[str, str] = field(default_factory=dict)  # canonical column -> SQL over s:* (OTLP derivations)
    err_kinds: dict[str, str] = field(default_factory=dict)
    line_reader: bool = False  # read as raw text lines (JSONL, OTLP): a "too many columns" reject is a reserved byte
    err_columns: bool = False  # the SELECT also has _err_kind and _err_field (the kind and field of its _err)
    csv_opts: dict | None = None  # CSV: the [csv] options (to re-read a rejected record whole)
    file: Path | None = None  # the file read (a decoded protobuf file is not the one named in the quarantine)
    # JSONL: mapped fields that some record must have: (mapping key, field, JSON paths, source column "s:..."/"h:...")
    presence: tuple[tuple[str, str, tuple[str, ...], str], ...] = ()
    # cheap to read twice (typed JSONL, CSV, Parquet): surveyed, and a clean file (nothing quarantined or rejected,
    # no key repeated, every mapped field found) is inserted straight from this source, without staging it
    direct: bool = False
    ordered: str | None = None  # when ``sql`` leaves k NULL: the same in line order (k the line number)
    # JSONL read by the typed reader: the line reader of the same file (the presence check reads it), its SELECT of
    # the lines in temp._wb_redo (read again: exact reasons and raw text), and the SELECT of the lines with no value
    lines: "_Source | None" = None
    redo: str | None = None
    empty: str | None = None
    # Parquet: canonical columns whose "s:<col>" holds the file's number, not its text ("DOUBLE" or "INTEGER"):
    # typed and checked to the same values, reasons and counts as its text would be, without writing and parsing it
    numbers: dict[str, str] = field(default_factory=dict)
    # OTLP JSON lines: the same reader of another file (the spans of lines rejected as not UTF-8, but for their bad
    # ones: :func:`_undecodable_spans`)
    reread: "Callable[[Path], _Source] | None" = None


def _raw_lines(path: Path, lenient: bool = False, line_bytes: int = MAX_LINE_BYTES, buffer_bytes: int = 0,
               numbered: bool = True) -> str:
    """SELECT k (physical line number), line (its text, NULL when blank) from a text file.

    ``numbered=False``: k is NULL, and DuckDB reads the file on all cores (numbering the lines takes one)."""
    size = f"max_line_size={line_bytes}, buffer_size={max(buffer_bytes, 2 * line_bytes)}"
    k, ordinality = ("k", " WITH ORDINALITY AS r({}, k)") if numbered else ("CAST(NULL AS BIGINT) AS k", "")
    if not lenient:
        return (
            f"SELECT {k}, line FROM read_csv({_path_lit(path)}, columns={{'line': 'VARCHAR'}}, header=false, "
            f"delim=E'{_RAW_DELIM}', quote='', escape='', auto_detect=false, strict_mode=true, "
            f"{size}, store_rejects=true, rejects_table='_wb_rej', "
            f"rejects_scan='_wb_rejscan'){ordinality.format('line')}"
        )
    # Mixed line endings stop the strict reader. The lenient one reads them, but skips blank lines (numbers after
    # one are off by it) and splits a line at the reserved bytes (rejoined here; anything after a second such pair is
    # lost, and the line is quarantined as invalid JSON, which raw control bytes are).
    return (
        f"SELECT {k}, CASE WHEN extra IS NULL THEN line ELSE line || E'{_RAW_DELIM}' || extra END AS line "
        f"FROM read_csv({_path_lit(path)}, columns={{'line': 'VARCHAR', 'extra': 'VARCHAR'}}, header=false, "
        f"delim=E'{_RAW_DELIM}', quote='', escape='', auto_detect=false, strict_mode=false, null_padding=true, "
        f"new_line='\\n', {size}, store_rejects=true, rejects_table='_wb_rej', "
        f"rejects_scan='_wb_rejscan'){ordinality.format('line, extra')}"
    )


def _records_source(con, plan: _Plan, lines: int | None = None) -> tuple[_Source, None]:
    """Canonical rows built in Python by a format module (workbench.io.sniff), staged as a temp table of texts.
    ``lines``: the file's lines (a large JSON-lines file is mapped on every core)."""
    names = TABLES["calls"].names
    # in batches of records (sniff.arrow_batches): the rows built in Python at a time are a few batches', not the file's
    for i, table in enumerate(sniff.arrow_batches(plan.path, plan.fmt, names, lines=lines)):
        if plan.tick is not None and lines and table.num_rows:  # the progress bar: up to the last line read
            import pyarrow.compute as pc

            plan.tick(pc.max(table["k"]).as_py() / lines)
        con.register("_wb_records_view", table)
        try:
            con.execute(("CREATE TEMP TABLE _wb_records AS " if i == 0 else "INSERT INTO _wb_records ")
                        + "SELECT * FROM _wb_records_view")
        finally:
            con.unregister("_wb_records_view")
    cols = {c: ColumnSpec(c, field=c, unit="us" if c in ("ts", "end_ts") else None) for c in names}
    return _Source(sql="SELECT * FROM _wb_records", cols=cols, json_cols=frozenset({"attributes"}),
                   err_columns=True), None


def _hash_plan(t: Table, specs: dict[str, ColumnSpec]) -> tuple[str | None, tuple[str, ...]]:
    """Which key column is a hash, and of which source fields."""
    for c, s in specs.items():
        if s.hash:
            return c, s.hash
    if t.hashed_key and len(t.key) == 1 and t.key[0] not in specs:
        fields = []
        for s in specs.values():
            if s.field is not None and s.field not in fields:
                fields.append(s.field)
        return t.key[0], tuple(fields)
    return None, ()


def _jsonl_reads(m: Mapping) -> tuple[str | None, tuple[str, ...], list[tuple[str, bool]], dict[str, int],
                                       list[int]]:
    """What a JSONL load reads: (hash column, hash fields, the distinct (field, read as JSON) pairs, canonical
    column -> its read, hash field i -> its read)."""
    t = m.target
    hcol, hfields = _hash_plan(t, m.columns)
    reads: list[tuple[str, bool]] = []
    cols: dict[str, int] = {}
    for c, spec in m.columns.items():
        if spec.hash or spec.field is None:
            continue
        r = (spec.field, t.column(c).type in ("JSON", "VARCHAR[]"))
        if r not in reads:
            reads.append(r)
        cols[c] = reads.index(r)
    hashed = []
    for fld in hfields:
        if (fld, False) not in reads:
            reads.append((fld, False))
        hashed.append(reads.index((fld, False)))
    return hcol, hfields, reads, cols, hashed


def _key_levels(fields: list[str]) -> dict[tuple[str, ...], list[str]]:
    """The object keys a mapping reads, per object (a path of keys from the record; () is the record itself): the
    literal key of each field, and for a dotted field each key of its nested path."""
    levels: dict[tuple[str, ...], list[str]] = {(): []}
    for fld in fields:
        pairs = [((), fld)]
        if "." in fld:
            parts = fld.split(".")
            pairs += [(tuple(parts[:i]), parts[i]) for i in range(len(parts))]
        for parent, key in pairs:
            names = levels.setdefault(parent, [])
            if key not in names:
                names.append(key)
    return levels


def _jsonl_source(con, plan: _Plan, only: str | None = None, typed: "_Typed | None" = None) -> tuple[_Source, int]:
    """The line reader of a JSONL file: each line parsed by DuckDB's JSON functions, every failure a reason.

    ``only``: a SELECT of the line numbers to read (the others are skipped). ``typed``: the typed reader reads the
    file whole (:func:`_typed_jsonl`): the source selects from it, and keeps the line reader for the lines to read
    again."""
    m = plan.mapping
    hcol, hfields, reads, cols, hashed = _jsonl_reads(m)
    str_paths: list[str] = []
    json_paths: list[str] = []
    exprs: list[str] = []
    for fld, as_json in reads:
        paths = json_paths if as_json else str_paths
        idx = []
        for p in _json_paths(fld):
            paths.append(p)
            idx.append(len(paths))
        if typed is not None:
            e = f"_t{len(exprs)}"
        elif as_json:  # a JSON null is no value, as for a text (json_extract_string gives NULL for it)
            e = "coalesce(" + ", ".join(f"nullif(CAST(_j[{i}] AS VARCHAR), 'null')" for i in idx) + ")"
        else:
            e = "coalesce(" + ", ".join(f"_f[{i}]" for i in idx) + ")"
        exprs.append(e)
    sel = [f"{exprs[i]} AS {_ident('s:' + c)}" for c, i in cols.items()]
    sel += [f"{exprs[r]} AS {_ident(f'h:{i}')}" for i, r in enumerate(hashed)]
    json_cols = {c for c, i in cols.items() if reads[i][1]}
    if typed is not None:
        def over(read: str) -> str:
            return (f"SELECT k, CAST(NULL AS VARCHAR) AS raw, CAST(NULL AS VARCHAR) AS _err"
                    f"{''.join(', ' + x for x in sel)}, _empty FROM ({read})")
        sql = over(typed.unordered if not hcol else typed.ordered)
    else:
        plist = "[" + ", ".join(_lit(p) for p in str_paths) + "]" if str_paths else "['$.__wb_none__']"
        jlist = "[" + ", ".join(_lit(p) for p in json_paths) + "]" if json_paths else None
        jexpr = f"CASE WHEN _f IS NOT NULL THEN json_extract(line, {jlist}) END AS _j" if jlist else "NULL AS _j"
        # Duplicate keys among those the mapping reads (in the record, and in the objects of dotted fields): JSON
        # readers disagree on which value counts (DuckDB takes the first, Python the last), so such a record is
        # quarantined rather than guessed. A key the mapping does not read may repeat: no value read depends on it.
        levels = _key_levels([fld for fld, _j in reads])
        key_lists = {parent: "json_keys(line)" if not parent else
                     f"json_keys(line, {_lit('$' + ''.join('.' + chr(34) + k + chr(34) for k in parent))})"
                     for parent in levels}
        # Which key repeats is worked out (a list_filter per object, the costly part) only for the rare object that
        # has one: a list_unique count per object finds those first.
        dups = ("CASE WHEN " + " OR ".join(f"list_unique({ks}) < len({ks})" for ks in key_lists.values()) + " THEN "
                + " || ".join(f"coalesce(list_filter({ks}, (x, i) -> list_position({ks}, x) < i AND "
                              f"list_contains([{', '.join(_lit(n) for n in levels[parent])}], x)), [])"
                              for parent, ks in key_lists.items())
                + " END")
        keep = f" AND k IN ({only})" if only else ""
        # A form feed or vertical tab around a record: DuckDB's typed reader takes it as space, its JSON functions do
        # not. The line is parsed without it (its raw text kept), so that both readers give the same rows.
        sql = f"""
            SELECT k, _raw AS raw,
                   CASE WHEN _f IS NULL THEN 'invalid JSON'
                        WHEN NOT starts_with(ltrim(line, ' \t\r'), '{{') THEN 'not a JSON object'
                        WHEN len(_dup) > 0 THEN 'duplicate key ' || CAST(to_json(_dup[1]) AS VARCHAR)
                             || ' in the JSON object (readers disagree on which value counts)' END AS _err
                   {''.join(', ' + x for x in sel)}
            FROM (
                SELECT k, _raw, line, _f, {jexpr},
                       CASE WHEN _f IS NOT NULL AND starts_with(ltrim(line, ' \t\r'), '{{') THEN try({dups}) END AS _dup
                FROM (SELECT k, _raw, line, try(json_extract_string(line, {plist})) AS _f
                      FROM (SELECT k, line AS _raw, trim(line, {_lit(chr(12) + chr(11))}) AS line
                            FROM ({_raw_lines(plan.lines_path or plan.path, plan.lenient, plan.line_bytes,
                                              plan.buffer_bytes)})
                            WHERE line IS NOT NULL AND NOT regexp_full_match(line, {_lit(_BLANK_RE)}){keep}))
            )"""
    presence = [(f"{m.source} [columns] {c}", s.field, tuple(_json_paths(s.field)), "s:" + c)
                for c, s in m.columns.items() if s.field is not None and not s.hash and not s.optional]
    hash_key = next((c for c, s in m.columns.items() if s.hash), hcol)
    presence += [(f"{m.source} [columns] {hash_key} (hash)", f, tuple(_json_paths(f)), f"h:{i}") for i, f in enumerate(hfields)
                 if not any(s.field == f and s.optional for s in m.columns.values())]
    src = _Source(sql=sql, cols={c: s for c, s in m.columns.items() if not s.hash}, hash_fields=hfields,
                  hash_column=hcol, json_cols=frozenset(json_cols),
                  err_kinds={"invalid JSON": "invalid JSON", "not a JSON object": "not a JSON object",
                             "duplicate key *": "duplicate JSON key"},
                  line_reader=True, presence=tuple(presence))
    if typed is not None:
        src.lines = _jsonl_source(con, plan)[0]
        src.redo = _jsonl_source(con, plan, only="SELECT k FROM temp._wb_redo")[0].sql
        src.ordered = over(typed.ordered) if sql != over(typed.ordered) else None
        src.empty = f"SELECT k FROM ({typed.ordered}) WHERE _empty"
        src.direct = True
        return src, None  # the typed reader reads every line or fails: none is rejected
    return src, 0


# DuckDB's typed JSON reader (read_json with the columns the mapping reads) parses a clean file 10-20x faster than a
# JSON function per line, and refuses a file with a line that is not JSON, not an object, or repeats a key the
# mapping reads. A file it reads whole is loaded through it; the lines it cannot vouch for (those quarantined by a
# check, and those with no value at all, such as a JSON null) are read again by the line reader, so reasons and raw
# text are exact.
# False: every JSONL file goes through the line reader (tests compare the two).
_TYPED_JSON = True
_SAFE_KEY = re.compile(r'[^"\\\x00-\x1f\x7f]+')


@dataclass
class _Typed:
    """DuckDB's typed JSON reader over a JSONL file: k, the text of each read of :func:`_jsonl_reads` as _t0, _t1 ...,
    and _empty (no value for any read: a JSON null, {})."""
    ordered: str  # k the line number
    unordered: str  # k NULL: DuckDB reads it on all cores (numbering the lines takes one)


def _typed_jsonl(plan: _Plan) -> _Typed | None:
    """DuckDB's typed reader for this JSONL file, or None when the file or the mapping is not one it reads exactly
    (blank lines, keys it cannot name, a line too long). Whether it reads the file whole is found by reading it
    (:func:`_survey`, outside any transaction: a refused line would abort it)."""
    if not (_TYPED_JSON and plan.fmt == "jsonl" and not plan.documents and not plan.lenient
            and plan.lines is not None and plan.line_bytes <= LINE_BYTES_STEPS[0]):
        return None
    reads = _jsonl_reads(plan.mapping)[2]
    if not reads:
        return None
    tree: dict[str, Any] = {}

    def put(parts: list[str], typ: str) -> bool:
        node = tree
        for i, p in enumerate(parts):
            if not _SAFE_KEY.fullmatch(p):
                return False
            clash = [k for k in node if k.lower() == p.lower() and k != p]  # DuckDB's names ignore case
            last = i == len(parts) - 1
            if clash or (p in node and (isinstance(node[p], dict) == last or (last and node[p] != typ))):
                return False
            if last:
                node[p] = typ
            else:
                node = node.setdefault(p, {})
        return True

    for fld, as_json in reads:
        typ = "JSON" if as_json else "VARCHAR"
        if not put([fld], typ) or ("." in fld and not put(fld.split("."), typ)):
            return None

    def type_of(v: Any) -> str:
        if isinstance(v, str):
            return v
        return "STRUCT(" + ", ".join(f"{_ident(k)} {type_of(x)}" for k, x in v.items()) + ")"

    top = list(tree)
    columns = "{" + ", ".join(f"{_lit(k)}: {_lit(type_of(v))}" for k, v in tree.items()) + "}"
    alias = ", ".join(f"c{i}" for i in range(len(top)))

    def access(parts: list[str]) -> str:
        e = f"c{top.index(parts[0])}"
        for p in parts[1:]:
            e = f"struct_extract({e}, {_lit(p)})"
        return e

    exprs = []
    for i, (fld, as_json) in enumerate(reads):
        alts = [access([fld])] + ([access(fld.split("."))] if "." in fld else [])
        exprs.append(f"CAST(coalesce({', '.join(alts)}) AS VARCHAR) AS _t{i}")
    empty = "(" + " AND ".join(f"_t{i} IS NULL" for i in range(len(exprs))) + ") AS _empty"
    path = plan.lines_path or plan.path
    read = (f"read_json({_path_lit(path)}, format='newline_delimited', records=true, columns={columns}, "
            f"maximum_object_size={plan.line_bytes})")
    return _Typed(ordered=f"SELECT *, {empty} FROM (SELECT k, {', '.join(exprs)} FROM {read} "
                          f"WITH ORDINALITY AS r({alias}, k))",
                  unordered=f"SELECT *, {empty} FROM (SELECT CAST(NULL AS BIGINT) AS k, {', '.join(exprs)} "
                            f"FROM {read} AS r({alias}))")


def _describe(con, relation: str, path: Path) -> list[tuple[str, str]]:
    try:
        return [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    except Exception as exc:
        raise IngestError(f"{path}: cannot be read: {first_line(exc)}") from None


def _csv_source(con, plan: _Plan) -> tuple[_Source, int]:
    m = plan.mapping
    t = m.target
    o = m.csv
    header = _has_header(o)
    opts = [f"header={_lit(header)}", "all_varchar=true", "store_rejects=true", "rejects_table='_wb_rej'",
            "rejects_scan='_wb_rejscan'", f"max_line_size={plan.line_bytes}",
            f"buffer_size={max(plan.buffer_bytes, 2 * plan.line_bytes)}"]
    if "delimiter" in o:
        opts.append(f"delim={_lit(o['delimiter'])}")
    elif _base_ext(plan.path) == ".tsv":
        opts.append("delim=E'\\t'")
    if "quote" in o:
        opts.append(f"quote={_lit(o['quote'])}")
    if "escape" in o:
        opts.append(f"escape={_lit(o['escape'])}")
    if o.get("skip"):
        opts.append(f"skip={int(o['skip'])}")
    # The header is read here, not sniffed: DuckDB's sniffer gives up on the very files (ragged rows) that need
    # store_rejects, and a declared schema makes every bad record a reject with its line number.
    names, repeated = _csv_header(plan.path, _csv_delimiter(o, plan.path),
                                  o.get("quote", '"'), header, int(o.get("skip", 0)))
    hcol, hfields = _hash_plan(t, m.columns)
    if not names:  # an empty file: nothing to read
        empty = ", ".join(f"NULL::VARCHAR AS {_ident('s:' + c)}" for c, s in m.columns.items() if not s.hash)
        empty += "".join(f", NULL::VARCHAR AS {_ident(f'h:{i}')}" for i in range(len(hfields)))
        sql = f"SELECT 0::BIGINT AS k, NULL::VARCHAR AS raw, NULL::VARCHAR AS _err, {empty} WHERE false"
        return _Source(sql=sql, cols={c: s for c, s in m.columns.items() if not s.hash}, hash_fields=hfields,
                       hash_column=hcol), None
    for c, s in m.columns.items():
        for fld in ([s.field] if s.field else []) + list(s.hash or ()):
            if fld not in names and not (s.optional and fld == s.field):  # an optional field: the column is null
                raise IngestError(f"{plan.path}: mapping {m.source} [columns] {c}: no field {fld!r} in the CSV; "
                                  f"fields: {', '.join(names)}{_delimiter_hint(names, fld, o)}")
            at = [str(i + 1) for i in repeated.get(fld, ())]
            if at:  # which one the mapping means, nobody can tell (a JSON record's repeated key is quarantined too)
                raise IngestError(f"{plan.path}: mapping {m.source} [columns] {c}: the header names {fld!r} "
                                  f"{len(at)} times (columns {', '.join(at[:-1])} and {at[-1]}); rename all but one")
    columns = "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in names) + "}"
    rel = f"read_csv({_path_lit(plan.path)}, {', '.join(opts)}, columns={columns}, auto_detect=false)"
    sel = [f"{_ident(s.field) if s.field in names else 'NULL::VARCHAR'} AS {_ident('s:' + c)}"
           for c, s in m.columns.items() if s.field is not None and not s.hash]
    sel += [f"{_ident(f)} AS {_ident(f'h:{i}')}" for i, f in enumerate(hfields)]
    raw = "json_object(" + ", ".join(f"{_lit(n)}, {_ident(n)}" for n in names) + ")::VARCHAR"
    # A NUL byte in a value read (a file cut short by a crash is padded with them) is kept by DuckDB, where a JSON
    # line with one is invalid JSON and quarantined: the record is quarantined, naming the column and its field.
    read = [(c, s.field) for c, s in m.columns.items() if s.field in names and not s.hash]
    read += [(hcol, f) for f in hfields]
    err = {"_err": [], "_err_kind": [], "_err_field": []}
    for c, f in read:
        when = f"WHEN contains({_ident(f)}, chr(0)) THEN "
        err["_err"].append(when + _lit(f"NUL byte in {c} (field {f!r})"))
        err["_err_kind"].append(when + _lit(f"NUL byte: {c}"))
        err["_err_field"].append(when + _lit(c))
    errs = ", ".join(f"CASE {' '.join(w)} END::VARCHAR AS {e}" if w else f"NULL::VARCHAR AS {e}" for e, w in err.items())
    cols = (f"{raw} AS raw, {errs}"
            f"{''.join(', ' + s for s in sel)}")
    ordered = f"SELECT k, {cols} FROM {rel} WITH ORDINALITY AS r({', '.join(_ident(n) for n in names)}, k)"
    # without line numbers DuckDB reads the file on all cores: enough to survey it and insert it when it is clean
    unordered = f"SELECT NULL::BIGINT AS k, {cols} FROM {rel}"
    src = _Source(sql=ordered if hcol else unordered, cols={c: s for c, s in m.columns.items() if not s.hash},
                  hash_fields=hfields, hash_column=hcol, direct=True, ordered=None if hcol else ordered,
                  err_columns=True)
    src.csv_opts = dict(o)
    offset = (1 if header else 0) + int(o.get("skip", 0))
    return src, offset


def _delimiter_hint(names: list[str], fld: str, opts: Mapping[str, Any]) -> str:
    """When the header splits on another common delimiter into names that include ``fld``: the mapping line to add
    (a semicolon-separated export from a European locale reads as one field named "id;ts;...")."""
    import json

    line = (opts.get("delimiter") or ",").join(names)
    for d in (";", "\t", "|", ","):
        if d != opts.get("delimiter", ",") and fld in (x.strip().strip('"') for x in line.split(d)):
            return f"; the header splits on {json.dumps(d)}: set delimiter = {json.dumps(d)} under [csv] in the mapping"
    return ""


def _csv_header(path: Path, delim: str, quote: str, header: bool,
                skip: int) -> tuple[list[str], dict[str, list[int]]]:
    """The header's field names, a repeated one renamed ``name_1``, ``name_2`` (as DuckDB does), and the names the
    header repeats, each with its positions (0-based)."""
    import csv
    import io

    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
            for _ in range(skip):
                fh.readline()
            first = fh.readline()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: cannot read the file: {exc}") from None
    if not first.strip():
        return [], {}
    first = first.rstrip("\r\n")
    if len(delim) == 1:
        fields = next(csv.reader(io.StringIO(first), delimiter=delim, quotechar=quote or None))
    else:
        fields = first.split(delim)
    if not header:
        return [f"column{i}" for i in range(len(fields))], {}
    names: list[str] = []
    at: dict[str, list[int]] = {}
    for i, n in enumerate(fields):
        n = n.strip() or f"column{i}"
        at.setdefault(n, []).append(i)
        base, j = n, 1
        while n in names:
            n, j = f"{base}_{j}", j + 1
        names.append(n)
    return names, {n: pos for n, pos in at.items() if len(pos) > 1}


def _parquet_top_names(con, path: Path) -> list[str]:
    """The top-level column names of a Parquet file as its footer writes them (a repeated name included), from the
    schema tree DuckDB's ``parquet_schema`` lists depth first (each node with its number of children)."""
    rows = con.execute(f"SELECT name, num_children FROM parquet_schema({_path_lit(path)})").fetchall()
    if not rows:
        return []
    top: list[str] = []
    left = [rows[0][1] or 0]  # children still to see at each open level, the root's first
    for name, kids in rows[1:]:
        if len(left) == 1:
            top.append(name)
        left[-1] -= 1
        if kids:
            left.append(kids)
        while len(left) > 1 and left[-1] == 0:
            left.pop()
    return top


def _parquet_source(con, plan: _Plan) -> _Source:
    m = plan.mapping
    t = m.target
    rel = f"read_parquet({_path_lit(plan.path)}, file_row_number=true)"
    desc = _describe(con, rel, plan.path)
    types = dict(desc)
    names = [n for n, _ in desc if n != "file_row_number"]
    # DuckDB renames a repeated column name (value, value_1): the file's own names say which the mapping cannot tell
    own = _parquet_top_names(con, plan.path)
    for c, s in m.columns.items():
        for fld in ([s.field] if s.field else []) + list(s.hash or ()):
            top = fld if fld in own else fld.split(".")[0]  # a dotted field: a column of that name, else a struct's
            at = [str(i + 1) for i, n in enumerate(own) if n == top]
            if len(at) > 1:
                raise IngestError(f"{plan.path}: mapping {m.source} [columns] {c}: the file has {len(at)} columns "
                                  f"named {own[int(at[0]) - 1]!r} (columns {', '.join(at[:-1])} and {at[-1]}); "
                                  f"write it with distinct names")

    def text(fld: str, c: str) -> str:
        if fld in types:
            expr, typ = _ident(fld), types[fld]
        else:
            parts = fld.split(".")
            if (parts[0] not in types or len(parts) < 2) and m.columns[c].optional:
                return "NULL::VARCHAR"  # an optional field the file does not have: the column is null
            if parts[0] not in types or len(parts) < 2:
                raise IngestError(f"{plan.path}: mapping {m.source} [columns] {c}: no field {fld!r} in the Parquet "
                                  f"file; fields: {', '.join(names)}")
            expr, typ = ".".join(_ident(p) for p in parts), "STRUCT"
        if typ.endswith("WITH TIME ZONE"):
            return f"strftime(timezone('UTC', {expr}), '%Y-%m-%d %H:%M:%S.%f')"
        if any(x in typ for x in ("STRUCT", "[]", "MAP", "JSON")):
            return f"CAST(to_json({expr}) AS VARCHAR)"
        return f"CAST({expr} AS VARCHAR)"

    def number(c: str, spec: ColumnSpec) -> str | None:
        """ "DOUBLE", "INTEGER" or "DECIMAL:<scale>" when column c can take the field's number as it is."""
        kind = _parquet_number_kind(types.get(spec.field, ""))
        target = t.column(c).type
        if kind is None or spec.default is not None or not (
                target in ("DOUBLE", "BIGINT", "INTEGER") or (target == "TIMESTAMP" and spec.unit)):
            return None
        return kind

    hcol, hfields = _hash_plan(t, m.columns)
    numbers = {c: k for c, s in m.columns.items() if s.field is not None and not s.hash and (k := number(c, s))}
    sel = [f"{_ident(s.field) if c in numbers else text(s.field, c)} AS {_ident('s:' + c)}"
           for c, s in m.columns.items() if s.field is not None and not s.hash]
    sel += [f"{text(f, hcol)} AS {_ident(f'h:{i}')}" for i, f in enumerate(hfields)]
    raw = "CAST(to_json(struct_pack(" + ", ".join(f"{_ident(n)} := {_ident(n)}" for n in names) + ")) AS VARCHAR)"
    sql = f"SELECT file_row_number + 1 AS k, {raw} AS raw, NULL::VARCHAR AS _err {''.join(', ' + s for s in sel)} " \
          f"FROM {rel}"
    return _Source(sql=sql, cols={c: s for c, s in m.columns.items() if not s.hash}, hash_fields=hfields,
                   hash_column=hcol, direct=True, numbers=numbers)


def _parquet_number_kind(typ: str) -> str | None:
    """How a Parquet column of DuckDB type ``typ`` enters the typing as a number (:func:`_convert`'s ``number``), or
    None: through its text. A decimal of scale up to 22 is one (10^scale a double exactly: see :func:`_as_double`)."""
    if (dec := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", typ)) and int(dec.group(2)) <= 22:
        return f"DECIMAL:{dec.group(2)}"
    return _PARQUET_NUMBERS.get(typ)


#: Parquet types whose values a numeric column takes as they are: the same value as through their text (a DOUBLE's
#: text reads back to the same double; FLOAT and 128-bit integers are read through their text, DECIMAL as
#: :func:`_parquet_number_kind` says).
_PARQUET_NUMBERS = {"DOUBLE": "DOUBLE", **{t: "INTEGER" for t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT",
                                                                    "UINTEGER", "USMALLINT", "UTINYINT")}}


# ------------------------------------------------------------------------------------------------------ OTLP spans

# The attribute table (_OTEL_DEFAULTS, _OTEL_USED, SPAN_KINDS) is workbench.io.spans': one table for every span format.

# OTLP JSON, parsed once per span with json_transform into typed structs (lenient: a mistyped member is NULL).
_ANY_SCALAR = '"stringValue":"VARCHAR","intValue":"VARCHAR","doubleValue":"DOUBLE","boolValue":"BOOLEAN"'
_ANY = ('{' + _ANY_SCALAR + ',"bytesValue":"VARCHAR","kvlistValue":"JSON","arrayValue":{"values":[{'
        + _ANY_SCALAR + '}]}}')
_ATTRS = '[{"key":"VARCHAR","value":' + _ANY + '}]'
_SPAN = ('{"traceId":"VARCHAR","spanId":"VARCHAR","parentSpanId":"VARCHAR","name":"VARCHAR",'
         '"startTimeUnixNano":"VARCHAR","endTimeUnixNano":"VARCHAR","attributes":' + _ATTRS + ','
         '"events":[{"name":"VARCHAR","timeUnixNano":"VARCHAR","attributes":"JSON"}],'
         '"status":{"code":"VARCHAR","message":"VARCHAR"},"kind":"VARCHAR"}')
# (instrumentationLibrarySpans / instrumentationLibrary: their names before opentelemetry-proto 0.15, read as scopeSpans)
_LINE = ('{"resourceSpans":[{"resource":{"attributes":' + _ATTRS + '},'
         '"scopeSpans":[{"scope":{"name":"VARCHAR"},"spans":["JSON"]}],'
         '"instrumentationLibrarySpans":[{"instrumentationLibrary":{"name":"VARCHAR"},"spans":["JSON"]}]}]}')


def _scalar_text(v: str) -> str:
    return (f"coalesce({v}.stringValue, {v}.intValue, CAST({v}.doubleValue AS VARCHAR), "
            f"CAST({v}.boolValue AS VARCHAR))")


def _value_text(v: str) -> str:
    """Text of an AnyValue for column lookups: scalars as text, an array as a JSON list of texts."""
    return (f"coalesce({_scalar_text(v)}, CASE WHEN {v}.arrayValue IS NOT NULL THEN CAST(to_json(list_transform("
            f"{v}.arrayValue.\"values\", lambda e: {_scalar_text('e')})) AS VARCHAR) END, {v}.bytesValue, "
            f"CAST({v}.kvlistValue AS VARCHAR))")


def _value_json(v: str) -> str:
    """JSON text of an AnyValue for the attributes column (intValue, a string in OTLP JSON, as a number)."""
    # (an intValue that is an integer, 64-bit, as a number: "1e3" as 1000, not "12.5" rounded to 13)
    i = numeric_text(v + ".intValue")
    return (f"coalesce(CAST(to_json({v}.stringValue) AS VARCHAR), "
            f"CAST(CASE WHEN TRY_CAST({i} AS DOUBLE) = TRY_CAST({i} AS BIGINT) THEN TRY_CAST({i} AS BIGINT) END "
            "AS VARCHAR), "
            f"CAST(to_json({v}.intValue) AS VARCHAR), CAST(to_json({v}.doubleValue) AS VARCHAR), "
            f"CAST({v}.boolValue AS VARCHAR), {_value_text(v)}, 'null')")


def _json_member(x: str, key: str) -> str:
    """SQL: the text of the member ``key`` of the JSON object text ``x``; NULL when it has none or is no JSON object.
    A key the object repeats gives its last value, as Python's json and orjson read it, and so the span readers in
    Python (:func:`workbench.io.spans.metadata`, :func:`~workbench.io.spans.token_detail`): DuckDB's JSON paths give
    the first."""
    return (f"try(list_last(list_filter(list_zip(json_keys({x}), json_extract_string({x}, '$.*')), "
            f"lambda e: e[1] = {_lit(key)}))[2])")


def _otel_id(x: str) -> str:
    """SQL of an OTLP id (``x``: a text expression) as :func:`workbench.io.spans.hex_id` reads it, for the OTLP JSON
    reader: hex lower-cased (also after ``0x``); canonical base64 of 8 or 16 bytes (protobuf's generic JSON mapping writes the bytes so)
    as the hex of those bytes; empty or all zeros (an invalid id) NULL; anything else as written.

    >>> import duckdb
    >>> duckdb.sql(f"SELECT {_otel_id('x')} FROM (SELECT 'AQIDBAUGBwg=' AS x)").fetchone()[0]
    '0102030405060708'
    """
    t = f"trim({x})"
    b = f"try(from_base64({t}))"
    return (f"CASE WHEN ltrim({t}, '0') = '' THEN NULL "
            f"WHEN regexp_full_match({t}, '[0-9a-fA-F]+') THEN lower({t}) "
            f"WHEN regexp_full_match({t}, '0[xX][0-9a-fA-F]+') THEN nullif(lower(substr({t}, 3)), "
            f"repeat('0', length({t}) - 2)) "
            f"WHEN length({t}) IN (12, 24) AND ends_with({t}, '=') AND octet_length({b}) IN (8, 16) "
            f"AND to_base64({b}) = {t} THEN CASE WHEN ltrim(hex({b}), '0') <> '' THEN lower(hex({b})) END "
            f"ELSE {t} END")


def _otel_operation(attr: Callable[[str], str], keys: str, name: str = "NULL") -> str:
    """SQL of a span's operation when ``gen_ai.operation.name`` does not give it, as
    :func:`workbench.io.spans.default_operation` decides it (``attr(name)``: the SQL of a span attribute's text,
    ``keys``: of the list of the span's attribute names, ``name``: of the span's name).

    >>> import duckdb
    >>> sql = _otel_operation(lambda n: f"m[{_lit(n)}]", "map_keys(m)")
    >>> duckdb.sql(f"SELECT {sql} FROM (SELECT MAP {{'ai.operationId': 'ai.streamText.doStream'}} AS m)").fetchone()
    ('chat',)
    """
    def kind(name: str) -> str:  # the attribute's text, upper-cased, without the quotes MLflow writes
        return f"upper(trim({attr(name)}, '\"'))"

    def given(name: str) -> str:
        return f"nullif({attr(name)}, '') IS NOT NULL"

    op = attr("ai.operationId")
    genai = " OR ".join(f"starts_with(k, {_lit(p)})" for p in GENAI_PREFIXES)
    kinds = " ".join(
        f"WHEN nullif({kind(name)}, '') IS NOT NULL THEN CASE {kind(name)} "
        + " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in table.items()) + f" ELSE lower({kind(name)}) END"
        for name, table in SPAN_KINDS)
    return (f"CASE {kinds} "
            f"WHEN starts_with({op}, 'ai.') THEN CASE WHEN ends_with({op}, '.doGenerate') OR ends_with({op}, '.doStream') "
            f"THEN 'chat' WHEN ends_with({op}, '.doEmbed') THEN 'embeddings' WHEN {op} = 'ai.toolCall' "
            f"THEN 'execute_tool' ELSE 'chain' END "
            f"WHEN {given('gen_ai.tool.name')} OR {given('tool.name')} THEN 'execute_tool' "
            f"WHEN split_part({name}, ' ', 1) IN ({', '.join(map(_lit, GENAI_OPERATIONS))}) "
            f"THEN split_part({name}, ' ', 1) "
            f"WHEN list_bool_or(list_transform(coalesce({keys}, []), lambda k: {genai})) THEN "
            f"CASE WHEN {given('gen_ai.agent.name')} AND NOT ({' OR '.join(map(given, MODEL_NAMES))}) "
            f"THEN 'invoke_agent' END "
            f"ELSE {_lit(OTHER_OPERATION)} END")


#: The SQL function through which the OTLP JSON reader reads what a Langfuse span's own attributes give (usage, cost,
#: time to first token): the Python rule every other span reader applies
#: (:func:`workbench.io.langfuse.span_columns`), called only for spans that have them.
_LANGFUSE_FN = "_wb_langfuse_columns"
_LANGFUSE_FIELDS = (*USAGE_COLUMNS, "ttft_ms", "err_kind", "err_reason", "err_field")


def _langfuse_columns(usage: str | None, cost: str | None, completion_start: str | None,
                      start_ns: str | None) -> dict[str, str | None]:
    """:func:`workbench.io.langfuse.span_columns` for SQL (``start_ns``: the span's start, OTLP nanoseconds as text):
    each column's text as a span reader in Python gives it to the engine, or the reason the span is quarantined
    (``err_*``), as :func:`workbench.io.openinference.add_span` quarantines it.

    >>> v = _langfuse_columns('{"input": 80, "output": 30}', None, '"2025-11-20T10:00:00.25Z"', "1763632800000000000")
    >>> v["output_tokens"], v["ttft_ms"]
    ('30', '250.0')
    >>> _langfuse_columns('{"input"', None, None, None)["err_field"]
    'langfuse.observation.usage_details'
    """
    from workbench.io.langfuse import span_columns
    from workbench.io.records import InvalidField, MALFORMED, number, value_text

    out: dict[str, str | None] = dict.fromkeys(_LANGFUSE_FIELDS)
    ns = number(start_ns)
    try:
        got = span_columns(usage, cost, completion_start, ns // 1000 if isinstance(ns, int) else None)
        out.update({c: value_text(v) for c, v in got.items()})
    except InvalidField as exc:
        out.update(err_kind=exc.kind, err_reason=exc.reason, err_field=exc.field)
    except MALFORMED as exc:  # (as a span reader in Python quarantines a span of unexpected shape)
        out.update(err_kind="malformed span", err_reason=f"malformed span: {type(exc).__name__}: {str(exc)[:200]}")
    return out


def _register_langfuse_columns(con) -> None:
    """Make :func:`_langfuse_columns` a SQL function of ``con`` (once per connection)."""
    import duckdb

    struct = "STRUCT(" + ", ".join(f"{_ident(f)} VARCHAR" for f in _LANGFUSE_FIELDS) + ")"
    try:
        con.create_function(_LANGFUSE_FN, _langfuse_columns, ["VARCHAR"] * 4, struct, null_handling="special",
                            side_effects=False)
    except duckdb.NotImplementedException:  # already registered on this connection
        pass


def _otel_source(con, plan: _Plan, numbered: bool = True) -> tuple[_Source, int | None]:
    """The OTLP JSON reader: one row per span (or per line that is not an export). ``numbered=False``: k is NULL,
    and the file is read on all cores (for a load in one read, :func:`_straight`)."""
    specs = dict(plan.mapping.columns) if plan.mapping else {}
    candidates = {c: ((specs[c].field,) if c in specs and specs[c].field else names)
                  for c, names in _OTEL_DEFAULTS.items()}
    for c, s in specs.items():
        if c not in candidates and s.field:
            candidates[c] = (s.field,)
    used = sorted({n.removeprefix("r:") for names in candidates.values() for n in names if not n.startswith("m:")}
                  | set(_OTEL_USED))
    used_in = "(" + ", ".join(_lit(n) for n in used) + ")"

    # Every attribute a column may read, looked up once per span (span attributes "a<i>", resource ones "r<i>").
    langfuse = (LANGFUSE_USAGE, LANGFUSE_COST, LANGFUSE_COMPLETION_START, LANGFUSE_LEVEL, LANGFUSE_STATUS_MESSAGE)
    span_names = sorted({n for names in candidates.values() for n in names if not n.startswith(("r:", "m:"))}
                        | set(_OTEL_USED) | set(OPERATION_HINTS) | set(KIND_DECIDES) | set(langfuse) | {METADATA}
                        | set(COST_PARTS)
                        | {name for name, _ in TOKEN_DETAILS.values()})
    res_names = sorted({n[2:] for names in candidates.values() for n in names if n.startswith("r:")})
    slot = {n: f"a{i}" for i, n in enumerate(span_names)} | {"r:" + n: f"r{i}" for i, n in enumerate(res_names)}

    def attr(name: str) -> str:
        return _ident(slot[name])

    def read(name: str) -> str:
        # an empty text is absent, as spans._first_present reads it (the next name is looked at: LiteLLM writes ""
        # for a missing value); a 0 of UNPRICED_ZERO is no price: not read, kept in attributes
        if name.startswith("m:"):  # a key of the span's metadata JSON (spans.METADATA; no JSON object: none)
            md = attr(METADATA)
            return f"CASE WHEN {md} IS NOT NULL THEN nullif({_json_member(md, name[2:])}, '') END"
        a = f"nullif({attr(name)}, '')"
        return f"CASE WHEN TRY_CAST({a} AS DOUBLE) = 0 THEN NULL ELSE {a} END" if name in UNPRICED_ZERO else a

    def pick(c: str) -> str:
        exprs = [read(n) for n in candidates[c]]
        return exprs[0] if len(exprs) == 1 else "coalesce(" + ", ".join(exprs) + ")"

    lines = (f"SELECT k, line "
             f"FROM ({_raw_lines(plan.path, plan.lenient, plan.line_bytes, plan.buffer_bytes, numbered)})")
    first = "(e.name ILIKE '%first%token%' OR e.name ILIKE '%first%chunk%')"
    oi_case = _otel_operation(attr, "_keys", "sp.name")
    # the Vercel AI SDK's rules, as workbench.io.spans.span_values applies them to the span formats read in Python
    vop = attr("ai.operationId")
    outer = f"{vop} IN ({', '.join(map(_lit, VERCEL_OUTER))})"
    fr = f"coalesce({', '.join(attr(n) for n in FINISH_REASONS)})"
    ttft = f"coalesce({', '.join(attr(n) for n in TTFT_SECONDS)})"
    ttft_ms = f"coalesce({', '.join(attr(n) for n in VERCEL_TTFT_MS)})"
    tool = f"coalesce({attr('gen_ai.tool.name')}, {attr('tool.name')}, {attr('ai.toolCall.name')})"
    # a time of 0 (or blank) is "not set" (proto3 leaves a zero out, so a protobuf span cannot even say it): a span
    # without a start is quarantined (missing required field ts), one without an end has no latency, a first-token
    # event without a time no ttft, as spans._nanos reads them
    start, end, ev = (f"CASE WHEN TRY_CAST({numeric_text(x)} AS DOUBLE) = 0 OR trim({x}) = '' THEN NULL ELSE {x} END"
                      for x in ("sp.startTimeUnixNano", "sp.endTimeUnixNano", "_ev.timeUnixNano"))
    s: dict[str, str] = {
        "call_id": _otel_id("sp.spanId"),
        "trace_id": _otel_id("sp.traceId"),
        "parent_id": _otel_id("sp.parentSpanId"),
        "ts": start,
        "end_ts": end,
        "latency_ms": (f"CAST((TRY_CAST({numeric_text(end)} AS HUGEINT) "
                       f"- TRY_CAST({numeric_text(start)} AS HUGEINT)) / 1e6 AS VARCHAR)"),
        "ttft_ms": (f"CASE WHEN {ttft} IS NULL AND {ttft_ms} IS NOT NULL THEN {ttft_ms} "
                    # (a first-token time that is no number: its text, quarantined as a non-numeric ttft_ms)
                    f"WHEN {ttft} IS NULL AND TRY_CAST({numeric_text(ev)} AS HUGEINT) IS NULL THEN {ev} "
                    f"WHEN {ttft} IS NULL THEN CAST((TRY_CAST({numeric_text(ev)} AS HUGEINT) "
                    f"- TRY_CAST({numeric_text(start)} AS HUGEINT)) / 1e6 AS VARCHAR) "
                    f"WHEN TRY_CAST({numeric_text(ttft)} AS DOUBLE) IS NULL THEN {ttft} "
                    f"ELSE CAST(TRY_CAST({numeric_text(ttft)} AS DOUBLE) * 1000 AS VARCHAR) END"),
        "finish_reason": (f"CASE WHEN starts_with({fr}, '[') THEN coalesce(try(json_extract_string({fr}, '$[0]')), {fr}) "
                          f"ELSE {fr} END"),  # (a text that only starts with a bracket is a reason as written)
        "name": f"coalesce({tool}, sp.name)",
        "_status_code": "sp.status.code",
        "_finish_reasons": fr,
    }
    for c in candidates:
        s[c] = pick(c)
    for c, (name, key) in TOKEN_DETAILS.items():
        # LangSmith's token details after every other name of the column, as spans.token_detail reads them: a JSON
        # object, else a Python dict's text (single quotes read as double ones)
        if c not in specs:
            x = attr(name)
            text = f"CASE WHEN json_valid({x}) THEN {x} ELSE replace({x}, '''', '\"') END"
            detail = f"CASE WHEN {x} IS NOT NULL THEN {_json_member(text, key)} END"
            s[c] = f"coalesce({s[c]}, {detail})" if c in s else detail
    if "cost_usd" not in specs:  # a cost in two parts, after every name of the column (spans.cost_parts)
        total = " + ".join(f"TRY_CAST({numeric_text(attr(n))} AS DOUBLE)" for n in COST_PARTS)
        parts = f"CASE WHEN isfinite({total}) AND {total} <> 0 THEN CAST({total} AS VARCHAR) END"
        s["cost_usd"] = f"coalesce({s['cost_usd']}, {parts})"
    # Langfuse's usage and cost details come first in each usage column (spans.LANGFUSE_USAGE), as span_values reads
    # them; a span whose details are no JSON object is quarantined (_err below)
    _register_langfuse_columns(con)
    for c in USAGE_COLUMNS:
        if c not in specs:
            s[c] = f"coalesce(_lf.{_ident(c)}, {s[c]})" if c in s else f"_lf.{_ident(c)}"
    if "ttft_ms" not in specs:  # ... and its completion start after every other source of the time to first token
        s["ttft_ms"] = f"coalesce({s['ttft_ms']}, _lf.ttft_ms)"
    # a Langfuse level ERROR is a failed call, its status message the error type when nothing names one
    lf_error = f"coalesce(upper(trim({attr(LANGFUSE_LEVEL)})) = 'ERROR', false)"
    s["_lf_error"] = lf_error
    # an agent run in the process (any span kind but CLIENT) repeats its model calls' usage (spans.repeats_usage)
    agent_op = "operation" not in specs
    aliases = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in OPERATION_ALIASES.items())
    decides = " OR ".join(f"nullif({attr(n)}, '') IS NOT NULL" for n in KIND_DECIDES)
    given_op = (pick("operation") if "operation" in specs
                else f"CASE WHEN {decides} THEN NULL ELSE CASE {pick('operation')} {aliases} "
                     f"ELSE {pick('operation')} END END")  # (a kind of spans.KIND_DECIDES: read by oi_case)
    op_sql = f"coalesce({given_op}, {oi_case})"
    agent = (f"({op_sql} IN ({', '.join(map(_lit, AGENT_OPERATIONS))}) "
             f"AND upper(trim(coalesce(sp.kind, ''))) NOT IN ({', '.join(map(_lit, CLIENT_KINDS))}))")
    repeated = f"(coalesce({outer}, false) OR coalesce({agent}, false))" if agent_op else f"coalesce({outer}, false)"
    for c in USAGE_COLUMNS:  # a Vercel outer span repeats its provider calls' usage: not counted again
        if c in candidates and c not in specs:
            s[c] = f"CASE WHEN {repeated} THEN NULL ELSE {s[c]} END"
    if "provider" not in specs:  # Vercel's provider ids: "openai.chat", "openai.responses"
        # ... and "OpenAI" (OpenLLMetry) is the "openai" of the GenAI conventions (spans.span_values)
        s["provider"] = (f"lower(CASE WHEN starts_with({vop}, 'ai.') THEN split_part({s['provider']}, '.', 1) "
                         f"ELSE {s['provider']} END)")
    # a failed span's error type and message as an OpenTelemetry SDK records them: the "exception" event's
    # exception.type and exception.message (as workbench.io.spans reads them for the span formats parsed in Python)
    exc = "list_filter(sp.events, lambda e: e.name = 'exception')[1].attributes"

    def exc_attr(key: str) -> str:
        return (f"json_extract_string({exc}, '$[' || (list_position(json_extract_string({exc}, '$[*].key'), "
                f"{_lit(key)}) - 1) || '].value.stringValue')")

    span_failed = f"({_failed('sp.status.code')} OR {lf_error})"
    # what a failed span's messages say, for its status (a timeout when they say so: records.TIMEOUT)
    s["_messages"] = (f"CASE WHEN {span_failed} THEN concat_ws(' ', sp.status.message, {exc_attr('exception.message')}, "
                      f"CASE WHEN {lf_error} THEN {attr(LANGFUSE_STATUS_MESSAGE)} END) END")
    if "error_type" not in specs:
        s["error_type"] = (f"coalesce({pick('error_type')}, "
                           f"CASE WHEN {span_failed} THEN {exc_attr('exception.type')} END, "
                           f"CASE WHEN {lf_error} THEN nullif({attr(LANGFUSE_STATUS_MESSAGE)}, '') END)")
    if agent_op:
        s["operation"] = op_sql
    for c, spec in specs.items():
        if spec.has_value:
            s[c] = "NULL"
    cols = {c: ColumnSpec(column=c, field=c) for c in TABLES["calls"].names if c not in ("status", "attributes")}
    cols["ts"] = ColumnSpec("ts", field="startTimeUnixNano", unit="ns")
    cols["end_ts"] = ColumnSpec("end_ts", field="endTimeUnixNano", unit="ns")
    cols["latency_ms"] = ColumnSpec("latency_ms", field="latency_ms", unit="ms")
    cols["ttft_ms"] = ColumnSpec("ttft_ms", field="ttft_ms", unit="ms")
    cols.update(specs)
    select = ", ".join(f"{expr} AS {_ident('s:' + c)}" for c, expr in s.items())
    # attributes not read by a column, as JSON members: filtered before their values are rendered
    keep = f"lambda a: a.key NOT IN {used_in}"
    kv = f"lambda a: CAST(to_json(a.key) AS VARCHAR) || ':' || {_value_json('a.value')}"
    members = lambda a, k=keep: f"list_transform(list_filter({a}, {k}), {kv})"  # noqa: E731
    # a Vercel outer span's repeated usage stays visible in attributes (not counted: see USAGE_COLUMNS above)
    usage_in = "(" + ", ".join(_lit(n) for c in USAGE_COLUMNS if c in candidates and c not in specs
                               for n in candidates[c] if not n.startswith("r:")) + ")"
    zero_in = "(" + ", ".join(map(_lit, UNPRICED_ZERO)) + ")"
    keep_span = (f"lambda a: a.key NOT IN {used_in} OR (starts_with(a.key, 'ai.usage.') AND coalesce({outer}, false))"
                 f" OR (a.key IN {zero_in} AND TRY_CAST({_value_text('a.value')} AS DOUBLE) = 0)"
                 + (f" OR (a.key IN {usage_in} AND coalesce({agent}, false))" if agent_op and usage_in != "()" else ""))
    extra = (f"{members('coalesce(sp.attributes, [])', keep_span)} "
             f"|| CASE WHEN len(_rextra) > 0 THEN ['\"resource\":{{' || array_to_string(_rextra, ',') || '}}'] "
             "ELSE [] END "
             "|| CASE WHEN _scope IS NOT NULL THEN ['\"otel.scope.name\":' || CAST(to_json(_scope) AS VARCHAR)] "
             "ELSE [] END "
             f"|| CASE WHEN len(list_filter(sp.events, lambda e: NOT {first})) > 0 THEN ['\"otel.events\":' "
             f"|| CAST(to_json(list_filter(sp.events, lambda e: NOT {first})) AS VARCHAR)] ELSE [] END "
             f"|| CASE WHEN {tool} IS NOT NULL AND {tool} <> sp.name "
             "THEN ['\"otel.span.name\":' || CAST(to_json(sp.name) AS VARCHAR)] ELSE [] END "
             "|| CASE WHEN nullif(sp.status.message, '') IS NOT NULL "
             "THEN ['\"otel.status_message\":' || CAST(to_json(sp.status.message) AS VARCHAR)] ELSE [] END")
    # The Vercel AI SDK's ai.* names are looked up only in a span that has its operation id (every span it writes):
    # the others skip a score of list searches each
    def lookup(n: str) -> str:
        got = f"_vals[list_position(_keys, {_lit(n)})]"
        return got if not n.startswith("ai.") or n == "ai.operationId" else f"CASE WHEN _vercel THEN {got} END"

    span_attrs = ", ".join(f"{lookup(n)} AS {_ident(slot[n])}" for n in span_names)
    lf_usage, lf_cost, lf_start = attr(LANGFUSE_USAGE), attr(LANGFUSE_COST), attr(LANGFUSE_COMPLETION_START)
    lf_span_start = f"CAST({start} AS VARCHAR)"
    res_attrs = "".join(f", _rvals[list_position(_rkeys, {_lit(n)})] AS {_ident(slot['r:' + n])}" for n in res_names)
    # Each line is parsed once (spans kept as JSON text, typed one by one); a line that is not an OTLP export becomes
    # one row carrying its text (_bad), a blank line none. Nothing but the span's own JSON follows a span.
    scopes = ("list_concat(coalesce(rs.scopeSpans, []), coalesce(list_transform(rs.instrumentationLibrarySpans, "
              "lambda il: {'scope': {'name': il.instrumentationLibrary.name}, 'spans': il.spans}), []))")
    spans = (f"flatten(list_transform(_t.resourceSpans, lambda rs: flatten(list_transform({scopes}, lambda ss: "
             "list_transform(ss.spans, lambda sp: {'sp': sp, 'scope': ss.scope.name, "
             "'rattrs': rs.resource.attributes})))))")
    sql = f"""
        WITH parsed AS (SELECT k, line, try(json_transform(line, {_lit(_LINE)})) AS _t FROM ({lines})),
        flat AS (SELECT k, CASE WHEN _t.resourceSpans IS NULL THEN line END AS _bad,
                        unnest(CASE WHEN _t.resourceSpans IS NOT NULL THEN {spans}
                                    WHEN line IS NULL OR regexp_full_match(line, {_lit(_BLANK_RE)}) THEN []
                                    ELSE [NULL] END) AS _s
                 FROM parsed),
        typed AS (SELECT k, _bad, CAST(_s.sp AS VARCHAR) AS _raw, _s.scope AS _scope,
                         coalesce(_s.rattrs, []) AS _rattrs, json_transform(_s.sp, {_lit(_SPAN)}) AS sp
                  FROM flat),
        lists AS (SELECT *, list_transform(sp.attributes, lambda a: a.key) AS _keys,
                         list_transform(sp.attributes, lambda a: {_value_text('a.value')}) AS _vals,
                         list_transform(_rattrs, lambda a: a.key) AS _rkeys,
                         list_transform(_rattrs, lambda a: {_value_text('a.value')}) AS _rvals,
                         {members('_rattrs')} AS _rextra,
                         list_filter(sp.events, lambda e: {first})[1] AS _ev
                  FROM typed),
        attrs AS (SELECT *, list_position(_keys, 'ai.operationId') > 0 AS _vercel, {span_attrs}{res_attrs} FROM lists),
        lf AS (SELECT *, CASE WHEN {lf_usage} IS NOT NULL OR {lf_cost} IS NOT NULL OR {lf_start} IS NOT NULL
                              THEN {_LANGFUSE_FN}({lf_usage}, {lf_cost}, {lf_start}, {lf_span_start}) END AS _lf
               FROM attrs)
        SELECT k, coalesce(_bad, _raw) AS raw,
               CASE WHEN _bad IS NULL THEN _lf.err_reason WHEN try(json(_bad)) IS NULL THEN 'invalid JSON'
                    ELSE 'not an OTLP trace export (no resourceSpans)' END AS _err,
               CASE WHEN _bad IS NULL THEN _lf.err_kind END AS _err_kind,
               CASE WHEN _bad IS NULL THEN _lf.err_field END AS _err_field,
               {select},
               '{{' || array_to_string({extra}, ',') || '}}' AS {_ident('s:attributes')}
        FROM lf
    """
    fixed = {}
    if "status" in specs:
        cols["status"] = specs["status"]
    else:
        cols["status"] = ColumnSpec("status", field="status")
        failed = "(" + _failed('"s:_status_code"') + ' OR "s:_lf_error")'
        fixed["status"] = (
            f"CASE WHEN regexp_matches(\"s:error_type\", {_lit(TIMEOUT)}) "
            f"OR regexp_matches(\"s:_messages\", {_lit(TIMEOUT)}) THEN 'timeout' "
            "WHEN \"s:_finish_reasons\" LIKE '%\"content_filter\"%' OR \"s:_finish_reasons\" IN ('content_filter', "
            "'content-filter') "
            f"THEN 'blocked' WHEN {failed} THEN 'error' ELSE 'ok' END")
    cols["attributes"] = ColumnSpec("attributes", field="attributes")
    src = _Source(sql=sql, cols=cols, json_cols=frozenset({"attributes"}), fixed=fixed,
                  err_kinds={"invalid JSON": "invalid JSON",
                             "not an OTLP trace export (no resourceSpans)": "not an OTLP trace export"},
                  line_reader=True, err_columns=True,
                  reread=lambda p: _otel_source(con, replace(plan, path=p, lenient=False))[0])
    return src, 0


# ------------------------------------------------------------------------------------------- typing and validation


def _show(expr: str) -> str:
    """SQL quoting a value for a reason, cut at 80 characters (cast first: left() and length() take text only)."""
    e = f"CAST({expr} AS VARCHAR)"
    return f"'''' || left({e}, 80) || CASE WHEN length({e}) > 80 THEN '...' ELSE '' END || ''''"


def _failed(code: str) -> str:
    """SQL: whether an OTLP status code (text: a number or a name, any case) is an error, as
    :func:`workbench.io.spans.status_name` reads it."""
    return f"upper(trim({code})) IN ({', '.join(map(_lit, ERROR_STATUS_CODES))})"


def _const_text(v: Any) -> str:
    """The text of a TOML constant or default: JSON for lists and tables, true/false, numbers and dates as written."""
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=str)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    return str(v)


def _convert(t: Table, c: str, spec: ColumnSpec, s: str, json_src: bool,
             now: _dt.datetime | None = None, number: str | None = None) -> tuple[str, list[tuple[str, str, str]]]:
    """SQL for the typed value of column c from its text s, and its checks: (condition, kind, reason SQL). ``number``
    ("DOUBLE", "INTEGER" or "DECIMAL:<scale>"): s is that number, not text (the numeric SQL below takes either)."""
    typ = t.column(c).type
    dbl = _as_double(s, number)
    checks: list[tuple[str, str, str]] = []
    now = now or _now()
    if typ == "TIMESTAMP":
        if spec.unit:
            f = _UNITS_TO_US[spec.unit]
            # integers exactly (a nanosecond epoch does not fit a double), fractions through a double
            whole = f"TRY_CAST({s if number else numeric_text(s)} AS HUGEINT)"
            exact = f"{whole} * {f}" if f >= 1 else f"{whole} // {round(1 / f)}"
            fraction = f"round({dbl} * {f})"
            # (a double's text has a point or an exponent, or is inf or nan, which neither way makes a timestamp; a
            # decimal's text has a point when its scale is not 0)
            if number is None:
                us = (f"CASE WHEN contains({s}, '.') OR contains({s}, 'e') OR contains({s}, 'E') "
                      f"THEN {fraction} ELSE {exact} END")
            else:
                us = exact if number in ("INTEGER", "DECIMAL:0") else fraction
            v = f"CASE WHEN {us} BETWEEN {_TS_MIN_US} AND {_TS_MAX_US} THEN make_timestamp(CAST({us} AS BIGINT)) END"
            expected = f"epoch {spec.unit}"
        elif spec.format:
            v = f"try_strptime({s}, {_lit(spec.format)})"
            if "%z" in spec.format or "%Z" in spec.format:
                v = f"timezone('UTC', {v})"
            expected = f"format {spec.format}"
        else:
            # a date first (4-digit year, not BC): DuckDB's words 'epoch', 'infinity', 'now' are no timestamps
            v = (f"CASE WHEN NOT regexp_matches({s}, '^\\s*[0-9]{{4}}-[0-9]') OR regexp_matches({s}, '(?i)\\bBC\\b') "
                 f"THEN NULL WHEN regexp_matches({s}, '(Z|z|[+-]\\d\\d(:?\\d\\d)?)$') "
                 f"THEN timezone('UTC', TRY_CAST({s} AS TIMESTAMPTZ)) ELSE TRY_CAST({s} AS TIMESTAMP) END")
            # An offset after a space ("10:00:00 +0100", Go's "+0100 CET") is glued to the time and read again; only
            # the values the casts above could not read get this far (coalesce reads its second argument for those).
            v = (f"coalesce({v}, CASE WHEN regexp_matches({s}, {_lit(ZONE_AFTER_SPACE)}) THEN timezone('UTC', "
                 f"TRY_CAST(regexp_replace({s}, {_lit(ZONE_AFTER_SPACE)}, '\\1\\2') AS TIMESTAMPTZ)) END)")
            v = f"CASE WHEN isfinite({v}) THEN {v} END"
            expected = "ISO 8601"
        hint = _lit(f" (expected {expected})")
        if expected == "ISO 8601" and spec.field is not None:  # a mapped field: how the mapping reads the others
            field = '"' + spec.field.replace("\\", "\\\\").replace('"', '\\"') + '"'
            epoch = (f" (expected ISO 8601; an epoch number is mapped as {c} = {{ field = {field}, unit = \"s\" }}, "
                     f"or ms, us, ns)")
            layout = (f" (expected ISO 8601; another layout is mapped as {c} = {{ field = {field}, "
                      f"format = \"%m/%d/%Y %H:%M\" }}, a strptime format)")
            hint = (f"CASE WHEN regexp_matches(CAST({s} AS VARCHAR), '^\\s*[0-9]+(\\.[0-9]*)?\\s*$') "
                    f"THEN {_lit(epoch)} ELSE {_lit(layout)} END")
        checks.append((f"{{v}} IS NULL AND {s} IS NOT NULL", f"unparseable timestamp: {c}",
                       f"'unparseable timestamp in {c}: ' || {_show(s)} || {hint}"))
        if (t.name, c) not in _TS_EXEMPT:
            early = EARLIEST_TS.strftime("%Y-%m-%d")
            checks.append((f"{{v}} < TIMESTAMP '{early}'", f"implausible timestamp: {c}",
                           f"'implausible timestamp in {c}: ' || CAST({{v}} AS VARCHAR) || ' is before {early} "
                           f"(a zero or default clock?)'"))
            limit = (now + ALLOWED_CLOCK_SKEW).replace(microsecond=0)
            checks.append((f"{{v}} > TIMESTAMP '{limit}'", f"in the future: {c}",
                           f"'in the future: {c} ' || CAST({{v}} AS VARCHAR) || ' is after the clock at ingest, "
                           f"{now.replace(microsecond=0)} UTC (allowed skew {int(ALLOWED_CLOCK_SKEW.total_seconds() // 60)} min)'"))
    elif typ == "DOUBLE":
        d = dbl
        factor = _UNITS_TO_MS[spec.unit] if spec.unit else 1.0
        v = f"CASE WHEN isfinite({d}) THEN {d} * {factor!r} END" if factor != 1.0 else f"CASE WHEN isfinite({d}) THEN {d} END"
        checks.append((f"{{v}} IS NULL AND {s} IS NOT NULL", f"non-numeric value: {c}",
                       f"'non-numeric value in {c}: ' || {_show(s)}"))
        if c.endswith("_ms"):
            checks.append(("{v} < 0", f"negative latency: {c}",
                           f"'negative latency in {c}: ' || CAST({{v}} AS VARCHAR) || ' ms (end before start?)'"))
            checks.append(_too_large(c, MAX_DURATION_MS, "ms (7 days)"))
        if c == "cost_usd" or c.endswith("_usd_per_mtok"):
            checks.append(("{v} < 0", f"negative cost: {c}", f"'negative cost in {c}: ' || CAST({{v}} AS VARCHAR)"))
            checks.append(_too_large(c, MAX_COST_USD, "USD") if c == "cost_usd" else
                          _too_large(c, MAX_USD_PER_MTOK, "USD per million tokens"))
    elif typ in ("BIGINT", "INTEGER"):
        d = dbl
        lim = "9.2e18" if typ == "BIGINT" else "2147483647"
        v = (f"CASE WHEN {d} = floor({d}) AND abs({d}) <= {lim} "
             f"THEN coalesce(TRY_CAST({s} AS {typ}), TRY_CAST({d} AS {typ})) END")
        # each of the three holds only where the value is NULL: that cheap test goes first
        checks.append((f"{{v}} IS NULL AND {s} IS NOT NULL AND {d} IS NULL", f"non-numeric value: {c}",
                       f"'non-numeric value in {c}: ' || {_show(s)}"))
        checks.append((f"{{v}} IS NULL AND {s} IS NOT NULL AND ({d} <> floor({d}) OR isnan({d}))",
                       f"not an integer: {c}", f"'not an integer in {c}: ' || {_show(s)}"))
        checks.append((f"{{v}} IS NULL AND {s} IS NOT NULL", f"out of range: {c}",
                       f"'out of range for {c} ({typ}): ' || {_show(s)}"))
        if c.endswith("_tokens"):
            checks.append(("{v} < 0", f"negative token count: {c}",
                           f"'negative token count in {c}: ' || CAST({{v}} AS VARCHAR)"))
            checks.append(_too_large(c, MAX_TOKENS, "tokens in one call"))
        elif c in ("attempt", "repeat"):
            checks.append(("{v} < 0", f"negative count: {c}", f"'negative value in {c}: ' || CAST({{v}} AS VARCHAR)"))
    elif typ == "BOOLEAN":
        v = f"TRY_CAST(lower(trim({s})) AS BOOLEAN)"
        checks.append((f"{{v}} IS NULL AND {s} IS NOT NULL", f"not a boolean: {c}",
                       f"'not a boolean in {c}: ' || {_show(s)} || ' (expected true or false)'"))
    elif typ == "JSON":
        v = f"CAST({s} AS JSON)" if json_src else \
            f"CAST(CASE WHEN try(json({s})) IS NOT NULL THEN {s} ELSE CAST(to_json({s}) AS VARCHAR) END AS JSON)"
        checks.append((f"{s} IS NOT NULL AND try(json({s})) IS NULL", f"invalid JSON: {c}",
                       f"'invalid JSON in {c}: ' || {_show(s)}"))
        if json_src:
            v = f"CASE WHEN try(json({s})) IS NOT NULL THEN CAST({s} AS JSON) END"
    elif typ == "VARCHAR[]":
        v = (f"CASE WHEN try(json({s})) IS NOT NULL AND json_type({s}) = 'ARRAY' "
             f"THEN CAST(json_extract_string({s}, '$[*]') AS VARCHAR[]) "
             + (f"WHEN try(json({s})) IS NOT NULL AND json_type({s}) = 'VARCHAR' THEN [json_extract_string({s}, '$')] "
                if json_src else f"WHEN {s} IS NOT NULL THEN [{s}] ")
             + "END")
        checks.append((f"{{v}} IS NULL AND {s} IS NOT NULL", f"not a list: {c}",
                       f"'not a list of texts in {c}: ' || {_show(s)}"))
    else:  # VARCHAR
        enum = _ENUMS.get((t.name, c))
        if enum:
            v = f"lower(trim({s}))"
            allowed = "[" + ", ".join(_lit(e) for e in enum) + "]"
            what = "status" if c == "status" else c
            checks.append((f"{{v}} IS NOT NULL AND NOT list_contains({allowed}, {{v}})", f"unknown {what} value: {c}",
                           f"'unknown {what} value ' || {_show(s)} || ' in {c} (expected "
                           + ", ".join(enum[:-1]) + f" or {enum[-1]})'"))
        else:
            v = s
            if c.endswith("_id"):
                # an id given a JSON object or list (a mapping that names the object, not the field in it): its JSON
                # text would be kept as the id, which no join finds. Text that merely starts with a bracket is an id.
                checks.append((f"(starts_with({{v}}, '{{') OR starts_with({{v}}, '[')) "
                               f"AND json_type(try(json({{v}}))) IN ('OBJECT', 'ARRAY')", f"nested value: {c}",
                               f"'nested value in {c}: ' || {_show(s)} || ' is a JSON object or list, not an id "
                               f"(map a field inside it, e.g. user.id)'"))
    return v, checks


def _as_double(s: str, number: str | None) -> str:
    """SQL of the double a source value stands for: its text parsed (``TRY_CAST``), or a number's own value.

    A decimal (Parquet ``DECIMAL(p, scale)``, scale at most 22) converts to exactly the double its text parses to
    while its unscaled integer is below 2^53: DuckDB divides it, exactly held, by a power of ten exactly held (up to
    10^22), one rounding, the parse's. A larger one is converted through its text, so the result never depends on the
    path (checked on 2.2M values of 12 decimal types, magnitudes 1 to 10^38). 15x faster than the text at 1M rows.
    """
    if number is None:
        return f"TRY_CAST({numeric_text(s)} AS DOUBLE)"
    if not number.startswith("DECIMAL:"):
        return f"TRY_CAST({s} AS DOUBLE)"
    scale = int(number.split(":")[1])
    digits = str(2 ** 53).rjust(scale + 1, "0")
    bound = digits[:len(digits) - scale] + ("." + digits[len(digits) - scale:] if scale else "")
    return (f"CASE WHEN abs({s}) < {bound} THEN CAST({s} AS DOUBLE) "
            f"ELSE TRY_CAST(CAST({s} AS VARCHAR) AS DOUBLE) END")


def _too_large(c: str, bound: float, unit: str) -> tuple[str, str, str]:
    """The check of a plausibility bound: (condition, kind, reason SQL)."""
    shown = f"{bound:,.0f}"
    return (f"{{v}} > {bound!r}", f"implausible value: {c}",
            f"'implausible value in {c}: ' || CAST({{v}} AS VARCHAR) || ' (more than {shown} {unit})'")


@dataclass
class _LoadSQL:
    """The SQL of loading one source into its table (:func:`_load_sql`)."""
    stage: Any  # (source SQL, extra columns) -> SELECT of staged rows: k, _q_kind/_q_field/_q_reason, raw, columns
    insert: str  # INSERT of {rows} (a FROM clause ending in WHERE or AND) not already in the table
    part: str  # the key columns, comma-separated
    key: str  # one value per key (a struct for a key of several columns)
    out_cols: list[str]
    # a LEFT JOIN of the staged rows (s) to the table's keys: d._wb_in is true where the table holds the row's key.
    # (A LEFT JOIN, unlike EXISTS, lets DuckDB build its hash table on the smaller side: a small file against a large
    # table is not a hash table of the whole table. A table with a key twice repeats rows: the counts then disagree
    # with the file's and it is staged, never loaded wrong.)
    in_table: str = ""


def _load_sql(src: _Source, t: Table, run_id: str) -> _LoadSQL:
    # 1. source text per column, with defaults and constants
    texts: dict[str, str] = {}
    for c, spec in src.cols.items():
        # constants and defaults enter as text, like every source value (typed and checked below)
        if spec.has_value:
            base = _lit(_const_text(spec.value))
        elif c in src.numbers:  # a number: never empty text
            base = _ident("s:" + c)
        else:
            base = f"nullif({_ident('s:' + c)}, '')"
            if c in MISSING_ID_COLUMNS:  # every format's rows come through here: the one place ids are cleaned
                base = _missing_id_sql(base)
        if spec.default is not None:
            base = f"coalesce({base}, {_lit(_const_text(spec.default))})"
        texts[c] = base
    for c, sql in src.fixed.items():
        texts[c] = sql
    text_cols = ", ".join(f"{expr} AS {_ident('x:' + c)}" for c, expr in texts.items())
    # 2. typed values (one level, computed once) and checks over them
    typed: dict[str, str] = {}
    checks: list[tuple[str, str, str, str]] = []  # (condition, field, kind, reason)
    now = _now()
    for c, spec in src.cols.items():
        s = _ident("x:" + c)
        v, cks = _convert(t, c, spec, s, c in src.json_cols, now, src.numbers.get(c))
        typed[c] = v
        tv = _ident("t:" + c)
        for cond, kind, reason in cks:
            checks.append((cond.replace("{v}", tv), c, kind, reason.replace("{v}", tv)))
    typed_cols = ", ".join(f"{v} AS {_ident('t:' + c)}" for c, v in typed.items())
    out: dict[str, str] = {c: _ident("t:" + c) for c in typed}
    if t.name == "calls":
        if "latency_ms" not in out and "ts" in out and "end_ts" in out:
            out["latency_ms"] = f"CAST(epoch_us({out['end_ts']}) - epoch_us({out['ts']}) AS DOUBLE) / 1000"
        if "model" not in out and "request_model" in out:
            out["model"] = out["request_model"]
        elif "model" in out and "request_model" in out:
            out["model"] = f"coalesce({out['model']}, {out['request_model']})"
        if "ts" in out and "end_ts" in out:
            checks.insert(0, (f"{out['end_ts']} < {out['ts']}", "end_ts", "end before start: end_ts",
                              f"'end before start: end_ts ' || CAST({out['end_ts']} AS VARCHAR) || ' < ts ' "
                              f"|| CAST({out['ts']} AS VARCHAR)"))
        if "latency_ms" not in typed and "latency_ms" in out:  # derived from end_ts - ts: bounded as if mapped
            cond, kind, reason = _too_large("latency_ms", MAX_DURATION_MS, "ms (7 days)")
            lat = f"({out['latency_ms']})"
            checks.append((cond.replace("{v}", lat), "latency_ms", kind, reason.replace("{v}", lat)))
    if t.name == "incidents" and "started_at" in out:
        # an incident detected, mitigated or resolved before it started (a local time beside a UTC one): its MTTx
        # would be negative minutes, averaged in (-25 for +10)
        for c in ("detected_at", "mitigated_at", "resolved_at"):
            if c in out:
                checks.append((f"{out[c]} < {out['started_at']}", c, f"before start: {c}",
                               f"'before start: {c} ' || CAST({out[c]} AS VARCHAR) || ' < started_at ' "
                               f"|| CAST({out['started_at']} AS VARCHAR)"))
    if t.name == "calls":
        cached = [c for c in ("cache_read_tokens", "cache_write_tokens") if c in out]
        if "input_tokens" in out and cached:
            # Input tokens hold the cached ones (the OpenTelemetry rule, which the cost formula assumes). Cached tokens
            # above the input tokens can only mean a count without them (Anthropic's API usage: input_tokens is the
            # uncached part): the input is their sum, and the count read stays in attributes.
            it = out["input_tokens"]
            both = " + ".join(f"coalesce({out[c]}, 0)" for c in cached)
            apart = f"{it} < {both}"
            note = f"json_object('workbench.uncached_input_tokens', {it})"
            attrs = f"json_merge_patch(coalesce({out['attributes']}, '{{}}'), {note})" if "attributes" in out else note
            out["attributes"] = (f"CASE WHEN {apart} THEN CAST({attrs} AS JSON) "
                                 f"ELSE {out.get('attributes', 'NULL::JSON')} END")
            out["input_tokens"] = f"CASE WHEN {apart} THEN {it} + {both} ELSE {it} END"
    key_hash = None
    if src.hash_column:
        parts = ", ".join(_ident(f"h:{i}") for i in range(len(src.hash_fields))) or "NULL"
        key_hash = f"CAST(to_json([{parts}]::VARCHAR[]) AS VARCHAR)"
    required = [c for c in t.required if c != src.hash_column]
    miss: list[tuple[str, str, str, str]] = []
    for c in required:
        if c in texts:
            cond = f"{_ident('x:' + c)} IS NULL"
        elif c in out:
            cond = f"{out[c]} IS NULL"
        else:
            cond = "true"
        spec = src.cols.get(c)
        hint = f" (source field {spec.field!r})" if spec is not None and spec.field and not spec.has_value else ""
        miss.append((cond, c, f"missing required field: {c}", _lit(f"missing required field {c}{hint}")))
    err_kind = ("CASE " + " ".join(f"WHEN starts_with(_err, {_lit(k[:-1])}) THEN {_lit(v)}" if k.endswith("*") else
                                   f"WHEN _err = {_lit(k)} THEN {_lit(v)}" for k, v in src.err_kinds.items())
                + " ELSE _err END") if src.err_kinds else "_err"
    if src.err_columns:
        err_kind = f"coalesce(_err_kind, {err_kind})"
    all_checks = [("_err IS NOT NULL", None, None, "_err")] + miss + checks
    # The first failing check's index, evaluated once; kind, field and reason are looked up from it.
    q_idx = "CASE " + " ".join(f"WHEN {cond} THEN {i + 1}" for i, (cond, _f, _k, _r) in enumerate(all_checks)) + " END"
    kinds = "[" + ", ".join("NULL" if k is None else _lit(k) for _c, _f, k, _r in all_checks) + "]::VARCHAR[]"
    fields = "[" + ", ".join(_lit(f) for _c, f, _k, _r in all_checks) + "]::VARCHAR[]"
    # (each behind "_q IS NULL": DuckDB then evaluates the rest only for the rows a check failed)
    q_kind = f"CASE WHEN _q IS NULL THEN NULL WHEN _q = 1 THEN {err_kind} ELSE list_extract({kinds}, _q) END"
    q_field = (f"CASE WHEN _q IS NULL THEN NULL WHEN _q = 1 THEN _err_field ELSE list_extract({fields}, _q) END"
               if src.err_columns else f"CASE WHEN _q IS NULL THEN NULL ELSE list_extract({fields}, _q) END")
    q_reason = ("CASE WHEN _q IS NULL THEN NULL ELSE CASE _q "
                + " ".join(f"WHEN {i + 1} THEN {r}" for i, (_c, _f, _k, r) in enumerate(all_checks)) + " END END")
    out_cols = [c for c in t.names if c in out or c == src.hash_column]
    final = []
    for c in out_cols:
        if c == src.hash_column:
            final.append(f"sha256({key_hash} || '#' || CAST(row_number() OVER (PARTITION BY {key_hash} ORDER BY k) "
                         f"AS VARCHAR)) AS {_ident(c)}")
        else:
            final.append(f"{out[c]} AS {_ident(c)}")
    seen = "".join(f", {_ident(col)} IS NOT NULL AS {_ident(f'p:{i}')}" for i, (*_x, col) in enumerate(src.presence))

    def stage(source_sql: str, extra: str = "") -> str:
        return f"""
            SELECT k, _q_kind, _q_field, _q_reason, CASE WHEN _q_kind IS NOT NULL THEN raw END AS raw,
                   {', '.join(_ident(c) for c in out_cols)}{seen}{extra}
            FROM (
                SELECT *, {q_kind} AS _q_kind, {q_field} AS _q_field, {q_reason} AS _q_reason, {', '.join(final)}
                FROM (SELECT *, {q_idx} AS _q
                      FROM (SELECT *, {typed_cols} FROM (SELECT *, {text_cols} FROM ({source_sql}))))
            )"""

    keys = t.key
    part = ", ".join(_ident(c) for c in keys)

    # the insert: the first occurrence per key in the file, anti-joined against the table
    nullable = {c for c in keys if c not in t.required}
    on = " AND ".join(
        f"d.{_ident(c)} IS NOT DISTINCT FROM s.{_ident(c)}" if c in nullable else f"d.{_ident(c)} = s.{_ident(c)}"
        for c in keys)
    cols = [c for c in t.names if c in out_cols]
    ins_cols = ", ".join(_ident(c) for c in cols) + (", ingest_run_id" if t.lineage else "")
    ins_vals = ", ".join(f"s.{_ident(c)}" for c in cols) + (f", {_lit(run_id)}" if t.lineage else "")
    insert = (f"INSERT INTO {_ident(t.name)} ({ins_cols}) SELECT {ins_vals} FROM {{rows}} "
              f"NOT EXISTS (SELECT 1 FROM {_ident(t.name)} d WHERE {on})")
    key = (_ident(keys[0]) if len(keys) == 1 and not nullable else
           "struct_pack(" + ", ".join(f"{_ident('k' + str(i))} := {_ident(c)}" for i, c in enumerate(keys)) + ")")
    dkeys = ", ".join(f"{_ident(c)} AS {_ident(f'_wb_k{i}')}" for i, c in enumerate(keys))
    don = " AND ".join(f"d.{_ident(f'_wb_k{i}')} {'IS NOT DISTINCT FROM' if c in nullable else '='} s.{_ident(c)}"
                       for i, c in enumerate(keys))
    in_table = f"LEFT JOIN (SELECT {dkeys}, true AS _wb_in FROM {_ident(t.name)}) d ON {don}"
    return _LoadSQL(stage=stage, insert=insert, part=part, key=key, out_cols=out_cols, in_table=in_table)


@dataclass
class _Survey:
    """One pass over a source that can go straight in (``_Source.direct``): what would keep it from doing so."""
    n: int  # rows read
    bad: int  # rows a check quarantines
    distinct: int  # distinct keys of the rows whose key the table lacks (of every row when ``existing`` is None)
    found: list  # per presence column: whether any row has it
    empties: int  # typed JSONL: rows with no value for any field
    existing: int | None = None  # rows whose key is in the table already (None: not counted)

    @property
    def clean(self) -> bool:
        # Rows whose key the table holds are duplicates however often the file repeats them; the others must have
        # distinct keys for a plain insert to keep what the line-ordered load keeps (the first of a key).
        return not (self.bad or self.empties) and self.distinct == self.n - (self.existing or 0) and all(self.found)


#: Bytes a key takes in the hash table that finds keys repeated in a file, measured: the 100M keys of a Parquet file
#: needed 4 passes under the ingest memory limit of 512 MB (one pass ran out of memory; 4 took 23.2 s, 8 took 24.4 s).
_KEY_BYTES = 40


def _key_passes(con, rows: int | None) -> int:
    """How many passes over disjoint shares of the keys (by DuckDB's ``hash``) finding repeated keys takes, so that
    each pass's hash table fits in the memory limit of the load: 1 for any file of ordinary size."""
    return memory_passes_for(con, rows, _KEY_BYTES)


def _repeated_keys(con, rel: str, key: str, passes: int) -> int:
    """How many keys (``key``: a column list or an expression) occur more than once in the relation ``rel``; in
    ``passes`` passes over disjoint shares of the keys, each holding a hash table of its share only."""
    total = 0
    for i in range(passes):
        share = f"WHERE hash({key}) % {passes} = {i} " if passes > 1 else ""
        total += con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {rel} {share}GROUP BY {key} "
                             f"HAVING count(*) > 1)").fetchone()[0]
    return total


def _survey(con, src: _Source, ls: _LoadSQL, rows: int | None = None) -> _Survey:
    """Count, in one pass over the source, what would keep it from being inserted straight (no writes: safe outside
    a transaction, where a typed JSON read that fails aborts nothing). Records DuckDB rejects while reading are not
    seen here: the caller compares ``n`` with the file's records counted independently. A file of ``rows`` records
    whose keys would not fit in the memory limit has its repeated keys found in passes (:func:`_repeated_keys`);
    ``distinct`` is then ``n`` when every key is present and distinct, and less otherwise. A file of ordinary size
    also has the rows whose key the table holds already counted (``existing``): a file all of whose rows are there (a
    re-load) then needs no insert pass, and only the keys the table lacks are counted as distinct (a re-load's
    distinct count was 0.2 s of the 0.4 s it took for 1M Parquet rows)."""
    aggs = "".join(f", bool_or({_ident(f'p:{i}')})" for i in range(len(src.presence)))
    empty = ", count(*) FILTER (WHERE _empty)" if src.lines is not None else ", 0"
    passes = _key_passes(con, rows)
    rel = f"({ls.stage(src.sql, ', _empty' if src.lines is not None else '')})"
    distinct_sql = f"count(DISTINCT {ls.key}) FILTER (WHERE d._wb_in IS NULL)" if passes == 1 else f"count({ls.key})"
    existing_sql, join = ("count(d._wb_in)", ls.in_table) if passes == 1 else ("NULL", "")
    n, bad, distinct, empties, existing, *found = con.execute(
        f"SELECT count(*), count(_q_kind), {distinct_sql}{empty}, {existing_sql}{aggs} FROM {rel} s {join}").fetchone()
    if passes > 1 and distinct == n:  # every key present: repeated ones?
        distinct -= _repeated_keys(con, rel, ls.key, passes)
    return _Survey(n, bad, distinct, found, empties, existing)


#: Records read from the head of a file to find its mapped fields before a load in one read (:func:`_straight`).
_HEAD_RECORDS = 4096


#: Fewer bytes than any OTLP JSON span takes (its ids alone take 60): the file's size over it bounds its spans.
_MIN_SPAN_BYTES = 100


def _one_read_records(con, t: Table, plan: "_Plan", content_hash: str) -> int | None:
    """The records of a file worth trying to load in one read (:func:`_straight`), else None: one not counted, one
    whose keys need passes, one with the same content loaded into the table before. OTLP JSON: its spans are not
    counted before they are read; a bound from the file's size stands for them."""
    if plan.fmt == "otel":
        expected = max(1, plan.path.stat().st_size // _MIN_SPAN_BYTES)
    else:
        expected = plan.lines if plan.fmt == "jsonl" else plan.records
    if not expected or _key_passes(con, expected) > 1:
        return None
    if con.execute(f"SELECT count(*) FROM ingest_runs WHERE content_hash = {_lit(content_hash)} "
                   f"AND target_table = {_lit(t.name)}").fetchone()[0]:
        return None
    return expected


def _next_rowid(con, t: Table) -> int:
    """The row id the next row inserted into ``t`` gets: the rows a load inserts have ids from it on."""
    return con.execute(f"SELECT coalesce(max(rowid) + 1, 0) FROM {_ident(t.name)}").fetchone()[0]


def _rejected(con) -> bool:
    """Whether DuckDB rejected a record while reading in this load (``store_rejects`` into ``_wb_rej``)."""
    return _exists(con, "_wb_rej") and con.execute("SELECT count(*) FROM _wb_rej").fetchone()[0] > 0


def _straight(con, src: _Source, ls: _LoadSQL, t: Table, plan: "_Plan", content_hash: str) -> dict | None:
    """Load a file that looks clean in one read: the insert with its anti-join, guarded so that it fails at the
    first row a check would quarantine (or, typed JSONL, a row with no value at all). It counts as the clean load of
    the survey path (:func:`_survey`, ``_Survey.clean``) only when, in addition, every record of the file was
    inserted (none already in the table, none lost by the reader) and the inserted keys are distinct; every mapped
    field was found in the file's first records before. Then the transaction stays open and the counts are returned.
    Otherwise it is rolled back and None returned: the file takes the survey path, with the same result as if this
    had not been tried. Not tried for a file loaded before (a re-load is mostly duplicates: the insert would find
    few new rows) or one whose keys need passes (:func:`_key_passes`).

    OTLP JSON, whose spans are not counted before they are read: the guard fails at a span whose key the table
    holds too, so every span read is inserted, and no line may be one DuckDB rejected while reading."""
    expected = _one_read_records(con, t, plan, content_hash)
    if expected is None:
        return None
    counted = plan.fmt != "otel"
    clock = time.perf_counter()
    if src.presence:
        try:
            found = con.execute("SELECT " + ", ".join(f"bool_or({_ident(c)} IS NOT NULL)" for *_x, c in src.presence)
                                + f" FROM (SELECT * FROM ({src.sql}) LIMIT {_HEAD_RECORDS})").fetchone()
        except Exception:  # a read that fails: the survey path says why
            return None
        if not all(found):
            return None
    checked = time.perf_counter() - clock
    empty = src.lines is not None  # typed JSONL: the rows with no value are read again by the line reader
    guard = "_q_kind IS NULL" + (" AND NOT _empty" if empty else "")
    # The guard sits in the key, which the anti-join reads for every row of the file. (As a filter it would make
    # DuckDB insert in one thread: 1.6x the time at 1M rows.)
    key = _ident(t.key[0])
    in_table = "" if counted else f" {ls.in_table}"
    if not counted:
        guard += " AND _wb_in IS NULL"
    rows = (f"(SELECT * REPLACE (CASE WHEN {guard} THEN {key} ELSE error('workbench: a row to quarantine') END "
            f"AS {key}) FROM ({ls.stage(src.sql, ', _empty' if empty else '')}) s{in_table}) s WHERE")
    con.execute("BEGIN TRANSACTION")
    try:
        start = _next_rowid(con, t)
        clock = time.perf_counter()
        inserted = con.execute(ls.insert.format(rows=rows)).fetchone()[0]
        written = time.perf_counter() - clock
        rejected = not counted and _rejected(con)
        if not rejected and (inserted == expected or not counted):
            # rows inserted in this transaction have row ids past those of the table before
            clock = time.perf_counter()
            n, distinct = con.execute(f"SELECT count(*), count(DISTINCT {ls.key}) FROM {_ident(t.name)} "
                                      f"WHERE rowid >= {start}").fetchone()
            if n == distinct == inserted:
                return {"read": inserted, "inserted": inserted, "duplicates": 0, "quarantined": 0, "reasons": {},
                        "_validate": checked + time.perf_counter() - clock, "_write": written}
    except Exception:  # a row to quarantine (or any failure): the survey path says what and why
        pass
    con.execute("ROLLBACK")
    return None


def _load(con, src: _Source, t: Table, run_id: str, path: str, rejects_offset: int | None,
          survey: _Survey | None = None, ls: _LoadSQL | None = None, shift: int = 0) -> dict:
    """Stage, quarantine and insert a file's rows; ``shift``: lines before the part of a file read (:class:`_Tail`),
    added to the line numbers of the quarantine."""
    ls = ls or _load_sql(src, t, run_id)
    stage, insert, part = ls.stage, ls.insert, ls.part
    source_sql = src.sql
    clock = time.perf_counter()
    if survey is not None:
        if survey.clean and survey.existing == survey.n:  # every row is in the table already: nothing to insert
            return {"read": survey.n, "inserted": 0, "duplicates": survey.n, "quarantined": 0, "_validate": 0.0,
                    "_write": 0.0, "reasons": {}}
        if survey.clean:
            # Nothing keeps the file from going straight in: a second pass inserts it (two reads of the file cost
            # less than writing it to a staging table and reading that back).
            start = _next_rowid(con, t)
            inserted = con.execute(insert.format(rows=f"({stage(src.sql)}) s WHERE")).fetchone()[0]
            # The survey read only the columns it counts: a field it did not read can still be one DuckDB rejects
            # (CSV: not UTF-8), and that record was then counted a duplicate. Such a file is staged instead.
            if not (_rejected(con) or survey.existing is not None and inserted != survey.n - survey.existing):
                return {"read": survey.n, "inserted": inserted, "duplicates": survey.n - inserted, "quarantined": 0,
                        "_validate": 0.0, "_write": time.perf_counter() - clock,
                        "reasons": {}}
            con.execute(f"DELETE FROM {_ident(t.name)} WHERE rowid >= {start}")  # in this load's transaction
        con.execute("DROP TABLE IF EXISTS temp._wb_rej")
        con.execute("DROP TABLE IF EXISTS temp._wb_rejscan")
    if src.ordered is not None:  # line numbers are needed (a reason names its line; the first of a key counts)
        source_sql = src.ordered
    con.execute(f"CREATE TEMP TABLE _wb_stage AS {stage(source_sql)}")
    if src.lines is not None:  # read by the typed reader
        bad = con.execute("SELECT count(_q_kind) FROM _wb_stage").fetchone()[0]
        empties = survey.empties if survey is not None else 1
        if bad or empties:  # the lines it cannot vouch for are read again by the line reader
            con.execute(f"CREATE TEMP TABLE _wb_redo AS SELECT k FROM _wb_stage WHERE _q_kind IS NOT NULL "
                        f"UNION {src.empty}")
            if src.hash_column:  # a hash key numbers repeats within the whole file: read it all again
                con.execute("DROP TABLE _wb_stage")
                con.execute(f"CREATE TEMP TABLE _wb_stage AS {stage(src.lines.sql)}")
            else:
                con.execute("DELETE FROM _wb_stage WHERE k IN (SELECT k FROM _wb_redo)")
                con.execute(f"INSERT INTO _wb_stage {stage(src.redo)}")
    if not shift:  # what was appended to a file need not hold every field: the beginning, loaded before, did
        _check_presence(con, src, path)
    # 3. records DuckDB rejected while reading (CSV: wrong number of fields; any: invalid encoding, line too long)
    n_rej = 0
    if rejects_offset is not None and _exists(con, "_wb_rej"):
        con.execute("""CREATE OR REPLACE TEMP TABLE _wb_rejects AS
                       SELECT DISTINCT ON (line) CAST(line AS BIGINT) AS line, CAST(error_type AS VARCHAR) AS et,
                              error_message, csv_line FROM _wb_rej ORDER BY line""")
        n_rej = con.execute("SELECT count(*) FROM _wb_rejects").fetchone()[0]
        # DuckDB keeps the first 10,000 characters of a rejected record: the quarantine keeps it whole, from the file
        cut = [r[0] for r in con.execute("SELECT line FROM _wb_rejects WHERE strlen(csv_line) >= 9990").fetchall()]
        if cut:
            whole = _whole_records(src.file or Path(path), src, set(cut))
            con.executemany("UPDATE _wb_rejects SET csv_line = ? WHERE line = ?", [[t, n] for n, t in whole.items()])
        if n_rej:
            # Good rows are numbered without the rejected ones: shift each past the rejects before it.
            con.execute(f"""CREATE TEMP TABLE _wb_shift AS
                            SELECT line - rn AS thr, max(rn) AS shift
                            FROM (SELECT line, row_number() OVER (ORDER BY line) AS rn FROM _wb_rejects) GROUP BY 1""")
            con.execute(f"""UPDATE _wb_stage SET k = k + {rejects_offset}
                            + coalesce((SELECT max(shift) FROM _wb_shift WHERE thr < _wb_stage.k + {rejects_offset}), 0)""")
            rejects_offset = 0
    if rejects_offset:
        con.execute(f"UPDATE _wb_stage SET k = k + {rejects_offset}")
    if n_rej and src.reread is not None:
        n_rej -= _undecodable_spans(con, src, ls, Path(path))
    # 4. quarantine
    head = _sql_values([run_id, path])
    con.execute(f"INSERT INTO quarantine SELECT {head}, k + {int(shift)}, {_lit(t.name)}, _q_field, _q_reason, raw "
                f"FROM _wb_stage WHERE _q_kind IS NOT NULL")
    reasons: dict[str, int] = dict(con.execute(
        "SELECT _q_kind, count(*) FROM _wb_stage WHERE _q_kind IS NOT NULL GROUP BY 1").fetchall())
    if n_rej:
        fields_kind = "'reserved bytes in line'" if src.line_reader else "'wrong number of fields'"
        kinds = f"""CASE et WHEN 'MISSING COLUMNS' THEN {fields_kind}
                           WHEN 'TOO MANY COLUMNS' THEN {fields_kind}
                           WHEN 'INVALID ENCODING' THEN {_lit(NOT_UTF8)}
                           WHEN 'LINE SIZE OVER MAXIMUM' THEN 'line too long'
                           ELSE 'unreadable record' END"""
        reason = f"""CASE WHEN et IN ('MISSING COLUMNS', 'TOO MANY COLUMNS') AND NOT {src.line_reader}
                          THEN 'wrong number of fields: ' || error_message
                          WHEN et = 'TOO MANY COLUMNS' THEN 'line contains the reserved bytes 0x1E 0x1F'
                          ELSE {kinds} || ': ' || error_message END"""
        con.execute(f"INSERT INTO quarantine SELECT {head}, line + {int(shift)}, {_lit(t.name)}, NULL, {reason}, "
                    f"csv_line FROM _wb_rejects")
        for kind, n in con.execute(f"SELECT {kinds}, count(*) FROM _wb_rejects GROUP BY 1").fetchall():
            reasons[kind] = reasons.get(kind, 0) + n
    staged, bad = con.execute("SELECT count(*), count(_q_kind) FROM _wb_stage").fetchone()
    # 5. insert
    # Keys repeated inside the file are rare: a hash aggregate finds whether there are any, and only then does the
    # first-per-key window (a sort of the whole file by key) run.
    repeated = _repeated_keys(con, "(SELECT * FROM _wb_stage WHERE _q_kind IS NULL)", part,
                              _key_passes(con, staged - bad))
    first = (f"(SELECT *, row_number() OVER (PARTITION BY {part} ORDER BY k) AS _rn FROM _wb_stage "
             f"WHERE _q_kind IS NULL) s WHERE s._rn = 1 AND" if repeated else
             "(SELECT * FROM _wb_stage WHERE _q_kind IS NULL) s WHERE")
    staged_s = time.perf_counter() - clock
    clock = time.perf_counter()
    inserted = con.execute(insert.format(rows=first)).fetchone()[0]
    written_s = time.perf_counter() - clock
    valid = staged - bad
    con.execute("DROP TABLE IF EXISTS temp._wb_rejects")
    return {"read": staged + n_rej, "inserted": inserted, "duplicates": valid - inserted,
            "_validate": staged_s, "_write": written_s,
            "quarantined": bad + n_rej, "reasons": reasons}


def _undecodable_spans(con, src: _Source, ls: _LoadSQL, path: Path) -> int:
    """OTLP JSON lines DuckDB rejected as not UTF-8, where the bytes that are not UTF-8 all lie inside spans: each
    such span is staged to be quarantined with its line and span id, and the line's other spans are staged as read
    (from a copy of the line without them, by the same reader). Returns the lines so split, no longer rejects; a line
    that is no OTLP export, or with such bytes outside its spans (a resource, a scope), stays rejected whole."""
    lines = {r[0] for r in con.execute("SELECT line FROM _wb_rejects WHERE et = 'INVALID ENCODING'").fetchall()}
    split: dict[int, tuple[str, list[tuple[str, str]]]] = {}
    for n, text in _whole_records(src.file or path, src, lines, errors="surrogateescape").items():
        parts = _split_spans(text)
        if parts is not None:
            split[n] = parts
    if not split:
        return 0
    order = sorted(split)
    with tempfile.TemporaryDirectory(prefix="workbench-utf8-") as tmp:
        copy = Path(tmp) / "spans.jsonl"
        copy.write_text("".join(split[n][0] + "\n" for n in order), encoding="utf-8")
        lines_of = ", ".join(f"({i}, {n})" for i, n in enumerate(order, 1))
        staged = ls.stage(src.reread(copy).sql)
        con.execute(f"INSERT INTO _wb_stage BY NAME SELECT s.* REPLACE (m.n AS k) FROM ({staged}) s "
                    f"JOIN (VALUES {lines_of}) m(i, n) ON s.k = m.i")
    kind = NOT_UTF8
    con.executemany("INSERT INTO _wb_stage (k, _q_kind, _q_reason, raw) VALUES (?, ?, ?, ?)",
                    [[n, kind, f"{kind} in span {sid}", raw] for n in order for sid, raw in split[n][1]])
    con.execute(f"DELETE FROM _wb_rejects WHERE line IN ({', '.join(map(str, order))})")
    return len(order)


def _split_spans(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """An OTLP JSON line read with its bytes that are not UTF-8 as surrogates: the line without the spans that hold
    such bytes, and those spans (span id, text with the bytes replaced); None when it is no OTLP export or such bytes
    lie outside its spans (:func:`~workbench.io.records.split_undecodable_spans`).

    >>> line = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "a1"}, {"spanId": "a2", "x": "\\xff"}]}]}]}'
    >>> good, bad = _split_spans(line.decode("utf-8", "surrogateescape"))
    >>> good, bad[0][0], bad[0][1] == '{"spanId": "a2", "x": "\\ufffd"}'
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "a1"}]}]}]}', 'a2', True)
    >>> _split_spans(b'{"resourceSpans": [{"resource": {"x": "\\xff"}}]}'.decode("utf-8", "surrogateescape")) is None
    True
    """
    from workbench.io.records import shown_text, split_undecodable_spans

    try:
        doc = json.loads(text)
    except ValueError:
        return None
    parts = split_undecodable_spans(doc)
    if parts is None:
        return None
    good, bad = parts
    return json.dumps(good, ensure_ascii=False), [(sid, shown_text(json.dumps(sp, ensure_ascii=False)))
                                                  for sid, sp in bad]


def _whole_records(path: Path, src: _Source, wanted: set[int], errors: str = "backslashreplace") -> dict[int, str]:
    """The text of the records starting at these physical lines (1 = first line), read from the file: a line for
    JSONL and OTLP, a record (its lines) for CSV. Bytes that are not UTF-8 are kept as \\x.. escapes (JSONL and
    OTLP: as ``errors`` decodes them)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    out: dict[int, str] = {}
    if src.csv_opts is None:
        with opener(path, "rb") as fh:
            for n, line in enumerate(fh, 1):
                if n in wanted:
                    out[n] = line.decode("utf-8", errors).removesuffix("\n").removesuffix("\r")
        return out
    import csv

    o = src.csv_opts
    delim = _csv_delimiter(o, path)
    quote = o.get("quote", '"')
    opts: dict[str, Any] = {"quoting": csv.QUOTE_NONE} if not quote else {"quotechar": quote}
    if quote and o.get("escape", quote) != quote:
        opts.update(escapechar=o["escape"], doublequote=False)
    allow_long_csv_fields()
    buf: list[str] = []
    with opener(path, "rt", encoding="utf-8", errors="backslashreplace", newline="") as fh:
        def lines():
            for ln in fh:
                buf.append(ln)
                yield ln if len(delim) == 1 else ln.replace(delim, "\x1f")
        reader = csv.reader(lines(), delimiter=delim if len(delim) == 1 else "\x1f", **opts)
        while True:
            start = reader.line_num + 1
            buf.clear()
            try:
                next(reader)
            except StopIteration:
                break
            except csv.Error:
                pass
            if start in wanted:
                out[start] = "".join(buf).removesuffix("\n").removesuffix("\r")
    return out


def _check_presence(con, src: _Source, path: str) -> None:
    """JSONL: a mapped field that no record of the file has is a mistake in the mapping (a typo would silently null
    the column), unless the mapping says ``optional = true``. A field present only as JSON null is present."""
    if not src.presence:
        return
    aggs = ", ".join(f"bool_or({_ident(f'p:{i}')})" for i in range(len(src.presence)))
    found = con.execute(f"SELECT count(*) FILTER (WHERE _q_kind IS NULL OR _q_kind NOT IN "
                        f"('invalid JSON', 'not a JSON object')), {aggs} FROM _wb_stage").fetchone()
    if not found[0]:
        return  # no JSON object at all: every line is quarantined already
    for (key, fld, paths, _col), hit in zip(src.presence, found[1:]):
        if hit:
            continue
        exists = " OR ".join(f"json_exists(raw, {_lit(p)})" for p in paths)
        lines = src.lines or src
        n = con.execute(f"SELECT count(*) FROM ({lines.sql}) WHERE _err IS NULL AND ({exists})").fetchone()[0]
        if not n:
            raise IngestError(f"{path}: mapping {key}: no record of the file has the field {fld!r} (a typo?); "
                              f"nothing of the file was loaded; if the field may be absent, map it with "
                              f"{{ field = {json.dumps(fld)}, optional = true }}")


def _exists(con, name: str) -> bool:
    return bool(con.execute(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = {_lit(name)}").fetchone()[0])


def _sql_values(values: list) -> str:
    """SQL literals of texts, numbers, timestamps and NULLs, comma-separated. (DuckDB's Python client imports numpy
    and pandas at a process's first query with parameters: 0.4 s of every CLI ingest.) A text that is not UTF-8 (a
    file name with undecodable bytes) DuckDB refuses, as a literal as much as a parameter or a path to read: the file then
    fails with an IngestError and nothing of it is written."""
    return ", ".join(f"TIMESTAMP '{v.isoformat(sep=' ')}'" if isinstance(v, _dt.datetime) else _lit(v)
                     for v in values)