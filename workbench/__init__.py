"""workbench: notebook-first analytics and evaluation for GenAI products in production.

``import workbench as wb`` is cheap: the heavy libraries (Ibis, DuckDB, polars) load on first use.

>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> db.calls.count().execute()
0
"""

from __future__ import annotations

import os

# ragas sends usage telemetry unless told not to; the workbench never talks to the network on its own.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from workbench._version import __version__ as __version__  # noqa: E402

def __getattr__(name: str):
    from workbench._exports import resolve

    return resolve(name)


def __dir__():
    from workbench._exports import names

    return sorted({*globals(), *names()})
