"""What a published report shows: the header escapes every value and names the database by file name; text from
answers and questions goes through redaction unless workbench.toml allows raw text."""

from __future__ import annotations

import json

import nbformat
import polars as pl

import workbench as wb
from workbench.reports import publish as reports

HOSTILE_DB = "<img src=x onerror=alert(1)> \"q\" 'q' **b** `c`.duckdb"
PII = {"jane.doe@example.com": "[email]", "+44 20 7946 0958": "[phone]", "4111 1111 1111 1111": "[card]",
       "sk-proj-abcdefghijklmnopqrstuvwx": "[api_key]", "123-45-6789": "[national_id]",
       "GB82 WEST 1234 5698 7654 32": "[iban]"}
ANSWER = ("It opened in 1925. Mail jane.doe@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, "
          "key sk-proj-abcdefghijklmnopqrstuvwx, SSN 123-45-6789.")


def _db(path):
    db = wb.connect(path)
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('a', '2026-11-18 10:00', 'chat', 'ok')")
    db.duckdb.execute("insert into answers (call_id, question, contexts, answer, ts) values "
                      "('a', 'IBAN GB82 WEST 1234 5698 7654 32, when?', ['The tower opened in 1889.'], ?, '2026-11-18 10:00')",
                      [ANSWER])
    wb.evaluate(db, progress=False)
    return db


def test_report_call_redacts_text_columns_by_default(tmp_path):
    db = _db(tmp_path / "w.duckdb")
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("")
    rep = reports.Report(db, start="2026-11-16", end="2026-11-23", config=cfg)
    text = json.dumps(rep.call("worst_offenders", n=5).to_dicts(), default=str, ensure_ascii=False)
    for secret, placeholder in PII.items():
        assert secret not in text and placeholder in text, secret
    assert "1925" in text  # the claim itself is still shown
    cfg.write_text("[privacy]\nshow_raw_text = true\n")
    raw = reports.Report(db, start="2026-11-16", end="2026-11-23", config=cfg).call("worst_offenders", n=5)
    assert "jane.doe@example.com" in raw["answer"][0]


def test_the_text_drift_terms_a_report_shows_hold_no_piece_of_an_address_or_number(tmp_path):
    # The experiments report's text drift lists the word pairs that mark each window: "to jane", "doe example",
    # "7946 0958" -- pieces of an address and a phone number that no redaction of the table could recognise.
    db = wb.connect(":memory:")
    db.duckdb.execute("insert into answers (call_id, answer, ts) select 'r' || i, 'refund issued for order ' || i, "
                      "timestamp '2026-01-01' from range(40) t(i)")
    db.duckdb.execute("insert into answers (call_id, answer, ts) select 'c' || i, 'please write to jane.doe@example.com "
                      "or call +44 20 7946 0958 about ' || i, timestamp '2026-01-02' from range(40) t(i)")
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("")
    rep = reports.Report(db, start="2026-01-02", end="2026-01-03", config=cfg)
    row = rep.call("text_drift", column="answer", reference=("2026-01-01", "2026-01-02"),
                   current=("2026-01-02", "2026-01-03")).row(0, named=True)
    terms = " ".join(row["terms_reference"] + row["terms_current"])
    assert row["auc"] == 1.0 and "please" in terms and "email" in terms, terms
    for piece in ("jane", "doe", "example", "7946", "0958", "44"):
        assert piece not in terms.split(), (piece, terms)


def test_data_notes_are_redacted_as_the_tables_are(tmp_path):
    # A note names a group without data by its value ("e.g. user_id='jane.doe@example.com'"): the table beside it
    # showed [email], the note the address.
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("")
    rep = reports.Report(":memory:", start="2026-11-16", end="2026-11-23", config=cfg)
    rep.notes.append(("error_rate", "some groups have n = 0; their value is null, e.g. user_id='jane.doe@example.com'"))
    html = rep.data_notes().data
    assert "jane.doe@example.com" not in html and "user_id=&#x27;[email]&#x27;" in html, html
    cfg.write_text("[privacy]\nshow_raw_text = true\n")
    raw = reports.Report(":memory:", start="2026-11-16", end="2026-11-23", config=cfg)
    raw.notes.extend(rep.notes)
    assert "jane.doe@example.com" in raw.data_notes().data


def test_header_escapes_values_and_shows_the_file_name():
    html = reports.header_html("<script>alert(1)</script>", "2026-11-16", "<b>x</b>", f"/home/me/secret/{HOSTILE_DB}")
    assert "<script>" not in html and "<img" not in html and "<b>x" not in html and "&lt;b&gt;x" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&quot;q&quot;" in html
    assert "/home/me/secret" not in html


def test_published_report_is_escaped_and_redacted(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    monkeypatch.setenv(reports.NOTEBOOKS_ENV, str(nbdir))
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('db = ""\nstart = None\nend = None\nperiod = None\nout_dir = None\nconfig = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[nbformat.v4.new_code_cell(c) for c in (
        "import workbench as wb\nfrom workbench import reports\nreports.setup_display()\nrep = wb.Report(db, start=start, end=end, out_dir=out_dir, config=config, "
        "title='Privacy <script>alert(2)</script>')",
        "rep.header()",
        "rep.call('worst_offenders', n=5)",
        "rep.save();",
    )]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "privacy.ipynb")
    dbp = tmp_path / HOSTILE_DB
    _db(dbp).close()
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("")
    out = reports.run_report("privacy", db=dbp, out=tmp_path / "reports", period="2026-W47", config=cfg)
    html = (out / "report.html").read_text()
    notebook = (out / "report.ipynb").read_text()
    assert "<img src=x onerror" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert(2)" not in html
    assert str(tmp_path) not in html  # the database by file name, not the machine path
    assert json.loads((out / "params.json").read_text())["db"] == str(dbp.resolve())  # lineage keeps the full path
    shown = pl.read_parquet(out / "metrics.parquet").select(pl.col(pl.String)).to_dicts()
    for secret, placeholder in PII.items():
        assert secret not in html and placeholder in html, secret
        # the notebook's outputs (the injected parameters cell holds only the db path, not the answers)
        assert secret not in notebook, secret
        assert secret not in json.dumps(shown, ensure_ascii=False), secret
    cfg.write_text("[privacy]\nshow_raw_text = true\n")  # a team that allows raw text sees it
    out = reports.run_report("privacy", db=dbp, out=tmp_path / "reports", period="2026-W47", config=cfg, force=True)
    assert "jane.doe@example.com" in (out / "report.html").read_text()
