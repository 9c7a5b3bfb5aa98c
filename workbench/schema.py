"""The canonical tables, declared once.

Every table of the workbench is declared here with its columns, their DuckDB types, their meaning and the natural key
that ingest deduplicates on. ``db.py`` creates and migrates the tables from these declarations; ``ingest.py`` validates
and maps source rows onto them; the README's table reference is generated from them (:func:`markdown_reference`).

Conventions
-----------
* Timestamps are ``TIMESTAMP`` in UTC, without a zone.
* Token rule (OpenTelemetry GenAI): cached tokens are counted inside ``input_tokens``, reasoning tokens inside
  ``output_tokens``.
* Names carry their unit: ``*_ms`` milliseconds, ``*_usd`` US dollars, ``*_tokens`` token counts.

Examples
--------
>>> TABLES["calls"].key
('call_id',)
>>> "latency_ms" in TABLES["calls"].names
True
>>> TABLES["calls"].column("latency_ms").type
'DOUBLE'
"""

from __future__ import annotations

import datetime as _dt

from workbench.errors import NotFoundError

from dataclasses import dataclass, field

SCHEMA_VERSION = 4


def utc_now(*, seconds: bool = False) -> _dt.datetime:
    """The clock as the tables store time: UTC without a zone (``seconds=True`` drops the microseconds).

    >>> utc_now().tzinfo is None
    True
    """
    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=0) if seconds else now


#: How far after the clock a time may be and still be "now": ingest quarantines rows dated later ("in the future"), and
#: the ``slo`` / ``budget`` commands refuse an ``--at`` later than the clock by more.
ALLOWED_CLOCK_SKEW = _dt.timedelta(minutes=5)


def not_after_clock(at: _dt.datetime, what: str) -> _dt.datetime:
    """``at`` unchanged, or a ParameterError when it is after the clock by more than :data:`ALLOWED_CLOCK_SKEW`: an
    SLO or a budget evaluated at a time that has not come yet sees no call and reads "ok" (a typo, 2062 for 2026).

    >>> not_after_clock(_dt.datetime(2026, 1, 1), "slo: --at").year
    2026
    >>> not_after_clock(_dt.datetime(2999, 1, 1), "slo: --at")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: slo: --at: 2999-01-01 00:00:00 is after the clock (... UTC): nothing has happened then yet
    """
    from workbench.errors import ParameterError

    now = utc_now(seconds=True)
    if at > now + ALLOWED_CLOCK_SKEW:
        raise ParameterError(f"{what}: {at} is after the clock ({now} UTC): nothing has happened then yet")
    return at


@dataclass(frozen=True)
class Column:
    """One column: name, DuckDB type, whether a row without it is rejected, and what it means.

    The declarations below write it as ``C`` (``C = Column``).

    Examples
    --------
    >>> C("ts", "TIMESTAMP", "Start of the operation, UTC.", True)
    Column(name='ts', type='TIMESTAMP', doc='Start of the operation, UTC.', required=True)
    >>> TABLES["calls"].column("status").required, TABLES["calls"].column("model").required
    (True, False)
    """

    name: str
    type: str
    doc: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    """One canonical table: its columns, natural key and the column that places a row in time.

    Examples
    --------
    >>> t = Table("notes", "A note.", (C("note_id", "VARCHAR", "Id.", True), C("text", "VARCHAR", "Text.")),
    ...           key=("note_id",), lineage=False)
    >>> t.names, t.required
    (('note_id', 'text'), ('note_id',))
    >>> print(t.ddl())
    CREATE TABLE IF NOT EXISTS "notes" (
      "note_id" VARCHAR,
      "text" VARCHAR
    )
    >>> t.column("body")
    Traceback (most recent call last):
    ...
    workbench.errors.NotFoundError: table 'notes' has no column 'body'; columns: note_id, text
    """

    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time: str | None = None
    hashed_key: bool = False  # the key column may be derived as a stable hash of the row when the source has none
    lineage: bool = field(default=True)  # rows carry the ingest run that wrote them
    #: columns a later load of a stored key fills where the stored row has none (never one it has): a source that
    #: exports the current state of its rows (an incident exported open, again once resolved)
    fills: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise NotFoundError(f"table {self.name!r} has no column {name!r}; columns: {', '.join(self.names)}")

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def ddl(self) -> str:
        cols = [f'"{c.name}" {c.type}' for c in self.columns]
        if self.lineage:
            cols.append('"ingest_run_id" VARCHAR')
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  ' + ",\n  ".join(cols) + "\n)"


C = Column

CALLS = Table(
    "calls",
    "One LLM, agent or tool operation: an OpenTelemetry span or one row of a request log.",
    (
        C("call_id", "VARCHAR", "Natural id of the operation: the span id, or a stable hash of the source row.", True),
        C("trace_id", "VARCHAR", "Trace the operation belongs to; one user task is one trace."),
        C("parent_id", "VARCHAR", "Parent span id (agent step -> tool call); null for a root span."),
        C("ts", "TIMESTAMP", "Start of the operation, UTC.", True),
        C("end_ts", "TIMESTAMP", "End of the operation, UTC; null when the source gives only a duration."),
        C("latency_ms", "DOUBLE", "End-to-end duration in milliseconds (end - start)."),
        C("ttft_ms", "DOUBLE", "Time to first token (first streamed chunk - send time), milliseconds; null if not streamed."),
        C("operation", "VARCHAR", "gen_ai.operation.name: chat, text_completion, embeddings, execute_tool, invoke_agent, ..."),
        C("name", "VARCHAR", "Span name, or the tool name for an execute_tool operation."),
        C("feature", "VARCHAR", "The product feature the call serves (support_assistant, summariser, ...)."),
        C("environment", "VARCHAR", "Deployment environment: production, staging, shadow, ..."),
        C("provider", "VARCHAR", "gen_ai.provider.name (or the older gen_ai.system): openai, anthropic, azure, ..."),
        C("model", "VARCHAR", "Model that answered: gen_ai.response.model, else gen_ai.request.model."),
        C("request_model", "VARCHAR", "Model that was asked for (gen_ai.request.model); differs from model on a fallback "
          "(a dated snapshot of it, gpt-4o-2024-08-06 for gpt-4o, is the same model)."),
        C("prompt_version", "VARCHAR", "Version of the prompt template."),
        C("user_id", "VARCHAR", "End user (pseudonymous id)."),
        C("session_id", "VARCHAR", "Conversation or session id (gen_ai.conversation.id, session.id)."),
        C("variant", "VARCHAR", "Experiment arm that produced the call (control, treatment, shadow, ...)."),
        C("status", "VARCHAR", "ok, error, timeout or blocked.", True),
        C("error_type", "VARCHAR", "Error class when status is not ok (error.type)."),
        C("finish_reason", "VARCHAR", "First of gen_ai.response.finish_reasons: stop, length, tool_calls, content_filter, ..."),
        C("attempt", "INTEGER", "1 for the first attempt of a request, 2.. for retries."),
        C("fallback", "BOOLEAN", "True when the call was a retry or was answered by another model than requested."),
        C("input_tokens", "BIGINT", "Input (prompt) tokens, cached tokens included (a count read without them, "
          "below its cached tokens, is stored as their sum; attributes keep it as workbench.uncached_input_tokens)."),
        C("output_tokens", "BIGINT", "Output (completion) tokens, reasoning tokens included."),
        C("cache_read_tokens", "BIGINT", "Input tokens served from the provider's prompt cache (part of input_tokens)."),
        C("cache_write_tokens", "BIGINT", "Input tokens written to the provider's prompt cache (part of input_tokens)."),
        C("reasoning_tokens", "BIGINT", "Reasoning tokens (part of output_tokens)."),
        C("cost_usd", "DOUBLE", "Cost reported by the source (gateway, provider); null when not reported."),
        C("attributes", "JSON", "Every other source attribute, as JSON."),
    ),
    key=("call_id",),
    time="ts",
    hashed_key=True,
)

ANSWERS = Table(
    "answers",
    "An answer that can be evaluated: the question, the retrieved contexts and the answer text.",
    (
        C("call_id", "VARCHAR", "The call that produced the answer (or the id of a test-set row).", True),
        C("question", "VARCHAR", "User question or input."),
        C("contexts", "VARCHAR[]", "Retrieved passages the answer should be grounded in."),
        C("answer", "VARCHAR", "Answer text.", True),
        C("reference", "VARCHAR", "Reference (gold) answer, when one exists."),
        C("source", "VARCHAR", "Dataset or log the answer came from."),
        C("ts", "TIMESTAMP", "When the answer was produced, UTC."),
    ),
    key=("call_id",),
    time="ts",
)

EVALS = Table(
    "evals",
    "A score of one answer by one evaluator (detector, LLM judge, ragas metric, human label).",
    (
        C("call_id", "VARCHAR", "The evaluated answer.", True),
        C("metric", "VARCHAR", "What is scored, e.g. hallucination_score, faithfulness_score, human_label.", True),
        C("value", "DOUBLE", "The score; null when the answer was unscorable."),
        C("label", "VARCHAR", "Discrete verdict, e.g. hallucinated / supported / unscorable."),
        C("evaluator", "VARCHAR", "Name of the evaluator: detector name, judge model, 'human'.", True),
        C("evaluator_version", "VARCHAR", "Version of the evaluator; a new version re-scores.", True),
        C("run_id", "VARCHAR", "The evaluation run that wrote the row."),
        C("repeat", "INTEGER", "Repeat index for repeat-k judge runs (0 for a single run)."),
        C("ts", "TIMESTAMP", "When the score was written, UTC."),
        C("explanation", "VARCHAR", "Why: the unsupported claims, the judge's reasoning."),
        C("details", "JSON", "Structured evidence, e.g. per-claim support."),
    ),
    key=("call_id", "metric", "evaluator", "evaluator_version", "repeat"),
    time="ts",
)

FEEDBACK = Table(
    "feedback",
    "A user signal on an answer.",
    (
        C("feedback_id", "VARCHAR", "Natural id, or a stable hash of the row.", True),
        C("call_id", "VARCHAR", "The answer the signal is about."),
        C("user_id", "VARCHAR", "Who gave it."),
        C("ts", "TIMESTAMP", "When, UTC.", True),
        C("kind", "VARCHAR", "thumbs, accept, edit, copy or rating.", True),
        C("value", "DOUBLE", "thumbs: 1 up / 0 down; accept/edit/copy: 1; rating: the rating."),
    ),
    key=("feedback_id",),
    time="ts",
    hashed_key=True,
)

EVENTS = Table(
    "events",
    "A product event, for adoption, retention and funnels (AI and non-AI features alike).",
    (
        C("event_id", "VARCHAR", "Natural id, or a stable hash of the row.", True),
        C("user_id", "VARCHAR", "Who.", True),
        C("ts", "TIMESTAMP", "When, UTC.", True),
        C("event", "VARCHAR", "Event name, e.g. open_assistant, ask, accept_suggestion.", True),
        C("feature", "VARCHAR", "Feature the event belongs to."),
        C("properties", "JSON", "Other properties."),
    ),
    key=("event_id",),
    time="ts",
    hashed_key=True,
)

ASSIGNMENTS = Table(
    "assignments",
    "Exposure of a unit (user, session, request) to an experiment arm.",
    (
        C("experiment", "VARCHAR", "Experiment name.", True),
        C("unit_id", "VARCHAR", "The randomised unit (user id, session id or call id).", True),
        C("variant", "VARCHAR", "Arm: control, treatment, shadow, ...", True),
        C("ts", "TIMESTAMP", "First exposure, UTC.", True),
        C("weight", "DOUBLE", "Planned traffic share of the arm (for the sample-ratio check)."),
    ),
    key=("experiment", "unit_id"),
    time="ts",
)

GUARDRAIL_EVENTS = Table(
    "guardrail_events",
    "A guardrail decision on a call.",
    (
        C("guard_event_id", "VARCHAR", "Natural id, or a stable hash of the row.", True),
        C("call_id", "VARCHAR", "The guarded call."),
        C("ts", "TIMESTAMP", "When, UTC.", True),
        C("guard", "VARCHAR", "Guard name: pii, jailbreak, toxicity, ...", True),
        C("action", "VARCHAR", "pass, block, redact or flag.", True),
        C("verdict", "VARCHAR", "Reviewed truth, when reviewed: bad (should act) or good (should pass); else null."),
    ),
    key=("guard_event_id",),
    time="ts",
    hashed_key=True,
)

INCIDENTS = Table(
    "incidents",
    "An AI incident, with the timestamps that MTTD and MTTR are measured from.",
    (
        C("incident_id", "VARCHAR", "Incident id.", True),
        C("feature", "VARCHAR", "Affected feature."),
        C("severity", "VARCHAR", "sev1 .. sev4."),
        C("title", "VARCHAR", "Short description."),
        C("started_at", "TIMESTAMP", "When the impact started, UTC.", True),
        C("detected_at", "TIMESTAMP", "When it was detected, UTC."),
        C("mitigated_at", "TIMESTAMP", "When user impact was stopped, UTC."),
        C("resolved_at", "TIMESTAMP", "When it was resolved, UTC."),
    ),
    key=("incident_id",),
    time="started_at",
    fills=("feature", "severity", "title", "detected_at", "mitigated_at", "resolved_at"),
)

PRICES = Table(
    "prices",
    "Price of a model per million tokens, by token type, from a date on (in a time-of-day window, above a "
    "context-size tier).",
    (
        C("provider", "VARCHAR", "Provider.", True),
        C("model", "VARCHAR", "Model name as it appears in calls.model.", True),
        C("effective_from", "TIMESTAMP", "First instant the price applies, UTC.", True),
        C("min_input_tokens", "BIGINT", "Tier: the price applies to calls with at least this many input tokens (0 = all)."),
        C("input_usd_per_mtok", "DOUBLE", "Uncached input tokens, USD per million."),
        C("output_usd_per_mtok", "DOUBLE", "Output tokens, USD per million (reasoning tokens included)."),
        C("cache_read_usd_per_mtok", "DOUBLE", "Cache-read input tokens, USD per million."),
        C("cache_write_usd_per_mtok", "DOUBLE", "Cache-write input tokens, USD per million."),
        C("source", "VARCHAR", "genai-prices (with its version), workbench.toml, or the file it came from."),
        C("time_of_day_from_s", "INTEGER",
          "Time-of-day window: the price applies from this many seconds after midnight UTC until the next "
          "time_of_day_from_s of the same provider, model and effective_from (or midnight); null = 0, all day when "
          "it is the only one. DeepSeek's standard hours 00:30-16:30 UTC are three rows: 0 (off-peak), 1800, 59400 "
          "(off-peak)."),
    ),
    key=("provider", "model", "effective_from", "time_of_day_from_s", "min_input_tokens"),
    time="effective_from",
)

INGEST_RUNS = Table(
    "ingest_runs",
    "Lineage: one row per file loaded.",
    (
        C("run_id", "VARCHAR", "Id of the ingest run.", True),
        C("source_path", "VARCHAR", "File that was read.", True),
        C("content_hash", "VARCHAR",
          "sha256 of the file's bytes (with `--growing`: of those read, up to the last complete line)."),
        C("format", "VARCHAR", "otel, jsonl, csv or parquet."),
        C("target_table", "VARCHAR", "Canonical table the rows went to."),
        C("started_at", "TIMESTAMP", "UTC."),
        C("finished_at", "TIMESTAMP", "UTC."),
        C("rows_read", "BIGINT", "Rows read from the file."),
        C("rows_inserted", "BIGINT", "Rows inserted."),
        C("rows_duplicate", "BIGINT", "Rows already present (same natural key), not inserted."),
        C("rows_quarantined", "BIGINT", "Rows kept in quarantine with a reason."),
        C("workbench_version", "VARCHAR", "Version of the workbench that loaded the file."),
        C("mapping_hash", "VARCHAR", "sha256 of the mapping the file was read with (NULL: a format's own mapping)."),
        C("bytes", "BIGINT",
          "Bytes of the file that were read: its length when it was read (with `--growing`: up to its last newline)."),
        C("base_run_id", "VARCHAR", "The run that had loaded the file's first bytes, when this run read only what was "
                                    "appended to it since (NULL: the file was read whole)."),
    ),
    key=("run_id",),
    time="started_at",
    lineage=False,
)

QUARANTINE = Table(
    "quarantine",
    "Rows that could not be loaded, kept whole with the reason, so nothing is lost.",
    (
        C("run_id", "VARCHAR", "Ingest run.", True),
        C("source_path", "VARCHAR", "File.", True),
        C("line_no", "BIGINT", "Line (JSONL, CSV: 1 = first data line... see ingest docs) or row number (Parquet, OTLP span index)."),
        C("target_table", "VARCHAR", "Table the row was meant for."),
        C("field", "VARCHAR", "Canonical column at fault, when one is."),
        C("reason", "VARCHAR", "What is wrong, in words a person can act on.", True),
        C("raw", "VARCHAR", "The raw row as read."),
    ),
    key=("run_id", "line_no"),
    time=None,
    lineage=False,
)

JUDGE_CACHE = Table(
    "judge_cache",
    "Responses of LLM judges, keyed by a hash of the exact request, so re-running an evaluation costs nothing.",
    (
        C("request_hash", "VARCHAR", "sha256 of the endpoint, model, messages and sampling options (and repeat index).", True),
        C("model", "VARCHAR", "Judge model."),
        C("request", "JSON", "The request body sent."),
        C("response", "JSON", "The response body received."),
        C("input_tokens", "BIGINT", "Prompt tokens the endpoint reported."),
        C("output_tokens", "BIGINT", "Completion tokens the endpoint reported."),
        C("ts", "TIMESTAMP", "When the response was received, UTC."),
    ),
    key=("request_hash",),
    time="ts",
    lineage=False,
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (CALLS, ANSWERS, EVALS, FEEDBACK, EVENTS, ASSIGNMENTS, GUARDRAIL_EVENTS, INCIDENTS, PRICES, INGEST_RUNS,
              QUARANTINE, JUDGE_CACHE)
}


def markdown_reference() -> str:
    """The table reference as Markdown (used for the README).

    Examples
    --------
    >>> print(markdown_reference().splitlines()[0])
    ### `calls`
    """
    out: list[str] = []
    for t in TABLES.values():
        fills = (f" A row loaded again with a stored {', '.join(t.key)} fills the columns the stored row lacks "
                 f"(never one it holds): {', '.join(t.fills)}." if t.fills else "")
        out.append(f"### `{t.name}`\n\n{t.doc} Key: {', '.join(t.key)}.{fills}\n")
        out.append("| column | type | meaning |\n|---|---|---|")
        for c in t.columns:
            req = " Required." if c.required else ""
            out.append(f"| `{c.name}` | {c.type} | {c.doc}{req} |")
        if t.lineage:
            out.append("| `ingest_run_id` | VARCHAR | Ingest run that wrote the row (lineage). |")
        out.append("")
    return "\n".join(out)


# --- the evals contract: what evaluators write and the hallucination metrics read ---------------------------------
#: Row metric of a hallucination detector or judge: the probability that an answer holds an unsupported claim
#: (higher is worse).
SCORE_METRIC = "hallucination_score"
#: Row metric of a human (or external) label: 1 hallucinated, 0 supported.
LABEL_METRIC = "hallucination_label"
HALLUCINATED, SUPPORTED, UNSCORABLE = "hallucinated", "supported", "unscorable"
#: The offline detector's identity, read by the metrics as the default evaluator. Bump the version on any change of
#: the detector's algorithm or weights: stored scores are keyed by it, so a new version re-scores.
DETECTOR_NAME = "support"
DETECTOR_VERSION = "2.8.1"
#: Rows per Arrow batch read from DuckDB while scoring (bounded memory on any table size).
BATCH_ROWS = 2_000
