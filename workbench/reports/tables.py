"""Tables a person reads: every frame a report shows goes through :func:`table` (great_tables).

Numbers are formatted in the unit of their metric (:mod:`workbench.reports.units`): rates as %, dollars with $,
milliseconds as s, minutes as h/min, counts with thousands separators. Status cells are coloured, and rows that
missed a target or fired an alert come first; rows are grouped by feature; headers are words; long text is cut with
the full text in a ``<details>`` element. The HTML is static with its styles inline: a report stays offline.

:func:`install` makes notebooks show every polars frame this way, so no raw frame (``shape:``, dtype row) reaches
a report.

>>> import polars as pl
>>> df = pl.DataFrame({"feature": ["chat", "code"], "metric": ["error_rate"] * 2, "value": [0.1234, 0.05],
...                    "n": [1200, 80], "lo": [0.1, 0.01], "hi": [0.15, 0.12]})
>>> html = table(df).as_raw_html()
>>> "12.3%" in html and "1,200" in html and "Error rate" in html and "shape:" not in html
True
"""

from __future__ import annotations

import datetime as dt
import html as _html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.reports.units import better, fmt, label, words

if TYPE_CHECKING:  # pragma: no cover
    import great_tables as gt
    import polars as pl

__all__ = ["table", "install", "status_rank", "sparkline", "text_cell", "note", "heading", "STATUS_COLOURS"]

# status word -> (background, text colour); anything not listed stays plain
STATUS_COLOURS = {
    "missed": ("#fde0dc", "#a50e0e"), "critical": ("#fde0dc", "#a50e0e"), "alert": ("#fde0dc", "#a50e0e"),
    "page": ("#fde0dc", "#a50e0e"), "firing": ("#fde0dc", "#a50e0e"), "failed": ("#fde0dc", "#a50e0e"),
    "fail": ("#fde0dc", "#a50e0e"), "over": ("#fde0dc", "#a50e0e"), "srm": ("#fde0dc", "#a50e0e"),
    "worse": ("#fde0dc", "#a50e0e"), "don't ship": ("#fde0dc", "#a50e0e"), "stale": ("#fde0dc", "#a50e0e"),
    "warn": ("#fff3cd", "#7a5a00"), "warning": ("#fff3cd", "#7a5a00"), "ticket": ("#fff3cd", "#7a5a00"),
    "at risk": ("#fff3cd", "#7a5a00"), "keep running": ("#fff3cd", "#7a5a00"), "inconclusive": ("#fff3cd", "#7a5a00"),
    "no pairs": ("#fff3cd", "#7a5a00"), "no data": ("#fff3cd", "#7a5a00"), "unpriced": ("#fff3cd", "#7a5a00"),
    "met": ("#e3f4e8", "#14692d"), "ok": ("#e3f4e8", "#14692d"), "ship": ("#e3f4e8", "#14692d"),
    "better": ("#e3f4e8", "#14692d"), "pass": ("#e3f4e8", "#14692d"), "published": ("#e3f4e8", "#14692d"),
}
_STATUS_COLUMNS = ("status", "state", "alert", "verdict", "decision", "severity_level", "met", "firing", "srm", "result")
# A tidy metric frame's columns in the metric's own unit (the mean beside a median, tpot_ms' p50...).
_IN_UNIT = ("value", "previous", "current", "target", "mean", "p50", "median")
_TIDY = ("lo", "hi", "change", *_IN_UNIT)
# An experiment's effect columns (relative: a share of the control's mean) and mean columns (the metric's unit).
_EFFECTS = ("effect", "lo", "hi", "se", "mean_diff", "risk_control", "risk_variant")
_MEANS = ("mean_control", "mean_variant", "mean_baseline", "mean_candidate")
_HIDDEN = ("suite_metric", "options", "bound")
# Instants that end a window and are excluded from it (slo_report's [window_start, window_end)).
_EXCLUSIVE_ENDS = ("window_end",)
# Segments that are the difference of two others (retained_vs_churned's retained minus churned).
_DIFFERENCES = ("retained-churned",)
TEXT_LIMIT = 90


class Note:
    """A sentence in a report, in place of a table or chart that has nothing to show (escaped: names are data).

    Examples
    --------
    >>> Note("No calls for <billing>.")._repr_html_()
    '<p style="color:#4a5468;margin:6px 0 14px 0">No calls for &lt;billing&gt;.</p>'
    >>> Note("Budgets", level=3)._repr_html_(), repr(Note("plain text"))
    ('<h3>Budgets</h3>', 'plain text')
    """

    def __init__(self, text: str, *, level: int | None = None):
        self.text, self.level = str(text), level

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        body = _html.escape(self.text)
        if self.level:
            return f"<h{self.level}>{body}</h{self.level}>"
        return f'<p style="color:#4a5468;margin:6px 0 14px 0">{body}</p>'


class Stack:
    """Several things a report shows, one after the other, from one cell (headings, notes, charts, frames as
    :func:`table` shows them).

    Examples
    --------
    >>> s = Stack([Note("search_ab", level=4), Note("Not enough users yet.")])
    >>> print(s._repr_html_())
    <h4>search_ab</h4>
    <p style="color:#4a5468;margin:6px 0 14px 0">Not enough users yet.</p>
    """

    def __init__(self, parts: Iterable[Any]):
        self.parts = list(parts)

    def __repr__(self) -> str:
        return "\n\n".join(map(repr, self.parts))

    def _repr_html_(self) -> str:
        import polars as pl

        html = []
        for part in self.parts:
            if isinstance(part, pl.DataFrame):
                part = table(part)
            html.append(part._repr_html_() if hasattr(part, "_repr_html_") else f"<pre>{_html.escape(repr(part))}</pre>")
        return "\n".join(html)


def note(text: str) -> Note:
    """A sentence a report shows where a section has nothing to show, or why it is left out.

    >>> note("No experiment <here>.")._repr_html_()
    '<p style="color:#4a5468;margin:6px 0 14px 0">No experiment &lt;here&gt;.</p>'
    """
    return Note(text)


def heading(text: str, level: int = 3) -> Note:
    """A heading made in a cell (one per experiment, say), its text escaped.

    >>> heading("search_ab: decision")._repr_html_()
    '<h3>search_ab: decision</h3>'
    """
    return Note(text, level=level)


def status_colour(status: Any) -> tuple[str, str] | None:
    """The colours of a status word, read from its start (``keep running: ...`` is a warning).

    >>> status_colour("do not ship: guardrail error_rate worse")[1], status_colour("no clear difference")
    ('#a50e0e', None)
    """
    s = str(status).lower().strip()
    if s in STATUS_COLOURS:
        return STATUS_COLOURS[s]
    head = s.split(":")[0].strip()
    if head in STATUS_COLOURS:
        return STATUS_COLOURS[head]
    if head in ("do not ship", "invalid"):
        return STATUS_COLOURS["missed"]
    return None


def status_rank(status: Any) -> int:
    """Sort key: alerts and misses first, warnings next, then the rest.

    >>> sorted(["met", "missed", "warn"], key=status_rank)
    ['missed', 'warn', 'met']
    """
    colour = status_colour(status)
    if colour is None:
        return 3 if status is None else 2
    return {"#a50e0e": 0, "#7a5a00": 1}.get(colour[1], 2)


def by_status(df: "pl.DataFrame", status: str = "status", *, group: str | None = None) -> "pl.DataFrame":
    """Rows in the order a reader needs them: alerts and misses first (:func:`status_rank`), else as they were; with
    ``group``, the groups with a miss first, then alphabetically, each group's rows in the same order.

    >>> import polars as pl
    >>> df = pl.DataFrame({"feature": ["a", "a", "b", "b"], "status": ["met", "met", "met", "missed"]})
    >>> by_status(df, group="feature").rows()
    [('b', 'missed'), ('b', 'met'), ('a', 'met'), ('a', 'met')]
    """
    import polars as pl

    df = df.with_row_index("_i").with_columns(
        pl.col(status).map_elements(status_rank, return_dtype=pl.Int64).alias("_rank"))
    if group and group in df.columns:
        worst = df.group_by(group).agg(pl.col("_rank").min().alias("_grank"))
        df = df.join(worst, on=group, how="left").sort(["_grank", group, "_rank", "_i"]).drop("_grank")
    else:
        df = df.sort(["_rank", "_i"])
    return df.drop("_i", "_rank")


def _cut(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (where a cell cannot fold it: a row group's heading)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_cell(text: Any, limit: int = TEXT_LIMIT) -> str:
    """Escaped HTML for a text cell: short text as is, long text cut with the whole in a ``<details>`` element.

    >>> text_cell("<b>hi</b>")
    '&lt;b&gt;hi&lt;/b&gt;'
    >>> text_cell("x" * 200, limit=10).startswith("<details><summary>xxxxxxxxxx…")
    True
    """
    if text is None:
        return "–"
    s = str(text)
    if len(s) <= limit:
        return _html.escape(s)
    return (f"<details><summary>{_html.escape(s[:limit].rstrip())}…</summary>"
            f"<div style=\"white-space:pre-wrap;max-width:60em\">{_html.escape(s)}</div></details>")


def sparkline(values: Iterable[float | None], *, width: int = 90, height: int = 22, colour: str = "#4c78a8",
              title: str = "") -> str:
    """A tiny inline SVG line of ``values`` (oldest first) with the last point marked; empty string for < 2 points.

    >>> sparkline([1, 3, 2]).startswith("<svg")
    True
    """
    pts = [float(v) for v in values if v is not None]
    if len(pts) < 2:
        return ""
    lo, hi = min(pts), max(pts)
    span = (hi - lo) or 1.0
    step = (width - 6) / (len(pts) - 1)
    xy = [(3 + i * step, height - 3 - (v - lo) / span * (height - 6)) for i, v in enumerate(pts)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    lx, ly = xy[-1]
    t = f"<title>{_html.escape(title)}</title>" if title else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{_html.escape(title or "trend")}">{t}<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{path}"/><circle cx="{lx:.1f}" cy="{ly:.1f}" r="2.2" fill="{colour}"/></svg>')


def _prepare(df: "pl.DataFrame") -> tuple["pl.DataFrame", str | None]:
    """Drop bookkeeping columns, constant period columns and a single metric name (it goes to the title)."""
    import polars as pl

    df = df.drop([c for c in _HIDDEN if c in df.columns])
    title = None
    for c in list(df.columns):
        dtype = df.schema[c]
        if isinstance(dtype, (pl.List, pl.Array)):
            df = df.with_columns(pl.col(c).map_elements(lambda v: ", ".join(str(x) for x in v) if v is not None else None,
                                                         return_dtype=pl.Utf8))
        elif isinstance(dtype, pl.Struct) or dtype == pl.Object:
            df = df.with_columns(pl.col(c).map_elements(str, return_dtype=pl.Utf8))
    if "metric" in df.columns and "value" in df.columns:
        names = df["metric"].drop_nulls().unique().to_list()
        if len(names) == 1:
            title = label(names[0], time_unit=False)
            df = df.with_columns(pl.col("metric").fill_null(names[0]))
        for c in ("period_start",):
            if c in df.columns and df[c].drop_nulls().n_unique() <= 1:
                df = df.drop(c)
        # no period cut by the window: a column of "no" says nothing
        if "partial" in df.columns and not df["partial"].fill_null(False).any():
            df = df.drop("partial")
    # columns entirely empty say nothing
    df = df.drop([c for c in df.columns if df[c].null_count() == df.height and df.height and c not in ("value",)])
    return df, title


def table(df: "pl.DataFrame", *, title: str | None = None, subtitle: str | None = None, max_rows: int = 40,
          group: str | None = "feature", links: Mapping[str, str] | None = None, note: str | None = None,
          raw: Iterable[str] = (), columns: Iterable[str] | None = None) -> "gt.GT":
    """A formatted great_tables table of any frame a report shows.

    Parameters
    ----------
    df : a tidy metric frame (``metric``, ``value``, ``n``, ``lo``, ``hi``) or any other table.
    title, subtitle : shown above the table (default title: the metric in words, when there is one).
    max_rows : rows shown; a note says how many more are in ``metrics.parquet``.
    group : column whose values become row groups when it repeats (default ``feature``); None: no groups.
    links : metric name -> URL; the metric cell links there (the scorecard links to its detail sections).
    note : a source note under the table.
    raw : columns that already hold HTML made by the workbench (sparklines), shown unescaped.
    columns : the columns to show, in this order (default: all). A single wide row is shown as measure / value rows.

    Examples
    --------
    >>> import polars as pl
    >>> card = pl.DataFrame({"feature": ["a", "a"], "metric": ["latency_p95_ms", "cost_usd"], "value": [7100.0, 1234.5],
    ...                      "target": [7000.0, None], "status": ["missed", "no target"]})
    >>> h = table(card).as_raw_html()
    >>> "7.1 s" in h and "$1,234" in h and "#fde0dc" in h
    True
    """
    import great_tables as gt
    import polars as pl

    if columns is not None:
        df = df.select([c for c in columns if c in df.columns])
    df, auto_title = _prepare(df)
    title = title if title is not None else auto_title
    if df.height == 1 and df.width > 6 and "metric" not in df.columns:
        # named and written as the same table of several rows writes them (Budget used, Support assistant, a date)
        row = df.row(0, named=True)
        df = pl.DataFrame({"measure": [_header(k) for k in row],
                           "value": [_when(v, k, _midnight([v])) if hasattr(v, "strftime") else
                                     ("yes" if v else "no") if isinstance(v, bool) else
                                     (fmt(v, k) if isinstance(v, (int, float)) else None if v is None else
                                      words(v) if k in (group, "feature") else str(v))
                                     for k, v in row.items()]})
    status_col = next((c for c in df.columns if c.lower() in _STATUS_COLUMNS and df.schema[c] in (pl.Utf8, pl.Boolean)), None)
    if status_col is not None and df.schema[status_col] == pl.Utf8:
        df = by_status(df, status_col, group=group)
    total = df.height
    if df.height > max_rows:
        df = df.head(max_rows)
    # rows that are the difference of two others (retained minus churned): a signed change, a rate's in points
    diff = [v in _DIFFERENCES for v in df["segment"].to_list()] if "segment" in df.columns else [False] * df.height
    if "lo" in df.columns and "hi" in df.columns and "value" in df.columns:
        metrics = df["metric"].to_list() if "metric" in df.columns else [None] * df.height
        iv = [None if lo is None and hi is None else
              f"{fmt(lo, m, signed=d, change=d)} – {fmt(hi, m, signed=d, change=d)}"
              for lo, hi, m, d in zip(df["lo"].to_list(), df["hi"].to_list(), metrics, diff)]
        df = df.with_columns(pl.Series("interval_95", iv, dtype=pl.Utf8)).drop("lo", "hi")
        cols = df.columns
        cols.remove("interval_95")
        cols.insert(cols.index("value") + 1, "interval_95")
        df = df.select(cols)
    grouped = bool(group and group in df.columns and df[group].n_unique() > 1 and df.height > df[group].n_unique())
    # the group and the feature in words, as the report's charts and sentences name them (support_assistant ->
    # Support assistant); a group's heading cannot fold its text: a long name is cut (its rows still say which)
    for c in dict.fromkeys([group, "feature"]):
        if c and c in df.columns:
            heading = grouped and c == group
            df = df.with_columns(pl.col(c).cast(pl.Utf8).map_elements(
                (lambda v: _cut(words(v))) if heading else words, return_dtype=pl.Utf8, skip_nulls=False))
    if links and "metric" in df.columns:
        df = df.with_columns(pl.col("metric").alias("_metric_id"))
    # a stable id (from the content) keeps re-executed notebooks identical (nbval compares them)
    import hashlib

    uid = "wb" + hashlib.sha1(repr((df.columns, df.rows()[:50], title)).encode()).hexdigest()[:10]
    g = gt.GT(df, groupname_col=group if grouped else None, id=uid)
    metric_ids = df["metric"].to_list() if "metric" in df.columns else None
    # per-row units for the tidy value columns
    if metric_ids is not None and "value" in df.columns:
        by_metric: dict[Any, list[int]] = {}
        for i, (m, d) in enumerate(zip(metric_ids, diff)):
            by_metric.setdefault((m, d), []).append(i)
        for (m, d), rows in by_metric.items():
            for c in [c for c in _IN_UNIT if c in df.columns]:
                g = g.fmt(lambda x, m=m, d=d: fmt(x, m, signed=d, change=d), columns=c, rows=rows)
            if "change" in df.columns:
                g = g.fmt(lambda x, m=m: fmt(x, m, signed=True, change=True), columns="change", rows=rows)
    # an experiment's effects and means (experiment_summary, decision_table, shadow_comparison): per row, a relative
    # effect as a signed percent, an absolute one and the means in the unit of the row's metric
    handled: set[str] = set()
    if metric_ids is not None and "value" not in df.columns and ({"effect", "mean_diff"} & set(df.columns)):
        rel = df["relative"].to_list() if "relative" in df.columns else [False] * df.height
        rows_of: dict[tuple[Any, bool], list[int]] = {}
        for i, (m, relative) in enumerate(zip(metric_ids, rel)):
            rows_of.setdefault((m, bool(relative)), []).append(i)
        for (m, relative), rows in rows_of.items():
            for c in [c for c in _EFFECTS if c in df.columns]:
                signed = c in ("effect", "lo", "hi", "mean_diff")
                g = g.fmt((lambda x, s=signed: fmt(x, "x_rate", signed=s)) if relative and c != "mean_diff"
                          else (lambda x, m=m, s=signed: fmt(x, m, signed=s)), columns=c, rows=rows)
            for c in [c for c in _MEANS if c in df.columns]:
                g = g.fmt(lambda x, m=m: fmt(x, m), columns=c, rows=rows)
        handled = (set(_EFFECTS) | set(_MEANS)) & set(df.columns)
    if metric_ids is not None:
        g = g.fmt(lambda m: _metric_cell(m, links), columns="metric")
    if metric_ids is None and "value" in df.columns:
        g = g.fmt(lambda x: fmt(x, None), columns="value")
    for c in df.columns:
        if c in ("metric", "_metric_id") or (grouped and c == group) \
                or (metric_ids is not None and c in _TIDY and "value" in df.columns) \
                or c in handled:
            continue
        if c in raw:
            g = g.fmt(lambda x: x or "", columns=c)
            continue
        dtype = df.schema[c]
        if c == "relative_change":
            g = g.fmt(lambda x: fmt(x, "x_rate", signed=True), columns=c)
        elif dtype == pl.Boolean:
            g = g.fmt(lambda x: "yes" if x else ("no" if x is not None else "–"), columns=c)
        elif dtype.is_numeric():  # (escaped: a p-value's "< 0.001" is text in the cell, not the start of a tag)
            g = g.fmt(lambda x, c=c: _html.escape(fmt(x, c)), columns=c)
        elif dtype in (pl.Datetime, pl.Date) or isinstance(dtype, pl.Datetime):
            g = g.fmt(lambda x, c=c, d=_midnight(df[c].to_list()): _when(x, c, d), columns=c)
        elif dtype == pl.Utf8 and c != status_col:
            g = g.fmt(lambda x: text_cell(x), columns=c)
    # colours: status cells, and changes coloured by whether they are better or worse
    if status_col is not None:
        values = df[status_col].to_list()
        for colours in sorted(set(STATUS_COLOURS.values())):
            bg, fg = colours
            rows = [i for i, v in enumerate(values) if status_colour(v) == colours]
            if rows:
                g = g.tab_style(style=[gt.style.fill(color=bg), gt.style.text(color=fg, weight="bold")],
                                locations=gt.loc.body(columns=status_col, rows=rows))
    if "change" in df.columns and metric_ids is not None:
        ch = df["change"].to_list()
        for verdict, colour in ((True, "#14692d"), (False, "#a50e0e")):
            rows = [i for i, (m, x) in enumerate(zip(metric_ids, ch)) if better(m or "", x) is verdict]
            if rows:
                g = g.tab_style(style=gt.style.text(color=colour), locations=gt.loc.body(columns=["change", "relative_change"]
                                if "relative_change" in df.columns else "change", rows=rows))
    labels = {c: _header(c) for c in df.columns}
    g = g.cols_label(**labels)
    if "_metric_id" in df.columns:
        g = g.cols_hide("_metric_id")
    g = g.sub_missing(missing_text="–")
    if title or subtitle:
        g = g.tab_header(title=title or "", subtitle=subtitle)
    # a table with no row says so: headings over nothing read as a table that failed to render
    notes = [n for n in (note, f"Showing {max_rows} of {total} rows; every row is in metrics.parquet." if total > max_rows else None,
                         "No row in this period." if total == 0 else None) if n]
    for n in notes:
        g = g.tab_source_note(n)
    return g.tab_options(table_font_size="14px", heading_title_font_size="16px", heading_align="left",
                         column_labels_font_weight="bold", row_group_font_weight="bold", data_row_padding="4px",
                         table_margin_left="0px", container_width="100%")


def _midnight(values: Iterable[Any]) -> bool:
    """Whether every time of a column is at midnight: the column holds days."""
    return all(v is None or (getattr(v, "hour", 0) == 0 and getattr(v, "minute", 0) == 0) for v in values)


def _when(x: Any, column: str, only_dates: bool) -> str:
    """A date or time cell: a day when its column holds days (an excluded end at midnight shown as the last day it
    closes, as the report's header shows its window), else day and time."""
    if x is None:
        return "–"
    if not only_dates:
        return x.strftime("%d %b %Y %H:%M")
    back = dt.timedelta(days=1) if column in _EXCLUSIVE_ENDS else dt.timedelta(0)
    return (x - back).strftime("%a %d %b %Y")


def _metric_cell(m: Any, links: Mapping[str, str] | None) -> str:
    text = _html.escape(label(m, time_unit=False))
    if links and m in links:
        return f'<a href="{_html.escape(links[m], quote=True)}">{text}</a>'
    return text


_HEADERS = {"value": "Value", "n": "Sample", "interval_95": "95% interval", "previous": "Previous", "change": "Change",
            "relative_change": "Change %", "target": "Target", "status": "Status", "metric": "Metric",
            "period_start": "Period", "feature": "Feature", "model": "Model", "prompt_version": "Prompt version",
            "sli": "Indicator", "sli_value": "Attained", "met": "Met", "share_used": "Budget used",
            "forecast_share": "Forecast share of budget", "warn_at": "Warn at", "error_budget": "Error budget",
            "budget_consumed": "Error budget used", "budget_remaining": "Error budget left", "objective": "Objective"}


def _header(c: str) -> str:
    return _HEADERS.get(c) or label(c, time_unit=False)



def _html_of_frame(df: "pl.DataFrame") -> str:
    return table(df)._repr_html_()


def install(ip: Any = None) -> bool:
    """Show every polars frame of this IPython session as a formatted table (no ``shape:`` or dtype row).

    Returns False outside IPython.

    Examples
    --------
    >>> import types, polars as pl
    >>> from IPython.core.formatters import DisplayFormatter
    >>> ip = types.SimpleNamespace(display_formatter=DisplayFormatter())  # stands in for get_ipython()
    >>> install(ip)
    True
    >>> frame = pl.DataFrame({"feature": ["chat", "code"], "error_rate": [0.1234, 0.05]})
    >>> shown, _ = ip.display_formatter.format(frame)
    >>> shown["text/plain"], "12.3%" in shown["text/html"], "shape:" in shown["text/html"]
    ('table of 2 rows', True, False)
    """
    import polars as pl

    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover
            return False
        ip = get_ipython()
    if ip is None:
        return False
    ip.display_formatter.formatters["text/html"].for_type(pl.DataFrame, _html_of_frame)
    ip.display_formatter.formatters["text/plain"].for_type(pl.DataFrame, lambda df, p, cycle: p.text(f"table of {df.height} rows"))
    return True


def grid(df: "pl.DataFrame", *, row: str, col: str, value: str = "value", metric: str | None = None,
         title: str | None = None) -> "gt.GT":
    """A pivoted grid (e.g. retention: cohort rows, week-offset columns) with values in the metric's unit,
    shaded by value.

    >>> import polars as pl
    >>> df = pl.DataFrame({"cohort": ["w1", "w1", "w2"], "offset": [0, 1, 0], "value": [1.0, 0.4, 1.0]})
    >>> "40.0%" in grid(df, row="cohort", col="offset", metric="retention_rate").as_raw_html()
    True
    """
    import great_tables as gt
    import polars as pl

    data = df.select(row, col, value)
    # rows in the order they come (a caller's labels need not sort as text: "05 Oct" after "02 Nov"), columns in the
    # order of their values (week 10 after week 2)
    order = pl.DataFrame({row: data[row].unique(maintain_order=True)}).with_row_index("_order")
    wide = data.pivot(on=col, index=row, values=value).join(order, on=row, how="left").sort("_order").drop("_order")
    cols = data[col].unique().sort().cast(pl.Utf8).to_list()
    wide = wide.select(row, *[c for c in cols if c in wide.columns])
    value_cols = [c for c in wide.columns if c != row]
    if wide.schema[row] in (pl.Datetime, pl.Date) or isinstance(wide.schema[row], pl.Datetime):
        wide = wide.with_columns(pl.col(row).dt.strftime("%d %b %Y"))
    import hashlib

    g = gt.GT(wide, rowname_col=row, id="wb" + hashlib.sha1(repr(wide.rows()).encode()).hexdigest()[:10])
    g = g.fmt(lambda x: fmt(x, metric or "x_rate"), columns=value_cols)
    # one scale for every cell (per column, week 0's 100% were all white and a 37% of week 6 darker than a 69% of
    # week 1): the same value, the same shade
    values = [v for c in value_cols for v in wide[c].drop_nulls().to_list()]
    domain = [min(values), max(values)] if values and min(values) < max(values) else None
    g = g.data_color(columns=value_cols, palette=["#f7fbff", "#08519c"], domain=domain, na_color="#ffffff",
                     autocolor_text=True)
    g = g.sub_missing(missing_text="")
    g = g.cols_label(**{c: f"Week {c}" for c in value_cols})
    if title:
        g = g.tab_header(title=title)
    return g.tab_options(table_font_size="13px", heading_align="left", container_width="100%")
