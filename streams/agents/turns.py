"""The pipeline's one lock, timed: the agents and checkpoints take turns on the engines and the
writer, and an alert waits for whatever holds it.

A batch of interactions awaits (sends, inserts) between its partitions, so the event loop turns
and ``rapport_loop_lag_seconds`` stays low while the batch may keep the lock for a second, and
the by-actor agent, whose next take would raise the alert, waits all that time. So each turn is
measured, by holder: how long it waited for the lock (``rapport_lock_wait_seconds``) and how long
it held it (``rapport_lock_held_seconds``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Histogram


class Turns:
    """``async with turns("actors"): ...`` — one holder at a time, first come first served."""

    def __init__(self, waited: Histogram, held: Histogram) -> None:
        self._lock = asyncio.Lock()
        self._waited = waited
        self._held = held

    @asynccontextmanager
    async def __call__(self, holder: str) -> AsyncIterator[None]:
        asked = time.monotonic()
        async with self._lock:
            got = time.monotonic()
            self._waited.labels(holder).observe(got - asked)
            try:
                yield
            finally:
                self._held.labels(holder).observe(time.monotonic() - got)

    def locked(self) -> bool:
        return self._lock.locked()
