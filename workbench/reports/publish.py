"""Reports: a report is an executed notebook.

``run_report(name, db=..., period=...)`` executes ``notebooks/<name>.ipynb`` with papermill, passing the database,
the period and the output folder as parameters, and publishes::

    reports/<name>/<period>/report.html      self-contained: code hidden, charts as inline SVG, no network needed
    reports/<name>/<period>/report.ipynb     the executed notebook (parameters in its metadata, as papermill records)
    reports/<name>/<period>/metrics.parquet  every metric frame the report showed, in the tidy shape
    reports/<name>/<period>/params.json      what was measured, on which data (ingest lineage), with which definitions

Nothing is overwritten silently: when the period was published before, the earlier run is moved to
``reports/<name>/<period>/archive/<its run time>/`` first (``force=True`` replaces it instead).

Inside a notebook, :class:`Report` is the one object a cell talks to: ``rep.metric(NAME, ...)`` computes a metric of
the suite over the report's window and records it for ``metrics.parquet``.

>>> resolve_period("2026-W47")
(datetime.datetime(2026, 11, 16, 0, 0), datetime.datetime(2026, 11, 23, 0, 0), '2026-W47')
>>> resolve_period("2026-11")[1]
datetime.datetime(2026, 12, 1, 0, 0)
>>> resolve_period("2026-11-20..2026-11-22")[2]
'2026-11-20..2026-11-22'
"""

from __future__ import annotations

from workbench.errors import MissingFileError, ParameterError, ReportError# noqa: F401  (importable from here as before)

import datetime as dt
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

    from workbench.db import Workbench

NOTEBOOKS_ENV = "WORKBENCH_NOTEBOOKS"
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def notebooks_dir() -> Path:
    """Where report notebooks live: ``$WORKBENCH_NOTEBOOKS``, else ``notebooks/`` next to the package."""
    return Path(os.environ.get(NOTEBOOKS_ENV) or Path(__file__).resolve().parents[2] / "notebooks")


def available() -> list[str]:
    """Names of the report notebooks.

    >>> "scorecard" in available()
    True
    """
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb") if not p.stem.startswith("_"))


def resolve_period(period: str | None, *, latest: dt.datetime | None = None, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime, str]:
    """Turn a period label into ``(start, end, label)`` with ``end`` exclusive.

    Accepted: ``2026-W47`` (ISO week), ``2026-11`` (month), ``2026-11-23`` (day), ``START..END`` (days, END
    inclusive), ``last-week`` / ``last-month`` / ``yesterday`` (relative to ``today``, for cron), and ``None``:
    the ISO week containing ``latest`` (the newest data).
    """
    if period is None:
        if latest is None:
            raise ParameterError("resolve_period: no period given and no data to take the latest week from")
        y, w, _ = latest.isocalendar()
        return resolve_period(f"{y}-W{w:02d}")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if period == "yesterday":
        return resolve_period((today - dt.timedelta(days=1)).isoformat())
    if period == "last-week":
        y, w, _ = (today - dt.timedelta(days=7)).isocalendar()
        return resolve_period(f"{y}-W{w:02d}")
    if period == "last-month":
        first = today.replace(day=1) - dt.timedelta(days=1)
        return resolve_period(f"{first.year}-{first.month:02d}")
    if m := _WEEK.match(period):
        start = dt.datetime.fromisocalendar(int(m[1]), int(m[2]), 1)
        return start, start + dt.timedelta(days=7), period
    if m := _MONTH.match(period):
        start = dt.datetime(int(m[1]), int(m[2]), 1)
        end = dt.datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
        return start, end, period
    if _DAY.match(period):
        start = dt.datetime.fromisoformat(period)
        return start, start + dt.timedelta(days=1), period
    if ".." in period:
        a, b = period.split("..", 1)
        if _DAY.match(a) and _DAY.match(b):
            start, last = dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)
            if last < start:
                raise ParameterError(f"resolve_period: {period!r} ends before it starts")
            return start, last + dt.timedelta(days=1), period
    raise ParameterError(
        f"resolve_period: cannot read {period!r}; expected 2026-W47, 2026-11, 2026-11-23, 2026-11-01..2026-11-15, "
        "last-week, last-month or yesterday"
    )


def setup_display(*, rows: int = 40, cols: int = 30) -> None:
    """Display settings for a report: charts as inline SVG (offline) and tables wide enough to show every column."""
    import polars as pl

    from workbench.reports.charts import use_svg

    use_svg()
    pl.Config.set_tbl_cols(cols)
    pl.Config.set_tbl_rows(rows)
    pl.Config.set_fmt_str_lengths(120)


class Report:
    """The report's window and the frames it has shown; what a notebook cell talks to.

    Parameters
    ----------
    db : Workbench or path
    start, end : the window (``end`` exclusive); ISO strings or datetimes.
    out_dir : where :meth:`save` writes ``metrics.parquet`` (None: nothing is written).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...     "('a', '2026-01-01 10:00', 'chat', 'ok'), ('b', '2026-01-01 11:00', 'chat', 'error')")
    >>> rep = Report(db, start="2026-01-01", end="2026-01-02")
    >>> rep.metric("error_rate", by=["feature"], period="all").select("feature", "value", "n").rows()
    [('chat', 0.5, 2)]
    >>> len(rep.frames)
    1
    """

    def __init__(self, db: "Workbench | str", *, start: Any = None, end: Any = None, out_dir: str | os.PathLike | None = None,
                 title: str | None = None):
        from workbench.db import Workbench, connect

        self.db = db if isinstance(db, Workbench) else connect(db, read_only=True)
        self.start, self.end = start, end
        self.out_dir = Path(out_dir) if out_dir else None
        self.title = title
        self.frames: list[tuple[str, dict[str, Any], "pl.DataFrame"]] = []

    def metric(self, name: str, **kwargs: Any) -> "pl.DataFrame":
        """Compute metric ``name`` of the suite over the report's window (unless ``start``/``end`` are given)."""
        from workbench.metrics.core import compute

        kwargs.setdefault("start", self.start)
        kwargs.setdefault("end", self.end)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty group is visible in the frame (n = 0), not as a warning in a report
            df = compute(name, self.db, **kwargs)
        self.frames.append((name, {k: v for k, v in kwargs.items() if k not in ("start", "end")}, df))
        return df

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the public function ``wb.<name>`` on the report's database and record the frame it returns.

        For the tables that are not metrics of the suite (SLO status, decision tables, agreement ...), so that
        ``metrics.parquet`` holds everything the report showed. A ``(frame, flag)`` result records the frame.
        """
        import polars as pl

        from workbench._exports import resolve

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = resolve(name)(self.db, *args, **kwargs)
        frame = out[0] if isinstance(out, tuple) else out
        if isinstance(frame, pl.DataFrame):
            self.frames.append((name, kwargs, frame))
        return frame

    def since(self, *, days: int = 0, weeks: int = 0) -> str:
        """The instant ``days``/``weeks`` before the end of the window, as ISO text: a longer look-back for one cell.

        >>> Report(":memory:", start="2026-11-16", end="2026-11-23").since(weeks=4)
        '2026-10-26T00:00:00'
        """
        from workbench.metrics.core import as_timestamp

        e = as_timestamp(self.end)
        if e is None:
            raise ParameterError("Report.since: the report has no end")
        return (e - dt.timedelta(days=days, weeks=weeks)).isoformat()

    def previous(self, name: str, **kwargs: Any) -> "pl.DataFrame":
        """The same metric over the window of equal length just before this one."""
        from workbench.metrics.core import as_timestamp

        s, e = as_timestamp(self.start), as_timestamp(self.end)
        if s is None or e is None:
            raise ParameterError("Report.previous: the report has no bounded window")
        return self.metric(name, start=s - (e - s), end=s, **kwargs)

    def changes(self, names: Iterable[str], *, by: Iterable[str] = ("feature",), **kwargs: Any) -> "pl.DataFrame":
        """What changed since the previous window: each metric now and before, absolute and relative change,
        sorted by the size of the relative change (largest first)."""
        import polars as pl

        by = list(by)
        rows = []
        for name in names:
            now = self.metric(name, by=by, period="all", **kwargs)
            before = self.previous(name, by=by, period="all", **kwargs)
            j = now.select(*by, "metric", "value", "n").join(
                before.select(*by, "metric", pl.col("value").alias("previous"), pl.col("n").alias("previous_n")),
                on=[*by, "metric"], how="left", nulls_equal=True,
            )
            rows.append(j)
        df = pl.concat(rows, how="diagonal_relaxed")
        return df.with_columns(
            (pl.col("value") - pl.col("previous")).alias("change"),
            ((pl.col("value") - pl.col("previous")) / pl.col("previous").abs()).alias("relative_change"),
        ).sort(pl.col("relative_change").abs(), descending=True, nulls_last=True)

    def header(self) -> Any:
        """The report's heading as Markdown: title, window, and when it ran."""
        from IPython.display import Markdown

        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        window = f"{self.start} to {self.end} (end excluded)" if self.start or self.end else "all data"
        return Markdown(f"# {self.title or 'Report'}\n\n**Window:** {window}  \n**Database:** `{self.db.path}`  \n**Run:** {now}")

    def data_summary(self) -> "pl.DataFrame":
        """On which data: rows per table in the window and the files they were loaded from (ingest lineage)."""
        import polars as pl

        from workbench.metrics.core import scope
        from workbench.schema import TABLES

        rows = []
        for name, t in TABLES.items():
            if t.time is None or not t.lineage or name == "prices":  # prices are in force across windows
                continue
            tbl = scope(self.db.table(name), time=t.time, start=self.start, end=self.end)
            rows.append({"table": name, "rows": int(tbl.count().execute())})
        runs = self.db.ingest_runs.select("source_path", "content_hash", "target_table", "rows_inserted", "finished_at").to_polars()
        return pl.DataFrame(rows).join(
            runs.group_by("target_table").agg(pl.col("source_path").alias("sources")), left_on="table", right_on="target_table", how="left"
        )

    def save(self) -> Path | None:
        """Write every frame shown so far to ``metrics.parquet`` in the output folder (one tidy table)."""
        import polars as pl

        if self.out_dir is None:
            return None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        parts = [
            f.with_columns(pl.lit(name).alias("suite_metric"), pl.lit(json.dumps(opts, default=str, sort_keys=True)).alias("options"))
            for name, opts, f in self.frames
        ]
        out = self.out_dir / "metrics.parquet"
        (pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()).write_parquet(out)
        return out


def _latest_ts(db_path: str) -> dt.datetime | None:
    from workbench.db import connect

    with connect(db_path, read_only=True) as db:
        return db.calls.ts.max().execute() or db.events.ts.max().execute() or None


def _definitions(names: Iterable[str]) -> dict[str, str]:
    """Metric -> the definition that produced its numbers: the docstring's "Definition:" paragraph when it has one
    (the metrics whose definition a reader could take otherwise), else its first line; with the function's name.

    >>> _definitions(["wau_count"])["wau_count"].startswith('Definition: at ``period="week"``')
    True
    """
    import re as _re

    from workbench.metrics.core import suite

    s = suite()
    out = {}
    for n in names:
        if n not in s:
            continue
        doc = s[n].__doc__ or ""
        m = _re.search(r"^\s*(Definition[^\n]*(?:\n[ \t]+\S[^\n]*)*)", doc, flags=_re.M)
        text = " ".join(m.group(1).split()) if m else ((doc.strip().splitlines() or [""])[0])
        out[n] = text + f" ({s[n].__module__}.{s[n].__name__})"
    return out


def _lineage(db_path: str) -> list[dict[str, Any]]:
    from workbench.db import connect

    with connect(db_path, read_only=True) as db:
        df = db.ingest_runs.select("source_path", "content_hash", "format", "target_table", "rows_inserted", "finished_at").to_polars()
    return df.with_columns(df["finished_at"].cast(str)).to_dicts()


def _to_html(nb_path: Path, html_path: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    # Offline: drop every script or stylesheet the template would load from the internet (require.js, MathJax).
    body = re.sub(r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>", "", body)
    body = re.sub(r"<link[^>]+href=\"https?://[^\"]*\"[^>]*>", "", body)
    body = re.sub(r"<script[^>]*>(?:(?!</script>).)*https?://(?:(?!</script>).)*</script>", "", body, flags=re.S)
    html_path.write_text(body, encoding="utf-8")


def run_report(name: str, *, db: str | os.PathLike | None = None, period: str | None = None, out: str | os.PathLike = "reports",
               force: bool = False, progress: bool = False, config: str | os.PathLike | None = None) -> Path:
    """Execute ``notebooks/<name>.ipynb`` for a period and publish it; return the folder.

    Raises :class:`ReportError` naming the notebook and the failing cell when a cell fails; the partly executed
    notebook is kept as ``report.ipynb`` for inspection, and the archived earlier run is left untouched.
    """
    import papermill as pm

    from workbench._version import __version__
    from workbench.db import DEFAULT_DB

    nb = notebooks_dir() / f"{name}.ipynb"
    if not nb.exists():
        raise MissingFileError(f"run_report: no report notebook {nb}; available: {', '.join(available())}")
    db_path = str(Path(db or os.environ.get("WORKBENCH_DB") or DEFAULT_DB).resolve())
    if not Path(db_path).exists():
        raise MissingFileError(f"run_report: no database at {db_path}")
    start, end, label = resolve_period(period, latest=_latest_ts(db_path) if period is None else None)
    target = Path(out) / name / label
    if target.exists() and any(target.glob("report.*")):
        if force:
            for f in target.iterdir():
                if f.name != "archive":
                    shutil.rmtree(f) if f.is_dir() else f.unlink()
        else:
            previous = json.loads((target / "params.json").read_text()) if (target / "params.json").exists() else {}
            stamp = str(previous.get("executed_at", "unknown")).replace(":", "").replace(" ", "T")
            arch = target / "archive" / stamp
            arch.mkdir(parents=True, exist_ok=True)
            for f in list(target.iterdir()):
                if f.name != "archive":
                    shutil.move(str(f), arch / f.name)
    target.mkdir(parents=True, exist_ok=True)
    params = {"db": db_path, "start": start.isoformat(), "end": end.isoformat(), "period": label, "out_dir": str(target.resolve()),
              "config": str(Path(config).resolve()) if config else None}
    executed = target / "report.ipynb"
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    try:
        # The kernel talks to papermill over loopback only; its notice about unencrypted TCP is noise in a report run.
        pm.execute_notebook(str(nb), str(executed), parameters=params, kernel_name="python3", progress_bar=progress,
                            cwd=str(Path.cwd()), log_output=False, extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except pm.PapermillExecutionError as exc:
        raise ReportError(f"report {name!r} ({nb}): cell {exc.cell_index} failed: {exc.ename}: {exc.evalue}; "
                          f"partial notebook kept at {executed}") from None
    _to_html(executed, target / "report.html")
    import polars as pl

    saved = pl.read_parquet(target / "metrics.parquet") if (target / "metrics.parquet").exists() else pl.DataFrame()
    shown = saved["suite_metric"].unique().to_list() if "suite_metric" in saved.columns else []
    meta = {
        "report": name, "period": label, "start": params["start"], "end": params["end"], "db": db_path,
        "executed_at": started.isoformat(timespec="seconds"), "workbench_version": __version__, "notebook": str(nb),
        "parameters": params, "definitions": _definitions(sorted(shown)), "data_lineage": _lineage(db_path),
    }
    (target / "params.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return target


def run_all(db: str | os.PathLike | None = None, *, out: str | os.PathLike = "reports", period: str | None = None,
            names: Iterable[str] | None = None, force: bool = False) -> list[Path]:
    """Publish every report (or ``names``) for one period; return their folders."""
    return [run_report(n, db=db, period=period, out=out, force=force) for n in (names or available())]


def targets(config: Any = None) -> dict[str, dict[str, tuple[str, float]]]:
    """Scorecard targets per feature from ``workbench.toml``: ``[targets.<feature>]`` with ``<metric>_max = limit``
    (lower is better) or ``<metric>_min = limit`` (higher is better).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[targets.chat]\\nlatency_p95_ms_max = 2000\\nwau_count_min = 50\\n")
    >>> targets(p)
    {'chat': {'latency_p95_ms': ('max', 2000.0), 'wau_count': ('min', 50.0)}}
    """
    from workbench.config import ConfigError, load_config

    cfg = load_config(config)
    out: dict[str, dict[str, tuple[str, float]]] = {}
    for feature, table in cfg.section("targets").items():
        where = f"targets.{feature}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{cfg.where(where)}: expected a table of <metric>_max / <metric>_min = limit")
        for key in table:
            metric, _, bound = key.rpartition("_")
            if bound not in ("max", "min") or not metric:
                raise ConfigError(f"{cfg.where(where)}: {key!r} must end in _max or _min, e.g. latency_p95_ms_max")
            out.setdefault(feature, {})[metric] = (bound, cfg.number(table, key, where))
    return out


def scorecard(report: Report, metrics: Iterable[str], *, config: Any = None, by: str = "feature") -> "pl.DataFrame":
    """Per ``by`` group and metric: value now, previous window, change, target and whether it is met.

    ``status`` is ``met`` / ``missed`` against the target of ``workbench.toml`` (``no target`` when none is set),
    and the rows are sorted so that what changed most comes first within each group. When targets are declared,
    only the groups that have targets are kept.
    """
    import polars as pl

    df = report.changes(metrics, by=[by])
    tg = targets(config)
    rows = [{by: f, "metric": m, "bound": b, "target": v} for f, ms in tg.items() for m, (b, v) in ms.items()]
    schema = {by: pl.Utf8, "metric": pl.Utf8, "bound": pl.Utf8, "target": pl.Float64}
    t = pl.DataFrame(rows, schema=schema)
    df = df.with_columns(pl.col(by).cast(pl.Utf8)).join(t, on=[by, "metric"], how="left")
    status = (
        pl.when(pl.col("target").is_null() | pl.col("value").is_null()).then(pl.lit("no target"))
        .when((pl.col("bound") == "max") & (pl.col("value") <= pl.col("target"))).then(pl.lit("met"))
        .when((pl.col("bound") == "min") & (pl.col("value") >= pl.col("target"))).then(pl.lit("met"))
        .otherwise(pl.lit("missed"))
    )
    df = df.with_columns(status.alias("status"))
    if tg:  # the scorecard is about the features that have targets; other groups (non-AI features) are left out
        df = df.filter(pl.col(by).is_in(list(tg)))
    return df.sort([by, pl.col("relative_change").abs()], descending=[False, True], nulls_last=True)
