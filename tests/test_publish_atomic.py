"""Publishing a report is atomic: real `run_report` processes killed with SIGKILL at each stage, a failing cell, and
`--force`, never leave the period without its previous report, and archives never overwrite one another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import workbench as wb
from workbench.reports import publish as reports

PERIOD = "2026-11-16"


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('db = ""\nstart = None\nend = None\nperiod = None\nout_dir = None\nconfig = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[nbformat.v4.new_code_cell(c) for c in cells]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def site(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    monkeypatch.setenv(reports.NOTEBOOKS_ENV, str(nbdir))
    dbp = tmp_path / "w.duckdb"
    with wb.connect(dbp) as db:  # one call in the reported week: a period without data is refused, not published
        db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('c1', '2026-11-16 10:00', 'chat', 'ok')")
    # a light notebook (the kill tests are about publishing, not metrics); it fails when asked to
    _notebook(nbdir / "tiny.ipynb", "import os\nassert not os.environ.get('TINY_FAIL'), 'asked to fail'\nprint('tiny ran')")
    return tmp_path, dbp


def _published(out: Path) -> dict:
    """The published run's params.json; every report file present and non-empty."""
    for f in ("report.html", "report.ipynb", "params.json"):
        assert (out / f).stat().st_size > 0, f
    return json.loads((out / "params.json").read_text())


def _run_killed_at(tmp: Path, dbp: Path, stage: str, *, force: bool = False) -> None:
    """Start `run_report` in a real process, wait until it reports the pause at ``stage``, SIGKILL it."""
    env = {**os.environ, reports.PAUSE_ENV: f"{stage}:120"}
    code = ("import sys; from workbench.reports.publish import run_report; "
            f"run_report('tiny', db={str(dbp)!r}, out={str(tmp / 'reports')!r}, period={PERIOD!r}, force={force})")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if f"paused at {stage}" in line or not line:
                break
        assert f"paused at {stage}" in line, f"the run never reached {stage}: {line!r} rc={proc.poll()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_at_every_stage_keeps_the_previous_report(site):
    tmp, dbp = site
    out = reports.run_report("tiny", db=dbp, out=tmp / "reports", period=PERIOD)
    first = _published(out)
    # killed before the notebook runs, after it ran, and just before the rename: the previous report is untouched
    for stage in ("execute", "html", "publish"):
        _run_killed_at(tmp, dbp, stage)
        assert _published(out) == first, stage
        assert not (out / "archive").exists(), stage
    # each run first removes the builds of dead runs: only the last killed run's build is left, hidden and named
    debris = [p.name for p in out.parent.iterdir() if p.name.endswith("~build")]
    assert len(debris) == 1 and debris[0].startswith(f".{PERIOD}~"), debris
    # killed after the swap, before archiving: the new run is published, the previous one waits whole aside ...
    _run_killed_at(tmp, dbp, "archive")
    second = _published(out)
    assert second["run_id"] != first["run_id"]
    # ... and the next run cleans up the dead builds and archives that previous run under a unique name
    reports.run_report("tiny", db=dbp, out=tmp / "reports", period=PERIOD)
    third = _published(out)
    archived = sorted(p.name for p in (out / "archive").iterdir())
    assert len(archived) == 2 and len(set(archived)) == 2
    assert {json.loads((out / "archive" / a / "params.json").read_text())["run_id"] for a in archived} == {
        first["run_id"], second["run_id"]}
    assert third["run_id"] not in {first["run_id"], second["run_id"]}
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".") and not p.name.endswith("~lock")] == []


def test_force_plus_kill_never_deletes_the_previous_report(site):
    tmp, dbp = site
    out = reports.run_report("tiny", db=dbp, out=tmp / "reports", period=PERIOD)
    first = _published(out)
    _run_killed_at(tmp, dbp, "publish", force=True)  # killed before the swap: the previous report is in place
    assert _published(out) == first
    _run_killed_at(tmp, dbp, "archive", force=True)  # killed after the swap, before the delete: kept aside ...
    second = _published(out)
    assert second["run_id"] != first["run_id"]
    reports.run_report("tiny", db=dbp, out=tmp / "reports", period=PERIOD, force=True)
    archived = list((out / "archive").iterdir())  # ... and archived by the next run, not deleted
    assert [json.loads((a / "params.json").read_text())["run_id"] for a in archived] == [first["run_id"]]


def test_failing_cell_leaves_the_published_report_in_place(site, monkeypatch):
    tmp, dbp = site
    out = reports.run_report("tiny", db=dbp, out=tmp / "reports", period=PERIOD)
    first = _published(out)
    monkeypatch.setenv("TINY_FAIL", "1")
    with pytest.raises(reports.ReportError, match="cell 2 failed: AssertionError: asked to fail"):
        reports.run_report("tiny", db=dbp, out=tmp / "reports", period=PERIOD)
    assert _published(out) == first and not (out / "archive").exists()


@pytest.mark.parametrize("name", ["../../elsewhere/evil", "tiny/../tiny", "/etc/passwd", "tiny\n", "_private", "",
                                  "TINY", "tiny.ipynb"])
def test_report_names_are_notebook_stems_only(site, name):
    tmp, dbp = site
    (tmp / "elsewhere").mkdir()
    _notebook(tmp / "elsewhere" / "evil.ipynb", "open('pwned', 'w').write('x')")
    with pytest.raises(wb.errors.UnknownNameError, match="no report"):
        reports.run_report(name, db=dbp, out=tmp / "reports", period=PERIOD)
    assert not (tmp / "reports").exists() and not (tmp / "elsewhere" / "evil").exists()


@pytest.mark.parametrize("period", ["2026-W47\n", "2026-W47 ", "\n2026-W47", "2026-11\n", "2026-11-20\n",
                                    "2026-11-20..2026-11-22\n", "../2026-W47", "2026-W47/x", "２０２６-11",
                                    "2026-W54", "2026-13", "2026-02-30", "9999-W52", "2026-11-20..2026-11-20/..",
                                    "0000-01-01", "2026-W47\x00"])
def test_periods_outside_the_grammar_are_refused(period):
    with pytest.raises(wb.errors.ParameterError, match="resolve_period"):
        reports.resolve_period(period)


def test_cli_report_exit_codes(site, capsys):
    from workbench.cli import main

    tmp, dbp = site
    assert main(["report", "../../elsewhere/evil", "--db", str(dbp), "--out", str(tmp / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no report" in err
    assert main(["report", "tiny", "--db", str(dbp), "--out", str(tmp / "r"), "--period", "2026-W47\n"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err
    os.environ["TINY_FAIL"] = "1"
    try:
        assert main(["report", "tiny", "--db", str(dbp), "--out", str(tmp / "r"), "--period", PERIOD]) == 2
    finally:
        del os.environ["TINY_FAIL"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cell 2 failed" in err and "Traceback" not in err


def test_a_reports_folder_that_is_a_file_is_one_line_naming_it(site, capsys):
    # `--out report.html` (a file where the folder goes) was a NotADirectoryError traceback from mkdir
    from workbench.cli import main

    tmp, dbp = site
    (tmp / "afile").write_text("kept\n")
    for out in (tmp / "afile", tmp / "afile" / "sub"):
        assert main(["report", "tiny", "--db", str(dbp), "--out", str(out), "--period", PERIOD]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{out}: cannot make the reports folder" in err, err
        assert "Traceback" not in err
    assert (tmp / "afile").read_text() == "kept\n"


def test_links_placed_in_the_reports_folder_are_never_written_through(site):
    tmp, dbp = site
    out, outside = tmp / "reports", tmp / "outside"
    outside.mkdir()
    (outside / "important.conf").write_text("IMPORTANT\n")
    (outside / "victim.html").write_text("<html><body>VICTIM</body></html>")
    out.mkdir()
    os.symlink(outside / "important.conf", out / "index.html.tmp")  # the index was written through it, then renamed
    (out / "evil" / "p").mkdir(parents=True)
    os.symlink(outside / "victim.html", out / "evil" / "p" / "report.html")  # rewritten in place with the nav bar
    reports.run_report("tiny", db=str(dbp), out=str(out), period=PERIOD)
    assert (outside / "important.conf").read_text() == "IMPORTANT\n"
    assert (outside / "victim.html").read_text() == "<html><body>VICTIM</body></html>"
    assert not (out / "index.html").is_symlink() and "<h1>Reports</h1>" in (out / "index.html").read_text()
    # a period folder that is a link: refused before anything runs (was an OSError from rmtree, after publishing)
    (outside / "kept").mkdir()
    (tmp / "r2" / "tiny").mkdir(parents=True)
    os.symlink(outside / "kept", tmp / "r2" / "tiny" / PERIOD)
    with pytest.raises(wb.errors.ReportError, match="is a symbolic link"):
        reports.run_report("tiny", db=str(dbp), out=str(tmp / "r2"), period=PERIOD)
    assert list((outside / "kept").iterdir()) == []


def test_a_reports_folder_with_braces_in_its_name_publishes(site):
    tmp, dbp = site
    out = tmp / "reports {x}"  # papermill formats its paths with the parameters: "Missing parameter 'x'"
    published = reports.run_report("tiny", db=str(dbp), out=str(out), period=PERIOD)
    assert Path(published).parent.parent == out and (out / "tiny" / PERIOD / "report.html").stat().st_size > 0


def test_run_all_publishes_the_others_when_one_report_fails(site):
    """`run_all` (make demo, `workbench report all`) tries every report: a failing notebook is named in one error at
    the end, and the reports after it are published all the same."""
    tmp, dbp = site
    nbdir = tmp / "notebooks"
    _notebook(nbdir / "broken.ipynb", "raise RuntimeError('cell fails')")  # sorted first: it runs before tiny
    with pytest.raises(reports.ReportError, match=r"1 of 2 reports failed .*broken: .*cell fails") as info:
        reports.run_all(dbp, out=tmp / "reports", period=PERIOD, progress=False)
    assert info.value.published == [tmp / "reports" / "tiny" / PERIOD]
    _published(tmp / "reports" / "tiny" / PERIOD)
    assert not (tmp / "reports" / "broken" / PERIOD).exists()


def test_the_index_never_lists_the_build_of_a_run_in_progress_or_killed(tmp_path):
    # a run killed after its HTML was written (or one still running beside another `report` or `schedule run`)
    # leaves reports/<name>/.<period>~<run id>~build/report.html: the index listed it as a period of its own, with
    # a link that died as soon as the build was published or cleaned up
    from workbench.reports.index import build_index, published

    out = tmp_path / "reports"
    for folder in ("2026-W47", ".2026-W48~20261207T060000Z-0a1b2c3d~build", ".2026-W46~20261207T060000Z-4e5f~previous"):
        (out / "tiny" / folder).mkdir(parents=True)
        (out / "tiny" / folder / "report.html").write_text("<html><body><h1>Tiny</h1></body></html>")
        (out / "tiny" / folder / "params.json").write_text(json.dumps({"start": "2026-11-16"}))
    assert [(r["report"], r["period"]) for r in published(out)] == [("tiny", "2026-W47")]
    build_index(out)
    index = (out / "index.html").read_text()
    assert "~build" not in index and "~previous" not in index and 'href="tiny/2026-W47/report.html"' in index
    assert "(2026-W48): not published" in (out / "tiny" / "2026-W47" / "report.html").read_text()


def test_an_index_built_beside_a_publish_lists_it_and_never_writes_an_old_page_over_it(tmp_path):
    # `report all` by hand while `schedule run` publishes: each rebuilt the index from what it had listed, so the one
    # that listed first wrote last -- an index without the other's report, a navigation bar rewritten from a page
    # read before the other's publish (the previous run's page in place of the new one)
    from workbench.reports.index import build_index

    out = tmp_path / "reports"
    for folder in ("2026-W46", ".2026-W47~20261207T060000Z-0a1b2c3d~build"):
        (out / "tiny" / folder).mkdir(parents=True)
        (out / "tiny" / folder / "report.html").write_text(f"<html><body><h1>{folder[:9]}</h1></body></html>")
    env = {**os.environ, reports.PAUSE_ENV: "index:3"}
    code = f"from workbench.reports.index import build_index; build_index({str(out)!r})"
    other = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert "paused at index" in other.stderr.readline()  # it has listed the reports, and not written yet
        build = out / "tiny" / ".2026-W47~20261207T060000Z-0a1b2c3d~build"
        reports._publish(build, out / "tiny" / "2026-W47", force=False)  # as run_report publishes, then indexes
        build_index(out)
    finally:
        other.wait(60)
    assert other.returncode == 0
    assert 'href="tiny/2026-W47/report.html"' in (out / "index.html").read_text()


def test_a_build_that_cannot_be_written_is_removed_and_said_in_one_line(site):
    # the disk filled up while params.json was written: a raw OSError (a traceback from `workbench report`), and the
    # build -- the whole report, hundreds of kB -- left on the full disk. Here the notebook puts a folder where
    # params.json goes, so that writing it fails as on a full disk.
    tmp, dbp = site
    _notebook(tmp / "notebooks" / "full.ipynb", "import os\nos.mkdir(os.path.join(out_dir, 'params.json'))")
    with pytest.raises(reports.ReportError) as err:
        reports.run_report("full", db=dbp, out=tmp / "reports", period=PERIOD)
    assert str(err.value).startswith("report 'full': cannot write ") and str(err.value).endswith(
        "params.json: Is a directory")
    assert [p.name for p in (tmp / "reports" / "full").iterdir() if not p.name.endswith("~lock")] == []
