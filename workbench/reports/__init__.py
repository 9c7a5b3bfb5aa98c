"""Hop 4, report: papermill executes ``notebooks/<name>.ipynb`` into a published, self-contained report folder.

The names notebooks use (``reports.setup_display()``, ``reports.scorecard(...)``) are re-exported here.
"""

from workbench.reports.publish import (  # noqa: F401
    Report,
    ReportError,
    available,
    locate,
    notebooks_dir,
    resolve_period,
    run_all,
    run_report,
    require_data,
    scorecard,
    scorecard_view,
    target_lines,
    setup_display,
    targets,
)
from workbench.reports.tables import heading, note, table  # noqa: F401,E402
from workbench.reports.attention import driver  # noqa: F401,E402
