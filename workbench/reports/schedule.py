"""Scheduled publishing a platform team can run unattended: ``workbench schedule run`` from cron or a systemd timer.

* :func:`run` publishes every report whose period has ended, has data and is not yet published: after downtime it
  catches up the missed periods (at most ``max_catchup`` per report, oldest first). One run at a time (a lock file
  in the reports folder); a database locked by another process is retried a few times before the run gives up.
* Every attempt is recorded in ``<reports>/runs.jsonl`` (report, period, start, end, status, error, duration);
  :func:`status` shows the last run of each report, what is due, failures and data staleness (how old the newest
  call is: product events that keep arriving do not make stopped LLM calls fresh).
* A failed report, or an SLO/budget check that fires, is notified through ``[notify]`` in ``workbench.toml``:
  ``command = "..."`` (run with the message as JSON on standard input) and/or ``webhook = "http://..."`` (POSTed).
  A fired check's message names what fired (feature, SLI and severity; feature and budget status). Every alert (a
  fired check, stale data) is recorded in ``runs.jsonl`` too, as ``failed`` with why when a channel failed (an HTTP
  error, a command that exits non-zero or times out) or none is set; the run then exits non-zero (:func:`exit_code`).
  A check that cannot run (a broken ``[slo.*]`` table), or a database the run cannot open (held by another writer
  past the lock wait), is notified and recorded as failed, and the run exits 2.
* :func:`export` prints crontab lines or systemd units (``Persistent=true``) that call ``schedule run``, with absolute,
  shell-quoted paths; cron expressions are validated with croniter.

Settings (all optional)::

    [schedule]
    cron = "0 6 * * *"        # when `schedule run` is started (default: every day at 06:00 UTC)
    period = "week"           # week | month | day: the period each report covers
    max_catchup = 8           # missed periods published per report and run, newest kept
    stale_after_hours = 48    # no new call for this long is notified as stale data
    reports = ["scorecard", "cost"]   # default: every report notebook

>>> due_periods("week", newest=dt.datetime(2026, 11, 22, 23), now=dt.datetime(2026, 11, 24), published=set(), max_catchup=2)
['2026-W46', '2026-W47']
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.errors import EXIT_CHECK, ConfigError, InputError, MissingFileError, ParameterError, first_line
from workbench.schema import utc_now

__all__ = ["due_periods", "run", "status", "export", "notify", "exit_code", "line", "crontab", "RUNS_FILE", "LOCK_FILE",
           "ScheduleBusy"]

RUNS_FILE = "runs.jsonl"
LOCK_FILE = ".schedule.lock"
DEFAULT_CRON = "0 6 * * *"
#: Seconds a cell of a scheduled report may run ([schedule] cell_timeout): past it the report fails, is recorded and
#: notified, and the run goes on. Without it a cell that never ends held the run, and its lock, for ever.
DEFAULT_CELL_TIMEOUT = 1800
KINDS = ("week", "month", "day")
SCHEDULE_KEYS = ("cron", "period", "max_catchup", "stale_after_hours", "reports", "cell_timeout")
NOTIFY_KEYS = ("command", "webhook")


class ScheduleBusy(InputError):
    """Another ``schedule run`` holds the lock: this one does nothing (exit 2).

    Examples
    --------
    >>> import fcntl, pathlib, tempfile
    >>> import workbench as wb
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> wb.connect(tmp / "w.duckdb").close()
    >>> with open(tmp / LOCK_FILE, "a") as held:
    ...     fcntl.flock(held, fcntl.LOCK_EX)  # as a run in progress holds it
    ...     run(tmp / "w.duckdb", out=tmp)
    Traceback (most recent call last):
    ...
    workbench.reports.schedule.ScheduleBusy: schedule run: another run holds .../.schedule.lock; nothing done
    >>> issubclass(ScheduleBusy, InputError), ScheduleBusy.exit_code
    (True, 2)
    """


def _settings(config: Any) -> dict[str, Any]:
    from workbench.config import load_config

    # no file found is an empty Config; a file that cannot be read ($WORKBENCH_CONFIG naming none, not TOML) is an
    # error, as for `workbench slo`: read as "none found", it exported a line without --config and notified nobody
    cfg = load_config(config)
    sec = dict(cfg.section("schedule") or {})
    notify_ = dict(cfg.section("notify") or {})
    # a misspelt key (webhook_url, stale_after_hour) was a setting silently not set: every notice dropped
    cfg.refuse_unknown(sec, "schedule", SCHEDULE_KEYS)
    cfg.refuse_unknown(notify_, "notify", NOTIFY_KEYS)
    hook = notify_.get("webhook")
    if hook is not None and (not isinstance(hook, str) or not re.match(r"https?://[^/\s]", hook)):
        raise ConfigError(f"{cfg.where('notify')}: webhook = {hook!r}; expected an http:// or https:// URL")
    cmd = notify_.get("command")
    if cmd is not None and not ((isinstance(cmd, str) and cmd.strip()) or (
            isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd))):
        raise ConfigError(f"{cfg.where('notify')}: command = {cmd!r}; expected a command line, or a list of its words")
    if isinstance(cmd, str):
        try:  # as _send splits it: an unclosed quote raised there, mid-run, with nothing notified or recorded
            shlex.split(cmd)
        except ValueError as exc:
            raise ConfigError(f"{cfg.where('notify')}: command = {cmd!r} is not a command line: {exc}") from None
    names = sec.get("reports")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise ConfigError(f"{cfg.where('schedule')}: reports = {names!r}; expected a list of report names, "
                          f"e.g. [\"scorecard\", \"cost\"]")
    if names is not None:  # a misspelt one failed on every run, for every due period, each failure notified
        from workbench.errors import UnknownNameError
        from workbench.reports.publish import available

        known = available()
        for n in names:
            if n not in known:
                raise ConfigError(f"{cfg.where('schedule')}: reports = {names!r}: {UnknownNameError('report', n, known)}")
    if "stale_after_hours" in sec:
        cfg.number(sec, "stale_after_hours", "schedule")
        if not sec["stale_after_hours"] > 0:
            raise ConfigError(f"{cfg.where('schedule')}: stale_after_hours = {sec['stale_after_hours']!r}; "
                              f"expected hours, a number > 0")
    out = {"cron": sec.get("cron", DEFAULT_CRON), "period": sec.get("period", "week"),
           "max_catchup": sec.get("max_catchup", 8), "reports": sec.get("reports"), "notify": notify_,
           "stale_after_hours": sec.get("stale_after_hours", 48),
           "cell_timeout": sec.get("cell_timeout", DEFAULT_CELL_TIMEOUT),
           "config_name": str(cfg.path) if cfg.path else "workbench.toml (none found)",
           "config_path": Path(cfg.path).absolute() if cfg.path else None}
    from croniter import croniter

    if not isinstance(out["cron"], str) or not croniter.is_valid(out["cron"]):
        raise ConfigError(f"{cfg.where('schedule')}: cron = {out['cron']!r} is not a valid cron expression, e.g. \"0 6 * * *\"")
    if out["period"] not in KINDS:
        raise ConfigError(f"{cfg.where('schedule')}: period = {out['period']!r}; expected one of {', '.join(KINDS)}")
    if not isinstance(out["max_catchup"], int) or isinstance(out["max_catchup"], bool) or out["max_catchup"] < 1:
        raise ConfigError(f"{cfg.where('schedule')}: max_catchup = {out['max_catchup']!r}; expected a whole number >= 1")
    t = out["cell_timeout"]
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0:
        raise ConfigError(f"{cfg.where('schedule')}: cell_timeout = {t!r}; expected seconds, a number > 0")
    return out


def _label(kind: str, d: dt.date) -> str:
    if kind == "week":
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    if kind == "month":
        return f"{d.year}-{d.month:02d}"
    return d.isoformat()


def due_periods(kind: str, *, newest: dt.datetime | None, now: dt.datetime, published: set[str], max_catchup: int = 8,
                oldest: dt.datetime | None = None, days: Iterable[dt.date] | None = None) -> list[str]:
    """Periods of ``kind`` that have ended by ``now``, lie within the data (``oldest`` .. ``newest``), hold data (a
    day of ``days``, the days with a call or an event; None: every period does), and are not in ``published``; the
    newest ``max_catchup`` of them, oldest first.

    A period without data is never due: its report would fail ("no data for ...") on every run, and be notified.

    Examples
    --------
    Data from mid September to 22 November; on 2 December, October already published:

    >>> due_periods("month", newest=dt.datetime(2026, 11, 22), now=dt.datetime(2026, 12, 2), published={"2026-10"},
    ...             oldest=dt.datetime(2026, 9, 15))
    ['2026-09', '2026-11']

    Calls on weekdays only: a weekend day is not due.

    >>> due_periods("day", newest=dt.datetime(2026, 11, 23, 18), now=dt.datetime(2026, 11, 24), published=set(),
    ...             max_catchup=3, days=[dt.date(2026, 11, 20), dt.date(2026, 11, 23)])
    ['2026-11-20', '2026-11-23']
    """
    from workbench.reports.publish import resolve_period

    if kind not in KINDS:
        raise ParameterError(f"due_periods: kind {kind!r}; expected one of {', '.join(KINDS)}")
    if newest is None:
        return []
    label = _label(kind, min(newest, now).date())
    held = None if days is None else {_label(kind, d) for d in days}
    out: list[str] = []
    from workbench.reports.index import neighbour

    for _ in range(max_catchup + 60):
        start, end, _l = resolve_period(label)
        if oldest is not None and end <= oldest:
            break
        if end <= now and start <= newest and label not in published and (held is None or label in held):
            out.append(label)
            if len(out) >= max_catchup:
                break
        prev = neighbour(label, -1)
        if prev is None:
            break
        label = prev
        if resolve_period(label)[1] <= newest - dt.timedelta(days=400):
            break
    return sorted(out, key=lambda p: resolve_period(p)[0])


def _published(out: Path, name: str) -> set[str]:
    from workbench.reports.index import published

    return {r["period"] for r in published(out) if r["report"] == name}


def _span(db: str) -> tuple[dt.datetime | None, dt.datetime | None, set[dt.date]]:
    """Oldest and newest timestamp of calls and events, and the days that hold one (what
    :func:`~workbench.reports.publish.require_data` counts as data)."""
    from workbench.db import connect

    def clean(vals: list) -> list:
        return [v.to_pydatetime() if hasattr(v, "to_pydatetime") else v for v in vals if v is not None and v == v]

    with connect(db, read_only=True) as w:
        lo = clean([w.calls.ts.min().execute(), w.events.ts.min().execute()])
        hi = clean([w.calls.ts.max().execute(), w.events.ts.max().execute()])
        days = {d for (d,) in w.duckdb.execute("select distinct cast(ts as date) from calls where ts is not null union "
                                               "select distinct cast(ts as date) from events where ts is not null").fetchall()}
    return (min(lo) if lo else None), (max(hi) if hi else None), days


def _newest_call(db: str, now: dt.datetime) -> dt.datetime | None:
    """The newest call up to ``now``: what stale data means here and in a report's staleness note alike."""
    from workbench.db import connect
    from workbench.reports.attention import newest_call

    with connect(db, read_only=True) as w:
        return newest_call(w, now=now)


class _Lock:
    def __init__(self, path: Path):
        self.path, self.fh = path, None

    def __enter__(self) -> "_Lock":
        """Hold the lock (again: a no-op); :class:`ScheduleBusy` when another run holds it, :class:`ReportError` when
        the reports folder cannot be written (a file in its place, read-only, full)."""
        import fcntl

        from workbench.errors import ReportError

        if self.fh is not None:
            return self
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")
        except OSError as exc:
            why = "not a folder" if folder.exists() and not folder.is_dir() else (exc.strerror or str(exc))
            raise ReportError(f"schedule run: cannot write the reports folder {folder}: {why}") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ScheduleBusy(f"schedule run: another run holds {self.path}; nothing done") from None
        self.fh = fh
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        except OSError as exc:
            self.__exit__()
            raise ReportError(f"schedule run: cannot write the reports folder {folder}: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        import fcntl

        if self.fh:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def _record(out: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to ``runs.jsonl``. When it cannot be written (a full disk, a folder made read-only) the run goes
    on -- the other reports, the alerts -- with ``record_error`` in the row, said on standard error, and exits 1.

    A last line left without its newline (a disk that filled up in the middle of a record, a run killed while writing)
    is ended first: appended to it, the new record would be glued to the broken one and both lost to every reader."""
    line = (json.dumps(row, default=str) + "\n").encode("utf-8")
    try:
        with open(out / RUNS_FILE, "a+b") as fh:  # (bytes: a half-written line may end inside a character)
            end = fh.seek(0, os.SEEK_END)
            if end:
                fh.seek(end - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
            fh.write(line)
    except OSError as exc:
        row["record_error"] = f"not recorded in {out / RUNS_FILE}: {exc.strerror or exc}"
        print(f"workbench schedule: {row.get('report')}: {row['record_error']}", file=sys.stderr)


#: Seconds a notification channel may take (the command to finish, the webhook to answer) before it counts as failed.
NOTIFY_TIMEOUT = 30


def _post_webhook(url: str, body: bytes) -> None:
    """POST ``body`` (JSON) to ``url``; returns once the webhook has answered, raises why it did not (an HTTP error, a
    refused connection, a bad URL: :class:`OSError`, :class:`http.client.HTTPException` or :class:`ValueError`). A
    user and password in the URL (``https://user:password@host/hook``) are sent as HTTP basic authentication.

    The whole exchange -- connecting, sending, the answer's status and headers -- has :data:`NOTIFY_TIMEOUT` seconds
    (past it, :class:`TimeoutError`), and the answer's body is not read: with a timeout per read and the whole body
    read, a webhook that sent a byte now and then held the run, and its lock, for ever. The request runs in a daemon
    thread, left behind when it is late.

    >>> _post_webhook("http://127.0.0.1:9/hook", b"{}")  # nobody listens there
    Traceback (most recent call last):
    ...
    urllib.error.URLError: <urlopen error [Errno 111] Connection refused>
    """
    import base64
    import threading
    import urllib.parse
    import urllib.request

    outcome: list[BaseException | None] = []
    headers = {"Content-Type": "application/json"}
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:  # https://user:password@host/...: urllib would read "user:password@host" as the host
        user, _, host = parts.netloc.rpartition("@")
        url = urllib.parse.urlunsplit(parts._replace(netloc=host))
        headers["Authorization"] = "Basic " + base64.b64encode(urllib.parse.unquote(user).encode()).decode()

    def post() -> None:
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(req, timeout=NOTIFY_TIMEOUT):  # noqa: S310  (configured by the operator)
                pass  # 2xx: delivered (4xx/5xx raise HTTPError)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001  raised in the caller's thread below
            outcome.append(exc)

    worker = threading.Thread(target=post, name="workbench-notify-webhook", daemon=True)
    worker.start()
    worker.join(NOTIFY_TIMEOUT)
    if not outcome:
        raise TimeoutError(f"timed out after {NOTIFY_TIMEOUT:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def _hide_url(url: str, text: str | None = None) -> str:
    """``text`` (default: ``url`` itself) with the parts of the webhook ``url`` that are often its secret -- the user
    and password, the path (Slack's ``/services/T…/B…/<token>``), the query (``?token=``) -- written ``…``: what
    ``runs.jsonl``, standard error and a notice may say of a webhook. ``runs.jsonl`` lies in the reports folder, which
    is shared with every reader of the reports.

    >>> _hide_url("https://bot:pw@hooks.example.com:8443/services/T0/B0/s3cret?token=abc")
    'https://hooks.example.com:8443/…'
    >>> _hide_url("https://hooks.example.com/x/s3cret", "HTTP Error 404: no hook /x/s3cret")
    'HTTP Error 404: no hook …'
    """
    import urllib.parse

    try:
        p = urllib.parse.urlsplit(url)
    except ValueError:  # not even a URL (a bracket left open): none of it is shown
        return "(the webhook URL)" if text is None else text.replace(url, "(the webhook URL)")
    user, at, host = p.netloc.rpartition("@")
    shown = f"{p.scheme}://{host}/…"
    if text is None:
        return shown
    text = text.replace(url, shown)
    for secret in sorted({user + at, p.path, p.query, p.fragment} - {"", "/"}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def _send(settings: dict[str, Any], event: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Send ``event`` through every ``[notify]`` channel: (the channels that delivered it, why each other one failed).

    Why a channel failed names the command by its program only and the webhook by its scheme, host and port
    (:func:`_hide_url`): the rest of either often holds a token, and the reasons are recorded in ``runs.jsonl``.
    """
    import http.client
    import subprocess

    done, failed = [], []
    body = json.dumps(event, default=str).encode()
    cmd = settings.get("command")
    if cmd:
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        prog = argv[0] if argv else ""
        try:
            subprocess.run(argv, input=body, timeout=NOTIFY_TIMEOUT, check=True, stdout=subprocess.DEVNULL)
            done.append("command")
        except subprocess.TimeoutExpired:
            failed.append(f"command {prog}: timed out after {NOTIFY_TIMEOUT:g} s")
        except subprocess.CalledProcessError as exc:
            failed.append(f"command {prog}: exit status {exc.returncode}")
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            failed.append(f"command {prog}: {type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}")
    url = settings.get("webhook")
    if url:
        try:
            _post_webhook(url, body)
            done.append("webhook")
        except (OSError, http.client.HTTPException, ValueError) as exc:  # HTTP 4xx/5xx, refused, timed out, bad URL
            failed.append(f"webhook {_hide_url(url)}: {_hide_url(url, str(exc))}")
    return done, failed


def notify(settings: dict[str, Any], event: dict[str, Any]) -> list[str]:
    """Send ``event`` through the ``[notify]`` settings: a command (JSON on standard input) and/or a webhook (POST).
    Returns what was notified; a failing channel is reported on standard error and never raises.

    Examples
    --------
    A command that writes the JSON it reads on standard input to a file:

    >>> import pathlib, tempfile
    >>> got = pathlib.Path(tempfile.mkdtemp()) / "event.json"
    >>> save = [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())", str(got)]
    >>> notify({"command": save}, {"event": "stale_data", "hours_since": 98.0})
    ['command']
    >>> got.read_text()
    '{"event": "stale_data", "hours_since": 98.0}'
    >>> notify({"command": [sys.executable, "-c", "raise SystemExit(3)"]}, {"event": "stale_data"})  # on stderr
    []
    """
    done, failed = _send(settings, event)
    for why in failed:
        print(f"workbench schedule: notify {why}", file=sys.stderr)
    return done


def _alert(outp: Path, settings: dict[str, Any], name: str, event: dict[str, Any], *, error: str | None = None,
           exit_code: int = 1) -> dict[str, Any]:
    """Notify ``event`` (an alert: a fired check, stale data) and record it in ``runs.jsonl`` as ``name``: status
    ``notified`` when every ``[notify]`` channel delivered it, else ``failed`` with why (a channel that failed, no
    channel at all, or ``error``: the check itself could not run); the row is returned."""
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    done, failed = _send(settings["notify"], event)
    if not settings["notify"].get("command") and not settings["notify"].get("webhook"):
        failed.append(f"not notified: no [notify] webhook or command in {settings['config_name']}")
    reasons = ([error] if error else []) + failed
    row = {"report": name, "kind": "alert", "event": event["event"], "period": None,
           "start": started.isoformat(timespec="seconds"),
           "end": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "status": "failed" if reasons else "notified", "error": "; ".join(reasons) or None,
           "duration_s": round(time.monotonic() - t0, 2), "notified": done}
    row.update({k: v for k, v in event.items() if k not in row and k != "at"})
    if reasons:
        row["exit_code"] = exit_code
        print(f"workbench schedule: {name}: {event['event']}: {row['error']}", file=sys.stderr)
    _record(outp, row)
    return row


def _unreadable(outp: Path, settings: dict[str, Any], exc: BaseException, now: dt.datetime) -> dict[str, Any]:
    """Notify and record (as ``database``, event ``run_failed``) a database the run cannot open: locked by a writer
    (a long ``workbench ingest``, a notebook's open connection) past the lock wait, or damaged. Raised out of the run,
    it was an exit code on a cron job's standard error, with nothing in ``runs.jsonl`` and no notice."""
    error = f"{type(exc).__name__}: {first_line(exc)}"
    return _alert(outp, settings, "database", {"event": "run_failed", "error": error, "at": now.isoformat()},
                  error=error, exit_code=getattr(exc, "exit_code", EXIT_CHECK))


def exit_code(records: Iterable[dict[str, Any]]) -> int:
    """The exit code of ``schedule run`` for its records: 0 when every report was published and every alert
    delivered, 2 when a check could not run for bad input (a broken ``[slo.*]``), else 1 when a report failed, an
    alert was not delivered, or a record could not be written to ``runs.jsonl``.

    >>> exit_code([{"status": "published"}, {"status": "notified"}]), exit_code([{"status": "failed"}])
    (0, 1)
    >>> exit_code([{"status": "failed"}, {"status": "failed", "exit_code": 2}])
    2
    >>> exit_code([{"status": "published", "record_error": "not recorded in reports/runs.jsonl: No space left"}])
    1
    """
    return max((r.get("exit_code", 1) if r.get("status") == "failed" else 1 if r.get("record_error") else 0
                for r in records), default=0)


def line(record: dict[str, Any]) -> str:
    """One record as a line of ``schedule run``'s output.

    >>> line({"report": "slo check", "period": None, "status": "failed", "duration_s": 0.1, "error": "webhook x: 500"})
    'slo check      -          failed         0.1 s  webhook x: 500'
    """
    return (f"{record['report']:14s} {record.get('period') or '-':10s} {record['status']:9s} "
            f"{record.get('duration_s') or 0:7.1f} s  {record.get('error') or ''}").rstrip()


def run(db: str | os.PathLike | None = None, *, out: str | os.PathLike = "reports", config: str | os.PathLike | None = None,
        names: Iterable[str] | None = None, now: dt.datetime | None = None, max_catchup: int | None = None,
        retries: int = 3, retry_wait: float = 2.0, checks: bool = True, progress: bool | None = None) -> list[dict[str, Any]]:
    """Publish every due, unpublished period of every scheduled report, oldest first; return the run records.

    Raises :class:`ScheduleBusy` when another run holds the lock, and :class:`~workbench.errors.ReportError` (exit 2,
    notified as ``run_failed``) when the reports folder cannot be written. A report that fails is recorded and
    notified, and the run goes on with the next one; so it does when a record cannot be written to ``runs.jsonl``
    (the run then exits 1). A database the run cannot open (held by a writer past the lock wait) is
    notified and recorded as ``database`` ``failed``, and the run exits 2.

    Examples
    --------
    On Sunday 22 November no week is due (week 47 ends on the 23rd) but the newest call is four days old; with no
    ``[notify]`` channel the alert is recorded as failed:

    >>> import pathlib, tempfile
    >>> import workbench as wb
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> cfg = tmp / "workbench.toml"
    >>> _ = cfg.write_text('[schedule]\\nreports = ["scorecard"]\\n')
    >>> with wb.connect(tmp / "w.duckdb") as db:
    ...     _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...                           "('b', '2026-11-18 09:00', 'chat', 'ok')")
    >>> records = run(tmp / "w.duckdb", out=tmp / "reports", config=cfg, now=dt.datetime(2026, 11, 22, 11))
    >>> [(r["report"], r["status"], r["hours_since"], r["error"]) for r in records]
    [('stale data', 'failed', 98.0, 'not notified: no [notify] webhook or command in .../workbench.toml')]
    >>> exit_code(records), (tmp / "reports" / RUNS_FILE).exists()
    (1, True)
    """
    from workbench.db import DEFAULT_DB
    from workbench.errors import DatabaseError, ReportError, WorkbenchError
    from workbench.reports.publish import available, resolve_period, run_report

    settings = _settings(config)
    outp = Path(out).resolve()
    db_path = str(Path(db or os.environ.get("WORKBENCH_DB") or DEFAULT_DB).resolve())
    if not Path(db_path).exists():
        raise MissingFileError(f"schedule run: no database at {db_path}")
    now = now or utc_now()
    names = list(names or settings["reports"] or available())
    cap = max_catchup or settings["max_catchup"]
    records: list[dict[str, Any]] = []
    try:
        lock = _Lock(outp / LOCK_FILE).__enter__()
    except ReportError as exc:  # the reports folder cannot be written: nothing can run or be recorded, and that is said
        notify(settings["notify"], {"event": "run_failed", "error": str(exc), "at": now.isoformat()})
        raise
    with lock:
        try:
            oldest, newest, days = _span(db_path)
        except WorkbenchError as exc:  # held by a writer past the lock wait, damaged: nothing can run, and that is said
            return [_unreadable(outp, settings, exc, now)]
        todo = [(p, n) for n in names for p in due_periods(settings["period"], newest=newest, now=now, oldest=oldest,
                                                             days=days, published=_published(outp, n), max_catchup=cap)]
        todo.sort(key=lambda t: (resolve_period(t[0])[0], names.index(t[1])))
        bar = None
        if progress or (progress is None and sys.stderr.isatty() and todo):
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="schedule run", unit="report", file=sys.stderr)
        for period, name in todo:
            started = dt.datetime.now(dt.timezone.utc)
            t0 = time.monotonic()
            error = None
            for attempt in range(retries + 1):
                try:
                    run_report(name, db=db_path, period=period, out=outp, config=config,
                               cell_timeout=settings["cell_timeout"])
                    error = None
                    break
                except DatabaseError as exc:  # another process holds the database: wait and try again
                    error = f"{type(exc).__name__}: {exc}"
                    if attempt < retries:
                        time.sleep(retry_wait * (attempt + 1))
                except WorkbenchError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    break
                except Exception as exc:  # noqa: BLE001  a bug in one report must not stop the others
                    error = f"{type(exc).__name__}: {exc}"
                    break
            rec = {"report": name, "period": period, "start": started.isoformat(timespec="seconds"),
                   "end": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   "status": "failed" if error else "published", "error": error,
                   "duration_s": round(time.monotonic() - t0, 2)}
            if error:
                _done, failed = _send(settings["notify"], {"event": "report_failed", **rec})
                if failed:
                    rec["notify_error"] = "; ".join(failed)
                    print(f"workbench schedule: {name} {period}: notify {rec['notify_error']}", file=sys.stderr)
            _record(outp, rec)
            records.append(rec)
            if bar:
                bar.update(1)
        if bar:
            bar.close()
        try:
            last_call = _newest_call(db_path, now)
        except WorkbenchError as exc:
            records.append(_unreadable(outp, settings, exc, now))
            return records
        stale = stale_hours(last_call, now, settings)
        if last_call is None:  # no call at all is the stalest data there is (the report says so too)
            records.append(_alert(outp, settings, "stale data", {
                "event": "stale_data", "newest_call": None, "newest_data": None, "hours_since": None,
                "detail": f"no call has been recorded at all in {db_path}", "at": now.isoformat()}))
        elif stale is not None:
            records.append(_alert(outp, settings, "stale data", {
                "event": "stale_data", "newest_call": last_call.isoformat(), "newest_data": last_call.isoformat(),
                "hours_since": stale, "at": now.isoformat()}))
        if checks:
            for check, fired in _fired_checks(db_path, config, now):
                if isinstance(fired, BaseException):  # the check could not run: exit 2 for bad input, as the CLI's
                    error = f"{type(fired).__name__}: {first_line(fired)}"
                    records.append(_alert(outp, settings, f"{check} check", {
                        "event": "check_failed", "check": check, "error": error, "at": now.isoformat()},
                        error=error, exit_code=getattr(fired, "exit_code", EXIT_CHECK)))
                    continue
                records.append(_alert(outp, settings, f"{check} check", {
                    "event": "check_fired", "check": check, "checks": [f"{check}_status"], "fired": fired,
                    "at": now.isoformat()}))
    return records


def stale_hours(newest: dt.datetime | None, now: dt.datetime, settings: dict[str, Any]) -> float | None:
    """Hours since ``newest`` (the newest call, :func:`~workbench.reports.attention.newest_call`) when that is more
    than ``[schedule] stale_after_hours`` (default 48): calls that stopped arriving are themselves an alert. None when
    the data is fresh, or when there is no call (no hours to count: :func:`run` notifies that apart).

    >>> stale_hours(dt.datetime(2026, 11, 20), dt.datetime(2026, 11, 24), {}), stale_hours(dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24), {})
    (96.0, None)
    """
    limit = float(settings.get("stale_after_hours", 48))
    if newest is None:
        return None
    hours = round((now - newest).total_seconds() / 3600, 1)
    return hours if hours > limit else None


#: What a fired check's notice says of each firing row, per check: enough to page on without opening a report.
_FIRED_COLUMNS = {
    "slo": ("feature", "sli", "severity", "alerts", "objective", "sli_value", "n", "burn_1h", "firing_since"),
    "budget": ("feature", "status", "alert", "spend_usd", "budget_usd", "share_used", "forecast_usd"),
}


def _fired_checks(db: str, config: Any, at: dt.datetime | None = None) -> list[tuple[str, list[dict[str, Any]] | BaseException]]:
    """The checks that fire at ``at``, each with its firing rows (``[("slo", [{"feature": ..., "sli": ...,
    "severity": ...}, ...]), ("budget", [...])]``; an SLO with no call in its window is one, ``no data 30d``, as an
    unpriced budget month, or one no call reached (``no data``), is), or with the error that kept it from running: only "nothing
    declared" (:class:`~workbench.errors.NotDeclaredError`) means that nothing can fire; a broken ``[slo.*]`` table, a
    locked database or a bug is not "ok"."""
    import importlib

    import polars as pl

    from workbench.db import connect
    from workbench.errors import NotDeclaredError

    out: list[tuple[str, list[dict[str, Any]] | BaseException]] = []
    for check, mod, fn in (("slo", "workbench.metrics.slo", "slo_status"),
                           ("budget", "workbench.metrics.cost", "budget_status")):
        try:
            with connect(db, read_only=True) as w:
                df, firing = getattr(importlib.import_module(mod), fn)(w, config=config, at=at)
        except NotDeclaredError:  # no SLOs declared: nothing can fire
            continue
        except Exception as exc:  # noqa: BLE001  recorded, notified and in the exit code: not read as "nothing fires"
            out.append((check, exc))
            continue
        # an SLO with no call in its window fires nothing but is not met either: notified with the firing rows
        rows = (df.filter(pl.col("alert").is_not_null()) if check == "budget"
                else df.filter(pl.col("firing") | (pl.col("n") == 0)))
        if firing or rows.height:
            out.append((check, rows.select([c for c in _FIRED_COLUMNS[check] if c in df.columns]).to_dicts()))
    return out


def status(db: str | os.PathLike | None = None, *, out: str | os.PathLike = "reports", config: Any = None,
           now: dt.datetime | None = None) -> "Any":
    """Per report: the last run (period, status, when, duration), failures recorded, periods due now, and how old
    the newest data is (a frame).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import workbench as wb
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> cfg = tmp / "workbench.toml"
    >>> _ = cfg.write_text('[schedule]\\nreports = ["scorecard"]\\n')
    >>> with wb.connect(tmp / "w.duckdb") as db:
    ...     _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status) values "
    ...                           "('a', '2026-11-12 09:00', 'chat', 'ok'), ('b', '2026-11-18 09:00', 'chat', 'ok')")
    >>> status(tmp / "w.duckdb", out=tmp / "reports", config=cfg, now=dt.datetime(2026, 11, 22, 11)).select(
    ...     "report", "last_status", "due", "data_age_hours", "stale").rows()
    [('scorecard', None, '2026-W46', 98.0, True)]
    """
    import polars as pl

    from workbench.db import DEFAULT_DB
    from workbench.reports.publish import available

    settings = _settings(config)
    outp = Path(out)
    runs: list[dict[str, Any]] = []
    if (outp / RUNS_FILE).exists():
        for line in (outp / RUNS_FILE).read_bytes().splitlines():
            try:  # (line by line: a line cut off inside a character is the one line not read)
                runs.append(json.loads(line))
            except ValueError:
                continue
    now = now or utc_now()
    db_path = str(Path(db or os.environ.get("WORKBENCH_DB") or DEFAULT_DB).resolve())
    if not Path(db_path).exists():  # read as no data, it was "due nothing" and "stale False": all clear
        raise MissingFileError(f"schedule status: no database at {db_path}")
    oldest, newest, days = _span(db_path)
    last_call = _newest_call(db_path, now)
    age = round((now - last_call).total_seconds() / 3600, 1) if last_call else None
    # a database without a single call is stale, as schedule run notifies it
    stale = last_call is None or stale_hours(last_call, now, settings) is not None
    rows = []
    for name in settings["reports"] or available():
        mine = [r for r in runs if r.get("report") == name]
        last = mine[-1] if mine else {}
        due = due_periods(settings["period"], newest=newest, now=now, published=_published(outp, name),
                          max_catchup=settings["max_catchup"], oldest=oldest, days=days)
        rows.append({"report": name, "last_period": last.get("period"), "last_status": last.get("status"),
                     "last_run": last.get("end"), "duration_s": last.get("duration_s"),
                     "failures": sum(1 for r in mine if r.get("status") == "failed"), "due": ", ".join(due) or "nothing",
                     "data_age_hours": age, "stale": stale})
    # the alerts recorded (a fired check, stale data): whether the last one was delivered, and how many were not
    for name in dict.fromkeys(r["report"] for r in runs if r.get("kind") == "alert" and r.get("report")):
        mine = [r for r in runs if r.get("report") == name]
        rows.append({"report": name, "last_period": None, "last_status": mine[-1].get("status"),
                     "last_run": mine[-1].get("end"), "duration_s": mine[-1].get("duration_s"),
                     "failures": sum(1 for r in mine if r.get("status") == "failed"), "due": "-",
                     "data_age_hours": age, "stale": stale})
    return pl.DataFrame(rows)


def _executable() -> list[str]:
    """The absolute command that runs this workbench: the ``workbench`` script next to this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "workbench"
    if script.exists():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "workbench.cli"]


def _command(db: str | None, out: str, config: str | None) -> list[str]:
    """The words of the ``schedule run`` command line, absolute paths, each checked to be one line."""
    args = [*_executable(), "schedule", "run", "--out", str(Path(out).absolute())]
    if db:
        args += ["--db", str(Path(db).absolute())]
    if config:
        args += ["--config", str(Path(config).absolute())]
    for a in args:
        _one_line(a)
    return args


def _unit_word(arg: str, *, variables: bool = True) -> str:
    """One word of a systemd ``ExecStart=`` line: double-quoted, where systemd reads C escapes (so ``\\`` and ``"``
    are escaped) and expands % specifiers and $ variables (doubled), whatever the quoting. With ``variables=False``,
    for an ``Environment=`` line, where a $ is itself.

    >>> print(_unit_word('/srv/a "b"\\\\new 5% $HOME'))
    "/srv/a \\"b\\"\\\\new 5%% $$HOME"
    >>> print(_unit_word('WORKBENCH_NOTEBOOKS=/srv/$nb', variables=False))
    "WORKBENCH_NOTEBOOKS=/srv/$nb"
    """
    word = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + (word.replace("$", "$$") if variables else word) + '"'


def _one_line(path: str) -> str:
    """A path for a crontab line or a unit file: a line break (or another control character) in it would end the line
    inside the quotes and start a line of its own (a second cron job, a directive): refused."""
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ParameterError(f"schedule export: the path {path!r} holds a line break or another control character; "
                             f"a crontab line or unit file cannot hold it")
    return path


def _on_calendar(cron: str) -> str:
    """A systemd ``OnCalendar`` for a simple cron expression (numbers, ``*``, ``*/n``, day-of-week numbers).

    >>> _on_calendar("0 6 * * 1"), _on_calendar("30 6 * * *"), _on_calendar("*/15 * * * *")
    ('Mon *-*-* 06:00:00', '*-*-* 06:30:00', '*-*-* *:00/15:00')
    """
    m, h, dom, mon, dow = cron.split()
    if dom != "*" and dow != "*":  # cron runs on either, systemd only when both hold: not the same schedule
        raise ParameterError(f"schedule export --systemd: {cron!r} names both days of the month and days of the week, "
                             f"which cron reads as either and systemd as both; use --crontab, or one of the two")

    def part(x: str, width: int = 2) -> str:
        if x == "*":
            return "*"
        if x.startswith("*/"):
            return f"00/{int(x[2:])}"
        return ",".join(f"{int(v):0{width}d}" for v in x.split(","))
    days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    try:
        prefix = "" if dow == "*" else ",".join(days[int(d)] for d in dow.split(",")) + " "
        return f"{prefix}*-{part(mon)}-{part(dom)} {part(h)}:{part(m)}:00"
    except (ValueError, IndexError):  # ranges, names, steps from a start: valid cron, not written here
        raise ParameterError(f"schedule export --systemd: {cron!r} uses ranges, names or steps that are not written "
                             f"as a systemd OnCalendar here; use numbers, lists, * and */n, or --crontab") from None


_NAMES = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
          "sun", "mon", "tue", "wed", "thu", "fri", "sat"}


def _not_vixie(cron: str) -> str | None:
    """The first part of a five-field expression that the cron of Debian and most systems (Vixie cron, cronie) does
    not read though croniter does (``L``, ``W``, ``#``, ``?``, ``H``), or None.

    >>> _not_vixie("0 6 L * *"), _not_vixie("0 6 * * MON#1"), _not_vixie("*/15 6-18 1,15 jan-jun mon-fri")
    ('L', 'MON#1', None)
    """
    for field in cron.split():
        for atom in re.split(r"[,/-]", field):
            if atom and atom != "*" and not atom.isdigit() and atom.lower() not in _NAMES:
                return atom
    return None


def export(kind: str = "crontab", *, db: str | None = None, out: str = "reports", config: str | None = None,
           cron: str | None = None) -> str:
    """Crontab lines or systemd service and timer units that start ``workbench schedule run``.

    Paths are absolute and shell-quoted, so a line works from any directory and a hostile file name stays one
    argument; the database is ``db``, ``$WORKBENCH_DB`` or ``datasets/workbench.duckdb`` of the folder exported in
    (a comment says so when there is none); ``$WORKBENCH_NOTEBOOKS``, when set, is set for the run too, by its
    absolute path; the config is the one found at export (``config``, ``$WORKBENCH_CONFIG`` or ``./workbench.toml``),
    named by its absolute path, so the run checks and notifies as ``workbench slo`` did where it was exported. The
    cron expression (``[schedule] cron`` or ``cron=``) is validated with croniter.

    >>> line = export("crontab", db="/d/x.duckdb; touch pwned #", out="/srv/reports").splitlines()[-1]
    >>> "'/d/x.duckdb; touch pwned #'" in line and line.startswith("0 6 * * * ")
    True
    """
    from croniter import croniter

    settings = _settings(config)
    cron = cron or settings["cron"]
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise ParameterError(f"schedule export: {cron!r} is not a valid five-field cron expression, e.g. \"0 6 * * *\"")
    # the config found now (config=, $WORKBENCH_CONFIG or ./workbench.toml), by its absolute path: cron and systemd
    # start the run elsewhere ($HOME, /), where none is found and every check and notice would be off
    from workbench.db import DEFAULT_DB

    found = settings["config_path"]
    # the database too (--db, $WORKBENCH_DB, else datasets/workbench.duckdb here): in $HOME there is none
    db_path = Path(db or os.environ.get("WORKBENCH_DB") or DEFAULT_DB).absolute()
    args = _command(str(db_path), out, str(found) if found else None)
    # the report notebooks too, when $WORKBENCH_NOTEBOOKS names them: cron and systemd start the run without it, and
    # every scheduled report (checked against that folder here) was then unknown
    from workbench.reports.publish import NOTEBOOKS_ENV, notebooks_dir

    env = {NOTEBOOKS_ENV: _one_line(str(notebooks_dir().absolute()))} if os.environ.get(NOTEBOOKS_ENV) else {}
    # for cron's /bin/sh, which sets NAME=value for the command (the name unquoted, or it is a command's name)
    cmd = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, args)])
    note = ([] if found else [f"# no workbench.toml found ({Path.cwd()}, $WORKBENCH_CONFIG): the run checks no SLO "
                              f"or budget and notifies nobody; export with --config to name one"])
    if not db_path.exists():
        note.append(f"# no database at {db_path}: export with --db to name one")
    if env and not notebooks_dir().is_dir():
        note.append(f"# no notebooks folder at {notebooks_dir().absolute()} (${NOTEBOOKS_ENV})")
    if kind == "crontab":
        odd = _not_vixie(cron)
        if odd:  # croniter reads them, cron itself refuses the line ("bad day-of-month ... can't install")
            raise ParameterError(f"schedule export: {cron!r} uses {odd!r}, which croniter reads but cron does not "
                                 f"(only numbers, *, ranges, lists, steps and month / day names); use a plain "
                                 f"expression, or --systemd")
        if "%" in cmd:  # cron reads % as the end of the command (the rest is its input), and not all crons unescape \%
            raise ParameterError(f"schedule export: a crontab line cannot hold '%' (cron reads it as a line break): "
                                 f"{cmd}; use paths without it, or --systemd")
        return "\n".join(["# workbench: publish due reports and notify on failures or fired checks (UTC)", *note,
                          "CRON_TZ=UTC", f"{cron} {cmd}"])
    if kind == "systemd":
        calendar = _on_calendar(cron)
        # systemd expands % specifiers in both lines, and $ variables and C escapes in ExecStart (_unit_word);
        # WorkingDirectory takes the path as it is (quotes would be part of it)
        workdir = _one_line(str(Path(out).absolute().parent)).replace("%", "%%")
        return "\n".join([
            *note, "# workbench-reports.service", "[Unit]", "Description=workbench: publish due reports", "",
            "[Service]", "Type=oneshot", f"WorkingDirectory={workdir}",
            *[f"Environment={_unit_word(f'{k}={v}', variables=False)}" for k, v in env.items()],
            f"ExecStart={' '.join(map(_unit_word, args))}", "",
            "# workbench-reports.timer", "[Unit]", "Description=workbench: publish due reports on schedule", "",
            "[Timer]", f"OnCalendar={calendar} UTC", "Persistent=true", "", "[Install]", "WantedBy=timers.target"])
    raise ParameterError(f"schedule export: kind {kind!r}; expected crontab or systemd")


def crontab(*, db: str | None = None, out: str = "reports", workdir: str | None = None, names: Iterable[str] | None = None) -> str:
    """Crontab lines that start ``schedule run`` (kept for callers of the earlier API; see :func:`export`).

    Examples
    --------
    >>> lines = crontab(db="/srv/wb.duckdb", out="/srv/reports").splitlines()
    >>> lines[0], "CRON_TZ=UTC" in lines
    ('# workbench: publish due reports and notify on failures or fired checks (UTC)', True)
    >>> lines[-1]
    '0 6 * * * ... schedule run --out /srv/reports --db /srv/wb.duckdb...'
    """
    return export("crontab", db=db, out=out)
