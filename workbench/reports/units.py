"""Units, directions, labels and number formats of metrics: the one place a report asks how to show a number.

A metric's unit comes from its name suffix (``*_rate`` and ``*_ratio`` are shares shown as %, ``*_ms`` durations,
``*_usd`` dollars, ``*_count`` counts, ``*_minutes`` durations in minutes, ``*_score`` scores); a metric registry
that declares ``unit`` / ``direction`` for a metric wins over the suffix (:func:`metric_unit` asks it first).
Column names of non-metric tables (``spend_usd``, ``latency_ms``, ``attainment``) are read the same way.

>>> metric_unit("hallucination_rate")
Unit(kind='percent', direction='lower', label='Hallucination rate')
>>> fmt(0.160985, "hallucination_rate"), fmt(0.02602, "cost_per_success_usd"), fmt(10646.375, "latency_p95_ms")
('16.1%', '$0.026', '10.6 s')
>>> fmt(163.285714, "wau_count"), fmt(95, "mttr_minutes"), fmt(1234567.0, "cost_usd")
('163', '1 h 35 min', '$1,234,567')
>>> fmt(0.05, "error_rate", signed=True, change=True)
'+5.0 pp'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Unit", "metric_unit", "label", "words", "fmt", "better", "axis_format"]


@dataclass(frozen=True)
class Unit:
    """How a metric is shown: ``kind`` (percent, ms, usd, count, minutes, score, number), which ``direction`` is
    better (``lower``, ``higher`` or ``none``) and a ``label`` in words.

    Examples
    --------
    >>> u = metric_unit("latency_p95_ms")
    >>> u
    Unit(kind='ms', direction='lower', label='p95 latency')
    >>> u.kind, u == Unit("ms", "lower", "p95 latency")
    ('ms', True)
    >>> u.kind = "s"
    Traceback (most recent call last):
    ...
    dataclasses.FrozenInstanceError: cannot assign to field 'kind'
    """

    kind: str
    direction: str
    label: str


# Names a PM reads; anything else is derived from the identifier.
LABELS = {
    "hallucination_rate": "Hallucination rate",
    "latency_p95_ms": "p95 latency",
    "latency_p50_ms": "Median latency",
    "latency_p99_ms": "p99 latency",
    "ttft_p95_ms": "p95 time to first token",
    "cost_usd": "Spend",
    "cost_per_success_usd": "Cost per successful task",
    "cost_per_active_user_usd": "Cost per active user",
    "whatif_cost_usd": "Cost on the other model",
    "cost_change_usd": "Change in spend",
    "latency_change_ms": "Change in p95 latency",
    "wau_count": "Weekly active users",
    "dau_count": "Daily active users",
    "mau_count": "Monthly active users",
    "dau_mau_ratio": "Stickiness (DAU/MAU)",
    "retention_rate": "Retention",
    "lifecycle_count": "Users by lifecycle",
    "funnel_conversion_rate": "Funnel conversion",
    "thumbs_up_rate": "Thumbs-up rate",
    "suggestion_acceptance_rate": "Suggestions accepted",
    "unpriced_rate": "Calls without a price",
    "unscorable_rate": "Answers that could not be scored",
    "mttd_minutes": "Time to detect",
    "mttr_minutes": "Time to resolve",
    "error_rate": "Error rate",
    "timeout_rate": "Timeout rate",
    "tool_call_success_rate": "Tool call success",
    "escalation_rate": "Escalation rate",
    "guardrail_catch_rate": "Guardrail catch rate",
    "guardrail_false_block_rate": "Guardrail false blocks",
    "hallucination_score": "Hallucination score",
    "burn_rate_usd_per_day": "Burn rate ($ per day)", "whatif_provider": "What-if provider",
    "whatif_model": "What-if model",
    # statistics, as their readers name them (experiments, drift, the detector's agreement with reviewers' labels)
    "p_value": "p-value", "srm_p_value": "SRM p-value", "srm_status": "SRM status", "psi": "PSI", "auc": "AUC",
    "se": "Std. error",
    "auroc": "AUROC", "kappa": "Cohen's kappa", "ece": "Expected calibration error", "brier": "Brier score",
}
# Shares where more is better; every other rate (errors, hallucinations, timeouts ...) is better lower.
_HIGHER = ("retention", "thumbs_up", "acceptance", "success", "catch", "conversion", "attainment", "availability",
           "dau_mau", "active_user", "wau", "dau", "mau", "budget_remaining", "auroc", "kappa", "precision", "recall")
_SUFFIX = (("p_value", "p"), ("chance_to_win", "percent"), ("_usd_per_day", "usd"), ("_rate", "percent"), ("_ratio", "percent"), ("_share", "percent"), ("share_used", "percent"), ("warn_at", "percent"), ("objective", "percent"), ("sli_value", "percent"), ("error_budget", "percent"),
           ("budget_consumed", "percent"), ("budget_remaining", "percent"), ("availability", "percent"), ("_pct", "percent"), ("attainment", "percent"),
           ("share_of_change", "percent"),
           ("_ms", "ms"), ("_usd", "usd"), ("_count", "count"), ("_minutes", "minutes"), ("_score", "score"),
           ("_tokens", "count"), ("tokens", "count"), ("_users", "count"), ("calls", "count"), ("rows", "count"))


#: The registry's units that are a kind of display here (a share is shown as a percent); any other (a ratio, steps,
#: per second) is shown by the name's suffix.
_REGISTRY_KINDS = {"share": "percent", "ms": "ms", "usd": "usd", "count": "count", "minutes": "minutes",
                   "score": "score"}


@lru_cache(maxsize=1)
def _contracts() -> dict:
    from workbench.metrics.core import contracts

    return contracts()


def _registry(name: str) -> tuple[str | None, str | None]:
    """Display kind and direction of a metric of the registry (:func:`workbench.metrics.core.contracts`: what its
    definition declares); None for a column or a name it does not hold.

    >>> _registry("cost_per_success_usd"), _registry("n")
    (('usd', 'lower'), (None, None))
    """
    entry = _contracts().get(name)
    if entry is None:
        return None, None
    return _REGISTRY_KINDS.get(entry.unit), entry.direction


def metric_unit(name: str | None) -> Unit:
    """The unit, better direction and label of a metric or column name.

    >>> metric_unit("latency_p95_ms").kind, metric_unit("retention_rate").direction
    ('ms', 'higher')
    >>> metric_unit("n").kind
    'count'
    """
    name = str(name or "")
    unit, direction = _registry(name)
    if unit is None:
        unit = "count" if name in ("n", "n_pairs", "users", "calls", "rows", "events") else "number"
        for suffix, kind in _SUFFIX:
            if name.endswith(suffix):
                unit = kind
                break
    if direction is None:
        if unit in ("count", "number") and not any(h in name for h in _HIGHER):
            direction = "none" if unit == "number" or name in ("n",) else "higher"
        else:
            direction = "higher" if any(h in name for h in _HIGHER) else "lower"
    return Unit(unit, direction, label(name))


def label(name: str | None, *, time_unit: bool = True) -> str:
    """A metric or column name in words; ``time_unit=False`` leaves out the ``(ms)`` / ``(minutes)`` of a time, for a
    table whose cells carry their own unit (``6.0 s``, ``12 h 5 min``: "Threshold (ms)" read over seconds).

    >>> label("latency_p95_ms"), label("prompt_version"), label("spend_to_date_usd")
    ('p95 latency', 'Prompt version', 'Spend to date ($)')
    >>> label("threshold_ms"), label("threshold_ms", time_unit=False), label("budget_usd", time_unit=False)
    ('Threshold (ms)', 'Threshold', 'Budget ($)')
    """
    name = str(name or "")
    if name in LABELS:
        return LABELS[name]
    phrase = name
    tail = ""
    for suffix, text in (("_usd", " ($)"), ("_ms", " (ms)"), ("_minutes", " (minutes)")):
        if phrase.endswith(suffix):
            phrase, tail = phrase[: -len(suffix)], text if time_unit or suffix == "_usd" else ""
    phrase = phrase.replace("_", " ").strip()
    return (phrase[:1].upper() + phrase[1:] + tail) if phrase else name


def words(value: Any) -> str:
    """A value of a key column (a feature, a group) as a report shows it: a lower-case id in words, else as written.

    One rule for the whole report, so that a feature reads the same in a chart's legend, a table and a sentence:
    lower-case words joined by underscores, or one lower-case word, get a capital and spaces (``support_assistant`` ->
    ``Support assistant``); other ids (``gpt-4o-mini``, ``v7``, ``Billing``) are shown as written; a missing value is
    ``(none)``.

    >>> words("support_assistant"), words("agent"), words("gpt-4o-mini"), words("v7"), words(None)
    ('Support assistant', 'Agent', 'gpt-4o-mini', 'v7', '(none)')
    """
    if value is None:
        return "(none)"
    s = str(value)
    if (s.islower() and " " not in s and "_" in s) or (s.isalpha() and s.islower()):
        return (s[:1].upper() + s[1:]).replace("_", " ")
    return s


def _num(x: float, decimals: int) -> str:
    """``x`` with thousands separators and ``decimals`` decimals; a value that rounds to zero has no sign ("-0.0")."""
    text = f"{x:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text


def fmt(value: Any, name: str | Unit | None = None, *, signed: bool = False, change: bool = False) -> str:
    """``value`` as text in the unit of metric (or column) ``name``: ``16.1%``, ``$0.026``, ``10.6 s``, ``1 h 35 min``.

    ``change=True`` formats a difference: percentages become percentage points. ``signed`` adds ``+``.
    Missing values are shown as an en dash.

    >>> fmt(None, "error_rate"), fmt(850, "latency_p95_ms"), fmt(0.5, "n")
    ('–', '850 ms', '0.5')
    """
    unit = name if isinstance(name, Unit) else metric_unit(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    sign = "+" if signed and x > 0 else ""
    kind = unit.kind
    if kind == "p":  # a p-value: three decimals, and below them not "0"
        return "<\u00a00.001" if x < 0.001 else f"{x:.3f}"  # (a no-break space: never "<" alone on a line)
    if kind == "percent":
        pct = x * 100
        d = 1 if abs(pct) < 100 else 0
        return f"{sign}{_num(pct, d)}{' pp' if change else '%'}"
    if kind == "usd":
        a = abs(x)
        # under a cent: two significant digits, at least 4 decimals ($0.0054, $0.000030), never "$0.0000"
        d = 0 if a >= 1000 else 2 if a >= 1 else 3 if a >= 0.01 else min(10, max(4, 1 - math.floor(math.log10(a)))) \
            if a > 0 else 2
        return f"{sign}{'-' if x < 0 else ''}${_num(a, d)}"
    if kind == "ms":
        a = abs(x)
        if a >= 1000:
            return f"{sign}{_num(x / 1000, 1 if a < 100_000 else 0)} s"
        return f"{sign}{_num(x, 0)} ms"
    if kind == "minutes":
        a = abs(x)
        if a >= 60:
            h, m = divmod(int(round(a)), 60)
            return f"{sign}{'-' if x < 0 else ''}{h} h {m} min" if m else f"{sign}{'-' if x < 0 else ''}{h} h"
        return f"{sign}{_num(x, 0 if a >= 10 else 1)} min"
    if kind == "count":
        if float(x).is_integer() or abs(x) >= 10:
            return f"{sign}{_num(x, 0)}"
        return f"{sign}{_num(x, 1)}"
    if kind == "score":
        return f"{sign}{_num(x, 2)}"
    a = abs(x)
    if float(x).is_integer() and a < 1e15:
        return f"{sign}{_num(x, 0)}"
    d = 0 if a >= 1000 else 1 if a >= 100 else 2 if a >= 1 else 3
    return f"{sign}{_num(x, d)}"


def better(name: str | Unit, change: float | None) -> bool | None:
    """Whether a change of the metric is an improvement (None when the direction is unknown or there is no change).

    >>> better("error_rate", -0.01), better("wau_count", -3.0), better("n", 5)
    (True, False, None)
    """
    unit = name if isinstance(name, Unit) else metric_unit(name)
    if change is None or change == 0 or unit.direction == "none":
        return None
    return (change < 0) == (unit.direction == "lower")


def axis_format(name: str | Unit) -> tuple[str, str | None]:
    """A Vega-Lite axis ``format`` and a unit word for the axis title of a metric.

    >>> axis_format("error_rate"), axis_format("cost_usd"), axis_format("latency_p95_ms")
    (('.0%', None), ('$,.2f', None), (',.0f', 'ms'))
    """
    unit = name if isinstance(name, Unit) else metric_unit(name)
    return {"percent": (".0%", None), "usd": ("$,.2f", None), "ms": (",.0f", "ms"), "minutes": (",.0f", "minutes"),
            "count": (",.0f", None), "score": (".2f", None)}.get(unit.kind, (",.3~g", None))
