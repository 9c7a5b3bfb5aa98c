"""Pausing Python's cyclic garbage collector around allocation-heavy work that makes no reference cycles.

The detector (scoring one answer) and the telemetry formats parsed in Python (one batch of records parsed and turned
into rows) allocate hundreds of thousands of short-lived dicts, lists and sets, all freed by reference counting. With
the collector on, their peaks pass its allocation threshold again and again, and every collection walks every young
object, including the ones the work still holds (a batch's parsed records, the passages just cached): 12-15% of the
detector's time, a third of a batch's. The collector is paused around one call and turned back on after the call
returns, so the call's temporaries are already freed when it runs again.

>>> import gc
>>> with paused():
...     gc.isenabled()
False
>>> gc.isenabled()
True
"""

from __future__ import annotations

import gc


class paused:
    """Context manager: the cyclic garbage collector off inside, restored on exit (an error too). A caller who had
    turned it off keeps it off. Never hold it across a ``yield``: the consumer's work would run with it off.

    Examples
    --------
    >>> import gc
    >>> gc.disable()
    >>> with paused():
    ...     pass
    >>> gc.isenabled()  # it was off before: left off
    False
    >>> gc.enable()
    """

    __slots__ = ("_was_on",)

    def __enter__(self) -> "paused":
        self._was_on = gc.isenabled()
        if self._was_on:
            gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._was_on:
            gc.enable()
