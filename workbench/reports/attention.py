"""The first screen of a report: what needs my attention, in a few sentences generated from the data.

:func:`attention` reads the scorecard (targets missed, with the change and its main driver: the model, prompt version
or day that moved it; targets with no data in the period, not measured), the SLO alerts that fire and the SLOs with no
call in their window (not measured), the budgets at risk, and whether data stopped arriving (stale data).
:func:`driver` finds the group that moved a metric most.

>>> import polars as pl
>>> card = pl.DataFrame({"feature": ["chat"], "metric": ["error_rate"], "value": [0.2], "previous": [0.1],
...                      "change": [0.1], "relative_change": [1.0], "bound": ["max"], "target": [0.15], "status": ["missed"]})
>>> missed_sentences(card)[0]
'Chat: error rate 20.0% missed its target (at most 15.0%), up 10.0 pp from 10.0% the period before.'
"""

from __future__ import annotations

import datetime as dt
import html as _html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.reports.units import fmt, label, metric_unit, words
from workbench.schema import utc_now

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

Report = Any  # workbench.reports.publish.Report (not imported: publish imports this module)

__all__ = ["Attention", "attention", "driver", "missed_sentences", "no_data_sentences", "feature_label", "newest_call",
           "staleness"]

DRIVER_DIMENSIONS = ("model", "prompt_version")
MAX_MISSED = 5  # sentences on missed targets before "and N more"


def feature_label(feature: Any) -> str:
    """A feature id in words, as the report's charts and tables show it (:func:`~workbench.reports.units.words`);
    ``All features`` for none.

    >>> feature_label("coding_assistant"), feature_label("gpt-4o-mini"), feature_label(None)
    ('Coding assistant', 'gpt-4o-mini', 'All features')
    """
    return words(feature) if feature else "All features"


def budget_sentence(r: dict, *, by: str = "feature") -> str:
    """One row of ``budget_status`` as a sentence: money in dollars, the share used as a percentage; unpriced calls,
    whose spend is unknown, said as such (the spend is then at least the one written), and a month no call reached
    (``no data``) as a budget not measured.

    >>> budget_sentence({"feature": "agent", "spend_usd": 850.0, "budget_usd": 1000.0, "share_used": 0.85,
    ...                  "forecast_usd": 1240.5, "status": "warn"})
    'Budget at risk: Agent spent $850.00 of $1,000 (85.0%), forecast $1,240 by month end (warn).'
    >>> budget_sentence({"feature": "billing_helper", "spend_usd": 0.0, "budget_usd": 10.0, "share_used": 0.0,
    ...                  "forecast_usd": 0.0, "status": "unpriced", "unpriced_count": 8, "unpriced_rate": 1.0})
    'Budget unknown: Billing helper has 8 unpriced calls this month (100% of its calls); it spent at least $0.00 of $10.00 (0.0%) (unpriced).'
    >>> budget_sentence({"feature": "chat", "spend_usd": 0.0, "budget_usd": 100.0, "share_used": 0.0,
    ...                  "forecast_usd": 0.0, "status": "no data"})
    'Budget not measured: Chat: no call of any feature this month, so nothing was spent or measured (calls that stopped arriving?) (no data).'
    """
    name, unpriced = feature_label(r[by]), r.get("unpriced_count") or 0
    calls = fmt(unpriced, "unpriced_count")  # as the budget table writes it: 1,469
    spend = (f"{fmt(r['spend_usd'], 'spend_usd')} of {fmt(r['budget_usd'], 'budget_usd')} "
             f"({fmt(r['share_used'], 'share_used')})")
    if r["status"] == "no data":
        return (f"Budget not measured: {name}: no call of any feature this month, so nothing was spent or measured "
                f"(calls that stopped arriving?) (no data).")
    if r["status"] == "unpriced":
        share = f" ({fmt(r['unpriced_rate'], 'unpriced_rate')} of its calls)" if r.get("unpriced_rate") is not None else ""
        return (f"Budget unknown: {name} has {calls} unpriced calls this month{share}; it spent at least {spend} "
                f"(unpriced).")
    more = f", and {calls} unpriced calls not counted" if unpriced else ""
    return (f"Budget at risk: {name} spent {'at least ' if unpriced else ''}{spend}{more}, forecast "
            f"{fmt(r['forecast_usd'], 'forecast_usd')} by month end ({r['status']}).")


@dataclass
class Attention:
    """Sentences for the top of a report; renders as a short HTML list (``_repr_html_``) or text (``str``).

    Examples
    --------
    >>> att = Attention([("alert", "Chat: error rate 25.0% missed its target."), ("ok", "Budgets: on track.")])
    >>> print(att)
    - Chat: error rate 25.0% missed its target.
    - Budgets: on track.
    >>> att.sentences[1], "<strong>Chat:</strong>" in att._repr_html_()
    ('Budgets: on track.', True)
    """

    items: list[tuple[str, str]] = field(default_factory=list)  # (severity: alert|warn|ok, sentence)
    title: str = "What needs your attention"

    @property
    def sentences(self) -> list[str]:
        return [s for _, s in self.items]

    def __str__(self) -> str:
        return "\n".join(f"- {s}" for s in self.sentences)

    def _repr_html_(self) -> str:
        colours = {"alert": ("#a50e0e", "#fde0dc"), "warn": ("#7a5a00", "#fff3cd"), "ok": ("#14692d", "#e3f4e8")}
        lis = []
        for sev, s in self.items:
            fg, bg = colours.get(sev, colours["warn"])
            text = _html.escape(s)
            text = re.sub(r"^([^:]+):", r"<strong>\1:</strong>", text, count=1)
            lis.append(f'<li style="margin:4px 0;padding:6px 10px;border-left:4px solid {fg};background:{bg};'
                       f'list-style:none">{text}</li>')
        return (f'<section aria-label="{_html.escape(self.title)}"><h2 id="attention" style="margin-top:0">'
                f'{_html.escape(self.title)}</h2><ul style="padding-left:0;font-size:15px;max-width:70em">{"".join(lis)}</ul></section>')


def _change_words(row: dict[str, Any]) -> str:
    m, prev, change = row["metric"], row.get("previous"), row.get("change")
    if prev is None or change is None:
        return "no value the period before"
    if change == 0:
        return f"unchanged from {fmt(prev, m)}"
    direction = "up" if change > 0 else "down"
    return f"{direction} {fmt(abs(change), m, change=True)} from {fmt(prev, m)} the period before"


def missed_sentences(card: "pl.DataFrame", drivers: dict[tuple[str, str], str] | None = None, *, by: str = "feature") -> list[str]:
    """One sentence per missed target of a scorecard frame, the largest relative miss first.

    Examples
    --------
    >>> import polars as pl
    >>> card = pl.DataFrame({"feature": ["chat", "search"], "metric": ["error_rate", "latency_p95_ms"],
    ...                      "value": [0.2, 1500.0], "previous": [0.1, 1400.0], "change": [0.1, 100.0],
    ...                      "bound": ["max", "max"], "target": [0.15, 1000.0], "status": ["missed", "missed"]})
    >>> for s in missed_sentences(card, {("chat", "error_rate"): "main driver: model small"}):
    ...     print(s)
    Search: p95 latency 1.5 s missed its target (at most 1.0 s), up 100 ms from 1.4 s the period before.
    Chat: error rate 20.0% missed its target (at most 15.0%), up 10.0 pp from 10.0% the period before; main driver:
    model small.
    """
    import polars as pl

    if card.is_empty() or "status" not in card.columns:
        return []
    missed = card.filter(pl.col("status") == "missed").with_columns(
        ((pl.col("value") - pl.col("target")).abs() / pl.col("target").abs()).alias("_miss")).sort("_miss", descending=True, nulls_last=True)
    out = []
    for r in missed.iter_rows(named=True):
        bound = "at most" if r.get("bound") == "max" else "at least"
        s = (f"{feature_label(r[by])}: {label(r['metric']).lower() if r['metric'] not in ('latency_p95_ms',) else label(r['metric'])} "
             f"{fmt(r['value'], r['metric'])} missed its target ({bound} {fmt(r['target'], r['metric'])}), {_change_words(r)}")
        d = (drivers or {}).get((r[by], r["metric"]))
        out.append(s + (f"; {d}." if d else "."))
    return out


def no_data_sentences(card: "pl.DataFrame", *, by: str = "feature") -> list[str]:
    """One sentence per group whose targets have no value in the period (``status`` ``no data``): not measured, so
    neither met nor missed; a feature with no call this week (it stopped, or its logging did) reads here.

    >>> import polars as pl
    >>> card = pl.DataFrame({"feature": ["search", "search"], "metric": ["latency_p95_ms", "wau_count"],
    ...                      "value": [None, None], "previous": [300.0, None], "bound": ["max", "min"],
    ...                      "target": [1000.0, 50.0], "status": ["no data", "no data"]})
    >>> no_data_sentences(card)[0]
    'Search: 2 scorecard targets not measured, no data in this period: p95 latency (at most 1.0 s; 300 ms the period before), weekly active users (at least 50).'
    """
    import polars as pl

    if card.is_empty() or "status" not in card.columns:
        return []
    out = []
    for (group,), part in card.filter(pl.col("status") == "no data").group_by([by], maintain_order=True):
        items = []
        for r in part.iter_rows(named=True):
            m = r["metric"]
            name = label(m) if m == "latency_p95_ms" else label(m).lower()
            before = f"; {fmt(r['previous'], m)} the period before" if r.get("previous") is not None else ""
            items.append(f"{name} ({'at most' if r['bound'] == 'max' else 'at least'} {fmt(r['target'], m)}{before})")
        n = len(items)
        out.append(f"{feature_label(group)}: {n} scorecard target{'s' if n > 1 else ''} not measured, no data in this "
                   f"period: {', '.join(items)}.")
    return out


def driver(rep: "Report", metric: str, *, feature: str, by: str = "feature",
           dimensions: tuple[str, ...] = DRIVER_DIMENSIONS) -> str | None:
    """The group that moved ``metric`` of ``feature`` most against the previous period, in words.

    For each dimension (model, prompt version) the metric is computed per group now and before; a group's weight is
    its change times its share of the current sample. Falls back to the worst day of the window. None when nothing
    can be said (no previous period, no groups).

    Examples
    --------
    >>> import workbench as wb
    >>> from workbench.config import Settings
    >>> from workbench.reports.publish import Report
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, model, status) select 'c' || i, "
    ...     "timestamp '2026-01-01' + to_hours(i * 6), 'chat', if(i % 2 = 0, 'small', 'large'), "
    ...     "if(i >= 28 and i % 4 = 0, 'error', 'ok') from range(56) t(i)")  # week 2: half of small's calls fail
    >>> rep = Report(db, start="2026-01-08", end="2026-01-15", config=Settings())
    >>> driver(rep, "error_rate", feature="chat")
    'main driver: model small (0.0% → 50.0%, 50% of the sample)'
    """
    import polars as pl

    unit = metric_unit(metric)
    worse = 1 if unit.direction == "lower" else -1
    best: tuple[float, str] | None = None
    for dim in dimensions:
        try:
            now = rep.metric(metric, by=[dim], period="all", where={by: feature})
            before = rep.previous(metric, by=[dim], period="all", where={by: feature})
        except Exception:  # noqa: BLE001  a metric without this dimension says nothing about it
            continue
        if now.is_empty() or now[dim].n_unique() < 2:
            continue
        j = now.select(dim, "value", "n").join(before.select(dim, pl.col("value").alias("before")), on=dim, how="left")
        total = j["n"].sum() or 1
        for r in j.iter_rows(named=True):
            if r["value"] is None or r["before"] is None:
                continue
            score = (r["value"] - r["before"]) * worse * (r["n"] / total)
            if score > 0 and (best is None or score > best[0]):
                best = (score, f"main driver: {label(dim).lower()} {r[dim]} ({fmt(r['before'], metric)} → "
                               f"{fmt(r['value'], metric)}, {r['n'] / total:.0%} of the sample)")
    if best is not None:
        return best[1]
    try:
        days = rep.metric(metric, by=[], period="day", where={by: feature}).drop_nulls("value")
    except Exception:  # noqa: BLE001
        return None
    if days.height < 2:
        return None
    r = days.sort("value", descending=worse > 0).row(0, named=True)
    return f"worst day {r['period_start']:%a %d %b} ({fmt(r['value'], metric)})"


def attention(rep: "Report", card: "pl.DataFrame | None" = None, *, config: Any = None, slo: bool = True,
              budgets: bool = True, by: str = "feature") -> Attention:
    """Sentences on what needs attention in the report's period: missed targets (change and main driver), SLO
    alerts firing, SLOs with no call in their window (not measured), budgets at risk or of a feature no call has, and
    data that stopped arriving.
    Records the frames it reads in ``rep``.

    Examples
    --------
    >>> import workbench as wb
    >>> from workbench.config import Settings
    >>> from workbench.reports.publish import Report
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, model, status) select 'c' || i, "
    ...     "timestamp '2026-01-01' + to_hours(i * 6), 'chat', if(i % 2 = 0, 'small', 'large'), "
    ...     "if(i >= 28 and i % 4 = 0, 'error', 'ok') from range(56) t(i)")  # week 2: half of small's calls fail
    >>> import polars as pl
    >>> card = pl.DataFrame({"feature": ["chat"], "metric": ["error_rate"], "value": [0.25], "previous": [0.0],
    ...                      "change": [0.25], "bound": ["max"], "target": [0.05], "status": ["missed"]})
    >>> rep = Report(db, start="2026-01-08", end="2026-01-15", config=Settings())
    >>> print(attention(rep, card, slo=False, budgets=False))  # card: as workbench.reports.publish.scorecard makes it
    - Chat: error rate 25.0% missed its target (at most 5.0%), up 25.0 pp from 0.0% the period before; main driver:
      model small (0.0% → 50.0%, 50% of the sample).
    """
    import polars as pl

    from workbench.metrics.core import as_timestamp, unknown_features

    config = rep.settings if config is None else config  # the report's own settings (Report(config=...))
    items: list[tuple[str, str]] = []
    budget_items = False  # a budget at risk, over or unknown: the all-clear line does not say "budgets on track"
    if card is not None and not card.is_empty():
        missed = card.filter(pl.col("status") == "missed") if "status" in card.columns else card.head(0)
        drivers = {}
        for r in missed.iter_rows(named=True):
            d = driver(rep, r["metric"], feature=r[by], by=by)
            if d:
                drivers[(r[by], r["metric"])] = d
        sentences = missed_sentences(card, drivers, by=by)
        items += [("alert", s) for s in sentences[:MAX_MISSED]]
        if len(sentences) > MAX_MISSED:
            items.append(("alert", f"And {len(sentences) - MAX_MISSED} more missed targets: see the scorecard below."))
        # a target with no value is not measured: never met, never "all clear"
        items += [("alert", s) for s in no_data_sentences(card, by=by)]
    if slo:
        try:
            st = rep.call("slo_status", config=config, at=rep.end)
        except Exception as exc:  # noqa: BLE001  no SLOs declared: say so instead of failing the report
            items.append(("warn", f"SLOs: not evaluated ({' '.join(str(exc).split())[:160]})."))
            st = None
        if st is not None and not isinstance(st, pl.DataFrame):  # a sentence in place of the table (none declared)
            items.append(("warn", f"SLOs: not evaluated ({' '.join(str(st).split())[:160]})."))
            st = None
        if st is not None and "firing" in st.columns:
            for r in st.filter(pl.col("firing").fill_null(False)).iter_rows(named=True):
                since = f" since {r['firing_since']:%a %d %b %H:%M}" if r.get("firing_since") else ""
                left = r.get("budget_remaining")
                # which alert fires: a burn-rate window (the latency report's table) or the window's budget spent,
                # which no burn-rate window shows ("ticket" alone read as a contradiction of that table's "no")
                sev = r.get("severity") or "alert"
                which = ", ".join(a.removeprefix(f"{sev} ") for a in (r.get("alerts") or "").split(", ") if a)
                items.append(("alert", f"SLO alert firing: {feature_label(r[by])} {r['sli']} ({sev}{': ' + which if which else ''}{since}); "
                                       f"error budget left {fmt(left, 'budget_remaining') if left is not None else '–'}."))
        if st is not None and "n" in st.columns:
            # an SLO with no call in its window (a misspelt or renamed feature, calls that stopped) cannot fire: not
            # measured, never "all clear" (the warning `workbench slo` prints does not reach a report)
            end = as_timestamp(rep.end)
            to = f" to {end:%a %d %b %Y %H:%M}" if end is not None else ""
            for (group, days), part in st.filter(pl.col("n") == 0).group_by([by, "window_days"], maintain_order=True):
                items.append(("alert", f"SLO not measured: {feature_label(group)} {' and '.join(part['sli'])}: no call "
                                       f"in its {days}-day window{to} (a misspelt or renamed feature, or calls that "
                                       f"stopped, is never measured and never fires)."))
    if budgets:
        try:
            # the month of the period's last instant: at rep.end (excluded) a monthly report read next month's $0
            b = rep.call("budget_status", config=config, at=rep.last_instant)
        except Exception as exc:  # noqa: BLE001
            items.append(("warn", f"Budgets: not evaluated ({' '.join(str(exc).split())[:160]})."))
            budget_items = True
            b = None
        if b is not None and not isinstance(b, pl.DataFrame):
            items.append(("warn", f"Budgets: not evaluated ({' '.join(str(b).split())[:160]})."))
            budget_items = True
            b = None
        if b is not None and by in b.columns:
            # a budget of a feature no call has (a typo, a renamed feature) spends $0.00 for ever: not "on track" (the
            # warning `workbench budget` prints does not reach a report)
            for f in unknown_features(rep.db, b[by].to_list()):
                items.append(("alert", f"Budget not measured: {feature_label(f)}: no call has this feature, so it "
                                       f"spends $0.00 and never fires (a misspelt or renamed feature?)."))
                budget_items = True
        if b is not None and "status" in b.columns:
            # "no calls": a feature quiet in a month other calls reached spent nothing, which is on track
            for r in b.filter(~pl.col("status").is_in(["ok", "no calls"])).iter_rows(named=True):
                sev = "alert" if r["status"] in ("critical", "over", "alert") else "warn"
                items.append((sev, budget_sentence(r, by=by)))
                budget_items = True
    if card is not None and not card.is_empty() and "status" in card.columns and (card["status"] == "no target").all():
        path = getattr(config, "path", None) if not isinstance(config, (str, os.PathLike)) else config
        where = str(path) if path else (os.environ.get("WORKBENCH_CONFIG") or "workbench.toml")
        found = Path(where).exists()
        items.append(("warn", f"Targets: none declared; {where} {'has no [targets.<feature>] tables' if found else 'was not found'} "
                              "(set WORKBENCH_CONFIG or pass config=)."))
    stale = staleness(rep)
    if stale:
        items.append(("alert", stale))
    if not any(sev == "alert" for sev, _ in items):
        status = card["status"].to_list() if card is not None and "status" in card.columns else []
        n = sum(x != "no target" for x in status)  # the declared targets, not the headline rows without one
        met = status.count("met")
        budgets_word = "" if budget_items or not budgets else ", budgets on track"
        items.insert(0, ("ok", f"All clear: {met} of {n} scorecard targets met, no SLO alert firing{budgets_word}."
                         if n else f"All clear: no SLO alert firing{budgets_word}."))
    return Attention(items)


def newest_call(db: Any, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """The time of the newest LLM call up to ``now`` (default: the clock), or None when there is none: how fresh the
    data is, for the report's stale-data sentence and for ``schedule run``'s stale-data notice alike. Calls only:
    product events that keep arriving do not make stopped LLM calls fresh; and a row dated in the future (a host's
    clock gone wrong) does not either.

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...     "('a', '2026-11-19 06:00', 'chat', 'ok'), ('b', '2099-01-01', 'chat', 'ok')")
    >>> newest_call(db, now=dt.datetime(2026, 11, 24))
    datetime.datetime(2026, 11, 19, 6, 0)
    """
    now = now or utc_now()
    t = db.calls
    v = t.filter(t.ts <= now).ts.max().execute()
    if v is None or v != v or str(v) == "NaT":  # an empty table: None, or pandas' missing time
        return None
    return v.to_pydatetime() if hasattr(v, "to_pydatetime") else v


def staleness(rep: "Report", *, tolerance: dt.timedelta = dt.timedelta(days=1)) -> str | None:
    """A sentence when data stopped arriving before the end of the report's window (stale data), else None: the
    newest call (:func:`newest_call`, as ``schedule run``'s stale-data notice reads it) is older than that end, or the
    clock if sooner, by more than ``tolerance``.

    Examples
    --------
    >>> import workbench as wb
    >>> from workbench.config import Settings
    >>> from workbench.reports.publish import Report
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, model, status) select 'c' || i, "
    ...     "timestamp '2026-01-01' + to_hours(i * 6), 'chat', if(i % 2 = 0, 'small', 'large'), "
    ...     "if(i >= 28 and i % 4 = 0, 'error', 'ok') from range(56) t(i)")  # week 2: half of small's calls fail
    >>> staleness(Report(db, start="2026-01-08", end="2026-01-15", config=Settings())) is None  # calls to the end
    True
    >>> staleness(Report(db, start="2026-01-08", end="2026-01-22", config=Settings()))
    'Stale data: the newest call is from Wed 14 Jan 2026 18:00, 7 days 6 h before the end of this period; data
    stopped arriving.'
    """
    from workbench.metrics.core import as_timestamp

    end = as_timestamp(rep.end)
    if end is None:
        return None
    now = utc_now()
    newest = newest_call(rep.db, now=now)
    horizon = min(end, now)
    if newest is None:
        return "Stale data: no call has been recorded at all."
    if newest < horizon - tolerance:
        gap = horizon - newest
        return (f"Stale data: the newest call is from {newest:%a %d %b %Y %H:%M}, {gap.days} days "
                f"{gap.seconds // 3600} h before the end of this period; data stopped arriving.")
    return None
