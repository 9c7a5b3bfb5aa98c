"""Write the Evidently drift goldens: tests/goldens/evidently/*.json (run with Evidently, never a project dependency).

Evidently is not a dependency of the workbench. Run this script in a throwaway environment:

    python3 -m venv /tmp/evid && /tmp/evid/bin/pip install 'evidently==0.7.*' 'pandas<2.3'
    /tmp/evid/bin/python benchmarks/evidently_goldens.py [NAME ...]

(names: only those datasets are written; Evidently's Jensen-Shannon can differ in the last bit between runs, so an
unchanged golden is best left alone.) (pandas < 2.3: Evidently 0.7 imports a pandas helper that 2.3 removed.)

For each fixed dataset pair below it runs
Evidently's ``DataDriftPreset`` with its defaults (column types inferred by Evidently, default tests and thresholds)
and writes the data itself, then Evidently's per-column method, score, threshold and verdict, the share of drifted
columns and the versions. ``tests/test_drift.py`` makes ``drift_report`` reproduce every one of them. The data are
generated from fixed seeds and stored in the golden, so the test does not depend on a random generator's stream.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "goldens" / "evidently"


def _categorical(rng, n, probs, labels):
    return rng.choice(labels, n, p=probs).tolist()


def _exact(counts: dict[str, int], rng) -> list[str]:
    """Exactly these counts, shuffled: a categorical column whose distance is known to the digit."""
    out = [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(out)
    return out


def datasets() -> dict[str, dict[str, dict[str, list]]]:
    """name -> {"reference": {column: values}, "current": {...}}; small (<= 1000 rows) and large, with and without drift."""
    out = {}
    for name, n, shift, seed in (("small_no_drift", 300, 0.0, 1), ("small_drift", 300, 0.35, 2),
                                 ("large_no_drift", 1500, 0.0, 3), ("large_drift", 1500, 0.25, 4)):
        rng = np.random.default_rng(seed)
        cats = ["chat", "search", "code", "agent"]
        ref = {"latency_ms": np.round(rng.lognormal(6.5, 0.5, n), 2).tolist(),
               "output_tokens": rng.poisson(120, n).astype(int).tolist(),
               "model": _categorical(rng, n, [0.4, 0.3, 0.2, 0.1], cats),
               "status": _categorical(rng, n, [0.95, 0.05], ["ok", "error"]),
               "retries": rng.choice([0, 1, 2], n, p=[0.8, 0.15, 0.05]).astype(int).tolist()}
        p_model = [0.4 - shift / 2, 0.3, 0.2, 0.1 + shift / 2]
        p_status = [0.95 - shift / 5, 0.05 + shift / 5]
        p_retry = [0.8 - shift / 2, 0.15 + shift / 4, 0.05 + shift / 4]
        cur = {"latency_ms": np.round(rng.lognormal(6.5 + shift, 0.5, n), 2).tolist(),
               "output_tokens": rng.poisson(120 * (1 + shift), n).astype(int).tolist(),
               "model": _categorical(rng, n, p_model, cats),
               "status": _categorical(rng, n, p_status, ["ok", "error"]),
               "retries": rng.choice([0, 1, 2], n, p=p_retry).astype(int).tolist()}
        out[name] = {"reference": ref, "current": cur}
    # Jensen-Shannon near the threshold: distance 0.0876 with the natural log, 0.1052 in base 2 (the two read
    # differently against 0.1), on exact counts
    rng = np.random.default_rng(5)
    out["large_js_borderline"] = {
        "reference": {"model": _exact({"a": 600, "b": 500, "c": 400}, rng)},
        "current": {"model": _exact({"a": 440, "b": 520, "c": 540}, rng)},
    }
    # NaN and +-inf in numeric columns: Evidently drops them before testing (and counts the rows left). Every side
    # with an inf also holds a NaN: Evidently's share of drifted columns (DriftedColumnsCount) drops +-inf only from
    # a side whose column has a NaN, its per-column ValueDrift always, and the two would disagree
    nan, inf = float("nan"), float("inf")
    rng = np.random.default_rng(6)
    x = np.round(rng.normal(50, 5, 200), 2)
    out["small_non_finite"] = {
        "reference": {"latency_ms": rng.normal(100, 10, 200).tolist() + [nan, inf],
                      "ttft_ms": x.tolist() + [inf, nan],  # the same values as current once inf and NaN are dropped
                      "cost_usd": rng.choice([0.01, 0.02, 0.03], 200).tolist() + [inf, nan]},
        "current": {"latency_ms": rng.normal(130, 10, 200).tolist() + [nan, -inf],
                    "ttft_ms": rng.permutation(x).tolist() + [nan, nan],
                    "cost_usd": rng.choice([0.01, 0.02, 0.03], 200).tolist() + [-inf, nan]},
    }
    rng = np.random.default_rng(7)
    out["large_non_finite"] = {
        "reference": {"latency_ms": rng.normal(100, 10, 1500).tolist() + [nan, inf],
                      "ttft_ms": rng.normal(50, 5, 1500).tolist() + [nan, nan]},
        "current": {"latency_ms": rng.normal(100, 10, 1500).tolist() + [inf, nan],
                    "ttft_ms": rng.normal(52, 5, 1500).tolist() + [-inf, nan]},
    }
    # Column types as Evidently infers them from the current data: an integer column with <= 10 distinct values is
    # categorical (chi-square / z, Jensen-Shannon above 1000 rows) whatever the reference holds; a float column is
    # numerical, tested as categorical only with <= 5 distinct values over both samples
    rng = np.random.default_rng(8)
    mass_4_to_5 = [0.125, 0.125, 0.125, 0.03, 0.22, 0.125, 0.125, 0.125]
    out["small_int_few_values"] = {
        "reference": {"output_tokens": rng.integers(1, 9, 300).tolist(),            # 8 values: chi-square
                      "input_tokens": rng.integers(1, 13, 300).tolist(),           # 12 in reference ...
                      "attempt": rng.integers(1, 7, 300).tolist(),                 # 6 in reference ...
                      "latency_ms": (rng.integers(1, 9, 300) + 0.5).tolist(),      # 8 float values: K-S
                      "ttft_ms": (rng.integers(1, 5, 300) * 10.0).tolist(),        # 4 float values: chi-square
                      "cost_usd": [0.5] * 300},                                    # 1 value: z
        "current": {"output_tokens": rng.choice(np.arange(1, 9), 300, p=mass_4_to_5).tolist(),
                    "input_tokens": rng.integers(1, 11, 300).tolist(),             # ... 10 in current: chi-square
                    "attempt": rng.integers(1, 12, 300).tolist(),                  # ... 11 in current: K-S
                    "latency_ms": (rng.choice(np.arange(1, 9), 300, p=mass_4_to_5) + 0.5).tolist(),
                    "ttft_ms": (rng.integers(1, 5, 300) * 10.0).tolist(),
                    "cost_usd": [0.5] * 300},
    }
    rng = np.random.default_rng(9)
    out["large_int_few_values"] = {
        "reference": {"output_tokens": rng.integers(1, 11, 1500).tolist(),          # 10 values: Jensen-Shannon
                      "input_tokens": rng.integers(1, 12, 1500).tolist(),          # 11 values: Wasserstein
                      "latency_ms": (rng.integers(1, 9, 1500) + 0.5).tolist(),     # 8 float values: Wasserstein
                      "ttft_ms": (rng.integers(1, 4, 1500) * 10.0).tolist()},      # 3 float values: Jensen-Shannon
        "current": {"output_tokens": rng.choice(np.arange(1, 11), 1500, p=[0.1] * 8 + [0.05, 0.15]).tolist(),
                    "input_tokens": rng.integers(1, 12, 1500).tolist(),
                    "latency_ms": (rng.integers(1, 9, 1500) + 0.5).tolist(),
                    "ttft_ms": rng.choice([10.0, 20.0, 30.0], 1500, p=[0.2, 0.3, 0.5]).tolist()},
    }
    # Free text (a string column with more distinct values than half its current rows: Evidently's Text type) in the
    # answers table: the same distribution, and a changed vocabulary; with a categorical column beside them
    for name, n, seed in (("small_text", 200, 14), ("large_text", 1200, 11)):
        rng = np.random.default_rng(seed)
        words = [f"w{i}" for i in range(300)]
        new = words[:200] + [f"n{i}" for i in range(100)]  # a third of the vocabulary replaced

        def texts(vocab, k):
            return [" ".join(rng.choice(vocab, 12)) for _ in range(k)]

        out[name] = {"table": "answers",
                     "reference": {"question": texts(words, n), "answer": texts(words, n),
                                   "source": rng.choice(["app", "web", "api"], n).tolist()},
                     "current": {"question": texts(words, n), "answer": texts(new, n),
                                 "source": rng.choice(["app", "web", "api"], n).tolist()}}
    return out


def run(ref: dict, cur: dict) -> dict:
    import pandas as pd
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    snap = Report([DataDriftPreset()], include_tests=True).run(Dataset.from_pandas(pd.DataFrame(cur)),
                                                               Dataset.from_pandas(pd.DataFrame(ref)))
    d = snap.dict()
    verdicts = {t["metric_config"]["params"]["column"]: t["status"] for t in d["tests"]
                if t["metric_config"]["params"].get("type") == "evidently:metric_v2:ValueDrift"}
    columns, share = {}, None
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"] == "evidently:metric_v2:ValueDrift":
            columns[cfg["column"]] = {"method": cfg["method"], "score": float(m["value"]),
                                      "threshold": float(cfg["threshold"]),
                                      "drifted": verdicts[cfg["column"]] == "FAIL"}
        elif cfg["type"] == "evidently:metric_v2:DriftedColumnsCount":
            share = {"count": m["value"]["count"], "share": m["value"]["share"], "drift_share": cfg["drift_share"]}
    return {"columns": columns, "dataset": share}


def main(names: list[str] | None = None) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"evidently": version("evidently"), "pandas": version("pandas"), "scipy": version("scipy"),
            "numpy": version("numpy"), "preset": "DataDriftPreset() defaults, column types inferred by Evidently",
            "produced_by": "benchmarks/evidently_goldens.py"}
    for name, d in datasets().items():
        if names and name not in names:
            continue
        result = run(d["reference"], d["current"])  # "table": the workbench table the test loads them into
        (OUT / f"{name}.json").write_text(json.dumps({"meta": meta, "name": name, **d, "evidently": result}) + "\n")
        print(name, json.dumps(result["columns"]), result["dataset"])


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
