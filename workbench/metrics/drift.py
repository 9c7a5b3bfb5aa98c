"""Drift: did the inputs, outputs or scores of a feature change between a reference window and a current window?

Column drift reproduces Evidently's ``DataDriftPreset`` defaults, checked against Evidently 0.7 itself: per-column
method, score and verdict on fixed small and large, numeric and categorical datasets with and without drift
(``tests/goldens/evidently/*.json``, written by ``benchmarks/evidently_goldens.py``):

* reference with <= 1000 (non-null) rows: numeric -> two-sample Kolmogorov-Smirnov, drifts when p <= 0.05;
  categorical -> chi-square of the current counts against the reference shares, binary -> two-proportion z-test,
  both drift when p < 0.05 (strictly, as Evidently; K-S at p <= 0.05);
* more than 1000 rows: numeric -> Wasserstein distance / reference sd, categorical and binary -> Jensen-Shannon
  distance (natural logarithm, scipy's default, as Evidently), both drift when >= 0.1;
* column types as Evidently 0.7 infers them (``infer_column_type``), from the current window's data: an integer column
  with <= 10 distinct values in current is categorical, whatever the reference holds, and one with more numeric; a
  float column is numeric; booleans and strings are categorical, free text aside (below). A numeric column with <= 5
  distinct values over both windows is then tested as categorical, and any column with 1 or 2 as binary (z-test);
* free text (a string column more than half of whose current values are distinct, Evidently's Text type) gets the
  text drift below, the workbench's own domain classifier, not Evidently's (the scores differ, the verdicts agree on
  the goldens; ``column_drift`` says how they differ);
* the dataset drifts when >= 50% of the tested columns drift;
* nulls, and NaN and +-inf in float columns, are dropped before testing, as Evidently drops them (the row counts and
  the 1000-row rule are of the values left).

PSI is reported for every column as an extra (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major).

Text drift (prompts, answers) is a domain classifier: a logistic regression on hashed word 1-2-grams learns to tell
reference texts from current ones; its cross-validated ROC AUC is ~0.5 when it cannot (no drift; the copies of a
text repeated in both windows are held out together, never scored by a model that learnt one of them with the other
label) and approaches 1 when the vocabulary changed. Drift when AUC > 0.55 (Evidently's domain-classifier idea: a classifier that is right
55% of the time on held-out texts has found a real difference on any sample of a few hundred texts); on fewer texts
the bar is the 95th percentile of the AUC of a classifier that cannot tell the sides apart, in closed form (the
Mann-Whitney null) instead of Evidently's bootstrap of random classifiers: 0.72 for 200 against 5 texts. Offline,
numpy/scipy only, deterministic for a given ``seed``.

Large windows are sampled deterministically: at most ``max_rows`` rows per window (default 100,000), the rows with
the smallest hash of the table's key, so a re-run compares the same rows. The result says when it sampled.

Examples
--------
>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> _ = db.duckdb.execute(
...     "insert into calls (call_id, ts, status, latency_ms) select 'r' || i, timestamp '2026-01-01' + "
...     "to_seconds(i), 'ok', 100 + i % 50 from range(200) t(i)")
>>> _ = db.duckdb.execute(
...     "insert into calls (call_id, ts, status, latency_ms) select 'c' || i, timestamp '2026-01-02' + "
...     "to_seconds(i), 'ok', 200 + i % 50 from range(200) t(i)")
>>> r = drift_report(db, columns=["latency_ms"], reference=("2026-01-01", "2026-01-02"),
...                  current=("2026-01-02", "2026-01-03"))
>>> r.select("column", "type", "test", "drifted").rows()
[('latency_ms', 'numeric', 'ks', True), ('__dataset__', 'dataset', 'share_of_drifted_columns', True)]
"""

from __future__ import annotations

from workbench.errors import (NotFoundError, ParameterError, ParameterTypeError, TooFewError, check_int, check_name,
                              check_names)

import inspect
import math
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.metrics import core as M
from workbench.metrics.core import to_polars
from workbench import stats

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import ibis.expr.types as ir
    import polars as pl

SMALL_REFERENCE = 1000  # Evidently: up to this many reference rows, statistical tests; above, distances
P_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
DATASET_SHARE = 0.5
MAX_CATEGORICAL_NUMERIC = 5  # Evidently: a numerical column with at most this many values is tested as categorical
MAX_CATEGORICAL_INTEGER = 10  # Evidently (INTEGER_CARDINALITY_LIMIT): an int column with at most this many: categorical
TEXT_AUC_THRESHOLD = 0.55
TEXT_FOLDS = 3  # text_drift_score's default folds: a side with fewer texts is not tested
TEXT_SHARE = 0.5  # Evidently: a string column with more distinct values than this share of its current rows is text

DEFAULT_COLUMNS = {
    "calls": ("latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "status", "model",
              "finish_reason", "operation"),
    "evals": ("value",),
    "feedback": ("value", "kind"),
}


Window = tuple[Any, Any]


def _check_window(name: str, w: Any, fn: str) -> Window:
    if not isinstance(w, (tuple, list)) or len(w) != 2:
        raise ParameterTypeError(f"{fn}: {name} must be a (start, end) pair, got {w!r}")
    start, end = M.as_timestamp(w[0], what=f"{fn}: {name} start"), M.as_timestamp(w[1], what=f"{fn}: {name} end")
    M.check_window(f"{fn}: {name}", w[0], w[1])  # (end, start) was an empty window: every column "not tested"
    return start, end


def _table(db: Any, table: str, *, metric: str | None, fn: str, evaluator: str | None = None,
           version: str | None = None, traffic: str | None = None) -> "ir.Table":
    from workbench.schema import TABLES

    check_name(fn, "table", table, what="a table name")
    check_name(fn, "metric", metric, optional=True, what="a metric name")
    if table not in TABLES:
        raise NotFoundError(f"{fn}: no table {table!r}; tables: {', '.join(TABLES)}")
    if table == "evals":
        import ibis

        from workbench.metrics.hallucination import scored_answers

        if metric is None:
            raise ParameterError(f"{fn}: table='evals' needs metric= (e.g. 'hallucination_score')")
        # Like with like: the scores the hallucination metrics read (one evaluator at one version, repeat 0, the
        # production answers by default), each dated by its answer, not by when it was written. Every evaluator,
        # version and test set mixed, a judge upgraded this week read as drift of the answers.
        t = scored_answers(db, evaluator=evaluator, version=version, metric=metric,
                           traffic="production" if traffic is None else traffic, caller=fn)
        return t.mutate(metric=ibis.literal(metric), repeat=ibis.literal(0))  # the rest of evals' key, for sampling
    if metric is not None:
        raise ParameterError(f"{fn}: metric= applies to table='evals' only, got table={table!r}")
    if (evaluator, version) != (None, None):
        raise ParameterError(f"{fn}: evaluator and version apply to table='evals' only, got table={table!r}")
    if table == "answers":
        return _answers(db, traffic="production" if traffic is None else traffic, fn=fn)
    if traffic is not None:
        raise ParameterError(f"{fn}: traffic applies to table='evals' or 'answers' only, got table={table!r}")
    return db.table(table)


def _answers(db: Any, *, traffic: str, fn: str) -> "ir.Table":
    """The answers of ``traffic`` (production by default: a labelled test set loaded beside them is no change of what
    the product answers), each dated as the hallucination metrics date it (its call's time, else its own)."""
    from workbench.metrics.hallucination import TRAFFIC, answer_time, benchmark_answer

    if traffic not in TRAFFIC:
        raise ParameterError(f"{fn}: traffic: expected one of {', '.join(TRAFFIC)}, got {traffic!r}")
    a, c = db.answers, db.calls
    j = a.left_join(c.select(_c_call_id=c.call_id, _call_ts=c.ts), a.call_id == c.call_id)
    bench = benchmark_answer(j._call_ts, j.source)
    if traffic != "all":
        j = j.filter(bench if traffic == "benchmark" else ~bench)
    return j.mutate(ts=answer_time(j._call_ts, j.ts)).select(*a.columns)


def _default_columns(t: "ir.Table", table: str) -> list[str]:
    from workbench.schema import TABLES

    if table in DEFAULT_COLUMNS:
        return list(DEFAULT_COLUMNS[table])
    spec = TABLES[table]
    skip = set(spec.key) | {spec.time, "ingest_run_id"}
    out = []
    for name, dtype in t.schema().items():
        if name in skip or name.endswith("_id") or name.endswith("_at") or name == "ts":
            continue
        if dtype.is_numeric() or dtype.is_boolean() or dtype.is_string():
            out.append(name)
    return out


def _fetch(t: "ir.Table", table: str, columns: list[str], window: Window, where: M.Where, max_rows: int
           ) -> tuple["pl.DataFrame", bool]:
    """Rows of one window, the requested columns only; at most ``max_rows``, chosen by a hash of the key."""
    import ibis

    from workbench.schema import TABLES

    spec = TABLES[table]
    w = M.scope(t, time=spec.time, start=window[0], end=window[1], where=where)
    n = int(to_polars(w.aggregate(n=w.count()))["n"][0])
    if n <= max_rows:
        return to_polars(w.select(*columns)), False
    key = ibis.literal("")
    for k in spec.key:
        key = key.concat(w[k].cast("string").fill_null(""), ibis.literal("|"))
    return to_polars(w.order_by(key.hash()).limit(max_rows).select(*columns)), True


def _counted(s: "pl.Series") -> "stats.Counted":
    """A column's non-null values as distinct values and counts, counted by polars (no Python objects per row)."""
    vc = s.drop_nulls().value_counts(sort=False, name="_n")
    return stats.Counted(vc[s.name].to_numpy(), vc["_n"].to_numpy())


def _tested(s: "pl.Series") -> "pl.Series":
    """The values a drift test sees: nulls dropped and, in a float column, NaN and +-inf too (as Evidently drops
    them); the counts and the small/large reference size are of what is left."""
    s = s.drop_nulls().alias("v")
    return s.filter(s.is_finite()) if s.dtype.is_float() else s


def _sample(name: str, values: Any) -> "pl.Series":
    """``values`` as a polars Series: a plain list mixing ints and floats (numbers as JSON gives them) is numbers,
    as it is to numpy; a mix of numbers and strings, or no sequence, is a ``ParameterTypeError`` naming ``name``."""
    import numbers

    import polars as pl

    if isinstance(values, pl.Series):
        return values
    if values is None or isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        got = f"a string {values!r:.40}" if isinstance(values, (str, bytes)) else f"{values!r:.40}"
        raise ParameterTypeError(f"column_drift: {name} must be a sequence of values, got {got}")
    values = list(values)
    try:
        return pl.Series(name[0], values)
    except (TypeError, OverflowError):
        if all(v is None or isinstance(v, numbers.Real) for v in values):
            return pl.Series(name[0], values, strict=False)
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        raise ParameterTypeError(f"column_drift: {name} mixes value types ({', '.join(kinds)}); expected numbers, "
                                 "strings or booleans, one kind per sample") from None


def _kind(dtype: "pl.DataType", r: "stats.Counted", c: "stats.Counted") -> str:
    """Evidently 0.7's column type (``infer_column_type``, on the current data) and default test choice.

    An integer column with at most 10 distinct values in current is categorical, with more numerical (whatever the
    reference holds); any other numeric column (float) is numerical; a string column is text when more than half its
    current values are distinct, else categorical, as booleans are. A categorical column, or a numerical one with at
    most 5 distinct values over both samples, is tested as categorical, binary (z-test) with 1 or 2. ``dtype`` is
    the current sample's.
    """
    import numpy as np
    import polars as pl

    if dtype == pl.Boolean:
        return "binary"
    if dtype == pl.String and len(c.values) > TEXT_SHARE * c.n:
        return "text"
    if dtype.is_integer() and len(c.values if len(c.values) else r.values) > MAX_CATEGORICAL_INTEGER:  # (or ref's)
        return "numeric"
    # the number of distinct values over both samples, as Evidently counts it (pd.concat(...).nunique()); only
    # whether it passes MAX_CATEGORICAL_NUMERIC matters, so the union is built only of a few values
    most = max(len(r.values), len(c.values))
    if most <= MAX_CATEGORICAL_NUMERIC:
        most = len(np.union1d(r.values, c.values))
    if dtype.is_numeric() and not dtype.is_integer() and most > MAX_CATEGORICAL_NUMERIC:
        return "numeric"
    return "binary" if most in (1, 2) else "categorical"  # (no values: categorical)


def column_drift(reference: Sequence, current: Sequence, *, kind: str | None = None) -> dict[str, Any]:
    """Drift of one column between two samples, with Evidently's default test for its type and size.

    Parameters
    ----------
    reference, current : sequences of values or polars Series
        One kind of value per sample: numbers (a list mixing ints and floats is numbers), strings or booleans; a
        mix of numbers and strings is a ``ParameterTypeError``.
        Nulls are dropped, and so are NaN and +-inf in a float column (as Evidently drops them): ``n_reference``
        and ``n_current`` count the values left, and a side with none left is not tested.
    kind : {"numeric", "categorical", "binary", "text"}, optional
        Default: inferred as Evidently 0.7 does, from the current sample's type: integers with more than 10
        distinct values in current, and other numbers (floats) with more than 5 over both samples -> numeric;
        strings more than half of whose current values are distinct -> text; else bool, or at most two distinct
        values -> binary; anything else categorical.

    Returns
    -------
    dict with ``type, test, statistic, threshold, drifted, psi, n_reference, n_current``. ``statistic`` is a p-value
    for ``ks``/``chi_square``/``z`` (drift when <= threshold), a distance for ``wasserstein``/``jensen_shannon``
    (drift when >= threshold) and, for text, the ROC AUC of :func:`text_drift_score`'s ``domain_classifier`` (drift
    when > threshold: 0.55, or higher on a few texts; no PSI; ``n_*`` the texts it used, at most 5,000 a side). A side with no values, or
    text with fewer than 3, is not tested (null test and verdict).

    Text is where this departs from Evidently: Evidently's text drift is also a domain classifier, but TF-IDF with
    English stop words and an L1 linear model, scored on one 50/50 split, drifting when its AUC beats the 95th
    percentile of random classifiers' (reference <= 1000 rows) or 0.55. Here it is the workbench's own
    :func:`text_drift_score` (hashed word 1-2-grams, L2 logistic regression, 3-fold cross-validated AUC, drift
    above 0.55 at any size): the scores differ, the verdicts agree on the goldens.

    Each sample is first reduced to its distinct values and their counts (by polars), and every test and distance
    is computed from those: a million rows cost one ``value_counts``, not a million Python objects.

    Examples
    --------
    >>> r = column_drift([0.5, 1.5, 2.5, 3.5, 4.5, 5.5] * 20, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5] * 20)
    >>> r["type"], r["test"], r["statistic"], r["drifted"]
    ('numeric', 'ks', 1.0, False)
    >>> column_drift([1, 2, 3, 4, 5, 6] * 20, [1, 2, 3, 4, 5, 6] * 20)["test"]  # integers, <= 10 values: categorical
    'chi_square'
    """
    import numpy as np
    import polars as pl

    ref, cur = _sample("reference", reference), _sample("current", current)
    ref, cur = _tested(ref), _tested(cur)
    typed = cur.dtype  # Evidently infers a column's type from the current data
    if ref.dtype != cur.dtype:  # numbers compare by value (1 == 1.0, as pandas counts them), anything else as text
        both_numeric = ref.dtype.is_numeric() and cur.dtype.is_numeric()
        common = pl.String if not both_numeric else pl.Int64 if ref.dtype.is_integer() and cur.dtype.is_integer() \
            else pl.Float64
        ref, cur = ref.cast(common), cur.cast(common)
        typed = typed if both_numeric else pl.String
    r, c = _counted(ref), _counted(cur)
    out: dict[str, Any] = {"n_reference": ref.len(), "n_current": cur.len()}
    if kind is None:
        kind = _kind(typed, r, c)
    if kind not in ("numeric", "categorical", "binary", "text"):
        raise ParameterError(f"column_drift: kind must be numeric, categorical, binary or text, got {kind!r}")
    out = {"type": kind, **out}
    if min(ref.len(), cur.len()) < (TEXT_FOLDS if kind == "text" else 1):
        return out | {"test": None, "statistic": None, "threshold": None, "drifted": None, "psi": None}
    if kind == "text":
        t = text_drift_score(ref.cast(pl.String).to_list(), cur.cast(pl.String).to_list())
        return out | {"test": "domain_classifier", "statistic": t["auc"], "threshold": t["threshold"],
                      "drifted": t["drifted"], "psi": None, "n_reference": t["n_reference"],
                      "n_current": t["n_current"]}
    if kind != "numeric" and not ref.dtype.is_numeric():  # other categories compare as text (distinct stay distinct)
        r, c = (stats.Counted(x.values.astype(str)[o], x.counts[o])
                for x in (r, c) for o in [np.argsort(x.values.astype(str), kind="stable")])
    small = ref.len() <= SMALL_REFERENCE
    if kind == "numeric":
        if small:
            test, stat, thr = "ks", stats.ks_pvalue(r, c), P_THRESHOLD
        else:
            test, stat, thr = "wasserstein", stats.wasserstein_normed(r, c), DISTANCE_THRESHOLD
    elif small and kind == "binary":
        first = sorted(set(r.values.tolist()) | set(c.values.tolist()), key=str)[0]
        test, thr = "z", P_THRESHOLD
        stat = stats.z_test_pvalue(float(r.counts[r.values != first].sum()), r.n,
                                   float(c.counts[c.values != first].sum()), c.n)
    elif small:
        test, thr = "chi_square", P_THRESHOLD
        stat = stats.chi_square_pvalue(dict(zip(r.values.tolist(), r.counts.tolist())),
                                       dict(zip(c.values.tolist(), c.counts.tolist())))
    else:
        test, thr = "jensen_shannon", DISTANCE_THRESHOLD
        stat = stats.jensen_shannon_distance(r, c, kind="categorical")
    # Evidently's comparisons, to the edge: K-S drifts at p <= 0.05, chi-square and z at p < 0.05, distances at >= 0.1
    drifted = stat <= thr if test == "ks" else stat < thr if test in ("chi_square", "z") else stat >= thr
    return out | {"test": test, "statistic": float(stat), "threshold": thr, "drifted": bool(drifted),
                  "psi": stats.psi(r, c, kind="numeric" if kind == "numeric" else "categorical")}


def drift_report(
    db: Any,
    *,
    table: str = "calls",
    columns: Sequence[str] | None = None,
    reference: Window,
    current: Window,
    where: M.Where = None,
    metric: str | None = None,
    max_rows: int = 100_000,
    evaluator: str | None = None,
    version: str | None = None,
    traffic: str | None = None,
) -> "pl.DataFrame":
    """Column-by-column drift between a reference window and a current window, and the dataset verdict.

    Parameters
    ----------
    db : Workbench or path
    table : str
        A canonical table; ``"evals"`` needs ``metric=`` (the scores of that metric, column ``value``) and compares
        like with like: the scores of one evaluator at one version on the production answers, by default those the
        hallucination metrics read (:func:`~workbench.metrics.hallucination.scored_answers`). A new judge version,
        another evaluator or a test set scored in one window is not drift of the answers: when a new version scored
        only the current window, the reference has no score of it and nothing is tested (score the reference
        window with it too, or pass the older ``version``).
    columns : list of str, optional
        Default: for ``calls`` latency, tokens, cost, status, model, finish reason, operation; for ``evals``
        ``value``; else every numeric, boolean or string column that is not a key, id or time (for ``answers``
        question, answer, reference and source). Free text (a string column more than half of whose current values
        are distinct: a question, an answer) is tested by :func:`text_drift_score`, a domain classifier, not as
        categories, where every new text would read as drift: see :func:`column_drift`.
    reference, current : (start, end)
        Windows [start, end) on the table's time column, start before end; a score of ``evals``, and a row of ``answers``, is dated by
        its answer (its call's time, else the answer's; never when it was scored), as the hallucination metrics date
        it (:func:`~workbench.metrics.hallucination.answer_time`): a score whose answer has neither time is in
        neither window.
    where : optional
        Filter (e.g. ``{"feature": "chat"}``).
    max_rows : int
        Deterministic sample cap per window (rows with the smallest key hash).
    evaluator, version : str, optional
        For ``table="evals"``: whose scores. Default: the detector ``workbench.toml`` names (the offline detector as
        shipped when none is) at its current version; another evaluator's default version is the one it wrote most
        recently.
    traffic : {"production", "benchmark", "all"}, optional
        For ``table="evals"`` and ``table="answers"``: which answers (default ``"production"``: labelled and test sets,
        answers with no logged call and a dataset as their ``source``, left out: a test set loaded this week is no
        change of what the product answers), as for :func:`~workbench.metrics.hallucination.hallucination_rate`.

    Returns
    -------
    polars.DataFrame
        ``column, type, test, statistic, threshold, drifted, psi, n_reference, n_current, sampled``, then a row
        ``column = "__dataset__"`` whose statistic is the share of drifted columns (drifts at >= 0.5). Each column
        is tested by :func:`column_drift`: nulls, NaN and +-inf are dropped first and ``n_reference``/``n_current``
        count the values left (the dataset row counts rows). A column with no data in a window has null test and
        verdict and is not counted.

    Examples
    --------
    Latency moved by 100 ms between two days (the module docstring says which test each column gets):

    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, status, latency_ms) select 'r' || i, timestamp '2026-01-01' + "
    ...     "to_seconds(i), 'ok', 100 + i % 50 from range(200) t(i)")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, status, latency_ms) select 'c' || i, timestamp '2026-01-02' + "
    ...     "to_seconds(i), 'ok', 200 + i % 50 from range(200) t(i)")
    >>> r = drift_report(db, columns=["latency_ms", "status"], reference=("2026-01-01", "2026-01-02"),
    ...                  current=("2026-01-02", "2026-01-03"))
    >>> r.select("column", "test", "statistic", "drifted").rows()  # one column of two drifted: share 0.5, drift
    [('latency_ms', 'ks', 0.0, True), ('status', 'z', 1.0, False), ('__dataset__', 'share_of_drifted_columns', 0.5, True)]
    """
    import polars as pl

    from workbench.db import as_workbench

    db = as_workbench(db)
    ref_w = _check_window("reference", reference, "drift_report")
    cur_w = _check_window("current", current, "drift_report")
    t = _table(db, table, metric=metric, fn="drift_report", evaluator=evaluator, version=version, traffic=traffic)
    check_int("drift_report", "max_rows", max_rows, lo=1)
    M.parse_where(where, fn="drift_report")
    given = check_names("drift_report", "columns", columns, optional=True, what="column names", empty=True)
    cols = list(given) if given is not None else _default_columns(t, table)
    missing = [c for c in cols if c not in t.columns]
    if missing:
        raise NotFoundError(f"drift_report: table {table!r} has no column(s) {missing}; columns: {', '.join(t.columns)}")
    if not cols:
        raise ParameterError("drift_report: no columns to compare")
    ref_df, s1 = _fetch(t, table, cols, ref_w, where, max_rows)
    cur_df, s2 = _fetch(t, table, cols, cur_w, where, max_rows)
    rows = []
    for col in cols:
        r = column_drift(ref_df[col], cur_df[col])
        texts_sampled = r["test"] == "domain_classifier" and (  # text_drift_score took at most 5,000 a side
            r["n_reference"] < ref_df[col].count() or r["n_current"] < cur_df[col].count())
        rows.append({"column": col, **r, "sampled": s1 or s2 or texts_sampled})
    tested = [r for r in rows if r["drifted"] is not None]
    share = sum(r["drifted"] for r in tested) / len(tested) if tested else None
    rows.append({"column": "__dataset__", "type": "dataset", "test": "share_of_drifted_columns", "statistic": share,
                 "threshold": DATASET_SHARE, "drifted": None if share is None else share >= DATASET_SHARE,
                 "psi": None, "n_reference": ref_df.height, "n_current": cur_df.height, "sampled": s1 or s2})
    schema = {"column": pl.String, "type": pl.String, "test": pl.String, "statistic": pl.Float64,
              "threshold": pl.Float64, "drifted": pl.Boolean, "psi": pl.Float64, "n_reference": pl.Int64,
              "n_current": pl.Int64, "sampled": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


# -- text drift -------------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def _hash_features(texts: Sequence[str], n_features: int, vocab: dict[int, str]):
    """Sparse matrix of hashed word 1- and 2-grams (log(1 + count), rows L2-normalised); crc32, not ``hash()``,
    so the features do not depend on the interpreter's hash seed."""
    import numpy as np
    from scipy import sparse

    indptr, indices, data = [0], [], []
    for text in texts:
        words = _WORD.findall((text or "").lower())
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        counts: dict[int, int] = {}
        for g in grams:
            h = zlib.crc32(g.encode("utf-8")) % n_features
            counts[h] = counts.get(h, 0) + 1
            vocab.setdefault(h, g)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        val = np.log1p(np.fromiter(counts.values(), dtype=float, count=len(counts)))
        norm = np.sqrt((val * val).sum())
        indices.append(idx)
        data.append(val / norm if norm > 0 else val)
        indptr.append(indptr[-1] + len(idx))
    return sparse.csr_matrix(
        (np.concatenate(data) if data else np.array([]), np.concatenate(indices) if indices else np.array([], int),
         np.array(indptr)), shape=(len(texts), n_features))


def _fit_logistic(X, y, *, l2: float):
    """L2-regularised logistic regression by L-BFGS (deterministic): returns (weights, intercept)."""
    import numpy as np
    from scipy.optimize import minimize

    n, d = X.shape

    def loss(params):
        w, b = params[:-1], params[-1]
        z = X @ w + b
        # log(1 + exp(z)) - y z, computed stably
        ll = np.logaddexp(0, z) - y * z
        p = 1 / (1 + np.exp(-z))
        g = p - y
        grad_w = X.T @ g / n + l2 * w
        return ll.mean() + 0.5 * l2 * (w @ w), np.append(grad_w, g.mean())

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    return res.x[:-1], res.x[-1]


def _text_folds(texts: Sequence[str], y: "np.ndarray", folds: int, rng: "np.random.Generator") -> "np.ndarray":
    """The cross-validation fold of each text: the copies of one text share a fold, stratified by side.

    A text held out while a copy of it trained the model with the other side's label is scored as the other side:
    on two identical samples of distinct texts the AUC was 0.05, not 0.5, and a text repeated on both sides (a
    canned prompt) pulled a real change below the bar. The distinct texts are dealt round the folds in a random order,
    those only in the reference first, then those on both sides, then those only in the current window, so each side
    with at least two distinct texts is in the training set of every fold. A side that is one text repeated cannot be
    split that way: then the copies are dealt one by one, stratified by side.
    """
    import numpy as np

    distinct, group = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    sides = np.zeros((len(distinct), 2), dtype=bool)
    sides[group, y.astype(int)] = True
    if (sides.sum(axis=0) < 2).any():
        fold = np.empty(len(y), dtype=int)
        for label in (0, 1):
            idx = np.flatnonzero(y == label)
            fold[idx] = rng.permutation(np.arange(idx.size) % folds)
        return fold
    kind = np.where(sides.all(axis=1), 1, np.where(sides[:, 0], 0, 2))  # reference only, both, current only
    order = np.lexsort((rng.permutation(len(distinct)), kind))
    of_group = np.empty(len(distinct), dtype=int)
    of_group[order] = np.arange(len(distinct)) % folds
    return of_group[group]


def text_drift_score(
    reference: Sequence[str],
    current: Sequence[str],
    *,
    seed: int = 0,
    folds: int = TEXT_FOLDS,
    n_features: int = 2**16,
    l2: float = 1e-3,
    max_texts: int = 5000,
    threshold: float = TEXT_AUC_THRESHOLD,
) -> dict[str, Any]:
    """Domain-classifier text drift between two lists of strings: cross-validated ROC AUC of reference vs current.

    Parameters
    ----------
    reference, current : sequences of str
        At least ``folds`` texts each; each side is sampled down to ``max_texts`` (seeded).
    seed : int
        Seeds the sampling and the fold split: same inputs and seed, same result.
    folds : int
        Stratified cross-validation folds, at least 2 (a ``ParameterError`` below); the AUC is computed on the pooled
        out-of-fold scores. The copies of one text (after redaction) share a fold, so no text is scored by a model
        that trained on a copy of it: two identical samples score 0.5, even when every text is on both sides (an
        evaluation set replayed each week).
    threshold : float
        Drift when AUC > threshold (default 0.55), or above the 95th percentile of the AUC of a classifier that
        cannot tell the sides apart when that is higher (few texts): 0.5 + 1.645 sqrt((n_r + n_c + 1) / (12 n_r n_c)),
        the Mann-Whitney null of the AUC (0.72 for 200 reference texts against 5; 0.5475 for 200 against 200).

    Returns
    -------
    dict with ``auc, threshold`` (the bar applied), ``drifted, n_reference, n_current`` and ``terms_reference`` /
    ``terms_current``: the 10 word n-grams that most mark each side (from the model fitted on all texts). The texts
    are read redacted (:func:`workbench.redact.redact`: an e-mail address counts as the word ``email``), so no term
    is a piece of an address, a number or a key.

    Examples
    --------
    >>> ref = [f"the invoice for order {i} is attached" for i in range(60)]
    >>> cur = [f"your password reset link {i} expires soon" for i in range(60)]
    >>> r = text_drift_score(ref, cur)
    >>> r["auc"], r["drifted"]
    (1.0, True)
    """
    import numpy as np

    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise ParameterError(f"text_drift_score: folds must be an integer >= 2, got {folds!r}")
    for name, texts in (("reference", reference), ("current", current)):
        if isinstance(texts, str) or not all(isinstance(x, str) or x is None for x in texts):
            raise ParameterTypeError(f"text_drift_score: {name} must be a sequence of strings")
        if len(texts) < folds:
            raise TooFewError(f"text_drift_score: {name} needs at least {folds} texts, got {len(texts)}")
    rng = np.random.default_rng(seed)
    ref = list(reference)
    cur = list(current)
    if len(ref) > max_texts:
        ref = [ref[i] for i in sorted(rng.choice(len(ref), max_texts, replace=False))]
    if len(cur) > max_texts:
        cur = [cur[i] for i in sorted(rng.choice(len(cur), max_texts, replace=False))]
    # Words of redacted text (workbench.redact): the terms below are shown in reports, and a word pair of an address
    # or a phone number ("to jane", "7946 0958") is no longer recognisable as one once it is cut out of the text.
    from workbench.redact import redact

    vocab: dict[int, str] = {}
    texts = [redact(x) for x in ref + cur]
    X = _hash_features(texts, n_features, vocab)
    # fit only on the hash buckets that occur: same model, far fewer parameters for the optimiser
    used = np.unique(X.indices)
    X = X[:, used]
    vocab = {j: vocab[int(h)] for j, h in enumerate(used)}
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    fold = _text_folds(texts, y, folds, rng)
    scores = np.empty(len(y))
    for k in range(folds):
        test = fold == k
        w, b = _fit_logistic(X[~test], y[~test], l2=l2)
        scores[test] = X[test] @ w + b
    auc = stats.auroc(y, scores)
    w, _ = _fit_logistic(X, y, l2=l2)
    order = np.argsort(w)
    terms_ref = [vocab[i] for i in order[:10] if i in vocab and w[i] < 0]
    terms_cur = [vocab[i] for i in order[::-1][:10] if i in vocab and w[i] > 0]
    # a few texts give a noisy AUC (sd ~0.16 for 200 against 5 on the same words): 0.55 flagged drift about half the
    # time; the bar is then the 95th percentile of the AUC under no difference (Mann-Whitney U / (n_r n_c))
    n_r, n_c = len(ref), len(cur)
    threshold = max(threshold, 0.5 + stats.z_value(0.9) * math.sqrt((n_r + n_c + 1) / (12 * n_r * n_c)))
    return {"auc": round(float(auc), 6), "threshold": threshold, "drifted": bool(auc > threshold),
            "n_reference": len(ref), "n_current": len(cur), "terms_reference": terms_ref, "terms_current": terms_cur}


def text_drift(
    db: Any,
    *,
    column: str = "answer",
    table: str = "answers",
    reference: Window,
    current: Window,
    where: M.Where = None,
    seed: int = 0,
    max_texts: int = 5000,
    **options: Any,
) -> "pl.DataFrame":
    """Text drift of a column (answers, questions/prompts) between two windows: see :func:`text_drift_score`.

    Texts are fetched with Ibis (only ``column``), at most ``max_texts`` per window by the smallest key hash. Of
    ``answers`` (and of ``evals``), the production answers by default: ``traffic`` as for :func:`drift_report`.

    Returns
    -------
    polars.DataFrame
        One row: ``table, column, auc, threshold, drifted, n_reference, n_current, terms_reference, terms_current``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into answers (call_id, answer, ts) select 'r' || i, 'refund issued for order ' || i, "
    ...     "timestamp '2026-01-01' from range(40) t(i)")
    >>> _ = db.duckdb.execute(
    ...     "insert into answers (call_id, answer, ts) select 'c' || i, 'please reboot the router ' || i, "
    ...     "timestamp '2026-01-02' from range(40) t(i)")
    >>> text_drift(db, reference=("2026-01-01", "2026-01-02"), current=("2026-01-02", "2026-01-03"))[
    ...     ["auc", "drifted"]].rows()
    [(1.0, True)]
    """
    import polars as pl

    from workbench.db import as_workbench

    db = as_workbench(db)
    ref_w = _check_window("reference", reference, "text_drift")
    cur_w = _check_window("current", current, "text_drift")
    t = _table(db, table, metric=options.pop("metric", None), fn="text_drift", evaluator=options.pop("evaluator", None),
               version=options.pop("version", None), traffic=options.pop("traffic", None))
    check_name("text_drift", "column", column, what="a column name")
    check_int("text_drift", "seed", seed, lo=0)
    check_int("text_drift", "max_texts", max_texts, lo=1)
    M.parse_where(where, fn="text_drift")
    if column not in t.columns or not t[column].type().is_string():
        raise NotFoundError(f"text_drift: {table}.{column} is not a text column; columns: {', '.join(t.columns)}")
    ref, _ = _fetch(t, table, [column], ref_w, where, max_texts)
    cur, _ = _fetch(t, table, [column], cur_w, where, max_texts)
    r = text_drift_score(ref[column].drop_nulls().to_list(), cur[column].drop_nulls().to_list(), seed=seed,
                         max_texts=max_texts, **options)
    return pl.DataFrame([{"table": table, "column": column, **r}])


# -- suite ------------------------------------------------------------------------------------------------------------


def drifted_column_rate(
    db: Any,
    *,
    by: Sequence[str] | str | None = None,
    period: str = "all",
    start: Any = None,
    end: Any = None,
    where: M.Where = None,
    reference: Window | None = None,
    table: str = "calls",
    columns: Sequence[str] | None = None,
    metric: str | None = None,
    evaluator: str | None = None,
    version: str | None = None,
    traffic: str | None = None,
    **options: Any,
) -> "pl.DataFrame":
    """Share of columns that drifted in [start, end) against the reference window, per group (a tidy frame).

    ``value`` is the share of drifted columns, ``n`` the number of columns tested; ``dataset_drift`` (share >= 0.5)
    follows. The reference defaults to the window of the same length just before ``start``; without ``start``/
    ``end`` the current window is the last 7 days of the table's data. ``period`` must be ``"all"``. ``table``,
    ``columns``, ``metric``, ``evaluator``, ``version``, ``traffic`` and the other options are
    :func:`drift_report`'s (for ``evals``: one evaluator at one version on the production answers by default).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute(
    ...     "insert into calls (call_id, ts, status, latency_ms) select 'c' || i, timestamp '2026-01-01' + "
    ...     "to_minutes(i), 'ok', case when i < 300 then 100 else 900 end + i % 7 * 10 from range(600) t(i)")
    >>> r = drifted_column_rate(db, start="2026-01-01 05:00", end="2026-01-01 10:00", columns=["latency_ms"])
    >>> r.select("metric", "value", "n", "dataset_drift").rows()
    [('drifted_column_rate', 1.0, 1, True)]
    """
    import datetime as dt

    import polars as pl

    from workbench.db import as_workbench
    from workbench.schema import TABLES

    db = as_workbench(db)
    if period != "all":
        raise ParameterError(f"drifted_column_rate: drift compares two windows; period must be 'all', got {period!r}")
    takes = set(inspect.signature(drift_report).parameters) - {"db", "table", "columns", "reference", "current",
                                                                "where", "metric", "evaluator", "version", "traffic"}
    unknown = sorted(set(options) - takes)
    if unknown:
        own = [n for n in inspect.signature(drifted_column_rate).parameters if n not in ("db", "options")]
        raise ParameterError(f"drifted_column_rate: unknown option {unknown[0]!r}; it takes "
                             f"{', '.join(own + sorted(takes))}")
    scores = dict(evaluator=evaluator, version=version, traffic=traffic)
    t = _table(db, table, metric=metric, fn="drifted_column_rate", **scores)
    keys = M.check_by(t, by, fn="drifted_column_rate")
    s, e = M.as_timestamp(start), M.as_timestamp(end)
    if s is None or e is None:
        last = t[TABLES[table].time].max().to_pyarrow().as_py()
        if last is None:
            return M.tidy(pl.DataFrame(schema={**{k: pl.String for k in keys}, "value": pl.Float64, "n": pl.Int64}),
                          keys=keys, metric="drifted_column_rate")
        e = e or last + dt.timedelta(microseconds=1)
        s = s or e - dt.timedelta(days=7)
    ref = _check_window("reference", reference, "drifted_column_rate") if reference is not None else (s - (e - s), s)
    # the groups of the selection (its where), each measured on its own rows: a group whose key is NULL on those
    # rows (IS NULL), not on every row
    chosen = M.scope(t, time=None, where=where)
    groups = [()] if not keys else to_polars(chosen.select(*keys).distinct()).rows()
    rows = []
    for g in groups:
        w = dict(M.parse_where(where)) | dict(zip(keys, g))
        rep = drift_report(db, table=table, columns=columns, reference=ref, current=(s, e), where=w or None,
                           metric=metric, **scores, **options)
        ds = rep.filter(pl.col("column") == "__dataset__").row(0, named=True)
        n = rep.filter((pl.col("column") != "__dataset__") & pl.col("drifted").is_not_null()).height
        rows.append({**dict(zip(keys, g)), "period_start": s, "value": ds["statistic"], "n": n,
                     "dataset_drift": ds["drifted"]})
    df = pl.DataFrame(rows, schema_overrides={"value": pl.Float64, "n": pl.Int64, "dataset_drift": pl.Boolean})
    return M.tidy(df, keys=keys, metric="drifted_column_rate")


# Each metric registered once with its contract (workbench.metrics.core.Metric).
SUITE = M.register(
    M.Metric(drifted_column_rate, unit="share", direction="lower", table="calls", periods=("all",), example={"columns": ["latency_ms", "input_tokens", "model", "status"]}),
    namespace=globals(),
)
