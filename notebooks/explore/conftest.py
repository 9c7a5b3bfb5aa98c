"""nbval re-executes the exploration notebooks on the small demo database (scale 0.1, seed 11, scored offline), the
same data their stored outputs were made from; WORKBENCH_DB and WORKBENCH_CONFIG point the kernels at it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if os.environ.get("WORKBENCH_DB") and Path(os.environ["WORKBENCH_DB"]).exists():
        return
    from workbench import demo
    from workbench.db import connect
    from workbench.eval.score import evaluate

    path = Path(tempfile.mkdtemp(prefix="wb-explore-")) / "demo.duckdb"
    demo.build_demo(path, scale=0.1, seed=11)
    with connect(path) as db:
        evaluate(db)
    os.environ["WORKBENCH_DB"] = str(path)
    os.environ.setdefault("WORKBENCH_CONFIG", str(_ROOT / "workbench.toml"))
