"""The package's shape: one subpackage per hop of the data flow, imports only downwards, no circle, no private name
crossing a module boundary, and a pinned public surface so that a refactor cannot drop a name."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import workbench as wb

PKG = Path(__file__).resolve().parents[1] / "workbench"

# The layers, lowest first. A module may import its own layer and the ones below, never one above.
LAYERS = {
    "workbench._version": 0, "workbench._gc": 0, "workbench._files": 0, "workbench.errors": 0, "workbench.schema": 0, "workbench.stats": 0,
    "workbench.config": 1, "workbench.detector_config": 1, "workbench.redact": 1, "workbench.db": 2,
    "workbench.io": 3, "workbench.metrics": 4, "workbench.eval": 5, "workbench.reports": 6, "workbench.demo": 7,
    "workbench.cli": 8, "workbench": 9, "workbench._exports": 9,
}
# The public name table resolves ``wb.<name>`` lazily (it imports nothing at module level); reports resolve the
# functions a notebook names through it, as ``wb.<name>`` would.
LAZY_NAME_TABLE = "workbench._exports"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module imported, name imported from it or None, line) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("workbench")]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + (1 if path.name == "__init__.py" else 0)]
                mod = ".".join([*base, mod] if mod else base)
            if not mod.startswith("workbench"):
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if (PKG.parent / sub.replace(".", "/")).is_dir() or (PKG.parent / (sub.replace(".", "/") + ".py")).exists():
                    out.append((sub, None, node.lineno))  # a submodule imported by name
                else:
                    out.append((mod, a.name, node.lineno))
    return out


def _graph() -> dict[str, list[tuple[str, str | None, int]]]:
    return {_module_name(p): _imports(p) for p in sorted(PKG.rglob("*.py"))}


def test_no_module_imports_another_modules_private_name():
    bad = [f"{m}:{line} imports {name} from {imp}" for m, imps in _graph().items() for imp, name, line in imps
           if name and name.startswith("_") and not name.startswith("__") and imp != m]
    assert not bad, "\n".join(bad)


def test_imports_only_go_down_the_layers():
    bad = [f"{m}:{line} imports {imp} (layer {_layer(imp)} above {_layer(m)})" for m, imps in _graph().items()
           for imp, _, line in imps if _layer(imp) > _layer(m) and imp != LAZY_NAME_TABLE]
    assert not bad, "\n".join(bad)


def test_the_import_graph_has_no_circle():
    graph = _graph()
    edges = {m: {imp for imp, _, _ in imps if imp in graph and imp != m} for m, imps in graph.items()}
    # a package's __init__ re-exporting its own modules is not a circle through them
    edges = {m: {i for i in e if not (m.startswith(i + ".") )} for m, e in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(n):], n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_each_hop_is_a_subpackage():
    for hop in ("io", "eval", "metrics", "reports", "demo"):
        assert (PKG / hop / "__init__.py").exists(), hop


def test_the_layout_test_sees_a_bad_import(tmp_path, monkeypatch):
    # the checks above must be able to fail: a metric importing a report and a private name is caught
    bad = tmp_path / "workbench" / "metrics"
    bad.mkdir(parents=True)
    (bad / "x.py").write_text("from workbench.reports.publish import _latest_ts\n")
    monkeypatch.setattr(__import__(__name__), "PKG", tmp_path / "workbench")
    (imp, name, _), = _imports(bad / "x.py")
    assert (imp, name) == ("workbench.reports.publish", "_latest_ts")
    assert _layer(imp) > _layer("workbench.metrics.x")


# --- the public surface -------------------------------------------------------------------------------------------

PUBLIC = sorted("""
Report TABLES UndefinedMetricWarning Workbench agreement budget_status build_demo burn_rate_alerts compute connect
decision_table detect drift_report evaluate experiment_summary fit_calibration import_labels ingest IngestSummary
judge_variance load_prices priced_calls run_report shadow_comparison slo_report slo_status srm suite text_drift wilson_interval
worst_offenders
""".split())

SUBMODULES = sorted("""
adoption calibrate charts config cost db demo detector drift eval experiments hallucination io judge latency
metrics prices ragas_eval reliability reports schedule schema slo stats
""".split())

METRICS = sorted("""
active_days_distribution agent_steps_per_task cost_change_usd cost_per_1k_tokens_usd cost_per_active_user_usd cost_per_call_usd
cost_per_session_usd cost_per_success_usd cost_per_user_usd cost_usd dau_count dau_mau_ratio
drifted_column_rate error_rate escalation_rate experiment_effect fallback_rate feature_adoption_rate
feedback_rate funnel_conversion_rate guardrail_block_rate guardrail_catch_rate guardrail_false_block_rate
guardrail_redact_rate hallucination_rate hallucination_score incident_count latency_change_ms latency_p50_ms
latency_p90_ms latency_p95_ms latency_p99_ms lifecycle_count mau_count mttd_minutes mttm_minutes mttr_minutes
output_tokens_per_s retained_vs_churned retention_rate returning_share_rate suggestion_acceptance_rate
thumbs_up_rate timeout_rate tool_call_success_rate tpot_ms ttft_p50_ms ttft_p90_ms ttft_p95_ms ttft_p99_ms
unpriced_rate unscorable_rate wau_count whatif_cost_usd
""".split())


@pytest.mark.parametrize("name", PUBLIC + SUBMODULES)
def test_every_public_name_is_still_there(name):
    assert getattr(wb, name) is not None


@pytest.mark.parametrize("name", PUBLIC)
def test_a_public_name_is_its_function_or_class_not_a_module(name):
    # wb.ingest was the module workbench.io.ingest, its name being a submodule's too: wb.ingest(db, path) failed with
    # "'module' object is not callable"
    from workbench._exports import EXPORTS

    obj = getattr(wb, name)
    assert obj is getattr(importlib.import_module(f"workbench.{EXPORTS[name]}"), name)
    assert not isinstance(obj, types.ModuleType)


@pytest.mark.parametrize("name", sorted(__import__("workbench._exports", fromlist=["EXPORTS"]).EXPORTS))
def test_every_public_function_and_class_has_a_runnable_example(name):
    # (the doctests run with the suite: an example here is one that runs)
    import inspect

    obj = getattr(wb, name)
    if not callable(obj) or isinstance(obj, type) and issubclass(obj, Warning):
        return
    assert ">>>" in (inspect.getdoc(obj) or ""), f"wb.{name} has no example in its docstring"


def test_every_public_function_and_class_of_every_module_has_a_runnable_example():
    # public: a module-level function or class without a leading underscore, in a module without one, defined there
    import inspect
    import pkgutil

    missing = []
    for m in pkgutil.walk_packages(wb.__path__, "workbench."):
        if m.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        mod = importlib.import_module(m.name)
        for name, obj in vars(mod).items():
            if (name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj))
                    or obj.__module__ != mod.__name__):
                continue
            if ">>>" not in (inspect.getdoc(obj) or ""):
                missing.append(f"{m.name}.{name}")
    assert not missing, f"public names without a runnable example: {missing}"


def test_no_name_is_both_a_public_object_and_a_submodule():
    from workbench._exports import EXPORTS, SUBMODULES as MODULES

    assert not set(EXPORTS) & set(MODULES)
    assert not set(wb.suite()) & set(MODULES)


def test_every_pinned_metric_is_still_registered():
    missing = sorted(set(METRICS) - set(wb.suite()))
    assert not missing, f"metrics dropped from the suite: {missing}"
    for name in METRICS:
        assert callable(getattr(wb, name))


def test_a_star_import_gives_the_public_functions_and_shadows_no_builtin():
    # `from workbench import *` in a notebook gave `os` and `annotations` only (no __all__: the lazy names are not in
    # the module's globals); it must give the exported functions and the metrics, and never the submodules named
    # like builtins or the standard library (eval, io)
    code = ("import builtins, io\n"
            "from workbench import *\n"
            "assert connect.__name__ == 'connect' and compute.__name__ == 'compute'\n"
            "assert error_rate.__name__ == 'error_rate' and latency_p95_ms.__name__ == 'latency_p95_ms'\n"
            "assert eval is builtins.eval and io.__name__ == 'io'\n"
            "import workbench as wb\n"
            "assert 'os' not in dir(wb) and 'annotations' not in dir(wb)\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
