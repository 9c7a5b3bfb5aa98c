"""Writing a file a command produces: never over its own input, never half-written.

:func:`same_file` says whether two paths name one file (a relative path, a symbolic link or a hard link to it);
:func:`written_atomically` writes to a temporary file beside the destination and renames it into place only when the
writing finished, so an interrupted run (an error, Ctrl-C, a full disk) leaves the previous file as it was.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with written_atomically(d / "out.txt") as fh:
...     _ = fh.write("done\\n")
>>> (d / "out.txt").read_text(), same_file(d / "out.txt", d / "." / "out.txt"), same_file(d / "out.txt", d / "x")
('done\\n', True, False)
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from workbench.errors import MissingFileError, ParameterError


def _umask() -> int:
    """The process's file mode mask, read without changing it (``os.umask`` can only set it, which would race with
    other threads creating files); 0o022 where the system does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode when both exist, else the same resolved path."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
        return pa.resolve() == pb.resolve()
    except OSError:
        return False


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike, *, encoding: str | None = "utf-8",
                       into_special: bool = False) -> Iterator[IO[Any]]:
    """A file opened for writing that replaces ``path`` in one rename when the block ends without an error: text in
    ``encoding``, or bytes with ``encoding=None``.

    On an error (or ``KeyboardInterrupt``) the temporary file is removed and ``path`` keeps what it held before.
    With ``into_special`` (a path the user named: ``--out``), a ``path`` that is a pipe or a device (``/dev/stdout``, a
    named pipe), itself or through a link, is written into as it is: there is nothing to replace, and a rename would put
    a regular file in its place. Without it (a path the workbench derives, in a folder others may write to) a link
    found there is replaced, never followed.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "scores.jsonl"
    >>> _ = p.write_text("before\\n")
    >>> try:
    ...     with written_atomically(p) as fh:
    ...         _ = fh.write("half")
    ...         raise RuntimeError("stopped")
    ... except RuntimeError:
    ...     pass
    >>> p.read_text(), [q.name for q in p.parent.iterdir()]
    ('before\\n', ['scores.jsonl'])
    """
    dest = Path(path)
    if not dest.parent.is_dir():
        raise MissingFileError(f"{dest}: no folder {dest.parent} to write it in")
    if dest.is_dir():
        raise ParameterError(f"{dest}: is a folder; name a file to write")
    try:
        special = into_special and not stat.S_ISREG(dest.stat().st_mode)  # (through links: /dev/stdout is one)
    except OSError:
        special = False  # no such file yet (or a dangling link): a new one, as below
    if special:  # a pipe or a device (`--out /dev/stdout`): written into; a rename would replace it by a regular file
        with open(dest, "wb") if encoding is None else open(dest, "w", encoding=encoding) as fh:
            yield fh
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with (os.fdopen(fd, "wb") if encoding is None else os.fdopen(fd, "w", encoding=encoding)) as fh:
            yield fh
        if dest.exists():  # keep the mode the file had (mkstemp makes it private to the user)
            os.chmod(tmp, dest.stat().st_mode & 0o7777)
        else:  # as open() would have made it
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


#: Fault-injection hook for tests: ``WORKBENCH_REPORT_PAUSE="stage:seconds"`` sleeps at that stage of
#: :func:`workbench.reports.publish.run_report` (``execute``, ``html``, ``publish``, ``archive``) or of
#: :func:`workbench.reports.index.build_index` (``index``) so a test can kill the process there, or act meanwhile.
PAUSE_ENV = "WORKBENCH_REPORT_PAUSE"


def pause(stage: str) -> None:
    """Sleep at ``stage`` when :data:`PAUSE_ENV` names it (``"stage:seconds"``), saying so on standard error.

    >>> pause("publish")  # the variable is not set: no pause
    """
    spec = os.environ.get(PAUSE_ENV, "")
    at, _, seconds = spec.partition(":")
    if at == stage:
        import sys
        import time

        print(f"run_report: paused at {stage}", file=sys.stderr, flush=True)
        time.sleep(float(seconds or 60))


@contextlib.contextmanager
def flock(path: str | os.PathLike, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if needed); yields False when ``wait`` is False and another live
    process holds it. The kernel drops the lock when its holder dies, however it dies (kill -9 included).

    >>> import pathlib, tempfile
    >>> lock = pathlib.Path(tempfile.mkdtemp()) / ".lock"
    >>> with flock(lock) as held:
    ...     with flock(lock, wait=False) as again:  # another open of the file: refused while the first holds it
    ...         held, again
    (True, False)
    """
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
