"""workbench: notebook-first analytics and evaluation for GenAI products in production.

``import workbench as wb`` is cheap: the heavy libraries (Ibis, DuckDB, polars) load on first use.

>>> import workbench as wb
>>> db = wb.connect(":memory:")
>>> db.calls.count().execute()
0
"""

import os as _os

# ragas sends usage telemetry unless told not to; the workbench never talks to the network on its own.
_os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from workbench._version import __version__ as __version__  # noqa: E402


def __getattr__(name: str):
    if name == "__all__":  # ``from workbench import *``: the exported functions and classes and the metrics
        from workbench._exports import star_names

        return star_names()
    from workbench._exports import resolve

    return resolve(name)


def __dir__():
    from workbench._exports import names

    return sorted({*globals(), *names()})
