"""Altair charts of tidy metric frames. Charts never compute metrics; they draw the frame they are given.

Every function takes a tidy frame (group keys, ``period_start``, ``metric``, ``value``, ``n``, ``lo``, ``hi``) and
returns an ``altair.Chart``; the interval is drawn wherever ``lo``/``hi`` are present. In reports the charts render
as inline SVG (:func:`use_svg`), so a report opens offline.

>>> import polars as pl, datetime as dt
>>> df = pl.DataFrame({"feature": ["a", "a", "b"],
...                    "period_start": [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2), dt.datetime(2026, 1, 1)],
...                    "metric": ["error_rate"] * 3, "value": [0.1, 0.2, 0.05], "n": [10, 10, 20],
...                    "lo": [0.02, 0.06, 0.01], "hi": [0.4, 0.5, 0.2]})
>>> chart(df).to_dict()["layer"][0]["mark"]["type"]
'area'
>>> compare(df.filter(pl.col("period_start") == dt.datetime(2026, 1, 1))).to_dict()["layer"][0]["mark"]["type"]
'bar'
"""

from __future__ import annotations

from workbench.errors import ParameterError

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import altair as alt
    import polars as pl

_STANDARD = {"period_start", "metric", "value", "n", "lo", "hi"}


def use_svg() -> None:
    """Render charts as inline SVG (via vl-convert, locally): no JavaScript from the internet, reports open offline."""
    import altair as alt

    alt.renderers.enable("svg")


def keys_of(df: "pl.DataFrame") -> list[str]:
    """The group-key columns of a tidy frame: the columns before ``period_start``.

    >>> import polars as pl
    >>> keys_of(pl.DataFrame({"feature": [], "model": [], "period_start": [], "metric": [], "value": []}))
    ['feature', 'model']
    """
    cols = df.columns
    return cols[: cols.index("period_start")] if "period_start" in cols else [c for c in cols if c not in _STANDARD]


def _prepare(df: "pl.DataFrame", color: str | None) -> tuple["pl.DataFrame", str | None]:
    import polars as pl

    if "value" not in df.columns or "metric" not in df.columns:
        raise ParameterError(f"charts: expected a tidy metric frame with metric and value columns, got {df.columns}")
    keys = [k for k in keys_of(df) if df[k].n_unique() > 1 or k == color]
    if color is None and keys:
        if len(keys) > 1:
            df = df.with_columns(pl.concat_str([pl.col(k).cast(pl.Utf8).fill_null("∅") for k in keys], separator=" · ").alias("group"))
            color = "group"
        else:
            color = keys[0]
    if color is not None:
        df = df.with_columns(pl.col(color).cast(pl.Utf8).fill_null("∅"))
    return df.drop_nulls("value"), color


def _title(df: "pl.DataFrame", title: str | None) -> str:
    if title:
        return title
    names = df["metric"].unique(maintain_order=True).to_list() if df.height else []
    return ", ".join(str(n) for n in names if n) or "metric"


def trend(df: "pl.DataFrame", *, color: str | None = None, title: str | None = None, width: int = 560, height: int = 220) -> "alt.Chart":
    """A line over ``period_start`` per group, with its interval as a band.

    Parameters
    ----------
    df : tidy frame with a non-null ``period_start``.
    color : group column to colour by (default: the group keys that vary).
    title : chart title (default: the metric names).
    """
    import altair as alt

    data, color = _prepare(df, color)
    enc_color = alt.Color(f"{color}:N", title=color) if color else alt.value("#4c78a8")
    base = alt.Chart(data).encode(x=alt.X("period_start:T", title=None))
    band = base.mark_area(opacity=0.18).encode(y="lo:Q", y2="hi:Q", color=enc_color)
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title=_title(df, None)),
        color=enc_color,
        tooltip=[c for c in data.columns if c in {"period_start", "value", "n", "lo", "hi", color or ""}],
    )
    return alt.layer(band, line).properties(title=_title(df, title), width=width, height=height)


def compare(df: "pl.DataFrame", *, by: str | None = None, title: str | None = None, width: int = 560) -> "alt.Chart":
    """Horizontal bars per group with the interval as an error bar (one period, or ``period="all"``)."""
    import altair as alt

    data, color = _prepare(df, by)
    y = color or "metric"
    base = alt.Chart(data).encode(y=alt.Y(f"{y}:N", title=None, sort="-x"))
    bars = base.mark_bar(opacity=0.8).encode(
        x=alt.X("value:Q", title=_title(df, None)),
        tooltip=[c for c in data.columns if c in {y, "value", "n", "lo", "hi"}],
    )
    layers = [bars]
    if data["lo"].drop_nulls().len():
        layers.append(base.mark_rule(color="black").encode(x="lo:Q", x2="hi:Q"))
    return alt.layer(*layers).properties(title=_title(df, title), width=width, height=max(60, 22 * max(1, data[y].n_unique())))


def heatmap(df: "pl.DataFrame", *, x: str, y: str, title: str | None = None) -> "alt.Chart":
    """A heatmap of ``value`` over two columns, e.g. retention by ``cohort_start`` and ``offset``."""
    import altair as alt

    for col in (x, y, "value"):
        if col not in df.columns:
            raise ParameterError(f"heatmap: no column {col!r}; columns: {df.columns}")
    data = df.drop_nulls("value")
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X(f"{x}:O"),
            y=alt.Y(f"{y}:O"),
            color=alt.Color("value:Q", scale=alt.Scale(scheme="blues")),
            tooltip=[c for c in data.columns if c in {x, y, "value", "n"}],
        )
        .properties(title=_title(df, title))
    )


def chart(df: "pl.DataFrame", *, title: str | None = None, **kwargs) -> "alt.Chart":
    """Pick the chart for a tidy frame: a trend when it has several periods, else bars."""
    if "period_start" in df.columns and df["period_start"].drop_nulls().n_unique() > 1:
        return trend(df, title=title, **kwargs)
    return compare(df, title=title, **kwargs)


def facet_metrics(frames: Sequence["pl.DataFrame"], *, title: str | None = None) -> "alt.VConcatChart":
    """Stack one chart per frame (e.g. the scorecard's metrics) into one figure."""
    import altair as alt

    return alt.vconcat(*[chart(f) for f in frames]).properties(title=title or "")
