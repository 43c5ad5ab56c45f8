"""One batch as the spam rules see it: columns, which rows are judged, per-row stream time.

Stream time is the largest event time seen so far, taken row by row in arrival order, so whether
an event is late (older than stream time − lateness when it arrives) is the same however the
stream is cut into batches. Late events are counted and left out of every rule. Row sets the
rules share (addressing rows, follow rows, rows with links) and canonical URLs are worked out
once per batch here.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from streams.core.batch import I64, AccountIndex, Bools, EventBatch
from streams.core.replies import ADDRESSING_KINDS
from streams.core.spam.urls import canonical_urls


class Frame:
    """``batch`` (numbered with the detector's ``AccountIndex``) plus what the rules share.

    ``prior`` and ``prior_reverse`` are filled by ``ContactMemory.scan``: for each row of
    ``addressing``, the time of the last contact actor→target (resp. target→actor) seen before
    it, ``NO_TIME`` if none.
    """

    __slots__ = (
        "batch", "ts", "accepted", "late", "stream_time", "actor_ids", "target_ids",
        "addressing", "prior", "prior_reverse", "_urls", "_ts_list",
    )  # fmt: skip

    def __init__(
        self, batch: EventBatch, accounts: AccountIndex, stream_time: int, lateness_ms: int
    ) -> None:
        if batch.accounts is not accounts:
            batch = EventBatch(batch.events, accounts)
        assert batch.actor_ids is not None and batch.target_ids is not None
        self.batch = batch
        self.actor_ids: I64 = batch.actor_ids
        self.target_ids: I64 = batch.target_ids
        self.ts = batch.ts
        running = np.maximum.accumulate(np.maximum(self.ts, stream_time))
        self.accepted: Bools = self.ts >= running - lateness_ms
        self.late = len(batch) - int(np.count_nonzero(self.accepted))
        self.stream_time = int(running[-1]) if len(running) else stream_time
        self.addressing = self.rows(ADDRESSING_KINDS)
        self.prior: I64 = np.zeros(0, np.int64)
        self.prior_reverse: I64 = np.zeros(0, np.int64)
        self._urls: dict[int, tuple[str, ...]] | None = None
        self._ts_list: list[int] | None = None

    def __len__(self) -> int:
        return len(self.batch)

    def rows(self, kinds: Collection[str], directed: bool = True) -> I64:
        """Accepted rows of ``kinds``; ``directed``: only those with a target other than the
        actor (self-interactions never count)."""
        b = self.batch
        if directed:
            return np.flatnonzero(self.accepted & b.directed(frozenset(kinds)))
        of_kind = np.fromiter(map(kinds.__contains__, b.kind), np.bool_, len(b))
        return np.flatnonzero(self.accepted & of_kind)

    @property
    def ts_list(self) -> list[int]:
        if self._ts_list is None:
            self._ts_list = self.ts.tolist()
        return self._ts_list

    @property
    def urls(self) -> dict[int, tuple[str, ...]]:
        """Accepted row → its distinct canonical URLs, for rows with any."""
        if self._urls is None:
            col, any_set = self.batch.column("urls")
            self._urls = {}
            if any_set:
                has = np.fromiter(map(bool, col), np.bool_, len(col)) & self.accepted
                for row in np.flatnonzero(has).tolist():
                    got = canonical_urls(col[row])
                    if got:
                        self._urls[row] = got
        return self._urls

    def linking(self) -> list[int]:
        """Indices into ``addressing`` of the rows that carry URLs."""
        urls = self.urls
        if not urls:
            return []
        rows = np.fromiter(urls, np.int64, len(urls))
        return np.flatnonzero(np.isin(self.addressing, rows)).tolist()
