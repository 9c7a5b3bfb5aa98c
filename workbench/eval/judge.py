"""An LLM faithfulness judge over any OpenAI-compatible endpoint, with what ragas users ask for and do not get.

* **Any endpoint**: hosted OpenAI, vLLM, Ollama, a gateway: the chat completions protocol over ``httpx``, configured in
  ``workbench.toml`` ``[judge]``; the API key only from the environment variable that ``api_key_env`` names.
* **A cache in DuckDB** (``judge_cache``), keyed by the sha256 of the endpoint, model, messages, sampling options and
  repeat index: re-running an evaluation sends nothing and costs nothing, and answers that make the same request (the
  same answer logged twice) are asked once.
* **Bounded concurrency** (``concurrency``), a total deadline per request (``timeout_s``: connecting, sending and
  reading the whole reply; a server trickling one byte a second cannot hold a request open past it), a maximum reply
  size (``max_reply_bytes``, default 1 MiB; a larger reply is a failed request, never cached), retries with
  exponential backoff and jitter (``max_retries``) on 408, 409, 425, 429, 5xx but 501 and 505, timeouts, connection
  errors and an HTTP 200 whose body is an ``{"error": ...}`` object or has no ``choices``; a ``Retry-After`` (seconds
  or an HTTP-date) or ``retry-after-ms`` is waited for up to 60 s, and one asking for more fails at once. Failed
  requests are never cached: the next run asks again. A reply streamed as server-sent events though no stream was
  asked for is read as the completion it spells out. A 401, 403 or 404 (a wrong key, ``base_url`` or model) stops
  the run with a ``ConfigError`` naming the endpoint and the status, never the key; so does a 429 for an exhausted
  quota (``insufficient_quota``), with an ``InputError``.
* **Redaction** (``redact = true``): answers, contexts and questions go through :func:`workbench.redact.redact`
  (e-mail addresses, phone numbers, API keys, card numbers, IBANs, national ids) before they are sent; the
  evaluator version says so (``...-redacted``), so redacted and raw verdicts are never mixed.
* **A dry run** that estimates tokens (characters / 4, a rough rule for English text; no tokenizer download) and cost
  (``[judge]`` prices, else genai-prices when it knows the model, else "unknown cost") and sends nothing.
* **Repeat-k** runs (``repeat=k``; seed ``seed + r``, use ``temperature > 0`` for sampling variation) stored as
  ``repeat`` = 0..k-1, for :func:`workbench.hallucination.judge_variance`.
* **Unscorable is counted**: a reply that is not the JSON asked for, no claim extracted, a reply with no verdict (a
  refusal, a tool call, a filtered reply, one cut at ``max_tokens``), or a request that failed after all retries gives
  an ``unscorable`` row with the reason, never a dropped answer. A failed request and a reply with no verdict are not
  cached and are asked again by the next run (the reason is in ``details.error``); a reply that did not parse is
  cached and stays unscorable.
* Works inside a running event loop (Jupyter, papermill): the ``a*`` coroutines for async code, and sync wrappers that
  run the coroutine in a worker thread when a loop is already running.
* **An interrupted run** (Ctrl-C, a kernel interrupt) stops at once and keeps what was answered (cached and written);
  the next run asks only the rest.

The judge asks for the claims of the answer, each with ``supported`` true/false and a reason. The row score
(``hallucination_score``) is the share of unsupported claims, a probability-like number, higher is worse; the label is
``hallucinated`` when any claim is unsupported.

``workbench.toml``::

    [judge]
    base_url = "http://localhost:11434/v1"   # any OpenAI-compatible endpoint
    model = "llama3.1:8b"
    api_key_env = "OPENAI_API_KEY"           # the NAME of the variable; never the key itself
    concurrency = 4
    timeout_s = 60                           # total deadline per request, seconds
    max_reply_bytes = 1048576                # a larger reply is a failure (not cached)
    redact = false                           # true: send answers, contexts, questions redacted
    max_retries = 3
    temperature = 0
    input_usd_per_mtok = 0.15                # optional, for the dry run's cost estimate
    output_usd_per_mtok = 0.60

Examples
--------
>>> cfg = judge_config(base_url="http://127.0.0.1:9/v1", model="m")
>>> cfg.evaluator, cfg.version
('judge:m', 'faithfulness-p2-t0')
>>> parse_verdict('{"claims": [{"claim": "A", "supported": true, "reason": "r"},'
...               ' {"claim": "B", "supported": false, "reason": "not said"}]}').score
0.5
>>> parse_verdict("no JSON here").label
'unscorable'
"""

from __future__ import annotations

from workbench.errors import InputError, ParameterError

import asyncio
import concurrent.futures
import hashlib
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.config import Config, ConfigError, load_config
from workbench.schema import HALLUCINATED, SUPPORTED

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from workbench.db import Workbench

__all__ = [
    "JudgeConfig",
    "Verdict",
    "judge_config",
    "judge_messages",
    "build_messages",
    "parse_verdict",
    "reply_verdict",
    "from_event_stream",
    "ajudge",
    "judge",
    "aevaluate",
    "evaluate",
    "estimate_tokens",
    "run_sync",
]

#: Bump when the prompt or the parsing changes: the version is part of ``evals.evaluator_version``.
PROMPT_VERSION = "2"
METRICS = ("faithfulness",)
_T = TypeVar("_T")

SYSTEM_PROMPT = (
    "You are a careful fact-checker. You are given retrieved context passages, optionally the user's question, and an "
    "answer. Split the answer into its atomic factual claims. For each claim decide whether the context passages "
    "support it: supported means the passages state or directly imply it; your own knowledge does not count. "
    'Reply with JSON only, exactly of the form {"claims": [{"claim": "<the claim>", "supported": true, '
    '"reason": "<one short sentence>"}]}. If the answer makes no factual claim, reply {"claims": []}.'
)

_KNOWN_KEYS = {
    "base_url", "model", "api_key_env", "concurrency", "timeout_s", "max_retries", "temperature", "max_tokens",
    "seed", "json_mode", "retry_backoff_s", "input_usd_per_mtok", "output_usd_per_mtok", "max_reply_bytes", "redact",
}

#: Default ``max_reply_bytes``: 1 MiB, far above any judge verdict (max_tokens 1024 is a few KB of JSON).
MAX_REPLY_BYTES = 1 << 20


@dataclass(frozen=True)
class JudgeConfig:
    """The judge endpoint and how to talk to it. Build with :func:`judge_config`.

    Examples
    --------
    >>> cfg = JudgeConfig(base_url="http://localhost:11434/v1/", model="llama3.1:8b", temperature=0.7, redact=True)
    >>> cfg.evaluator, cfg.version, cfg.url  # the sampling temperature and redaction are part of the version
    ('judge:llama3.1:8b', 'faithfulness-p2-t0.7-redacted', 'http://localhost:11434/v1/chat/completions')
    >>> cfg.api_key() is None  # no api_key_env: a local server that takes no key
    True
    >>> judge_config(cfg, concurrency=8).concurrency  # overrides on a JudgeConfig
    8
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 3
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    json_mode: bool = True
    retry_backoff_s: float = 0.5
    input_usd_per_mtok: float | None = None
    output_usd_per_mtok: float | None = None
    max_reply_bytes: int = MAX_REPLY_BYTES
    redact: bool = False
    source: str = field(default="arguments", compare=False)

    @property
    def evaluator(self) -> str:
        return f"judge:{self.model}"

    @property
    def version(self) -> str:
        # The sampling temperature changes what the judge says, so it is part of the version.
        return f"faithfulness-p{PROMPT_VERSION}-t{self.temperature:g}" + ("-redacted" if self.redact else "")

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def api_key(self) -> str | None:
        """The key from the environment (``api_key_env``); None when no variable is configured (local servers)."""
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(f"{self.source} [judge]: api_key_env names ${self.api_key_env}, which is not set")
        return key


def judge_config(config: Any = None, **overrides: Any) -> JudgeConfig:
    """The ``[judge]`` section of ``workbench.toml`` (``config``: a path, a Config, a JudgeConfig or None), validated.

    Keyword ``overrides`` win over the file (handy in a notebook). Errors name the file, the key, expected and actual.

    >>> judge_config(base_url="http://localhost:8000/v1", model="qwen", concurrency=8).concurrency
    8
    >>> judge_config(base_url="localhost:8000", model="qwen")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [judge]: base_url must start with http:// or https://, got 'localhost:8000'
    """
    if isinstance(config, JudgeConfig):
        return replace(config, **overrides) if overrides else config
    cfg: Config = load_config(config)
    section = dict(cfg.section("judge"))
    section.update(overrides)
    where = cfg.where("judge")
    if "api_key" in section:
        raise ConfigError(f"{where}: never put the API key in the file; set api_key_env to the name of an "
                          "environment variable that holds it")
    unknown = sorted(set(section) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(_KNOWN_KEYS))}")
    for key in ("base_url", "model"):
        if key not in section:
            raise ConfigError(f"{where}: missing {key!r} (an OpenAI-compatible endpoint and the judge model)")
        if not isinstance(section[key], str) or not section[key].strip():
            raise ConfigError(f"{where}: {key} must be a non-empty string, got {section[key]!r}")
    if not section["base_url"].startswith(("http://", "https://")):
        raise ConfigError(f"{where}: base_url must start with http:// or https://, got {section['base_url']!r}")
    env = section.get("api_key_env")
    if env is not None and (not isinstance(env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env)):
        raise ConfigError(f"{where}: api_key_env must be the name of an environment variable, got {env!r}")

    def num(key: str, lo: float | None, hi: float | None, default: Any) -> Any:
        return cfg.number(section, key, "judge", lo=lo, hi=hi, default=default)

    def integer(key: str, lo: int, default: int | None) -> int | None:
        v = section.get(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{where}: {key} must be an integer >= {lo}, got {v!r}")
        return v

    json_mode = section.get("json_mode", True)
    if not isinstance(json_mode, bool):
        raise ConfigError(f"{where}: json_mode must be true or false, got {json_mode!r}")
    redact = section.get("redact", False)
    if not isinstance(redact, bool):
        raise ConfigError(f"{where}: redact must be true or false, got {redact!r}")
    return JudgeConfig(
        base_url=section["base_url"].strip(),
        model=section["model"].strip(),
        api_key_env=env,
        concurrency=integer("concurrency", 1, 4),
        timeout_s=num("timeout_s", 0.001, None, 60.0),
        max_retries=integer("max_retries", 0, 3),
        temperature=num("temperature", 0, 2, 0.0),
        max_tokens=integer("max_tokens", 1, 1024),
        seed=integer("seed", 0, None),
        json_mode=json_mode,
        retry_backoff_s=num("retry_backoff_s", 0, 60, 0.5),
        input_usd_per_mtok=num("input_usd_per_mtok", 0, None, None),
        output_usd_per_mtok=num("output_usd_per_mtok", 0, None, None),
        max_reply_bytes=integer("max_reply_bytes", 1024, MAX_REPLY_BYTES),
        redact=redact,
        source=cfg.path.name if cfg.path else "workbench.toml",
    )


# ------------------------------------------------------------------------------------------------
# Prompt, request, verdict
# ------------------------------------------------------------------------------------------------


def build_messages(answer: str, contexts: Sequence[str] | None, question: str | None = None) -> list[dict]:
    """The chat messages of the faithfulness judge for one answer.

    >>> build_messages("It opened in 1889.", ["The tower opened in 1889."])[1]["content"].splitlines()[:3]
    ['<contexts>', '[1] The tower opened in 1889.', '</contexts>']
    """
    ctx = "\n".join(f"[{i}] {c}" for i, c in enumerate(contexts or [], 1)) or "(no context)"
    parts = [f"<contexts>\n{ctx}\n</contexts>"]
    if question:
        parts.append(f"<question>\n{question}\n</question>")
    parts.append(f"<answer>\n{answer}\n</answer>")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


def judge_messages(cfg: JudgeConfig, answer: str, contexts: Sequence[str] | None, question: str | None = None) -> list[dict]:
    """:func:`build_messages`, with the texts redacted first when ``cfg.redact`` (``[judge] redact = true``).

    >>> cfg = judge_config(base_url="http://127.0.0.1:9/v1", model="m", redact=True)
    >>> judge_messages(cfg, "Mail ann@corp.com.", ["Ann's key is sk-abcdefghijklmnopqrstuvwx."])[1]["content"]
    "<contexts>\\n[1] Ann's key is [api_key].\\n</contexts>\\n\\n<answer>\\nMail [email].\\n</answer>"
    """
    if cfg.redact:
        from workbench.redact import redact

        answer, question = redact(answer), redact(question)
        contexts = [redact(c) for c in contexts or []]
    return build_messages(answer, contexts, question)


def request_body(cfg: JudgeConfig, messages: list[dict], repeat: int = 0) -> dict:
    """The chat completions request body; repeat r uses seed ``seed + r`` (seed 0 when none is configured).

    Examples
    --------
    >>> cfg = JudgeConfig(base_url="http://localhost:11434/v1", model="llama3.1:8b")
    >>> body = request_body(cfg, [{"role": "user", "content": "Is it supported?"}], repeat=2)
    >>> body["model"], body["seed"], body["messages"][0]["content"]
    ('llama3.1:8b', 2, 'Is it supported?')
    """
    body: dict[str, Any] = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature,
                            "max_tokens": cfg.max_tokens}
    if cfg.seed is not None or repeat:
        body["seed"] = (cfg.seed or 0) + repeat
    if cfg.json_mode:
        body["response_format"] = {"type": "json_object"}
    return body


def request_hash(cfg: JudgeConfig, body: Mapping[str, Any], repeat: int = 0) -> str:
    """sha256 of the endpoint, the exact body (model, messages, sampling options) and the repeat index.

    Examples
    --------
    >>> cfg = JudgeConfig(base_url="http://localhost:11434/v1", model="llama3.1:8b")
    >>> body = request_body(cfg, [{"role": "user", "content": "Is it supported?"}])
    >>> h = request_hash(cfg, body)
    >>> len(h), h == request_hash(cfg, dict(body)), h == request_hash(cfg, body, repeat=1)  # the key of judge_cache
    (64, True, False)
    """
    key = json.dumps({"base_url": cfg.base_url.rstrip("/"), "body": body, "repeat": repeat}, sort_keys=True,
                     ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """The judge's verdict on one answer.

    ``score``: share of unsupported claims (None when unscorable); ``label``: hallucinated / supported / unscorable;
    ``claims``: dicts with ``text``, ``supported``, ``reason``; ``reason``: why the answer is unscorable.

    Examples
    --------
    >>> v = parse_verdict('{"claims": [{"claim": "A", "supported": true},'
    ...                   ' {"claim": "B", "supported": false, "reason": "not in the passages"}]}')
    >>> v.score, v.label, v.unscorable, [c["text"] for c in v.claims if not c["supported"]]
    (0.5, 'hallucinated', False, ['B'])
    >>> v = parse_verdict("I cannot tell.")
    >>> v.unscorable, v.score, v.reason
    (True, None, "reply is not JSON: 'I cannot tell.'")
    """

    score: float | None
    label: str
    claims: tuple[dict, ...] = ()
    reason: str | None = None

    @property
    def unscorable(self) -> bool:
        return self.label == "unscorable"


def _unfence(text: str) -> str:
    """The body of a reply written as a fenced block (```json ... ```), else the reply as it is (``text`` stripped).

    String tests, not a pattern: the pattern's lazy body and its whitespace runs backtracked into each other, and a
    reply of an opening fence and 10,000 spaces took 320 s.

    >>> _unfence('```json\\n{"claims": []}\\n```'), _unfence('{"a": 1}'), _unfence("``````")
    ('{"claims": []}', '{"a": 1}', '')
    """
    if len(text) < 6 or not (text.startswith("```") and text.endswith("```")):
        return text
    body = text[3:-3]
    return (body[4:] if body.startswith("json") else body).strip()


def _json_in(text: str) -> Any:
    """The JSON of a reply: the whole text, else the first fenced block in it, else the first object in it with a
    ``claims`` key (a verdict wrapped in prose, after braces that are not JSON or another object), else the first
    object. Each try is linear in the text, and at most 32 are made. Raises ValueError (or RecursionError) when there
    is none.

    >>> _json_in('Here it is:\\n```json\\n{"claims": []}\\n```\\nDone.'), _json_in('Sure! {"a": 1} Bye.')
    ({'claims': []}, {'a': 1})
    >>> _json_in('Claims {A, B}: {"n": 2} {"claims": []}')
    {'claims': []}
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    start = text.find("```")
    end = text.find("```", start + 3) if start >= 0 else -1
    if end > 0:
        body = text[start + 3:end]
        try:
            return json.loads(body[4:] if body[:4].lower() == "json" else body)
        except ValueError:
            pass
    decode, first, brace = json.JSONDecoder().raw_decode, None, text.find("{")
    for _ in range(_BRACES_TRIED):  # a brace in the prose ("claims {A, B}") or another object may come first
        if brace < 0:
            break
        try:
            got, end = decode(text, brace)
        except ValueError:
            brace = text.find("{", brace + 1)
            continue
        if isinstance(got, dict) and "claims" in _lower_keys(got):
            return got
        first = got if first is None else first
        brace = text.find("{", end)
    if first is None:
        raise ValueError("no JSON object")
    return first


_BRACES_TRIED = 32  # objects looked for in a reply's prose: each try is linear in the text


#: How a claim's ``supported`` (or ``verdict``) may be written, in any case.
_SUPPORTED_WORDS = {"true": True, "yes": True, "1": True, SUPPORTED: True,
                    "false": False, "no": False, "0": False, "unsupported": False, "not supported": False,
                    HALLUCINATED: False}


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        return _SUPPORTED_WORDS.get(" ".join(v.lower().replace("_", " ").split()))
    return None


def _lower_keys(d: Any) -> Any:
    return {str(k).lower(): v for k, v in d.items()} if isinstance(d, dict) else d


def parse_verdict(content: str | None) -> Verdict:
    """Read the judge's reply: JSON ``{"claims": [{"claim", "supported", "reason"}]}``, also in a ```json fence or
    wrapped in prose, keys in any case; ``supported`` true/false, yes/no, 1/0 or ``supported``/``unsupported``/
    ``hallucinated`` in any case (or a ``verdict`` in those words).

    Anything else, or no claim, is unscorable with the reason.

    >>> parse_verdict('{"claims": []}').reason
    'no claim extracted'
    >>> parse_verdict('```json\\n{"claims": [{"claim": "A", "supported": "false"}]}\\n```').label
    'hallucinated'
    """
    if not content or not content.strip():
        return Verdict(None, "unscorable", reason="empty reply")
    text = _unfence(content.strip())
    try:
        data = _lower_keys(_json_in(text))
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
        return Verdict(None, "unscorable", reason=f"reply is not JSON: {content[:80]!r}")
    claims = data.get("claims") if isinstance(data, dict) else data if isinstance(data, list) else None
    if not isinstance(claims, list):
        return Verdict(None, "unscorable", reason="reply has no 'claims' list")
    if not claims:
        return Verdict(None, "unscorable", reason="no claim extracted")
    out = []
    for i, c in enumerate(claims):
        c = _lower_keys(c)
        supported = _as_bool(c.get("supported", c.get("verdict"))) if isinstance(c, dict) else None
        if supported is None:
            return Verdict(None, "unscorable", reason=f"claim {i + 1} has no true/false 'supported'")
        out.append({"text": str(c.get("claim") or c.get("text") or ""), "supported": supported,
                    "reason": str(c.get("reason")) if c.get("reason") else None})
    bad = sum(not c["supported"] for c in out)
    return Verdict(bad / len(out), "hallucinated" if bad else "supported", tuple(out))


# ------------------------------------------------------------------------------------------------
# HTTP: bounded concurrency, retries, timeouts
# ------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One completed request: the response body (None on failure), the error, attempts made.

    Examples
    --------
    >>> ok = Reply({"choices": [{"message": {"content": "{}"}}]}, None, 1)
    >>> failed = Reply(None, "HTTP 503 (after 4 attempts)", 4)
    >>> ok.body["choices"][0]["message"]["content"], failed.body, failed.attempts
    ('{}', None, 4)
    """

    body: dict | None
    error: str | None
    attempts: int

    @property
    def content(self) -> str | None:
        """The reply's text: the message content, or the text of its content parts (``[{"type": "text", "text":
        ...}]``, as some OpenAI-compatible gateways answer); None when it holds no text.

        >>> Reply({"choices": [{"message": {"content": [{"type": "text", "text": "{"}, {"text": "}"}]}}]}, None, 1).content
        '{}'
        >>> Reply({"choices": [{"message": {"content": 7}}]}, None, 1).content is None
        True
        """
        try:
            content = self.body["choices"][0]["message"]["content"]  # type: ignore[index]
        except (TypeError, KeyError, IndexError):
            return None
        if isinstance(content, list):
            parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
            return "".join(parts) if parts else None
        return content if isinstance(content, str) else None

    @property
    def usage(self) -> tuple[int | None, int | None]:
        """Prompt and completion tokens as the reply states them; a count that is not a whole number of tokens (text,
        a float, 1e30) is unknown (None), and so is a ``usage`` that is not an object.

        >>> Reply({"usage": {"prompt_tokens": "12", "completion_tokens": 1e30}}, None, 1).usage
        (None, None)
        """
        u = (self.body or {}).get("usage") if isinstance(self.body, dict) else None
        if not isinstance(u, dict):
            return None, None

        def count(v: Any) -> int | None:
            return v if type(v) is int and 0 <= v < 1 << 53 else None

        return count(u.get("prompt_tokens")), count(u.get("completion_tokens"))


def reply_verdict(cfg: JudgeConfig, reply: Reply) -> tuple[Verdict, str | None]:
    """The verdict of a reply and, when it holds none for a reason worth asking again, that reason (the error).

    A failed request, or a completion with no text (a refusal, a tool call, a filtered reply) or with text cut at
    ``max_tokens`` that does not parse, is an error: unscorable, never cached, asked again by the next run. A reply
    with text that is not the verdict asked for is unscorable for good (asking again gets the same reply).

    Examples
    --------
    >>> cfg = JudgeConfig(base_url="http://localhost:11434/v1", model="m")
    >>> refused = {"choices": [{"message": {"content": None, "refusal": "I can't help."}, "finish_reason": "stop"}]}
    >>> print(reply_verdict(cfg, Reply(refused, None, 1))[1])
    no verdict in the reply: the judge refused: "I can't help." (finish_reason stop)
    >>> cut = {"choices": [{"message": {"content": '{"claims": [{"cl'}, "finish_reason": "length"}]}
    >>> reply_verdict(cfg, Reply(cut, None, 1))[1]
    'no verdict in the reply: the reply was cut at max_tokens = 1024 (finish_reason length); raise [judge] max_tokens'
    >>> v, error = reply_verdict(cfg, Reply({"choices": [{"message": {"content": "Fine."}}]}, None, 1))
    >>> v.reason, error  # text that is no verdict: unscorable, and asking again would not help
    ("reply is not JSON: 'Fine.'", None)
    """
    if reply.error:
        return Verdict(None, "unscorable", reason=reply.error), reply.error
    verdict = parse_verdict(reply.content)
    if not verdict.unscorable:
        return verdict, None
    try:
        choice = reply.body["choices"][0]  # type: ignore[index]
        message = choice.get("message") or {}
        finish = choice.get("finish_reason")
    except (TypeError, KeyError, IndexError, AttributeError):
        choice, message, finish = {}, {}, None
    if not isinstance(message, dict):
        message = {}
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal.strip():
        why = f"the judge refused: {json.dumps(refusal.strip()[:200], ensure_ascii=False)}"
    elif message.get("tool_calls") or message.get("function_call"):
        why = "a tool call instead of text"
    elif finish == "content_filter":
        why = "the reply was filtered"
    elif finish == "length":
        why = f"the reply was cut at max_tokens = {cfg.max_tokens}"
    elif not (reply.content or "").strip():
        why = "no text"
    else:
        return verdict, None
    why = f"no verdict in the reply: {why}" + (f" (finish_reason {finish})" if isinstance(finish, str) else "")
    if finish == "length":
        why += "; raise [judge] max_tokens"
    return Verdict(None, "unscorable", reason=why), why


def _client(cfg: JudgeConfig) -> "httpx.AsyncClient":
    import httpx

    headers = {"Content-Type": "application/json"}
    key = cfg.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    return httpx.AsyncClient(headers=headers, timeout=cfg.timeout_s, limits=limits)


#: The longest wait a ``Retry-After`` may ask for; one that asks for more (a quota reset in an hour) fails at once.
RETRY_AFTER_CAP_S = 60.0


def transient(status: int) -> bool:
    """Whether an HTTP status is worth asking again: 408 (request timeout), 409 (conflict), 425 (too early), 429 (rate
    limit) and server errors, but not 501 (not implemented) or 505 (HTTP version not supported), which stay so.

    Examples
    --------
    >>> [s for s in (400, 401, 404, 408, 409, 422, 425, 429, 500, 501, 503, 504, 529) if transient(s)]
    [408, 409, 425, 429, 500, 503, 504, 529]
    """
    return status in (408, 409, 425, 429) or (status >= 500 and status not in (501, 505))


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait, in seconds, that a reply asks for: ``retry-after-ms`` (OpenAI, Azure OpenAI), else ``Retry-After``
    in seconds or as an HTTP-date; None when it asks for none or cannot be read.

    Examples
    --------
    >>> retry_after({"retry-after": "2"}), retry_after({"retry-after-ms": "1500", "retry-after": "2"})
    (2.0, 1.5)
    >>> retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, now=1445412500.0)  # 10 s after now
    10.0
    >>> retry_after({"retry-after": "soon"}), retry_after({"retry-after": "nan"}), retry_after({})
    (None, None, None)
    """
    import math
    from email.utils import parsedate_to_datetime

    ms = headers.get("retry-after-ms")
    value = headers.get("retry-after")
    for text, scale in ((ms, 0.001), (value, 1.0)):
        try:
            seconds = float(text) * scale  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(value).timestamp()  # type: ignore[arg-type]
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def _backoff(cfg: JudgeConfig, attempt: int, wait: float | None) -> float:
    # Full exponential backoff plus jitter, so that concurrent workers hit by the same 429 do not retry in lockstep;
    # never shorter than the wait the server asked for.
    delay = cfg.retry_backoff_s * (2 ** attempt)
    delay += random.uniform(0, cfg.retry_backoff_s)
    return min(max(delay, wait or 0.0), RETRY_AFTER_CAP_S)


def _error_of(data: bytes) -> dict:
    """The ``error`` object of an error reply (``{"error": {...}}``, or the body itself), else ``{}``."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    err = body.get("error", body) if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {"message": err} if isinstance(err, str) else {}


def _error_text(cfg: JudgeConfig, data: bytes) -> str:
    """The message of an error reply, else its first 200 characters; with the API key, and anything that looks like
    one, redacted (a 401 may echo the key)."""
    from workbench.redact import redact

    msg = _error_of(data).get("message")
    text = (msg if isinstance(msg, str) and msg.strip() else data[:4096].decode("utf-8", "replace"))[:200]
    key = cfg.api_key()
    return redact(text.replace(key, "[api_key]") if key else text)


#: Statuses that say the key or the endpoint is wrong: every request would get the same, so the run stops.
_FATAL = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def _fatal(cfg: JudgeConfig, status: int, data: bytes) -> InputError | None:
    """The error that stops a run, naming the endpoint, the status and what to check: a 401, 403 or 404 (the key,
    base_url or model: a ConfigError), or a 429 for an exhausted quota (OpenAI's ``insufficient_quota``), which
    every request would get as well; None for any other reply."""
    where = f"judge endpoint {cfg.url} answered HTTP {status}"
    if status == 429:
        err = _error_of(data)
        if "insufficient_quota" not in (err.get("code"), err.get("type")):
            return None
        return InputError(f"{where} insufficient_quota: {_error_text(cfg, data)}; asking again will not help until "
                          "the account has credit")
    if status not in _FATAL:
        return None
    if status == 404:
        hint = "check [judge] base_url and model"
    elif cfg.api_key_env:
        hint = f"check the key in ${cfg.api_key_env} ([judge] api_key_env)"
    else:
        hint = "no key was sent: set [judge] api_key_env to the variable that holds it"
    return ConfigError(f"{where} {_FATAL[status]}: {_error_text(cfg, data)}; {hint}")


class _TooLarge(Exception):
    pass


async def _exchange(client: "httpx.AsyncClient", cfg: JudgeConfig, body: dict) -> tuple[int, Any, bytes]:
    """POST and read the whole reply, refusing more than ``cfg.max_reply_bytes``."""
    async with client.stream("POST", cfg.url, json=body, timeout=cfg.timeout_s) as r:
        declared = r.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cfg.max_reply_bytes:
            raise _TooLarge(int(declared))
        data = bytearray()
        async for chunk in r.aiter_bytes():
            data += chunk
            if len(data) > cfg.max_reply_bytes:
                raise _TooLarge(len(data))
        return r.status_code, r.headers, bytes(data)


def from_event_stream(data: bytes) -> dict | None:
    """The chat completion that a server-sent event stream of ``chat.completion.chunk`` events spells out (a gateway
    that streams though ``stream`` was not asked for), or None when ``data`` is not such a stream.

    Examples
    --------
    >>> events = (b'data: {"choices": [{"index": 0, "delta": {"content": "Fi"}}]}\\n\\n'
    ...           b'data: {"choices": [{"index": 0, "delta": {"content": "ne."}, "finish_reason": "stop"}]}\\n\\n'
    ...           b'data: [DONE]\\n\\n')
    >>> from_event_stream(events)["choices"][0]
    {'index': 0, 'message': {'role': 'assistant', 'content': 'Fine.'}, 'finish_reason': 'stop'}
    >>> from_event_stream(b'{"choices": []}') is None
    True
    """
    if not data.lstrip().startswith((b"data:", b"event:", b":")):
        return None
    text, refusal, tools, finish, usage, seen = [], [], False, None, None, False
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        try:
            chunk = json.loads(line[5:])
        except (ValueError, RecursionError):
            return None
        if not isinstance(chunk, dict):
            return None
        if chunk.get("error"):
            return chunk  # an error event: read as an error body
        seen = True
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) and choice.get("index", 0) == 0 else None
            if not isinstance(delta, dict):
                continue
            text += [delta["content"]] if isinstance(delta.get("content"), str) else []
            refusal += [delta["refusal"]] if isinstance(delta.get("refusal"), str) else []
            tools = tools or bool(delta.get("tool_calls"))
            finish = choice.get("finish_reason") or finish
    if not seen:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if refusal:
        message["refusal"] = "".join(refusal)
    if tools:
        message["tool_calls"] = [{"type": "function"}]
    body: dict[str, Any] = {"object": "chat.completion",
                            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return body


def _read_200(data: bytes) -> tuple[dict | None, str | None]:
    """A 200 reply: ``(body, None)`` when it is a chat completion (or an event stream of one), else ``(None, why)`` --
    a retryable failure."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
        body = from_event_stream(data)
        if body is None:
            return None, "HTTP 200 with a body that is not JSON"
    if not isinstance(body, dict):
        return None, f"HTTP 200 with a JSON {type(body).__name__}, not an object"
    if body.get("error"):
        err = body["error"]
        msg = err.get("message") if isinstance(err, dict) else err
        return None, f"HTTP 200 with an error body: {str(msg)[:200]}"
    if not isinstance(body.get("choices"), list) or not body["choices"]:
        return None, "HTTP 200 without choices"
    return body, None


async def _post(client: "httpx.AsyncClient", cfg: JudgeConfig, body: dict, sem: asyncio.Semaphore) -> Reply:
    import httpx

    error = None
    for attempt in range(cfg.max_retries + 1):
        wait = None
        async with sem:
            try:
                # the whole request -- connect, send, every byte of the reply -- within timeout_s
                status, headers, data = await asyncio.wait_for(_exchange(client, cfg, body), cfg.timeout_s)
            except (asyncio.TimeoutError, httpx.TimeoutException):
                error = f"timeout: no complete reply within {cfg.timeout_s:g} s"
            except _TooLarge as exc:
                # a server that sends too much will do it again: fail now, cache nothing, the next run asks again
                return Reply(None, f"reply larger than max_reply_bytes = {cfg.max_reply_bytes} "
                                   f"({exc.args[0]}+ bytes)", attempt + 1)
            except httpx.TransportError as exc:
                error = f"connection error: {type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    parsed, error = _read_200(data)
                    if parsed is not None:
                        return Reply(parsed, None, attempt + 1)
                else:
                    fatal = _fatal(cfg, status, data)
                    if fatal is not None:
                        raise fatal
                    error = f"HTTP {status}: {_error_text(cfg, data)}"
                    if not transient(status):
                        return Reply(None, error, attempt + 1)  # a 400, a 422: asking again will not help
                    wait = retry_after(headers)
                    if wait is not None and wait > RETRY_AFTER_CAP_S:
                        error += f"; the endpoint asks to wait {wait:.0f} s, more than {RETRY_AFTER_CAP_S:g} s"
                        return Reply(None, f"{error} (after {attempt + 1} attempts)", attempt + 1)
        if attempt < cfg.max_retries:
            await asyncio.sleep(_backoff(cfg, attempt, wait))
    return Reply(None, f"{error} (after {cfg.max_retries + 1} attempts)", cfg.max_retries + 1)


async def acomplete_many(cfg: JudgeConfig, bodies: Sequence[dict], *, on_done: Any = None) -> list[Reply]:
    """Send chat completion requests, at most ``cfg.concurrency`` at a time; replies in the order of ``bodies``.

    A request that fails is a :class:`Reply` with the error, but a 401, 403 or 404 (a wrong key, base_url or model)
    raises a :class:`~workbench.errors.ConfigError`, and a 429 for an exhausted quota an
    :class:`~workbench.errors.InputError`, naming the endpoint and the status; what is not sent yet is not sent. ``on_done(k, reply)``, when given, is called as the reply to ``bodies[k]`` arrives.

    Examples
    --------
    With no server listening at the endpoint, each request fails and says why, after its retries:

    >>> cfg = JudgeConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0, timeout_s=2)
    >>> replies = run_sync(acomplete_many(cfg, [request_body(cfg, [{"role": "user", "content": "hi"}])]))
    >>> [(r.body, r.attempts, "(after 1 attempts)" in r.error) for r in replies]
    [(None, 1, True)]
    """
    if not bodies:
        return []
    sem = asyncio.Semaphore(cfg.concurrency)
    async with _client(cfg) as client:

        async def one(k: int, body: dict) -> Reply:
            reply = await _post(client, cfg, body, sem)
            if on_done is not None:
                on_done(k, reply)
            return reply

        tasks = [asyncio.ensure_future(one(k, b)) for k, b in enumerate(bodies)]
        try:
            # a wrong key or endpoint (a ConfigError) stops the requests not yet sent
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        return [t.result() for t in tasks]


def run_sync(coro: Awaitable[_T]) -> _T:
    """Run a coroutine to completion from sync code, also when an event loop is already running (Jupyter).

    Examples
    --------
    >>> import asyncio
    >>> async def double(x):
    ...     await asyncio.sleep(0)
    ...     return 2 * x
    >>> run_sync(double(21))
    42
    >>> async def in_a_notebook():  # a loop is running here, as in a Jupyter cell: a worker thread runs it
    ...     return run_sync(double(4))
    >>> asyncio.run(in_a_notebook())
    8
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    # A loop is running in this thread (a notebook kernel): asyncio.run would refuse, so use a worker thread.
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task]] = []

    async def main() -> _T:
        running.append((asyncio.get_running_loop(), asyncio.current_task()))  # type: ignore[arg-type]
        return await coro

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, main())
        try:
            return future.result()
        except BaseException:
            # interrupted (a kernel interrupt is a KeyboardInterrupt here): cancel the run, as asyncio.run does on
            # Ctrl-C, rather than wait for it to finish
            for loop, task in running:
                loop.call_soon_threadsafe(task.cancel)
            raise


async def ajudge(answer: str, contexts: Sequence[str], question: str | None = None, *, config: Any = None,
                 repeat: int = 0) -> Verdict:
    """Judge one answer (no cache, nothing stored): the coroutine, for async code.

    Examples
    --------
    A judge needs an endpoint; the ``[judge]`` section is checked before anything is sent:

    >>> import asyncio, inspect, tempfile, pathlib
    >>> inspect.iscoroutinefunction(ajudge)
    True
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text('[judge]\\nmodel = "llama3.1:8b"\\n')
    >>> asyncio.run(ajudge("It opened in 1889.", ["The tower opened in 1889."], config=p))
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [judge]: missing 'base_url' (an OpenAI-compatible endpoint and the
    judge model)
    """
    cfg = judge_config(config)
    body = request_body(cfg, judge_messages(cfg, answer, contexts, question), repeat)
    return reply_verdict(cfg, (await acomplete_many(cfg, [body]))[0])[0]


def judge(answer: str, contexts: Sequence[str], question: str | None = None, *, config: Any = None,
          repeat: int = 0) -> Verdict:
    """Judge one answer (no cache, nothing stored); works in a notebook too.

    Examples
    --------
    Offline, the two ends of the exchange: the request sent for an answer, and the :class:`Verdict` made of a reply.

    >>> cfg = JudgeConfig(base_url="http://localhost:11434/v1", model="llama3.1:8b")
    >>> body = request_body(cfg, judge_messages(cfg, "The tower opened in 1890.", ["The tower opened in 1889."]))
    >>> body["model"], body["response_format"], body["messages"][1]["content"].splitlines()[-2]
    ('llama3.1:8b', {'type': 'json_object'}, 'The tower opened in 1890.')
    >>> parse_verdict('{"claims": [{"claim": "The tower opened in 1890", "supported": false, "reason": "1889"}]}')
    Verdict(score=1.0, label='hallucinated',
            claims=({'text': 'The tower opened in 1890', 'supported': False, 'reason': '1889'},), reason=None)

    The key is read from the environment before any request (``api_key_env`` names the variable):

    >>> judge("It opened in 1889.", ["The tower opened in 1889."],
    ...       config=JudgeConfig(base_url="http://localhost:11434/v1", model="m", api_key_env="WB_EXAMPLE_UNSET_KEY"))
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: arguments [judge]: api_key_env names $WB_EXAMPLE_UNSET_KEY, which is not set
    """
    return run_sync(ajudge(answer, contexts, question, config=config, repeat=repeat))


# ------------------------------------------------------------------------------------------------
# Cost estimate
# ------------------------------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Rough token count: characters / 4 (the usual rule of thumb for English; no tokenizer is downloaded).

    >>> estimate_tokens("x" * 400)
    100
    """
    return (len(text) + 3) // 4


def judge_prices(cfg: JudgeConfig) -> tuple[float | None, float | None, str]:
    """The judge model's price per million input and output tokens, and where it comes from: the ``[judge]`` table's
    ``input_usd_per_mtok`` / ``output_usd_per_mtok``, else genai-prices, else ``(None, None, "unknown cost")`` (a
    local model: said, not guessed). A dry run multiplies its token estimate by these.

    Examples
    --------
    >>> judge_prices(JudgeConfig(base_url="http://localhost:11434/v1", model="llama3.1:8b"))
    (None, None, 'unknown cost')
    >>> judge_prices(JudgeConfig(base_url="http://localhost:11434/v1", model="m", input_usd_per_mtok=0.15,
    ...                          output_usd_per_mtok=0.6))[:2]
    (0.15, 0.6)
    """
    if cfg.input_usd_per_mtok is not None and cfg.output_usd_per_mtok is not None:
        return cfg.input_usd_per_mtok, cfg.output_usd_per_mtok, f"{cfg.source} [judge]"
    try:
        import genai_prices

        p = genai_prices.calc_price(genai_prices.Usage(input_tokens=1_000_000, output_tokens=1_000_000), cfg.model)
        return float(p.input_price), float(p.output_price), "genai-prices"
    except Exception:  # the model is unknown to genai-prices (a local model): say so rather than guess
        return None, None, "unknown cost"


# ------------------------------------------------------------------------------------------------
# Evaluate: answers -> cache -> endpoint -> evals
# ------------------------------------------------------------------------------------------------


def _cache_lookup(db: "Workbench", cfg: JudgeConfig, hashes: list[str]) -> dict[str, Verdict]:
    """The verdicts of the cached replies among ``hashes``; a cached reply that holds no verdict is asked again."""
    if not hashes:
        return {}
    rows = db.duckdb.execute(
        "SELECT request_hash, CAST(response AS VARCHAR) FROM judge_cache WHERE request_hash IN (SELECT unnest(?))",
        [hashes],
    ).fetchall()
    # only chat completions count as hits (an error body cached by an older version is asked again)
    out = {h: json.loads(r) for h, r in rows}
    verdicts = {h: reply_verdict(cfg, Reply(b, None, 0)) for h, b in out.items()
                if isinstance(b, dict) and b.get("choices") and not b.get("error")}
    return {h: v for h, (v, error) in verdicts.items() if error is None}


def _cache_store(db: "Workbench", entries: list[tuple[str, dict, Reply]], model: str) -> None:
    from workbench.eval.run import now

    if not entries:
        return
    ts = now()
    rows = []
    for h, body, reply in entries:
        tin, tout = reply.usage
        rows.append((h, model, json.dumps(body, ensure_ascii=False), json.dumps(reply.body, ensure_ascii=False),
                     tin, tout, ts))
    db.duckdb.executemany(
        "INSERT INTO judge_cache (request_hash, model, request, response, input_tokens, output_tokens, ts) "
        "SELECT ?, ?, ?::JSON, ?::JSON, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM judge_cache WHERE request_hash = ?)",
        [(*r, r[0]) for r in rows],
    )


def _verdict_row(call_id: str, v: Verdict, *, cfg: JudgeConfig, run_id: str, repeat: int, ts: Any, h: str,
                 cached: bool, attempts: int, error: str | None) -> dict:
    from workbench.eval.run import claims_explanation

    claims = [{"text": c["text"], "supported": c["supported"], "support": None, "evidence": None,
               "reason": c["reason"]} for c in v.claims]
    details: dict[str, Any] = {"claims": claims, "request_hash": h, "cached": cached, "attempts": attempts,
                               "model": cfg.model, "base_url": cfg.base_url, "temperature": cfg.temperature}
    if error:
        details["error"] = error  # a failed request or a reply with no verdict: the next run asks again
    expl = v.reason if v.unscorable else claims_explanation(claims, len(claims))
    return {"call_id": call_id, "metric": "hallucination_score", "value": v.score, "label": v.label,
            "evaluator": cfg.evaluator, "evaluator_version": cfg.version, "run_id": run_id, "repeat": repeat,
            "ts": ts, "explanation": expl, "details": json.dumps(details, ensure_ascii=False)}


async def aevaluate(
    db: Any,
    *,
    metric: str = "faithfulness",
    where: Any = None,
    config: Any = None,
    dry_run: bool = False,
    repeat: int = 1,
    progress: bool | None = None,
    batch_rows: int = 256,
) -> dict:
    """Score with the LLM judge the answers it has not scored yet (coroutine; see :func:`evaluate`).

    Examples
    --------
    A dry run sends nothing: it counts what would be asked and estimates the tokens and the cost.

    >>> import asyncio, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
    ...                       "('a', ['The tower opened in 1889.'], 'It opened in 1889.'), ('b', [], 'No context.')")
    >>> cfg = JudgeConfig(base_url="http://localhost:11434/v1", model="llama3.1:8b",
    ...                   input_usd_per_mtok=0.15, output_usd_per_mtok=0.60)
    >>> s = asyncio.run(aevaluate(db, config=cfg, dry_run=True))
    >>> s["to_score"], s["requests"], s["input_tokens_est"], s["output_tokens_est"], s["cost_usd_est"]  # b: no context
    (2, 1, 153, 30, 4.1e-05)
    >>> asyncio.run(aevaluate(db, metric="relevance", config=cfg))
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: judge.evaluate: unknown metric 'relevance'; expected one of faithfulness
    """
    from workbench.db import as_workbench
    from workbench.eval.run import new_run_id, now, pending, progress_bar, stream, summary, write_evals

    if metric not in METRICS:
        raise ParameterError(f"judge.evaluate: unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ParameterError(f"judge.evaluate: repeat must be an integer >= 1, got {repeat!r}")
    db = as_workbench(db)
    cfg = judge_config(config)
    t0 = time.perf_counter()
    todo_by_repeat, total = [], 0
    for r in range(repeat):
        sel, todo = pending(db, where=where, evaluator=cfg.evaluator, version=cfg.version,
                             metric="hallucination_score", repeat=r)
        total += int(sel.count().execute())
        todo_by_repeat.append((r, todo, int(todo.count().execute())))
    n_todo = sum(n for _, _, n in todo_by_repeat)
    base = {"evaluator": cfg.evaluator, "version": cfg.version, "model": cfg.model, "base_url": cfg.base_url}
    run_id = None if dry_run else new_run_id()
    stats = {"scored": 0, "unscorable": 0, "failed": 0, "requests": 0, "cached": 0, "input_tokens": 0,
             "output_tokens": 0}
    est = {"input_tokens": 0, "output_tokens": 0}
    asked: set[str] = set()  # the dry run's distinct requests
    with progress_bar(n_todo, progress if not dry_run else False, f"judge {cfg.model}") as bar:
        for r, todo, _ in todo_by_repeat:
            for rows in stream(db, todo.select("call_id", "question", "contexts", "answer"), batch_rows):
                bodies = [request_body(cfg, judge_messages(cfg, x["answer"] or "", x["contexts"] or [], x["question"]), r)
                          for x in rows]
                hashes = [request_hash(cfg, b, r) for b in bodies]
                # Like the offline detector: nothing to check (empty answer) or nothing to check against (no
                # context) is unscorable without spending a request.
                empty = {i for i, x in enumerate(rows)
                         if not (x["answer"] or "").strip() or not any((c or "").strip() for c in x["contexts"] or [])}
                hits = _cache_lookup(db, cfg, [hh for i, hh in enumerate(hashes) if i not in empty])
                stats["cached"] += len(hits)
                misses = [i for i, hh in enumerate(hashes) if hh not in hits and i not in empty]
                # one request per distinct request: the same answer logged twice is asked once
                copies = Counter(hashes[i] for i in misses)
                first: dict[str, int] = {}
                for i in misses:
                    first.setdefault(hashes[i], i)
                if dry_run:
                    stats["empty"] = stats.get("empty", 0) + len(empty)
                    for hh, i in first.items():
                        if hh in asked:
                            continue
                        asked.add(hh)
                        est["input_tokens"] += sum(estimate_tokens(m["content"]) for m in bodies[i]["messages"])
                        # the reply restates each claim with a short reason: about the answer's length plus overhead
                        est["output_tokens"] += 20 + 2 * estimate_tokens(rows[i]["answer"] or "")
                    continue
                ask = list(first)
                answered: dict[str, Reply] = {}

                def done(k: int, rep: Reply, ask: list[str] = ask, answered: dict[str, Reply] = answered,
                         copies: Counter = copies) -> None:
                    answered[ask[k]] = rep
                    bar.update(copies[ask[k]])

                try:
                    if ask:
                        await acomplete_many(cfg, [bodies[first[hh]] for hh in ask], on_done=done)
                finally:
                    # Interrupted or not, what was answered is cached and written; the rest is asked by the next run.
                    stats["requests"] += sum(rep.attempts for rep in answered.values())
                    for rep in answered.values():
                        tin, tout = rep.usage
                        stats["input_tokens"] += tin or 0
                        stats["output_tokens"] += tout or 0
                    verdicts = {hh: reply_verdict(cfg, rep) for hh, rep in answered.items()}
                    # only a reply with a verdict is kept: one without would be read from the cache, unscorable, for
                    # good
                    _cache_store(db, [(hh, bodies[first[hh]], rep) for hh, rep in answered.items()
                                      if verdicts[hh][1] is None], cfg.model)
                    ts, out = now(), []
                    for i, x in enumerate(rows):
                        if i in empty:
                            reason = ("empty answer" if not (x["answer"] or "").strip()
                                      else "no context to check against")
                            v, cached, attempts, error = Verdict(None, "unscorable", reason=reason), False, 0, None
                            bar.update(1)
                        elif hashes[i] in answered:
                            v, error = verdicts[hashes[i]]
                            cached, attempts = False, answered[hashes[i]].attempts
                        elif hashes[i] in hits:
                            v = hits[hashes[i]]
                            cached, attempts, error = True, 0, None
                            bar.update(1)
                        else:  # not answered: the run was interrupted
                            continue
                        out.append(_verdict_row(x["call_id"], v, cfg=cfg, run_id=run_id, repeat=r, ts=ts,
                                                h=hashes[i], cached=cached, attempts=attempts, error=error))
                        stats["failed"] += error is not None
                        stats["unscorable" if v.unscorable else "scored"] += 1
                    write_evals(db, out)
    pin, pout, price_source = judge_prices(cfg)
    seconds = round(time.perf_counter() - t0, 3)
    if dry_run:
        cost = (est["input_tokens"] * pin + est["output_tokens"] * pout) / 1e6 if pin is not None else None
        return summary({**base, "run_id": None, "dry_run": True, "to_score": n_todo, "skipped": total - n_todo,
                "cached": stats["cached"], "requests": len(asked),
                "input_tokens_est": est["input_tokens"], "output_tokens_est": est["output_tokens"],
                "cost_usd_est": None if cost is None else round(cost, 6), "price_source": price_source,
                "token_estimate": "characters / 4", "seconds": seconds})
    cost = (stats["input_tokens"] * pin + stats["output_tokens"] * pout) / 1e6 if pin is not None else None
    return summary({**base, "run_id": run_id, "scored": stats["scored"], "skipped": total - n_todo,
            "unscorable": stats["unscorable"], "failed": stats["failed"], "cached": stats["cached"],
            "requests": stats["requests"], "input_tokens": stats["input_tokens"],
            "output_tokens": stats["output_tokens"], "cost_usd": None if cost is None else round(cost, 6),
            "price_source": price_source, "seconds": seconds})


def evaluate(db: Any, *, metric: str = "faithfulness", where: Any = None, config: Any = None, dry_run: bool = False,
             repeat: int = 1, progress: bool | None = None, batch_rows: int = 256) -> dict:
    """Score with the LLM judge the answers (x ``repeat``) it has not scored yet; write ``evals`` and the cache.

    Parameters
    ----------
    db : Workbench or path
    metric : str
        ``faithfulness`` (the only judge metric so far).
    where : mapping or list of "col=value", optional
        Filter on answers joined to calls.
    config : path, Config or JudgeConfig, optional
        ``[judge]`` of ``workbench.toml``.
    dry_run : bool
        Estimate requests, tokens (characters / 4) and cost of what is not cached; send and write nothing.
    repeat : int
        Score each answer k times (``evals.repeat`` 0..k-1; seeds ``seed + r``).
    progress : bool, optional
        tqdm bar; default only on a terminal.
    batch_rows : int
        Answers read, sent and written per batch.

    Returns
    -------
    dict
        ``evaluator`` (``judge:<model>``), ``version``, ``run_id``, ``scored``, ``skipped`` (already scored),
        ``unscorable`` (of which ``failed``: requests that failed after all retries, and replies with no verdict --
        a refusal, a tool call, a filtered or cut reply -- each asked again by the next run), ``cached`` (answered from the
        cache), ``requests`` (HTTP requests sent, retries included), reported ``input_tokens``/``output_tokens``,
        ``cost_usd`` (None when the price is unknown), ``seconds``. A dry run: ``to_score``, ``requests``,
        ``input_tokens_est``, ``output_tokens_est``, ``cost_usd_est``, ``price_source``.

    Examples
    --------
    An answer whose request is in the cache is scored without a request; one without context is unscorable without
    one. Nothing is sent here:

    >>> import json, workbench as wb
    >>> db = wb.connect(":memory:")
    >>> _ = db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
    ...                       "('a', ['The tower opened in 1889.'], 'It opened in 1889.'), ('b', [], 'No context.')")
    >>> cfg = JudgeConfig(base_url="http://localhost:11434/v1", model="llama3.1:8b",
    ...                   input_usd_per_mtok=0.15, output_usd_per_mtok=0.60)
    >>> evaluate(db, config=cfg, dry_run=True)["requests"]  # what a run would send
    1
    >>> body = request_body(cfg, judge_messages(cfg, "It opened in 1889.", ["The tower opened in 1889."]))
    >>> verdict = '{"claims": [{"claim": "It opened in 1889", "supported": true}]}'
    >>> reply = {"choices": [{"message": {"content": verdict}}]}
    >>> _ = db.duckdb.execute("insert into judge_cache (request_hash, model, request, response) values (?, ?, ?, ?)",
    ...                       [request_hash(cfg, body), cfg.model, json.dumps(body), json.dumps(reply)])
    >>> s = evaluate(db, config=cfg, progress=False)
    >>> s["scored"], s["unscorable"], s["cached"], s["requests"]
    (1, 1, 1, 0)
    >>> db.sql("select call_id, value, label, explanation from evals order by call_id").rows()
    [('a', 0.0, 'supported', 'all 1 claims supported'), ('b', None, 'unscorable', 'no context to check against')]
    """
    return run_sync(aevaluate(db, metric=metric, where=where, config=config, dry_run=dry_run, repeat=repeat,
                              progress=progress, batch_rows=batch_rows))
