"""One error hierarchy for the whole package, and what the command line does with each.

* :class:`WorkbenchError` is the root: every error the workbench raises on purpose is one.
* :class:`InputError` (also a ``ValueError``): bad input or environment -- a bad file, mapping, parameter or config,
  an unknown metric, a database that is missing, locked by another process or not a database. The message is one
  line naming the file, row and field, or the parameter. ``workbench`` exits 2.
* :class:`CheckFailed`: a check fired (an SLO or budget alert, a quality gate). ``workbench`` exits 1.
* A check that fires nothing but could not measure everything (``workbench slo``: an SLO with no call in its window;
  ``workbench budget``: a month whose spend is unknown for unpriced calls, or that no call of any feature reached)
  exits 3, :data:`EXIT_NO_DATA`: never 0,
  which says that everything was measured and is within bounds.
* Anything else is a bug: the command line lets it out with its traceback.

>>> issubclass(ConfigError, InputError) and issubclass(InputError, ValueError)
True
>>> str(UnknownNameError("metric", "latncy_p95_ms", ["latency_p95_ms", "latency_p50_ms"]))
"no metric 'latncy_p95_ms'; did you mean 'latency_p95_ms'? (known: latency_p50_ms, latency_p95_ms)"
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = [
    "WorkbenchError",
    "InputError",
    "ConfigError",
    "IngestError",
    "ParameterError",
    "ParameterTypeError",
    "NotFoundError",
    "MissingFileError",
    "UnknownNameError",
    "DatabaseError",
    "SchemaVersionError",
    "ResourceError",
    "ReportError",
    "CheckFailed",
    "EXIT_OK",
    "EXIT_CHECK",
    "first_line",
    "EXIT_INPUT",
    "EXIT_NO_DATA",
    "check_number",
    "check_fraction",
    "check_int",
    "check_name",
    "check_names",
    "check_bool",
]

EXIT_OK, EXIT_CHECK, EXIT_INPUT, EXIT_NO_DATA = 0, 1, 2, 3


class WorkbenchError(Exception):
    """Root of every error the workbench raises on purpose.

    Examples
    --------
    >>> try:
    ...     raise ConfigError("workbench.toml [budget.chat]: monthly_usd = -5; expected a number >= 0")
    ... except WorkbenchError as e:
    ...     print(type(e).__name__, e.exit_code)
    ConfigError 2
    >>> WorkbenchError.exit_code, CheckFailed.exit_code
    (2, 1)
    """

    exit_code = EXIT_INPUT


class InputError(ValueError, WorkbenchError):
    """Bad input or environment: the message names the file, row and field, or the parameter. Exit 2.

    Examples
    --------
    A ``ValueError`` too, so code that catches ``ValueError`` catches it:

    >>> try:
    ...     raise InputError("calls.csv row 3: ts = 'yesterday'; expected an ISO timestamp")
    ... except ValueError as e:
    ...     print(e, "-> exit", e.exit_code)
    calls.csv row 3: ts = 'yesterday'; expected an ISO timestamp -> exit 2
    """


class ConfigError(InputError):
    """``workbench.toml`` is wrong or missing: the message names the file, the key, expected and actual.

    Examples
    --------
    >>> raise ConfigError("workbench.toml [schedule]: period = 'fortnight'; expected one of week, month, day")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [schedule]: period = 'fortnight'; expected one of week, month, day
    >>> issubclass(ConfigError, InputError), ConfigError.exit_code
    (True, 2)
    """


class NotDeclaredError(ConfigError):
    """``workbench.toml`` declares nothing of what was asked for (no ``[slo.*]`` table for an SLO report): a report
    shows the message in place of the section, a script or a check gets this error.

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("# nothing declared yet")
    >>> try:
    ...     wb.budget_status(wb.connect(":memory:"), config=p)
    ... except NotDeclaredError as e:
    ...     print(str(e).split(": ", 1)[1], "-> exit", e.exit_code)
    no budgets declared (add a [budget.<feature>] table) -> exit 2
    """


class IngestError(InputError):
    """A telemetry file or mapping cannot be read: the message names the file, row and field.

    Examples
    --------
    >>> try:
    ...     raise IngestError("calls.map.toml: format: expected csv, jsonl or parquet, got 'xlsx'")
    ... except InputError as e:
    ...     print(type(e).__name__, "|", e)
    IngestError | calls.map.toml: format: expected csv, jsonl or parquet, got 'xlsx'
    """


class ParameterError(InputError):
    """A function or command was called with a bad parameter: the message names the function and the parameter.

    Examples
    --------
    >>> import datetime as dt
    >>> from workbench.reports.schedule import due_periods
    >>> due_periods("year", newest=dt.datetime(2026, 11, 22), now=dt.datetime(2026, 11, 24), published=set())
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: due_periods: kind 'year'; expected one of week, month, day
    >>> isinstance(ParameterError("x"), ValueError)
    True
    """


class ParameterTypeError(ParameterError, TypeError):
    """A parameter of the wrong type: the message names the function, the parameter, expected and actual.

    Examples
    --------
    Both a ``TypeError`` and a :class:`ParameterError`:

    >>> try:
    ...     raise ParameterTypeError("build_demo: seed must be an int, got str")
    ... except TypeError as e:
    ...     print(e, isinstance(e, ParameterError))
    build_demo: seed must be an int, got str True
    """


class TooFewError(ParameterError):
    """The selection holds too little data for the computation (fewer texts than a cross-validation needs): a report
    shows the message in place of the section, a script gets this error.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, ts, answer) values ('a', '2026-01-01', 'hello there')")
    >>> try:
    ...     wb.text_drift(db, reference=("2026-01-01", "2026-01-02"), current=("2026-01-02", "2026-01-03"))
    ... except TooFewError as e:
    ...     print(e)
    text_drift_score: reference needs at least 3 texts, got 1
    """


class NotFoundError(ParameterError, KeyError):
    """A name that does not exist where it was looked up (a column, a metric, an experiment).

    Examples
    --------
    A ``KeyError`` whose message prints as written (a plain ``KeyError`` prints the repr of its argument):

    >>> from workbench.schema import TABLES
    >>> try:
    ...     TABLES["calls"].column("latency")
    ... except KeyError as e:
    ...     print(type(e).__name__, "|", e)
    NotFoundError | table 'calls' has no column 'latency'; columns: call_id, trace_id, ...
    """

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


class MissingFileError(InputError, FileNotFoundError):
    """A file that was named does not exist: the message names it.

    Examples
    --------
    >>> try:
    ...     raise MissingFileError("run_report: no database at /srv/data/workbench.duckdb")
    ... except FileNotFoundError as e:
    ...     print(e, "-> exit", e.exit_code)
    run_report: no database at /srv/data/workbench.duckdb -> exit 2
    """


class UnknownNameError(NotFoundError):
    """An unknown metric, report, table or column, with the closest known names.

    Examples
    --------
    >>> e = UnknownNameError("report", "costs", ["scorecard", "cost", "latency"], where="workbench report")
    >>> str(e)
    "workbench report: no report 'costs'; did you mean 'cost'? (known: cost, latency, scorecard)"
    >>> e.kind, e.name, e.known, isinstance(e, KeyError)
    ('report', 'costs', ['cost', 'latency', 'scorecard'], True)
    """

    def __init__(self, kind: str, name: str, known: Iterable[str], *, where: str = ""):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(str(name), self.known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(self.known) if len(self.known) <= 60 else ", ".join(self.known[:60]) + ", ..."
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}no {kind} {name!r}{hint} (known: {listing})")


class DatabaseError(InputError):
    """The database is missing, locked by another process, or not a workbench/DuckDB database.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import workbench as wb
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "notes.duckdb"
    >>> _ = p.write_text("not a database")
    >>> wb.connect(p)
    Traceback (most recent call last):
    ...
    workbench.errors.DatabaseError: .../notes.duckdb: not a DuckDB database file
    """


class SchemaVersionError(DatabaseError, RuntimeError):
    """The database was written by a newer workbench (its schema version is ahead of this one).

    Examples
    --------
    >>> import duckdb
    >>> from workbench.db import migrate
    >>> con = duckdb.connect()
    >>> _ = con.execute("create table schema_version (version integer, applied_at timestamp)")
    >>> _ = con.execute("insert into schema_version values (999, null)")
    >>> migrate(con)
    Traceback (most recent call last):
    ...
    workbench.errors.SchemaVersionError: the database has schema version 999, newer than this workbench ...; upgrade ...
    >>> issubclass(SchemaVersionError, DatabaseError) and issubclass(SchemaVersionError, RuntimeError)
    True
    """


class ResourceError(InputError, MemoryError):
    """Work that needed more memory than the environment allows (DuckDB's ``memory_limit``): the message names the
    work, the limit and what to change. Exit 2, like any other limit of the environment.

    Examples
    --------
    >>> try:
    ...     raise ResourceError("latency_p95_ms: ran out of memory under DuckDB's memory_limit of 1.0 GiB")
    ... except MemoryError as e:
    ...     print(type(e).__name__, e.exit_code)
    ResourceError 2
    """


class ReportError(WorkbenchError):
    """A report could not be built or published (a failing cell, no data for the period); exit 2 with one line.

    Examples
    --------
    Not an :class:`InputError`: the input was read, the report could not be made of it.

    >>> e = ReportError("no data for 2026-W49; the newest data is in 2026-W47")
    >>> str(e), e.exit_code, isinstance(e, InputError)
    ('no data for 2026-W49; the newest data is in 2026-W47', 2, False)
    """


class CheckFailed(WorkbenchError):
    """A check fired: an SLO or budget alert, a quality gate. Exit 1.

    Examples
    --------
    >>> try:
    ...     raise CheckFailed("slo: chat latency firing (page)")
    ... except WorkbenchError as e:
    ...     print(e, "-> exit", e.exit_code, e.exit_code == EXIT_CHECK)
    slo: chat latency firing (page) -> exit 1 True
    """

    exit_code = EXIT_CHECK


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line error that names its cause (a database engine's
    message runs on for lines); the exception's type when it has no message.

    >>> first_line(RuntimeError("Out of Memory Error: could not allocate\\nmore detail")), first_line(KeyError())
    ('Out of Memory Error: could not allocate', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- the shared checks of a public function's parameters: a wrong type is a ParameterTypeError, a value out of its
# domain a ParameterError, each one line naming the function, the parameter, what was expected and what was got ---


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _domain(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return ""


def check_number(fn: str, name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, optional: bool = False) -> float | None:
    """``value`` as a float: a finite number (not a bool) between ``lo`` and ``hi`` (ends included unless
    ``lo_open``/``hi_open``), or None when ``optional``; else a :class:`ParameterTypeError` (not a number) or a
    :class:`ParameterError` (out of range) naming ``fn`` and ``name``.

    >>> check_number("shadow_comparison", "alpha", 0.05, lo=0, hi=1, lo_open=True, hi_open=True)
    0.05
    >>> check_number("shadow_comparison", "alpha", "x", lo=0, hi=1, lo_open=True, hi_open=True)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: shadow_comparison: alpha must be a number in (0, 1), got 'x'
    >>> check_number("burn_rate_alerts", "lookback_days", float("nan"), lo=0, lo_open=True)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: burn_rate_alerts: lookback_days must be a number > 0, got nan
    """
    if value is None and optional:
        return None
    domain = _domain(lo, hi, lo_open, hi_open)
    want = f"{name} must be a number {domain}" if domain else f"{name} must be a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{fn}: {want}, got {_got(value)}")
    v = float(value)
    if (not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo))
            or (hi is not None and (v >= hi if hi_open else v > hi))):
        raise ParameterError(f"{fn}: {want}, got {_got(value)}")
    return v


def check_fraction(fn: str, name: str, value: Any) -> float:
    """``value`` as a float strictly between 0 and 1 (a confidence level, a quantile, a significance level): the
    :func:`check_number` of every such parameter.

    >>> check_fraction("error_rate", "confidence", 0.95)
    0.95
    >>> check_fraction("error_rate", "confidence", 95)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: error_rate: confidence must be a number in (0, 1), got 95
    """
    return check_number(fn, name, value, lo=0, hi=1, lo_open=True, hi_open=True)


def check_int(fn: str, name: str, value: Any, *, lo: int | None = None, hi: int | None = None,
              optional: bool = False) -> int | None:
    """``value`` as an int (not a bool, nor a float) between ``lo`` and ``hi`` (both included), or None when
    ``optional``; else a :class:`ParameterTypeError` or a :class:`ParameterError` naming ``fn`` and ``name``.

    >>> check_int("worst_offenders", "n", 5, lo=1)
    5
    >>> check_int("worst_offenders", "max_chars", "40", lo=1)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: worst_offenders: max_chars must be an integer >= 1, got '40'
    """
    if value is None and optional:
        return None
    want = f"{name} must be an integer {_domain(lo, hi, False, False)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(f"{fn}: {want}, got {_got(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParameterError(f"{fn}: {want}, got {_got(value)}")
    return int(value)


def check_name(fn: str, name: str, value: Any, *, optional: bool = False, what: str = "a name") -> str | None:
    """``value``: a non-empty string (an evaluator, a version, a metric, an arm...), or None when ``optional``; else
    a :class:`ParameterTypeError` (not a string) or a :class:`ParameterError` (empty) naming ``fn`` and ``name``.

    >>> check_name("agreement", "reference", "human")
    'human'
    >>> check_name("agreement", "reference", 5)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: agreement: reference must be a name (a non-empty string), got 5
    """
    if value is None and optional:
        return None
    want = f"{name} must be {what} (a non-empty string)"
    if not isinstance(value, str):
        raise ParameterTypeError(f"{fn}: {want}, got {_got(value)}")
    if not value.strip():
        raise ParameterError(f"{fn}: {want}, got {_got(value)}")
    return value


def check_names(fn: str, name: str, value: Any, *, optional: bool = False, what: str = "names",
                empty: bool = False) -> tuple[str, ...] | None:
    """``value``: one name or a list (tuple, set) of non-empty names, as a tuple; None when ``optional``; an empty
    list only when ``empty``. Else a :class:`ParameterTypeError` or :class:`ParameterError` naming ``fn`` and ``name``.
    A string holding commas is a list (``"block,redact"``: how the command line's ``--param`` gives one; no column,
    metric or action name holds a comma).

    >>> check_names("error_rate", "by", "feature"), check_names("error_rate", "by", ["feature", "model"])
    (('feature',), ('feature', 'model'))
    >>> check_names("guardrail_catch_rate", "actions", "block, redact")
    ('block', 'redact')
    >>> check_names("error_rate", "by", 0, what="column names")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: error_rate: by must be a name or a list of column names, got 0
    """
    if value is None and optional:
        return None
    want = f"{name} must be a name or a list of {what}"
    if isinstance(value, str):
        items: tuple = tuple(v.strip() for v in value.split(",")) if "," in value else (value,)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = tuple(value)
    else:
        raise ParameterTypeError(f"{fn}: {want}, got {_got(value)}")
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise ParameterTypeError(f"{fn}: {want}, got {_got(value)}")
    if any(not v.strip() for v in items) or (not items and not empty):
        raise ParameterError(f"{fn}: {want}, got {_got(value)}")
    return items


def check_bool(fn: str, name: str, value: Any) -> bool:
    """``value``: True or False (a number or text is no switch: ``relative="no"`` would read as true); else a
    :class:`ParameterTypeError` naming ``fn`` and ``name``.

    >>> check_bool("experiment_summary", "cuped", False)
    False
    >>> check_bool("experiment_summary", "cuped", "no")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: experiment_summary: cuped must be True or False, got 'no'
    """
    if not isinstance(value, bool):
        raise ParameterTypeError(f"{fn}: {name} must be True or False, got {_got(value)}")
    return value
