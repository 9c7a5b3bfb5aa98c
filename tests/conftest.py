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
    from workbench.eval.score import evaluate

    path = tmp_path_factory.mktemp("small_demo") / "demo.duckdb"
    demo.build_demo(path, scale=0.1, seed=11)
    with connect(path) as db:
        evaluate(db)
    return path


@pytest.fixture
def no_project_config(tmp_path, monkeypatch):
    """Run a test away from the project's workbench.toml (judge_config() reads ./workbench.toml) so it cannot leak in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)


@pytest.fixture(scope="module")
def server():
    """A local OpenAI-compatible HTTP server on 127.0.0.1 (tests/fake_openai.py), one per test module."""
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(server):
    """The module's server, with its counters and injected faults reset around each test."""
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def gc_collections():
    """``count(fn) -> (fn(), runs)``: the generation of each run of the cyclic garbage collector while fn ran
    (``gc.callbacks``)."""
    import gc

    def count(fn):
        runs: list[int] = []

        def cb(phase, info):
            if phase == "start":
                runs.append(info["generation"])

        gc.callbacks.append(cb)
        try:
            out = fn()
        finally:
            gc.callbacks.remove(cb)
        return out, runs

    return count


@pytest.fixture
def queries(monkeypatch):
    """The queries the metrics run from here on (each expression given to ``to_polars``), in order: the metric core's
    ``to_polars`` and every metric module's name for it are wrapped to record them."""
    import importlib

    from workbench.metrics import core

    seen: list = []
    real = core.to_polars

    def recording(expr, **kw):
        seen.append(expr)
        return real(expr, **kw)

    for mod in ("core", *core.SUITE_MODULES):
        module = importlib.import_module(f"workbench.metrics.{mod}")
        if getattr(module, "to_polars", None) is real:
            monkeypatch.setattr(module, "to_polars", recording)
    return seen
