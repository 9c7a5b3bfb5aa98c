"""The connection: a DuckDB file (embedded default) or any Ibis backend, with the schema migrated on connect.

>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> db.calls.count().execute()
0
>>> sorted(db.tables)[:3]
['answers', 'assignments', 'calls']
>>> db.sql("select 1 + 1 as two")["two"].to_list()
[2]
>>> db.sql("select json_object('a', 1) as j")["j"].to_list()
['{"a":1}']
"""

from __future__ import annotations

from workbench.errors import (DatabaseError, SchemaVersionError, MissingFileError, NotFoundError, ParameterError,
                             ParameterTypeError, check_bool)

import datetime as _dt
import math
import os
import re
import sys
import time
from pathlib import Path
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workbench.config import Settings, check_config_source, load_settings
from workbench.schema import SCHEMA_VERSION, TABLES, utc_now

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import ibis.expr.types as ir
    import ibis
    import polars as pl

DEFAULT_DB = "datasets/workbench.duckdb"


def _migration_v1(run) -> None:
    for table in TABLES.values():
        run(table.ddl())


def _migration_v2(run) -> None:
    # ingest_runs.mapping_hash: a re-load of a mapped file is known to give the same rows only under the same mapping
    # (a database created at version 2 already has it: version 1 creates the tables as declared now)
    run("ALTER TABLE ingest_runs ADD COLUMN IF NOT EXISTS mapping_hash VARCHAR")


def _migration_v3(run) -> None:
    # ingest_runs.bytes and base_run_id: a file that grew by appending is read from where the last load stopped
    run("ALTER TABLE ingest_runs ADD COLUMN IF NOT EXISTS bytes BIGINT")
    run("ALTER TABLE ingest_runs ADD COLUMN IF NOT EXISTS base_run_id VARCHAR")


def _migration_v4(run) -> None:
    # prices.time_of_day_from_s: time-of-day prices (DeepSeek's standard hours and off-peak discount). The rows already
    # there apply all day, as before; load_prices writes the windows.
    run("ALTER TABLE prices ADD COLUMN IF NOT EXISTS time_of_day_from_s INTEGER")


# version -> function(run_sql). Append only: a released migration never changes.
MIGRATIONS = {1: _migration_v1, 2: _migration_v2, 3: _migration_v3, 4: _migration_v4}
#: The migrations a read-only connection can do without: they add only what no reader reads (version 2: the mapping
#: hash of ingest runs; version 3: their file length and base run; ingest reads both), or what a reader takes as absent
#: (version 4: a prices table without time-of-day windows prices every row all day, which is what its rows were
#: written for). A report or a metric opening a database that no writer has migrated since an upgrade reads it as it
#: is; the first writer migrates it.
READER_OPTIONAL = frozenset({2, 3, 4})


_COMPILERS = "ibis.backends.sql.compilers"


def _defer_ibis_compilers() -> None:
    """Import Ibis' SQL compilers one dialect at a time, as they are used, instead of all twenty at once.

    The package ``ibis.backends.sql.compilers`` imports the compiler of every SQL dialect Ibis knows (Athena,
    BigQuery, Trino ...) and each its sqlglot dialect: about 70 ms of the first metric call of every process, for one
    dialect used. Here the package is registered without running its ``__init__``: a submodule (``duckdb``, ``base``,
    ``pyspark`` ...) is imported when first asked for, and any other name (``DuckDBCompiler``) runs the package's own
    ``__init__`` once and is then found there, so every use Ibis or a user makes of the package works as before. Does
    nothing when the package is already imported (another backend loaded it) or cannot be found.

    >>> _defer_ibis_compilers()
    >>> import ibis.backends.sql.compilers as sc
    >>> sc.duckdb.DuckDBCompiler is sc.DuckDBCompiler
    True
    """
    import importlib
    import importlib.util

    if _COMPILERS in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(_COMPILERS)
    except ImportError:
        return
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    ran = []

    def __getattr__(name: str) -> Any:
        if name.startswith("__") and name != "__all__":  # __all__ (a star import) is the package's own
            raise AttributeError(name)
        if not name.startswith("__"):
            try:
                return importlib.import_module(f"{_COMPILERS}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{_COMPILERS}.{name}":
                    raise
        if not ran:
            ran.append(True)
            spec.loader.exec_module(module)
            if name in module.__dict__:
                return module.__dict__[name]
        raise AttributeError(f"module {_COMPILERS!r} has no attribute {name!r}")

    module.__getattr__ = __getattr__
    sys.modules[_COMPILERS] = module
    parent, _, child = _COMPILERS.rpartition(".")
    setattr(sys.modules[parent], child, module)


def _duckdb_backend() -> Any:
    """Ibis' DuckDB backend class, imported directly.

    ``ibis.duckdb`` finds its module through the installed packages' entry points on first use, reading the metadata
    of every installed distribution: about 6 ms of a process's first metric. The class is the one that entry point
    names (``ibis.backends.duckdb``); what ``ibis.duckdb`` adds (the backend's options, of which DuckDB's has none, and
    a proxy module) is not used to wrap a connection. ``ibis.duckdb`` is used when already loaded, or when the module
    cannot be imported directly.

    >>> _duckdb_backend().name
    'duckdb'
    """
    import ibis

    proxy = ibis.__dict__.get("duckdb")
    if proxy is not None:
        return proxy
    try:
        from ibis.backends.duckdb import Backend
    except ImportError:
        return ibis.duckdb
    return Backend


class Workbench:
    """An open workbench database: the canonical tables as Ibis tables, SQL, and the raw DuckDB connection.

    Use :func:`connect` to make one. ``db.calls``, ``db.evals`` ... are Ibis tables; ``db.sql(query)`` returns polars.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('a', '2026-01-05', 'chat', 'ok')")
    >>> db.calls.filter(db.calls.feature == "chat").count().execute()  # an Ibis table
    1
    >>> db.sql("select call_id, feature from calls").rows()  # SQL, a polars frame back
    [('a', 'chat')]
    >>> db.close()
    """

    def __init__(self, backend: "ibis.BaseBackend | duckdb.DuckDBPyConnection", path: str | None = None,
                 config: Any = None):
        # A DuckDB connection gets its Ibis backend on first use: importing Ibis takes half a second, which a
        # process that only loads files (``workbench ingest``) or runs SQL never needs to pay.
        raw = type(backend).__name__ == "DuckDBPyConnection"
        self._con = backend if raw else None
        self._ibis = None if raw else backend
        self.path = path
        self._config = config
        self._settings: Settings | None = None
        self._tables: dict[str, Any] = {}
        self._views: dict[Any, Any] = {}

    @property
    def settings(self) -> "Settings":
        """The typed ``workbench.toml`` settings this database was opened with (``connect(..., config=)``; default
        ``$WORKBENCH_CONFIG`` or ``./workbench.toml``), parsed once."""
        if self._settings is None:
            self._settings = load_settings(self._config)
        return self._settings

    @property
    def ibis(self) -> "ibis.BaseBackend":
        """The Ibis backend over this database (made from the DuckDB connection on first use)."""
        if self._ibis is None:
            from workbench._gc import paused

            # Importing Ibis makes some hundred thousand objects, none of them garbage: with the cyclic collector on,
            # its collections walked them and everything imported before (scipy, polars) for 45-55 ms of the
            # 0.26 s the import took.
            with paused():
                import ibis  # noqa: F401  (imported here, with the collector paused; used through _duckdb_backend)

                _defer_ibis_compilers()
                self._ibis = _duckdb_backend().from_connection(self._con)
        return self._ibis

    @property
    def duckdb(self) -> "duckdb.DuckDBPyConnection":
        """The raw DuckDB connection (DuckDB backend only)."""
        if self._con is not None:
            return self._con
        con = getattr(self.ibis, "con", None)
        if con is None or self.ibis.name != "duckdb":
            raise ParameterTypeError(f"Workbench.duckdb: the backend is {self.ibis.name!r}, not duckdb")
        return con

    @property
    def tables(self) -> list[str]:
        return [t for t in TABLES if t in set(self.ibis.list_tables())]

    def table(self, name: str) -> "ibis.Table":
        """The canonical table ``name`` as an Ibis table.

        Made once per table and kept: Ibis reads the table's schema from the database each time it makes one (1-3 ms,
        every metric call paid it for each table it reads). The canonical tables' columns are those of the schema
        (:mod:`workbench.schema`), created or migrated by :func:`connect`; a table whose columns were changed by hand
        afterwards is not seen with them.

        Examples
        --------
        >>> import workbench as wb
        >>> db = wb.connect(":memory:")
        >>> db.table("calls") is db.calls, "latency_ms" in db.calls.columns
        (True, True)
        """
        got = self._tables.get(name)
        if got is None:
            if name not in TABLES:
                raise NotFoundError(f"Workbench.table: no canonical table {name!r}; tables: {', '.join(TABLES)}")
            from workbench._gc import paused

            with paused():  # the first table imports pyarrow (see Workbench.ibis)
                got = self._tables[name] = self.ibis.table(name)
        return got

    def view(self, key: Any, build: "Callable[[], ibis.Table]") -> "ibis.Table":
        """An Ibis expression over the canonical tables, made by ``build()`` once per connection and ``key``.

        For the joins several metrics start from (scores with their answers and calls, say): building one costs Ibis
        10-20 ms of Python each time, often more than DuckDB takes to run it on a small table. An expression is a
        description, not data, so the kept one reads the tables as they are when it runs. ``key`` must name every
        input ``build`` uses.

        Examples
        --------
        >>> import workbench as wb
        >>> db = wb.connect(":memory:")
        >>> made = []
        >>> def build():
        ...     made.append(1)
        ...     return db.calls.filter(db.calls.status == "error")
        >>> db.view(("errors",), build) is db.view(("errors",), build), len(made)
        (True, 1)
        """
        got = self._views.get(key)
        if got is None:
            if len(self._views) >= 256:
                self._views.clear()
            got = self._views[key] = build()
        return got

    def __getattr__(self, name: str) -> Any:
        if name in TABLES:
            return self.table(name)
        raise AttributeError(name)

    def sql(self, query: str) -> "pl.DataFrame":
        """Run SQL on the database and return a polars frame (JSON columns come back as text)."""
        if self._con is not None or self.ibis.name == "duckdb":
            # DuckDB converts its own JSON type to text; Ibis' polars conversion has no JSON type.
            return self.duckdb.sql(query).pl()
        return self.ibis.sql(query).to_polars()

    @property
    def schema_version(self) -> int:
        if self._con is not None:
            return int(self._con.execute("select max(version) from schema_version").fetchone()[0])
        return int(self.ibis.raw_sql("select max(version) from schema_version").fetchone()[0])

    def close(self) -> None:
        if self._ibis is not None:
            self._ibis.disconnect()
        else:
            self._con.close()

    def __enter__(self) -> "Workbench":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workbench({self.path or ('duckdb' if self._ibis is None else self._ibis.name)!r})"


def migrate(con: "duckdb.DuckDBPyConnection") -> int:
    """Apply pending migrations in one transaction each; return the schema version.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> migrate(con)
    4
    >>> con.execute("select count(*) from duckdb_tables()").fetchone()  # the 12 canonical tables and schema_version
    (13,)
    >>> migrate(con), con.execute("select max(version), count(*) from schema_version").fetchone()  # nothing pending
    (4, (4, 4))
    """
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)")
    current = con.execute("select coalesce(max(version), 0) from schema_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the database has schema version {current}, newer than this workbench ({SCHEMA_VERSION}); upgrade workbench"
        )
    for version in sorted(v for v in MIGRATIONS if v > current):
        con.execute("BEGIN TRANSACTION")
        try:
            MIGRATIONS[version](con.execute)
            # literals, not query parameters: those make DuckDB's client import pandas (0.28 s of a fresh process)
            con.execute(f"INSERT INTO schema_version VALUES ({int(version)}, "
                        f"TIMESTAMP {sql_literal(utc_now().isoformat(sep=' '))})")
            con.execute("COMMIT")
        except Exception:
            rollback(con)
            raise
    return SCHEMA_VERSION


#: Seconds a connection waits for a database locked by another process before giving up (``WORKBENCH_LOCK_TIMEOUT_S``).
LOCK_TIMEOUT_S = 30.0
LOCK_TIMEOUT_ENV = "WORKBENCH_LOCK_TIMEOUT_S"


def lock_timeout(value: float | None = None) -> float:
    """The lock wait in seconds: ``value``, else ``$WORKBENCH_LOCK_TIMEOUT_S``, else :data:`LOCK_TIMEOUT_S` (30 s).

    >>> lock_timeout(2.5)
    2.5
    >>> lock_timeout(-1)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: lock_timeout_s must be a number >= 0, got -1
    """
    source = "lock_timeout_s"
    if value is None:
        raw = os.environ.get(LOCK_TIMEOUT_ENV)
        if raw is None or not raw.strip():
            return LOCK_TIMEOUT_S
        source = f"${LOCK_TIMEOUT_ENV}"
        try:
            value = float(raw)
        except ValueError:
            raise ParameterError(f"{source} must be a number >= 0, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ParameterError(f"{source} must be a number >= 0, got {value!r}")
    return float(value)


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _is_lock_error(message: str) -> bool:
    # DuckDB: 'IO Error: Could not set lock on file "...": Conflicting lock is held in ... (PID n)'
    return "Could not set lock" in message or "Conflicting lock" in message


def _open_duckdb(path: str, *, read_only: bool, wait_s: float) -> "duckdb.DuckDBPyConnection":
    """Open the DuckDB file, waiting up to ``wait_s`` seconds (backoff 50 ms doubling to 1 s) while another process
    holds a conflicting lock; every other failure maps to :class:`DatabaseError` at once. The connection has the
    settings Ibis gives its own (UTC session time zone, no Python variables read as tables)."""
    import duckdb

    deadline = time.monotonic() + wait_s
    delay = 0.05
    # Offline: never download a DuckDB extension (a file in another format would make DuckDB fetch a reader).
    extra: dict[str, Any] = {"autoinstall_known_extensions": False}
    # the configurations that may share an instance this process already has open (see below), in order
    shapes = [(read_only, {}), (False, extra), (False, {})] if read_only else [(False, {})]
    released = False
    while True:
        try:
            con = duckdb.connect(path if path == ":memory:" else str(Path(path).absolute()), config=dict(extra),
                                 read_only=read_only)
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET python_enable_replacements = false")
            if not _stdout_is_terminal():
                # DuckDB prints its progress bar on standard output for statements over 2 s: into a pipe it would
                # corrupt `--json` output, and fill logs and cron mail. (In a Jupyter kernel DuckDB has it off
                # already, without ipywidgets, and refuses any change to it.)
                try:
                    con.execute("SET enable_progress_bar_print = false")
                except duckdb.Error:
                    pass
            return con
        except duckdb.IOException as exc:
            first = str(exc).splitlines()[0]
            if not _is_lock_error(first):
                if "not a valid DuckDB database file" in first:
                    raise DatabaseError(f"{path}: not a DuckDB database file") from None
                if first.startswith("IO Error: Extension"):  # another database format (SQLite ...) DuckDB cannot read
                    raise DatabaseError(f"{path}: not a DuckDB database file (another format: {first})") from None
                raise DatabaseError(f"{path}: cannot open the database: {first}") from None
            left = deadline - time.monotonic()
            if left <= 0:
                holder = re.search(r"\(PID (\d+)\)", first)
                who = f" (PID {holder.group(1)})" if holder else ""
                raise DatabaseError(
                    f"{path}: the database is locked by another process{who}; gave up after waiting {wait_s:g} s "
                    f"(to wait longer: --lock-timeout SECONDS on the command line, connect(..., lock_timeout_s=) or "
                    f"${LOCK_TIMEOUT_ENV})"
                ) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)
        except duckdb.ConnectionException as exc:  # open in this process already, with another configuration
            first = str(exc).splitlines()[0]
            if "different configuration" in first and not released:
                # The instance may be one only the metrics' cached queries still hold (a reader the caller dropped):
                # let them go, collect, and try the settings asked for again.
                released = True
                _release_cached()
                continue
            if "different configuration" in first and shapes:
                # This process already holds the file open with other settings (DuckDB keeps one instance per file
                # and process, e.g. writable, or opened by plain duckdb): share that instance instead of failing. A
                # reader still writes nothing; the instance is a DuckDB database already, so nothing is downloaded.
                read_only, extra = shapes.pop(0)
                continue
            if "different configuration" in first:
                raise DatabaseError(f"{path}: cannot open the database: this process holds it open with other "
                                    f"settings (read-only against read-write): close that "
                                    f"connection first ({first})") from None
            raise DatabaseError(f"{path}: cannot open the database: {first}") from None


def _release_cached() -> None:
    """Let go of the connections that only the metrics' per-process query caches still refer to."""
    import gc

    core = sys.modules.get("workbench.metrics.core")
    if core is not None:
        core.forget_cached()
    gc.collect()


MEMORY_LIMIT_ENV = "WORKBENCH_MEMORY_LIMIT"


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def size_bytes(text: str) -> float | None:
    """Bytes of a DuckDB size setting ('512MB', '18.8 GiB'); None when not a size.

    >>> size_bytes('1.5 GiB'), size_bytes('512MB'), size_bytes('unlimited')
    (1610612736.0, 512000000.0, None)
    """
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", text or "")
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        return None
    try:
        return float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    except ValueError:
        return None


def sql_literal(v: Any) -> str:
    """A SQL literal of a Python value: NULL, a boolean, a number, else a quoted string (quotes doubled).

    Used instead of query parameters where a first call counts: DuckDB's Python client imports pandas, NumPy and
    pyarrow the first time a query is given parameters (0.28 s of a fresh process).

    >>> sql_literal(None), sql_literal(True), sql_literal(1.5), sql_literal("it's")
    ('NULL', 'true', '1.5', "'it''s'")
    """
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def rollback(con: "duckdb.DuckDBPyConnection") -> None:
    """Roll back the transaction open on ``con``; nothing when none is open any more.

    A COMMIT that fails (no space left on the device for the write-ahead log, a write conflict) has already rolled its
    transaction back: a ROLLBACK after it raises "no transaction is active", and that error, not the one saying why
    the write failed, would reach the user as a traceback. Every ``except`` that undoes a transaction calls this.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("BEGIN TRANSACTION").execute("CREATE TABLE t (x INTEGER)")
    >>> rollback(con); rollback(con)  # the second finds no transaction open: nothing to do
    >>> con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'").fetchone()
    (0,)
    """
    import duckdb

    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise


def sql_identifier(name: str) -> str:
    """A SQL identifier: the name in double quotes, its double quotes doubled (any column or table name, as written).

    >>> print(sql_identifier('my "x" col'))
    "my ""x"" col"
    """
    return '"' + name.replace('"', '""') + '"'


def memory_limit_bytes(con: "duckdb.DuckDBPyConnection") -> float | None:
    """DuckDB's memory limit on ``con`` in bytes (None when it cannot be read as a size).

    >>> import duckdb
    >>> con = duckdb.connect(); _ = con.execute("SET memory_limit = '512MB'")
    >>> round(memory_limit_bytes(con) / 1e6)  # DuckDB reports it as '488.2 MiB'
    512
    """
    return size_bytes(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])


def memory_passes_for(con: "duckdb.DuckDBPyConnection", rows: float | None, bytes_per_row: float,
                      share: float = 1.0) -> int:
    """How many passes work holding ``bytes_per_row`` for each of ``rows`` rows takes so that each pass fits in
    ``share`` of DuckDB's memory limit on ``con``: 1 when it fits, and when the rows or the limit are unknown.

    >>> import duckdb
    >>> con = duckdb.connect(); _ = con.execute("SET memory_limit = '512MB'")
    >>> memory_passes_for(con, 1_000_000, 40), memory_passes_for(con, 100_000_000, 40), memory_passes_for(con, None, 40)
    (1, 8, 1)
    """
    limit = memory_limit_bytes(con)
    if not rows or limit is None:
        return 1
    return max(1, math.ceil(rows * bytes_per_row / (share * limit)))


def _apply_memory_limit(con: "duckdb.DuckDBPyConnection", value: str | None) -> None:
    """``SET memory_limit`` from ``value``, else ``$WORKBENCH_MEMORY_LIMIT``; nothing when neither is set."""
    import duckdb

    source = "memory_limit"
    if value is None:
        value = os.environ.get(MEMORY_LIMIT_ENV)
        source = f"${MEMORY_LIMIT_ENV}"
        if value is None or not value.strip():
            return
    if not isinstance(value, str) or not re.fullmatch(r"\s*\d+(\.\d+)?\s*[KMGT]i?B\s*", value, re.IGNORECASE):
        raise ParameterError(f"{source} must be a size such as '2GB' or '512MB', got {value!r}")
    try:
        con.execute(f"SET memory_limit = '{value.strip()}'")
    except duckdb.Error as exc:
        raise ParameterError(f"{source}: DuckDB refused {value!r}: {str(exc).splitlines()[0]}") from None


def connect(path: str | os.PathLike | None = None, *, read_only: bool = False, create: bool = True,
            backend: Any = None, lock_timeout_s: float | None = None,
            config: Any = None, memory_limit: str | None = None) -> Workbench:
    """Open a workbench database: create and migrate it if needed (``create=True``), or open an existing one.

    Parameters
    ----------
    path : str or path, optional
        DuckDB file; ``":memory:"`` for an in-memory database. Default (None) ``datasets/workbench.duckdb``, or the
        ``WORKBENCH_DB`` environment variable when set; an empty path is an error, not the default.
    read_only : bool
        Open the DuckDB file read-only: several readers at once (the report, SLO and budget runs cron starts in the
        same minute), nothing written, no migration applied. Implies ``create=False``.
    create : bool
        Create the file (and its folder) when it does not exist. Only the writers that load data (``ingest``,
        ``demo``) create; every reader passes ``False``, so a mistyped path is an error naming it, never an empty
        database that reports "all ok".
    backend : ibis backend, optional
        An already connected Ibis backend (Spark, a warehouse) holding the canonical tables; ``path`` is then ignored.
    lock_timeout_s : float, optional
        While another process holds a conflicting lock (a writer excludes everyone, readers exclude writers), retry
        with backoff for up to this many seconds, then raise :class:`DatabaseError`. Default
        ``$WORKBENCH_LOCK_TIMEOUT_S``, else 30 s; 0 gives up at once.
    config : path, Config or Settings, optional
        ``workbench.toml`` for this database, reachable as ``db.settings`` (default: ``$WORKBENCH_CONFIG``, else
        ``./workbench.toml``).
    memory_limit : str, optional
        DuckDB's memory limit for this connection, e.g. ``"2GB"`` (default ``$WORKBENCH_MEMORY_LIMIT``, else DuckDB's
        own: 80% of RAM). Beyond it DuckDB spills aggregates and sorts to disk, so a metric over data larger than
        memory runs in bounded memory: ``dau_count`` on 10M calls peaks at 466 MB under ``"300MB"`` instead of
        1.26 GB, in the same time (``benchmarks/README.md``).

    Returns
    -------
    Workbench

    Raises
    ------
    MissingFileError
        ``create=False`` (or ``read_only=True``) and there is no file at ``path``.
    DatabaseError
        The file is empty (0 bytes), not a DuckDB database, not a workbench database, or still locked after
        ``lock_timeout_s``.

    Examples
    --------
    >>> db = connect(":memory:")
    >>> db.schema_version
    4
    >>> connect(":memory:", memory_limit="512MB").duckdb.execute("select current_setting('memory_limit')").fetchone()
    ('488.2 MiB',)
    >>> connect("no/such/file.duckdb", create=False)
    Traceback (most recent call last):
    ...
    workbench.errors.MissingFileError: no database at no/such/file.duckdb (readers never create one; check --db, or load data first with `workbench ingest`)
    >>> connect("")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: connect: path must be the path of a DuckDB file or ':memory:', got ''; None opens the default ...
    """
    read_only = check_bool("connect", "read_only", read_only)  # read_only="no" would open for writing
    create = check_bool("connect", "create", create)
    check_config_source(config)  # here, not at the first ``db.settings``
    if backend is not None:
        return Workbench(backend, path=None, config=config)
    if path is not None and not isinstance(path, (str, os.PathLike)):  # (a bool is neither)
        raise ParameterTypeError(f"connect: path must be a str or path of a DuckDB file, got {type(path).__name__}")
    if path is not None and not os.fspath(path).strip():  # named, but nothing: not the default database
        raise ParameterError(f"connect: path must be the path of a DuckDB file or ':memory:', got {path!r}; "
                             f"None opens the default ($WORKBENCH_DB, else {DEFAULT_DB})")
    path = str(path or os.environ.get("WORKBENCH_DB") or DEFAULT_DB)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding in the name (a shell passes them through): DuckDB takes UTF-8
        raise DatabaseError(f"{path.encode('utf-8', 'surrogateescape')!r}: the database path is not UTF-8 text, which "
                            f"DuckDB needs; rename the file or a folder above it") from None
    if path == ":memory:":
        read_only = False  # an in-memory database is private to this connection
    else:
        p = Path(path)
        if (read_only or not create) and not p.exists():
            raise MissingFileError(f"no database at {path} (readers never create one; check --db, or load data "
                                   "first with `workbench ingest`)")
        if p.exists():
            if p.is_dir():
                raise DatabaseError(f"{path}: is a folder, not a database file")
            if p.stat().st_size == 0:
                raise DatabaseError(f"{path}: the file is empty (0 bytes), not a database; remove it, or point --db "
                                    "at the real database")
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
    import duckdb

    con = _open_duckdb(path, read_only=read_only, wait_s=lock_timeout(lock_timeout_s))
    try:
        _apply_memory_limit(con, memory_limit)
        if read_only:
            _check_schema(con, path)
        else:
            migrate(con)
    except (DatabaseError, ParameterError):
        con.close()
        raise
    except (duckdb.SerializationException, duckdb.InvalidInputException, duckdb.CatalogException) as exc:
        con.close()
        first = str(exc).splitlines()[0]
        raise DatabaseError(f"{path}: not a workbench database: {first}") from None
    return Workbench(con, path=path, config=config)


def _check_schema(con: "duckdb.DuckDBPyConnection", path: str) -> None:
    """A read-only connection migrates nothing: the file must already be a workbench database of this version, or
    of an older one whose pending migrations readers can do without (:data:`READER_OPTIONAL`)."""
    has = con.execute("select count(*) from information_schema.tables where table_name = 'schema_version'").fetchone()[0]
    if not has:
        raise DatabaseError(f"{path}: a DuckDB file but not a workbench database (no schema_version table)")
    current = con.execute("select coalesce(max(version), 0) from schema_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: the database has schema version {current}, newer than this workbench ({SCHEMA_VERSION}); "
            "upgrade workbench"
        )
    if current < SCHEMA_VERSION and not READER_OPTIONAL.issuperset(range(current + 1, SCHEMA_VERSION + 1)):
        raise DatabaseError(f"{path}: schema version {current} is older than this workbench's ({SCHEMA_VERSION}); "
                            "open it once for writing (e.g. `workbench ingest` or wb.connect(path)) to migrate it")


def as_workbench(db: "Workbench | str | os.PathLike", *, create: bool = False) -> Workbench:
    """Accept a Workbench or the path of an existing database, so every public function can take either.

    A path is opened with ``create=False``: a mistyped path is a :class:`MissingFileError`, never a new empty file.
    Only the functions that load data (``ingest``) pass ``create=True``.

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> db = wb.connect(d / "w.duckdb")
    >>> as_workbench(db) is db  # a Workbench passes through
    True
    >>> db.close()
    >>> with as_workbench(d / "w.duckdb") as again:  # a path opens the existing database
    ...     again.calls.count().execute()
    0
    >>> as_workbench(d / "typo.duckdb")
    Traceback (most recent call last):
    ...
    workbench.errors.MissingFileError: no database at .../typo.duckdb (readers never create one; ...)
    >>> as_workbench(42)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: expected a Workbench or a database path, got int
    """
    if isinstance(db, Workbench):
        return db
    if isinstance(db, (str, os.PathLike)):
        return connect(db, create=create)
    raise ParameterTypeError(f"expected a Workbench or a database path, got {type(db).__name__}")


# --- selection: the filters every reader applies (metrics, evaluation runs, reports) ---------------------------------

Where = Mapping[str, Any] | Sequence[str] | None


def parse_where(where: Where, *, fn: str = "") -> dict[str, Any]:
    """Normalise ``where``: a mapping column -> value (or list of values), or ``["col=value", ...]`` from the CLI.

    In the CLI form, spaces around the column, the ``=`` and each value are not part of them (``status = ok`` is
    ``status=ok``); a mapping's values are taken as they are. Anything else (a number, one string, a mapping whose
    keys are not column names) is a :class:`ParameterTypeError` naming ``fn``.

    >>> parse_where(["feature=chat", "model = a, b"])
    {'feature': 'chat', 'model': ['a', 'b']}
    >>> parse_where(-1, fn="error_rate")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: error_rate: where must be a mapping column -> value or a list of 'column=value' strings, got -1
    """
    prefix = f"{fn}: " if fn else ""
    want = "where must be a mapping column -> value or a list of 'column=value' strings"
    if where is None:
        return {}
    if isinstance(where, Mapping):
        if not all(isinstance(k, str) for k in where):
            raise ParameterTypeError(f"{prefix}{want}, got {where!r:.60}")
        return dict(where)
    if not isinstance(where, (list, tuple)) or not all(isinstance(item, str) for item in where):
        raise ParameterTypeError(f"{prefix}{want}, got {where!r:.60}")
    out: dict[str, Any] = {}
    for item in where:
        if "=" not in item:
            raise ParameterError(f"{prefix}where: expected column=value, got {item!r}")
        col, _, val = item.partition("=")
        out[col.strip()] = [v.strip() for v in val.split(",")] if "," in val else val.strip()
    return out


def view_key(name: str, start: Any, end: Any, where: Where) -> tuple | None:
    """A :meth:`Workbench.view` key for a selection: ``name``, the window and the ``where`` conditions, every value
    with its type (``1``, ``1.0`` and ``True`` are one key in Python, not one condition on every column). None when
    the conditions cannot be read or a value cannot be part of a key (the caller then builds without the cache, and
    the selection's own checks refuse what is wrong).

    >>> view_key("x", "2026-01-01", None, {"feature": ["a", "b"]}) == view_key("x", "2026-01-01", None, ["feature=a,b"])
    True
    >>> view_key("x", None, None, {"n": 1}) == view_key("x", None, None, {"n": True}), view_key("x", None, None, {"f": {"a": 1}})
    (False, None)
    """
    try:
        conds = parse_where(where)
    except ParameterError:
        return None

    def typed(v: Any) -> Any:
        if isinstance(v, (list, tuple)):  # a list of values, whichever sequence holds it (as scope reads it)
            return ("list", tuple(typed(x) for x in v))
        return (type(v).__name__, v)

    key = (name, typed(start), typed(end), tuple((col, typed(v)) for col, v in conds.items()))
    try:
        hash(key)
    except TypeError:
        return None
    return key


#: The years a metric window's start, end or ``at`` may fall in: the calendar arithmetic of windows and periods (a
#: day before, a month after) stays inside what a timestamp holds, whatever the period.
TIMESTAMP_YEARS = (1900, 9000)


def as_timestamp(value: Any, *, what: str = "") -> _dt.datetime | None:
    """A naive UTC timestamp of a date, a datetime (an aware one converted to UTC) or ISO text; None stays None.

    Anything else (a number: ``20260105`` reads as an ISO date once it is text) is a :class:`ParameterTypeError`;
    ``what`` (``"error_rate: start"``) begins the message of either error.

    >>> as_timestamp("2026-01-05T10:00:00+02:00")
    datetime.datetime(2026, 1, 5, 8, 0)
    >>> as_timestamp("0001-01-01")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: expected a date between the years 1900 and 9000, got '0001-01-01'
    >>> as_timestamp(20260105, what="error_rate: start")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: error_rate: start: expected an ISO date or timestamp, got 20260105
    """
    if value is None:
        return None
    prefix = f"{what}: " if what else ""
    if isinstance(value, (bool, int, float, list, tuple, dict, set, frozenset, bytes)):
        raise ParameterTypeError(f"{prefix}expected an ISO date or timestamp, got {value!r:.60}")
    if isinstance(value, _dt.datetime):
        ts = value if value.tzinfo is None else value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    elif isinstance(value, _dt.date):
        ts = _dt.datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = _dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ParameterError(f"{prefix}expected an ISO date or timestamp, got {value!r}") from None
        ts = parsed if parsed.tzinfo is None else parsed.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    if not TIMESTAMP_YEARS[0] <= ts.year <= TIMESTAMP_YEARS[1]:
        raise ParameterError(f"{prefix}expected a date between the years {TIMESTAMP_YEARS[0]} and {TIMESTAMP_YEARS[1]}, "
                             f"got {value!r}")
    return ts


def scope(t: "ir.Table", *, time: str | None = "ts", start: Any = None, end: Any = None, where: Where = None) -> "ir.Table":
    """Filter a table to ``start <= time < end`` and the ``where`` conditions.

    ``where`` maps a column to a value or a list of values (any of them). A value is compared as the column compares
    it: on a number or true/false column, text says the value ("100" is 100, as the CLI's ``--where latency_ms=100``
    gives it); on a text column a number is its text; on a timestamp column text is read as an ISO timestamp (one
    with a zone converted to UTC) and compared with the instant; on other columns (JSON) text is compared with the
    column written as text. None selects the rows without a value (``IS NULL``), alone or in a list. An unknown column is a
    :class:`NotFoundError` naming the table's columns; a value that cannot be one (a NUL character, a nested list,
    text that is no number for a number column) or an empty list, a :class:`ParameterError` naming the column.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...                       "('a', '2026-01-05', 'chat', 'ok', 100), ('b', '2026-01-06', 'chat', 'error', 900),"
    ...                       "('c', '2026-01-06', 'search', 'ok', 50)")
    >>> scope(db.calls, start="2026-01-06", where={"feature": "chat"}).select("call_id", "status").to_polars().rows()
    [('b', 'error')]
    >>> scope(db.calls, where=["latency_ms=100,50"]).select("call_id").order_by("call_id").to_polars().rows()  # CLI
    [('a',), ('c',)]
    >>> scope(db.calls, where={"modle": "x"})
    Traceback (most recent call last):
    ...
    workbench.errors.NotFoundError: where: no column 'modle'; columns: call_id, trace_id, ...
    """
    conds = []
    s, e = as_timestamp(start), as_timestamp(end)
    if time is not None and (s is not None or e is not None):
        if s is not None:
            conds.append(t[time] >= s)
        if e is not None:
            conds.append(t[time] < e)
    for col, val in parse_where(where).items():
        if col not in t.columns:
            raise NotFoundError(f"where: no column {col!r}; columns: {', '.join(t.columns)}")
        c = t[col]
        values, null = _where_values(col, val, c.type())
        if any(isinstance(v, str) for v in values) and not c.type().is_string():
            c = c.cast("string")
        cond = (c.isin(values) if len(values) > 1 else c == values[0]) if values else None
        if null:  # None among the values: the rows without one too (IS NULL; IN never matches a NULL)
            cond = c.isnull() if cond is None else cond | c.isnull()
        conds.append(cond)
    return t.filter(conds) if conds else t


def _where_values(col: str, val: Any, typ: Any) -> tuple[list, bool]:
    """The values of one ``where`` condition as the column compares them, and whether None is among them.

    A number or a boolean column compares a value given as text by what it says ("100" is 100: its text as a double
    is "100.0"); a text column compares a number by its text. A value that cannot be a value of the column (a NUL
    character, a nested list or mapping, text that is no number for a number column) and an empty list are a
    :class:`ParameterError` naming the column; so is text that is no ISO timestamp for a timestamp column.

    >>> import ibis.expr.datatypes as dt
    >>> _where_values("latency_ms", ["100", None], dt.float64), _where_values("feature", 7, dt.string)
    (([100], True), (['7'], False))
    >>> _where_values("ts", "2026-01-05T10:00:00+02:00", dt.timestamp)
    ([datetime.datetime(2026, 1, 5, 8, 0)], False)
    >>> _where_values("ts", "yesterday", dt.timestamp)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: where: ts is a timestamp column: expected an ISO date or timestamp, got 'yesterday'
    """
    values = list(val) if isinstance(val, (list, tuple, set, frozenset)) else [val]
    if not values:
        raise ParameterError(f"where: {col}: an empty list of values selects nothing; give at least one value")
    null = any(v is None for v in values)
    values = [v for v in values if v is not None]
    out = []
    for v in values:
        if isinstance(v, (Mapping, list, tuple, set, frozenset, bytes)):
            raise ParameterError(f"where: {col}: expected a value or a list of values, got {v!r}")
        if isinstance(v, str) and "\x00" in v:
            raise ParameterError(f"where: {col}: a value holds a NUL character: {v!r}")
        if typ.is_boolean() and isinstance(v, str):
            low = v.strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise ParameterError(f"where: {col} is a true/false column; got {v!r}")
            v = low in ("true", "1")
        elif typ.is_numeric() and isinstance(v, str):
            text = v.strip()
            try:
                v = int(text)
            except ValueError:
                try:
                    v = float(text)
                except ValueError:
                    raise ParameterError(f"where: {col} is a number column; {v!r} is not a number") from None
        elif typ.is_timestamp() and isinstance(v, str):  # (compared as text, "abc" matched nothing, without a word)
            v = as_timestamp(v, what=f"where: {col} is a timestamp column")
        elif typ.is_string() and not isinstance(v, str):
            v = str(v).lower() if isinstance(v, bool) else str(v)
        out.append(v)
    return out, null
