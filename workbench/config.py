"""``workbench.toml``: the team's declarations (SLOs, budgets, targets, price overrides, LLM judge), read once.

:func:`load_config` finds and reads the file (cached on its path and modification time, so a file is parsed once
however many functions ask); :func:`load_settings` turns it into typed :class:`Settings` (budgets and scorecard
targets as dataclasses, validated here); ``wb.connect(path, config=...)`` makes them reachable as ``db.settings``.
Sections whose meaning belongs to another module (``[slo.*]``, ``[judge]``, ``[[prices]]``) are validated there,
from the same parsed file. Every error names the file, the key and what was expected.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
>>> _ = p.write_text('[slo.chat]\\nlatency_ms = 2000\\n')
>>> cfg = load_config(p)
>>> cfg.section("slo")
{'chat': {'latency_ms': 2000}}
>>> cfg.where("slo.chat")
'workbench.toml [slo.chat]'
"""

from __future__ import annotations

import functools
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "workbench.toml"
#: The tables a ``workbench.toml`` may hold, each read by the module that owns it.
TABLES = ("slo", "budget", "targets", "prices", "experiments", "judge", "detector", "privacy", "reports", "schedule",
          "notify")


from workbench.errors import ConfigError  # noqa: E402,F401  (defined in errors.py; importable from here as before)
from workbench.errors import ParameterError, ParameterTypeError  # noqa: E402


@dataclass(frozen=True, eq=False)
class Config:
    """The parsed file (``data``) and where it came from (``path``, None when no file was found).

    Examples
    --------
    >>> cfg = Config({"slo": {"chat": {"latency_ms": 2000}}})
    >>> cfg.section("slo"), cfg.section("budget"), cfg.path is None  # a missing section is an empty table
    ({'chat': {'latency_ms': 2000}}, {}, True)
    >>> Config({"slo": 5}).section("slo")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [slo]: expected a table, got int
    """

    data: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.where(name)}: expected a table, got {type(value).__name__}")
        return value

    def where(self, key: str) -> str:
        return f"{self.path.name if self.path else CONFIG_FILE} [{key}]"

    def refuse_unknown(self, table: Mapping[str, Any], where: str, known: "tuple[str, ...] | list[str]") -> None:
        """Refuse a key of ``table`` (the table ``[where]``) that is not in ``known``, naming the file, the table and
        the key with the closest known one: a misspelt key would otherwise be a setting silently not set.

        >>> Config().refuse_unknown({"webhook_url": "http://x"}, "notify", ("command", "webhook"))
        Traceback (most recent call last):
        ...
        workbench.errors.ConfigError: workbench.toml [notify]: unknown key 'webhook_url'; did you mean 'webhook'? (known keys: command, webhook)
        """
        import difflib

        unknown = sorted(set(table) - set(known))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(known), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{self.where(where)}: unknown key {unknown[0]!r}{hint} (known keys: {', '.join(known)})")

    def number(self, table: dict[str, Any], key: str, where: str, *, lo: float | None = None, hi: float | None = None,
               default: Any = ..., ) -> float:
        """A finite number from ``table[key]``, checked against [lo, hi].

        TOML reads ``nan`` and ``inf`` as floats; neither is a setting (every comparison with nan is false, so a
        threshold or budget of nan would never fire), so both are refused.

        >>> Config().number({"monthly_usd": float("nan")}, "monthly_usd", "budget.chat")
        Traceback (most recent call last):
        ...
        workbench.errors.ConfigError: workbench.toml [budget.chat]: monthly_usd must be a finite number, got nan
        """
        if key not in table:
            if default is ...:
                raise ConfigError(f"{self.where(where)}: missing {key!r}")
            return default
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{self.where(where)}: {key} must be a number, got {v!r}")
        try:
            finite = math.isfinite(v)
        except OverflowError:  # an integer of hundreds of digits: TOML reads it, no float holds it
            finite = False
        if not finite:
            raise ConfigError(f"{self.where(where)}: {key} must be a finite number, got {str(v)[:40]}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"{self.where(where)}: {key} must be in [{lo}, {hi}], got {v!r}")
        return float(v)


def check_config_source(path: Any) -> None:
    """Refuse a ``config`` argument that can name no settings: anything but None, a path, a :class:`Config` or
    :class:`Settings` (a :class:`ParameterTypeError`), or an empty path (a :class:`ParameterError`: named, but nothing,
    so not the default file). :func:`load_config` and ``workbench.connect`` check with it, the latter before it opens
    the database rather than at the first ``db.settings``.

    >>> check_config_source("workbench.toml")
    >>> check_config_source(5)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterTypeError: config must be the path of a workbench.toml, a Config or Settings, got int
    """
    if path is None or isinstance(path, (Config, Settings)):
        return
    if not isinstance(path, (str, os.PathLike)):  # (a bool is neither)
        raise ParameterTypeError(f"config must be the path of a workbench.toml, a Config or Settings, "
                                 f"got {type(path).__name__}")
    if not os.fspath(path).strip():
        raise ParameterError(f"config must be the path of a workbench.toml, a Config or Settings, got {path!r}; None "
                             f"reads the default ($WORKBENCH_CONFIG, else ./{CONFIG_FILE})")


def load_config(path: "str | os.PathLike | Config | Settings | None" = None) -> Config:
    """Read ``workbench.toml``: ``path``, else ``$WORKBENCH_CONFIG``, else ``./workbench.toml``; empty when none exists.

    A file that was named explicitly but does not exist, or that is not valid TOML, raises :class:`ConfigError`; an
    empty path, a :class:`~workbench.errors.ParameterError` (it is not the default).
    The parsed file is cached on (path, modification time, size): asking again does not read it again.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "workbench.toml").write_text('[judge]\\nmodel = "gpt-4o-mini"\\n')
    >>> cfg = load_config(d / "workbench.toml")
    >>> cfg.section("judge"), cfg.path.name
    ({'model': 'gpt-4o-mini'}, 'workbench.toml')
    >>> load_config(d / "workbench.toml") is cfg  # unchanged file: the cached parse
    True
    >>> load_config(d / "missing.toml")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: no config file at .../missing.toml
    >>> load_config("")
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: config must be the path of a workbench.toml, a Config or Settings, got ''; ...
    """
    if isinstance(path, Config):
        return path
    if isinstance(path, Settings):
        return path.config
    check_config_source(path)
    explicit = path or os.environ.get("WORKBENCH_CONFIG")
    p = Path(explicit or CONFIG_FILE)
    try:
        st = p.stat()
    except OSError:
        if explicit:
            raise ConfigError(f"no config file at {p}") from None
        return Config()
    return _read(str(p.resolve()), st.st_mtime_ns, st.st_size, str(p))


@functools.lru_cache(maxsize=32)
def _read(resolved: str, mtime_ns: int, size: int, shown: str) -> Config:
    p = Path(shown)
    try:
        data = tomllib.loads(Path(resolved).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a folder, not a workbench.toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}): a workbench.toml is UTF-8 TOML") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read: {exc.strerror or exc}") from None
    _no_nul(data, p, [])
    _known_tables(data, p)
    return Config(data=data, path=p)


def _known_tables(data: dict[str, Any], p: Path) -> None:
    """Refuse a table (or a key outside any table) that no module reads, with the closest known one: a misspelt
    ``[slos.chat]`` was ignored, so ``schedule run`` read "no SLO declared" and skipped the check without a word.

    >>> _known_tables({"slos": {"chat": {}}}, Path("workbench.toml"))
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml: unknown table [slos]; did you mean [slo]? (known tables: slo, ...)
    """
    import difflib

    for name, value in data.items():
        if name in TABLES:
            continue
        close = difflib.get_close_matches(name, TABLES, n=1, cutoff=0.5)
        hint = f"; did you mean [{close[0]}]?" if close else ""
        what = f"table [{name}]" if isinstance(value, (dict, list)) else f"key {name!r} outside any table"
        raise ConfigError(f"{p}: unknown {what}{hint} (known tables: {', '.join(TABLES)})")


def _no_nul(value: object, p: Path, at: list[str]) -> None:
    """Refuse a NUL character in any key or text of the file (TOML's \\u0000): no name, path or setting holds one, and
    in SQL it ends a quoted name early (``[slo."agent\\u0000"]`` crashed ``slo`` and ``budget``, exit 1)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                raise ConfigError(f"{p} [{'.'.join([*at, repr(k)])}]: a name holds a NUL character")
            _no_nul(v, p, [*at, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_nul(v, p, [*at, f"#{i + 1}"])
    elif isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{p} [{'.'.join(at)}]: a value holds a NUL character: {value!r}")


# --- typed settings ---------------------------------------------------------------------------------------------

DEFAULT_WARN_AT = 0.85


@dataclass(frozen=True)
class Budget:
    """A monthly budget (``[budget.<feature>]``): the limit in USD and the share of it at which a warning fires.

    Examples
    --------
    >>> b = Budget("chat", monthly_usd=200.0)
    >>> b.warn_at, b.monthly_usd * b.warn_at  # the default share, and the spend at which the warning fires
    (0.85, 170.0)
    """

    feature: str
    monthly_usd: float
    warn_at: float = DEFAULT_WARN_AT


@dataclass(frozen=True)
class Target:
    """A scorecard target (``[targets.<feature>]``: ``<metric>_max`` or ``<metric>_min = limit``).

    >>> Target("chat", "latency_p95_ms", "max", 2000.0).met(1500.0), Target("chat", "wau_count", "min", 50).met(20)
    (True, False)
    """

    feature: str
    metric: str
    bound: str  # "max": lower is better, the value must stay at or under the limit; "min": at or over it
    limit: float

    def met(self, value: float | None) -> bool | None:
        """Whether ``value`` meets the target (None when there is no value)."""
        if value is None or value != value:  # no value (a NaN too: every comparison with it is false)
            return None
        return value <= self.limit if self.bound == "max" else value >= self.limit


@dataclass(frozen=True)
class ReportSettings:
    """``[reports]``: what the report notebooks look at, for a team whose features are not the demo's.

    ``feature``: the feature the one-feature sections show (retention, lifecycle, hallucination by prompt version,
    what-if, drift), by default the one with the most calls in the report's window; ``whatif_model``: the model the
    cost report re-prices that feature's traffic on (no what-if section without it); ``environment``: the
    ``environment`` value the latency-by-model section keeps (every call without it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text('[reports]\\nfeature = "support"\\n')
    >>> load_settings(p).reports
    ReportSettings(feature='support', whatif_model=None, environment=None)
    >>> _ = p.write_text('[reports]\\nfeatures = "support"\\n')
    >>> load_settings(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [reports]: unknown key 'features'; did you mean 'feature'? ...
    """

    feature: str | None = None
    whatif_model: str | None = None
    environment: str | None = None


REPORT_KEYS = ("feature", "whatif_model", "environment")


def _reports(cfg: Config) -> ReportSettings:
    table = cfg.section("reports")
    cfg.refuse_unknown(table, "reports", REPORT_KEYS)
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise ConfigError(f"{cfg.where('reports')}: {key} must be a non-empty name, got {value!r}")
    return ReportSettings(**table)


@dataclass(frozen=True)
class Settings:
    """``workbench.toml`` parsed once into typed settings.

    ``budgets``: feature -> :class:`Budget`; ``targets``: feature -> metric -> :class:`Target`; ``config``: the parsed
    file, for the sections validated by the modules that own them (``[slo.*]``, ``[judge]``, ``[[prices]]``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[budget.chat]\\nmonthly_usd = 100\\n[targets.chat]\\nwau_count_min = 50\\n")
    >>> s = load_settings(p)
    >>> s.budgets["chat"], s.targets["chat"]["wau_count"].bound
    (Budget(feature='chat', monthly_usd=100.0, warn_at=0.85), 'min')
    """

    config: Config = field(default_factory=Config)
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    targets: Mapping[str, Mapping[str, Target]] = field(default_factory=dict)
    reports: ReportSettings = field(default_factory=ReportSettings)

    @property
    def path(self) -> Path | None:
        return self.config.path

    def section(self, name: str) -> dict[str, Any]:
        return self.config.section(name)


def _budgets(cfg: Config) -> dict[str, Budget]:
    out: dict[str, Budget] = {}
    for feature, table in cfg.section("budget").items():
        where = f"budget.{feature}"
        if not isinstance(table, dict):
            raise ConfigError(f"{cfg.where(where)}: expected a table with monthly_usd, got {table!r}")
        cfg.refuse_unknown(table, where, ("monthly_usd", "warn_at"))
        monthly = cfg.number(table, "monthly_usd", where, lo=0)
        if monthly <= 0:
            raise ConfigError(f"{cfg.where(where)}: monthly_usd must be > 0, got {table['monthly_usd']!r}")
        warn_at = cfg.number(table, "warn_at", where, lo=0, hi=1, default=DEFAULT_WARN_AT)
        if not 0 < warn_at < 1:
            raise ConfigError(f"{cfg.where(where)}: warn_at must be in (0, 1), got {table['warn_at']!r}")
        out[feature] = Budget(feature, monthly, warn_at)
    return out


def _targets(cfg: Config) -> dict[str, dict[str, Target]]:
    """``[targets.<feature>]``: ``<metric>_max`` or ``<metric>_min = limit``, one bound per metric (the second of two
    replaced the first: both are refused).

    Whether the metric exists and can take that bound is the metric registry's to say (a layer above this one):
    :func:`workbench.metrics.core.check_targets` refuses a misspelt metric, a bound against the metric's direction or
    a metric with no one value per feature; the reports call it when they read the settings.
    """
    out: dict[str, dict[str, Target]] = {}
    for feature, table in cfg.section("targets").items():
        where = f"targets.{feature}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{cfg.where(where)}: expected a table of <metric>_max / <metric>_min = limit")
        for key in table:
            metric, _, bound = key.rpartition("_")
            if bound not in ("max", "min") or not metric:
                raise ConfigError(f"{cfg.where(where)}: {key!r} must end in _max or _min, e.g. latency_p95_ms_max")
            if metric in out.get(feature, {}):
                raise ConfigError(f"{cfg.where(where)}: {metric}_max and {metric}_min both set; a target is one bound "
                                  f"(at most or at least), keep one")
            out.setdefault(feature, {})[metric] = Target(feature, metric, bound, cfg.number(table, key, where))
    return out


def load_settings(source: "str | os.PathLike | Config | Settings | None" = None) -> Settings:
    """Typed :class:`Settings` from ``workbench.toml`` (``source`` as for :func:`load_config`), validated once.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[budget.chat]\\nmonthly_usd = 50\\nwarn_at = 0.5\\n")
    >>> s = load_settings(p)
    >>> s.budgets["chat"], s.path.name
    (Budget(feature='chat', monthly_usd=50.0, warn_at=0.5), 'workbench.toml')
    >>> load_settings(s) is s  # Settings pass through
    True
    >>> _ = p.write_text("[budget.chat]\\nmonthly_usd = 0\\n")
    >>> load_settings(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [budget.chat]: monthly_usd must be > 0, got 0
    """
    if isinstance(source, Settings):
        return source
    cfg = load_config(source)
    return _settings(cfg)


@functools.lru_cache(maxsize=32)
def _settings(cfg: Config) -> Settings:
    return Settings(config=cfg, budgets=_budgets(cfg), targets=_targets(cfg), reports=_reports(cfg))
