"""Navigation between published reports: ``reports/index.html`` and the bar at the top of every report.

The index lists every report and period with its status and run date, latest period first. Each report carries a
navigation bar (between ``<!--wb-nav-->`` markers) linking to the index, to its previous and next period, and to the
other reports of the same period; :func:`build_index` rewrites these bars whenever a report is published, so a
report published last week gains its "next" link today.

>>> neighbour("2026-W01", -1), neighbour("2026-12", 1), neighbour("2026-11-30", 1)
('2025-W52', '2027-01', '2026-12-01')
"""

from __future__ import annotations

import datetime as dt
import html as _html
import json
import re
from pathlib import Path
from typing import Any

from workbench._files import flock, pause, written_atomically

__all__ = ["TITLES", "title_of", "neighbour", "published", "build_index", "nav_html", "page_title", "link_reports",
           "INDEX_NAME"]

INDEX_NAME = "index.html"
#: Held while the index is built and while a report is swapped into place (:func:`build_index`)
INDEX_LOCK = ".index~lock"
TITLES = {
    "scorecard": "Weekly scorecard",
    "adoption": "Adoption",
    "hallucination": "Hallucination",
    "latency": "Latency and reliability",
    "cost": "Cost and budgets",
    "experiments": "Experiments and drift",
}
ORDER = list(TITLES)
_NAV = re.compile(r"<!--wb-nav-->.*?<!--/wb-nav-->", re.S)
_STYLE = ("font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:14px;padding:8px 16px;"
          "background:#f3f5f8;border-bottom:1px solid #d8dde6;display:flex;flex-wrap:wrap;gap:14px;align-items:center")


def title_of(name: str) -> str:
    """A report's title in words.

    >>> title_of("cost"), title_of("my_custom")
    ('Cost and budgets', 'My custom')
    """
    return TITLES.get(name) or name.replace("_", " ").capitalize()


def page_title(name: str, period: str) -> str:
    """The browser tab title of a report: report and period.

    >>> page_title("scorecard", "2026-W47")
    'Weekly scorecard · 2026-W47'
    """
    return f"{title_of(name)} · {period}"


def neighbour(label: str, step: int) -> str | None:
    """The period ``step`` periods before (-1) or after (+1) ``label``, of the same kind; None for custom ranges.

    Examples
    --------
    >>> neighbour("2026-W47", -1), neighbour("2026-W53", 1), neighbour("2026-01", -1)
    ('2026-W46', '2027-W01', '2025-12')
    >>> neighbour("2026-11-20..2026-11-22", 1) is None
    True
    """
    if m := re.fullmatch(r"(\d{4})-W(\d{2})", label):
        d = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1) + dt.timedelta(weeks=step)
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    if m := re.fullmatch(r"(\d{4})-(\d{2})", label):
        k = int(m[1]) * 12 + int(m[2]) - 1 + step
        return f"{k // 12}-{k % 12 + 1:02d}"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", label):
        return (dt.date.fromisoformat(label) + dt.timedelta(days=step)).isoformat()
    return None


def published(out: str | Path) -> list[dict[str, Any]]:
    """Every published report under ``out``: name, period, status, run time, folder; latest period first.

    A hidden folder (``.<period>~<run id>~build``: a run in progress, or the debris of one killed) is not a report.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> for name, period, start in [("scorecard", "2026-W46", "2026-11-09"), ("scorecard", "2026-W47", "2026-11-16"),
    ...                             ("cost", "2026-W47", "2026-11-16")]:
    ...     (out / name / period).mkdir(parents=True)
    ...     _ = (out / name / period / "report.html").write_text("<html><body><h1>Report</h1></body></html>")
    ...     _ = (out / name / period / "params.json").write_text(json.dumps({"status": "published", "start": start}))
    >>> [(r["report"], r["period"], r["status"]) for r in published(out)]
    [('scorecard', '2026-W47', 'published'), ('cost', '2026-W47', 'published'), ('scorecard', '2026-W46', 'published')]
    """
    rows = []
    root = Path(out)
    for html in root.glob("*/*/report.html"):
        folder = html.parent
        name, period = folder.parent.name, folder.name
        if name.startswith(".") or period.startswith("."):  # a build, a run swapped aside: never a link of the index
            continue
        meta: dict[str, Any] = {}
        try:
            meta = json.loads((folder / "params.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        status = meta.get("status") or ("published" if meta else "incomplete")
        try:
            meta.setdefault("attention", json.loads((folder / "attention.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
        rows.append({"report": name, "period": period, "start": meta.get("start") or "", "executed_at": meta.get("executed_at") or "",
                     "status": status, "attention": meta.get("attention") or [], "path": folder})
    order = {n: i for i, n in enumerate(ORDER)}
    rows.sort(key=lambda r: (r["start"] or r["period"], -order.get(r["report"], 99)), reverse=True)
    return rows


def nav_html(out: str | Path, name: str, period: str, *, pub: list[dict[str, Any]] | None = None) -> str:
    """The navigation bar of report ``name`` for ``period`` (relative links, so the folder can be moved).

    Examples
    --------
    >>> import re
    >>> pub = [{"report": "scorecard", "period": "2026-W46"}, {"report": "cost", "period": "2026-W47"}]
    >>> nav = nav_html("reports", "scorecard", "2026-W47", pub=pub)  # pub: as published("reports") lists them
    >>> re.findall(r'<a href="([^"]+)"', nav)
    ['../../index.html', '../2026-W46/report.html', '../../cost/2026-W47/report.html']
    >>> "next → (2026-W48): not published" in nav
    True
    """
    pub = published(out) if pub is None else pub
    have = {(r["report"], r["period"]) for r in pub}
    links = ['<a href="../../index.html">All reports</a>']
    for step, word in ((-1, "← previous"), (1, "next →")):
        other = neighbour(period, step)
        if other and (name, other) in have:
            links.append(f'<a href="../{_html.escape(other)}/report.html" rel="{"prev" if step < 0 else "next"}">'
                         f'{word} ({_html.escape(other)})</a>')
        elif other:
            links.append(f'<span style="color:#8a94a6">{word} ({_html.escape(other)}): not published</span>')
    same = sorted({r["report"] for r in pub if r["period"] == period and r["report"] != name},
                  key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))
    if same:
        links.append("<span>Same period: " + " · ".join(
            f'<a href="../../{_html.escape(n)}/{_html.escape(period)}/report.html">{_html.escape(title_of(n))}</a>' for n in same)
            + "</span>")
    return f'<!--wb-nav--><nav aria-label="Reports" style="{_STYLE}">{"".join(links)}</nav><!--/wb-nav-->'


def insert_nav(html: str, nav: str) -> str:
    """Put (or replace) the navigation bar right after ``<body>``.

    Examples
    --------
    >>> html = insert_nav("<html><body><h1>Cost</h1></body></html>", "<!--wb-nav--><nav>A</nav><!--/wb-nav-->")
    >>> html
    '<html><body><!--wb-nav--><nav>A</nav><!--/wb-nav--><h1>Cost</h1></body></html>'
    >>> insert_nav(html, "<!--wb-nav--><nav>B</nav><!--/wb-nav-->").count("<nav>")  # replaced, not added
    1
    """
    if _NAV.search(html):
        return _NAV.sub(lambda _: nav, html, count=1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, html, count=1)


_REPORT_LINK = re.compile(r'<a (?:href|data-wb-href)="(\.\./\.\./([^/"#?]+)/([^/"#?]+)/report\.html(?:#[^"]*)?)"'
                          r'(?: title="[^"]*")?>')


def link_reports(html: str, have: set[tuple[str, str]]) -> str:
    """``html`` with each link to another report (``../../<name>/<period>/report.html#...``, as the scorecard links
    its metrics to the reports that explain them) a link when that report is in ``have`` (report, period), else
    plain text saying it is not published; the next :func:`build_index` makes it a link again once it is.

    >>> page = '<a href="../../latency/2026-W47/report.html#Latency-by-model">Latency p95</a>'
    >>> page = link_reports(page, set())
    >>> page
    '<a data-wb-href="../../latency/2026-W47/report.html#Latency-by-model" title="Latency and reliability 2026-W47 is not published">Latency p95</a>'
    >>> link_reports(page, {("latency", "2026-W47")})
    '<a href="../../latency/2026-W47/report.html#Latency-by-model">Latency p95</a>'
    """
    def one(m: re.Match) -> str:
        name, period = _html.unescape(m[2]), _html.unescape(m[3])
        if (name, period) in have:
            return f'<a href="{m[1]}">'
        return f'<a data-wb-href="{m[1]}" title="{_html.escape(page_title(name, period).replace(" · ", " "))} is not published">'

    return _REPORT_LINK.sub(one, html)


def build_index(out: str | Path) -> Path:
    """Write ``out/index.html`` (every report and period, latest first) and refresh the navigation of every report,
    and its links to other reports (:func:`link_reports`: plain text while the report linked is not published).

    A file that cannot be written (a full disk) raises :class:`~workbench.errors.ReportError` naming it; the file
    keeps what it held.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> for name, period, start in [("scorecard", "2026-W46", "2026-11-09"), ("scorecard", "2026-W47", "2026-11-16"),
    ...                             ("cost", "2026-W47", "2026-11-16")]:
    ...     (out / name / period).mkdir(parents=True)
    ...     _ = (out / name / period / "report.html").write_text("<html><body><h1>Report</h1></body></html>")
    ...     _ = (out / name / period / "params.json").write_text(json.dumps({"status": "published", "start": start}))
    >>> build_index(out).relative_to(out)
    PosixPath('index.html')
    >>> '<h2 id="2026-W47">' in (out / "index.html").read_text()
    True
    >>> "next → (2026-W47)</a>" in (out / "scorecard" / "2026-W46" / "report.html").read_text()  # gained its link
    True
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    # one index at a time, and no publish while one is built (publish._publish takes the lock too): listed before a
    # report was published and written after, an index left it out and a page read before was written over it
    with flock(root / INDEX_LOCK):
        pause("index")
        return _build_index(root)


def _build_index(root: Path) -> Path:
    pub = published(root)
    have = {(r["report"], r["period"]) for r in pub}
    for r in pub:
        page = r["path"] / "report.html"
        if page.is_symlink() or r["path"].is_symlink() or r["path"].parent.is_symlink():
            continue  # not a report this folder holds: a link is never read or written through
        try:
            text = page.read_text(encoding="utf-8")
        except OSError:
            continue
        new = link_reports(insert_nav(text, nav_html(root, r["report"], r["period"], pub=pub)), have)
        if new != text:
            _write(page, new)  # replaced in one rename: a reader never sees half a page
    periods: dict[str, list[dict[str, Any]]] = {}
    for r in pub:
        periods.setdefault(r["period"], []).append(r)
    body = []
    for period, rows in periods.items():
        trs = []
        for r in rows:
            st = str(r["status"])
            colour = "#14692d" if st in ("published", "ok") else "#a50e0e"
            att = [str(x) for x in r["attention"]] if isinstance(r["attention"], list) else []
            note = " ".join(att[:2]) + (f" (+{len(att) - 2} more)" if len(att) > 2 else "")
            trs.append(
                f'<tr><td><a href="{_html.escape(r["report"])}/{_html.escape(period)}/report.html">{_html.escape(title_of(r["report"]))}</a></td>'
                f'<td style="color:{colour};font-weight:600">{_html.escape(st)}</td>'
                f'<td>{_html.escape(str(r["executed_at"]).replace("T", " "))}</td><td>{_html.escape(note)}</td></tr>')
        body.append(f'<h2 id="{_html.escape(period)}">{_html.escape(period)}</h2><table><thead><tr><th>Report</th><th>Status</th>'
                    f'<th>Run at (UTC)</th><th>Needs attention</th></tr></thead><tbody>{"".join(trs)}</tbody></table>')
    if not body:
        body.append("<p>No report has been published yet: run <code>workbench report all</code>.</p>")
    css = ("body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d2433;max-width:72em}"
           "table{border-collapse:collapse;width:100%;margin-bottom:18px}th,td{text-align:left;padding:6px 10px;"
           "border-bottom:1px solid #e3e7ee;font-size:14px;vertical-align:top}th{background:#f3f5f8}h2{margin-bottom:6px}")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Reports · workbench</title>'
            f'<style>{css}</style></head><body><h1>Reports</h1><p>Every published report, latest period first.</p>'
            f'{"".join(body)}</body></html>')
    target = root / INDEX_NAME
    _write(target, page)  # a new temporary file, never one found in the folder (a link)
    return target


def _write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename; a write that fails (a full disk) is a :class:`ReportError` naming
    the file, and ``path`` keeps what it held."""
    from workbench.errors import ReportError

    try:
        with written_atomically(path) as fh:
            fh.write(text)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None
