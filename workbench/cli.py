"""The ``workbench`` command: a thin wrapper, one library call per verb.

Nothing heavy is imported at start-up: each verb imports its module when it runs, so ``workbench --help`` is instant.
Exit codes (see :mod:`workbench.errors`): 0 success; 1 a check fired (an SLO or budget alert, a quality gate); 2 bad
input or environment, printed as one line naming the file, row and field or the parameter; 3 no check fired but one
could not be measured (``slo``: an SLO with no call in its window; ``budget``: a month with unpriced calls, or one
no call of any feature reached). Any other
exception is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence


from workbench.errors import EXIT_CHECK, EXIT_NO_DATA, EXIT_OK, ParameterError, ReportError, WorkbenchError


class CliError(ParameterError):
    """A bad command-line argument: printed as one line, exit 2.

    Examples
    --------
    >>> e = CliError("--param: expected KEY=VALUE, got 'oops'")
    >>> isinstance(e, ParameterError), e.exit_code
    (True, 2)
    >>> import contextlib, sys
    >>> with contextlib.redirect_stderr(sys.stdout):  # as the command prints it (on standard error)
    ...     main(["metrics", "error_rate", "--param", "oops"])
    workbench metrics: error: --param: expected KEY=VALUE, got 'oops'
    2
    """


def _add_db(p: argparse.ArgumentParser, required: bool = False, lock: bool = True) -> None:
    p.add_argument("--db", required=required, help="DuckDB file (default: $WORKBENCH_DB or datasets/workbench.duckdb)")
    if lock:
        p.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS",
                       help="wait this long for a database locked by another process (default: "
                            "$WORKBENCH_LOCK_TIMEOUT_S or 30)")


def _add_labelled(p: argparse.ArgumentParser) -> None:
    """The labelled answers of ``hallucination benchmark|calibrate``: a file, or the reviewers' labels of a database."""
    p.add_argument("input", metavar="LABELLED.jsonl", nargs="?", default=None,
                   help="labelled answers (answer, contexts, label); or --db")
    p.add_argument("--db", default=None, help="instead of a file: the production answers of this database that "
                   "reviewers labelled (workbench labels import)")
    p.add_argument("--reference", default="human", help="with --db: the evaluator whose labels are the truth "
                   "(default human)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE", help="with --db: which answers")


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", default=None, help="group keys, comma separated (default: the metric's own)")
    p.add_argument("--period", default=None, choices=["hour", "day", "week", "month", "all"])
    p.add_argument("--start", default=None, help="first date or timestamp included (ISO)")
    p.add_argument("--end", default=None, help="first date or timestamp excluded (ISO)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE", help="filter; repeatable; VALUE may be a,b")


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="out_format", default="table", choices=["table", "csv", "json", "parquet"])
    p.add_argument("--out", type=_path, default=None, help="write to this file instead of standard output")


def build_parser() -> argparse.ArgumentParser:
    """The ``workbench`` argument parser: a sub-command per verb (``ingest``, ``metrics``, ``slo``, ``eval``, ...), each
    with its own flags; :func:`main` runs the verb it parsed.

    Examples
    --------
    >>> a = build_parser().parse_args(["metrics", "error_rate", "--by", "feature,model", "--where", "status=ok"])
    >>> a.verb, a.name, a.by, a.where, a.period, a.out_format
    ('metrics', 'error_rate', 'feature,model', ['status=ok'], None, 'table')
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     build_parser().parse_args(["metrics", "error_rate", "--period", "year"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    >>> print(err.getvalue().splitlines()[-1])
    workbench metrics: error: argument --period: invalid choice: 'year' (choose from ...)
    """
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Analytics and evaluation for GenAI products: hallucination, latency, cost, adoption.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser("ingest", help="load telemetry files into the canonical tables")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _add_db(p)
    from workbench.io.ingest import FORMATS

    p.add_argument("--format", default="auto", choices=["auto", *FORMATS],
                   help="auto: recognised from the content; or force one (the summary says what each file was read as)")
    p.add_argument("--mapping", type=_path, default=None, help="TOML column mapping (required for jsonl/csv/parquet)")
    p.add_argument("--json", action="store_true", help="print one JSON summary object: the totals and each file (its "
                   "run id, counts, and same_as / appended_to when it was not read whole)")
    p.add_argument("--growing", action="store_true",
                   help="the files are logs still being written: read each file of lines up to its last newline and "
                        "leave a half-written last line for the next load (instead of quarantining it)")

    p.add_argument("--no-prices", action="store_true", help="do not refresh the prices table after the load (it is "
                   "filled for the models the calls name, from genai-prices and workbench.toml [[prices]])")
    p.add_argument("--config", default=None, help="workbench.toml whose [[prices]] the refresh reads (default: "
                   "$WORKBENCH_CONFIG or ./workbench.toml; when neither exists the overrides already in the table are kept)")

    p = sub.add_parser("prices", help="refresh the prices table (genai-prices and workbench.toml [[prices]]) and list "
                                      "each model's calls and the share of them left unpriced")
    _add_db(p)
    p.add_argument("--config", default=None, help="workbench.toml (default: $WORKBENCH_CONFIG or ./workbench.toml; "
                   "when neither exists the [[prices]] overrides already in the table are kept)")
    _add_output(p)

    p = sub.add_parser("collect", help="receive OTLP/HTTP traces live (POST /v1/traces), spool them durably, load them")
    p.add_argument("--db", required=True,
                   help="DuckDB file to load into (created when missing; open only while a batch loads)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4318, help="port (default 4318, the OTLP/HTTP port; 0 picks a free one)")
    p.add_argument("--spool", type=_path, default=None, help="spool directory (default: DB.spool)")
    p.add_argument("--max-body-mb", type=_megabytes, default=16.0,
                   help="largest request body in MiB, compressed or not (413 beyond; default 16)")
    p.add_argument("--max-connections", type=int, default=64,
                   help="connections served at once, a thread each (one more is answered 503 with Retry-After; "
                        "default 64): raise it for more exporters keeping their connections alive")
    p.add_argument("--config", default=None, help="workbench.toml whose [[prices]] the price refresh after a load "
                   "reads (default: $WORKBENCH_CONFIG or ./workbench.toml; when neither exists the overrides already "
                   "in the table are kept)")

    p = sub.add_parser("demo", help="build the demo database and run the whole pipeline on it")
    p.add_argument("--db", default="datasets/demo.duckdb")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the synthetic volume")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--reports", type=_path, default="reports", help="folder for the published reports")
    p.add_argument("--no-reports", action="store_true", help="build and evaluate only")

    p = sub.add_parser("metrics", help="list the metrics, or compute one")
    p.add_argument("name", metavar="NAME|list")
    _add_db(p)
    _add_selection(p)
    _add_output(p)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="metric-specific option; repeatable")

    p = sub.add_parser("slo", help="SLO status and burn-rate alerts; exit 1 when an alert fires or an SLO is missed, "
                                   "else 3 when an SLO has no call in its window (no data), else 0")
    _add_db(p)
    p.add_argument("--config", default=None, help="workbench.toml (default: ./workbench.toml)")
    p.add_argument("--at", default=None, help="evaluate as of this UTC timestamp, ISO (default: now, the clock in UTC)")
    _add_output(p)

    p = sub.add_parser("budget", help="budget status per feature and month; exit 1 when the spend reaches a warning "
                                      "or the budget, else 3 when a month has unpriced calls (its spend unknown) "
                                      "or no call at all (no data), else 0")
    _add_db(p)
    p.add_argument("--config", default=None, help="workbench.toml (default: ./workbench.toml)")
    p.add_argument("--at", default=None, help="evaluate as of this UTC timestamp, ISO (default: now, the clock in UTC)")
    _add_output(p)

    p = sub.add_parser("eval", help="score answers not yet scored by a detector version")
    _add_db(p)
    p.add_argument("--detector", default=None, help="support, support:CALIBRATION.json, nli:PATH, judge[:metric] or "
                   "ragas:<metric> (default: [detector] of workbench.toml, else the offline detector)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE")
    p.add_argument("--config", default=None, help="workbench.toml: [detector], and [judge] for LLM judges")
    p.add_argument("--dry-run", action="store_true", help="estimate tokens and cost of an LLM judge, spend nothing")
    p.add_argument("--repeat", type=int, default=1, help="repeat an LLM judge k times to measure its variance")

    p = sub.add_parser("hallucination", help="score or benchmark a JSONL test set offline")
    hsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    h = hsub.add_parser("score", help="IN.jsonl (id, question, contexts, answer) -> OUT.jsonl (id, score, label, claims)")
    h.add_argument("input", metavar="IN.jsonl")
    h.add_argument("--out", type=_path, required=True, metavar="OUT.jsonl")
    h.add_argument("--detector", default=None, help="'support' (offline, default), support:CALIBRATION.json "
                   "or nli:PATH (a local ONNX model)")
    h.add_argument("--config", default=None, help="workbench.toml ([detector] model = PATH or calibration = FILE)")
    h = hsub.add_parser("benchmark", help="AUROC and Brier per source with bootstrap intervals, next to two baselines, "
                        "leave-one-source-out figures and a reliability table, on labelled JSONL or on the reviewers' "
                        "labels in a database (--db: per feature)")
    _add_labelled(h)
    h.add_argument("--detector", default=None, help="'support' (offline, default), support:CALIBRATION.json "
                   "or nli:PATH (a local ONNX model)")
    h.add_argument("--config", default=None, help="workbench.toml ([detector] model = PATH or calibration = FILE)")
    h.add_argument("--reps", type=_positive_int, default=1000, help="bootstrap resamples (default 1000)")
    h.add_argument("--json", action="store_true")
    h = hsub.add_parser("calibrate", help="fit the detector's probabilities on labelled answers of your own traffic: "
                        "the offline detector (--out FILE; then --detector support:FILE or [detector] calibration = "
                        "FILE), or how a local model (--detector nli:PATH) and the lexical score combine "
                        "(PATH/calibration.json)")
    _add_labelled(h)
    h.add_argument("--detector", default="support", help="'support' (default) or nli:PATH")
    h.add_argument("--out", type=_path, default=None, metavar="FILE.json", help="where the offline detector's calibration is "
                   "written (required with --detector support)")
    h.add_argument("--folds", type=int, default=5, help="cross-validation folds of the report (default 5)")

    p = sub.add_parser("labels", help="bring reviewers' (or any external) hallucination labels into the database")
    lsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    h = lsub.add_parser("import", help="FILE (CSV, JSONL or Parquet: call_id and a label of 1/0, true/false or "
                        "hallucinated/supported, optional explanation) -> evals, as one more evaluator; "
                        "re-importing the same evaluator and version replaces its labels")
    h.add_argument("input", metavar="FILE")
    _add_db(h)
    h.add_argument("--evaluator", default="human", metavar="NAME", help="who labelled (default human: what --db of hallucination "
                   "benchmark|calibrate reads)")
    h.add_argument("--version", dest="label_version", default="1", metavar="VERSION", help="the labels' version (default 1)")
    h.add_argument("--label-column", default=None, metavar="COLUMN", help="the label column when it is not label, hallucinated or value")
    h.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("report", help="run a report notebook and publish it under reports/")
    p.add_argument("name", metavar="NAME|list|all")
    _add_db(p)
    p.add_argument("--period", default=None, help="report period, e.g. 2026-W47, 2026-11, 2026-11-23 (default: latest week)")
    p.add_argument("--out", type=_path, default="reports", help="reports folder")
    p.add_argument("--force", action="store_true", help="replace an existing run of the same period (kept as a new run otherwise)")
    p.add_argument("--config", default=None, help="workbench.toml: targets, SLOs, budgets (default: $WORKBENCH_CONFIG "
                   "or ./workbench.toml); checked before the notebook runs, its path recorded in params.json")
    p.add_argument("--cell-timeout", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="stop and fail the report when a cell runs longer (default: no limit; `schedule run` uses "
                        "[schedule] cell_timeout, 1800)")

    p = sub.add_parser("schedule", help="publish due reports unattended; status; crontab or systemd units")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = ssub.add_parser("run", help="publish every due, unpublished period (catching up, oldest first); notify on failure")
    _add_db(s)
    s.add_argument("--out", type=_path, default="reports", help="reports folder")
    s.add_argument("--config", default=None, help="workbench.toml ([schedule], [notify])")
    s.add_argument("--max-catchup", type=int, default=None, help="at most this many missed periods per report")
    s = ssub.add_parser("status", help="last run of each report, what is due, failures, data staleness")
    _add_db(s)
    s.add_argument("--out", type=_path, default="reports")
    s.add_argument("--config", default=None)
    s = ssub.add_parser("export", help="print crontab lines or systemd units that call `schedule run`")
    _add_db(s)
    s.add_argument("--out", type=_path, default="reports")
    s.add_argument("--config", default=None)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--crontab", dest="kind", action="store_const", const="crontab", default="crontab")
    g.add_argument("--systemd", dest="kind", action="store_const", const="systemd")
    s.add_argument("--cron", default=None, help="cron expression (default: [schedule] cron, or 0 6 * * *)")
    return parser


#: A cell a spreadsheet would run as a formula: starts (after any blanks) with = + - @ (or their full-width forms),
#: or with a tab or carriage return (OWASP, "CSV Injection").
_FORMULA = re.compile(r"^(?:[\t\r]|\s*[=+\-@\uff1d\uff0b\uff0d\uff20])")


def csv_safe(df):
    """The frame with every text cell (and column name) that a spreadsheet would read as a formula prefixed with
    a single quote, as OWASP's CSV-injection guidance says; numbers and other cells are unchanged.

    Every CSV the command line writes goes through it (``--format csv``, and ``--out`` with ``--format table``).

    >>> import polars as pl
    >>> csv_safe(pl.DataFrame({"a": ["=cmd|' /C calc'!A0", "ok", "-1+1", "@SUM(1)", "\tx", None], "v": [-1, 2, 3, 4, 5, 6]})).rows()[:3]
    [("'=cmd|' /C calc'!A0", -1), ('ok', 2), ("'-1+1", 3)]
    """
    import polars as pl

    def safe(name: str) -> str:
        return "'" + name if _FORMULA.match(name) else name

    text = [c for c, t in df.schema.items() if t in (pl.String, pl.Categorical) or isinstance(t, pl.Enum)]
    if text:
        df = df.with_columns(
            pl.when(pl.col(c).cast(pl.String).str.contains(_FORMULA.pattern))
            .then(pl.lit("'") + pl.col(c).cast(pl.String))
            .otherwise(pl.col(c).cast(pl.String))
            .alias(c)
            for c in text
        )
    return df.rename({c: safe(c) for c in df.columns if safe(c) != c})


def _out_is_not_the_database(a: argparse.Namespace) -> None:
    """``--out`` naming the database (a slip between two paths) would write a CSV over it once the query is done."""
    import os

    from workbench._files import same_file
    from workbench.db import DEFAULT_DB

    db = a.db or os.environ.get("WORKBENCH_DB") or DEFAULT_DB
    if a.out and db != ":memory:" and same_file(a.out, db):
        raise CliError(f"--out {a.out}: is the database; write the result to another file")


def _print_frame(df, fmt: str, out: str | None) -> None:
    if fmt in ("csv", "table") and (out or fmt == "csv"):
        df = csv_safe(df)
    if out:
        from workbench._files import written_atomically

        # replaced in one rename: a run stopped halfway (a scheduled one killed, a full disk) leaves the previous file
        try:
            with written_atomically(out, encoding=None, into_special=True) as fh:
                {"csv": df.write_csv, "json": df.write_json, "parquet": df.write_parquet, "table": df.write_csv}[fmt](fh)
        except WorkbenchError:
            raise  # already names the file (no folder to write it in, a folder given)
        except OSError as exc:
            raise CliError(f"--out {out}: cannot write it: {exc.strerror or exc}") from None
        print(f"wrote {df.height} rows to {out}", file=sys.stderr)
        return
    if fmt == "csv":
        sys.stdout.write(df.write_csv())
    elif fmt == "json":
        sys.stdout.write(df.write_json() + "\n")
    elif fmt == "parquet":
        raise CliError("--format parquet needs --out FILE")
    else:
        import polars as pl

        with pl.Config(tbl_rows=200, tbl_cols=-1, tbl_width_chars=100, fmt_str_lengths=24, float_precision=4,
                       tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True, tbl_formatting="ASCII_MARKDOWN"):
            text = str(df)
        head = text.splitlines()[0] if text else ""
        if max(map(len, text.splitlines()), default=0) <= 100 and "..." not in text and all(c in head for c in df.columns):
            print(text)
        else:  # too wide for 100 columns: one block per row, a column per line (as psql's expanded display)
            print(_expanded(df))


def _expanded(df, width: int = 100) -> str:
    """A frame as one block per row, ``column | value`` per line, each line at most ``width`` characters.

    >>> import polars as pl
    >>> print(_expanded(pl.DataFrame({"feature": ["chat"], "value": [0.25]})))
    -[ row 1 ]----
    feature | chat
    value   | 0.25
    """
    key_w = max((len(c) for c in df.columns), default=0)
    lines = []
    for i, row in enumerate(df.iter_rows(named=True), 1):
        lines.append(f"-[ row {i} ]" + "-" * 4)
        for k, v in row.items():
            text = "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
            line = f"{k:<{key_w}} | {' '.join(text.split())}"
            lines.append(line if len(line) <= width else line[: width - 3] + "...")
    return "\n".join(lines)


def _params(items: Sequence[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise CliError(f"--param: expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(val)
        except json.JSONDecodeError:
            out[key] = val
    return out


def _cmd_ingest(a: argparse.Namespace) -> int:
    from workbench.db import connect
    from workbench.io.ingest import ingest

    from workbench.io.prices import load_prices, price_overrides

    if not a.no_prices:
        price_overrides(a.config)  # a broken [[prices]] is an error before anything is loaded, not after the load's commit
    prices = None
    with connect(a.db, create=True) as db:  # the one verb (with demo) that may create a database
        summary = ingest(db, a.paths, format=a.format, mapping=a.mapping, progress=not a.json,
                         growing=a.growing)
        if not a.no_prices and (summary.inserted or _unpriced_table(db)):
            # the cost metrics price each call from the prices table: filled here for the models the calls name (a
            # database loaded only by this command had every call unpriced); also when an earlier load could not
            prices = load_prices(db, config=a.config)
    if a.json:
        # the totals, and each file: its run (the ingest_runs row), counts, and whether it was read whole, not read
        # again (same_as) or read from where an earlier load stopped (appended_to)
        print(json.dumps({**summary.as_dict(), "files": summary.files, "prices": prices}))
        if prices is not None:  # which workbench.toml the overrides came from, or that none was found
            print(prices.sentence, file=sys.stderr)
    else:
        print(summary)
        if prices is not None:
            print(f"{prices.sentence}; `workbench prices --db ...` lists what is left unpriced")
    return 0


def _unpriced_table(db) -> bool:
    """Whether the database holds calls but its prices table holds no row (a load whose refresh did not run)."""
    return bool(db.duckdb.execute("select exists(select 1 from calls) and not exists(select 1 from prices)").fetchone()[0])


def _cmd_prices(a: argparse.Namespace) -> int:
    _out_is_not_the_database(a)
    from workbench.db import connect
    from workbench.io.prices import load_prices
    from workbench.metrics.cost import unpriced_rate

    with connect(a.db, create=False) as db:
        n = load_prices(db, config=a.config)
        df = unpriced_rate(db, by=("provider", "model"), period="all")
    print(n.sentence, file=sys.stderr)
    _print_frame(df.drop("period_start", strict=False), a.out_format, a.out)
    return 0


def _cmd_collect(a: argparse.Namespace) -> int:
    from workbench.io.collect import collect

    return collect(a.db, host=a.host, port=a.port, spool=a.spool, max_body_bytes=int(a.max_body_mb * 1024 * 1024),
                   config=a.config, max_connections=a.max_connections)


def _cmd_demo(a: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    run_demo(a.db, scale=a.scale, seed=a.seed, reports=None if a.no_reports else a.reports)
    return 0


def _cmd_metrics(a: argparse.Namespace) -> int:
    from workbench.metrics.core import compute

    _out_is_not_the_database(a)

    if a.name == "list":
        import polars as pl

        from workbench.metrics.core import contracts

        rows = [c.as_dict() for _, c in sorted(contracts().items())]
        if a.out_format == "table" and not a.out:
            for r in rows:
                print(f"{r['metric']:30s} {r['unit']:8s} {r['direction']:7s} {r['definition']}")
            return 0
        df = pl.DataFrame([{**r, "by": ",".join(r["by"]), "options": ",".join(r["options"]),
                            "required": ",".join(r["required"]), "periods": ",".join(r["periods"])} for r in rows])
        _print_frame(df, a.out_format, a.out)
        return 0
    from workbench.errors import UnknownNameError
    from workbench.metrics.core import suite

    if a.name not in suite():  # the name is checked before the database is opened: the cheaper error first
        raise UnknownNameError("metric", a.name, suite())
    kwargs: dict[str, object] = dict(_params(a.param))
    if a.by is not None:
        kwargs["by"] = tuple(x.strip() for x in a.by.split(",") if x.strip())  # "feature, model" as typed
    for key in ("period", "start", "end"):
        if getattr(a, key) is not None:
            kwargs[key] = getattr(a, key)
    if a.where:
        kwargs["where"] = a.where
    from workbench.db import connect

    with connect(a.db, read_only=True) as db:
        df = compute(a.name, db, **kwargs)
        if a.where and (df.is_empty() or ("n" in df.columns and not (df["n"].fill_null(0) > 0).any())):
            for warning in _where_hints(db, a.where):
                print(f"workbench metrics: warning: {warning}", file=sys.stderr)
    _print_frame(df, a.out_format, a.out)
    return 0


def _where_hints(db, where: Sequence[str]) -> list[str]:
    """For each ``COL=VALUE`` filter whose values match no row, the closest values that exist (calls, then events)."""
    import difflib

    from workbench.db import parse_where

    out = []
    for col, val in parse_where(where).items():
        for table in ("calls", "events"):
            t = db.table(table)
            if col not in t.columns:
                continue
            # the column's values as text (a NULL is no value: it is not "nan"), through polars: no pandas to import
            seen = t.select(_v=t[col].cast("string")).distinct().limit(2000).to_polars()["_v"]
            known = [v for v in seen.to_list() if v is not None]
            missing = [v for v in (val if isinstance(val, list) else [val]) if v not in known]
            for v in missing:
                close = difflib.get_close_matches(v, known, n=3, cutoff=0.5)
                hint = f"; closest: {', '.join(close)}" if close else f"; some values: {', '.join(sorted(known)[:5])}"
                out.append(f"--where {col}={v} matches no row of {table}{hint}")
            break
    return out


def _clock_at(a: argparse.Namespace) -> object:
    """``--at`` of ``slo`` / ``budget``, refused when it is after the clock: a time that has not come yet sees no call
    and reads "ok" (2062 typed for 2026)."""
    if a.at is None:
        return None
    from workbench.db import as_timestamp
    from workbench.schema import not_after_clock

    what = f"{a.verb}: --at"
    return not_after_clock(as_timestamp(a.at, what=what), what)


def _check_exit(fired: bool, unmeasured: bool) -> int:
    """The exit code of ``slo`` and ``budget``: 1 when an alert fires on what was measured, else 3 when a check could
    not be measured (no data: never read as healthy by a cron job), else 0.

    >>> _check_exit(True, True), _check_exit(False, True), _check_exit(False, False)
    (1, 3, 0)
    """
    return EXIT_CHECK if fired else EXIT_NO_DATA if unmeasured else EXIT_OK


def _cmd_slo(a: argparse.Namespace) -> int:
    _out_is_not_the_database(a)
    from workbench.db import connect
    from workbench.metrics.slo import slo_status

    at = _clock_at(a)
    with connect(a.db, read_only=True) as db:
        df, firing = slo_status(db, config=a.config, at=at)
    _print_frame(df, a.out_format, a.out)
    return _check_exit(firing, bool((df["n"] == 0).any()))


def _cmd_budget(a: argparse.Namespace) -> int:
    _out_is_not_the_database(a)
    from workbench.metrics.cost import BUDGET_STATUSES, budget_status
    from workbench.db import connect

    at = _clock_at(a)
    with connect(a.db, read_only=True) as db:
        df, _ = budget_status(db, config=a.config, at=at)
    _print_frame(df, a.out_format, a.out)
    # an unpriced month, or one no call reached, warns (its alert column, a scheduled run's notice) but was not
    # measured: no data, exit 3
    status = df["status"]
    fired = [s for s, (alert, measured) in BUDGET_STATUSES.items() if alert and measured]
    unmeasured = [s for s, (_, measured) in BUDGET_STATUSES.items() if not measured]
    return _check_exit(bool(status.is_in(fired).any()), bool(status.is_in(unmeasured).any()))


def _cmd_eval(a: argparse.Namespace) -> int:
    from workbench.db import connect
    from workbench.eval.score import evaluate

    with connect(a.db, create=False) as db:  # writes evals into an existing database; never creates one
        summary = evaluate(db, detector=a.detector, where=a.where or None, config=a.config, dry_run=a.dry_run, repeat=a.repeat)
        if a.where and not (summary.get("to_score") or summary.get("scored") or summary.get("skipped")):
            for warning in _where_hints(db, a.where):  # a filter that selects nothing: say which value matched no row
                print(f"workbench eval: warning: {warning}", file=sys.stderr)
    print(json.dumps(summary, default=str))
    return 0


def _labelled_rows(a: argparse.Namespace, *, per_feature: bool = False) -> list[dict]:
    """The labelled answers named by ``LABELLED.jsonl`` or ``--db`` (exactly one of the two). From a database, with
    ``per_feature`` each answer's feature is its ``source`` (the benchmark's rows per source); otherwise every answer
    weighs the same in a fit, as every answer counts the same in the metrics."""
    from workbench.eval import calibrate, detector

    if (a.input is None) == (a.db is None):
        raise ParameterError(f"hallucination {a.action}: give the labelled answers as LABELLED.jsonl or --db DB "
                             "(one of the two)")
    if a.db is None:
        rows = detector.read_labelled(a.input)
        if not rows:
            raise ParameterError(f"{a.input}: no labelled rows (the file is empty or holds only blank lines)")
        return rows
    from workbench.db import connect

    with connect(a.db, read_only=True) as db:
        rows = calibrate.labelled_answers(db, reference=a.reference, where=a.where or None)
    if not rows:
        raise ParameterError(f"hallucination {a.action}: no answer of {a.db} carries a label of {a.reference!r}"
                             f"{' with ' + ', '.join(a.where) if a.where else ''} (bring reviewers' labels in with "
                             "workbench labels import FILE --db DB)")
    if not per_feature:
        return rows
    return [{**r, "source": r["feature"] if r["feature"] is not None else "(no feature)"} for r in rows]


def _cmd_labels(a: argparse.Namespace) -> int:
    from workbench.db import connect
    from workbench.eval.labels import import_labels

    with connect(a.db, create=False) as db:  # labels of answers already loaded: never a new database
        s = import_labels(db, a.input, evaluator=a.evaluator, version=a.label_version, label_column=a.label_column)
    if a.json:
        print(json.dumps(s))
        return 0
    n = s["duplicates"]
    repeats = f"; {n:,} repeated row{'s' if n != 1 else ''} skipped" if n else ""
    print(f"imported {s['imported']:,} labels of {s['evaluator']} version {s['version']} from {a.input} "
          f"({s['hallucinated']:,} hallucinated, {s['imported'] - s['hallucinated']:,} supported{repeats}); "
          f"run {s['run_id']}")
    return 0


def _calibrate_offline(a: argparse.Namespace) -> int:
    """``workbench hallucination calibrate LABELLED.jsonl --out FILE``: the offline detector's calibration."""
    from workbench.detector_config import calibration_target
    from workbench.eval import calibrate, detector

    if a.out is None:
        raise ParameterError("hallucination calibrate: --out FILE.json is required: where the calibration is written "
                             "(then score with --detector support:FILE.json, or set [detector] calibration = "
                             "\"FILE.json\" in workbench.toml)")
    calibration_target(a.out)  # a folder that is not there is said before the fit, not after it
    cal = calibrate.fit_calibration(_labelled_rows(a), folds=a.folds, progress=True)
    path = calibrate.write_calibration(cal, a.out)
    r = cal.report
    print(f"calibrated the offline detector {detector.DETECTOR_NAME} {detector.DETECTOR_VERSION} on {cal.rows:,} "
          f"labelled answers ({cal.hallucinated:,} hallucinated; {r['unscorable']:,} unscorable left out); "
          f"AUROC {r['auroc']:.3f}")
    if r["ece_after"] is not None:
        print(f"expected calibration error {r['ece_before']:.3f} -> {r['ece_after']:.3f}, Brier "
              f"{r['brier_before']:.3f} -> {r['brier_after']:.3f} ({r['folds']}-fold cross-validated: each answer "
              "calibrated without its fold)")
    else:
        print(f"expected calibration error before: {r['ece_before']:.3f}; too few answers of a label to "
              f"cross-validate the one after over {r['folds']} folds")
    if "warning" in r:
        print(f"warning: {r['warning']}")
    print(f"wrote {path}: score with --detector {detector.DETECTOR_NAME}:{path} or set [detector] calibration = "
          f"\"{path}\" in workbench.toml (version {cal.version})")
    return 0


def _cmd_hallucination(a: argparse.Namespace) -> int:
    from workbench.eval import detector
    from workbench.detector_config import MODEL_CALIBRATION
    from workbench.eval.nli import NLIDetector, load_detector

    if a.action == "calibrate" and a.detector.strip() == detector.DETECTOR_NAME:
        return _calibrate_offline(a)
    det = load_detector(a.detector, config=getattr(a, "config", None))
    if a.action == "score":
        print(json.dumps(detector.score_jsonl(a.input, a.out, detector=det)))
        return 0
    if a.action == "calibrate":
        if not isinstance(det, NLIDetector):
            raise ParameterError(f"hallucination calibrate: --detector must be {detector.DETECTOR_NAME!r} or nli:PATH, "
                                 f"got {a.detector!r}")
        if a.out is not None:
            raise ParameterError("hallucination calibrate: --out is for the offline detector; the model tier's "
                                 f"calibration is written to {det.path / MODEL_CALIBRATION}")
        print(json.dumps(det.fit_calibration(_labelled_rows(a), save=True)))
        return 0
    table, rel = detector.benchmark_rows(_labelled_rows(a, per_feature=True), detector=det, reps=a.reps)
    if a.json:
        # an undefined figure (a source of one class has no AUROC) is null: NaN is not JSON
        print(json.dumps(_no_nan({"sources": table.to_dicts(), "reliability": rel.to_dicts()}), default=str))
    else:
        others = "file's other sources" if a.db is None else "database's other features"
        print(f"detector {det.DETECTOR_NAME} {det.DETECTOR_VERSION}; {a.reps} bootstrap resamples; LOSO: the offline "
              f"features refitted on the {others}; reliability of the LOSO probabilities when there are two or more; "
              f"{table['answers_per_s'][0]:,.0f} answers/s")
        print(detector.format_benchmark(table, rel))
    return 0


def _no_nan(v):
    """``v`` with every float that is not finite (NaN, infinity) as None, in dicts and lists: JSON has no NaN."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_no_nan(x) for x in v]
    return v


def _number_type(what: str, parse: Callable[[str], float], most: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number > 0 (at most ``most``) read by ``parse``; ``what`` names it in the message. A NaN or
    an infinity is none (``--max-body-mb nan`` was a traceback)."""
    bound = f" and at most {most:,.0f}" if most is not None else ""

    def read(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} > 0{bound}, got {text!r}") from None
        if not (math.isfinite(value) and value > 0 and (most is None or value <= most)):
            raise argparse.ArgumentTypeError(f"expected {what} > 0{bound}, got {text!r}")
        return value

    return read


_megabytes = _number_type("a size in MiB, a number", float, 1 << 20)
_positive_int = _number_type("a whole number", int)
_positive_seconds = _number_type("seconds, a number", float)


def _path(text: str) -> str:
    """An argparse type: a path that names something. An empty one (``--out "$OUT"`` with OUT unset) is refused: as a
    path it is the current folder, where the reports, the spool or the scores were written, without a word."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}: an empty path names no file or folder")
    return text


def _cmd_report(a: argparse.Namespace) -> int:
    from workbench.errors import UnknownNameError
    from workbench.reports import publish as reports

    if a.name == "list":
        for name in reports.available():
            print(name)
        return 0
    known = reports.available()
    if a.name != "all" and a.name not in known:
        raise UnknownNameError("report", a.name, [*known, "all", "list"])
    names = known if a.name == "all" else [a.name]
    if len(names) == 1:
        print(reports.run_report(names[0], db=a.db, period=a.period, out=a.out, force=a.force,
                                 cell_timeout=a.cell_timeout, config=a.config))
        return 0
    published: list = []
    try:  # a bar on a terminal only; one failing report does not keep the others from being published
        published = reports.run_all(a.db, out=a.out, period=a.period, force=a.force, cell_timeout=a.cell_timeout,
                                    config=a.config)
    except ReportError as exc:
        published = getattr(exc, "published", [])
        raise
    finally:
        for p in published:
            print(p)
    return 0


def _cmd_schedule(a: argparse.Namespace) -> int:
    from workbench.reports import schedule

    if a.action == "export":
        print(schedule.export(a.kind, db=a.db, out=a.out, config=a.config, cron=a.cron))
        return 0
    if a.action == "status":
        _print_frame(schedule.status(a.db, out=a.out, config=a.config), "table", None)
        return 0
    records = schedule.run(a.db, out=a.out, config=a.config, max_catchup=a.max_catchup)
    for r in records:
        print(schedule.line(r))
    if not any(r.get("kind") != "alert" for r in records):
        print("nothing due: every period with data is published")
    return schedule.exit_code(records)


COMMANDS = {
    "ingest": _cmd_ingest,
    "collect": _cmd_collect,
    "demo": _cmd_demo,
    "metrics": _cmd_metrics,
    "slo": _cmd_slo,
    "budget": _cmd_budget,
    "prices": _cmd_prices,
    "eval": _cmd_eval,
    "hallucination": _cmd_hallucination,
    "labels": _cmd_labels,
    "report": _cmd_report,
    "schedule": _cmd_schedule,
}


def _own_parser(parser: argparse.ArgumentParser, a: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser of the verb and action that was called, so a bad flag shows that subcommand's usage."""
    p = parser
    for attr in ("verb", "action"):
        name = getattr(a, attr, None)
        subs = [x for x in p._actions if isinstance(x, argparse._SubParsersAction)]
        if not name or not subs or name not in subs[0].choices:
            break
        p = subs[0].choices[name]
    return p


def _one_line_warning(verb: str) -> Callable[..., None]:
    """Warnings printed as ``workbench VERB: warning: message`` on standard error, as the errors are (Python's own
    format adds the file, line and source line of the library code that warned, which tell a user nothing)."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001 - showwarning's API
        text = " ".join(str(message).split())
        print(f"workbench {verb}: warning: {text}", file=file or sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``workbench`` command on ``argv`` (default: the process's arguments) and return its exit code.

    0 success; 1 a check fired; 2 bad input, printed as one line ``workbench VERB: error: ...`` on standard error; 3
    a check could not be measured (no data) and none fired.

    Examples
    --------
    >>> import contextlib, io, sys, tempfile, pathlib, workbench as wb
    >>> from workbench._version import __version__
    >>> with contextlib.redirect_stdout(io.StringIO()) as out:
    ...     code = main(["--version"])
    >>> code, out.getvalue() == __version__ + "\\n"
    (0, True)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.duckdb"
    >>> with wb.connect(path) as db:
    ...     _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...                           "('a', '2026-01-05', 'chat', 'ok'), ('b', '2026-01-05', 'chat', 'error')")
    >>> main(["metrics", "error_rate", "--db", str(path), "--period", "all", "--format", "csv"])
    feature,period_start,metric,value,n,lo,hi,partial,operations
    chat,,error_rate,0.5,2,0.0945...,0.9054...,false,llm
    0
    >>> with contextlib.redirect_stderr(sys.stdout):  # an error is one line on standard error, shown here
    ...     main(["metrics", "eror_rate", "--db", str(path)])
    workbench metrics: error: no metric 'eror_rate'; did you mean 'error_rate'? (known: ...)
    2
    """
    parser = build_parser()
    a, extra = parser.parse_known_args(argv)
    if extra:
        _own_parser(parser, a).error(f"unrecognized arguments: {' '.join(extra)}")
    if a.version:
        from workbench._version import __version__

        print(__version__)
        return 0
    if not a.verb:
        parser.print_help()
        return 2
    try:
        if getattr(a, "lock_timeout", None) is not None:
            from workbench.db import LOCK_TIMEOUT_ENV, lock_timeout

            # through the environment, so that a report's notebook kernel waits as long as this process
            os.environ[LOCK_TIMEOUT_ENV] = str(lock_timeout(a.lock_timeout))
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(a.verb)
            return COMMANDS[a.verb](a)
    except WorkbenchError as exc:
        msg = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
        print(f"workbench {a.verb}: error: {msg}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
