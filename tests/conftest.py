"""Shared fixtures: a small demo database, built once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A demo database at scale 0.1 (synthetic + Azure traces + halu_dev), scored by the offline detector."""
    from workbench import demo
    from workbench.db import connect
    from workbench.hallucination import evaluate

    path = tmp_path_factory.mktemp("small_demo") / "demo.duckdb"
    demo.build_demo(path, scale=0.1, seed=11)
    with connect(path) as db:
        evaluate(db)
    return path
