"""The offline detector calibrated on a team's labelled answers (workbench.eval.calibrate), end to end: the mapping
by hand, the fit on real labelled sets, the file, the CLI, workbench.toml, and the metrics reading its scores."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.errors import ConfigError, MissingFileError, ParameterError
from workbench.eval import calibrate as C
from workbench.eval import detector as D
from workbench.detector_config import detector_choice, detector_identity
from workbench.eval.nli import load_detector
from workbench.stats import expected_calibration_error

ROOT = Path(__file__).resolve().parents[1]
CONTRASTIVE = ROOT / "datasets" / "halu_contrastive.jsonl"
CTX = ["The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall."]


def _sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _halves(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    idx = np.random.default_rng(seed).permutation(len(rows))
    h = len(rows) // 2
    return [rows[i] for i in idx[:h]], [rows[i] for i in idx[h:]]


def _cal(scale: float = 1.0, shift: float = 0.0, version: str = D.DETECTOR_VERSION) -> C.Calibration:
    return C.Calibration(scale=scale, shift=shift, detector_version=version, rows=100, hallucinated=30)


# -- the mapping ----------------------------------------------------------------------------------------------------


def test_the_mapping_by_hand():
    c = _cal(2.0, -1.0)
    assert c.apply(0.5) == pytest.approx(_sig(-1.0), abs=1e-12)  # logit 0.5 = 0
    assert c.apply(_sig(1.0)) == pytest.approx(_sig(1.0), abs=1e-12)  # 2 * 1 - 1 = 1
    assert c.apply(_sig(-3.0)) == pytest.approx(_sig(-7.0), abs=1e-12)
    assert 0.0 < c.apply(0.0) < c.apply(0.9) < c.apply(1.0) <= 1.0  # the ends are clipped: no log of 0
    assert _cal(2.0, -1.0).tag == c.tag != _cal(2.0, -0.5).tag != _cal(2.0, -1.0, "2.6.1").tag


def test_the_calibrated_detector_keeps_claims_and_order_and_moves_probability_and_label():
    det = C.CalibratedDetector(_cal(1.0, -3.0))
    answers = ["The Eiffel Tower was completed in 1889.", "It was completed in 1887.", "It is 500 metres tall in Rome."]
    base = [D.detect(a, CTX) for a in answers]
    got = list(det.detect_batch([{"answer": a, "contexts": CTX} for a in answers]))
    assert [g.claims for g in got] == [b.claims for b in base]
    assert [g.score for g in got] == pytest.approx([_sig(math.log(b.score / (1 - b.score)) - 3.0) for b in base])
    assert np.argsort([g.score for g in got]).tolist() == np.argsort([b.score for b in base]).tolist()
    assert base[1].label == 1 and got[1].label == (got[1].score >= 0.5)
    assert det.detect("", CTX).unscorable
    assert det.DETECTOR_NAME == "support" and det.DETECTOR_VERSION == f"{D.DETECTOR_VERSION}+{det.calibration.tag}"


# -- the fit ----------------------------------------------------------------------------------------------------------


def test_the_fit_recovers_a_known_mapping_from_labels_drawn_by_it():
    """Labels drawn with P(1) = sigmoid(0.5 * logit(p) - 1) from the detector's own probabilities on 410 real answers:
    the fit finds scale 0.5 and shift -1 back (within what 410 draws allow)."""
    rows = _rows(CONTRASTIVE)
    p = np.array([d.score for d in D.detect_batch(rows)])
    z = np.log(p / (1 - p))
    found = []
    for seed in range(4):
        y = (np.random.default_rng(seed).random(len(p)) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(int)
        cal = C.fit_calibration([{**r, "label": int(v), "source": "team"} for r, v in zip(rows, y)], seed=seed)
        found.append((cal.scale, cal.shift))
    scale, shift = np.mean(found, axis=0)
    assert scale == pytest.approx(0.5, abs=0.1) and shift == pytest.approx(-1.0, abs=0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibrating_on_half_a_labelled_set_lowers_the_error_on_the_other_half(seed):
    """The contrastive set (shipped): fitted on one half, the calibration error of the other half falls (measured
    0.126 -> 0.100, 0.124 -> 0.106, 0.159 -> 0.139 for seeds 0-2) and the Brier score with it."""
    fit_rows, held = _halves(_rows(CONTRASTIVE), seed)
    cal = C.fit_calibration(fit_rows)
    y = [r["label"] for r in held]
    before = [d.score for d in D.detect_batch(held)]
    after = [d.score for d in C.CalibratedDetector(cal).detect_batch(held)]
    assert expected_calibration_error(y, after) < expected_calibration_error(y, before)
    assert np.mean((np.array(after) - y) ** 2) < np.mean((np.array(before) - y) ** 2)
    r = cal.report
    assert r["ece_after"] < r["ece_before"] and r["brier_after"] < r["brier_before"] and r["auroc"] > 0.9
    assert cal.rows == len(fit_rows) and cal.hallucinated == sum(x["label"] for x in fit_rows)


def test_calibrating_on_dialogue_halves_its_error():
    """BEGIN (halu_dev, dialogue): calibrated on half, the other half's calibration error falls from 0.121 to 0.056."""
    path = next((p for p in [ROOT / "datasets" / "halu_dev.jsonl",
                             Path(os.environ.get("WORKBENCH_SHARED", "/nonexistent")) / "data" / "halu_dev.jsonl",
                             ROOT.parent / "shared" / "data" / "halu_dev.jsonl"] if p.exists()), None)
    if path is None:
        pytest.skip("halu_dev.jsonl not found (datasets/, $WORKBENCH_SHARED/data, ../shared/data)")
    begin = [r for r in _rows(path) if r["source"] == "BEGIN"]
    fit_rows, held = _halves(begin, 0)
    y = [r["label"] for r in held]
    before = expected_calibration_error(y, [d.score for d in D.detect_batch(held)])
    after = expected_calibration_error(y, [d.score for d in C.CalibratedDetector(C.fit_calibration(fit_rows))
                                             .detect_batch(held)])
    assert before == pytest.approx(0.121, abs=0.002) and after == pytest.approx(0.056, abs=0.002)


def test_the_fit_refuses_what_it_cannot_calibrate():
    good = [{"answer": "It was completed in 1889.", "contexts": CTX, "label": 0}] * 5
    bad = [{"answer": "It was completed in 1887 in Rome.", "contexts": CTX, "label": 1}] * 5
    with pytest.raises(ParameterError, match="at least two scorable answers of each label, got 1 labelled 1"):
        C.fit_calibration(good + bad[:1])
    with pytest.raises(ParameterError, match=r"do not rank these labels \(AUROC 0.000.*label 1 means hallucinated"):
        C.fit_calibration([{**r, "label": 1 - r["label"]} for r in good + bad])  # labels the wrong way round
    unscorable = [{"answer": "", "contexts": CTX, "label": 1}] * 3
    cal = C.fit_calibration(good + bad + unscorable, folds=2)
    assert cal.rows == 10 and cal.report["unscorable"] == 3 and "below 50" in cal.report["warning"]
    with pytest.raises(ParameterError, match="folds"):
        C.fit_calibration(good + bad, folds=1)


def test_platt_scaling_matches_an_independent_fit():
    """fit_platt against fits computed outside the workbench (scipy): the unpenalised maximum likelihood where the
    labels overlap (Nelder-Mead), Platt's targets where the scores separate them (labels 1 as (N1 + 1) / (N1 + 2),
    labels 0 as 1 / (N0 + 2); BFGS polished by Newton steps). Separated, the fit had no optimum: 50 Newton steps left
    scale 26.0 on the first separated set (exact 0 and 1 out of the calibration)."""
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0] * 4)
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0], float)
    assert C.fit_platt(z, y) == pytest.approx((0.67399639, 0.0), abs=1e-6)
    assert C.fit_platt(z, y, np.array([1.0, 2.0] * 10)) == pytest.approx((0.58306997, 0.0), abs=1e-6)
    zq, yq = z, np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 1] * 2, float)  # separated but at z = 0, where both labels sit
    assert C.fit_platt(zq, yq) == pytest.approx((1.58740096, 0.0), abs=1e-7)
    assert C.fit_platt(zq, yq, np.array([1.0, 2.0] * 10)) == pytest.approx((1.6020391, -0.22997092), abs=1e-7)
    zs, ys = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]), np.array([0, 0, 0, 1, 1, 1.0])
    assert C.fit_platt(zs, ys) == pytest.approx((0.62140196, 0.0), abs=1e-7)
    assert C.fit_platt(zs, ys, np.array([1, 2, 1, 1, 0.5, 1])) == pytest.approx((0.62332707, -0.03125849), abs=1e-7)
    assert C.fit_platt(zs, np.ones(6)) == pytest.approx((0.0, math.log(7.0)), abs=1e-7)  # one label: its target, 7/8


def test_labels_the_scores_separate_are_not_calibrated_to_certainty():
    """Twelve answers per label that the detector ranks perfectly: the unpenalised fit has no optimum, and 50 Newton
    steps left scale 15.8, so every answer scored exactly 0 or 1 and the cross-validated error read 0.0."""
    good = ["It was completed in 1889.", "It is 330 metres tall.", "The tower is in Paris.",
            "It was completed in 1889 in Paris."]
    bad = ["It was completed in 1887.", "It is 500 metres tall.", "The tower is in Rome.",
           "It was painted green in 1950."]
    rows = ([{"answer": a, "contexts": CTX, "label": 0} for a in good] * 3
            + [{"answer": a, "contexts": CTX, "label": 1} for a in bad] * 3)
    cal = C.fit_calibration(rows, folds=3)
    probs = [cal.apply(D.detect(a, CTX).score) for a in good + bad]
    assert all(0.01 < q < 0.99 for q in probs), probs
    assert min(probs[4:]) > max(probs[:4]) and cal.report["ece_after"] > 0


# -- the file -------------------------------------------------------------------------------------------------------


def test_the_file_round_trips_and_bad_files_name_file_and_field(tmp_path):
    cal = C.fit_calibration(_rows(CONTRASTIVE)[:120])
    path = C.write_calibration(cal, tmp_path / "cal.json")
    back = C.read_calibration(path)
    assert (back.scale, back.shift, back.detector_version, back.tag) == (cal.scale, cal.shift, cal.detector_version,
                                                                         cal.tag)
    assert C.load_calibrated(path).DETECTOR_VERSION == f"{D.DETECTOR_VERSION}+{cal.tag}"
    with pytest.raises(MissingFileError, match="nope.json does not exist"):
        C.read_calibration(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not a calibration file"):
        C.read_calibration(tmp_path / "bad.json")
    spec = json.loads(path.read_text())
    for field, value, message in [("scale", 0, "field 'scale' must be a number > 0, got 0"),
                                  ("shift", "x", "field 'shift' must be a finite number"),
                                  ("detector_version", None, "field 'detector_version'"),
                                  ("detector", "nli", "not a calibration of the offline detector"),
                                  ("scale", 10 ** 400, "field 'scale' must be a number > 0")]:  # was OverflowError
        (tmp_path / "f.json").write_text(json.dumps({**spec, field: value}))
        with pytest.raises(ConfigError, match=message):
            C.read_calibration(tmp_path / "f.json")
    (tmp_path / "old.json").write_text(json.dumps({**spec, "detector_version": "2.6.1"}))
    with pytest.raises(ConfigError, match=r"old.json: fitted for detector support 2.6.1, this is .*fit it again"):
        C.load_calibrated(tmp_path / "old.json")


def test_a_calibration_file_edited_in_notepad_loads(tmp_path):
    # Notepad (and PowerShell's Set-Content -Encoding UTF8) saves UTF-8 with a byte-order mark: the file a team edited
    # by hand was refused as "not a calibration file (Unexpected UTF-8 BOM ...)"
    cal = C.Calibration(scale=1.5, shift=-0.5, detector_version=D.DETECTOR_VERSION, rows=120, hallucinated=40)
    path = tmp_path / "cal.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(cal.to_json(), indent=2).replace("\n", "\r\n").encode())
    back = C.load_calibrated(path).calibration
    assert (back.scale, back.shift, back.tag) == (1.5, -0.5, cal.tag)


def test_calibrate_out_refuses_a_folder_and_a_file_that_is_no_calibration(tmp_path, capsys):
    # `--out LABELLED.jsonl` (the input named twice) replaced the team's labels with the calibration; `--out FOLDER`
    # failed with IsADirectoryError's traceback after the whole fit.
    from workbench.cli import main

    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(r) + "\n" for r in _rows(CONTRASTIVE)[:40]))
    before = labelled.read_bytes()
    assert main(["hallucination", "calibrate", str(labelled), "--out", str(labelled)]) == 2
    err = capsys.readouterr().err
    assert f"{labelled} exists and is not a calibration file: it is not overwritten" in err, err
    assert labelled.read_bytes() == before
    assert main(["hallucination", "calibrate", str(labelled), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is a folder: name the file to write, e.g. {tmp_path / 'calibration.json'}" in err, err
    assert "Traceback" not in err
    out = tmp_path / "cal.json"  # a calibration is replaced by the next fit
    assert main(["hallucination", "calibrate", str(labelled), "--out", str(out)]) == 0
    assert main(["hallucination", "calibrate", str(labelled), "--out", str(out)]) == 0
    assert C.read_calibration(out).rows == 40


# -- CLI, workbench.toml, evaluate and the metrics ------------------------------------------------------------------


def test_cli_calibrate_then_score_with_it(tmp_path):
    rows = _rows(CONTRASTIVE)
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(r) + "\n" for r in rows[:200]))
    exe = [sys.executable, "-m", "workbench.cli", "hallucination"]
    r = subprocess.run([*exe, "calibrate", str(labelled)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and "--out FILE.json is required" in r.stderr
    out = tmp_path / "cal.json"
    r = subprocess.run([*exe, "calibrate", str(labelled), "--out", str(out)], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "expected calibration error" in r.stdout and "5-fold cross-validated" in r.stdout and str(out) in r.stdout
    cal = C.read_calibration(out)
    score_in = tmp_path / "in.jsonl"
    score_in.write_text("".join(json.dumps({k: v for k, v in x.items() if k != "label"}) + "\n" for x in rows[200:230]))
    scored = tmp_path / "scored.jsonl"
    r = subprocess.run([*exe, "score", str(score_in), "--out", str(scored), "--detector", f"support:{out}"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in scored.read_text().splitlines()]
    want = [cal.apply(d.score) for d in D.detect_batch(rows[200:230])]
    assert [g["score"] for g in got] == pytest.approx(want, abs=1e-6)
    assert {g["detector_version"] for g in got} == {f"{D.DETECTOR_VERSION}+{cal.tag}"}
    r = subprocess.run([*exe, "score", str(score_in), "--out", str(scored), "--detector", "support:"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and "needs a calibration file: support:PATH" in r.stderr


def test_workbench_toml_selects_the_calibration_and_the_metrics_read_its_scores(tmp_path):
    cal = C.fit_calibration(_rows(CONTRASTIVE)[:150])
    C.write_calibration(cal, tmp_path / "cal.json")
    toml = tmp_path / "workbench.toml"
    toml.write_text('[detector]\ncalibration = "cal.json"\n')  # relative to the file
    assert detector_identity(toml) == ("support", f"{D.DETECTOR_VERSION}+{cal.tag}")
    assert load_detector(None, config=toml).DETECTOR_VERSION == f"{D.DETECTOR_VERSION}+{cal.tag}"
    db = wb.connect(str(tmp_path / "wb.duckdb"), config=toml)
    db.duckdb.execute(
        "insert into calls (call_id, ts, feature, status) values ('a', '2026-01-01', 'chat', 'ok'), "
        "('b', '2026-01-01', 'chat', 'ok'), ('c', '2026-01-01', 'chat', 'ok');"
        "insert into answers (call_id, ts, contexts, answer) values "
        f"('a', '2026-01-01', {CTX!r}, 'The Eiffel Tower was completed in 1889.'), "
        f"('b', '2026-01-01', {CTX!r}, 'It was completed in 1887 in Rome.'), "
        f"('c', '2026-01-01', {CTX!r}, 'It is 330 metres tall.')")
    s = wb.evaluate(db, progress=False)  # no detector named: workbench.toml's
    assert (s["evaluator"], s["version"], s["scored"]) == ("support", f"{D.DETECTOR_VERSION}+{cal.tag}", 3)
    scores = dict(db.sql("select call_id, value from evals where metric = 'hallucination_score'").rows())
    assert scores["b"] == pytest.approx(cal.apply(D.detect("It was completed in 1887 in Rome.", CTX).score))
    rate = wb.hallucination_rate(db, period="all")  # read by default: the configured detector's scores
    assert rate["n"].to_list() == [3]
    labels = dict(db.sql("select call_id, label from evals where metric = 'hallucination_score'").rows())
    assert rate["value"][0] == pytest.approx(sum(v == "hallucinated" for v in labels.values()) / 3)
    # the report's agreement table: the configured detector against the reviewers, by default
    db.duckdb.execute("insert into evals (call_id, metric, value, label, evaluator, evaluator_version, repeat) values "
                      "('a', 'hallucination_label', 0, 'supported', 'human', '1', 0), "
                      "('b', 'hallucination_label', 1, 'hallucinated', 'human', '1', 0), "
                      "('c', 'hallucination_label', 0, 'supported', 'human', '1', 0)")
    agree = wb.agreement(db)
    assert agree.select("evaluator", "version", "n").rows() == [("support", f"{D.DETECTOR_VERSION}+{cal.tag}", 3)]
    assert agree["auroc"][0] == 1.0  # 'b' (1887 in Rome) scores above the two supported answers


def test_the_detector_section_is_checked(tmp_path):
    toml = tmp_path / "workbench.toml"
    toml.write_text('[detector]\ncalibration = "cal.json"\nmodel = "models/nli"\n')
    with pytest.raises(ConfigError, match="model and calibration exclude each other"):
        detector_choice(toml)
    toml.write_text('[detector]\ncalibraton = "cal.json"\n')
    with pytest.raises(ConfigError, match="unknown key 'calibraton'"):
        detector_choice(toml)
    toml.write_text('[detector]\nbatch_size = 8\n')
    with pytest.raises(ConfigError, match="batch_size applies to the model tier"):
        detector_choice(toml)
    toml.write_text('[detector]\ncalibration = "missing.json"\n')
    with pytest.raises(MissingFileError, match="missing.json does not exist"):
        load_detector(None, config=toml)


def test_calibrating_on_the_reviewers_labels_in_the_database(tmp_path):
    """Labels brought in with import_labels are the calibration's data: the same fit as from the file, benchmark
    answers (no call) left out by default, the latest label of an answer reviewed twice, a clear error without any."""
    rows = _rows(CONTRASTIVE)[:120]
    path = str(tmp_path / "wb.duckdb")
    db = wb.connect(path)
    con = db.duckdb
    for i, r in enumerate(rows):
        con.execute("insert into calls (call_id, ts, feature, status) values (?, '2026-01-01', ?, 'ok')",
                    [f"c{i:03d}", "chat" if i % 2 else "search"])
        con.execute("insert into answers (call_id, question, contexts, answer) values (?, ?, ?, ?)",
                    [f"c{i:03d}", r.get("question"), r["contexts"], r["answer"]])
    con.execute("insert into answers (call_id, contexts, answer, source) values ('bench1', ['x'], 'y', 'set.jsonl')")
    wb.import_labels(db, [{"call_id": f"c{i:03d}", "label": 1 - r["label"]} for i, r in enumerate(rows[:10])],
                     version="first-pass")
    wb.import_labels(db, [{"call_id": f"c{i:03d}", "label": r["label"]} for i, r in enumerate(rows)]
                     + [{"call_id": "bench1", "label": 1}], version="review")
    got = C.labelled_answers(db)
    assert [g["label"] for g in got] == [r["label"] for r in rows]  # the later review wins; bench1 left out
    assert len(C.labelled_answers(db, traffic="all")) == len(rows) + 1
    assert len(C.labelled_answers(db, where={"feature": "chat"})) == len(rows) // 2
    assert [g["label"] for g in C.labelled_answers(db, version="first-pass")] == [1 - r["label"] for r in rows[:10]]
    db.close()
    from_db = C.fit_calibration(C.labelled_answers(wb.connect(path, read_only=True)))
    from_file = C.fit_calibration([{**r, "source": ""} for r in rows])
    assert (from_db.scale, from_db.shift) == pytest.approx((from_file.scale, from_file.shift), abs=1e-9)
    exe = [sys.executable, "-m", "workbench.cli", "hallucination", "calibrate"]
    out = tmp_path / "cal.json"
    r = subprocess.run([*exe, "--db", path, "--where", "feature=chat", "--out", str(out)], capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert f"on {len(rows) // 2} labelled answers" in r.stdout and C.read_calibration(out).rows == len(rows) // 2
    r = subprocess.run([*exe, "--db", path, "--reference", "nobody", "--out", str(out)], capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and "carries a label of 'nobody'" in r.stderr
    r = subprocess.run([*exe, "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and "LABELLED.jsonl or --db DB" in r.stderr
    # hostile values at the boundary: a column that is not there, a quote in a value, an output folder that is not
    for args, message in [(["--where", "nosuch=1"], "no column 'nosuch'"),
                          (["--where", "feature=x' or '1'='1"], "carries a label of 'human' with feature=x' or"),
                          (["--out", str(tmp_path / "no" / "such" / "cal.json")], "does not exist")]:
        argv = [*exe, "--db", path, *(args if "--out" in args else [*args, "--out", str(out)])]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
    # the benchmark on the same labels, per feature
    r = subprocess.run([*exe[:-1], "benchmark", "--db", path, "--reps", "20", "--json"], capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    sources = {x["source"]: x["n"] for x in json.loads(r.stdout)["sources"]}
    assert sources == {"chat": len(rows) // 2, "search": len(rows) // 2, "overall": len(rows)}


def test_calibrate_into_a_missing_folder_fails_before_the_fit(tmp_path, monkeypatch):
    # the fit scores every labelled answer (seconds to minutes): a folder that is not there is said before it
    from workbench import cli
    from workbench.eval import calibrate

    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(json.dumps({"answer": "a", "contexts": ["a"], "label": 0}) + "\n")
    monkeypatch.setattr(calibrate, "fit_calibration", lambda *a, **k: pytest.fail("fitted before the folder was checked"))
    out = tmp_path / "no" / "such" / "cal.json"
    with pytest.raises(wb.errors.MissingFileError, match=r"folder .*such does not exist"):
        cli._calibrate_offline(cli.build_parser().parse_args(["hallucination", "calibrate", str(labelled),
                                                              "--out", str(out)]))
