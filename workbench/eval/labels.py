"""Human (or any external) hallucination labels into ``evals``, as one more evaluator."""

from __future__ import annotations

from workbench.errors import MissingFileError, NotFoundError, ParameterError, ParameterTypeError

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.db import as_workbench
from workbench.eval.run import new_run_id, now, write_evals
from workbench.schema import HALLUCINATED, LABEL_METRIC, SUPPORTED

if TYPE_CHECKING:  # pragma: no cover
    from workbench.db import Workbench

__all__ = ["import_labels"]

_TRUE = {"1", "true", "yes", "y", "t", HALLUCINATED}
_FALSE = {"0", "false", "no", "n", "f", SUPPORTED}


def import_labels(
    db: "Workbench | str",
    path_or_frame: Any,
    *,
    evaluator: str = "human",
    version: str = "1",
    label_column: str | None = None,
) -> dict:
    """Load human (or any external) hallucination labels into ``evals``, as an evaluator like any other.

    Parameters
    ----------
    db : Workbench or path
    path_or_frame : path (CSV, JSONL, Parquet) or polars/pandas frame or list of dicts
        One row per answer: ``call_id`` and a label column (``label``, ``hallucinated`` or ``value``; or
        ``label_column``) holding 1/0, true/false or ``hallucinated``/``supported``. Optional ``explanation``.
    evaluator, version : str
        Stored as ``evals.evaluator`` / ``evaluator_version``; re-importing the same version replaces the labels.
    label_column : str, optional
        The label column when it has another name.

    Returns
    -------
    dict
        ``evaluator``, ``version``, ``run_id``, ``imported`` (rows), ``hallucinated`` (of which labelled 1).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, answer) values ('a', 'x'), ('b', 'y')")
    >>> import_labels(db, [{"call_id": "a", "label": 1}, {"call_id": "b", "label": "supported"}])["imported"]
    2
    >>> db.sql("select call_id, metric, value, label from evals order by call_id").rows()
    [('a', 'hallucination_label', 1.0, 'hallucinated'), ('b', 'hallucination_label', 0.0, 'supported')]
    """
    import polars as pl

    db = as_workbench(db)
    fn = "import_labels"
    if isinstance(path_or_frame, (str, Path)):
        p = Path(path_or_frame)
        if not p.exists():
            raise MissingFileError(f"{fn}: no file at {p}")
        suffix = p.suffix.lower()
        if suffix in (".csv", ".jsonl", ".ndjson"):
            from workbench.io.records import refuse_wide_text

            refuse_wide_text(p)  # Excel's "Unicode text" is UTF-16: its columns would read as NUL-spaced names
        # The file itself, never a pattern: polars reads "labels[1].csv" as a glob (the file "labels1.csv"), and
        # "~/labels.csv" in the home directory, where this found it in a folder named "~".
        if suffix == ".csv":
            df = pl.read_csv(p.absolute(), infer_schema_length=0, glob=False)
        elif suffix in (".jsonl", ".ndjson"):
            with open(p, "rb") as fh:  # read_ndjson has no glob=False
                df = pl.read_ndjson(fh)
        elif suffix == ".parquet":
            df = pl.read_parquet(p.absolute(), glob=False)
        else:
            raise ParameterError(f"{fn}: {p}: expected .csv, .jsonl or .parquet, got {suffix or 'no suffix'}")
        where = str(p)
    elif isinstance(path_or_frame, pl.DataFrame):
        df, where = path_or_frame, "frame"
    elif isinstance(path_or_frame, list):
        df, where = pl.DataFrame(path_or_frame), "list"
    else:
        try:
            df, where = pl.from_pandas(path_or_frame), "frame"
        except Exception:
            raise ParameterTypeError(f"{fn}: expected a path or a frame, got {type(path_or_frame).__name__}") from None
    if "call_id" not in df.columns:
        raise NotFoundError(f"{fn}: {where}: no column 'call_id'; columns: {', '.join(df.columns)}")
    col = label_column or next((c for c in ("label", "hallucinated", "value") if c in df.columns), None)
    if col is None or col not in df.columns:
        raise NotFoundError(f"{fn}: {where}: no label column (label, hallucinated or value); columns: {', '.join(df.columns)}")
    known = set(db.answers.select("call_id").to_polars()["call_id"].to_list())
    run_id, ts, rows = new_run_id(), now(), []
    expl = df["explanation"].to_list() if "explanation" in df.columns else [None] * df.height
    for i, (cid, raw) in enumerate(zip(df["call_id"].to_list(), df[col].to_list())):
        line = i + 1
        if cid is None or str(cid) not in known:
            raise ParameterError(f"{fn}: {where} row {line}: call_id {cid!r} is not in answers")
        s = str(raw).strip().lower() if raw is not None else ""
        if isinstance(raw, bool):
            s = "1" if raw else "0"
        elif isinstance(raw, (int, float)) and raw in (0, 1):
            s = str(int(raw))
        if s in _TRUE:
            v = 1.0
        elif s in _FALSE:
            v = 0.0
        else:
            raise ParameterError(f"{fn}: {where} row {line} column {col!r}: expected 1/0, true/false or "
                             f"hallucinated/supported, got {raw!r}")
        rows.append({"call_id": str(cid), "metric": LABEL_METRIC, "value": v, "label": HALLUCINATED if v else SUPPORTED,
                     "evaluator": evaluator, "evaluator_version": str(version), "run_id": run_id, "repeat": 0,
                     "ts": ts, "explanation": expl[i], "details": None})
    write_evals(db, rows)
    return {"evaluator": evaluator, "version": str(version), "run_id": run_id, "imported": len(rows),
            "hallucinated": int(sum(r["value"] for r in rows))}


