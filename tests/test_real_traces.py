"""Metrics on the real Azure LLM inference traces (CC BY 4.0) loaded into the demo: numbers checked against the CSV."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest

import workbench as wb

TRACES = Path(__file__).resolve().parents[1] / "datasets" / "traces"
# the ASSUMED price the demo's workbench.toml declares for the trace's unnamed model (USD per million tokens)
INPUT_PRICE, OUTPUT_PRICE = 0.50, 1.50


def _rows(name):
    with open(TRACES / f"AzureLLMInferenceTrace_{name}.csv", newline="") as f:
        return [(int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def db(small_demo):
    return wb.connect(small_demo, read_only=True)


@pytest.mark.parametrize("name", ["code", "conv"])
def test_cost_of_the_trace_is_tokens_times_the_assumed_price(db, name):
    rows = _rows(name)
    expected = sum(i * INPUT_PRICE + o * OUTPUT_PRICE for i, o in rows) / 1e6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = wb.cost_usd(db, by=(), period="all", where={"feature": f"azure_{name}"})
    assert df["n"][0] == len(rows)
    assert df["value"][0] == pytest.approx(expected, rel=1e-12)
    assert df["unpriced_count"][0] == 0


def test_hourly_volume_of_the_conversation_trace(db):
    """calls per hour through the suite equal the rows per hour of the CSV."""
    with open(TRACES / "AzureLLMInferenceTrace_conv.csv", newline="") as f:
        hours = [r["TIMESTAMP"][:13] for r in csv.DictReader(f)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = wb.error_rate(db, by=(), period="hour", where={"feature": "azure_conv"})
    got = {str(p)[:13]: n for p, n in zip(df["period_start"], df["n"])}
    assert got == {h: hours.count(h) for h in set(hours)}
    assert set(df["value"]) == {0.0}  # the trace records only served requests
