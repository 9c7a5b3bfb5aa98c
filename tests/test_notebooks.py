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
    assert "<h2>Data notes</h2>" in html  # what the metrics left out, named (once silenced: only a lower n)
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


@pytest.fixture(scope="module")
def own_names(tmp_path_factory):
    """A team's database loaded as a team loads it: its own feature, model and experiment names (none of the demo's),
    calls only (no events, answers, evals or prices), and its own workbench.toml."""
    import datetime as dt

    import workbench as wb

    d = tmp_path_factory.mktemp("own_names")
    cfg = d / "workbench.toml"
    cfg.write_text('[slo.billing_helper]\nlatency_ms = 2000\nlatency_target = 0.95\navailability_target = 0.9\n'
                   '[targets.billing_helper]\nlatency_p95_ms_max = 1000\n[budget.billing_helper]\nmonthly_usd = 10\n'
                   '[experiments.billing_ab]\nfeature = "billing_helper"\n')
    db = wb.connect(d / "wb.duckdb")
    rows = [(f"c{i}", dt.datetime(2026, 11, 2 + i % 21, 9 + i % 9), "billing_helper" if i % 4 else "faq_bot",
             "acme-ft-1" if i % 2 else "acme-ft-2", f"u{i % 13}", 300.0 + 37 * (i % 11), "error" if i % 17 == 0 else "ok",
             400, 90) for i in range(240)]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, model, user_id, latency_ms, status, input_tokens, "
                          "output_tokens) values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.duckdb.executemany("insert into assignments (experiment, unit_id, variant, ts, weight) values (?, ?, ?, ?, 0.5)",
                          [("billing_ab", f"u{k}", "control" if k % 2 else "treatment", dt.datetime(2026, 11, 1))
                           for k in range(13)])
    db.close()
    return d / "wb.duckdb", cfg


@pytest.mark.parametrize("name", reports.available())
def test_every_report_publishes_on_a_team_s_own_names(own_names, tmp_path, name):
    # The notebooks named the demo's features, experiment, what-if model and environment: on a team's own data the
    # cost report failed (no price for gpt-4o-mini), the experiments report failed (no assignments for
    # support_model_ab), the adoption report crashed (no events: retention_grid without its columns), and the
    # scorecard's trends showed "-, sample 0" for a feature with calls.
    db, cfg = own_names
    out = reports.run_report(name, db=db, out=tmp_path, period="2026-W47", config=cfg)
    html = (out / "report.html").read_text()
    executed = nbformat.read(out / "report.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    for demo_name in ("support_assistant", "support_model_ab", "summariser", "coding_assistant"):
        assert demo_name not in html
    if name == "experiments":
        assert "billing_ab: decision" in html
    if name == "cost":
        assert "No what-if: name a model as whatif_model under [reports] in workbench.toml" in html
    if name == "scorecard":
        m = pl.read_parquet(out / "metrics.parquet")
        p95 = m.filter((pl.col("suite_metric") == "latency_p95_ms") & pl.col("options").str.contains('"day"')
                       & (pl.col("feature") == "billing_helper"))
        assert p95.height and p95["n"].sum() > 0  # the trend of the team's feature, not "-, sample 0"


@pytest.fixture(scope="module")
def first_week(tmp_path_factory):
    """A team's first week of data: calls that name no feature (spans without one), nothing the week before, and a
    workbench.toml that declares nothing (no SLO, no budget, no target)."""
    import datetime as dt

    import workbench as wb

    d = tmp_path_factory.mktemp("first_week")
    cfg = d / "workbench.toml"
    cfg.write_text("# nothing declared yet\n")
    db = wb.connect(d / "wb.duckdb")
    db.duckdb.executemany("insert into calls (call_id, ts, model, user_id, latency_ms, status) values (?, ?, ?, ?, ?, ?)",
                          [(f"c{i}", dt.datetime(2026, 11, 16 + i % 7, 10), "m1", f"u{i % 5}", 200.0 + i, "ok")
                           for i in range(60)])
    db.close()
    return d / "wb.duckdb", cfg


@pytest.mark.parametrize("name", ["scorecard", "latency", "adoption"])
def test_a_first_week_without_features_or_declarations_publishes(first_week, tmp_path, name):
    # the scorecard crashed on the week before the data (a join of typed keys with untyped ones), the latency report
    # and the scorecard on "no SLOs declared", the adoption report on an empty list of features
    db, cfg = first_week
    out = reports.run_report(name, db=db, out=tmp_path, period="2026-W47", config=cfg)
    html = (out / "report.html").read_text()
    if name in ("scorecard", "latency"):
        assert "no SLOs declared (add a [slo.&lt;feature&gt;] table)" in html
    if name == "scorecard":  # no budget declared: said, never "budgets on track"
        assert "no budgets declared (add a [budget.&lt;feature&gt;] table)" in html
        assert "budgets on track" not in html
