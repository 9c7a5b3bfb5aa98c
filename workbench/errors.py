"""One error hierarchy for the whole package, and what the command line does with each.

* :class:`WorkbenchError` is the root: every error the workbench raises on purpose is one.
* :class:`InputError` (also a ``ValueError``): bad input or environment -- a bad file, mapping, parameter or config,
  an unknown metric, a database that is missing, locked by another process or not a database. The message is one
  line naming the file, row and field, or the parameter. ``workbench`` exits 2.
* :class:`CheckFailed`: a check fired (an SLO or budget alert, a quality gate). ``workbench`` exits 1.
* Anything else is a bug: the command line lets it out with its traceback.

>>> issubclass(ConfigError, InputError) and issubclass(InputError, ValueError)
True
>>> str(UnknownNameError("metric", "latncy_p95_ms", ["latency_p95_ms", "latency_p50_ms"]))
"no metric 'latncy_p95_ms'; did you mean 'latency_p95_ms'? (known: latency_p50_ms, latency_p95_ms)"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

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
]

EXIT_OK, EXIT_CHECK, EXIT_INPUT = 0, 1, 2


class WorkbenchError(Exception):
    """Root of every error the workbench raises on purpose."""

    exit_code = EXIT_INPUT


class InputError(ValueError, WorkbenchError):
    """Bad input or environment: the message names the file, row and field, or the parameter. Exit 2."""


class ConfigError(InputError):
    """``workbench.toml`` is wrong or missing: the message names the file, the key, expected and actual."""


class NotDeclaredError(ConfigError):
    """``workbench.toml`` declares nothing of what was asked for (no ``[slo.*]`` table for an SLO report): a report
    shows the message in place of the section, a script or a check gets this error."""


class IngestError(InputError):
    """A telemetry file or mapping cannot be read: the message names the file, row and field."""


class ParameterError(InputError):
    """A function or command was called with a bad parameter: the message names the function and the parameter."""


class ParameterTypeError(ParameterError, TypeError):
    """A parameter of the wrong type: the message names the function, the parameter, expected and actual."""


class TooFewError(ParameterError):
    """The selection holds too little data for the computation (fewer texts than a cross-validation needs): a report
    shows the message in place of the section, a script gets this error."""


class NotFoundError(ParameterError, KeyError):
    """A name that does not exist where it was looked up (a column, a metric, an experiment)."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


class MissingFileError(InputError, FileNotFoundError):
    """A file that was named does not exist: the message names it."""


class UnknownNameError(NotFoundError):
    """An unknown metric, report, table or column, with the closest known names."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, where: str = ""):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(str(name), self.known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(self.known) if len(self.known) <= 60 else ", ".join(self.known[:60]) + ", ..."
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}no {kind} {name!r}{hint} (known: {listing})")


class DatabaseError(InputError):
    """The database is missing, locked by another process, or not a workbench/DuckDB database."""


class SchemaVersionError(DatabaseError, RuntimeError):
    """The database was written by a newer workbench (its schema version is ahead of this one)."""


class ResourceError(InputError, MemoryError):
    """Work that needed more memory than the environment allows (DuckDB's ``memory_limit``): the message names the
    work, the limit and what to change. Exit 2, like any other limit of the environment."""


class ReportError(WorkbenchError):
    """A report could not be built or published (a failing cell, no data for the period); exit 2 with one line."""


class CheckFailed(WorkbenchError):
    """A check fired: an SLO or budget alert, a quality gate. Exit 1."""

    exit_code = EXIT_CHECK


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line error that names its cause (a database engine's
    message runs on for lines); the exception's type when it has no message.

    >>> first_line(RuntimeError("Out of Memory Error: could not allocate\\nmore detail")), first_line(KeyError())
    ('Out of Memory Error: could not allocate', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
