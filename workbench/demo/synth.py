"""The demo database: a seeded synthetic enterprise with planted effects, plus real public data, in one DuckDB file.

``build_demo()`` writes ``datasets/demo.duckdb`` from scratch:

* **Synthetic production telemetry** (numpy ``default_rng(seed)``, vectorised, linear in ``scale``): 60 days ending
  2026-11-22 (UTC) of four AI features -- ``support_assistant`` (retrieval + LLM, answers with their retrieved
  help-centre passages), ``summariser`` (with a shadow model), ``coding_assistant`` and ``agent`` (``invoke_agent``
  traces with ``chat`` and ``execute_tool`` child spans) -- over about 2,000 users per unit of scale, with product
  events, feedback, an A/B experiment, a shadow run, guardrail decisions, incidents and human hallucination labels.
  Every synthetic table gets one ``ingest_runs`` row (format ``synthetic``) and its rows carry that run id.
* **Real data** through the same ingest path as users' files (``workbench.io.ingest.ingest`` with the mapping files in
  ``datasets/mappings/``): the Azure LLM inference traces 2023 (CC BY 4.0) and the labelled answers of
  ``halu_dev.jsonl`` (HaluEval MIT, BEGIN CC BY 4.0).

The planted effects (dates below, documented in ``datasets/README.md``) are what the reports should find:

====================================  =========================================================================
effect                                where and when (UTC)
====================================  =========================================================================
OpenAI outage (errors, fallbacks)     2026-10-29 13:20-15:05, every OpenAI model; fallback to claude-sonnet-4
                                      from 14:05 (incident ``INC-0031``)
agent runaway loop (cost spike)       2026-11-03 09:00 to 2026-11-04 16:30, ``agent`` prompt ``agent-v3.1``
                                      (incident ``INC-0034``)
support prompt v7 hallucinates more   ``support_assistant`` ``v7`` from 2026-11-12 10:00 (v6 before)
latency regression                    2026-11-18 09:30-21:10, ``claude-sonnet-4`` (incident ``INC-0036``)
====================================  =========================================================================

Same ``seed`` and ``scale`` give the same database content (:func:`table_checksums` compares two builds).

>>> DEMO_START.isoformat(), DEMO_END.isoformat()
('2026-09-24T00:00:00', '2026-11-23T00:00:00')
>>> sorted(FEATURES)
['agent', 'coding_assistant', 'summariser', 'support_assistant']
"""

from __future__ import annotations

from workbench.errors import ParameterError

import datetime as _dt
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import polars as pl


DEMO_DB = "datasets/demo.duckdb"
DATASETS = Path(__file__).resolve().parents[2] / "datasets"
DEMO_CONFIG = DATASETS.parent / "workbench.toml"

DEMO_START = _dt.datetime(2026, 9, 24)
DAYS = 60
DEMO_END = DEMO_START + _dt.timedelta(days=DAYS)  # exclusive: the last day is 2026-11-22

FEATURES = ("support_assistant", "summariser", "coding_assistant", "agent")

# --- planted effects ------------------------------------------------------------------------------------------------
OUTAGE_START = _dt.datetime(2026, 10, 29, 13, 20)
OUTAGE_DETECTED = _dt.datetime(2026, 10, 29, 13, 41)
OUTAGE_MITIGATED = _dt.datetime(2026, 10, 29, 14, 5)  # retries routed to anthropic from here on
OUTAGE_END = _dt.datetime(2026, 10, 29, 15, 5)
OUTAGE_ERROR_RATE = 0.55
EXPERIMENT_START = _dt.datetime(2026, 10, 20)  # support_model_ab: gpt-4o (control) vs gpt-4o-mini (treatment)
SHADOW_START = _dt.datetime(2026, 11, 1)  # summariser_shadow: gemini-2.0-flash mirrors 30% of summariser requests
SHADOW_SHARE = 0.30
RUNAWAY_START = _dt.datetime(2026, 11, 3, 9, 0)
RUNAWAY_DETECTED = _dt.datetime(2026, 11, 4, 8, 15)
RUNAWAY_END = _dt.datetime(2026, 11, 4, 16, 30)  # rollback to agent-v3
RUNAWAY_SHARE = 0.35  # of agent tasks in the window that loop
V7_AT = _dt.datetime(2026, 11, 12, 10, 0)  # support_assistant prompt v6 -> v7 (a Thursday)
REGRESSION_START = _dt.datetime(2026, 11, 18, 9, 30)
REGRESSION_DETECTED = _dt.datetime(2026, 11, 18, 10, 25)
REGRESSION_END = _dt.datetime(2026, 11, 18, 21, 10)
REGRESSION_MODEL = "claude-sonnet-4"
REGRESSION_FACTOR = 3.2  # time to first token multiplier (decode x2.2)

# Probability that a support answer contains an unsupported claim, by prompt version and model.
HALLUCINATION_P = {"v6": 0.07, "v7": 0.19}
HALLUCINATION_MODEL_ADD = {"gpt-4o-mini": 0.04, "claude-sonnet-4": -0.01}

# name: (provider, median ttft ms, decode tokens/s). Names as genai-prices knows them, except the self-hosted model.
MODELS: dict[str, tuple[str, float, float]] = {
    "gpt-4o": ("openai", 420.0, 80.0),
    "gpt-4o-mini": ("openai", 330.0, 115.0),
    "o4-mini": ("openai", 650.0, 140.0),
    "claude-sonnet-4": ("anthropic", 650.0, 62.0),
    "claude-3-5-haiku": ("anthropic", 420.0, 95.0),
    "gemini-2.0-flash": ("google", 300.0, 170.0),
    "acme-llama-ft": ("self-hosted", 220.0, 55.0),  # fine-tuned, self-hosted: no list price (the "unpriced" path)
}
_MODEL_NAMES = list(MODELS)
_M = {m: i for i, m in enumerate(_MODEL_NAMES)}

# Share of traffic per UTC hour (Europe + US working hours).
_HOUR_W = [1.2, 0.8, 0.6, 0.5, 0.6, 1.0, 2.0, 4.0, 7.0, 9.0, 10.0, 9.5, 8.0, 9.0, 10.0, 10.0, 9.0, 8.0, 7.0, 6.0,
           5.0, 4.0, 3.0, 2.0]

TOOLS = ["search_kb", "get_order", "create_ticket", "update_ticket", "send_email"]
_TOOL_P = [0.40, 0.25, 0.15, 0.10, 0.10]
_TOOL_MS = {"search_kb": 260.0, "get_order": 180.0, "create_ticket": 620.0, "update_ticket": 410.0,
            "send_email": 520.0, "escalate_to_human": 950.0}
_ERRORS = ["RateLimitError", "InternalServerError", "APIConnectionError"]

_US = 1_000_000


def _sec(t: _dt.datetime) -> float:
    return (t - DEMO_START).total_seconds()


class _Vocab:
    """Strings as small integer codes while generating (fast and small at scale 100), decoded once at the end."""

    def __init__(self) -> None:
        self.words: list[str | None] = [None]
        self.index: dict[str | None, int] = {None: 0}

    def __call__(self, word: str | None) -> int:
        if word not in self.index:
            self.index[word] = len(self.words)
            self.words.append(word)
        return self.index[word]

    def full(self, n: int, word: str | None) -> "np.ndarray":
        import numpy as np

        return np.full(n, self(word), dtype=np.int16)

    def pick(self, words: list[str | None], idx: "np.ndarray") -> "np.ndarray":
        import numpy as np

        return np.array([self(w) for w in words], dtype=np.int16)[idx]

    def series(self, name: str, codes: "np.ndarray") -> "pl.Series":
        import polars as pl

        return pl.Series(name, codes).replace_strict(list(range(len(self.words))), self.words, return_dtype=pl.String)


def _mix(x: "np.ndarray", salt: int) -> "np.ndarray":
    """A stable 63-bit id from an index (splitmix64 finaliser): unique, random-looking, reproducible."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = (x.astype(np.uint64) + np.uint64(salt & 0xFFFFFFFFFFFFFFFF)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z & np.uint64(0x7FFFFFFFFFFFFFFF)).astype(np.int64)


def _lognormal(rng: "np.random.Generator", median: "float | np.ndarray", sigma: float, n: int) -> "np.ndarray":
    import numpy as np

    return median * np.exp(sigma * rng.standard_normal(n))


def _starts(sizes: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)


def _position(sizes: "np.ndarray") -> "np.ndarray":
    """Index of each element within its group, for groups laid out one after another."""
    import numpy as np

    total = int(sizes.sum())
    return np.arange(total) - np.repeat(_starts(sizes), sizes)


def _cumsum_before(x: "np.ndarray", sizes: "np.ndarray") -> "np.ndarray":
    """Exclusive cumulative sum of ``x`` within each group."""
    import numpy as np

    c = np.cumsum(x) - x
    starts = _starts(sizes)
    nz = sizes > 0
    return c - np.repeat(c[starts[nz]], sizes[nz])


def _time_of_day(rng: "np.random.Generator", n: int) -> "np.ndarray":
    import numpy as np

    p = np.asarray(_HOUR_W) / sum(_HOUR_W)
    return (rng.choice(24, size=n, p=p) + rng.random(n)) * 3600.0


# --- users ----------------------------------------------------------------------------------------------------------

def _users(rng: "np.random.Generator", n: int) -> dict[str, "np.ndarray"]:
    """Staggered adoption, geometric-ish retention with some resurrection, weekday-heavy activity."""
    import numpy as np

    existing = rng.random(n) < 0.35
    # adoption density grows over the window: new users arrive at day ~ DAYS * sqrt(U)
    first = np.where(existing, rng.integers(0, 7, n), np.floor(DAYS * np.sqrt(rng.random(n)))).astype(np.int64)
    first = np.minimum(first, DAYS - 1)
    power = rng.random(n) < 0.3
    life = rng.geometric(np.where(power, 1 / 150, 1 / 25))
    churn = first + life
    resurrect = rng.random(n) < 0.2
    res_start = churn + 6 + rng.geometric(1 / 10, n)
    res_end = res_start + rng.geometric(1 / 12, n)
    propensity = rng.beta(2.0, 2.2, n)
    d = np.arange(DAYS)
    weekday = (DEMO_START.weekday() + d) % 7
    day_factor = np.where(weekday >= 5, 0.3, 1.0)
    retained = (d >= first[:, None]) & ((d < churn[:, None]) | (resurrect[:, None] & (d >= res_start[:, None])
                                                                 & (d < res_end[:, None])))
    active = retained & (rng.random((n, DAYS)) < propensity[:, None] * day_factor[None, :])
    active[np.arange(n), first] = True
    ud_user, ud_day = np.nonzero(active)
    return {
        "n": np.asarray(n),
        "uses": rng.random((n, 4)) < np.array([0.75, 0.45, 0.25, 0.20]),  # support, summariser, coding, agent
        "ud_user": ud_user,
        "ud_day": ud_day,
    }


# --- call outcomes --------------------------------------------------------------------------------------------------

def _outcomes(rng: "np.random.Generator", c: dict[str, "np.ndarray"], V: _Vocab, *, can_block: bool) -> None:
    """Status, latency, time to first token and finish reason of LLM calls, with the planted outage and regression."""
    import numpy as np

    n = len(c["t"])
    m = c["model_i"]
    provider = np.array([MODELS[x][0] for x in _MODEL_NAMES])[m]
    ttft_med = np.array([MODELS[x][1] for x in _MODEL_NAMES])[m]
    tps = np.array([MODELS[x][2] for x in _MODEL_NAMES])[m]
    t = c["t"]
    ttft = ttft_med * np.exp(0.35 * rng.standard_normal(n)) * (1 + c["in_tok"] / 40000.0)
    ttft += c["reasoning"] / (tps * 1.5) * 1000.0  # reasoning happens before the first visible token
    decode = (c["out_tok"] - c["reasoning"]) / tps * 1000.0 * np.exp(0.2 * rng.standard_normal(n))
    slow = rng.random(n) < 0.03  # provider queueing: the long tail
    ttft = np.where(slow, ttft * np.exp(1.0 + 0.5 * rng.standard_normal(n)), ttft)
    reg = (m == _M[REGRESSION_MODEL]) & (t >= _sec(REGRESSION_START)) & (t < _sec(REGRESSION_END))
    ttft = np.where(reg, ttft * REGRESSION_FACTOR, ttft)
    decode = np.where(reg, decode * 2.2, decode)
    latency = ttft + decode + 35.0

    u = rng.random(n)
    outage = (provider == "openai") & (t >= _sec(OUTAGE_START)) & (t < _sec(OUTAGE_END))
    p_err = np.where(outage, OUTAGE_ERROR_RATE, 0.013)
    p_timeout = np.where(reg, 0.02, 0.005)
    p_block = 0.007 if can_block else 0.0
    status = np.where(u < p_err, 1, np.where(u < p_err + p_timeout, 2, 0))
    status = np.where((status == 0) & (rng.random(n) < p_block), 3, status)
    err_i = np.where(outage, rng.choice([1, 2], n, p=[0.7, 0.3]), rng.choice(3, n, p=[0.4, 0.35, 0.25]))
    err_lat = _lognormal(rng, 450.0, 0.8, n)
    latency = np.select([status == 1, status == 2, status == 3],
                        [err_lat, 30000.0 + rng.random(n) * 150.0, _lognormal(rng, 140.0, 0.4, n)], latency)
    codes = np.array([V(None), V("error"), V("timeout"), V("blocked")], dtype=np.int16)
    ok_codes = np.array([V("ok")], dtype=np.int16)
    c["status"] = np.where(status == 0, ok_codes[0], codes[status])
    c["error_type"] = np.select([status == 1, status == 2, status == 3],
                                [V.pick(_ERRORS, err_i), V.full(n, "Timeout"), V.full(n, "GuardrailBlocked")],
                                V.full(n, None)).astype(np.int16)
    c["latency"] = latency
    c["ttft"] = np.where(c["streamed"] & (status == 0), ttft, np.nan)
    c["out_tok"] = np.where(status == 0, c["out_tok"], 0)
    c["reasoning"] = np.where(status == 0, c["reasoning"], 0)
    c["in_tok"] = np.where(status == 3, 0, c["in_tok"])
    c["cache_read"] = np.where(status == 0, c["cache_read"], 0)
    c["cache_write"] = np.where(status == 0, c["cache_write"], 0)
    length = rng.random(n) < 0.015
    c["finish_reason"] = np.where(status == 0, np.where(length, V("length"), V("stop")), V(None)).astype(np.int16)


def _base(n: int, V: _Vocab, **kw: Any) -> dict[str, "np.ndarray"]:
    import numpy as np

    c: dict[str, np.ndarray] = {
        "t": np.zeros(n), "trace": np.zeros(n, np.int64), "parent": np.full(n, -1, np.int64),
        "feature": V.full(n, None), "operation": V.full(n, "chat"), "name": V.full(n, None),
        "environment": V.full(n, "production"), "model_i": np.zeros(n, np.int64), "request_model_i": None,
        "prompt_version": V.full(n, None), "variant": V.full(n, None), "user": np.full(n, -1, np.int64),
        "session": np.full(n, -1, np.int64), "attempt": np.ones(n, np.int16), "fallback": np.zeros(n, bool),
        "in_tok": np.zeros(n, np.int64), "out_tok": np.zeros(n, np.int64), "cache_read": np.zeros(n, np.int64),
        "cache_write": np.zeros(n, np.int64), "reasoning": np.zeros(n, np.int64), "streamed": np.zeros(n, bool),
        "k_ctx": np.full(n, -1, np.int64), "halluc": np.zeros(n, bool), "is_llm": np.ones(n, bool),
    }
    c.update(kw)
    return c


def _take(c: dict[str, "np.ndarray"], idx: "np.ndarray") -> dict[str, "np.ndarray"]:
    return {k: (v[idx] if v is not None and getattr(v, "ndim", 0) == 1 else v) for k, v in c.items()}


def _concat(parts: list[dict[str, "np.ndarray"]]) -> dict[str, "np.ndarray"]:
    import numpy as np

    keys = parts[0].keys()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _retries(rng: "np.random.Generator", c: dict[str, "np.ndarray"], V: _Vocab) -> dict[str, "np.ndarray"]:
    """Second attempts of failed requests: same model, or claude-sonnet-4 during the mitigated part of the outage."""
    import numpy as np

    failed = np.nonzero((c["status"] == V("error")) & (rng.random(len(c["t"])) < 0.85))[0]
    r = _take(c, failed)
    n = len(failed)
    r["t"] = r["t"] + r["latency"] / 1000.0 + rng.uniform(0.5, 2.0, n)
    r["attempt"] = np.full(n, 2, np.int16)
    r["fallback"] = np.ones(n, bool)
    r["request_model_i"] = r["model_i"].copy()
    provider = np.array([MODELS[x][0] for x in _MODEL_NAMES])[r["model_i"]]
    reroute = (provider == "openai") & (r["t"] >= _sec(OUTAGE_MITIGATED)) & (r["t"] < _sec(OUTAGE_END))
    r["model_i"] = np.where(reroute, _M["claude-sonnet-4"], r["model_i"])
    for k in ("in_tok", "out_tok", "cache_read", "cache_write", "reasoning"):
        r[k] = r[k + "_req"] if k + "_req" in r else r[k]
    _outcomes(rng, r, V, can_block=False)
    return r


# --- features -------------------------------------------------------------------------------------------------------

def _feature_days(rng: "np.random.Generator", U: dict, feature: int, rate: float):
    """The (user, day) pairs on which users use feature number ``feature``, and a Poisson count per pair whose mean
    ``rate`` grows 35% over the window (engagement growth)."""
    users, days = U["ud_user"], U["ud_day"]
    keep = U["uses"][users, feature]
    users, days = users[keep], days[keep]
    return users, days, rng.poisson(rate * (1 + 0.35 * days / DAYS))


def _support(rng, U, V, ids) -> tuple[dict, dict]:
    """support_assistant: sessions (open_assistant) -> asks (one call each) -> accept_suggestion."""
    import numpy as np

    users, days, n_sess = _feature_days(rng, U, 0, 1.3)
    s_user = np.repeat(users, n_sess)
    s_day = np.repeat(days, n_sess)
    ns = len(s_user)
    s_t = s_day * 86400.0 + _time_of_day(rng, ns)
    s_id = ids("session", ns)
    asks = np.where(rng.random(ns) < 0.78, 1 + rng.poisson(0.55, ns), 0)
    n = int(asks.sum())
    a_sess = np.repeat(np.arange(ns), asks)
    gaps = rng.uniform(20, 240, n)
    t = np.repeat(s_t, asks) + _cumsum_before(gaps, asks) + gaps / 4
    user = s_user[a_sess]
    variant_t = rng.random(U["n"]) < 0.5  # the experiment randomises users 50/50
    in_exp = t >= _sec(EXPERIMENT_START)
    treat = in_exp & variant_t[user]
    model_i = np.where(treat, _M["gpt-4o-mini"], _M["gpt-4o"])
    v7 = t >= _sec(V7_AT)
    in_tok = np.round(_lognormal(rng, np.where(v7, 2500.0, 1850.0), 0.35, n)).astype(np.int64) + 200
    out_tok = np.round(_lognormal(rng, np.where(v7, 210.0, 175.0), 0.5, n)).astype(np.int64) + 5
    cached = rng.random(n) < 0.55
    # the system prompt prefix (1,152 tokens) is served from OpenAI's prompt cache when warm
    cache_read = np.where(cached, np.minimum(1152, in_tok), 0)
    c = _base(n, V, t=t, trace=ids("trace", n), feature=V.full(n, "support_assistant"),
              name=V.full(n, "chat support_assistant"), model_i=model_i,
              prompt_version=np.where(v7, V("v7"), V("v6")).astype(np.int16),
              variant=np.where(in_exp, np.where(treat, V("treatment"), V("control")), V(None)).astype(np.int16),
              user=user, session=s_id[a_sess], in_tok=in_tok, out_tok=out_tok, cache_read=cache_read,
              streamed=np.ones(n, bool), k_ctx=rng.integers(2, 5, n))
    c["in_tok_req"], c["out_tok_req"] = in_tok.copy(), out_tok.copy()
    c["cache_read_req"] = cache_read.copy()
    p = np.where(v7, HALLUCINATION_P["v7"], HALLUCINATION_P["v6"])
    p = p + np.where(model_i == _M["gpt-4o-mini"], HALLUCINATION_MODEL_ADD["gpt-4o-mini"], 0.0)
    c["halluc_p"] = p
    c["exp_user"] = variant_t
    sessions = {"user": s_user, "t": s_t, "session": s_id, "asks": asks}
    return c, sessions


def _summariser(rng, U, V, ids) -> dict:
    import numpy as np

    users, days, k = _feature_days(rng, U, 1, 1.4)
    user = np.repeat(users, k)
    n = len(user)
    t = np.repeat(days, k) * 86400.0 + _time_of_day(rng, n)
    in_tok = np.round(_lognormal(rng, 3600.0, 0.6, n)).astype(np.int64) + 300
    out_tok = np.round(_lognormal(rng, 260.0, 0.35, n)).astype(np.int64) + 20
    c = _base(n, V, t=t, trace=ids("trace", n), feature=V.full(n, "summariser"), name=V.full(n, "chat summariser"),
              model_i=np.full(n, _M["claude-3-5-haiku"]), prompt_version=V.full(n, "sum-v3"), user=user,
              session=ids("session", n), in_tok=in_tok, out_tok=out_tok)
    return c


def _coding(rng, U, V, ids) -> dict:
    import numpy as np

    users, days, k = _feature_days(rng, U, 2, 4.0)
    user = np.repeat(users, k)
    n = len(user)
    sess = np.repeat(ids("session", len(users)), k)
    t = np.repeat(days * 86400.0 + _time_of_day(rng, len(users)), k) + _cumsum_before(rng.uniform(30, 600, n), k)
    t = np.minimum(t, DAYS * 86400.0 - 1.0)
    model_i = rng.choice([_M["claude-sonnet-4"], _M["o4-mini"], _M["acme-llama-ft"]], n, p=[0.65, 0.2, 0.15])
    in_tok = np.round(_lognormal(rng, 2600.0, 0.55, n)).astype(np.int64) + 100
    visible = np.round(_lognormal(rng, 140.0, 0.6, n)).astype(np.int64) + 5
    reasoning = np.where(model_i == _M["o4-mini"], np.round(_lognormal(rng, 700.0, 0.6, n)), 0).astype(np.int64)
    sonnet = model_i == _M["claude-sonnet-4"]
    # anthropic prompt caching: reads when the repository prefix is warm, writes when it is (re)built
    u = rng.random(n)
    cache_read = np.where(sonnet & (u < 0.5), np.round(in_tok * 0.6), 0).astype(np.int64)
    cache_write = np.where(sonnet & (u >= 0.5) & (u < 0.6), np.round(in_tok * 0.6), 0).astype(np.int64)
    c = _base(n, V, t=t, trace=ids("trace", n), feature=V.full(n, "coding_assistant"),
              name=V.full(n, "chat coding_assistant"), model_i=model_i, prompt_version=V.full(n, "code-v2"),
              user=user, session=sess, in_tok=in_tok, out_tok=visible + reasoning, reasoning=reasoning,
              cache_read=cache_read, cache_write=cache_write, streamed=np.ones(n, bool))
    for key in ("in_tok", "out_tok", "reasoning", "cache_read", "cache_write"):
        c[key + "_req"] = c[key].copy()
    return c


def _agent(rng, U, V, ids) -> dict:
    """agent: invoke_agent root spans with sequential chat / execute_tool children; a runaway loop is planted."""
    import numpy as np

    users, days, k = _feature_days(rng, U, 3, 0.5)
    user = np.repeat(users, k)
    n = len(user)
    t0 = np.repeat(days, k) * 86400.0 + _time_of_day(rng, n)
    runaway_window = (t0 >= _sec(RUNAWAY_START)) & (t0 < _sec(RUNAWAY_END))
    runaway = runaway_window & (rng.random(n) < RUNAWAY_SHARE)
    escalate = rng.random(n) < 0.12
    blocked = rng.random(n) < 0.005
    steps = np.minimum(1 + rng.geometric(0.45, n), 8)
    steps = np.where(escalate, np.maximum(steps, 2), steps)
    steps = np.where(runaway, rng.integers(25, 46, n), steps)
    steps = np.where(blocked, 0, steps)
    n_child = np.where(steps > 0, 2 * steps - 1, 0)
    trace = ids("trace", n)
    root_id = ids("call", n)
    pv = np.where(runaway_window, V("agent-v3.1"), V("agent-v3")).astype(np.int16)

    # children, laid out task after task: chat, tool, chat, tool, ..., chat
    task = np.repeat(np.arange(n), n_child)
    m = len(task)
    pos = _position(n_child)
    is_chat = pos % 2 == 0
    step = pos // 2
    last_tool = (~is_chat) & (pos == n_child[task] - 2)
    growth = np.where(runaway[task], 1800.0, 650.0)
    in_tok = np.round(_lognormal(rng, 1700.0, 0.3, m) + step * growth).astype(np.int64)
    final = is_chat & (pos == n_child[task] - 1)
    out_tok = np.round(_lognormal(rng, np.where(final, 240.0, 90.0), 0.4, m)).astype(np.int64) + 5
    tool_i = rng.choice(len(TOOLS), m, p=_TOOL_P)
    tool_names = TOOLS + ["escalate_to_human"]
    tool_i = np.where(last_tool & escalate[task], len(TOOLS), tool_i)
    # outcomes are drawn at the task's start time (the outage and the regression are hours long, tasks seconds)
    ch = _base(m, V, t=t0[task], trace=trace[task], parent=root_id[task], feature=V.full(m, "agent"),
               model_i=np.full(m, _M["gpt-4o"]), prompt_version=pv[task], user=user[task],
               session=trace[task], in_tok=np.where(is_chat, in_tok, 0), out_tok=np.where(is_chat, out_tok, 0))
    ch["operation"] = np.where(is_chat, V("chat"), V("execute_tool")).astype(np.int16)
    ch["name"] = np.where(is_chat, V("chat agent"), V.pick(tool_names, tool_i)).astype(np.int16)
    _outcomes(rng, ch, V, can_block=False)
    tool_ms = np.array([_TOOL_MS[x] for x in tool_names])[tool_i] * np.exp(0.5 * rng.standard_normal(m))
    tool_err = (~is_chat) & (rng.random(m) < 0.06)
    ch["latency"] = np.where(is_chat, ch["latency"], tool_ms)
    ch["status"] = np.where(is_chat, ch["status"], np.where(tool_err, V("error"), V("ok"))).astype(np.int16)
    ch["error_type"] = np.where(is_chat, ch["error_type"], np.where(tool_err, V("ToolError"), V(None))).astype(np.int16)
    ch["finish_reason"] = np.where(is_chat & (ch["status"] == V("ok")) & ~final, V("tool_calls"),
                                   np.where(is_chat, ch["finish_reason"], V(None))).astype(np.int16)
    ch["is_llm"] = is_chat
    ch["in_tok"] = np.where(is_chat, ch["in_tok"], 0)
    ch["ttft"] = np.full(m, np.nan)
    gap = 15.0 + rng.random(m) * 30.0
    ch["t"] = t0[task] + (_cumsum_before(ch["latency"] + gap, n_child) + 20.0) / 1000.0

    total = np.bincount(task, weights=ch["latency"] + gap, minlength=n) + 40.0
    chat_fail = np.bincount(task, weights=(is_chat & (ch["status"] != V("ok"))).astype(float), minlength=n) > 0
    # the agent framework retries a failed step itself; 40% of tasks with a failed step still fail
    chat_fail = chat_fail & (rng.random(n) < 0.4)
    root = _base(n, V, t=t0, trace=trace, feature=V.full(n, "agent"), operation=V.full(n, "invoke_agent"),
                 name=V.full(n, "invoke_agent triage_agent"), prompt_version=pv, user=user, session=trace)
    root["is_llm"] = np.zeros(n, bool)
    root["latency"] = np.where(blocked, _lognormal(rng, 140.0, 0.4, n), total)
    root["status"] = np.select([blocked, chat_fail], [V("blocked"), V("error")], V("ok")).astype(np.int16)
    root["error_type"] = np.select([blocked, chat_fail], [V("GuardrailBlocked"), V("AgentStepFailed")],
                                   V(None)).astype(np.int16)
    root["finish_reason"] = V.full(n, None)
    root["ttft"] = np.full(n, np.nan)
    root["id"] = root_id
    ch["id"] = ids("call", m)
    # tokens live on the chat spans only, so that summing a trace never double counts
    for key in ("in_tok", "out_tok", "cache_read", "cache_write", "reasoning"):
        root[key] = np.full(n, -1, np.int64)
        ch[key] = np.where(is_chat, ch[key], -1)
    root["task_escalated"] = escalate & ~blocked
    return {"root": root, "children": ch, "runaway": runaway}


# --- help-centre corpus and answers ---------------------------------------------------------------------------------

PRODUCTS = ["Nimbus Docs", "Nimbus Chat", "Nimbus Drive", "Nimbus Boards"]
PLANS = ["Starter", "Team", "Business", "Enterprise"]
_MENUS = ["Data & privacy", "Workspace", "Account", "Administration"]
_CORRUPTIONS = ["number", "entity", "negation", "invented"]
_INVENTED = [
    "New workspaces get the first 60 days free.",
    "This also applies to customers on the free plan.",
    "You can ask support to extend it once a year.",
    "The change was announced at the Nimbus Summit in Lisbon.",
    "A one-time fee of $25 applies.",
]


def _corpus(rng: "np.random.Generator") -> list[dict[str, Any]]:
    """A small fictional help centre: passages with a question, a supported answer and four unsupported variants."""
    facts: list[dict[str, Any]] = []

    def add(product: str, passage: str, question: str, answer: str, number: tuple[str, str], entity: str,
            negation: str) -> None:
        invented = answer + " " + _INVENTED[int(rng.integers(len(_INVENTED)))]
        facts.append({
            "product": product, "passage": passage, "question": question, "answer": answer,
            "number": answer.replace(number[0], number[1], 1), "number_note": f"changed {number[0]} to {number[1]}",
            "entity": entity, "negation": negation, "invented": invented,
        })

    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]
    for pi, p in enumerate(PRODUCTS):
        base = [5, 9, 16, 29]
        for li, plan in enumerate(PLANS):
            a = base[li] + 2 * pi
            mth = round(a * 1.2)
            other = PLANS[(li + 1) % 4]
            add(p, f"{p} {plan} costs ${a} per user per month when billed annually, or ${mth} per user per month "
                   f"when billed monthly. Prices exclude VAT.",
                f"How much does the {plan} plan of {p} cost?",
                f"{p} {plan} costs ${a} per user per month on annual billing, or ${mth} if you pay monthly.",
                (f"${a} ", f"${a + 3} "),
                f"{p} {other} costs ${a} per user per month on annual billing, or ${mth} if you pay monthly.",
                f"{p} {plan} costs ${a} per user per month and is only sold with annual billing; there is no monthly "
                f"option.")
            seats = [10, 50, 300, 5000][li]
            gb = [20, 100, 500, 2000][li] // (1 + pi % 2)
            add(p, f"A {p} {plan} workspace can have up to {seats} members, and each member gets {gb} GB of storage. "
                   f"Admins can buy extra storage in blocks of 100 GB.",
                f"How many members can a {p} {plan} workspace have?",
                f"A {plan} workspace in {p} can have up to {seats} members, each with {gb} GB of storage.",
                (f"{seats} members", f"{seats * 2} members"),
                f"A {other} workspace in {p} can have up to {seats} members, each with {gb} GB of storage.",
                f"A {plan} workspace in {p} has no member limit, and each member gets {gb} GB of storage.")
            rpm = [60, 300, 1200, 6000][li] * (1 + pi % 3)
            add(p, f"The {p} API allows {rpm} requests per minute per workspace on the {plan} plan. Requests above "
                   f"the limit receive HTTP 429 and should be retried after the delay in the Retry-After header.",
                f"What is the API rate limit for {p} on the {plan} plan?",
                f"On the {plan} plan the {p} API allows {rpm} requests per minute per workspace; above that you get "
                f"HTTP 429 and should retry after the Retry-After delay.",
                (f"{rpm} requests", f"{rpm // 2} requests"),
                f"On the {plan} plan the {p} API allows {rpm} requests per minute per user; above that you get "
                f"HTTP 429 and should retry after the Retry-After delay.",
                f"On the {plan} plan the {p} API allows {rpm} requests per minute per workspace; requests above the "
                f"limit are queued, not rejected.")
        days = [14, 30, 14, 45][pi]
        add(p, f"Annual {p} subscriptions can be refunded in full within {days} days of purchase. Monthly "
               f"subscriptions are not refundable, but you can cancel them at any time and keep access until the end "
               f"of the billing period.",
            f"Can I get a refund for my annual {p} subscription?",
            f"Yes. Annual {p} subscriptions are refunded in full if you ask within {days} days of purchase; monthly "
            f"subscriptions are not refundable.",
            (f"{days} days", f"{days + 16} days"),
            f"Yes. Annual {p} subscriptions are refunded in full if you ask within {days} days of your first login; "
            f"monthly subscriptions are not refundable.",
            f"Yes. Annual and monthly {p} subscriptions are both refunded in full if you ask within {days} days of "
            f"purchase.")
        menu = _MENUS[pi]
        size = [2, 5, 10, 1][pi]
        hours = [24, 48, 72, 24][pi]
        add(p, f"To export your data from {p}, open Settings > {menu}, click Export and choose CSV or JSON. Exports "
               f"larger than {size} GB are sent by email as a download link that expires after {hours} hours.",
            f"How do I export my data from {p}?",
            f"Open Settings > {menu}, click Export and pick CSV or JSON. Exports over {size} GB arrive by email as a "
            f"link that expires after {hours} hours.",
            (f"{hours} hours", f"{hours * 7} hours"),
            f"Open Settings > {_MENUS[(pi + 1) % 4]}, click Export and pick CSV or JSON. Exports over {size} GB arrive "
            f"by email as a link that expires after {hours} hours.",
            f"Open Settings > {menu}, click Export and pick CSV; JSON exports are not supported. Exports over {size} GB "
            f"arrive by email as a link that expires after {hours} hours.")
        trash = [30, 60, 90, 30][pi]
        add(p, f"Deleted items in {p} stay in the trash for {trash} days and are then removed permanently. "
               f"Workspace admins can restore deleted items from Settings > Trash during that time.",
            f"How long can I restore deleted items in {p}?",
            f"Deleted items stay in the {p} trash for {trash} days, and workspace admins can restore them from "
            f"Settings > Trash until then.",
            (f"{trash} days", f"{trash + 30} days"),
            f"Deleted items stay in the {p} trash for {trash} days, and any member can restore them from "
            f"Settings > Trash until then.",
            f"Deleted items in {p} are removed immediately and cannot be restored.")
        sso_plan = PLANS[1 + pi % 3]
        add(p, f"Single sign-on with SAML is available for {p} on the {sso_plan} plan and above. An admin enables it "
               f"under Security > SSO by uploading the identity provider's metadata file.",
            f"Which {p} plans include SSO?",
            f"SAML single sign-on is included from the {sso_plan} plan upwards; an admin turns it on under "
            f"Security > SSO with the identity provider's metadata file.",
            (f"{sso_plan} plan", f"{PLANS[0]} plan"),
            f"SAML single sign-on is included from the {sso_plan} plan upwards; any member can turn it on under "
            f"Security > SSO with the identity provider's metadata file.",
            f"SAML single sign-on is not available for {p} on any plan.")
        new = 14 + 3 * pi
        day, month = 1 + 7 * pi, months[(2 + 3 * pi) % 12]
        add(p, f"From {day} {month} 2027, the price of {p} Team changes to ${new} per user per month. Existing "
               f"customers keep their current price until their next renewal date.",
            f"When does the price of {p} Team change?",
            f"The new {p} Team price of ${new} per user per month applies from {day} {month} 2027; existing customers "
            f"keep their price until renewal.",
            (f"{day} {month}", f"{day + 14} {month}"),
            f"The new {p} Business price of ${new} per user per month applies from {day} {month} 2027; existing "
            f"customers keep their price until renewal.",
            f"The new {p} Team price of ${new} per user per month applies from {day} {month} 2027, for existing "
            f"customers too, from that date.")
        h1, h2, sla = 8 + pi % 2, 18 + pi % 3, [4, 2, 8, 1][pi]
        add(p, f"{p} support answers chat requests from {h1}:00 to {h2}:00 CET on weekdays. Enterprise customers also "
               f"have 24/7 phone support with a {sla}-hour response target.",
            f"When is {p} support available?",
            f"Chat support for {p} runs from {h1}:00 to {h2}:00 CET on weekdays, and Enterprise customers also get "
            f"24/7 phone support with a {sla}-hour response target.",
            (f"{sla}-hour", f"{sla + 6}-hour"),
            f"Chat support for {p} runs from {h1}:00 to {h2}:00 CET on weekdays, and Business customers also get "
            f"24/7 phone support with a {sla}-hour response target.",
            f"Chat support for {p} runs from {h1}:00 to {h2}:00 CET every day including weekends, and Enterprise "
            f"customers also get 24/7 phone support with a {sla}-hour response target.")
    return facts


_Q_PREFIX = ["", "", "Hi, ", "Quick question: ", "Hello! ", "Hey - "]
_Q_SUFFIX = ["", "", " Thanks!", " Thank you.", " We are on the annual plan."]


def _answers(rng, support: dict, V: _Vocab, n_target: int) -> dict[str, Any]:
    """A sample of support answers: question, 2-4 retrieved passages (the right one among them), the answer text;
    answers of calls whose latent ``halluc`` flag is set carry one unsupported claim."""
    import numpy as np
    import pyarrow as pa

    facts = _corpus(rng)
    nf = len(facts)
    per_product = nf // len(PRODUCTS)
    ok = np.nonzero((support["status"] == V("ok")) & (support["attempt_final"]))[0]
    pick = np.sort(rng.choice(ok, size=min(n_target, len(ok)), replace=False))
    n = len(pick)
    gold = rng.integers(0, nf, n)
    product = gold // per_product
    # distractors: other passages of the same product, distinct, in a random order
    r = rng.random((n, per_product))
    r[np.arange(n), gold % per_product] = np.inf
    distract = product[:, None] * per_product + np.argsort(r, axis=1)[:, :3]
    k = support["k_ctx"][pick]  # 2..4 passages
    mat = np.column_stack([gold, distract])
    gpos = rng.integers(0, k)
    rows = np.arange(n)
    mat[rows, 0], mat[rows, gpos] = mat[rows, gpos], gold
    keep = np.arange(4)[None, :] < k[:, None]
    passages = np.array([f["passage"] for f in facts], dtype=object)
    flat = pa.array(passages[mat[keep]].tolist(), type=pa.string())
    offsets = pa.array(np.concatenate(([0], np.cumsum(k))).astype(np.int32))
    contexts = pa.ListArray.from_arrays(offsets, flat)

    halluc = support["halluc"][pick]
    kind = np.where(halluc, rng.integers(0, 4, n), -1)
    table = np.array([[f["answer"]] + [f[c] for c in _CORRUPTIONS] for f in facts], dtype=object)
    answer = table[gold, kind + 1]
    notes = np.array([[None, f["number_note"], "changed the entity the answer is about",
                       "flipped a statement the passage makes", "added a sentence the passages do not support"]
                      for f in facts], dtype=object)
    pre = np.array(_Q_PREFIX, dtype=object)[rng.integers(0, len(_Q_PREFIX), n)]
    suf = np.array(_Q_SUFFIX, dtype=object)[rng.integers(0, len(_Q_SUFFIX), n)]
    questions = np.array([f["question"] for f in facts], dtype=object)[gold]
    question = pre + questions + suf
    return {"pick": pick, "question": question.tolist(), "contexts": contexts, "answer": answer.tolist(),
            "halluc": halluc, "kind": kind, "note": notes[gold, kind + 1].tolist()}


# --- assembly -------------------------------------------------------------------------------------------------------

def simulate(scale: float = 1.0, seed: int = 7) -> dict[str, "pl.DataFrame"]:
    """Generate every synthetic table as a polars frame (no database); ids are 63-bit integers, formatted on insert.

    Examples
    --------
    >>> frames = simulate(scale=0.01, seed=1)
    >>> sorted(frames)
    ['answers', 'assignments', 'calls', 'evals', 'events', 'feedback', 'guardrail_events', 'incidents']
    >>> calls = frames["calls"]
    >>> calls["feature"].unique().sort().to_list(), calls.schema["call_id"], calls["ts"].min() >= DEMO_START
    (['agent', 'coding_assistant', 'summariser', 'support_assistant'], Int64, True)
    >>> calls.equals(simulate(scale=0.01, seed=1)["calls"])  # the same seed and scale give the same rows
    True
    >>> simulate(scale=0)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: build_demo: scale must be a positive number, got 0
    """
    import numpy as np
    import polars as pl

    if not (isinstance(scale, (int, float)) and 0 < scale < math.inf):
        raise ParameterError(f"build_demo: scale must be a positive number, got {scale!r}")
    root_seq = np.random.SeedSequence(int(seed))
    (r_users, r_support, r_sum, r_code, r_agent, r_out, r_ans, r_guard, r_fb, r_ev, r_shadow,
     r_labels) = [np.random.default_rng(s) for s in root_seq.spawn(12)]
    salt = int(root_seq.generate_state(1, np.uint64)[0])
    V = _Vocab()
    counters: dict[str, int] = {}
    salts = {"call": 1, "trace": 2, "session": 3, "feedback": 4, "event": 5, "guard": 6}

    def ids(kind: str, n: int) -> np.ndarray:
        start = counters.get(kind, 0)
        counters[kind] = start + n
        return _mix(np.arange(start, start + n), salt * 7 + salts[kind] * 0x5851F42D4C957F2D)

    U = _users(r_users, max(20, int(round(2000 * scale))))

    # support_assistant, summariser, coding_assistant: request-level calls with retries
    sup, sessions = _support(r_support, U, V, ids)
    summ = _summariser(r_sum, U, V, ids)
    code = _coding(r_code, U, V, ids)
    for c in (summ,):
        for key in ("in_tok", "out_tok", "reasoning", "cache_read", "cache_write"):
            c[key + "_req"] = c[key].copy()
    for c in (sup, code):
        for key in ("reasoning", "cache_write", "in_tok", "out_tok", "cache_read"):
            c.setdefault(key + "_req", c[key].copy())
    _outcomes(r_out, sup, V, can_block=True)
    _outcomes(r_out, summ, V, can_block=False)
    _outcomes(r_out, code, V, can_block=False)
    extra = {"halluc_p", "exp_user"}
    sup_first = {k: v for k, v in sup.items() if k not in extra}
    parts = []
    for c in (sup_first, summ, code):
        c["request_model_i"] = c["model_i"].copy()
        c["id"] = ids("call", len(c["t"]))
        c["first_id"] = c["id"].copy()
        r = _retries(r_out, c, V)
        r["id"] = ids("call", len(r["t"]))
        parts.append((c, r))

    # support: the final attempt of each ask is the one whose answer the user saw
    sc, sr = parts[0]
    support_all = _concat([sc, sr])
    n_first = len(sc["t"])
    final = np.ones(len(support_all["t"]), bool)
    retried_first = np.isin(sc["id"], sr["first_id"])
    final[:n_first] = ~retried_first
    support_all["attempt_final"] = final
    ans_model = support_all["model_i"]
    p_h = np.concatenate([sup["halluc_p"], sup["halluc_p"][_index_of(sc["id"], sr["first_id"])]])
    p_h = p_h + np.where(ans_model == _M["claude-sonnet-4"], HALLUCINATION_MODEL_ADD["claude-sonnet-4"], 0.0)
    support_all["halluc"] = (r_support.random(len(p_h)) < p_h) & (support_all["status"] == V("ok"))

    # summariser shadow: the same requests answered by gemini-2.0-flash in environment "shadow"
    smc, smr = parts[1]
    mirror = np.nonzero((smc["t"] >= _sec(SHADOW_START)) & (r_shadow.random(len(smc["t"])) < SHADOW_SHARE))[0]
    sh = _take(smc, mirror)
    nm = len(mirror)
    sh["t"] = sh["t"] + r_shadow.uniform(0.005, 0.05, nm)
    sh["model_i"] = np.full(nm, _M["gemini-2.0-flash"])
    sh["request_model_i"] = sh["model_i"].copy()
    sh["environment"] = V.full(nm, "shadow")
    sh["variant"] = V.full(nm, "shadow")
    sh["in_tok"] = sh["in_tok_req"].copy()
    sh["out_tok"] = np.round(sh["out_tok_req"] * np.exp(0.15 + 0.25 * r_shadow.standard_normal(nm))).astype(np.int64)
    sh["reasoning"] = np.zeros(nm, np.int64)
    sh["cache_read"] = np.zeros(nm, np.int64)
    sh["cache_write"] = np.zeros(nm, np.int64)
    _outcomes(r_shadow, sh, V, can_block=False)
    sh["id"] = ids("call", nm)
    smc["variant"] = smc["variant"].copy()
    smc["variant"][mirror] = V("control")

    ag = _agent(r_agent, U, V, ids)
    for c in (ag["root"], ag["children"]):
        c["request_model_i"] = c["model_i"].copy()

    cols = ["id", "t", "trace", "parent", "latency", "ttft", "operation", "name", "feature", "environment", "model_i",
            "request_model_i", "prompt_version", "user", "session", "variant", "status", "error_type",
            "finish_reason", "attempt", "fallback", "in_tok", "out_tok", "cache_read", "cache_write", "reasoning",
            "k_ctx", "is_llm"]
    pieces = [support_all, parts[1][0], parts[1][1], sh, parts[2][0], parts[2][1], ag["root"], ag["children"]]
    allc = {k: np.concatenate([p[k] for p in pieces]) for k in cols}
    allc["t"] = np.minimum(allc["t"], DAYS * 86400.0 - 0.001)
    calls = _calls_frame(allc, V, salt)

    # answers + human labels
    ans = _answers(r_ans, support_all, V, max(10, int(round(3000 * scale))))
    pick = ans["pick"]
    a_ts = _ts_us(support_all["t"][pick] + support_all["latency"][pick] / 1000.0)
    answers = pl.DataFrame({
        "call_id": support_all["id"][pick], "question": ans["question"],
        "contexts": pl.Series("contexts", ans["contexts"]), "answer": ans["answer"],
        "source": ["support_assistant"] * len(pick), "ts": a_ts,
    }).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    lab = np.nonzero(r_labels.random(len(pick)) < 0.4)[0]
    lab_ts = a_ts[lab] + (r_labels.uniform(1, 3, len(lab)) * 86400 * _US).astype(np.int64)
    kinds = np.array(["supported"] + _CORRUPTIONS, dtype=object)[ans["kind"][lab] + 1]
    evals = pl.DataFrame({
        "call_id": support_all["id"][pick][lab], "metric": "hallucination_label",
        "value": ans["halluc"][lab].astype(float),
        "label": np.where(ans["halluc"][lab], "hallucinated", "supported"),
        "evaluator": "human", "evaluator_version": "demo-review-1", "run_id": "demo-review-1", "repeat": 0,
        "ts": lab_ts, "explanation": [ans["note"][i] for i in lab], "corruption": kinds.tolist(),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us")), pl.col("repeat").cast(pl.Int32))

    feedback, accepted = _feedback(r_fb, support_all, smc, parts[2][0], V, ids)
    events = _events(r_ev, U, sessions, sc, accepted, smc, ag, feedback, V, ids)
    assignments = _assignments(sc, sup["exp_user"], smc, mirror, salt)
    guard = _guardrails(r_guard, support_all, ag["root"], V, ids)
    return {
        "calls": calls, "answers": answers, "evals": evals, "feedback": feedback, "events": events,
        "assignments": assignments, "guardrail_events": guard, "incidents": _incidents(),
    }


def _index_of(haystack: "np.ndarray", needles: "np.ndarray") -> "np.ndarray":
    import numpy as np

    order = np.argsort(haystack)
    return order[np.searchsorted(haystack, needles, sorter=order)]


def _ts_us(t: "np.ndarray") -> "np.ndarray":
    import numpy as np

    base = int(DEMO_START.replace(tzinfo=_dt.timezone.utc).timestamp()) * _US
    return base + np.round(np.asarray(t) * _US).astype(np.int64)


def _calls_frame(c: dict[str, "np.ndarray"], V: _Vocab, salt: int) -> "pl.DataFrame":
    import numpy as np
    import polars as pl

    order = np.lexsort((c["id"], c["t"]))
    c = {k: v[order] for k, v in c.items()}
    ts = _ts_us(c["t"])
    lat = np.round(c["latency"], 1)
    end = ts + np.round(lat * 1000).astype(np.int64)
    names = _MODEL_NAMES + [None]
    prov = [MODELS[m][0] for m in _MODEL_NAMES] + [None]

    def word(name: str, idx: np.ndarray, words: list) -> pl.Series:
        return pl.Series(name, idx).replace_strict(list(range(len(words))), words, return_dtype=pl.String)
    mi = np.where(c["is_llm"], c["model_i"], len(_MODEL_NAMES))
    rmi = np.where(c["is_llm"], c["request_model_i"], len(_MODEL_NAMES))

    def tok(x: np.ndarray) -> pl.Series:
        return pl.Series(x).cast(pl.Int64).replace(-1, None)

    df = pl.DataFrame({
        "call_id": c["id"], "trace_a": c["trace"], "trace_b": _trace_b(c["trace"], salt),
        "parent_id": pl.Series(c["parent"]).replace(-1, None),
        "ts": pl.Series(ts).cast(pl.Datetime("us")), "end_ts": pl.Series(end).cast(pl.Datetime("us")),
        "latency_ms": lat, "ttft_ms": pl.Series(np.round(c["ttft"], 1)).fill_nan(None),
        "operation": V.series("operation", c["operation"]), "name": V.series("name", c["name"]),
        "feature": V.series("feature", c["feature"]), "environment": V.series("environment", c["environment"]),
        "provider": word("provider", mi, prov), "model": word("model", mi, names),
        "request_model": word("request_model", rmi, names),
        "prompt_version": V.series("prompt_version", c["prompt_version"]),
        "user_n": pl.Series(c["user"]).replace(-1, None), "session_n": pl.Series(c["session"]).replace(-1, None),
        "variant": V.series("variant", c["variant"]), "status": V.series("status", c["status"]),
        "error_type": V.series("error_type", c["error_type"]),
        "finish_reason": V.series("finish_reason", c["finish_reason"]),
        "attempt": c["attempt"].astype(np.int32), "fallback": c["fallback"],
        "input_tokens": tok(c["in_tok"]), "output_tokens": tok(c["out_tok"]),
        "cache_read_tokens": tok(c["cache_read"]), "cache_write_tokens": tok(c["cache_write"]),
        "reasoning_tokens": tok(c["reasoning"]), "k_ctx": pl.Series(c["k_ctx"]).replace(-1, None),
    })
    return df


def _feedback(rng, sup, summ, code, V, ids) -> tuple["pl.DataFrame", tuple]:
    """Thumbs on support answers (down far more likely when hallucinated), ratings on summaries, accept/edit/copy on
    code suggestions; also returns the support answers the user accepted (the funnel's last step)."""
    import numpy as np
    import polars as pl

    frames = []
    ok = (sup["status"] == V("ok")) & sup["attempt_final"]
    give = ok & (rng.random(len(ok)) < 0.16)
    i = np.nonzero(give)[0]
    down = rng.random(len(i)) < np.where(sup["halluc"][i], 0.62, 0.12)
    frames.append(("thumbs", sup, i, np.where(down, 0.0, 1.0)))
    # accept_suggestion: the user marked the answer as solving the question
    acc = ok & (rng.random(len(ok)) < np.where(sup["halluc"], 0.18, 0.45))
    i_acc = np.nonzero(acc)[0]
    ok_s = summ["status"] == V("ok")
    i = np.nonzero(ok_s & (rng.random(len(ok_s)) < 0.06))[0]
    rating = np.clip(np.round(rng.normal(4.1, 0.9, len(i))), 1, 5)
    frames.append(("rating", summ, i, rating))
    ok_c = code["status"] == V("ok")
    u = rng.random(len(ok_c))
    for kind, lo, hi in (("accept", 0.0, 0.30), ("edit", 0.30, 0.38), ("copy", 0.38, 0.50)):
        i = np.nonzero(ok_c & (u >= lo) & (u < hi))[0]
        frames.append((kind, code, i, np.ones(len(i))))
    out = []
    for kind, c, i, value in frames:
        n = len(i)
        t = c["t"][i] + c["latency"][i] / 1000.0 + rng.uniform(2, 120, n)
        out.append(pl.DataFrame({"call_id": c["id"][i], "user_n": c["user"][i], "t": t, "kind": kind,
                                 "value": value.astype(float)}))
    fb = pl.concat(out)
    fb = fb.with_columns(feedback_id=pl.Series(ids("feedback", fb.height)))
    t_acc = sup["t"][i_acc] + sup["latency"][i_acc] / 1000.0 + rng.uniform(5, 90, len(i_acc))
    return fb, (sup["id"][i_acc], sup["user"][i_acc], t_acc)


def _events(rng, U, sessions, sc, accepted, summ, ag, feedback, V, ids) -> "pl.DataFrame":
    """Product events: app and non-AI features per active user-day, and the AI funnel and feature events."""
    import numpy as np
    import polars as pl

    users, days = U["ud_user"], U["ud_day"]
    nud = len(users)
    frames = []
    start = days * 86400.0 + _time_of_day(rng, nud)

    def add(event: str, feature: str, user: np.ndarray, t: np.ndarray, call: np.ndarray | None = None) -> None:
        frames.append(pl.DataFrame({
            "user_n": user.astype(np.int64), "t": t, "event": event, "feature": feature,
            "call_n": pl.Series(call if call is not None else np.full(len(user), -1, np.int64)).replace(-1, None),
        }))

    add("open_app", "app", users, start - 5.0)
    for event, feature, lam, spread in (("search", "search", 2.0, 6), ("view_ticket", "tickets", 1.6, 8),
                                       ("export_report", "reports", 0.12, 8)):
        k = rng.poisson(lam, nud)
        add(event, feature, np.repeat(users, k), np.repeat(start, k) + rng.uniform(0, spread * 3600, int(k.sum())))
    s = sessions
    add("open_assistant", "support_assistant", s["user"], s["t"])
    ok1 = sc["attempt"] == 1
    add("ask", "support_assistant", sc["user"][ok1], sc["t"][ok1] - 0.5, sc["id"][ok1])
    acc_call, acc_user, acc_t = accepted
    add("accept_suggestion", "support_assistant", acc_user, acc_t, acc_call)
    first = summ["attempt"] == 1
    add("view_summary", "summariser", summ["user"][first], summ["t"][first] + summ["latency"][first] / 1000.0,
        summ["id"][first])
    fb = feedback.filter(pl.col("kind") == "accept")
    add("accept_completion", "coding_assistant", fb["user_n"].to_numpy(), fb["t"].to_numpy(),
        fb["call_id"].to_numpy())
    root = ag["root"]
    add("run_agent", "agent", root["user"], root["t"] - 0.2, root["id"])
    ev = pl.concat(frames)
    ev = ev.with_columns(pl.col("t").clip(0, DAYS * 86400.0 - 0.001)).sort("t", "user_n", "event")
    return ev.with_columns(event_n=pl.Series(ids("event", ev.height)))


def _trace_b(trace: "np.ndarray", salt: int) -> "np.ndarray":
    """Low half of the 128-bit trace id."""
    import numpy as np

    return _mix(trace.astype(np.uint64), salt ^ 0x1234)


def _assignments(sc, exp_user, summ, mirror, salt) -> "pl.DataFrame":
    import numpy as np
    import polars as pl

    in_exp = sc["t"] >= _sec(EXPERIMENT_START)
    df = pl.DataFrame({"user_n": sc["user"][in_exp], "t": sc["t"][in_exp]}).group_by("user_n").agg(pl.col("t").min())
    df = df.with_columns(
        experiment=pl.lit("support_model_ab"),
        unit_id=pl.format("u{}", pl.col("user_n").cast(pl.String).str.zfill(5)),
        variant=pl.Series(np.where(exp_user[df["user_n"].to_numpy()], "treatment", "control")),
        weight=pl.lit(0.5),
    )
    shadow = pl.DataFrame({"trace": summ["trace"][mirror], "trace_b": _trace_b(summ["trace"][mirror], salt),
                           "t": summ["t"][mirror]}).with_columns(
        experiment=pl.lit("summariser_shadow"), variant=pl.lit("shadow"), weight=pl.lit(SHADOW_SHARE))
    return pl.concat([df.select("experiment", "unit_id", "variant", "t", "weight", trace=pl.lit(None, pl.Int64),
                                trace_b=pl.lit(None, pl.Int64)),
                      shadow.select("experiment", pl.lit(None, pl.String).alias("unit_id"), "variant", "t",
                                    "weight", "trace", "trace_b")])


def _guardrails(rng, sup, root, V, ids) -> "pl.DataFrame":
    """pii / jailbreak / toxicity decisions on every support request and agent task; blocked calls carry the block.
    Every non-pass decision and 2% of passes are reviewed (verdict bad/good)."""
    import numpy as np
    import polars as pl

    call = np.concatenate([sup["id"], root["id"]])
    t = np.concatenate([sup["t"], root["t"]])
    blocked = np.concatenate([sup["status"], root["status"]]) == V("blocked")
    n = len(call)
    by = rng.random(n) < 0.65  # which guard blocked: jailbreak, else toxicity
    u = rng.random((3, n))
    pii = np.where(u[0] < 0.04, "redact", "pass")
    jb = np.where(blocked & by, "block", np.where(~blocked & (u[1] < 0.004), "flag", "pass"))
    tox = np.where(blocked & ~by, "block", np.where(~blocked & (u[2] < 0.005), "flag", "pass"))
    guard = np.repeat(np.array(["pii", "jailbreak", "toxicity"]), n)
    action = np.concatenate([pii, jb, tox])
    tt = np.tile(t, 3) + np.repeat([0.01, 0.02, 0.03], n)
    acted = action != "pass"
    reviewed = np.where(acted, rng.random(3 * n) < 0.8, rng.random(3 * n) < 0.02)
    p_bad = np.select([action == "block", action == "redact", action == "flag"], [0.86, 0.95, 0.55], 0.015)
    # missed jailbreaks are the expensive failure: passes of the jailbreak guard are a little worse
    p_bad = np.where((action == "pass") & (guard == "jailbreak"), 0.03, p_bad)
    bad = rng.random(3 * n) < p_bad
    df = pl.DataFrame({"call_id": np.tile(call, 3), "t": tt, "guard": guard, "action": action,
                       "reviewed": reviewed, "bad": bad})
    df = df.with_columns(verdict=pl.when("reviewed").then(pl.when("bad").then(pl.lit("bad")).otherwise(pl.lit("good"))))
    df = df.drop("reviewed", "bad").sort("t", "guard")
    return df.with_columns(guard_n=pl.Series(ids("guard", df.height)))


def _incidents() -> "pl.DataFrame":
    import polars as pl

    rows = [
        ("INC-0031", "support_assistant", "sev2", "OpenAI API outage: 5xx and connection errors on every OpenAI model; "
         "retries re-routed to claude-sonnet-4", OUTAGE_START, OUTAGE_DETECTED, OUTAGE_MITIGATED, OUTAGE_END),
        ("INC-0034", "agent", "sev3", "Agent prompt agent-v3.1 loops on tool calls: runaway token spend",
         RUNAWAY_START, RUNAWAY_DETECTED, RUNAWAY_END, _dt.datetime(2026, 11, 5, 11, 0)),
        ("INC-0036", "coding_assistant", "sev3", "claude-sonnet-4 latency regression (time to first token x3)",
         REGRESSION_START, REGRESSION_DETECTED, REGRESSION_END, _dt.datetime(2026, 11, 19, 9, 0)),
    ]
    return pl.DataFrame(rows, schema=["incident_id", "feature", "severity", "title", "started_at", "detected_at",
                                      "mitigated_at", "resolved_at"], orient="row")
