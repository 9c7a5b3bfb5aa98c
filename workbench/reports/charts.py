"""Charts for people, from tidy metric frames. Charts never compute metrics; they draw the frame they are given.

Every function takes a tidy frame (group keys, ``period_start``, ``metric``, ``value``, ``n``, ``lo``, ``hi``) and
returns a :class:`Figure`: an Altair chart titled in words, with axes in the metric's unit (%, $, ms), dates on a
time axis, readable legends, target lines, and alt text that states the finding. A figure renders as inline SVG
(vl-convert, locally), so a report opens offline. A frame with a single group is not worth a chart: it is shown as a
formatted table instead.

>>> import polars as pl, datetime as dt
>>> df = pl.DataFrame({"feature": ["a", "a", "b", "b"],
...                    "period_start": [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)] * 2,
...                    "metric": ["error_rate"] * 4, "value": [0.1, 0.2, 0.05, 0.04], "n": [10, 10, 20, 20],
...                    "lo": [0.02, 0.06, 0.01, 0.01], "hi": [0.4, 0.5, 0.2, 0.2]})
>>> fig = chart(df)
>>> fig.alt
'Error rate by feature, daily: highest A at 20.0% on Fri 02 Jan; lowest B at 4.0% on Fri 02 Jan.'
>>> fig.to_dict()["layer"][0]["mark"]["type"]
'area'
>>> compare(df.filter(pl.col("period_start") == dt.datetime(2026, 1, 1))).to_dict()["layer"][0]["mark"]["type"]
'bar'
"""

from __future__ import annotations

import html as _html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workbench.errors import ParameterError
from workbench.reports.units import axis_format, fmt, label, metric_unit, words
from workbench.reports.tables import note

if TYPE_CHECKING:  # pragma: no cover
    import altair as alt
    import polars as pl

__all__ = ["Figure", "use_svg", "keys_of", "trend", "compare", "chart", "retention_grid", "lifecycle", "funnel", "effects",
           "heatmap", "facet_metrics"]

_STANDARD = {"period_start", "metric", "value", "n", "lo", "hi", "partial"}
MAX_BANDS = 3  # more than three overlapping interval bands is noise: draw lines only
WIDTH = 620


def use_svg() -> None:
    """Render charts as inline SVG (via vl-convert, locally): no JavaScript from the internet, reports open offline.

    Examples
    --------
    >>> import altair as alt
    >>> before = alt.renderers.active
    >>> use_svg()
    >>> alt.renderers.active
    'svg'
    >>> _ = alt.renderers.enable(before)  # back to the renderer of before
    """
    import altair as alt

    alt.renderers.enable("svg")


class Figure:
    """An Altair chart with its alt text; shows as inline SVG with ``role="img"`` and the finding as caption.

    Attribute access falls through to the chart (``fig.to_dict()``, ``fig.properties(...)``).

    Examples
    --------
    >>> import altair as alt, polars as pl
    >>> fig = Figure(alt.Chart(pl.DataFrame({"x": [1, 2]})).mark_bar().encode(x="x:Q"), "Two bars: 1 and 2.")
    >>> fig.alt, fig.to_dict()["mark"]["type"]
    ('Two bars: 1 and 2.', 'bar')
    >>> fig.properties(width=300).to_dict()["width"]  # falls through to the Altair chart
    300
    """

    def __init__(self, chart: "alt.TopLevelMixin", alt_text: str):
        self.chart, self.alt = chart, alt_text

    def __getattr__(self, name: str) -> Any:
        return getattr(self.chart, name)

    def to_svg(self) -> str:
        import vl_convert as vlc

        svg = vlc.vegalite_to_svg(self.chart.to_json())
        a = _html.escape(self.alt, quote=True)
        return svg.replace("<svg ", f'<svg role="img" aria-label="{a}" ', 1).replace(">", f"><title>{a}</title>", 1)

    def _repr_html_(self) -> str:
        return (f'<figure style="margin:8px 0 18px 0">{self.to_svg()}<figcaption style="color:#4a5468;font-size:13px;'
                f'max-width:{WIDTH + 80}px">{_html.escape(self.alt)}</figcaption></figure>')

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self._repr_html_(), "text/plain": self.alt}


def keys_of(df: "pl.DataFrame") -> list[str]:
    """The group-key columns of a tidy frame: the columns before ``period_start``.

    >>> import polars as pl
    >>> keys_of(pl.DataFrame({"feature": [], "model": [], "period_start": [], "metric": [], "value": []}))
    ['feature', 'model']
    """
    cols = df.columns
    return cols[: cols.index("period_start")] if "period_start" in cols else [c for c in cols if c not in _STANDARD]


def _prepare(df: "pl.DataFrame", color: str | None) -> tuple["pl.DataFrame", str | None, str]:
    import polars as pl

    if "value" not in df.columns or "metric" not in df.columns:
        raise ParameterError(f"charts: expected a tidy metric frame with metric and value columns, got {df.columns}")
    names = df["metric"].drop_nulls().unique(maintain_order=True).to_list()
    metric = names[0] if names else ""
    keys = [k for k in keys_of(df) if k != "metric" and (df[k].n_unique() > 1 or k == color)]
    if color is None and keys:
        if len(keys) > 1:
            df = df.with_columns(pl.concat_str([pl.col(k).cast(pl.Utf8).fill_null("(none)") for k in keys], separator=" · ").alias("group"))
            color = "group"
        else:
            color = keys[0]
    if color is not None:
        df = df.with_columns(pl.col(color).map_elements(words, return_dtype=pl.Utf8, skip_nulls=False))
    return df.drop_nulls("value"), color, metric


def _format(metric: str, data: "pl.DataFrame | None" = None) -> str:
    """The Vega-Lite format of a metric's values in a chart. Percents carry the decimals the data needs: rates under
    5% are ticked every half point, which whole percents would label "1%, 1%, 2%, 2%" (and show 2.2% as "2%")."""
    f, _ = axis_format(metric)
    if f == ".0%" and data is not None:
        cols = [c for c in ("value", "hi") if c in data.columns]
        top = max((abs(v) for c in cols for v in data[c].drop_nulls().to_list()), default=None)
        if top is not None and 0 < top < 0.05:
            f = ".1%" if top >= 0.005 else ".2%"
    elif f in ("$,.2f", ",.0f") and data is not None and metric_unit(metric).kind != "count":
        # dollars and milliseconds with the decimals about five ticks over the data need: a daily spend of
        # $0.0035-$0.0066 was ticked "$0.00" five times and "$0.01" three times
        vals = [v for c in ("value", "lo", "hi") if c in data.columns for v in data[c].drop_nulls().to_list()
                if math.isfinite(v)]
        span = (max(vals) - min(vals)) or max(map(abs, vals), default=0) if vals else 0
        if span > 0:
            decimals = min(6, max(0, math.ceil(-math.log10(span / 5))))
            f = f"$,.{max(2, decimals)}f" if f.startswith("$") else f",.{decimals}f"
    return f


def _axis(metric: str, title: str | None = None, data: "pl.DataFrame | None" = None) -> "alt.Axis":
    import altair as alt

    _, unit = axis_format(metric)
    t = title or label(metric)
    # counts (users, calls) are whole: a tick at 3.5 would read "4" beside the real 4
    whole = {"tickMinStep": 1} if metric_unit(metric).kind == "count" else {}
    return alt.Axis(format=_format(metric, data), title=f"{t} ({unit})" if unit else t, **whole)


def _title(metric: str, color: str | None, grain: str | None, title: str | None, data: "pl.DataFrame | None" = None) -> str:
    if title:
        return title
    by = f" by {label(color).lower()}" if color and color != "group" else ""
    # one group has no legend (its key is constant): the title names it, or no one can tell whose line it is
    only = [] if color or data is None else _groups(data, None)[1]
    # a metric that names its grain (Daily active users, per day) says it once, not "Daily active users, daily"
    said = grain is not None and grain in label(metric).lower().split()
    return f"{label(metric)}{by}{', ' + grain if grain and not said else ''}{': ' + ' · '.join(only) if only else ''}"


def _groups(data: "pl.DataFrame", color: str | None) -> tuple[list[str], list[str]]:
    """The columns that tell a chart's groups apart and the groups in words: ``color`` and its values, or with no
    colour every key but ``metric`` and its one value (a chart of one group, whose keys are constant), which the
    title names and whose target lines are drawn.

    >>> import polars as pl
    >>> _groups(pl.DataFrame({"feature": ["support_assistant"], "metric": ["error_rate"], "value": [0.1]}), None)
    (['feature'], ['Support assistant'])
    """
    keys = [color] if color else [k for k in keys_of(data) if k != "metric"]
    return keys, [words(v) for k in keys for v in data[k].drop_nulls().unique(maintain_order=True).to_list()]


def _grain(df: "pl.DataFrame") -> str | None:
    ps = df["period_start"].drop_nulls().unique().sort() if "period_start" in df.columns else None
    if ps is None or ps.len() < 2:
        return None
    step = (ps[1] - ps[0]).days if hasattr(ps[1] - ps[0], "days") else None
    return {1: "daily", 7: "weekly"}.get(step, "monthly" if step and step >= 28 else None)


def _target_layer(targets: Mapping[str, float] | float | None, color: str | None, data: "pl.DataFrame") -> list:
    import altair as alt
    import polars as pl

    if targets is None:
        return []
    if isinstance(targets, (int, float)):
        rows = [{"target": float(targets), "label": "target"}]
    else:
        # a single group has no colour (its key is constant): its own target is drawn, not those of the groups the
        # chart does not hold, which read as the one line's targets
        keys, names = _groups(data, color)
        groups = set(names)
        # groups with the same target share one line and one label: two labels at one height were drawn one over the
        # other ("target Supportmassistant")
        same: dict[float, list[str]] = {}
        for k, v in targets.items():
            if words(k) in groups or not keys:
                same.setdefault(float(v), []).append(words(k))
        rows = [{"target": v, "label": f"target {', '.join(sorted(names))}"} for v, names in same.items()]
    if not rows:
        return []
    t = alt.Chart(pl.DataFrame(rows))
    return [t.mark_rule(strokeDash=[6, 4], color="#a50e0e").encode(y="target:Q"),
            t.mark_text(align="left", dx=4, dy=-6, color="#a50e0e", fontSize=11).encode(
                y="target:Q", text="label:N", x=alt.value(4))]


def trend(df: "pl.DataFrame", *, color: str | None = None, title: str | None = None, targets: Mapping[str, float] | float | None = None,
          width: int = WIDTH, height: int = 240) -> "Figure | Any":
    """A line over ``period_start`` (a date axis) per group, with its interval as a band when there are few groups,
    and dashed target lines (``targets``: one value, or group -> value).

    Parameters
    ----------
    df : tidy frame with a non-null ``period_start``.
    color : group column to colour by (default: the group keys that vary).
    title : chart title (default: the metric in words, by what, at which grain).

    Examples
    --------
    >>> import polars as pl, datetime as dt
    >>> df = pl.DataFrame({"feature": ["chat", "chat", "search", "search"],
    ...                    "period_start": [dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12)] * 2,
    ...                    "metric": ["latency_p95_ms"] * 4, "value": [800.0, 1200.0, 300.0, 350.0],
    ...                    "n": [10, 10, 20, 20]})
    >>> fig = trend(df, targets={"chat": 1000})
    >>> fig.alt
    'p95 latency by feature, weekly: highest Chat at 1.2 s on Mon 12 Jan; lowest Search at 300 ms on Mon 05 Jan.'
    >>> [layer["mark"]["type"] for layer in fig.to_dict()["layer"]]  # the lines, then the target's rule and label
    ['line', 'rule', 'text']
    """
    import altair as alt
    import polars as pl

    data, color, metric = _prepare(df, color)
    if data.is_empty():  # every group-period n = 0 (calls that report no TTFT, say): a sentence, not empty axes
        # calls with no price are calls whose spend is unknown, not an absence of calls
        unpriced = int(df["unpriced_count"].sum() or 0) if "unpriced_count" in df.columns else 0
        why = f"{fmt(unpriced, 'calls_count')} calls without a price" if unpriced else "nothing to measure in any group"
        return note(f"{_title(metric, color, None, title)}: no value in this period ({why}).")
    grain = _grain(data)
    legend = alt.Legend(title=label(color), orient="right", labelLimit=220) if color else None
    enc_color = alt.Color(f"{color}:N", legend=legend) if color else alt.value("#4c78a8")
    x = alt.X("period_start:T", title=None, axis=alt.Axis(format="%a %d %b" if grain == "daily" else "%d %b %Y", labelAngle=0))
    base = alt.Chart(data).encode(x=x)
    f = _format(metric, data)
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", axis=_axis(metric, data=data)),
        color=enc_color,
        tooltip=[alt.Tooltip("period_start:T", title="Date"), alt.Tooltip("value:Q", title=label(metric), format=f)]
        + ([alt.Tooltip(f"{color}:N", title=label(color))] if color else []) + [alt.Tooltip("n:Q", title="Sample")],
    )
    layers: list = []
    n_groups = data[color].n_unique() if color else 1
    band = _bands(data, color) if n_groups <= MAX_BANDS else None
    if band is not None and band.height:
        # a band over each run of periods with both bounds; a lone period with its interval is a bar
        runs, alone = band.filter(~pl.col("_alone")), band.filter(pl.col("_alone"))
        if runs.height:
            layers.append(alt.Chart(runs).encode(x=x).mark_area(opacity=0.15).encode(
                y="lo:Q", y2="hi:Q", color=enc_color, detail="_run:N"))
        if alone.height:
            layers.append(alt.Chart(alone).encode(x=x).mark_rule(opacity=0.3, strokeWidth=6).encode(
                y="lo:Q", y2="hi:Q", color=enc_color))
    layers.append(line)
    layers += _partial_layer(x, data, color, metric)
    layers += _target_layer(targets, color, data)
    t = _title(metric, color, grain, title, data)
    chart = alt.layer(*layers).properties(title=t, width=width, height=height)
    return Figure(chart, _finding(data, color, metric, t) + _partial_text(data))


def _bands(data: "pl.DataFrame", color: str | None) -> "pl.DataFrame | None":
    """The periods of ``data`` whose interval is known (``lo`` and ``hi`` both set), numbered by run (``_run``):
    consecutive periods of a group with an interval, ``_alone`` when the run is one period. A bound missing (a p95
    of a few dozen values has no upper bound) ends the band there, rather than drawing it to the neighbours' bounds.

    >>> import polars as pl, datetime as dt
    >>> days = [dt.datetime(2026, 1, d) for d in (5, 6, 7, 8)]
    >>> df = pl.DataFrame({"period_start": days, "value": [5.0] * 4, "lo": [4.0] * 4, "hi": [6.0, 7.0, None, 6.0]})
    >>> _bands(df, None).select("hi", "_run", "_alone").rows()
    [(6.0, 0, False), (7.0, 0, False), (6.0, 1, True)]
    """
    import polars as pl

    if "lo" not in data.columns or "hi" not in data.columns:
        return None
    by = [color] if color else []
    known = pl.col("lo").is_not_null() & pl.col("hi").is_not_null()
    df = data.sort([*by, "period_start"]).with_columns(known.alias("_known"))
    start = pl.col("_known") & ~pl.col("_known").shift(1).fill_null(False)  # the first period of a run
    run = start.cast(pl.Int64).cum_sum() - 1
    df = df.with_columns((run.over(by) if by else run).alias("_run")).filter(pl.col("_known"))
    size = pl.len().over([*by, "_run"])
    return df.with_columns((size == 1).alias("_alone")).drop("_known")


PARTIAL = "Partial period"


def _partial(data: "pl.DataFrame") -> "pl.DataFrame":
    """The rows of periods the window cuts (``partial`` True; unknown, null, is not drawn as cut)."""
    import polars as pl

    if "partial" not in data.columns or "period_start" not in data.columns:
        return data.clear()
    return data.filter(pl.col("partial").fill_null(False))


def _partial_layer(x: "alt.X", data: "pl.DataFrame", color: str | None, metric: str) -> list:
    """Hollow points (white, ringed in the group's colour) over the periods the window covers only in part (a first
    week started on a Thursday), with a legend entry "Partial period": their values are of fewer days, not a drop."""
    import altair as alt
    import polars as pl

    cut = _partial(data)
    if cut.is_empty():
        return []
    ring = alt.Color(f"{color}:N", legend=None) if color else alt.value("#4c78a8")
    cut = alt.Chart(cut.with_columns(pl.lit(PARTIAL).alias("_period")))
    tip = [alt.Tooltip("period_start:T", title="Date"),
           alt.Tooltip("value:Q", title=label(metric), format=_format(metric, data)),
           alt.Tooltip("_period:N", title="Coverage"), alt.Tooltip("n:Q", title="Sample")]
    hollow = cut.mark_point(filled=False, fill="white", size=70, strokeWidth=2, opacity=1).encode(
        x=x, y="value:Q", color=ring, tooltip=tip)
    # the legend entry, from an undrawn copy in one grey (a legend of the ringed points would take no stroke)
    legend = alt.Legend(title=None, orient="right", symbolOpacity=1, symbolFillColor="white", symbolStrokeWidth=2)
    key = cut.mark_point(filled=False, fill="white", color="#4a5468", opacity=0).encode(
        x=x, y="value:Q", shape=alt.Shape("_period:N", legend=legend))
    return [hollow, key]


def _partial_text(data: "pl.DataFrame", drawn: str = "Hollow points") -> str:
    """The caption's sentence naming the partial periods and how they are ``drawn`` ('' when there is none): one
    wording for every chart over time."""
    cut = _partial(data)
    if cut.is_empty():
        return ""
    days = ", ".join(f"{d:%a %d %b}" for d in cut["period_start"].unique().sort().to_list())
    return f" {drawn}: partial periods (the window covers only part of them): {days}."


def _finding(data: "pl.DataFrame", color: str | None, metric: str, title: str) -> str:
    if data.is_empty():
        return f"{title}: no data in this period."
    hi = data.sort("value", descending=True).row(0, named=True)
    lo = data.sort("value").row(0, named=True)
    def where(r: dict) -> str:
        who = f"{r[color]} " if color else ""
        when = f" on {r['period_start']:%a %d %b}" if r.get("period_start") is not None and data["period_start"].n_unique() > 1 else ""
        return f"{who}at {fmt(r['value'], metric)}{when}"
    return f"{title}: highest {where(hi)}; lowest {where(lo)}."


def compare(df: "pl.DataFrame", *, by: str | None = None, title: str | None = None, targets: float | None = None,
            width: int = WIDTH) -> "Figure | Any":
    """Horizontal bars per group with the interval as an error bar (one period, or ``period="all"``).

    Groups without a value (e.g. calls without a price) are drawn as a labelled empty row, never dropped silently.
    A single group is shown as a table: one bar says nothing a number does not.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"feature": ["chat", "search"], "metric": ["latency_p95_ms"] * 2,
    ...                    "value": [1200.0, 350.0], "n": [10, 20]})
    >>> fig = compare(df)
    >>> fig.alt, fig.to_dict()["layer"][0]["mark"]["type"]
    ('p95 latency by feature: highest Chat at 1.2 s; lowest Search at 350 ms.', 'bar')
    >>> type(compare(df.head(1))).__name__  # one group: a table
    'GT'
    """
    import altair as alt
    import polars as pl

    from workbench.reports.tables import table

    data, color, metric = _prepare(df.with_columns(pl.col("value")), by)
    full = df
    y = color or "metric"
    if y not in full.columns:
        return table(df, title=title)
    full = full.with_columns(pl.col(y).map_elements(words, return_dtype=pl.Utf8, skip_nulls=False))
    if full[y].n_unique() < 2:
        return table(df, title=title)
    missing = full.filter(pl.col("value").is_null())
    f = _format(metric, data)
    t = title or f"{label(metric)} by {label(y).lower()}"
    data = data.with_columns(pl.col("value").map_elements(lambda v: fmt(v, metric), return_dtype=pl.Utf8).alias("shown"))
    base = alt.Chart(data).encode(y=alt.Y(f"{y}:N", title=None, sort="-x", axis=alt.Axis(labelLimit=240)))
    bars = base.mark_bar(opacity=0.85, color="#4c78a8").encode(
        x=alt.X("value:Q", axis=_axis(metric, data=data)),
        tooltip=[alt.Tooltip(f"{y}:N", title=label(y)), alt.Tooltip("value:Q", title=label(metric), format=f),
                 alt.Tooltip("n:Q", title="Sample")],
    )
    layers = [bars]
    if "lo" in data.columns and data["lo"].drop_nulls().len():
        layers.append(base.mark_rule(color="#1d2433").encode(x="lo:Q", x2="hi:Q"))
    layers.append(base.mark_text(align="left", dx=4, color="#1d2433", fontSize=11).encode(
        x="hi:Q" if "hi" in data.columns and data["hi"].drop_nulls().len() == data.height else "value:Q", text="shown:N"))
    if targets is not None:
        layers.append(alt.Chart(pl.DataFrame({"target": [float(targets)]})).mark_rule(strokeDash=[6, 4], color="#a50e0e").encode(x="target:Q"))
    if missing.height:
        unpriced = missing.with_columns(pl.lit(0.0).alias("value"), pl.lit("no value (e.g. unpriced)").alias("shown"))
        if "unpriced_count" in missing.columns:
            # a group of calls no price applies to, or of spans with no model and no tokens (tools, agents): nothing
            # to price, which "unpriced: 0 calls" would misread
            def count(c: str) -> "pl.Expr":  # as units writes a count: 1,174
                return pl.col(c).map_elements(lambda v: fmt(v, "calls_count"), return_dtype=pl.Utf8)

            why = pl.when(pl.col("unpriced_count") > 0).then(pl.format("unpriced: {} calls", count("unpriced_count")))
            if "calls_count" in missing.columns:
                why = why.when(pl.col("calls_count") > 0).then(
                    pl.format("nothing to price: {} calls without a model or tokens", count("calls_count")))
            unpriced = unpriced.with_columns(why.otherwise(pl.lit("no calls")).alias("shown"))
        layers.append(alt.Chart(unpriced.select(y, "value", "shown")).mark_text(align="left", dx=2, color="#a50e0e", fontSize=11)
                      .encode(y=alt.Y(f"{y}:N", sort="-x"), x="value:Q", text="shown:N"))
    rows = full[y].n_unique()
    chart = alt.layer(*layers).properties(title=t, width=width, height=max(60, 24 * rows))
    finding = _finding(data.drop("period_start", strict=False), y, metric, t)
    if missing.height:
        finding += f" {missing.height} group(s) without a value: {', '.join(str(v) for v in missing[y].to_list())}."
    return Figure(chart, finding)


def chart(df: "pl.DataFrame", *, title: str | None = None, targets: Mapping[str, float] | float | None = None, **kwargs) -> "Figure | Any":
    """Pick the chart for a tidy frame: a trend when it has several periods, else bars (or a table for one group).

    Examples
    --------
    >>> import polars as pl, datetime as dt
    >>> df = pl.DataFrame({"feature": ["chat", "chat", "search", "search"],
    ...                    "period_start": [dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12)] * 2,
    ...                    "metric": ["latency_p95_ms"] * 4, "value": [800.0, 1200.0, 300.0, 350.0],
    ...                    "n": [10, 10, 20, 20]})
    >>> chart(df).to_dict()["layer"][0]["mark"]["type"]  # two weeks: a trend
    'line'
    >>> chart(df.filter(pl.col("period_start") == dt.datetime(2026, 1, 12))).to_dict()["layer"][0]["mark"]["type"]
    'bar'
    """
    if "period_start" in df.columns and df["period_start"].drop_nulls().n_unique() > 1:
        return trend(df, title=title, targets=targets, **kwargs)
    return compare(df, title=title, targets=targets if isinstance(targets, (int, float)) else None, **kwargs)


def _nothing(df: "pl.DataFrame") -> bool:
    """Whether a metric frame has no value to draw: no rows, or only the null row of an empty selection (n = 0, which
    lacks the columns a split metric adds: no events at all, say)."""
    return df.is_empty() or "value" in df.columns and df["value"].drop_nulls().is_empty()


def retention_grid(df: "pl.DataFrame", *, title: str = "Weekly retention by first-use cohort") -> Any:
    """Retention as a cohort grid: one row per weekly cohort (with its size), one column per week since first use,
    % in the cells, shaded by value (a great_tables table).

    Examples
    --------
    >>> import polars as pl, datetime as dt
    >>> df = pl.DataFrame({"cohort_start": [dt.date(2026, 1, 5)] * 2 + [dt.date(2026, 1, 12)], "offset": [0, 1, 0],
    ...                    "value": [1.0, 0.4, 1.0], "cohort_size": [50, 50, 40]})
    >>> html = retention_grid(df).as_raw_html()
    >>> "05 Jan 2026 (50 users)" in html and "40.0%" in html
    True
    >>> retention_grid(df.head(0))
    Weekly retention by first-use cohort: no data in this period.
    """
    import polars as pl

    from workbench.reports.tables import grid

    if _nothing(df):
        return note(f"{title}: no data in this period.")
    for col in ("cohort_start", "offset", "value"):
        if col not in df.columns:
            raise ParameterError(f"retention_grid: no column {col!r}; columns: {df.columns}")
    data = df.drop_nulls("value")
    if "cohort_size" in data.columns:
        size = data.group_by("cohort_start").agg(pl.col("cohort_size").max())
        data = data.join(size.rename({"cohort_size": "_size"}), on="cohort_start").with_columns(
            pl.format("{} ({} users)", pl.col("cohort_start").dt.strftime("%d %b %Y"), pl.col("_size")).alias("cohort"))
    else:
        data = data.with_columns(pl.col("cohort_start").dt.strftime("%d %b %Y").alias("cohort"))
    data = data.sort("cohort_start")
    order = data["cohort"].unique(maintain_order=True).to_list()
    g = grid(data.select("cohort", "offset", "value"), row="cohort", col="offset", metric="retention_rate", title=title)
    return g.tab_source_note("Cells: share of the cohort active in week N after its first week (week 0 = 100%).") if order else g


def lifecycle(df: "pl.DataFrame", *, title: str | None = None, width: int = WIDTH) -> Figure:
    """Lifecycle as stacked weekly bars: new, returning and resurrecting users above zero, dormant below zero.

    Examples
    --------
    >>> import polars as pl, datetime as dt
    >>> df = pl.DataFrame({"period_start": [dt.datetime(2026, 1, 5)] * 4,
    ...                    "status": ["new", "returning", "resurrecting", "dormant"], "value": [12.0, 30.0, 3.0, -8.0]})
    >>> lifecycle(df).alt
    'Users by lifecycle stage, weekly (dormant below zero): in the week of 05 Jan: new 12, returning 30, resurrecting 3,
     dormant 8.'
    """
    import altair as alt
    import polars as pl

    t = title or "Users by lifecycle stage, weekly (dormant below zero)"
    if _nothing(df):
        return note(f"{t}: no data in this period.")
    if "status" not in df.columns:
        raise ParameterError(f"lifecycle: expected a status column; columns: {df.columns}")
    order = ["new", "returning", "resurrecting", "dormant"]
    colours = ["#4c78a8", "#54a24b", "#f58518", "#9d9da1"]
    data = df.drop_nulls("value").with_columns(
        pl.col("status").replace_strict({s: i for i, s in enumerate(order)}, default=9).alias("_order"),
        pl.col("period_start").dt.strftime("%d %b").alias("_week"))
    cut = _partial(data)
    if not cut.is_empty():  # a week the window cuts: paler bars, "(partial)" under them, and said in the caption
        data = data.with_columns(pl.when(pl.col("partial").fill_null(False)).then(pl.col("_week") + " (partial)")
                                 .otherwise(pl.col("_week")).alias("_week"))
    paler = {"opacity": alt.condition(alt.datum.partial == True, alt.value(0.4), alt.value(1.0))} \
        if not cut.is_empty() else {}  # noqa: E712  (a Vega expression, not a Python comparison)
    weeks = data.sort("period_start")["_week"].unique(maintain_order=True).to_list()
    # one band per week, labelled by its first day (a time axis ticked every few days between weekly bars)
    chart = alt.Chart(data).mark_bar().encode(**paler).encode(
        x=alt.X("_week:O", sort=weeks, title="Week starting", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", title="Users", axis=alt.Axis(format=",.0f")),
        color=alt.Color("status:N", scale=alt.Scale(domain=order, range=colours), legend=alt.Legend(title="Stage")),
        order=alt.Order("_order:Q"),
        tooltip=[alt.Tooltip("period_start:T", title="Week"), alt.Tooltip("status:N", title="Stage"),
                 alt.Tooltip("value:Q", title="Users", format=",.0f")],
    )
    zero = alt.Chart(pl.DataFrame({"y": [0]})).mark_rule(color="#1d2433").encode(y="y:Q")
    fig = alt.layer(chart, zero).properties(title=t, width=width, height=260)
    last = data.filter(pl.col("period_start") == data["period_start"].max())
    parts = [f"{r['status']} {fmt(abs(r['value']), 'users')}" for r in last.sort("_order").iter_rows(named=True)]
    when = f"{data['period_start'].max():%d %b}" if data.height else "-"
    return Figure(fig, f"{t}: in the week of {when}: {', '.join(parts) or 'no users'}."
                       + _partial_text(data, "Paler bars"))


def funnel(df: "pl.DataFrame", *, title: str | None = None, width: int = WIDTH) -> Figure:
    """A funnel as bars per step (users), each labelled with its conversion from the step before.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"step": ["opened", "asked", "accepted"], "step_index": [0, 1, 2], "users": [200, 120, 30],
    ...                    "step_rate": [1.0, 0.6, 0.25]})
    >>> fig = funnel(df)
    >>> fig.alt
    "Funnel: users reaching each step: 15.0% of the 200 users who reached 'Opened' reached 'Accepted'."
    >>> fig.to_dict()["layer"][0]["mark"]["type"]
    'bar'
    """
    import altair as alt
    import polars as pl

    if _nothing(df):
        return note(f"{title or 'Funnel: users reaching each step'}: no data in this period.")
    for col in ("step", "users"):
        if col not in df.columns:
            raise ParameterError(f"funnel: no column {col!r}; columns: {df.columns}")
    data = df.sort("step_index" if "step_index" in df.columns else "step").with_columns(
        pl.col("step").map_elements(words, return_dtype=pl.Utf8).alias("Step"))
    rate = "step_rate" if "step_rate" in data.columns else "value"
    data = data.with_columns(pl.format("{} users · {} of the step before", pl.col("users"),
                                       pl.col(rate).map_elements(lambda v: fmt(v, "x_rate"), return_dtype=pl.Utf8)).alias("shown"))
    order = data["Step"].to_list()
    t = title or "Funnel: users reaching each step"
    base = alt.Chart(data).encode(y=alt.Y("Step:N", sort=order, title=None, axis=alt.Axis(labelLimit=240)))
    bars = base.mark_bar(color="#4c78a8").encode(x=alt.X("users:Q", title="Users", axis=alt.Axis(format=",.0f")),
                                                 tooltip=["Step:N", "users:Q", alt.Tooltip(f"{rate}:Q", format=".1%")])
    text = base.mark_text(align="left", dx=4, fontSize=11).encode(x="users:Q", text="shown:N")
    fig = alt.layer(bars, text).properties(title=t, width=width - 200, height=max(60, 30 * len(order)))
    first, last = data.row(0, named=True), data.row(-1, named=True)
    overall = last["users"] / first["users"] if first["users"] else None
    return Figure(fig, f"{t}: {fmt(overall, 'x_rate')} of the {first['users']} users who reached '{first['Step']}' "
                       f"reached '{last['Step']}'.")


def heatmap(df: "pl.DataFrame", *, x: str, y: str, title: str | None = None) -> Figure:
    """A heatmap of ``value`` over two columns, values in the metric's unit in the cells.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"feature": ["chat", "chat", "search", "search"], "model": ["a", "b", "a", "b"],
    ...                    "metric": ["error_rate"] * 4, "value": [0.1, 0.02, 0.05, 0.3]})
    >>> heatmap(df, x="model", y="feature").alt
    'Error rate by feature and model: highest search at 30.0%; lowest chat at 2.0%.'
    >>> heatmap(df, x="day", y="feature")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: heatmap: no column 'day'; columns: ['feature', 'model', 'metric', 'value']
    """
    import altair as alt
    import polars as pl

    for col in (x, y, "value"):
        if col not in df.columns:
            raise ParameterError(f"heatmap: no column {col!r}; columns: {df.columns}")
    metric = df["metric"].drop_nulls().first() if "metric" in df.columns and df.height else ""
    data = df.drop_nulls("value").with_columns(pl.col("value").map_elements(lambda v: fmt(v, metric), return_dtype=pl.Utf8).alias("shown"))
    for c in (x, y):
        if data.schema[c] in (pl.Datetime, pl.Date) or isinstance(data.schema[c], pl.Datetime):
            data = data.with_columns(pl.col(c).dt.strftime("%d %b %Y"))
    t = title or f"{label(metric)} by {label(y).lower()} and {label(x).lower()}"
    base = alt.Chart(data).encode(x=alt.X(f"{x}:O", title=label(x)), y=alt.Y(f"{y}:O", title=label(y)))
    chart = alt.layer(base.mark_rect().encode(color=alt.Color("value:Q", scale=alt.Scale(scheme="blues"),
                                                              legend=alt.Legend(format=axis_format(metric)[0], title=label(metric)))),
                      base.mark_text(fontSize=10).encode(text="shown:N")).properties(title=t)
    return Figure(chart, _finding(data.drop("period_start", strict=False), y, metric, t))


def facet_metrics(frames: Sequence["pl.DataFrame"], *, title: str | None = None) -> "alt.VConcatChart":
    """Stack one chart per frame (e.g. the scorecard's metrics) into one figure.

    Examples
    --------
    >>> import polars as pl, datetime as dt
    >>> df = pl.DataFrame({"feature": ["chat", "chat", "search", "search"],
    ...                    "period_start": [dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12)] * 2,
    ...                    "metric": ["latency_p95_ms"] * 4, "value": [800.0, 1200.0, 300.0, 350.0],
    ...                    "n": [10, 10, 20, 20]})
    >>> errors = df.with_columns(pl.lit("error_rate").alias("metric"), pl.Series("value", [0.1, 0.2, 0.05, 0.04]))
    >>> fig = facet_metrics([df, errors], title="Latency and errors")
    >>> type(fig).__name__, [c["title"] for c in fig.to_dict()["vconcat"]]
    ('VConcatChart', ['p95 latency by feature, weekly', 'Error rate by feature, weekly'])
    """
    import altair as alt

    return alt.vconcat(*[c.chart for c in (chart(f) for f in frames) if isinstance(c, Figure)]).properties(title=title or "")


def effects(df: "pl.DataFrame", *, title: str | None = None, width: int = WIDTH) -> Figure:
    """An experiment's effects: per metric the treatment's effect (relative change against control) as a point with
    its interval, a zero line, and the colour of its verdict (better, worse, no clear difference).

    Takes a decision table (``metric``, ``effect``, ``lo``, ``hi``, ``verdict``); the overall row is left out.

    >>> import polars as pl
    >>> dt_ = pl.DataFrame({"variant": ["t", "t"], "metric": ["latency_ms", "error_rate"], "effect": [-0.19, 0.03],
    ...                     "lo": [-0.25, -0.7], "hi": [-0.12, 0.3], "verdict": ["better", "no clear difference"]})
    >>> effects(dt_).alt
    'Effect of the treatment, relative to control: Latency better (-19.0%); Error rate no clear difference (+3.0%).'
    """
    import altair as alt
    import polars as pl

    for col in ("metric", "effect"):
        if col not in df.columns:
            raise ParameterError(f"effects: no column {col!r}; columns: {df.columns}")
    data = df.filter(pl.col("metric") != "overall").drop_nulls("effect").with_columns(
        pl.col("metric").map_elements(lambda m: label(m).replace(" (ms)", "").replace(" ($)", ""), return_dtype=pl.Utf8).alias("Metric"),
        pl.col("verdict").fill_null("no clear difference") if "verdict" in df.columns else pl.lit("no clear difference").alias("verdict"))
    t = title or "Effect of the treatment, relative to control"
    domain = ["better", "worse", "no clear difference", "no data"]
    base = alt.Chart(data).encode(y=alt.Y("Metric:N", title=None, sort=None, axis=alt.Axis(labelLimit=240)))
    colour = alt.Color("verdict:N", scale=alt.Scale(domain=domain, range=["#14692d", "#a50e0e", "#6b7280", "#bbbbbb"]),
                       legend=alt.Legend(title="Verdict"))
    layers = [alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#1d2433").encode(x="x:Q")]
    if "lo" in data.columns and "hi" in data.columns:
        layers.append(base.mark_rule(strokeWidth=2).encode(x=alt.X("lo:Q", axis=alt.Axis(format="+.0%", title="Change against control")),
                                                           x2="hi:Q", color=colour))
    layers.append(base.mark_point(filled=True, size=90).encode(
        x=alt.X("effect:Q", axis=alt.Axis(format="+.0%", title="Change against control")), color=colour,
        tooltip=["Metric:N", alt.Tooltip("effect:Q", format="+.1%"), "verdict:N"]))
    chart = alt.layer(*layers).properties(title=t, width=width - 160, height=max(60, 32 * data.height))
    parts = [f"{r['Metric']} {r['verdict']} ({fmt(r['effect'], 'x_rate', signed=True)})" for r in data.iter_rows(named=True)]
    return Figure(chart, f"{t}: {'; '.join(parts) or 'no effect measured'}.")
