"""workbench: notebook-first analytics and evaluation for GenAI products in production.

``import workbench as wb`` is cheap: the heavy libraries (Ibis, DuckDB, polars) load on first use.

>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> db.calls.count().execute()
0
"""

from __future__ import annotations

import importlib
import os

# ragas sends usage telemetry unless told not to; the workbench never talks to the network on its own.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

__version__ = "0.1.0"

# public name -> module that defines it; resolved lazily so that the CLI starts fast.
_EXPORTS = {
    "connect": "db",
    "Workbench": "db",
    "TABLES": "schema",
    "suite": "metrics",
    "compute": "metrics",
    "UndefinedMetricWarning": "metrics",
    "wilson_interval": "stats",
    "ingest": "ingest",
    "IngestSummary": "ingest",
    "build_demo": "demo",
    "Report": "reports",
    "run_report": "reports",
    "evaluate": "hallucination",
    "import_labels": "hallucination",
    "agreement": "hallucination",
    "judge_variance": "hallucination",
    "worst_offenders": "hallucination",
    "detect": "detector",
    "load_prices": "prices",
    "priced_calls": "cost",
    "budget_status": "cost",
    "slo_report": "slo",
    "burn_rate_alerts": "slo",
    "slo_status": "slo",
    "experiment_summary": "experiments",
    "decision_table": "experiments",
    "srm": "experiments",
    "shadow_comparison": "experiments",
    "drift_report": "drift",
    "text_drift": "drift",
}

# submodules reachable as wb.<name> without importing them up front
_SUBMODULES = {"charts", "reports", "metrics", "stats", "schema", "db", "ingest", "demo", "latency", "cost", "reliability",
               "slo", "adoption", "experiments", "drift", "hallucination", "detector", "judge", "ragas_eval", "config", "prices", "schedule"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"workbench.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        # metric functions are reachable as wb.<metric name> too
        from workbench.metrics import suite

        fn = suite().get(name)
        if fn is None:
            raise AttributeError(f"module 'workbench' has no attribute {name!r}")
        return fn
    return getattr(importlib.import_module(f"workbench.{module}"), name)


def __dir__():
    return sorted([*globals(), *_EXPORTS])
