"""schedule run catches up after an outage once, records every run, notifies failures; export quotes every path."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import shlex
import threading

import nbformat
import pytest

import workbench as wb
from workbench.reports import publish as reports
from workbench.reports import schedule


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('db = ""\nstart = None\nend = None\nperiod = None\nout_dir = None\nconfig = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[nbformat.v4.new_code_cell(c) for c in cells]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    monkeypatch.setenv(reports.NOTEBOOKS_ENV, str(nbdir))
    monkeypatch.chdir(tmp_path)
    dbp = tmp_path / "w.duckdb"
    db = wb.connect(dbp)
    # calls every day from Mon 2026-11-02 to Sun 2026-11-22: ISO weeks 45, 46 and 47
    rows = [(f"c{i}", dt.datetime(2026, 11, 2, 10) + dt.timedelta(days=i), "chat", "ok") for i in range(21)]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, ?, ?, ?)", rows)
    db.close()
    _notebook(nbdir / "mini.ipynb", "import workbench as wb\nrep = wb.Report(db, start=start, end=end, out_dir=out_dir)",
              "rep.metric('error_rate', by=['feature'], period='all')", "rep.save()")
    return tmp_path, dbp, nbdir


def test_outage_catch_up_publishes_each_missed_period_once_and_records_it(env):
    tmp, dbp, _ = env
    cfg = tmp / "workbench.toml"
    cfg.write_text('[schedule]\nperiod = "week"\nmax_catchup = 8\n')
    now = dt.datetime(2026, 11, 24, 6)  # the scheduler was down for two weeks: W45, W46 and W47 are due
    recs = schedule.run(dbp, out=tmp / "r", config=cfg, now=now, checks=False)
    assert [(r["report"], r["period"], r["status"]) for r in recs] == [
        ("mini", "2026-W45", "published"), ("mini", "2026-W46", "published"), ("mini", "2026-W47", "published")]
    assert all((tmp / "r" / "mini" / p / "report.html").exists() for p in ("2026-W45", "2026-W46", "2026-W47"))
    lines = [json.loads(x) for x in (tmp / "r" / schedule.RUNS_FILE).read_text().splitlines()]
    assert [x["period"] for x in lines] == ["2026-W45", "2026-W46", "2026-W47"]
    assert set(lines[0]) >= {"report", "period", "start", "end", "status", "error", "duration_s"}
    assert schedule.run(dbp, out=tmp / "r", config=cfg, now=now, checks=False) == []  # nothing published twice
    st = schedule.status(dbp, out=tmp / "r", config=cfg, now=now)
    row = st.row(0, named=True)
    assert (row["report"], row["last_period"], row["last_status"], row["due"], row["failures"]) == (
        "mini", "2026-W47", "published", "nothing", 0)
    index = (tmp / "r" / "index.html").read_text()
    assert index.index("2026-W47") < index.index("2026-W46") < index.index("2026-W45")  # latest first


def test_catch_up_is_bounded_and_skips_the_running_period(env):
    tmp, dbp, _ = env
    assert schedule.due_periods("week", newest=dt.datetime(2026, 11, 22), now=dt.datetime(2026, 11, 20),
                                published=set(), max_catchup=8, oldest=dt.datetime(2026, 11, 2)) == ["2026-W45", "2026-W46"]  # W47 has not ended
    assert schedule.due_periods("week", newest=dt.datetime(2026, 11, 22), now=dt.datetime(2026, 12, 30),
                                published={"2026-W46"}, max_catchup=1) == ["2026-W47"]


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_failing_report_notifies_webhook_and_command(env):
    tmp, dbp, nbdir = env
    _notebook(nbdir / "broken.ipynb", "raise ValueError('boom')")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    sink = tmp / "notified.json"
    cfg = tmp / "workbench.toml"
    cfg.write_text(f'[schedule]\nreports = ["broken"]\nmax_catchup = 1\n[notify]\n'
                   f'webhook = "http://127.0.0.1:{server.server_port}/hook"\n'
                   f'command = "sh -c \'cat > {sink}\'"\n')
    try:
        recs = schedule.run(dbp, out=tmp / "r", config=cfg, now=dt.datetime(2026, 11, 24), checks=False)
    finally:
        server.shutdown()
    assert [(r["period"], r["status"]) for r in recs] == [("2026-W47", "failed")]
    assert "boom" in recs[0]["error"]
    assert len(_Receiver.received) == 1 and _Receiver.received[0]["event"] == "report_failed"
    assert _Receiver.received[0]["report"] == "broken" and _Receiver.received[0]["period"] == "2026-W47"
    assert json.loads(sink.read_text())["status"] == "failed"


def test_stale_data_is_notified(env):
    tmp, dbp, _ = env
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    cfg = tmp / "workbench.toml"
    cfg.write_text(f'[schedule]\nmax_catchup = 1\nstale_after_hours = 48\n[notify]\nwebhook = "http://127.0.0.1:{server.server_port}/"\n')
    try:
        schedule.run(dbp, out=tmp / "r", config=cfg, now=dt.datetime(2026, 11, 23, 12), checks=False)  # fresh: 26 h
        assert _Receiver.received == []
        schedule.run(dbp, out=tmp / "r", config=cfg, now=dt.datetime(2026, 11, 27), checks=False)  # 110 h without data
    finally:
        server.shutdown()
    assert [e["event"] for e in _Receiver.received] == ["stale_data"] and _Receiver.received[0]["hours_since"] == 110.0


def test_one_run_at_a_time(env):
    tmp, dbp, _ = env
    with schedule._Lock(tmp / "r" / schedule.LOCK_FILE):
        with pytest.raises(schedule.ScheduleBusy, match="another run holds"):
            schedule.run(dbp, out=tmp / "r", now=dt.datetime(2026, 11, 24), checks=False)


def test_export_quotes_every_path_and_validates_cron(tmp_path):
    hostile = str(tmp_path / "x.duckdb; touch pwned #")
    line = schedule.export("crontab", db=hostile, out=str(tmp_path / "my reports")).splitlines()[-1]
    when, cmd = line[:9], line[10:]
    assert when == "0 6 * * *"
    argv = shlex.split(cmd)  # the shell sees the hostile name as one argument
    assert argv[argv.index("--db") + 1] == hostile and argv[argv.index("--out") + 1] == str(tmp_path / "my reports")
    assert argv[0].startswith("/") and argv[1:3] == ["schedule", "run"] or argv[1:5] == ["-m", "workbench.cli", "schedule", "run"]
    unit = schedule.export("systemd", db=hostile, out=str(tmp_path))
    assert "Persistent=true" in unit and "OnCalendar=*-*-* 06:00:00 UTC" in unit
    with pytest.raises(wb.errors.ParameterError, match="not a valid five-field cron"):
        schedule.export("crontab", cron="61 * * * *")


def test_a_report_that_hangs_is_stopped_recorded_and_notified(env):
    # A cell that never ends (a query stuck behind a lock, a loop) held the scheduled run, and its lock, for ever:
    # no record, no notice, and every later run refused as busy. A cell now has [schedule] cell_timeout seconds.
    import time

    tmp, dbp, nbdir = env
    _notebook(nbdir / "stuck.ipynb", "import time\ntime.sleep(600)")
    sink = tmp / "notified.json"
    cfg = tmp / "workbench.toml"
    # (the timeout applies to mini's cells too: 3 s failed its import cell on a busy machine)
    cfg.write_text(f'[schedule]\nreports = ["stuck", "mini"]\nmax_catchup = 1\ncell_timeout = 20\n'
                   f'[notify]\ncommand = "sh -c \'cat > {sink}\'"\n')
    t0 = time.monotonic()
    recs = schedule.run(dbp, out=tmp / "r", config=cfg, now=dt.datetime(2026, 11, 24), checks=False)
    assert time.monotonic() - t0 < 120
    assert [(r["report"], r["status"]) for r in recs] == [("stuck", "failed"), ("mini", "published")]
    assert "ran longer than 20 s" in recs[0]["error"] and "cell_timeout" in recs[0]["error"]
    assert json.loads(sink.read_text())["report"] == "stuck"
    assert not (tmp / "r" / "stuck" / "2026-W47").exists()  # nothing published for it


def test_cell_timeout_must_be_a_positive_number(env):
    tmp, dbp, _ = env
    cfg = tmp / "workbench.toml"
    for bad in ("0", "-5", '"soon"', "true"):
        cfg.write_text(f"[schedule]\ncell_timeout = {bad}\n")
        with pytest.raises(wb.errors.ConfigError, match="cell_timeout"):
            schedule.run(dbp, out=tmp / "r", config=cfg, now=dt.datetime(2026, 11, 24), checks=False)


@pytest.mark.parametrize("kind", ["crontab", "systemd"])
def test_export_refuses_a_path_that_would_start_a_line_of_its_own(tmp_path, kind):
    # shlex.quote keeps a newline inside its quotes: the crontab gained a job of its own, the unit a directive
    hostile = str(tmp_path / "a") + "\n* * * * * touch /tmp/pwned #"
    with pytest.raises(wb.errors.ParameterError, match="holds a line break"):
        schedule.export(kind, db=str(tmp_path / "w.duckdb"), out=hostile)


def test_export_writes_percent_signs_and_spaces_as_each_format_needs(tmp_path):
    out = tmp_path / "team reports 100%" / "reports"
    with pytest.raises(wb.errors.ParameterError, match="cannot hold '%'"):  # cron reads % as the end of the command
        schedule.export("crontab", out=str(out))
    unit = schedule.export("systemd", out=str(out))
    # systemd: % is a specifier (%%), and WorkingDirectory takes the path as written (quotes were part of it)
    assert f"WorkingDirectory={str(out.parent).replace('%', '%%')}\n" in unit
    assert "100%%/reports" in unit.split("ExecStart=")[1].splitlines()[0]


def test_a_unit_file_names_a_path_with_backslashes_and_quotes_as_systemd_reads_it(tmp_path):
    # systemd reads C escapes in ExecStart (a path with "\n" in it became a line break, "\x" an invalid escape), so
    # each argument is one double-quoted word with \ and " escaped, % and $ doubled
    out = tmp_path / "it's a \\new \"dir\" $HOME 5%" / "reports"
    unit = schedule.export("systemd", out=str(out))
    line = unit.split("ExecStart=")[1].splitlines()[0]
    want = str(out).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    assert f' "--out" "{want}"' in line, line
    assert line.startswith('"/')  # the program too, as one word


@pytest.mark.parametrize("cron", ["0 6 * * 1-5", "0 6 * * MON", "0 6 * jan *", "5/15 * * * *", "0 6 1 * 1"])
def test_a_cron_expression_systemd_cannot_say_the_same_way_is_refused_by_name(cron):
    # ranges and names crashed with a ValueError; "0 6 1 * 1" (the 1st or a Monday) became Mondays that are the 1st
    with pytest.raises(wb.errors.ParameterError, match="schedule export --systemd"):
        schedule.export("systemd", cron=cron)
    assert schedule.export("crontab", cron=cron).splitlines()[-1].startswith(cron)


@pytest.mark.parametrize("cron, part", [("0 6 L * *", "L"), ("0 6 15W * *", "15W"), ("0 6 ? * *", "?"),
                                        ("0 6 * * MON#1", "MON#1")])
def test_a_crontab_line_cron_would_refuse_is_not_exported(cron, part):
    # croniter reads "L" (last day) and friends; Debian's cron refused the exported line ("bad day-of-month")
    with pytest.raises(wb.errors.ParameterError, match=rf"uses '{re.escape(part)}', which croniter reads but cron does not"):
        schedule.export("crontab", cron=cron)


def _firing_db(path, now):
    """A database whose every call of feature chat in the 2 hours before ``now`` failed: the availability SLO pages."""
    db = wb.connect(path)
    rows = [(f"c{i}", now - dt.timedelta(minutes=i, seconds=30), "chat", "error", 500) for i in range(120)]
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status, latency_ms) values (?, ?, ?, ?, ?)", rows)
    db.close()
    return path


@pytest.fixture()
def quiet(tmp_path, monkeypatch):
    """A project folder with no report notebook: a run only does its checks."""
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setenv(reports.NOTEBOOKS_ENV, str(tmp_path / "notebooks"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


_SLO = "[slo.chat]\nlatency_ms = 6000\nlatency_target = 0.95\navailability_target = 0.99\n"


def _hook(status):
    """A webhook on 127.0.0.1 that records each body and answers ``status``."""
    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def _run_with_hook(tmp_path, dbp, config, now, **run):
    """``schedule.run`` with ``config`` (a workbench.toml's text) and a [notify] webhook on 127.0.0.1 answering 204:
    (the run's records, the bodies the webhook received, the config file)."""
    server, received = _hook(204)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(config + f'[notify]\nwebhook = "http://127.0.0.1:{server.server_port}/hook"\n')
    try:
        recs = schedule.run(dbp, out=tmp_path / "r", config=cfg, now=now, **run)
    finally:
        server.shutdown()
    return recs, received, cfg


def test_a_fired_check_names_what_fired(quiet):
    # the body said only "checks": ["slo_status"]: no feature, SLI or severity to page on
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(tmp_path / "w.duckdb", now)
    recs, received, _ = _run_with_hook(tmp_path, dbp, _SLO, now)
    [event] = [e for e in received if e["event"] == "check_fired"]
    assert event["check"] == "slo"
    assert [(f["feature"], f["sli"], f["severity"]) for f in event["fired"]] == [("chat", "availability", "page")]
    assert [(r["report"], r["status"]) for r in recs] == [("slo check", "notified")]
    assert schedule.exit_code(recs) == 0  # told: the run did its job


def test_an_slo_with_no_call_in_its_window_is_notified_as_no_data_never_read_as_healthy(quiet):
    """The exported cron job runs `schedule run`: an SLO with no call in its window (calls that stopped, a renamed
    feature) fired nothing and was not notified, as if it were met; it is notified with the firing rows, its n 0."""
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(tmp_path / "w.duckdb", now)
    recs, received, _ = _run_with_hook(tmp_path, dbp, _SLO + "[slo.search]\navailability_target = 0.9\n", now)
    [event] = [e for e in received if e["event"] == "check_fired"]
    assert [(f["feature"], f["sli"], f["severity"], f["alerts"], f["n"]) for f in event["fired"]] == [
        ("chat", "availability", "page", "page 1h/5m, page 6h/30m, ticket 1d/2h, ticket 3d/6h, budget spent 30d", 120),
        ("search", "availability", None, "no data 30d", 0)]
    assert [(r["report"], r["status"]) for r in recs] == [("slo check", "notified")]


@pytest.mark.parametrize("hook_status, command, why", [
    (500, "sh -c 'exit 3'", ["HTTP Error 500", "exit status 3"]),
    (None, "sleep 5", ["webhook", "timed out after 1 s"]),  # nobody listens on the port; the command hangs
])
def test_a_fired_check_whose_notification_fails_is_recorded_counted_and_fails_the_run(quiet, monkeypatch,
                                                                                         hook_status, command, why):
    # The webhook answered 500 and the pager exited 3: exit 0, "nothing due", nothing in runs.jsonl, failures 0.
    tmp_path = quiet
    monkeypatch.setattr(schedule, "NOTIFY_TIMEOUT", 1)
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(tmp_path / "w.duckdb", now)
    import socket

    # nobody listens: a port kept bound (never listening) for the whole test, so that no other process can take it
    # and answer (a port bound and closed again is free for the next server that starts)
    held = socket.socket()
    if hook_status:
        server, received = _hook(hook_status)
        port = server.server_port
    else:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        server, received = None, []
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(_SLO + f'[notify]\nwebhook = "http://127.0.0.1:{port}/hook"\ncommand = "{command}"\n')
    try:
        recs = schedule.run(dbp, out=tmp_path / "r", config=cfg, now=now)
    finally:
        held.close()
        if server:
            server.shutdown()
    assert len(received) == (1 if hook_status else 0)
    [rec] = recs
    assert (rec["report"], rec["status"], rec["event"]) == ("slo check", "failed", "check_fired")
    assert all(w in rec["error"] for w in why), rec["error"]
    assert rec["fired"][0]["feature"] == "chat"
    lines = [json.loads(x) for x in (tmp_path / "r" / schedule.RUNS_FILE).read_text().splitlines()]
    assert [(x["report"], x["status"]) for x in lines] == [("slo check", "failed")]
    st = schedule.status(dbp, out=tmp_path / "r", config=cfg, now=now)
    row = st.filter(st["report"] == "slo check").row(0, named=True)
    assert (row["last_status"], row["failures"]) == ("failed", 1)
    assert schedule.exit_code(recs) == 1

def test_a_budget_month_no_call_reached_is_notified_as_no_data(quiet):
    """Calls that stopped arriving last month left this month's budget at $0, ok: a scheduled run notified nothing.
    The month is 'no data', a warning, notified with its feature and status as an unpriced month is."""
    tmp_path = quiet
    db = wb.connect(tmp_path / "w.duckdb")
    db.duckdb.execute("insert into calls (call_id, ts, feature, status, cost_usd) values "
                      "('a', '2026-11-29 20:00', 'chat', 'ok', 5.0)")
    db.close()
    now = dt.datetime(2026, 12, 1, 6)  # December: no call yet, none in the day before (not yet 48 hours stale)
    recs, received, _ = _run_with_hook(tmp_path, tmp_path / "w.duckdb", "[budget.chat]\nmonthly_usd = 100\n", now)
    [event] = [e for e in received if e["event"] == "check_fired"]
    assert event["check"] == "budget"
    assert [(f["feature"], f["status"], f["alert"], f["spend_usd"]) for f in event["fired"]] == [
        ("chat", "no data", "warning", 0.0)]
    assert [(r["report"], r["status"]) for r in recs] == [("budget check", "notified")]


def test_schedule_run_exits_non_zero_when_a_fired_check_is_not_delivered(quiet, capsys):
    from workbench import cli
    from workbench.schema import utc_now

    tmp_path = quiet
    dbp = _firing_db(tmp_path / "w.duckdb", utc_now())
    server, received = _hook(503)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(_SLO + f'[notify]\nwebhook = "http://127.0.0.1:{server.server_port}/hook"\n')
    try:
        code = cli.main(["schedule", "run", "--db", str(dbp), "--out", str(tmp_path / "r"), "--config", str(cfg)])
    finally:
        server.shutdown()
    out = capsys.readouterr()
    assert code == 1 and len(received) == 1
    assert "slo check" in out.out and "HTTP Error 503" in out.out


def test_a_fired_check_with_nowhere_to_notify_says_so(quiet, capsys):
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(tmp_path / "w.duckdb", now)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(_SLO)
    recs = schedule.run(dbp, out=tmp_path / "r", config=cfg, now=now)
    assert [(r["report"], r["status"]) for r in recs] == [("slo check", "failed")]
    assert "no [notify]" in recs[0]["error"]
    assert "no [notify]" in capsys.readouterr().err
    assert json.loads((tmp_path / "r" / schedule.RUNS_FILE).read_text())["status"] == "failed"


@pytest.mark.parametrize("table, key", [
    ("[slo.chat]\nlatency_ms = 6000\nlatency_target = 0.95\navailability_target = 99\n", "availability_target"),
    (_SLO + "window_days = 7\n", "window_days"),
    ("[budget.chat]\nmonthly_usd = 0\n", "monthly_usd"),
])
def test_a_check_that_cannot_run_is_recorded_notified_and_exits_2(quiet, table, key):
    # availability_target = 99 (meant 0.99): `workbench slo` exits 2 naming the key; `schedule run` read the
    # ConfigError as "nothing declared", skipped the check and exited 0
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(tmp_path / "w.duckdb", now)
    recs, received, cfg = _run_with_hook(tmp_path, dbp, table, now)
    failed = [r for r in recs if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["event"] == "check_failed"
    assert "ConfigError" in failed[0]["error"] and key in failed[0]["error"] and "workbench.toml" in failed[0]["error"]
    assert [e["event"] for e in received] == ["check_failed"] and key in received[0]["error"]
    assert schedule.exit_code(recs) == 2
    lines = [json.loads(x) for x in (tmp_path / "r" / schedule.RUNS_FILE).read_text().splitlines()]
    assert [x["status"] for x in lines] == ["failed"]


def test_nothing_declared_is_nothing_to_check(quiet):
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(tmp_path / "w.duckdb", now)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text('[schedule]\nperiod = "week"\n')
    assert schedule.run(dbp, out=tmp_path / "r", config=cfg, now=now) == []


def test_schedule_run_exits_2_for_a_broken_slo_table(quiet, capsys):
    from workbench import cli
    from workbench.schema import utc_now

    tmp_path = quiet
    dbp = _firing_db(tmp_path / "w.duckdb", utc_now())
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[slo.chat]\nlatency_ms = 6000\nlatency_target = 0.95\navailability_target = 99\n")
    code = cli.main(["schedule", "run", "--db", str(dbp), "--out", str(tmp_path / "r"), "--config", str(cfg)])
    assert code == 2 and "availability_target" in capsys.readouterr().out


def test_a_check_that_cannot_run_and_cannot_be_notified_says_both(quiet):
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(tmp_path / "w.duckdb", now)
    server, _received = _hook(502)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[slo.chat]\navailability_target = 99\n"
                   f'[notify]\nwebhook = "http://127.0.0.1:{server.server_port}/hook"\n')
    try:
        [rec] = schedule.run(dbp, out=tmp_path / "r", config=cfg, now=now)
    finally:
        server.shutdown()
    assert "availability_target" in rec["error"] and "HTTP Error 502" in rec["error"]


@pytest.mark.parametrize("text, table, key, hint", [
    ('[notify]\nwebhook_url = "http://127.0.0.1:9/hook"\n', "notify", "webhook_url", "webhook"),
    ('[notify]\nwebhooks = "http://127.0.0.1:9/hook"\n', "notify", "webhooks", "webhook"),
    ('[notify]\ncomand = "page-oncall"\n', "notify", "comand", "command"),
    ("[schedule]\nstale_after_hour = 1\n", "schedule", "stale_after_hour", "stale_after_hours"),
    ('[schedule]\nperiods = "day"\n', "schedule", "periods", "period"),
])
def test_a_misspelt_notify_or_schedule_key_is_refused_by_name(quiet, text, table, key, hint):
    # `webhook_url = ...` was accepted and ignored: the SLO paged, the webhook was never called, exit 0
    tmp_path = quiet
    cfg = tmp_path / "team.toml"
    cfg.write_text(_SLO + text)
    dbp = _firing_db(tmp_path / "w.duckdb", dt.datetime(2026, 11, 24, 6))
    pattern = rf"team.toml \[{table}\]: unknown key '{key}'; did you mean '{hint}'\?"
    for call in (lambda: schedule.run(dbp, out=tmp_path / "r", config=cfg, now=dt.datetime(2026, 11, 24, 6)),
                 lambda: schedule.status(dbp, out=tmp_path / "r", config=cfg),
                 lambda: schedule.export("crontab", config=str(cfg))):
        with pytest.raises(wb.errors.ConfigError, match=pattern):
            call()
    assert not (tmp_path / "r" / schedule.RUNS_FILE).exists()


@pytest.mark.parametrize("text, key", [
    ("[notify]\nwebhook = 42\n", "webhook"),
    ('[notify]\nwebhook = "alerts.internal/hook"\n', "webhook"),
    ("[notify]\ncommand = true\n", "command"),
    ('[schedule]\nstale_after_hours = "2 days"\n', "stale_after_hours"),
    ("[schedule]\nstale_after_hours = 0\n", "stale_after_hours"),
    ('[schedule]\nreports = "scorecard"\n', "reports"),
])
def test_a_notify_or_schedule_value_of_the_wrong_kind_is_refused(quiet, text, key):
    cfg = quiet / "workbench.toml"
    cfg.write_text(text)
    with pytest.raises(wb.errors.ConfigError, match=rf"workbench.toml \[(notify|schedule)\]: {key}"):
        schedule.export("crontab", config=str(cfg))


def test_unknown_slo_and_budget_keys_get_the_closest_known_key(quiet):
    # the same helper refuses unknown keys of [slo.*], [budget.*] and [reports], each with its closest key
    from workbench.config import load_settings
    from workbench.metrics.slo import load_slos

    cfg = quiet / "workbench.toml"
    cfg.write_text("[slo.chat]\navailabilty_target = 0.99\n")
    with pytest.raises(wb.errors.ConfigError, match=r"\[slo.chat\]: unknown key 'availabilty_target'; did you mean "
                                                    r"'availability_target'\?"):
        load_slos(cfg)
    cfg.write_text("[budget.chat]\nmonthly_usd = 10\nwarn = 0.5\n")
    with pytest.raises(wb.errors.ConfigError, match=r"\[budget.chat\]: unknown key 'warn'; did you mean 'warn_at'\?"):
        load_settings(cfg)


def _calls_stopped_db(path, now, *, future_call=False):
    """The LLM calls stopped 5 days before ``now``; product events kept arriving up to a minute ago."""
    db = wb.connect(path)
    calls = [(f"c{i}", now - dt.timedelta(days=5, minutes=i), "chat", "ok") for i in range(50)]
    if future_call:  # a row dated in the future (a clock gone wrong on one host)
        calls.append(("late", dt.datetime(2099, 1, 1), "chat", "ok"))
    db.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, ?, ?, ?)", calls)
    events = [(f"e{i}", f"u{i % 9}", now - dt.timedelta(minutes=10 * i + 1), "open_app", "chat") for i in range(200)]
    db.duckdb.executemany("insert into events (event_id, user_id, ts, event, feature) values (?, ?, ?, ?, ?)", events)
    db.close()
    return path


@pytest.mark.parametrize("future_call", [False, True])
def test_calls_that_stopped_are_stale_though_events_arrive(quiet, future_call):
    # no call for 5 days while product events arrived: no stale_data notice, `status` said data_age_hours 0
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _calls_stopped_db(tmp_path / "w.duckdb", now, future_call=future_call)
    recs, received, cfg = _run_with_hook(tmp_path, dbp, "[schedule]\nstale_after_hours = 24\n", now, checks=False)
    assert [e["event"] for e in received] == ["stale_data"] and received[0]["hours_since"] == 120.0
    assert [(r["report"], r["status"]) for r in recs] == [("stale data", "notified")]
    st = schedule.status(dbp, out=tmp_path / "r", config=cfg, now=now)
    assert st["data_age_hours"].to_list() == [120.0] and st["stale"].to_list() == [True]


def test_the_schedule_and_the_report_read_staleness_the_same_way(tmp_path):
    from workbench.reports.attention import newest_call, staleness

    now = dt.datetime(2026, 11, 24, 6)
    dbp = _calls_stopped_db(tmp_path / "w.duckdb", now, future_call=True)
    with wb.connect(dbp, read_only=True) as db:
        assert newest_call(db, now=now) == now - dt.timedelta(days=5)  # not the events, not the row from 2099

        class Rep:  # the two attributes staleness reads of a report
            end = now

        Rep.db = db
        assert staleness(Rep()).startswith("Stale data: the newest call is from Thu 19 Nov 2026 06:00")


def test_an_exported_line_runs_with_the_config_found_at_export(quiet, monkeypatch):
    # exported in the project folder, the line named no config: cron starts it in $HOME, where no workbench.toml is
    # found; the SLO read "none declared", [notify] was empty, and the paging SLO was never notified
    import os
    import subprocess
    from pathlib import Path

    from workbench.schema import utc_now

    proj, home = quiet / "proj", quiet / "home"
    proj.mkdir()
    home.mkdir()
    monkeypatch.chdir(proj)
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    _firing_db(proj / "d.duckdb", utc_now())
    server, received = _hook(204)
    (proj / "workbench.toml").write_text(_SLO + f'[notify]\nwebhook = "http://127.0.0.1:{server.server_port}/hook"\n')
    line = schedule.export("crontab", db="d.duckdb", out="rep").splitlines()[-1]
    argv = shlex.split(line[len("0 6 * * * "):])
    assert argv[argv.index("--config") + 1] == str(proj / "workbench.toml")
    unit = schedule.export("systemd", db="d.duckdb", out="rep")
    assert f'"--config" "{proj / "workbench.toml"}"' in unit.split("ExecStart=")[1].splitlines()[0]
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_CONFIG"}
    env["PYTHONPATH"] = str(Path(schedule.__file__).resolve().parents[2])  # this checkout's workbench
    try:
        done = subprocess.run(["/bin/sh", "-c", line[len("0 6 * * * "):]], cwd=home, env=env, capture_output=True,
                              text=True, timeout=300)  # as cron runs it: the line also sets $WORKBENCH_NOTEBOOKS
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert [e["event"] for e in received] == ["check_fired"] and received[0]["fired"][0]["feature"] == "chat"


def test_an_export_with_no_config_found_says_so(quiet, monkeypatch):
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    for kind in ("crontab", "systemd"):
        text = schedule.export(kind, db="d.duckdb", out="rep")
        assert not any("--config" in x for x in text.splitlines() if not x.startswith("#"))
        assert any(x.startswith("#") and "no workbench.toml" in x for x in text.splitlines())


@pytest.mark.parametrize("broken", ["env names no file", "not TOML"])
def test_a_config_that_cannot_be_read_is_refused_not_read_as_none_found(quiet, monkeypatch, broken):
    # $WORKBENCH_CONFIG naming a file that is not there, or a ./workbench.toml with a syntax error, was read as "no
    # workbench.toml found": export printed a line with no --config (exit 0), status and run used the defaults
    # ([notify] empty), while `workbench slo` in the same folder exited 2 naming the file
    if broken == "env names no file":
        monkeypatch.setenv("WORKBENCH_CONFIG", str(quiet / "workbench.tmol"))
        pattern = r"no config file at .*workbench\.tmol"
    else:
        monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
        (quiet / "workbench.toml").write_text(_SLO + '[notify\nwebhook = "http://127.0.0.1:9/hook"\n')
        pattern = r"workbench\.toml: not valid TOML"
    dbp = _firing_db(quiet / "w.duckdb", dt.datetime(2026, 11, 24, 6))
    for call in (lambda: schedule.export("crontab", db=str(dbp), out="rep"),
                 lambda: schedule.status(dbp, out=quiet / "r"),
                 lambda: schedule.run(dbp, out=quiet / "r", now=dt.datetime(2026, 11, 24, 6))):
        with pytest.raises(wb.errors.ConfigError, match=pattern):
            call()
    assert not (quiet / "r" / schedule.RUNS_FILE).exists()


def test_a_notify_command_that_is_no_command_line_is_refused_before_the_run(quiet, capsys):
    # an unclosed quote was accepted: the fired SLO's notice raised ValueError('No closing quotation') in the middle of
    # the run, a traceback, with nothing notified and nothing written to runs.jsonl
    from workbench import cli

    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(quiet / "w.duckdb", now)
    cfg = quiet / "workbench.toml"
    cfg.write_text(_SLO + "[notify]\ncommand = \"page-oncall --team 'sre\"\n")
    with pytest.raises(wb.errors.ConfigError, match=r"workbench.toml \[notify\]: command = .*No closing quotation"):
        schedule.run(dbp, out=quiet / "r", config=cfg, now=now)
    assert cli.main(["schedule", "export", "--db", str(dbp), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "[notify]: command" in err and "Traceback" not in err
    assert not (quiet / "r" / schedule.RUNS_FILE).exists()


def test_a_database_whose_calls_never_arrived_is_stale_data(quiet):
    # product events arrive, but no LLM call was ever recorded (the tracer was never wired, the exporter points
    # elsewhere): the report says "Stale data: no call has been recorded at all", while `schedule run` sent nothing,
    # printed 'nothing due' and exited 0, and `schedule status` said stale False
    tmp_path = quiet
    now = dt.datetime(2026, 11, 24, 6)
    db = wb.connect(tmp_path / "w.duckdb")
    events = [(f"e{i}", f"u{i % 9}", now - dt.timedelta(minutes=10 * i + 1), "open_app", "chat") for i in range(50)]
    db.duckdb.executemany("insert into events (event_id, user_id, ts, event, feature) values (?, ?, ?, ?, ?)", events)
    db.close()
    recs, received, cfg = _run_with_hook(tmp_path, tmp_path / "w.duckdb", "", now, checks=False)
    assert [e["event"] for e in received] == ["stale_data"]
    assert received[0]["newest_call"] is None and "no call has been recorded" in received[0]["detail"]
    assert [(r["report"], r["status"]) for r in recs] == [("stale data", "notified")]
    assert schedule.exit_code(recs) == 0
    (tmp_path / "notebooks" / "mini.ipynb").write_text("")  # one report for status to show a row of
    st = schedule.status(tmp_path / "w.duckdb", out=tmp_path / "r", config=cfg, now=now)
    assert st["stale"].to_list()[0] is True


def _slow_hook(answer: bytes, drip: bytes, seconds: float = 20.0):
    """A webhook on 127.0.0.1 that reads a request, sends ``answer``, then ``drip`` a byte every 0.1 s for ``seconds``
    (a trickling server: each read is quick, the whole never ends): (its port, the event that stops it)."""
    import socket
    import time

    stop = threading.Event()
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        with srv:
            srv.settimeout(seconds)
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(answer)
                t0 = time.monotonic()
                while not stop.wait(0.1) and time.monotonic() - t0 < seconds:
                    try:
                        conn.sendall(drip)
                    except OSError:
                        return

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], stop


@pytest.mark.parametrize("answer, drip, status, error", [
    (b"HTTP/1.1 200 OK\r\n", b"X", "failed", "timed out after 1 s"),  # the headers never end
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n", b"x", "notified", None),  # nor does the body
])
def test_a_trickling_webhook_cannot_hold_the_run(quiet, monkeypatch, answer, drip, status, error):
    # NOTIFY_TIMEOUT was each read's timeout, and the whole answer was read: a webhook sending a byte now and then held
    # the run, and its lock, for ever (here 20 s). The exchange now has NOTIFY_TIMEOUT in all, and the 200 delivers.
    import time

    monkeypatch.setattr(schedule, "NOTIFY_TIMEOUT", 1)
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(quiet / "w.duckdb", now)
    port, stop = _slow_hook(answer, drip)
    cfg = quiet / "workbench.toml"
    cfg.write_text(_SLO + f'[notify]\nwebhook = "http://127.0.0.1:{port}/hook"\n')
    t0 = time.monotonic()
    try:
        [rec] = schedule.run(dbp, out=quiet / "r", config=cfg, now=now)
    finally:
        stop.set()
    assert time.monotonic() - t0 < 10
    assert (rec["report"], rec["status"]) == ("slo check", status)
    assert rec["error"] == (None if error is None else f"webhook http://127.0.0.1:{port}/…: {error}")


def test_a_database_no_run_can_open_is_notified_and_recorded(quiet, monkeypatch):
    # A database held by a writer (`workbench collect` then kept its database open) raised DatabaseError out of the run:
    # exit 2 on a cron job's standard error, nothing in runs.jsonl and no notice, so no report was published for as
    # long as the writer ran and the [notify] channel never said why.
    import subprocess
    import sys

    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(quiet / "w.duckdb", now)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); sys.stdin.read()", str(dbp)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT_S", "0.5")
    try:
        recs, received, _ = _run_with_hook(quiet, dbp, _SLO, now)
    finally:
        holder.communicate("", timeout=30)
    [rec] = recs
    assert (rec["report"], rec["status"], rec["event"], rec["notified"]) == ("database", "failed", "run_failed",
                                                                            ["webhook"])
    assert "DatabaseError" in rec["error"] and "locked by another process" in rec["error"]
    assert [e["event"] for e in received] == ["run_failed"] and "locked" in received[0]["error"]
    assert schedule.exit_code(recs) == 2
    lines = [json.loads(x) for x in (quiet / "r" / schedule.RUNS_FILE).read_text().splitlines()]
    assert [(x["report"], x["status"]) for x in lines] == [("database", "failed")]


def test_a_period_without_data_between_periods_with_data_is_not_due(env):
    # logging was broken for week 46 (or a B2B product has no call on a Sunday): the week was "due" on every run,
    # its report failed with "no data for 2026-W46", was notified, and the run exited 1 -- every day, for ever
    tmp, dbp, _ = env
    with wb.connect(dbp) as db:
        db.duckdb.execute("delete from calls where ts >= '2026-11-09' and ts < '2026-11-16'")
    cfg = tmp / "workbench.toml"
    cfg.write_text('[schedule]\nperiod = "week"\n')
    for period in ("2026-W45", "2026-W47"):  # published already (no notebook need run here)
        (tmp / "r" / "mini" / period).mkdir(parents=True)
        (tmp / "r" / "mini" / period / "report.html").write_text("<html><body></body></html>")
    now = dt.datetime(2026, 11, 24, 6)
    assert schedule.run(dbp, out=tmp / "r", config=cfg, now=now, checks=False) == []
    assert schedule.status(dbp, out=tmp / "r", config=cfg, now=now)["due"].to_list() == ["nothing"]
    cfg.write_text('[schedule]\nperiod = "day"\n')
    assert schedule.status(dbp, out=tmp / "r", config=cfg, now=now)["due"].to_list() == [
        "2026-11-08, 2026-11-16, 2026-11-17, 2026-11-18, 2026-11-19, 2026-11-20, 2026-11-21, 2026-11-22"]  # 8 days


def test_a_failed_notice_names_no_secret_of_the_webhook_or_the_command(quiet, capsys):
    # a Slack-style webhook's path is its token; a pager command may carry one: both were written whole into
    # runs.jsonl -- in the reports folder every reader of the reports is given -- and on standard error
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _firing_db(quiet / "w.duckdb", now)
    server, received = _hook(500)
    cfg = quiet / "workbench.toml"
    cfg.write_text(_SLO + f'[notify]\nwebhook = "http://127.0.0.1:{server.server_port}/services/T0/B0/s3cr3t?t=k3y"\n'
                          f'command = "sh -c \'exit 3\' --token=t0ken"\n')
    try:
        [rec] = schedule.run(dbp, out=quiet / "r", config=cfg, now=now)
    finally:
        server.shutdown()
    assert len(received) == 1  # delivered to the whole URL, named without its secret
    assert rec["error"] == f"command sh: exit status 3; webhook http://127.0.0.1:{server.server_port}/…: HTTP Error 500: " \
                           f"Internal Server Error"
    written = (quiet / "r" / schedule.RUNS_FILE).read_text() + capsys.readouterr().err
    assert not any(s in written for s in ("s3cr3t", "k3y", "t0ken", "services"))


def test_a_misspelt_scheduled_report_is_refused_by_name_before_the_run(env):
    # reports = ["mnii"]: every due period was a failed "no report 'mnii'" record and a notice, on every run; and
    # `schedule export` wrote the cron line without a word
    tmp, dbp, _ = env
    cfg = tmp / "workbench.toml"
    cfg.write_text('[schedule]\nreports = ["mini", "mnii"]\n')
    for call in (lambda: schedule.run(dbp, out=tmp / "r", config=cfg, now=dt.datetime(2026, 11, 24), checks=False),
                 lambda: schedule.export("crontab", db=str(dbp), out=str(tmp / "r"), config=str(cfg))):
        with pytest.raises(wb.errors.ConfigError) as err:
            call()
        assert str(err.value) == (f"workbench.toml [schedule]: reports = ['mini', 'mnii']: no report 'mnii'; did you mean "
                                  f"'mini'? (known: mini)")
    assert not (tmp / "r" / schedule.RUNS_FILE).exists()


def test_a_reports_folder_that_cannot_be_written_is_one_line_and_notified(env, capsys):
    # the reports folder gone read-only, full, or a file in its place: a traceback in cron's mail, and no notice
    from workbench import cli

    tmp, dbp, _ = env
    (tmp / "r").write_text("not a folder")
    sink = tmp / "notified.json"
    cfg = tmp / "workbench.toml"
    cfg.write_text(f'[notify]\ncommand = "sh -c \'cat > {sink}\'"\n')
    code = cli.main(["schedule", "run", "--db", str(dbp), "--out", str(tmp / "r"), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"workbench schedule: error: schedule run: cannot write the reports folder "
                                            f"{tmp / 'r'}: not a folder")
    event = json.loads(sink.read_text())
    assert event["event"] == "run_failed" and "cannot write the reports folder" in event["error"]


def test_a_run_whose_record_cannot_be_written_goes_on_and_exits_1(quiet, capsys):
    # runs.jsonl could not be appended to (a full disk): the run stopped with a traceback after the first report,
    # the others and the checks never ran
    now = dt.datetime(2026, 11, 24, 6)
    dbp = _calls_stopped_db(quiet / "w.duckdb", now)
    (quiet / "r" / schedule.RUNS_FILE).mkdir(parents=True)  # a folder where the file goes: it cannot be appended to
    recs, received, _ = _run_with_hook(quiet, dbp, "[schedule]\nstale_after_hours = 24\n", now, checks=False)
    assert [e["event"] for e in received] == ["stale_data"]
    assert [(r["report"], r["status"]) for r in recs] == [("stale data", "notified")]
    assert recs[0]["record_error"].startswith(f"not recorded in {quiet / 'r' / schedule.RUNS_FILE}: Is a directory")
    assert schedule.exit_code(recs) == 1
    assert "stale data: not recorded in" in capsys.readouterr().err


def test_status_of_a_database_that_is_not_there_is_an_error_not_all_clear(env, capsys):
    # `schedule status` started elsewhere, or with --db misspelt: every report "due nothing", "stale False" -- all
    # clear, of a database that does not exist; `schedule run` refused it
    from workbench import cli

    tmp, dbp, _ = env
    missing = tmp / "w.duckbd"
    assert cli.main(["schedule", "status", "--db", str(missing), "--out", str(tmp / "r")]) == 2
    assert capsys.readouterr().err == f"workbench schedule: error: schedule status: no database at {missing}\n"


def test_a_webhook_with_a_user_and_password_in_its_url_is_delivered_with_them(quiet):
    # https://user:token@host/hook (basic auth, as Alertmanager receivers and CI hooks take it) was never delivered:
    # urllib read "user:token@host" as the host name -- "Name or service not known" on every notice
    import base64

    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, self.headers.get("Authorization")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = schedule.notify({"webhook": f"http://pager:s%40fe@127.0.0.1:{server.server_port}/hook?x=1"},
                               {"event": "stale_data"})
    finally:
        server.shutdown()
    assert done == ["webhook"]
    assert got == [("/hook?x=1", "Basic " + base64.b64encode(b"pager:s@fe").decode())]


def test_an_exported_line_names_the_default_database_by_its_absolute_path(quiet, monkeypatch):
    # exported in the project folder without --db, the line named no database: cron starts it in $HOME, where
    # datasets/workbench.duckdb is not, and every scheduled run failed with "no database at ~/datasets/..."
    monkeypatch.delenv("WORKBENCH_DB", raising=False)
    (quiet / "datasets").mkdir()
    wb.connect(quiet / "datasets" / "workbench.duckdb").close()
    line = schedule.export("crontab", out="rep").splitlines()[-1]
    argv = shlex.split(line[len("0 6 * * * "):])
    assert argv[argv.index("--db") + 1] == str(quiet / "datasets" / "workbench.duckdb")
    (quiet / "datasets" / "workbench.duckdb").unlink()  # none there: the line still names it, and a comment says so
    text = schedule.export("systemd", out="rep")
    assert f'"--db" "{quiet / "datasets" / "workbench.duckdb"}"' in text
    assert f"# no database at {quiet / 'datasets' / 'workbench.duckdb'}: export with --db to name one" in text


def test_an_index_that_cannot_be_written_after_a_publish_is_one_line_naming_the_file(env, monkeypatch, capsys):
    # the disk filled up after the report was published, while reports/index.html was written: a raw OSError
    # (a traceback from `workbench report`; "OSError: [Errno 28] ..." naming no file in the run's record)
    from workbench import cli
    from workbench.reports import index

    tmp, dbp, _ = env
    real = index.written_atomically

    def full_disk(path, **kw):
        if path.name != index.INDEX_NAME:
            return real(path, **kw)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index, "written_atomically", full_disk)
    out = tmp / "r"
    assert cli.main(["report", "mini", "--db", str(dbp), "--out", str(out), "--period", "2026-W46"]) == 2
    err = capsys.readouterr().err
    assert err == (f"workbench report: error: report 'mini': published {out / 'mini' / '2026-W46'}, but the reports "
                   f"index was not updated: cannot write {out / 'index.html'}: No space left on device\n")
    assert (out / "mini" / "2026-W46" / "report.html").exists() and not (out / "index.html").exists()
    recs = schedule.run(dbp, out=out, names=["mini"], now=dt.datetime(2026, 11, 24, 6), checks=False)
    assert [(r["report"], r["period"], r["status"]) for r in recs if r["report"] == "mini"] == [
        ("mini", "2026-W45", "failed"), ("mini", "2026-W47", "failed")]
    assert recs[0]["error"] == (f"ReportError: report 'mini': published {out / 'mini' / '2026-W45'}, but the reports "
                                f"index was not updated: cannot write {out / 'index.html'}: No space left on device")


def test_an_exported_line_runs_with_the_notebooks_folder_of_workbench_notebooks(env, monkeypatch):
    # $WORKBENCH_NOTEBOOKS named the report notebooks at export, but the line did not carry it: cron starts the run
    # without it, where report 'mini' is unknown and no report was ever published
    import os
    import subprocess
    from pathlib import Path

    tmp, dbp, nbdir = env
    odd = tmp / "my $notebooks"
    nbdir.rename(odd)
    monkeypatch.setenv(reports.NOTEBOOKS_ENV, "my $notebooks")  # relative: the line names it absolutely
    (tmp / "workbench.toml").write_text('[schedule]\nreports = ["mini"]\nmax_catchup = 1\n[notify]\ncommand = "true"\n')
    line = schedule.export("crontab", db=str(dbp), out="r").splitlines()[-1]
    assert line.startswith(f"0 6 * * * WORKBENCH_NOTEBOOKS='{odd}' ")
    unit = schedule.export("systemd", db=str(dbp), out="r").splitlines()
    assert unit[unit.index("[Service]") + 3] == f'Environment="WORKBENCH_NOTEBOOKS={odd}"'
    env = {k: v for k, v in os.environ.items() if k != reports.NOTEBOOKS_ENV}
    env["PYTHONPATH"] = str(Path(schedule.__file__).resolve().parents[2])  # this checkout's workbench
    home = tmp / "home"
    home.mkdir()
    done = subprocess.run(["/bin/sh", "-c", line[len("0 6 * * * "):]], cwd=home, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp / "r" / "mini" / "2026-W47" / "report.html").exists()
    monkeypatch.delenv(reports.NOTEBOOKS_ENV)  # not set: the line and the unit set nothing
    (tmp / "workbench.toml").write_text("[schedule]\nmax_catchup = 1\n")
    assert "WORKBENCH_NOTEBOOKS" not in schedule.export("crontab", db=str(dbp), out="r")
    assert "Environment=" not in schedule.export("systemd", db=str(dbp), out="r")


def test_a_record_after_a_half_written_line_is_not_lost(env):
    # runs.jsonl's last record was cut off (the disk filled up in the middle of it; here inside an "é"): the next
    # record was appended to it, the two made one line no reader could parse, and status said the report never ran
    tmp, dbp, _ = env
    cfg = tmp / "workbench.toml"
    cfg.write_text('[schedule]\nperiod = "week"\nmax_catchup = 1\n')
    (tmp / "r").mkdir()
    (tmp / "r" / schedule.RUNS_FILE).write_bytes(b'{"report": "mini", "period": "2026-W44", "error": "caf\xc3')
    now = dt.datetime(2026, 11, 24, 6)
    recs = schedule.run(dbp, out=tmp / "r", config=cfg, now=now, checks=False)
    assert [(r["report"], r["period"], r["status"]) for r in recs] == [("mini", "2026-W47", "published")]
    lines = (tmp / "r" / schedule.RUNS_FILE).read_bytes().split(b"\n")
    assert lines[0] == b'{"report": "mini", "period": "2026-W44", "error": "caf\xc3' and lines[2] == b""
    assert json.loads(lines[1])["period"] == "2026-W47"
    row = schedule.status(dbp, out=tmp / "r", config=cfg, now=now).row(0, named=True)
    assert (row["last_period"], row["last_status"]) == ("2026-W47", "published")
