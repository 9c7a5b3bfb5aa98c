"""Every report notebook executes with papermill on a small demo database and publishes an offline report."""

from __future__ import annotations

import json
import re

import nbformat
import polars as pl
import pytest

from workbench.reports import publish as reports


@pytest.mark.parametrize("name", reports.available())
def test_report_notebook_publishes(small_demo, tmp_path, name):
    out = reports.run_report(name, db=small_demo, out=tmp_path)
    html = (out / "report.html").read_text()
    assert not re.search(r"<(script|link)[^>]*(src|href)=\"https?:", html)
    assert "data:image/svg+xml" in html or "<svg" in html
    executed = nbformat.read(out / "report.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]  # no error, no warning
    m = pl.read_parquet(out / "metrics.parquet")
    assert m.height > 0 and m["suite_metric"].n_unique() >= 3
    params = json.loads((out / "params.json").read_text())
    assert params["period"] == out.name and params["data_lineage"]


def test_notebooks_stay_thin():
    """No def, no loops, no SQL in a report cell: logic belongs in the library."""
    for name in reports.available():
        nb = nbformat.read(reports.notebooks_dir() / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            assert not re.search(r"^\s*(def|class|for|while)\b", cell.source, re.M), (name, cell.source)
            assert not re.search(r"\bselect\b.+\bfrom\b", cell.source, re.I), (name, cell.source)
