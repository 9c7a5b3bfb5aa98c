"""The public name table: ``wb.<name>`` -> the module that owns it, resolved lazily so that import stays cheap.

Shared by the package (``import workbench as wb; wb.connect``) and by reports (``rep.call("budget_status")``), and
imports nothing itself.

>>> resolve("connect").__name__
'connect'
>>> resolve("latency_p95_ms").__name__
'latency_p95_ms'
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it; resolved lazily so that the CLI starts fast.
EXPORTS = {
    "connect": "db",
    "Workbench": "db",
    "TABLES": "schema",
    "suite": "metrics.core",
    "compute": "metrics.core",
    "UndefinedMetricWarning": "metrics.core",
    "ExcludedRowWarning": "metrics.core",
    "wilson_interval": "stats",
    "ingest": "io.ingest",
    "IngestSummary": "io.ingest",
    "build_demo": "demo.pipeline",
    "Report": "reports.publish",
    "run_report": "reports.publish",
    "evaluate": "eval.score",
    "import_labels": "eval.labels",
    "agreement": "metrics.hallucination",
    "judge_variance": "metrics.hallucination",
    "worst_offenders": "metrics.hallucination",
    "detect": "eval.detector",
    "fit_calibration": "eval.calibrate",
    "load_prices": "io.prices",
    "priced_calls": "metrics.cost",
    "budget_status": "metrics.cost",
    "slo_report": "metrics.slo",
    "burn_rate_alerts": "metrics.slo",
    "slo_status": "metrics.slo",
    "experiment_summary": "metrics.experiments",
    "decision_table": "metrics.experiments",
    "srm": "metrics.experiments",
    "shadow_comparison": "metrics.experiments",
    "drift_report": "metrics.drift",
    "text_drift": "metrics.drift",
}

# submodules reachable as wb.<name> without importing them up front: the hops, and the short names the flat layout
# had (``wb.latency``, ``wb.charts``...), so notebooks and imports written against it keep working.
SUBMODULES = {
    "io": "io", "eval": "eval", "metrics": "metrics", "reports": "reports", "demo": "demo",
    "stats": "stats", "schema": "schema", "db": "db", "config": "config", "errors": "errors",
    "prices": "io.prices", "detector": "eval.detector", "calibrate": "eval.calibrate",
    "judge": "eval.judge", "ragas_eval": "eval.ragas", "latency": "metrics.latency", "cost": "metrics.cost",
    "reliability": "metrics.reliability", "slo": "metrics.slo", "adoption": "metrics.adoption",
    "experiments": "metrics.experiments", "drift": "metrics.drift", "hallucination": "metrics.hallucination",
    "charts": "reports.charts", "schedule": "reports.schedule",
}




def resolve(name: str) -> Any:
    """The public object ``wb.<name>``: a submodule, an exported function or class, or a metric of the suite."""
    if name in SUBMODULES:
        return importlib.import_module(f"workbench.{SUBMODULES[name]}")
    module = EXPORTS.get(name)
    if module is None:
        # metric functions are reachable as wb.<metric name> too
        from workbench.metrics.core import suite

        fn = suite().get(name)
        if fn is None:
            raise AttributeError(f"module 'workbench' has no attribute {name!r}")
        return fn
    return getattr(importlib.import_module(f"workbench.{module}"), name)


def names() -> list[str]:
    """Every public name, for ``dir(wb)`` and tab completion: the exports, the hops and every metric."""
    from workbench.metrics.core import suite

    return sorted({*EXPORTS, *SUBMODULES, *suite()})


def star_names() -> list[str]:
    """What ``from workbench import *`` binds: the exported functions and classes and every metric, not the
    submodules (``eval`` and ``io`` would hide the builtin and the standard library's module).

    >>> "connect" in star_names() and "error_rate" in star_names() and "eval" not in star_names()
    True
    """
    from workbench.metrics.core import suite

    return sorted({*EXPORTS, *suite()})
