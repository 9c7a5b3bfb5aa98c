"""Adoption: who uses the AI features, how often, whether they come back, and what that costs.

Every function has the metric signature of the workbench (see :mod:`workbench.metrics`)::

    fn(db, *, by=("feature",), period="day", start=None, end=None, where=None, **options) -> polars.DataFrame

and returns the tidy frame ``keys..., period_start, metric, value, n, lo, hi`` (+ extra columns after those).

Definitions (the choices, in one place)
---------------------------------------
*Activity* is a row of ``events`` (``activity="events"``), of ``calls`` with a ``user_id`` (``activity="calls"``) or of
either (``activity="both"``; then only the columns both tables have, ``user_id``, ``ts`` and ``feature``, can be used in
``by`` and ``where``). The default, ``activity="auto"``, reads ``events`` when a row of it names a user and ``calls``
otherwise: a team that logs no product events still sees who uses its AI features (their calls). A user is *active on a day* when they have at least one activity
row that UTC day. ``where`` and ``by`` select the activity (e.g. ``where={"feature": "assistant"}``).

*Active users are people.* At a calendar ``period`` (``"week"``: Monday to Sunday, ``"month"``, ``"all"``: the whole
``start .. end`` window) ``dau_count``, ``wau_count`` and ``mau_count`` are the **distinct users active in that
period**, an integer: ``wau_count`` for week 2026-W47 is the people active Monday to Sunday of W47 (so the three
metrics agree at a given calendar period; the name says which window ``period="day"`` rolls). ``n`` is the number of
days of the period covered by the data (a period cut by the start of the log or by the window holds fewer), also in
``window_days``; the column ``window`` says ``"calendar week"`` etc.

*Rolling active users* are the explicit daily series, ``period="day"``: on each UTC day ``d``, the distinct users
active in ``d - w + 1 .. d`` with ``w`` = 1, 7 and ``mau_days`` (28 by default: four whole weeks, so every weekday
counts four times and the MAU of a Monday and of a Sunday are comparable; 30 matches Amplitude's month); the column
``window`` says ``"rolling 7 days"`` etc. A day is counted even when nobody was active (value 0). ``start``/``end``
choose the days reported; the look-back before ``start`` is read so the first reported windows are whole. The extra
column ``window_days`` is the number of days of the rolling window covered by the data: below ``w`` near the start of
the log, where the counts are lower bounds. The average DAU of a week is the mean of ``dau_count(period="day")`` over
its days.

*Stickiness* has three explicit metrics: ``dau_mau_ratio`` (at ``period="day"`` the rolling DAU/MAU: mean DAU over the
trailing ``mau_days`` window divided by the MAU of that window; at a calendar period the mean DAU of the period divided
by the distinct users of the period: DAU/WAU for a week, DAU/MAU for a month), ``active_days_distribution`` (users with exactly and
at least N active days in each period; default ``period="week"``) and ``returning_share_rate`` (share of yesterday's
active users active again today, Wilson interval).

*Retention* (``retention_rate``) follows the cohort table of Amplitude and PostHog: users are grouped by the period of
their first activity (``cohort="first_ever"`` over all history, or ``"first_in_window"`` within ``start .. end``);
``offset`` N counts calendar ``grain`` periods (days, or Monday weeks) from the user's own first period.
``mode="n_day"`` counts users active exactly in period N; ``mode="unbounded"`` counts users active in period N **or
later** (so it never increases with N). Offsets that the data cannot yet show for every member of a cohort are left
out rather than reported as 0, and so is a period not over yet (the current week, or the week ``end`` cuts): its
returns so far would read as a drop.

*Lifecycle* (``lifecycle_count``) follows PostHog: in each period an active user is ``new`` (first period ever, in
any feature: PostHog's person-level definition; ``new="first_in_selection"`` offers first use of the group instead),
``returning`` (active in the previous period too) or ``resurrecting`` (not active in the previous period, active
before); ``dormant`` users were active in the previous period and not in this one and are counted negative.
The window is the one ``dau_count`` and ``wau_count`` count: activity in ``start .. end`` is the periods' activity;
activity before ``start`` decides who is new, returning or resurrecting, but the part of ``start``'s period before
``start`` is not activity of that period (a week started on a Wednesday counts Wednesday to Sunday).

*Funnels* (``funnel_conversion_rate``) are ordered: step k counts a user when it happens strictly after the time the
user reached step k-1 and within ``window_days`` of the user's first step-1 event in the selection, even after
``end`` (``start``/``end`` choose who enters; the funnel is anchored on that first event; PostHog instead tries every step-1 event and keeps the best, which counts a few more
users). Steps must share the ``by`` keys of the step-1 event.

Spark and the warehouses: every aggregate is an Ibis expression (the ``_*_expr`` helpers and the bodies of the
simpler metrics); only reshaping of the aggregated rows (calendars, zero filling, cumulative sums, intervals) happens
in polars. Joins on the group keys match null to null, so events without a ``feature`` form a group of their own.
"""

from __future__ import annotations

from workbench.errors import NotFoundError, ParameterError, check_int, check_name

import datetime as _dt
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.metrics import core as _m
from workbench.metrics.core import to_polars
from workbench.stats import difference_interval, wilson_interval

if TYPE_CHECKING:  # pragma: no cover
    import ibis.expr.types as ir
    import polars as pl

ACTIVITY_SOURCES = ("auto", "events", "calls", "both")
LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")
_UNIT = {"hour": "h", "day": "D", "week": "W", "month": "M"}
_STEP = {"hour": {"hours": 1}, "day": {"days": 1}, "week": {"days": 7}, "month": {"months": 1}}
_POLARS_EVERY = {"day": "1d", "week": "1w", "month": "1mo"}


# --------------------------------------------------------------------------------------------------------------------
# shared helpers


def _check_choice(fn: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ParameterError(f"{fn}: {name}: expected one of {', '.join(map(str, choices))}, got {value!r}")


def _names(fn: str, name: str, value: Any) -> tuple[str, ...]:
    """A tuple of names from a tuple/list or a comma-separated string (the CLI's ``--param steps=a,b``)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ParameterError(f"{fn}: {name}: expected a non-empty list of names, got {value!r}")
    return tuple(value)


def _day(value: Any) -> _dt.datetime | None:
    ts = _m.as_timestamp(value)
    return None if ts is None else _dt.datetime(ts.year, ts.month, ts.day)


def _step(period: str, k: int = 1) -> "ir.IntervalScalar":
    import ibis

    ((unit, n),) = _STEP[period].items()
    return ibis.interval(**{unit: n * k})


def _activity(db: Any, fn: str, *, activity: str, start: Any = None, end: Any = None, where: Any = None) -> "ir.Table":
    """The activity rows (user_id, ts and the grouping columns) in ``start <= ts < end`` matching ``where``."""
    _check_choice(fn, "activity", activity, ACTIVITY_SOURCES)
    if activity == "auto":
        ev = db.events  # an event names a user (anonymous events are no activity: they do not make events the source)
        activity = "events" if to_polars(ev.filter(ev.user_id.notnull()).select("user_id").limit(1)).height else "calls"
    if activity == "events":
        t = db.events
    elif activity == "calls":
        t = db.calls
    else:
        ev, ca = db.events, db.calls
        common = [c for c in ev.columns if c in ca.columns and c != "ingest_run_id"]
        t = ev.select(common).union(ca.select(common), distinct=False)
    # a where column the activity lacks: say which table the users are read from (a metric of calls' cost counts
    # its users in events, which has no model)
    lacking = [c for c in _m.parse_where(where) if c not in t.columns]
    if lacking:
        source = {"events": "events, where the active users are read from (activity='calls' reads calls)",
                  "calls": "calls, where the active users are read from (activity='events' reads events)",
                  "both": "events and calls (activity='both')"}[activity]
        raise NotFoundError(f"{fn}: where: no column {lacking[0]!r} in {source}; columns: {', '.join(t.columns)}")
    t = t.filter(t.user_id.notnull())
    return _m.scope(t, start=start, end=end, where=where)


#: Force the number of passes the distinct-user counts of the active-user metrics take, each pass over a disjoint
#: share of the users (by a hash of ``user_id``) and the counts summed: identical results in bounded memory. None
#: (default) chooses from the size of the tables against DuckDB's memory limit (:func:`workbench.metrics.core.
#: memory_passes`): one pass unless the distinct (group, user, day) tuples would not fit in it.
USER_PASSES: int | None = None
#: Bytes per activity row the distinct (group, user, day) tuples take at their peak, measured: 9.7 GB of RSS for
#: ``dau_count`` on 100M calls (80M distinct tuples) in one pass. DuckDB can spill them, so each pass may fill its
#: whole memory limit; but in one pass over 100M calls under a 1.5 GB limit the spilling aggregate ran out of memory in
#: one run of two, while 2, 4 and 8 passes always finished (38.0, 38.0 and 41.7 s; one pass, when it finished, 35 s).
_USER_BYTES_PER_ROW = 100
_USER_SHARE = 1.0


def _user_passes(t: "ir.Table") -> int:
    """How many disjoint user shares a distinct-user count over ``t`` takes (see :data:`USER_PASSES`)."""
    if USER_PASSES is not None:
        return max(1, int(USER_PASSES))
    return _m.memory_passes(t, _USER_BYTES_PER_ROW, _USER_SHARE)


def _user_share(t: "ir.Table", part: tuple[int, int] | None) -> "ir.Table":
    """The rows of ``t`` whose user falls in share ``i`` of ``k`` (``part = (i, k)``); all of them for None."""
    if part is None:
        return t
    i, k = part
    return t.filter(_duckdb_hash(t.user_id) % k == i)


@functools.cache
def _duckdb_hash_udf() -> Any:
    import ibis
    import ibis.expr.datatypes as dt

    @ibis.udf.scalar.builtin(name="hash", signature=((dt.string,), dt.uint64))
    def _hash(x):  # type: ignore[no-untyped-def]
        """DuckDB's hash() of a value, unsigned 64-bit."""

    return _hash


def _duckdb_hash(v: "ir.Value") -> "ir.IntegerValue":
    """DuckDB's own ``hash(v)`` (UBIGINT). Ibis's ``hash()`` compiles to a cast through a bit string, 2.5x slower per
    row (0.35 s against 0.14 s for a filter on 10M calls)."""
    return _duckdb_hash_udf()(v)


def _by_user_shares(build: Any, k: int, keys: Sequence[str], sums: Sequence[str],
                    mins: Sequence[str] = ()) -> "pl.DataFrame":
    """``build(part)`` (an expression per user share) run once, or once per share of ``k`` with the per-group counts
    summed (users are disjoint between shares, so distinct counts add up) and the ``mins`` taken over the shares."""
    import polars as pl

    if k == 1:
        return to_polars(build(None))
    frames = [to_polars(build((i, k))) for i in range(k)]
    return pl.concat(frames).group_by(list(keys)).agg(
        *[pl.col(c).sum() for c in sums], *[pl.col(c).min() for c in mins]).select(frames[0].columns)


def _join(left: "ir.Table", right: "ir.Table", cols: Sequence[str], how: str = "inner") -> "ir.Table":
    """Join on equal ``cols`` where null matches null (IS NOT DISTINCT FROM): events without a feature still join, and
    so does ``period_start`` at ``period="all"`` (null when no ``start`` is given). One copy of each column is kept
    (for an outer join the right copies stay, suffixed ``_right``, to be coalesced)."""
    j = left.join(right, [left[c].identical_to(right[c]) for c in cols], how=how)
    if how == "outer":
        return j
    return j.drop(*[f"{c}_right" for c in cols if f"{c}_right" in j.columns])


#: Columns an adoption metric makes of its own (the user it counts, the time it buckets): not keys of ``by``.
_OWN_COLUMNS = ("user_id", "ts")


def _check_by(t: "ir.Table", by: Any, *, fn: str) -> list[str]:
    """The group keys (:func:`workbench.metrics.core.check_by`), without the columns the metric counts or buckets by
    (``by=("user_id",)`` selected the column twice: an Ibis error about a duplicate column)."""
    keys = _m.check_by(t, by, fn=fn)
    own = [k for k in keys if k in _OWN_COLUMNS]
    if own:
        raise ParameterError(f"{fn}: by {own[0]!r}: the metric counts users over time itself; group by another "
                             f"column ({', '.join(c for c in t.columns if c not in _OWN_COLUMNS)})")
    return keys


def _last_day(db: Any, fn: str, *, activity: str, end: Any) -> "_dt.datetime | None":
    """The last day a series of days reports: the window's last day when ``end`` is given (up to the clock's day:
    later days are observed by no one), else the last day the activity table holds, over every group (one group's
    series does not end where its own activity does, nor where another group's does)."""
    from workbench.schema import utc_now

    e = _m.as_timestamp(end)
    if e is not None:
        return min(_day(e - _dt.timedelta(microseconds=1)), _day(utc_now()))
    t = _activity(db, fn, activity=activity)
    m = to_polars(t.aggregate(m=t.ts.max()))["m"][0]  # (a scalar's to_pyarrow() imports pandas: 0.28 s)
    return _day(m) if m is not None else None


def _user_periods(t: "ir.Table", keys: list[str], unit: str, name: str = "p") -> "ir.Table":
    """Distinct (keys, user, period): the grain every adoption metric starts from."""
    return t.select(*keys, "user_id", **{name: t.ts.cast("timestamp").truncate(unit)}).distinct()


def _periods_between(later: "ir.Value", earlier: "ir.Value", grain: str) -> "ir.IntegerValue":
    """Whole ``grain`` periods between two truncated timestamps (epoch arithmetic: portable, exact in UTC)."""
    if grain == "month":
        return ((later.year() - earlier.year()) * 12 + later.month() - earlier.month()).cast("int64")
    days = ((later.epoch_seconds() - earlier.epoch_seconds()) / 86400).round().cast("int64")
    return days if grain == "day" else (days / 7).round().cast("int64")


# --------------------------------------------------------------------------------------------------------------------
# active users: dau / wau / mau and the DAU/MAU ratio


def _rolling_expr(db: Any, fn: str, *, window: int, by: Any, start: Any, end: Any, where: Any,
                  activity: str, part: tuple[int, int] | None = None) -> "ir.Table":
    """Per (keys, day d): users active in d-window+1..d, user-days in that window, active users on d itself (of the
    users in share ``part``, see :func:`_user_share`)."""
    import ibis
    import pyarrow as pa

    s = _day(start)
    lookback = s - _dt.timedelta(days=window - 1) if s is not None else None
    t = _user_share(_activity(db, fn, activity=activity, start=lookback, end=end, where=where), part)
    keys = _check_by(t, by, fn=fn)
    ud = _user_periods(t, keys, "D", "day")
    if window == 1 and s is None:
        # A one-day window is the day itself: the distinct user-days counted per day, no expansion by offsets and no
        # second scan for the log's first day (with no start, the earliest day of the groups is that day).
        return ud.group_by([*keys, ud.day.name("d")]).aggregate(
            users=ud.count(), user_days=ud.count(), today=ud.count(), first_day=ud.day.min())
    # the first day of the selection over all history: windows before it are only partly observed
    full = _activity(db, fn, activity=activity, end=end, where=where)
    ud = ud.mutate(first_day=full.ts.cast("timestamp").truncate("D").min().as_scalar())
    # A user-day counts in the windows of days day .. day+window-1: expand by the offsets, then count per day.
    offsets = ibis.memtable(pa.table({"offset": pa.array(range(window), pa.int64())}))
    x = ud.cross_join(offsets)
    x = x.mutate(d=x.day + x.offset.as_interval("D"))
    if s is not None:
        x = x.filter(x.d >= s)
    return x.group_by([*keys, "d"]).aggregate(
        users=x.user_id.nunique(), user_days=x.count(), today=x.count(where=x.offset == 0), first_day=x.first_day.min()
    )


def _calendar(db: Any, fn: str, *, by: Any, period: str, start: Any, end: Any, where: Any, activity: str,
              ratio: bool) -> "pl.DataFrame":
    """Per calendar period (Monday week, month, or the whole window at ``"all"``): distinct active users, or the
    mean DAU of the period over those users (``ratio``). ``n`` is the days of the period covered by the data."""
    import polars as pl

    t = _activity(db, fn, activity=activity, start=start, end=end, where=where)
    keys = _check_by(t, by, fn=fn)

    def build(part: tuple[int, int] | None) -> "ir.Table":
        ud = _m.with_period(_user_periods(_user_share(t, part), keys, "D", "day"), period, time="day", start=start)
        return ud.group_by([*keys, "period_start"]).aggregate(users=ud.user_id.nunique(), user_days=ud.count())

    agg = _by_user_shares(build, _user_passes(t), [*keys, "period_start"], sums=("users", "user_days"))
    if agg.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=fn)
    # the days observed: from the first day of the selection over all history (or start) to the window's last day
    # (the log's last day without end), so a period cut by the edge of the log or of the window says how many of
    # its days it holds
    full = _activity(db, fn, activity=activity, end=end, where=where)
    log_first = _day(full.ts.min().to_pyarrow().as_py())
    s = _day(start)
    first = max(log_first, s) if s is not None else log_first
    last = _last_day(db, fn, activity=activity, end=end)
    days = pl.DataFrame({"d": pl.datetime_range(first, last, "1d", time_unit="us", eager=True)})
    if period == "all":
        days = days.with_columns(pl.lit(_m.as_timestamp(start), dtype=pl.Datetime("us")).alias("period_start"))
    else:
        days = days.with_columns(pl.col("d").dt.truncate(_POLARS_EVERY[period]).alias("period_start"))
    covered = days.group_by("period_start").agg(pl.len().cast(pl.Int64).alias("n"))
    agg = agg.with_columns(pl.col("period_start").cast(pl.Datetime("us")))
    groups = agg.select(keys).unique() if keys else None
    grid = groups.join(covered, how="cross") if groups is not None else covered
    df = grid.join(agg, on=[*keys, "period_start"], how="left", nulls_equal=True).with_columns(
        pl.col("users", "user_days").fill_null(0))
    if ratio:  # mean DAU of the period / distinct users of the period; undefined when nobody was active
        value = pl.when(pl.col("users") > 0).then(pl.col("user_days") / pl.col("n") / pl.col("users"))
    else:
        value = pl.col("users").cast(pl.Float64)
    df = df.with_columns(value.alias("value"), pl.col("n").alias("window_days"),
                         pl.lit(f"calendar {period}" if period != "all" else "calendar window").alias("window"))
    # an undefined ratio (nobody active in the period) has n = 0, as every undefined value of the suite (it had the
    # period's days, 7, beside a null)
    df = df.with_columns(pl.when(pl.col("value").is_null()).then(0).otherwise(pl.col("n")).alias("n"))
    return _m.tidy(df.drop("users", "user_days"), keys=keys, metric=fn)


def _rolling(db: Any, fn: str, *, window: int, by: Any, period: str, start: Any, end: Any, where: Any, activity: str,
             ratio: bool) -> "pl.DataFrame":
    import polars as pl

    _check_choice(fn, "period", period, ("day", "week", "month", "all"))
    if period != "day":
        return _calendar(db, fn, by=by, period=period, start=start, end=end, where=where, activity=activity,
                         ratio=ratio)
    expr = _rolling_expr(db, fn, window=window, by=by, start=start, end=end, where=where, activity=activity)
    keys = [c for c in expr.columns if c not in ("d", "users", "user_days", "today", "first_day")]
    k = _user_passes(_activity(db, fn, activity=activity, end=end, where=where))
    agg = _by_user_shares(
        lambda part: expr if part is None else _rolling_expr(db, fn, window=window, by=by, start=start, end=end,
                                                             where=where, activity=activity, part=part),
        k, [*keys, "d"], sums=("users", "user_days", "today"), mins=("first_day",))
    metric = fn
    if agg.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=metric)
    agg = agg.with_columns(pl.col("d").cast(pl.Datetime("us")), pl.col("first_day").cast(pl.Datetime("us")))
    log_first = agg["first_day"].min()
    last = _last_day(db, fn, activity=activity, end=end)
    s = _day(start)
    first = max(log_first, s) if s is not None else log_first
    if last is None or last < first:  # the window ends before the log begins: nothing to report
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=metric)
    calendar = pl.DataFrame({"d": pl.datetime_range(first, last, "1d", time_unit="us", eager=True)})
    groups = agg.select(keys).unique() if keys else None
    grid = groups.join(calendar, how="cross") if groups is not None else calendar
    df = grid.join(agg.drop("first_day"), on=[*keys, "d"], how="left", nulls_equal=True).with_columns(
        pl.col("users", "user_days", "today").fill_null(0)
    )
    covered = ((pl.col("d") - pl.lit(log_first)).dt.total_days() + 1).clip(upper_bound=window)
    df = df.with_columns(covered.cast(pl.Int64).alias("window_days"))
    if ratio:
        # mean DAU over the covered window / distinct users of the window; undefined on a day with no one active.
        daily = pl.when(pl.col("users") > 0).then(pl.col("user_days") / pl.col("window_days") / pl.col("users"))
    else:
        daily = pl.col("users").cast(pl.Float64)
    df = df.with_columns(daily.alias("daily"))
    out = df.select(*keys, pl.col("d").alias("period_start"), pl.col("daily").alias("value"),
                    pl.col("daily").is_not_null().cast(pl.Int64).alias("n"), "window_days",
                    pl.lit(f"rolling {window} day{'s' if window > 1 else ''}").alias("window"))
    return _m.tidy(out, keys=keys, metric=metric)


def dau_count(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto"):
    """Active users: people active in the calendar period (week, month, window); at period="day", active that day.

    Definition: at ``period="day"`` the distinct users active on each UTC day; at ``"week"``, ``"month"`` or
    ``"all"`` the distinct users active in that calendar period (so it equals ``wau_count``/``mau_count`` there).

    Parameters
    ----------
    db : Workbench
    by, period, start, end, where
        The metric selection (see :mod:`workbench.metrics`). ``period`` is ``day``, ``week``, ``month`` or ``all``;
        ``n`` is the number of days of the period covered by the data.
    activity : {"auto", "events", "calls", "both"}
        Where activity is read from.

    Returns
    -------
    polars.DataFrame
        The tidy frame, plus ``window_days`` (days of the window covered by the data) and ``window`` (which
        definition: ``"rolling 1 day"``, ``"calendar week"``...). Higher is more use.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u2', '2026-01-01 10:00', 'ask', 'chat'),"
    ...     "('3', 'u1', '2026-01-01 11:00', 'ask', 'chat'), ('4', 'u1', '2026-01-03 09:00', 'ask', 'chat')")
    >>> dau_count(db).select("period_start", "value").rows()  # doctest: +NORMALIZE_WHITESPACE
    [(datetime.datetime(2026, 1, 1, 0, 0), 2.0), (datetime.datetime(2026, 1, 2, 0, 0), 0.0),
     (datetime.datetime(2026, 1, 3, 0, 0), 1.0)]
    """
    return _rolling(db, "dau_count", window=1, by=by, period=period, start=start, end=end, where=where,
                    activity=activity, ratio=False)


def wau_count(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto"):
    """Weekly active users: people active Monday to Sunday of the week; at period="day", rolling over d-6 .. d.

    Definition: at ``period="week"`` (and ``"month"``, ``"all"``) the distinct users active in that calendar period,
    an integer; at ``period="day"`` the rolling value: on day d, the distinct users active in d-6 .. d.

    Parameters and returns as :func:`dau_count`.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u2', '2026-01-03 10:00', 'ask', 'chat'),"
    ...     "('3', 'u1', '2026-01-09 11:00', 'ask', 'chat')")
    >>> wau_count(db, start="2026-01-07", end="2026-01-10").select("period_start", "value").rows()
    ... # doctest: +NORMALIZE_WHITESPACE
    [(datetime.datetime(2026, 1, 7, 0, 0), 2.0), (datetime.datetime(2026, 1, 8, 0, 0), 1.0),
     (datetime.datetime(2026, 1, 9, 0, 0), 2.0)]
    """
    return _rolling(db, "wau_count", window=7, by=by, period=period, start=start, end=end, where=where,
                    activity=activity, ratio=False)


def _check_mau_days(fn: str, mau_days: Any) -> int:
    _check_choice(fn, "mau_days", mau_days, (28, 30))
    return mau_days


def mau_count(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto", mau_days=28):
    """Monthly active users: people active in the calendar month; at period="day", rolling over ``mau_days`` days.

    Definition: at ``period="month"`` (and ``"week"``, ``"all"``) the distinct users active in that calendar period,
    an integer; at ``period="day"`` the rolling value: on day d, the distinct users active in the ``mau_days`` days
    ending on d.

    Parameters
    ----------
    mau_days : {28, 30}
        Window length. 28 (default) holds four of each weekday, so MAU does not wobble with the weekday mix; 30 is
        Amplitude's month.

    Other parameters and returns as :func:`dau_count`.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u2', '2026-01-20 10:00', 'ask', 'chat'),"
    ...     "('3', 'u3', '2026-01-29 11:00', 'ask', 'chat')")
    >>> mau_count(db, start="2026-01-29", end="2026-01-30").select("value", "window_days").rows()  # u1 left on day 29
    [(2.0, 28)]
    >>> mau_count(db, start="2026-01-29", end="2026-01-30", mau_days=30).select("value", "window_days").rows()
    [(3.0, 29)]
    """
    mau_days = _check_mau_days("mau_count", mau_days)
    return _rolling(db, "mau_count", window=mau_days, by=by, period=period, start=start, end=end, where=where,
                    activity=activity, ratio=False)


def dau_mau_ratio(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto",
                  mau_days=28):
    """Stickiness: average daily active users of the period / people active in it (DAU/WAU for a week, DAU/MAU a month).

    Definition, per period (the ``window`` column names it): at a calendar ``period`` (``"week"``, ``"month"``,
    ``"all"``) the mean DAU over the period's days divided by the distinct users active in the period, i.e. the mean
    share of the period's days on which its users came (DAU/WAU for a week, DAU/MAU for a month); at
    ``period="day"`` the rolling DAU/MAU: on day d, mean DAU over the ``mau_days`` window ending on d / that window's
    MAU. 1 when every user comes every day; undefined when nobody was active. ``n`` is the days of the period. No
    interval.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u1', '2026-01-02 10:00', 'ask', 'chat'),"
    ...     "('3', 'u2', '2026-01-02 11:00', 'ask', 'chat')")
    >>> # on Jan 2 the covered window is 2 days: 3 user-days / 2 days = 1.5 mean DAU, over 2 users
    >>> dau_mau_ratio(db, start="2026-01-02").select("value", "n", "window_days").rows()
    [(0.75, 1, 2)]
    """
    mau_days = _check_mau_days("dau_mau_ratio", mau_days)
    return _rolling(db, "dau_mau_ratio", window=mau_days, by=by, period=period, start=start, end=end, where=where,
                    activity=activity, ratio=True)


# --------------------------------------------------------------------------------------------------------------------
# stickiness: active days, returning share


def _active_days_expr(db: Any, fn: str, *, by: Any, period: str, start: Any, end: Any, where: Any, activity: str):
    t = _activity(db, fn, activity=activity, start=start, end=end, where=where)
    keys = _check_by(t, by, fn=fn)
    ud = _m.with_period(_user_periods(t, keys, "D", "day"), period, time="day", start=start)
    per_user = ud.group_by([*keys, "period_start", "user_id"]).aggregate(active_days=ud.count(), first=ud.day.min(),
                                                                           last=ud.day.max())
    return keys, per_user.group_by([*keys, "period_start", "active_days"]).aggregate(
        exactly_count=per_user.count(), first=per_user.first.min(), last=per_user.last.max()
    )


def active_days_distribution(db, *, by=("feature",), period="week", start=None, end=None, where=None,
                             activity="auto"):
    """Users with exactly N and at least N active days in each period (PostHog's stickiness histogram).

    Parameters
    ----------
    period : {"week", "month", "day", "all"}
        The window the days are counted in; default ``"week"`` (N = 1..7) since a day window is trivially N = 1.
        ``"all"`` counts days over the whole selection, N = 1 .. days from ``start`` to ``end`` (else the days seen).
    activity : {"auto", "events", "calls", "both"}

    Returns
    -------
    polars.DataFrame
        One row per N with extra columns ``active_days`` (N), ``exactly_count`` and ``at_least_count``; ``value`` is
        ``exactly_count``, ``n`` the active users of the period (so ``at_least_count`` at N = 1 equals ``n``).

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-05 09:00', 'ask', 'chat'), ('2', 'u1', '2026-01-06 10:00', 'ask', 'chat'),"
    ...     "('3', 'u2', '2026-01-06 11:00', 'ask', 'chat'), ('4', 'u2', '2026-01-06 12:00', 'ask', 'chat')")
    >>> active_days_distribution(db).select("active_days", "exactly_count", "at_least_count", "n").rows()[:3]
    [(1, 1, 2, 2), (2, 1, 1, 2), (3, 0, 0, 2)]
    """
    import polars as pl

    fn = "active_days_distribution"
    _check_choice(fn, "period", period, ("day", "week", "month", "all"))
    keys, expr = _active_days_expr(db, fn, by=by, period=period, start=start, end=end, where=where, activity=activity)
    agg = to_polars(expr)
    if agg.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=fn)
    agg = agg.with_columns(pl.col("period_start").cast(pl.Datetime("us")), pl.col("active_days").cast(pl.Int64))
    if period == "all":
        s, e = _m.as_timestamp(start), _m.as_timestamp(end)
        if s is not None and e is not None:
            span = int(-(-(e - s).total_seconds() // 86400))
        else:
            span = (agg["last"].max() - agg["first"].min()).days + 1
    rows = []
    for grp in agg.partition_by([*keys, "period_start"], maintain_order=True):
        p = grp["period_start"][0]
        if period == "day":
            max_n = 1
        elif period == "week":
            max_n = 7
        elif period == "month":
            nxt = _dt.datetime(p.year + p.month // 12, p.month % 12 + 1, 1)
            max_n = (nxt - p).days
        else:
            max_n = span
        max_n = max(max_n, int(grp["active_days"].max()))
        counts = dict(zip(grp["active_days"].to_list(), grp["exactly_count"].to_list()))
        exactly = [counts.get(k, 0) for k in range(1, max_n + 1)]
        at_least = [sum(exactly[k - 1:]) for k in range(1, max_n + 1)]
        base = {k: grp[k][0] for k in keys} | {"period_start": p}
        for i in range(max_n):
            rows.append(base | {"active_days": i + 1, "exactly_count": exactly[i], "at_least_count": at_least[i],
                                "n": at_least[0]})
    out = pl.DataFrame(rows, schema_overrides={"period_start": pl.Datetime("us")}).with_columns(
        pl.col("exactly_count").cast(pl.Float64).alias("value")
    )
    out = _m.tidy(out, keys=keys, metric=fn)
    return out.sort([*keys, "period_start", "active_days"], nulls_last=True)


def _returning_expr(db: Any, fn: str, *, by: Any, start: Any, end: Any, where: Any, activity: str):
    import ibis

    s = _day(start)
    t = _activity(db, fn, activity=activity, start=s - _dt.timedelta(days=1) if s else None, end=end, where=where)
    keys = _check_by(t, by, fn=fn)
    ud = _user_periods(t, keys, "D", "day")
    w = ibis.window(group_by=[*keys, "user_id"], order_by="day")
    one = _step("day")
    # each user-day is a "yesterday" row for day + 1; it succeeds when the user's next active day is day + 1.
    r = ud.mutate(today=ud.day + one, back=ud.day.lead().over(w) == ud.day + one)
    last = _last_day(db, fn, activity=activity, end=end)  # a day after it has no "today" observed yet
    r = r.filter(r.today <= last) if last is not None else r.filter(ibis.literal(False))
    if s is not None:
        r = r.filter(r.today >= s)
    return keys, r


def returning_share_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto",
                         confidence=0.95):
    """Share of yesterday's active users who are active again today (day-over-day stickiness), Wilson interval.

    ``period_start`` is "today"; ``n`` is the number of users active yesterday. Coarser periods pool the days
    (returners summed over the period's days / yesterday's users summed). Higher is stickier.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u2', '2026-01-01 10:00', 'ask', 'chat'),"
    ...     "('3', 'u1', '2026-01-02 11:00', 'ask', 'chat')")
    >>> returning_share_rate(db).select("period_start", "value", "n").rows()
    [(datetime.datetime(2026, 1, 2, 0, 0), 0.5, 2)]
    """
    fn = "returning_share_rate"
    _check_choice(fn, "period", period, ("day", "week", "month", "all"))
    keys, r = _returning_expr(db, fn, by=by, start=start, end=end, where=where, activity=activity)
    return _m.proportion(r, r.back, by=keys, period=period, metric=fn, time="today", start=start, end=end, confidence=confidence)


# --------------------------------------------------------------------------------------------------------------------
# retention


def _retention_expr(db: Any, fn: str, *, by: Any, period: str, start: Any, end: Any, where: Any, activity: str,
                    grain: str, cohort: str):
    t = _activity(db, fn, activity=activity, start=start if cohort == "first_in_window" else None, end=end, where=where)
    keys = _check_by(t, by, fn=fn)
    unit = {"day": "D", "week": "W", "month": "M"}[grain]
    ug = _user_periods(t, keys, unit, "g")
    # the cohort is the period of the user's first instant, not of its first grain period (a Sunday Feb 1 is in the
    # week of Jan 26: truncated again to a month, that put it in January's cohort)
    firsts = t.group_by([*keys, "user_id"]).aggregate(first_ts=t.ts.min())
    firsts = firsts.mutate(first_g=firsts.first_ts.cast("timestamp").truncate(unit))
    s = _m.as_timestamp(start)
    if cohort == "first_ever" and s is not None:
        firsts = firsts.filter(firsts.first_ts >= s)  # a cohort never starts before start
    firsts = _m.with_period(firsts, period, time="first_ts", start=start).rename(cohort_start="period_start")
    firsts = firsts.drop("first_ts")
    j = _join(ug, firsts, [*keys, "user_id"])
    j = j.mutate(offset=_periods_between(j.g, j.first_g, grain))
    per_user = j.group_by([*keys, "cohort_start", "user_id"]).aggregate(last_offset=j.offset.max())
    counts = j.group_by([*keys, "cohort_start", "offset"]).aggregate(exact=j.count())
    lasts = per_user.group_by([*keys, "cohort_start", "last_offset"]).aggregate(ending=per_user.count())
    # the last period the log observes: of every activity up to end, not only the selection's (with where on a
    # feature, the last day of that feature: its churned users' offsets were left out instead of reported as 0)
    log = _activity(db, fn, activity=activity, end=end)
    sizes = firsts.group_by([*keys, "cohort_start"]).aggregate(
        cohort_size=firsts.count(), last_first_g=firsts.first_g.max()
    ).mutate(last_g=log.ts.max().cast("timestamp").truncate(unit).as_scalar())
    return keys, counts, lasts, sizes


def _last_whole(grain: str, end: Any) -> _dt.datetime:
    """The start of the last ``grain`` period that is over by ``end`` and by the clock (the one before the period
    either falls in, unless it falls on a boundary)."""
    from workbench.schema import utc_now

    e = _m.as_timestamp(end)
    seen_to = min(e, utc_now()) if e is not None else utc_now()
    prev, cur, nxt = _m.period_bounds(seen_to - _dt.timedelta(microseconds=1), grain)
    return cur if nxt <= seen_to else prev


def retention_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto",
                   mode="n_day", grain=None, cohort="first_ever", max_offset=None, confidence=0.95):
    """Cohort retention: share of a first-use cohort active in period N after their first period.

    Definition: of the users whose first activity falls in a cohort period, the share active again N periods later,
    N counted in ``grain`` (by default the same unit as ``period``: days, Monday weeks or calendar months; the
    result's ``grain`` column says which).

    Parameters
    ----------
    period : {"day", "week", "month", "all"}
        Cohort width: users whose first activity falls in the same period form a cohort (``cohort_start``).
    mode : {"n_day", "unbounded"}
        ``n_day``: active exactly in period N (Amplitude's N-day retention). ``unbounded``: active in period N or any
        later one (Amplitude's unbounded retention, "returned on or after N"); never increases with N.
    grain : {"day", "week", "month"}, optional
        The unit of N: calendar UTC days, Monday weeks or calendar months, counted from each user's own first day
        (week, month). Default: the unit of ``period`` (``"day"`` for ``period="all"``).
    cohort : {"first_ever", "first_in_window"}
        ``first_ever``: a user belongs to the cohort of their first activity over all history, and only cohorts
        starting at or after ``start`` are reported (users seen before ``start`` are not new). ``first_in_window``:
        history before ``start`` is ignored, every user active in the window is in the cohort of their first activity
        in it.
    max_offset : int, optional
        Largest N reported; by default every N the data can show for all members of the cohort, in periods that
        are over (by ``end`` and by the clock: the week still running is no offset yet).
    activity : {"auto", "events", "calls", "both"}
    confidence : float
        Level of the Wilson interval.

    Returns
    -------
    polars.DataFrame
        Tidy rows with ``period_start`` = ``cohort_start``, extra columns ``cohort_start``, ``offset`` (N),
        ``cohort_size`` and ``grain`` (the unit of N); ``value`` = retained / cohort_size, ``n`` = cohort_size.
        N = 0 is 1 by construction.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u2', '2026-01-01 10:00', 'ask', 'chat'),"
    ...     "('3', 'u1', '2026-01-03 11:00', 'ask', 'chat'), ('4', 'u3', '2026-01-03 12:00', 'ask', 'chat')")
    >>> r = retention_rate(db, mode="n_day").filter(pl.col("cohort_size") == 2)
    >>> r.select("offset", "value").rows()  # u1 back on day 2 only
    [(0, 1.0), (1, 0.0), (2, 0.5)]
    >>> retention_rate(db, mode="unbounded").filter(pl.col("cohort_size") == 2).select("offset", "value").rows()
    [(0, 1.0), (1, 0.5), (2, 0.5)]
    """
    import polars as pl

    fn = "retention_rate"
    _check_choice(fn, "mode", mode, ("n_day", "unbounded"))
    _check_choice(fn, "period", period, ("day", "week", "month", "all"))
    if grain is None:  # N follows the period: week cohorts are followed week by week
        grain = period if period in ("day", "week", "month") else "day"
    _check_choice(fn, "grain", grain, ("day", "week", "month"))
    _check_choice(fn, "cohort", cohort, ("first_ever", "first_in_window"))
    if max_offset is not None:
        max_offset = check_int(fn, "max_offset", max_offset, lo=0)
    keys, counts, lasts, sizes = _retention_expr(db, fn, by=by, period=period, start=start, end=end, where=where,
                                                 activity=activity, grain=grain, cohort=cohort)
    sz = to_polars(sizes)
    if sz.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=fn)
    # a period the clock (or end) has not finished holds only part of its returns: not an offset yet
    sz = sz.with_columns(pl.min_horizontal(pl.col("last_g").cast(pl.Datetime("us")),
                                           pl.lit(_last_whole(grain, end), pl.Datetime("us"))).alias("last_g"))
    if grain == "month":
        lg, fg = pl.col("last_g"), pl.col("last_first_g")
        max_n = (lg.dt.year() - fg.dt.year()) * 12 + lg.dt.month().cast(pl.Int32) - fg.dt.month().cast(pl.Int32)
    else:
        max_n = ((pl.col("last_g") - pl.col("last_first_g")).dt.total_days()) // (1 if grain == "day" else 7)
    # (a cohort of the current period keeps offset 0, 1 by construction)
    sz = sz.with_columns(max_n.cast(pl.Int64).clip(lower_bound=0).alias("max_n"),
                         pl.col("cohort_start").cast(pl.Datetime("us")))
    if max_offset is not None:
        sz = sz.with_columns(pl.col("max_n").clip(upper_bound=max_offset))
    grid = sz.with_columns(pl.int_ranges(0, pl.col("max_n") + 1).alias("offset")).explode("offset")
    grid = grid.with_columns(pl.col("offset").cast(pl.Int64)).drop("last_g", "last_first_g", "max_n")
    if mode == "n_day":
        c = to_polars(counts).with_columns(pl.col("cohort_start").cast(pl.Datetime("us")),
                                            pl.col("offset").cast(pl.Int64))
        df = grid.join(c, on=[*keys, "cohort_start", "offset"], how="left", nulls_equal=True)
        df = df.with_columns(pl.col("exact").fill_null(0).alias("k")).drop("exact")
    else:
        ls = to_polars(lasts).with_columns(pl.col("cohort_start").cast(pl.Datetime("us")),
                                            pl.col("last_offset").cast(pl.Int64))
        df = grid.join(ls, on=[*keys, "cohort_start"], how="left", nulls_equal=True)
        df = df.group_by([*keys, "cohort_start", "offset", "cohort_size"]).agg(
            pl.col("ending").filter(pl.col("last_offset") >= pl.col("offset")).sum().alias("k")
        )
    lo, hi = wilson_interval(df["k"].to_numpy(), df["cohort_size"].to_numpy(), confidence=confidence)
    df = df.with_columns(
        (pl.col("k") / pl.col("cohort_size")).alias("value"), pl.col("cohort_size").alias("n"),
        pl.col("cohort_start").alias("period_start"), pl.Series("lo", lo), pl.Series("hi", hi),
        pl.lit(grain).alias("grain"),
    ).select(*keys, "period_start", "value", "n", "lo", "hi", "cohort_start", "offset", "cohort_size", "grain")
    return _m.tidy(df, keys=keys, metric=fn).sort([*keys, "cohort_start", "offset"], nulls_last=True)


# --------------------------------------------------------------------------------------------------------------------
# lifecycle


LIFECYCLE_NEW = ("first_ever", "first_in_selection")


def _lifecycle_expr(db: Any, fn: str, *, by: Any, period: str, start: Any, end: Any, where: Any, activity: str,
                    new: str = "first_ever"):
    import ibis

    t = _activity(db, fn, activity=activity, end=end, where=where)  # all history before start: "new" needs it
    keys = _check_by(t, by, fn=fn)
    s = _m.as_timestamp(start)
    if s is not None:
        # the periods before start's are history (who is new, returning); the part of start's own period before
        # start is neither: its activity is outside the window, as for dau_count/wau_count
        first = ibis.literal(s, type="timestamp").truncate(_UNIT[period])
        t = t.filter((t.ts >= s) | (t.ts < first))
    up = _user_periods(t, keys, _UNIT[period], "period_start")
    w = ibis.window(group_by=[*keys, "user_id"], order_by="period_start")
    one = _step(period)
    up = up.mutate(prev=up.period_start.lag().over(w), nxt=up.period_start.lead().over(w),
                   first=up.period_start.min().over(ibis.window(group_by=[*keys, "user_id"])),
                   last_p=up.period_start.max().over(ibis.window()))
    if new == "first_ever":
        # PostHog: a person is new in the period of their first activity at all (any feature, any event)
        every = _activity(db, fn, activity=activity, end=end)
        firsts = every.group_by(_fe_user="user_id").aggregate(
            _fe_first=every.ts.min().cast("timestamp").truncate(_UNIT[period]))
        up = up.left_join(firsts, up.user_id == firsts._fe_user)
        up = up.mutate(first=up._fe_first).drop("_fe_user", "_fe_first")
    status = ibis.cases(
        (up.period_start == up.first, "new"),
        (up.prev == up.period_start - one, "returning"),
        else_="resurrecting",
    )
    active = up.select(*keys, "user_id", "period_start", "last_p", status=status)
    gone = up.filter(up.nxt.isnull() | (up.nxt != up.period_start + one))
    dormant = gone.select(*keys, "user_id", "last_p", period_start=gone.period_start + one,
                          status=ibis.literal("dormant"))
    both = active.union(dormant.select(active.columns), distinct=False)
    both = both.filter(both.period_start <= both.last_p)  # no dormant period after the data ends
    return keys, both.group_by([*keys, "period_start", "status"]).aggregate(users=both.count())


def lifecycle_count(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto",
                    new="first_ever"):
    """Users per lifecycle status per period (PostHog's lifecycle): new, returning, resurrecting and dormant (negative).

    Definition (``new="first_ever"``, the default, PostHog's): a user is **new** in the period of their first activity
    at all (in any feature), **returning** when active this period and the previous one, **resurrecting** when active
    this period but not the previous one (a known user's first use of this feature included), **dormant** (counted
    negative) when active the previous period and not this one. ``new="first_in_selection"`` counts a user as new
    in the period of their first activity in the group itself (e.g. first use of the feature).

    * ``new``: this period is the user's first active period (over all history before ``end``): at all
      (``"first_ever"``) or in the group (``"first_in_selection"``).
    * ``returning``: active this period and the previous one.
    * ``resurrecting``: active this period, not the previous one, and not new.
    * ``dormant``: active the previous period, not this one; the value is **minus** the number of users.

    The window: a period's activity is its activity in ``start .. end``, as ``dau_count``/``wau_count`` count it, so
    the first period, cut by a ``start`` inside it, counts only its days from ``start`` on. Activity before
    ``start`` is history: it decides who is new (their first activity) and who is returning, resurrecting or dormant
    in the first period, and is never counted as activity of a period of the window.

    Parameters
    ----------
    period : {"hour", "day", "week", "month"}
    activity : {"auto", "events", "calls", "both"}
    new : {"first_ever", "first_in_selection"}
        Which first activity makes a user new: at all (PostHog, default) or in the group/selection.

    Returns
    -------
    polars.DataFrame
        Four rows per period with the extra columns ``status`` and ``new_definition``; ``n`` is the number of users
        classified in the period (active this period or the previous one), so a status with nobody has value 0.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u2', '2026-01-01 10:00', 'ask', 'chat'),"
    ...     "('3', 'u1', '2026-01-02 11:00', 'ask', 'chat')")
    >>> lifecycle_count(db, start="2026-01-02").select("status", "value", "n").rows()
    [('new', 0.0, 2), ('returning', 1.0, 2), ('resurrecting', 0.0, 2), ('dormant', -1.0, 2)]
    """
    import polars as pl

    fn = "lifecycle_count"
    _check_choice(fn, "period", period, ("hour", "day", "week", "month"))
    _check_choice(fn, "new", new, LIFECYCLE_NEW)
    keys, expr = _lifecycle_expr(db, fn, by=by, period=period, start=start, end=end, where=where, activity=activity,
                                 new=new)
    agg = to_polars(expr).with_columns(pl.col("period_start").cast(pl.Datetime("us")))
    s = _m.as_timestamp(start)
    if s is not None:
        first = pl.lit(s).dt.truncate({"hour": "1h", **_POLARS_EVERY}[period])
        agg = agg.filter(pl.col("period_start") >= first)
    if agg.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=fn)
    periods = agg.select(*keys, "period_start").unique()
    grid = periods.join(pl.DataFrame({"status": list(LIFECYCLE_STATUSES)}), how="cross")
    df = grid.join(agg, on=[*keys, "period_start", "status"], how="left", nulls_equal=True).with_columns(
        pl.col("users").fill_null(0)
    )
    df = df.with_columns(
        pl.col("users").sum().over([*keys, "period_start"]).alias("n"),
        pl.when(pl.col("status") == "dormant").then(-pl.col("users")).otherwise(pl.col("users")).alias("value"),
        pl.col("status").replace_strict({s: i for i, s in enumerate(LIFECYCLE_STATUSES)}).alias("_order"),
        pl.lit(new).alias("new_definition"),
    )
    out = _m.tidy(df.drop("users"), keys=keys, metric=fn)
    return out.sort([*keys, "period_start", "_order"], nulls_last=True).drop("_order")


# --------------------------------------------------------------------------------------------------------------------
# funnels


def _funnel_expr(db: Any, fn: str, *, steps: tuple[str, ...], window_days: int, by: Any, period: str, start: Any,
                 end: Any, where: Any):
    import ibis

    # users enter in [start, end); their later steps are read up to window_days after end, as the funnel's window
    # of a user who entered near the end runs past it (steps after end were not seen: that user had hours, not
    # window_days, to convert)
    e = _m.as_timestamp(end)
    ev = _m.scope(db.events, start=start, end=None if e is None else e + _dt.timedelta(days=window_days), where=where)
    keys = _check_by(ev, by, fn=fn)
    ev = ev.filter(ev.user_id.notnull())
    first = ev.filter(ev.event == steps[0])
    if e is not None:
        first = first.filter(first.ts < e)
    cur = first.group_by([*keys, "user_id"]).aggregate(t0=first.ts.min())
    cur = cur.mutate(t_prev=cur.t0)
    window = ibis.interval(days=window_days)
    reached = [cur.mutate(step_index=ibis.literal(0))]
    for i, name in enumerate(steps[1:], start=1):
        nxt = ev.filter(ev.event == name).select(*keys, "user_id", "ts")
        j = _join(cur, nxt, [*keys, "user_id"])
        # strictly after the previous step (a repeated step name never reuses an event), within the window of step 1
        j = j.filter(j.ts > j.t_prev, j.ts <= j.t0 + window)
        cur = j.group_by([*keys, "user_id", "t0"]).aggregate(t_prev=j.ts.min())
        reached.append(cur.mutate(step_index=ibis.literal(i)))
    allsteps = ibis.union(*[r.select(*keys, "user_id", "t0", "step_index") for r in reached], distinct=False)
    allsteps = _m.with_period(allsteps, period, time="t0", start=start)
    return keys, allsteps.group_by([*keys, "period_start", "step_index"]).aggregate(users=allsteps.count())


def funnel_conversion_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None,
                           steps=("open_assistant", "ask", "accept_suggestion"), window_days=14, confidence=0.95):
    """Ordered funnel over ``events``: users reaching each step within ``window_days`` of their first step-1 event.

    A user enters with their first ``steps[0]`` event in the selection (``period_start`` is that event's period);
    step k counts when a ``steps[k]`` event happens strictly after the moment the user reached step k-1 and no later
    than ``window_days`` after entering. Out-of-order events do not count; other events in between are allowed.
    ``start``/``end`` choose who enters; the later steps are read past ``end`` up to the end of each user's window, so
    a user who entered on the window's last day has the whole ``window_days`` to convert (a window the data does not
    cover yet holds the steps taken so far).

    Parameters
    ----------
    steps : sequence of str, or "a,b,c"
        Event names, in order (at least two).
    window_days : int
        Conversion window from the first step, in days (inclusive).
    confidence : float
        Level of the Wilson interval on the overall rate.

    Returns
    -------
    polars.DataFrame
        One row per step, extra columns ``step``, ``step_index`` (0-based), ``users``, ``step_rate`` (users / users of
        the previous step) and ``overall_rate`` (users / users of step 0). ``value`` is ``overall_rate`` and ``n`` the
        users who entered.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'open', 'chat'), ('2', 'u1', '2026-01-01 09:01', 'ask', 'chat'),"
    ...     "('3', 'u2', '2026-01-01 10:00', 'open', 'chat'), ('4', 'u2', '2026-01-20 10:00', 'ask', 'chat')")
    >>> funnel_conversion_rate(db, steps=("open", "ask"), period="all").select("step", "users", "step_rate").rows()
    [('open', 2, 1.0), ('ask', 1, 0.5)]
    """
    import polars as pl

    fn = "funnel_conversion_rate"
    steps = _names(fn, "steps", steps)
    if len(steps) < 2:
        raise ParameterError(f"{fn}: steps: expected at least two event names, got {steps!r}")
    window_days = check_int(fn, "window_days", window_days, lo=1)
    keys, expr = _funnel_expr(db, fn, steps=steps, window_days=window_days, by=by, period=period, start=start, end=end,
                              where=where)
    agg = to_polars(expr)
    if agg.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=fn)
    agg = agg.with_columns(pl.col("period_start").cast(pl.Datetime("us")), pl.col("step_index").cast(pl.Int64))
    entries = agg.filter(pl.col("step_index") == 0).select(*keys, "period_start")
    grid = entries.join(pl.DataFrame({"step_index": list(range(len(steps))), "step": list(steps)}), how="cross")
    df = grid.join(agg, on=[*keys, "period_start", "step_index"], how="left", nulls_equal=True).with_columns(
        pl.col("users").fill_null(0).cast(pl.Int64)
    ).sort([*keys, "period_start", "step_index"], nulls_last=True)
    over = [*keys, "period_start"]
    df = df.with_columns(
        pl.col("users").first().over(over).alias("n"),
        pl.col("users").shift(1).over(over).alias("_prev"),
    )
    df = df.with_columns(
        pl.when(pl.col("step_index") == 0).then(1.0)
        .when(pl.col("_prev") > 0).then(pl.col("users") / pl.col("_prev")).alias("step_rate"),
        (pl.col("users") / pl.col("n")).alias("overall_rate"),
    )
    lo, hi = wilson_interval(df["users"].to_numpy(), df["n"].to_numpy(), confidence=confidence)
    df = df.with_columns(pl.col("overall_rate").alias("value"), pl.Series("lo", lo), pl.Series("hi", hi))
    df = df.select(*keys, "period_start", "value", "n", "lo", "hi", "step", "step_index", "users", "step_rate",
                   "overall_rate")
    return _m.tidy(df, keys=keys, metric=fn).sort([*keys, "period_start", "step_index"], nulls_last=True)


# --------------------------------------------------------------------------------------------------------------------
# feature adoption


def _period_end(period: str, p: "ir.TimestampValue", end: Any) -> "ir.TimestampValue | None":
    import ibis

    if period == "all":
        e = _m.as_timestamp(end)
        return ibis.literal(e, type="timestamp") if e is not None else None
    return p + _step(period)


def feature_adoption_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, activity="auto",
                          denominator="active", experiment=None, variant=None, confidence=0.95):
    """Share of users who used the feature among the users who could have: active users, or exposed users.

    Parameters
    ----------
    denominator : {"active", "exposed"}
        ``active``: users active on any feature in the same period (the ``feature`` condition of ``where`` and the
        ``feature`` key of ``by`` are dropped for the denominator; every other condition and key holds).
        ``exposed``: for a progressive rollout, units of ``assignments`` for ``experiment`` (and ``variant`` if given)
        first exposed before the end of the period; the numerator then counts only exposed users. The exposed
        denominator does not split by ``by``.

        With either, every group of ``by`` is reported in every period in which someone was active (in any
        feature): a period in which nobody (exposed) used the feature is 0 of ``n``, not a missing row.
    experiment, variant : str, optional
        Required with ``denominator="exposed"`` (``variant`` optional).
    activity : {"auto", "events", "calls", "both"}
    confidence : float
        Level of the Wilson interval.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'assistant'), ('2', 'u1', '2026-01-01 10:00', 'view', 'docs'),"
    ...     "('3', 'u2', '2026-01-01 11:00', 'view', 'docs'), ('4', 'u3', '2026-01-01 12:00', 'view', 'docs')")
    >>> feature_adoption_rate(db).select("feature", "value", "n").rows()
    [('assistant', 0.3333333333333333, 3), ('docs', 1.0, 3)]
    """
    import polars as pl

    fn = "feature_adoption_rate"
    _check_choice(fn, "denominator", denominator, ("active", "exposed"))
    _check_choice(fn, "period", period, _m.PERIODS)
    if denominator == "exposed" and not experiment:
        raise ParameterError(f"{fn}: experiment: required with denominator='exposed', got {experiment!r}")
    t = _activity(db, fn, activity=activity, start=start, end=end, where=where)
    keys = _check_by(t, by, fn=fn)
    up = _m.with_period(t, period, start=start).select(*keys, "user_id", "period_start").distinct()
    # the periods and users that could have used the feature: activity in any feature (the ``feature`` condition of
    # where dropped, every other one kept)
    rest = {k: v for k, v in _m.parse_where(where).items() if k != "feature"}
    base = _activity(db, fn, activity=activity, start=start, end=end, where=rest)
    if denominator == "active":
        den_keys = [k for k in keys if k != "feature"]
        dp = _m.with_period(base, period, start=start).select(*den_keys, "user_id", "period_start").distinct()
        num = up.group_by([*keys, "period_start"]).aggregate(k=up.count())
        den = dp.group_by([*den_keys, "period_start"]).aggregate(n=dp.count())
    else:
        a = db.assignments
        a = a.filter(a.experiment == experiment)
        if variant is not None:
            a = a.filter(a.variant == variant)
        exposed = a.group_by("unit_id").aggregate(exposed_at=a.ts.min())
        den_keys = []  # the units exposed, whatever they used: not split by ``by``
        periods = _m.with_period(base, period, start=start).select("period_start").distinct()
        ex = periods.cross_join(exposed)
        pend = _period_end(period, ex.period_start, end)
        if pend is not None:  # exposed before the period ends (cumulative: a rollout does not take access back)
            ex = ex.filter(ex.exposed_at < pend)
        den = ex.group_by("period_start").aggregate(n=ex.count())
        j = up.join(exposed, up.user_id == exposed.unit_id)
        pend = _period_end(period, j.period_start, end)
        if pend is not None:
            j = j.filter(j.exposed_at < pend)
        num = j.group_by([*keys, "period_start"]).aggregate(k=j.count())
    # every group of the selection (feature...) in every period with a denominator: a period nobody used the feature
    # in is 0 of n (a join with the users of the feature left it out, and the exposed denominator of such a period
    # came back as a row of its own with null keys)
    own = [k for k in keys if k not in den_keys]
    grid = den.cross_join(up.select(*own).distinct()) if own else den
    expr = _join(grid, num, [*keys, "period_start"], how="left")
    expr = expr.select(*keys, "period_start", k=expr.k.fill_null(0), n=expr.n)
    agg = to_polars(expr)
    if agg.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=fn)
    lo, hi = wilson_interval(agg["k"].to_numpy(), agg["n"].to_numpy(), confidence=confidence)
    agg = agg.with_columns((pl.col("k") / pl.col("n")).alias("value"), pl.Series("lo", lo), pl.Series("hi", hi))
    return _m.tidy(agg.rename({"k": "users"}), keys=keys, metric=fn)


# --------------------------------------------------------------------------------------------------------------------
# feedback


def _feedback(db: Any) -> "ir.Table":
    """Feedback rows with the columns of their call (feature, model, prompt_version...) for ``by`` and ``where``."""
    f, c = db.feedback, db.calls
    cols = [x for x in c.columns if x not in f.columns]
    return f.left_join(c.select("call_id", *cols), "call_id").drop("call_id_right")


def thumbs_up_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95):
    """Share of thumbs votes that are up (``kind = 'thumbs'``, ``value = 1``), Wilson interval.

    A vote is a user's latest thumbs on a call in the selection (:func:`~workbench.metrics.core.latest_votes`): a
    user who voted down, then up, on the same answer counts once, up; ``n`` is the number of votes. A thumbs row
    without a ``user_id`` (or ``call_id``) is a vote of its own. ``by``/``where`` may use the feedback's columns and
    its call's (feature, model, prompt_version...); time is the latest vote's ``ts``. Higher is better.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...     "('c1', '2026-01-01', 'chat', 'ok')")
    >>> _ = db.duckdb.execute("insert into feedback (feedback_id, call_id, ts, kind, value) values "
    ...     "('f1', 'c1', '2026-01-01 09:00', 'thumbs', 1), ('f2', 'c1', '2026-01-01 10:00', 'thumbs', 0),"
    ...     "('f3', 'c1', '2026-01-01 11:00', 'thumbs', 1), ('f4', 'c1', '2026-01-01 12:00', 'copy', 1)")
    >>> thumbs_up_rate(db).select("feature", "value", "n").rows()  # three anonymous votes
    [('chat', 0.6666666666666666, 3)]
    >>> _ = db.duckdb.execute("insert into feedback (feedback_id, call_id, user_id, ts, kind, value) values "
    ...     "('f5', 'c1', 'u1', '2026-01-01 13:00', 'thumbs', 0), ('f6', 'c1', 'u1', '2026-01-01 14:00', 'thumbs', 1)")
    >>> thumbs_up_rate(db).select("feature", "value", "n").rows()  # u1 changed their vote: one vote, up
    [('chat', 0.75, 4)]
    """
    fn = "thumbs_up_rate"
    t = _m.scope(_feedback(db), start=start, end=end, where=where)
    t = _m.latest_votes(t.filter(t.kind == "thumbs"))
    return _m.proportion(t, t.value == 1, by=by, period=period, metric=fn, start=start, end=end, confidence=confidence)


def _calls_with_feedback(db: Any, fn: str, *, kinds: tuple[str, ...] | None, by: Any, period: str, start: Any,
                         end: Any, where: Any, confidence: float) -> "pl.DataFrame":
    # the unit is the answer the user saw: an outermost span (an agent's root, a plain call), not each model or tool
    # span under it; feedback on any span of its trace is feedback on it
    calls = db.calls
    c = _m.outermost(_m.scope(calls, start=start, end=end, where=where), calls)
    f = db.feedback
    if kinds is not None:
        f = f.filter(f.kind.isin(list(kinds)))
    rated = calls.filter(calls.call_id.isin(f.call_id))
    answered = rated.select(_answer=rated.trace_id.fill_null(rated.call_id))
    return _m.proportion(c, c.trace_id.fill_null(c.call_id).isin(answered._answer), by=by, period=period, metric=fn,
                         start=start, end=end, confidence=confidence)


def feedback_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None, confidence=0.95):
    """Share of answers that received any feedback (any kind, at any time), Wilson interval; time is the answer's ``ts``.

    An answer is an outermost call (:func:`~workbench.metrics.core.outermost`: a plain call, or the root span of an
    agent trace; the model and tool spans under it are not answers the user saw); feedback on any span of its trace
    counts for it. ``by``/``where`` read the answer's own columns.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...     "('c1', '2026-01-01 09:00', 'chat', 'ok'), ('c2', '2026-01-01 10:00', 'chat', 'ok'),"
    ...     "('c3', '2026-01-01 11:00', 'chat', 'ok'), ('c4', '2026-01-01 12:00', 'chat', 'ok')")
    >>> _ = db.duckdb.execute("insert into feedback (feedback_id, call_id, ts, kind, value) values "
    ...     "('f1', 'c1', '2026-01-01 09:05', 'thumbs', 1), ('f2', 'c1', '2026-01-01 09:06', 'copy', 1)")
    >>> feedback_rate(db).select("value", "n").rows()
    [(0.25, 4)]
    """
    return _calls_with_feedback(db, "feedback_rate", kinds=None, by=by, period=period, start=start, end=end,
                                where=where, confidence=confidence)


def suggestion_acceptance_rate(db, *, by=("feature",), period="day", start=None, end=None, where=None,
                               kinds=("accept", "edit", "copy"), confidence=0.95):
    """Share of suggestions (answers) the user kept: answers with feedback of a kind in ``kinds`` / answers.

    The denominator is every answer in the selection (each shows one suggestion; scope it with ``where``, e.g.
    ``feature=autocomplete``), since no feedback kind records a rejection. An answer is an outermost call, as in
    :func:`feedback_rate`: an agent's steps are not suggestions. By default a suggestion is kept when it
    was accepted as is, edited then kept, or copied; ``kinds=("accept",)`` gives the strict Copilot-style acceptance
    rate, ``kinds=("edit",)`` the share edited. Wilson interval. Higher is better.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...     "('c1', '2026-01-01 09:00', 'code', 'ok'), ('c2', '2026-01-01 10:00', 'code', 'ok'),"
    ...     "('c3', '2026-01-01 11:00', 'code', 'ok'), ('c4', '2026-01-01 12:00', 'code', 'ok')")
    >>> _ = db.duckdb.execute("insert into feedback (feedback_id, call_id, ts, kind, value) values "
    ...     "('f1', 'c1', '2026-01-01 09:05', 'accept', 1), ('f2', 'c2', '2026-01-01 10:06', 'edit', 1),"
    ...     "('f3', 'c3', '2026-01-01 11:06', 'thumbs', 0)")
    >>> suggestion_acceptance_rate(db).select("value", "n").rows()
    [(0.5, 4)]
    >>> suggestion_acceptance_rate(db, kinds=("accept",)).select("value", "n").rows()
    [(0.25, 4)]
    """
    fn = "suggestion_acceptance_rate"
    kinds = _names(fn, "kinds", kinds)
    return _calls_with_feedback(db, fn, kinds=kinds, by=by, period=period, start=start, end=end, where=where,
                                confidence=confidence)


# --------------------------------------------------------------------------------------------------------------------
# adoption tied to cost and quality


def _calls_with_cost(db: Any) -> tuple["ir.Table", str, str]:
    """Calls, the column holding their cost, and where it came from.

    Prices are cost.py's concern: its ``cost_usd_used`` is the reported cost, else the cost computed from the token
    prices.
    """
    from workbench.metrics.cost import priced_calls

    return priced_calls(db), "cost_usd_used", "reported, else computed"


def cost_per_active_user_usd(db, *, by=("feature",), period="day", start=None, end=None, where=None,
                             activity="auto"):
    """Spend per active user: total cost of the calls in the period / active users in the period.

    The cost of a call is the reported ``calls.cost_usd``, else the cost computed from token prices by
    :func:`workbench.metrics.cost.priced_calls` (used when that function exists at run time; computing prices is cost.py's
    job). Calls with neither are skipped and counted in the extra column ``unpriced_calls``, next to ``cost_usd``
    (the total) and ``cost_source``. Activity (the denominator) is read from ``activity``; ``by`` and ``where`` apply
    to both calls and activity, so their columns must exist in both (``feature`` does). ``n`` is the active users; a
    period with spend but no active user has n = 0 and a null value. Lower is cheaper. Compare
    ``cost.cost_per_user_usd``, whose denominator is the users who made calls.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, user_id, cost_usd) values "
    ...     "('c1', '2026-01-01 09:00', 'chat', 'ok', 'u1', 0.25), ('c2', '2026-01-01 10:00', 'chat', 'ok', 'u1', 0.5)")
    >>> _ = db.duckdb.execute("insert into events (event_id, user_id, ts, event, feature) values "
    ...     "('1', 'u1', '2026-01-01 09:00', 'ask', 'chat'), ('2', 'u2', '2026-01-01 10:00', 'ask', 'chat'),"
    ...     "('3', 'u3', '2026-01-01 11:00', 'ask', 'chat')")
    >>> cost_per_active_user_usd(db).select("value", "n", "cost_usd").rows()
    [(0.25, 3, 0.75)]
    """
    import polars as pl

    fn = "cost_per_active_user_usd"
    calls, cost_col, source = _calls_with_cost(db)
    c = _m.scope(calls, start=start, end=end, where=where)
    t = _activity(db, fn, activity=activity, start=start, end=end, where=where)
    keys = _check_by(t, by, fn=fn)
    _check_by(c, keys, fn=fn)
    c = _m.with_period(c, period, start=start)
    cost = c[cost_col]
    spend = c.group_by([*keys, "period_start"]).aggregate(
        cost_usd=cost.sum(), calls=c.count(), unpriced_calls=c.count(where=cost.isnull())
    )
    up = _m.with_period(t, period, start=start).select(*keys, "user_id", "period_start").distinct()
    users = up.group_by([*keys, "period_start"]).aggregate(n=up.count())
    expr = _join(users, spend, [*keys, "period_start"], how="outer")
    agg = to_polars(expr)
    # an outer join keeps both copies of the keys; coalesce them
    for k in [*keys, "period_start"]:
        if f"{k}_right" in agg.columns:
            agg = agg.with_columns(pl.coalesce(k, f"{k}_right").alias(k)).drop(f"{k}_right")
    if agg.height == 0:
        return _m.tidy(pl.DataFrame({"value": [], "n": []}), keys=keys, metric=fn)
    agg = agg.with_columns(
        # no call at all is $0; calls that all lack a cost leave the sum null (unknown, not free)
        pl.when(pl.col("calls").fill_null(0) == 0).then(0.0).otherwise(pl.col("cost_usd")).alias("cost_usd"),
        pl.col("n").fill_null(0),
        pl.col("unpriced_calls").fill_null(0),
    ).with_columns((pl.col("cost_usd") / pl.col("n")).alias("value"), pl.lit(source).alias("cost_source"))
    # every group of the selection in every period of the window (a week nobody was active in went missing)
    return _m.complete_grid(_m.tidy(agg.drop("calls"), keys=keys, metric=fn), t, keys=keys, period=period,
                            start=start, end=end, metric=fn)


def _retained_expr(db: Any, fn: str, *, by: Any, period: str, start: Any, end: Any, where: Any, activity: str,
                   evaluator: str | None):
    import ibis

    check_name(fn, "evaluator", evaluator, optional=True, what="an evaluator")
    t = _activity(db, fn, activity=activity, start=start, end=end, where=where)
    keys = _check_by(t, by, fn=fn)
    one = _step(period)
    up = _user_periods(t, keys, _UNIT[period], "period_start")
    w = ibis.window(group_by=[*keys, "user_id"], order_by="period_start")
    up = up.mutate(nxt=up.period_start.lead().over(w), last_p=up.period_start.max().over(ibis.window()))
    # the last period has no next window to return in, nor has one whose next window is not over (by end and by the
    # clock): its users who have not come back yet are not churned
    last_whole = ibis.literal(_last_whole(period, end), type="timestamp")
    up = up.filter(up.period_start < up.last_p, up.period_start + one <= last_whole)
    seg = up.select(*keys, "user_id", "period_start",
                    segment=ibis.ifelse(up.nxt == up.period_start + one, "retained", "churned"))

    c = _m.scope(db.calls, start=start, end=end, where=where)
    _check_by(c, keys, fn=fn)
    c = c.filter(c.user_id.notnull())
    c = c.select(*keys, "user_id", "call_id", "latency_ms", period_start=c.ts.cast("timestamp").truncate(_UNIT[period]))
    e = db.evals
    e = e.filter(e.metric == "hallucination_score", e.label.isin(["hallucinated", "supported"]))
    if evaluator is not None:
        e = e.filter(e.evaluator == evaluator)
    # one verdict per answer: hallucinated when any scorable evaluation says so
    verdict = e.group_by("call_id").aggregate(halluc=(e.label == "hallucinated").cast("int64").max())
    cv = c.left_join(verdict, "call_id").drop("call_id_right")
    j = _join(seg, cv, [*keys, "user_id", "period_start"])

    users = seg.group_by([*keys, "period_start", "segment"]).aggregate(users=seg.count())
    lat = j.latency_ms
    stats = j.group_by([*keys, "period_start", "segment"]).aggregate(
        answers=j.halluc.count(), hallucinated=j.halluc.sum(), latency_n=lat.count(),
        q40=lat.quantile(0.4), q50=lat.quantile(0.5), q60=lat.quantile(0.6),
    )
    return keys, _join(users, stats, [*keys, "period_start", "segment"], how="left")


def retained_vs_churned(db, *, by=("feature",), period="week", start=None, end=None, where=None, activity="auto",
                        evaluator=None, confidence=0.95):
    """Do users who come back see fewer hallucinations and faster answers? Retained vs churned users, compared.

    For each period (the *first window*; default ``"week"``), users active in it are ``retained`` when active again
    in the next period and ``churned`` otherwise (the last period of the data has no next window and is left out, as
    is a period whose next window is not over by ``end`` and by the clock: last week, read mid-week).
    For each segment, over the segment's calls in the first window:

    * ``hallucination_rate``: share of their scored answers (``evals`` metric ``hallucination_score``, label
      ``hallucinated`` or ``supported``; ``unscorable`` is left out; an answer with several evaluations counts as
      hallucinated when any says so; ``evaluator`` picks one) labelled ``hallucinated``. Wilson interval.
    * ``latency_p50_ms``: median latency of their calls; interval from the standard error of the median
      ``(Q(0.6) - Q(0.4)) / (0.2 * 2 * sqrt(n))`` (the difference-quotient estimate of 1/density at the median).

    A third segment ``retained-churned`` holds the difference with its interval: Newcombe's hybrid score interval
    for the rates, normal errors added in quadrature for the medians. Answers of the same user are treated as
    independent, so the intervals are too narrow when a few heavy users dominate a segment.

    Returns
    -------
    polars.DataFrame
        Tidy rows with extra columns ``segment`` and ``users`` (users in the segment); ``n`` is answers scored
        (rates) or calls with a latency (medians), summed over both segments on the difference rows.

    Examples
    --------
    >>> import polars as pl, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, user_id, latency_ms) values "
    ...     "('c1', '2026-01-05 09:00', 'chat', 'ok', 'u1', 100), ('c2', '2026-01-05 10:00', 'chat', 'ok', 'u2', 300),"
    ...     "('c3', '2026-01-12 10:00', 'chat', 'ok', 'u1', 200)")
    >>> _ = db.duckdb.execute("insert into evals (call_id, metric, label, evaluator, evaluator_version) values "
    ...     "('c1', 'hallucination_score', 'supported', 'd', '1'),"
    ...     "('c2', 'hallucination_score', 'hallucinated', 'd', '1')")
    >>> r = retained_vs_churned(db, activity="calls")
    >>> r.filter(pl.col("segment") != "retained-churned").select("metric", "segment", "value").rows()
    ... # doctest: +NORMALIZE_WHITESPACE
    [('hallucination_rate', 'churned', 1.0), ('hallucination_rate', 'retained', 0.0),
     ('latency_p50_ms', 'churned', 300.0), ('latency_p50_ms', 'retained', 100.0)]
    """
    import polars as pl

    fn = "retained_vs_churned"
    _check_choice(fn, "period", period, ("hour", "day", "week", "month"))
    keys, expr = _retained_expr(db, fn, by=by, period=period, start=start, end=end, where=where, activity=activity,
                                evaluator=evaluator)
    agg = to_polars(expr)
    empty = pl.DataFrame({"value": [], "n": []})
    if agg.height == 0:
        return _m.tidy(empty, keys=keys, metric="hallucination_rate")
    from workbench.stats import z_value

    z = z_value(confidence)
    agg = agg.with_columns(
        pl.col("answers", "hallucinated", "latency_n").fill_null(0),
        pl.col("period_start").cast(pl.Datetime("us")),
    )
    lo, hi = wilson_interval(agg["hallucinated"].to_numpy(), agg["answers"].to_numpy(), confidence=confidence)
    rate = agg.select(
        *keys, "period_start", "segment", "users",
        pl.lit("hallucination_rate").alias("metric"),
        pl.when(pl.col("answers") > 0).then(pl.col("hallucinated") / pl.col("answers")).alias("value"),
        pl.col("answers").alias("n"), pl.Series("lo", lo), pl.Series("hi", hi),
    )
    se = (pl.col("q60") - pl.col("q40")) / (0.4 * pl.col("latency_n").cast(pl.Float64).sqrt())
    med = agg.select(
        *keys, "period_start", "segment", "users",
        pl.lit("latency_p50_ms").alias("metric"),
        pl.col("q50").cast(pl.Float64).alias("value"), pl.col("latency_n").alias("n"),
        (pl.col("q50") - z * se).alias("lo"), (pl.col("q50") + z * se).alias("hi"),
    ).with_columns(pl.when(pl.col("n") >= 2).then(pl.col(c)).alias(c) for c in ("lo", "hi"))
    both = pl.concat([rate, med], how="vertical_relaxed")

    # the difference rows: retained - churned, per (keys, period, metric)
    on = [*keys, "period_start", "metric"]
    r = both.filter(pl.col("segment") == "retained").drop("segment")
    c = both.filter(pl.col("segment") == "churned").drop("segment")
    d = r.join(c, on=on, how="inner", suffix="_c", nulls_equal=True)
    if d.height:
        p1, l1, u1 = (d[x].to_numpy().astype(float) for x in ("value", "lo", "hi"))
        p2, l2, u2 = (d[x + "_c"].to_numpy().astype(float) for x in ("value", "lo", "hi"))
        diff = p1 - p2
        dlo, dhi = difference_interval(p1, l1, u1, p2, l2, u2)  # Newcombe for the rates, quadrature for medians
        diffs = d.select(
            *keys, "period_start", "metric",
            pl.lit("retained-churned").alias("segment"),
            (pl.col("users") + pl.col("users_c")).alias("users"),
            pl.Series("value", diff), (pl.col("n") + pl.col("n_c")).alias("n"),
            pl.Series("lo", dlo), pl.Series("hi", dhi),
        ).with_columns(pl.col(x).fill_nan(None) for x in ("value", "lo", "hi"))
        both = pl.concat([both, diffs.select(both.columns)], how="vertical_relaxed")
    both = both.with_columns(
        pl.when(pl.col("value").is_null()).then(0).otherwise(pl.col("n")).alias("n")
    ).select(*keys, "period_start", "metric", "value", "n", "lo", "hi", "segment", "users")
    parts = [_m.tidy(both.filter(pl.col("metric") == m).drop("metric"), keys=keys, metric=m)
             for m in ("hallucination_rate", "latency_p50_ms")]
    return pl.concat(parts).sort([*keys, "period_start", "metric", "segment"], nulls_last=True)


# Activity is counted per day: these metrics have no hourly form.
_DAILY = ("day", "week", "month", "all")

# Each metric registered once with its contract (workbench.metrics.core.Metric).
SUITE = _m.register(
    _m.Metric(dau_count, unit="count", direction="higher", table="events", periods=_DAILY),
    _m.Metric(wau_count, unit="count", direction="higher", table="events", periods=_DAILY),
    _m.Metric(mau_count, unit="count", direction="higher", table="events", periods=_DAILY),
    _m.Metric(dau_mau_ratio, unit="ratio", direction="higher", table="events", periods=_DAILY),
    _m.Metric(active_days_distribution, unit="count", direction="none", table="events", periods=_DAILY,
              splits=("active_days",)),
    _m.Metric(returning_share_rate, unit="share", direction="higher", table="events", periods=_DAILY),
    _m.Metric(retention_rate, unit="share", direction="higher", table="events", periods=_DAILY,
              splits=("cohort_start", "offset")),
    _m.Metric(lifecycle_count, unit="count", direction="none", table="events", periods=("hour", "day", "week", "month"),
              splits=("status",)),
    _m.Metric(funnel_conversion_rate, unit="share", direction="higher", table="events", splits=("step",)),
    _m.Metric(feature_adoption_rate, unit="share", direction="higher", table="events"),
    _m.Metric(thumbs_up_rate, unit="share", direction="higher", table="feedback"),
    _m.Metric(feedback_rate, unit="share", direction="none", table="feedback"),
    _m.Metric(suggestion_acceptance_rate, unit="share", direction="higher", table="feedback"),
    _m.Metric(cost_per_active_user_usd, unit="usd", direction="lower", table="calls"),
    _m.Metric(retained_vs_churned, unit="count", direction="none", table="events", periods=("hour", "day", "week", "month"),
              splits=("segment",)),
    namespace=globals(),
)
