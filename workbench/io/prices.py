"""Model prices over time: the ``prices`` table, filled from ``genai-prices`` and the team's ``[[prices]]`` overrides.

One row of ``prices`` is the price of one model of one provider, per million tokens by token type, from an instant on
(``effective_from``) and above a context-size tier (``min_input_tokens``). :func:`load_prices` fills it:

* from the **bundled** data of the `genai-prices <https://github.com/pydantic/genai-prices>`_ package, never fetched:
  its background updater (``genai_prices.UpdatePrices``) is never started, and the bundled snapshot is read directly,
  so a snapshot that some other code in the process fetched does not leak in either. Each model's price history
  (``StartDateConstraint`` price changes) becomes one row per change, its time-of-day prices
  (``TimeOfDateConstraint``: DeepSeek's standard hours 00:30-16:30 UTC, off-peak discount the rest of the day) one row
  per window of the day (``time_of_day_from_s``), and its ``TieredPrices`` (price cliffs above N input tokens) one row
  per tier;
* from ``workbench.toml`` ``[[prices]]`` entries (team-negotiated prices, self-hosted or unknown models). An entry
  replaces the package's rows of the same provider, model and ``effective_from``. A file found is the truth for the
  overrides; when none is found, the override rows already in the table are kept (see :func:`load_prices`);
* for every (provider, model) pair seen in ``calls`` that genai-prices recognises under another name (a dated
  snapshot such as ``gpt-4o-2024-08-06``, an OpenTelemetry provider name such as ``aws.bedrock``), an alias copy of the
  matched model's rows under the names as they appear in ``calls``, so pricing a call is a plain equality join.
  Re-run :func:`load_prices` after loading calls with new model names. A model of calls without a provider that
  several providers price differently is named in a warning: such a call is priced by the first of them by name whose
  price is in force at its time (:mod:`workbench.metrics.cost`).

Conventions (each chosen to reproduce what ``genai_prices.calc_price`` charges):

* A genai-prices tier that starts at ``N`` applies when a call has *more than* ``N`` input tokens, to all tokens (a
  cliff), so it is stored as ``min_input_tokens = N + 1``.
* The price with no date constraint applies from ``1970-01-01`` (:data:`ALWAYS`).
* Which of a model's conditional prices applies at an instant is decided by the package's own
  ``ModelInfo.get_prices`` (the last listed price whose constraint holds), evaluated at the start of each (day,
  time-of-day window) piece; windows are in whole seconds of the day, UTC. genai-prices lists DeepSeek's off-peak
  price as the unconditional one and its standard price as the one of 00:30-16:30 UTC, so a deepseek-chat call at
  10:00 UTC is charged the standard 0.27 USD per million input tokens and one at 20:00 UTC the off-peak 0.135.
* ``cache_write_usd_per_mtok`` is the package's ``cache_write_mtok`` (Anthropic's 5-minute cache write); the 1-hour
  cache-write price, service-tier variants (flex, priority, batch) and non-token prices (web searches, audio
  seconds, pages) have no column here and are left out: such calls are priced at the standard token price.
* ``[[prices]]`` overrides apply all day.

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> n = load_prices(db, config=False)
>>> n > 1000
True
>>> row = db.sql("select input_usd_per_mtok, output_usd_per_mtok from prices "
...              "where provider = 'openai' and model = 'gpt-4o' order by effective_from desc limit 1")
>>> row.rows()
[(2.5, 10.0)]
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from workbench.config import Config
    from workbench.db import Workbench

ALWAYS = _dt.datetime(1970, 1, 1)
PACKAGE = "genai-prices"
OVERRIDE_MARK = "[[prices]]"
PRICE_COLUMNS = ("input_usd_per_mtok", "output_usd_per_mtok", "cache_read_usd_per_mtok", "cache_write_usd_per_mtok")
# genai-prices price key -> our column
_KEYS = {
    "input_mtok": "input_usd_per_mtok",
    "output_mtok": "output_usd_per_mtok",
    "cache_read_mtok": "cache_read_usd_per_mtok",
    "cache_write_mtok": "cache_write_usd_per_mtok",
}
_OVERRIDE_KEYS = {
    "provider", "model", "effective_from", "min_input_tokens", "note", *PRICE_COLUMNS,
}


def package_version() -> str:
    """Version of the installed genai-prices package.

    Examples
    --------
    >>> import re
    >>> bool(re.fullmatch(r"\\d+\\.\\d+.*", package_version()))
    True
    """
    from importlib.metadata import version

    return version("genai-prices")


def package_source() -> str:
    """The ``source`` written on package rows, e.g. ``"genai-prices 0.2.3"``.

    Examples
    --------
    >>> package_source() == f"genai-prices {package_version()}"
    True
    """
    return f"{PACKAGE} {package_version()}"


def bundled_providers() -> list[Any]:
    """The providers of the genai-prices data bundled with the installed package (never a fetched update).

    Examples
    --------
    >>> providers = bundled_providers()
    >>> {"openai", "anthropic"} <= {p.id for p in providers}
    True
    """
    # The bundled snapshot, not get_snapshot(): the latter returns whatever UpdatePrices last fetched from the network.
    from genai_prices import data_snapshot

    return data_snapshot._bundled_snapshot().providers


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _price_at(value: Any, input_tokens: int) -> float | None:
    """The price of one key for a call with ``input_tokens`` input tokens (genai-prices' cliff rule: start < tokens)."""
    from genai_prices.types import TieredPrices

    if value is None:
        return None
    if isinstance(value, TieredPrices):
        price = value.base
        for tier in sorted(value.tiers, key=lambda t: t.start):
            if input_tokens > tier.start:
                price = tier.price
        return float(price)
    return float(value)


def _tier_rows(model_price: Any) -> list[dict[str, Any]]:
    """One row per context-size tier of a genai-prices ``ModelPrice`` (tier 0 first)."""
    from genai_prices.types import TieredPrices

    values = {col: getattr(model_price, key, None) for key, col in _KEYS.items()}
    if values["input_usd_per_mtok"] is None and values["output_usd_per_mtok"] is None:
        return []  # not priced per token (pages, audio hours, searches)
    starts = sorted({t.start for v in values.values() if isinstance(v, TieredPrices) for t in v.tiers})
    rows = []
    for min_tokens in [0, *(s + 1 for s in starts)]:
        rows.append({"min_input_tokens": min_tokens} | {col: _price_at(v, min_tokens) for col, v in values.items()})
    return rows


def _seconds_of_day(value: Any) -> int:
    """A genai-prices time of day as whole seconds after midnight UTC (a naive time is UTC, as genai-prices reads it)."""
    if value.tzinfo is not None:
        value = _dt.datetime.combine(_dt.date(1970, 1, 1), value).astimezone(_dt.timezone.utc).time()
    return value.hour * 3600 + value.minute * 60 + value.second


def _model_history(model: Any) -> list[tuple[_dt.datetime, int | None, Any]]:
    """(effective_from, time_of_day_from_s, ModelPrice) for each price of a genai-prices model, oldest first.

    The model's conditional prices cut time into price-change days (``StartDateConstraint``) and, within each day,
    time-of-day windows (``TimeOfDateConstraint``, e.g. DeepSeek's standard hours 00:30-16:30 UTC, its off-peak price
    the rest of the day). Each piece is priced by the package's own ``ModelInfo.get_prices`` at its first instant, so
    the rows reproduce what ``calc_price`` charges at any instant; adjacent windows of the same price are merged. A day
    with one price is one row with ``time_of_day_from_s`` None (all day).
    """
    from genai_prices.types import ModelPrice, StartDateConstraint, TimeOfDateConstraint

    if isinstance(model.prices, ModelPrice):
        return [(ALWAYS, None, model.prices)]
    days = sorted({ALWAYS.date(), *(cp.constraint.start_date for cp in model.prices
                                    if isinstance(cp.constraint, StartDateConstraint))})
    edges = sorted({0, *(_seconds_of_day(t) % 86400 for cp in model.prices
                         if isinstance(cp.constraint, TimeOfDateConstraint)
                         for t in (cp.constraint.start_time, cp.constraint.end_time))})
    out: list[tuple[_dt.datetime, int | None, Any]] = []
    for day in days:
        windows: list[tuple[int, Any]] = []
        for s in edges:
            at = _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc) + _dt.timedelta(seconds=s)
            price = model.get_prices(at)
            if not windows or windows[-1][1] != price:
                windows.append((s, price))
        start = _dt.datetime(day.year, day.month, day.day)
        if len(windows) == 1:
            out.append((start, None, windows[0][1]))
        else:
            out.extend((start, s, price) for s, price in windows)
    return out


def _model_rows(provider_id: str, model_name: str, model: Any, source: str) -> list[dict[str, Any]]:
    rows = []
    for effective_from, time_of_day_from_s, model_price in _model_history(model):
        for r in _tier_rows(model_price):
            rows.append({"provider": provider_id, "model": model_name, "effective_from": effective_from,
                         "time_of_day_from_s": time_of_day_from_s} | r | {"source": source})
    return rows


def package_rows(*, observed: list[tuple[str | None, str]] = ()) -> list[dict[str, Any]]:
    """The ``prices`` rows of the bundled genai-prices data, plus alias rows for ``observed`` (provider, model) pairs.

    Parameters
    ----------
    observed : list of (provider or None, model)
        Names as they appear in ``calls``. A pair genai-prices recognises (through its own model-matching rules) gets a
        copy of the matched model's rows under these names; a pair without a provider gets the provider that
        genai-prices infers from the model name.

    Examples
    --------
    >>> rows = package_rows(observed=[("openai", "gpt-4o-2024-08-06")])
    >>> [r["input_usd_per_mtok"] for r in rows if r["model"] == "gpt-4o-2024-08-06"]
    [2.5]
    """
    source = package_source()
    providers = bundled_providers()
    rows: list[dict[str, Any]] = []
    for p in providers:
        for m in p.models:
            rows.extend(_model_rows(p.id, m.id, m, source))
    have = {(r["provider"], r["model"]) for r in rows}
    for provider, model_name in observed:
        if model_name is None or (provider, model_name) in have:
            continue
        match = match_model(providers, provider, model_name)
        if match is None:
            continue
        p, m = match
        rows.extend(_model_rows(provider or p.id, model_name, m, f"{source} (as {p.id}/{m.id})"))
        have.add((provider or p.id, model_name))
    return rows


def match_model(providers: list[Any], provider: str | None, model_name: str) -> tuple[Any, Any] | None:
    """genai-prices' own lookup of a (provider, model) pair, or None. Never guesses another provider than named.

    Examples
    --------
    >>> providers = bundled_providers()
    >>> [(p.id, m.id) for p, m in (match_model(providers, "openai", "gpt-4o-2024-08-06"),
    ...                            match_model(providers, "x_ai", "grok-3"),  # OpenTelemetry's name of x-ai
    ...                            match_model(providers, None, "claude-3-5-sonnet-20241022"))]
    [('openai', 'gpt-4o'), ('x-ai', 'grok-3'), ('anthropic', 'claude-3-5-sonnet')]
    >>> match_model(providers, "acme", "gpt-4o"), match_model(providers, "openai", "no-such-model")
    (None, None)
    """
    from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id

    if provider is None:
        try:
            return DataSnapshot(providers=providers, from_auto_update=False).find_provider_model(
                model_name, None, None, None)
        except LookupError:
            return None
    # OpenTelemetry names some providers with an underscore (x_ai) where genai-prices uses a hyphen (x-ai).
    for pid in dict.fromkeys([provider, provider.replace("_", "-")]):
        p = find_provider_by_id(providers, pid)
        if p is not None:
            m = p.find_model(model_name, all_providers=providers)
            return (p, m) if m is not None else None
    return None


def _as_datetime(value: Any, where: str, cfg: "Config") -> _dt.datetime:
    from workbench.config import ConfigError

    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return _as_datetime(_dt.datetime.fromisoformat(value), where, cfg)
        except ValueError:
            pass
    raise ConfigError(f"{cfg.where(where)}: effective_from must be a TOML date (2025-01-01), got {value!r}")


def price_overrides(config: "str | os.PathLike | Config | None" = None) -> list[dict[str, Any]]:
    """The validated ``[[prices]]`` entries of ``workbench.toml`` as ``prices`` rows.

    Each entry needs ``provider``, ``model``, ``input_usd_per_mtok`` and ``output_usd_per_mtok``; optional are
    ``cache_read_usd_per_mtok`` and ``cache_write_usd_per_mtok`` (null: charged at the input price),
    ``effective_from`` (a TOML date; default 1970-01-01, i.e. always), ``min_input_tokens`` (default 0) and ``note``.
    A wrong entry raises :class:`~workbench.config.ConfigError` naming the file, the entry and the key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text('[[prices]]\\nprovider = "azure"\\nmodel = "m"\\ninput_usd_per_mtok = 0.5\\n'
    ...                  'output_usd_per_mtok = 1.5\\neffective_from = 2023-01-01\\n')
    >>> row = price_overrides(p)[0]
    >>> row["effective_from"], row["input_usd_per_mtok"], row["cache_read_usd_per_mtok"], row["source"]
    (datetime.datetime(2023, 1, 1, 0, 0), 0.5, None, 'workbench.toml [[prices]] #1')
    """
    from workbench.config import ConfigError, load_config

    cfg = load_config(config)
    entries = cfg.data.get("prices", [])
    if isinstance(entries, dict):
        raise ConfigError(f"{cfg.where('prices')}: write price overrides as [[prices]] (an array of tables)")
    if not isinstance(entries, list):
        raise ConfigError(f"{cfg.where('prices')}: expected [[prices]] entries, got {type(entries).__name__}")
    fname = cfg.path.name if cfg.path else "workbench.toml"
    rows = []
    seen: set[tuple[Any, ...]] = set()
    for i, e in enumerate(entries):
        where = f"prices #{i + 1}"
        if not isinstance(e, dict):
            raise ConfigError(f"{cfg.where(where)}: expected a table, got {e!r}")
        unknown = sorted(set(e) - _OVERRIDE_KEYS)
        if unknown:
            raise ConfigError(f"{cfg.where(where)}: unknown key {unknown[0]!r}; expected one of {sorted(_OVERRIDE_KEYS)}")
        for key in ("provider", "model"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                raise ConfigError(f"{cfg.where(where)}: {key} must be a non-empty string, got {e.get(key)!r}")
        row: dict[str, Any] = {"provider": e["provider"], "model": e["model"]}
        for col in PRICE_COLUMNS:
            required = col in ("input_usd_per_mtok", "output_usd_per_mtok")
            row[col] = cfg.number(e, col, where, lo=0, default=... if required else None)
        row["effective_from"] = _as_datetime(e["effective_from"], where, cfg) if "effective_from" in e else ALWAYS
        tokens = e.get("min_input_tokens", 0)
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ConfigError(f"{cfg.where(where)}: min_input_tokens must be an integer >= 0, got {tokens!r}")
        row["min_input_tokens"] = tokens
        row["time_of_day_from_s"] = None  # all day
        if "note" in e and not isinstance(e["note"], str):
            raise ConfigError(f"{cfg.where(where)}: note must be a string, got {e['note']!r}")
        key = (row["provider"], row["model"], row["effective_from"], row["min_input_tokens"])
        if key in seen:
            raise ConfigError(f"{cfg.where(where)}: duplicate price for {row['provider']}/{row['model']} "
                              f"from {row['effective_from']:%Y-%m-%d} (min_input_tokens {tokens})")
        seen.add(key)
        note = f": {e['note']}" if e.get("note") else ""
        row["source"] = f"{fname} {OVERRIDE_MARK} #{i + 1}{note}"
        rows.append(row)
    return rows


def _warn_providers_disagree(con: Any, models: list[str]) -> None:
    """Warn for each of ``models`` (those of calls without a provider) that several providers price differently (at
    their latest price, first tier, first window of the day): which provider prices such a call depends on the rule
    of :func:`workbench.metrics.cost.priced_calls` (the first by name whose price is in force), which the team may not
    expect."""
    import warnings

    if not models:
        return
    rows = con.execute("""
        WITH latest AS (
          SELECT provider, model, input_usd_per_mtok AS i, output_usd_per_mtok AS o, cache_read_usd_per_mtok AS cr,
                 cache_write_usd_per_mtok AS cw,
                 row_number() OVER (PARTITION BY provider, model ORDER BY effective_from DESC,
                   coalesce(min_input_tokens, 0), coalesce(time_of_day_from_s, 0), source) AS k
          FROM prices WHERE model IN (SELECT unnest(?::VARCHAR[])))
        SELECT model, list(DISTINCT provider ORDER BY provider) FROM latest WHERE k = 1 GROUP BY model
        HAVING count(DISTINCT (i, o, cr, cw)) > 1 ORDER BY model""", [models]).fetchall()
    for model, providers in rows:
        warnings.warn(f"prices: model {model!r} is priced differently by {', '.join(providers)}; a call of it without "
                      f"a provider is priced by the first of them by name whose price is in force at the call's time "
                      f"(set the calls' provider)", stacklevel=3)


class PriceRefresh(int):
    """What :func:`load_prices` did: the number of rows written (an ``int``), the ``workbench.toml`` whose
    ``[[prices]]`` it read (``config``; None when none was found, or with ``config=False``), the overrides written from
    it (``overrides``) and the override rows already in the table that it kept because no file was found (``kept``).

    >>> r = PriceRefresh(2613, config=None, overrides=0, kept=1)
    >>> r + 0
    2613
    >>> r.sentence
    'prices: 2,613 rows refreshed (genai-prices); no workbench.toml found (neither $WORKBENCH_CONFIG nor ./workbench.toml): 1 [[prices]] override row kept as it was in the table (--config names the file)'
    >>> PriceRefresh(2614, config="/srv/team/workbench.toml", overrides=2).sentence
    'prices: 2,614 rows refreshed (genai-prices and 2 [[prices]] overrides of /srv/team/workbench.toml)'
    """

    config: str | None
    overrides: int
    kept: int
    package_only: bool

    def __new__(cls, n: int, *, config: str | None = None, overrides: int = 0, kept: int = 0,
                package_only: bool = False) -> "PriceRefresh":
        self = super().__new__(cls, n)
        self.config, self.overrides, self.kept, self.package_only = config, overrides, kept, package_only
        return self

    @property
    def sentence(self) -> str:
        """One line for the CLI: the rows written and where the overrides came from."""
        n = int(self)
        if self.package_only:
            return f"prices: {n:,} rows refreshed (genai-prices only; the [[prices]] overrides removed)"
        if self.config is not None:
            k = self.overrides
            what = f"{k} [[prices]] override{'s' if k != 1 else ''}" if k else "no [[prices]] override"
            return f"prices: {n:,} rows refreshed (genai-prices and {what} of {self.config})"
        k = self.kept
        kept = f"{k} [[prices]] override row{'s' if k != 1 else ''} kept as it was in the table" if k else \
            "no [[prices]] override in the table"
        return (f"prices: {n:,} rows refreshed (genai-prices); no workbench.toml found (neither $WORKBENCH_CONFIG "
                f"nor ./workbench.toml): {kept} (--config names the file)")


def load_prices(db: "Workbench | str | os.PathLike", *, config: "str | os.PathLike | Config | None | bool" = None) -> PriceRefresh:
    """Fill the ``prices`` table from the bundled genai-prices data and the ``workbench.toml`` overrides.

    Idempotent: the rows a previous run wrote (``source`` starting with ``genai-prices`` or holding ``[[prices]]``) are
    replaced, in one transaction; rows from any other source are kept. A ``workbench.toml`` that is found is the truth
    for the overrides: an entry removed from it is removed from the table. When **no** file is found (a scheduled
    ``workbench ingest`` started in another folder, with no ``$WORKBENCH_CONFIG``), the override rows already in the
    table are kept (only genai-prices' rows are replaced): a missing file does not mean "no contract prices", and
    deleting them silently flipped budgets. A model of the calls that name no provider, priced differently by
    several providers, is named in a warning (such a call is priced by the first of them by name whose price is in
    force at its time).

    Parameters
    ----------
    db : Workbench or path
    config : path, Config, None or False
        ``workbench.toml`` with ``[[prices]]`` overrides (default: the one the database was opened with, else
        ``$WORKBENCH_CONFIG`` or ``./workbench.toml`` when present); ``False`` for the package prices only (the
        override rows are removed).

    Returns
    -------
    PriceRefresh
        Rows written (an ``int``), with the file read and the override rows kept (:class:`PriceRefresh`).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, status, provider, model) values "
    ...                       "('a', '2025-01-01', 'ok', 'openai', 'gpt-4o-2024-08-06')")
    >>> load_prices(db, config=False) == load_prices(db, config=False)
    True
    >>> db.sql("select count(*) as n from prices where model = 'gpt-4o-2024-08-06'")["n"].item()
    1
    """
    import polars as pl

    from workbench.config import load_config
    from workbench.db import as_workbench, rollback

    db = as_workbench(db)
    if config is None:
        config = getattr(db, "_config", None)
    cfg = None if config is False else load_config(config)
    # a file found (or a Config given that declares [[prices]]) says which overrides hold; none found says nothing
    found = cfg is not None and (cfg.path is not None or "prices" in cfg.data)
    observed = [tuple(r) for r in db.calls.select("provider", "model").distinct().to_polars().rows()]
    rows = package_rows(observed=observed)
    overrides = price_overrides(cfg) if found else []
    con = db.duckdb
    cols = ["provider", "model", "effective_from", "time_of_day_from_s", "min_input_tokens", *PRICE_COLUMNS, "source"]
    kept: list[tuple] = []
    if cfg is not None and not found:
        kept = con.execute("SELECT provider, model, effective_from FROM prices WHERE source LIKE ?",
                           [f"%{OVERRIDE_MARK}%"]).fetchall()
    replaced = {(o["provider"], o["model"], o["effective_from"]) for o in overrides} | set(kept)
    rows = [r for r in rows if (r["provider"], r["model"], r["effective_from"]) not in replaced] + overrides
    df = pl.DataFrame(rows, schema={"provider": pl.String, "model": pl.String, "effective_from": pl.Datetime("us"),
                                    "time_of_day_from_s": pl.Int32, "min_input_tokens": pl.Int64,
                                    **{c: pl.Float64 for c in PRICE_COLUMNS}, "source": pl.String}).select(cols)
    con.execute("BEGIN TRANSACTION")
    try:
        if kept:
            con.execute("DELETE FROM prices WHERE source LIKE ?", [f"{PACKAGE}%"])
        else:
            con.execute("DELETE FROM prices WHERE source LIKE ? OR source LIKE ?", [f"{PACKAGE}%", f"%{OVERRIDE_MARK}%"])
        con.register("_wb_new_prices", df.to_arrow())
        con.execute(f"INSERT INTO prices ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _wb_new_prices")
        con.unregister("_wb_new_prices")
        con.execute("COMMIT")
    except Exception:
        rollback(con)
        raise
    _warn_providers_disagree(con, sorted({m for pr, m in observed if pr is None and m is not None}))
    path = (str(Path(cfg.path).resolve()) if cfg.path is not None else "the config given") if found else None
    return PriceRefresh(df.height, config=path, overrides=len(overrides), kept=len(kept), package_only=config is False)
