"""Experiments: A/B readouts with the numbers GrowthBook would give, sample-ratio checks, shadow comparisons, decisions.

Data flow: ``assignments`` (experiment, unit_id, variant, ts = first exposure, weight) gives each unit its arm and
exposure time. A per-unit metric (:data:`UNIT_METRICS`, a plain dict name -> function) turns the canonical tables into
one value per unit from the calls *after* that unit's exposure (and, for CUPED, a ``pre_value`` from the
``pre_days`` before it). One Ibis expression then reduces the units to n, sum and sum of squares per arm, and
:mod:`workbench.stats` computes the effect on those numbers.

Conventions
-----------
* The unit is ``assignments.unit_id``, matched to ``calls.<unit>`` (``user_id`` by default, or ``session_id``,
  ``call_id``).
* A metric that is 0/1 for every unit (``retained``, per-call rates with ``unit="call_id"``) uses the proportion
  variance p(1 - p); any other uses the sample variance (GrowthBook's binomial and mean metrics).
* Effects are treatment minus control, relative to |control| unless ``relative=False``.
* ``chance_to_win`` is the probability that the arm is *better*, in the metric's good direction (:data:`DIRECTION`).
* The control arm is the one named ``control`` if there is one, else the first arm in alphabetical order. Two arm
  names that differ only in case or surrounding spaces (``control`` and ``Control ``) are a ``ParameterError``: one
  arm logged under two spellings, not two arms.
* A unit counts once, from its first exposure; a unit assigned to two arms is left out of the experiment (its
  exposure is contaminated: GrowthBook's "multiple exposures"), and counted in the readouts'
  ``multiple_exposures_count``; a row without a unit or an arm is no exposure.
* **Scope**: an experiment tests one feature, and its metrics are computed inside that scope by default (only the
  exposed users' calls, answers, feedback and events *of that feature*; their use of other features would dilute the
  effect). The scope is declared in ``workbench.toml`` (``[experiments.NAME] feature = "..."``, or ``where = {...}``);
  without a declaration it is inferred from the data: the feature of most calls tagged with the unit's own arm
  (``calls.variant``); ``scope="all"`` reads every call of the exposed units. The readout's ``scope`` column says which
  scope produced it and where it came from (:func:`experiment_scope`).

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute(
...     "insert into assignments (experiment, unit_id, variant, ts) values "
...     "('e', 'u1', 'control', '2026-01-01'), ('e', 'u2', 'control', '2026-01-01'),"
...     "('e', 'u3', 'treatment', '2026-01-01'), ('e', 'u4', 'treatment', '2026-01-01')")
>>> _ = db.duckdb.execute(
...     "insert into calls (call_id, ts, user_id, status, latency_ms) values "
...     "('a', '2026-01-02', 'u1', 'ok', 100), ('b', '2026-01-02', 'u2', 'ok', 300),"
...     "('c', '2026-01-02', 'u3', 'ok', 150), ('d', '2026-01-02', 'u4', 'ok', 250)")
>>> r = experiment_summary(db, "e", metrics=("latency_ms",), relative=False)
>>> r.select("variant", "n_control", "mean_control", "mean_variant", "effect").rows()
[('treatment', 2, 200.0, 200.0, 0.0)]
>>> srm(db, "e").select("variant", "users", "srm_p_value").rows()
[('control', 2, 1.0), ('treatment', 2, 1.0)]
"""

from __future__ import annotations

from workbench.errors import (NotFoundError, ParameterError, ParameterTypeError, TooFewError, UnknownNameError, check_bool, check_int,
                              check_name, check_names, check_number, check_fraction)

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workbench.metrics import core as M
from workbench.metrics.core import to_polars
from workbench import stats

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

METHODS = ("frequentist", "sequential", "bayesian")
UNITS = ("user_id", "session_id", "call_id")

# +1: higher is better, -1: lower is better. Used for chance to win and for the verdicts.
DIRECTION: dict[str, int] = {
    "latency_ms": -1,
    "cost_usd": -1,
    "hallucination_rate": -1,
    "thumbs_up_rate": 1,
    "error_rate": -1,
    "retained": 1,
}


# -- per-unit metrics -------------------------------------------------------------------------------------------------


def _per_unit(facts: "ir.Table", exposures: "ir.Table", *, how: str, pre_days: int) -> "ir.Table":
    """Reduce row-level facts (unit_id, ts, y) to one value per exposed unit: after exposure, and before it.

    ``how="mean"``: mean of y over the unit's rows (units without rows have a null value and drop out);
    ``how="sum"``: total of y (units without rows count as 0: an exposed user who spent nothing spent 0).
    """
    import ibis

    j = facts.join(exposures, facts.unit_id == exposures.unit_id).select(
        facts.unit_id, facts.ts, facts.y, exposures.exposed_at)
    post = j.ts >= j.exposed_at
    pre = (j.ts < j.exposed_at) & (j.ts >= j.exposed_at - ibis.interval(days=int(pre_days)))
    agg = getattr(j.y, how)
    per = j.group_by("unit_id").aggregate(value=agg(where=post), pre_value=agg(where=pre))
    if how == "sum":
        e = exposures.select("unit_id")
        per = e.left_join(per, e.unit_id == per.unit_id).select(
            e.unit_id, value=per.value.fill_null(0.0), pre_value=per.pre_value.fill_null(0.0))
    return per


def _calls(db: Any, *, unit: str, end: Any, where: M.Where) -> "ir.Table":
    if unit not in UNITS:
        raise ParameterError(f"experiments: unit must be one of {', '.join(UNITS)}, got {unit!r}")
    return M.scope(db.calls, end=end, where=where)


def _latency_ms(db: Any, exposures: "ir.Table", *, unit: str = "user_id", end: Any = None, where: M.Where = None,
                pre_days: int = 14, **_: Any) -> "ir.Table":
    """Mean call latency (ms) per unit."""
    c = _calls(db, unit=unit, end=end, where=where)
    c = c.filter(c.latency_ms.notnull())
    return _per_unit(c.select(unit_id=c[unit], ts=c.ts, y=c.latency_ms.cast("float64")), exposures, how="mean",
                     pre_days=pre_days)


def _cost_usd(db: Any, exposures: "ir.Table", *, unit: str = "user_id", end: Any = None, where: M.Where = None,
              pre_days: int = 14, **_: Any) -> "ir.Table":
    """Total cost (USD) per unit: the priced cost from ``workbench.metrics.cost.priced_calls`` when that module is
    available (``cost_usd_used``), else the reported ``calls.cost_usd``. An exposed unit without calls spent 0; an
    unpriced call adds 0 (check price coverage with :mod:`workbench.metrics.cost`)."""
    try:
        from workbench.metrics.cost import priced_calls
    except ImportError:
        c = _calls(db, unit=unit, end=end, where=where)
        y = c.cost_usd
    else:
        _calls(db, unit=unit, end=None, where=None)  # validates unit
        c = priced_calls(db, end=end, where=where)
        y = c.cost_usd_used
    return _per_unit(c.select(unit_id=c[unit], ts=c.ts, y=y.cast("float64").fill_null(0.0)), exposures, how="sum",
                     pre_days=pre_days)


def _error_rate(db: Any, exposures: "ir.Table", *, unit: str = "user_id", end: Any = None, where: M.Where = None,
                pre_days: int = 14, **_: Any) -> "ir.Table":
    """Share of the unit's calls with ``status = 'error'`` (the definition of ``latency.error_rate``: timeouts
    have their own rate, blocked calls are not errors)."""
    c = _calls(db, unit=unit, end=end, where=where)
    y = (c.status == "error").fill_null(False).cast("float64")
    return _per_unit(c.select(unit_id=c[unit], ts=c.ts, y=y), exposures, how="mean", pre_days=pre_days)


def _hallucination_rate(db: Any, exposures: "ir.Table", *, unit: str = "user_id", end: Any = None,
                        where: M.Where = None, pre_days: int = 14, evaluator: str | None = None,
                        **_: Any) -> "ir.Table":
    """Share of the unit's evaluated answers labelled ``hallucinated`` by the ``hallucination_score`` evaluators
    (a call scored by several evaluators counts once: hallucinated if any says so; ``evaluator=`` picks one)."""
    c = _calls(db, unit=unit, end=end, where=where)
    ev = db.evals.filter(db.evals.metric == "hallucination_score")
    if evaluator is not None:
        ev = ev.filter(ev.evaluator == evaluator)
    per_call = ev.group_by("call_id").aggregate(y=(ev.label == "hallucinated").fill_null(False).cast("float64").max())
    j = c.join(per_call, c.call_id == per_call.call_id)
    return _per_unit(j.select(unit_id=j[unit], ts=j.ts, y=j.y), exposures, how="mean", pre_days=pre_days)


def _thumbs_up_rate(db: Any, exposures: "ir.Table", *, unit: str = "user_id", end: Any = None,
                    where: M.Where = None, pre_days: int = 14, **_: Any) -> "ir.Table":
    """Share of the unit's thumbs votes that are up (feedback kind ``thumbs``, value 1 up / 0 down), at the time
    the vote was given; a vote is a user's latest thumbs on a call (:func:`workbench.metrics.core.latest_votes`, as
    ``thumbs_up_rate``). Feedback is placed on its call's unit; without a known call, on the feedback's user
    (with ``where=``, only feedback on the selected calls counts)."""
    c = _calls(db, unit=unit, end=None, where=where)
    f = M.scope(db.feedback, end=end)
    f = M.latest_votes(f.filter((f.kind == "thumbs") & f.value.notnull()))
    j = f.join(c, f.call_id == c.call_id, how="inner" if where else "left")
    u = {"user_id": c.user_id.fill_null(f.user_id), "session_id": c.session_id, "call_id": f.call_id}[unit]
    t = j.select(unit_id=u, ts=f.ts, y=(f.value > 0).cast("float64"))
    return _per_unit(t.filter(t.unit_id.notnull()), exposures, how="mean", pre_days=pre_days)


def _retained(db: Any, exposures: "ir.Table", *, unit: str = "user_id", end: Any = None, where: M.Where = None,
              pre_days: int = 14, retention_days: int = 7, **_: Any) -> "ir.Table":
    """1 if the user has any product event ``retention_days`` (default 7) or more after exposure, else 0.

    Units exposed less than ``retention_days`` before the end of the data (``end``, else the last event) cannot be
    measured yet and are left out rather than counted as not retained (with ``end``, which is exclusive, also those
    exposed exactly ``retention_days`` before it). ``pre_value``: any event in the
    ``retention_days`` before exposure.
    """
    import ibis

    if unit != "user_id":
        raise ParameterError(f"experiments: retained needs unit='user_id' (events have user_id only), got {unit!r}")
    # the experiment's scope (e.g. its feature) applies to the events too, on the columns events have
    ev = M.scope(db.events, end=end, where={k: v for k, v in M.parse_where(where).items() if k in db.events.columns})
    days = ibis.interval(days=int(retention_days))
    if end is not None:  # events before end: a unit whose retention starts at end has none that could count
        e = exposures.filter(exposures.exposed_at + days < ibis.literal(M.as_timestamp(end), type="timestamp"))
    else:
        e = exposures.filter(exposures.exposed_at + days <= db.events.ts.max())
    j = e.left_join(ev, e.unit_id == ev.user_id)
    hit = j.ts >= j.exposed_at + days
    pre = (j.ts < j.exposed_at) & (j.ts >= j.exposed_at - days)
    return j.group_by(j.unit_id).aggregate(
        value=hit.fill_null(False).cast("float64").max(), pre_value=pre.fill_null(False).cast("float64").max())


# name -> function(db, exposures, *, unit, end, where, pre_days, **options) -> Ibis table (unit_id, value, pre_value)
UNIT_METRICS: dict[str, Callable[..., "ir.Table"]] = {
    "latency_ms": _latency_ms,
    "cost_usd": _cost_usd,
    "hallucination_rate": _hallucination_rate,
    "thumbs_up_rate": _thumbs_up_rate,
    "error_rate": _error_rate,
    "retained": _retained,
}


def _check_unit_options(metrics: Sequence[str], options: Mapping[str, Any]) -> None:
    """Refuse an option none of the per-unit metrics takes (a misspelt ``relativ=False`` was accepted and ignored).

    >>> _check_unit_options(["retained"], {"retention_days": 7})
    >>> _check_unit_options(["latency_ms"], {"relativ": False})
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: experiment_summary: unknown option 'relativ'; ...
    """
    import inspect

    taken: set[str] = set()
    for m in metrics:
        params = inspect.signature(UNIT_METRICS[m]).parameters.values()
        taken |= {p.name for p in params if p.kind is p.KEYWORD_ONLY} - {"unit", "end", "where", "pre_days"}
    unknown = sorted(set(options) - taken)
    if unknown:  # (its own options read off its signature: the message never lists one it lost or misses a new one)
        own = [p.name for p in inspect.signature(experiment_summary).parameters.values()
               if p.kind is p.KEYWORD_ONLY and p.name != "metrics"]
        known = ", ".join(own) + (f"; for {', '.join(metrics)}: {', '.join(sorted(taken))}" if taken else "")
        raise ParameterError(f"experiment_summary: unknown option {unknown[0]!r}; it takes {known}")


# -- assignments ------------------------------------------------------------------------------------------------------


def _units(db: Any, experiment: str, *, start: Any, end: Any, fn: str) -> "ir.Table":
    """One row per unit exposed in the window: its arm, first exposure and weight, and ``_arms``, how many arms it
    was assigned to (a unit of more than one is left out: :func:`_exposures`, :func:`_multiple_exposures`)."""
    if not isinstance(experiment, str) or not experiment:
        raise ParameterTypeError(f"{fn}: experiment must be a non-empty string, got {experiment!r}")
    import ibis

    a = M.scope(db.assignments, end=end)
    # One row per unit: its first exposure. A row without a unit or an arm is no exposure (it made sorted() fail on
    # None); a unit exposed to two arms is left out of both (GrowthBook's "multiple exposures"): it was counted in
    # each arm, and twice in each arm's sums through the joins. Its arms before ``start`` count too: a unit in
    # control before it and in treatment after was a clean treatment unit of a readout from ``start``.
    a = a.filter(a.experiment == experiment, a.unit_id.notnull(), a.variant.notnull())
    a = a.mutate(_in=a.ts >= M.as_timestamp(start) if start is not None else ibis.literal(True))
    u = a.group_by("unit_id").aggregate(_arms=a.variant.nunique(), _seen=a._in.any(), variant=a.variant.max(),
                                        exposed_at=a.ts.min(where=a._in), weight=a.weight.max(where=a._in))
    return u.filter(u._seen)


def _exposures(db: Any, experiment: str, *, start: Any = None, end: Any = None, fn: str) -> "ir.Table":
    u = _units(db, experiment, start=start, end=end, fn=fn)
    return u.filter(u._arms == 1).select("unit_id", "variant", "exposed_at", "weight")


def _multiple_exposures(db: Any, experiment: str, *, start: Any, end: Any, fn: str) -> int:
    """How many units of the window were assigned to more than one arm, and so left out of every arm."""
    u = _units(db, experiment, start=start, end=end, fn=fn)
    return int(u.filter(u._arms > 1).count().to_pyarrow().as_py())


def _arm_counts(db: Any, experiment: str, *, start: Any, end: Any, fn: str) -> "pl.DataFrame":
    e = _exposures(db, experiment, start=start, end=end, fn=fn)
    a = M.scope(db.assignments, end=end)
    a = a.filter(a.experiment == experiment, a.variant.notnull())
    spelt: dict[str, str] = {}
    for name in sorted(to_polars(a.select("variant").distinct())["variant"].to_list()):
        # one arm logged under two spellings was two arms (an SRM "mismatch"), and its units logged under both
        # were left out as exposed to two arms
        other = spelt.setdefault(name.strip().casefold(), name)
        if other != name:
            raise ParameterError(f"{fn}: arms {other!r} and {name!r} of experiment {experiment!r} differ only in case "
                                 "or surrounding spaces; expected one spelling per arm in assignments.variant")
    out = e.group_by("variant").aggregate(users=e.count(), weight=e.weight.max(), n_weights=e.weight.nunique())
    df = to_polars(out).sort("variant")
    if df.height == 0:
        raise ParameterError(f"{fn}: no assignments for experiment {experiment!r}"
                         + (f" from {start}" if start else "") + (f" before {end}" if end else ""))
    return df


def _control(variants: Sequence[str], control: str | None, fn: str, experiment: str) -> str:
    """The control arm among ``variants`` (the arms with units): ``control``, else ``control``, else the first by
    name. An experiment of one arm has nothing to compare it with: said by name (it read out as an empty frame)."""
    if len(variants) == 1:
        raise ParameterError(f"{fn}: experiment {experiment!r} has one arm in assignments ({variants[0]!r}): a "
                             "readout compares a control arm with another arm")
    if control is not None:
        if control not in variants:
            raise ParameterError(f"{fn}: control arm {control!r} not among the arms {list(variants)}")
        return control
    return "control" if "control" in variants else sorted(variants)[0]


def srm(db: Any, experiment: str, *, start: Any = None, end: Any = None,
        weights: Mapping[str, float] | None = None) -> "pl.DataFrame":
    """Sample-ratio check of an experiment: users per arm against the planned weights (chi-square, GrowthBook's rule).

    Parameters
    ----------
    db : Workbench or path
    experiment : str
    start, end : optional
        Exposure window (``assignments.ts``).
    weights : mapping arm -> weight, optional
        Planned weights; default the ``assignments.weight`` column, equal weights when it is null for every arm.
        Arms with weight 0 are dropped from the test; an arm planned but never seen counts 0 users; a NaN or
        infinite weight is a ``ParameterError``.

    Returns
    -------
    polars.DataFrame
        One row per arm: ``experiment, variant, users, weight, expected_users, srm_p_value, srm_status`` where the
        status is ``ok`` or ``mismatch`` (p < 0.001), the same p on every row, and ``multiple_exposures_count``:
        the units assigned to more than one arm, left out of every arm and of ``users`` (the same on every row).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> rows = ",".join(f"('e', 'u{i}', '{'a' if i < 1000 else 'b'}', '2026-01-01', 0.5)" for i in range(2200))
    >>> _ = db.duckdb.execute(f"insert into assignments (experiment, unit_id, variant, ts, weight) values {rows}")
    >>> r = srm(db, "e")
    >>> r["users"].to_list(), round(r["srm_p_value"][0], 9), r["srm_status"][0], r["multiple_exposures_count"][0]
    ([1000, 1200], 2.0079e-05, 'mismatch', 0)
    """
    import polars as pl

    from workbench.db import as_workbench

    if weights is not None and not isinstance(weights, Mapping):
        raise ParameterTypeError(f"srm: weights must be a mapping arm -> planned share, got {weights!r:.60}")
    db = as_workbench(db)
    df = _arm_counts(db, experiment, start=start, end=end, fn="srm")
    if (df["n_weights"] > 1).any():
        bad = df.filter(pl.col("n_weights") > 1)["variant"].to_list()
        raise ParameterError(f"srm: assignments.weight differs within arm(s) {bad} of experiment {experiment!r}")
    users = dict(zip(df["variant"].to_list(), df["users"].to_list()))
    if weights is not None:
        w = {str(k): check_number("srm", f"weights[{k!r}]", v, lo=0, lo_open=True) for k, v in weights.items()}
        for arm in users:
            if arm not in w:
                raise ParameterError(f"srm: weights has no entry for arm {arm!r}; arms: {sorted(users)}")
    else:
        col = dict(zip(df["variant"].to_list(), df["weight"].to_list()))
        bad = sorted(a for a, v in col.items() if v is not None and not math.isfinite(v))
        if bad:
            raise ParameterError(f"srm: assignments.weight is NaN or infinite for arm(s) {bad} of experiment "
                                 f"{experiment!r}; expected the planned share (or null)")
        known = [v for v in col.values() if v is not None]
        if not known:
            w = {arm: 1.0 / len(col) for arm in col}
        elif len(known) < len(col):
            missing = sorted(a for a, v in col.items() if v is None)
            raise ParameterError(f"srm: assignments.weight is null for arm(s) {missing} but set for others; "
                             "pass weights= or fill the column")
        else:
            w = {a: float(v) for a, v in col.items()}
    arms = sorted(set(users) | set(w))
    u = [float(users.get(a, 0)) for a in arms]
    wt = [w.get(a, 0.0) for a in arms]
    p = stats.srm_test(u, wt)
    total_w = sum(x for x in wt if x > 0)
    total_u = sum(ui for ui, wi in zip(u, wt) if wi > 0)
    return pl.DataFrame({
        "experiment": [experiment] * len(arms),
        "variant": arms,
        "users": [int(x) for x in u],
        "weight": wt,
        "expected_users": [total_u * wi / total_w if wi > 0 else None for wi in wt],
        "srm_p_value": [p] * len(arms),
        "srm_status": [_srm_status(p)] * len(arms),
        "multiple_exposures_count": [_multiple_exposures(db, experiment, start=start, end=end, fn="srm")] * len(arms),
    }, schema_overrides={"expected_users": pl.Float64, "multiple_exposures_count": pl.Int64})


def _srm_status(p: float) -> str:
    if p != p:
        return "no data"
    return "mismatch" if p < stats.SRM_P_THRESHOLD else "ok"


# -- scope ------------------------------------------------------------------------------------------------------------


def experiment_scope(db: Any, experiment: str, *, scope: Any = "declared", config: Any = None,
                     unit: str = "user_id") -> tuple[dict[str, Any], str]:
    """The selection an experiment's metrics are computed in, and a sentence saying where it came from.

    Parameters
    ----------
    db : Workbench or path
    experiment : str
    scope : "declared", "all", or a where mapping / list of "col=value"
        ``"declared"`` (default): ``[experiments.<experiment>]`` of ``workbench.toml`` (``feature = "x"`` or
        ``["x", "y"]``, or ``where = {col = value}``); when the experiment is not declared there, the feature of most
        calls tagged with their unit's own arm (``calls.variant``); when no call is tagged, every call (said so).
        ``"all"``: every call of the exposed units. A mapping: that selection.
    config : path or Config, optional
        The ``workbench.toml`` to read (default ``$WORKBENCH_CONFIG`` or ``./workbench.toml``).
    unit : the calls column ``assignments.unit_id`` refers to.

    Returns
    -------
    (where, label) : the filter on calls/events (``{}`` for every call) and the readout's ``scope`` text.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values "
    ...     "('e', 'u1', 'control', '2026-01-01'), ('e', 'u2', 'treatment', '2026-01-01')")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, user_id, feature, status, variant) values "
    ...     "('a', '2026-01-02', 'u1', 'chat', 'ok', 'control'), ('b', '2026-01-02', 'u2', 'chat', 'ok', 'treatment'),"
    ...     "('c', '2026-01-02', 'u2', 'search', 'ok', null)")
    >>> experiment_scope(db, "e", config={})
    ({'feature': 'chat'}, 'feature=chat (inferred: the feature of the calls tagged with their arm)')
    >>> experiment_scope(db, "e", scope="all")
    ({}, 'all calls of the exposed units')
    """
    import ibis

    from workbench.config import ConfigError, load_config
    from workbench.db import as_workbench

    def label(w: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in w.items())

    if scope is None or scope == "all":
        return {}, "all calls of the exposed units"
    if scope != "declared":
        w = M.parse_where(scope)
        return dict(w), f"{label(w)} (given)"
    cfg = load_config(config) if not isinstance(config, Mapping) else None
    table = (cfg.section("experiments") if cfg is not None else config.get("experiments", {})).get(experiment)
    if table is not None:
        where = f"experiments.{experiment}"
        place = cfg.where(where) if cfg is not None else where
        if not isinstance(table, Mapping) or set(table) - {"feature", "where"} or not table:
            raise ConfigError(f"{place}: expected feature = \"name\" (or a list) or where = {{column = value}}, "
                              f"got {table!r}")
        w = dict(M.parse_where(table["where"])) if "where" in table else {}
        if "feature" in table:
            f = table["feature"]
            if not (isinstance(f, str) or (isinstance(f, list) and f and all(isinstance(x, str) for x in f))):
                raise ConfigError(f"{place}: feature must be a name or a list of names, got {f!r}")
            w["feature"] = f
        return w, f"{label(w)} (declared in {place})"
    db = as_workbench(db)
    e = _exposures(db, experiment, fn="experiment_scope")
    c = db.calls
    if unit not in UNITS:
        raise ParameterError(f"experiments: unit must be one of {', '.join(UNITS)}, got {unit!r}")
    j = c.join(e, [c[unit] == e.unit_id, c.variant == e.variant, c.ts >= e.exposed_at])
    j = j.filter(j.feature.notnull())
    top = to_polars(j.group_by("feature").aggregate(n=j.count()).order_by([ibis.desc("n"), "feature"]).limit(1))
    if top.height == 0:
        return {}, "all calls of the exposed units (no scope declared, no call tagged with an arm)"
    f = top["feature"][0]
    return {"feature": f}, f"feature={f} (inferred: the feature of the calls tagged with their arm)"


# -- readout ----------------------------------------------------------------------------------------------------------


def _arm_sums(db: Any, exposures: "ir.Table", metric: str, *, unit: str, end: Any, where: M.Where, pre_days: int,
              options: Mapping[str, Any]) -> "pl.DataFrame":
    """Per-arm n, sums, sums of squares (and cross terms for CUPED) of the per-unit metric: one Ibis expression."""
    if metric not in UNIT_METRICS:
        raise NotFoundError(f"experiments: no per-unit metric {metric!r}; known: {', '.join(UNIT_METRICS)}")
    per = UNIT_METRICS[metric](db, exposures, unit=unit, end=end, where=where, pre_days=pre_days, **options)
    e = exposures.select("unit_id", "variant")
    j = e.join(per, e.unit_id == per.unit_id).select(e.variant, per.value, per.pre_value)
    j = j.filter(j.value.notnull())
    # a unit without pre-period data gets the pooled pre-period mean (mean imputation keeps it in the analysis)
    x = j.pre_value.fill_null(j.pre_value.mean().over()).fill_null(0.0).cast("float64")
    y = j.value.cast("float64")
    j = j.mutate(y=y, x=x)
    agg = j.group_by("variant").aggregate(
        n=j.count(), sum_y=j.y.sum(), sum_y2=(j.y * j.y).sum(), sum_x=j.x.sum(), sum_x2=(j.x * j.x).sum(),
        sum_xy=(j.x * j.y).sum(), binary=j.y.isin([0.0, 1.0]).all())
    return to_polars(agg).sort("variant")


def _arm_stats(row: Mapping[str, Any]) -> stats.ArmStats:
    if row["binary"]:
        return stats.ArmStats.from_proportion(row["sum_y"], row["n"])
    return stats.ArmStats.from_sums(row["sum_y"], row["sum_y2"], row["n"])


def experiment_summary(
    db: Any,
    experiment: str,
    *,
    metrics: Sequence[str] = ("latency_ms", "cost_usd", "hallucination_rate", "thumbs_up_rate", "error_rate"),
    control: str | None = None,
    method: str = "frequentist",
    cuped: bool = False,
    relative: bool = True,
    alpha: float = 0.05,
    unit: str = "user_id",
    start: Any = None,
    end: Any = None,
    where: M.Where = None,
    pre_days: int = 14,
    sequential_tuning: float = 5000,
    scope: Any = "declared",
    config: Any = None,
    **options: Any,
) -> "pl.DataFrame":
    """The experiment readout: one row per metric x treatment arm, effect with interval, p or chance to win, and SRM.

    Definition: each metric is computed per exposed unit from its data after exposure **inside the experiment's
    scope** (by default its declared feature: see :func:`experiment_scope`), then compared between arms; the
    ``scope`` column says which selection produced the numbers.

    Parameters
    ----------
    db : Workbench or path
    experiment : str
        ``assignments.experiment``.
    metrics : names of :data:`UNIT_METRICS`
    control : str, optional
        Control arm; default ``control`` if present, else the first arm alphabetically.
    method : {"frequentist", "sequential", "bayesian"}
        Welch t-test; always-valid confidence sequence (tuning ``sequential_tuning``); Bayesian with a flat prior.
    cuped : bool
        Adjust with the metric's value in the ``pre_days`` before exposure (theta pooled across arms).
    relative : bool
        Relative lift (b - a) / |a| (delta method), else the absolute difference.
    alpha : float
        1 - interval level.
    unit : {"user_id", "session_id", "call_id"}
        The calls column that ``assignments.unit_id`` refers to.
    start, end : optional
        Exposures in [start, end); metric data before ``end``.
    where : optional
        A further filter on the calls (e.g. ``{"model": "gpt-4o"}``), inside the scope.
    scope : "declared", "all" or a where mapping
        The experiment's selection (:func:`experiment_scope`): declared in ``workbench.toml`` or inferred
        (default), every call of the exposed units (``"all"``), or the given one.
    config : path or Config, optional
        The ``workbench.toml`` that declares the scope.
    **options
        Passed to the per-unit metric functions (``retention_days=``, ``evaluator=``).

    Returns
    -------
    polars.DataFrame
        ``experiment, metric, control, variant, n_control, n_variant, mean_control, mean_variant, effect, se, lo, hi,
        p_value, chance_to_win, risk_control, risk_variant, method, relative, cuped, theta, srm_p_value,
        srm_status, multiple_exposures_count, scope``; ``multiple_exposures_count`` is the units assigned to more
        than one arm, left out of every arm (as in :func:`srm`). Means are unadjusted; with ``cuped`` the effect
        uses the adjusted means (the relative lift is then taken over the adjusted control mean, delta method with
        the adjusted variances). Risks are expected
        losses (in the effect's units) of keeping control and of shipping the arm (Bayesian only). A proportion
        metric whose arms differ but whose test is undefined (one arm at 0 %, the other at 100 %, so p(1 - p) = 0
        in each; at least two units an arm) gets Newcombe's score interval of the difference as ``lo``/``hi`` (over
        |control| when relative), with ``se`` and ``p_value`` null: 0 of 50 against 50 of 50 is a difference of 1,
        at least 0.90. An experiment whose assignments hold one arm is a ``ParameterError`` naming it: there is no
        control to compare with.

    Examples
    --------
    Two users per arm; the treatment's calls are faster (``relative=False``: the effect in milliseconds):

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into assignments (experiment, unit_id, variant, ts) values "
    ...     "('e', 'u1', 'control', '2026-01-01'), ('e', 'u2', 'control', '2026-01-01'),"
    ...     "('e', 'u3', 'treatment', '2026-01-01'), ('e', 'u4', 'treatment', '2026-01-01')")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, user_id, status, latency_ms) values "
    ...     "('a', '2026-01-02', 'u1', 'ok', 300), ('b', '2026-01-02', 'u2', 'ok', 500),"
    ...     "('c', '2026-01-02', 'u3', 'ok', 150), ('d', '2026-01-02', 'u4', 'ok', 250)")
    >>> r = experiment_summary(db, "e", metrics=("latency_ms",), relative=False)
    >>> r.select("variant", "n_control", "n_variant", "mean_control", "mean_variant", "effect", "srm_status").rows()
    [('treatment', 2, 2, 400.0, 200.0, -200.0, 'ok')]
    """
    import polars as pl

    from workbench.db import as_workbench

    db = as_workbench(db)
    if method not in METHODS:
        raise ParameterError(f"experiment_summary: method must be one of {', '.join(METHODS)}, got {method!r}")
    fn = "experiment_summary"
    metrics = check_names(fn, "metrics", metrics, what="metric names")
    check_name(fn, "control", control, optional=True, what="an arm")
    check_bool(fn, "cuped", cuped)
    check_bool(fn, "relative", relative)
    check_fraction(fn, "alpha", alpha)
    check_int(fn, "pre_days", pre_days, lo=1)
    check_number(fn, "sequential_tuning", sequential_tuning, lo=0, lo_open=True)
    unknown = [m for m in metrics if m not in UNIT_METRICS]
    if unknown:
        raise NotFoundError(f"experiment_summary: unknown metric(s) {unknown}; known: {', '.join(UNIT_METRICS)}")
    _check_unit_options(metrics, options)
    s = srm(db, experiment, start=start, end=end)
    srm_p, srm_st, multiple = s["srm_p_value"][0], s["srm_status"][0], s["multiple_exposures_count"][0]
    variants = s.filter(pl.col("users") > 0)["variant"].to_list()
    ctrl = _control(variants, control, "experiment_summary", experiment)
    exposures = _exposures(db, experiment, start=start, end=end, fn="experiment_summary")
    scope_where, scope_label = experiment_scope(db, experiment, scope=scope, config=config, unit=unit)
    where = {**scope_where, **M.parse_where(where, fn=fn)} or None
    rows = []
    for metric in metrics:
        sums = _arm_sums(db, exposures, metric, unit=unit, end=end, where=where, pre_days=pre_days, options=options)
        by_arm = {r["variant"]: r for r in sums.iter_rows(named=True)}
        # a proportion metric is 0/1 for every unit of every arm: one arm's 0/1 units among another's shares took
        # p(1 - p) in one arm and the sample variance in the other
        binary = all(r["binary"] for r in by_arm.values())
        by_arm = {k: {**r, "binary": binary} for k, r in by_arm.items()}
        theta = None
        if cuped and by_arm:
            arms = list(by_arm)
            theta, adj = stats.cuped([by_arm[a] for a in arms])
            adjusted = dict(zip(arms, adj))
        for arm in variants:
            if arm == ctrl:
                continue
            ra, rb = by_arm.get(ctrl), by_arm.get(arm)
            row: dict[str, Any] = {"experiment": experiment, "metric": metric, "control": ctrl, "variant": arm,
                                   "n_control": ra["n"] if ra else 0, "n_variant": rb["n"] if rb else 0}
            if ra is None or rb is None:
                eff = stats.Effect(*(float("nan"),) * 4, relative=relative, method=method)
                row |= {"mean_control": _mean(ra), "mean_variant": _mean(rb)}
            else:
                a, b = _arm_stats(ra), _arm_stats(rb)
                row |= {"mean_control": a.mean, "mean_variant": b.mean}
                if cuped:
                    a, b = adjusted[ctrl], adjusted[arm]
                eff = stats.compare_arms(a, b, method=method, relative=relative, alpha=alpha,
                                         inverse=DIRECTION.get(metric, 1) < 0, tuning=sequential_tuning)
                if (ra["binary"] and rb["binary"] and min(ra["n"], rb["n"]) >= 2 and _mean(ra) != _mean(rb)
                        and eff.effect == eff.effect and not eff.lo == eff.lo):
                    eff = _score_interval(eff, ra, rb, alpha)
            d = eff.as_dict()
            row |= {k: d[k] for k in ("effect", "se", "lo", "hi", "p_value", "chance_to_win", "risk_control",
                                      "risk_variant")}
            row |= {"method": method, "relative": relative, "cuped": cuped, "theta": theta, "srm_p_value": srm_p,
                    "srm_status": srm_st, "multiple_exposures_count": multiple, "scope": scope_label}
            rows.append(row)
    schema = {"experiment": pl.String, "metric": pl.String, "control": pl.String, "variant": pl.String,
              "n_control": pl.Int64, "n_variant": pl.Int64, "mean_control": pl.Float64, "mean_variant": pl.Float64,
              "effect": pl.Float64, "se": pl.Float64, "lo": pl.Float64, "hi": pl.Float64, "p_value": pl.Float64,
              "chance_to_win": pl.Float64, "risk_control": pl.Float64, "risk_variant": pl.Float64,
              "method": pl.String, "relative": pl.Boolean, "cuped": pl.Boolean, "theta": pl.Float64,
              "srm_p_value": pl.Float64, "srm_status": pl.String, "multiple_exposures_count": pl.Int64,
              "scope": pl.String}
    out = pl.DataFrame(rows, schema=schema)
    # NaN means undefined here (no variance, no units): make it null, as everywhere in the workbench
    return out.with_columns(pl.col(pl.Float64).fill_nan(None))


def _score_interval(eff: stats.Effect, ra: Mapping[str, Any], rb: Mapping[str, Any], alpha: float) -> stats.Effect:
    """The interval of a proportion metric whose test has none: Newcombe's score interval of the difference (over
    |control| for a relative effect). One arm at 0 % and the other at 100 % have no p(1 - p) variance: the test is
    undefined, but "no error in 50 control users, an error for all 50 treatment users" is no "no clear
    difference". (An arm of one unit keeps no interval: one unit is no evidence either way.)"""
    import dataclasses

    lo, hi = stats.newcombe_interval(ra["sum_y"], ra["n"], rb["sum_y"], rb["n"], confidence=1 - alpha)
    scale = abs(ra["sum_y"] / ra["n"]) if eff.relative else 1.0
    return dataclasses.replace(eff, lo=float(lo) / scale, hi=float(hi) / scale)


def _mean(r: Mapping[str, Any] | None) -> float | None:
    return r["sum_y"] / r["n"] if r and r["n"] else None


# -- decisions --------------------------------------------------------------------------------------------------------


def decision_table(
    db: Any,
    experiment: str,
    *,
    metrics: Sequence[str] = ("latency_ms", "cost_usd", "hallucination_rate", "thumbs_up_rate"),
    guardrails: Sequence[str] = ("error_rate",),
    method: str = "frequentist",
    alpha: float = 0.05,
    min_chance_to_win: float = 0.95,
    guardrail_min_chance: float = 0.3,
    **kwargs: Any,
) -> "pl.DataFrame":
    """Ship or not: per metric and arm, the effect, its interval, its evidence, and a verdict in plain words.

    A metric is ``better``/``worse`` when the evidence is clear — p < ``alpha`` (frequentist, sequential; a
    proportion without a p-value, at 0 % or 100 % in both arms, when its Newcombe interval excludes 0) or chance
    to win >= ``min_chance_to_win`` / <= 1 - ``min_chance_to_win`` (Bayesian) — in the metric's good direction
    (:data:`DIRECTION`: lower latency, cost, hallucination and errors are better; more thumbs up and retention are
    better); else ``no clear difference``. The overall verdict per arm, first rule that applies:

    1. ``invalid: sample ratio mismatch`` when the SRM check fails (p < 0.001): no effect can be trusted;
    2. ``do not ship: guardrail X worse`` when a guardrail metric is clearly worse;
    3. ``do not ship: X worse`` when a goal metric is clearly worse;
    4. ``keep running: X likely worse`` when a guardrail -- a metric of ``guardrails`` or one of
       :data:`GUARDRAILS` (hallucination, errors, cost) -- is likely worse: chance to win below
       ``guardrail_min_chance``, even without clear evidence;
    5. ``ship`` when at least one goal metric is clearly better;
    6. ``inconclusive`` otherwise.

    ``chance_to_win`` is given for every metric: the Bayesian posterior, or with other methods the same number
    from the effect and its standard error, Phi(effect / se) in the good direction (from the interval for a
    proportion whose only interval is its score interval).

    Returns
    -------
    polars.DataFrame
        ``experiment, variant, metric, role (goal/guardrail/overall), direction, effect, lo, hi, p_value,
        chance_to_win, srm_status, verdict, scope, relative``; the row with ``metric = "overall"`` carries the
        decision; ``scope`` is the selection the metrics were computed in (the experiment's feature by default);
        ``relative`` says whether ``effect``, ``lo`` and ``hi`` are shares of the control's mean (the default; a
        metric whose control mean is 0 has no share of it and is judged on the absolute difference, ``relative`` false).
        Other keyword arguments go to :func:`experiment_summary`.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values "
    ...     "('e', 'u1', 'control', '2026-01-01'), ('e', 'u2', 'treatment', '2026-01-01')")
    >>> decision_table(db, "e", metrics=("latency_ms",), guardrails=())["verdict"].to_list()
    ['no data', 'inconclusive']
    """
    import polars as pl

    fn = "decision_table"
    goals = list(check_names(fn, "metrics", metrics, what="metric names"))
    guards = list(check_names(fn, "guardrails", guardrails, what="metric names", empty=True))
    for name, value in (("alpha", alpha), ("min_chance_to_win", min_chance_to_win),
                        ("guardrail_min_chance", guardrail_min_chance)):
        check_fraction(fn, name, value)
    both = [*goals, *[g for g in guards if g not in goals]]
    s = experiment_summary(db, experiment, metrics=both, method=method, alpha=alpha, **kwargs)
    # a lift over a control mean of 0 (no error at all in control) is undefined: such a metric is judged on its
    # absolute difference (its row's relative = False), not left as "no data" while both arms have units
    zero = s.filter(pl.col("relative") & pl.col("effect").is_null() & (pl.col("mean_control") == 0)
                    & (pl.col("n_control") > 0) & (pl.col("n_variant") > 0))
    absolute = {}
    if zero.height:
        a = experiment_summary(db, experiment, metrics=zero["metric"].unique(maintain_order=True).to_list(),
                               method=method, alpha=alpha, **{**kwargs, "relative": False})
        absolute = {(r["metric"], r["variant"]): r for r in a.iter_rows(named=True)}
        absolute = {k: absolute[k] for k in zip(zero["metric"], zero["variant"]) if k in absolute}
    rows = []
    for arm in s["variant"].unique(maintain_order=True).to_list():
        part = s.filter(pl.col("variant") == arm)
        srm_status = part["srm_status"][0]
        worse_guard, worse_goal, better_goal, likely_worse = [], [], [], []
        for r in part.iter_rows(named=True):
            r = absolute.get((r["metric"], arm), r)
            role = "guardrail" if r["metric"] in guards and r["metric"] not in goals else "goal"
            sign = DIRECTION.get(r["metric"], 1)
            if r["chance_to_win"] is None:
                r = {**r, "chance_to_win": chance_from_interval(r["effect"], r["lo"], r["hi"], sign, alpha,
                                                                se=r["se"])}
            if ((r["metric"] in guards or r["metric"] in GUARDRAILS) and r["chance_to_win"] is not None
                    and r["chance_to_win"] < guardrail_min_chance):
                likely_worse.append(f"{r['metric']} (chance to win {r['chance_to_win']:.2f})")
            verdict = _metric_verdict(r, sign, method, alpha, min_chance_to_win)
            if verdict == "worse":
                (worse_guard if role == "guardrail" else worse_goal).append(r["metric"])
            elif verdict == "better" and role == "goal":
                better_goal.append(r["metric"])
            rows.append({"experiment": experiment, "variant": arm, "metric": r["metric"], "role": role,
                         "direction": "higher is better" if sign > 0 else "lower is better", "effect": r["effect"],
                         "lo": r["lo"], "hi": r["hi"], "p_value": r["p_value"], "chance_to_win": r["chance_to_win"],
                         "srm_status": srm_status, "verdict": verdict, "scope": r["scope"], "relative": r["relative"]})
        if srm_status == "mismatch":
            overall = "invalid: sample ratio mismatch"
        elif worse_guard:
            overall = "do not ship: guardrail " + ", ".join(worse_guard) + " worse"
        elif worse_goal:
            overall = "do not ship: " + ", ".join(worse_goal) + " worse"
        elif likely_worse:
            overall = "keep running: " + ", ".join(likely_worse) + " likely worse"
        elif better_goal:
            overall = "ship"
        else:
            overall = "inconclusive"
        rows.append({"experiment": experiment, "variant": arm, "metric": "overall", "role": "overall",
                     "direction": None, "effect": None, "lo": None, "hi": None, "p_value": None,
                     "chance_to_win": None, "srm_status": srm_status, "verdict": overall,
                     "scope": part["scope"][0], "relative": None})
    schema = {"experiment": pl.String, "variant": pl.String, "metric": pl.String, "role": pl.String,
              "direction": pl.String, "effect": pl.Float64, "lo": pl.Float64, "hi": pl.Float64,
              "p_value": pl.Float64, "chance_to_win": pl.Float64, "srm_status": pl.String, "verdict": pl.String,
              "scope": pl.String, "relative": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


# Metrics that guard a decision even when they are goals: no "ship" while one of them is likely worse.
GUARDRAILS = ("hallucination_rate", "error_rate", "cost_usd")


def chance_from_interval(effect: float | None, lo: float | None, hi: float | None, sign: int, alpha: float = 0.05,
                         *, se: float | None = None) -> float | None:
    """Chance that the true effect is in the good direction (``sign``): Phi(sign effect / se), the Bayesian
    readout's chance under its flat prior. ``se`` is the effect's standard error; without one it is read off the
    1 - ``alpha`` interval as a normal one (a proportion's score interval). None without either.

    A t interval or a sequential confidence sequence is wider than the normal interval of the same standard error:
    read as one, it pulled the chance towards 0.5 (give ``se`` for those).

    >>> round(chance_from_interval(0.13, -0.24, 0.50, -1), 2)
    0.25
    >>> round(chance_from_interval(0.13, None, None, -1, se=0.1888), 2)
    0.25
    """
    from scipy.stats import norm

    if effect is None:
        return None
    if se is None or not se > 0 or not math.isfinite(se):
        if lo is None or hi is None or not math.isfinite(hi - lo) or hi <= lo:
            return None
        se = (hi - lo) / (2 * norm.ppf(1 - alpha / 2))
    return float(norm.cdf(sign * effect / se))


def _metric_verdict(r: Mapping[str, Any], sign: int, method: str, alpha: float, min_ctw: float) -> str:
    eff = r["effect"]
    if eff is None:
        return "no data"
    if method == "bayesian":
        ctw = r["chance_to_win"]
        if ctw is None:
            return "no clear difference"
        return "better" if ctw >= min_ctw else "worse" if ctw <= 1 - min_ctw else "no clear difference"
    p = r["p_value"]
    if p is None and r["lo"] is not None and r["hi"] is not None:  # a proportion's score interval, without a p
        return "better" if r["lo"] * sign > 0 and r["hi"] * sign > 0 else \
            "worse" if r["lo"] * sign < 0 and r["hi"] * sign < 0 else "no clear difference"
    if p is None or p >= alpha:
        return "no clear difference"
    return "better" if eff * sign > 0 else "worse"


# -- shadow comparison ------------------------------------------------------------------------------------------------


def shadow_comparison(
    db: Any,
    *,
    experiment: str | None = None,
    environment: str = "shadow",
    baseline: str = "production",
    start: Any = None,
    end: Any = None,
    where: M.Where = None,
    alpha: float = 0.05,
) -> "pl.DataFrame":
    """The same requests answered twice: paired differences (candidate - baseline) per trace, with a paired t interval.

    Calls are paired by ``trace_id``. The two sides are ``calls.environment`` = ``baseline`` (default
    ``production``) and ``environment`` (default ``shadow``); with ``experiment=`` they are instead the experiment's
    control arm and each other arm, read from ``calls.variant``. Per trace and side: latency is the longest span
    (the root span covers its children), cost the sum of ``cost_usd``, hallucination the mean
    ``hallucination_score`` of the side's scored calls. Only traces answered by both sides count.

    Returns
    -------
    polars.DataFrame
        ``baseline, candidate, metric, n_pairs, mean_baseline, mean_candidate, mean_diff, se, lo, hi, p_value,
        baseline_model, candidate_model, note``; ``note`` says so when a metric has no pairs (nothing to compare),
        naming the two sides.

    Raises
    ------
    UnknownNameError
        When ``environment`` or ``baseline`` is the environment of no call and close to one that is (a misspelling),
        naming the closest and the environments the calls have.
    TooFewError
        When it is the environment of no call and like none (a team that runs no shadow model): the report shows the
        message in place of the section.
    ParameterError
        With ``experiment=``, when its assignments hold one arm: there is nothing to pair it with.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, trace_id, ts, status, environment, latency_ms) values "
    ...     "('p1', 't1', '2026-01-01', 'ok', 'production', 100), ('s1', 't1', '2026-01-01', 'ok', 'shadow', 110),"
    ...     "('p2', 't2', '2026-01-01', 'ok', 'production', 200), ('s2', 't2', '2026-01-01', 'ok', 'shadow', 220),"
    ...     "('p3', 't3', '2026-01-01', 'ok', 'production', 300), ('s3', 't3', '2026-01-01', 'ok', 'shadow', 330)")
    >>> r = shadow_comparison(db).filter(metric="latency_ms")
    >>> r["n_pairs"][0], r["mean_diff"][0], round(r["lo"][0], 3), round(r["hi"][0], 3)
    (3, 20.0, -4.841, 44.841)
    >>> shadow_comparison(db, environment="shadw")
    Traceback (most recent call last):
    ...
    workbench.errors.UnknownNameError: shadow_comparison: environment: no environment 'shadw'; did you mean 'shadow'? (known: production, shadow)
    """
    import polars as pl

    from workbench.db import as_workbench

    from workbench.metrics.cost import priced_calls

    fn = "shadow_comparison"
    check_name(fn, "experiment", experiment, optional=True, what="an experiment")
    check_name(fn, "environment", environment, what="an environment")
    check_name(fn, "baseline", baseline, what="an environment")
    check_fraction(fn, "alpha", alpha)
    M.parse_where(where, fn=fn)
    db = as_workbench(db)
    c = priced_calls(db, start=start, end=end, where=where)
    # cost: the priced cost (reported where given, else computed from the price table); unpriced calls stay null
    c = c.mutate(cost_usd=c.cost_usd_used).drop([k for k in c.columns if k.startswith(("price_", "cost_usd_")) or k == "cost_source"])
    c = c.filter(c.trace_id.notnull())
    if experiment is not None:
        arms = _arm_counts(db, experiment, start=None, end=None, fn="shadow_comparison")["variant"].to_list()
        base = _control(arms, None, "shadow_comparison", experiment)
        side_col, pairs = "variant", [(base, a) for a in arms if a != base]
    else:
        side_col, pairs = "environment", [(baseline, environment)]
        # a misspelt side matches no call at all: said by name, not read as a shadow run that answered nothing
        known = to_polars(db.calls.select("environment").distinct())["environment"].drop_nulls().to_list()
        for param, value in (("environment", environment), ("baseline", baseline)):
            if value in known:
                continue
            if difflib.get_close_matches(value, known, n=1):
                raise UnknownNameError("environment", value, known, where=f"{fn}: {param}")
            # nothing like it: no such run at all (a team without a shadow model), not a misspelling
            raise TooFewError(f"{fn}: {param}={value!r}: no call is in that environment, nothing to compare "
                              f"(environments: {', '.join(sorted(known)) or 'none'})")
    ev = db.evals.filter(db.evals.metric == "hallucination_score")
    hs = ev.group_by("call_id").aggregate(h=ev.value.mean())
    c = c.left_join(hs, c.call_id == hs.call_id).select(*[c[k] for k in c.columns], hs.h)
    frames = []
    for base, cand in pairs:
        side = c.filter(c[side_col].isin([base, cand]))
        per = side.group_by(["trace_id", side_col]).aggregate(
            latency=side.latency_ms.max(), cost=side.cost_usd.sum(), h=side.h.mean(), model=side.model.arbitrary())
        b = per.filter(per[side_col] == base)
        k = per.filter(per[side_col] == cand)
        j = b.join(k, b.trace_id == k.trace_id)
        aggs = {}
        for name, col in (("latency_ms", "latency"), ("cost_usd", "cost"), ("hallucination_score", "h")):
            x, y = j[col], j[f"{col}_right"]
            ok = x.notnull() & y.notnull()
            d = (y - x).cast("float64")
            aggs |= {f"{name}__n": ok.sum(), f"{name}__sb": x.sum(where=ok), f"{name}__sc": y.sum(where=ok),
                     f"{name}__sd": d.sum(where=ok), f"{name}__sd2": (d * d).sum(where=ok)}
        aggs |= {"bm": j.model.arbitrary(), "cm": j.model_right.arbitrary()}
        r = to_polars(j.aggregate(**aggs)).row(0, named=True)
        for name in ("latency_ms", "cost_usd", "hallucination_score"):
            n = int(r[f"{name}__n"] or 0)
            eff = stats.paired_ttest(r[f"{name}__sd"] or 0.0, r[f"{name}__sd2"] or 0.0, n, alpha=alpha)
            frames.append({
                "baseline": base, "candidate": cand, "metric": name, "n_pairs": n,
                "mean_baseline": r[f"{name}__sb"] / n if n else None, "mean_candidate": r[f"{name}__sc"] / n if n else None,
                "mean_diff": eff.effect if n else None, "se": eff.se, "lo": eff.lo, "hi": eff.hi, "p_value": eff.p_value,
                "baseline_model": r["bm"], "candidate_model": r["cm"],
                "note": None if n else f"no pairs: no trace has {name} on both sides ({base} and {cand})"})
    schema = {"baseline": pl.String, "candidate": pl.String, "metric": pl.String, "n_pairs": pl.Int64,
              "mean_baseline": pl.Float64, "mean_candidate": pl.Float64, "mean_diff": pl.Float64, "se": pl.Float64,
              "lo": pl.Float64, "hi": pl.Float64, "p_value": pl.Float64, "baseline_model": pl.String,
              "candidate_model": pl.String, "note": pl.String}
    return pl.DataFrame(frames, schema=schema).with_columns(pl.col(pl.Float64).fill_nan(None))


# -- suite ------------------------------------------------------------------------------------------------------------


def experiment_effect(
    db: Any,
    *,
    by: Sequence[str] | str | None = ("experiment", "variant"),
    period: str = "all",
    start: Any = None,
    end: Any = None,
    where: M.Where = None,
    experiment: str | None = None,
    metric: str = "latency_ms",
    **options: Any,
) -> "pl.DataFrame":
    """Effect of each treatment arm on one per-unit metric, as a tidy frame (the suite's view of an experiment).

    Definition: the relative change of the arm's per-user mean over the control's, each user measured after exposure
    inside the experiment's scope (its declared feature by default; the ``scope`` column says which).

    Keys are ``experiment, variant``; ``metric`` is ``<metric>_effect``; ``value`` is the effect (relative by
    default), ``n`` the units in the arm and control, ``lo``/``hi`` the interval; ``p_value``, ``chance_to_win``,
    ``srm_status`` and ``scope`` (the experiment's declared feature by default, :func:`experiment_scope`) follow.
    Without ``experiment=``, every experiment in ``assignments`` is read out. Experiments are
    read over the whole window: ``period`` must be ``"all"`` and ``by`` a subset of ``("experiment", "variant")``.
    Other options go to :func:`experiment_summary` (``method=``, ``cuped=``, ``relative=``, ``unit=``).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into assignments (experiment, unit_id, variant, ts) values "
    ...     "('e', 'u1', 'control', '2026-01-01'), ('e', 'u2', 'treatment', '2026-01-01')")
    >>> import warnings; warnings.simplefilter("ignore")
    >>> experiment_effect(db, experiment="e").select("experiment", "variant", "metric", "n").rows()
    [('e', 'treatment', 'latency_ms_effect', 0)]
    """
    import polars as pl

    from workbench.db import as_workbench

    db = as_workbench(db)
    keys = ["experiment", "variant"]
    wanted = [by] if isinstance(by, str) else list(by or [])
    extra = [k for k in wanted if k not in keys]
    if extra:
        raise NotFoundError(f"experiment_effect: cannot group by {extra}; an experiment is split by experiment and variant")
    if period != "all":
        raise ParameterError(f"experiment_effect: experiments are read over the whole window; period must be 'all', "
                         f"got {period!r}")
    if experiment is None:
        a = M.scope(db.assignments, start=start, end=end)
        names = sorted(to_polars(a.select("experiment").distinct())["experiment"].to_list())
    else:
        names = [experiment]
    frames = [experiment_summary(db, name, metrics=(metric,), start=start, end=end, where=where, **options)
              for name in names]
    frames = [f for f in frames if f.height]
    if not frames:
        df = pl.DataFrame(schema={"experiment": pl.String, "variant": pl.String, "value": pl.Float64, "n": pl.Int64})
    else:
        df = pl.concat(frames).select(
            "experiment", "variant", pl.col("effect").alias("value"),
            (pl.col("n_control") + pl.col("n_variant")).alias("n"), "lo", "hi", "p_value", "chance_to_win",
            "srm_status", "scope")
    df = df.with_columns(pl.lit(M.as_timestamp(start), dtype=pl.Datetime("us")).alias("period_start"))
    return M.tidy(df, keys=keys, metric=f"{metric}_effect")


# Each metric registered once with its contract (workbench.metrics.core.Metric).
SUITE = M.register(
    M.Metric(experiment_effect, unit="ratio", direction="none", table="assignments", periods=("all",), needs=("experiment",), example={"experiment": "support_model_ab"}),
    namespace=globals(),
)

