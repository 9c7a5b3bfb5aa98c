"""A local stand-in for an OpenAI-compatible endpoint, for the judge and ragas tests.

A real HTTP server on 127.0.0.1 (random port) speaking the chat completions protocol: ``POST /v1/chat/completions``
with a JSON body, answered with a ``chat.completion`` object and token usage. Nothing in the code under test is patched:
the judge talks to it over a socket exactly as it would talk to a hosted model, vLLM or Ollama.

Replies are deterministic functions of the request:

* the workbench faithfulness judge (the prompt holds ``<answer>...</answer>``): each sentence of the answer is one
  claim; a claim is unsupported when it contains ``UNSUPPORTED``, or ``FLAKY`` and the request's ``seed`` is odd;
  an answer containing ``GARBAGE`` gets a reply that is not JSON, one containing ``NOCLAIMS`` an empty claim list;
* ragas's statement generator prompt: the statements are the sentences of the answer;
* ragas's NLI (faithfulness verdict) prompt: verdict 0 for a statement containing ``UNSUPPORTED``, else 1.

Failure injection, for retries and timeouts: ``fail_statuses`` (a list of HTTP statuses served to the next requests,
one each), ``sleep_s`` (delay every reply; a client timeout shorter than it times out), ``garbage`` (every reply is
unparseable), ``trickle_s`` (send the reply one byte at a time, this many seconds apart: a slow-loris server),
``raw_replies`` (a list of raw HTTP 200 bodies served to the next requests, one each, e.g. an ``{"error": ...}`` body)
and ``pad_bytes`` (pad every reply with this many bytes: an oversized reply). An item of ``raw_replies`` may also be
``(status, headers, body)``, or ``(status, headers, body, "reset")`` to reset the connection after sending the body;
a ``Content-Length`` in ``headers`` larger than the body closes the connection mid-body. ``requests`` holds every request body received, in order, ``headers`` their HTTP headers, and
``max_inflight`` the most requests served at the same time.

>>> with FakeOpenAI() as fake:
...     import json, urllib.request
...     body = {"model": "m", "messages": [{"role": "user", "content": "<answer>A. B UNSUPPORTED.</answer>"}]}
...     req = urllib.request.Request(fake.base_url + "/chat/completions", json.dumps(body).encode(),
...                                  {"Content-Type": "application/json"})
...     reply = json.load(urllib.request.urlopen(req))
>>> json.loads(reply["choices"][0]["message"]["content"])["claims"][1]["supported"]
False
>>> fake.count
1
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_SENT = re.compile(r"(?<=[.!?])\s+")
_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.S)
# ragas BasePrompt.to_string ends with "input: {json}\nOutput: "
_RAGAS_INPUT = re.compile(r"input:\s*(\{.*\})\s*Output:\s*$", re.S)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text.strip()) if s.strip()]


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as fake:`` (or ``start()`` / ``stop()``); ``fake.base_url`` ends in ``/v1``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_statuses: list[int] = []
        self.sleep_s: float = 0.0
        self.garbage: bool = False
        self.trickle_s: float = 0.0
        self.raw_replies: list[bytes] = []
        self.pad_bytes: int = 0
        self.headers: list[dict] = []
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(400, {"error": {"message": "body is not JSON"}})
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                    status = fake.fail_statuses.pop(0) if fake.fail_statuses else 200
                    raw_reply = fake.raw_replies.pop(0) if fake.raw_replies else None
                    fake.inflight += 1
                    fake.max_inflight = max(fake.max_inflight, fake.inflight)
                try:
                    if isinstance(raw_reply, tuple):
                        return self._send_raw(*raw_reply)
                    if raw_reply is not None:
                        return self._send_bytes(200, raw_reply)
                    self._answer(body, status)
                finally:
                    with fake._lock:
                        fake.inflight -= 1

            def _answer(self, body: dict, status: int) -> None:
                if fake.sleep_s:
                    time.sleep(fake.sleep_s)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if status != 200:
                    return self._send(status, {"error": {"message": f"injected {status}", "type": "test"}})
                content = fake.reply(body)
                prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
                self._send(200, {
                    **({"padding": "x" * fake.pad_bytes} if fake.pad_bytes else {}),
                    "id": f"chatcmpl-{len(fake.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop", "logprobs": None}],
                    "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(content) // 4,
                              "total_tokens": prompt_chars // 4 + len(content) // 4},
                })

            def _send_raw(self, status: int, headers: dict, data: bytes, end: str = "") -> None:
                self.send_response(status)
                headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if end == "reset" or int(headers["Content-Length"]) > len(data):
                    self.close_connection = True
                    if end == "reset":  # RST, not FIN: SO_LINGER on with a zero timeout
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()

            def _send(self, status: int, payload: dict) -> None:
                self._send_bytes(status, json.dumps(payload).encode())

            def _send_bytes(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if fake.trickle_s:
                        self.wfile.flush()
                        for i in range(len(data)):
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(fake.trickle_s)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.fail_statuses.clear()
            self.max_inflight = 0
        self.sleep_s = 0.0
        self.garbage = False
        self.trickle_s = 0.0
        self.raw_replies = []
        self.pad_bytes = 0

    # -- replies ---------------------------------------------------------------------------------
    def reply(self, body: dict) -> str:
        if self.garbage:
            return "I think the answer is mostly fine."
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")
        m = _ANSWER.search(text)
        if m:
            return self._judge(m.group(1), body.get("seed"))
        m = _RAGAS_INPUT.search(text)
        if m:
            data = json.loads(m.group(1))
            if "Break down each sentence" in text:
                return json.dumps({"statements": sentences(data["answer"])})
            if "judge the faithfulness of a series of statements" in text:
                return json.dumps({"statements": [
                    {"statement": s, "reason": "not in context" if "UNSUPPORTED" in s else "stated in context",
                     "verdict": 0 if "UNSUPPORTED" in s else 1}
                    for s in data["statements"]
                ]})
        return json.dumps({"error": "prompt not recognised by the fake server"})

    @staticmethod
    def _judge(answer: str, seed) -> str:
        if "GARBAGE" in answer:
            return "Sure! Here is my analysis: the answer looks {mostly right"
        if "NOCLAIMS" in answer:
            return json.dumps({"claims": []})
        odd = isinstance(seed, int) and seed % 2 == 1
        claims = []
        for s in sentences(answer):
            bad = "UNSUPPORTED" in s or ("FLAKY" in s and odd)
            claims.append({"claim": s, "supported": not bad,
                           "reason": "the contexts do not say this" if bad else "stated in the contexts"})
        return json.dumps({"claims": claims})
