"""ragas metrics, stored as ``evals`` rows: the non-LLM ones offline, the LLM-judge ones against any OpenAI-compatible
endpoint of ``workbench.toml`` ``[judge]``.

Behind the ``ragas`` extra (``pip install 'workbench[ragas]'`` or ``uv sync --extra ragas``); ragas is imported only
when a ragas metric is asked for. It uses ragas's current ``ragas.metrics.collections`` API and awaits
``metric.ascore(...)`` (ragas's sync ``score`` fails inside a running event loop, i.e. in Jupyter); the sync entry point
:func:`evaluate` runs the coroutine in a worker thread when a loop is already running.

Metrics (``evaluate(db, metric=NAME)`` or ``workbench eval --detector ragas:NAME``), stored as ``ragas_<NAME>_score``,
**higher is better** (unlike ``hallucination_score``):

=========================  ===================================================  ===========================
NAME                       ragas class                                          needs
=========================  ===================================================  ===========================
``rouge``                  ``RougeScore(rouge_type="rougeL", mode="fmeasure")``   answer, reference
``bleu``                   ``BleuScore`` with sacrebleu ``use_effective_order``    answer, reference
``chrf``                   ``CHRFScore``                                          answer, reference
``string_similarity``      ``NonLLMStringSimilarity`` (normalised Levenshtein)    answer, reference
``nonllm_context_recall``  ``NonLLMContextRecall`` (the reference answer is the   contexts, reference
                           one reference context: is it found in a context?)
``faithfulness``           ``Faithfulness`` (LLM)                                 question, contexts, answer
``response_groundedness``  ``ResponseGroundedness`` (LLM)                         contexts, answer
``context_precision``      ``ContextPrecision`` (LLM)                             question, contexts, reference
``context_recall``         ``ContextRecall`` (LLM)                                question, contexts, reference
=========================  ===================================================  ===========================

Answers that lack an input a metric needs are skipped (counted in ``missing_input``); an answer the metric fails on
(an exception, a NaN such as "no statement extracted") is written as ``unscorable`` with the reason, never dropped.

``NonLLMContextRecall`` is not in ``ragas.metrics.collections`` in ragas 0.4.3; its legacy class is used through its
async ``single_turn_ascore``.
"""

from __future__ import annotations

from workbench.errors import ParameterError

import asyncio
import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["METRICS", "require_ragas", "build_metric", "aevaluate", "evaluate", "ascore_row"]

INSTALL_HINT = "pip install 'workbench[ragas]'  (or, in a checkout: uv sync --extra ragas)"


@dataclass(frozen=True)
class _Spec:
    needs: tuple[str, ...]  # answers columns that must not be null
    llm: bool
    cls: str  # attribute of ragas.metrics.collections (or a legacy path)
    calls_per_answer: int  # LLM requests per answer, for the dry run's estimate


METRICS: dict[str, _Spec] = {
    "rouge": _Spec(("answer", "reference"), False, "RougeScore", 0),
    "bleu": _Spec(("answer", "reference"), False, "BleuScore", 0),
    "chrf": _Spec(("answer", "reference"), False, "CHRFScore", 0),
    "string_similarity": _Spec(("answer", "reference"), False, "NonLLMStringSimilarity", 0),
    "nonllm_context_recall": _Spec(("contexts", "reference"), False, "NonLLMContextRecall", 0),
    "faithfulness": _Spec(("question", "contexts", "answer"), True, "Faithfulness", 2),
    "response_groundedness": _Spec(("contexts", "answer"), True, "ResponseGroundedness", 2),
    "context_precision": _Spec(("question", "contexts", "reference"), True, "ContextPrecision", 1),
    "context_recall": _Spec(("question", "contexts", "reference"), True, "ContextRecall", 1),
}


def require_ragas():
    """Import ragas, or raise an ImportError that says how to install the extra.

    Examples
    --------
    >>> require_ragas().__name__
    'ragas'
    >>> import sys
    >>> from unittest import mock
    >>> with mock.patch.dict(sys.modules, {"ragas": None}):  # as if the extra were not installed
    ...     require_ragas()
    Traceback (most recent call last):
    ...
    ImportError: ragas metrics need the optional 'ragas' extra: pip install 'workbench[ragas]' ...
    """
    import os

    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # no usage telemetry, even if workbench/__init__ was skipped
    try:
        import ragas
    except ImportError as exc:
        raise ImportError(f"ragas metrics need the optional 'ragas' extra: {INSTALL_HINT}") from exc
    return ragas


def _spec(metric: str) -> _Spec:
    if metric not in METRICS:
        raise ParameterError(f"ragas_eval: unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    return METRICS[metric]


def _llm(cfg: Any) -> tuple[Any, Any]:
    """(ragas LLM (instructor, JSON mode), its AsyncOpenAI client pointed at the ``[judge]`` endpoint)."""
    from openai import AsyncOpenAI
    from ragas.llms import llm_factory

    # Local servers (vLLM, Ollama) take no key, but the OpenAI client insists on one.
    client = AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key() or "not-needed", timeout=cfg.timeout_s,
                         max_retries=cfg.max_retries)
    return llm_factory(cfg.model, provider="openai", client=client, temperature=cfg.temperature,
                       max_tokens=cfg.max_tokens), client


def build_metric(metric: str, *, llm: Any = None, **options: Any) -> Any:
    """The ragas metric object for ``metric`` (an LLM from :func:`_llm` for the LLM metrics).

    ``options`` go to the ragas class (e.g. ``rouge_type="rouge1"`` for ``rouge``).

    Examples
    --------
    >>> m = build_metric("rouge", rouge_type="rouge1")
    >>> type(m).__name__, m.rouge_type, m.mode
    ('RougeScore', 'rouge1', 'fmeasure')
    >>> build_metric("faithfulness")  # an LLM metric without an LLM
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: ragas_eval: metric 'faithfulness' needs an LLM (the [judge] endpoint)
    """
    spec = _spec(metric)
    require_ragas()
    from ragas.metrics import collections as rc

    if metric == "nonllm_context_recall":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # ragas 0.4.3 has no collections version of it
            from ragas.metrics import NonLLMContextRecall

        return NonLLMContextRecall(**options)
    if metric == "bleu":
        # Effective order: a short answer with no 4-gram match is not scored 0 outright (sacrebleu's sentence mode).
        kw = {"use_effective_order": True} | dict(options.pop("kwargs", {}) or {})
        return rc.BleuScore(kwargs=kw, **options)
    cls = getattr(rc, spec.cls)
    if spec.llm:
        if llm is None:
            raise ParameterError(f"ragas_eval: metric {metric!r} needs an LLM (the [judge] endpoint)")
        return cls(llm=llm, **options)
    return cls(**options)


async def ascore_row(metric: str, m: Any, row: dict) -> float:
    """Score one answer row (``question``, ``contexts``, ``answer``, ``reference``) with the ragas metric ``m``.

    Examples
    --------
    "kitten" to "sitting" is 3 edits of 7 characters: a normalised Levenshtein similarity of 4/7.

    >>> import asyncio
    >>> m = build_metric("string_similarity")
    >>> round(asyncio.run(ascore_row("string_similarity", m, {"answer": "kitten", "reference": "sitting"})), 4)
    0.5714
    >>> row = {"contexts": ["Paris is the capital of France.", "It rains."],
    ...        "reference": "Paris is the capital of France."}
    >>> asyncio.run(ascore_row("nonllm_context_recall", build_metric("nonllm_context_recall"), row))
    1.0
    """
    q, ctx, a, ref = row.get("question"), list(row.get("contexts") or []), row.get("answer"), row.get("reference")
    if metric in ("rouge", "bleu", "chrf", "string_similarity"):
        res = await m.ascore(reference=ref, response=a)
    elif metric == "nonllm_context_recall":
        from ragas.dataset_schema import SingleTurnSample

        return float(await m.single_turn_ascore(SingleTurnSample(retrieved_contexts=ctx, reference_contexts=[ref])))
    elif metric == "faithfulness":
        res = await m.ascore(user_input=q, response=a, retrieved_contexts=ctx)
    elif metric == "response_groundedness":
        res = await m.ascore(response=a, retrieved_contexts=ctx)
    elif metric == "context_precision":
        res = await m.ascore(user_input=q, reference=ref, retrieved_contexts=ctx)
    elif metric == "context_recall":
        res = await m.ascore(user_input=q, retrieved_contexts=ctx, reference=ref)
    else:  # pragma: no cover - _spec guards
        raise ParameterError(metric)
    return float(res.value)


def _evaluator(metric: str, cfg: Any, options: dict) -> tuple[str, str]:
    ragas = require_ragas()
    # Options change the score (rouge_type, BLEU's effective order, temperature): they are part of the version, so a
    # change re-scores instead of being mistaken for the stored scores.
    opts = "".join(f"-{k}={options[k]}" for k in sorted(options))
    if _spec(metric).llm:
        return f"ragas:{cfg.model}", f"{ragas.__version__}-t{cfg.temperature:g}{opts}"
    return "ragas", f"{ragas.__version__}" + ("-effective-order" if metric == "bleu" else "") + opts


def _is_transport_error(exc: BaseException) -> bool:
    """A timeout, connection error, 429 or 5xx of the endpoint (after the client's own retries), also when wrapped."""
    try:
        import openai
    except ImportError:  # pragma: no cover
        return False
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                            openai.InternalServerError)):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _prompt_overhead_chars(m: Any) -> int:
    """Characters of the fixed part (instruction, schema, examples) of the metric's prompts, for the dry run."""
    import json

    from ragas.prompt.metrics.base_prompt import BasePrompt

    total = 0
    for p in vars(m).values():
        if isinstance(p, BasePrompt):
            total += len(p.instruction) + len(p._generate_examples())
            total += len(json.dumps(p.output_model.model_json_schema()))
    return total


async def aevaluate(
    db: Any,
    *,
    metric: str,
    where: Any = None,
    config: Any = None,
    dry_run: bool = False,
    repeat: int = 1,
    progress: bool | None = None,
    batch_rows: int = 256,
    **options: Any,
) -> dict:
    """Score answers with a ragas metric (coroutine; see :func:`evaluate`).

    Examples
    --------
    >>> import asyncio, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, answer, reference) values "
    ...                       "('a', 'The cat sat on the mat.', 'The cat sat on the mat.'), ('b', 'Hello', null)")
    >>> s = asyncio.run(aevaluate(db, metric="string_similarity", dry_run=True))  # counts only: b has no reference
    >>> s["dry_run"], s["to_score"], s["missing_input"], s["cost_usd_est"]
    (True, 1, 1, 0.0)
    >>> s = asyncio.run(aevaluate(db, metric="string_similarity", progress=False))
    >>> s["metric"], s["scored"], db.sql("select call_id, value from evals").rows()
    ('ragas_string_similarity_score', 1, [('a', 1.0)])
    >>> asyncio.run(aevaluate(db, metric="string_similarity", repeat=3))
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: ragas_eval.evaluate: repeat must be 1; repeat-k runs are for the workbench ...
    """
    from workbench.db import as_workbench
    from workbench.eval.run import pending
    from workbench.eval.judge import judge_config

    spec = _spec(metric)
    if repeat != 1:
        raise ParameterError("ragas_eval.evaluate: repeat must be 1; repeat-k runs are for the workbench judge "
                         "(detector='judge')")
    require_ragas()
    db = as_workbench(db)
    cfg = judge_config(config) if spec.llm else None
    evaluator, version = _evaluator(metric, cfg, options)
    name = f"ragas_{metric}_score"
    t0 = time.perf_counter()
    every, _ = pending(db, where=where, evaluator=evaluator, version=version, metric=name)
    sel, todo = pending(db, where=where, evaluator=evaluator, version=version, metric=name, require=spec.needs)
    n_all, total, n_todo = (int(x.count().execute()) for x in (every, sel, todo))
    base = {"evaluator": evaluator, "version": version, "metric": name}
    llm, client = _llm(cfg) if spec.llm else (None, None)
    try:
        return await _run(db, metric, spec, cfg, base, build_metric(metric, llm=llm, **options), todo,
                          dry_run=dry_run, t0=t0, counts=(n_all, total, n_todo), progress=progress,
                          batch_rows=batch_rows, options=options)
    finally:
        if client is not None:
            await client.close()  # before the loop closes, or httpx complains from a finaliser


async def _run(db, metric, spec, cfg, base, m, todo, *, dry_run, t0, counts, progress, batch_rows, options) -> dict:
    import json

    from workbench.eval.run import new_run_id, now, progress_bar, stream, summary, write_evals
    from workbench.schema import UNSCORABLE
    from workbench.eval.judge import estimate_tokens, judge_prices

    n_all, total, n_todo = counts
    evaluator, version, name = base["evaluator"], base["version"], base["metric"]
    cols = ["call_id", "question", "contexts", "answer", "reference"]
    if dry_run:
        out = summary({**base, "run_id": None, "dry_run": True, "to_score": n_todo, "skipped": total - n_todo,
               "missing_input": n_all - total, "cost_usd_est": 0.0})
        if spec.llm:
            overhead = _prompt_overhead_chars(m)
            tin = tout = 0
            for rows in stream(db, todo.select(*cols), batch_rows):
                for r in rows:
                    chars = sum(len(str(r[c] or "")) for c in ("question", "answer", "reference"))
                    chars += sum(len(c) for c in r["contexts"] or [])
                    tin += spec.calls_per_answer * estimate_tokens("x" * (overhead // max(spec.calls_per_answer, 1)
                                                                         + chars))
                    tout += spec.calls_per_answer * (50 + 2 * estimate_tokens(r["answer"] or ""))
            pin, pout, source = judge_prices(cfg)
            out |= {"requests": n_todo * spec.calls_per_answer, "input_tokens_est": tin, "output_tokens_est": tout,
                    "cost_usd_est": None if pin is None else round((tin * pin + tout * pout) / 1e6, 6),
                    "price_source": source, "token_estimate": "characters / 4; a rough guide for multi-step metrics"}
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out
    run_id, scored, unscorable = new_run_id(), 0, 0
    sem = asyncio.Semaphore(cfg.concurrency if cfg else 8)

    async def one(r: dict) -> tuple[float | None, str | None, bool]:
        """(value, why unscorable, whether the failure was the endpoint's and worth asking again next run)."""
        async with sem:
            try:
                v = await ascore_row(metric, m, r)
            except Exception as exc:  # any failure of the metric on this answer: unscorable with the reason
                return None, f"{type(exc).__name__}: {str(exc)[:300]}", _is_transport_error(exc)
        if v is None or math.isnan(v):
            return None, "ragas returned NaN (e.g. no statement could be extracted)", False
        return v, None, False

    with progress_bar(n_todo, progress, f"ragas {metric}") as bar:
        for rows in stream(db, todo.select(*cols), batch_rows):
            results = await asyncio.gather(*(one(r) for r in rows))
            ts, out_rows = now(), []
            for r, (v, err, transport) in zip(rows, results):
                details: dict[str, Any] = {"ragas_metric": spec.cls, "options": {k: str(x) for k, x in options.items()}}
                if cfg is not None:
                    details |= {"model": cfg.model, "base_url": cfg.base_url}
                if transport:
                    details["error"] = err  # the endpoint failed: the next run asks again
                elif err is not None:
                    details["unscorable"] = err
                out_rows.append({
                    "call_id": r["call_id"], "metric": name, "value": v, "label": UNSCORABLE if err else None,
                    "evaluator": evaluator, "evaluator_version": version, "run_id": run_id, "repeat": 0, "ts": ts,
                    "explanation": err, "details": json.dumps(details),
                })
                unscorable += err is not None
                scored += err is None
            write_evals(db, out_rows)
            bar.update(len(rows))
    return summary({**base, "run_id": run_id, "scored": scored, "skipped": total - n_todo, "unscorable": unscorable,
            "missing_input": n_all - total, "seconds": round(time.perf_counter() - t0, 3)})


def evaluate(db: Any, *, metric: str, where: Any = None, config: Any = None, dry_run: bool = False, repeat: int = 1,
             progress: bool | None = None, batch_rows: int = 256, **options: Any) -> dict:
    """Score the answers not yet scored by a ragas metric (at this ragas version) into ``evals``.

    Parameters
    ----------
    db : Workbench or path
    metric : str
        One of :data:`METRICS` (``rouge``, ``bleu``, ``chrf``, ``string_similarity``, ``nonllm_context_recall``,
        ``faithfulness``, ``response_groundedness``, ``context_precision``, ``context_recall``).
    where : mapping or list of "col=value", optional
        Filter on answers joined to calls.
    config : path, Config or JudgeConfig, optional
        ``[judge]`` endpoint for the LLM metrics (``concurrency``, ``timeout_s``, ``max_retries`` apply).
    dry_run : bool
        Count (LLM metrics: estimate requests, tokens and cost); send and write nothing.
    repeat : int
        Must be 1 (repeat-k is a feature of the workbench judge).
    progress : bool, optional
    batch_rows : int
    **options
        Passed to the ragas metric class.

    Returns
    -------
    dict
        ``evaluator`` (``ragas`` or ``ragas:<model>``), ``version`` (ragas version), ``metric``
        (``ragas_<metric>_score``), ``run_id``, ``scored``, ``skipped`` (already scored), ``unscorable``,
        ``missing_input`` (answers lacking an input the metric needs), ``seconds``.

    Examples
    --------
    >>> import workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, answer, reference) values "
    ...                       "('a', 'The cat sat on the mat.', 'The cat sat on the mat.'), ('b', 'Hello', null)")
    >>> s = evaluate(db, metric="rouge", progress=False)
    >>> s["scored"], s["missing_input"]
    (1, 1)
    >>> db.sql("select metric, value from evals").rows()
    [('ragas_rouge_score', 1.0)]
    """
    from workbench.eval.judge import run_sync

    return run_sync(aevaluate(db, metric=metric, where=where, config=config, dry_run=dry_run, repeat=repeat,
                              progress=progress, batch_rows=batch_rows, **options))
