"""``evaluate``: the one entry point of the evaluation hop, whatever the evaluator.

The offline detector (:mod:`workbench.eval.detector`) is scored here; ``detector="judge"`` routes to the LLM judge
(:mod:`workbench.eval.judge`) and ``detector="ragas:<metric>"`` to ragas (:mod:`workbench.eval.ragas`). All of them
run on :mod:`workbench.eval.run` and return one :class:`~workbench.eval.run.EvalSummary`.
"""

from __future__ import annotations

from workbench.errors import ParameterError, ParameterTypeError

import datetime as _dt
import json
import time
from typing import TYPE_CHECKING, Any

from pathlib import Path

from workbench.config import Config
from workbench.db import as_workbench
from workbench.eval.run import (
    EvalSummary,
    claims_explanation,
    new_run_id,
    now,
    pending,
    progress_bar,
    stream,
    summary,
    write_evals,
)
from workbench.schema import BATCH_ROWS, HALLUCINATED, SCORE_METRIC, SUPPORTED, UNSCORABLE

if TYPE_CHECKING:  # pragma: no cover
    from workbench.db import Workbench

__all__ = ["evaluate"]


def _detection_row(call_id: str, d: Any, *, evaluator: str, version: str, run_id: str, ts: _dt.datetime,
                   threshold: float) -> dict:
    claims = [
        {"text": c.text, "supported": c.reason is None, "support": c.support, "evidence": c.evidence or None,
         "reason": c.reason}
        for c in d.claims
    ]
    if d.unscorable:
        label, value, expl = UNSCORABLE, None, "no claim to check: the answer is empty or there is no context"
    else:
        value = float(d.score)
        label = HALLUCINATED if d.label else SUPPORTED
        expl = claims_explanation(claims, len(claims))
    return {
        "call_id": call_id, "metric": SCORE_METRIC, "value": value, "label": label, "evaluator": evaluator,
        "evaluator_version": version, "run_id": run_id, "repeat": 0, "ts": ts, "explanation": expl,
        "details": json.dumps({"threshold": threshold, "claims": claims}, ensure_ascii=False),
    }


def _failed_row(call_id: str, error: str, *, evaluator: str, version: str, run_id: str, ts: _dt.datetime,
                threshold: float) -> dict:
    """The row of an answer the detector raised on: unscorable with the error in ``details.error``, as the judge
    writes a request that failed, so the next run scores it again (:func:`workbench.eval.run.pending`)."""
    return {
        "call_id": call_id, "metric": SCORE_METRIC, "value": None, "label": UNSCORABLE, "evaluator": evaluator,
        "evaluator_version": version, "run_id": run_id, "repeat": 0, "ts": ts,
        "explanation": f"the detector raised on this answer: {error}",
        "details": json.dumps({"threshold": threshold, "claims": [], "error": error}, ensure_ascii=False),
    }


def evaluate(
    db: "Workbench | str",
    *,
    detector: Any = None,
    where: Any = None,
    config: Any = None,
    dry_run: bool = False,
    repeat: int = 1,
    progress: bool | None = None,
    batch_rows: int = BATCH_ROWS,
) -> EvalSummary:
    """Score the answers not yet scored by an evaluator (name + version) and write one ``evals`` row per answer.

    Parameters
    ----------
    db : Workbench or path
    detector : None, str or module-like, optional
        ``None`` (or the offline detector's name): the offline detector :mod:`workbench.eval.detector`.
        ``"judge"`` or ``"judge:faithfulness"``: the LLM judge of :mod:`workbench.eval.judge` (endpoint from ``[judge]``).
        ``"support:FILE"``: the offline detector with a calibration fitted on the team's labelled answers
        (:mod:`workbench.eval.calibrate`, ``workbench hallucination calibrate``).
        ``"nli:PATH"``: the model tier (:mod:`workbench.eval.nli`), a local ONNX NLI / consistency model.
        With ``detector=None``, ``[detector]`` of ``workbench.toml`` (``config``, else the database's own) decides:
        ``model = "PATH"`` selects the model tier, ``calibration = "FILE"`` the calibrated offline detector.
        ``"ragas:<metric>"``: a ragas metric (:mod:`workbench.eval.ragas`), e.g. ``"ragas:faithfulness"``.
        An object with ``DETECTOR_NAME``, ``DETECTOR_VERSION``, ``THRESHOLD`` and ``detect_batch`` is used as the
        detector (a custom or re-versioned detector).
    where : mapping or list of "col=value", optional
        Filter on the answers joined to their calls (``feature``, ``model``, ``prompt_version``, ``source``...).
    config : path, Config or JudgeConfig, optional
        ``workbench.toml`` for the LLM judges.
    dry_run : bool
        Count (and for a judge, estimate tokens and cost of) what would be scored; write and send nothing.
    repeat : int
        LLM judges only: score each answer k times (``repeat`` = 0..k-1) to measure the judge's variance.
    progress : bool, optional
        A tqdm bar; default: only when stderr is a terminal.
    batch_rows : int
        Rows per Arrow batch streamed from DuckDB.

    Returns
    -------
    dict
        ``evaluator``, ``version``, ``run_id``, ``scored`` (rows written with a value), ``unscorable`` (rows written
        as unscorable), ``skipped`` (already scored by this evaluator version), ``failed`` (of the unscorable, the
        answers the detector raised on: written with the error in ``details.error`` and scored again by the next run,
        each named in a :class:`~workbench.eval.detector.DetectorRowWarning`; the other answers are scored),
        ``seconds``. A dry run returns the
        estimate instead (``dry_run: True``, ``to_score``, and for a judge the tokens and cost).

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
    ...                       "('a', ['Water boils at 100 C at sea level.'], 'Water boils at 100 C.')")
    >>> s = evaluate(db, progress=False)
    >>> s["scored"], s["skipped"]
    (1, 0)
    >>> db.sql("select metric, label, repeat from evals").rows()
    [('hallucination_score', 'supported', 0)]
    """
    db = as_workbench(db)
    if isinstance(detector, str):
        name = detector.strip()
        if name == "judge" or name.startswith("judge:"):
            from workbench.eval import judge

            metric = name.partition(":")[2] or "faithfulness"
            return judge.evaluate(db, metric=metric, where=where, config=config, dry_run=dry_run, repeat=repeat,
                                  progress=progress)
        if name.startswith("ragas:"):
            from workbench.eval import ragas as ragas_eval

            return ragas_eval.evaluate(db, metric=name.partition(":")[2], where=where, config=config,
                                       dry_run=dry_run, repeat=repeat, progress=progress)
        from workbench.eval import detector as offline

        if name.startswith(("nli:", offline.DETECTOR_NAME + ":")):
            from workbench.eval.nli import load_detector

            detector = load_detector(name)
        elif name in (offline.DETECTOR_NAME, "offline", "detector"):
            detector = None
        else:
            raise ParameterError(
                f"evaluate: unknown detector {detector!r}; expected None, {offline.DETECTOR_NAME!r}, "
                f"'{offline.DETECTOR_NAME}:CALIBRATION.json', 'nli:PATH', 'judge', 'judge:faithfulness' or "
                "'ragas:<metric>'"
            )
    elif detector is None:
        from workbench.eval import nli

        # [detector] of workbench.toml (config, else the database's own) decides: the offline detector as shipped, it
        # calibrated on the team's labels, or the model tier. The hallucination metrics read the same by default.
        detector = nli.load_detector(None, config=config if isinstance(config, (str, Path, Config)) else db.settings)
    if detector is None:
        from workbench.eval import detector as det
    else:
        det = detector
        missing = [a for a in ("DETECTOR_NAME", "DETECTOR_VERSION", "detect_batch") if not hasattr(det, a)]
        if missing:
            raise ParameterTypeError(f"evaluate: detector object lacks {', '.join(missing)}")
    if not isinstance(repeat, int) or repeat != 1:
        raise ParameterError(f"evaluate: repeat applies to LLM judges; the offline detector is deterministic (got {repeat!r})")
    evaluator, version = str(det.DETECTOR_NAME), str(det.DETECTOR_VERSION)
    threshold = float(getattr(det, "THRESHOLD", 0.5))
    t0 = time.perf_counter()
    sel, todo = pending(db, where=where, evaluator=evaluator, version=version, metric=SCORE_METRIC)
    total, n_todo = int(sel.count().execute()), int(todo.count().execute())
    if dry_run:
        return summary({"evaluator": evaluator, "version": version, "run_id": None, "dry_run": True, "to_score": n_todo,
                        "skipped": total - n_todo, "cost_usd": 0.0, "seconds": round(time.perf_counter() - t0, 3)})
    from workbench.eval.detector import detect_each, describe_error, warn_failed_rows

    run_id, scored, unscorable = new_run_id(), 0, 0
    failed: list = []  # (call_id, error) of the answers the detector raised on
    with progress_bar(n_todo, progress, f"eval {evaluator} {version}") as bar:
        for rows in stream(db, todo.select("call_id", "question", "contexts", "answer"), batch_rows):
            ts = now()
            inputs = [{"answer": r["answer"] or "", "contexts": r["contexts"] or [], "question": r["question"]}
                      for r in rows]
            out = []
            for r, d in zip(rows, detect_each(det, inputs, threshold=threshold)):
                if isinstance(d, BaseException):  # one answer it raised on: the others are scored, this one retried
                    failed.append((r["call_id"], d))
                    out.append(_failed_row(r["call_id"], describe_error(d), evaluator=evaluator, version=version,
                                           run_id=run_id, ts=ts, threshold=threshold))
                else:
                    out.append(_detection_row(r["call_id"], d, evaluator=evaluator, version=version, run_id=run_id,
                                              ts=ts, threshold=threshold))
            write_evals(db, out)
            bad = sum(o["label"] == UNSCORABLE for o in out)
            unscorable += bad
            scored += len(out) - bad
            bar.update(len(out))
    warn_failed_rows([(f"answer {c!r}", e) for c, e in failed], f"detector {evaluator} {version}", stacklevel=2)
    return summary({"evaluator": evaluator, "version": version, "run_id": run_id, "scored": scored,
                    "to_score": n_todo, "skipped": total - n_todo, "unscorable": unscorable, "failed": len(failed),
                    "cost_usd": 0.0, "seconds": round(time.perf_counter() - t0, 3)})


