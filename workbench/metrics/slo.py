"""SLOs, error budgets and multi-window multi-burn-rate alerts, declared in ``workbench.toml``.

The ``[slo.<feature>]`` tables declare, per feature::

    [slo.support_assistant]
    latency_ms = 2000            # latency SLO threshold (with latency_target)
    latency_target = 0.95        # share of calls at or under it (with latency_ms)
    availability_target = 0.995  # share of calls that succeed
    ttft_p95_ms = 800            # p95 time to first token objective
    window_days = 30             # 28 or 30 (default 30)

Each objective is optional; a table declares at least one. Each becomes one :class:`Slo` per SLI, a share of good
requests among valid ones. A request is the outermost span of a GenAI convention: a call whose parent is not such a
span in ``calls`` (``parent_id`` null, its parent not loaded, or a span of no GenAI convention, operation ``other``,
such as the web server's ``POST /chat`` around it): what a user waited for. Spans of operation ``other`` (HTTP,
database, health checks) are never requests. An agent task counts once, by its ``invoke_agent`` root span, not by each
chat and tool step inside it.

* ``latency``: good = ``latency_ms <= latency_ms``, over the calls of the feature with a latency and its timeouts
  (a timeout without a latency is a bad call: it was not served under any threshold; in the observed percentile,
  ``observed_ms``, it counts as infinitely slow, so the percentile and the attainment agree).
* ``availability``: good = status ``ok`` *or* ``blocked``, over all calls of the feature: a guardrail block is the
  system working as designed, not an outage; errors and timeouts are bad.
* ``ttft``: good = ``ttft_ms <= ttft_p95_ms``, objective 0.95, over the calls with a TTFT ("p95 under 800 ms" is
  "95% of calls under 800 ms").

The error budget is ``1 - objective``; over the rolling window (``window_days``, ending at ``at``) the budget
consumed is the bad fraction divided by the budget. The alerts are the Google SRE workbook's multi-window
multi-burn-rate alerts as sloth generates them: burn rate = error rate / (1 - objective), and an alert fires when
the burn rate over *both* its long and its short window exceeds its factor:

======== ====== ===== ============= ========== ==========
severity long   short budget spent  factor 30d factor 28d
======== ====== ===== ============= ========== ==========
page     1h     5m    2%            14.4       13.44
page     6h     30m   5%            6          5.6
ticket   1d     2h    10%           3          2.8
ticket   3d     6h    10%           1          0.933
======== ====== ===== ============= ========== ==========

(factor = budget spent x SLO period / long window.) Windows are half-open ``(at - w, at]``. An SLO not met over
its whole window (its error budget spent) is a breach: :func:`slo_status` fires a ticket for it, ``budget spent
30d``, even when no burn-rate window still sees the errors that spent it.

Examples
--------
>>> import tempfile, pathlib, workbench as wb
>>> cfg = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
>>> _ = cfg.write_text("[slo.chat]\\nlatency_ms = 1000\\nlatency_target = 0.9\\navailability_target = 0.99\\n")
>>> [(s.feature, s.sli, s.objective) for s in load_slos(cfg)]
[('chat', 'latency', 0.9), ('chat', 'availability', 0.99)]
"""

from __future__ import annotations

from workbench.errors import NotDeclaredError, ParameterError

import datetime as dt
import math
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.config import Config, ConfigError, load_config
from workbench.io.spans import OTHER_OPERATION
from workbench.schema import utc_now

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

SLIS = ("latency", "availability", "ttft")
_KEYS = ("latency_ms", "latency_target", "availability_target", "ttft_p95_ms", "window_days")
WINDOW_DAYS = (28, 30)
STEP = dt.timedelta(minutes=5)
# (severity, long window, short window, share of the period's budget spent when the long window fires): the SRE
# workbook's table, which sloth implements; the factor is derived from it so 28-day SLOs scale as sloth scales them.
ALERT_WINDOWS = (
    ("page", dt.timedelta(hours=1), dt.timedelta(minutes=5), 0.02),
    ("page", dt.timedelta(hours=6), dt.timedelta(minutes=30), 0.05),
    ("ticket", dt.timedelta(days=1), dt.timedelta(hours=2), 0.10),
    ("ticket", dt.timedelta(days=3), dt.timedelta(hours=6), 0.10),
)


@dataclass(frozen=True)
class Slo:
    """One service level objective: a feature, an SLI, the objective and (latency, ttft) the threshold.

    Examples
    --------
    >>> import datetime as dt, workbench as wb
    >>> s = Slo("chat", "latency", objective=0.95, threshold_ms=1000.0, window_days=30)
    >>> round(s.error_budget, 6), s.burn_factor(0.02, dt.timedelta(hours=1))  # the 1h page alert's factor
    (0.05, 14.4)
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...                       "('a', '2026-01-01', 'chat', 'ok', 500), ('b', '2026-01-01', 'chat', 'ok', 1500),"
    ...                       "('c', '2026-01-01', 'chat', 'error', null),"
    ...                       "('d', '2026-01-01', 'chat', 'timeout', null)")
    >>> t = db.calls
    >>> t.filter(s.valid(t)).count().execute(), t.filter(s.valid(t) & s.good(t)).count().execute()  # a, b, d; a
    (3, 1)
    """

    feature: str
    sli: str
    objective: float
    threshold_ms: float | None
    window_days: int
    source: str = ""

    @property
    def error_budget(self) -> float:
        return 1.0 - self.objective

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(days=self.window_days)

    def valid(self, t: "ir.Table") -> "ir.BooleanValue":
        """Calls this SLI counts (the denominator)."""
        cond = t.feature == self.feature
        if self.sli == "latency":
            # a timeout without a latency (a log that records no duration for a request it gave up on) was slower
            # than any threshold: left out, half the calls timing out read as a latency SLO met
            return cond & (t.latency_ms.notnull() | (t.status == "timeout"))
        if self.sli == "ttft":
            return cond & t.ttft_ms.notnull()
        return cond

    def good(self, t: "ir.Table") -> "ir.BooleanValue":
        """Valid calls that meet the objective (the numerator)."""
        if self.sli == "latency":
            return (t.latency_ms <= self.threshold_ms).fill_null(False)
        if self.sli == "ttft":
            return t.ttft_ms <= self.threshold_ms
        return t.status.isin(["ok", "blocked"])

    def burn_factor(self, budget_spent: float, long_window: dt.timedelta) -> float:
        """Burn-rate factor that spends ``budget_spent`` of the period's budget in ``long_window``."""
        return budget_spent * self.window / long_window


def _target(cfg: Config, table: dict, key: str, where: str) -> float:
    v = cfg.number(table, key, where, lo=0, hi=1)
    if not 0 < v < 1:
        raise ConfigError(f"{cfg.where(where)}: {key} must be strictly between 0 and 1 (a target of 1 leaves no error "
                          f"budget), got {table[key]!r}")
    return v


def _positive(cfg: Config, table: dict, key: str, where: str) -> float:
    v = cfg.number(table, key, where, lo=0)
    if v <= 0:
        raise ConfigError(f"{cfg.where(where)}: {key} must be a positive number of milliseconds, got {table[key]!r}")
    return v


def load_slos(config: "str | os.PathLike | Config | None" = None) -> list[Slo]:
    """Read and validate the ``[slo.<feature>]`` tables of ``workbench.toml``.

    Parameters
    ----------
    config : path or Config, optional
        The file (default: ``$WORKBENCH_CONFIG``, else ``./workbench.toml``) or an already loaded config.

    Returns
    -------
    list of Slo
        One per feature and SLI declared, in file order: latency (``latency_ms`` with ``latency_target``),
        availability (``availability_target``), ttft (``ttft_p95_ms``). Each is optional; a table must declare one.

    Raises
    ------
    ConfigError
        Naming the file, the ``[slo.<feature>]`` table and the key: a threshold without its target (or the other way
        round), a table with no objective, an unknown key, a target
        outside (0, 1), a threshold that is not a positive number, ``window_days`` other than 28 or 30.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[slo.chat]\\nlatency_ms = 2000\\nlatency_target = 0.95\\navailability_target = 0.995\\n"
    ...                  "ttft_p95_ms = 800\\nwindow_days = 28\\n")
    >>> [(s.sli, s.objective, s.threshold_ms, s.window_days) for s in load_slos(p)]
    [('latency', 0.95, 2000.0, 28), ('availability', 0.995, None, 28), ('ttft', 0.95, 800.0, 28)]
    >>> _ = p.write_text("[slo.chat]\\nlatency_ms = 2000\\nlatency_target = 1.5\\navailability_target = 0.995\\n")
    >>> load_slos(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [slo.chat]: latency_target must be in [0, 1], got 1.5
    >>> _ = p.write_text("[slo.chat]\\navailability_target = 0.995\\n")  # one objective alone
    >>> [(s.sli, s.objective) for s in load_slos(p)]
    [('availability', 0.995)]
    """
    cfg = load_config(config)
    out: list[Slo] = []
    for feature, table in cfg.section("slo").items():
        where = f"slo.{feature}"
        if not isinstance(table, dict):
            raise ConfigError(f"{cfg.where(where)}: expected a table of SLO keys, got {table!r}")
        cfg.refuse_unknown(table, where, _KEYS)
        days = cfg.number(table, "window_days", where, default=30)
        if days not in WINDOW_DAYS:
            raise ConfigError(f"{cfg.where(where)}: window_days must be 28 or 30 (the burn-rate factors are defined "
                              f"for those), got {table['window_days']!r}")
        days = int(days)
        src = cfg.where(where)
        # Each objective stands alone (a team may promise latency and not availability): the latency objective is
        # its threshold and its target together, one without the other is an error naming the missing key.
        if "latency_ms" in table or "latency_target" in table:
            out.append(Slo(feature, "latency", _target(cfg, table, "latency_target", where),
                           _positive(cfg, table, "latency_ms", where), days, src))
        if "availability_target" in table:
            out.append(Slo(feature, "availability", _target(cfg, table, "availability_target", where), None, days,
                           src))
        if not {"latency_ms", "latency_target", "availability_target", "ttft_p95_ms"} & set(table):
            raise ConfigError(f"{src}: declares no objective; give latency_ms with latency_target, "
                              f"availability_target, or ttft_p95_ms")
        if "ttft_p95_ms" in table:
            out.append(Slo(feature, "ttft", 0.95, _positive(cfg, table, "ttft_p95_ms", where), days, src))
    return out


def _slos_or_fail(config: Any, db: Any = None) -> tuple[Config, list[Slo]]:
    # default: the settings the database was opened with (wb.connect(path, config=...))
    cfg = load_config(config if config is not None else getattr(db, "settings", None))
    slos = load_slos(cfg)
    if not slos:
        raise NotDeclaredError(f"{cfg.where('slo')}: no SLOs declared (add a [slo.<feature>] table)")
    return cfg, slos


def _resolve_at(db, at: Any) -> dt.datetime:
    from workbench.metrics.core import as_timestamp

    if at is not None:
        return as_timestamp(at)
    # the clock, not the newest call: a row dated in the future must not move the window away from today's calls
    return utc_now(seconds=True)


def _requests(db) -> "ir.Table":
    """The calls a user waited for: the outermost spans of a GenAI convention, those whose parent is not such a span
    of ``calls`` (a span that names itself as its parent, as a broken tracer may, has none: it counts).

    A span of no GenAI convention (operation ``other``: the web server's ``POST /chat`` around the model call, a
    ``GET /healthz`` probe, a database query) is never a request, and does not hide the model call under it: an SLO
    counted the HTTP span (or nothing, where it named another feature) instead of the calls it contains, and 2,880
    health checks an hour diluted a total outage of 60 calls to 98% availability.
    """
    from workbench.metrics.core import outermost

    c = db.calls
    c = c.filter(c.operation.isnull() | (c.operation != OTHER_OPERATION))
    return outermost(c, c)


def _observed(slo: Slo, t: "ir.Table") -> "ir.FloatingValue | None":
    """The duration whose percentile is ``observed_ms``, for the calls :meth:`Slo.valid` counts; None for
    availability. A timeout without a latency, a bad call of the latency SLI, is infinitely slow here too: left out,
    the percentile read under the threshold of an SLO its timeouts missed."""
    import ibis

    if slo.sli == "latency":
        return t.latency_ms.cast("float64").fill_null(ibis.literal(math.inf, "float64"))
    if slo.sli == "ttft":
        return t.ttft_ms.cast("float64")
    return None


def slo_report(db, *, config: Any = None, at: Any = None) -> "pl.DataFrame":
    """Attainment and error budget of every SLO over its rolling window ``(at - window_days, at]``.

    One Ibis aggregate over the calls computes every SLO's good and valid counts (and the observed percentile).

    Parameters
    ----------
    db : Workbench or path
    config : path or Config, optional
        ``workbench.toml`` (see :func:`load_slos`).
    at : datetime or ISO string, optional
        End of the window; default: now (the clock, UTC).

    Returns
    -------
    polars.DataFrame
        One row per feature and SLI: ``feature, sli, objective, threshold_ms, window_days, window_start,
        window_end, n`` (valid calls), ``good``, ``sli_value`` (good / n), ``met`` (sli_value >= objective),
        ``observed_ms`` (the objective's percentile of the latencies or TTFTs of the valid calls, e.g. p95 for 0.95;
        a timeout without a latency, which the latency SLI counts bad, counts as infinitely slow, so a percentile
        that falls among such timeouts is ``inf``, as an SLO they miss is not met, null in JSON output; null for
        availability),
        ``error_budget`` (1 - objective), ``budget_consumed`` (bad share / budget; above 1 the budget is spent) and
        ``budget_remaining`` (1 - consumed). An SLO without calls has n = 0, null values and warns
        :class:`~workbench.metrics.UndefinedMetricWarning`.

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> cfg = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = cfg.write_text("[slo.chat]\\nlatency_ms = 1000\\nlatency_target = 0.5\\navailability_target = 0.5\\n")
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...     "('a', '2026-01-01 10:00', 'chat', 'ok', 500), ('b', '2026-01-01 11:00', 'chat', 'blocked', 800),"
    ...     "('c', '2026-01-01 12:00', 'chat', 'error', 3000), ('d', '2026-01-01 13:00', 'chat', 'ok', 1500)")
    >>> slo_report(db, config=cfg, at="2026-01-01 13:00")[["sli", "n", "sli_value", "met", "budget_consumed"]].rows()  # bad 2/4 -> .5 / .5
    [('latency', 4, 0.5, True, 1.0), ('availability', 4, 0.75, True, 0.5)]
    """
    import ibis
    import polars as pl

    from workbench.db import as_workbench
    from workbench.metrics.core import UndefinedMetricWarning, to_polars, warn_unknown_features

    cfg, slos = _slos_or_fail(config, db)
    db = as_workbench(db)
    at = _resolve_at(db, at)
    t = _requests(db)
    earliest = at - max(s.window for s in slos)
    t = t.filter(t.ts > earliest, t.ts <= at, t.feature.isin(sorted({s.feature for s in slos})))
    aggs: dict[str, Any] = {}
    for i, s in enumerate(slos):
        valid = s.valid(t) & (t.ts > ibis.literal(at - s.window))
        aggs[f"n{i}"] = t.count(where=valid)
        aggs[f"g{i}"] = t.count(where=valid & s.good(t).fill_null(False))
        observed = _observed(s, t)
        if observed is not None:
            aggs[f"p{i}"] = observed.quantile(s.objective, where=valid)
    row = to_polars(t.aggregate(**aggs)).row(0, named=True)
    rows = []
    for i, s in enumerate(slos):
        n, good = int(row[f"n{i}"] or 0), int(row[f"g{i}"] or 0)
        value = good / n if n else None
        consumed = (1 - value) / s.error_budget if n else None
        rows.append({
            "feature": s.feature, "sli": s.sli, "objective": s.objective, "threshold_ms": s.threshold_ms,
            "window_days": s.window_days, "window_start": at - s.window, "window_end": at, "n": n, "good": good,
            "sli_value": value, "met": None if value is None else value >= s.objective,
            "observed_ms": row.get(f"p{i}") if n else None, "error_budget": s.error_budget,
            "budget_consumed": consumed, "budget_remaining": None if consumed is None else 1 - consumed,
        })
        if not n:
            warnings.warn(f"slo_report: no calls for {s.feature} {s.sli} in ({at - s.window}, {at}]; value is null",
                          UndefinedMetricWarning, stacklevel=2)
    # a feature none of whose SLIs saw a call in the window: is it one no call has at all (a typo)? and calls of the
    # window under another spelling of a declared feature (renamed, re-cased): not measured by its SLO
    warn_unknown_features(db, {s.feature: cfg.where(f"slo.{s.feature}") for s in slos}, window=(earliest, at))
    schema = {"threshold_ms": pl.Float64, "sli_value": pl.Float64, "met": pl.Boolean, "observed_ms": pl.Float64,
              "budget_consumed": pl.Float64, "budget_remaining": pl.Float64, "window_start": pl.Datetime("us"),
              "window_end": pl.Datetime("us"), "n": pl.Int64, "good": pl.Int64}
    return pl.DataFrame(rows, schema_overrides=schema)


def _window_label(w: dt.timedelta) -> str:
    s = int(w.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def burn_rate_alerts(db, *, config: Any = None, at: Any = None, lookback_days: float = 3) -> "pl.DataFrame":
    """Multi-window multi-burn-rate alerts (SRE workbook, sloth) for every SLO, evaluated at ``at``.

    Calls of the last ``lookback_days`` + 3 days are counted in 5-minute bins anchored at ``at`` by one Ibis
    aggregate; every window is a sum of whole bins, so the alerts are also evaluated at each 5-minute step back over
    ``lookback_days`` to find since when a firing alert has fired without a break.

    Parameters
    ----------
    db : Workbench or path
    config : path or Config, optional
        ``workbench.toml`` (see :func:`load_slos`).
    at : datetime or ISO string, optional
        Evaluation time; default: now (the clock, UTC).
    lookback_days : float
        How far back ``firing_since`` looks (default 3 days).

    Returns
    -------
    polars.DataFrame
        One row per SLO and alert window: ``feature, sli, objective, severity`` (page / ticket), ``long_window,
        short_window, factor, long_burn, short_burn`` (error rate / (1 - objective); null without calls),
        ``firing`` (both burns > factor), ``firing_since``: the earliest 5-minute step from which the alert has
        fired at every step up to ``at`` (equal to ``at - lookback_days`` + 5 min when it fired through the whole
        look-back: "at least since"); null when not firing.

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> cfg = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = cfg.write_text("[slo.chat]\\nlatency_ms = 1000\\nlatency_target = 0.9\\navailability_target = 0.999\\n")
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...     "('a', '2026-01-01 09:58', 'chat', 'ok', 500), ('b', '2026-01-01 09:59', 'chat', 'error', 800),"
    ...     "('c', '2026-01-01 10:00', 'chat', 'ok', 300)")
    >>> a = burn_rate_alerts(db, config=cfg, at="2026-01-01 10:00")
    >>> a.filter(a["sli"] == "availability")[["severity", "long_window", "factor", "long_burn", "firing"]].rows()
    ... # 1 bad of 3 calls: 0.3333 / 0.001
    [('page', '1h', 14.4, 333.333333, True), ('page', '6h', 6.0, 333.333333, True),
     ('ticket', '1d', 3.0, 333.333333, True), ('ticket', '3d', 1.0, 333.333333, True)]
    """
    import ibis
    import numpy as np
    import polars as pl

    from workbench.db import as_workbench
    from workbench.metrics.core import to_polars

    if (isinstance(lookback_days, bool) or not isinstance(lookback_days, (int, float))
            or not 0 < lookback_days < dt.timedelta.max.days):  # NaN, inf and what no timedelta holds too
        raise ParameterError(f"burn_rate_alerts: lookback_days must be a positive number of days below "
                             f"{dt.timedelta.max.days:_}, got {lookback_days!r}")
    _, slos = _slos_or_fail(config, db)
    db = as_workbench(db)
    at = _resolve_at(db, at)
    step_us = int(STEP.total_seconds() * 1_000_000)
    n_eval = max(1, math.ceil(dt.timedelta(days=lookback_days) / STEP))
    longest = max(a[1] for a in ALERT_WINDOWS)
    n_bins = n_eval + longest // STEP
    t = _requests(db)
    t = t.filter(t.ts > at - STEP * n_bins, t.ts <= at, t.feature.isin(sorted({s.feature for s in slos})))
    # in microseconds, the timestamps' own unit: in milliseconds both times were truncated first, and a call under a
    # millisecond after a window's start fell into the older bin (out of the window)
    t = t.mutate(_bin=(ibis.literal(at).delta(t.ts, unit="microsecond") // step_us).cast("int64"))
    aggs: dict[str, Any] = {}
    for i, s in enumerate(slos):
        valid = s.valid(t)
        aggs[f"n{i}"] = t.count(where=valid)
        aggs[f"b{i}"] = t.count(where=valid & ~s.good(t).fill_null(False))
    bins = to_polars(t.group_by("_bin").aggregate(**aggs))
    idx = bins["_bin"].to_numpy()

    def series(col: str) -> np.ndarray:
        out = np.zeros(n_bins, dtype=np.int64)
        out[idx] = bins[col].to_numpy()
        return np.concatenate([[0], np.cumsum(out)])

    rows = []
    for i, s in enumerate(slos):
        cn, cb = series(f"n{i}"), series(f"b{i}")
        e = np.arange(n_eval)

        def burn(w: dt.timedelta) -> np.ndarray:
            k = w // STEP  # evaluation step e covers bins e .. e + k - 1
            n, b = cn[e + k] - cn[e], cb[e + k] - cb[e]
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(n > 0, b / n, np.nan) / s.error_budget

        for severity, long_w, short_w, spent in ALERT_WINDOWS:
            factor = s.burn_factor(spent, long_w)
            lb, sb = burn(long_w), burn(short_w)
            with np.errstate(invalid="ignore"):
                fire = (lb > factor) & (sb > factor)
            since = None
            if fire[0]:
                stop = int(np.argmin(fire)) if not fire.all() else n_eval
                since = at - STEP * (stop - 1)
            rows.append({
                "feature": s.feature, "sli": s.sli, "objective": s.objective, "severity": severity,
                "long_window": _window_label(long_w), "short_window": _window_label(short_w), "factor": factor,
                "long_burn": None if np.isnan(lb[0]) else float(lb[0]),
                "short_burn": None if np.isnan(sb[0]) else float(sb[0]),
                "firing": bool(fire[0]), "firing_since": since,
            })
    return pl.DataFrame(rows, schema_overrides={"long_burn": pl.Float64, "short_burn": pl.Float64,
                                                "firing_since": pl.Datetime("us")})


def slo_status(db, *, config: Any = None, at: Any = None) -> "tuple[pl.DataFrame, bool]":
    """The SLO table for ``workbench slo``: attainment, budget and alerts per feature and SLI, and whether any fires.

    Parameters
    ----------
    db : Workbench or path
    config : path or Config, optional
        ``workbench.toml``.
    at : datetime or ISO string, optional
        Evaluation time; default: now (the clock, UTC).

    Returns
    -------
    (polars.DataFrame, bool)
        One row per feature and SLI: ``feature, sli, objective, threshold_ms, window_days, n, sli_value, met,
        observed_ms, budget_remaining, burn_1h`` (the 1-hour burn rate), ``firing``, ``severity`` (page when a page
        alert fires, else ticket, else null), ``alerts`` (the firing windows, e.g. ``page 1h/5m``) and
        ``firing_since``; and True when any alert fires (the CLI then exits 1; else 3, no data, when an SLO has
        no call in its window, ``n`` = 0, and 0 when none). An SLO not met over its window
        (its error budget spent, ``budget_remaining < 0``) fires too, as a ticket with the alert ``budget spent
        30d`` (``firing_since`` null): a breach, though the outage that spent the budget is older than the
        burn-rate windows. An SLO with no call in its window (``n`` = 0) does not fire, and its ``alerts`` says
        ``no data 30d``: not measured, never read as met.

    Examples
    --------
    >>> import tempfile, pathlib, workbench as wb
    >>> cfg = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = cfg.write_text("[slo.chat]\\nlatency_ms = 1000\\nlatency_target = 0.5\\navailability_target = 0.9\\n")
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, latency_ms) values "
    ...     "('a', '2026-01-01 09:58', 'chat', 'ok', 500), ('b', '2026-01-01 09:59', 'chat', 'ok', 800),"
    ...     "('c', '2026-01-01 10:00', 'chat', 'ok', 1300)")
    >>> df, firing = slo_status(db, config=cfg, at="2026-01-01 10:00")
    >>> df[["sli", "sli_value", "met", "firing"]].rows(), firing  # latency: 1 bad of 3 is burn 0.67 < 1
    ([('latency', 0.666667, True, False), ('availability', 1.0, True, False)], False)
    """
    import polars as pl

    from workbench.db import as_workbench

    cfg, _ = _slos_or_fail(config, db)
    db = as_workbench(db)
    at = _resolve_at(db, at)
    report = slo_report(db, config=cfg, at=at)
    alerts = burn_rate_alerts(db, config=cfg, at=at)
    keys = ["feature", "sli"]
    firing = alerts.filter(pl.col("firing"))
    summary = alerts.group_by(keys, maintain_order=True).agg(
        pl.col("long_burn").filter(pl.col("long_window") == "1h").first().alias("burn_1h"),
        pl.col("firing").any().alias("firing"),
    ).join(
        firing.group_by(keys, maintain_order=True).agg(
            pl.when((pl.col("severity") == "page").any()).then(pl.lit("page")).otherwise(pl.lit("ticket"))
            .alias("severity"),
            pl.concat_str(pl.col("severity"), pl.lit(" "), pl.col("long_window"), pl.lit("/"), pl.col("short_window"))
            .str.join(", ").alias("alerts"),
            pl.col("firing_since").min().alias("firing_since"),
        ), on=keys, how="left")
    # an SLO missed over its window has spent its error budget: a breach, a ticket, though no burn-rate window (3
    # days at most) still sees the outage that spent it (it read "not firing", exit 0, for the rest of the window)
    spent = pl.col("met").eq(False).fill_null(False)
    out = report.join(summary, on=keys, how="left").with_columns(
        (pl.col("firing").fill_null(False) | spent).alias("firing"),
        pl.when(pl.col("severity") == "page").then(pl.lit("page"))
        .when(pl.col("severity").is_not_null() | spent).then(pl.lit("ticket")).alias("severity"),
        pl.concat_str(pl.col("alerts"),
                      pl.when(spent).then(pl.format("budget spent {}d", pl.col("window_days"))),
                      # no call in the window: not measured, so never "ok" (the CLI exits 3, a scheduled run notifies)
                      pl.when(pl.col("n") == 0).then(pl.format("no data {}d", pl.col("window_days"))),
                      separator=", ", ignore_nulls=True).alias("alerts"),
    ).with_columns(pl.when(pl.col("alerts") != "").then(pl.col("alerts")).alias("alerts")).select(
        *keys, "objective", "threshold_ms", "window_days", "n", "sli_value", "met", "observed_ms",
        "budget_remaining", "burn_1h", "firing", "severity", "alerts", "firing_since")
    return out, bool(out["firing"].any())
