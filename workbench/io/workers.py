"""Work of ingest spread over every core: worker processes that each take one piece of a file at a time.

Parsing in Python (the record formats of :mod:`workbench.io.sniff`, protobuf OTLP of :mod:`workbench.io.otlp_proto`)
runs on one core; DuckDB's own readers use them all. :func:`ordered_map` hands the pieces of a file to worker
processes and gives their results back in the file's order, at most one piece per worker at a time (memory holds a
few pieces, not the file).

The workers are fresh interpreters running this module (``python -m workbench.io.workers``), talking over their
stdin and stdout, not :mod:`multiprocessing`: a user's script without an ``if __name__ == "__main__"`` guard is not
imported again in them, and nothing is forked from a process that holds DuckDB's threads. A request is a task name
(:func:`task`), a JSON header and the piece's bytes; the reply the result's bytes, or the traceback of the
error, which the caller raises.

Examples
--------
>>> list(ordered_map("echo", [({}, b"a"), ({}, b"b"), ({}, b"c")], workers=2))
[b'a', b'b', b'c']
"""

from __future__ import annotations

import importlib
import itertools
import os
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import orjson

from workbench.errors import ParameterError


#: At most this many workers, however many cores: each holds an interpreter and a piece (about 200 MB when mapping
#: LiteLLM records), and the process taking their results is the limit past a few.
MAX_WORKERS = 8


#: Environment variable: how many worker processes ingest starts (``1``: none, everything parsed in this process).
WORKERS_ENV = "WORKBENCH_INGEST_WORKERS"


def default_workers() -> int:
    """Workers to start: ``$WORKBENCH_INGEST_WORKERS`` when set, else the cores this process may run on (its CPU
    affinity, which a container's cpuset or ``taskset`` narrows, where ``os.cpu_count()`` counts the whole
    machine's), at most :data:`MAX_WORKERS`. 1 means no worker: the work is done in this process.

    >>> 1 <= default_workers()
    True
    """
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ParameterError(f"${WORKERS_ENV} must be a whole number of worker processes, 1 or more (1: none, "
                                 f"parse in this process), got {raw!r}")
        return int(raw)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def echo(data: bytes) -> bytes:
    """The task that gives its bytes back (for tests and the example).

    Examples
    --------
    >>> echo(b"abc"), task("echo") is echo
    (b'abc', True)
    """
    return data


def task(name: str) -> Callable[..., bytes]:
    """The function a task names, ``"module:function"`` of the workbench package, called with the request's bytes
    and its header's items as keywords, returning the result's bytes; ``"echo"`` is :func:`echo`. The modules are
    imported by name, in the worker: this module imports none of those that use it.

    >>> task("echo")(b"x")
    b'x'
    """
    if name == "echo":
        return echo
    module, _, fn = name.partition(":")
    if not module.startswith("workbench.") or not fn:
        raise KeyError(f"workers: a task is 'workbench.<module>:<function>', not {name!r}")
    return getattr(importlib.import_module(module), fn)

# A request: header length and data length (">IQ"), the header (JSON, with the task under "task"), the data. A reply:
# b"t" and the result, or b"e" and the error's traceback, each after its length (">Q").
_REQUEST = struct.Struct(">IQ")
_LENGTH = struct.Struct(">Q")
_ARGS = ("-m", "workbench.io.workers")


def _read_exactly(fh: BinaryIO, n: int) -> bytes | None:
    data = fh.read(n)
    return data if len(data) == n else None


class _Worker:
    """One worker process, one request at a time."""

    def __init__(self) -> None:
        # the same package, wherever this process imported it from
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen([sys.executable, *_ARGS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)

    def send(self, task: str, header: dict, data: bytes) -> None:
        head = orjson.dumps({**header, "task": task})
        try:
            self.proc.stdin.write(_REQUEST.pack(len(head), len(data)) + head)
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:  # it has ended
            raise WorkerStopped(f"an ingest worker process stopped (exit status {self.proc.wait()})") from None

    def receive(self) -> bytes:
        head = _read_exactly(self.proc.stdout, 1 + _LENGTH.size)
        payload = None if head is None else _read_exactly(self.proc.stdout, _LENGTH.unpack(head[1:])[0])
        if payload is None:
            raise WorkerStopped(f"an ingest worker process stopped (exit status {self.proc.wait()})")
        if head[:1] != b"t":
            raise RuntimeError("an ingest worker process failed:\n" + payload.decode("utf-8", "replace"))
        return payload

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # a worker ends at the end of its input
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class WorkerStopped(RuntimeError):
    """A worker process ended without answering.

    Examples
    --------
    A :class:`RuntimeError`, as a worker's failure is: a caller of :func:`ordered_map` catches both at once.

    >>> try:
    ...     raise WorkerStopped("an ingest worker process stopped (exit status -9)")
    ... except RuntimeError as exc:
    ...     print(type(exc).__name__, exc)
    WorkerStopped an ingest worker process stopped (exit status -9)
    """


_END = object()


def ordered_map(name: str, pieces: Iterable[tuple[dict, bytes]], workers: int) -> Iterator[bytes]:
    """The results of the task ``name`` (:func:`task`) on each ``(header, bytes)`` piece, in order, computed by
    ``workers`` processes.

    Each worker is handed its next piece as soon as it returns a result (before the caller takes that result), so
    the workers go on while the caller works. The first result is awaited here: when the workers cannot run at all
    (no interpreter to start, or one that ends without answering: a frozen or embedded Python, say) this raises
    :class:`OSError` before any result, and the caller does the work itself. Later, a worker that fails raises
    :class:`RuntimeError` with its traceback, one that stops :class:`WorkerStopped` with its exit status.

    Examples
    --------
    >>> list(ordered_map("echo", (({}, bytes([65 + i])) for i in range(5)), workers=2))  # in order, whoever did it
    [b'A', b'B', b'C', b'D', b'E']
    >>> ordered_map("os:system", [({}, b"")], workers=2)  # checked before any worker starts
    Traceback (most recent call last):
    ...
    KeyError: "workers: a task is 'workbench.<module>:<function>', not 'os:system'"
    """
    task(name)  # a name that is no task fails here, not in the workers
    started: list[_Worker] = []
    try:
        for _ in range(max(1, workers)):
            started.append(_Worker())
        results = _results(name, iter(pieces), started)
        first = next(results, _END)
    except (OSError, WorkerStopped) as exc:  # (the generator has closed the workers it started)
        for w in started:
            w.close()
        raise OSError(f"ingest worker processes cannot run here: {exc}") from None
    return itertools.chain(() if first is _END else (first,), results)


def _results(name: str, it: Iterator[tuple[dict, bytes]], started: list[_Worker]) -> Iterator[bytes]:
    try:
        busy: deque[_Worker] = deque()
        for w in started:
            piece = next(it, None)
            if piece is None:
                break
            w.send(name, *piece)
            busy.append(w)
        while busy:
            w = busy.popleft()
            result = w.receive()
            piece = next(it, None)  # its next piece before this result is handed over: it works meanwhile
            if piece is not None:
                w.send(name, *piece)
                busy.append(w)
            yield result
    finally:
        for w in started:
            w.close()


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """A worker's loop: do each request's task until the input ends.

    Examples
    --------
    A request is its header's and data's lengths (``>IQ``), the JSON header naming the task, the data; a reply is
    ``t`` (``e`` for an error), a length (``>Q``) and the result (the error's traceback):

    >>> import io, struct
    >>> def request(task, data):
    ...     head = b'{"task": "%s"}' % task.encode()
    ...     return struct.pack(">IQ", len(head), len(data)) + head + data
    >>> out = io.BytesIO()
    >>> serve(io.BytesIO(request("echo", b"hi") + request("no-such-task", b"")), out)
    >>> reply = out.getvalue()
    >>> reply[:1], struct.unpack(">Q", reply[1:9]), reply[9:11]
    (b't', (2,), b'hi')
    >>> print(reply[11:12].decode(), reply[20:].decode().splitlines()[-1])  # the second request's traceback
    e KeyError: "workers: a task is 'workbench.<module>:<function>', not 'no-such-task'"
    """
    import traceback

    while (head := _read_exactly(inp, _REQUEST.size)) is not None:
        header_len, data_len = _REQUEST.unpack(head)
        header: dict[str, Any] = orjson.loads(inp.read(header_len))
        data = inp.read(data_len)
        try:
            status, payload = b"t", task(header.pop("task"))(data, **header)
        except Exception:
            status, payload = b"e", traceback.format_exc().encode("utf-8")
        out.write(status + _LENGTH.pack(len(payload)))
        out.write(payload)
        out.flush()


if __name__ == "__main__":  # a worker of ordered_map
    serve(sys.stdin.buffer, sys.stdout.buffer)
