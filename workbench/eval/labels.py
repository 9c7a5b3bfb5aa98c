"""Human (or any external) hallucination labels into ``evals``, as one more evaluator."""

from __future__ import annotations

from workbench.errors import (IngestError, MissingFileError, NotFoundError, ParameterError, ParameterTypeError,
                              check_name)

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

    From the command line: ``workbench labels import FILE --db DB [--evaluator NAME] [--version V]``.

    Parameters
    ----------
    db : Workbench or path
    path_or_frame : path (CSV, JSONL, Parquet) or polars/pandas frame or list of dicts
        One row per answer: ``call_id`` and a label column (``label``, ``hallucinated`` or ``value``; or
        ``label_column``) holding 1/0 (1.0/0.0), true/false, yes/no or ``hallucinated``/``supported``. Optional
        ``explanation``. A file is read as UTF-8 (a byte-order mark and CRLF line ends are fine).
    evaluator, version : str
        Stored as ``evals.evaluator`` / ``evaluator_version``; re-importing the same version replaces the labels.
    label_column : str, optional
        The label column when it has another name.

    Returns
    -------
    dict
        ``evaluator``, ``version``, ``run_id``, ``imported`` (answers), ``hallucinated`` (of which labelled 1),
        ``duplicates`` (rows repeating an answer with the same label: the first row is kept).

    Raises
    ------
    InputError
        A file that cannot be read (invalid JSON, a CSV record with more or fewer fields than its header), a
        ``call_id`` not in ``answers``, a label that is none of the above, or an answer labelled both hallucinated
        and supported by two rows: the message names the file and its line (a frame's or list's row, from 1) and
        the column. Nothing is written then.

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
    fn = "import_labels"
    # (an empty evaluator or version was stored as such: labels no reader asks for by name)
    evaluator = check_name(fn, "evaluator", evaluator)
    version = check_name(fn, "version", version if isinstance(version, str) else str(version))
    db = as_workbench(db)
    where, at, columns, records = _records(path_or_frame, fn)
    if "call_id" not in columns:
        raise NotFoundError(f"{fn}: {where}: no column 'call_id'; columns: {', '.join(columns) or '(none)'}")
    if label_column is not None and label_column not in columns:
        raise NotFoundError(f"{fn}: {where}: no label column {label_column!r}; columns: "
                            f"{', '.join(columns) or '(none)'}")
    col = label_column or next((c for c in ("label", "hallucinated", "value") if c in columns), None)
    if col is None:
        raise NotFoundError(f"{fn}: {where}: no label column (label, hallucinated or value); columns: "
                            f"{', '.join(columns)}")
    known = set(db.answers.select("call_id").to_polars()["call_id"].to_list())
    run_id, ts, rows = new_run_id(), now(), []
    seen: dict[str, tuple[int, float]] = {}  # call_id -> (line or row, label) of its first row
    duplicates = 0
    for pos, rec in records:
        if not isinstance(rec, dict):
            raise IngestError(f"{fn}: {where} {at} {pos}: expected an object with call_id and a label, got "
                              f"{type(rec).__name__}")
        cid, raw = rec.get("call_id"), rec.get(col)
        if cid is None or str(cid).strip() == "":
            raise ParameterError(f"{fn}: {where} {at} {pos} column 'call_id': empty; every label needs the call it is of")
        if str(cid) not in known:
            raise ParameterError(f"{fn}: {where} {at} {pos}: call_id {cid!r} is not in answers")
        v, expl = _label_value(raw), rec.get("explanation")
        if v is None:
            got = "nothing" if raw is None else repr(raw)
            raise ParameterError(f"{fn}: {where} {at} {pos} column {col!r}: expected 1/0, true/false or "
                                 f"hallucinated/supported, got {got}")
        if str(cid) in seen:  # evals holds one label per answer and version: a repeat must agree with the first
            first, label = seen[str(cid)]
            if label != v:
                name = {1.0: HALLUCINATED, 0.0: SUPPORTED}
                raise ParameterError(f"{fn}: {where} {at} {pos}: call_id {str(cid)!r} is labelled {name[v]} here and "
                                     f"{name[label]} on {at} {first}; keep one of the two")
            duplicates += 1
            continue
        seen[str(cid)] = (pos, v)
        rows.append({"call_id": str(cid), "metric": LABEL_METRIC, "value": v, "label": HALLUCINATED if v else SUPPORTED,
                     "evaluator": evaluator, "evaluator_version": str(version), "run_id": run_id, "repeat": 0,
                     "ts": ts, "explanation": None if expl is None else str(expl), "details": None})
    write_evals(db, rows)
    return {"evaluator": evaluator, "version": str(version), "run_id": run_id, "imported": len(rows),
            "hallucinated": int(sum(r["value"] for r in rows)), "duplicates": duplicates}


def _label_value(raw: Any) -> float | None:
    """1.0 (hallucinated) or 0.0 (supported) of a label as files and frames write it; None when it is neither.

    >>> [_label_value(x) for x in (True, 1, 0.0, "1.0", " Yes ", "Hallucinated", "supported", 2, "maybe", None)]
    [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, None, None, None]
    """
    if isinstance(raw, bool):
        return float(raw)
    if raw is None:
        return None
    s = str(raw).strip().lower()
    if s in _TRUE:
        return 1.0
    if s in _FALSE:
        return 0.0
    try:  # 1, 0.0, "1.0" (pandas writes a float column so)
        number = float(s)
    except ValueError:
        return None
    return number if number in (0.0, 1.0) else None


def _records(source: Any, fn: str) -> tuple[str, str, list[str], list[tuple[int, Any]]]:
    """``(where, "line" or "row", columns, [(line or row, record)])`` of a label file, frame or list of dicts: a
    file's records numbered by the line they start on (blank lines and a multi-line CSV field counted), a frame's
    and a list's from 1."""
    import polars as pl

    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise MissingFileError(f"{fn}: no file at {p}")
        suffix = p.suffix.lower()
        if suffix in (".csv", ".jsonl", ".ndjson"):
            from workbench.io.records import refuse_wide_text

            refuse_wide_text(p)  # Excel's "Unicode text" is UTF-16: its columns would read as NUL-spaced names
        if suffix == ".csv":
            return str(p), "line", *_csv_records(p, fn)
        if suffix in (".jsonl", ".ndjson"):
            return str(p), "line", *_json_records(p, fn)
        if suffix != ".parquet":
            raise ParameterError(f"{fn}: {p}: expected .csv, .jsonl or .parquet, got {suffix or 'no suffix'}")
        # The file itself, never a pattern: polars reads "labels[1].parquet" as a glob (the file "labels1.parquet"),
        # and "~/labels.parquet" in the home directory, where this found it in a folder named "~".
        try:
            df, where = pl.read_parquet(p.absolute(), glob=False), str(p)
        except Exception as exc:  # not Parquet, cut short
            raise IngestError(f"{fn}: {p}: not a Parquet file ({str(exc).splitlines()[0]})") from None
    elif isinstance(source, pl.DataFrame):
        df, where = source, "frame"
    elif isinstance(source, list):
        columns = list(dict.fromkeys(k for r in source if isinstance(r, dict) for k in r))
        return "list", "row", columns, list(enumerate(source, start=1))
    else:
        try:
            df, where = pl.from_pandas(source), "frame"
        except Exception:
            raise ParameterTypeError(f"{fn}: expected a path or a frame, got {type(source).__name__}") from None
    return where, "row", df.columns, list(enumerate(df.iter_rows(named=True), start=1))


def _csv_records(p: Path, fn: str) -> tuple[list[str], list[tuple[int, dict]]]:
    import csv

    from workbench.io.records import allow_long_csv_fields, strict_csv_rows

    allow_long_csv_fields()
    header: list[str] | None = None
    out: list[tuple[int, dict]] = []
    try:
        with open(p, encoding="utf-8-sig", newline="") as fh:
            for line, rec, err in strict_csv_rows(csv.reader(fh, strict=True), p, mapping_hint=False):
                if err is not None:
                    raise IngestError(f"{fn}: {p} line {line}: not a CSV record ({err})")
                if not rec or rec == [""]:
                    continue
                if header is None:
                    header = [h.strip() for h in rec]
                    for name in dict.fromkeys(header):  # a record keeps one value of a name: the other, unread
                        at = [str(i) for i, h in enumerate(header, start=1) if h == name]
                        if len(at) > 1:
                            raise IngestError(f"{fn}: {p} line {line}: the header names {name!r} {len(at)} times "
                                              f"(columns {', '.join(at[:-1])} and {at[-1]}); rename all but one")
                elif len(rec) != len(header):
                    raise IngestError(f"{fn}: {p} line {line}: expected {len(header)} fields ({', '.join(header)}), "
                                      f"got {len(rec)}")
                else:
                    out.append((line, {k: (v if v != "" else None) for k, v in zip(header, rec)}))
    except UnicodeDecodeError as exc:
        raise IngestError(f"{fn}: {p}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    return header or [], out


def _json_records(p: Path, fn: str) -> tuple[list[str], list[tuple[int, Any]]]:
    from workbench.io.records import iter_json_lines

    out: list[tuple[int, Any]] = []
    for line, value, _raw, err in iter_json_lines(p):
        if err is not None:
            raise IngestError(f"{fn}: {p} line {line}: {err}")
        out.append((line, value))
    columns = list(dict.fromkeys(k for _line, r in out if isinstance(r, dict) for k in r))
    return columns, out
