"""The demo: a seeded synthetic enterprise (:mod:`~workbench.demo.synth`) and ``make demo``'s pipeline
(:mod:`~workbench.demo.pipeline`)."""

from workbench.demo.pipeline import build_demo, load_real_data, run_demo, table_checksums
from workbench.demo.synth import DEMO_DB, DEMO_END, DEMO_START, FEATURES, MODELS, simulate

__all__ = ["build_demo", "load_real_data", "run_demo", "table_checksums", "DEMO_DB", "DEMO_START", "DEMO_END",
           "FEATURES", "MODELS", "simulate"]
