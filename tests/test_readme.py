"""The README stays true: its table reference is the schema's, and its notebook example runs."""

from __future__ import annotations

import re
from pathlib import Path

from workbench.metrics import suite
from workbench.schema import markdown_reference

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_table_reference_is_generated_from_the_schema():
    assert markdown_reference() in README


def test_every_metric_module_is_listed():
    for fn in suite().values():
        assert f"`{fn.__module__.removeprefix('workbench.')}`" in README


def test_quick_start_is_two_commands():
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make demo", "make test"]


def test_notebook_example_runs(small_demo):
    code = re.search(r"## In a notebook\s+```python\n(.*?)```", README, re.S).group(1)
    ns: dict = {}
    exec(code.replace("datasets/demo.duckdb", str(small_demo)), ns)
    rate = ns["rate"]
    assert rate.columns[:7] == ["prompt_version", "period_start", "metric", "value", "n", "lo", "hi"]
    assert set(rate["prompt_version"]) == {"v6", "v7"}
    assert ns["p95"]["metric"].unique().to_list() == ["latency_p95_ms"]
