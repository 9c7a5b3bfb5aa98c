"""Scheduled report runs: the crontab lines that publish the reports and page on SLO and budget alerts.

The workbench needs no scheduler of its own: cron (or any job runner) calls the CLI. Report periods are relative
(``last-week``, ``yesterday``), so the same line publishes a new period on every run, and earlier runs are archived.

>>> print(crontab(db="/data/wb.duckdb", out="/srv/reports", workdir="/opt/wb", names=["scorecard"]).splitlines()[1])
0 6 * * 1 cd /opt/wb && .venv/bin/workbench report scorecard --db /data/wb.duckdb --period last-week --out /srv/reports
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

# report name -> (cron schedule, period): weekly reports on Monday 06:00 UTC, daily ones at 06:30 for yesterday
SCHEDULES = {"daily": ("30 6 * * *", "yesterday"), "weekly": ("0 6 * * 1", "last-week")}
DAILY = {"hallucination", "latency"}


def crontab(*, db: str | None = None, out: str = "reports", workdir: str | None = None, names: Iterable[str] | None = None) -> str:
    """Crontab lines for every report notebook, plus SLO and budget checks every 5 minutes / every hour.

    The checks exit 1 when an alert fires; cron mails (or your wrapper pages) on a non-zero exit.
    """
    from workbench.reports.publish import available

    workdir = workdir or str(Path.cwd())
    db = db or os.environ.get("WORKBENCH_DB") or "datasets/workbench.duckdb"
    lines = ["# workbench: scheduled reports (UTC)"]
    for name in names or available():
        when, period = SCHEDULES["daily" if name in DAILY else "weekly"]
        lines.append(f"{when} cd {workdir} && .venv/bin/workbench report {name} --db {db} --period {period} --out {out}")
    lines.append(f"*/5 * * * * cd {workdir} && .venv/bin/workbench slo --db {db} > /dev/null")
    lines.append(f"0 * * * * cd {workdir} && .venv/bin/workbench budget --db {db} > /dev/null")
    return "\n".join(lines)
