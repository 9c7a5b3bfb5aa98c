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

from workbench.config import Target, load_config, load_settings  # noqa: F401  (Target: the type targets() returns)
from workbench.errors import MissingFileError, ParameterError, ReportError, UnknownNameError  # noqa: F401  (ReportError: importable from here as before)
from workbench.errors import ParameterTypeError, WorkbenchError, check_bool, check_name
from workbench._files import PAUSE_ENV, flock, pause  # noqa: F401  (PAUSE_ENV: importable from here as before)

import contextlib
import datetime as dt
import glob
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from workbench.schema import utc_now

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

    from workbench.db import Workbench

NOTEBOOKS_ENV = "WORKBENCH_NOTEBOOKS"
# The period grammar, matched against the whole label (fullmatch: "2026-W47\n" is not a period), ASCII digits only.
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_RELATIVE = ("yesterday", "last-week", "last-month")


def notebooks_dir() -> Path:
    """Where report notebooks live: ``$WORKBENCH_NOTEBOOKS``, else ``notebooks/`` next to the package.

    Examples
    --------
    >>> folder = notebooks_dir()  # $WORKBENCH_NOTEBOOKS not set
    >>> folder.name, (folder / "scorecard.ipynb").exists()
    ('notebooks', True)
    """
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
    the ISO week containing ``latest`` (the newest data). Anything else -- a trailing newline, a slash, a week 54, a
    13th month -- raises :class:`ParameterError`: the label becomes a folder name, so nothing outside this grammar
    gets through.

    >>> resolve_period("2026-W47\\n")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: resolve_period: cannot read '2026-W47\\n'; expected 2026-W47, 2026-11, 2026-11-23, 2026-11-01..2026-11-15, last-week, last-month or yesterday
    """
    if period is None:
        if latest is None:
            raise ParameterError("resolve_period: no period given and no data to take the latest week from")
        y, w, _ = latest.isocalendar()
        return resolve_period(f"{y}-W{w:02d}")
    if not isinstance(period, str):
        raise ParameterError(f"resolve_period: period must be text such as 2026-W47, got {type(period).__name__}")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if period == "yesterday":
        return resolve_period((today - dt.timedelta(days=1)).isoformat())
    if period == "last-week":
        y, w, _ = (today - dt.timedelta(days=7)).isocalendar()
        return resolve_period(f"{y}-W{w:02d}")
    if period == "last-month":
        first = today.replace(day=1) - dt.timedelta(days=1)
        return resolve_period(f"{first.year}-{first.month:02d}")
    try:
        if m := _WEEK.fullmatch(period):
            start = dt.datetime.fromisocalendar(int(m[1]), int(m[2]), 1)
            return start, start + dt.timedelta(days=7), period
        if m := _MONTH.fullmatch(period):
            start = dt.datetime(int(m[1]), int(m[2]), 1)
            end = dt.datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
            return start, end, period
        if _DAY.fullmatch(period):
            start = dt.datetime.fromisoformat(period)
            return start, start + dt.timedelta(days=1), period
        a, sep, b = period.partition("..")
        if sep and _DAY.fullmatch(a) and _DAY.fullmatch(b):
            start, last = dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)
            if last < start:
                raise ParameterError(f"resolve_period: {period!r} ends before it starts")
            return start, last + dt.timedelta(days=1), period
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, ParameterError):
            raise
        raise ParameterError(f"resolve_period: {period!r} is not a calendar period ({exc})") from None
    raise ParameterError(
        f"resolve_period: cannot read {period!r}; expected 2026-W47, 2026-11, 2026-11-23, 2026-11-01..2026-11-15, "
        "last-week, last-month or yesterday"
    )


def setup_display(*, rows: int = 40, cols: int = 30) -> None:
    """Display settings for a report: charts as inline SVG (offline), and every polars frame shown as a formatted
    table (:func:`workbench.reports.tables.install`), never as a raw frame.

    Examples
    --------
    >>> import altair as alt, polars as pl
    >>> before = alt.renderers.active
    >>> with pl.Config():  # polars' display settings are restored on leaving the block
    ...     setup_display(rows=5)
    ...     print(pl.Config.state(if_set=True)["POLARS_FMT_MAX_ROWS"], alt.renderers.active)
    5 svg
    >>> _ = alt.renderers.enable(before)  # back to the chart renderer of before
    """
    import polars as pl

    from workbench.reports.charts import use_svg
    from workbench.reports.tables import install

    use_svg()
    install()
    pl.Config.set_tbl_cols(cols)
    pl.Config.set_tbl_rows(rows)
    pl.Config.set_fmt_str_lengths(120)


def locate(path: "str | os.PathLike | None", env: str) -> "str | os.PathLike | None":
    """A notebook's relative file (``datasets/demo.duckdb``, ``workbench.toml``) found wherever the notebook runs:
    as given when it exists, else ``$<env>``, else relative to the project root (the folder above ``notebooks/``).

    >>> locate(":memory:", "WORKBENCH_DB")
    ':memory:'
    """
    if path is None or str(path) == ":memory:" or Path(path).is_absolute() or Path(path).exists():
        return path if path is not None else os.environ.get(env)
    if os.environ.get(env):
        return os.environ[env]
    root = notebooks_dir().parent / path
    return str(root) if root.exists() else path


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
                 title: str | None = None, config: Any = None, show_raw_text: bool | None = None,
                 period: str | None = None):
        from workbench.db import Workbench, as_timestamp, connect
        from workbench.metrics.core import check_targets
        from workbench.redact import show_raw_text as _raw

        if not isinstance(db, (Workbench, str, os.PathLike)):
            raise ParameterTypeError(f"Report: db must be a Workbench or a database path, got {type(db).__name__}")
        as_timestamp(start, what="Report: start"), as_timestamp(end, what="Report: end")
        if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
            raise ParameterTypeError(f"Report: out_dir must be a folder path, got {type(out_dir).__name__}")
        if show_raw_text is not None:
            check_bool("Report", "show_raw_text", show_raw_text)
        check_name("Report", "title", title, optional=True, what="a title")
        check_name("Report", "period", period, optional=True, what="a period label (2026-W47)")
        self.db = db if isinstance(db, Workbench) else connect(locate(db, "WORKBENCH_DB"), read_only=True, config=config)
        #: the typed workbench.toml settings of the report (``config``, else the database's own)
        self.settings = self.db.settings if config is None else load_settings(config)
        check_targets(self.settings)  # a target the scorecard cannot evaluate: refused here, not read as met
        self.start, self.end = start, end
        # Text a report shows (answers, questions, claims) goes through workbench.redact unless the team allowed raw
        # text: [privacy] show_raw_text = true in workbench.toml.
        self.show_raw_text = _raw(self.settings) if show_raw_text is None else bool(show_raw_text)
        self.out_dir = Path(out_dir) if out_dir else None
        self.title = title
        self.period = period
        self.attention: list[str] = []
        self.frames: list[tuple[str, dict[str, Any], "pl.DataFrame"]] = []
        #: what the metrics and tables shown left out, and why: (name, the warning's text), once each (data_notes)
        self.notes: list[tuple[str, str]] = []

    def metric(self, name: str, **kwargs: Any) -> "pl.DataFrame":
        """Compute metric ``name`` of the suite over the report's window (unless ``start``/``end`` are given)."""
        from workbench.metrics.core import compute

        kwargs.setdefault("start", self.start)
        kwargs.setdefault("end", self.end)
        with self.noting(name, window=(kwargs["start"], kwargs["end"])):
            df = self.shown(compute(name, self.db, **kwargs))
        self.frames.append((name, {k: v for k, v in kwargs.items() if k not in ("start", "end")}, df))
        return df

    @contextlib.contextmanager
    def noting(self, name: str, *, window: tuple[Any, Any] | None = None) -> Iterator[None]:
        """Compute ``name`` in the block, keeping the warnings the workbench raises there as the report's data notes
        (:meth:`data_notes`) instead of letting them reach the page as standard error or silencing them: a row left
        out (:class:`~workbench.metrics.ExcludedRowWarning`) or a group without data
        (:class:`~workbench.metrics.UndefinedMetricWarning`) would otherwise show only as a lower ``n``. The one
        place every metric and table of a report goes through (:meth:`metric`, :meth:`call`). Each note once; a
        ``window`` other than the report's is named in it. Other libraries' warnings are dropped, as before.

        >>> import warnings
        >>> from workbench.metrics import UndefinedMetricWarning
        >>> rep = Report(":memory:", start="2026-11-16", end="2026-11-23")
        >>> for _ in range(2):
        ...     with rep.noting("error_rate"):
        ...         warnings.warn("error_rate: some groups have n = 0; their value is null", UndefinedMetricWarning)
        ...         warnings.warn("an ageing API", DeprecationWarning)  # another library's: not a data note
        >>> rep.notes
        [('error_rate', 'some groups have n = 0; their value is null')]
        """
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            yield
        package = str(Path(__file__).resolve().parents[1])
        for w in got:
            ours = w.category.__module__.startswith("workbench.") or (
                w.category is UserWarning and str(Path(w.filename).resolve()).startswith(package))
            if not ours:
                continue
            text = str(w.message).removeprefix(f"{name}: ")
            if window is not None and tuple(window) != (self.start, self.end):
                text += f"; window {window_text(*window)}"
            if (name, text) not in self.notes:
                self.notes.append((name, text))

    def data_notes(self) -> Any:
        """The report's "Data notes", as HTML: per metric or table, what it left out and why (the warnings
        :meth:`noting` kept), so that a reader sees it, not only a lower ``n``; a sentence when there is none.
        The last section of every report, after the numbers it explains.

        >>> rep = Report(":memory:", start="2026-11-16", end="2026-11-23")
        >>> rep.notes.append(("mttr_minutes", "1 incident with resolved_at before started_at is left out (i2)"))
        >>> print(rep.data_notes().data)
        <h2>Data notes</h2>
        <p>What the numbers above leave out, and why:</p>
        <ul><li><strong>Time to resolve</strong>: 1 incident with resolved_at before started_at is left out (i2)</li></ul>
        """
        from html import escape

        from IPython.display import HTML

        from workbench.reports.units import label

        if not self.notes:
            return HTML("<h2>Data notes</h2>\n<p>No data notes: no metric in this report left a row out or had a "
                        "group without data.</p>")
        from workbench.redact import redact

        # a note may name a group by its value (user_id='...'): redacted as the tables are
        shown = [(n, t if self.show_raw_text else redact(t)) for n, t in self.notes]
        items = "".join(f"<li><strong>{escape(label(n))}</strong>: {escape(t)}</li>" for n, t in shown)
        return HTML(f"<h2>Data notes</h2>\n<p>What the numbers above leave out, and why:</p>\n<ul>{items}</ul>")

    def shown(self, frame: Any) -> Any:
        """A frame as the report may show it: every text column through :func:`workbench.redact.redact` (e-mail
        addresses, phone numbers, API keys, card numbers, IBANs, national ids) unless ``show_raw_text``."""
        import polars as pl

        from workbench.redact import redact_frame

        if self.show_raw_text or not isinstance(frame, pl.DataFrame):
            return frame
        return redact_frame(frame)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the public function ``wb.<name>`` on the report's database and record the frame it returns.

        For the tables that are not metrics of the suite (SLO status, decision tables, agreement ...), so that
        ``metrics.parquet`` holds everything the report showed. A ``(frame, flag)`` result records the frame. Where
        the window holds too little data for the function (:class:`~workbench.errors.TooFewError`), a sentence
        saying so is shown instead, as where ``workbench.toml`` declares nothing for it
        (:class:`~workbench.errors.NotDeclaredError`: no ``[slo.*]`` for the SLO sections).
        """
        import polars as pl

        from workbench._exports import resolve

        from workbench.errors import NotDeclaredError, TooFewError
        from workbench.reports.tables import note

        with self.noting(name):
            try:
                out = resolve(name)(self.db, *args, **kwargs)
            except (TooFewError, NotDeclaredError) as e:  # too little data, or nothing declared: said, not a failure
                return note(f"Not computed: {e}.")
        frame = self.shown(out[0] if isinstance(out, tuple) else out)
        if isinstance(frame, pl.DataFrame):
            self.frames.append((name, kwargs, frame))
        return frame

    def features(self, limit: int | None = 8) -> list[str]:
        """The features a chart of several features shows, whatever the team named them: those with calls in the
        report's window, the most calls first (then by name), at most ``limit`` (None: all of them). When
        ``workbench.toml`` declares features (an ``[slo.*]``, ``[budget.*]`` or ``[targets.*]`` table, or
        ``[reports] feature``), those of them with calls: the team's AI features, not every service in the traces.
        ``[None]`` (the calls without a feature) when no call in the window names one.

        >>> import workbench as wb
        >>> db = wb.connect(":memory:")
        >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('a', '2026-01-01', 'faq', "
        ...     "'ok'), ('b', '2026-01-01', 'billing', 'ok'), ('c', '2026-01-01', 'billing', 'ok')")
        >>> from workbench.config import Settings
        >>> Report(db, start="2026-01-01", end="2026-01-02", config=Settings()).features()  # no workbench.toml
        ['billing', 'faq']
        """
        import ibis

        from workbench.db import scope
        from workbench.metrics.core import to_polars

        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ParameterError(f"Report.features: limit must be a positive integer or None, got {limit!r}")
        t = scope(self.db.calls, start=self.start, end=self.end)
        t = t.filter(t.feature.notnull())
        df = to_polars(t.group_by("feature").aggregate(n=t.count()).order_by([ibis.desc("n"), "feature"]))
        names = [str(f) for f in df["feature"].to_list()]
        declared = {*self.settings.section("slo"), *self.settings.budgets, *self.settings.targets}
        if self.settings.reports.feature is not None:
            declared.add(self.settings.reports.feature)
        if declared:  # (none of them with calls, a misspelt name: every feature with calls, not an empty chart)
            names = [f for f in names if f in declared] or names
        if not names:  # calls without a feature (spans that name none): the charts show those, not an error
            return [None]
        return names if limit is None else names[:limit]

    @cached_property  # found once: a notebook reads it in several sections, each look-up a query over the window
    def feature(self) -> str | None:
        """The feature the report's one-feature sections show: ``[reports] feature`` of ``workbench.toml``, else the
        feature with the most calls in the window (None when the window has none). A configured feature with no call
        in the window is kept (the team chose it), and a data note says so once, naming the features with calls:
        its sections would otherwise read "–", 0 or "no data" with nothing saying why.

        >>> import workbench as wb
        >>> from workbench.config import ReportSettings, Settings
        >>> db = wb.connect(":memory:")
        >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
        ...                       "('a', '2026-01-01', 'faq', 'ok')")
        >>> rep = Report(db, start="2026-01-01", end="2026-01-02",
        ...              config=Settings(reports=ReportSettings(feature="chat")))
        >>> rep.feature
        'chat'
        >>> rep.notes
        [('feature', "[reports] feature = 'chat' in workbench.toml had no call in this period, so its one-feature
        sections are empty; the features with calls: faq")]
        """
        chosen = self.settings.reports.feature
        if chosen is None:
            chosen = self.features(1)[0]
        else:
            busy = self.features(None)
            if chosen not in busy:
                named = ", ".join(str(f) for f in busy if f is not None) or "none"
                self.notes.append(("feature", f"[reports] feature = {chosen!r} in workbench.toml had no call in this "
                                              f"period, so its one-feature sections are empty; the features with "
                                              f"calls: {named}"))
        return chosen

    def experiments(self) -> list[str]:
        """The experiments to report: those declared in ``workbench.toml`` (``[experiments.NAME]``) and those with
        assignments to two arms or more before the window's end, by name.

        >>> import workbench as wb
        >>> db = wb.connect(":memory:")
        >>> _ = db.duckdb.execute("insert into assignments values ('search_ab', 'u1', 'control', '2026-01-01', 0.5, null),"
        ...     " ('search_ab', 'u2', 'treatment', '2026-01-01', 0.5, null), ('shadow', 'u3', 'shadow', '2026-01-01', 1, null)")
        >>> from workbench.config import Settings
        >>> Report(db, start="2026-01-01", end="2026-01-08", config=Settings()).experiments()  # no workbench.toml
        ['search_ab']
        """
        from workbench.db import scope
        from workbench.metrics.core import to_polars

        t = scope(self.db.assignments, start=None, end=self.end)
        t = t.filter(t.experiment.notnull())
        # two arms at least: a shadow run recorded as assignments (one "shadow" arm) is no A/B test to read out
        arms = t.group_by("experiment").aggregate(arms=t.variant.nunique())
        names = {str(x) for x in to_polars(arms.filter(arms.arms >= 2))["experiment"].to_list()}
        names |= {str(k) for k in self.settings.section("experiments")}
        return sorted(names)

    def experiment_readouts(self) -> Any:
        """What the experiments report shows of each experiment (:meth:`experiments`): a heading, the decision as a
        chart and a table, the sample-ratio check and the Bayesian summary; a sentence instead where an experiment
        has no assignment yet, or when there is no experiment at all."""
        from workbench.reports.charts import effects
        from workbench.reports.tables import Stack, heading, note

        names = self.experiments()
        if not names:
            return note("No experiment: declare one as [experiments.NAME] in workbench.toml (the feature it tests) "
                        "and load its assignments (the assignments table) to see its readout here.")
        out: list[Any] = []
        for name in names:
            out.append(heading(f"{name}: decision"))
            try:
                decision = self.call("decision_table", name, end=self.end)
            except ParameterError as e:  # declared, but no unit assigned yet (or its arms' weights disagree)
                out.append(note(f"No readout: {e}."))
                continue
            if not hasattr(decision, "columns"):  # a sentence in place of the table (too little data)
                out.append(decision)
                continue
            out += [effects(decision), decision, self.call("srm", name, end=self.end),
                    self.call("experiment_summary", name, end=self.end, method="bayesian")]
        return Stack(out)

    def whatif(self) -> Any:
        """The cost report's what-if: the window's calls of :attr:`feature` re-priced on ``[reports] whatif_model`` of
        ``workbench.toml`` (same tokens), or a sentence saying why there is none (no model named, or no price for
        it)."""
        from workbench.reports.tables import note

        model, feature = self.settings.reports.whatif_model, self.feature
        if model is None:
            return note("No what-if: name a model as whatif_model under [reports] in workbench.toml to see this "
                        "traffic re-priced on it.")
        if feature is None:
            return note("No call in this period.")
        try:
            return self.metric("whatif_cost_usd", by=["feature", "model"], period="all", where={"feature": feature},
                               model=model)
        except ParameterError as e:  # no price for the model
            return note(f"No what-if on {model}: {e}.")

    def suggestions(self, kinds: Iterable[str] = ("accept", "edit", "copy")) -> Any:
        """The adoption report's suggestion acceptance (``suggestion_acceptance_rate`` with ``kinds``) of the features
        that record kept suggestions: those whose calls got feedback of one of ``kinds`` before the window's end. Its
        denominator is every call, so a feature that records none (a chat assistant rated by thumbs) read "0.0%
        accepted"; such a feature is left out, and a sentence says so when no feature records one. A feature that
        records suggestions and had none kept in the window still reads 0%."""
        from workbench.db import scope
        from workbench.metrics.core import to_polars
        from workbench.reports.tables import note

        kinds = tuple(kinds)
        c = scope(self.db.calls, start=None, end=self.end)
        f = self.db.feedback.filter(self.db.feedback.kind.isin(list(kinds)))
        c = c.filter(c.call_id.isin(f.call_id), c.feature.notnull())
        features = sorted(str(x) for x in to_polars(c.select("feature").distinct())["feature"].to_list())
        if not features:
            return note(f"No suggestion recorded: no call has feedback of kind {', '.join(kinds)} (a kept "
                        f"suggestion) up to this period's end.")
        return self.metric("suggestion_acceptance_rate", by=["feature"], period="all", where={"feature": features},
                           kinds=kinds)

    @property
    def environment(self) -> str | None:
        """``[reports] environment`` of ``workbench.toml``: the environment the by-model sections keep (None: all)."""
        return self.settings.reports.environment

    @property
    def last_instant(self) -> dt.datetime | None:
        """The last instant of the window (``end`` is excluded: the end minus one microsecond): the point in time to
        evaluate "as of the period" (``budget_status(at=rep.last_instant)``). At ``end`` a monthly report (or a
        week or day ending on the 1st) would read the next month's budget, $0 and ok. None for an unbounded window.

        >>> Report(":memory:", start="2026-11-01", end="2026-12-01").last_instant
        datetime.datetime(2026, 11, 30, 23, 59, 59, 999999)
        """
        from workbench.metrics.core import as_timestamp

        e = as_timestamp(self.end)
        return None if e is None else e - dt.timedelta(microseconds=1)

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
        sorted by the size of the relative change (largest first). A group of either window is a row (one with no
        data now has a null value and ``n`` 0)."""
        import polars as pl

        by = list(by)
        rows = []
        for name in names:
            now = self.metric(name, by=by, period="all", **kwargs)
            before = self.previous(name, by=by, period="all", **kwargs)
            before = before.select(*by, "metric", pl.col("value").alias("previous"), pl.col("n").alias("previous_n"))
            # a window with no data (a team's first week before, a quiet week now) gives keys of no type (null):
            # cast them to the other window's
            now = now.cast({k: before.schema[k] for k in by if now.schema[k] == pl.Null})
            before = before.cast({k: now.schema[k] for k in by if before.schema[k] != now.schema[k]})
            # full: a group of the window before with no row now (a feature with no call this week) stays, its
            # value null and n 0: an empty group never vanishes
            j = now.select(*by, "metric", "value", "n").join(before, on=[*by, "metric"], how="full", coalesce=True,
                                                             nulls_equal=True)
            rows.append(j)
        df = pl.concat(rows, how="diagonal_relaxed")
        return df.with_columns(
            pl.col("n").fill_null(0),
            (pl.col("value") - pl.col("previous")).alias("change"),
            ((pl.col("value") - pl.col("previous")) / pl.col("previous").abs()).alias("relative_change"),
        ).sort(pl.col("relative_change").abs(), descending=True, nulls_last=True)

    def header(self) -> Any:
        """The report's heading: title, window, database (by file name) and when it ran, as HTML.

        Every value is HTML-escaped (a database file named ``<img src=x onerror=...>.duckdb`` shows as text, never as
        markup), and the database shows by file name, not by the machine's absolute path (``params.json`` keeps the
        full path for lineage).

        >>> rep = Report(":memory:", start="2026-11-16", end="2026-11-23", title="<b>T</b>")
        >>> rep.header().data.splitlines()[0]
        '<h1>&lt;b&gt;T&lt;/b&gt;</h1>'
        """
        from IPython.display import HTML

        title = " · ".join(x for x in (self.title or "Report", self.period) if x)
        return HTML(header_html(title, self.start, self.end, self.db.path))

    def needs_attention(self, card: "pl.DataFrame | None" = None, *, config: Any = None, **kwargs: Any) -> Any:
        """What needs attention in this period, as a few sentences (:func:`workbench.reports.attention.attention`);
        the sentences are kept for the reports index."""
        from workbench.reports.attention import attention

        out = attention(self, card, config=config, **kwargs)
        self.attention = [s for sev, s in out.items if sev != "ok"]
        return out

    def data_summary(self) -> "pl.DataFrame":
        """On which data: per table, the rows in the window and the files those rows were loaded from (their ingest
        runs: each file with the rows of it in the window), or what wrote them when no file did (the detector's or a
        judge's scores, by evaluator and version). Evals are dated as the hallucination metrics date them: by their
        answer's time, never the scoring time. A file name is shown whole where two files of the same name differ.

        >>> import workbench as wb
        >>> db = wb.connect(":memory:")
        >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, ingest_run_id) values "
        ...     "('a', '2026-01-01', 'chat', 'ok', 'r1'), ('b', '2025-06-01', 'chat', 'ok', 'r2')")
        >>> _ = db.duckdb.execute("insert into ingest_runs (run_id, source_path, content_hash, target_table) values "
        ...     "('r1', '/d/jan.csv', 'h1', 'calls'), ('r2', '/d/june.csv', 'h2', 'calls')")
        >>> Report(db, start="2026-01-01", end="2026-01-02").data_summary().filter(table="calls").rows()
        [('calls', 1, ['jan.csv (1 row)'])]
        """
        import polars as pl

        from workbench.metrics.core import scope, to_polars
        from workbench.metrics.hallucination import answer_time
        from workbench.schema import TABLES

        runs = to_polars(self.db.ingest_runs.select("run_id", "source_path"))
        paths = dict(zip(runs["run_id"].to_list(), runs["source_path"].to_list()))
        # a file's name, or its whole path where two different paths share the name (day1/calls.csv, day2/calls.csv)
        names: dict[str, list[str]] = {}
        for path in set(paths.values()):
            names.setdefault(Path(str(path)).name, []).append(str(path))
        shown = {p: (Path(p).name if len(names[Path(p).name]) == 1 else p) for ps in names.values() for p in ps}
        out = []
        for name, t in TABLES.items():
            if t.time is None or not t.lineage or name == "prices":  # prices are in force across windows
                continue
            tbl = self.db.table(name)
            if name == "evals":  # dated by the answer (its call, else the answer), as hallucination_rate dates them
                a, c = self.db.answers, self.db.calls
                a = a.select(_a_call=a.call_id, _a_ts=a.ts)
                c = c.select(_c_call=c.call_id, _c_ts=c.ts)
                j = tbl.left_join(a, tbl.call_id == a._a_call)
                j = j.left_join(c, j.call_id == c._c_call)
                tbl = j.mutate(_t=answer_time(j._c_ts, j._a_ts))  # undated with neither: never the scoring time
                tbl = scope(tbl, time="_t", start=self.start, end=self.end)
                keys = [tbl.ingest_run_id, tbl.evaluator, tbl.evaluator_version]
            else:
                tbl = scope(tbl, time=t.time, start=self.start, end=self.end)
                keys = [tbl.ingest_run_id]
            g = to_polars(tbl.group_by(keys).aggregate(n=tbl.count()))
            sources = []
            for r in g.sort("n", descending=True).iter_rows(named=True):
                n = f"{r['n']:,} row{'s' if r['n'] != 1 else ''}"
                run = r["ingest_run_id"]
                if run is not None and run in paths:
                    sources.append(f"{shown[str(paths[run])]} ({n})")
                elif r.get("evaluator") is not None:
                    sources.append(f"scored by {r['evaluator']} {r['evaluator_version'] or ''}".rstrip() + f" ({n})")
                else:
                    sources.append(f"written without a file ({n})")
            out.append({"table": name, "rows": int(g["n"].sum()) if g.height else 0, "files": sources})
        df = pl.DataFrame(out, schema={"table": pl.Utf8, "rows": pl.Int64, "files": pl.List(pl.Utf8)})
        self.frames.append(("data_summary", {}, df))
        return df

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
        (self.out_dir / "attention.json").write_text(json.dumps(self.attention), encoding="utf-8")
        (pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()).write_parquet(out)
        return out


def window_text(start: Any, end: Any) -> str:
    """A report window as a reader says it: whole days as first and last day, other bounds to the minute.

    ``end`` is exclusive, so a window ending at midnight shows the day before as its last day.

    >>> window_text("2026-11-16", "2026-11-23"), window_text("2026-11-16", "2026-11-17")
    ('2026-11-16 to 2026-11-22 (7 days, UTC)', '2026-11-16 (1 day, UTC)')
    >>> window_text("2026-11-16T06:30:00", None), window_text(None, None)
    ('from 2026-11-16 06:30 UTC', 'all data')

    A bound that is not a date is shown as given, so nothing a caller passed is hidden:

    >>> window_text("2026-11-16", "next monday")
    '2026-11-16 to next monday (end excluded)'
    """
    def when(v: Any) -> dt.datetime | None:
        if v is None or v == "":
            return None
        return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))

    try:
        s, e = when(start), when(end)
    except (TypeError, ValueError):
        return f"{'' if start is None else start} to {'' if end is None else end} (end excluded)".strip()
    if s is None and e is None:
        return "all data"
    midnight = all(x is None or x.time() == dt.time(0) for x in (s, e))
    if s is not None and e is not None and midnight:
        last = (e - dt.timedelta(days=1)).date()
        days = (e - s).days
        span = f"{s.date()}" if days == 1 else f"{s.date()} to {last}"
        return f"{span} ({days} day{'s' if days != 1 else ''}, UTC)"
    fmt_ = (lambda x: f"{x.date()}") if midnight else (lambda x: x.strftime("%Y-%m-%d %H:%M"))
    if s is None:
        return f"until {fmt_(e)} UTC (end excluded)"
    if e is None:
        return f"from {fmt_(s)} UTC"
    return f"{fmt_(s)} to {fmt_(e)} UTC (end excluded)"


def header_html(title: str, start: Any, end: Any, db_path: str | None, *, now: dt.datetime | None = None) -> str:
    """The escaped HTML of a report heading (see :meth:`Report.header`).

    >>> print(header_html("Cost", "2026-11-16", "2026-11-23", "/data/x/<img src=x onerror=alert(1)>.duckdb",
    ...                   now=dt.datetime(2026, 11, 24, 6, 0)))
    <h1>Cost</h1>
    <p><strong>Window:</strong> 2026-11-16 to 2026-11-22 (7 days, UTC)<br>
    <strong>Database:</strong> <code>&lt;img src=x onerror=alert(1)&gt;.duckdb</code><br>
    <strong>Run:</strong> 2026-11-24 06:00 UTC</p>
    """
    from html import escape

    now = now or dt.datetime.now(dt.timezone.utc)
    window = window_text(start, end)
    name = Path(str(db_path)).name if db_path and db_path != ":memory:" else str(db_path or "in memory")
    return (f"<h1>{escape(str(title))}</h1>\n<p><strong>Window:</strong> {escape(window)}<br>\n"
            f"<strong>Database:</strong> <code>{escape(name)}</code><br>\n"
            f"<strong>Run:</strong> {escape(now.strftime('%Y-%m-%d %H:%M UTC'))}</p>")


def _latest_ts(db_path: str) -> dt.datetime | None:
    from workbench.db import connect

    def newest(t: Any) -> dt.datetime | None:
        # the newest data up to the clock: a row dated in the future (or 9999-12-31) must not pick the default period
        v = t.filter(t.ts <= now).ts.max().execute()
        # an empty table gives None or NaT (pandas' missing time), which is not a time to take a week from
        return None if v is None or v != v or str(v) == "NaT" else v

    now = utc_now()
    with connect(db_path, read_only=True) as db:
        return newest(db.calls) or newest(db.events)


def _definitions(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Metric -> its contract from the registry (unit, direction, source table...), where ``definition`` is the one
    that produced its numbers: the docstring's "Definition:" paragraph when it has one (the metrics whose definition a
    reader could take otherwise), else its first line; ``function`` says where it lives.

    >>> _definitions(["wau_count"])["wau_count"]["definition"].startswith('Definition: at ``period="week"``')
    True
    """
    import re as _re

    from workbench.metrics.core import contracts

    c = contracts()
    out = {}
    for n in names:
        if n not in c:
            continue
        doc = c[n].fn.__doc__ or ""
        m = _re.search(r"^\s*(Definition[^\n]*(?:\n[ \t]+\S[^\n]*)*)", doc, flags=_re.M)
        out[n] = {**c[n].as_dict(), "definition": " ".join(m.group(1).split()) if m else c[n].definition,
                  "function": f"{c[n].fn.__module__}.{n}"}
    return out


def _lineage(db_path: str) -> list[dict[str, Any]]:
    """Every ingest run of the database: its id (the rows' ``ingest_run_id``), file, sha256, format, table, rows
    inserted, when, the bytes it read and, for a run that read only what was appended to a file, the run it extended
    (``base_run_id``; the last two are absent from a database of schema version 2)."""
    from workbench.db import connect

    with connect(db_path, read_only=True) as db:
        runs = db.ingest_runs
        cols = ["run_id", "source_path", "content_hash", "format", "target_table", "rows_inserted", "finished_at"]
        df = runs.select(*cols, *(c for c in ("bytes", "base_run_id") if c in runs.columns)).to_polars()
    return df.with_columns(df["finished_at"].cast(str)).to_dicts()


_PAGE_CSS = ("body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2433}"
             ".jp-Notebook{max-width:1100px;margin:0 auto}.jp-RenderedHTMLCommon h2{margin-top:1.6em}"
             ".jp-RenderedHTMLCommon table{margin-left:0}figure svg{max-width:100%;height:auto}")


def _to_html(nb_path: Path, html_path: Path) -> None:
    """Render the executed notebook as the report page: code hidden, charts inline, no network; the tab titled by
    report and period, the navigation bar on top (filled in by :func:`workbench.reports.index.build_index`)."""
    import html as _html

    import nbformat
    from nbconvert import HTMLExporter

    from workbench.reports.index import insert_nav, page_title

    nb = nbformat.read(nb_path, as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    # Offline: drop every script or stylesheet the template would load from the internet (require.js, MathJax).
    body = re.sub(r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>", "", body)
    body = re.sub(r"<link[^>]+href=\"https?://[^\"]*\"[^>]*>", "", body)
    body = re.sub(r"<script[^>]*>(?:(?!</script>).)*https?://(?:(?!</script>).)*</script>", "", body, flags=re.S)
    body = re.sub(r"@import url\([\"']?https?://[^)]*\);?", "", body)
    pm_meta = nb.metadata.get("papermill", {})
    period = str(pm_meta.get("parameters", {}).get("period") or html_path.parent.name)
    name = Path(str(pm_meta.get("input_path") or nb_path)).stem
    if name == "report":
        name = html_path.parent.parent.name
    title = _html.escape(page_title(name, period))
    body = re.sub(r"<title>.*?</title>", lambda _: f"<title>{title}</title>", body, count=1, flags=re.S)
    body = body.replace("</head>", f"<style>{_PAGE_CSS}</style></head>", 1)
    body = insert_nav(body, "<!--wb-nav--><!--/wb-nav-->")
    html_path.write_text(body, encoding="utf-8")


_REPORT_FILES = ("report.html", "report.ipynb", "metrics.parquet", "params.json")


def report_name(name: Any) -> str:
    """``name`` when it is one of the report notebooks (:func:`available`), else :class:`UnknownNameError` (exit 2).

    A report name is a notebook's stem, never a path: ``../../elsewhere/evil`` is refused, not run.

    >>> report_name("scorecard")
    'scorecard'
    >>> report_name("../scorecard")
    Traceback (most recent call last):
    ...
    workbench.errors.UnknownNameError: run_report: no report '../scorecard'; did you mean 'scorecard'? (known: adoption, cost, experiments, hallucination, latency, scorecard)
    """
    known = available()
    if not isinstance(name, str) or name not in known:
        raise UnknownNameError("report", name, known, where="run_report")
    return name


def _new_run_id() -> str:
    import secrets

    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where it is not available."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    import errno

    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without it
        return False
    raise OSError(err, os.strerror(err), str(a))


def _fsync_tree(folder: Path) -> None:
    """Flush the build's files and the folder itself, so what is published after a power cut is whole."""
    for f in folder.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _archive_name(run: Path) -> str:
    """``<executed_at>-<run id>`` of a published run, from its params.json (its folder's time when that is unreadable)."""
    import secrets

    try:
        meta = json.loads((run / "params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    stamp = re.sub(r"[^0-9T]", "", str(meta.get("executed_at") or ""))[:15]
    if not stamp:
        stamp = dt.datetime.fromtimestamp(run.stat().st_mtime, dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    rid = str(meta.get("run_id") or "")
    rid = rid if re.fullmatch(r"[0-9A-Za-z-]{1,64}", rid) else "legacy-" + secrets.token_hex(4)
    return f"{stamp}-{rid}"


def _unique(folder: Path, name: str) -> Path:
    dest, i = folder / name, 2
    while dest.exists():  # archives are never overwritten
        dest, i = folder / f"{name}-{i}", i + 1
    return dest


def _retire(old: Path, target: Path, *, force: bool) -> None:
    """After the swap: ``old`` holds the previously published run. Its archive joins the new run's, and the run itself
    becomes ``archive/<executed_at>-<run id>`` (deleted instead with ``force``)."""
    if (old / "archive").is_dir():
        if not (target / "archive").exists():
            os.rename(old / "archive", target / "archive")
        else:
            for entry in sorted((old / "archive").iterdir()):
                os.rename(entry, _unique(target / "archive", entry.name))
            (old / "archive").rmdir()
    if force or not any((old / n).exists() for n in _REPORT_FILES):
        shutil.rmtree(old)
        return
    (target / "archive").mkdir(exist_ok=True)
    os.rename(old, _unique(target / "archive", _archive_name(old)))


def _publish(build: Path, target: Path, *, force: bool) -> None:
    """Put ``build`` in place of ``target`` with one atomic rename: readers see the previous run or the new one. Not
    while an index is being built (:func:`workbench.reports.index.build_index`): it would write the page it read
    before over the new one."""
    from workbench.reports.index import INDEX_LOCK

    with flock(target.parent.parent / INDEX_LOCK):
        if not target.exists():
            os.rename(build, target)
            return
        if not _exchange(build, target):
            # No atomic exchange on this system: move the previous run aside first. A crash between the two renames
            # leaves it whole under its '~previous' name, and the next run of the period puts it back.
            aside = build.with_name(build.name.replace("~build", "~previous"))
            os.rename(target, aside)
            os.rename(build, target)
            build = aside
        pause("archive")
        _retire(build, target, force=force)


def _recover(parent: Path, label: str) -> None:
    """Clean up after runs of this period that died (kill -9, power cut): builds that never finished are deleted; a
    previous run that was swapped out but not yet archived is archived (or put back when nothing replaced it).

    A run is dead when nobody holds its ``~lock`` file. Call with the period's publish lock held.
    """
    prefix = f".{label}~"
    for entry in sorted(parent.iterdir()):
        if not entry.name.startswith(prefix) or entry.name.endswith("~lock"):
            continue
        rid, _, kind = entry.name[len(prefix):].partition("~")
        lock = parent / f"{prefix}{rid}~lock"
        with flock(lock, wait=False) as dead:
            if not dead:
                continue  # a live run
            try:
                own = (entry / ".run-id").read_text(encoding="utf-8").strip() == rid
            except OSError:
                own = False
            target = parent / label
            if own or not any((entry / n).exists() for n in (*_REPORT_FILES, "archive")):
                shutil.rmtree(entry, ignore_errors=True)  # this run's own build, never published: debris
            elif target.exists():
                _retire(entry, target, force=False)  # a previous run swapped out before it was archived
            else:
                os.rename(entry, target)  # moved aside and nothing replaced it: put it back
        lock.unlink(missing_ok=True)
    for lock in parent.glob(f"{glob.escape(prefix)}*~lock"):
        with flock(lock, wait=False) as dead:
            if dead and not any(p.exists() for p in (lock.with_name(lock.name[:-4] + "build"),
                                                     lock.with_name(lock.name[:-4] + "previous"))):
                lock.unlink(missing_ok=True)


def check_config(config: "str | os.PathLike | None" = None) -> None:
    """Read every section of ``workbench.toml`` a report reads (settings, budgets, targets and whether the scorecard
    can evaluate them, ``[reports]``, SLOs), so a
    mistake in it is a :class:`~workbench.errors.ConfigError` naming the file, the table and the key before a report
    runs, not a failed cell halfway through one (``[slo.chat] latency_p95_ms`` stopped the latency report at its
    fifteenth cell).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[slo.chat]\\nlatency_p95_ms = 800\\n")
    >>> check_config(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [slo.chat]: unknown key 'latency_p95_ms'; did you mean 'latency_ms'? ...
    """
    from workbench.metrics.core import check_targets
    from workbench.metrics.slo import load_slos

    check_targets(load_settings(config))  # a target no report can evaluate
    load_slos(config)


def require_data(db_path: str | os.PathLike, start: dt.datetime, end: dt.datetime, label: str) -> None:
    """Refuse a period without data: raise :class:`ReportError` (exit 2) naming the newest period that has data.

    A period that starts after the clock (UTC) is refused whatever the tables hold (a client with a wrong clock, a
    row written without ingest's bound on timestamps). Calls and events both count.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import workbench as wb
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "workbench.duckdb"
    >>> with wb.connect(path) as db:
    ...     _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...                           "('a', '2026-11-18 09:00', 'chat', 'ok')")
    >>> require_data(path, dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 23), "2026-W47")  # has data: None
    >>> require_data(path, dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 30), "2026-W48")
    Traceback (most recent call last):
    ...
    workbench.errors.ReportError: no data for 2026-W48; the newest data is in 2026-W47
    >>> require_data(path, dt.datetime(2099, 1, 5), dt.datetime(2099, 1, 12), "2099-W02")
    Traceback (most recent call last):
    ...
    workbench.errors.ReportError: no data for 2099-W02: it starts in the future (the clock says ... UTC)
    """
    from workbench.db import connect

    now = utc_now()
    if start > now:
        raise ReportError(f"no data for {label}: it starts in the future (the clock says {now:%Y-%m-%d %H:%M} UTC)")

    with connect(db_path, read_only=True) as db:
        n = 0
        newest = None
        for t in (db.calls, db.events):
            n += int(t.filter((t.ts >= start) & (t.ts < end)).count().execute())
            m = t.ts.max().execute()
            if m is not None and m == m:  # NaT check
                m = m.to_pydatetime() if hasattr(m, "to_pydatetime") else m
                newest = m if newest is None or m > newest else newest
    if n:
        return
    if newest is None:
        raise ReportError(f"no data for {label}; the database {Path(db_path).name} holds no calls or events")
    raise ReportError(f"no data for {label}; the newest data is in {same_kind(label, newest)}")


def same_kind(label: str, when: dt.datetime) -> str:
    """The period of the same kind as ``label`` (week, month, day) that contains ``when``.

    >>> same_kind("2026-W48", dt.datetime(2026, 11, 22, 23)), same_kind("2026-12", dt.datetime(2026, 11, 2))
    ('2026-W47', '2026-11')
    >>> same_kind("2026-11-24", dt.datetime(2026, 11, 22, 23))  # a day (or a range of days): the day
    '2026-11-22'
    """
    # whole labels: a day's label starts like a month's (2026-11-24 was told "the newest data is in 2026-11")
    if _WEEK.fullmatch(label):
        y, w, _ = when.isocalendar()
        return f"{y}-W{w:02d}"
    if _MONTH.fullmatch(label):
        return f"{when.year}-{when.month:02d}"
    return when.date().isoformat()


def _literal_path(p: Path) -> str:
    """A path for papermill, which formats its paths with the notebook's parameters (``str.format``): braces doubled.

    >>> _literal_path(Path("/srv/reports {x}/a.ipynb"))
    '/srv/reports {{x}}/a.ipynb'
    """
    return str(p).replace("{", "{{").replace("}", "}}")


def run_report(name: str, *, db: str | os.PathLike | None = None, period: str | None = None, out: str | os.PathLike = "reports",
               force: bool = False, progress: bool = False, config: str | os.PathLike | None = None,
               cell_timeout: float | None = None) -> Path:
    """Execute ``notebooks/<name>.ipynb`` for a period and publish it atomically; return the published folder.

    The run is built in a hidden folder next to the target (``reports/<name>/.<period>~<run id>~build/``) and
    published with one atomic rename (an exchange with the previous run on Linux): until then the previous report
    stays in place and whole, whatever happens -- a failing cell, a kill -9, a power cut. The previous run is then
    archived as ``archive/<its executed_at>-<its run id>/`` (unique, never overwritten); ``force=True`` deletes it
    instead, after the new one is in place. Builds of runs that died are removed by the next run of the period.

    Parameters
    ----------
    name : str
        A report notebook (``workbench report list``); anything else raises :class:`UnknownNameError`.
    db : path, optional
        An existing database (default ``$WORKBENCH_DB``, else ``datasets/workbench.duckdb``); opened read-only.
    period : str, optional
        See :func:`resolve_period`; default the ISO week of the newest data.
    out : path
        The reports folder.
    force : bool
        Replace the published run of the period instead of archiving it.
    progress : bool
        papermill's progress bar.
    config : path, optional
        ``workbench.toml`` passed to the notebook (default ``$WORKBENCH_CONFIG``, else ``./workbench.toml`` where
        one exists); its absolute path is recorded in ``params.json``.
    cell_timeout : float, optional
        Seconds a cell may run; past it the run stops and fails (default: no limit; scheduled runs use
        ``[schedule] cell_timeout``, 1800).

    Returns
    -------
    Path
        ``out/<name>/<period>``.

    Raises
    ------
    ReportError
        A cell failed, or the notebook could not be executed or converted; the message names the notebook and the
        cell, and the partly executed notebook is kept under ``out/<name>/.failed/`` for inspection.

    Examples
    --------
    >>> run_report("../../elsewhere/evil", db="x.duckdb")
    Traceback (most recent call last):
    ...
    workbench.errors.UnknownNameError: run_report: no report '../../elsewhere/evil' (known: adoption, cost, experiments, hallucination, latency, scorecard)
    """
    import papermill as pm

    from workbench._version import __version__
    from workbench.db import DEFAULT_DB

    name = report_name(name)
    nb = notebooks_dir() / f"{name}.ipynb"
    db_path = str(Path(db or os.environ.get("WORKBENCH_DB") or DEFAULT_DB).resolve())
    if not Path(db_path).exists():
        raise MissingFileError(f"run_report: no database at {db_path}")
    from workbench.db import connect

    with connect(db_path, read_only=True):  # empty, not a database, locked past the wait: one line, before a kernel starts
        pass
    start, end, label = resolve_period(period, latest=_latest_ts(db_path) if period is None else None)
    require_data(db_path, start, end, label)  # no data, no report: nothing is built, published or archived
    check_config(config)  # a broken workbench.toml (a key, a target no report can evaluate): one line, before a kernel
    # The file read here (named, $WORKBENCH_CONFIG or ./workbench.toml) is the one the notebook reads, by its absolute
    # path, whatever the kernel's folder; params.json names it (null only when there is none).
    found = load_config(config).path
    parent = Path(out) / name
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder goes (`--out report.html`), no permission: one line, before a kernel
        raise ReportError(f"{out}: cannot make the reports folder {parent}: {exc.strerror or exc}") from None
    target = parent / label
    for p in (parent, target):  # a link would have the report written, swapped or archived wherever it points
        if p.is_symlink():
            raise ReportError(f"run_report: {p} is a symbolic link (to {os.readlink(p)}); reports are published "
                              f"only into folders under {out}: remove the link")
    run_id = _new_run_id()
    build = parent / f".{label}~{run_id}~build"
    publish_lock = parent / f".{label}~publish~lock"
    with flock(parent / f".{label}~{run_id}~lock"):  # held while this run lives: its build is not debris
        with flock(publish_lock):
            _recover(parent, label)
        build.mkdir()
        (build / ".run-id").write_text(run_id, encoding="utf-8")  # tells this run's build from a swapped-out run
        params = {"db": db_path, "start": start.isoformat(), "end": end.isoformat(), "period": label,
                  "out_dir": str(build.resolve()), "config": str(found.resolve()) if found else None}
        executed = build / "report.ipynb"
        started = utc_now()
        pause("execute")
        try:
            # The kernel talks to papermill over loopback only; its notice about unencrypted TCP is noise in a run.
            # papermill fills {name} in both paths from the parameters: a brace of a folder's name is written doubled
            pm.execute_notebook(_literal_path(nb), _literal_path(executed), parameters=params, kernel_name="python3",
                                progress_bar=progress,
                                cwd=str(Path.cwd()), log_output=False, extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                execution_timeout=cell_timeout)
        except Exception as exc:  # a failing cell, a dead kernel, a timeout: the published report is untouched
            kept = _keep_failed(parent, label, run_id, executed)
            shutil.rmtree(build, ignore_errors=True)
            where = f"; partial notebook kept at {kept}" if kept else ""
            if isinstance(exc, TimeoutError) and cell_timeout is not None:  # nbclient's CellTimeoutError
                raise ReportError(f"report {name!r} ({nb}): a cell ran longer than {cell_timeout:g} s and was stopped "
                                  f"(the limit: [schedule] cell_timeout, or cell_timeout=){where}") from None
            if isinstance(exc, pm.PapermillExecutionError):
                raise ReportError(f"report {name!r} ({nb}): cell {exc.cell_index} failed: {exc.ename}: "
                                  f"{' '.join(str(exc.evalue).split())[:300]}{where}") from None
            first = " ".join(str(exc).split())[:300]
            raise ReportError(f"report {name!r} ({nb}): could not be executed: {type(exc).__name__}: {first}{where}") from None
        pause("html")
        try:
            _to_html(executed, build / "report.html")
        except Exception as exc:
            shutil.rmtree(build, ignore_errors=True)
            raise ReportError(f"report {name!r}: HTML conversion failed: {type(exc).__name__}: {exc}") from None
        import polars as pl

        metrics_file = (build / "metrics.parquet").absolute()
        saved = pl.read_parquet(metrics_file, glob=False) if metrics_file.exists() else pl.DataFrame()
        shown = saved["suite_metric"].unique().to_list() if "suite_metric" in saved.columns else []
        meta = {
            "report": name, "period": label, "start": params["start"], "end": params["end"], "db": db_path,
            "run_id": run_id, "executed_at": started.isoformat(timespec="seconds"), "workbench_version": __version__,
            "notebook": str(nb), "parameters": {**params, "out_dir": str(target.resolve())},
            "definitions": _definitions(sorted(shown)), "data_lineage": _lineage(db_path),
        }
        try:
            (build / "params.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
            _fsync_tree(build)
        except OSError as exc:  # a full disk: the build (the whole report) is not left on it; the published run stays
            shutil.rmtree(build, ignore_errors=True)
            raise ReportError(f"report {name!r}: cannot write {build / 'params.json'}: {exc.strerror or exc}") from None
        pause("publish")
        with flock(publish_lock):
            _publish(build, target, force=force)
    (parent / f".{label}~{run_id}~lock").unlink(missing_ok=True)
    from workbench.reports.index import build_index

    try:
        build_index(out)  # reports/index.html and every report's navigation bar
    except WorkbenchError as exc:  # a full disk: the report is published, and that is said with what was not written
        raise ReportError(f"report {name!r}: published {target}, but the reports index was not updated: {exc}") from None
    return target


def _keep_failed(parent: Path, label: str, run_id: str, executed: Path) -> Path | None:
    """Move a failed run's partial notebook to ``<name>/.failed/<period>~<run id>.ipynb`` (None when there is none)."""
    if not executed.exists():
        return None
    folder = parent / ".failed"
    folder.mkdir(exist_ok=True)
    dest = _unique(folder, f"{label}~{run_id}.ipynb")
    os.replace(executed, dest)
    return dest


def run_all(db: str | os.PathLike | None = None, *, out: str | os.PathLike = "reports", period: str | None = None,
            names: Iterable[str] | None = None, force: bool = False, progress: bool | None = None,
            cell_timeout: float | None = None, config: str | os.PathLike | None = None) -> list[Path]:
    """Publish every report (or ``names``) for one period; return their folders.

    Every report is tried: one that fails does not keep the others from being published. The failures are then
    raised together, as one :class:`~workbench.errors.ReportError` naming each (its ``published`` attribute lists
    the folders that were published). ``progress``: a bar over the reports on standard error (None: only when it is
    a terminal). ``cell_timeout`` and ``config`` as in :func:`run_report`.

    Examples
    --------
    Each report name is checked before any notebook runs (executing one takes seconds, so none runs here):

    >>> run_all(names=["scorecard", "weekly"])
    Traceback (most recent call last):
    ...
    workbench.errors.UnknownNameError: run_report: no report 'weekly' (known: adoption, cost, experiments, ...)
    >>> import pathlib, tempfile
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> run_all(db=tmp / "none.duckdb", out=tmp / "reports", period="2026-W47", names=["scorecard"])
    Traceback (most recent call last):
    ...
    workbench.errors.MissingFileError: run_report: no database at .../none.duckdb
    """
    from workbench.eval.run import progress_bar

    todo = [report_name(n) for n in (available() if names is None else names)]
    published: list[Path] = []
    failed: list[str] = []
    with progress_bar(len(todo), progress, "reports", unit="report") as bar:
        for name in todo:
            bar.set_postfix_str(name)
            try:
                published.append(run_report(name, db=db, period=period, out=out, force=force,
                                            cell_timeout=cell_timeout, config=config))
            except ReportError as exc:  # a failing notebook: the next report still runs (any other error -- the
                failed.append(f"{name}: {' '.join(str(exc).split())}")  # database, period, config -- stops them all)
            bar.update(1)
    if failed:
        err = ReportError(f"{len(failed)} of {len(todo)} reports failed (the others are published): "
                          + "; ".join(failed))
        err.published = published
        raise err
    return published


def targets(config: Any = None) -> dict[str, dict[str, "Target"]]:
    """Scorecard targets per feature from ``workbench.toml``: ``[targets.<feature>]`` with ``<metric>_max = limit``
    (lower is better) or ``<metric>_min = limit`` (higher is better).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[targets.chat]\\nlatency_p95_ms_max = 2000\\nwau_count_min = 50\\n")
    >>> {f: {m: (t.bound, t.limit) for m, t in ms.items()} for f, ms in targets(p).items()}
    {'chat': {'latency_p95_ms': ('max', 2000.0), 'wau_count': ('min', 50.0)}}
    """
    from workbench.metrics.core import check_targets

    settings = load_settings(config)
    check_targets(settings)
    return {f: dict(ms) for f, ms in settings.targets.items()}


def target_lines(metric: str, config: Any = None) -> dict[str, float]:
    """Per feature, the target of ``metric`` in ``workbench.toml`` (for the dashed target lines of a chart).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[targets.chat]\\nlatency_p95_ms_max = 2000\\n")
    >>> target_lines("latency_p95_ms", p)
    {'chat': 2000.0}
    """
    return {f: t.limit for f, ms in targets(config).items() for m, t in ms.items() if m == metric}


def scorecard(report: Report, metrics: Iterable[str], *, config: Any = None, by: str = "feature") -> "pl.DataFrame":
    """Per ``by`` group and metric: value now, previous window, change, target and whether it is met.

    ``metrics`` are the headline metrics, shown for every group; each metric a target of ``workbench.toml`` names is
    added for the groups that target it, computed the same way (:meth:`Report.changes`, the suite's metric). Every
    declared target has a row: ``status`` is ``met`` / ``missed`` (:meth:`workbench.config.Target.met`), ``no data``
    when the group has no value in the window (a feature with no call this week: it stopped, or its logging did), and
    ``no target`` on a headline metric with none. When targets are declared, only the groups that have targets are
    kept. Rows are sorted so that what changed most comes first within each group.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, model, status) select 'c' || i, "
    ...     "timestamp '2026-01-01' + to_hours(i * 6), 'chat', if(i % 2 = 0, 'small', 'large'), "
    ...     "if(i >= 28 and i % 4 = 0, 'error', 'ok') from range(56) t(i)")  # week 2: a quarter of the calls fail
    >>> cfg = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = cfg.write_text("[targets.chat]\\nerror_rate_max = 0.05\\n")
    >>> rep = Report(db, start="2026-01-08", end="2026-01-15", config=cfg)
    >>> card = scorecard(rep, ["error_rate"])
    >>> card.select("feature", "metric", "value", "previous", "target", "status").rows()
    [('chat', 'error_rate', 0.25, 0.0, 0.05, 'missed')]
    """
    import polars as pl

    tg = targets(config if config is not None else report.settings)
    headline = list(dict.fromkeys(metrics))
    extra = sorted({m for ms in tg.values() for m in ms} - set(headline))
    df = report.changes([*headline, *extra], by=[by]).with_columns(pl.col(by).cast(pl.Utf8))
    rows = [{by: f, "metric": m, "bound": t.bound, "target": t.limit} for f, ms in tg.items() for m, t in ms.items()]
    schema = {by: pl.Utf8, "metric": pl.Utf8, "bound": pl.Utf8, "target": pl.Float64}
    t = pl.DataFrame(rows, schema=schema)
    # full: a target whose group has no row in the window (no call at all) is a row of its own, never dropped
    df = df.join(t, on=[by, "metric"], how="full", coalesce=True, nulls_equal=True)
    df = df.filter(pl.col("metric").is_in(headline) | pl.col("target").is_not_null())
    if tg:  # the scorecard is about the features that have targets; other groups (non-AI features) are left out
        df = df.filter(pl.col(by).is_in(list(tg)))
    df = df.with_columns(pl.col("n").fill_null(0))
    words = {True: "met", False: "missed", None: "no data"}
    status = [("no target" if (target := tg.get(f, {}).get(m)) is None else words[target.met(v)])
              for f, m, v in zip(df[by].to_list(), df["metric"].to_list(), df["value"].to_list())]
    df = df.with_columns(pl.Series("status", status, dtype=pl.Utf8))
    df = df.sort([by, pl.col("relative_change").abs()], descending=[False, True], nulls_last=True)
    report.frames.append(("scorecard", {"by": by}, df))
    return df


# Where the scorecard's metrics are explained: metric -> (report, section anchor of its heading)
DETAIL_SECTIONS = {
    "hallucination_rate": ("hallucination", "Hallucination-by-feature"),
    "latency_p95_ms": ("latency", "Latency-by-model"),
    "cost_per_success_usd": ("cost", "Cost-per-successful-task"),
    "wau_count": ("adoption", "Active-users"),
}


def scorecard_view(report: Report, card: "pl.DataFrame", *, weeks: int = 8, by: str = "feature") -> Any:
    """The scorecard as a formatted table: per feature (missed first) each metric now, before, change, target and
    status, with a sparkline of its last ``weeks`` weeks; each metric links to the section that explains it.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, model, status) select 'c' || i, "
    ...     "timestamp '2026-01-01' + to_hours(i * 6), 'chat', if(i % 2 = 0, 'small', 'large'), "
    ...     "if(i >= 28 and i % 4 = 0, 'error', 'ok') from range(56) t(i)")  # week 2: a quarter of the calls fail
    >>> cfg = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = cfg.write_text("[targets.chat]\\nerror_rate_max = 0.05\\n")
    >>> rep = Report(db, start="2026-01-08", end="2026-01-15", config=cfg)
    >>> html = scorecard_view(rep, scorecard(rep, ["error_rate"])).as_raw_html()
    >>> "1 of 1 targets missed" in html and "25.0%" in html and "<svg" in html  # the trend: an inline sparkline
    True
    """
    import polars as pl

    from workbench.reports.tables import sparkline, table
    from workbench.reports.units import label

    if card.is_empty():
        return table(card, title="Scorecard")
    trends: dict[tuple[str, str], list[float | None]] = {}
    for m in card["metric"].unique(maintain_order=True).to_list():
        try:
            t = report.metric(m, by=[by], period="week", start=report.since(weeks=weeks))
        except Exception:  # noqa: BLE001  a metric without a weekly series simply has no sparkline
            continue
        for (f,), part in t.sort("period_start").group_by([by], maintain_order=True):
            trends[(str(f), m)] = part["value"].to_list()
    spark = [sparkline(trends.get((str(f), m), []), title=f"{label(m)}, last {weeks} weeks")
             for f, m in zip(card[by].to_list(), card["metric"].to_list())]
    view = card.select(by, "metric", "value", "previous", "change", "status").with_columns(
        pl.Series("target", target_texts(card), dtype=pl.Utf8), pl.Series("trend", spark, dtype=pl.Utf8))
    view = view.select(by, "metric", "value", "target", "status", "previous", "change", "trend")
    links = {}
    if report.period:
        for m, (rep_name, anchor) in DETAIL_SECTIONS.items():
            links[m] = f"../../{rep_name}/{report.period}/report.html#{anchor}"
    return table(view, title="Scorecard", subtitle=f"{target_count(card)}; trend: last {weeks} weeks",
                 links=links, raw=("trend",), group=by)


def target_texts(card: "pl.DataFrame") -> list[str | None]:
    """Each scorecard row's target in words, in its metric's unit (None where it has none).

    >>> import polars as pl
    >>> target_texts(pl.DataFrame({"metric": ["hallucination_rate", "wau_count", "error_rate"],
    ...                            "bound": ["max", "min", None], "target": [0.12, 600.0, None]}))
    ['≤ 12.0%', '≥ 600', None]
    """
    from workbench.reports.units import fmt

    return [None if t is None else f"{'≤' if b == 'max' else '≥'} {fmt(t, m)}"
            for t, b, m in zip(card["target"].to_list(), card["bound"].to_list(), card["metric"].to_list())]


def scorecard_text(card: "pl.DataFrame", *, by: str = "feature") -> str:
    """The scorecard (:func:`scorecard`) as plain text for a terminal or a log: each value in its unit, the target
    and status, then the previous period's value and the change (percentage points for a rate); features with a
    missed target first, as in the report.

    >>> import polars as pl
    >>> card = pl.DataFrame({"feature": ["support_assistant"], "metric": ["hallucination_rate"], "value": [0.2405],
    ...                      "previous": [0.1659], "change": [0.0746], "bound": ["max"], "target": [0.12],
    ...                      "status": ["missed"]})
    >>> print(scorecard_text(card))
    Feature            Metric              Value   Target   Status  Previous  Change
    Support assistant  Hallucination rate  24.1%   ≤ 12.0%  missed  16.6%     +7.5 pp
    """
    from workbench.reports.tables import by_status
    from workbench.reports.units import fmt, label, words

    card = by_status(card, group=by)  # as the report orders it: features with a missed target first
    rows = [[label(by), "Metric", "Value", "Target", "Status", "Previous", "Change"]]
    for r, target in zip(card.iter_rows(named=True), target_texts(card)):
        m = r["metric"]
        rows.append([words(r[by]), label(m), fmt(r["value"], m), target or "–", r["status"], fmt(r["previous"], m),
                     fmt(r["change"], m, signed=True, change=True)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def target_count(card: "pl.DataFrame") -> str:
    """How the scorecard's targets stand, in words: missed of declared (rows without a target are not targets), and
    those without data.

    >>> import polars as pl
    >>> target_count(pl.DataFrame({"status": ["met", "missed", "no target", "no data"]}))
    '1 of 3 targets missed, 1 without data'
    """
    status = card["status"].to_list() if "status" in card.columns else []
    declared = sum(s != "no target" for s in status)
    if not declared:
        return "no target declared"
    nodata = status.count("no data")
    return f"{status.count('missed')} of {declared} targets missed" + (f", {nodata} without data" if nodata else "")
