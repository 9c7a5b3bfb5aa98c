"""Hop 3, metrics: tidy polars frames, one function per metric, registered once in :mod:`~workbench.metrics.core`.

The toolkit every metric shares (``suite``, ``compute``, ``scope``, ``proportion``, ``tidy``...) is re-exported here;
the metric families live one module each (``latency``, ``cost``, ``adoption``...), imported when the suite is asked for.
"""

from workbench.metrics.core import *  # noqa: F401,F403
from workbench.metrics.core import RESULT_COLUMNS, UndefinedMetricWarning, compute, suite  # noqa: F401
