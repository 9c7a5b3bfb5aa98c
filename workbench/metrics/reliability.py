"""Reliability metrics: incidents (count, MTTD, MTTR, MTTM), guardrails, and agents from the span tree.

Every function has the one metric signature (see :mod:`workbench.metrics`) and returns the tidy frame.

Conventions
-----------
* **Incidents** are placed in time by ``started_at`` (when the impact started). The durations are measured from
  ``started_at``: MTTD to ``detected_at``, MTTM to ``mitigated_at`` (user impact stopped), MTTR to ``resolved_at``
  (MTTR is time to *resolve*, not to repair or respond). The value is the **median** over incidents, as DORA's Four
  Keys reports time to restore, because a few long incidents would dominate a mean; the mean is the extra column
  ``mean``. ``lo``/``hi`` are the distribution-free order-statistic interval of the median (see
  :mod:`workbench.metrics.latency`). An incident without the end timestamp (not yet detected, mitigated, resolved) is left
  out of that duration, and an :class:`~workbench.metrics.ExcludedRowWarning` names it (an MTTR of the incidents
  resolved says nothing of one open for days); ``n`` counts the incidents measured. An incident whose end timestamp is before ``started_at``
  (a row inserted by hand: ingest quarantines them) has no duration either: it is left out, and an
  :class:`~workbench.metrics.ExcludedRowWarning` names it, rather than its negative minutes entering the median and
  the mean.
* **Guardrails** come from ``guardrail_events``, joined to ``calls`` on ``call_id`` so that they can be grouped by
  the call's feature, model... as well as by ``guard``. Rates are per guard decision, with a Wilson interval. The
  catch and false-block rates need reviewed verdicts (``verdict`` bad / good) and use only reviewed events.
* **Agents**: one agent task is one ``invoke_agent`` span whose parent is not an ``invoke_agent`` span of ``calls``
  (no parent, one not loaded, or a span of another kind around the agent: an HTTP request, a framework's chain); if
  a trace has several, the earliest is the task (:func:`workbench.metrics.core.agent_tasks`). Its steps are the chat / text_completion / generate_content /
  execute_tool spans of the same trace, at any depth (nested sub-agents' steps count toward the task). Group keys
  come from the root span: its feature, model, prompt_version, variant... and its ``ts`` places the task in time.

Naming
------
| suffix | unit | better |
|---|---|---|
| ``*_count`` | a count | (context) |
| ``*_minutes`` | minutes | lower |
| ``*_rate`` | share in 0..1 | lower, except ``guardrail_catch_rate`` and ``tool_call_success_rate`` (higher) |
| ``*_per_task`` | a mean count per agent task | (context) |

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute("insert into incidents (incident_id, feature, started_at, detected_at) values "
...     "('i1', 'chat', '2026-01-01 10:00', '2026-01-01 10:30'), ('i2', 'chat', '2026-01-02 10:00', '2026-01-02 10:10')")
>>> mttd_minutes(db, period="all")[["feature", "value", "n", "mean"]].rows()
[('chat', 20.0, 2, 20.0)]
"""

from __future__ import annotations

from workbench.errors import ParameterError, check_fraction, check_names

import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from workbench.metrics.core import (ExcludedRowWarning, Metric, agent_tasks, check_by, complete_grid, mean_interval,
                                    percentile_frame, proportion, register, scope, tidy, to_polars, with_period)

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

# calls columns a guardrail event or a tool span can be grouped by (taken from the guarded call / the agent root)
_CONTEXT = ("feature", "environment", "provider", "model", "request_model", "prompt_version", "variant", "user_id",
            "session_id", "operation")
STEP_OPERATIONS = ("chat", "text_completion", "generate_content", "execute_tool")
ESCALATION_TOOL = "escalate_to_human"


# ----------------------------------------------------------------------------------------------------------- incidents


def incident_count(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95):
    """Number of incidents that started in each period, with an exact (Garwood) Poisson interval on the rate.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection over ``incidents`` (``severity``, ``feature``...), placed in time by
        ``started_at``.
    confidence : float
        Level of the Poisson interval.

    Returns
    -------
    polars.DataFrame
        Tidy frame; ``value`` = ``n`` = the count (lower is better). A group or period of the window without
        incidents has its row with the count 0 (``value = n = 0``, ``lo`` 0, ``hi`` the upper bound of a Poisson
        rate of which 0 was seen, 3.69 at 95%), as ``dau_count`` of a day nobody was active; the groups are those
        with an incident in the selection, the periods those of ``start .. end`` (else of the first to the last
        incident) (:func:`~workbench.metrics.core.complete_grid`). An empty selection (no incident at all: nothing
        says the incidents were recorded) is null with n = 0 and a warning, as every metric.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into incidents (incident_id, feature, severity, started_at) values "
    ...     "('i1', 'chat', 'sev1', '2026-01-01 10:00'), ('i2', 'chat', 'sev2', '2026-01-01 12:00'),"
    ...     "('i3', 'search', 'sev2', '2026-01-01 13:00')")
    >>> incident_count(db, by=("severity",))[["severity", "value", "n"]].rows()
    [('sev1', 1.0, 1), ('sev2', 2.0, 2)]
    >>> incident_count(db, by=("feature",), start="2026-01-01", end="2026-01-03")[["feature", "value", "n"]].rows()
    [('chat', 2.0, 2), ('chat', 0.0, 0), ('search', 1.0, 1), ('search', 0.0, 0)]
    """
    import polars as pl
    from scipy.stats import chi2

    fn = "incident_count"
    check_fraction(fn, "confidence", confidence)
    t = scope(db.incidents, time="started_at", start=start, end=end, where=where)
    keys = check_by(t, by, fn=fn)
    t = with_period(t, period, time="started_at", start=start)
    df = to_polars(t.group_by([*keys, "period_start"]).aggregate(n=t.count()))
    k = df["n"].to_numpy()
    alpha = 1 - confidence
    lo = [0.0 if x == 0 else float(chi2.ppf(alpha / 2, 2 * x) / 2) for x in k]
    hi = [float(chi2.ppf(1 - alpha / 2, 2 * x + 2) / 2) for x in k]
    df = df.with_columns(pl.col("n").cast(pl.Float64).alias("value"), pl.Series("lo", lo, dtype=pl.Float64),
                         pl.Series("hi", hi, dtype=pl.Float64))
    # every incident of the selection is counted in df: its groups are the selection's. A period without incidents
    # counts 0 (a count of nothing is defined), with the Garwood interval of 0
    none = {"value": 0.0, "lo": 0.0, "hi": float(chi2.ppf(1 - alpha / 2, 2) / 2)}
    return complete_grid(tidy(df, keys=keys, metric=fn), t, keys=keys, period=period, start=start, end=end,
                         time="started_at", metric=fn, groups=df.select(keys), fill=none if df.height else None)


# what an incident without the end timestamp has not been yet
_NOT_YET = {"detected_at": "detected", "mitigated_at": "mitigated", "resolved_at": "resolved"}


def _incident_duration(db, end_col: str, metric: str, *, by, period, start, end, where, confidence) -> "pl.DataFrame":
    import ibis

    check_fraction(metric, "confidence", confidence)
    t = scope(db.incidents, time="started_at", start=start, end=end, where=where)
    keys = check_by(t, by, fn=metric)
    # microseconds, as a float, divided by a float: Spark read 60000.0 as a DECIMAL and rounded the minutes to 7
    # places, and its millisecond difference truncated where DuckDB's counted boundaries (999 ms against 1,000)
    minutes = t[end_col].delta(t.started_at, unit="microsecond").cast("float64") / ibis.literal(60e6, "float64")
    # ended before it started (a row inserted by hand, ingest quarantines them): negative minutes are no duration,
    # and averaged in they hid a slow one (-25 beside +10); left out as an incident without the timestamp, named
    before = t[end_col] < t.started_at
    # and one not yet detected / mitigated / resolved (still open) has no duration yet: left out too, and named, as it
    # was not (two sev1s open for days beside one resolved in 10 minutes read MTTR 10, n 1, and nothing more)
    missing = t[end_col].isnull()
    left = to_polars(t.filter(before | missing).select("incident_id", _open=missing).order_by("incident_id"))
    state = _NOT_YET[end_col]
    for why, ids in ((f"with {end_col} before started_at", left.filter(~left["_open"])["incident_id"].to_list()),
                     (f"not yet {state} (no {end_col})", left.filter(left["_open"])["incident_id"].to_list())):
        if ids:
            k = len(ids)
            named = ", ".join(map(str, ids[:5])) + (f", ... ({k - 5} more)" if k > 5 else "")
            warnings.warn(f"{metric}: {k} incident{'s' if k > 1 else ''} {why} {'are' if k > 1 else 'is'} left out "
                          f"({named})", ExcludedRowWarning, stacklevel=4)
    minutes = before.ifelse(ibis.null("float64"), minutes)
    return percentile_frame(t, minutes, q=0.5, keys=keys, period=period, time="started_at", start=start, end=end,
                            metric=metric, confidence=confidence, extra={"mean": lambda c: c.mean()}, complete=True)


_DURATION_DOC = """Median {what}, in minutes, over the incidents that started in the period.

    ``{end_col} - started_at`` per incident with a ``{end_col}``; the value is the median (as DORA's Four Keys), the
    mean is the extra column ``mean``; ``lo``/``hi`` the order-statistic interval of the median. An incident without
    a ``{end_col}`` (not yet {state}) or with one before its ``started_at`` (inserted by hand) is left out, named by
    an :class:`~workbench.metrics.ExcludedRowWarning`.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection over ``incidents``, placed in time by ``started_at``.
    confidence : float
        Level of the interval.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in minutes (lower is better), ``n`` incidents measured (not those left out), extra
        column ``mean``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into incidents (incident_id, feature, started_at, {end_col}) values "
    ...     "('i1', 'chat', '2026-01-01 10:00', '2026-01-01 10:10'), ('i2', 'chat', '2026-01-01 11:00', '2026-01-01 11:30'),"
    ...     "('i3', 'chat', '2026-01-01 12:00', '2026-01-01 14:00'), ('i4', 'chat', '2026-01-01 13:00', null)")
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     {name}(db)[["value", "n", "mean"]].rows()  # median(10, 30, 120); mean 160 / 3; i4 has no {end_col}
    [(30.0, 3, 53.333333)]
    >>> [str(w.message) for w in seen if w.category is wb.metrics.ExcludedRowWarning]
    ['{name}: 1 incident not yet {state} (no {end_col}) is left out (i4)']
"""


def duration_metric(name: str, end_col: str, what: str) -> Callable[..., "pl.DataFrame"]:
    """Make the incident duration metric ``name``: the median of ``end_col - started_at``, in minutes.

    One function behind MTTD, MTTM and MTTR; its docstring is the template above, with a worked example.

    >>> duration_metric("mttd_minutes", "detected_at", "time to detect (MTTD)").__doc__.splitlines()[0]
    'Median time to detect (MTTD), in minutes, over the incidents that started in the period.'
    """

    def metric(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95):
        return _incident_duration(db, end_col, name, by=by, period=period, start=start, end=end, where=where,
                                  confidence=confidence)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = _DURATION_DOC.format(what=what, end_col=end_col, name=name, state=_NOT_YET[end_col])
    return metric


mttd_minutes = duration_metric("mttd_minutes", "detected_at", "time to detect (MTTD)")
mttm_minutes = duration_metric("mttm_minutes", "mitigated_at", "time to mitigate (MTTM)")
mttr_minutes = duration_metric("mttr_minutes", "resolved_at", "time to resolve (MTTR)")


# ---------------------------------------------------------------------------------------------------------- guardrails


def _guard_events(db) -> "ir.Table":
    """guardrail_events with the guarded call's context columns (null when the call is not in ``calls``)."""
    g = db.guardrail_events
    c = db.calls.select("call_id", *_CONTEXT)
    j = g.left_join(c, g.call_id == c.call_id)
    return j.select(*g.columns, *_CONTEXT)


def _guard_rate(db, metric: str, *, actions: Iterable[str] | str, verdict: str | None, by, period, start, end, where,
                confidence) -> "pl.DataFrame":
    check_fraction(metric, "confidence", confidence)
    acts = list(check_names(metric, "actions", actions, what="guardrail actions"))
    if not acts or any(a not in ("pass", "block", "redact", "flag") for a in acts):
        raise ParameterError(f"{metric}: actions must be among pass, block, redact, flag; got {acts!r}")
    t = scope(_guard_events(db), start=start, end=end, where=where)
    den = None if verdict is None else t.verdict == verdict
    return proportion(t, t.action.isin(acts), by=by, period=period, metric=metric, start=start, end=end, denominator=den,
                      confidence=confidence)


_GUARD_DOC = """{title}

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection over guardrail events joined to their call: group by ``guard`` or any call
        context column (feature, model, environment, prompt_version, variant...).
    actions : str or list of str
        The actions counted (default ``{actions!r}``); a list may be given as one string, ``"block,redact"``
        (``--param actions=block,redact`` on the command line).
    confidence : float
        Level of the Wilson interval.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in 0..1 ({better}), ``n`` = {n}.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('c1', '2026-01-01', 'chat', 'ok')")
    >>> _ = db.duckdb.execute("insert into guardrail_events (guard_event_id, call_id, ts, guard, action, verdict) values "
    ...     "('g1', 'c1', '2026-01-01', 'pii', 'block', 'bad'), ('g2', 'c1', '2026-01-01', 'pii', 'pass', 'bad'),"
    ...     "('g3', 'c1', '2026-01-01', 'pii', 'redact', 'good'), ('g4', 'c1', '2026-01-01', 'pii', 'block', 'good'),"
    ...     "('g5', 'c1', '2026-01-01', 'pii', 'pass', null)")
    >>> {name}(db)[["feature", "value", "n"]].rows()  # {arithmetic}
    [('chat', {value}, {count})]
"""


def guard_metric(name: str, *, verdict: str | None, actions: str, title: str, better: str, n: str,
                 arithmetic: str, value: float, count: int) -> Callable[..., "pl.DataFrame"]:
    """Make the guardrail rate ``name``: the share of guard events (of those reviewed ``verdict``) that took ``actions``.

    One function behind the four guardrail rates; ``title`` is the metric's definition and heads its docstring, and
    ``arithmetic``/``value``/``count`` its worked example on the five events of the template.

    >>> guardrail_catch_rate.__doc__.splitlines()[0]
    "Recall of the guard: share of reviewed-bad events that it blocked (``verdict = 'bad'``)."
    """
    default_actions = actions

    def metric(db, *, by=("feature",), period="day", start=None, end=None, where=None, actions=default_actions,
               confidence=0.95):
        return _guard_rate(db, name, actions=actions, verdict=verdict, by=by, period=period, start=start, end=end,
                           where=where, confidence=confidence)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = _GUARD_DOC.format(title=title, actions=default_actions, better=better, n=n, name=name,
                                       arithmetic=arithmetic, value=value, count=count)
    return metric


guardrail_block_rate = guard_metric(
    "guardrail_block_rate", verdict=None, actions="block", title="Share of guardrail decisions that blocked.",
    better="context: lower is less friction", n="guard decisions", arithmetic="g1, g4 of 5", value=0.4, count=5)
guardrail_redact_rate = guard_metric(
    "guardrail_redact_rate", verdict=None, actions="redact", title="Share of guardrail decisions that redacted.",
    better="context", n="guard decisions", arithmetic="g3 of 5", value=0.2, count=5)
guardrail_catch_rate = guard_metric(
    "guardrail_catch_rate", verdict="bad", actions="block",
    title="Recall of the guard: share of reviewed-bad events that it blocked (``verdict = 'bad'``).\n\n"
          "    Pass ``actions=('block', 'redact')`` to count a redaction as a catch too.",
    better="higher is better", n="events reviewed bad", arithmetic="g1 of the bad g1, g2", value=0.5, count=2)
guardrail_false_block_rate = guard_metric(
    "guardrail_false_block_rate", verdict="good", actions="block",
    title="Share of reviewed-good events that the guard blocked anyway (``verdict = 'good'``).",
    better="lower is better", n="events reviewed good", arithmetic="g4 of the good g3, g4", value=0.5, count=2)


# -------------------------------------------------------------------------------------------------------------- agents


def _trace_steps(db, tool: str) -> "ir.Table":
    calls = db.calls
    s = calls.filter(calls.operation.isin(STEP_OPERATIONS), calls.trace_id.notnull())
    is_tool = s.operation == "execute_tool"
    return s.group_by(_trace=s.trace_id).aggregate(_steps=s.count(), _escalated=(is_tool & (s.name == tool)).any())


def _tasks(db, tool: str) -> "ir.Table":
    roots = agent_tasks(db)
    steps = _trace_steps(db, tool)
    j = roots.left_join(steps, roots.trace_id == steps._trace)
    return j.select(*roots.columns, _steps=j._steps.fill_null(0), _escalated=j._escalated.fill_null(False))


def tool_call_success_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95):
    """Share of tool calls (``execute_tool`` spans) with ``status = 'ok'``.

    Group keys come from the agent root span of the tool call's trace (falling back to the tool span's own columns
    when the trace has no agent root); the tool name is the key ``tool``. Time is the tool span's ``ts``.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection; ``by`` may name ``tool`` and the root's context columns
        (feature, environment, provider, model, request_model, prompt_version, variant, user_id, session_id).
    confidence : float
        Level of the Wilson interval.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in 0..1 (higher is better), ``n`` tool calls.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, trace_id, parent_id, ts, operation, name, feature, status) values "
    ...     "('r', 't1', null, '2026-01-01', 'invoke_agent', 'agent', 'support', 'ok'),"
    ...     "('a', 't1', 'r', '2026-01-01', 'execute_tool', 'search', null, 'ok'),"
    ...     "('b', 't1', 'r', '2026-01-01', 'execute_tool', 'search', null, 'error'),"
    ...     "('c', 't1', 'r', '2026-01-01', 'execute_tool', 'lookup', null, 'ok')")
    >>> tool_call_success_rate(db, by=("feature", "tool"))[["feature", "tool", "value", "n"]].rows()
    [('support', 'lookup', 1.0, 1), ('support', 'search', 0.5, 2)]
    """
    fn = "tool_call_success_rate"
    check_fraction(fn, "confidence", confidence)
    calls = db.calls
    tools = calls.filter(calls.operation == "execute_tool")
    roots = agent_tasks(db)
    r = roots.select(_root_trace=roots.trace_id, **{f"_root_{c}": roots[c] for c in _CONTEXT if c != "operation"})
    j = tools.left_join(r, tools.trace_id == r._root_trace)
    # the root's columns when the trace has a root (a null among them stays null: the task's group, as the other
    # agent metrics put it), the tool span's own only when it has none; not column by column, which put one task in
    # another group here (root environment null, tool 'staging') and could mix the root's feature with the tool's model
    rooted = j._root_trace.notnull()
    ctx = {c: rooted.ifelse(j[f"_root_{c}"], j[c]) for c in _CONTEXT if c != "operation"}
    t = j.select("call_id", "trace_id", "ts", "status", "error_type", tool=j.name, **ctx)
    t = scope(t, start=start, end=end, where=where)
    return proportion(t, t.status == "ok", by=check_by(t, by, fn=fn), period=period, metric=fn, start=start, end=end,
                      confidence=confidence)


def agent_steps_per_task(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95):
    """Mean number of steps (chat and tool spans of the trace) per agent task, with a normal interval.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection over the agent root spans (their feature, model, prompt_version...).
    confidence : float
        Level of the interval of the mean.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` steps per task (lower is cheaper, for the same success), ``n`` tasks.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, trace_id, parent_id, ts, operation, name, feature, status) values "
    ...     "('r1', 't1', null, '2026-01-01', 'invoke_agent', 'agent', 'support', 'ok'),"
    ...     "('a', 't1', 'r1', '2026-01-01', 'chat', 'chat', 'support', 'ok'),"
    ...     "('b', 't1', 'r1', '2026-01-01', 'execute_tool', 'search', null, 'ok'),"
    ...     "('r2', 't2', null, '2026-01-01', 'invoke_agent', 'agent', 'support', 'ok')")
    >>> agent_steps_per_task(db)[["feature", "value", "n"]].rows()  # (2 + 0) / 2
    [('support', 1.0, 2)]
    """

    fn = "agent_steps_per_task"
    check_fraction(fn, "confidence", confidence)
    t = scope(_tasks(db, ESCALATION_TOOL), start=start, end=end, where=where)
    keys = check_by(t, by, fn=fn)
    t = with_period(t.mutate(_s=t._steps.cast("float64")), period, start=start)
    df = to_polars(t.group_by([*keys, "period_start"]).aggregate(value=t._s.mean(), n=t.count(),
                                                      _sd=t._s.std(how="sample")))
    return complete_grid(tidy(mean_interval(df, confidence, floor=0.0), keys=keys, metric=fn), t, keys=keys, period=period,
                         start=start, end=end, metric=fn, groups=df.select(keys))


def escalation_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None,
                    tool: str = ESCALATION_TOOL, confidence=0.95):
    """Share of agent tasks that called the escalation tool (``execute_tool`` span named ``tool``) at least once.

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The common metric selection over the agent root spans.
    tool : str
        Name of the hand-off tool (default ``escalate_to_human``).
    confidence : float
        Level of the Wilson interval.

    Returns
    -------
    polars.DataFrame
        Tidy frame, ``value`` in 0..1 (lower is better), ``n`` tasks.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, trace_id, parent_id, ts, operation, name, feature, status) values "
    ...     "('r1', 't1', null, '2026-01-01', 'invoke_agent', 'agent', 'support', 'ok'),"
    ...     "('a', 't1', 'r1', '2026-01-01', 'execute_tool', 'escalate_to_human', null, 'ok'),"
    ...     "('r2', 't2', null, '2026-01-01', 'invoke_agent', 'agent', 'support', 'ok'),"
    ...     "('b', 't2', 'r2', '2026-01-01', 'execute_tool', 'search', null, 'ok')")
    >>> escalation_rate(db)[["feature", "value", "n"]].rows()
    [('support', 0.5, 2)]
    """
    fn = "escalation_rate"
    check_fraction(fn, "confidence", confidence)
    if not isinstance(tool, str) or not tool:
        raise ParameterError(f"{fn}: tool must be a tool name, got {tool!r}")
    t = scope(_tasks(db, tool), start=start, end=end, where=where)
    return proportion(t, t._escalated, by=check_by(t, by, fn=fn), period=period, metric=fn, start=start, end=end,
                      confidence=confidence)


# Each metric registered once with its contract (workbench.metrics.core.Metric).
SUITE = register(
    Metric(incident_count, unit="count", direction="lower", table="incidents"),
    Metric(mttd_minutes, unit="minutes", direction="lower", table="incidents"),
    Metric(mttm_minutes, unit="minutes", direction="lower", table="incidents"),
    Metric(mttr_minutes, unit="minutes", direction="lower", table="incidents"),
    Metric(guardrail_block_rate, unit="share", direction="none", table="guardrail_events"),
    Metric(guardrail_redact_rate, unit="share", direction="none", table="guardrail_events"),
    Metric(guardrail_catch_rate, unit="share", direction="higher", table="guardrail_events"),
    Metric(guardrail_false_block_rate, unit="share", direction="lower", table="guardrail_events"),
    Metric(tool_call_success_rate, unit="share", direction="higher", table="calls"),
    Metric(agent_steps_per_task, unit="steps", direction="lower", table="calls"),
    Metric(escalation_rate, unit="share", direction="lower", table="calls"),
    namespace=globals(),
)
